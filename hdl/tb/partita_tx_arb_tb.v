// Self-checking testbench of partita_tx_arb (2 ports): the framer and two forwarding receive
// ports each send frames of random length to random ports, with random tvalid gaps on the
// forwarding side and random tready on each port. Every beat carries {source, frame, beat}.
// Checks: a port carries one frame at a time (no interleaving), each frame arrives whole, in
// order, on the port it asked for, and every frame of every source gets through.
// Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_tx_arb_tb;
    parameter integer FRAMES = 60;
    localparam integer NP = 2;
    localparam integer LW = 32;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    // Sources: 0 the framer, 1 and 2 the forwarding receive ports.
    reg [31:0] lfsr = 32'hbeef;
    integer frame [0:2];
    integer beat [0:2];
    integer len [0:2];
    reg [1:0] dst [0:2];
    reg fr_valid = 1'b0, fr_last = 1'b0;
    reg [1:0] fr_port = 2'd0;
    reg [LW-1:0] fr_data = {LW{1'b0}};
    reg [NP-1:0] fwd_valid = {NP{1'b0}}, fwd_last = {NP{1'b0}};
    reg [2*NP-1:0] fwd_port = {2*NP{1'b0}};
    reg [LW*NP-1:0] fwd_data = {LW*NP{1'b0}};
    reg [NP-1:0] tx_tready = {NP{1'b0}};
    wire fr_go;
    wire [NP-1:0] fwd_go, tx_tvalid, tx_tlast, tx_beat, tx_own;
    wire [LW*NP-1:0] tx_tdata;
    partita_tx_arb #(.NP(NP), .LW(LW)) dut (
        .clk(clk), .rst(rst), .fr_valid(fr_valid), .fr_port(fr_port), .fr_data(fr_data),
        .fr_last(fr_last), .fr_go(fr_go), .fwd_valid(fwd_valid), .fwd_port(fwd_port),
        .fwd_data(fwd_data), .fwd_last(fwd_last), .fwd_go(fwd_go), .tx_tdata(tx_tdata),
        .tx_tvalid(tx_tvalid), .tx_tready(tx_tready), .tx_tlast(tx_tlast), .tx_beat(tx_beat),
        .tx_own(tx_own)
    );
    // Per port: the source whose frame is on it (-1 none) and the beat expected next.
    integer on [0:NP-1];
    integer next_beat [0:NP-1];
    integer s, p, n, errors = 0, done_frames = 0;
    reg [LW-1:0] d;
    reg go;
    reg [31:0] r4;
    task new_frame(input [1:0] src);
        begin
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            r4 = {28'd0, lfsr[3:0]};
            len[src] = 1 + r4;
            dst[src] = {1'b0, lfsr[5]};
            beat[src] = 0;
        end
    endtask
    initial begin
        for (s = 0; s < 3; s = s + 1) begin
            frame[s] = 0;
            new_frame(s[1:0]);
        end
        for (p = 0; p < NP; p = p + 1) on[p] = -1;
        repeat (3) @(negedge clk);
        rst = 1'b0;
        for (n = 0; n < 400 * FRAMES && done_frames < 3 * FRAMES; n = n + 1) begin
            @(negedge clk);
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            fr_valid = frame[0] < FRAMES;
            fr_port = dst[0];
            fr_data = {4'd0, frame[0][11:0], beat[0][15:0]};
            fr_last = (beat[0] == len[0] - 1);
            for (s = 1; s < 3; s = s + 1) begin
                fwd_valid[s-1] = (frame[s] < FRAMES) && lfsr[s];
                fwd_port[2*(s-1) +: 2] = dst[s];
                fwd_data[LW*(s-1) +: LW] = {s[3:0], frame[s][11:0], beat[s][15:0]};
                fwd_last[s-1] = (beat[s] == len[s] - 1);
            end
            tx_tready = lfsr[5:4] | lfsr[7:6];
            #1;
            // What leaves each port this cycle.
            for (p = 0; p < NP; p = p + 1)
                if (tx_tvalid[p] && tx_tready[p]) begin
                    d = tx_tdata[LW*p +: LW];
                    s = {28'd0, d[31:28]};
                    if (on[p] < 0) begin
                        on[p] = s;
                        next_beat[p] = 0;
                    end
                    if (s != on[p] || d[15:0] != next_beat[p][15:0] || dst[s] != p[1:0]
                        || d[27:16] != frame[s][11:0]) begin
                        if (errors < 5) $display("FAIL: port %0d: beat %h (source %0d on the port)", p, d, on[p]);
                        errors = errors + 1;
                    end
                    next_beat[p] = next_beat[p] + 1;
                    if (tx_tlast[p]) on[p] = -1;
                end
            // Sources move on when their beat was taken.
            for (s = 0; s < 3; s = s + 1) begin
                go = (s == 0) ? fr_go : fwd_go[s-1];
                if (go) begin
                    if (beat[s] == len[s] - 1) begin
                        frame[s] = frame[s] + 1;
                        done_frames = done_frames + 1;
                        new_frame(s[1:0]);
                    end else begin
                        beat[s] = beat[s] + 1;
                    end
                end
            end
        end
        if (errors == 0 && done_frames == 3 * FRAMES) $display("PASS: %0d frames", done_frames);
        else $display("FAIL: %0d errors, %0d of %0d frames", errors, done_frames, 3 * FRAMES);
        $finish;
    end
    wire unused_tb = &{1'b0, tx_beat, tx_own};
endmodule
