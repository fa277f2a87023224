{= header =}
// partita CNN device: input {= in_c =}x{= in_h =}x{= in_w =} -> output {= out_vals =} value(s) per frame, {= nstages =} streaming
// stage(s) ({= stage_doc =}), {= mults =} multiplier(s). AXI4-Lite control (regmap.json, partita_regs.h): SEQ_COUNT frames per run,
// started by CTRL.start. AXI4-Stream frames in and out, in (y, x, c) order, {= in_p =} value(s) per
// {= in_sb =}-bit input beat and {= out_p =} per {= out_sb =}-bit output beat; a frame starts a beat, its last beat has
// tlast (partita_hdl::stream). Stages pass values with valid/ready and never stall inside:
// frames follow each other with no gap, at the pace of the slowest stage ({= cpf =} cycles per frame).
module {= top =} #(
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
    // AXI4-Stream input: {= in_vals =} values per frame.
    input  wire [{= in_sb =}-1:0] s_axis_tdata,
    input  wire [{= in_kw =}-1:0] s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    // AXI4-Stream output: {= out_vals =} values per frame.
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
    wire in_open = busy && (in_frames != seq_count);

    // Input: unpacked to one value per cycle{% if relu_in %}, ReLU applied{% endif %}.
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

    // The stages.
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
    // Output: packed, {= out_p =} value(s) per beat, each sign-extended to its {= out_vb =}-bit slot.
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

    // Run control, frame counts and the cycle count.
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

    // Saturations: this cycle's clips summed into a small register first.
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
        .idle(!busy), .busy(busy), .done(done), .fault(1'b0), .cycles(cycles),
{% for c in reg_conns %}        .{= c.port =}({= c.expr =}),
{% endfor %}        .start_pulse(start_pulse), .soft_rst(soft_rst), .commit_pulse(commit_pulse),
        .wstage(wstage)
    );
    // SEQ_LEN is the LSTM's; a CNN run is SEQ_COUNT frames. No weight staging on a CNN device.
    wire unused_ok = &{1'b0, seq_len, commit_pulse, wstage, x_last, x_run_beat, x_run_avail{= unused_extra =}};
endmodule
