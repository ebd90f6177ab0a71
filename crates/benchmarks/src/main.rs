//! `bench`: the project's benchmarks. Each one prints what it measured, run by run, then a table of medians over
//! `--runs` and whether each target was met. Floors are measured in the same run, side by side (interleaved or
//! alternating), because the machines are shared and noisy. Needs what `scripts/setup.sh` installs; run a
//! release build (`scripts/bench.sh` does). The method is in docs/benchmarks.md.

mod dashboard;
mod dynamo_time;
mod footprint;
mod mysql_revocation;
mod provisioner_latency;
mod psql;
mod reader_revocation;
mod reaper_reads;
mod revocation;
mod setup;
mod stats;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks: reaper read cost, revocation vs the SQL floor, provisioner latency, Lambda footprint")]
struct Cli {
    /// Runs of each benchmark; the tables report medians.
    #[arg(long, global = true, default_value_t = 5)]
    runs: usize,
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Subcommand, Debug)]
enum Benchmark {
    /// (1) Items read by a reaper pass vs a Scan-based pass, over a table with a long history.
    ReaperReads(reaper_reads::Options),
    /// (2) Revocations per second, and their SQL part vs the same SQL run by psql.
    Revocation(revocation::Options),
    /// (2b) Revocation with one reader instance: the per-reader cost, and the SQL part vs psql on both instances.
    RevocationReader(reader_revocation::Options),
    /// (2c) Revocation on MySQL (a MariaDB server): the SQL part vs the same statements by the mariadb client.
    RevocationMysql(mysql_revocation::Options),
    /// (3) Provisioner warm latency vs one CREATE ROLE transaction plus the same DynamoDB writes.
    ProvisionerLatency(provisioner_latency::Options),
    /// (4) Binary size, spawn to first response, peak RSS of both Lambdas.
    Footprint(footprint::Options),
    /// (5) The dashboard's live page over a long history: latency, Queries and items read (not part of `all`).
    Dashboard(dashboard::Options),
    /// All but the dashboard's, fastest first.
    All {
        #[command(flatten)]
        footprint: footprint::Options,
        #[command(flatten)]
        provisioner: provisioner_latency::Options,
        #[command(flatten)]
        revocation: revocation::Options,
        #[command(flatten)]
        reader: reader_revocation::Options,
        #[command(flatten)]
        mysql: mysql_revocation::Options,
        #[command(flatten)]
        reaper_reads: reaper_reads::Options,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = Instant::now();
    let runs = cli.runs.max(1);
    let result = match &cli.benchmark {
        Benchmark::ReaperReads(options) => reaper_reads::run(options, runs).await,
        Benchmark::Revocation(options) => revocation::run(options, runs).await,
        Benchmark::RevocationReader(options) => reader_revocation::run(options, runs).await,
        Benchmark::RevocationMysql(options) => mysql_revocation::run(options, runs).await,
        Benchmark::ProvisionerLatency(options) => provisioner_latency::run(options, runs).await,
        Benchmark::Footprint(options) => footprint::run(options, runs).await,
        Benchmark::Dashboard(options) => dashboard::run(options, runs).await,
        Benchmark::All { footprint, provisioner, revocation, reader, mysql, reaper_reads } => {
            async {
                footprint::run(footprint, runs).await?;
                provisioner_latency::run(provisioner, runs).await?;
                revocation::run(revocation, runs).await?;
                reader_revocation::run(reader, runs).await?;
                mysql_revocation::run(mysql, runs).await?;
                reaper_reads::run(reaper_reads, runs).await
            }
            .await
        }
    };
    // Every cluster is dropped by now; this removes the initdb template. moto exits with this process.
    test_support::remove_template();
    match result {
        Ok(()) => {
            println!("\nbench: done in {:.0} s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("\nbench FAILED after {:.0} s: {error:#}", started.elapsed().as_secs_f64());
            ExitCode::FAILURE
        }
    }
}
