{= header =}
// Element-wise unit: four pre-activations {i, f, g, o} of one hidden unit per cycle in
// (feed_v, feed), its cell state read from and written back to the cell memory at `caddr`;
// c' = f*c + i*g (both products aligned exactly, rounded once to {= cell_fmt =}) and
// h' = o*tanh(c') (rounded once to {= data_fmt =}) come out six cycles later (v6, h6). Parallel
// sigmoid units for i, f, o and tanh units for g and c'. The pipeline advances only with `adv`.
// c4_clip / h6_clip flag a saturated cell state / h value in the cycle of v4 / v6.
module {= name =} (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 adv,
    input  wire                 feed_v,
    input  wire [{= feed_w =}-1:0]  feed,
    input  wire [{= caw =}-1:0]   caddr,
    input  wire                 first_step,
    output reg                  v6,
    output reg  [{= w.dw =}-1:0]   h6,
    output reg                  c4_clip,
    output reg                  h6_clip
);
    reg [{= w.cell_w =}-1:0] cmem [0:{= cdepth =}-1];
    reg [{= caw =}-1:0] ca1, ca2, ca3, ca4;
    reg [{= w.pre_w =}-1:0] pi1, pf1, pg1, po1;
    reg [{= w.cell_w =}-1:0] c_q;
    reg [{= w.gw =}-1:0] i2, f2, g2, o2, o3, o4, o5;
    reg [{= w.cell_w =}-1:0] c2, c4;
    reg [{= w.fc_w =}-1:0] fc3;
    reg [{= w.ig_w =}-1:0] ig3;
    reg [{= w.gw =}-1:0] tc5;
    reg v1, v2, v3, v4, v5;
    wire [{= w.gw =}-1:0] act_i, act_f, act_g, act_o, act_tc;
    {= sigmoid =} u_sig_i (.x(pi1), .y(act_i));
    {= sigmoid =} u_sig_f (.x(pf1), .y(act_f));
    {= tanh =} u_tanh_g (.x(pg1), .y(act_g));
    {= sigmoid =} u_sig_o (.x(po1), .y(act_o));
    {= tanh_cell =} u_tanh_c (.x(c4), .y(act_tc));
    wire [{= w.csum_w =}-1:0] csum = {= w.fc_aligned =} + {= w.ig_aligned =};
    wire [{= w.cell_w =}-1:0] c_new;
    wire c_clip;
    partita_requant #(
        .IW({= w.csum_w =}), .SHR({= w.cell_shr =}), .SHL({= w.cell_shl =}), .OW({= w.cell_w =}),
        .ROUND_NE({= w.round_ne =}), .SAT({= w.sat =})
    ) u_cell (.x(csum), .y(c_new), .clip(c_clip));
    wire [{= w.oh_w =}-1:0] oh = {= w.oh_expr =};
    wire [{= w.dw =}-1:0] h_new;
    wire h_clip;
    partita_requant #(
        .IW({= w.oh_w =}), .SHR({= w.h_shr =}), .SHL({= w.h_shl =}), .OW({= w.dw =}),
        .ROUND_NE({= w.round_ne =}), .SAT({= w.sat =})
    ) u_h (.x(oh), .y(h_new), .clip(h_clip));
    always @(posedge clk) begin
        if (rst) begin
            v1 <= 1'b0; v2 <= 1'b0; v3 <= 1'b0; v4 <= 1'b0; v5 <= 1'b0; v6 <= 1'b0;
            c4_clip <= 1'b0; h6_clip <= 1'b0;
        end else if (adv) begin
            v1 <= feed_v;
            ca1 <= caddr;
            {pi1, pf1, pg1, po1} <= feed;
            c_q <= cmem[caddr];
            v2 <= v1; ca2 <= ca1;
            i2 <= act_i; f2 <= act_f; g2 <= act_g; o2 <= act_o;
            c2 <= first_step ? {= w.cell_w =}'d0 : c_q;
            v3 <= v2; ca3 <= ca2; o3 <= o2;
            fc3 <= {= w.fc_expr =};
            ig3 <= {= w.ig_expr =};
            v4 <= v3; ca4 <= ca3; o4 <= o3;
            c4 <= c_new;
            c4_clip <= v3 && c_clip;
            if (v4) cmem[ca4] <= c4;
            v5 <= v4; o5 <= o4;
            tc5 <= act_tc;
            v6 <= v5;
            h6 <= h_new;
            h6_clip <= v5 && h_clip;
        end
    end
endmodule
