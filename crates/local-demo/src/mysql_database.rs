//! The MySQL side (`--engine mysql`): a throwaway MariaDB 10.11 server (this machine's stand-in for Aurora
//! MySQL) set up as the runbook has an operator prepare one, root queries to inspect it, and the real `mariadb`
//! client to log in as a user would.

use anyhow::{Context, Result};
use std::process::{Command, Stdio};
use test_support::MariaDb;

use crate::database::{ADMIN_PASSWORD, ADMIN_USER, TARGET_ROLE};

/// The configured database, and its schema.
pub const SHOP: &str = "shop";
pub const MARIADB: &str = "/usr/bin/mariadb";

pub struct MysqlDatabase {
    server: MariaDb,
    pub version: String,
}

impl MysqlDatabase {
    /// Starts a fresh server (event_scheduler ON) and sets it up: a schema with data, the target role, the admin
    /// with the runbook's privileges and ADMIN OPTION on the role.
    pub fn start() -> Result<MysqlDatabase> {
        if !std::path::Path::new(MARIADB).exists() {
            anyhow::bail!("{MARIADB} not found: scripts/setup.sh installs mariadb-server and mariadb-client");
        }
        let server = tokio::task::block_in_place(MariaDb::start);
        server.root(&format!(
            "CREATE DATABASE {SHOP}; CREATE TABLE {SHOP}.items (id INT PRIMARY KEY, name VARCHAR(40)); \
             INSERT INTO {SHOP}.items VALUES (1, 'widget'), (2, 'gadget'); \
             CREATE ROLE {TARGET_ROLE}; GRANT SELECT ON {SHOP}.* TO {TARGET_ROLE};"
        ));
        server.create_admin(ADMIN_USER, ADMIN_PASSWORD);
        server.grant_object_rights(ADMIN_USER, SHOP);
        server.root(&format!("GRANT {TARGET_ROLE} TO '{ADMIN_USER}'@'%' WITH ADMIN OPTION"));
        let version = server.root("SELECT VERSION()").trim().to_string();
        Ok(MysqlDatabase { server, version })
    }

    pub fn host(&self) -> &'static str {
        self.server.host()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The first column of `sql`'s rows, as root.
    pub fn root_lines(&self, sql: &str) -> Vec<String> {
        self.server.root(sql).lines().map(str::to_string).collect()
    }

    pub fn user_exists(&self, user: &str) -> bool {
        self.root_lines(&format!("SELECT User FROM mysql.user WHERE User = '{user}' AND Host = '%'")).len() == 1
    }

    /// A session as `user` that the demo keeps open.
    pub async fn session(&self, user: &str, password: &str) -> Result<mysql_async::Conn> {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host())
            .tcp_port(self.port())
            .user(Some(user))
            .pass(Some(password))
            .db_name(Some(SHOP))
            .prefer_socket(false);
        mysql_async::Conn::new(opts).await.with_context(|| format!("log in as {user}"))
    }

    /// Runs the real `mariadb` client as `user` against `shop`, the way a person with the credentials would.
    pub fn client(&self, user: &str, password: &str, sql: &str) -> Result<crate::database::Psql> {
        let mut command = Command::new(MARIADB);
        command
            // The password from the environment, not the command line (which `ps` shows).
            .env("MYSQL_PWD", password)
            .args(["--no-defaults", "--protocol=TCP", "--connect-timeout=5", "-h", self.host(), "-P"])
            .arg(self.port().to_string())
            .args(["-u", user, "-D", SHOP, "--table", "-e", sql])
            .stdin(Stdio::null());
        let output = tokio::task::block_in_place(|| command.output()).with_context(|| format!("run {MARIADB}"))?;
        Ok(crate::database::Psql {
            success: output.status.success(),
            status: output.status.to_string(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
