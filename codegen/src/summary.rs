//! Per-device work, memory and link traffic of a design, and the text `partita check` prints.
//!
//! Link traffic is counted point to point: every value a device needs and does not produce is
//! one transfer from its producer, whatever the topology. LSTM figures are per timestep, CNN
//! figures per inference.

use std::fmt::Write as _;

use crate::bbs_prune::CsbMatrix;
use crate::design::{Design, ModelDesign};
use crate::diag::{Issue, PlanError, SpanIndex};
use crate::partition::LayerPartition;
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
    pub tx_bits: u64,
    pub rx_bits: u64,
    /// Multipliers in the row engines: engines x lanes, where the device has weights.
    pub multipliers: u64,
}

struct Acc<'a> {
    d: &'a mut [DeviceCost],
}

impl Acc<'_> {
    fn send(&mut self, from: usize, to: usize, bits: u64) {
        if from != to {
            self.d[from].tx_bits += bits;
            self.d[to].rx_bits += bits;
        }
    }
}

/// Stored entries of `row` whose column lies in `block` (blocks of `block_cols` columns), and
/// how many of them are non-zero.
fn entries_in(
    m: &CsbMatrix<i64>,
    row: usize,
    block_of: impl Fn(usize) -> usize,
    block: usize,
) -> (u64, u64) {
    let s = m.shape;
    let (mut e, mut nz) = (0, 0);
    for j in 0..s.nnz_per_bank {
        for k in 0..s.banks {
            let (v, idx) = m.entry(row, j, k);
            let col = k * s.bank_size + idx;
            if col < s.cols && block_of(col) == block {
                e += 1;
                nz += (v != 0) as u64;
            }
        }
    }
    (e, nz)
}

/// Compute every device's cost.
pub fn device_costs(design: &Design) -> Vec<DeviceCost> {
    costs(design, None)
}

/// Every device's cost for layer `l` alone (its h traffic counts for the layer producing it).
pub fn layer_costs(design: &Design, l: usize) -> Vec<DeviceCost> {
    costs(design, Some(l))
}

fn costs(design: &Design, only: Option<usize>) -> Vec<DeviceCost> {
    let plan = &design.plan;
    let q = design.quant();
    let mut costs: Vec<DeviceCost> = (0..plan.devices)
        .map(|d| DeviceCost {
            device: d,
            ..Default::default()
        })
        .collect();
    let engines = plan.plan.target.engines as u64;
    let lanes = plan.banks as u64;
    let idx_bits = |m: &CsbMatrix<i64>| {
        if plan.keep == Keep::All {
            0
        } else {
            m.shape.index_bits() as u64
        }
    };
    let (w_bits, d_bits, acc) = (
        q.weight.width() as u64,
        q.data.width() as u64,
        design.acc_bits as u64,
    );
    let parts = &design.partition.layers;
    let completer = |p: &LayerPartition, dev: usize, unit: usize| {
        if p.shares
            .iter()
            .any(|s| s.device == dev && s.blocks.len() == p.blocks)
        {
            dev
        } else {
            p.finisher[unit]
        }
    };
    match &design.model {
        ModelDesign::Lstm(m) => {
            let h = m.hidden_size;
            let k = plan.banks;
            for (l, (layer, p)) in m.layers.iter().zip(parts).enumerate() {
                if only.is_some_and(|o| o != l) {
                    continue;
                }
                for s in &p.shares {
                    let c = &mut costs[s.device];
                    c.multipliers = engines * lanes;
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
                }
                let mut a = Acc { d: &mut costs };
                for s in &p.shares {
                    let full = s.blocks.len() == p.blocks;
                    for &r in &s.rows {
                        let u = r % h;
                        let done_on = completer(p, s.device, u);
                        if !full {
                            a.send(s.device, done_on, acc);
                        } else {
                            a.send(s.device, p.finisher[u], q.gate.width() as u64);
                        }
                        if done_on == s.device {
                            a.d[s.device].weight_bits += q.bias.width() as u64;
                        }
                    }
                }
                // h: from each unit's finisher to every device that reads that column.
                let bh = layer.q_hh.shape.bank_size;
                for u in 0..h {
                    let from = p.finisher[u];
                    a.d[from].state_bits += q.cell.width() as u64;
                    let mut readers: Vec<usize> = p
                        .shares
                        .iter()
                        .filter(|s| s.blocks.contains(&(k + u / bh)))
                        .map(|s| s.device)
                        .collect();
                    if let (Some(next), Some(nl)) = (parts.get(l + 1), m.layers.get(l + 1)) {
                        let bi = nl.q_ih.shape.bank_size;
                        readers.extend(
                            next.shares
                                .iter()
                                .filter(|s| s.blocks.contains(&(u / bi)))
                                .map(|s| s.device),
                        );
                    }
                    readers.sort_unstable();
                    readers.dedup();
                    for to in readers {
                        a.send(from, to, d_bits);
                    }
                }
            }
        }
        ModelDesign::Cnn(m) => {
            for (l, p) in parts.iter().enumerate() {
                if only.is_some_and(|o| o != l) {
                    continue;
                }
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
                for s in &p.shares {
                    let c = &mut costs[s.device];
                    c.state_bits += (s.blocks.len() * in_pixels) as u64 * d_bits
                        + s.rows.len() as u64 * pixels * d_bits;
                    if let Some(w) = &m.weights[l] {
                        c.multipliers = engines * lanes;
                        let codes = &w.q_csb;
                        for &r in &s.rows {
                            for &b in &s.blocks {
                                let (e, nz) = entries_in(codes, r, |col| col / block_cols, b);
                                c.macs += e * pixels;
                                c.nonzeros += nz;
                                c.weight_bits += e * (w_bits + idx_bits(codes));
                            }
                        }
                    }
                }
                let mut a = Acc { d: &mut costs };
                if m.weights[l].is_some() {
                    for s in &p.shares {
                        for &r in &s.rows {
                            let done_on = completer(p, s.device, r);
                            if s.blocks.len() != p.blocks {
                                a.send(s.device, done_on, acc * pixels);
                            }
                            if done_on == s.device {
                                a.d[s.device].weight_bits += q.bias.width() as u64;
                            }
                        }
                    }
                }
                if let Some(next) = parts.get(l + 1) {
                    let next_weighted = m.weights[l + 1].is_some();
                    for u in 0..out[0] {
                        let from = p.finisher[u];
                        let mut readers: Vec<usize> = next
                            .shares
                            .iter()
                            .filter(|s| {
                                if next_weighted {
                                    s.blocks.contains(&u)
                                } else {
                                    s.rows.contains(&u)
                                }
                            })
                            .map(|s| s.device)
                            .collect();
                        readers.dedup();
                        for to in readers {
                            a.send(from, to, d_bits * pixels);
                        }
                    }
                }
            }
        }
    }
    costs
}

/// Check the per-device budgets of `[target]`.
pub fn check_budgets(design: &Design, costs: &[DeviceCost]) -> Result<(), crate::Error> {
    let t = &design.plan.plan.target;
    let spans = SpanIndex::new(&design.plan.text);
    let mut issues = Vec::new();
    for c in costs {
        if let Some(b) = t.dsp_budget {
            if c.multipliers > b as u64 {
                issues.push(
                    Issue::new(format!(
                        "device {} needs {} multipliers, over dsp_budget = {b}",
                        c.device, c.multipliers
                    ))
                    .help("lower [target] engines or [sparsity] banks, or raise the budget")
                    .at(spans.value(&["target", "dsp_budget"]), "budget"),
                );
            }
        }
        if let Some(b) = t.memory_bits {
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
                    .at(spans.value(&["target", "memory_bits"]), "budget"),
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

/// The text `partita check` prints.
pub fn render(design: &Design, costs: &[DeviceCost]) -> String {
    let plan = &design.plan;
    let q = design.quant();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "plan {} is valid (plan hash {:016x})",
        plan.name, plan.plan_hash
    );
    let unit = match &design.model {
        ModelDesign::Lstm(m) => {
            let _ = writeln!(
                s,
                "model: LSTM, input {} -> hidden {}, {} layer(s)",
                m.input_size,
                m.hidden_size,
                m.layers.len()
            );
            "step"
        }
        ModelDesign::Cnn(m) => {
            let _ = writeln!(
                s,
                "model: CNN, input {:?}, {} layers, output {:?}",
                m.input_shape,
                m.layers.len(),
                m.shapes.last().copied().unwrap_or(m.input_shape)
            );
            "inference"
        }
    };
    let sparsity = match plan.keep {
        Keep::All => format!("dense, {} lanes per engine", plan.banks),
        _ => {
            let (kept, total): (usize, usize) =
                design.prune_reports.iter().fold((0, 0), |(k, t), (_, r)| {
                    (k + r.nonzero_before - r.dropped, t + r.nonzero_before)
                });
            format!(
                "bank-balanced, K = {} banks; kept {kept} of {total} non-zeros ({:.1}%)",
                plan.banks,
                100.0 * kept as f64 / total.max(1) as f64
            )
        }
    };
    let _ = writeln!(s, "sparsity: {sparsity}");
    let _ = writeln!(
        s,
        "formats: weight {}, bias {}, data {}, cell {}, preact {}, gate {}, accumulator {} bits; {}, {}",
        q.weight, q.bias, q.data, q.cell, q.preact, q.gate, design.acc_bits, q.rounding, q.overflow
    );
    let t = &plan.plan.target;
    let _ = writeln!(
        s,
        "target: {} device(s), {} engine(s) x {} lanes each; link {} {} bits, {} cycles, {}",
        plan.devices,
        t.engines,
        plan.banks,
        t.link.topology,
        t.link.width,
        t.link.latency,
        t.link.mode
    );
    if let ModelDesign::Lstm(_) = &design.model {
        let p = crate::cost::predict(design);
        let basis = if p.exact {
            "exact for the generated single-device hardware"
        } else if plan.devices > 1 && crate::cost::node_cycles_per_step(design, 8).is_some() {
            "model of the generated multi-device hardware, 8-step sequences"
        } else {
            "estimate"
        };
        let _ = writeln!(
            s,
            "cost model: {:.0} cycles per timestep ({basis}), {:.0} link bytes per timestep, {} multipliers per device",
            p.cycles_per_step, p.link_bytes_per_step, p.multipliers
        );
    }
    let _ = writeln!(s, "\nlayer  strategy  devices");
    for (l, p) in design.partition.layers.iter().enumerate() {
        let devs: Vec<String> = p.devices.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(s, "{l:>5}  {:<8}  {}", p.strategy.name(), devs.join(","));
    }
    let _ = writeln!(
        s,
        "\ndevice  MACs/{unit:<9}  non-zeros  weight bits  state bits  link tx bits/{unit:<9}  link rx bits/{unit:<9}  multipliers"
    );
    for c in costs {
        let _ = writeln!(
            s,
            "{:>6}  {:>15}  {:>9}  {:>11}  {:>10}  {:>22}  {:>22}  {:>11}",
            c.device,
            c.macs,
            c.nonzeros,
            c.weight_bits,
            c.state_bits,
            c.tx_bits,
            c.rx_bits,
            c.multipliers
        );
    }
    let _ = writeln!(
        s,
        "\nquantize: tensor, format, clipped/count, max abs error, rms error"
    );
    for r in &design.quant_reports {
        let _ = writeln!(
            s,
            "  {:<28} {:<6} {:>6}/{:<8} {:.3e}  {:.3e}",
            r.name,
            r.format.to_string(),
            r.clipped,
            r.count,
            r.max_abs_error,
            r.rms_error
        );
    }
    if let ModelDesign::Lstm(m) = &design.model {
        let _ = writeln!(
            s,
            "\nactivation tables: function, input, method, max abs error vs float (at x)"
        );
        for (what, t) in [
            ("sigmoid", &m.tables.sigmoid),
            ("tanh", &m.tables.tanh),
            ("tanh(cell)", &m.tables.tanh_cell),
        ] {
            let _ = writeln!(
                s,
                "  {:<10} {:<6} {} x{:<5} {:.2e} (x = {})",
                what,
                t.input.to_string(),
                t.method,
                t.grid.pieces,
                t.max_abs_error,
                t.worst_input
            );
        }
    }
    s
}
