// partita library core: link framer. Takes runs of values from a transmit queue (the caller's
// FIFO head: q_*) and sends them as frames (format: partita_hdl::frame): a header beat, up to
// MAXB payload beats with values packed from bit 0, and a trailer beat with the CRC-32 of
// header and payload, tlast on the trailer. An h run goes to every device of `q_hmask` (one
// copy per destination, lowest first), a partial-sum run to `q_dst`, a barrier to every device
// of `others`. With BCAST set (a one-way ring of three or more), a frame for every device of
// `others` is sent once, as a ring broadcast: its destination field is this device, and each
// device on the ring reads it and passes it on (partita_link_rx). A run longer than one frame
// continues in the next frame. Sequence numbers count frames per destination (broadcasts as
// destination me). The frame leaves on port routes[2*dst +: 2]; `go` (from the port arbiter)
// says the offered beat leaves this cycle. The device's identity (me, others, routes) comes in
// on ports, held constant: a board ties them off (synthesis folds them), and devices that differ
// only in identity share one design.
//
// An h entry of the queue holds EH values (the first in the low bits; EH divides VPB_H and
// MAXV_H, and an h run's length), a partial-sum entry one.
//
// The frame buffer holds two frames: the fill side packs the next frame's values (an entry per
// cycle) while the send side sends the previous one and its copies, so a run streams at one
// value per cycle as long as the link keeps up with the copies.
`timescale 1ns / 1ps
module partita_link_tx #(
    parameter integer LW = 64,          // link beat width (32 to 512)
    parameter integer DW = 16,          // h value width
    parameter integer ACCW = 40,        // partial-sum width
    parameter integer LAYER_W = 1,      // width of layer indices (at most 3)
    parameter integer VPB_H = 4,        // h values per payload beat
    parameter integer VPB_P = 1,        // partial sums per payload beat
    parameter integer VPB_W = 2,        // width of a value-in-beat index
    parameter integer MAXV_H = 64,      // h values per frame at most
    parameter integer MAXV_P = 16,      // partial sums per frame at most
    parameter integer MAXB = 16,        // payload beats per frame at most
    parameter integer FB_W = 5,         // width of a payload beat count (0..MAXB)
    parameter integer FB_IX_W = 4,      // width of a payload beat index
    parameter integer EH = 1,           // h values per queue entry
    parameter integer QW = 40,          // queue entry value width: max(ACCW, EH * DW)
    parameter integer BCAST = 0         // a run to every device of `others` is one ring broadcast
) (
    input  wire               clk,
    input  wire               rst,
    // Identity: this device, every other device (a barrier goes to each), and the tx port of
    // each destination, 2 bits each.
    input  wire [2:0]         me,
    input  wire [7:0]         others,
    input  wire [15:0]        routes,
    // Transmit queue head: {last of run, type, layer, parity, destination, value}.
    input  wire               q_empty,
    input  wire               q_last,
    input  wire [1:0]         q_type,
    input  wire [LAYER_W-1:0] q_layer,
    input  wire               q_par,
    input  wire [2:0]         q_dst,
    input  wire [QW-1:0]      q_val,
    input  wire [7:0]         q_hmask,  // consumers of h values of q_layer
    output wire               q_pop,
    // Frames out, to the port arbiter.
    output wire               sending,
    output wire [1:0]         port,
    output reg  [LW-1:0]      data,
    output wire               last,
    input  wire               go,
    output wire               idle
);
    // Fill side: state, the frame being packed (type, layer, parity, destinations, values,
    // payload beats, slot in the beat, the beat) and the buffer half it goes to.
    localparam [1:0] A_IDLE = 2'd0, A_FILL = 2'd1, A_FULL = 2'd2;
    // Send side.
    localparam [1:0] S_IDLE = 2'd0, S_HDR = 2'd1, S_PAY = 2'd2, S_CRC = 2'd3;
    localparam [6:0] VPB_H7 = VPB_H[6:0];
    localparam [6:0] VPB_P7 = VPB_P[6:0];
    localparam [6:0] MAXV_H7 = MAXV_H[6:0];
    localparam [6:0] MAXV_P7 = MAXV_P[6:0];
    localparam [VPB_W-1:0] VI_ONE = 1;
    localparam [FB_W-1:0] FB_ONE = 1;
    reg [1:0] as;
    reg [1:0] a_type;
    reg [LAYER_W-1:0] a_layer;
    reg a_par, a_buf;
    reg [7:0] a_mask;
    reg [6:0] a_nv;
    reg [FB_W-1:0] a_nb;
    reg [VPB_W-1:0] a_vi;
    reg [LW-1:0] a_beat;
    reg [1:0] ss;
    reg [1:0] s_type;
    reg [LAYER_W-1:0] s_layer;
    reg s_par, s_buf;
    reg [7:0] s_mask;
    reg [2:0] s_dst;
    reg [6:0] s_nv;
    reg [FB_W-1:0] s_nb, s_bi;
    reg [LW-1:0] fbuf0 [0:MAXB-1];
    reg [LW-1:0] fbuf1 [0:MAXB-1];
    reg [12:0] tseq [0:7];
    // The destinations whose sequence number steps this cycle (one-hot; set at the trailer a
    // cycle before): each counter adds one to itself under its own enable, so no table read
    // and add sits between the send state and the table.
    reg [7:0] s_inc;
    wire [31:0] f_crc;
    wire crc_pend;
    integer i;

    function [2:0] lowest(input [7:0] m);
        integer n;
        begin
            lowest = 3'd0;
            for (n = 7; n >= 0; n = n - 1)
                if (m[n]) lowest = n[2:0];
        end
    endfunction

    // The entry's values at the low end of a beat.
    localparam integer HW = EH * DW;
    localparam integer UH = (HW < LW) ? HW : LW;
    localparam integer UP = (ACCW < LW) ? ACCW : LW;
    localparam integer USED = (UH > UP) ? UH : UP;
    wire [LW-1:0] ins_h, ins_p;
    generate
        if (LW > HW) begin : g_h
            assign ins_h = {{(LW - HW){1'b0}}, q_val[HW-1:0]};
        end else begin : g_h_full
            assign ins_h = q_val[LW-1:0];
        end
        if (LW > ACCW) begin : g_p
            assign ins_p = {{(LW - ACCW){1'b0}}, q_val[ACCW-1:0]};
        end else if (LW == ACCW) begin : g_p_full
            assign ins_p = q_val[ACCW-1:0];
        end else begin : g_p_cut
            // Partial sums never travel on links narrower than the accumulator.
            assign ins_p = q_val[LW-1:0];
        end
        if (QW > USED) begin : g_hi
            wire unused_hi = &{1'b0, q_val[QW-1:USED]};
        end
    endgenerate
    // The value placed at its slot (a_vi) of the payload beat being filled: a constant shift
    // per slot and one select, no shifter.
    localparam integer NS = 1 << VPB_W;
    wire [LW-1:0] slot_h [0:NS-1];
    wire [LW-1:0] slot_p [0:NS-1];
    genvar sv;
    generate
        for (sv = 0; sv < NS; sv = sv + 1) begin : g_slot
            if (sv < VPB_H) begin : g_h
                assign slot_h[sv] = ins_h << (sv * DW);
            end else begin : g_h_none
                assign slot_h[sv] = {LW{1'b0}};
            end
            if (sv < VPB_P) begin : g_p
                assign slot_p[sv] = ins_p << (sv * ACCW);
            end else begin : g_p_none
                assign slot_p[sv] = {LW{1'b0}};
            end
        end
    endgenerate
    wire [LW-1:0] a_ins = (a_type == 2'd0) ? slot_h[a_vi] : slot_p[a_vi];
    wire [LW-1:0] a_beat_n = a_beat | a_ins;
    wire [6:0] a_vpb = (a_type == 2'd0) ? VPB_H7 : VPB_P7;
    wire [6:0] a_maxv = (a_type == 2'd0) ? MAXV_H7 : MAXV_P7;
    // Values per entry: EH for h, one partial sum.
    localparam [6:0] EH7 = EH[6:0];
    localparam [VPB_W-1:0] VI_EH = EH[VPB_W-1:0];
    wire [6:0] a_step = (a_type == 2'd0) ? EH7 : 7'd1;
    wire a_take = (as == A_FILL) && !q_empty;
    // Whether this take fills the beat (a_vi + a_step == a_vpb) and the frame (a_nv + a_step ==
    // a_maxv), kept as registers set wherever a_vi and a_nv are (from the values they are set
    // to), so no add and compare sits between the queue's head and its pop.
    reg a_lasts, a_lastv;
    wire [6:0] a_vi7 = {{(7 - VPB_W){1'b0}}, a_vi};
    wire [6:0] a_step2 = a_step + a_step;
    // For a new frame of type q_type (slot and count 0): whether its first take ends the beat
    // and the frame.
    wire q_lasts = (q_type == 2'd0) ? (EH7 == VPB_H7) : (VPB_P7 == 7'd1);
    wire q_lastv = (q_type == 2'd0) ? (EH7 == MAXV_H7) : (MAXV_P7 == 7'd1);
    wire a_beat_done = a_take && (a_lasts || q_last || a_lastv);
    wire a_frame_done = a_take && (q_last || a_lastv);
    // A packed frame passes to the send side once that has sent every copy of the last one.
    wire hand = (as == A_FULL) && (ss == S_IDLE);
    assign q_pop = a_take || ((as == A_IDLE) && !q_empty && q_type == 2'd2);
    assign port = routes[2*s_dst +: 2];
    assign sending = (ss == S_HDR) || (ss == S_PAY) || ((ss == S_CRC) && !crc_pend);
    assign last = (ss == S_CRC);
    assign idle = (as == A_IDLE) && (ss == S_IDLE);

    // Header: {type, source, destination, layer, count, parity, sequence} in the low 32 bits.
    wire [2:0] layer3;
    generate
        if (LAYER_W < 3) begin : g_layer
            assign layer3 = {{(3 - LAYER_W){1'b0}}, s_layer};
        end else begin : g_layer_full
            assign layer3 = s_layer[2:0];
        end
    endgenerate
    wire [31:0] hdr32 = {s_type, me, s_dst, layer3, s_nv, s_par, tseq[s_dst]};
    wire [LW-1:0] hdr, crc_beat;
    generate
        if (LW > 32) begin : g_wide
            assign hdr = {{(LW - 32){1'b0}}, hdr32};
            assign crc_beat = {{(LW - 32){1'b0}}, f_crc};
        end else begin : g_narrow
            assign hdr = hdr32;
            assign crc_beat = f_crc;
        end
    endgenerate
    always @* begin
        case (ss)
            S_HDR: data = hdr;
            S_PAY: data = s_buf ? fbuf1[s_bi[FB_IX_W-1:0]] : fbuf0[s_bi[FB_IX_W-1:0]];
            default: data = crc_beat;
        endcase
    end
    // The CRC starts with the header beat and goes on with each payload beat sent. The CRC core
    // registers its inputs (so its XOR network does not start at the frame buffer read and the
    // link's ready); the trailer waits while a beat is still pending there, one cycle per frame.
    // (Not SPLIT: a second stage would cost every frame another cycle on the link, where the
    // receiver's costs it only in its own checks.)
    partita_crc32 #(.W(LW), .SPLIT(0)) u_crc (
        .clk(clk), .rst(rst), .start((ss == S_HDR) && go), .en((ss == S_PAY) && go),
        .data(data), .crc(f_crc), .pend(crc_pend)
    );

    // Fill side.
    always @(posedge clk) begin
        if (rst) begin
            as <= A_IDLE;
            a_type <= 2'd0;
            a_layer <= {LAYER_W{1'b0}};
            a_par <= 1'b0;
            a_buf <= 1'b0;
            a_mask <= 8'd0;
            a_nv <= 7'd0;
            a_nb <= {FB_W{1'b0}};
            a_vi <= {VPB_W{1'b0}};
            a_beat <= {LW{1'b0}};
            a_lasts <= 1'b0;
            a_lastv <= 1'b0;
        end else begin
            case (as)
                A_IDLE: if (!q_empty) begin
                    a_type <= q_type;
                    a_layer <= q_layer;
                    a_par <= q_par;
                    a_nv <= 7'd0;
                    a_nb <= {FB_W{1'b0}};
                    a_vi <= {VPB_W{1'b0}};
                    a_beat <= {LW{1'b0}};
                    a_lasts <= q_lasts;
                    a_lastv <= q_lastv;
                    case (q_type)
                        2'd0: begin a_mask <= q_hmask; as <= A_FILL; end
                        2'd1: begin a_mask <= 8'd1 << q_dst; as <= A_FILL; end
                        default: begin a_mask <= others; as <= A_FULL; end
                    endcase
                end
                A_FILL: if (a_take) begin
                    a_nv <= a_nv + a_step;
                    a_lastv <= (a_nv + a_step2 == a_maxv);
                    if (a_beat_done) begin
                        a_nb <= a_nb + FB_ONE;
                        a_vi <= {VPB_W{1'b0}};
                        a_beat <= {LW{1'b0}};
                        a_lasts <= (a_step == a_vpb);
                    end else begin
                        a_vi <= a_vi + ((a_type == 2'd0) ? VI_EH : VI_ONE);
                        a_beat <= a_beat_n;
                        a_lasts <= (a_vi7 + a_step2 == a_vpb);
                    end
                    if (a_frame_done) as <= A_FULL;
                end
                A_FULL: if (hand) begin
                    a_buf <= !a_buf;
                    as <= A_IDLE;
                end
                default: as <= A_IDLE;
            endcase
        end
        if (a_beat_done) begin
            if (a_buf) fbuf1[a_nb[FB_IX_W-1:0]] <= a_beat_n;
            else fbuf0[a_nb[FB_IX_W-1:0]] <= a_beat_n;
        end
    end

    // Send side: header, payload, trailer, once per destination.
    always @(posedge clk) begin
        if (rst) begin
            ss <= S_IDLE;
            s_type <= 2'd0;
            s_layer <= {LAYER_W{1'b0}};
            s_par <= 1'b0;
            s_buf <= 1'b0;
            s_mask <= 8'd0;
            s_dst <= 3'd0;
            s_nv <= 7'd0;
            s_nb <= {FB_W{1'b0}};
            s_bi <= {FB_W{1'b0}};
            for (i = 0; i < 8; i = i + 1) tseq[i] <= 13'd0;
            s_inc <= 8'd0;
        end else begin
            // A frame's number steps the cycle after its trailer; the next frame to the same
            // destination reads it two cycles after that at the earliest (S_IDLE, then S_HDR:
            // a frame's copies go to different destinations).
            s_inc <= 8'd0;
            for (i = 0; i < 8; i = i + 1)
                if (s_inc[i]) tseq[i] <= tseq[i] + 13'd1;
            case (ss)
                S_IDLE: if (hand) begin
                    s_type <= a_type;
                    s_layer <= a_layer;
                    s_par <= a_par;
                    s_buf <= a_buf;
                    if (BCAST != 0 && a_mask == others) begin
                        s_mask <= 8'd1 << me;
                        s_dst <= me;
                    end else begin
                        s_mask <= a_mask;
                        s_dst <= lowest(a_mask);
                    end
                    s_nv <= a_nv;
                    s_nb <= a_nb;
                    ss <= S_HDR;
                end
                S_HDR: if (go) begin
                    s_bi <= {FB_W{1'b0}};
                    ss <= (s_nb == {FB_W{1'b0}}) ? S_CRC : S_PAY;
                end
                S_PAY: if (go) begin
                    s_bi <= s_bi + FB_ONE;
                    if (s_bi + FB_ONE == s_nb) ss <= S_CRC;
                end
                S_CRC: if (go && !crc_pend) begin
                    s_inc <= 8'd1 << s_dst;
                    s_mask <= s_mask & ~(8'd1 << s_dst);
                    s_dst <= lowest(s_mask & ~(8'd1 << s_dst));
                    // The next destination gets a copy, or the send side takes the next frame.
                    ss <= ((s_mask & ~(8'd1 << s_dst)) == 8'd0) ? S_IDLE : S_HDR;
                end
                default: ss <= S_IDLE;
            endcase
        end
    end
endmodule
