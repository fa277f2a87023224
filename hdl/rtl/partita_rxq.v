// partita library core: a received stream's queue. Whole payload beats come in as the link
// receiver offers them (partita_link_rx's v_beat with its v_avail values, taken at once with
// v_all), so a port drains a beat per cycle however many streams share it; values leave one per
// cycle. Each entry is a beat's VPB value slots (DW bits each, the first in the low bits) and
// its count (1 to VPB, VW bits) in a block-RAM stream FIFO (partita_sfifo) of DEPTH beats.
`timescale 1ns / 1ps
module partita_rxq #(
    parameter integer DW = 16,
    parameter integer VPB = 4,          // value slots per beat
    parameter integer VW = 3,           // holds VPB
    parameter integer AW = 6,
    parameter integer DEPTH = 64
) (
    input  wire              clk,
    input  wire              rst,
    input  wire [VPB*DW-1:0] s_beat,
    input  wire [VW-1:0]     s_n,
    input  wire              s_valid,
    output wire              s_ready,
    output wire [DW-1:0]     m_data,
    output wire              m_valid,
    input  wire              m_ready
);
    localparam [VW-1:0] ONE = 1;
    wire [VPB*DW+VW-1:0] head;
    wire hv;
    reg [VW-1:0] vi;
    wire [VW-1:0] n = head[VPB*DW +: VW];
    wire take = hv && m_ready;
    wire beat_done = take && (vi + ONE == n);
    partita_sfifo #(.W(VPB * DW + VW), .AW(AW), .DEPTH(DEPTH)) u_beats (
        .clk(clk), .rst(rst), .s_data({s_n, s_beat}), .s_valid(s_valid), .s_ready(s_ready),
        .m_data(head), .m_valid(hv), .m_ready(beat_done)
    );
    assign m_data = head[vi*DW +: DW];
    assign m_valid = hv;
    always @(posedge clk) begin
        if (rst) vi <= {VW{1'b0}};
        else if (take) vi <= beat_done ? {VW{1'b0}} : vi + ONE;
    end
endmodule
