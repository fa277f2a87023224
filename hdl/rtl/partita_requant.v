// partita library core: the one rounding and overflow primitive.
`timescale 1ns / 1ps
// One rounding and one overflow step: y = fit(round(x / 2^SHR) * 2^SHL).
// Exactly one of SHR, SHL may be non-zero. ROUND_NE: 1 nearest-even, 0 truncate (floor).
// SAT: 1 saturate, 0 wrap. CLIP is high when the overflow step acted.
module partita_requant #(
    parameter integer IW = 16,
    parameter integer SHR = 0,
    parameter integer SHL = 0,
    parameter integer OW = 8,
    parameter integer ROUND_NE = 1,
    parameter integer SAT = 1
) (
    input  wire [IW-1:0] x,
    output wire [OW-1:0] y,
    output wire          clip
);
    // Width after the shift, plus one bit for the rounding carry.
    localparam integer RW = (SHR > 0) ? (IW - SHR + 1) : (IW + SHL);
    wire [RW-1:0] r;
    generate
        if (SHR == 1) begin : g_shr1
            // Only a tie can round: x.5 goes to the even neighbour.
            wire [IW-2:0] fl = x[IW-1:1];
            wire up = (ROUND_NE != 0) && x[0] && fl[0];
            assign r = {fl[IW-2], fl} + {{(RW-1){1'b0}}, up};
        end else if (SHR > 1) begin : g_shr
            wire [IW-SHR-1:0] fl = x[IW-1:SHR];
            // rem > half: the half bit and any bit below it; rem == half: the half bit alone,
            // then the tie goes up only from an odd floor. An OR tree, no compare chain.
            wire half = x[SHR-1];
            wire below = |x[SHR-2:0];
            wire up = (ROUND_NE != 0) && half && (below || fl[0]);
            assign r = {fl[IW-SHR-1], fl} + {{(RW-1){1'b0}}, up};
        end else if (SHL > 0) begin : g_shl
            assign r = {x, {SHL{1'b0}}};
        end else begin : g_none
            assign r = x;
        end
    endgenerate
    generate
        if (RW == OW) begin : g_same
            assign y = r;
            assign clip = 1'b0;
        end else if (RW < OW) begin : g_fits
            assign y = {{(OW-RW){r[RW-1]}}, r};
            assign clip = 1'b0;
        end else begin : g_fit
            // Fits when every bit above OW-1 equals the sign bit of the OW-bit result.
            wire [RW-OW:0] top = r[RW-1:OW-1];
            wire fits = (top == {(RW-OW+1){1'b0}}) || (top == {(RW-OW+1){1'b1}});
            wire neg = r[RW-1];
            wire [OW-1:0] maxv = {1'b0, {(OW-1){1'b1}}};
            wire [OW-1:0] minv = {1'b1, {(OW-1){1'b0}}};
            assign y = (fits || SAT == 0) ? r[OW-1:0] : (neg ? minv : maxv);
            assign clip = !fits;
        end
    endgenerate
endmodule
