//! Emitter for multi-device plans: one `partita_top` per device (template `partita_node.v`)
//! with AXI4-Stream link ports, plus the system description the cosimulation and the host
//! driver wire together.
//!
//! Every device keeps all K lanes with the single-device vector memory layout, so an h value has
//! one home (lane u / B, index u % B) on every device; devices that hold only some column banks
//! carry zero weights on the other lanes. Rows are issued unit by unit, in gate order within a
//! unit, grouped by the finisher they go to; the finisher writes each source's partial sums into
//! one memory per (source, gate) and sums them at full width.
//!
//! Example: 2 devices, `rows`, H = 4. Before: one `partita_top` with 16 rows. After: `dev0/`
//! computes rows of units 0-1 (i0 f0 g0 o0 i1 f1 g1 o1), finishes them, sends h0, h1 to device
//! 1 and receives h2, h3 from it; `dev1/` the mirror image.

use std::fmt::Write as _;
use std::ops::Range;

use askama::Template;

use crate::design::{Design, LstmDesign, ModelDesign};
use crate::emit::{
    bits_for, datapath, datapath_files, file_list, header, reg, registers, regs_header, render,
    sext, version_word, zext, AxilReg, EwView, File, Register, Word, DEVICE_ID,
};
use crate::plan::{LinkMode, Topology};

/// Payload beats per frame at most.
pub const MAX_BEATS: usize = 16;

/// One device's work in one layer.
#[derive(Clone, Debug, Default)]
pub struct NodeLayer {
    /// Rows this device computes, in issue order (global row g * H + u).
    pub rows: Vec<usize>,
    pub x_banks: Vec<usize>,
    pub h_banks: Vec<usize>,
    /// Holds column block 0, so it adds the bias of its rows.
    pub bias: bool,
    /// Where its partial sums go.
    pub pdst: usize,
    /// Units this device finishes.
    pub fin: Range<usize>,
    /// Needs h of this layer locally (its own h columns, or next layer's x columns).
    pub need_h: bool,
    /// Devices (other than itself) its finished h values go to.
    pub h_consumers: Vec<usize>,
    /// Partial-sum sources for its finished units: (device, gate mask).
    pub sources: Vec<(usize, u8)>,
}

/// One device of the system.
#[derive(Clone, Debug)]
pub struct Node {
    pub index: usize,
    pub layers: Vec<NodeLayer>,
    /// Takes the x stream (holds layer-0 x columns).
    pub needs_x: bool,
    /// Link ports: for each, the device its tx goes to and the one its rx comes from.
    pub ports: Vec<(Option<usize>, Option<usize>)>,
}

/// A directed physical link: (device, tx port) to (device, rx port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub from: (usize, usize),
    pub to: (usize, usize),
}

/// The whole system: devices, how they are wired, and where the outputs come from.
#[derive(Clone, Debug)]
pub struct System {
    pub nodes: Vec<Node>,
    /// Point-to-point links (ring, chain). Star and host-relayed systems use `switched`.
    pub links: Vec<Link>,
    /// Every device's port 0 goes to a hub (star) or to the host driver (host mode), which
    /// forwards each frame to its destination's port 0.
    pub switched: bool,
    pub width: u32,
    pub latency: u32,
    /// Last-layer outputs: (device, first unit, count), in unit order.
    pub outputs: Vec<(usize, usize, usize)>,
    pub hidden: usize,
    pub input_size: usize,
    pub layers: usize,
}

impl System {
    /// Port of `dev` on which frames for `dst` leave.
    pub fn port_of(&self, dev: usize, dst: usize) -> usize {
        if self.nodes[dev].ports.len() == 2 && dst > dev {
            1
        } else {
            0
        }
    }
}

/// Work out each device's schedule from the partition.
pub fn system(design: &Design) -> Result<System, String> {
    let ModelDesign::Lstm(m) = &design.model else {
        return Err("CNN hardware is not built yet; `partita gen` handles LSTM plans".into());
    };
    let d = design.plan.devices;
    if d > 8 {
        return Err(format!(
            "the plan has {d} devices; generated link frames address at most 8"
        ));
    }
    if design.plan.plan.target.engines != 1 {
        return Err(format!(
            "multi-device RTL uses one row engine per device; [target] engines is {} \
             (more engines per device are built for single-device plans only)",
            design.plan.plan.target.engines
        ));
    }
    let k = design.plan.banks;
    let h = m.hidden_size;
    let nl = m.layers.len();
    let mut nodes: Vec<Node> = (0..d)
        .map(|i| Node {
            index: i,
            layers: vec![NodeLayer::default(); nl],
            needs_x: false,
            ports: Vec::new(),
        })
        .collect();
    for (l, p) in design.partition.layers.iter().enumerate() {
        // Finished ranges.
        for dev in 0..d {
            let units: Vec<usize> = (0..h).filter(|u| p.finisher[*u] == dev).collect();
            if let (Some(&a), Some(&b)) = (units.first(), units.last()) {
                if b + 1 - a != units.len() {
                    return Err(format!(
                        "layer {l}: device {dev} finishes units that are not contiguous"
                    ));
                }
                nodes[dev].layers[l].fin = a..b + 1;
            } else {
                nodes[dev].layers[l].fin = 0..0;
            }
        }
        for s in &p.shares {
            let nlay = &mut nodes[s.device].layers[l];
            nlay.x_banks = s.blocks.iter().filter(|b| **b < k).copied().collect();
            nlay.h_banks = s
                .blocks
                .iter()
                .filter(|b| **b >= k)
                .map(|b| b - k)
                .collect();
            nlay.bias = s.blocks.contains(&0);
            let owned: std::collections::BTreeSet<usize> = s.rows.iter().copied().collect();
            let fins: std::collections::BTreeSet<usize> =
                s.rows.iter().map(|r| p.finisher[r % h]).collect();
            if fins.len() > 1 {
                return Err(format!(
                    "layer {l}: device {} sends partial sums to {} finishers; the generated \
                     hardware sends each layer's partial sums to one",
                    s.device,
                    fins.len()
                ));
            }
            let f = fins.into_iter().next().unwrap_or(s.device);
            nlay.pdst = f;
            let mut rows = Vec::new();
            let mut mask: Option<u8> = None;
            for u in 0..h {
                if p.finisher[u] != f {
                    continue;
                }
                let mut um = 0u8;
                for g in 0..4 {
                    if owned.contains(&(g * h + u)) {
                        rows.push(g * h + u);
                        um |= 1 << g;
                    }
                }
                match mask {
                    None => mask = Some(um),
                    Some(m0) if m0 != um => {
                        return Err(format!(
                            "layer {l}: device {} holds different gates for different units",
                            s.device
                        ))
                    }
                    _ => {}
                }
            }
            if rows.len() != s.rows.len() {
                return Err(format!(
                    "layer {l}: device {} has rows outside its finisher's units",
                    s.device
                ));
            }
            nlay.rows = rows;
            if let Some(m0) = mask.filter(|m0| *m0 != 0) {
                nodes[f].layers[l].sources.push((s.device, m0));
            }
        }
    }
    for l in 0..nl {
        for dev in 0..d {
            let has_h =
                !nodes[dev].layers[l].h_banks.is_empty() && !nodes[dev].layers[l].rows.is_empty();
            let next_x = l + 1 < nl
                && !nodes[dev].layers[l + 1].x_banks.is_empty()
                && !nodes[dev].layers[l + 1].rows.is_empty();
            nodes[dev].layers[l].need_h = has_h || next_x;
        }
        for f in 0..d {
            if nodes[f].layers[l].fin.is_empty() {
                continue;
            }
            let cons: Vec<usize> = (0..d)
                .filter(|c| *c != f && nodes[*c].layers[l].need_h)
                .collect();
            nodes[f].layers[l].h_consumers = cons;
            nodes[f].layers[l].sources.sort();
        }
    }
    for n in &mut nodes {
        n.needs_x = !n.layers[0].x_banks.is_empty() && !n.layers[0].rows.is_empty();
    }
    let t = &design.plan.plan.target.link;
    let switched = t.mode == LinkMode::Host || t.topology == Topology::Star;
    let mut links = Vec::new();
    for n in &mut nodes {
        let i = n.index;
        n.ports = if switched {
            vec![(None, None)]
        } else if t.topology == Topology::Ring {
            vec![(Some((i + 1) % d), Some((i + d - 1) % d))]
        } else {
            vec![
                (i.checked_sub(1), i.checked_sub(1)),
                ((i + 1 < d).then_some(i + 1), (i + 1 < d).then_some(i + 1)),
            ]
        };
    }
    if !switched {
        for n in &nodes {
            for (p, (tx, _)) in n.ports.iter().enumerate() {
                if let Some(to) = tx {
                    let rp = nodes[*to]
                        .ports
                        .iter()
                        .position(|(_, rx)| *rx == Some(n.index))
                        .unwrap_or(0);
                    links.push(Link {
                        from: (n.index, p),
                        to: (*to, rp),
                    });
                }
            }
        }
    }
    let last = nl - 1;
    let mut outputs: Vec<(usize, usize, usize)> = nodes
        .iter()
        .filter(|n| !n.layers[last].fin.is_empty())
        .map(|n| (n.index, n.layers[last].fin.start, n.layers[last].fin.len()))
        .collect();
    outputs.sort_by_key(|o| o.1);
    Ok(System {
        nodes,
        links,
        switched,
        width: t.width as u32,
        latency: t.latency as u32,
        outputs,
        hidden: h,
        input_size: m.input_size,
        layers: nl,
    })
}

struct PortView {
    index: usize,
    doc: String,
    rv_case: String,
}

struct SlotLayer {
    index: usize,
    mask: String,
    pbase: usize,
    n: usize,
}

struct SlotView {
    index: usize,
    dev: usize,
    local: bool,
    port: usize,
    layers: Vec<SlotLayer>,
    slot_ext: String,
}

struct NodeLayerConst {
    index: usize,
    mac: u8,
    fin: u8,
    plocal: u8,
    needh: u8,
    out: u8,
    rows: usize,
    slices: usize,
    nih: usize,
    wbase: usize,
    bbase: usize,
    xbase0: usize,
    xbase1: usize,
    hbase0: usize,
    hbase1: usize,
    pdst: usize,
    nfin: usize,
    pbase: usize,
    cbase: usize,
    flane: usize,
    fidx: usize,
    hmask: String,
}

struct KV {
    key: String,
    value: String,
}

struct Route {
    dev: usize,
    port: usize,
}

#[derive(Template)]
#[template(path = "partita_node.v", escape = "none")]
struct NodeView {
    header: String,
    me: usize,
    ndev: usize,
    topology: String,
    port_doc: String,
    lw: u32,
    layers_n: usize,
    input_size: usize,
    hidden: usize,
    k: usize,
    ports: Vec<PortView>,
    axis_w: u32,
    n_out: usize,
    out_u0: usize,
    wstage_w: u32,
    layer_w: u32,
    row_w: u32,
    slice_w: u32,
    waw: u32,
    baw: u32,
    vaw: u32,
    lane_w: u32,
    unit_w: u32,
    caw: u32,
    paw: u32,
    bar_w: u32,
    layer_consts: Vec<NodeLayerConst>,
    ofifo_depth: usize,
    ofifo_aw: u32,
    txq_depth: usize,
    txq_aw: u32,
    tq_w: u32,
    dw: u32,
    accw: u32,
    wword: u32,
    bw: u32,
    slots: Vec<SlotView>,
    gates: Vec<usize>,
    pdepth: usize,
    cnt_w: u32,
    rxd: usize,
    rx_aw: u32,
    vpb_w: u32,
    vpb_h: u32,
    vpb_p: u32,
    maxv_h: u32,
    maxv_p: u32,
    max_vals: u32,
    maxb: usize,
    fb_w: u32,
    fb_ix_w: u32,
    hstart_w: u32,
    hstarts: Vec<KV>,
    need_x: String,
    in_w: u32,
    bx0: usize,
    bh: usize,
    routes: Vec<Route>,
    others_mask: String,
    tq_val_lw: String,
    layer_ext: String,
    fslot_ext: String,
    ew: EwView,
    axil_rw: Vec<AxilReg>,
    axil_ro: Vec<AxilReg>,
    status_err: &'static str,
    psum_w: u32,
    psum_exprs: Vec<String>,
    pre_w: u32,
    pre_shr: u32,
    pre_shl: u32,
    round_ne: u32,
    sat: u32,
    h6_acc: String,
    out_ext: String,
    unused_regs: String,
    wdata_regs: Vec<usize>,
    id_hex: String,
    version_hex: String,
    hash_lo: String,
    hash_hi: String,
    config0_hex: String,
    config1_hex: String,
    src_bad: String,
    layer_bad: String,
}

fn mask_bits(m: u8, n: usize) -> String {
    (0..n)
        .rev()
        .map(|b| if m >> b & 1 == 1 { '1' } else { '0' })
        .collect()
}

/// The AXI4-Lite block's case label for a byte offset: the 32-bit word index in hex.
fn word_index(offset: u32) -> String {
    format!("{:03X}", offset >> 2)
}

/// Verilog test that the 3-bit header field `field` is `n` or more (constant false when every
/// code is valid).
fn out_of_range(field: &str, n: usize) -> String {
    if n < 8 {
        format!("({field} >= 3'd{n})")
    } else {
        "1'b0".into()
    }
}

/// Resize `expr` (width `from`) to `to` bits, unsigned.
fn fit(expr: &str, from: u32, to: u32) -> String {
    if to >= from {
        zext(expr, from, to)
    } else {
        format!("{expr}[{}:0]", to - 1)
    }
}

/// Generate every device's files; names are prefixed with `dev{d}/`. A `system.json` at the top
/// describes the wiring.
pub fn generate(design: &Design) -> Result<Vec<File>, String> {
    let ModelDesign::Lstm(m) = &design.model else {
        return Err("CNN hardware is not built yet; `partita gen` handles LSTM plans".into());
    };
    let sys = system(design)?;
    let mut out = Vec::new();
    for n in &sys.nodes {
        for f in node_files(design, m, &sys, n)? {
            out.push(File {
                name: format!("dev{}/{}", n.index, f.name),
                text: f.text,
            });
        }
    }
    out.push(File {
        name: "system.json".into(),
        text: system_json(design, &sys),
    });
    Ok(out)
}

fn system_json(design: &Design, sys: &System) -> String {
    let t = &design.plan.plan.target.link;
    let v = serde_json::json!({
        "generator": format!("partita {}", crate::VERSION),
        "plan_hash": format!("{:016x}", design.plan.plan_hash),
        "devices": sys.nodes.len(),
        "topology": t.topology.to_string(),
        "mode": t.mode.to_string(),
        "link_width": sys.width,
        "link_latency": sys.latency,
        "links": sys.links.iter().map(|l| serde_json::json!({"from": {"device": l.from.0, "port": l.from.1}, "to": {"device": l.to.0, "port": l.to.1}})).collect::<Vec<_>>(),
        "switched": sys.switched,
        "input_devices": sys.nodes.iter().filter(|n| n.needs_x).map(|n| n.index).collect::<Vec<_>>(),
        "outputs": sys.outputs.iter().map(|(d, u0, c)| serde_json::json!({"device": d, "first_unit": u0, "units": c})).collect::<Vec<_>>(),
        "rtl": sys.nodes.iter().map(|n| format!("dev{}/files.f", n.index)).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

fn node_files(
    design: &Design,
    m: &LstmDesign,
    sys: &System,
    n: &Node,
) -> Result<Vec<File>, String> {
    let k = design.plan.banks;
    let nl = m.layers.len();
    let me = n.index;
    let nd = sys.nodes.len();
    let bx0 = m.layers[0].q_ih.shape.bank_size;
    let bh = m.layers[0].q_hh.shape.bank_size;
    let hbase = |l: usize, p: usize| 2 * bx0 + (2 * l + p) * bh;
    let slices = |l: usize, nl: &NodeLayer| -> (usize, usize) {
        let x = if nl.x_banks.is_empty() {
            0
        } else {
            m.layers[l].q_ih.shape.nnz_per_bank
        };
        let hs = if nl.h_banks.is_empty() {
            0
        } else {
            m.layers[l].q_hh.shape.nnz_per_bank
        };
        (x, hs)
    };
    let index_bits = m
        .layers
        .iter()
        .flat_map(|l| [l.q_ih.shape.index_bits(), l.q_hh.shape.index_bits()])
        .max()
        .unwrap_or(1);
    let wdepth: usize = (0..nl)
        .map(|l| {
            let (a, b) = slices(l, &n.layers[l]);
            n.layers[l].rows.len() * (a + b)
        })
        .sum::<usize>()
        .max(1);
    let bdepth: usize = n.layers.iter().map(|l| l.rows.len()).sum::<usize>().max(1);
    let vdepth = 2 * bx0 + 2 * nl * bh;
    let dp = datapath(design, k, index_bits, wdepth, bdepth, vdepth);
    let (dw, accw) = (dp.dw, dp.accw);
    let lw = sys.width;
    if !(32..=64).contains(&lw) {
        return Err(format!(
            "[target.link] width is {lw} bits; generated link ports carry 32 to 64 bits per beat"
        ));
    }
    let any_p = sys.nodes.iter().any(|x| {
        x.layers
            .iter()
            .any(|l| !l.rows.is_empty() && l.pdst != x.index)
    });
    if any_p && lw < accw {
        return Err(format!(
            "[target.link] width is {lw} bits, but this plan sends {accw}-bit partial sums \
             between devices; use a width of at least {accw}"
        ));
    }
    let vpb_h = (lw / dw).max(1);
    let vpb_p = (lw / accw).max(1);
    let maxv_h = (MAX_BEATS as u32 * vpb_h).min(127);
    let maxv_p = (MAX_BEATS as u32 * vpb_p).min(127);
    let vpb_w = bits_for(vpb_h.max(vpb_p) as u64 - 1);
    let h = m.hidden_size;
    let unit_w = bits_for(h as u64 + 1);
    let max_rows = n
        .layers
        .iter()
        .map(|l| l.rows.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let row_w = bits_for(max_rows as u64);
    let max_slices = (0..nl)
        .map(|l| {
            let (a, b) = slices(l, &n.layers[l]);
            a + b
        })
        .max()
        .unwrap_or(1)
        .max(1);
    let slice_w = bits_for(max_slices as u64);
    let layer_w = bits_for(nl as u64 - 1);
    let fin_total: usize = n.layers.iter().map(|l| l.fin.len()).sum();
    let pdepth = fin_total.max(1);
    let paw = bits_for(pdepth as u64 - 1);
    let caw = paw;
    let lane_w = bits_for(k as u64 - 1);
    let cnt_w = (bits_for(4 * h as u64) + 1).max(8);

    // Per-layer constants.
    let mut layer_consts = Vec::new();
    let (mut wbase, mut bbase, mut pbase) = (0usize, 0usize, 0usize);
    let mut pbases = Vec::new();
    for (l, nlay) in n.layers.iter().enumerate() {
        let (a, b) = slices(l, nlay);
        let mut hm = 0u8;
        for c in &nlay.h_consumers {
            hm |= 1 << c;
        }
        pbases.push(pbase);
        layer_consts.push(NodeLayerConst {
            index: l,
            mac: (!nlay.rows.is_empty()) as u8,
            fin: (!nlay.fin.is_empty()) as u8,
            plocal: (nlay.pdst == me) as u8,
            needh: nlay.need_h as u8,
            out: (l == nl - 1 && !nlay.fin.is_empty()) as u8,
            rows: nlay.rows.len().max(1),
            slices: (a + b).max(1),
            nih: a,
            wbase: if nlay.rows.is_empty() { 0 } else { wbase },
            bbase: if nlay.rows.is_empty() { 0 } else { bbase },
            xbase0: if l == 0 { 0 } else { hbase(l - 1, 0) },
            xbase1: if l == 0 { bx0 } else { hbase(l - 1, 1) },
            hbase0: hbase(l, 0),
            hbase1: hbase(l, 1),
            pdst: nlay.pdst,
            nfin: nlay.fin.len().max(1),
            pbase: if nlay.fin.is_empty() { 0 } else { pbase },
            cbase: if nlay.fin.is_empty() { 0 } else { pbase },
            flane: nlay.fin.start / bh,
            fidx: nlay.fin.start % bh,
            hmask: mask_bits(hm, 8),
        });
        wbase += nlay.rows.len() * (a + b);
        bbase += nlay.rows.len();
        pbase += nlay.fin.len();
    }

    // Ports and how frames from each device arrive.
    let ports: Vec<PortView> = n
        .ports
        .iter()
        .enumerate()
        .map(|(p, (tx, rx))| {
            let doc = if sys.switched {
                if design.plan.plan.target.link.mode == LinkMode::Host {
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
            let mut rv = String::new();
            for v in 0..vpb_h.max(vpb_p) {
                let hx = if v < vpb_h {
                    zext(
                        &format!("rh_d_{p}[{}:{}]", (v + 1) * dw - 1, v * dw),
                        dw,
                        accw,
                    )
                } else {
                    format!("{accw}'d0")
                };
                let px = if v < vpb_p {
                    format!("rh_d_{p}[{}:{}]", (v + 1) * accw - 1, v * accw)
                } else {
                    format!("{accw}'d0")
                };
                let _ = writeln!(
                    rv,
                    "            {vpb_w}'d{v}: rv_val_{p} = (rt_{p} == 2'd0) ? {hx} : {px};"
                );
            }
            PortView {
                index: p,
                doc,
                rv_case: rv,
            }
        })
        .collect();

    // Partial-sum source slots.
    let mut devs: Vec<usize> = n
        .layers
        .iter()
        .flat_map(|l| l.sources.iter().map(|s| s.0))
        .collect();
    devs.sort_unstable();
    devs.dedup();
    let slots: Vec<SlotView> = devs
        .iter()
        .enumerate()
        .map(|(i, &dev)| SlotView {
            index: i,
            dev,
            local: dev == me,
            port: sys.port_of(me, dev),
            layers: n
                .layers
                .iter()
                .enumerate()
                .filter_map(|(l, nlay)| {
                    nlay.sources.iter().find(|s| s.0 == dev).map(|s| SlotLayer {
                        index: l,
                        mask: mask_bits(s.1, 4),
                        pbase: pbases[l],
                        n: nlay.fin.len() * s.1.count_ones() as usize,
                    })
                })
                .collect(),
            slot_ext: fit(&format!("pw_cs_{i}"), unit_w, paw),
        })
        .collect();
    let nslots = slots.len().max(1);
    let psum_w = accw + bits_for(nslots as u64);
    let psum_exprs: Vec<String> = (0..4)
        .map(|g| {
            if slots.is_empty() {
                return format!("{psum_w}'d0");
            }
            slots
                .iter()
                .map(|s| {
                    format!(
                        "(cm_{i}[{g}] ? {} : {psum_w}'d0)",
                        sext(&format!("pq_{i}_{g}", i = s.index), accw, psum_w),
                        i = s.index
                    )
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect();

    // Where h values from each device start, per layer.
    let hstart_w = lane_w + dp.vaw + unit_w + 1;
    let mut hstarts = Vec::new();
    for src in &sys.nodes {
        for (l, sl) in src.layers.iter().enumerate() {
            if src.index == me || !sl.h_consumers.contains(&me) {
                continue;
            }
            let v = ((((sl.fin.start / bh) as u128) << (dp.vaw + unit_w + 1))
                | (((sl.fin.start % bh) as u128) << (unit_w + 1))
                | sl.fin.len() as u128) as u64;
            hstarts.push(KV {
                key: format!("{}'d{}", 3 + layer_w, (src.index << layer_w) | l),
                value: format!("{hstart_w}'d{v}"),
            });
        }
    }
    let routes: Vec<Route> = (0..nd)
        .filter(|d| *d != me)
        .map(|d| Route {
            dev: d,
            port: sys.port_of(me, d),
        })
        .collect();
    let mut others = 0u8;
    for d in 0..nd {
        if d != me {
            others |= 1 << d;
        }
    }
    let last = &n.layers[nl - 1];
    let axis_w = dw.div_ceil(8) * 8;
    let nwords = dp.wword.div_ceil(32).max(dp.bw.div_ceil(32));
    let wstage_w = nwords * 32;
    let (waw, baw) = (dp.waw, dp.baw);
    let mut unused = vec!["wsel[31:1]".to_string()];
    if waw.max(baw) < 32 {
        unused.push(format!("waddr_reg[31:{}]", waw.max(baw)));
    }
    if wstage_w > dp.wword.max(dp.bw) {
        unused.push(format!("wstage[{}:{}]", wstage_w - 1, dp.wword.max(dp.bw)));
    }
    let ofifo_depth = 64usize.max((last.fin.len() + 1).next_power_of_two().min(1024));
    let txq_depth = 64usize;
    let tq_w = 1 + 2 + layer_w + 1 + 3 + accw;
    let view = NodeView {
        header: header(design),
        me,
        ndev: nd,
        topology: if design.plan.plan.target.link.mode == LinkMode::Host {
            "host-relayed".into()
        } else {
            design.plan.plan.target.link.topology.to_string()
        },
        port_doc: format!("({} port(s))", n.ports.len()),
        lw,
        layers_n: nl,
        input_size: m.input_size,
        hidden: h,
        k,
        ports,
        axis_w,
        n_out: last.fin.len(),
        out_u0: last.fin.start,
        wstage_w,
        layer_w,
        row_w,
        slice_w,
        waw,
        baw,
        vaw: dp.vaw,
        lane_w,
        unit_w,
        caw,
        paw,
        bar_w: bits_for(2 * nd as u64) + 1,
        layer_consts,
        ofifo_depth,
        ofifo_aw: ofifo_depth.trailing_zeros(),
        txq_depth,
        txq_aw: txq_depth.trailing_zeros(),
        tq_w,
        dw,
        accw,
        wword: dp.wword,
        bw: dp.bw,
        slots,
        gates: vec![0, 1, 2, 3],
        pdepth,
        cnt_w,
        rxd: 64,
        rx_aw: 6,
        vpb_w,
        vpb_h,
        vpb_p,
        maxv_h,
        maxv_p,
        max_vals: maxv_h.max(maxv_p),
        maxb: MAX_BEATS,
        fb_w: bits_for(MAX_BEATS as u64),
        fb_ix_w: bits_for(MAX_BEATS as u64 - 1),
        hstart_w,
        hstarts,
        need_x: if n.needs_x {
            "1'b1".into()
        } else {
            "1'b0".into()
        },
        in_w: bits_for(m.input_size as u64 - 1),
        bx0,
        bh,
        routes,
        others_mask: mask_bits(others, 8),
        tq_val_lw: fit("tq_val", accw, lw),
        layer_ext: fit("f_layer", layer_w, 3),
        fslot_ext: fit("f_slot", unit_w, paw),
        ew: EwView {
            w: dp.ew,
            caw,
            cdepth: pdepth,
            adv: "fadv",
            unit: fit("fs1", unit_w, caw),
        },
        axil_rw: vec![AxilReg {
            index: word_index(reg::LINK_TIMEOUT),
            expr: "link_timeout".into(),
        }],
        axil_ro: [
            (reg::LINK_STATUS, "{28'd0, link_status}".to_string()),
            (reg::LINK_CRC_ERRS, "crc_errs".into()),
            (reg::LINK_SEQ_ERRS, "seq_errs".into()),
            (reg::LINK_FMT_ERRS, "fmt_errs".into()),
            (reg::LINK_ERR_INFO, "err_info".into()),
            (reg::TX_BEATS, "tx_beats".into()),
            (reg::FWD_BEATS, "fwd_beats".into()),
            (reg::RX_BEATS, "rx_beats".into()),
            (reg::MAC_CYCLES, "mac_cycles".into()),
            (reg::WAIT_CYCLES, "wait_cycles".into()),
            (reg::NODE, format!("32'h{:08x}", (me << 8) | nd)),
        ]
        .into_iter()
        .map(|(offset, e)| AxilReg {
            index: word_index(offset),
            expr: e,
        })
        .collect(),
        status_err: "err_flag || link_err",
        psum_w,
        psum_exprs,
        pre_w: dp.pre_w,
        pre_shr: dp.pre_shr,
        pre_shl: dp.pre_shl,
        round_ne: dp.round_ne,
        sat: dp.sat,
        h6_acc: zext("h6", dw, accw),
        out_ext: if axis_w > dw {
            format!("{{{{{}{{of_head[{dw}]}}}}, of_head[{dw}:1]}}", axis_w - dw)
        } else {
            format!("of_head[{dw}:1]")
        },
        unused_regs: unused.join(", "),
        wdata_regs: (0..nwords as usize).collect(),
        id_hex: format!("{DEVICE_ID:08x}"),
        version_hex: format!("{:08x}", version_word()),
        hash_lo: format!("{:08x}", design.plan.plan_hash as u32),
        hash_hi: format!("{:08x}", (design.plan.plan_hash >> 32) as u32),
        config0_hex: format!(
            "{:08x}",
            ((m.input_size as u32 & 0xffff) << 16) | (h as u32 & 0xffff)
        ),
        config1_hex: format!(
            "{:08x}",
            ((nl as u32 & 0xff) << 24) | (1 << 16) | ((k as u32 & 0xff) << 8) | (dw & 0xff)
        ),
        src_bad: out_of_range("hd_src_#", nd),
        layer_bad: out_of_range("hd_layer_#", nl),
    };
    let mut files = datapath_files(design, m, dp.engine)?;
    files.push(File {
        name: "partita_top.v".into(),
        text: render(view.render())?,
    });
    // Weights: per row, x slices then h slices, lanes of banks this device does not hold zero.
    let entry_w = dp.wword / k as u32;
    let iw = index_bits;
    let hdr = format!(
        "// partita {} plan hash {:016x} device {me}\n",
        crate::VERSION,
        design.plan.plan_hash
    );
    let (mut w, mut b) = (hdr.clone(), hdr.clone());
    let mut words = 0usize;
    for (l, nlay) in n.layers.iter().enumerate() {
        let layer = &m.layers[l];
        for &r in &nlay.rows {
            for (mat, banks) in [(&layer.q_ih, &nlay.x_banks), (&layer.q_hh, &nlay.h_banks)] {
                if banks.is_empty() {
                    continue;
                }
                for j in 0..mat.shape.nnz_per_bank {
                    let mut word = Word::new(dp.wword);
                    for lane in 0..k {
                        if banks.contains(&lane) {
                            let (v, idx) = mat.entry(r, j, lane);
                            let at = lane as u32 * entry_w;
                            word.set(at, iw, idx as u64);
                            word.set(at + iw, dp.ww, v as u64);
                        }
                    }
                    let _ = writeln!(w, "{}", word.hex());
                    words += 1;
                }
            }
            let mut word = Word::new(dp.bw);
            if nlay.bias {
                word.set(0, dp.bw, layer.q_bias[r] as u64);
            }
            let _ = writeln!(b, "{}", word.hex());
        }
    }
    if words == 0 {
        let _ = writeln!(w, "{}", Word::new(dp.wword).hex());
        let _ = writeln!(b, "{}", Word::new(dp.bw).hex());
    }
    let mut regs = registers(nwords);
    for (name, offset, access, doc) in [
        ("LINK_STATUS", reg::LINK_STATUS, "R", "sticky link errors: bit 0 CRC, 1 sequence (dropped or reordered frame), 2 malformed frame, 3 timeout"),
        ("LINK_CRC_ERRS", reg::LINK_CRC_ERRS, "R", "frames with a CRC mismatch"),
        ("LINK_SEQ_ERRS", reg::LINK_SEQ_ERRS, "R", "frames with an unexpected sequence number"),
        ("LINK_FMT_ERRS", reg::LINK_FMT_ERRS, "R", "malformed frames"),
        ("LINK_ERR_INFO", reg::LINK_ERR_INFO, "R", "first error: kind << 28 | source << 24 | expected seq << 13 | received seq"),
        ("TX_BEATS", reg::TX_BEATS, "R", "link beats this device sent (its own frames)"),
        ("FWD_BEATS", reg::FWD_BEATS, "R", "link beats this device forwarded for others"),
        ("RX_BEATS", reg::RX_BEATS, "R", "link beats received"),
        ("MAC_CYCLES", reg::MAC_CYCLES, "R", "cycles the row engine issued work in the last run"),
        ("WAIT_CYCLES", reg::WAIT_CYCLES, "R", "cycles spent waiting on links (barriers, partial sums) in the last run"),
        ("LINK_TIMEOUT", reg::LINK_TIMEOUT, "RW", "cycles a link wait may last before LINK_STATUS bit 3 (0: no limit)"),
        ("NODE", reg::NODE, "R", "device index << 8 | device count"),
    ] {
        regs.push(Register {
            name,
            offset,
            access,
            doc: doc.to_string(),
        });
    }
    let regs_json: Vec<serde_json::Value> = regs
        .iter()
        .map(|r| serde_json::json!({"name": r.name, "offset": r.offset, "access": r.access, "doc": r.doc}))
        .collect();
    files.push(File {
        name: "regmap.json".into(),
        text: serde_json::to_string_pretty(&serde_json::json!({
            "generator": format!("partita {}", crate::VERSION),
            "plan_hash": format!("{:016x}", design.plan.plan_hash),
            "top": "partita_top",
            "device": me,
            "devices": nd,
            "bus": {"control": "AXI4-Lite, 32-bit data, 12-bit byte address", "input": "AXI4-Stream, one x value per beat", "output": "AXI4-Stream, one h value of this device's last-layer units per beat, tlast on the last of each timestep", "links": format!("AXI4-Stream, {lw} bits per beat, frames ended by tlast")},
            "registers": regs_json,
        }))
        .unwrap_or_default()
            + "\n",
    });
    files.push(File {
        name: "partita_regs.h".into(),
        text: regs_header(design, &regs),
    });
    files.push(File {
        name: "weights_e0.hex".into(),
        text: w,
    });
    files.push(File {
        name: "bias_e0.hex".into(),
        text: b,
    });
    let list = file_list(design, &format!(", device {me} of {nd}"), &files);
    files.push(list);
    Ok(files)
}
