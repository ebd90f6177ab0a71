//! What is run in PostgreSQL, as data: the adapter executes these and decides nothing. Identifiers are always
//! quoted; values are bind parameters where PostgreSQL allows them, and quoted literals in the utility
//! statements (CREATE/ALTER ROLE) that take none.

use crate::grant::format_time;
use crate::naming::{quote_ident, quote_literal};
use chrono::{DateTime, Utc};

/// One statement and its text parameters (`$1`, `$2`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<String>,
}

impl Statement {
    pub(crate) fn new(sql: String) -> Self {
        Statement { sql, params: Vec::new() }
    }
    pub(crate) fn query(sql: &str, params: &[&str]) -> Self {
        Statement { sql: sql.to_string(), params: params.iter().map(|p| p.to_string()).collect() }
    }
}

/// Statements that each run in their own transaction, committed in order: a later failure cannot undo an
/// earlier step (login is off before anything else is tried).
pub type Plan = Vec<Vec<Statement>>;

/// A temporary user to create: everything in one transaction, so a failure leaves nothing behind.
pub struct TempUser<'a> {
    pub username: &'a str,
    /// None for `auth: iam`: no password at all (`PASSWORD NULL`), and membership of [`RDS_IAM_ROLE`], so RDS
    /// accepts only IAM authentication tokens for the user.
    pub scram_verifier: Option<&'a str>,
    pub valid_until: DateTime<Utc>,
    pub connection_limit: Option<i32>,
    pub roles: &'a [String],
    pub marker_role: &'a str,
    /// The target's extra statements; `{username}` becomes the quoted identifier.
    pub statements: &'a [String],
}

/// The role Aurora and RDS authenticate by IAM token instead of password.
pub const RDS_IAM_ROLE: &str = "rds_iam";

pub fn create_temp_user(user: &TempUser) -> Vec<Statement> {
    let name = quote_ident(user.username);
    let iam = user.scram_verifier.is_none().then_some(RDS_IAM_ROLE);
    let member_of: Vec<String> =
        user.roles.iter().map(String::as_str).chain([user.marker_role]).chain(iam).map(quote_ident).collect();
    // VALID UNTIL limits password logins only; an IAM user's backstop is the reaper dropping it.
    let mut sql = format!(
        "CREATE ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT \
         PASSWORD {} VALID UNTIL {}",
        user.scram_verifier.map_or("NULL".to_string(), quote_literal),
        quote_literal(&format_time(user.valid_until)),
    );
    if let Some(limit) = user.connection_limit {
        sql.push_str(&format!(" CONNECTION LIMIT {limit}"));
    }
    sql.push_str(&format!(" IN ROLE {}", member_of.join(", ")));
    let mut statements = vec![Statement::new(sql)];
    statements.extend(user.statements.iter().map(|s| Statement::new(s.replace("{username}", &name))));
    statements
}

/// Creates one of this system's own NOLOGIN roles (the marker, `retired`); the adapter treats "already exists"
/// (42710) as success.
pub fn create_own_role(role: &str) -> Statement {
    Statement::new(format!("CREATE ROLE {} NOLOGIN", quote_ident(role)))
}

/// The admin must be a member of `retired` to reassign objects to it (REASSIGN OWNED needs both roles).
/// Granting a membership the admin has already is a notice, not an error.
pub fn join_own_role(role: &str) -> Statement {
    Statement::new(format!("GRANT {} TO CURRENT_USER", quote_ident(role)))
}

/// A retried grant gets a fresh password: a new verifier replaces the old one.
pub fn set_password(username: &str, scram_verifier: &str) -> Statement {
    Statement::new(format!("ALTER ROLE {} PASSWORD {}", quote_ident(username), quote_literal(scram_verifier)))
}

/// PostgreSQL itself refuses password logins after this instant, even if the reaper is late.
pub fn set_valid_until(username: &str, valid_until: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "ALTER ROLE {} VALID UNTIL {}",
        quote_ident(username),
        quote_literal(&format_time(valid_until))
    ))
}

pub fn grant_roles(db_user: &str, roles: &[String]) -> Statement {
    Statement::new(format!("GRANT {} TO {}", ident_list(roles), quote_ident(db_user)))
}

/// Serialises every membership change for one user across concurrent Lambdas (held until commit), so a grant and
/// a revocation of overlapping roles cannot interleave their check and their change.
pub fn lock_user(db_user: &str) -> Statement {
    Statement::query("SELECT pg_advisory_xact_lock(hashtext('jit-access:' || $1::text))", &[db_user])
}

/// One row if the role exists.
pub fn role_exists(role: &str) -> Statement {
    Statement::query("SELECT rolname FROM pg_roles WHERE rolname = $1", &[role])
}

/// The roles `db_user` is directly a member of (column `rolname`).
pub fn memberships(db_user: &str) -> Statement {
    Statement::query(
        "SELECT r.rolname FROM pg_auth_members m \
         JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1",
        &[db_user],
    )
}

/// The members of the marker role: every temporary user this system made and has not dropped yet. On PostgreSQL
/// 16+ the role that created the marker (the admin) is a member too, with ADMIN OPTION (and, if
/// `createrole_self_grant` is set, a second, ordinary membership): an administrator of the marker, never a
/// temporary user, so neither it nor any member holding ADMIN OPTION is listed. Temporary users join with
/// `IN ROLE`, which gives no ADMIN OPTION.
pub fn marker_members(marker_role: &str) -> Statement {
    Statement::query(
        "SELECT u.rolname FROM pg_auth_members m \
         JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member \
         WHERE r.rolname = $1 AND u.rolname <> current_user \
         AND NOT EXISTS (SELECT 1 FROM pg_auth_members a WHERE a.roleid = m.roleid AND a.member = m.member \
                         AND a.admin_option)",
        &[marker_role],
    )
}

/// What revoking one temporary user needs to know about the database beforehand.
pub struct TempUserRevocation<'a> {
    pub username: &'a str,
    /// The role that receives its objects (`<prefix>retired`).
    pub retired_role: &'a str,
    /// Its memberships other than the marker: taken away with its login, so a view or function it owns grants
    /// nothing even while the rest of the revocation is failing.
    pub roles: &'a [String],
    /// Its SECURITY DEFINER functions and procedures, as PostgreSQL prints them (`regprocedure`, quoted): they are
    /// made SECURITY INVOKER before `retired` takes them over, so none runs as `retired`, which owns every former
    /// temporary user's objects.
    pub definer_routines: &'a [String],
    /// Schemas where the admin may grant CREATE and `retired` lacks it: PostgreSQL lets a function or type change
    /// owner only to a role with CREATE on its schema, so `retired` holds it for the length of the transaction.
    pub schemas: &'a [String],
}

/// Revoking a temporary user: login and memberships off (committed first, so no new session can start and its
/// objects lose their rights), live sessions terminated, owned objects reassigned to `retired` (never to the
/// admin: a SECURITY DEFINER function or a view the user left behind would then run with the admin's rights), its
/// privileges and default privileges dropped, then the role itself.
///
/// The plan's three steps are: disable, terminate (on the writer), clean up and drop. Between the second and
/// the third the adapter ends the user's sessions on every reader instance and cleans every other database of
/// the cluster with [`clean_database`]: the role can only be dropped once nothing anywhere depends on it.
pub fn revoke_temp_user(user: &TempUserRevocation) -> Plan {
    let name = quote_ident(user.username);
    let mut first = vec![Statement::new(format!("ALTER ROLE {name} NOLOGIN"))];
    if !user.roles.is_empty() {
        first.push(revoke_roles(user.username, user.roles));
    }
    let mut last = clean_database(&DatabaseCleanup {
        username: user.username,
        retired_role: user.retired_role,
        definer_routines: user.definer_routines,
        schemas: user.schemas,
    });
    last.push(Statement::new(format!("DROP ROLE IF EXISTS {name}")));
    vec![first, vec![terminate_sessions(user.username)], last]
}

/// What cleaning one database of a revoked temporary user needs to know about that database (the catalogs of
/// functions and schemas are per database).
pub struct DatabaseCleanup<'a> {
    pub username: &'a str,
    pub retired_role: &'a str,
    pub definer_routines: &'a [String],
    pub schemas: &'a [String],
}

/// One transaction in one database: the user's objects there reassigned to `retired`, its privileges and
/// default privileges there dropped. `REASSIGN OWNED` and `DROP OWNED` act on the current database only.
pub fn clean_database(cleanup: &DatabaseCleanup) -> Vec<Statement> {
    let name = quote_ident(cleanup.username);
    let retired = quote_ident(cleanup.retired_role);
    let mut statements = vec![
        // A non-superuser admin needs the role's privileges to reassign what it owns.
        Statement::new(format!("GRANT {name} TO CURRENT_USER")),
    ];
    for routine in cleanup.definer_routines {
        statements.push(Statement::new(format!("ALTER ROUTINE {routine} SECURITY INVOKER")));
    }
    let schemas = ident_list(cleanup.schemas);
    if !cleanup.schemas.is_empty() {
        // Two revocations lending CREATE on one schema at once would update its ACL concurrently (XX000).
        statements.push(Statement::new("SELECT pg_advisory_xact_lock(hashtext('jit-access:lend-schemas'))".into()));
        statements.push(Statement::new(format!("GRANT CREATE ON SCHEMA {schemas} TO {retired}")));
    }
    statements.push(Statement::new(format!("REASSIGN OWNED BY {name} TO {retired}")));
    if !cleanup.schemas.is_empty() {
        statements.push(Statement::new(format!("REVOKE CREATE ON SCHEMA {schemas} FROM {retired}")));
    }
    statements.push(Statement::new(format!("DROP OWNED BY {name}")));
    statements
}

/// The databases other than the current one (column `datname`) where `username` owns objects or holds
/// privileges: the places `DROP ROLE` would otherwise fail with 2BP01. Shared objects (databases themselves)
/// are recorded with database 0 and handled by `DROP OWNED` anywhere.
pub fn other_databases(username: &str) -> Statement {
    Statement::query(
        "SELECT DISTINCT d.datname::text FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid \
         WHERE s.refclassid = 'pg_authid'::regclass \
         AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1) \
         AND d.datname <> current_database() ORDER BY 1",
        &[username],
    )
}

/// A change committed on the writer that a reader instance replays with a lag.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A temporary user's login (and with it, in the same transaction, its memberships) is off, or it is gone.
    LoginDisabled { username: &'a str },
    /// The user is a member of none of `roles`.
    MembershipsRevoked { db_user: &'a str, roles: &'a [String] },
}

/// One row, one column: `true` once this instance shows `change`. Sessions on a reader are ended only then, so
/// a login in the gap is ended too, and none can start after.
pub fn shows(change: Change) -> Statement {
    match change {
        Change::LoginDisabled { username } => Statement::query(
            "SELECT (NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolcanlogin))::text",
            &[username],
        ),
        Change::MembershipsRevoked { db_user, roles } => Statement {
            sql: "SELECT (NOT EXISTS (SELECT 1 FROM pg_auth_members m \
                  JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member \
                  WHERE u.rolname = $1 AND r.rolname IN (SELECT json_array_elements_text($2::json))))::text"
                .to_string(),
            params: vec![db_user.to_string(), json_list(roles)],
        },
    }
}

/// The SECURITY DEFINER functions and procedures `username` owns, as `regprocedure` text (column 1).
pub fn definer_routines(username: &str) -> Statement {
    Statement::query(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner \
         WHERE r.rolname = $1 AND p.prosecdef ORDER BY 1",
        &[username],
    )
}

/// The schemas (column `nspname`) holding objects of `username` other than tables (functions, types, operators,
/// ...), where `retired_role` lacks CREATE and the admin may grant it. Tables change owner without that check.
pub fn schemas_to_lend(retired_role: &str, username: &str) -> Statement {
    Statement::query(
        "WITH u AS (SELECT oid FROM pg_roles WHERE rolname = $2), owned(nsp) AS ( \
           SELECT pronamespace FROM pg_proc, u WHERE proowner = u.oid \
           UNION SELECT typnamespace FROM pg_type, u WHERE typowner = u.oid AND typrelid = 0 \
           UNION SELECT oprnamespace FROM pg_operator, u WHERE oprowner = u.oid \
           UNION SELECT collnamespace FROM pg_collation, u WHERE collowner = u.oid \
           UNION SELECT connamespace FROM pg_conversion, u WHERE conowner = u.oid \
           UNION SELECT opcnamespace FROM pg_opclass, u WHERE opcowner = u.oid \
           UNION SELECT opfnamespace FROM pg_opfamily, u WHERE opfowner = u.oid \
           UNION SELECT dictnamespace FROM pg_ts_dict, u WHERE dictowner = u.oid \
           UNION SELECT cfgnamespace FROM pg_ts_config, u WHERE cfgowner = u.oid \
           UNION SELECT stxnamespace FROM pg_statistic_ext, u WHERE stxowner = u.oid) \
         SELECT n.nspname::text FROM pg_namespace n JOIN owned o ON o.nsp = n.oid \
         WHERE has_schema_privilege(current_user, n.oid, 'CREATE WITH GRANT OPTION') \
         AND NOT has_schema_privilege($1, n.oid, 'CREATE') ORDER BY 1",
        &[retired_role, username],
    )
}

/// One row of text columns `can_login, superuser, has_members, is_admin, is_temporary_user` (`true`/`false`) for
/// the user an escalation names; no row if it does not exist. `has_members` counts the memberships that pass the
/// user's rights on (see `CONVEYS_RIGHTS`): on PostgreSQL 16+ whoever created the user (on Aurora usually the
/// master user) is a member that only administers it, which must not make every such user a group.
pub fn user_facts(db_user: &str, marker_role: &str) -> Statement {
    Statement::query(
        &format!(
            "SELECT r.rolcanlogin::text, r.rolsuper::text, \
             EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.roleid = r.oid AND {CONVEYS_RIGHTS})::text, \
             (r.rolname = current_user)::text, \
             EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles k ON k.oid = m.roleid \
                     WHERE m.member = r.oid AND k.rolname = $2)::text \
             FROM pg_roles r WHERE r.rolname = $1"
        ),
        &[db_user, marker_role],
    )
}

/// A condition on the membership row `m`: it passes the role's rights on to the member (INHERIT or SET ROLE).
/// PostgreSQL 16+ records both per membership, and a role's creator holds one with neither (ADMIN OPTION only);
/// 14 and 15 lack the columns and every membership passes the rights on. Reading the row as JSON works on all of
/// them without asking the server's version.
const CONVEYS_RIGHTS: &str = "COALESCE((to_jsonb(m) ->> 'inherit_option')::bool \
    OR (to_jsonb(m) ->> 'set_option')::bool, true)";

/// Rows `(member, role)`: memberships in `roles` that the admin (the current user) granted, except those of
/// members of a marker role (temporary users are the orphan sweep's). For the reconciler. Both lists travel as
/// JSON arrays of names.
pub fn admin_granted_memberships(roles: &[String], marker_roles: &[String]) -> Statement {
    Statement {
        sql: "SELECT u.rolname, r.rolname FROM pg_auth_members m \
              JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member \
              WHERE m.grantor = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
              AND r.rolname IN (SELECT json_array_elements_text($1::json)) \
              AND NOT EXISTS (SELECT 1 FROM pg_auth_members k JOIN pg_roles mk ON mk.oid = k.roleid \
                              WHERE k.member = u.oid AND mk.rolname IN (SELECT json_array_elements_text($2::json)))"
            .to_string(),
        params: vec![json_list(roles), json_list(marker_roles)],
    }
}

fn json_list(names: &[String]) -> String {
    serde_json::to_string(names).unwrap_or_else(|_| "[]".to_string())
}

/// Takes memberships back. Run under `lock_user`, after checking which roles no other live grant provides.
pub fn revoke_roles(db_user: &str, roles: &[String]) -> Statement {
    Statement::new(format!("REVOKE {} FROM {}", ident_list(roles), quote_ident(db_user)))
}

/// Ends the user's live sessions: a session that ran `SET ROLE` keeps the role's rights after the membership is
/// gone, and a dropped user's open sessions would otherwise outlive it.
pub fn terminate_sessions(db_user: &str) -> Statement {
    Statement::query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
        &[db_user],
    )
}

fn ident_list(names: &[String]) -> String {
    names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_user_is_one_transaction_with_quoted_names() {
        let roles = vec!["read only".to_string()];
        let statements = vec!["ALTER ROLE {username} SET statement_timeout = '60s'".to_string()];
        let plan = create_temp_user(&TempUser {
            username: "jit_x\"y",
            scram_verifier: Some("SCRAM-SHA-256$4096:c2FsdA==$a:b"),
            valid_until: DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
            connection_limit: Some(5),
            roles: &roles,
            marker_role: "jit_managed",
            statements: &statements,
        });
        assert_eq!(plan.len(), 2);
        let create = &plan[0].sql;
        assert!(create.starts_with(r#"CREATE ROLE "jit_x""y" WITH LOGIN"#), "{create}");
        assert!(create.contains("VALID UNTIL '2026-11-18T11:06:40Z'"), "{create}");
        assert!(create.ends_with(r#"CONNECTION LIMIT 5 IN ROLE "read only", "jit_managed""#), "{create}");
        assert_eq!(plan[1].sql, r#"ALTER ROLE "jit_x""y" SET statement_timeout = '60s'"#);
    }

    #[test]
    fn iam_user_has_no_password_and_joins_rds_iam() {
        let roles = vec!["readonly".to_string()];
        let plan = create_temp_user(&TempUser {
            username: "jit_a",
            scram_verifier: None,
            valid_until: DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
            connection_limit: None,
            roles: &roles,
            marker_role: "jit_managed",
            statements: &[],
        });
        let create = &plan[0].sql;
        assert!(create.contains("PASSWORD NULL VALID UNTIL"), "{create}");
        assert!(create.ends_with(r#"IN ROLE "readonly", "jit_managed", "rds_iam""#), "{create}");
    }

    #[test]
    fn revocation_disables_login_before_anything_else() {
        let roles = ["readonly".to_string()];
        let schemas = ["public".to_string()];
        let plan = revoke_temp_user(&TempUserRevocation {
            username: "u",
            retired_role: "jit_retired",
            roles: &roles,
            definer_routines: &["public.evil()".to_string()],
            schemas: &schemas,
        });
        assert_eq!(plan[0][0].sql, r#"ALTER ROLE "u" NOLOGIN"#);
        assert_eq!(plan[0][1].sql, r#"REVOKE "readonly" FROM "u""#);
        let last: Vec<&str> = plan[2].iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(last[1], "ALTER ROUTINE public.evil() SECURITY INVOKER");
        assert_eq!(
            last[3..6],
            [
                r#"GRANT CREATE ON SCHEMA "public" TO "jit_retired""#,
                r#"REASSIGN OWNED BY "u" TO "jit_retired""#,
                r#"REVOKE CREATE ON SCHEMA "public" FROM "jit_retired""#
            ]
        );
        assert!(plan[2].iter().any(|s| s.sql == r#"REASSIGN OWNED BY "u" TO "jit_retired""#));
        assert!(!plan.iter().flatten().any(|s| s.sql.contains("TO CURRENT_USER") && s.sql.contains("REASSIGN")));
        assert_eq!(plan[1][0].params, ["u"]);
        assert_eq!(plan[2].last().unwrap().sql, r#"DROP ROLE IF EXISTS "u""#);
        assert_eq!(revoke_roles("alice", &["dba".into(), "x\"y".into()]).sql, r#"REVOKE "dba", "x""y" FROM "alice""#);
    }
}
