//! The CNN architecture on one device: a pipeline of streaming stages, one per conv2d, dense
//! and maxpool layer (ReLU is fused into the value path of the stage before it, or of the
//! input; flatten is only an order of values). Maps travel between stages one value per cycle
//! in (y, x, c) order (NHWC, as FINN streams them); a dense layer's weights are permuted to
//! that order, so flatten costs nothing.
//!
//! Every stage reads its input from a line buffer: R = K + max(S, tail + K - P) + 1 rows of
//! W·C values (this window's K, room to write the next output row's S rows, or at a frame's
//! end the rows no window reads and the next frame's first K - P, and a spare row for the read
//! pipeline's latency), written as
//! the values arrive (a circular buffer of R·W·C words, so the write address is a counter),
//! read at any (ky, kx, c) of the window of an output pixel. Zero padding is an address check,
//! never stored. A row's slot is freed when the last read of the output row that needed it
//! leaves the read stage, so the writer fills the next S rows while the K rows of this output
//! row are read, and images follow each other with no gap (row counts run across frames).
//!
//! A conv2d or dense stage is a matrix-vector unit of PE engines x K lanes (K = the plan's
//! BBS banks): engine e computes output channels e, e + PE, ... of every output pixel, one
//! CSB slice per cycle, each lane reading its weight entry (value, ky, kx, kx*C + c: the CSB
//! index decoded at generation time) and the window value it names from its own copy of the
//! line buffer (so reads never conflict). Products are summed at full width by an adder tree,
//! accumulated over the slices, the bias added at full width, rounded and saturated once into
//! the layer's output format, ReLU applied to the code. A max-pool stage reads the K² values of
//! each output value's window in turn.

use crate::design::{Design, ModelDesign};
use crate::plan::{CnnLayer, LayerFormat};
use partita_hdl::stream::Layout;

use super::bits_for;
use super::lstm::tree_levels;

/// A feature map as it streams: C values per pixel, W pixels per row, H rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Map {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Map {
    pub fn values(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// A stage's line buffer and window walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub k: usize,
    pub s: usize,
    pub p: usize,
    /// Padding rows above the first output row's window: P on a whole map; on a strip of rows
    /// (a tile) max(0, P - a·S) for first output row a, so windows read zeros only above the
    /// real image.
    pub pt: usize,
    /// Padding columns left of each output row's first window: P on a whole map; on a tile of
    /// columns max(0, P - a·S) for its first output column a (`fused` on a grid).
    pub pl: usize,
    /// Rows held: K + max(S, tail + K - P) + 1 (the tail: rows below a frame's last window).
    pub rows: usize,
    /// Words: rows * W * C, and bits of an address.
    pub depth: usize,
    pub aw: u32,
}

/// A conv2d or dense stage's matrix-vector unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mvu {
    /// Output channels (dense: features).
    pub cout: usize,
    /// Engines (PE) and lanes per engine (the BBS banks).
    pub pe: usize,
    pub lanes: usize,
    /// CSB slices per row (entries per bank) and output-channel groups (ceil(cout / pe)).
    pub nnz: usize,
    pub groups: usize,
    /// Weight entry fields: value bits, bits of ky and kx, bits of kx*C + c.
    pub ww: u32,
    pub kyw: u32,
    pub kxw: u32,
    pub xw: u32,
    pub bw: u32,
    /// Products, adder-tree levels and sum bits, accumulator bits.
    pub pw: u32,
    pub tree_levels: u32,
    pub sw: u32,
    pub accw: u32,
    /// The bias, aligned to the products' fraction bits (left shift).
    pub bias_shift: u32,
    /// Requantization into the output format: right or left shift.
    pub shr: u32,
    pub shl: u32,
    /// For each engine, lane, group and slice: the weight entry (code, ky, kx, kx*C + c).
    pub entries: Vec<Vec<Vec<Entry>>>,
    /// For each engine and group: the bias code (0 for a padded channel).
    pub bias: Vec<Vec<i64>>,
    /// Entries per engine memory: groups * nnz.
    pub words: usize,
}

/// One decoded weight entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub code: i64,
    pub ky: usize,
    pub kx: usize,
    pub kxc: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageKind {
    Mvu(Mvu),
    Pool,
}

/// One streaming stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// The plan's layer index.
    pub layer: usize,
    pub kind: StageKind,
    pub input: Map,
    pub output: Map,
    pub window: Window,
    /// Multiply-accumulates a frame needs here: every weight (dense), or every stored entry
    /// (BBS).
    pub macs: u64,
    /// Value bits in and out.
    pub dw_in: u32,
    pub dw_out: u32,
    /// ReLU on the values this stage writes out.
    pub relu_out: bool,
    /// Read ports of the line buffer (one copy each): PE * lanes, or 1 for a pool.
    pub copies: usize,
    /// Cycles per frame in steady state: the stage's reads (PE x lanes per cycle for an MVU,
    /// one per cycle for a pool), its input (one value per cycle), its output (one per cycle).
    pub cycles: u64,
}

impl Stage {
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            StageKind::Mvu(_) if self.window.k == 1 && self.input.h == 1 && self.input.w == 1 => {
                "dense"
            }
            StageKind::Mvu(_) => "conv2d",
            StageKind::Pool => "maxpool",
        }
    }

    /// Multipliers (an MVU's PE x lanes).
    pub fn multipliers(&self) -> usize {
        match &self.kind {
            StageKind::Mvu(m) => m.pe * m.lanes,
            StageKind::Pool => 0,
        }
    }

    /// Line-buffer bits, every copy.
    pub fn buffer_bits(&self) -> u64 {
        (self.copies * self.window.depth) as u64 * self.dw_in as u64
    }

    /// Weight and bias memory bits.
    pub fn weight_bits(&self) -> u64 {
        match &self.kind {
            StageKind::Mvu(m) => {
                let entry = (m.ww + m.kyw + m.kxw + m.xw) as u64;
                (m.pe * m.words * m.lanes) as u64 * entry + (m.pe * m.groups) as u64 * m.bw as u64
            }
            StageKind::Pool => 0,
        }
    }

    /// Multiply-accumulate slots a frame fills (every stored entry at every output pixel) and
    /// the slots the multipliers offer in `cycles` cycles: the stage's lane utilization.
    pub fn utilization(&self, cycles: u64) -> f64 {
        match &self.kind {
            StageKind::Mvu(m) => {
                self.macs as f64 / ((m.pe * m.lanes) as f64 * cycles.max(1) as f64)
            }
            StageKind::Pool => {
                let used = (self.output.values() * self.window.k * self.window.k) as f64;
                used / cycles.max(1) as f64
            }
        }
    }
}

/// The whole single-device CNN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CnnArch {
    pub stages: Vec<Stage>,
    /// ReLU on the input values (a ReLU before any stage).
    pub relu_in: bool,
    pub input: Map,
    /// The output as the model shapes it (a vector after flatten or dense).
    pub output: Map,
    /// The output map as it streams, in (y, x, c) order: the last stage's.
    pub out_order: Map,
    pub dw_in: u32,
    pub dw_out: u32,
    /// Stream packing of the input and output (the plan's `stream_bits`, each in its values'
    /// width).
    pub in_layout: Layout,
    pub out_layout: Layout,
    pub round_ne: bool,
    pub sat: bool,
    /// Cycles per frame in steady state: the slowest stage's.
    pub cycles_per_frame: u64,
    /// Multiply-accumulates a frame needs: every weight (dense), or every stored entry (BBS).
    pub macs: u64,
    /// What set each layer's engines.
    pub folding: String,
}

impl CnnArch {
    pub fn multipliers(&self) -> usize {
        self.stages.iter().map(Stage::multipliers).sum()
    }

    /// MACs per frame / (multipliers x cycles per frame).
    pub fn efficiency(&self, cycles_per_frame: f64) -> f64 {
        self.macs as f64 / (self.multipliers().max(1) as f64 * cycles_per_frame.max(1.0))
    }
}

fn layout(bits: u32, design: &Design) -> Layout {
    design
        .plan
        .plan
        .target
        .stream_bits
        .and_then(|b| Layout::new(bits, b as u32).ok())
        .unwrap_or_else(|| Layout::single(bits))
}

fn shifts(from: u32, to: u32) -> (u32, u32) {
    if from >= to {
        (from - to, 0)
    } else {
        (0, to - from)
    }
}

fn window(k: usize, s: usize, p: usize, input: Map) -> Window {
    let hout = (input.h + 2 * p - k) / s + 1;
    window_at(k, s, p, p, input, hout)
}

/// The line buffer of a stage whose `hout` output rows start with a window `pt` rows above
/// the input's first row.
fn window_at(k: usize, s: usize, p: usize, pt: usize, input: Map, hout: usize) -> Window {
    // K rows for this output row's window, and room to write ahead: S rows for the next output
    // row, or at a frame's end the rows below the last window that no window reads (the tail)
    // and the K - PT rows the next frame's first window needs; and one row more, so the writer
    // never waits out the few cycles between an output row's last issue and its last read
    // (when a row is freed).
    let tail = (input.h + pt).saturating_sub((hout - 1) * s + k);
    let rows = k + s.max(tail + k.saturating_sub(pt)) + 1;
    let depth = rows * input.w * input.c;
    Window {
        k,
        s,
        p,
        pt,
        pl: p,
        rows,
        depth,
        aw: bits_for(depth as u64 - 1),
    }
}

/// The input rows output rows `a..=b` of a window stage read, clamped to the `h` rows of the
/// image: `[a·S − P, b·S − P + K − 1]`. Only rows outside the image are padding.
pub fn input_rows(a: usize, b: usize, k: usize, s: usize, p: usize, h: usize) -> (usize, usize) {
    let lo = (a * s).saturating_sub(p);
    let hi = (b * s + k - 1).saturating_sub(p).min(h - 1);
    (lo, hi)
}

/// Padding rows above the window of output row `a` that a strip starting there still needs:
/// `max(0, P - a·S)` (only above the real image).
pub fn top_padding(a: usize, s: usize, p: usize) -> usize {
    p.saturating_sub(a * s)
}

impl Stage {
    /// This stage with `pe` engines (an MVU; a pool is returned as it is): the same weight
    /// entries dealt to the engines again (engine e computes output channels e, e + PE, ...).
    pub fn with_engines(&self, pe: usize) -> Stage {
        let StageKind::Mvu(m) = &self.kind else {
            return self.clone();
        };
        self.dealt(pe, 0..m.cout)
    }

    /// This stage computing only output channels `c0..c1` (`filters`: an MVU keeps those
    /// filters and their biases, a maxpool those channels of its input and output), on the same
    /// rows. An MVU keeps its engines (at most one per channel left).
    pub fn on_filters(&self, c0: usize, c1: usize) -> Stage {
        match &self.kind {
            StageKind::Mvu(m) => self.dealt(m.pe.min(c1 - c0), c0..c1),
            StageKind::Pool => {
                let input = Map {
                    c: c1 - c0,
                    ..self.input
                };
                let output = Map {
                    c: c1 - c0,
                    ..self.output
                };
                let w = self.window;
                let reads = (output.values() * w.k * w.k) as u64;
                Stage {
                    input,
                    output,
                    window: Window {
                        pl: w.pl,
                        ..window_at(w.k, w.s, w.p, w.pt, input, output.h)
                    },
                    cycles: reads.max(input.values() as u64).max(output.values() as u64),
                    ..self.clone()
                }
            }
        }
    }

    /// `channels`: this MVU on input channels `c0..c1` of a map of `cmap` channels (a conv2d's
    /// input, or the map a dense layer's input was flattened from), as partial sums: only the
    /// weight entries of those channels, their input index renumbered for the narrower stream
    /// (kx·C' + c − c0, or pixel·C' + c − c0), dealt again over the lanes (every lane reads its
    /// own line-buffer copy, so any entry may go to any lane) into the fewest slices; no bias,
    /// no rounding: the full-width sums leave at the accumulator's width, to be added to the
    /// other devices' and finished once. The engines stay (at most one per output).
    pub fn on_channels(&self, cmap: usize, c0: usize, c1: usize) -> Stage {
        let cn = c1 - c0;
        let input = if self.kind_name() == "dense" {
            Map {
                c: self.input.c / cmap * cn,
                ..self.input
            }
        } else {
            Map {
                c: cn,
                ..self.input
            }
        };
        self.on_inputs(input, &|kxc: usize| {
            let (outer, c) = (kxc / cmap, kxc % cmap);
            (c0..c1).contains(&c).then(|| outer * cn + c - c0)
        })
    }

    /// A dense layer after a flatten, on the pixels of one tile of the map it was flattened
    /// from (`map`; rows `rows` and columns `cols` of it, each first and one past the last), as
    /// partial sums: the weight entries of those pixels, renumbered for the tile's stream in
    /// its raster order, as [`Stage::on_channels`] does for a slice of the channels.
    pub fn on_pixels(&self, map: Map, rows: (usize, usize), cols: (usize, usize)) -> Stage {
        let tw = cols.1 - cols.0;
        let input = Map {
            c: (rows.1 - rows.0) * tw * map.c,
            ..self.input
        };
        self.on_inputs(input, &|kxc: usize| {
            let (pix, c) = (kxc / map.c, kxc % map.c);
            let (y, x) = (pix / map.w, pix % map.w);
            ((rows.0..rows.1).contains(&y) && (cols.0..cols.1).contains(&x))
                .then(|| ((y - rows.0) * tw + x - cols.0) * map.c + c)
        })
    }

    /// This MVU on part of its inputs (`input`, the part's stream), as partial sums:
    /// `renumber` maps an entry's input index to the part's, or drops it.
    fn on_inputs(&self, input: Map, renumber: &dyn Fn(usize) -> Option<usize>) -> Stage {
        let StageKind::Mvu(m) = &self.kind else {
            return self.clone();
        };
        // Every output's kept entries, in order.
        let kept: Vec<Vec<Entry>> = (0..m.cout)
            .map(|o| {
                let (e, g) = (o % m.pe, o / m.pe);
                let mut v = Vec::new();
                for j in 0..m.nnz {
                    for lane in 0..m.lanes {
                        let en = m.entries[e][lane][g * m.nnz + j];
                        if en.code != 0 {
                            if let Some(kxc) = renumber(en.kxc) {
                                v.push(Entry { kxc, ..en });
                            }
                        }
                    }
                }
                v
            })
            .collect();
        let nnz = kept
            .iter()
            .map(|v| v.len().div_ceil(m.lanes))
            .max()
            .unwrap_or(1)
            .max(1);
        let mut entries = vec![vec![Vec::with_capacity(m.groups * nnz); m.lanes]; m.pe];
        for (e, per_e) in entries.iter_mut().enumerate() {
            for g in 0..m.groups {
                let o = g * m.pe + e;
                for j in 0..nnz {
                    for (lane, l) in per_e.iter_mut().enumerate() {
                        let en = kept
                            .get(o)
                            .and_then(|v| v.get(j * m.lanes + lane))
                            .copied()
                            .unwrap_or_default();
                        l.push(en);
                    }
                }
            }
        }
        let w = self.window;
        let window = Window {
            pl: w.pl,
            ..window_at(w.k, w.s, w.p, w.pt, input, self.output.h)
        };
        let issue = (self.output.h * self.output.w * m.groups * nnz) as u64;
        Stage {
            kind: StageKind::Mvu(Mvu {
                nnz,
                entries,
                bias: vec![vec![0; m.groups]; m.pe],
                words: m.groups * nnz,
                shr: 0,
                shl: 0,
                ..m.clone()
            }),
            input,
            window,
            macs: self.macs * input.values() as u64 / self.input.values().max(1) as u64,
            dw_out: m.accw,
            relu_out: false,
            cycles: issue
                .max(input.values() as u64)
                .max(self.output.values() as u64),
            ..self.clone()
        }
    }

    /// An MVU computing output channels `outs` (renumbered from 0) with `pe` engines: each
    /// channel's weight entries and bias dealt to engine `o % PE`, group `o / PE`.
    fn dealt(&self, pe: usize, outs: std::ops::Range<usize>) -> Stage {
        let StageKind::Mvu(m) = &self.kind else {
            return self.clone();
        };
        let cout = outs.len();
        let pe = pe.clamp(1, cout);
        let groups = cout.div_ceil(pe);
        let entry = |o: usize, lane: usize, j: usize| -> Entry {
            m.entries[o % m.pe][lane][(o / m.pe) * m.nnz + j]
        };
        let mut entries = vec![vec![Vec::with_capacity(groups * m.nnz); m.lanes]; pe];
        let mut bias = vec![vec![0i64; groups]; pe];
        for (e, per_e) in entries.iter_mut().enumerate() {
            for g in 0..groups {
                let o = g * pe + e;
                let src = outs.start + o;
                if o < cout {
                    bias[e][g] = m.bias[src % m.pe][src / m.pe];
                }
                for j in 0..m.nnz {
                    for (lane, l) in per_e.iter_mut().enumerate() {
                        l.push(if o < cout {
                            entry(src, lane, j)
                        } else {
                            Entry::default()
                        });
                    }
                }
            }
        }
        let output = Map {
            c: cout,
            ..self.output
        };
        let issue = (output.h * output.w * groups * m.nnz) as u64;
        Stage {
            kind: StageKind::Mvu(Mvu {
                cout,
                pe,
                groups,
                entries,
                bias,
                words: groups * m.nnz,
                ..m.clone()
            }),
            output,
            macs: self.macs * cout as u64 / m.cout as u64,
            copies: pe * m.lanes,
            cycles: issue
                .max(self.input.values() as u64)
                .max(output.values() as u64),
            ..self.clone()
        }
    }

    /// The fewest cycles per frame the stage's streams allow: one value in and one out per
    /// cycle, one window read per cycle for a pool.
    pub fn stream_floor(&self) -> u64 {
        let reads = match &self.kind {
            StageKind::Pool => (self.output.values() * self.window.k * self.window.k) as u64,
            StageKind::Mvu(_) => 0,
        };
        reads
            .max(self.input.values() as u64)
            .max(self.output.values() as u64)
    }

    /// The fewest engines that keep this stage within `t` cycles per frame (1 for a pool).
    pub fn engines_for(&self, t: u64) -> usize {
        let StageKind::Mvu(m) = &self.kind else {
            return 1;
        };
        let per = (self.output.h * self.output.w * m.nnz) as u64;
        let groups = (t / per.max(1)).max(1) as usize;
        m.cout.div_ceil(groups.min(m.cout)).min(m.cout)
    }

    /// This stage computing only output rows `a..=b` (a conv2d or maxpool; every column and
    /// channel), reading input rows `r0..=r1` (see [`input_rows`]) as its whole input: the
    /// stage of a tile.
    pub fn on_rows(&self, a: usize, b: usize) -> Stage {
        self.cut((a, b), (0, self.output.w - 1), true)
    }

    /// This stage computing only output rows `rows.0..=rows.1` and columns `cols.0..=cols.1`
    /// (a conv2d or maxpool; every channel), reading the input rows and columns they need (see
    /// [`input_rows`], the same formula across) as its whole input: the stage of a tile of a
    /// grid. Only the real image's borders are padded.
    pub fn on_tile(&self, rows: (usize, usize), cols: (usize, usize)) -> Stage {
        self.cut(rows, cols, false)
    }

    /// [`Stage::on_tile`]; with `whole_rows`, reading every input column (a strip of whole
    /// rows: a `tiles` device takes whole rows from the host and its neighbours, columns no
    /// window reads included, and its stages pass whole rows on).
    fn cut(&self, rows: (usize, usize), cols: (usize, usize), whole_rows: bool) -> Stage {
        let w = self.window;
        let (r0, r1) = input_rows(rows.0, rows.1, w.k, w.s, w.p, self.input.h);
        let (c0, c1) = if whole_rows {
            (0, self.input.w - 1)
        } else {
            input_rows(cols.0, cols.1, w.k, w.s, w.p, self.input.w)
        };
        let input = Map {
            h: r1 - r0 + 1,
            w: c1 - c0 + 1,
            ..self.input
        };
        let output = Map {
            h: rows.1 - rows.0 + 1,
            w: cols.1 - cols.0 + 1,
            ..self.output
        };
        let pt = top_padding(rows.0, w.s, w.p);
        let window = Window {
            pl: top_padding(cols.0, w.s, w.p),
            ..window_at(w.k, w.s, w.p, pt, input, output.h)
        };
        let macs = (self.macs as u128 * (output.h * output.w) as u128
            / (self.output.h * self.output.w) as u128) as u64;
        let reads = match &self.kind {
            StageKind::Mvu(m) => (output.h * output.w * m.groups * m.nnz) as u64,
            StageKind::Pool => (output.values() * w.k * w.k) as u64,
        };
        Stage {
            input,
            output,
            window,
            macs,
            cycles: reads.max(input.values() as u64).max(output.values() as u64),
            ..self.clone()
        }
    }
}

impl CnnArch {
    /// The architecture of a single-device CNN design, or why the hardware cannot build it.
    pub fn new(design: &Design) -> Result<CnnArch, String> {
        if design.plan.devices != 1 {
            return Err(format!(
                "this plan has {} devices; its CNN hardware is a multi-device system (arch::cnn::CnnSystem)",
                design.plan.devices
            ));
        }
        CnnArch::whole(design)
    }

    /// The whole network's stages as one device would run them, whatever the plan's device
    /// count: the single-device architecture, and what a multi-device system splits.
    pub fn whole(design: &Design) -> Result<CnnArch, String> {
        let ModelDesign::Cnn(m) = &design.model else {
            return Err("not a CNN design".into());
        };
        let q = design.quant();
        let dense_weights = design.plan.keep == crate::plan::Keep::All;
        let folding = &m.fold.engines;
        let why = m.fold.why.clone();
        let input = Map {
            c: m.input_shape[0],
            h: m.input_shape[1],
            w: m.input_shape[2],
        };
        let mut stages: Vec<Stage> = Vec::new();
        let mut relu_in = false;
        let mut cur = input;
        let mut fmt_cur = q.data;
        // The map before a flatten, for the dense layer's permutation.
        let mut flat_from: Option<Map> = None;
        let mut macs = 0u64;
        for (l, layer) in m.layers.iter().enumerate() {
            let f: LayerFormat = m.formats[l];
            let out_shape = m.shapes[l];
            match layer {
                CnnLayer::Relu => match stages.last_mut() {
                    Some(st) => st.relu_out = true,
                    None => relu_in = true,
                },
                CnnLayer::Flatten => {
                    flat_from = Some(cur);
                    cur = Map {
                        c: cur.values(),
                        h: 1,
                        w: 1,
                    };
                }
                CnnLayer::Maxpool { kernel, stride } => {
                    let win = window(*kernel, *stride, 0, cur);
                    let output = Map {
                        c: out_shape[0],
                        h: out_shape[1],
                        w: out_shape[2],
                    };
                    let reads = (output.values() * kernel * kernel) as u64;
                    let dw = fmt_cur.width();
                    stages.push(Stage {
                        layer: l,
                        kind: StageKind::Pool,
                        input: cur,
                        output,
                        window: win,
                        macs: 0,
                        dw_in: dw,
                        dw_out: dw,
                        relu_out: false,
                        copies: 1,
                        cycles: reads.max(cur.values() as u64).max(output.values() as u64),
                    });
                    cur = output;
                }
                CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. } => {
                    let w = m.weights[l]
                        .as_ref()
                        .ok_or("a weight layer without weights")?;
                    let (k, s, p, output) = match layer {
                        CnnLayer::Conv2d {
                            kernel,
                            stride,
                            padding,
                            ..
                        } => (
                            *kernel,
                            *stride,
                            *padding,
                            Map {
                                c: out_shape[0],
                                h: out_shape[1],
                                w: out_shape[2],
                            },
                        ),
                        _ => (
                            1,
                            1,
                            0,
                            Map {
                                c: out_shape[0],
                                h: 1,
                                w: 1,
                            },
                        ),
                    };
                    let dense = matches!(layer, CnnLayer::Dense { .. });
                    if dense && (cur.h != 1 || cur.w != 1) {
                        return Err(format!("layer {l}: dense after an unflattened map"));
                    }
                    let csb = &w.q_csb;
                    let lanes = csb.shape.banks;
                    let bank = csb.shape.bank_size;
                    let nnz = csb.shape.nnz_per_bank;
                    let cout = output.c;
                    let pe = folding[l].clamp(1, cout);
                    let groups = cout.div_ceil(pe);
                    let cols = csb.shape.cols;
                    // Torch column -> (ky, kx, kx*C + c) in the stream's order.
                    let decode = |col: usize| -> (usize, usize, usize) {
                        if dense {
                            let a = match flat_from {
                                Some(mp) => {
                                    let hw = mp.h * mp.w;
                                    let (c, rest) = (col / hw, col % hw);
                                    let (y, x) = (rest / mp.w, rest % mp.w);
                                    (y * mp.w + x) * mp.c + c
                                }
                                None => col,
                            };
                            (0, 0, a)
                        } else {
                            let c = col / (k * k);
                            let ky = (col / k) % k;
                            let kx = col % k;
                            (ky, kx, kx * cur.c + c)
                        }
                    };
                    let mut entries = vec![vec![Vec::with_capacity(groups * nnz); lanes]; pe];
                    let mut bias = vec![vec![0i64; groups]; pe];
                    for (e, per_e) in entries.iter_mut().enumerate() {
                        for g in 0..groups {
                            let o = g * pe + e;
                            if o < cout {
                                bias[e][g] = w.q_bias[o];
                            }
                            for j in 0..nnz {
                                for (b, lane) in per_e.iter_mut().enumerate() {
                                    let en = if o < cout {
                                        let (code, idx) = csb.entry(o, j, b);
                                        let col = b * bank + idx;
                                        if col < cols {
                                            let (ky, kx, kxc) = decode(col);
                                            Entry { code, ky, kx, kxc }
                                        } else {
                                            Entry::default()
                                        }
                                    } else {
                                        Entry::default()
                                    };
                                    lane.push(en);
                                }
                            }
                        }
                    }
                    let win = window(k, s, p, cur);
                    let (ww, dw_in, bw) = (f.weight.width(), f.input.width(), f.bias.width());
                    let pw = ww + dw_in;
                    let tl = tree_levels(lanes);
                    let sw = pw + tl;
                    let prod_frac = f.prod_frac();
                    let (shr, shl) = shifts(prod_frac, f.output.frac_bits);
                    let issue = (output.h * output.w * groups * nnz) as u64;
                    // Work a frame needs: every weight (dense), or every stored entry (BBS).
                    let per_out = if dense_weights { cols } else { nnz * lanes };
                    let stage_macs = (output.h * output.w * cout * per_out) as u64;
                    macs += stage_macs;
                    stages.push(Stage {
                        layer: l,
                        kind: StageKind::Mvu(Mvu {
                            cout,
                            pe,
                            lanes,
                            nnz,
                            groups,
                            ww,
                            kyw: bits_for(k as u64 - 1),
                            kxw: bits_for(k as u64 - 1),
                            xw: bits_for((k * cur.c).max(cur.w * cur.c) as u64),
                            bw,
                            pw,
                            tree_levels: tl,
                            sw,
                            accw: f.acc_bits.max(sw + 1),
                            bias_shift: prod_frac - f.bias.frac_bits,
                            shr,
                            shl,
                            entries,
                            bias,
                            words: groups * nnz,
                        }),
                        input: cur,
                        output,
                        window: win,
                        macs: stage_macs,
                        dw_in,
                        dw_out: f.output.width(),
                        relu_out: false,
                        copies: pe * lanes,
                        cycles: issue.max(cur.values() as u64).max(output.values() as u64),
                    });
                    cur = output;
                    // Only the first dense layer after a flatten reads a map's order.
                    flat_from = None;
                }
            }
            fmt_cur = f.output;
        }
        if stages.is_empty() {
            return Err(
                "the network has no conv2d, dense or maxpool layer: there is no hardware to build"
                    .into(),
            );
        }
        let dw_in = q.data.width();
        let dw_out = fmt_cur.width();
        // The output streams in the last stage's (y, x, c) order, even after a flatten.
        let out_order = stages.last().map_or(cur, |s| s.output);
        let cycles_per_frame = stages.iter().map(|s| s.cycles).max().unwrap_or(1);
        Ok(CnnArch {
            relu_in,
            input,
            output: cur,
            out_order,
            dw_in,
            dw_out,
            in_layout: layout(dw_in, design),
            out_layout: layout(dw_out, design),
            round_ne: q.rounding == crate::fixed::Rounding::NearestEven,
            sat: q.overflow == crate::fixed::Overflow::Saturate,
            cycles_per_frame,
            macs,
            stages,
            folding: why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A window layer (sum of products; a max-pool is the same walk) on a map of rows `inp`:
    /// output rows `rows` and `wout` columns, output pixel (o, x)'s window starting `top` rows
    /// above row `o·S` and `left` columns left of column `x·S` of `inp` (so `top` = `left` = P
    /// on a whole map), zero outside `inp`.
    fn conv(
        inp: &[Vec<i64>],
        wt: &[Vec<i64>],
        s: usize,
        left: usize,
        top: usize,
        rows: std::ops::Range<usize>,
        wout: usize,
    ) -> Vec<Vec<i64>> {
        let h = inp.len() as i64;
        let w = inp[0].len() as i64;
        rows.map(|o| {
            (0..wout)
                .map(|x| {
                    let mut acc = 0;
                    for (ky, wr) in wt.iter().enumerate() {
                        for (kx, wv) in wr.iter().enumerate() {
                            let iy = (o * s + ky) as i64 - top as i64;
                            let ix = (x * s + kx) as i64 - left as i64;
                            if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                acc += wv * inp[iy as usize][ix as usize];
                            }
                        }
                    }
                    acc
                })
                .collect()
        })
        .collect()
    }

    proptest! {
        /// Any split of a window layer's output rows into strips, and its columns into tile
        /// columns: each tile, computed from only the input rows and columns `input_rows`
        /// names (with `top_padding` rows and columns of zeros above and left of it, none
        /// below or right), equals that tile of the layer on the whole map. Valid
        /// convolutions, padding up to K - 1, strides, kernels wider than strides (overlapping
        /// pools) and narrower (gapped) are all drawn; DeepThings' p = floor(k/2), pool k = s
        /// shortcut would fail most of them.
        #[test]
        fn tiles_from_their_halo_regions_equal_the_whole_map(
            (h, w, k, s, p) in (1usize..24, 1usize..16, 1usize..6, 1usize..4, 0usize..4)
                .prop_filter("a window fits", |(h, w, k, _, p)| h + 2 * p >= *k && w + 2 * p >= *k && *p < *k),
            cuts in prop::collection::vec(0usize..1000, 0..6),
            col_cuts in prop::collection::vec(0usize..1000, 0..3),
            seed in any::<u64>(),
        ) {
            let mut r = crate::weights::SplitMix64::new(seed);
            let inp: Vec<Vec<i64>> = (0..h).map(|_| (0..w).map(|_| (r.next_u64() % 19) as i64 - 9).collect()).collect();
            let wt: Vec<Vec<i64>> = (0..k).map(|_| (0..k).map(|_| (r.next_u64() % 7) as i64 - 3).collect()).collect();
            let hout = (h + 2 * p - k) / s + 1;
            let wout = (w + 2 * p - k) / s + 1;
            let full = conv(&inp, &wt, s, p, p, 0..hout, wout);
            let strips = |cuts: &[usize], n: usize| -> Vec<(usize, usize)> {
                let mut bounds: Vec<usize> = cuts.iter().map(|c| c % n).filter(|c| *c > 0).collect();
                bounds.push(0);
                bounds.push(n);
                bounds.sort_unstable();
                bounds.dedup();
                bounds.windows(2).map(|v| (v[0], v[1] - 1)).collect()
            };
            for (a, b) in strips(&cuts, hout) {
                for (ca, cb) in strips(&col_cuts, wout) {
                    let (lo, hi) = input_rows(a, b, k, s, p, h);
                    let (clo, chi) = input_rows(ca, cb, k, s, p, w);
                    prop_assert!(lo <= hi && hi < h && clo <= chi && chi < w);
                    let region: Vec<Vec<i64>> = inp[lo..=hi].iter().map(|row| row[clo..=chi].to_vec()).collect();
                    let (top, left) = (top_padding(a, s, p), top_padding(ca, s, p));
                    // The tile's first window starts `top` rows above the region and `left`
                    // columns left of it, exactly.
                    prop_assert_eq!((a * s) as i64 - p as i64, lo as i64 - top as i64);
                    prop_assert_eq!((ca * s) as i64 - p as i64, clo as i64 - left as i64);
                    let tile = conv(&region, &wt, s, left, top, 0..b - a + 1, cb - ca + 1);
                    let want: Vec<Vec<i64>> = full[a..=b].iter().map(|row| row[ca..=cb].to_vec()).collect();
                    prop_assert_eq!(&tile, &want, "rows {}..={} cols {}..={} from input rows {}..={} cols {}..={}", a, b, ca, cb, lo, hi, clo, chi);
                    // And the region is the least that works: its last row and column are
                    // read (or are the image's last, read by the tile's last window).
                    let last_read = (b * s + k - 1) as i64 - p as i64;
                    prop_assert!(hi as i64 <= last_read.max(0));
                    let last_col = (cb * s + k - 1) as i64 - p as i64;
                    prop_assert!(chi as i64 <= last_col.max(0));
                }
            }
        }
    }
}
