//! `fold`: each CNN weight layer's engines (PE: output channels in parallel) and lanes (SIMD:
//! window values per cycle) on one device.
//!
//! - A layer's own `engines` and `lanes` keys; else `[target] engines` (at most the layer's
//!   outputs) with the plan's `banks` as lanes.
//! - `engines = "auto"`: the fewest multipliers per layer (PE x lanes) that keep every layer
//!   within a frame time T. T starts at the slowest stage the one-value-per-cycle streams
//!   bound (a stage's input or output values, or a max-pool's window reads), is raised by
//!   bisection until the multipliers fit the device's budget (`dsp_budget`, or `fill` of the
//!   board's multipliers), and within 25% above that the T at which the multipliers idle least
//!   is taken. With dense weights the lanes are free per layer (1 to 64, a layer's columns are
//!   split into that many banks); with bank-balanced sparsity they are the plan's `banks`,
//!   which the sparsity pattern is built on.
//!
//! The slices per output (entries per bank) come from `nnz(layer, lanes)`: for dense weights
//! ceil(columns / lanes), for BBS what pruning kept.

use crate::plan::{CheckedPlan, CnnLayer, Engines, Keep, ModelShape};

/// Each layer's engines and lanes (0 for layers without weights), and what set them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Fold {
    pub engines: Vec<usize>,
    pub lanes: Vec<usize>,
    pub why: String,
}

/// Widest lane count `auto` tries for one layer with dense weights.
pub const MAX_AUTO_LANES: usize = 64;

struct Work {
    layer: usize,
    outs: usize,
    pixels: u64,
    cols: usize,
    own_pe: Option<usize>,
    lanes: Vec<usize>,
}

/// The fold of a CNN plan; `nnz(layer, lanes)` gives a layer's slices per output.
pub fn fold(plan: &CheckedPlan, nnz: &dyn Fn(usize, usize) -> usize) -> Result<Fold, String> {
    let ModelShape::Cnn {
        input_shape,
        layers,
        shapes,
        ..
    } = &plan.shape
    else {
        return Err("not a CNN plan".into());
    };
    let specs = &plan.plan.model.layers;
    let dense = plan.keep == Keep::All;
    let cols = plan.shape.cnn_columns();
    let mut cin = *input_shape;
    let mut work = Vec::new();
    let mut floor = 1u64;
    for (l, layer) in layers.iter().enumerate() {
        let out = shapes[l];
        let in_vals = (cin[0] * cin[1] * cin[2]) as u64;
        let out_vals = (out[0] * out[1] * out[2]) as u64;
        floor = floor.max(in_vals).max(out_vals);
        match layer {
            CnnLayer::Maxpool { kernel, .. } => {
                floor = floor.max(out_vals * (*kernel as u64).pow(2));
            }
            CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. } => {
                let spec = specs.get(l);
                let own_lanes = spec.and_then(|s| s.lanes()).map(|v| v as usize);
                let lanes = match (own_lanes, dense, &plan.plan.target.engines) {
                    (Some(v), _, _) => vec![v],
                    (None, true, Engines::Auto) => (1..=cols[l].min(MAX_AUTO_LANES)).collect(),
                    _ => vec![plan.banks],
                };
                work.push(Work {
                    layer: l,
                    outs: out[0],
                    pixels: (out[1] * out[2]) as u64,
                    cols: cols[l],
                    own_pe: spec.and_then(|s| s.engines()).map(|e| e as usize),
                    lanes,
                });
            }
            _ => {}
        }
        cin = out;
    }
    let mut f = Fold {
        engines: vec![0; layers.len()],
        lanes: vec![0; layers.len()],
        why: String::new(),
    };
    if let Engines::Count(n) = plan.plan.target.engines {
        for w in &work {
            f.engines[w.layer] = w.own_pe.unwrap_or((n.max(1) as usize).min(w.outs));
            f.lanes[w.layer] = w.lanes[0];
        }
        let own = work.iter().any(|w| w.own_pe.is_some());
        f.why =
            format!(
            "[target] engines = {n}, at most each layer's outputs{}; lanes: the plan's {} banks{}",
            if own { ", or the layer's own `engines`" } else { "" },
            plan.banks,
            if work.iter().any(|w| w.lanes[0] != plan.banks) {
                " or the layer's own `lanes`"
            } else {
                ""
            }
        );
        return Ok(f);
    }
    // For a frame time t: each layer's cheapest (engines, lanes) that finish within t, or the
    // fastest it can be when none does.
    let choose = |t: u64, w: &Work| -> (usize, usize, u64) {
        let mut best: Option<(usize, usize, u64)> = None;
        let mut fastest: Option<(usize, usize, u64)> = None;
        for &lanes in &w.lanes {
            let per = w.pixels * nnz(w.layer, lanes).max(1) as u64;
            let pes: Vec<usize> = match w.own_pe {
                Some(p) => vec![p],
                None => {
                    // The fewest engines for this t with these lanes.
                    let groups = (t / per.max(1)).max(1) as usize;
                    vec![w.outs.div_ceil(groups.min(w.outs)).min(w.outs)]
                }
            };
            for pe in pes {
                let cycles = per * w.outs.div_ceil(pe) as u64;
                let cand = (pe, lanes, cycles);
                if fastest.is_none_or(|f| cycles < f.2 || (cycles == f.2 && pe * lanes < f.0 * f.1))
                {
                    fastest = Some(cand);
                }
                if cycles <= t && best.is_none_or(|b| pe * lanes < b.0 * b.1) {
                    best = Some(cand);
                }
            }
        }
        best.or(fastest).expect("at least one lane count")
    };
    let mults = |t: u64| -> usize {
        work.iter()
            .map(|w| {
                let (pe, lanes, _) = choose(t, w);
                pe * lanes
            })
            .sum()
    };
    let frame = |t: u64| -> u64 {
        work.iter()
            .map(|w| choose(t, w).2)
            .max()
            .unwrap_or(floor)
            .max(floor)
    };
    let budget = device_budget(plan, 0);
    let slowest = work
        .iter()
        .map(|w| {
            let l = w.lanes[0];
            w.pixels * nnz(w.layer, l).max(1) as u64 * w.outs as u64
        })
        .max()
        .unwrap_or(floor)
        .max(floor);
    let t_min = fastest_within(budget, floor, slowest, &mults).map_err(|(need, b)| {
        format!(
            "even one engine per layer needs {need} multipliers, more than the device's budget of {b}"
        )
    })?;
    // Multiply-accumulates a frame needs (dense: every weight; BBS: every stored entry).
    let need = |t: u64| -> f64 {
        work.iter()
            .map(|w| {
                let (_, lanes, _) = choose(t, w);
                let per_out = if dense {
                    w.cols
                } else {
                    nnz(w.layer, lanes) * lanes
                };
                (w.pixels * w.outs as u64 * per_out as u64) as f64
            })
            .sum()
    };
    let eff = |t: u64| need(t) / (mults(t).max(1) as f64 * frame(t) as f64);
    let mut t = t_min;
    for i in 1..=64u64 {
        let c = t_min + t_min * i / 256;
        if eff(c) > eff(t) + 1e-9 {
            t = c;
        }
    }
    for w in &work {
        let (pe, lanes, _) = choose(t, w);
        f.engines[w.layer] = pe;
        f.lanes[w.layer] = lanes;
    }
    let t_real = frame(t);
    let fastest = if t_min == floor {
        format!("the streams' bound of {floor}")
    } else {
        format!("{t_min}, the fastest within the budget (the streams' bound is {floor})")
    };
    let chosen = if t_real <= t_min {
        String::new()
    } else {
        format!(
            "; {t_real} rather than {} because its multipliers idle less ({:.3} busy rather than {:.3})",
            frame(t_min),
            eff(t),
            eff(t_min)
        )
    };
    let lanes_how = if dense {
        "engines and lanes per layer"
    } else {
        "engines per layer, lanes the plan's banks"
    };
    f.why = match budget {
        Some(b) => format!(
            "engines = \"auto\" ({lanes_how}): each layer within {t_real} cycles per frame ({fastest}{chosen}), {} of the budget of {b} multipliers",
            mults(t)
        ),
        None => format!(
            "engines = \"auto\" ({lanes_how}): each layer within {t_real} cycles per frame ({fastest}{chosen})"
        ),
    };
    Ok(f)
}

/// The multipliers device `d` may use, when the plan says: its `dsp_budget`, or `fill` of its
/// board's.
pub fn device_budget(plan: &CheckedPlan, d: usize) -> Option<usize> {
    plan.targets.get(d).and_then(|t| {
        t.dsp_budget.map(|b| b as usize).or_else(|| {
            t.board.map(|b| {
                let fill = plan.plan.target.fill.unwrap_or(0.8);
                (b.multipliers as f64 * fill) as usize
            })
        })
    })
}

/// The fewest cycles per frame, at least `floor`, whose folding (`mults(t)`: the multipliers
/// that reach `t`, fewer for a larger `t`) fits `budget`: `floor` itself when it fits or there
/// is no budget, else found by bisection up to `slowest` (one engine per layer). Err with the
/// multipliers even `slowest` needs and the budget.
pub fn fastest_within(
    budget: Option<usize>,
    floor: u64,
    slowest: u64,
    mults: &dyn Fn(u64) -> usize,
) -> Result<u64, (usize, usize)> {
    match budget {
        Some(b) if mults(floor) > b => {
            if mults(slowest) > b {
                return Err((mults(slowest), b));
            }
            let (mut lo, mut hi) = (floor, slowest);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if mults(mid) <= b {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            Ok(lo)
        }
        _ => Ok(floor),
    }
}
