//! Grants in DynamoDB. Every write is conditional: a new grant only if its id is unused, a change only if the
//! row is still as it was read (same status, history length and attempt count) and nobody holds a lease on it,
//! so two Lambdas acting on one grant cannot both succeed.
//!
//! A lease (`lease_owner`, `lease_until`: present only while an invocation provisions or revokes) is taken before
//! any SQL that acts, so two reapers, or a reaper and a manual revoke or extend, never act on one grant at once.
//! A crashed holder's lease simply runs out. The rules of leases are `grant_model::lease`'s; the conditions below
//! are `grant_model::lease::may_write` written as DynamoDB condition expressions, and the test that runs one table
//! of races against this store and [`crate::MemoryStore`] (test-support's `store_agreement`) keeps them in step.

use crate::error::Fault;
use crate::repo::{Cursor, GrantRepo, Position};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use grant_model::item::{
    active_shards, pending_shards, GrantItem, DATABASE_INDEX, EXPIRY_INDEX, EXPIRY_SHARDS, REQUESTER_INDEX,
};
use grant_model::{Grant, Lease};
use std::collections::HashMap;

/// It belongs with the rule in `grant_model::lease`; named here too, where callers have always found it.
pub use grant_model::lease::Expect;

type Item = HashMap<String, AttributeValue>;

// `may_write`, clause by clause. Missing attributes fail a comparison, as `may_write` fails on a missing row.
/// Holds when no lease is held, or the one held has run out.
const NO_LIVE_LEASE: &str = "(attribute_not_exists(lease_until) OR lease_until < :now)";
/// Holds while the row is as it was read.
const UNCHANGED: &str = "#status = :status AND size(#history) = :history_len AND #attempts = :attempts";

pub struct GrantStore {
    client: Client,
    table: String,
}

impl GrantStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: &str) -> GrantStore {
        GrantStore::from_client(Client::new(sdk), table)
    }

    pub fn from_client(client: Client, table: &str) -> GrantStore {
        GrantStore { client, table: table.to_string() }
    }

    /// Writes a new grant; false if the grant_id is already taken (a retried or concurrent request).
    pub async fn insert(&self, grant: &Grant) -> Result<bool, Fault> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(grant)?))
            .condition_expression("attribute_not_exists(grant_id)")
            .send()
            .await;
        conditional("PutItem", result)
    }

    /// Replaces `before` with `after`; false if the row changed since `before` was read, or a lease other than
    /// the one `expect`ed is live on it.
    pub async fn replace(&self, before: &Grant, after: &Grant, expect: Expect<'_>) -> Result<bool, Fault> {
        let condition = replace_condition(before, expect);
        self.put_if(after, &condition.expression, condition.values.into_iter()).await
    }

    /// Takes `lease` on a grant as it was read; None if it changed, or another holds a live lease, or (with
    /// `only_if_expired`) it was extended meanwhile. Returns the grant as now written, lease included.
    pub async fn claim(&self, grant: &Grant, lease: Lease, only_if_expired: bool) -> Result<Option<Grant>, Fault> {
        let mut condition = replace_condition(grant, Expect::NoLiveLease);
        if only_if_expired {
            condition.expression.push_str(" AND expires_at_epoch <= :now");
        }
        let claimed = grant.leased(lease);
        let written = self.put_if(&claimed, &condition.expression, condition.values.into_iter()).await?;
        Ok(written.then_some(claimed))
    }

    async fn put_if(
        &self,
        item: &Grant,
        condition: &str,
        values: impl Iterator<Item = (&'static str, AttributeValue)>,
    ) -> Result<bool, Fault> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(item)?))
            .condition_expression(condition);
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        for (alias, name) in ATTRIBUTE_ALIASES {
            request = request.expression_attribute_names(alias, name);
        }
        conditional("PutItem", request.send().await)
    }

    pub async fn get(&self, grant_id: &str) -> Result<Option<Grant>, Fault> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("grant_id", AttributeValue::S(grant_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Fault::dynamo("GetItem", e))?;
        output.item.map(from_item).transpose()
    }

    /// The live (pending or active) grants for one database user: found through the sparse expiry index (its size
    /// follows what is live, not the table's history), then each read again strongly consistently, because the
    /// index lags the table and a decision to keep or revoke a role must not rest on a stale status or lease.
    pub async fn live_grants_for_user(&self, database: &str, db_user: &str) -> Result<Vec<Grant>, Fault> {
        let candidates = self.indexed_grants_for_user(database, db_user).await?;
        let fresh = futures::future::try_join_all(candidates.iter().map(|g| self.get(g.grant_id()))).await?;
        Ok(fresh.into_iter().flatten().filter(|g| g.status().is_live()).collect())
    }

    async fn indexed_grants_for_user(&self, database: &str, db_user: &str) -> Result<Vec<Grant>, Fault> {
        collect_all(active_shards().chain(pending_shards()).map(|shard| {
            self.expiry_query(shard)
                .filter_expression("#database = :database AND db_user = :db_user")
                .expression_attribute_names("#database", "database")
                .expression_attribute_values(":database", AttributeValue::S(database.into()))
                .expression_attribute_values(":db_user", AttributeValue::S(db_user.into()))
        }))
        .await
    }

    /// Every live grant: for the orphan sweep, which must know every user that still has a reason to exist.
    pub async fn live_grants(&self) -> Result<Vec<Grant>, Fault> {
        collect_all(active_shards().chain(pending_shards()).map(|shard| self.expiry_query(shard))).await
    }

    /// Active grants with `expires_at_epoch <= now`, oldest first within a partition, one query (at most
    /// `page_size` items of one partition) per call, so a backlog is never read into memory whole. The
    /// partitions are read one after the other; a cursor names the partition and the key to start after.
    pub async fn expired_page(
        &self,
        now_epoch: i64,
        page_size: i32,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Grant>, Option<Cursor>), Fault> {
        let (index, start) = match cursor.map(|c| c.0) {
            None => (0, None),
            Some(Position::Partition { index, start }) => (index, start),
            Some(other) => {
                let message = format!("a cursor of another store: {other:?}");
                return Err(Fault::Dynamo { operation: "Query", message });
            }
        };
        let Some(shard) = active_shards().nth(index) else { return Ok((Vec::new(), None)) };
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EXPIRY_INDEX)
            .key_condition_expression("expiry_shard = :shard AND expires_at_epoch <= :now")
            .expression_attribute_values(":shard", AttributeValue::S(shard))
            .expression_attribute_values(":now", AttributeValue::N(now_epoch.to_string()))
            .scan_index_forward(true)
            .limit(page_size)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Fault::dynamo("Query", e))?;
        let next = match page.last_evaluated_key {
            Some(key) => Some(Position::Partition { index, start: Some(key) }),
            None if index + 1 < EXPIRY_SHARDS as usize => Some(Position::Partition { index: index + 1, start: None }),
            None => None,
        };
        Ok((decode_all(page.items.unwrap_or_default()), next.map(Cursor)))
    }

    /// Active grants ending in `(now_epoch, now_epoch + within]` not yet announced: a range query on each active
    /// partition of the expiry index, so the read follows what ends soon, not what is live.
    pub async fn expiring_soon(&self, now_epoch: i64, within: i64) -> Result<Vec<Grant>, Fault> {
        collect_all(active_shards().map(|shard| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(EXPIRY_INDEX)
                .key_condition_expression("expiry_shard = :shard AND expires_at_epoch BETWEEN :after AND :until")
                .filter_expression("attribute_not_exists(expiry_notice_at)")
                .expression_attribute_values(":shard", AttributeValue::S(shard))
                .expression_attribute_values(":after", AttributeValue::N((now_epoch + 1).to_string()))
                .expression_attribute_values(":until", AttributeValue::N((now_epoch + within).to_string()))
        }))
        .await
    }

    /// Every pending grant: provisionings in flight, or crashed ones for the reaper to clean up.
    pub async fn pending(&self) -> Result<Vec<Grant>, Fault> {
        collect_all(pending_shards().map(|shard| self.expiry_query(shard))).await
    }

    /// One requester's grants, newest first, from the `by-requester` index (what an audit or a dashboard asks).
    pub async fn grants_of_requester(&self, requester: &str, limit: Option<usize>) -> Result<Vec<Grant>, Fault> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(REQUESTER_INDEX)
            .key_condition_expression("requester = :requester")
            .expression_attribute_values(":requester", AttributeValue::S(requester.into()))
            .scan_index_forward(false);
        collect_at_most(query, limit.unwrap_or(usize::MAX)).await
    }

    /// One database's grants created at or after `since`, newest first, from the `by-database` index (its range
    /// key is `created_at`, so DynamoDB reads only those): every grant that can have held access to it since.
    pub async fn grants_of_database_since(
        &self,
        database: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Grant>, Fault> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DATABASE_INDEX)
            .key_condition_expression("#database = :database AND created_at >= :since")
            .expression_attribute_names("#database", "database")
            .expression_attribute_values(":database", AttributeValue::S(database.into()))
            .expression_attribute_values(":since", AttributeValue::S(grant_model::grant::format_time(since)))
            .scan_index_forward(false);
        collect(query).await
    }

    fn expiry_query(&self, shard: String) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(EXPIRY_INDEX)
            .key_condition_expression("expiry_shard = :shard")
            .expression_attribute_values(":shard", AttributeValue::S(shard))
    }

    /// Creates the table as the Terraform module defines it (the SPEC's, plus the `by-database` index): for local
    /// runs and tests.
    pub async fn create_table(&self) -> Result<(), Fault> {
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().expect("static schema")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("static schema")
        };
        let index = |name: &str, hash: &str, range: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash))
                .key_schema(key(range, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("static schema")
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("grant_id", ScalarAttributeType::S))
            .attribute_definitions(attribute("expiry_shard", ScalarAttributeType::S))
            .attribute_definitions(attribute("expires_at_epoch", ScalarAttributeType::N))
            .attribute_definitions(attribute("requester", ScalarAttributeType::S))
            .attribute_definitions(attribute("created_at", ScalarAttributeType::S))
            .attribute_definitions(attribute("database", ScalarAttributeType::S))
            .key_schema(key("grant_id", KeyType::Hash))
            .global_secondary_indexes(index(EXPIRY_INDEX, "expiry_shard", "expires_at_epoch"))
            .global_secondary_indexes(index(REQUESTER_INDEX, "requester", "created_at"))
            .global_secondary_indexes(index(DATABASE_INDEX, "database", "created_at"))
            .send()
            .await
            .map_err(|e| Fault::dynamo("CreateTable", e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name("purge_at").enabled(true).build().expect("static"),
            )
            .send()
            .await
            .map_err(|e| Fault::dynamo("UpdateTimeToLive", e))?;
        Ok(())
    }
}

/// A write condition with its placeholders' values; the names it uses are [`ATTRIBUTE_ALIASES`].
pub struct Condition {
    pub expression: String,
    pub values: Vec<(&'static str, AttributeValue)>,
}

/// The trait is the store's inherent methods: callers holding a `GrantStore` (grantctl, tests) need no import.
#[async_trait]
impl GrantRepo for GrantStore {
    async fn insert(&self, grant: &Grant) -> Result<bool, Fault> {
        GrantStore::insert(self, grant).await
    }

    async fn replace(&self, before: &Grant, after: &Grant, expect: Expect<'_>) -> Result<bool, Fault> {
        GrantStore::replace(self, before, after, expect).await
    }

    async fn claim(&self, grant: &Grant, lease: Lease, only_if_expired: bool) -> Result<Option<Grant>, Fault> {
        GrantStore::claim(self, grant, lease, only_if_expired).await
    }

    async fn get(&self, grant_id: &str) -> Result<Option<Grant>, Fault> {
        GrantStore::get(self, grant_id).await
    }

    async fn live_grants_for_user(&self, database: &str, db_user: &str) -> Result<Vec<Grant>, Fault> {
        GrantStore::live_grants_for_user(self, database, db_user).await
    }

    async fn live_grants(&self) -> Result<Vec<Grant>, Fault> {
        GrantStore::live_grants(self).await
    }

    async fn pending(&self) -> Result<Vec<Grant>, Fault> {
        GrantStore::pending(self).await
    }

    async fn expired_page(
        &self,
        now_epoch: i64,
        page_size: i32,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Grant>, Option<Cursor>), Fault> {
        GrantStore::expired_page(self, now_epoch, page_size, cursor).await
    }

    async fn expiring_soon(&self, now_epoch: i64, within: i64) -> Result<Vec<Grant>, Fault> {
        GrantStore::expiring_soon(self, now_epoch, within).await
    }

    async fn grants_of_requester(&self, requester: &str, limit: Option<usize>) -> Result<Vec<Grant>, Fault> {
        GrantStore::grants_of_requester(self, requester, limit).await
    }
}

/// What [`GrantStore::replace`] writes under: the row is as `before` and the lease on it is as `expect`ed.
/// Public for code that must issue the very same write itself (the benchmarks' floor).
pub fn replace_condition(before: &Grant, expect: Expect<'_>) -> Condition {
    let unchanged = unchanged_values(before);
    match expect {
        Expect::NoLiveLease => {
            let now = AttributeValue::N(chrono::Utc::now().timestamp().to_string());
            Condition {
                expression: format!("{UNCHANGED} AND {NO_LIVE_LEASE}"),
                values: unchanged.chain([(":now", now)]).collect(),
            }
        }
        Expect::Holding(lease) => Condition {
            expression: format!("{UNCHANGED} AND lease_owner = :owner"),
            values: unchanged.chain([(":owner", AttributeValue::S(lease.owner().into()))]).collect(),
        },
    }
}

pub const ATTRIBUTE_ALIASES: [(&str, &str); 3] =
    [("#status", "status"), ("#history", "history"), ("#attempts", "revoke_attempts")];

fn unchanged_values(grant: &Grant) -> impl Iterator<Item = (&'static str, AttributeValue)> {
    [
        (":status", AttributeValue::S(grant.status().as_str().into())),
        (":history_len", AttributeValue::N(grant.history().len().to_string())),
        (":attempts", AttributeValue::N(grant.revoke_attempts().to_string())),
    ]
    .into_iter()
}

/// The outcome of a conditional write: true if written, false if its condition did not hold.
fn conditional<T, E>(operation: &'static str, result: Result<T, E>) -> Result<bool, Fault>
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(Fault::dynamo(operation, e)),
    }
}

/// Every item of every query, the queries (one per index partition) in flight at once: a pass waits for the
/// slowest partition, not for the sum of sixteen sequential round trips.
async fn collect_all(queries: impl Iterator<Item = QueryFluentBuilder>) -> Result<Vec<Grant>, Fault> {
    let partitions = futures::future::try_join_all(queries.map(collect)).await?;
    Ok(partitions.into_iter().flatten().collect())
}

/// Every item of every page of a query.
async fn collect(query: QueryFluentBuilder) -> Result<Vec<Grant>, Fault> {
    collect_at_most(query, usize::MAX).await
}

/// The first `max` items of a query, reading no further pages than that needs.
async fn collect_at_most(query: QueryFluentBuilder, max: usize) -> Result<Vec<Grant>, Fault> {
    let mut grants = Vec::new();
    let mut pages = query.into_paginator().send();
    while grants.len() < max {
        let Some(page) = pages.next().await else { break };
        let page = page.map_err(|e| Fault::dynamo("Query", e))?;
        let room = max - grants.len();
        grants.extend(decode_all(page.items.unwrap_or_default().into_iter().take(room).collect()));
    }
    Ok(grants)
}

/// The grants of a page. An item that does not decode (a row edited by hand) is logged and left out, so that one
/// bad row cannot stop every reaper pass.
fn decode_all(items: Vec<Item>) -> Vec<Grant> {
    let mut grants = Vec::with_capacity(items.len());
    for item in items {
        let grant_id = match item.get("grant_id") {
            Some(AttributeValue::S(id)) => id.clone(),
            _ => "(none)".to_string(),
        };
        match from_item(item) {
            Ok(grant) => grants.push(grant),
            Err(fault) => tracing::error!(grant_id, error = %fault, "skipped a grant row that does not decode"),
        }
    }
    grants
}

pub fn to_item(grant: &Grant) -> Result<Item, Fault> {
    serde_dynamo::to_item(GrantItem::from(grant))
        .map_err(|e| Fault::Dynamo { operation: "encode item", message: e.to_string() })
}

pub fn from_item(item: Item) -> Result<Grant, Fault> {
    let item: GrantItem = serde_dynamo::from_item(item)
        .map_err(|e| Fault::Dynamo { operation: "decode item", message: e.to_string() })?;
    Ok(item.into())
}
