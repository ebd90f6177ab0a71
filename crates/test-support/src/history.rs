//! Years of use, in the table: grants revoked long ago, out of the sparse expiry index. Written with
//! BatchWriteItem (25 rows a request), several requests in flight. For the tests and benchmarks of read cost.

use crate::fixture::{Fixture, DB};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::stream::{self, StreamExt};
use grant_adapters::store::to_item;
use grant_model::grant::{now_seconds, NewGrant, Retention};
use grant_model::{Grant, RevokedBy, Strategy};
use std::time::{Duration, Instant};

/// BatchWriteItem's limit.
const BATCH: usize = 25;
/// Attempts at a batch's unprocessed items (DynamoDB returns some when throttled) before giving up.
const ATTEMPTS: usize = 5;

/// Writes `count` revoked grants with `concurrency` requests in flight; returns how long it took. Panics if
/// DynamoDB still leaves rows unprocessed after a few attempts.
pub async fn load(fixture: &Fixture, count: usize, concurrency: usize) -> Duration {
    let started = Instant::now();
    let client = aws_sdk_dynamodb::Client::new(&fixture.sdk);
    let retention = Retention { days: 365 };
    let start = now_seconds() - chrono::Duration::days(30);
    stream::iter((0..count).step_by(BATCH))
        .for_each_concurrent(concurrency, |first| {
            let client = client.clone();
            async move {
                let mut writes: Vec<WriteRequest> = (first..count.min(first + BATCH))
                    .map(|n| {
                        let item = to_item(&revoked(n, start, retention)).expect("a grant maps to an item");
                        let put = PutRequest::builder().set_item(Some(item)).build().expect("an item is set");
                        WriteRequest::builder().put_request(put).build()
                    })
                    .collect();
                for _ in 0..ATTEMPTS {
                    let out = client.batch_write_item().request_items(&fixture.table, writes).send().await.unwrap();
                    writes = out.unprocessed_items.unwrap_or_default().remove(&fixture.table).unwrap_or_default();
                    if writes.is_empty() {
                        return;
                    }
                }
                panic!("{} history rows still unprocessed after {ATTEMPTS} attempts", writes.len())
            }
        })
        .await;
    started.elapsed()
}

/// The `n`th history row: granted, activated and revoked by expiry an hour later, a month ago.
fn revoked(n: usize, start: chrono::DateTime<chrono::Utc>, retention: Retention) -> Grant {
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
            user_prefix: "jit_".into(),
            break_glass: false,
        },
        start,
    );
    grant.activate(start).expect("a pending grant activates");
    grant.revoke(start + chrono::Duration::hours(1), &RevokedBy::Expiry, "expired", retention).expect("revocable");
    grant
}
