//! Grants in memory, for unit tests: every write checks `grant_model::lease::may_write` under one lock, the rule
//! the DynamoDB store writes as condition expressions, so races between invocations are tests that take
//! milliseconds. Reads that DynamoDB answers from an index answer here from the rows themselves: this store has
//! no index lag (the DynamoDB store re-reads where lag would matter).

use crate::error::Fault;
use crate::repo::{Cursor, GrantRepo, Position};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use grant_model::grant::now_seconds;
use grant_model::lease::may_write;
use grant_model::{Expect, Grant, Lease, Status};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct MemoryStore {
    rows: Mutex<BTreeMap<String, Grant>>,
    /// Seconds added to the wall clock: a test lets time pass (a lease run out) without waiting.
    skew: AtomicI64,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Moves this store's clock `seconds` ahead: what it compares leases and expiries with.
    pub fn advance(&self, seconds: i64) {
        self.skew.fetch_add(seconds, Ordering::SeqCst);
    }

    /// The time this store's conditions are checked at.
    pub fn now(&self) -> DateTime<Utc> {
        now_seconds() + Duration::seconds(self.skew.load(Ordering::SeqCst))
    }

    /// Every row, in id order.
    pub fn rows(&self) -> Vec<Grant> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Grant>> {
        // A test that panicked while holding the lock cannot have left a row half written: writes are one insert.
        self.rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `after` if the stored row passes the rule; the check and the write under one lock, as DynamoDB
    /// does a conditional put.
    fn write_if(&self, before: &Grant, after: &Grant, expect: Expect<'_>, only_if_expired: bool) -> bool {
        let now = self.now();
        let mut rows = self.lock();
        let allowed = may_write(rows.get(before.grant_id()), before, expect, only_if_expired, now);
        if allowed {
            rows.insert(after.grant_id().to_string(), after.clone());
        }
        allowed
    }

    fn select(&self, keep: impl Fn(&Grant) -> bool) -> Vec<Grant> {
        self.lock().values().filter(|g| keep(g)).cloned().collect()
    }
}

#[async_trait]
impl GrantRepo for MemoryStore {
    async fn insert(&self, grant: &Grant) -> Result<bool, Fault> {
        let mut rows = self.lock();
        if rows.contains_key(grant.grant_id()) {
            return Ok(false);
        }
        rows.insert(grant.grant_id().to_string(), grant.clone());
        Ok(true)
    }

    async fn replace(&self, before: &Grant, after: &Grant, expect: Expect<'_>) -> Result<bool, Fault> {
        Ok(self.write_if(before, after, expect, false))
    }

    async fn claim(&self, grant: &Grant, lease: Lease, only_if_expired: bool) -> Result<Option<Grant>, Fault> {
        let claimed = grant.leased(lease);
        Ok(self.write_if(grant, &claimed, Expect::NoLiveLease, only_if_expired).then_some(claimed))
    }

    async fn get(&self, grant_id: &str) -> Result<Option<Grant>, Fault> {
        Ok(self.lock().get(grant_id).cloned())
    }

    async fn live_grants_for_user(&self, database: &str, db_user: &str) -> Result<Vec<Grant>, Fault> {
        Ok(self.select(|g| g.status().is_live() && g.database() == database && g.db_user() == db_user))
    }

    async fn live_grants(&self) -> Result<Vec<Grant>, Fault> {
        Ok(self.select(|g| g.status().is_live()))
    }

    async fn pending(&self) -> Result<Vec<Grant>, Fault> {
        Ok(self.select(|g| g.status() == Status::Pending))
    }

    /// One partition, in (expiry, id) order: the order DynamoDB gives within a partition.
    async fn expired_page(
        &self,
        now_epoch: i64,
        page_size: i32,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Grant>, Option<Cursor>), Fault> {
        let after = match cursor.map(|c| c.0) {
            None => None,
            Some(Position::After { expires_at_epoch, grant_id }) => Some((expires_at_epoch, grant_id)),
            Some(other) => {
                return Err(Fault::Dynamo {
                    operation: "Query",
                    message: format!("a cursor of another store: {other:?}"),
                })
            }
        };
        let key = |g: &Grant| (g.expires_at().timestamp(), g.grant_id().to_string());
        let mut expired = self.select(|g| {
            g.status() == Status::Active
                && g.expires_at().timestamp() <= now_epoch
                && after.as_ref().is_none_or(|after| key(g) > *after)
        });
        expired.sort_by_key(key);
        let size = usize::try_from(page_size.max(1)).unwrap_or(1);
        // Like DynamoDB, a full page says "there may be more", and the next call finds out.
        let next = (expired.len() >= size).then(|| {
            let (expires_at_epoch, grant_id) = key(&expired[size - 1]);
            Cursor(Position::After { expires_at_epoch, grant_id })
        });
        expired.truncate(size);
        Ok((expired, next))
    }

    async fn expiring_soon(&self, now_epoch: i64, within: i64) -> Result<Vec<Grant>, Fault> {
        Ok(self.select(|g| {
            let end = g.expires_at().timestamp();
            g.status() == Status::Active
                && g.expiry_notice_at().is_none()
                && end > now_epoch
                && end <= now_epoch + within
        }))
    }

    async fn grants_of_requester(&self, requester: &str, limit: Option<usize>) -> Result<Vec<Grant>, Fault> {
        let mut grants = self.select(|g| g.requester() == requester);
        grants.sort_by_key(|g| std::cmp::Reverse(g.created_at()));
        grants.truncate(limit.unwrap_or(usize::MAX));
        Ok(grants)
    }
}
