//! (2c) Revocation on MySQL (`engine: mysql`), on a throwaway MariaDB 10.11 server (test-support's
//! `MysqlFixture`). Each run makes two identical sets of temporary users through the provisioner, dealt out in
//! turn from one list, some with an open session. The shared revocation routine (`Revocation::revoke_access`,
//! which calls the MySQL engine's `drop_temp_user`) revokes one set, grant after grant, on a warm admin
//! connection: the SQL part. The `mariadb` command-line client runs the same statements for the other set in one
//! session: the floor. The order turns from run to run. The server's general log, which the fixture keeps, says
//! how many commands each side sent.

use crate::setup::Granted;
use crate::stats::{median, ms, percentile, verdict};
use anyhow::{bail, ensure, Context, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use grant_adapters::GrantStore;
use grant_model::mysql::{self as sql, Flavor};
use grant_model::naming;
use grant_model::sql::Statement;
use provisioner::App;
use reaper::Reaper;
use serde_json::json;
use std::any::Any;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::fixture::{ADMIN_PASSWORD, ADMIN_USER};
use test_support::mysql_fixture::{MysqlFixture, MYSQL_DB};

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Temporary users the Revoker revokes in each run; as many again are revoked by the mariadb client.
    #[arg(long, default_value_t = 300)]
    pub mysql_users: usize,
    /// How many users of each set have an open session when revoked.
    #[arg(long, default_value_t = 30)]
    pub mysql_sessions: usize,
    /// The command-line client for the floor.
    #[arg(long, default_value = "mariadb")]
    pub mariadb_client: PathBuf,
}

const TARGET_RATIO: f64 = 1.5;
/// The user prefix of the fixture's config.
const PREFIX: &str = "jit_";
/// Grants made at once while setting up (as `setup::Bench`).
const SETUP_CONCURRENCY: usize = 8;
/// The pause before each turn.
const SETTLE: Duration = Duration::from_secs(3);
/// Users of each set in the warm-up run.
const WARM_UP_USERS: usize = 20;
/// Connections besides the open sessions: both admin connections, the client, the checks.
const SPARE_CONNECTIONS: usize = 50;

#[derive(Default)]
struct Run {
    revoker_ms: f64,
    floor_ms: f64,
    /// Each revocation by the Revoker, users without a session and users with one.
    plain_ms: Vec<f64>,
    session_ms: Vec<f64>,
    /// Commands the server logged during each turn, by kind.
    revoker_commands: BTreeMap<String, usize>,
    floor_commands: BTreeMap<String, usize>,
    /// Prepared statements the Revoker's turn left open on the server (`Prepared_stmt_count` after - before).
    left_prepared: i64,
}

pub async fn run(options: &Options, runs: usize) -> Result<()> {
    let (users, sessions) = (options.mysql_users, options.mysql_sessions.min(options.mysql_users));
    println!(
        "\n## revocation on MySQL (MariaDB): {users} temporary users ({sessions} with an open session) per set, \
         {runs} runs"
    );
    let fixture = MysqlFixture::new().await;
    let version = fixture.root_value("SELECT VERSION()");
    fixture.db.root(&format!("SET GLOBAL max_connections = {}", (2 * sessions + SPARE_CONNECTIONS).max(151)));
    let provisioner = App::new(&fixture.sdk, fixture.settings.clone());
    let reaper = Reaper::new(&fixture.sdk, fixture.settings.clone());
    let store = GrantStore::new(&fixture.sdk, &fixture.table);
    let config = reaper.source.config().await?;
    let revoker = reaper.revocation();
    // As in a warm Lambda container: config cached, admin connection open.
    revoker.engine(&config, MYSQL_DB)?.temp_users(PREFIX).await?;
    println!("server: {version}; floor client: {}", options.mariadb_client.display());

    let mut results = Vec::new();
    // Run 0 warms up, untimed and unreported, as a warm Lambda container would be: the server's caches (the
    // catalogs, information_schema's table definitions) and the admin connection's prepared statements.
    for n in 0..=runs {
        let (users, sessions) = if n == 0 { (users.min(WARM_UP_USERS), sessions.min(2)) } else { (users, sessions) };
        // One list, dealt out in turn: the two sets are made the same way, side by side in the catalogs.
        let made: Vec<Granted> = stream::iter(0..2 * users)
            .map(|i| grant(&provisioner, format!("my{n}-{i}@example.com")))
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await?;
        let (mut direct, mut floor) = (Vec::new(), Vec::new());
        for (i, granted) in made.into_iter().enumerate() {
            [&mut direct, &mut floor][i % 2].push(granted);
        }
        let (direct_sessions, _) = open_sessions(&fixture, &direct[..sessions]).await?;
        let (floor_sessions, floor_ids) = open_sessions(&fixture, &floor[..sessions]).await?;
        let direct_grants: Vec<grant_model::Grant> = stream::iter(&direct)
            .map(|g| async { store.get(&g.grant_id).await?.context("a grant's row is missing") })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await?;
        let names: Vec<&str> = floor.iter().map(|g| g.user.as_str()).collect();
        let mut script = tempfile::NamedTempFile::new()?;
        script.write_all(revocation_script(&names, &floor_ids, MYSQL_DB).as_bytes())?;

        let mut run = Run::default();
        for turn in (0..2).map(|t| Turn::ALL[(t + n - 1) % 2]) {
            // Whoever goes first finds the machine still busy with the set-up (the server, moto): a pause before
            // each turn. With 1 s, the Revoker measured 1.3x to 3.0x the floor in 6 of the 9 runs it went first.
            tokio::time::sleep(SETTLE).await;
            let prepared_before = prepared_statements(&fixture)?;
            let log_from = fixture.db.general_log().len();
            match turn {
                Turn::Revoker => {
                    let started = Instant::now();
                    for (i, grant) in direct_grants.iter().enumerate() {
                        let one = Instant::now();
                        revoker.revoke_access(&config, grant).await?;
                        let took = ms(one.elapsed());
                        if i < sessions {
                            run.session_ms.push(took)
                        } else {
                            run.plain_ms.push(took)
                        }
                    }
                    run.revoker_ms = ms(started.elapsed());
                    run.revoker_commands = commands(&fixture.db.general_log()[log_from..]);
                    run.left_prepared = prepared_statements(&fixture)? - prepared_before;
                }
                Turn::Client => {
                    let took =
                        tokio::task::block_in_place(|| run_client(&options.mariadb_client, &fixture, script.path()))?;
                    run.floor_ms = ms(took);
                    run.floor_commands = commands(&fixture.db.general_log()[log_from..]);
                }
            }
        }
        check_gone(&fixture, &direct).await?;
        check_gone(&fixture, &floor).await?;
        // Their rows stay `active` in the table (the access went behind its back): no reaper reads it here.
        drop((direct_sessions, floor_sessions));
        if n == 0 {
            continue;
        }

        println!(
            "run {n} ({} first): Revoker {users} revocations in {:.0} ms ({:.2} ms a user: {:.2} without a session, \
             {:.2} with one, medians); mariadb client floor {:.0} ms ({:.2} ms a user); Revoker / floor = {:.2}x; \
             server commands a user: Revoker {:.1} [{}], floor {:.1} [{}]; prepared statements left open on the \
             server by the Revoker: {}",
            Turn::ALL[(n - 1) % 2].name(),
            run.revoker_ms,
            run.revoker_ms / users as f64,
            median(&run.plain_ms),
            median(&run.session_ms),
            run.floor_ms,
            run.floor_ms / users as f64,
            run.revoker_ms / run.floor_ms,
            total(&run.revoker_commands) as f64 / users as f64,
            shown(&run.revoker_commands),
            total(&run.floor_commands) as f64 / users as f64,
            shown(&run.floor_commands),
            run.left_prepared,
        );
        results.push(run);
    }
    report(users, sessions, &results);
    Ok(())
}

#[derive(Clone, Copy)]
enum Turn {
    Revoker,
    Client,
}

impl Turn {
    const ALL: [Turn; 2] = [Turn::Revoker, Turn::Client];

    fn name(self) -> &'static str {
        match self {
            Turn::Revoker => "Revoker",
            Turn::Client => "mariadb client",
        }
    }
}

async fn grant(provisioner: &App, requester: String) -> Result<Granted> {
    let request = json!({"action": "grant", "requester": requester, "database": MYSQL_DB, "target": "readonly",
                         "reason": "INC-4521 benchmark"});
    Granted::from_response(&provisioner.handle(request).await?)
}

/// An open, idle session as each of `grants`' users, what revocation must end; and the sessions' ids. The
/// sessions are mysql_async connections, held without naming their type (no dependency of our own on it).
async fn open_sessions(fixture: &MysqlFixture, grants: &[Granted]) -> Result<(Vec<Box<dyn Any + Send>>, Vec<u32>)> {
    let conns: Vec<_> = stream::iter(grants)
        .map(|g| fixture.connect(&g.user, &g.password, false))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
        .context("log in as a temporary user")?;
    let ids = conns.iter().map(|conn| conn.id()).collect();
    Ok((conns.into_iter().map(|conn| Box::new(conn) as Box<dyn Any + Send>).collect(), ids))
}

/// For each user, exactly the statements `drop_temp_user` sends for a user of ours with no stored objects
/// (grant-model's `mysql` functions, `?` rendered as quoted literals), in its order. A user with a session gets
/// the KILL of that session (its id known from the login) and the second look at the process list that confirms
/// it is gone; the engine's 5 ms pause between the two is not in the floor.
pub fn revocation_script(users: &[&str], session_ids: &[u32], dbname: &str) -> String {
    let mut script = String::new();
    let (schema, retired) = (naming::expiry_schema(PREFIX), naming::retired_role(PREFIX));
    for (i, user) in users.iter().enumerate() {
        let mut statements = vec![
            sql::user_exists(user),
            sql::memberships(Flavor::Mariadb, user),
            sql::lock_account(user),
            sql::drop_expiry(&schema, user),
            sql::sessions(user),
        ];
        if let Some(id) = session_ids.get(i) {
            statements.push(sql::kill(u64::from(*id)));
            statements.push(sql::sessions(user));
        }
        statements.extend([
            sql::create_retired(&retired),
            sql::definer_objects(user),
            Statement { sql: format!("USE {}", sql::quote_ident(dbname)), params: Vec::new() },
            sql::drop_user(user),
        ]);
        for statement in statements {
            script.push_str(&render(&statement));
            script.push_str(";\n");
        }
    }
    script
}

/// The statement with each `?` replaced by its parameter as a quoted literal (none of these statements has a `?`
/// inside a literal).
fn render(statement: &Statement) -> String {
    let mut params = statement.params.iter();
    let mut out = String::with_capacity(statement.sql.len());
    for c in statement.sql.chars() {
        match c {
            '?' => out.push_str(&sql::quote_string(params.next().expect("a parameter for each ?"))),
            c => out.push(c),
        }
    }
    out
}

/// Runs `script` as the admin the Lambdas use, over TCP, in one session; returns the wall time, connection and
/// client start-up included.
fn run_client(client: &Path, fixture: &MysqlFixture, script: &Path) -> Result<Duration> {
    let input = std::fs::File::open(script).context("open the floor's script")?;
    let started = Instant::now();
    let output = Command::new(client)
        .args(["--no-defaults", "--batch", "--skip-column-names", "--protocol=TCP", "-h", fixture.db.host(), "-P"])
        .arg(fixture.db.port().to_string())
        .args(["-u", ADMIN_USER, MYSQL_DB])
        .env("MYSQL_PWD", ADMIN_PASSWORD)
        .stdin(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("run {}", client.display()))?;
    let took = started.elapsed();
    if !output.status.success() {
        bail!("the mariadb client failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    Ok(took)
}

/// Commands in a stretch of the general log, by kind (`Query`, `Prepare`, `Execute`, ...). A line is
/// `<time or nothing>\t[\t]<thread id> <command>\t<argument>`; continuation lines of a statement have no tab.
fn commands(log: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let Some(head) = fields.iter().skip(1).take(2).map(|f| f.trim()).find(|f| !f.is_empty()) else { continue };
        let Some((id, command)) = head.split_once(' ') else { continue };
        if id.parse::<u64>().is_ok() {
            *counts.entry(command.trim().to_string()).or_default() += 1;
        }
    }
    counts
}

/// Prepared statements open on the server, all sessions together (it refuses new ones beyond
/// `max_prepared_stmt_count`, 16382 by default).
fn prepared_statements(fixture: &MysqlFixture) -> Result<i64> {
    let count = fixture.root_value(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'",
    );
    count.trim().parse().with_context(|| format!("Prepared_stmt_count: {count:?}"))
}

fn total(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().sum()
}

fn shown(counts: &BTreeMap<String, usize>) -> String {
    counts.iter().map(|(command, n)| format!("{command} {n}")).collect::<Vec<_>>().join(", ")
}

/// No user of `set` is left, nor a session of theirs, nor an expiry event.
async fn check_gone(fixture: &MysqlFixture, set: &[Granted]) -> Result<()> {
    let list = set.iter().map(|g| sql::quote_string(&g.user)).collect::<Vec<_>>().join(", ");
    let events = set.iter().map(|g| sql::quote_string(&naming::expiry_event(&g.user))).collect::<Vec<_>>();
    let left = |query: String| fixture.root_value(&query);
    ensure!(left(format!("SELECT COUNT(*) FROM mysql.user WHERE User IN ({list})")) == "0", "users left");
    ensure!(
        left(format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER IN ({list})")) == "0",
        "sessions left after revocation"
    );
    ensure!(
        left(format!("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_NAME IN ({})", events.join(", ")))
            == "0",
        "expiry events left"
    );
    Ok(())
}

fn report(users: usize, sessions: usize, results: &[Run]) {
    let med = |f: &dyn Fn(&Run) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
    let ratio = med(&|r| r.revoker_ms / r.floor_ms);
    let all_plain: Vec<f64> = results.iter().flat_map(|r| r.plain_ms.iter().copied()).collect();
    let all_session: Vec<f64> = results.iter().flat_map(|r| r.session_ms.iter().copied()).collect();
    println!(
        "\n| revocation on MySQL (MariaDB), {users} users, {sessions} with a session (median of {} runs) | value |",
        results.len()
    );
    println!("|---|---|");
    println!(
        "| SQL part: the Revoker alone | {:.0} ms = {:.2} ms a user |",
        med(&|r| r.revoker_ms),
        med(&|r| r.revoker_ms / users as f64)
    );
    println!(
        "| floor: the same SQL by the mariadb client, one session | {:.0} ms = {:.2} ms a user |",
        med(&|r| r.floor_ms),
        med(&|r| r.floor_ms / users as f64)
    );
    println!(
        "| one revocation by the Revoker, no session (all runs) | p50 {:.2} ms, p99 {:.2} ms |",
        percentile(&all_plain, 50.0),
        percentile(&all_plain, 99.0)
    );
    println!(
        "| one revocation by the Revoker, one session (all runs) | p50 {:.2} ms, p99 {:.2} ms |",
        percentile(&all_session, 50.0),
        percentile(&all_session, 99.0)
    );
    println!(
        "| server commands a user, Revoker / floor | {:.1} / {:.1} |",
        med(&|r| total(&r.revoker_commands) as f64 / users as f64),
        med(&|r| total(&r.floor_commands) as f64 / users as f64)
    );
    println!(
        "| prepared statements left open on the server by the Revoker's turn | {:.0} |",
        med(&|r| r.left_prepared as f64)
    );
    let per_run: Vec<String> = results.iter().map(|r| format!("{:.2}x", r.revoker_ms / r.floor_ms)).collect();
    println!("| Revoker / floor, measured side by side | {ratio:.2}x (per run {}) |", per_run.join(", "));
    println!(
        "target SQL part (the Revoker alone) <= {TARGET_RATIO}x the floor: {} ({ratio:.2}x)",
        verdict(ratio <= TARGET_RATIO)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_the_engines_statements_with_literals() {
        let script = revocation_script(&["jit_a'b", "jit_c"], &[42], "shop");
        assert!(
            script.starts_with("SELECT User FROM mysql.user WHERE User = 'jit_a''b' AND Host = '%';\n"),
            "{script}"
        );
        assert!(script.contains("ALTER USER `jit_a'b`@'%' ACCOUNT LOCK;\n"), "{script}");
        assert!(script.contains("KILL CONNECTION 42;\n"), "{script}");
        assert_eq!(script.matches("KILL").count(), 1, "{script}");
        assert!(script.contains("WHERE DEFINER = 'jit_c@%'"), "{script}");
        assert!(script.ends_with("USE `shop`;\nDROP USER IF EXISTS `jit_c`@'%';\n"), "{script}");
    }

    #[test]
    fn commands_are_counted_from_the_general_log() {
        let log =
            "261201 14:00:00\t     5 Query\tSELECT 1\n\t\t     5 Prepare\tSELECT ?\n\t\t     5 Execute\tSELECT 1\n\
                   continued line\n\t\t     5 Close stmt\t\n\t\t     5 Query\tDROP USER x\n";
        let counts = commands(log);
        assert_eq!(shown(&counts), "Close stmt 1, Execute 1, Prepare 1, Query 2");
    }
}
