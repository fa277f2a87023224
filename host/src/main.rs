//! The `partita` binary: parses arguments, sets up logging, and hands over to the library.

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
    let cli = partita_host::Cli::parse();
    init_tracing(cli.verbose);
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let code = partita_host::run_parsed(cli, &mut std::io::stdout(), &mut std::io::stderr(), color);
    ExitCode::from(code)
}
