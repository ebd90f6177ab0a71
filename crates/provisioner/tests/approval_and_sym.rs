//! Who may approve (a target's `require_approver`, `approvers`, `allow_break_glass`), and Sym's Lambda strategy
//! as a caller, against the real provisioner, PostgreSQL and moto. A refusal must leave nothing behind: no item,
//! no role.

mod common;

use common::{error_code, s, Env, DB};
use serde_json::{json, Value};

const SYM_ESCALATE: &str = include_str!("../../../terraform/examples/sym-flow/escalate.json");
const SYM_DEESCALATE: &str = include_str!("../../../terraform/examples/sym-flow/deescalate.json");

/// The fixture's config plus targets with each approval policy.
async fn with_policies(env: &Env) {
    let mut config = env.config();
    let targets = config["databases"][DB]["targets"].as_object_mut().unwrap();
    let target = |extra: Value| {
        let mut t = json!({"strategy": "temp_user", "roles": ["readonly"], "max_duration_seconds": 3600});
        t.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        t
    };
    targets.insert(
        "approved".into(),
        target(json!({"require_approver": true, "approvers": ["bob@example.com", " Carol@Example.com "]})),
    );
    targets.insert(
        "emergency".into(),
        target(json!({"require_approver": true, "approvers": ["bob@example.com"], "allow_break_glass": true})),
    );
    targets.insert("listed".into(), target(json!({"approvers": ["bob@example.com"]})));
    targets.insert("open-glass".into(), target(json!({"allow_break_glass": true})));
    env.put_object("config.json", &config).await;
}

fn ask(target: &str, approver: Option<&str>, break_glass: bool) -> Value {
    let mut request = json!({"requester": "alice@example.com", "database": DB, "target": target, "reason": "INC-1"});
    if let Some(approver) = approver {
        request["approver"] = json!(approver);
    }
    if break_glass {
        request["break_glass"] = json!(true);
    }
    request
}

#[tokio::test]
async fn every_approval_combination_is_decided_before_anything_is_written() {
    let env = Env::new().await;
    with_policies(&env).await;
    const REFUSED: Option<bool> = None;
    // (target, approver, break_glass asked) -> Some(break_glass recorded) or refused
    let cases: &[(&str, Option<&str>, bool, Option<bool>)] = &[
        ("readonly", None, false, Some(false)),
        ("readonly", Some("dave@example.com"), false, Some(false)),
        ("readonly", None, true, REFUSED),
        ("approved", None, false, REFUSED),
        ("approved", Some("bob@example.com"), false, Some(false)),
        ("approved", Some("\u{a0}CAROL@example.COM "), false, Some(false)),
        ("approved", Some("dave@example.com"), false, REFUSED),
        ("approved", None, true, REFUSED),
        ("emergency", None, false, REFUSED),
        ("emergency", None, true, Some(true)),
        ("emergency", Some("BOB@example.com"), true, Some(true)),
        ("emergency", Some("dave@example.com"), true, REFUSED),
        ("listed", None, false, Some(false)),
        ("listed", Some("bob@example.com"), false, Some(false)),
        ("listed", Some("dave@example.com"), false, REFUSED),
        ("open-glass", None, true, Some(true)),
        ("open-glass", None, false, Some(false)),
        // Self-approval, whatever the case and spacing, even where break-glass would need no approver.
        ("readonly", Some("ALICE@example.com"), false, REFUSED),
        ("approved", Some(" alice@Example.com\u{3000}"), false, REFUSED),
        ("emergency", Some("Alice@Example.Com"), true, REFUSED),
    ];
    for &(target, approver, break_glass, expected) in cases {
        let items_before = env.items().await.len();
        let roles_before = env.roles().await;
        let response = env.call(ask(target, approver, break_glass)).await;
        let case = format!("{target} {approver:?} break_glass={break_glass}: {response}");
        match expected {
            None => {
                assert_eq!(error_code(&response), "policy_violation", "{case}");
                assert_eq!(env.items().await.len(), items_before, "nothing written: {case}");
                assert_eq!(env.roles().await, roles_before, "no role made: {case}");
            }
            Some(recorded) => {
                assert_eq!(response["ok"], json!(true), "{case}");
                let item = env.item(response["grant"]["grant_id"].as_str().unwrap()).await;
                assert_eq!(s(&item, "status"), "active", "{case}");
                let flag = item.get("break_glass").map(|v| v.as_bool().cloned().unwrap());
                assert_eq!(flag, recorded.then_some(true), "break_glass present only when true: {case}");
            }
        }
    }
}

#[tokio::test]
async fn a_refusal_names_the_rule() {
    let env = Env::new().await;
    with_policies(&env).await;
    for (request, words) in [
        (ask("emergency", None, false), "requires an approver; in an emergency"),
        (
            ask("approved", Some("dave@example.com"), false),
            "\"dave@example.com\" is not one of this target's approvers",
        ),
        (ask("readonly", None, true), "break_glass is not allowed for this target"),
        (ask("readonly", Some(" ALICE@example.com"), false), "approver must not be the requester"),
    ] {
        let response = env.call(request).await;
        assert_eq!(error_code(&response), "policy_violation");
        assert!(response["error"]["message"].as_str().unwrap().contains(words), "{words}: {response}");
    }
}

fn sym(sample: &str) -> Value {
    serde_json::from_str(sample).unwrap()
}

#[tokio::test]
async fn a_sym_run_escalates_logs_in_and_deescalates() {
    let env = Env::new().await;
    let answer = env.call(sym(SYM_ESCALATE)).await;
    assert_eq!(answer["errors"], json!([]), "{answer}");
    let grant = &answer["body"]["grant"];
    let credentials = &answer["body"]["credentials"];
    assert_eq!(answer["body"].get("ok"), None, "Sym's shape, not ours");
    assert_eq!((grant["status"].as_str(), grant["target"].as_str()), (Some("active"), Some("readonly")));
    assert_eq!(
        (grant["requester"].as_str(), grant["approver"].as_str()),
        (Some("alice@example.com"), Some("bob@example.com"))
    );
    let created: chrono::DateTime<chrono::Utc> = grant["created_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> = grant["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_seconds(), 30 * 60, "Sym's duration is in minutes");
    let user = grant["db_user"].as_str().unwrap();
    let password = credentials["password"].as_str().unwrap();
    let client = env.pg.connect(user, password, DB).await.expect("the credentials Sym got log in");
    let rows = client.query("SELECT name FROM items", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "widget");

    // Sym retries an escalate: the same grant and user.
    let replay = env.call(sym(SYM_ESCALATE)).await;
    assert_eq!(replay["errors"], json!([]), "{replay}");
    assert_eq!(replay["body"]["grant"]["grant_id"], grant["grant_id"]);
    assert_eq!(replay["body"]["grant"]["db_user"], grant["db_user"]);

    let answer = env.call(sym(SYM_DEESCALATE)).await;
    assert_eq!(answer["errors"], json!([]), "{answer}");
    assert_eq!(answer["body"]["grant"]["grant_id"], grant["grant_id"], "the run's grant");
    assert_eq!(answer["body"]["grant"]["status"], json!("revoked"));
    assert_eq!(answer["body"]["grant"]["revoked_by"], json!("bob@example.com"));
    assert!(!env.roles().await.iter().any(|r| r == user), "the user is gone");
    assert!(env.pg.connect(user, password, DB).await.is_err());
    let again = env.call(sym(SYM_DEESCALATE)).await;
    assert_eq!((again["errors"].clone(), again["body"]["grant"]["status"].clone()), (json!([]), json!("revoked")));
}

#[tokio::test]
async fn sym_refusals_are_errors_in_syms_shape_never_function_errors() {
    let env = Env::new().await;
    let mut other_run = sym(SYM_DEESCALATE);
    other_run["run"]["srn"] = json!("acme:run:orders_access:1.0.0:no-such-run");
    let answer = env.call(other_run).await;
    assert_eq!(answer, json!({"body": {"grant": null}, "errors": []}), "a run without a grant: nothing to do");

    let mut no_srn = sym(SYM_ESCALATE);
    no_srn["run"].as_object_mut().unwrap().remove("srn");
    let mut unknown_target = sym(SYM_ESCALATE);
    unknown_target["fields"]["target"]["name"] = json!("orders/nope");
    let mut too_long = sym(SYM_ESCALATE);
    too_long["fields"]["duration"] = json!(24 * 60);
    let mut self_approved = sym(SYM_ESCALATE);
    self_approved["run"]["actors"]["approve"]["username"] = json!("Alice@Example.com");
    for (event, words) in [
        (no_srn, "invalid_request: Sym event: run: missing field `srn`"),
        (unknown_target, "unknown_target: target \"nope\""),
        (too_long, "policy_violation: duration_seconds 86400 exceeds"),
        (self_approved, "policy_violation: approver must not be the requester"),
    ] {
        let answer = env.invoke(event).await.expect("a refusal is an answer, not a function error");
        assert_eq!(answer["body"], json!({}), "{answer}");
        let errors = answer["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{answer}");
        assert!(errors[0].as_str().unwrap().starts_with(words), "{words}: {answer}");
    }
    assert!(env.items().await.is_empty(), "nothing written");
}
