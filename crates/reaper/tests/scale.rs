//! Concurrency and read cost at scale: two reapers never revoke a grant twice, and a pass reads what is expired,
//! not the table's history (measured by DynamoDB's own ScannedCount, not the reaper's word).

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{id, Env};
use futures::stream::{self, StreamExt};
use grant_adapters::GrantStore;
use reaper::Reaper;
use std::time::{Duration, Instant};
use test_support::ScannedCount;

async fn expired_grants(env: &Env, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let granted = env.grant(&format!("user{i}@example.com"), "readonly", None).await;
        ids.push(id(&granted));
    }
    stream::iter(ids.clone()).for_each_concurrent(8, |grant_id| async move { env.expire(&grant_id, 60).await }).await;
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reapers_at_once_revoke_each_of_500_grants_exactly_once() {
    grant_adapters::logging::try_init();
    let env = Env::new().await;
    let ids = expired_grants(&env, 500).await;
    let second = env.another_reaper();
    let deadline = Instant::now() + Duration::from_secs(600);
    let (a, b) = tokio::join!(env.reaper.run_pass(deadline), second.run_pass(deadline));
    let (a, b) = (a.unwrap(), b.unwrap());
    println!("reaper A: {a:?}\nreaper B: {b:?}");
    assert_eq!((a.failed, b.failed), (0, 0));
    assert_eq!(a.revoked + b.revoked, 500);
    assert!(a.revoked > 0 && b.revoked > 0, "both worked, so they really raced: {a:?} {b:?}");
    for item in env.items().await {
        let AttributeValue::L(history) = &item["history"] else { panic!("history") };
        let revocations = history.iter().filter(|h| h.as_m().unwrap()["to"].as_s().unwrap() == "revoked").count();
        assert_eq!(revocations, 1, "grant {:?} revoked {revocations} times", item["grant_id"]);
    }
    assert_eq!(env.items().await.len(), ids.len());
    assert!(env.marked_users().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_reads_the_expired_grants_not_the_history() {
    let env = Env::new().await;
    test_support::history::load(&env, 10_000, 8).await;
    expired_grants(&env, 50).await;

    let reads = ScannedCount::default();
    let store = GrantStore::from_client(reads.client(&env.sdk), &env.table);
    let reaper = Reaper::with_store(store, &env.sdk, env.settings.clone());
    let summary = reaper.run_pass(Instant::now() + Duration::from_secs(300)).await.unwrap();
    assert_eq!((summary.revoked, summary.failed), (50, 0), "{summary:?}");

    let scan = ScannedCount::default();
    let client = scan.client(&env.sdk);
    let mut pages = client.scan().table_name(&env.table).into_paginator().send();
    while let Some(page) = pages.next().await {
        page.unwrap();
    }
    println!(
        "items read by DynamoDB: reaper pass {} in {} queries; a Scan of the same table {}",
        reads.scanned(),
        reads.requests(),
        scan.scanned()
    );
    assert!((50..=60).contains(&reads.scanned()), "the pass read {} items", reads.scanned());
    assert!(scan.scanned() >= 10_050, "the comparison scan read the whole table");
}
