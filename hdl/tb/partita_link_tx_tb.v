// Self-checking testbench of partita_link_tx: feeds the transmit-queue entries of txq.hex
// ({last, type, layer, parity, destination, value} per line; an h entry's value holds EH
// values) with random gaps, takes beats
// with random `go`, and compares every beat that leaves ({port, tlast, tdata}) with
// tx_expected.hex: the frames partita_hdl::frame::Frame::encode makes of the same runs.
// Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_link_tx_tb;
    parameter integer LW = 64;
    parameter integer DW = 16;
    parameter integer ACCW = 40;
    parameter integer ME = 1;
    parameter integer LAYER_W = 2;
    parameter integer VPB_H = 4;
    parameter integer VPB_P = 1;
    parameter integer VPB_W = 2;
    parameter integer MAXV_H = 64;
    parameter integer MAXV_P = 16;
    parameter integer MAXB = 16;
    parameter integer FB_W = 5;
    parameter integer FB_IX_W = 4;
    parameter integer EH = 1;
    parameter integer QW = 40;
    parameter [7:0] OTHERS = 8'b00001101;
    parameter [15:0] ROUTES = 16'h0050;
    parameter [63:0] HMASKS = 64'h0;
    parameter integer NQ = 1;
    parameter integer NB = 1;
    localparam [2:0] ME3 = ME[2:0];
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [QW+9:0] q [0:NQ-1];
    reg [LW+2:0] want [0:NB-1];
    reg q_empty = 1'b1, q_last = 1'b0, q_par = 1'b0, go = 1'b0;
    reg [1:0] q_type = 2'd0;
    reg [2:0] q_layer = 3'd0, q_dst = 3'd0;
    reg [QW-1:0] q_val = {QW{1'b0}};
    wire [7:0] q_hmask = HMASKS[q_layer*8 +: 8];
    wire q_pop, sending, last, idle;
    wire [1:0] port;
    wire [LW-1:0] data;
    partita_link_tx #(
        .LW(LW), .DW(DW), .ACCW(ACCW), .LAYER_W(LAYER_W), .VPB_H(VPB_H),
        .VPB_P(VPB_P), .VPB_W(VPB_W), .MAXV_H(MAXV_H), .MAXV_P(MAXV_P), .MAXB(MAXB),
        .FB_W(FB_W), .FB_IX_W(FB_IX_W), .EH(EH), .QW(QW)
    ) dut (
        .clk(clk), .rst(rst), .me(ME3), .others(OTHERS), .routes(ROUTES), .q_empty(q_empty), .q_last(q_last), .q_type(q_type),
        .q_layer(q_layer[LAYER_W-1:0]), .q_par(q_par), .q_dst(q_dst), .q_val(q_val),
        .q_hmask(q_hmask), .q_pop(q_pop), .sending(sending), .port(port), .data(data),
        .last(last), .go(go), .idle(idle)
    );
    integer qi = 0, bi = 0, errors = 0, n;
    reg [31:0] lfsr = 32'h5eed;
    initial begin
        $readmemh("txq.hex", q);
        $readmemh("tx_expected.hex", want);
        repeat (3) @(negedge clk);
        rst = 1'b0;
        for (n = 0; n < 200 * NB && !(bi == NB && qi == NQ && idle); n = n + 1) begin
            @(negedge clk);
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            q_empty = (qi >= NQ) || (lfsr[0] && lfsr[1]);
            {q_last, q_type, q_layer, q_par, q_dst, q_val} = q[qi < NQ ? qi : 0];
            go = lfsr[2] || lfsr[3];
            #1;
            if (sending && go) begin
                if (bi >= NB || {port, last, data} !== want[bi]) begin
                    if (errors < 5)
                        $display("FAIL: beat %0d: expected %h, got port %0d tlast %b data %h",
                                 bi, want[bi < NB ? bi : 0], port, last, data);
                    errors = errors + 1;
                end
                bi = bi + 1;
            end
            if (q_pop) qi = qi + 1;
        end
        if (errors == 0 && bi == NB && qi == NQ) $display("PASS: %0d beats of %0d entries", NB, NQ);
        else $display("FAIL: %0d errors, %0d of %0d beats, %0d of %0d entries", errors, bi, NB, qi, NQ);
        $finish;
    end
endmodule
