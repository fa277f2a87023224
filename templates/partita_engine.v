{= header =}
// BBS row engine: {= k =} lanes ({= lanes.len() =} built). Each lane reads its own vector memory at the CSB in-bank index
// (plus the region base of the x or h bank), multiplies, and a pipelined adder tree feeds a
// full-width accumulator; every pipeline stage is one add, memory read or multiply. One row
// takes as many cycles as it has CSB slices. The pipeline never stalls (no clock enable):
// a row issued comes out; a cycle with a_valid low is a bubble.
// KIND 0 reads x slices then h slices of each row; KIND 1 only x (W_ih x), KIND 2 only h (W_hh h).
module {= name =} #(
{% for c in wch %}    parameter WEIGHT_HEX{= c.psfx =} = "weights_e0{= c.sfx =}.hex",
{% endfor %}
    parameter BIAS_HEX = "bias_e0.hex",
    parameter integer KIND = 0
) (
    input  wire                  clk,
    input  wire                  rst,
    // Stage A control, shared by all engines.
    input  wire                  a_valid,
    input  wire [{= waw =}-1:0]  a_waddr,
    input  wire [{= baw =}-1:0]  a_baddr,
    input  wire                  a_first,
    input  wire                  a_last,
    input  wire                  a_xsel,
    input  wire                  a_step0,
    input  wire [{= vaw =}-1:0]  a_xbase,
    input  wire [{= vaw =}-1:0]  a_hbase,
    // Vector memory write port (broadcast to every engine's copy).
    input  wire                  vw_en,
    input  wire [{= lane_w =}-1:0] vw_lane,
{% if vq > 1 %}    // One word of {= vq =} values per write: the slots whose vw_we bit is set.
    input  wire [{= vwa =}-1:0]  vw_word,
    input  wire [{= vq =}-1:0]   vw_we,
    input  wire [{= vqd =}-1:0]  vw_data,
{% else %}    input  wire [{= vaw =}-1:0]  vw_addr,
    input  wire [{= dw =}-1:0]   vw_data,
{% endif %}    // Run-time weight and bias writes from the control interface.
    input  wire                  ww_en,
    input  wire [{= waw =}-1:0]  ww_addr,
    input  wire [{= wword =}-1:0] ww_data,
    input  wire                  bw_en,
    input  wire [{= baw =}-1:0]  bw_addr,
    input  wire [{= bw =}-1:0]   bw_data,
    // Finished rows: the full-width sum, bias included (for KIND 0 and 1).
    output reg                   row_valid,
    output reg  [{= accw =}-1:0]  row_acc
);
    wire use_x = (KIND == 1) || ((KIND == 0) && a_xsel);
    wire [{= vaw =}-1:0] a_rbase = use_x ? a_xbase : a_hbase;
    wire a_zero = !use_x && a_step0;
    // Weights in {= wchunks =} chunk(s) of {= wrows =} words (word w: chunk w / {= wrows =}, row w mod {= wrows =}), each
    // chunk's word in column groups of at most {= group_bits =} bits (one block RAM's width), one
    // memory per group (declared whole, so one image per chunk loads it; synthesis keeps the
    // group's bits only). Every group has its read address, write address, write data and
    // strobes from register copies of its own (partita_rep, kept apart in synthesis) next to its
    // block RAMs, so no net reaches more than a group's block RAMs. Every chunk is read each cycle;
    // the ones not addressed read zero (the block RAMs' own output reset), stage F puts every
    // block RAM's output into a fabric register, and stage W ORs the chunks: no cascade
    // multiplexer and no select fanning out. A run-time write never meets a read of the same
    // word (weights are written while idle), so synthesis adds no read-during-write bypass
    // (no_rw_check).
{% for c in wch %}{% for g in c.groups %}    (* no_rw_check *) reg [{= wword =}-1:0] wmem{= g.sfx =} [0:{= wrows =}-1];
{% endfor %}{% endfor %}    (* no_rw_check *) reg [{= bw =}-1:0] bmem [0:{= bdepth =}-1];
`ifdef PARTITA_COSIM
    // Cosimulation builds (partita's Verilator models) compile one engine for all instances:
    // each reads its images at time 0 from the paths given as plusargs named after it
    // (+<instance path>.load_w{% if wchunks > 1 %}_c<chunk>{% endif %}=FILE, +<instance path>.load_b=FILE), so a model is reused for
    // any weights. Synthesis and other simulators read the WEIGHT_HEX and BIAS_HEX parameters.
{% for c in wch %}    initial begin : load_w{= c.sfx =}
        string path;
        path = "";
        if ($value$plusargs({$sformatf("%m"), "=%s"}, path)) begin
{% for g in c.groups %}            $readmemh(path, wmem{= g.sfx =});
{% endfor %}        end else begin
{% for g in c.groups %}            $readmemh({"(no +", $sformatf("%m"), "= plusarg)"}, wmem{= g.sfx =});
{% endfor %}        end
    end
{% endfor %}    initial begin : load_b
        string path;
        path = "";
        if ($value$plusargs({$sformatf("%m"), "=%s"}, path)) $readmemh(path, bmem);
        else $readmemh({"(no +", $sformatf("%m"), "= plusarg)"}, bmem);
    end
`else
{% for c in wch %}{% for g in c.groups %}    initial $readmemh(WEIGHT_HEX{= c.psfx =}, wmem{= g.sfx =});
{% endfor %}{% endfor %}    initial $readmemh(BIAS_HEX, bmem);
`endif

    // Run-time weight and bias writes, registered here first (the control block's registers
    // then drive two engines, not every block RAM), then per chunk and per column group.
    reg ww_q, bw_q;
    reg [{= waw =}-1:0] wwa_q;
    reg [{= wword =}-1:0] wwd_q;
    reg [{= baw =}-1:0] bwa_q;
    reg [{= bw =}-1:0] bwd_q;
    always @(posedge clk) begin
        if (rst) begin
            ww_q <= 1'b0;
            bw_q <= 1'b0;
        end else begin
            ww_q <= ww_en;
            bw_q <= bw_en;
        end
        // No enable: the decoded write strobes reach two flip-flops, not the data's.
        wwa_q <= ww_addr;
        wwd_q <= ww_data;
        bwa_q <= bw_addr;
        bwd_q <= bw_data;
        if (bw_q) bmem[bwa_q] <= bwd_q;
    end
{% for c in wch %}    // Chunk{= c.sfx =}'s write port: a register copy per chunk, then two per column group in a
    // row (a group's block RAMs may sit across the device from the chunk's copy: the middle
    // register halves that distance).
    wire wwe1{= c.sfx =};
    wire [{= wraw =}-1:0] wwr1{= c.sfx =};
    wire [{= wword =}-1:0] wwd1{= c.sfx =};
    // No copy is reset: the strobes follow ww_q, which is, and start at zero (their initial
    // value), so the reset net does not reach copies spread over the die.
    partita_rep u_we{= c.sfx =} (.clk(clk), .rst(1'b0), .d(ww_q && ({= c.wsel =})), .q(wwe1{= c.sfx =}));
    partita_rep #(.W({= wcrep =})) u_wc{= c.sfx =} (
        .clk(clk), .rst(1'b0), .d({wwa_q[{= wraw =}-1:0], wwd_q}), .q({wwr1{= c.sfx =}, wwd1{= c.sfx =}})
    );
{% for g in c.groups %}    wire wwe2{= g.sfx =}, wwe{= g.sfx =};
    wire [{= wraw =}-1:0] wwr2{= g.sfx =}, wwr{= g.sfx =};
    wire [{= g.w =}-1:0] wwd2{= g.sfx =}, wwd{= g.sfx =};
    partita_rep u_we2{= g.sfx =} (.clk(clk), .rst(1'b0), .d(wwe1{= c.sfx =}), .q(wwe2{= g.sfx =}));
    partita_rep #(.W({= g.wrep =})) u_ww2{= g.sfx =} (
        .clk(clk), .rst(1'b0), .d({wwr1{= c.sfx =}, wwd1{= c.sfx =}[{= g.lo =} +: {= g.w =}]}),
        .q({wwr2{= g.sfx =}, wwd2{= g.sfx =}})
    );
    partita_rep u_we{= g.sfx =} (.clk(clk), .rst(1'b0), .d(wwe2{= g.sfx =}), .q(wwe{= g.sfx =}));
    partita_rep #(.W({= g.wrep =})) u_ww{= g.sfx =} (
        .clk(clk), .rst(1'b0), .d({wwr2{= g.sfx =}, wwd2{= g.sfx =}}), .q({wwr{= g.sfx =}, wwd{= g.sfx =}})
    );
    always @(posedge clk) if (wwe{= g.sfx =}) wmem{= g.sfx =}[wwr{= g.sfx =}][{= g.lo =} +: {= g.w =}] <= wwd{= g.sfx =};
{% endfor %}{% endfor %}
    // Stages A2 and A3: stage A registered twice. Each chunk's read address (and whether the
    // chunk is the one addressed) goes through a register copy per chunk (A2), then one per
    // column group (A3), so no net reaches more than a chunk's copies or a group's block RAMs.
    reg [{= baw =}-1:0] baddr_a2, baddr_a3;
    reg [{= vaw =}-1:0] rbase_a2, rbase_a3;
    reg v_a2, first_a2, last_a2, zero_a2;
    reg v_a3, first_a3, last_a3, zero_a3;
    always @(posedge clk) begin
        if (rst) begin
            v_a2 <= 1'b0;
            v_a3 <= 1'b0;
        end else begin
            v_a2 <= a_valid;
            v_a3 <= v_a2;
        end
        baddr_a2 <= a_baddr;
        rbase_a2 <= a_rbase;
        first_a2 <= a_first;
        last_a2 <= a_last;
        zero_a2 <= a_zero;
        baddr_a3 <= baddr_a2;
        rbase_a3 <= rbase_a2;
        first_a3 <= first_a2;
        last_a3 <= last_a2;
        zero_a3 <= zero_a2;
    end
{% for c in wch %}    wire rs1{= c.sfx =};
    wire [{= wraw =}-1:0] ra1{= c.sfx =};
    partita_rep #(.W({= wraw1 =})) u_rc{= c.sfx =} (
        .clk(clk), .rst(1'b0), .d({{= c.rsel =}, a_waddr[{= wraw =}-1:0]}), .q({rs1{= c.sfx =}, ra1{= c.sfx =}})
    );
{% for g in c.groups %}    wire rs{= g.sfx =};
    wire [{= wraw =}-1:0] ra{= g.sfx =};
    partita_rep #(.W({= wraw1 =})) u_ra{= g.sfx =} (
        .clk(clk), .rst(1'b0), .d({rs1{= c.sfx =}, ra1{= c.sfx =}}), .q({rs{= g.sfx =}, ra{= g.sfx =}})
    );
{% endfor %}{% endfor %}
    // Stage B: every chunk's word (block RAMs; zero where the chunk is not addressed) and the bias.
{% for c in wch %}    reg [{= wword =}-1:0] wq{= c.sfx =};
{% endfor %}    reg [{= bw =}-1:0] bias_b;
    reg [{= vaw =}-1:0] rbase_b;
    reg v_b, first_b, last_b, zero_b;
    always @(posedge clk) begin
        if (rst) begin
            v_b <= 1'b0;
        end else begin
            v_b <= v_a3;
        end
{% for c in wch %}{% for g in c.groups %}            if (rs{= g.sfx =}) wq{= c.sfx =}[{= g.lo =} +: {= g.w =}] <= wmem{= g.sfx =}[ra{= g.sfx =}][{= g.lo =} +: {= g.w =}];
        else wq{= c.sfx =}[{= g.lo =} +: {= g.w =}] <= {= g.w =}'d0;
{% endfor %}{% endfor %}            bias_b <= bmem[baddr_a3];
        rbase_b <= rbase_a3;
        first_b <= first_a3;
        last_b <= last_a3;
        zero_b <= zero_a3;
    end

    // Stage F: every block RAM's output in a fabric register of its own.
{% for c in wch %}    reg [{= wword =}-1:0] wf{= c.sfx =};
{% endfor %}    reg [{= bw =}-1:0] bias_f;
    reg [{= vaw =}-1:0] rbase_f;
    reg v_f, first_f, last_f, zero_f;
    always @(posedge clk) begin
        if (rst) begin
            v_f <= 1'b0;
        end else begin
            v_f <= v_b;
        end
{% for c in wch %}            wf{= c.sfx =} <= wq{= c.sfx =};
{% endfor %}            bias_f <= bias_b;
        rbase_f <= rbase_b;
        first_f <= first_b;
        last_f <= last_b;
        zero_f <= zero_b;
    end

    // Stage W: the weight word{% if wchunks > 1 %}, the OR of the chunks (all but the addressed one are zero){% endif %}.
    reg [{= wword =}-1:0] wr;
    reg [{= bw =}-1:0] bias_w;
    reg [{= vaw =}-1:0] rbase_w;
    reg v_w, first_w, last_w, zero_w;
    always @(posedge clk) begin
        if (rst) begin
            v_w <= 1'b0;
        end else begin
            v_w <= v_f;
        end
        wr <= {% for c in wch %}wf{= c.sfx =}{% if !loop.last %} | {% endif %}{% endfor %};
        bias_w <= bias_f;
        rbase_w <= rbase_f;
        first_w <= first_f;
        last_w <= last_f;
        zero_w <= zero_f;
    end

    // Stage C: per-lane vector addresses (region base + CSB index); stage V: each address
    // copied into a register of its memory's own, so the add sits by the weight word and the
    // address net that fans out into the lane's LUT RAM starts beside it; stage R: vector reads;
    // stage D: operand registers (a zero for h at step 0); stage M: the operands copied into
    // registers of the multiplier's own, so the placer can put them beside its DSP block and
    // no net both crosses the device and enters the multiplier; stage E: products. The operands
    // are signed so synthesis sees a weight x data multiply, one DSP block (unsigned, the sign
    // extension made it three). Every stage is one add, one memory read or one multiply.
    reg [{= bw =}-1:0] bias_c, bias_v, bias_r, bias_d, bias_m, bias_e;
    reg v_c, first_c, last_c, zero_c;
    reg v_v, first_v, last_v, zero_v;
{% if vbram %}    reg [{= bw =}-1:0] bias_q;
    reg v_q, first_q, last_q, zero_q;
{% endif %}    reg v_r, first_r, last_r, zero_r;
    reg v_d, first_d, last_d;
    reg v_m, first_m, last_m;
    reg v_e, first_e, last_e;
    always @(posedge clk) begin
        if (rst) begin
            v_c <= 1'b0;
            v_v <= 1'b0;
{% if vbram %}            v_q <= 1'b0;
{% endif %}            v_r <= 1'b0;
            v_d <= 1'b0;
            v_m <= 1'b0;
            v_e <= 1'b0;
        end else begin
            v_c <= v_w;
            v_v <= v_c;
{% if vbram %}            v_q <= v_v;
            v_r <= v_q;
{% else %}            v_r <= v_v;
{% endif %}            v_d <= v_r;
            v_m <= v_d;
            v_e <= v_m;
        end
        bias_c <= bias_w;
        first_c <= first_w;
        last_c <= last_w;
        zero_c <= zero_w;
        bias_v <= bias_c;
        first_v <= first_c;
        last_v <= last_c;
        zero_v <= zero_c;
{% if vbram %}        bias_q <= bias_v;
        first_q <= first_v;
        last_q <= last_v;
        zero_q <= zero_v;
        bias_r <= bias_q;
        first_r <= first_q;
        last_r <= last_q;
        zero_r <= zero_q;
{% else %}        bias_r <= bias_v;
        first_r <= first_v;
        last_r <= last_v;
        zero_r <= zero_v;
{% endif %}        bias_d <= bias_r;
        first_d <= first_r;
        last_d <= last_r;
        bias_m <= bias_d;
        first_m <= first_d;
        last_m <= last_d;
        bias_e <= bias_m;
        first_e <= first_m;
        last_e <= last_m;
    end
{% if vq > 1 %}{% for lane in lanes %}
    // Lane {= lane =}: words of {= vq =} values (value a at word a / {= vq =}, slot a mod {= vq =}); the
    // word is read, then the slot picked in the operand stage.
{% if vbram %}    // Block RAM: the read address is vra itself (the RAM's own address register), its output
    // goes into vqn, a fabric register with nothing else on its input (so the placer can put
    // it beside the block RAM, whose own output register synthesis does not use), then into
    // vq (stage Q: one more engine cycle), where the operand stage picks the slot; the slot
    // index and the weight follow in step.
    (* ram_style = "block" *) reg [{= vqd =}-1:0] vmem_{= lane =} [0:{= vwords =}-1];
    reg [{= vaw =}-1:0] vra_{= lane =};
    reg [{= vqd =}-1:0] vqb_{= lane =}, vqn_{= lane =}, vq_{= lane =};
    reg [{= vqw =}-1:0] vsa_{= lane =}, vsn_{= lane =}, vsel_{= lane =};
    reg [{= ww =}-1:0] wn_{= lane =};
{% else %}    reg [{= vqd =}-1:0] vmem_{= lane =} [0:{= vwords =}-1];
    reg [{= vaw =}-1:0] vra_{= lane =}, vrv_{= lane =};
    reg [{= vqd =}-1:0] vq_{= lane =};
    reg [{= vqw =}-1:0] vsel_{= lane =};
{% endif %}    reg [{= dw =}-1:0] vin_{= lane =}, vpick_{= lane =}, vm_{= lane =};
    reg [{= ww =}-1:0] wc_{= lane =}, wk_{= lane =}, wr_{= lane =}, wv_{= lane =}, wm_{= lane =};
    reg [{= pw =}-1:0] t0_{= lane =};
    wire [{= ww =}-1:0] wval_{= lane =} = wr[{= lane =}*{= entry_w =}+{= iw =} +: {= ww =}];
    wire [{= iw =}-1:0] widx_{= lane =} = wr[{= lane =}*{= entry_w =} +: {= iw =}];
    // Padded positions are never written; they start (and stay) zero, so a zero weight there
    // never meets an unknown value. Synthesizes as memory initialisation.
    integer n_{= lane =}, j_{= lane =};
    initial for (n_{= lane =} = 0; n_{= lane =} < {= vwords =}; n_{= lane =} = n_{= lane =} + 1) vmem_{= lane =}[n_{= lane =}] = {= vqd =}'d0;
    always @* begin
        case (vsel_{= lane =})
{% for j in vslots %}            {= vqw =}'d{= j.0 =}: vpick_{= lane =} = vq_{= lane =}[{= j.1 =} +: {= dw =}];
{% endfor %}            default: vpick_{= lane =} = {= dw =}'d0;
        endcase
    end
    // The lane's write port: a register copy of its own (slot strobes decoded for this lane),
    // beside its LUT RAM, so the broadcast port reaches one copy per lane, not every RAM cell.
    // Not reset: the strobes follow vw_en, which is, and start at zero.
    wire [{= vq =}-1:0] vwe_{= lane =};
    wire [{= vwa =}-1:0] vwa_{= lane =};
    wire [{= vqd =}-1:0] vwd_{= lane =};
    partita_rep #(.W({= vq =})) u_vwe_{= lane =} (
        .clk(clk), .rst(1'b0), .d((vw_en && vw_lane == {= lane_w =}'d{= lane =}) ? vw_we : {= vq =}'d0), .q(vwe_{= lane =})
    );
    partita_rep #(.W({= vwrep =})) u_vw_{= lane =} (
        .clk(clk), .rst(1'b0), .d({vw_word, vw_data}), .q({vwa_{= lane =}, vwd_{= lane =}})
    );
    always @(posedge clk) begin
        for (j_{= lane =} = 0; j_{= lane =} < {= vq =}; j_{= lane =} = j_{= lane =} + 1)
            if (vwe_{= lane =}[j_{= lane =}])
                vmem_{= lane =}[vwa_{= lane =}][j_{= lane =}*{= dw =} +: {= dw =}] <= vwd_{= lane =}[j_{= lane =}*{= dw =} +: {= dw =}];
        vra_{= lane =} <= rbase_w + {= idx_ext[loop.index0] =};
        wc_{= lane =} <= wval_{= lane =};
{% if vbram %}        vqb_{= lane =} <= vmem_{= lane =}[vra_{= lane =}[{= vaw =}-1:{= vqw =}]];
        vsa_{= lane =} <= vra_{= lane =}[{= vqw =}-1:0];
        wk_{= lane =} <= wc_{= lane =};
        vqn_{= lane =} <= vqb_{= lane =};
        vsn_{= lane =} <= vsa_{= lane =};
        wn_{= lane =} <= wk_{= lane =};
        vq_{= lane =} <= vqn_{= lane =};
        vsel_{= lane =} <= vsn_{= lane =};
        wr_{= lane =} <= wn_{= lane =};
{% else %}        vrv_{= lane =} <= vra_{= lane =};
        wk_{= lane =} <= wc_{= lane =};
        vq_{= lane =} <= vmem_{= lane =}[vrv_{= lane =}[{= vaw =}-1:{= vqw =}]];
        vsel_{= lane =} <= vrv_{= lane =}[{= vqw =}-1:0];
        wr_{= lane =} <= wk_{= lane =};
{% endif %}        vin_{= lane =} <= zero_r ? {= dw =}'d0 : vpick_{= lane =};
        wv_{= lane =} <= wr_{= lane =};
        vm_{= lane =} <= vin_{= lane =};
        wm_{= lane =} <= wv_{= lane =};
        t0_{= lane =} <= $signed({= prod_a[loop.index0] =}) * $signed({= prod_b[loop.index0] =});
    end
{% endfor %}{% else %}{% for lane in lanes %}
    // Lane {= lane =}.
    reg [{= dw =}-1:0] vmem_{= lane =} [0:{= vdepth =}-1];
    reg [{= vaw =}-1:0] vra_{= lane =}, vrv_{= lane =};
    reg [{= dw =}-1:0] vq_{= lane =}, vin_{= lane =}, vm_{= lane =};
    reg [{= ww =}-1:0] wc_{= lane =}, wk_{= lane =}, wr_{= lane =}, wv_{= lane =}, wm_{= lane =};
    reg [{= pw =}-1:0] t0_{= lane =};
    wire [{= ww =}-1:0] wval_{= lane =} = wr[{= lane =}*{= entry_w =}+{= iw =} +: {= ww =}];
    wire [{= iw =}-1:0] widx_{= lane =} = wr[{= lane =}*{= entry_w =} +: {= iw =}];
    // Padded positions are never written; they start (and stay) zero, so a zero weight there
    // never meets an unknown value. Synthesizes as memory initialisation.
    integer n_{= lane =};
    initial for (n_{= lane =} = 0; n_{= lane =} < {= vdepth =}; n_{= lane =} = n_{= lane =} + 1) vmem_{= lane =}[n_{= lane =}] = {= dw =}'d0;
    // The lane's write port: a register copy of its own (the strobe decoded for this lane),
    // beside its LUT RAM, so the broadcast port reaches one copy per lane, not every RAM cell.
    // Not reset: the strobe follows vw_en, which is, and starts at zero.
    wire vwe_{= lane =};
    wire [{= vaw =}-1:0] vwa_{= lane =};
    wire [{= dw =}-1:0] vwd_{= lane =};
    partita_rep u_vwe_{= lane =} (
        .clk(clk), .rst(1'b0), .d(vw_en && vw_lane == {= lane_w =}'d{= lane =}), .q(vwe_{= lane =})
    );
    partita_rep #(.W({= vwrep =})) u_vw_{= lane =} (
        .clk(clk), .rst(1'b0), .d({vw_addr, vw_data}), .q({vwa_{= lane =}, vwd_{= lane =}})
    );
    always @(posedge clk) begin
        if (vwe_{= lane =}) vmem_{= lane =}[vwa_{= lane =}] <= vwd_{= lane =};
        vra_{= lane =} <= rbase_w + {= idx_ext[loop.index0] =};
        wc_{= lane =} <= wval_{= lane =};
        vrv_{= lane =} <= vra_{= lane =};
        wk_{= lane =} <= wc_{= lane =};
        vq_{= lane =} <= vmem_{= lane =}[vrv_{= lane =}];
        wr_{= lane =} <= wk_{= lane =};
        vin_{= lane =} <= zero_r ? {= dw =}'d0 : vq_{= lane =};
        wv_{= lane =} <= wr_{= lane =};
        vm_{= lane =} <= vin_{= lane =};
        wm_{= lane =} <= wv_{= lane =};
        t0_{= lane =} <= $signed({= prod_a[loop.index0] =}) * $signed({= prod_b[loop.index0] =});
    end
{% endfor %}{% endif %}{% if !absent.is_empty() %}    // Absent lanes (banks this device does not hold): no memory, no multiplier, a zero product;
    // their weight-word entries are zero and unread.
{% for lane in absent %}    wire [{= pw =}-1:0] t0_{= lane =} = {= pw =}'d0;
{% endfor %}    wire unused_absent = &{1'b0{% for lane in absent %}, wr[{= lane =}*{= entry_w =} +: {= entry_w =}]{% endfor %}};
{% endif %}    // Adder tree: {= levels.len() =} registered level(s); every sum keeps full width.
{% for node in tree %}    reg [{= node.width =}-1:0] {= node.name =};
{% endfor %}    always @(posedge clk) begin
{% for node in tree %}        {= node.name =} <= {= node.expr =};
{% endfor %}    end
    // Control delayed through the tree.
    reg [{= tree_delay =}:0] v_t, first_t, last_t;
    reg [{= bw =}-1:0] bias_t [0:{= tree_delay =}];
    integer i;
    always @(posedge clk) begin
        if (rst) begin
            v_t <= {= tree_len =}'d0;
        end else begin
            v_t[0] <= v_e;
            for (i = 1; i <= {= tree_delay =}; i = i + 1) v_t[i] <= v_t[i-1];
        end
        first_t[0] <= first_e;
        last_t[0] <= last_e;
        bias_t[0] <= bias_e;
        for (i = 1; i <= {= tree_delay =}; i = i + 1) begin
            first_t[i] <= first_t[i-1];
            last_t[i] <= last_t[i-1];
            bias_t[i] <= bias_t[i-1];
        end
    end
    wire [{= sw =}-1:0] sum = {= tree_out =};
    wire sum_v = v_t[{= tree_delay =}];
    wire sum_first = first_t[{= tree_delay =}];
    wire sum_last = last_t[{= tree_delay =}];
    wire [{= bw =}-1:0] sum_bias = bias_t[{= tree_delay =}];

    // Full-width accumulator; the bias is aligned to the product fraction, never rounded.
    reg [{= accw =}-1:0] acc;
    wire [{= accw =}-1:0] acc_base = sum_first ? {= bias_aligned =} : acc;
    wire [{= accw =}-1:0] acc_next = acc_base + {= sum_ext =};
    always @(posedge clk) begin
        if (rst) begin
            row_valid <= 1'b0;
        end else begin
            row_valid <= sum_v && sum_last;
        end
        if (sum_v) begin
            acc <= acc_next;
            row_acc <= acc_next;
        end
    end
endmodule
