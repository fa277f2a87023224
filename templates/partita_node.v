{= header =}
// partita multi-device LSTM node design {= design =}, for a device of {= ndev =} ({= topology =} topology,
// {= lw =}-bit links); which one is dev_id (each device's top ties it, see {= p.ident =}).
// {= layers_n =} layer(s), input {= input_size =}, hidden {= hidden =}, {= m =} row engine(s) of {= k =} lanes.
// AXI4-Lite control (regmap.json, partita_regs.h), AXI4-Stream x_t in (devices that hold
// layer-0 x columns) and h_t out (this device's last-layer units), AXI4-Stream link ports
// {= port_doc =}.
//
// Work runs in ticks; at tick T layer l computes timestep T - l, so stacked layers on different
// devices form a pipeline. A tick is: for each layer with work here, the engine issues this
// device's rows (full-width partial sums, bias on the device holding column block 0), M rows at
// a time on M engines in lockstep, whose sums leave one per cycle in row order; partial
// sums go to the local partial buffer or, as frames, to the layer's finisher. The engines have
// no clock enable: their rows queue in a row FIFO, and a row is issued only while the FIFO
// has room for it and every row in flight, so a full transmit queue holds the issue, never the
// engines. The finisher sums
// every partial of a gate row at full width, rounds once, and runs the element-wise unit; the
// new h goes to this device's vector memory and, as frames, to every device that needs it.
// The finisher runs alongside the row issue: it takes each unit as soon as all its partial
// sums are in (when the layer's own sums stay on this device), so a layer ends a pipeline
// depth after its last row, not a unit per cycle later.
// A tick ends with a BARRIER frame to every other device; tick T+1 starts once all of them
// arrived (and every h value received before them is written), so every vector buffer is
// double-buffered by tick parity and no receiver ever stalls a link for long.
//
// The link ports are the library core partita_link_hub: frames (format: partita_hdl::frame)
// are built by its framer and checked on arrival (header, sequence number, CRC-32); a frame
// addressed elsewhere is forwarded unchanged. {% if bcast == 1 %}On this ring, h values for every other
// device and barriers go once round the ring as broadcasts, read and passed on by each device.{% endif %} A CRC, sequence or format error sets
// LINK_STATUS and its counter, drops the frame, and stops this device: a damaged frame is
// never used. Partial sums are reduced in {= p.reduce =}, vector memories written through
// {= p.vwrite =}.
module {= p.top =} #(
    // $readmemh files, one per engine memory; override with full paths if needed.
{% for e in engine_list %}{% for c in wsuffix %}    parameter WEIGHTS_E{= e =}{= c.0 =} = "weights_e{= e =}{= c.1 =}.hex",
{% endfor %}    parameter BIAS_E{= e =} = "bias_e{= e =}.hex"{% if !loop.last %},{% endif %}
{% endfor %}) (
    input  wire [2:0]  dev_id,
    input  wire        clk,
    input  wire        rst_n,
    // AXI4-Lite slave.
    input  wire [11:0] s_axil_awaddr,
    input  wire        s_axil_awvalid,
    output wire        s_axil_awready,
    input  wire [31:0] s_axil_wdata,
    input  wire [3:0]  s_axil_wstrb,
    input  wire        s_axil_wvalid,
    output wire        s_axil_wready,
    output wire [1:0]  s_axil_bresp,
    output wire        s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [11:0] s_axil_araddr,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output wire [31:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output wire        s_axil_rvalid,
    input  wire        s_axil_rready,
{% for p in ports %}    // Link port {= p.index =}.
    output wire [{= lw =}-1:0] l{= p.index =}_tx_tdata,
    output wire        l{= p.index =}_tx_tvalid,
    input  wire        l{= p.index =}_tx_tready,
    output wire        l{= p.index =}_tx_tlast,
    input  wire [{= lw =}-1:0] l{= p.index =}_rx_tdata,
    input  wire        l{= p.index =}_rx_tvalid,
    output wire        l{= p.index =}_rx_tready,
    input  wire        l{= p.index =}_rx_tlast,
{% endfor %}    // AXI4-Stream input: x_t, {= input_size =} values per timestep, {= s.p =} per {= s.sb =}-bit beat
    // (partita_hdl::stream: a timestep starts a beat; its last beat has tlast, tkeep low for
    // empty slots). Ignored when this device holds no layer-0 x columns.
    input  wire [{= s.sb =}-1:0] s_axis_tdata,
    input  wire [{= s.kw =}-1:0] s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    // AXI4-Stream output: {= n_out =} h values per timestep (this device's units), packed the same way.
    output wire [{= s.sb =}-1:0] m_axis_tdata,
    output wire [{= s.kw =}-1:0] m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);
    localparam [3:0] S_IDLE = 4'd0, S_TSTART = 4'd1, S_LAYER = 4'd2, S_XWAIT = 4'd3, S_MAC = 4'd4,
                     S_MDRAIN = 4'd5, S_FDRAIN = 4'd6, S_NEXT = 4'd7, S_BAR = 4'd8, S_FLUSH = 4'd9{% if overlap %},
                     S_XSTART = 4'd10{% endif %};

    // ------------------------------------------------------------------ registers
    wire       soft_rst, start_pulse, commit_pulse;
    // Reset: rst_n is synchronized to clk by two flip-flops (set at configuration, so the
    // device starts in reset) and, with the soft reset, registered once more: the reset's
    // fan-out starts at a flip-flop, never at the pin or a gate.
    reg [1:0]  rst_sync = 2'b11;
    reg        rst = 1'b1;
    always @(posedge clk) begin
        rst_sync <= {rst_sync[0], !rst_n};
        rst <= rst_sync[1] || soft_rst;
    end
    // Copies of rst (the same next value, the same initial value: equal to rst in every
    // cycle) for the blocks that sit apart on the die, the link ports, the vector writer and
    // the partial-sum reducer, so no one reset net crosses the die to reach them all.
    wire rst_lk, rst_vw, rst_rd;
    partita_rep #(.W(1), .RST_VAL(1'b1)) u_rst_lk (.clk(clk), .rst(1'b0), .d(rst_sync[1] || soft_rst), .q(rst_lk));
    partita_rep #(.W(1), .RST_VAL(1'b1)) u_rst_vw (.clk(clk), .rst(1'b0), .d(rst_sync[1] || soft_rst), .q(rst_vw));
    partita_rep #(.W(1), .RST_VAL(1'b1)) u_rst_rd (.clk(clk), .rst(1'b0), .d(rst_sync[1] || soft_rst), .q(rst_rd));
    wire [31:0] seq_len, seq_count, link_timeout, wsel, waddr_reg;
    wire [{= wstage_w =}-1:0] wstage;
    reg        busy, done;
    reg [63:0] cycles;
    reg [31:0] sat_count, mac_cycles, wait_cycles;
    wire [3:0] link_status;
    wire [31:0] crc_errs, seq_errs, fmt_errs, err_info, tx_beats, fwd_beats, rx_beats;
    wire       link_err = (link_status != 4'd0);
    wire unused_regs = &{1'b0, {= unused_regs =}, x_tlast, x_tdata};
    // The x stream's unpacker (library core partita_unpack, a register slice at the pins):
    // one value per cycle to the loader.
    // The vector-memory write port takes x in runs (up to a word of the head beat at a time).
    wire [{= s.vb =}-1:0] x_tdata;
    wire x_tvalid, x_tlast;
    wire [{= s.sb =}-1:0] x_beat;
    wire [{= s.jw =}:0] x_avail, x_n;
    wire [31:0] stream_errs;
    partita_unpack #(
        .SB({= s.sb =}), .VB({= s.vb =}), .P({= s.p =}), .VEC({= s.in_vec =}), .CW({= s.in_cw =}), .JW({= s.jw =}), .BW({= s.in_bw =})
    ) u_x_in (
        .clk(clk), .rst(rst), .s_tdata(s_axis_tdata), .s_tkeep(s_axis_tkeep),
        .s_tvalid(s_axis_tvalid), .s_tready(s_axis_tready), .s_tlast(s_axis_tlast),
        .m_data(x_tdata), .m_valid(x_tvalid), .m_ready(1'b0), .m_last(x_tlast),
        .m_beat(x_beat), .m_avail(x_avail), .m_n(x_n),
        .clear(state == S_IDLE && start_pulse), .errs(stream_errs)
    );

    // ------------------------------------------------------------------ controller
    reg [3:0]  state;
    reg [31:0] gt, tl, b;
    reg [{= layer_w =}-1:0] l;
    reg [{= row_w =}-1:0] row;
    reg [{= slice_w =}-1:0] slice;
    reg [{= waw =}-1:0] waddr;
    reg [{= baw =}-1:0] baddr;
    reg [{= rows_w =}-1:0] parts_out;
    reg [{= unit_w =}-1:0] f_slot;
    reg [{= nfin_w =}-1:0] units_done;
    reg fin_clear, bar_take, f_on;
    wire [31:0] l32 = {= l32 =};
    // Whether a start has work (SEQ_LEN and SEQ_COUNT both non-zero), a register set while
    // idle, so no 32-bit OR sits in front of the start.
    reg seq_run;
    always @(posedge clk) seq_run <= (seq_len != 32'd0) && (seq_count != 32'd0);
    wire [31:0] ticks_per_seq = seq_len + 32'd{= layers_last =};
    // Whether this tick is its sequence's last, and this sequence the run's last: registers,
    // a cycle behind tl and b (and the last tick's number two behind SEQ_LEN, which changes
    // only by a host write before START). S_BAR, where they are read, comes cycles after tl or
    // b last changed, so no 32-bit add and compare sits in front of the counters' enables.
    reg [31:0] tl_end, b_end;
    reg tl_last, b_last;
    always @(posedge clk) begin
        tl_end <= ticks_per_seq - 32'd1;
        b_end <= seq_count - 32'd1;
        tl_last <= (tl == tl_end);
        b_last <= (b == b_end);
    end
    // Whether layer k has a step in this tick (k <= tl < SEQ_LEN + k), for every layer, as
    // registers a cycle behind tl: the states that read it for the layer l (S_LAYER, S_XSTART)
    // come two cycles or more after tl last changed (S_BAR or S_IDLE, then S_TSTART), so the
    // 32-bit add and compares end here and the state's next value takes a select of l.
    reg [{= l_act_n =}-1:0] l_act;
    genvar ka;
    generate
        for (ka = 0; ka < {= l_act_n =}; ka = ka + 1) begin : g_lact
            localparam [31:0] KA = ka;
            if (ka == 0) begin : g_first
                always @(posedge clk) l_act[ka] <= (tl < seq_len);
            end else if (ka < {= layers_n =}) begin : g_layer
                // SEQ_LEN + k a register too (SEQ_LEN changes only by a host write before START).
                reg [31:0] sl_k;
                always @(posedge clk) begin
                    sl_k <= seq_len + KA;
                    l_act[ka] <= (KA <= tl) && (tl < sl_k);
                end
            end else begin : g_none
                always @(posedge clk) l_act[ka] <= 1'b0;
            end
        end
    endgenerate
    wire l_active = l_act[l];
    wire first_step = (tl == l32);
    wire rd_par = gt[0];
    wire wr_par = !gt[0];

    // This device's identity: what differs between the devices of this node design.
    wire [2:0] id_me;
    wire [7:0] id_others, id_bc_fwd;
    wire [15:0] id_routes, id_node;
    wire [63:0] id_hmasks;
    wire [{= id.pdst_w =}-1:0] id_pdst;
    wire [{= id.plocal_w =}-1:0] id_plocal;
    wire [{= id.nfin_w =}-1:0] id_nfin;
    wire [{= id.pbase_w =}-1:0] id_pbase;
    wire [{= id.flane_w =}-1:0] id_flane;
    wire [{= id.fidx_w =}-1:0] id_fidx;
    wire [{= id.hstarts_w =}-1:0] id_hstarts;
    {= p.ident =} u_ident (
        .dev_id(dev_id), .me(id_me), .others(id_others), .routes(id_routes), .hmasks(id_hmasks),
        .bc_fwd(id_bc_fwd), .node(id_node), .l_pdst(id_pdst), .l_plocal(id_plocal),
        .l_nfin(id_nfin), .l_pbase(id_pbase), .l_flane(id_flane), .l_fidx(id_fidx),
        .hstarts(id_hstarts)
    );
    // Per-layer constants of this device's schedule.
    reg        l_mac, l_fin, l_plocal, l_needh, l_out;
    reg [{= rows_w =}-1:0] l_rows, l_slots;
    reg [{= slice_w =}-1:0] l_slices, l_nih;
    reg [{= waw =}-1:0] l_wbase;
{% if overlap %}    reg [{= waw =}-1:0] l_wbase_h;
{% endif %}    reg [{= baw =}-1:0] l_bbase;
    reg [{= vaw =}-1:0] l_xbase, l_hbase_rd, l_hbase_wr;
    reg [2:0]  l_pdst;
    reg [{= nfin_w =}-1:0] l_nfin;
    reg [{= paw =}-1:0] l_pbase;
    reg [{= lane_w =}-1:0] l_flane;
    reg [{= vaw =}-1:0] l_fidx;
    reg [7:0]  l_hmask;
    always @* begin
        l_mac = 1'b0; l_fin = 1'b0; l_plocal = 1'b1; l_needh = 1'b0; l_out = 1'b0;
        l_rows = {= rows_w =}'d1; l_slots = {= rows_w =}'d1; l_slices = {= slice_w =}'d1; l_nih = {= slice_w =}'d0;
        l_wbase = {= waw =}'d0; l_bbase = {= baw =}'d0;{% if overlap %} l_wbase_h = {= waw =}'d0;{% endif %}
        l_xbase = {= vaw =}'d0; l_hbase_rd = {= vaw =}'d0; l_hbase_wr = {= vaw =}'d0;
        l_pdst = 3'd0; l_nfin = {= nfin_w =}'d1; l_pbase = {= paw =}'d0;
        l_flane = {= lane_w =}'d0; l_fidx = {= vaw =}'d0; l_hmask = 8'd0;
        case (l)
{% for c in layer_consts %}            {= layer_w =}'d{= c.index =}: begin
                l_mac = 1'b{= c.mac =}; l_fin = 1'b{= c.fin =}; l_plocal = id_plocal[{= c.index =}];
                l_needh = 1'b{= c.needh =}; l_out = 1'b{= c.out =};
                l_rows = {= rows_w =}'d{= c.rows =}; l_slots = {= rows_w =}'d{= c.slots =}; l_slices = {= slice_w =}'d{= c.slices =}; l_nih = {= slice_w =}'d{= c.nih =};
                l_wbase = {= waw =}'d{= c.wbase =}; l_bbase = {= baw =}'d{= c.bbase =};{% if overlap %} l_wbase_h = {= waw =}'d{= c.wbase_h =};{% endif %}
                l_xbase = rd_par ? {= vaw =}'d{= c.xbase1 =} : {= vaw =}'d{= c.xbase0 =};
                l_hbase_rd = rd_par ? {= vaw =}'d{= c.hbase1 =} : {= vaw =}'d{= c.hbase0 =};
                l_hbase_wr = wr_par ? {= vaw =}'d{= c.hbase1 =} : {= vaw =}'d{= c.hbase0 =};
                l_pdst = id_pdst[{= c.pdst =}]; l_nfin = id_nfin[{= c.nfin =}]; l_pbase = id_pbase[{= c.pbase =}];
                l_flane = id_flane[{= c.flane =}]; l_fidx = id_fidx[{= c.fidx =}]; l_hmask = id_hmasks[{= c.hmask =}];
            end
{% endfor %}            default: ;
        endcase
    end

    // ------------------------------------------------------------------ engine
    wire tq_full, tq_full_n, tx_idle, fadv;
    wire [{= ofifo_cnt_w =}-1:0] of_count;
    // The output FIFO's fullness as a register, compared a cycle early (one entry of margin):
    // it stalls the finisher, whose advance reaches the vector-memory writer's priority.
    reg of_full;
    wire of_full_n = (of_count >= {= ofifo_cnt_w =}'d{= ofifo_depth_m1 =});
    always @(posedge clk) begin
        if (rst) of_full <= 1'b0;
        else of_full <= of_full_n;
    end
    // The finisher's advance, fadv = !tq_full && !of_full, also as register copies set from
    // the two flags' next values (equal to fadv in every cycle, 1 in reset): the finisher (in
    // the reducer, a copy per lane and gate) and each element-wise lane make theirs from
    // fadv_n, so the stall fans out from flip-flops placed by the pipelines it holds, not from
    // one LUT or one flip-flop.
    wire fadv_n = !tq_full_n && !of_full_n;
    // The transmit queue holds the row hand-over and the finisher; the engines never stall.
    wire adv_m = !tq_full;
    // Row issue: only while the row FIFO has room for every row in flight (see u_rows).
    reg room;
    wire a_valid = (state == S_MAC) && room;
    // What the row issue reads of the layer and the tick, as registers: issue happens only in
    // S_MAC, which comes at least a cycle after l, tl, xp or xs last changed (S_LAYER or
    // S_XWAIT lies between), so these are current whenever a row is issued, and the layer's
    // case selects and the 32-bit first-step compare end here, not at the engines' inputs.
    reg [{= slice_w =}-1:0] m_nih, m_nih_m1, m_slices_m1;
    reg m_step0;
    always @(posedge clk) begin
        m_nih <= l_nih;
        m_nih_m1 <= l_nih - {= slice_w =}'d1;
        m_slices_m1 <= l_slices - {= slice_w =}'d1;
        m_step0 <= first_step;
    end
    wire a_xsel = (slice < m_nih);
{% if overlap %}    // W_ih·x ahead of the gather: at a tick's start, before the other devices' h of the last
    // tick is in, layer 0's rows are issued with their x slices only (xp: the x pass; its sums,
    // bias included, go to the reducer's x-part slot), and once the barrier has come, with their
    // h slices only (hp: the h pass, from a zero bias, to the node's own slot). xs: the x pass of
    // this tick is pending (0), done (1), or not wanted (2: layer 0 idle this tick).
    reg xp;
    reg [1:0] xs;
    wire hp = (xs == 2'd1) && (l == {= layer_w =}'d0) && !xp;
    wire [{= slice_w =}-1:0] s_lo = hp ? l_nih : {= slice_w =}'d0;
    reg [{= slice_w =}-1:0] m_slo;
    always @(posedge clk) m_slo <= s_lo;
    wire a_first = (slice == m_slo);
    wire a_last = xp ? (slice == m_nih_m1) : (slice == m_slices_m1);
{% else %}    wire a_first = (slice == {= slice_w =}'d0);
    wire a_last = (slice == m_slices_m1);
    wire unused_nih = &{1'b0, m_nih_m1};
{% endif %}
    // The vector-memory write port: the writer's registered outputs (wv_*), registered once
    // more here (vw_*), so the writer's logic and the engines' vector memories each end or start
    // at a flip-flop of their own and only a register-to-register net spans the distance; each
    // engine lane registers it once more, beside its LUT RAM. A write lands two cycles later;
    // the engines read a vector at the earliest seven cycles after its row is issued, which
    // is after the controller saw the writer's `pend` clear.
    wire wv_en;
    wire [{= lane_w =}-1:0] wv_lane;
    wire [{= vwa =}-1:0] wv_word;
    wire [{= vq =}-1:0] wv_we;
    wire [{= vqd =}-1:0] wv_data;
    reg vw_en;
    reg [{= lane_w =}-1:0] vw_lane;
    reg [{= vwa =}-1:0] vw_word;
    reg [{= vq =}-1:0] vw_we;
    reg [{= vqd =}-1:0] vw_data;
    always @(posedge clk) begin
        if (rst) vw_en <= 1'b0;
        else vw_en <= wv_en;
        vw_lane <= wv_lane;
        vw_word <= wv_word;
        vw_we <= wv_we;
        vw_data <= wv_data;
    end
{% for e in engine_list %}    wire row_valid_{= e =};
    wire [{= accw =}-1:0] row_acc_{= e =};
    {= p.engine =} #(
`ifndef PARTITA_COSIM
{% for c in wsuffix %}        .WEIGHT_HEX{= c.0 =}(WEIGHTS_E{= e =}{= c.0 =}),
{% endfor %}        .BIAS_HEX(BIAS_E{= e =}),
`endif
        .KIND(0)
    ) u_engine_{= e =} (
        .clk(clk), .rst(rst),
        .a_valid(a_valid), .a_waddr(waddr), .a_baddr(baddr), .a_first(a_first),
        .a_last(a_last), .a_xsel(a_xsel), .a_step0(m_step0), .a_xbase(l_xbase), .a_hbase(l_hbase_rd),
        .vw_en(vw_en), .vw_lane(vw_lane), .vw_word(vw_word), .vw_we(vw_we), .vw_data(vw_data),
        .ww_en(commit_pulse && !wsel[0] && wsel[23:16] == 8'd{= e =}), .ww_addr(waddr_reg[{= waw =}-1:0]),
        .ww_data(wstage[{= wword =}-1:0]),
        .bw_en(commit_pulse && wsel[0] && wsel[23:16] == 8'd{= e =}), .bw_addr(waddr_reg[{= baw =}-1:0]),
        .bw_data(wstage[{= bw =}-1:0]),
        .row_valid(row_valid_{= e =}), .row_acc(row_acc_{= e =})
    );
{% endfor %}    // Row FIFO: the engines have no clock enable, so each slot's rows (all {= m =} engines in
    // lockstep, engine 0 in the low bits) queue here for the hand-over, which the transmit
    // queue may hold. rf_res counts slots issued and not yet taken from the FIFO; a slot is
    // issued only while room (rf_res below {= rf_room =}, a register one cycle behind, hence the
    // margin) says the FIFO's {= rf_depth =} entries hold it and every slot in flight.
    wire unused_rows = &{1'b0{% for e in engine_list %}{% if !loop.first %}, row_valid_{= e =}{% endif %}{% endfor %}};
    wire [{= rf_w =}-1:0] rf_head;
    wire [{= rf_aw =}:0] rf_count;
    wire rf_v = (rf_count != {= rf_cw =}'d0);
    wire rf_pop;
    partita_fifo #(.W({= rf_w =}), .AW({= rf_aw =}), .DEPTH({= rf_depth =})) u_rows (
        .clk(clk), .rst(rst), .push(row_valid_0),
        .din({{% for e in engine_rev %}row_acc_{= e =}{% if !loop.last %}, {% endif %}{% endfor %}}),
        .pop(rf_pop), .dout(rf_head), .count(rf_count)
    );
    reg [{= rf_aw =}:0] rf_res;
    wire slot_issued = a_valid && a_last;
    always @(posedge clk) begin
        if (rst) begin
            rf_res <= {= rf_cw =}'d0;
            room <= 1'b0;
        end else begin
            if (slot_issued && !rf_pop) rf_res <= rf_res + {= rf_cw =}'d1;
            else if (rf_pop && !slot_issued) rf_res <= rf_res - {= rf_cw =}'d1;
            room <= (rf_res < {= rf_cw =}'d{= rf_room =});
        end
    end
{% if m > 1 %}    // Row serializer: the engines run in lockstep, so all {= m =} finish a row in the same cycle.
    // Their full-width sums are loaded into a shift register and leave {= g =} per cycle, engine 0
{% if ge %}    // first: rows are unit-major, so each cycle hands over up to {= ew_n =} units' four gates (the
    // element-wise lanes' group size), rs_n of them: the fewest of {= ew_n =}, the units left in
    // the load ({= ld_units =} per load) and the units left in the pass (rs_ul). The next slot's
    // rows are taken from the row FIFO when the register is empty or sends its last sums; a
    // row takes at least {= m_groups =} cycles (checked by the generator), so the hand-over keeps
    // up with the engines. The padding rows of a layer's last slot never leave.
{% else %}    // first (node row order{% if g > 1 %}: rows are unit-major, so each cycle hands over one unit's
    // four gates{% endif %}). The next slot's rows are taken from the row FIFO when the register is
    // empty or sends its last sums; a row takes at least {= m_groups =} cycles (checked by the
    // generator), so the hand-over keeps up with the engines. The padding rows of a layer's
    // last slot never leave: the drain stops at the layer's last row.
{% endif %}    reg rs_v;
{% if ge %}    reg [{= rows_w =}-1:0] rs_ll, rs_ul;
{% else %}    reg [{= eng_w =}-1:0] rs_i;
{% endif %}{% for e in pad_list %}    reg [{= accw =}-1:0] rs_{= e =};
{% endfor %}    wire part_v = adv_m && rs_v;
    wire [{= accw =}-1:0] row_acc = rs_0;
{% if ge %}    wire rs_lfew = (rs_ll < {= rows_w =}'d{= ew_n =});
    wire rs_ufew = (rs_ul < {= rows_w =}'d{= ew_n =});
    wire [{= eq =}:0] rs_n = !(rs_lfew || rs_ufew) ? {= eq1 =}'d{= ew_n =} : (rs_ll < rs_ul) ? rs_ll[{= eq =}:0] : rs_ul[{= eq =}:0];
    wire [{= rows_w =}-1:0] rs_n_w = {= rs_n_ext =};
    wire rs_end = (rs_n_w == rs_ll || rs_n_w == rs_ul);
{% else %}    wire rs_end = (rs_i == {= eng_w =}'d{= m_last =} || parts_out + {= rows_w =}'d{= g =} == l_rows);
{% endif %}    wire rs_take = adv_m && rf_v && (!rs_v || rs_end);
    assign rf_pop = rs_take;
    always @(posedge clk) begin
        if (rst) begin
            rs_v <= 1'b0;
{% if ge %}            rs_ll <= {= rows_w =}'d0;
{% else %}            rs_i <= {= eng_w =}'d0;
{% endif %}        end else if (rs_take) begin
            rs_v <= 1'b1;
{% if ge %}            rs_ll <= {= rows_w =}'d{= ld_units =};
{% else %}            rs_i <= {= eng_w =}'d0;
{% endif %}        end else if (part_v) begin
{% if ge %}            if (rs_end) rs_v <= 1'b0;
            rs_ll <= rs_ll - rs_n_w;
{% else %}            if (rs_end) rs_v <= 1'b0;
            rs_i <= rs_i + {= eng_w =}'d1;
{% endif %}        end
        if (rs_take) begin
{% for e in engine_list %}            rs_{= e =} <= rf_head[{= e =}*{= accw =} +: {= accw =}];
{% endfor %}{% for e in pad_only %}            rs_{= e =} <= {= accw =}'d0;
{% endfor %}        end else if (part_v) begin
{% for e in shift_list %}            rs_{= e =} <= rs_{= e + g =};
{% endfor %}        end
    end{% if g > 1 %}
{% if ge %}    // The group's units, unit 0's gate 0 in the low bits (the reduction's local write).
{% else %}    // One unit's four gate sums, gate 0 in the low bits (the reduction's local write).
{% endif %}    wire [{= g_accw =}-1:0] row_acc4 = {{% for e in group_rev %}rs_{= e =}{% if !loop.last %}, {% endif %}{% endfor %}};{% endif %}
{% else %}    wire [{= accw =}-1:0] row_acc = rf_head;
    wire part_v = adv_m && rf_v;
    assign rf_pop = part_v;
{% endif %}
    // ------------------------------------------------------------------ links
    wire [{= nports =}-1:0] rv_valid, rv_par, rv_ack, ok_p, rv_h, rv_p;
    wire [{= beat_bits =}-1:0] rv_beat;
    wire [{= vi_bits =}-1:0] rv_vi;
    wire [{= count_bits =}-1:0] rv_avail;
    wire [{= nports =}-1:0] rv_all;
    wire [{= type_bits =}-1:0] rv_type;
    wire [{= src_bits =}-1:0] rv_src;
    wire [{= layer_bits =}-1:0] rv_layer;
    wire [{= count_bits =}-1:0] rv_count;
    wire [{= data_bits =}-1:0] rv_data;
    wire bar_ok;
    reg tq_push;
    reg [{= tq_w =}-1:0] tq_in;
    wire vw_pend;
    wire waiting = (state == S_TSTART && !(gt == 32'd0 || (bar_ok && !vw_pend))) || (state == S_FDRAIN && f_on && !unit_ready)
        || (state == S_FLUSH && !bar_ok);
    // The MAC and wait counters count a cycle late, from registered flags, so the issue and
    // wait decisions end at flip-flops, not at 32-bit counters' enables. (Both flags are low
    // in S_IDLE, so a count cleared by START gains nothing from before it.)
    reg mac_q, wait_q;
    always @(posedge clk) begin
        if (rst) begin
            mac_q <= 1'b0;
            wait_q <= 1'b0;
        end else begin
            mac_q <= a_valid;
            wait_q <= busy && waiting;
        end
    end
    partita_link_hub #(
        .NP({= nports =}), .LW({= lw =}), .DW({= dw =}), .ACCW({= accw =}), .NDEV({= ndev =}),
        .NLAYERS({= layers_n =}), .LAYER_W({= layer_w =}), .VPB_H({= lk.vpb_h =}), .VPB_P({= lk.vpb_p =}),
        .VPB_W({= lk.vpb_w =}), .MAXV_H({= lk.maxv_h =}), .MAXV_P({= lk.maxv_p =}), .MAX_VALS({= lk.max_vals =}),
        .MAXB({= maxb =}), .FB_W({= lk.fb_w =}), .FB_IX_W({= lk.fb_ix_w =}), .RX_AW({= rx_aw =}), .RX_DEPTH({= rxd =}),
        .TQ_AW({= txq_aw =}), .TQ_DEPTH({= txq_depth =}), .EH({= ew_n =}), .QW({= qw =}), .TQ_W({= tq_w =}), .BAR_W({= bar_w =}),
        .BCAST({= bcast =})
    ) u_links (
        .clk(clk), .rst(rst_lk), .me(id_me), .others(id_others), .routes(id_routes),
        .hmasks(id_hmasks), .bc_fwd(id_bc_fwd),
        {= hub.tx =},
        {= hub.rx =},
        .tq_push(tq_push), .tq_in(tq_in), .tq_full(tq_full), .tq_full_n(tq_full_n), .tx_idle(tx_idle),
        .rv_valid(rv_valid), .rv_type(rv_type), .rv_src(rv_src), .rv_layer(rv_layer),
        .rv_par(rv_par), .rv_count(rv_count), .rv_data(rv_data), .rv_ack(rv_ack),
        .rv_beat(rv_beat), .rv_vi(rv_vi), .rv_avail(rv_avail), .rv_n({= count_bits =}'d0), .rv_all(rv_all), .ok_p(ok_p),
        .bar_take(bar_take), .bar_ok(bar_ok), .waiting(waiting), .timeout(link_timeout),
        .status(link_status), .crc_errs(crc_errs), .seq_errs(seq_errs), .fmt_errs(fmt_errs),
        .err_info(err_info), .tx_beats(tx_beats), .fwd_beats(fwd_beats), .rx_beats(rx_beats)
    );
{% for p in ports %}    assign rv_h[{= p.index =}] = rv_valid[{= p.index =}] && (rv_type[{= p.index =}*2 +: 2] == 2'd0);
    assign rv_p[{= p.index =}] = rv_valid[{= p.index =}] && (rv_type[{= p.index =}*2 +: 2] == 2'd1);
{% endfor %}    // Partial sums are taken one at a time (the reduction), h values a beat's run at a time,
    // all the head beat holds (the vector-memory write port).
    assign rv_ack = rv_p;

    // ------------------------------------------------------------------ vector memory writes
{% if ew_n > 1 %}    wire ew_v, x_ready;
{% else %}    wire ew_v, ew_c_clip, ew_h_clip, x_ready;
{% endif %}    wire [{= hw =}-1:0] ew_h;
    wire h_out = fadv && ew_v;
    {= p.vwrite =} u_vwrite (
        .clk(clk), .rst(rst_vw), .start(start_pulse), .busy(busy), .tick(state == S_BAR && !tq_full),
        .seq_len(seq_len),
        .seq_count(seq_count), .h_out(h_out), .h_need(l_needh), .fstart(state == S_LAYER),
        .flane(l_flane), .fidx(l_fidx), .hbase_wr(l_hbase_wr), .h(ew_h), .hstarts(id_hstarts),
        .rv_h(rv_h), .rv_src(rv_src), .rv_layer(rv_layer), .rv_par(rv_par), .rv_beat(rv_beat),
        .rv_vi(rv_vi), .rv_avail(rv_avail), .rv_all(rv_all), .pend(vw_pend), .x_beat(x_beat), .x_valid(x_tvalid),
        .x_avail(x_avail), .x_n(x_n), .x_ready(x_ready),
        .vw_en(wv_en), .vw_lane(wv_lane), .vw_word(wv_word), .vw_we(wv_we), .vw_data(wv_data)
    );

    // ------------------------------------------------------------------ finisher
    // Sum each gate's partial sums at full width and round once, then the element-wise unit.
    // The finisher takes a unit once its partials are in and, while this layer's rows are being
    // issued, only if they stay on this device (the transmit queue then carries no partials,
    // so h values and partial sums never meet there).
    wire unit_ready, feed_v;
    wire mac_phase = (state == S_XWAIT || state == S_MAC || state == S_MDRAIN);
    wire f_go = f_on && unit_ready && !link_err && (l_plocal || !mac_phase);
    wire [{= feed_all =}-1:0] feed;
    wire [{= pc_w =}-1:0] pre_clips;
    wire [{= unit_w =}-1:0] fin_unit;
    wire unused_fin = &{1'b0, fin_unit};
    assign fadv = !tq_full && !of_full;
    {= p.reduce =} u_reduce (
        .clk(clk), .rst(rst_rd), .layer(l), .local_en(part_v && l_plocal{% if overlap %} && !xp{% endif %}),{% if overlap %} .local_x_en(part_v && xp),{% endif %} .local_data({% if g > 1 %}row_acc4{% else %}row_acc{% endif %}),{% if ge %} .local_n(rs_n),{% endif %}
        .rv_p(rv_p), .rv_src(rv_src), .rv_layer(rv_layer), .rv_data(rv_data), .ok_p(ok_p),
        .rv_count(rv_count), .fin_start(state == S_LAYER), .fin_go(f_go), .fin_clear(fin_clear),
        .fadv_n(fadv_n), .f_slot(f_slot), .pbase(l_pbase), .unit_ready(unit_ready), .feed_v(feed_v), .feed(feed),
        .pre_clips(pre_clips), .unit(fin_unit)
    );
    // Each element-wise lane reads the first-step flag from a register copy of its own, a cycle
    // behind tl: a lane finishes units only cycles after its tick started, and tl changes only
    // between ticks, when the lanes are drained. So the 32-bit compare ends at a flip-flop, not
    // at the clears of the lanes' cell pipelines.
{% if ew_n > 1 %}    // {= ew_n =} element-wise lanes: lane j finishes unit slot u + j of each group (u a multiple of
    // {= ew_n =}), with the cell states of those units in its own memory (word u / {= ew_n =}).
    wire [{= paw =}-1:0] f_caddr = l_pbase + {= unit_ext =};
    wire unused_caddr = &{1'b0, f_caddr[{= eq =}-1:0], ew_vs[{= ew_n =}-1:1]};
    wire [{= ew_n =}-1:0] ew_vs, ew_cc, ew_hc;
    // Each lane's advance: six copies (its datapath and its five activation units each enable
    // their own flip-flops from one; separate instances, so synthesis keeps them apart).
    genvar g_adv;
{% for j in lanes %}    wire [5:0] fadv_{= j =};
    wire step0_{= j =};
    for (g_adv = 0; g_adv < 6; g_adv = g_adv + 1) begin : g_fadv_{= j =}
        partita_rep #(.W(1), .RST_VAL(1'b1)) u_rep (.clk(clk), .rst(rst), .d(fadv_n), .q(fadv_{= j =}[g_adv]));
    end
    partita_rep #(.W(1)) u_step0_{= j =} (.clk(clk), .rst(rst), .d(first_step), .q(step0_{= j =}));
    {= p.ew =} u_ew_{= j =} (
        .clk(clk), .rst(rst), .adv(fadv_{= j =}), .feed_v(feed_v), .feed(feed[{= j =}*{= feed_w =} +: {= feed_w =}]),
        .caddr(f_caddr[{= paw =}-1:{= eq =}]), .first_step(step0_{= j =}),
        .v_out(ew_vs[{= j =}]), .h_out(ew_h[{= j =}*{= dw =} +: {= dw =}]), .c_clip(ew_cc[{= j =}]), .h_clip(ew_hc[{= j =}])
    );
{% endfor %}    assign ew_v = ew_vs[0];
{% else %}    // The unit's advance: six copies (its datapath and its five activation units each enable
    // their own flip-flops from one; separate instances, so synthesis keeps them apart).
    genvar g_adv;
    wire [5:0] fadv_e;
    wire step0_e;
    for (g_adv = 0; g_adv < 6; g_adv = g_adv + 1) begin : g_fadv_e
        partita_rep #(.W(1), .RST_VAL(1'b1)) u_rep (.clk(clk), .rst(rst), .d(fadv_n), .q(fadv_e[g_adv]));
    end
    partita_rep #(.W(1)) u_step0_e (.clk(clk), .rst(rst), .d(first_step), .q(step0_e));
    {= p.ew =} u_ew (
        .clk(clk), .rst(rst), .adv(fadv_e), .feed_v(feed_v), .feed(feed),
        .caddr(l_pbase + {= unit_ext =}), .first_step(step0_e),
        .v_out(ew_v), .h_out(ew_h), .c_clip(ew_c_clip), .h_clip(ew_h_clip)
    );
{% endif %}

    // Transmit queue producers: remote partial sums, h values, barriers. Entries:
    // {last of run, type, layer, parity, destination, value}.
    always @* begin
        tq_push = 1'b0;
        tq_in = {= tq_w =}'d0;
        if (part_v && !l_plocal) begin
            tq_push = 1'b1;
            tq_in = {parts_out + {= rows_w =}'d1 == l_rows, 2'd1, l, 1'b0, l_pdst, {= row_acc_q =}};
        end else if (h_out && l_hmask != 8'd0) begin
            tq_push = 1'b1;
            tq_in = {units_done + {= nfin_w =}'d{= ew_n =} == l_nfin, 2'd0, l, wr_par, 3'd0, {= ew_h_acc =}};
        end else if (state == S_BAR && !tq_full) begin
            tq_push = 1'b1;
            tq_in = {1'b1, 2'd2, {= layer_w =}'d0, 1'b0, 3'd0, {= qw =}'d0};
        end
    end

    // Output FIFO: {h, last of this device's units in the timestep}.
    wire of_valid = (of_count != {= ofifo_cnt_w =}'d0);
    wire of_ready;
    wire of_pop = of_valid && of_ready;
    wire [{= hw =}:0] of_head;
    partita_fifo #(.W({= of_w =}), .AW({= ofifo_aw =}), .DEPTH({= ofifo_depth =})) u_ofifo (
        .clk(clk), .rst(rst), .push(h_out && l_out), .din({ew_h, units_done + {= nfin_w =}'d{= ew_n =} == l_nfin}),
        .pop(of_pop), .dout(of_head), .count(of_count)
    );
    // The h stream's packer (library core partita_pack): the stream pins are driven by
    // flip-flops.
    wire h_busy;
    partita_pack #(.SB({= s.sb =}), .VB({= s.vb =}), .P({= s.p =}), .R({= ew_n =}), .CW({= ocw =}), .JW({= pjw =})) u_h_out (
        .clk(clk), .rst(rst), .v_data({= out_ext =}), .v_cnt({= ocw =}'d{= ew_n =}), .v_valid(of_valid), .v_ready(of_ready),
        .v_last(of_head[0]), .m_tdata(m_axis_tdata), .m_tkeep(m_axis_tkeep),
        .m_tvalid(m_axis_tvalid), .m_tready(m_axis_tready), .m_tlast(m_axis_tlast), .busy(h_busy)
    );

    // ------------------------------------------------------------------ controller
    always @(posedge clk) begin
        fin_clear <= 1'b0;
        bar_take <= 1'b0;
        if (rst) begin
            state <= S_IDLE;
            busy <= 1'b0;
            done <= 1'b0;
            f_on <= 1'b0;
            gt <= 32'd0; tl <= 32'd0; b <= 32'd0;
            l <= {= layer_w =}'d0;
            row <= {= row_w =}'d0;
            slice <= {= slice_w =}'d0;
            waddr <= {= waw =}'d0;
            baddr <= {= baw =}'d0;
            parts_out <= {= rows_w =}'d0;
{% if ge %}            rs_ul <= {= rows_w =}'d0;
{% endif %}            f_slot <= {= unit_w =}'d0;
            units_done <= {= nfin_w =}'d0;{% if overlap %}
            xp <= 1'b0;
            xs <= 2'd0;{% endif %}
            cycles <= 64'd0;
            mac_cycles <= 32'd0;
            wait_cycles <= 32'd0;
        end else begin
            if (busy) cycles <= cycles + 64'd1;
            if (mac_q) mac_cycles <= mac_cycles + 32'd1;
            if (wait_q) wait_cycles <= wait_cycles + 32'd1;
{% if ge %}            if (part_v) begin
                parts_out <= parts_out + {rs_n_w[{= rows_w_2 =}:0], 2'b00};
                rs_ul <= rs_ul - rs_n_w;
            end
{% else %}            if (part_v) parts_out <= parts_out + {= rows_w =}'d{= g =};
{% endif %}
            if (h_out) units_done <= units_done + {= nfin_w =}'d{= ew_n =};
            // The finisher: the next unit, and after the layer's last the counts are cleared.
            if (f_go && fadv) begin
                f_slot <= f_slot + {= unit_w =}'d{= ew_n =};
                if ({1'b0, f_slot} + {= nfin_w =}'d{= ew_n =} == l_nfin) begin
                    f_on <= 1'b0;
                    fin_clear <= 1'b1;
                end
            end
            case (state)
                S_IDLE: if (start_pulse) begin
                    busy <= seq_run;
                    done <= !seq_run;
                    state <= seq_run ? S_TSTART : S_IDLE;
                    gt <= 32'd0; tl <= 32'd0; b <= 32'd0;{% if overlap %}
                    xs <= 2'd0;{% endif %}
                    cycles <= 64'd0;
                    mac_cycles <= 32'd0;
                    wait_cycles <= 32'd0;
                end
{% if overlap %}                S_TSTART: if (!link_err && xs == 2'd0) begin
                    l <= {= layer_w =}'d0;
                    state <= S_XSTART;
                end else if (!link_err && (gt == 32'd0 || (bar_ok && !vw_pend))) begin
                    bar_take <= (gt != 32'd0);
                    l <= {= layer_w =}'d0;
                    state <= S_LAYER;
                end
                // Layer 0's x pass (l is 0): needs only this tick's x.
                S_XSTART: begin
                    waddr <= l_wbase;
                    baddr <= l_bbase;
                    row <= {= row_w =}'d0;
                    slice <= {= slice_w =}'d0;
                    parts_out <= {= rows_w =}'d0;
{% if ge %}                    rs_ul <= {2'b00, l_rows[{= rows_w =}-1:2]};
{% endif %}                    if (l_active && l_mac) begin
                        xp <= 1'b1;
                        xs <= 2'd1;
                        state <= S_XWAIT;
                    end else begin
                        xs <= 2'd2;
                        state <= S_TSTART;
                    end
                end
{% else %}                S_TSTART: if (!link_err && (gt == 32'd0 || (bar_ok && !vw_pend))) begin
                    bar_take <= (gt != 32'd0);
                    l <= {= layer_w =}'d0;
                    state <= S_LAYER;
                end
{% endif %}
                S_LAYER: begin
{% if overlap %}                    // Layer 0 after its x pass: the h pass (h slices only, zero bias).
                    waddr <= hp ? l_wbase_h : l_wbase;
                    baddr <= hp ? {= baw =}'d{= bzero =} : l_bbase;
                    slice <= s_lo;
{% else %}                    waddr <= l_wbase;
                    baddr <= l_bbase;
                    slice <= {= slice_w =}'d0;
{% endif %}                    row <= {= row_w =}'d0;
                    parts_out <= {= rows_w =}'d0;
{% if ge %}                    rs_ul <= {2'b00, l_rows[{= rows_w =}-1:2]};
{% endif %}                    units_done <= {= nfin_w =}'d0;
                    f_slot <= {= unit_w =}'d0;
                    f_on <= l_active && l_fin;
                    if (!l_active || (!l_mac && !l_fin)) state <= S_NEXT;
                    else if (l_mac) state <= (l == {= layer_w =}'d0{% if overlap %} && !hp{% endif %}) ? S_XWAIT : S_MAC;
                    else state <= S_FDRAIN;
                end
                S_XWAIT: if (x_ready) state <= S_MAC;
                S_MAC: if (room) begin
                    waddr <= waddr + {= waw =}'d1;
                    if (a_last) begin
{% if overlap %}                        slice <= s_lo;
                        if (!hp) baddr <= baddr + {= baw =}'d1;
{% else %}                        slice <= {= slice_w =}'d0;
                        baddr <= baddr + {= baw =}'d1;
{% endif %}
                        if ({1'b0, row} + {= rows_w =}'d1 == l_slots) state <= S_MDRAIN;
                        else row <= row + {= row_w =}'d1;
                    end else begin
                        slice <= slice + {= slice_w =}'d1;
                    end
                end
{% if overlap %}                S_MDRAIN: if (parts_out == l_rows) begin
                    if (xp) begin
                        // The x pass is done: wait for the barrier, then the h pass.
                        xp <= 1'b0;
                        state <= S_TSTART;
                    end else state <= l_fin ? S_FDRAIN : S_NEXT;
                end
{% else %}                S_MDRAIN: if (parts_out == l_rows) state <= l_fin ? S_FDRAIN : S_NEXT;
{% endif %}
                S_FDRAIN: if (!f_on && units_done == l_nfin) state <= S_NEXT;
                S_NEXT: if (l == {= layer_w =}'d{= layers_last =}) state <= S_BAR;
                    else begin
                        l <= l + {= layer_w =}'d1;
                        state <= S_LAYER;
                    end
                S_BAR: if (!tq_full) begin
                    gt <= gt + 32'd1;{% if overlap %}
                    xs <= 2'd0;{% endif %}
                    if (tl_last) begin
                        tl <= 32'd0;
                        if (b_last) state <= S_FLUSH;
                        else begin
                            b <= b + 32'd1;
                            state <= S_TSTART;
                        end
                    end else begin
                        tl <= tl + 32'd1;
                        state <= S_TSTART;
                    end
                end
                S_FLUSH: if (bar_ok && tx_idle && of_count == {= ofifo_cnt_w =}'d0 && !h_busy) begin
                    bar_take <= 1'b1;
                    busy <= 1'b0;
                    done <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // Saturation events: pre-activations, cell states and h values. This cycle's events are
    // summed into a small register first, so the 32-bit count is one adder.
    reg [31:0] sat_inc;
    always @(posedge clk) begin
        if (rst || (start_pulse && state == S_IDLE)) begin
            sat_inc <= 32'd0;
            sat_count <= 32'd0;
        end else begin
            sat_inc <= fadv ? {= sat_expr =} : 32'd0;
            sat_count <= sat_count + sat_inc;
        end
    end

    // ------------------------------------------------------------------ AXI4-Lite
    {= p.regs =} u_regs (
        .clk(clk), .rst_n(!rst_sync[1]),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
        .idle(state == S_IDLE), .busy(busy), .done(done), .fault(link_err), .cycles(cycles),
{% for c in reg_conns %}        .{= c.port =}({= c.expr =}),
{% endfor %}        .start_pulse(start_pulse), .soft_rst(soft_rst), .commit_pulse(commit_pulse),
        .wstage(wstage)
    );
endmodule
