// Self-checking testbench of partita_fifo: random pushes and pops (never past full or empty)
// for CYCLES cycles, checked every cycle against a model queue: the head, the count, and
// every value coming out in order. Phases: mostly pushing, mostly popping, then even.
// Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_fifo_tb;
    parameter integer W = 8;
    parameter integer AW = 3;
    parameter integer DEPTH = 8;
    parameter integer CYCLES = 4000;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg push = 1'b0, pop = 1'b0;
    reg [W-1:0] din = {W{1'b0}};
    wire [W-1:0] dout;
    wire [AW:0] count;
    partita_fifo #(.W(W), .AW(AW), .DEPTH(DEPTH)) dut (
        .clk(clk), .rst(rst), .push(push), .din(din), .pop(pop), .dout(dout), .count(count)
    );
    reg [W-1:0] model [0:4095];
    integer head = 0, tail = 0, errors = 0, n;
    reg [31:0] used = 32'd0;
    reg [31:0] lfsr = 32'h1;
    reg want_push, want_pop;
    initial begin
        repeat (3) @(negedge clk);
        rst = 1'b0;
        for (n = 0; n < CYCLES; n = n + 1) begin
            @(negedge clk);
            used = tail - head;
            if (count !== used[AW:0]) begin
                if (errors < 5) $display("FAIL: cycle %0d: count %0d, model %0d", n, count, used);
                errors = errors + 1;
            end
            if (used != 0 && dout !== model[head % 4096]) begin
                if (errors < 5) $display("FAIL: cycle %0d: head %h, model %h", n, dout, model[head % 4096]);
                errors = errors + 1;
            end
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            if (n < CYCLES / 4) begin
                want_push = lfsr[0] | lfsr[1];
                want_pop = lfsr[2] & lfsr[3];
            end else if (n < CYCLES / 2) begin
                want_push = lfsr[0] & lfsr[1];
                want_pop = lfsr[2] | lfsr[3];
            end else begin
                want_push = lfsr[0];
                want_pop = lfsr[2];
            end
            push = want_push && (used < DEPTH);
            pop = want_pop && (used != 0);
            din = lfsr[W+7:8];
            if (push) begin
                model[tail % 4096] = din;
                tail = tail + 1;
            end
            if (pop) head = head + 1;
        end
        if (errors == 0 && head > CYCLES / 4) $display("PASS: %0d values through", head);
        else $display("FAIL: %0d errors, %0d values through", errors, head);
        $finish;
    end
endmodule
