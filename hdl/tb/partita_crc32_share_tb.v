// Testbench of partita_crc32_share: for random beats (and a single set bit in every position)
// the share must equal the bit-serial CRC-32/MPEG-2 step of the beat from 0, computed here
// beat by beat (the core builds fixed XOR sets at elaboration instead). The core inside
// partita_crc32, against the Rust reference: partita_crc32_tb. Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_crc32_share_tb;
    parameter integer W = 64;
    reg [W-1:0] data;
    wire [31:0] share;
    partita_crc32_share #(.W(W)) dut (.data(data), .share(share));
    function [31:0] serial(input [W-1:0] d);
        integer n;
        begin
            serial = 32'd0;
            for (n = W - 1; n >= 0; n = n - 1)
                serial = {serial[30:0], 1'b0} ^ ((serial[31] ^ d[n]) ? 32'h04C11DB7 : 32'h00000000);
        end
    endfunction
    reg [63:0] lfsr;
    integer i, errors;
    initial begin
        errors = 0;
        lfsr = 64'h0123_4567_89ab_cdef;
        for (i = 0; i < W + 256; i = i + 1) begin
            if (i < W) begin
                data = {{(W - 1){1'b0}}, 1'b1} << i;
            end else begin
                lfsr = {lfsr[62:0], lfsr[63] ^ lfsr[62] ^ lfsr[60] ^ lfsr[59]};
                data = {(W + 63) / 64{lfsr * 64'h9E37_79B9_7F4A_7C15}} >> ((W + 63) / 64 * 64 - W);
            end
            #1;
            if (share !== serial(data)) begin
                if (errors < 5) $display("FAIL: beat %0d %h: share %h, serial %h", i, data, share, serial(data));
                errors = errors + 1;
            end
        end
        if (errors == 0) $display("PASS: %0d beats of %0d bits", W + 256, W);
        else $display("FAIL: %0d mismatches", errors);
        $finish;
    end
endmodule
