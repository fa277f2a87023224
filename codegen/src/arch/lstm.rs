//! The LSTM hardware's architecture: the BBS row engine's widths, the vector-memory layout, the
//! engine mapping of a single device, and every width of a multi-device node, each computed
//! once here. The emitters, the memory images, the cost and traffic models and the cosimulation
//! read these types; templates get named fields and do no arithmetic.
//!
//! Example: 64 -> 256, K = 8 banks, s1.14 weights, s3.12 data, 75% BBS. Before: formats and a
//! bank count. After: 6-bit in-bank indices, 8 lanes of 21-bit entries (a 168-bit weight word),
//! 32-bit products, a 3-level adder tree (35-bit sums), and the accumulator width.

use partita_hdl::frame;

use super::bits_for;
use crate::design::{Design, LstmDesign, ModelDesign};
use crate::fixed::{Overflow, Rounding};
use crate::passes::schedule::{self, Node, NodeLayer, Schedule};
use crate::plan::{ew_lane_counts, Strategy};

/// Pipeline latencies (advancing cycles) of the datapath blocks, each stage one logic step
/// (one multiplier, one adder or one memory read), so the critical path is one of them.
/// Activation unit: clamp, table read, multiply, add, rounding and saturation.
pub const ACT_LATENCY: u32 = 5;
/// Element-wise unit, from a unit's four pre-activations to its h: cell read; the four
/// activations; f·c and i·g; their sum; rounding at full width, then saturation to the cell
/// format; tanh(c'); o·tanh(c'); rounding at full width, then saturation to the data format.
pub const EW_LATENCY: u32 = 1 + ACT_LATENCY + 4 + ACT_LATENCY + 3;
/// Row engine stages before the adder tree: stage A registered twice (each weight chunk's
/// address through a register copy per chunk, then one per column group), the weight read,
/// each block RAM's output in a fabric register of its own, the chunks ORed, vector address,
/// its copy beside the lane's vector memory, vector read, operand registers, the operands'
/// copies beside the multiplier, product (see [`Memories::chunked`]). Vector memories in block
/// RAM add a stage: [`Memories::engine_front`].
pub const ENGINE_FRONT: u32 = 11;

/// The width of an `iw`-bit value rounded by `shr` bits or shifted left by `shl`, before any
/// saturation: `partita_requant`'s internal width (a right shift keeps one bit for the rounding
/// carry).
pub fn rounded_w(iw: u32, shr: u32, shl: u32) -> u32 {
    if shr > 0 {
        iw - shr + 1
    } else {
        iw + shl
    }
}

/// Levels of the engine's registered adder tree over `k` lanes: ceil(log2 k), at least one.
pub fn tree_levels(k: usize) -> u32 {
    if k <= 1 {
        1
    } else {
        bits_for(k as u64 - 1)
    }
}

/// Shift amounts to move from `from_frac` to `to_frac` fraction bits: (right, left).
fn shifts(from_frac: u32, to_frac: u32) -> (u32, u32) {
    if from_frac >= to_frac {
        (from_frac - to_frac, 0)
    } else {
        (0, to_frac - from_frac)
    }
}

/// Widths and shifts of the element-wise unit: c' = f·c + i·g into the cell format, and
/// h' = o·tanh(c') into the data format, each product aligned exactly and rounded once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EwWidths {
    pub dw: u32,
    pub pre_w: u32,
    pub cell_w: u32,
    pub gw: u32,
    /// f·c and i·g products.
    pub fc_w: u32,
    pub ig_w: u32,
    /// Their zero-bit alignment shifts and the sign extension to the sum's width.
    pub fc_shift: u32,
    pub ig_shift: u32,
    pub fc_ext: u32,
    pub ig_ext: u32,
    /// The sum f·c + i·g.
    pub csum_w: u32,
    pub cell_shr: u32,
    pub cell_shl: u32,
    /// The sum rounded to the cell format's fraction, before saturation.
    pub cell_rw: u32,
    /// o·tanh(c').
    pub oh_w: u32,
    pub h_shr: u32,
    pub h_shl: u32,
    /// o·tanh(c') rounded to the data format's fraction, before saturation.
    pub h_rw: u32,
}

/// The datapath every device of a design shares: the formats' widths, the BBS engine's lane
/// entries, products, adder tree and accumulator, and the streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datapath {
    /// Lanes per engine (banks).
    pub k: usize,
    pub dw: u32,
    pub ww: u32,
    pub bw: u32,
    pub pre_w: u32,
    pub gw: u32,
    pub cell_w: u32,
    /// In-bank index bits of a CSB entry (the widest layer's).
    pub iw: u32,
    /// One lane's entry {value, index} and the weight word of all lanes.
    pub entry_w: u32,
    pub wword: u32,
    /// A lane's product, the adder tree's levels and its output width.
    pub pw: u32,
    pub tree_levels: u32,
    pub sw: u32,
    /// The full-width accumulator.
    pub accw: u32,
    /// Zero bits that align the bias to the products' fraction.
    pub bias_shift: u32,
    /// From the products' fraction to the pre-activation format.
    pub pre_shr: u32,
    pub pre_shl: u32,
    pub round_ne: bool,
    pub sat: bool,
    /// Bits to address a lane.
    pub lane_w: u32,
    /// The x and h streams' packing (`partita_hdl::stream`): slot bits, values per beat.
    pub stream: partita_hdl::stream::Layout,
    /// 32-bit WDATA words that stage a weight or bias word, and their width.
    pub nwords: u32,
    pub wstage_w: u32,
    pub ew: EwWidths,
}

/// How the plan packs x and h into AXI4-Stream beats (`[target] stream_bits`; validation
/// checked it against the data width; default one value per beat).
pub fn stream_layout(design: &Design) -> partita_hdl::stream::Layout {
    let dw = design.quant().data.width();
    design
        .plan
        .plan
        .target
        .stream_bits
        .and_then(|b| partita_hdl::stream::Layout::new(dw, b as u32).ok())
        .unwrap_or_else(|| partita_hdl::stream::Layout::single(dw))
}

/// The parameters of the stream cores (`partita_unpack` on x, `partita_pack` on h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamGeom {
    /// tdata and tkeep bits.
    pub sb: u32,
    pub kw: u32,
    /// Slot bits and values per beat.
    pub vb: u32,
    pub p: u32,
    /// Bits of a slot index.
    pub jw: u32,
    /// Values of an x vector, and bits of a value and a beat count within it.
    pub in_vec: usize,
    pub in_cw: u32,
    pub in_bw: u32,
}

impl Datapath {
    /// Width of an `iw`-bit sum rounded into the pre-activation fraction but not yet
    /// saturated (`partita_requant`'s shifted width): rounding and saturation then take a
    /// cycle each.
    pub fn round_w(&self, iw: u32) -> u32 {
        rounded_w(iw, self.pre_shr, self.pre_shl)
    }

    /// The stream cores' parameters for x vectors of `input_size` values.
    pub fn stream_geom(&self, input_size: usize) -> StreamGeom {
        let l = self.stream;
        StreamGeom {
            sb: l.beat_bits,
            kw: l.keep_bits(),
            vb: l.slot_bits,
            p: l.per_beat,
            jw: bits_for(l.per_beat as u64 - 1),
            in_vec: input_size,
            in_cw: bits_for(input_size as u64 - 1),
            in_bw: bits_for(l.beats(input_size) as u64 - 1),
        }
    }

    pub fn new(design: &Design, index_bits: u32) -> Datapath {
        let q = design.quant();
        let k = design.plan.banks;
        let (dw, ww, bw) = (q.data.width(), q.weight.width(), q.bias.width());
        let (pre_w, gw, cell_w) = (q.preact.width(), q.gate.width(), q.cell.width());
        let iw = index_bits;
        let entry_w = ww + iw;
        let wword = k as u32 * entry_w;
        let pw = ww + dw;
        let tl = tree_levels(k);
        let sw = pw + tl;
        let accw = design.acc_bits.max(sw + 1);
        let prod_frac = q.weight.frac_bits + q.data.frac_bits;
        let (pre_shr, pre_shl) = shifts(prod_frac, q.preact.frac_bits);
        let fc_w = gw + cell_w;
        let ig_w = 2 * gw;
        let fc_frac = q.gate.frac_bits + q.cell.frac_bits;
        let ig_frac = 2 * q.gate.frac_bits;
        let c_frac = fc_frac.max(ig_frac);
        let (fc_shift, ig_shift) = (c_frac - fc_frac, c_frac - ig_frac);
        let csum_w = (fc_w + fc_shift).max(ig_w + ig_shift) + 1;
        let (cell_shr, cell_shl) = shifts(c_frac, q.cell.frac_bits);
        let (h_shr, h_shl) = shifts(ig_frac, q.data.frac_bits);
        let nwords = wword.div_ceil(32).max(bw.div_ceil(32));
        let stream = stream_layout(design);
        Datapath {
            k,
            dw,
            ww,
            bw,
            pre_w,
            gw,
            cell_w,
            iw,
            entry_w,
            wword,
            pw,
            tree_levels: tl,
            sw,
            accw,
            bias_shift: prod_frac - q.bias.frac_bits,
            pre_shr,
            pre_shl,
            round_ne: q.rounding == Rounding::NearestEven,
            sat: q.overflow == Overflow::Saturate,
            lane_w: bits_for(k as u64 - 1),
            stream,
            nwords,
            wstage_w: nwords * 32,
            ew: EwWidths {
                dw,
                pre_w,
                cell_w,
                gw,
                fc_w,
                ig_w,
                fc_shift,
                ig_shift,
                fc_ext: csum_w - fc_w - fc_shift,
                ig_ext: csum_w - ig_w - ig_shift,
                csum_w,
                cell_shr,
                cell_shl,
                cell_rw: rounded_w(csum_w, cell_shr, cell_shl),
                oh_w: 2 * gw,
                h_shr,
                h_shl,
                h_rw: rounded_w(2 * gw, h_shr, h_shl),
            },
        }
    }
}

/// Depths and address widths of one engine's memories: weights (CSB slices in issue order),
/// biases (one per row), and each lane's vector memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memories {
    pub wdepth: usize,
    pub bdepth: usize,
    pub vdepth: usize,
    pub waw: u32,
    pub baw: u32,
    pub vaw: u32,
    /// Values per vector-memory word (a power of two): 1 on a single device; on a node, the
    /// values one write stores (a received link beat's run), value a at word a / vq, slot
    /// a mod vq. Engines still read one value per lane and cycle.
    pub vq: usize,
    pub vqw: u32,
    /// Weight rows: with `chunks` > 1, word w sits at row w mod `wrows`,
    /// chunk w / `wrows`, the chunks side by side in one memory row, so every block RAM's
    /// output goes straight into a fabric register and the chunk is picked a stage later
    /// (no block-RAM cascade multiplexer in the read cycle). 1 chunk: row = word.
    pub wrows: usize,
    pub wchunks: usize,
    /// Row-address width (the low bits of a weight address).
    pub wraw: u32,
    /// Each lane's vector memory in block RAM (read through the RAM's own address register
    /// into two fabric registers, one engine stage more), not LUT RAM. See [`VBLOCK_MAX_LANES`].
    pub vblock: bool,
}

/// Lane memories (engines x built lanes) up to which a node keeps its vector memories in
/// block RAM: 2 block RAMs each on ECP5 (a 64-bit word in two 36-bit PDPW16KD), at most 4
/// at 18 bits per RAM, so at most 64.
/// A lane memory is a few dozen words; in LUT RAM each is about 50 cells whose write
/// strobes and addresses fan out over several rows, and on the 4-device demo node (8 lanes)
/// place-and-route on ECP5 found those nets among its longest. Beyond this count (60
/// engines x 16 lanes in the 1024-unit example) block RAM would not suffice, and LUT RAM
/// stays.
pub const VBLOCK_MAX_LANES: usize = 16;

/// Weight rows per chunk: the depth one block RAM gives at 18 bits (ECP5 DP16KD 1024 x 18,
/// Xilinx RAMB18 1024 x 18), the shape synthesis picks for these wide memories.
pub const WEIGHT_CHUNK_ROWS: usize = 1024;
/// Bits of a weight chunk's column group: one block RAM's width at the chunk's depth (18 bits
/// at 1 024 rows, 36 at 512 or fewer; ECP5 DP16KD and Xilinx RAMB18 alike). Each group gets
/// register copies of its own addresses, data and strobes, so each of those nets reaches one
/// block RAM.
pub fn weight_group_bits(rows: usize) -> u32 {
    if rows > 512 {
        18
    } else {
        36
    }
}

impl Memories {
    pub fn new(wdepth: usize, bdepth: usize, vdepth: usize) -> Memories {
        Memories {
            wdepth,
            bdepth,
            vdepth,
            waw: bits_for(wdepth as u64 - 1),
            baw: bits_for(bdepth as u64 - 1),
            vaw: bits_for(vdepth as u64 - 1),
            vq: 1,
            vqw: 0,
            wrows: wdepth,
            wchunks: 1,
            wraw: bits_for(wdepth as u64 - 1),
            vblock: false,
        }
    }

    /// The same memories with the weights in chunks of [`WEIGHT_CHUNK_ROWS`] rows side by side
    /// (one chunk when they fit in one).
    pub fn chunked(self) -> Memories {
        if self.wdepth <= WEIGHT_CHUNK_ROWS {
            return self;
        }
        Memories {
            wrows: WEIGHT_CHUNK_ROWS,
            wchunks: self.wdepth.div_ceil(WEIGHT_CHUNK_ROWS),
            wraw: WEIGHT_CHUNK_ROWS.trailing_zeros(),
            ..self
        }
    }

    /// The same memories with vector words of `q` values (a power of two that divides the
    /// vector depth, at most half of it).
    pub fn words(self, q: usize) -> Memories {
        debug_assert!(q.is_power_of_two() && self.vdepth.is_multiple_of(q) && self.vdepth >= 2 * q);
        Memories {
            vq: q,
            vqw: q.trailing_zeros(),
            ..self
        }
    }

    /// The same memories with each lane's vector memory in block RAM where a node builds at
    /// most [`VBLOCK_MAX_LANES`] lane memories (`lanes`, over all its engines) of words of
    /// several values.
    pub fn vector_block(self, lanes: usize) -> Memories {
        Memories {
            vblock: self.vq > 1 && lanes <= VBLOCK_MAX_LANES,
            ..self
        }
    }

    /// Vector-memory words per lane.
    pub fn vwords(&self) -> usize {
        self.vdepth / self.vq
    }

    /// Row engine stages before the adder tree: [`ENGINE_FRONT`], and with the vector memories
    /// in block RAM one more (the block RAM's output into a register of its own, then the
    /// word register the slot is picked from).
    pub fn engine_front(&self) -> u32 {
        ENGINE_FRONT + u32::from(self.vblock)
    }
}

/// Where x and h live in every lane's vector memory. Lane j holds bank j: x values
/// `j·bx0 ..` (x buffer `b` at `b·bx0`) and, per layer l, two h buffers of `bh` values (the
/// one written this step and the one read), after the x buffers. So an h value of unit u has
/// the same home (lane u / bh, index u mod bh) on every device. On a node every region starts
/// on a whole memory word (`align` values), so a link beat of h values that starts a bank
/// lands in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VectorLayout {
    /// x values per bank (layer 0) and h values per bank.
    pub bx0: usize,
    pub bh: usize,
    /// 2: x is double-buffered (by tick parity on a node; on a single device the next
    /// timestep's vector loads while this one computes).
    pub x_buffers: usize,
    pub layers: usize,
    /// Regions start on multiples of this (1: packed).
    pub align: usize,
}

impl VectorLayout {
    fn xregion(&self) -> usize {
        self.bx0.next_multiple_of(self.align)
    }

    fn hregion(&self) -> usize {
        self.bh.next_multiple_of(self.align)
    }

    pub fn xbase(&self, buf: usize) -> usize {
        buf * self.xregion()
    }

    /// Base of h buffer `buf` of layer `l`.
    pub fn hbase(&self, l: usize, buf: usize) -> usize {
        self.x_buffers * self.xregion() + (2 * l + buf) * self.hregion()
    }

    /// Values per lane: at least two words when aligned.
    pub fn depth(&self) -> usize {
        let d = self.x_buffers * self.xregion() + 2 * self.layers * self.hregion();
        if self.align > 1 {
            d.max(2 * self.align)
        } else {
            d
        }
    }

    /// Lane and index of unit `u`'s h value.
    pub fn home(&self, u: usize) -> (usize, usize) {
        (u / self.bh, u % self.bh)
    }
}

/// The model's shape as the hardware sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LstmArch {
    pub input_size: usize,
    pub hidden: usize,
    pub layers: usize,
    /// CSB slices per row, per layer: (x slices, h slices).
    pub slices: Vec<(usize, usize)>,
    /// x values per bank (layer 0) and h values per bank.
    pub bx0: usize,
    pub bh: usize,
    pub dp: Datapath,
}

impl LstmArch {
    pub fn new(design: &Design) -> Result<LstmArch, String> {
        let m = lstm(design)?;
        let index_bits = m
            .layers
            .iter()
            .flat_map(|l| [l.q_ih.shape.index_bits(), l.q_hh.shape.index_bits()])
            .max()
            .unwrap_or(1);
        Ok(LstmArch {
            input_size: m.input_size,
            hidden: m.hidden_size,
            layers: m.layers.len(),
            slices: m
                .layers
                .iter()
                .map(|l| (l.q_ih.shape.nnz_per_bank, l.q_hh.shape.nnz_per_bank))
                .collect(),
            bx0: m.layers[0].q_ih.shape.bank_size,
            bh: m.layers[0].q_hh.shape.bank_size,
            dp: Datapath::new(design, index_bits),
        })
    }

    pub fn layout(&self, x_buffers: usize) -> VectorLayout {
        self.layout_aligned(x_buffers, 1)
    }

    /// The layout with every region on a multiple of `align` values.
    pub fn layout_aligned(&self, x_buffers: usize, align: usize) -> VectorLayout {
        VectorLayout {
            bx0: self.bx0,
            bh: self.bh,
            x_buffers,
            layers: self.layers,
            align,
        }
    }
}

/// The LSTM of a design (an error for CNN designs, whose hardware is not built yet).
pub fn lstm(design: &Design) -> Result<&LstmDesign, String> {
    match &design.model {
        ModelDesign::Lstm(m) => Ok(m),
        ModelDesign::Cnn(_) => {
            Err("CNN hardware is not built yet; `partita gen` handles LSTM plans".into())
        }
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

/// A single-device design: M engines in lockstep, their mapping, memories and the top's widths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleDevice {
    pub arch: LstmArch,
    pub mapping: Mapping,
    /// Engines.
    pub m: usize,
    /// Row lanes: producers of one finished row per slot (engines, or engine pairs).
    pub rlanes: usize,
    /// Rows per row lane per layer (padded).
    pub rows_per_lane: usize,
    pub mem: Memories,
    pub layout: VectorLayout,
    /// Counter widths of the top: units, cell-memory address, layer, row, slice, hand-over
    /// bundle, saturation events per cycle, input count.
    pub unit_w: u32,
    pub caw: u32,
    pub layer_w: u32,
    pub row_w: u32,
    pub slice_w: u32,
    pub eng_w: u32,
    pub sat_add_w: u32,
    pub in_w: u32,
    /// Output FIFO depth (a power of two, in words of E values) and its address width.
    pub ofifo_depth: usize,
    pub ofifo_aw: u32,
    /// Element-wise lanes E (a power of two) and log2 E: a group of E consecutive units is
    /// finished per cycle, unit u in lane u mod E at cell address u / E, and its h values are
    /// written as one vector-memory word (words of E values when E > 1).
    pub e: usize,
    pub ewq: u32,
}

/// Element-wise lanes for `n` units handed over every `period` cycles (the shortest of any
/// layer), with `bh` h values per bank and `p` values per stream beat: the lanes `given`, or
/// the fewest that take a hand-over in fewer cycles than the next one needs. E divides n (a
/// hand-over splits into whole groups), bh (a group's h values share one vector-memory word)
/// and p (a group's outputs share one stream beat).
pub fn ew_lanes(
    n: usize,
    period: usize,
    bh: usize,
    p: usize,
    given: Option<usize>,
) -> Result<usize, String> {
    let fits = |e: usize| n.is_multiple_of(e) && ew_lane_counts(bh, p).any(|f| f == e);
    let keeps_up = |e: usize| n / e < period;
    if let Some(e) = given {
        if !fits(e) {
            return Err(format!(
                "ew_lanes = {e} must divide the units handed over at once ({n}), the h values per bank ({bh}) and the values per output stream beat ({p})"
            ));
        }
        if !keeps_up(e) {
            return Err(format!(
                "{n} units complete every {period} cycles, faster than {e} element-wise lane(s) take them ({e} per cycle); use more lanes or fewer engines"
            ));
        }
        return Ok(e);
    }
    if let Some(e) = ew_lane_counts(bh, p).find(|&e| n.is_multiple_of(e) && keeps_up(e)) {
        return Ok(e);
    }
    Err(format!(
        "{n} units complete every {period} cycles, faster than the element-wise unit takes them (one per cycle), and no lane count (a power of two dividing {n}, the h values per bank {bh} and the values per stream beat {p}) keeps up; use fewer engines, or a wider stream_bits"
    ))
}

impl SingleDevice {
    pub fn new(design: &Design) -> Result<SingleDevice, String> {
        let arch = LstmArch::new(design)?;
        let engines = design.plan.engines;
        let h = arch.hidden;
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
        // x is double-buffered: the next timestep's vector loads while this one computes.
        let layout = arch.layout(2);
        let mut d = SingleDevice {
            mapping,
            m: engines,
            rlanes,
            rows_per_lane,
            mem: Memories::new(1, 1, 1),
            layout,
            unit_w: bits_for((h + engines) as u64),
            caw: bits_for((arch.layers * h) as u64 - 1),
            layer_w: bits_for(arch.layers as u64 - 1),
            row_w: bits_for(rows_per_lane as u64 - 1),
            slice_w: bits_for(arch.slices.iter().map(|(a, b)| a + b).max().unwrap_or(1) as u64),
            eng_w: 0,
            sat_add_w: bits_for(rlanes as u64),
            in_w: bits_for(arch.input_size as u64 - 1),
            ofifo_depth: 0,
            ofifo_aw: 0,
            e: 1,
            ewq: 0,
            arch,
        };
        let period = (0..d.arch.layers)
            .map(|l| d.slices_per_row(l) * if mapping == Mapping::PerGate { 1 } else { 4 })
            .min()
            .unwrap_or(1);
        let given = design.plan.plan.target.ew_lanes.map(|e| e as usize);
        d.e = ew_lanes(
            d.bundles(),
            period,
            d.arch.bh,
            d.arch.dp.stream.per_beat as usize,
            given,
        )?;
        d.ewq = d.e.trailing_zeros();
        d.caw = bits_for((d.arch.layers * h.div_ceil(d.e)) as u64 - 1);
        // Two timesteps of h groups: a timestep starts only when its groups fit (the datapath
        // never stalls inside a step), and the host drains one while the next computes.
        d.ofifo_depth = 64usize.max((2 * h.div_ceil(d.e)).next_power_of_two());
        if d.e > 1 {
            d.layout = d.arch.layout_aligned(2, d.e);
        }
        let wdepth = (0..d.arch.layers)
            .map(|l| rows_per_lane * d.slices_per_row(l))
            .sum();
        d.mem = Memories::new(wdepth, rows_per_lane * d.arch.layers, d.layout.depth()).chunked();
        if d.e > 1 {
            d.mem = d.mem.words(d.e);
        }
        d.eng_w = bits_for((d.bundles() / d.e) as u64 - 1);
        d.ofifo_aw = d.ofifo_depth.trailing_zeros();
        Ok(d)
    }

    /// Cycles per row in layer `l`: both products in turn, or the longer one for `ops` pairs.
    pub fn slices_per_row(&self, l: usize) -> usize {
        let (a, b) = self.arch.slices[l];
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

    /// The row (of 4H) that row lane `r` computes at position `p` of a layer, or None for padding.
    pub fn row_of(&self, r: usize, p: usize) -> Option<usize> {
        let h = self.arch.hidden;
        let (gate, unit) = match self.mapping {
            Mapping::PerGate => {
                let gsz = self.rlanes / 4;
                (r / gsz, p * gsz + r % gsz)
            }
            _ => (p % 4, (p / 4) * self.rlanes + r),
        };
        (unit < h).then_some(gate * h + unit)
    }
}

/// One layer of a node: its CSB slices per row and where its rows and partial sums start in
/// the node's weight, bias and partial-sum memories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeLayerArch {
    /// x and h slices per row (zero for banks the device does not hold).
    pub slices: (usize, usize),
    /// Row slots: the engines issue M rows at a time, the last slot padded with zero rows.
    pub slots: usize,
    pub wbase: usize,
    /// With [`NodeArch::overlap`] (layer 0 only): where the h slices start. The layer's weights
    /// are then every row's x slices (from `wbase`), then every row's h slices, so each pass
    /// reads its block in order.
    pub wbase_h: usize,
    pub bbase: usize,
    pub pbase: usize,
}

/// One device of a multi-device system: its memories and every width of its top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeArch {
    pub index: usize,
    /// Row engines, M: engine e computes the node's rows e, e + M, ... of each layer.
    pub m: usize,
    /// Row sums the serializer hands over per cycle, G: 4 E (E units' four gates, which the
    /// node's rows hold in unit-major order; E the element-wise lanes) when M is a multiple of 4
    /// and every layer the node computes keeps all four gates of its units on the device
    /// (finishing them itself), else 1.
    pub g: usize,
    /// Row serializer index (the M engines' sums leave G per cycle, in M / G cycles).
    pub eng_w: u32,
    /// Engine lanes built: the banks (x or h) this device holds in a layer it computes. A
    /// `cols` split gives each device only its banks' lanes.
    pub lanes: Vec<usize>,
    pub layers: Vec<NodeLayerArch>,
    pub mem: Memories,
    pub layout: VectorLayout,
    pub unit_w: u32,
    pub row_w: u32,
    pub slice_w: u32,
    pub layer_w: u32,
    /// Partial-sum and cell memories: one entry per finished unit of every layer.
    pub pdepth: usize,
    pub paw: u32,
    /// Partial-sum counters.
    pub cnt_w: u32,
    /// Devices whose partial sums this node sums (itself included), in slot order.
    pub slots: Vec<usize>,
    /// Layer 0's W_ih·x runs ahead: its rows' x slices are issued as soon as a tick's x is in,
    /// before the other devices' h of the last tick (which only its h slices need) has arrived.
    /// The x-part sums (bias included) go to a partial-sum slot of their own after the source
    /// slots, the h-part sums (from zero) to the node's own slot, and the finisher adds them at
    /// full width like any partial sums. Where layer 0 has x and h slices, its sums stay on the
    /// node (it finishes its own rows), and each pass's rows are long enough for the row
    /// serializer (x and h slices each at least M / G; the 60-engine 1024 -> 1024 example,
    /// with 8 of each and M / G = 15, is not).
    pub overlap: bool,
    /// The bias-memory word that holds zero (the h pass's bias), with `overlap`.
    pub bzero: usize,
    /// Width of the sum of every slot's partial sum.
    pub psum_w: u32,
    pub ofifo_depth: usize,
    pub ofifo_aw: u32,
    /// Row FIFO entries (one slot's rows of all M engines each): the engines never stall, so a
    /// slot is issued only while the FIFO can take it and every slot in flight, with a margin
    /// of [`ROW_FIFO_MARGIN`] for the registered credit check.
    pub rf_depth: usize,
    /// The credit bound: a slot is issued while fewer than this many are reserved
    /// (the depth less two: the credit register is a cycle behind, and one slot may be issued
    /// in that cycle).
    pub rf_room: usize,
    pub txq_depth: usize,
    pub txq_aw: u32,
    /// Element-wise lanes, E: the finisher takes E consecutive units per cycle (E partial-sum
    /// banks per slot and gate, unit u in bank u mod E), E element-wise lanes (each with its
    /// cell memory) finish them, and their h values leave as one group: one vector-memory
    /// write, one transmit-queue entry, one output-FIFO entry. 1 unless the plan's `ew_lanes`
    /// asks for more (see [`node_ew_lanes`]).
    pub e: usize,
    /// Transmit-queue entry value: a partial sum, or a group of E h values.
    pub qw: u32,
    /// Transmit-queue entry: {last, type, layer, parity, destination, value}.
    pub tq_w: u32,
    /// Receive FIFO per port.
    pub rx_depth: usize,
    pub rx_aw: u32,
    /// Barrier counter.
    pub bar_w: u32,
    /// Start {lane, index, count} of a source's h run.
    pub hstart_w: u32,
}

impl NodeArch {
    /// Partial-sum slots the finisher adds (the sources, and layer 0's x part with `overlap`).
    pub fn sum_slots(&self) -> usize {
        self.slots.len() + self.overlap as usize
    }

    /// Registered adder levels of the finisher's sum: two slots per add, at least one level.
    pub fn sum_levels(&self) -> u32 {
        bits_for(self.sum_slots().max(2) as u64 - 1)
    }

    /// Cycles from the finisher taking a unit to its pre-activations (`feed_v`): address,
    /// partial-sum read, fabric register, the adder levels, rounding, saturation.
    pub fn fin_latency(&self) -> u32 {
        5 + self.sum_levels()
    }
}

pub use crate::plan::MAX_NODE_ENGINES;

/// Beats each receive port buffers at least (more where the schedule sends more in a tick).
pub const RX_DEPTH: usize = 64;
/// Beats a receive port may buffer.
pub const MAX_RX_DEPTH: usize = 8192;
/// Row-FIFO entries kept free beyond the rows in flight: the credit check is a register, one
/// cycle behind (2), and one more so a full pipeline never throttles the issue.
pub const ROW_FIFO_MARGIN: usize = 3;
/// Entries of a node's transmit queue.
pub const TXQ_DEPTH: usize = 64;

/// Frame-format widths a node's link cores use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkWidths {
    pub vpb_h: u32,
    pub vpb_p: u32,
    pub maxv_h: u32,
    pub maxv_p: u32,
    /// Largest count a received frame may carry.
    pub max_vals: u32,
    pub vpb_w: u32,
    /// Payload beat count and index widths.
    pub fb_w: u32,
    pub fb_ix_w: u32,
}

impl LinkWidths {
    pub fn new(f: &frame::Format) -> LinkWidths {
        use frame::Kind;
        let (vpb_h, vpb_p) = (f.values_per_beat(Kind::H), f.values_per_beat(Kind::Psum));
        let (maxv_h, maxv_p) = (f.max_values(Kind::H), f.max_values(Kind::Psum));
        LinkWidths {
            vpb_h,
            vpb_p,
            maxv_h,
            maxv_p,
            max_vals: maxv_h.max(maxv_p),
            vpb_w: bits_for(vpb_h.max(vpb_p) as u64 - 1),
            fb_w: bits_for(frame::MAX_PAYLOAD_BEATS as u64),
            fb_ix_w: bits_for(frame::MAX_PAYLOAD_BEATS as u64 - 1),
        }
    }
}

/// A multi-device system: the schedule, the shared datapath, the frame format and each node.
#[derive(Clone, Debug)]
pub struct System {
    pub arch: LstmArch,
    pub schedule: Schedule,
    pub frame: frame::Format,
    pub link: LinkWidths,
    pub nodes: Vec<NodeArch>,
}

impl System {
    pub fn new(design: &Design) -> Result<System, String> {
        let arch = LstmArch::new(design)?;
        let schedule = schedule::build(design)?;
        let lw = schedule.width;
        if !(frame::MIN_LINK_WIDTH..=frame::MAX_LINK_WIDTH).contains(&lw) {
            return Err(format!(
                "[target.link] width is {lw} bits; generated link ports carry {} to {} bits per beat",
                frame::MIN_LINK_WIDTH,
                frame::MAX_LINK_WIDTH
            ));
        }
        let accw = arch.dp.accw;
        let any_p = schedule
            .nodes
            .iter()
            .any(|n| n.layers.iter().any(|l| l.computes() && l.pdst != n.index));
        if any_p && lw < accw {
            return Err(format!(
                "[target.link] width is {lw} bits, but this plan sends {accw}-bit partial sums \
                 between devices; use a width of at least {accw}"
            ));
        }
        let frame = frame::Format {
            link_width: lw,
            h_width: arch.dp.dw,
            psum_width: accw,
        };
        // Each device's engines ([target] engines, or its [[target.device]] table's), and the
        // element-wise lanes every node has.
        let m_of = |d: usize| design.plan.engines_of(d).max(1);
        let e_all = match design.plan.plan.target.ew_lanes {
            Some(e) => e.max(1) as usize,
            None => auto_node_lanes(design, &arch, &schedule, &frame),
        };
        // The M engines finish a row each in the same cycle and their sums leave G per cycle,
        // so a row must take at least M / G cycles.
        for n in &schedule.nodes {
            let m = m_of(n.index);
            let g = sums_per_cycle(n, m, e_all);
            if m > MAX_NODE_ENGINES {
                return Err(format!(
                    "device {}: engines is {m}; a multi-device node has at most {MAX_NODE_ENGINES} row engines",
                    n.index
                ));
            }
            for (l, nl) in n.layers.iter().enumerate() {
                let (a, b) = node_slices(&arch, l, nl);
                if nl.computes() && (a + b) * g < m {
                    let why = if g > 1 {
                        "a node's engines hand over four row sums per cycle per element-wise \
                         lane (one unit's gates each)"
                    } else {
                        "a node's engines hand over one row sum per cycle (four, one unit's \
                         gates, when the engines are a multiple of 4 and every layer keeps all \
                         four gates of its units on the device, as rows and layers do)"
                    };
                    return Err(format!(
                        "engines is {m}, but on device {} a row of layer {l} takes {} \
                         cycle(s) (the CSB slices of the banks it holds); {why}, so it may have \
                         at most {} engine(s)",
                        n.index,
                        a + b,
                        (a + b) * g
                    ));
                }
            }
        }
        let mut nodes: Vec<NodeArch> = schedule
            .nodes
            .iter()
            .map(|n| {
                let m = m_of(n.index);
                node_arch(
                    &arch,
                    &schedule,
                    n,
                    m,
                    sums_per_cycle(n, m, e_all),
                    node_word(&frame),
                )
            })
            .collect();
        // Only a ring of three or more forwards frames in a circle; chains, stars, host relays
        // and two-device rings keep the default buffers.
        let circular = !schedule.switched
            && schedule.topology == crate::plan::Topology::Ring
            && schedule.nodes.len() > 2;
        let rx = rx_beats_per_tick(&schedule, &frame);
        for (na, beats) in nodes.iter_mut().zip(rx).filter(|_| circular) {
            let depth = RX_DEPTH.max((2 * beats as usize).next_power_of_two());
            if depth > MAX_RX_DEPTH {
                return Err(format!(
                    "device {} receives {beats} link beats on one port in a tick; on a ring its \
                     receive buffer must hold two ticks of them, {depth} beats (at most \
                     {MAX_RX_DEPTH}): use wider links, a chain or star, fewer devices or a \
                     strategy that sends less",
                    na.index
                ));
            }
            na.rx_depth = depth;
            na.rx_aw = depth.trailing_zeros();
        }
        for (na, n) in nodes.iter_mut().zip(&schedule.nodes) {
            node_ew_lanes(&arch, &frame, n, na, e_all)?;
        }
        Ok(System {
            link: LinkWidths::new(&frame),
            arch,
            schedule,
            frame,
            nodes,
        })
    }

    /// Link beats of a run of values (its frames: headers, payload, trailers).
    pub fn beats(&self, r: &schedule::Run) -> u64 {
        self.frame.run_beats(r.kind, r.values as u64)
    }
}

/// Link beats arriving on each device's busiest receive port in a tick with every layer
/// active: every run and barrier frame, counted at the destination and at every device that
/// forwards it on the way.
///
/// On a ring of three or more, receive buffers are sized to hold two ticks of this (a device
/// starts a tick only after every other device's barrier of the last one, which travels behind
/// its frames, so no more is ever in flight towards it). A sender is then never held up by a
/// full receive buffer, and the ring, whose forwarding devices wait on each other in a circle,
/// cannot deadlock. Elsewhere forwarding goes one way along a line and cannot wait in a circle.
pub fn rx_beats_per_tick(s: &Schedule, f: &frame::Format) -> Vec<u64> {
    let mut port_beats: Vec<Vec<u64>> = s.nodes.iter().map(|n| vec![0; n.ports.len()]).collect();
    let runs = (0..s.layers).flat_map(|l| s.runs(l)).chain(s.barriers());
    for r in runs {
        let beats = f.run_beats(r.kind, r.values as u64);
        for (dev, port) in s.path(r.src, r.dst) {
            port_beats[dev][port] += beats;
        }
    }
    port_beats
        .into_iter()
        .map(|p| p.into_iter().max().unwrap_or(0))
        .collect()
}

/// Sets a node's element-wise lanes to `e` (see [`NodeArch::e`]), or says why it cannot have
/// them. A group of E units must stay whole everywhere it goes: E divides every layer's
/// finished units and their first unit (so a group shares one partial-sum address and one
/// vector-memory word), the h values per bank and the values per vector-memory word, the h
/// values per link beat and per frame (a queue entry fills whole slots of one beat and never
/// straddles a frame), and the values per output stream beat (the packer takes a group per
/// cycle).
pub fn node_ew_lanes(
    arch: &LstmArch,
    f: &frame::Format,
    n: &Node,
    na: &mut NodeArch,
    e: usize,
) -> Result<(), String> {
    if e <= 1 {
        return Ok(());
    }
    node_ew_fits(arch, f, n, e)?;
    na.e = e;
    // The bank index takes the address's low log2(E) bits; a word index at least one more.
    na.paw = na.paw.max(e.trailing_zeros() + 1);
    na.qw = arch.dp.accw.max(e as u32 * arch.dp.dw);
    na.tq_w = 1 + 2 + na.layer_w + 1 + 3 + na.qw;
    let last = &n.layers[arch.layers - 1];
    na.ofifo_depth = 64usize.max((last.fin.len() / e + 1).next_power_of_two().min(1024));
    na.ofifo_aw = na.ofifo_depth.trailing_zeros();
    Ok(())
}

/// Element-wise lanes for every node when the plan does not give `ew_lanes`: 1, unless a node
/// that keeps whole units could run layer 0's W_ih·x ahead of the gather (see
/// [`NodeArch::overlap`]) but its row serializer, handing over one unit per cycle, is too slow
/// for a pass of x or h slices alone. Then the fewest E (a power of two) whose serializer
/// (E units per cycle) keeps up with both passes on every node, where groups of E stay whole
/// and each node's multipliers (its engines' and E element-wise units') stay within its
/// `dsp_budget` and board; 1 if there is none.
fn auto_node_lanes(design: &Design, arch: &LstmArch, sched: &Schedule, f: &frame::Format) -> usize {
    let m_of = |d: usize| design.plan.engines_of(d).max(1);
    let too_slow = |e: usize| {
        sched.nodes.iter().any(|n| {
            let (m, l0) = (m_of(n.index), &n.layers[0]);
            let g = sums_per_cycle(n, m, e);
            let (sx, sh) = node_slices(arch, 0, l0);
            g >= 4 && overlap_candidate(n, sx, sh) && !passes_keep_up(sx, sh, g, m)
        })
    };
    if !too_slow(1) {
        return 1;
    }
    let ew = crate::plan::ew_multipliers(design.plan.plan.activation.method);
    let fits_budget = |e: usize| {
        sched.nodes.iter().all(|n| {
            let fin = n.layers.iter().any(|l| !l.fin.is_empty());
            let need =
                (m_of(n.index) * built_lanes(n).len()) as u64 + if fin { ew * e as u64 } else { 0 };
            design.plan.targets.get(n.index).is_none_or(|t| {
                t.dsp_budget.is_none_or(|b| need <= b as u64)
                    && t.board.is_none_or(|b| need <= b.multipliers)
            })
        })
    };
    (1..=crate::plan::MAX_EW_LANES.ilog2())
        .map(|i| 1usize << i)
        .take_while(|&e| fits_budget(e))
        .find(|&e| {
            sched
                .nodes
                .iter()
                .all(|n| node_ew_fits(arch, f, n, e).is_ok())
                && !too_slow(e)
        })
        .unwrap_or(1)
}

/// The engine lanes node `n` builds: the banks (x or h) it holds in a layer it computes. A
/// device that computes no rows keeps one (idle) lane, so the engine stays whole.
fn built_lanes(n: &Node) -> Vec<usize> {
    let mut lanes: Vec<usize> = n
        .layers
        .iter()
        .filter(|l| l.computes())
        .flat_map(|l| l.x_banks.iter().chain(&l.h_banks).copied())
        .collect();
    lanes.sort_unstable();
    lanes.dedup();
    if lanes.is_empty() {
        lanes.push(0);
    }
    lanes
}

/// Layer 0 of node `n` could run its x slices ahead of the gather: it computes, has x and h
/// slices (`sx`, `sh`), and finishes its own rows.
fn overlap_candidate(n: &Node, sx: usize, sh: usize) -> bool {
    let l0 = &n.layers[0];
    l0.computes() && sx > 0 && sh > 0 && l0.pdst == n.index && !l0.fin.is_empty()
}

/// Each pass (x slices, h slices) keeps a row at least M / G cycles long, as the row
/// serializer needs.
fn passes_keep_up(sx: usize, sh: usize, g: usize, m: usize) -> bool {
    sx * g >= m && sh * g >= m
}

/// Whether groups of `e` units stay whole on node `n` (see [`node_ew_lanes`]).
fn node_ew_fits(arch: &LstmArch, f: &frame::Format, n: &Node, e: usize) -> Result<(), String> {
    let d = n.index;
    let bad = |what: String| {
        Err(format!(
            "ew_lanes = {e}, but on device {d} {what}; a node's element-wise lanes take a group \
             of E consecutive units, which must stay whole in the partial-sum banks, the vector \
             memory, the link frames and the output stream"
        ))
    };
    for (l, nl) in n.layers.iter().enumerate() {
        if nl.fin.is_empty() {
            continue;
        }
        if !nl.fin.len().is_multiple_of(e) || !nl.fin.start.is_multiple_of(e) {
            return bad(format!(
                "layer {l} finishes units {}..{} ({} of them), not whole groups of {e}",
                nl.fin.start,
                nl.fin.end,
                nl.fin.len()
            ));
        }
    }
    let checks = [
        ("h values per bank", arch.bh),
        ("values per vector-memory word", node_word(f)),
        (
            "h values per link beat",
            f.values_per_beat(frame::Kind::H) as usize,
        ),
        ("h values per frame", f.max_values(frame::Kind::H) as usize),
        (
            "values per output stream beat",
            arch.dp.stream.per_beat as usize,
        ),
    ];
    for (what, v) in checks {
        if !v.is_multiple_of(e) {
            return bad(format!("the {what} ({v}) are not a multiple of {e}"));
        }
    }
    Ok(())
}

/// x and h slices per row of a node's layer: the banks it holds.
pub fn node_slices(arch: &LstmArch, l: usize, nl: &NodeLayer) -> (usize, usize) {
    let (a, b) = arch.slices[l];
    (
        if nl.x_banks.is_empty() { 0 } else { a },
        if nl.h_banks.is_empty() { 0 } else { b },
    )
}

/// Values per vector-memory word on a node: the h values of a link beat, rounded down to a
/// power of two, 2 to 32. A received beat's run is written in one cycle when it stays within
/// a word (and in one more per word or bank boundary it crosses).
pub fn node_word(f: &frame::Format) -> usize {
    let v = f.values_per_beat(frame::Kind::H).clamp(2, 32) as usize;
    1 << v.ilog2()
}

/// Row sums a node's serializer hands over per cycle with `e` element-wise lanes (see
/// [`NodeArch::g`]).
pub fn sums_per_cycle(n: &Node, m: usize, e: usize) -> usize {
    let whole_units = n.layers.iter().all(|l| {
        !l.computes()
            || (l.pdst == n.index
                && l.rows.len() % 4 == 0
                && l.sources.iter().any(|s| s.0 == n.index && s.1 == 0xF))
    });
    if m >= 4 && m % 4 == 0 && whole_units {
        4 * e.max(1)
    } else {
        1
    }
}

fn node_arch(
    arch: &LstmArch,
    sched: &Schedule,
    n: &Node,
    m: usize,
    g: usize,
    q: usize,
) -> NodeArch {
    let h = arch.hidden;
    let nd = sched.nodes.len();
    let mut layers = Vec::new();
    let (mut wbase, mut bbase, mut pbase) = (0usize, 0usize, 0usize);
    for (l, nl) in n.layers.iter().enumerate() {
        let slices = node_slices(arch, l, nl);
        let slots = nl.rows.len().div_ceil(m);
        layers.push(NodeLayerArch {
            slices,
            slots,
            wbase,
            wbase_h: wbase + slots * slices.0,
            bbase,
            pbase,
        });
        wbase += slots * (slices.0 + slices.1);
        bbase += slots;
        pbase += nl.fin.len();
    }
    // Each pass's rows hand their sums over through the serializer (G per cycle), so each pass
    // must keep a row at least M / G cycles long, as whole rows do.
    let (sx, sh) = layers[0].slices;
    let overlap = overlap_candidate(n, sx, sh) && passes_keep_up(sx, sh, g, m);
    let bzero = bbase;
    if overlap {
        bbase += 1;
    }
    let layout = arch.layout_aligned(2, q);
    let mem = Memories::new(wbase.max(1), bbase.max(1), layout.depth())
        .words(q)
        .chunked()
        .vector_block(m * built_lanes(n).len());
    let max_rows = n
        .layers
        .iter()
        .map(|l| l.rows.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let max_slices = layers
        .iter()
        .map(|l| l.slices.0 + l.slices.1)
        .max()
        .unwrap_or(1)
        .max(1);
    // The shortest row issued (each pass on its own with `overlap`): rows in flight in the
    // engines are at most their depth over it, and the row FIFO holds them all.
    let min_row = layers
        .iter()
        .enumerate()
        .flat_map(|(l, la)| {
            if l == 0 && overlap {
                vec![la.slices.0, la.slices.1]
            } else {
                vec![la.slices.0 + la.slices.1]
            }
        })
        .filter(|&c| c > 0)
        .min()
        .unwrap_or(1);
    let in_flight = (mem.engine_front() + tree_levels(arch.dp.k) + 2).div_ceil(min_row as u32);
    let rf_depth = (in_flight as usize + ROW_FIFO_MARGIN)
        .next_power_of_two()
        .max(16);
    let unit_w = bits_for(h as u64 + 1);
    let layer_w = bits_for(arch.layers as u64 - 1);
    let pdepth = pbase.max(1);
    let mut slots: Vec<usize> = n
        .layers
        .iter()
        .flat_map(|l| l.sources.iter().map(|s| s.0))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    let last = &n.layers[arch.layers - 1];
    let ofifo_depth = 64usize.max((last.fin.len() + 1).next_power_of_two().min(1024));
    let lanes = built_lanes(n);
    NodeArch {
        index: n.index,
        m,
        g,
        lanes,
        eng_w: bits_for((m / g).max(2) as u64 - 1),
        layers,
        mem,
        layout,
        unit_w,
        row_w: bits_for(max_rows as u64),
        slice_w: bits_for(max_slices as u64),
        layer_w,
        pdepth,
        paw: bits_for(pdepth as u64 - 1),
        cnt_w: (bits_for(4 * h as u64) + 1).max(8),
        psum_w: arch.dp.accw + bits_for((slots.len() + overlap as usize).max(1) as u64),
        slots,
        overlap,
        bzero,
        ofifo_depth,
        ofifo_aw: ofifo_depth.trailing_zeros(),
        rf_depth,
        rf_room: rf_depth - 2,
        txq_depth: TXQ_DEPTH,
        txq_aw: TXQ_DEPTH.trailing_zeros(),
        e: 1,
        qw: arch.dp.accw,
        tq_w: 1 + 2 + layer_w + 1 + 3 + arch.dp.accw,
        rx_depth: RX_DEPTH,
        rx_aw: RX_DEPTH.trailing_zeros(),
        bar_w: bits_for(2 * nd as u64) + 1,
        hstart_w: arch.dp.lane_w + mem.vaw + unit_w + 1,
    }
}
