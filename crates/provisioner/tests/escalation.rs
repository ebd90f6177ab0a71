//! `role_escalation` grants: an existing user gets the target roles for a while, and loses exactly what we gave.

mod common;

use common::{error_code, grant_request, Env};
use serde_json::{json, Value};

fn escalation(requester: &str, db_user: Option<&str>) -> Value {
    let mut request = grant_request(requester, "dba");
    if let Some(user) = db_user {
        request["db_user"] = json!(user);
    }
    request
}

fn revoke(grant: &Value) -> Value {
    json!({"action": "revoke", "grant_id": grant["grant"]["grant_id"], "actor": "carol@example.com", "reason": "done"})
}

#[tokio::test]
async fn grant_and_revoke_a_membership_derived_from_the_requester() {
    let env = Env::new().await;
    let granted = env.call(escalation("alice@example.com", None)).await;
    assert_eq!(granted["ok"], json!(true), "{granted}");
    assert_eq!(granted["grant"]["db_user"], json!("alice"));
    assert!(granted.get("credentials").is_none(), "escalations issue no credentials");
    assert_eq!(env.memberships("alice").await, ["dba"]);

    // A live session that switched role keeps the role's rights until it is ended.
    let session = env.pg.connect("alice", "alice-password", common::DB).await.unwrap();
    session.batch_execute("SET ROLE dba; SELECT * FROM items").await.unwrap();

    let revoked = env.call(revoke(&granted)).await;
    assert_eq!(revoked["grant"]["status"], json!("revoked"), "{revoked}");
    assert_eq!(revoked["grant"]["revoked_by"], json!("carol@example.com"));
    assert!(env.memberships("alice").await.is_empty());
    assert!(session.query("SELECT 1", &[]).await.is_err(), "the escalated session was terminated");
    assert!(env.roles().await.contains(&"alice".to_string()), "the user itself stays");
}

#[tokio::test]
async fn overlapping_grants_keep_the_access_the_other_still_provides() {
    let env = Env::new().await;
    let first = env.call(escalation("alice@example.com", Some("alice"))).await;
    let second = env.call(escalation("alice@example.com", Some("alice"))).await;
    assert_eq!(second["ok"], json!(true), "an overlapping grant is allowed: {second}");
    env.call(revoke(&first)).await;
    assert_eq!(env.memberships("alice").await, ["dba"], "the second grant still provides dba");
    env.call(revoke(&second)).await;
    assert!(env.memberships("alice").await.is_empty());
}

#[tokio::test]
async fn a_membership_that_existed_before_is_refused_and_never_touched() {
    let env = Env::new().await;
    let mut request = escalation("bob@example.com", None);
    request["approver"] = json!("carol@example.com");
    let refused = env.call(request).await;
    assert_eq!(error_code(&refused), "already_has_access");
    assert!(env.items().await.is_empty(), "a refused request writes nothing");
    assert_eq!(env.memberships("bob").await, ["dba"]);
}

#[tokio::test]
async fn unknown_and_hostile_users_are_refused() {
    let env = Env::new().await;
    assert_eq!(error_code(&env.call(escalation("zed@example.com", None)).await), "unknown_db_user");
    let hostile = env.call(escalation("alice@example.com", Some("alice\"; DROP ROLE dba; --"))).await;
    assert_eq!(error_code(&hostile), "unknown_db_user");
    assert!(env.roles().await.contains(&"dba".to_string()));
    assert!(env.items().await.is_empty());
}

/// On Aurora the master user, which is not a superuser, creates the application's users, and on PostgreSQL 16+
/// that makes it a member of each (with ADMIN OPTION only, which passes no rights on). Such a user is still an
/// ordinary login role, not a group, and can be escalated.
#[tokio::test]
async fn a_user_created_by_a_non_superuser_can_be_escalated() {
    let env = Env::new().await;
    let postgres = env.pg.superuser("postgres").await;
    postgres
        .batch_execute(
            "CREATE ROLE master LOGIN CREATEROLE; SET ROLE master; \
             CREATE ROLE carol LOGIN PASSWORD 'carol-password'; RESET ROLE",
        )
        .await
        .unwrap();
    let granted = env.call(escalation("carol@example.com", None)).await;
    assert_eq!(granted["ok"], json!(true), "{granted}");
    assert_eq!(env.memberships("carol").await, ["dba"]);
    env.call(revoke(&granted)).await;
    assert!(env.memberships("carol").await.is_empty());
}
