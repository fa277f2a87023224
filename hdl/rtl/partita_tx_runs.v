// partita library core: several runs of values sharing a link hub's transmit queue, whole
// frames at a time. Each of NR runs (a device's halo rows up or down, its output) first fills a
// staging FIFO of its own (partita_sfifo, 128 entries), marking where each of its frames ends:
// at the run's last value, or every MAXV values, where the framer splits a run. The queue then
// takes whole frames, one run's at a time (the framer packs a frame from consecutive entries):
// a run with a whole frame staged is free when no run before it has one (fixed priority, run 0
// first), and once the queue has taken a frame's first entry it stays with that run until the
// frame's end. So no run waits for another run's data, and frames never mix.
//
// Run k's values come in on value[k*DW +: DW] (sign-extended to DW) with want[k] and last[k]
// (its run's last value); grant[k] says the value was taken. Its frames go to device
// DSTS[k*3 +: 3] with layer tag TAGS[k*3 +: 3]. The queue entry is the hub's:
// {end of run, type h (2'd0), layer, parity 0, destination, value}.
`timescale 1ns / 1ps
module partita_tx_runs #(
    parameter integer NR = 2,
    parameter integer DW = 16,
    parameter integer OWN_W = 1,            // holds NR - 1
    parameter integer MAXV = 64,            // values per frame at most (1 to 128)
    parameter [NR*3-1:0] TAGS = 6'o10,
    parameter [NR*3-1:0] DSTS = 6'o10
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [NR-1:0]    want,
    input  wire [NR-1:0]    last,
    input  wire [NR*DW-1:0] value,
    output wire [NR-1:0]    grant,
    input  wire             tq_full,
    output wire             tq_push,
    output wire [DW+9:0]    tq_entry
);
    localparam integer ML = MAXV - 1;
    localparam [6:0] MAXV_LAST = ML[6:0];
    wire [NR-1:0] has_frame, qv, pop;
    wire [NR*(DW+10)-1:0] entries;
    reg lock;
    reg [OWN_W-1:0] owner;
    genvar k;
    generate
        for (k = 0; k < NR; k = k + 1) begin : g_run
            localparam [OWN_W-1:0] ME = k;
            wire in_ready;
            wire [DW:0] q;
            reg [6:0] cnt;
            reg [7:0] frames;
            wire push = want[k] && in_ready;
            wire fe = last[k] || (cnt == MAXV_LAST);
            // Free when no run before it has a whole frame staged.
            wire free;
            if (k == 0) begin : g_first
                assign free = has_frame[0];
            end else begin : g_later
                assign free = has_frame[k] && !(|has_frame[k-1:0]);
            end
            wire sel = lock ? (owner == ME) : free;
            assign grant[k] = push;
            assign has_frame[k] = (frames != 8'd0);
            assign pop[k] = sel && qv[k] && !tq_full;
            assign entries[k*(DW+10) +: DW+10] =
                {q[DW], 2'd0, TAGS[k*3 +: 3], 1'b0, DSTS[k*3 +: 3], q[DW-1:0]} & {(DW+10){pop[k]}};
            partita_sfifo #(.W(DW + 1), .AW(7), .DEPTH(128)) u_stage (
                .clk(clk), .rst(rst), .s_data({fe, value[k*DW +: DW]}), .s_valid(push), .s_ready(in_ready),
                .m_data(q), .m_valid(qv[k]), .m_ready(pop[k])
            );
            always @(posedge clk) begin
                if (rst) begin
                    cnt <= 7'd0;
                    frames <= 8'd0;
                end else begin
                    if (push) cnt <= fe ? 7'd0 : cnt + 7'd1;
                    frames <= frames + {7'd0, push && fe} - {7'd0, pop[k] && q[DW]};
                end
            end
        end
    endgenerate
    // At most one run pops in a cycle (the lock's owner, or the one free run): the entry is the
    // OR of the runs' masked entries, the owner the popping run's index.
    reg [DW+9:0] entry;
    reg [OWN_W-1:0] popper;
    integer j;
    always @(*) begin
        entry = {(DW+10){1'b0}};
        popper = {OWN_W{1'b0}};
        for (j = 0; j < NR; j = j + 1) begin
            entry = entry | entries[j*(DW+10) +: DW+10];
            if (pop[j]) popper = j[OWN_W-1:0];
        end
    end
    assign tq_push = |pop;
    assign tq_entry = entry;
    always @(posedge clk) begin
        if (rst) begin
            lock <= 1'b0;
            owner <= {OWN_W{1'b0}};
        end else if (tq_push) begin
            lock <= !entry[DW+9];
            owner <= popper;
        end
    end
endmodule
