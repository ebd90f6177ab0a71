//! The I/O both Lambdas share: settings from the environment, the config document and admin credentials from
//! S3 (or Secrets Manager, or an IAM token), delivered credentials in Secrets Manager or SSM, grants in DynamoDB (behind [`GrantRepo`], with a memory store for unit tests), admin sessions to
//! PostgreSQL and MySQL behind one [`Engine`] trait, and the one revocation routine. Adapters carry out what `grant-model` decides; they decide nothing
//! themselves.

pub mod cluster;
pub mod config_source;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod logging;
pub mod memory;
pub mod mysql;
pub mod mysql_engine;
pub mod pg;
pub mod postgres_engine;
#[cfg(test)]
mod races;
pub mod rds;
pub mod rds_token;
pub mod repo;
pub mod revoke;
pub mod settings;
mod slots;
pub mod store;
pub mod tls;

pub use cluster::Cluster;
pub use config_source::ConfigSource;
pub use delivery::Delivery;
pub use engine::{Engine, Prepared, Refused, TempUserSpec};
pub use error::Fault;
pub use memory::MemoryStore;
pub use pg::Connections;
pub use repo::{Cursor, GrantRepo};
pub use revoke::{Outcome, Revocation, Why};
pub use settings::Settings;
pub use store::GrantStore;
