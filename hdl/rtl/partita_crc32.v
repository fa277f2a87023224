// partita library core: one step of the link CRC, combinational. crc_out is crc_in after
// the W bits of `data`, most significant first: CRC-32/MPEG-2 (polynomial 0x04C11DB7, no
// reflection, no final XOR; start from 0xFFFFFFFF). The Rust reference is
// partita_hdl::frame::crc_bits; its check value for "123456789" is 0x0376E6E7.
`timescale 1ns / 1ps
module partita_crc32 #(
    parameter integer W = 64
) (
    input  wire [31:0]  crc_in,
    input  wire [W-1:0] data,
    output reg  [31:0]  crc_out
);
    integer n;
    always @* begin
        crc_out = crc_in;
        for (n = W - 1; n >= 0; n = n - 1)
            crc_out = {crc_out[30:0], 1'b0} ^ ((crc_out[31] ^ data[n]) ? 32'h04C11DB7 : 32'h00000000);
    end
endmodule
