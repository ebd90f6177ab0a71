//! [`Engine`] on MySQL. DDL commits statement by statement, so safety comes from the order: a new account is
//! created locked and opened only after the grant's row says `active`; it is a member of the marker role from
//! its second statement on; and whatever a failed creation left is removed through the one revocation routine
//! (the write-ahead row names the user). Expiry is enforced by the database itself: a one-shot event locks the
//! account and ends its sessions at `expires_at`, whether or not the reaper runs.

use crate::config_source::ConfigSource;
use crate::engine::{check_user_and_roles, Engine, Prepared, Refused, TempUserSpec};
use crate::error::Fault;
use crate::mysql::{MysqlConnections, MysqlSession};
use crate::repo::GrantRepo;
use chrono::{DateTime, Utc};
use grant_model::escalation::{roles_ending, roles_to_revoke};
use grant_model::grant::now_seconds;
use grant_model::mysql::{self as sql, DefinedObject, Flavor, ObjectKind};
use grant_model::{naming, ClientError, ConfigError, DatabaseConfig, ErrorCode, Grant, SslMode};

/// ER_SP_ALREADY_EXISTS: another invocation created the expiry procedure first.
const ALREADY_EXISTS: u16 = 1304;
/// ER_CANNOT_USER: ALTER USER on an account that is gone.
const OPERATION_FAILED_FOR_USER: u16 = 1396;
/// ER_EVENT_DOES_NOT_EXIST.
const UNKNOWN_EVENT: u16 = 1539;
/// ER_NO_SUCH_THREAD: the session ended by itself meanwhile.
const UNKNOWN_THREAD: u16 = 1094;
/// Errors no retry will cure until an operator acts: syntax, missing privileges, unknown roles or objects.
const MISCONFIGURED: [u16; 10] = [1044, 1064, 1142, 1146, 1227, 1370, 1410, 1449, 1959, 3523];
/// Rounds of KILL: a session may have been mid-login when the account was locked.
const KILL_ROUNDS: usize = 5;

pub struct MysqlEngine<'a> {
    pub connections: &'a MysqlConnections,
    pub source: &'a ConfigSource,
    pub name: &'a str,
    pub db: &'a DatabaseConfig,
}

/// A created account, locked until the commit opens it.
struct Unlock {
    session: MysqlSession,
    username: String,
}

#[async_trait::async_trait]
impl Prepared for Unlock {
    async fn commit(mut self: Box<Self>) -> Result<(), Fault> {
        self.session.execute(&sql::unlock(&self.username)).await
    }
}

/// A change in effect already (MySQL DDL commits at once), or held only by a named lock released now.
struct Done {
    session: MysqlSession,
    release: Option<String>,
}

#[async_trait::async_trait]
impl Prepared for Done {
    async fn commit(mut self: Box<Self>) -> Result<(), Fault> {
        match self.release.take() {
            Some(user) => self.session.execute(&sql::release_user_lock(&user)).await,
            None => Ok(()),
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if self.release.is_some() {
            // Named locks live as long as the session: dropping it releases the lock.
            self.session.discard();
        }
    }
}

/// What a reader must show before the user's sessions there are ended: a session started in the replica's lag
/// would otherwise survive.
enum Shown<'a> {
    /// The account locked (or gone).
    LoginClosed,
    /// None of these memberships left.
    RolesGone(&'a [String]),
}

impl MysqlEngine<'_> {
    /// Ends `user`'s sessions on every reader instance (configured, or found by `cluster_identifier`), each once
    /// it shows the change made on the writer. A reader that is unreachable, or does not show it within
    /// `cluster::REPLAY_WAIT`, fails the revocation, which is retried.
    async fn end_sessions_on_readers(&self, user: &str, shown: Shown<'_>) -> Result<(), Fault> {
        for reader in self.source.readers(self.name, self.db).await? {
            let mut session = self.connections.session_at(self.name, self.db, &reader, self.source).await?;
            let deadline = tokio::time::Instant::now() + crate::cluster::REPLAY_WAIT;
            while !shows(&mut session, user, &shown).await? {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Fault::Mysql {
                        database: session.database().to_string(),
                        code: None,
                        message: format!(
                            "the reader did not show the revocation within {} s (replica lag); its sessions were \
                             not ended yet",
                            crate::cluster::REPLAY_WAIT.as_secs()
                        ),
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            self.end_sessions(&mut session, user).await?;
        }
        Ok(())
    }

    async fn session(&self) -> Result<MysqlSession, Fault> {
        self.connections.session(self.name, self.db, self.source).await
    }

    fn config_fault(&self, message: String) -> Fault {
        Fault::Config(ConfigError(format!("database {:?}: {message}", self.name)))
    }

    /// The marker role, the retired account, the expiry schema and its procedure, made if missing; and the
    /// event scheduler checked, before anything of the grant is made.
    async fn ensure_setup(&self, session: &mut MysqlSession, prefix: &str) -> Result<(), Fault> {
        let (marker, retired, schema) =
            (naming::marker_role(prefix), naming::retired_role(prefix), naming::expiry_schema(prefix));
        let facts = session.query_rows(&sql::setup_facts(&marker, &retired, &schema)).await?;
        let facts = facts.into_iter().next().unwrap_or_default();
        let scheduler = facts.first().map(String::as_str).unwrap_or_default();
        if !scheduler.eq_ignore_ascii_case("ON") {
            return Err(self.config_fault(format!(
                "event_scheduler is {scheduler}: MySQL enforces a temporary user's expiry with a one-shot event, \
                 which needs event_scheduler ON (set it in the DB cluster parameter group); nothing was created"
            )));
        }
        let present = |column: usize| facts.get(column).is_some_and(|v| v == "1");
        // IF NOT EXISTS all the same: another invocation may be making them at this moment.
        let missing = [
            (1, sql::create_marker(&marker)),
            (2, sql::create_retired(&retired)),
            (3, sql::create_expiry_schema(&schema)),
        ];
        for (_, statement) in missing.iter().filter(|(column, _)| !present(*column)) {
            session.execute(statement).await.map_err(misconfigured)?;
        }
        if !present(4) {
            match session.execute(&sql::create_expiry_procedure(&schema)).await {
                Err(fault) if fault.mysql_code() != Some(ALREADY_EXISTS) => return Err(misconfigured(fault)),
                _ => {}
            }
        }
        Ok(())
    }

    fn new_user<'u>(
        &self,
        user: &'u TempUserSpec<'_>,
        hash: &'u str,
        schema: &'u str,
        marker: &'u str,
    ) -> sql::NewUser<'u> {
        sql::NewUser {
            username: user.grant.db_user(),
            native_hash: hash,
            require_ssl: user.sslmode != SslMode::Disable,
            connection_limit: user.target.connection_limit,
            roles: user.grant.roles(),
            marker_role: marker,
            statements: &user.target.statements,
            expiry_schema: schema,
            expires_at: user.grant.expires_at(),
        }
    }

    /// Creates the locked account (see [`sql::create_temp_user`]).
    async fn create(&self, session: &mut MysqlSession, user: &TempUserSpec<'_>) -> Result<(), Fault> {
        self.ensure_setup(session, user.prefix).await?;
        let password =
            user.password.ok_or_else(|| self.config_fault("auth \"iam\" is not supported on MySQL".into()))?;
        let hash = password.mysql_native_hash();
        let (schema, marker) = (naming::expiry_schema(user.prefix), naming::marker_role(user.prefix));
        let plan = sql::create_temp_user(session.flavor(), &self.new_user(user, &hash, &schema, &marker));
        for statement in &plan {
            session.execute(statement).await.map_err(misconfigured)?;
        }
        Ok(())
    }

    /// Ends every session of `user` (locked or without the role already, so none can start again).
    async fn end_sessions(&self, session: &mut MysqlSession, user: &str) -> Result<(), Fault> {
        for _ in 0..KILL_ROUNDS {
            let ids = session.query_column(&sql::sessions(user)).await?;
            if ids.is_empty() {
                return Ok(());
            }
            for id in ids.iter().filter_map(|id| id.parse::<u64>().ok()) {
                match session.execute(&sql::kill(id)).await {
                    Err(fault) if fault.mysql_code() != Some(UNKNOWN_THREAD) => return Err(fault),
                    _ => {}
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let left = session.query_column(&sql::sessions(user)).await?;
        match left.is_empty() {
            true => Ok(()),
            false => Err(Fault::Mysql {
                database: self.name.to_string(),
                code: None,
                message: format!("{} session(s) of {user:?} survived {KILL_ROUNDS} rounds of KILL", left.len()),
            }),
        }
    }

    /// Gives every stored object whose definer is `user` the locked, privilege-less `retired` account as its
    /// definer (MySQL refuses to drop a user that is still a definer; MariaDB would leave it dangling).
    async fn rehome_objects(&self, session: &mut MysqlSession, user: &str, retired: &str) -> Result<(), Fault> {
        let flavor = session.flavor();
        for row in session.query_rows(&sql::definer_objects(user)).await? {
            let [kind, schema, name, comment] = row.as_slice() else { continue };
            let Some(kind) = ObjectKind::parse(kind) else { continue };
            let shown = session.query_rows(&sql::show_create(kind, schema, name)).await?;
            let (definition_at, mode_at) = kind.show_create_columns();
            let Some(shown) = shown.first() else { continue };
            let object = DefinedObject {
                kind,
                schema,
                name,
                definition: shown.get(definition_at).map(String::as_str).unwrap_or_default(),
                sql_mode: mode_at.and_then(|i| shown.get(i)).map(String::as_str),
                comment,
            };
            let statements = sql::rehome(flavor, &object, user, retired).ok_or_else(|| Fault::Mysql {
                database: self.name.to_string(),
                code: None,
                message: format!("cannot read the definer of {schema}.{name} to hand it to {retired:?}"),
            })?;
            if flavor == Flavor::Mysql && kind != ObjectKind::View && kind != ObjectKind::Event {
                // Dropped and created again: if this invocation dies in between, the definition is here.
                tracing::warn!(schema, name, definition = object.definition, "re-creating with definer {retired}");
            }
            if let Err(fault) = session.execute_all(&statements).await {
                session.discard(); // its default schema and sql_mode are the object's now
                return Err(fault);
            }
        }
        session
            .execute(&grant_model::sql::Statement {
                sql: format!("USE {}", sql::quote_ident(&self.db.dbname)),
                params: Vec::new(),
            })
            .await
    }
}

#[async_trait::async_trait]
impl Engine for MysqlEngine<'_> {
    fn failed_creation_leaves_nothing(&self) -> bool {
        false
    }

    async fn prepare_temp_user(&self, user: &TempUserSpec<'_>) -> Result<Box<dyn Prepared + '_>, Fault> {
        let mut session = self.session().await?;
        self.create(&mut session, user).await?;
        Ok(Box::new(Unlock { session, username: user.grant.db_user().to_string() }))
    }

    async fn renew_temp_user(&self, user: &TempUserSpec<'_>) -> Result<(), Fault> {
        let mut session = self.session().await?;
        let password =
            user.password.ok_or_else(|| self.config_fault("auth \"iam\" is not supported on MySQL".into()))?;
        match session.execute(&sql::set_password(user.grant.db_user(), &password.mysql_native_hash())).await {
            Err(fault) if fault.mysql_code() == Some(OPERATION_FAILED_FOR_USER) => {
                self.create(&mut session, user).await?;
                session.execute(&sql::unlock(user.grant.db_user())).await
            }
            other => other,
        }
    }

    async fn check_escalation(&self, store: &dyn GrantRepo, grant: &Grant, prefix: &str) -> Result<(), Refused> {
        let mut session = self.session().await?;
        check_escalation(&mut session, store, grant, prefix).await
    }

    async fn prepare_escalation(
        &self,
        store: &dyn GrantRepo,
        grant: &Grant,
        prefix: &str,
    ) -> Result<Box<dyn Prepared + '_>, Refused> {
        let mut session = self.session().await?;
        let user = grant.db_user();
        // Held until the commit: a revocation of the same user waits, and cannot interleave with the check.
        lock_user(&mut session, user).await?;
        let mut prepared = Done { session, release: Some(user.to_string()) };
        check_escalation(&mut prepared.session, store, grant, prefix).await?;
        let flavor = prepared.session.flavor();
        if let Err(fault) = prepared.session.execute_all(&sql::grant_roles(flavor, user, grant.roles())).await {
            // One GRANT per role on MariaDB: take back any that went through (none was held before: checked).
            let _ = prepared.session.execute_all(&sql::revoke_roles(flavor, user, grant.roles())).await;
            return Err(misconfigured(fault).into());
        }
        Ok(Box::new(prepared))
    }

    async fn prepare_extension(
        &self,
        grant: &Grant,
        prefix: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Box<dyn Prepared + '_>, Fault> {
        // Moved before the row: if the row's write then fails, the row's earlier expiry still ends the grant.
        let mut session = self.session().await?;
        let schema = naming::expiry_schema(prefix);
        let user = grant.db_user();
        match session.execute(&sql::move_expiry(&schema, user, expires_at)).await {
            Err(fault) if fault.mysql_code() == Some(UNKNOWN_EVENT) => {
                session.execute(&sql::create_expiry(&schema, user, expires_at)).await?
            }
            other => other?,
        }
        Ok(Box::new(Done { session, release: None }))
    }

    async fn drop_temp_user(&self, user: &str, prefix: &str) -> Result<bool, Fault> {
        let mut session = self.session().await?;
        if session.query_column(&sql::user_exists(user)).await?.is_empty() {
            return Ok(false);
        }
        let marker = naming::marker_role(prefix);
        let memberships = session.query_column(&sql::memberships(session.flavor(), user)).await?;
        if !memberships.contains(&marker) {
            // A creation that died after its first statement leaves a locked account with no grant at all:
            // dropping it takes nothing from anyone. Anything else outside the marker is not ours to drop.
            let grants = session.query_column(&sql::show_grants(user)).await?;
            if !memberships.is_empty() || grants.len() > 1 {
                return Err(Fault::Mysql {
                    database: self.name.to_string(),
                    code: None,
                    message: format!("refusing to drop user {user:?}: it is not a member of {marker:?}"),
                });
            }
        }
        session.execute(&sql::lock_account(user)).await?;
        session.execute(&sql::drop_expiry(&naming::expiry_schema(prefix), user)).await?;
        self.end_sessions(&mut session, user).await?;
        self.end_sessions_on_readers(user, Shown::LoginClosed).await?;
        let retired = naming::retired_role(prefix);
        session.execute(&sql::create_retired(&retired)).await?;
        self.rehome_objects(&mut session, user, &retired).await?;
        session.execute(&sql::drop_user(user)).await?;
        Ok(true)
    }

    async fn revoke_escalation(&self, store: &dyn GrantRepo, grant: &Grant) -> Result<(), Fault> {
        let mut session = self.session().await?;
        let user = grant.db_user();
        lock_user(&mut session, user).await?;
        let result = async {
            if session.query_column(&sql::user_exists(user)).await?.is_empty() {
                return Ok(Vec::new()); // the user is gone, and with it every membership
            }
            let others = store.live_grants_for_user(grant.database(), user).await?;
            let memberships = session.query_column(&sql::memberships(session.flavor(), user)).await?;
            let now = now_seconds();
            let roles = roles_to_revoke(grant, &others, &memberships, now);
            session.execute_all(&sql::revoke_roles(session.flavor(), user, &roles)).await?;
            Ok::<_, Fault>(roles_ending(grant, &others, now))
        }
        .await;
        session.query_column(&sql::release_user_lock(user)).await?;
        // Also when nothing was left to revoke: an earlier attempt may have revoked and then failed.
        let ending = result?;
        if ending.is_empty() {
            return Ok(());
        }
        self.end_sessions(&mut session, user).await?;
        self.end_sessions_on_readers(user, Shown::RolesGone(&ending)).await
    }

    async fn temp_users(&self, prefix: &str) -> Result<Vec<String>, Fault> {
        let mut session = self.session().await?;
        let statement = sql::marker_members(session.flavor(), &naming::marker_role(prefix));
        session.query_column(&statement).await
    }

    /// MySQL records no grantor for role memberships, so drift cannot be told from grants made by others
    /// (SPEC): the reconciler does not run here.
    async fn reconcile(
        &self,
        _store: &dyn GrantRepo,
        _roles: &[String],
        _markers: &[String],
        _live: &[Grant],
    ) -> Result<Vec<(String, String)>, Fault> {
        Ok(Vec::new())
    }
}

/// Takes `user`'s named lock (waiting 10 s at most): a grant and a revocation of the same user never
/// interleave. Not getting it is a passing fault: the caller retries.
async fn lock_user(session: &mut MysqlSession, user: &str) -> Result<(), Fault> {
    let got = session.query_column(&sql::lock_user(user)).await?;
    match got.first().map(String::as_str) {
        Some("1") => Ok(()),
        _ => Err(Fault::Mysql {
            database: session.database().to_string(),
            code: None,
            message: format!(
                "the lock on user {user:?} was not free within 10 s: another grant or revocation of it runs"
            ),
        }),
    }
}

/// Whether `session`'s instance shows the change.
async fn shows(session: &mut MysqlSession, user: &str, shown: &Shown<'_>) -> Result<bool, Fault> {
    let flavor = session.flavor();
    Ok(match shown {
        Shown::LoginClosed => {
            session.query_column(&sql::open_logins(flavor, user)).await?.first().is_some_and(|n| n == "0")
        }
        Shown::RolesGone(roles) => {
            let held = session.query_column(&sql::memberships(flavor, user)).await?;
            !held.iter().any(|role| roles.contains(role))
        }
    })
}

/// The user must exist (as `name`@'%'), be an ordinary account, and not hold a target role outside our grants.
async fn check_escalation(
    session: &mut MysqlSession,
    store: &dyn GrantRepo,
    grant: &Grant,
    prefix: &str,
) -> Result<(), Refused> {
    let flavor = session.flavor();
    let marker = naming::marker_role(prefix);
    let facts = session.query_rows(&sql::user_facts(flavor, grant.db_user(), &marker)).await?;
    let Some(facts) = facts.into_iter().next() else {
        return Err(ClientError::new(
            ErrorCode::UnknownDbUser,
            format!("database user {:?}@'%' does not exist in {:?}", grant.db_user(), grant.database()),
        )
        .into());
    };
    let memberships = session.query_column(&sql::memberships(flavor, grant.db_user())).await?;
    check_user_and_roles(store, grant, prefix, &facts, &memberships).await
}

/// Errors no retry cures are the configuration's (see [`MISCONFIGURED`]).
fn misconfigured(fault: Fault) -> Fault {
    match fault.mysql_code() {
        Some(code) if MISCONFIGURED.contains(&code) => Fault::Config(ConfigError(format!(
            "{fault} (check the target's roles and statements, and the admin's privileges)"
        ))),
        _ => fault,
    }
}
