//! The provisioner's requests (SPEC "Provisioner: request and response"), parsed strictly and validated here,
//! before anything is written anywhere.

use crate::error::{quote, ClientError};
use crate::identity;
use crate::naming;
use crate::text;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const MAX_TEXT: usize = 256;
const MAX_REASON: usize = 1024;
/// Longer than any field name of any action, so a longer key is unknown without asking serde, which would
/// quote all of it.
const MAX_FIELD_NAME: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Grant(GrantRequest),
    Revoke(RevokeRequest),
    Extend(ExtendRequest),
    Describe(DescribeRequest),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The caller's idempotency key: a retry with the same key and body returns the same grant.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Who gets access (an email or another stable identity); temporary user names are made from it.
    pub requester: String,
    /// A key of the config's `databases`.
    pub database: String,
    /// A key of the database's `targets`.
    pub target: String,
    /// From 60 up to the target's `max_duration_seconds`; the target's default when left out.
    #[serde(default)]
    pub duration_seconds: Option<u64>,
    pub reason: String,
    /// Who approved the request; never the requester, and one of the target's `approvers` when it lists any
    /// (else `policy_violation`).
    #[serde(default)]
    pub approver: Option<String>,
    /// An emergency grant without an approver, where the target has `allow_break_glass`: recorded on the grant
    /// and announced for review.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// The existing database user to escalate: required for `role_escalation` targets, refused for `temp_user`.
    #[serde(default)]
    pub db_user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub grant_id: String,
    /// Who is revoking; recorded as `revoked_by`.
    pub actor: String,
    /// Optional: taking access away early needs no justification, but is recorded when given.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    pub grant_id: String,
    /// The new end is now + this; the same bounds apply as for a new grant (60 up to the target's maximum).
    pub duration_seconds: u64,
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeRequest {
    pub grant_id: String,
}

impl Request {
    /// Parses an invocation payload. `action` defaults to `grant`; unknown fields and actions are rejected.
    /// Identities (`requester`, `approver`, `actor`) come back cleaned: leading and trailing white space removed.
    pub fn parse(payload: Value) -> Result<Request, ClientError> {
        let Value::Object(mut fields) = payload else {
            return Err(ClientError::invalid_request("the request must be a JSON object"));
        };
        let action = match fields.remove("action") {
            None => "grant".to_string(),
            Some(Value::String(action)) => action,
            Some(_) => return Err(ClientError::invalid_request("action must be a string")),
        };
        if let Some(name) = fields.keys().find(|name| name.len() > MAX_FIELD_NAME) {
            return Err(ClientError::invalid_request(format!("unknown field {}", quote(name))));
        }
        let body = Value::Object(fields);
        let request = match action.as_str() {
            "grant" => Request::Grant(from_body(body)?),
            "revoke" => Request::Revoke(from_body(body)?),
            "extend" => Request::Extend(from_body(body)?),
            "describe" => Request::Describe(from_body(body)?),
            other => {
                return Err(ClientError::invalid_request(format!(
                    "unknown action {}: expected grant, revoke, extend or describe",
                    quote(other)
                )))
            }
        };
        request.validate()?;
        Ok(request.with_clean_identities())
    }

    pub fn action(&self) -> &'static str {
        match self {
            Request::Grant(_) => "grant",
            Request::Revoke(_) => "revoke",
            Request::Extend(_) => "extend",
            Request::Describe(_) => "describe",
        }
    }

    fn validate(&self) -> Result<(), ClientError> {
        match self {
            Request::Grant(g) => {
                text::check("requester", &g.requester, MAX_TEXT)?;
                text::check("database", &g.database, MAX_TEXT)?;
                text::check("target", &g.target, MAX_TEXT)?;
                text::check("reason", &g.reason, MAX_REASON)?;
                text::check_optional("request_id", &g.request_id, MAX_TEXT)?;
                text::check_optional("approver", &g.approver, MAX_TEXT)?;
                text::check_optional("db_user", &g.db_user, MAX_TEXT)?;
                if let Some(db_user) = &g.db_user {
                    naming::check_identifier(db_user)
                        .map_err(|e| ClientError::invalid_request(format!("db_user {e}")))?;
                }
                // Who may approve is the target's policy (`policy::approval`), checked once the target is known.
                Ok(())
            }
            Request::Revoke(r) => {
                grant_id(&r.grant_id)?;
                text::check("actor", &r.actor, MAX_TEXT)?;
                text::check_optional("reason", &r.reason, MAX_REASON)
            }
            Request::Extend(e) => {
                grant_id(&e.grant_id)?;
                text::check("actor", &e.actor, MAX_TEXT)?;
                text::check("reason", &e.reason, MAX_REASON)
            }
            Request::Describe(d) => grant_id(&d.grant_id),
        }
    }

    /// Identities are stored as [`identity::clean`] gives them, so the table and the audit show one spelling.
    fn with_clean_identities(mut self) -> Request {
        let clean = |value: &mut String| *value = identity::clean(value).to_string();
        match &mut self {
            Request::Grant(g) => {
                clean(&mut g.requester);
                if let Some(approver) = &mut g.approver {
                    clean(approver);
                }
            }
            Request::Revoke(RevokeRequest { actor, .. }) | Request::Extend(ExtendRequest { actor, .. }) => clean(actor),
            Request::Describe(_) => {}
        }
        self
    }
}

fn from_body<T: DeserializeOwned>(body: Value) -> Result<T, ClientError> {
    // The path names the field at fault: "duration_seconds: invalid value: integer `-5`, expected u64".
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ClientError::invalid_request(inner)
        } else {
            ClientError::invalid_request(format!("{path}: {inner}"))
        }
    })
}

fn grant_id(value: &str) -> Result<(), ClientError> {
    let ok = !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ClientError::invalid_request("grant_id must be 1-64 characters of letters, digits and '-'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn action_defaults_to_grant() {
        let req = Request::parse(json!({"requester": "alice@example.com", "database": "orders",
            "target": "dba", "reason": "INC-1", "db_user": "alice"}))
        .unwrap();
        let Request::Grant(grant) = req else { panic!("not a grant") };
        assert_eq!(grant.db_user.as_deref(), Some("alice"));
        assert_eq!(grant.duration_seconds, None);
    }

    #[test]
    fn every_action_parses() {
        for payload in [
            json!({"action": "revoke", "grant_id": "g-1", "actor": "bob@example.com", "reason": "done early"}),
            json!({"action": "extend", "grant_id": "g-1", "duration_seconds": 1800, "actor": "a", "reason": "r"}),
            json!({"action": "describe", "grant_id": "g-1"}),
        ] {
            Request::parse(payload.clone()).unwrap_or_else(|e| panic!("{payload}: {e}"));
        }
    }

    #[test]
    fn bad_input_is_invalid_request_with_a_reason() {
        let cases = [
            (json!([1, 2]), "JSON object"),
            (json!({"action": "delete", "grant_id": "x"}), "unknown action"),
            (json!({"action": "describe", "grant_id": "x", "extra": 1}), "unknown field"),
            (json!({"requester": "a", "database": "d", "target": "t"}), "reason"),
            (json!({"requester": " ", "database": "d", "target": "t", "reason": "r"}), "requester"),
            (json!({"requester": "a", "database": "d", "target": "t", "reason": "r\u{0}"}), "control"),
            (
                json!({"requester": "a", "database": "d", "target": "t", "reason": "r", "db_user": "x".repeat(64)}),
                "db_user",
            ),
            (json!({"action": "describe", "grant_id": "'; DROP TABLE grants; --"}), "grant_id"),
            (
                json!({"action": "extend", "grant_id": "g", "duration_seconds": -5, "actor": "a", "reason": "r"}),
                "duration_seconds",
            ),
        ];
        for (payload, needle) in cases {
            let err = Request::parse(payload.clone()).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{payload}");
            assert!(err.message.contains(needle), "{payload}: {}", err.message);
        }
    }

    /// A valid grant request with `field` set to `value`.
    fn grant_with(field: &str, value: Value) -> Value {
        let mut request = json!({"requester": "alice@example.com", "database": "orders", "target": "readonly",
            "reason": "INC-1"});
        request[field] = value;
        request
    }

    #[test]
    fn identities_are_stored_trimmed_and_other_text_as_given() {
        let mut payload = grant_with("requester", json!(" Alice@Example.com "));
        payload["approver"] = json!("\u{a0}bob@x ");
        payload["reason"] = json!(" INC-1 ");
        let Request::Grant(g) = Request::parse(payload).unwrap() else { panic!("not a grant") };
        assert_eq!((g.requester.as_str(), g.approver.as_deref()), ("Alice@Example.com", Some("bob@x")));
        assert_eq!(g.reason, " INC-1 ");
        let revoke = json!({"action": "revoke", "grant_id": "g-1", "actor": "  bob@x "});
        let extend = json!({"action": "extend", "grant_id": "g-1", "duration_seconds": 600, "actor": " bob@x\u{3000}",
            "reason": "r"});
        match (Request::parse(revoke).unwrap(), Request::parse(extend).unwrap()) {
            (Request::Revoke(r), Request::Extend(e)) => {
                assert_eq!((r.actor.as_str(), e.actor.as_str()), ("bob@x", "bob@x"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invisible_characters_are_refused_in_every_free_text_field() {
        let fields = ["requester", "approver", "reason", "request_id", "database", "target", "db_user"];
        for c in ['\u{202e}', '\u{200b}', '\u{2028}', '\u{feff}', '\u{e000}'] {
            let value = json!(format!("ali{c}ce"));
            let mut payloads: Vec<(&str, Value)> =
                fields.iter().map(|field| (*field, grant_with(field, value.clone()))).collect();
            let revoke = json!({"action": "revoke", "grant_id": "g-1", "actor": "bob", "reason": "r"});
            let extend =
                json!({"action": "extend", "grant_id": "g-1", "duration_seconds": 600, "actor": "bob", "reason": "r"});
            for (mut payload, field) in
                [(revoke.clone(), "actor"), (revoke, "reason"), (extend.clone(), "actor"), (extend, "reason")]
            {
                payload[field] = value.clone();
                payloads.push((field, payload));
            }
            for (field, payload) in payloads {
                let err = Request::parse(payload.clone()).unwrap_err();
                assert_eq!(err.code, ErrorCode::InvalidRequest, "{payload}");
                let code_point = format!("U+{:04X}", u32::from(c));
                assert!(err.message.starts_with(field) && err.message.contains(&code_point), "{payload}: {err}");
            }
        }
    }

    #[test]
    fn a_huge_value_never_makes_a_huge_message() {
        let huge = "x".repeat(1 << 20);
        let mut unknown_field = grant_with("reason", json!("r"));
        unknown_field[&huge] = json!(1);
        let cases = [
            (json!({"action": huge}), "unknown action"),
            (unknown_field, "unknown field"),
            (grant_with("requester", json!(huge)), "requester must be at most"),
            (grant_with("duration_seconds", json!(huge)), "duration_seconds"),
        ];
        for (payload, needle) in cases {
            let err = Request::parse(payload).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest);
            assert!(err.message.len() <= crate::error::MAX_MESSAGE_BYTES, "{} bytes", err.message.len());
            assert!(err.message.starts_with(needle), "{}", &err.message[..80]);
        }
        for payload in [json!({"action": huge}), json!({"action": "describe", "grant_id": "g", &huge: 1})] {
            let err = Request::parse(payload).unwrap_err();
            assert!(err.message.len() < 200, "the echo of a value is short: {}", err.message);
        }
    }
}
