// Self-checking testbench of partita_link_hub: two hubs (devices 0 and 1) wired port to port.
// Each queues runs of h values, partial sums and barriers for the other; every value must
// arrive once, in order, with its type, source, layer and parity; partial-sum frames commit
// with their counts; barriers raise bar_ok until taken; beats sent equal beats received.
// Then one bit is flipped on the wire: the receiver must count a CRC error, set status bit 0
// and record it in err_info, and a wait timeout must set status bit 3. Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_link_hub_tb;
    localparam integer LW = 64, DW = 16, ACCW = 40, LAYER_W = 1, TQ_W = 1 + 2 + 1 + 1 + 3 + 40;
    localparam integer NA = 70 + 20 + 1, NB = 5 + 1, NX = 3;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    // Queue entries of each hub: {last, type, layer, parity, destination, value}.
    reg [TQ_W-1:0] qa [0:NA+NX-1];
    reg [TQ_W-1:0] qb [0:NB-1];
    reg push_a = 1'b0, push_b = 1'b0;
    reg [TQ_W-1:0] in_a = {TQ_W{1'b0}}, in_b = {TQ_W{1'b0}};
    wire full_a, full_b, idle_a, idle_b, fulln_a, fulln_b;
    // tq_full must follow tq_full_n a cycle later (outside reset).
    reg fulln_a_q = 1'b0, fulln_b_q = 1'b0, rst_q = 1'b1;
    integer full_bad = 0;
    always @(posedge clk) begin
        fulln_a_q <= fulln_a;
        fulln_b_q <= fulln_b;
        rst_q <= rst;
    end
    always @(negedge clk) if (!rst && !rst_q && (full_a !== fulln_a_q || full_b !== fulln_b_q)) full_bad <= full_bad + 1;
    wire [LW-1:0] a2b, b2a;
    wire v_a2b, v_b2a, l_a2b, l_b2a, r_a2b, r_b2a;
    reg flip = 1'b0;
    wire va_valid, vb_valid, okp_a, okp_b, bok_a, bok_b;
    wire [1:0] va_type, vb_type;
    wire [2:0] va_src, vb_src;
    wire va_layer, vb_layer, va_par, vb_par;
    wire [6:0] va_count, vb_count;
    wire [ACCW-1:0] va_data, vb_data;
    // Values are taken one at a time here (partita_link_rx_tb takes runs).
    wire [LW-1:0] va_beat, vb_beat;
    wire [1:0] va_vi, vb_vi;
    wire [6:0] va_avail, vb_avail;
    wire unused_runs = &{1'b0, va_beat, vb_beat, va_vi, vb_vi, va_avail, vb_avail};
    reg ack_a = 1'b0, ack_b = 1'b0, take_a = 1'b0, take_b = 1'b0, wait_b = 1'b0;
    wire [3:0] st_a, st_b;
    wire [31:0] crc_a, crc_b, seq_a, seq_b, fmt_a, fmt_b, info_a, info_b;
    wire [31:0] txb_a, txb_b, fwd_a, fwd_b, rxb_a, rxb_b;
    partita_link_hub #(
        .NP(1), .LW(LW), .DW(DW), .ACCW(ACCW), .NDEV(2), .NLAYERS(2),
        .LAYER_W(LAYER_W), .TQ_W(TQ_W), .BAR_W(3)
    ) hub_a (
        .clk(clk), .rst(rst), .me(3'd0), .others(8'b10), .routes(16'h0000),
        .hmasks(64'h0202), .bc_fwd(8'h00), .tx_tdata(a2b), .tx_tvalid(v_a2b), .tx_tready(r_a2b),
        .tx_tlast(l_a2b), .rx_tdata(b2a), .rx_tvalid(v_b2a), .rx_tready(r_b2a), .rx_tlast(l_b2a),
        .tq_push(push_a), .tq_in(in_a), .tq_full(full_a), .tq_full_n(fulln_a), .tx_idle(idle_a),
        .rv_valid(va_valid), .rv_type(va_type), .rv_src(va_src), .rv_layer(va_layer),
        .rv_par(va_par), .rv_count(va_count), .rv_data(va_data), .rv_ack(ack_a), .rv_beat(va_beat),
        .rv_vi(va_vi), .rv_avail(va_avail), .rv_n(7'd0), .rv_all(1'b0), .ok_p(okp_a),
        .bar_take(take_a), .bar_ok(bok_a), .waiting(1'b0), .timeout(32'd0), .status(st_a),
        .crc_errs(crc_a), .seq_errs(seq_a), .fmt_errs(fmt_a), .err_info(info_a),
        .tx_beats(txb_a), .fwd_beats(fwd_a), .rx_beats(rxb_a)
    );
    partita_link_hub #(
        .NP(1), .LW(LW), .DW(DW), .ACCW(ACCW), .NDEV(2), .NLAYERS(2),
        .LAYER_W(LAYER_W), .TQ_W(TQ_W), .BAR_W(3)
    ) hub_b (
        .clk(clk), .rst(rst), .me(3'd1), .others(8'b01), .routes(16'h0000),
        .hmasks(64'h0101), .bc_fwd(8'h00), .tx_tdata(b2a), .tx_tvalid(v_b2a), .tx_tready(r_b2a),
        .tx_tlast(l_b2a), .rx_tdata(a2b ^ {{(LW-1){1'b0}}, flip}), .rx_tvalid(v_a2b),
        .rx_tready(r_a2b), .rx_tlast(l_a2b),
        .tq_push(push_b), .tq_in(in_b), .tq_full(full_b), .tq_full_n(fulln_b), .tx_idle(idle_b),
        .rv_valid(vb_valid), .rv_type(vb_type), .rv_src(vb_src), .rv_layer(vb_layer),
        .rv_par(vb_par), .rv_count(vb_count), .rv_data(vb_data), .rv_ack(ack_b), .rv_beat(vb_beat),
        .rv_vi(vb_vi), .rv_avail(vb_avail), .rv_n(7'd0), .rv_all(1'b0), .ok_p(okp_b),
        .bar_take(take_b), .bar_ok(bok_b), .waiting(wait_b), .timeout(32'd20), .status(st_b),
        .crc_errs(crc_b), .seq_errs(seq_b), .fmt_errs(fmt_b), .err_info(info_b),
        .tx_beats(txb_b), .fwd_beats(fwd_b), .rx_beats(rxb_b)
    );
    integer i, n, ia = 0, ib = 0, ra = 0, rb = 0, errors = 0, okp_seen = 0, okp_sum = 0;
    integer bars_a = 0, bars_b = 0;
    reg [31:0] lfsr = 32'h1234;
    reg [ACCW-1:0] v;
    task check(input cond, input [8*40-1:0] what);
        begin
            if (!cond) begin
                if (errors < 5) $display("FAIL: %0s", what);
                errors = errors + 1;
            end
        end
    endtask
    initial begin
        // Hub A: 70 h values of layer 0 (parity 1), 20 partial sums of layer 1 for device 1,
        // a barrier; later 3 h values for the damaged frame. Hub B: 5 h values of layer 1, a barrier.
        for (i = 0; i < 70; i = i + 1) qa[i] = {i == 69, 2'd0, 1'b0, 1'b1, 3'd0, 24'd0, i[15:0] * 16'd977};
        for (i = 0; i < 20; i = i + 1) qa[70 + i] = {i == 19, 2'd1, 1'b1, 1'b0, 3'd1, 8'd0, i[15:0] * 16'd31, 16'd7};
        qa[90] = {1'b1, 2'd2, 1'b0, 1'b0, 3'd0, 40'd0};
        for (i = 0; i < NX; i = i + 1) qa[91 + i] = {i == NX - 1, 2'd0, 1'b1, 1'b0, 3'd0, 24'd0, 16'hAB00 + i[15:0]};
        for (i = 0; i < 5; i = i + 1) qb[i] = {i == 4, 2'd0, 1'b1, 1'b0, 3'd0, 24'd0, 16'h5000 + i[15:0]};
        qb[5] = {1'b1, 2'd2, 1'b0, 1'b0, 3'd0, 40'd0};
        repeat (3) @(negedge clk);
        rst = 1'b0;
        for (n = 0; n < 20000 && !(ia == NA && ib == NB && ra == 5 && rb == 90 && bars_a == 1 && bars_b == 1 && idle_a && idle_b); n = n + 1) begin
            @(negedge clk);
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            push_a = (ia < NA) && !full_a && lfsr[0];
            in_a = qa[ia < NA ? ia : 0];
            push_b = (ib < NB) && !full_b && lfsr[1];
            in_b = qb[ib < NB ? ib : 0];
            ack_a = lfsr[2] || lfsr[3];
            ack_b = lfsr[4] || lfsr[5];
            take_a = bok_a && lfsr[6];
            take_b = bok_b && lfsr[7];
            #1;
            if (push_a) ia = ia + 1;
            if (push_b) ib = ib + 1;
            if (vb_valid && ack_b) begin
                if (rb < 70) v = {24'd0, rb[15:0] * 16'd977};
                else v = {8'd0, rb[15:0] * 16'd31 - 16'd2170, 16'd7};
                check(vb_src == 3'd0 && vb_data == v && vb_type == (rb < 70 ? 2'd0 : 2'd1)
                      && vb_layer == (rb >= 70) && vb_par == (rb < 70), "value at device 1");
                rb = rb + 1;
            end
            if (va_valid && ack_a) begin
                check(va_src == 3'd1 && va_type == 2'd0 && va_layer && !va_par
                      && va_data == {24'd0, 16'h5000 + ra[15:0]}, "value at device 0");
                ra = ra + 1;
            end
            if (okp_b) begin
                okp_seen = okp_seen + 1;
                okp_sum = okp_sum + {25'd0, vb_count};
                check(vb_src == 3'd0 && vb_layer, "partial-sum commit");
            end
            check(!okp_a, "no partial sums at device 0");
            if (take_a) bars_a = bars_a + 1;
            if (take_b) bars_b = bars_b + 1;
        end
        @(negedge clk);
        take_a = 1'b0;
        take_b = 1'b0;
        check(rb == 90 && ra == 5 && okp_seen == 2 && okp_sum == 20, "everything arrived");
        check(bars_a == 1 && bars_b == 1 && !bok_a && !bok_b, "one barrier each, taken");
        check(txb_a == rxb_b && txb_b == rxb_a && txb_a > 0 && fwd_a == 0, "beat counters");
        check(st_a == 0 && st_b == 0 && crc_b == 0 && seq_b == 0 && fmt_b == 0, "no errors");
        check(full_bad == 0, "tq_full is tq_full_n a cycle later");
        // A damaged frame: flip bit 0 of its second beat on the wire.
        ack_b = 1'b1;
        i = 0;
        for (n = 0; n < 2000 && crc_b == 0; n = n + 1) begin
            @(negedge clk);
            push_a = (ia < NA + NX) && !full_a;
            in_a = qa[ia < NA + NX ? ia : 0];
            flip = 1'b0;
            #1;
            if (push_a) ia = ia + 1;
            if (v_a2b && r_a2b) begin
                i = i + 1;
                flip = (i == 2);
            end
        end
        push_a = 1'b0;
        flip = 1'b0;
        check(crc_b == 32'd1 && st_b[0] && info_b[31:28] == 4'd1 && info_b[26:24] == 3'd0,
              "CRC error reported");
        // A wait longer than the timeout sets status bit 3 and keeps the first error's details.
        wait_b = 1'b1;
        repeat (25) @(negedge clk);
        check(st_b[3] && info_b[31:28] == 4'd1, "timeout flagged");
        if (errors == 0) $display("PASS: 95 values, 2 partial-sum frames, 2 barriers, a CRC error and a timeout");
        else $display("FAIL: %0d checks failed", errors);
        $finish;
    end
    wire unused_tb = &{1'b0, va_count, seq_a, fmt_a, crc_a, info_a, fwd_b, info_b};
endmodule
