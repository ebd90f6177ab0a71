//! One test environment per test: a throwaway PostgreSQL cluster set up like an Aurora database (a
//! non-superuser admin with CREATEROLE and ADMIN OPTION on the target roles), and a fresh table and config bucket
//! on the shared moto server, with the config document and admin credentials in place.

use crate::{moto, unique_name, PgCluster};
use aws_sdk_dynamodb::types::AttributeValue;
use grant_adapters::{GrantStore, Settings};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const ADMIN_USER: &str = "jit_admin";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const DB: &str = "orders";

pub struct Fixture {
    pub pg: PgCluster,
    /// The table, the bucket and their clients; `fixture.table` etc. reach them through `Deref`.
    pub cloud: Cloud,
}

/// A fresh grants table and config bucket on the shared moto server, whatever the database engine.
pub struct Cloud {
    pub table: String,
    pub bucket: String,
    pub sdk: aws_config::SdkConfig,
    pub settings: Settings,
}

impl std::ops::Deref for Fixture {
    type Target = Cloud;
    fn deref(&self) -> &Cloud {
        &self.cloud
    }
}

/// Roles and data as an operator would prepare them (see the runbook): the admin can create roles and hand out
/// exactly the target roles, and nothing else.
const DATABASE_SETUP: &[&str] = &[
    "CREATE ROLE readonly NOLOGIN",
    "CREATE ROLE dba NOLOGIN",
    "CREATE ROLE writer NOLOGIN",
    "CREATE ROLE alice LOGIN PASSWORD 'alice-password'",
    "CREATE ROLE bob LOGIN PASSWORD 'bob-password'",
    "GRANT dba TO bob",
];
const ORDERS_SETUP: &[&str] = &[
    "CREATE TABLE items (id int PRIMARY KEY, name text)",
    "INSERT INTO items VALUES (1, 'widget')",
    "GRANT SELECT ON items TO readonly",
    "GRANT ALL ON items TO dba",
    "GRANT CREATE, USAGE ON SCHEMA public TO writer",
];

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with_cluster(PgCluster::start()).await
    }

    /// The same set-up on a given cluster (e.g. one started with TLS).
    pub async fn with_cluster(pg: PgCluster) -> Fixture {
        let postgres = pg.superuser("postgres").await;
        postgres.batch_execute(&format!("CREATE DATABASE {DB}")).await.unwrap();
        postgres
            .batch_execute(&format!(
                "CREATE ROLE {ADMIN_USER} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}';
                 GRANT pg_signal_backend TO {ADMIN_USER};"
            ))
            .await
            .unwrap();
        for statement in DATABASE_SETUP {
            postgres.batch_execute(statement).await.unwrap();
        }
        postgres
            .batch_execute(&format!("GRANT readonly, dba, writer TO {ADMIN_USER} WITH ADMIN OPTION"))
            .await
            .unwrap();
        let orders = pg.superuser(DB).await;
        for statement in ORDERS_SETUP {
            orders.batch_execute(statement).await.unwrap();
        }
        // WITH GRANT OPTION: revocation lends `retired` CREATE on the schema for the moment it takes over a function.
        orders
            .batch_execute(&format!("GRANT CREATE, USAGE ON SCHEMA public TO {ADMIN_USER} WITH GRANT OPTION"))
            .await
            .unwrap();

        let env = Fixture { pg, cloud: Cloud::new().await };
        env.put_object("config.json", &env.config()).await;
        env.put_object("secrets/orders-admin.json", &json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD})).await;
        env
    }

    /// The config document these tests run with: the SPEC's example, pointed at the local cluster.
    pub fn config(&self) -> Value {
        json!({
            "user_prefix": "jit_",
            "databases": {
                DB: {
                    "host": "127.0.0.1", "port": self.pg.port(), "dbname": DB, "sslmode": "disable",
                    "admin_secret_key": "secrets/orders-admin.json",
                    "targets": {
                        "readonly": {
                            "strategy": "temp_user", "roles": ["readonly"],
                            "statements": ["ALTER ROLE {username} SET statement_timeout = '60s'"],
                            "default_duration_seconds": 3600, "max_duration_seconds": 14400, "connection_limit": 5
                        },
                        "writer": {"strategy": "temp_user", "roles": ["writer"], "max_duration_seconds": 3600},
                        "dba": {"strategy": "role_escalation", "roles": ["dba"], "max_duration_seconds": 3600},
                        "missing-role": {"strategy": "temp_user", "roles": ["no_such_role"], "max_duration_seconds": 3600}
                    }
                }
            }
        })
    }

    pub async fn orders(&self) -> tokio_postgres::Client {
        self.pg.superuser(DB).await
    }

    /// Names of all roles in the cluster, sorted.
    pub async fn roles(&self) -> Vec<String> {
        let rows = self.orders().await.query("SELECT rolname::text FROM pg_roles ORDER BY 1", &[]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Roles `user` is directly a member of.
    pub async fn memberships(&self, user: &str) -> Vec<String> {
        let rows = self
            .orders()
            .await
            .query(
                "SELECT r.rolname::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
                 JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1 ORDER BY 1",
                &[&user],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }
}

/// A `pending` grant row as a provisioner that died would have left it.
pub struct Abandoned<'a> {
    pub database: &'a str,
    pub strategy: grant_model::Strategy,
    pub db_user: &'a str,
    pub roles: &'a [&'a str],
    /// How long ago it was written.
    pub age_seconds: i64,
}

impl Cloud {
    /// Writes `row` to the table; returns the grant.
    pub async fn abandoned_pending(&self, row: Abandoned<'_>) -> grant_model::Grant {
        use grant_model::grant::{now_seconds, NewGrant};
        let grant = grant_model::Grant::new_pending(
            NewGrant {
                grant_id: uuid::Uuid::new_v4().to_string(),
                request_id: None,
                requester: "crash@example.com".into(),
                approver: None,
                reason: "crash test".into(),
                database: row.database.into(),
                target: if row.strategy == grant_model::Strategy::TempUser { "readonly" } else { "dba" }.into(),
                strategy: row.strategy,
                db_user: row.db_user.into(),
                roles: row.roles.iter().map(|r| r.to_string()).collect(),
                duration_seconds: 3600,
                user_prefix: "jit_".into(),
                break_glass: false,
            },
            now_seconds() - chrono::Duration::seconds(row.age_seconds),
        );
        assert!(GrantStore::new(&self.sdk, &self.table).insert(&grant).await.unwrap());
        grant
    }

    /// A new table and bucket.
    pub async fn new() -> Cloud {
        let sdk = moto().sdk_config().await;
        let table = unique_name("grants");
        let bucket = unique_name("config");
        let settings = Settings::from_lookup(|name| match name {
            "GRANTS_TABLE" => Some(table.clone()),
            "CONFIG_BUCKET" => Some(bucket.clone()),
            "S3_FORCE_PATH_STYLE" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        GrantStore::new(&sdk, &table).create_table().await.unwrap();
        moto().s3().await.create_bucket().bucket(&bucket).send().await.unwrap();
        Cloud { table, bucket, sdk, settings }
    }

    pub async fn put_object(&self, key: &str, body: &Value) {
        self.put_raw(key, body.to_string().into_bytes()).await;
    }

    pub async fn put_raw(&self, key: &str, body: Vec<u8>) {
        moto().s3().await.put_object().bucket(&self.bucket).key(key).body(body.into()).send().await.unwrap();
    }

    /// Environment variables for running the real binary against this environment.
    pub fn lambda_env(&self) -> Vec<(String, String)> {
        [
            ("GRANTS_TABLE", self.table.as_str()),
            ("CONFIG_BUCKET", self.bucket.as_str()),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("AWS_ENDPOINT_URL", &moto().endpoint()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Makes a grant look as if it expired `seconds_ago`. Time passing is simulated in the table, the only clock
    /// the reaper and grantctl read.
    pub async fn expire(&self, grant_id: &str, seconds_ago: i64) {
        let at = chrono::Utc::now() - chrono::Duration::seconds(seconds_ago);
        let at = chrono::DateTime::from_timestamp(at.timestamp(), 0).expect("a whole second");
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .update_item()
            .table_name(&self.table)
            .key("grant_id", AttributeValue::S(grant_id.into()))
            .update_expression("SET expires_at = :at, expires_at_epoch = :epoch")
            .expression_attribute_values(":at", AttributeValue::S(grant_model::grant::format_time(at)))
            .expression_attribute_values(":epoch", AttributeValue::N(at.timestamp().to_string()))
            .send()
            .await
            .unwrap();
    }

    /// Every item in the table, as DynamoDB returns it.
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let client = aws_sdk_dynamodb::Client::new(&self.sdk);
        let output = client.scan().table_name(&self.table).send().await.unwrap();
        output.items.unwrap_or_default()
    }

    pub async fn item(&self, grant_id: &str) -> HashMap<String, AttributeValue> {
        let client = aws_sdk_dynamodb::Client::new(&self.sdk);
        let key = AttributeValue::S(grant_id.to_string());
        let output = client.get_item().table_name(&self.table).key("grant_id", key).send().await.unwrap();
        output.item.unwrap_or_else(|| panic!("no item for {grant_id}"))
    }
}

pub fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(v)) => v.clone(),
        other => panic!("{name} is not a string attribute: {other:?}"),
    }
}

pub fn grant_request(requester: &str, target: &str) -> Value {
    json!({"action": "grant", "requester": requester, "database": DB, "target": target,
           "reason": "INC-4521 check failed migration", "approver": "bob@example.com"})
}

pub fn error_code(response: &Value) -> &str {
    assert_eq!(response["ok"], json!(false), "{response}");
    response["error"]["code"].as_str().unwrap()
}
