//! The product's rules, with no I/O: what a grant is and how it moves through its life, what a valid request
//! and config look like, how long access may last, how roles are named, which SQL does what, and how a grant
//! is stored in DynamoDB. Adapters (DynamoDB, S3, PostgreSQL) and the Lambda handlers only carry these out.

pub mod config;
pub mod error;
pub mod escalation;
pub mod grant;
pub mod identity;
pub mod item;
pub mod lease;
pub mod naming;
pub mod policy;
pub mod request;
pub mod response;
pub mod schema;
pub mod secret;
pub mod sql;
pub mod text;

pub use config::{AdminCredentials, Config, DatabaseConfig, SslMode, Strategy, TargetConfig};
pub use error::{ClientError, ConfigError, ErrorCode};
pub use grant::{ExtensionLimits, Grant, HistoryEntry, Reap, RevokedBy, Status};
pub use identity::same_identity;
pub use lease::{Expect, Lease, Purpose};
pub use request::Request;
pub use secret::Password;
