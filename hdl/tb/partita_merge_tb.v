// Self-checking testbench of partita_merge: stream j sends j << (DW - 3) | 1, 2, 3, ... with
// random valid, the output is taken with random ready, and every value out is checked in order
// against the merge's sequence (per period, run t: LASTS[t] + 1 values of stream SRCS[t])
// over PERIODS periods; a stream must never be taken without valid or while another is
// selected, and s_want must name the selected stream. Prints PASS or FAIL.
// FLIP = 1 expects one wrong value (a negative control: the testbench must fail).
`timescale 1ns / 1ps
module partita_merge_tb;
    parameter integer NS = 3;
    parameter integer DW = 16;
    parameter integer SW = 2;
    parameter integer CW = 3;
    parameter integer NT = 3;
    parameter integer TW = 2;
    parameter [NT*SW-1:0] SRCS = 6'b100100;
    parameter [NT*CW-1:0] LASTS = 9'o305;
    parameter integer PERIODS = 300;
    parameter integer MAX_CYCLES = 400000;
    parameter integer FLIP = 0;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [NS-1:0] s_valid = {NS{1'b0}};
    reg [NS*DW-1:0] s_data = {NS*DW{1'b0}};
    reg m_ready = 1'b0;
    wire [NS-1:0] s_ready, s_want;
    wire [DW-1:0] m_data;
    wire m_valid;
    partita_merge #(.NS(NS), .DW(DW), .SW(SW), .CW(CW), .NT(NT), .TW(TW), .SRCS(SRCS), .LASTS(LASTS)) dut (
        .clk(clk), .rst(rst), .s_data(s_data), .s_valid(s_valid), .s_ready(s_ready), .s_want(s_want),
        .m_data(m_data), .m_valid(m_valid), .m_ready(m_ready)
    );
    integer sent [0:NS-1];
    integer outs [0:NS-1];
    integer j, k, per_period = 0, got = 0, errors = 0, n = 0, cur = 0, pos = 0, taken = 0, run = 0;
    reg [DW-1:0] want;
    reg [31:0] last_of, src_of;
    reg [63:0] word;
    wire unused_word = |word[63:DW];
    reg [31:0] lfsr = 32'h5a;
    initial begin
        for (j = 0; j < NS; j = j + 1) begin
            sent[j] = 0;
            outs[j] = 0;
        end
        for (j = 0; j < NT; j = j + 1) begin
            last_of = {{(32 - CW){1'b0}}, LASTS[j*CW +: CW]};
            per_period = per_period + last_of + 1;
        end
        src_of = {{(32 - SW){1'b0}}, SRCS[0 +: SW]};
        cur = src_of;
        repeat (3) @(negedge clk);
        rst = 1'b0;
        while (got < PERIODS * per_period && n < MAX_CYCLES) begin
            @(negedge clk);
            n = n + 1;
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            for (j = 0; j < NS; j = j + 1) begin
                s_valid[j] = (n % 500 > 420) ? 1'b1 : lfsr[j % 8] | lfsr[(j + 3) % 8];
                word = {32'd0, (j << (DW - 3)) | (sent[j] + 32'd1)};
                s_data[j*DW +: DW] = word[DW-1:0];
            end
            m_ready = (n % 500 > 420) ? 1'b1 : lfsr[9] | lfsr[10];
            #1;
            taken = 0;
            if (s_want !== (1 << cur)) begin
                $display("FAIL: s_want is %b with stream %0d selected", s_want, cur);
                errors = errors + 1;
            end
            for (j = 0; j < NS; j = j + 1) begin
                if (s_ready[j] && s_valid[j]) begin
                    taken = taken + 1;
                    if (j != cur) begin
                        $display("FAIL: stream %0d taken while stream %0d is selected", j, cur);
                        errors = errors + 1;
                    end
                    sent[j] = sent[j] + 1;
                end
            end
            if (m_valid && m_ready) begin
                if (taken != 1) begin
                    $display("FAIL: %0d streams taken for one value out at cycle %0d", taken, n);
                    errors = errors + 1;
                end
                outs[cur] = outs[cur] + 1;
                word = {32'd0, (cur << (DW - 3)) | outs[cur]};
                want = word[DW-1:0];
                if (FLIP != 0 && got == 23) want = ~want;
                if (m_data !== want) begin
                    if (errors < 5) $display("FAIL: value %0d is %h, expected %h (stream %0d)", got, m_data, want, cur);
                    errors = errors + 1;
                end
                got = got + 1;
                pos = pos + 1;
                last_of = {{(32 - CW){1'b0}}, LASTS[run*CW +: CW]};
                if (pos == last_of + 1) begin
                    pos = 0;
                    run = (run + 1) % NT;
                    src_of = {{(32 - SW){1'b0}}, SRCS[run*SW +: SW]};
                    cur = src_of;
                end
            end else if (taken != 0) begin
                $display("FAIL: a stream taken with no value out at cycle %0d", n);
                errors = errors + 1;
            end
        end
        k = 0;
        for (j = 0; j < NS; j = j + 1) k = k + outs[j];
        if (errors == 0 && got == PERIODS * per_period && k == got)
            $display("PASS: %0d values in %0d periods of %0d runs from %0d streams", got, PERIODS, NT, NS);
        else
            $display("FAIL: %0d errors, %0d of %0d values", errors, got, PERIODS * per_period);
        $finish;
    end
endmodule
