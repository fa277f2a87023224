// partita library core: a register copy of a signal group that drives many flip-flops or block
// RAMs (a pipeline's advance, a memory's write port): each group of loads gets a copy of its
// own, registered from the same next value (d; q follows it a cycle later, RST_VAL in reset), and
// placed near them. The module is kept as an instance of its own (keep_hierarchy), so
// synthesis does not merge the copies back into one register. The copy starts at RST_VAL (its
// initial value, the flip-flops' configuration value on an FPGA), so a copy with its reset
// tied off, following a source that is reset, never holds anything else.
`timescale 1ns / 1ps
(* keep_hierarchy *)
module partita_rep #(
    parameter integer W = 1,
    parameter [W-1:0] RST_VAL = {W{1'b0}}
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] d,
    output reg  [W-1:0] q
);
    initial q = RST_VAL;
    always @(posedge clk) begin
        if (rst) q <= RST_VAL;
        else q <= d;
    end
endmodule
