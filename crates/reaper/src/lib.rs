//! The reaper: keeps the product's promise that no access outlives its grant. Each pass finds expired active
//! grants and abandoned pending ones through the sparse expiry index (never a Scan), claims each with a lease,
//! revokes through the shared routine and records the outcome; then drops temporary users no live grant
//! accounts for. A failure is recorded and retried next pass, never given up on, and never blocks the others.

mod metrics;

use futures::stream::{self, StreamExt};
use grant_adapters::{
    ConfigSource, Connections, Delivery, Fault, GrantRepo, GrantStore, Outcome, Revocation, Settings, Why,
};
use grant_model::grant::{format_time, now_seconds, EXPIRY_NOTICE_SECONDS, REAPER};
use grant_model::{naming, Config, Expect, Grant, Strategy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Databases revoked in parallel; within one database work is sequential on its one admin connection.
const PARALLEL_DATABASES: usize = 4;
/// Items read per index partition and call: a pass holds one page, plus the retries it keeps for last.
const PAGE_SIZE: i32 = 100;
/// Grants whose earlier revocations failed, kept for after the first attempts; the rest wait a pass.
const MAX_RETRIES_PER_PASS: usize = 500;
/// No new grant is started with less time than this left before the Lambda deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
/// Time for a new grant's row to reach the (eventually consistent) index before a user missing from it is
/// taken for an orphan.
const INDEX_SETTLE: Duration = Duration::from_secs(1);

pub struct Reaper {
    pub settings: Settings,
    /// DynamoDB in production; tests may give their own (one whose client counts or fails requests).
    pub store: Arc<dyn GrantRepo>,
    pub source: ConfigSource,
    pub connections: Connections,
    pub delivery: Delivery,
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
    /// For the `Overdue` metric, not part of the SPEC's result: live grants 15+ minutes past `expires_at` after
    /// the pass, whether they failed, were deferred or wait out a backoff.
    #[serde(skip)]
    pub overdue: usize,
    /// Not part of the SPEC's result: grants whose coming end this pass announced (`Grant Expiring Soon`).
    #[serde(skip)]
    pub expiry_notices: usize,
}

impl Summary {
    fn add(&mut self, part: &Summary) {
        self.revoked += part.revoked;
        self.failed += part.failed;
        self.deferred += part.deferred;
    }
}

impl Reaper {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings) -> Reaper {
        Reaper::with_store(GrantStore::new(sdk, &settings.grants_table), sdk, settings)
    }

    pub fn with_store(store: impl GrantRepo + 'static, sdk: &aws_config::SdkConfig, settings: Settings) -> Reaper {
        Reaper {
            store: Arc::new(store),
            source: ConfigSource::new(sdk, &settings),
            connections: Connections::default(),
            delivery: Delivery::new(sdk, &settings.secret_name_prefix),
            settings,
        }
    }

    pub async fn from_env() -> Result<Reaper, Fault> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Reaper::new(&sdk, settings))
    }

    /// The shared revocation operation, acting as the reaper, with this container's clients and connections.
    pub fn revocation(&self) -> Revocation<'_> {
        Revocation {
            store: &*self.store,
            connections: &self.connections,
            source: &self.source,
            delivery: &self.delivery,
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

    /// Abandoned `pending` rows first, then expired grants never tried, a page at a time; then those whose
    /// earlier attempts failed and whose backoff has run out: a database that keeps failing cannot starve new
    /// expiries. Then the orphan sweep and the reconciler, which share one read of the live grants.
    async fn pass(&self, deadline: Instant) -> Result<Summary, Fault> {
        let started = Instant::now();
        let now = now_seconds();
        let config = self.source.config().await?;
        let mut summary = Summary::default();
        let pending = self.store.pending().await?;
        summary.examined += pending.len();
        summary.overdue += pending.iter().filter(|g| g.is_overdue(now)).count();
        summary.add(&self.reap_page(&config, pending, deadline).await);
        let mut retries = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = self.store.expired_page(now.timestamp(), PAGE_SIZE, cursor).await?;
            summary.examined += page.len();
            summary.overdue += page.iter().filter(|g| g.is_overdue(now)).count();
            let (first, tried): (Vec<Grant>, Vec<Grant>) = page.into_iter().partition(|g| g.revoke_attempts() == 0);
            if retries.len() < MAX_RETRIES_PER_PASS {
                retries.extend(tried.into_iter().filter(|g| g.due(now)).take(MAX_RETRIES_PER_PASS - retries.len()));
            }
            summary.add(&self.reap_page(&config, first, deadline).await);
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
        summary.add(&self.reap_page(&config, retries, deadline).await);
        if remaining(deadline) > DEADLINE_MARGIN {
            summary.expiry_notices = self.notice_expiring().await;
        }
        if remaining(deadline) > DEADLINE_MARGIN {
            match self.store.live_grants().await {
                Ok(live) => {
                    let prefixes = prefixes(&config, &live);
                    let (dropped, failed) = self.sweep_orphans(&config, &prefixes, &live).await;
                    summary.orphans_dropped = dropped;
                    summary.failed += failed;
                    if remaining(deadline) > DEADLINE_MARGIN {
                        summary.drift_revoked = self.reconcile(&config, &prefixes, &live).await;
                    }
                }
                // Not a failed revocation (those are counted per grant); both run again next pass.
                Err(fault) => {
                    tracing::error!(error = %fault, "orphan sweep and reconciler skipped: the live grants could not be read")
                }
            }
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
            expiry_notices = summary.expiry_notices,
            duration_ms = summary.duration_ms,
            "reaper pass done"
        );
        Ok(summary)
    }

    /// Marks each active grant ending within `EXPIRY_NOTICE_SECONDS` as announced, once, with a conditional write;
    /// the table's stream carries that write to the `Grant Expiring Soon` pipe. Returns how many it marked. A
    /// failure is logged: the next pass tries again, and the grant's revocation is announced regardless.
    async fn notice_expiring(&self) -> usize {
        let now = now_seconds();
        let soon = match self.store.expiring_soon(now.timestamp(), EXPIRY_NOTICE_SECONDS).await {
            Ok(soon) => soon,
            Err(fault) => {
                tracing::error!(error = %fault, "expiry notices skipped: the expiry index could not be read");
                return 0;
            }
        };
        let mut marked = 0;
        // The index may lag the table; the write's condition (the row as read, no live lease) settles it.
        for grant in soon.into_iter().filter(|g| g.expires_soon(now)) {
            match self.store.replace(&grant, &grant.with_expiry_notice(now), Expect::NoLiveLease).await {
                Ok(true) => {
                    tracing::info!(grant_id = %grant.grant_id(), expires_at = %format_time(grant.expires_at()), "expiry announced");
                    marked += 1;
                }
                Ok(false) => {} // changed meanwhile (extended, claimed): the next pass looks again
                Err(fault) => {
                    tracing::error!(grant_id = %grant.grant_id(), error = %fault, "could not mark the expiry notice")
                }
            }
        }
        marked
    }

    /// The grants of one page that need the reaper now, databases in parallel; past the deadline, only counted.
    async fn reap_page(&self, config: &Config, page: Vec<Grant>, deadline: Instant) -> Summary {
        let now = now_seconds();
        let mut by_database: BTreeMap<String, Vec<(Grant, Why)>> = BTreeMap::new();
        for grant in page {
            if let Some(reap) = grant.reap(now, self.settings.pending_grace) {
                by_database.entry(grant.database().to_string()).or_default().push((grant, Why::Reap(reap)));
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
        for (grant, why) in work {
            if remaining(deadline) <= DEADLINE_MARGIN {
                summary.deferred += 1;
                continue;
            }
            match self.revocation().run(config, &grant, &why).await {
                Ok(Outcome::Done(_)) => {
                    tracing::info!(grant_id = %grant.grant_id(), db_user = %grant.db_user(), expired_at = %format_time(grant.expires_at()), ?why, "revoked");
                    summary.revoked += 1;
                }
                Ok(Outcome::Skipped(conflict)) => {
                    tracing::info!(grant_id = %grant.grant_id(), %conflict, "skipped: claimed or changed by another invocation");
                }
                Ok(Outcome::Failed { grant: recorded, fault }) => {
                    tracing::error!(grant_id = %grant.grant_id(), db_user = %grant.db_user(), attempts = recorded.revoke_attempts(), error = %fault, "revocation failed; retried after a backoff");
                    summary.failed += 1;
                }
                Err(fault) => {
                    tracing::error!(grant_id = %grant.grant_id(), error = %fault, "could not record the outcome");
                    summary.failed += 1;
                }
            }
        }
        summary
    }

    /// Drops temporary users that no live grant accounts for. Returns (dropped, failed).
    async fn sweep_orphans(&self, config: &Config, prefixes: &BTreeSet<String>, live: &[Grant]) -> (usize, usize) {
        let orphans = match self.orphans(config, prefixes, live).await {
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

    /// Marked users without a live grant, seen so twice: once against the pass's read of the live grants, then,
    /// for those left, against a read made after the users were read (a grant's row is written before its user
    /// is created) and after the index was given a moment to show rows written just now. The markers read are
    /// today's prefix's and those of every prefix a live grant was made under, so changing `user_prefix`
    /// strands nobody.
    async fn orphans(
        &self,
        config: &Config,
        prefixes: &BTreeSet<String>,
        live: &[Grant],
    ) -> Result<Vec<MarkedUser>, Fault> {
        let mut marked = Vec::new();
        for database in config.databases.keys() {
            let revocation = self.revocation();
            let engine = match revocation.engine(config, database) {
                Ok(engine) => engine,
                Err(fault) => {
                    tracing::error!(database, error = %fault, "orphan sweep skipped for this database");
                    continue;
                }
            };
            for prefix in prefixes {
                match engine.temp_users(prefix).await {
                    Ok(users) => marked.extend(users.into_iter().map(|user| MarkedUser {
                        database: database.clone(),
                        prefix: prefix.clone(),
                        user,
                    })),
                    Err(fault) => tracing::error!(database, error = %fault, "orphan sweep skipped for this database"),
                }
            }
        }
        let candidates = unaccounted(marked, live);
        if candidates.is_empty() {
            return Ok(candidates);
        }
        tokio::time::sleep(INDEX_SETTLE).await;
        Ok(unaccounted(candidates, &self.store.live_grants().await?))
    }

    /// Revokes memberships in configured escalation roles that the admin granted and no live grant accounts for:
    /// what a crash or a race left behind. Memberships the admin did not grant, and temporary users' (the orphan
    /// sweep's), are never touched. Returns how many memberships it revoked; a database it cannot reconcile is
    /// logged (like the orphan sweep's) and tried again next pass.
    async fn reconcile(&self, config: &Config, prefixes: &BTreeSet<String>, live: &[Grant]) -> usize {
        let markers: Vec<String> = prefixes.iter().map(|p| naming::marker_role(p)).collect();
        let mut revoked = 0;
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
            match self.reconcile_database(config, database, &roles, &markers, live).await {
                Ok(n) => revoked += n,
                Err(fault) => tracing::error!(database, error = %fault, "reconciler failed for this database"),
            }
        }
        revoked
    }

    async fn reconcile_database(
        &self,
        config: &Config,
        database: &str,
        roles: &[String],
        markers: &[String],
        live: &[Grant],
    ) -> Result<usize, Fault> {
        let revocation = self.revocation();
        let drift = revocation.engine(config, database)?.reconcile(&*self.store, roles, markers, live).await?;
        for (user, role) in &drift {
            tracing::warn!(database, db_user = %user, role, "revoked a membership no live grant accounts for");
        }
        Ok(drift.len())
    }
}

/// Today's `user_prefix` and every one a live grant was made under.
fn prefixes(config: &Config, live: &[Grant]) -> BTreeSet<String> {
    let mut prefixes: BTreeSet<String> =
        live.iter().filter_map(|g| g.recorded_user_prefix().map(str::to_string)).collect();
    prefixes.insert(config.user_prefix.clone());
    prefixes
}

/// Roles, and so the marker role's members, are cluster-wide: two config entries may name databases of one
/// cluster. A user is accounted for by a live grant of any entry (temporary user names are unique).
fn unaccounted(users: Vec<MarkedUser>, live: &[Grant]) -> Vec<MarkedUser> {
    let live: BTreeSet<&str> =
        live.iter().filter(|g| g.strategy() == Strategy::TempUser).map(|g| g.db_user()).collect();
    users.into_iter().filter(|u| !live.contains(u.user.as_str())).collect()
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
