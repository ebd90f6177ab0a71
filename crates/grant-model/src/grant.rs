//! A grant and its life: `pending -> active -> revoked`, `pending -> failed`, and `failed -> pending` when the
//! caller retries the same `request_id`. Every transition appends one history entry; nothing else writes
//! `status`. Time is passed in (whole seconds), so the rules are testable and rows compare exactly.

use crate::config::Strategy;
use crate::error::ClientError;
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest `last_error` kept: enough for a PostgreSQL message and its detail.
const MAX_ERROR_LEN: usize = 1000;
/// The actor named in history for transitions the provisioner and the reaper make on their own.
pub const PROVISIONER: &str = "provisioner";
pub const REAPER: &str = "reaper";
/// How long a claim on a grant lasts: longer than a revocation takes (admin statements time out after 20 s),
/// short enough that a crashed holder delays the next attempt by one reaper run at most.
pub const REVOCATION_LEASE_SECONDS: i64 = 120;
/// A live grant expired longer ago than this is overdue: the reaper is failing or falling behind.
pub const OVERDUE_AFTER_SECONDS: i64 = 15 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Active,
    Revoked,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Revoked => "revoked",
            Status::Failed => "failed",
        }
    }
    /// Pending and active grants may have access in the database; the others never do.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Pending | Status::Active)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who ended a grant: the SPEC's `revoked_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokedBy {
    Expiry,
    OrphanCleanup,
    Actor(String),
}

impl RevokedBy {
    pub fn as_str(&self) -> &str {
        match self {
            RevokedBy::Expiry => "expiry",
            RevokedBy::OrphanCleanup => "orphan-cleanup",
            RevokedBy::Actor(actor) => actor,
        }
    }
}

/// One transition: `{at, from, to, actor, note}`. `from` is None for the entry that creates the grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryEntry {
    #[serde(with = "crate::grant::rfc3339")]
    #[schemars(with = "crate::schema::Rfc3339")]
    pub at: DateTime<Utc>,
    pub from: Option<Status>,
    pub to: Status,
    pub actor: String,
    pub note: String,
}

/// Why the reaper acts on a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reap {
    Expired,
    AbandonedPending,
}

/// How long terminal grants are kept before DynamoDB's TTL purges them (`RETENTION_DAYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
}

/// What a new grant is for, once the request has been checked against config and policy.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub grant_id: String,
    pub request_id: Option<String>,
    pub requester: String,
    pub approver: Option<String>,
    pub reason: String,
    pub database: String,
    pub target: String,
    pub strategy: Strategy,
    pub db_user: String,
    pub roles: Vec<String>,
    pub duration_seconds: u64,
    /// Granted without an allowed approver, under the target's `allow_break_glass`: flagged for review.
    pub break_glass: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub grant_id: String,
    pub status: Status,
    pub request_id: Option<String>,
    pub requester: String,
    pub approver: Option<String>,
    pub reason: String,
    pub database: String,
    pub target: String,
    pub strategy: Strategy,
    pub db_user: String,
    /// The roles granted, as configured when the grant was made: revocation must take back exactly these,
    /// even if the target's config changes meanwhile.
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub revoke_attempts: u32,
    pub last_error: Option<String>,
    /// Epoch seconds after which DynamoDB may delete the row; set on entering a terminal state.
    pub purge_at: Option<i64>,
    pub history: Vec<HistoryEntry>,
    pub break_glass: bool,
}

impl Grant {
    pub fn new_pending(new: NewGrant, now: DateTime<Utc>) -> Grant {
        let note = requested_note(new.duration_seconds);
        let mut grant = Grant {
            grant_id: new.grant_id,
            status: Status::Pending,
            request_id: new.request_id,
            requester: new.requester,
            approver: new.approver,
            reason: new.reason,
            database: new.database,
            target: new.target,
            strategy: new.strategy,
            db_user: new.db_user,
            roles: new.roles,
            created_at: now,
            expires_at: now + seconds(new.duration_seconds),
            activated_at: None,
            revoked_at: None,
            revoked_by: None,
            revoke_attempts: 0,
            last_error: None,
            purge_at: None,
            history: Vec::new(),
            break_glass: new.break_glass,
        };
        let actor = grant.requester.clone();
        grant.record(now, None, Status::Pending, &actor, note);
        grant
    }

    /// pending -> active: the access now exists in the database.
    pub fn activate(&mut self, now: DateTime<Utc>) -> Result<(), ClientError> {
        self.expect(Status::Pending, "activate")?;
        self.activated_at = Some(now);
        self.last_error = None;
        self.transition(now, Status::Active, PROVISIONER, "access created".into());
        Ok(())
    }

    /// pending -> failed: nothing is left in the database; `error` says why (no secrets in it). `actor` is the
    /// provisioner that failed, or the reaper cleaning up after one that crashed.
    pub fn fail(
        &mut self,
        now: DateTime<Utc>,
        error: &str,
        actor: &str,
        retention: Retention,
    ) -> Result<(), ClientError> {
        self.expect(Status::Pending, "fail")?;
        self.last_error = Some(truncate(error));
        self.purge_at = Some(purge_at(now, retention));
        self.transition(now, Status::Failed, actor, truncate(error));
        Ok(())
    }

    /// failed -> pending: the caller retried the same request after a transient fault. The clock restarts so the
    /// caller gets the whole duration it asked for.
    pub fn retry(&mut self, now: DateTime<Utc>, duration_seconds: u64) -> Result<(), ClientError> {
        self.expect(Status::Failed, "retry")?;
        self.expires_at = now + seconds(duration_seconds);
        self.purge_at = None;
        let actor = self.requester.clone();
        self.transition(now, Status::Pending, &actor, format!("retried; {}", requested_note(duration_seconds)));
        Ok(())
    }

    /// active -> revoked: the access is gone from the database.
    pub fn revoke(
        &mut self,
        now: DateTime<Utc>,
        by: &RevokedBy,
        note: &str,
        retention: Retention,
    ) -> Result<(), ClientError> {
        self.expect(Status::Active, "revoke")?;
        self.revoked_at = Some(now);
        self.revoked_by = Some(by.as_str().to_string());
        self.purge_at = Some(purge_at(now, retention));
        self.transition(now, Status::Revoked, by.as_str(), note.to_string());
        Ok(())
    }

    /// active -> active with `expires_at = now + duration`. An expired grant cannot be revived: its access has
    /// lapsed and the reaper may be taking it away right now.
    pub fn extend(
        &mut self,
        now: DateTime<Utc>,
        duration_seconds: u64,
        actor: &str,
        reason: &str,
    ) -> Result<(), ClientError> {
        self.expect(Status::Active, "extend")?;
        if self.is_expired(now) {
            return Err(ClientError::invalid_state(format!(
                "grant {} expired at {}; request a new grant",
                self.grant_id,
                format_time(self.expires_at)
            )));
        }
        let previous = self.expires_at;
        self.expires_at = now + seconds(duration_seconds);
        let note = format!("extended from {} to {}: {reason}", format_time(previous), format_time(self.expires_at));
        self.transition(now, Status::Active, actor, note);
        Ok(())
    }

    /// What the reaper must do with this grant now, if anything. Expired active grants are revoked; a pending
    /// grant older than the grace period belongs to a provisioner that crashed (a Lambda runs 15 minutes at
    /// most) and is cleaned up. A young pending grant is still being provisioned and is left alone.
    pub fn reap(&self, now: DateTime<Utc>, pending_grace: Duration) -> Option<Reap> {
        match self.status {
            Status::Active if self.is_expired(now) => Some(Reap::Expired),
            Status::Pending if self.pending_since() <= now - pending_grace => Some(Reap::AbandonedPending),
            _ => None,
        }
    }

    /// Live and expired more than `OVERDUE_AFTER_SECONDS` ago.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status.is_live() && self.expires_at <= now - Duration::seconds(OVERDUE_AFTER_SECONDS)
    }

    /// When the grant last became pending (created, or retried).
    fn pending_since(&self) -> DateTime<Utc> {
        self.history.iter().rev().find(|h| h.to == Status::Pending).map_or(self.created_at, |h| h.at)
    }

    /// A revocation attempt failed; the grant stays live and is retried.
    pub fn record_revoke_failure(&mut self, error: &str) {
        self.revoke_attempts += 1;
        self.last_error = Some(truncate(error));
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// The duration the grant was first asked for, kept in the creation entry so a retried request can be
    /// compared with the original after an extension moved `expires_at`.
    pub fn requested_duration_seconds(&self) -> Option<u64> {
        let note = &self.history.iter().rev().find(|h| h.to == Status::Pending)?.note;
        let (_, tail) = note.rsplit_once(REQUESTED_PREFIX)?;
        tail.trim_end_matches('s').parse().ok()
    }

    fn expect(&self, from: Status, what: &str) -> Result<(), ClientError> {
        if self.status == from {
            Ok(())
        } else {
            Err(ClientError::invalid_state(format!(
                "cannot {what} grant {}: it is {}, not {from}",
                self.grant_id, self.status
            )))
        }
    }

    fn transition(&mut self, now: DateTime<Utc>, to: Status, actor: &str, note: String) {
        let from = self.status;
        self.status = to;
        self.record(now, Some(from), to, actor, note);
    }

    fn record(&mut self, at: DateTime<Utc>, from: Option<Status>, to: Status, actor: &str, note: String) {
        self.history.push(HistoryEntry { at, from, to, actor: actor.to_string(), note });
    }
}

const REQUESTED_PREFIX: &str = "requested for ";

fn requested_note(duration_seconds: u64) -> String {
    format!("{REQUESTED_PREFIX}{duration_seconds}s")
}

fn seconds(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

fn purge_at(now: DateTime<Utc>, retention: Retention) -> i64 {
    (now + Duration::days(i64::from(retention.days))).timestamp()
}

fn truncate(error: &str) -> String {
    error.chars().take(MAX_ERROR_LEN).collect()
}

/// Whole seconds, `Z`: the form every timestamp in the table and the responses has.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `now` as the domain uses it: UTC, whole seconds, so `expires_at` equals `rolvaliduntil` and the epoch.
pub fn now_seconds() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

pub(crate) mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + secs, 0).unwrap()
    }

    pub(crate) fn sample(strategy: Strategy) -> Grant {
        Grant::new_pending(
            NewGrant {
                grant_id: "g-1".into(),
                request_id: Some("req-1".into()),
                requester: "alice@example.com".into(),
                approver: Some("bob@example.com".into()),
                reason: "INC-1".into(),
                database: "orders".into(),
                target: "readonly".into(),
                strategy,
                db_user: "jit_alice_abcdefgh".into(),
                roles: vec!["readonly".into()],
                duration_seconds: 1800,
                break_glass: false,
            },
            t(0),
        )
    }

    const KEEP: Retention = Retention { days: 365 };

    #[test]
    fn happy_life() {
        let mut g = sample(Strategy::TempUser);
        assert_eq!((g.status, g.expires_at), (Status::Pending, t(1800)));
        g.activate(t(1)).unwrap();
        g.extend(t(100), 3600, "alice@example.com", "more time").unwrap();
        assert_eq!(g.expires_at, t(3700));
        g.revoke(t(200), &RevokedBy::Actor("bob".into()), "done", KEEP).unwrap();
        assert_eq!(g.status, Status::Revoked);
        assert_eq!(g.revoked_by.as_deref(), Some("bob"));
        assert_eq!(g.purge_at, Some(t(200).timestamp() + 365 * 86400));
        let path: Vec<_> = g.history.iter().map(|h| (h.from, h.to)).collect();
        assert_eq!(
            path,
            [
                (None, Status::Pending),
                (Some(Status::Pending), Status::Active),
                (Some(Status::Active), Status::Active),
                (Some(Status::Active), Status::Revoked)
            ]
        );
        assert_eq!(g.requested_duration_seconds(), Some(1800));
    }

    #[test]
    fn failure_and_retry() {
        let mut g = sample(Strategy::TempUser);
        g.fail(t(5), "connection refused", PROVISIONER, KEEP).unwrap();
        assert_eq!((g.status, g.last_error.as_deref()), (Status::Failed, Some("connection refused")));
        assert!(g.purge_at.is_some());
        g.retry(t(60), 900).unwrap();
        assert_eq!((g.status, g.expires_at, g.purge_at), (Status::Pending, t(960), None));
        assert_eq!(g.requested_duration_seconds(), Some(900));
    }

    #[test]
    fn what_the_reaper_does() {
        let grace = Duration::seconds(900);
        let mut g = sample(Strategy::TempUser);
        assert_eq!(g.reap(t(899), grace), None, "a young pending grant is being provisioned");
        assert_eq!(g.reap(t(900), grace), Some(Reap::AbandonedPending));
        g.activate(t(1)).unwrap();
        assert_eq!(g.reap(t(1799), grace), None);
        assert_eq!(g.reap(t(1800), grace), Some(Reap::Expired));
        assert!(!g.is_overdue(t(1800 + 899)));
        assert!(g.is_overdue(t(1800 + 900)));
        g.revoke(t(1900), &RevokedBy::Expiry, "expired", KEEP).unwrap();
        assert_eq!(g.reap(t(99_999), grace), None);
        assert!(!g.is_overdue(t(99_999)));
    }

    #[test]
    fn illegal_transitions_are_invalid_state() {
        let mut g = sample(Strategy::RoleEscalation);
        assert!(g.revoke(t(1), &RevokedBy::Expiry, "", KEEP).is_err());
        assert!(g.extend(t(1), 60, "a", "r").is_err());
        assert!(g.retry(t(1), 60).is_err());
        g.activate(t(1)).unwrap();
        assert!(g.activate(t(2)).is_err());
        assert!(g.fail(t(2), "x", PROVISIONER, KEEP).is_err());
        let err = g.extend(t(1800), 60, "a", "r").unwrap_err();
        assert!(err.message.contains("expired"), "{err:?}");
        assert_eq!(g.history.len(), 2, "refused transitions leave no trace");
    }
}
