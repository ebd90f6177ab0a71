//! AWS's JSON protocol, spoken to moto directly, for the services the project's code does not call and so has no
//! SDK crate for (EventBridge, SQS, DynamoDB Streams): the tests use them to check what the table's stream
//! would become on a bus. moto does not check signatures; the credential scope in `Authorization` tells it the
//! region.

use serde_json::Value;
use std::io::{Read, Write};

/// The protocol details of one service.
#[derive(Debug, Clone, Copy)]
pub struct JsonService {
    /// `X-Amz-Target` prefix, e.g. `AWSEvents`.
    pub target_prefix: &'static str,
    /// `application/x-amz-json-1.0` or `-1.1`.
    pub content_type: &'static str,
    /// The signing name in the credential scope.
    pub signing_name: &'static str,
}

pub const EVENTS: JsonService =
    JsonService { target_prefix: "AWSEvents", content_type: "application/x-amz-json-1.1", signing_name: "events" };
pub const SQS: JsonService =
    JsonService { target_prefix: "AmazonSQS", content_type: "application/x-amz-json-1.0", signing_name: "sqs" };
pub const DYNAMODB_STREAMS: JsonService = JsonService {
    target_prefix: "DynamoDBStreams_20120810",
    content_type: "application/x-amz-json-1.0",
    signing_name: "dynamodb",
};

impl crate::Moto {
    /// Calls `operation` of `service` with `input`; panics on an error answer, naming it.
    pub fn call(&self, service: JsonService, operation: &str, input: &Value) -> Value {
        let body = input.to_string();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {}\r\nX-Amz-Target: {}.{operation}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{}/aws4_request, \
             SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            service.content_type,
            service.target_prefix,
            service.signing_name,
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        stream.write_all(request.as_bytes()).expect("send to moto");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read from moto");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let body =
            if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
        let ok = head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200");
        assert!(ok, "{}.{operation} {input}: {head}\n{body}", service.target_prefix);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{operation}: {e}: {body}"))
    }
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}
