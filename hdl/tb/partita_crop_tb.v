// Self-checking testbench of partita_crop: a map of H x W pixels of C channels per frame whose
// values count up (frame, row, column and channel in the value), sent with random valid and
// taken with random ready; every value out is checked in order against the values of the box
// (rows Y0..Y1, columns X0..X1, channels C0..C1) over FRAMES frames, and the count. Prints PASS
// or FAIL. FLIP = 1 expects one wrong value (a negative control: the testbench must fail).
`timescale 1ns / 1ps
module partita_crop_tb;
    parameter integer DW = 16;
    parameter integer H = 4;
    parameter integer W = 5;
    parameter integer C = 3;
    parameter integer YW = 2;
    parameter integer XW = 3;
    parameter integer CW = 2;
    parameter integer Y0 = 1;
    parameter integer Y1 = 2;
    parameter integer X0 = 0;
    parameter integer X1 = 3;
    parameter integer C0 = 1;
    parameter integer C1 = 2;
    parameter integer FRAMES = 40;
    parameter integer MAX_CYCLES = 400000;
    parameter integer FLIP = 0;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [DW-1:0] s_data = {DW{1'b0}};
    reg s_valid = 1'b0;
    reg m_ready = 1'b0;
    wire s_ready;
    wire [DW-1:0] m_data;
    wire m_valid;
    partita_crop #(.DW(DW), .H(H), .W(W), .C(C), .YW(YW), .XW(XW), .CW(CW), .Y0(Y0), .Y1(Y1),
        .X0(X0), .X1(X1), .C0(C0), .C1(C1)) dut (
        .clk(clk), .rst(rst), .s_data(s_data), .s_valid(s_valid), .s_ready(s_ready),
        .m_data(m_data), .m_valid(m_valid), .m_ready(m_ready)
    );
    reg took = 1'b1;
    integer sent = 0, got = 0, want_n = 0, errors = 0, n = 0, per = 0, f, yy, xx, cc;
    reg [DW-1:0] want;
    reg [31:0] lfsr = 32'h3c1;
    reg [31:0] word;
    wire unused_word = |word[31:DW];
    // The box's values of a frame in order, expected over every frame.
    reg [DW-1:0] exp_v [0:65535];
    initial begin
        per = (Y1 - Y0 + 1) * (X1 - X0 + 1) * (C1 - C0 + 1);
        for (f = 0; f < FRAMES; f = f + 1)
            for (yy = Y0; yy <= Y1; yy = yy + 1)
                for (xx = X0; xx <= X1; xx = xx + 1)
                    for (cc = C0; cc <= C1; cc = cc + 1) begin
                        word = ((f * H + yy) * W + xx) * C + cc + 1;
                        exp_v[want_n] = word[DW-1:0];
                        want_n = want_n + 1;
                    end
        repeat (3) @(negedge clk);
        rst = 1'b0;
        while (got < want_n && n < MAX_CYCLES) begin
            @(negedge clk);
            n = n + 1;
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            if (!s_valid || took) begin
                s_valid = (sent < FRAMES * H * W * C) && (lfsr[2] | lfsr[5] | (n % 300 > 250));
                word = sent + 1;
                s_data = word[DW-1:0];
            end
            m_ready = lfsr[7] | lfsr[11] | (n % 300 > 250);
            #1;
            if (m_valid && m_ready) begin
                want = exp_v[got];
                if (FLIP != 0 && got == 17) want = ~want;
                if (m_data !== want) begin
                    if (errors < 5) $display("FAIL: value %0d is %h, expected %h", got, m_data, want);
                    errors = errors + 1;
                end
                got = got + 1;
            end
            took = s_valid && s_ready;
            if (took) sent = sent + 1;
            if (m_valid && !s_ready) begin
                if (m_ready) begin
                    $display("FAIL: a value out not taken from the input at cycle %0d", n);
                    errors = errors + 1;
                end
            end
        end
        // The rest of the input (after the box's last value) must pass through too.
        repeat (200) @(negedge clk) begin
            s_valid = (sent < FRAMES * H * W * C);
            word = sent + 1;
            s_data = word[DW-1:0];
            m_ready = 1'b1;
            #1;
            if (m_valid) begin
                $display("FAIL: a value out after the last frame's box");
                errors = errors + 1;
            end
            if (s_valid && s_ready) sent = sent + 1;
        end
        if (errors == 0 && got == want_n && sent == FRAMES * H * W * C)
            $display("PASS: %0d values of %0d in %0d frames (box of %0d per frame)", got, sent, FRAMES, per);
        else
            $display("FAIL: %0d errors, %0d of %0d values out, %0d of %0d in", errors, got, want_n, sent, FRAMES * H * W * C);
        $finish;
    end
endmodule
