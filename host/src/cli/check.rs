//! `partita check`: validate a plan, run the passes, check the budgets, and print each
//! device's work, memory and link traffic with the cost model's prediction.

use std::fmt::Write as _;
use std::path::PathBuf;

use partita_codegen::analysis::cost::{self, CycleBasis};
use partita_codegen::analysis::resources::{self, DeviceCost};
use partita_codegen::analysis::traffic::{self, Basis, Traffic, DEFAULT_STEPS};
use partita_codegen::design::{self, Design, ModelDesign};
use partita_codegen::plan::Keep;

use super::{io_failure, Failure};

#[derive(clap::Args)]
pub struct Args {
    /// The plan (TOML).
    plan: PathBuf,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let d = design::from_path(&a.plan)?;
    let costs = resources::device_costs(&d);
    resources::check_budgets(&d, &costs)?;
    resources::check_lanes(&d)?;
    write!(out, "{}", summary(&d, &costs, &traffic::traffic(&d))).map_err(io_failure)
}

/// The text `partita check` prints.
pub fn summary(design: &Design, costs: &[DeviceCost], traffic: &Traffic) -> String {
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
    match &design.model {
        ModelDesign::Lstm(_) => {
            let _ = writeln!(
                s,
                "formats: weight {}, bias {}, data {}, cell {}, preact {}, gate {}, accumulator {} bits; {}, {}",
                q.weight, q.bias, q.data, q.cell, q.preact, q.gate, design.acc_bits, q.rounding, q.overflow
            );
        }
        ModelDesign::Cnn(m) => {
            let _ = writeln!(
                s,
                "formats: input {}; {}, {}; by layer (input -> output, weight, bias, accumulator):",
                q.data, q.rounding, q.overflow
            );
            for (l, (layer, f)) in m.layers.iter().zip(&m.formats).enumerate() {
                let _ = if f.acc_bits > 0 {
                    writeln!(
                        s,
                        "  layer {l} {:<7} {} -> {}, weight {}, bias {}, accumulator {} bits",
                        layer.kind(),
                        f.input,
                        f.output,
                        f.weight,
                        f.bias,
                        f.acc_bits
                    )
                } else {
                    writeln!(s, "  layer {l} {:<7} {}", layer.kind(), f.output)
                };
            }
        }
    }
    let t = &plan.plan.target;
    let _ = writeln!(
        s,
        "target: {} device(s), {} engine(s) x {} lanes each; link {} {} bits, {} cycles, {}",
        plan.devices,
        if plan.devices_differ() {
            plan.targets
                .iter()
                .map(|t| t.engines.to_string())
                .collect::<Vec<_>>()
                .join("/")
        } else {
            plan.engines.to_string()
        },
        plan.banks,
        t.link.topology,
        t.link.width,
        t.link.latency,
        t.link.mode
    );
    if plan.devices == 1 {
        if let Ok(d) = partita_codegen::arch::lstm::SingleDevice::new(design) {
            if d.e > 1 || t.ew_lanes.is_some() {
                let _ = writeln!(
                    s,
                    "element-wise: {} lane(s), {} hidden unit(s) finished per cycle ({})",
                    d.e,
                    d.e,
                    if t.ew_lanes.is_some() {
                        "ew_lanes"
                    } else {
                        "the fewest that keep up with the engines"
                    }
                );
            }
        }
    } else if let (ModelDesign::Lstm(_), Ok(sys)) = (
        &design.model,
        partita_codegen::arch::lstm::System::new(design),
    ) {
        let e = sys.nodes.first().map_or(1, |n| n.e);
        if e > 1 || t.ew_lanes.is_some() {
            let _ = writeln!(
                s,
                "element-wise: {e} lane(s) per device, {e} hidden unit(s) finished per cycle ({})",
                if t.ew_lanes.is_some() {
                    "ew_lanes"
                } else {
                    "the fewest whose row serializer, handing over that many units per cycle, \
                     keeps up with layer 0's x and h passes, so W_ih·x runs ahead of the gather"
                }
            );
        }
    }
    if let (ModelDesign::Cnn(_), 1) = (&design.model, plan.devices) {
        match partita_codegen::arch::cnn::CnnArch::new(design) {
            Ok(a) => {
                let _ = writeln!(
                    s,
                    "\nhardware (one device): {} stage(s), {} multiplier(s), {} cycles per frame ({:.0} frames/s at {} MHz), efficiency {:.3}\nfolding: {}",
                    a.stages.len(),
                    a.multipliers(),
                    a.cycles_per_frame,
                    t.clock_mhz * 1e6 / a.cycles_per_frame.max(1) as f64,
                    t.clock_mhz,
                    a.efficiency(a.cycles_per_frame as f64),
                    a.folding
                );
                let _ = writeln!(
                    s,
                    "layer  kind     engines  lanes  slices  cycles/frame  busy  multipliers  line-buffer bits  weight bits"
                );
                for st in &a.stages {
                    let (pe, lanes, nnz) = match &st.kind {
                        partita_codegen::arch::cnn::StageKind::Mvu(m) => (m.pe, m.lanes, m.nnz),
                        partita_codegen::arch::cnn::StageKind::Pool => {
                            (1, 1, st.window.k * st.window.k)
                        }
                    };
                    let _ = writeln!(
                        s,
                        "{:>5}  {:<7}  {:>7}  {:>5}  {:>6}  {:>12}  {:>4.2}  {:>11}  {:>16}  {:>11}",
                        st.layer,
                        st.kind_name(),
                        pe,
                        lanes,
                        nnz,
                        st.cycles,
                        st.utilization(a.cycles_per_frame),
                        st.multipliers(),
                        st.buffer_bits(),
                        st.weight_bits()
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(s, "\nhardware: not generated: {e}");
            }
        }
    }
    if let ModelDesign::Cnn(_) = &design.model {
        if plan.devices > 1 {
            s += &cnn_system_text(design);
        }
    }
    if let ModelDesign::Lstm(_) = &design.model {
        let p = cost::predict(design);
        let basis = match p.basis {
            CycleBasis::NodeModel => {
                format!("{}, {DEFAULT_STEPS}-step sequences", p.basis.describe())
            }
            CycleBasis::Exact => format!(
                "{}, one {DEFAULT_STEPS}-step sequence; back to back, only the first x load shows",
                p.basis.describe()
            ),
            b => b.describe().to_string(),
        };
        let _ = writeln!(
            s,
            "cost model: {:.0} cycles per timestep ({basis}), {:.0} link bytes per timestep, {} multipliers {}",
            p.cycles_per_step,
            p.link_bytes_per_step,
            p.multipliers,
            if plan.devices_differ() { "on the largest device" } else { "per device" }
        );
    }
    if plan.devices_differ() {
        for (d, t) in plan.targets.iter().enumerate() {
            let _ = writeln!(
                s,
                "device {d}: {} engine(s){}{}",
                t.engines,
                t.board
                    .map(|b| format!(", board {}", b.name))
                    .unwrap_or_default(),
                t.engines_why
                    .as_ref()
                    .map(|w| format!("; engines = \"auto\": {w}"))
                    .unwrap_or_default()
            );
        }
    } else if let (Some(why), ModelDesign::Lstm(_)) = (&plan.engines_why, &design.model) {
        // (A CNN's folding is the hardware table's.)
        let _ = writeln!(s, "engines = \"auto\": {} engine(s); {why}", plan.engines);
    }
    if plan.targets.iter().any(|t| t.board.is_some()) {
        if !plan.devices_differ() {
            if let Some(b) = plan.board {
                let _ = writeln!(s, "board: {} ({})", b.name, b.part);
            }
        }
        for c in costs {
            let Some(b) = plan.targets.get(c.device).and_then(|t| t.board) else {
                continue;
            };
            let (m, mem) = partita_codegen::analysis::resources::board_use(b, c);
            let _ = writeln!(
                s,
                "  device {}{}: {} of {} multipliers ({:.0}%), {:.2} of {:.2} Mb block memory ({:.0}%)",
                c.device,
                if plan.devices_differ() { format!(" on {}", b.name) } else { String::new() },
                c.multipliers,
                b.multipliers,
                100.0 * m,
                (c.weight_bits + c.state_bits) as f64 / (1u64 << 20) as f64,
                b.memory_bits() as f64 / (1u64 << 20) as f64,
                100.0 * mem
            );
        }
    }
    let _ = writeln!(s, "\nlayer  strategy  devices");
    for (l, p) in design.partition.layers.iter().enumerate() {
        let devs: Vec<String> = p.devices.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(s, "{l:>5}  {:<8}  {}", p.strategy.name(), devs.join(","));
    }
    // A built multi-device CNN system has its own device table above.
    let cnn_system = matches!(design.model, ModelDesign::Cnn(_))
        && plan.devices > 1
        && partita_codegen::arch::cnn_system::CnnSystem::new(design).is_ok();
    if !cnn_system {
        let _ = writeln!(
            s,
            "\ndevice  MACs/{unit:<9}  non-zeros  weight bits  state bits  link tx bytes/{unit:<9}  link rx bytes/{unit:<9}  multipliers"
        );
        for (c, l) in costs.iter().zip(&traffic.devices) {
            let _ = writeln!(
                s,
                "{:>6}  {:>15}  {:>9}  {:>11}  {:>10}  {:>23.1}  {:>23.1}  {:>11}",
                c.device,
                c.macs,
                c.nonzeros,
                c.weight_bits,
                c.state_bits,
                l.tx,
                l.rx,
                c.multipliers
            );
        }
        match traffic.basis {
            Basis::None => {}
            Basis::Frames => {
                let _ = writeln!(
                    s,
                    "link traffic: the generated frames (header, payload, CRC trailer, tick barriers), {DEFAULT_STEPS}-step sequences; rx counts frames addressed to the device"
                );
            }
            Basis::Payload => {
                let _ = writeln!(
                    s,
                    "link traffic: raw payload point to point (no generated multi-device hardware for this plan)"
                );
            }
        }
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

/// A multi-device CNN's system: what each device runs, where its values come from and go,
/// its engines and memories, and the cost model's cycles and link bytes per frame; or why the
/// hardware is not generated (with the cost model's estimate).
fn cnn_system_text(design: &Design) -> String {
    use partita_codegen::arch::cnn_system::{CnnSystem, Sink, Source};
    let mut s = String::new();
    let sys = match CnnSystem::new(design) {
        Ok(sys) => sys,
        Err(e) => {
            let p = cost::predict(design);
            let _ = writeln!(
                s,
                "\nhardware: not generated: {e}\ncost model ({}): {:.0} cycles per frame, {:.0} link bytes per frame",
                p.basis.describe(),
                p.cycles_per_step,
                p.link_bytes_per_step
            );
            return s;
        }
    };
    let one = sys.whole.cycles_per_frame;
    let pred = sys.cycles_per_frame();
    let _ = writeln!(
        s,
        "\nhardware ({} devices, {}): {pred} cycles per frame, {:.3} of one device's {one}; {} link bytes per frame{}",
        sys.devices.len(),
        sys.strategy.name(),
        pred as f64 / one.max(1) as f64,
        sys.link_bytes_per_frame(),
        sys.stack_summary()
            .map(|t| format!("; {t}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "device  layers                 input                           output       cycles/frame  multipliers  line-buffer bits  weight bits"
    );
    for d in &sys.devices {
        let layers: Vec<String> = d
            .arch
            .stages
            .iter()
            .map(|st| st.layer.to_string())
            .collect();
        let input = match d.source {
            Source::Host { lo, hi } if d.host_channels != (0, sys.whole.input.c) => format!(
                "host rows {lo}-{hi} ch {}-{}",
                d.host_channels.0,
                d.host_channels.1 - 1
            ),
            Source::Host { lo, hi } if d.host_cols != (0, sys.whole.input.w) => format!(
                "host rows {lo}-{hi} cols {}-{}",
                d.host_cols.0,
                d.host_cols.1 - 1
            ),
            Source::Host { lo, hi } => format!("host rows {lo}-{hi}"),
            Source::Link { from } => format!("device {from}"),
        };
        let input = match d.gathers.first() {
            Some(_) => format!(
                "{input} +gather {}",
                d.gathers
                    .iter()
                    .map(|g| g.from.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None if !d.reduces.is_empty() => format!(
                "{input} +sums {}",
                d.reduces
                    .iter()
                    .map(|r| r.from.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => input,
        };
        let output = match d.sink {
            Sink::Host => "host".to_string(),
            Sink::Link { to } if d.also.is_empty() => format!("device {to}"),
            Sink::Link { to } => format!(
                "devices {}",
                std::iter::once(to)
                    .chain(d.also.iter().copied())
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let _ = writeln!(
            s,
            "{:>6}  {:<21}  {:<30}  {:<11}  {:>12}  {:>11}  {:>16}  {:>11}",
            d.index,
            layers.join(","),
            input,
            output,
            d.cycles_per_frame(),
            d.arch.multipliers(),
            d.arch.stages.iter().map(|st| st.buffer_bits()).sum::<u64>(),
            d.arch.stages.iter().map(|st| st.weight_bits()).sum::<u64>()
        );
    }
    s
}
