//! A lease: who is working on a grant right now, and until when. Every change that acts on the database
//! (provisioning, revoking) is done under a lease taken with a conditional write, so two invocations never act
//! on one grant at once, and a crashed holder's claim simply runs out. The rules of leases live here only.

use crate::grant::Grant;
use chrono::{DateTime, Utc};
use std::fmt;

/// How long a claim to revoke lasts: longer than a revocation takes (admin statements time out after 20 s),
/// short enough that a crashed holder delays the next attempt by one reaper run at most.
pub const REVOCATION_LEASE_SECONDS: i64 = 120;
/// How long a provisioning claim lasts: longer than the provisioner may run (its Lambda timeout is 30 s), so a
/// retry of the same request can tell a dead invocation's `pending` row from a live one within a minute.
pub const PROVISIONING_LEASE_SECONDS: i64 = 60;

/// What the holder is doing; part of the owner string, so the table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Provision,
    Revoke,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Provision => "provision",
            Purpose::Revoke => "revoke",
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Purpose::Provision => PROVISIONING_LEASE_SECONDS,
            Purpose::Revoke => REVOCATION_LEASE_SECONDS,
        }
    }
}

/// `lease_owner` and `lease_until` of an item. The owner is unique per invocation: `<purpose>:<holder>:<token>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    owner: String,
    until: i64,
}

impl Lease {
    /// A new lease for `holder` (e.g. `reaper`, `provisioner`, `grantctl`), starting now. `token` must be unique
    /// per invocation (a UUID): it is how a retry recognises its own row.
    pub fn new(purpose: Purpose, holder: &str, token: &str, now: DateTime<Utc>) -> Lease {
        Lease { owner: format!("{}:{holder}:{token}", purpose.as_str()), until: now.timestamp() + purpose.seconds() }
    }

    /// A lease as read from the table.
    pub fn from_parts(owner: String, until: i64) -> Lease {
        Lease { owner, until }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Epoch seconds at which the lease runs out.
    pub fn until(&self) -> i64 {
        self.until
    }

    /// Held, and not run out: its holder may still be acting.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now.timestamp() <= self.until
    }

    pub fn is_for(&self, purpose: Purpose) -> bool {
        self.owner.starts_with(purpose.as_str()) && self.owner[purpose.as_str().len()..].starts_with(':')
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} until {}", self.owner, self.until)
    }
}

/// Which lease a write expects on the row.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// Nobody holds a live lease (a dead holder's lease may be there: it is overwritten).
    NoLiveLease,
    /// This invocation's own lease: the write records the outcome of work done under it.
    Holding(&'a Lease),
}

/// The one rule of every conditional change to a stored grant: whether a write of a grant read as `before`
/// may replace `current` (what is stored now, None if nothing) at `now`. It may if the row is still as it was
/// read (same status, history length and attempt count), the lease on it is as `expect`ed, and, for a claim
/// `only_if_expired`, the grant was not extended past `now` meanwhile. Every store enforces exactly this: the
/// memory store by calling it, DynamoDB as a condition expression (`grant_adapters::store::replace_condition`).
pub fn may_write(
    current: Option<&Grant>,
    before: &Grant,
    expect: Expect<'_>,
    only_if_expired: bool,
    now: DateTime<Utc>,
) -> bool {
    let Some(current) = current else { return false };
    let unchanged = current.status == before.status
        && current.history.len() == before.history.len()
        && current.revoke_attempts == before.revoke_attempts;
    let lease_as_expected = match expect {
        Expect::NoLiveLease => !current.lease.as_ref().is_some_and(|lease| lease.is_live(now)),
        // The owner is unique per invocation; whether the lease ran out does not matter to its holder's record.
        Expect::Holding(lease) => current.lease.as_ref().is_some_and(|held| held.owner() == lease.owner()),
    };
    let expired = !only_if_expired || current.expires_at.timestamp() <= now.timestamp();
    unchanged && lease_as_expected && expired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::grant::tests::{sample, t};

    #[test]
    fn a_lease_runs_out() {
        let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let lease = Lease::new(Purpose::Provision, "provisioner", "t-1", now);
        assert_eq!(lease.owner(), "provision:provisioner:t-1");
        assert!(lease.is_for(Purpose::Provision) && !lease.is_for(Purpose::Revoke));
        assert!(lease.is_live(now + chrono::Duration::seconds(PROVISIONING_LEASE_SECONDS)));
        assert!(!lease.is_live(now + chrono::Duration::seconds(PROVISIONING_LEASE_SECONDS + 1)));
    }

    fn lease(owner: &str, until: i64) -> Lease {
        Lease::from_parts(owner.into(), until)
    }

    #[test]
    fn only_over_the_row_as_it_was_read() {
        let before = sample(Strategy::TempUser);
        assert!(may_write(Some(&before), &before, Expect::NoLiveLease, false, t(1)));
        assert!(!may_write(None, &before, Expect::NoLiveLease, false, t(1)), "no row");
        let mut moved = before.clone();
        moved.activate(t(1)).unwrap();
        assert!(!may_write(Some(&moved), &before, Expect::NoLiveLease, false, t(1)), "status and history");
        let mut attempted = before.clone();
        attempted.revoke_attempts += 1;
        assert!(!may_write(Some(&attempted), &before, Expect::NoLiveLease, false, t(1)), "attempts");
    }

    #[test]
    fn a_live_lease_blocks_all_but_its_holder() {
        let before = sample(Strategy::TempUser);
        let mine = lease("revoke:reaper:a", t(10).timestamp());
        let held = before.leased(mine.clone());
        assert!(!may_write(Some(&held), &before, Expect::NoLiveLease, false, t(10)), "live to its last second");
        assert!(may_write(Some(&held), &before, Expect::NoLiveLease, false, t(11)), "run out");
        assert!(may_write(Some(&held), &before, Expect::Holding(&mine), false, t(11)), "its holder, even late");
        let theirs = lease("revoke:reaper:b", t(10).timestamp());
        assert!(!may_write(Some(&held), &before, Expect::Holding(&theirs), false, t(1)));
        assert!(!may_write(Some(&before), &before, Expect::Holding(&mine), false, t(1)), "no lease held");
    }

    #[test]
    fn a_claim_only_if_expired_needs_the_stored_expiry_passed() {
        let before = sample(Strategy::TempUser); // expires at t(1800)
        assert!(!may_write(Some(&before), &before, Expect::NoLiveLease, true, t(1799)));
        assert!(may_write(Some(&before), &before, Expect::NoLiveLease, true, t(1800)));
        let mut extended = before.clone();
        extended.expires_at = t(3600); // as if extended without a history entry: the stored expiry decides
        assert!(!may_write(Some(&extended), &before, Expect::NoLiveLease, true, t(1800)));
    }
}
