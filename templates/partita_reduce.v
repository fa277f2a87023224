{= header =}
// Partial-sum reduction of a finishing device: one memory per (source, gate) holds the
// full-width partial sums of the units this device finishes, each source writing its own in
// unit order (within a unit, in gate order over the source's gates); a source's values are
// committed when its frame passes every check (the local engine's at once). The finisher
// streams units out in slot order while the rows are still being issued: unit_ready says
// every source has committed the partials of the next unit (each source sends its units in
// order, so a count per source suffices), and `fin_go` takes it: the sources' partials of
// each gate are added at full width and rounded once into the pre-activation format (feed,
// {= fin_lat =} cycles later with feed_v; unit: its slot). `fin_start` begins a layer, `fin_clear`
// clears its counts after its last unit. Counts are not cleared by start: peers may send to
// a device not started yet. A reset clears them.{% if e > 1 %}
// {= e =} element-wise lanes: every memory is {= e =} banks, unit slot u in bank u mod {= e =}, and
// the finisher takes {= e =} consecutive units (a group, in one word of every bank) at once; feed
// carries lane j's four pre-activations at [j*{= feed_w =} +: {= feed_w =}].{% endif %}
module {= name =} (
    input  wire                   clk,
    input  wire                   rst,
    input  wire [{= layer_w =}-1:0] layer,
    // The local engine's partial sums for this device{% if ge %}: up to {= e =} units' four gates at a time,
    // unit 0's gate 0 in the low bits{% else if g4 %}: one unit's four gates at a time,
    // gate 0 in the low bits{% endif %}.
    input  wire                   local_en,
{% if overlap %}    // Layer 0's x-part sums (W_ih·x and bias, issued ahead of the h gather), the same way.
    input  wire                   local_x_en,
{% endif %}    input  wire [{= local_w =}-1:0]    local_data,
{% if ge %}    // Units in this write of the local data (1 to {= e =}), unit 0 in the low bits.
    input  wire [{= eq =}:0]           local_n,
{% endif %}
    // Received partial sums, per port: value, source, layer, and frame commits.
    input  wire [{= nports =}-1:0]    rv_p,
    input  wire [{= src_bits =}-1:0]   rv_src,
    input  wire [{= layer_bits =}-1:0] rv_layer,
    input  wire [{= data_bits =}-1:0] rv_data,
    input  wire [{= nports =}-1:0]    ok_p,
    input  wire [{= count_bits =}-1:0] rv_count,
    // Finishing: start a layer, take the next unit, clear the layer's counts.
    input  wire                   fin_start,
    input  wire                   fin_go,
    input  wire                   fin_clear,
    // The finisher's advance as its next value (the registered advance is 1 in reset).
    input  wire                   fadv_n,
    input  wire [{= unit_w =}-1:0]  f_slot,
    input  wire [{= paw =}-1:0]     pbase,
    output wire                   unit_ready,
    output reg                    feed_v,
    output wire [{= feed_all =}-1:0]   feed,
    output wire [{= pc_w =}-1:0]             pre_clips,
    output reg  [{= unit_w =}-1:0]  unit
);
    // Next gate after g in mask m: {wrapped, gate}.
    function [2:0] next_gate(input [3:0] m, input [1:0] g);
        reg [1:0] first;
        begin
            first = m[0] ? 2'd0 : (m[1] ? 2'd1 : (m[2] ? 2'd2 : 2'd3));
            case (g)
                2'd0: next_gate = m[1] ? 3'd1 : (m[2] ? 3'd2 : (m[3] ? 3'd3 : {1'b1, first}));
                2'd1: next_gate = m[2] ? 3'd2 : (m[3] ? 3'd3 : {1'b1, first});
                2'd2: next_gate = m[3] ? 3'd3 : {1'b1, first};
                default: next_gate = {1'b1, first};
            endcase
        end
    endfunction
{% for p in ports %}    wire [2:0] src_{= p =} = rv_src[{= p =}*3 +: 3];
    wire [{= layer_w =}-1:0] lay_{= p =} = rv_layer[{= p =}*{= layer_w =} +: {= layer_w =}];
    wire [{= accw =}-1:0] val_{= p =} = rv_data[{= p =}*{= accw =} +: {= accw =}];
    wire [6:0] cnt_{= p =} = rv_count[{= p =}*7 +: 7];
{% endfor %}    wire unused_in = &{1'b0, rv_p, ok_p, rv_src, rv_layer, rv_data, rv_count, local_data, local_en, layer};

{% for s in slots %}    // Source slot {= s.index =}: {% if s.xpart %}this device's layer-0 x-part sums{% else if s.local %}this device{% else %}device {= s.dev =}{% endif %}.
{% if e > 1 %}{% for g in gates %}{% for j in lanes %}    reg [{= accw =}-1:0] pm_{= s.index =}_{= g =}_{= j =} [0:{= bdepth =}-1];
{% endfor %}{% endfor %}{% else %}{% for g in gates %}    reg [{= accw =}-1:0] pm_{= s.index =}_{= g =} [0:{= pdepth =}-1];
{% endfor %}{% endif %}{% if !(s.local && (g4 || ge)) %}    reg [1:0] pw_gate_{= s.index =};
{% endif %}    reg [{= unit_w =}-1:0] pw_slot_{= s.index =};
    reg [{= cnt_w =}-1:0] pc_{= s.index =} [0:{= layers_n =}-1];
    reg [{= cnt_w =}-1:0] pw_k_{= s.index =}, pw_n_{= s.index =}, pu_{= s.index =}, need_{= s.index =};
    reg [3:0] pw_mask_{= s.index =}, cm_{= s.index =};
    reg [{= paw =}-1:0] pw_base_{= s.index =};
{% if s.local %}    wire pw_en_{= s.index =} = {% if s.xpart %}local_x_en{% else %}local_en{% endif %};
    wire [{= local_w =}-1:0] pw_data_{= s.index =} = local_data;
    wire [{= layer_w =}-1:0] pw_layer_{= s.index =} = layer;
{% else %}    wire pw_en_{= s.index =} = rv_p[{= s.port =}] && (src_{= s.port =} == 3'd{= s.dev =});
    wire [{= accw =}-1:0] pw_data_{= s.index =} = val_{= s.port =};
    wire [{= layer_w =}-1:0] pw_layer_{= s.index =} = lay_{= s.port =};
{% endif %}    // Where the source's values of layer pw_layer go, and how many it sends; what layer `layer`
    // expects per unit.
    always @* begin
        pw_mask_{= s.index =} = 4'd1;
        pw_base_{= s.index =} = {= paw =}'d0;
        pw_n_{= s.index =} = {= cnt_w =}'d1;
        pu_{= s.index =} = {= cnt_w =}'d0;
        cm_{= s.index =} = 4'd0;
        case (pw_layer_{= s.index =})
{% for c in s.layers %}            {= layer_w =}'d{= c.index =}: begin
                pw_mask_{= s.index =} = 4'b{= c.mask =};
                pw_base_{= s.index =} = {= paw =}'d{= c.pbase =};
                pw_n_{= s.index =} = {= cnt_w =}'d{= c.n =};
            end
{% endfor %}            default: ;
        endcase
        case (layer)
{% for c in s.layers %}            {= layer_w =}'d{= c.index =}: begin
                pu_{= s.index =} = {= cnt_w =}'d{= c.per_unit =};
                cm_{= s.index =} = 4'b{= c.mask =};
            end
{% endfor %}            default: ;
        endcase
    end
    wire first_{= s.index =} = (pw_k_{= s.index =} == {= cnt_w =}'d0);
    wire [{= unit_w =}-1:0] pw_cs_{= s.index =} = first_{= s.index =} ? {= unit_w =}'d0 : pw_slot_{= s.index =};
    wire [{= paw =}-1:0] pw_addr_{= s.index =} = pw_base_{= s.index =} + {= s.slot_ext =};
{% if s.local && ge %}    // A group of up to {= e =} units' four gates per write (local_n of them; unit j's gate g at
    // local_data[(4 j + g) * {= accw =}]): unit j goes to slot pw_slot + j, in bank
    // (pw_slot + j) mod {= e =}. pw_slot is the next write's slot, already 0 when that write
    // starts a layer, so no compare sits in front of the addresses; a bank's word is the
    // group's first word, plus one for the banks before the group's first bank. Every layer's
    // mask is 1111 (checked by the generator).
    wire unused_pw_{= s.index =} = &{1'b0, pw_mask_{= s.index =}, pw_addr_{= s.index =}, pw_cs_{= s.index =}};
    wire [{= cnt_w =}-1:0] pw_vals_{= s.index =} = {= ln_cnt =};
    wire pw_end_{= s.index =} = (pw_k_{= s.index =} + pw_vals_{= s.index =} == pw_n_{= s.index =});
    always @(posedge clk) begin
        if (rst) begin
            pw_slot_{= s.index =} <= {= unit_w =}'d0;
            pw_k_{= s.index =} <= {= cnt_w =}'d0;
        end else if (pw_en_{= s.index =}) begin
            pw_slot_{= s.index =} <= pw_end_{= s.index =} ? {= unit_w =}'d0 : pw_slot_{= s.index =} + {= ln_unit =};
            pw_k_{= s.index =} <= pw_end_{= s.index =} ? {= cnt_w =}'d0 : pw_k_{= s.index =} + pw_vals_{= s.index =};
        end
    end
    wire [{= paw =}-1:0] pg_addr_{= s.index =} = pw_base_{= s.index =} + {= s.slot_ext_g =};
    wire [{= eq =}-1:0] pg_lo_{= s.index =} = pw_slot_{= s.index =}[{= eq =}-1:0];
    wire unused_pg_{= s.index =} = &{1'b0, pg_addr_{= s.index =}[{= eq =}-1:0]};
{% for r in rot %}    // Bank {= r.b =}: the group's unit (bank - first bank) mod {= e =}, its word and gates.
    reg [{= eq =}-1:0] pj_{= s.index =}_{= r.b =};
    always @* begin
        pj_{= s.index =}_{= r.b =} = {= eq =}'d0;
        case (pg_lo_{= s.index =})
{% for it in r.items %}            {= eq =}'d{= it.0 =}: pj_{= s.index =}_{= r.b =} = {= eq =}'d{= it.1 =};
{% endfor %}            default: ;
        endcase
    end
{% if r.last %}    wire [{= paw_eq =}-1:0] pa_{= s.index =}_{= r.b =} = pg_addr_{= s.index =}[{= paw =}-1:{= eq =}];
{% else %}    wire [{= paw_eq =}-1:0] pa_{= s.index =}_{= r.b =} = pg_addr_{= s.index =}[{= paw =}-1:{= eq =}] + ((pg_lo_{= s.index =} > {= eq =}'d{= r.b =}) ? {= paw_eq =}'d1 : {= paw_eq =}'d0);
{% endif %}
    wire pe_{= s.index =}_{= r.b =} = pw_en_{= s.index =} && ({1'b0, pj_{= s.index =}_{= r.b =}} < local_n);
    reg [{= unit_acc_w =}-1:0] pd_{= s.index =}_{= r.b =};
    always @* begin
        pd_{= s.index =}_{= r.b =} = {= unit_acc_w =}'d0;
        case (pj_{= s.index =}_{= r.b =})
{% for j in lanes %}            {= eq =}'d{= j =}: pd_{= s.index =}_{= r.b =} = pw_data_{= s.index =}[{= j =}*{= unit_acc_w =} +: {= unit_acc_w =}];
{% endfor %}            default: ;
        endcase
    end
    always @(posedge clk) begin
        if (pe_{= s.index =}_{= r.b =}) begin
{% for g in gates %}            pm_{= s.index =}_{= g =}_{= r.b =}[pa_{= s.index =}_{= r.b =}] <= pd_{= s.index =}_{= r.b =}[{= g =}*{= accw =} +: {= accw =}];
{% endfor %}        end
    end
{% endfor %}{% else if s.local && g4 %}    // Four gates per write: every layer's mask is 1111 (checked by the generator).
    wire unused_pw_{= s.index =} = &{1'b0, pw_mask_{= s.index =}};
    always @(posedge clk) begin
        if (rst) begin
            pw_slot_{= s.index =} <= {= unit_w =}'d0;
            pw_k_{= s.index =} <= {= cnt_w =}'d0;
        end else if (pw_en_{= s.index =}) begin
            pw_slot_{= s.index =} <= pw_cs_{= s.index =} + {= unit_w =}'d1;
            pw_k_{= s.index =} <= (pw_k_{= s.index =} + {= cnt_w =}'d4 == pw_n_{= s.index =}) ? {= cnt_w =}'d0 : pw_k_{= s.index =} + {= cnt_w =}'d4;
        end
        if (pw_en_{= s.index =}) begin
{% if e > 1 %}            case (pw_addr_{= s.index =}[{= eq =}-1:0])
{% for j in lanes %}                {= eq =}'d{= j =}: begin
{% for g in gates %}                    pm_{= s.index =}_{= g =}_{= j =}[pw_addr_{= s.index =}[{= paw =}-1:{= eq =}]] <= pw_data_{= s.index =}[{= g =}*{= accw =} +: {= accw =}];
{% endfor %}                end
{% endfor %}            endcase
{% else %}{% for g in gates %}            pm_{= s.index =}_{= g =}[pw_addr_{= s.index =}] <= pw_data_{= s.index =}[{= g =}*{= accw =} +: {= accw =}];
{% endfor %}{% endif %}        end
    end
{% else %}    wire [2:0] pw_g0_{= s.index =} = next_gate(pw_mask_{= s.index =}, 2'd3);
    wire unused_pw_{= s.index =} = &{1'b0, pw_g0_{= s.index =}[2]};
    wire [1:0] pw_cg_{= s.index =} = first_{= s.index =} ? pw_g0_{= s.index =}[1:0] : pw_gate_{= s.index =};
    wire [2:0] pw_ng_{= s.index =} = next_gate(pw_mask_{= s.index =}, pw_cg_{= s.index =});
    always @(posedge clk) begin
        if (rst) begin
            pw_gate_{= s.index =} <= 2'd0;
            pw_slot_{= s.index =} <= {= unit_w =}'d0;
            pw_k_{= s.index =} <= {= cnt_w =}'d0;
        end else if (pw_en_{= s.index =}) begin
            pw_gate_{= s.index =} <= pw_ng_{= s.index =}[1:0];
            pw_slot_{= s.index =} <= pw_cs_{= s.index =} + {= s.wrap_ext =};
            pw_k_{= s.index =} <= (pw_k_{= s.index =} + {= cnt_w =}'d1 == pw_n_{= s.index =}) ? {= cnt_w =}'d0 : pw_k_{= s.index =} + {= cnt_w =}'d1;
        end
        if (pw_en_{= s.index =}) begin
{% if e > 1 %}            case ({pw_addr_{= s.index =}[{= eq =}-1:0], pw_cg_{= s.index =}})
{% for c in cols %}                {= eq2 =}'d{= c.col =}: pm_{= s.index =}_{= c.g =}_{= c.j =}[pw_addr_{= s.index =}[{= paw =}-1:{= eq =}]] <= pw_data_{= s.index =};
{% endfor %}                default: ;
            endcase
{% else %}            case (pw_cg_{= s.index =})
{% for g in gates %}                2'd{= g =}: pm_{= s.index =}_{= g =}[pw_addr_{= s.index =}] <= pw_data_{= s.index =};
{% endfor %}            endcase
{% endif %}        end
    end
{% endif %}    // Committed counts per layer: the local engine's at once, a port's at its frame's trailer.
    always @(posedge clk) begin
        if (rst) begin
{% for c in s.layers_all %}            pc_{= s.index =}[{= c =}] <= {= cnt_w =}'d0;
{% endfor %}        end else begin
{% if s.local %}            if (pw_en_{= s.index =}) pc_{= s.index =}[layer] <= pc_{= s.index =}[layer] + {% if ge %}pw_vals_{= s.index =}{% else %}{= cnt_w =}'d{% if g4 %}4{% else %}1{% endif %}{% endif %};
{% else %}            if (ok_p[{= s.port =}] && src_{= s.port =} == 3'd{= s.dev =}) pc_{= s.index =}[lay_{= s.port =}] <= pc_{= s.index =}[lay_{= s.port =}] + {= s.count_ext =};
{% endif %}            if (fin_clear) pc_{= s.index =}[layer] <= {= cnt_w =}'d0;
        end
    end
{% if e > 1 %}    // The count the next group needs: {= e =} units' values more for each group taken.
    always @(posedge clk) begin
        if (fin_start) need_{= s.index =} <= pu_{= s.index =} << {= eq =};
        else if (fin_go && fadv) need_{= s.index =} <= need_{= s.index =} + (pu_{= s.index =} << {= eq =});
    end
{% else %}    // The count the next unit needs: one unit's values more for each unit taken.
    always @(posedge clk) begin
        if (fin_start) need_{= s.index =} <= pu_{= s.index =};
        else if (fin_go && fadv) need_{= s.index =} <= need_{= s.index =} + pu_{= s.index =};
    end
{% endif %}
{% endfor %}    assign unit_ready = 1'b1{% for s in slots %} && (pc_{= s.index =}[layer] >= need_{= s.index =}){% endfor %};

    // Sum and round: read every slot's partials of the {% if e > 1 %}group{% else %}unit{% endif %} (stage 1 address, stage 2 read, block
    // RAMs), put each in a fabric register, masked by the layer's gates (stage F), add them
    // two at a time at full width ({= sum_levels =} registered level(s), the last one psum), round (rnd),
    // then saturate (feed): feed_v comes {= fin_lat =} cycles after fin_go.
    reg [{= fin_stages =}-1:0] fv;
    // The advance in register copies set from its next value (equal in every cycle, 1 in
    // reset): fadv for the control (stage flags, addresses, slots, needed counts) and one per
    // lane and gate (column 4 j + g) for that column's partial, sum, rounding and saturation
    // registers, so no one flip-flop enables the whole finisher.
    wire fadv;
    partita_rep #(.W(1), .RST_VAL(1'b1)) u_adv (.clk(clk), .rst(rst), .d(fadv_n), .q(fadv));
    wire [{= cols.len() =}-1:0] fadv_c;
    genvar g_col;
    generate
        for (g_col = 0; g_col < {= cols.len() =}; g_col = g_col + 1) begin : g_adv
            partita_rep #(.W(1), .RST_VAL(1'b1)) u_rep (.clk(clk), .rst(rst), .d(fadv_n), .q(fadv_c[g_col]));
        end
    endgenerate
{% if e > 1 %}    wire [{= paw =}-1:0] f_next = pbase + {= fslot_ext =};
    reg [{= paw =}-{= eq =}-1:0] f_addr;
{% else %}    reg [{= paw =}-1:0] f_addr;
{% endif %}    reg [{= unit_w =}-1:0] fs [0:{= fin_stages =}-1];
    integer fi;
    wire unused_fs = &{1'b0, f_addr, fin_clear, fin_start{% if e > 1 %}, f_next[{= eq =}-1:0]{% endif %}};
{% for s in slots %}{% for g in gates %}{% for l in lane_sfx %}    reg [{= accw =}-1:0] pq_{= s.index =}_{= g =}{= l.s =}, pf_{= s.index =}_{= g =}{= l.s =};
{% endfor %}{% endfor %}{% endfor %}{% for t in sum_tree %}    reg [{= t.width =}-1:0] {= t.name =};
{% endfor %}{% for l in lane_sfx %}{% for g in gates %}    reg [{= psum_w =}-1:0] psum_{= g =}{= l.s =};
    wire [{= rnd_w =}-1:0] rnd_{= g =}{= l.s =};
    wire rclip_{= g =}{= l.s =};
    partita_requant #(
        .IW({= psum_w =}), .SHR({= pre_shr =}), .SHL({= pre_shl =}), .OW({= rnd_w =}),
        .ROUND_NE({= round_ne =}), .SAT({= sat =})
    ) u_rnd_{= g =}{= l.s =} (.x(psum_{= g =}{= l.s =}), .y(rnd_{= g =}{= l.s =}), .clip(rclip_{= g =}{= l.s =}));
    reg [{= rnd_w =}-1:0] rr_{= g =}{= l.s =};
    wire [{= pre_w =}-1:0] pre_{= g =}{= l.s =};
    wire pclip_{= g =}{= l.s =};
    partita_requant #(
        .IW({= rnd_w =}), .SHR(0), .SHL(0), .OW({= pre_w =}),
        .ROUND_NE({= round_ne =}), .SAT({= sat =})
    ) u_pre_{= g =}{= l.s =} (.x(rr_{= g =}{= l.s =}), .y(pre_{= g =}{= l.s =}), .clip(pclip_{= g =}{= l.s =}));
    reg [{= pre_w =}-1:0] feed_{= g =}{= l.s =};
    reg fclip_{= g =}{= l.s =};
{% endfor %}{% endfor %}    // (The rounding step widens, so only the saturation step clips.)
    wire unused_rclip = &{1'b0{% for l in lane_sfx %}{% for g in gates %}, rclip_{= g =}{= l.s =}{% endfor %}{% endfor %}};
    always @(posedge clk) begin
        if (rst) begin
            fv <= {= fin_stages =}'d0;
            feed_v <= 1'b0;
        end else if (fadv) begin
            fv <= {fv[{= fin_hi =}:0], fin_go};
            feed_v <= fv[{= fin_stages =}-1];
        end
        if (fadv) begin
{% if e > 1 %}            f_addr <= f_next[{= paw =}-1:{= eq =}];
{% else %}            f_addr <= pbase + {= fslot_ext =};
{% endif %}            fs[0] <= f_slot;
            for (fi = 1; fi < {= fin_stages =}; fi = fi + 1) fs[fi] <= fs[fi-1];
            unit <= fs[{= fin_stages =}-1];
        end
{% for s in slots %}{% for c in cols_by_gate %}        if (fadv_c[{= c.col =}]) begin
            pq_{= s.index =}_{= c.g =}{= c.s =} <= pm_{= s.index =}_{= c.g =}{= c.s =}[f_addr];
            pf_{= s.index =}_{= c.g =}{= c.s =} <= cm_{= s.index =}[{= c.g =}] ? pq_{= s.index =}_{= c.g =}{= c.s =} : {= accw =}'d0;
        end
{% endfor %}{% endfor %}{% for t in sum_tree %}        if (fadv_c[{= t.col =}]) {= t.name =} <= {= t.expr =};
{% endfor %}{% for c in cols %}        if (fadv_c[{= c.col =}]) begin
            psum_{= c.g =}{= c.s =} <= {= c.psum =};
            rr_{= c.g =}{= c.s =} <= rnd_{= c.g =}{= c.s =};
            feed_{= c.g =}{= c.s =} <= pre_{= c.g =}{= c.s =};
            fclip_{= c.g =}{= c.s =} <= fv[{= fin_stages =}-1] && pclip_{= c.g =}{= c.s =};
        end
{% endfor %}    end
    assign feed = {{% for l in lane_sfx_rev %}feed_0{= l.s =}, feed_1{= l.s =}, feed_2{= l.s =}, feed_3{= l.s =}{% if !loop.last %}, {% endif %}{% endfor %}};
    assign pre_clips = {= clips_sum =};
endmodule
