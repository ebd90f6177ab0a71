//! Grants in DynamoDB. Every write is conditional: a new grant only if its id is unused, a change only if the
//! row is still as it was read (same status, history length and attempt count) and nobody holds a lease on it,
//! so two Lambdas acting on one grant cannot both succeed.
//!
//! A lease (`lease_owner`, `lease_until`: present only while a revocation is under way) is taken before any SQL
//! that revokes, so two reapers, or a reaper and a manual revoke or extend, never act on one grant at once. A
//! crashed holder's lease simply runs out.

use crate::error::Fault;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use grant_model::item::{active_shards, pending_shards, GrantItem, EXPIRY_INDEX, REQUESTER_INDEX};
use grant_model::Grant;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

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

    /// Replaces `before` with `after`; false if the row changed since `before` was read or is leased.
    pub async fn replace(&self, before: &Grant, after: &Grant) -> Result<bool, Fault> {
        let condition = replace_condition(before);
        self.put_if(after, &condition.expression, condition.values.into_iter()).await
    }

    /// Takes a lease of `lease_seconds` on a grant as it was read; false if it changed, or another holds a live
    /// lease, or (with `only_if_expired`) it was extended meanwhile.
    pub async fn claim(
        &self,
        grant: &Grant,
        owner: &str,
        lease_seconds: i64,
        only_if_expired: bool,
    ) -> Result<bool, Fault> {
        let now = chrono::Utc::now().timestamp();
        let mut condition = format!("{UNCHANGED} AND {NO_LIVE_LEASE}");
        if only_if_expired {
            condition.push_str(" AND expires_at_epoch <= :now");
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("grant_id", AttributeValue::S(grant.grant_id.clone()))
            .update_expression("SET lease_owner = :owner, lease_until = :until")
            .condition_expression(condition)
            .expression_attribute_values(":owner", AttributeValue::S(owner.into()))
            .expression_attribute_values(":until", AttributeValue::N((now + lease_seconds).to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        for (name, value) in unchanged_values(grant) {
            request = request.expression_attribute_values(name, value);
        }
        for (alias, name) in ATTRIBUTE_ALIASES {
            request = request.expression_attribute_names(alias, name);
        }
        conditional("UpdateItem", request.send().await)
    }

    /// Records the outcome of claimed work, which also ends the lease; false if the lease was lost meanwhile.
    pub async fn replace_claimed(&self, before: &Grant, after: &Grant, owner: &str) -> Result<bool, Fault> {
        let condition = format!("{UNCHANGED} AND lease_owner = :owner");
        let owner = AttributeValue::S(owner.into());
        self.put_if(after, &condition, unchanged_values(before).chain([(":owner", owner)])).await
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

    /// The live (pending or active) grants for one database user, from the sparse expiry index: its size follows
    /// what is live, not the table's history.
    pub async fn live_grants_for_user(&self, database: &str, db_user: &str) -> Result<Vec<Grant>, Fault> {
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

    /// Active grants with `expires_at_epoch <= now`, oldest first.
    pub async fn expired_active(&self, now_epoch: i64) -> Result<Vec<Grant>, Fault> {
        let mut grants = collect_all(active_shards().map(|shard| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(EXPIRY_INDEX)
                .key_condition_expression("expiry_shard = :shard AND expires_at_epoch <= :now")
                .expression_attribute_values(":shard", AttributeValue::S(shard))
                .expression_attribute_values(":now", AttributeValue::N(now_epoch.to_string()))
                .scan_index_forward(true)
        }))
        .await?;
        grants.sort_by_key(|g| g.expires_at);
        Ok(grants)
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

    /// One requester's grants created at or after `since`, newest first: a key condition on the `by-requester`
    /// index's range key (RFC 3339 UTC strings sort as the instants they name), so DynamoDB reads only those.
    pub async fn grants_of_requester_since(
        &self,
        requester: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Grant>, Fault> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(REQUESTER_INDEX)
            .key_condition_expression("requester = :requester AND created_at >= :since")
            .expression_attribute_values(":requester", AttributeValue::S(requester.into()))
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

    /// Creates the table as the SPEC (and the Terraform module) defines it: for local runs and tests.
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
            .key_schema(key("grant_id", KeyType::Hash))
            .global_secondary_indexes(index(EXPIRY_INDEX, "expiry_shard", "expires_at_epoch"))
            .global_secondary_indexes(index(REQUESTER_INDEX, "requester", "created_at"))
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

/// What [`GrantStore::replace`] writes under: the row is as `before` and nobody holds a live lease. Public for
/// code that must issue the very same write itself (the benchmarks' floor).
pub fn replace_condition(before: &Grant) -> Condition {
    let now = AttributeValue::N(chrono::Utc::now().timestamp().to_string());
    Condition {
        expression: format!("{UNCHANGED} AND {NO_LIVE_LEASE}"),
        values: unchanged_values(before).chain([(":now", now)]).collect(),
    }
}

pub const ATTRIBUTE_ALIASES: [(&str, &str); 3] =
    [("#status", "status"), ("#history", "history"), ("#attempts", "revoke_attempts")];

fn unchanged_values(grant: &Grant) -> impl Iterator<Item = (&'static str, AttributeValue)> {
    [
        (":status", AttributeValue::S(grant.status.as_str().into())),
        (":history_len", AttributeValue::N(grant.history.len().to_string())),
        (":attempts", AttributeValue::N(grant.revoke_attempts.to_string())),
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

/// The first `max` items of a query, reading no further pages than that needs. An item that does not decode (a
/// row edited by hand) is logged and left out, so that one bad row cannot stop every reaper pass.
async fn collect_at_most(query: QueryFluentBuilder, max: usize) -> Result<Vec<Grant>, Fault> {
    let mut grants = Vec::new();
    let mut pages = query.into_paginator().send();
    while grants.len() < max {
        let Some(page) = pages.next().await else { break };
        let page = page.map_err(|e| Fault::dynamo("Query", e))?;
        for item in page.items.unwrap_or_default() {
            if grants.len() == max {
                break;
            }
            let grant_id = match item.get("grant_id") {
                Some(AttributeValue::S(id)) => id.clone(),
                _ => "(none)".to_string(),
            };
            match from_item(item) {
                Ok(grant) => grants.push(grant),
                Err(fault) => tracing::error!(grant_id, error = %fault, "skipped a grant row that does not decode"),
            }
        }
    }
    Ok(grants)
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
