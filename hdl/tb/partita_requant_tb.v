// Self-checking testbench of partita_requant: applies every vector of requant.hex (one per
// line: {clip, y, x}, from the Rust reference partita_codegen::fixed::requantize) and compares
// y and clip. Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_requant_tb;
    parameter integer IW = 12;
    parameter integer SHR = 3;
    parameter integer SHL = 0;
    parameter integer OW = 8;
    parameter integer ROUND_NE = 1;
    parameter integer SAT = 1;
    parameter integer N = 4096;
    reg [IW+OW:0] vec [0:N-1];
    reg [IW-1:0] x;
    wire [OW-1:0] y;
    wire clip;
    integer i, errors;
    partita_requant #(
        .IW(IW), .SHR(SHR), .SHL(SHL), .OW(OW), .ROUND_NE(ROUND_NE), .SAT(SAT)
    ) dut (.x(x), .y(y), .clip(clip));
    initial begin
        $readmemh("requant.hex", vec);
        errors = 0;
        x = {IW{1'b0}};
        for (i = 0; i < N; i = i + 1) begin
            x = vec[i][IW-1:0];
            #1;
            if (y !== vec[i][IW+OW-1:IW] || clip !== vec[i][IW+OW]) begin
                if (errors < 5)
                    $display("FAIL: x %h: expected y %h clip %b, got y %h clip %b",
                             x, vec[i][IW+OW-1:IW], vec[i][IW+OW], y, clip);
                errors = errors + 1;
            end
        end
        if (errors == 0) $display("PASS: %0d vectors", N);
        else $display("FAIL: %0d of %0d vectors differ", errors, N);
        $finish;
    end
endmodule
