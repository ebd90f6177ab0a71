//! (2) Revocation throughput. Each run makes two identical sets of temporary users through the provisioner,
//! interleaved, some with a live session. The reaper revokes one set (its grants expired in the table); `psql`
//! runs the same SQL for the other set in one session: the floor. The two go in alternating order from run to
//! run. The pass's DynamoDB part is measured by an SDK interceptor and reported separately; the rest of the pass
//! (its SQL and our own code) is what is compared with the floor.

use crate::dynamo_time::DynamoTime;
use crate::psql;
use crate::setup::{allow_connections, Bench, Granted};
use crate::stats::{median, ms, verdict};
use anyhow::{ensure, Context, Result};
use grant_adapters::GrantStore;
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

struct Run {
    pass_ms: f64,
    dynamo_ms: f64,
    dynamo_calls: u64,
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
    allow_connections(&mut fixture, (2 * sessions + SPARE_CONNECTIONS).max(100)).await?;
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

    let mut results = Vec::new();
    for n in 1..=runs {
        // One list, split alternately: the two sets are made the same way, side by side in the catalogs.
        let (mut reaped, mut floor) = (Vec::new(), Vec::new());
        for (i, granted) in bench.grant_many(&format!("rev{n}"), 2 * users).await?.into_iter().enumerate() {
            if i % 2 == 0 {
                reaped.push(granted)
            } else {
                floor.push(granted)
            }
        }
        bench.expire(&reaped).await?;
        let mut live = bench.open_sessions(&reaped[..sessions]).await?;
        live.extend(bench.open_sessions(&floor[..sessions]).await?);
        let mut script = tempfile::NamedTempFile::new()?;
        let names: Vec<&str> = floor.iter().map(|g| g.user.as_str()).collect();
        script.write_all(psql::revocation_script(&names).as_bytes())?;

        let reaper_first = n % 2 == 1;
        let mut run = Run { pass_ms: 0.0, dynamo_ms: 0.0, dynamo_calls: 0, floor_ms: 0.0 };
        for reaper_turn in [reaper_first, !reaper_first] {
            if reaper_turn {
                meter.take();
                let started = Instant::now();
                let summary = reaper.run_pass(Instant::now() + PASS_DEADLINE).await?;
                run.pass_ms = ms(started.elapsed());
                let (dynamo, calls) = meter.take();
                (run.dynamo_ms, run.dynamo_calls) = (ms(dynamo), calls);
                ensure!(summary.revoked == users && summary.failed + summary.deferred == 0, "pass: {summary:?}");
            } else {
                let took = tokio::task::block_in_place(|| psql::run(&psql, &bench.pg, script.path()))?;
                run.floor_ms = ms(took);
            }
        }
        check_gone(&bench, &reaped, &floor).await?;
        // The floor's access went behind the table's back: its rows must not pile up as live grants.
        bench.delete_rows(&floor).await?;
        drop(live);

        println!(
            "run {n} ({} first): reaper pass {users} revocations in {:.0} ms = {:.0}/s; DynamoDB part {:.0} ms \
             ({} calls); SQL and the rest {:.0} ms; psql floor {:.0} ms; SQL / floor = {:.2}x",
            if reaper_first { "reaper" } else { "psql" },
            run.pass_ms,
            per_second(users, run.pass_ms),
            run.dynamo_ms,
            run.dynamo_calls,
            run.sql_ms(),
            run.floor_ms,
            run.sql_ms() / run.floor_ms
        );
        results.push(run);
    }
    report(users, sessions, &results);
    Ok(())
}

/// Every user of both sets is gone, and so is every session they had.
async fn check_gone(bench: &Bench, reaped: &[Granted], floor: &[Granted]) -> Result<()> {
    for set in [reaped, floor] {
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
    let ratio = med(&|r| r.sql_ms() / r.floor_ms);
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
        "| SQL part (pass minus DynamoDB) | {:.0} ms = {:.0} revocations/s |",
        med(&|r| r.sql_ms()),
        med(&|r| { per_second(users, r.sql_ms()) })
    );
    println!(
        "| floor: the same SQL by psql, one session | {:.0} ms = {:.0} revocations/s |",
        med(&|r| r.floor_ms),
        med(&|r| per_second(users, r.floor_ms))
    );
    println!("| SQL part / floor, measured side by side | {ratio:.2}x |");
    println!("target SQL part <= {TARGET_RATIO}x the floor: {} ({ratio:.2}x)", verdict(ratio <= TARGET_RATIO));
}
