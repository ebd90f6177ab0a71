//! Aurora as deployed, on its local stand-in: a reader instance (a hot standby replaying the writer) and the
//! cluster's other databases. A session on a reader can only be ended there, and a temporary user's objects and
//! privileges in another database would otherwise keep its role from being dropped.

mod common;

use common::{id, user, Env, DB};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use test_support::PgCluster;
use tokio_postgres::Client;

/// Points the config's database at `readers` (before the Lambdas first read it: they cache it for 60 s).
async fn with_readers(env: &Env, readers: Value) {
    let mut config = env.config();
    config["databases"][DB]["readers"] = readers;
    env.put_object("config.json", &config).await;
}

fn password(response: &Value) -> String {
    response["credentials"]["password"].as_str().unwrap().to_string()
}

/// Waits until the standby has replayed a change (the query returns true), at most 10 s.
async fn replayed(standby: &PgCluster, query: &str) {
    let client = standby.superuser(DB).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.query_one(query, &[]).await.unwrap().get::<_, bool>(0) {
        assert!(Instant::now() < deadline, "the standby did not replay: {query}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn role_replayed(standby: &PgCluster, role: &str) {
    replayed(standby, &format!("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}')")).await;
}

async fn alive(client: &Client) -> bool {
    client.simple_query("SELECT 1").await.is_ok()
}

/// Alice, escalated to `dba`, on the standby: a session that ran `SET ROLE dba` and reads what only dba may.
async fn alice_as_dba(standby: &PgCluster) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alice = standby.connect("alice", "alice-password", DB).await.unwrap();
        if alice.batch_execute("SET ROLE dba").await.is_ok() {
            alice.simple_query("SELECT count(*) FROM items").await.expect("dba reads items on the standby");
            return alice;
        }
        assert!(Instant::now() < deadline, "the standby did not replay alice's membership in dba");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sessions of a temporary user and of an escalated alice on the reader and the writer, ended by the reaper
/// after expiry and by a manual revoke; afterwards neither can log in or take `dba` again on the reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_a_reader_end_on_expiry_and_on_manual_revoke() {
    let env = Env::new().await;
    let standby = env.pg.start_standby();
    with_readers(&env, json!([{"host": standby.host(), "port": standby.port()}])).await;

    for how in ["expiry", "manual revoke"] {
        let temp = env.grant("carol@example.com", "readonly", None).await;
        let escalation = env.grant("alice@example.com", "dba", Some("alice")).await;
        role_replayed(&standby, &user(&temp)).await;
        let on_reader = standby.connect(&user(&temp), &password(&temp), DB).await.unwrap();
        on_reader.simple_query("SELECT * FROM items").await.expect("the temporary user reads on the standby");
        let on_writer = env.pg.connect(&user(&temp), &password(&temp), DB).await.unwrap();
        let alice_on_reader = alice_as_dba(&standby).await;

        match how {
            "expiry" => {
                env.expire(&id(&temp), 10).await;
                env.expire(&id(&escalation), 10).await;
                let summary = env.pass().await;
                assert_eq!((summary.revoked, summary.failed), (2, 0), "{summary:?}");
            }
            _ => {
                for grant in [&temp, &escalation] {
                    let request = json!({"action": "revoke", "grant_id": id(grant), "actor": "bob@example.com"});
                    let response = env.provisioner.handle(request).await.unwrap();
                    assert_eq!(response["ok"], json!(true), "{response}");
                }
            }
        }

        for (session, what) in
            [(&on_reader, "temporary user on the reader"), (&on_writer, "temporary user on the writer")]
        {
            assert!(!alive(session).await, "{how}: the {what}'s session survived");
        }
        assert!(!alive(&alice_on_reader).await, "{how}: alice's SET ROLE dba session on the reader survived");
        assert!(
            standby.connect(&user(&temp), &password(&temp), DB).await.is_err(),
            "{how}: the temporary user can log in on the reader again"
        );
        let alice = standby.connect("alice", "alice-password", DB).await.unwrap();
        assert!(alice.batch_execute("SET ROLE dba").await.is_err(), "{how}: alice can still take dba on the reader");
        for grant in [&temp, &escalation] {
            assert_eq!(common::s(&env.item(&id(grant)).await, "status"), "revoked", "{how}");
        }
    }
}

/// A reader that cannot be reached fails the revocation, which is recorded and retried, never reported done. The
/// retry ends alice's `SET ROLE dba` session on the other reader although the first attempt already took the
/// membership away on the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_reader_fails_the_revocation_until_it_is_reached() {
    let mut env = Env::new().await;
    let standby = env.pg.start_standby();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let reachable = json!({"host": standby.host(), "port": standby.port()});
    with_readers(&env, json!([{"host": "127.0.0.1", "port": closed}, reachable])).await;
    let escalation = env.grant("alice@example.com", "dba", Some("alice")).await;
    let alice_on_reader = alice_as_dba(&standby).await;
    env.expire(&id(&escalation), 10).await;

    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (0, 1), "{summary:?}");
    let item = env.item(&id(&escalation)).await;
    assert_eq!(common::s(&item, "status"), "active");
    let error = common::s(&item, "last_error");
    assert!(error.contains(&format!("on 127.0.0.1:{closed}")), "the error names the reader: {error}");
    assert!(env.memberships("alice").await.is_empty(), "the writer's part is done");

    // The unreachable reader is taken out of the cluster; the retry ends the access everywhere.
    with_readers(&env, json!([reachable])).await;
    env.reaper = env.another_reaper(); // a fresh container, which reads the new config
    env.make_due(&id(&escalation)).await;
    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (1, 0), "{summary:?}");
    assert!(!alive(&alice_on_reader).await, "alice's SET ROLE dba session on the reader survived the retry");
}

/// A temporary user that created a table in another database, and one that was granted a privilege there, are
/// revoked cleanly: roles gone, rows `revoked`, the table owned by `retired` (not the admin). A database the
/// admin cannot connect to fails the revocation with an error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_with_objects_or_privileges_in_another_database_are_revoked() {
    let env = Env::new().await;
    env.pg.create_database("audit").await;
    let audit = env.pg.superuser("audit").await;
    let setup = "GRANT CREATE, USAGE ON SCHEMA public TO writer; CREATE TABLE ledger (n int); ALTER TABLE ledger OWNER TO writer";
    audit.batch_execute(setup).await.unwrap();

    let owner = env.grant("carol@example.com", "writer", None).await;
    let carol = env.pg.connect(&user(&owner), &password(&owner), "audit").await.unwrap();
    carol.batch_execute("CREATE TABLE notes (body text)").await.unwrap();
    drop(carol);
    let grantee = env.grant("dave@example.com", "readonly", None).await;
    // Granted by the table's owner, a role the admin administers (a grant by a role the admin cannot act for,
    // e.g. a superuser, only that role can take back: see the runbook).
    let grant_sql = format!("SET ROLE writer; GRANT SELECT ON ledger TO \"{}\"; RESET ROLE", user(&grantee));
    audit.batch_execute(&grant_sql).await.unwrap();

    for grant in [&owner, &grantee] {
        env.expire(&id(grant), 10).await;
    }
    let summary = env.pass().await;
    let errors: Vec<_> = env.items().await.into_iter().filter_map(|item| item.get("last_error").cloned()).collect();
    assert_eq!((summary.revoked, summary.failed), (2, 0), "{summary:?} {errors:?}");
    let roles = env.roles().await;
    for grant in [&owner, &grantee] {
        assert!(!roles.contains(&user(grant)), "{} still exists", user(grant));
        assert_eq!(common::s(&env.item(&id(grant)).await, "status"), "revoked");
    }
    let notes_owner: String = audit
        .query_one("SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE relname = 'notes'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(notes_owner, "jit_retired", "the table went to retired, not to the admin");

    // A database the admin may not connect to: the failure names it, and the role stays until it can.
    env.pg.create_database("vault").await;
    let vault = env.pg.superuser("vault").await;
    vault
        .batch_execute("REVOKE CONNECT ON DATABASE vault FROM PUBLIC; GRANT CREATE, USAGE ON SCHEMA public TO writer")
        .await
        .unwrap();
    let locked_out = env.grant("erin@example.com", "writer", None).await;
    vault.batch_execute(&format!("GRANT CONNECT ON DATABASE vault TO \"{}\"", user(&locked_out))).await.unwrap();
    let erin = env.pg.connect(&user(&locked_out), &password(&locked_out), "vault").await.unwrap();
    erin.batch_execute("CREATE TABLE secrets_of_erin (x int)").await.unwrap();
    drop(erin);
    env.expire(&id(&locked_out), 10).await;
    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (0, 1), "{summary:?}");
    let error = common::s(&env.item(&id(&locked_out)).await, "last_error");
    assert!(error.contains("database \"vault\""), "the error names the database: {error}");
    assert!(env.roles().await.contains(&user(&locked_out)), "the role waits for the retry");
    let login = env.pg.connect(&user(&locked_out), &password(&locked_out), DB).await;
    assert!(login.is_err(), "its login is off meanwhile");
}

/// An Aurora cluster on moto: a writer and two readers, with endpoints that do not resolve here.
async fn moto_cluster(env: &Env, id: &str) -> aws_sdk_rds::Client {
    let rds = aws_sdk_rds::Client::new(&env.sdk);
    let cluster = rds.create_db_cluster().db_cluster_identifier(id).engine("aurora-postgresql");
    cluster.master_username("master").master_user_password("password123").send().await.unwrap();
    for instance in ["w1", "r1", "r2"] {
        let instance = format!("{id}-{instance}");
        let create = rds.create_db_instance().db_instance_identifier(&instance).db_cluster_identifier(id);
        create.engine("aurora-postgresql").db_instance_class("db.r6g.large").send().await.unwrap();
    }
    rds
}

/// `cluster_identifier`: the readers are found through the RDS API (the writer is not one), merged with the
/// configured ones, cached; and revocation uses them, so one that cannot be reached fails it, naming the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_of_cluster_identifier_are_found_and_used() {
    let env = Env::new().await;
    let cluster = format!("orders-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let rds = moto_cluster(&env, &cluster).await;
    let mut config = env.config();
    config["databases"][DB]["cluster_identifier"] = json!(cluster);
    config["databases"][DB]["readers"] = json!([{"host": "configured.example"}]);
    let parsed = grant_model::Config::parse(config.to_string().as_bytes()).unwrap();
    let source = grant_adapters::ConfigSource::new(&env.sdk, &env.settings);
    let hosts = |readers: Vec<grant_model::Endpoint>| {
        let mut hosts: Vec<String> =
            readers.into_iter().map(|r| format!("{}:{}/{}", r.host, r.port, r.dbname)).collect();
        hosts.sort();
        hosts
    };
    let found = hosts(source.readers(DB, &parsed.databases[DB]).await.unwrap());
    let port = env.pg.port();
    let mut expected = vec![
        format!("{cluster}-r1.aaaaaaaaaa.us-east-1.rds.amazonaws.com:5432/{DB}"),
        format!("{cluster}-r2.aaaaaaaaaa.us-east-1.rds.amazonaws.com:5432/{DB}"),
        format!("configured.example:{port}/{DB}"),
    ];
    expected.sort();
    assert_eq!(found, expected, "the readers, not the writer, and the configured one");
    // Cached like the config: a reader added now is found on the next read after the cache time.
    let create =
        rds.create_db_instance().db_instance_identifier(format!("{cluster}-r3")).db_cluster_identifier(&cluster);
    create.engine("aurora-postgresql").db_instance_class("db.r6g.large").send().await.unwrap();
    assert_eq!(hosts(source.readers(DB, &parsed.databases[DB]).await.unwrap()), found);

    // The reaper uses what it found: those endpoints do not resolve here, so the revocation fails, named.
    config["databases"][DB].as_object_mut().unwrap().remove("readers");
    env.put_object("config.json", &config).await;
    let escalation = env.grant("alice@example.com", "dba", Some("alice")).await;
    env.expire(&id(&escalation), 10).await;
    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed), (0, 1), "{summary:?}");
    let error = common::s(&env.item(&id(&escalation)).await, "last_error");
    assert!(error.contains(".rds.amazonaws.com:5432"), "the error names the discovered reader: {error}");
}
