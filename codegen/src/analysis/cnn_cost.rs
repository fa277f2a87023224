//! The CNN cost model: cycles per frame, link bytes per frame, memory and multipliers per
//! device, and for `fused` the recompute factor, under each strategy.
//!
//! - One device, and the built systems (`fused`, `tiles`, `filters`, `channels`, `layers`,
//!   and their mixes): the
//!   architecture's own figures (`arch::cnn`, `arch::cnn_system`): every stage's cycles per
//!   frame from its issue count and its streams (one value in and out per cycle), every
//!   device's engines folded for its share, the slowest device's pace; link bytes are the
//!   frames each device sends (header, payload, trailer). Tests hold them to the cosimulation.
//! - Where the hardware refuses the plan (a mix that is not built): estimates from the same
//!   stages. Tiles: every window stage on row strips
//!   (`Stage::on_rows`, no recompute), each strip's input rows beyond its own exchanged with
//!   its neighbours; dense stages on one device. Filters: each device computes 1/N of every
//!   stage's output channels and reads the all-gathered input. Channels: each device reads
//!   1/N of the input channels and sends its full-width partial sums of every output to the
//!   output's finisher.

use partita_hdl::frame::{self, Kind};

use super::prediction::{CycleBasis, Prediction, SweepRow};
use crate::arch::cnn::{CnnArch, Stage, StageKind};
use crate::arch::cnn_system::CnnSystem;
use crate::design::{Design, ModelDesign};
use crate::passes::partition;
use crate::plan::{CnnLayer, LayerAssignment, ModelShape, Strategy};

/// Bits a device holds: weights and biases, line buffers.
fn memory_bits(stages: &[Stage]) -> u64 {
    stages
        .iter()
        .map(|s| s.weight_bits() + s.buffer_bits())
        .sum()
}

/// The prediction for a CNN design.
pub fn predict(design: &Design) -> Prediction {
    let Ok(whole) = CnnArch::whole(design) else {
        return Prediction {
            cycles_per_step: 0.0,
            basis: CycleBasis::Estimate,
            link_bytes_per_step: 0.0,
            max_memory_bits: 0,
            multipliers: 0,
            recompute: None,
        };
    };
    if design.plan.devices == 1 {
        return Prediction {
            cycles_per_step: whole.cycles_per_frame as f64,
            basis: CycleBasis::Exact,
            link_bytes_per_step: 0.0,
            max_memory_bits: memory_bits(&whole.stages),
            multipliers: whole.multipliers() as u64,
            recompute: None,
        };
    }
    if let Ok(sys) = CnnSystem::new(design) {
        return Prediction {
            cycles_per_step: sys.cycles_per_frame() as f64,
            basis: CycleBasis::NodeModel,
            link_bytes_per_step: sys.link_bytes_per_frame() as f64,
            max_memory_bits: sys
                .devices
                .iter()
                .map(|d| memory_bits(&d.arch.stages))
                .max()
                .unwrap_or(0),
            multipliers: sys
                .devices
                .iter()
                .map(|d| d.arch.multipliers() as u64)
                .max()
                .unwrap_or(0),
            recompute: sys
                .fused
                .as_ref()
                .filter(|_| sys.strategy == Strategy::Fused)
                .map(|f| f.recompute),
        };
    }
    estimate(design, &whole)
}

/// Bytes of `values` values of `bits` bits sent to one destination as h frames.
fn frame_bytes(f: &frame::Format, values: u64) -> f64 {
    (f.run_beats(Kind::H, values) * (f.link_width as u64 / 8)) as f64
}

/// An estimate for a plan the hardware does not build: the plan's first layer's strategy
/// (tiles, filters or channels) over all its devices.
fn estimate(design: &Design, whole: &CnnArch) -> Prediction {
    let n = design.plan.devices.max(1);
    let strategy = design
        .plan
        .layers
        .first()
        .map(|a| a.strategy)
        .unwrap_or(Strategy::Filters);
    let lw = design.plan.plan.target.link.width.clamp(32, 512) as u32;
    let f = frame::Format {
        link_width: lw,
        h_width: whole.dw_in.max(whole.dw_out),
        psum_width: design.acc_bits.max(1),
    };
    let nn = n as u64;
    let mut pace = 1u64;
    let mut bytes = 0.0f64;
    let mut mem = 0u64;
    let mut macs_per_dev = 0u64;
    // Whether the previous stage's output is split over the devices (by rows or channels).
    let mut split = false;
    let fixed = design.plan.plan.target.engines != crate::plan::Engines::Auto;
    for st in whole.stages.iter() {
        let dense = st.kind_name() == "dense";
        let out_vals = st.output.values() as u64;
        let in_vals = st.input.values() as u64;
        let (floor, link, now_split) = match strategy {
            Strategy::Tiles if !dense && st.output.h >= n => {
                let strips = partition::split(st.output.h, n);
                let mut worst = 0u64;
                let mut halo = 0u64;
                for r in strips.iter().filter(|r| !r.is_empty()) {
                    let s = st.on_rows(r.start, r.end - 1);
                    worst = worst.max(s.stream_floor());
                    // Input rows beyond the strip's own share of the previous stage's rows.
                    let own = (st.input.h * r.len()).div_ceil(st.output.h);
                    halo += (s.input.h.saturating_sub(own) * st.input.w * st.input.c) as u64;
                }
                // Halo rows per frame, each from a neighbour.
                (worst, frame_bytes(&f, halo), true)
            }
            Strategy::Filters if st.output.c >= n => match st.kind {
                // A pool works on the channels its device has.
                StageKind::Pool => (
                    (out_vals * (st.window.k * st.window.k) as u64 / nn).max(in_vals / nn),
                    0.0,
                    true,
                ),
                // Every device reads every input channel: its N - 1 other shares all-gathered.
                StageKind::Mvu(_) => {
                    let gather = if split {
                        frame_bytes(&f, in_vals / nn) * (nn * (nn - 1)) as f64
                    } else {
                        0.0
                    };
                    (in_vals.max(out_vals / nn), gather, true)
                }
            },
            Strategy::Channels if matches!(st.kind, StageKind::Mvu(_)) && st.input.c >= n => {
                // Every device makes every output's partial sum; N - 1 of N go to finishers.
                let pf = frame::Format {
                    h_width: f.psum_width,
                    ..f
                };
                // Finished channels stay split by channel, as the next layer reads them.
                (
                    out_vals.max(in_vals / nn),
                    frame_bytes(&pf, out_vals) * (nn - 1) as f64,
                    true,
                )
            }
            Strategy::Channels if matches!(st.kind, StageKind::Pool) && split => (
                (out_vals * (st.window.k * st.window.k) as u64 / nn).max(in_vals / nn),
                0.0,
                true,
            ),
            // A stage the strategy cannot split runs whole on one device, its input gathered.
            _ => {
                let gather = if split {
                    frame_bytes(&f, in_vals * (nn - 1) / nn)
                } else {
                    0.0
                };
                (st.stream_floor(), gather, false)
            }
        };
        // With engines the plan fixes, a split stage also issues its share of the whole
        // stage's slices (with "auto" they are folded to the pace, as the built systems do).
        let issue = match (&st.kind, fixed) {
            (StageKind::Mvu(m), true) => {
                let whole_issue = (st.output.h * st.output.w * m.groups * m.nnz) as u64;
                if now_split {
                    whole_issue.div_ceil(nn)
                } else {
                    whole_issue
                }
            }
            _ => 0,
        };
        let floor = floor.max(issue);
        split = now_split;
        pace = pace.max(floor);
        bytes += link;
        mem += st.weight_bits() / nn + st.buffer_bits() / nn.max(1);
        macs_per_dev += st.macs / nn;
    }
    if split {
        // The output gathered on one device.
        let out = whole.output.values() as u64;
        bytes += frame_bytes(&f, out * (nn - 1) / nn);
    }
    Prediction {
        cycles_per_step: pace as f64,
        basis: CycleBasis::Estimate,
        link_bytes_per_step: bytes,
        max_memory_bits: mem,
        multipliers: macs_per_dev.div_ceil(pace.max(1)),
        recompute: None,
    }
}

/// The layers of a fused stack ending at layer `end` (and the ReLU right after it, if any):
/// fused over every device, the rest on device 0.
fn fused_assignment(layers: &[CnnLayer], end: usize, n: usize) -> Vec<LayerAssignment> {
    let end = if matches!(layers.get(end + 1), Some(CnnLayer::Relu)) {
        end + 1
    } else {
        end
    };
    (0..layers.len())
        .map(|l| {
            if l <= end {
                LayerAssignment {
                    strategy: Strategy::Fused,
                    devices: (0..n).collect(),
                }
            } else {
                LayerAssignment {
                    strategy: Strategy::Layers,
                    devices: vec![0],
                }
            }
        })
        .collect()
}

/// The design under another assignment, or None when the partition refuses it.
fn variant(design: &Design, n: usize, assign: Vec<LayerAssignment>) -> Option<Design> {
    let mut d = design.clone();
    d.plan.devices = n;
    d.plan.layers = assign;
    // The plan's grid is for its own device count; the sweep picks grids itself.
    d.plan.plan.partition.grid = None;
    if d.plan.targets.len() < n {
        let t = d.plan.targets.first().cloned()?;
        d.plan.targets.resize(n, t);
    }
    d.partition = partition::build(&d.plan).ok()?;
    Some(d)
}

/// The design on each of `grids` (rows x columns of tiles) whose hardware is built.
fn on_grids(d: &Design, grids: &[(usize, usize)]) -> Vec<Design> {
    grids
        .iter()
        .map(|&(r, c)| {
            let mut g = d.clone();
            g.plan.plan.partition.grid = Some(vec![r as i64, c as i64]);
            g
        })
        .filter(|g| CnnSystem::new(g).is_ok())
        .collect()
}

/// The CNN sweep: one device, then for each device count `fused` (the stack end and grid with
/// the fewest predicted cycles), `layers`, `tiles` (the grid with the fewest), `filters` and
/// `channels`.
pub fn sweep(design: &Design, devices: &[usize]) -> Vec<SweepRow> {
    let ModelDesign::Cnn(_) = &design.model else {
        return Vec::new();
    };
    let ModelShape::Cnn { layers, .. } = &design.plan.shape else {
        return Vec::new();
    };
    let nl = layers.len();
    let mut rows = Vec::new();
    let push = |strategy: Strategy, n: usize, d: Design, rows: &mut Vec<SweepRow>| {
        let prediction = predict(&d);
        if prediction.cycles_per_step > 0.0 {
            rows.push(SweepRow {
                strategy,
                devices: n,
                prediction,
                design: d,
            });
        }
    };
    for &n in devices {
        if n == 0 || n > frame::MAX_DEVICES {
            continue;
        }
        if n == 1 {
            let assign = vec![
                LayerAssignment {
                    strategy: Strategy::Filters,
                    devices: vec![0],
                };
                nl
            ];
            if let Some(d) = variant(design, 1, assign) {
                push(Strategy::Filters, 1, d, &mut rows);
            }
            continue;
        }
        // Fused: every window-layer prefix as the stack, on every grid of n tiles (row
        // strips, a row of column tiles, and each grid between); the fastest.
        let window_end = layers
            .iter()
            .position(|l| matches!(l, CnnLayer::Flatten | CnnLayer::Dense { .. }))
            .unwrap_or(nl);
        let grids: Vec<(usize, usize)> = (1..=n)
            .rev()
            .filter(|r| n % r == 0)
            .map(|r| (r, n / r))
            .collect();
        let best = (0..window_end)
            .filter(|&e| {
                matches!(
                    layers[e],
                    CnnLayer::Conv2d { .. } | CnnLayer::Maxpool { .. }
                )
            })
            .filter_map(|e| variant(design, n, fused_assignment(layers, e, n)))
            .flat_map(|d| on_grids(&d, &grids))
            .min_by(|a, b| {
                predict(a)
                    .cycles_per_step
                    .total_cmp(&predict(b).cycles_per_step)
            });
        if let Some(d) = best {
            push(Strategy::Fused, n, d, &mut rows);
        }
        // Layers: dealt in order, when there are enough layers with hardware.
        let (dev, n_hw) = crate::plan::deal_layers(&design.plan.shape, n);
        if n <= n_hw {
            let assign = dev
                .iter()
                .map(|&d| LayerAssignment {
                    strategy: Strategy::Layers,
                    devices: vec![d],
                })
                .collect();
            if let Some(d) = variant(design, n, assign) {
                push(Strategy::Layers, n, d, &mut rows);
            }
        }
        for strategy in [Strategy::Tiles, Strategy::Filters, Strategy::Channels] {
            let assign = vec![
                LayerAssignment {
                    strategy,
                    devices: (0..n).collect(),
                };
                nl
            ];
            let Some(d) = variant(design, n, assign) else {
                continue;
            };
            // Tiles: the grid of n tiles with the fewest predicted cycles (row strips when
            // none builds: the estimate).
            let d = if strategy == Strategy::Tiles {
                on_grids(&d, &grids)
                    .into_iter()
                    .min_by(|a, b| {
                        predict(a)
                            .cycles_per_step
                            .total_cmp(&predict(b).cycles_per_step)
                    })
                    .unwrap_or(d)
            } else {
                d
            };
            push(strategy, n, d, &mut rows);
        }
    }
    rows
}
