//! Test environment the project owns, for integration tests of the other crates:
//!
//! * [`PgCluster`]: a throwaway PostgreSQL cluster per test, on its own port, of the major
//!   `JIT_TEST_PG_MAJOR` asks for (see `pg_versions`).
//! * [`MariaDb`]: a throwaway MariaDB server per test, on its own port and unix socket.
//! * [`moto()`]: one moto server (S3, DynamoDB, ...) per test process.
//! * [`RuntimeApi`] + [`LambdaProcess`]: run a real Lambda binary against a
//!   double of the Lambda Runtime API.
//!
//! Everything is real processes on 127.0.0.1; run `scripts/setup.sh` once per machine.

use std::io::{BufRead, BufReader, Read};

pub mod aws_json;
mod certs;
mod cut;
mod fault;
mod lambda_api;
mod mariadb;
mod moto;
mod pg_versions;
mod postgres;
mod process;

pub mod fixture;
pub mod history;
pub mod mysql_fixture;
mod scanned;
pub use certs::unrelated_ca;
pub use cut::CutAfterCommit;
pub use fault::ApplyThenFail;
pub use lambda_api::{Invocation, LambdaProcess, RuntimeApi};
pub use mariadb::{MariaDb, ADMIN_GRANTS};
pub use moto::{moto, unique_name, Moto, MotoBusy};
pub use pg_versions::{requested_major, MAJOR_VAR};
pub use postgres::{remove_template, KeyType, PgCluster, TlsOptions, SUPERUSER_PASSWORD};
pub use scanned::ScannedCount;

/// Calls `on_line` for every line of `pipe` on a background thread until EOF.
pub(crate) fn drain(pipe: impl Read + Send + 'static, mut on_line: impl FnMut(&str) + Send + 'static) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            on_line(&String::from_utf8_lossy(&line));
            line.clear();
        }
    });
}
