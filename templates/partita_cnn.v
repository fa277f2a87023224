{= header =}
// partita CNN device: input {= in_c =}x{= in_h =}x{= in_w =} -> output {= out_vals =} value(s) per frame, {= nstages =} streaming
// stage(s) ({= stage_doc =}), {= mults =} multiplier(s). AXI4-Lite control (regmap.json, partita_regs.h): SEQ_COUNT frames per run,
// started by CTRL.start. AXI4-Stream frames in and out, in (y, x, c) order, {= in_p =} value(s) per
// {= in_sb =}-bit input beat and {= out_p =} per {= out_sb =}-bit output beat; a frame starts a beat, its last beat has
// tlast (partita_hdl::stream). Stages pass values with valid/ready and never stall inside:
// frames follow each other with no gap, at the pace of the slowest stage ({= cpf =} cycles per frame).
{% if let Some(l) = link %}// Device {= l.me =} of a {= l.ndev =}-device system ({= l.wiring =}, {= l.lw =}-bit links): {= l.doc =}
// Values between devices travel as h frames of layer 0 (partita_hdl::frame) through the link
// ports of the library core partita_link_hub, {= l.dw =} bits each (sign-extended).
{% endif %}module {= top =} #(
    // $readmemh files of the conv2d and dense stages; override with full paths if needed.
{% for m in mems %}    parameter {= m.param =} = "{= m.file =}"{% if !loop.last %},{% endif %}
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
{% if let Some(l) = link %}    // The cosimulation's identity pin (LSTM node designs serve several devices); this device's
    // identity, {= l.me =}, is built in, so it reads nothing from it.
    input  wire [2:0]  dev_id,
{% for p in l.ports %}    // Link port {= p.index =}: {= p.doc =}
    output wire [{= l.lw =}-1:0] l{= p.index =}_tx_tdata,
    output wire        l{= p.index =}_tx_tvalid,
    input  wire        l{= p.index =}_tx_tready,
    output wire        l{= p.index =}_tx_tlast,
    input  wire [{= l.lw =}-1:0] l{= p.index =}_rx_tdata,
    input  wire        l{= p.index =}_rx_tvalid,
    output wire        l{= p.index =}_rx_tready,
    input  wire        l{= p.index =}_rx_tlast,
{% endfor %}{% endif %}    // AXI4-Stream input: {= in_vals =} values per frame.{% if src_link %} Unused: this device's input arrives on a link.{% endif %}
    input  wire [{= in_sb =}-1:0] s_axis_tdata,
    input  wire [{= in_kw =}-1:0] s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    // AXI4-Stream output: {= out_vals =} values per frame.{% if sink_link %} Unused: this device's output leaves on a link.{% endif %}
    output wire [{= out_sb =}-1:0] m_axis_tdata,
    output wire [{= out_kw =}-1:0] m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);
    // Reset: rst_n synchronized by two flip-flops and, with the soft reset, registered once more.
    wire soft_rst, start_pulse, commit_pulse;
    reg [1:0] rst_sync = 2'b11;
    reg rst = 1'b1;
    always @(posedge clk) begin
        rst_sync <= {rst_sync[0], !rst_n};
        rst <= rst_sync[1] || soft_rst;
    end
    wire [31:0] seq_len, seq_count;
    wire [{= wstage_w =}-1:0] wstage;
    reg busy, done;
    reg [63:0] cycles;
    reg [31:0] sat_count;

    // Frames in and out of this run.
    reg [31:0] in_frames, out_frames;
    reg [{= ivw =}-1:0] in_pos;
    reg [{= ovw =}-1:0] out_pos;
    wire in_open = busy && (in_frames != seq_count){= in_gate =};

{% if let Some(l) = link %}    // Link values: the head of what device {= l.from_doc =} sent (rx_v, rx_d; rx_take takes it).
    wire rx_v, rx_take;
    wire [{= l.dw =}-1:0] rx_d;
    wire tq_full, tq_full_n, tx_idle;
    wire [3:0] link_status;
    wire link_err = (link_status != 4'd0);
    wire [31:0] link_timeout, crc_errs, seq_errs, fmt_errs, err_info, tx_beats, fwd_beats, rx_beats;
{% for g in gathers %}    wire [{= g.dw =}-1:0] {= g.p =}_data;
    wire {= g.p =}_valid, {= g.p =}_ready, {= g.p =}_remote;
{% endfor %}{% for r in reduces %}{% if r.finish %}    wire [{= r.dwo =}-1:0] {= r.f =}_data;
    wire {= r.f =}_valid, {= r.f =}_ready;
    wire {= r.p =}_clips;
{% else %}    wire [{= r.aw =}-1:0] {= r.p =}_data;
    wire {= r.p =}_valid, {= r.p =}_ready;
{% endif %}{% endfor %}{% if l.no_rx %}    assign rx_take = 1'b0;
{% endif %}{% for x in l.xs %}    // {= x.doc_m =}
    wire [{= x.dw =}-1:0] {= x.id =}_m_data;
    wire {= x.id =}_m_valid, {= x.id =}_m_ready;
{% endfor %}{% for m in l.ms %}    // All-gather before stage {= m.i =}: its input, {= m.whole =}.
    wire [{= m.dw =}-1:0] a{= m.i =}_m_data;
    wire a{= m.i =}_m_valid, a{= m.i =}_m_ready;
    wire [{= m.ns =}-1:0] a{= m.i =}_want;
{% if !m.crop.is_empty() %}    wire [{= m.dw =}-1:0] a{= m.i =}_j_data, a{= m.i =}_k_data;
    wire a{= m.i =}_j_valid, a{= m.i =}_j_ready, a{= m.i =}_k_valid, a{= m.i =}_k_ready;
{% endif %}{% endfor %}{% if let Some(tp) = l.tap %}    // The scatter between stages: this device's own box of the map, the next stage's input.
    wire [{= tp.dw =}-1:0] z_m_data;
    wire z_m_valid, z_m_ready;
    wire z_g, z_take;
{% endif %}{% if l.y_g %}    wire y_g;
{% endif %}{% for q in l.rxq %}    // Received values from device {= q.src =} tagged {= q.tag =} ({= q.doc =}), port {= q.port =}.
    wire [{= l.dw =}-1:0] q{= q.j =}_data;
    wire q{= q.j =}_valid, q{= q.j =}_ready, q{= q.j =}_in_ready;
    wire q{= q.j =}_push;
{% endfor %}{% endif %}{% if src_link %}    // Input: values from device {= src_from =}'s link frames (port {= rx_port =}), one per cycle.
    wire st0_s_valid = {= in_v =} && in_open;
    wire st0_s_ready;
    wire [{= dwi =}-1:0] st0_s_data = {= in_d =}[{= dwi =}-1:0];
    assign {= in_take =} = st0_s_valid && st0_s_ready;
    assign s_axis_tready = 1'b0;
    wire [31:0] stream_errs = 32'd0;
{% else %}    // Input: unpacked to one value per cycle{% if relu_in %}, ReLU applied{% endif %}.
    wire [{= in_vb =}-1:0] x_slot;
    wire x_valid, x_last;
    wire x_ready;
    wire [{= in_sb =}-1:0] x_run_beat;
    wire [{= in_jw =}:0] x_run_avail;
    wire [31:0] stream_errs;
    partita_unpack #(
        .SB({= in_sb =}), .VB({= in_vb =}), .P({= in_p =}), .VEC({= in_vals =}), .CW({= in_cw =}), .JW({= in_jw =}), .BW({= in_bw =})
    ) u_in (
        .clk(clk), .rst(rst), .s_tdata(s_axis_tdata), .s_tkeep(s_axis_tkeep),
        .s_tvalid(s_axis_tvalid), .s_tready(s_axis_tready), .s_tlast(s_axis_tlast),
        .m_data(x_slot), .m_valid(x_valid), .m_ready(x_ready), .m_last(x_last),
        .m_beat(x_run_beat), .m_avail(x_run_avail), .m_n({= in_jw1 =}'d0),
        .clear(!busy && start_pulse), .errs(stream_errs)
    );
    wire [{= dwi =}-1:0] x_val = x_slot[{= dwi =}-1:0];
    wire [{= dwi =}-1:0] st0_s_data = {% if relu_in %}x_val[{= dwi =}-1] ? {= dwi =}'d0 : x_val{% else %}x_val{% endif %};
    wire st0_s_valid = x_valid && in_open;
    wire st0_s_ready;
    assign x_ready = st0_s_ready && in_open;

{% endif %}    // The stages.
{% for st in stages %}    wire [{= st.dwo =}-1:0] st{= st.next =}_s_data_w;
    wire st{= st.next =}_s_valid_w;
    wire st{= st.next =}_s_ready_w;
    wire [{= st.clw =}-1:0] clips_{= st.index =};
    {= st.module =}{% if st.mvu %} #(
{% for m in st.mems %}        .{= m.0 =}({= m.1 =}){% if !loop.last %},{% endif %}
{% endfor %}    ){% endif %} u_st{= st.index =} (
        .clk(clk), .rst(rst),
        .s_data({= st.s_data =}), .s_valid({= st.s_valid =}), .s_ready({= st.s_ready =}),
        .m_data(st{= st.next =}_s_data_w), .m_valid(st{= st.next =}_s_valid_w), .m_ready(st{= st.next =}_s_ready_w),
        .clips(clips_{= st.index =})
    );
{% endfor %}
{% for g in gathers %}    // Gather ({= g.what =}): per period ({= g.periods =} per frame) {= g.local =} value(s) of this device's own, then
    // {= g.remote =} from device {= g.from =}; then {= g.tail =} more from device {= g.from =}. This device's own values wait in a
    // block-RAM FIFO of {= g.depth =} entries (a whole frame's), so its stages run on while the gather passes
    // the other devices' values.
    partita_gather #(
        .DW({= g.dw =}), .AW({= g.aw =}), .DEPTH({= g.depth =}), .CW({= g.cw =}), .PW({= g.pw =}),
        .LOCAL({= g.local =}), .REMOTE({= g.remote =}), .PERIODS({= g.periods =}), .TAIL({= g.tail =})
    ) {= g.inst =} (
        .clk(clk), .rst(rst), .s_data({= g.l_data =}), .s_valid({= g.l_valid =}), .s_ready({= g.l_ready =}),
        .r_data({= g.rem_d =}), .r_valid({= g.rem_v =}), .r_take({= g.take =}), .r_want({= g.p =}_remote),
        .m_data({= g.p =}_data), .m_valid({= g.p =}_valid), .m_ready({= g.p =}_ready)
    );

{% endfor %}{% for r in reduces %}    // Partial-sum reduction of layer {= r.layer =}: stage {= r.st =}'s {= r.aw =}-bit partial sums over this device's input channels plus
    // device {= r.from =}'s (the sums of the devices after it), value by value, in the same (y, x, c) order{% if r.finish %}; then each
    // output channel's bias, one rounding and saturation into {= r.dwo =} bits{% if r.relu %} and ReLU{% endif %}, once for the whole layer{% endif %}.
    // The local sums wait in a block-RAM FIFO of {= r.depth =} entries for the remote ones.
    wire [{= r.aw =}-1:0] {= r.p =}_loc;
    wire {= r.p =}_loc_v, {= r.p =}_loc_take;
    partita_sfifo #(.W({= r.aw =}), .AW({= r.law =}), .DEPTH({= r.depth =})) u_{= r.p =}_local (
        .clk(clk), .rst(rst), .s_data({= r.l_data =}), .s_valid({= r.l_valid =}), .s_ready({= r.l_ready =}),
        .m_data({= r.p =}_loc), .m_valid({= r.p =}_loc_v), .m_ready({= r.p =}_loc_take)
    );
    wire [{= r.aw =}-1:0] {= r.p =}_rem = {= r.rem_d =};
    wire {= r.p =}_both = {= r.p =}_loc_v && {= r.rem_v =};
{% if r.finish %}    // Three steps that advance together when the last is empty or taken: the sum (and its
    // channel's bias, looked up beside it), the biased sum, the rounded value.
    reg [{= r.aw =}-1:0] {= r.p =}_sum, {= r.p =}_biased, {= r.p =}_bias, {= r.p =}_bias_q;
    reg [{= r.dwo =}-1:0] {= r.p =}_q;
    reg {= r.p =}_v1, {= r.p =}_v2, {= r.p =}_v3;
    reg [{= r.cw =}-1:0] {= r.p =}_ch;
    wire {= r.p =}_adv = !{= r.p =}_v3 || {= r.f =}_ready;
    wire {= r.p =}_in = {= r.p =}_both && {= r.p =}_adv;
    assign {= r.p =}_loc_take = {= r.p =}_in;
    assign {= r.take =} = {= r.p =}_in;
    wire [{= r.dwo =}-1:0] {= r.p =}_y;
    wire {= r.p =}_clip;
    partita_requant #(.IW({= r.aw =}), .SHR({= r.shr =}), .SHL({= r.shl =}), .OW({= r.dwo =}), .ROUND_NE({= r.round_ne =}), .SAT({= r.sat =})) u_rq_{= r.p =} (
        .x({= r.p =}_biased), .y({= r.p =}_y), .clip({= r.p =}_clip)
    );
    // The bias of the incoming sum's channel, aligned to its fraction bits (registered in
    // {= r.p =}_bias_q beside the sum, so the next step is one adder).
    always @(*) begin
        case ({= r.p =}_ch)
{% for b in r.bias %}            {= r.cw =}'d{= b.0 =}: {= r.p =}_bias = {= b.1 =};
{% endfor %}            default: {= r.p =}_bias = {= r.aw =}'d0;
        endcase
    end
    always @(posedge clk) begin
        if (rst) begin
            {= r.p =}_v1 <= 1'b0;
            {= r.p =}_v2 <= 1'b0;
            {= r.p =}_v3 <= 1'b0;
            {= r.p =}_ch <= {= r.cw =}'d0;
        end else if ({= r.p =}_adv) begin
            {= r.p =}_v1 <= {= r.p =}_in;
            {= r.p =}_v2 <= {= r.p =}_v1;
            {= r.p =}_v3 <= {= r.p =}_v2;
            if ({= r.p =}_in) {= r.p =}_ch <= ({= r.p =}_ch == {= r.cw =}'d{= r.c_last =}) ? {= r.cw =}'d0 : {= r.p =}_ch + {= r.cw =}'d1;
        end
        if ({= r.p =}_adv) begin
            {= r.p =}_sum <= {= r.p =}_loc + {= r.p =}_rem;
            {= r.p =}_bias_q <= {= r.p =}_bias;
            {= r.p =}_biased <= {= r.p =}_sum + {= r.p =}_bias_q;
            {= r.p =}_q <= {% if r.relu %}{= r.p =}_y[{= r.dwo =}-1] ? {= r.dwo =}'d0 : {= r.p =}_y{% else %}{= r.p =}_y{% endif %};
        end
    end
    assign {= r.p =}_clips = {= r.p =}_adv && {= r.p =}_v2 && {= r.p =}_clip;
    assign {= r.f =}_data = {= r.p =}_q;
    assign {= r.f =}_valid = {= r.p =}_v3;
{% else %}    assign {= r.p =}_data = {= r.p =}_loc + {= r.p =}_rem;
    assign {= r.p =}_valid = {= r.p =}_both;
    assign {= r.p =}_loc_take = {= r.p =}_both && {= r.p =}_ready;
    assign {= r.take =} = {= r.p =}_both && {= r.p =}_ready;
{% endif %}
{% endfor %}{% if let Some(l) = link %}{% for x in l.xs %}    // {= x.doc_s =}
    // {= x.doc_k =}
    reg [{= x.rw =}-1:0] {= x.id =}_row;
    reg [{= x.cw =}-1:0] {= x.id =}_col;
    reg {= x.id =}_upd;
    wire {= x.id =}_v = {= x.in_v =};
    wire {= x.id =}_to_up = {= x.to_up =};
    wire {= x.id =}_to_dn = {= x.to_dn =};
    wire {= x.id =}_to_l = {= x.to_l =};
    wire {= x.id =}_row_end = ({= x.id =}_col == {= x.cw =}'d{= x.len_last =});
    wire [{= x.dw =}-1:0] {= x.id =}_l_data;
    wire {= x.id =}_l_valid, {= x.id =}_l_in_ready;
    wire {= x.id =}_l_ok = !{= x.id =}_to_l || {= x.id =}_l_in_ready;
    wire {= x.id =}_want_up = {= x.id =}_v && {= x.id =}_to_up && !{= x.id =}_upd && ({= x.id =}_to_dn || {= x.id =}_l_ok);
    wire {= x.id =}_want_dn = {= x.id =}_v && {= x.id =}_to_dn && (!{= x.id =}_to_up || {= x.id =}_upd) && {= x.id =}_l_ok;
    wire {= x.id =}_g_up, {= x.id =}_g_dn;
    wire {= x.id =}_done = {= x.id =}_v && {= x.id =}_l_ok
        && ({= x.id =}_to_dn ? {= x.id =}_g_dn : (!{= x.id =}_to_up || {= x.id =}_upd || {= x.id =}_g_up));
    assign {= x.in_r =} = {= x.id =}_done;
    always @(posedge clk) begin
        if (rst) begin
            {= x.id =}_row <= {= x.rw =}'d0;
            {= x.id =}_col <= {= x.cw =}'d0;
            {= x.id =}_upd <= 1'b0;
        end else begin
            if ({= x.id =}_done) begin
                {= x.id =}_upd <= 1'b0;
                if ({= x.id =}_row_end) begin
                    {= x.id =}_col <= {= x.cw =}'d0;
                    {= x.id =}_row <= ({= x.id =}_row == {= x.rw =}'d{= x.rows_last =}) ? {= x.rw =}'d0 : {= x.id =}_row + {= x.rw =}'d1;
                end else begin
                    {= x.id =}_col <= {= x.id =}_col + {= x.cw =}'d1;
                end
            end else if ({= x.id =}_g_up) begin
                {= x.id =}_upd <= 1'b1;
            end
        end
    end
    partita_sfifo #(.W({= x.dw =}), .AW({= x.law =}), .DEPTH({= x.ldepth =})) u_{= x.id =}_keep (
        .clk(clk), .rst(rst), .s_data({= x.in_d =}), .s_valid({= x.id =}_done && {= x.id =}_to_l), .s_ready({= x.id =}_l_in_ready),
        .m_data({= x.id =}_l_data), .m_valid({= x.id =}_l_valid), .m_ready({= x.id =}_m_ready && {= x.id =}_ph == 2'd1)
    );
    // Merger: per frame {= x.u =} value(s) from above, {= x.o =} kept, {= x.d =} from below.
    reg [1:0] {= x.id =}_ph;
    reg [{= x.mw =}-1:0] {= x.id =}_n;
    assign {= x.id =}_m_data = ({= x.id =}_ph == 2'd0) ? {= x.up_q_data =} : ({= x.id =}_ph == 2'd1) ? {= x.id =}_l_data : {= x.dn_q_data =};
    assign {= x.id =}_m_valid = ({= x.id =}_ph == 2'd0) ? {= x.up_q_valid =} : ({= x.id =}_ph == 2'd1) ? {= x.id =}_l_valid : {= x.dn_q_valid =};
{% if x.u > 0 %}    assign {= x.up_q_ready =} = {= x.id =}_m_ready && {= x.id =}_ph == 2'd0;
{% endif %}{% if x.d > 0 %}    assign {= x.dn_q_ready =} = {= x.id =}_m_ready && {= x.id =}_ph == 2'd2;
{% endif %}    always @(posedge clk) begin
        if (rst) begin
            {= x.id =}_ph <= 2'd{= x.ph0 =};
            {= x.id =}_n <= {= x.mw =}'d0;
        end else if ({= x.id =}_m_valid && {= x.id =}_m_ready) begin
            if ({= x.id =}_n == (({= x.id =}_ph == 2'd0) ? {= x.mw =}'d{= x.u_last =} : ({= x.id =}_ph == 2'd1) ? {= x.mw =}'d{= x.o_last =} : {= x.mw =}'d{= x.d_last =})) begin
                {= x.id =}_n <= {= x.mw =}'d0;
                {= x.id =}_ph <= ({= x.id =}_ph == 2'd0) ? 2'd{= x.after_up =} : ({= x.id =}_ph == 2'd1) ? 2'd{= x.after_keep =} : 2'd{= x.ph0 =};
            end else begin
                {= x.id =}_n <= {= x.id =}_n + {= x.mw =}'d1;
            end
        end
    end

{% endfor %}{% for m in l.ms %}{% if m.keep %}    // All-gather before stage {= m.i =}: stage {= m.p =}'s {= m.what =} go to device(s) {= m.dsts =}
    // (tag {= m.tag =}, one frame copy per device) and wait in a block-RAM FIFO of {= m.ldepth =} entries; a value leaves
    // when both take it. The merge then feeds stage {= m.i =} {= m.per =} with {= m.order =}.
{% else %}    // Before stage {= m.i =}: stage {= m.p =}'s {= m.what =} go on to device {= m.dsts =} (tag {= m.tag =}); this device
    // keeps nothing of them. The merge then feeds stage {= m.i =} {= m.per =} with {= m.order =}.
{% endif %}    reg [{= m.cw =}-1:0] a{= m.i =}_cnt;
    wire a{= m.i =}_g;
{% if m.keep %}    wire a{= m.i =}_l_in_ready;
    wire a{= m.i =}_out = {= m.src_v =} && a{= m.i =}_l_in_ready;
{% else %}    wire a{= m.i =}_out = {= m.src_v =};
{% endif %}    wire a{= m.i =}_last = (a{= m.i =}_cnt == {= m.cw =}'d{= m.vals_last =});
    assign {= m.src_r =} = a{= m.i =}_g;
    always @(posedge clk) begin
        if (rst) a{= m.i =}_cnt <= {= m.cw =}'d0;
        else if (a{= m.i =}_g) a{= m.i =}_cnt <= a{= m.i =}_last ? {= m.cw =}'d0 : a{= m.i =}_cnt + {= m.cw =}'d1;
    end
    wire [{= m.dw =}-1:0] a{= m.i =}_l_data;
    wire a{= m.i =}_l_valid, a{= m.i =}_l_ready;
{% for z in m.zeros %}    wire {= z =};
{% endfor %}{% if m.keep %}    partita_sfifo #(.W({= m.dw =}), .AW({= m.law =}), .DEPTH({= m.ldepth =})) u_a{= m.i =}_keep (
        .clk(clk), .rst(rst), .s_data({= m.src_d =}), .s_valid(a{= m.i =}_g), .s_ready(a{= m.i =}_l_in_ready),
        .m_data(a{= m.i =}_l_data), .m_valid(a{= m.i =}_l_valid), .m_ready(a{= m.i =}_l_ready)
    );
{% else %}    assign a{= m.i =}_l_data = {= m.dw =}'d0;
    assign a{= m.i =}_l_valid = 1'b0;
{% endif %}    partita_merge #(.NS({= m.ns =}), .DW({= m.dw =}), .SW({= m.sw =}), .CW({= m.mcw =}), .NT({= m.nt =}), .TW({= m.tw =}), .SRCS({= m.srcs =}), .LASTS({= m.lasts =})) u_a{= m.i =}_merge (
        .clk(clk), .rst(rst), .s_data({= m.s_data =}), .s_valid({= m.s_valid =}),
        .s_ready({= m.s_ready =}), .s_want(a{= m.i =}_want),
{% if m.crop.is_empty() %}        .m_data(a{= m.i =}_m_data), .m_valid(a{= m.i =}_m_valid), .m_ready(a{= m.i =}_m_ready)
    );
{% else %}        .m_data(a{= m.i =}_j_data), .m_valid(a{= m.i =}_j_valid), .m_ready(a{= m.i =}_j_ready)
    );
    // Stage {= m.i =} takes its box of the joined map: {= m.crop_doc =}; the rest is dropped.
    // The box waits in a block-RAM FIFO of {= m.cdepth =} entries, so the merge passes the whole map while
    // the stage computes.
    partita_crop #({= m.crop =}) u_a{= m.i =}_crop (
        .clk(clk), .rst(rst), .s_data(a{= m.i =}_j_data), .s_valid(a{= m.i =}_j_valid), .s_ready(a{= m.i =}_j_ready),
        .m_data(a{= m.i =}_k_data), .m_valid(a{= m.i =}_k_valid), .m_ready(a{= m.i =}_k_ready)
    );
    partita_sfifo #(.W({= m.dw =}), .AW({= m.caw =}), .DEPTH({= m.cdepth =})) u_a{= m.i =}_box (
        .clk(clk), .rst(rst), .s_data(a{= m.i =}_k_data), .s_valid(a{= m.i =}_k_valid), .s_ready(a{= m.i =}_k_ready),
        .m_data(a{= m.i =}_m_data), .m_valid(a{= m.i =}_m_valid), .m_ready(a{= m.i =}_m_ready)
    );
{% endif %}
{% endfor %}{% endif %}{% if sink_link %}    // Output: to device {= sink_to =}'s link frames, a run per frame (the framer splits it). Only
    // this run's frames leave: a stage whose first output row lies wholly in the padding
    // (P >= K) could start the next frame with no input, and a partial run would hold the
    // framer.
    wire out_open = busy && (out_frames != seq_count);
    wire [{= dwo =}-1:0] y_val = {= last_data =};
    wire y_valid = {= last_valid =} && out_open;
    wire y_ready = ({= y_ready =}) && out_open;
    assign {= last_ready =} = y_ready;
    wire y_last = (out_pos == {= ovw =}'d{= out_last =});
    wire pack_busy = !tx_idle;
    assign m_axis_tdata = {= out_sb =}'d0;
    assign m_axis_tkeep = {= out_kw =}'d0;
    assign m_axis_tvalid = 1'b0;
    assign m_axis_tlast = 1'b0;
{% else %}    // Output: packed, {= out_p =} value(s) per beat, each sign-extended to its {= out_vb =}-bit slot.
    wire [{= dwo =}-1:0] y_val = {= last_data =};
    wire y_valid = {= last_valid =};
    wire y_ready;
    assign {= last_ready =} = y_ready;
    wire y_last = (out_pos == {= ovw =}'d{= out_last =});
    wire pack_busy;
    partita_pack #(.SB({= out_sb =}), .VB({= out_vb =}), .P({= out_p =}), .R(1), .CW(1), .JW({= out_pjw =})) u_out (
        .clk(clk), .rst(rst), .v_data({= y_ext =}), .v_cnt(1'b1), .v_valid(y_valid), .v_ready(y_ready),
        .v_last(y_last), .m_tdata(m_axis_tdata), .m_tkeep(m_axis_tkeep),
        .m_tvalid(m_axis_tvalid), .m_tready(m_axis_tready), .m_tlast(m_axis_tlast), .busy(pack_busy)
    );

{% endif %}{% if let Some(l) = link %}{% for sc in l.scatters %}{= sc.doc =}    reg [{= sc.yw =}-1:0] {= sc.p =}_sy;
    reg [{= sc.xw =}-1:0] {= sc.p =}_sx;
    reg [{= sc.cw =}-1:0] {= sc.p =}_sc;
    reg [{= sc.nr =}-1:0] {= sc.p =}_sent;
{% for r in sc.runs %}    wire {= r.g =};
    wire {= r.inw =} = {= r.cond =};
{% endfor %}    always @(posedge clk) begin
        if (rst) begin
            {= sc.p =}_sy <= {= sc.yw =}'d0;
            {= sc.p =}_sx <= {= sc.xw =}'d0;
            {= sc.p =}_sc <= {= sc.cw =}'d0;
            {= sc.p =}_sent <= {= sc.nr =}'d0;
        end else if ({= sc.fire =}) begin
            {= sc.p =}_sent <= {= sc.nr =}'d0;
            if ({= sc.p =}_sc == {= sc.cw =}'d{= sc.c_last =}) begin
                {= sc.p =}_sc <= {= sc.cw =}'d0;
                if ({= sc.p =}_sx == {= sc.xw =}'d{= sc.x_last =}) begin
                    {= sc.p =}_sx <= {= sc.xw =}'d0;
                    {= sc.p =}_sy <= ({= sc.p =}_sy == {= sc.yw =}'d{= sc.y_last =}) ? {= sc.yw =}'d0 : {= sc.p =}_sy + {= sc.yw =}'d1;
                end else begin
                    {= sc.p =}_sx <= {= sc.p =}_sx + {= sc.xw =}'d1;
                end
            end else begin
                {= sc.p =}_sc <= {= sc.p =}_sc + {= sc.cw =}'d1;
            end
        end else begin
            {= sc.p =}_sent <= {= sc.p =}_sent | { {= sc.grants =} };
        end
    end
{% endfor %}{% if let Some(tp) = l.tap %}    wire z_k_in = {= tp.own_cond =};
    wire z_k_ready;
    assign z_take = {= tp.src_v =} && z_g;
    assign {= tp.src_r =} = z_take;
    partita_sfifo #(.W({= tp.dw =}), .AW({= tp.aw =}), .DEPTH({= tp.depth =})) u_z_box (
        .clk(clk), .rst(rst), .s_data({= tp.src_d =}), .s_valid(z_take && z_k_in), .s_ready(z_k_ready),
        .m_data(z_m_data), .m_valid(z_m_valid), .m_ready(z_m_ready)
    );
{% endif %}{% endif %}{% if let Some(g) = gate %}    // Frames out of the tiled stack (stage {= g.at =}'s input): the input is taken at most {= g.n =} frames ahead.
    reg [31:0] stk_frames;
    reg [{= g.pw =}-1:0] stk_pos;
    always @(posedge clk) begin
        if (rst || (!busy && start_pulse)) begin
            stk_frames <= 32'd0;
            stk_pos <= {= g.pw =}'d0;
        end else if (st{= g.at =}_s_valid_w && st{= g.at =}_s_ready_w) begin
            if (stk_pos == {= g.pw =}'d{= g.last =}) begin
                stk_pos <= {= g.pw =}'d0;
                stk_frames <= stk_frames + 32'd1;
            end else begin
                stk_pos <= stk_pos + {= g.pw =}'d1;
            end
        end
    end

{% endif %}    // Run control, frame counts and the cycle count.
    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            done <= 1'b0;
            cycles <= 64'd0;
            in_frames <= 32'd0;
            out_frames <= 32'd0;
            in_pos <= {= ivw =}'d0;
            out_pos <= {= ovw =}'d0;
        end else begin
            if (!busy && start_pulse) begin
                busy <= 1'b1;
                done <= 1'b0;
                cycles <= 64'd0;
                in_frames <= 32'd0;
                out_frames <= 32'd0;
            end else if (busy) begin
                cycles <= cycles + 64'd1;
                if (out_frames == seq_count && !pack_busy) begin
                    busy <= 1'b0;
                    done <= 1'b1;
                end
            end
            if (st0_s_valid && st0_s_ready) begin
                if (in_pos == {= ivw =}'d{= in_last =}) begin
                    in_pos <= {= ivw =}'d0;
                    in_frames <= in_frames + 32'd1;
                end else begin
                    in_pos <= in_pos + {= ivw =}'d1;
                end
            end
            if (y_valid && y_ready) begin
                if (y_last) begin
                    out_pos <= {= ovw =}'d0;
                    out_frames <= out_frames + 32'd1;
                end else begin
                    out_pos <= out_pos + {= ovw =}'d1;
                end
            end
        end
    end

{% if let Some(l) = link %}{% if !l.reqs.is_empty() %}    // The transmit queue, shared by {= l.reqs.len() =} run(s), whole frames at a time (partita_tx_runs):
{% for r in l.reqs %}    //   run {= r.j =}: {= r.doc =};
{% endfor %}    wire [{= l.reqs.len() =}-1:0] tr_grant;
    wire tq_push_any;
    wire [{= l.tq_w =}-1:0] tq_entry;
    partita_tx_runs #(
        .NR({= l.reqs.len() =}), .DW({= l.dw =}), .OWN_W({= l.own_w =}), .MAXV({= l.lk.maxv_h =}),
        .TAGS({= l.run_tags =}), .DSTS({= l.run_dsts =})
    ) u_runs (
        .clk(clk), .rst(rst), .want({= l.run_want =}), .last({= l.run_last =}), .value({= l.run_value =}),
        .grant(tr_grant), .tq_full(tq_full), .tq_push(tq_push_any), .tq_entry(tq_entry)
    );
{% for r in l.reqs %}    assign {= r.grant =} = tr_grant[{= r.j =}];
{% endfor %}{% for g in l.grants %}    assign {= g.0 =} = {= g.1 =};
{% endfor %}{% endif %}    // Link ports. Waiting: a value from device {= l.from_doc =} is wanted and none is there.
    wire waiting = busy && ({= l.wait_expr =});
    reg [31:0] wait_cycles;
    always @(posedge clk) begin
        if (rst || (!busy && start_pulse)) wait_cycles <= 32'd0;
        else if (waiting) wait_cycles <= wait_cycles + 32'd1;
    end
    wire [{= l.np =}-1:0] rv_valid, rv_ack, rv_par, rv_all, ok_p;
    wire [{= l.np2 =}-1:0] rv_type;
    wire [{= l.np3 =}-1:0] rv_src;
    wire [{= l.npl =}-1:0] rv_layer;
    wire [{= l.np7 =}-1:0] rv_count, rv_avail;
    wire [{= l.npd =}-1:0] rv_data;
    wire [{= l.npw =}-1:0] rv_beat;
    wire [{= l.npv =}-1:0] rv_vi;
    wire bar_ok;
{% if !l.queued %}    assign rx_v = rv_valid[{= l.rx_port =}] && (rv_type[{= l.rx_port2 =} +: 2] == 2'd0);
    assign rx_d = rv_data[{= l.rx_portd =} +: {= l.dw =}];
    assign rv_ack = {= l.ack_expr =};
{% else %}    // Every received stream into a queue of its own (demultiplexed by source and tag), a whole
    // payload beat at a time, so no stream waits behind another on a port and a port drains a
    // beat per cycle.
{% for q in l.rxq %}    assign q{= q.j =}_push = rv_valid[{= q.port =}] && (rv_type[{= q.port2 =} +: 2] == 2'd0) && (rv_src[{= q.port3 =} +: 3] == 3'd{= q.src =})
        && (rv_layer[{= q.port3 =} +: 3] == 3'd{= q.tag =}) && q{= q.j =}_in_ready;
    partita_rxq #(.DW({= l.dw =}), .VPB({= l.lk.vpb_h =}), .VW({= l.vw =}), .AW({= q.aw =}), .DEPTH({= q.depth =})) u_rxq{= q.j =} (
        .clk(clk), .rst(rst), .s_beat(rv_beat[{= q.portb =} +: {= l.vbw =}]), .s_n(rv_avail[{= q.port7 =} +: {= l.vw =}]),
        .s_valid(q{= q.j =}_push), .s_ready(q{= q.j =}_in_ready),
        .m_data(q{= q.j =}_data), .m_valid(q{= q.j =}_valid), .m_ready(q{= q.j =}_ready)
    );
{% endfor %}    assign rv_ack = {= l.np =}'d0;
{% if let Some(gq) = l.gather_q.first() %}    assign rx_v = q{= gq =}_valid;
    assign rx_d = q{= gq =}_data;
    assign q{= gq =}_ready = rx_take;
{% else %}    assign rx_v = 1'b0;
    assign rx_d = {= l.dw =}'d0;
{% endif %}{% endif %}
    assign rv_all = {= l.all_expr =};
    partita_link_hub #(
        .NP({= l.np =}), .LW({= l.lw =}), .DW({= l.dw =}), .ACCW({= l.dw =}), .NDEV({= l.ndev =}),
        .NLAYERS({= l.nlayers =}), .LAYER_W({= l.layer_w =}), .VPB_H({= l.lk.vpb_h =}), .VPB_P({= l.lk.vpb_p =}),
        .VPB_W({= l.lk.vpb_w =}), .MAXV_H({= l.lk.maxv_h =}), .MAXV_P({= l.lk.maxv_p =}), .MAX_VALS({= l.lk.max_vals =}),
        .MAXB({= l.maxb =}), .FB_W({= l.lk.fb_w =}), .FB_IX_W({= l.lk.fb_ix_w =}), .RX_AW(6), .RX_DEPTH(64),
        .TQ_AW(6), .TQ_DEPTH(64), .EH(1), .QW({= l.dw =}), .TQ_W({= l.tq_w =}), .BAR_W({= l.bar_w =}), .BCAST(0)
    ) u_links (
        .clk(clk), .rst(rst), .me(3'd{= l.me =}), .others(8'h{= l.others =}), .routes(16'h{= l.routes =}),
        .hmasks(64'h{= l.hmasks =}), .bc_fwd(8'h00),
        {= l.hub.tx =},
        {= l.hub.rx =},
        .tq_push({= l.tq_push =}), .tq_in({= l.tq_in =}), .tq_full(tq_full), .tq_full_n(tq_full_n), .tx_idle(tx_idle),
        .rv_valid(rv_valid), .rv_type(rv_type), .rv_src(rv_src), .rv_layer(rv_layer),
        .rv_par(rv_par), .rv_count(rv_count), .rv_data(rv_data), .rv_ack(rv_ack),
        .rv_beat(rv_beat), .rv_vi(rv_vi), .rv_avail(rv_avail), .rv_n({= l.np7 =}'d0), .rv_all(rv_all), .ok_p(ok_p),
        .bar_take(1'b0), .bar_ok(bar_ok), .waiting(waiting), .timeout(link_timeout),
        .status(link_status), .crc_errs(crc_errs), .seq_errs(seq_errs), .fmt_errs(fmt_errs),
        .err_info(err_info), .tx_beats(tx_beats), .fwd_beats(fwd_beats), .rx_beats(rx_beats)
    );

{% endif %}    // Saturations: this cycle's clips summed into a small register first.
    reg [{= satw =}-1:0] sat_inc;
    always @(posedge clk) begin
        if (rst) begin
            sat_inc <= {= satw =}'d0;
            sat_count <= 32'd0;
        end else begin
            sat_inc <= {= sat_expr =};
            if (!busy && start_pulse) sat_count <= 32'd0;
            else sat_count <= sat_count + {= sat_ext =};
        end
    end

    {= regs =} u_regs (
        .clk(clk), .rst_n(!rst_sync[1]),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
        .idle(!busy), .busy(busy), .done(done), .fault({= fault =}), .cycles(cycles),
{% for c in reg_conns %}        .{= c.port =}({= c.expr =}),
{% endfor %}        .start_pulse(start_pulse), .soft_rst(soft_rst), .commit_pulse(commit_pulse),
        .wstage(wstage)
    );
    // SEQ_LEN is the LSTM's; a CNN run is SEQ_COUNT frames. No weight staging on a CNN device.
    wire unused_ok = &{1'b0, seq_len, commit_pulse, wstage{= unused_extra =}};
endmodule
