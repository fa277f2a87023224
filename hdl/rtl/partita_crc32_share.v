// partita library core: the data's share of a link CRC step (partita_crc32). The CRC-32/MPEG-2
// step over a W-bit beat is linear: the next CRC is the XOR of a share of the CRC (bits of the
// CRC alone) and a share of the beat (bits of the beat alone). This core computes the beat's
// share, combinationally: bit i is the XOR of the beat's bits in dmask(i), the sets found at
// elaboration by running the bit-serial step from 0 on unit vectors, each built as a
// reduction XOR (a balanced tree). partita_crc32 XORs it with the CRC's own share.
`timescale 1ns / 1ps
module partita_crc32_share #(
    parameter integer W = 64
) (
    input  wire [W-1:0] data,
    output wire [31:0]  share
);
    // The CRC of d from 0 (the beat's share of a step).
    function [31:0] dstep(input [W-1:0] d);
        integer n;
        begin
            dstep = 32'd0;
            for (n = W - 1; n >= 0; n = n - 1)
                dstep = {dstep[30:0], 1'b0} ^ ((dstep[31] ^ d[n]) ? 32'h04C11DB7 : 32'h00000000);
        end
    endfunction
    function [W-1:0] dmask(input [4:0] i);
        integer j;
        reg [31:0] r;
        begin
            dmask = {W{1'b0}};
            for (j = 0; j < W; j = j + 1) begin
                r = dstep({{(W - 1){1'b0}}, 1'b1} << j);
                dmask[j] = r[i];
            end
        end
    endfunction
    genvar i;
    generate
        for (i = 0; i < 32; i = i + 1) begin : g_bit
            localparam [W-1:0] DM = dmask(i);
            assign share[i] = ^(data & DM);
        end
    endgenerate
endmodule
