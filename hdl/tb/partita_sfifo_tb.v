// Self-checking testbench of partita_sfifo: random valid on the input and random ready on the
// output for CYCLES cycles, every value out checked in order against a model queue, and the
// throughput of a run with both sides always willing (one value per cycle once full speed is
// reached). Phases: mostly filling, mostly draining, then even. Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_sfifo_tb;
    parameter integer W = 16;
    parameter integer AW = 4;
    parameter integer DEPTH = 16;
    parameter integer CYCLES = 6000;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg s_valid = 1'b0, m_ready = 1'b0;
    reg [W-1:0] s_data = {W{1'b0}};
    wire s_ready, m_valid;
    wire [W-1:0] m_data;
    partita_sfifo #(.W(W), .AW(AW), .DEPTH(DEPTH)) dut (
        .clk(clk), .rst(rst), .s_data(s_data), .s_valid(s_valid), .s_ready(s_ready),
        .m_data(m_data), .m_valid(m_valid), .m_ready(m_ready)
    );
    reg [W-1:0] model [0:65535];
    integer head = 0, tail = 0, errors = 0, n, full_speed = 0;
    reg [31:0] lfsr = 32'h5;
    initial begin
        repeat (3) @(negedge clk);
        rst = 1'b0;
        for (n = 0; n < CYCLES; n = n + 1) begin
            @(negedge clk);
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            if (n < CYCLES / 3) begin
                s_valid = lfsr[0] | lfsr[1];
                m_ready = lfsr[2] & lfsr[3];
            end else if (n < 2 * CYCLES / 3) begin
                s_valid = lfsr[0] & lfsr[1];
                m_ready = lfsr[2] | lfsr[3];
            end else if (n < CYCLES - 200) begin
                s_valid = lfsr[0];
                m_ready = lfsr[2];
            end else begin
                s_valid = 1'b1;
                m_ready = 1'b1;
            end
            s_data = lfsr[W+7:8];
            // The handshakes of this cycle (outputs of registers, stable until the edge).
            #1;
            if (s_valid && s_ready) begin
                model[tail % 65536] = s_data;
                tail = tail + 1;
            end
            if (m_valid && m_ready) begin
                if (head >= tail || m_data !== model[head % 65536]) begin
                    if (errors < 5) $display("FAIL: value %0d is %h, model %h", head, m_data, model[head % 65536]);
                    errors = errors + 1;
                end
                head = head + 1;
                if (n >= CYCLES - 190) full_speed = full_speed + 1;
            end
        end
        if (errors == 0 && head > CYCLES / 4 && full_speed > 150)
            $display("PASS: %0d values through, %0d at full speed", head, full_speed);
        else
            $display("FAIL: %0d errors, %0d values through, %0d at full speed", errors, head, full_speed);
        $finish;
    end
endmodule
