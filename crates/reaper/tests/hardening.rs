//! The security review's findings, each reproduced against real PostgreSQL and moto: a requester (or bad luck)
//! must not be able to keep access past its grant, or to get anything from its revocation.

mod common;

use common::{id, user, Env, ADMIN_PASSWORD, ADMIN_USER, DB};
use grant_model::grant::{now_seconds, NewGrant};
use grant_model::{Grant, Lease, Purpose, Strategy};
use serde_json::{json, Value};

/// A config with extra targets for these tests, on top of the fixture's.
async fn configure(env: &Env, edit: impl FnOnce(&mut Value)) {
    let mut config = env.config();
    edit(&mut config);
    env.put_object("config.json", &config).await;
    // The Lambdas cache the config for 60 s: these tests use fresh ones.
}

fn target(config: &mut Value, name: &str, body: Value) {
    config["databases"][DB]["targets"][name] = body;
}

async fn sql(env: &Env, statements: &str) {
    env.orders().await.batch_execute(statements).await.unwrap();
}

async fn owner_of(env: &Env, object: &str) -> Option<String> {
    let row = env
        .orders()
        .await
        .query_opt(
            "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE relname = $1 \
             UNION ALL SELECT pg_get_userbyid(proowner)::text FROM pg_proc WHERE proname = $1",
            &[&object],
        )
        .await
        .unwrap();
    row.map(|r| r.get(0))
}

fn password(response: &Value) -> String {
    response["credentials"]["password"].as_str().unwrap().to_string()
}

async fn revoke(env: &Env, grant_id: &str) -> Value {
    let request = json!({"action": "revoke", "grant_id": grant_id, "actor": "bob@example.com"});
    let response = env.provisioner.handle(request).await.unwrap();
    assert_eq!(response["ok"], json!(true), "{response}");
    response
}

/// Finding 1: a temporary user with CREATE leaves a SECURITY DEFINER function that grants `dba` and a view over
/// a table it could read, both to PUBLIC. After its revocation (by hand, and by expiry) neither gives a plain login
/// role anything, and nothing of it is owned by the admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_users_objects_give_nobody_anything() {
    let env = Env::new().await;
    configure(&env, |c| {
        target(
            c,
            "analyst",
            json!({"strategy": "temp_user", "roles": ["readonly", "writer"], "max_duration_seconds": 3600}),
        )
    })
    .await;
    for (round, by_expiry) in [(1, false), (2, true)] {
        let granted = env.grant(&format!("mallory{round}@example.com"), "analyst", None).await;
        let temp = env.pg.connect(&user(&granted), &password(&granted), DB).await.unwrap();
        temp.batch_execute(&format!(
            "CREATE FUNCTION evil{round}() RETURNS void LANGUAGE sql SECURITY DEFINER AS 'GRANT dba TO alice';
             CREATE VIEW leak{round} AS SELECT * FROM items;
             GRANT EXECUTE ON FUNCTION evil{round}() TO PUBLIC; GRANT SELECT ON leak{round} TO PUBLIC;"
        ))
        .await
        .unwrap();
        drop(temp);
        if by_expiry {
            env.expire(&id(&granted), 60).await;
            assert_eq!(env.pass().await.revoked, 1);
        } else {
            revoke(&env, &id(&granted)).await;
        }
        let alice = env.pg.connect("alice", "alice-password", DB).await.unwrap();
        assert!(alice.batch_execute(&format!("SELECT evil{round}()")).await.is_err(), "the function granted dba");
        assert!(alice.query(&format!("SELECT * FROM leak{round}"), &[]).await.is_err(), "the view read items");
        assert!(!env.memberships("alice").await.contains(&"dba".to_string()));
        for object in [format!("evil{round}"), format!("leak{round}")] {
            assert_eq!(owner_of(&env, &object).await.as_deref(), Some("jit_retired"), "{object}");
        }
        // Every former temporary user's objects share one owner: none may run as it.
        let definer: bool = env
            .orders()
            .await
            .query_one("SELECT prosecdef FROM pg_proc WHERE proname = $1", &[&format!("evil{round}")])
            .await
            .unwrap()
            .get(0);
        assert!(!definer, "a SECURITY DEFINER function would run as retired");
        assert!(!env.roles().await.contains(&user(&granted)));
    }
}

/// Finding 2: an expired grant, or one someone is revoking, does not keep a role for an overlapping grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_leased_overlapping_grant_does_not_keep_the_role() {
    let env = Env::new().await;
    let a = env.grant("alice@example.com", "dba", Some("alice")).await;
    let b = env.grant("alice@example.com", "dba", Some("alice")).await;
    env.expire(&id(&a), 60).await;
    env.expire(&id(&b), 60).await;
    // Another reaper claimed b and is (still) working on it.
    let store = env.store();
    let b_row = store.get(&id(&b)).await.unwrap().unwrap();
    let other = Lease::new(Purpose::Revoke, "reaper", "other", now_seconds());
    assert!(store.claim(&b_row, other, true).await.unwrap().is_some());
    let summary = env.pass().await;
    assert_eq!(summary.revoked, 1, "{summary:?}");
    assert!(env.memberships("alice").await.is_empty(), "a's revocation kept dba for an expired, leased grant");
}

/// Finding 2: a `pending` grant (which may never come to be) does not keep a role either, and the reconciler
/// takes back a membership the admin granted with no row behind it, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_grant_does_not_keep_the_role_and_the_reconciler_takes_back_drift() {
    let env = Env::new().await;
    sql(&env, "CREATE ROLE carol LOGIN PASSWORD 'carol-password'; CREATE ROLE dave LOGIN PASSWORD 'x'").await;
    let a = env.grant("alice@example.com", "dba", Some("alice")).await;
    let pending = Grant::new_pending(
        NewGrant {
            grant_id: uuid::Uuid::new_v4().to_string(),
            request_id: None,
            requester: "alice@example.com".into(),
            approver: None,
            reason: "in flight".into(),
            database: DB.into(),
            target: "dba".into(),
            strategy: Strategy::RoleEscalation,
            db_user: "alice".into(),
            roles: vec!["dba".into()],
            user_prefix: "jit_".into(),
            duration_seconds: 600,
            break_glass: false,
        },
        now_seconds(),
    );
    assert!(env.store().insert(&pending).await.unwrap());
    revoke(&env, &id(&a)).await;
    assert!(env.memberships("alice").await.is_empty(), "a's revocation kept dba for a pending grant");

    // Drift: the admin granted dave dba with no grant behind it (a crash or a race left it).
    let admin = env.pg.connect(ADMIN_USER, ADMIN_PASSWORD, DB).await.unwrap();
    admin.batch_execute("GRANT dba TO dave").await.unwrap();
    let carol = env.grant("carol@example.com", "dba", Some("carol")).await;
    let summary = env.pass().await;
    assert_eq!(summary.drift_revoked, 1, "{summary:?}");
    assert!(env.memberships("dave").await.is_empty(), "drift kept");
    assert_eq!(env.memberships("carol").await, ["dba"], "a live grant's membership was taken");
    assert_eq!(env.memberships("bob").await, ["dba"], "a membership the admin did not grant was taken");
    assert_eq!(env.pass().await.drift_revoked, 0);
    revoke(&env, &id(&carol)).await;
}

/// Finding 3: `max_extensions` and `max_total_seconds` are enforced before anything changes: the refused
/// extension moves neither the row nor `VALID UNTIL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_are_bounded_and_a_refused_one_changes_nothing() {
    let env = Env::new().await;
    configure(&env, |c| {
        target(
            c,
            "short",
            json!({"strategy": "temp_user", "roles": ["readonly"], "max_duration_seconds": 600,
                   "max_extensions": 2, "max_total_seconds": 100000}),
        )
    })
    .await;
    let granted = env.grant("erin@example.com", "short", None).await;
    let extend = json!({"action": "extend", "grant_id": id(&granted), "duration_seconds": 600, "actor": "erin", "reason": "more"});
    for _ in 0..2 {
        assert_eq!(env.provisioner.handle(extend.clone()).await.unwrap()["ok"], json!(true));
    }
    let before = (env.item(&id(&granted)).await, valid_until(&env, &user(&granted)).await);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let refused = env.provisioner.handle(extend).await.unwrap();
    assert_eq!(refused["error"]["code"], json!("policy_violation"), "{refused}");
    assert_eq!((env.item(&id(&granted)).await, valid_until(&env, &user(&granted)).await), before);
}

async fn valid_until(env: &Env, name: &str) -> String {
    let row = env
        .orders()
        .await
        .query_one("SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .unwrap();
    row.get::<_, String>(0)
}

/// Finding 4: `db_user` must be an ordinary login role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_is_only_for_an_ordinary_login_role() {
    let env = Env::new().await;
    env.grant("zed@example.com", "readonly", None).await; // creates jit_managed and jit_retired
    sql(&env, "CREATE ROLE team LOGIN; GRANT team TO alice; CREATE ROLE root LOGIN SUPERUSER").await;
    let temp_user = env.marked_users().await.remove(0);
    let items_before = env.items().await.len();
    for db_user in ["jit_managed", "jit_retired", temp_user.as_str(), ADMIN_USER, "root", "team", "readonly"] {
        let request =
            json!({"requester": "x@example.com", "database": DB, "target": "dba", "reason": "r", "db_user": db_user});
        let response = env.provisioner.handle(request).await.unwrap();
        assert_eq!(response["error"]["code"], json!("policy_violation"), "{db_user}: {response}");
    }
    assert_eq!(env.items().await.len(), items_before, "a refusal wrote something");
    assert!(!env.memberships("team").await.contains(&"dba".to_string()));
}

/// Finding 5: a target role dropped meanwhile does not stop the others from being revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_target_role_does_not_hide_the_others() {
    let env = Env::new().await;
    sql(&env, "CREATE ROLE audit NOLOGIN; GRANT audit TO jit_admin WITH ADMIN OPTION").await;
    configure(&env, |c| {
        target(c, "ops", json!({"strategy": "role_escalation", "roles": ["dba", "audit"], "max_duration_seconds": 600}))
    })
    .await;
    let granted = env.grant("alice@example.com", "ops", Some("alice")).await;
    assert_eq!(env.memberships("alice").await, ["audit", "dba"]);
    sql(&env, "DROP ROLE audit").await;
    let revoked = revoke(&env, &id(&granted)).await;
    assert_eq!(revoked["grant"]["status"], json!("revoked"));
    assert!(env.memberships("alice").await.is_empty(), "alice kept dba");
}

/// Finding 6: revocation and the orphan sweep follow the prefix a grant was made under, not today's config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_prefix_strands_nothing() {
    let env = Env::new().await;
    let kept = env.grant("frank@example.com", "readonly", None).await;
    let orphaned = env.grant("gina@example.com", "readonly", None).await;
    // A crash lost gina's row: her user is an orphan, made under jit_.
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .delete_item()
        .table_name(&env.table)
        .key("grant_id", aws_sdk_dynamodb::types::AttributeValue::S(id(&orphaned)))
        .send()
        .await
        .unwrap();
    configure(&env, |c| c["user_prefix"] = json!("tmp_")).await;
    let provisioner = provisioner::App::new(&env.sdk, env.settings.clone());
    let reaper = env.another_reaper();
    let summary = reaper.run_pass(std::time::Instant::now() + std::time::Duration::from_secs(300)).await.unwrap();
    assert_eq!(summary.orphans_dropped, 1, "{summary:?}");
    let request = json!({"action": "revoke", "grant_id": id(&kept), "actor": "ops"});
    let response = provisioner.handle(request).await.unwrap();
    assert_eq!(response["grant"]["status"], json!("revoked"), "{response}");
    assert!(env.marked_users().await.is_empty());
}

/// Finding 9: a grant whose revocation keeps failing waits its backoff out behind first attempts, and is never
/// given up on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_grants_back_off_behind_first_attempts() {
    let env = Env::new().await;
    let failing = env.grant("hal@example.com", "readonly", None).await;
    // Its user is no longer ours (someone took it out of the marker role): every revocation refuses.
    sql(&env, &format!("REVOKE jit_managed FROM \"{}\"", user(&failing))).await;
    env.expire(&id(&failing), 1000).await;
    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (0, 1), "{summary:?}");

    let fresh = env.grant("ivy@example.com", "readonly", None).await;
    env.expire(&id(&fresh), 60).await;
    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (1, 0), "the failing grant was tried again at once: {summary:?}");
    assert_eq!(summary.overdue, 1, "a grant waiting out its backoff is still overdue");
    assert_eq!(common::n(&env.item(&id(&failing)).await, "revoke_attempts"), 1);

    // Its backoff over, it is tried again (and again fails): never given up on.
    env.make_due(&id(&failing)).await;
    assert_eq!(env.pass().await.failed, 1);
    assert_eq!(common::n(&env.item(&id(&failing)).await, "revoke_attempts"), 2);
}

/// Finding 10: a retry can tell a dead invocation's `pending` row from a live one, and need not wait for the
/// reaper's grace period; nor is it stuck behind its own row when the row's write was applied but answered with
/// an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_takes_over_a_dead_invocations_row_and_knows_its_own() {
    let env = Env::new().await;
    let request = json!({"request_id": "chat-42", "requester": "jo@example.com", "database": DB,
                         "target": "readonly", "reason": "INC-1", "duration_seconds": 1800});
    // What a provisioner that died (Lambda timeout) right after its first write left: a pending row whose
    // provisioning lease ran out.
    let started = now_seconds() - chrono::Duration::seconds(90);
    let dead = Grant::new_pending(
        NewGrant {
            grant_id: grant_model::naming::grant_id_for_request("chat-42"),
            request_id: Some("chat-42".into()),
            requester: "jo@example.com".into(),
            approver: None,
            reason: "INC-1".into(),
            database: DB.into(),
            target: "readonly".into(),
            strategy: Strategy::TempUser,
            db_user: grant_model::naming::temp_username("jit_", "jo@example.com"),
            roles: vec!["readonly".into()],
            user_prefix: "jit_".into(),
            duration_seconds: 1800,
            break_glass: false,
        },
        started,
    )
    .leased(Lease::new(Purpose::Provision, "provisioner", "dead", started));
    assert!(env.store().insert(&dead).await.unwrap());
    let response = env.provisioner.handle(request).await.expect("not Busy: the row's invocation is dead");
    assert_eq!(response["grant"]["status"], json!("active"), "{response}");
    assert_eq!(user(&response), dead.db_user(), "the same grant and user");
    env.pg.connect(&user(&response), &password(&response), DB).await.expect("the credentials work");

    // The pending row's PutItem is applied, but answered with a 500: the SDK's own retry meets the row.
    let fault = test_support::ApplyThenFail::new("PutItem", 1);
    let mut app = provisioner::App::new(&env.sdk, env.settings.clone());
    app.store = std::sync::Arc::new(grant_adapters::GrantStore::from_client(fault.client(&env.sdk), &env.table));
    let request = json!({"request_id": "chat-43", "requester": "kim@example.com", "database": DB,
                         "target": "readonly", "reason": "INC-2"});
    let response = app.handle(request).await.expect("not Busy: the row is this invocation's own");
    assert_eq!(fault.injected(), 1);
    assert_eq!(response["grant"]["status"], json!("active"), "{response}");
}

/// Finding 2: a COMMIT whose answer is lost (the server committed, the client saw an error) must not leave a
/// `failed` row with the membership in place. The row says `active` before the transaction commits, so the
/// membership is accounted for, and revoked like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_commit_leaves_no_unrecorded_membership() {
    let env = Env::new().await;
    let proxy = test_support::CutAfterCommit::start(env.pg.port());
    configure(&env, |c| c["databases"][DB]["port"] = json!(proxy.port())).await;
    let app = provisioner::App::new(&env.sdk, env.settings.clone());
    let request = json!({"request_id": "amb-1", "requester": "alice@example.com", "database": DB, "target": "dba",
                         "db_user": "alice", "reason": "INC-3"});
    let outcome = app.handle(request.clone()).await;
    assert!(proxy.has_cut(), "the proxy saw no COMMIT");
    assert!(outcome.is_err(), "the lost COMMIT answer must be a fault: {outcome:?}");
    let grant_id = grant_model::naming::grant_id_for_request("amb-1");
    let status = common::s(&env.item(&grant_id).await, "status");
    assert_eq!(env.memberships("alice").await, ["dba"], "the server committed");
    assert_eq!(status, "active", "the membership exists, so its row must account for it");
    // The caller retries and gets its grant; revoking it takes the membership.
    let retried = app.handle(request).await.unwrap();
    assert_eq!(retried["grant"]["status"], json!("active"), "{retried}");
    let revoked = app.handle(json!({"action": "revoke", "grant_id": grant_id, "actor": "ops"})).await.unwrap();
    assert_eq!(revoked["grant"]["status"], json!("revoked"), "{revoked}");
    assert!(env.memberships("alice").await.is_empty());
}

/// Finding 2: two reapers and manual revokes racing over 200 overlapping escalations leave no membership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_reapers_and_revokes_leave_no_membership() {
    const USERS: usize = 20;
    const PER_USER: usize = 10;
    let env = Env::new().await;
    let users: Vec<String> = (0..USERS).map(|i| format!("racer{i}")).collect();
    for name in &users {
        sql(&env, &format!("CREATE ROLE {name} LOGIN PASSWORD 'x'")).await;
    }
    let mut grants = Vec::new();
    for _ in 0..PER_USER {
        for name in &users {
            grants.push(id(&env.grant(&format!("{name}@example.com"), "dba", Some(name)).await));
        }
    }
    let (expired, live): (Vec<_>, Vec<_>) = grants.iter().cloned().enumerate().partition(|(i, _)| i % 2 == 0);
    for (_, grant_id) in &expired {
        env.expire(grant_id, 60).await;
    }
    let (first, second) = (env.another_reaper(), env.another_reaper());
    let deadline = || std::time::Instant::now() + std::time::Duration::from_secs(600);
    let revokers: Vec<provisioner::App> =
        (0..2).map(|_| provisioner::App::new(&env.sdk, env.settings.clone())).collect();
    let manual = |app: &'static provisioner::App, ids: Vec<String>| async move {
        for grant_id in ids {
            loop {
                let request = json!({"action": "revoke", "grant_id": grant_id, "actor": "ops"});
                match app.handle(request).await {
                    Ok(response) if response["grant"]["status"] == json!("revoked") => break,
                    Ok(response) => panic!("{response}"),
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await, // Busy: retry
                }
            }
        }
    };
    let revokers: &'static [provisioner::App] = Box::leak(revokers.into_boxed_slice());
    let ids: Vec<String> = live.into_iter().map(|(_, g)| g).collect();
    let (left, right) = ids.split_at(ids.len() / 2);
    let (a, b, _, _) = tokio::join!(
        first.run_pass(deadline()),
        second.run_pass(deadline()),
        manual(&revokers[0], left.to_vec()),
        manual(&revokers[1], right.iter().rev().cloned().collect()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.failed + b.failed, 0, "{a:?} {b:?}");
    // Whatever either reaper skipped (claimed by the other) is done by now; one more pass finds nothing left.
    let last = env.pass().await;
    assert_eq!(a.revoked + b.revoked + last.revoked, expired.len(), "{a:?} {b:?} {last:?}");
    for name in &users {
        assert!(env.memberships(name).await.is_empty(), "{name} kept a membership");
    }
    for grant_id in &grants {
        assert_eq!(common::s(&env.item(grant_id).await, "status"), "revoked", "{grant_id}");
    }
}
