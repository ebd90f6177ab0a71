//! A grant as a DynamoDB item, with the SPEC's attribute names (dashboards read them). The attributes that only
//! serve indexes (`expires_at_epoch`, `expiry_shard`) are derived here from the grant, never stored beside it.

use crate::config::Strategy;
use crate::grant::{Grant, HistoryEntry, Status};
use crate::lease::Lease;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Partitions of the sparse `by-expiry` index: spreads the write load of many live grants; the reaper queries
/// each one.
pub const EXPIRY_SHARDS: u32 = 8;
pub const EXPIRY_INDEX: &str = "by-expiry";
pub const REQUESTER_INDEX: &str = "by-requester";
/// Hash `database`, range `created_at`: a database's grants over a time range (the dashboard's timeline). Not in
/// the SPEC: a deviation, documented in the README's contract notes.
pub const DATABASE_INDEX: &str = "by-database";

/// The item exactly as written to and read from the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantItem {
    pub grant_id: String,
    pub status: Status,
    pub requester: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub database: String,
    pub target: String,
    pub strategy: Strategy,
    pub db_user: String,
    pub roles: Vec<String>,
    #[serde(with = "crate::grant::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::grant::rfc3339")]
    pub expires_at: DateTime<Utc>,
    pub expires_at_epoch: i64,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_time")]
    pub activated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_time")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(default)]
    pub revoke_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_shard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_at: Option<i64>,
    pub history: Vec<HistoryEntry>,
    /// SPEC: present and true only on break-glass grants.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// Contract note: the `user_prefix` the grant was made under (revocation follows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_prefix: Option<String>,
    /// Contract note: present only while an invocation provisions or revokes the grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
    /// Contract note: after a failed revocation, the reaper's next attempt is no earlier than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    /// Contract note: when the reaper announced the grant's coming end (`Grant Expiring Soon`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_time")]
    pub expiry_notice_at: Option<DateTime<Utc>>,
    /// Contract note: the secret's ARN or the parameter's name the credentials were delivered to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<String>,
}

const PENDING_SHARD_PREFIX: &str = "pending-";

/// The `by-expiry` partition a live grant is in: `<n>` while active, `pending-<n>` while pending, so the reaper
/// reads only what has expired plus the (normally empty) pending partitions. `n` is stable for a grant_id
/// (FNV-1a) and spreads grants evenly. None for terminal grants: the index is sparse.
pub fn expiry_shard(grant_id: &str, status: Status) -> Option<String> {
    let hash = grant_id.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let n = hash % EXPIRY_SHARDS;
    match status {
        Status::Active => Some(n.to_string()),
        Status::Pending => Some(format!("{PENDING_SHARD_PREFIX}{n}")),
        Status::Revoked | Status::Failed => None,
    }
}

/// The partitions holding active grants, queried by expiry.
pub fn active_shards() -> impl Iterator<Item = String> {
    (0..EXPIRY_SHARDS).map(|n| n.to_string())
}

/// The partitions holding pending grants: read whole, they only hold provisionings in flight or crashed.
pub fn pending_shards() -> impl Iterator<Item = String> {
    (0..EXPIRY_SHARDS).map(|n| format!("{PENDING_SHARD_PREFIX}{n}"))
}

impl From<&Grant> for GrantItem {
    fn from(g: &Grant) -> Self {
        GrantItem {
            grant_id: g.grant_id.clone(),
            status: g.status,
            requester: g.requester.clone(),
            approver: g.approver.clone(),
            reason: g.reason.clone(),
            request_id: g.request_id.clone(),
            database: g.database.clone(),
            target: g.target.clone(),
            strategy: g.strategy,
            db_user: g.db_user.clone(),
            roles: g.roles.clone(),
            created_at: g.created_at,
            expires_at: g.expires_at,
            expires_at_epoch: g.expires_at.timestamp(),
            activated_at: g.activated_at,
            revoked_at: g.revoked_at,
            revoked_by: g.revoked_by.clone(),
            revoke_attempts: g.revoke_attempts,
            last_error: g.last_error.clone(),
            // Sparse index: only live grants are in it, so the reaper's reads follow what is live.
            expiry_shard: expiry_shard(&g.grant_id, g.status),
            purge_at: g.purge_at,
            history: g.history.clone(),
            break_glass: g.break_glass,
            user_prefix: g.user_prefix.clone(),
            lease_owner: g.lease.as_ref().map(|l| l.owner().to_string()),
            lease_until: g.lease.as_ref().map(Lease::until),
            next_attempt_at: g.next_attempt_at,
            expiry_notice_at: g.expiry_notice_at,
            credentials_ref: g.credentials_ref.clone(),
        }
    }
}

impl From<GrantItem> for Grant {
    fn from(i: GrantItem) -> Self {
        Grant {
            grant_id: i.grant_id,
            status: i.status,
            request_id: i.request_id,
            requester: i.requester,
            approver: i.approver,
            reason: i.reason,
            database: i.database,
            target: i.target,
            strategy: i.strategy,
            db_user: i.db_user,
            roles: i.roles,
            created_at: i.created_at,
            expires_at: i.expires_at,
            activated_at: i.activated_at,
            revoked_at: i.revoked_at,
            revoked_by: i.revoked_by,
            revoke_attempts: i.revoke_attempts,
            last_error: i.last_error,
            purge_at: i.purge_at,
            history: i.history,
            break_glass: i.break_glass,
            user_prefix: i.user_prefix,
            lease: match (i.lease_owner, i.lease_until) {
                (Some(owner), Some(until)) => Some(Lease::from_parts(owner, until)),
                _ => None,
            },
            next_attempt_at: i.next_attempt_at,
            expiry_notice_at: i.expiry_notice_at,
            credentials_ref: i.credentials_ref,
        }
    }
}

mod optional_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => crate::grant::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => DateTime::parse_from_rfc3339(&text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::tests::{sample, t};
    use crate::grant::{Retention, RevokedBy};
    use serde_dynamo::{AttributeValue, Item};
    use std::collections::BTreeSet;

    fn item(g: &Grant) -> Item {
        serde_dynamo::to_item(GrantItem::from(g)).unwrap()
    }

    fn names(item: &Item) -> BTreeSet<String> {
        let map: &std::collections::HashMap<String, AttributeValue> = item.as_ref();
        map.keys().cloned().collect()
    }

    #[test]
    fn live_item_attributes_and_types() {
        let mut g = sample(Strategy::TempUser);
        g.activate(t(1)).unwrap();
        let it = item(&g);
        let expected: BTreeSet<String> = [
            "grant_id",
            "status",
            "requester",
            "approver",
            "reason",
            "request_id",
            "database",
            "target",
            "strategy",
            "db_user",
            "roles",
            "created_at",
            "expires_at",
            "expires_at_epoch",
            "activated_at",
            "revoke_attempts",
            "expiry_shard",
            "history",
            "user_prefix",
        ]
        .map(String::from)
        .into();
        assert_eq!(names(&it), expected);
        let map: &std::collections::HashMap<String, AttributeValue> = it.as_ref();
        assert_eq!(map["status"], AttributeValue::S("active".into()));
        assert_eq!(map["strategy"], AttributeValue::S("temp_user".into()));
        assert_eq!(map["expires_at"], AttributeValue::S("2026-11-18T11:36:40Z".into()));
        assert_eq!(map["expires_at_epoch"], AttributeValue::N(t(1800).timestamp().to_string()));
        let AttributeValue::L(history) = &map["history"] else { panic!("history is not a list") };
        let AttributeValue::M(first) = &history[0] else { panic!("history entry is not a map") };
        let keys: BTreeSet<_> = first.keys().map(String::as_str).collect();
        assert_eq!(keys, ["actor", "at", "from", "note", "to"].into());
        assert_eq!(first["from"], AttributeValue::Null(true));
    }

    #[test]
    fn terminal_items_leave_the_expiry_index_and_get_a_ttl() {
        let mut g = sample(Strategy::RoleEscalation);
        g.activate(t(1)).unwrap();
        g.revoke(t(2), &RevokedBy::Expiry, "expired", Retention { days: 1 }).unwrap();
        let it = item(&g);
        let attrs = names(&it);
        assert!(!attrs.contains("expiry_shard"));
        for present in ["purge_at", "revoked_at", "revoked_by"] {
            assert!(attrs.contains(present), "{present}");
        }
        let back: GrantItem = serde_dynamo::from_item(it).unwrap();
        assert_eq!(Grant::from(back), g);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(expiry_shard("abc", Status::Active), expiry_shard("abc", Status::Active));
        let used: BTreeSet<_> = (0..200).map(|i| expiry_shard(&format!("grant-{i}"), Status::Active)).collect();
        assert_eq!(used, active_shards().map(Some).collect());
        let pending: BTreeSet<_> = (0..200).map(|i| expiry_shard(&format!("g-{i}"), Status::Pending)).collect();
        assert_eq!(pending, pending_shards().map(Some).collect());
        assert_eq!(expiry_shard("abc", Status::Failed), None);
    }
}
