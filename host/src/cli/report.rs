//! `partita report`: the cost model's prediction for a plan and, with `--sweep`, across
//! strategies and device counts, as a table, an SVG plot and (with `--measure`) next to
//! cosimulated cycles.

use std::fmt::Write as _;
use std::path::PathBuf;

use partita_codegen::analysis::cost::{self, CycleBasis, SweepRow};
use partita_codegen::design::{self, Design};

use super::{io_failure, temp, ArgFailure, Failure, WriteFailure};

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    /// Compare strategies over device counts, e.g. devices=1,2,4,8.
    #[arg(long)]
    sweep: Option<String>,
    /// Also write the sweep as an SVG plot of speed-up against device count.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Also cosimulate every configuration of the sweep (generated RTL, Verilator, default
    /// input) and print the measured cycles next to the prediction.
    #[arg(long)]
    measure: bool,
}

pub(crate) fn run_verb(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let d = design::from_path(&a.plan)?;
    // Check the sweep before printing anything, so a failure prints only its reason.
    let rows = match &a.sweep {
        None => None,
        Some(sw) => Some(sweep_rows(&d, sw, a.plot.as_deref())?),
    };
    let p = cost::predict(&d);
    let unit = step_word(&d);
    writeln!(
        out,
        "plan {}: {:.0} cycles per {unit} ({}), {:.0} link bytes per {unit}, {} memory bits and {} multipliers on the largest device{}",
        a.plan.display(),
        p.cycles_per_step,
        p.basis.describe(),
        p.link_bytes_per_step,
        p.max_memory_bits,
        p.multipliers,
        p.recompute
            .map(|r| format!("; the fused stack recomputes {r:.2}x its work"))
            .unwrap_or_default()
    )
    .map_err(io_failure)?;
    let Some(rows) = rows else {
        return Ok(());
    };
    write!(out, "\n{}", table(&d, &rows)).map_err(io_failure)?;
    if a.measure {
        write!(out, "\n{}", measured(&rows)?).map_err(io_failure)?;
    }
    if let Some(path) = a.plot {
        temp::write_text(&path, &svg(&d, &rows)).map_err(|e| {
            Failure::from(WriteFailure {
                path: path.display().to_string(),
                source: e,
            })
        })?;
        writeln!(out, "plot: {}", path.display()).map_err(io_failure)?;
    }
    Ok(())
}

/// Parse a sweep, check the plot path, and make its rows; every requested device count must
/// give at least one row.
fn sweep_rows(
    d: &Design,
    sw: &str,
    plot: Option<&std::path::Path>,
) -> Result<Vec<SweepRow>, Failure> {
    let devices = parse_sweep(sw).map_err(ArgFailure)?;
    if let Some(p) = plot {
        temp::check_out_file(p, "--plot").map_err(ArgFailure)?;
    }
    let rows = cost::sweep(d, &devices);
    let missing: Vec<String> = devices
        .iter()
        .filter(|n| !rows.iter().any(|r| r.devices == **n))
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        let why = match &d.model {
            partita_codegen::design::ModelDesign::Lstm(m) => format!(
                "rows splits at most hidden_size = {} ways, cols 2 x banks = {}, gates 4, ops 2, layers num_layers = {}",
                m.hidden_size,
                2 * d.plan.banks,
                m.layers.len()
            ),
            partita_codegen::design::ModelDesign::Cnn(_) => format!(
                "a CNN splits over at most {} devices (link frames address 8), fused needs a window stack with as many output rows, layers as many conv2d, dense or maxpool layers, filters and channels as many channels in every layer",
                partita_hdl::frame::MAX_DEVICES
            ),
        };
        return Err(ArgFailure(format!(
            "--sweep: no strategy can split this model over {} device(s): {why}",
            missing.join(", ")
        ))
        .into());
    }
    Ok(rows)
}

/// What one cycle figure covers: an LSTM timestep or a CNN frame.
fn step_word(d: &Design) -> &'static str {
    match d.model {
        partita_codegen::design::ModelDesign::Lstm(_) => "timestep",
        partita_codegen::design::ModelDesign::Cnn(_) => "frame",
    }
}

/// Parse `devices=1,2,4,8`.
pub fn parse_sweep(s: &str) -> Result<Vec<usize>, String> {
    let list = s
        .strip_prefix("devices=")
        .ok_or_else(|| format!("`{s}`: write the sweep as devices=1,2,4,8"))?;
    let v: Result<Vec<usize>, _> = list.split(',').map(|x| x.trim().parse::<usize>()).collect();
    match v {
        Ok(v) if !v.is_empty() && v.iter().all(|d| (1..=4096).contains(d)) => Ok(v),
        _ => Err(format!(
            "`{list}`: device counts are whole numbers from 1 to 4096, comma-separated"
        )),
    }
}

/// The sweep table. Speed-up is against the single-device `rows` prediction.
pub fn table(design: &Design, rows: &[SweepRow]) -> String {
    let base = cost::sweep(design, &[1])
        .first()
        .map(|r| r.prediction.cycles_per_step)
        .unwrap_or(f64::NAN);
    let mut s = String::new();
    let u = if step_word(design) == "frame" {
        "frame"
    } else {
        "step"
    };
    let _ = writeln!(
        s,
        "strategy  devices  cycles/{u}  speed-up  link bytes/{u}  max memory bits/device  multipliers/device  basis"
    );
    for r in rows {
        let p = &r.prediction;
        let _ = writeln!(
            s,
            "{:<8}  {:>7}  {:>11.0}  {:>8.2}  {:>15.0}  {:>22}  {:>18}  {}",
            r.strategy.name(),
            r.devices,
            p.cycles_per_step,
            base / p.cycles_per_step,
            p.link_bytes_per_step,
            p.max_memory_bits,
            p.multipliers,
            match p.basis {
                CycleBasis::Exact => "exact (generated hardware)".to_string(),
                CycleBasis::NodeModel => match p.recompute {
                    Some(r) => format!("model of the generated nodes (recompute {r:.2}x)"),
                    None => "model of the generated nodes".to_string(),
                },
                CycleBasis::Estimate if step_word(design) == "frame" => {
                    "estimate (hardware not built)".to_string()
                }
                CycleBasis::Estimate => "estimate".to_string(),
            }
        );
    }
    s
}

/// A line plot of speed-up against device count, one line per strategy.
pub fn svg(design: &Design, rows: &[SweepRow]) -> String {
    let base = cost::sweep(design, &[1])
        .first()
        .map(|r| r.prediction.cycles_per_step)
        .unwrap_or(1.0);
    let (w, h, pad) = (640.0, 400.0, 50.0);
    let max_d = rows.iter().map(|r| r.devices).max().unwrap_or(1) as f64;
    let max_s = rows
        .iter()
        .map(|r| base / r.prediction.cycles_per_step)
        .fold(1.0, f64::max);
    let x = |d: f64| pad + (w - 2.0 * pad) * (d - 1.0) / (max_d - 1.0).max(1.0);
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / max_s;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\">devices</text><text x=\"5\" y=\"{}\">speed-up</text>\n",
        h - pad, w - pad, h - pad, h - pad, w / 2.0, h - 15.0, pad - 10.0
    );
    let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
    let mut names: Vec<&str> = rows.iter().map(|r| r.strategy.name()).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    for (i, name) in names.iter().enumerate() {
        let pts: Vec<String> = rows
            .iter()
            .filter(|r| r.strategy.name() == *name)
            .map(|r| {
                format!(
                    "{:.1},{:.1}",
                    x(r.devices as f64),
                    y(base / r.prediction.cycles_per_step)
                )
            })
            .collect();
        let c = colors[i % colors.len()];
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{name}</text>",
            w - pad + 5.0,
            pad + 15.0 * i as f64
        );
    }
    for r in rows
        .iter()
        .map(|r| r.devices)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\">{r}</text>",
            x(r as f64) - 3.0,
            h - pad + 15.0
        );
    }
    s + "</svg>\n"
}

/// Cosimulate every row of a sweep and tabulate measured against predicted cycles.
pub fn measured(rows: &[SweepRow]) -> Result<String, crate::cosim::SimError> {
    let opts = crate::cosim::SimOptions::default();
    let mut s = String::new();
    let cnn = rows
        .first()
        .is_some_and(|r| matches!(r.design.model, partita_codegen::design::ModelDesign::Cnn(_)));
    let _ = writeln!(
        s,
        "{}\nstrategy  devices  predicted  measured  error   speed-up  link bytes/{}  match",
        if cnn {
            "measured by cosimulation (4 frames; cycles per frame in steady state):"
        } else {
            "measured by cosimulation (2 sequences x 8 steps):"
        },
        if cnn { "frame" } else { "step" }
    );
    let mut base = f64::NAN;
    for r in rows {
        let res = if r.devices == 1 {
            crate::cosim::simulate(&r.design, &opts)
                .map(|rep| (rep.cycles_per_timestep, 0.0, rep.matched))
        } else {
            crate::cosim::multi::simulate_multi(&r.design, &opts, None).map(|rep| {
                (
                    rep.cycles_per_timestep,
                    rep.link_bytes_per_timestep,
                    rep.matched,
                )
            })
        };
        let (cycles, bytes, ok) = match res {
            Ok(v) => v,
            Err(crate::cosim::SimError::Gen(why)) => {
                let _ = writeln!(
                    s,
                    "{:<8}  {:>7}  not generated: {why}",
                    r.strategy.name(),
                    r.devices
                );
                continue;
            }
            Err(e) => return Err(e),
        };
        if r.devices == 1 && base.is_nan() {
            base = cycles;
        }
        let p = r.prediction.cycles_per_step;
        let _ = writeln!(
            s,
            "{:<8}  {:>7}  {:>9.0}  {:>8.0}  {:>5.1}%  {:>8.2}  {:>15.0}  {}",
            r.strategy.name(),
            r.devices,
            p,
            cycles,
            100.0 * (p - cycles) / cycles,
            base / cycles,
            bytes,
            if ok { "yes" } else { "NO" }
        );
    }
    Ok(s)
}
