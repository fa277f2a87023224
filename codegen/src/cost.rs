//! Cycle cost model: predicted cycles per timestep, link traffic, memory and multipliers for a
//! design, and sweeps over device counts and strategies.
//!
//! For one device the model follows the generated hardware cycle for cycle (see `emit.rs`):
//! every timestep loads x (I beats), then each layer issues rows-per-lane x slices-per-row
//! cycles and drains its pipeline (12 cycles, plus one per adder-tree level, plus the position
//! of the last real unit in its hand-over bundle). A test holds it to the cosim's cycle counter.
//!
//! For several devices the model replays one tick of the generated node hardware
//! (`node.rs`): each device runs its program (for each layer: issue its rows, then finish its
//! units once every partial sum arrived), partial sums reach their finisher a link latency
//! per hop after the source's last row, and the tick ends when every device has received the
//! h values it needs (written one per cycle) and every barrier. A sequence of S steps takes
//! S + L - 1 ticks (layer l works on step T - l at tick T). A test holds the prediction within
//! 10% of the cosimulated cycle counters on the example plans. Plans the node hardware cannot
//! build fall back to a coarser estimate.

use crate::design::{Design, ModelDesign};
use crate::emit::{bits_for, Geometry};
use crate::partition::{self, LayerPartition};
use crate::plan::{LayerAssignment, Strategy};
use crate::summary::{self, DeviceCost};

/// Fixed pipeline drain of a layer-step, before tree levels and the last unit's drain slot.
pub const DRAIN_BASE: u64 = 12;

/// What the model predicts for one design.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub cycles_per_step: f64,
    /// Whether the figure follows generated hardware exactly (single device) or is an estimate.
    pub exact: bool,
    pub link_bytes_per_step: f64,
    pub max_memory_bits: u64,
    pub multipliers: u64,
}

/// Cycles per timestep of the generated single-device hardware, if it can be generated.
pub fn single_device_cycles(design: &Design) -> Option<u64> {
    let ModelDesign::Lstm(m) = &design.model else {
        return None;
    };
    let g = Geometry::new(design, m).ok()?;
    let tree = if g.k == 1 {
        1
    } else {
        bits_for(g.k as u64 - 1)
    } as u64;
    let last_slot = ((g.h - 1) % g.bundles() + 1) as u64;
    let per_layer: u64 = (0..g.layers)
        .map(|l| (g.rows_per_lane * g.slices_per_row(l)) as u64 + DRAIN_BASE + tree + last_slot)
        .sum();
    Some(g.i as u64 + per_layer)
}

/// Compute cycles of one device's share of a layer on `engines` engines of K lanes: its rows
/// spread over the engines, each row taking the slices of the banks it holds.
fn share_cycles(design: &Design, p: &LayerPartition, device: usize, l: usize) -> u64 {
    let ModelDesign::Lstm(m) = &design.model else {
        return 0;
    };
    let layer = &m.layers[l];
    let k = design.plan.banks;
    let engines = design.plan.plan.target.engines.max(1) as u64;
    let Some(s) = p.shares.iter().find(|s| s.device == device) else {
        return 0;
    };
    let has_x = s.blocks.iter().any(|b| *b < k);
    let has_h = s.blocks.iter().any(|b| *b >= k);
    let slices = has_x as u64 * layer.q_ih.shape.nnz_per_bank as u64
        + has_h as u64 * layer.q_hh.shape.nnz_per_bank as u64;
    let tree = if k == 1 { 1 } else { bits_for(k as u64 - 1) } as u64;
    (s.rows.len() as u64).div_ceil(engines) * slices + DRAIN_BASE + tree + 1
}

/// Predict the design's cycles per timestep, link traffic, memory and multipliers.
pub fn predict(design: &Design) -> Prediction {
    let costs = summary::device_costs(design);
    let max_memory_bits = costs
        .iter()
        .map(|c| c.weight_bits + c.state_bits)
        .max()
        .unwrap_or(0);
    let multipliers = costs.iter().map(|c| c.multipliers).max().unwrap_or(0);
    let link_bytes_per_step = costs.iter().map(|c| c.tx_bits).sum::<u64>() as f64 / 8.0;
    if design.plan.devices > 1 {
        if let (Some(c), Some(b)) = (
            node_cycles_per_step(design, DEFAULT_STEPS),
            node_link_bytes_per_step(design, DEFAULT_STEPS),
        ) {
            return Prediction {
                cycles_per_step: c,
                exact: false,
                link_bytes_per_step: b,
                max_memory_bits,
                multipliers,
            };
        }
    }
    if design.plan.devices == 1 {
        if let Some(c) = single_device_cycles(design) {
            return Prediction {
                cycles_per_step: c as f64,
                exact: true,
                link_bytes_per_step,
                max_memory_bits,
                multipliers,
            };
        }
    }
    let ModelDesign::Lstm(m) = &design.model else {
        return Prediction {
            cycles_per_step: 0.0,
            exact: false,
            link_bytes_per_step,
            max_memory_bits,
            multipliers,
        };
    };
    let t = &design.plan.plan.target;
    let (width, latency) = (t.link.width.max(1) as f64, t.link.latency as f64);
    let parts = &design.partition.layers;
    let per_layer_rx: Vec<Vec<DeviceCost>> = (0..parts.len())
        .map(|l| summary::layer_costs(design, l))
        .collect();
    let round = |l: usize| -> f64 {
        let rx = per_layer_rx[l].iter().map(|c| c.rx_bits).max().unwrap_or(0) as f64;
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
    Prediction {
        cycles_per_step: cycles,
        exact: false,
        link_bytes_per_step,
        max_memory_bits,
        multipliers,
    }
}

/// One row of a sweep.
#[derive(Clone, Debug)]
pub struct SweepRow {
    pub strategy: Strategy,
    pub devices: usize,
    pub prediction: Prediction,
    /// The plan variant the row describes (for measuring it).
    pub design: Design,
}

/// The same model and formats under each strategy and device count (LSTM plans).
pub fn sweep(design: &Design, devices: &[usize]) -> Vec<SweepRow> {
    let ModelDesign::Lstm(m) = &design.model else {
        return Vec::new();
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

/// Timesteps per sequence the multi-device prediction assumes (the cosim's default input).
pub const DEFAULT_STEPS: usize = 8;

/// Node pipeline constants (cycles), read off `partita_node.v`: state transitions around a
/// layer's row issue, the engine's depth after the last issue, the finisher's depth, and the
/// delay a frame sees at each forwarding hop.
const NODE_MAC_EXTRA: u64 = 7;
const NODE_FIN_EXTRA: u64 = 11;
const NODE_TICK_EXTRA: u64 = 3;
const NODE_HOP: u64 = 4;

/// Predicted cycles per timestep of the generated multi-device hardware over sequences of
/// `steps` timesteps, or None if the plan has no node hardware.
pub fn node_cycles_per_step(design: &Design, steps: usize) -> Option<f64> {
    let ModelDesign::Lstm(m) = &design.model else {
        return None;
    };
    let sys = crate::node::system(design).ok()?;
    let nl = m.layers.len();
    let d = sys.nodes.len();
    let k = design.plan.banks;
    let tree = if k == 1 { 1 } else { bits_for(k as u64 - 1) } as u64;
    let q = design.quant();
    let dw = q.data.width() as u64;
    let lw = sys.width as u64;
    let vpb_h = (lw / dw).max(1);
    let lat = sys.latency as u64;
    let hops = |a: usize, b: usize| -> u64 {
        if sys.switched {
            2
        } else if sys.links.len() == d && d > 2 {
            ((b + d - a) % d) as u64
        } else {
            (a as i64 - b as i64).unsigned_abs()
        }
    };
    let slices = |l: usize, n: &crate::node::NodeLayer| -> u64 {
        let x = if n.x_banks.is_empty() {
            0
        } else {
            m.layers[l].q_ih.shape.nnz_per_bank
        };
        let h = if n.h_banks.is_empty() {
            0
        } else {
            m.layers[l].q_hh.shape.nnz_per_bank
        };
        (x + h) as u64
    };
    // One tick with the given layers active; returns its length.
    let tick = |active: &[bool]| -> u64 {
        let mut t = vec![NODE_TICK_EXTRA; d];
        let mut h_ready = vec![0u64; d];
        for l in 0..nl {
            if !active[l] {
                continue;
            }
            let mut mac_end = vec![0u64; d];
            for n in &sys.nodes {
                let nlay = &n.layers[l];
                if !nlay.rows.is_empty() {
                    t[n.index] += nlay.rows.len() as u64 * slices(l, nlay) + NODE_MAC_EXTRA + tree;
                }
                mac_end[n.index] = t[n.index];
            }
            for n in &sys.nodes {
                let nlay = &n.layers[l];
                if nlay.fin.is_empty() {
                    continue;
                }
                let mut start = t[n.index];
                for &(s, _) in &nlay.sources {
                    if s != n.index {
                        let beats = MAX_FRAME_BEATS + 2;
                        start = start.max(mac_end[s] + hops(s, n.index) * (lat + NODE_HOP) + beats);
                    }
                }
                t[n.index] = start + nlay.fin.len() as u64 + NODE_FIN_EXTRA;
                // Its h values reach each consumer, which writes them one per cycle.
                let beats = (nlay.fin.len() as u64).div_ceil(vpb_h) + 2;
                for (j, &c) in nlay.h_consumers.iter().enumerate() {
                    let arrive =
                        t[n.index] + (j as u64 + 1) * beats + hops(n.index, c) * (lat + NODE_HOP);
                    h_ready[c] = h_ready[c].max(arrive) + nlay.fin.len() as u64;
                }
            }
        }
        // Barriers: every device hears from every other after its h values.
        let mut end = 0;
        for a in 0..d {
            let mut ready = t[a].max(h_ready[a]);
            for b in 0..d {
                if a != b {
                    ready = ready.max(t[b] + 2 * d as u64 + hops(b, a) * (lat + NODE_HOP));
                }
            }
            end = end.max(ready);
        }
        end
    };
    let mut total = m.input_size as u64;
    for tt in 0..steps + nl - 1 {
        let active: Vec<bool> = (0..nl).map(|l| l <= tt && tt < steps + l).collect();
        total += tick(&active);
    }
    Some(total as f64 / steps as f64)
}

/// Payload beats per frame at most (see `node.rs`).
const MAX_FRAME_BEATS: u64 = crate::node::MAX_BEATS as u64;

/// Link bytes per timestep the generated nodes send (headers, CRCs and barriers included;
/// forwarding hops not counted again), over sequences of `steps` timesteps.
pub fn node_link_bytes_per_step(design: &Design, steps: usize) -> Option<f64> {
    let ModelDesign::Lstm(m) = &design.model else {
        return None;
    };
    let sys = crate::node::system(design).ok()?;
    let nl = m.layers.len();
    let d = sys.nodes.len() as u64;
    let q = design.quant();
    let lw = sys.width as u64;
    let vpb_h = (lw / q.data.width() as u64).max(1);
    let vpb_p = (lw / design.acc_bits.max(1) as u64).max(1);
    let run = |n: u64, vpb: u64| -> u64 {
        let maxv = (MAX_FRAME_BEATS * vpb).min(127);
        let mut beats = 0;
        let mut left = n;
        while left > 0 {
            let f = left.min(maxv);
            beats += f.div_ceil(vpb) + 2;
            left -= f;
        }
        beats
    };
    let mut per_layer = vec![0u64; nl];
    for n in &sys.nodes {
        for (l, nlay) in n.layers.iter().enumerate() {
            if !nlay.rows.is_empty() && nlay.pdst != n.index {
                per_layer[l] += run(nlay.rows.len() as u64, vpb_p);
            }
            per_layer[l] += nlay.h_consumers.len() as u64 * run(nlay.fin.len() as u64, vpb_h);
        }
    }
    let ticks = (steps + nl - 1) as u64;
    let beats = per_layer.iter().sum::<u64>() * steps as u64 + ticks * d * (d - 1) * 2;
    Some((beats * lw / 8) as f64 / steps as f64)
}
