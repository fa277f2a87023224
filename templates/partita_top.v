{= header =}
// partita LSTM device: {= layers_n =} layer(s), input {= input_size =}, hidden {= hidden =},
// {= engines =} row engine(s) x {= k =} lanes. AXI4-Lite control (register map in regmap.json
// and partita_regs.h), AXI4-Stream x_t in and h_t out, {= s.p =} {= dw =}-bit value(s) per {= s.sb =}-bit beat.
//
// Per timestep and layer the controller issues every CSB slice of every row once; engines run
// in lockstep (bank balance gives every row the same slice count). Engine m computes hidden
// units m, m+M, ... with their gate rows in order i, f, g, o. {= ew_lanes =} element-wise lane(s) turn
// {= ew_lanes =} unit(s)' four pre-activations per cycle into c' = f*c + i*g and h' = o*tanh(c'), write h'
// into the other half of the double-buffered h region of every engine, and (last layer) into
// the output FIFO. The datapath never stalls: a timestep starts only when the output FIFO has
// room for all of its h values, so no clock enable fans out. Every pipeline stage is one multiply,
// one add, one rounding or one memory read.
module {= p.top =} #(
    // $readmemh files, one per engine memory; override with full paths if needed.
{% for e in engine_list %}{% for c in wsuffix %}    parameter WEIGHTS_E{= e =}{= c.0 =} = "weights_e{= e =}{= c.1 =}.hex",
{% endfor %}    parameter BIAS_E{= e =} = "bias_e{= e =}.hex"{% if !loop.last %},{% endif %}
{% endfor %}) (
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
    // AXI4-Stream input: x_t, {= input_size =} values per timestep, {= s.p =} per {= s.sb =}-bit beat
    // (partita_hdl::stream: a timestep starts a beat; its last beat has tlast, tkeep low for
    // empty slots).
    input  wire [{= s.sb =}-1:0] s_axis_tdata,
    input  wire [{= s.kw =}-1:0] s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    // AXI4-Stream output: h_t of the last layer, {= hidden =} values per timestep, packed the same way.
    output wire [{= s.sb =}-1:0] m_axis_tdata,
    output wire [{= s.kw =}-1:0] m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);
    localparam [2:0] S_IDLE = 3'd0, S_LOAD = 3'd1, S_RUN = 3'd2, S_WAIT = 3'd3, S_FLUSH = 3'd4;

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
    wire [31:0] seq_len, seq_count, wsel, waddr_reg;
    wire [{= wstage_w =}-1:0] wstage;
    reg        busy, done;
    reg [63:0] cycles;
    reg [31:0] sat_count;

    // ------------------------------------------------------------------ controller
    reg [2:0]  state;
    reg [31:0] t, b;
    // SEQ_LEN - 1 and SEQ_COUNT - 1 as registers (set while idle, long before a run reads
    // them), so the last-timestep and last-sequence tests are equality compares, no add; and
    // whether a start has work (both non-zero), so no 32-bit OR sits in front of the start.
    reg [31:0] seq_len_m1, seq_count_m1;
    reg seq_run;
    always @(posedge clk) begin
        seq_len_m1 <= seq_len - 32'd1;
        seq_count_m1 <= seq_count - 32'd1;
        seq_run <= (seq_len != 32'd0) && (seq_count != 32'd0);
    end
    reg [{= layer_w =}-1:0] l;
    reg [{= layers_n =}-1:0] cur;
    reg [{= row_w =}-1:0] row;
    reg [{= slice_w =}-1:0] slice;
    reg [{= waw =}-1:0] waddr;
    reg [{= baw =}-1:0] baddr;
    // x loader: runs up to one timestep ahead of the controller into the other x buffer.
    reg [{= lane_w =}-1:0] ld_lane;
    reg [{= vaw =}-1:0] ld_idx, ld_addr;
    reg [{= in_w =}-1:0] ld_count;
    // Timesteps left in the sequence and sequences left after the one loading, counted down,
    // with their last-one flags as registers (no 32-bit compare in front of ld_on).
    reg [31:0] ld_tleft, ld_bleft;
    reg ld_tlast, ld_blast;
    // A vector was loaded last cycle: the timestep and sequence counts follow now.
    reg x_loaded_q;
    reg ld_on, ld_par, x_par;
    // Loaded x vectors whose timestep has not finished: 0, 1 or 2 (the loader waits at 2).
    reg [1:0] ahead;
    // ld_on && ahead != 2, kept as a register set from their next values, so the stream's
    // ready and the loader's enables start at a flip-flop.
    reg ld_ok;
    reg [{= unit_w =}-1:0] units_done;
    // units_done == {= hgroups =} (every group of the layer-step written), kept as a register
    // alongside units_done; and whether t and b are the last timestep and sequence, compared
    // into registers a cycle after they change (a step lasts far longer). The step's end then
    // decides from flip-flops, not from compares across the die.
    reg ud_full, t_last, b_last;
    always @(posedge clk) begin
        t_last <= (t == seq_len_m1);
        b_last <= (b == seq_count_m1);
    end
    wire first_step = (t == 32'd0);
    wire last_layer = (l == {= layer_w =}'d{= last_layer =});

    // Per-layer constants.
    reg [{= slice_w =}-1:0] l_slices, l_nih;
    reg [{= row_w =}-1:0] l_row_last;
    reg [{= vaw =}-1:0] l_xbase, l_hbase_rd, l_hbase_wr;
    reg [{= caw =}-1:0] l_cbase;
    always @* begin
        case (l)
{% for ly in layer_consts %}            {= layer_w =}'d{= ly.index =}: begin
                l_slices = {= slice_w =}'d{= ly.slices =};
                l_nih = {= slice_w =}'d{= ly.nih =};
                l_row_last = {= row_w =}'d{= ly.rows_last =};
                l_xbase = {= ly.xbase_expr =};
                l_hbase_rd = cur[{= ly.index =}] ? {= vaw =}'d{= ly.hbase1 =} : {= vaw =}'d{= ly.hbase0 =};
                l_hbase_wr = cur[{= ly.index =}] ? {= vaw =}'d{= ly.hbase0 =} : {= vaw =}'d{= ly.hbase1 =};
                l_cbase = {= caw =}'d{= ly.cbase =};
            end
{% endfor %}            default: begin
                l_slices = {= slice_w =}'d1;
                l_nih = {= slice_w =}'d0;
                l_row_last = {= row_w =}'d0;
                l_xbase = {= vaw =}'d0;
                l_hbase_rd = {= vaw =}'d0;
                l_hbase_wr = {= vaw =}'d0;
                l_cbase = {= caw =}'d0;
            end
        endcase
    end

    // Output FIFO room. The datapath never stalls: a timestep starts only when the FIFO has room
    // for all {= hgroups =} of its h groups (`room`, a register: the count a cycle earlier, which
    // only falls while no step runs), so no enable fans out over the engines.
    wire [{= ofifo_aw =}:0] of_count;
    wire oh_valid;
    reg room;
    always @(posedge clk) begin
        if (rst) room <= 1'b0;
        else room <= (of_count <= {= ofifo_cnt_w =}'d{= room_limit =});
    end

    // Stage A control to the engines.
    wire a_valid = (state == S_RUN);
    wire a_xsel = (slice < l_nih);
    wire a_first = (slice == {= slice_w =}'d0);
    wire a_last = (slice == l_slices - {= slice_w =}'d1);

    // Vector memory write port: the input loader or the element-wise unit.
    // The stream cores (partita_unpack on x, partita_pack on h) have register slices at the
    // pins: the stream pins drive and are driven by flip-flops only.
    wire [{= s.vb =}-1:0] x_tdata;
    wire x_tvalid, x_tlast;
{% if ew_lanes > 1 %}    // Runs of the head beat: up to {= ew_lanes =} values per cycle, within one vector-memory word and one bank.
{% else %}    // One value per cycle here: the unpacker's run outputs are not used.
{% endif %}    wire [{= s.sb =}-1:0] x_run_beat;
    wire [{= s.jw =}:0] x_run_avail;
    wire [31:0] stream_errs;
    // h writes: a group of {= ew_lanes =} value(s) (se_mask: the units that exist) per write.
    reg se_we;
    reg [{= lane_w =}-1:0] se_lane;
    reg [{= vaw =}-1:0] se_idx;
    reg [{= hwide =}-1:0] se_h;
    reg [{= ew_lanes =}-1:0] se_mask;
    // The loader takes a beat while it has vectors to load and at most one loaded vector's
    // timestep is unfinished (so it never overwrites the buffer being read), and gives way to
    // h writes on the shared vector-memory write port.
{% if ew_lanes > 1 %}    wire x_go = ld_ok && !se_we;
    wire x_tready = 1'b0;
    wire [31:0] xr_avail = {= xr_avail =};
    wire [31:0] xr_word = 32'd{= ew_lanes =} - {= xr_off =};
    wire [31:0] xr_bank = 32'd{= bx0 =} - {= xr_idx =};
    wire [31:0] xr_a = (xr_word < xr_avail) ? xr_word : xr_avail;
    wire [31:0] xr_n = !x_go ? 32'd0 : (xr_bank < xr_a) ? xr_bank : xr_a;
    wire [31:0] xr_idx_next = {= xr_idx =} + xr_n;
    wire [31:0] xr_cnt_next = {= xr_cnt =} + xr_n;
    wire [{= s.jw =}:0] x_n = xr_n[{= s.jw =}:0];
    wire unused_xr = &{1'b0, xr_n[31:{= jw1 =}], x_tdata, x_tvalid};
    // The run's values placed in their word slots, and the slots written.
    wire [{= ew_lanes =}:0] x_ones = ({= ew_lanes1 =}'d1 << x_n) - {= ew_lanes1 =}'d1;
    wire [{= ew_lanes =}-1:0] x_we = x_ones[{= ew_lanes =}-1:0] << ld_addr[{= ewq =}-1:0];
    wire unused_ones = &{1'b0, x_ones[{= ew_lanes =}], x_run_beat};
    reg [{= hwide =}-1:0] x_word;
    always @* begin
        case (ld_addr[{= ewq =}-1:0])
{% for c in x_word_cases %}            {= ewq =}'d{= c.0 =}: x_word = {= c.1 =};
{% endfor %}            default: x_word = {= hwide =}'d0;
        endcase
    end
{% else %}    // A register slice (partita_skid) between the unpacker, at the stream pins, and the loader:
    // the loader's ready ends at its flip-flops, and the unpacker's ready is a flip-flop, so
    // no handshake path crosses the die in one cycle.
    wire x_tready = ld_ok && !se_we;
    wire [{= s.vb =}-1:0] xu_data;
    wire xu_valid, xu_ready, xu_last;
    partita_skid #(.W({= s.vb =})) u_x_slice (
        .clk(clk), .rst(rst), .s_tdata(xu_data), .s_tvalid(xu_valid), .s_tready(xu_ready),
        .s_tlast(xu_last), .m_tdata(x_tdata), .m_tvalid(x_tvalid), .m_tready(x_tready),
        .m_tlast(x_tlast)
    );
{% endif %}    partita_unpack #(
        .SB({= s.sb =}), .VB({= s.vb =}), .P({= s.p =}), .VEC({= s.in_vec =}), .CW({= s.in_cw =}), .JW({= s.jw =}), .BW({= s.in_bw =})
    ) u_x_in (
        .clk(clk), .rst(rst), .s_tdata(s_axis_tdata), .s_tkeep(s_axis_tkeep),
        .s_tvalid(s_axis_tvalid), .s_tready(s_axis_tready), .s_tlast(s_axis_tlast),
{% if ew_lanes > 1 %}        .m_data(x_tdata), .m_valid(x_tvalid), .m_ready(x_tready), .m_last(x_tlast),
{% else %}        .m_data(xu_data), .m_valid(xu_valid), .m_ready(xu_ready), .m_last(xu_last),
{% endif %}        .m_beat(x_run_beat), .m_avail(x_run_avail), .m_n({= x_n =}),
        .clear(state == S_IDLE && start_pulse), .errs(stream_errs)
    );
    wire x_step_done = (state == S_WAIT) && ud_full && last_layer;
{% if ew_lanes > 1 %}    wire load_we = (xr_n != 32'd0);
    wire x_loaded = load_we && (xr_cnt_next == 32'd{= input_size =});
{% else %}    wire unused_x_run = &{1'b0, x_run_beat, x_run_avail};
    wire load_we = x_tvalid && x_tready;
    wire x_loaded = load_we && (ld_count == {= in_w =}'d{= in_last =});
{% endif %}
    wire ld_end = x_loaded && ld_tlast && ld_blast;
    wire ld_start = (state == S_IDLE) && start_pulse && seq_run;
    wire [1:0] ahead_n = ahead + {1'b0, x_loaded} - {1'b0, x_step_done};
    always @(posedge clk) begin
        if (rst || state == S_IDLE) begin
            // Start: the first vector goes to buffer 0.
            ld_on <= ld_start;
            ld_ok <= ld_start;
            ld_par <= 1'b0;
            ld_tleft <= seq_len_m1;
            ld_tlast <= (seq_len_m1 == 32'd0);
            ld_bleft <= seq_count_m1;
            ld_blast <= (seq_count_m1 == 32'd0);
            ld_lane <= {= lane_w =}'d0;
            ld_idx <= {= vaw =}'d0;
            ld_addr <= {= vaw =}'d{= xbase0 =};
            ld_count <= {= in_w =}'d0;
            x_loaded_q <= 1'b0;
            ahead <= 2'd0;
        end else begin
            ahead <= ahead_n;
            x_loaded_q <= x_loaded;
            ld_ok <= ld_on && !ld_end && (ahead_n != 2'd2) && !x_loaded;
            if (load_we) begin
{% if ew_lanes > 1 %}                if (xr_idx_next == 32'd{= bx0 =}) begin
{% else %}                if (ld_idx == {= vaw =}'d{= bx0_last =}) begin
{% endif %}                    ld_idx <= {= vaw =}'d0;
                    ld_lane <= ld_lane + {= lane_w =}'d1;
                    ld_addr <= ld_par ? {= vaw =}'d{= xbase1 =} : {= vaw =}'d{= xbase0 =};
                end else begin
{% if ew_lanes > 1 %}                    ld_idx <= ld_idx + xr_n[{= vaw =}-1:0];
                    ld_addr <= ld_addr + xr_n[{= vaw =}-1:0];
{% else %}                    ld_idx <= ld_idx + {= vaw =}'d1;
                    ld_addr <= ld_addr + {= vaw =}'d1;
{% endif %}                end
{% if ew_lanes > 1 %}                ld_count <= ld_count + xr_n[{= in_w =}-1:0];
{% else %}                ld_count <= ld_count + {= in_w =}'d1;
{% endif %}            end
            if (x_loaded) begin
                // A whole vector: the next goes to the other buffer.
                ld_count <= {= in_w =}'d0;
                ld_lane <= {= lane_w =}'d0;
                ld_idx <= {= vaw =}'d0;
                ld_par <= !ld_par;
                ld_addr <= ld_par ? {= vaw =}'d{= xbase0 =} : {= vaw =}'d{= xbase1 =};
                if (ld_end) ld_on <= 1'b0;
            end
            // The vector that ended last cycle counted down a cycle later (the loader takes
            // nothing in that cycle), so the 32-bit counters' enables come from a register.
            if (x_loaded_q) begin
                if (ld_tlast) begin
                    ld_tleft <= seq_len_m1;
                    ld_tlast <= (seq_len_m1 == 32'd0);
                    if (!ld_blast) begin
                        ld_bleft <= ld_bleft - 32'd1;
                        ld_blast <= (ld_bleft == 32'd1);
                    end
                end else begin
                    ld_tleft <= ld_tleft - 32'd1;
                    ld_tlast <= (ld_tleft == 32'd1);
                end
            end
        end
    end
    // The write port is registered: the loader's handshake (its ready comes from `ahead`) and
    // the h address add end at flip-flops, not at every engine's vector-memory write enables.
    // Each engine lane registers the port once more (a copy beside its LUT RAM), so a write
    // lands two cycles after the source's; the engines read a vector seven cycles after the
    // controller's first S_RUN cycle at the earliest (stages A2 to V), which is later.
    reg vw_en;
    reg [{= lane_w =}-1:0] vw_lane;
{% if ew_lanes > 1 %}    // Words of {= ew_lanes =} values: an x value goes to its slot, a group of h values fills a word.
    reg [{= vwa =}-1:0] vw_word;
    reg [{= ew_lanes =}-1:0] vw_we;
    reg [{= hwide =}-1:0] vw_data;
    wire [{= vaw =}-1:0] hw_addr = l_hbase_wr + se_idx;
    wire unused_hw = &{1'b0, hw_addr[{= ewq =}-1:0]};
    always @(posedge clk) begin
        if (rst) vw_en <= 1'b0;
        else vw_en <= load_we || se_we;
        vw_lane <= load_we ? ld_lane : se_lane;
        vw_word <= load_we ? ld_addr[{= vaw =}-1:{= ewq =}] : hw_addr[{= vaw =}-1:{= ewq =}];
        vw_we <= load_we ? x_we : se_mask;
        vw_data <= load_we ? x_word : se_h;
    end
{% else %}    reg [{= vaw =}-1:0] vw_addr;
    reg [{= dw =}-1:0] vw_data;
    always @(posedge clk) begin
        if (rst) vw_en <= 1'b0;
        else vw_en <= load_we || se_we;
        vw_lane <= load_we ? ld_lane : se_lane;
        vw_addr <= load_we ? ld_addr : (l_hbase_wr + se_idx);
        vw_data <= load_we ? x_tdata[{= dw =}-1:0] : se_h;
    end
    wire unused_mask = &{1'b0, se_mask};
{% endif %}{% if s.vb > dw %}    wire unused_axis = &{1'b0, x_tdata[{= s.vb =}-1:{= dw =}], x_tlast};
{% else %}    wire unused_axis = &{1'b0, x_tlast};
{% endif %}    wire unused_regs = &{1'b0, {= unused_regs =}};

    always @(posedge clk) begin
        if (rst) begin
            state <= S_IDLE;
            busy <= 1'b0;
            done <= 1'b0;
            t <= 32'd0;
            b <= 32'd0;
            l <= {= layer_w =}'d0;
            cur <= {= layers_n =}'d0;
            row <= {= row_w =}'d0;
            slice <= {= slice_w =}'d0;
            waddr <= {= waw =}'d0;
            baddr <= {= baw =}'d0;
            x_par <= 1'b0;
            cycles <= 64'd0;
        end else begin
            if (busy) cycles <= cycles + 64'd1;
            case (state)
                S_IDLE: if (start_pulse) begin
                    busy <= seq_run;
                    done <= !seq_run;
                    state <= seq_run ? S_LOAD : S_IDLE;
                    t <= 32'd0;
                    b <= 32'd0;
                    l <= {= layer_w =}'d0;
                    x_par <= 1'b0;
                    cycles <= 64'd0;
                end
                // Wait for this timestep's x vector (usually loaded during the last step).
                S_LOAD: if (ahead != 2'd0 && room) begin
                    state <= S_RUN;
                    l <= {= layer_w =}'d0;
                    row <= {= row_w =}'d0;
                    slice <= {= slice_w =}'d0;
                    waddr <= {= waw =}'d0;
                    baddr <= {= baw =}'d0;
                end
                S_RUN: begin
                    waddr <= waddr + {= waw =}'d1;
                    if (a_last) begin
                        slice <= {= slice_w =}'d0;
                        baddr <= baddr + {= baw =}'d1;
                        if (row == l_row_last) begin
                            row <= {= row_w =}'d0;
                            state <= S_WAIT;
                        end else begin
                            row <= row + {= row_w =}'d1;
                        end
                    end else begin
                        slice <= slice + {= slice_w =}'d1;
                    end
                end
                S_WAIT: if (ud_full) begin
                    cur[l] <= !cur[l];
                    if (last_layer) x_par <= !x_par;
                    if (!last_layer) begin
                        l <= l + {= layer_w =}'d1;
                        state <= S_RUN;
                    end else if (t_last) begin
                        t <= 32'd0;
                        if (b_last) begin
                            state <= S_FLUSH;
                            busy <= 1'b0;
                        end else begin
                            b <= b + 32'd1;
                            state <= S_LOAD;
                        end
                    end else begin
                        t <= t + 32'd1;
                        state <= S_LOAD;
                    end
                end
                S_FLUSH: if (of_count == {= ofifo_cnt_w =}'d0 && !oh_valid && !h_busy) begin
                    done <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // ------------------------------------------------------------------ engines
{% for e in engine_list %}    wire row_valid_{= e =};
    wire [{= accw =}-1:0] row_acc_{= e =};
    {= p.engine =} #(
`ifndef PARTITA_COSIM
{% for c in wsuffix %}        .WEIGHT_HEX{= c.0 =}(WEIGHTS_E{= e =}{= c.0 =}),
{% endfor %}        .BIAS_HEX(BIAS_E{= e =}),
`endif
        .KIND({= engine_kinds[loop.index0] =})
    ) u_engine_{= e =} (
        .clk(clk), .rst(rst),
        .a_valid(a_valid), .a_waddr(waddr), .a_baddr(baddr), .a_first(a_first),
        .a_last(a_last), .a_xsel(a_xsel), .a_step0(first_step), .a_xbase(l_xbase), .a_hbase(l_hbase_rd),
{% if ew_lanes > 1 %}        .vw_en(vw_en), .vw_lane(vw_lane), .vw_word(vw_word), .vw_we(vw_we), .vw_data(vw_data),
{% else %}        .vw_en(vw_en), .vw_lane(vw_lane), .vw_addr(vw_addr), .vw_data(vw_data),
{% endif %}
        .ww_en(commit_pulse && !wsel[0] && wsel[23:16] == 8'd{= e =}), .ww_addr(waddr_reg[{= waw =}-1:0]),
        .ww_data(wstage[{= wword =}-1:0]),
        .bw_en(commit_pulse && wsel[0] && wsel[23:16] == 8'd{= e =}), .bw_addr(waddr_reg[{= baw =}-1:0]),
        .bw_data(wstage[{= bw =}-1:0]),
        .row_valid(row_valid_{= e =}), .row_acc(row_acc_{= e =})
    );
{% endfor %}{% if engines > 1 %}    wire unused_rows = &{1'b0{% for e in engine_list %}{% if !loop.first %}, row_valid_{= e =}{% endif %}{% endfor %}};
{% endif %}
    // ------------------------------------------------------------------ row lanes
    // Each row lane sums its engines' full-width partial sums (two for W_ih x | W_hh h pairs)
    // into a register, rounds it (registered, at full width: no saturation yet), then saturates
    // once into the pre-activation format: the one rounding and the one overflow step of
    // partita_requant, in two cycles, so no carry chain meets the saturation compare.
    reg row_valid_s, row_valid_q, row_valid_r;
    always @(posedge clk) begin
        if (rst) begin
            row_valid_s <= 1'b0;
            row_valid_q <= 1'b0;
            row_valid_r <= 1'b0;
        end else begin
            row_valid_s <= row_valid_0;
            row_valid_q <= row_valid_s;
            row_valid_r <= row_valid_q;
        end
    end
{% for r in rlanes %}    reg [{= rsum_w =}-1:0] rsum_{= r.index =};
    wire [{= rnd_w =}-1:0] rnd_{= r.index =};
    wire rnd_clip_{= r.index =};
    partita_requant #(
        .IW({= rsum_w =}), .SHR({= pre_shr =}), .SHL({= pre_shl =}), .OW({= rnd_w =}),
        .ROUND_NE({= round_ne =}), .SAT({= sat =})
    ) u_rnd_{= r.index =} (.x(rsum_{= r.index =}), .y(rnd_{= r.index =}), .clip(rnd_clip_{= r.index =}));
    reg [{= rnd_w =}-1:0] rrnd_{= r.index =};
    wire [{= pre_w =}-1:0] rpre_{= r.index =};
    wire rclip_{= r.index =};
    partita_requant #(
        .IW({= rnd_w =}), .SHR(0), .SHL(0), .OW({= pre_w =}),
        .ROUND_NE({= round_ne =}), .SAT({= sat =})
    ) u_pre_{= r.index =} (.x(rrnd_{= r.index =}), .y(rpre_{= r.index =}), .clip(rclip_{= r.index =}));
    reg [{= pre_w =}-1:0] row_preact_{= r.index =};
    reg row_clip_{= r.index =};
    always @(posedge clk) begin
        rsum_{= r.index =} <= {= r.sum_expr =};
        rrnd_{= r.index =} <= rnd_{= r.index =};
        row_preact_{= r.index =} <= rpre_{= r.index =};
        row_clip_{= r.index =} <= row_valid_q && rclip_{= r.index =};
    end
{% endfor %}    // Rounding alone never clips (its output is wide enough).
    wire unused_rnd_clip = &{1'b0{% for r in rlanes %}, rnd_clip_{= r.index =}{% endfor %}};

    // ------------------------------------------------------------------ gate collector
{% if per_gate %}    // One engine group per gate: every row slot yields {= bundles =} complete unit(s), bundle s
    // taking i, f, g, o from row lanes s, {= bundles =}+s, 2*{= bundles =}+s, 3*{= bundles =}+s.
{% else %}    // Rows arrive per row lane in gate order i, f, g, o; after o, every lane hands over a unit.
{% endif %}    reg [1:0] gate;
{% for b in bundle_list %}    reg [{= feed_w =}-1:0] hold_{= b.index =};
{% if !per_gate %}    reg [{= pre_w =}-1:0] pi_{= b.index =}, pf_{= b.index =}, pg_{= b.index =};
{% endif %}{% endfor %}    reg hold_v;
    reg [{= eng_w =}-1:0] drain;
    reg [{= unit_w =}-1:0] u_cnt;
    wire [{= sat_add_w =}-1:0] row_clips = {= row_clips_expr =};
    wire step_done = (state == S_WAIT) && ud_full;
{% if per_gate %}    wire capture = row_valid_r;
{% else %}    wire capture = row_valid_r && gate == 2'd3;
{% endif %}    always @(posedge clk) begin
        if (rst || state == S_IDLE || state == S_LOAD || step_done) begin
            gate <= 2'd0;
            hold_v <= 1'b0;
            drain <= {= eng_w =}'d0;
            u_cnt <= {= unit_w =}'d0;
        end else begin
            if (row_valid_r) gate <= gate + 2'd1;
            // The bundles drain a group of {= ew_lanes =} per cycle; the next hand-over arrives later
            // than that (checked by the generator).
            if (capture) begin
                hold_v <= 1'b1;
                drain <= {= eng_w =}'d0;
            end else if (hold_v) begin
                u_cnt <= u_cnt + {= unit_w =}'d{= ew_lanes =};
                if (drain == {= eng_w =}'d{= last_group =}) hold_v <= 1'b0;
                else drain <= drain + {= eng_w =}'d1;
            end
        end
    end
    // The pre-activation registers load on the row's arrival alone (no row arrives while the
    // collector clears), so their enables are short.
    always @(posedge clk) begin
        if (row_valid_r) begin
{% for b in bundle_list %}{% if per_gate %}            hold_{= b.index =} <= {= b.capture =};
{% else %}            case (gate)
                2'd0: pi_{= b.index =} <= row_preact_{= b.index =};
                2'd1: pf_{= b.index =} <= row_preact_{= b.index =};
                2'd2: pg_{= b.index =} <= row_preact_{= b.index =};
                default: hold_{= b.index =} <= {pi_{= b.index =}, pf_{= b.index =}, pg_{= b.index =}, row_preact_{= b.index =}};
            endcase
{% endif %}{% endfor %}        end
    end
    // Group g: bundles g*{= ew_lanes =} .. g*{= ew_lanes =}+{= ew_last =}, lane j taking unit u_cnt + j.
    reg [{= feed_all_w =}-1:0] feed;
    always @* begin
        case (drain)
{% for g in groups %}            {= eng_w =}'d{= g.index =}: feed = {= g.feed =};
{% endfor %}            default: feed = {= feed_all_w =}'d0;
        endcase
    end
    wire [{= caw =}-1:0] ew_caddr = l_cbase + {= unit_ext =};

    // Element-wise lanes: lane j finishes the units u with u mod {= ew_lanes =} == j.
{% for j in lane_list %}    wire ew_v_{= j.index =}, ew_c_clip_{= j.index =}, ew_h_clip_{= j.index =};
    wire [{= dw =}-1:0] ew_h_{= j.index =};
    {= p.ew =} u_ew_{= j.index =} (
        .clk(clk), .rst(rst), .adv(6'h3f), .feed_v(hold_v && (u_cnt < {= unit_w =}'d{= j.limit =})),
        .feed(feed[{= j.feed_lo =} +: {= feed_w =}]), .caddr(ew_caddr), .first_step(first_step),
        .v_out(ew_v_{= j.index =}), .h_out(ew_h_{= j.index =}), .c_clip(ew_c_clip_{= j.index =}), .h_clip(ew_h_clip_{= j.index =})
    );
{% endfor %}{% if ew_lanes > 1 %}    wire unused_ew_v = &{1'b0{% for j in lane_list %}{% if !loop.first %}, ew_v_{= j.index =}{% endif %}{% endfor %}};
{% endif %}    // Lane 0 holds a unit whenever any lane does; the units that exist are a prefix.
    wire ew_v = ew_v_0;
    wire [{= ew_lanes =}-1:0] ew_mask = {{% for j in lane_list_rev %}ew_v_{= j.index =}{% if !loop.last %}, {% endif %}{% endfor %}};
    wire [{= hwide =}-1:0] ew_h = {{% for j in lane_list_rev %}ew_h_{= j.index =}{% if !loop.last %}, {% endif %}{% endfor %}};
    // h writes: every engine's next h buffer; the last layer also feeds the output FIFO.
    reg [{= unit_w =}-1:0] h_unit;
    always @(posedge clk) begin
        if (rst || state == S_LOAD || state == S_IDLE) begin
            se_we <= 1'b0;
            se_lane <= {= lane_w =}'d0;
            se_idx <= {= vaw =}'d0;
            h_unit <= {= unit_w =}'d0;
            units_done <= {= unit_w =}'d0;
            ud_full <= 1'b0;
        end else begin
            se_we <= ew_v;
            se_h <= ew_h;
            se_mask <= ew_mask;
            if (ew_v) begin
                units_done <= units_done + {= unit_w =}'d1;
                ud_full <= (units_done == {= unit_w =}'d{= hgroups_last =});
                h_unit <= h_unit + {= unit_w =}'d1;
            end
            if (se_we) begin
                if (se_idx == {= vaw =}'d{= bh_last =}) begin
                    se_idx <= {= vaw =}'d0;
                    se_lane <= se_lane + {= lane_w =}'d1;
                end else begin
                    se_idx <= se_idx + {= vaw =}'d{= ew_lanes =};
                end
            end
            if (step_done) begin
                units_done <= {= unit_w =}'d0;
                ud_full <= 1'b0;
                h_unit <= {= unit_w =}'d0;
                se_lane <= {= lane_w =}'d0;
                se_idx <= {= vaw =}'d0;
            end
        end
    end

    // Output FIFO: {h values of a group, their count, last-of-timestep}; `room` reserved a
    // timestep's groups before it started.
    wire of_push = ew_v && last_layer;
    wire of_last = (h_unit == {= unit_w =}'d{= hgroups_last =});
    wire [{= ocw =}-1:0] of_cnt = {= of_cnt_expr =};
    wire [{= of_w =}-1:0] of_q;
    wire of_valid = (of_count != {= ofifo_cnt_w =}'d0);
    wire of_ready;
    wire of_pop = of_valid && of_ready;
    // The output side's reset: a register copy of rst of its own (a cycle later), placed by the
    // FIFO's block RAM, whose read address it resets; rst itself reaches the whole device.
    wire rst_of;
    partita_rep #(.W(1)) u_rst_of (.clk(clk), .rst(1'b0), .d(rst), .q(rst_of));
    partita_fifo #(.W({= of_w =}), .AW({= ofifo_aw =}), .DEPTH({= ofifo_depth =})) u_ofifo (
        .clk(clk), .rst(rst_of), .push(of_push), .din({ew_h, of_cnt, of_last}), .pop(of_pop),
        .dout(of_q), .count(of_count)
    );
    // A register slice (partita_skid) after the FIFO: its block RAM's read (nextpnr times every
    // block RAM with its unregistered clock-to-output, 4.3 ns) ends at flip-flops the placer
    // puts beside it, not at the packer's input wherever the stream pins draw it. The run's
    // cycle count stops before the flush, which waits for the slice too.
    wire [{= of_w =}-1:0] of_head;
    wire oh_ready, oh_last;
    partita_skid #(.W({= of_w =})) u_of_slice (
        .clk(clk), .rst(rst_of), .s_tdata(of_q), .s_tvalid(of_valid), .s_tready(of_ready), .s_tlast(1'b0),
        .m_tdata(of_head), .m_tvalid(oh_valid), .m_tready(oh_ready), .m_tlast(oh_last)
    );
    wire unused_oh = &{1'b0, oh_last};
    wire h_busy;
    partita_pack #(.SB({= s.sb =}), .VB({= s.vb =}), .P({= s.p =}), .R({= ew_lanes =}), .CW({= ocw =}), .JW({= pjw =})) u_h_out (
        .clk(clk), .rst(rst_of), .v_data({= out_ext =}), .v_cnt(of_head[{= ocw =}:1]), .v_valid(oh_valid), .v_ready(oh_ready),
        .v_last(of_head[0]), .m_tdata(m_axis_tdata), .m_tkeep(m_axis_tkeep),
        .m_tvalid(m_axis_tvalid), .m_tready(m_axis_tready), .m_tlast(m_axis_tlast), .busy(h_busy)
    );

    // Saturation events: pre-activations, cell states and h values. This cycle's events are
    // summed into a small register first, so the 32-bit count is one adder.
    reg [31:0] sat_inc;
    always @(posedge clk) begin
        if (rst || (start_pulse && state == S_IDLE)) begin
            sat_inc <= 32'd0;
            sat_count <= 32'd0;
        end else begin
            sat_inc <= {= sat_ext =}{% for j in lane_list %} + {31'd0, ew_c_clip_{= j.index =}} + {31'd0, ew_h_clip_{= j.index =}}{% endfor %};
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
        .idle(state == S_IDLE), .busy(busy), .done(done), .fault(1'b0), .cycles(cycles),
{% for c in reg_conns %}        .{= c.port =}({= c.expr =}),
{% endfor %}        .start_pulse(start_pulse), .soft_rst(soft_rst), .commit_pulse(commit_pulse),
        .wstage(wstage)
    );
endmodule
