//! A single-device CNN: one module per streaming stage (`templates/partita_cnn_stage.v`), the
//! top (`templates/partita_cnn.v`) with the register decode, the stream cores and the run
//! control, the weight and bias images, `regmap.json`, `partita_regs.h` and `files.f`. Every
//! number comes from [`crate::arch::cnn`]; here they become names, widths and expressions.

use askama::Template;

use super::regmap;
use super::verilog::{
    core_files, file_list, fit, header, module_file, module_prefix, render, sext, top_module, zext,
    File, HubConns, Word,
};
use crate::arch::bits_for;
use crate::arch::cnn::{CnnArch, Map, Stage, StageKind};
use crate::arch::cnn_system::{CnnDevice, CnnSystem, Exchange, Sink, Source};
use crate::design::Design;
use partita_hdl::cores;

struct Lane {
    e: usize,
    b: usize,
    n: usize,
    /// The column, as an address (its low bits, or zero-extended).
    col_a: String,
    lo: u32,
    prod_a: String,
    prod_b: String,
}

struct TreeNode {
    name: String,
    width: u32,
    expr: String,
}

struct TreeCtl {
    from: u32,
    to: u32,
}

struct ERow {
    e: usize,
    sum: String,
    bias: String,
}

#[derive(Template)]
#[template(path = "partita_cnn_stage.v", escape = "none")]
struct StageView {
    header: String,
    name: String,
    layer: usize,
    kind: &'static str,
    doc: String,
    pool: bool,
    relu: bool,
    in_c: usize,
    in_h: usize,
    in_w: usize,
    out_c: usize,
    out_h: usize,
    out_w: usize,
    in_h_last: usize,
    out_h_last: usize,
    out_w_last: usize,
    dwi: u32,
    dwo: u32,
    clw: u32,
    rows: usize,
    depth: usize,
    depth_last: usize,
    aw: u32,
    wcw: u32,
    wc_last: usize,
    copies: usize,
    slw: u32,
    rowbases: Vec<(usize, usize)>,
    oyw: u32,
    oxw: u32,
    iyw: u32,
    ixw: u32,
    xcw: u32,
    pad_iy: u32,
    k_last: usize,
    s: usize,
    // The needed-row register: 2S + K - 1 (the row after next's last row from this window's
    // first), and for a frame's first two output rows their last rows (clamped) and whether
    // they lie wholly in the top padding.
    s2k: usize,
    in_h_rows: usize,
    c0: usize,
    in_h_c0: usize,
    none0: u32,
    hn0: usize,
    hn0_none: u32,
    // Padding columns left of each output row's first window (P, or less on a tile of columns).
    p: usize,
    // Padding rows above a frame's first window (P, or less on a strip of rows).
    pt: usize,
    pc: usize,
    sc: usize,
    s_mod: usize,
    delta_mod: usize,
    slot_init: usize,
    crw: u32,
    crw_1: u32,
    dg: usize,
    dg_last: usize,
    dgw: u32,
    dgw1: u32,
    pe: usize,
    pew: u32,
    pe_last: usize,
    last_e: usize,
    ky_pad: u32,
    // Pool.
    cw: u32,
    kw: u32,
    c_last: usize,
    kcw: u32,
    kxcs: Vec<(usize, usize)>,
    kc_pad: u32,
    ch_pad: u32,
    // MVU.
    mem_prefix: String,
    engines: Vec<usize>,
    gw_w: u32,
    jw: u32,
    waw: u32,
    nnz_last: usize,
    groups_last: usize,
    words_last: usize,
    lanes: usize,
    entry_w: u32,
    wword: u32,
    bw: u32,
    ww: u32,
    ww_lo: u32,
    ky_lo: u32,
    kx_lo: u32,
    kyw: u32,
    xw: u32,
    ky_pad_iy: u32,
    ky_pad_ix: u32,
    xc_pad: u32,
    pw: u32,
    lane_list: Vec<Lane>,
    tree: Vec<TreeNode>,
    tree_ctl: Vec<TreeCtl>,
    ts: u32,
    accw: u32,
    erows: Vec<ERow>,
    shr: u32,
    shl: u32,
    round_ne: u32,
    sat: u32,
    fifo_cat: String,
    clips_expr: String,
    col_a: String,
    /// `, sig[hi:lo]` for each bit nothing reads (address bits above the buffer's).
    unused: String,
}

struct StageInst {
    index: usize,
    next: usize,
    module: String,
    mvu: bool,
    mems: Vec<(String, String)>,
    s_data: String,
    s_valid: String,
    s_ready: String,
    dwo: u32,
    clw: u32,
}

struct MemParam {
    param: String,
    file: String,
}

#[derive(Template)]
#[template(path = "partita_cnn.v", escape = "none")]
struct TopView {
    /// More on when the input is taken (`tiles`: at most `CnnDevice::in_flight` frames ahead
    /// of the stack's output, counted by `gate`).
    in_gate: String,
    gate: Option<GateView>,
    header: String,
    top: String,
    regs: String,
    in_c: usize,
    in_h: usize,
    in_w: usize,
    in_vals: usize,
    out_vals: usize,
    nstages: usize,
    stage_doc: String,
    mults: usize,
    cpf: u64,
    mems: Vec<MemParam>,
    in_sb: u32,
    in_kw: u32,
    in_vb: u32,
    in_p: u32,
    in_cw: u32,
    in_jw: u32,
    in_jw1: u32,
    in_bw: u32,
    out_sb: u32,
    out_kw: u32,
    out_vb: u32,
    out_p: u32,
    out_pjw: u32,
    wstage_w: u32,
    ivw: u32,
    ovw: u32,
    in_last: usize,
    out_last: usize,
    dwi: u32,
    dwo: u32,
    relu_in: bool,
    stages: Vec<StageInst>,
    last_data: String,
    last_valid: String,
    /// The output's ready: the transmit queue's room, or its grant on a tiles device.
    y_ready: String,
    last_ready: String,
    y_ext: String,
    satw: u32,
    sat_expr: String,
    sat_ext: String,
    reg_conns: Vec<regmap::Conn>,
    unused_extra: String,
    // A device of a multi-device system.
    link: Option<LinkView>,
    src_link: bool,
    src_from: usize,
    /// A device fed from a link: its input's valid, data and take (the port's head, or its
    /// queue's).
    in_v: String,
    in_d: String,
    in_take: String,
    rx_port: usize,
    gathers: Vec<GatherView>,
    reduces: Vec<ReduceView>,
    sink_link: bool,
    sink_to: usize,
    fault: String,
}

struct PortDoc {
    index: usize,
    doc: String,
}

/// A system device's link ports and identity.
struct LinkView {
    /// The queues of the reductions' remote sums, if their own (in order).
    reduce_q: Vec<usize>,
    me: usize,
    ndev: usize,
    wiring: String,
    lw: u32,
    dw: u32,
    doc: String,
    ports: Vec<PortDoc>,
    from_doc: String,
    wait_expr: String,
    np: usize,
    np2: usize,
    np3: usize,
    np7: usize,
    npd: usize,
    npw: usize,
    npv: usize,
    rx_port: usize,
    rx_port2: usize,
    rx_portd: usize,
    ack_expr: String,
    lk: crate::arch::lstm::LinkWidths,
    maxb: u32,
    tq_w: u32,
    bar_w: u32,
    others: String,
    routes: String,
    hmasks: String,
    /// The link hub's stream connections.
    hub: HubConns,
    tq_push: String,
    tq_in: String,
    /// Nothing on this device reads link values.
    no_rx: bool,
    /// `tiles`: halo exchanges, received streams (one FIFO each), the gather's stream, the
    /// transmit queue's grants and entry, frame tag bits.
    xs: Vec<XView>,
    /// `filters`: the all-gathers.
    ms: Vec<MView>,
    /// Received queues: bits of a beat's value count, and of its value slots.
    vw: u32,
    vbw: u32,
    /// Each port's take of a whole head beat.
    all_expr: String,
    /// Bits no one reads (", "-led): received slices' sign extension above their width.
    unused: String,
    /// Every received stream waits in a FIFO of its own (halo exchanges, all-gathers), and
    /// the transmit queue is shared by runs.
    queued: bool,
    rxq: Vec<RxqView>,
    gather_q: Vec<usize>,
    /// A device fed from a link: the queue of its input map.
    in_q: Option<usize>,
    /// The device before a `channels` stack fed from a link: its output's scatter.
    /// The scatters of its map: the output's (the device before a stack fed from a link), and
    /// one between its stages (`tap`).
    scatters: Vec<ScatterView>,
    tap: Option<TapView>,
    grants: Vec<(String, String)>,
    nlayers: u32,
    layer_w: u32,
    npl: usize,
    /// The output's transmit-queue grant exists (a tiles device that sends its output).
    y_g: bool,
    /// The run lock's owner: bits, and the granted requester's index.
    own_w: u32,
    reqs: Vec<RunView>,
    /// The runs' frame tags and destinations (3 bits each, run 0 low), and their want, last
    /// and value (sign-extended to the frame's width) concatenations, run 0 low.
    run_tags: String,
    run_dsts: String,
    run_want: String,
    run_last: String,
    run_value: String,
}

/// `tiles`: the count of frames out of the stack's last stage (its output `st{at}`): value
/// counter bits and a frame's last value.
struct GateView {
    n: usize,
    at: usize,
    pw: u32,
    last: usize,
}

/// A run of a tiles device's transmit queue (see the template).
struct RunView {
    j: usize,
    doc: String,
    grant: String,
}

/// One halo exchange (see `arch::cnn_system::Exchange`).
struct XView {
    /// Its signals' prefix (`x{stage}`; a grid's column exchange `c{stage}`), its input
    /// stream (valid, data, ready), and its two comments.
    id: String,
    in_v: String,
    in_d: String,
    in_r: String,
    doc_m: String,
    doc_s: String,
    doc_k: String,
    u: usize,
    o: usize,
    d: usize,
    dw: u32,
    rows_last: usize,
    len_last: usize,
    ldepth: usize,
    law: u32,
    rw: u32,
    cw: u32,
    to_up: String,
    to_dn: String,
    to_l: String,
    mw: u32,
    up_q_data: String,
    up_q_valid: String,
    up_q_ready: String,
    dn_q_data: String,
    dn_q_valid: String,
    dn_q_ready: String,
    ph0: u32,
    u_last: usize,
    o_last: usize,
    d_last: usize,
    after_up: u32,
    after_keep: u32,
}

/// The scatter of a device's output map over the stack after it (see
/// `arch::cnn_system::Scatter`): row, column and channel counters, and each run's box.
struct ScatterView {
    /// Its comment (whole lines).
    doc: String,
    /// Its counters' prefix (`y`: the output's; `z`: a scatter between stages), and the take
    /// of a value.
    p: String,
    fire: String,
    cw: u32,
    xw: u32,
    yw: u32,
    c_last: usize,
    x_last: usize,
    y_last: usize,
    /// Runs, and the runs' grants as a vector (the last run's first).
    nr: usize,
    grants: String,
    runs: Vec<ScatterRun>,
}

struct ScatterRun {
    /// Its grant, and its box as a wire (a condition on the counters).
    g: String,
    inw: String,
    cond: String,
}

/// A scatter between a device's stages (see `arch::cnn_system::Tap`): the scatter's counters
/// and runs, and the FIFO of the device's own box.
struct TapView {
    dw: u32,
    depth: usize,
    aw: u32,
    own_cond: String,
    src_d: String,
    src_v: String,
    src_r: String,
}

/// One all-gather (see `arch::cnn_system::Merge`).
struct MView {
    i: usize,
    p: usize,
    dw: u32,
    /// What this device sends (its slice of every pixel's channels, or its strip), and how
    /// the merge feeds the stage (per pixel, or per frame).
    what: String,
    per: &'static str,
    /// The merged input, in words.
    whole: String,
    tag: u8,
    dsts: String,
    /// The sender's value count: bits and the run's last.
    cw: u32,
    vals_last: usize,
    /// The kept slice's FIFO: entries and address bits.
    ldepth: usize,
    law: u32,
    /// The merge core: streams, their select and run counter bits, each run's last (packed),
    /// and its streams' connections (stream 0 low).
    ns: usize,
    sw: u32,
    mcw: u32,
    nt: usize,
    tw: u32,
    srcs: String,
    lasts: String,
    s_data: String,
    s_valid: String,
    s_ready: String,
    /// The crop after the merge (`partita_crop`'s parameters, empty for none) and its box in
    /// words.
    crop: String,
    crop_doc: String,
    /// The cropped values' FIFO (a frame's box): entries and address bits.
    cdepth: usize,
    caw: u32,
    order: String,
    /// Whether it keeps its own values (no for a hand-on, `Merge::hand`), and the stream
    /// that would have fed the stage (a stage's output, or a reduction's).
    keep: bool,
    /// The ready wires of the streams of devices with nothing in the join.
    zeros: Vec<String>,
    src_d: String,
    src_v: String,
    src_r: String,
}

/// A received stream's FIFO.
struct RxqView {
    j: usize,
    /// Bit offsets of its port's head beat and value count.
    portb: usize,
    port7: usize,
    src: usize,
    tag: u8,
    doc: &'static str,
    port: usize,
    port2: usize,
    port3: usize,
    depth: usize,
    aw: u32,
}

/// The gather of a fused stack's strips.
struct GatherView {
    /// Its signals' prefix (`g`, then `g1`), its instance name, and the remote values it
    /// reads (the link values, or a queue of its own).
    p: String,
    inst: String,
    rem_d: String,
    rem_v: String,
    take: String,
    /// What is gathered, for the comment: a strip, per pixel or per row of a tile.
    what: &'static str,
    local: usize,
    remote: usize,
    from: usize,
    /// Periods per frame (once per pixel for `filters`, per row of its tile on a grid), and
    /// the `tail` values of the rows below after the last period (a grid).
    periods: usize,
    tail: usize,
    /// Counter bits: positions in a run, periods.
    cw: u32,
    pw: u32,
    dw: u32,
    /// The local FIFO: entries and address bits.
    depth: usize,
    aw: u32,
    l_data: String,
    l_valid: String,
    l_ready: String,
}

/// The partial-sum reduction of a `channels` device (see `arch::cnn_system::Reduce`).
struct ReduceView {
    /// Its signals' prefixes: the sums, the finished values.
    p: String,
    f: String,
    layer: usize,
    from: usize,
    /// The stage whose partial sums are reduced, and their bits.
    st: usize,
    aw: u32,
    l_data: String,
    l_valid: String,
    l_ready: String,
    /// The local sums' FIFO: entries and address bits.
    depth: usize,
    law: u32,
    /// The remote sums: head value, its valid, and the take (the link's received stream, or
    /// a queue of its own on a device whose streams are queued).
    rem_d: String,
    rem_v: String,
    take: String,
    /// The finisher (the layer's first device): bias, rounding, ReLU.
    finish: bool,
    dwo: u32,
    relu: bool,
    cw: u32,
    c_last: usize,
    /// (channel, aligned bias as an `aw`-bit constant), for every channel with a bias.
    bias: Vec<(usize, String)>,
    shr: u32,
    shl: u32,
    round_ne: u32,
    sat: u32,
}

/// Bits of a signed register holding every value in [-lo, hi].
fn signed_bits(lo: usize, hi: usize) -> u32 {
    bits_for(lo.max(hi) as u64) + 1
}

fn stage_view(
    design: &Design,
    arch: &CnnArch,
    st: &Stage,
    name: &str,
    mem_prefix: &str,
) -> Result<StageView, String> {
    let win = st.window;
    let (inp, out) = (st.input, st.output);
    let wc = inp.w * inp.c;
    let rows = win.rows;
    let slw = bits_for(2 * rows as u64 - 1).max(bits_for(win.k as u64 - 1) + 1);
    let kyw = bits_for(win.k as u64 - 1);
    let span_y = inp.h + win.k + 2 * win.s + win.p;
    let span_x = inp.w + win.k + win.s + win.p;
    let iyw = signed_bits(win.p + 1, span_y).max(kyw + 2);
    let ixw = signed_bits(win.p + 1, span_x).max(kyw + 2);
    let (pool, mvu) = match &st.kind {
        StageKind::Pool => (true, None),
        StageKind::Mvu(m) => (false, Some(m)),
    };
    let cw = bits_for(inp.c as u64 - 1);
    let kcw = bits_for(((win.k - 1) * inp.c) as u64);
    let xw = mvu.map_or(1, |m| m.xw);
    let xcw = signed_bits((win.p + 1) * inp.c, span_x * inp.c).max(xw.max(kcw).max(cw) + 2);
    let (pe, groups) = mvu.map_or((1, 1), |m| (m.pe, m.groups));
    // Issue to FIFO write: 4 read stages, operands, product, the tree, accumulate, bias,
    // requantize, the result register.
    let tl = mvu.map_or(0, |m| m.tree_levels);
    let depth_pipe = 10 + tl as usize;
    let dg = (depth_pipe + 2).next_power_of_two();
    let dgw = bits_for(dg as u64 - 1);
    let crw = bits_for(dg as u64) + 1;
    let r = |v: i64| v.rem_euclid(rows as i64) as usize;
    // The last input row output row `o` of a frame reads, clamped to the map (0 when none).
    let last_row = |o: usize| -> usize {
        let v = (o * win.s + win.k) as i64 - 1 - win.pt as i64;
        v.clamp(0, inp.h as i64 - 1) as usize
    };
    let delta = inp.h as i64 - ((out.h as i64 - 1) * win.s as i64);
    let mut v = StageView {
        header: header(design),
        name: name.to_string(),
        layer: st.layer,
        kind: st.kind_name(),
        doc: String::new(),
        pool,
        relu: st.relu_out,
        in_c: inp.c,
        in_h: inp.h,
        in_w: inp.w,
        out_c: out.c,
        out_h: out.h,
        out_w: out.w,
        in_h_last: inp.h - 1,
        out_h_last: out.h - 1,
        out_w_last: out.w - 1,
        dwi: st.dw_in,
        dwo: st.dw_out,
        clw: bits_for(pe as u64),
        rows,
        depth: win.depth,
        depth_last: win.depth - 1,
        aw: win.aw,
        wcw: bits_for(wc as u64 - 1),
        wc_last: wc - 1,
        copies: st.copies,
        slw,
        rowbases: (0..rows).map(|s| (s, s * wc)).collect(),
        oyw: bits_for(out.h as u64 - 1),
        oxw: bits_for(out.w as u64 - 1),
        iyw,
        ixw,
        xcw,
        pad_iy: 32 - iyw,
        k_last: win.k - 1,
        s: win.s,
        s2k: 2 * win.s + win.k - 1,
        in_h_rows: inp.h + rows,
        c0: last_row(0),
        in_h_c0: inp.h + last_row(0),
        none0: (win.k as i64 - 1 - (win.pt as i64) < 0) as u32,
        hn0: last_row(1),
        hn0_none: (win.k as i64 - 1 - (win.pt as i64) + win.s as i64).lt(&0) as u32,
        p: win.pl,
        pt: win.pt,
        pc: win.pl * inp.c,
        sc: win.s * inp.c,
        s_mod: r(win.s as i64),
        delta_mod: r(delta),
        slot_init: r(-(win.pt as i64)),
        crw,
        crw_1: crw - 1,
        dg,
        dg_last: dg - 1,
        dgw,
        dgw1: dgw + 1,
        pe,
        pew: bits_for(pe as u64 - 1),
        pe_last: pe - 1,
        last_e: mvu.map_or(0, |m| m.cout - 1 - (m.groups - 1) * m.pe),
        ky_pad: slw - kyw,
        cw,
        kw: kyw,
        c_last: inp.c - 1,
        kcw,
        kxcs: (0..win.k).map(|k| (k, k * inp.c)).collect(),
        kc_pad: xcw - kcw,
        ch_pad: xcw - cw,
        mem_prefix: mem_prefix.to_string(),
        engines: (0..pe).collect(),
        gw_w: bits_for(groups as u64 - 1),
        jw: 1,
        waw: 1,
        nnz_last: 0,
        groups_last: groups - 1,
        words_last: 0,
        lanes: 1,
        entry_w: 0,
        wword: 0,
        bw: 1,
        ww: 1,
        ww_lo: 0,
        ky_lo: 0,
        kx_lo: 0,
        kyw,
        xw,
        ky_pad_iy: iyw - kyw,
        ky_pad_ix: ixw - kyw,
        xc_pad: xcw - xw,
        pw: 1,
        lane_list: Vec::new(),
        tree: Vec::new(),
        tree_ctl: Vec::new(),
        ts: 5,
        accw: 1,
        erows: Vec::new(),
        shr: 0,
        shl: 0,
        round_ne: arch.round_ne as u32,
        sat: arch.sat as u32,
        fifo_cat: String::new(),
        clips_expr: String::new(),
        col_a: fit("col2", xcw, win.aw),
        unused: String::new(),
    };
    let hi_bits = |sig: &str| {
        if xcw > win.aw {
            format!(", {sig}[{}:{}]", xcw - 1, win.aw)
        } else {
            String::new()
        }
    };
    match mvu {
        None => {
            v.doc = format!(
                "max-pool {}x{} stride {}, one window value read per cycle",
                win.k, win.k, win.s
            );
            v.unused = hi_bits("col2");
        }
        Some(m) => {
            let entry_w = m.ww + 2 * m.kyw + m.xw;
            v.doc = format!(
                "kernel {} stride {} padding {}, {} engine(s) x {} lane(s), {} CSB slice(s) per output channel",
                win.k, win.s, win.p, m.pe, m.lanes, m.nnz
            );
            v.jw = bits_for(m.nnz as u64 - 1);
            v.waw = bits_for(m.words as u64 - 1);
            v.nnz_last = m.nnz - 1;
            v.words_last = m.words - 1;
            v.lanes = m.lanes;
            v.entry_w = entry_w;
            v.wword = m.lanes as u32 * entry_w;
            v.bw = m.bw;
            v.ww = m.ww;
            v.ww_lo = m.xw + 2 * m.kyw;
            v.ky_lo = m.xw + m.kyw;
            v.kx_lo = m.xw;
            v.pw = m.pw;
            v.accw = m.accw;
            v.shr = m.shr;
            v.shl = m.shl;
            for e in 0..m.pe {
                for b in 0..m.lanes {
                    let n = e * m.lanes + b;
                    v.unused += &hi_bits(&format!("col2_{n}"));
                    v.lane_list.push(Lane {
                        e,
                        b,
                        n,
                        col_a: fit(&format!("col2_{n}"), xcw, win.aw),
                        lo: b as u32 * entry_w,
                        prod_a: sext(&format!("c5_{n}"), m.ww, m.pw),
                        prod_b: sext(&format!("r5_{n}"), st.dw_in, m.pw),
                    });
                }
                // Adder tree over this engine's lanes.
                let mut prev: Vec<String> = (0..m.lanes)
                    .map(|b| format!("t0_{}", e * m.lanes + b))
                    .collect();
                let mut width = m.pw;
                for lvl in 1..=m.tree_levels {
                    let nw = width + 1;
                    let mut next = Vec::new();
                    for (i, pair) in prev.chunks(2).enumerate() {
                        let name = format!("t{lvl}_{e}_{i}");
                        let expr = match pair {
                            [a, b] => format!("{} + {}", sext(a, width, nw), sext(b, width, nw)),
                            [a] => sext(a, width, nw),
                            _ => unreachable!("chunks of two"),
                        };
                        v.tree.push(TreeNode {
                            name: name.clone(),
                            width: nw,
                            expr,
                        });
                        next.push(name);
                    }
                    prev = next;
                    width = nw;
                }
                let bias = sext(&format!("bq_{e}"), m.bw, m.accw - m.bias_shift);
                v.erows.push(ERow {
                    e,
                    sum: sext(&prev[0], m.sw, m.accw),
                    bias: if m.bias_shift > 0 {
                        format!("{{{bias}, {}'d0}}", m.bias_shift)
                    } else {
                        bias
                    },
                });
            }
            v.tree_ctl = (0..m.tree_levels)
                .map(|i| TreeCtl {
                    from: 6 + i,
                    to: 7 + i,
                })
                .collect();
            v.ts = 6 + m.tree_levels;
            v.fifo_cat = (0..m.pe)
                .rev()
                .map(|e| format!("q_{e}"))
                .collect::<Vec<_>>()
                .join(", ");
            v.clips_expr = (0..m.pe)
                .map(|e| zext(&format!("(qc_{e} && fv)"), 1, bits_for(m.pe as u64)))
                .collect::<Vec<_>>()
                .join(" + ");
        }
    }
    Ok(v)
}

/// The weight and bias images of an MVU stage: per engine, one word per (group, slice) with
/// each lane's entry `{code, ky, kx, kx*C + c}` (lane 0 lowest), and one bias per group.
fn images(design: &Design, st: &Stage, prefix: &str) -> Vec<File> {
    let StageKind::Mvu(m) = &st.kind else {
        return Vec::new();
    };
    let banner = format!(
        "// partita {} plan hash {:016x} layer {}\n",
        crate::VERSION,
        design.plan.plan_hash,
        st.layer
    );
    let entry_w = m.ww + 2 * m.kyw + m.xw;
    let mut out = Vec::new();
    for e in 0..m.pe {
        let mut w = banner.clone();
        for i in 0..m.words {
            let mut word = Word::new(m.lanes as u32 * entry_w);
            for (b, lane) in m.entries[e].iter().enumerate() {
                let en = lane[i];
                let at = b as u32 * entry_w;
                word.set(at, m.xw, en.kxc as u64);
                word.set(at + m.xw, m.kyw, en.kx as u64);
                word.set(at + m.xw + m.kyw, m.kyw, en.ky as u64);
                word.set(at + m.xw + 2 * m.kyw, m.ww, en.code as u64);
            }
            w.push_str(&word.hex());
            w.push('\n');
        }
        let mut b = banner.clone();
        for &code in &m.bias[e] {
            let mut word = Word::new(m.bw);
            word.set(0, m.bw, code as u64);
            b.push_str(&word.hex());
            b.push('\n');
        }
        out.push(File {
            name: format!("{prefix}_w{e}.hex"),
            text: w,
        });
        out.push(File {
            name: format!("{prefix}_b{e}.hex"),
            text: b,
        });
    }
    out
}

/// The register constants of a CNN device: CONFIG0 = input values << 16 | output values
/// (each modulo 2^16), CONFIG1 = stages << 24 | multipliers (modulo 2^16) << 8 | input
/// value bits, CONFIG2 = input values per beat << 16 | input tdata bits.
pub(crate) fn design_value(design: &Design, a: &CnnArch, name: &str) -> Option<u32> {
    Some(match name {
        "VERSION" => super::verilog::version_word(),
        "PLAN_HASH_LO" => design.plan.plan_hash as u32,
        "PLAN_HASH_HI" => (design.plan.plan_hash >> 32) as u32,
        "CONFIG0" => {
            ((a.input.values() as u32 & 0xffff) << 16) | (a.output.values() as u32 & 0xffff)
        }
        "CONFIG1" => {
            ((a.stages.len() as u32 & 0xff) << 24)
                | ((a.multipliers() as u32 & 0xffff) << 8)
                | (a.dw_in & 0xff)
        }
        "CONFIG2" => (a.in_layout.per_beat << 16) | (a.in_layout.beat_bits & 0xffff),
        _ => return None,
    })
}

/// Every file of a CNN design: one device (with a self-checking testbench when `vectors`,
/// frames in the stream's (y, x, c) order, `seq_count` frames, are given), or one directory
/// per device of a multi-device system and `system.json`.
pub fn generate(design: &Design, vectors: Option<&super::Vectors>) -> Result<Vec<File>, String> {
    if design.plan.devices > 1 {
        let sys = CnnSystem::new(design)?;
        let mut out = Vec::new();
        for d in &sys.devices {
            for f in device_files(design, &d.arch, Some((&sys, d)), None)? {
                out.push(File {
                    name: format!("dev{}/{}", d.index, f.name),
                    text: f.text,
                });
            }
        }
        out.push(File {
            name: "system.json".into(),
            text: system_json(design, &sys),
        });
        return Ok(out);
    }
    let a = CnnArch::new(design)?;
    device_files(design, &a, None, vectors)
}

/// `system.json`: the wiring and what each device runs.
fn system_json(design: &Design, sys: &CnnSystem) -> String {
    let devs: Vec<serde_json::Value> = sys
        .devices
        .iter()
        .map(|d| {
            serde_json::json!({
                "device": d.index,
                "top": top_module(design, d.index),
                "stages": d.arch.stages.iter().map(|s| serde_json::json!({
                    "layer": s.layer, "kind": s.kind_name(),
                    "input": [s.input.c, s.input.h, s.input.w],
                    "output": [s.output.c, s.output.h, s.output.w],
                    "cycles_per_frame": s.cycles, "macs": s.macs,
                })).collect::<Vec<_>>(),
                "source": match d.source {
                    Source::Host { lo, hi } => serde_json::json!({"host_rows": [lo, hi], "host_cols": [d.host_cols.0, d.host_cols.1 - 1]}),
                    Source::Link { from } => serde_json::json!({"device": from}),
                },
                "gathers": d.gathers.iter().map(|g| serde_json::json!({"local": g.local, "remote": g.remote, "from": g.from, "tag": g.tag, "periods": g.periods, "tail": g.tail})).collect::<Vec<_>>(),
                "reduces": d.reduces.iter().map(|r| serde_json::json!({"from": r.from, "tag": r.tag, "values": r.values, "finishes_layer": r.finish.as_ref().map(|f| f.layer)})).collect::<Vec<_>>(),
                "host_channels": [d.host_channels.0, d.host_channels.1],
                "sink": match d.sink {
                    Sink::Host => serde_json::json!("host"),
                    Sink::Link { to } if d.also.is_empty() => serde_json::json!({"device": to}),
                    Sink::Link { to } => serde_json::json!({"devices": std::iter::once(to).chain(d.also.iter().copied()).collect::<Vec<_>>()}),
                },
                "all_gathers": d.merges.iter().map(|m| serde_json::json!({"before_layer": d.arch.stages[m.stage].layer, "tag": m.tag, "slices": m.slices, "pixels": m.pixels, "strips": m.strips, "crop": m.crop.map(|(_, b)| b.to_vec())})).collect::<Vec<_>>(),
                "input_values": d.arch.input.values(),
                "output_values": d.arch.output.values(),
                "cycles_per_frame": d.cycles_per_frame(),
            })
        })
        .collect();
    let v = serde_json::json!({
        "generator": crate::VERSION,
        "plan_hash": format!("{:016x}", design.plan.plan_hash),
        "model": "cnn",
        "strategy": sys.strategy.name(),
        "devices": devs,
        "links": sys.links.iter().map(|l| serde_json::json!({"from": [l.from.0, l.from.1], "to": [l.to.0, l.to.1]})).collect::<Vec<_>>(),
        "switched": sys.switched,
        "link_width": sys.frame.link_width,
        "value_width": sys.frame.h_width,
        "output_device": sys.out_device,
        "cycles_per_frame": sys.cycles_per_frame(),
        "link_bytes_per_frame": sys.link_bytes_per_frame(),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// The signal behind a node register of a system device.
fn link_signal(name: &str) -> Option<String> {
    Some(match name {
        "LINK_STATUS" => "{28'd0, link_status}".into(),
        "LINK_CRC_ERRS" => "crc_errs".into(),
        "LINK_SEQ_ERRS" => "seq_errs".into(),
        "LINK_FMT_ERRS" => "fmt_errs".into(),
        "LINK_ERR_INFO" => "err_info".into(),
        // No MAC counter on a CNN device (its stages' lane use comes from the architecture).
        "MAC_CYCLES" => "32'd0".into(),
        other => other.to_ascii_lowercase(),
    })
}

/// The link view of a system device.
fn link_view(sys: &CnnSystem, d: &CnnDevice, top: &TopView) -> LinkView {
    let n = sys.devices.len();
    let np = d.ports.len();
    let me = d.index;
    let lw = sys.frame.link_width;
    let dw = sys.frame.h_width;
    let from = match (d.source, d.gathers.first(), d.reduces.first()) {
        (Source::Link { from }, _, _) => Some(from),
        (_, Some(g), _) => Some(g.from),
        (_, _, Some(r)) => Some(r.from),
        _ => None,
    };
    let port_of = |other: usize| -> usize {
        if np == 2 && other > me {
            1
        } else {
            0
        }
    };
    let rx_port = from.map_or(0, port_of);
    let to = match d.sink {
        Sink::Link { to } => Some(to),
        Sink::Host => None,
    };
    let mut wait_expr = if top.src_link {
        "in_open && !rx_v".to_string()
    } else if !top.gathers.is_empty() {
        "g_remote && !rx_v".to_string()
    } else if !top.reduces.is_empty() {
        "r_loc_v && !rx_v".to_string()
    } else {
        "1'b0".to_string()
    };
    let ack_expr = if np == 1 {
        "rx_take".to_string()
    } else if rx_port == 1 {
        "{rx_take, 1'b0}".to_string()
    } else {
        "{1'b0, rx_take}".to_string()
    };
    let queued = queued(d);
    let layer_w: u32 = if queued { 3 } else { 1 };
    let tq_w = 7 + layer_w + dw;
    let (mut tq_push, mut tq_in) = match to {
        Some(t) => (
            "y_valid && !tq_full".to_string(),
            format!(
                "{{y_last, 2'd0, 1'b0, 1'b0, 3'd{t}, {}}}",
                sext("y_val", d.arch.dw_out, dw)
            ),
        ),
        None => ("1'b0".to_string(), format!("{tq_w}'d0")),
    };
    let others: u8 = (0..n).filter(|x| *x != me).fold(0, |m, x| m | (1 << x));
    // Frame tags: 0 the output run; halo runs numbered per device from 1 (`halo_tags`).
    let mut hmasks: u64 = to.map_or(0, |t| 1u64 << t);
    for a in &d.also {
        hmasks |= 1u64 << a;
    }
    let mut xs = Vec::new();
    let mut ms = Vec::new();
    let mut unused = String::new();
    let mut all_expr = format!("{np}'d0");
    let mut rxq: Vec<RxqView> = Vec::new();
    let mut gather_q = Vec::new();
    let mut reduce_q = Vec::new();
    let mut in_q = None;
    let mut scatters = Vec::new();
    let mut tap = None;
    let mut grants: Vec<(String, String)> = Vec::new();
    let mut own_w = 1u32;
    let (mut run_tags, mut run_dsts) = (String::new(), String::new());
    let (mut run_want, mut run_last, mut run_value) = (String::new(), String::new(), String::new());
    let mut runs: Vec<RunView> = Vec::new();
    if queued {
        // A queue for `n` values: its beats (the frames' last beats may be partial).
        let (vpb, maxv_q) = (sys.link.vpb_h as usize, sys.link.maxv_h as usize);
        // `n` values in `frames` link frames (0: as many as `n` fills): a beat each, and a
        // partial last beat per frame.
        let mut queue =
            |src: usize, tag: u8, n: usize, frames: usize, doc: &'static str| -> usize {
                let j = rxq.len();
                let port = port_of(src);
                let frames = frames.max(n.div_ceil(maxv_q.max(1)));
                let (depth, aw) = fifo_size(n.div_ceil(vpb.max(1)) + frames + 2);
                rxq.push(RxqView {
                    j,
                    portb: lw as usize * port,
                    port7: 7 * port,
                    src,
                    tag,
                    doc,
                    port,
                    port2: 2 * port,
                    port3: 3 * port,
                    depth,
                    aw,
                });
                j
            };
        let mut reqs: Vec<Req> = Vec::new();
        let mut waits: Vec<String> = Vec::new();
        for x in &d.exchanges {
            let i = x.stage;
            let xdw = d.arch.stages[i].dw_in;
            // A grid's column exchange feeds the row exchange of the same stage.
            let id = xid(x);
            let from_cols = !x.across && d.exchanges.iter().any(|c| c.across && c.stage == i);
            let (in_v, in_d, in_r) = if from_cols {
                (
                    format!("c{i}_m_valid"),
                    format!("c{i}_m_data"),
                    format!("c{i}_m_ready"),
                )
            } else {
                (
                    format!("st{i}_s_valid_w"),
                    format!("st{i}_s_data_w"),
                    format!("st{i}_s_ready_w"),
                )
            };
            let (u, o, dn) = (
                x.recv_up * x.row_len,
                (x.keep.1 - x.keep.0) * x.row_len,
                x.recv_down * x.row_len,
            );
            let rw = bits_for(x.rows as u64 - 1);
            let cw = bits_for(x.row_len as u64 - 1);
            let has_up = x.has_up();
            let has_dn = x.has_down();
            if has_up {
                hmasks |= 1u64 << (8 * x.tag_up as u64 + x.up.unwrap_or(0) as u64);
            }
            if has_dn {
                hmasks |= 1u64 << (8 * x.tag_down as u64 + x.down.unwrap_or(0) as u64);
            }
            let (units, above, below) = if x.across {
                ("columns", "the left", "the right")
            } else {
                ("rows", "above", "below")
            };
            // The received halo rows: from above (the device above sent them down) and from
            // below (sent up), each waiting in a FIFO of what the neighbour can send ahead:
            // twice the frames a device has in flight (a grid's columns come in a run per
            // tile row).
            let ahead = 2 * d.in_flight.max(1) * x.periods;
            let mut recv = |vals: usize, src: Option<usize>, tag: u8, doc: &'static str| {
                if vals > 0 {
                    let j = queue(
                        src.unwrap_or(0),
                        tag,
                        ahead * vals,
                        ahead * vals.div_ceil(maxv_q.max(1)),
                        doc,
                    );
                    if dw > xdw {
                        // Frames carry wider values elsewhere (partial sums).
                        unused += &format!(", q{j}_data[{}:{xdw}]", dw - 1);
                    }
                    (
                        format!("q{j}_data[{xdw}-1:0]"),
                        format!("q{j}_valid"),
                        format!("q{j}_ready"),
                    )
                } else {
                    (format!("{xdw}'d0"), "1'b0".to_string(), String::new())
                }
            };
            let (up_q_data, up_q_valid, up_q_ready) = recv(
                u,
                x.up,
                x.rtag_up,
                if x.across {
                    "halo columns from the left"
                } else {
                    "halo rows from above"
                },
            );
            let (dn_q_data, dn_q_valid, dn_q_ready) = recv(
                dn,
                x.down,
                x.rtag_down,
                if x.across {
                    "halo columns from the right"
                } else {
                    "halo rows from below"
                },
            );
            if u > 0 {
                waits.push(format!("({id}_ph == 2'd0 && !{up_q_valid})"));
            }
            if dn > 0 {
                waits.push(format!("({id}_ph == 2'd2 && !{dn_q_valid})"));
            }
            let phases = [u, o, dn];
            let next_after = |ph: usize| -> u32 {
                (ph + 1..3)
                    .find(|p| phases[*p] > 0)
                    .or_else(|| (0..3).find(|p| phases[*p] > 0))
                    .unwrap_or(0) as u32
            };
            let ph0 = (0..3).find(|p| phases[*p] > 0).unwrap_or(1) as u32;
            // Two strips: the kept rows wait for the halo from above, which comes at the end of
            // that device's strip, while the next frame's rows arrive.
            let (ldepth, law) = fifo_size(2 * o.max(x.rows * x.row_len) * x.periods);
            let row = format!("{id}_row");
            // The sender's two runs: its first rows up, its last rows down.
            for (has, dir, last_row, tag, dst, rows_doc) in [
                (
                    has_up,
                    "up",
                    x.send_up.max(1) - 1,
                    x.tag_up,
                    x.up,
                    format!("{units} 0-{}", x.send_up.max(1) - 1),
                ),
                (
                    has_dn,
                    "dn",
                    x.rows - 1,
                    x.tag_down,
                    x.down,
                    format!("{units} {}-", x.send_down_from),
                ),
            ] {
                let grant = format!("{id}_g_{dir}");
                if !has {
                    grants.push((grant, "1'b0".into()));
                    continue;
                }
                let dst = dst.unwrap_or(0);
                let way = match (dir, x.across) {
                    ("up", false) => "up",
                    ("up", true) => "left",
                    (_, false) => "down",
                    (_, true) => "right",
                };
                reqs.push(Req {
                    grant,
                    want: format!("{id}_want_{dir}"),
                    last: format!("({row} == {rw}'d{last_row}) && {id}_row_end"),
                    value: in_d.clone(),
                    w: xdw,
                    tag,
                    dst,
                    doc: format!(
                        "{rows_doc} before stage {i} {way} to device {dst}{}",
                        if x.across { ", per tile row" } else { "" }
                    ),
                });
            }
            let mut doc_s = if x.across {
                format!(
                    "Column halo exchange before stage {i}: each of stage {}'s {} tile rows ({} columns of {} values) goes",
                    i - 1,
                    x.periods,
                    x.rows,
                    x.row_len
                )
            } else {
                format!(
                    "Halo exchange before stage {i}: stage {}'s strip ({} rows of {} values) goes",
                    i - 1,
                    x.rows,
                    x.row_len
                )
            };
            if has_up {
                doc_s += &format!(
                    " {units} 0-{} to device {} (tag {}),",
                    x.send_up.max(1) - 1,
                    x.up.unwrap_or(0),
                    x.tag_up
                );
            }
            if has_dn {
                doc_s += &format!(
                    " {units} {}- to device {} (tag {}),",
                    x.send_down_from,
                    x.down.unwrap_or(0),
                    x.tag_down
                );
            }
            let doc_k = format!(
                "{units} {}-{} kept{} in a block-RAM FIFO of {ldepth} entries until the merger takes them.",
                x.keep.0,
                x.keep.1.max(1) - 1,
                if o == 0 { " (none)" } else { "" }
            );
            let doc_m = if x.across {
                format!(
                    "Column halo exchange before stage {i}: per tile row, {u} value(s) from {above}, {o} kept, {dn} from {below}; then the row exchange."
                )
            } else {
                format!(
                    "Halo exchange before stage {i}: its input, merged from {u} value(s) from {above}, {o} kept, {dn} from {below}."
                )
            };
            xs.push(XView {
                id: id.clone(),
                in_v,
                in_d,
                in_r,
                doc_m,
                doc_s,
                doc_k,
                u,
                o,
                d: dn,
                dw: xdw,
                rows_last: x.rows - 1,
                len_last: x.row_len - 1,
                ldepth,
                law,
                rw,
                cw,
                to_up: match (has_up, x.send_up >= x.rows) {
                    (false, _) => "1'b0".into(),
                    (true, true) => "1'b1".into(),
                    (true, false) => format!("({row} < {rw}'d{})", x.send_up),
                },
                to_dn: match (has_dn, x.send_down_from == 0) {
                    (false, _) => "1'b0".into(),
                    (true, true) => "1'b1".into(),
                    (true, false) => format!("({row} >= {rw}'d{})", x.send_down_from),
                },
                to_l: {
                    let mut c = Vec::new();
                    if x.keep.0 > 0 {
                        c.push(format!("({row} >= {rw}'d{})", x.keep.0));
                    }
                    if x.keep.1 < x.rows {
                        c.push(format!("({row} <= {rw}'d{})", x.keep.1 - 1));
                    }
                    match (o > 0, c.is_empty()) {
                        (false, _) => "1'b0".into(),
                        (true, true) => "1'b1".into(),
                        (true, false) => c.join(" && "),
                    }
                },
                mw: bits_for(u.max(o).max(dn).max(1) as u64 - 1),
                up_q_data,
                up_q_valid,
                up_q_ready,
                dn_q_data,
                dn_q_valid,
                dn_q_ready,
                ph0,
                u_last: u.max(1) - 1,
                o_last: o.max(1) - 1,
                d_last: dn.max(1) - 1,
                after_up: next_after(0),
                after_keep: next_after(1),
            });
        }
        // The all-gathers: this device's slice to every other device (one multicast run) and
        // into a FIFO of its own; the merge takes every device's slice per pixel in order.
        let maxv = sys.link.maxv_h as usize;
        for m in &d.merges {
            let i = m.stage;
            let mdw = d.arch.stages[i].dw_in;
            let own = m.slices[m.pos];
            // What would have fed stage i: a reduction's sums (or finished values) there, or
            // the stage before's output.
            let (src_d, src_v, src_r) = match d.reduces.iter().position(|r| r.after == i) {
                Some(k) => {
                    let (rp, fp) = reduce_names(k);
                    let p = if d.reduces[k].finish.is_some() {
                        fp
                    } else {
                        rp
                    };
                    (
                        format!("{p}_data"),
                        format!("{p}_valid"),
                        format!("{p}_ready"),
                    )
                }
                None if d.gathers.iter().any(|g| g.after == i) => {
                    let p = gather_name(d.gathers.iter().position(|g| g.after == i).unwrap_or(0));
                    (
                        format!("{p}_data"),
                        format!("{p}_valid"),
                        format!("{p}_ready"),
                    )
                }
                None => (
                    format!("st{i}_s_data_w"),
                    format!("st{i}_s_valid_w"),
                    format!("st{i}_s_ready_w"),
                ),
            };
            // Its width: a finished reduction's values, or the stage's.
            let src_w = d
                .reduces
                .iter()
                .find(|r| r.after == i)
                .and_then(|r| r.finish.as_ref())
                .map_or(d.arch.stages[i - 1].dw_out, |f| f.dw_out);
            // Pixels a frame of the narrowest slice holds: the merge waits up to that long for
            // a frame. The kept slice has room for four of them (and the link latency), each
            // queue for twice that of its device's slice, so no queue stalls its port while
            // the others' frames are on their way.
            let narrow = m.slices.iter().copied().min().unwrap_or(1).max(1);
            let span = (4 * maxv.div_ceil(narrow) + sys.latency as usize + 8).min(2 * m.pixels);
            let (ldepth, law) = fifo_size(if m.crop.is_some() {
                (d.in_flight.max(1) + 1) * own * m.pixels
            } else {
                span * own
            });
            let others: Vec<usize> = match m.hand {
                Some((to, _, _)) => vec![to],
                None => m
                    .devs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != m.pos)
                    .map(|(_, d)| *d)
                    .collect(),
            };
            let send_tag = m.hand.map_or(m.tag, |h| h.1);
            for &o in &others {
                hmasks |= 1u64 << (8 * send_tag as u64 + o as u64);
            }
            let (mut sd, mut sv, mut sr) = (Vec::new(), Vec::new(), Vec::new());
            let mut zeros: Vec<String> = Vec::new();
            // The merge's own stream needs no wait count.
            unused += &format!(", a{i}_want[{}]", m.pos);
            for (j, (&src, &len)) in m.devs.iter().zip(&m.slices).enumerate() {
                if j == m.pos || len == 0 {
                    if j == m.pos {
                        sd.push(format!("a{i}_l_data"));
                        sv.push(format!("a{i}_l_valid"));
                        sr.push(format!("a{i}_l_ready"));
                        if m.hand.is_some() {
                            unused += &format!(", a{i}_l_ready");
                        }
                    } else {
                        // A device with nothing in the join (after a channels stack).
                        sd.push(format!("{mdw}'d0"));
                        sv.push("1'b0".into());
                        sr.push(format!("a{i}_z{j}"));
                        zeros.push(format!("a{i}_z{j}"));
                        unused += &format!(", a{i}_want[{j}], a{i}_z{j}");
                    }
                } else {
                    // Tiles cropped for the stage: as many as the device can take in ahead
                    // of its stacks' output, and one more.
                    let depth = if m.crop.is_some() {
                        (d.in_flight.max(1) + 1) * len * m.pixels
                    } else {
                        (2 * span * len + maxv).min(2 * m.pixels * len)
                    };
                    let q = queue(
                        src,
                        m.tag,
                        depth,
                        0,
                        if m.strips {
                            "its tile of the map, joined"
                        } else {
                            "its slice of the channels, all-gathered"
                        },
                    );
                    sd.push(format!("q{q}_data[{mdw}-1:0]"));
                    if dw > mdw {
                        unused += &format!(", q{q}_data[{}:{mdw}]", dw - 1);
                    }
                    sv.push(format!("q{q}_valid"));
                    sr.push(format!("q{q}_ready"));
                    waits.push(format!("(a{i}_want[{j}] && !q{q}_valid)"));
                }
            }
            let mcw = bits_for(m.runs.iter().map(|r| r.1).max().unwrap_or(1).max(2) as u64 - 1);
            let sw = bits_for(m.devs.len() as u64 - 1);
            // The runs' table, run 0 low: each run's stream and its values minus one.
            let lasts: String = m
                .runs
                .iter()
                .rev()
                .map(|r| format!("{mcw}'d{}", r.1 - 1))
                .collect::<Vec<_>>()
                .join(", ");
            let srcs: String = m
                .runs
                .iter()
                .rev()
                .map(|r| format!("{sw}'d{}", r.0))
                .collect::<Vec<_>>()
                .join(", ");
            reqs.push(Req {
                grant: format!("a{i}_g"),
                want: format!("a{i}_out"),
                last: format!("a{i}_last"),
                value: src_d.clone(),
                w: if m.hand.is_some() { src_w } else { mdw },
                tag: send_tag,
                dst: others[0],
                doc: match m.hand {
                    Some(_) => format!(
                        "this device's partial sums before stage {i} on to device {} (tag {send_tag})",
                        others[0]
                    ),
                    None => format!(
                        "this device's slice before stage {i} to device(s) {others:?} (tag {}, one copy each)",
                        m.tag
                    ),
                },
            });
            let sent = m.hand.map_or(m.sent(), |h| h.2);
            // The box of a frame waits in a FIFO, so the merge passes the whole map at a
            // value per cycle while the stage computes.
            let crop_fifo = fifo_size(
                m.crop
                    .map_or(2, |(_, b)| b.iter().map(|(a, e)| e - a).product::<usize>()),
            );
            ms.push(MView {
                i,
                p: i - 1,
                dw: mdw,
                what: if m.hand.is_some() {
                    format!("output ({sent} values: partial sums, its tile or the map, handed on as the system before this stack sends them)")
                } else if m.strips && m.slices.iter().filter(|l| **l > 0).count() == 1 {
                    format!("finished map ({own} values)")
                } else if m.strips {
                    format!("tile ({own} values)")
                } else {
                    format!("{own} channel(s) of each of {} pixels", m.pixels)
                },
                per: if m.strips { "per frame" } else { "per pixel" },
                whole: if m.strips {
                    "every device's tile of the map, joined in raster order".into()
                } else {
                    format!(
                        "every device's slice of the {} channels per pixel",
                        m.slices.iter().sum::<usize>()
                    )
                },
                tag: send_tag,
                dsts: others
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                cw: bits_for(sent.max(2) as u64 - 1),
                vals_last: sent - 1,
                ldepth,
                law,
                ns: m.devs.len(),
                sw,
                mcw,
                nt: m.runs.len(),
                tw: bits_for(m.runs.len().max(2) as u64 - 1),
                srcs: format!("{{{srcs}}}"),
                lasts: format!("{{{lasts}}}"),
                s_data: concat(sd, ""),
                s_valid: concat(sv, ""),
                s_ready: concat(sr, ""),
                cdepth: crop_fifo.0,
                caw: crop_fifo.1,
                crop: m.crop.map_or(String::new(), |(map, b)| {
                    let w = |n: usize| bits_for(n.max(2) as u64 - 1);
                    format!(
                        ".DW({mdw}), .H({}), .W({}), .C({}), .YW({}), .XW({}), .CW({}), .Y0({}), .Y1({}), .X0({}), .X1({}), .C0({}), .C1({})",
                        map.h,
                        map.w,
                        map.c,
                        w(map.h),
                        w(map.w),
                        w(map.c),
                        b[0].0,
                        b[0].1 - 1,
                        b[1].0,
                        b[1].1 - 1,
                        b[2].0,
                        b[2].1 - 1
                    )
                }),
                crop_doc: m.crop.map_or(String::new(), |(map, b)| {
                    format!(
                        "rows {}-{}, columns {}-{} and channels {}-{} of the joined {} x {} x {} map",
                        b[0].0,
                        b[0].1 - 1,
                        b[1].0,
                        b[1].1 - 1,
                        b[2].0,
                        b[2].1 - 1,
                        map.h,
                        map.w,
                        map.c
                    )
                }),
                keep: m.hand.is_none(),
                zeros,
                src_d,
                src_v,
                src_r,
                order: if m.runs.len() == 1 {
                    let (k, l) = m.runs[0];
                    format!("the {l} values of device {}", m.devs[k])
                } else if m.runs.len() == m.devs.len() {
                    m.devs
                        .iter()
                        .zip(&m.slices)
                        .map(|(d, l)| format!("{l} from device {d}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    format!(
                        "{} runs, row by row of the map, each row's part from each device of its tile row in turn (tiles of devices {})",
                        m.runs.len(),
                        m.devs
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            });
        }
        for (k, g) in d.gathers.iter().enumerate() {
            // Of `tiles`, what device `from` can send ahead (`Gather::frames` frames).
            let per = g.remote * g.periods + g.tail;
            let j = queue(
                g.from,
                g.tag,
                per * g.frames,
                per.div_ceil(maxv.max(1)) * g.frames,
                "the strips gathered from below",
            );
            gather_q.push(j);
            // The first gather reads its queue as rx_v, rx_d.
            waits.push(if k == 0 {
                "(g_remote && !rx_v)".into()
            } else {
                format!("({}_remote && !q{j}_valid)", gather_name(k))
            });
        }
        for (k, r) in d.reduces.iter().enumerate() {
            // Its own queue (a device may gather too). Sums handed on beside a stack on the
            // same devices: as many frames as the device takes in ahead, and one more.
            let depth = if r.tag != 0 {
                (d.in_flight.max(1) + 1) * r.values
            } else {
                r.values + maxv
            };
            let j = queue(r.from, r.tag, depth, 0, "the partial sums from below");
            reduce_q.push(j);
            waits.push(format!("({}_loc_v && !q{j}_valid)", reduce_names(k).0));
        }
        if let Source::Link { from } = d.source {
            // Two frames of the input map, so the device before the stack sends on while this
            // device's merges wait for the other devices' slices. A device that scatters its
            // map between its own stages (a tap) runs ahead of its own part by the frames its
            // box's FIFO holds: as many more here, so the map never fills this queue and stops
            // the port that other streams from it (its partial sums, its halos) come on.
            let ahead = sys.devices[from]
                .tap
                .as_ref()
                .map_or(0, |_| sys.devices[from].tap_frames());
            let j = queue(
                from,
                d.in_tag,
                (2 + ahead) * d.arch.input.values(),
                0,
                "the input map",
            );
            in_q = Some(j);
            waits.push(format!("(in_open && !q{j}_valid)"));
        }
        if let Some(t) = &d.tap {
            // Between stages: stage t.at - 1's map to the stack's other devices, its own box
            // into a FIFO for stage t.at.
            let i = t.at;
            let sc = &t.scatter;
            // A multicast (`filters`: the whole map to every other device) is one run, its
            // frames copied to each.
            let list: Vec<ScatterEntry> = t
                .others()
                .map(|(k, dev)| (k, dev, t.tag(k), sc.boxes[k]))
                .take(if t.multicast { 1 } else { usize::MAX })
                .collect();

            let src_w = d.arch.stages[i - 1].dw_out;
            let (view, done) = scatter_runs(
                sc.map,
                &list,
                "z",
                "t",
                &format!("st{i}_s_valid_w"),
                &format!("st{i}_s_data_w"),
                src_w,
                &mut reqs,
                &mut hmasks,
            );
            if let (true, Some(r)) = (t.multicast, reqs.last_mut()) {
                let dsts: Vec<usize> = t.others().map(|(_, d)| d).collect();
                for &dev in &dsts {
                    hmasks |= 1u64 << (8 * t.tag(0) as u64 + dev as u64);
                }
                r.doc = format!("the map to devices {dsts:?} (one copy each)");
            }
            let own = sc.boxes[t.own];
            let [(r0, r1), (x0, x1), (c0, c1)] = own;
            let (depth, aw) = fifo_size(d.tap_frames() * sc.values(t.own));
            grants.push((
                "z_g".into(),
                format!("{} && (!z_k_in || z_k_ready)", done.join(" && ")),
            ));
            let own_cond = box_cond(&own, sc.map, &view);
            scatters.push(ScatterView {
                doc: format!(
                    "    // Scatter before stage {i}: stage {}'s map ({} x {} pixels of {} channels, in raster order)
    // leaves as one run per other device of the stack, {:?}, the values in that device's box
    // of rows, columns and channels (the transmit runs below); this device's own box (rows
    // {r0}-{}, columns {x0}-{}, channels {c0}-{}) waits in a block-RAM FIFO of {depth} entries for
    // stage {i}. A value is taken once every run whose box holds it has it (z_sent marks those
    // that have it) and, when its own box holds it, the FIFO takes it.
",
                    i - 1,
                    sc.map.h,
                    sc.map.w,
                    sc.map.c,
                    t.others().map(|(_, d)| d).collect::<Vec<_>>(),
                    r1 - 1,
                    x1 - 1,
                    c1 - 1
                ),
                ..view
            });
            tap = Some(TapView {
                own_cond,
                dw: src_w,
                depth,
                aw,
                src_d: format!("st{i}_s_data_w"),
                src_v: format!("st{i}_s_valid_w"),
                src_r: format!("st{i}_s_ready_w"),
            });
        }
        if let Some(sc) = &d.scatter {
            // A run per stack device: the values in its box.
            let list: Vec<ScatterEntry> = sc
                .devs
                .iter()
                .zip(&sc.boxes)
                .enumerate()
                .map(|(k, (&dev, bx))| (k, dev, sc.tag0 + k as u8, *bx))
                .collect();
            let (view, done) = scatter_runs(
                sc.map,
                &list,
                "y",
                "s",
                "y_valid",
                "y_val",
                d.arch.dw_out,
                &mut reqs,
                &mut hmasks,
            );
            // A value is taken once every run whose box holds it has it.
            grants.push(("y_g".into(), done.join(" && ")));
            scatters.push(ScatterView {
                doc: format!(
                    "    // Scatter: this device's map ({} x {} pixels of {} channels, in raster order) leaves as one
    // run per device of the stack after it, the values in that device's box of rows, columns and
    // channels (the transmit runs below). A value in several boxes goes to each run (y_sent
    // marks those that have it), and a value in none is dropped.
",
                    sc.map.h, sc.map.w, sc.map.c
                ),
                ..view
            });
        } else if let Some(t) = to {
            reqs.push(Req {
                grant: "y_g".into(),
                want: "y_valid".into(),
                last: "y_last".into(),
                value: "y_val".into(),
                w: d.arch.dw_out,
                tag: 0,
                dst: t,
                doc: format!("this device's output to device {t}"),
            });
        }
        own_w = bits_for(reqs.len().max(2) as u64 - 1);
        for (k, r) in reqs.iter().enumerate() {
            runs.push(RunView {
                j: k,
                doc: r.doc.clone(),
                grant: r.grant.clone(),
            });
        }
        let nr = reqs.len();
        let octal = |f: &dyn Fn(&Req) -> usize| -> String {
            let digits: String = reqs.iter().rev().map(|r| f(r).to_string()).collect();
            format!(
                "{}'o{}",
                3 * nr.max(1),
                if nr == 0 { "0".into() } else { digits }
            )
        };
        run_tags = octal(&|r| r.tag as usize);
        run_dsts = octal(&|r| r.dst);
        let cat =
            |f: &dyn Fn(&Req) -> String| -> String { concat(reqs.iter().map(f).collect(), "1'b0") };
        run_want = cat(&|r| r.want.clone());
        run_last = cat(&|r| r.last.clone());
        run_value = cat(&|r| sext(&r.value, r.w, dw));
        if !reqs.is_empty() {
            tq_push = "tq_push_any".into();
            tq_in = "tq_entry".into();
        }
        wait_expr = if waits.is_empty() {
            "1'b0".into()
        } else {
            waits.join(" || ")
        };
        let per_port: Vec<String> = (0..np)
            .map(|p| {
                let v: Vec<String> = rxq
                    .iter()
                    .filter(|q| q.port == p)
                    .map(|q| format!("q{}_push", q.j))
                    .collect();
                if v.is_empty() {
                    "1'b0".into()
                } else {
                    v.join(" || ")
                }
            })
            .collect();
        all_expr = concat(per_port, "");
    }
    let doc = format!(
        "{}; input {}, output {}",
        d.arch
            .stages
            .iter()
            .map(|s| format!("layer {} {}", s.layer, s.kind_name()))
            .collect::<Vec<_>>()
            .join(", "),
        match d.source {
            Source::Host { lo, hi } if d.host_cols.0 > 0 || d.host_cols.1 < sys.whole.input.w =>
                format!(
                    "image rows {lo}..{hi}, columns {}..{} from the host",
                    d.host_cols.0,
                    d.host_cols.1 - 1
                ),
            Source::Host { lo, hi } => format!("image rows {lo}..{hi} from the host"),
            Source::Link { from } => format!("from device {from}"),
        },
        match d.sink {
            Sink::Host => "to the host".to_string(),
            Sink::Link { to } if d.also.is_empty() => format!("to device {to}"),
            Sink::Link { to } => format!("to devices {to} and {:?} (a copy each)", d.also),
        }
    );
    LinkView {
        me,
        ndev: n,
        wiring: if sys.mode == crate::plan::LinkMode::Host {
            "host-relayed".into()
        } else {
            sys.topology.to_string()
        },
        lw,
        dw,
        doc,
        ports: d
            .ports
            .iter()
            .enumerate()
            .map(|(i, (tx, rx))| PortDoc {
                index: i,
                doc: match (tx, rx, sys.switched) {
                    (_, _, true) => "to and from the switch".into(),
                    (Some(t), Some(r), _) => format!("tx to device {t}, rx from device {r}"),
                    (Some(t), None, _) => format!("tx to device {t}"),
                    (None, Some(r), _) => format!("rx from device {r}"),
                    (None, None, _) => "not connected".into(),
                },
            })
            .collect(),
        from_doc: from.map_or("(none)".into(), |f| f.to_string()),
        wait_expr,
        np,
        np2: 2 * np,
        np3: 3 * np,
        np7: 7 * np,
        npd: dw as usize * np,
        npw: lw as usize * np,
        npv: sys.link.vpb_w as usize * np,
        rx_port,
        rx_port2: 2 * rx_port,
        rx_portd: dw as usize * rx_port,
        ack_expr,
        lk: sys.link,
        maxb: partita_hdl::frame::MAX_PAYLOAD_BEATS,
        tq_w,
        bar_w: bits_for(n as u64),
        others: format!("{others:02x}"),
        routes: format!("{:04x}", d.routes),
        hmasks: format!("{hmasks:016x}"),
        hub: HubConns::new(np),
        tq_push,
        tq_in,
        // Nothing takes the link values through rx_take: no link source, or a queued device
        // whose input, if any, has a queue of its own and that neither gathers nor reduces.
        no_rx: from.is_none() || (queued && gather_q.is_empty()),
        xs,
        ms,
        unused,
        vw: bits_for(sys.link.vpb_h as u64),
        vbw: sys.link.vpb_h * dw,
        all_expr,
        queued,
        rxq,
        gather_q,
        reduce_q,
        in_q,
        scatters,
        tap,
        grants,
        nlayers: if queued { 8 } else { 1 },
        layer_w,
        npl: np * layer_w as usize,
        y_g: queued && to.is_some(),
        own_w,
        reqs: runs,
        run_tags,
        run_dsts,
        run_want,
        run_last,
        run_value,
    }
}

/// A transmit run's request (see `partita_tx_runs`): its grant, want, last and value
/// signals, the value's width, and its frame tag and destination.
struct Req {
    grant: String,
    want: String,
    last: String,
    value: String,
    w: u32,
    tag: u8,
    dst: usize,
    doc: String,
}

/// A scatter's run: the destination's place in the stack, the device, its frame tag and its
/// box (rows, columns, channels: first and one past the last).
type ScatterEntry = (usize, usize, u8, [(usize, usize); 3]);

/// Box `bx` (rows, columns, channels: first and one past the last) of map `m` as a condition
/// on a scatter's counters.
fn box_cond(bx: &[(usize, usize); 3], m: Map, v: &ScatterView) -> String {
    let p = &v.p;
    let mut cond = Vec::new();
    for ((a, b), (name, w, len)) in bx.iter().zip([
        (format!("{p}_sy"), v.yw, m.h),
        (format!("{p}_sx"), v.xw, m.w),
        (format!("{p}_sc"), v.cw, m.c),
    ]) {
        if *a > 0 {
            cond.push(format!("({name} >= {w}'d{a})"));
        }
        if *b < len {
            cond.push(format!("({name} < {w}'d{b})"));
        }
    }
    if cond.is_empty() {
        "1'b1".into()
    } else {
        cond.join(" && ")
    }
}

/// A scatter of map `m` (a stream of `valid` and `value`, `w` bits) as one transmit run per
/// entry of `list` (its place in the stack, device, frame tag and box), counters prefixed `p`
/// and run signals `rp`: the view, its requests in `reqs`, and per run the condition that it
/// has the current value (a value is taken when every run has it).
#[allow(clippy::too_many_arguments)]
fn scatter_runs(
    m: Map,
    list: &[ScatterEntry],
    p: &str,
    rp: &str,
    valid: &str,
    value: &str,
    w: u32,
    reqs: &mut Vec<Req>,
    hmasks: &mut u64,
) -> (ScatterView, Vec<String>) {
    let cw = bits_for(m.c.max(2) as u64 - 1);
    let xw = bits_for(m.w.max(2) as u64 - 1);
    let yw = bits_for(m.h.max(2) as u64 - 1);
    let nr = list.len();
    let mut view = ScatterView {
        doc: String::new(),
        p: p.to_string(),
        fire: if p == "y" {
            "y_valid && y_ready".into()
        } else {
            format!("{p}_take")
        },
        cw,
        xw,
        yw,
        c_last: m.c - 1,
        x_last: m.w - 1,
        y_last: m.h - 1,
        nr,
        grants: (0..nr)
            .rev()
            .map(|j| format!("{rp}{j}_g"))
            .collect::<Vec<_>>()
            .join(", "),
        runs: Vec::new(),
    };
    let mut done = Vec::new();
    for (j, &(_, dev, tag, bx)) in list.iter().enumerate() {
        *hmasks |= 1u64 << (8 * tag as u64 + dev as u64);
        let run = ScatterRun {
            g: format!("{rp}{j}_g"),
            inw: format!("{rp}{j}_in"),
            cond: box_cond(&bx, m, &view),
        };
        done.push(format!("(!{rp}{j}_in || {p}_sent[{j}] || {rp}{j}_g)"));
        let [(r0, r1), (x0, x1), (c0, c1)] = bx;
        reqs.push(Req {
            grant: run.g.clone(),
            want: format!("{valid} && {rp}{j}_in && !{p}_sent[{j}]"),
            last: format!(
                "({p}_sy == {yw}'d{}) && ({p}_sx == {xw}'d{}) && ({p}_sc == {cw}'d{})",
                r1 - 1,
                x1 - 1,
                c1 - 1
            ),
            value: value.to_string(),
            w,
            tag,
            dst: dev,
            doc: format!(
                "rows {r0}-{}, columns {x0}-{}, channels {c0}-{} to device {dev}",
                r1 - 1,
                x1 - 1,
                c1 - 1
            ),
        });
        view.runs.push(run);
    }
    (view, done)
}

/// A Verilog concatenation of `items`, the first in the low bits: the one item alone, `empty`
/// for none.
fn concat(mut items: Vec<String>, empty: &str) -> String {
    items.reverse();
    match items.len() {
        0 => empty.to_string(),
        1 => items.remove(0),
        _ => format!("{{{}}}", items.join(", ")),
    }
}

/// Whether a device's received streams each wait in a queue of their own and its transmit
/// queue is shared by runs: halo exchanges, all-gathers, scatters, and a device fed from a
/// link that also gathers or reduces, or takes a scatter's frames (tagged).
fn queued(d: &CnnDevice) -> bool {
    d.tap.is_some()
        || !d.exchanges.is_empty()
        || !d.merges.is_empty()
        || d.scatter.is_some()
        || d.in_tag != 0
        || (matches!(d.source, Source::Link { .. })
            && (!d.gathers.is_empty() || !d.reduces.is_empty()))
        || d.gathers.len() > 1
}

/// A halo exchange's signal prefix: `x{stage}`, a grid's column exchange `c{stage}`.
fn xid(x: &Exchange) -> String {
    format!("{}{}", if x.across { 'c' } else { 'x' }, x.stage)
}

/// The signal prefixes of a device's `k`th reduction: its sums (`r`) and, on the finisher,
/// its finished values (`f`); the first keeps the plain names.
fn reduce_names(k: usize) -> (String, String) {
    if k == 0 {
        ("r".into(), "f".into())
    } else {
        (format!("r{k}"), format!("f{k}"))
    }
}

/// Receive queue `j` read `w` bits wide out of the frame's `h_width`: its data, valid and
/// ready signals, and the unused bits above (for the lint waiver list).
fn queue_read(j: usize, w: u32, h_width: u32) -> (String, String, String, String) {
    (
        format!("q{j}_data[{w}-1:0]"),
        format!("q{j}_valid"),
        format!("q{j}_ready"),
        if h_width > w {
            format!(", q{j}_data[{}:{w}]", h_width - 1)
        } else {
            String::new()
        },
    )
}

/// The signal prefix of a device's `k`th gather: `g`, then `g1`, ...
fn gather_name(k: usize) -> String {
    if k == 0 {
        "g".into()
    } else {
        format!("g{k}")
    }
}

/// `2^aw` entries, at least `n` (and 2).
fn fifo_size(n: usize) -> (usize, u32) {
    let depth = n.max(2).next_power_of_two();
    (depth, bits_for(depth as u64 - 1))
}

/// Every file of one CNN device: alone, or device `dev` of a system.
fn device_files(
    design: &Design,
    a: &CnnArch,
    dev: Option<(&CnnSystem, &CnnDevice)>,
    vectors: Option<&super::Vectors>,
) -> Result<Vec<File>, String> {
    let me = dev.map_or(0, |d| d.1.index);
    let prefix = module_prefix(design, me);
    let top = top_module(design, me);
    let regs_name = format!("{prefix}regs");
    let hdr = header(design);
    let mut used = vec![
        cores::REQUANT,
        cores::SKID,
        cores::AXIL,
        cores::UNPACK,
        cores::PACK,
    ];
    if let Some((_, d)) = dev {
        used.push(cores::LINK_HUB);
        let queued = queued(d);
        if !d.gathers.is_empty() || queued || !d.reduces.is_empty() {
            used.push(cores::SFIFO);
        }
        if !d.gathers.is_empty() {
            used.push(cores::GATHER);
        }
        if !d.merges.is_empty() {
            used.push(cores::MERGE);
        }
        if d.merges.iter().any(|m| m.crop.is_some()) {
            used.push(cores::CROP);
        }
        if queued {
            used.push(cores::TX_RUNS);
            used.push(cores::RXQ);
        }
    }
    let mut files = core_files(design, &used);
    let mut insts = Vec::new();
    let mut mems = Vec::new();
    let n = a.stages.len();
    for (i, st) in a.stages.iter().enumerate() {
        let name = format!("{prefix}st{i}");
        let mem_prefix = format!("st{i}");
        let view = stage_view(design, &a, st, &name, &mem_prefix)?;
        files.push(module_file(&name, render(view.render())?));
        let mut inst_mems = Vec::new();
        if let StageKind::Mvu(m) = &st.kind {
            for e in 0..m.pe {
                for (kind, tag) in [("WEIGHTS", "w"), ("BIAS", "b")] {
                    let param = format!("ST{i}_{kind}_E{e}");
                    mems.push(MemParam {
                        param: param.clone(),
                        file: format!("{mem_prefix}_{tag}{e}.hex"),
                    });
                    inst_mems.push((format!("{kind}_E{e}"), param));
                }
            }
            files.extend(images(design, st, &mem_prefix));
        }
        let gather_here = dev
            .and_then(|d| d.1.gathers.iter().position(|g| g.after == i))
            .map(gather_name);
        let finish_here = dev.and_then(|d| {
            d.1.reduces
                .iter()
                .position(|r| r.after == i && r.finish.is_some())
                .map(|k| reduce_names(k).1)
        });
        let xchg_here = dev.is_some_and(|d| d.1.exchanges.iter().any(|x| x.stage == i));
        let merge_here = dev.is_some_and(|d| d.1.merges.iter().any(|m| m.stage == i));
        let tap_here = dev.is_some_and(|d| d.1.tap.as_ref().is_some_and(|t| t.at == i));
        let (s_data, s_valid, s_ready) = if tap_here {
            (
                "z_m_data".to_string(),
                "z_m_valid".to_string(),
                "z_m_ready".to_string(),
            )
        } else if merge_here {
            (
                format!("a{i}_m_data"),
                format!("a{i}_m_valid"),
                format!("a{i}_m_ready"),
            )
        } else if xchg_here {
            (
                format!("x{i}_m_data"),
                format!("x{i}_m_valid"),
                format!("x{i}_m_ready"),
            )
        } else if let Some(p) = gather_here {
            (
                format!("{p}_data"),
                format!("{p}_valid"),
                format!("{p}_ready"),
            )
        } else if let Some(f) = finish_here {
            (
                format!("{f}_data"),
                format!("{f}_valid"),
                format!("{f}_ready"),
            )
        } else if i == 0 {
            (
                "st0_s_data".to_string(),
                "st0_s_valid".to_string(),
                "st0_s_ready".to_string(),
            )
        } else {
            (
                format!("st{i}_s_data_w"),
                format!("st{i}_s_valid_w"),
                format!("st{i}_s_ready_w"),
            )
        };
        insts.push(StageInst {
            index: i,
            next: i + 1,
            module: name,
            mvu: matches!(st.kind, StageKind::Mvu(_)),
            mems: inst_mems,
            s_data,
            s_valid,
            s_ready,
            dwo: st.dw_out,
            clw: view.clw,
        });
    }
    let mut map = regmap::device_map(dev.is_some(), 1);
    map.retain(|w| !matches!(w.reg.name, "WSEL" | "WADDR" | "WDATA" | "WCOMMIT"));
    let (regs_text, reg_conns) = regmap::decode_module(
        hdr.clone(),
        &regs_name,
        &map,
        1,
        &|name| match name {
            // The register table's NODE: device index << 8 | device count.
            "NODE" => Some(dev.map_or(0, |d| ((me << 8) | d.0.devices.len()) as u32)),
            _ => design_value(design, a, name),
        },
        &|name| {
            if dev.is_some() {
                link_signal(name)
            } else {
                Some(name.to_ascii_lowercase())
            }
        },
    )?;
    let clws: Vec<u32> = insts.iter().map(|s: &StageInst| s.clw).collect();
    // The finisher of a reduced layer clips at most one value per cycle more.
    let finisher = dev.map_or(0, |d| {
        d.1.reduces.iter().filter(|r| r.finish.is_some()).count()
    });
    let satw = bits_for(
        a.stages
            .iter()
            .map(|s| s.multipliers().max(1))
            .sum::<usize>() as u64
            + finisher as u64,
    );
    let il = a.in_layout;
    let ol = a.out_layout;
    let no_gathers = Vec::new();
    let gs = dev.map_or(&no_gathers, |d| &d.1.gathers);
    let src_link = dev.is_some_and(|d| matches!(d.1.source, Source::Link { .. }));
    let sink_to = dev.and_then(|d| match d.1.sink {
        Sink::Link { to } => Some(to),
        Sink::Host => None,
    });
    // A reduction after the last stage: its sums (or, on the finisher of the reduced layer,
    // its finished values) are the output.
    let reduce_last = dev.and_then(|d| {
        d.1.reduces.iter().position(|r| r.after == n).map(|k| {
            let (rp, fp) = reduce_names(k);
            if d.1.reduces[k].finish.is_some() {
                fp
            } else {
                rp
            }
        })
    });
    let (last_data, last_valid, last_ready) = if let Some(k) = gs.iter().position(|g| g.after == n)
    {
        let p = gather_name(k);
        (
            format!("{p}_data"),
            format!("{p}_valid"),
            format!("{p}_ready"),
        )
    } else if let Some(p) = &reduce_last {
        (
            format!("{p}_data"),
            format!("{p}_valid"),
            format!("{p}_ready"),
        )
    } else {
        (
            format!("st{n}_s_data_w"),
            format!("st{n}_s_valid_w"),
            format!("st{n}_s_ready_w"),
        )
    };
    let no_reduces = Vec::new();
    let reduces = dev
        .map_or(&no_reduces, |d| &d.1.reduces)
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let f = r.finish.as_ref();
            let aw = a.stages[r.after - 1].dw_out;
            let mask = if aw >= 128 {
                u128::MAX
            } else {
                (1u128 << aw) - 1
            };
            // The local sums wait for the remote ones, which come a frame's fill, a link crossing
            // and a CRC check later, in bursts of a frame: room for four frames and the latency
            // both ways, so neither side's stage stalls in steady state.
            let (depth, law) = dev.map_or((2, 1), |(sys, _)| {
                fifo_size(
                    (4 * sys.link.maxv_h as usize + 2 * sys.latency as usize)
                        .min(4 * r.values.max(2)),
                )
            });
            ReduceView {
                depth,
                law,
                rem_d: format!("rx_d[{aw}-1:0]"),
                rem_v: "rx_v".into(),
                take: "rx_take".into(),
                layer: a.stages[r.after - 1].layer,
                from: r.from,
                st: r.after - 1,
                aw,
                l_data: format!("st{}_s_data_w", r.after),
                l_valid: format!("st{}_s_valid_w", r.after),
                l_ready: format!("st{}_s_ready_w", r.after),
                finish: f.is_some(),
                dwo: f.map_or(aw, |f| f.dw_out),
                relu: f.is_some_and(|f| f.relu),
                cw: bits_for(f.map_or(1, |f| f.bias.len()).max(2) as u64 - 1),
                c_last: f.map_or(0, |f| f.bias.len() - 1),
                bias: f.map_or(Vec::new(), |f| {
                    f.bias
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| **b != 0)
                        .map(|(c, b)| {
                            let v = ((*b as i128) << f.bias_shift) as u128 & mask;
                            (c, format!("{aw}'h{v:x}"))
                        })
                        .collect()
                }),
                shr: f.map_or(0, |f| f.shr),
                shl: f.map_or(0, |f| f.shl),
                round_ne: a.round_ne as u32,
                sat: a.sat as u32,
                p: reduce_names(k).0,
                f: reduce_names(k).1,
            }
        })
        .collect::<Vec<_>>();
    let gathers = gs
        .iter()
        .enumerate()
        .map(|(k, g)| GatherView {
            p: gather_name(k),
            inst: if k == 0 {
                "u_gather".into()
            } else {
                format!("u_gather{k}")
            },
            rem_d: format!("rx_d[{}-1:0]", a.stages[g.after - 1].dw_out),
            rem_v: "rx_v".into(),
            take: "rx_take".into(),
            what: if g.on_grid() {
                "the tiles of a grid in raster order, a period per output row of this tile"
            } else if g.periods > 1 {
                "per pixel"
            } else {
                "a strip per frame"
            },
            local: g.local,
            remote: g.remote,
            from: g.from,
            cw: bits_for(g.local.max(g.remote).max(g.tail) as u64 - 1),
            dw: a.stages[g.after - 1].dw_out,
            periods: g.periods,
            pw: bits_for(g.periods as u64 - 1),
            tail: g.tail,
            depth: (g.local * g.periods).max(2).next_power_of_two(),
            aw: bits_for((g.local * g.periods).max(2).next_power_of_two() as u64 - 1),
            l_data: format!("st{}_s_data_w", g.after),
            l_valid: format!("st{}_s_valid_w", g.after),
            l_ready: format!("st{}_s_ready_w", g.after),
        })
        .collect::<Vec<_>>();
    let mut unused_extra = if src_link {
        String::new()
    } else {
        ", x_last, x_run_beat, x_run_avail".to_string()
    };
    if !src_link && a.in_layout.slot_bits > a.dw_in {
        unused_extra += &format!(", x_slot[{}:{}]", a.in_layout.slot_bits - 1, a.dw_in);
    }
    if dev.is_some() {
        unused_extra += ", dev_id, tq_full, tx_idle, tq_full_n, rv_valid, rv_type, rv_data, rv_par, rv_src, rv_layer, rv_count, rv_avail, rv_beat, rv_vi, ok_p, bar_ok";
        let in_q = dev.is_some_and(|d| queued(d.1) && src_link);
        if (!src_link || in_q) && gs.is_empty() {
            unused_extra += ", rx_v, rx_d";
        }
        if let Some((_, d)) = dev {
            if queued(d) && gs.is_empty() {
                unused_extra += ", rx_take";
            }
            // A gather of values narrower than the frames' (partial sums elsewhere).
            if let (Some(g), Some((sys, _))) = (gs.first(), dev) {
                let gdw = a.stages[g.after - 1].dw_out;
                if sys.frame.h_width > gdw {
                    unused_extra += &format!(", rx_d[{}:{gdw}]", sys.frame.h_width - 1);
                }
            }

            for x in &d.exchanges {
                let id = xid(x);
                if !x.has_up() {
                    unused_extra += &format!(", {id}_want_up");
                }
                if !x.has_down() {
                    unused_extra += &format!(", {id}_want_dn");
                }
            }
        }
        if src_link {
            unused_extra += ", s_axis_tdata, s_axis_tkeep, s_axis_tvalid, s_axis_tlast";
            // Values arrive sign-extended to the widest value any device sends (partial sums
            // of a `channels` stack): the first stage takes its own width.
            if let Some((sys, _)) = dev.filter(|(sys, _)| sys.frame.h_width > a.dw_in && !in_q) {
                unused_extra += &format!(", rx_d[{}:{}]", sys.frame.h_width - 1, a.dw_in);
            }
        }
        if sink_to.is_some() {
            unused_extra += ", m_axis_tready";
        }
    }
    // `tiles`: frames out of the stack's last stage (before the gather and the layers after
    // the stack), which the input waits for.
    let gate = dev.filter(|d| d.1.in_flight > 0).map(|(_, d)| {
        let at = d.gathers.last().map_or(d.arch.stages.len(), |g| g.after);
        let vals = d.arch.stages[at - 1].output.values();
        GateView {
            n: d.in_flight,
            at,
            pw: bits_for(vals.max(2) as u64 - 1),
            last: vals - 1,
        }
    });
    let mut top_view = TopView {
        in_gate: gate.as_ref().map_or(String::new(), |g| {
            format!(" && (in_frames - stk_frames < 32'd{})", g.n)
        }),
        gate,
        header: hdr.clone(),
        top: top.clone(),
        regs: regs_name.clone(),
        in_c: a.input.c,
        in_h: a.input.h,
        in_w: a.input.w,
        in_vals: a.input.values(),
        out_vals: a.output.values(),
        nstages: n,
        stage_doc: a
            .stages
            .iter()
            .map(|s| format!("layer {} {}", s.layer, s.kind_name()))
            .collect::<Vec<_>>()
            .join(", "),
        mults: a.multipliers(),
        cpf: a.cycles_per_frame,
        mems,
        in_sb: il.beat_bits,
        in_kw: il.keep_bits(),
        in_vb: il.slot_bits,
        in_p: il.per_beat,
        in_cw: bits_for(a.input.values() as u64 - 1),
        in_jw: bits_for(il.per_beat as u64 - 1),
        in_jw1: bits_for(il.per_beat as u64 - 1) + 1,
        in_bw: bits_for(il.beats(a.input.values()) as u64 - 1),
        out_sb: ol.beat_bits,
        out_kw: ol.keep_bits(),
        out_vb: ol.slot_bits,
        out_p: ol.per_beat,
        out_pjw: bits_for(ol.per_beat as u64 - 1),
        wstage_w: 1,
        ivw: bits_for(a.input.values() as u64 - 1),
        ovw: bits_for(a.output.values() as u64 - 1),
        in_last: a.input.values() - 1,
        out_last: a.output.values() - 1,
        dwi: a.dw_in,
        dwo: a.dw_out,
        relu_in: a.relu_in,
        stages: insts,
        last_data,
        last_valid,
        last_ready,
        y_ready: if dev.is_some_and(|d| queued(d.1)) {
            "y_g".into()
        } else {
            "!tq_full".into()
        },
        // The host output's slot (a device that sends its output on a link packs none).
        y_ext: if sink_to.is_none() {
            sext("y_val", a.dw_out, ol.slot_bits)
        } else {
            String::new()
        },
        satw,
        sat_expr: (0..n)
            .map(|i| zext(&format!("clips_{i}"), clws[i], satw))
            .chain(dev.into_iter().flat_map(|d| {
                d.1.reduces
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.finish.is_some())
                    .map(|(k, _)| zext(&format!("{}_clips", reduce_names(k).0), 1, satw))
            }))
            .collect::<Vec<_>>()
            .join(" + "),
        sat_ext: zext("sat_inc", satw, 32),
        reg_conns,
        unused_extra,
        link: None,
        src_link,
        in_v: "rx_v".into(),
        in_d: "rx_d".into(),
        in_take: "rx_take".into(),
        src_from: match dev.map(|d| d.1.source) {
            Some(Source::Link { from }) => from,
            _ => 0,
        },
        rx_port: 0,
        gathers,
        reduces,
        sink_link: sink_to.is_some(),
        sink_to: sink_to.unwrap_or(0),
        fault: if dev.is_some() { "link_err" } else { "1'b0" }.to_string(),
    };
    if let Some((sys, d)) = dev {
        let lv = link_view(sys, d, &top_view);
        top_view.unused_extra += &lv.unused;
        if let Some(j) = lv.in_q {
            top_view.in_v = format!("q{j}_valid");
            top_view.in_d = format!("q{j}_data");
            top_view.in_take = format!("q{j}_ready");
            if sys.frame.h_width > a.dw_in {
                top_view.unused_extra +=
                    &format!(", q{j}_data[{}:{}]", sys.frame.h_width - 1, a.dw_in);
            }
        }
        top_view.rx_port = lv.rx_port;
        // Gathers after the first read their own queues.
        for (&j, g) in lv.gather_q.iter().zip(top_view.gathers.iter_mut()).skip(1) {
            let (d, v, t, unused) = queue_read(j, g.dw, sys.frame.h_width);
            (g.rem_d, g.rem_v, g.take) = (d, v, t);
            top_view.unused_extra += &unused;
        }
        for (&j, r) in lv.reduce_q.iter().zip(top_view.reduces.iter_mut()) {
            let (d, v, t, unused) = queue_read(j, r.aw, sys.frame.h_width);
            (r.rem_d, r.rem_v, r.take) = (d, v, t);
            top_view.unused_extra += &unused;
        }
        top_view.link = Some(lv);
    }
    files.push(module_file(&regs_name, regs_text));
    files.push(module_file(&top, render(top_view.render())?));
    files.push(File {
        name: "regmap.json".into(),
        text: regmap_json(design, &a, &top, &map),
    });
    files.push(File {
        name: "partita_regs.h".into(),
        text: regmap::c_header(design, &map),
    });
    files.push(file_list(design, "", &top, &files));
    if let Some(v) = vectors {
        files.extend(super::testbench::files_for(
            hdr,
            &top,
            (a.in_layout, a.input.values()),
            (a.out_layout, a.output.values()),
            2 * a.cycles_per_frame + 1000,
            v,
        )?);
    }
    Ok(files)
}

fn regmap_json(design: &Design, a: &CnnArch, top: &str, map: &[partita_hdl::regs::Word]) -> String {
    let (il, ol) = (a.in_layout, a.out_layout);
    let bus = serde_json::json!({
        "control": "AXI4-Lite, 32-bit data, 12-bit byte address",
        "input": format!("AXI4-Stream, {} bits: {} value(s) of {} bits per beat in {}-bit slots from bit 0; a frame of {} values in (y, x, c) order starts a beat, its last beat has tlast and tkeep low for empty slots", il.beat_bits, il.per_beat, il.data_bits, il.slot_bits, a.input.values()),
        "output": format!("AXI4-Stream, {} bits: {} value(s) of {} bits per beat in {}-bit slots (sign-extended); a frame of {} values in (y, x, c) order", ol.beat_bits, ol.per_beat, ol.data_bits, ol.slot_bits, a.output.values()),
    });
    let stages: Vec<serde_json::Value> = a
        .stages
        .iter()
        .map(|s| {
            let (pe, lanes, nnz) = match &s.kind {
                StageKind::Mvu(m) => (m.pe, m.lanes, m.nnz),
                StageKind::Pool => (0, 0, 0),
            };
            serde_json::json!({
                "layer": s.layer, "kind": s.kind_name(), "engines": pe, "lanes": lanes, "slices": nnz,
                "input": [s.input.c, s.input.h, s.input.w], "output": [s.output.c, s.output.h, s.output.w],
                "line_buffer_rows": s.window.rows, "line_buffer_copies": s.copies, "relu": s.relu_out,
                "cycles_per_frame": s.cycles,
            })
        })
        .collect();
    regmap::json(
        design,
        top,
        bus,
        serde_json::json!({
            "input_shape": [a.input.c, a.input.h, a.input.w], "output_values": a.output.values(),
            "stream_order": "(y, x, c)", "stages": stages, "multipliers": a.multipliers(),
            "cycles_per_frame": a.cycles_per_frame, "frames_per_run": "SEQ_COUNT",
        }),
        serde_json::json!({}),
        map,
    )
}
