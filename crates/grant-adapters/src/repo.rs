//! What the Lambdas need of a grant store, as a trait: [`crate::GrantStore`] (DynamoDB) in production,
//! [`crate::MemoryStore`] in unit tests. Both enforce one rule for every conditional write,
//! `grant_model::lease::may_write`, so a race between two invocations is a millisecond test against memory; the
//! suites against moto show the DynamoDB encoding of the rule agrees.

use crate::error::Fault;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use grant_model::{Expect, Grant, Lease};
use std::collections::HashMap;

#[async_trait]
pub trait GrantRepo: Send + Sync {
    /// Writes a new grant; false if the grant_id is already taken (a retried or concurrent request).
    async fn insert(&self, grant: &Grant) -> Result<bool, Fault>;

    /// Replaces `before` with `after`; false if the row changed since `before` was read, or a lease other than
    /// the one `expect`ed is live on it.
    async fn replace(&self, before: &Grant, after: &Grant, expect: Expect<'_>) -> Result<bool, Fault>;

    /// Takes `lease` on a grant as it was read; None if it changed, or another holds a live lease, or (with
    /// `only_if_expired`) it was extended meanwhile. Returns the grant as now written, lease included.
    async fn claim(&self, grant: &Grant, lease: Lease, only_if_expired: bool) -> Result<Option<Grant>, Fault>;

    /// The grant as stored now (a strongly consistent read).
    async fn get(&self, grant_id: &str) -> Result<Option<Grant>, Fault>;

    /// The live (pending or active) grants for one database user, each as stored now.
    async fn live_grants_for_user(&self, database: &str, db_user: &str) -> Result<Vec<Grant>, Fault>;

    /// Every live grant (through the index: it may lag the table by a moment).
    async fn live_grants(&self) -> Result<Vec<Grant>, Fault>;

    /// Every pending grant: provisionings in flight, or crashed ones for the reaper to clean up.
    async fn pending(&self) -> Result<Vec<Grant>, Fault>;

    /// One page of the active grants with `expires_at_epoch <= now_epoch`, oldest first within a partition,
    /// and where the next page starts (None after the last). A page may be empty while more follow. Pass the
    /// same `now_epoch` for every page of one read.
    async fn expired_page(
        &self,
        now_epoch: i64,
        page_size: i32,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Grant>, Option<Cursor>), Fault>;

    /// Active grants ending in `(now_epoch, now_epoch + within]` whose end has not been announced yet
    /// (`Grant::expires_soon`): one range query per expiry index partition.
    async fn expiring_soon(&self, now_epoch: i64, within: i64) -> Result<Vec<Grant>, Fault>;

    /// One requester's grants, newest first, at most `limit`.
    async fn grants_of_requester(&self, requester: &str, limit: Option<usize>) -> Result<Vec<Grant>, Fault>;
}

/// Where a paged read goes on. Opaque: only the store that returned it understands it.
#[derive(Debug, Clone)]
pub struct Cursor(pub(crate) Position);

#[derive(Debug, Clone)]
pub(crate) enum Position {
    /// DynamoDB: the index partition being read (by its place in `active_shards()`) and, within it, the key
    /// the next query starts after.
    Partition { index: usize, start: Option<HashMap<String, AttributeValue>> },
    /// Memory: the last grant returned, in the read's order (expiry, then id).
    After { expires_at_epoch: i64, grant_id: String },
}
