//! Getting the invocation's body to the handler untouched.
//!
//! `lambda_runtime` (1.5, `layers/api_response.rs`) deserializes the body into the handler's payload type before
//! the handler runs, with serde_json's defaults (`serde_json::Deserializer::from_slice`); if that fails, the
//! invocation ends as a function error and our code never sees it. (With TRACE logging on, the runtime also
//! checks the body is UTF-8 first and, if not, ends `run` with an error.) A `LambdaEvent<Box<RawValue>>` would
//! not do: RawValue skips over nesting, surrogates and numbers unchecked, but still needs a syntactically valid
//! UTF-8 JSON document, and needs serde_json's `raw_value` feature.
//!
//! So [`RawBodyLayer`], a layer over the runtime's [`LambdaInvocation`] (which carries the body as bytes), replaces
//! the body with a JSON string of its bytes in hex, which always deserializes, into [`RawBody`]. The handler then
//! has the exact bytes Lambda sent and parses them itself ([`crate::payload::parse`]).

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;
use std::task::{Context, Poll};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The handler's payload: the body of the invocation, byte for byte. Only [`RawBodyLayer`] makes the JSON
/// it is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBody(pub Vec<u8>);

/// Wraps the runtime's service so each invocation's body reaches the handler as [`RawBody`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBodyLayer;

impl<S> Layer<S> for RawBodyLayer {
    type Service = RawBodyService<S>;

    fn layer(&self, inner: S) -> RawBodyService<S> {
        RawBodyService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RawBodyService<S> {
    inner: S,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for RawBodyService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> S::Future {
        invocation.body = encode(&invocation.body).into();
        self.inner.call(invocation)
    }
}

/// `"<hex of body>"`: a JSON string, whatever the body was.
fn encode(body: &[u8]) -> Vec<u8> {
    let mut json = Vec::with_capacity(body.len() * 2 + 2);
    json.push(b'"');
    for byte in body {
        json.extend([HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]]);
    }
    json.push(b'"');
    json
}

fn decode(hex: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| HEX.iter().position(|&h| h == c).map(|d| d as u8);
    let pairs = hex.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs.map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

impl<'de> Deserialize<'de> for RawBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawBody, D::Error> {
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = RawBody;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the invocation body as a hex string, as RawBodyLayer writes it")
            }
            fn visit_str<E: de::Error>(self, hex: &str) -> Result<RawBody, E> {
                decode(hex).map(RawBody).ok_or_else(|| E::custom("not lowercase hex of even length"))
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_body_comes_back_byte_for_byte() {
        let bodies: [&[u8]; 5] = [b"", b"{}", br#"{"a": "\ud800", "n": 1e400}"#, b"\xff\x00\"\\", &[0x7f; 300]];
        for body in bodies {
            let json = encode(body);
            let parsed: RawBody = serde_json::from_slice(&json).unwrap();
            assert_eq!(parsed.0, body);
        }
    }

    #[test]
    fn a_body_the_layer_did_not_write_is_refused() {
        for json in [&br#"{"action": "describe"}"#[..], br#""abc""#, br#""0G""#] {
            assert!(serde_json::from_slice::<RawBody>(json).is_err(), "{}", String::from_utf8_lossy(json));
        }
    }
}
