//! The `grantctl` binary: parses the command line, runs one command, prints its output or the error.

use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = grantctl::Cli::parse();
    // Diagnostics go to stderr, quiet unless RUST_LOG asks, so stdout stays parseable with --json.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .init();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    match grantctl::run(cli, &sdk).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("grantctl: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
