// partita library core: link framer. Takes runs of values from a transmit queue (the caller's
// FIFO head: q_*) and sends them as frames (format: partita_hdl::frame): a header beat, up to
// MAXB payload beats with values packed from bit 0, and a trailer beat with the CRC-32 of
// header and payload, tlast on the trailer. An h run goes to every device of `q_hmask` (one
// copy per destination, lowest first), a partial-sum run to `q_dst`, a barrier to every device
// of OTHERS. A run longer than one frame continues in the next frame. Sequence numbers count
// frames per destination. The frame leaves on port ROUTES[2*dst +: 2]; `go` (from the port
// arbiter) says the offered beat leaves this cycle.
`timescale 1ns / 1ps
module partita_link_tx #(
    parameter integer LW = 64,          // link beat width (32 to 512)
    parameter integer DW = 16,          // h value width
    parameter integer ACCW = 40,        // partial-sum width
    parameter integer ME = 0,           // this device
    parameter integer LAYER_W = 1,      // width of layer indices (at most 3)
    parameter integer VPB_H = 4,        // h values per payload beat
    parameter integer VPB_P = 1,        // partial sums per payload beat
    parameter integer VPB_W = 2,        // width of a value-in-beat index
    parameter integer MAXV_H = 64,      // h values per frame at most
    parameter integer MAXV_P = 16,      // partial sums per frame at most
    parameter integer MAXB = 16,        // payload beats per frame at most
    parameter integer FB_W = 5,         // width of a payload beat count (0..MAXB)
    parameter integer FB_IX_W = 4,      // width of a payload beat index
    parameter [7:0] OTHERS = 8'h02,     // devices a barrier goes to
    parameter [15:0] ROUTES = 16'h0000  // tx port of each destination, 2 bits each
) (
    input  wire               clk,
    input  wire               rst,
    // Transmit queue head: {last of run, type, layer, parity, destination, value}.
    input  wire               q_empty,
    input  wire               q_last,
    input  wire [1:0]         q_type,
    input  wire [LAYER_W-1:0] q_layer,
    input  wire               q_par,
    input  wire [2:0]         q_dst,
    input  wire [ACCW-1:0]    q_val,
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
    localparam [2:0] F_IDLE = 3'd0, F_FILL = 3'd1, F_HDR = 3'd2, F_PAY = 3'd3, F_CRC = 3'd4;
    localparam [2:0] ME3 = ME[2:0];
    localparam [6:0] VPB_H7 = VPB_H[6:0];
    localparam [6:0] VPB_P7 = VPB_P[6:0];
    localparam [6:0] MAXV_H7 = MAXV_H[6:0];
    localparam [6:0] MAXV_P7 = MAXV_P[6:0];
    localparam [VPB_W-1:0] VI_ONE = 1;
    localparam [FB_W-1:0] FB_ONE = 1;
    reg [2:0] fs;
    reg [1:0] f_type;
    reg [LAYER_W-1:0] f_layer;
    reg [7:0] f_mask;
    reg [2:0] f_dst;
    reg [6:0] f_nv;
    reg [FB_W-1:0] f_nb, f_bi;
    reg [VPB_W-1:0] f_vi;
    reg [LW-1:0] f_beat;
    reg [LW-1:0] fbuf [0:MAXB-1];
    reg [12:0] tseq [0:7];
    wire [31:0] f_crc;
    wire crc_pend;
    reg f_par;
    integer i;

    function [2:0] lowest(input [7:0] m);
        integer n;
        begin
            lowest = 3'd0;
            for (n = 7; n >= 0; n = n - 1)
                if (m[n]) lowest = n[2:0];
        end
    endfunction

    // The value at the low end of a beat.
    wire [LW-1:0] ins_h, ins_p;
    generate
        if (LW > DW) begin : g_h
            assign ins_h = {{(LW - DW){1'b0}}, q_val[DW-1:0]};
        end else begin : g_h_full
            assign ins_h = q_val[LW-1:0];
        end
        if (LW > ACCW) begin : g_p
            assign ins_p = {{(LW - ACCW){1'b0}}, q_val};
        end else if (LW == ACCW) begin : g_p_full
            assign ins_p = q_val;
        end else begin : g_p_cut
            // Partial sums never travel on links narrower than the accumulator.
            assign ins_p = q_val[LW-1:0];
            wire unused_hi = &{1'b0, q_val[ACCW-1:LW]};
        end
    endgenerate
    // The value placed at its slot (f_vi) of the payload beat being filled: a constant shift
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
    wire [LW-1:0] f_ins = (f_type == 2'd0) ? slot_h[f_vi] : slot_p[f_vi];
    wire [LW-1:0] f_beat_n = f_beat | f_ins;
    wire [6:0] f_vpb = (f_type == 2'd0) ? VPB_H7 : VPB_P7;
    wire [6:0] f_maxv = (f_type == 2'd0) ? MAXV_H7 : MAXV_P7;
    wire f_take = (fs == F_FILL) && !q_empty;
    wire f_beat_done = f_take && (({{(7 - VPB_W){1'b0}}, f_vi} + 7'd1 == f_vpb) || q_last || (f_nv + 7'd1 == f_maxv));
    wire f_frame_done = f_take && (q_last || (f_nv + 7'd1 == f_maxv));
    assign q_pop = f_take || ((fs == F_IDLE) && !q_empty && q_type == 2'd2);
    assign port = ROUTES[2*f_dst +: 2];
    assign sending = (fs == F_HDR) || (fs == F_PAY) || ((fs == F_CRC) && !crc_pend);
    assign last = (fs == F_CRC);
    assign idle = (fs == F_IDLE);

    // Header: {type, source, destination, layer, count, parity, sequence} in the low 32 bits.
    wire [2:0] layer3;
    generate
        if (LAYER_W < 3) begin : g_layer
            assign layer3 = {{(3 - LAYER_W){1'b0}}, f_layer};
        end else begin : g_layer_full
            assign layer3 = f_layer[2:0];
        end
    endgenerate
    wire [31:0] hdr32 = {f_type, ME3, f_dst, layer3, f_nv, f_par, tseq[f_dst]};
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
        case (fs)
            F_HDR: data = hdr;
            F_PAY: data = fbuf[f_bi[FB_IX_W-1:0]];
            default: data = crc_beat;
        endcase
    end
    // The CRC starts with the header beat and goes on with each payload beat sent. The CRC core
    // registers its inputs (so its XOR network does not start at the frame buffer read and the
    // link's ready); the trailer waits while a beat is still pending there, one cycle per frame.
    partita_crc32 #(.W(LW)) u_crc (
        .clk(clk), .rst(rst), .start((fs == F_HDR) && go), .en((fs == F_PAY) && go),
        .data(data), .crc(f_crc), .pend(crc_pend)
    );

    always @(posedge clk) begin
        if (rst) begin
            fs <= F_IDLE;
            f_type <= 2'd0;
            f_layer <= {LAYER_W{1'b0}};
            f_mask <= 8'd0;
            f_dst <= 3'd0;
            f_nv <= 7'd0;
            f_nb <= {FB_W{1'b0}};
            f_bi <= {FB_W{1'b0}};
            f_vi <= {VPB_W{1'b0}};
            f_beat <= {LW{1'b0}};
            for (i = 0; i < 8; i = i + 1) tseq[i] <= 13'd0;
            f_par <= 1'b0;
        end else begin
            case (fs)
                F_IDLE: if (!q_empty) begin
                    f_type <= q_type;
                    f_layer <= q_layer;
                    f_par <= q_par;
                    f_nv <= 7'd0;
                    f_nb <= {FB_W{1'b0}};
                    f_vi <= {VPB_W{1'b0}};
                    f_beat <= {LW{1'b0}};
                    case (q_type)
                        2'd0: begin f_mask <= q_hmask; f_dst <= lowest(q_hmask); fs <= F_FILL; end
                        2'd1: begin f_mask <= 8'd1 << q_dst; f_dst <= q_dst; fs <= F_FILL; end
                        default: begin f_mask <= OTHERS; f_dst <= lowest(OTHERS); fs <= F_HDR; end
                    endcase
                end
                F_FILL: if (f_take) begin
                    f_nv <= f_nv + 7'd1;
                    if (f_beat_done) begin
                        fbuf[f_nb[FB_IX_W-1:0]] <= f_beat_n;
                        f_nb <= f_nb + FB_ONE;
                        f_vi <= {VPB_W{1'b0}};
                        f_beat <= {LW{1'b0}};
                    end else begin
                        f_vi <= f_vi + VI_ONE;
                        f_beat <= f_beat_n;
                    end
                    if (f_frame_done) fs <= F_HDR;
                end
                F_HDR: if (go) begin
                    f_bi <= {FB_W{1'b0}};
                    fs <= (f_nb == {FB_W{1'b0}}) ? F_CRC : F_PAY;
                end
                F_PAY: if (go) begin
                    f_bi <= f_bi + FB_ONE;
                    if (f_bi + FB_ONE == f_nb) fs <= F_CRC;
                end
                F_CRC: if (go && !crc_pend) begin
                    tseq[f_dst] <= tseq[f_dst] + 13'd1;
                    f_mask <= f_mask & ~(8'd1 << f_dst);
                    f_dst <= lowest(f_mask & ~(8'd1 << f_dst));
                    // The run goes on in the next frame, or the next destination gets a copy.
                    fs <= ((f_mask & ~(8'd1 << f_dst)) == 8'd0) ? F_IDLE : F_HDR;
                end
                default: fs <= F_IDLE;
            endcase
        end
    end
endmodule
