//! The PostgreSQL side: a throwaway cluster set up like an Aurora database (a non-superuser admin with
//! CREATEROLE and ADMIN OPTION on the target role), superuser queries to inspect it, and the real `psql`
//! client to log in as a user would.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use test_support::{PgCluster, SUPERUSER_PASSWORD};

pub const DB: &str = "orders";
/// A second database of the cluster, where the target role may create tables: a temporary user's objects there
/// must be cleaned up too before its role can be dropped.
pub const SCRATCH_DB: &str = "scratch";
pub const TARGET_ROLE: &str = "readonly";
pub const ADMIN_USER: &str = "jit_admin";
/// Only ever on 127.0.0.1 in a cluster deleted at exit.
pub const ADMIN_PASSWORD: &str = "local-demo-admin-password";
pub const PSQL: &str = "/usr/bin/psql";

/// Roles and data as an operator would prepare them: the admin can create roles and hand out exactly the
/// target role. Run one statement at a time (CREATE DATABASE cannot run in a transaction block), first in
/// the `postgres` database, then in `orders`, then in `scratch`.
fn setup_statements() -> [(&'static str, Vec<String>); 3] {
    let cluster = vec![
        format!("CREATE DATABASE {DB}"),
        format!("CREATE DATABASE {SCRATCH_DB}"),
        format!("CREATE ROLE {TARGET_ROLE} NOLOGIN"),
        format!("CREATE ROLE {ADMIN_USER} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}'"),
        format!("GRANT pg_signal_backend TO {ADMIN_USER}"),
        format!("GRANT {TARGET_ROLE} TO {ADMIN_USER} WITH ADMIN OPTION"),
    ];
    let orders = vec![
        "CREATE TABLE items (id int PRIMARY KEY, name text)".to_string(),
        "INSERT INTO items VALUES (1, 'widget'), (2, 'gadget')".to_string(),
        format!("GRANT SELECT ON items TO {TARGET_ROLE}"),
        format!("GRANT CREATE, USAGE ON SCHEMA public TO {ADMIN_USER} WITH GRANT OPTION"),
    ];
    let scratch = vec![format!("GRANT CREATE, USAGE ON SCHEMA public TO {TARGET_ROLE}")];
    [("postgres", cluster), (DB, orders), (SCRATCH_DB, scratch)]
}

pub struct Database {
    pg: PgCluster,
    /// A hot standby of `pg`: the local stand-in for an Aurora reader instance.
    pub reader: PgCluster,
    pub version: String,
}

impl Database {
    /// Starts a fresh cluster (PostgreSQL's own binaries, on a free port) and sets it up.
    pub async fn start() -> Result<Database> {
        if !Path::new(PSQL).exists() {
            bail!("{PSQL} not found: install the PostgreSQL client (scripts/setup.sh installs postgresql)");
        }
        // Blocks until the server accepts logins.
        let pg = tokio::task::block_in_place(PgCluster::start);
        let reader = tokio::task::block_in_place(|| pg.start_standby());
        let mut database = Database { pg, reader, version: String::new() };
        database.setup().await?;
        Ok(database)
    }

    async fn setup(&mut self) -> Result<()> {
        for (dbname, statements) in setup_statements() {
            let client = self.superuser(dbname).await?;
            for statement in &statements {
                client
                    .batch_execute(statement)
                    .await
                    .with_context(|| format!("{dbname}: {}", statement.replace(ADMIN_PASSWORD, "***")))?;
            }
        }
        let client = self.superuser("postgres").await?;
        let row = client.query_one("SHOW server_version", &[]).await?;
        self.version = row.get(0);
        Ok(())
    }

    pub fn host(&self) -> &'static str {
        self.pg.host()
    }

    pub fn port(&self) -> u16 {
        self.pg.port()
    }

    /// A session as `user` on the reader instance, kept open by the caller.
    pub async fn reader_session(&self, user: &str, password: &str) -> Result<tokio_postgres::Client> {
        // The standby replays the user's creation with a lag.
        for _ in 0..250 {
            if let Ok(client) = self.reader.connect(user, password, DB).await {
                return Ok(client);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.reader.connect(user, password, DB).await.with_context(|| format!("log in as {user} on the reader"))
    }

    /// A session as `user` on the writer, in `dbname`.
    pub async fn connect(&self, user: &str, password: &str, dbname: &str) -> Result<tokio_postgres::Client> {
        self.pg.connect(user, password, dbname).await.with_context(|| format!("log in as {user} to {dbname}"))
    }

    /// Who owns table `name` in `dbname`.
    pub async fn table_owner(&self, dbname: &str, name: &str) -> Result<Option<String>> {
        let client = self.superuser(dbname).await?;
        let row = client
            .query_opt("SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE relname = $1", &[&name])
            .await
            .context("query pg_class")?;
        Ok(row.map(|row| row.get(0)))
    }

    pub async fn superuser(&self, dbname: &str) -> Result<tokio_postgres::Client> {
        self.pg
            .connect("postgres", SUPERUSER_PASSWORD, dbname)
            .await
            .with_context(|| format!("connect to {dbname} as the superuser"))
    }

    /// Names of the roles starting with `prefix`, sorted.
    pub async fn roles_starting_with(&self, prefix: &str) -> Result<Vec<String>> {
        let client = self.superuser(DB).await?;
        let rows = client
            .query("SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1", &[&prefix])
            .await
            .context("query pg_roles")?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub async fn role_exists(&self, name: &str) -> Result<bool> {
        let client = self.superuser(DB).await?;
        let row = client
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .context("query pg_roles")?;
        Ok(row.get::<_, i64>(0) > 0)
    }

    /// Runs the real `psql` as `user` against `orders`, the way a person with the credentials would.
    pub fn psql(&self, user: &str, password: &str, sql: &str) -> Result<Psql> {
        let mut command = Command::new(PSQL);
        // Nothing from the caller's environment (PGHOST, PGSERVICE, ...) may redirect it.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                command.env_remove(name);
            }
        }
        command
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "5")
            .args(["-X", "-w", "-h", self.host(), "-p"])
            .arg(self.port().to_string())
            .args(["-U", user, "-d", DB, "-c", sql])
            .stdin(Stdio::null());
        let output = tokio::task::block_in_place(|| command.output()).with_context(|| format!("run {PSQL}"))?;
        Ok(Psql {
            success: output.status.success(),
            status: output.status.to_string(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

pub struct Psql {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}
