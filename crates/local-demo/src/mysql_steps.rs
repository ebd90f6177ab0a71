//! The demo with `--engine mysql`: the same provisioner and reaper binaries, a MariaDB server as the database.
//! Shows what differs on MySQL: the password reaches the server only as its hash, and the database locks an
//! expired account and ends its sessions by itself (a one-shot event) before the reaper drops it.

use anyhow::{bail, ensure, Result};
use std::path::Path;

use crate::aws::{self, Aws, BUCKET, CONFIG_KEY, TABLE};
use crate::database::{ADMIN_USER, TARGET_ROLE};
use crate::mysql_database::{MysqlDatabase, SHOP};
use crate::progress::{Done, Progress};
use crate::steps::{describe, grant, item_revoked, reap, revoke, start_lambda, wait_for_expiry, IssuedGrant};

const QUERY: &str = "SELECT CURRENT_USER(), CURRENT_ROLE(), name FROM items";

pub async fn run(provisioner_binary: &Path, reaper_binary: &Path) -> Result<usize> {
    let mut progress = Progress::default();
    let (database, aws) = progress.step("Start MariaDB and moto, set up schema shop", start_services()).await?;
    progress.step("Create the config bucket, admin credentials and grants table", prepare_aws(&aws, &database)).await?;
    let mut provisioner = progress.step("Start the provisioner Lambda", start_lambda(provisioner_binary, &aws)).await?;
    let first = progress
        .step(
            "Invoke grant: alice@example.com, readonly on shop, 60 s",
            grant(&mut provisioner, SHOP, "alice@example.com", "demo-mysql-1"),
        )
        .await?;
    progress.step("Log in with the mariadb client as the temporary user", login_works(&database, &first)).await?;
    progress.step("Look at the account and its expiry event", account_and_event(&database, &first)).await?;
    progress.step("Invoke describe", describe(&mut provisioner, &first)).await?;
    progress.step("Invoke revoke as bob@example.com", revoke(&mut provisioner, &first)).await?;
    progress.step("Log in again after the revoke", login_fails(&database, &first)).await?;
    progress.step("Look for the temporary user in mysql.user", user_gone(&database, &first)).await?;
    progress.step("Read the grant's item from DynamoDB (GetItem)", item_revoked(&aws, &first)).await?;

    // Expiry: the database locks the account and ends its session itself; the reaper then drops it.
    let mut reaper = progress.step("Start the reaper Lambda", start_lambda(reaper_binary, &aws)).await?;
    let expiring = progress
        .step(
            "Invoke grant: carol@example.com, readonly on shop, 60 s",
            grant(&mut provisioner, SHOP, "carol@example.com", "demo-mysql-2"),
        )
        .await?;
    let mut session =
        progress.step("Open a session as that user, and keep it", open_session(&database, &expiring)).await?;
    progress.step("Wait for the grant to expire (the reaper does not run)", wait_for_expiry(&expiring)).await?;
    progress.step("Use the session kept open", session_ended(&mut session)).await?;
    progress
        .step("Log in after expires_at (the expiry event locked the account)", login_fails(&database, &expiring))
        .await?;
    progress.step("Invoke the reaper with the scheduled event", reap(&mut reaper)).await?;
    progress.step("Look for the expired user in mysql.user", user_gone(&database, &expiring)).await?;
    progress.step("Read the expired grant's item from DynamoDB (GetItem)", item_revoked(&aws, &expiring)).await?;
    Ok(progress.steps())
}

async fn start_services() -> Result<Done<(MysqlDatabase, Aws)>> {
    let aws = Aws::start().await;
    let database = MysqlDatabase::start()?;
    let summary =
        format!("MariaDB {} on {}:{}, moto at {}", database.version, database.host(), database.port(), aws.endpoint());
    Ok(Done::new((database, aws), summary)
        .detail(format!("schema {SHOP}: table items (2 rows); event_scheduler ON"))
        .detail(format!(
            "role {TARGET_ROLE} (SELECT on {SHOP}.*); {ADMIN_USER}: CREATE USER, PROCESS, CONNECTION ADMIN, SET USER, \
             jit_expiry.*, {TARGET_ROLE} WITH ADMIN OPTION (docs/mysql.md)"
        )))
}

async fn prepare_aws(aws: &Aws, database: &MysqlDatabase) -> Result<Done<()>> {
    let config = Aws::mysql_config_document(database);
    aws.create_bucket(&config).await?;
    aws.create_table().await?;
    Ok(Done::new((), format!("s3://{BUCKET}/{CONFIG_KEY}, s3://{BUCKET}/{}, table {TABLE}", aws::ADMIN_SECRET_KEY))
        .detail(format!("config: {config}")))
}

async fn login_works(database: &MysqlDatabase, grant: &IssuedGrant) -> Result<Done<()>> {
    let client = database.client(&grant.db_user, &grant.password, QUERY)?;
    if !client.success {
        bail!("mariadb as {} failed ({}): {}", grant.db_user, client.status, client.stderr.trim());
    }
    let output = client.stdout.trim_end().lines().map(str::to_string);
    Ok(Done::new((), format!("logged in as {}; mariadb -e \"{QUERY}\":", grant.db_user)).details(output))
}

async fn account_and_event(database: &MysqlDatabase, grant: &IssuedGrant) -> Result<Done<()>> {
    let user = &grant.db_user;
    let created = database.root_lines(&format!("SHOW CREATE USER `{user}`@'%'"));
    let event = database.root_lines(&format!(
        "SELECT CONCAT(EVENT_SCHEMA, '.', EVENT_NAME, ' at ', EXECUTE_AT, ' (UTC), definer ', DEFINER) \
         FROM information_schema.EVENTS WHERE EVENT_NAME = 'expire_{user}'"
    ));
    ensure!(event.len() == 1, "no expiry event for {user}");
    let roles = database.root_lines(&format!("SELECT Role FROM mysql.roles_mapping WHERE User = '{user}'"));
    let hash_only = created.iter().all(|line| !line.contains(&grant.password));
    ensure!(hash_only, "the password is in SHOW CREATE USER");
    Ok(Done::new((), format!("{user}@%: roles {}", roles.join(", ")))
        .details(created.iter().map(|line| mask_hash(line)))
        .detail(format!("expiry event {}", event[0])))
}

/// `SHOW CREATE USER` with the stored hash shortened: it is not the password, but no need to print it whole.
/// MySQL shows `AS '*…'`, MariaDB `PASSWORD '*…'`.
fn mask_hash(line: &str) -> String {
    match line.find("'*") {
        Some(at) if line.len() >= at + 6 => format!("{}'*{}…' …", &line[..at], &line[at + 2..at + 6]),
        _ => line.to_string(),
    }
}

async fn login_fails(database: &MysqlDatabase, grant: &IssuedGrant) -> Result<Done<()>> {
    let client = database.client(&grant.db_user, &grant.password, QUERY)?;
    if client.success {
        bail!("mariadb as {} still works:\n{}", grant.db_user, client.stdout);
    }
    let reason = client.stderr.lines().next().unwrap_or("").trim().to_string();
    Ok(Done::new((), format!("refused as expected ({})", client.status)).detail(reason))
}

async fn user_gone(database: &MysqlDatabase, grant: &IssuedGrant) -> Result<Done<()>> {
    ensure!(!database.user_exists(&grant.db_user), "{} is still in mysql.user", grant.db_user);
    let left = database.root_lines("SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User LIKE 'jit\\_%'");
    Ok(Done::new((), format!("{} is gone; jit_ accounts left: {}", grant.db_user, left.join(", "))))
}

async fn open_session(database: &MysqlDatabase, grant: &IssuedGrant) -> Result<Done<mysql_async::Conn>> {
    use mysql_async::prelude::Queryable;
    let mut session = database.session(&grant.db_user, &grant.password).await?;
    let count: Option<i64> = session.query_first("SELECT COUNT(*) FROM items").await?;
    Ok(Done::new(session, format!("logged in as {}; {} items readable", grant.db_user, count.unwrap_or(0))))
}

async fn session_ended(session: &mut mysql_async::Conn) -> Result<Done<()>> {
    use mysql_async::prelude::Queryable;
    // The event fires within the second of expires_at; give the scheduler a few seconds.
    for _ in 0..10 {
        if let Err(e) = session.query_drop("SELECT 1").await {
            let summary = "ended by the database's expiry event, before any reaper ran";
            return Ok(Done::new((), summary).detail(e.to_string()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    bail!("the session is still alive 5 s after expires_at")
}

#[cfg(test)]
mod tests {
    #[test]
    fn stored_hashes_are_shortened() {
        let shown = super::mask_hash("CREATE USER `u`@`%` IDENTIFIED BY PASSWORD '*0F7467CB0CD372E6833F3876490056'");
        assert_eq!(shown, "CREATE USER `u`@`%` IDENTIFIED BY PASSWORD '*0F74…' …");
    }
}
