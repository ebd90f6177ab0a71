//! Proves each piece of test-support works against the real thing, and (`store_agreement`) that the memory grant
//! store unit tests use enforces what the DynamoDB one does. One binary: link time is most of the test time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use serde_json::json;
use test_support::{moto, unique_name, Invocation, PgCluster, RuntimeApi};

#[path = "smoke/store_agreement.rs"]
mod store_agreement;

#[tokio::test]
async fn pg_cluster_roles_restart_and_log() {
    let started = Instant::now();
    let mut pg = PgCluster::start();
    eprintln!("PgCluster::start took {:?}", started.elapsed());
    assert_eq!(pg.host(), "127.0.0.1");

    let admin = pg.superuser("postgres").await;
    admin.batch_execute("CREATE ROLE smoke_app LOGIN PASSWORD 'app-secret'").await.unwrap();

    let app = pg.connect("smoke_app", "app-secret", "postgres").await.unwrap();
    let row = app.query_one("SELECT current_user::text", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "smoke_app");
    assert!(pg.connect("smoke_app", "wrong", "postgres").await.is_err(), "scram-sha-256 must reject a wrong password");

    let stopping = Instant::now();
    pg.stop();
    eprintln!("PgCluster::stop took {:?}", stopping.elapsed());
    assert!(pg.connect("smoke_app", "app-secret", "postgres").await.is_err());

    let restarting = Instant::now();
    pg.start_again();
    eprintln!("PgCluster::start_again took {:?}", restarting.elapsed());
    let app = pg.connect("smoke_app", "app-secret", "postgres").await.unwrap();
    app.batch_execute("SELECT 'after restart'").await.unwrap();

    let log = pg.log();
    assert!(log.contains("CREATE ROLE smoke_app"), "{log}");
    assert!(log.contains("smoke_app@postgres LOG:  statement: SELECT 'after restart'"), "{log}");
}

#[tokio::test]
async fn pg_clusters_are_independent() {
    let started = Instant::now();
    let (a, b) = (PgCluster::start(), PgCluster::start());
    eprintln!("two PgCluster::start took {:?}", started.elapsed());
    assert_ne!(a.port(), b.port());
    a.superuser("postgres").await.batch_execute("CREATE DATABASE only_in_a").await.unwrap();
    b.superuser("postgres").await; // b is up...
    assert!(b.connect("postgres", test_support::SUPERUSER_PASSWORD, "only_in_a").await.is_err());
    a.superuser("only_in_a").await; // ...and a has the database.
}

#[tokio::test]
async fn moto_s3_and_dynamodb() {
    let started = Instant::now();
    let moto = moto();
    eprintln!("moto() took {:?} ({})", started.elapsed(), moto.endpoint());
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));

    let bucket = unique_name("Smoke_Bucket");
    assert!(bucket.starts_with("smoke-bucket-"), "{bucket}");
    let s3 = moto.s3().await;
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object().bucket(&bucket).key("k").body(b"v".to_vec().into()).send().await.unwrap();
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().iter().any(|b| b.name() == Some(bucket.as_str())));

    let table = unique_name("smoke-table");
    // A client built straight from sdk_config, as other crates will.
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    dynamo
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .unwrap();
    let tables = dynamo.list_tables().send().await.unwrap();
    assert!(tables.table_names().contains(&table));
}

#[test]
fn runtime_api_response_error_and_timeout() {
    let api = RuntimeApi::start();
    let addr = api.address();

    // The client polls first: `next` must block until the invoke queues an event.
    let client = std::thread::spawn({
        let addr = addr.clone();
        move || {
            let (headers, event) = http(&addr, "GET", "/2018-06-01/runtime/invocation/next", "");
            let id = header(&headers, "lambda-runtime-aws-request-id");
            assert!(header(&headers, "lambda-runtime-deadline-ms").parse::<u64>().is_ok());
            assert!(!header(&headers, "lambda-runtime-invoked-function-arn").is_empty());
            assert!(header(&headers, "lambda-runtime-trace-id").starts_with("Root=1-"));
            let event: serde_json::Value = serde_json::from_str(&event).unwrap();
            let answer = json!({ "echo": event["n"] }).to_string();
            let path = format!("/2018-06-01/runtime/invocation/{id}/response");
            assert!(http(&addr, "POST", &path, &answer).0.contains(" 202 "));

            let (headers, _) = http(&addr, "GET", "/2018-06-01/runtime/invocation/next", "");
            let id2 = header(&headers, "lambda-runtime-aws-request-id");
            assert_ne!(id, id2, "request ids must be fresh");
            let path = format!("/2018-06-01/runtime/invocation/{id2}/error");
            let body = r#"{"errorType":"Boom","errorMessage":"it broke"}"#;
            assert!(http(&addr, "POST", &path, body).0.contains(" 202 "));
        }
    });
    std::thread::sleep(Duration::from_millis(100));

    let timeout = Duration::from_secs(10);
    assert_eq!(api.invoke(json!({ "n": 1 }), timeout), Invocation::Response(json!({ "echo": 1 })));
    assert_eq!(
        api.invoke(json!({ "n": 2 }), timeout),
        Invocation::Error { error_type: "Boom".into(), error_message: "it broke".into() }
    );
    client.join().unwrap();

    // Nobody polls now.
    let started = Instant::now();
    assert_eq!(api.invoke(json!({}), Duration::from_millis(200)), Invocation::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(2));

    // An init error fails the pending invoke.
    let poster = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let body = r#"{"errorType":"Runtime.InitError","errorMessage":"no config"}"#;
        http(&addr, "POST", "/2018-06-01/runtime/init/error", body);
    });
    assert_eq!(
        api.invoke(json!({}), timeout),
        Invocation::Error { error_type: "Runtime.InitError".into(), error_message: "no config".into() }
    );
    poster.join().unwrap();
}

/// Minimal HTTP/1.1 client: returns (status line + headers, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    (head.to_owned(), body.to_owned())
}

fn header(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} header in {head}"))
}

#[tokio::test]
async fn moto_guard_totals_its_serving_time() {
    let before = moto().busy().unwrap();
    moto().dynamodb().await.list_tables().send().await.unwrap();
    let after = moto().busy().unwrap();
    // Other tests of this process may use moto at the same time: at least our request was counted.
    assert!(after.requests > before.requests, "{before:?} -> {after:?}");
    assert!(after.busy_ms > before.busy_ms, "{before:?} -> {after:?}");
}
