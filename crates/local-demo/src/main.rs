//! `local-demo`: the main job end to end on one machine. A throwaway PostgreSQL cluster, moto as the AWS
//! endpoint and the real `provisioner` and `reaper` binaries behind Lambda Runtime API doubles: grant, log in
//! with psql, describe, revoke; grant again, let it expire, reap; and check that the access is gone each time.
//! Needs what `scripts/setup.sh` installs.
//!
//! The steps are in `steps.rs`; everything they start is dropped (stopped, removed) when `steps::run`
//! returns, whether it succeeded or not.

mod aws;
mod database;
mod lambda;
mod mysql_database;
mod mysql_steps;
mod options;
mod progress;
mod steps;

use std::process::ExitCode;
use std::time::Instant;

#[tokio::main]
async fn main() -> ExitCode {
    let options = <options::Options as clap::Parser>::parse();
    let started = Instant::now();
    let result = steps::run(&options).await;
    // Everything `run` started is stopped by now; this removes the last files.
    test_support::remove_template();
    match result {
        Ok(steps) => {
            println!(
                "\nAll {steps} steps passed in {:.1} s. Cleaned up: the Lambda processes and the database \
                 server are stopped and their files removed; moto exits with local-demo.",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("\nlocal-demo FAILED after {:.1} s: {error:#}", started.elapsed().as_secs_f64());
            ExitCode::FAILURE
        }
    }
}
