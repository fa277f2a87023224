{= header =}
// The vector memories' write port: one word of {= vq =} values per cycle, from (in priority order)
// this device's new h values ({% if e > 1 %}a group of {= e =} per write{% else %}one per write{% endif %}), the h values arriving on each link port (taken
// a whole beat at a time into a two-beat buffer per port, then written the run left in the
// buffered beat up to the end of a word or bank: a beat that starts a bank's word lands in one
// write), or the x stream (the run left in the unpacker's head beat, up to
// the end of a word or bank). Each value goes to its home:
// unit u of a layer's h at lane u / {= bh =}, index u mod {= bh =} of the tick-parity buffer its
// frame names; x of a timestep into the x buffer of its tick's parity. The x loader runs up to
// one tick ahead of the controller. Each source prepares its next write in registers of its
// own; the write port is granted among the prepared writes. The port's outputs are registers.
module {= name =} (
    input  wire                   clk,
    input  wire                   rst,
    input  wire                   start,
    input  wire                   busy,
    input  wire                   tick,      // the controller's tick count advances
    input  wire [31:0]            seq_len,
    input  wire [31:0]            seq_count,
    // This device's h values (h_out), written to lane/index from the finishing unit on.
    input  wire                   h_out,
    input  wire                   h_need,
    input  wire                   fstart,   // the finisher starts a layer
    input  wire [{= lane_w =}-1:0]  flane,
    input  wire [{= vaw =}-1:0]     fidx,
    input  wire [{= vaw =}-1:0]     hbase_wr,
    input  wire [{= hw =}-1:0]      h,
    // Per {source, layer}, where its h run starts ({lane, index, count}; the node's identity).
    input  wire [{= hstarts_w =}-1:0] hstarts,
    // Received h values, per port: valid, source, layer, buffer parity; the head beat, the
    // next value's slot in it and the values left in it; whether all of them are taken.
    input  wire [{= nports =}-1:0]    rv_h,
    input  wire [{= src_bits =}-1:0]   rv_src,
    input  wire [{= layer_bits =}-1:0] rv_layer,
    input  wire [{= nports =}-1:0]    rv_par,
    input  wire [{= beat_bits =}-1:0] rv_beat,
    input  wire [{= vi_bits =}-1:0]   rv_vi,
    input  wire [{= n_bits =}-1:0]    rv_avail,
    output wire [{= nports =}-1:0]    rv_all,
    output wire                   pend,      // received values not yet written
    // The x stream's unpacker: its head beat (next value in the low bits), valid, the values
    // of the vector left in the beat, and the count taken.
    input  wire [{= xbits =}-1:0] x_beat,
    input  wire                   x_valid,
    input  wire [{= xjw =}:0]      x_avail,
    output wire [{= xjw =}:0]      x_n,
    output wire                   x_ready,
    // The write port.
    output reg                    vw_en,
    output reg  [{= lane_w =}-1:0]  vw_lane,
    output reg  [{= vwa =}-1:0]     vw_word,
    output reg  [{= vq =}-1:0]      vw_we,
    output reg  [{= vqd =}-1:0]     vw_data
);
    // Value i of a received h beat.
    function [{= dw =}-1:0] hval(input [{= hbits =}-1:0] beat, input [{= vpb_w =}-1:0] i);
        begin
            case (i)
{% for v in hvals %}                {= vpb_w =}'d{= v.0 =}: hval = beat[{= v.1 =} +: {= dw =}];
{% endfor %}                default: hval = {= dw =}'d0;
            endcase
        end
    endfunction
    // Value i of the x stream's head beat.
    function [{= dw =}-1:0] xval(input [{= xbits =}-1:0] beat, input [{= xjw =}-1:0] i);
        begin
            case (i)
{% for v in xvals %}                {= xjw =}'d{= v.0 =}: xval = beat[{= v.1 =} +: {= dw =}];
{% endfor %}                default: xval = {= dw =}'d0;
            endcase
        end
    endfunction
    // Local h: lane and index of the next unit this device finishes.
    reg [{= lane_w =}-1:0] lh_lane;
    reg [{= vaw =}-1:0] lh_idx;
    wire lh_req = h_out && h_need;
    // The local write waits one cycle in registers, so the finisher's advance (h_out) reaches
    // no other request's grant and no loader enable.
    reg lh_q;
    reg [{= lane_w =}-1:0] lh_lane_q;
    reg [{= vaw =}-1:0] lh_a_q;
    reg [{= hw =}-1:0] lh_h_q;
    always @(posedge clk) begin
        if (rst) lh_q <= 1'b0;
        else lh_q <= lh_req;
        lh_lane_q <= lh_lane;
        lh_a_q <= hbase_wr + lh_idx;
        lh_h_q <= h;
    end
    always @(posedge clk) begin
        if (rst || fstart) begin
            lh_lane <= flane;
            lh_idx <= fidx;
        end else if (h_out) begin
            if (lh_idx == {= vaw =}'d{= bh_last_e =}) begin
                lh_idx <= {= vaw =}'d0;
                lh_lane <= lh_lane + {= lane_w =}'d1;
            end else begin
                lh_idx <= lh_idx + {= vaw =}'d{= e =};
            end
        end
    end

    // Received h: where the next value from each device goes. hstart(s, layer) is the start
    // {lane, index, count} of device s's h run of that layer.
    function [{= hstart_w =}-1:0] hstart(input [2:0] s, input [{= layer_w =}-1:0] ly);
        begin
            hstart = hstarts[{s, ly} * {= hstart_w =} +: {= hstart_w =}];
        end
    endfunction
    // Received beats waiting in a port's buffer; any at all (the controller starts a tick only
    // when every h value of the last is written).
    wire [{= nports =}-1:0] b_valid;
    // Per port: whether its registers hold a prepared write (pv, and its next value pv_n),
    // whether the write port is granted to it (pgrant), and whether a run is prepared this
    // cycle (rv_take).
    wire [{= nports =}-1:0] pv, pv_n, pgrant, rv_take;
    wire [{= nports =}-1:0] s_valid;
    assign pend = (s_valid != {= nports =}'d0) || (b_valid != {= nports =}'d0) || (pv != {= nports =}'d0) || lh_q;
{% for p in ports %}    // Port {= p.index =}: a buffer of two received beats. A beat is taken whole from the
    // deframer (all the values left in it) while the buffer has a free entry (a register, so the
    // deframer's handshake does not wait on the write below), and written from the buffer's
    // head a run at a time.
    reg [1:0] bc_{= p.index =};
    // bc != 2 (an entry free), kept as a register set from bc's next value: the slice's ready,
    // so the slice's enables follow a flip-flop, not the write logic that pops the buffer.
    reg bf_{= p.index =};
    // bc != 0 and bc == 1 likewise (bc == 2 is !bf): the take, the head's update and the
    // second entry's choice start at flip-flops, not at compares of the count.
    reg bne_{= p.index =}, b1_{= p.index =};
    // The beats themselves sit in two entries written at a write pointer and read at a read
    // pointer (bq_wp, bq_rp): an entry is written whenever it is free (bf), from the slice, so
    // the entries' wide enables follow flip-flops only, and a pop moves a pointer, not a beat.
    reg [{= hbits =}-1:0] bq0_{= p.index =}, bq1_{= p.index =};
    reg bq_wp_{= p.index =}, bq_rp_{= p.index =};
    reg [{= vpb_w =}-1:0] bv0_{= p.index =}, bv1_{= p.index =};
    reg [6:0] bn0_{= p.index =}, bn1_{= p.index =};
    reg [2:0] bs0_{= p.index =}, bs1_{= p.index =};
    reg [{= layer_w =}-1:0] bl0_{= p.index =}, bl1_{= p.index =};
    reg bp0_{= p.index =}, bp1_{= p.index =};
    // The port's received beats arrive through a register slice (partita_skid) beside this
    // writer: the link receiver's frame fields (source, layer) reach flip-flops here before
    // they select from the per-source tables below. A beat waiting in it counts as pending.
    wire sv_{= p.index =};
    wire sk_rdy_{= p.index =}, sk_last_{= p.index =};
    wire [2:0] rs_{= p.index =};
    wire [{= layer_w =}-1:0] rl_{= p.index =};
    wire rp_{= p.index =};
    wire [{= hbits =}-1:0] rb_{= p.index =};
    wire [{= vpb_w =}-1:0] rvi_{= p.index =};
    wire [6:0] rn_{= p.index =};
    partita_skid #(.W({= skw =})) u_rx_slice_{= p.index =} (
        .clk(clk), .rst(rst),
        .s_tdata({rv_src[{= p.index =}*3 +: 3], rv_layer[{= p.index =}*{= layer_w =} +: {= layer_w =}], rv_par[{= p.index =}], rv_beat[{= p.index =}*{= lw =} +: {= hbits =}], rv_vi[{= p.index =}*{= vpb_w =} +: {= vpb_w =}], rv_avail[{= p.index =}*7 +: 7]}),
        .s_tvalid(rv_h[{= p.index =}]), .s_tready(sk_rdy_{= p.index =}), .s_tlast(1'b0),
        .m_tdata({rs_{= p.index =}, rl_{= p.index =}, rp_{= p.index =}, rb_{= p.index =}, rvi_{= p.index =}, rn_{= p.index =}}),
        .m_tvalid(sv_{= p.index =}), .m_tready(bf_{= p.index =}), .m_tlast(sk_last_{= p.index =})
    );
    wire unused_sk_{= p.index =} = &{1'b0, sk_last_{= p.index =}};
    // Only h beats are taken here (rv_all is low for any other type).
    assign rv_all[{= p.index =}] = rv_h[{= p.index =}] && sk_rdy_{= p.index =};
    assign s_valid[{= p.index =}] = sv_{= p.index =};
    wire acc_{= p.index =} = sv_{= p.index =} && bf_{= p.index =};
    assign b_valid[{= p.index =}] = bne_{= p.index =};
    wire [2:0] src_{= p.index =} = bs0_{= p.index =};
    wire [{= layer_w =}-1:0] lay_{= p.index =} = bl0_{= p.index =};
    reg [{= lane_w =}-1:0] hl_lane_{= p.index =} [0:7];
    reg [{= vaw =}-1:0] hl_idx_{= p.index =} [0:7];
    reg [{= hcnt_w =}-1:0] hl_rem_{= p.index =} [0:7];
    // Whether the source's next value starts a run (its values left are 0), kept beside the
    // count so the next head's choice between the table and the run start needs no compare.
    reg [7:0] hl_first_{= p.index =};
    // Per source: its place in its run (lane, index, values left; 0 left: the next value
    // starts a run). The head entry's source's place is kept in registers of its own: loaded
    // from the per-source table when an entry becomes the head (or from this cycle's write,
    // when the new head comes from the same source), advanced with each write; at a run's
    // start they hold the run's first lane and index and its length. The head's run start
    // hstart(source, layer) is a register too, looked up when the entry becomes the head. So
    // neither the table's 8-way selects nor the hstart table sit in this write's cycle.
    reg [{= lane_w =}-1:0] hq_lane_{= p.index =};
    reg [{= vaw =}-1:0] hq_idx_{= p.index =};
    reg [{= hcnt_w =}-1:0] hq_rem_{= p.index =};
    reg [{= hstart_w =}-1:0] hs_{= p.index =};
    wire [{= hcnt_w =}-1:0] hw_n_{= p.index =} = hs_{= p.index =}[{= hs_n_hi =}:0];
    reg [{= vwa =}-1:0] hw_base_{= p.index =};
    always @* begin
        hw_base_{= p.index =} = {= vwa =}'d0;
        case (lay_{= p.index =})
{% for c in hbases %}            {= layer_w =}'d{= c.index =}: hw_base_{= p.index =} = bp0_{= p.index =} ? {= vwa =}'d{= c.wbase1 =} : {= vwa =}'d{= c.wbase0 =};
{% endfor %}            default: ;
        endcase
    end
    // This write: the values left in the head beat, up to the end of the word and of the bank.
    // Every region starts on a whole word, so the write's first slot is the index's low bits,
    // and the bank's end can only fall in its last word: the room is that word's ({= r_last =}
    // values) or a whole word's, less the first slot. Compares of small counts only; whether
    // the beat is used up (fits) and whether the bank ends here (hend) come from them.
    wire [{= vwa =}-1:0] ha_{= p.index =} = hw_base_{= p.index =} + hq_idx_{= p.index =}[{= vaw =}-1:{= vqw =}];
    wire [{= vqw1 =}-1:0] ho_{= p.index =} = {= p.ho =};
    wire lastw_{= p.index =} = {= p.lastw =};
    wire [{= vqw1 =}-1:0] rr_{= p.index =} = (lastw_{= p.index =} ? {= vqw1 =}'d{= r_last =} : {= vqw1 =}'d{= vq =}) - ho_{= p.index =};
    wire [6:0] ho7_{= p.index =} = {= p.ho7 =};
    wire [6:0] av_{= p.index =} = bn0_{= p.index =};
    // The room is at most a word, so the compares and the count taken are that narrow.
    wire avh_{= p.index =} = {= p.av_hi =};
    wire [{= vqw1 =}-1:0] avl_{= p.index =} = {= p.av_lo =};
    wire fits_{= p.index =} = !avh_{= p.index =} && (avl_{= p.index =} <= rr_{= p.index =});
    wire ge_{= p.index =} = avh_{= p.index =} || (avl_{= p.index =} >= rr_{= p.index =});
    wire [{= vqw1 =}-1:0] kq_{= p.index =} = ge_{= p.index =} ? rr_{= p.index =} : avl_{= p.index =};
    wire [6:0] k_{= p.index =} = {= p.k7 =};
    wire [{= vpb_w =}-1:0] vi_{= p.index =} = bv0_{= p.index =};
    wire [{= hbits =}-1:0] beat_{= p.index =} = bq_rp_{= p.index =} ? bq1_{= p.index =} : bq0_{= p.index =};
    // Slot j takes the beat's value vi + (j - first slot) when that is one of the k.
{% for j in slots %}    wire [6:0] off_{= p.index =}_{= j.0 =} = 7'd{= j.0 =} - ho7_{= p.index =};
    wire we_{= p.index =}_{= j.0 =} = (off_{= p.index =}_{= j.0 =} < k_{= p.index =});
    wire [{= dw =}-1:0] d_{= p.index =}_{= j.0 =} = hval(beat_{= p.index =}, vi_{= p.index =} + off_{= p.index =}_{= j.0 =}[{= vpb_w =}-1:0]);
{% endfor %}    wire [{= vq =}-1:0] pwe_{= p.index =} = {{% for j in slots_rev %}we_{= p.index =}_{= j =}{% if !loop.last %}, {% endif %}{% endfor %}};
    wire [{= vqd =}-1:0] pdata_{= p.index =} = {{% for j in slots_rev %}d_{= p.index =}_{= j =}{% if !loop.last %}, {% endif %}{% endfor %}};
    // The run is prepared into registers of the port's own and held there until the write
    // port is granted to it: the beat's value selection ends at these flip-flops, the write
    // port's source select starts at them. The port's place advances as a run is prepared.
    reg pv_{= p.index =};
    reg [{= lane_w =}-1:0] pl_{= p.index =};
    reg [{= vwa =}-1:0] pa_{= p.index =};
    reg [{= vq =}-1:0] pm_{= p.index =};
    reg [{= vqd =}-1:0] pd_{= p.index =};
    assign pv[{= p.index =}] = pv_{= p.index =};
    assign rv_take[{= p.index =}] = b_valid[{= p.index =}] && (!pv_{= p.index =} || pgrant[{= p.index =}]);
    assign pv_n[{= p.index =}] = rv_take[{= p.index =}] || (pv_{= p.index =} && !pgrant[{= p.index =}]);
    always @(posedge clk) begin
        if (rst) pv_{= p.index =} <= 1'b0;
        else pv_{= p.index =} <= pv_n[{= p.index =}];
        if (rv_take[{= p.index =}]) begin
            pl_{= p.index =} <= hq_lane_{= p.index =};
            pa_{= p.index =} <= ha_{= p.index =};
            pm_{= p.index =} <= pwe_{= p.index =};
            pd_{= p.index =} <= pdata_{= p.index =};
        end
    end
    wire [{= vaw =}-1:0] nidx_{= p.index =} = hq_idx_{= p.index =} + {= p.k_idx =};
    // The source's place after this write: the bank ends when the last word's room is taken;
    // the run ends when its values left are.
    wire hend_{= p.index =} = lastw_{= p.index =} && ge_{= p.index =};
    wire [{= lane_w =}-1:0] u_lane_{= p.index =} = hend_{= p.index =} ? hq_lane_{= p.index =} + {= lane_w =}'d1 : hq_lane_{= p.index =};
    wire [{= vaw =}-1:0] u_idx_{= p.index =} = hend_{= p.index =} ? {= vaw =}'d0 : nidx_{= p.index =};
    // This write's count is the word's room (ge) or the values left in the beat: the run-end
    // compare and the values left after it are made for both side by side, from registers and
    // the room, and ge picks, so neither waits on the count's own select.
    wire u_first_{= p.index =} = ge_{= p.index =} ? ({= p.rr_cnt =} == hq_rem_{= p.index =}) : ({= p.av_cnt =} == hq_rem_{= p.index =});
    wire [{= hcnt_w =}-1:0] u_rem_{= p.index =} = ge_{= p.index =} ? (hq_rem_{= p.index =} - {= p.rr_cnt =}) : (hq_rem_{= p.index =} - {= p.av_cnt =});
    // The next head: the second entry when there is one (b2), else the beat arriving now. Its
    // source's place is looked up in the table below from registers: the arriving beat's
    // straight from the slice's source register, the second entry's as it entered (e1_*). An
    // entry's lookup stays valid while it waits: only the head's source's place changes, and a
    // second entry of the head's source takes this write's result instead (nsame_t).
    wire b2_{= p.index =} = !bf_{= p.index =};
    wire [{= hstart_w =}-1:0] rhs_{= p.index =} = hstart(rs_{= p.index =}, rl_{= p.index =});
    reg [{= hstart_w =}-1:0] e1_hs_{= p.index =};
    wire [{= hstart_w =}-1:0] nhs_{= p.index =} = b2_{= p.index =} ? e1_hs_{= p.index =} : rhs_{= p.index =};
    // The buffer: the head entry is written k values at a time; it leaves when all are.
    wire bpop_{= p.index =} = rv_take[{= p.index =}] && fits_{= p.index =};
    wire [1:0] bc_n_{= p.index =} = bc_{= p.index =} + {1'b0, acc_{= p.index =}} - {1'b0, bpop_{= p.index =}};
    always @(posedge clk) begin
        if (rst) begin
            bc_{= p.index =} <= 2'd0;
            bf_{= p.index =} <= 1'b1;
            bne_{= p.index =} <= 1'b0;
            b1_{= p.index =} <= 1'b0;
        end else begin
            bc_{= p.index =} <= bc_n_{= p.index =};
            bf_{= p.index =} <= (bc_n_{= p.index =} != 2'd2);
            bne_{= p.index =} <= (bc_n_{= p.index =} != 2'd0);
            b1_{= p.index =} <= (bc_n_{= p.index =} == 2'd1);
        end
        if (rst) begin
            bq_wp_{= p.index =} <= 1'b0;
            bq_rp_{= p.index =} <= 1'b0;
        end else begin
            if (acc_{= p.index =}) bq_wp_{= p.index =} <= !bq_wp_{= p.index =};
            if (bpop_{= p.index =}) bq_rp_{= p.index =} <= !bq_rp_{= p.index =};
        end
        // The entry at the write pointer is free while the buffer is not full (it is the
        // head only when the buffer is empty): written every such cycle, kept when a beat
        // is taken (the pointer moves on).
        if (bf_{= p.index =} && !bq_wp_{= p.index =}) bq0_{= p.index =} <= rb_{= p.index =};
        if (bf_{= p.index =} && bq_wp_{= p.index =}) bq1_{= p.index =} <= rb_{= p.index =};
        if ((bpop_{= p.index =} && b1_{= p.index =}) || !bne_{= p.index =}) begin
            bv0_{= p.index =} <= rvi_{= p.index =};
            bn0_{= p.index =} <= rn_{= p.index =};
            bs0_{= p.index =} <= rs_{= p.index =};
            bl0_{= p.index =} <= rl_{= p.index =};
            bp0_{= p.index =} <= rp_{= p.index =};
        end else if (bpop_{= p.index =}) begin
            bv0_{= p.index =} <= bv1_{= p.index =};
            bn0_{= p.index =} <= bn1_{= p.index =};
            bs0_{= p.index =} <= bs1_{= p.index =};
            bl0_{= p.index =} <= bl1_{= p.index =};
            bp0_{= p.index =} <= bp1_{= p.index =};
        end else if (rv_take[{= p.index =}]) begin
            bv0_{= p.index =} <= bv0_{= p.index =} + k_{= p.index =}[{= vpb_w =}-1:0];
            bn0_{= p.index =} <= bn0_{= p.index =} - k_{= p.index =};
        end
        if (bf_{= p.index =}) begin
            bv1_{= p.index =} <= rvi_{= p.index =};
            bn1_{= p.index =} <= rn_{= p.index =};
            bs1_{= p.index =} <= rs_{= p.index =};
            bl1_{= p.index =} <= rl_{= p.index =};
            bp1_{= p.index =} <= rp_{= p.index =};
        end
    end
    integer i_{= p.index =};
    always @(posedge clk) begin
        if (rst) begin
            hl_first_{= p.index =} <= 8'hff;
            for (i_{= p.index =} = 0; i_{= p.index =} < 8; i_{= p.index =} = i_{= p.index =} + 1) begin
                hl_rem_{= p.index =}[i_{= p.index =}] <= {= hcnt_w =}'d0;
                hl_lane_{= p.index =}[i_{= p.index =}] <= {= lane_w =}'d0;
                hl_idx_{= p.index =}[i_{= p.index =}] <= {= vaw =}'d0;
            end
        end else if (rv_take[{= p.index =}]) begin
            hl_lane_{= p.index =}[src_{= p.index =}] <= u_lane_{= p.index =};
            hl_idx_{= p.index =}[src_{= p.index =}] <= u_idx_{= p.index =};
            hl_rem_{= p.index =}[src_{= p.index =}] <= u_rem_{= p.index =};  // 0 when the run ends (u_first)
            hl_first_{= p.index =}[src_{= p.index =}] <= u_first_{= p.index =};
        end
    end
    wire [{= lane_w =}-1:0] r_lane_{= p.index =} = hl_lane_{= p.index =}[rs_{= p.index =}];
    wire [{= vaw =}-1:0] r_idx_{= p.index =} = hl_idx_{= p.index =}[rs_{= p.index =}];
    wire [{= hcnt_w =}-1:0] r_rem_{= p.index =} = hl_rem_{= p.index =}[rs_{= p.index =}];
    wire r_first_{= p.index =} = hl_first_{= p.index =}[rs_{= p.index =}];
    reg [{= lane_w =}-1:0] e1_lane_{= p.index =};
    reg [{= vaw =}-1:0] e1_idx_{= p.index =};
    reg [{= hcnt_w =}-1:0] e1_rem_{= p.index =};
    reg e1_first_{= p.index =};
    always @(posedge clk) begin
        if (!b2_{= p.index =}) begin
            e1_hs_{= p.index =} <= rhs_{= p.index =};
            e1_lane_{= p.index =} <= r_lane_{= p.index =};
            e1_idx_{= p.index =} <= r_idx_{= p.index =};
            e1_rem_{= p.index =} <= r_rem_{= p.index =};
            e1_first_{= p.index =} <= r_first_{= p.index =};
        end
    end
    // The next head's place: this write's result when it comes from the same source, else
    // the table's; a run's start when nothing is left of the last. It is made for a take
    // (rv_take: the write port's grant, which arrives late) and for none, side by side from
    // registers, the take picking last: with a take the buffer's head is written (a pop
    // when the beat fits: the next head, whose source may be this write's, nsame_t; else this
    // write's own place), without one an empty buffer loads whatever arrives (nothing of
    // this write's).
    wire nsame_t_{= p.index =} = b2_{= p.index =} ? (bs1_{= p.index =} == src_{= p.index =}) : (rs_{= p.index =} == src_{= p.index =});
    wire [{= lane_w =}-1:0] nt_lane_{= p.index =} = b2_{= p.index =} ? e1_lane_{= p.index =} : r_lane_{= p.index =};
    wire [{= vaw =}-1:0] nt_idx_{= p.index =} = b2_{= p.index =} ? e1_idx_{= p.index =} : r_idx_{= p.index =};
    wire [{= hcnt_w =}-1:0] nt_rem_{= p.index =} = b2_{= p.index =} ? e1_rem_{= p.index =} : r_rem_{= p.index =};
    wire nt_first_{= p.index =} = b2_{= p.index =} ? e1_first_{= p.index =} : r_first_{= p.index =};
    wire [{= lane_w =}-1:0] nq_lane_{= p.index =} = nsame_t_{= p.index =} ? u_lane_{= p.index =} : nt_lane_{= p.index =};
    wire [{= vaw =}-1:0] nq_idx_{= p.index =} = nsame_t_{= p.index =} ? u_idx_{= p.index =} : nt_idx_{= p.index =};
    wire [{= hcnt_w =}-1:0] nq_rem_{= p.index =} = nsame_t_{= p.index =} ? u_rem_{= p.index =} : nt_rem_{= p.index =};
    wire nq_first_{= p.index =} = nsame_t_{= p.index =} ? u_first_{= p.index =} : nt_first_{= p.index =};
    // With a take: a pop loads the next head, else the head's own place after this write.
    wire [{= lane_w =}-1:0] tk_lane_{= p.index =} = fits_{= p.index =} ? (nq_first_{= p.index =} ? nhs_{= p.index =}[{= hs_lane_hi =}:{= hs_lane_lo =}] : nq_lane_{= p.index =}) : (u_first_{= p.index =} ? hs_{= p.index =}[{= hs_lane_hi =}:{= hs_lane_lo =}] : u_lane_{= p.index =});
    wire [{= vaw =}-1:0] tk_idx_{= p.index =} = fits_{= p.index =} ? (nq_first_{= p.index =} ? nhs_{= p.index =}[{= hs_idx_hi =}:{= hs_idx_lo =}] : nq_idx_{= p.index =}) : (u_first_{= p.index =} ? hs_{= p.index =}[{= hs_idx_hi =}:{= hs_idx_lo =}] : u_idx_{= p.index =});
    wire [{= hcnt_w =}-1:0] tk_rem_{= p.index =} = fits_{= p.index =} ? (nq_first_{= p.index =} ? nhs_{= p.index =}[{= hs_n_hi =}:0] : nq_rem_{= p.index =}) : (u_first_{= p.index =} ? hw_n_{= p.index =} : u_rem_{= p.index =});
    // Without one: an empty buffer loads the arriving beat's source's place.
    wire [{= lane_w =}-1:0] ld_lane_{= p.index =} = nt_first_{= p.index =} ? nhs_{= p.index =}[{= hs_lane_hi =}:{= hs_lane_lo =}] : nt_lane_{= p.index =};
    wire [{= vaw =}-1:0] ld_idx_{= p.index =} = nt_first_{= p.index =} ? nhs_{= p.index =}[{= hs_idx_hi =}:{= hs_idx_lo =}] : nt_idx_{= p.index =};
    wire [{= hcnt_w =}-1:0] ld_rem_{= p.index =} = nt_first_{= p.index =} ? nhs_{= p.index =}[{= hs_n_hi =}:0] : nt_rem_{= p.index =};
    always @(posedge clk) begin
        if ((rv_take[{= p.index =}] && fits_{= p.index =}) || !bne_{= p.index =}) hs_{= p.index =} <= nhs_{= p.index =};
        if (rv_take[{= p.index =}]) begin
            hq_lane_{= p.index =} <= tk_lane_{= p.index =};
            hq_idx_{= p.index =} <= tk_idx_{= p.index =};
            hq_rem_{= p.index =} <= tk_rem_{= p.index =};
        end else if (!bne_{= p.index =}) begin
            hq_lane_{= p.index =} <= ld_lane_{= p.index =};
            hq_idx_{= p.index =} <= ld_idx_{= p.index =};
            hq_rem_{= p.index =} <= ld_rem_{= p.index =};
        end
    end
{% endfor %}
    // x: {= input_size =} values per timestep, bank by bank, into the buffer of the tick's parity.
    // The loader fills the x of one tick (buffer parity ld_par) and may run one tick ahead of
    // the controller; `ahead` (the loader's tick minus the controller's, kept incrementally)
    // says how far, so no 32-bit compare sits in front of the stream's ready.
    // Timesteps left in the sequence and sequences left after the one loading, counted down,
    // with their last-one flags as registers (no 32-bit compare in front of the enables).
    reg [31:0] ld_tleft, ld_bleft;
    reg        ld_tlast, ld_blast;
    reg        ld_par;
    reg signed [15:0] ahead;
    reg        ld_done;
    reg [{= lane_w =}-1:0] ld_lane;
    reg [{= vaw =}-1:0] ld_idx;
    reg [{= in_w1 =}-1:0] ld_left;
    // ahead <= 1, kept as a register (set from ahead's next value), so no compare sits in
    // front of the write port's source select.
    reg        ahead_ok;
    // The controller's busy flag, registered here (the controller sits across the die): the
    // loader starts a cycle after the run does, and busy falls only at a run's end, when the
    // loader is done. Cleared by a start, so a start the controller ignores (it is not idle)
    // never finds it still high from the run that is ending.
    reg        busy_q;
    always @(posedge clk) begin
        if (rst || start) busy_q <= 1'b0;
        else busy_q <= busy;
    end
    wire ld_ok = busy_q && !ld_done && ahead_ok;
    // The x stream: a buffer of two runs (the values of a vector left in an unpacked beat), taken
    // whole while an entry is free (a register, so the unpacker's handshake does not wait on the
    // write below) and written from the head a run at a time.
    reg [1:0] xc;
    reg [{= xbits =}-1:0] xb0, xb1;
    reg [{= xjw =}:0] xn0, xn1;
    reg [{= xjw =}-1:0] xv0;
    wire x_acc = {= need_x =} && x_valid && (x_avail != {= xjw1 =}'d0) && (xc != 2'd2);
    wire ld_req = {= need_x =} && ld_ok && (xc != 2'd0);
    // For the controller, a vector is loaded once its last run has been written, not only
    // prepared: `ahead_w` and `ld_done_w` follow `ahead` and `ld_done` as the prepared runs
    // are written (a run prepared for a later vector does not hold this one back).
    reg signed [15:0] ahead_w;
    reg        ld_done_w;
    assign x_ready = !{= need_x =} || ld_done_w || (ahead_w > 16'sd0);

    // The write port's priority: local h, then the ports' prepared writes in port order, then
    // the x stream's. The grant is itself a register (gp, gx), decided a cycle ahead from the
    // flags' next values (lh_req, pv_n, xv_n), so it equals the priority of the prepared writes
    // in its cycle; the data select reads a copy of it (ds: local h, the ports, x; one-hot) of
    // its own, so no decision sits in front of the select's fan-out.
    reg xv;
    wire xv_n;
    reg [{= nports =}-1:0] gp;
    reg gx;
    wire [{= nports =}-1:0] gp_n;
{% for p in ports %}    assign gp_n[{= p.index =}] = pv_n[{= p.index =}] && !lh_req{% for q in ports %}{% if q.index < p.index %} && !pv_n[{= q.index =}]{% endif %}{% endfor %};
{% endfor %}    wire gx_n = xv_n && !lh_req && (pv_n == {= nports =}'d0);
    always @(posedge clk) begin
        if (rst) begin
            gp <= {= nports =}'d0;
            gx <= 1'b0;
        end else begin
            gp <= gp_n;
            gx <= gx_n;
        end
    end
    assign pgrant = gp;
    wire xgrant = gx;
    wire [{= nsel =}-1:0] ds;
    partita_rep #(.W({= nsel =})) u_ds (.clk(clk), .rst(rst), .d({gx_n, gp_n, lh_req}), .q(ds));
    // An x run is prepared (take_x) while the x registers are free or being written.
    // Nothing is taken in the cycle after a vector's end (ld_vq), while the timestep and
    // sequence counts follow it.
    reg ld_vq, ld_sq;
    wire take_x = ld_req && (!xv || xgrant) && !ld_vq;
    wire [{= vwa =}-1:0] x_a = (ld_par ? {= vwa =}'d{= xb1w =} : {= vwa =}'d0) + ld_idx[{= vaw =}-1:{= vqw =}];
    // This x write: the run left in the head beat, up to the end of the word and of the bank
    // (as for received h: the first slot is the index's low bits, and the bank ends in its last
    // word, of {= rx_last =} values).
    wire [{= vqw1 =}-1:0] xo = {= xo =};
    wire [6:0] xo7 = {= xo7 =};
    wire xlastw = {= xlastw =};
    wire [{= vqw1 =}-1:0] xrr = (xlastw ? {= vqw1 =}'d{= rx_last =} : {= vqw1 =}'d{= vq =}) - xo;
    wire [6:0] xrr7 = {= xrr7 =};
    wire [6:0] xav = {= xav7 =};
    wire xfits = (xav <= xrr7);
    wire xge = (xav >= xrr7);
    wire xpop = take_x && xfits;
    always @(posedge clk) begin
        if (rst) xc <= 2'd0;
        else xc <= xc + {1'b0, x_acc} - {1'b0, xpop};
        if ((xpop && xc == 2'd1) || xc == 2'd0) begin
            xb0 <= x_beat;
            xn0 <= x_avail;
            xv0 <= {= xjw =}'d0;
        end else if (xpop) begin
            xb0 <= xb1;
            xn0 <= xn1;
            xv0 <= {= xjw =}'d0;
        end else if (take_x) begin
            xn0 <= xn0 - {= xk_n =};
            xv0 <= xv0 + xk[{= xjw =}-1:0];
        end
        if (xc != 2'd2) begin
            xb1 <= x_beat;
            xn1 <= x_avail;
        end
    end
    wire [6:0] xk = xge ? xrr7 : xav;
{% for j in slots %}    wire [6:0] xoff_{= j.0 =} = 7'd{= j.0 =} - xo7;
    wire xwe_{= j.0 =} = (xoff_{= j.0 =} < xk);
    wire [{= dw =}-1:0] xd_{= j.0 =} = xval(xb0, xv0 + xoff_{= j.0 =}[{= xjw =}-1:0]);
{% endfor %}    wire [{= vq =}-1:0] x_we = {{% for j in slots_rev %}xwe_{= j =}{% if !loop.last %}, {% endif %}{% endfor %}};
    wire [{= vqd =}-1:0] x_data = {{% for j in slots_rev %}xd_{= j =}{% if !loop.last %}, {% endif %}{% endfor %}};
    wire [{= vaw =}-1:0] x_nidx = ld_idx + {= xk_idx =};
    assign xv_n = take_x || (xv && !xgrant);
    // The x run prepared into registers of its own, as for the ports.
    reg [{= lane_w =}-1:0] xpl;
    reg [{= vwa =}-1:0] xpa;
    reg [{= vq =}-1:0] xpm;
    reg [{= vqd =}-1:0] xpd;
    // What the prepared run does to the loader's lead (ld_step) and whether it is the last.
    reg signed [15:0] xp_step;
    reg        xp_end;
    always @(posedge clk) begin
        if (rst) xv <= 1'b0;
        else xv <= xv_n;
        if (take_x) begin
            xpl <= ld_lane;
            xpa <= x_a;
            xpm <= x_we;
            xpd <= x_data;
            xp_step <= ld_step;
            xp_end <= ld_seq_end && ld_blast;
        end
    end
    reg n_en;
    reg [{= lane_w =}-1:0] n_lane;
    reg [{= vwa =}-1:0] n_word;
    reg [{= vq =}-1:0] n_we;
    reg [{= vqd =}-1:0] n_data;
    // One-hot select: each source's fields ANDed with its bit of ds, ORed together.
    always @* begin
        n_en = |ds;
        n_lane = {= lane_w =}'d0;
        n_word = {= vwa =}'d0;
        n_we = {= vq =}'d0;
        n_data = {= vqd =}'d0;
        if (ds[0]) begin
            n_lane = lh_lane_q; n_word = lh_a_q[{= vaw =}-1:{= vqw =}];
            n_we = {= vq =}'d{= emask =} << lh_a_q[{= vqw =}-1:0]; n_data = {{= vq_e =}{lh_h_q}};
        end
{% for p in ports %}        if (ds[{= p.ds =}]) begin
            n_lane = n_lane | pl_{= p.index =}; n_word = n_word | pa_{= p.index =};
            n_we = n_we | pm_{= p.index =}; n_data = n_data | pd_{= p.index =};
        end
{% endfor %}        if (ds[{= x_sel =}]) begin
            n_lane = n_lane | xpl; n_word = n_word | xpa;
            n_we = n_we | xpm; n_data = n_data | xpd;
        end
    end
    always @(posedge clk) begin
        if (rst) vw_en <= 1'b0;
        else vw_en <= n_en;
        vw_lane <= n_lane;
        vw_word <= n_word;
        vw_we <= n_we;
        vw_data <= n_data;
    end
    // Without x (a device whose layer 0 holds no x column) the stream is drained and dropped.
    assign x_n = ({= need_x =} && !x_acc) ? {= xjw1 =}'d0 : x_avail;
    // The loader's tick advances by one per timestep, and past a sequence's drain ticks (which
    // take no x) at its end.
    // A run never crosses a vector's end: the vector is complete when the run takes all it has left.
    // (As for received h: the compare made for both counts, xge picks.)
    wire ld_vec = take_x && (xge ? ({= xrr_cnt =} == ld_left) : ({= xav_cnt =} == ld_left));
    wire ld_seq_end = ld_vec && ld_tlast;
    wire signed [15:0] ld_step = !ld_vec ? 16'sd0 : ld_seq_end ? 16'sd{= layers_n =} : 16'sd1;
    // `ahead` takes a vector's step a cycle after its end, from the registered flags (ld_vq,
    // ld_sq), so the run logic in front of ld_vec ends at those flip-flops, not at a 16-bit
    // adder. No run is taken in that cycle (ld_vq blocks take_x), so ahead_ok, which gates only
    // the take, is exact whenever it is read.
    wire signed [15:0] ld_step_q = !ld_vq ? 16'sd0 : ld_sq ? 16'sd{= layers_n =} : 16'sd1;
    wire signed [15:0] ahead_n = ahead + ld_step_q - (tick ? 16'sd1 : 16'sd0);
    // ahead_n <= 1, without the add: ahead <= 1 - step + tick, the register compared with
    // constants for each step (0, 1, or {= layers_n =} at a sequence's end), picked by the step.
    wire ok_s0 = tick ? (ahead <= 16'sd2) : (ahead <= 16'sd1);
    wire ok_s1 = tick ? (ahead <= 16'sd1) : (ahead <= 16'sd0);
    wire ok_sl = tick ? (ahead <= {= ahead_l2 =}) : (ahead <= {= ahead_l1 =});
    always @(posedge clk) begin
        if (rst || start) begin
            ahead <= 16'sd0;
            ahead_ok <= 1'b1;
        end else if (!ld_done) begin
            ahead <= ahead_n;
            ahead_ok <= !ld_vq ? ok_s0 : (ld_sq ? ok_sl : ok_s1);
        end
    end
    always @(posedge clk) begin
        if (rst || start) begin
            ahead_w <= 16'sd0;
            ld_done_w <= !{= need_x =};
        end else if (!ld_done_w) begin
            ahead_w <= ahead_w + (xgrant ? xp_step : 16'sd0) - (tick ? 16'sd1 : 16'sd0);
            if (xgrant && xp_end) ld_done_w <= 1'b1;
        end
    end
    always @(posedge clk) begin
        if (rst || start) begin
            ld_par <= 1'b0;
            ld_lane <= {= lane_w =}'d0; ld_idx <= {= vaw =}'d0; ld_left <= {= in_w1 =}'d{= input_size =};
        end else if (take_x) begin
            if (xlastw && xge) begin
                ld_idx <= {= vaw =}'d0;
                ld_lane <= ld_lane + {= lane_w =}'d1;
            end else begin
                ld_idx <= x_nidx;
            end
            if (ld_vec) begin
                ld_left <= {= in_w1 =}'d{= input_size =};
                ld_lane <= {= lane_w =}'d0;
                ld_idx <= {= vaw =}'d0;
                ld_par <= ld_seq_end ? (ld_par ^ {= layers_odd =}) : !ld_par;
            end else begin
                ld_left <= xge ? (ld_left - {= xrr_cnt =}) : (ld_left - {= xav_cnt =});
            end
        end
    end
    // The vector that ended last cycle counted a cycle later, from registers (ld_vq, ld_sq),
    // so the 32-bit counters' enables do not follow the run's size logic. SEQ_LEN - 1 and
    // SEQ_COUNT - 1 (and whether they are 1) are registers too, a cycle behind the control
    // registers, which change only by a host write, cycles before the START that reads them.
    reg [31:0] seq_len_m1, seq_count_m1;
    reg seq_len_1, seq_count_1;
    always @(posedge clk) begin
        seq_len_m1 <= seq_len - 32'd1;
        seq_count_m1 <= seq_count - 32'd1;
        seq_len_1 <= (seq_len == 32'd1);
        seq_count_1 <= (seq_count == 32'd1);
    end
    always @(posedge clk) begin
        if (rst || start) begin
            ld_vq <= 1'b0;
            ld_sq <= 1'b0;
        end else begin
            ld_vq <= ld_vec;
            ld_sq <= ld_seq_end;
        end
        if (rst || start) begin
            ld_done <= !{= need_x =};
            ld_tleft <= seq_len_m1; ld_tlast <= seq_len_1;
            ld_bleft <= seq_count_m1; ld_blast <= seq_count_1;
        end else if (ld_vq) begin
            if (ld_sq) begin
                ld_tleft <= seq_len_m1;
                ld_tlast <= seq_len_1;
                if (ld_blast) begin
                    ld_done <= 1'b1;
                end else begin
                    ld_bleft <= ld_bleft - 32'd1;
                    ld_blast <= (ld_bleft == 32'd1);
                end
            end else begin
                ld_tleft <= ld_tleft - 32'd1;
                ld_tlast <= (ld_tleft == 32'd1);
            end
        end
    end
{% if need_x == "1'b0" %}    wire unused_loader = &{1'b0, x_beat, x_valid, ld_tleft, ld_bleft, ld_tlast, ld_blast, seq_len_m1, seq_count_m1, seq_len_1, seq_count_1, x_we, x_data, xb0, xb1, xn1, xv0, xpop};
{% endif %}{% if beat_unused != "" %}    wire unused_in = &{1'b0{= beat_unused =}};
{% endif %}endmodule
