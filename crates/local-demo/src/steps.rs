//! The demo, one small function per step. `run` lists them in order; to add a step, write a function that
//! returns `Result<Done<T>>` and add a `progress.step(...)` line. Everything a step starts is owned by a
//! local of `run`, so it is stopped and removed when `run` returns, on success or at the first error.

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::path::Path;

use crate::aws::{self, Aws, BUCKET, CONFIG_KEY, TABLE};
use crate::database::{Database, ADMIN_USER, DB, SCRATCH_DB, TARGET_ROLE};
use crate::lambda::{self, Lambda};
use crate::options::{Engine, Options};
use crate::progress::{Done, Progress};

const REQUESTER: &str = "alice@example.com";
const APPROVER: &str = "bob@example.com";
const QUERY: &str = "SELECT current_user, name FROM items";

/// What the demo keeps of an issued grant. The password is only ever printed masked.
pub struct IssuedGrant {
    pub grant_id: String,
    pub db_user: String,
    pub password: String,
    pub expires_at: String,
}

/// Runs every step in order; returns how many ran.
pub async fn run(options: &Options) -> Result<usize> {
    // Before starting anything: a missing binary should not cost a database start-up.
    let provisioner_binary = lambda::locate("provisioner", options.provisioner.as_deref())?;
    let reaper_binary = lambda::locate("reaper", options.reaper.as_deref())?;
    if options.engine == Engine::Mysql {
        return crate::mysql_steps::run(&provisioner_binary, &reaper_binary).await;
    }
    let mut progress = Progress::default();

    let (database, aws) = progress.step("Start PostgreSQL and moto, set up database orders", start_services()).await?;
    progress.step("Create the config bucket, admin credentials and grants table", prepare_aws(&aws, &database)).await?;
    let mut provisioner =
        progress.step("Start the provisioner Lambda", start_lambda(&provisioner_binary, &aws)).await?;
    let first = progress
        .step(
            "Invoke grant: alice@example.com, readonly on orders, 60 s",
            grant(&mut provisioner, DB, REQUESTER, "demo-1"),
        )
        .await?;
    progress.step("Log in with psql as the temporary user", login_works(&database, &first)).await?;
    progress.step("Invoke describe", describe(&mut provisioner, &first)).await?;
    progress.step("Invoke revoke as bob@example.com", revoke(&mut provisioner, &first)).await?;
    progress.step("Log in with psql again after the revoke", login_fails(&database, &first)).await?;
    progress.step("Look for the temporary user in pg_roles", role_gone(&database, &first)).await?;
    progress.step("Read the grant's item from DynamoDB (GetItem)", item_revoked(&aws, &first)).await?;

    // The reaper's part: a grant nobody revokes runs out, PostgreSQL refuses it, the reaper takes it away.
    let mut reaper = progress.step("Start the reaper Lambda", start_lambda(&reaper_binary, &aws)).await?;
    let expiring = progress
        .step(
            "Invoke grant: carol@example.com, readonly on orders, 60 s",
            grant(&mut provisioner, DB, "carol@example.com", "demo-2"),
        )
        .await?;
    progress.step("Log in with psql as the second temporary user", login_works(&database, &expiring)).await?;
    let on_reader = progress
        .step("Open a session on the reader instance as that user, and keep it", reader_session(&database, &expiring))
        .await?;
    progress
        .step(
            &format!("Create a table in database {SCRATCH_DB} as that user"),
            create_scratch_table(&database, &expiring),
        )
        .await?;
    progress.step("Wait for the grant to expire", wait_for_expiry(&expiring)).await?;
    progress
        .step("Log in with psql after expires_at (PostgreSQL's VALID UNTIL)", login_fails(&database, &expiring))
        .await?;
    progress.step("Invoke the reaper with the scheduled event", reap(&mut reaper)).await?;
    progress.step("Look for the expired user in pg_roles", role_gone(&database, &expiring)).await?;
    progress.step("Use the session kept open on the reader", reader_session_ended(&on_reader)).await?;
    progress.step(&format!("Look up the owner of the table in {SCRATCH_DB}"), scratch_table_retired(&database)).await?;
    progress.step("Read the expired grant's item from DynamoDB (GetItem)", item_revoked(&aws, &expiring)).await?;
    Ok(progress.steps())
}

async fn start_services() -> Result<Done<(Database, Aws)>> {
    let aws = Aws::start().await;
    let database = Database::start().await?;
    let summary = format!(
        "PostgreSQL {} on {}:{}, moto at {}",
        database.version,
        database.host(),
        database.port(),
        aws.endpoint()
    );
    Ok(Done::new((database, aws), summary).detail(format!("database {DB}: table items (2 rows)")).detail(format!(
        "roles: {TARGET_ROLE} (SELECT on items), {ADMIN_USER} (LOGIN CREATEROLE, pg_signal_backend, \
             {TARGET_ROLE} WITH ADMIN OPTION)"
    )))
}

async fn prepare_aws(aws: &Aws, database: &Database) -> Result<Done<()>> {
    aws.create_bucket(&Aws::config_document(database)).await?;
    aws.create_table().await?;
    Ok(Done::new((), format!("s3://{BUCKET}/{CONFIG_KEY}, s3://{BUCKET}/{}, table {TABLE}", aws::ADMIN_SECRET_KEY))
        .detail(format!("config: {}", Aws::config_document(database))))
}

pub(crate) async fn start_lambda(binary: &Path, aws: &Aws) -> Result<Done<Lambda>> {
    let mut lambda = Lambda::start(binary, &aws.lambda_env());
    tokio::task::block_in_place(|| lambda.check_started())?;
    let summary = format!("{} (Runtime API {})", binary.display(), lambda.runtime_api());
    Ok(Done::new(lambda, summary))
}

pub(crate) async fn grant(
    provisioner: &mut Lambda,
    database: &str,
    requester: &str,
    request_id: &str,
) -> Result<Done<IssuedGrant>> {
    let response = provisioner.call(json!({
        "action": "grant", "request_id": request_id, "requester": requester, "database": database,
        "target": TARGET_ROLE, "duration_seconds": 60, "reason": "demo: check failed migration",
        "approver": APPROVER
    }))?;
    let grant = &response["grant"];
    let issued = IssuedGrant {
        grant_id: text(grant, "grant_id")?,
        db_user: text(grant, "db_user")?,
        password: text(&response["credentials"], "password")?,
        expires_at: text(grant, "expires_at")?,
    };
    let status = text(grant, "status")?;
    ensure!(status == "active", "the new grant is {status}, not active");
    let expires_at = text(grant, "expires_at")?;
    let summary = format!("{status}: {} until {expires_at}", issued.db_user);
    let details = [
        format!("grant_id   {}", issued.grant_id),
        format!("db_user    {}", issued.db_user),
        format!("expires_at {expires_at}"),
        format!("password   {} (masked)", mask(&issued.password)),
    ];
    Ok(Done::new(issued, summary).details(details))
}

async fn login_works(database: &Database, grant: &IssuedGrant) -> Result<Done<()>> {
    let psql = database.psql(&grant.db_user, &grant.password, QUERY)?;
    if !psql.success {
        bail!("psql as {} failed ({}): {}", grant.db_user, psql.status, psql.stderr.trim());
    }
    let output = psql.stdout.trim_end().lines().map(|line| line.trim_end().to_string());
    Ok(Done::new((), format!("logged in as {}; psql -c \"{QUERY}\":", grant.db_user)).details(output))
}

async fn reader_session(database: &Database, grant: &IssuedGrant) -> Result<Done<tokio_postgres::Client>> {
    let client = database.reader_session(&grant.db_user, &grant.password).await?;
    let row = client.query_one("SELECT pg_is_in_recovery(), count(*) FROM items", &[]).await?;
    let (standby, items): (bool, i64) = (row.get(0), row.get(1));
    ensure!(standby, "the reader is not a standby");
    let summary = format!(
        "logged in on {}:{} (a hot standby); {items} items readable",
        database.reader.host(),
        database.reader.port()
    );
    Ok(Done::new(client, summary))
}

const SCRATCH_TABLE: &str = "notes";

async fn create_scratch_table(database: &Database, grant: &IssuedGrant) -> Result<Done<()>> {
    let client = database.connect(&grant.db_user, &grant.password, SCRATCH_DB).await?;
    client.batch_execute(&format!("CREATE TABLE {SCRATCH_TABLE} (body text)")).await?;
    let owner = database.table_owner(SCRATCH_DB, SCRATCH_TABLE).await?.unwrap_or_default();
    Ok(Done::new((), format!("{SCRATCH_DB}.{SCRATCH_TABLE} created, owned by {owner}")))
}

async fn reader_session_ended(client: &tokio_postgres::Client) -> Result<Done<()>> {
    match client.simple_query("SELECT 1").await {
        Ok(_) => bail!("the session on the reader is still alive"),
        Err(e) => Ok(Done::new((), "ended by the reaper, as expected").detail(e.to_string())),
    }
}

async fn scratch_table_retired(database: &Database) -> Result<Done<()>> {
    let owner = database.table_owner(SCRATCH_DB, SCRATCH_TABLE).await?.context("the table is gone")?;
    ensure!(owner == "jit_retired", "{SCRATCH_DB}.{SCRATCH_TABLE} is owned by {owner}, not jit_retired");
    Ok(Done::new((), format!("{SCRATCH_DB}.{SCRATCH_TABLE} now belongs to {owner} (NOLOGIN, no privileges)")))
}

pub(crate) async fn describe(provisioner: &mut Lambda, grant: &IssuedGrant) -> Result<Done<()>> {
    let response = provisioner.call(json!({"action": "describe", "grant_id": grant.grant_id}))?;
    let status = text(&response["grant"], "status")?;
    let history = response["grant"]["history"].as_array().context("describe returned no history")?;
    let lines = history.iter().map(|entry| {
        format!(
            "{}  -> {:<8} by {:<20} {}",
            entry["at"].as_str().unwrap_or("?"),
            entry["to"].as_str().unwrap_or("?"),
            entry["actor"].as_str().unwrap_or("?"),
            entry["note"].as_str().unwrap_or("")
        )
    });
    Ok(Done::new((), format!("status {status}, {} history entries:", history.len())).details(lines))
}

pub(crate) async fn revoke(provisioner: &mut Lambda, grant: &IssuedGrant) -> Result<Done<()>> {
    let response = provisioner.call(json!({
        "action": "revoke", "grant_id": grant.grant_id, "actor": APPROVER, "reason": "demo finished"
    }))?;
    let status = text(&response["grant"], "status")?;
    ensure!(status == "revoked", "after revoke the grant is {status}");
    let revoked_by = text(&response["grant"], "revoked_by")?;
    Ok(Done::new((), format!("status {status}, revoked_by {revoked_by}")))
}

/// The EventBridge schedule's event, as the tests use it.
const SCHEDULED_EVENT: &str = include_str!("../../../eventbridge/scheduled-event.json");

pub(crate) async fn wait_for_expiry(grant: &IssuedGrant) -> Result<Done<()>> {
    let expires_at: chrono::DateTime<chrono::Utc> = grant.expires_at.parse().context("expires_at is not RFC 3339")?;
    // One second past the instant, so PostgreSQL's clock agrees it has passed.
    let wait = (expires_at - chrono::Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_secs(1);
    tokio::time::sleep(wait).await;
    Ok(Done::new((), format!("waited {} s, until {}", wait.as_secs(), grant.expires_at)))
}

pub(crate) async fn reap(reaper: &mut Lambda) -> Result<Done<()>> {
    let event: Value = serde_json::from_str(SCHEDULED_EVENT).context("the sample scheduled event is not JSON")?;
    let summary = reaper.call_any(event)?;
    ensure!(summary["revoked"] == json!(1) && summary["failed"] == json!(0), "the reaper's pass: {summary}");
    Ok(Done::new((), format!("pass summary: {summary}")))
}

async fn login_fails(database: &Database, grant: &IssuedGrant) -> Result<Done<()>> {
    let psql = database.psql(&grant.db_user, &grant.password, QUERY)?;
    if psql.success {
        bail!("psql as {} still works:\n{}", grant.db_user, psql.stdout);
    }
    let reason = psql.stderr.lines().next().unwrap_or("").trim().to_string();
    Ok(Done::new((), format!("refused as expected ({})", psql.status)).detail(reason))
}

async fn role_gone(database: &Database, grant: &IssuedGrant) -> Result<Done<()>> {
    ensure!(!database.role_exists(&grant.db_user).await?, "{} is still in pg_roles", grant.db_user);
    let left = database.roles_starting_with("jit_").await?;
    Ok(Done::new((), format!("{} is gone; jit_ roles left: {}", grant.db_user, left.join(", "))))
}

pub(crate) async fn item_revoked(aws: &Aws, grant: &IssuedGrant) -> Result<Done<()>> {
    let item = aws.grant_item(&grant.grant_id).await?;
    let status = aws::string(&item, "status");
    ensure!(status == "revoked", "the item's status is {status}, not revoked");
    let history = match item.get("history") {
        Some(aws_sdk_dynamodb::types::AttributeValue::L(entries)) => entries,
        other => bail!("the item's history is not a list: {other:?}"),
    };
    ensure!(!format!("{item:?}").contains(&grant.password), "the password is in the table");
    let expiry_index = match item.contains_key("expiry_shard") {
        true => "still in the expiry index",
        false => "out of the expiry index",
    };
    let transitions = history.iter().filter_map(|entry| entry.as_m().ok()).map(|entry| {
        let from = entry.get("from").and_then(|from| from.as_s().ok()).map_or("(new)", String::as_str);
        format!(
            "history: {} {from} -> {} by {}: {}",
            aws::string(entry, "at"),
            aws::string(entry, "to"),
            aws::string(entry, "actor"),
            aws::string(entry, "note")
        )
    });
    Ok(Done::new(
        (),
        format!("status {status}, revoked_by {}, {} history entries:", aws::string(&item, "revoked_by"), history.len()),
    )
    .details(transitions.collect::<Vec<_>>())
    .detail(format!(
        "revoked_at {}, purge_at {} (TTL), {expiry_index}, no password in the item",
        aws::string(&item, "revoked_at"),
        aws::string(&item, "purge_at"),
    )))
}

/// A string field of a response object, or an error naming it.
pub(crate) fn text(object: &Value, field: &str) -> Result<String> {
    object[field].as_str().map(str::to_string).with_context(|| format!("the response has no {field}: {object}"))
}

/// The first 4 characters and an ellipsis: enough to tell passwords apart, not to use one.
pub(crate) fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_shows_four_characters() {
        assert_eq!(mask("abcdefgh"), "abcd…");
        assert_eq!(mask("ab"), "ab…");
        assert_eq!(mask("ßçdéfg"), "ßçdé…");
    }
}
