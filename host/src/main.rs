//! The `partita` command-line tool.
//!
//! Exit codes: 0 success; 1 a cosimulation mismatch (once `sim` is built); 2 bad input (plan,
//! weights, arrays, arguments) or a verb that is not built yet.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

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
    after_help = "Exit codes: 0 ok, 1 cosimulation mismatch, 2 bad input.\nLogging: -v (info), -vv (debug), or RUST_LOG=partita=debug."
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
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
        #[arg(long)]
        float: bool,
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

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Render a diagnostic to stderr; colour only on a terminal and without NO_COLOR.
fn report(err: &dyn Diagnostic) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
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
    eprint!("{out}");
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

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Check { plan } => {
            let d = design::from_path(&plan)?;
            let costs = summary::device_costs(&d);
            summary::check_budgets(&d, &costs)?;
            print!("{}", summary::render(&d, &costs));
            Ok(())
        }
        Command::Golden {
            plan,
            input,
            output,
            float,
        } => {
            let d = design::from_path(&plan)?;
            let x = partita_sim::read_input(&input, &d)?;
            let mode = if float { Mode::Float } else { Mode::Fixed };
            let y = partita_sim::run(&d, &x, mode);
            partita_sim::write_output(&output, &y.values)?;
            let mode_name = if float { "float" } else { "fixed" };
            println!(
                "golden ({mode_name}): input {:?} -> {} {:?}",
                x.data.shape(),
                output.display(),
                y.values.shape()
            );
            if !float {
                println!(
                    "events: {} input values clipped, {} saturations",
                    y.events.input_clipped, y.events.saturations
                );
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            report(f.diag.as_ref());
            ExitCode::from(f.code)
        }
    }
}
