//! The SQL that carries a grant out on MySQL (Aurora MySQL 3, MySQL 8.0 compatible), as data, like `sql` is for
//! PostgreSQL. Identifiers are backtick-quoted (an account is `` `name`@'%' ``), values are `?` parameters where
//! MySQL takes them; DDL cannot, and gets only names we quoted or values we formatted (a hash, a timestamp).
//!
//! MySQL DDL commits statement by statement: nothing here is all-or-nothing. A new account is therefore created
//! locked and unlocked last ([`unlock`]), after the grant's row says `active`; a crash before that leaves a locked
//! account that the write-ahead row (or the marker role) lets the reaper find and drop.
//!
//! Local tests run MariaDB 10.11 (no MySQL 8 server can be installed here). Every statement that differs lives
//! behind [`Flavor`], with both forms and a unit test each; `docs/mysql.md` lists them.

use crate::sql::Statement;
use chrono::{DateTime, Utc};

/// Which server speaks: Aurora MySQL / MySQL 8.0, or MariaDB (local tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Mysql,
    Mariadb,
}

impl Flavor {
    /// From `SELECT VERSION()`: MariaDB names itself there (`10.11.19-MariaDB-0+deb12u1`).
    pub fn from_version(version: &str) -> Flavor {
        match version.to_ascii_lowercase().contains("mariadb") {
            true => Flavor::Mariadb,
            false => Flavor::Mysql,
        }
    }
}

/// The procedure the expiry events call, in the expiry schema.
pub const EXPIRE_PROCEDURE: &str = "expire_account";

/// `name` as a MySQL identifier: in backticks, inner backticks doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The account `name`@'%': temporary users, and the users escalations are for, are accounts of any host.
pub fn account(name: &str) -> String {
    format!("{}@'%'", quote_ident(name))
}

/// A string literal, for the few places that take no parameter (DDL). Quotes doubled and backslashes escaped,
/// so it reads the same with or without `NO_BACKSLASH_ESCAPES` as far as where it ends is concerned.
pub fn quote_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// A UTC time as `ON SCHEDULE AT` reads it (the admin session's time zone is set to UTC).
fn at(time: DateTime<Utc>) -> String {
    quote_string(&time.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// One row, what a grant needs in place, read in one round trip: `@@event_scheduler` (ON, OFF or DISABLED), then
/// `1` or `0` for whether the marker role, the retired account, the expiry schema and its procedure exist.
pub fn setup_facts(marker_role: &str, retired: &str, expiry_schema: &str) -> Statement {
    Statement::query(
        "SELECT @@event_scheduler, \
         (SELECT COUNT(*) > 0 FROM mysql.user WHERE User = ?), \
         (SELECT COUNT(*) > 0 FROM mysql.user WHERE User = ? AND Host = '%'), \
         (SELECT COUNT(*) > 0 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?), \
         (SELECT COUNT(*) > 0 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ?)",
        &[marker_role, retired, expiry_schema, expiry_schema, EXPIRE_PROCEDURE],
    )
}

/// What every admin session starts with: times in UTC (events are scheduled in the session's zone), and no
/// statement or lock wait longer than the revocation's lease allows.
pub fn session_setup(flavor: Flavor) -> Vec<String> {
    let mut setup = vec!["SET time_zone = '+00:00'".to_string()];
    setup.push(match flavor {
        Flavor::Mysql => "SET SESSION max_execution_time = 20000, lock_wait_timeout = 10".into(),
        Flavor::Mariadb => "SET SESSION max_statement_time = 20, lock_wait_timeout = 10".into(),
    });
    setup
}

/// A temporary user to create.
pub struct NewUser<'a> {
    pub username: &'a str,
    /// [`crate::Password::mysql_native_hash`]: the server never sees the password.
    pub native_hash: &'a str,
    pub require_ssl: bool,
    pub connection_limit: Option<i32>,
    pub roles: &'a [String],
    pub marker_role: &'a str,
    pub statements: &'a [String],
    pub expiry_schema: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// The statements that create a temporary user, each committed by itself, the account locked throughout: the
/// user, its marker membership (first, so a crash after it leaves a user the orphan sweep recognises), the
/// target roles (made default, so a login has them), the expiry event, and the target's statements.
/// [`unlock`] opens it once the grant is recorded.
pub fn create_temp_user(flavor: Flavor, user: &NewUser) -> Vec<Statement> {
    let name = account(user.username);
    let mut create =
        format!("CREATE USER {name} IDENTIFIED WITH mysql_native_password AS {}", quote_string(user.native_hash));
    if user.require_ssl {
        create.push_str(" REQUIRE SSL");
    }
    if let Some(limit) = user.connection_limit {
        create.push_str(&format!(" WITH MAX_USER_CONNECTIONS {limit}"));
    }
    create.push_str(" ACCOUNT LOCK");
    let mut statements = vec![Statement::new(create)];
    statements.extend(grant_roles(flavor, user.username, &[user.marker_role.to_string()]));
    statements.extend(grant_roles(flavor, user.username, user.roles));
    statements.push(set_default_roles(flavor, user.username, user.roles));
    statements.push(drop_expiry(user.expiry_schema, user.username));
    statements.push(create_expiry(user.expiry_schema, user.username, user.expires_at));
    statements.extend(user.statements.iter().map(|s| Statement::new(s.replace("{username}", &name))));
    statements
}

/// Lets the new user log in: the last step of a creation, after the grant's row says `active`.
pub fn unlock(username: &str) -> Statement {
    Statement::new(format!("ALTER USER {} ACCOUNT UNLOCK", account(username)))
}

/// A fresh password for an existing temporary user (a retried grant), which also opens it if its creation
/// stopped before [`unlock`].
pub fn set_password(username: &str, native_hash: &str) -> Statement {
    Statement::new(format!(
        "ALTER USER {} IDENTIFIED WITH mysql_native_password AS {} ACCOUNT UNLOCK",
        account(username),
        quote_string(native_hash)
    ))
}

/// Memberships, one GRANT per role on MariaDB (it takes one role per statement), one for all on MySQL.
pub fn grant_roles(flavor: Flavor, db_user: &str, roles: &[String]) -> Vec<Statement> {
    per_flavor_list(flavor, roles, |list| format!("GRANT {list} TO {}", account(db_user)))
}

/// Takes memberships back, as [`grant_roles`] gives them.
pub fn revoke_roles(flavor: Flavor, db_user: &str, roles: &[String]) -> Vec<Statement> {
    per_flavor_list(flavor, roles, |list| format!("REVOKE {list} FROM {}", account(db_user)))
}

fn per_flavor_list(flavor: Flavor, roles: &[String], statement: impl Fn(&str) -> String) -> Vec<Statement> {
    let quoted: Vec<String> = roles.iter().map(|r| quote_ident(r)).collect();
    match flavor {
        Flavor::Mysql if quoted.is_empty() => Vec::new(),
        Flavor::Mysql => vec![Statement::new(statement(&quoted.join(", ")))],
        Flavor::Mariadb => quoted.iter().map(|role| Statement::new(statement(role))).collect(),
    }
}

/// The target roles active at login. MySQL takes a list (`TO`); MariaDB takes one role (`FOR`): the first, the
/// others need `SET ROLE` (docs/mysql.md).
pub fn set_default_roles(flavor: Flavor, db_user: &str, roles: &[String]) -> Statement {
    let quoted: Vec<String> = roles.iter().map(|r| quote_ident(r)).collect();
    Statement::new(match flavor {
        Flavor::Mysql => format!("SET DEFAULT ROLE {} TO {}", quoted.join(", "), account(db_user)),
        Flavor::Mariadb => {
            format!("SET DEFAULT ROLE {} FOR {}", quoted.first().map_or("NONE", String::as_str), account(db_user))
        }
    })
}

/// The schema holding the expiry events and their procedure. Only the admin has rights there.
pub fn create_expiry_schema(schema: &str) -> Statement {
    Statement::new(format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(schema)))
}

/// The procedure an expiry event calls: locks the account and ends its sessions. It runs as its definer (the
/// admin), which alone holds the rights to do so; the adapter treats "already exists" as success.
pub fn create_expiry_procedure(schema: &str) -> Statement {
    Statement::new(format!(
        "CREATE PROCEDURE {schema}.{procedure}(IN account_user VARCHAR(80)) \
         SQL SECURITY DEFINER \
         COMMENT 'jit-access: locks an expired temporary user and ends its sessions' \
         BEGIN \
           DECLARE done INT DEFAULT FALSE; \
           DECLARE session_id BIGINT UNSIGNED; \
           DECLARE sessions CURSOR FOR SELECT ID FROM information_schema.PROCESSLIST WHERE USER = account_user; \
           DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = TRUE; \
           SET @jit_lock = CONCAT('ALTER USER ', QUOTE(account_user), '@''%'' ACCOUNT LOCK'); \
           PREPARE lock_account FROM @jit_lock; \
           EXECUTE lock_account; \
           DEALLOCATE PREPARE lock_account; \
           OPEN sessions; \
           ending: LOOP \
             FETCH sessions INTO session_id; \
             IF done THEN LEAVE ending; END IF; \
             BEGIN \
               DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END; \
               KILL CONNECTION session_id; \
             END; \
           END LOOP; \
           CLOSE sessions; \
         END",
        schema = quote_ident(schema),
        procedure = quote_ident(EXPIRE_PROCEDURE),
    ))
}

fn expiry_event(schema: &str, username: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(&crate::naming::expiry_event(username)))
}

/// The one-shot event that locks the user at `expires_at`, whether or not the reaper runs.
pub fn create_expiry(schema: &str, username: &str, expires_at: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "CREATE EVENT {} ON SCHEDULE AT {} ON COMPLETION NOT PRESERVE \
         COMMENT 'jit-access: expiry of a temporary user' DO CALL {}.{}({})",
        expiry_event(schema, username),
        at(expires_at),
        quote_ident(schema),
        quote_ident(EXPIRE_PROCEDURE),
        quote_string(username),
    ))
}

/// Moves the expiry (an `extend`). Fails with 1539 (unknown event) if it is gone: then it is created again.
pub fn move_expiry(schema: &str, username: &str, expires_at: DateTime<Utc>) -> Statement {
    Statement::new(format!("ALTER EVENT {} ON SCHEDULE AT {}", expiry_event(schema, username), at(expires_at)))
}

pub fn drop_expiry(schema: &str, username: &str) -> Statement {
    Statement::new(format!("DROP EVENT IF EXISTS {}", expiry_event(schema, username)))
}

/// One row if the account `name`@'%' exists.
pub fn user_exists(name: &str) -> Statement {
    Statement::query("SELECT User FROM mysql.user WHERE User = ? AND Host = '%'", &[name])
}

/// One row: how many logins of `name`@'%' are still open (not locked) on the instance asked: 0 once a lock or
/// a drop made on the writer has reached a reader. MariaDB keeps the lock in `mysql.global_priv`'s JSON.
pub fn open_logins(flavor: Flavor, name: &str) -> Statement {
    Statement::query(
        match flavor {
            Flavor::Mysql => {
                "SELECT CAST(COUNT(*) AS CHAR) FROM mysql.user WHERE User = ? AND Host = '%' AND account_locked = 'N'"
            }
            Flavor::Mariadb => {
                "SELECT CAST(COUNT(*) AS CHAR) FROM mysql.global_priv WHERE User = ? AND Host = '%' \
                 AND COALESCE(JSON_EXTRACT(Priv, '$.account_locked'), 'false') <> 'true'"
            }
        },
        &[name],
    )
}

/// The roles `name`@'%' is a member of. MySQL keeps role edges in `mysql.role_edges`, MariaDB in
/// `mysql.roles_mapping`.
pub fn memberships(flavor: Flavor, name: &str) -> Statement {
    Statement::query(
        match flavor {
            Flavor::Mysql => "SELECT FROM_USER FROM mysql.role_edges WHERE TO_USER = ? AND TO_HOST = '%'",
            Flavor::Mariadb => "SELECT Role FROM mysql.roles_mapping WHERE User = ? AND Host = '%'",
        },
        &[name],
    )
}

/// The temporary users made under a marker role: its members, except the admin (MariaDB makes a role's creator
/// a member WITH ADMIN OPTION) and any member holding ADMIN OPTION.
pub fn marker_members(flavor: Flavor, marker_role: &str) -> Statement {
    Statement::query(
        match flavor {
            Flavor::Mysql => {
                "SELECT TO_USER FROM mysql.role_edges WHERE FROM_USER = ? AND FROM_HOST = '%' AND TO_HOST = '%' \
                 AND WITH_ADMIN_OPTION = 'N' AND TO_USER <> SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"
            }
            Flavor::Mariadb => {
                "SELECT User FROM mysql.roles_mapping WHERE Role = ? AND Host = '%' AND Admin_option = 'N' \
                 AND User <> SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"
            }
        },
        &[marker_role],
    )
}

/// One row `can_login, superuser, has_members, is_admin, is_temporary_user` (`true`/`false`) for the account an
/// escalation names; no row if it does not exist. The same shape as `sql::user_facts`.
pub fn user_facts(flavor: Flavor, db_user: &str, marker_role: &str) -> Statement {
    let flag = |condition: &str| format!("IF({condition}, 'true', 'false')");
    let (edges, member, role, admin_option) = match flavor {
        Flavor::Mysql => ("mysql.role_edges", "TO_USER", "FROM_USER", "WITH_ADMIN_OPTION"),
        Flavor::Mariadb => ("mysql.roles_mapping", "User", "Role", "Admin_option"),
    };
    let can_login = match flavor {
        Flavor::Mysql => "u.account_locked = 'N'",
        Flavor::Mariadb => "u.is_role = 'N' AND u.password_expired = 'N'",
    };
    Statement::query(
        &format!(
            "SELECT {}, {}, {}, {}, {} FROM mysql.user u WHERE u.User = ? AND u.Host = '%'",
            flag(can_login),
            flag("u.Super_priv = 'Y'"),
            flag(&format!("EXISTS (SELECT 1 FROM {edges} e WHERE e.{role} = u.User AND e.{admin_option} = 'N')")),
            flag("u.User = SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"),
            flag(&format!("EXISTS (SELECT 1 FROM {edges} e WHERE e.{member} = u.User AND e.{role} = ?)")),
        ),
        // In the order the placeholders appear: the marker (last flag) comes before the user (WHERE).
        &[marker_role, db_user],
    )
}

/// The account's grants as `SHOW GRANTS` lists them (one row: nothing but USAGE).
pub fn show_grants(name: &str) -> Statement {
    Statement::new(format!("SHOW GRANTS FOR {}", account(name)))
}

/// A named lock per user, held while an escalation's memberships are read and changed (released with
/// [`release_user_lock`], or when the session ends): MySQL has no transactional DDL to lean on. Lock names are
/// at most 64 characters.
pub fn lock_user(db_user: &str) -> Statement {
    Statement::query("SELECT GET_LOCK(?, 10)", &[&user_lock_name(db_user)])
}

pub fn release_user_lock(db_user: &str) -> Statement {
    Statement::query("SELECT RELEASE_LOCK(?)", &[&user_lock_name(db_user)])
}

fn user_lock_name(db_user: &str) -> String {
    format!("jit:{}", db_user.chars().take(60).collect::<String>())
}

pub fn lock_account(username: &str) -> Statement {
    Statement::new(format!("ALTER USER {} ACCOUNT LOCK", account(username)))
}

/// The ids of `name`'s sessions, other than this one.
pub fn sessions(name: &str) -> Statement {
    Statement::query(
        "SELECT CAST(ID AS CHAR) FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()",
        &[name],
    )
}

pub fn kill(session_id: u64) -> Statement {
    Statement::new(format!("KILL CONNECTION {session_id}"))
}

pub fn drop_user(username: &str) -> Statement {
    Statement::new(format!("DROP USER IF EXISTS {}", account(username)))
}

/// The account that receives revoked users' stored objects as their definer: locked, no password, no
/// privileges, so a view or SQL SECURITY DEFINER routine left behind runs with none.
pub fn create_retired(retired: &str) -> Statement {
    Statement::new(format!("CREATE USER IF NOT EXISTS {} ACCOUNT LOCK", account(retired)))
}

/// The marker role (a locked account on MySQL, a role on MariaDB).
pub fn create_marker(marker_role: &str) -> Statement {
    Statement::new(format!("CREATE ROLE IF NOT EXISTS {}", quote_ident(marker_role)))
}

/// The kinds of stored object that carry a DEFINER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Procedure,
    Function,
    View,
    Trigger,
    Event,
}

impl ObjectKind {
    pub fn parse(kind: &str) -> Option<ObjectKind> {
        Some(match kind {
            "PROCEDURE" => ObjectKind::Procedure,
            "FUNCTION" => ObjectKind::Function,
            "VIEW" => ObjectKind::View,
            "TRIGGER" => ObjectKind::Trigger,
            "EVENT" => ObjectKind::Event,
            _ => return None,
        })
    }

    fn keyword(self) -> &'static str {
        match self {
            ObjectKind::Procedure => "PROCEDURE",
            ObjectKind::Function => "FUNCTION",
            ObjectKind::View => "VIEW",
            ObjectKind::Trigger => "TRIGGER",
            ObjectKind::Event => "EVENT",
        }
    }

    /// The columns of `SHOW CREATE <kind>` holding the definition and (if any) its sql_mode.
    pub fn show_create_columns(self) -> (usize, Option<usize>) {
        match self {
            ObjectKind::Procedure | ObjectKind::Function | ObjectKind::Trigger => (2, Some(1)),
            ObjectKind::View => (1, None),
            ObjectKind::Event => (3, Some(1)),
        }
    }
}

/// Rows `kind, schema, name, comment` of the stored objects whose DEFINER is `name`@'%'.
pub fn definer_objects(name: &str) -> Statement {
    let definer = format!("{name}@%");
    Statement::query(
        "SELECT ROUTINE_TYPE, ROUTINE_SCHEMA, ROUTINE_NAME, '' FROM information_schema.ROUTINES WHERE DEFINER = ? \
         UNION ALL SELECT 'VIEW', TABLE_SCHEMA, TABLE_NAME, '' FROM information_schema.VIEWS WHERE DEFINER = ? \
         UNION ALL SELECT 'TRIGGER', TRIGGER_SCHEMA, TRIGGER_NAME, '' FROM information_schema.TRIGGERS \
                   WHERE DEFINER = ? \
         UNION ALL SELECT 'EVENT', EVENT_SCHEMA, EVENT_NAME, EVENT_COMMENT FROM information_schema.EVENTS \
                   WHERE DEFINER = ?",
        &[&definer, &definer, &definer, &definer],
    )
}

pub fn show_create(kind: ObjectKind, schema: &str, name: &str) -> Statement {
    Statement::new(format!("SHOW CREATE {} {}.{}", kind.keyword(), quote_ident(schema), quote_ident(name)))
}

/// An object of the user's, as `SHOW CREATE` gave it.
pub struct DefinedObject<'a> {
    pub kind: ObjectKind,
    pub schema: &'a str,
    pub name: &'a str,
    pub definition: &'a str,
    pub sql_mode: Option<&'a str>,
    pub comment: &'a str,
}

/// Gives `object` the definer `retired`@'%', in `object.schema` (definitions name their object unqualified).
/// Views everywhere, and routines and triggers on MariaDB, are replaced in one statement (`CREATE OR REPLACE`);
/// an event is altered. MySQL has no `CREATE OR REPLACE` for routines and triggers: those are dropped and
/// created again, two statements; the adapter logs the definition first. None if the definition does not name
/// the user as its definer as expected.
pub fn rehome(flavor: Flavor, object: &DefinedObject, user: &str, retired: &str) -> Option<Vec<Statement>> {
    let old = format!("DEFINER={}@`%`", quote_ident(user));
    let new = format!("DEFINER={}@`%`", quote_ident(retired));
    let qualified = format!("{}.{}", quote_ident(object.schema), quote_ident(object.name));
    let mut statements = vec![Statement::new(format!("USE {}", quote_ident(object.schema)))];
    if let Some(mode) = object.sql_mode {
        statements.push(Statement::query("SET SESSION sql_mode = ?", &[mode]));
    }
    let body = object.definition.strip_prefix("CREATE ")?;
    if !body.contains(&old) {
        return None;
    }
    let replaced = body.replacen(&old, &new, 1);
    match (object.kind, flavor) {
        (ObjectKind::Event, _) => statements
            .push(Statement::new(format!("ALTER {new} EVENT {qualified} COMMENT {}", quote_string(object.comment)))),
        (ObjectKind::View, _) | (_, Flavor::Mariadb) => {
            statements.push(Statement::new(format!("CREATE OR REPLACE {replaced}")))
        }
        (kind, Flavor::Mysql) => {
            statements.push(Statement::new(format!("DROP {} IF EXISTS {qualified}", kind.keyword())));
            statements.push(Statement::new(format!("CREATE {replaced}")));
        }
    }
    statements.push(Statement::new("SET SESSION sql_mode = DEFAULT".into()));
    Some(statements)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sql(statements: &[Statement]) -> Vec<&str> {
        statements.iter().map(|s| s.sql.as_str()).collect()
    }

    fn roles() -> Vec<String> {
        vec!["readonly".into(), "reporting".into()]
    }

    #[test]
    fn flavor_from_version() {
        assert_eq!(Flavor::from_version("10.11.19-MariaDB-0+deb12u1"), Flavor::Mariadb);
        assert_eq!(Flavor::from_version("8.0.39"), Flavor::Mysql);
        assert_eq!(Flavor::from_version("8.0.mysql_aurora.3.08.0"), Flavor::Mysql);
    }

    #[test]
    fn identifiers_and_strings_are_quoted() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(account("x` TO `root"), "`x`` TO ``root`@'%'");
        assert_eq!(quote_string("it's \\ ok"), "'it''s \\\\ ok'");
    }

    #[test]
    fn role_grants_differ_per_flavor() {
        assert_eq!(sql(&grant_roles(Flavor::Mysql, "u", &roles())), ["GRANT `readonly`, `reporting` TO `u`@'%'"]);
        assert_eq!(
            sql(&grant_roles(Flavor::Mariadb, "u", &roles())),
            ["GRANT `readonly` TO `u`@'%'", "GRANT `reporting` TO `u`@'%'"]
        );
        assert_eq!(sql(&revoke_roles(Flavor::Mysql, "u", &roles())), ["REVOKE `readonly`, `reporting` FROM `u`@'%'"]);
        assert_eq!(
            sql(&revoke_roles(Flavor::Mariadb, "u", &roles())),
            ["REVOKE `readonly` FROM `u`@'%'", "REVOKE `reporting` FROM `u`@'%'"]
        );
        assert!(grant_roles(Flavor::Mysql, "u", &[]).is_empty());
    }

    #[test]
    fn default_roles_differ_per_flavor() {
        assert_eq!(
            set_default_roles(Flavor::Mysql, "u", &roles()).sql,
            "SET DEFAULT ROLE `readonly`, `reporting` TO `u`@'%'"
        );
        assert_eq!(set_default_roles(Flavor::Mariadb, "u", &roles()).sql, "SET DEFAULT ROLE `readonly` FOR `u`@'%'");
    }

    #[test]
    fn role_edges_differ_per_flavor() {
        assert!(memberships(Flavor::Mysql, "u").sql.contains("mysql.role_edges"));
        assert!(memberships(Flavor::Mariadb, "u").sql.contains("mysql.roles_mapping"));
        assert!(marker_members(Flavor::Mysql, "m").sql.contains("WITH_ADMIN_OPTION = 'N'"));
        assert!(marker_members(Flavor::Mariadb, "m").sql.contains("Admin_option = 'N'"));
        assert!(user_facts(Flavor::Mysql, "u", "m").sql.contains("account_locked"));
        assert!(open_logins(Flavor::Mysql, "u").sql.contains("account_locked = 'N'"));
        assert!(open_logins(Flavor::Mariadb, "u").sql.contains("mysql.global_priv"));
        assert!(user_facts(Flavor::Mariadb, "u", "m").sql.contains("is_role"));
        assert_eq!(user_facts(Flavor::Mariadb, "u", "m").params, ["m", "u"]);
    }

    #[test]
    fn session_limits_differ_per_flavor() {
        assert!(session_setup(Flavor::Mysql)[1].contains("max_execution_time = 20000"));
        assert!(session_setup(Flavor::Mariadb)[1].contains("max_statement_time = 20"));
    }

    #[test]
    fn a_temp_user_is_created_locked_with_its_hash_and_expiry() {
        let expires_at = Utc.with_ymd_and_hms(2026, 12, 1, 15, 30, 0).unwrap();
        let statements = [String::from("GRANT SELECT ON shop.* TO {username}")];
        let user = NewUser {
            username: "jit_alice_abcd1234",
            native_hash: "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19",
            require_ssl: true,
            connection_limit: Some(3),
            roles: &roles(),
            marker_role: "jit_managed",
            statements: &statements,
            expiry_schema: "jit_expiry",
            expires_at,
        };
        let plan = create_temp_user(Flavor::Mariadb, &user);
        assert_eq!(
            sql(&plan),
            [
                "CREATE USER `jit_alice_abcd1234`@'%' IDENTIFIED WITH mysql_native_password AS \
                 '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19' REQUIRE SSL WITH MAX_USER_CONNECTIONS 3 ACCOUNT LOCK",
                "GRANT `jit_managed` TO `jit_alice_abcd1234`@'%'",
                "GRANT `readonly` TO `jit_alice_abcd1234`@'%'",
                "GRANT `reporting` TO `jit_alice_abcd1234`@'%'",
                "SET DEFAULT ROLE `readonly` FOR `jit_alice_abcd1234`@'%'",
                "DROP EVENT IF EXISTS `jit_expiry`.`expire_jit_alice_abcd1234`",
                "CREATE EVENT `jit_expiry`.`expire_jit_alice_abcd1234` ON SCHEDULE AT '2026-12-01 15:30:00' ON \
                 COMPLETION NOT PRESERVE COMMENT 'jit-access: expiry of a temporary user' DO CALL \
                 `jit_expiry`.`expire_account`('jit_alice_abcd1234')",
                "GRANT SELECT ON shop.* TO `jit_alice_abcd1234`@'%'",
            ]
        );
        let mysql = create_temp_user(Flavor::Mysql, &NewUser { require_ssl: false, connection_limit: None, ..user });
        assert!(mysql[0].sql.ends_with("AS '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19' ACCOUNT LOCK"));
        assert_eq!(mysql[2].sql, "GRANT `readonly`, `reporting` TO `jit_alice_abcd1234`@'%'");
        assert_eq!(unlock("jit_alice_abcd1234").sql, "ALTER USER `jit_alice_abcd1234`@'%' ACCOUNT UNLOCK");
    }

    #[test]
    fn stored_objects_are_rehomed_per_flavor() {
        let routine = DefinedObject {
            kind: ObjectKind::Procedure,
            schema: "shop",
            name: "p",
            definition: "CREATE DEFINER=`jit_u`@`%` PROCEDURE `p`()\nSQL SECURITY DEFINER\nSELECT 1",
            sql_mode: Some("STRICT_TRANS_TABLES"),
            comment: "",
        };
        let maria = rehome(Flavor::Mariadb, &routine, "jit_u", "jit_retired").unwrap();
        assert_eq!(
            sql(&maria),
            [
                "USE `shop`",
                "SET SESSION sql_mode = ?",
                "CREATE OR REPLACE DEFINER=`jit_retired`@`%` PROCEDURE `p`()\nSQL SECURITY DEFINER\nSELECT 1",
                "SET SESSION sql_mode = DEFAULT",
            ]
        );
        let mysql = rehome(Flavor::Mysql, &routine, "jit_u", "jit_retired").unwrap();
        assert_eq!(mysql[2].sql, "DROP PROCEDURE IF EXISTS `shop`.`p`");
        assert!(mysql[3].sql.starts_with("CREATE DEFINER=`jit_retired`@`%` PROCEDURE"));
        let view = DefinedObject {
            kind: ObjectKind::View,
            definition: "CREATE ALGORITHM=UNDEFINED DEFINER=`jit_u`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1",
            sql_mode: None,
            ..routine
        };
        for flavor in [Flavor::Mysql, Flavor::Mariadb] {
            let statements = rehome(flavor, &view, "jit_u", "jit_retired").unwrap();
            assert_eq!(
                statements[1].sql,
                "CREATE OR REPLACE ALGORITHM=UNDEFINED DEFINER=`jit_retired`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1"
            );
        }
        let event = DefinedObject { kind: ObjectKind::Event, comment: "nightly", ..view };
        assert_eq!(
            rehome(Flavor::Mysql, &event, "jit_u", "jit_retired").unwrap()[1].sql,
            "ALTER DEFINER=`jit_retired`@`%` EVENT `shop`.`p` COMMENT 'nightly'"
        );
        let foreign = DefinedObject { definition: "CREATE DEFINER=`other`@`%` VIEW `v` AS select 1", ..view };
        assert!(rehome(Flavor::Mysql, &foreign, "jit_u", "jit_retired").is_none());
    }

    #[test]
    fn expiry_is_scheduled_in_utc_and_moved() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 5, 7).unwrap();
        assert_eq!(
            move_expiry("jit_expiry", "jit_u", at).sql,
            "ALTER EVENT `jit_expiry`.`expire_jit_u` ON SCHEDULE AT '2026-12-01 09:05:07'"
        );
        assert!(create_expiry_procedure("jit_expiry").sql.contains("KILL CONNECTION session_id"));
    }
}
