// Self-checking testbench of partita_gather: this device's own values (1, 2, 3, ... with bit
// DW-1 clear) and the link's (with bit DW-1 set) arrive with random valid, the output is taken
// with random ready, and every value out is checked in order against a model of the gather's
// sequence (per period LOCAL own values then REMOTE link values, after PERIODS periods TAIL
// link values) over FRAMES frames; r_take must never fire without r_valid, and r_want must be
// high exactly in the model's link runs. Prints PASS or FAIL.
// FLIP = 1 expects one wrong value (a negative control: the testbench must fail).
`timescale 1ns / 1ps
module partita_gather_tb;
    parameter integer DW = 16;
    parameter integer AW = 4;
    parameter integer DEPTH = 16;
    parameter integer CW = 2;
    parameter integer PW = 1;
    parameter integer LOCAL = 3;
    parameter integer REMOTE = 2;
    parameter integer PERIODS = 2;
    parameter integer TAIL = 0;
    parameter integer FRAMES = 40;
    parameter integer MAX_CYCLES = 200000;
    // Negative control: expect a wrong value once (the testbench must then fail).
    parameter integer FLIP = 0;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg s_valid = 1'b0, r_valid = 1'b0, m_ready = 1'b0;
    reg [DW-1:0] s_data = {DW{1'b0}}, r_data = {DW{1'b0}};
    wire s_ready, r_take, r_want, m_valid;
    wire [DW-1:0] m_data;
    partita_gather #(
        .DW(DW), .AW(AW), .DEPTH(DEPTH), .CW(CW), .PW(PW), .LOCAL(LOCAL), .REMOTE(REMOTE),
        .PERIODS(PERIODS), .TAIL(TAIL)
    ) dut (
        .clk(clk), .rst(rst), .s_data(s_data), .s_valid(s_valid), .s_ready(s_ready),
        .r_data(r_data), .r_valid(r_valid), .r_take(r_take), .r_want(r_want),
        .m_data(m_data), .m_valid(m_valid), .m_ready(m_ready)
    );
    localparam integer PER_FRAME = (LOCAL + REMOTE) * PERIODS + TAIL;
    localparam [DW-1:0] LINK = {1'b1, {(DW - 1){1'b0}}};
    integer own_in = 0, rem_in = 0, own_out = 0, rem_out = 0, got = 0, errors = 0, n = 0;
    // The model's place in the sequence: the phase (0 own, 1 link, 2 tail), the position in
    // the run and the period.
    integer phase = 0, pos = 0, per = 0;
    reg [DW-1:0] want;
    reg [31:0] lfsr = 32'h1d;
    initial begin
        repeat (3) @(negedge clk);
        rst = 1'b0;
        while (got < FRAMES * PER_FRAME && n < MAX_CYCLES) begin
            @(negedge clk);
            n = n + 1;
            lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
            s_valid = lfsr[0] | lfsr[1];
            r_valid = lfsr[2] | (lfsr[3] & lfsr[4]);
            // Bursts of full speed on every side, then random again.
            m_ready = (n % 700 > 600) ? 1'b1 : (lfsr[5] | lfsr[6]);
            if (n % 700 > 600) begin
                s_valid = 1'b1;
                r_valid = 1'b1;
            end
            s_data = own_in[DW-1:0] + 1'b1;
            r_data = LINK | (rem_in[DW-1:0] + 1'b1);
            #1;
            if ((r_take && !r_valid) || (r_want !== (phase != 0))) begin
                $display("FAIL: r_take without r_valid, or r_want not the link run, at cycle %0d", n);
                errors = errors + 1;
            end
            if (s_valid && s_ready) own_in = own_in + 1;
            if (r_take) rem_in = rem_in + 1;
            if (m_valid && m_ready) begin
                if (phase == 0) begin
                    own_out = own_out + 1;
                    want = own_out[DW-1:0];
                end else begin
                    rem_out = rem_out + 1;
                    want = LINK | rem_out[DW-1:0];
                end
                if (FLIP != 0 && got == 17) want = ~want;
                if (m_data !== want) begin
                    if (errors < 5)
                        $display("FAIL: value %0d is %h, expected %h (phase %0d, period %0d)", got, m_data, want, phase, per);
                    errors = errors + 1;
                end
                got = got + 1;
                // Advance the model.
                pos = pos + 1;
                if (phase == 0 && pos == LOCAL) begin
                    pos = 0;
                    if (REMOTE > 0) phase = 1;
                    else begin
                        per = per + 1;
                        if (per == PERIODS) begin
                            per = 0;
                            phase = (TAIL > 0) ? 2 : 0;
                        end
                    end
                end else if (phase == 1 && pos == REMOTE) begin
                    pos = 0;
                    per = per + 1;
                    phase = 0;
                    if (per == PERIODS) begin
                        per = 0;
                        phase = (TAIL > 0) ? 2 : 0;
                    end
                end else if (phase == 2 && pos == TAIL) begin
                    pos = 0;
                    phase = 0;
                end
            end
        end
        if (errors == 0 && got == FRAMES * PER_FRAME && rem_in == rem_out)
            $display("PASS: %0d values in %0d frames (%0d own, %0d from the link)", got, FRAMES, own_out, rem_out);
        else
            $display("FAIL: %0d errors, %0d of %0d values, %0d link values taken, %0d passed", errors, got, FRAMES * PER_FRAME, rem_in, rem_out);
        $finish;
    end
endmodule
