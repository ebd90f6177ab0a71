//! Admin sessions to MySQL databases (`engine: mysql`), like `pg` for PostgreSQL: one connection per database,
//! made on first use, checked with a ping when reused, re-made when it is gone. A refused admin login is re-read
//! (rotation) once. TLS goes through rustls: `verify-ca` and `verify-full` check the chain against the RDS
//! bundle (or `ca_bundle_key`'s), `verify-full` the host name too; `require` is refused by the config.

use crate::config_source::ConfigSource;
use crate::error::Fault;
use crate::slots::Slots;
use crate::tls::RDS_CA_BUNDLE;
use grant_model::mysql::{self as sql, Flavor};
use grant_model::sql::Statement;
use grant_model::{DatabaseConfig, Endpoint, SslMode};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, SslOpts, Value};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ER_ACCESS_DENIED_ERROR: the admin's password was refused (rotated?).
const ACCESS_DENIED: u16 = 1045;
/// Statements with parameters kept prepared per connection, by text (least recently used closed beyond this).
/// The engine uses about ten texts, so each is prepared once per connection, then only executed. With no cache,
/// mysql_async prepares on every exec and never closes the statement: a warm connection would pile them up
/// towards the server-wide `max_prepared_stmt_count` (16382 by default), at which every prepare on the server
/// fails.
const STMT_CACHE_SIZE: usize = 32;

#[derive(Default)]
pub struct MysqlConnections {
    slots: Slots<(Conn, Flavor)>,
}

/// Exclusive use of one MySQL database's admin connection.
pub struct MysqlSession {
    database: String,
    conn: OwnedMutexGuard<Option<(Conn, Flavor)>>,
}

impl MysqlConnections {
    /// The admin session to configured database `name`, on its writer.
    pub async fn session(&self, name: &str, db: &DatabaseConfig, source: &ConfigSource) -> Result<MysqlSession, Fault> {
        self.session_at(name, db, &db.writer(), source).await
    }

    /// The admin session to `endpoint` (a reader instance) of configured database `name`, with its `sslmode`
    /// and admin credentials. One connection per endpoint, reused while warm.
    pub async fn session_at(
        &self,
        name: &str,
        db: &DatabaseConfig,
        endpoint: &Endpoint,
        source: &ConfigSource,
    ) -> Result<MysqlSession, Fault> {
        let name = endpoint.label(name, db);
        let name = name.as_str();
        let mut conn = self.slots.take(name).await;
        if let Some((live, _)) = conn.as_mut() {
            if live.ping().await.is_err() {
                *conn = None;
            }
        }
        if conn.is_none() {
            *conn = Some(Box::pin(connect(name, db, endpoint, source)).await?);
        }
        Ok(MysqlSession { database: name.to_string(), conn })
    }
}

async fn connect(
    name: &str,
    db: &DatabaseConfig,
    endpoint: &Endpoint,
    source: &ConfigSource,
) -> Result<(Conn, Flavor), Fault> {
    match try_connect(name, db, endpoint, source).await {
        Err(Fault::Mysql { code: Some(ACCESS_DENIED), .. }) => {
            source.forget_admin(db, endpoint).await;
            try_connect(name, db, endpoint, source).await
        }
        other => other,
    }
}

async fn try_connect(
    name: &str,
    db: &DatabaseConfig,
    endpoint: &Endpoint,
    source: &ConfigSource,
) -> Result<(Conn, Flavor), Fault> {
    let admin = source.admin_login(db, endpoint).await?;
    let mut opts = OptsBuilder::default()
        .ip_or_hostname(endpoint.host.clone())
        .tcp_port(endpoint.port)
        .user(Some(admin.username()))
        .pass(Some(String::from_utf8_lossy(admin.password()).into_owned()))
        .db_name(Some(endpoint.dbname.clone()))
        .prefer_socket(false)
        // An IAM token is a password sent in clear: only ever over a verified TLS connection (config.rs).
        .enable_cleartext_plugin(db.admin_iam_user.is_some())
        .stmt_cache_size(STMT_CACHE_SIZE);
    if db.sslmode != SslMode::Disable {
        let ca = source.ca_bundle(db).await?;
        let roots = ca.as_deref().map_or(RDS_CA_BUNDLE.to_vec(), Clone::clone);
        let ssl = SslOpts::default()
            .with_root_certs(vec![roots.into()])
            .with_disable_built_in_roots(true)
            .with_danger_skip_domain_validation(db.sslmode == SslMode::VerifyCa);
        opts = opts.ssl_opts(Some(ssl));
    }
    let fault = |e: mysql_async::Error| Fault::mysql(name, &e);
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts))
        .await
        .map_err(|_| Fault::Mysql {
            database: name.to_string(),
            code: None,
            message: format!("could not connect within {} s", CONNECT_TIMEOUT.as_secs()),
        })?
        .map_err(fault)?;
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(fault)?;
    let flavor = Flavor::from_version(version.as_deref().unwrap_or_default());
    for setup in sql::session_setup(flavor) {
        conn.query_drop(setup).await.map_err(fault)?;
    }
    Ok((conn, flavor))
}

impl MysqlSession {
    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn flavor(&self) -> Flavor {
        self.conn.as_ref().expect("a session always holds a connection").1
    }

    fn conn(&mut self) -> &mut Conn {
        &mut self.conn.as_mut().expect("a session always holds a connection").0
    }

    fn fault(&mut self, error: &mysql_async::Error) -> Fault {
        if matches!(error, mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)) {
            *self.conn = None; // gone: the next session reconnects
        }
        Fault::mysql(&self.database, error)
    }

    pub async fn execute(&mut self, statement: &Statement) -> Result<(), Fault> {
        let result = match statement.params.is_empty() {
            // Text protocol: DDL, KILL and USE cannot be prepared on every server.
            true => self.conn().query_drop(statement.sql.as_str()).await,
            false => self.conn().exec_drop(statement.sql.as_str(), params(statement)).await,
        };
        result.map_err(|e| self.fault(&e))
    }

    pub async fn execute_all(&mut self, statements: &[Statement]) -> Result<(), Fault> {
        for statement in statements {
            self.execute(statement).await?;
        }
        Ok(())
    }

    /// Every row, every column as text (NULL as empty).
    pub async fn query_rows(&mut self, statement: &Statement) -> Result<Vec<Vec<String>>, Fault> {
        let result: Result<Vec<mysql_async::Row>, _> = match statement.params.is_empty() {
            true => self.conn().query(statement.sql.as_str()).await,
            false => self.conn().exec(statement.sql.as_str(), params(statement)).await,
        };
        let rows = result.map_err(|e| self.fault(&e))?;
        Ok(rows.into_iter().map(|row| row.unwrap().into_iter().map(text).collect()).collect())
    }

    /// The first column of every row.
    pub async fn query_column(&mut self, statement: &Statement) -> Result<Vec<String>, Fault> {
        let rows = self.query_rows(statement).await?;
        Ok(rows.into_iter().filter_map(|row| row.into_iter().next()).collect())
    }

    /// Drops the connection: a later session reconnects. For a session left in a state the next user must not
    /// inherit (a named lock, a changed default schema after a failure).
    pub fn discard(&mut self) {
        *self.conn = None;
    }
}

fn params(statement: &Statement) -> Params {
    Params::Positional(statement.params.iter().map(|p| Value::from(p.as_str())).collect())
}

fn text(value: Value) -> String {
    match value {
        Value::NULL => String::new(),
        Value::Bytes(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        other => other.as_sql(true).trim_matches('\'').to_string(),
    }
}
