//! JSON Schemas of the provisioner's request and response, generated from the types that parse and produce them.
//! Copies are checked in under `docs/schema/`; a test fails when they and the types drift apart
//! (regenerate with `cargo run -p grant-model --example write-schema`).

use crate::request::{DescribeRequest, ExtendRequest, GrantRequest, RevokeRequest};
use crate::response::Body;
use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};
use std::borrow::Cow;

/// Makes one schema.
pub type Generate = fn() -> Value;

/// The checked-in files, relative to the repository root, and what each holds.
pub const FILES: [(&str, Generate); 2] =
    [("docs/schema/request.schema.json", request_schema), ("docs/schema/response.schema.json", response_schema)];

/// A timestamp as the SPEC writes them: RFC 3339, UTC, whole seconds.
pub(crate) struct Rfc3339;

impl JsonSchema for Rfc3339 {
    fn schema_name() -> Cow<'static, str> {
        "Rfc3339".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time", "examples": ["2026-11-21T14:00:00Z"]})
    }
}

/// One of four shapes, told apart by `action`, which may be left out for `grant`.
pub fn request_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().for_deserialize().into_generator();
    let variants = vec![
        with_action(generator.root_schema_for::<GrantRequest>(), "grant", false),
        with_action(generator.root_schema_for::<RevokeRequest>(), "revoke", true),
        with_action(generator.root_schema_for::<ExtendRequest>(), "extend", true),
        with_action(generator.root_schema_for::<DescribeRequest>(), "describe", true),
    ];
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ProvisionerRequest",
        "description": "The payload of a Lambda Invoke of the provisioner. Unknown fields are rejected.",
        "oneOf": variants,
    })
}

/// `{"ok": true, "grant": ..., "credentials"?: ...}` or `{"ok": false, "error": {"code", "message"}}`.
pub fn response_schema() -> Value {
    let generator = SchemaSettings::draft2020_12().for_serialize().into_generator();
    generator.into_root_schema_for::<Body>().to_value()
}

fn with_action(schema: Schema, action: &str, required: bool) -> Value {
    let mut schema = schema.to_value();
    let object = schema.as_object_mut().expect("a request is an object");
    object.remove("$schema");
    let properties = object["properties"].as_object_mut().expect("a request has properties");
    let mut action_schema = json!({"const": action});
    if !required {
        action_schema["default"] = json!(action);
    }
    properties.insert("action".into(), action_schema);
    if required {
        object["required"].as_array_mut().expect("a request has required fields").insert(0, json!("action"));
    }
    schema
}
