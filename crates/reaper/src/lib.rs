//! The reaper: keeps the product's promise that no access outlives its grant. Each pass finds expired active
//! grants and abandoned pending ones through the sparse expiry index (never a Scan), claims each with a lease,
//! revokes through the shared routine and records the outcome; then drops temporary users no live grant
//! accounts for. A failure is recorded and retried next pass, never given up on, and never blocks the others.

mod metrics;

use futures::stream::{self, StreamExt};
use grant_adapters::{ConfigSource, Connections, Fault, GrantStore, Revoker, Settings};
use grant_model::grant::{format_time, now_seconds, REAPER, REVOCATION_LEASE_SECONDS};
use grant_model::{Config, Grant, Reap, RevokedBy, Strategy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Databases revoked in parallel; within one database work is sequential on its one admin connection.
const PARALLEL_DATABASES: usize = 4;
/// No new grant is started with less time than this left before the Lambda deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
/// Time for a new grant's row to reach the (eventually consistent) index before a user missing from it is
/// taken for an orphan.
const INDEX_SETTLE: Duration = Duration::from_secs(1);

pub struct Reaper {
    pub settings: Settings,
    pub store: GrantStore,
    pub source: ConfigSource,
    pub connections: Connections,
}

/// The SPEC's pass summary: the reaper's result.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub examined: usize,
    pub revoked: usize,
    pub failed: usize,
    pub orphans_dropped: usize,
    pub deferred: usize,
    pub duration_ms: u64,
    /// For the `Overdue` metric, not part of the SPEC's result.
    #[serde(skip)]
    pub overdue: usize,
}

enum Outcome {
    Done,
    Failed,
    /// Someone else holds it, or it changed (extended, revoked) since it was read.
    Skipped,
}

impl Reaper {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings) -> Reaper {
        Reaper::with_store(GrantStore::new(sdk, &settings.grants_table), sdk, settings)
    }

    pub fn with_store(store: GrantStore, sdk: &aws_config::SdkConfig, settings: Settings) -> Reaper {
        Reaper { store, source: ConfigSource::new(sdk, &settings), connections: Connections::default(), settings }
    }

    pub async fn from_env() -> Result<Reaper, Fault> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Reaper::new(&sdk, settings))
    }

    fn revoker(&self) -> Revoker<'_> {
        Revoker { store: &self.store, connections: &self.connections, source: &self.source }
    }

    /// One pass. Faults that stop the whole pass (config or table unreadable) are function errors; a single
    /// grant's failure is counted and recorded on its row.
    pub async fn run_pass(&self, deadline: Instant) -> Result<Summary, Fault> {
        let outcome = self.pass(deadline).await;
        if let Err(fault) = &outcome {
            // The function error says only its type to whoever invoked; the reason must be in the log.
            tracing::error!(error = %fault, kind = fault.kind(), "reaper pass failed; the next scheduled pass retries");
        }
        outcome
    }

    async fn pass(&self, deadline: Instant) -> Result<Summary, Fault> {
        let started = Instant::now();
        let now = now_seconds();
        let config = self.source.config().await?;
        // Both reads in flight at once: on DynamoDB a pass waits for one round of queries, not two.
        let (mut found, pending) =
            futures::try_join!(self.store.expired_active(now.timestamp()), self.store.pending())?;
        found.extend(pending);
        let mut summary = Summary { examined: found.len(), ..Summary::default() };
        let owner = format!("reaper:{}", uuid::Uuid::new_v4());

        let mut by_database: BTreeMap<String, Vec<(Grant, Reap)>> = BTreeMap::new();
        for grant in found {
            if let Some(reap) = grant.reap(now, self.settings.pending_grace) {
                by_database.entry(grant.database.clone()).or_default().push((grant, reap));
            }
        }
        let results: Vec<(Summary, Vec<Grant>)> = stream::iter(by_database.into_values())
            .map(|work| self.reap_database(&config, work, &owner, deadline))
            .buffer_unordered(PARALLEL_DATABASES)
            .collect()
            .await;
        for (part, still_live) in results {
            summary.revoked += part.revoked;
            summary.failed += part.failed;
            summary.deferred += part.deferred;
            summary.overdue += still_live.iter().filter(|g| g.is_overdue(now)).count();
        }

        if remaining(deadline) > DEADLINE_MARGIN {
            let (dropped, failed) = self.sweep_orphans(&config).await;
            summary.orphans_dropped = dropped;
            summary.failed += failed;
        }
        summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        metrics::emit(&summary);
        tracing::info!(
            examined = summary.examined,
            revoked = summary.revoked,
            failed = summary.failed,
            orphans_dropped = summary.orphans_dropped,
            deferred = summary.deferred,
            overdue = summary.overdue,
            duration_ms = summary.duration_ms,
            "reaper pass done"
        );
        Ok(summary)
    }

    /// One database's work, oldest first. Returns the counts and the grants that are still live afterwards.
    async fn reap_database(
        &self,
        config: &Config,
        work: Vec<(Grant, Reap)>,
        owner: &str,
        deadline: Instant,
    ) -> (Summary, Vec<Grant>) {
        let mut summary = Summary::default();
        let mut still_live = Vec::new();
        for (grant, reap) in work {
            if remaining(deadline) <= DEADLINE_MARGIN {
                summary.deferred += 1;
                still_live.push(grant);
                continue;
            }
            match self.reap_one(config, &grant, reap, owner).await {
                Ok(Outcome::Done) => summary.revoked += 1,
                Ok(Outcome::Skipped) => {}
                Ok(Outcome::Failed) => {
                    summary.failed += 1;
                    still_live.push(grant);
                }
                Err(fault) => {
                    tracing::error!(grant_id = %grant.grant_id, error = %fault, "could not record the outcome");
                    summary.failed += 1;
                    still_live.push(grant);
                }
            }
        }
        (summary, still_live)
    }

    async fn reap_one(&self, config: &Config, grant: &Grant, reap: Reap, owner: &str) -> Result<Outcome, Fault> {
        let only_if_expired = reap == Reap::Expired;
        if !self.store.claim(grant, owner, REVOCATION_LEASE_SECONDS, only_if_expired).await? {
            tracing::info!(grant_id = %grant.grant_id, "skipped: claimed or changed by another invocation");
            return Ok(Outcome::Skipped);
        }
        let now = now_seconds();
        let mut recorded = grant.clone();
        let outcome = match self.revoker().revoke_access(config, grant).await {
            Ok(()) => {
                match reap {
                    Reap::Expired => recorded.revoke(now, &RevokedBy::Expiry, "expired", self.settings.retention),
                    Reap::AbandonedPending => recorded.fail(
                        now,
                        "provisioning did not complete within PENDING_GRACE_SECONDS; whatever it created was removed",
                        REAPER,
                        self.settings.retention,
                    ),
                }
                .map_err(|e| Fault::Busy(e.message))?;
                tracing::info!(grant_id = %grant.grant_id, db_user = %grant.db_user, expired_at = %format_time(grant.expires_at), ?reap, "revoked");
                Outcome::Done
            }
            Err(fault) => {
                recorded.record_revoke_failure(&fault.to_string());
                tracing::error!(grant_id = %grant.grant_id, db_user = %grant.db_user, attempts = recorded.revoke_attempts, error = %fault, "revocation failed; retried next pass");
                Outcome::Failed
            }
        };
        if !self.store.replace_claimed(grant, &recorded, owner).await? {
            return Err(Fault::Busy(format!("lost the lease on grant {} before recording", grant.grant_id)));
        }
        Ok(outcome)
    }

    /// Drops temporary users that no live grant accounts for. Returns (dropped, failed).
    async fn sweep_orphans(&self, config: &Config) -> (usize, usize) {
        let orphans = match self.orphans(config).await {
            Ok(orphans) => orphans,
            // Not a failed revocation (those are counted per grant); the sweep runs again next pass.
            Err(fault) => {
                tracing::error!(error = %fault, "orphan sweep skipped: the live grants could not be read");
                return (0, 0);
            }
        };
        let (mut dropped, mut failed) = (0, 0);
        for MarkedUser { database, user } in orphans {
            match self.revoker().drop_orphan(config, &database, &user).await {
                Ok(false) => {} // another pass dropped it first
                Ok(true) => {
                    tracing::warn!(database, db_user = %user, revoked_by = "orphan-cleanup", "dropped a temporary user no live grant accounts for");
                    dropped += 1;
                }
                Err(fault) => {
                    tracing::error!(database, db_user = %user, error = %fault, "could not drop orphan");
                    failed += 1;
                }
            }
        }
        (dropped, failed)
    }

    /// Marked users without a live grant, seen so twice: the users of every database are read before the grants
    /// (a grant's row is written before its user is created), and the index is given a moment to show rows
    /// written just now. The live grants are read once for all databases, and only if some user is marked.
    async fn orphans(&self, config: &Config) -> Result<Vec<MarkedUser>, Fault> {
        let mut marked = Vec::new();
        for database in config.databases.keys() {
            match self.revoker().marked_users(config, database).await {
                Ok(users) => {
                    marked.extend(users.into_iter().map(|user| MarkedUser { database: database.clone(), user }))
                }
                Err(fault) => tracing::error!(database, error = %fault, "orphan sweep skipped for this database"),
            }
        }
        if marked.is_empty() {
            return Ok(marked);
        }
        let mut candidates = self.unaccounted(marked).await?;
        if !candidates.is_empty() {
            tokio::time::sleep(INDEX_SETTLE).await;
            candidates = self.unaccounted(candidates).await?;
        }
        Ok(candidates)
    }

    /// Roles, and so the marker role's members, are cluster-wide: two config entries may name databases of one
    /// cluster. A user is accounted for by a live grant of any entry (temporary user names are unique).
    async fn unaccounted(&self, users: Vec<MarkedUser>) -> Result<Vec<MarkedUser>, Fault> {
        let live: BTreeSet<String> = self
            .store
            .live_grants()
            .await?
            .into_iter()
            .filter(|g| g.strategy == Strategy::TempUser)
            .map(|g| g.db_user)
            .collect();
        Ok(users.into_iter().filter(|u| !live.contains(&u.user)).collect())
    }
}

/// A member of the marker role in one configured database.
struct MarkedUser {
    database: String,
    user: String,
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The Lambda deadline (epoch milliseconds) as an Instant.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
