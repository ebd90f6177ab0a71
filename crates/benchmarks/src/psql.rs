//! The SQL floor of revocation: for each user, exactly the statements the Revoker runs (grant-model's checks and
//! revocation plan), rendered with literals in place of bind parameters, run by `psql` in one session over the
//! simple query protocol. A plan step of one statement runs in autocommit, which is the same transaction.

use anyhow::{bail, Context, Result};
use grant_model::naming::{self, quote_literal};
use grant_model::sql::{self, Statement};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::fixture::{ADMIN_PASSWORD, ADMIN_USER, DB};
use test_support::PgCluster;

/// The script revoking `users`, in the order and with the transactions the Revoker uses.
pub fn revocation_script(users: &[&str]) -> String {
    let mut script = String::from("\\set ON_ERROR_STOP on\n");
    for user in users {
        // drop_temp_user's checks: the role exists, is one of ours, and `retired` is there to receive its objects.
        let retired = naming::retired_role("jit_");
        let checks = [
            sql::role_exists(user),
            sql::memberships(user),
            sql::role_exists(&retired),
            sql::schemas_to_lend(&retired, user),
            sql::definer_routines(user),
        ];
        for check in checks {
            script.push_str(&format!("{};\n", render(&check)));
        }
        let roles = ["readonly".to_string()];
        // The benchmark's users own no functions: nothing to lend, as the Revoker finds.
        let plan = sql::revoke_temp_user(&sql::TempUserRevocation {
            username: user,
            retired_role: &retired,
            roles: &roles,
            definer_routines: &[],
            schemas: &[],
        });
        for (n, step) in plan.iter().enumerate() {
            if n == 2 {
                // Before the last step the Revoker looks for other databases to clean (the benchmark's users have
                // none) and ends sessions on readers (`reader_script`).
                script.push_str(&format!("{};\n", render(&sql::other_databases(user))));
            }
            let statements: Vec<String> = step.iter().map(|s| format!("{};\n", render(s))).collect();
            match statements.as_slice() {
                [one] => script.push_str(one),
                _ => script.push_str(&format!("BEGIN;\n{}COMMIT;\n", statements.concat())),
            }
        }
    }
    script
}

/// What the Revoker runs on a reader instance for each of `users`: the check that the reader shows the login off,
/// then the sessions ended.
pub fn reader_script(users: &[&str]) -> String {
    let mut script = String::from("\\set ON_ERROR_STOP on\n");
    for username in users {
        script.push_str(&format!("{};\n", render(&sql::shows(sql::Change::LoginDisabled { username }))));
        script.push_str(&format!("{};\n", render(&sql::terminate_sessions(username))));
    }
    script
}

/// The statement with `$n` replaced by its parameter as a quoted literal (highest first, so `$1` never eats
/// the start of `$10`).
fn render(statement: &Statement) -> String {
    let mut sql = statement.sql.clone();
    for (n, param) in statement.params.iter().enumerate().rev() {
        sql = sql.replace(&format!("${}", n + 1), &quote_literal(param));
    }
    sql
}

/// `psql` of the newest installed PostgreSQL, not Debian's wrapper script (its Perl start-up would slow the floor).
pub fn find(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .context("read /usr/lib/postgresql (run scripts/setup.sh, or pass --psql)")?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin/psql"))))
        .filter(|(_, path)| path.exists())
        .max_by_key(|(version, _)| *version);
    newest.map(|(_, path)| path).context("no psql under /usr/lib/postgresql/*/bin (pass --psql)")
}

/// Runs `script` as the admin user the Lambdas use, in one session; returns the wall time, connection included.
pub fn run(psql: &Path, pg: &PgCluster, script: &Path) -> Result<Duration> {
    let started = Instant::now();
    let output = Command::new(psql)
        .args(["-X", "-q", "-h", pg.host(), "-p", &pg.port().to_string(), "-U", ADMIN_USER, "-d", DB, "-f"])
        .arg(script)
        .env("PGPASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("run {}", psql.display()))?;
    let took = started.elapsed();
    if !output.status.success() {
        bail!("psql failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_the_revokers_statements_with_literals() {
        let script = revocation_script(&["jit_a\"b"]);
        assert!(script.contains("SELECT rolname FROM pg_roles WHERE rolname = 'jit_a\"b';"), "{script}");
        assert!(script.contains("ALTER ROLE \"jit_a\"\"b\" NOLOGIN;"), "{script}");
        assert!(script.contains("WHERE usename = 'jit_a\"b' AND pid <> pg_backend_pid();"), "{script}");
        assert!(script.contains("BEGIN;\nGRANT \"jit_a\"\"b\" TO CURRENT_USER;\n"), "{script}");
        assert!(script.ends_with("DROP ROLE IF EXISTS \"jit_a\"\"b\";\nCOMMIT;\n"), "{script}");
    }
}
