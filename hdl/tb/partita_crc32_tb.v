// Self-checking testbench of partita_crc32: applies every vector of crc.hex (one per line:
// {start, en, data, crc after the edge}, from the Rust reference partita_hdl::frame::crc_bits,
// including the bytes of "123456789" from a start to the check value 0x0376E6E7, holds and
// restarts) and compares crc once it has taken each vector: the core registers its inputs (and
// with SPLIT the data's share), so that is after the second (third) rising edge, `pend` high
// until then. Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_crc32_tb;
    parameter integer W = 8;
    parameter integer N = 9;
    parameter integer SPLIT = 1;
    reg [W+39:0] vec [0:N-1];
    reg clk = 1'b0;
    reg rst, start, en;
    reg [W-1:0] data;
    wire [31:0] crc;
    wire pend;
    integer i, errors;
    partita_crc32 #(.W(W), .SPLIT(SPLIT)) dut (
        .clk(clk), .rst(rst), .start(start), .en(en), .data(data), .crc(crc), .pend(pend)
    );
    initial forever #5 clk = !clk;
    initial begin
        $readmemh("crc.hex", vec);
        errors = 0;
        rst = 1'b1;
        start = 1'b0;
        en = 1'b0;
        data = {W{1'b0}};
        @(negedge clk);
        rst = 1'b0;
        if (crc !== 32'hFFFFFFFF) begin
            $display("FAIL: reset value %h", crc);
            errors = errors + 1;
        end
        for (i = 0; i < N; i = i + 1) begin
            start = vec[i][W+33];
            en = vec[i][W+32];
            data = vec[i][W+31:32];
            @(negedge clk);
            if (pend !== (start || en)) begin
                if (errors < 5) $display("FAIL: vector %0d: pend %b", i, pend);
                errors = errors + 1;
            end
            start = 1'b0;
            en = 1'b0;
            if (SPLIT != 0) begin
                @(negedge clk);
                if (pend !== (vec[i][W+33] || vec[i][W+32])) begin
                    if (errors < 5) $display("FAIL: vector %0d: pend %b a cycle later", i, pend);
                    errors = errors + 1;
                end
            end
            @(negedge clk);
            if (pend !== 1'b0) begin
                if (errors < 5) $display("FAIL: vector %0d: pend %b once taken", i, pend);
                errors = errors + 1;
            end
            if (crc !== vec[i][31:0]) begin
                if (errors < 5)
                    $display("FAIL: vector %0d (start %b en %b data %h): expected %h, got %h",
                             i, vec[i][W+33], vec[i][W+32], data, vec[i][31:0], crc);
                errors = errors + 1;
            end
        end
        if (errors == 0) $display("PASS: %0d vectors", N);
        else $display("FAIL: %0d of %0d vectors differ", errors, N);
        $finish;
    end
endmodule
