//! TLS to PostgreSQL with rustls: `require` encrypts and gives the admin password only to SCRAM with channel
//! binding; `verify-ca` checks the chain, `verify-full` also the host name, against the CA bundle named by
//! `ca_bundle_key`, or the built-in RDS bundle, which a test CA is rightly not in.

mod common;

use common::{grant_request, Fixture, ADMIN_PASSWORD, ADMIN_USER, DB};
use grant_adapters::Fault;
use provisioner::App;
use serde_json::{json, Value};
use test_support::{KeyType, PgCluster, TlsOptions};

async fn app_with(fixture: &Fixture, sslmode: &str, ca_bundle_key: Option<&str>) -> App {
    let mut config = fixture.config();
    config["databases"][DB]["sslmode"] = json!(sslmode);
    if let Some(key) = ca_bundle_key {
        config["databases"][DB]["ca_bundle_key"] = json!(key);
    }
    fixture.put_object("config.json", &config).await;
    App::new(&fixture.sdk, fixture.settings.clone())
}

async fn admin_sessions_use_tls(fixture: &Fixture) -> bool {
    let row = fixture
        .orders()
        .await
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = $1",
            &[&ADMIN_USER],
        )
        .await
        .unwrap();
    row.get::<_, Option<bool>>(0).unwrap_or(false)
}

/// Grants one temporary user with `sslmode` (and `ca_bundle_key`), expecting a fault.
async fn grant_fails(fixture: &Fixture, sslmode: &str, ca_bundle_key: Option<&str>) -> String {
    let app = app_with(fixture, sslmode, ca_bundle_key).await;
    let fault = match app.handle(grant_request("mallory@example.com", "readonly")).await {
        // Not the response itself: it holds the new user's password.
        Ok(response) => panic!("the grant was answered (ok: {}): the admin connection was made", response["ok"]),
        Err(fault) => fault,
    };
    assert!(matches!(fault, Fault::Postgres { .. }), "{fault}");
    fault.to_string()
}

/// Grants one temporary user with `sslmode` (and `ca_bundle_key`), expecting success over TLS.
async fn grant_works(fixture: &Fixture, sslmode: &str, ca_bundle_key: Option<&str>, requester: &str) {
    let app = app_with(fixture, sslmode, ca_bundle_key).await;
    let granted = app.handle(grant_request(requester, "readonly")).await.unwrap();
    assert_eq!(granted["ok"], json!(true), "{granted}");
    assert!(admin_sessions_use_tls(fixture).await, "the admin session is encrypted");
}

/// Admin logins the server let in, and admin passwords it rejected, in a stretch of its log (log_connections).
fn admin_logins(log: &str) -> (usize, usize) {
    let authorized = log.matches(&format!("connection authorized: user={ADMIN_USER} ")).count();
    let rejected = log.matches(&format!("password authentication failed for user \"{ADMIN_USER}\"")).count();
    (authorized, rejected)
}

// Under `require` this passing also shows channel binding was used: with `ChannelBinding::Require`, tokio-postgres
// completes a SCRAM exchange only as SCRAM-SHA-256-PLUS (connect_raw.rs, authenticate_sasl); see the Ed25519
// test below for the same server without usable binding data.
#[tokio::test]
async fn require_and_verify_full_connect_over_tls() {
    let (cluster, ca_pem) = PgCluster::start_with_tls();
    let fixture = Fixture::with_cluster(cluster).await;
    let ca: Value = json!(String::from_utf8(ca_pem).unwrap());

    let app = app_with(&fixture, "require", None).await;
    let granted = app.handle(grant_request("alice@example.com", "readonly")).await.unwrap();
    assert_eq!(granted["ok"], json!(true), "{granted}");
    assert_eq!(granted["credentials"]["sslmode"], json!("require"));
    assert!(admin_sessions_use_tls(&fixture).await, "the admin session is encrypted");
    drop(app);

    moto_put_raw(&fixture, "tls/test-ca.pem", ca.as_str().unwrap()).await;
    let app = app_with(&fixture, "verify-full", Some("tls/test-ca.pem")).await;
    let granted = app.handle(grant_request("carol@example.com", "readonly")).await.unwrap();
    assert_eq!(granted["ok"], json!(true), "{granted}");
    assert!(admin_sessions_use_tls(&fixture).await);
    drop(app);

    // The built-in bundle holds only Amazon RDS roots: a certificate from any other CA is refused.
    let app = app_with(&fixture, "verify-full", None).await;
    let fault = app.handle(grant_request("dave@example.com", "readonly")).await.unwrap_err();
    assert!(matches!(fault, Fault::Postgres { .. }), "{fault}");
    assert!(fault.to_string().to_lowercase().contains("certificate"), "{fault}");
}

/// A server that asks for the password in cleartext (pg_hba `password`, as an impostor would) gets nothing under
/// `require`; that the password was right is shown by `verify-full`, whose verified server may ask for it so.
/// On the old code the `require` grant succeeds: the password went to the server in cleartext.
#[tokio::test]
async fn require_sends_no_password_to_a_server_asking_for_it_in_cleartext() {
    let options = TlsOptions { cleartext_password_user: Some(ADMIN_USER.into()), ..TlsOptions::default() };
    let (cluster, ca_pem) = PgCluster::start_with_tls_options(&options);
    let fixture = Fixture::with_cluster(cluster).await;
    let log_start = fixture.pg.log().len();

    let fault = grant_fails(&fixture, "require", None).await;
    for expected in ["channel binding", "admin password was not sent"] {
        assert!(fault.contains(expected), "{expected:?} not in: {fault}");
    }
    assert!(!fault.contains(ADMIN_PASSWORD));
    let log = fixture.pg.log()[log_start..].to_string();
    assert!(log.contains("connection received: host=127.0.0.1"), "the client reached the server:\n{log}");
    assert_eq!(admin_logins(&log), (0, 0), "no password, right or wrong, reached the server:\n{log}");

    // The same password, sent in cleartext to a verified server, logs in: the refusal above was the client's.
    moto_put_raw(&fixture, "tls/test-ca.pem", std::str::from_utf8(&ca_pem).unwrap()).await;
    grant_works(&fixture, "verify-full", Some("tls/test-ca.pem"), "carol@example.com").await;
    let log = fixture.pg.log()[log_start..].to_string();
    assert_eq!(admin_logins(&log), (1, 0), "{log}");
}

/// A server whose certificate is signed with Ed25519 offers SCRAM-SHA-256-PLUS, but RFC 5929 defines no
/// `tls-server-end-point` data for such a certificate, so the client can only use SCRAM without channel binding,
/// which an impostor could relay to the real server. `require` refuses it; `verify-full` (binding `prefer`)
/// accepts it. On the old code the `require` grant succeeds.
#[tokio::test]
async fn require_refuses_scram_without_channel_binding() {
    let options = TlsOptions { key: KeyType::Ed25519, ..TlsOptions::default() };
    let (cluster, ca_pem) = PgCluster::start_with_tls_options(&options);
    let fixture = Fixture::with_cluster(cluster).await;

    let fault = grant_fails(&fixture, "require", None).await;
    assert!(fault.contains("channel binding") && fault.contains("admin password was not sent"), "{fault}");

    moto_put_raw(&fixture, "tls/test-ca.pem", std::str::from_utf8(&ca_pem).unwrap()).await;
    grant_works(&fixture, "verify-full", Some("tls/test-ca.pem"), "carol@example.com").await;
}

/// `verify-ca` trusts a certificate for another host name when the configured CA signed it, and only then;
/// `verify-full` refuses the name. On the old code `verify-ca` is not a valid config value.
#[tokio::test]
async fn verify_ca_checks_the_issuer_but_not_the_host_name() {
    let options = TlsOptions { cert_names: Some("DNS:db.elsewhere.example".into()), ..TlsOptions::default() };
    let (cluster, ca_pem) = PgCluster::start_with_tls_options(&options);
    let fixture = Fixture::with_cluster(cluster).await;
    moto_put_raw(&fixture, "tls/test-ca.pem", std::str::from_utf8(&ca_pem).unwrap()).await;
    moto_put_raw(&fixture, "tls/other-ca.pem", std::str::from_utf8(&test_support::unrelated_ca()).unwrap()).await;

    grant_works(&fixture, "verify-ca", Some("tls/test-ca.pem"), "alice@example.com").await;

    let fault = grant_fails(&fixture, "verify-full", Some("tls/test-ca.pem")).await;
    assert!(fault.contains("certificate not valid for name \"127.0.0.1\""), "{fault}");
    // A CA of the same name but another key (as an impostor would make) fails on the signature; the built-in RDS
    // bundle has no CA of that name at all.
    for (other_ca, error) in [(Some("tls/other-ca.pem"), "BadSignature"), (None, "UnknownIssuer")] {
        let fault = grant_fails(&fixture, "verify-ca", other_ca).await;
        assert!(fault.contains(&format!("invalid peer certificate: {error}")), "{other_ca:?}: {fault}");
    }
}

async fn moto_put_raw(fixture: &Fixture, key: &str, body: &str) {
    test_support::moto()
        .s3()
        .await
        .put_object()
        .bucket(&fixture.bucket)
        .key(key)
        .body(body.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
}

/// `admin_iam_user`: the admin logs in with an RDS IAM token as its password, over verified TLS, and no admin
/// password exists (the S3 credentials object is wrong, and unused). The server here accepts exactly the token a
/// signer frozen at one instant computes (its password is set to it; pg_hba `password` has the client send it
/// in cleartext, as RDS does); a token signed at another instant is refused.
#[tokio::test]
async fn admin_iam_user_logs_in_with_a_signed_token() {
    use grant_adapters::rds_token::TokenSigner;
    use std::time::{Duration, SystemTime};
    let options = TlsOptions { cleartext_password_user: Some(ADMIN_USER.into()), ..TlsOptions::default() };
    let (cluster, ca_pem) = PgCluster::start_with_tls_options(&options);
    let fixture = Fixture::with_cluster(cluster).await;
    moto_put_raw(&fixture, "tls/test-ca.pem", std::str::from_utf8(&ca_pem).unwrap()).await;
    fixture.put_object("secrets/orders-admin.json", &json!({"username": ADMIN_USER, "password": "wrong"})).await;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_269_600);
    let token =
        TokenSigner::frozen_at(&fixture.sdk, at).mint("127.0.0.1", fixture.pg.port(), ADMIN_USER).await.unwrap();
    assert!(token
        .expose()
        .starts_with(&format!("127.0.0.1:{}/?Action=connect&DBUser={ADMIN_USER}&", fixture.pg.port())));
    let postgres = fixture.pg.superuser("postgres").await;
    postgres.batch_execute(&format!("ALTER ROLE {ADMIN_USER} PASSWORD '{}'", token.expose())).await.unwrap();

    let mut config = fixture.config();
    let db = config["databases"][DB].as_object_mut().unwrap();
    db.remove("admin_secret_key");
    db.insert("admin_iam_user".into(), json!(ADMIN_USER));
    db.insert("sslmode".into(), json!("verify-ca"));
    db.insert("ca_bundle_key".into(), json!("tls/test-ca.pem"));
    fixture.put_object("config.json", &config).await;

    let mut app = App::new(&fixture.sdk, fixture.settings.clone());
    app.source.tokens = TokenSigner::frozen_at(&fixture.sdk, at + Duration::from_secs(1));
    let fault = app.handle(grant_request("mallory@example.com", "readonly")).await.expect_err("another token");
    assert_eq!(fault.sqlstate(), Some("28P01"), "{fault}");

    let mut app = App::new(&fixture.sdk, fixture.settings.clone());
    app.source.tokens = TokenSigner::frozen_at(&fixture.sdk, at);
    let granted = app.handle(grant_request("alice@example.com", "readonly")).await.unwrap();
    assert_eq!(granted["ok"], json!(true), "{granted}");
    assert!(admin_sessions_use_tls(&fixture).await, "the admin session is encrypted");
}
