//! The product's rules, with no I/O: what a grant is and how it moves through its life, what a valid request
//! and config look like, how long access may last, how roles are named, which SQL does what, and how a grant
//! is stored in DynamoDB. Adapters (DynamoDB, S3, PostgreSQL) and the Lambda handlers only carry these out.
//!
//! # The surface
//!
//! At the crate root, the types most callers need:
//!
//! * [`Grant`]: a grant and its lifecycle. Its fields are read through getters and changed only by the
//!   lifecycle methods ([`Grant::activate`], [`Grant::revoke`], ...); [`Status`], [`HistoryEntry`],
//!   [`RevokedBy`], [`Reap`] and [`ExtensionLimits`] go with it.
//! * [`Lease`], [`Purpose`], [`Expect`]: who is working on a grant right now, and what a write expects.
//! * [`Request`]: a provisioner request, parsed and validated.
//! * [`Config`] and its parts ([`TargetConfig`], [`DatabaseConfig`], [`SslMode`], [`Strategy`],
//!   [`AdminCredentials`]).
//! * [`ClientError`] and its [`ErrorCode`] (the caller's mistake, in an answer of at most
//!   [`MAX_MESSAGE_BYTES`]); [`ConfigError`] (the operator's).
//! * [`Password`]: a generated password, redacted in `Debug`.
//! * [`same_identity`]: whether two spellings name the same person.
//!
//! Domain namespaces, used by path (`grant_model::sql::grant_roles`, `grant_model::naming::temp_username`):
//!
//! * [`grant`]: the lifecycle's inputs and constants (`NewGrant`, `Retention`, `PROVISIONER`, `REAPER`),
//!   `format_time` and `now_seconds`.
//! * [`lease`]: the lease rules (`may_write`, durations).
//! * [`item`]: the grant as a DynamoDB item ([`item::GrantItem`]) and the expiry index's shards.
//! * [`request`] and [`response`]: the provisioner's wire format.
//! * [`config`], [`policy`], [`escalation`], [`naming`], [`sql`], [`mysql`]: the rules for config, durations,
//!   role escalation, role names, and the SQL that carries a grant out (PostgreSQL, MySQL).
//! * [`schema`]: the JSON Schemas of requests and responses.
//! * [`sym`]: Sym's Lambda strategy events, read into what they ask.
//!
//! Everything else (text checks, identity cleaning, secrets, error formatting) is private.

pub mod config;
pub mod delivery;
mod error;
pub mod escalation;
pub mod grant;
mod identity;
pub mod item;
pub mod lease;
pub mod mysql;
pub mod naming;
pub mod policy;
pub mod request;
pub mod response;
pub mod schema;
mod secret;
pub mod sql;
pub mod sym;
mod text;

pub use config::{
    AdminCredentials, AdminSource, Config, DatabaseConfig, Endpoint, Engine, ReaderConfig, SslMode, Strategy,
    TargetConfig,
};
pub use delivery::{Auth, CredentialDelivery, CredentialsRef};
pub use error::{ClientError, ConfigError, ErrorCode, MAX_MESSAGE_BYTES};
pub use grant::{ExtensionLimits, Grant, HistoryEntry, Reap, Refused, RevokedBy, Status, TransitionError};
pub use identity::same_identity;
pub use lease::{Expect, Lease, Purpose};
pub use request::Request;
pub use secret::{AuthToken, Password};
