//! `temp_user` grants against a real PostgreSQL and moto: the credentials work, carry exactly the target's
//! rights, expire inside PostgreSQL itself, and the table row is what dashboards expect.

mod common;

use chrono::{DateTime, Utc};
use common::{error_code, grant_request, s, Env, DB};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

async fn login(env: &Env, credentials: &Value) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    env.pg.connect(credentials["username"].as_str().unwrap(), credentials["password"].as_str().unwrap(), DB).await
}

#[tokio::test]
async fn credentials_log_in_with_exactly_the_target_privileges() {
    let env = Env::new().await;
    let mut request = grant_request("Alice.Smith@example.com", "readonly");
    request["duration_seconds"] = json!(1800);
    let response = env.call(request).await;
    assert_eq!(response["ok"], json!(true), "{response}");
    let grant = &response["grant"];
    let credentials = &response["credentials"];
    let username = grant["db_user"].as_str().unwrap();
    assert!(username.starts_with("jit_alice_smith_"), "{username}");
    assert_eq!(credentials["username"], grant["db_user"]);
    assert_eq!((credentials["dbname"].as_str(), credentials["sslmode"].as_str()), (Some(DB), Some("disable")));
    assert_eq!(grant["status"], json!("active"));
    let created: DateTime<Utc> = grant["created_at"].as_str().unwrap().parse().unwrap();
    let expires: DateTime<Utc> = grant["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_seconds(), 1800);

    let user = login(&env, credentials).await.expect("the issued credentials log in");
    let rows = user.query("SELECT name FROM items", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "widget");
    let denied = user.execute("INSERT INTO items VALUES (2, 'x')", &[]).await.unwrap_err();
    assert_eq!(denied.code().unwrap().code(), "42501", "readonly must not write");
    let timeout: String = user.query_one("SHOW statement_timeout", &[]).await.unwrap().get(0);
    assert_eq!(timeout, "1min", "the target's statements ran");

    let admin = env.orders().await;
    let row = admin
        .query_one(
            "SELECT rolvaliduntil, rolconnlimit, rolsuper, rolcreaterole, rolpassword FROM pg_authid WHERE rolname = $1",
            &[&username],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, DateTime<Utc>>(0), expires, "VALID UNTIL is the grant's expires_at");
    assert_eq!(row.get::<_, i32>(1), 5);
    assert!(!row.get::<_, bool>(2) && !row.get::<_, bool>(3));
    let stored: String = row.get(4);
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "PostgreSQL got a verifier, not a password");
    assert_eq!(env.memberships(username).await, ["jit_managed", "readonly"]);
}

#[tokio::test]
async fn the_table_item_carries_exactly_the_spec_attributes() {
    let env = Env::new().await;
    let response = env.call(grant_request("alice@example.com", "readonly")).await;
    let grant_id = response["grant"]["grant_id"].as_str().unwrap();
    let item = env.item(grant_id).await;
    let names: BTreeSet<&str> = item.keys().map(String::as_str).collect();
    // The SPEC's attributes a live grant has, plus `roles` (documented in the README: what was granted).
    let expected: BTreeSet<&str> = [
        "grant_id",
        "status",
        "requester",
        "approver",
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
        "revoke_attempts",
        "expiry_shard",
        "history",
        "user_prefix",
    ]
    .into();
    assert_eq!(names, expected);
    assert_eq!(s(&item, "status"), "active");
    assert_eq!(s(&item, "strategy"), "temp_user");
    assert_eq!(s(&item, "expires_at"), response["grant"]["expires_at"].as_str().unwrap());
    let expires: DateTime<Utc> = s(&item, "expires_at").parse().unwrap();
    let epoch = match &item["expires_at_epoch"] {
        aws_sdk_dynamodb::types::AttributeValue::N(n) => n.parse::<i64>().unwrap(),
        other => panic!("expires_at_epoch is {other:?}"),
    };
    assert_eq!(epoch, expires.timestamp());
    let aws_sdk_dynamodb::types::AttributeValue::L(history) = &item["history"] else { panic!("history") };
    assert_eq!(history.len(), 2, "pending, then active");
}

#[tokio::test]
async fn postgres_refuses_the_login_once_expires_at_passes() {
    let env = Env::new().await;
    let mut request = grant_request("alice@example.com", "readonly");
    request["duration_seconds"] = json!(60); // the shortest grant policy allows
    let response = env.call(request).await;
    let credentials = &response["credentials"];
    login(&env, credentials).await.expect("works while the grant lasts");
    let expires: DateTime<Utc> = response["grant"]["expires_at"].as_str().unwrap().parse().unwrap();
    let wait = (expires - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
    tokio::time::sleep(wait).await;
    let refused = login(&env, credentials).await.expect_err("PostgreSQL itself refuses after VALID UNTIL");
    assert_eq!(refused.code().map(|c| c.code()), Some("28P01"), "{refused}");
}

#[tokio::test]
async fn a_retried_request_id_returns_the_same_user_with_a_fresh_password() {
    let env = Env::new().await;
    let mut request = grant_request("alice@example.com", "readonly");
    request["request_id"] = json!("slack-T1-1700000000.123");
    let first = env.call(request.clone()).await;
    let second = env.call(request.clone()).await;
    assert_eq!(first["grant"]["grant_id"], second["grant"]["grant_id"]);
    assert_eq!(first["credentials"]["username"], second["credentials"]["username"]);
    assert_ne!(first["credentials"]["password"], second["credentials"]["password"]);
    assert!(login(&env, &first["credentials"]).await.is_err(), "the old password no longer works");
    login(&env, &second["credentials"]).await.expect("the fresh password works");
    assert_eq!(env.items().await.len(), 1, "one grant, one row");

    request["duration_seconds"] = json!(600);
    assert_eq!(error_code(&env.call(request.clone()).await), "conflict");
    request["duration_seconds"] = json!(3600); // the default the first request got: same request again
    assert_eq!(env.call(request).await["ok"], json!(true));
}

#[tokio::test]
async fn a_failing_transaction_leaves_nothing_in_the_database_and_a_failed_row() {
    let env = Env::new().await;
    let roles_before = env.roles().await;
    let fault = env.invoke(grant_request("alice@example.com", "missing-role")).await.unwrap_err();
    assert!(fault.to_string().contains("no_such_role"), "{fault}");
    assert_eq!(fault.kind(), "Config", "a role that does not exist is the config's fault, not a passing one");
    let ours = ["jit_managed", "jit_retired"];
    let roles_after: Vec<String> = env.roles().await.into_iter().filter(|r| !ours.contains(&r.as_str())).collect();
    assert_eq!(roles_after, roles_before, "no role created");
    let items = env.items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(s(&items[0], "status"), "failed");
    assert!(s(&items[0], "last_error").contains("no_such_role"));
    assert!(!items[0].contains_key("expiry_shard"), "a failed grant leaves the expiry index");
}
