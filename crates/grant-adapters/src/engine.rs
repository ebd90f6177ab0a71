//! The database side of a grant, behind one trait: what creating, extending and revoking access means in a
//! database, for each engine (`engine` in the config). Everything above it (requests, the table, leases, the
//! reaper, events) is the same for both; the order that keeps a crash safe is too: the row is written before the
//! access exists, and access takes effect only once the row says `active` ([`Prepared::commit`]).

use crate::config_source::ConfigSource;
use crate::error::Fault;
use crate::mysql_engine::MysqlEngine;
use crate::pg::Connections;
use crate::postgres_engine::PgEngine;
use crate::repo::GrantRepo;
use crate::Cluster;
use chrono::{DateTime, Utc};
use grant_model::escalation::{check_db_user, check_grantable, UserFacts};
use grant_model::{ClientError, Config, ConfigError, Engine as EngineKind, Grant, Password, SslMode, TargetConfig};

/// Why an escalation could not be prepared: the caller's mistake (an unknown user, a role already held), or a
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Fault(#[from] Fault),
}

/// A temporary user to create (or give a fresh password) for `grant`.
pub struct TempUserSpec<'a> {
    pub grant: &'a Grant,
    pub target: &'a TargetConfig,
    /// None for `auth: iam` (PostgreSQL only).
    pub password: Option<&'a Password>,
    /// The marker and retired roles' prefix: the one the grant was made under.
    pub prefix: &'a str,
    pub sslmode: SslMode,
}

/// A change made in the database but not in effect yet: it takes effect with [`Prepared::commit`], which the
/// caller runs only once the grant's row records it. Dropped without a commit, it is undone where the engine can
/// (PostgreSQL rolls the transaction back); where it cannot (MySQL DDL), what is left stays locked and is found
/// by the write-ahead row or the orphan sweep.
#[async_trait::async_trait]
pub trait Prepared: Send {
    async fn commit(self: Box<Self>) -> Result<(), Fault>;
}

/// One configured database's engine.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// Whether a creation that failed before its commit left nothing behind (PostgreSQL: one transaction). If
    /// not (MySQL DDL commits statement by statement), a failed grant is cleaned up through the revocation
    /// routine before it is recorded `failed`, and stays `pending` for the reaper if that cleanup fails.
    fn failed_creation_leaves_nothing(&self) -> bool;

    /// Creates a temporary user (login until the grant's `expires_at`, the target's roles and statements, the
    /// marker role), not usable before the commit.
    async fn prepare_temp_user(&self, user: &TempUserSpec<'_>) -> Result<Box<dyn Prepared + '_>, Fault>;

    /// A fresh password for a live grant's temporary user (a retried grant), making the user again if an earlier
    /// attempt recorded the grant but did not complete it.
    async fn renew_temp_user(&self, user: &TempUserSpec<'_>) -> Result<(), Fault>;

    /// Whether `grant`'s escalation may be made: the user exists, is an ordinary login, and does not hold a
    /// target role outside our live grants. Changes nothing.
    async fn check_escalation(&self, store: &dyn GrantRepo, grant: &Grant, prefix: &str) -> Result<(), Refused>;

    /// Checks again under the user's lock, and grants the roles; in effect at the commit.
    async fn prepare_escalation(
        &self,
        store: &dyn GrantRepo,
        grant: &Grant,
        prefix: &str,
    ) -> Result<Box<dyn Prepared + '_>, Refused>;

    /// Moves the expiry inside the database of a temporary user made under `prefix` to `expires_at`.
    async fn prepare_extension(
        &self,
        grant: &Grant,
        prefix: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Box<dyn Prepared + '_>, Fault>;

    /// Drops temporary user `user` made under `prefix`, after checking it is one of ours, ending its sessions
    /// first. False if it was gone.
    async fn drop_temp_user(&self, user: &str, prefix: &str) -> Result<bool, Fault>;

    /// Takes back the roles `grant` gave that no other live grant provides, and ends the user's sessions.
    async fn revoke_escalation(&self, store: &dyn GrantRepo, grant: &Grant) -> Result<(), Fault>;

    /// The temporary users made under `prefix` (the marker role's members), for the orphan sweep.
    async fn temp_users(&self, prefix: &str) -> Result<Vec<String>, Fault>;

    /// Revokes memberships in `roles` that the admin granted and no live grant accounts for; returns
    /// `(user, role)` of each. Engines that record no grantor for memberships (MySQL) do not reconcile.
    async fn reconcile(
        &self,
        store: &dyn GrantRepo,
        roles: &[String],
        markers: &[String],
        live: &[Grant],
    ) -> Result<Vec<(String, String)>, Fault>;
}

/// The engine of configured database `name`. A database no longer in the config is a config fault: its grants
/// cannot be revoked until it is configured again, and the reaper keeps retrying them.
pub fn for_database<'c>(
    connections: &'c Connections,
    source: &'c ConfigSource,
    config: &'c Config,
    name: &'c str,
) -> Result<Box<dyn Engine + 'c>, Fault> {
    let db = config.databases.get(name).ok_or_else(|| {
        Fault::Config(ConfigError(format!("database {name:?} is not configured, so access in it cannot be revoked")))
    })?;
    Ok(match db.engine {
        EngineKind::Postgres => Box::new(PgEngine { cluster: Cluster { connections, source, name, db } }),
        EngineKind::Mysql => Box::new(MysqlEngine { connections: &connections.mysql, source, name, db }),
    })
}

/// What an escalation's check decides the same way on every engine, given the user's facts (five `true`/`false`
/// texts, as `sql::user_facts` and `mysql::user_facts` give them) and memberships.
pub(crate) async fn check_user_and_roles(
    store: &dyn GrantRepo,
    grant: &Grant,
    prefix: &str,
    facts: &[String],
    memberships: &[String],
) -> Result<(), Refused> {
    let flag = |i: usize| facts.get(i).is_some_and(|v| v == "true");
    let facts = UserFacts {
        can_login: flag(0),
        superuser: flag(1),
        has_members: flag(2),
        is_admin: flag(3),
        is_temporary_user: flag(4),
    };
    check_db_user(grant.db_user(), prefix, &facts)?;
    let mut live = store.live_grants_for_user(grant.database(), grant.db_user()).await?;
    live.retain(|g| g.grant_id() != grant.grant_id());
    check_grantable(grant.db_user(), grant.roles(), memberships, &live)?;
    Ok(())
}
