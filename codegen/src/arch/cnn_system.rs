//! A CNN over several devices: which stages each device runs, on which rows, where its values
//! come from and where they go. Built today:
//!
//! - **fused** (DeepThings' fused tile partitioning, in row strips): a stack of conv2d/maxpool
//!   layers from the input is split into as many strips of its last output rows as it has
//!   devices. Each device takes from the host the input rows its strip's receptive field
//!   needs (the exact halo: output rows `[a, b]` of a window stage read input rows
//!   `[a·S − P, b·S − P + K − 1]`, clamped to the image, so only real borders are padded) and
//!   runs the whole stack on them, recomputing the overlap and exchanging nothing. The strips
//!   are gathered in row order down a chain of the stack's devices (each device sends its strip
//!   followed by what it received from the next), and the first device runs the layers after
//!   the stack on the whole map.
//! - **tiles**: the same stack, each conv2d/maxpool layer on the devices' strips of its own
//!   output rows (nothing recomputed); before each layer after the first, a device receives
//!   from the devices above and below it the halo rows its strip needs and sends them theirs
//!   ([`Exchange`]). The last strips are gathered as for `fused`. On a grid of rows x columns,
//!   each layer runs on the devices' tiles of its output; before each layer after the first a
//!   device first exchanges halo columns with its left and right neighbours (per row of its
//!   tile), then the rows of its widened tile with the devices above and below, which carries
//!   the corners. A device takes its input at most [`tiles_in_flight`] frames ahead of its
//!   stack's output, which bounds what any queue must hold.
//! - **layers**: whole layers per device, pipelined over frames: the devices that run
//!   consecutive runs of stages pass the feature map on.
//!
//! A split stack may follow layers of strategy `layers` on devices of their own: the last of
//! them sends the stack its map (a copy per device for `filters`; for `channels` each device
//! its channels, for `fused` and `tiles` each device the rows and columns its tile reads:
//! [`Scatter`]); or on the stack's own devices when the device that ends them runs a part of
//! the stack too: it scatters the map between its own stages and keeps its own box ([`Tap`]).
//! A split stack may also follow another split stack ([`Prefix`]): the system up
//! to it runs on the plan's first devices, built as a system of its own, and its output device
//! sends the later stack its map the same way. On the devices of a fused, tiled or filters
//! stack (from the input, or fed by `layers` on devices of their own), the next stack shares them (`shared_stacks`): every device sends its
//! tile or channel slice to every other one, each joins the whole map and keeps its part
//! ([`Merge`], `partita_crop`).
//!
//! After a split stack (`fused`, `tiles`, `filters`, `channels`), the layers after it run on the
//! stack's first device, or (strategy `layers`) pipelined on devices of their own: the first
//! device then passes the stack's output map (or the map of its own last layer) on ([`Tail`]).
//!
//! Every value between devices travels in the link frames of `partita_hdl::frame` (h frames,
//! layer 0), sequence-numbered and CRC-checked by the library link cores.

use partita_hdl::frame;

use super::cnn::{CnnArch, Map, Stage, StageKind};
use super::lstm::LinkWidths;
use crate::design::{Design, ModelDesign};
use crate::passes::fold::{device_budget, fastest_within};
use crate::passes::schedule::{wiring, Link};
use crate::plan::{CnnLayer, LinkMode, Strategy, Topology};

/// Cycles a sending device's stream loses per link frame, measured: the framer
/// (`partita_link_tx`) fills one frame buffer while it sends the other, and hands over between
/// frames (an idle cycle on each side and its transmit queue catching up). A device that
/// sends wide partial sums one per beat in frames of 16 runs at 16 values per 21 cycles; one
/// that sends 48 per frame at 48 per 53 (cosim of a `channels` system on 64- and 128-bit
/// links).
pub const FRAME_GAP: u64 = 5;

/// Cycles a framer's send side loses per frame copy it sends (between a frame's trailer and the
/// next copy's header), measured: a device multicasting its map in frames of 16 one-beat values
/// to three devices sends a copy per 20.4 cycles, 18 of them beats (cosim of a filters stack
/// fed from a link, 40-bit frame values on 64-bit links).
pub const SEND_GAP: u64 = 2;

/// Where a device's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The host's input stream: rows `lo..=hi` of the image (all of them on a whole map).
    Host { lo: usize, hi: usize },
    /// Another device's link frames.
    Link { from: usize },
}

/// Where a device's output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// The host's output stream.
    Host,
    Link {
        to: usize,
    },
}

/// A gather: after the first `after` stages, `local` values of this device's own, then
/// `remote` values from device `from`, `periods` times per frame (once for a strip; once per
/// pixel for `filters`, whose devices each hold a slice of every pixel's channels; once per
/// row of its tile for `fused` on a grid, where `remote` may be 0), then `tail` more values
/// from device `from` (on a grid: the whole rows of the tile rows below).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gather {
    pub after: usize,
    pub local: usize,
    pub remote: usize,
    pub from: usize,
    pub periods: usize,
    pub tail: usize,
    /// Frames of remote values its queue holds: 1, or for `tiles` as many as device `from`
    /// can send ahead of this one (see [`tiles_in_flight`]).
    pub frames: usize,
    /// The frame tag of device `from`'s values (0: its output run; a stack whose output is
    /// handed on beside a stack on the same devices, [`Merge::hand`]).
    pub tag: u8,
}

/// Frames a `tiles` device of a stack of `stages` stages takes in before it has passed the
/// first of them out of the stack (its input is held until then). Devices wait for their
/// neighbours' halos, so a device's stack output runs at most this many frames ahead of a
/// neighbour's, and every queue of a received stream holds what its sender can send ahead: no
/// full queue stops a link port that another stream on it must pass (which would deadlock the
/// system). Each exchange can hold a frame back by a strip's time (the rows from above come at
/// the end of that device's strip), so the window grows with the exchanges: 2 frames more
/// than there are (measured: 3 frames held 2 strips exchanging before 4 layers of a 10 x 10
/// map at 229 cycles per frame against 155 predicted).
pub fn tiles_in_flight(stages: usize) -> usize {
    stages + 1
}

impl Gather {
    /// Values the gather passes per frame.
    pub fn values(&self) -> usize {
        (self.local + self.remote) * self.periods + self.tail
    }

    /// Whether the gather has the grid's shape (a tail, or no remote values per period).
    pub fn on_grid(&self) -> bool {
        self.tail > 0 || self.remote == 0
    }
}

/// `channels`: a device's partial-sum reduction after its first `after` stages (the split
/// layer, computed as full-width partial sums over this device's input channels): each of its
/// `values` sums per frame plus the one received from device `from`, in order; on the layer's
/// finisher then `finish`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reduce {
    pub after: usize,
    pub from: usize,
    /// The frame tag of device `from`'s sums (0: its output run; a channels stack before a
    /// stack on the same devices hands its sums on in a tagged run, [`Merge::hand`]).
    pub tag: u8,
    pub values: usize,
    pub finish: Option<Finish>,
}

/// The one rounding of a reduced layer: the output channel's bias (aligned to the sums'
/// fraction bits by `bias_shift`), one rounding and saturation into `dw_out` bits (shifts
/// `shr` / `shl`), and ReLU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finish {
    pub layer: usize,
    /// Bias codes per output channel.
    pub bias: Vec<i64>,
    pub bias_shift: u32,
    pub shr: u32,
    pub shl: u32,
    pub dw_out: u32,
    pub relu: bool,
}

/// A halo exchange of `tiles` on one device, between stage `stage - 1` (whose output strip has
/// `rows` rows of `row_len` values) and stage `stage`: the sender passes its first `send_up`
/// rows to the device above (`up`, frames tagged `tag_up`) and its rows from `send_down_from`
/// on to the device below (`tag_down`), and keeps rows `keep.0..keep.1` for itself; the merger
/// feeds stage `stage` with `recv_up` rows from above (frames that device tagged `rtag_up`),
/// the kept rows, then `recv_down` rows from below (tagged `rtag_down`).
///
/// On a grid (`across`), a column exchange comes first: the same, `periods` times per frame
/// (once per row of the tile), with a tile row's columns for rows (`row_len` = the channels),
/// the left neighbour for `up` and the right one for `down`. The row exchange after it then
/// passes rows of the widened tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub stage: usize,
    pub across: bool,
    pub periods: usize,
    pub rows: usize,
    pub row_len: usize,
    pub up: Option<usize>,
    pub down: Option<usize>,
    pub tag_up: u8,
    pub tag_down: u8,
    pub rtag_up: u8,
    pub rtag_down: u8,
    pub send_up: usize,
    pub send_down_from: usize,
    pub keep: (usize, usize),
    pub recv_up: usize,
    pub recv_down: usize,
}

impl Exchange {
    /// Whether it sends a run up (left, across).
    pub fn has_up(&self) -> bool {
        self.up.is_some() && self.send_up > 0
    }

    /// Whether it sends a run down (right, across).
    pub fn has_down(&self) -> bool {
        self.down.is_some() && self.send_down_from < self.rows
    }
}

/// One axis of a `tiles` halo exchange before stage `stage` (layer `layer`) on device `dev`,
/// at place `pos` of `parts` along the axis (tile rows, or tile columns `across`): each
/// place's `own` rows (columns) of the stage before, the rows (columns) each place's stage
/// `stage` `need`s, `unit` values per row (column), `periods` times per frame, the devices
/// before and after it on the axis.
struct HaloAxis<'a> {
    stage: usize,
    layer: usize,
    dev: usize,
    pos: usize,
    parts: usize,
    own: &'a dyn Fn(usize) -> (usize, usize),
    need: &'a dyn Fn(usize) -> (usize, usize),
    unit: usize,
    periods: usize,
    before: Option<usize>,
    after: Option<usize>,
    across: bool,
}

/// The exchange along one axis: output rows `[a, b]` of a window stage read input rows
/// `[a·S − P, b·S − P + K − 1]` clamped to the map, and what a place needs beyond its own comes
/// from the places right before and after it.
fn halo(h: HaloAxis) -> Result<Exchange, String> {
    let (k, nd) = (h.pos, h.parts);
    let (lo, hi) = (h.need)(k);
    let (pa, pb) = (h.own)(k);
    let rows = pb - pa + 1;
    let recv_up = pa.saturating_sub(lo);
    let recv_down = hi.saturating_sub(pb);
    if (recv_up > 0 && (k == 0 || lo < (h.own)(k - 1).0))
        || (recv_down > 0 && (k + 1 == nd || hi > (h.own)(k + 1).1))
        || (lo > pb + 1)
        || (hi + 1 < pa)
    {
        let (what, whose) = if h.across {
            ("columns", "tiles")
        } else {
            ("rows", "strips")
        };
        return Err(format!(
            "strategy \"tiles\": layer {} on device {} needs input {what} {lo}-{hi}, beyond its neighbours' {whose}; use fewer devices, or end the tiled stack before it",
            h.layer, h.dev
        ));
    }
    let keep = (
        lo.max(pa) - pa,
        (hi.min(pb) + 1).saturating_sub(pa).max(lo.max(pa) - pa),
    );
    let send_up = if k > 0 {
        let (_, uh) = (h.need)(k - 1);
        (uh + 1).saturating_sub(pa).min(rows)
    } else {
        0
    };
    let send_down_from = if k + 1 < nd {
        let (dl, _) = (h.need)(k + 1);
        dl.saturating_sub(pa).min(rows)
    } else {
        rows
    };
    Ok(Exchange {
        stage: h.stage,
        across: h.across,
        periods: h.periods,
        rows,
        row_len: h.unit,
        up: h.before,
        down: h.after,
        // Numbered per device when the system is built (`halo_tags`).
        tag_up: 0,
        tag_down: 0,
        rtag_up: 0,
        rtag_down: 0,
        send_up,
        send_down_from,
        keep,
        recv_up,
        recv_down,
    })
}

/// The frame tags of `tiles` halo runs: each device numbers the runs it sends, in exchange
/// order, from 1 (0 is its output run); a device takes a neighbour's stream by the tag that
/// neighbour gave it. At most 7 runs per device (the link frame's 3-bit tag): a strip with
/// neighbours on both sides sends 2 per exchange, a grid's tile up to 4.
fn halo_tags(devs: &[usize], built: &mut [Option<CnnDevice>]) -> Result<(), String> {
    for &d in devs {
        let Some(dev) = built[d].as_mut() else {
            continue;
        };
        let mut tag = 0u8;
        for x in &mut dev.exchanges {
            let (up, down) = (x.has_up(), x.has_down());
            for (has, t) in [(up, &mut x.tag_up), (down, &mut x.tag_down)] {
                if has {
                    tag += 1;
                    *t = tag;
                }
            }
        }
        if tag > 7 {
            let last = dev.exchanges.last().map_or(0, |x| x.stage);
            return Err(format!(
                "strategy \"tiles\": device {d} sends {tag} halo runs per frame (to each neighbour before each layer after the first, up to stage {last}), but a link frame's 3-bit tag tells at most 7 apart; use fewer devices (tile rows or columns), or end the tiled stack sooner"
            ));
        }
    }
    let sent = |built: &[Option<CnnDevice>], from: Option<usize>, j: usize, down: bool| {
        from.and_then(|f| built[f].as_ref())
            .and_then(|f| f.exchanges.get(j))
            .map_or(0, |x| if down { x.tag_down } else { x.tag_up })
    };
    for &d in devs {
        let n = built[d].as_ref().map_or(0, |x| x.exchanges.len());
        for j in 0..n {
            let Some(x) = built[d].as_ref().map(|b| b.exchanges[j]) else {
                continue;
            };
            let (ru, rd) = (sent(built, x.up, j, true), sent(built, x.down, j, false));
            if let Some(b) = built[d].as_mut() {
                b.exchanges[j].rtag_up = ru;
                b.exchanges[j].rtag_down = rd;
            }
        }
    }
    Ok(())
}

/// `filters`: an all-gather before stage `stage` (a conv2d or dense layer over every channel of
/// a map whose channels the stack's devices each hold a slice of). Per pixel (`pixels` per
/// frame), this device's `slices[pos]` values go to every other device of `devs` (frames tagged
/// `tag`, one copy per destination) and into a FIFO of its own; the merge feeds the stage with
/// every device's slice in device order (`slices[j]` values of device `devs[j]`), which is the
/// map's channel order.
///
/// With `strips`, the merge joins a stack's tiles instead (a `filters` stack on the devices of
/// the `fused` or `tiles` stack before it): `pixels` is 1 and `slices[j]` is device
/// `devs[j]`'s whole tile of the map. `runs` is the merge's order per period: (the place in
/// `devs` of the device, values). Per pixel it is each device's slice in turn; for row strips
/// each device's strip in turn; on a grid, row by row of the map, each tile's part of the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merge {
    pub stage: usize,
    pub pixels: usize,
    pub devs: Vec<usize>,
    pub slices: Vec<usize>,
    pub pos: usize,
    pub tag: u8,
    pub strips: bool,
    pub runs: Vec<(usize, usize)>,
    /// The box of the joined map this device's stage takes (a stack on the devices of the
    /// stack before it, split by `channels`, `fused` or `tiles`): the map, and its rows,
    /// columns and channels, each first and one past the last; the rest is dropped
    /// (`partita_crop`).
    pub crop: Option<(Map, [(usize, usize); 3])>,
    /// A stack on the devices of a system whose output ends on one device (a `channels` stack's
    /// finisher, or the first device running layers between the stacks): on every other
    /// device, what would have been the stage's input (its partial sums, or its tiles with
    /// those it gathered) goes on to one device (`(device, tag, values per frame)`) as that
    /// system sent it, and the merge takes nothing of its own (`slices[pos]` is 0): the one
    /// device's slice is the whole map.
    pub hand: Option<(usize, u8, usize)>,
}

impl Merge {
    /// The values this device sends per frame, to each other device (none for a hand-on).
    pub fn sent(&self) -> usize {
        if self.hand.is_some() {
            0
        } else {
            self.pixels * self.slices[self.pos]
        }
    }

    /// The values the merge passes per frame (one per cycle), before any crop.
    pub fn merged(&self) -> usize {
        self.pixels * self.slices.iter().sum::<usize>()
    }
}

/// The device before a stack fed from a link (`channels`, `fused` or `tiles`): its output map
/// (`map`: pixels in raster order, each pixel's channels in order) goes out as one run per
/// stack device, `devs[k]` getting the values in its box `boxes[k]` (rows, columns and
/// channels, each first and one past the last) in frames tagged k + 1. Boxes may overlap (the
/// halos of fused tiles): a value goes to every device whose box holds it, and a value in no
/// box (rows no window of the stack reads) is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scatter {
    pub map: Map,
    pub devs: Vec<usize>,
    pub boxes: Vec<[(usize, usize); 3]>,
    /// The frame tag of the run to the stack's first device (1; after the sender's halo or
    /// all-gather tags when it sends those too); the `k`th device's run is tagged `tag0 + k`.
    pub tag0: u8,
}

impl Scatter {
    /// Values per frame to the stack's `k`th device.
    pub fn values(&self, k: usize) -> usize {
        self.boxes[k].iter().map(|(a, b)| b - a).product()
    }
}

/// A scatter inside a device ([`CnnDevice::tap`]): a device that runs the layers before a
/// `fused`, `tiles`, `channels` or `filters` stack and a tile or channel slice of the stack
/// too. Stage `at`'s input (the map of the
/// layers before the stack) goes out as the scatter's runs to the stack's other devices, and
/// the device's own box (`scatter.boxes[own]`) waits in a FIFO for stage `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tap {
    pub at: usize,
    pub scatter: Scatter,
    pub own: usize,
    /// Every other device takes the whole map (`filters`): one multicast run, a copy each.
    pub multicast: bool,
}

impl Tap {
    /// The frame tag of the run to the stack's `k`th device (`k != own`): the scatter's, with
    /// no tag for the device's own box.
    pub fn tag(&self, k: usize) -> u8 {
        if self.multicast {
            self.scatter.tag0
        } else {
            self.scatter.tag0 + k as u8 - u8::from(k > self.own)
        }
    }

    /// The stack's other devices: (place in the stack, device).
    pub fn others(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.scatter
            .devs
            .iter()
            .copied()
            .enumerate()
            .filter(|(k, _)| *k != self.own)
    }
}

/// One device of a CNN system.
#[derive(Clone, Debug)]
pub struct CnnDevice {
    pub index: usize,
    /// Its stages; `input` is what arrives per frame, `output` what leaves.
    pub arch: CnnArch,
    pub source: Source,
    /// Its gathers, in stage order (two on the first device of two stacks on the same devices
    /// with layers between them: the first stack's tiles, handed on to it, then the second's).
    pub gathers: Vec<Gather>,
    pub sink: Sink,
    /// More devices the output goes to, a copy each (the device before a stack fed from a
    /// link sends its map to every device of the stack).
    pub also: Vec<usize>,
    /// Link ports: for each, the device its tx goes to and the one its rx comes from.
    pub ports: Vec<(Option<usize>, Option<usize>)>,
    /// The tx port of each destination device, 2 bits each.
    pub routes: u16,
    /// `tiles`: the halo exchanges, in stage order.
    pub exchanges: Vec<Exchange>,
    /// `channels`: the partial-sum reductions, in stage order (two on a device of a channels
    /// stack on the devices of the channels stack before it).
    pub reduces: Vec<Reduce>,
    /// `filters` over several weight layers: the all-gathers, in stage order.
    pub merges: Vec<Merge>,
    /// Before a `channels` stack fed from a link: the scatter of its output.
    pub scatter: Option<Scatter>,
    /// The device that ends the layers before a `fused`, `tiles`, `channels` or `filters` stack
    /// and runs a part of it: the scatter of its map between the two.
    pub tap: Option<Tap>,
    /// A device fed from a link: the frame tag of its input (a scatter's).
    pub in_tag: u8,
    /// `tiles`: frames it takes in ahead of its stack's output ([`tiles_in_flight`]; 0 for
    /// every other device, whose input is not held).
    pub in_flight: usize,
    /// The input channels this device takes from the host, of every pixel (all of them but
    /// for `channels`).
    pub host_channels: (usize, usize),
    /// The image columns of rows `lo..=hi` it takes from the host, first and one past the
    /// last (all of them but for `fused` on a grid of columns).
    pub host_cols: (usize, usize),
}

/// A run of values a device sends per frame: `periods` times, `values` values to device `dst`
/// in frames tagged `tag` (a multicast run is one per destination, with the same tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub dst: usize,
    pub tag: u8,
    pub values: usize,
    pub periods: usize,
}

impl Run {
    fn new(dst: usize, tag: u8, values: usize) -> Run {
        Run {
            dst,
            tag,
            values,
            periods: 1,
        }
    }

    /// Values per frame.
    pub fn total(&self) -> usize {
        self.values * self.periods
    }

    /// Link frames per frame (each period's run split at the format's most h values).
    pub fn frames(&self, f: &frame::Format) -> u64 {
        (self.values as u64).div_ceil(f.max_values(frame::Kind::H).max(1) as u64)
            * self.periods as u64
    }

    /// Link beats per frame.
    pub fn beats(&self, f: &frame::Format) -> u64 {
        f.run_beats(frame::Kind::H, self.values as u64) * self.periods as u64
    }
}

impl CnnDevice {
    /// Sends its output on as the stand-in device `stand` of another system does: its sink,
    /// copies and scatter, and its output's shape and format.
    fn send_as(&mut self, stand: &CnnDevice) {
        self.sink = stand.sink;
        self.also = stand.also.clone();
        self.scatter = stand.scatter.clone();
        self.arch.output = stand.arch.output;
        self.arch.out_order = stand.arch.out_order;
        self.arch.out_layout = stand.arch.out_layout;
        self.arch.dw_out = stand.arch.dw_out;
    }

    /// The highest frame tag of the runs it sends besides its output and scatter: halo
    /// exchanges, all-gathers and hand-ons, and its [`Tap`]'s runs (0: none). Runs added
    /// later are tagged after it.
    pub fn last_tag(&self) -> u8 {
        self.exchanges
            .iter()
            .flat_map(|x| [x.tag_up, x.tag_down])
            .chain(self.merges.iter().map(|m| m.tag))
            .chain(self.merges.iter().filter_map(|m| m.hand.map(|h| h.1)))
            .chain(
                self.tap
                    .iter()
                    .flat_map(|t| t.others().map(|(k, _)| t.tag(k))),
            )
            .max()
            .unwrap_or(0)
    }

    /// Frames of its own box the FIFO of its [`Tap`] holds: as many as it takes in ahead of its
    /// stack's output, and one more.
    pub fn tap_frames(&self) -> usize {
        self.in_flight.max(1) + 1
    }

    /// The runs this device sends per frame.
    pub fn runs(&self) -> Vec<Run> {
        let mut v = Vec::new();
        for x in &self.exchanges {
            if let (Some(up), true) = (x.up, x.has_up()) {
                v.push(Run {
                    periods: x.periods,
                    ..Run::new(up, x.tag_up, x.send_up * x.row_len)
                });
            }
            if let (Some(down), true) = (x.down, x.has_down()) {
                v.push(Run {
                    periods: x.periods,
                    ..Run::new(down, x.tag_down, (x.rows - x.send_down_from) * x.row_len)
                });
            }
        }
        for m in &self.merges {
            if let Some((to, tag, values)) = m.hand {
                v.push(Run::new(to, tag, values));
                continue;
            }
            for (j, &d) in m.devs.iter().enumerate() {
                if j != m.pos && m.sent() > 0 {
                    v.push(Run::new(d, m.tag, m.sent()));
                }
            }
        }
        if let Some(t) = &self.tap {
            for (k, d) in t.others() {
                v.push(Run::new(d, t.tag(k), t.scatter.values(k)));
            }
        }
        match (&self.scatter, self.sink) {
            (Some(sc), _) => {
                for (k, &d) in sc.devs.iter().enumerate() {
                    v.push(Run::new(d, sc.tag0 + k as u8, sc.values(k)));
                }
            }
            (None, Sink::Link { to }) => {
                for d in std::iter::once(to).chain(self.also.iter().copied()) {
                    v.push(Run::new(d, 0, self.arch.output.values()));
                }
            }
            (None, Sink::Host) => {}
        }
        v
    }

    /// Values this device sends on its links per frame.
    pub fn link_values(&self) -> usize {
        self.runs().iter().map(Run::total).sum()
    }

    /// Values per frame its gather, reduction or merges pass, one per cycle each.
    pub fn stream_values(&self) -> u64 {
        self.gathers
            .iter()
            .map(|g| g.values() as u64)
            .max()
            .unwrap_or(0)
            .max(
                self.reduces
                    .iter()
                    .map(|r| r.values as u64)
                    .max()
                    .unwrap_or(0),
            )
            .max(
                self.merges
                    .iter()
                    .map(|m| m.merged() as u64)
                    .max()
                    .unwrap_or(0),
            )
            .max(
                self.tap
                    .as_ref()
                    .map_or(0, |t| t.scatter.map.values() as u64),
            )
    }

    /// Cycles per frame in steady state: the slowest stage, gather or stream.
    pub fn cycles_per_frame(&self) -> u64 {
        let g = self.stream_values();
        self.arch
            .cycles_per_frame
            .max(g)
            .max(self.arch.output.values() as u64)
            .max(self.arch.input.values() as u64)
    }
}

/// The split stack's figures (`fused`, `tiles`, `filters`).
#[derive(Clone, Debug, PartialEq)]
pub struct FusedStack {
    /// The stack's first layer (0, or after the layers whose map a device sends it).
    pub from: usize,
    /// The whole network's stage the stack starts with.
    pub first_stage: usize,
    /// Layers in the stack (from `from`, ReLUs included).
    pub layers: usize,
    /// Stages in the stack (from `first_stage`).
    pub stages: usize,
    /// Per device (in strip order) the output rows of the stack's last stage (`filters`: the
    /// output channels, first and last).
    pub strips: Vec<(usize, usize)>,
    /// `fused` and `tiles`: the tile grid (rows x columns; one column of strips otherwise).
    pub grid: (usize, usize),
    /// `fused`: per stage of the stack, multiply-accumulates done over needed (the recompute
    /// of each layer; 1 elsewhere).
    pub stage_recompute: Vec<f64>,
    /// Multiply-accumulates done over multiply-accumulates needed, over the stack.
    pub recompute: f64,
    /// Input values sent to the devices over input values of one image (0 for a stack fed
    /// from a link).
    pub input_factor: f64,
    /// The device that sends the stack its input map (a copy to each of its devices), when
    /// layers before it run pipelined.
    pub feed: Option<usize>,
    /// The stack's first device: its gatherer, or the finisher of its reduced layer.
    pub head: usize,
    /// The devices that run the layers after the stack, in order (the stack's first device,
    /// then those pipelined after it; none when the stack is the whole network).
    pub after: Vec<usize>,
    /// `channels` on the devices of the fused or tiled stack before it: the dense layer split
    /// by that stack's tiles, not by channels.
    pub by_tiles: bool,
}

/// A CNN split over several devices.
#[derive(Clone, Debug)]
pub struct CnnSystem {
    pub strategy: Strategy,
    /// The network as one device runs it.
    pub whole: CnnArch,
    pub devices: Vec<CnnDevice>,
    pub links: Vec<Link>,
    pub switched: bool,
    pub topology: Topology,
    pub mode: LinkMode,
    pub latency: u32,
    pub frame: frame::Format,
    pub link: LinkWidths,
    /// The device whose output stream carries the network's output.
    pub out_device: usize,
    pub fused: Option<FusedStack>,
    /// The split stacks before `fused`, first first (a stack after another stack: the system
    /// up to it runs on devices of its own, and its last device sends the later stack its
    /// map).
    pub before: Vec<FusedStack>,
    /// The system before the later stack in words ([`CnnSystem::stack_summary`]).
    pub before_summary: Option<String>,
}

impl CnnSystem {
    /// The split stack in words, for reports: which layers, what each strategy costs (the
    /// recompute of `fused`, the halo exchanges of `tiles`, the per-pixel gather of
    /// `filters`), the input factor, and where the rest runs. None for `layers`.
    pub fn stack_summary(&self) -> Option<String> {
        let f = self.fused.as_ref()?;
        let what = match self.strategy {
            Strategy::Tiles if f.grid.1 > 1 => format!(
                "tiled stack (layers {}-{}) on a {} x {} grid exchanges halo columns, then rows, before {} layer(s)",
                f.from,
                f.from + f.layers - 1,
                f.grid.0,
                f.grid.1,
                self.devices
                    .iter()
                    .map(|d| d.exchanges.iter().filter(|x| !x.across).count())
                    .max()
                    .unwrap_or(0)
            ),
            Strategy::Tiles => format!(
                "tiled stack (layers {}-{}) exchanges halo rows before {} layer(s)",
                f.from,
                f.from + f.layers - 1,
                self.devices
                    .iter()
                    .map(|d| d.exchanges.len())
                    .max()
                    .unwrap_or(0)
            ),
            Strategy::Filters => {
                let (layer, c) = self
                    .whole
                    .stages
                    .iter()
                    .find(|s| s.layer >= f.from)
                    .map_or((0, 0), |s| (s.layer, s.output.c));
                let slices = f
                    .strips
                    .iter()
                    .map(|(a, b)| format!("{a}-{b}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                // The all-gathers: the layers whose input every device gathers in full.
                let merged: Vec<String> = self
                    .devices
                    .iter()
                    .find(|d| !d.merges.is_empty())
                    .map(|d| {
                        d.merges
                            .iter()
                            .filter(|m| !m.strips)
                            .map(|m| format!("layer {}", d.arch.stages[m.stage].layer))
                            .collect()
                    })
                    .unwrap_or_default();
                let gathered = if merged.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", all-gathered per pixel before {} (each computing its slice of that layer's output channels)",
                        merged.join(" and ")
                    )
                };
                let reduced = self.devices.iter().find_map(|d| {
                    d.reduces.iter().find_map(|r| {
                        d.arch
                            .stages
                            .get(r.after - 1)
                            .map(|s| s.layer)
                            .filter(|l| *l >= f.from)
                    })
                });
                match reduced {
                    Some(reduced) => format!(
                        "filters stack (layers {}-{}) splits layer {layer}'s {c} output channels ({slices}){gathered} and layer {} by the same channels as its input (nothing sent between them), its partial sums reduced down a chain and rounded once on device {},",
                        f.from,
                        f.from + f.layers - 1,
                        reduced,
                        f.head
                    ),
                    None => format!(
                        "filters stack (layers {}-{}) splits layer {layer}'s {c} output channels ({slices}){gathered}, gathered per pixel,",
                        f.from,
                        f.from + f.layers - 1
                    ),
                }
            }
            Strategy::Channels if f.by_tiles => format!(
                "channels stack (layers {}-{}) splits layer {}'s inputs by the tiles of the stack before it, on the same devices (each device's partial sums over its own tile; nothing sent between the stacks), its partial sums reduced down a chain and rounded once on device {},",
                f.from,
                f.from + f.layers - 1,
                self.whole
                    .stages
                    .iter()
                    .find(|s| s.layer >= f.from)
                    .map_or(0, |s| s.layer),
                f.head
            ),
            Strategy::Channels => {
                // A dense layer's inputs are split by the channels of the map before it.
                let at = self.whole.stages.iter().position(|s| s.layer >= f.from);
                let (layer, c, dense) = at.map_or((0, 0, false), |i| {
                    let s = &self.whole.stages[i];
                    match i.checked_sub(1) {
                        Some(p) if s.kind_name() == "dense" => {
                            (s.layer, self.whole.stages[p].output.c, true)
                        }
                        _ => (s.layer, s.input.c, false),
                    }
                });
                let what = if dense {
                    format!("inputs by the {c} channels of the map before it")
                } else {
                    format!("{c} input channels")
                };
                format!(
                    "channels stack (layers {}-{}) splits layer {layer}'s {what} ({}), its partial sums reduced down a chain and rounded once on device {},",
                    f.from,
                    f.from + f.layers - 1,
                    f.strips
                        .iter()
                        .map(|(a, b)| format!("{a}-{b}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    f.head
                )
            }
            _ => {
                // The layers that recompute, each with its own factor.
                let per: Vec<String> = f
                    .stage_recompute
                    .iter()
                    .zip(&self.whole.stages[f.first_stage..])
                    .filter(|(r, _)| **r > 1.005)
                    .map(|(r, s)| format!("layer {} {:.2}x", s.layer, r))
                    .collect();
                format!(
                    "fused stack (layers {}-{}){} recomputes {:.2}x its work{}",
                    f.from,
                    f.from + f.layers - 1,
                    if f.grid.1 > 1 {
                        format!(" on a {} x {} grid", f.grid.0, f.grid.1)
                    } else {
                        String::new()
                    },
                    f.recompute,
                    if per.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", per.join(", "))
                    }
                )
            }
        };
        let rest = match f.after.as_slice() {
            [] => String::new(),
            [d] => format!(", the layers after it run on device {d}"),
            more => format!(
                ", the layers after it run pipelined on devices {}",
                more.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ),
        };
        let input = match f.feed {
            Some(d) if self.strategy == Strategy::Channels => {
                format!("takes each device's channels of device {d}'s map (scattered)")
            }
            Some(d) if matches!(self.strategy, Strategy::Fused | Strategy::Tiles) => format!(
                "takes each device's tile of device {d}'s map (scattered, {:.2}x the map)",
                f.input_factor
            ),
            Some(d) => format!("takes its input map from device {d}, a copy per device"),
            None if f.by_tiles => "takes its tile from the stack before it".to_string(),
            None if self
                .devices
                .iter()
                .any(|d| d.merges.iter().any(|m| m.hand.is_some())) =>
            {
                // The device that holds the map: its join has a slice of its own.
                let holder = self
                    .devices
                    .iter()
                    .find(|d| {
                        d.merges
                            .iter()
                            .any(|m| m.hand.is_none() && m.runs.len() == 1 && m.slices[m.pos] > 0)
                    })
                    .map_or(0, |d| d.index);
                format!(
                    "takes its input map from device {holder}, on the same devices: the other devices hand their part of the system before it (partial sums, or tiles) on towards it, and it sends the map (after any layers it runs between the stacks) to every other device, each {}",
                    match self.strategy {
                        Strategy::Filters => "taking all of it",
                        Strategy::Channels => "keeping its channels of it",
                        _ => "keeping the part its tile reads",
                    }
                )
            }
            None if self.devices.iter().any(|d| d.merges.iter().any(|m| m.strips)) => {
                "takes its input map as the tiles of the stack before it, on the same devices, each device sending its tile to every other one".to_string()
            }
            None if self.before_summary.is_some() => {
                "takes its input map as the channel slices of the filters stack before it, on the same devices, each device sending its slice of every pixel to every other one".to_string()
            }
            None => format!("reads {:.2}x the input", f.input_factor),
        };
        let main = format!("the {what} and {input}{rest}");
        Some(match &self.before_summary {
            Some(b) => format!("{main}; before it, {b}"),
            None => main,
        })
    }

    /// Values sent over links per frame, summed over devices (each value once, however many
    /// hops it takes).
    pub fn link_values(&self) -> usize {
        self.devices.iter().map(CnnDevice::link_values).sum()
    }

    /// Link bytes per frame: every frame's header, payload and trailer beats, each value sent
    /// once by its device (a device sends its output per frame as runs of at most the frame
    /// format's h values).
    pub fn link_bytes_per_frame(&self) -> u64 {
        let f = &self.frame;
        self.devices
            .iter()
            .flat_map(|d| d.runs())
            .map(|r| r.beats(f))
            .sum::<u64>()
            * (f.link_width as u64 / 8)
    }

    /// Cycles per frame: the slowest device's (its stages, gather or reduction, and its
    /// framer: [`CnnSystem::send_cycles`]), or the busiest link's beats per frame (a link
    /// carries one beat per cycle).
    pub fn cycles_per_frame(&self) -> u64 {
        self.stream_pace().max(
            self.devices
                .iter()
                .map(|d| self.send_cycles(d))
                .max()
                .unwrap_or(0),
        )
    }

    /// The slowest device's streams and the busiest link, without the framers' gaps: the pace
    /// the engines are folded to.
    fn stream_pace(&self) -> u64 {
        self.devices
            .iter()
            .map(CnnDevice::cycles_per_frame)
            .max()
            .unwrap_or(1)
            .max(self.link_loads().into_iter().max().unwrap_or(0))
    }

    /// Cycles a device's framer takes per frame to send its runs: its fill side packs each
    /// run once, a value per cycle and [`FRAME_GAP`] cycles per link frame, while its send side
    /// sends every copy (an all-gather's run goes to each other device) a beat per cycle and
    /// [`SEND_GAP`] cycles per frame copy.
    ///
    /// On a chain or ring a device's ports also forward other devices' frames, ahead of its
    /// own, and its framer sends its copies in turn, so a copy waits while its port forwards:
    /// with `own[p]` cycles of copies and `fwd[p]` forwarded beats per frame on port `p`, a
    /// frame of `t` cycles leaves port `p` free `t - fwd[p]` of them, and the copies take
    /// `t` when `sum own[p] / (t - fwd[p]) = 1` (all of `own + fwd` on one port; `own` alone
    /// when the forwarding is on the other port).
    pub fn send_cycles(&self, d: &CnnDevice) -> u64 {
        let runs = d.runs();
        let mut tags: Vec<u8> = Vec::new();
        let mut fill = 0u64;
        let fwd = self.forwarded_beats(d.index);
        let mut own = [0u64; 2];
        for r in &runs {
            let frames = r.frames(&self.frame);
            own[tx_port(d.index, r.dst, self.switched, self.topology)] +=
                r.beats(&self.frame) + SEND_GAP * frames;
            if !tags.contains(&r.tag) {
                tags.push(r.tag);
                fill += r.total() as u64 + FRAME_GAP * frames;
            }
        }
        // The smallest t with sum own[p] / (t - fwd[p]) <= 1, by bisection.
        let busy = |t: u64| -> bool {
            own.iter()
                .zip(&fwd)
                .filter(|(o, _)| **o > 0)
                .map(|(o, f)| {
                    if t <= *f {
                        f64::INFINITY
                    } else {
                        *o as f64 / (t - f) as f64
                    }
                })
                .sum::<f64>()
                > 1.0
        };
        let (mut lo, mut hi) = (0u64, own.iter().chain(&fwd).sum::<u64>());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if busy(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        fill.max(lo)
    }

    /// Beats per frame device `dev` forwards on each of its tx ports: the frames of other
    /// devices' runs whose path passes through it (a chain or ring).
    fn forwarded_beats(&self, dev: usize) -> [u64; 2] {
        let mut fwd = [0u64; 2];
        if self.switched {
            return fwd;
        }
        let n = self.devices.len();
        for d in &self.devices {
            for r in d.runs() {
                let mut at = d.index;
                while at != r.dst {
                    at = next_hop(n, at, r.dst, self.topology);
                    if at == dev && at != r.dst {
                        fwd[tx_port(dev, r.dst, false, self.topology)] += r.beats(&self.frame);
                    }
                }
            }
        }
        fwd
    }

    /// Beats per frame on each directed link (each switch channel, when switched): every
    /// device's frames along their path (the chain towards the destination, the ring one way
    /// round, a switched system up to the switch and down).
    pub fn link_loads(&self) -> Vec<u64> {
        let n = self.devices.len();
        let mut load = vec![
            0u64;
            if self.switched {
                2 * n
            } else {
                self.links.len()
            }
        ];
        for (from, to, beats) in self.devices.iter().flat_map(|d| {
            d.runs()
                .into_iter()
                .map(move |r| (d.index, r.dst, r.beats(&self.frame)))
        }) {
            let d = &self.devices[from];
            if self.switched {
                load[d.index] += beats;
                load[n + to] += beats;
                continue;
            }
            let mut at = d.index;
            while at != to {
                let next = next_hop(n, at, to, self.topology);
                if let Some(i) = self
                    .links
                    .iter()
                    .position(|l| l.from.0 == at && l.to.0 == next)
                {
                    load[i] += beats;
                }
                at = next;
            }
        }
        load
    }

    /// The system a plan describes. With `strategy = "fused"` for every layer (the plan's
    /// default with no overrides), the stack is chosen: of the window layers before the first
    /// flatten or dense layer, the prefix whose system has the fewest cycles per frame (a
    /// longer stack recomputes more, and its last map may have too few rows to split); the
    /// layers after it run on the first device.
    pub fn new(design: &Design) -> Result<CnnSystem, String> {
        let ModelDesign::Cnn(m) = &design.model else {
            return Err("not a CNN design".into());
        };
        let first = design.plan.layers.first().map(|a| a.strategy);
        let all_same = design.plan.layers.iter().all(|a| Some(a.strategy) == first);
        // `filters` or `channels` alone (no overrides): the stack is chosen. Overrides that
        // give every layer `filters` split every layer (all-gathered before each weight layer
        // after the first).
        let alone = design.plan.plan.partition.overrides.is_empty();
        if all_same && alone && matches!(first, Some(Strategy::Filters | Strategy::Channels)) {
            return CnnSystem::channel_split_auto(design, m);
        }
        let all_fused = matches!(first, Some(Strategy::Fused | Strategy::Tiles)) && all_same;
        if !all_fused {
            return CnnSystem::build(design);
        }
        let window_end = m
            .layers
            .iter()
            .position(|l| matches!(l, CnnLayer::Flatten | CnnLayer::Dense { .. }))
            .unwrap_or(m.layers.len());
        // Stack ends: each conv2d or maxpool layer before the first flatten or dense one
        // (with its ReLU), deepest first.
        let ends: Vec<usize> = (0..window_end)
            .rev()
            .filter(|&e| {
                matches!(
                    m.layers[e],
                    CnnLayer::Conv2d { .. } | CnnLayer::Maxpool { .. }
                )
            })
            .map(|e| with_relu(&m.layers, e))
            .collect();
        let (best, why) = CnnSystem::fastest_stack(design, &ends);
        best.ok_or_else(|| {
            why.unwrap_or_else(|| {
                "strategy \"fused\" needs conv2d or maxpool layers before the first flatten or dense layer".into()
            })
        })
    }

    /// `strategy = "filters"` for every layer (the CNN default): the stack is the first conv2d
    /// or dense layer, with or without the maxpools (and ReLUs) up to the next weight layer,
    /// whichever system has fewer cycles per frame; the layers after it run on the first
    /// device. `strategy = "channels"` alone: the first conv2d or dense layer and its ReLU.
    fn channel_split_auto(
        design: &Design,
        m: &crate::design::CnnDesign,
    ) -> Result<CnnSystem, String> {
        let channels = design.plan.layers[0].strategy == Strategy::Channels;
        let weight = |l: &CnnLayer| matches!(l, CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. });
        let Some(w0) = m.layers.iter().position(weight) else {
            return Err(format!(
                "strategy \"{}\" needs a conv2d or dense layer",
                design.plan.layers[0].strategy
            ));
        };
        // Stack ends: the weight layer, then each maxpool right after it (`filters`).
        let mut ends = vec![with_relu(&m.layers, w0)];
        while let Some(next) = ends.last().map(|e| e + 1).filter(|&next| {
            !channels && matches!(m.layers.get(next), Some(CnnLayer::Maxpool { .. }))
        }) {
            ends.push(with_relu(&m.layers, next));
        }
        let (best, why) = CnnSystem::fastest_stack(design, &ends);
        best.ok_or_else(|| why.unwrap_or_else(|| "no stack applies".into()))
    }

    /// Of the stacks ending at each of `ends` (the plan's first strategy up to that layer, the
    /// layers after it `layers` on the stack's first device), the system with the fewest
    /// cycles per frame (the first of equals), and the first refusal.
    fn fastest_stack(design: &Design, ends: &[usize]) -> (Option<CnnSystem>, Option<String>) {
        let head = design.plan.layers[0].devices[0];
        let mut best: Option<CnnSystem> = None;
        let mut why: Option<String> = None;
        for &end in ends {
            let mut v = design.clone();
            for (l, a) in v.plan.layers.iter_mut().enumerate() {
                if l > end {
                    a.strategy = Strategy::Layers;
                    a.devices = vec![head];
                }
            }
            match CnnSystem::build(&v) {
                Ok(sys) => {
                    if best
                        .as_ref()
                        .is_none_or(|b| sys.cycles_per_frame() < b.cycles_per_frame())
                    {
                        best = Some(sys);
                    }
                }
                Err(err) => {
                    why.get_or_insert(err);
                }
            }
        }
        (best, why)
    }

    fn build(design: &Design) -> Result<CnnSystem, String> {
        let sys = Self::build_raw(design)?;
        Self::finish(design, sys)
    }

    /// The system before [`CnnSystem::finish`]: each device's engines folded to its own
    /// stages only.
    fn build_raw(design: &Design) -> Result<CnnSystem, String> {
        let ModelDesign::Cnn(m) = &design.model else {
            return Err("not a CNN design".into());
        };
        let n = design.plan.devices;
        if n < 2 {
            return Err("a CNN system has at least two devices".into());
        }
        if n > frame::MAX_DEVICES {
            return Err(format!(
                "the plan has {n} devices; generated link frames address at most {}",
                frame::MAX_DEVICES
            ));
        }
        let whole = CnnArch::whole(design)?;
        let layers = &design.plan.layers;
        let strategies: Vec<Strategy> = layers.iter().map(|a| a.strategy).collect();
        let spatial = |s: &Strategy| matches!(s, Strategy::Fused | Strategy::Tiles);
        // A split stack after another one: the system up to it, built on its own.
        // The last of them: the system before it may itself end in a stack after a stack.
        let weights: Vec<bool> = m
            .layers
            .iter()
            .map(|l| matches!(l, CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. }))
            .collect();
        let mut last = None;
        while let Some(b) = later_stack(&layers[last.unwrap_or(0)..], &weights[last.unwrap_or(0)..])
        {
            last = Some(last.unwrap_or(0) + b);
        }
        if let Some(b) = last.filter(|b| shares_devices(layers, *b)) {
            return shared_stacks(design, b);
        }
        let prefix = match last {
            Some(b) => Some(Prefix::new(design, &whole, b)?),
            None => None,
        };
        let first = prefix.as_ref().map_or(0, |p| p.layer);
        let fused_n = strategies[first..].iter().filter(|s| spatial(s)).count();
        // A split stack after `lead` layers of strategy `layers` (pipelined; the last of them
        // sends its map to the stack: a copy to each device for `filters`, each device its
        // channels for `channels`, its tile for `fused` and `tiles`).
        let lead = first
            + strategies[first..]
                .iter()
                .take_while(|s| **s == Strategy::Layers)
                .count();
        let lead = if prefix.is_some() {
            first
        } else if matches!(
            strategies.get(lead),
            Some(Strategy::Filters | Strategy::Channels | Strategy::Fused | Strategy::Tiles)
        ) {
            lead
        } else {
            0
        };
        let filt_n = strategies[lead..]
            .iter()
            .take_while(|s| **s == Strategy::Filters)
            .count();
        let chan_n = strategies[lead..]
            .iter()
            .take_while(|s| **s == Strategy::Channels)
            .count();
        // Channels layers right after a filters stack: split by the same channels.
        let tiles = strategies.get(lead) == Some(&Strategy::Tiles);
        let chan_after = if filt_n > 0 {
            strategies[lead + filt_n..]
                .iter()
                .take_while(|s| **s == Strategy::Channels)
                .count()
        } else {
            0
        };
        let built = "multi-device CNN hardware is built for `fused` and `tiles` (a stack of \
                     conv2d/maxpool layers in row strips or a grid of tiles), \
                     `filters` (the output channels of the first conv2d or dense layers, with \
                     the maxpools after them, all-gathered per pixel before each weight layer \
                     after the first and gathered per pixel at the end, or fused into the next \
                     weight layer split by `channels`), \
                     `channels` (one conv2d or dense layer's input channels, partial sums \
                     reduced down a chain and rounded once on the first device), each with the \
                     layers after it on the stack's first device or pipelined on devices of their \
                     own (`layers`); a split stack may also follow layers of strategy `layers` \
                     on other devices, or ending on one of the stack's devices, the last of which \
                     multicasts (filters) or scatters (channels: each device its channels; fused \
                     and tiles: each device its tile's input) its map to the stack; a split stack may follow another one (and the \
                     layers after that), on devices after the first one's, whose last device \
                     sends it its map the same way, or on the devices of a fused, tiled or filters \
                     stack (from the input, or fed by layers on devices of their own), any split stack (the stack's tiles or channel slices \
                     all-gathered, each device cropping its part; a dense layer by channels split \
                     by the stack's tiles); \
                     and `layers` (whole layers per device)";
        if let Some((l, s)) = strategies.iter().enumerate().skip(first).find(|(l, s)| {
            !matches!(s, Strategy::Fused | Strategy::Tiles | Strategy::Layers)
                && !(**s == Strategy::Filters && (lead..lead + filt_n).contains(l))
                && !(**s == Strategy::Channels && (lead..lead + chan_n).contains(l))
                && !(**s == Strategy::Channels
                    && (lead + filt_n..lead + filt_n + chan_after).contains(l))
        }) {
            return Err(format!(
                "layer {l} uses strategy \"{s}\", which is not built yet for CNNs over several devices; {built}"
            ));
        }
        if design.plan.plan.partition.grid.is_some() && !strategies.iter().any(spatial) {
            return Err(format!(
                "[partition] grid cuts a fused or tiled stack into tiles, but no layer here is fused or tiled (strategy \"{}\"); give the stack strategy \"fused\" or \"tiles\", or remove `grid`",
                strategies.first().map_or("", |s| s.name())
            ));
        }
        let t = &design.plan.plan.target.link;
        let (ports, links, switched) = wiring(n, t.topology, t.mode);
        let lw = t.width as u32;
        let mut sys = CnnSystem {
            strategy: if filt_n > 0 {
                Strategy::Filters
            } else if chan_n > 0 {
                Strategy::Channels
            } else if fused_n > 0 && tiles {
                Strategy::Tiles
            } else if fused_n > 0 {
                Strategy::Fused
            } else {
                Strategy::Layers
            },
            whole: whole.clone(),
            devices: Vec::new(),
            links,
            switched,
            topology: t.topology,
            mode: t.mode,
            latency: t.latency as u32,
            frame: frame::Format {
                link_width: lw,
                h_width: 1,
                psum_width: 1,
            },
            link: LinkWidths::new(&frame::Format {
                link_width: lw,
                h_width: 1,
                psum_width: 1,
            }),
            out_device: 0,
            fused: None,
            before: Vec::new(),
            before_summary: None,
        };
        let mk = |index: usize,
                  arch: CnnArch,
                  source: Source,
                  gather: Option<Gather>,
                  sink: Sink|
         -> CnnDevice {
            let routes = routes(n, index, switched, t.topology);
            CnnDevice {
                index,
                arch,
                source,
                gathers: gather.into_iter().collect(),
                sink,
                also: Vec::new(),
                ports: ports[index].clone(),
                routes,
                exchanges: Vec::new(),
                reduces: Vec::new(),
                merges: Vec::new(),
                scatter: None,
                tap: None,
                in_tag: 0,
                in_flight: 0,
                host_channels: (0, whole.input.c),
                host_cols: (0, whole.input.w),
            }
        };
        if filt_n > 0 {
            let pre = match &prefix {
                Some(p) => p.runs(&whole),
                None => runs_before(&whole, layers, lead, Strategy::Filters)?,
            };
            let (devices, stack) =
                filters_stack(design, &whole, lead, &pre, filt_n, chan_after, switched, mk)?;
            sys.out_device = stack.after.last().copied().unwrap_or(stack.head);
            sys.fused = Some(stack);
            sys.devices = devices;
        } else if chan_n > 0 {
            let pre = match &prefix {
                Some(p) => p.runs(&whole),
                None => runs_before(&whole, layers, lead, Strategy::Channels)?,
            };
            let (devices, stack) =
                channels_stack(design, &whole, lead, &pre, chan_n, switched, mk)?;
            sys.out_device = stack.after.last().copied().unwrap_or(stack.head);
            sys.fused = Some(stack);
            sys.devices = devices;
        } else if fused_n > 0 {
            // The stack: the fused layers, which must open the network (or follow the `lead`
            // layers, pipelined) and hold only window layers (conv2d, maxpool, relu).
            let kind = strategies[lead];
            if !spatial(&kind) || strategies[lead..lead + fused_n].iter().any(|s| *s != kind) {
                return Err(format!(
                    "the fused (or tiled) layers must be one run of layers of one strategy, from the input or after layers of strategy \"layers\"; {built}"
                ));
            }
            // With `strategy = "fused"` alone every layer says fused: the stack is then the
            // window layers before the first flatten or dense layer, and the rest runs after it.
            let stack_end = m
                .layers
                .iter()
                .position(|l| matches!(l, CnnLayer::Flatten | CnnLayer::Dense { .. }))
                .unwrap_or(m.layers.len())
                .min(lead + fused_n);
            if stack_end <= lead {
                return Err(
                    "strategy \"fused\" needs conv2d or maxpool layers before the first flatten or dense layer"
                        .into(),
                );
            }
            let devs = layers[lead].devices.clone();
            if layers[lead..stack_end].iter().any(|a| a.devices != devs) {
                return Err("every layer of a fused stack must name the same devices".into());
            }
            if devs.len() < 2 {
                return Err("a fused stack needs at least two devices".into());
            }
            let gather_dev = devs[0];
            // On a one-way ring of three or more, the strips go round against the ring's
            // direction, so each device's frames reach the one it sends to in one hop (when
            // the stack has every device).
            let mut devs = devs;
            if !switched && t.topology == Topology::Ring && devs.len() > 2 {
                devs.sort_by_key(|d| (gather_dev + n - d) % n);
            }
            // The layers before the stack, pipelined; the last of them scatters its map.
            let pre = match &prefix {
                Some(p) => p.runs(&whole),
                None => runs_before(&whole, layers, lead, kind)?,
            };
            let pre_devs: Vec<usize> = pre.iter().map(|r| r.0).collect();
            let feed = pre.last().map(|r| r.0);
            // The device that ends those layers may run a tile of the stack too (it keeps its
            // own box of the map it scatters: `Tap`); an earlier one would run two separate
            // runs of layers.
            if let Some(d) = devs
                .iter()
                .find(|d| pre_devs.contains(d) && Some(**d) != feed)
            {
                return Err(format!(
                    "device {d} runs layers before the {kind} stack, passes the map on, and runs a tile of the stack; a device runs one run of layers: give the stack the device that ends those layers (device {}) or devices of their own",
                    feed.unwrap_or(0)
                ));
            }
            let ns = whole
                .stages
                .iter()
                .position(|s| s.layer >= stack_end)
                .unwrap_or(whole.stages.len());
            let s0 = whole
                .stages
                .iter()
                .position(|s| s.layer >= lead)
                .unwrap_or(whole.stages.len());
            if ns <= s0
                || whole.stages[s0..ns]
                    .iter()
                    .any(|s| s.kind_name() == "dense")
            {
                return Err(format!(
                    "the {kind} stack (layers {lead}-{}) has no conv2d or maxpool layer; give it one, or run those layers with strategy \"layers\"",
                    stack_end - 1
                ));
            }
            // The map the stack reads: the image, or the map of the layers before it.
            let map_in = whole.stages[s0].input;
            let after = Tail::new(design, &whole, ns, kind, &devs, &pre_devs)?;
            let last = &whole.stages[ns - 1];
            let h_out = last.output.h;
            let w_out = last.output.w;
            // The tile grid: rows x columns of the stack's last output map, tiles numbered
            // row by row along the gather chain (one column of row strips by default).
            let (gr, gc) = match design.plan.plan.partition.grid.as_deref() {
                Some([r, c]) => (*r as usize, *c as usize),
                _ => (devs.len(), 1),
            };
            if gr * gc != devs.len() {
                return Err(format!(
                    "a {gr} x {gc} grid has {} tiles, but the fused stack runs on {} devices; give it one tile per device",
                    gr * gc,
                    devs.len()
                ));
            }
            if gr > h_out {
                return Err(format!(
                    "strategy \"{kind}\" splits the stack's {h_out} output rows (layer {}) into {gr} strips; use at most {h_out} {}",
                    last.layer,
                    if gc > 1 { "tile rows" } else { "devices for it" }
                ));
            }
            if gc > w_out {
                return Err(format!(
                    "strategy \"{kind}\" splits the stack's {w_out} output columns (layer {}) into {gc} tile columns; use at most {w_out}",
                    last.layer
                ));
            }
            let strips = crate::passes::partition::split(h_out, gr);
            let col_strips = crate::passes::partition::split(w_out, gc);
            let c_out = last.output.c;
            let mut done_macs = 0u64;
            let mut stage_done = vec![0u64; ns - s0];
            let mut boxes = Vec::new();
            let mut in_vals = 0usize;
            let mut strip_rows = Vec::new();
            let mut built_devs: Vec<Option<CnnDevice>> = vec![None; n];
            let mut sent_below = 0usize;
            for (k, &dev) in devs.iter().enumerate().rev() {
                let (ti, tj) = (k / gc, k % gc);
                let r = &strips[ti];
                let cr = &col_strips[tj];
                let (mut a, mut b) = (r.start, r.end - 1);
                let (mut ca, mut cb) = (cr.start, cr.end - 1);
                strip_rows.push((a, b));
                let mut stages: Vec<Stage> = Vec::with_capacity(ns - s0);
                let mut exchanges = Vec::new();
                if tiles {
                    // Every stage on the device's own tile of its output (rows of its tile
                    // row, columns of its tile column: whole rows on one column of strips);
                    // the input rows and columns a tile needs beyond its own come from the
                    // neighbours.
                    let own = |i: usize, t: usize, across: bool| -> (usize, usize) {
                        let o = &whole.stages[i].output;
                        let (len, parts) = if across { (o.w, gc) } else { (o.h, gr) };
                        let r = &crate::passes::partition::split(len, parts)[t];
                        (r.start, r.end.max(r.start + 1) - 1)
                    };
                    let need = |i: usize, t: usize, across: bool| -> (usize, usize) {
                        let st = &whole.stages[i];
                        let (a, b) = own(i, t, across);
                        let w = st.window;
                        let len = if across { st.input.w } else { st.input.h };
                        super::cnn::input_rows(a, b, w.k, w.s, w.p, len)
                    };
                    for i in s0..ns {
                        let st = &whole.stages[i];
                        if st.output.h < gr {
                            return Err(if gc > 1 {
                                format!(
                                    "strategy \"tiles\" splits layer {}'s {} output rows into {gr} tile rows; use at most {} tile rows, or end the tiled stack before it",
                                    st.layer, st.output.h, st.output.h
                                )
                            } else {
                                format!(
                                    "strategy \"tiles\" splits layer {}'s {} output rows over {gr} devices; use at most {} devices, or end the tiled stack before it",
                                    st.layer, st.output.h, st.output.h
                                )
                            });
                        }
                        if st.output.w < gc {
                            return Err(format!(
                                "strategy \"tiles\" splits layer {}'s {} output columns into {gc} tile columns; use at most {} tile columns, or end the tiled stack before it",
                                st.layer, st.output.w, st.output.w
                            ));
                        }
                        let (oa, ob) = own(i, ti, false);
                        if gc == 1 {
                            stages.push(st.on_rows(oa, ob));
                        } else {
                            stages.push(st.on_tile((oa, ob), own(i, tj, true)));
                        }
                        if i == s0 {
                            (a, b) = need(s0, ti, false);
                            (ca, cb) = if gc > 1 {
                                need(s0, tj, true)
                            } else {
                                (0, st.input.w - 1)
                            };
                            continue;
                        }
                        // On a grid the columns first (each row of the tile widened by the
                        // columns its left and right neighbours send), then the rows of the
                        // widened tile: the rows a device above or below sends carry the
                        // corners.
                        let c_in = st.input.c;
                        if gc > 1 {
                            let prev_rows = own(i - 1, ti, false);
                            exchanges.push(halo(HaloAxis {
                                stage: i - s0,
                                layer: st.layer,
                                dev,
                                pos: tj,
                                parts: gc,
                                own: &|t| own(i - 1, t, true),
                                need: &|t| need(i, t, true),
                                unit: c_in,
                                periods: prev_rows.1 - prev_rows.0 + 1,
                                before: (tj > 0).then(|| devs[k - 1]),
                                after: (tj + 1 < gc).then(|| devs[k + 1]),
                                across: true,
                            })?);
                        }
                        let (cl, ch) = if gc > 1 {
                            need(i, tj, true)
                        } else {
                            (0, st.input.w - 1)
                        };
                        exchanges.push(halo(HaloAxis {
                            stage: i - s0,
                            layer: st.layer,
                            dev,
                            pos: ti,
                            parts: gr,
                            own: &|t| own(i - 1, t, false),
                            need: &|t| need(i, t, false),
                            unit: (ch - cl + 1) * c_in,
                            periods: 1,
                            before: (ti > 0).then(|| devs[k - gc]),
                            after: (ti + 1 < gr).then(|| devs[k + gc]),
                            across: false,
                        })?);
                    }
                } else {
                    for st in whole.stages[s0..ns].iter().rev() {
                        let s = st.on_tile((a, b), (ca, cb));
                        let w = st.window;
                        (a, b) = super::cnn::input_rows(a, b, w.k, w.s, w.p, st.input.h);
                        (ca, cb) = super::cnn::input_rows(ca, cb, w.k, w.s, w.p, st.input.w);
                        stages.push(s);
                    }
                    stages.reverse();
                }
                done_macs += stages.iter().map(|s| s.macs).sum::<u64>();
                for (d, s) in stage_done.iter_mut().zip(&stages) {
                    *d += stage_work(s);
                }
                let input = stages[0].input;
                in_vals += input.values();
                boxes.push([(a, b + 1), (ca, cb + 1), (0, map_in.c)]);
                let local = stages[ns - s0 - 1].output.values();
                let gather = (k + 1 < devs.len()).then(|| {
                    if gc == 1 {
                        // Row strips: this strip, then every strip below it.
                        Gather {
                            after: ns - s0,
                            local,
                            remote: sent_below,
                            from: devs[k + 1],
                            periods: 1,
                            tail: 0,
                            frames: if tiles {
                                tiles_in_flight(ns - s0) + 1
                            } else {
                                1
                            },
                            tag: 0,
                        }
                    } else {
                        // A grid, gathered in raster order: per output row of this tile,
                        // its columns then those of the tiles to its right; then the whole
                        // rows of the tile rows below.
                        let rows = r.end - r.start;
                        Gather {
                            after: ns - s0,
                            local: cr.len() * c_out,
                            remote: (w_out - cr.end) * c_out,
                            from: devs[k + 1],
                            periods: rows,
                            tail: (h_out - r.end) * w_out * c_out,
                            // The next tile is the right neighbour, or at a row's end the
                            // first tile of the next row, `gc` neighbours away.
                            frames: if tiles {
                                tiles_in_flight(ns - s0) * if tj + 1 < gc { 1 } else { gc } + 1
                            } else {
                                1
                            },
                            tag: 0,
                        }
                    }
                });
                let (sink, tail) = if k == 0 {
                    (after.head_sink(), after.head.clone())
                } else {
                    (Sink::Link { to: devs[k - 1] }, Vec::new())
                };
                let mut all = stages;
                all.extend(tail);
                let all = refold(design, dev, all, (local + sent_below) as u64, 0)?;
                // Values per frame to a link: the gathered strips, or the map of the last
                // layer the first device runs after the stack.
                let out_vals = match after.head.last() {
                    Some(st) if k == 0 => st.output.values(),
                    _ => local + sent_below,
                };
                let arch = device_arch(
                    &whole,
                    all,
                    feed.is_none(),
                    input,
                    matches!(sink, Sink::Link { .. }).then_some(out_vals),
                );
                sent_below += local;
                let source = match feed {
                    Some(from) => Source::Link { from },
                    None => Source::Host { lo: a, hi: b },
                };
                let mut built = mk(dev, arch, source, gather, sink);
                if feed.is_some() {
                    // Its tile comes in the scatter's frames of tag k + 1.
                    built.in_tag = k as u8 + 1;
                } else if !tiles || gc > 1 {
                    built.host_cols = (ca, cb + 1);
                }
                if tiles {
                    built.in_flight = tiles_in_flight(ns - s0);
                }
                built.exchanges = exchanges;
                built_devs[dev] = Some(built);
            }
            strip_rows.reverse();
            boxes.reverse();
            if tiles {
                halo_tags(&devs, &mut built_devs)?;
            }
            // The work needed: each stage on the rows and columns the stack's output reads
            // (a stride or pool that drops the last rows or columns leaves them unread).
            let mut stage_need = vec![0u64; ns - s0];
            let mut need = 0u64;
            {
                let out = whole.stages[ns - 1].output;
                let (mut a, mut b, mut ca, mut cb) = (0, out.h - 1, 0, out.w - 1);
                for (j, st) in whole.stages[s0..ns].iter().enumerate().rev() {
                    let cut = st.on_tile((a, b), (ca, cb));
                    need += cut.macs;
                    stage_need[j] = stage_work(&cut);
                    let w = st.window;
                    (a, b) = super::cnn::input_rows(a, b, w.k, w.s, w.p, st.input.h);
                    (ca, cb) = super::cnn::input_rows(ca, cb, w.k, w.s, w.p, st.input.w);
                }
            }
            sys.fused = Some(FusedStack {
                from: lead,
                first_stage: s0,
                feed,
                layers: stack_end - lead,
                stages: ns - s0,
                strips: strip_rows,
                grid: (gr, gc),
                stage_recompute: stage_done
                    .iter()
                    .zip(&stage_need)
                    .map(|(d, s)| *d as f64 / (*s).max(1) as f64)
                    .collect(),
                recompute: done_macs as f64 / need.max(1) as f64,
                input_factor: in_vals as f64 / map_in.values() as f64,
                head: gather_dev,
                after: after.devices(gather_dev),
                by_tiles: false,
            });
            pipeline(
                design,
                &whole,
                &after.runs,
                Some(gather_dev),
                &[],
                &mk,
                &mut built_devs,
            )?;
            if let Some(f) = feed {
                // The device before the stack scatters its map: each device the rows and
                // columns of its tile's input (its first layer's receptive field), frames
                // tagged by the device's place in the stack.
                let sc = Scatter {
                    map: map_in,
                    devs: devs.clone(),
                    boxes,
                    tag0: 1,
                };
                feed_stack(
                    design,
                    &whole,
                    &pre,
                    f,
                    sc,
                    false,
                    kind,
                    &mk,
                    &mut built_devs,
                )?;
            }
            sys.out_device = after.out_device(gather_dev);
            sys.devices = built_devs
                .into_iter()
                .map(|d| d.expect("every device"))
                .collect();
        } else {
            // Layers: each stage on its layer's device; consecutive runs pass the map on.
            let runs = layer_runs(layers, &whole.stages, None)?;
            if runs.len() != n {
                let idle: Vec<usize> = (0..n)
                    .filter(|d| !runs.iter().any(|(rd, _)| rd == d))
                    .collect();
                return Err(format!(
                    "with strategy \"layers\", device(s) {idle:?} run no conv2d, dense or maxpool layer; give every device a layer or use fewer devices"
                ));
            }
            sys.out_device = runs.last().map(|r| r.0).unwrap_or(0);
            let mut built_devs: Vec<Option<CnnDevice>> = vec![None; n];
            pipeline(design, &whole, &runs, None, &[], &mk, &mut built_devs)?;
            sys.devices = built_devs
                .into_iter()
                .map(|d| d.expect("every device"))
                .collect();
        }
        if let Some(p) = prefix {
            p.place(&mut sys)?;
        }
        Ok(sys)
    }

    /// Every device at the system's pace, and the frame format.
    fn finish(design: &Design, mut sys: CnnSystem) -> Result<CnnSystem, String> {
        let lw = design.plan.plan.target.link.width as u32;
        // Every device at the system's pace: engines that would only idle are taken back.
        let pace = sys.stream_pace();
        for d in &mut sys.devices {
            let extra = d.stream_values();
            let stages = refold(
                design,
                d.index,
                std::mem::take(&mut d.arch.stages),
                extra,
                pace,
            )?;
            d.arch.cycles_per_frame = stages.iter().map(|s| s.cycles).max().unwrap_or(1);
            d.arch.stages = stages;
        }
        // The frame format: values sign-extended to the widest value any device sends.
        let dw = sys
            .devices
            .iter()
            .filter(|d| matches!(d.sink, Sink::Link { .. }))
            .map(|d| d.arch.dw_out)
            .chain(sys.devices.iter().flat_map(|d| {
                // Partial sums handed on to the next stack's devices (`Merge::hand`).
                d.merges
                    .iter()
                    .filter(|m| m.hand.is_some())
                    .filter_map(|m| d.arch.stages.get(m.stage.wrapping_sub(1)))
                    .map(|s| s.dw_out)
            }))
            .chain(sys.devices.iter().filter_map(|d| {
                // A map scattered between a device's own stages.
                d.tap
                    .as_ref()
                    .and_then(|t| d.arch.stages.get(t.at.wrapping_sub(1)))
                    .map(|s| s.dw_out)
            }))
            .max()
            .unwrap_or(8);
        if !(frame::MIN_LINK_WIDTH..=frame::MAX_LINK_WIDTH).contains(&lw) {
            return Err(format!(
                "[target.link] width is {lw} bits; generated link ports carry {} to {} bits per beat",
                frame::MIN_LINK_WIDTH,
                frame::MAX_LINK_WIDTH
            ));
        }
        sys.frame = frame::Format {
            link_width: lw,
            h_width: dw,
            psum_width: dw,
        };
        sys.link = LinkWidths::new(&sys.frame);
        Ok(sys)
    }
}

/// The one rounding of MVU stage `st` (`m`) reduced from partial sums: its bias per output
/// channel, its requantization and ReLU.
fn finish_of(st: &Stage, m: &super::cnn::Mvu) -> Finish {
    Finish {
        layer: st.layer,
        bias: (0..m.cout).map(|o| m.bias[o % m.pe][o / m.pe]).collect(),
        bias_shift: m.bias_shift,
        shr: m.shr,
        shl: m.shl,
        dw_out: st.dw_out,
        relu: st.relu_out,
    }
}

/// Layer `e`, or the ReLU right after it: where a stack ending at `e` ends.
fn with_relu(layers: &[CnnLayer], e: usize) -> usize {
    if matches!(layers.get(e + 1), Some(CnnLayer::Relu)) {
        e + 1
    } else {
        e
    }
}

/// What the two channel splits (`filters`, `channels`) of the network's first weight layer
/// share: their devices in chain order (the first the gatherer or finisher; on a one-way ring
/// of three or more, against the ring's direction, so each hop is one link), the stack's
/// stage count, and its first stage, an MVU.
struct SplitStart<'a> {
    devs: Vec<usize>,
    ns: usize,
    first: &'a Stage,
    m: &'a super::cnn::Mvu,
    after: Tail,
}

/// The checks both channel splits make: every stack layer (layers `lead..lead + count`) on the
/// same devices, none of them one of `pre` (the devices that run the layers before it), the
/// layers after it on the first device or devices of their own, and a conv2d or dense layer
/// first.
fn split_start<'a>(
    design: &Design,
    whole: &'a CnnArch,
    lead: usize,
    count: usize,
    kind: Strategy,
    switched: bool,
    pre: &[usize],
) -> Result<SplitStart<'a>, String> {
    let layers = &design.plan.layers;
    let n = design.plan.devices;
    let t = &design.plan.plan.target.link;
    let what = if kind == Strategy::Filters {
        "output"
    } else {
        "input"
    };
    let devs = layers[lead].devices.clone();
    if layers[lead..lead + count].iter().any(|a| a.devices != devs) {
        return Err(format!(
            "every layer of the {kind} stack must name the same devices"
        ));
    }
    if devs.len() < 2 {
        return Err(format!(
            "the {kind} stack runs on {} device(s); it splits its {what} channels over at least two",
            devs.len()
        ));
    }
    let ns = whole
        .stages
        .iter()
        .position(|s| s.layer >= lead + count)
        .unwrap_or(whole.stages.len());
    let s0 = whole
        .stages
        .iter()
        .position(|s| s.layer >= lead)
        .unwrap_or(whole.stages.len());
    let Some(first) = whole.stages.get(s0).filter(|_| ns > s0) else {
        return Err(format!("the {kind} layers hold no conv2d or dense layer"));
    };
    let StageKind::Mvu(m) = &first.kind else {
        return Err(format!(
            "strategy \"{kind}\" splits the {what} channels of a conv2d or dense layer, but the network's first layer with hardware (layer {}) is a maxpool; run it with strategy \"layers\"",
            first.layer
        ));
    };
    let head = devs[0];
    let mut devs = devs;
    if !switched && t.topology == Topology::Ring && devs.len() > 2 {
        devs.sort_by_key(|d| (head + n - d) % n);
    }
    // The stack may hold the device that ends the layers before it (it keeps its own part of
    // the map it sends on: `Tap`).
    let feed = pre.last().copied();
    if let Some(d) = devs.iter().find(|d| pre.contains(d) && Some(**d) != feed) {
        return Err(format!(
            "device {d} runs layers before the {kind} stack, passes the map on, and runs a slice of the stack; a device runs one run of layers: give the stack the device that ends those layers (device {}) or devices of their own",
            feed.unwrap_or(0)
        ));
    }
    let after = Tail::new(design, whole, ns, kind, &devs, pre)?;
    Ok(SplitStart {
        devs,
        ns,
        first,
        m,
        after,
    })
}

/// `filters`: the first `filt_n` layers (one conv2d or dense layer, then maxpools and ReLUs)
/// on every device, each computing a slice of the conv2d's output channels (and the maxpools
/// on those channels) from the whole input, which the host sends to every device. The slices
/// are gathered per pixel down a chain to the first device (each device passes its own
/// channels, then the ones it received from the next), which runs the layers after the stack.
///
/// With `chan_n` layers of strategy `channels` after it (one conv2d or dense layer and its
/// ReLU), that layer is split by the same channels: each device computes its full-width
/// partial sums over the channels it holds, so nothing is sent between the two layers; the
/// sums are reduced down the chain and finished on the first device, as for `channels`.
#[allow(clippy::too_many_arguments)]
fn filters_stack(
    design: &Design,
    whole: &CnnArch,
    lead: usize,
    pre: &[(usize, Vec<Stage>)],
    filt_n: usize,
    chan_n: usize,
    switched: bool,
    mk: impl Fn(usize, CnnArch, Source, Option<Gather>, Sink) -> CnnDevice,
) -> Result<(Vec<CnnDevice>, FusedStack), String> {
    let n = design.plan.devices;
    let pre_devs: Vec<usize> = pre.iter().map(|r| r.0).collect();
    let SplitStart {
        devs,
        ns: end,
        after,
        ..
    } = split_start(
        design,
        whole,
        lead,
        filt_n + chan_n,
        Strategy::Filters,
        switched,
        &pre_devs,
    )?;
    // The filters stack's stages, from `s0` (the stages up to `end` include the channels
    // layer's); the device that sends it its input map, when layers run before it.
    let ns = whole
        .stages
        .iter()
        .position(|s| s.layer >= lead + filt_n)
        .unwrap_or(whole.stages.len());
    let s0 = whole
        .stages
        .iter()
        .position(|s| s.layer >= lead)
        .unwrap_or(whole.stages.len());
    let feed = pre.last().map(|r| r.0);
    // Each stage's split of its output channels over the devices: each conv2d or dense
    // layer's own, each maxpool's that of the layer before it.
    let nd = devs.len();
    let mut slicing: Vec<Vec<std::ops::Range<usize>>> = Vec::with_capacity(ns);
    let mut merges_at: Vec<usize> = Vec::new();
    for (i, st) in whole.stages[s0..ns].iter().enumerate() {
        match &st.kind {
            StageKind::Mvu(sm) => {
                if nd > sm.cout {
                    return Err(format!(
                        "strategy \"filters\" splits layer {}'s {} output channels over {nd} devices; use at most {} devices for it",
                        st.layer, sm.cout, sm.cout
                    ));
                }
                if i > 0 {
                    merges_at.push(i);
                }
                slicing.push(crate::passes::partition::split(sm.cout, nd));
            }
            StageKind::Pool => {
                let prev = slicing.last().cloned().unwrap_or_default();
                slicing.push(prev);
            }
        }
    }
    if merges_at.len() > 7 {
        return Err(format!(
            "strategy \"filters\" all-gathers the channels before {} layers; the link frame's 3-bit tag numbers at most 7: end the filters stack by layer {}",
            merges_at.len(),
            whole.stages[s0 + merges_at[7]].layer
        ));
    }
    let gather_dev = devs[0];
    let last = whole.stages[ns - 1].output;
    let pixels = last.h * last.w;
    // The layer split by the same channels after the stack, if any: its stage and finish.
    let next = if chan_n > 0 {
        let t = &design.plan.plan.target.link;
        let Some(b) = whole.stages.get(ns).filter(|_| end > ns) else {
            return Err(format!(
                "layers {filt_n}-{}: strategy \"channels\" after a filters stack needs a conv2d or dense layer",
                filt_n + chan_n - 1
            ));
        };
        let StageKind::Mvu(bm) = &b.kind else {
            return Err(format!(
                "layer {}: strategy \"channels\" after a filters stack splits a conv2d or dense layer by the channels the stack left on each device, but layer {} is a maxpool; give the maxpool strategy \"filters\" (it runs on each device's channels)",
                b.layer, b.layer
            ));
        };
        if let Some(st) = whole.stages.get(ns + 1).filter(|_| end > ns + 1) {
            return Err(format!(
                "layer {}: strategy \"channels\" after a filters stack covers one conv2d or dense layer (layer {}) and its ReLU: its outputs are finished on device {gather_dev}, so give layer {} and the rest strategy \"layers\" on device {gather_dev}",
                st.layer, b.layer, st.layer
            ));
        }
        if bm.accw > t.width as u32 {
            return Err(format!(
                "strategy \"channels\" sends layer {}'s {}-bit partial sums over the links, one per beat; [target.link] width is {} bits: use links of at least {} bits",
                b.layer, bm.accw, t.width, bm.accw
            ));
        }
        Some((b, finish_of(b, bm)))
    } else {
        None
    };
    let slices = &slicing[ns - s0 - 1];
    let mut built: Vec<Option<CnnDevice>> = vec![None; n];
    let mut below = 0usize;
    for (k, &dev) in devs.iter().enumerate().rev() {
        let r = &slices[k];
        let mut stages: Vec<Stage> = whole.stages[s0..ns]
            .iter()
            .zip(&slicing)
            .map(|(s, sl)| s.on_filters(sl[k].start, sl[k].end))
            .collect();
        let merges: Vec<Merge> = merges_at
            .iter()
            .enumerate()
            .map(|(t, &i)| {
                let prev = whole.stages[s0 + i - 1].output;
                Merge {
                    stage: i,
                    pixels: prev.h * prev.w,
                    devs: devs.clone(),
                    slices: slicing[i - 1].iter().map(|r| r.len()).collect(),
                    pos: k,
                    tag: t as u8 + 1,
                    strips: false,
                    runs: slicing[i - 1].iter().map(|r| r.len()).enumerate().collect(),
                    crop: None,
                    hand: None,
                }
            })
            .collect();
        let local = r.len();
        let (gather, reduce, out_vals) = match &next {
            None => (
                (k + 1 < devs.len()).then(|| Gather {
                    after: ns - s0,
                    local,
                    remote: below,
                    from: devs[k + 1],
                    periods: pixels,
                    tail: 0,
                    frames: 1,
                    tag: 0,
                }),
                None,
                (local + below) * pixels,
            ),
            Some((b, finish)) => {
                // The next layer on this device's channels, as partial sums.
                stages.push(b.on_channels(last.c, r.start, r.end));
                let sums = b.output.values();
                (
                    None,
                    (k + 1 < devs.len()).then(|| Reduce {
                        after: ns - s0 + 1,
                        from: devs[k + 1],
                        tag: 0,
                        values: sums,
                        finish: (k == 0).then(|| finish.clone()),
                    }),
                    sums,
                )
            }
        };
        let (sink, tail) = if k == 0 {
            (after.head_sink(), after.head.clone())
        } else {
            (Sink::Link { to: devs[k - 1] }, Vec::new())
        };
        let mut all = stages;
        all.extend(tail);
        let all = refold(design, dev, all, out_vals as u64, 0)?;
        let link_out = match after.head.last() {
            Some(st) if k == 0 => st.output.values(),
            _ => out_vals,
        };
        let input = match feed {
            Some(_) => all[0].input,
            None => whole.input,
        };
        let mut arch = device_arch(
            whole,
            all,
            feed.is_none(),
            input,
            matches!(sink, Sink::Link { .. }).then_some(link_out),
        );
        if let (0, true, Some((_, f))) = (k, after.head.is_empty(), &next) {
            // The finisher's values leave the device (to the next device), not the sums.
            arch.dw_out = f.dw_out;
        }
        below += local;
        let source = match feed {
            Some(from) => Source::Link { from },
            None => Source::Host {
                lo: 0,
                hi: whole.input.h - 1,
            },
        };
        let mut d = mk(dev, arch, source, gather, sink);
        d.reduces = reduce.into_iter().collect();
        d.merges = merges;
        built[dev] = Some(d);
    }
    let ns = ns - s0 + next.is_some() as usize;
    let stack = FusedStack {
        from: lead,
        first_stage: s0,
        feed,
        layers: filt_n + chan_n,
        stages: ns,
        strips: slicing[0].iter().map(|r| (r.start, r.end - 1)).collect(),
        grid: (devs.len(), 1),
        stage_recompute: vec![1.0; ns],
        recompute: 1.0,
        input_factor: if feed.is_some() {
            0.0
        } else {
            devs.len() as f64
        },
        head: devs[0],
        after: after.devices(devs[0]),
        by_tiles: false,
    };
    if let Some(f) = feed {
        // The map to every device of the stack, a copy each.
        let map = whole.stages[s0 - 1].output;
        let sc = Scatter {
            map,
            devs: devs.clone(),
            boxes: vec![[(0, map.h), (0, map.w), (0, map.c)]; devs.len()],
            tag0: 1,
        };
        feed_stack(
            design,
            whole,
            pre,
            f,
            sc,
            true,
            Strategy::Filters,
            &mk,
            &mut built,
        )?;
    }
    Ok((after.place(design, whole, devs[0], &mk, built)?, stack))
}

/// `channels`: the first conv2d or dense layer (the network's first layer with hardware; its
/// ReLU after it) split by input channels: each device takes its slice of every pixel's
/// channels from the host and computes every output's full-width partial sum over them. The
/// sums are reduced down a chain to the first device (each device adds its own to the ones it
/// received from the next, value by value, and passes them on), which adds the bias, rounds
/// and saturates once, and runs the layers after it.
#[allow(clippy::too_many_arguments)]
fn channels_stack(
    design: &Design,
    whole: &CnnArch,
    lead: usize,
    pre: &[(usize, Vec<Stage>)],
    chan_n: usize,
    switched: bool,
    mk: impl Fn(usize, CnnArch, Source, Option<Gather>, Sink) -> CnnDevice,
) -> Result<(Vec<CnnDevice>, FusedStack), String> {
    let n = design.plan.devices;
    let t = &design.plan.plan.target.link;
    let pre_devs: Vec<usize> = pre.iter().map(|r| r.0).collect();
    let SplitStart {
        devs,
        ns,
        first,
        m,
        after,
    } = split_start(
        design,
        whole,
        lead,
        chan_n,
        Strategy::Channels,
        switched,
        &pre_devs,
    )?;
    let s0 = whole
        .stages
        .iter()
        .position(|s| s.layer >= lead)
        .unwrap_or(whole.stages.len());
    let feed = pre.last().map(|r| r.0);
    let finisher = devs[0];
    if let Some(st) = whole.stages.get(s0 + 1).filter(|_| ns > s0 + 1) {
        return Err(format!(
            "layer {}: strategy \"channels\" covers one conv2d or dense layer (layer {}) and its ReLU: its outputs are finished on device {finisher}, so give layer {} and the rest strategy \"layers\" on device {finisher}",
            st.layer, first.layer, st.layer
        ));
    }
    // The channels of the map the layer reads: the image's, or the map of the layer before
    // the stack (which its device scatters, each device's channels of every pixel to it).
    let cmap = match s0 {
        0 => whole.input.c,
        _ => whole.stages[s0 - 1].output.c,
    };
    if devs.len() > cmap {
        return Err(format!(
            "strategy \"channels\" splits layer {}'s input channels (the map's {cmap}) over {} devices; use at most {cmap} devices for it",
            first.layer,
            devs.len()
        ));
    }
    if m.accw > t.width as u32 {
        return Err(format!(
            "strategy \"channels\" sends layer {}'s {}-bit partial sums over the links, one per beat; [target.link] width is {} bits: use links of at least {} bits",
            first.layer, m.accw, t.width, m.accw
        ));
    }
    let slices = crate::passes::partition::split(cmap, devs.len());
    let sums = first.output.values();
    let finish = finish_of(first, m);
    // The reduction chain runs down the devices in order, ending at the finisher. (On a
    // one-way ring, the order along the ring, a hop each, measured slower: 99 cycles per frame
    // against 84 for 3 devices, 1 259 against 1 125 before a filters stack.)
    let mut built: Vec<Option<CnnDevice>> = vec![None; n];
    for (k, &dev) in devs.iter().enumerate().rev() {
        let r = &slices[k];
        let part = first.on_channels(cmap, r.start, r.end);
        let input = part.input;
        let reduce = (k + 1 < devs.len()).then(|| Reduce {
            after: 1,
            from: devs[k + 1],
            tag: 0,
            values: sums,
            finish: (k == 0).then(|| finish.clone()),
        });
        let (sink, tail) = if k == 0 {
            (after.head_sink(), after.head.clone())
        } else {
            (Sink::Link { to: devs[k - 1] }, Vec::new())
        };
        let mut all = vec![part];
        all.extend(tail);
        let all = refold(design, dev, all, sums as u64, 0)?;
        let link_out = match after.head.last() {
            Some(st) if k == 0 => st.output.values(),
            _ => sums,
        };
        let mut arch = device_arch(
            whole,
            all,
            feed.is_none(),
            input,
            matches!(sink, Sink::Link { .. }).then_some(link_out),
        );
        if k == 0 && after.head.is_empty() {
            // The finisher's values leave the device (to the next device), not the sums.
            arch.dw_out = finish.dw_out;
        }
        let source = match feed {
            Some(from) => Source::Link { from },
            None => Source::Host {
                lo: 0,
                hi: whole.input.h - 1,
            },
        };
        let mut d = mk(dev, arch, source, None, sink);
        d.reduces = reduce.into_iter().collect();
        if feed.is_some() {
            // Its slice comes in the scatter's frames of tag k + 1.
            d.in_tag = k as u8 + 1;
        } else {
            d.host_channels = (r.start, r.end);
        }
        built[dev] = Some(d);
    }
    let stack = FusedStack {
        from: lead,
        first_stage: s0,
        feed,
        layers: chan_n,
        stages: ns,
        strips: slices.iter().map(|r| (r.start, r.end - 1)).collect(),
        grid: (devs.len(), 1),
        stage_recompute: vec![1.0; ns],
        recompute: 1.0,
        input_factor: if feed.is_some() { 0.0 } else { 1.0 },
        head: devs[0],
        after: after.devices(devs[0]),
        by_tiles: false,
    };
    if let Some(f) = feed {
        // The device before the stack scatters its map: each device's channels of every
        // pixel to it, frames tagged by the device's place in the stack.
        let map = whole.stages[s0 - 1].output;
        let sc = Scatter {
            map,
            devs: devs.clone(),
            boxes: slices
                .iter()
                .map(|r| [(0, map.h), (0, map.w), (r.start, r.end)])
                .collect(),
            tag0: 1,
        };
        feed_stack(
            design,
            whole,
            pre,
            f,
            sc,
            false,
            Strategy::Channels,
            &mk,
            &mut built,
        )?;
    }
    Ok((after.place(design, whole, devs[0], &mk, built)?, stack))
}

/// Where a split stack after another one starts: the first layer after the first stack's run
/// of layers (its own strategy on the same devices, and `channels` right after `filters`) and
/// the layers of strategy `layers` after it, whose strategy splits it again.
/// A `channels` run covers one weight layer (`weights[l]`: layer `l` is a conv2d or dense
/// layer) and the layers up to the next one: a second weight layer by channels on the same
/// devices starts a stack of its own.
fn later_stack(layers: &[crate::plan::LayerAssignment], weights: &[bool]) -> Option<usize> {
    let a = layers.iter().position(|x| x.strategy != Strategy::Layers)?;
    let (kind, devs) = (layers[a].strategy, &layers[a].devices);
    let run = |i: usize, k: Strategy| {
        let mut seen = false;
        layers[i..]
            .iter()
            .zip(&weights[i..])
            .take_while(|(x, w)| {
                let second = k == Strategy::Channels && **w && seen;
                seen |= **w;
                x.strategy == k && x.devices == *devs && !second
            })
            .count()
    };
    let mut i = a + run(a, kind);
    if kind == Strategy::Filters {
        i += run(i, Strategy::Channels);
    }
    layers[i..]
        .iter()
        .position(|x| x.strategy != Strategy::Layers)
        .map(|j| i + j)
}

/// Device `me`'s tx port for each of the `n` devices, 2 bits each ([`tx_port`]).
fn routes(n: usize, me: usize, switched: bool, topology: Topology) -> u16 {
    (0..n).fold(0u16, |r, dst| {
        r | ((tx_port(me, dst, switched, topology) as u16) << (2 * dst))
    })
}

/// Device `me`'s tx port towards device `dst`: port 1 (towards higher indices) on a chain,
/// port 0 otherwise (a ring's or a switch's one port).
fn tx_port(me: usize, dst: usize, switched: bool, topology: Topology) -> usize {
    usize::from(!switched && topology != Topology::Ring && dst > me)
}

/// The next device on the path from `at` to `dst` over unswitched links: round a ring one
/// way, along a chain towards `dst`.
fn next_hop(n: usize, at: usize, dst: usize, topology: Topology) -> usize {
    if topology == Topology::Ring {
        (at + 1) % n
    } else if dst > at {
        at + 1
    } else {
        at - 1
    }
}

/// Whether the split stack from layer `b` shares a device with the split stack before it.
fn shares_devices(layers: &[crate::plan::LayerAssignment], b: usize) -> bool {
    layers[..b]
        .iter()
        .rposition(|x| x.strategy != Strategy::Layers)
        .is_some_and(|p| {
            layers[p]
                .devices
                .iter()
                .any(|d| layers[b].devices.contains(d))
        })
}

/// A stage's work for its recompute factor: its multiply-accumulates, or a pool's
/// comparisons (a window's per output value).
fn stage_work(s: &Stage) -> u64 {
    if s.macs > 0 {
        s.macs
    } else {
        (s.output.values() * s.window.k * s.window.k) as u64
    }
}

/// The most runs per period a merge of tiles takes (its run order is a table in the merge).
const MAX_MERGE_RUNS: usize = 512;

/// The design cut before layer `b` (its model and plan), on the plan's first `k` devices.
fn cut_before(design: &Design, b: usize, k: usize) -> Result<Design, String> {
    let mut d = design.clone();
    let ModelDesign::Cnn(m) = &mut d.model else {
        return Err("not a CNN design".into());
    };
    m.layers.truncate(b);
    m.shapes.truncate(b);
    m.formats.truncate(b);
    m.weights.truncate(b);
    m.fold.engines.truncate(b);
    m.fold.lanes.truncate(b);
    d.plan.layers.truncate(b);
    d.plan.devices = k;
    Ok(d)
}

/// A stack (layers `b..`) on the devices of the `fused`, `tiles` or `filters` stack before it
/// (layers `..b`, from the input or fed by `layers` on devices of their own; fused and tiles
/// in row strips or on a grid). Each device runs
/// its tile (or its slice of the output channels) of the first stack, then its part of the
/// second. After a filters stack, the join is its all-gather: every device's slice of each
/// pixel, joined per pixel in channel order, then cropped for a fused or tiled second stack.
/// After a fused or tiled stack:
/// - `filters`: its slice of the output channels; between the stacks every device sends its
///   tile to every other one and joins the tiles into the whole map in raster order (a
///   [`Merge`] of `strips`: strip by strip, or on a grid row by row);
/// - `channels` on a dense layer: its partial sums over its own tile's pixels
///   ([`Stage::on_pixels`]), reduced as for `channels`; nothing is sent between the stacks;
/// - `channels` on a conv, `fused`, `tiles`: the tiles joined as for `filters`, then cropped to
///   the box the stand-in would have scattered to it (`Merge::crop`: its channels, or the rows
///   and columns its tile reads); a tiled second stack's halo exchanges follow the first
///   stack's, their tags after the join's.
///
/// Built from the two stacks' systems: the first on its own, the second fed by a stand-in
/// device (the plan's device count, which is then removed; or the device that feeds the first
/// stack, which keeps its part of the first system), spliced device by device.
fn shared_stacks(design: &Design, b: usize) -> Result<CnnSystem, String> {
    let layers = &design.plan.layers;
    let n = design.plan.devices;
    let p = layers[..b]
        .iter()
        .rposition(|x| x.strategy != Strategy::Layers)
        .unwrap_or(0);
    let (first, kind) = (layers[p].strategy, layers[b].strategy);
    let devs = &layers[b].devices;
    // The layers of strategy `layers` before the first stack, if any, on devices of their own:
    // the last of them scatters (or multicasts) its map to the first stack, and stands in for
    // the first stack in the second one's system.
    let lead = layers[..=p]
        .iter()
        .take_while(|x| x.strategy == Strategy::Layers)
        .count();
    // A channels stack may be a filters stack's fused into channels (its layers by filters,
    // then the conv or dense layer by the same channels).
    let filt = layers[lead..=p]
        .iter()
        .take_while(|x| first == Strategy::Channels && x.strategy == Strategy::Filters)
        .count();
    // Or on one of the first stack's devices, which scatters its map between its own stages
    // (`Tap`): every layer before the stack on that device (`tapped`).
    let feed = lead
        .checked_sub(1)
        .and_then(|l| layers[l].devices.first().copied());
    let tapped = feed.is_some_and(|f| devs.contains(&f))
        && layers[..lead]
            .iter()
            .all(|x| x.devices == layers[lead - 1].devices);
    let from_input = layers[lead + filt..=p].iter().all(|x| x.strategy == first)
        && layers[lead..=p].iter().all(|x| x.devices == *devs)
        && (tapped
            || layers[..lead]
                .iter()
                .all(|x| x.devices.iter().all(|d| !devs.contains(d))));
    // Layers of strategy `layers` between the stacks, on the first stack's devices (its
    // first device, which holds the whole map after it).
    // Or on devices of their own (`outside`): the first stack's output device sends them its
    // map, and the last of them scatters (or multicasts) it to the second stack.
    let outside = p + 1 < b
        && layers[p + 1..b]
            .iter()
            .all(|x| x.strategy == Strategy::Layers && x.devices.iter().all(|d| !devs.contains(d)));
    let between = outside
        || layers[p + 1..b]
            .iter()
            .all(|x| x.strategy == Strategy::Layers && x.devices.iter().all(|d| devs.contains(d)));
    if !(matches!(
        first,
        Strategy::Fused | Strategy::Tiles | Strategy::Filters | Strategy::Channels
    ) && between
        && layers[p].devices == *devs
        && from_input)
    {
        // The stack before it in words: its strategies in order (filters then channels).
        let mut kinds: Vec<&str> = Vec::new();
        for x in &layers[lead..=p] {
            if x.strategy != Strategy::Layers && kinds.last() != Some(&x.strategy.name()) {
                kinds.push(x.strategy.name());
            }
        }
        let first = kinds.join(" then ");
        return Err(format!(
            "layer {b} starts a {kind} stack on device(s) of the {first} stack before it (layer {p}); two stacks share devices only as a fused, tiled, filters or channels stack (from the input, or fed by layers on devices of their own or all on one of its own devices) followed by a stack (filters, channels, fused or tiles) on the same devices, right after it or after layers on its first device or on devices of their own: give the {kind} stack devices of its own, after the first stack's"
        ));
    }
    // After a channels stack, or layers between the stacks, the first system's output map is
    // on one device alone: the others hand their part on to it, and it sends the map to
    // them all (`single`).
    let chan_first = first == Strategy::Channels;
    let single = chan_first || p + 1 < b;
    // The device that feeds the first stack stands in for it, unless it is one of the stack's
    // own (then a device of its own does, running every layer before the second stack).
    let feeder = feed.filter(|_| !tapped);
    if feeder.is_none() && !outside && n + 1 > frame::MAX_DEVICES {
        return Err(format!(
            "a {kind} stack on the devices of the {first} stack before it is built with a stand-in device before it, so it takes at most {} devices; the plan has {n}",
            frame::MAX_DEVICES - 1
        ));
    }
    // `channels` after the stack: a dense layer (after a flatten) split by the stack's tiles,
    // each device's partial sums over its own tile's pixels.
    let whole = CnnArch::whole(design)?;
    let sd = whole
        .stages
        .iter()
        .position(|s| s.layer >= b)
        .unwrap_or(whole.stages.len());
    let by_tiles = kind == Strategy::Channels
        && !single
        && matches!(first, Strategy::Fused | Strategy::Tiles)
        && whole
            .stages
            .get(sd)
            .is_some_and(|s| s.kind_name() == "dense");
    if by_tiles {
        let st = &whole.stages[sd];
        let cmap = whole.stages[sd - 1].output.c;
        if devs.len() > cmap {
            return Err(format!(
                "layer {}: a dense layer split by the tiles of the {first} stack before it is built through a channels split, which needs at least one of the map's {cmap} channels per device; use at most {cmap} devices",
                st.layer
            ));
        }
    }
    // The first stack, on its own.
    let k = devs.len();
    if devs.iter().any(|d| *d >= k) {
        return Err(format!(
            "layer {b} starts a {kind} stack on the devices of the {first} stack before it; the two stacks must run on the plan's first devices (0-{})",
            k - 1
        ));
    }
    // Devices `0..k` run the stacks; the layers before them run on the devices after those.
    let kk = layers[..b]
        .iter()
        .flat_map(|x| x.devices.iter().map(|d| d + 1))
        .max()
        .unwrap_or(k);
    let mut cut = cut_before(design, b, kk)?;
    if matches!(first, Strategy::Filters | Strategy::Channels) {
        // The grid is the second stack's.
        cut.plan.plan.partition.grid = None;
    }
    let first_sys = CnnSystem::build_raw(&cut)?;
    // The second, fed by a stand-in device that runs the first stack's layers: device `n`, or
    // the device that feeds the first stack; with the layers between the stacks on devices of
    // their own, the first of them (the last of them then feeds the second stack).
    let stand = match (outside, feeder) {
        (true, _) => layers[p + 1].devices[0],
        (false, Some(f)) => f,
        (false, None) => n,
    };
    let sender = if outside { first_sys.out_device } else { stand };
    let mut d = design.clone();
    let from = if tapped { 0 } else { lead };
    for a in &mut d.plan.layers[from..if outside { p + 1 } else { b }] {
        a.strategy = Strategy::Layers;
        a.devices = vec![stand];
    }
    if feeder.is_none() && !outside {
        d.plan.devices = n + 1;
    }
    if !matches!(kind, Strategy::Fused | Strategy::Tiles) {
        d.plan.plan.partition.grid = None;
    }
    let mut sys = CnnSystem::build_raw(&d)?;
    // What the stand-in sends each device of a `channels`, `fused` or `tiles` stack: the box
    // of the map it takes.
    let scatter = sys.devices.get(sender).and_then(|s| s.scatter.clone());
    let second: Vec<(Vec<Exchange>, usize)> = sys
        .devices
        .iter()
        .map(|d| (d.exchanges.clone(), d.in_flight))
        .collect();
    sys.devices.truncate(n);
    // The layers before the first stack run as they do in its own system (their last device
    // feeding it).
    // (A device of the stacks that runs them is built with the stacks below.)
    for x in layers[..lead]
        .iter()
        .flat_map(|x| x.devices.iter())
        .filter(|x| !devs.contains(x))
    {
        if let (Some(dv), Some(f)) = (sys.devices.get_mut(*x), first_sys.devices.get(*x)) {
            *dv = f.clone();
        }
    }
    // So do the layers between the stacks on devices of their own, the last of them sending
    // its map on as it does in the second stack's system.
    if outside {
        for x in layers[p + 1..b].iter().flat_map(|x| x.devices.iter()) {
            if let (Some(dv), Some(f)) = (sys.devices.get_mut(*x), first_sys.devices.get(*x)) {
                let mut real = f.clone();
                if *x == sender {
                    real.send_as(dv);
                }
                *dv = real;
            }
        }
    }
    // A filters stack's devices each hold a slice of every pixel's channels: they are joined
    // per pixel, as its own all-gathers are.
    let per_pixel = first == Strategy::Filters;
    let gr = first_sys.fused.as_ref().map_or(1, |f| f.grid.0);
    // The tiles in order: down the first stack's gather chain from its first device. With
    // the map on one device: that device, then the others.
    // With the layers between on devices of their own, the device that sends them the map.
    let head = if outside {
        devs.iter()
            .copied()
            .find(|&e| {
                first_sys.devices[e].sink
                    == Sink::Link {
                        to: layers[p + 1].devices[0],
                    }
            })
            .unwrap_or(devs[0])
    } else if single {
        first_sys.out_device
    } else {
        first_sys.fused.as_ref().map_or(devs[0], |f| f.head)
    };
    if !devs.contains(&head) {
        return Err(format!(
            "the system before layer {b} ends on device {head}, not on one of the {kind} stack's devices {devs:?}; run the layers between the stacks on the {first} stack's first device"
        ));
    }
    let mut order = vec![head];
    if single {
        order.extend(devs.iter().copied().filter(|d| *d != head));
    } else {
        while let Some(g) = first_sys.devices[*order.last().unwrap_or(&head)]
            .gathers
            .last()
        {
            order.push(g.from);
        }
    }
    // The first stack's output map, joined.
    let joined = whole.stages[sd - 1].output;
    let tile = |e: usize| {
        first_sys.devices[e]
            .arch
            .stages
            .last()
            .map_or(Map { c: 0, h: 0, w: 0 }, |s| s.output)
    };
    // After a channels stack the finisher holds the whole map, the other devices nothing of
    // it (their partial sums go down the chain).
    let slices: Vec<usize> = order
        .iter()
        .enumerate()
        .map(|(j, &e)| {
            if single {
                if j == 0 {
                    joined.values()
                } else {
                    0
                }
            } else if per_pixel {
                tile(e).c
            } else {
                tile(e).values()
            }
        })
        .collect();
    let pixels = if per_pixel {
        tile(head).h * tile(head).w
    } else {
        1
    };
    // Row by row of the map: on a grid, each tile row's rows, each of its tiles' part of the
    // row in turn (row strips: a run per strip).
    let gc = first_sys.fused.as_ref().map_or(1, |f| f.grid.1);
    let runs: Vec<(usize, usize)> = if single {
        vec![(0, joined.values())]
    } else if gc == 1 {
        slices.iter().copied().enumerate().collect()
    } else {
        let mut runs = Vec::new();
        for (r, row) in order.chunks(gc).enumerate() {
            for _ in 0..tile(row[0]).h {
                for (t, &e) in row.iter().enumerate() {
                    let m = tile(e);
                    runs.push((r * gc + t, m.w * m.c));
                }
            }
        }
        runs
    };
    if runs.len() > MAX_MERGE_RUNS {
        return Err(format!(
            "joining the {first} stack's {} x {gc} tiles into its map takes {} runs of values (a tile row's rows times its tiles); at most {MAX_MERGE_RUNS} are built: use row strips or a map with fewer rows",
            order.len() / gc,
            runs.len()
        ));
    }
    let t0 = first_sys
        .devices
        .iter()
        .map(CnnDevice::last_tag)
        .max()
        .unwrap_or(0)
        + 1;
    if order.len() != devs.len() {
        return Err(format!(
            "the {first} stack's devices {devs:?} are not all on its chain from device {head} ({order:?})"
        ));
    }
    // When the head gathers for both stacks, a frame's trip through the system (the first
    // stack, the gather, the layers between, the join, the second stack, the gather) takes
    // longer than two frames' time: every device takes 3 frames in ahead (measured: tiles,
    // layers, tiles on a star of 3: 616 cycles per frame with 2 against 504 predicted, 504
    // with 3; 3 where the head gathers once measured slower: channels then fused on a star of
    // 3, 890 against 861). So they do when a device scatters the first stack's input between
    // its own stages (the layers before the stacks add to the trip: a conv on device 2, a
    // fused stack in 3 strips and a tiled conv on a star of 3, 10 frames: 652 with 2 against
    // 504 predicted, 504 with 3; tiles then filters, channels then fused, and tiles, a pool
    // on a device of its own, tiles measured the same with 3 as with 2).
    let window = if tapped
        || (single
            && !first_sys.devices[head].gathers.is_empty()
            && !sys.devices[head].gathers.is_empty())
    {
        3
    } else {
        2
    };
    for (j, &e) in order.iter().enumerate() {
        let f = &first_sys.devices[e];
        let np = f.arch.stages.len();
        let dv = &mut sys.devices[e];
        // The first stack's own all-gathers (filters), then the join.
        let mut merges = f.merges.clone();
        if by_tiles {
            // The dense layer on this device's tile: nothing sent between the stacks.
            let map = whole.stages[sd - 1].output;
            let rows = &crate::passes::partition::split(map.h, gr)[j / gc];
            let cols = &crate::passes::partition::split(map.w, gc)[j % gc];
            let own = tile(e);
            if (own.h, own.w) != (rows.len(), cols.len()) || dv.arch.stages.is_empty() {
                return Err(format!(
                    "device {e}'s tile of layer {}'s map is {} x {}, not the {} x {} its place in the {first} stack gives",
                    whole.stages[sd - 1].layer,
                    own.h,
                    own.w,
                    rows.len(),
                    cols.len()
                ));
            }
            dv.arch.stages[0] =
                whole.stages[sd].on_pixels(map, (rows.start, rows.end), (cols.start, cols.end));
        } else {
            // `filters` takes the whole map; the others their box of it, as the stand-in would
            // have sent it.
            let crop = match (kind, &scatter) {
                (Strategy::Filters, _) => None,
                (_, Some(sc)) => {
                    let k = sc.devs.iter().position(|x| *x == e).ok_or_else(|| {
                        format!("device {e} takes no part of layer {b}'s input map")
                    })?;
                    let joined = whole.stages[sd - 1].output;
                    if sc.map != joined {
                        return Err(format!(
                            "layer {b}'s input map is {} x {} x {}, not the {} x {} x {} the {first} stack's tiles join into",
                            sc.map.h, sc.map.w, sc.map.c, joined.h, joined.w, joined.c
                        ));
                    }
                    let whole_box = [(0, joined.h), (0, joined.w), (0, joined.c)];
                    (sc.boxes[k] != whole_box).then_some((joined, sc.boxes[k]))
                }
                (_, None) => {
                    return Err(format!(
                        "the {kind} stack from layer {b} takes no scattered map, so its devices' parts of the {first} stack's map are unknown"
                    ))
                }
            };
            // To the layers between the stacks on a device of their own too: the map, as in
            // the first system, but tagged (a device's runs of one tag are one multicast, and
            // its output run has tag 0).
            let hand = match ((single && j > 0) || outside, f.sink) {
                (false, _) => None,
                (true, Sink::Link { to }) if f.also.is_empty() => {
                    Some((to, t0, f.arch.output.values()))
                }
                _ => {
                    return Err(format!(
                        "device {e}'s part of the system before layer {b} does not go to one device"
                    ))
                }
            };
            if outside {
                // Its box of the map from the device before the stack, as that device sends it
                // (scattered, or a copy of the whole map), in that system's input tag.
                let vals = dv.arch.input.values();
                merges.push(Merge {
                    stage: np,
                    pixels: 1,
                    devs: vec![sender, e],
                    slices: vec![vals, 0],
                    pos: 1,
                    tag: dv.in_tag,
                    strips: true,
                    runs: vec![(0, vals)],
                    crop: None,
                    hand,
                });
            } else {
                merges.push(Merge {
                    stage: np,
                    pixels,
                    devs: order.clone(),
                    slices: slices.clone(),
                    pos: j,
                    tag: t0,
                    strips: !per_pixel,
                    runs: runs.clone(),
                    crop,
                    // With the map on one device: this device's output of the first system (partial
                    // sums, or its tiles) on where that system sent it, in the join's tag.
                    hand,
                });
            }
        }
        for m in &dv.merges {
            merges.push(Merge {
                stage: m.stage + np,
                tag: m.tag + t0,
                ..m.clone()
            });
        }
        // A tiled second stack's halo exchanges, after the first stack's, their tags after
        // the merge's.
        let (xs, flight) = &second[e];
        let shift = |t: u8| if t == 0 { 0 } else { t + t0 };
        let mut exchanges = f.exchanges.clone();
        exchanges.extend(xs.iter().map(|x| Exchange {
            stage: x.stage + np,
            tag_up: shift(x.tag_up),
            tag_down: shift(x.tag_down),
            rtag_up: shift(x.rtag_up),
            rtag_down: shift(x.rtag_down),
            ..*x
        }));
        let most = merges
            .iter()
            .flat_map(|m| [m.tag, m.hand.map_or(0, |h| h.1)])
            .chain(exchanges.iter().flat_map(|x| [x.tag_up, x.tag_down]))
            .max()
            .unwrap_or(0);
        if most > 7 {
            return Err(format!(
                "device {e} sends {most} kinds of tagged runs (halos and all-gathers of both stacks); the link frame's 3-bit tag numbers at most 7: end the {first} stack or the {kind} stack earlier, or use fewer tiles"
            ));
        }
        dv.merges = merges;
        for g in &mut dv.gathers {
            g.after += np;
        }
        // The first stack's reductions, then the second's. What a device hands on comes in
        // the join's tag.
        let hands_on = |x: usize| single && x != head && devs.contains(&x);
        let mut reduces = f.reduces.clone();
        for r in &mut reduces {
            if r.tag == 0 && hands_on(r.from) {
                r.tag = t0;
            }
        }
        // With the map on one device, the first stack's gathers stay (its tiles handed on to
        // it), before the second's; joined all-to-all, the join replaces them.
        if single {
            let mut gathers: Vec<Gather> = f
                .gathers
                .iter()
                .map(|g| Gather {
                    tag: if hands_on(g.from) { t0 } else { g.tag },
                    ..*g
                })
                .collect();
            gathers.append(&mut dv.gathers);
            dv.gathers = gathers;
        }
        for r in &dv.reduces {
            reduces.push(Reduce {
                after: r.after + np,
                ..r.clone()
            });
        }
        dv.reduces = reduces;
        dv.exchanges = exchanges;
        // A device whose stage takes a box of the joined map holds its input until that many
        // frames have left its stacks (2 at least: a `channels` stack's partial sums share
        // the links with the tiles, and a device that ran ahead would fill the queues its
        // neighbour's sums wait behind); the merge's queues hold one tile more.
        let boxed = single || dv.merges.iter().any(|m| m.crop.is_some());
        dv.in_flight = f.in_flight.max(*flight).max(if boxed { window } else { 0 });
        dv.host_cols = f.host_cols;
        dv.host_channels = f.host_channels;
        dv.source = f.source;
        dv.in_tag = f.in_tag;
        // The scatter between the stages of the device that ends the layers before the first
        // stack (its stage numbers are the first system's, which come first).
        dv.tap = f.tap.clone();
        let mut stages = f.arch.stages.clone();
        stages.append(&mut dv.arch.stages);
        // Each device's engines for its own joint stages (the dense layer on a tile is new).
        let extra = dv.stream_values();
        let stages = refold(design, e, stages, extra, 0)?;
        dv.arch.cycles_per_frame = stages.iter().map(|s| s.cycles).max().unwrap_or(1);
        dv.arch.macs = stages.iter().map(|s| s.macs).sum();
        dv.arch.stages = stages;
        dv.arch.input = f.arch.input;
        dv.arch.relu_in = f.arch.relu_in;
        dv.arch.dw_in = f.arch.dw_in;
    }
    // The first device of the layers between, on devices of their own, takes the map handed
    // to it in the join's tag.
    if outside {
        let b1 = layers[p + 1].devices[0];
        if let Some(x) = sys.devices.get_mut(b1) {
            x.in_tag = t0;
        }
    }
    // The plan's wiring, without the stand-in.
    let t = &design.plan.plan.target.link;
    let (ports, links, switched) = wiring(n, t.topology, t.mode);
    for dv in &mut sys.devices {
        let me = dv.index;
        dv.ports = ports[me].clone();
        dv.routes = routes(n, me, switched, t.topology);
    }
    sys.links = links;
    sys.switched = switched;
    if let Some(f) = &mut sys.fused {
        // Fed by the layers between the stacks on a device of their own, as a stack after
        // `layers` is; otherwise by the join.
        if !outside {
            f.feed = None;
            f.input_factor = 0.0;
        }
        f.by_tiles = by_tiles;
    }
    sys.before_summary = first_sys.stack_summary();
    sys.before = first_sys.before;
    sys.before.extend(first_sys.fused);
    Ok(sys)
}

/// The system up to a split stack that follows another split stack (layers `..layer`), built
/// as a system of its own on devices `0..k` (the plan's first devices); its output device
/// then sends the later stack its map as a device of strategy `layers` before it would.
struct Prefix {
    layer: usize,
    sys: CnnSystem,
}

impl Prefix {
    fn new(design: &Design, whole: &CnnArch, b: usize) -> Result<Prefix, String> {
        let layers = &design.plan.layers;
        let mut devs: Vec<usize> = layers[..b]
            .iter()
            .flat_map(|a| a.devices.iter().copied())
            .collect();
        devs.sort_unstable();
        devs.dedup();
        let k = devs.len();
        let later: Vec<usize> = layers[b..]
            .iter()
            .flat_map(|a| a.devices.iter().copied())
            .collect();
        if devs != (0..k).collect::<Vec<_>>() || later.iter().any(|d| *d < k) {
            return Err(format!(
                "layer {b} starts a {} stack after another split stack: the layers before it must run on the plan's first devices (0-{}) and the stack and the layers after it on the devices after those",
                layers[b].strategy,
                k.max(1) - 1
            ));
        }
        if whole.stages.iter().all(|s| s.layer >= b) || whole.stages.iter().all(|s| s.layer < b) {
            return Err(format!(
                "layer {b} starts a {} stack after another split stack, but no conv2d, dense or maxpool layer runs before or from it",
                layers[b].strategy
            ));
        }
        let sys = CnnSystem::build(&cut_before(design, b, k)?)?;
        Ok(Prefix { layer: b, sys })
    }

    /// Stand-in runs for the later stack's builder: one per device of the system, its output
    /// device last, each with the system's last stage (so the output device's sink, copies and
    /// scatter come out as for a device of strategy `layers` before the stack).
    fn runs(&self, whole: &CnnArch) -> Vec<(usize, Vec<Stage>)> {
        let last = whole
            .stages
            .iter()
            .rev()
            .find(|s| s.layer < self.layer)
            .cloned()
            .expect("a stage before the later stack");
        let out = self.sys.out_device;
        (0..self.sys.devices.len())
            .filter(|d| *d != out)
            .chain([out])
            .map(|d| (d, vec![last.clone()]))
            .collect()
    }

    /// The system's devices in place of the stand-ins: each on the whole system's wiring, the
    /// output device sending its map on as its stand-in would.
    fn place(self, sys: &mut CnnSystem) -> Result<(), String> {
        let out = self.sys.out_device;
        let summary = self.sys.stack_summary();
        let mut shift = 0u8;
        for mut real in self.sys.devices {
            let i = real.index;
            let stand = &sys.devices[i];
            real.ports = stand.ports.clone();
            real.routes = stand.routes;
            if i == out {
                if let Some(sc) = &stand.scatter {
                    if real.scatter.is_some() {
                        return Err(format!(
                            "device {i} ends the stack before the {} stack and would scatter its map to it, but it already scatters a map; run the layers between the stacks on a device of their own (strategy \"layers\")",
                            sys.strategy
                        ));
                    }
                    // Its scatter's runs tagged after its halo and all-gather runs, and each
                    // receiving device's input tag with them.
                    let used = real.last_tag();
                    let last = used as usize + sc.devs.len();
                    if last > 7 {
                        return Err(format!(
                            "device {i} ends the stack before the {} stack and sends {used} kinds of tagged runs (halos or all-gathers); scattering its map to the stack's {} devices would take tags up to {last}, and the link frame's 3-bit tag numbers at most 7: run the layers between the stacks on a device of their own (strategy \"layers\"), or give the stack fewer devices",
                            sys.strategy,
                            sc.devs.len()
                        ));
                    }
                    shift = used;
                }
                real.send_as(stand);
            }
            sys.devices[i] = real;
        }
        if shift > 0 {
            let devs = match &mut sys.devices[out].scatter {
                Some(sc) => {
                    sc.tag0 += shift;
                    sc.devs.clone()
                }
                None => Vec::new(),
            };
            for dv in devs {
                sys.devices[dv].in_tag += shift;
            }
        }
        if let Some(f) = &mut sys.fused {
            f.feed = Some(out);
        }
        sys.before_summary = summary;
        sys.before = self.sys.before;
        sys.before.extend(self.sys.fused);
        Ok(())
    }
}

/// The runs of the `lead` layers (strategy `layers`) before a `kind` stack fed from a link,
/// pipelined (none for a stack from the input).
fn runs_before(
    whole: &CnnArch,
    layers: &[crate::plan::LayerAssignment],
    lead: usize,
    kind: Strategy,
) -> Result<Vec<(usize, Vec<Stage>)>, String> {
    let s0 = whole
        .stages
        .iter()
        .position(|s| s.layer >= lead)
        .unwrap_or(whole.stages.len());
    if lead > 0 && s0 == 0 {
        return Err(format!(
            "layers 0-{} before the {kind} stack hold no conv2d, dense or maxpool layer; give them strategy \"{kind}\" too",
            lead - 1
        ));
    }
    layer_runs(layers, &whole.stages[..s0], None)
}

/// Stages in runs by device, for `layers`: each stage on its layer's device, consecutive
/// stages on one device one run. After a split stack (`stack`: its first device, its
/// strategy and its devices), a layer of the stack's own strategy runs on the first device,
/// and no layer runs on the stack's other devices (they hold only a slice of the map).
fn layer_runs(
    layers: &[crate::plan::LayerAssignment],
    stages: &[Stage],
    stack: Option<(usize, Strategy, &[usize])>,
) -> Result<Vec<(usize, Vec<Stage>)>, String> {
    let mut runs: Vec<(usize, Vec<Stage>)> = Vec::new();
    for st in stages {
        let a = &layers[st.layer];
        let d = match stack {
            Some((head, kind, _)) if a.strategy == kind => head,
            Some((head, kind, _)) if a.strategy != Strategy::Layers || a.devices.len() != 1 => {
                return Err(format!(
                    "layer {} follows the {kind} stack; give it strategy \"layers\" on one device (the stack's first, {head}, or one of its own)",
                    st.layer
                ));
            }
            _ => a.devices[0],
        };
        if let Some((head, kind, group)) = stack {
            if d != head && group.contains(&d) {
                return Err(format!(
                    "layer {} follows the {kind} stack on device {d}, which holds only a slice of the stack's output; run it on the stack's first device ({head}) or on a device outside the stack",
                    st.layer
                ));
            }
        }
        match runs.last_mut() {
            Some((rd, v)) if *rd == d => v.push(st.clone()),
            _ => {
                if runs.iter().any(|(rd, _)| *rd == d) {
                    return Err(format!(
                        "device {d} runs two separate runs of layers; with strategy \"layers\" each device runs one contiguous run of layers today"
                    ));
                }
                runs.push((d, vec![st.clone()]));
            }
        }
    }
    Ok(runs)
}

/// The layers after a split stack whose first device is `head`: the stages `head` runs after
/// the stack, and the runs pipelined on other devices after it, each passing its map on.
struct Tail {
    head: Vec<Stage>,
    runs: Vec<(usize, Vec<Stage>)>,
}

impl Tail {
    fn new(
        design: &Design,
        whole: &CnnArch,
        ns: usize,
        kind: Strategy,
        group: &[usize],
        pre: &[usize],
    ) -> Result<Tail, String> {
        let n = design.plan.devices;
        let head = group[0];
        let mut runs = layer_runs(
            &design.plan.layers,
            &whole.stages[ns..],
            Some((head, kind, group)),
        )?;
        let own = if runs.first().is_some_and(|r| r.0 == head) {
            runs.remove(0).1
        } else {
            Vec::new()
        };
        if let Some(r) = runs.iter().find(|r| pre.contains(&r.0)) {
            return Err(format!(
                "device {} runs layers both before and after the {kind} stack; with strategy \"layers\" each device runs one contiguous run of layers today",
                r.0
            ));
        }
        // The device that ends the layers before the stack may run a tile of it too.
        let shared = pre.iter().filter(|d| group.contains(d)).count();
        if group.len() + runs.len() + pre.len() - shared != n {
            let idle: Vec<usize> = (0..n)
                .filter(|d| {
                    !group.contains(d) && !pre.contains(d) && !runs.iter().any(|r| r.0 == *d)
                })
                .collect();
            return Err(format!(
                "the {kind} stack uses {} of the plan's {n} devices and device(s) {idle:?} run no layer after it; give every device a slice of the stack or a layer after it (strategy \"layers\")",
                group.len()
            ));
        }
        Ok(Tail { head: own, runs })
    }

    /// Where the stack's first device sends its output: the host, or the first run after it.
    fn head_sink(&self) -> Sink {
        self.runs
            .first()
            .map_or(Sink::Host, |r| Sink::Link { to: r.0 })
    }

    /// The device whose output is the network's.
    fn out_device(&self, head: usize) -> usize {
        self.runs.last().map_or(head, |r| r.0)
    }

    /// The runs after the stack pipelined into `built`, after the stack's first device
    /// `head`; then every device, in index order.
    fn place(
        &self,
        design: &Design,
        whole: &CnnArch,
        head: usize,
        mk: &impl Fn(usize, CnnArch, Source, Option<Gather>, Sink) -> CnnDevice,
        mut built: Vec<Option<CnnDevice>>,
    ) -> Result<Vec<CnnDevice>, String> {
        pipeline(design, whole, &self.runs, Some(head), &[], mk, &mut built)?;
        built
            .into_iter()
            .enumerate()
            .map(|(i, d)| d.ok_or(format!("device {i} got no part of the system")))
            .collect()
    }

    /// The devices that run the layers after the stack, in order.
    fn devices(&self, head: usize) -> Vec<usize> {
        (!self.head.is_empty())
            .then_some(head)
            .into_iter()
            .chain(self.runs.iter().map(|r| r.0))
            .collect()
    }
}

/// Devices for `runs` of whole layers, pipelined over frames, into `built` by index: the
/// first takes the image from the host (`from` None) or the map from device `from`, each
/// passes its output map to the next, and the last sends the network's output to the host,
/// or its map to every device of `onward` (a copy each: the stack after it).
fn pipeline(
    design: &Design,
    whole: &CnnArch,
    runs: &[(usize, Vec<Stage>)],
    from: Option<usize>,
    onward: &[usize],
    mk: &impl Fn(usize, CnnArch, Source, Option<Gather>, Sink) -> CnnDevice,
    built: &mut [Option<CnnDevice>],
) -> Result<(), String> {
    for (i, (d, stages)) in runs.iter().enumerate() {
        let last = i + 1 == runs.len() && onward.is_empty();
        let input = stages[0].input;
        let outv = stages.last().map(|s| s.output.values()).unwrap_or(0);
        let prev = if i == 0 { from } else { Some(runs[i - 1].0) };
        let arch = device_arch(
            whole,
            refold(design, *d, stages.clone(), 0, 0)?,
            prev.is_none(),
            input,
            (!last).then_some(outv),
        );
        let source = match prev {
            None => Source::Host {
                lo: 0,
                hi: whole.input.h - 1,
            },
            Some(from) => Source::Link { from },
        };
        let sink = match runs.get(i + 1) {
            _ if last => Sink::Host,
            Some(r) => Sink::Link { to: r.0 },
            None => Sink::Link { to: onward[0] },
        };
        let mut dev = mk(*d, arch, source, None, sink);
        if i + 1 == runs.len() && !onward.is_empty() {
            dev.also = onward[1..].to_vec();
        }
        built[*d] = Some(dev);
    }
    Ok(())
}

/// The layers `pre` before a stack fed from a link, pipelined, the last of them (device `f`)
/// scattering its map `sc` to the stack's devices; when `f` runs a part of the stack too, the
/// scatter sits between its two parts ([`tap_device`]) and the other devices' input tags
/// follow its halo runs.
#[allow(clippy::too_many_arguments)]
fn feed_stack(
    design: &Design,
    whole: &CnnArch,
    pre: &[(usize, Vec<Stage>)],
    f: usize,
    sc: Scatter,
    multicast: bool,
    kind: Strategy,
    mk: &impl Fn(usize, CnnArch, Source, Option<Gather>, Sink) -> CnnDevice,
    built: &mut [Option<CnnDevice>],
) -> Result<(), String> {
    let devs = sc.devs.clone();
    let Some(own) = devs.iter().position(|d| *d == f) else {
        if multicast {
            // The map to every device, a copy each (the output run's destinations).
            pipeline(design, whole, pre, None, &devs, mk, built)?;
            return Ok(());
        }
        pipeline(design, whole, pre, None, &devs[..1], mk, built)?;
        if let Some(d) = built[f].as_mut() {
            d.scatter = Some(sc);
        }
        return Ok(());
    };
    let mut pre_built: Vec<Option<CnnDevice>> = vec![None; built.len()];
    pipeline(design, whole, pre, None, &devs[..1], mk, &mut pre_built)?;
    let (Some(head), Some(tail)) = (pre_built[f].take(), built[f].take()) else {
        return Err(format!("device {f}: no layers before the {kind} stack"));
    };
    for (d, b) in pre_built.into_iter().enumerate() {
        if b.is_some() {
            built[d] = b;
        }
    }
    let joined = tap_device(whole, head, tail, sc, own, multicast, kind)?;
    if let Some(t) = &joined.tap {
        for (k, d) in t.others() {
            if let Some(b) = built[d].as_mut() {
                b.in_tag = t.tag(k);
            }
        }
    }
    built[f] = Some(joined);
    Ok(())
}

/// One device from the device that ends the layers before a `fused` or `tiles` stack (`head`)
/// and the stack's `own`th device (`tail`, the same device): `head`'s stages, input and
/// source, then `tail`'s stages, gathers, halo exchanges, sink and output, with the scatter of
/// `head`'s map between them ([`Tap`]), tagged after `tail`'s halo runs.
fn tap_device(
    whole: &CnnArch,
    head: CnnDevice,
    tail: CnnDevice,
    mut scatter: Scatter,
    own: usize,
    multicast: bool,
    kind: Strategy,
) -> Result<CnnDevice, String> {
    let at = head.arch.stages.len();
    let used = tail.last_tag();
    let last = used as usize + if multicast { 1 } else { scatter.devs.len() - 1 };
    if last > 7 {
        return Err(format!(
            "device {} ends the layers before the {kind} stack and runs a part of it: it sends {used} kinds of tagged runs (halos, all-gathers) and scatters its map to {} devices, which would take tags up to {last}, but a link frame's 3-bit tag numbers at most 7; use fewer tiles, end the stack sooner, or run the layers before it on a device of their own",
            tail.index,
            scatter.devs.len() - 1
        ));
    }
    scatter.tag0 = used + 1;
    let mut d = tail;
    let mut stages = head.arch.stages.clone();
    stages.extend(std::mem::take(&mut d.arch.stages));
    let mut arch = device_arch(
        whole,
        stages,
        matches!(head.source, Source::Host { .. }),
        head.arch.input,
        None,
    );
    arch.output = d.arch.output;
    arch.out_order = d.arch.out_order;
    arch.dw_out = d.arch.dw_out;
    d.arch = arch;
    d.source = head.source;
    d.in_tag = head.in_tag;
    d.host_channels = head.host_channels;
    d.host_cols = head.host_cols;
    for g in &mut d.gathers {
        g.after += at;
    }
    for x in &mut d.exchanges {
        x.stage += at;
    }
    for m in &mut d.merges {
        m.stage += at;
    }
    for r in &mut d.reduces {
        r.after += at;
    }
    d.tap = Some(Tap {
        at,
        scatter,
        own,
        multicast,
    });
    Ok(d)
}

/// A device's stages with their engines chosen again for the device's share of the work (with
/// `[target] engines = "auto"`; a layer's own `engines` stay): each
/// conv2d or dense stage gets the fewest engines that keep it within the device's stream bound
/// (its stages' one value in and out per cycle, and `extra` values a gather passes) or the
/// system's `pace` (the slowest device's bound: faster would only idle), or, when that needs
/// more multipliers than `budget`, within the fewest cycles the budget allows.
fn refold(
    design: &Design,
    dev: usize,
    stages: Vec<Stage>,
    extra: u64,
    pace: u64,
) -> Result<Vec<Stage>, String> {
    // Engines the plan fixes ([target] engines = N, or a layer's own `engines`) stay.
    if design.plan.plan.target.engines != crate::plan::Engines::Auto {
        return Ok(stages);
    }
    let specs = &design.plan.plan.model.layers;
    let own = |s: &Stage| specs.get(s.layer).and_then(|l| l.engines()).is_some();
    let budget = device_budget(&design.plan, dev);
    let floor = stages
        .iter()
        .map(Stage::stream_floor)
        .max()
        .unwrap_or(1)
        .max(extra)
        .max(pace)
        .max(1);
    let pick = |s: &Stage, t: u64| -> Stage {
        if own(s) {
            s.clone()
        } else {
            s.with_engines(s.engines_for(t))
        }
    };
    let mults = |t: u64| -> usize { stages.iter().map(|s| pick(s, t).multipliers()).sum() };
    let slowest = stages
        .iter()
        .map(|s| s.with_engines(1).cycles)
        .max()
        .unwrap_or(floor)
        .max(floor);
    let t = fastest_within(budget, floor, slowest, &mults).map_err(|(need, b)| {
        format!(
            "even one engine per layer needs {need} multipliers on a device, more than its budget of {b}"
        )
    })?;
    Ok(stages.iter().map(|s| pick(s, t)).collect())
}

/// A device's architecture from its stages: the host's input (with the network's input ReLU)
/// when `from_host`, else values from a link; `link_out` values per frame to a link, else the
/// network's output.
fn device_arch(
    whole: &CnnArch,
    stages: Vec<Stage>,
    from_host: bool,
    input: Map,
    link_out: Option<usize>,
) -> CnnArch {
    let cycles_per_frame = stages.iter().map(|s| s.cycles).max().unwrap_or(1);
    let macs = stages.iter().map(|s| s.macs).sum();
    let dw_in = stages.first().map_or(whole.dw_in, |s| s.dw_in);
    let last = stages.last().map(|s| (s.output, s.dw_out));
    let (output, out_order, dw_out) = match link_out {
        Some(v) => {
            let m = Map { c: v, h: 1, w: 1 };
            (m, m, last.map_or(whole.dw_out, |l| l.1))
        }
        None => (whole.output, whole.out_order, whole.dw_out),
    };
    CnnArch {
        relu_in: from_host && whole.relu_in,
        input,
        output,
        out_order,
        dw_in,
        dw_out,
        in_layout: whole.in_layout,
        out_layout: whole.out_layout,
        round_ne: whole.round_ne,
        sat: whole.sat,
        cycles_per_frame,
        macs,
        folding: whole.folding.clone(),
        stages,
    }
}
