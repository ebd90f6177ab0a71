//! Years of use, in the table: grants revoked long ago, out of the sparse expiry index. Written with
//! BatchWriteItem (25 rows a request), several requests in flight.

use anyhow::{bail, Result};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::stream::{self, StreamExt, TryStreamExt};
use grant_adapters::store::to_item;
use grant_model::grant::{now_seconds, NewGrant, Retention};
use grant_model::{Grant, RevokedBy, Strategy};
use std::time::{Duration, Instant};
use test_support::fixture::{Fixture, DB};

/// BatchWriteItem's limit.
const BATCH: usize = 25;
/// Attempts at a batch's unprocessed items (DynamoDB returns some when throttled) before giving up.
const ATTEMPTS: usize = 5;

/// Writes `count` revoked grants with `concurrency` requests in flight; returns how long it took.
pub async fn load(fixture: &Fixture, count: usize, concurrency: usize) -> Result<Duration> {
    let started = Instant::now();
    let client = aws_sdk_dynamodb::Client::new(&fixture.sdk);
    let retention = Retention { days: 365 };
    let start = now_seconds() - chrono::Duration::days(30);
    stream::iter((0..count).step_by(BATCH))
        .map(|first| {
            let client = client.clone();
            async move {
                let mut writes = (first..count.min(first + BATCH))
                    .map(|n| {
                        let item = to_item(&revoked(n, start, retention)?)?;
                        Ok(WriteRequest::builder()
                            .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                            .build())
                    })
                    .collect::<Result<Vec<_>>>()?;
                for _ in 0..ATTEMPTS {
                    let out = client.batch_write_item().request_items(&fixture.table, writes).send().await?;
                    writes = out.unprocessed_items.unwrap_or_default().remove(&fixture.table).unwrap_or_default();
                    if writes.is_empty() {
                        return Ok(());
                    }
                }
                bail!("{} rows still unprocessed after {ATTEMPTS} attempts", writes.len())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(started.elapsed())
}

/// The `n`th history row: granted, activated and revoked by expiry an hour later, a month ago.
fn revoked(n: usize, start: chrono::DateTime<chrono::Utc>, retention: Retention) -> Result<Grant> {
    let mut grant = Grant::new_pending(
        NewGrant {
            grant_id: format!("history-{n}"),
            request_id: None,
            requester: format!("old{}@example.com", n % 97),
            approver: Some("bob@example.com".into()),
            reason: "history".into(),
            database: DB.into(),
            target: "readonly".into(),
            strategy: Strategy::TempUser,
            db_user: format!("jit_old_{n}"),
            roles: vec!["readonly".into()],
            duration_seconds: 3600,
        },
        start,
    );
    grant.activate(start)?;
    grant.revoke(start + chrono::Duration::hours(1), &RevokedBy::Expiry, "expired", retention)?;
    Ok(grant)
}
