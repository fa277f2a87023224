//! Per-device work and memory of a design: multiply-accumulates, non-zero weights, weight and
//! state memory, multipliers; and the check of `[target]` budgets. LSTM figures are per
//! timestep, CNN figures per inference.

use crate::design::{Design, ModelDesign};
use crate::diag::{Issue, PlanError, SpanIndex};
use crate::passes::bbs_prune::CsbMatrix;
use crate::plan::{CnnLayer, Keep};

/// What one device holds and does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceCost {
    pub device: usize,
    /// Multiply-accumulates (stored CSB entries, padding zeros included).
    pub macs: u64,
    /// Non-zero weights among them.
    pub nonzeros: u64,
    pub weight_bits: u64,
    /// Vector banks (per engine), h double buffers, cell state, feature maps.
    pub state_bits: u64,
    /// Multipliers: the row engines' (engines x the lanes of the banks it holds) and the
    /// element-wise unit's, where the device finishes hidden units.
    pub multipliers: u64,
}

/// Stored entries of `row` in each column block of `block_cols` columns, and how many of them
/// are non-zero, indexed by block: one pass over the row, whatever the number of blocks.
fn entries_by_block(m: &CsbMatrix<i64>, row: usize, block_cols: usize) -> Vec<(u64, u64)> {
    let s = m.shape;
    let block_cols = block_cols.max(1);
    let mut by = vec![(0u64, 0u64); s.cols.div_ceil(block_cols)];
    for j in 0..s.nnz_per_bank {
        for k in 0..s.banks {
            let (v, idx) = m.entry(row, j, k);
            let col = k * s.bank_size + idx;
            if col < s.cols {
                let e = &mut by[col / block_cols];
                e.0 += 1;
                e.1 += (v != 0) as u64;
            }
        }
    }
    by
}

/// Every device's cost.
pub fn device_costs(design: &Design) -> Vec<DeviceCost> {
    let plan = &design.plan;
    let q = design.quant();
    let mut costs: Vec<DeviceCost> = (0..plan.devices)
        .map(|d| DeviceCost {
            device: d,
            ..Default::default()
        })
        .collect();
    let lanes = plan.banks as u64;
    let idx_bits = |m: &CsbMatrix<i64>| {
        if plan.keep == Keep::All {
            0
        } else {
            m.shape.index_bits() as u64
        }
    };
    let (w_bits, d_bits) = (q.weight.width() as u64, q.data.width() as u64);
    let parts = &design.partition.layers;
    match &design.model {
        ModelDesign::Lstm(m) => {
            let h = m.hidden_size;
            let k = plan.banks;
            // Each device builds the lanes of the banks it holds (all K on one device).
            let mut held: Vec<std::collections::BTreeSet<usize>> =
                vec![Default::default(); plan.devices];
            for (layer, p) in m.layers.iter().zip(parts) {
                for s in &p.shares {
                    held[s.device].extend(s.blocks.iter().map(|b| b % k));
                    let engines = plan.engines_of(s.device) as u64;
                    let c = &mut costs[s.device];
                    c.multipliers = engines * held[s.device].len().max(1) as u64;
                    for &b in &s.blocks {
                        let (mat, bank) = if b < k {
                            (&layer.q_ih, b)
                        } else {
                            (&layer.q_hh, b - k)
                        };
                        let n = mat.shape.nnz_per_bank as u64;
                        for &r in &s.rows {
                            c.macs += n;
                            c.nonzeros += (0..n as usize)
                                .filter(|&j| mat.entry(r, j, bank).0 != 0)
                                .count() as u64;
                        }
                        c.weight_bits += s.rows.len() as u64 * n * (w_bits + idx_bits(mat));
                        let cols = mat.shape.bank_size as u64;
                        let buffers = if b < k { 1 } else { 2 };
                        c.state_bits += cols * d_bits * buffers * engines;
                    }
                    // Biases live where a row is completed.
                    for &r in &s.rows {
                        if p.completer(s.device, r % h) == s.device {
                            c.weight_bits += q.bias.width() as u64;
                        }
                    }
                }
                // Cell state on each unit's finisher.
                for u in 0..h {
                    costs[p.finisher[u]].state_bits += q.cell.width() as u64;
                }
            }
            // One element-wise unit on every device that finishes hidden units, E lanes of it
            // (the architecture's: a node's may be chosen for it).
            let lanes: Vec<u64> = if plan.devices == 1 {
                vec![crate::arch::lstm::SingleDevice::new(design).map_or(1, |d| d.e) as u64]
            } else {
                let sys = crate::arch::lstm::System::new(design).ok();
                (0..plan.devices)
                    .map(|d| sys.as_ref().map_or(1, |s| s.nodes[d].e) as u64)
                    .collect()
            };
            let ew = crate::plan::ew_multipliers(plan.plan.activation.method);
            for c in costs.iter_mut() {
                if parts.iter().any(|p| p.finisher.contains(&c.device)) {
                    c.multipliers += ew * lanes.get(c.device).copied().unwrap_or(1);
                }
            }
        }
        ModelDesign::Cnn(m) => {
            for (l, p) in parts.iter().enumerate() {
                let out = m.shapes[l];
                let in_shape = if l == 0 {
                    m.input_shape
                } else {
                    m.shapes[l - 1]
                };
                let pixels = (out[1] * out[2]) as u64;
                let in_pixels = in_shape[1] * in_shape[2];
                let block_cols = match &m.layers[l] {
                    CnnLayer::Conv2d { kernel, .. } => kernel * kernel,
                    _ => in_pixels,
                };
                let f = m.formats[l];
                let (in_bits, out_bits) = (f.input.width() as u64, f.output.width() as u64);
                for s in &p.shares {
                    let engines = plan.engines_of(s.device) as u64;
                    let c = &mut costs[s.device];
                    c.state_bits += (s.blocks.len() * in_pixels) as u64 * in_bits
                        + s.rows.len() as u64 * pixels * out_bits;
                    if let Some(w) = &m.weights[l] {
                        c.multipliers = engines * lanes;
                        let codes = &w.q_csb;
                        for &r in &s.rows {
                            let by = entries_by_block(codes, r, block_cols);
                            for &b in &s.blocks {
                                let (e, nz) = by.get(b).copied().unwrap_or((0, 0));
                                c.macs += e * pixels;
                                c.nonzeros += nz;
                                c.weight_bits += e * (f.weight.width() as u64 + idx_bits(codes));
                            }
                            if p.completer(s.device, r) == s.device {
                                c.weight_bits += f.bias.width() as u64;
                            }
                        }
                    }
                }
            }
            // One device: the generated hardware's own figures (every engine's lanes, the
            // line buffers' copies, the decoded weight entries).
            if plan.devices == 1 {
                if let Ok(a) = crate::arch::cnn::CnnArch::new(design) {
                    let c = &mut costs[0];
                    c.multipliers = a.multipliers() as u64;
                    c.weight_bits = a.stages.iter().map(|s| s.weight_bits()).sum();
                    c.state_bits = a.stages.iter().map(|s| s.buffer_bits()).sum();
                }
            }
        }
    }
    costs
}

/// A device's use of its board, as fractions of the part's multipliers and block memory.
pub fn board_use(board: &crate::boards::Board, c: &DeviceCost) -> (f64, f64) {
    (
        c.multipliers as f64 / board.multipliers as f64,
        (c.weight_bits + c.state_bits) as f64 / board.memory_bits() as f64,
    )
}

/// Check that the plan's `ew_lanes`, where given, can be built: the architecture's reason
/// when a group of lanes would not stay whole (or could not keep up), at the key.
pub fn check_lanes(design: &Design) -> Result<(), crate::Error> {
    let plan = &design.plan;
    if plan.plan.target.ew_lanes.is_none() || !matches!(design.model, ModelDesign::Lstm(_)) {
        return Ok(());
    }
    let why = if plan.devices == 1 {
        crate::arch::lstm::SingleDevice::new(design).err()
    } else {
        crate::arch::lstm::System::new(design).err()
    };
    match why {
        Some(w) if w.contains("ew_lanes") || w.contains("element-wise lane") => {
            let spans = SpanIndex::new(&plan.text);
            let issue = Issue::new(w)
                .help("choose another power of two for ew_lanes, or leave the key out")
                .at(spans.value(&["target", "ew_lanes"]), "here");
            Err(crate::Error::Plan(Box::new(PlanError::new(
                &plan.name,
                &plan.text,
                vec![issue],
            ))))
        }
        _ => Ok(()),
    }
}

/// Check the per-device budgets: `[target]`'s, or a device's `[[target.device]]` table's.
pub fn check_budgets(design: &Design, costs: &[DeviceCost]) -> Result<(), crate::Error> {
    let plan = &design.plan;
    let t = &plan.plan.target;
    let spans = SpanIndex::new(&plan.text);
    let at = |d: usize, key: &str| spans.value(&crate::plan::strs(&t.key_of(d, key)));
    let mut issues = Vec::new();
    for c in costs {
        let Some(dt) = plan.targets.get(c.device) else {
            continue;
        };
        if let Some(b) = dt.dsp_budget {
            if c.multipliers > b as u64 {
                issues.push(
                    Issue::new(format!(
                        "device {} needs {} multipliers, over dsp_budget = {b}",
                        c.device, c.multipliers
                    ))
                    .help("lower [target] engines or [sparsity] banks, or raise the budget")
                    .at(at(c.device, "dsp_budget"), "budget"),
                );
            }
        }
        if let Some(b) = dt.memory_bits {
            let need = c.weight_bits + c.state_bits;
            if need > b as u64 {
                issues.push(
                    Issue::new(format!(
                        "device {} needs {need} bits of memory, over memory_bits = {b}",
                        c.device
                    ))
                    .help(
                        "use more devices, more sparsity or narrower formats, or raise the budget",
                    )
                    .at(at(c.device, "memory_bits"), "budget"),
                );
            }
        }
        if let Some(board) = dt.board {
            let need = c.weight_bits + c.state_bits;
            if c.multipliers > board.multipliers || need > board.memory_bits() {
                issues.push(
                    Issue::new(format!(
                        "device {} does not fit the {} board ({}): it needs {} multipliers of {} and {} bits of block memory of {}",
                        c.device,
                        board.name,
                        board.part,
                        c.multipliers,
                        board.multipliers,
                        need,
                        board.memory_bits()
                    ))
                    .help("use more devices, fewer engines or banks, more sparsity or narrower formats, or a larger board")
                    .at(at(c.device, "board"), "board"),
                );
            }
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(crate::Error::Plan(Box::new(PlanError::new(
            &design.plan.name,
            &design.plan.text,
            issues,
        ))))
    }
}
