//! Grants in DynamoDB. Every write is conditional: a new grant only if its id is unused, a change only if the
//! row is still as it was read (same status, history length and attempt count), so two Lambdas acting on one
//! grant cannot both succeed.

use crate::error::Fault;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use grant_model::item::{all_expiry_shards, GrantItem, EXPIRY_INDEX, REQUESTER_INDEX};
use grant_model::Grant;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

pub struct GrantStore {
    client: Client,
    table: String,
}

impl GrantStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: &str) -> GrantStore {
        GrantStore {
            client: Client::new(sdk),
            table: table.to_string(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
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
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Fault::dynamo("PutItem", e)),
        }
    }

    /// Replaces `before` with `after`; false if the row changed since `before` was read.
    pub async fn replace(&self, before: &Grant, after: &Grant) -> Result<bool, Fault> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(after)?))
            .condition_expression(
                "#status = :status AND size(#history) = :history_len AND #attempts = :attempts",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#history", "history")
            .expression_attribute_names("#attempts", "revoke_attempts")
            .expression_attribute_values(
                ":status",
                AttributeValue::S(before.status.as_str().into()),
            )
            .expression_attribute_values(
                ":history_len",
                AttributeValue::N(before.history.len().to_string()),
            )
            .expression_attribute_values(
                ":attempts",
                AttributeValue::N(before.revoke_attempts.to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Fault::dynamo("PutItem", e)),
        }
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
    pub async fn live_grants_for_user(
        &self,
        database: &str,
        db_user: &str,
    ) -> Result<Vec<Grant>, Fault> {
        let mut grants = Vec::new();
        for shard in all_expiry_shards() {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(EXPIRY_INDEX)
                .key_condition_expression("expiry_shard = :shard")
                .filter_expression("#database = :database AND db_user = :db_user")
                .expression_attribute_names("#database", "database")
                .expression_attribute_values(":shard", AttributeValue::S(shard))
                .expression_attribute_values(":database", AttributeValue::S(database.into()))
                .expression_attribute_values(":db_user", AttributeValue::S(db_user.into()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| Fault::dynamo("Query", e))?;
                for item in page.items.unwrap_or_default() {
                    grants.push(from_item(item)?);
                }
            }
        }
        Ok(grants.into_iter().filter(|g| g.status.is_live()).collect())
    }

    /// Creates the table as the SPEC (and the Terraform module) defines it: for local runs and tests.
    pub async fn create_table(&self) -> Result<(), Fault> {
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .expect("static schema")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("static schema")
        };
        let index = |name: &str, hash: &str, range: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash))
                .key_schema(key(range, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
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
                TimeToLiveSpecification::builder()
                    .attribute_name("purge_at")
                    .enabled(true)
                    .build()
                    .expect("static"),
            )
            .send()
            .await
            .map_err(|e| Fault::dynamo("UpdateTimeToLive", e))?;
        Ok(())
    }
}

pub fn to_item(grant: &Grant) -> Result<Item, Fault> {
    serde_dynamo::to_item(GrantItem::from(grant)).map_err(|e| Fault::Dynamo {
        operation: "encode item",
        message: e.to_string(),
    })
}

pub fn from_item(item: Item) -> Result<Grant, Fault> {
    let item: GrantItem = serde_dynamo::from_item(item).map_err(|e| Fault::Dynamo {
        operation: "decode item",
        message: e.to_string(),
    })?;
    Ok(item.into())
}
