//! The one revocation operation: claim -> revoke -> record, used by the reaper, the provisioner's `revoke` and
//! `grantctl revoke`. Revoking means: the access the grant gave is gone from the database, and nothing else is.
//! It is idempotent: a missing role is success.
//!
//! The order is what makes a crash at any line safe. The claim (a lease, written conditionally) comes first, so
//! no one else acts on the grant and no overlapping grant counts it as keeping a role. The database work comes
//! next; the outcome is recorded last, under the same lease. A crash before the record leaves the row live with a
//! lease that runs out, and the next attempt repeats the (idempotent) work.

use crate::cluster::{self, Cluster};
use crate::config_source::ConfigSource;
use crate::delivery::Delivery;
use crate::error::{Conflict, Fault};
use crate::pg::{self, Connections, Session};
use crate::repo::GrantRepo;
use crate::store::Expect;
use grant_model::escalation::{roles_ending, roles_to_revoke};
use grant_model::grant::{now_seconds, Retention, REAPER};
use grant_model::sql::Change;
use grant_model::{naming, sql, Config, ConfigError, Grant, Lease, Purpose, Reap, RevokedBy, Status, Strategy};

/// SQLSTATE duplicate_object: one of our own roles was created concurrently.
const DUPLICATE_OBJECT: &str = "42710";

/// Why a grant is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The reaper: an expired grant, or a `pending` one whose provisioning died.
    Reap(Reap),
    /// Someone ended it early (the provisioner's `revoke`, `grantctl revoke`).
    Manual { actor: String, note: String },
}

/// What came of one attempt.
#[derive(Debug)]
pub enum Outcome {
    /// The access is gone and the row says so.
    Done(Grant),
    /// The database work failed; the failure is recorded on the row, which stays live and is retried.
    Failed { grant: Grant, fault: Fault },
    /// Someone else holds the grant, or it changed since it was read: nothing was done.
    Skipped(Conflict),
}

pub struct Revocation<'a> {
    pub store: &'a dyn GrantRepo,
    pub connections: &'a Connections,
    pub source: &'a ConfigSource,
    /// Where delivered credentials are deleted from.
    pub delivery: &'a Delivery,
    pub retention: Retention,
    /// Who acts, for lease owners and history: `reaper`, `provisioner`, `grantctl`.
    pub holder: &'a str,
}

impl Revocation<'_> {
    /// Claims `grant` as read, takes its access away, records the outcome.
    pub async fn run(&self, config: &Config, grant: &Grant, why: &Why) -> Result<Outcome, Fault> {
        let lease = Lease::new(Purpose::Revoke, self.holder, &uuid::Uuid::new_v4().to_string(), now_seconds());
        let only_if_expired = *why == Why::Reap(Reap::Expired);
        let Some(claimed) = self.store.claim(grant, lease.clone(), only_if_expired).await? else {
            return Ok(Outcome::Skipped(Conflict::ChangedMeanwhile));
        };
        let (outcome, recorded) = match self.revoke_access(config, &claimed).await {
            Ok(()) => {
                // The claim held the row as read: a refusal here is a broken invariant, not anyone's request.
                let done = self.ended(&claimed, why).map_err(|e| Fault::Invariant(e.to_string()))?;
                (None, done)
            }
            Err(fault) => {
                let mut failed = claimed.clone();
                failed.record_revoke_failure(now_seconds(), &fault.to_string());
                (Some(fault), failed)
            }
        };
        if !self.store.replace(&claimed, &recorded, Expect::Holding(&lease)).await? {
            return Err(Fault::conflict(grant.grant_id(), Conflict::LeaseLost));
        }
        Ok(match outcome {
            None => Outcome::Done(recorded),
            Some(fault) => Outcome::Failed { grant: recorded, fault },
        })
    }

    /// The row as it is recorded once the access is gone.
    fn ended(&self, claimed: &Grant, why: &Why) -> Result<Grant, grant_model::TransitionError> {
        let now = now_seconds();
        let mut ended = claimed.clone();
        match why {
            Why::Reap(Reap::Expired) => ended.revoke(now, &RevokedBy::Expiry, "expired", self.retention)?,
            Why::Reap(Reap::AbandonedPending) => ended.fail(
                now,
                "provisioning did not complete within PENDING_GRACE_SECONDS; whatever it created was removed",
                REAPER,
                self.retention,
            )?,
            Why::Manual { actor, note } => ended.revoke(now, &RevokedBy::Actor(actor.clone()), note, self.retention)?,
        }
        Ok(ended)
    }

    /// Takes away the database access `grant` gave, and the secret or parameter its credentials were delivered to;
    /// does not touch the row. Also what a provisioning that failed or died runs, so whatever it may have created
    /// is gone.
    pub async fn revoke_access(&self, config: &Config, grant: &Grant) -> Result<(), Fault> {
        let cluster = self.cluster(config, grant.database())?;
        let mut session = cluster.writer().await?;
        match grant.strategy() {
            Strategy::TempUser => {
                let prefix = grant.user_prefix(&config.user_prefix);
                drop_temp_user(&cluster, &mut session, grant.db_user(), prefix).await.map(drop)?;
            }
            Strategy::RoleEscalation => self.revoke_escalation(&cluster, &mut session, grant).await?,
        }
        // --- delivered credentials (issue 12): after the user is gone, so a failure here is retried as a whole.
        if let Some(location) = grant.credentials_ref() {
            self.delivery.delete(&location).await?;
        }
        Ok(())
    }

    /// Drops a temporary user of `prefix` that no live grant accounts for (a crash left it behind). False if it
    /// was gone.
    pub async fn drop_orphan(&self, config: &Config, database: &str, prefix: &str, user: &str) -> Result<bool, Fault> {
        let cluster = self.cluster(config, database)?;
        let mut session = cluster.writer().await?;
        drop_temp_user(&cluster, &mut session, user, prefix).await
    }

    /// The admin session for a configured database, on its writer.
    pub async fn session(&self, config: &Config, database: &str) -> Result<Session, Fault> {
        self.cluster(config, database)?.writer().await
    }

    /// A configured database and its instances. A database no longer in the config is a config fault: its
    /// grants cannot be revoked until it is configured again, and the reaper keeps retrying them.
    pub fn cluster<'c>(&'c self, config: &'c Config, database: &'c str) -> Result<Cluster<'c>, Fault> {
        let db = config.databases.get(database).ok_or_else(|| {
            Fault::Config(ConfigError(format!(
                "database {database:?} is not configured, so access in it cannot be revoked"
            )))
        })?;
        Ok(Cluster { connections: self.connections, source: self.source, name: database, db })
    }

    /// Under the user's lock, takes back the roles the user holds that no other grant provides (read strongly
    /// consistently under the lock), then ends the user's sessions on every instance: one that ran `SET ROLE`
    /// keeps the role's rights until it ends.
    async fn revoke_escalation(
        &self,
        cluster: &Cluster<'_>,
        session: &mut Session,
        grant: &Grant,
    ) -> Result<(), Fault> {
        let database = session.database().to_string();
        let fault = |e: tokio_postgres::Error| Fault::postgres(&database, &e);
        let tx = session.client().transaction().await.map_err(fault)?;
        pg::execute(&tx, &sql::lock_user(grant.db_user())).await.map_err(fault)?;
        if pg::query_column(&tx, &sql::role_exists(grant.db_user())).await.map_err(fault)?.is_empty() {
            return Ok(()); // the user is gone, and with it every membership
        }
        let others = self.store.live_grants_for_user(grant.database(), grant.db_user()).await?;
        let memberships = pg::query_column(&tx, &sql::memberships(grant.db_user())).await.map_err(fault)?;
        let now = now_seconds();
        let roles = roles_to_revoke(grant, &others, &memberships, now);
        if !roles.is_empty() {
            pg::execute(&tx, &sql::revoke_roles(grant.db_user(), &roles)).await.map_err(fault)?;
        }
        tx.commit().await.map_err(fault)?;
        // Also when nothing was left to revoke: an earlier attempt may have revoked and then failed on a reader.
        let ending = roles_ending(grant, &others, now);
        end_sessions(cluster, session, grant.db_user(), &ending).await
    }
}

/// Revokes memberships that no grant accounts for (the reconciler): under the user's lock, re-checked against
/// the live grants read strongly consistently; then ends the user's sessions. Returns the roles revoked.
pub async fn revoke_unaccounted(
    store: &dyn GrantRepo,
    cluster: &Cluster<'_>,
    session: &mut Session,
    database: &str,
    db_user: &str,
    roles: &[String],
) -> Result<Vec<String>, Fault> {
    let name = session.database().to_string();
    let fault = |e: tokio_postgres::Error| Fault::postgres(&name, &e);
    let tx = session.client().transaction().await.map_err(fault)?;
    pg::execute(&tx, &sql::lock_user(db_user)).await.map_err(fault)?;
    let live = store.live_grants_for_user(database, db_user).await?;
    let memberships = pg::query_column(&tx, &sql::memberships(db_user)).await.map_err(fault)?;
    let drift: Vec<String> = roles
        .iter()
        .filter(|role| memberships.contains(role) && !live.iter().any(|g| g.accounts_for(role)))
        .cloned()
        .collect();
    if !drift.is_empty() {
        pg::execute(&tx, &sql::revoke_roles(db_user, &drift)).await.map_err(fault)?;
    }
    tx.commit().await.map_err(fault)?;
    end_sessions(cluster, session, db_user, &drift).await?;
    Ok(drift)
}

/// Ends `db_user`'s sessions on the writer and every reader (each once it no longer shows a membership in
/// `roles`), if `roles` took any rights away.
async fn end_sessions(
    cluster: &Cluster<'_>,
    writer: &mut Session,
    db_user: &str,
    roles: &[String],
) -> Result<(), Fault> {
    if roles.is_empty() {
        return Ok(());
    }
    writer.execute(&sql::terminate_sessions(db_user)).await?;
    cluster.end_sessions_on_readers(db_user, Change::MembershipsRevoked { db_user, roles }).await
}

/// Drops a temporary user, after checking it is one of ours (a member of the marker role of the prefix it was
/// made under): a role outside it is never dropped, whatever the table says. False if there was nothing to drop.
///
/// In order: login and memberships off (committed), sessions ended on the writer, then on every reader once it
/// shows that, the user cleaned out of every other database of the cluster, and last the configured database
/// cleaned and the role dropped. Each step is idempotent, so an attempt that fails anywhere is simply repeated.
async fn drop_temp_user(
    cluster: &Cluster<'_>,
    session: &mut Session,
    username: &str,
    prefix: &str,
) -> Result<bool, Fault> {
    let marker = naming::marker_role(prefix);
    let memberships = match session.query_column(&sql::role_exists(username)).await?.is_empty() {
        true => return Ok(false),
        false => session.query_column(&sql::memberships(username)).await?,
    };
    if !memberships.contains(&marker) {
        return Err(Fault::Postgres {
            database: session.database().to_string(),
            code: None,
            message: format!("refusing to drop role {username:?}: it is not a member of {marker:?}"),
        });
    }
    let retired = naming::retired_role(prefix);
    ensure_own_role(session, &retired, Join::Admin).await?;
    let (schemas, definer_routines) = cluster::cleanup_facts(session, username, &retired).await?;
    let roles: Vec<String> = memberships.into_iter().filter(|m| *m != marker).collect();
    let plan = sql::revoke_temp_user(&sql::TempUserRevocation {
        username,
        retired_role: &retired,
        roles: &roles,
        definer_routines: &definer_routines,
        schemas: &schemas,
    });
    // Disable and terminate on the writer; the last step cleans the configured database and drops the role.
    let (on_writer, clean_and_drop) = plan.split_at(2);
    session.run_plan(on_writer).await?;
    cluster.end_sessions_on_readers(username, Change::LoginDisabled { username }).await?;
    cluster.clean_other_databases(session, username, &retired).await?;
    session.run_plan(clean_and_drop).await?;
    Ok(true)
}

/// Whether the admin joins a role of ours it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// `retired`: REASSIGN OWNED to it needs the admin's membership.
    Admin,
    /// The marker: its members are taken for temporary users, so the admin must never be one.
    Nobody,
}

/// Creates one of this system's NOLOGIN roles (the marker, `retired`) if it is missing.
pub async fn ensure_own_role(session: &mut Session, role: &str, join: Join) -> Result<(), Fault> {
    if !session.query_column(&sql::role_exists(role)).await?.is_empty() {
        return Ok(());
    }
    match session.execute(&sql::create_own_role(role)).await {
        Err(fault) if fault.sqlstate() != Some(DUPLICATE_OBJECT) => return Err(fault),
        _ => {}
    }
    match join {
        Join::Admin => session.execute(&sql::join_own_role(role)).await,
        Join::Nobody => Ok(()),
    }
}

/// A live grant in `status` may be revoked by hand; others are the caller's mistake.
pub fn manual_revocable(grant: &Grant) -> Result<(), grant_model::ClientError> {
    match grant.status() {
        Status::Active | Status::Revoked => Ok(()),
        Status::Pending | Status::Failed => Err(grant_model::ClientError::invalid_state(format!(
            "grant {} is {}: there is no access to revoke",
            grant.grant_id(),
            grant.status()
        ))),
    }
}
