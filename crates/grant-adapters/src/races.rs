//! Races between invocations, against [`MemoryStore`]: the conditions are `grant_model::lease::may_write`, the
//! same as DynamoDB's (test-support's `store_agreement` runs such races against both), so what these show of
//! the memory store holds of the table.

use crate::repo::GrantRepo;
use crate::MemoryStore;
use chrono::Duration;
use grant_model::grant::NewGrant;
use grant_model::item::GrantItem;
use grant_model::lease::{PROVISIONING_LEASE_SECONDS, REVOCATION_LEASE_SECONDS};
use grant_model::{Expect, Grant, Lease, Purpose, Strategy};

/// A grant as `grant` creates it (pending), made `created_ago` seconds before now, for `duration` seconds.
fn pending(id: &str, created_ago: i64, duration: u64) -> Grant {
    let new = NewGrant {
        grant_id: id.into(),
        request_id: None,
        requester: "alice@example.com".into(),
        approver: Some("bob@example.com".into()),
        reason: "INC-1".into(),
        database: "orders".into(),
        target: "readonly".into(),
        strategy: Strategy::TempUser,
        db_user: format!("jit_alice_{id}"),
        roles: vec!["readonly".into()],
        user_prefix: "jit_".into(),
        duration_seconds: duration,
        break_glass: false,
    };
    Grant::new_pending(new, grant_model::grant::now_seconds() - Duration::seconds(created_ago))
}

/// An active grant that expired a minute ago, stored; returned as a reaper reads it.
async fn expired(store: &MemoryStore, id: &str) -> Grant {
    let mut grant = pending(id, 3600, 3540);
    grant.activate(grant.created_at()).unwrap();
    assert!(store.insert(&grant).await.unwrap());
    grant
}

fn lease(purpose: Purpose, token: &str) -> Lease {
    Lease::new(purpose, "test", token, grant_model::grant::now_seconds())
}

#[tokio::test]
async fn two_claims_on_one_expired_grant_one_wins() {
    let store = MemoryStore::new();
    let read = expired(&store, "g-1").await;
    let (a, b) = (lease(Purpose::Revoke, "a"), lease(Purpose::Revoke, "b"));
    let (won_a, won_b) = tokio::join!(store.claim(&read, a.clone(), true), store.claim(&read, b.clone(), true));
    let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
    assert!(won_a.is_some() != won_b.is_some(), "exactly one claim wins");
    let winner = if won_a.is_some() { a } else { b };
    assert_eq!(store.get("g-1").await.unwrap().unwrap().lease(), Some(&winner));
}

#[tokio::test]
async fn a_live_lease_blocks_a_claim_until_it_runs_out() {
    let store = MemoryStore::new();
    let read = expired(&store, "g-1").await;
    assert!(store.claim(&read, lease(Purpose::Revoke, "a"), true).await.unwrap().is_some());
    let b = lease(Purpose::Revoke, "b");
    assert!(store.claim(&read, b.clone(), true).await.unwrap().is_none(), "a's lease is live");
    store.advance(REVOCATION_LEASE_SECONDS + 1);
    // b may claim from its old read: a crashed before recording anything, so the row is as b read it.
    let b = Lease::from_parts(b.owner().into(), store.now().timestamp() + REVOCATION_LEASE_SECONDS);
    assert!(store.claim(&read, b, true).await.unwrap().is_some(), "a's lease ran out");
}

#[tokio::test]
async fn a_holder_cannot_record_once_another_took_the_row_over() {
    let store = MemoryStore::new();
    let read = expired(&store, "g-1").await;
    let a = lease(Purpose::Revoke, "a");
    let claimed_a = store.claim(&read, a.clone(), true).await.unwrap().unwrap();
    store.advance(REVOCATION_LEASE_SECONDS + 1); // a is slow, its lease runs out, b takes over
    let b = Lease::from_parts("revoke:test:b".into(), store.now().timestamp() + REVOCATION_LEASE_SECONDS);
    let claimed_b = store.claim(&read, b.clone(), true).await.unwrap().unwrap();
    let mut failed = claimed_a.clone();
    failed.record_revoke_failure(store.now(), "connection refused");
    assert!(!store.replace(&claimed_a, &failed, Expect::Holding(&a)).await.unwrap(), "a lost its lease");
    let mut failed = claimed_b.clone();
    failed.record_revoke_failure(store.now(), "connection refused");
    assert!(store.replace(&claimed_b, &failed, Expect::Holding(&b)).await.unwrap());
    assert_eq!(store.get("g-1").await.unwrap().unwrap(), failed);
}

#[tokio::test]
async fn a_grant_extended_after_being_read_is_not_reaped() {
    let store = MemoryStore::new();
    let seen_by_reaper = expired(&store, "g-1").await;
    // The extension lands between the reaper's read and its claim (made by hand: `extend` refuses an expired
    // grant, and the store cannot read the caller's clock).
    let mut item = GrantItem::from(&seen_by_reaper);
    item.expires_at = store.now() + Duration::hours(1);
    item.history.push(item.history.last().unwrap().clone());
    let extended = Grant::from(item);
    assert!(store.replace(&seen_by_reaper, &extended, Expect::NoLiveLease).await.unwrap());
    let reaper = lease(Purpose::Revoke, "reaper");
    assert!(store.claim(&seen_by_reaper, reaper.clone(), true).await.unwrap().is_none(), "changed since read");
    let now = store.get("g-1").await.unwrap().unwrap();
    assert!(store.claim(&now, reaper.clone(), true).await.unwrap().is_none(), "not expired any more");
    assert!(store.claim(&now, reaper, false).await.unwrap().is_some(), "a manual revoke may end it early");
}

#[tokio::test]
async fn a_retry_tells_its_own_provisioning_lease_from_anothers() {
    let store = MemoryStore::new();
    let a = lease(Purpose::Provision, "a");
    let row_a = pending("g-1", 0, 3600).leased(a.clone());
    assert!(store.insert(&row_a).await.unwrap());
    // The SDK retried a's put after it was applied: taken, and the row holds a's own lease, so a goes on.
    assert!(!store.insert(&row_a).await.unwrap());
    let existing = store.get("g-1").await.unwrap().unwrap();
    assert_eq!(existing.lease().map(Lease::owner), Some(a.owner()));

    // A retry of the request (b) finds another's live lease: it may not take the row over...
    let b = lease(Purpose::Provision, "b");
    assert!(!store.insert(&pending("g-1", 0, 3600).leased(b.clone())).await.unwrap());
    assert!(!store.replace(&existing, &existing.leased(b.clone()), Expect::NoLiveLease).await.unwrap());
    // ...until a has died and its lease run out; then a, late, cannot record its outcome over b's.
    store.advance(PROVISIONING_LEASE_SECONDS + 1);
    let b = Lease::from_parts(b.owner().into(), store.now().timestamp() + PROVISIONING_LEASE_SECONDS);
    let taken = existing.leased(b.clone());
    assert!(store.replace(&existing, &taken, Expect::NoLiveLease).await.unwrap());
    let mut active_a = row_a.clone();
    active_a.activate(store.now()).unwrap();
    assert!(!store.replace(&row_a, &active_a, Expect::Holding(&a)).await.unwrap());
    let mut active_b = taken.clone();
    active_b.activate(store.now()).unwrap();
    assert!(store.replace(&taken, &active_b, Expect::Holding(&b)).await.unwrap());
}

#[tokio::test]
async fn a_second_insert_of_one_id_is_refused() {
    let store = MemoryStore::new();
    let first = pending("g-1", 0, 3600);
    assert!(store.insert(&first).await.unwrap());
    assert!(!store.insert(&pending("g-1", 10, 60)).await.unwrap());
    assert_eq!(store.rows(), [first]);
}

#[tokio::test]
async fn expired_pages_follow_the_cursor_oldest_first() {
    let store = MemoryStore::new();
    for (n, ago) in [(1, 300), (2, 100), (3, 200)] {
        let mut grant = pending(&format!("g-{n}"), 3600, 3600 - ago);
        grant.activate(grant.created_at()).unwrap();
        assert!(store.insert(&grant).await.unwrap());
    }
    assert!(store.insert(&pending("live", 0, 3600)).await.unwrap());
    let now = store.now().timestamp();
    let (first, cursor) = store.expired_page(now, 2, None).await.unwrap();
    let (rest, end) = store.expired_page(now, 2, cursor).await.unwrap();
    let ids: Vec<&str> = first.iter().chain(&rest).map(|g| g.grant_id()).collect();
    assert_eq!(ids, ["g-1", "g-3", "g-2"]);
    assert!(end.is_none());
}
