//! The `spacetime` binary.

use std::process::ExitCode;

use clap::Parser;
use spacetime_actors::cli::{Cli, run};
use spacetime_actors::config::LogFormat;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr, so stdout carries only command output and status lines.
    let level = std::env::var("SPACETIME_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level);
    match cli.log_format() {
        LogFormat::Json => logs.json().init(),
        LogFormat::Plain => logs.init(),
    }
    let stdout = std::io::stdout();
    match run(cli, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
