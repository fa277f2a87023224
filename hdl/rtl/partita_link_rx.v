// partita library core: link deframer (one receive port). Beats go into a DEPTH-beat FIFO, so
// the link is never held up longer than that, then through a register slice and a two-entry
// head buffer to the checks.
// A frame addressed to this device (me) is checked (format: partita_hdl::frame): its header
// (type, source, layer, count), its sequence number against the next one expected from its
// source, and its CRC-32 at the trailer. Its values come
// out one at a time (v_*; the caller takes each with v_ack), or a beat's run at a time (v_beat
// holds the head beat, v_vi the next value's slot in it, v_avail the values left in it, a
// register; the caller takes v_n of them, at most v_avail, or all of them with v_all, which
// ends the beat with no count compared); at the trailer the frame is
// committed (ok_p / ok_b with its source, layer and count) or, on a CRC mismatch, reported. A
// bad header or sequence number drops the frame unread. Errors pulse e_crc / e_seq / e_fmt
// with e_info = kind << 28 | source << 24 | expected seq << 13 | received seq. A frame
// addressed elsewhere is forwarded on port routes[2*dst +: 2]. With BCAST set (a one-way ring
// of three or more), a frame whose destination is its source is a ring broadcast: this device
// reads and checks it like one addressed to it (its sequence numbers counted apart from the
// source's frames to this device) and, if bc_fwd has the source's bit (the next device is not
// the source), also forwards it. Forwarded beats pass through a FIFO of FW_DEPTH beats
// (fwd_*: its head; `fwd_go` takes it), so forwarding never waits on the reader; a broadcast
// is accepted once that FIFO has room for a whole frame.
`timescale 1ns / 1ps
module partita_link_rx #(
    parameter integer LW = 64,          // link beat width (32 to 512)
    parameter integer DW = 16,          // h value width
    parameter integer ACCW = 40,        // partial-sum width
    parameter integer NDEV = 2,         // devices in the system (1 to 8)
    parameter integer NLAYERS = 1,      // layers (1 to 8)
    parameter integer LAYER_W = 1,      // width of layer indices (at most 3)
    parameter integer VPB_H = 4,        // h values per payload beat
    parameter integer VPB_P = 1,        // partial sums per payload beat
    parameter integer VPB_W = 2,        // width of a value-in-beat index
    parameter integer MAX_VALS = 64,    // largest count a frame may carry
    parameter integer AW = 6,           // input FIFO: 2^AW beats
    parameter integer DEPTH = 64,
    parameter integer BCAST = 0,        // ring broadcasts (destination = source) in use
    parameter integer FW_AW = 5,        // forwarding FIFO: 2^FW_AW beats
    parameter integer FW_DEPTH = 32
) (
    input  wire               clk,
    input  wire               rst,
    // Identity (held constant): this device, the tx port of each destination (2 bits each), and
    // the sources whose broadcasts this device forwards.
    input  wire [2:0]         me,
    input  wire [15:0]        routes,
    input  wire [7:0]         bc_fwd,
    input  wire [LW-1:0]      rx_tdata,
    input  wire               rx_tvalid,
    output wire               rx_tready,
    input  wire               rx_tlast,
    output wire               rx_beat,     // a beat entered this cycle
    // The frame being read: kind (0 h, 1 partial sums, 2 barrier), source, layer, parity.
    output reg  [1:0]         f_type,
    output reg  [2:0]         f_src,
    output reg  [LAYER_W-1:0] f_layer,
    output reg                f_par,
    output reg  [6:0]         f_count,
    // Its values, one at a time.
    output wire               v_valid,
    output reg  [ACCW-1:0]    v_data,
    input  wire               v_ack,
    // Or several values of the head beat at once.
    output wire [LW-1:0]      v_beat,
    output wire [VPB_W-1:0]   v_vi,
    output wire [6:0]         v_avail,
    input  wire [6:0]         v_n,
    input  wire               v_all,
    // A frame passed every check (pulses the cycle after its trailer).
    output reg                ok_p,
    output reg                ok_b,
    // Errors (pulses) and the details of the latest one.
    output reg                e_crc,
    output reg                e_seq,
    output reg                e_fmt,
    output reg  [31:0]        e_info,
    // Forwarding.
    output wire               fwd_valid,
    output wire [1:0]         fwd_port,
    output wire [LW-1:0]      fwd_data,
    output wire               fwd_last,
    input  wire               fwd_go
);
    localparam [3:0] NDEV4 = NDEV[3:0];
    localparam [3:0] NL4 = NLAYERS[3:0];
    localparam [6:0] VPB_H7 = VPB_H[6:0];
    localparam [6:0] VPB_P7 = VPB_P[6:0];
    localparam [6:0] MAXV7 = MAX_VALS[6:0];
    localparam [AW:0] FULL = DEPTH[AW:0];
    localparam integer NV = 1 << VPB_W;

    // Input FIFO of {tlast, tdata}, then a register slice, which registers the FIFO's memory
    // read (a block RAM's output has no time left for the lookups below), then the head buffer
    // the checks read, which holds each beat with what was looked up from it.
    wire [LW:0] f_head;
    wire [AW:0] cnt;
    wire f_ready;
    reg pop;
    wire crc_pend;
    // Whether the FIFO holds a beat, as a register (from the next count: a push, or a beat
    // left after this cycle's pop), so the slice's enables start at a flip-flop, not at a
    // compare of the count. It equals count != 0 every cycle.
    reg f_ne;
    wire f_valid = f_ne;
    wire f_pop = f_valid && f_ready;
    // The link's ready, count != FULL, likewise a register (from the next count), so a beat's
    // push (into the FIFO's write and its read-during-write bypass) starts at flip-flops and
    // the link's valid, not at a compare of the count.
    reg rdy_r;
    assign rx_tready = rdy_r;
    assign rx_beat = rx_tvalid && rx_tready;
    localparam [AW:0] CNT1 = 1;
    wire [AW:0] cnt_n = cnt + {{AW{1'b0}}, rx_beat} - {{AW{1'b0}}, f_pop};
    always @(posedge clk) begin
        if (rst) begin
            f_ne <= 1'b0;
            rdy_r <= 1'b1;
        end else begin
            f_ne <= rx_beat || (cnt > CNT1) || ((cnt == CNT1) && !f_pop);
            rdy_r <= (cnt_n != FULL);
        end
    end
    partita_fifo #(.W(LW + 1), .AW(AW), .DEPTH(DEPTH)) u_fifo (
        .clk(clk), .rst(rst), .push(rx_beat), .din({rx_tlast, rx_tdata}), .pop(f_pop),
        .dout(f_head), .count(cnt)
    );
    wire [LW:0] q_head;
    wire q_valid, q_ready;
    partita_skid #(.W(LW)) u_pre (
        .clk(clk), .rst(rst),
        .s_tdata(f_head[LW-1:0]), .s_tvalid(f_valid), .s_tready(f_ready), .s_tlast(f_head[LW]),
        .m_tdata(q_head[LW-1:0]), .m_tvalid(q_valid), .m_tready(q_ready), .m_tlast(q_head[LW])
    );
    reg [1:0] rs;  // 0 header, 1 payload, 2 forward, 3 drop
    reg [6:0] rleft;
    reg [VPB_W-1:0] rvi;
    reg [1:0] rfport;
    reg rfw, f_bc;
    // Expected sequence numbers: per source, {broadcast, source}.
    reg [12:0] rseq [0:15];
    // The frame's source's next sequence number, set when its header is taken, so the trailer
    // only stores it (no table read and add in that cycle).
    reg [12:0] nseq;
    // A trailer is checked in two cycles: its cycle registers the CRC compare (t_v, t_ok, with
    // the frame's source and type), the next acts on it (the sequence table, the frame-ok
    // pulses, a CRC error), so the 32-bit compare ends at flip-flops, not at the table's
    // enables. (t_sx is {broadcast, source}.)
    reg t_v, t_ok;
    reg [3:0] t_sx;
    reg [1:0] t_type;

    // The head beat reaches the checks through the head buffer. What a header's checks need
    // from its destination and source is looked up before the buffer and carried through it
    // beside the beat: whether it is read here (to this device, or a broadcast) and forwarded,
    // whether it is a broadcast, and its source's expected sequence number. So the take below
    // (pop) and the sequence check start at flip-flops, not at the
    // destination compares and the sequence table. (Looked up for every beat; only a header's
    // are used.) The table changes only in the cycle after a trailer (t_v): a lookup in that
    // cycle takes the value being written (the bypass here), and a header already in the
    // buffer then is checked in that same cycle, through the bypass below (t_hit).
    wire [2:0] q_src = q_head[29:27];
    wire [2:0] q_dst = q_head[26:24];
    wire q_bc = (BCAST != 0) && (q_dst == q_src);
    wire q_me = (q_dst == me) || q_bc;
    wire q_fw = q_bc ? bc_fwd[q_src] : (q_dst != me);
    // The lookup is made for both a point-to-point and a broadcast frame of the source, side
    // by side (with the bypass), and the broadcast compare picks last, so it does not sit in
    // front of the table's select.
    wire [12:0] q_rseq_p = (t_v && t_ok && (t_sx == {1'b0, q_src})) ? nseq : rseq[{1'b0, q_src}];
    wire [12:0] q_rseq_b = (t_v && t_ok && (t_sx == {1'b1, q_src})) ? nseq : rseq[{1'b1, q_src}];
    wire [12:0] q_rseq = q_bc ? q_rseq_b : q_rseq_p;
    wire hv;
    wire [LW-1:0] hd;
    wire hl;
    wire hd_me, hd_fw, hd_bc;
    wire [12:0] hd_rseq;
    // The head: a buffer of two entries (as a register slice holds two: main and skid, with
    // the same handshake, cycle for cycle). Entries are written by a write pointer, so their
    // enables come from registers (the slice's valid, the buffer's ready, the pointer), and
    // read through a select by a read pointer: the reader's take (pop, which waits on the
    // reader's own count of values taken) moves two pointers and a count and enables no wide
    // register. (hv_r and hrdy are hcnt != 0 and hcnt != 2, kept as registers.)
    localparam integer HW = LW + 17;
    reg [HW-1:0] he0, he1;
    reg hwp, hrp, hv_r, hrdy;
    reg [1:0] hcnt;
    wire hpush = q_valid && hrdy;
    assign q_ready = hrdy;
    wire [1:0] hcnt_n = hcnt + {1'b0, hpush} - {1'b0, pop};
    assign hv = hv_r;
    assign {hd_me, hd_fw, hd_bc, hd_rseq, hd, hl} = hrp ? he1 : he0;
    always @(posedge clk) begin
        if (hpush && !hwp) he0 <= {q_me, q_fw, q_bc, q_rseq, q_head[LW-1:0], q_head[LW]};
        if (hpush && hwp) he1 <= {q_me, q_fw, q_bc, q_rseq, q_head[LW-1:0], q_head[LW]};
        if (rst) begin
            hwp <= 1'b0;
            hrp <= 1'b0;
            hcnt <= 2'd0;
            hv_r <= 1'b0;
            hrdy <= 1'b0;
        end else begin
            if (hpush) hwp <= !hwp;
            if (pop) hrp <= !hrp;
            hcnt <= hcnt_n;
            hv_r <= (hcnt_n != 2'd0);
            hrdy <= (hcnt_n != 2'd2);
        end
    end

    // Header fields of the head beat.
    wire [1:0] hd_type = hd[31:30];
    wire [2:0] hd_src = hd[29:27];
    wire [2:0] hd_dst = hd[26:24];
    wire [2:0] hd_layer = hd[23:21];
    wire [6:0] hd_cnt = hd[20:14];
    wire hd_par = hd[13];
    wire [12:0] hd_seq = hd[12:0];
    // A count above what a frame may carry (no check when that is the field's maximum).
    wire hd_over;
    generate
        if (MAX_VALS < 127) begin : g_cnt
            assign hd_over = (hd_cnt > MAXV7);
        end else begin : g_cnt_full
            assign hd_over = 1'b0;
        end
    endgenerate
    wire hd_bad = (hd_type == 2'd3) || ({1'b0, hd_src} >= NDEV4) || (hd_src == me)
        || ({1'b0, hd_layer} >= NL4) || hl
        || ((hd_type == 2'd2) != (hd_cnt == 7'd0)) || hd_over;
    wire [1:0] hd_port = routes[2*hd_dst +: 2];

    wire [3:0] f_sx = {f_bc, f_src};
    // A header read here takes two cycles: the first registers its checks (hq: done; q_bad, a
    // format error; q_seqok, its sequence number is the one expected, q_exp), the second acts
    // on them, so the checks end at flip-flops, not at the forwarding FIFO's write and the
    // state. The expected number is the one carried through the slice, or, when a trailer of
    // the same source is acted on in the first cycle (a hit), the one being written (nseq);
    // both compares are made side by side, for each head-buffer entry from its own register
    // (the read pointer picks the result last, so it does not fan out into the compares). The
    // table never changes between the two cycles.
    reg hq, q_bad, q_seqok;
    reg [12:0] q_exp;
    wire [3:0] e0_sx = {he0[LW+14], he0[30:28]};
    wire [3:0] e1_sx = {he1[LW+14], he1[30:28]};
    wire e0_hit = t_v && t_ok && (t_sx == e0_sx);
    wire e1_hit = t_v && t_ok && (t_sx == e1_sx);
    wire e0_eq = e0_hit ? (he0[13:1] == nseq) : (he0[13:1] == he0[LW+13:LW+1]);
    wire e1_eq = e1_hit ? (he1[13:1] == nseq) : (he1[13:1] == he1[LW+13:LW+1]);
    wire [12:0] rseq_hd = (hrp ? e1_hit : e0_hit) ? nseq : hd_rseq;
    wire seq_eq = hrp ? e1_eq : e0_eq;
    wire hd_ready = !hd_me || hq;

    // Forwarding FIFO of {port, tlast, beat}, written from a register slice (fw_push_q,
    // fw_din_q), so the header's decode and the handshake end at flip-flops beside the reader,
    // not at the FIFO's memory. `fw_full` and `fw_room` (a whole frame fits) are registers,
    // from the count a cycle earlier: the margins cover the pushes they may then still allow
    // (two in flight, one in the slice and one deciding) and one more.
    localparam integer FR_MAX = 18;     // header, 16 payload beats, trailer
    localparam integer FW_ROOM_I = FW_DEPTH - FR_MAX - 3;
    localparam integer FW_FULL_I = FW_DEPTH - 3;
    localparam [FW_AW:0] FW_ROOM = FW_ROOM_I[FW_AW:0];
    localparam [FW_AW:0] FW_FULL = FW_FULL_I[FW_AW:0];
    wire [FW_AW:0] fw_cnt;
    wire [LW+2:0] fw_head;
    reg fw_full, fw_room;
    reg fw_push;
    reg [1:0] fw_port;
    always @(posedge clk) begin
        if (rst) begin
            fw_full <= 1'b0;
            fw_room <= 1'b0;
        end else begin
            fw_full <= (fw_cnt >= FW_FULL);
            fw_room <= (fw_cnt <= FW_ROOM);
        end
    end
    reg fw_push_q;
    reg [LW+2:0] fw_din_q;
    always @(posedge clk) begin
        if (rst) fw_push_q <= 1'b0;
        else fw_push_q <= fw_push;
        fw_din_q <= {fw_port, hl, hd};
    end
    partita_fifo #(.W(LW + 3), .AW(FW_AW), .DEPTH(FW_DEPTH)) u_fwd (
        .clk(clk), .rst(rst), .push(fw_push_q), .din(fw_din_q),
        .pop(fwd_go), .dout(fw_head), .count(fw_cnt)
    );
    integer i;

    // Values left in the head payload beat (a register: min(values per beat, values left) when
    // a beat starts, less each take); a take of all of them ends the beat.
    wire [6:0] rvpb = (f_type == 2'd0) ? VPB_H7 : VPB_P7;
    wire [6:0] hvpb = (hd_type == 2'd0) ? VPB_H7 : VPB_P7;
    // A beat's values: those left in the frame, at most a beat's worth.
    function [6:0] min7(input [6:0] a, input [6:0] b);
        min7 = (a < b) ? a : b;
    endfunction
    wire [6:0] havail = min7(hd_cnt, hvpb);
    reg [6:0] ravail;
    reg ravail1;  // ravail == 1, kept as a register: a single take (v_ack) ends the beat on it
    // rleft == 0, kept as a register alongside rleft (set wherever rleft is).
    reg rl_zr;
    wire rl_z = rl_zr;
    assign v_valid = hv && (rs == 2'd1) && !hl && !rl_z;
    assign v_avail = ravail;
    assign v_beat = hd;
    assign v_vi = rvi;
    // The values taken, as far as the slot index needs them.
    localparam [VPB_W-1:0] VI_ONE = 1;
    wire [VPB_W-1:0] tk = v_all ? ravail[VPB_W-1:0] : (v_ack ? VI_ONE : v_n[VPB_W-1:0]);
    wire took = v_all || v_ack || (v_n != 7'd0);
    wire v_last = v_all || (v_ack ? ravail1 : (v_n == ravail));
    // The take's results (values left in the frame and in the beat, and their flags) computed
    // for each kind of take side by side from registers (all the beat's values, one value, or
    // v_n of them), the kind picked last: the reader's take logic then ends in a select, not in
    // front of a subtract and compares.
    wire [6:0] nleft_a = rleft - ravail;
    wire [6:0] navail_a = min7(nleft_a, rvpb);
    wire [6:0] nleft_1 = rleft - 7'd1;
    wire [6:0] navail_1 = ravail1 ? min7(nleft_1, rvpb) : (ravail - 7'd1);
    wire [6:0] nleft_v = rleft - v_n;
    wire [6:0] navail_v = (v_n == ravail) ? min7(nleft_v, rvpb) : (ravail - v_n);
    wire [6:0] nleft = v_all ? nleft_a : (v_ack ? nleft_1 : nleft_v);
    wire [6:0] navail = v_all ? navail_a : (v_ack ? navail_1 : navail_v);
    wire nlz = v_all ? (nleft_a == 7'd0) : (v_ack ? (nleft_1 == 7'd0) : (nleft_v == 7'd0));
    wire na1 = v_all ? (navail_a == 7'd1) : (v_ack ? (navail_1 == 7'd1) : (navail_v == 7'd1));
    wire [ACCW-1:0] vh [0:NV-1];
    wire [ACCW-1:0] vp [0:NV-1];
    genvar v;
    generate
        for (v = 0; v < NV; v = v + 1) begin : g_slot
            if (v < VPB_H) begin : g_h
                assign vh[v] = {{(ACCW - DW){1'b0}}, hd[v*DW +: DW]};
            end else begin : g_h_none
                assign vh[v] = {ACCW{1'b0}};
            end
            if (v < VPB_P && (v + 1) * ACCW <= LW) begin : g_p
                assign vp[v] = hd[v*ACCW +: ACCW];
            end else begin : g_p_none
                assign vp[v] = {ACCW{1'b0}};
            end
        end
    endgenerate
    always @* v_data = (f_type == 2'd0) ? vh[rvi] : vp[rvi];

    assign fwd_valid = (fw_cnt != {(FW_AW + 1){1'b0}});
    assign fwd_port = fw_head[LW+2:LW+1];
    assign fwd_data = fw_head[LW-1:0];
    assign fwd_last = fw_head[LW];

    // A header is taken when it is read here (a broadcast to forward: once a whole frame fits
    // the forwarding FIFO) or, to forward, when that FIFO is not full; a frame being
    // forwarded goes on beat by beat while the FIFO is not full.
    wire hd_go = hd_me ? (!hd_fw || fw_room) : !fw_full;
    always @* begin
        fw_port = (rs == 2'd0) ? hd_port : rfport;
        case (rs)
            2'd0: pop = hv && hd_go && hd_ready;
            2'd1: pop = hv && (hl ? !crc_pend : (rl_z || (took && v_last)));
            2'd2: pop = hv && !fw_full;
            default: pop = hv && !(rfw && fw_full);
        endcase
        // A broadcast dropped after its header was forwarded is forwarded to its end.
        case (rs)
            2'd0: fw_push = pop && hd_fw && !(hd_me && (q_bad || !q_seqok));
            2'd1: fw_push = pop && rfw;
            2'd2: fw_push = pop;
            default: fw_push = pop && rfw;
        endcase
    end

    // The CRC starts with an accepted header and goes on with each payload beat read out. The
    // CRC core registers its inputs (so its XOR network does not start at the FIFO read and
    // the reader's acknowledge) and the data's share of the CRC in a stage of its own (SPLIT:
    // the one dense XOR network of a 64-bit beat was this core's slowest path); the trailer
    // waits while a beat is still pending there, two cycles per frame. (Computed instead at
    // the link's input, before the FIFO, that network sat between the link's register and the
    // FIFO's block RAMs, which the placer put up to 40 rows away: 82 and 97 MHz.)
    wire [31:0] rcrc;
    wire crc_start = (rs == 2'd0) && hv && hd_me && hq && hd_go && !q_bad && q_seqok;
    wire crc_en = (rs == 2'd1) && hv && !hl && !rl_z && took && v_last;
    partita_crc32 #(.W(LW), .SPLIT(1)) u_crc (
        .clk(clk), .rst(rst), .start(crc_start), .en(crc_en), .data(hd), .crc(rcrc),
        .pend(crc_pend)
    );

    always @(posedge clk) begin
        ok_p <= 1'b0;
        ok_b <= 1'b0;
        e_crc <= 1'b0;
        e_seq <= 1'b0;
        e_fmt <= 1'b0;
        t_v <= 1'b0;
        if (rst) begin
            rs <= 2'd0;
            t_ok <= 1'b0;
            t_sx <= 4'd0;
            t_type <= 2'd0;
            f_type <= 2'd0;
            f_src <= 3'd0;
            f_layer <= {LAYER_W{1'b0}};
            rleft <= 7'd0;
            rl_zr <= 1'b1;
            nseq <= 13'd0;
            f_count <= 7'd0;
            rvi <= {VPB_W{1'b0}};
            ravail <= 7'd0;
            ravail1 <= 1'b0;
            rfport <= 2'd0;
            rfw <= 1'b0;
            f_bc <= 1'b0;
            hq <= 1'b0;
            q_bad <= 1'b0;
            q_seqok <= 1'b0;
            q_exp <= 13'd0;
            e_info <= 32'd0;
            for (i = 0; i < 16; i = i + 1) rseq[i] <= 13'd0;
        end else begin
            if (t_v) begin
                if (t_ok) begin
                    rseq[t_sx] <= nseq;
                    ok_p <= (t_type == 2'd1);
                    ok_b <= (t_type == 2'd2);
                end else begin
                    e_crc <= 1'b1;
                    // The expected sequence number: the frame's own, q_exp (the header
                    // checks of the next frame set it at the end of this cycle at the earliest),
                    // so no table read sits in front of e_info.
                    e_info <= {4'd1, 1'b0, t_sx[2:0], 11'd0, q_exp};
                end
            end
            if (rs == 2'd0 && hv && hd_me && !hq) begin
                hq <= 1'b1;
                q_bad <= hd_bad;
                q_seqok <= seq_eq;
                q_exp <= rseq_hd;
            end
            case (rs)
                2'd0: if (hv && hd_go && hd_ready) begin
                    hq <= 1'b0;
                    if (hd_me) begin
                        if (q_bad) begin
                            e_fmt <= 1'b1;
                            e_info <= {4'd3, 1'b0, hd_src, 11'd0, hd_seq};
                            rfw <= 1'b0;
                            rs <= hl ? 2'd0 : 2'd3;
                        end else if (!q_seqok) begin
                            e_seq <= 1'b1;
                            e_info <= {4'd2, 1'b0, hd_src, q_exp[10:0], hd_seq};
                            rfw <= 1'b0;
                            rs <= 2'd3;
                        end else begin
                            rs <= 2'd1;
                            rfw <= hd_fw;
                            rfport <= hd_port;
                            f_bc <= hd_bc;
                            f_type <= hd_type;
                            f_par <= hd_par;
                            f_src <= hd_src;
                            f_layer <= hd_layer[LAYER_W-1:0];
                            rleft <= hd_cnt;
                            rl_zr <= (hd_cnt == 7'd0);
                            nseq <= q_exp + 13'd1;
                            f_count <= hd_cnt;
                            rvi <= {VPB_W{1'b0}};
                            ravail <= havail;
                            ravail1 <= (havail == 7'd1);
                        end
                    end else begin
                        rfport <= hd_port;
                        rs <= hl ? 2'd0 : 2'd2;
                    end
                end
                2'd1: if (hv) begin
                    if (hl) begin
                        if (!crc_pend) begin
                            rs <= 2'd0;
                            t_v <= 1'b1;
                            t_ok <= (hd[31:0] == rcrc) && rl_z;
                            t_sx <= f_sx;
                            t_type <= f_type;
                        end
                    end else if (rl_z) begin
                        e_fmt <= 1'b1;
                        e_info <= {4'd3, 1'b0, f_src, 11'd0, q_exp};
                        rs <= 2'd3;
                    end else if (took) begin
                        rleft <= nleft;
                        rl_zr <= nlz;
                        ravail <= navail;
                        ravail1 <= na1;
                        if (v_last) begin
                            rvi <= {VPB_W{1'b0}};
                        end else begin
                            rvi <= rvi + tk;
                        end
                    end
                end
                2'd2: if (pop && hl) rs <= 2'd0;
                default: if (hv && hl) rs <= 2'd0;
            endcase
        end
    end
endmodule
