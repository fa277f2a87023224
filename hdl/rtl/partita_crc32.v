// partita library core: the link CRC register. Each enabled edge advances `crc` over the W
// bits of `data`, most significant first: CRC-32/MPEG-2 (polynomial 0x04C11DB7, no
// reflection, no final XOR). `start` begins a new CRC with `data` (from 0xFFFFFFFF), `en`
// continues the current one, neither holds it; reset loads 0xFFFFFFFF. The inputs are
// registered first, so the XOR network starts from flip-flops wherever `data` and the enables
// come from: `crc` includes a beat one edge after the edge that took it, and `pend` is high
// in between (a user reading `crc` waits while it is). The Rust reference is
// partita_hdl::frame::crc_bits; its check value for "123456789" is 0x0376E6E7.
// The step is linear, so each result bit is the XOR of fixed sets of CRC and data bits. Those
// sets are found at elaboration by running the bit-serial step on unit vectors, and each bit
// is built as a reduction XOR, which synthesis makes a balanced tree (about 4 LUT levels for
// 96 inputs), instead of a 64-deep chain.
`timescale 1ns / 1ps
module partita_crc32 #(
    parameter integer W = 64
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         start,
    input  wire         en,
    input  wire [W-1:0] data,
    output reg  [31:0]  crc,
    output wire         pend
);
    localparam [31:0] INIT = 32'hFFFFFFFF;
    function [31:0] step(input [31:0] c, input [W-1:0] d);
        integer n;
        begin
            step = c;
            for (n = W - 1; n >= 0; n = n - 1)
                step = {step[30:0], 1'b0} ^ ((step[31] ^ d[n]) ? 32'h04C11DB7 : 32'h00000000);
        end
    endfunction
    // Bit i of step(c, d) = ^(c & cmask(i)) ^ ^(d & dmask(i)).
    function [31:0] cmask(input [4:0] i);
        integer j;
        reg [31:0] r;
        begin
            cmask = 32'd0;
            for (j = 0; j < 32; j = j + 1) begin
                r = step(32'd1 << j, {W{1'b0}});
                cmask[j] = r[i];
            end
        end
    endfunction
    function [W-1:0] dmask(input [4:0] i);
        integer j;
        reg [31:0] r;
        begin
            dmask = {W{1'b0}};
            for (j = 0; j < W; j = j + 1) begin
                r = step(32'd0, {{(W - 1){1'b0}}, 1'b1} << j);
                dmask[j] = r[i];
            end
        end
    endfunction
    reg s_q, e_q;
    always @(posedge clk) begin
        if (rst) begin
            s_q <= 1'b0;
            e_q <= 1'b0;
        end else begin
            s_q <= start;
            e_q <= en;
        end
    end
    // The data register is an instance of its own (partita_rep keeps its hierarchy): a user
    // that registers the same beat for another purpose (the link receiver's forwarding slice)
    // would otherwise have it merged with that register, placed beside the other user, and
    // the XOR network would start a long net away.
    wire [W-1:0] d_q;
    partita_rep #(.W(W)) u_d (.clk(clk), .rst(1'b0), .d(data), .q(d_q));
    assign pend = s_q || e_q;
    wire [31:0] base = s_q ? INIT : crc;
    wire [31:0] nxt;
    genvar i;
    generate
        for (i = 0; i < 32; i = i + 1) begin : g_bit
            localparam [31:0] CM = cmask(i);
            localparam [W-1:0] DM = dmask(i);
            assign nxt[i] = (^(base & CM)) ^ (^(d_q & DM));
        end
    endgenerate
    always @(posedge clk) begin
        if (rst) crc <= INIT;
        else if (s_q || e_q) crc <= nxt;
    end
endmodule
