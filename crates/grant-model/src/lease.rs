//! A lease: who is working on a grant right now, and until when. Every change that acts on the database
//! (provisioning, revoking) is done under a lease taken with a conditional write, so two invocations never act
//! on one grant at once, and a crashed holder's claim simply runs out. The rules of leases live here only.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_runs_out() {
        let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let lease = Lease::new(Purpose::Provision, "provisioner", "t-1", now);
        assert_eq!(lease.owner(), "provision:provisioner:t-1");
        assert!(lease.is_for(Purpose::Provision) && !lease.is_for(Purpose::Revoke));
        assert!(lease.is_live(now + chrono::Duration::seconds(PROVISIONING_LEASE_SECONDS)));
        assert!(!lease.is_live(now + chrono::Duration::seconds(PROVISIONING_LEASE_SECONDS + 1)));
    }
}
