//! The `partita` binary: parses arguments, sets up logging, and hands over to the library.
//!
//! The work runs in a child process of the same binary, watched by this one. Whatever stops
//! the child abnormally (an allocation failure, a fatal error inside a Verilator model, a
//! panic, the kernel's out-of-memory killer) is reported here with exit code 2, and temporary
//! output the child registered (see `partita_host::cli::temp`) is removed. If this process is
//! killed instead, the child notices within 200 ms, removes its unfinished output and stops. Set
//! `PARTITA_IN_PROCESS=1` to run without the watcher (for debuggers).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

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

fn main() -> ExitCode {
    let watched = std::env::var_os(partita_host::cli::temp::CHILD_ENV).is_some()
        || std::env::var_os("PARTITA_IN_PROCESS").is_some();
    if !watched {
        if let Some(code) = partita_host::cli::temp::supervise() {
            return ExitCode::from(code);
        }
    }
    if let Some(list) = std::env::var_os(partita_host::cli::temp::CHILD_ENV) {
        partita_host::cli::temp::follow_parent(list.into());
    }
    // In the child: a panic is a bug; say so plainly and exit 2 (the watcher would too).
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "error: internal error in partita: {info}\n  help: this is a bug; please report it with the command line and plan"
        );
    }));
    let cli = partita_host::Cli::parse();
    init_tracing(cli.verbose);
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        partita_host::run_parsed(cli, &mut std::io::stdout(), &mut std::io::stderr(), color)
    }))
    .unwrap_or(2);
    ExitCode::from(code)
}
