//! The `spacetime` binary.

use std::process::ExitCode;

use clap::Parser;
use spacetime_actors::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr, so stdout carries only command output and status lines.
    let level = std::env::var("SPACETIME_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .init();
    let stdout = std::io::stdout();
    match run(cli, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
