{= header =}
// Element-wise unit: four pre-activations {i, f, g, o} of one hidden unit per cycle in
// (feed_v, feed), its cell state read from and written back to the cell memory at `caddr`;
// c' = f*c + i*g (both products aligned exactly, rounded once to {= cell_fmt =}) and
// h' = o*tanh(c') (rounded once to {= data_fmt =}) come out {= lat =} advancing cycles later
// (v_out, h_out). Parallel sigmoid units for i, f, o and tanh units for g and c', each a
// {= act_lat =}-stage pipeline. Every stage is one multiply, one add, one rounding or one memory
// read: each requantization rounds at full width in one stage and saturates in the next (the
// one rounding and the one overflow step of partita_requant, in two cycles). The pipeline
// advances only with `adv`: six register copies of one advance, each the enable of its own
// group of flip-flops ([0] the datapath, [1]..[5] the units for i, f, g, o and tanh(c')), so no
// one net reaches every stage of the unit (on the single device all six are constant 1).
// c_clip / h_clip flag a saturated cell state / h value in the cycle its unit is at stage
// {= cs =} / at the output.
module {= name =} (
    input  wire                 clk,
    input  wire                 rst,
    input  wire [5:0]           adv,
    input  wire                 feed_v,
    input  wire [{= feed_w =}-1:0]  feed,
    input  wire [{= caw =}-1:0]   caddr,
    input  wire                 first_step,
    output wire                 v_out,
    output reg  [{= w.dw =}-1:0]   h_out,
    output reg                  c_clip,
    output reg                  h_clip
);
    reg [{= w.cell_w =}-1:0] cmem [0:{= cdepth =}-1];
    // Valid and cell address, one bit / word per stage (index = stage).
    reg [{= lat =}:1] v;
    reg [{= caw =}-1:0] ca [1:{= cs =}];
    // Stage 1: register the pre-activations, read the cell state.
    reg [{= w.pre_w =}-1:0] pi1, pf1, pg1, po1;
    reg [{= w.cell_w =}-1:0] c_q;
    // Stages 2..{= as_ =}: activations; the cell state and o ride alongside.
    wire [{= w.gw =}-1:0] i_a, f_a, g_a, o_a, tc_a;
    reg [{= w.cell_w =}-1:0] cd [2:{= as_ =}];
    reg [{= w.gw =}-1:0] od [{= ps =}:{= ts =}];
    {= sigmoid =} u_sig_i (.clk(clk), .adv(adv[1]), .x(pi1), .y(i_a));
    {= sigmoid =} u_sig_f (.clk(clk), .adv(adv[2]), .x(pf1), .y(f_a));
    {= tanh =} u_tanh_g (.clk(clk), .adv(adv[3]), .x(pg1), .y(g_a));
    {= sigmoid =} u_sig_o (.clk(clk), .adv(adv[4]), .x(po1), .y(o_a));
    // Stage {= ps =}: f*c and i*g; stage {= ss =}: their exact sum; stage {= rs =}: rounded at full width;
    // stage {= cs =}: c' saturated.
    reg [{= w.fc_w =}-1:0] fc_p;
    reg [{= w.ig_w =}-1:0] ig_p;
    reg [{= w.csum_w =}-1:0] csum;
    reg [{= w.cell_rw =}-1:0] c_rq;
    reg [{= w.cell_w =}-1:0] c_new;
    wire [{= w.cell_rw =}-1:0] c_round;
    wire [{= w.cell_w =}-1:0] c_fit;
    wire c_rclip, c_sat;
    partita_requant #(
        .IW({= w.csum_w =}), .SHR({= w.cell_shr =}), .SHL({= w.cell_shl =}), .OW({= w.cell_rw =}),
        .ROUND_NE({= w.round_ne =}), .SAT({= w.sat =})
    ) u_cell_rnd (.x(csum), .y(c_round), .clip(c_rclip));
    partita_requant #(
        .IW({= w.cell_rw =}), .SHR(0), .SHL(0), .OW({= w.cell_w =}),
        .ROUND_NE({= w.round_ne =}), .SAT({= w.sat =})
    ) u_cell (.x(c_rq), .y(c_fit), .clip(c_sat));
    // Stages after {= cs =} up to {= ts =}: tanh(c'); stage {= os =}: o*tanh(c'); stage {= hs =}: rounded at full
    // width; stage {= lat =}: h saturated.
    {= tanh_cell =} u_tanh_c (.clk(clk), .adv(adv[5]), .x(c_new), .y(tc_a));
    reg [{= w.oh_w =}-1:0] oh;
    reg [{= w.h_rw =}-1:0] h_rq;
    wire [{= w.h_rw =}-1:0] h_round;
    wire [{= w.dw =}-1:0] h_fit;
    wire h_rclip, h_sat;
    partita_requant #(
        .IW({= w.oh_w =}), .SHR({= w.h_shr =}), .SHL({= w.h_shl =}), .OW({= w.h_rw =}),
        .ROUND_NE({= w.round_ne =}), .SAT({= w.sat =})
    ) u_h_rnd (.x(oh), .y(h_round), .clip(h_rclip));
    partita_requant #(
        .IW({= w.h_rw =}), .SHR(0), .SHL(0), .OW({= w.dw =}),
        .ROUND_NE({= w.round_ne =}), .SAT({= w.sat =})
    ) u_h (.x(h_rq), .y(h_fit), .clip(h_sat));
    // Rounding alone never clips (its output is wide enough).
    wire unused_rclip = &{1'b0, c_rclip, h_rclip};
    assign v_out = v[{= lat =}];
    integer s;
    always @(posedge clk) begin
        if (rst) begin
            v <= {= lat =}'d0;
            c_clip <= 1'b0;
            h_clip <= 1'b0;
        end else if (adv[0]) begin
            v <= {v[{= lat_less1 =}:1], feed_v};
            c_clip <= v[{= rs =}] && c_sat;
            h_clip <= v[{= hs =}] && h_sat;
        end
        if (adv[0]) begin
            ca[1] <= caddr;
            for (s = 2; s <= {= cs =}; s = s + 1) ca[s] <= ca[s-1];
            {pi1, pf1, pg1, po1} <= feed;
            c_q <= cmem[caddr];
            cd[2] <= first_step ? {= w.cell_w =}'d0 : c_q;
            for (s = 3; s <= {= as_ =}; s = s + 1) cd[s] <= cd[s-1];
            od[{= ps =}] <= o_a;
            for (s = {= ps_plus1 =}; s <= {= ts =}; s = s + 1) od[s] <= od[s-1];
            fc_p <= {= w.fc_expr =};
            ig_p <= {= w.ig_expr =};
            csum <= {= w.fc_aligned =} + {= w.ig_aligned =};
            c_rq <= c_round;
            c_new <= c_fit;
            if (v[{= cs =}]) cmem[ca[{= cs =}]] <= c_new;
            oh <= {= w.oh_expr =};
            h_rq <= h_round;
            h_out <= h_fit;
        end
    end
endmodule
