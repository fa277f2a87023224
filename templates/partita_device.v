{= header =}
// partita multi-device LSTM system: device {= me =} of {= ndev =} ({= topology =} topology, {= lw =}-bit
// links). Its hardware is node design {= node =} (shared by devices {= members =}) with this
// device's identity, dev_id = {= me =} (module {= ident =} holds what that selects); devices of
// one node design differ only in that tie-off and in their memory images.
module {= top =} #(
    // $readmemh files, one per engine memory; override with full paths if needed.
{% for e in engine_list %}{% for c in wsuffix %}    parameter WEIGHTS_E{= e =}{= c.0 =} = "weights_e{= e =}{= c.1 =}.hex",
{% endfor %}    parameter BIAS_E{= e =} = "bias_e{= e =}.hex"{% if !loop.last %},{% endif %}
{% endfor %}) (
    input  wire        clk,
    input  wire        rst_n,
    // AXI4-Lite slave (regmap.json, partita_regs.h).
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
{% for p in ports %}    // Link port {= p.index =}: {= p.doc =}
    output wire [{= lw =}-1:0] l{= p.index =}_tx_tdata,
    output wire        l{= p.index =}_tx_tvalid,
    input  wire        l{= p.index =}_tx_tready,
    output wire        l{= p.index =}_tx_tlast,
    input  wire [{= lw =}-1:0] l{= p.index =}_rx_tdata,
    input  wire        l{= p.index =}_rx_tvalid,
    output wire        l{= p.index =}_rx_tready,
    input  wire        l{= p.index =}_rx_tlast,
{% endfor %}    // AXI4-Stream input: x_t, {= input_size =} values per timestep, {= s.p =} per {= s.sb =}-bit beat.{% if !needs_x %}
    // This device holds no layer-0 x columns and ignores it.{% endif %}
    input  wire [{= s.sb =}-1:0] s_axis_tdata,
    input  wire [{= s.kw =}-1:0] s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    // AXI4-Stream output: {= n_out =} h values per timestep (units {= out_u0 =}..), packed the same way.
    output wire [{= s.sb =}-1:0] m_axis_tdata,
    output wire [{= s.kw =}-1:0] m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);
    {= node =} #(
{% for e in engine_list %}{% for c in wsuffix %}        .WEIGHTS_E{= e =}{= c.0 =}(WEIGHTS_E{= e =}{= c.0 =}),
{% endfor %}        .BIAS_E{= e =}(BIAS_E{= e =}){% if !loop.last %},{% endif %}
{% endfor %}    ) u_node (
        .dev_id(3'd{= me =}), .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
{% for p in ports %}        .l{= p.index =}_tx_tdata(l{= p.index =}_tx_tdata), .l{= p.index =}_tx_tvalid(l{= p.index =}_tx_tvalid), .l{= p.index =}_tx_tready(l{= p.index =}_tx_tready),
        .l{= p.index =}_tx_tlast(l{= p.index =}_tx_tlast), .l{= p.index =}_rx_tdata(l{= p.index =}_rx_tdata), .l{= p.index =}_rx_tvalid(l{= p.index =}_rx_tvalid),
        .l{= p.index =}_rx_tready(l{= p.index =}_rx_tready), .l{= p.index =}_rx_tlast(l{= p.index =}_rx_tlast),
{% endfor %}        .s_axis_tdata(s_axis_tdata), .s_axis_tkeep(s_axis_tkeep), .s_axis_tvalid(s_axis_tvalid),
        .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast),
        .m_axis_tdata(m_axis_tdata), .m_axis_tkeep(m_axis_tkeep), .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast)
    );
endmodule
