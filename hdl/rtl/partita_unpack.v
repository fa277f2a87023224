// partita library core: AXI4-Stream unpacker. Takes packed beats through a register slice
// (partita_skid) and hands out one value per cycle (m_ready), or a run of values (m_n: the
// consumer takes that many of the m_avail left in the head beat of this vector; m_beat holds
// them, the next value in its low bits). The layout is partita_hdl::stream's: P
// slots of VB bits per SB-bit beat, slot 0 in the least significant bits; a vector of VEC
// values starts on a new beat, and its last beat has tlast and tkeep low for the bytes of
// empty slots (and for bytes above the last slot). Positions come from VEC, so a beat with
// the wrong tkeep or tlast is still used as the layout says, and counted in `errs` (the
// device's STREAM_ERRS register; `clear` zeroes it). m_last marks a vector's last value.
`timescale 1ns / 1ps
module partita_unpack #(
    parameter integer SB = 64,
    parameter integer VB = 16,
    parameter integer P = 4,
    parameter integer VEC = 10,
    // Bits of a value count within a vector, of a slot index and of a beat count (each holds
    // its largest value).
    parameter integer CW = 4,
    parameter integer JW = 2,
    parameter integer BW = 2
) (
    input  wire            clk,
    input  wire            rst,
    input  wire [SB-1:0]   s_tdata,
    input  wire [SB/8-1:0] s_tkeep,
    input  wire            s_tvalid,
    output wire            s_tready,
    input  wire            s_tlast,
    output wire [VB-1:0]   m_data,
    output wire            m_valid,
    input  wire            m_ready,
    output wire            m_last,
    // Runs: the head beat (shifted: the next value in the low VB bits), the values of this
    // vector left in it (0 when none is held), and the count to take (at most m_avail; only
    // while m_ready is low).
    output wire [SB-1:0]   m_beat,
    output wire [JW:0]     m_avail,
    input  wire [JW:0]     m_n,
    input  wire            clear,
    output reg  [31:0]     errs
);
    localparam integer KW = SB / 8;
    localparam integer NB = (VEC + P - 1) / P;
    localparam integer LASTN = VEC - (NB - 1) * P;
    localparam [KW-1:0] ONES = {KW{1'b1}};
    localparam [KW-1:0] KEEP_FULL = ONES >> (KW - P * VB / 8);
    localparam [KW-1:0] KEEP_LAST = ONES >> (KW - LASTN * VB / 8);
    localparam integer VEC_LAST_I = VEC - 1;
    localparam [CW-1:0] VEC_LAST = VEC_LAST_I[CW-1:0];
    localparam integer NB_LAST_I = NB - 1;
    localparam [BW-1:0] NB_LAST = NB_LAST_I[BW-1:0];
    // Counts compared in MW bits, more than enough for VEC and for P.
    localparam integer MW = CW + JW + 2;
    localparam [MW-1:0] VEC_W = VEC[MW-1:0];
    localparam [MW-1:0] P_W = P[MW-1:0];

    wire [SB+KW-1:0] b_data;
    wire b_valid, b_last;
    reg  [SB-1:0] hold;
    reg  hv;
    reg  [CW-1:0] cnt;
    reg  [BW-1:0] bc;
    // Values taken this cycle. What is left of the head beat for this vector (avail: the
    // smaller of the slots left in the beat and the values left in the vector) and whether the
    // vector ends in this beat are registers, set when a beat is taken and counted down as
    // values leave, so the consumer's count meets one small compare (n == avail) on its way to
    // the slice's ready, not the subtractions behind it.
    wire [JW:0] n = m_ready ? {{JW{1'b0}}, 1'b1} : m_n;
    wire emit = hv && (n != {(JW+1){1'b0}});
    reg  [JW:0] avail;
    reg  vend, err_q;
    wire beat_end = (n == avail);
    wire vec_end = beat_end && vend;
    wire [MW-1:0] n_w = {{(CW+1){1'b0}}, n};
    wire [MW-1:0] cnt_w = {{(JW+2){1'b0}}, cnt};
    wire [MW-1:0] cnt_next = cnt_w + n_w;
    // The count after this cycle's values, and the values of the vector a new beat holds.
    wire [MW-1:0] cnt_after = !emit ? cnt_w : vec_end ? {MW{1'b0}} : cnt_next;
    wire [MW-1:0] left_after = VEC_W - cnt_after;
    wire new_vend = (left_after <= P_W);
    wire [MW-1:0] new_avail = new_vend ? left_after : P_W;
    wire unused_w = &{1'b0, cnt_after[MW-1:CW], new_avail[MW-1:JW+1]};
    wire b_ready = !hv || (emit && beat_end);
    assign m_beat = hold;
    assign m_avail = hv ? avail : {(JW+1){1'b0}};
    wire take = b_valid && b_ready;
    partita_skid #(.W(SB + KW)) u_slice (
        .clk(clk), .rst(rst), .s_tdata({s_tkeep, s_tdata}), .s_tvalid(s_tvalid),
        .s_tready(s_tready), .s_tlast(s_tlast), .m_tdata(b_data), .m_tvalid(b_valid),
        .m_tready(b_ready), .m_tlast(b_last)
    );
    assign m_valid = hv;
    assign m_data = hold[VB-1:0];
    assign m_last = (cnt == VEC_LAST);
    wire exp_last = (bc == NB_LAST);
    wire [KW-1:0] exp_keep = exp_last ? KEEP_LAST : KEEP_FULL;
    always @(posedge clk) begin
        if (rst) begin
            hv <= 1'b0;
            cnt <= {CW{1'b0}};
            bc <= {BW{1'b0}};
            avail <= {(JW+1){1'b0}};
            vend <= 1'b0;
            err_q <= 1'b0;
            errs <= 32'd0;
        end else begin
            // A beat's layout error is registered first (err_q), then counted.
            err_q <= take && ((b_data[SB+KW-1:SB] != exp_keep) || (b_last != exp_last));
            if (clear) errs <= 32'd0;
            else if (err_q) errs <= errs + 32'd1;
            if (take) bc <= exp_last ? {BW{1'b0}} : bc + {{(BW-1){1'b0}}, 1'b1};
            if (emit) begin
                cnt <= cnt_after[CW-1:0];
            end
            if (take) begin
                avail <= new_avail[JW:0];
                vend <= new_vend;
            end else if (emit) begin
                avail <= avail - n;
            end
            if (take) hv <= 1'b1;
            else if (emit && beat_end) hv <= 1'b0;
        end
        if (take) hold <= b_data[SB-1:0];
        else if (emit) hold <= hold >> (n * VB);
    end
endmodule
