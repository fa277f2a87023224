{= header =}
// XDMA board wrapper for device {= me =} (module {= top =}): the device behind a Xilinx XDMA
// core (PG195) in AXI4-Stream mode. Not simulated by partita's tests against a real core and
// untested on hardware; `partita_xdma.tcl` builds the block design around it.
{% for d in doc %}// {= d =}
{% endfor %}module partita_xdma_top (
    (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF {= busifs =}, ASSOCIATED_RESET aresetn" *)
    input  wire        aclk,
    input  wire        aresetn,
    // AXI4-Lite from the XDMA core's M_AXI_LITE (the user BAR); the device decodes 12 bits.
    input  wire [31:0] s_axil_awaddr,
    input  wire [2:0]  s_axil_awprot,
    input  wire        s_axil_awvalid,
    output wire        s_axil_awready,
    input  wire [31:0] s_axil_wdata,
    input  wire [3:0]  s_axil_wstrb,
    input  wire        s_axil_wvalid,
    output wire        s_axil_wready,
    output wire [1:0]  s_axil_bresp,
    output wire        s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [31:0] s_axil_araddr,
    input  wire [2:0]  s_axil_arprot,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output wire [31:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output wire        s_axil_rvalid,
    input  wire        s_axil_rready,
    // Host to card, channel 0 (M_AXIS_H2C_0): the input stream.
    input  wire [{= dw_hi =}:0] s_axis_tdata,
    input  wire [{= kw_hi =}:0] s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    // Card to host, channel 0 (S_AXIS_C2H_0): the output stream.
    output wire [{= dw_hi =}:0] m_axis_tdata,
    output wire [{= kw_hi =}:0] m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast{% if link %},
    // Host to card, channel 1 (M_AXIS_H2C_1): frames the host relays to this device.
    input  wire [{= dw_hi =}:0] s_axis_link_tdata,
    input  wire [{= kw_hi =}:0] s_axis_link_tkeep,
    input  wire        s_axis_link_tvalid,
    output wire        s_axis_link_tready,
    input  wire        s_axis_link_tlast,
    // Card to host, channel 1 (S_AXIS_C2H_1): this device's frames for the host to relay.
    output wire [{= dw_hi =}:0] m_axis_link_tdata,
    output wire [{= kw_hi =}:0] m_axis_link_tkeep,
    output wire        m_axis_link_tvalid,
    input  wire        m_axis_link_tready,
    output wire        m_axis_link_tlast{% endif %}
);
    // The address bits above the device's 12 and the protection types are not decoded.
    wire unused_axil = &{1'b0, s_axil_awaddr[31:12], s_axil_awprot, s_axil_araddr[31:12], s_axil_arprot{% if link %}, s_axis_link_tkeep{% endif %}};
{% if link %}    // Link frames are whole beats: every byte kept.
    assign m_axis_link_tkeep = {{= kw =}{1'b1}};
{% endif %}    {= top =} u_dev (
{% for c in conns %}        .{= c.port =}({= c.signal =}){% if !loop.last %},{% endif %}
{% endfor %}    );
endmodule
