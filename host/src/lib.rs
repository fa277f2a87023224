//! partita-host: the `partita` command-line tool, as a library so tests can drive it in
//! process. The device trait and its backends are not built yet.
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
    /// Generate Verilog for each device. [not built yet]
    Gen {
        plan: PathBuf,
        #[arg(short = 'o', long)]
        out: Option<PathBuf>,
    },
    /// Cosimulate the generated RTL in Verilator against the golden model. [not built yet]
    Sim { plan: PathBuf },
    /// Drive devices (simulated or boards) through the host driver. [not built yet]
    Run { plan: PathBuf },
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
struct Failure {
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
    help("{what} arrives with a later release; see \"Status\" in README.md. Today: `partita check` and `partita golden`.")
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
        Command::Gen { .. } => Err(NotBuilt {
            verb: "gen",
            what: "RTL generation (Verilog per device, register map, file list)",
        }
        .into()),
        Command::Sim { .. } => Err(NotBuilt {
            verb: "sim",
            what: "Verilator cosimulation against the golden model",
        }
        .into()),
        Command::Run { .. } => Err(NotBuilt {
            verb: "run",
            what: "Driving simulated devices and boards through the host driver",
        }
        .into()),
    }
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
