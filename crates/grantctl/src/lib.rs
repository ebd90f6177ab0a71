//! grantctl: what operators ask of the grants table, answered the way dashboards read it (GetItem and the two
//! indexes, never a Scan), and `revoke` through the provisioner's own code path, so a manual revocation is
//! recorded and leased exactly like one requested by a caller.

mod render;
pub mod serve;

use aws_config::SdkConfig;
use clap::{Parser, Subcommand};
use grant_adapters::{Fault, GrantStore, Settings};
use grant_model::grant::now_seconds;
use grant_model::item::GrantItem;
use grant_model::request::RevokeRequest;
use grant_model::{ClientError, Grant};
use provisioner::ActionError;
use serde_json::{json, Value};
use std::net::SocketAddr;

#[derive(Debug, Parser)]
#[command(name = "grantctl", version, about = "Inspect and revoke just-in-time database grants.")]
#[command(after_help = "Works against AWS, or a local endpoint with AWS_ENDPOINT_URL. Exit status: 0 done, \
                        1 refused (e.g. no such grant), 2 usage, 3 fault (AWS or PostgreSQL unreachable: retry).")]
pub struct Cli {
    /// The grants table (SPEC `GRANTS_TABLE`).
    #[arg(long, env = "GRANTS_TABLE", global = true)]
    pub table: Option<String>,
    /// Print JSON instead of tables: items with the table's attribute names, or the provisioner's response.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Who has what right now: active grants, and pending ones being provisioned, soonest expiry first.
    Active {
        /// Only this database.
        #[arg(long)]
        database: Option<String>,
    },
    /// One grant, with its history.
    Show { grant_id: String },
    /// A requester's grants, newest first.
    History {
        #[arg(long)]
        requester: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Live grants more than 15 minutes past their expiry: the reaper is failing or not running.
    Overdue,
    /// Revokes a grant now, as the provisioner's `revoke` does. Needs the config bucket and network access to the
    /// database; CONFIG_KEY, S3_FORCE_PATH_STYLE and RETENTION_DAYS are read from the environment as the Lambdas
    /// read them.
    Revoke {
        grant_id: String,
        /// Why; recorded in the grant's history.
        #[arg(long)]
        reason: String,
        /// Who is revoking; recorded as `revoked_by`.
        #[arg(long, env = "GRANTCTL_ACTOR")]
        actor: String,
        /// The bucket holding the config document and admin credentials (SPEC `CONFIG_BUCKET`).
        #[arg(long, env = "CONFIG_BUCKET")]
        config_bucket: String,
    },
    /// A read-only web dashboard over the table, with these credentials: live grants per database, expiring,
    /// overdue, one grant, a requester's history, a timeline. Each page has a JSON twin
    /// (`Accept: application/json`). Runs until interrupted.
    Serve {
        /// Address to listen on; keep it on loopback unless a proxy in front authenticates operators.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
    },
}

/// This layer's error; each kind has its own exit status, so scripts know whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{}: {}", .0.code.as_str(), .0.message)]
    Refused(ClientError),
    #[error("{0}; try again")]
    Fault(#[from] Fault),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Fault(_) => 3,
        }
    }
}

/// Runs one command; returns what to print.
pub async fn run(cli: Cli, sdk: &SdkConfig) -> Result<String, CliError> {
    let table = cli
        .table
        .filter(|t| !t.is_empty())
        .ok_or_else(|| CliError::Usage("no table: set GRANTS_TABLE or pass --table".into()))?;
    let store = GrantStore::new(sdk, &table);
    let now = now_seconds();
    let json = cli.json;
    match cli.command {
        Command::Active { database } => {
            let mut grants = store.live_grants().await?;
            grants.retain(|g| database.as_ref().is_none_or(|d| g.database() == d));
            grants.sort_by_key(|g| g.expires_at());
            Ok(if json { items(&grants) } else { render::active(&grants, now) })
        }
        Command::Show { grant_id } => {
            let grant =
                store.get(&grant_id).await?.ok_or_else(|| CliError::Refused(ClientError::not_found(&grant_id)))?;
            Ok(if json { pretty(&json!(GrantItem::from(&grant))) } else { render::detail(&grant, now) })
        }
        Command::History { requester, limit } => {
            let grants = store.grants_of_requester(&requester, Some(limit)).await?;
            Ok(if json { items(&grants) } else { render::history(&requester, &grants, now) })
        }
        Command::Overdue => {
            let mut grants = store.live_grants().await?;
            grants.retain(|g| g.is_overdue(now));
            grants.sort_by_key(|g| g.expires_at());
            Ok(if json { items(&grants) } else { render::overdue(&grants, now) })
        }
        Command::Revoke { grant_id, reason, actor, config_bucket } => {
            let settings = Settings::from_lookup(|name| match name {
                "GRANTS_TABLE" => Some(table.clone()),
                "CONFIG_BUCKET" => Some(config_bucket.clone()),
                other => std::env::var(other).ok(),
            })?;
            let provisioner = provisioner::App::new(sdk, settings);
            let request = RevokeRequest { grant_id, actor, reason: Some(reason) };
            let response = match provisioner.revoke(request, "grantctl").await {
                Ok(response) => response.to_json(),
                Err(ActionError::Client(error)) => return Err(CliError::Refused(error)),
                Err(ActionError::Fault(fault)) => return Err(CliError::Fault(fault)),
            };
            Ok(if json { pretty(&response) } else { render::revoked(&response) })
        }
        Command::Serve { bind } => {
            serve::run(store, bind).await.map_err(|e| CliError::Usage(format!("serve on {bind}: {e}")))?;
            Ok(String::new())
        }
    }
}

fn items(grants: &[Grant]) -> String {
    pretty(&Value::Array(grants.iter().map(|g| json!(GrantItem::from(g))).collect()))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialise") + "\n"
}
