//! The one revocation routine, shared by the provisioner's `revoke` and the reaper. Revoking means: the access
//! the grant gave is gone from the database, and nothing else is. It is idempotent: a missing role is success.

use crate::config_source::ConfigSource;
use crate::error::Fault;
use crate::pg::{self, Connections, Session};
use crate::store::GrantStore;
use grant_model::escalation::roles_to_revoke;
use grant_model::{sql, Config, ConfigError, Grant, Strategy};

/// SQLSTATE undefined_object: the role is already gone.
const UNDEFINED_OBJECT: &str = "42704";

pub struct Revoker<'a> {
    pub store: &'a GrantStore,
    pub connections: &'a Connections,
    pub source: &'a ConfigSource,
}

impl Revoker<'_> {
    /// Takes away the database access `grant` gave. Does not touch the grant's row: the caller records the
    /// outcome with its own conditional write.
    pub async fn revoke_access(&self, config: &Config, grant: &Grant) -> Result<(), Fault> {
        let mut session = self.session(config, &grant.database).await?;
        let outcome = match grant.strategy {
            Strategy::TempUser => drop_temp_user(&mut session, &grant.db_user, &config.marker_role()).await.map(drop),
            Strategy::RoleEscalation => self.revoke_escalation(&mut session, grant).await,
        };
        match outcome {
            Err(fault) if fault.sqlstate() == Some(UNDEFINED_OBJECT) => Ok(()),
            other => other,
        }
    }

    /// Drops a temporary user that no live grant accounts for (a crash left it behind). False if it was gone.
    pub async fn drop_orphan(&self, config: &Config, database: &str, username: &str) -> Result<bool, Fault> {
        let mut session = self.session(config, database).await?;
        match drop_temp_user(&mut session, username, &config.marker_role()).await {
            Err(fault) if fault.sqlstate() == Some(UNDEFINED_OBJECT) => Ok(false),
            other => other,
        }
    }

    /// The temporary users in `database` (members of the marker role), live grant or not.
    pub async fn marked_users(&self, config: &Config, database: &str) -> Result<Vec<String>, Fault> {
        let mut session = self.session(config, database).await?;
        session.query_column(&sql::marker_members(&config.marker_role())).await
    }

    /// The admin session for a configured database. A database no longer in the config is a config fault: its
    /// grants cannot be revoked until it is configured again, and the reaper keeps retrying them.
    async fn session(&self, config: &Config, database: &str) -> Result<Session, Fault> {
        let db = config.databases.get(database).ok_or_else(|| {
            Fault::Config(ConfigError(format!(
                "database {database:?} is not configured, so access in it cannot be revoked"
            )))
        })?;
        self.connections.session(database, db, self.source).await
    }

    async fn revoke_escalation(&self, session: &mut Session, grant: &Grant) -> Result<(), Fault> {
        let database = session.database().to_string();
        let fault = |e: tokio_postgres::Error| Fault::postgres(&database, &e);
        let tx = session.client().transaction().await.map_err(fault)?;
        // Under the user's lock, no grant of an overlapping role can commit between this check and the REVOKE.
        pg::execute(&tx, &sql::lock_user(&grant.db_user)).await.map_err(fault)?;
        let live = self.store.live_grants_for_user(&grant.database, &grant.db_user).await?;
        let roles = roles_to_revoke(grant, &live);
        if roles.is_empty() {
            return tx.commit().await.map_err(fault);
        }
        pg::execute(&tx, &sql::revoke_roles(&grant.db_user, &roles)).await.map_err(fault)?;
        tx.commit().await.map_err(fault)?;
        session.execute(&sql::terminate_sessions(&grant.db_user)).await?;
        Ok(())
    }
}

/// Drops a temporary user, after checking it is one of ours: a role outside the marker role is never dropped,
/// whatever the table says. False if there was nothing to drop.
async fn drop_temp_user(session: &mut Session, username: &str, marker_role: &str) -> Result<bool, Fault> {
    if session.query_column(&sql::role_exists(username)).await?.is_empty() {
        return Ok(false);
    }
    let memberships = session.query_column(&sql::memberships(username)).await?;
    if !memberships.iter().any(|m| m == marker_role) {
        return Err(Fault::Postgres {
            database: session.database().to_string(),
            code: None,
            message: format!("refusing to drop role {username:?}: it is not a member of {marker_role:?}"),
        });
    }
    session.run_plan(&sql::revoke_temp_user(username)).await?;
    Ok(true)
}
