//! A crash at any step of provisioning or revocation leaves nothing behind after one reaper pass: no orphan role,
//! no expired live access, and every grant row still there. Each crash is reproduced by leaving exactly the
//! state the crashed process would have left, using the same SQL plans and table writes the Lambdas use.

mod common;

use chrono::{Duration, Utc};
use common::{id, s, user, Abandoned, Env, DB};
use grant_adapters::pg;
use grant_model::{naming, sql, Grant, Password, Strategy};

/// A pending grant written `age_seconds` ago by a provisioner that then died.
async fn abandoned_pending(env: &Env, strategy: Strategy, db_user: &str, roles: &[&str], age_seconds: i64) -> Grant {
    env.abandoned_pending(Abandoned { database: DB, strategy, db_user, roles, age_seconds }).await
}

/// The provisioner's CREATE ROLE transaction, committed.
async fn create_temp_user(env: &Env, username: &str) {
    let mut admin = env.pg.connect(common::ADMIN_USER, common::ADMIN_PASSWORD, DB).await.unwrap();
    let verifier = Password::generate().scram_verifier();
    let roles = vec!["readonly".to_string()];
    let statements = sql::create_temp_user(&sql::TempUser {
        username,
        scram_verifier: Some(&verifier),
        valid_until: Utc::now() + Duration::hours(1),
        connection_limit: None,
        roles: &roles,
        marker_role: "jit_managed",
        statements: &[],
    });
    let tx = admin.transaction().await.unwrap();
    for statement in &statements {
        pg::execute(&tx, statement).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// An expired active grant a reaper claimed before dying; its lease has run out.
async fn claimed_then_crashed(env: &Env, requester: &str) -> Grant {
    let granted = env.grant(requester, "readonly", None).await;
    env.expire(&id(&granted), 600).await;
    let grant = env.store().get(&id(&granted)).await.unwrap().unwrap();
    let dead = grant_model::Lease::from_parts("revoke:reaper:crashed".into(), grant.expires_at().timestamp());
    assert!(env.store().claim(&grant, dead, true).await.unwrap().is_some());
    grant
}

#[tokio::test]
async fn one_pass_after_a_crash_at_any_step_leaves_nothing_behind() {
    let env = Env::new().await;
    let admin = env.orders().await;
    let healthy = env.grant("healthy@example.com", "readonly", None).await;

    // Provisioning, crashed after writing the pending row, before any SQL.
    let before_sql =
        abandoned_pending(&env, Strategy::TempUser, &naming::temp_username("jit_", "p1"), &["readonly"], 1000).await;
    // Provisioning, crashed after the role was committed, before the row became active.
    let after_commit =
        abandoned_pending(&env, Strategy::TempUser, &naming::temp_username("jit_", "p2"), &["readonly"], 1000).await;
    create_temp_user(&env, after_commit.db_user()).await;
    // Escalation, crashed after the GRANT committed.
    let escalation = abandoned_pending(&env, Strategy::RoleEscalation, "alice", &["dba"], 1000).await;
    // Granted by the admin, as the provisioner does: on PostgreSQL 16+ a REVOKE takes back only the grantor's own
    // grant, so one made by the superuser would not be the crashed escalation's.
    let bot = env.pg.connect(common::ADMIN_USER, common::ADMIN_PASSWORD, DB).await.unwrap();
    bot.batch_execute("GRANT dba TO alice").await.unwrap();
    // A provisioning still in flight (young pending row, role just created): must be left alone.
    let in_flight =
        abandoned_pending(&env, Strategy::TempUser, &naming::temp_username("jit_", "p4"), &["readonly"], 5).await;
    create_temp_user(&env, in_flight.db_user()).await;

    // Revocation, crashed after the claim, before any SQL.
    let claimed = claimed_then_crashed(&env, "r1@example.com").await;
    // ... after NOLOGIN was committed.
    let nologin = claimed_then_crashed(&env, "r2@example.com").await;
    admin.batch_execute(&format!("ALTER ROLE {} NOLOGIN", naming::quote_ident(nologin.db_user()))).await.unwrap();
    // ... after the role was dropped, before the row was recorded.
    let dropped = claimed_then_crashed(&env, "r3@example.com").await;
    for step in sql::revoke_temp_user(&sql::TempUserRevocation {
        username: dropped.db_user(),
        retired_role: "jit_retired",
        roles: &[],
        definer_routines: &[],
        schemas: &[],
    }) {
        for statement in step {
            pg::execute(&env.pg.connect(common::ADMIN_USER, common::ADMIN_PASSWORD, DB).await.unwrap(), &statement)
                .await
                .ok();
        }
    }
    // An orphan: a marked role whose grant row is gone (purged, or written by hand).
    let orphan = naming::temp_username("jit_", "orphan");
    create_temp_user(&env, &orphan).await;
    let rows_before = env.items().await.len();

    let summary = env.pass().await;
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.orphans_dropped, 1, "{summary:?}");

    assert_eq!(env.items().await.len(), rows_before, "no grant row is lost");
    let mut expected_users = vec![user(&healthy), in_flight.db_user().to_string()];
    expected_users.sort();
    assert_eq!(env.marked_users().await, expected_users, "only live grants' users remain");
    assert!(env.memberships("alice").await.is_empty(), "the crashed escalation's membership is gone");
    for (grant, status) in [
        (&before_sql, "failed"),
        (&after_commit, "failed"),
        (&escalation, "failed"),
        (&in_flight, "pending"),
        (&claimed, "revoked"),
        (&nologin, "revoked"),
        (&dropped, "revoked"),
    ] {
        let item = env.item(grant.grant_id()).await;
        assert_eq!(s(&item, "status"), status, "{}", grant.db_user());
        assert!(!item.contains_key("lease_owner"), "lease released");
    }
    let failed = env.item(after_commit.grant_id()).await;
    assert!(s(&failed, "last_error").contains("PENDING_GRACE_SECONDS"));
    assert_eq!(s(&env.item(&id(&healthy)).await, "status"), "active");
}
