// partita library core: the data's share of a link CRC step (partita_crc32). The CRC-32/MPEG-2
// step over a W-bit beat is linear: the next CRC is the XOR of a share of the CRC (bits of the
// CRC alone) and a share of the beat (bits of the beat alone). This core computes the beat's
// share, combinationally: bit i is the XOR of the beat's bits in dmask(i), the sets found at
// elaboration from the polynomial walked through zero steps (what the bit-serial step from 0
// gives on each unit vector), each built as a reduction XOR (a balanced tree). partita_crc32 XORs it with the CRC's own share.
`timescale 1ns / 1ps
module partita_crc32_share #(
    parameter integer W = 64
) (
    input  wire [W-1:0] data,
    output wire [31:0]  share
);
    localparam [31:0] POLY = 32'h04C11DB7;
    // One zero bit into the CRC register.
    function [31:0] zstep(input [31:0] c);
        zstep = {c[30:0], 1'b0} ^ (c[31] ? POLY : 32'h00000000);
    endfunction
    // Bit i of the share = ^(data & dmask(i)). From a CRC of 0, beat bit j alone (bits go in
    // most significant first) puts the polynomial in when it enters, then takes the j zero
    // bits after it: one walk of the polynomial through zero steps gives every column, in W
    // steps (the bit-serial step run on each unit vector took W * W).
    function [W-1:0] dmask(input [4:0] i);
        integer j;
        reg [31:0] r;
        begin
            dmask = {W{1'b0}};
            r = POLY;
            for (j = 0; j < W; j = j + 1) begin
                dmask[j] = r[i];
                r = zstep(r);
            end
        end
    endfunction
    genvar i;
    generate
        for (i = 0; i < 32; i = i + 1) begin : g_bit
            localparam [W-1:0] DM = dmask(i);
            assign share[i] = ^(data & DM);
        end
    endgenerate
endmodule
