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

/// Lambda delivers any payload; `lambda_runtime` used to parse it with serde_json's defaults before our code ran,
/// so valid JSON that serde_json refuses, a body that is not JSON and one that is not UTF-8 ended as a function
/// error, which callers retry. Each is now a structured `invalid_request`.
#[tokio::test(flavor = "multi_thread")]
async fn payloads_the_runtime_refused_are_client_errors() {
    let env = Env::new().await;
    let api = RuntimeApi::start();
    let lambda = LambdaProcess::spawn(Path::new(env!("CARGO_BIN_EXE_provisioner")), &api, &env.lambda_env());
    let invoke_raw = |body: Vec<u8>| {
        let api = &api;
        tokio::task::block_in_place(move || api.invoke_raw(body, Duration::from_secs(10)))
    };
    let grant = |fields: &str| format!(r#"{{"requester": "alice@example.com", "database": "orders", {fields}}}"#);
    let payloads = [
        ("nested 200 levels deep", grant(&format!(r#""target": {}"t"{}"#, "[".repeat(200), "]".repeat(200)))),
        ("a lone surrogate escape", grant(r#""target": "readonly", "reason": "\ud800""#)),
        ("a number out of range", grant(r#""target": "readonly", "reason": "r", "duration_seconds": 1e400"#)),
        ("not JSON", grant(r#""target": "#)),
    ];
    let payloads = payloads.map(|(what, body)| (what, body.into_bytes()));
    let not_utf8 = ("not UTF-8", b"{\"requester\": \"alice\xff@example.com\"}".to_vec());
    let mut wrong = Vec::new();
    for (what, body) in payloads.into_iter().chain([not_utf8]) {
        match invoke_raw(body) {
            Invocation::Response(refused)
                if refused["error"]["code"] == json!("invalid_request")
                    && refused["error"]["message"].as_str().unwrap().contains("could not be read as JSON") => {}
            other => wrong.push(format!("{what}: {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "expected invalid_request responses, got:\n{}\n{}", wrong.join("\n"), lambda.output());
    let missing = response(invoke_raw(br#"{"action": "describe", "grant_id": "missing"}"#.to_vec()));
    assert_eq!(missing["error"]["code"], json!("not_found"), "the runtime still serves: {missing}");

    // A huge value comes back, and is logged, in a bounded message.
    let huge = "x".repeat(1 << 20);
    let mut unknown_field = grant_request("alice@example.com", "readonly");
    unknown_field[&huge] = json!(1);
    for payload in [json!({"action": huge}), unknown_field, grant_request(&huge, "readonly")] {
        let refused = response(invoke_raw(payload.to_string().into_bytes()));
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.len() <= grant_model::MAX_MESSAGE_BYTES, "{} bytes", message.len());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lambda.output().matches("request rejected").count() < 8 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = lambda.output();
    assert_eq!(logs.matches("request rejected").count(), 8, "one log line per refused payload:\n{logs}");
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4096, "a log line of {longest} bytes");
}

/// `credential_delivery: ssm` (issue 12): the binary writes the credentials to a SecureString parameter and
/// deletes it on revoke; the password is in the parameter and nowhere else: not in a response, the Lambda's
/// logs, the table, or PostgreSQL's log.
#[tokio::test(flavor = "multi_thread")]
async fn delivered_passwords_are_in_no_response_log_or_item() {
    let env = Env::new().await;
    let mut config = env.config();
    config["databases"][common::DB]["targets"]["readonly"]["credential_delivery"] = json!("ssm");
    env.put_object("config.json", &config).await;
    let api = RuntimeApi::start();
    let lambda = LambdaProcess::spawn(Path::new(env!("CARGO_BIN_EXE_provisioner")), &api, &env.lambda_env());
    let invoke = |payload: Value| {
        let api = &api;
        tokio::task::block_in_place(move || api.invoke(payload, TIMEOUT))
    };
    let ssm = aws_sdk_ssm::Client::new(&env.sdk);
    let password = |name: String| {
        let ssm = ssm.clone();
        async move {
            let output = ssm.get_parameter().name(name).with_decryption(true).send().await.unwrap();
            let value: Value = serde_json::from_str(output.parameter.unwrap().value().unwrap()).unwrap();
            value["password"].as_str().unwrap().to_string()
        }
    };

    let mut request = grant_request("alice@example.com", "readonly");
    request["request_id"] = json!("binary-ssm");
    let granted = response(invoke(request.clone()));
    assert_eq!(granted["ok"], json!(true), "{granted}\n{}", lambda.output());
    let name = granted["credentials"]["parameter_name"].as_str().unwrap().to_string();
    let first = password(name.clone()).await;
    let retried = response(invoke(request));
    let second = password(name.clone()).await;
    assert_ne!(first, second, "a retry writes a fresh password");
    let grant_id = granted["grant"]["grant_id"].as_str().unwrap();
    let revoked = response(invoke(json!({"action": "revoke", "grant_id": grant_id, "actor": "bob@example.com"})));
    assert_eq!(revoked["ok"], json!(true), "{revoked}");
    let gone = ssm.get_parameter().name(&name).send().await.unwrap_err();
    assert!(gone.as_service_error().is_some_and(|e| e.is_parameter_not_found()), "{gone:?}");

    let logs = lambda.output();
    let table = format!("{:?}", env.items().await);
    let pg_log = env.pg.log();
    assert!(logs.contains(grant_id), "the logs are there to be searched: {logs}");
    for password in [&first, &second] {
        for (what, text) in [
            ("a response", &format!("{granted}{retried}{revoked}")),
            ("the logs", &logs),
            ("the table", &table),
            ("PostgreSQL's log", &pg_log),
        ] {
            assert!(!text.contains(password.as_str()), "the password is in {what}");
        }
    }
}
