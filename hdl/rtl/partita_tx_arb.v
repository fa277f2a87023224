// partita library core: link transmit port arbiter. Each of the NP tx ports is owned, from a
// frame's first beat to its tlast, by the framer (this device's own frames) or by one receive
// port forwarding a frame addressed elsewhere; a free port goes to a forwarding receive port
// first (lowest index wins), then to the framer. `fr_go` / `fwd_go[p]` say the offered beat
// leaves this cycle. `tx_beat[q]` marks a beat leaving port q, `tx_own[q]` that the framer owns
// it (for the TX_BEATS and FWD_BEATS counters).
`timescale 1ns / 1ps
module partita_tx_arb #(
    parameter integer NP = 1,
    parameter integer LW = 64
) (
    input  wire               clk,
    input  wire               rst,
    input  wire               fr_valid,
    input  wire [1:0]         fr_port,
    input  wire [LW-1:0]      fr_data,
    input  wire               fr_last,
    output wire               fr_go,
    input  wire [NP-1:0]      fwd_valid,
    input  wire [2*NP-1:0]    fwd_port,
    input  wire [LW*NP-1:0]   fwd_data,
    input  wire [NP-1:0]      fwd_last,
    output reg  [NP-1:0]      fwd_go,
    output wire [LW*NP-1:0]   tx_tdata,
    output wire [NP-1:0]      tx_tvalid,
    input  wire [NP-1:0]      tx_tready,
    output wire [NP-1:0]      tx_tlast,
    output wire [NP-1:0]      tx_beat,
    output wire [NP-1:0]      tx_own
);
    wire [NP-1:0] fr_go_q;
    wire [NP*NP-1:0] fwd_go_qp;
    genvar q, g;
    generate
        for (q = 0; q < NP; q = q + 1) begin : g_port
            localparam [1:0] Q = q;
            reg [1:0] own;  // 0 free, 1 framer, 2 + p receive port p
            reg v, l;
            reg [LW-1:0] d;
            integer pm, pa;
            always @* begin
                v = 1'b0;
                d = {LW{1'b0}};
                l = 1'b0;
                if (own == 2'd1) begin
                    v = fr_valid;
                    d = fr_data;
                    l = fr_last;
                end
                for (pm = 0; pm < NP; pm = pm + 1)
                    if (own == pm[1:0] + 2'd2) begin
                        v = fwd_valid[pm];
                        d = fwd_data[pm*LW +: LW];
                        l = fwd_last[pm];
                    end
            end
            assign tx_tvalid[q] = v;
            assign tx_tdata[q*LW +: LW] = d;
            assign tx_tlast[q] = l;
            assign tx_beat[q] = v && tx_tready[q];
            assign tx_own[q] = (own == 2'd1);
            assign fr_go_q[q] = (own == 2'd1) && tx_tready[q];
            for (g = 0; g < NP; g = g + 1) begin : g_fwd
                localparam [1:0] OWN = g + 2;
                assign fwd_go_qp[q*NP + g] = (own == OWN) && tx_tready[q] && fwd_valid[g];
            end
            always @(posedge clk) begin
                if (rst) begin
                    own <= 2'd0;
                end else if (own == 2'd0) begin
                    // Later assignments win: the framer has the lowest priority, port 0 the highest.
                    if (fr_valid && fr_port == Q) own <= 2'd1;
                    for (pa = NP - 1; pa >= 0; pa = pa - 1)
                        if (fwd_valid[pa] && fwd_port[2*pa +: 2] == Q) own <= pa[1:0] + 2'd2;
                end else if (v && tx_tready[q] && l) begin
                    own <= 2'd0;
                end
            end
        end
    endgenerate
    assign fr_go = |fr_go_q;
    integer pg, qg;
    always @* begin
        fwd_go = {NP{1'b0}};
        for (pg = 0; pg < NP; pg = pg + 1)
            for (qg = 0; qg < NP; qg = qg + 1)
                fwd_go[pg] = fwd_go[pg] | fwd_go_qp[qg*NP + pg];
    end
endmodule
