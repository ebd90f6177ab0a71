//! Command line: where the Lambda binaries are.

use std::path::PathBuf;

/// Runs the main job end to end against a throwaway PostgreSQL cluster (or, with `--engine mysql`, a MariaDB
/// server) and moto: the real provisioner and
/// reaper binaries grant access, let it expire and take it away. Prerequisites: scripts/setup.sh.
#[derive(Debug, clap::Parser)]
pub struct Options {
    /// The provisioner binary [default: `provisioner` next to local-demo, i.e. target/<profile>/]
    #[arg(long, value_name = "PATH")]
    pub provisioner: Option<PathBuf>,
    /// The reaper binary [default: `reaper` next to local-demo]
    #[arg(long, value_name = "PATH")]
    pub reaper: Option<PathBuf>,
    /// The database engine: PostgreSQL (with a hot standby as the reader), or MySQL (a MariaDB 10.11 server,
    /// this machine's stand-in for Aurora MySQL).
    #[arg(long, value_enum, default_value_t = Engine::Postgres)]
    pub engine: Engine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Postgres,
    Mysql,
}
