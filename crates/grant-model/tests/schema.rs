//! The checked-in JSON Schemas are what the types generate, and they accept what the provisioner accepts and
//! produces (the SPEC's examples, real responses) while refusing what it refuses.

use grant_model::response::{Credentials, GrantView, Login, Response, ResponseCredentials};
use grant_model::schema::{request_schema, response_schema, FILES};
use grant_model::{Auth, AuthToken, ClientError, CredentialsRef, ErrorCode, Password, Request, SslMode};
use serde_json::{json, Value};
use std::path::Path;

#[test]
fn checked_in_schemas_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (file, generate) in FILES {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let checked_in: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            checked_in == generate(),
            "{file} no longer matches the Rust types: run `cargo run -p grant-model --example write-schema` \
             and commit the result"
        );
    }
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).expect("a valid JSON Schema")
}

#[test]
fn spec_examples_are_valid_requests_and_parse() {
    let schema = validator(&request_schema());
    let examples = [
        json!({"action": "grant", "request_id": "slack-T1-1700000000.123", "requester": "alice@example.com",
               "database": "orders", "target": "readonly", "duration_seconds": 1800,
               "reason": "INC-4521 check failed migration", "approver": "bob@example.com"}),
        json!({"requester": "alice@example.com", "database": "orders", "target": "readonly", "reason": "x"}),
        json!({"action": "grant", "requester": "alice@example.com", "db_user": "alice", "database": "orders",
               "target": "dba", "reason": "..."}),
        json!({"action": "revoke", "grant_id": "g-1", "actor": "bob@example.com", "reason": "done early"}),
        json!({"action": "extend", "grant_id": "g-1", "duration_seconds": 1800, "actor": "alice@example.com",
               "reason": "..."}),
        json!({"action": "describe", "grant_id": "g-1"}),
    ];
    for example in examples {
        let errors: Vec<String> = schema.iter_errors(&example).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{example} refused by the schema: {errors:?}");
        Request::parse(example.clone()).unwrap_or_else(|e| panic!("{example} refused by the parser: {e}"));
    }
}

#[test]
fn the_schema_refuses_what_the_parser_refuses() {
    let schema = validator(&request_schema());
    let refused = [
        json!({"action": "grant", "requester": "a@x", "database": "orders", "target": "readonly", "reason": "x",
               "extra": 1}),
        json!({"action": "revoke", "grant_id": "g-1"}),
        json!({"grant_id": "g-1", "actor": "bob@example.com"}),
        json!({"action": "drop", "grant_id": "g-1"}),
        json!({"action": "extend", "grant_id": "g-1", "duration_seconds": -5, "actor": "a", "reason": "x"}),
        json!(["not", "an", "object"]),
    ];
    for payload in refused {
        assert!(!schema.is_valid(&payload), "schema accepted {payload}");
        assert!(Request::parse(payload.clone()).is_err(), "parser accepted {payload}");
    }
}

fn view() -> GrantView {
    serde_json::from_value(json!({
        "grant_id": "g-1", "status": "active", "requester": "alice@example.com", "reason": "INC-1",
        "database": "orders", "target": "readonly", "strategy": "temp_user", "db_user": "jit_alice_k3x9q2ab",
        "roles": ["readonly"], "created_at": "2026-11-21T14:00:00Z", "expires_at": "2026-11-21T14:30:00Z",
        "history": [{"at": "2026-11-21T14:00:00Z", "from": null, "to": "pending", "actor": "provisioner",
                     "note": "requested for 1800s"}]
    }))
    .unwrap()
}

#[test]
fn responses_are_valid() {
    let schema = validator(&response_schema());
    let credentials = Credentials {
        host: "orders.cluster-abc.us-east-1.rds.amazonaws.com".into(),
        port: 5432,
        dbname: "orders".into(),
        username: "jit_alice_k3x9q2ab".into(),
        login: Login::Password { password: Password::generate() },
        sslmode: SslMode::VerifyFull,
    };
    let iam = Credentials {
        login: Login::Iam { auth: Auth::Iam, token: AuthToken::new("h:5432/?Action=connect&DBUser=u".into()) },
        ..credentials.clone()
    };
    let secret = CredentialsRef::Secret(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:jit-access/orders/g-1-AbCdEf".into(),
    );
    let parameter = CredentialsRef::Parameter("/jit-access/orders/g-1".into());
    let success = |credentials| Response::Success { grant: view(), credentials: Some(credentials) }.to_json();
    let responses = [
        success(ResponseCredentials::Delivered(credentials.delivered(&secret))),
        success(ResponseCredentials::Delivered(iam.delivered(&parameter))),
        success(ResponseCredentials::Inline(iam)),
        success(ResponseCredentials::Inline(credentials)),
        Response::Success { grant: view(), credentials: None }.to_json(),
        Response::Failure(ClientError::new(ErrorCode::NotFound, "no grant")).to_json(),
    ];
    for response in responses {
        let errors: Vec<String> = schema.iter_errors(&response).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{response} refused: {errors:?}");
    }
    let lies = [
        json!({"ok": true, "error": {"code": "not_found", "message": "x"}}),
        json!({"ok": false, "error": {"code": "teapot", "message": "x"}}),
        json!({"ok": true, "grant": {"grant_id": "g-1"}}),
    ];
    for lie in lies {
        assert!(!schema.is_valid(&lie), "schema accepted {lie}");
    }
}
