//! The `partita` command line: argument parsing, one file per verb, and how failures become
//! exit codes (0 success; 1 a cosimulation mismatch; 2 bad input or a verb not built yet).

use std::ffi::OsString;
use std::io::Write;

use clap::{ArgAction, Parser, Subcommand};
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

pub mod bench;
mod bench_driver;
pub mod calibrate;
pub mod check;
pub mod gen;
pub mod golden;
pub mod report;
pub mod run;
pub mod serve;
pub mod sim;
pub mod synth;
pub mod temp;

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
    Check(check::Args),
    /// Run the golden model (bit-exact fixed point, or float with --float).
    Golden(golden::Args),
    /// Pick each fixed-point format from the ranges the float model sees on sample inputs
    /// (with a margin) and write the plan with them.
    Calibrate(calibrate::Args),
    /// Generate Verilog, $readmemh weights, the register map and file lists: one directory,
    /// or one per device and system.json for multi-device plans (LSTM plans).
    Gen(gen::Args),
    /// Cosimulate the RTL in Verilator and compare every output word with the golden model.
    Sim(sim::Args),
    /// Measure cosim speed, cycles per timestep and efficiency, Verilator build time (cold and
    /// cached) and golden-model speed on single-device plans (default: the 1-device examples).
    Bench(bench::Args),
    /// Cost model: predicted cycles per timestep, link traffic, memory and multipliers.
    Report(report::Args),
    /// Run inputs through the devices via the host driver (no golden comparison), like boards:
    /// simulated, an XDMA card, or devices served by `partita serve` on other machines.
    Run(run::Args),
    /// Serve one device of a plan to remote hosts over gRPC (loopback by default).
    Serve(serve::Args),
    /// Open synthesis of one device's RTL (Yosys): LUTs, FFs, DSP blocks, block RAM and where
    /// each memory went; with --pnr, place and route (nextpnr) for the achieved Fmax.
    Synth(synth::Args),
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

impl Failure {
    /// A cosimulation whose output is not the golden model's: exit 1.
    pub(crate) fn mismatch(first_line: &str) -> Failure {
        Failure {
            code: 1,
            diag: Box::new(Mismatch(first_line.to_string())),
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
pub(crate) struct ArgFailure(pub(crate) String);

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("cannot generate RTL: {0}")]
#[diagnostic(
    code(partita::gen),
    help("see \"Status\" in README.md for what `gen` covers today")
)]
pub(crate) struct GenFailure(pub(crate) String);

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("cannot write `{path}`: {source}")]
#[diagnostic(code(partita::io), help("check that the directory is writable"))]
pub(crate) struct WriteFailure {
    pub(crate) path: String,
    pub(crate) source: std::io::Error,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("cannot write output: {0}")]
#[diagnostic(code(partita::io))]
struct IoFailure(std::io::Error);

pub(crate) fn io_failure(e: std::io::Error) -> Failure {
    IoFailure(e).into()
}

fn dispatch(cli: Cli, out: &mut dyn Write) -> Result<(), Failure> {
    match cli.command {
        Command::Check(a) => check::run(a, out),
        Command::Golden(a) => golden::run(a, out),
        Command::Calibrate(a) => calibrate::run(a, out),
        Command::Gen(a) => gen::run(a, out),
        Command::Sim(a) => sim::run(a, out),
        Command::Bench(a) => bench::run_verb(a, out),
        Command::Report(a) => report::run_verb(a, out),
        Command::Run(a) => run::run(a, out),
        Command::Serve(a) => serve::run(a, out),
        Command::Synth(a) => synth::run(a, out),
    }
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
