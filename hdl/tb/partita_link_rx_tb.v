// Self-checking testbench of partita_link_rx: streams the beats of rx_in.hex ({tlast, tdata}
// per line: good frames, frames for other devices, and damaged ones) with random gaps, takes
// values (one at a time, or all or part of a beat's run at once) and forwarded beats with
// random handshakes, and checks, in order, every value
// ({type, source, layer, parity, value}), every committed frame ({barrier, source, layer,
// count}), every error ({kind, LINK_ERR_INFO}) and every forwarded beat ({port, tlast, tdata})
// against the lists the Rust reference model of tests/tests/cores.rs expects. Prints PASS or
// FAIL.
`timescale 1ns / 1ps
module partita_link_rx_tb;
    parameter integer LW = 64;
    parameter integer DW = 16;
    parameter integer ACCW = 40;
    parameter integer ME = 1;
    parameter integer NDEV = 4;
    parameter integer NLAYERS = 3;
    parameter integer LAYER_W = 2;
    parameter integer VPB_H = 4;
    parameter integer VPB_P = 1;
    parameter integer VPB_W = 2;
    parameter integer MAX_VALS = 64;
    parameter [15:0] ROUTES = 16'h0050;
    parameter integer AW = 3;
    parameter integer DEPTH = 8;
    parameter integer NI = 1;
    parameter integer NV = 1;
    parameter integer NC = 1;
    parameter integer NE = 1;
    parameter integer NF = 1;
    parameter integer BCAST = 0;
    parameter [31:0] SEED = 32'h7a11;  // the input and reader timing (an LFSR)
    parameter [7:0] BC_FWD = 8'h00;
    localparam [2:0] ME3 = ME[2:0];
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [LW:0] beats [0:NI-1];
    reg [ACCW+8:0] want_v [0:NV-1];
    reg [13:0] want_c [0:NC-1];
    reg [33:0] want_e [0:NE-1];
    reg [LW+2:0] want_f [0:NF-1];
    reg [LW-1:0] rx_tdata = {LW{1'b0}};
    reg rx_tvalid = 1'b0, rx_tlast = 1'b0, v_ack = 1'b0, fwd_go = 1'b0;
    wire rx_tready, rx_beat, v_valid, ok_p, ok_b, e_crc, e_seq, e_fmt, fwd_valid, fwd_last, f_par;
    wire [1:0] f_type, fwd_port;
    wire [2:0] f_src;
    wire [LAYER_W-1:0] f_layer;
    wire [6:0] f_count;
    wire [ACCW-1:0] v_data;
    wire [LW-1:0] v_beat;
    wire [VPB_W-1:0] v_vi;
    wire [6:0] v_avail;
    reg [6:0] v_n = 7'd0;
    reg v_all = 1'b0;
    reg [6:0] took_n;
    reg [ACCW-1:0] rv;
    wire [31:0] e_info;
    wire [LW-1:0] fwd_data;
    partita_link_rx #(
        .LW(LW), .DW(DW), .ACCW(ACCW), .NDEV(NDEV), .NLAYERS(NLAYERS),
        .LAYER_W(LAYER_W), .VPB_H(VPB_H), .VPB_P(VPB_P), .VPB_W(VPB_W), .MAX_VALS(MAX_VALS),
        .AW(AW), .DEPTH(DEPTH), .BCAST(BCAST)
    ) dut (
        .clk(clk), .rst(rst), .me(ME3), .routes(ROUTES), .bc_fwd(BC_FWD), .rx_tdata(rx_tdata), .rx_tvalid(rx_tvalid),
        .rx_tready(rx_tready), .rx_tlast(rx_tlast), .rx_beat(rx_beat), .f_type(f_type),
        .f_src(f_src), .f_layer(f_layer), .f_par(f_par), .f_count(f_count),
        .v_valid(v_valid), .v_data(v_data), .v_ack(v_ack), .v_beat(v_beat),
        .v_vi(v_vi), .v_avail(v_avail), .v_n(v_n), .v_all(v_all), .ok_p(ok_p), .ok_b(ok_b),
        .e_crc(e_crc), .e_seq(e_seq), .e_fmt(e_fmt), .e_info(e_info),
        .fwd_valid(fwd_valid), .fwd_port(fwd_port), .fwd_data(fwd_data),
        .fwd_last(fwd_last), .fwd_go(fwd_go)
    );
    wire [2:0] layer3 = {{(3 - LAYER_W){1'b0}}, f_layer};
    integer ii = 0, vi = 0, ci = 0, ei = 0, fi = 0, errors = 0, beats_in = 0, n, k, slot, runs = 0;
    reg [31:0] lfsr = SEED;
    task fail(input [8*8-1:0] what, input integer index);
        begin
            if (errors < 5) $display("FAIL: %0s %0d differs from the reference", what, index);
            errors = errors + 1;
        end
    endtask
    initial begin
        $readmemh("rx_in.hex", beats);
        $readmemh("rx_values.hex", want_v);
        $readmemh("rx_commits.hex", want_c);
        $readmemh("rx_errors.hex", want_e);
        $readmemh("rx_forwards.hex", want_f);
        repeat (3) @(negedge clk);
        rst = 1'b0;
        for (n = 0; n < 100 * NI && !(ii == NI && vi == NV && ci == NC && ei == NE && fi == NF); n = n + 1) begin
            @(negedge clk);
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            rx_tvalid = (ii < NI) && (lfsr[0] || lfsr[1]);
            {rx_tlast, rx_tdata} = beats[ii < NI ? ii : 0];
            v_ack = 1'b0;
            v_n = 7'd0;
            v_all = 1'b0;
            fwd_go = fwd_valid && (lfsr[4] || lfsr[5]);
            #1;
            // A run (every value left in the head beat, by count or with v_all, or some), or one
            // value.
            if (v_valid && lfsr[6] && lfsr[7] && lfsr[13]) v_all = 1'b1;
            else if (v_valid && lfsr[6]) v_n = lfsr[7] ? v_avail : 7'd1 + {2'd0, lfsr[12:8]} % v_avail;
            else v_ack = lfsr[2] || lfsr[3];
            #1;
            took_n = v_all ? v_avail : v_n;
            if (v_valid && took_n != 7'd0) begin
                runs = runs + 1;
                for (k = 0; k < {25'd0, took_n}; k = k + 1) begin
                    slot = {{(32 - VPB_W){1'b0}}, v_vi} + k;
                    if (f_type == 2'd0) rv = {{(ACCW - DW){1'b0}}, v_beat[slot * DW +: DW]};
                    else rv = v_beat[slot * ACCW +: ACCW];
                    if (vi >= NV || {f_type, f_src, layer3, f_par, rv} !== want_v[vi]) fail("run val", vi);
                    vi = vi + 1;
                end
            end
            if (rx_tvalid && rx_tready) ii = ii + 1;
            if (rx_beat) beats_in = beats_in + 1;
            if (v_valid && v_ack) begin
                if (vi >= NV || {f_type, f_src, layer3, f_par, v_data} !== want_v[vi]) fail("value", vi);
                vi = vi + 1;
            end
            if (ok_p || ok_b) begin
                if (ci >= NC || {ok_b, f_src, layer3, f_count} !== want_c[ci]) fail("commit", ci);
                ci = ci + 1;
            end
            if (e_crc || e_seq || e_fmt) begin
                if (ei >= NE || {(e_crc ? 2'd1 : (e_seq ? 2'd2 : 2'd3)), e_info} !== want_e[ei]) fail("error", ei);
                ei = ei + 1;
            end
            if (fwd_valid && fwd_go) begin
                if (fi >= NF || {fwd_port, fwd_last, fwd_data} !== want_f[fi]) fail("forward", fi);
                fi = fi + 1;
            end
        end
        if (errors == 0 && ii == NI && vi == NV && ci == NC && ei == NE && fi == NF && beats_in == NI
            && (NV < 20 || runs > 0))
            $display("PASS: %0d beats: %0d values (%0d runs taken at once), %0d commits, %0d errors, %0d forwarded",
                     NI, NV, runs, NC, NE, NF);
        else
            $display("FAIL: %0d errors; beats %0d/%0d, values %0d/%0d, commits %0d/%0d, errors %0d/%0d, forwards %0d/%0d",
                     errors, ii, NI, vi, NV, ci, NC, ei, NE, fi, NF);
        $finish;
    end
endmodule
