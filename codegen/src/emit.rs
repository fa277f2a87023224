//! Emitter `gen`: fill the Verilog templates in `templates/` for a single-device LSTM design,
//! and write the weight/bias `$readmemh` files, the register map (JSON and C header) and a file
//! list for vendor tools. Every width and name is computed here; templates only place them.
//!
//! Engine m computes hidden units m, m+M, m+2M, ... and for each the rows i, f, g, o in that
//! order; its weight memory holds those rows' CSB slices in exactly that order (x slices, then
//! h slices), so the shared controller just counts addresses.

use std::fmt::Write as _;

use askama::Template;

use crate::act_table::ActTable;
use crate::design::{Design, LstmDesign, ModelDesign};
use crate::fixed::{signed_bits, Rounding};
use crate::plan::ActMethod;

/// Register offsets (byte addresses) of the AXI4-Lite map; regmap.json and partita_regs.h
/// describe them. The LINK_* and later ones exist on multi-device nodes only.
pub mod reg {
    pub const ID: u32 = 0x00;
    pub const VERSION: u32 = 0x04;
    pub const PLAN_HASH_LO: u32 = 0x08;
    pub const PLAN_HASH_HI: u32 = 0x0C;
    pub const CTRL: u32 = 0x10;
    pub const STATUS: u32 = 0x14;
    pub const SEQ_LEN: u32 = 0x18;
    pub const SEQ_COUNT: u32 = 0x1C;
    pub const CYCLES_LO: u32 = 0x20;
    pub const CYCLES_HI: u32 = 0x24;
    pub const SAT_COUNT: u32 = 0x28;
    pub const ERR_COUNT: u32 = 0x2C;
    pub const CONFIG0: u32 = 0x80;
    pub const CONFIG1: u32 = 0x84;
    pub const LINK_STATUS: u32 = 0x88;
    pub const LINK_CRC_ERRS: u32 = 0x8C;
    pub const LINK_SEQ_ERRS: u32 = 0x90;
    pub const LINK_FMT_ERRS: u32 = 0x94;
    pub const LINK_ERR_INFO: u32 = 0x98;
    pub const TX_BEATS: u32 = 0x9C;
    pub const FWD_BEATS: u32 = 0xA0;
    pub const RX_BEATS: u32 = 0xA4;
    pub const MAC_CYCLES: u32 = 0xA8;
    pub const WAIT_CYCLES: u32 = 0xAC;
    pub const LINK_TIMEOUT: u32 = 0xB0;
    pub const NODE: u32 = 0xB4;
}

/// Magic value of the ID register: "PART".
pub const DEVICE_ID: u32 = 0x5041_5254;

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub text: String,
}

/// A register of the AXI4-Lite map.
#[derive(Clone, Debug)]
pub struct Register {
    pub name: &'static str,
    pub offset: u32,
    pub access: &'static str,
    pub doc: String,
}

/// Bits needed to hold the unsigned value `v` (at least 1).
pub fn bits_for(v: u64) -> u32 {
    (64 - v.leading_zeros()).max(1)
}

/// Sign-extend `expr` (width `from`) to `to` bits, as a Verilog expression.
pub fn sext(expr: &str, from: u32, to: u32) -> String {
    assert!(to >= from, "sext {expr} from {from} to {to}");
    if to == from {
        expr.to_string()
    } else {
        format!("{{{{{}{{{}[{}]}}}}, {}}}", to - from, expr, from - 1, expr)
    }
}

/// Zero-extend `expr` (width `from`) to `to` bits.
pub fn zext(expr: &str, from: u32, to: u32) -> String {
    assert!(to >= from, "zext {expr} from {from} to {to}");
    if to == from {
        expr.to_string()
    } else {
        format!("{{{}'d0, {}}}", to - from, expr)
    }
}

/// A `width`-bit constant holding the two's-complement pattern of `v`.
pub fn konst(v: i64, width: u32) -> String {
    let mask = if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    format!("{width}'h{:x}", (v as u64) & mask)
}

pub(crate) fn header(design: &Design) -> String {
    HeaderView {
        version: crate::VERSION,
        plan_name: &design.plan.name,
        plan_hash: &format!("{:016x}", design.plan.plan_hash),
    }
    .render()
    .expect("header template renders")
    .trim_end()
    .to_string()
}

#[derive(Template)]
#[template(path = "header.txt", escape = "none")]
struct HeaderView<'a> {
    version: &'a str,
    plan_name: &'a str,
    plan_hash: &'a str,
}

#[derive(Template)]
#[template(path = "partita_requant.v", escape = "none")]
pub(crate) struct RequantView {
    header: String,
}

#[derive(Template)]
#[template(path = "partita_act.v", escape = "none")]
pub(crate) struct ActView {
    header: String,
    name: String,
    func: &'static str,
    input_fmt: String,
    output_fmt: String,
    method: String,
    pieces: usize,
    lo: f64,
    hi: f64,
    max_err: String,
    iw: u32,
    ow: u32,
    x_ext: String,
    lo_const: String,
    last_const: String,
    last: u64,
    rel_w: u32,
    kw: u32,
    shift: u32,
    is_lut: bool,
    entries: Vec<String>,
    coeffs: Vec<(String, String)>,
    c0w: u32,
    c1w: u32,
    accw: u32,
    c0_ext: String,
    c1_ext: String,
    off_ext: String,
    guard: u32,
    round_ne: u32,
}

pub(crate) fn act_view(design: &Design, name: &str, t: &ActTable) -> Result<ActView, String> {
    let iw = t.input.width();
    let ow = t.output.width();
    let shift = t.grid.step_shift;
    let pieces = t.grid.pieces;
    if pieces < 2 {
        return Err(format!(
            "the {name} table needs at least 2 pieces for hardware"
        ));
    }
    if t.method == ActMethod::Pwl && shift == 0 {
        return Err(format!(
            "the {name} table has one input code per segment; use fewer segments (or method = \"lut\")"
        ));
    }
    let kw = pieces.trailing_zeros();
    let rel_w = kw + shift;
    let last = ((pieces as u64) << shift) - 1;
    let c0w = signed_bits(&t.values).max(2);
    let c1w = signed_bits(&t.slopes).max(2);
    let accw = c0w.max(c1w + shift + 1) + 1;
    let lo_code = t.grid.lo_code;
    let (lo, hi) = (
        t.input.to_f64(lo_code),
        t.input.to_f64(lo_code + last as i64 + 1),
    );
    Ok(ActView {
        header: header(design),
        name: name.to_string(),
        func: t.func.name(),
        input_fmt: t.input.to_string(),
        output_fmt: t.output.to_string(),
        method: t.method.to_string(),
        pieces,
        lo,
        hi,
        max_err: format!("{:.3e}", t.max_abs_error),
        iw,
        ow,
        x_ext: sext("x", iw, iw + 1),
        lo_const: konst(lo_code, iw + 1),
        last_const: konst(last as i64, iw + 1),
        last,
        rel_w,
        kw,
        shift,
        is_lut: t.method == ActMethod::Lut,
        entries: t.values.iter().map(|v| konst(*v, ow)).collect(),
        coeffs: t
            .values
            .iter()
            .zip(&t.slopes)
            .map(|(c0, c1)| (konst(*c0, c0w), konst(*c1, c1w)))
            .collect(),
        c0w,
        c1w,
        accw,
        c0_ext: sext("c0", c0w, accw),
        c1_ext: sext("c1", c1w, accw),
        off_ext: if shift > 0 {
            zext(&format!("rel[{}:0]", shift - 1), shift, accw)
        } else {
            format!("{accw}'d0")
        },
        guard: t.guard,
        round_ne: (t.rounding == Rounding::NearestEven) as u32,
    })
}

struct TreeNode {
    name: String,
    width: u32,
    expr: String,
}

#[derive(Template)]
#[template(path = "partita_engine.v", escape = "none")]
pub(crate) struct EngineView {
    header: String,
    k: usize,
    lanes: Vec<usize>,
    waw: u32,
    baw: u32,
    vaw: u32,
    lane_w: u32,
    dw: u32,
    ww: u32,
    iw: u32,
    bw: u32,
    pw: u32,
    sw: u32,
    accw: u32,
    wword: u32,
    entry_w: u32,
    wdepth: usize,
    bdepth: usize,
    vdepth: usize,
    idx_ext: Vec<String>,
    prod_a: Vec<String>,
    prod_b: Vec<String>,
    levels: Vec<u32>,
    tree: Vec<TreeNode>,
    tree_delay: u32,
    tree_out: String,
    sum_ext: String,
    bias_aligned: String,
}

struct RowLane {
    index: usize,
    /// Sum of this lane's engines' accumulators, one bit wider.
    sum_expr: String,
}

struct Bundle {
    index: usize,
    /// Per-gate mapping: {i, f, g, o} pre-activations of this bundle's unit.
    capture: String,
}

struct LayerConst {
    index: usize,
    slices: usize,
    nih: usize,
    rows: usize,
    xbase_expr: String,
    hbase0: usize,
    hbase1: usize,
    cbase: usize,
}

#[derive(Template)]
#[template(path = "partita_top.v", escape = "none")]
struct TopView {
    header: String,
    layers_n: usize,
    input_size: usize,
    hidden: usize,
    engines: usize,
    k: usize,
    dw: u32,
    axis_w: u32,
    wstage_w: u32,
    layer_w: u32,
    last_layer: usize,
    row_w: u32,
    slice_w: u32,
    waw: u32,
    baw: u32,
    lane_w: u32,
    vaw: u32,
    in_w: u32,
    unit_w: u32,
    caw: u32,
    layer_consts: Vec<LayerConst>,
    ofifo_depth: usize,
    ofifo_aw: u32,
    bx0_last: usize,
    in_last: usize,
    engine_list: Vec<usize>,
    pre_w: u32,
    wword: u32,
    bw: u32,
    eng_w: u32,
    last_bundle: usize,
    sat_add_w: u32,
    row_clips_expr: String,
    accw: u32,
    pre_shr: u32,
    pre_shl: u32,
    engine_kinds: Vec<u32>,
    rlanes: Vec<RowLane>,
    per_gate: bool,
    bundles: usize,
    bundle_list: Vec<Bundle>,
    round_ne: u32,
    sat: u32,
    ew: EwView,
    axil_rw: Vec<AxilReg>,
    axil_ro: Vec<AxilReg>,
    status_err: &'static str,
    bh_last: usize,
    hidden_last: usize,
    out_ext: String,
    sat_ext: String,
    wdata_regs: Vec<usize>,
    id_hex: String,
    version_hex: String,
    hash_lo: String,
    hash_hi: String,
    config0_hex: String,
    config1_hex: String,
    unused_regs: String,
}

/// Widths, shifts and product expressions of the element-wise unit (`partita_ew.inc`).
pub(crate) struct EwWidths {
    pub(crate) dw: u32,
    pub(crate) pre_w: u32,
    pub(crate) round_ne: u32,
    pub(crate) sat: u32,
    pub(crate) cell_w: u32,
    pub(crate) gw: u32,
    pub(crate) fc_w: u32,
    pub(crate) ig_w: u32,
    pub(crate) csum_w: u32,
    pub(crate) cell_shr: u32,
    pub(crate) cell_shl: u32,
    pub(crate) oh_w: u32,
    pub(crate) h_shr: u32,
    pub(crate) h_shl: u32,
    pub(crate) fc_aligned: String,
    pub(crate) ig_aligned: String,
    /// Full-width products o*tanh(c), f*c and i*g.
    pub(crate) oh_expr: String,
    pub(crate) fc_expr: String,
    pub(crate) ig_expr: String,
}

/// What `partita_ew.inc` needs from the including top: the widths, the cell memory's address
/// width and depth, the signal that advances the pipeline and the unit index expression.
pub(crate) struct EwView {
    pub(crate) w: EwWidths,
    pub(crate) caw: u32,
    pub(crate) cdepth: usize,
    pub(crate) adv: &'static str,
    pub(crate) unit: String,
}

/// A register the shared AXI4-Lite block decodes beyond the common map: word index (hex) and
/// the register or expression it reads (and, for read-write ones, writes).
pub(crate) struct AxilReg {
    pub(crate) index: String,
    pub(crate) expr: String,
}

/// Shift amounts to move from `from_frac` to `to_frac` fraction bits: (right, left).
fn shifts(from_frac: u32, to_frac: u32) -> (u32, u32) {
    if from_frac >= to_frac {
        (from_frac - to_frac, 0)
    } else {
        (0, to_frac - from_frac)
    }
}

/// How the four gates of a unit and the two products of a row share the engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Engine m computes units m, m+M, ..., all four gate rows of each in turn (default).
    Interleaved,
    /// Strategy `gates`: a group of M/4 engines per gate; every slot completes M/4 units.
    PerGate,
    /// Strategy `ops`: engine pairs, one for W_ih x and one for W_hh h of the same row, whose
    /// full-width partial sums are added before the one rounding.
    Ops,
}

/// The geometry every generated file shares.
pub struct Geometry {
    pub k: usize,
    pub m: usize,
    pub h: usize,
    pub i: usize,
    pub layers: usize,
    pub mapping: Mapping,
    /// Row lanes: producers of one finished row per slot (engines, or engine pairs).
    pub rlanes: usize,
    /// Rows per row lane per layer (padded).
    pub rows_per_lane: usize,
    /// CSB slices per row, per layer: (x slices, h slices).
    pub slices: Vec<(usize, usize)>,
    pub bx0: usize,
    pub bh: usize,
    pub index_bits: u32,
    pub wdepth: usize,
    pub bdepth: usize,
    pub vdepth: usize,
}

impl Geometry {
    pub fn new(design: &Design, m: &LstmDesign) -> Result<Self, String> {
        use crate::plan::Strategy;
        let k = design.plan.banks;
        let engines = design.plan.plan.target.engines as usize;
        let h = m.hidden_size;
        let all = |s: Strategy| design.plan.layers.iter().all(|a| a.strategy == s);
        let mapping = if all(Strategy::Gates) {
            if engines % 4 != 0 {
                return Err(format!(
                    "strategy \"gates\" gives each gate its own engines, so [target] engines must be a multiple of 4 (it is {engines})"
                ));
            }
            Mapping::PerGate
        } else if all(Strategy::Ops) {
            if engines % 2 != 0 {
                return Err(format!(
                    "strategy \"ops\" puts W_ih x and W_hh h on separate engines, so [target] engines must be even (it is {engines})"
                ));
            }
            Mapping::Ops
        } else {
            Mapping::Interleaved
        };
        let rlanes = if mapping == Mapping::Ops {
            engines / 2
        } else {
            engines
        };
        let rows_per_lane = match mapping {
            Mapping::PerGate => h.div_ceil(rlanes / 4),
            _ => h.div_ceil(rlanes) * 4,
        };
        let slices: Vec<(usize, usize)> = m
            .layers
            .iter()
            .map(|l| (l.q_ih.shape.nnz_per_bank, l.q_hh.shape.nnz_per_bank))
            .collect();
        let mut g = Self {
            k,
            m: engines,
            h,
            i: m.input_size,
            layers: m.layers.len(),
            mapping,
            rlanes,
            rows_per_lane,
            slices,
            bx0: m.layers[0].q_ih.shape.bank_size,
            bh: m.layers[0].q_hh.shape.bank_size,
            index_bits: m
                .layers
                .iter()
                .flat_map(|l| [l.q_ih.shape.index_bits(), l.q_hh.shape.index_bits()])
                .max()
                .unwrap_or(1),
            wdepth: 0,
            bdepth: 0,
            vdepth: 0,
        };
        for l in 0..g.layers {
            let period = g.slices_per_row(l) * if mapping == Mapping::PerGate { 1 } else { 4 };
            if g.bundles() >= period {
                return Err(format!(
                    "layer {l}: {} units complete every {period} cycles, faster than the \
                     element-wise unit takes them (one per cycle); use fewer engines",
                    g.bundles()
                ));
            }
        }
        g.wdepth = (0..g.layers)
            .map(|l| rows_per_lane * g.slices_per_row(l))
            .sum();
        g.bdepth = rows_per_lane * g.layers;
        g.vdepth = g.bx0 + 2 * g.layers * g.bh;
        Ok(g)
    }

    /// Cycles per row in layer `l`: both products in turn, or the longer one for `ops` pairs.
    pub fn slices_per_row(&self, l: usize) -> usize {
        let (a, b) = self.slices[l];
        if self.mapping == Mapping::Ops {
            a.max(b)
        } else {
            a + b
        }
    }

    /// 0: x then h slices; 1: x only; 2: h only.
    pub fn engine_kind(&self, e: usize) -> u32 {
        match self.mapping {
            Mapping::Ops => 1 + (e % 2) as u32,
            _ => 0,
        }
    }

    pub fn engine_rlane(&self, e: usize) -> usize {
        match self.mapping {
            Mapping::Ops => e / 2,
            _ => e,
        }
    }

    /// Units completed per bundle hand-over.
    pub fn bundles(&self) -> usize {
        match self.mapping {
            Mapping::PerGate => self.rlanes / 4,
            _ => self.rlanes,
        }
    }

    /// Base of h buffer `buf` of layer `l` in every lane's vector memory.
    pub fn hbase(&self, l: usize, buf: usize) -> usize {
        self.bx0 + (2 * l + buf) * self.bh
    }

    /// The row (of 4H) that row lane `r` computes at position `p` of a layer, or None for padding.
    pub fn row_of(&self, r: usize, p: usize) -> Option<usize> {
        let (gate, unit) = match self.mapping {
            Mapping::PerGate => {
                let gsz = self.rlanes / 4;
                (r / gsz, p * gsz + r % gsz)
            }
            _ => (p % 4, (p / 4) * self.rlanes + r),
        };
        (unit < self.h).then_some(gate * self.h + unit)
    }
}

/// Test vectors for the generated self-checking testbench: data-format codes.
#[derive(Clone, Debug, Default)]
pub struct Vectors {
    pub seq_len: usize,
    pub seq_count: usize,
    /// `(sequence, timestep, feature)` flattened.
    pub input: Vec<i64>,
    /// `(sequence, timestep, unit)` flattened, from the golden model.
    pub expected: Vec<i64>,
}

#[derive(Template)]
#[template(path = "partita_tb.v", escape = "none")]
struct TbView {
    header: String,
    nin: usize,
    nout: usize,
    axis_w: u32,
    hidden: usize,
    seq_len: usize,
    seq_count: usize,
    timeout: u64,
}

/// Widths, shifts and the engine view shared by the single-device top and the multi-device node.
pub(crate) struct Datapath {
    pub(crate) hdr: String,
    pub(crate) round_ne: u32,
    pub(crate) sat: u32,
    pub(crate) dw: u32,
    pub(crate) ww: u32,
    pub(crate) bw: u32,
    pub(crate) pre_w: u32,
    pub(crate) entry_w: u32,
    pub(crate) wword: u32,
    pub(crate) accw: u32,
    pub(crate) vaw: u32,
    pub(crate) waw: u32,
    pub(crate) baw: u32,
    pub(crate) lane_w: u32,
    pub(crate) pre_shr: u32,
    pub(crate) pre_shl: u32,
    pub(crate) engine: EngineView,
    pub(crate) ew: EwWidths,
}

pub(crate) fn datapath(
    design: &Design,
    k: usize,
    index_bits: u32,
    wdepth: usize,
    bdepth: usize,
    vdepth: usize,
) -> Datapath {
    let q = design.quant();
    let hdr = header(design);
    let round_ne = (q.rounding == Rounding::NearestEven) as u32;
    let sat = (q.overflow == crate::fixed::Overflow::Saturate) as u32;
    let (dw, ww, bw) = (q.data.width(), q.weight.width(), q.bias.width());
    let (pre_w, gw, cell_w) = (q.preact.width(), q.gate.width(), q.cell.width());
    let iw = index_bits;
    let entry_w = ww + iw;
    let wword = k as u32 * entry_w;
    let pw = ww + dw;
    // Tree levels: ceil(log2 K), at least one registered level.
    let tl = if k == 1 { 1 } else { bits_for(k as u64 - 1) };
    let sw = pw + tl;
    let accw = design.acc_bits.max(sw + 1);
    let vaw = bits_for(vdepth as u64 - 1);
    let waw = bits_for(wdepth as u64 - 1);
    let baw = bits_for(bdepth as u64 - 1);
    let lane_w = bits_for(k as u64 - 1);
    let prod_frac = q.weight.frac_bits + q.data.frac_bits;
    let (pre_shr, pre_shl) = shifts(prod_frac, q.preact.frac_bits);
    let bshift = prod_frac - q.bias.frac_bits;

    // Adder tree: level 0 is the lane products t0_k; each level adds pairs at one bit wider.
    let mut tree = Vec::new();
    let mut prev: Vec<String> = (0..k).map(|k| format!("t0_{k}")).collect();
    let mut width = pw;
    let mut levels = Vec::new();
    for lvl in 1..=tl {
        let next_w = width + 1;
        let mut next = Vec::new();
        for (i, pair) in prev.chunks(2).enumerate() {
            let name = format!("s{lvl}_{i}");
            let expr = match pair {
                [a, b] => format!("{} + {}", sext(a, width, next_w), sext(b, width, next_w)),
                [a] => sext(a, width, next_w),
                _ => unreachable!(),
            };
            tree.push(TreeNode {
                name: name.clone(),
                width: next_w,
                expr,
            });
            next.push(name);
        }
        levels.push(next_w);
        prev = next;
        width = next_w;
    }
    let engine = EngineView {
        header: hdr.clone(),
        k: k,
        lanes: (0..k).collect(),
        waw,
        baw,
        vaw,
        lane_w,
        dw,
        ww,
        iw,
        bw,
        pw,
        sw,
        accw,
        wword,
        entry_w,
        wdepth: wdepth,
        bdepth: bdepth,
        vdepth: vdepth,
        idx_ext: (0..k)
            .map(|k| zext(&format!("widx_{k}"), iw, vaw))
            .collect(),
        prod_a: (0..k).map(|k| sext(&format!("wv_{k}"), ww, pw)).collect(),
        prod_b: (0..k).map(|k| sext(&format!("vin_{k}"), dw, pw)).collect(),
        levels,
        tree,
        tree_delay: tl - 1,
        tree_out: prev[0].clone(),
        sum_ext: sext("sum", sw, accw),
        bias_aligned: {
            let b = sext("sum_bias", bw, accw - bshift);
            if bshift > 0 {
                format!("{{{b}, {bshift}'d0}}")
            } else {
                b
            }
        },
    };

    // Element-wise widths.
    let fc_w = gw + cell_w;
    let ig_w = 2 * gw;
    let fc_frac = q.gate.frac_bits + q.cell.frac_bits;
    let ig_frac = 2 * q.gate.frac_bits;
    let c_frac = fc_frac.max(ig_frac);
    let (sh_fc, sh_ig) = (c_frac - fc_frac, c_frac - ig_frac);
    let csum_w = (fc_w + sh_fc).max(ig_w + sh_ig) + 1;
    // {sign extension, name, sh zero bits}: the sign comes from `name` itself, since
    // Verilog-2005 cannot bit-select a concatenation.
    let align = |name: &str, w: u32, sh: u32| {
        let ext = csum_w - w - sh;
        let mut parts = Vec::new();
        if ext > 0 {
            parts.push(format!("{{{ext}{{{name}[{}]}}}}", w - 1));
        }
        parts.push(name.to_string());
        if sh > 0 {
            parts.push(format!("{sh}'d0"));
        }
        if parts.len() == 1 {
            name.to_string()
        } else {
            format!("{{{}}}", parts.join(", "))
        }
    };
    let (cell_shr, cell_shl) = shifts(c_frac, q.cell.frac_bits);
    let oh_w = 2 * gw;
    let (h_shr, h_shl) = shifts(ig_frac, q.data.frac_bits);
    Datapath {
        hdr,
        round_ne,
        sat,
        dw,
        ww,
        bw,
        pre_w,
        entry_w,
        wword,
        accw,
        vaw,
        waw,
        baw,
        lane_w,
        pre_shr,
        pre_shl,
        engine,
        ew: EwWidths {
            dw,
            pre_w,
            round_ne,
            sat,
            cell_w,
            gw,
            fc_w,
            ig_w,
            csum_w,
            cell_shr,
            cell_shl,
            oh_w,
            h_shr,
            h_shl,
            fc_aligned: align("fc3", fc_w, sh_fc),
            ig_aligned: align("ig3", ig_w, sh_ig),
            oh_expr: format!("{} * {}", sext("o5", gw, oh_w), sext("tc5", gw, oh_w)),
            fc_expr: format!("{} * {}", sext("f2", gw, fc_w), sext("c2", cell_w, fc_w)),
            ig_expr: format!("{} * {}", sext("i2", gw, ig_w), sext("g2", gw, ig_w)),
        },
    }
}

/// Generate every file of a single-device LSTM design, plus a self-checking testbench when
/// `vectors` are given.
pub fn generate(design: &Design, vectors: Option<&Vectors>) -> Result<Vec<File>, String> {
    let ModelDesign::Lstm(m) = &design.model else {
        return Err("CNN hardware is not built yet; `partita gen` handles LSTM plans".into());
    };
    if design.plan.devices != 1 {
        return Err(format!(
            "the plan has {} devices; multi-device RTL (link ports) is not built yet, so `gen` \
             handles single-device plans",
            design.plan.devices
        ));
    }
    let g = Geometry::new(design, m)?;
    let Datapath {
        hdr,
        round_ne,
        sat,
        dw,
        bw,
        pre_w,
        entry_w,
        wword,
        accw,
        vaw,
        waw,
        baw,
        lane_w,
        pre_shr,
        pre_shl,
        engine,
        ew: ew_widths,
        ..
    } = datapath(design, g.k, g.index_bits, g.wdepth, g.bdepth, g.vdepth);
    let unit_w = bits_for((g.h + g.m) as u64);
    let caw = bits_for((g.layers * g.h) as u64 - 1);
    let layer_w = bits_for(g.layers as u64 - 1);
    let row_w = bits_for(g.rows_per_lane as u64 - 1);
    let slice_w = bits_for(g.slices.iter().map(|(a, b)| a + b).max().unwrap_or(1) as u64);
    let eng_w = bits_for(g.bundles() as u64 - 1);
    let sat_add_w = bits_for(g.rlanes as u64);
    let ofifo_depth = 64usize.max((g.h + 1).next_power_of_two().min(1024));
    let ofifo_aw = ofifo_depth.trailing_zeros();
    let axis_w = dw.div_ceil(8) * 8;
    let nwords = wword.div_ceil(32).max(bw.div_ceil(32));
    let wstage_w = nwords * 32;
    let layer_consts = (0..g.layers)
        .map(|l| LayerConst {
            index: l,
            slices: g.slices_per_row(l),
            // x slices come first in a mixed engine; x-only and h-only engines ignore it.
            nih: g.slices[l].0,
            rows: g.rows_per_lane,
            xbase_expr: if l == 0 {
                format!("{vaw}'d0")
            } else {
                format!(
                    "(cur[{}] ? {vaw}'d{} : {vaw}'d{})",
                    l - 1,
                    g.hbase(l - 1, 1),
                    g.hbase(l - 1, 0)
                )
            },
            hbase0: g.hbase(l, 0),
            hbase1: g.hbase(l, 1),
            cbase: l * g.h,
        })
        .collect();
    let mut unused = vec![format!("wsel[31:24]"), format!("wsel[15:1]")];
    if waw.max(baw) < 32 {
        unused.push(format!("waddr_reg[31:{}]", waw.max(baw)));
    }
    if wstage_w > wword.max(bw) {
        unused.push(format!("wstage[{}:{}]", wstage_w - 1, wword.max(bw)));
    }
    let version = version_word();
    let top = TopView {
        header: hdr.clone(),
        layers_n: g.layers,
        input_size: g.i,
        hidden: g.h,
        engines: g.m,
        k: g.k,
        dw,
        axis_w,
        wstage_w,
        layer_w,
        last_layer: g.layers - 1,
        row_w,
        slice_w,
        waw,
        baw,
        lane_w,
        vaw,
        in_w: bits_for(g.i as u64 - 1),
        unit_w,
        caw,
        layer_consts,
        ofifo_depth,
        ofifo_aw,
        bx0_last: g.bx0 - 1,
        in_last: g.i - 1,
        engine_list: (0..g.m).collect(),
        pre_w,
        wword,
        bw,
        eng_w,
        last_bundle: g.bundles() - 1,
        accw,
        pre_shr,
        pre_shl,
        engine_kinds: (0..g.m).map(|e| g.engine_kind(e)).collect(),
        rlanes: (0..g.rlanes)
            .map(|r| {
                let engines: Vec<usize> = (0..g.m).filter(|e| g.engine_rlane(*e) == r).collect();
                RowLane {
                    index: r,
                    sum_expr: engines
                        .iter()
                        .map(|e| sext(&format!("row_acc_{e}"), accw, accw + 1))
                        .collect::<Vec<_>>()
                        .join(" + "),
                }
            })
            .collect(),
        per_gate: g.mapping == Mapping::PerGate,
        bundles: g.bundles(),
        bundle_list: (0..g.bundles())
            .map(|b| {
                let n = g.bundles();
                Bundle {
                    index: b,
                    capture: format!(
                        "{{row_preact_{}, row_preact_{}, row_preact_{}, row_preact_{}}}",
                        b,
                        n + b,
                        2 * n + b,
                        3 * n + b
                    ),
                }
            })
            .collect(),
        sat_add_w,
        row_clips_expr: (0..g.rlanes)
            .map(|e| zext(&format!("row_clip_{e}"), 1, sat_add_w))
            .collect::<Vec<_>>()
            .join(" + "),
        round_ne,
        sat,
        ew: EwView {
            w: ew_widths,
            caw,
            cdepth: g.layers * g.h,
            adv: "adv",
            unit: unit_ext(unit_w, caw),
        },
        axil_rw: Vec::new(),
        axil_ro: Vec::new(),
        status_err: "err_flag",
        bh_last: g.bh - 1,
        hidden_last: g.h - 1,
        out_ext: if axis_w > dw {
            format!("{{{{{}{{of_head[{dw}]}}}}, of_head[{dw}:1]}}", axis_w - dw)
        } else {
            format!("of_head[{dw}:1]")
        },
        sat_ext: zext("row_clips", sat_add_w, 32),
        wdata_regs: (0..nwords as usize).collect(),
        id_hex: format!("{DEVICE_ID:08x}"),
        version_hex: format!("{version:08x}"),
        hash_lo: format!("{:08x}", design.plan.plan_hash as u32),
        hash_hi: format!("{:08x}", (design.plan.plan_hash >> 32) as u32),
        config0_hex: format!(
            "{:08x}",
            ((g.i as u32 & 0xffff) << 16) | (g.h as u32 & 0xffff)
        ),
        config1_hex: format!(
            "{:08x}",
            ((g.layers as u32 & 0xff) << 24)
                | ((g.m as u32 & 0xff) << 16)
                | ((g.k as u32 & 0xff) << 8)
                | (dw & 0xff)
        ),
        unused_regs: unused.join(", "),
    };
    let mut files = datapath_files(design, m, engine)?;
    files.push(File {
        name: "partita_top.v".into(),
        text: render(top.render())?,
    });
    files.extend(memory_files(design, m, &g, entry_w, wword));
    let regs = registers(nwords);
    files.push(File {
        name: "regmap.json".into(),
        text: regmap_json(design, &g, &regs, wword, bw),
    });
    files.push(File {
        name: "partita_regs.h".into(),
        text: regs_header(design, &regs),
    });
    files.push(file_list(design, "", &files));
    if let Some(v) = vectors {
        let words = |codes: &[i64]| {
            let mut t = String::new();
            for c in codes {
                let mut w = Word::new(axis_w);
                // Sign-extended to the stream width, as the device drives tdata.
                w.set(0, axis_w, *c as u64);
                let _ = writeln!(t, "{}", w.hex());
            }
            t
        };
        let per_step: u64 = g
            .slices
            .iter()
            .map(|(a, b)| (g.rows_per_lane * (a + b) + 64) as u64)
            .sum::<u64>()
            + g.i as u64;
        let tb = TbView {
            header: hdr.clone(),
            nin: v.input.len(),
            nout: v.expected.len(),
            axis_w,
            hidden: g.h,
            seq_len: v.seq_len,
            seq_count: v.seq_count,
            timeout: 10_000 + 2 * per_step * (v.seq_len * v.seq_count) as u64,
        };
        files.push(File {
            name: "partita_tb.v".into(),
            text: render(tb.render())?,
        });
        files.push(File {
            name: "tb_input.hex".into(),
            text: words(&v.input),
        });
        files.push(File {
            name: "tb_expected.hex".into(),
            text: words(&v.expected),
        });
    }
    Ok(files)
}

/// `u_cnt` (`unit_w` bits) as a cell-memory offset (`caw` bits).
fn unit_ext(unit_w: u32, caw: u32) -> String {
    if caw >= unit_w {
        zext("u_cnt", unit_w, caw)
    } else {
        format!("u_cnt[{}:0]", caw - 1)
    }
}

/// A memory word of any width, for `$readmemh`.
pub(crate) struct Word {
    limbs: Vec<u64>,
    bits: u32,
}

impl Word {
    pub(crate) fn new(bits: u32) -> Self {
        Word {
            limbs: vec![0; bits.div_ceil(64) as usize],
            bits,
        }
    }

    /// Put the low `width` bits of `v` at bit `at`.
    pub(crate) fn set(&mut self, at: u32, width: u32, v: u64) {
        for b in 0..width {
            if (v >> b) & 1 == 1 {
                let p = at + b;
                self.limbs[(p / 64) as usize] |= 1 << (p % 64);
            }
        }
    }

    pub(crate) fn hex(&self) -> String {
        (0..self.bits.div_ceil(4))
            .rev()
            .map(|n| {
                let p = n * 4;
                let nib = (self.limbs[(p / 64) as usize] >> (p % 64)) & 0xf;
                char::from_digit(nib as u32, 16).unwrap_or('0')
            })
            .collect()
    }
}

/// `$readmemh` files: per engine, the weight words (lane 0 in the low bits, each entry
/// `{value, index}`) and the combined biases, in schedule order.
fn memory_files(
    design: &Design,
    m: &LstmDesign,
    g: &Geometry,
    entry_w: u32,
    wword: u32,
) -> Vec<File> {
    let q = design.quant();
    let (ww, iw, bw) = (q.weight.width(), g.index_bits, q.bias.width());
    let hdr = format!(
        "// partita {} plan hash {:016x}\n",
        crate::VERSION,
        design.plan.plan_hash
    );
    let mut out = Vec::new();
    for e in 0..g.m {
        let mut w = hdr.clone();
        let mut b = hdr.clone();
        let (kind, lane) = (g.engine_kind(e), g.engine_rlane(e));
        for (l, layer) in m.layers.iter().enumerate() {
            let per_row = g.slices_per_row(l);
            // Kind 0: x then h slices; 1: x only; 2: h only (ops pairs).
            let mats: Vec<&crate::bbs_prune::CsbMatrix<i64>> = match kind {
                1 => vec![&layer.q_ih],
                2 => vec![&layer.q_hh],
                _ => vec![&layer.q_ih, &layer.q_hh],
            };
            for p in 0..g.rows_per_lane {
                let row = g.row_of(lane, p);
                let mut emitted = 0;
                for mat in &mats {
                    for j in 0..mat.shape.nnz_per_bank {
                        let mut word = Word::new(wword);
                        for k in 0..g.k {
                            let (v, idx) = row.map_or((0, 0), |r| mat.entry(r, j, k));
                            let at = k as u32 * entry_w;
                            word.set(at, iw, idx as u64);
                            word.set(at + iw, ww, v as u64);
                        }
                        let _ = writeln!(w, "{}", word.hex());
                        emitted += 1;
                    }
                }
                // An ops pair pads its shorter product with zero slices.
                for _ in emitted..per_row {
                    let _ = writeln!(w, "{}", Word::new(wword).hex());
                }
                let mut word = Word::new(bw);
                if kind != 2 {
                    word.set(0, bw, row.map_or(0, |r| layer.q_bias[r]) as u64);
                }
                let _ = writeln!(b, "{}", word.hex());
            }
        }
        out.push(File {
            name: format!("weights_e{e}.hex"),
            text: w,
        });
        out.push(File {
            name: format!("bias_e{e}.hex"),
            text: b,
        });
    }
    out
}

pub(crate) fn registers(nwords: u32) -> Vec<Register> {
    let mut r = vec![
        Register {
            name: "ID",
            offset: 0x00,
            access: "R",
            doc: format!("0x{DEVICE_ID:08x} (\"PART\")"),
        },
        Register {
            name: "VERSION",
            offset: 0x04,
            access: "R",
            doc: "generator version: major << 16 | minor << 8 | patch".into(),
        },
        Register {
            name: "PLAN_HASH_LO",
            offset: 0x08,
            access: "R",
            doc: "plan hash, low 32 bits".into(),
        },
        Register {
            name: "PLAN_HASH_HI",
            offset: 0x0C,
            access: "R",
            doc: "plan hash, high 32 bits".into(),
        },
        Register {
            name: "CTRL",
            offset: 0x10,
            access: "W",
            doc: "bit 0 start (when idle), bit 1 soft reset (clears the datapath and error state)"
                .into(),
        },
        Register {
            name: "STATUS",
            offset: 0x14,
            access: "R",
            doc: "bit 0 busy, bit 1 done (all outputs delivered), bit 2 error (sticky)".into(),
        },
        Register {
            name: "SEQ_LEN",
            offset: 0x18,
            access: "RW",
            doc: "timesteps per sequence".into(),
        },
        Register {
            name: "SEQ_COUNT",
            offset: 0x1C,
            access: "RW",
            doc: "sequences per run, streamed back to back".into(),
        },
        Register {
            name: "CYCLES_LO",
            offset: 0x20,
            access: "R",
            doc: "clock cycles from start to the last result, low 32 bits".into(),
        },
        Register {
            name: "CYCLES_HI",
            offset: 0x24,
            access: "R",
            doc: "cycle counter, high 32 bits".into(),
        },
        Register {
            name: "SAT_COUNT",
            offset: 0x28,
            access: "R",
            doc: "saturation events (pre-activations, cell states, h values) in the last run"
                .into(),
        },
        Register {
            name: "ERR_COUNT",
            offset: 0x2C,
            access: "R",
            doc: "refused accesses: unknown address, start or weight write while busy".into(),
        },
        Register {
            name: "WSEL",
            offset: 0x30,
            access: "RW",
            doc: "run-time weight write target: bits 23:16 engine, bit 0 = 0 weights / 1 biases"
                .into(),
        },
        Register {
            name: "WADDR",
            offset: 0x34,
            access: "RW",
            doc: "run-time weight write address (word index in the engine's memory)".into(),
        },
        Register {
            name: "WCOMMIT",
            offset: 0x38,
            access: "W",
            doc: "write the staged WDATA words to WSEL/WADDR (when idle)".into(),
        },
    ];
    for j in 0..nwords {
        r.push(Register {
            name: "WDATA",
            offset: 0x40 + 4 * j,
            access: "W",
            doc: format!("staged weight word, bits {}..{}", 32 * j + 31, 32 * j),
        });
    }
    r.push(Register {
        name: "CONFIG0",
        offset: 0x80,
        access: "R",
        doc: "input_size << 16 | hidden_size".into(),
    });
    r.push(Register {
        name: "CONFIG1",
        offset: 0x84,
        access: "R",
        doc: "layers << 24 | engines << 16 | lanes << 8 | data width".into(),
    });
    r
}

fn regmap_json(design: &Design, g: &Geometry, regs: &[Register], wword: u32, bw: u32) -> String {
    let q = design.quant();
    let regs_json: Vec<serde_json::Value> = regs
        .iter()
        .map(|r| {
            serde_json::json!({"name": r.name, "offset": r.offset, "access": r.access, "doc": r.doc})
        })
        .collect();
    let v = serde_json::json!({
        "generator": format!("partita {}", crate::VERSION),
        "plan_hash": format!("{:016x}", design.plan.plan_hash),
        "top": "partita_top",
        "bus": {"control": "AXI4-Lite, 32-bit data, 12-bit byte address", "input": "AXI4-Stream, one x value per beat", "output": "AXI4-Stream, one h value per beat, tlast on the last of each timestep"},
        "geometry": {
            "input_size": g.i, "hidden_size": g.h, "layers": g.layers, "engines": g.m, "lanes": g.k,
            "weight_word_bits": wword, "weight_depth": g.wdepth, "bias_bits": bw, "bias_depth": g.bdepth,
            "index_bits": g.index_bits,
        },
        "formats": {
            "weight": q.weight.to_string(), "bias": q.bias.to_string(), "data": q.data.to_string(),
            "cell": q.cell.to_string(), "preact": q.preact.to_string(), "gate": q.gate.to_string(),
            "accumulator_bits": design.acc_bits, "rounding": q.rounding.to_string(), "overflow": q.overflow.to_string(),
        },
        "registers": regs_json,
    });
    serde_json::to_string_pretty(&v).expect("json") + "\n"
}

pub(crate) fn regs_header(design: &Design, regs: &[Register]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/* Generated by partita {} (plan hash {:016x}). AXI4-Lite register map. */",
        crate::VERSION,
        design.plan.plan_hash
    );
    let _ = writeln!(s, "#ifndef PARTITA_REGS_H\n#define PARTITA_REGS_H\n");
    let mut seen_wdata = false;
    for r in regs {
        if r.name == "WDATA" {
            if !seen_wdata {
                let _ = writeln!(
                    s,
                    "/* {} ({}) */\n#define PARTITA_WDATA(j) (0x{:03X}u + 4u * (j))",
                    r.doc, r.access, r.offset
                );
                seen_wdata = true;
            }
            continue;
        }
        let _ = writeln!(
            s,
            "/* {} ({}) */\n#define PARTITA_{} 0x{:03X}u",
            r.doc, r.access, r.name, r.offset
        );
    }
    let _ = writeln!(s, "\n#define PARTITA_ID_VALUE 0x{DEVICE_ID:08X}u\n#define PARTITA_PLAN_HASH 0x{:016X}ull\n\n#endif", design.plan.plan_hash);
    s
}

/// Render the files every device shares: requantizer, row engine and activation tables.
pub(crate) fn datapath_files(
    design: &Design,
    m: &LstmDesign,
    engine: EngineView,
) -> Result<Vec<File>, String> {
    let hdr = header(design);
    let mut files = vec![
        File {
            name: "partita_requant.v".into(),
            text: render(
                RequantView {
                    header: hdr.clone(),
                }
                .render(),
            )?,
        },
        File {
            name: "partita_engine.v".into(),
            text: render(engine.render())?,
        },
    ];
    for (name, t) in [
        ("sigmoid", &m.tables.sigmoid),
        ("tanh", &m.tables.tanh),
        ("tanh_cell", &m.tables.tanh_cell),
    ] {
        files.push(File {
            name: format!("partita_act_{name}.v"),
            text: render(act_view(design, name, t)?.render())?,
        });
    }
    Ok(files)
}

/// askama drops the template's final newline; POSIX text files (and Verilator) want it.
pub(crate) fn render(r: Result<String, askama::Error>) -> Result<String, String> {
    r.map(|t| t.trim_end().to_string() + "\n")
        .map_err(|e| format!("template error: {e}"))
}

/// Generator version as the VERSION register value: major << 16 | minor << 8 | patch.
pub(crate) fn version_word() -> u32 {
    let v = crate::VERSION
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0))
        .collect::<Vec<_>>();
    (v.first().copied().unwrap_or(0) << 16)
        | (v.get(1).copied().unwrap_or(0) << 8)
        | v.get(2).copied().unwrap_or(0)
}

/// `files.f`: the Verilog files of one device, for vendor tools. `what` names the device in
/// the header ("" for a single-device design).
pub(crate) fn file_list(design: &Design, what: &str, files: &[File]) -> File {
    let mut list = String::new();
    let _ = writeln!(
        list,
        "// partita {} file list (plan hash {:016x}){what}; top module partita_top",
        crate::VERSION,
        design.plan.plan_hash
    );
    for f in files.iter().filter(|f| f.name.ends_with(".v")) {
        let _ = writeln!(list, "{}", f.name);
    }
    File {
        name: "files.f".into(),
        text: list,
    }
}
