// Self-checking testbench of partita_rxq: beats of 1 to VPB values (counting up from 1) come in
// with random valid, values are taken with random ready, and every value out is checked in
// order over N values. Prints PASS or FAIL.
// FLIP = 1 expects one wrong value (a negative control: the testbench must fail).
`timescale 1ns / 1ps
module partita_rxq_tb;
    parameter integer DW = 16;
    parameter integer VPB = 4;
    parameter integer VW = 3;
    parameter integer AW = 3;
    parameter integer DEPTH = 8;
    parameter integer N = 3000;
    parameter integer MAX_CYCLES = 100000;
    parameter integer FLIP = 0;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [VPB*DW-1:0] s_beat = {VPB*DW{1'b0}};
    reg [VW-1:0] s_n = {VW{1'b0}};
    reg s_valid = 1'b0, m_ready = 1'b0;
    wire s_ready, m_valid;
    wire [DW-1:0] m_data;
    partita_rxq #(.DW(DW), .VPB(VPB), .VW(VW), .AW(AW), .DEPTH(DEPTH)) dut (
        .clk(clk), .rst(rst), .s_beat(s_beat), .s_n(s_n), .s_valid(s_valid), .s_ready(s_ready),
        .m_data(m_data), .m_valid(m_valid), .m_ready(m_ready)
    );
    integer sent = 0, got = 0, errors = 0, cyc = 0, k, nb;
    reg [DW-1:0] want;
    reg [63:0] word;
    wire unused_word = |word[63:DW];
    reg [31:0] lfsr = 32'h3c;
    initial begin
        repeat (3) @(negedge clk);
        rst = 1'b0;
        while (got < N && cyc < MAX_CYCLES) begin
            @(negedge clk);
            cyc = cyc + 1;
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            // A new beat offered only once the last one was taken (the receiver holds its head).
            if (!s_valid) begin
                nb = ({24'd0, lfsr[7:0]} % VPB) + 1;
                s_n = nb[VW-1:0];
                s_beat = {VPB*DW{1'b1}};
                for (k = 0; k < nb; k = k + 1) begin
                    word = {32'd0, sent + k + 32'd1};
                    s_beat[k*DW +: DW] = word[DW-1:0];
                end
                s_valid = (cyc % 300 > 250) | lfsr[9] | lfsr[10];
            end
            m_ready = (cyc % 300 > 250) | lfsr[11] | lfsr[12];
            #1;
            if (s_valid && s_ready) begin
                sent = sent + {{(32 - VW){1'b0}}, s_n};
            end
            if (m_valid && m_ready) begin
                word = {32'd0, got + 32'd1};
                want = word[DW-1:0];
                if (FLIP != 0 && got == 37) want = ~want;
                if (m_data !== want) begin
                    if (errors < 5) $display("FAIL: value %0d is %h, expected %h", got, m_data, want);
                    errors = errors + 1;
                end
                got = got + 1;
            end
            @(posedge clk);
            if (s_valid && s_ready) s_valid = 1'b0;
        end
        if (errors == 0 && got >= N)
            $display("PASS: %0d values", got);
        else
            $display("FAIL: %0d errors, %0d of %0d values", errors, got, N);
        $finish;
    end
endmodule
