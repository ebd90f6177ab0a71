//! (2b) Revocation with one reader instance (a hot standby, the local stand-in for an Aurora reader). Each run
//! makes three identical sets of temporary users, some with a live session on the writer and on the reader. The
//! shared revocation routine revokes one set with a config that names no reader, and one with the reader; `psql`
//! runs the same statements for the third, on the writer in one session and then on the reader in another: the
//! floor. The per-reader cost is the difference between the two Revoker turns, measured side by side.

use crate::psql;
use crate::setup::{allow_connections, Bench, Granted};
use crate::stats::{median, ms, verdict};
use anyhow::{ensure, Context, Result};
use grant_model::{Config, ReaderConfig};
use reaper::Reaper;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use test_support::fixture::{Fixture, DB};
use test_support::PgCluster;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Expired temporary users in each of the three sets.
    #[arg(long, default_value_t = 300)]
    pub reader_users: usize,
    /// How many users of each set have a live session on the writer and one on the reader.
    #[arg(long, default_value_t = 30)]
    pub reader_sessions: usize,
    /// The psql binary for the floor [default: the newest /usr/lib/postgresql/*/bin/psql].
    #[arg(long)]
    pub reader_psql: Option<PathBuf>,
}

const TARGET_RATIO: f64 = 1.5;

#[derive(Default)]
struct Run {
    writer_only_ms: f64,
    with_reader_ms: f64,
    floor_writer_ms: f64,
    floor_reader_ms: f64,
}

impl Run {
    fn floor_ms(&self) -> f64 {
        self.floor_writer_ms + self.floor_reader_ms
    }
}

pub async fn run(options: &Options, runs: usize) -> Result<()> {
    let (users, sessions) = (options.reader_users, options.reader_sessions.min(options.reader_users));
    println!(
        "\n## revocation with one reader: {users} temporary users per set ({sessions} with a session on the writer \
         and on the reader), {runs} runs"
    );
    let mut fixture = Fixture::new().await;
    allow_connections(&mut fixture, (6 * sessions + 50).max(100)).await?;
    let standby = fixture.pg.start_standby();
    let bench = Bench::on(fixture);
    let psql = psql::find(options.reader_psql.clone())?;
    let reaper = Reaper::new(&bench.sdk, bench.settings.clone());
    let writer_only = reaper.source.config().await?;
    let mut with_reader: Config = writer_only.clone();
    let reader = ReaderConfig { host: standby.host().to_string(), port: Some(standby.port()) };
    with_reader.databases.get_mut(DB).context("the fixture's database")?.readers = vec![reader];
    let revoker = reaper.revocation();

    let mut results = Vec::new();
    for n in 1..=runs {
        let mut sets: [Vec<Granted>; 3] = Default::default();
        for (i, granted) in bench.grant_many(&format!("rdr{n}"), 3 * users).await?.into_iter().enumerate() {
            sets[i % 3].push(granted);
        }
        let [plain, read, floor] = &sets;
        let last = &sets.iter().flatten().last().context("no users")?.user;
        replayed(&standby, last).await?;
        let mut live = Vec::new();
        for set in &sets {
            live.extend(bench.open_sessions(&set[..sessions]).await?);
            for granted in &set[..sessions] {
                live.push(standby.connect(&granted.user, &granted.password, DB).await.context("log in on the reader")?);
            }
        }
        let (plain_grants, read_grants) = (bench.grants(plain).await?, bench.grants(read).await?);
        let names: Vec<&str> = floor.iter().map(|g| g.user.as_str()).collect();
        let mut writer_script = tempfile::NamedTempFile::new()?;
        writer_script.write_all(psql::revocation_script(&names).as_bytes())?;
        let mut reader_script = tempfile::NamedTempFile::new()?;
        reader_script.write_all(psql::reader_script(&names).as_bytes())?;

        let mut run = Run::default();
        for turn in 0..3 {
            bench.settle().await?;
            match (turn + n - 1) % 3 {
                0 => {
                    let started = Instant::now();
                    for grant in &plain_grants {
                        revoker.revoke_access(&writer_only, grant).await?;
                    }
                    run.writer_only_ms = ms(started.elapsed());
                }
                1 => {
                    let started = Instant::now();
                    for grant in &read_grants {
                        revoker.revoke_access(&with_reader, grant).await?;
                    }
                    run.with_reader_ms = ms(started.elapsed());
                }
                _ => {
                    let on_writer = tokio::task::block_in_place(|| psql::run(&psql, &bench.pg, writer_script.path()))?;
                    let on_reader = tokio::task::block_in_place(|| psql::run(&psql, &standby, reader_script.path()))?;
                    (run.floor_writer_ms, run.floor_reader_ms) = (ms(on_writer), ms(on_reader));
                }
            }
        }
        // The reader's sessions of the sets revoked with a reader are gone; the writer-only set's are not.
        ensure!(sessions_on(&standby, read).await? == 0, "sessions left on the reader after revocation");
        ensure!(sessions_on(&standby, floor).await? == 0, "sessions left on the reader by the floor");
        for set in &sets {
            ensure!(bench.existing_users(set).await? == 0, "users left after revocation");
            bench.delete_rows(set).await?;
        }
        drop(live);
        println!(
            "run {n}: Revoker writer only {:.0} ms; with one reader {:.0} ms; floor {:.0} ms (writer {:.0} + reader \
             {:.0}); with reader / floor = {:.2}x; per-reader cost {:.2} ms per revocation",
            run.writer_only_ms,
            run.with_reader_ms,
            run.floor_ms(),
            run.floor_writer_ms,
            run.floor_reader_ms,
            run.with_reader_ms / run.floor_ms(),
            (run.with_reader_ms - run.writer_only_ms) / users as f64
        );
        results.push(run);
    }
    report(users, sessions, &results);
    Ok(())
}

/// How many sessions the grants' users have on `instance`.
async fn sessions_on(instance: &PgCluster, grants: &[Granted]) -> Result<i64> {
    let names: Vec<&str> = grants.iter().map(|g| g.user.as_str()).collect();
    let client = instance.superuser(DB).await;
    let row = client.query_one("SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)", &[&names]).await?;
    Ok(row.get(0))
}

/// Waits until the standby has replayed the creation of `user` (the last one made).
async fn replayed(standby: &PgCluster, user: &str) -> Result<()> {
    let client = standby.superuser(DB).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = client.query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&user]).await?;
        if row.get::<_, i64>(0) == 1 {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the standby did not replay the users' creation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn report(users: usize, sessions: usize, results: &[Run]) {
    let med = |f: &dyn Fn(&Run) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
    let ratio = med(&|r| r.with_reader_ms / r.floor_ms());
    println!(
        "\n| revocation with one reader, {users} users, {sessions} with a session on each instance (median of {} runs) \
         | value |",
        results.len()
    );
    println!("|---|---|");
    println!("| Revoker, config without readers | {:.0} ms |", med(&|r| r.writer_only_ms));
    println!("| Revoker, config with one reader | {:.0} ms |", med(&|r| r.with_reader_ms));
    println!(
        "| floor: the same SQL by psql, writer session + reader session | {:.0} ms ({:.0} + {:.0}) |",
        med(&|r| r.floor_ms()),
        med(&|r| r.floor_writer_ms),
        med(&|r| r.floor_reader_ms)
    );
    println!(
        "| per-reader cost (with reader - without, per revocation) | {:.2} ms |",
        med(&|r| (r.with_reader_ms - r.writer_only_ms) / users as f64)
    );
    println!("| reader part of the floor, per revocation | {:.2} ms |", med(&|r| r.floor_reader_ms / users as f64));
    println!("| Revoker with one reader / floor, measured side by side | {ratio:.2}x |");
    println!(
        "target SQL part with one reader <= {TARGET_RATIO}x the floor: {} ({ratio:.2}x)",
        verdict(ratio <= TARGET_RATIO)
    );
}
