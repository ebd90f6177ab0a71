//! The MySQL engine (`engine: mysql`) on a real MariaDB 10.11 server and moto: the PostgreSQL suite's
//! behaviours, through the real provisioner and reaper.

use chrono::{Duration, Utc};
use grant_model::mysql::{self as mysql_sql, Flavor, NewUser};
use grant_model::{Grant, Password, Strategy};
use mysql_async::prelude::Queryable;
use provisioner::App;
use reaper::{Reaper, Summary};
use serde_json::{json, Value};
use std::time::Instant;
use test_support::fixture::{s, Abandoned, ADMIN_PASSWORD, ADMIN_USER};
use test_support::mysql_fixture::{MysqlFixture, MYSQL_DB};

struct Env {
    fixture: MysqlFixture,
    provisioner: App,
    reaper: Reaper,
}

impl std::ops::Deref for Env {
    type Target = MysqlFixture;
    fn deref(&self) -> &MysqlFixture {
        &self.fixture
    }
}

impl Env {
    async fn new() -> Env {
        Env::with(MysqlFixture::new().await)
    }

    fn with(fixture: MysqlFixture) -> Env {
        let provisioner = App::new(&fixture.sdk, fixture.settings.clone());
        let reaper = Reaper::new(&fixture.sdk, fixture.settings.clone());
        Env { fixture, provisioner, reaper }
    }

    async fn call(&self, request: Value) -> Value {
        self.provisioner.handle(request).await.unwrap()
    }

    async fn grant(&self, request: Value) -> Value {
        let response = self.call(request).await;
        assert_eq!(response["ok"], json!(true), "{response}");
        response
    }

    async fn pass(&self) -> Summary {
        self.reaper.run_pass(Instant::now() + std::time::Duration::from_secs(300)).await.unwrap()
    }

    /// The expiry event's time for `user`, as the server holds it (UTC), or None.
    fn expiry_event(&self, user: &str) -> Option<String> {
        let at = self.root_value(&format!(
            "SELECT CONVERT_TZ(EXECUTE_AT, @@session.time_zone, '+00:00') FROM information_schema.EVENTS \
             WHERE EVENT_SCHEMA = 'jit_expiry' AND EVENT_NAME = 'expire_{user}'"
        ));
        (!at.is_empty()).then_some(at)
    }
}

fn request(requester: &str, target: &str) -> Value {
    json!({"requester": requester, "database": MYSQL_DB, "target": target, "reason": "INC-7 test"})
}

fn id(response: &Value) -> String {
    response["grant"]["grant_id"].as_str().unwrap().to_string()
}

fn user(response: &Value) -> String {
    response["grant"]["db_user"].as_str().unwrap().to_string()
}

fn password(response: &Value) -> String {
    response["credentials"]["password"].as_str().unwrap().to_string()
}

fn revoke(grant_id: &str) -> Value {
    json!({"action": "revoke", "grant_id": grant_id, "actor": "bob@example.com", "reason": "done"})
}

/// Whether `conn`'s session still answers.
async fn alive(conn: &mut mysql_async::Conn) -> bool {
    conn.query_first::<i64, _>("SELECT 1").await.is_ok()
}

#[tokio::test]
async fn a_temp_user_has_only_its_targets_privileges_until_revoked() {
    let env = Env::new().await;
    let granted = env.grant(request("Alice.Smith@example.com", "readonly")).await;
    let (name, secret) = (user(&granted), password(&granted));
    assert!(name.len() <= 32 && name.starts_with("jit_alice_smith_"), "{name}");
    assert_eq!(granted["credentials"]["port"], json!(env.db.port()));

    let mut session = env.connect(&name, &secret, false).await.expect("the returned credentials log in");
    let names: Vec<String> = session.query("SELECT name FROM items").await.unwrap();
    assert_eq!(names, ["widget"]);
    let insert = session.query_drop("INSERT INTO items VALUES (2, 'gadget')").await.unwrap_err().to_string();
    assert!(insert.contains("1142"), "{insert}");
    assert!(session.query_drop("SELECT * FROM mysql.user").await.is_err());
    assert!(session.query_drop("CREATE USER x IDENTIFIED BY 'y'").await.is_err());
    assert!(env.connect(&name, "wrong", false).await.is_err());

    assert_eq!(env.memberships(&name), ["jit_managed", "readonly"]);
    let created = env.db.root(&format!("SHOW CREATE USER `{name}`@'%'"));
    assert!(created.contains("MAX_USER_CONNECTIONS 5") && created.contains("MAX_QUERIES_PER_HOUR 1000"), "{created}");
    assert!(!created.contains("ACCOUNT LOCK"), "unlocked once active: {created}");
    let expires_at = granted["grant"]["expires_at"].as_str().unwrap();
    let event = env.expiry_event(&name).expect("an expiry event");
    assert_eq!(event.replace(' ', "T") + "Z", expires_at, "the event fires at expires_at");

    let revoked = env.call(revoke(&id(&granted))).await;
    assert_eq!(revoked["grant"]["status"], json!("revoked"), "{revoked}");
    assert!(!alive(&mut session).await, "the open session was ended");
    assert!(!env.user_exists(&name));
    assert_eq!(env.expiry_event(&name), None);
    assert!(env.connect(&name, &secret, false).await.is_err());
    assert_eq!(s(&env.item(&id(&granted)).await, "status"), "revoked");
}

#[tokio::test]
async fn the_database_locks_the_account_at_expiry_with_the_reaper_stopped() {
    let env = Env::new().await;
    let mut ask = request("late@example.com", "readonly");
    ask["duration_seconds"] = json!(60);
    let granted = env.grant(ask).await;
    let (name, secret) = (user(&granted), password(&granted));
    let mut session = env.connect(&name, &secret, false).await.unwrap();
    assert!(alive(&mut session).await);

    // A real wait: no reaper runs; only the event can end it.
    let expires_at = chrono::DateTime::parse_from_rfc3339(granted["grant"]["expires_at"].as_str().unwrap()).unwrap();
    let wait = (expires_at.with_timezone(&Utc) - Utc::now()).num_milliseconds() + 3000;
    tokio::time::sleep(std::time::Duration::from_millis(wait.max(0) as u64)).await;
    assert!(!alive(&mut session).await, "the live session was ended at expires_at");
    let refused = env.connect(&name, &secret, false).await.unwrap_err().to_string();
    assert!(refused.contains("locked"), "{refused}");
    assert!(env.user_exists(&name), "locked, not yet dropped: that is the reaper's");

    let summary = env.pass().await;
    assert_eq!(summary.revoked, 1, "{summary:?}");
    assert!(!env.user_exists(&name));
}

#[tokio::test]
async fn extend_moves_the_event_and_the_reaper_revokes_expired_grants() {
    let env = Env::new().await;
    let granted = env.grant(request("ext@example.com", "readonly")).await;
    let name = user(&granted);
    let before = env.expiry_event(&name).unwrap();
    let extended = env
        .call(json!({"action": "extend", "grant_id": id(&granted), "duration_seconds": 7200,
                     "actor": "ext@example.com", "reason": "more"}))
        .await;
    assert_eq!(extended["ok"], json!(true), "{extended}");
    let after = env.expiry_event(&name).unwrap();
    assert_eq!(after.replace(' ', "T") + "Z", extended["grant"]["expires_at"].as_str().unwrap());
    assert!(after > before, "{before} -> {after}");

    let mut session = env.connect(&name, &password(&granted), false).await.unwrap();
    env.expire(&id(&granted), 10).await;
    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (1, 0), "{summary:?}");
    assert!(!alive(&mut session).await);
    assert!(!env.user_exists(&name));
    assert_eq!(env.expiry_event(&name), None);
    assert_eq!(s(&env.item(&id(&granted)).await, "status"), "revoked");
}

#[tokio::test]
async fn overlapping_escalations_keep_the_role_until_the_last_one_ends() {
    let env = Env::new().await;
    let mut ask = request("alice@example.com", "dba");
    ask["db_user"] = json!("alice");
    let first = env.grant(ask.clone()).await;
    ask["reason"] = json!("second incident");
    let second = env.grant(ask).await;
    assert_eq!(env.memberships("alice"), ["dba"]);

    let mut session = env.connect("alice", "alice-password", false).await.unwrap();
    assert!(session.query_drop("INSERT INTO items VALUES (3, 'x')").await.is_err(), "only with the role");
    session.query_drop("SET ROLE dba").await.unwrap();
    session.query_drop("INSERT INTO items VALUES (3, 'by alice as dba')").await.unwrap();

    env.call(revoke(&id(&first))).await;
    assert_eq!(env.memberships("alice"), ["dba"], "the second grant still gives it");
    assert!(alive(&mut session).await, "nothing ended: the role stays");
    env.expire(&id(&second), 5).await;
    assert_eq!(env.pass().await.revoked, 1);
    assert!(env.memberships("alice").is_empty());
    assert!(!alive(&mut session).await, "a session holding SET ROLE dba was ended");

    // bob holds dba outside any grant: refused, and left alone.
    let mut ask = request("bob@example.com", "dba");
    ask["db_user"] = json!("bob");
    let refused = env.call(ask).await;
    assert_eq!(refused["ok"], json!(false), "{refused}");
    assert_eq!(env.memberships("bob"), ["dba"]);
    let mut ask = request("x@example.com", "dba");
    ask["db_user"] = json!("nobody");
    assert_eq!(env.call(ask).await["error"]["code"], json!("unknown_db_user"));
}

/// A `pending` row for temporary user `db_user`, as a provisioner that died long ago would have left it.
async fn abandoned_pending(env: &Env, db_user: &str) -> Grant {
    let row = Abandoned {
        database: MYSQL_DB,
        strategy: Strategy::TempUser,
        db_user,
        roles: &["readonly"],
        age_seconds: 1000,
    };
    env.abandoned_pending(row).await
}

#[tokio::test]
async fn a_crash_after_any_statement_of_a_creation_is_cleaned_up() {
    let env = Env::new().await;
    // One real grant sets up the marker role, the retired account and the expiry procedure.
    let setup = env.grant(request("setup@example.com", "readonly")).await;
    env.call(revoke(&id(&setup))).await;

    let mut admin = env.connect(ADMIN_USER, ADMIN_PASSWORD, false).await.unwrap();
    admin.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let hash = Password::generate().mysql_native_hash();
    let roles = vec!["readonly".to_string()];
    let plan_for = |username: &'static str| {
        mysql_sql::create_temp_user(
            Flavor::Mariadb,
            &NewUser {
                username,
                native_hash: &hash,
                require_ssl: false,
                connection_limit: None,
                roles: &roles,
                marker_role: "jit_managed",
                statements: &[],
                expiry_schema: "jit_expiry",
                expires_at: Utc::now() + Duration::hours(1),
            },
        )
    };
    let names = ["jit_crash_a1", "jit_crash_a2", "jit_crash_a3", "jit_crash_a4", "jit_crash_a5", "jit_crash_a6"];
    let steps = plan_for(names[0]).len();
    assert_eq!(steps, names.len(), "one user per point the creation can die at");
    let mut rows = Vec::new();
    for (k, name) in names.iter().enumerate() {
        for statement in &plan_for(name)[..=k] {
            admin.query_drop(statement.sql.as_str()).await.unwrap();
        }
        rows.push(abandoned_pending(&env, name).await);
    }
    // A whole creation without any row at all (the row's write was lost): the orphan sweep's.
    for statement in &plan_for("jit_crash_orphan") {
        admin.query_drop(statement.sql.as_str()).await.unwrap();
    }
    // Not ours: outside the marker, with a grant of its own. Never dropped, whatever a row says.
    env.db.root("CREATE USER 'jit_not_ours'@'%' IDENTIFIED BY 'x'; GRANT SELECT ON shop.* TO 'jit_not_ours'@'%'");
    let foreign = abandoned_pending(&env, "jit_not_ours").await;

    let summary = env.pass().await;
    assert_eq!(summary.orphans_dropped, 1, "{summary:?}");
    for (name, row) in names.iter().zip(&rows) {
        assert!(!env.user_exists(name), "{name} was left behind");
        assert_eq!(env.expiry_event(name), None);
        assert_eq!(s(&env.item(row.grant_id()).await, "status"), "failed");
    }
    assert!(!env.user_exists("jit_crash_orphan"));
    assert!(env.user_exists("jit_not_ours"));
    let item = env.item(foreign.grant_id()).await;
    assert_eq!(s(&item, "status"), "pending", "its revocation failed, and is retried");
    assert!(s(&item, "last_error").contains("not a member of"), "{item:?}");
    assert!(env.marked_users().is_empty(), "{:?}", env.marked_users());
}

#[tokio::test]
async fn event_scheduler_off_refuses_grants_as_a_config_fault_leaving_nothing() {
    let env = Env::new().await;
    env.db.root("SET GLOBAL event_scheduler = OFF");
    let fault = env.provisioner.handle(request("off@example.com", "readonly")).await.unwrap_err();
    assert_eq!(fault.kind(), "Config");
    assert!(fault.to_string().contains("event_scheduler"), "{fault}");
    assert!(env.marked_users().is_empty());
    let users = env.db.root("SELECT User FROM mysql.user WHERE User LIKE 'jit\\_off%'");
    assert!(users.trim().is_empty(), "{users}");
    let items = env.items().await;
    assert_eq!(s(&items[0], "status"), "failed");
    env.db.root("SET GLOBAL event_scheduler = ON");
    env.grant(request("on@example.com", "readonly")).await;
}

const HOSTILE: &[&str] = &[
    "x'; DROP USER 'alice'@'%'; --",
    "x`; DROP DATABASE shop; --",
    "x\\'; GRANT dba TO alice; --",
    "Robert'); DROP TABLE items;--@example.com",
    "a\u{0}b",
];

fn snapshot(env: &Env) -> Vec<String> {
    let users = env.db.root("SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User NOT LIKE 'jit\\_%' ORDER BY 1");
    let tables = env.db.root("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'");
    vec![users, tables, env.root_value("SELECT COUNT(*) FROM shop.items"), env.memberships("bob").join(",")]
}

#[tokio::test]
async fn hostile_strings_in_every_field_change_nothing() {
    let env = Env::new().await;
    let before = snapshot(&env);
    for (i, evil) in HOSTILE.iter().enumerate() {
        let ask = json!({"requester": evil, "database": MYSQL_DB, "target": "readonly", "reason": evil,
                         "approver": format!("{evil}-approver"), "request_id": format!("{evil}-{i}")});
        let granted = env.call(ask).await;
        if granted["ok"] == json!(true) {
            let name = user(&granted);
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{name}");
            env.call(json!({"action": "revoke", "grant_id": id(&granted), "actor": evil, "reason": evil})).await;
        } else {
            assert_eq!(granted["error"]["code"], json!("invalid_request"), "{granted}");
        }
        let mut ask = request("alice@example.com", "dba");
        ask["db_user"] = json!(evil);
        assert_ne!(env.call(ask).await["ok"], json!(true));
        let ask = json!({"requester": "a@x", "database": MYSQL_DB, "target": evil, "reason": "r"});
        assert_eq!(env.call(ask).await["ok"], json!(false));
    }
    assert_eq!(snapshot(&env), before);
    assert!(env.marked_users().is_empty());
    assert!(env.memberships("alice").is_empty());
}

#[tokio::test]
async fn the_password_is_in_no_log_item_or_other_response() {
    let env = Env::new().await;
    let granted = env.grant(request("quiet@example.com", "readonly")).await;
    let secret = password(&granted);
    let mut session = env.connect(&user(&granted), &secret, false).await.unwrap();
    session.query_drop("SELECT 1").await.unwrap();
    let mut others = vec![
        env.call(json!({"action": "describe", "grant_id": id(&granted)})).await,
        env.call(json!({"action": "extend", "grant_id": id(&granted), "duration_seconds": 600,
                        "actor": "quiet@example.com", "reason": "r"}))
            .await,
    ];
    others.push(env.call(revoke(&id(&granted))).await);
    let log = env.db.general_log();
    assert!(log.contains("CREATE USER") && log.contains("mysql_native_password AS '*"), "general log is on");
    assert!(!log.contains(&secret), "the server never saw the password");
    assert!(!format!("{:?}", env.items().await).contains(&secret));
    for response in others {
        assert!(!response.to_string().contains(&secret), "{response}");
    }
}

#[tokio::test]
async fn tls_is_required_and_definer_objects_go_to_the_retired_account() {
    let env = Env::with(MysqlFixture::with_tls().await);
    let granted = env.grant(request("maker@example.com", "writer")).await;
    assert_eq!(granted["credentials"]["sslmode"], json!("verify-full"));
    let (name, secret) = (user(&granted), password(&granted));
    let plain = env.connect(&name, &secret, false).await.unwrap_err().to_string();
    assert!(plain.contains("1045"), "REQUIRE SSL refuses a plain login: {plain}");
    let mut session = env.connect(&name, &secret, true).await.unwrap();
    for statement in [
        "CREATE SQL SECURITY DEFINER VIEW item_names AS SELECT name FROM items",
        "CREATE PROCEDURE add_item(IN n VARCHAR(40)) SQL SECURITY DEFINER INSERT INTO items VALUES (99, n)",
        "CREATE TRIGGER items_guard BEFORE INSERT ON items FOR EACH ROW SET NEW.name = UPPER(NEW.name)",
        "CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE COMMENT 'it''s nightly' DO DELETE FROM items WHERE id > 100",
    ] {
        session.query_drop(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    env.call(revoke(&id(&granted))).await;
    assert!(!env.user_exists(&name));
    assert!(!alive(&mut session).await);
    let definers = env.db.root(
        "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop' \
         UNION ALL SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop' \
         UNION ALL SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop' \
         UNION ALL SELECT CONCAT(DEFINER, ' ', EVENT_COMMENT, ' ', STATUS) FROM information_schema.EVENTS \
                   WHERE EVENT_SCHEMA = 'shop'",
    );
    assert_eq!(
        definers.lines().collect::<Vec<_>>(),
        ["jit_retired@%", "jit_retired@%", "jit_retired@%", "jit_retired@% it's nightly DISABLED"],
        "every object kept, its definer the locked account"
    );
    // The objects run with the retired account's rights: none.
    let denied = env.db.root_try("CALL shop.add_item('x')").unwrap_err();
    assert!(!denied.is_empty());
    assert_eq!(env.root_value("SELECT COUNT(*) FROM shop.items"), "1");
}

#[tokio::test]
async fn a_creation_failing_half_way_removes_what_it_made() {
    let env = Env::new().await;
    // CREATE USER and the marker membership go through; GRANT of the missing role fails.
    let fault = env.provisioner.handle(request("half@example.com", "missing-role")).await.unwrap_err();
    assert_eq!(fault.kind(), "Config", "{fault}");
    assert!(fault.to_string().contains("no_such_role"), "{fault}");
    let users = env.db.root("SELECT User FROM mysql.user WHERE User LIKE 'jit\\_half%'");
    assert!(users.trim().is_empty(), "the locked user it made is gone: {users}");
    assert!(env.marked_users().is_empty());
    let items = env.items().await;
    assert_eq!(s(&items[0], "status"), "failed");
}

#[tokio::test]
async fn sessions_on_a_reader_end_on_revoke_of_users_and_escalations() {
    let env = Env::with(MysqlFixture::with_reader().await);
    let reader = env.reader.as_ref().unwrap();
    let granted = env.grant(request("reads@example.com", "readonly")).await;
    let (name, secret) = (user(&granted), password(&granted));
    let mut ask = request("alice@example.com", "dba");
    ask["db_user"] = json!("alice");
    let escalated = env.grant(ask).await;
    env.db.wait_for_replica(reader);

    let mut temp_on_reader = env.connect_to(reader, &name, &secret, false).await.unwrap();
    let names: Vec<String> = temp_on_reader.query("SELECT name FROM items").await.unwrap();
    assert_eq!(names, ["widget"], "the reader serves the temporary user");
    let mut alice_on_reader = env.connect_to(reader, "alice", "alice-password", false).await.unwrap();
    alice_on_reader.query_drop("SET ROLE dba").await.unwrap();

    env.call(revoke(&id(&granted))).await;
    env.call(revoke(&id(&escalated))).await;
    assert!(!alive(&mut temp_on_reader).await, "the temporary user's session on the reader was ended");
    assert!(!alive(&mut alice_on_reader).await, "alice's SET ROLE dba session on the reader was ended");
    env.db.wait_for_replica(reader);
    assert!(env.connect_to(reader, &name, &secret, false).await.is_err());
    let mut alice = env.connect_to(reader, "alice", "alice-password", false).await.unwrap();
    assert!(alice.query_drop("SET ROLE dba").await.is_err(), "the role is gone on the reader too");
}

#[tokio::test]
async fn a_warm_admin_connection_does_not_pile_up_prepared_statements() {
    let env = Env::new().await;
    for i in 0..12 {
        let granted = env.grant(request(&format!("warm{i}@example.com"), "readonly")).await;
        env.call(revoke(&id(&granted))).await;
    }
    // mysql_async leaves every uncached prepared statement open: the server-wide max_prepared_stmt_count would
    // run out after a few thousand revocations on a warm Lambda. Cached, each text is prepared once.
    let open = env.root_value(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'",
    );
    let open: u32 = open.parse().unwrap();
    assert!(open <= 32, "{open} prepared statements open after 12 grants and revocations");
}

#[tokio::test]
async fn an_escalation_is_not_revoked_while_another_holds_the_users_lock() {
    let env = Env::new().await;
    let mut ask = request("alice@example.com", "dba");
    ask["db_user"] = json!("alice");
    let granted = env.grant(ask).await;
    let mut other = env.connect(ADMIN_USER, ADMIN_PASSWORD, false).await.unwrap();
    let held: Option<i64> = other.query_first("SELECT GET_LOCK('jit:alice', 0)").await.unwrap();
    assert_eq!(held, Some(1));

    let fault = env.provisioner.handle(revoke(&id(&granted))).await.unwrap_err();
    assert!(fault.to_string().contains("lock on user \"alice\""), "{fault}");
    assert_eq!(env.memberships("alice"), ["dba"], "nothing was done without the lock");
    assert_eq!(s(&env.item(&id(&granted)).await, "status"), "active");

    other.query_drop("SELECT RELEASE_LOCK('jit:alice')").await.unwrap();
    assert_eq!(env.call(revoke(&id(&granted))).await["grant"]["status"], json!("revoked"));
    assert!(env.memberships("alice").is_empty());
}

#[tokio::test]
async fn what_grants_need_in_place_is_made_once() {
    let env = Env::new().await;
    for i in 0..3 {
        env.grant(request(&format!("setup{i}@example.com"), "readonly")).await;
    }
    let log = env.db.general_log();
    for made in
        ["CREATE ROLE IF NOT EXISTS", "CREATE USER IF NOT EXISTS `jit_retired`", "CREATE DATABASE IF NOT EXISTS"]
    {
        assert_eq!(log.matches(made).count(), 1, "{made} after 3 grants");
    }
    assert_eq!(log.matches("CREATE PROCEDURE").count(), 1, "the expiry procedure after 3 grants");
}
