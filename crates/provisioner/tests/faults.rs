//! Transient faults are function errors and lose nothing; the caller's retry completes the grant.

mod common;

use common::{grant_request, s, Env, ADMIN_USER};
use grant_adapters::Fault;
use serde_json::json;

#[tokio::test]
async fn database_down_is_a_function_error_and_the_retry_succeeds() {
    let mut env = Env::new().await;
    let mut request = grant_request("alice@example.com", "readonly");
    request["request_id"] = json!("req-db-down");
    env.pg.stop();
    let fault = env.invoke(request.clone()).await.unwrap_err();
    assert!(matches!(fault, Fault::Postgres { .. }), "{fault}");
    let items = env.items().await;
    assert_eq!(items.len(), 1, "the attempt is on record");
    assert_eq!(s(&items[0], "status"), "failed", "never active while the database is down");
    assert!(!s(&items[0], "last_error").is_empty());

    env.pg.start_again();
    let retried = env.call(request).await;
    assert_eq!(retried["grant"]["status"], json!("active"), "{retried}");
    assert_eq!(retried["grant"]["grant_id"], json!(s(&items[0], "grant_id")), "same grant");
    let user = env.pg.connect(
        retried["credentials"]["username"].as_str().unwrap(),
        retried["credentials"]["password"].as_str().unwrap(),
        common::DB,
    );
    user.await.expect("the retried grant's credentials work");
    let history = env.call(json!({"action": "describe", "grant_id": retried["grant"]["grant_id"]})).await;
    let statuses: Vec<&str> =
        history["grant"]["history"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["pending", "failed", "pending", "active"]);
}

#[tokio::test]
async fn revoke_with_the_database_down_keeps_the_grant_active() {
    let mut env = Env::new().await;
    let granted = env.call(grant_request("alice@example.com", "readonly")).await;
    let grant_id = granted["grant"]["grant_id"].as_str().unwrap().to_string();
    env.pg.stop();
    let revoke = json!({"action": "revoke", "grant_id": grant_id, "actor": "bob"});
    assert!(env.invoke(revoke.clone()).await.is_err());
    assert_eq!(s(&env.item(&grant_id).await, "status"), "active", "not recorded as revoked while access remains");
    env.pg.start_again();
    assert_eq!(env.call(revoke).await["grant"]["status"], json!("revoked"));
}

#[tokio::test]
async fn a_rotated_admin_password_is_picked_up_without_a_restart() {
    let env = Env::new().await;
    assert_eq!(env.call(grant_request("alice@example.com", "readonly")).await["ok"], json!(true));
    let rotated = "rotated-admin-password";
    let postgres = env.pg.superuser("postgres").await;
    postgres.batch_execute(&format!("ALTER ROLE {ADMIN_USER} PASSWORD '{rotated}'")).await.unwrap();
    env.put_object("secrets/orders-admin.json", &json!({"username": ADMIN_USER, "password": rotated})).await;
    // The warm connection dies (as after a failover); the next one must use the new password.
    postgres
        .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", &[&ADMIN_USER])
        .await
        .unwrap();
    let granted = env.call(grant_request("alice@example.com", "readonly")).await;
    assert_eq!(granted["ok"], json!(true), "{granted}");
}
