{= header =}
// partita CNN stage: layer {= layer =} ({= kind =}), input {= in_c =}x{= in_h =}x{= in_w =} -> output {= out_c =}x{= out_h =}x{= out_w =}, {= doc =}.
// Values arrive one per cycle in (y, x, c) order into a line buffer of {= rows =} rows ({= depth =} words,
// {= copies =} cop{% if copies == 1 %}y{% else %}ies, one per read port{% endif %}); a row's slot is reused once the last read of the output row that
// needed it has left the read stage. Zero padding is an address check. Results leave one per
// cycle in (y, x, c) order through a FIFO of {= dg =} entries that the issue side reserves before it
// starts an entry, so the pipeline never stalls.
module {= name =}{% if !pool %} #(
{% for e in engines %}    parameter WEIGHTS_E{= e =} = "{= mem_prefix =}_w{= e =}.hex",
    parameter BIAS_E{= e =} = "{= mem_prefix =}_b{= e =}.hex"{% if !loop.last %},{% endif %}
{% endfor %}){% endif %} (
    input  wire            clk,
    input  wire            rst,
    input  wire [{= dwi =}-1:0] s_data,
    input  wire            s_valid,
    output wire            s_ready,
    output wire [{= dwo =}-1:0] m_data,
    output wire            m_valid,
    input  wire            m_ready,
    // Values of this cycle that the overflow mode acted on.
    output wire [{= clw =}-1:0] clips
);
    // ------------------------------------------------------------------ line buffer
    reg [{= aw =}-1:0] waddr;
    reg [{= wcw =}-1:0] wpos;
    // Complete rows written, and the lowest row still needed plus the rows held (the first
    // row that may not be written yet), counted across frames. Whether the row being written
    // has a free slot is a register, computed from both counts' next values, so the input's
    // ready is a flip-flop.
    reg [31:0] gw, lim;
    reg w_room;
    wire lim_set;
    wire [31:0] lim_to;
    assign s_ready = w_room;
    wire we = s_valid && w_room;
    wire row_done = we && (wpos == {= wcw =}'d{= wc_last =});
    wire [31:0] gw_next = gw + {31'd0, row_done};
    wire [31:0] lim_next = lim_set ? lim_to : lim;
    always @(posedge clk) begin
        if (rst) begin
            lim <= 32'd{= rows =};
            w_room <= 1'b1;
        end else begin
            lim <= lim_next;
            w_room <= (gw_next < lim_next);
        end
    end
    always @(posedge clk) begin
        if (rst) begin
            waddr <= {= aw =}'d0;
            wpos <= {= wcw =}'d0;
            gw <= 32'd0;
        end else if (we) begin
            waddr <= (waddr == {= aw =}'d{= depth_last =}) ? {= aw =}'d0 : waddr + {= aw =}'d1;
            if (wpos == {= wcw =}'d{= wc_last =}) begin
                wpos <= {= wcw =}'d0;
                gw <= gw + 32'd1;
            end else begin
                wpos <= wpos + {= wcw =}'d1;
            end
        end
    end
    // Read addresses and data of every copy.
    wire [{= copies =}*{= aw =}-1:0] raddr;
    wire [{= copies =}*{= dwi =}-1:0] rdata;
    genvar gi;
    generate
        for (gi = 0; gi < {= copies =}; gi = gi + 1) begin : g_copy
            reg [{= dwi =}-1:0] mem [0:{= depth_last =}];
            reg [{= dwi =}-1:0] rd;
            always @(posedge clk) begin
                if (we) mem[waddr] <= s_data;
                rd <= mem[raddr[gi*{= aw =} +: {= aw =}]];
            end
            assign rdata[gi*{= dwi =} +: {= dwi =}] = rd;
        end
    endgenerate

    // Slot -> first word of its row.
    function [{= aw =}-1:0] rowbase;
        input [{= slw =}-1:0] slot;
        begin
            case (slot)
{% for r in rowbases %}                {= slw =}'d{= r.0 =}: rowbase = {= aw =}'d{= r.1 =};
{% endfor %}                default: rowbase = {= aw =}'d0;
            endcase
        end
    endfunction

    // ------------------------------------------------------------------ issue
    // Output pixel (oy, ox); its window's first row and column iy0 = oy*S - P, ix0 = ox*S - P,
    // the slot of row iy0, and xc0 = ix0 * C; frame base row fbase.
    reg [{= oyw =}-1:0] oy;
    reg [{= oxw =}-1:0] ox;
    reg signed [{= iyw =}-1:0] iy0;
    reg signed [{= ixw =}-1:0] ix0;
    reg signed [{= xcw =}-1:0] xc0;
    reg [{= slw =}-1:0] slot0;
    reg [31:0] fbase;
{% if pool %}    // Channel, window position.
    reg [{= cw =}-1:0] ch;
    reg [{= kw =}-1:0] ky, kx;
    wire i_first = (ky == {= kw =}'d0) && (kx == {= kw =}'d0);
    wire i_last = (ky == {= kw =}'d{= k_last =}) && (kx == {= kw =}'d{= k_last =});
    wire i_pixel_end = i_last && (ch == {= cw =}'d{= c_last =});
{% else %}    // Output-channel group and CSB slice.
    reg [{= gw_w =}-1:0] grp;
    reg [{= jw =}-1:0] slice;
    reg [{= waw =}-1:0] wa;
    wire i_first = (slice == {= jw =}'d0);
    wire i_last = (slice == {= jw =}'d{= nnz_last =});
    wire i_pixel_end = i_last && (grp == {= gw_w =}'d{= groups_last =});
{% endif %}    wire i_row_end = i_pixel_end && (ox == {= oxw =}'d{= out_w_last =});
    wire i_frame_end = i_row_end && (oy == {= oyw =}'d{= out_h_last =});
    // The rows this output row reads must be complete: up to min(H-1, iy0+K-1) of this frame,
    // kept as a row count across frames in a register `need` (none when the window lies in the
    // top padding), set as the row begins from a value computed a row ahead (`hn`: the next
    // row's), so the issue meets one compare with the written-row count.
    reg [31:0] need;
    reg need_none, hn_none;
    reg [{= iyw =}-1:0] hn;
    wire signed [{= iyw =}-1:0] nx = iy0 + {= iyw =}'sd{= s2k =};
    wire [{= iyw =}-1:0] nx_cl = (nx > {= iyw =}'sd{= in_h_last =}) ? {= iyw =}'d{= in_h_last =} : nx;
    wire row_ok = need_none || (gw > need);
    // What this output row frees once read: rows below the next window's first row (plus the
    // rows held: the first row that may not be written yet).
    wire signed [{= iyw =}-1:0] next_lo = iy0 + {= iyw =}'sd{= s =};
    wire [31:0] free_to = i_frame_end ? fbase + 32'd{= in_h_rows =}
        : fbase + 32'd{= rows =} + (next_lo[{= iyw =}-1] ? 32'd0 : {{= pad_iy =}'d0, next_lo});
    // FIFO entries not yet reserved.
    reg [{= crw =}-1:0] credits;
    wire pop_done;
    wire issue = row_ok && (!i_first || (credits != {= crw =}'d0));
    wire [{= slw =}-1:0] slot_s = slot0 + {= slw =}'d{= s_mod =};
    wire [{= slw =}-1:0] slot_f = slot0 + {= slw =}'d{= delta_mod =};
    always @(posedge clk) begin
        if (rst) begin
            oy <= {= oyw =}'d0;
            ox <= {= oxw =}'d0;
            iy0 <= -{= iyw =}'sd{= pt =};
            ix0 <= -{= ixw =}'sd{= p =};
            xc0 <= -{= xcw =}'sd{= pc =};
            slot0 <= {= slw =}'d{= slot_init =};
            fbase <= 32'd0;
            need <= 32'd{= c0 =};
            need_none <= 1'b{= none0 =};
            hn <= {= iyw =}'d{= hn0 =};
            hn_none <= 1'b{= hn0_none =};
{% if pool %}            ch <= {= cw =}'d0;
            ky <= {= kw =}'d0;
            kx <= {= kw =}'d0;
{% else %}            grp <= {= gw_w =}'d0;
            slice <= {= jw =}'d0;
            wa <= {= waw =}'d0;
{% endif %}            credits <= {= crw =}'d{= dg =};
        end else begin
            credits <= credits - {{= crw_1 =}'d0, issue && i_first} + {{= crw_1 =}'d0, pop_done};
            if (issue) begin
{% if pool %}                if (kx == {= kw =}'d{= k_last =}) begin
                    kx <= {= kw =}'d0;
                    if (ky == {= kw =}'d{= k_last =}) begin
                        ky <= {= kw =}'d0;
                        ch <= (ch == {= cw =}'d{= c_last =}) ? {= cw =}'d0 : ch + {= cw =}'d1;
                    end else begin
                        ky <= ky + {= kw =}'d1;
                    end
                end else begin
                    kx <= kx + {= kw =}'d1;
                end
{% else %}                wa <= (wa == {= waw =}'d{= words_last =}) ? {= waw =}'d0 : wa + {= waw =}'d1;
                if (i_last) begin
                    slice <= {= jw =}'d0;
                    grp <= (grp == {= gw_w =}'d{= groups_last =}) ? {= gw_w =}'d0 : grp + {= gw_w =}'d1;
                end else begin
                    slice <= slice + {= jw =}'d1;
                end
{% endif %}                if (i_pixel_end) begin
                    if (ox == {= oxw =}'d{= out_w_last =}) begin
                        ox <= {= oxw =}'d0;
                        ix0 <= -{= ixw =}'sd{= p =};
                        xc0 <= -{= xcw =}'sd{= pc =};
                        if (oy == {= oyw =}'d{= out_h_last =}) begin
                            oy <= {= oyw =}'d0;
                            iy0 <= -{= iyw =}'sd{= pt =};
                            fbase <= fbase + 32'd{= in_h =};
                            need <= fbase + 32'd{= in_h_c0 =};
                            need_none <= 1'b{= none0 =};
                            hn <= {= iyw =}'d{= hn0 =};
                            hn_none <= 1'b{= hn0_none =};
                            slot0 <= (slot_f >= {= slw =}'d{= rows =}) ? slot_f - {= slw =}'d{= rows =} : slot_f;
                        end else begin
                            oy <= oy + {= oyw =}'d1;
                            iy0 <= iy0 + {= iyw =}'sd{= s =};
                            need <= fbase + {{= pad_iy =}'d0, hn};
                            need_none <= hn_none;
                            hn <= nx_cl;
                            hn_none <= nx[{= iyw =}-1];
                            slot0 <= (slot_s >= {= slw =}'d{= rows =}) ? slot_s - {= slw =}'d{= rows =} : slot_s;
                        end
                    end else begin
                        ox <= ox + {= oxw =}'d1;
                        ix0 <= ix0 + {= ixw =}'sd{= s =};
                        xc0 <= xc0 + {= xcw =}'sd{= sc =};
                    end
                end
            end
        end
    end

    // ------------------------------------------------------------------ read pipeline
    // Stage 1: {% if pool %}the window position{% else %}the weight words{% endif %} and this slice's context.
    reg v1, first1, last1, rend1;
    reg [31:0] free1;
{% if !pool %}    reg signed [{= iyw =}-1:0] iy1;
    reg signed [{= ixw =}-1:0] ix1;
{% endif %}    reg signed [{= xcw =}-1:0] xc1;
    reg [{= slw =}-1:0] sl1;
{% if pool %}    reg [{= kw =}-1:0] ky1, kx1;
    reg [{= cw =}-1:0] ch1;
{% else %}    reg [{= gw_w =}-1:0] grp1;
{% endif %}    always @(posedge clk) begin
        if (rst) v1 <= 1'b0;
        else v1 <= issue;
        first1 <= i_first;
        last1 <= i_last;
        rend1 <= i_row_end;
        free1 <= free_to;
{% if !pool %}        iy1 <= iy0;
        ix1 <= ix0;
{% endif %}        xc1 <= xc0;
        sl1 <= slot0;
{% if pool %}        ky1 <= ky;
        kx1 <= kx;
        ch1 <= ch;
{% else %}        grp1 <= grp;
{% endif %}    end
    // Stages 2-4: row/column check, address, read (per read port); the control travels along.
    reg v2, first2, last2, rend2, v3, first3, last3, rend3, v4, first4, last4, rend4;
    reg [31:0] free2, free3, free4;
    // The last read of an output row has happened: its rows may be overwritten.
    assign lim_set = v4 && rend4;
    assign lim_to = free4;
{% if !pool %}    reg [{= gw_w =}-1:0] grp2, grp3, grp4;
{% endif %}    always @(posedge clk) begin
        if (rst) begin
            v2 <= 1'b0;
            v3 <= 1'b0;
            v4 <= 1'b0;
        end else begin
            v2 <= v1;
            v3 <= v2;
            v4 <= v3;
        end
        {first2, last2, rend2, free2} <= {first1, last1, rend1, free1};
        {first3, last3, rend3, free3} <= {first2, last2, rend2, free2};
        {first4, last4, rend4, free4} <= {first3, last3, rend3, free3};
{% if !pool %}        grp2 <= grp1;
        grp3 <= grp2;
        grp4 <= grp3;
{% endif %}    end
{% if pool %}
    // One read port: slot and column, then the address.
    function [{= kcw =}-1:0] kxc_of;
        input [{= kw =}-1:0] k;
        begin
            case (k)
{% for r in kxcs %}                {= kw =}'d{= r.0 =}: kxc_of = {= kcw =}'d{= r.1 =};
{% endfor %}                default: kxc_of = {= kcw =}'d0;
            endcase
        end
    endfunction
    wire [{= slw =}-1:0] p_slot = sl1 + {{= ky_pad =}'d0, ky1};
    wire signed [{= xcw =}-1:0] p_col = xc1 + $signed({{= kc_pad =}'d0, kxc_of(kx1)}) + $signed({{= ch_pad =}'d0, ch1});
    reg [{= slw =}-1:0] slot2;
    reg signed [{= xcw =}-1:0] col2;
    reg [{= aw =}-1:0] addr3;
    always @(posedge clk) begin
        slot2 <= (p_slot >= {= slw =}'d{= rows =}) ? p_slot - {= slw =}'d{= rows =} : p_slot;
        col2 <= p_col;
        addr3 <= rowbase(slot2) + {= col_a =};
    end
    assign raddr = addr3;
    // Stage 5: running maximum over the window; stage 6: the result, ReLU{% if !relu %} not{% endif %} applied.
    wire signed [{= dwi =}-1:0] rv = rdata;
    reg signed [{= dwi =}-1:0] mx;
    reg v5;
    wire signed [{= dwi =}-1:0] mx_next = (first4 || rv > mx) ? rv : mx;
    always @(posedge clk) begin
        if (rst) v5 <= 1'b0;
        else v5 <= v4 && last4;
        if (v4) mx <= mx_next;
    end
    reg fv;
    reg [{= dwo =}-1:0] fq;
    always @(posedge clk) begin
        if (rst) fv <= 1'b0;
        else fv <= v5;
        fq <= {% if relu %}mx[{= dwi =}-1] ? {= dwo =}'d0 : mx{% else %}mx{% endif %};
    end
    wire [{= dwo =}-1:0] fifo_in = fq;
    assign clips = {= clw =}'d0;
{% else %}
    // Weight memories: one word per (group, slice), {= lanes =} entries of {= entry_w =} bits
    // (code, ky, kx, kx*C + c) per engine; biases one per group.
    wire [{= copies =}*{= aw =}-1:0] raddr_w;
    assign raddr = raddr_w;
{% for e in engines %}    reg [{= wword =}-1:0] wmem_{= e =} [0:{= words_last =}];
    reg [{= bw =}-1:0] bmem_{= e =} [0:{= groups_last =}];
    reg [{= wword =}-1:0] wq_{= e =};
`ifdef PARTITA_COSIM
    // Cosimulation models read the images named by plusargs after these blocks
    // (+<instance path>.load_w{= e =}=FILE), so one model serves any weights.
    initial begin : load_w{= e =}
        string path;
        path = "";
        if ($value$plusargs({$sformatf("%m"), "=%s"}, path)) $readmemh(path, wmem_{= e =});
        else $readmemh({"(no +", $sformatf("%m"), "= plusarg)"}, wmem_{= e =});
    end
    initial begin : load_b{= e =}
        string path;
        path = "";
        if ($value$plusargs({$sformatf("%m"), "=%s"}, path)) $readmemh(path, bmem_{= e =});
        else $readmemh({"(no +", $sformatf("%m"), "= plusarg)"}, bmem_{= e =});
    end
`else
    initial begin
        $readmemh(WEIGHTS_E{= e =}, wmem_{= e =});
        $readmemh(BIAS_E{= e =}, bmem_{= e =});
    end
`endif
    always @(posedge clk) wq_{= e =} <= wmem_{= e =}[wa];
{% endfor %}
{% for l in lane_list %}    // Engine {= l.e =}, lane {= l.b =}.
    wire [{= ww =}-1:0] c1_{= l.n =} = wq_{= l.e =}[{= l.lo =}+{= ww_lo =} +: {= ww =}];
    wire [{= kyw =}-1:0] ky1_{= l.n =} = wq_{= l.e =}[{= l.lo =}+{= ky_lo =} +: {= kyw =}];
    wire [{= kyw =}-1:0] kx1_{= l.n =} = wq_{= l.e =}[{= l.lo =}+{= kx_lo =} +: {= kyw =}];
    wire [{= xw =}-1:0] kc1_{= l.n =} = wq_{= l.e =}[{= l.lo =} +: {= xw =}];
    wire signed [{= iyw =}-1:0] iyk_{= l.n =} = iy1 + $signed({{= ky_pad_iy =}'d0, ky1_{= l.n =}});
    wire signed [{= ixw =}-1:0] ixk_{= l.n =} = ix1 + $signed({{= ky_pad_ix =}'d0, kx1_{= l.n =}});
    wire [{= slw =}-1:0] slk_{= l.n =} = sl1 + {{= ky_pad =}'d0, ky1_{= l.n =}};
    reg ok2_{= l.n =}, ok3_{= l.n =}, ok4_{= l.n =};
    reg [{= slw =}-1:0] sl2_{= l.n =};
    reg signed [{= xcw =}-1:0] col2_{= l.n =};
    reg [{= ww =}-1:0] c2_{= l.n =}, c3_{= l.n =}, c4_{= l.n =};
    reg [{= aw =}-1:0] a3_{= l.n =};
    always @(posedge clk) begin
        ok2_{= l.n =} <= !iyk_{= l.n =}[{= iyw =}-1] && (iyk_{= l.n =} < {= iyw =}'sd{= in_h =})
            && !ixk_{= l.n =}[{= ixw =}-1] && (ixk_{= l.n =} < {= ixw =}'sd{= in_w =});
        sl2_{= l.n =} <= (slk_{= l.n =} >= {= slw =}'d{= rows =}) ? slk_{= l.n =} - {= slw =}'d{= rows =} : slk_{= l.n =};
        col2_{= l.n =} <= xc1 + $signed({{= xc_pad =}'d0, kc1_{= l.n =}});
        c2_{= l.n =} <= c1_{= l.n =};
        ok3_{= l.n =} <= ok2_{= l.n =};
        a3_{= l.n =} <= rowbase(sl2_{= l.n =}) + {= l.col_a =};
        c3_{= l.n =} <= c2_{= l.n =};
        ok4_{= l.n =} <= ok3_{= l.n =};
        c4_{= l.n =} <= c3_{= l.n =};
    end
    assign raddr_w[{= l.n =}*{= aw =} +: {= aw =}] = a3_{= l.n =};
    // Stage 5: the operands in fabric registers (both zeroed where the window reads padding,
    // whose words were never written), so the block RAM's output never reaches the
    // multiplier in the same cycle;
    // stage 6: the product.
    wire [{= dwi =}-1:0] rv_{= l.n =} = rdata[{= l.n =}*{= dwi =} +: {= dwi =}];
    reg [{= ww =}-1:0] c5_{= l.n =};
    reg [{= dwi =}-1:0] r5_{= l.n =};
    reg [{= pw =}-1:0] t0_{= l.n =};
    always @(posedge clk) begin
        c5_{= l.n =} <= ok4_{= l.n =} ? c4_{= l.n =} : {= ww =}'d0;
        r5_{= l.n =} <= ok4_{= l.n =} ? rv_{= l.n =} : {= dwi =}'d0;
        t0_{= l.n =} <= $signed({= l.prod_a =}) * $signed({= l.prod_b =});
    end
{% endfor %}
    reg v5, first5, last5, v6, first6, last6;
    reg [{= gw_w =}-1:0] grp5, grp6;
    always @(posedge clk) begin
        if (rst) begin
            v5 <= 1'b0;
            v6 <= 1'b0;
        end else begin
            v5 <= v4;
            v6 <= v5;
        end
        {first5, last5, grp5} <= {first4, last4, grp4};
        {first6, last6, grp6} <= {first5, last5, grp5};
    end
    // Adder trees over the lanes, one level per stage, at full width.
{% for t in tree %}    reg [{= t.width =}-1:0] {= t.name =};
    always @(posedge clk) {= t.name =} <= {= t.expr =};
{% endfor %}    // Control through the tree.
{% for c in tree_ctl %}    reg v{= c.to =}, first{= c.to =}, last{= c.to =};
    reg [{= gw_w =}-1:0] grp{= c.to =};
    always @(posedge clk) begin
        if (rst) v{= c.to =} <= 1'b0;
        else v{= c.to =} <= v{= c.from =};
        first{= c.to =} <= first{= c.from =};
        last{= c.to =} <= last{= c.from =};
        grp{= c.to =} <= grp{= c.from =};
    end
{% endfor %}
    // Accumulate over the slices; at the last, the full sum with the bias aligned to it, then
    // one rounding and saturation into the output format{% if relu %}, and ReLU{% endif %}.
    reg av, bv, fv;
{% for r in erows %}    wire [{= accw =}-1:0] sum_{= r.e =} = {= r.sum =};
    reg [{= accw =}-1:0] acc_{= r.e =}, fin_{= r.e =}, biased_{= r.e =};
    reg [{= bw =}-1:0] bq_{= r.e =};
    wire [{= accw =}-1:0] acc_next_{= r.e =} = (first{= ts =} ? {= accw =}'d0 : acc_{= r.e =}) + sum_{= r.e =};
    wire [{= dwo =}-1:0] y_{= r.e =};
    wire clip_{= r.e =};
    partita_requant #(.IW({= accw =}), .SHR({= shr =}), .SHL({= shl =}), .OW({= dwo =}), .ROUND_NE({= round_ne =}), .SAT({= sat =})) u_rq_{= r.e =} (
        .x(biased_{= r.e =}), .y(y_{= r.e =}), .clip(clip_{= r.e =})
    );
    reg [{= dwo =}-1:0] q_{= r.e =};
    reg qc_{= r.e =};
    always @(posedge clk) begin
        if (v{= ts =}) acc_{= r.e =} <= acc_next_{= r.e =};
        fin_{= r.e =} <= acc_next_{= r.e =};
        bq_{= r.e =} <= bmem_{= r.e =}[grp{= ts =}];
        biased_{= r.e =} <= fin_{= r.e =} + {= r.bias =};
        q_{= r.e =} <= {% if relu %}y_{= r.e =}[{= dwo =}-1] ? {= dwo =}'d0 : y_{= r.e =}{% else %}y_{= r.e =}{% endif %};
        qc_{= r.e =} <= clip_{= r.e =} && bv;
    end
{% endfor %}    always @(posedge clk) begin
        if (rst) begin
            av <= 1'b0;
            bv <= 1'b0;
            fv <= 1'b0;
        end else begin
            av <= v{= ts =} && last{= ts =};
            bv <= av;
            fv <= bv;
        end
    end
    wire [{= pe =}*{= dwo =}-1:0] fifo_in = {{= fifo_cat =}};
    assign clips = {= clips_expr =};
{% endif %}
    // ------------------------------------------------------------------ output FIFO
    reg [{= pe =}*{= dwo =}-1:0] ofq [0:{= dg_last =}];
    reg [{= dgw =}-1:0] wp, rp;
    reg [{= dgw =}:0] cnt;
    reg [{= pew =}-1:0] se;
{% if !pool %}    reg [{= gw_w =}-1:0] sg;
    wire s_last = (sg == {= gw_w =}'d{= groups_last =}) ? (se == {= pew =}'d{= last_e =}) : (se == {= pew =}'d{= pe_last =});
{% else %}    wire s_last = 1'b1;
{% endif %}    wire [{= pe =}*{= dwo =}-1:0] head = ofq[rp];
    assign m_valid = (cnt != {= dgw1 =}'d0);
    assign m_data = head[se*{= dwo =} +: {= dwo =}];
    assign pop_done = m_valid && m_ready && s_last;
    always @(posedge clk) begin
        if (fv) ofq[wp] <= fifo_in;
        if (rst) begin
            wp <= {= dgw =}'d0;
            rp <= {= dgw =}'d0;
            cnt <= {= dgw1 =}'d0;
            se <= {= pew =}'d0;
{% if !pool %}            sg <= {= gw_w =}'d0;
{% endif %}        end else begin
            if (fv) wp <= wp + {= dgw =}'d1;
            if (pop_done) rp <= rp + {= dgw =}'d1;
            cnt <= cnt + {{= dgw =}'d0, fv} - {{= dgw =}'d0, pop_done};
            if (m_valid && m_ready) begin
                if (s_last) begin
                    se <= {= pew =}'d0;
{% if !pool %}                    sg <= (sg == {= gw_w =}'d{= groups_last =}) ? {= gw_w =}'d0 : sg + {= gw_w =}'d1;
{% endif %}                end else begin
                    se <= se + {= pew =}'d1;
                end
            end
        end
    end
{% if !unused.is_empty() %}    wire unused_ok = &{1'b0{= unused =}};
{% endif %}endmodule
