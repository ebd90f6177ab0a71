//! The built `reaper` binary, run as Lambda runs it: through the Runtime API, with the schedule's sample event.

mod common;

use common::{id, user, Env};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use test_support::{Invocation, LambdaProcess, RuntimeApi};

fn sample_event() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eventbridge/scheduled-event.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_reaps_on_the_scheduled_event_and_emits_metrics() {
    let env = Env::new().await;
    let expired = env.grant("alice@example.com", "readonly", None).await;
    let current = env.grant("carol@example.com", "readonly", None).await;
    env.expire(&id(&expired), 60).await;

    let api = RuntimeApi::start();
    let lambda = LambdaProcess::spawn(Path::new(env!("CARGO_BIN_EXE_reaper")), &api, &env.lambda_env());
    let invoke = |payload: Value| tokio::task::block_in_place(|| api.invoke(payload, Duration::from_secs(60)));

    let event = sample_event();
    assert_eq!(event["detail-type"], json!("Scheduled Event"));
    let Invocation::Response(summary) = invoke(event) else { panic!("no response: {}", lambda.output()) };
    let keys: Vec<&str> = summary.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["deferred", "drift_revoked", "duration_ms", "examined", "failed", "orphans_dropped", "revoked"]);
    assert_eq!((summary["examined"].as_u64(), summary["revoked"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert!(!env.roles().await.contains(&user(&expired)));
    assert!(env.roles().await.contains(&user(&current)));

    let Invocation::Response(again) = invoke(json!({})) else { panic!("{{}} must run a pass too") };
    assert_eq!(again["examined"], json!(0));
    let Invocation::Error { error_message, .. } = invoke(json!("not an object")) else {
        panic!("non-objects are refused")
    };
    assert!(error_message.contains("JSON object"));

    let output = lambda.output();
    let emf: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 2, "one metrics line per pass:\n{output}");
    assert_eq!(emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], json!("JitAccess"));
    assert_eq!((emf[0]["Revoked"].as_u64(), emf[0]["RevokeFailed"].as_u64()), (Some(1), Some(0)));
    assert_eq!(emf[0]["FunctionName"], json!("reaper"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_pass_is_a_function_error_with_its_reason_in_the_log() {
    let env = Env::new().await;
    let mut lambda_env = env.lambda_env();
    for (name, value) in &mut lambda_env {
        if name == "GRANTS_TABLE" {
            *value = "no-such-table".into();
        }
    }
    let api = RuntimeApi::start();
    let lambda = LambdaProcess::spawn(Path::new(env!("CARGO_BIN_EXE_reaper")), &api, &lambda_env);
    let invocation = tokio::task::block_in_place(|| api.invoke(sample_event(), Duration::from_secs(60)));
    let Invocation::Error { error_type, .. } = invocation else { panic!("a pass without its table must fail") };
    assert_eq!(error_type, "DynamoDB");
    // The log line is written before the error is posted, but copying the process's output may lag behind.
    let failed_pass_line = |output: &str| {
        output
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|line| line["message"].as_str().is_some_and(|m| m.starts_with("reaper pass failed")))
    };
    let started = std::time::Instant::now();
    while failed_pass_line(&lambda.output()).is_none() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = lambda.output();
    let logged = failed_pass_line(&output).unwrap_or_else(|| panic!("no error line for the failed pass:\n{output}"));
    assert_eq!(logged["level"], json!("ERROR"));
    assert_eq!(logged["kind"], json!("DynamoDB"), "{logged}");
    assert!(logged["error"].as_str().is_some_and(|e| e.contains("Query")), "the reason is logged: {logged}");
}
