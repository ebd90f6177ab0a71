//! The AWS side, on moto: the config bucket (config document + admin credentials object) and the grants
//! table, created as the SPEC defines them.

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use grant_adapters::GrantStore;
use serde_json::{json, Value};
use std::collections::HashMap;
use test_support::Moto;

use crate::database::{Database, ADMIN_PASSWORD, ADMIN_USER, DB, TARGET_ROLE};
use crate::mysql_database::{MysqlDatabase, SHOP};

pub const TABLE: &str = "jit-grants";
pub const BUCKET: &str = "jit-config";
pub const CONFIG_KEY: &str = "config.json";
pub const ADMIN_SECRET_KEY: &str = "secrets/orders-admin.json";

pub type Item = HashMap<String, AttributeValue>;

pub struct Aws {
    moto: &'static Moto,
    sdk: aws_config::SdkConfig,
}

impl Aws {
    /// Starts moto (once per process; it exits with this process), blocking until it listens.
    pub async fn start() -> Aws {
        let moto = tokio::task::block_in_place(test_support::moto);
        Aws { moto, sdk: moto.sdk_config().await }
    }

    pub fn endpoint(&self) -> String {
        self.moto.endpoint()
    }

    /// The config document: one database, one `temp_user` target.
    pub fn config_document(database: &Database) -> Value {
        json!({
            "user_prefix": "jit_",
            "databases": {
                DB: {
                    "host": database.host(), "port": database.port(), "dbname": DB, "sslmode": "disable",
                    "admin_secret_key": ADMIN_SECRET_KEY,
                    "readers": [{"host": database.reader.host(), "port": database.reader.port()}],
                    "targets": {
                        TARGET_ROLE: {"strategy": "temp_user", "roles": [TARGET_ROLE], "max_duration_seconds": 3600}
                    }
                }
            }
        })
    }

    /// The bucket with `config` and the admin credentials object.
    pub async fn create_bucket(&self, config: &Value) -> Result<()> {
        let s3 = self.moto.s3().await;
        s3.create_bucket().bucket(BUCKET).send().await.with_context(|| format!("S3 CreateBucket {BUCKET}"))?;
        let admin = json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD});
        for (key, body) in [(CONFIG_KEY, config.clone()), (ADMIN_SECRET_KEY, admin)] {
            s3.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(body.to_string().into_bytes().into())
                .send()
                .await
                .with_context(|| format!("S3 PutObject {BUCKET}/{key}"))?;
        }
        Ok(())
    }

    /// The config document for `--engine mysql`: the same target on a MySQL database.
    pub fn mysql_config_document(database: &MysqlDatabase) -> Value {
        json!({
            "user_prefix": "jit_",
            "databases": {
                SHOP: {
                    "engine": "mysql", "host": database.host(), "port": database.port(), "dbname": SHOP,
                    "sslmode": "disable", "admin_secret_key": ADMIN_SECRET_KEY,
                    "targets": {
                        TARGET_ROLE: {"strategy": "temp_user", "roles": [TARGET_ROLE], "max_duration_seconds": 3600}
                    }
                }
            }
        })
    }

    pub async fn create_table(&self) -> Result<()> {
        GrantStore::new(&self.sdk, TABLE).create_table().await.with_context(|| format!("create table {TABLE}"))
    }

    /// What a Lambda needs to find the table and bucket on moto.
    pub fn lambda_env(&self) -> Vec<(String, String)> {
        [
            ("GRANTS_TABLE", TABLE.to_string()),
            ("CONFIG_BUCKET", BUCKET.to_string()),
            ("S3_FORCE_PATH_STYLE", "true".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// The grant's item as a dashboard would read it (GetItem, consistent).
    pub async fn grant_item(&self, grant_id: &str) -> Result<Item> {
        let output = aws_sdk_dynamodb::Client::new(&self.sdk)
            .get_item()
            .table_name(TABLE)
            .key("grant_id", AttributeValue::S(grant_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("DynamoDB GetItem {grant_id}"))?;
        output.item.with_context(|| format!("no item for grant {grant_id} in {TABLE}"))
    }
}

/// A string attribute of an item, or "-".
pub fn string(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(value)) => value.clone(),
        Some(AttributeValue::N(value)) => value.clone(),
        Some(other) => format!("{other:?}"),
        None => "-".to_string(),
    }
}
