// partita library core: the gather of a CNN stack split over a chain of devices. Per period it
// passes LOCAL values of this device's own stream, then REMOTE values from the link (what the
// devices after it in the chain sent); after PERIODS periods, TAIL more values from the link.
// The own values wait in a block-RAM FIFO of DEPTH entries (partita_sfifo, a frame's worth),
// so the device's stages run on while the gather passes the remote values. With the counts the
// architecture gives, the output is the gathered map in raster order: a row strip is one
// period (its rows, then every strip below); a slice of channels is one period per pixel (its
// channels, then those of the devices after it); a tile of a grid is one period per output row
// of the tile (its columns, then those of the tiles to its right), then the whole rows of the
// tile rows below as the tail.
//
// LOCAL is at least 1. CW holds max(LOCAL, REMOTE, TAIL) - 1 and PW holds PERIODS - 1 (the
// period counter exists only with a tail). The output mux is combinational on a registered
// phase: the link side's valid and data pass through in the remote phases.
`timescale 1ns / 1ps
module partita_gather #(
    parameter integer DW = 16,
    parameter integer AW = 4,
    parameter integer DEPTH = 16,
    parameter integer CW = 2,
    parameter integer PW = 1,
    parameter integer LOCAL = 3,
    parameter integer REMOTE = 2,
    parameter integer PERIODS = 2,
    parameter integer TAIL = 0
) (
    input  wire          clk,
    input  wire          rst,
    // This device's own values.
    input  wire [DW-1:0] s_data,
    input  wire          s_valid,
    output wire          s_ready,
    // Values from the link; r_take takes the head.
    input  wire [DW-1:0] r_data,
    input  wire          r_valid,
    output wire          r_take,
    // High in a link run: the gather waits on the link when r_valid is low.
    output wire          r_want,
    // The gathered stream.
    output wire [DW-1:0] m_data,
    output wire          m_valid,
    input  wire          m_ready
);
    localparam integer LL = LOCAL - 1;
    localparam integer RL = (REMOTE > 0) ? REMOTE - 1 : 0;
    localparam integer TL = (TAIL > 0) ? TAIL - 1 : 0;
    localparam [CW-1:0] LOCAL_LAST = LL[CW-1:0];
    localparam [CW-1:0] REMOTE_LAST = RL[CW-1:0];
    localparam [CW-1:0] TAIL_LAST = TL[CW-1:0];
    localparam [CW-1:0] POS_ONE = 1;
    localparam [1:0] OWN = 2'd0, REM = 2'd1, TLP = 2'd2;
    reg [1:0] phase;
    reg [CW-1:0] pos;
    wire remote = (phase != OWN);
    wire [DW-1:0] l_data;
    wire l_valid;
    partita_sfifo #(.W(DW), .AW(AW), .DEPTH(DEPTH)) u_local (
        .clk(clk), .rst(rst), .s_data(s_data), .s_valid(s_valid), .s_ready(s_ready),
        .m_data(l_data), .m_valid(l_valid), .m_ready(!remote && m_ready)
    );
    assign m_data = remote ? r_data : l_data;
    assign m_valid = remote ? r_valid : l_valid;
    assign r_take = remote && r_valid && m_ready;
    assign r_want = remote;
    wire step = m_valid && m_ready;
    wire run_end = (phase == OWN) ? (pos == LOCAL_LAST)
                 : (phase == REM) ? (pos == REMOTE_LAST) : (pos == TAIL_LAST);
    // A period ends with its remote run (or its own one when it has no remote values).
    wire period_end = run_end && ((phase == REM) || ((phase == OWN) && (REMOTE == 0)));
    wire per_last;
    generate
        if (TAIL > 0) begin : g_periods
            localparam integer PL = PERIODS - 1;
            localparam [PW-1:0] PER_LAST = PL[PW-1:0];
            localparam [PW-1:0] PER_ONE = 1;
            reg [PW-1:0] per;
            assign per_last = (per == PER_LAST);
            always @(posedge clk) begin
                if (rst) per <= {PW{1'b0}};
                else if (step && period_end) per <= per_last ? {PW{1'b0}} : per + PER_ONE;
            end
        end else begin : g_no_tail
            assign per_last = 1'b0;
        end
    endgenerate
    always @(posedge clk) begin
        if (rst) begin
            phase <= OWN;
            pos <= {CW{1'b0}};
        end else if (step) begin
            if (run_end) begin
                pos <= {CW{1'b0}};
                if (phase == OWN && REMOTE > 0) phase <= REM;
                else if (period_end && per_last) phase <= TLP;
                else phase <= OWN;
            end else begin
                pos <= pos + POS_ONE;
            end
        end
    end
endmodule
