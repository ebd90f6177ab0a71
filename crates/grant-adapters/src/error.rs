//! Faults: anything that is not the caller's mistake. A Lambda returns them as function errors so AWS retries
//! and alarms fire. Messages carry no secret: database errors are reduced to their code, message and detail.

use grant_model::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("environment: {0}")]
    Settings(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("S3 GetObject {key}: {message}")]
    S3 { key: String, message: String },
    #[error("DynamoDB {operation}: {message}")]
    Dynamo { operation: &'static str, message: String },
    /// Secrets Manager, SSM, or signing an IAM authentication token.
    #[error("{service}: {message}")]
    Aws { service: &'static str, message: String },
    #[error("PostgreSQL ({database}): {message}")]
    Postgres { database: String, code: Option<String>, message: String },
    /// `code` is MySQL's error number (1045 access denied, 1396 operation failed on a user, ...).
    #[error("MySQL ({database}): {message}")]
    Mysql { database: String, code: Option<u16>, message: String },
    /// A rule this code relies on did not hold (e.g. a claimed grant refused the transition its claim was for).
    #[error("internal invariant: {0}")]
    Invariant(String),
    /// Another invocation is working on the same grant, or it changed meanwhile; retrying later will succeed.
    #[error("grant {grant_id}: {conflict}; retry")]
    Conflict { grant_id: String, conflict: Conflict },
}

/// Why a grant could not be acted on just now. Not the caller's mistake, and not lasting: a function error of
/// type `Busy`, so the caller (or Lambda's async retry) tries again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("another invocation is provisioning it")]
    BeingProvisioned,
    #[error("it changed while this invocation worked on it")]
    ChangedMeanwhile,
    #[error("the lease on it ran out before the outcome could be recorded")]
    LeaseLost,
}

impl Fault {
    pub fn dynamo(operation: &'static str, error: impl std::error::Error) -> Fault {
        Fault::Dynamo { operation, message: aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string() }
    }

    pub fn postgres(database: &str, error: &tokio_postgres::Error) -> Fault {
        let (code, message) = match error.as_db_error() {
            Some(db) => {
                let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
                (Some(db.code().code().to_string()), format!("{}: {}{detail}", db.code().code(), db.message()))
            }
            None => (None, error_chain(error)),
        };
        Fault::Postgres { database: database.to_string(), code, message }
    }

    pub fn mysql(database: &str, error: &mysql_async::Error) -> Fault {
        let (code, message) = match error {
            mysql_async::Error::Server(server) => {
                (Some(server.code), format!("{} ({}): {}", server.code, server.state, server.message))
            }
            other => (None, error_chain(other)),
        };
        Fault::Mysql { database: database.to_string(), code, message }
    }

    /// MySQL's error number, for a MySQL fault.
    pub fn mysql_code(&self) -> Option<u16> {
        match self {
            Fault::Mysql { code, .. } => *code,
            _ => None,
        }
    }

    /// A short name for the kind of fault: the `errorType` a Lambda reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Settings(_) => "Settings",
            Fault::Config(_) => "Config",
            Fault::S3 { .. } => "S3",
            Fault::Dynamo { .. } => "DynamoDB",
            Fault::Aws { .. } => "AWS",
            Fault::Postgres { .. } => "PostgreSQL",
            Fault::Mysql { .. } => "MySQL",
            Fault::Conflict { .. } => "Busy",
            Fault::Invariant(_) => "Invariant",
        }
    }

    pub fn conflict(grant_id: &str, conflict: Conflict) -> Fault {
        Fault::Conflict { grant_id: grant_id.to_string(), conflict }
    }

    /// The SQLSTATE of a PostgreSQL fault, e.g. `2BP01` for a role that other objects still depend on.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Fault::Postgres { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
