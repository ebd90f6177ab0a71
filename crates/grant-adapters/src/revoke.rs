//! The one revocation operation: claim -> revoke -> record, used by the reaper, the provisioner's `revoke` and
//! `grantctl revoke`. Revoking means: the access the grant gave is gone from the database, and nothing else is.
//! It is idempotent: a missing role is success.
//!
//! The order is what makes a crash at any line safe. The claim (a lease, written conditionally) comes first, so
//! no one else acts on the grant and no overlapping grant counts it as keeping a role. The database work comes
//! next; the outcome is recorded last, under the same lease. A crash before the record leaves the row live with a
//! lease that runs out, and the next attempt repeats the (idempotent) work.

use crate::config_source::ConfigSource;
use crate::delivery::Delivery;
use crate::engine::{self, Engine};
use crate::error::{Conflict, Fault};
use crate::pg::Connections;
use crate::repo::GrantRepo;
use crate::store::Expect;
use grant_model::grant::{now_seconds, Retention, REAPER};
use grant_model::{Config, Grant, Lease, Purpose, Reap, RevokedBy, Status, Strategy};

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
        let engine = self.engine(config, grant.database())?;
        match grant.strategy() {
            Strategy::TempUser => {
                let prefix = grant.user_prefix(&config.user_prefix);
                engine.drop_temp_user(grant.db_user(), prefix).await.map(drop)?;
            }
            Strategy::RoleEscalation => engine.revoke_escalation(self.store, grant).await?,
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
        self.engine(config, database)?.drop_temp_user(user, prefix).await
    }

    /// The engine of a configured database (see [`engine::for_database`]).
    pub fn engine<'c>(&'c self, config: &'c Config, database: &'c str) -> Result<Box<dyn Engine + 'c>, Fault> {
        engine::for_database(self.connections, self.source, config, database)
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
