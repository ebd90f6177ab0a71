//! The MySQL engine's test environment: a throwaway MariaDB server set up as an operator would prepare an Aurora
//! MySQL cluster (the runbook's admin, target roles, a schema with data, an existing user for escalations), and a
//! fresh table and config bucket on moto.

use crate::fixture::{Cloud, ADMIN_PASSWORD, ADMIN_USER};
use crate::MariaDb;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use serde_json::{json, Value};

/// The configured database's name (its key in the config), and its schema.
pub const MYSQL_DB: &str = "shop";

pub struct MysqlFixture {
    pub db: MariaDb,
    /// A read-only replica of `db`, named in the config's `readers`: the stand-in for an Aurora reader.
    pub reader: Option<MariaDb>,
    /// The CA of the server's certificate, when it was started with TLS (the config then says `verify-full`).
    pub ca: Option<Vec<u8>>,
    pub cloud: Cloud,
}

impl std::ops::Deref for MysqlFixture {
    type Target = Cloud;
    fn deref(&self) -> &Cloud {
        &self.cloud
    }
}

/// Roles and data as the runbook has an operator prepare them.
const SETUP: &str = "
CREATE DATABASE shop;
CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40));
INSERT INTO shop.items VALUES (1, 'widget');
CREATE ROLE readonly;
GRANT SELECT ON shop.* TO readonly;
CREATE ROLE writer;
GRANT SELECT, INSERT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER ON shop.* TO writer;
CREATE ROLE dba;
GRANT ALL PRIVILEGES ON shop.* TO dba;
CREATE USER 'alice'@'%' IDENTIFIED BY 'alice-password';
GRANT SELECT ON shop.items TO 'alice'@'%';
CREATE USER 'bob'@'%' IDENTIFIED BY 'bob-password';
GRANT dba TO 'bob'@'%';
";

impl MysqlFixture {
    pub async fn new() -> MysqlFixture {
        MysqlFixture::with_server(MariaDb::start(), None).await
    }

    /// With a replica as the database's reader instance.
    pub async fn with_reader() -> MysqlFixture {
        let db = MariaDb::start();
        let reader = db.start_replica();
        let mut env = MysqlFixture::with_server(db, None).await;
        env.reader = Some(reader);
        env.put_object("config.json", &env.config()).await;
        env.db.wait_for_replica(env.reader.as_ref().expect("just set"));
        env
    }

    /// A server with TLS; the config says `verify-full` with the server's CA as `ca_bundle_key`.
    pub async fn with_tls() -> MysqlFixture {
        let (db, ca) = MariaDb::start_with_tls();
        MysqlFixture::with_server(db, Some(ca)).await
    }

    async fn with_server(db: MariaDb, ca: Option<Vec<u8>>) -> MysqlFixture {
        db.root(SETUP);
        db.create_admin(ADMIN_USER, ADMIN_PASSWORD);
        db.grant_object_rights(ADMIN_USER, MYSQL_DB);
        // MariaDB takes one role per GRANT.
        for role in ["readonly", "writer", "dba"] {
            db.root(&format!("GRANT {role} TO '{ADMIN_USER}'@'%' WITH ADMIN OPTION"));
        }
        let env = MysqlFixture { db, reader: None, ca, cloud: Cloud::new().await };
        env.put_object("config.json", &env.config()).await;
        env.put_object("secrets/shop-admin.json", &json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD})).await;
        if let Some(ca) = &env.ca {
            env.put_raw("certs/shop-ca.pem", ca.clone()).await;
        }
        env
    }

    pub fn config(&self) -> Value {
        let mut db = json!({
            "engine": "mysql", "host": "127.0.0.1", "port": self.db.port(), "dbname": MYSQL_DB,
            "sslmode": "disable", "admin_secret_key": "secrets/shop-admin.json",
            "targets": {
                "readonly": {
                    "strategy": "temp_user", "roles": ["readonly"],
                    "statements": ["ALTER USER {username} WITH MAX_QUERIES_PER_HOUR 1000"],
                    "default_duration_seconds": 3600, "max_duration_seconds": 14400, "connection_limit": 5
                },
                "writer": {"strategy": "temp_user", "roles": ["writer"], "max_duration_seconds": 3600},
                "dba": {"strategy": "role_escalation", "roles": ["dba"], "max_duration_seconds": 3600},
                "missing-role": {"strategy": "temp_user", "roles": ["no_such_role"], "max_duration_seconds": 3600}
            }
        });
        if let Some(reader) = &self.reader {
            db["readers"] = json!([{"host": reader.host(), "port": reader.port()}]);
        }
        if self.ca.is_some() {
            db["sslmode"] = json!("verify-full");
            db["ca_bundle_key"] = json!("certs/shop-ca.pem");
        }
        json!({"user_prefix": "jit_", "databases": {MYSQL_DB: db}})
    }

    /// A session as `user`, with TLS when `tls` (checked against the fixture's CA).
    pub async fn connect(&self, user: &str, password: &str, tls: bool) -> Result<Conn, mysql_async::Error> {
        self.connect_to(&self.db, user, password, tls).await
    }

    /// A session as `user` on `server` (the writer or the reader).
    pub async fn connect_to(
        &self,
        server: &MariaDb,
        user: &str,
        password: &str,
        tls: bool,
    ) -> Result<Conn, mysql_async::Error> {
        let mut opts = OptsBuilder::default()
            .ip_or_hostname(server.host())
            .tcp_port(server.port())
            .user(Some(user))
            .pass(Some(password))
            .db_name(Some(MYSQL_DB))
            .prefer_socket(false);
        if tls {
            let ca = self.ca.clone().expect("a TLS fixture");
            opts = opts.ssl_opts(Some(SslOpts::default().with_root_certs(vec![ca.into()])));
        }
        Conn::new(opts).await
    }

    /// One value as root (the first column of the first row, empty if none).
    pub fn root_value(&self, sql: &str) -> String {
        self.db.root(sql).lines().next().unwrap_or_default().to_string()
    }

    /// Whether account `user`@'%' exists.
    pub fn user_exists(&self, user: &str) -> bool {
        self.root_value(&format!("SELECT COUNT(*) FROM mysql.user WHERE User = '{user}' AND Host = '%'")) == "1"
    }

    /// The roles `user`@'%' is a member of, sorted.
    pub fn memberships(&self, user: &str) -> Vec<String> {
        let out = self
            .db
            .root(&format!("SELECT Role FROM mysql.roles_mapping WHERE User = '{user}' AND Host = '%' ORDER BY Role"));
        out.lines().map(str::to_string).collect()
    }

    /// Temporary users still in the database (members of the marker role, not the admin).
    pub fn marked_users(&self) -> Vec<String> {
        let out = self.db.root(
            "SELECT User FROM mysql.roles_mapping WHERE Role = 'jit_managed' AND Admin_option = 'N' ORDER BY User",
        );
        out.lines().map(str::to_string).collect()
    }
}
