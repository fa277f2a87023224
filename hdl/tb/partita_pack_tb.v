// Testbench of partita_pack: NV vectors of VEC random values offered a word of R per cycle
// (a vector's last word short when R does not divide VEC) at random
// against a sink that is ready at random. Checks every beat's tdata (empty slots zero), tkeep
// and tlast against the layout of partita_hdl::stream, the beat count, and that `busy` is low
// at the end.
`timescale 1ns / 1ps
module partita_pack_tb;
    parameter integer SB = 64;
    parameter integer VB = 16;
    parameter integer P = 4;
    parameter integer R = 1;
    parameter integer CW = 1;
    parameter integer JW = 2;
    parameter integer VEC = 10;
    parameter integer NV = 6;
    // Negative control: expect the inverse of beat FLIP's data (the testbench must then fail).
    parameter integer FLIP = -1;
    localparam integer KW = SB / 8;
    localparam integer NB = (VEC + P - 1) / P;
    // Words per vector.
    localparam integer NW = (VEC + R - 1) / R;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [R*VB-1:0] v_data = {(R*VB){1'b0}};
    reg [CW-1:0] v_cnt = {CW{1'b0}};
    reg v_valid = 1'b0, v_last = 1'b0, m_tready = 1'b0;
    wire v_ready, m_tvalid, m_tlast, busy;
    wire [SB-1:0] m_tdata;
    wire [KW-1:0] m_tkeep;
    partita_pack #(.SB(SB), .VB(VB), .P(P), .R(R), .CW(CW), .JW(JW)) dut (
        .clk(clk), .rst(rst), .v_data(v_data), .v_cnt(v_cnt), .v_valid(v_valid), .v_ready(v_ready),
        .v_last(v_last), .m_tdata(m_tdata), .m_tkeep(m_tkeep), .m_tvalid(m_tvalid),
        .m_tready(m_tready), .m_tlast(m_tlast), .busy(busy)
    );
    reg [VB-1:0] vals [0:NV*VEC-1];
    reg [VB-1:0] r;
    integer n = 0, beat = 0, fails = 0, cycles = 0, s, b, idx, w0, cnt_i;
    reg [SB-1:0] want;
    reg [KW-1:0] wkeep;
    initial begin
        for (idx = 0; idx < NV * VEC; idx = idx + 1) begin
            for (b = 0; b < VB; b = b + 1) r[b] = ($random % 2 != 0);
            vals[idx] = r;
        end
    end
    // Drive at the falling edge; check what the coming rising edge takes.
    initial forever begin
        @(negedge clk);
        if (!rst) begin
            // Word n: vector n / NW, its values from (n % NW) * R.
            v_valid = (n < NV * NW) && ($random % 3 != 0);
            w0 = (n / NW) * VEC + (n % NW) * R;
            cnt_i = (n % NW == NW - 1) ? VEC - (NW - 1) * R : R;
            v_cnt = cnt_i[CW-1:0];
            v_data = {(R*VB){1'b0}};
            for (s = 0; s < R; s = s + 1)
                if (n < NV * NW && s < cnt_i) v_data[s*VB +: VB] = vals[w0 + s];
            v_last = (n % NW) == NW - 1;
            m_tready = ($random % 4 != 0);
            #1;
            cycles = cycles + 1;
            if (v_valid && v_ready) n = n + 1;
            if (m_tvalid && m_tready) begin
                want = {SB{1'b0}};
                wkeep = {KW{1'b0}};
                for (s = 0; s < P; s = s + 1) begin
                    idx = (beat % NB) * P + s;
                    if (idx < VEC && beat < NV * NB) begin
                        want[s*VB +: VB] = vals[(beat / NB) * VEC + idx];
                        wkeep[s*VB/8 +: VB/8] = {(VB/8){1'b1}};
                    end
                end
                if (beat >= NV * NB || m_tdata !== (want ^ {SB{beat == FLIP}}) || m_tkeep !== wkeep
                    || m_tlast !== ((beat % NB) == NB - 1)) begin
                    if (fails == 0)
                        $display("FAIL: beat %0d: got %h keep %h last %b, expected %h keep %h",
                                 beat, m_tdata, m_tkeep, m_tlast, want, wkeep);
                    fails = fails + 1;
                end
                beat = beat + 1;
            end
        end
    end
    initial begin
        repeat (3) @(negedge clk);
        rst = 1'b0;
        while (beat < NV * NB && cycles < 100000) @(negedge clk);
        repeat (20) @(negedge clk);
        if (beat != NV * NB) $display("FAIL: %0d of %0d beats", beat, NV * NB);
        else if (busy) $display("FAIL: busy after the last beat");
        else if (fails == 0) $display("PASS: %0d beats", beat);
        $finish;
    end
endmodule
