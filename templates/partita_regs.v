{= header =}
// AXI4-Lite register map of this device (regmap.json, partita_regs.h), decoded from the one
// register table (partita_hdl::regs). The AXI4-Lite protocol, SLVERR responses and the
// refused-access count are the library core partita_axil. Start (CTRL bit 0) and weight
// commits are refused while the device is not idle; soft reset (CTRL bit 1) always goes.
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
    // Device state: STATUS = {error, done, busy}; `fault` also raises STATUS.error.
    input  wire        idle,
    input  wire        busy,
    input  wire        done,
    input  wire        fault,
    input  wire [63:0] cycles,
{% for p in inputs %}    input  wire [31:0] {= p =},
{% endfor %}    // Commands and settings.
    output reg         start_pulse,
    output reg         soft_rst,
    output reg         commit_pulse,
{% for r in rws %}    output reg  [31:0] {= r.port =},
{% endfor %}    output reg  [{= wstage_w =}-1:0] wstage
);
    wire we, re, err_flag;
    wire [9:0] waddr_w, raddr;
    wire [31:0] wdata, err_count;
    reg wok, rok;
    reg [31:0] rdata;
    // Reads in three steps (the core waits for them): the address decoded into one flip-flop
    // per readable register, then an AND-OR of the registers whose flag is set in groups of
    // four, each group a register, then the word as the OR of the groups. No address compare
    // and no wide multiplexer share a cycle.
    reg [{= reads.len() =}-1:0] rhit;
    reg [{= rgrp_w =}-1:0] rgrp;
    reg rok1;
    always @(posedge clk) begin
        if (!rst_n) begin
            rhit <= {= reads.len() =}'d0;
            rgrp <= {= rgrp_w =}'d0;
            rok1 <= 1'b0;
            rok <= 1'b0;
            rdata <= 32'd0;
        end else begin
            if (re) begin
{% for r in reads %}                rhit[{= loop.index0 =}] <= (raddr == 10'h{= r.index =});
{% endfor %}            end
            rok1 <= |rhit;
            rok <= rok1;
{% for g in rgroups %}            rgrp[{= g.lo =} +: 32] <= {% for t in g.terms %}({32{rhit[{= t.0 =}]}} & ({= t.1 =})){% if !loop.last %}
                | {% endif %}{% endfor %};
{% endfor %}            rdata <= {% for g in rgroups %}rgrp[{= g.lo =} +: 32]{% if !loop.last %} | {% endif %}{% endfor %};
        end
    end
    partita_axil u_axil (
        .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
        .we(we), .waddr(waddr_w), .wdata(wdata), .wok(wok), .re(re), .raddr(raddr),
        .rdata_in(rdata), .rok(rok), .clr_err(soft_rst), .err_count(err_count), .err_flag(err_flag)
    );
    // Writes in two steps as well: the address decoded into one flip-flop per register or
    // weight-staging word (whit), the data registered beside it; the register loads at the
    // next edge, the one at which the core raises BVALID. No address compare sits in front of
    // the registers' enables, which spread over the device. Commands (start, soft reset,
    // commit) and whether the write is accepted (`wok`) are decided at the first edge.
    reg [{= nwhit =}-1:0] whit;
    reg [31:0] wdata_q;
    always @(posedge clk) begin
        if (!rst_n) begin
            whit <= {= nwhit =}'d0;
        end else begin
{% for r in rws %}            whit[{= r.hit =}] <= we && (waddr_w == 10'h{= r.index =});
{% endfor %}{% for w in wdata %}            whit[{= w.hit =}] <= we && (waddr_w == 10'h{= w.index =});
{% endfor %}        end
        wdata_q <= wdata;
    end
    // The decode, in the clocked process (the core answers a cycle later).
    always @(posedge clk) begin
        start_pulse <= 1'b0;
        soft_rst <= 1'b0;
        commit_pulse <= 1'b0;
        if (!rst_n) begin
{% for r in rws %}            {= r.port =} <= 32'h{= r.reset =};
{% endfor %}            wstage <= {= wstage_w =}'d0;
            wok <= 1'b0;
        end else begin
            if (we) begin
                wok <= 1'b1;
                case (waddr_w)
                    10'h{= ctrl =}: begin
                        if (wdata[1]) soft_rst <= 1'b1;
                        else if (wdata[0]) begin
                            if (idle) start_pulse <= 1'b1;
                            else wok <= 1'b0;
                        end
                    end
{% if !commit.is_empty() %}                    10'h{= commit =}: begin
                        if (idle) commit_pulse <= 1'b1;
                        else wok <= 1'b0;
                    end
{% endif %}{% for r in rws %}                    10'h{= r.index =}: ;
{% endfor %}{% for w in wdata %}                    10'h{= w.index =}: ;
{% endfor %}                    default: wok <= 1'b0;
                endcase
            end
{% for r in rws %}            if (whit[{= r.hit =}]) {= r.port =} <= wdata_q;
{% endfor %}{% for w in wdata %}            if (whit[{= w.hit =}]) wstage[{= w.word =}*32 +: 32] <= wdata_q;
{% endfor %}        end
    end
endmodule
