//! What the benchmarks stand on: test-support's fixture (a PostgreSQL cluster set up like an Aurora database, a
//! table and config bucket on moto) and the provisioner that makes real grants in it. Time passing is simulated
//! by moving a grant's expiry into the past in the table, the reaper's only source of truth.

use anyhow::{bail, ensure, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt, TryStreamExt};
use provisioner::App;
use serde_json::Value;
use std::ops::Deref;
use test_support::fixture::{grant_request, Fixture, DB};

/// Grants made or rows written at once while setting up: enough to overlap the round trips, few enough not to
/// swamp a 2-core machine.
const SETUP_CONCURRENCY: usize = 8;

pub struct Bench {
    pub fixture: Fixture,
    /// Makes the grants the benchmarks then revoke; not itself measured.
    pub provisioner: App,
}

/// A temporary user made through the provisioner.
pub struct Granted {
    pub grant_id: String,
    pub user: String,
    pub password: String,
}

impl Granted {
    /// The grant in a successful `grant` response for a temporary user.
    pub fn from_response(response: &Value) -> Result<Granted> {
        ensure!(response["ok"] == Value::Bool(true), "grant refused: {response}");
        let text = |pointer: &str| response.pointer(pointer).and_then(Value::as_str).map(str::to_string);
        match (text("/grant/grant_id"), text("/grant/db_user"), text("/credentials/password")) {
            (Some(grant_id), Some(user), Some(password)) => Ok(Granted { grant_id, user, password }),
            _ => bail!("unexpected grant response: {response}"),
        }
    }
}

impl Bench {
    pub fn on(fixture: Fixture) -> Bench {
        let provisioner = App::new(&fixture.sdk, fixture.settings.clone());
        Bench { fixture, provisioner }
    }

    /// `count` real `readonly` grants (temporary users), for requesters `<prefix>-<n>@example.com`.
    pub async fn grant_many(&self, prefix: &str, count: usize) -> Result<Vec<Granted>> {
        stream::iter(0..count)
            .map(|n| self.grant(format!("{prefix}-{n}@example.com")))
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    pub async fn grant(&self, requester: String) -> Result<Granted> {
        Granted::from_response(&self.provisioner.handle(grant_request(&requester, "readonly")).await?)
    }

    /// Makes the grants look as if they expired a minute ago.
    pub async fn expire(&self, grants: &[Granted]) -> Result<()> {
        stream::iter(grants).for_each_concurrent(SETUP_CONCURRENCY, |g| self.fixture.expire(&g.grant_id, 60)).await;
        Ok(())
    }

    /// Removes the grants' rows, for grants whose access a benchmark removed behind the table's back.
    pub async fn delete_rows(&self, grants: &[Granted]) -> Result<()> {
        let client = aws_sdk_dynamodb::Client::new(&self.sdk);
        stream::iter(grants)
            .map(|grant| {
                client
                    .delete_item()
                    .table_name(&self.table)
                    .key("grant_id", AttributeValue::S(grant.grant_id.clone()))
                    .send()
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// An open, idle session as each of `grants`' users: what revocation must terminate.
    pub async fn open_sessions(&self, grants: &[Granted]) -> Result<Vec<tokio_postgres::Client>> {
        stream::iter(grants)
            .map(|grant| self.pg.connect(&grant.user, &grant.password, DB))
            .buffer_unordered(SETUP_CONCURRENCY)
            .try_collect()
            .await
            .context("log in as a temporary user")
    }

    /// The grants as the table holds them, for code that takes a `Grant`.
    pub async fn grants(&self, grants: &[Granted]) -> Result<Vec<grant_model::Grant>> {
        let store = grant_adapters::GrantStore::new(&self.sdk, &self.table);
        stream::iter(grants)
            .map(|granted| async { store.get(&granted.grant_id).await?.context("a grant's row is missing") })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Lets the set-up's aftermath pass before a measured turn: a checkpoint writes out what creating the users
    /// dirtied, and a pause lets moto finish its last requests.
    pub async fn settle(&self) -> Result<()> {
        self.orders().await.batch_execute("CHECKPOINT").await.context("checkpoint")?;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        Ok(())
    }

    /// How many of the grants' users still exist in the database.
    pub async fn existing_users(&self, grants: &[Granted]) -> Result<i64> {
        let names: Vec<&str> = grants.iter().map(|g| g.user.as_str()).collect();
        let row =
            self.orders().await.query_one("SELECT count(*) FROM pg_roles WHERE rolname = ANY($1)", &[&names]).await?;
        Ok(row.get(0))
    }
}

/// Raises `max_connections` (a restart): the default 100 is fewer than the live sessions some runs hold.
pub async fn allow_connections(fixture: &mut Fixture, max_connections: usize) -> Result<()> {
    let postgres = fixture.pg.superuser("postgres").await;
    postgres.batch_execute(&format!("ALTER SYSTEM SET max_connections = {max_connections}")).await?;
    drop(postgres);
    fixture.pg.stop();
    fixture.pg.start_again();
    Ok(())
}

impl Deref for Bench {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.fixture
    }
}
