//! Errors of the domain layer. `ClientError` is the caller's mistake and becomes a structured response;
//! `ConfigError` is the operator's (a bad config document) and becomes a function error, so it is alarmed on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The SPEC's error codes, the only ones a caller ever sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    UnknownDatabase,
    UnknownTarget,
    UnknownDbUser,
    PolicyViolation,
    AlreadyHasAccess,
    Conflict,
    NotFound,
    InvalidState,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownDatabase => "unknown_database",
            ErrorCode::UnknownTarget => "unknown_target",
            ErrorCode::UnknownDbUser => "unknown_db_user",
            ErrorCode::PolicyViolation => "policy_violation",
            ErrorCode::AlreadyHasAccess => "already_has_access",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidState => "invalid_state",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ClientError {
    pub code: ErrorCode,
    pub message: String,
}

impl ClientError {
    pub fn new(code: ErrorCode, message: impl fmt::Display) -> Self {
        Self { code, message: message.to_string() }
    }
    pub fn invalid_request(message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn invalid_state(message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidState, message)
    }
    pub fn not_found(grant_id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no grant with grant_id {grant_id:?}"))
    }
}

/// The config document (or an admin credentials object) is malformed. The message names the field, never a value
/// that could be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {0}")]
pub struct ConfigError(pub String);
