// partita library core: the link CRC register. Each enabled edge advances `crc` over the W
// bits of `data`, most significant first: CRC-32/MPEG-2 (polynomial 0x04C11DB7, no
// reflection, no final XOR). `start` begins a new CRC with `data` (from 0xFFFFFFFF), `en`
// continues the current one, neither holds it; reset loads 0xFFFFFFFF. The inputs are
// registered first, so the XOR networks start from flip-flops wherever `data` and the enables
// come from. A beat may be taken every cycle; `pend` is high while one is still on its way
// into `crc` (a user reading `crc` waits while it is). The Rust reference is
// partita_hdl::frame::crc_bits; its check value for "123456789" is 0x0376E6E7.
// The step is linear, so each result bit is the XOR of fixed sets of CRC and data bits. Those
// sets are found at elaboration (what the bit-serial step gives on unit vectors), and each bit
// is built as a reduction XOR, which synthesis makes a balanced tree instead of a 64-deep
// chain. The data's share of each bit (a XOR of up to W bits, which does not depend on the
// CRC) is partita_crc32_share's. With SPLIT set, it is computed a stage earlier, from the data
// register into a register of its own; the CRC register's loop then XORs the CRC's share (up
// to 32 bits) with one registered bit: two smaller networks, each from flip-flops, instead of
// one dense one. `crc` includes a beat one edge (two with SPLIT) after the edge that took it,
// and `pend` is high for those cycles.
`timescale 1ns / 1ps
module partita_crc32 #(
    parameter integer W = 64,
    parameter integer SPLIT = 1     // the data's share a stage ahead of the CRC register
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
    localparam [31:0] POLY = 32'h04C11DB7;
    // One zero bit into the CRC register.
    function [31:0] zstep(input [31:0] c);
        zstep = {c[30:0], 1'b0} ^ (c[31] ? POLY : 32'h00000000);
    endfunction
    // Bit i of the CRC's share = ^(c & cmask(i)). CRC bit j alone, after the W zero bits of a
    // step, is bit j + W while that stays below 32; otherwise it left bit 31 after 31 - j
    // shifts, which put the polynomial in, and took the remaining j + W - 32 steps from there.
    // So one walk of the polynomial through zero steps gives every column, in W steps (the
    // bit-serial step run on each unit vector took 32 W, slow in elaborators' interpreters).
    function [31:0] cmask(input [4:0] i);
        integer j, k;
        reg [31:0] r;
        begin
            cmask = 32'd0;
            r = POLY;
            for (k = 0; k < W - 32; k = k + 1)
                r = zstep(r);
            for (j = 0; j < 32; j = j + 1) begin
                if (j + W <= 31) begin
                    cmask[j] = (j + W == {27'd0, i});
                end else begin
                    cmask[j] = r[i];
                    r = zstep(r);
                end
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
    // The data's share of each bit, from the data register; at the CRC register (dsh) it is
    // that, or with SPLIT its register, and the enables (s_c, e_c) follow it.
    wire [31:0] dsh_d;
    wire s_c, e_c;
    wire [31:0] dsh;
    partita_crc32_share #(.W(W)) u_share (.data(d_q), .share(dsh_d));
    genvar i;
    generate
        if (SPLIT != 0) begin : g_split
            reg s_q2, e_q2;
            // No reset: used only under s_q2 / e_q2.
            reg [31:0] dsh_q;
            always @(posedge clk) begin
                if (rst) begin
                    s_q2 <= 1'b0;
                    e_q2 <= 1'b0;
                end else begin
                    s_q2 <= s_q;
                    e_q2 <= e_q;
                end
                dsh_q <= dsh_d;
            end
            assign s_c = s_q2;
            assign e_c = e_q2;
            assign dsh = dsh_q;
            assign pend = s_q || e_q || s_q2 || e_q2;
        end else begin : g_one
            assign s_c = s_q;
            assign e_c = e_q;
            assign dsh = dsh_d;
            assign pend = s_q || e_q;
        end
    endgenerate
    wire [31:0] base = s_c ? INIT : crc;
    wire [31:0] nxt;
    generate
        for (i = 0; i < 32; i = i + 1) begin : g_crc
            localparam [31:0] CM = cmask(i);
            assign nxt[i] = (^(base & CM)) ^ dsh[i];
        end
    endgenerate
    always @(posedge clk) begin
        if (rst) crc <= INIT;
        else if (s_c || e_c) crc <= nxt;
    end
endmodule
