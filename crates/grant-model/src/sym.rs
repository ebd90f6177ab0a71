//! Sym's Lambda strategy as a caller (SPEC "Callers that speak Sym's Lambda strategy"): the event Sym sends to an
//! `aws_lambda_function` target (event schema 6), read into what it asks of us. Unknown fields are ignored here,
//! unlike in our own requests: Sym adds fields over time, and a flow must not break when it does.
//!
//! What the request then means (which database, which target, which grant) is decided by the usual rules once
//! the provisioner has the config: `policy::resolve_target`, `Request::parse`, `naming::grant_id_for_request`.

use crate::error::ClientError;
use serde::Deserialize;
use serde_json::Value;

/// The only event schema this reads; another version is refused rather than guessed at.
pub const SCHEMA_VERSION: u64 = 6;
/// Sym's `duration` field is in minutes (its duration options are).
const SECONDS_PER_MINUTE: u64 = 60;

/// What a Sym event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymCall {
    Escalate(Escalate),
    /// Revoke the grant of this run, if it has one.
    Deescalate {
        request_id: String,
        actor: String,
        note: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalate {
    /// Derived from `run.srn`, the one identifier the escalate and deescalate events of a run share.
    pub request_id: String,
    pub requester: String,
    pub approver: Option<String>,
    /// `fields.target.name`: `<database>/<target>` or `<target>`.
    pub target_name: String,
    pub reason: String,
    pub duration_seconds: Option<u64>,
}

/// Whether a payload is a Sym event rather than one of our own requests (which never carry `meta` or `run`).
pub fn is_sym_event(payload: &Value) -> bool {
    payload.get("meta").is_some_and(|meta| meta.get("schema_version").is_some()) && payload.get("run").is_some()
}

/// The request id of a Sym run: stable across both events of the run and across Sym's retries.
pub fn request_id(run_srn: &str) -> String {
    format!("sym:{run_srn}")
}

#[derive(Deserialize)]
struct Event {
    meta: Meta,
    event: EventKind,
    run: Run,
    #[serde(default)]
    actor: Option<Actor>,
    #[serde(default)]
    fields: Fields,
}

#[derive(Deserialize)]
struct Meta {
    schema_version: u64,
}

#[derive(Deserialize)]
struct EventKind {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Run {
    srn: String,
    #[serde(default)]
    actors: Actors,
}

#[derive(Deserialize, Default)]
struct Actors {
    request: Option<Actor>,
    approve: Option<Actor>,
    deescalate: Option<Actor>,
}

#[derive(Deserialize)]
struct Actor {
    username: String,
}

#[derive(Deserialize, Default)]
struct Fields {
    reason: Option<String>,
    duration: Option<u64>,
    target: Option<Target>,
    deescalate_type: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

impl SymCall {
    /// Reads a Sym event; what is missing or of the wrong type is an `invalid_request` naming the field.
    pub fn parse(payload: Value) -> Result<SymCall, ClientError> {
        let event: Event = serde_path_to_error::deserialize(payload).map_err(|e| {
            let path = e.path().to_string();
            ClientError::invalid_request(format!("Sym event: {path}: {}", e.into_inner()))
        })?;
        if event.meta.schema_version != SCHEMA_VERSION {
            return Err(ClientError::invalid_request(format!(
                "Sym event: meta.schema_version {} is not supported (only {SCHEMA_VERSION})",
                event.meta.schema_version
            )));
        }
        if event.run.srn.trim().is_empty() {
            return Err(ClientError::invalid_request("Sym event: run.srn must not be empty"));
        }
        let request_id = request_id(&event.run.srn);
        match event.event.kind.as_str() {
            "escalate" => {
                let requester = event.run.actors.request.map(|a| a.username).ok_or_else(|| {
                    ClientError::invalid_request("Sym event: run.actors.request.username is required to escalate")
                })?;
                let target_name = event.fields.target.map(|t| t.name).ok_or_else(|| {
                    ClientError::invalid_request("Sym event: fields.target.name is required to escalate")
                })?;
                let reason = event
                    .fields
                    .reason
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| format!("Sym run {}", event.run.srn));
                Ok(SymCall::Escalate(Escalate {
                    request_id,
                    requester,
                    approver: event.run.actors.approve.map(|a| a.username),
                    target_name,
                    reason,
                    duration_seconds: event.fields.duration.map(|m| m.saturating_mul(SECONDS_PER_MINUTE)),
                }))
            }
            "deescalate" => {
                let actor = event
                    .run
                    .actors
                    .deescalate
                    .or(event.actor)
                    .map(|a| a.username)
                    .unwrap_or_else(|| "sym".to_string());
                let how = event.fields.deescalate_type.unwrap_or_else(|| "deescalate".into());
                Ok(SymCall::Deescalate { request_id, actor, note: format!("Sym {how} deescalate") })
            }
            other => Err(ClientError::invalid_request(format!(
                "Sym event: event.type {:?} is not supported (escalate or deescalate)",
                other.chars().take(64).collect::<String>()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    fn escalate() -> Value {
        json!({"id": "e-1", "type": "event", "meta": {"schema_version": 6},
            "event": {"type": "escalate", "srn": "sym:event-spec:approval:1.0.0:escalate", "timestamp": "t"},
            "run": {"srn": "acme:run:db:1.0.0:r-1", "flow": "acme:flow:db:1.0.0", "added_later": {"x": 1},
                    "actors": {"request": {"username": "alice@example.com", "identity": {"service": "slack"}},
                               "approve": {"username": "bob@example.com"}}},
            "fields": {"reason": "INC-1", "duration": 30, "target": {"name": "orders/readonly", "type": "x"}}})
    }

    #[test]
    fn escalate_maps_onto_a_grant() {
        assert!(is_sym_event(&escalate()));
        assert!(!is_sym_event(&json!({"requester": "a", "run": 1})));
        let SymCall::Escalate(e) = SymCall::parse(escalate()).unwrap() else { panic!("not escalate") };
        assert_eq!(e.request_id, "sym:acme:run:db:1.0.0:r-1");
        assert_eq!((e.requester.as_str(), e.approver.as_deref()), ("alice@example.com", Some("bob@example.com")));
        assert_eq!(
            (e.target_name.as_str(), e.reason.as_str(), e.duration_seconds),
            ("orders/readonly", "INC-1", Some(1800))
        );
    }

    #[test]
    fn deescalate_names_the_same_run() {
        let mut event = escalate();
        event["id"] = json!("e-2");
        event["event"]["type"] = json!("deescalate");
        event["run"]["actors"]["deescalate"] = json!({"username": "carol@example.com"});
        event["fields"]["deescalate_type"] = json!("scheduled");
        let call = SymCall::parse(event).unwrap();
        let want = SymCall::Deescalate {
            request_id: "sym:acme:run:db:1.0.0:r-1".into(),
            actor: "carol@example.com".into(),
            note: "Sym scheduled deescalate".into(),
        };
        assert_eq!(call, want);
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        let mut no_srn = escalate();
        no_srn["run"].as_object_mut().unwrap().remove("srn");
        let mut version = escalate();
        version["meta"]["schema_version"] = json!(5);
        let mut kind = escalate();
        kind["event"]["type"] = json!("prompt");
        let mut duration = escalate();
        duration["fields"]["duration"] = json!("thirty");
        let mut no_requester = escalate();
        no_requester["run"]["actors"].as_object_mut().unwrap().remove("request");
        for (event, words) in [
            (no_srn, "srn"),
            (version, "schema_version 5"),
            (kind, "\"prompt\""),
            (duration, "fields.duration"),
            (no_requester, "run.actors.request.username"),
        ] {
            let err = SymCall::parse(event).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest);
            assert!(err.message.contains(words), "{words}: {}", err.message);
        }
    }
}
