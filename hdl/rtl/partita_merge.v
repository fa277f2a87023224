// partita library core: merges NS streams into one, per period LASTS[j] + 1 values of stream j
// in turn, stream 0 first (the all-gather of a `filters` stack: per pixel, each device's slice
// of the channels in device order, one stream a device's own kept values and the others its
// received queues). Valid/ready throughout; the output is the selected stream's head, so a
// value passes in the cycle it arrives, and a stream that is not selected is never taken.
// s_want is the selected stream, one-hot (a caller counts the cycles it waits for a link).
`timescale 1ns / 1ps
module partita_merge #(
    parameter integer NS = 2,               // streams (2 to 8)
    parameter integer DW = 16,
    parameter integer SW = 1,               // holds NS - 1
    parameter integer CW = 4,               // holds the longest run's LASTS
    parameter [NS*CW-1:0] LASTS = 8'h21     // per stream, its values per period minus one
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [NS*DW-1:0] s_data,
    input  wire [NS-1:0]    s_valid,
    output wire [NS-1:0]    s_ready,
    output wire [NS-1:0]    s_want,
    output wire [DW-1:0]    m_data,
    output wire             m_valid,
    input  wire             m_ready
);
    localparam integer NL = NS - 1;
    localparam [SW-1:0] SEL_LAST = NL[SW-1:0];
    reg [SW-1:0] sel;
    reg [CW-1:0] n;
    wire [CW-1:0] run_last = LASTS[sel*CW +: CW];
    wire take = m_valid && m_ready;
    assign m_data = s_data[sel*DW +: DW];
    assign m_valid = s_valid[sel];
    assign s_want = {{NL{1'b0}}, 1'b1} << sel;
    assign s_ready = s_want & {NS{m_ready}};
    always @(posedge clk) begin
        if (rst) begin
            sel <= {SW{1'b0}};
            n <= {CW{1'b0}};
        end else if (take) begin
            if (n == run_last) begin
                n <= {CW{1'b0}};
                sel <= (sel == SEL_LAST) ? {SW{1'b0}} : sel + 1'b1;
            end else begin
                n <= n + 1'b1;
            end
        end
    end
endmodule
