//! A database's access lives beyond its writer's configured database: a session on an Aurora reader instance
//! can only be ended on that instance, and a user may own objects or hold privileges in the cluster's other
//! databases, where `REASSIGN OWNED`/`DROP OWNED` on the configured one do not reach.

use crate::config_source::ConfigSource;
use crate::error::Fault;
use crate::pg::{Connections, Session};
use grant_model::sql::{self, Change, DatabaseCleanup};
use grant_model::{DatabaseConfig, Endpoint};
use std::time::Duration;
use tokio::time::Instant;

/// How long a reader may take to show a change committed on the writer. Aurora's replica lag is typically
/// well under a second; beyond this the revocation fails (and is retried) rather than end sessions too early.
pub const REPLAY_WAIT: Duration = Duration::from_secs(10);
const REPLAY_POLL: Duration = Duration::from_millis(5);

/// One configured database and the places its access lives.
pub struct Cluster<'a> {
    pub connections: &'a Connections,
    pub source: &'a ConfigSource,
    /// The configured database's name (the config key, as grants record it).
    pub name: &'a str,
    pub db: &'a DatabaseConfig,
}

impl Cluster<'_> {
    /// The admin session on the writer, in the configured database.
    pub async fn writer(&self) -> Result<Session, Fault> {
        self.connections.session(self.name, self.db, self.source).await
    }

    /// Ends `user`'s sessions on every reader instance, each once it shows `change` (committed on the writer
    /// first). An unreachable reader, or one that does not show the change within [`REPLAY_WAIT`], is a fault:
    /// the revocation is retried, never reported done.
    pub async fn end_sessions_on_readers(&self, user: &str, change: Change<'_>) -> Result<(), Fault> {
        for reader in self.source.readers(self.name, self.db).await? {
            let mut session = self.connections.session_at(self.name, self.db, &reader, self.source).await?;
            wait_until_shown(&mut session, change).await?;
            session.execute(&sql::terminate_sessions(user)).await?;
        }
        Ok(())
    }

    /// Reassigns `user`'s objects to `retired` and drops its privileges in every database of the cluster other
    /// than the configured one where it has any. `writer` is the session on the configured database. Returns
    /// the databases cleaned. A database the admin cannot connect to is a fault that names it.
    pub async fn clean_other_databases(
        &self,
        writer: &mut Session,
        user: &str,
        retired: &str,
    ) -> Result<Vec<String>, Fault> {
        let databases = writer.query_column(&sql::other_databases(user)).await?;
        for dbname in &databases {
            let endpoint: Endpoint = self.db.writer().in_database(dbname);
            let mut session = self.connections.session_at(self.name, self.db, &endpoint, self.source).await?;
            let (schemas, definer_routines) = cleanup_facts(&mut session, user, retired).await?;
            let cleanup = DatabaseCleanup {
                username: user,
                retired_role: retired,
                definer_routines: &definer_routines,
                schemas: &schemas,
            };
            session.transaction(&sql::clean_database(&cleanup)).await?;
        }
        Ok(databases)
    }
}

/// What cleaning `user` out of `session`'s database needs to know there (catalogs are per database): the schemas
/// `retired` must be lent CREATE on, and the user's SECURITY DEFINER routines.
pub(crate) async fn cleanup_facts(
    session: &mut Session,
    user: &str,
    retired: &str,
) -> Result<(Vec<String>, Vec<String>), Fault> {
    let schemas = session.query_column(&sql::schemas_to_lend(retired, user)).await?;
    let definer_routines = session.query_column(&sql::definer_routines(user)).await?;
    Ok((schemas, definer_routines))
}

/// Polls `session`'s instance until it shows `change`.
async fn wait_until_shown(session: &mut Session, change: Change<'_>) -> Result<(), Fault> {
    let check = sql::shows(change);
    let deadline = Instant::now() + REPLAY_WAIT;
    loop {
        if session.query_column(&check).await?.first().is_some_and(|shown| shown == "true") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Fault::Postgres {
                database: session.database().to_string(),
                code: None,
                message: format!(
                    "the reader did not show the revocation within {} s (replica lag); its sessions were not ended yet",
                    REPLAY_WAIT.as_secs()
                ),
            });
        }
        tokio::time::sleep(REPLAY_POLL).await;
    }
}
