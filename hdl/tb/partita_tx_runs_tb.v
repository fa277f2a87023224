// Self-checking testbench of partita_tx_runs: NR runs offer values (run k's values count up
// with k in the top bits) with random want and random run lengths (last on a run's final
// value), and the transmit queue is full on random cycles. Every queue entry is checked: its
// run's values in order, none lost (each run's count at the end), the type, tag, parity and
// destination of its run, the end-of-frame bit at the run's last value and every MAXV values,
// and that a frame's entries are never mixed with another run's. FLIP = 1 expects one wrong
// value (a negative control: the testbench must then fail). Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_tx_runs_tb;
    parameter integer NR = 3;
    parameter integer DW = 12;
    parameter integer OWN_W = 2;
    parameter integer MAXV = 5;
    parameter [NR*3-1:0] TAGS = 9'o321;
    parameter [NR*3-1:0] DSTS = 9'o456;
    parameter integer CYCLES = 20000;
    parameter integer FLIP = 0;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [NR-1:0] want = {NR{1'b0}}, last = {NR{1'b0}};
    reg [NR*DW-1:0] value = {(NR*DW){1'b0}};
    reg tq_full = 1'b0;
    wire [NR-1:0] grant;
    wire tq_push;
    wire [DW+9:0] tq_entry;
    partita_tx_runs #(.NR(NR), .DW(DW), .OWN_W(OWN_W), .MAXV(MAXV), .TAGS(TAGS), .DSTS(DSTS)) dut (
        .clk(clk), .rst(rst), .want(want), .last(last), .value(value), .grant(grant),
        .tq_full(tq_full), .tq_push(tq_push), .tq_entry(tq_entry)
    );
    // Per run: values offered and taken, values left in the current run, values seen in the
    // queue, values since its frame began there, and whether it is the last of its run.
    integer sent [0:NR-1];
    integer left [0:NR-1];
    integer seen [0:NR-1];
    integer in_frame [0:NR-1];
    integer staged_open [0:NR-1];
    reg is_last [0:65535];
    integer k, n, r, errors = 0, open_run = -1, entries = 0;
    reg [DW-3:0] cnt;
    reg [31:0] lfsr = 32'h2b;
    reg [DW-1:0] want_v;
    initial begin
        for (k = 0; k < NR; k = k + 1) begin
            sent[k] = 0;
            seen[k] = 0;
            in_frame[k] = 0;
            staged_open[k] = 0;
            left[k] = 1 + k;
        end
        repeat (3) @(negedge clk);
        rst = 1'b0;
        for (n = 0; n < CYCLES; n = n + 1) begin
            @(negedge clk);
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            tq_full = (n < CYCLES - 2000) && lfsr[7] && lfsr[8];
            for (k = 0; k < NR; k = k + 1) begin
                want[k] = (n < CYCLES - 2000) && (lfsr[k] | lfsr[k + 3]);
                last[k] = (left[k] == 1);
                cnt = sent[k][DW-3:0];
                value[k*DW +: DW] = {k[1:0], cnt};
            end
            #1;
            for (k = 0; k < NR; k = k + 1) begin
                if (grant[k] && !want[k]) begin
                    $display("FAIL: grant without want, run %0d", k);
                    errors = errors + 1;
                end
                if (grant[k]) begin
                    is_last[(k << 14) | (sent[k] % 16384)] = last[k];
                    sent[k] = sent[k] + 1;
                    staged_open[k] = (last[k] || staged_open[k] + 1 == MAXV) ? 0 : staged_open[k] + 1;
                    left[k] = last[k] ? 1 + ((lfsr >> (9 + k)) % (3 * MAXV)) : left[k] - 1;
                end
            end
            if (tq_push) begin
                if (tq_full) begin
                    $display("FAIL: a push while the queue is full");
                    errors = errors + 1;
                end
                // Which run: by its tag.
                r = -1;
                for (k = 0; k < NR; k = k + 1)
                    if (tq_entry[DW+6:DW+4] == TAGS[k*3 +: 3]) r = k;
                if (r < 0 || tq_entry[DW+8:DW+7] !== 2'd0 || tq_entry[DW+3] !== 1'b0 || tq_entry[DW+2:DW] !== DSTS[r*3 +: 3]) begin
                    if (errors < 5) $display("FAIL: entry %0d has fields %h", entries, tq_entry[DW+9:DW]);
                    errors = errors + 1;
                end else begin
                    if (open_run >= 0 && open_run != r) begin
                        if (errors < 5) $display("FAIL: entry %0d of run %0d inside a frame of run %0d", entries, r, open_run);
                        errors = errors + 1;
                    end
                    cnt = seen[r][DW-3:0];
                    want_v = {r[1:0], cnt};
                    if (FLIP != 0 && entries == 40) want_v = ~want_v;
                    if (tq_entry[DW-1:0] !== want_v) begin
                        if (errors < 5) $display("FAIL: entry %0d of run %0d is %h, expected %h", entries, r, tq_entry[DW-1:0], want_v);
                        errors = errors + 1;
                    end
                    in_frame[r] = in_frame[r] + 1;
                    if (tq_entry[DW+9] !== (is_last[(r << 14) | (seen[r] % 16384)] || in_frame[r] == MAXV)) begin
                        if (errors < 5) $display("FAIL: entry %0d of run %0d: frame end %b", entries, r, tq_entry[DW+9]);
                        errors = errors + 1;
                    end
                    if (tq_entry[DW+9]) begin
                        in_frame[r] = 0;
                        open_run = -1;
                    end else begin
                        open_run = r;
                    end
                    seen[r] = seen[r] + 1;
                end
                entries = entries + 1;
            end
        end
        // Every value of a whole frame came out (the last 2000 cycles drain, with no new
        // values); a frame still open stays staged.
        for (k = 0; k < NR; k = k + 1)
            if (seen[k] != sent[k] - staged_open[k]) begin
                $display("FAIL: run %0d sent %0d values, %0d came out", k, sent[k], seen[k]);
                errors = errors + 1;
            end
        if (errors == 0 && entries > CYCLES / 4)
            $display("PASS: %0d entries from %0d runs, frames whole", entries, NR);
        else
            $display("FAIL: %0d errors, %0d entries", errors, entries);
        $finish;
    end
endmodule
