// Testbench of partita_unpack: NV vectors of VEC random values, packed as partita_hdl::stream
// lays them out, offered with random gaps against a consumer that is ready at random: it takes
// one value (m_ready) or, with RUNS, also a random part of the run left in the head beat
// (m_n, checked value by value from m_beat; at least one run of two or more is required). Checks
// every value, its order and m_last, and the error count: none for good beats, exactly one for
// beat BAD (counted over the whole run; -1 for none), whose tkeep is inverted.
`timescale 1ns / 1ps
module partita_unpack_tb;
    parameter integer SB = 64;
    parameter integer VB = 16;
    parameter integer P = 4;
    parameter integer VEC = 10;
    parameter integer CW = 4;
    parameter integer JW = 2;
    parameter integer BW = 2;
    parameter integer NV = 6;
    parameter integer BAD = 4;
    parameter integer RUNS = 1;
    // Negative control: expect the inverse of value FLIP (the testbench must then fail).
    parameter integer FLIP = -1;
    localparam integer KW = SB / 8;
    localparam integer NB = (VEC + P - 1) / P;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst = 1'b1;
    reg [SB-1:0] s_tdata = {SB{1'b0}};
    reg [KW-1:0] s_tkeep = {KW{1'b0}};
    reg s_tvalid = 1'b0, s_tlast = 1'b0, m_ready = 1'b0;
    wire s_tready, m_valid, m_last;
    wire [31:0] errs;
    wire [VB-1:0] m_data;
    wire [SB-1:0] m_beat;
    wire [JW:0] m_avail;
    reg [JW:0] m_n = {(JW+1){1'b0}};
    integer k, runs = 0;
    reg [31:0] r32 = 32'd0;
    wire unused_r = &{1'b0, r32[31:JW+1]};
    partita_unpack #(.SB(SB), .VB(VB), .P(P), .VEC(VEC), .CW(CW), .JW(JW), .BW(BW)) dut (
        .clk(clk), .rst(rst), .s_tdata(s_tdata), .s_tkeep(s_tkeep), .s_tvalid(s_tvalid),
        .s_tready(s_tready), .s_tlast(s_tlast), .m_data(m_data), .m_valid(m_valid),
        .m_ready(m_ready), .m_last(m_last), .m_beat(m_beat), .m_avail(m_avail), .m_n(m_n),
        .clear(1'b0), .errs(errs)
    );
    reg [VB-1:0] vals [0:NV*VEC-1];
    reg [VB-1:0] r;
    integer beat = 0, nval = 0, fails = 0, cycles = 0, s, b, idx;
    initial begin
        for (idx = 0; idx < NV * VEC; idx = idx + 1) begin
            for (b = 0; b < VB; b = b + 1) r[b] = ($random % 2 != 0);
            vals[idx] = r;
        end
    end
    // Drive at the falling edge; count what the coming rising edge takes.
    initial forever begin
        @(negedge clk);
        if (!rst) begin
            s_tvalid = (beat < NV * NB) && ($random % 3 != 0);
            s_tdata = {SB{1'b0}};
            s_tkeep = {KW{1'b0}};
            for (s = 0; s < P; s = s + 1) begin
                idx = (beat % NB) * P + s;
                if (idx < VEC && beat < NV * NB) begin
                    s_tdata[s*VB +: VB] = vals[(beat / NB) * VEC + idx];
                    s_tkeep[s*VB/8 +: VB/8] = {(VB/8){1'b1}};
                end
            end
            if (beat == BAD) s_tkeep = ~s_tkeep;
            s_tlast = (beat % NB) == NB - 1;
            m_ready = ($random % 4 != 0);
            m_n = {(JW+1){1'b0}};
            #1;
            if (RUNS != 0 && m_ready && m_avail > 1 && ($random % 2 != 0)) begin
                m_ready = 1'b0;
                r32 = 1 + ({$random} % {{(31-JW){1'b0}}, m_avail});
                m_n = r32[JW:0];
                #1;
            end
            cycles = cycles + 1;
            if (s_tvalid && s_tready) beat = beat + 1;
            if (m_n != 0) begin
                if (m_n > 1) runs = runs + 1;
                for (k = 0; k < m_n; k = k + 1) begin
                    if (nval >= NV * VEC || m_beat[k*VB +: VB] !== (vals[nval < NV * VEC ? nval : 0] ^ {VB{nval == FLIP}})) begin
                        if (fails == 0)
                            $display("FAIL: value %0d (run of %0d): got %h, expected %h", nval, m_n,
                                     m_beat[k*VB +: VB], vals[nval < NV * VEC ? nval : 0]);
                        fails = fails + 1;
                    end
                    nval = nval + 1;
                end
            end
            if (m_valid && m_ready) begin
                if (nval >= NV * VEC || m_data !== (vals[nval < NV * VEC ? nval : 0] ^ {VB{nval == FLIP}})
                    || m_last !== ((nval % VEC) == VEC - 1)) begin
                    if (fails == 0)
                        $display("FAIL: value %0d: got %h (last %b), expected %h", nval, m_data,
                                 m_last, vals[nval < NV * VEC ? nval : 0]);
                    fails = fails + 1;
                end
                nval = nval + 1;
            end
        end
    end
    initial begin
        repeat (3) @(negedge clk);
        rst = 1'b0;
        while (nval < NV * VEC && cycles < 100000) @(negedge clk);
        repeat (20) @(negedge clk);
        if (nval != NV * VEC) $display("FAIL: %0d of %0d values", nval, NV * VEC);
        else if (errs != (BAD >= 0 ? 32'd1 : 32'd0))
            $display("FAIL: %0d stream errors counted, expected %0d", errs, BAD >= 0 ? 1 : 0);
        else if (RUNS != 0 && P > 1 && runs == 0) $display("FAIL: no run of two or more was taken");
        else if (fails == 0) $display("PASS: %0d values, %0d stream error(s) counted", nval, errs);
        $finish;
    end
endmodule
