//! `revoke`, `extend` and `describe` on temporary users, against real PostgreSQL and moto.

mod common;

use chrono::{DateTime, Utc};
use common::{error_code, grant_request, s, Env};
use serde_json::json;

#[tokio::test]
async fn revoke_drops_the_user_and_records_who_and_when() {
    let env = Env::new().await;
    let granted = env.call(grant_request("alice@example.com", "readonly")).await;
    let grant_id = granted["grant"]["grant_id"].clone();
    let username = granted["grant"]["db_user"].as_str().unwrap().to_string();
    let revoke = json!({"action": "revoke", "grant_id": grant_id, "actor": "bob@example.com", "reason": "done early"});
    let revoked = env.call(revoke.clone()).await;
    assert_eq!(revoked["grant"]["status"], json!("revoked"), "{revoked}");
    assert!(!env.roles().await.contains(&username), "the role is gone");
    assert_eq!(env.call(revoke).await["grant"]["status"], json!("revoked"), "revoking twice is harmless");

    let item = env.item(grant_id.as_str().unwrap()).await;
    assert_eq!(s(&item, "revoked_by"), "bob@example.com");
    assert!(item.contains_key("purge_at") && item.contains_key("revoked_at"));
    assert!(!item.contains_key("expiry_shard"));

    let described = env.call(json!({"action": "describe", "grant_id": grant_id})).await;
    let history = described["grant"]["history"].as_array().unwrap();
    let path: Vec<(&str, &str)> =
        history.iter().map(|h| (h["to"].as_str().unwrap(), h["actor"].as_str().unwrap())).collect();
    assert_eq!(path, [("pending", "alice@example.com"), ("active", "provisioner"), ("revoked", "bob@example.com")]);
    assert_eq!(history[2]["note"], json!("done early"));
    assert!(described.get("credentials").is_none() && !described.to_string().contains("password"));
}

#[tokio::test]
async fn extend_moves_expires_at_and_valid_until_within_the_maximum() {
    let env = Env::new().await;
    let granted = env.call(grant_request("alice@example.com", "readonly")).await;
    let grant_id = granted["grant"]["grant_id"].clone();
    let username = granted["grant"]["db_user"].as_str().unwrap().to_string();
    let extend = |seconds: u64| {
        json!({"action": "extend", "grant_id": grant_id, "duration_seconds": seconds,
               "actor": "alice@example.com", "reason": "migration still running"})
    };
    assert_eq!(error_code(&env.call(extend(14401)).await), "policy_violation");
    let extended = env.call(extend(7200)).await;
    let expires: DateTime<Utc> = extended["grant"]["expires_at"].as_str().unwrap().parse().unwrap();
    assert!((expires - Utc::now()).num_seconds() > 7100);
    let valid_until: DateTime<Utc> = env
        .orders()
        .await
        .query_one("SELECT rolvaliduntil FROM pg_authid WHERE rolname = $1", &[&username])
        .await
        .unwrap()
        .get(0);
    assert_eq!(valid_until, expires);

    env.call(json!({"action": "revoke", "grant_id": grant_id, "actor": "bob@example.com"})).await;
    assert_eq!(error_code(&env.call(extend(600)).await), "invalid_state");
}

#[tokio::test]
async fn actions_on_unknown_grants_are_not_found() {
    let env = Env::new().await;
    for payload in [
        json!({"action": "describe", "grant_id": "00000000-0000-0000-0000-000000000000"}),
        json!({"action": "revoke", "grant_id": "nope", "actor": "bob"}),
        json!({"action": "extend", "grant_id": "nope", "duration_seconds": 600, "actor": "a", "reason": "r"}),
    ] {
        assert_eq!(error_code(&env.call(payload).await), "not_found");
    }
}
