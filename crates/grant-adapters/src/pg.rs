//! Admin sessions to the configured databases: one connection per database, made on first use and reused
//! across warm invocations; re-made when the server closed it. A refused admin password is re-read (or a new
//! IAM token signed) once, so a rotation needs no redeploy.

use crate::config_source::ConfigSource;
use crate::error::Fault;
use crate::mysql::MysqlConnections;
use crate::slots::Slots;
use crate::tls;
use grant_model::sql::Statement;
use grant_model::{DatabaseConfig, Endpoint, SslMode};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
use tokio_postgres::config::ChannelBinding;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, NoTls};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const INVALID_PASSWORD: &str = "28P01";

/// The admin connections of both engines: PostgreSQL's here, MySQL's in [`MysqlConnections`].
#[derive(Default)]
pub struct Connections {
    slots: Slots<Client>,
    pub mysql: MysqlConnections,
}

/// Exclusive use of one database's admin connection.
pub struct Session {
    database: String,
    client: OwnedMutexGuard<Option<Client>>,
}

impl Connections {
    /// The admin session to configured database `name` on its writer.
    pub async fn session(&self, name: &str, db: &DatabaseConfig, source: &ConfigSource) -> Result<Session, Fault> {
        self.session_at(name, db, &db.writer(), source).await
    }

    /// The admin session to `endpoint` (a reader instance, or another database on the writer) of configured
    /// database `name`, with its `sslmode` and admin credentials. One connection per endpoint, reused while warm.
    pub async fn session_at(
        &self,
        name: &str,
        db: &DatabaseConfig,
        endpoint: &Endpoint,
        source: &ConfigSource,
    ) -> Result<Session, Fault> {
        let label = endpoint.label(name, db);
        let mut client = self.slots.take(&label).await;
        if client.as_ref().is_none_or(Client::is_closed) {
            *client = None;
            // Boxed: the connect future is large and deep, and would otherwise sit inside every caller's future.
            *client = Some(Box::pin(connect(&label, db, endpoint, source)).await?);
        }
        Ok(Session { database: label, client })
    }
}

async fn connect(
    label: &str,
    db: &DatabaseConfig,
    endpoint: &Endpoint,
    source: &ConfigSource,
) -> Result<Client, Fault> {
    match try_connect(label, db, endpoint, source).await {
        Err(fault) if fault.sqlstate() == Some(INVALID_PASSWORD) => {
            source.forget_admin(db, endpoint).await;
            try_connect(label, db, endpoint, source).await
        }
        other => other,
    }
}

async fn try_connect(
    name: &str,
    db: &DatabaseConfig,
    endpoint: &Endpoint,
    source: &ConfigSource,
) -> Result<Client, Fault> {
    let admin = source.admin_login(db, endpoint).await?;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&endpoint.host)
        .port(endpoint.port)
        .dbname(&endpoint.dbname)
        .user(admin.username())
        .password(admin.password())
        .application_name("jit-access")
        // A revocation stuck behind a lock must fail (and be retried) well within its lease.
        .options("-c statement_timeout=20000 -c lock_timeout=10000")
        .connect_timeout(CONNECT_TIMEOUT);
    let fault = |e: tokio_postgres::Error| Fault::postgres(name, &e);
    let ca_bundle = source.ca_bundle(db).await?;
    let client = match tls::client_config(db.sslmode, ca_bundle.as_deref().map(Vec::as_slice))? {
        None => {
            let (client, connection) =
                config.ssl_mode(tokio_postgres::config::SslMode::Disable).connect(NoTls).await.map_err(fault)?;
            tokio::spawn(drive(name.to_string(), connection));
            client
        }
        Some(tls_config) => {
            if db.sslmode == SslMode::Require {
                // The server is not verified, so it may be anyone: it gets the password only through SCRAM bound
                // to this TLS channel (SCRAM-SHA-256-PLUS, tls-server-end-point), which proves knowledge of the
                // password without revealing it. A request for a cleartext or MD5 password, a SCRAM offer without
                // channel binding, or a login without any authentication is refused before anything is sent.
                config.channel_binding(ChannelBinding::Require);
            }
            // tokio-postgres's refusal is an authentication error of the client ("server did not use channel
            // binding"), not a server's error: say what it means.
            let fault = |e: tokio_postgres::Error| match fault(e) {
                Fault::Postgres { database, code: None, message }
                    if db.sslmode == SslMode::Require && message.contains("channel binding") =>
                {
                    let message = format!(
                        "sslmode require: the server did not authenticate with SCRAM channel binding \
                         (SCRAM-SHA-256-PLUS), so the admin password was not sent, as an unverified server could be \
                         an impostor; give the admin user scram-sha-256 authentication and the server an RSA or \
                         ECDSA certificate, or use sslmode verify-ca or verify-full ({message})"
                    );
                    Fault::Postgres { database, code: None, message }
                }
                other => other,
            };
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
            let (client, connection) =
                config.ssl_mode(tokio_postgres::config::SslMode::Require).connect(tls).await.map_err(fault)?;
            tokio::spawn(drive(name.to_string(), connection));
            client
        }
    };
    Ok(client)
}

async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(database: String, connection: F) {
    if let Err(e) = connection.await {
        tracing::warn!(database, error = %Fault::postgres(&database, &e), "admin connection closed");
    }
}

impl Session {
    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn client(&mut self) -> &mut Client {
        self.client.as_mut().expect("a session always holds a connected client")
    }

    fn fault(&self, error: &tokio_postgres::Error) -> Fault {
        Fault::postgres(&self.database, error)
    }

    pub async fn execute(&mut self, statement: &Statement) -> Result<(), Fault> {
        let result = execute(&*self.client(), statement).await;
        result.map_err(|e| self.fault(&e))
    }

    /// The first column of every row, as text.
    pub async fn query_column(&mut self, statement: &Statement) -> Result<Vec<String>, Fault> {
        let result = query_column(&*self.client(), statement).await;
        result.map_err(|e| self.fault(&e))
    }

    /// Every row, every column as text.
    pub async fn query_rows(&mut self, statement: &Statement) -> Result<Vec<Vec<String>>, Fault> {
        let result = async {
            let rows = self.client().query_typed(statement.sql.as_str(), &params(statement)).await?;
            rows.iter()
                .map(|row| (0..row.len()).map(|i| row.try_get::<_, String>(i)).collect())
                .collect::<Result<Vec<Vec<String>>, tokio_postgres::Error>>()
        }
        .await;
        result.map_err(|e| self.fault(&e))
    }

    /// Drops the connection (the server rolls back an open transaction); the next session reconnects.
    pub fn discard(&mut self) {
        *self.client = None;
    }

    /// Rows of two text columns.
    pub async fn query_pairs(&mut self, statement: &Statement) -> Result<Vec<(String, String)>, Fault> {
        let result = async {
            let rows = self.client().query_typed(statement.sql.as_str(), &params(statement)).await?;
            rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<Vec<_>, _>>()
        }
        .await;
        result.map_err(|e| self.fault(&e))
    }

    /// Runs the statements in one transaction: all or nothing.
    pub async fn transaction(&mut self, statements: &[Statement]) -> Result<(), Fault> {
        let result = async {
            let tx = self.client().transaction().await?;
            for statement in statements {
                execute(&tx, statement).await?;
            }
            tx.commit().await
        }
        .await;
        result.map_err(|e| self.fault(&e))
    }

    /// Runs each step in its own transaction, committed in order, in as few round trips as the protocol allows
    /// (a temporary user's revocation went from 22 to 5; see docs/benchmarks.md). A step of statements without
    /// parameters (sql.rs builds them from quoted identifiers) goes as one simple-query batch, which PostgreSQL
    /// runs as one implicit transaction: still all or nothing. A single statement is a transaction by itself.
    pub async fn run_plan(&mut self, steps: &[Vec<Statement>]) -> Result<(), Fault> {
        for step in steps {
            if step.iter().all(|s| s.params.is_empty()) {
                let batch: Vec<&str> = step.iter().map(|s| s.sql.as_str()).collect();
                let result = self.client().batch_execute(&batch.join(";\n")).await;
                result.map_err(|e| self.fault(&e))?;
            } else if let [statement] = step.as_slice() {
                self.execute(statement).await?;
            } else {
                self.transaction(step).await?;
            }
        }
        Ok(())
    }
}

/// Every statement goes with its parameter types stated (all are text), so PostgreSQL parses, binds and runs it
/// in one round trip; an untyped statement would first be prepared in a round trip of its own.
pub async fn execute(client: &impl GenericClient, statement: &Statement) -> Result<(), tokio_postgres::Error> {
    client.query_typed(statement.sql.as_str(), &params(statement)).await.map(drop)
}

pub async fn query_column(
    client: &impl GenericClient,
    statement: &Statement,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client.query_typed(statement.sql.as_str(), &params(statement)).await?;
    rows.iter().map(|row| row.try_get::<_, String>(0)).collect()
}

fn params(statement: &Statement) -> Vec<(&(dyn ToSql + Sync), Type)> {
    statement.params.iter().map(|p| (p as &(dyn ToSql + Sync), Type::TEXT)).collect()
}
