//! Every kind of response the running provisioner gives is valid under the checked-in response schema, and every
//! request it accepted is valid under the request schema: the schemas describe the real behaviour.

mod common;

use common::{grant_request, Env, DB};
use grant_model::schema::{request_schema, response_schema};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_requests_and_responses_match_the_schemas() {
    let env = Env::new().await;
    let requests = jsonschema::validator_for(&request_schema()).unwrap();
    let responses = jsonschema::validator_for(&response_schema()).unwrap();
    let check = |request: &Value, response: &Value| {
        let errors: Vec<String> = requests.iter_errors(request).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "request {request} not valid: {errors:?}");
        let errors: Vec<String> = responses.iter_errors(response).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "response {response} not valid: {errors:?}");
    };

    let grant = grant_request("alice@example.com", "readonly");
    let granted = env.call(grant.clone()).await;
    assert!(granted["credentials"]["password"].is_string(), "{granted}");
    check(&grant, &granted);
    let id = granted["grant"]["grant_id"].clone();

    let escalation = json!({"requester": "alice@example.com", "db_user": "alice", "database": DB, "target": "dba",
                            "reason": "INC-9", "request_id": "schema-1", "duration_seconds": 600});
    let escalated = env.call(escalation.clone()).await;
    assert!(escalated.get("credentials").is_none(), "{escalated}");
    check(&escalation, &escalated);

    let steps = [
        json!({"action": "describe", "grant_id": id}),
        json!({"action": "extend", "grant_id": id, "duration_seconds": 1800, "actor": "alice@example.com",
               "reason": "more time"}),
        json!({"action": "revoke", "grant_id": id, "actor": "bob@example.com"}),
        json!({"action": "extend", "grant_id": id, "duration_seconds": 600, "actor": "a@example.com", "reason": "x"}),
        json!({"action": "describe", "grant_id": "no-such-grant"}),
        json!({"requester": "alice@example.com", "database": "nope", "target": "readonly", "reason": "x"}),
    ];
    for request in steps {
        let response = env.call(request.clone()).await;
        check(&request, &response);
    }
    let described = env.call(json!({"action": "describe", "grant_id": id})).await;
    assert_eq!(described["grant"]["history"].as_array().map(Vec::len), Some(4), "{described}");

    let refused = json!({"action": "grant", "requester": "alice@example.com", "colour": "blue"});
    let response = env.call(refused.clone()).await;
    assert!(!requests.is_valid(&refused), "the schema refuses what the parser refused: {response}");
    assert!(responses.is_valid(&response), "{response}");
}
