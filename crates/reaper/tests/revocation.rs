//! What a pass does to expired grants, against real PostgreSQL and moto.

mod common;

use grant_adapters::store::Expect;
use grant_model::item::GrantItem;
use grant_model::Grant;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{id, n, s, user, Env, DB};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[tokio::test]
async fn expired_grants_are_revoked_and_recorded_unexpired_ones_untouched() {
    let env = Env::new().await;
    let expired = env.grant("alice@example.com", "readonly", None).await;
    let current = env.grant("carol@example.com", "readonly", None).await;
    let escalated = env.grant("alice@example.com", "dba", Some("alice")).await;
    env.expire(&id(&expired), 60).await;
    env.expire(&id(&escalated), 60).await;

    let summary = env.pass().await;
    assert_eq!((summary.examined, summary.revoked, summary.failed, summary.deferred), (2, 2, 0, 0), "{summary:?}");
    let roles = env.roles().await;
    assert!(!roles.contains(&user(&expired)), "expired temp user dropped");
    assert!(roles.contains(&user(&current)), "current temp user untouched");
    assert!(env.memberships("alice").await.is_empty(), "escalation membership revoked");
    assert_eq!(s(&env.item(&id(&current)).await, "status"), "active");

    let item = env.item(&id(&expired)).await;
    let names: BTreeSet<&str> = item.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "grant_id",
        "status",
        "requester",
        "reason",
        "database",
        "target",
        "strategy",
        "db_user",
        "roles",
        "created_at",
        "expires_at",
        "expires_at_epoch",
        "activated_at",
        "revoked_at",
        "revoked_by",
        "revoke_attempts",
        "purge_at",
        "history",
        "user_prefix",
    ]
    .into();
    assert_eq!(names, expected, "no expiry_shard (left the index), no lease left behind");
    assert_eq!((s(&item, "status"), s(&item, "revoked_by")), ("revoked".into(), "expiry".into()));
    let revoked_at: chrono::DateTime<chrono::Utc> = s(&item, "revoked_at").parse().unwrap();
    assert_eq!(n(&item, "purge_at"), revoked_at.timestamp() + 365 * 86400);
    let AttributeValue::L(history) = &item["history"] else { panic!("history") };
    let AttributeValue::M(last) = history.last().unwrap() else { panic!("entry") };
    assert_eq!((last["to"].as_s().unwrap().as_str(), last["actor"].as_s().unwrap().as_str()), ("revoked", "expiry"));

    assert_eq!(env.pass().await.examined, 0, "nothing left to look at");
}

#[tokio::test]
async fn live_sessions_end_and_owned_objects_survive_reassigned() {
    let env = Env::new().await;
    let granted = env.grant("alice@example.com", "writer", None).await;
    let credentials = &granted["credentials"];
    let session = env
        .pg
        .connect(credentials["username"].as_str().unwrap(), credentials["password"].as_str().unwrap(), DB)
        .await
        .unwrap();
    session.batch_execute("CREATE TABLE scratch (note text); INSERT INTO scratch VALUES ('keep me')").await.unwrap();
    env.expire(&id(&granted), 60).await;

    assert_eq!(env.pass().await.revoked, 1);
    assert!(session.query("SELECT 1", &[]).await.is_err(), "the live session was terminated");
    assert!(!env.roles().await.contains(&user(&granted)), "the role is gone");
    let orders = env.orders().await;
    let owner: String = orders
        .query_one("SELECT tableowner::text FROM pg_tables WHERE tablename = 'scratch'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "jit_retired", "the table survives, reassigned to retired (never to the admin)");
    let note: String = orders.query_one("SELECT note FROM scratch", &[]).await.unwrap().get(0);
    assert_eq!(note, "keep me");
}

#[tokio::test]
async fn an_expired_escalation_keeps_what_an_overlapping_grant_provides() {
    let env = Env::new().await;
    let first = env.grant("alice@example.com", "dba", Some("alice")).await;
    let second = env.grant("alice@example.com", "dba", Some("alice")).await;
    env.expire(&id(&first), 60).await;
    assert_eq!(env.pass().await.revoked, 1);
    assert_eq!(env.memberships("alice").await, ["dba"], "the second grant still provides dba");
    env.expire(&id(&second), 60).await;
    assert_eq!(env.pass().await.revoked, 1);
    assert!(env.memberships("alice").await.is_empty());
}

#[tokio::test]
async fn a_database_outage_is_recorded_and_retried_until_it_succeeds() {
    let mut env = Env::new().await;
    let grants = [
        env.grant("alice@example.com", "readonly", None).await,
        env.grant("carol@example.com", "readonly", None).await,
    ];
    for grant in &grants {
        env.expire(&id(grant), 60).await;
    }
    env.pg.stop();
    for attempt in 1..=2 {
        for grant in &grants {
            env.make_due(&id(grant)).await;
        }
        let summary = env.pass().await;
        assert_eq!((summary.revoked, summary.failed), (0, 2), "{summary:?}");
        for grant in &grants {
            let item = env.item(&id(grant)).await;
            assert_eq!(s(&item, "status"), "active", "still live, still in the index");
            assert!(item.contains_key("expiry_shard") && !item.contains_key("lease_owner"));
            assert_eq!(n(&item, "revoke_attempts"), attempt);
            assert!(s(&item, "last_error").contains("PostgreSQL"), "{}", s(&item, "last_error"));
        }
    }
    env.pg.start_again();
    for grant in &grants {
        env.make_due(&id(grant)).await;
    }
    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (2, 0), "{summary:?}");
    for grant in &grants {
        assert_eq!(s(&env.item(&id(grant)).await, "status"), "revoked");
        assert!(!env.roles().await.contains(&user(grant)));
    }
}

#[tokio::test]
async fn work_is_deferred_rather_than_started_too_close_to_the_deadline() {
    let env = Env::new().await;
    let granted = env.grant("alice@example.com", "readonly", None).await;
    env.expire(&id(&granted), 60).await;
    let summary = env.reaper.run_pass(Instant::now() + Duration::from_secs(5)).await.unwrap();
    assert_eq!((summary.examined, summary.revoked, summary.deferred), (1, 0, 1), "{summary:?}");
    assert_eq!(s(&env.item(&id(&granted)).await, "status"), "active");
    assert_eq!(env.pass().await.revoked, 1, "done on the next pass");
}

#[tokio::test]
async fn a_grant_extended_after_the_reaper_read_it_is_not_claimed() {
    let env = Env::new().await;
    let granted = env.grant("alice@example.com", "readonly", None).await;
    env.expire(&id(&granted), 1).await;
    let store = env.store();
    let seen_by_reaper = store.get(&id(&granted)).await.unwrap().unwrap();
    // The extension lands between the reaper's read and its claim.
    let mut item = GrantItem::from(&seen_by_reaper);
    item.expires_at = chrono::Utc::now() + chrono::Duration::hours(1);
    item.history.push(item.history.last().unwrap().clone());
    let extended = Grant::from(item);
    assert!(store.replace(&seen_by_reaper, &extended, Expect::NoLiveLease).await.unwrap());
    assert!(store.claim(&seen_by_reaper, test_lease(), true).await.unwrap().is_none());
    let now = store.get(&id(&granted)).await.unwrap().unwrap();
    assert!(store.claim(&now, test_lease(), true).await.unwrap().is_none(), "not expired any more");
    assert_eq!(env.pass().await.revoked, 0);
    assert!(env.roles().await.contains(&user(&granted)));
}

#[tokio::test]
async fn a_role_other_objects_depend_on_is_reported_and_kept_locked_out() {
    let env = Env::new().await;
    let granted = env.grant("alice@example.com", "readonly", None).await;
    // A privilege in another database granted by a superuser: the revocation cleans that database too (see
    // aurora.rs), but DROP OWNED run by the admin cannot take back what a role it cannot act for granted.
    let other = env.pg.superuser("postgres").await;
    other
        .batch_execute(&format!("CREATE TABLE elsewhere (x int); GRANT SELECT ON elsewhere TO {}", user(&granted)))
        .await
        .unwrap();
    env.expire(&id(&granted), 60).await;

    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (0, 1), "{summary:?}");
    let item = env.item(&id(&granted)).await;
    let error = s(&item, "last_error");
    assert!(error.contains("2BP01") && error.contains("database postgres"), "{error}");
    assert_eq!((s(&item, "status"), n(&item, "revoke_attempts")), ("active".to_string(), 1));
    let can_login: bool = env
        .orders()
        .await
        .query_one("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", &[&user(&granted)])
        .await
        .unwrap()
        .get(0);
    assert!(!can_login, "login stays off while the drop is blocked");

    other.batch_execute("DROP TABLE elsewhere").await.unwrap();
    assert_eq!(env.pass().await.revoked, 0, "not before its backoff has run out");
    env.make_due(&id(&granted)).await;
    assert_eq!(env.pass().await.revoked, 1, "retried and done once the dependency is gone");
}

#[tokio::test]
async fn two_config_entries_on_one_cluster_do_not_sweep_each_others_users() {
    let env = Env::new().await;
    // A second entry for another database of the same cluster: roles and the marker role are cluster-wide.
    let mut config = env.config();
    let mut second = config["databases"][DB].clone();
    second["dbname"] = json!("postgres");
    config["databases"]["reporting"] = second;
    env.put_object("config.json", &config).await;
    let request = json!({"requester": "rita@example.com", "database": "reporting", "target": "readonly",
                         "reason": "test"});
    let response = env.provisioner.handle(request).await.unwrap();
    assert_eq!(response["ok"], json!(true), "{response}");
    let orders_grant = env.grant("olga@example.com", "readonly", None).await;

    // A reaper whose DynamoDB client counts the queries it sends.
    let reads = test_support::ScannedCount::default();
    let store = grant_adapters::GrantStore::from_client(reads.client(&env.sdk), &env.table);
    let reaper = reaper::Reaper::with_store(store, &env.sdk, env.settings.clone());
    let summary = reaper.run_pass(Instant::now() + Duration::from_secs(300)).await.unwrap();
    assert_eq!((summary.orphans_dropped, summary.failed), (0, 0), "{summary:?}");
    let mut expected = vec![user(&response), user(&orders_grant)];
    expected.sort();
    assert_eq!(env.marked_users().await, expected, "both entries' users survive both entries' sweeps");
    // The pass reads the expired and the pending partitions once, and the active ones once more for the grants
    // ending within 15 minutes; the sweep reads the live grants once for both databases, not once per database.
    let partitions = u64::from(grant_model::item::EXPIRY_SHARDS);
    assert_eq!(reads.requests(), 2 * partitions + partitions + 2 * partitions, "queries sent by one pass");
}

#[tokio::test]
async fn a_row_that_does_not_decode_does_not_stop_the_pass() {
    let env = Env::new().await;
    let expired = env.grant("alice@example.com", "readonly", None).await;
    env.expire(&id(&expired), 60).await;
    // A live, expired row edited by hand into something that is not a grant.
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .put_item()
        .table_name(&env.table)
        .item("grant_id", AttributeValue::S("hand-edited".into()))
        .item("status", AttributeValue::S("active".into()))
        .item("expiry_shard", AttributeValue::S("0".into()))
        .item("expires_at_epoch", AttributeValue::N("1000".into()))
        .send()
        .await
        .unwrap();

    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (1, 0), "{summary:?}");
    assert_eq!(s(&env.item(&id(&expired)).await, "status"), "revoked");
}

fn test_lease() -> grant_model::Lease {
    grant_model::Lease::new(grant_model::Purpose::Revoke, "reaper", "test", grant_model::grant::now_seconds())
}
