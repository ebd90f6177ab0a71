//! The invocation payload as bytes, parsed here rather than by the Lambda runtime, so that JSON we do not accept
//! is the caller's mistake (`invalid_request`), not a function error that invites a retry.
//!
//! serde_json refuses some valid JSON by default: nesting deeper than 128 levels, a lone surrogate escape such
//! as `"\ud800"`, a number beyond the range of a 64-bit float such as `1e400`. Those, a document that is not
//! JSON at all, and bytes that are not UTF-8 all get the same answer.

use grant_model::ClientError;
use serde_json::Value;

/// What a payload must be, told to a caller whose payload was refused.
const ACCEPTED: &str = "a payload must be UTF-8 JSON nested at most 128 levels deep, with numbers within the \
                        range of a 64-bit float and no lone surrogate escapes";

/// The payload as a JSON value, or `invalid_request` saying why not (serde_json's reason and position).
pub fn parse(bytes: &[u8]) -> Result<Value, ClientError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ClientError::invalid_request(format!("the payload could not be read as JSON: {e} ({ACCEPTED})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use grant_model::ErrorCode;

    fn nested(depth: usize) -> String {
        format!("{{\"requester\": {}1{}}}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn json_serde_json_refuses_and_non_json_are_invalid_requests() {
        let deep = nested(200);
        let cases: [(&[u8], &str); 6] = [
            (deep.as_bytes(), "recursion limit exceeded"),
            (br#"{"requester": "\ud800"}"#, "hex escape"),
            (br#"{"duration_seconds": 1e400}"#, "number out of range"),
            (br#"{"requester": "#, "EOF while parsing"),
            (b"{\"requester\": \"\xff\"}", "invalid unicode code point"),
            (br#"{"action": "describe"} trailing"#, "trailing characters"),
        ];
        for (bytes, needle) in cases {
            let err = parse(bytes).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest);
            assert!(err.message.contains(needle) && err.message.contains("128 levels"), "{}", err.message);
        }
    }

    #[test]
    fn json_within_the_limits_parses() {
        assert!(parse(nested(100).as_bytes()).unwrap()["requester"][0].is_array());
        assert_eq!(parse(br#"{"a": "\ud83d\ude00", "n": 1e300}"#).unwrap()["a"], "😀");
    }
}
