//! partita-host: the `partita` command-line tool, as a library so tests can drive it in
//! process. [`device`] holds the device trait, the simulated backend and the LSTM run sequence;
//! board backends (PCIe, remote) are not built yet.
//!
//! Exit codes: 0 success; 1 a cosimulation mismatch (once `sim` is built); 2 bad input (plan,
//! weights, arrays, arguments) or a verb that is not built yet.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use partita_codegen::design;
use partita_codegen::summary;
use partita_sim::Mode;

pub mod bench;
pub mod device;
pub mod multisim;
pub mod report;
pub mod simulate;

#[derive(Parser)]
#[command(
    name = "partita",
    version,
    about = "Partition LSTMs and CNNs over FPGAs: check plans, run golden models, generate and cosimulate RTL",
    after_help = "Exit codes: 0 ok, 1 cosimulation mismatch, 2 bad input.\nLogging: -v (info), -vv (debug), or RUST_LOG=debug."
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a plan and print each device's work, memory and link traffic.
    Check {
        /// The plan (TOML).
        plan: PathBuf,
    },
    /// Run the golden model (bit-exact fixed point, or float with --float).
    Golden {
        plan: PathBuf,
        /// Input .npy, float32/float64: LSTM (seq, input) or (batch, seq, input); CNN (c, h, w)
        /// or (n, c, h, w).
        #[arg(long)]
        input: PathBuf,
        /// Output .npy, float64: the last layer's h per step (LSTM) or the network output.
        #[arg(long)]
        output: PathBuf,
        /// Float64 with PyTorch semantics instead of the fixed-point hardware contract.
        #[arg(long, conflicts_with = "vs_float")]
        float: bool,
        /// Also run the float model and print the max |fixed - float| difference.
        #[arg(long)]
        vs_float: bool,
    },
    /// Generate Verilog, $readmemh weights, the register map and a file list (single-device LSTM plans).
    Gen {
        plan: PathBuf,
        /// Output directory (created if missing).
        #[arg(short = 'o', long, default_value = "rtl")]
        out: PathBuf,
    },
    /// Cosimulate the RTL in Verilator and compare every output word with the golden model.
    Sim {
        plan: PathBuf,
        /// Input .npy like `golden` takes (default: 2 sequences of 8 unit-normal steps).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Write the device's output here (.npy float64, same shape as `golden`).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Simulate an already generated directory (from `partita gen`) instead of generating.
        #[arg(long)]
        rtl: Option<PathBuf>,
        /// Dump an FST waveform of the whole run.
        #[arg(long)]
        wave: Option<PathBuf>,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Hold stream ready/valid low on this percentage of cycles (0-99).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..100))]
        backpressure: u32,
        /// Multi-device plans: damage one link frame, KIND:CHANNEL:FRAME with KIND corrupt
        /// (flip a bit), drop or reorder (deliver after the next frame). Channel numbers are in
        /// the summary. The run must then report a link error.
        #[arg(long, value_parser = multisim::parse_fault)]
        inject_fault: Option<partita_sim::multi::Fault>,
    },
    /// Measure cosim speed, cycles per timestep and efficiency, Verilator build time (cold and
    /// cached) and golden-model speed on single-device plans (default: the 1-device examples).
    Bench {
        plans: Vec<PathBuf>,
        /// Timesteps per sequence of the benchmark input (2 sequences).
        #[arg(long, default_value_t = 32)]
        steps: usize,
    },
    /// Cost model: predicted cycles per timestep, link traffic, memory and multipliers.
    Report {
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
    },
    /// Run inputs through a device via the host driver (no golden comparison), like a board.
    Run {
        plan: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// `sim` (Verilator model of the generated RTL). Board backends are not built yet.
        #[arg(long, default_value = "sim")]
        backend: String,
        /// Use an already generated RTL directory.
        #[arg(long)]
        rtl: Option<PathBuf>,
    },
}

/// Render a diagnostic; colour only when asked for.
pub fn render(err: &dyn Diagnostic, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    if handler.render_report(&mut out, err).is_err() {
        out = format!("error: {err}\n");
    }
    out
}

/// A failure that exits with `code` after its diagnostic is shown.
pub struct Failure {
    code: u8,
    diag: Box<dyn Diagnostic + Send + Sync>,
}

impl<E: Diagnostic + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 2,
            diag: Box::new(e),
        }
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("`partita {verb}` is not built yet")]
#[diagnostic(
    code(partita::not_built),
    help("{what}: not built yet; see \"Status\" in README.md for what is")
)]
struct NotBuilt {
    verb: &'static str,
    what: &'static str,
}

fn dispatch(cli: Cli, out: &mut dyn Write) -> Result<(), Failure> {
    match cli.command {
        Command::Check { plan } => {
            let d = design::from_path(&plan)?;
            let costs = summary::device_costs(&d);
            summary::check_budgets(&d, &costs)?;
            write!(out, "{}", summary::render(&d, &costs)).map_err(io_failure)?;
            Ok(())
        }
        Command::Golden {
            plan,
            input,
            output,
            float,
            vs_float,
        } => {
            let d = design::from_path(&plan)?;
            let x = partita_sim::read_input(&input, &d)?;
            let mode = if float { Mode::Float } else { Mode::Fixed };
            let y = partita_sim::run(&d, &x, mode);
            partita_sim::write_output(&output, &y.values)?;
            let mode_name = if float { "float" } else { "fixed" };
            writeln!(
                out,
                "golden ({mode_name}): input {:?} -> {} {:?}",
                x.data.shape(),
                output.display(),
                y.values.shape()
            )
            .map_err(io_failure)?;
            if !float {
                writeln!(
                    out,
                    "events: {} input values clipped, {} saturations",
                    y.events.input_clipped, y.events.saturations
                )
                .map_err(io_failure)?;
            }
            if vs_float {
                let f = partita_sim::run(&d, &x, Mode::Float);
                let err = y
                    .values
                    .iter()
                    .zip(f.values.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f64, f64::max);
                writeln!(out, "max |fixed - float| = {err:.3e}").map_err(io_failure)?;
            }
            Ok(())
        }
        Command::Gen { plan, out: dir } => {
            let d = design::from_path(&plan)?;
            let files = if d.plan.devices > 1 {
                partita_codegen::node::generate(&d).map_err(GenFailure)?
            } else {
                let vectors = simulate::tb_vectors(&d);
                partita_codegen::emit::generate(&d, Some(&vectors)).map_err(GenFailure)?
            };
            write_files(&dir, &files)?;
            writeln!(out, "gen: wrote {} files to {}", files.len(), dir.display())
                .map_err(io_failure)?;
            Ok(())
        }
        Command::Sim {
            plan,
            input,
            output,
            rtl,
            wave,
            json,
            backpressure,
            inject_fault,
        } => {
            let d = design::from_path(&plan)?;
            if inject_fault.is_some() && d.plan.devices == 1 {
                return Err(ArgFailure(
                    "--inject-fault damages link frames; this plan has one device and no links"
                        .into(),
                )
                .into());
            }
            let opts = simulate::SimOptions {
                input,
                rtl,
                wave,
                backpressure,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                cache: None,
            };
            // Both reports: (output values, JSON, summary, every word matched).
            let (values, json_text, summary, matched) = if d.plan.devices > 1 {
                let r = multisim::simulate_multi(&d, &opts, inject_fault)?;
                (r.output.clone(), r.json(), r.summary(), r.matched)
            } else {
                let r = simulate::simulate(&d, &opts)?;
                (r.output.clone(), r.json(), r.summary(), r.matched)
            };
            if let Some(p) = output {
                partita_sim::write_output(&p, &values)?;
            }
            if json {
                writeln!(out, "{json_text}").map_err(io_failure)?;
            } else {
                write!(out, "{summary}").map_err(io_failure)?;
            }
            if matched {
                Ok(())
            } else {
                Err(Failure {
                    code: 1,
                    diag: Box::new(Mismatch(
                        summary.lines().next().unwrap_or("mismatch").to_string(),
                    )),
                })
            }
        }
        Command::Bench { plans, steps } => {
            let plans = if plans.is_empty() {
                vec![
                    PathBuf::from("examples/lstm_1dev_dense.toml"),
                    PathBuf::from("examples/lstm_1dev_bbs.toml"),
                ]
            } else {
                plans
            };
            writeln!(out, "{}", bench::HEADER).map_err(io_failure)?;
            for p in plans {
                let d = design::from_path(&p)?;
                let row = bench::run(&d, steps)?;
                writeln!(out, "{}", row.line(&p.display().to_string())).map_err(io_failure)?;
            }
            Ok(())
        }
        Command::Report {
            plan,
            sweep,
            plot,
            measure,
        } => {
            let d = design::from_path(&plan)?;
            let p = partita_codegen::cost::predict(&d);
            writeln!(
                out,
                "plan {}: {:.0} cycles per timestep ({}), {:.0} link bytes per timestep, {} memory bits and {} multipliers on the largest device",
                plan.display(),
                p.cycles_per_step,
                if p.exact {
                    "exact for the generated single-device hardware"
                } else if d.plan.devices > 1 {
                    "model of the generated multi-device hardware"
                } else {
                    "estimate"
                },
                p.link_bytes_per_step,
                p.max_memory_bits,
                p.multipliers
            )
            .map_err(io_failure)?;
            if let Some(sw) = sweep {
                let devices = report::parse_sweep(&sw).map_err(ArgFailure)?;
                let rows = partita_codegen::cost::sweep(&d, &devices);
                write!(out, "\n{}", report::table(&d, &rows)).map_err(io_failure)?;
                if measure {
                    write!(out, "\n{}", report::measured(&rows)?).map_err(io_failure)?;
                }
                if let Some(path) = plot {
                    std::fs::write(&path, report::svg(&d, &rows)).map_err(|e| {
                        Failure::from(WriteFailure {
                            path: path.display().to_string(),
                            source: e,
                        })
                    })?;
                    writeln!(out, "plot: {}", path.display()).map_err(io_failure)?;
                }
            }
            Ok(())
        }
        Command::Run {
            plan,
            input,
            output,
            backend,
            rtl,
        } => {
            if backend != "sim" {
                return Err(NotBuilt {
                    verb: "run --backend {pcie,remote}",
                    what: "Board backends (PCIe, remote)",
                }
                .into());
            }
            let d = design::from_path(&plan)?;
            let partita_codegen::design::ModelDesign::Lstm(m) = &d.model else {
                return Err(GenFailure(
                    "CNN hardware is not built yet; `partita run` handles LSTM plans".into(),
                )
                .into());
            };
            let x = partita_sim::read_input(&input, &d)?;
            let opts = simulate::SimOptions {
                rtl,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                ..Default::default()
            };
            let (mut dev, _, _) = simulate::open_sim_device(&d, &opts)?;
            let codes = simulate::input_codes(&d, &x);
            let (seqs, steps) = (x.data.shape()[0], x.data.shape()[1]);
            let r = device::run_lstm(
                &mut dev,
                d.plan.plan_hash,
                steps,
                seqs,
                m.hidden_size,
                d.quant().data.width(),
                &codes,
            )
            .map_err(simulate::SimError::from)?;
            let y = simulate::output_array(&d, &x, m.hidden_size, &r.codes);
            partita_sim::write_output(&output, &y)?;
            writeln!(
                out,
                "run (sim): {} sequence(s) x {} step(s) -> {} {:?}; {} cycles, {} saturation events, {} refused accesses",
                seqs,
                steps,
                output.display(),
                y.shape(),
                r.cycles,
                r.saturations,
                r.errors
            )
            .map_err(io_failure)?;
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
#[diagnostic(
    code(partita::mismatch),
    help("the cosimulated output is not the bit-exact golden model's (a differing word, a missing one, or a link error stopped a device); rerun with --wave to see why")
)]
struct Mismatch(String);

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
#[diagnostic(code(partita::args))]
struct ArgFailure(String);

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("cannot generate RTL: {0}")]
#[diagnostic(
    code(partita::gen),
    help("see \"Status\" in README.md for what `gen` covers today")
)]
struct GenFailure(String);

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("cannot write `{path}`: {source}")]
#[diagnostic(code(partita::io), help("check that the directory is writable"))]
struct WriteFailure {
    path: String,
    source: std::io::Error,
}

/// Write generated files into `dir`, creating it.
pub fn write_files(
    dir: &std::path::Path,
    files: &[partita_codegen::emit::File],
) -> Result<(), Failure> {
    let fail = |p: &std::path::Path, e: std::io::Error| -> Failure {
        WriteFailure {
            path: p.display().to_string(),
            source: e,
        }
        .into()
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    for f in files {
        let p = dir.join(&f.name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
        }
        std::fs::write(&p, &f.text).map_err(|e| fail(&p, e))?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("cannot write output: {0}")]
#[diagnostic(code(partita::io))]
struct IoFailure(std::io::Error);

fn io_failure(e: std::io::Error) -> Failure {
    IoFailure(e).into()
}

/// Run the CLI on `args` (program name first). Returns the exit code; normal output goes to
/// `out`, diagnostics to `err`.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let text = if color {
                e.render().ansi().to_string()
            } else {
                e.render().to_string()
            };
            let _ = if e.use_stderr() {
                write!(err, "{text}")
            } else {
                write!(out, "{text}")
            };
            return code;
        }
    };
    run_parsed(cli, out, err, color)
}

/// Run an already parsed command line.
pub fn run_parsed(cli: Cli, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    match dispatch(cli, out) {
        Ok(()) => 0,
        Err(f) => {
            let _ = write!(err, "{}", render(f.diag.as_ref(), color));
            f.code
        }
    }
}
