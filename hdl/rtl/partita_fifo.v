// partita library core: synchronous FIFO, first word fall-through. `dout` shows the oldest
// entry whenever `count` is non-zero. `push` writes `din` (the caller keeps it below DEPTH),
// `pop` drops the head (the caller pops only when `count` is non-zero); both in one cycle
// leave the count unchanged. DEPTH = 2^AW entries; `count` runs 0..DEPTH.
`timescale 1ns / 1ps
module partita_fifo #(
    parameter integer W = 8,
    parameter integer AW = 4,
    parameter integer DEPTH = 16
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         push,
    input  wire [W-1:0] din,
    input  wire         pop,
    output wire [W-1:0] dout,
    output reg  [AW:0]  count
);
    localparam [AW-1:0] PTR_ONE = 1;
    localparam [AW:0] CNT_ONE = 1;
    reg [W-1:0] mem [0:DEPTH-1];
    reg [AW-1:0] wp, rp;
    always @(posedge clk) begin
        if (rst) begin
            wp <= {AW{1'b0}};
            rp <= {AW{1'b0}};
            count <= {(AW + 1){1'b0}};
        end else begin
            if (push) begin
                mem[wp] <= din;
                wp <= wp + PTR_ONE;
            end
            if (pop) rp <= rp + PTR_ONE;
            if (push && !pop) count <= count + CNT_ONE;
            else if (pop && !push) count <= count - CNT_ONE;
        end
    end
    assign dout = mem[rp];
endmodule
