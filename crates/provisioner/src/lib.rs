//! The provisioner Lambda: turns an invocation into one of the four actions. Client mistakes become a structured
//! `{"ok": false}` response; faults become function errors so the caller (or Lambda's async retry) tries again.

mod grant;
mod manage;
pub mod payload;
pub mod raw_body;
mod sym;

use grant_adapters::{ConfigSource, Connections, Delivery, Fault, GrantRepo, GrantStore, Revocation, Settings};
use grant_model::grant::PROVISIONER;
use grant_model::request::RevokeRequest;
use grant_model::response::Response;
use grant_model::{ClientError, Request};
use serde_json::Value;
use std::sync::Arc;
use tracing::Instrument;

/// Everything built once at cold start and borrowed by each invocation.
pub struct App {
    pub settings: Settings,
    /// DynamoDB in production; tests may give their own (one whose client counts or fails requests).
    pub store: Arc<dyn GrantRepo>,
    pub source: ConfigSource,
    pub connections: Connections,
    /// Secrets Manager and SSM, for targets that deliver credentials there.
    pub delivery: Delivery,
}

/// This layer's error: whose fault it is decides how the invocation ends.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<grant_adapters::Refused> for ActionError {
    fn from(refused: grant_adapters::Refused) -> Self {
        match refused {
            grant_adapters::Refused::Client(error) => ActionError::Client(error),
            grant_adapters::Refused::Fault(fault) => ActionError::Fault(fault),
        }
    }
}

/// A lifecycle refusal of a change the caller asked for is the caller's to hear about.
impl From<grant_model::TransitionError> for ActionError {
    fn from(error: grant_model::TransitionError) -> Self {
        ActionError::Client(error.into())
    }
}

impl App {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings) -> App {
        App {
            store: Arc::new(GrantStore::new(sdk, &settings.grants_table)),
            source: ConfigSource::new(sdk, &settings),
            connections: Connections::default(),
            delivery: Delivery::new(sdk, &settings.secret_name_prefix),
            settings,
        }
    }

    pub async fn from_env() -> Result<App, Fault> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(App::new(&sdk, settings))
    }

    /// The one revocation operation, acting as `holder`.
    pub fn revocation<'a>(&'a self, holder: &'a str) -> Revocation<'a> {
        Revocation {
            store: &*self.store,
            connections: &self.connections,
            source: &self.source,
            delivery: &self.delivery,
            retention: self.settings.retention,
            holder,
        }
    }

    /// Ends a grant early, typed: what the `revoke` action does, for callers in Rust (`grantctl revoke`).
    pub async fn revoke(&self, req: RevokeRequest, holder: &str) -> Result<Response, ActionError> {
        manage::revoke(self, req, holder).await
    }

    /// One invocation as Lambda delivered it (see [`raw_body`]): a payload that is not JSON we accept is an
    /// `invalid_request` response; the rest is [`App::handle`].
    pub async fn handle_bytes(&self, payload: &[u8]) -> Result<Value, Fault> {
        match payload::parse(payload) {
            Ok(payload) => self.handle(payload).await,
            Err(error) => {
                tracing::info!(code = error.code.as_str(), detail = %error.message, "request rejected");
                Ok(Response::Failure(error).to_json())
            }
        }
    }

    /// One invocation: the response for a handled request (including client errors), or a fault.
    pub async fn handle(&self, payload: Value) -> Result<Value, Fault> {
        if grant_model::sym::is_sym_event(&payload) {
            let span = tracing::info_span!(
                "request",
                action = "sym",
                grant_id = tracing::field::Empty,
                requester = tracing::field::Empty
            );
            return sym::handle(self, payload).instrument(span).await;
        }
        let request = match Request::parse(payload) {
            Ok(request) => request,
            Err(error) => {
                tracing::info!(code = error.code.as_str(), detail = %error.message, "request rejected");
                return Ok(Response::Failure(error).to_json());
            }
        };
        let span = tracing::info_span!(
            "request",
            action = request.action(),
            grant_id = tracing::field::Empty,
            requester = tracing::field::Empty
        );
        let outcome = async {
            match request {
                Request::Grant(req) => grant::grant(self, req).await,
                Request::Revoke(req) => manage::revoke(self, req, PROVISIONER).await,
                Request::Extend(req) => manage::extend(self, req).await,
                Request::Describe(req) => manage::describe(self, req).await,
            }
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        match outcome {
            Ok(response) => Ok(response.to_json()),
            Err(ActionError::Client(error)) => {
                tracing::info!(code = error.code.as_str(), detail = %error.message, "request refused");
                Ok(Response::Failure(error).to_json())
            }
            Err(ActionError::Fault(fault)) => {
                tracing::error!(error = %fault, "request failed; the caller should retry");
                Err(fault)
            }
        }
    }
}

/// Notes the grant being worked on in the current span, so every later log line carries it.
fn note_grant(grant_id: &str, requester: &str) {
    let span = tracing::Span::current();
    span.record("grant_id", grant_id);
    span.record("requester", requester);
}
