//! Lifecycle events: what the pipes in `eventbridge/lifecycle-pipes.json` make of the grants table's stream.
//!
//! moto does not run EventBridge Pipes, so the pipe is taken apart: real grants, extensions, expiries, a failed
//! revocation and lease claims are written by the provisioner and the reaper to a table with a stream
//! (NEW_AND_OLD_IMAGES, on moto); every stream record is put on an EventBridge bus (moto) whose rules are the
//! checked-in filter patterns, each with its own SQS queue, so EventBridge's own matcher decides which records
//! pass (a Pipes filter and a rule pattern are the same language; the record is the event's `detail` here, so
//! each pattern is nested under `detail`). The records that pass are turned into events by the checked-in input
//! template, applied here as Pipes applies it (`<$.path>` replaced by the value at that path).

mod common;

use common::*;
use grant_model::{Lease, Purpose};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use test_support::aws_json::{DYNAMODB_STREAMS, EVENTS, SQS};
use test_support::{moto, unique_name};

const PIPES: &str = include_str!("../../../eventbridge/lifecycle-pipes.json");

/// One event as the pipe would put it on the bus.
#[derive(Debug, Clone)]
struct Event {
    detail_type: String,
    detail: Value,
}

#[tokio::test]
async fn the_pipes_turn_committed_changes_into_exactly_the_specs_events() {
    let mut env = Env::new().await;
    let mut config = env.config();
    let readonly = &mut config["databases"][DB]["targets"]["readonly"];
    readonly["require_approver"] = json!(true);
    readonly["approvers"] = json!(["bob@example.com"]);
    readonly["allow_break_glass"] = json!(true);
    env.put_object("config.json", &config).await;
    let stream_arn = enable_stream(&env).await;

    let ask = |requester: &str, extra: Value| {
        let mut request = json!({"requester": requester, "database": DB, "target": "readonly", "reason": "INC-7"});
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        request
    };
    let call = |request: Value| async { env.provisioner.handle(request).await.unwrap() };
    // Approved, extended, then expired and revoked by the reaper (a claim, then the record).
    let approved = call(ask("alice@example.com", json!({"approver": "bob@example.com"}))).await;
    let extend = json!({"action": "extend", "grant_id": id(&approved), "duration_seconds": 1800, "actor": "alice",
        "reason": "more"});
    assert_eq!(call(extend).await["ok"], json!(true));
    // Break glass, ending within 15 minutes: the reaper announces it; a lease claim on it announces nothing.
    let emergency = call(ask("carol@example.com", json!({"break_glass": true, "duration_seconds": 600}))).await;
    // Refused: nothing written, nothing announced.
    let refused = call(ask("erin@example.com", json!({}))).await;
    assert_eq!(error_code(&refused), "policy_violation");
    // Its revocation fails: the database is down.
    let failing = call(ask("dave@example.com", json!({"approver": "Bob@Example.com "}))).await;
    env.expire(&id(&approved), 60).await;
    let summary = env.pass().await;
    assert_eq!((summary.revoked, summary.failed, summary.expiry_notices), (1, 0, 1), "{summary:?}");
    let store = env.store();
    let live = store.get(&id(&emergency)).await.unwrap().unwrap();
    let lease = Lease::new(Purpose::Revoke, "test", "t-1", grant_model::grant::now_seconds());
    assert!(store.claim(&live, lease, false).await.unwrap().is_some());
    env.expire(&id(&failing), 60).await;
    env.pg.stop();
    let summary = env.pass().await;
    env.pg.start_again();
    assert_eq!((summary.revoked, summary.failed, summary.expiry_notices), (0, 1, 0), "{summary:?}");

    let records = stream_records(&stream_arn);
    let events = through_the_pipes(&records);
    let got: BTreeSet<(String, String)> =
        events.iter().map(|e| (e.detail_type.clone(), e.detail["grant_id"].as_str().unwrap().to_string())).collect();
    let (a, e, f) = (id(&approved), id(&emergency), id(&failing));
    let want: BTreeSet<(String, String)> = [
        ("Grant Activated", &a),
        ("Grant Activated", &e),
        ("Grant Activated", &f),
        ("Grant Break Glass", &e),
        ("Grant Expiring Soon", &e),
        ("Grant Revoked", &a),
        ("Grant Revocation Failed", &f),
    ]
    .into_iter()
    .map(|(t, g)| (t.to_string(), g.clone()))
    .collect();
    assert_eq!(got, want, "{events:#?}");
    assert_eq!(events.len(), want.len(), "each once: {events:#?}");

    let by_type: BTreeMap<(&str, &str), &Value> =
        events.iter().map(|e| ((e.detail_type.as_str(), e.detail["grant_id"].as_str().unwrap()), &e.detail)).collect();
    let revoked = by_type[&("Grant Revoked", a.as_str())];
    assert_eq!(revoked["event_id"], json!(format!("{a}:revoked")));
    assert_eq!((revoked["status"].as_str(), revoked["revoked_by"].as_str()), (Some("revoked"), Some("expiry")));
    assert_eq!(revoked["approver"], json!("bob@example.com"));
    let glass = by_type[&("Grant Break Glass", e.as_str())];
    assert_eq!((glass["approver"].as_str(), glass["requester"].as_str()), (Some(""), Some("carol@example.com")));
    let soon = by_type[&("Grant Expiring Soon", e.as_str())];
    assert_eq!(soon["expires_at"], emergency["grant"]["expires_at"]);
    assert_eq!(
        by_type[&("Grant Revocation Failed", f.as_str())]["event_id"],
        json!(format!("{f}:revocation-failed:1"))
    );
    let fields = [
        "event_id",
        "grant_id",
        "requester",
        "approver",
        "database",
        "target",
        "strategy",
        "db_user",
        "status",
        "expires_at",
        "revoked_by",
        "reason",
        "credentials_ref",
    ];
    for event in &events {
        let keys: BTreeSet<&str> = event.detail.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, fields.into_iter().collect(), "{event:?}");
        assert_eq!(
            (event.detail["database"].as_str(), event.detail["strategy"].as_str()),
            (Some(DB), Some("temp_user"))
        );
    }
    let ids: BTreeSet<&str> = events.iter().map(|e| e.detail["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique per transition");

    // Delivered again (a pipe retries a batch), a record makes the same events, event_id included.
    let again = through_the_pipes(&records);
    let ids_again: BTreeSet<&str> = again.iter().map(|e| e.detail["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ids_again);

    let everything = format!("{records:?}{events:?}");
    for response in [&approved, &emergency, &failing] {
        let password = response["credentials"]["password"].as_str().unwrap();
        assert!(password.len() >= 40 && !everything.contains(password), "a password reached the stream or an event");
    }
}

async fn enable_stream(env: &Env) -> String {
    use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
    let spec = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .unwrap();
    let client = moto().dynamodb().await;
    client.update_table().table_name(&env.table).stream_specification(spec).send().await.unwrap();
    let table = client.describe_table().table_name(&env.table).send().await.unwrap().table.unwrap();
    table.latest_stream_arn.unwrap()
}

/// Every record of every shard of the stream, in order, as the DynamoDB Streams API gives them.
fn stream_records(stream_arn: &str) -> Vec<Value> {
    let description = moto().call(DYNAMODB_STREAMS, "DescribeStream", &json!({"StreamArn": stream_arn}));
    let mut records = Vec::new();
    for shard in description["StreamDescription"]["Shards"].as_array().unwrap() {
        let iterator = moto().call(
            DYNAMODB_STREAMS,
            "GetShardIterator",
            &json!({"StreamArn": stream_arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        );
        let mut iterator = iterator["ShardIterator"].clone();
        loop {
            let page = moto().call(DYNAMODB_STREAMS, "GetRecords", &json!({"ShardIterator": iterator}));
            let batch = page["Records"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            records.extend(batch);
            iterator = page["NextShardIterator"].clone();
            if iterator.is_null() {
                break;
            }
        }
    }
    assert!(records.len() > 10, "the stream carried the writes: {}", records.len());
    records
}

/// What the pipes put on the bus for these records: EventBridge (moto) filters, the template transforms.
fn through_the_pipes(records: &[Value]) -> Vec<Event> {
    let pipes: Value = serde_json::from_str(PIPES).unwrap();
    let bus = unique_name("pipes");
    moto().call(EVENTS, "CreateEventBus", &json!({"Name": bus}));
    let mut queues = Vec::new();
    for pipe in pipes["pipes"].as_array().unwrap() {
        let name = unique_name(pipe["name"].as_str().unwrap());
        let queue = moto().call(SQS, "CreateQueue", &json!({"QueueName": name}))["QueueUrl"].clone();
        let pattern = json!({"detail": pipe["filter"]}).to_string();
        moto().call(EVENTS, "PutRule", &json!({"Name": name, "EventBusName": bus, "EventPattern": pattern}));
        let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
        moto().call(
            EVENTS,
            "PutTargets",
            &json!({"Rule": name, "EventBusName": bus, "Targets": [{"Id": "q", "Arn": arn}]}),
        );
        queues.push((pipe.clone(), queue));
    }
    for chunk in records.chunks(10) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|r| json!({"EventBusName": bus, "Source": "test.stream", "DetailType": "record", "Detail": r.to_string()}))
            .collect();
        let put = moto().call(EVENTS, "PutEvents", &json!({"Entries": entries}));
        assert_eq!(put["FailedEntryCount"], json!(0), "{put}");
    }
    let mut events = Vec::new();
    for (pipe, queue) in queues {
        loop {
            let received = moto().call(SQS, "ReceiveMessage", &json!({"QueueUrl": queue, "MaxNumberOfMessages": 10}));
            let messages = received["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let envelope: Value = serde_json::from_str(message["Body"].as_str().unwrap()).unwrap();
                let rendered = render(pipe["input_template"].as_str().unwrap(), &envelope["detail"]);
                let detail = serde_json::from_str(&rendered).unwrap_or_else(|e| panic!("{e}: {rendered}"));
                events.push(Event { detail_type: pipe["detail_type"].as_str().unwrap().to_string(), detail });
                let handle = &message["ReceiptHandle"];
                moto().call(SQS, "DeleteMessage", &json!({"QueueUrl": queue, "ReceiptHandle": handle}));
            }
        }
    }
    events
}

/// A Pipes input template applied to `record`: each `<$.a.b>` becomes the value at that path. The templates
/// quote every placeholder, so a string is inserted JSON-escaped without its quotes; a path the record lacks
/// becomes empty, as Pipes leaves it.
fn render(template: &str, record: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("<$.") {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('>').expect("a closed placeholder");
        let path = &rest[start + 3..end];
        let value = path.split('.').try_fold(record, |v, key| v.get(key));
        match value {
            Some(Value::String(s)) => {
                let quoted = serde_json::to_string(s).unwrap();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            Some(other) => out.push_str(&other.to_string()),
            None => {}
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}
