{= header =}
// Place-and-route harness for device {= me =} (module {= top =}); not part of the device's RTL.
// `partita synth --loop-links` builds it in place of the device's top so that the link ports,
// which a board would connect to transceivers rather than general-purpose pads, do not take
// {= link_pins =} I/O pins: each port's transmitted data, valid and last return to its own receive
// side through one register stage (as a transceiver's PCS registers them). Each port's two
// readies stay on pins, as do clk, rst_n, AXI4-Lite and AXI4-Stream.
module {= name =} (
    input  wire        clk,
    input  wire        rst_n,
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
{% for p in ports %}    input  wire        l{= p =}_tx_tready,
    output wire        l{= p =}_rx_tready,
{% endfor %}    input  wire [{= sb =}-1:0] s_axis_tdata,
    input  wire [{= kw =}-1:0] s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    output wire [{= sb =}-1:0] m_axis_tdata,
    output wire [{= kw =}-1:0] m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);
{% for p in ports %}    wire [{= lw =}-1:0] l{= p =}_td;
    wire        l{= p =}_tv;
    wire        l{= p =}_tl;
    reg  [{= lw =}-1:0] l{= p =}_rd = {{= lw =}{1'b0}};
    reg         l{= p =}_rv = 1'b0;
    reg         l{= p =}_rl = 1'b0;
    always @(posedge clk) begin
        l{= p =}_rd <= l{= p =}_td;
        l{= p =}_rv <= l{= p =}_tv;
        l{= p =}_rl <= l{= p =}_tl;
    end
{% endfor %}    {= top =} u_dev (
        .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
{% for p in ports %}        .l{= p =}_tx_tdata(l{= p =}_td), .l{= p =}_tx_tvalid(l{= p =}_tv), .l{= p =}_tx_tready(l{= p =}_tx_tready),
        .l{= p =}_tx_tlast(l{= p =}_tl), .l{= p =}_rx_tdata(l{= p =}_rd), .l{= p =}_rx_tvalid(l{= p =}_rv),
        .l{= p =}_rx_tready(l{= p =}_rx_tready), .l{= p =}_rx_tlast(l{= p =}_rl),
{% endfor %}        .s_axis_tdata(s_axis_tdata), .s_axis_tkeep(s_axis_tkeep), .s_axis_tvalid(s_axis_tvalid),
        .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast),
        .m_axis_tdata(m_axis_tdata), .m_axis_tkeep(m_axis_tkeep), .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast)
    );
endmodule
