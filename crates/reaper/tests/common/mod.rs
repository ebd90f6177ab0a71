//! The reaper under test, beside the provisioner that makes real grants for it to reap. Time passing is
//! simulated by moving a grant's `expires_at` into the past in the table, the reaper's only source of truth.
#![allow(dead_code)] // each test binary uses a different part of this module

use aws_sdk_dynamodb::types::AttributeValue;
use grant_adapters::GrantStore;
use provisioner::App;
use reaper::{Reaper, Summary};
use serde_json::{json, Value};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};
pub use test_support::fixture::*;

pub struct Env {
    pub fixture: Fixture,
    pub provisioner: App,
    pub reaper: Reaper,
}

impl Env {
    pub async fn new() -> Env {
        let fixture = Fixture::new().await;
        let provisioner = App::new(&fixture.sdk, fixture.settings.clone());
        let reaper = Reaper::new(&fixture.sdk, fixture.settings.clone());
        Env { fixture, provisioner, reaper }
    }

    /// Another reaper, with its own clients and connections, as a second Lambda container would have.
    pub fn another_reaper(&self) -> Reaper {
        Reaper::new(&self.sdk, self.settings.clone())
    }

    pub fn store(&self) -> GrantStore {
        GrantStore::new(&self.sdk, &self.table)
    }

    /// A real grant through the provisioner; returns its response.
    pub async fn grant(&self, requester: &str, target: &str, db_user: Option<&str>) -> Value {
        let mut request = json!({"requester": requester, "database": DB, "target": target, "reason": "test"});
        if let Some(user) = db_user {
            request["db_user"] = json!(user);
        }
        let response = self.provisioner.handle(request).await.unwrap();
        assert_eq!(response["ok"], json!(true), "{response}");
        response
    }

    /// Ends a failed grant's backoff now, as if its `next_attempt_at` had passed.
    pub async fn make_due(&self, grant_id: &str) {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .update_item()
            .table_name(&self.table)
            .key("grant_id", AttributeValue::S(grant_id.into()))
            .update_expression("REMOVE next_attempt_at")
            .send()
            .await
            .unwrap();
    }

    pub async fn pass(&self) -> Summary {
        self.reaper.run_pass(Instant::now() + Duration::from_secs(300)).await.unwrap()
    }

    /// Temporary users still in the database (members of the marker role).
    pub async fn marked_users(&self) -> Vec<String> {
        let rows = self
            .orders()
            .await
            .query(
                // Not the admin: on PostgreSQL 16+ the marker's creator is a member with ADMIN OPTION.
                "SELECT u.rolname::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
                 JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = 'jit_managed' AND NOT m.admin_option \
                 ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }
}

pub fn id(response: &Value) -> String {
    response["grant"]["grant_id"].as_str().unwrap().to_string()
}

pub fn user(response: &Value) -> String {
    response["grant"]["db_user"].as_str().unwrap().to_string()
}

pub fn n(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap(),
        other => panic!("{name} is not a number: {other:?}"),
    }
}

impl Deref for Env {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.fixture
    }
}

impl DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Fixture {
        &mut self.fixture
    }
}
