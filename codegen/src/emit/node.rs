//! The devices of a multi-device system, each under `dev{d}/`: its top (template
//! `partita_node.v`: controller, engine, per-layer schedule constants), its partial-sum reducer
//! (`partita_reduce.v`) and vector-memory write port (`partita_vwrite.v`), the element-wise
//! unit, the register decode, the library cores (the link ports are `partita_link_hub`), memory
//! images, register map and file list; plus the `system.json` the cosimulation and the host
//! driver wire together. What each device computes and sends comes from the schedule pass;
//! widths and memory layouts from `arch::lstm`.
//!
//! Rows are issued unit by unit, in gate order within a unit, grouped by the finisher they go
//! to; the finisher writes each source's partial sums into one memory per (source, gate) and
//! sums them at full width.

use askama::Template;
use partita_hdl::cores;
use partita_hdl::frame::{self, MAX_PAYLOAD_BEATS};

use super::verilog::{
    core_files, file_list, fit, header, mask_bits, module_file, render, sext, zext, File, HubConns,
    Names, Word,
};
use super::{engine, ew, memory, regmap, tables, top};
use crate::arch::bits_for;
use crate::arch::lstm::{self, LinkWidths, NodeArch, System};
use crate::design::Design;
use crate::plan::LinkMode;

struct PortView {
    index: usize,
    doc: String,
}

struct NodeLayerConst {
    index: usize,
    mac: u8,
    fin: u8,
    needh: u8,
    out: u8,
    rows: usize,
    slots: usize,
    slices: usize,
    nih: usize,
    wbase: usize,
    /// Where the h pass reads (layer 0 with `overlap`).
    wbase_h: usize,
    bbase: usize,
    xbase0: usize,
    xbase1: usize,
    hbase0: usize,
    hbase1: usize,
    /// This layer's bits of the identity's per-layer vectors ("hi:lo").
    pdst: String,
    nfin: String,
    pbase: String,
    flane: String,
    fidx: String,
    hmask: String,
}

/// Widths of a node identity's outputs (the same for every device of a node design).
struct IdentWidths {
    pdst_w: u32,
    plocal_w: u32,
    nfin_w: u32,
    pbase_w: u32,
    flane_w: u32,
    fidx_w: u32,
    hstart_w: u32,
    hstarts_w: u32,
}

/// One device's identity: its constants as Verilog literal digits.
struct IdentDev {
    index: usize,
    others: String,
    routes: String,
    hmasks: String,
    bc_fwd: String,
    node: String,
    pdst: String,
    plocal: String,
    nfin: String,
    pbase: String,
    flane: String,
    fidx: String,
    hstarts: String,
}

#[derive(Template)]
#[template(path = "partita_ident.v", escape = "none")]
struct IdentView {
    header: String,
    name: String,
    design: String,
    members: String,
    w: IdentWidths,
    devs: Vec<IdentDev>,
}

#[derive(Template)]
#[template(path = "partita_device.v", escape = "none")]
struct DeviceView {
    header: String,
    top: String,
    node: String,
    ident: String,
    me: usize,
    ndev: usize,
    members: String,
    topology: String,
    lw: u32,
    engine_list: Vec<usize>,
    /// Per weight chunk: parameter and file suffixes (see `engine::weight_suffixes`).
    wsuffix: Vec<(String, String)>,
    ports: Vec<PortView>,
    input_size: usize,
    needs_x: bool,
    s: lstm::StreamGeom,
    n_out: usize,
    out_u0: usize,
}

#[derive(Template)]
#[template(path = "partita_node.v", escape = "none")]
struct NodeView {
    header: String,
    p: Names,
    /// The node design's name (its module prefix without the trailing underscore).
    design: String,
    /// Layer 0's W_ih·x runs ahead of the gather (`NodeArch::overlap`); the h pass's bias word.
    overlap: bool,
    bzero: usize,
    id: IdentWidths,
    /// Vector words: word-address width, values, bits; received beats and slot indices.
    vwa: u32,
    vq: usize,
    vqd: u32,
    beat_bits: u32,
    vi_bits: u32,
    ndev: usize,
    topology: String,
    port_doc: String,
    lw: u32,
    layers_n: usize,
    layers_last: usize,
    /// Entries of the per-layer activity register: every value of the layer index.
    l_act_n: usize,
    input_size: usize,
    hidden: usize,
    k: usize,
    /// Row engines, their indices, the serializer index width and the last index; sums per
    /// serializer cycle (G), its cycles per load (M / G) and the registers that shift.
    m: usize,
    engine_list: Vec<usize>,
    /// Per weight chunk: parameter and file suffixes (see `engine::weight_suffixes`).
    wsuffix: Vec<(String, String)>,
    engine_rev: Vec<usize>,
    /// The row FIFO (`NodeArch::rf_depth`): entry width, address and count widths, depth, and
    /// the credit bound of the issue.
    rf_w: u32,
    rf_aw: u32,
    rf_cw: u32,
    rf_depth: usize,
    rf_room: usize,
    eng_w: u32,
    m_last: usize,
    g: usize,
    m_groups: usize,
    shift_list: Vec<usize>,
    ports: Vec<PortView>,
    nports: u32,
    s: lstm::StreamGeom,
    n_out: usize,
    wstage_w: u32,
    unused_regs: String,
    layer_w: u32,
    l32: String,
    row_w: u32,
    rows_w: u32,
    slice_w: u32,
    unit_w: u32,
    nfin_w: u32,
    waw: u32,
    baw: u32,
    vaw: u32,
    paw: u32,
    lane_w: u32,
    layer_consts: Vec<NodeLayerConst>,
    ofifo_depth: usize,
    ofifo_depth_m1: usize,
    ofifo_aw: u32,
    ofifo_cnt_w: u32,
    of_w: u32,
    dw: u32,
    accw: u32,
    wword: u32,
    bw: u32,
    type_bits: u32,
    src_bits: u32,
    layer_bits: u32,
    count_bits: u32,
    data_bits: u32,
    feed_w: u32,
    tq_w: u32,
    lk: LinkWidths,
    maxb: u32,
    bcast: u8,
    rx_aw: u32,
    rxd: usize,
    txq_aw: u32,
    txq_depth: usize,
    bar_w: u32,
    /// The link hub's stream connections.
    hub: HubConns,
    unit_ext: String,
    ew_h_acc: String,
    out_ext: String,
    reg_conns: Vec<regmap::Conn>,
    /// Element-wise lanes (`NodeArch::e`), log2 of it, their indices; the bits of a group's
    /// h values; the saturation count's increment; the output packer's count and index widths.
    ew_n: usize,
    /// The serializer's registers (padded to whole groups of G), the padding alone, a group's
    /// registers high first and their bits (shift_list: those that shift). With `ge` it hands
    /// over groups of E units (G = 4 E, E > 1), up to ld_units per load.
    ge: bool,
    pad_list: Vec<usize>,
    pad_only: Vec<usize>,
    group_rev: Vec<usize>,
    ld_units: usize,
    g_accw: u32,
    eq1: u32,
    rs_n_ext: String,
    rows_w_2: u32,
    eq: u32,
    lanes: Vec<usize>,
    hw: u32,
    pc_w: u32,
    sat_expr: String,
    feed_all: u32,
    ocw: u32,
    pjw: u32,
    /// Transmit-queue entry value width, and a partial sum extended to it.
    qw: u32,
    row_acc_q: String,
}

struct SlotLayer {
    index: usize,
    mask: String,
    pbase: usize,
    n: usize,
    /// Values per unit (the gates the source computes).
    per_unit: usize,
}

struct SlotView {
    index: usize,
    dev: usize,
    local: bool,
    /// The node's own x-part sums of layer 0 (with `overlap`).
    xpart: bool,
    port: usize,
    layers: Vec<SlotLayer>,
    layers_all: Vec<usize>,
    slot_ext: String,
    /// The slot register itself, sized for the address (the local slot of grouped writes).
    slot_ext_g: String,
    wrap_ext: String,
    count_ext: String,
}

#[derive(Template)]
#[template(path = "partita_reduce.v", escape = "none")]
struct ReduceView {
    header: String,
    name: String,
    layer_w: u32,
    layers_n: usize,
    accw: u32,
    nports: u32,
    ports: Vec<usize>,
    src_bits: u32,
    layer_bits: u32,
    data_bits: u32,
    count_bits: u32,
    unit_w: u32,
    paw: u32,
    pdepth: usize,
    cnt_w: u32,
    feed_w: u32,
    slots: Vec<SlotView>,
    /// Layer 0's x-part sums arrive on `local_x_en` (see `NodeArch::overlap`).
    overlap: bool,
    gates: Vec<usize>,
    /// The local slot takes one unit's four gate sums per write (the serializer's G = 4).
    g4: bool,
    local_w: u32,
    fslot_ext: String,
    psum_w: u32,
    /// The finisher's adder levels before the last (whose sums are psum), and the pipeline
    /// from a unit taken to its rounded pre-activations (`NodeArch::fin_latency` - 1 stages).
    sum_tree: Vec<SumNode>,
    sum_levels: u32,
    fin_lat: u32,
    fin_stages: u32,
    fin_hi: u32,
    rnd_w: u32,
    pre_w: u32,
    pre_shr: u32,
    pre_shl: u32,
    round_ne: u32,
    sat: u32,
    /// Element-wise lanes (`NodeArch::e`): banks per memory, units per finisher group.
    e: usize,
    /// log2(e), and with the gate's two bits.
    eq: u32,
    eq2: u32,
    lanes: Vec<usize>,
    /// Each lane's name suffix on the finisher's registers (none with one lane), and reversed.
    lane_sfx: Vec<LaneSfx>,
    lane_sfx_rev: Vec<LaneSfx>,
    /// The finisher's columns (a lane's gate each, 4 e; one advance copy each) lane by lane
    /// (gates inside), and gate by gate (lanes inside).
    cols: Vec<RedCol>,
    cols_by_gate: Vec<RedCol>,
    /// Words per bank.
    bdepth: usize,
    /// Width of the count of saturated pre-activations in a cycle, and its sum.
    pc_w: u32,
    clips_sum: String,
    /// The feed's width: e lanes of four pre-activations.
    feed_all: u32,
    /// The local slot takes a group of up to e units per write (the serializer's G = 4 e).
    ge: bool,
    /// Per bank, which unit of a group lands in it for each first bank.
    rot: Vec<RotBank>,
    /// A local write's value count and unit count, sized for the counters and slots.
    ln_cnt: String,
    ln_unit: String,
    paw_eq: u32,
    /// One unit's four partial sums.
    unit_acc_w: u32,
}

/// One registered sum of the finisher's adder tree.
struct SumNode {
    name: String,
    width: u32,
    expr: String,
    /// Its column, 4 j + g (lane j, gate g): the advance copy that enables it.
    col: usize,
}

/// A lane of the reducer's finisher: the suffix of its registers' names.
#[derive(Clone)]
struct LaneSfx {
    s: String,
}

/// Column `col` (4 j + g) of the reducer's finisher: lane `j`'s gate `g`, its registers'
/// name suffix, and its partial sum's last adder level.
#[derive(Clone)]
struct RedCol {
    j: usize,
    g: usize,
    s: String,
    col: usize,
    psum: String,
}

/// Bank `b` of a partial-sum memory: for a group whose first unit is in bank k, its unit
/// (b - k) mod E lands here; `items` holds (k, unit).
struct RotBank {
    b: usize,
    items: Vec<(usize, usize)>,
    /// The last bank: no group's first bank lies above it.
    last: bool,
}

/// A layer's two h buffers in the vector memory, as word addresses.
struct HBase {
    index: usize,
    wbase0: usize,
    wbase1: usize,
}

/// A receive port of the vector-memory write port: the expressions that size a write.
struct VPort {
    index: usize,
    /// The port's bit in the writer's one-hot source select (bit 0: local h).
    ds: usize,
    /// The write's first slot (the head index's low bits), vqw + 1 bits and 7 bits.
    ho: String,
    ho7: String,
    /// Whether the head index is in its bank's last word.
    lastw: String,
    /// The count taken (room-wide, `kq`), 7 bits.
    k7: String,
    /// The head beat's values left (7 bits) in two parts: whether any bit at or above the
    /// room's width is set, and the bits below it. The room is at most a word, so the count
    /// taken is the smaller of two numbers of the room's width.
    av_hi: String,
    av_lo: String,
    /// The count taken, sized for the index and the run counter.
    k_idx: String,
    /// The word's room and the beat's values left, as run counts.
    rr_cnt: String,
    av_cnt: String,
}

#[derive(Template)]
#[template(path = "partita_vwrite.v", escape = "none")]
struct VwriteView {
    header: String,
    name: String,
    ports: Vec<VPort>,
    nports: u32,
    /// The one-hot source select's width (local h, the ports, x) and x's bit in it.
    nsel: u32,
    x_sel: u32,
    src_bits: u32,
    layer_bits: u32,
    beat_bits: u32,
    vi_bits: u32,
    n_bits: u32,
    lw: u32,
    /// Bits of a beat's h values, values per beat index width, and each value's (index, low bit).
    hbits: u32,
    vpb_w: u32,
    /// Width of a port's receive slice: source (3), layer, parity, h bits, slot index, count (7).
    skw: u32,
    hvals: Vec<(usize, u32)>,
    /// Vector words: values, index width, word-address width, bits; slots (index, low bit)
    /// and their indices high first.
    vq: usize,
    vqw: u32,
    vwa: u32,
    vqd: u32,
    slots: Vec<(usize, u32)>,
    slots_rev: Vec<usize>,
    /// Width of a count of at most one word's values; values of the bank's last word.
    vqw1: u32,
    r_last: usize,
    beat_unused: String,
    layer_w: u32,
    layers_n: usize,
    /// 1 - layers_n and 2 - layers_n as signed 16-bit literals (the loader's lead limits).
    ahead_l1: String,
    ahead_l2: String,
    /// 1'b1 when the layer count is odd: the x buffer parity flips at a sequence's end.
    layers_odd: String,
    lane_w: u32,
    vaw: u32,
    dw: u32,
    /// The x stream's unpacker: beat bits, slot-index bits (and +1), values by slot.
    xbits: u32,
    xjw: u32,
    xjw1: u32,
    xvals: Vec<(usize, u32)>,
    /// The x write's first slot (vqw + 1 bits and 7 bits), whether the loader is in its bank's
    /// last word, the room left (7 bits), that word's values, and buffer 1's word address.
    xo: String,
    xo7: String,
    xlastw: String,
    xrr7: String,
    rx_last: usize,
    xb1w: usize,
    xav7: String,
    xk_idx: String,
    xrr_cnt: String,
    xav_cnt: String,
    xk_n: String,
    in_w1: u32,
    bh: usize,
    /// Element-wise lanes: a local write is a group of e values (bits hw; write-enable mask
    /// emask; vq_e groups per word); the last group's index in a bank.
    e: usize,
    hw: u32,
    emask: u64,
    vq_e: usize,
    bh_last_e: usize,
    input_size: usize,
    need_x: String,
    hstart_w: u32,
    hstarts_w: u32,
    hcnt_w: u32,
    hs_lane_hi: u32,
    hs_lane_lo: u32,
    hs_idx_hi: u32,
    hs_idx_lo: u32,
    hs_n_hi: u32,
    hbases: Vec<HBase>,
}

/// The node's signal behind each register port of its decode module.
fn node_signal(name: &str) -> Option<String> {
    Some(match name {
        "LINK_STATUS" => "{28'd0, link_status}".into(),
        "LINK_CRC_ERRS" => "crc_errs".into(),
        "LINK_SEQ_ERRS" => "seq_errs".into(),
        "LINK_FMT_ERRS" => "fmt_errs".into(),
        "LINK_ERR_INFO" => "err_info".into(),
        "WADDR" => "waddr_reg".into(),
        "NODE" => "{16'd0, id_node}".into(),
        other => other.to_ascii_lowercase(),
    })
}

/// Generate every device's files; names are prefixed with `dev{d}/`. A `system.json` at the top
/// describes the wiring.
pub fn generate(design: &Design) -> Result<Vec<File>, String> {
    let sys = System::new(design)?;
    let designs = node_designs(design, &sys)?;
    let mut out = Vec::new();
    for n in &sys.schedule.nodes {
        for f in node_files(design, &sys, n.index, &designs)? {
            out.push(File {
                name: format!("dev{}/{}", n.index, f.name),
                text: f.text,
            });
        }
    }
    out.push(File {
        name: "system.json".into(),
        text: system_json(design, &sys, &designs),
    });
    out.push(system_list(design, &out));
    Ok(out)
}

fn system_json(design: &Design, sys: &System, designs: &[usize]) -> String {
    let s = &sys.schedule;
    let v = serde_json::json!({
        "generator": format!("partita {}", crate::VERSION),
        "plan_hash": format!("{:016x}", design.plan.plan_hash),
        "devices": s.nodes.len(),
        "topology": s.topology.to_string(),
        "mode": s.mode.to_string(),
        "link_width": s.width,
        "link_latency": s.latency,
        "links": s.links.iter().map(|l| serde_json::json!({"from": {"device": l.from.0, "port": l.from.1}, "to": {"device": l.to.0, "port": l.to.1}})).collect::<Vec<_>>(),
        "switched": s.switched,
        "input_devices": s.nodes.iter().filter(|n| n.needs_x).map(|n| n.index).collect::<Vec<_>>(),
        "outputs": s.outputs.iter().map(|(d, u0, c)| serde_json::json!({"device": d, "first_unit": u0, "units": c})).collect::<Vec<_>>(),
        "rtl": s.nodes.iter().map(|n| format!("dev{}/files.f", n.index)).collect::<Vec<_>>(),
        "tops": s.nodes.iter().map(|n| super::verilog::top_module(design, n.index)).collect::<Vec<_>>(),
        "node_designs": designs,
        "node_modules": designs.iter().map(|k| format!("{}node", super::verilog::node_design_prefix(*k))).collect::<Vec<_>>(),
        "system_file_list": "system.f",
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// `system.f`: every device's Verilog once, for simulating the whole system in one simulator:
/// each file name once, from the first device that has it (the library cores and a node
/// design's modules are the same text on every device that has them), and each device's top.
fn system_list(design: &Design, files: &[File]) -> File {
    let mut text = format!(
        "// partita {} system file list (plan hash {:016x}); tops {}\n",
        crate::VERSION,
        design.plan.plan_hash,
        (0..design.plan.devices)
            .map(|d| super::verilog::top_module(design, d))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut seen = std::collections::BTreeSet::new();
    for f in files.iter().filter(|f| f.name.ends_with(".v")) {
        let file = f.name.rsplit('/').next().unwrap_or(&f.name);
        if seen.insert(file.to_string()) {
            text += &f.name;
            text += "\n";
        }
    }
    File {
        name: "system.f".into(),
        text,
    }
}

/// The reducer of node `na`: one slot per partial-sum source, its layers' masks, bases, counts.
fn reduce_view(hdr: String, sys: &System, me: usize, name: &str) -> ReduceView {
    let (dp, s, na) = (&sys.arch.dp, &sys.schedule, &sys.nodes[me]);
    let n = &s.nodes[me];
    let np = n.ports.len() as u32;
    let layer_w = na.layer_w;
    let accw = dp.accw;
    let slots: Vec<SlotView> = na
        .slots
        .iter()
        .enumerate()
        .map(|(i, &dev)| SlotView {
            index: i,
            dev,
            local: dev == me,
            xpart: false,
            port: s.port_of(me, dev),
            layers: n
                .layers
                .iter()
                .enumerate()
                .filter_map(|(l, nlay)| {
                    nlay.sources
                        .iter()
                        .find(|s| s.0 == dev)
                        .map(|src| SlotLayer {
                            index: l,
                            mask: mask_bits(src.1, 4),
                            pbase: na.layers[l].pbase,
                            n: nlay.fin.len() * src.1.count_ones() as usize,
                            per_unit: src.1.count_ones() as usize,
                        })
                })
                .collect(),
            layers_all: (0..sys.arch.layers).collect(),
            slot_ext: fit(&format!("pw_cs_{i}"), na.unit_w, na.paw),
            slot_ext_g: fit(&format!("pw_slot_{i}"), na.unit_w, na.paw),
            wrap_ext: zext(&format!("pw_ng_{i}[2]"), 1, na.unit_w),
            count_ext: zext(&format!("cnt_{}", s.port_of(me, dev)), 7, na.cnt_w),
        })
        .collect();
    // W_ih·x ahead of the gather: layer 0's x-part sums in a slot of their own, written like the
    // node's own (one unit's gates per write, in the same order).
    let mut slots = slots;
    if na.overlap {
        let own = slots.iter().find(|s| s.local).map(|s| {
            s.layers
                .iter()
                .filter(|c| c.index == 0)
                .map(|c| SlotLayer {
                    index: 0,
                    mask: c.mask.clone(),
                    pbase: c.pbase,
                    n: c.n,
                    per_unit: c.per_unit,
                })
                .collect::<Vec<_>>()
        });
        let i = slots.len();
        slots.push(SlotView {
            index: i,
            dev: me,
            local: true,
            xpart: true,
            port: 0,
            layers: own.unwrap_or_default(),
            layers_all: (0..sys.arch.layers).collect(),
            slot_ext: fit(&format!("pw_cs_{i}"), na.unit_w, na.paw),
            slot_ext_g: fit(&format!("pw_slot_{i}"), na.unit_w, na.paw),
            wrap_ext: zext(&format!("pw_ng_{i}[2]"), 1, na.unit_w),
            count_ext: zext("cnt_0", 7, na.cnt_w),
        });
    }
    let psum_w = na.psum_w;
    let e = na.e;
    // Per (lane j, gate g), index 4 j + g: every slot's partial sum of the gate (lane j's
    // bank of it with several lanes), masked in the fabric register pf, then added two at a
    // time, one registered level each; the last level is psum.
    let levels = na.sum_levels();
    let mut sum_tree = Vec::new();
    let psum_exprs: Vec<String> = (0..4 * e)
        .map(|i| {
            let (j, g) = (i / 4, i % 4);
            let sfx = lane_suffix(e, j);
            if slots.is_empty() {
                return format!("{psum_w}'d0");
            }
            let mut names: Vec<String> = slots
                .iter()
                .map(|s| format!("pf_{}_{g}{sfx}", s.index))
                .collect();
            let mut w = accw;
            for lvl in 1..=levels {
                // The last level's sum is psum itself, at its full width.
                let to = if lvl == levels { psum_w } else { w + 1 };
                let exprs: Vec<String> = names
                    .chunks(2)
                    .map(|pair| {
                        pair.iter()
                            .map(|n| sext(n, w, to))
                            .collect::<Vec<_>>()
                            .join(" + ")
                    })
                    .collect();
                if lvl == levels {
                    debug_assert_eq!(exprs.len(), 1, "the last level is one sum");
                    return exprs[0].clone();
                }
                names = exprs
                    .into_iter()
                    .enumerate()
                    .map(|(k, expr)| {
                        let name = format!("pt{lvl}_{g}{sfx}_{k}");
                        sum_tree.push(SumNode {
                            name: name.clone(),
                            width: w + 1,
                            expr,
                            col: i,
                        });
                        name
                    })
                    .collect();
                w += 1;
            }
            unreachable!("at least one level")
        })
        .collect();
    let pc_w = bits_for(4 * e as u64);
    let lane_sfx: Vec<LaneSfx> = (0..e)
        .map(|j| LaneSfx {
            s: lane_suffix(e, j),
        })
        .collect();
    let cols: Vec<RedCol> = psum_exprs
        .iter()
        .enumerate()
        .map(|(col, psum)| RedCol {
            j: col / 4,
            g: col % 4,
            s: lane_suffix(e, col / 4),
            col,
            psum: psum.clone(),
        })
        .collect();
    let cols_by_gate: Vec<RedCol> = (0..4)
        .flat_map(|g| (0..e).map(move |j| 4 * j + g))
        .map(|c| cols[c].clone())
        .collect();
    let clips_sum = cols
        .iter()
        .map(|c| format!("{{{}'d0, fclip_{}{}}}", pc_w - 1, c.g, c.s))
        .collect::<Vec<_>>()
        .join(" + ");
    // Ports some remote slot reads.
    let mut ports: Vec<usize> = slots.iter().filter(|s| !s.local).map(|s| s.port).collect();
    let overlap = na.overlap;
    ports.sort_unstable();
    ports.dedup();
    ReduceView {
        header: hdr,
        name: name.to_string(),
        layer_w,
        layers_n: sys.arch.layers,
        accw,
        nports: np,
        ports,
        src_bits: 3 * np,
        layer_bits: layer_w * np,
        data_bits: accw * np,
        count_bits: 7 * np,
        unit_w: na.unit_w,
        paw: na.paw,
        pdepth: na.pdepth,
        cnt_w: na.cnt_w,
        feed_w: 4 * dp.pre_w,
        slots,
        overlap,
        gates: vec![0, 1, 2, 3],
        g4: na.g == 4,
        local_w: accw * na.g as u32,
        fslot_ext: fit("f_slot", na.unit_w, na.paw),
        psum_w,
        sum_tree,
        sum_levels: levels,
        fin_lat: na.fin_latency(),
        fin_stages: na.fin_latency() - 1,
        fin_hi: na.fin_latency() - 3,
        rnd_w: dp.round_w(psum_w),
        pre_w: dp.pre_w,
        pre_shr: dp.pre_shr,
        pre_shl: dp.pre_shl,
        round_ne: dp.round_ne as u32,
        sat: dp.sat as u32,
        e,
        eq: e.trailing_zeros(),
        eq2: e.trailing_zeros() + 2,
        lanes: (0..e).collect(),
        lane_sfx: lane_sfx.clone(),
        lane_sfx_rev: lane_sfx.into_iter().rev().collect(),
        cols,
        cols_by_gate,
        bdepth: na.pdepth / e,
        pc_w,
        clips_sum,
        feed_all: 4 * dp.pre_w * e as u32,
        ge: na.g > 4,
        rot: (0..e)
            .map(|b| RotBank {
                b,
                items: (0..e).map(|k| (k, (b + e - k) % e)).collect(),
                last: b + 1 == e,
            })
            .collect(),
        ln_cnt: zext("{local_n, 2'b00}", e.trailing_zeros() + 3, na.cnt_w),
        ln_unit: fit("local_n", e.trailing_zeros() + 1, na.unit_w),
        paw_eq: na.paw - e.trailing_zeros(),
        unit_acc_w: 4 * accw,
    }
}

/// The name suffix of lane `j`'s finisher registers: none with one lane.
fn lane_suffix(e: usize, j: usize) -> String {
    if e > 1 {
        format!("_{j}")
    } else {
        String::new()
    }
}

/// Where a write at bank index `idx` (a `vaw`-bit signal) falls in its word of 2^`vqw`
/// values, in a bank of `bank` values whose regions start on whole words.
struct WordRoom {
    /// The write's first slot in the word: the index's low bits, `vqw` + 1 bits.
    first: String,
    /// Whether the index is in the bank's last word.
    last_word: String,
    /// Values of the bank in its last word (1 to 2^`vqw`).
    last_values: usize,
}

fn word_room(idx: &str, vaw: u32, vqw: u32, bank: usize) -> WordRoom {
    let last = (bank - 1) >> vqw;
    WordRoom {
        first: if vqw == 0 {
            "1'd0".to_string()
        } else {
            zext(&format!("{idx}[{}:0]", vqw - 1), vqw, vqw + 1)
        },
        last_word: if vaw > vqw {
            format!("({idx}[{}:{vqw}] == {}'d{last})", vaw - 1, vaw - vqw)
        } else {
            "1'b1".to_string()
        },
        last_values: bank - (last << vqw),
    }
}

/// The vector-memory write port of node `me`: where each source's h values start, per layer.
fn vwrite_view(hdr: String, sys: &System, me: usize, name: &str) -> VwriteView {
    let (a, dp, s, na) = (&sys.arch, &sys.arch.dp, &sys.schedule, &sys.nodes[me]);
    let n = &s.nodes[me];
    let np = n.ports.len() as u32;
    let (vaw, unit_w, layer_w, lane_w) = (na.mem.vaw, na.unit_w, na.layer_w, dp.lane_w);
    let hstart_w = na.hstart_w;
    let (lw, mem) = (sys.frame.link_width, &na.mem);
    // The writer takes a write's first slot from the index alone: regions start on whole words.
    debug_assert!(na.layout.align.is_multiple_of(mem.vq));
    let xroom = word_room("ld_idx", vaw, mem.vqw, a.bx0);
    let vpb_h = sys.frame.values_per_beat(frame::Kind::H);
    let hbits = vpb_h * dp.dw;
    let vpb_w = sys.link.vpb_w;
    let sg = dp.stream_geom(a.input_size);
    let in_w = bits_for(a.input_size as u64 - 1);
    let ports = (0..np as usize)
        .map(|p| VPort {
            index: p,
            ds: p + 1,
            ho: word_room(&format!("hq_idx_{p}"), vaw, mem.vqw, a.bh).first,
            ho7: zext(&format!("ho_{p}"), mem.vqw + 1, 7),
            lastw: word_room(&format!("hq_idx_{p}"), vaw, mem.vqw, a.bh).last_word,
            k7: zext(&format!("kq_{p}"), mem.vqw + 1, 7),
            av_hi: if mem.vqw + 1 < 7 {
                format!("(|av_{p}[6:{}])", mem.vqw + 1)
            } else {
                "1'b0".into()
            },
            av_lo: fit(&format!("av_{p}"), 7, mem.vqw + 1),
            k_idx: fit(&format!("k_{p}"), 7, vaw),
            // A write never takes more than its run has left, so the count picked fits.
            rr_cnt: fit(&format!("rr_{p}"), mem.vqw + 1, unit_w + 1),
            av_cnt: fit(&format!("avl_{p}"), mem.vqw + 1, unit_w + 1),
        })
        .collect();
    VwriteView {
        header: hdr,
        name: name.to_string(),
        ports,
        nports: np,
        nsel: np + 2,
        x_sel: np + 1,
        src_bits: 3 * np,
        layer_bits: layer_w * np,
        beat_bits: lw * np,
        vi_bits: vpb_w * np,
        n_bits: 7 * np,
        lw,
        hbits,
        vpb_w,
        skw: 3 + layer_w + 1 + hbits + vpb_w + 7,
        hvals: (0..vpb_h as usize).map(|v| (v, v as u32 * dp.dw)).collect(),
        vq: mem.vq,
        vqw: mem.vqw,
        vwa: vaw - mem.vqw,
        vqd: mem.vq as u32 * dp.dw,
        slots: (0..mem.vq).map(|j| (j, j as u32 * dp.dw)).collect(),
        slots_rev: (0..mem.vq).rev().collect(),
        vqw1: mem.vqw + 1,
        r_last: word_room("", vaw, mem.vqw, a.bh).last_values,
        beat_unused: if lw > hbits {
            (0..np)
                .map(|p| format!(", rv_beat[{} +: {}]", p * lw + hbits, lw - hbits))
                .collect()
        } else {
            String::new()
        },
        layer_w,
        layers_n: a.layers,
        ahead_l1: slit16(1 - a.layers as i64),
        ahead_l2: slit16(2 - a.layers as i64),
        layers_odd: format!("1'b{}", a.layers % 2),
        lane_w,
        vaw,
        dw: dp.dw,
        xbits: sg.sb,
        xjw: sg.jw,
        xjw1: sg.jw + 1,
        xvals: (0..sg.p as usize).map(|i| (i, i as u32 * sg.vb)).collect(),
        xo: xroom.first,
        xo7: zext("xo", mem.vqw + 1, 7),
        xlastw: xroom.last_word,
        xrr7: zext("xrr", mem.vqw + 1, 7),
        rx_last: xroom.last_values,
        xb1w: na.layout.xbase(1) / mem.vq,
        xav7: fit("xn0", sg.jw + 1, 7),
        xk_idx: fit("xk", 7, vaw),
        xrr_cnt: fit("xrr7", 7, in_w + 1),
        xav_cnt: fit("xav", 7, in_w + 1),
        xk_n: fit("xk", 7, sg.jw + 1),
        in_w1: in_w + 1,
        bh: a.bh,
        e: na.e,
        hw: na.e as u32 * dp.dw,
        emask: (1u64 << na.e) - 1,
        vq_e: mem.vq / na.e,
        bh_last_e: a.bh - na.e,
        input_size: a.input_size,
        need_x: if n.needs_x { "1'b1" } else { "1'b0" }.into(),
        hstart_w,
        hstarts_w: ident_widths(sys, me).hstarts_w,
        hcnt_w: unit_w + 1,
        hs_lane_hi: hstart_w - 1,
        hs_lane_lo: hstart_w - lane_w,
        hs_idx_hi: vaw + unit_w,
        hs_idx_lo: unit_w + 1,
        hs_n_hi: unit_w,
        hbases: (0..a.layers)
            .map(|l| HBase {
                index: l,
                wbase0: na.layout.hbase(l, 0) / mem.vq,
                wbase1: na.layout.hbase(l, 1) / mem.vq,
            })
            .collect(),
    }
}

/// The link ports of node `me`, with what they connect to.
fn ports_view(sys: &System, me: usize) -> Vec<PortView> {
    let s = &sys.schedule;
    s.nodes[me]
        .ports
        .iter()
        .enumerate()
        .map(|(p, (tx, rx))| {
            let doc = if s.switched {
                if s.mode == LinkMode::Host {
                    "to and from the host driver, which relays frames between boards".to_string()
                } else {
                    "to and from the star's hub, which forwards frames by destination".to_string()
                }
            } else {
                let side = |o: &Option<usize>| {
                    o.map_or("nothing (tie off)".to_string(), |d| format!("device {d}"))
                };
                format!("tx to {}, rx from {}", side(tx), side(rx))
            };
            PortView { index: p, doc }
        })
        .collect()
}

/// The schedule constants of each layer on node `me`.
fn layer_consts(sys: &System, me: usize) -> Vec<NodeLayerConst> {
    let (n, na): (_, &NodeArch) = (&sys.schedule.nodes[me], &sys.nodes[me]);
    let layout = &na.layout;
    let nl = sys.arch.layers;
    let w = ident_widths(sys, me);
    n.layers
        .iter()
        .zip(&na.layers)
        .enumerate()
        .map(|(l, (nlay, la))| {
            let (x, hs) = la.slices;
            let sel = |per: u32| format!("{}:{}", per * (l as u32 + 1) - 1, per * l as u32);
            NodeLayerConst {
                index: l,
                mac: nlay.computes() as u8,
                fin: (!nlay.fin.is_empty()) as u8,
                needh: nlay.need_h as u8,
                out: (l == nl - 1 && !nlay.fin.is_empty()) as u8,
                rows: nlay.rows.len().max(1),
                slots: la.slots.max(1),
                slices: (x + hs).max(1),
                nih: x,
                wbase: if nlay.computes() { la.wbase } else { 0 },
                wbase_h: if nlay.computes() { la.wbase_h } else { 0 },
                bbase: if nlay.computes() { la.bbase } else { 0 },
                xbase0: if l == 0 {
                    layout.xbase(0)
                } else {
                    layout.hbase(l - 1, 0)
                },
                xbase1: if l == 0 {
                    layout.xbase(1)
                } else {
                    layout.hbase(l - 1, 1)
                },
                hbase0: layout.hbase(l, 0),
                hbase1: layout.hbase(l, 1),
                pdst: sel(w.pdst_w / nl as u32),
                nfin: sel(w.nfin_w / nl as u32),
                pbase: sel(w.pbase_w / nl as u32),
                flane: sel(w.flane_w / nl as u32),
                fidx: sel(w.fidx_w / nl as u32),
                hmask: sel(8),
            }
        })
        .collect()
}

/// Widths of node `me`'s identity outputs.
fn ident_widths(sys: &System, me: usize) -> IdentWidths {
    let na = &sys.nodes[me];
    let nl = sys.arch.layers as u32;
    let hstart_w = na.hstart_w;
    IdentWidths {
        pdst_w: 3 * nl,
        plocal_w: nl,
        nfin_w: (na.unit_w + 1) * nl,
        pbase_w: na.paw * nl,
        flane_w: sys.arch.dp.lane_w * nl,
        fidx_w: na.mem.vaw * nl,
        hstart_w,
        hstarts_w: hstart_w << (3 + na.layer_w),
    }
}

/// Device `me`'s identity: the constants of its node in which devices of one node design
/// differ (this device, the others, routes, h consumers, broadcasts forwarded, where partial
/// sums go and which units it finishes, where received h runs start).
fn ident_dev(sys: &System, me: usize) -> IdentDev {
    let s = &sys.schedule;
    let (n, na) = (&s.nodes[me], &sys.nodes[me]);
    let nd = s.nodes.len();
    let nl = sys.arch.layers;
    let w = ident_widths(sys, me);
    // Tx port of each destination, 2 bits each (this device and absent ones: 0).
    let routes: u32 = (0..nd)
        .filter(|d| *d != me)
        .map(|d| (s.port_of(me, d) as u32) << (2 * d))
        .sum();
    let hmasks: u64 = n
        .layers
        .iter()
        .enumerate()
        .map(|(l, nlay)| {
            let m: u64 = nlay.h_consumers.iter().map(|c| 1u64 << c).sum();
            m << (8 * l)
        })
        .sum();
    let others: u8 = (0..nd).filter(|d| *d != me).map(|d| 1u8 << d).sum();
    // Ring broadcasts: this device passes on every other device's, except the next device's
    // (whose broadcasts have then been round the ring).
    let bc_fwd: u8 = if s.broadcasts() {
        let next = (me + 1) % nd;
        (0..nd)
            .filter(|d| *d != me && *d != next)
            .map(|d| 1u8 << d)
            .sum()
    } else {
        0
    };
    let per = |total: u32| total / nl as u32;
    let mut pdst = Word::new(w.pdst_w);
    let mut plocal = Word::new(w.plocal_w);
    let mut nfin = Word::new(w.nfin_w);
    let mut pbase = Word::new(w.pbase_w);
    let mut flane = Word::new(w.flane_w);
    let mut fidx = Word::new(w.fidx_w);
    for (l, (nlay, la)) in n.layers.iter().zip(&na.layers).enumerate() {
        let l = l as u32;
        let (fl, fi) = na.layout.home(nlay.fin.start);
        pdst.set(3 * l, 3, nlay.pdst as u64);
        plocal.set(l, 1, (nlay.pdst == me) as u64);
        let pw = per(w.nfin_w);
        nfin.set(pw * l, pw, nlay.fin.len().max(1) as u64);
        let pw = per(w.pbase_w);
        pbase.set(
            pw * l,
            pw,
            if nlay.fin.is_empty() { 0 } else { la.pbase } as u64,
        );
        let pw = per(w.flane_w);
        flane.set(pw * l, pw, fl as u64);
        let pw = per(w.fidx_w);
        fidx.set(pw * l, pw, fi as u64);
    }
    let (vaw, unit_w) = (na.mem.vaw, na.unit_w);
    let mut hstarts = Word::new(w.hstarts_w);
    for src in &s.nodes {
        for (l, sl) in src.layers.iter().enumerate() {
            if src.index == me || !sl.h_consumers.contains(&me) {
                continue;
            }
            let (lane, idx) = na.layout.home(sl.fin.start);
            let v = (((lane as u128) << (vaw + unit_w + 1))
                | ((idx as u128) << (unit_w + 1))
                | sl.fin.len() as u128) as u64;
            let key = ((src.index << na.layer_w) | l) as u32;
            hstarts.set(key * w.hstart_w, w.hstart_w, v);
        }
    }
    IdentDev {
        index: me,
        others: mask_bits(others, 8),
        routes: format!("{routes:04x}"),
        hmasks: format!("{hmasks:016x}"),
        bc_fwd: mask_bits(bc_fwd, 8),
        node: format!("{:04x}", (me << 8) | nd),
        pdst: pdst.hex(),
        plocal: plocal.hex(),
        nfin: nfin.hex(),
        pbase: pbase.hex(),
        flane: flane.hex(),
        fidx: fidx.hex(),
        hstarts: hstarts.hex(),
    }
}

/// The simulation top of each device: its node design's `node` module, whose identity input
/// (`dev_id`) the cosimulation sets to the device's index, so devices of one node design share
/// one Verilator model.
pub fn node_modules(design: &Design) -> Result<Vec<String>, String> {
    let sys = System::new(design)?;
    Ok(node_designs(design, &sys)?
        .into_iter()
        .map(|k| format!("{}node", super::verilog::node_design_prefix(k)))
        .collect())
}

/// The node design of each device: the first device whose node Verilog is the same text
/// (devices differ then only in identity, which each device's top ties). Compared with the
/// modules named alike, then named after the design.
fn node_designs(design: &Design, sys: &System) -> Result<Vec<usize>, String> {
    let mut texts: Vec<(usize, String)> = Vec::new();
    let mut out = Vec::new();
    for me in 0..sys.schedule.nodes.len() {
        let text: String = node_core(design, sys, me, "partita_nX_")?
            .into_iter()
            .flat_map(|f| [f.name, f.text])
            .collect();
        match texts.iter().find(|(_, t)| *t == text) {
            Some((k, _)) => out.push(*k),
            None => {
                texts.push((me, text));
                out.push(me);
            }
        }
    }
    Ok(out)
}

/// The node design's Verilog as device `me` would have it, modules prefixed `prefix`: the
/// library cores, the engine and its tables, the element-wise unit, the reducer, the
/// vector-memory write port, the register decode and the node module itself.
fn node_core(design: &Design, sys: &System, me: usize, prefix: &str) -> Result<Vec<File>, String> {
    let m = lstm::lstm(design)?;
    let (a, dp, lk) = (&sys.arch, &sys.arch.dp, sys.link);
    let s = &sys.schedule;
    let n = &s.nodes[me];
    let na = &sys.nodes[me];
    let nd = s.nodes.len();
    let nl = a.layers;
    let (dw, accw, lw) = (dp.dw, dp.accw, s.width);
    let mem = &na.mem;
    let np = n.ports.len();
    let bcast = s.broadcasts();
    let last = &n.layers[nl - 1];
    let (waw, baw) = (mem.waw, mem.baw);
    let mut unused = vec!["wsel[31:24]".to_string(), "wsel[15:1]".to_string()];
    if waw.max(baw) < 32 {
        unused.push(format!("waddr_reg[31:{}]", waw.max(baw)));
    }
    if dp.wstage_w > dp.wword.max(dp.bw) {
        unused.push(format!(
            "wstage[{}:{}]",
            dp.wstage_w - 1,
            dp.wword.max(dp.bw)
        ));
    }
    let e = na.e;
    let rows_w = na.row_w + 1;
    let ge_on = na.g > 4;
    let m_pad = na.m.div_ceil(na.g) * na.g;
    let pc_w = bits_for(4 * e as u64);
    let sat_expr = if e > 1 {
        let mut t = vec![format!("{{{}'d0, pre_clips}}", 32 - pc_w)];
        for j in 0..e {
            t.push(format!("{{31'd0, ew_cc[{j}]}}"));
            t.push(format!("{{31'd0, ew_hc[{j}]}}"));
        }
        t.join(" + ")
    } else {
        "{29'd0, pre_clips} + {31'd0, ew_c_clip} + {31'd0, ew_h_clip}".to_string()
    };
    let mut names = Names::new(prefix);
    names.top = format!("{prefix}node");
    let map = regmap::device_map(true, dp.nwords);
    let hdr = header(design);
    // NODE (which device this is) comes from the identity, not a constant.
    let (regs_text, reg_conns) = regmap::decode_module(
        hdr.clone(),
        &names.regs,
        &map,
        dp.wstage_w,
        &|name| match name {
            "NODE" => None,
            other => regmap::design_value(design, a, na.m, other),
        },
        &node_signal,
    )?;
    let layer_w = na.layer_w;
    let np32 = np as u32;
    let view = NodeView {
        header: hdr.clone(),
        design: prefix.trim_end_matches('_').to_string(),
        overlap: na.overlap,
        bzero: na.bzero,
        id: ident_widths(sys, me),
        ndev: nd,
        topology: s.wiring(),
        port_doc: format!("({np} port(s))"),
        lw,
        layers_n: nl,
        layers_last: nl - 1,
        l_act_n: 1 << layer_w,
        input_size: a.input_size,
        hidden: a.hidden,
        k: dp.k,
        m: na.m,
        engine_list: (0..na.m).collect(),
        wsuffix: engine::weight_suffixes(mem.wchunks),
        engine_rev: (0..na.m).rev().collect(),
        rf_w: na.m as u32 * accw,
        rf_aw: na.rf_depth.trailing_zeros(),
        rf_cw: na.rf_depth.trailing_zeros() + 1,
        rf_depth: na.rf_depth,
        rf_room: na.rf_room,
        eng_w: na.eng_w,
        m_last: (na.m / na.g).saturating_sub(1),
        g: na.g,
        m_groups: na.m.div_ceil(na.g),
        shift_list: (0..m_pad.saturating_sub(na.g)).collect(),
        ports: ports_view(sys, me),
        nports: np32,
        s: dp.stream_geom(a.input_size),
        n_out: last.fin.len(),
        wstage_w: dp.wstage_w,
        unused_regs: unused.join(", "),
        layer_w,
        l32: zext("l", layer_w, 32),
        row_w: na.row_w,
        rows_w: na.row_w + 1,
        slice_w: na.slice_w,
        unit_w: na.unit_w,
        nfin_w: na.unit_w + 1,
        waw,
        baw,
        vaw: mem.vaw,
        paw: na.paw,
        lane_w: dp.lane_w,
        layer_consts: layer_consts(sys, me),
        ofifo_depth: na.ofifo_depth,
        ofifo_depth_m1: na.ofifo_depth - 1,
        ofifo_aw: na.ofifo_aw,
        ofifo_cnt_w: na.ofifo_aw + 1,
        of_w: e as u32 * dw + 1,
        dw,
        accw,
        wword: dp.wword,
        bw: dp.bw,
        type_bits: 2 * np32,
        src_bits: 3 * np32,
        layer_bits: layer_w * np32,
        count_bits: 7 * np32,
        data_bits: accw * np32,
        vwa: mem.vaw - mem.vqw,
        vq: mem.vq,
        vqd: mem.vq as u32 * dw,
        beat_bits: sys.frame.link_width * np32,
        vi_bits: sys.link.vpb_w * np32,
        feed_w: 4 * dp.pre_w,
        tq_w: na.tq_w,
        lk,
        maxb: MAX_PAYLOAD_BEATS,
        bcast: bcast as u8,
        rx_aw: na.rx_aw,
        rxd: na.rx_depth,
        txq_aw: na.txq_aw,
        txq_depth: na.txq_depth,
        bar_w: na.bar_w,
        hub: HubConns::new(np),
        unit_ext: fit("fin_unit", na.unit_w, na.paw),
        ew_h_acc: zext("ew_h", e as u32 * dw, na.qw),
        out_ext: if e > 1 {
            top::out_word(dw, dp.stream.slot_bits, e, 0)
        } else {
            top::out_ext(dw, dp.stream.slot_bits)
        },
        ew_n: e,
        ge: ge_on,
        pad_list: (0..m_pad).collect(),
        pad_only: (na.m..m_pad).collect(),
        group_rev: (0..na.g).rev().collect(),
        ld_units: na.m / 4,
        g_accw: na.g as u32 * accw,
        eq1: e.trailing_zeros() + 1,
        rs_n_ext: fit("rs_n", e.trailing_zeros() + 1, rows_w),
        rows_w_2: rows_w.saturating_sub(3),
        eq: e.trailing_zeros(),
        lanes: (0..e).collect(),
        hw: e as u32 * dw,
        pc_w,
        sat_expr,
        feed_all: 4 * dp.pre_w * e as u32,
        ocw: if e > 1 { bits_for(e as u64) } else { 1 },
        pjw: if e > 1 {
            bits_for((dp.stream.per_beat as usize / e) as u64 - 1)
        } else {
            dp.stream_geom(a.input_size).jw
        },
        qw: na.qw,
        row_acc_q: zext("row_acc", accw, na.qw),
        reg_conns,
        p: names,
    };
    let names = &view.p;
    let mut files = core_files(
        design,
        &[
            cores::REQUANT,
            cores::FIFO,
            cores::LINK_HUB,
            cores::AXIL,
            cores::UNPACK,
            cores::PACK,
            cores::REP,
        ],
    );
    files.extend(tables::datapath_files(
        design,
        m,
        names,
        engine::view(hdr.clone(), &names.engine, dp, mem, &na.lanes),
    )?);
    let eq = e.trailing_zeros();
    files.push(ew::file(design, names, dp, na.paw - eq, na.pdepth / e)?);
    files.push(module_file(
        &names.reduce,
        render(reduce_view(hdr.clone(), sys, me, &names.reduce).render())?,
    ));
    files.push(module_file(
        &names.vwrite,
        render(vwrite_view(hdr.clone(), sys, me, &names.vwrite).render())?,
    ));
    files.push(module_file(&names.regs, regs_text));
    files.push(module_file(&names.top, render(view.render())?));
    Ok(files)
}

/// Device `me`'s files: its node design's Verilog (`designs`: each device's design), the
/// design's identity module (every member's constants), its own top, memory images, register
/// map, C header and file list.
fn node_files(
    design: &Design,
    sys: &System,
    me: usize,
    designs: &[usize],
) -> Result<Vec<File>, String> {
    let a = &sys.arch;
    let dp = &a.dp;
    let s = &sys.schedule;
    let n = &s.nodes[me];
    let na = &sys.nodes[me];
    let nd = s.nodes.len();
    let nl = a.layers;
    let lw = s.width;
    let mem = &na.mem;
    let np = n.ports.len();
    let last = &n.layers[nl - 1];
    let k = designs[me];
    let prefix = super::verilog::node_design_prefix(k);
    let mut files = node_core(design, sys, me, &prefix)?;
    let names = Names::new(&prefix);
    let node = format!("{prefix}node");
    let members: Vec<usize> = (0..nd).filter(|d| designs[*d] == k).collect();
    let member_list = members
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let hdr = header(design);
    let ident = IdentView {
        header: hdr.clone(),
        name: names.ident.clone(),
        design: prefix.trim_end_matches('_').to_string(),
        members: member_list.clone(),
        w: ident_widths(sys, me),
        devs: members.iter().map(|&d| ident_dev(sys, d)).collect(),
    };
    files.push(module_file(&names.ident, render(ident.render())?));
    let top = super::verilog::top_module(design, me);
    let dev = DeviceView {
        header: hdr,
        top: top.clone(),
        node,
        ident: names.ident.clone(),
        me,
        ndev: nd,
        members: member_list,
        topology: s.wiring(),
        lw,
        engine_list: (0..na.m).collect(),
        wsuffix: engine::weight_suffixes(mem.wchunks),
        ports: ports_view(sys, me),
        input_size: a.input_size,
        needs_x: n.needs_x,
        s: dp.stream_geom(a.input_size),
        n_out: last.fin.len(),
        out_u0: last.fin.start,
    };
    files.push(module_file(&top, render(dev.render())?));
    let map = regmap::device_map(true, dp.nwords);
    files.push(File {
        name: "regmap.json".into(),
        text: regmap::json(
            design,
            &top,
            {
                let mut bus = top::stream_bus(dp);
                bus["input"] = format!("{} (devices that hold layer-0 x columns; others ignore the stream)", bus["input"].as_str().unwrap_or_default()).into();
                bus["output"] = format!("{}: this device's last-layer units", bus["output"].as_str().unwrap_or_default()).into();
                bus["links"] = format!("AXI4-Stream, {lw} bits per beat, frames ended by tlast (README: Link frames)").into();
                bus
            },
            serde_json::json!({
                "input_size": a.input_size, "hidden_size": a.hidden, "layers": nl, "engines": na.m, "lanes": dp.k,
                "weight_word_bits": dp.wword, "weight_depth": mem.wdepth, "bias_bits": dp.bw, "bias_depth": mem.bdepth,
                "index_bits": dp.iw, "stream_bits": dp.stream.beat_bits, "values_per_beat": dp.stream.per_beat,
                "output_units": {"first": last.fin.start, "count": last.fin.len()},
                "takes_x": n.needs_x,
                "x_ahead": na.overlap,
            }),
            serde_json::json!({
                "device": me,
                "devices": nd,
                "node_design": {"modules": prefix, "node": format!("{prefix}node"), "devices": members},
                "link": {"width": lw, "ports": np, "wiring": s.wiring()},
            }),
            &map,
        ),
    });
    files.push(File {
        name: "partita_regs.h".into(),
        text: regmap::c_header(design, &map),
    });
    files.extend(memory::node(design, lstm::lstm(design)?, sys, me));
    let list = file_list(design, &format!(", device {me} of {nd}"), &top, &files);
    files.push(list);
    Ok(files)
}

/// A signed 16-bit Verilog literal of `v`.
fn slit16(v: i64) -> String {
    if v < 0 {
        format!("-16'sd{}", -v)
    } else {
        format!("16'sd{v}")
    }
}
