//! A grant and its life: `pending -> active -> revoked`, `pending -> failed`, and `failed -> pending` when the
//! caller retries the same `request_id`. Every transition appends one history entry; nothing else writes
//! `status`. Time is passed in (whole seconds), so the rules are testable and rows compare exactly.

use crate::config::Strategy;
use crate::delivery::CredentialsRef;
use crate::error::{ClientError, ErrorCode};
use crate::lease::Lease;
use crate::naming;
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fmt::Display;

/// Longest `last_error` kept: enough for a PostgreSQL message and its detail.
const MAX_ERROR_LEN: usize = 1000;
/// The actor named in history for transitions the provisioner and the reaper make on their own.
pub const PROVISIONER: &str = "provisioner";
pub const REAPER: &str = "reaper";
pub use crate::lease::REVOCATION_LEASE_SECONDS;
/// How often a failed provisioning may be retried with the same `request_id`: each retry appends two history
/// entries, and the item must stay far below DynamoDB's 400 KB whatever a caller does.
pub const MAX_PROVISIONING_ATTEMPTS: usize = 5;
/// Backoff after failed revocations: the first retry after one minute, doubling, at most every 30 minutes.
/// The reaper never gives up; it only stops a failing grant from starving the others.
const RETRY_BASE_SECONDS: i64 = 60;
const RETRY_MAX_SECONDS: i64 = 30 * 60;
/// How long before `expires_at` the reaper announces a grant's end (`Grant Expiring Soon`).
pub const EXPIRY_NOTICE_SECONDS: i64 = 15 * 60;
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

/// Why the lifecycle refused a change. Not a `ClientError`: whether a refusal is the caller's mistake is for
/// the layer that asked to decide. The provisioner answers the caller with it; under a lease it is a broken
/// invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransitionError {
    pub refused: Refused,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The grant is not in the state the change starts from.
    WrongState,
    /// An expired grant cannot be extended.
    Expired,
    /// Someone holds a live lease to revoke it.
    BeingRevoked,
    /// `max_extensions` or `max_total_seconds` would be exceeded.
    ExtensionLimit,
    /// The `request_id` failed too often.
    AttemptLimit,
}

impl From<TransitionError> for ClientError {
    fn from(error: TransitionError) -> ClientError {
        let code = match error.refused {
            Refused::ExtensionLimit => ErrorCode::PolicyViolation,
            _ => ErrorCode::InvalidState,
        };
        ClientError::new(code, error.message)
    }
}

fn refuse(refused: Refused, message: impl Display) -> TransitionError {
    TransitionError { refused, message: message.to_string() }
}

/// How far a grant may be extended (the target's `max_extensions` and `max_total_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionLimits {
    pub max_extensions: u32,
    /// Counted from `created_at`.
    pub max_total_seconds: u64,
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
    /// The config's `user_prefix` at grant time: revocation finds the marker and `retired` roles from it.
    pub user_prefix: String,
    pub duration_seconds: u64,
    /// Granted without an allowed approver, under the target's `allow_break_glass`: flagged for review.
    pub break_glass: bool,
}

/// A grant in some state of its life. The fields are read through the methods of the same names and changed only
/// by the lifecycle (`new_pending`, `activate`, `fail`, `retry`, `revoke`, `extend`, `record_revoke_failure`,
/// `leased`), so every change of `status` leaves its history entry. A row read from the table becomes a grant
/// through `From<GrantItem>`; that is also how tests build a grant in an arbitrary state.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub(crate) grant_id: String,
    pub(crate) status: Status,
    pub(crate) request_id: Option<String>,
    pub(crate) requester: String,
    pub(crate) approver: Option<String>,
    pub(crate) reason: String,
    pub(crate) database: String,
    pub(crate) target: String,
    pub(crate) strategy: Strategy,
    pub(crate) db_user: String,
    /// The roles granted, as configured when the grant was made: revocation must take back exactly these,
    /// even if the target's config changes meanwhile.
    pub(crate) roles: Vec<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) activated_at: Option<DateTime<Utc>>,
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    pub(crate) revoked_by: Option<String>,
    pub(crate) revoke_attempts: u32,
    pub(crate) last_error: Option<String>,
    /// Epoch seconds after which DynamoDB may delete the row; set on entering a terminal state.
    pub(crate) purge_at: Option<i64>,
    pub(crate) history: Vec<HistoryEntry>,
    pub(crate) break_glass: bool,
    /// The config's `user_prefix` when the grant was made. Revocation follows it, never today's config. None
    /// only on rows written before it was recorded.
    pub(crate) user_prefix: Option<String>,
    /// Who is provisioning or revoking this grant right now, if anyone.
    pub(crate) lease: Option<Lease>,
    /// After a failed revocation: the reaper tries again no earlier than this (epoch seconds).
    pub(crate) next_attempt_at: Option<i64>,
    /// When the reaper announced that this grant expires soon; cleared by an extension, so the new end is
    /// announced too. The write that sets it is what the `Grant Expiring Soon` pipe picks up.
    pub(crate) expiry_notice_at: Option<DateTime<Utc>>,
    /// Where the credentials were delivered (`credential_delivery` secrets_manager/ssm): recorded on the pending
    /// row before anything is written there, so whoever ends the grant deletes it.
    pub(crate) credentials_ref: Option<String>,
}

/// Read-only access to what a grant holds.
impl Grant {
    pub fn grant_id(&self) -> &str {
        &self.grant_id
    }
    pub fn status(&self) -> Status {
        self.status
    }
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
    pub fn requester(&self) -> &str {
        &self.requester
    }
    pub fn approver(&self) -> Option<&str> {
        self.approver.as_deref()
    }
    pub fn reason(&self) -> &str {
        &self.reason
    }
    pub fn database(&self) -> &str {
        &self.database
    }
    pub fn target(&self) -> &str {
        &self.target
    }
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }
    pub fn db_user(&self) -> &str {
        &self.db_user
    }
    /// The roles granted, as configured when the grant was made.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
    pub fn activated_at(&self) -> Option<DateTime<Utc>> {
        self.activated_at
    }
    pub fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.revoked_at
    }
    pub fn revoked_by(&self) -> Option<&str> {
        self.revoked_by.as_deref()
    }
    pub fn revoke_attempts(&self) -> u32 {
        self.revoke_attempts
    }
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
    /// Epoch seconds after which DynamoDB may delete the row; set on entering a terminal state.
    pub fn purge_at(&self) -> Option<i64> {
        self.purge_at
    }
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }
    pub fn break_glass(&self) -> bool {
        self.break_glass
    }
    /// The `user_prefix` recorded when the grant was made; None only on rows written before it was recorded.
    /// `user_prefix(current)` is the one revocation follows.
    pub fn recorded_user_prefix(&self) -> Option<&str> {
        self.user_prefix.as_deref()
    }
    /// Who is provisioning or revoking this grant right now, if anyone.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }
    /// After a failed revocation: the reaper tries again no earlier than this (epoch seconds).
    pub fn next_attempt_at(&self) -> Option<i64> {
        self.next_attempt_at
    }
    /// When the reaper announced that this grant expires soon, if it has since the last extension.
    pub fn expiry_notice_at(&self) -> Option<DateTime<Utc>> {
        self.expiry_notice_at
    }

    /// Where the credentials were delivered, if not in the response.
    pub fn credentials_ref(&self) -> Option<CredentialsRef> {
        self.credentials_ref.as_deref().map(CredentialsRef::parse)
    }
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
            user_prefix: Some(new.user_prefix),
            lease: None,
            next_attempt_at: None,
            expiry_notice_at: None,
            credentials_ref: None,
        };
        let actor = grant.requester.clone();
        grant.record(now, None, Status::Pending, &actor, note);
        grant
    }

    /// pending -> active: the access now exists in the database.
    pub fn activate(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
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
    ) -> Result<(), TransitionError> {
        self.expect(Status::Pending, "fail")?;
        self.last_error = Some(truncate(error));
        self.purge_at = Some(purge_at(now, retention));
        self.transition(now, Status::Failed, actor, truncate(error));
        Ok(())
    }

    /// failed -> pending: the caller retried the same request after a transient fault. The clock restarts so the
    /// caller gets the whole duration it asked for.
    pub fn retry(&mut self, now: DateTime<Utc>, duration_seconds: u64) -> Result<(), TransitionError> {
        self.expect(Status::Failed, "retry")?;
        let attempts = self.history.iter().filter(|h| h.to == Status::Failed).count();
        if attempts >= MAX_PROVISIONING_ATTEMPTS {
            return Err(refuse(
                Refused::AttemptLimit,
                format!("grant {} failed {attempts} times; use a new request_id", self.grant_id),
            ));
        }
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
    ) -> Result<(), TransitionError> {
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
        limits: ExtensionLimits,
        actor: &str,
        reason: &str,
    ) -> Result<(), TransitionError> {
        self.expect(Status::Active, "extend")?;
        if self.is_expired(now) {
            return Err(refuse(
                Refused::Expired,
                format!("grant {} expired at {}; request a new grant", self.grant_id, format_time(self.expires_at)),
            ));
        }
        if self.lease.as_ref().is_some_and(|lease| lease.is_live(now)) {
            return Err(refuse(Refused::BeingRevoked, format!("grant {} is being revoked", self.grant_id)));
        }
        let extensions = self.extensions();
        if extensions >= limits.max_extensions {
            return Err(refuse(
                Refused::ExtensionLimit,
                format!("grant {} was extended {extensions} times, the target's max_extensions", self.grant_id),
            ));
        }
        let new_end = now + seconds(duration_seconds);
        let total = (new_end - self.created_at).num_seconds();
        if total > i64::try_from(limits.max_total_seconds).unwrap_or(i64::MAX) {
            return Err(refuse(
                Refused::ExtensionLimit,
                format!(
                    "extending to {} would make the grant last {total}s from its creation, over the target's \
                     max_total_seconds {}",
                    format_time(new_end),
                    limits.max_total_seconds
                ),
            ));
        }
        let previous = self.expires_at;
        self.expires_at = new_end;
        self.expiry_notice_at = None;
        let note = format!("extended from {} to {}: {reason}", format_time(previous), format_time(self.expires_at));
        self.transition(now, Status::Active, actor, note);
        Ok(())
    }

    /// What the reaper must do with this grant now, if anything. Expired active grants are revoked; a pending
    /// grant older than the grace period belongs to a provisioner that crashed (a Lambda runs 15 minutes at
    /// most) and is cleaned up. A young pending grant is still being provisioned and is left alone.
    pub fn reap(&self, now: DateTime<Utc>, pending_grace: Duration) -> Option<Reap> {
        if self.lease.as_ref().is_some_and(|lease| lease.is_live(now)) {
            return None;
        }
        match self.status {
            Status::Active if self.is_expired(now) && self.due(now) => Some(Reap::Expired),
            Status::Pending if self.pending_since() <= now - pending_grace => Some(Reap::AbandonedPending),
            _ => None,
        }
    }

    /// Whether the reaper should announce this grant's end now: active, not yet announced, and ending within
    /// `EXPIRY_NOTICE_SECONDS` (not already ended: an expired grant is announced by its revocation).
    pub fn expires_soon(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Active
            && self.expiry_notice_at.is_none()
            && !self.is_expired(now)
            && self.expires_at <= now + Duration::seconds(EXPIRY_NOTICE_SECONDS)
    }

    /// The grant with its coming end announced at `now`: what the reaper writes, once, for `Grant Expiring Soon`.
    /// Not a transition: status and history stay as they are.
    pub fn with_expiry_notice(&self, now: DateTime<Utc>) -> Grant {
        Grant { expiry_notice_at: Some(now), ..self.clone() }
    }

    /// Live and expired more than `OVERDUE_AFTER_SECONDS` ago.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status.is_live() && self.expires_at <= now - Duration::seconds(OVERDUE_AFTER_SECONDS)
    }

    /// When the grant last became pending (created, or retried).
    fn pending_since(&self) -> DateTime<Utc> {
        self.history.iter().rev().find(|h| h.to == Status::Pending).map_or(self.created_at, |h| h.at)
    }

    /// A revocation attempt failed; the grant stays live and is retried after a backoff that grows with the
    /// failures (never given up). The lease ends with this record.
    pub fn record_revoke_failure(&mut self, now: DateTime<Utc>, error: &str) {
        self.revoke_attempts += 1;
        self.last_error = Some(truncate(error));
        let exponent = self.revoke_attempts.saturating_sub(1).min(16);
        let backoff = RETRY_BASE_SECONDS.saturating_mul(1 << exponent).min(RETRY_MAX_SECONDS);
        self.next_attempt_at = Some(now.timestamp() + backoff);
        self.lease = None;
    }

    /// Whether the reaper may try to revoke this grant now: a grant whose revocations keep failing waits its
    /// backoff out, so it does not starve the first attempts of others.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.next_attempt_at.is_none_or(|at| at <= now.timestamp())
    }

    /// Whether this grant, for as long as it lasts, keeps `role` for its user: only an active, unexpired grant
    /// that nobody is revoking. An expired one is about to go, a leased one is being taken away, a pending one
    /// may never come to be: none of them is a reason for another grant's revocation to leave the role.
    pub fn provides(&self, role: &str, now: DateTime<Utc>) -> bool {
        self.status == Status::Active
            && !self.is_expired(now)
            && !self.lease.as_ref().is_some_and(|lease| lease.is_live(now))
            && self.roles.iter().any(|r| r == role)
    }

    /// Whether this grant may have put `role` on its user and not yet taken it back: any live grant, expired or
    /// not. A membership so accounted for is ours (the reconciler leaves it to the grant's revocation).
    pub fn accounts_for(&self, role: &str) -> bool {
        self.status.is_live() && self.roles.iter().any(|r| r == role)
    }

    /// How many times `extend` succeeded.
    pub fn extensions(&self) -> u32 {
        let count = self.history.iter().filter(|h| h.from == Some(Status::Active) && h.to == Status::Active).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The `user_prefix` this grant was made under; `current` (today's config) only for rows from before it was
    /// recorded.
    pub fn user_prefix<'a>(&'a self, current: &'a str) -> &'a str {
        self.user_prefix.as_deref().unwrap_or(current)
    }

    /// The NOLOGIN role every temporary user of this grant's prefix is a member of.
    pub fn marker_role(&self, current_prefix: &str) -> String {
        naming::marker_role(self.user_prefix(current_prefix))
    }

    /// The NOLOGIN role, holding no privileges, that receives what a revoked temporary user owned.
    pub fn retired_role(&self, current_prefix: &str) -> String {
        naming::retired_role(self.user_prefix(current_prefix))
    }

    /// The grant with its credentials delivered to `location` (a secret's name becomes its ARN once created).
    pub fn delivered_to(&self, location: Option<&CredentialsRef>) -> Grant {
        Grant { credentials_ref: location.map(|l| l.as_str().to_string()), ..self.clone() }
    }

    /// This grant with `lease` held on it (what a claim writes).
    pub fn leased(&self, lease: Lease) -> Grant {
        Grant { lease: Some(lease), ..self.clone() }
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

    fn expect(&self, from: Status, what: &str) -> Result<(), TransitionError> {
        if self.status == from {
            Ok(())
        } else {
            Err(refuse(
                Refused::WrongState,
                format!("cannot {what} grant {}: it is {}, not {from}", self.grant_id, self.status),
            ))
        }
    }

    /// Every transition ends the lease it was made under: the outcome is recorded, the work is done.
    fn transition(&mut self, now: DateTime<Utc>, to: Status, actor: &str, note: String) {
        let from = self.status;
        self.status = to;
        self.lease = None;
        self.next_attempt_at = None;
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

    #[test]
    fn expiry_is_announced_once_per_end() {
        let mut g = sample(Strategy::TempUser);
        g.activate(t(0)).unwrap();
        let end = g.expires_at;
        let before = end - Duration::seconds(EXPIRY_NOTICE_SECONDS);
        assert!(!g.expires_soon(before - Duration::seconds(1)));
        assert!(g.expires_soon(before) && g.expires_soon(end - Duration::seconds(1)));
        assert!(!g.expires_soon(end), "an expired grant is announced by its revocation");
        let noticed = g.with_expiry_notice(before);
        assert!(!noticed.expires_soon(before));
        assert_eq!((noticed.history.len(), noticed.status), (g.history.len(), g.status), "not a transition");
        let mut extended = noticed.clone();
        let limits = ExtensionLimits { max_extensions: 5, max_total_seconds: 1 << 20 };
        extended.extend(before, 3600, limits, "alice", "more").unwrap();
        assert_eq!(extended.expiry_notice_at, None, "the new end is announced too");
    }

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
                user_prefix: "jit_".into(),
                duration_seconds: 1800,
                break_glass: false,
            },
            t(0),
        )
    }

    const KEEP: Retention = Retention { days: 365 };
    pub(crate) const LIMITS: ExtensionLimits = ExtensionLimits { max_extensions: 10, max_total_seconds: 7200 };

    #[test]
    fn happy_life() {
        let mut g = sample(Strategy::TempUser);
        assert_eq!((g.status, g.expires_at), (Status::Pending, t(1800)));
        g.activate(t(1)).unwrap();
        g.extend(t(100), 3600, LIMITS, "alice@example.com", "more time").unwrap();
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
        assert!(g.extend(t(1), 60, LIMITS, "a", "r").is_err());
        assert!(g.retry(t(1), 60).is_err());
        g.activate(t(1)).unwrap();
        assert!(g.activate(t(2)).is_err());
        assert!(g.fail(t(2), "x", PROVISIONER, KEEP).is_err());
        let err = g.extend(t(1800), 60, LIMITS, "a", "r").unwrap_err();
        assert!(err.message.contains("expired"), "{err:?}");
        assert_eq!(g.history.len(), 2, "refused transitions leave no trace");
    }

    #[test]
    fn extensions_are_bounded_in_count_and_total() {
        let mut g = sample(Strategy::TempUser);
        g.activate(t(1)).unwrap();
        let limits = ExtensionLimits { max_extensions: 3, max_total_seconds: 100_000 };
        for i in 0..3 {
            g.extend(t(10 + i), 600, limits, "a", "r").unwrap();
        }
        let before = g.clone();
        let err = g.extend(t(20), 600, limits, "a", "r").unwrap_err();
        assert_eq!(ClientError::from(err).code, ErrorCode::PolicyViolation);
        assert_eq!(g, before, "a refused extend changes nothing");
        let total = ExtensionLimits { max_extensions: 10, max_total_seconds: 3600 };
        assert!(g.extend(t(30), 3570, total, "a", "r").is_ok());
        assert_eq!(g.extend(t(40), 3570, total, "a", "r").unwrap_err().refused, Refused::ExtensionLimit);
    }

    #[test]
    fn failed_provisioning_is_retried_a_bounded_number_of_times() {
        let mut g = sample(Strategy::TempUser);
        for i in 0..MAX_PROVISIONING_ATTEMPTS as i64 {
            g.fail(t(i * 10), "down", PROVISIONER, KEEP).unwrap();
            if i + 1 < MAX_PROVISIONING_ATTEMPTS as i64 {
                g.retry(t(i * 10 + 5), 600).unwrap();
            }
        }
        assert_eq!(ClientError::from(g.retry(t(1000), 600).unwrap_err()).code, ErrorCode::InvalidState);
    }

    #[test]
    fn only_active_unexpired_unleased_grants_provide() {
        use crate::lease::{Lease, Purpose};
        let mut g = sample(Strategy::RoleEscalation);
        assert!(!g.provides("readonly", t(1)) && g.accounts_for("readonly"), "pending");
        g.activate(t(1)).unwrap();
        assert!(g.provides("readonly", t(2)) && !g.provides("dba", t(2)));
        assert!(!g.provides("readonly", t(1800)), "expired");
        assert!(g.accounts_for("readonly"));
        let leased = g.leased(Lease::new(Purpose::Revoke, "reaper", "x", t(2)));
        assert!(!leased.provides("readonly", t(3)), "being revoked");
        assert!(leased.provides("readonly", t(2 + REVOCATION_LEASE_SECONDS + 1)), "a dead holder's lease");
    }

    #[test]
    fn failed_revocations_back_off_and_never_give_up() {
        let mut g = sample(Strategy::TempUser);
        g.activate(t(1)).unwrap();
        g.record_revoke_failure(t(100), "timeout");
        assert!(!g.due(t(159)) && g.due(t(160)));
        for _ in 0..20 {
            g.record_revoke_failure(t(100), "timeout");
        }
        assert_eq!(g.next_attempt_at, Some(t(100).timestamp() + RETRY_MAX_SECONDS));
        assert_eq!(g.reap(t(99_999), Duration::seconds(900)), Some(Reap::Expired));
    }
}
