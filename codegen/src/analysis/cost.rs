//! Cycle cost model: predicted cycles per timestep, link traffic, memory and multipliers for a
//! design, and sweeps over device counts and strategies.
//!
//! For one device the model follows the generated hardware cycle for cycle (`emit::top`):
//! every timestep loads x (I beats), then each layer issues rows-per-lane x slices-per-row
//! cycles and drains its pipeline (`DRAIN_BASE` cycles, plus one per adder-tree level, plus the position
//! of the last real unit in its hand-over bundle). A test holds it to the cosim's cycle counter.
//!
//! For several devices the model replays one tick of the generated node hardware
//! (`emit::node`) on the schedule: each device runs its program (for each layer: issue its
//! rows while the finisher takes each unit, one per cycle, as soon as its partial sums are in),
//! partial sums reach their finisher a link latency per hop after their row, and the tick ends when every
//! device has received the h values it needs (written one value, or one received beat's run within a
//! vector-memory word, per cycle) and every barrier. A
//! sequence of S steps takes S + L - 1 ticks. A test holds the prediction within 10% of the
//! cosimulated cycle counters on the example plans. Plans the node hardware cannot build fall
//! back to a coarser estimate.

use partita_hdl::frame::Kind;

pub use super::prediction::{CycleBasis, Prediction, SweepRow};
use super::resources;
use super::traffic::{self, DEFAULT_STEPS};
use crate::arch::lstm::{node_slices, tree_levels, SingleDevice, System, ENGINE_FRONT, EW_LATENCY};
use crate::design::{Design, ModelDesign};
use crate::passes::partition::{self, LayerPartition};
use crate::plan::{LayerAssignment, Strategy};

/// Fixed pipeline drain of a layer-step, before tree levels and the last unit's drain slot:
/// the engine's front stages and its accumulator, the row lane's sum, rounding and saturation
/// registers, the element-wise unit, and the h write.
pub const DRAIN_BASE: u64 = (ENGINE_FRONT + 1 + 3 + EW_LATENCY + 1) as u64;

/// Cycles per timestep of the generated single-device hardware over `steps` timesteps (all
/// sequences together), if it can be generated. The x loader runs one timestep ahead, so only
/// the first vector's load (I beats) is exposed, and each step takes its layer-steps plus one
/// cycle: a run is I + steps x step cycles. When loading is slower than computing, every step
/// after the first waits for its vector instead: I beats, one cycle after each vector's end, and
/// one cycle for each group of E h values written meanwhile (h writes have the vector
/// memories' write port first).
pub fn single_device_cycles(design: &Design, steps: usize) -> Option<f64> {
    let d = SingleDevice::new(design).ok()?;
    let tree = tree_levels(d.arch.dp.k) as u64;
    // The last real unit's group in its hand-over (E units per group).
    let last_slot = ((d.arch.hidden - 1) % d.bundles() / d.e + 1) as u64;
    let per_layer: u64 = (0..d.arch.layers)
        .map(|l| (d.rows_per_lane * d.slices_per_row(l)) as u64 + DRAIN_BASE + tree + last_slot)
        .sum();
    // x writes: one value per cycle, or with E lanes a run of the head stream beat per cycle,
    // within one vector-memory word (E values) and one bank.
    let input = if d.e > 1 {
        let (p, bx0) = (d.arch.dp.stream.per_beat as usize, d.arch.bx0);
        (0..d.arch.input_size)
            .filter(|i| i % p == 0 || (i % bx0).is_multiple_of(d.e))
            .count() as u64
    } else {
        d.arch.input_size as u64
    };
    // Per vector after the first: its writes, the cycle after its end in which the loader takes
    // nothing (its timestep and sequence counts follow), and the h writes meanwhile.
    let load = input + 1 + (d.arch.hidden.div_ceil(d.e) * d.arch.layers) as u64;
    let step = per_layer + 1;
    let steps = steps.max(1) as u64;
    Some((input + (steps - 1) * step.max(load) + step) as f64 / steps as f64)
}

/// Compute cycles of one device's share of a layer on `engines` engines of K lanes: its rows
/// spread over the engines, each row taking the slices of the banks it holds.
fn share_cycles(design: &Design, p: &LayerPartition, device: usize, l: usize) -> u64 {
    let ModelDesign::Lstm(m) = &design.model else {
        return 0;
    };
    let layer = &m.layers[l];
    let k = design.plan.banks;
    let engines = design.plan.engines.max(1) as u64;
    let Some(s) = p.shares.iter().find(|s| s.device == device) else {
        return 0;
    };
    let has_x = s.blocks.iter().any(|b| *b < k);
    let has_h = s.blocks.iter().any(|b| *b >= k);
    let slices = has_x as u64 * layer.q_ih.shape.nnz_per_bank as u64
        + has_h as u64 * layer.q_hh.shape.nnz_per_bank as u64;
    (s.rows.len() as u64).div_ceil(engines) * slices + DRAIN_BASE + tree_levels(k) as u64 + 1
}

/// Predict the design's cycles per timestep, link traffic, memory and multipliers.
pub fn predict(design: &Design) -> Prediction {
    if let ModelDesign::Cnn(_) = &design.model {
        return super::cnn_cost::predict(design);
    }
    let costs = resources::device_costs(design);
    let max_memory_bits = costs
        .iter()
        .map(|c| c.weight_bits + c.state_bits)
        .max()
        .unwrap_or(0);
    let multipliers = costs.iter().map(|c| c.multipliers).max().unwrap_or(0);
    let link_bytes_per_step = traffic::traffic(design).total();
    let (cycles_per_step, basis) = cycles(design);
    Prediction {
        cycles_per_step,
        basis,
        link_bytes_per_step,
        max_memory_bits,
        multipliers,
        recompute: None,
    }
}

/// Cycles per timestep, and how they were found.
fn cycles(design: &Design) -> (f64, CycleBasis) {
    if design.plan.devices > 1 {
        if let Some(c) = node_cycles_per_step(design, DEFAULT_STEPS) {
            return (c, CycleBasis::NodeModel);
        }
    } else if let Some(c) = single_device_cycles(design, DEFAULT_STEPS) {
        return (c, CycleBasis::Exact);
    }
    let ModelDesign::Lstm(m) = &design.model else {
        return (0.0, CycleBasis::Estimate);
    };
    let t = &design.plan.plan.target;
    let (width, latency) = (t.link.width.max(1) as f64, t.link.latency as f64);
    let parts = &design.partition.layers;
    let per_layer_rx: Vec<u64> = (0..parts.len())
        .map(|l| {
            traffic::payload_bits(design, Some(l))
                .iter()
                .map(|(_, rx)| *rx)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let round = |l: usize| -> f64 {
        let rx = per_layer_rx[l] as f64;
        if rx == 0.0 {
            0.0
        } else {
            rx / width + latency
        }
    };
    let input = m.input_size as f64;
    let pipelined = parts.iter().all(|p| p.strategy == Strategy::Layers);
    let cycles = if pipelined {
        let mut per_device = vec![0u64; design.plan.devices];
        for (l, p) in parts.iter().enumerate() {
            per_device[p.devices[0]] += share_cycles(design, p, p.devices[0], l);
        }
        let comm = (0..parts.len()).map(round).fold(0.0, f64::max);
        input + per_device.into_iter().max().unwrap_or(0) as f64 + comm
    } else {
        let mut total = input;
        for (l, p) in parts.iter().enumerate() {
            let compute = p
                .devices
                .iter()
                .map(|d| share_cycles(design, p, *d, l))
                .max()
                .unwrap_or(0) as f64;
            let rounds = match p.strategy {
                Strategy::Rows => 1.0,
                Strategy::Layers => 0.0,
                _ => 2.0,
            };
            // Reduced strategies finish every unit on one device, one unit per cycle.
            let finish = if rounds == 2.0 {
                m.hidden_size as f64
            } else {
                0.0
            };
            total += compute
                + finish
                + rounds
                    * round(l).max(if rounds > 0.0 && p.devices.len() > 1 {
                        latency
                    } else {
                        0.0
                    });
        }
        total
    };
    (cycles, CycleBasis::Estimate)
}

/// The same model and formats under each strategy and device count.
pub fn sweep(design: &Design, devices: &[usize]) -> Vec<SweepRow> {
    let ModelDesign::Lstm(m) = &design.model else {
        return super::cnn_cost::sweep(design, devices);
    };
    let layers = m.layers.len();
    let mut rows = Vec::new();
    for &n in devices {
        for strategy in [
            Strategy::Rows,
            Strategy::Cols,
            Strategy::Gates,
            Strategy::Ops,
            Strategy::Layers,
        ] {
            let limit = match strategy {
                Strategy::Rows => m.hidden_size,
                Strategy::Cols => 2 * design.plan.banks,
                Strategy::Gates => 4,
                Strategy::Ops => 2,
                _ => layers,
            };
            // One device is one device, whatever the strategy: the rows row is the baseline.
            if n == 0 || n > limit || (n == 1 && strategy != Strategy::Rows) {
                continue;
            }
            let assign: Vec<LayerAssignment> = (0..layers)
                .map(|l| match strategy {
                    Strategy::Layers => LayerAssignment {
                        strategy,
                        devices: vec![l * n / layers],
                    },
                    _ => LayerAssignment {
                        strategy,
                        devices: (0..n).collect(),
                    },
                })
                .collect();
            let mut d = design.clone();
            d.plan.devices = n;
            d.plan.layers = assign;
            let Ok(p) = partition::build(&d.plan) else {
                continue;
            };
            d.partition = p;
            rows.push(SweepRow {
                strategy,
                devices: n,
                prediction: predict(&d),
                design: d,
            });
        }
    }
    rows
}

/// Node pipeline constants (cycles), read off `partita_node.v`: state transitions around a
/// layer's row issue and the engine's depth after the last issue (past the engine's front,
/// `Memories::engine_front`), the finisher's depth, and the delay a frame sees at each
/// forwarding hop.
const NODE_MAC_EXTRA: u64 = 5;
/// The finisher's depth past its own pipeline (`NodeArch::fin_latency`): the element-wise
/// unit and the h write.
const NODE_FIN_EW: u64 = EW_LATENCY as u64 + 3;
const NODE_TICK_EXTRA: u64 = 3;
/// The x pass's start (S_XSTART, S_XWAIT) before its first row.
const NODE_XPASS_EXTRA: u64 = 2;
/// Per hop, besides the link's latency: the transmit side's register stages (the framer's
/// output slice, the port's slice) and the receiver's (its FIFO, the FIFO's output register,
/// the head slice, the CRC's second stage before the trailer's check). A forwarded frame
/// skips the framer's slice; one cycle per hop is within the model's tolerance.
const NODE_HOP: u64 = 8;
/// From an h value leaving the element-wise unit to its frame being packed (the transmit
/// queue and its two register slices), and from a barrier's arrival to the next tick's start.
const NODE_FRAME_FILL: u64 = 4;
const NODE_BAR_TAKE: u64 = 3;

/// Vector-memory writes of one x vector on a node with `q`-value words: the stream's beats
/// (`per_beat` values each), each split where it crosses a word or an x bank.
fn x_writes(sys: &System, q: usize) -> u64 {
    let (bx, n_in) = (sys.arch.bx0.max(1), sys.arch.input_size);
    let p = (sys.arch.dp.stream.per_beat as usize).max(1);
    let (mut u, mut n) = (0usize, 0u64);
    while u < n_in {
        let beat_end = ((u / p + 1) * p).min(n_in);
        while u < beat_end {
            let idx = u % bx;
            u += (beat_end - u).min(q - idx % q).min(bx - idx);
            n += 1;
        }
    }
    n
}

/// Vector-memory writes of a received run of `len` h values from unit `start` on a node with
/// `q`-value words: its frames' beats, each split where it crosses a word or a bank.
fn rx_writes(sys: &System, start: usize, len: usize, q: usize) -> u64 {
    let (bh, end) = (sys.arch.bh, start + len);
    let vpb = sys.frame.values_per_beat(Kind::H) as usize;
    let maxv = (sys.frame.max_values(Kind::H) as usize).max(1);
    let (mut u, mut n) = (start, 0u64);
    while u < end {
        let frame_end = (u + maxv).min(end);
        while u < frame_end {
            let beat_end = (u + vpb).min(frame_end);
            while u < beat_end {
                let idx = u % bh;
                u += (beat_end - u).min(q - idx % q).min(bh - idx);
                n += 1;
            }
        }
    }
    n
}

/// A frame copy on a ring: ready at its source, its beats on every link, its destination (its
/// source for a broadcast, which goes to every other device).
struct RingCopy {
    ready: u64,
    src: usize,
    dst: usize,
    beats: u64,
}

/// One device's h values of a layer on a ring: where they start, how many, when the first is
/// finished, and their frame copies (taken by [`ring_send`]).
struct RingRun {
    src: usize,
    start: usize,
    len: usize,
    first_issue: u64,
    copies: Vec<RingCopy>,
}

/// Sends `copies` round a one-way ring of `d` devices whose links are busy until `free` (per
/// source device): each link carries one beat per cycle, in the order the copies reach it; a
/// copy enters the next link `hop` cycles after it started on this one (cut-through), and has
/// fully arrived a link latency after its last beat. Returns, per copy, when it has arrived at
/// each device on its way (`k - 1` for the device `k` links on from its source).
fn ring_send(copies: &[RingCopy], free: &mut [u64], d: usize, lat: u64, hop: u64) -> Vec<Vec<u64>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut done = vec![Vec::new(); copies.len()];
    // (time it reaches a link, copy, link = the device it leaves).
    let mut heap: BinaryHeap<Reverse<(u64, usize, usize)>> = copies
        .iter()
        .enumerate()
        .map(|(i, c)| Reverse((c.ready, i, c.src)))
        .collect();
    while let Some(Reverse((at, i, link))) = heap.pop() {
        let c = &copies[i];
        let start = at.max(free[link]);
        free[link] = start + c.beats;
        let next = (link + 1) % d;
        done[i].push(start + c.beats + lat);
        // A unicast copy stops at its destination, a broadcast at the device before its source.
        let end = if c.src == c.dst {
            (c.src + d - 1) % d
        } else {
            c.dst
        };
        if next != end {
            heap.push(Reverse((start + lat + hop, i, next)));
        }
    }
    done
}

/// When a ring copy from `src` has arrived at device `c` (see [`ring_send`]).
fn ring_arrival(done: &[u64], src: usize, c: usize, d: usize) -> u64 {
    done[(c + d - src) % d - 1]
}

/// Predicted cycles per timestep of the generated multi-device hardware over sequences of
/// `steps` timesteps, or None if the plan has no node hardware.
pub fn node_cycles_per_step(design: &Design, steps: usize) -> Option<f64> {
    let sys = System::new(design).ok()?;
    let s = &sys.schedule;
    let (nl, d) = (s.layers, s.nodes.len());
    let tree = tree_levels(sys.arch.dp.k) as u64;
    let lat = s.latency as u64;
    // Several engines hand their row sums over through a shift register, G per cycle: the
    // last row of a layer leaves a cycle after its slot finished, plus its group's position.
    let serializer = |node: usize, rows: usize| {
        let (m, g) = (sys.nodes[node].m, sys.nodes[node].g);
        if m > 1 {
            1 + (((rows.max(1) - 1) % m) / g) as u64
        } else {
            0
        }
    };
    // Cycles of a row of layer l on a node: its x and h slices, or only its h slices where
    // W_ih·x ran ahead (layer 0 with `overlap`: the x pass ran before the tick's barrier).
    let row_len = |node: usize, l: usize| -> u64 {
        let (a, b) = node_slices(&sys.arch, l, &s.nodes[node].layers[l]);
        if l == 0 && sys.nodes[node].overlap {
            b as u64
        } else {
            (a + b) as u64
        }
    };
    // A layer's cycles past its row issue: state transitions and the engine's front.
    let mac_extra =
        |node: usize| -> u64 { NODE_MAC_EXTRA + u64::from(sys.nodes[node].mem.engine_front()) };
    // Cycles from a layer's start until its row i (in issue order) leaves a node's serializer.
    let row_done = |node: usize, l: usize, i: usize| -> u64 {
        let m = sys.nodes[node].m;
        (i / m + 1) as u64 * row_len(node, l) + mac_extra(node) + tree + serializer(node, i + 1)
    };
    let circular = !s.switched && s.topology == crate::plan::Topology::Ring && s.nodes.len() > 2;
    let psum_frame = sys
        .frame
        .frame_beats(Kind::Psum, sys.frame.max_values(Kind::Psum));
    // One tick with the given layers active, each device's x pass still running `pre` cycles
    // into it; returns its length and when each device finished its part.
    let tick = |active: &[bool], pre: &[u64]| -> (u64, Vec<u64>) {
        let mut t = vec![NODE_TICK_EXTRA; d];
        let mut h_ready = vec![0u64; d];
        // On a ring of three or more: when each link is next free.
        let mut ring_free = vec![0u64; d];
        // Writes each device's vector-memory port takes in the tick: the h values below, and
        // the next timestep's x (a stream beat's run per write, split at words and banks),
        // loaded while this tick runs.
        let mut port: Vec<u64> = s
            .nodes
            .iter()
            .map(|n| {
                if n.needs_x && active[0] {
                    x_writes(&sys, sys.nodes[n.index].mem.vq)
                } else {
                    0
                }
            })
            .collect();
        // Per device: the h values it writes in this layer, (first arrival, last, count).
        let mut writes: Vec<Vec<(u64, u64, u64)>> = vec![Vec::new(); d];
        for l in 0..nl {
            if !active[l] {
                continue;
            }
            let mut mac_end = vec![0u64; d];
            let mut ring_h: Vec<RingRun> = Vec::new();
            let mut mac_start = vec![0u64; d];
            for n in &s.nodes {
                let nlay = &n.layers[l];
                if l == 0 {
                    t[n.index] += pre[n.index];
                }
                mac_start[n.index] = t[n.index];
                if nlay.computes() {
                    t[n.index] += sys.nodes[n.index].layers[l].slots as u64 * row_len(n.index, l)
                        + mac_extra(n.index)
                        + tree
                        + serializer(n.index, nlay.rows.len());
                }
                mac_end[n.index] = t[n.index];
            }
            for n in &s.nodes {
                let nlay = &n.layers[l];
                if nlay.fin.is_empty() {
                    continue;
                }
                let len = nlay.fin.len();
                // When unit u's partial sums are all in: per source, the cycle its last value
                // of the unit leaves the row serializer (the local engines), or the frame that
                // carries it arrives (a remote source's: a link latency per hop after its row,
                // and behind the earlier frames on the receive port). While its own rows are
                // issued, the finisher takes units only if the layer's sums stay here.
                let mut ready = vec![
                    if nlay.sends_psums(n.index) {
                        t[n.index]
                    } else {
                        mac_start[n.index] + 1
                    };
                    len
                ];
                let maxv = (sys.frame.max_values(Kind::Psum) as usize).max(1);
                let mut port_in = vec![(u64::MAX, Vec::new()); s.nodes[n.index].ports.len()];
                for &(src, mask) in &nlay.sources {
                    let c = mask.count_ones() as usize;
                    let rows = s.nodes[src].layers[l].rows.len();
                    let done = |i: usize| mac_start[src] + row_done(src, l, i);
                    if src == n.index {
                        for (u, r) in ready.iter_mut().enumerate() {
                            *r = (*r).max(done(c * u + c - 1));
                        }
                        continue;
                    }
                    let far = s.hops(src, n.index) * (lat + NODE_HOP);
                    let port = &mut port_in[s.port_of(n.index, src)];
                    port.0 = port.0.min(mac_start[src]);
                    let mut beats = Vec::with_capacity(len);
                    for (u, r) in ready.iter_mut().enumerate() {
                        let fe = ((c * (u + 1) - 1) / maxv + 1) * maxv;
                        *r = (*r).max(done(fe.min(rows) - 1) + far + psum_frame);
                        beats.push((sys.frame.run_beats(Kind::Psum, fe.min(rows) as u64), far));
                    }
                    port.1.push(beats);
                }
                // When the engines are faster than the links, the frames queue on the
                // finisher's receive port.
                for (first, runs) in port_in {
                    for (u, r) in ready.iter_mut().enumerate() {
                        let beats: u64 = runs.iter().map(|b| b[u].0).sum();
                        if let Some(far) = runs.iter().map(|b| b[u].1).max() {
                            *r = (*r).max(first + beats + far);
                        }
                    }
                }
                // The finisher takes a group of E ready units per cycle (E the element-wise
                // lanes); the layer ends after its rows and the last group's pipeline.
                let e = sys.nodes[n.index].e.max(1);
                let fin_extra = NODE_FIN_EW + sys.nodes[n.index].fin_latency() as u64;
                let first_issue = ready[..e.min(len)].iter().copied().max().unwrap_or(0);
                let mut f = 0;
                let mut issue = Vec::with_capacity(len);
                for grp in ready.chunks(e) {
                    let r = grp.iter().copied().max().unwrap_or(0);
                    issue.extend(std::iter::repeat_n(f.max(r), grp.len()));
                    f = f.max(r) + 1;
                }
                t[n.index] = t[n.index].max(f + fin_extra - 1);
                let len = len as u64;
                // Its own h values go to its vector memory as they are finished.
                if nlay.need_h {
                    writes[n.index].push((first_issue + fin_extra, t[n.index], len / e as u64));
                }
                // Each consumer receives them in frames as they are finished, one copy per
                // consumer of each frame (of up to maxv values): from the first frame to the
                // last, which leaves once the last unit is finished (after the copies before it)
                // and not before the link has carried every copy of the run.
                let maxv = (sys.frame.max_values(Kind::H) as u64).max(1);
                let frames = len.div_ceil(maxv).max(1);
                if circular {
                    // On a ring of three or more every link also forwards the other devices'
                    // frames: the copies (each frame's, lowest destination first, as its last
                    // value leaves the element-wise unit) go round the ring with the frames
                    // sent before them.
                    // Values for every other device go as one broadcast copy.
                    let bc = nlay.h_consumers.len() + 1 == d;
                    let dsts = if bc {
                        vec![n.index]
                    } else {
                        nlay.h_consumers.clone()
                    };
                    let mut copies = Vec::new();
                    for fr in 0..frames {
                        let lastu = ((fr + 1) * maxv).min(len) as usize - 1;
                        let n_vals = ((fr + 1) * maxv).min(len) - fr * maxv;
                        for &c in &dsts {
                            copies.push(RingCopy {
                                ready: issue[lastu] + fin_extra + NODE_FRAME_FILL,
                                src: n.index,
                                dst: c,
                                beats: sys.frame.frame_beats(Kind::H, n_vals as u32) + 1,
                            });
                        }
                    }
                    ring_h.push(RingRun {
                        src: n.index,
                        start: nlay.fin.start,
                        len: nlay.fin.len(),
                        first_issue,
                        copies,
                    });
                    continue;
                }
                let first_beats = sys.frame.run_beats(Kind::H, len.min(maxv));
                let tail = sys.frame.run_beats(Kind::H, len - (frames - 1) * maxv);
                let all = sys.frame.run_beats(Kind::H, len);
                for (j, &c) in nlay.h_consumers.iter().enumerate() {
                    let far = s.hops(n.index, c) * (lat + NODE_HOP);
                    let k = j as u64 + 1;
                    let first = first_issue + fin_extra + k * first_beats + far;
                    let last = (t[n.index] + k * tail).max(first_issue + fin_extra + k * all) + far;
                    let q = sys.nodes[c].mem.vq;
                    writes[c].push((
                        first,
                        last,
                        rx_writes(&sys, nlay.fin.start, nlay.fin.len(), q),
                    ));
                }
            }
            // The ring's copies of this layer, all devices' together, in the order they reach
            // each link.
            if !ring_h.is_empty() {
                let all: Vec<RingCopy> =
                    ring_h.iter_mut().flat_map(|r| r.copies.drain(..)).collect();
                let done = ring_send(&all, &mut ring_free, d, lat, NODE_HOP);
                let mut k = 0;
                for RingRun {
                    src,
                    start,
                    len,
                    first_issue,
                    ..
                } in ring_h.drain(..)
                {
                    let cons = &s.nodes[src].layers[l].h_consumers;
                    let bc = cons.len() + 1 == d;
                    let per_frame = if bc { 1 } else { cons.len() };
                    let n_copies = len
                        .div_ceil(sys.frame.max_values(Kind::H).max(1) as usize)
                        .max(1)
                        * per_frame;
                    for (j, &c) in cons.iter().enumerate() {
                        let j = if bc { 0 } else { j };
                        let mine: Vec<u64> = (j..n_copies)
                            .step_by(per_frame)
                            .map(|i| ring_arrival(&done[k + i], src, c, d))
                            .collect();
                        let first = mine.first().copied().unwrap_or(first_issue);
                        let last = mine.iter().copied().max().unwrap_or(first_issue);
                        let q = sys.nodes[c].mem.vq;
                        writes[c].push((first, last, rx_writes(&sys, start, len, q)));
                    }
                    k += n_copies;
                }
            }
            // A device's vector memories take one write per cycle: one of its own h values, or
            // a received beat's run up to a word or bank boundary; from the first arrival on,
            // and not before the last has arrived.
            for (c, w) in writes.iter_mut().enumerate() {
                if w.is_empty() {
                    continue;
                }
                let first = w.iter().map(|e| e.0).min().unwrap_or(0).max(h_ready[c]);
                let last = w.iter().map(|e| e.1).max().unwrap_or(0);
                let total: u64 = w.iter().map(|e| e.2).sum();
                h_ready[c] = (first + total).max(last);
                port[c] += total;
                w.clear();
            }
        }
        // Barriers: every device hears from every other after its h values. The write port
        // takes one write per cycle, so a tick lasts at least its writes.
        let mut end = 0;
        // On a ring the barriers queue behind the h frames still on the links.
        let bar: Vec<(usize, usize, u64)> = if circular {
            // One broadcast barrier per device.
            let copies: Vec<RingCopy> = (0..d)
                .map(|b| RingCopy {
                    ready: t[b] + 1,
                    src: b,
                    dst: b,
                    beats: sys.frame.run_beats(Kind::Barrier, 0) + 1,
                })
                .collect();
            let done = ring_send(&copies, &mut ring_free, d, lat, NODE_HOP);
            copies
                .iter()
                .zip(done)
                .flat_map(|(c, t)| {
                    (0..d)
                        .filter(move |a| *a != c.src)
                        .map(move |a| (c.src, a, ring_arrival(&t, c.src, a, d)))
                })
                .collect()
        } else {
            Vec::new()
        };
        for a in 0..d {
            let mut ready = t[a].max(h_ready[a]).max(port[a] + NODE_TICK_EXTRA);
            for b in (0..d).filter(|b| *b != a) {
                ready = ready.max(t[b] + 2 * d as u64 + s.hops(b, a) * (lat + NODE_HOP));
            }
            for &(_, _, at) in bar.iter().filter(|x| x.1 == a) {
                ready = ready.max(at + NODE_BAR_TAKE);
            }
            end = end.max(ready);
        }
        (end, t)
    };
    // The first x vector arrives before the first tick: one stream beat per cycle.
    let per_beat = (sys.arch.dp.stream.per_beat as usize).max(1);
    let mut total = sys.arch.input_size.div_ceil(per_beat) as u64;
    // Where W_ih·x runs ahead (`overlap`), a device issues layer 0's x slices as soon as it has
    // finished its part of a tick, while it waits for the barrier; the first tick runs them
    // first.
    let x_pass = |node: usize| -> u64 {
        let (a, _) = node_slices(&sys.arch, 0, &s.nodes[node].layers[0]);
        sys.nodes[node].layers[0].slots as u64 * a as u64 + NODE_XPASS_EXTRA
    };
    let mut pre: Vec<u64> = (0..d)
        .map(|n| if sys.nodes[n].overlap { x_pass(n) } else { 0 })
        .collect();
    for tt in 0..s.ticks(steps) {
        let active: Vec<bool> = (0..nl).map(|l| s.active(l, tt, steps)).collect();
        let (len, own) = tick(&active, &pre);
        total += len;
        let next0 = tt + 1 < s.ticks(steps) && s.active(0, tt + 1, steps);
        for n in 0..d {
            pre[n] = if sys.nodes[n].overlap && next0 {
                (own[n] + 1 + x_pass(n)).saturating_sub(len)
            } else {
                0
            };
        }
    }
    Some(total as f64 / steps as f64)
}
