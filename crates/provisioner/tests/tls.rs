//! TLS to PostgreSQL with rustls: `require` encrypts; `verify-full` checks the chain and host name against the
//! CA bundle named by `ca_bundle_key`, or the built-in RDS bundle, which a test CA is rightly not in.

mod common;

use common::{grant_request, Fixture, ADMIN_USER, DB};
use grant_adapters::Fault;
use provisioner::App;
use serde_json::{json, Value};
use test_support::PgCluster;

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
