// partita library core: the link CRC register. Each enabled edge advances `crc` over the W
// bits of `data`, most significant first: CRC-32/MPEG-2 (polynomial 0x04C11DB7, no
// reflection, no final XOR). `start` begins a new CRC with `data` (from 0xFFFFFFFF), `en`
// continues the current one, neither holds it; reset loads 0xFFFFFFFF. The Rust reference is
// partita_hdl::frame::crc_bits; its check value for "123456789" is 0x0376E6E7. The step is
// computed only under an enable, so a simulator spends nothing on idle cycles.
`timescale 1ns / 1ps
module partita_crc32 #(
    parameter integer W = 64
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         start,
    input  wire         en,
    input  wire [W-1:0] data,
    output reg  [31:0]  crc
);
    localparam [31:0] INIT = 32'hFFFFFFFF;
    function [31:0] step(input [31:0] c, input [W-1:0] d);
        integer n;
        begin
            step = c;
            for (n = W - 1; n >= 0; n = n - 1)
                step = {step[30:0], 1'b0} ^ ((step[31] ^ d[n]) ? 32'h04C11DB7 : 32'h00000000);
        end
    endfunction
    always @(posedge clk) begin
        if (rst) crc <= INIT;
        else if (start || en) crc <= step(start ? INIT : crc, data);
    end
endmodule
