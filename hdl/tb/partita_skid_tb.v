// Self-checking testbench of partita_skid: a source sends a counting sequence (tlast on every
// fifth beat) with random tvalid while the sink takes it with random tready; every beat must
// arrive once, in order, with its tlast. Then both sides stay ready and the buffer must pass
// one beat per cycle. During reset s_tready must stay low. Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_skid_tb;
    parameter integer W = 16;
    parameter integer BEATS = 3000;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [W-1:0] s_tdata = {W{1'b0}};
    reg s_tvalid = 1'b0, s_tlast = 1'b0, m_tready = 1'b0;
    wire s_tready, m_tvalid, m_tlast;
    wire [W-1:0] m_tdata;
    partita_skid #(.W(W)) dut (
        .clk(clk), .rst(rst), .s_tdata(s_tdata), .s_tvalid(s_tvalid), .s_tready(s_tready),
        .s_tlast(s_tlast), .m_tdata(m_tdata), .m_tvalid(m_tvalid), .m_tready(m_tready),
        .m_tlast(m_tlast)
    );
    integer sent = 0, got = 0, errors = 0, n, burst_n = -1, burst_got = 0;
    reg [31:0] lfsr = 32'hace1;
    initial begin
        repeat (3) begin
            @(negedge clk);
            if (s_tready !== 1'b0) begin
                $display("FAIL: s_tready is %b during reset", s_tready);
                errors = errors + 1;
            end
        end
        rst = 1'b0;
        for (n = 0; n < 100 * BEATS && got < BEATS; n = n + 1) begin
            // Offer this cycle's inputs, let them settle, and book what the edge will take.
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            s_tvalid = (sent < BEATS) && (sent >= BEATS / 2 || lfsr[0] || lfsr[3]);
            s_tdata = sent[W-1:0];
            s_tlast = (sent % 5 == 4);
            m_tready = (sent >= BEATS / 2) || lfsr[1] || lfsr[4];
            #1;
            if (m_tvalid && m_tready) begin
                if (m_tdata !== got[W-1:0] || m_tlast !== (got % 5 == 4)) begin
                    if (errors < 5) $display("FAIL: beat %0d: got %h (tlast %b)", got, m_tdata, m_tlast);
                    errors = errors + 1;
                end
                got = got + 1;
            end
            if (s_tvalid && s_tready) sent = sent + 1;
            // Both sides ready from BEATS / 2 on: a beat every cycle.
            if (sent == BEATS / 2 + 4 && burst_n < 0) begin
                burst_n = n;
                burst_got = got;
            end
            if (burst_n >= 0 && n == burst_n + 100 && got - burst_got != 100) begin
                $display("FAIL: %0d beats in 100 cycles with both sides ready", got - burst_got);
                errors = errors + 1;
            end
            @(negedge clk);
        end
        if (errors == 0 && got == BEATS) $display("PASS: %0d beats in order", got);
        else $display("FAIL: %0d errors, %0d of %0d beats", errors, got, BEATS);
        $finish;
    end
endmodule
