// partita library core: merges NS streams into one, per period NT runs in turn, run t taking
// LASTS[t] + 1 values of stream SRCS[t] (the all-gather of a `filters` stack: per pixel, each
// device's slice of the channels in device order, one run per stream; the strips or tiles of
// a fused or tiled stack joined into its map in raster order, a stream giving several runs
// per period on a grid of tiles). One stream is a device's own kept values, the others its
// received queues. Valid/ready throughout; the output is the selected stream's head, so a
// value passes in the cycle it arrives, and a stream that is not selected is never taken. The
// next run's stream and length are registered, so the select is a register.
// s_want is the selected stream, one-hot (a caller counts the cycles it waits for a link).
`timescale 1ns / 1ps
module partita_merge #(
    parameter integer NS = 2,               // streams (2 to 8)
    parameter integer DW = 16,
    parameter integer SW = 1,               // holds NS - 1
    parameter integer CW = 4,               // holds the longest run's LASTS
    parameter integer NT = 2,               // runs per period (at least 2)
    parameter integer TW = 1,               // holds NT - 1
    parameter [NT*SW-1:0] SRCS = 2'b10,     // per run, its stream (run 0 low)
    parameter [NT*CW-1:0] LASTS = 8'h21     // per run, its values minus one
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
    localparam integer TL = NT - 1;
    localparam [TW-1:0] RUN_LAST = TL[TW-1:0];
    reg [TW-1:0] t;
    reg [SW-1:0] sel;
    reg [CW-1:0] n;
    reg [CW-1:0] run_last;
    wire [TW-1:0] t_next = (t == RUN_LAST) ? {TW{1'b0}} : t + 1'b1;
    wire take = m_valid && m_ready;
    assign m_data = s_data[sel*DW +: DW];
    assign m_valid = s_valid[sel];
    assign s_want = {{NL{1'b0}}, 1'b1} << sel;
    assign s_ready = s_want & {NS{m_ready}};
    always @(posedge clk) begin
        if (rst) begin
            t <= {TW{1'b0}};
            sel <= SRCS[0 +: SW];
            n <= {CW{1'b0}};
            run_last <= LASTS[0 +: CW];
        end else if (take) begin
            if (n == run_last) begin
                n <= {CW{1'b0}};
                t <= t_next;
                sel <= SRCS[t_next*SW +: SW];
                run_last <= LASTS[t_next*CW +: CW];
            end else begin
                n <= n + 1'b1;
            end
        end
    end
endmodule
