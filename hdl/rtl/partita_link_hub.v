// partita library core: a device's link ports and their bookkeeping. NP receive ports
// (partita_link_rx) and NP transmit ports shared by the framer (partita_link_tx) and
// forwarding (partita_tx_arb); a transmit queue of TQ_DEPTH entries in front of the framer;
// the barrier count; sticky link errors with their counters and the first error's details;
// a wait timeout; and beat counters (a cycle behind the beats). Since reset: TX_BEATS counts
// beats of this device's own frames, FWD_BEATS beats it forwarded, RX_BEATS beats it received.
//
// Queue an entry {last of run, type, layer, parity, destination, value} with tq_push while
// !tq_full (an h entry's value holds EH h values, the first in the low bits). Received values come out per port (rv_*; take each with rv_ack, or rv_n of the
// rv_avail values left in the head beat rv_beat, from slot rv_vi, at once, or all of them with
// rv_all); a partial-sum frame that passed every check pulses ok_p with its count (rv_count)
// and source. bar_ok says
// every other device's barrier of this tick arrived; bar_take consumes them. `waiting` high
// for `timeout` cycles (non-zero) sets status bit 3. The device's identity (me, others,
// routes, hmasks, bc_fwd) comes in on ports held constant: a board ties them off and synthesis
// folds them, so devices that differ only in identity share one design (and one simulation
// model).
`timescale 1ns / 1ps
module partita_link_hub #(
    parameter integer NP = 1,           // link ports (1 or 2)
    parameter integer LW = 64,          // link beat width (32 to 512)
    parameter integer DW = 16,          // h value width
    parameter integer ACCW = 40,        // partial-sum width
    parameter integer NDEV = 2,         // devices (2 to 8)
    parameter integer NLAYERS = 1,      // layers (1 to 8)
    parameter integer LAYER_W = 1,      // width of layer indices (at most 3)
    parameter integer VPB_H = 4,        // h values per payload beat
    parameter integer VPB_P = 1,        // partial sums per payload beat
    parameter integer VPB_W = 2,        // width of a value-in-beat index
    parameter integer MAXV_H = 64,      // h values per frame at most
    parameter integer MAXV_P = 16,      // partial sums per frame at most
    parameter integer MAX_VALS = 64,    // largest count a received frame may carry
    parameter integer MAXB = 16,        // payload beats per frame at most
    parameter integer FB_W = 5,         // width of a payload beat count
    parameter integer FB_IX_W = 4,      // width of a payload beat index
    parameter integer RX_AW = 6,        // receive FIFO per port: 2^RX_AW beats
    parameter integer RX_DEPTH = 64,
    parameter integer TQ_AW = 6,        // transmit queue: 2^TQ_AW entries
    parameter integer TQ_DEPTH = 64,
    parameter integer EH = 1,           // h values per queue entry (divides VPB_H and MAXV_H)
    parameter integer QW = 40,          // queue entry value: max(ACCW, EH * DW)
    parameter integer TQ_W = 50,        // queue entry: 1 + 2 + LAYER_W + 1 + 3 + QW
    parameter integer BAR_W = 4,        // barrier counter
    parameter integer BCAST = 0         // ring broadcasts: h runs to every other device, barriers
) (
    input  wire                   clk,
    input  wire                   rst,
    // Identity: this device, every device but this one, the tx port of each destination (2 bits
    // each), per layer the devices its h values go to (8 bits each), and the sources whose ring
    // broadcasts this device forwards.
    input  wire [2:0]             me,
    input  wire [7:0]             others,
    input  wire [15:0]            routes,
    input  wire [63:0]            hmasks,
    input  wire [7:0]             bc_fwd,
    output wire [NP*LW-1:0]       tx_tdata,
    output wire [NP-1:0]          tx_tvalid,
    input  wire [NP-1:0]          tx_tready,
    output wire [NP-1:0]          tx_tlast,
    input  wire [NP*LW-1:0]       rx_tdata,
    input  wire [NP-1:0]          rx_tvalid,
    output wire [NP-1:0]          rx_tready,
    input  wire [NP-1:0]          rx_tlast,
    // Transmit queue.
    input  wire                   tq_push,
    input  wire [TQ_W-1:0]        tq_in,
    output wire                   tq_full,
    // tq_full's next value (tq_full a cycle later), for register copies of a producer's stall.
    output wire                   tq_full_n,
    output wire                   tx_idle,
    // Received values, per port.
    output wire [NP-1:0]          rv_valid,
    output wire [2*NP-1:0]        rv_type,
    output wire [3*NP-1:0]        rv_src,
    output wire [LAYER_W*NP-1:0]  rv_layer,
    output wire [NP-1:0]          rv_par,
    output wire [7*NP-1:0]        rv_count,
    output wire [ACCW*NP-1:0]     rv_data,
    input  wire [NP-1:0]          rv_ack,
    output wire [LW*NP-1:0]       rv_beat,
    output wire [VPB_W*NP-1:0]    rv_vi,
    output wire [7*NP-1:0]        rv_avail,
    input  wire [7*NP-1:0]        rv_n,
    input  wire [NP-1:0]          rv_all,
    output wire [NP-1:0]          ok_p,
    // Barriers.
    input  wire                   bar_take,
    output wire                   bar_ok,
    // Waits, errors and counters.
    input  wire                   waiting,
    input  wire [31:0]            timeout,
    output reg  [3:0]             status,
    output reg  [31:0]            crc_errs,
    output reg  [31:0]            seq_errs,
    output reg  [31:0]            fmt_errs,
    output reg  [31:0]            err_info,
    output reg  [31:0]            tx_beats,
    output reg  [31:0]            fwd_beats,
    output reg  [31:0]            rx_beats
);
    localparam integer OTHERS_I = NDEV - 1;
    localparam integer TQ_FULL_I = TQ_DEPTH - 3;
    localparam [BAR_W-1:0] OTHERS_N = OTHERS_I[BAR_W-1:0];
    localparam [TQ_AW:0] TQ_FULL = TQ_FULL_I[TQ_AW:0];

    // Transmit queue, two register slices (the framer reads a register, not the queue's memory
    // read; where the queue is a block RAM, the first slice can sit beside it and the second
    // beside the framer, so no net both leaves a block RAM's output and crosses the die), and
    // the framer.
    wire [TQ_AW:0] tq_count;
    wire [TQ_W-1:0] tq_head;
    wire tq_pop, fr_sending, fr_last, fr_idle;
    wire [1:0] fr_port;
    wire [LW-1:0] fr_data;
    // The framer's beats pass a register slice of their own on the way to the port arbiter:
    // the framer's send state, frame-buffer read and header select end at flip-flops beside
    // it, and its `go` is the slice's registered ready, so neither the arbiter's grant nor a
    // transmit slice's enables start at the framer's state.
    wire fs_valid, fs_last, fs_go, fs_ready;
    wire [1:0] fs_port;
    wire [LW-1:0] fs_data;
    wire tq_valid = (tq_count != {(TQ_AW + 1){1'b0}});
    wire tq_ready, hq_valid, hq_last, hm_valid, hm_ready, hm_last;
    wire [TQ_W-2:0] hq, hm;
    // A register, so no compare sits in front of the producers' stall: it reflects the count a
    // cycle earlier, and the margin covers the one push per cycle it may then still allow.
    reg tq_full_r;
    assign tq_full_n = (tq_count >= TQ_FULL);
    always @(posedge clk) begin
        if (rst) tq_full_r <= 1'b0;
        else tq_full_r <= tq_full_n;
    end
    assign tq_full = tq_full_r;
    assign tx_idle = !tq_valid && !hm_valid && !hq_valid && fr_idle && !fs_valid;
    partita_fifo #(.W(TQ_W), .AW(TQ_AW), .DEPTH(TQ_DEPTH)) u_txq (
        .clk(clk), .rst(rst), .push(tq_push), .din(tq_in), .pop(tq_valid && tq_ready),
        .dout(tq_head), .count(tq_count)
    );
    partita_skid #(.W(TQ_W - 1)) u_tq_slice (
        .clk(clk), .rst(rst),
        .s_tdata(tq_head[TQ_W-2:0]), .s_tvalid(tq_valid), .s_tready(tq_ready),
        .s_tlast(tq_head[TQ_W-1]),
        .m_tdata(hm), .m_tvalid(hm_valid), .m_tready(hm_ready), .m_tlast(hm_last)
    );
    partita_skid #(.W(TQ_W - 1)) u_tq_slice2 (
        .clk(clk), .rst(rst),
        .s_tdata(hm), .s_tvalid(hm_valid), .s_tready(hm_ready), .s_tlast(hm_last),
        .m_tdata(hq), .m_tvalid(hq_valid), .m_tready(tq_pop), .m_tlast(hq_last)
    );
    wire [LAYER_W-1:0] q_layer = hq[TQ_W-4 -: LAYER_W];
    partita_link_tx #(
        .LW(LW), .DW(DW), .ACCW(ACCW), .LAYER_W(LAYER_W), .VPB_H(VPB_H),
        .VPB_P(VPB_P), .VPB_W(VPB_W), .MAXV_H(MAXV_H), .MAXV_P(MAXV_P), .MAXB(MAXB),
        .FB_W(FB_W), .FB_IX_W(FB_IX_W), .EH(EH), .QW(QW), .BCAST(BCAST)
    ) u_tx (
        .clk(clk), .rst(rst), .me(me), .others(others), .routes(routes), .q_empty(!hq_valid), .q_last(hq_last),
        .q_type(hq[TQ_W-2 -: 2]), .q_layer(q_layer), .q_par(hq[QW+3]),
        .q_dst(hq[QW+2 -: 3]), .q_val(hq[QW-1:0]),
        .q_hmask(hmasks[q_layer*8 +: 8]), .q_pop(tq_pop), .sending(fr_sending),
        .port(fr_port), .data(fr_data), .last(fr_last), .go(fs_ready), .idle(fr_idle)
    );
    partita_skid #(.W(LW + 2)) u_fr_slice (
        .clk(clk), .rst(rst),
        .s_tdata({fr_port, fr_data}), .s_tvalid(fr_sending), .s_tready(fs_ready),
        .s_tlast(fr_last),
        .m_tdata({fs_port, fs_data}), .m_tvalid(fs_valid), .m_tready(fs_go), .m_tlast(fs_last)
    );

    // Receive ports.
    wire [NP-1:0] fwd_valid, fwd_last, fwd_go, rx_beat, ok_b, e_crc_p, e_seq_p, e_fmt_p;
    wire [2*NP-1:0] fwd_port;
    wire [NP*LW-1:0] fwd_data;
    wire [32*NP-1:0] e_info_p;
    // The ports' error pulses and details, registered once more here: a port's error
    // registers stay beside its checks, and the counters, status and detail capture below
    // start from flip-flops of their own (errors count a cycle later).
    reg [NP-1:0] e_crc, e_seq, e_fmt;
    reg [32*NP-1:0] e_info;
    always @(posedge clk) begin
        if (rst) begin
            e_crc <= {NP{1'b0}};
            e_seq <= {NP{1'b0}};
            e_fmt <= {NP{1'b0}};
        end else begin
            e_crc <= e_crc_p;
            e_seq <= e_seq_p;
            e_fmt <= e_fmt_p;
        end
        e_info <= e_info_p;
    end
    genvar p;
    generate
        for (p = 0; p < NP; p = p + 1) begin : g_rx
            partita_link_rx #(
                .LW(LW), .DW(DW), .ACCW(ACCW), .NDEV(NDEV), .NLAYERS(NLAYERS),
                .LAYER_W(LAYER_W), .VPB_H(VPB_H), .VPB_P(VPB_P), .VPB_W(VPB_W),
                .MAX_VALS(MAX_VALS), .AW(RX_AW), .DEPTH(RX_DEPTH), .BCAST(BCAST)
            ) u_rx (
                .clk(clk), .rst(rst), .me(me), .routes(routes), .bc_fwd(bc_fwd), .rx_tdata(rx_tdata[p*LW +: LW]), .rx_tvalid(rx_tvalid[p]),
                .rx_tready(rx_tready[p]), .rx_tlast(rx_tlast[p]), .rx_beat(rx_beat[p]),
                .f_type(rv_type[2*p +: 2]), .f_src(rv_src[3*p +: 3]),
                .f_layer(rv_layer[LAYER_W*p +: LAYER_W]), .f_par(rv_par[p]),
                .f_count(rv_count[7*p +: 7]), .v_valid(rv_valid[p]),
                .v_data(rv_data[ACCW*p +: ACCW]), .v_ack(rv_ack[p]), .v_beat(rv_beat[p*LW +: LW]),
                .v_vi(rv_vi[VPB_W*p +: VPB_W]), .v_avail(rv_avail[7*p +: 7]), .v_n(rv_n[7*p +: 7]),
                .v_all(rv_all[p]), .ok_p(ok_p[p]),
                .ok_b(ok_b[p]), .e_crc(e_crc_p[p]), .e_seq(e_seq_p[p]), .e_fmt(e_fmt_p[p]),
                .e_info(e_info_p[32*p +: 32]), .fwd_valid(fwd_valid[p]),
                .fwd_port(fwd_port[2*p +: 2]), .fwd_data(fwd_data[p*LW +: LW]),
                .fwd_last(fwd_last[p]), .fwd_go(fwd_go[p])
            );
        end
    endgenerate

    // Transmit ports: the arbiter, then a register slice (partita_skid) per port, so the link
    // pins drive and are driven by flip-flops only.
    wire [NP-1:0] tx_beat, tx_own;
    wire [NP*LW-1:0] a_tdata;
    wire [NP-1:0] a_tvalid, a_tready, a_tlast;
    partita_tx_arb #(.NP(NP), .LW(LW)) u_arb (
        .clk(clk), .rst(rst), .fr_valid(fs_valid), .fr_port(fs_port), .fr_data(fs_data),
        .fr_last(fs_last), .fr_go(fs_go), .fwd_valid(fwd_valid), .fwd_port(fwd_port),
        .fwd_data(fwd_data), .fwd_last(fwd_last), .fwd_go(fwd_go), .tx_tdata(a_tdata),
        .tx_tvalid(a_tvalid), .tx_tready(a_tready), .tx_tlast(a_tlast), .tx_beat(tx_beat),
        .tx_own(tx_own)
    );
    generate
        for (p = 0; p < NP; p = p + 1) begin : g_tx
            partita_skid #(.W(LW)) u_slice (
                .clk(clk), .rst(rst), .s_tdata(a_tdata[p*LW +: LW]), .s_tvalid(a_tvalid[p]),
                .s_tready(a_tready[p]), .s_tlast(a_tlast[p]), .m_tdata(tx_tdata[p*LW +: LW]),
                .m_tvalid(tx_tvalid[p]), .m_tready(tx_tready[p]), .m_tlast(tx_tlast[p])
            );
        end
    endgenerate

    // Barriers, waits, errors and counters.
    reg [BAR_W-1:0] bar_cnt;
    reg [31:0] wd;
    assign bar_ok = (bar_cnt >= OTHERS_N);
    integer ep;
    // Set bits of v, for the counters (NP is 1 or 2).
    function [31:0] ones(input [NP-1:0] v);
        integer n;
        begin
            ones = 32'd0;
            for (n = 0; n < NP; n = n + 1) ones = ones + {31'd0, v[n]};
        end
    endfunction
    function [BAR_W-1:0] bars(input [NP-1:0] v);
        integer n;
        begin
            bars = {BAR_W{1'b0}};
            for (n = 0; n < NP; n = n + 1) bars = bars + {{(BAR_W - 1){1'b0}}, v[n]};
        end
    endfunction
    // The beat counters count a cycle late, from registered beat flags, so the handshakes
    // (the arbiter's grant, a receive FIFO's count) end at flip-flops beside them, not at
    // 32-bit adders wherever the counters are placed.
    // The watchdog likewise counts from a registered `waiting` (the node's state decodes it;
    // a timeout then fires a cycle later), and its 32-bit compare with the timeout is
    // registered (wd_hit) before it reaches the status and error-detail enables: a timeout is
    // reported one cycle after the count reaches it.
    reg [NP-1:0] txo_q, txf_q, rxb_q;
    reg wait_q, wd_hit;
    always @(posedge clk) begin
        if (rst) begin
            wait_q <= 1'b0;
            wd_hit <= 1'b0;
            txo_q <= {NP{1'b0}};
            txf_q <= {NP{1'b0}};
            rxb_q <= {NP{1'b0}};
        end else begin
            wait_q <= waiting;
            wd_hit <= (timeout != 32'd0) && (wd >= timeout);
            txo_q <= tx_beat & tx_own;
            txf_q <= tx_beat & ~tx_own;
            rxb_q <= rx_beat;
        end
    end
    always @(posedge clk) begin
        if (rst) begin
            bar_cnt <= {BAR_W{1'b0}};
            wd <= 32'd0;
            status <= 4'd0;
            crc_errs <= 32'd0;
            seq_errs <= 32'd0;
            fmt_errs <= 32'd0;
            err_info <= 32'd0;
            tx_beats <= 32'd0;
            fwd_beats <= 32'd0;
            rx_beats <= 32'd0;
        end else begin
            bar_cnt <= bar_cnt + bars(ok_b) - (bar_take ? OTHERS_N : {BAR_W{1'b0}});
            wd <= wait_q ? wd + 32'd1 : 32'd0;
            crc_errs <= crc_errs + ones(e_crc);
            seq_errs <= seq_errs + ones(e_seq);
            fmt_errs <= fmt_errs + ones(e_fmt);
            tx_beats <= tx_beats + ones(txo_q);
            fwd_beats <= fwd_beats + ones(txf_q);
            rx_beats <= rx_beats + ones(rxb_q);
            // The first error's details; later ports win a tie, as do errors over a timeout.
            for (ep = 0; ep < NP; ep = ep + 1) begin
                if ((e_crc[ep] || e_seq[ep] || e_fmt[ep]) && status == 4'd0) err_info <= e_info[32*ep +: 32];
                status <= status | {1'b0, |e_fmt, |e_seq, |e_crc};
            end
            if (wd_hit) begin
                if (status == 4'd0) err_info <= {4'd4, 28'd0};
                status <= status | {1'b0, |e_fmt, |e_seq, |e_crc} | 4'b1000;
            end
        end
    end
endmodule
