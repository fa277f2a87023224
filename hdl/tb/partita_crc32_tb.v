// Self-checking testbench of partita_crc32: applies every vector of crc.hex (one per line:
// {crc_in, data, crc_out}, from the Rust reference partita_hdl::frame::crc_bits, including
// the bytes of "123456789" chained from 0xFFFFFFFF to the check value 0x0376E6E7) and
// compares crc_out. Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_crc32_tb;
    parameter integer W = 8;
    parameter integer N = 9;
    reg [W+63:0] vec [0:N-1];
    reg [31:0] crc_in;
    reg [W-1:0] data;
    wire [31:0] crc_out;
    integer i, errors;
    partita_crc32 #(.W(W)) dut (.crc_in(crc_in), .data(data), .crc_out(crc_out));
    initial begin
        $readmemh("crc.hex", vec);
        errors = 0;
        crc_in = 32'd0;
        data = {W{1'b0}};
        for (i = 0; i < N; i = i + 1) begin
            crc_in = vec[i][W+63:W+32];
            data = vec[i][W+31:32];
            #1;
            if (crc_out !== vec[i][31:0]) begin
                if (errors < 5)
                    $display("FAIL: crc %h data %h: expected %h, got %h", crc_in, data,
                             vec[i][31:0], crc_out);
                errors = errors + 1;
            end
        end
        if (errors == 0) $display("PASS: %0d vectors", N);
        else $display("FAIL: %0d of %0d vectors differ", errors, N);
        $finish;
    end
endmodule
