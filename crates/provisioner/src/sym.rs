//! Sym's Lambda strategy as a caller: an escalate is a `grant`, a deescalate the `revoke` of that run's grant,
//! each through the same code as our own requests. The answer keeps Sym's shape, `{"body": {...}, "errors":
//! [...]}`: a refusal is a non-empty `errors` list, never a function error (Sym shows it to the requester). A
//! fault stays a function error, so it is retried like any other.

use crate::{grant, manage, ActionError, App};
use grant_adapters::Fault;
use grant_model::request::RevokeRequest;
use grant_model::response::{GrantView, Response};
use grant_model::sym::{Escalate, SymCall};
use grant_model::{naming, policy, ClientError, Request, Status};
use serde_json::{json, Value};

pub async fn handle(app: &App, payload: Value) -> Result<Value, Fault> {
    let outcome = match SymCall::parse(payload) {
        Ok(SymCall::Escalate(escalate)) => escalate_grant(app, escalate).await.map(body),
        Ok(SymCall::Deescalate { request_id, actor, note }) => deescalate(app, &request_id, actor, note).await,
        Err(error) => Err(error.into()),
    };
    match outcome {
        Ok(body) => Ok(json!({"body": body, "errors": []})),
        Err(ActionError::Client(error)) => {
            tracing::info!(code = error.code.as_str(), detail = %error.message, "Sym request refused");
            Ok(json!({"body": {}, "errors": [format!("{}: {}", error.code.as_str(), error.message)]}))
        }
        Err(ActionError::Fault(fault)) => {
            tracing::error!(error = %fault, "Sym request failed; Sym should retry");
            Err(fault)
        }
    }
}

/// Sym's `body`: what our own success response holds (the grant and, for a temporary user, its credentials),
/// without `ok`. A refusal never gets here: it is Sym's `errors`, as `"<code>: <message>"`.
fn body(response: Response) -> Value {
    let mut body = response.to_json();
    if let Some(fields) = body.as_object_mut() {
        fields.remove("ok");
    }
    body
}

/// The grant an escalate asks for, checked as our own request would be (the same parser and policy).
async fn escalate_grant(app: &App, escalate: Escalate) -> Result<Response, ActionError> {
    let config = app.source.config().await?;
    let (database, target) = policy::resolve_target(&config, &escalate.target_name)?;
    let mut request = json!({"action": "grant", "request_id": escalate.request_id, "requester": escalate.requester,
        "database": database, "target": target, "reason": escalate.reason});
    if let Some(approver) = escalate.approver {
        request["approver"] = json!(approver);
    }
    if let Some(seconds) = escalate.duration_seconds {
        request["duration_seconds"] = json!(seconds);
    }
    match Request::parse(request)? {
        Request::Grant(req) => grant::grant(app, req).await,
        other => Err(ClientError::invalid_request(format!("Sym escalate became a {} request", other.action())).into()),
    }
}

/// Ends the run's grant. A run without a grant, or whose grant never became active, has nothing to take away.
async fn deescalate(app: &App, request_id: &str, actor: String, note: String) -> Result<Value, ActionError> {
    let grant_id = naming::grant_id_for_request(request_id);
    let Some(grant) = app.store.get(&grant_id).await? else {
        tracing::info!(grant_id, "Sym deescalate of a run without a grant: nothing to revoke");
        return Ok(json!({"grant": null}));
    };
    if grant.status() == Status::Failed {
        return Ok(body(Response::Success { grant: GrantView::of(&grant), credentials: None }));
    }
    let revoke = RevokeRequest { grant_id, actor, reason: Some(note) };
    manage::revoke(app, revoke, grant_model::grant::PROVISIONER).await.map(body)
}
