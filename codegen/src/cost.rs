//! Cycle cost model: predicted cycles per timestep, link traffic, memory and multipliers for a
//! design, and sweeps over device counts and strategies.
//!
//! For one device the model follows the generated hardware cycle for cycle (see `emit.rs`):
//! every timestep loads x (I beats), then each layer issues rows-per-lane x slices-per-row
//! cycles and drains its pipeline (12 cycles, plus one per adder-tree level, plus the position
//! of the last real unit in its hand-over bundle). A test holds it to the cosim's cycle counter.
//!
//! For several devices there is no generated hardware yet; the model adds, per layer, the
//! slowest device's compute and the link time of its dependency rounds (all-gather for `rows`;
//! reduce then broadcast for `cols`, `gates` and `ops`), each round costing its largest
//! per-device receive volume over the link width plus the link latency. `layers` pipelines
//! over timesteps, so its step time is the slowest device's. These figures are estimates until
//! multi-device cosimulation exists to validate them.

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
            if n == 0 || n > limit {
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
            });
        }
    }
    rows
}
