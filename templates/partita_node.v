{= header =}
// partita multi-device LSTM node: device {= me =} of {= ndev =} ({= topology =} topology, {= lw =}-bit
// links). {= layers_n =} layer(s), input {= input_size =}, hidden {= hidden =}, one row engine of
// {= k =} lanes. AXI4-Lite control (regmap.json, partita_regs.h), AXI4-Stream x_t in (devices
// that hold layer-0 x columns) and h_t out (this device's last-layer units), AXI4-Stream link
// ports {= port_doc =}.
//
// Work runs in ticks; at tick T layer l computes timestep T - l, so stacked layers on different
// devices form a pipeline. A tick is: for each layer with work here, the engine issues this
// device's rows (full-width partial sums, bias on the device holding column block 0); partial
// sums go to the local partial buffer or, as frames, to the layer's finisher. The finisher sums
// every partial of a gate row at full width, rounds once, and runs the element-wise unit; the
// new h goes to this device's vector memory and, as frames, to every device that needs it.
// A tick ends with a BARRIER frame to every other device; tick T+1 starts once all of them
// arrived, so every vector buffer is double-buffered by tick parity and no receiver ever stalls
// a link for long.
//
// Frames (tlast ends them): header beat {type[31:30], src[29:27], dst[26:24], layer[23:21],
// count[20:14], parity[13], seq[12:0]} (type 0 h values, 1 partial sums, 2 barrier; parity: the
// tick-parity buffer h values go to); payload beats with
// count values packed from bit 0; a trailer beat with the CRC-32 (poly 04C11DB7, init
// FFFFFFFF, every bit of header and payload beats, most significant first). Sequence numbers
// count frames per (source, destination). A frame addressed elsewhere is forwarded unchanged.
// A CRC, sequence or format error sets LINK_STATUS and its counter, drops the frame, and stops
// this device: a damaged frame is never used.
module partita_top #(
    parameter WEIGHTS_E0 = "weights_e0.hex",
    parameter BIAS_E0 = "bias_e0.hex"
) (
{% include "partita_axil_ports.inc" %}
{% for p in ports %}    // Link port {= p.index =}: {= p.doc =}
    output wire [{= lw =}-1:0] l{= p.index =}_tx_tdata,
    output wire        l{= p.index =}_tx_tvalid,
    input  wire        l{= p.index =}_tx_tready,
    output wire        l{= p.index =}_tx_tlast,
    input  wire [{= lw =}-1:0] l{= p.index =}_rx_tdata,
    input  wire        l{= p.index =}_rx_tvalid,
    output wire        l{= p.index =}_rx_tready,
    input  wire        l{= p.index =}_rx_tlast,
{% endfor %}    // AXI4-Stream input: x_t, {= input_size =} beats per timestep (ignored when this device holds no layer-0 x columns).
    input  wire [{= axis_w =}-1:0] s_axis_tdata,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    // AXI4-Stream output: {= n_out =} h values per timestep (units {= out_u0 =}..), tlast on the last.
    output wire [{= axis_w =}-1:0] m_axis_tdata,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);
    localparam [3:0] S_IDLE = 4'd0, S_TSTART = 4'd1, S_LAYER = 4'd2, S_XWAIT = 4'd3, S_MAC = 4'd4,
                     S_MDRAIN = 4'd5, S_FWAIT = 4'd6, S_FIN = 4'd7, S_FDRAIN = 4'd8, S_NEXT = 4'd9,
                     S_BAR = 4'd10, S_FLUSH = 4'd11;
    localparam [31:0] CRC_INIT = 32'hFFFFFFFF;
    function [31:0] crc_next(input [31:0] c, input [{= lw =}-1:0] d);
        integer n;
        reg [31:0] x;
        begin
            x = c;
            for (n = {= lw =} - 1; n >= 0; n = n - 1)
                x = {x[30:0], 1'b0} ^ ((x[31] ^ d[n]) ? 32'h04C11DB7 : 32'h00000000);
            crc_next = x;
        end
    endfunction
    // Next gate after g in mask m: {wrapped, gate}.
    function [2:0] next_gate(input [3:0] m, input [1:0] g);
        reg [1:0] first;
        begin
            first = m[0] ? 2'd0 : (m[1] ? 2'd1 : (m[2] ? 2'd2 : 2'd3));
            case (g)
                2'd0: next_gate = m[1] ? 3'd1 : (m[2] ? 3'd2 : (m[3] ? 3'd3 : {1'b1, first}));
                2'd1: next_gate = m[2] ? 3'd2 : (m[3] ? 3'd3 : {1'b1, first});
                2'd2: next_gate = m[3] ? 3'd3 : {1'b1, first};
                default: next_gate = {1'b1, first};
            endcase
        end
    endfunction

    // ------------------------------------------------------------------ registers
    reg        soft_rst;
    wire       rst = !rst_n || soft_rst;
    reg [31:0] seq_len, seq_count, link_timeout;
    reg        busy, done, err_flag;
    reg [63:0] cycles;
    reg [31:0] sat_count, err_count;
    reg [31:0] wsel, waddr_reg;
    reg [{= wstage_w =}-1:0] wstage;
    reg        start_pulse, commit_pulse;
    reg [3:0]  link_status;
    reg [31:0] crc_errs, seq_errs, fmt_errs, err_info;
    reg [31:0] tx_beats, fwd_beats, rx_beats, mac_cycles, wait_cycles;
    wire       link_err = (link_status != 4'd0);
    wire unused_axil = &{1'b0, s_axil_wstrb, s_axil_awaddr[1:0], s_axil_araddr[1:0]};
    wire unused_regs = &{1'b0, {= unused_regs =}, s_axis_tlast};

    // ------------------------------------------------------------------ controller
    reg [3:0]  state;
    reg [31:0] gt, tl, b, wd;
    reg [{= layer_w =}-1:0] l;
    reg [{= row_w =}-1:0] row;
    reg [{= slice_w =}-1:0] slice;
    reg [{= waw =}-1:0] waddr;
    reg [{= baw =}-1:0] baddr;
    reg [{= row_w =}:0] parts_out;
    reg [{= unit_w =}-1:0] f_slot;
    reg [{= unit_w =}:0] units_done;
    reg [{= bar_w =}-1:0] bar_cnt;
    wire [31:0] l32 = {{= 32 - layer_w =}'d0, l};
    wire [31:0] ticks_per_seq = seq_len + 32'd{= layers_n - 1 =};
    wire l_active = (l32 <= tl) && (tl < seq_len + l32);
    wire first_step = (tl == l32);
    wire rd_par = gt[0];
    wire wr_par = !gt[0];

    // Per-layer constants of this device's schedule.
    reg        l_mac, l_fin, l_plocal, l_needh, l_out;
    reg [{= row_w =}:0] l_rows;
    reg [{= slice_w =}-1:0] l_slices, l_nih;
    reg [{= waw =}-1:0] l_wbase;
    reg [{= baw =}-1:0] l_bbase;
    reg [{= vaw =}-1:0] l_xbase, l_hbase_rd, l_hbase_wr;
    reg [2:0]  l_pdst;
    reg [{= unit_w =}:0] l_nfin;
    reg [{= paw =}-1:0] l_pbase;
    reg [{= caw =}-1:0] l_cbase;
    reg [{= lane_w =}-1:0] l_flane;
    reg [{= vaw =}-1:0] l_fidx;
    reg [7:0]  l_hmask;
    always @* begin
        l_mac = 1'b0; l_fin = 1'b0; l_plocal = 1'b1; l_needh = 1'b0; l_out = 1'b0;
        l_rows = {= row_w + 1 =}'d1; l_slices = {= slice_w =}'d1; l_nih = {= slice_w =}'d0;
        l_wbase = {= waw =}'d0; l_bbase = {= baw =}'d0;
        l_xbase = {= vaw =}'d0; l_hbase_rd = {= vaw =}'d0; l_hbase_wr = {= vaw =}'d0;
        l_pdst = 3'd0; l_nfin = {= unit_w + 1 =}'d1; l_pbase = {= paw =}'d0;
        l_cbase = {= caw =}'d0; l_flane = {= lane_w =}'d0; l_fidx = {= vaw =}'d0; l_hmask = 8'd0;
        case (l)
{% for c in layer_consts %}            {= layer_w =}'d{= c.index =}: begin
                l_mac = 1'b{= c.mac =}; l_fin = 1'b{= c.fin =}; l_plocal = 1'b{= c.plocal =};
                l_needh = 1'b{= c.needh =}; l_out = 1'b{= c.out =};
                l_rows = {= row_w + 1 =}'d{= c.rows =}; l_slices = {= slice_w =}'d{= c.slices =}; l_nih = {= slice_w =}'d{= c.nih =};
                l_wbase = {= waw =}'d{= c.wbase =}; l_bbase = {= baw =}'d{= c.bbase =};
                l_xbase = rd_par ? {= vaw =}'d{= c.xbase1 =} : {= vaw =}'d{= c.xbase0 =};
                l_hbase_rd = rd_par ? {= vaw =}'d{= c.hbase1 =} : {= vaw =}'d{= c.hbase0 =};
                l_hbase_wr = wr_par ? {= vaw =}'d{= c.hbase1 =} : {= vaw =}'d{= c.hbase0 =};
                l_pdst = 3'd{= c.pdst =};
                l_nfin = {= unit_w + 1 =}'d{= c.nfin =}; l_pbase = {= paw =}'d{= c.pbase =}; l_cbase = {= caw =}'d{= c.cbase =};
                l_flane = {= lane_w =}'d{= c.flane =}; l_fidx = {= vaw =}'d{= c.fidx =}; l_hmask = 8'b{= c.hmask =};
            end
{% endfor %}            default: ;
        endcase
    end

    // ------------------------------------------------------------------ output FIFO
    localparam integer OD = {= ofifo_depth =};
    reg [{= dw =}:0] ofifo [0:OD-1];
    reg [{= ofifo_aw =}-1:0] of_wp, of_rp;
    reg [{= ofifo_aw =}:0] of_count;
    wire of_full = (of_count == {= ofifo_aw + 1 =}'d{= ofifo_depth =});

    // ------------------------------------------------------------------ transmit queue
    // Entries {last of run, type, layer, parity, destination, value}; the framer packs them.
    localparam integer TQD = {= txq_depth =};
    localparam integer TQW = {= tq_w =};
    reg [TQW-1:0] txq [0:TQD-1];
    reg [{= txq_aw =}-1:0] tq_wp, tq_rp;
    reg [{= txq_aw =}:0] tq_count;
    wire tq_full = (tq_count >= {= txq_aw + 1 =}'d{= txq_depth - 2 =});
    reg tq_push;
    reg [TQW-1:0] tq_in;
    wire tq_pop;
    wire [TQW-1:0] tq_head = txq[tq_rp];
    wire tq_empty = (tq_count == {= txq_aw + 1 =}'d0);
    always @(posedge clk) begin
        if (rst) begin
            tq_wp <= {= txq_aw =}'d0;
            tq_rp <= {= txq_aw =}'d0;
            tq_count <= {= txq_aw + 1 =}'d0;
        end else begin
            if (tq_push) begin
                txq[tq_wp] <= tq_in;
                tq_wp <= tq_wp + {= txq_aw =}'d1;
            end
            if (tq_pop) tq_rp <= tq_rp + {= txq_aw =}'d1;
            if (tq_push && !tq_pop) tq_count <= tq_count + {= txq_aw + 1 =}'d1;
            else if (tq_pop && !tq_push) tq_count <= tq_count - {= txq_aw + 1 =}'d1;
        end
    end

    // ------------------------------------------------------------------ engine
    wire adv_m = !tq_full;
    wire a_valid = (state == S_MAC);
    wire a_xsel = (slice < l_nih);
    wire a_first = (slice == {= slice_w =}'d0);
    wire a_last = (slice == l_slices - {= slice_w =}'d1);
    reg        vw_en;
    reg [{= lane_w =}-1:0] vw_lane;
    reg [{= vaw =}-1:0] vw_addr;
    reg [{= dw =}-1:0] vw_data;
    wire row_valid;
    wire [{= accw =}-1:0] row_acc;
    partita_engine #(
        .WEIGHT_HEX(WEIGHTS_E0),
        .BIAS_HEX(BIAS_E0),
        .KIND(0)
    ) u_engine_0 (
        .clk(clk), .rst(rst), .adv(adv_m),
        .a_valid(a_valid), .a_waddr(waddr), .a_baddr(baddr), .a_first(a_first),
        .a_last(a_last), .a_xsel(a_xsel), .a_step0(first_step), .a_xbase(l_xbase), .a_hbase(l_hbase_rd),
        .vw_en(vw_en), .vw_lane(vw_lane), .vw_addr(vw_addr), .vw_data(vw_data),
        .ww_en(commit_pulse && !wsel[0]), .ww_addr(waddr_reg[{= waw =}-1:0]),
        .ww_data(wstage[{= wword =}-1:0]),
        .bw_en(commit_pulse && wsel[0]), .bw_addr(waddr_reg[{= baw =}-1:0]),
        .bw_data(wstage[{= bw =}-1:0]),
        .row_valid(row_valid), .row_acc(row_acc)
    );
    wire part_v = adv_m && row_valid && (state == S_MAC || state == S_MDRAIN);

    // ------------------------------------------------------------------ partial buffers
    // One memory per (source, gate), written in unit order by that source's stream.
{% for s in slots %}    // Source slot {= s.index =}: device {= s.dev =}.
{% for g in gates %}    reg [{= accw =}-1:0] pm_{= s.index =}_{= g =} [0:{= pdepth =}-1];
{% endfor %}    reg [1:0] pw_gate_{= s.index =};
    reg [{= unit_w =}-1:0] pw_slot_{= s.index =};
    reg [{= cnt_w =}-1:0] pc_{= s.index =} [0:{= layers_n =}-1];
    reg pw_en_{= s.index =};
    reg [{= accw =}-1:0] pw_data_{= s.index =};
    reg [{= layer_w =}-1:0] pw_layer_{= s.index =};
    reg [3:0] pw_mask_{= s.index =};
    reg [{= paw =}-1:0] pw_base_{= s.index =};
    reg [{= cnt_w =}-1:0] pw_n_{= s.index =};
{% endfor %}
    // ------------------------------------------------------------------ link receive
    // rv_*: the value a receive port presents; H values need the vector write port.
{% for p in ports %}    reg [{= lw =}:0] rxf_{= p.index =} [0:{= rxd =}-1];
    reg [{= rx_aw =}-1:0] rx_wp_{= p.index =}, rx_rp_{= p.index =};
    reg [{= rx_aw =}:0] rx_cnt_{= p.index =};
    wire rx_in_{= p.index =} = l{= p.index =}_rx_tvalid && l{= p.index =}_rx_tready;
    assign l{= p.index =}_rx_tready = (rx_cnt_{= p.index =} != {= rx_aw + 1 =}'d{= rxd =});
    wire rh_v_{= p.index =} = (rx_cnt_{= p.index =} != {= rx_aw + 1 =}'d0);
    wire [{= lw =}:0] rh_{= p.index =} = rxf_{= p.index =}[rx_rp_{= p.index =}];
    wire [{= lw =}-1:0] rh_d_{= p.index =} = rh_{= p.index =}[{= lw =}-1:0];
    wire rh_last_{= p.index =} = rh_{= p.index =}[{= lw =}];
    reg rx_pop_{= p.index =};
    always @(posedge clk) begin
        if (rst) begin
            rx_wp_{= p.index =} <= {= rx_aw =}'d0;
            rx_rp_{= p.index =} <= {= rx_aw =}'d0;
            rx_cnt_{= p.index =} <= {= rx_aw + 1 =}'d0;
        end else begin
            if (rx_in_{= p.index =}) begin
                rxf_{= p.index =}[rx_wp_{= p.index =}] <= {l{= p.index =}_rx_tlast, l{= p.index =}_rx_tdata};
                rx_wp_{= p.index =} <= rx_wp_{= p.index =} + {= rx_aw =}'d1;
            end
            if (rx_pop_{= p.index =}) rx_rp_{= p.index =} <= rx_rp_{= p.index =} + {= rx_aw =}'d1;
            if (rx_in_{= p.index =} && !rx_pop_{= p.index =}) rx_cnt_{= p.index =} <= rx_cnt_{= p.index =} + {= rx_aw + 1 =}'d1;
            else if (rx_pop_{= p.index =} && !rx_in_{= p.index =}) rx_cnt_{= p.index =} <= rx_cnt_{= p.index =} - {= rx_aw + 1 =}'d1;
        end
    end
    // Header fields of the head beat.
    wire [1:0] hd_type_{= p.index =} = rh_d_{= p.index =}[31:30];
    wire [2:0] hd_src_{= p.index =} = rh_d_{= p.index =}[29:27];
    wire [2:0] hd_dst_{= p.index =} = rh_d_{= p.index =}[26:24];
    wire [2:0] hd_layer_{= p.index =} = rh_d_{= p.index =}[23:21];
    wire [6:0] hd_cnt_{= p.index =} = rh_d_{= p.index =}[20:14];
    wire [12:0] hd_seq_{= p.index =} = rh_d_{= p.index =}[12:0];
    wire hd_par_{= p.index =} = rh_d_{= p.index =}[13];
    reg [1:0] rs_{= p.index =};  // 0 header, 1 payload, 2 forward, 3 drop
    reg [1:0] rt_{= p.index =};
    reg rpar_{= p.index =};
    reg [2:0] rsrc_{= p.index =};
    reg [{= layer_w =}-1:0] rlay_{= p.index =};
    reg [6:0] rleft_{= p.index =}, rcount_{= p.index =};
    reg [{= vpb_w =}-1:0] rvi_{= p.index =};
    reg [31:0] rcrc_{= p.index =};
    // Values in the head payload beat: min(values per beat, values left).
    wire [6:0] rvpb_{= p.index =} = (rt_{= p.index =} == 2'd0) ? 7'd{= vpb_h =} : 7'd{= vpb_p =};
    wire [6:0] rnb_{= p.index =} = (rleft_{= p.index =} < rvpb_{= p.index =}) ? rleft_{= p.index =} : rvpb_{= p.index =};
    wire rv_v_{= p.index =} = rh_v_{= p.index =} && (rs_{= p.index =} == 2'd1) && !rh_last_{= p.index =} && (rleft_{= p.index =} != 7'd0);
    reg [{= accw =}-1:0] rv_val_{= p.index =};
    always @* begin
        case (rvi_{= p.index =})
{= p.rv_case =}            default: rv_val_{= p.index =} = {= accw =}'d0;
        endcase
    end
    wire rv_h_{= p.index =} = rv_v_{= p.index =} && (rt_{= p.index =} == 2'd0);
    wire rv_p_{= p.index =} = rv_v_{= p.index =} && (rt_{= p.index =} == 2'd1);
    wire rv_ack_{= p.index =};
    wire unused_rx_{= p.index =} = &{1'b0, rcount_{= p.index =}, ok_p_{= p.index =}, rv_val_{= p.index =}};
{% endfor %}
    // ------------------------------------------------------------------ h write counters per source
    // Where the next h value from each device goes: lane and index in the vector memory.
    // Start lane/index and run length of device s's h values in layer ly.
    function [{= hstart_w =}-1:0] hstart(input [2:0] s, input [{= layer_w =}-1:0] ly);
        begin
            case ({s, ly})
{% for h in hstarts %}                {= h.key =}: hstart = {= h.value =};
{% endfor %}                default: hstart = {= hstart_w =}'d0;
            endcase
        end
    endfunction
{% for p in ports %}    reg [{= lane_w =}-1:0] hl_lane_{= p.index =} [0:7];
    reg [{= vaw =}-1:0] hl_idx_{= p.index =} [0:7];
    reg [{= unit_w =}:0] hl_cnt_{= p.index =} [0:7];
    wire [{= hstart_w =}-1:0] hs_{= p.index =} = hstart(rsrc_{= p.index =}, rlay_{= p.index =});
    wire hfirst_{= p.index =} = (hl_cnt_{= p.index =}[rsrc_{= p.index =}] == {= unit_w + 1 =}'d0);
    wire [{= lane_w =}-1:0] hw_lane_{= p.index =} = hfirst_{= p.index =} ? hs_{= p.index =}[{= hstart_w - 1 =}:{= hstart_w - lane_w =}] : hl_lane_{= p.index =}[rsrc_{= p.index =}];
    wire [{= vaw =}-1:0] hw_idx_{= p.index =} = hfirst_{= p.index =} ? hs_{= p.index =}[{= vaw + unit_w =}:{= unit_w + 1 =}] : hl_idx_{= p.index =}[rsrc_{= p.index =}];
    wire [{= unit_w =}:0] hw_n_{= p.index =} = hs_{= p.index =}[{= unit_w =}:0];
    reg [{= vaw =}-1:0] hw_base_{= p.index =};
    always @* begin
        hw_base_{= p.index =} = {= vaw =}'d0;
        case (rlay_{= p.index =})
{% for c in layer_consts %}            {= layer_w =}'d{= c.index =}: hw_base_{= p.index =} = rpar_{= p.index =} ? {= vaw =}'d{= c.hbase1 =} : {= vaw =}'d{= c.hbase0 =};
{% endfor %}            default: ;
        endcase
    end
{% endfor %}
    // ------------------------------------------------------------------ element-wise pipeline signals
    reg fv0, fv1;
    reg [{= paw =}-1:0] f_addr;
    wire fadv = !tq_full && !of_full;
    reg v1, v2, v3, v4, v5, v6;
    reg [{= dw =}-1:0] h6;
    reg [{= lane_w =}-1:0] lh_lane;
    reg [{= vaw =}-1:0] lh_idx;
    wire h_out = fadv && v6;
    wire lh_req = h_out && l_needh;

    // ------------------------------------------------------------------ input loader
    reg [31:0] ld_gt, ld_tl, ld_b;
    reg        ld_done;
    reg [{= lane_w =}-1:0] ld_lane;
    reg [{= vaw =}-1:0] ld_idx;
    reg [{= in_w =}-1:0] ld_count;
    wire ld_ok = busy && !ld_done && (ld_gt <= gt + 32'd1);
    wire ld_req = {= need_x =} && ld_ok && s_axis_tvalid;
    wire x_ready = !{= need_x =} || ld_done || (ld_gt > gt);

    // ------------------------------------------------------------------ vector write arbiter
    // Priority: local h, then receive ports in order, then the input loader.
{% for p in ports %}    wire vgrant_{= p.index =} = rv_h_{= p.index =} && !lh_req{% for q in ports %}{% if q.index < p.index %} && !rv_h_{= q.index =}{% endif %}{% endfor %};
{% endfor %}    wire vgrant_ld = ld_req && !lh_req{% for p in ports %} && !rv_h_{= p.index =}{% endfor %};
    always @* begin
        vw_en = 1'b0;
        vw_lane = {= lane_w =}'d0;
        vw_addr = {= vaw =}'d0;
        vw_data = {= dw =}'d0;
        if (lh_req) begin
            vw_en = 1'b1; vw_lane = lh_lane; vw_addr = l_hbase_wr + lh_idx; vw_data = h6;
{% for p in ports %}        end else if (vgrant_{= p.index =}) begin
            vw_en = 1'b1; vw_lane = hw_lane_{= p.index =}; vw_addr = hw_base_{= p.index =} + hw_idx_{= p.index =};
            vw_data = rv_val_{= p.index =}[{= dw =}-1:0];
{% endfor %}        end else if (vgrant_ld) begin
            vw_en = 1'b1; vw_lane = ld_lane; vw_addr = (ld_gt[0] ? {= vaw =}'d{= bx0 =} : {= vaw =}'d0) + ld_idx;
            vw_data = s_axis_tdata[{= dw =}-1:0];
        end
    end
    assign s_axis_tready = {= need_x =} ? (ld_ok && !lh_req{% for p in ports %} && !rv_h_{= p.index =}{% endfor %}) : 1'b1;
{% for p in ports %}    assign rv_ack_{= p.index =} = rv_p_{= p.index =} || vgrant_{= p.index =};
{% endfor %}
    always @(posedge clk) begin
        if (rst || start_pulse) begin
            ld_gt <= 32'd0; ld_tl <= 32'd0; ld_b <= 32'd0; ld_done <= !{= need_x =};
            ld_lane <= {= lane_w =}'d0; ld_idx <= {= vaw =}'d0; ld_count <= {= in_w =}'d0;
        end else if (vgrant_ld) begin
            if (ld_idx == {= vaw =}'d{= bx0 - 1 =}) begin
                ld_idx <= {= vaw =}'d0;
                ld_lane <= ld_lane + {= lane_w =}'d1;
            end else begin
                ld_idx <= ld_idx + {= vaw =}'d1;
            end
            if (ld_count == {= in_w =}'d{= input_size - 1 =}) begin
                ld_count <= {= in_w =}'d0;
                ld_lane <= {= lane_w =}'d0;
                ld_idx <= {= vaw =}'d0;
                if (ld_tl + 32'd1 == seq_len) begin
                    ld_tl <= 32'd0;
                    ld_gt <= ld_gt + 32'd1 + 32'd{= layers_n - 1 =};
                    if (ld_b + 32'd1 == seq_count) ld_done <= 1'b1;
                    else ld_b <= ld_b + 32'd1;
                end else begin
                    ld_tl <= ld_tl + 32'd1;
                    ld_gt <= ld_gt + 32'd1;
                end
            end else begin
                ld_count <= ld_count + {= in_w =}'d1;
            end
        end
    end
{% if need_x == "1'b0" %}    wire unused_loader = &{1'b0, s_axis_tdata, s_axis_tvalid, ld_tl, ld_b};
{% else %}    wire unused_loader = &{1'b0{% if axis_w > dw %}, s_axis_tdata[{= axis_w =}-1:{= dw =}]{% endif %}};
{% endif %}
    // ------------------------------------------------------------------ partial sums: who writes
    // The local engine writes its own slot; remote slots are written by the port they arrive on.
    // Values of a run come unit by unit, and within a unit in gate order over the source's gates.
{% for s in slots %}    always @* begin
{% if s.local %}        pw_en_{= s.index =} = part_v && l_plocal;
        pw_data_{= s.index =} = row_acc;
        pw_layer_{= s.index =} = l;
{% else %}        pw_en_{= s.index =} = rv_p_{= s.port =} && (rsrc_{= s.port =} == 3'd{= s.dev =});
        pw_data_{= s.index =} = rv_val_{= s.port =};
        pw_layer_{= s.index =} = rlay_{= s.port =};
{% endif %}        pw_mask_{= s.index =} = 4'd1;
        pw_base_{= s.index =} = {= paw =}'d0;
        pw_n_{= s.index =} = {= cnt_w =}'d1;
        case (pw_layer_{= s.index =})
{% for c in s.layers %}            {= layer_w =}'d{= c.index =}: begin
                pw_mask_{= s.index =} = 4'b{= c.mask =};
                pw_base_{= s.index =} = {= paw =}'d{= c.pbase =};
                pw_n_{= s.index =} = {= cnt_w =}'d{= c.n =};
            end
{% endfor %}            default: ;
        endcase
    end
    reg [{= cnt_w =}-1:0] pw_k_{= s.index =};
    wire [2:0] pw_g0_{= s.index =} = next_gate(pw_mask_{= s.index =}, 2'd3);
    wire unused_pw_{= s.index =} = &{1'b0, pw_g0_{= s.index =}[2]};
    wire [1:0] pw_cg_{= s.index =} = (pw_k_{= s.index =} == {= cnt_w =}'d0) ? pw_g0_{= s.index =}[1:0] : pw_gate_{= s.index =};
    wire [{= unit_w =}-1:0] pw_cs_{= s.index =} = (pw_k_{= s.index =} == {= cnt_w =}'d0) ? {= unit_w =}'d0 : pw_slot_{= s.index =};
    wire [2:0] pw_ng_{= s.index =} = next_gate(pw_mask_{= s.index =}, pw_cg_{= s.index =});
    wire [{= paw =}-1:0] pw_addr_{= s.index =} = pw_base_{= s.index =} + {= s.slot_ext =};
    always @(posedge clk) begin
        if (rst) begin
            pw_gate_{= s.index =} <= 2'd0;
            pw_slot_{= s.index =} <= {= unit_w =}'d0;
            pw_k_{= s.index =} <= {= cnt_w =}'d0;
        end else if (pw_en_{= s.index =}) begin
            pw_gate_{= s.index =} <= pw_ng_{= s.index =}[1:0];
            pw_slot_{= s.index =} <= pw_cs_{= s.index =} + {{= unit_w - 1 =}'d0, pw_ng_{= s.index =}[2]};
            pw_k_{= s.index =} <= (pw_k_{= s.index =} + {= cnt_w =}'d1 == pw_n_{= s.index =}) ? {= cnt_w =}'d0 : pw_k_{= s.index =} + {= cnt_w =}'d1;
        end
        if (pw_en_{= s.index =}) begin
            case (pw_cg_{= s.index =})
{% for g in gates %}                2'd{= g =}: pm_{= s.index =}_{= g =}[pw_addr_{= s.index =}] <= pw_data_{= s.index =};
{% endfor %}            endcase
        end
    end
{% endfor %}
    // Committed partial counts per (slot, layer); FIN waits for every expected one.
{% for s in slots %}    reg [{= cnt_w =}-1:0] pe_{= s.index =};
    reg [3:0] cm_{= s.index =};
    always @* begin
        pe_{= s.index =} = {= cnt_w =}'d0;
        cm_{= s.index =} = 4'd0;
        case (l)
{% for c in s.layers %}            {= layer_w =}'d{= c.index =}: begin
                pe_{= s.index =} = {= cnt_w =}'d{= c.n =};
                cm_{= s.index =} = 4'b{= c.mask =};
            end
{% endfor %}            default: ;
        endcase
    end
{% endfor %}    wire fin_ready = 1'b1{% for s in slots %} && (pc_{= s.index =}[l] == pe_{= s.index =}){% endfor %};
    reg fin_clear;

    // ------------------------------------------------------------------ receive state machines
{% for p in ports %}    reg [12:0] rseq_{= p.index =} [0:7];
    reg [1:0] rfport_{= p.index =};
    reg ok_p_{= p.index =}, ok_b_{= p.index =}, e_crc_{= p.index =}, e_seq_{= p.index =}, e_fmt_{= p.index =};
    reg [31:0] e_info_{= p.index =};
    wire hd_me_{= p.index =} = (hd_dst_{= p.index =} == 3'd{= me =});
    wire hd_bad_{= p.index =} = (hd_type_{= p.index =} == 2'd3) || {= src_bad.replace("#", p.index.to_string().as_str()) =} || (hd_src_{= p.index =} == 3'd{= me =})
        || {= layer_bad.replace("#", p.index.to_string().as_str()) =} || rh_last_{= p.index =}
        || ((hd_type_{= p.index =} == 2'd2) != (hd_cnt_{= p.index =} == 7'd0)) || (hd_cnt_{= p.index =} > 7'd{= max_vals =});
    wire [1:0] hd_port_{= p.index =} = port_of(hd_dst_{= p.index =});
    wire fwd_req_{= p.index =} = rh_v_{= p.index =} && ((rs_{= p.index =} == 2'd0 && !hd_me_{= p.index =}) || rs_{= p.index =} == 2'd2);
    wire [1:0] fwd_port_{= p.index =} = (rs_{= p.index =} == 2'd0) ? hd_port_{= p.index =} : rfport_{= p.index =};
    wire fwd_go_{= p.index =};
    wire rv_lastv_{= p.index =} = (rleft_{= p.index =} == 7'd1) || ({{= 7 - vpb_w =}'d0, rvi_{= p.index =}} + 7'd1 == rvpb_{= p.index =});
    always @* begin
        case (rs_{= p.index =})
            2'd0: rx_pop_{= p.index =} = rh_v_{= p.index =} && (hd_me_{= p.index =} || fwd_go_{= p.index =});
            2'd1: rx_pop_{= p.index =} = rh_v_{= p.index =} && (rh_last_{= p.index =} || rnb_{= p.index =} == 7'd0 || (rv_ack_{= p.index =} && rv_lastv_{= p.index =}));
            2'd2: rx_pop_{= p.index =} = fwd_go_{= p.index =};
            default: rx_pop_{= p.index =} = rh_v_{= p.index =};
        endcase
    end
    integer i_{= p.index =};
    always @(posedge clk) begin
        ok_p_{= p.index =} <= 1'b0;
        ok_b_{= p.index =} <= 1'b0;
        e_crc_{= p.index =} <= 1'b0;
        e_seq_{= p.index =} <= 1'b0;
        e_fmt_{= p.index =} <= 1'b0;
        if (rst) begin
            rs_{= p.index =} <= 2'd0;
            rt_{= p.index =} <= 2'd0;
            rsrc_{= p.index =} <= 3'd0;
            rlay_{= p.index =} <= {= layer_w =}'d0;
            rleft_{= p.index =} <= 7'd0;
            rcount_{= p.index =} <= 7'd0;
            rvi_{= p.index =} <= {= vpb_w =}'d0;
            rcrc_{= p.index =} <= CRC_INIT;
            rfport_{= p.index =} <= 2'd0;
            e_info_{= p.index =} <= 32'd0;
            for (i_{= p.index =} = 0; i_{= p.index =} < 8; i_{= p.index =} = i_{= p.index =} + 1) begin
                rseq_{= p.index =}[i_{= p.index =}] <= 13'd0;
                hl_cnt_{= p.index =}[i_{= p.index =}] <= {= unit_w + 1 =}'d0;
                hl_lane_{= p.index =}[i_{= p.index =}] <= {= lane_w =}'d0;
                hl_idx_{= p.index =}[i_{= p.index =}] <= {= vaw =}'d0;
            end
        end else begin
            case (rs_{= p.index =})
                2'd0: if (rh_v_{= p.index =}) begin
                    if (hd_me_{= p.index =}) begin
                        if (hd_bad_{= p.index =}) begin
                            e_fmt_{= p.index =} <= 1'b1;
                            e_info_{= p.index =} <= {4'd3, 1'b0, hd_src_{= p.index =}, 11'd0, hd_seq_{= p.index =}};
                            rs_{= p.index =} <= rh_last_{= p.index =} ? 2'd0 : 2'd3;
                        end else if (hd_seq_{= p.index =} != rseq_{= p.index =}[hd_src_{= p.index =}]) begin
                            e_seq_{= p.index =} <= 1'b1;
                            e_info_{= p.index =} <= {4'd2, 1'b0, hd_src_{= p.index =}, rseq_{= p.index =}[hd_src_{= p.index =}][10:0], hd_seq_{= p.index =}};
                            rs_{= p.index =} <= 2'd3;
                        end else begin
                            rs_{= p.index =} <= 2'd1;
                            rt_{= p.index =} <= hd_type_{= p.index =};
                            rpar_{= p.index =} <= hd_par_{= p.index =};
                            rsrc_{= p.index =} <= hd_src_{= p.index =};
                            rlay_{= p.index =} <= hd_layer_{= p.index =}[{= layer_w =}-1:0];
                            rleft_{= p.index =} <= hd_cnt_{= p.index =};
                            rcount_{= p.index =} <= hd_cnt_{= p.index =};
                            rvi_{= p.index =} <= {= vpb_w =}'d0;
                            rcrc_{= p.index =} <= crc_next(CRC_INIT, rh_d_{= p.index =});
                        end
                    end else if (fwd_go_{= p.index =}) begin
                        rfport_{= p.index =} <= hd_port_{= p.index =};
                        rs_{= p.index =} <= rh_last_{= p.index =} ? 2'd0 : 2'd2;
                    end
                end
                2'd1: if (rh_v_{= p.index =}) begin
                    if (rh_last_{= p.index =}) begin
                        rs_{= p.index =} <= 2'd0;
                        if (rh_d_{= p.index =}[31:0] == rcrc_{= p.index =} && rleft_{= p.index =} == 7'd0) begin
                            rseq_{= p.index =}[rsrc_{= p.index =}] <= rseq_{= p.index =}[rsrc_{= p.index =}] + 13'd1;
                            ok_p_{= p.index =} <= (rt_{= p.index =} == 2'd1);
                            ok_b_{= p.index =} <= (rt_{= p.index =} == 2'd2);
                        end else begin
                            e_crc_{= p.index =} <= 1'b1;
                            e_info_{= p.index =} <= {4'd1, 1'b0, rsrc_{= p.index =}, 11'd0, rseq_{= p.index =}[rsrc_{= p.index =}]};
                        end
                    end else if (rnb_{= p.index =} == 7'd0) begin
                        e_fmt_{= p.index =} <= 1'b1;
                        e_info_{= p.index =} <= {4'd3, 1'b0, rsrc_{= p.index =}, 11'd0, rseq_{= p.index =}[rsrc_{= p.index =}]};
                        rs_{= p.index =} <= 2'd3;
                    end else if (rv_ack_{= p.index =}) begin
                        rleft_{= p.index =} <= rleft_{= p.index =} - 7'd1;
                        if (rv_lastv_{= p.index =}) begin
                            rvi_{= p.index =} <= {= vpb_w =}'d0;
                            rcrc_{= p.index =} <= crc_next(rcrc_{= p.index =}, rh_d_{= p.index =});
                        end else begin
                            rvi_{= p.index =} <= rvi_{= p.index =} + {= vpb_w =}'d1;
                        end
                    end
                end
                2'd2: if (fwd_go_{= p.index =} && rh_last_{= p.index =}) rs_{= p.index =} <= 2'd0;
                default: if (rh_v_{= p.index =} && rh_last_{= p.index =}) rs_{= p.index =} <= 2'd0;
            endcase
            // h values: advance the source's lane/index counters.
            if (vgrant_{= p.index =}) begin
                if (hw_idx_{= p.index =} == {= vaw =}'d{= bh - 1 =}) begin
                    hl_idx_{= p.index =}[rsrc_{= p.index =}] <= {= vaw =}'d0;
                    hl_lane_{= p.index =}[rsrc_{= p.index =}] <= hw_lane_{= p.index =} + {= lane_w =}'d1;
                end else begin
                    hl_idx_{= p.index =}[rsrc_{= p.index =}] <= hw_idx_{= p.index =} + {= vaw =}'d1;
                    hl_lane_{= p.index =}[rsrc_{= p.index =}] <= hw_lane_{= p.index =};
                end
                hl_cnt_{= p.index =}[rsrc_{= p.index =}] <= (hl_cnt_{= p.index =}[rsrc_{= p.index =}] + {= unit_w + 1 =}'d1 == hw_n_{= p.index =}) ? {= unit_w + 1 =}'d0 : hl_cnt_{= p.index =}[rsrc_{= p.index =}] + {= unit_w + 1 =}'d1;
            end
        end
    end
{% endfor %}
    // Partial counts and barrier count. Like the partial-sum write counters, not cleared by start:
    // peers may already be sending to a device that has not been started yet. Every run leaves
    // them at zero; a reset clears them (reset the devices of a system together).
    reg bar_take;
    always @(posedge clk) begin
        if (rst) begin
{% for s in slots %}{% for c in layer_consts %}            pc_{= s.index =}[{= c.index =}] <= {= cnt_w =}'d0;
{% endfor %}{% endfor %}            bar_cnt <= {= bar_w =}'d0;
        end else begin
{% for s in slots %}{% if s.local %}            if (pw_en_{= s.index =}) pc_{= s.index =}[l] <= pc_{= s.index =}[l] + {= cnt_w =}'d1;
{% else %}            if (ok_p_{= s.port =} && rsrc_{= s.port =} == 3'd{= s.dev =}) pc_{= s.index =}[rlay_{= s.port =}] <= pc_{= s.index =}[rlay_{= s.port =}] + {{= cnt_w - 7 =}'d0, rcount_{= s.port =}};
{% endif %}            if (fin_clear) pc_{= s.index =}[l] <= {= cnt_w =}'d0;
{% endfor %}            bar_cnt <= bar_cnt{% for p in ports %} + {{= bar_w - 1 =}'d0, ok_b_{= p.index =}}{% endfor %} - (bar_take ? {= bar_w =}'d{= ndev - 1 =} : {= bar_w =}'d0);
        end
    end
    wire bar_ok = (bar_cnt >= {= bar_w =}'d{= ndev - 1 =});

    // Link errors: sticky status, counters and the first error's details.
    always @(posedge clk) begin
        if (rst) begin
            link_status <= 4'd0;
            crc_errs <= 32'd0;
            seq_errs <= 32'd0;
            fmt_errs <= 32'd0;
            err_info <= 32'd0;
        end else begin
{% for p in ports %}            if (e_crc_{= p.index =}) crc_errs <= crc_errs + 32'd1;
            if (e_seq_{= p.index =}) seq_errs <= seq_errs + 32'd1;
            if (e_fmt_{= p.index =}) fmt_errs <= fmt_errs + 32'd1;
            if ((e_crc_{= p.index =} || e_seq_{= p.index =} || e_fmt_{= p.index =}) && !link_err) err_info <= e_info_{= p.index =};
            link_status <= link_status | {1'b0, e_fmt_{= p.index =}, e_seq_{= p.index =}, e_crc_{= p.index =}};
{% endfor %}            if (link_timeout != 32'd0 && wd >= link_timeout) begin
                if (!link_err) err_info <= {4'd4, 28'd0};
                link_status <= link_status | 4'b1000;
            end
        end
    end

    // ------------------------------------------------------------------ framer
    // Packs a run of queued values into frames of up to {= maxb =} payload beats and sends one copy
    // per destination: header, payload, CRC.
    localparam [2:0] F_IDLE = 3'd0, F_FILL = 3'd1, F_HDR = 3'd2, F_PAY = 3'd3, F_CRC = 3'd4;
    reg [2:0] fs;
    reg [1:0] f_type;
    reg [{= layer_w =}-1:0] f_layer;
    reg [7:0] f_mask;
    reg [2:0] f_dst;
    reg [6:0] f_nv;
    reg [{= fb_w =}-1:0] f_nb, f_bi;
    reg [{= vpb_w =}-1:0] f_vi;
    reg [{= lw =}-1:0] f_beat;
    reg [{= lw =}-1:0] fbuf [0:{= maxb =}-1];
    reg [31:0] f_crc;
    reg [12:0] tseq [0:7];
    reg f_par;
    integer i_f;
    wire tq_last = tq_head[{= tq_w - 1 =}];
    wire tq_par = tq_head[{= accw + 3 =}];
    wire [1:0] tq_type = tq_head[{= tq_w - 2 =}:{= tq_w - 3 =}];
    wire [{= layer_w =}-1:0] tq_layer = tq_head[{= tq_w - 4 =}:{= tq_w - 3 - layer_w =}];
    wire [2:0] tq_dst = tq_head[{= accw + 2 =}:{= accw =}];
    wire [{= accw =}-1:0] tq_val = tq_head[{= accw =}-1:0];
    function [7:0] hmask_of(input [{= layer_w =}-1:0] ly);
        begin
            case (ly)
{% for c in layer_consts %}                {= layer_w =}'d{= c.index =}: hmask_of = 8'b{= c.hmask =};
{% endfor %}                default: hmask_of = 8'd0;
            endcase
        end
    endfunction
    function [2:0] lowest(input [7:0] m);
        integer n;
        begin
            lowest = 3'd0;
            for (n = 7; n >= 0; n = n - 1)
                if (m[n]) lowest = n[2:0];
        end
    endfunction
    function [1:0] port_of(input [2:0] d);
        begin
            case (d)
{% for r in routes %}                3'd{= r.dev =}: port_of = 2'd{= r.port =};
{% endfor %}                default: port_of = 2'd0;
            endcase
        end
    endfunction
    wire [7:0] f_sh = (f_type == 2'd0) ? (8'd{= dw =} * {{= 8 - vpb_w =}'d0, f_vi}) : (8'd{= accw =} * {{= 8 - vpb_w =}'d0, f_vi});
    wire [{= lw =}-1:0] f_ins = ((f_type == 2'd0) ? {{= lw - dw =}'d0, tq_val[{= dw =}-1:0]} : {= tq_val_lw =}) << f_sh;
    wire [{= lw =}-1:0] f_beat_n = f_beat | f_ins;
    wire [6:0] f_vpb = (f_type == 2'd0) ? 7'd{= vpb_h =} : 7'd{= vpb_p =};
    wire [6:0] f_maxv = (f_type == 2'd0) ? 7'd{= maxv_h =} : 7'd{= maxv_p =};
    wire f_take = (fs == F_FILL) && !tq_empty;
    wire f_beat_done = f_take && (({{= 7 - vpb_w =}'d0, f_vi} + 7'd1 == f_vpb) || tq_last || (f_nv + 7'd1 == f_maxv));
    wire f_frame_done = f_take && (tq_last || (f_nv + 7'd1 == f_maxv));
    assign tq_pop = f_take || ((fs == F_IDLE) && !tq_empty && tq_type == 2'd2);
    wire [1:0] fr_port = port_of(f_dst);
    wire fr_sending = (fs == F_HDR) || (fs == F_PAY) || (fs == F_CRC);
    wire [{= lw =}-1:0] fr_hdr = {{= lw - 32 =}'d0, f_type, 3'd{= me =}, f_dst, {= layer_ext =}, f_nv, f_par, tseq[f_dst]};
    reg [{= lw =}-1:0] fr_data;
    always @* begin
        case (fs)
            F_HDR: fr_data = fr_hdr;
            F_PAY: fr_data = fbuf[f_bi[{= fb_ix_w =}-1:0]];
            default: fr_data = {{= lw - 32 =}'d0, f_crc};
        endcase
    end
    wire fr_last = (fs == F_CRC);
    wire fr_go;
    always @(posedge clk) begin
        if (rst) begin
            fs <= F_IDLE;
            f_type <= 2'd0;
            f_layer <= {= layer_w =}'d0;
            f_mask <= 8'd0;
            f_dst <= 3'd0;
            f_nv <= 7'd0;
            f_nb <= {= fb_w =}'d0;
            f_bi <= {= fb_w =}'d0;
            f_vi <= {= vpb_w =}'d0;
            f_beat <= {= lw =}'d0;
            f_crc <= CRC_INIT;
            for (i_f = 0; i_f < 8; i_f = i_f + 1) tseq[i_f] <= 13'd0;
            f_par <= 1'b0;
        end else begin
            case (fs)
                F_IDLE: if (!tq_empty) begin
                    f_type <= tq_type;
                    f_layer <= tq_layer;
                    f_par <= tq_par;
                    f_nv <= 7'd0;
                    f_nb <= {= fb_w =}'d0;
                    f_vi <= {= vpb_w =}'d0;
                    f_beat <= {= lw =}'d0;
                    case (tq_type)
                        2'd0: begin f_mask <= hmask_of(tq_layer); f_dst <= lowest(hmask_of(tq_layer)); fs <= F_FILL; end
                        2'd1: begin f_mask <= 8'd1 << tq_dst; f_dst <= tq_dst; fs <= F_FILL; end
                        default: begin f_mask <= 8'b{= others_mask =}; f_dst <= lowest(8'b{= others_mask =}); fs <= F_HDR; end
                    endcase
                end
                F_FILL: if (f_take) begin
                    f_nv <= f_nv + 7'd1;
                    if (f_beat_done) begin
                        fbuf[f_nb[{= fb_ix_w =}-1:0]] <= f_beat_n;
                        f_nb <= f_nb + {= fb_w =}'d1;
                        f_vi <= {= vpb_w =}'d0;
                        f_beat <= {= lw =}'d0;
                    end else begin
                        f_vi <= f_vi + {= vpb_w =}'d1;
                        f_beat <= f_beat_n;
                    end
                    if (f_frame_done) fs <= F_HDR;
                end
                F_HDR: if (fr_go) begin
                    f_crc <= crc_next(CRC_INIT, fr_hdr);
                    f_bi <= {= fb_w =}'d0;
                    fs <= (f_nb == {= fb_w =}'d0) ? F_CRC : F_PAY;
                end
                F_PAY: if (fr_go) begin
                    f_crc <= crc_next(f_crc, fr_data);
                    f_bi <= f_bi + {= fb_w =}'d1;
                    if (f_bi + {= fb_w =}'d1 == f_nb) fs <= F_CRC;
                end
                F_CRC: if (fr_go) begin
                    tseq[f_dst] <= tseq[f_dst] + 13'd1;
                    f_mask <= f_mask & ~(8'd1 << f_dst);
                    f_dst <= lowest(f_mask & ~(8'd1 << f_dst));
                    if ((f_mask & ~(8'd1 << f_dst)) == 8'd0) begin
                        // A run longer than one frame continues in the next frame.
                        fs <= F_IDLE;
                    end else begin
                        fs <= F_HDR;
                    end
                end
                default: fs <= F_IDLE;
            endcase
        end
    end

    // ------------------------------------------------------------------ transmit ports
    // Each port is owned by the framer or one forwarding receive port from header to tlast.
{% for q in ports %}    reg [1:0] own_{= q.index =};  // 0 free, 1 framer, 2 + p receive port p
    wire tx_v_{= q.index =}, tx_l_{= q.index =};
    wire [{= lw =}-1:0] tx_d_{= q.index =};
    assign tx_v_{= q.index =} = (own_{= q.index =} == 2'd1) ? fr_sending{% for p in ports %} : (own_{= q.index =} == 2'd{= p.index + 2 =}) ? fwd_req_{= p.index =}{% endfor %} : 1'b0;
    assign tx_d_{= q.index =} = (own_{= q.index =} == 2'd1) ? fr_data{% for p in ports %} : (own_{= q.index =} == 2'd{= p.index + 2 =}) ? rh_d_{= p.index =}{% endfor %} : {= lw =}'d0;
    assign tx_l_{= q.index =} = (own_{= q.index =} == 2'd1) ? fr_last{% for p in ports %} : (own_{= q.index =} == 2'd{= p.index + 2 =}) ? rh_last_{= p.index =}{% endfor %} : 1'b0;
    assign l{= q.index =}_tx_tdata = tx_d_{= q.index =};
    assign l{= q.index =}_tx_tvalid = tx_v_{= q.index =};
    assign l{= q.index =}_tx_tlast = tx_l_{= q.index =};
    wire tx_hs_{= q.index =} = tx_v_{= q.index =} && l{= q.index =}_tx_tready;
    always @(posedge clk) begin
        if (rst) begin
            own_{= q.index =} <= 2'd0;
        end else if (own_{= q.index =} == 2'd0) begin
            if (1'b0) own_{= q.index =} <= 2'd0;
{% for p in ports %}            else if (fwd_req_{= p.index =} && fwd_port_{= p.index =} == 2'd{= q.index =}) own_{= q.index =} <= 2'd{= p.index + 2 =};
{% endfor %}            else if (fr_sending && fr_port == 2'd{= q.index =}) own_{= q.index =} <= 2'd1;
        end else if (tx_hs_{= q.index =} && tx_l_{= q.index =}) begin
            own_{= q.index =} <= 2'd0;
        end
    end
{% endfor %}    assign fr_go = 1'b0{% for q in ports %} || (own_{= q.index =} == 2'd1 && l{= q.index =}_tx_tready){% endfor %};
{% for p in ports %}    assign fwd_go_{= p.index =} = 1'b0{% for q in ports %} || (own_{= q.index =} == 2'd{= p.index + 2 =} && l{= q.index =}_tx_tready && fwd_req_{= p.index =}){% endfor %};
{% endfor %}
    // ------------------------------------------------------------------ finisher: sum and round
    reg [{= unit_w =}-1:0] fs0, fs1;
    wire unused_fs = &{1'b0, fs1, f_addr, fin_clear};
{% for s in slots %}{% for g in gates %}    reg [{= accw =}-1:0] pq_{= s.index =}_{= g =};
{% endfor %}{% endfor %}    always @(posedge clk) begin
        if (rst) begin
            fv0 <= 1'b0;
            fv1 <= 1'b0;
        end else if (fadv) begin
            fv0 <= (state == S_FIN);
            fv1 <= fv0;
        end
        if (fadv) begin
            f_addr <= l_pbase + {= fslot_ext =};
            fs0 <= f_slot;
            fs1 <= fs0;
{% for s in slots %}{% for g in gates %}            pq_{= s.index =}_{= g =} <= pm_{= s.index =}_{= g =}[f_addr];
{% endfor %}{% endfor %}        end
    end
{% for g in gates %}    wire [{= psum_w =}-1:0] psum_{= g =} = {= psum_exprs[loop.index0] =};
    wire [{= pre_w =}-1:0] pre_{= g =};
    wire pclip_{= g =};
    partita_requant #(
        .IW({= psum_w =}), .SHR({= pre_shr =}), .SHL({= pre_shl =}), .OW({= pre_w =}),
        .ROUND_NE({= round_ne =}), .SAT({= sat =})
    ) u_pre_{= g =} (.x(psum_{= g =}), .y(pre_{= g =}), .clip(pclip_{= g =}));
{% endfor %}    wire feed_v = fv1;
    wire [{= 4 * pre_w =}-1:0] feed = {pre_0, pre_1, pre_2, pre_3};
    wire [2:0] pre_clips = {2'd0, fv1 && pclip_0} + {2'd0, fv1 && pclip_1} + {2'd0, fv1 && pclip_2} + {2'd0, fv1 && pclip_3};

{% include "partita_ew.inc" %}
    always @(posedge clk) begin
        if (rst || state == S_FWAIT) begin
            lh_lane <= l_flane;
            lh_idx <= l_fidx;
        end else if (h_out) begin
            if (lh_idx == {= vaw =}'d{= bh - 1 =}) begin
                lh_idx <= {= vaw =}'d0;
                lh_lane <= lh_lane + {= lane_w =}'d1;
            end else begin
                lh_idx <= lh_idx + {= vaw =}'d1;
            end
        end
    end

    // Transmit queue producers: remote partial sums, h values, barriers.
    always @* begin
        tq_push = 1'b0;
        tq_in = {TQW{1'b0}};
        if (part_v && !l_plocal) begin
            tq_push = 1'b1;
            tq_in = {parts_out + {= row_w + 1 =}'d1 == l_rows, 2'd1, l, 1'b0, l_pdst, row_acc};
        end else if (h_out && l_hmask != 8'd0) begin
            tq_push = 1'b1;
            tq_in = {units_done + {= unit_w + 1 =}'d1 == l_nfin, 2'd0, l, wr_par, 3'd0, {= h6_acc =}};
        end else if (state == S_BAR && !tq_full) begin
            tq_push = 1'b1;
            tq_in = {1'b1, 2'd2, {= layer_w =}'d0, 1'b0, 3'd0, {= accw =}'d0};
        end
    end

    // Output FIFO: {h, last of this device's units in the timestep}.
    wire of_push = h_out && l_out;
    wire of_last = (units_done + {= unit_w + 1 =}'d1 == l_nfin);
{% include "partita_ofifo.inc" %}

    // ------------------------------------------------------------------ controller
    wire waiting = (state == S_TSTART && !(gt == 32'd0 || bar_ok)) || (state == S_FWAIT && !fin_ready)
        || (state == S_FLUSH && !bar_ok);
    always @(posedge clk) begin
        fin_clear <= 1'b0;
        bar_take <= 1'b0;
        if (rst) begin
            state <= S_IDLE;
            busy <= 1'b0;
            done <= 1'b0;
            gt <= 32'd0; tl <= 32'd0; b <= 32'd0; wd <= 32'd0;
            l <= {= layer_w =}'d0;
            row <= {= row_w =}'d0;
            slice <= {= slice_w =}'d0;
            waddr <= {= waw =}'d0;
            baddr <= {= baw =}'d0;
            parts_out <= {= row_w + 1 =}'d0;
            f_slot <= {= unit_w =}'d0;
            units_done <= {= unit_w + 1 =}'d0;
            cycles <= 64'd0;
            mac_cycles <= 32'd0;
            wait_cycles <= 32'd0;
        end else begin
            if (busy) cycles <= cycles + 64'd1;
            if (state == S_MAC && adv_m) mac_cycles <= mac_cycles + 32'd1;
            if (busy && waiting) wait_cycles <= wait_cycles + 32'd1;
            wd <= waiting ? wd + 32'd1 : 32'd0;
            if (part_v) parts_out <= parts_out + {= row_w + 1 =}'d1;
            if (h_out) units_done <= units_done + {= unit_w + 1 =}'d1;
            case (state)
                S_IDLE: if (start_pulse) begin
                    busy <= (seq_len != 32'd0) && (seq_count != 32'd0);
                    done <= (seq_len == 32'd0) || (seq_count == 32'd0);
                    state <= ((seq_len != 32'd0) && (seq_count != 32'd0)) ? S_TSTART : S_IDLE;
                    gt <= 32'd0; tl <= 32'd0; b <= 32'd0;
                    cycles <= 64'd0;
                    mac_cycles <= 32'd0;
                    wait_cycles <= 32'd0;
                end
                S_TSTART: if (!link_err && (gt == 32'd0 || bar_ok)) begin
                    bar_take <= (gt != 32'd0);
                    l <= {= layer_w =}'d0;
                    state <= S_LAYER;
                end
                S_LAYER: begin
                    waddr <= l_wbase;
                    baddr <= l_bbase;
                    row <= {= row_w =}'d0;
                    slice <= {= slice_w =}'d0;
                    parts_out <= {= row_w + 1 =}'d0;
                    units_done <= {= unit_w + 1 =}'d0;
                    f_slot <= {= unit_w =}'d0;
                    if (!l_active || (!l_mac && !l_fin)) state <= S_NEXT;
                    else if (l_mac) state <= (l == {= layer_w =}'d0) ? S_XWAIT : S_MAC;
                    else state <= S_FWAIT;
                end
                S_XWAIT: if (x_ready) state <= S_MAC;
                S_MAC: if (adv_m) begin
                    waddr <= waddr + {= waw =}'d1;
                    if (a_last) begin
                        slice <= {= slice_w =}'d0;
                        baddr <= baddr + {= baw =}'d1;
                        if ({1'b0, row} + {= row_w + 1 =}'d1 == l_rows) state <= S_MDRAIN;
                        else row <= row + {= row_w =}'d1;
                    end else begin
                        slice <= slice + {= slice_w =}'d1;
                    end
                end
                S_MDRAIN: if (parts_out == l_rows) state <= l_fin ? S_FWAIT : S_NEXT;
                S_FWAIT: if (fin_ready && !link_err) begin
                    fin_clear <= 1'b1;
                    f_slot <= {= unit_w =}'d0;
                    state <= S_FIN;
                end
                S_FIN: if (fadv) begin
                    f_slot <= f_slot + {= unit_w =}'d1;
                    if ({1'b0, f_slot} + {= unit_w + 1 =}'d1 == l_nfin) state <= S_FDRAIN;
                end
                S_FDRAIN: if (units_done == l_nfin) state <= S_NEXT;
                S_NEXT: if (l == {= layer_w =}'d{= layers_n - 1 =}) state <= S_BAR;
                    else begin
                        l <= l + {= layer_w =}'d1;
                        state <= S_LAYER;
                    end
                S_BAR: if (!tq_full) begin
                    gt <= gt + 32'd1;
                    if (tl + 32'd1 == ticks_per_seq) begin
                        tl <= 32'd0;
                        if (b + 32'd1 == seq_count) state <= S_FLUSH;
                        else begin
                            b <= b + 32'd1;
                            state <= S_TSTART;
                        end
                    end else begin
                        tl <= tl + 32'd1;
                        state <= S_TSTART;
                    end
                end
                S_FLUSH: if (bar_ok && tq_empty && fs == F_IDLE && of_count == {= ofifo_aw + 1 =}'d0) begin
                    bar_take <= 1'b1;
                    busy <= 1'b0;
                    done <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // Beat counters.
    always @(posedge clk) begin
        if (rst || start_pulse) begin
            tx_beats <= 32'd0;
            fwd_beats <= 32'd0;
            rx_beats <= 32'd0;
        end else begin
            tx_beats <= tx_beats{% for q in ports %} + {31'd0, tx_hs_{= q.index =} && own_{= q.index =} == 2'd1}{% endfor %};
            fwd_beats <= fwd_beats{% for q in ports %} + {31'd0, tx_hs_{= q.index =} && own_{= q.index =} != 2'd1}{% endfor %};
            rx_beats <= rx_beats{% for p in ports %} + {31'd0, rx_in_{= p.index =}}{% endfor %};
        end
    end

    // Saturation events: pre-activations, cell states and h values.
    always @(posedge clk) begin
        if (rst) sat_count <= 32'd0;
        else if (start_pulse && state == S_IDLE) sat_count <= 32'd0;
        else if (fadv) sat_count <= sat_count + {29'd0, pre_clips} + {31'd0, c4_clip} + {31'd0, h6_clip};
    end

{% include "partita_axil.inc" %}
endmodule
