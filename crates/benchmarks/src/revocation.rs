//! (2) Revocation throughput. Each run makes three identical sets of temporary users through the provisioner,
//! dealt out in turn from one list, some with a live session. The reaper revokes one set in a pass (its grants
//! expired in the table); the shared revocation routine (`Revoker`) is called directly for the second, grant
//! after grant, which is the pass's SQL part without DynamoDB; `psql` runs the same SQL for the third in one
//! session: the floor. The order turns from run to run. The pass's DynamoDB part is measured by an SDK
//! interceptor and reported separately.

use crate::dynamo_time::DynamoTime;
use crate::psql;
use crate::setup::{allow_connections, Bench, Granted};
use crate::stats::{median, ms, verdict};
use anyhow::{ensure, Context, Result};
use grant_adapters::{GrantStore, Revocation};
use reaper::Reaper;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use test_support::fixture::Fixture;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Expired temporary users the reaper revokes in each run; as many again are revoked by psql for the floor.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// How many users of each set have a live session when revoked.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// The psql binary for the floor [default: the newest /usr/lib/postgresql/*/bin/psql].
    #[arg(long)]
    pub psql: Option<PathBuf>,
}

const TARGET_RATIO: f64 = 1.5;
const PASS_DEADLINE: Duration = Duration::from_secs(900);
/// Connections besides the live sessions: the Lambdas' admin connections, psql, the checks.
const SPARE_CONNECTIONS: usize = 50;

#[derive(Default)]
struct Run {
    pass_ms: f64,
    dynamo_ms: f64,
    dynamo_calls: u64,
    /// The shared revocation routine called directly, grant after grant: SQL only, no DynamoDB.
    revoker_ms: f64,
    floor_ms: f64,
}

impl Run {
    /// The pass without its DynamoDB part: the SQL, and our own code around it.
    fn sql_ms(&self) -> f64 {
        self.pass_ms - self.dynamo_ms
    }
}

pub async fn run(options: &Options, runs: usize) -> Result<()> {
    let (users, sessions) = (options.users, options.sessions.min(options.users));
    println!("\n## revocation: {users} expired temporary users ({sessions} with a live session) per run, {runs} runs");
    let mut fixture = Fixture::new().await;
    allow_connections(&mut fixture, (3 * sessions + SPARE_CONNECTIONS).max(100)).await?;
    let bench = Bench::on(fixture);
    let psql = psql::find(options.psql.clone())?;
    let meter = DynamoTime::default();
    let reaper = Reaper::with_store(
        GrantStore::from_client(meter.client(&bench.sdk), &bench.table),
        &bench.sdk,
        bench.settings.clone(),
    );
    // As in a warm Lambda container: config cached, admin connection open.
    reaper.run_pass(Instant::now() + PASS_DEADLINE).await?;

    let config = reaper.source.config().await?;
    let revoker = Revocation {
        store: &*reaper.store,
        connections: &reaper.connections,
        source: &reaper.source,
        delivery: &reaper.delivery,
        retention: reaper.settings.retention,
        holder: "bench",
    };

    let mut results = Vec::new();
    for n in 1..=runs {
        // One list, dealt out in turn: the three sets are made the same way, side by side in the catalogs.
        let mut sets: [Vec<Granted>; 3] = Default::default();
        for (i, granted) in bench.grant_many(&format!("rev{n}"), 3 * users).await?.into_iter().enumerate() {
            sets[i % 3].push(granted);
        }
        let [reaped, direct, floor] = &sets;
        bench.expire(reaped).await?;
        let mut live = Vec::new();
        for set in &sets {
            live.extend(bench.open_sessions(&set[..sessions]).await?);
        }
        let direct_grants = bench.grants(direct).await?;
        let mut script = tempfile::NamedTempFile::new()?;
        let names: Vec<&str> = floor.iter().map(|g| g.user.as_str()).collect();
        script.write_all(psql::revocation_script(&names).as_bytes())?;

        // Whoever goes first finds PostgreSQL and moto still busy with the set-up: the order turns every run,
        // and each turn starts after a checkpoint and a pause.
        let mut run = Run::default();
        for turn in (0..3).map(|t| Turn::ALL[(t + n - 1) % 3]) {
            bench.settle().await?;
            match turn {
                Turn::Pass => {
                    meter.take();
                    let started = Instant::now();
                    let summary = reaper.run_pass(Instant::now() + PASS_DEADLINE).await?;
                    run.pass_ms = ms(started.elapsed());
                    let (dynamo, calls) = meter.take();
                    (run.dynamo_ms, run.dynamo_calls) = (ms(dynamo), calls);
                    ensure!(summary.revoked == users && summary.failed + summary.deferred == 0, "pass: {summary:?}");
                }
                Turn::Revoker => {
                    let started = Instant::now();
                    for grant in &direct_grants {
                        revoker.revoke_access(&config, grant).await?;
                    }
                    run.revoker_ms = ms(started.elapsed());
                }
                Turn::Psql => {
                    let took = tokio::task::block_in_place(|| psql::run(&psql, &bench.pg, script.path()))?;
                    run.floor_ms = ms(took);
                }
            }
        }
        check_gone(&bench, &sets).await?;
        // The direct and floor sets' access went behind the table's back: their rows must not pile up as live.
        bench.delete_rows(direct).await?;
        bench.delete_rows(floor).await?;
        drop(live);

        println!(
            "run {n} ({} first): reaper pass {users} revocations in {:.0} ms = {:.0}/s; DynamoDB part {:.0} ms \
             ({} calls); pass minus DynamoDB {:.0} ms; Revoker alone {:.0} ms; psql floor {:.0} ms; \
             Revoker / floor = {:.2}x; pass minus DynamoDB / floor = {:.2}x",
            Turn::ALL[(n - 1) % 3].name(),
            run.pass_ms,
            per_second(users, run.pass_ms),
            run.dynamo_ms,
            run.dynamo_calls,
            run.sql_ms(),
            run.revoker_ms,
            run.floor_ms,
            run.revoker_ms / run.floor_ms,
            run.sql_ms() / run.floor_ms
        );
        results.push(run);
    }
    report(users, sessions, &results);
    Ok(())
}

#[derive(Clone, Copy)]
enum Turn {
    Pass,
    Revoker,
    Psql,
}

impl Turn {
    const ALL: [Turn; 3] = [Turn::Pass, Turn::Revoker, Turn::Psql];

    fn name(self) -> &'static str {
        match self {
            Turn::Pass => "reaper pass",
            Turn::Revoker => "Revoker",
            Turn::Psql => "psql",
        }
    }
}

/// Every user of every set is gone, and so is every session they had.
async fn check_gone(bench: &Bench, sets: &[Vec<Granted>]) -> Result<()> {
    for set in sets {
        ensure!(bench.existing_users(set).await? == 0, "users left after revocation");
        let names: Vec<&str> = set.iter().map(|g| g.user.as_str()).collect();
        let row = bench
            .orders()
            .await
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)", &[&names])
            .await
            .context("count sessions")?;
        ensure!(row.get::<_, i64>(0) == 0, "sessions left after revocation");
    }
    Ok(())
}

fn per_second(count: usize, ms: f64) -> f64 {
    count as f64 / (ms / 1000.0)
}

fn report(users: usize, sessions: usize, results: &[Run]) {
    let med = |f: &dyn Fn(&Run) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
    let ratio = med(&|r| r.revoker_ms / r.floor_ms);
    println!("\n| revocation, {users} users, {sessions} with a session (median of {} runs) | value |", results.len());
    println!("|---|---|");
    println!(
        "| reaper pass, end to end | {:.0} ms = {:.0} revocations/s |",
        med(&|r| r.pass_ms),
        med(&|r| { per_second(users, r.pass_ms) })
    );
    println!(
        "| DynamoDB part (moto) | {:.0} ms in {:.0} calls |",
        med(&|r| r.dynamo_ms),
        med(&|r| r.dynamo_calls as f64)
    );
    println!(
        "| pass minus DynamoDB (SQL and the reaper's own code) | {:.0} ms = {:.0} revocations/s |",
        med(&|r| r.sql_ms()),
        med(&|r| { per_second(users, r.sql_ms()) })
    );
    println!(
        "| floor: the same SQL by psql, one session | {:.0} ms = {:.0} revocations/s |",
        med(&|r| r.floor_ms),
        med(&|r| per_second(users, r.floor_ms))
    );
    println!(
        "| SQL part, the Revoker alone (no DynamoDB) | {:.0} ms = {:.0} revocations/s |",
        med(&|r| r.revoker_ms),
        med(&|r| per_second(users, r.revoker_ms))
    );
    println!("| Revoker alone / floor, measured side by side | {ratio:.2}x |");
    println!("| pass minus DynamoDB / floor, measured side by side | {:.2}x |", med(&|r| r.sql_ms() / r.floor_ms));
    println!(
        "target SQL part (the Revoker alone) <= {TARGET_RATIO}x the floor: {} ({ratio:.2}x)",
        verdict(ratio <= TARGET_RATIO)
    );
}
