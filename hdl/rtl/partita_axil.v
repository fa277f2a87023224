// partita library core: AXI4-Lite slave (32-bit data, 12-bit byte addresses) in front of a
// register decode. Every ready is a register, high while the channel is free (so no bus input
// reaches a bus output combinationally). The write address and data are taken independently,
// in the same cycle or not; the cycle after the later of the two, `we` pulses with the
// registered word address and data, and the decode, in its clocked process, registers whether
// it accepted it (`wok`, 0: refused). A read is taken when ARVALID meets ARREADY; the cycle
// after, `re` pulses with the registered word address; the decode has three cycles to register
// the word (`rdata_in`) and whether the address is readable (`rok`), so it can decode the
// address into a register first and pick the word in two more levels of registers. The write
// response (BVALID) follows one cycle after the write's decode edge, the read response
// (RVALID) four cycles after the read handshake: OKAY, or SLVERR for a refused access,
// which also increments `err_count` and sets `err_flag`; `clr_err` (soft reset) clears both.
// One write and one read are in flight at a time: a channel's ready rises again the cycle
// after its response has been taken.
// Decoding in clocked processes keeps the register multiplexers off every cycle's
// combinational path. WSTRB and the two low address bits are ignored: registers are written
// whole. The core resets on rst_n only.
`timescale 1ns / 1ps
module partita_axil (
    input  wire        clk,
    input  wire        rst_n,
    input  wire [11:0] s_axil_awaddr,
    input  wire        s_axil_awvalid,
    output wire        s_axil_awready,
    input  wire [31:0] s_axil_wdata,
    input  wire [3:0]  s_axil_wstrb,
    input  wire        s_axil_wvalid,
    output wire        s_axil_wready,
    output reg  [1:0]  s_axil_bresp,
    output reg         s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [11:0] s_axil_araddr,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output reg  [31:0] s_axil_rdata,
    output reg  [1:0]  s_axil_rresp,
    output reg         s_axil_rvalid,
    input  wire        s_axil_rready,
    // Register decode: it answers, registered, at the edge of `we` / `re`.
    output wire        we,
    output wire [9:0]  waddr,
    output wire [31:0] wdata,
    input  wire        wok,
    output wire        re,
    output wire [9:0]  raddr,
    input  wire [31:0] rdata_in,
    input  wire        rok,
    input  wire        clr_err,
    output reg  [31:0] err_count,
    output reg         err_flag
);
    // Each taken request is registered before the decode sees it, so the bus pins drive only
    // flip-flops: the decode's address compare and read multiplexer start from registers.
    reg wq, rq, rmid, rmid2, wpend, rpend;
    reg aw_rdy, w_rdy, ar_rdy, aw_ok, w_ok;
    reg [9:0] waddr_q, raddr_q;
    reg [31:0] wdata_q;
    wire aw_hs = s_axil_awvalid && aw_rdy;
    wire w_hs = s_axil_wvalid && w_rdy;
    wire aw_have = aw_ok || aw_hs;
    wire w_have = w_ok || w_hs;
    wire w_fire = aw_have && w_have;
    wire r_take = s_axil_arvalid && ar_rdy;
    wire w_free = !aw_ok && !w_ok && !wq && !wpend && !s_axil_bvalid;
    wire r_free = !rq && !rmid && !rmid2 && !rpend && !s_axil_rvalid;
    assign s_axil_awready = aw_rdy;
    assign s_axil_wready = w_rdy;
    assign s_axil_arready = ar_rdy;
    assign we = wq;
    assign waddr = waddr_q;
    assign wdata = wdata_q;
    assign re = rq;
    assign raddr = raddr_q;
    always @(posedge clk) begin
        if (aw_hs) waddr_q <= s_axil_awaddr[11:2];
        if (w_hs) wdata_q <= s_axil_wdata;
        if (r_take) raddr_q <= s_axil_araddr[11:2];
    end
    wire w_refused = wpend && !wok;
    wire r_refused = rpend && !rok;
    wire unused_axil = &{1'b0, s_axil_wstrb, s_axil_awaddr[1:0], s_axil_araddr[1:0]};
    always @(posedge clk) begin
        if (!rst_n) begin
            aw_rdy <= 1'b0;
            w_rdy <= 1'b0;
            ar_rdy <= 1'b0;
            aw_ok <= 1'b0;
            w_ok <= 1'b0;
            wq <= 1'b0;
            rq <= 1'b0;
            rmid <= 1'b0;
            rmid2 <= 1'b0;
            wpend <= 1'b0;
            rpend <= 1'b0;
            s_axil_bvalid <= 1'b0;
            s_axil_bresp <= 2'b00;
            s_axil_rvalid <= 1'b0;
            s_axil_rdata <= 32'd0;
            s_axil_rresp <= 2'b00;
            err_count <= 32'd0;
            err_flag <= 1'b0;
        end else begin
            // A ready falls with its handshake and rises once the channel is free again.
            aw_rdy <= aw_rdy ? !aw_hs : w_free;
            w_rdy <= w_rdy ? !w_hs : w_free;
            ar_rdy <= ar_rdy ? !r_take : r_free;
            aw_ok <= aw_have && !w_fire;
            w_ok <= w_have && !w_fire;
            wq <= w_fire;
            rq <= r_take;
            wpend <= wq;
            rmid <= rq;
            rmid2 <= rmid;
            rpend <= rmid2;
            if (s_axil_bvalid && s_axil_bready) s_axil_bvalid <= 1'b0;
            if (wpend) begin
                s_axil_bvalid <= 1'b1;
                s_axil_bresp <= wok ? 2'b00 : 2'b10;
            end
            if (s_axil_rvalid && s_axil_rready) s_axil_rvalid <= 1'b0;
            if (rpend) begin
                s_axil_rvalid <= 1'b1;
                s_axil_rresp <= rok ? 2'b00 : 2'b10;
                s_axil_rdata <= rok ? rdata_in : 32'd0;
            end
            if (clr_err) begin
                err_count <= 32'd0;
                err_flag <= 1'b0;
            end else if (w_refused || r_refused) begin
                err_count <= err_count + {31'd0, w_refused} + {31'd0, r_refused};
                err_flag <= 1'b1;
            end
        end
    end
endmodule
