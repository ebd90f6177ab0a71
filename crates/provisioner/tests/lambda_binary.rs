//! The built `provisioner` binary, run as Lambda runs it: through the Runtime API. The issued password appears
//! in the response and nowhere else: not in the Lambda's logs, the table, or PostgreSQL's statement log.

mod common;

use common::{grant_request, Env};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use test_support::{Invocation, LambdaProcess, RuntimeApi};

const TIMEOUT: Duration = Duration::from_secs(30);

fn response(invocation: Invocation) -> Value {
    match invocation {
        Invocation::Response(value) => value,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_grants_and_leaks_no_password() {
    let mut env = Env::new().await;
    let api = RuntimeApi::start();
    let lambda = LambdaProcess::spawn(Path::new(env!("CARGO_BIN_EXE_provisioner")), &api, &env.lambda_env());
    let invoke = |payload: Value| {
        let api = &api;
        tokio::task::block_in_place(move || api.invoke(payload, TIMEOUT))
    };

    let mut request = grant_request("alice@example.com", "readonly");
    request["request_id"] = json!("binary-1");
    let granted = response(invoke(request.clone()));
    assert_eq!(granted["ok"], json!(true), "{granted}\n{}", lambda.output());
    let retried = response(invoke(request));
    let passwords: Vec<String> =
        [&granted, &retried].iter().map(|r| r["credentials"]["password"].as_str().unwrap().to_string()).collect();
    assert_ne!(passwords[0], passwords[1]);
    let rejected = response(invoke(json!({"action": "grant", "requester": "alice@example.com"})));
    assert_eq!(rejected["error"]["code"], json!("invalid_request"), "client errors are responses");

    env.pg.stop();
    match invoke(grant_request("alice@example.com", "readonly")) {
        Invocation::Error { error_type, error_message } => {
            assert_eq!(error_type, "PostgreSQL");
            assert!(!error_message.is_empty());
        }
        other => panic!("a database outage must be a function error, got {other:?}"),
    }
    env.pg.start_again();

    let logs = lambda.output();
    if std::env::var_os("SHOW_LAMBDA_LOGS").is_some() {
        eprintln!("{logs}");
    }
    let table = format!("{:?}", env.items().await);
    let pg_log = env.pg.log();
    assert!(pg_log.contains("CREATE ROLE"), "statement logging is on, so the check below means something");
    assert!(logs.contains("\"grant_id\""), "structured logs carry the grant id: {logs}");
    for line in logs.lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
    }
    for password in &passwords {
        assert!(!logs.contains(password.as_str()), "password in the Lambda's logs");
        assert!(!table.contains(password.as_str()), "password in the table");
        assert!(!pg_log.contains(password.as_str()), "password in PostgreSQL's log");
    }
    assert!(!logs.contains(common::ADMIN_PASSWORD) && !table.contains(common::ADMIN_PASSWORD));
    assert!(!table.contains("SCRAM-SHA-256"), "no password hash in the table");
}
