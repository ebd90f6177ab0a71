//! The reaper: keeps the product's promise that no access outlives its grant. Each pass finds expired active
//! grants and abandoned pending ones through the sparse expiry index (never a Scan), claims each with a lease,
//! revokes through the shared routine and records the outcome; then drops temporary users no live grant
//! accounts for. A failure is recorded and retried next pass, never given up on, and never blocks the others.

mod metrics;

use futures::stream::{self, StreamExt};
use grant_adapters::revoke::revoke_unaccounted;
use grant_adapters::store::Attempts;
use grant_adapters::{ConfigSource, Connections, Fault, GrantStore, Outcome, Revocation, Settings, Why};
use grant_model::grant::{format_time, now_seconds, REAPER};
use grant_model::{naming, sql, Config, Grant, Strategy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Databases revoked in parallel; within one database work is sequential on its one admin connection.
const PARALLEL_DATABASES: usize = 4;
/// Items read per index partition and call: the most a pass holds in memory at once is this times 8.
const PAGE_SIZE: i32 = 100;
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
    pub drift_revoked: usize,
    pub deferred: usize,
    pub duration_ms: u64,
    /// For the `Overdue` metric, not part of the SPEC's result.
    #[serde(skip)]
    pub overdue: usize,
}

impl Summary {
    fn add(&mut self, part: &Summary) {
        self.revoked += part.revoked;
        self.failed += part.failed;
        self.deferred += part.deferred;
        self.overdue += part.overdue;
    }
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

    fn revocation(&self) -> Revocation<'_> {
        Revocation {
            store: &self.store,
            connections: &self.connections,
            source: &self.source,
            retention: self.settings.retention,
            holder: REAPER,
        }
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

    /// Abandoned `pending` rows first, then expired grants never tried, then those whose earlier attempts failed
    /// and whose backoff has run out: a database that keeps failing cannot starve new expiries. Each read is a
    /// page at a time.
    async fn pass(&self, deadline: Instant) -> Result<Summary, Fault> {
        let started = Instant::now();
        let now = now_seconds();
        let config = self.source.config().await?;
        let mut summary = Summary::default();
        let pending = self.store.pending().await?;
        summary.examined += pending.len();
        summary.add(&self.reap_page(&config, pending, deadline).await);
        for attempts in [Attempts::First, Attempts::DueRetries] {
            let mut pages = self.store.expired_active(now.timestamp(), attempts, PAGE_SIZE);
            while let Some(page) = pages.next().await {
                let page = page?;
                summary.examined += page.len();
                summary.add(&self.reap_page(&config, page, deadline).await);
                if remaining(deadline) <= DEADLINE_MARGIN {
                    break; // what is left unread is read first next pass
                }
            }
        }
        if remaining(deadline) > DEADLINE_MARGIN {
            let (dropped, failed) = self.sweep_orphans(&config).await;
            summary.orphans_dropped = dropped;
            summary.failed += failed;
        }
        if remaining(deadline) > DEADLINE_MARGIN {
            let (revoked, failed) = self.reconcile(&config).await;
            summary.drift_revoked = revoked;
            summary.failed += failed;
        }
        summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        metrics::emit(&summary);
        tracing::info!(
            examined = summary.examined,
            revoked = summary.revoked,
            failed = summary.failed,
            orphans_dropped = summary.orphans_dropped,
            drift_revoked = summary.drift_revoked,
            deferred = summary.deferred,
            overdue = summary.overdue,
            duration_ms = summary.duration_ms,
            "reaper pass done"
        );
        Ok(summary)
    }

    /// The grants of one page that need the reaper now, databases in parallel.
    async fn reap_page(&self, config: &Config, page: Vec<Grant>, deadline: Instant) -> Summary {
        let now = now_seconds();
        let mut by_database: BTreeMap<String, Vec<(Grant, Why)>> = BTreeMap::new();
        for grant in page {
            if let Some(reap) = grant.reap(now, self.settings.pending_grace) {
                by_database.entry(grant.database.clone()).or_default().push((grant, Why::Reap(reap)));
            }
        }
        let parts: Vec<Summary> = stream::iter(by_database.into_values())
            .map(|work| self.reap_database(config, work, deadline))
            .buffer_unordered(PARALLEL_DATABASES)
            .collect()
            .await;
        let mut summary = Summary::default();
        parts.iter().for_each(|part| summary.add(part));
        summary
    }

    /// One database's work, in order, on its one admin connection.
    async fn reap_database(&self, config: &Config, work: Vec<(Grant, Why)>, deadline: Instant) -> Summary {
        let mut summary = Summary::default();
        let now = now_seconds();
        for (grant, why) in work {
            if remaining(deadline) <= DEADLINE_MARGIN {
                summary.deferred += 1;
                summary.overdue += usize::from(grant.is_overdue(now));
                continue;
            }
            match self.revocation().run(config, &grant, &why).await {
                Ok(Outcome::Done(_)) => {
                    tracing::info!(grant_id = %grant.grant_id, db_user = %grant.db_user, expired_at = %format_time(grant.expires_at), ?why, "revoked");
                    summary.revoked += 1;
                }
                Ok(Outcome::Skipped(conflict)) => {
                    tracing::info!(grant_id = %grant.grant_id, %conflict, "skipped: claimed or changed by another invocation");
                }
                Ok(Outcome::Failed { grant: recorded, fault }) => {
                    tracing::error!(grant_id = %grant.grant_id, db_user = %grant.db_user, attempts = recorded.revoke_attempts, error = %fault, "revocation failed; retried after a backoff");
                    summary.failed += 1;
                    summary.overdue += usize::from(grant.is_overdue(now));
                }
                Err(fault) => {
                    tracing::error!(grant_id = %grant.grant_id, error = %fault, "could not record the outcome");
                    summary.failed += 1;
                    summary.overdue += usize::from(grant.is_overdue(now));
                }
            }
        }
        summary
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
        for MarkedUser { database, prefix, user } in orphans {
            match self.revocation().drop_orphan(config, &database, &prefix, &user).await {
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
    /// written just now. The markers read are today's prefix's and those of every prefix a live grant was made
    /// under, so changing `user_prefix` strands nobody.
    async fn orphans(&self, config: &Config) -> Result<Vec<MarkedUser>, Fault> {
        let prefixes = self.prefixes(config).await?;
        let mut marked = Vec::new();
        for database in config.databases.keys() {
            let mut session = match self.revocation().session(config, database).await {
                Ok(session) => session,
                Err(fault) => {
                    tracing::error!(database, error = %fault, "orphan sweep skipped for this database");
                    continue;
                }
            };
            for prefix in &prefixes {
                match session.query_column(&sql::marker_members(&naming::marker_role(prefix))).await {
                    Ok(users) => marked.extend(users.into_iter().map(|user| MarkedUser {
                        database: database.clone(),
                        prefix: prefix.clone(),
                        user,
                    })),
                    Err(fault) => tracing::error!(database, error = %fault, "orphan sweep skipped for this database"),
                }
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

    /// Today's `user_prefix` and every one a live grant was made under.
    async fn prefixes(&self, config: &Config) -> Result<BTreeSet<String>, Fault> {
        let mut prefixes: BTreeSet<String> =
            self.store.live_grants().await?.into_iter().filter_map(|g| g.user_prefix).collect();
        prefixes.insert(config.user_prefix.clone());
        Ok(prefixes)
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

    /// Revokes memberships in configured escalation roles that the admin granted and no live grant accounts for:
    /// what a crash or a race left behind. Memberships the admin did not grant, and temporary users' (the orphan
    /// sweep's), are never touched. Returns (revoked, failed).
    async fn reconcile(&self, config: &Config) -> (usize, usize) {
        let markers: Vec<String> = match self.prefixes(config).await {
            Ok(prefixes) => prefixes.iter().map(|p| naming::marker_role(p)).collect(),
            Err(fault) => {
                tracing::error!(error = %fault, "reconciler skipped: the live grants could not be read");
                return (0, 0);
            }
        };
        let (mut revoked, mut failed) = (0, 0);
        for (database, db) in &config.databases {
            let roles: BTreeSet<String> = db
                .targets
                .values()
                .filter(|t| t.strategy == Strategy::RoleEscalation)
                .flat_map(|t| t.roles.iter().cloned())
                .collect();
            if roles.is_empty() {
                continue;
            }
            let roles: Vec<String> = roles.into_iter().collect();
            match self.reconcile_database(config, database, &roles, &markers).await {
                Ok(n) => revoked += n,
                Err(fault) => {
                    tracing::error!(database, error = %fault, "reconciler failed for this database");
                    failed += 1;
                }
            }
        }
        (revoked, failed)
    }

    async fn reconcile_database(
        &self,
        config: &Config,
        database: &str,
        roles: &[String],
        markers: &[String],
    ) -> Result<usize, Fault> {
        let mut session = self.revocation().session(config, database).await?;
        let edges = session.query_pairs(&sql::admin_granted_memberships(roles, markers)).await?;
        let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (user, role) in edges {
            by_user.entry(user).or_default().push(role);
        }
        let mut revoked = 0;
        for (user, held) in by_user {
            let drift = revoke_unaccounted(&self.store, &mut session, database, &user, &held).await?;
            for role in &drift {
                tracing::warn!(database, db_user = %user, role, "revoked a membership no live grant accounts for");
            }
            revoked += drift.len();
        }
        Ok(revoked)
    }
}

/// A member of the marker role in one configured database.
struct MarkedUser {
    database: String,
    prefix: String,
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
