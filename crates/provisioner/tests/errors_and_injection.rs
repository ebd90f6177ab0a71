//! Every error code of the SPEC, produced by a real request; and hostile strings in every field change nothing.

mod common;

use common::{error_code, grant_request, s, Env, DB};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[tokio::test]
async fn every_spec_error_code_comes_from_a_real_request() {
    let env = Env::new().await;
    let mut seen = BTreeSet::new();
    let mut expect = |response: Value, code: &str| {
        assert_eq!(error_code(&response), code, "{response}");
        assert!(!response["error"]["message"].as_str().unwrap().is_empty());
        seen.insert(code.to_string());
    };
    expect(env.call(json!({"action": "grant", "requester": "a@x"})).await, "invalid_request");
    let mut request = grant_request("alice@example.com", "readonly");
    request["database"] = json!("billing");
    expect(env.call(request).await, "unknown_database");
    expect(env.call(grant_request("alice@example.com", "superuser")).await, "unknown_target");
    expect(env.call(grant_request("nobody@example.com", "dba")).await, "unknown_db_user");
    let mut request = grant_request("alice@example.com", "readonly");
    request["duration_seconds"] = json!(86400);
    expect(env.call(request).await, "policy_violation");
    let mut request = grant_request("bob@example.com", "dba");
    request["approver"] = json!("carol@example.com");
    expect(env.call(request).await, "already_has_access");
    let mut request = grant_request("alice@example.com", "readonly");
    request["request_id"] = json!("req-1");
    env.call(request.clone()).await;
    request["reason"] = json!("something else");
    expect(env.call(request).await, "conflict");
    expect(env.call(json!({"action": "describe", "grant_id": "missing"})).await, "not_found");
    let granted = env.call(grant_request("alice@example.com", "readonly")).await;
    let grant_id = &granted["grant"]["grant_id"];
    env.call(json!({"action": "revoke", "grant_id": grant_id, "actor": "bob"})).await;
    let extend =
        json!({"action": "extend", "grant_id": grant_id, "duration_seconds": 600, "actor": "a", "reason": "r"});
    expect(env.call(extend).await, "invalid_state");

    let all = [
        "invalid_request",
        "unknown_database",
        "unknown_target",
        "unknown_db_user",
        "policy_violation",
        "already_has_access",
        "conflict",
        "not_found",
        "invalid_state",
    ];
    assert_eq!(seen, all.iter().map(|c| c.to_string()).collect());
}

const HOSTILE: &[&str] = &[
    "x'; DROP TABLE items; --",
    "x\"; DROP ROLE readonly; --",
    "x$$; DROP ROLE dba; $$",
    "x\\'; DROP ROLE alice; --",
    "Robert'); DROP TABLE items;--@example.com",
];

async fn snapshot(env: &Env) -> (Vec<String>, Vec<String>, i64, Vec<String>) {
    let orders = env.orders().await;
    let tables = orders.query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'", &[]).await.unwrap();
    let count: i64 = orders.query_one("SELECT count(*) FROM items", &[]).await.unwrap().get(0);
    let roles = env.roles().await.into_iter().filter(|r| !r.starts_with("jit_")).collect();
    (roles, tables.iter().map(|r| r.get(0)).collect(), count, env.memberships("bob").await)
}

#[tokio::test]
async fn hostile_strings_in_every_field_change_nothing() {
    let env = Env::new().await;
    let before = snapshot(&env).await;
    for (i, evil) in HOSTILE.iter().enumerate() {
        // Temp user: requester, reason, approver and request_id are stored as data; the name is sanitised.
        let request = json!({"requester": evil, "database": DB, "target": "readonly", "reason": evil,
                             "approver": format!("{evil}-approver"), "request_id": format!("{evil}-{i}")});
        let granted = env.call(request).await;
        assert_eq!(granted["ok"], json!(true), "{granted}");
        let username = granted["grant"]["db_user"].as_str().unwrap();
        assert!(username.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{username}");
        let item = env.item(granted["grant"]["grant_id"].as_str().unwrap()).await;
        assert_eq!((s(&item, "requester"), s(&item, "reason")), (evil.to_string(), evil.to_string()));
        env.call(json!({"action": "revoke", "grant_id": granted["grant"]["grant_id"], "actor": evil, "reason": evil}))
            .await;

        // Escalation: the db_user names no existing role, however it is quoted.
        let request =
            json!({"requester": "alice@example.com", "database": DB, "target": "dba", "reason": evil, "db_user": evil});
        assert_eq!(error_code(&env.call(request).await), "unknown_db_user");
        // Database, target and grant ids are looked up, never spliced into SQL.
        let request = json!({"requester": "a@x", "database": evil, "target": evil, "reason": "r"});
        assert_eq!(error_code(&env.call(request).await), "unknown_database");
        let request = json!({"requester": "a@x", "database": DB, "target": evil, "reason": "r"});
        assert_eq!(error_code(&env.call(request).await), "unknown_target");
        assert_eq!(error_code(&env.call(json!({"action": "describe", "grant_id": evil})).await), "invalid_request");
    }
    assert_eq!(snapshot(&env).await, before);
    assert_eq!(
        env.roles()
            .await
            .iter()
            .filter(|r| r.starts_with("jit_") && !["jit_admin", "jit_managed", "jit_retired"].contains(&r.as_str()))
            .count(),
        0,
        "all revoked"
    );
}

#[tokio::test]
async fn identities_are_trimmed_and_an_approver_who_is_the_requester_is_refused() {
    let env = Env::new().await;
    let mut request = grant_request(" Alice@Example.com", "readonly");
    request["approver"] = json!("alice@example.com\u{a0}");
    assert_eq!(error_code(&env.call(request).await), "policy_violation");

    let granted = env.call(grant_request("  alice@example.com ", "readonly")).await;
    assert_eq!(granted["grant"]["requester"], json!("alice@example.com"), "{granted}");
    let grant_id = granted["grant"]["grant_id"].as_str().unwrap();
    assert_eq!(s(&env.item(grant_id).await, "requester"), "alice@example.com");
    let revoked = env.call(json!({"action": "revoke", "grant_id": grant_id, "actor": " bob@example.com "})).await;
    assert_eq!(revoked["grant"]["revoked_by"], json!("bob@example.com"), "{revoked}");
}

#[tokio::test]
async fn invisible_characters_are_refused_before_anything_is_written() {
    let env = Env::new().await;
    for c in ['\u{202e}', '\u{200b}', '\u{2028}', '\u{feff}', '\u{e000}'] {
        let value = json!(format!("alice{c}"));
        for field in ["requester", "approver", "reason", "request_id", "database", "target", "db_user"] {
            let mut request = grant_request("alice@example.com", "dba");
            request[field] = value.clone();
            assert_eq!(error_code(&env.call(request.clone()).await), "invalid_request", "{request}");
        }
        let revoke = json!({"action": "revoke", "grant_id": "g-1", "actor": value});
        assert_eq!(error_code(&env.call(revoke).await), "invalid_request");
    }
    assert!(env.items().await.is_empty(), "nothing was recorded");
}

#[tokio::test]
async fn huge_values_get_short_invalid_request_messages() {
    let env = Env::new().await;
    let huge = "x".repeat(1 << 20);
    let mut unknown_field = grant_request("alice@example.com", "readonly");
    unknown_field[&huge] = json!(1);
    for payload in [json!({"action": huge}), unknown_field, grant_request(&huge, "readonly")] {
        let refused = env.call(payload).await;
        assert_eq!(error_code(&refused), "invalid_request");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.len() <= grant_model::MAX_MESSAGE_BYTES, "{} bytes", message.len());
    }
}

#[tokio::test]
async fn json_serde_json_refuses_and_non_json_are_invalid_requests() {
    let env = Env::new().await;
    let deep = format!(r#"{{"requester": {}1{}}}"#, "[".repeat(200), "]".repeat(200));
    for body in [deep.as_bytes(), br#"{"reason": "\ud800"}"#, br#"{"duration_seconds": 1e400}"#, b"{", b"\xff"] {
        let refused = env.app.handle_bytes(body).await.unwrap();
        assert_eq!(error_code(&refused), "invalid_request", "{}", String::from_utf8_lossy(body));
    }
}
