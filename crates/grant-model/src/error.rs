//! Errors of the domain layer. `ClientError` is the caller's mistake and becomes a structured response;
//! `ConfigError` is the operator's (a bad config document) and becomes a function error, so it is alarmed on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest `message` a caller (and the log) ever gets, in bytes: a client error may quote what the caller
/// sent, and a 1 MB field must not come back as a 1 MB message.
pub const MAX_MESSAGE_BYTES: usize = 512;
/// How much of a caller's value a message quotes, in characters.
pub const MAX_QUOTED_CHARS: usize = 64;
const ELLIPSIS: char = '…';

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
    /// Every client error is made here, so every message is bounded: cut to [`MAX_MESSAGE_BYTES`] (on a
    /// character boundary, ending in `…`).
    pub fn new(code: ErrorCode, message: impl fmt::Display) -> Self {
        Self { code, message: bounded(message.to_string()) }
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

/// A caller's value as a message shows it: Rust-quoted (escapes visible) and cut to [`MAX_QUOTED_CHARS`]
/// characters, ending in `…` when cut.
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}{ELLIPSIS}", &value[..end]),
    }
}

fn bounded(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES - ELLIPSIS.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push(ELLIPSIS);
    message
}

/// The config document (or an admin credentials object) is malformed. The message names the field, never a value
/// that could be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_on_a_character_boundary() {
        for filler in ["x", "é", "€", "𝄞"] {
            let long = filler.repeat(1 << 20);
            let message = ClientError::invalid_request(format!("requester {long}")).message;
            assert!(message.len() <= MAX_MESSAGE_BYTES, "{} bytes", message.len());
            assert!(message.len() > MAX_MESSAGE_BYTES - 4, "cut no shorter than needed");
            assert!(message.starts_with("requester ") && message.ends_with('…'), "{message}");
        }
        let short = ClientError::invalid_request("reason must not be empty");
        assert_eq!(short.message, "reason must not be empty");
    }

    #[test]
    fn quoting_shows_escapes_and_at_most_the_start_of_a_value() {
        assert_eq!(quote("delete"), "\"delete\"");
        assert_eq!(quote("a\u{202e}b"), "\"a\\u{202e}b\"");
        let quoted = quote(&"é".repeat(10_000));
        assert_eq!(quoted, format!("{:?}…", "é".repeat(MAX_QUOTED_CHARS)));
    }
}
