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
    /// Configurations cosimulated at once with --measure (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Write a Slurm job array into this directory instead of measuring here: `sweep.sbatch`
    /// (one configuration per task) and `merge.sh` (the usual table and plot from the tasks'
    /// JSON).
    #[arg(long)]
    slurm: Option<PathBuf>,
    /// Measure only configuration K of the sweep and write its JSON to --task-out (what a
    /// Slurm task runs).
    #[arg(long, requires = "task_out")]
    task: Option<usize>,
    #[arg(long)]
    task_out: Option<PathBuf>,
    /// Join the per-task JSON in this directory into the measured table (what merge.sh runs).
    #[arg(long)]
    merge: Option<PathBuf>,
}

pub(crate) fn run_verb(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let d = design::from_path(&a.plan)?;
    // Check the sweep before printing anything, so a failure prints only its reason.
    let rows = match &a.sweep {
        None => None,
        Some(sw) => Some(sweep_rows(&d, sw, a.plot.as_deref())?),
    };
    // Every flag is checked (and the merge's task files read) before anything is printed.
    let want_sweep = a.measure || a.slurm.is_some() || a.task.is_some() || a.merge.is_some();
    if rows.is_none() && want_sweep {
        return Err(ArgFailure(
            "--measure, --slurm, --task and --merge work on a sweep: add --sweep devices=1,2,4"
                .into(),
        )
        .into());
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 || jobs > 256 {
        return Err(ArgFailure(format!("--jobs {jobs}: allowed 1 to 256")).into());
    }
    if let (Some(k), Some(rows)) = (a.task, &rows) {
        if k >= rows.len() {
            return Err(ArgFailure(format!(
                "--task {k}: the sweep has configurations 0..{}",
                rows.len()
            ))
            .into());
        }
    }
    if let Some(p) = &a.task_out {
        temp::check_out_file(p, "--task-out").map_err(ArgFailure)?;
    }
    let merged = match (&a.merge, &rows) {
        (Some(dir), Some(rows)) => Some(slurm::read_tasks(dir, rows)?),
        _ => None,
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
        if a.measure || a.slurm.is_some() || a.task.is_some() || a.merge.is_some() {
            return Err(ArgFailure(
                "--measure, --slurm, --task and --merge work on a sweep: add --sweep devices=1,2,4"
                    .into(),
            )
            .into());
        }
        return Ok(());
    };
    write!(out, "\n{}", table(&d, &rows)).map_err(io_failure)?;
    if let Some(k) = a.task {
        let r = &rows[k];
        let m = measure_row(r)?;
        let path = a.task_out.clone().unwrap_or_default();
        temp::write_text(&path, &(task_json(k, r, &m) + "\n")).map_err(|e| {
            Failure::from(WriteFailure {
                path: path.display().to_string(),
                source: e,
            })
        })?;
        writeln!(out, "task {k}: {}", path.display()).map_err(io_failure)?;
        return Ok(());
    }
    if let Some(dir) = &a.slurm {
        let sw = a.sweep.clone().unwrap_or_default();
        let n = slurm::write(dir, &a.plan, &sw, rows.len(), a.plot.as_deref())?;
        writeln!(out, "slurm: {n}").map_err(io_failure)?;
        return Ok(());
    }
    if let Some(ms) = merged {
        write!(out, "\n{}", measured_table(&rows, &ms)).map_err(io_failure)?;
    } else if a.measure {
        let ms = measure_all(&rows, jobs)?;
        write!(out, "\n{}", measured_table(&rows, &ms)).map_err(io_failure)?;
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

/// What cosimulating one configuration gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Measure {
    /// Cycles per step or frame, link bytes per step or frame, bit-exact.
    Done { cycles: f64, bytes: f64, ok: bool },
    /// The generator does not build this configuration: why.
    NotGenerated(String),
}

/// Cosimulate one configuration of a sweep.
pub fn measure_row(r: &SweepRow) -> Result<Measure, crate::cosim::SimError> {
    let opts = crate::cosim::SimOptions::default();
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
    match res {
        Ok((cycles, bytes, ok)) => Ok(Measure::Done { cycles, bytes, ok }),
        Err(crate::cosim::SimError::Gen(why)) => Ok(Measure::NotGenerated(why)),
        Err(e) => Err(e),
    }
}

/// Cosimulate every configuration, `jobs` at a time (each on a thread of its own: builds and
/// models are independent), results in the sweep's order.
pub fn measure_all(rows: &[SweepRow], jobs: usize) -> Result<Vec<Measure>, crate::cosim::SimError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Measure, crate::cosim::SimError>>>> =
        rows.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(rows.len()).max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(r) = rows.get(k) else {
                    return;
                };
                let m = measure_row(r);
                if let Ok(mut slot) = results[k].lock() {
                    *slot = Some(m);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(crate::cosim::SimError::Gen(
                    "a measurement thread stopped".into(),
                ))
            })
        })
        .collect()
}

/// One task's JSON (a Slurm array task's output).
pub fn task_json(k: usize, r: &SweepRow, m: &Measure) -> String {
    let v = match m {
        Measure::Done { cycles, bytes, ok } => serde_json::json!({
            "task": k, "strategy": r.strategy.name(), "devices": r.devices,
            "predicted": r.prediction.cycles_per_step,
            "measured": cycles, "link_bytes": bytes, "match": ok,
        }),
        Measure::NotGenerated(why) => serde_json::json!({
            "task": k, "strategy": r.strategy.name(), "devices": r.devices,
            "not_generated": why,
        }),
    };
    v.to_string()
}

/// The measured table: measured against predicted cycles, per configuration.
pub fn measured_table(rows: &[SweepRow], ms: &[Measure]) -> String {
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
    let base = rows
        .iter()
        .zip(ms)
        .find_map(|(r, m)| match m {
            Measure::Done { cycles, .. } if r.devices == 1 => Some(*cycles),
            _ => None,
        })
        .unwrap_or(f64::NAN);
    for (r, m) in rows.iter().zip(ms) {
        match m {
            Measure::NotGenerated(why) => {
                let _ = writeln!(
                    s,
                    "{:<8}  {:>7}  not generated: {why}",
                    r.strategy.name(),
                    r.devices
                );
            }
            Measure::Done { cycles, bytes, ok } => {
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
                    if *ok { "yes" } else { "NO" }
                );
            }
        }
    }
    s
}

/// The sweep on a cluster: a Slurm job array, one configuration per task, and the merge.
mod slurm {
    use std::path::Path;

    use partita_codegen::analysis::cost::SweepRow;

    use super::Measure;
    use crate::cli::{temp, ArgFailure, Failure, WriteFailure};

    /// A word for a POSIX shell: single-quoted.
    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', "'\\''"))
    }

    fn absolute(p: &Path) -> String {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    }

    /// Write `sweep.sbatch` and `merge.sh` into `dir`; returns what to run.
    pub fn write(
        dir: &Path,
        plan: &Path,
        sweep: &str,
        n: usize,
        plot: Option<&Path>,
    ) -> Result<String, Failure> {
        if dir.exists() && !dir.is_dir() {
            return Err(ArgFailure(format!("--slurm {}: not a directory", dir.display())).into());
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::from(WriteFailure {
                path: dir.display().to_string(),
                source: e,
            })
        })?;
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "partita".into());
        let (d, plan) = (absolute(dir), absolute(plan));
        let q = |s: &str| quote(s);
        let sbatch = format!(
            "#!/bin/bash\n\
             # partita sweep of {plan_name}: one Slurm array task per configuration ({n}).\n\
             # Submit: sbatch sweep.sbatch; when every task is done: bash merge.sh (or sbatch\n\
             # --dependency=afterok:JOBID merge.sh). Outside Slurm, set SLURM_ARRAY_TASK_ID.\n\
             #SBATCH --job-name=partita-sweep\n\
             #SBATCH --array=0-{last}\n\
             #SBATCH --cpus-per-task=1\n\
             #SBATCH --output={d}/task_%a.log\n\
             set -euo pipefail\n\
             PARTITA=${{PARTITA:-{exe}}}\n\
             k=\"${{SLURM_ARRAY_TASK_ID:?run under sbatch, or set SLURM_ARRAY_TASK_ID}}\"\n\
             exec \"$PARTITA\" report {plan} --sweep {sweep} --task \"$k\" --task-out {out}/task_\"$k\".json\n",
            plan_name = plan,
            last = n.saturating_sub(1),
            d = d,
            exe = q(&exe),
            plan = q(&plan),
            sweep = q(sweep),
            out = q(&d),
        );
        let plot = plot
            .map(|p| format!(" --plot {}", q(&absolute(p))))
            .unwrap_or_default();
        let merge = format!(
            "#!/bin/bash\n\
             # Join the sweep's task results into the measured table{}.\n\
             set -euo pipefail\n\
             PARTITA=${{PARTITA:-{exe}}}\n\
             exec \"$PARTITA\" report {plan} --sweep {sweep} --merge {dir}{plot}\n",
            if plot.is_empty() { "" } else { " and plot" },
            exe = q(&exe),
            plan = q(&plan),
            sweep = q(sweep),
            dir = q(&d),
        );
        for (name, text) in [("sweep.sbatch", sbatch), ("merge.sh", merge)] {
            let p = dir.join(name);
            temp::write_text(&p, &text).map_err(|e| {
                Failure::from(WriteFailure {
                    path: p.display().to_string(),
                    source: e,
                })
            })?;
        }
        Ok(format!(
            "{d}/sweep.sbatch ({n} tasks) and {d}/merge.sh; sbatch sweep.sbatch, then bash merge.sh"
        ))
    }

    /// Read every task's JSON; each must be there and match its configuration.
    pub fn read_tasks(dir: &Path, rows: &[SweepRow]) -> Result<Vec<Measure>, Failure> {
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (k, r) in rows.iter().enumerate() {
            let p = dir.join(format!("task_{k}.json"));
            let text = match std::fs::metadata(&p) {
                Ok(m) if m.len() > 1 << 20 => {
                    return Err(ArgFailure(format!(
                        "--merge: {} is {} bytes; a task writes one line of JSON",
                        p.display(),
                        m.len()
                    ))
                    .into())
                }
                Ok(_) => std::fs::read_to_string(&p).unwrap_or_default(),
                Err(_) => {
                    missing.push(k);
                    continue;
                }
            };
            let bad = |why: &str| -> Failure {
                ArgFailure(format!("--merge: {}: {why}", p.display())).into()
            };
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| bad(&format!("not JSON ({e})")))?;
            if v["task"] != k || v["strategy"] != r.strategy.name() || v["devices"] != r.devices {
                return Err(bad(&format!(
                    "it is not configuration {k} of this sweep ({} on {} devices)",
                    r.strategy.name(),
                    r.devices
                )));
            }
            out.push(match v["not_generated"].as_str() {
                Some(why) => Measure::NotGenerated(why.to_string()),
                None => Measure::Done {
                    cycles: v["measured"]
                        .as_f64()
                        .ok_or_else(|| bad("no measured cycles"))?,
                    bytes: v["link_bytes"].as_f64().unwrap_or(0.0),
                    ok: v["match"].as_bool().unwrap_or(false),
                },
            });
        }
        if !missing.is_empty() {
            return Err(ArgFailure(format!(
                "--merge {}: tasks {missing:?} of {} have no result (task_K.json); run them, or look at their task_K.log",
                dir.display(),
                rows.len()
            ))
            .into());
        }
        Ok(out)
    }
}
