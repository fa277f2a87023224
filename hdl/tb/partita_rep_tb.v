// Testbench of partita_rep: two copies (1 and 3 bits) driven from one random next value follow
// it a cycle later, equal to each other and to a plain register, and are 0 in reset. Copies
// with their reset tied off start at their RST_VAL (0 and 1) before the first clock edge.
`timescale 1ns / 1ps
module partita_rep_tb;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg d = 1'b0;
    reg want = 1'b0;
    wire q0;
    wire [2:0] q1;
    partita_rep u0 (.clk(clk), .rst(rst), .d(d), .q(q0));
    partita_rep #(.W(3)) u1 (.clk(clk), .rst(rst), .d({d, !d, d}), .q(q1));
    wire q2, q3;
    partita_rep u2 (.clk(clk), .rst(1'b0), .d(d), .q(q2));
    partita_rep #(.RST_VAL(1'b1)) u3 (.clk(clk), .rst(1'b0), .d(d), .q(q3));
    reg [31:0] lfsr = 32'h1d2c3b4a;
    integer n, errors = 0, ones = 0;
    reg rst_q = 1'b1;
    always @(posedge clk) begin
        want <= rst ? 1'b0 : d;
        rst_q <= rst;
    end
    initial begin
        #1;
        if (q2 !== 1'b0 || q3 !== 1'b1) begin
            $display("FAIL: initial values %b %b, expected 0 and 1", q2, q3);
            errors = errors + 1;
        end
        for (n = 0; n < 400; n = n + 1) begin
            @(negedge clk);
            if (q0 !== want || q1 !== (rst_q ? 3'b000 : {want, !want, want})) begin
                if (errors < 5) $display("FAIL: cycle %0d: copies %b %b, expected %b", n, q0, q1, want);
                errors = errors + 1;
            end
            if (n > 0 && (q2 !== want && !rst_q || q3 !== q2 && !rst_q)) begin
                if (errors < 5) $display("FAIL: cycle %0d: unreset copies %b %b", n, q2, q3);
                errors = errors + 1;
            end
            if (q0 === 1'b1) ones = ones + 1;
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            d = lfsr[0];
            rst = (n < 3) || (n >= 200 && n < 203);
        end
        if (errors == 0 && ones > 50) $display("PASS: 400 cycles, %0d with the enable high", ones);
        else $display("FAIL: %0d errors, %0d cycles high", errors, ones);
        $finish;
    end
endmodule
