//! [`Engine`] on PostgreSQL: a grant's access is created in one transaction that commits after the row says
//! `active`; revoking ends sessions on every instance and cleans every database of the cluster (`cluster`).

use crate::cluster::{self, Cluster};
use crate::engine::{check_user_and_roles, Engine, Prepared, Refused, TempUserSpec};
use crate::error::Fault;
use crate::pg::{self, Session};
use crate::repo::GrantRepo;
use chrono::{DateTime, Utc};
use grant_model::escalation::{roles_ending, roles_to_revoke};
use grant_model::grant::now_seconds;
use grant_model::sql::{self, Change, Statement};
use grant_model::{naming, ClientError, ConfigError, ErrorCode, Grant, Password};

/// SQLSTATE duplicate_object: one of our own roles was created concurrently.
const DUPLICATE_OBJECT: &str = "42710";
/// SQLSTATE undefined_object: a retried grant's user is gone.
const UNDEFINED_OBJECT: &str = "42704";

pub struct PgEngine<'a> {
    pub cluster: Cluster<'a>,
}

/// An open transaction on the admin session. Dropped without a commit, the connection is discarded, and the
/// server rolls the transaction back.
struct PgPrepared {
    session: Option<Session>,
}

#[async_trait::async_trait]
impl Prepared for PgPrepared {
    async fn commit(mut self: Box<Self>) -> Result<(), Fault> {
        let mut session = self.session.take().expect("committed once");
        session.execute(&Statement { sql: "COMMIT".into(), params: Vec::new() }).await
    }
}

impl Drop for PgPrepared {
    fn drop(&mut self) {
        if let Some(session) = self.session.as_mut() {
            session.discard();
        }
    }
}

impl PgEngine<'_> {
    /// The admin session in a transaction: statements then run in it until the commit.
    async fn begin(&self) -> Result<Session, Fault> {
        let mut session = self.cluster.writer().await?;
        session.execute(&Statement { sql: "BEGIN".into(), params: Vec::new() }).await?;
        Ok(session)
    }
}

#[async_trait::async_trait]
impl Engine for PgEngine<'_> {
    fn failed_creation_leaves_nothing(&self) -> bool {
        true
    }

    async fn prepare_temp_user(&self, user: &TempUserSpec<'_>) -> Result<Box<dyn Prepared + '_>, Fault> {
        let mut session = self.cluster.writer().await?;
        ensure_own_role(&mut session, &naming::marker_role(user.prefix), Join::Nobody).await?;
        ensure_own_role(&mut session, &naming::retired_role(user.prefix), Join::Admin).await?;
        drop(session);
        let mut prepared = PgPrepared { session: Some(self.begin().await?) };
        let session = prepared.session.as_mut().expect("just begun");
        for statement in temp_user_statements(user) {
            session.execute(&statement).await.map_err(misconfigured)?;
        }
        Ok(Box::new(prepared))
    }

    async fn renew_temp_user(&self, user: &TempUserSpec<'_>) -> Result<(), Fault> {
        let mut session = self.cluster.writer().await?;
        let name = user.grant.db_user();
        let missing = match user.password {
            Some(password) => match session.execute(&sql::set_password(name, &password.scram_verifier())).await {
                Err(fault) if fault.sqlstate() == Some(UNDEFINED_OBJECT) => true,
                other => other.map(|()| false)?,
            },
            None => session.query_column(&sql::role_exists(name)).await?.is_empty(),
        };
        if missing {
            ensure_own_role(&mut session, &naming::marker_role(user.prefix), Join::Nobody).await?;
            session.transaction(&temp_user_statements(user)).await?;
        }
        Ok(())
    }

    async fn check_escalation(&self, store: &dyn GrantRepo, grant: &Grant, prefix: &str) -> Result<(), Refused> {
        let mut session = self.cluster.writer().await?;
        check_escalation(&mut session, store, grant, prefix).await
    }

    async fn prepare_escalation(
        &self,
        store: &dyn GrantRepo,
        grant: &Grant,
        prefix: &str,
    ) -> Result<Box<dyn Prepared + '_>, Refused> {
        let mut prepared = PgPrepared { session: Some(self.begin().await?) };
        let session = prepared.session.as_mut().expect("just begun");
        // Under the user's lock the membership check and the GRANT cannot interleave with a revocation.
        session.execute(&sql::lock_user(grant.db_user())).await?;
        check_escalation(session, store, grant, prefix).await?;
        session.execute(&sql::grant_roles(grant.db_user(), grant.roles())).await.map_err(misconfigured)?;
        Ok(Box::new(prepared))
    }

    async fn prepare_extension(
        &self,
        grant: &Grant,
        _prefix: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Box<dyn Prepared + '_>, Fault> {
        let mut prepared = PgPrepared { session: Some(self.begin().await?) };
        let session = prepared.session.as_mut().expect("just begun");
        session.execute(&sql::set_valid_until(grant.db_user(), expires_at)).await?;
        Ok(Box::new(prepared))
    }

    async fn drop_temp_user(&self, user: &str, prefix: &str) -> Result<bool, Fault> {
        let mut session = self.cluster.writer().await?;
        drop_temp_user(&self.cluster, &mut session, user, prefix).await
    }

    async fn revoke_escalation(&self, store: &dyn GrantRepo, grant: &Grant) -> Result<(), Fault> {
        let mut session = self.cluster.writer().await?;
        revoke_escalation(&self.cluster, &mut session, store, grant).await
    }

    async fn temp_users(&self, prefix: &str) -> Result<Vec<String>, Fault> {
        let mut session = self.cluster.writer().await?;
        session.query_column(&sql::marker_members(&naming::marker_role(prefix))).await
    }

    async fn reconcile(
        &self,
        store: &dyn GrantRepo,
        roles: &[String],
        markers: &[String],
        live: &[Grant],
    ) -> Result<Vec<(String, String)>, Fault> {
        let database = self.cluster.name;
        let mut session = self.cluster.writer().await?;
        let edges = session.query_pairs(&sql::admin_granted_memberships(roles, markers)).await?;
        let mut by_user: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        // What the pass's read of the live grants accounts for needs no second look; the rest is checked again
        // under the user's lock, against strongly consistent reads.
        let accounted = |user: &str, role: &str| {
            live.iter().any(|g| g.database() == database && g.db_user() == user && g.accounts_for(role))
        };
        for (user, role) in edges.into_iter().filter(|(user, role)| !accounted(user, role)) {
            by_user.entry(user).or_default().push(role);
        }
        let mut revoked = Vec::new();
        for (user, held) in by_user {
            let drift = revoke_unaccounted(store, &self.cluster, &mut session, &user, &held).await?;
            revoked.extend(drift.into_iter().map(|role| (user.clone(), role)));
        }
        Ok(revoked)
    }
}

/// A temporary user's statements: the role (login until `expires_at`, member of the target roles and the
/// marker; without a password, `rds_iam`) and the target's own statements.
fn temp_user_statements(user: &TempUserSpec) -> Vec<Statement> {
    let marker = naming::marker_role(user.prefix);
    let verifier = user.password.map(Password::scram_verifier);
    sql::create_temp_user(&sql::TempUser {
        username: user.grant.db_user(),
        scram_verifier: verifier.as_deref(),
        valid_until: user.grant.expires_at(),
        connection_limit: user.target.connection_limit,
        roles: user.grant.roles(),
        marker_role: &marker,
        statements: &user.target.statements,
    })
}

/// SQLSTATE class 42 (syntax error or access rule violation) while creating access is the configuration's
/// fault (a target role that does not exist, a bad statement, an admin without ADMIN OPTION), not a passing
/// one: retrying changes nothing until an operator acts.
fn misconfigured(fault: Fault) -> Fault {
    match fault.sqlstate() {
        Some(code) if code.starts_with("42") => Fault::Config(ConfigError(format!(
            "{fault} (check the target's roles and statements, and the admin's privileges)"
        ))),
        _ => fault,
    }
}

/// The user must be an ordinary login role, exist, and not already hold a target role outside our grants.
async fn check_escalation(
    session: &mut Session,
    store: &dyn GrantRepo,
    grant: &Grant,
    prefix: &str,
) -> Result<(), Refused> {
    let marker = naming::marker_role(prefix);
    let facts = session.query_rows(&sql::user_facts(grant.db_user(), &marker)).await?;
    let Some(facts) = facts.into_iter().next() else {
        return Err(ClientError::new(
            ErrorCode::UnknownDbUser,
            format!("database user {:?} does not exist in {:?}", grant.db_user(), grant.database()),
        )
        .into());
    };
    let memberships = session.query_column(&sql::memberships(grant.db_user())).await?;
    check_user_and_roles(store, grant, prefix, &facts, &memberships).await
}

/// Under the user's lock, takes back the roles the user holds that no other grant provides (read strongly
/// consistently under the lock), then ends the user's sessions on every instance: one that ran `SET ROLE`
/// keeps the role's rights until it ends.
async fn revoke_escalation(
    cluster: &Cluster<'_>,
    session: &mut Session,
    store: &dyn GrantRepo,
    grant: &Grant,
) -> Result<(), Fault> {
    let database = session.database().to_string();
    let fault = |e: tokio_postgres::Error| Fault::postgres(&database, &e);
    let tx = session.client().transaction().await.map_err(fault)?;
    pg::execute(&tx, &sql::lock_user(grant.db_user())).await.map_err(fault)?;
    if pg::query_column(&tx, &sql::role_exists(grant.db_user())).await.map_err(fault)?.is_empty() {
        return Ok(()); // the user is gone, and with it every membership
    }
    let others = store.live_grants_for_user(grant.database(), grant.db_user()).await?;
    let memberships = pg::query_column(&tx, &sql::memberships(grant.db_user())).await.map_err(fault)?;
    let now = now_seconds();
    let roles = roles_to_revoke(grant, &others, &memberships, now);
    if !roles.is_empty() {
        pg::execute(&tx, &sql::revoke_roles(grant.db_user(), &roles)).await.map_err(fault)?;
    }
    tx.commit().await.map_err(fault)?;
    // Also when nothing was left to revoke: an earlier attempt may have revoked and then failed on a reader.
    let ending = roles_ending(grant, &others, now);
    end_sessions(cluster, session, grant.db_user(), &ending).await
}

/// Revokes memberships that no grant accounts for (the reconciler): under the user's lock, re-checked against
/// the live grants read strongly consistently; then ends the user's sessions. Returns the roles revoked.
async fn revoke_unaccounted(
    store: &dyn GrantRepo,
    cluster: &Cluster<'_>,
    session: &mut Session,
    db_user: &str,
    roles: &[String],
) -> Result<Vec<String>, Fault> {
    let name = session.database().to_string();
    let fault = |e: tokio_postgres::Error| Fault::postgres(&name, &e);
    let tx = session.client().transaction().await.map_err(fault)?;
    pg::execute(&tx, &sql::lock_user(db_user)).await.map_err(fault)?;
    let live = store.live_grants_for_user(cluster.name, db_user).await?;
    let memberships = pg::query_column(&tx, &sql::memberships(db_user)).await.map_err(fault)?;
    let drift: Vec<String> = roles
        .iter()
        .filter(|role| memberships.contains(role) && !live.iter().any(|g| g.accounts_for(role)))
        .cloned()
        .collect();
    if !drift.is_empty() {
        pg::execute(&tx, &sql::revoke_roles(db_user, &drift)).await.map_err(fault)?;
    }
    tx.commit().await.map_err(fault)?;
    end_sessions(cluster, session, db_user, &drift).await?;
    Ok(drift)
}

/// Ends `db_user`'s sessions on the writer and every reader (each once it no longer shows a membership in
/// `roles`), if `roles` took any rights away.
async fn end_sessions(
    cluster: &Cluster<'_>,
    writer: &mut Session,
    db_user: &str,
    roles: &[String],
) -> Result<(), Fault> {
    if roles.is_empty() {
        return Ok(());
    }
    writer.execute(&sql::terminate_sessions(db_user)).await?;
    cluster.end_sessions_on_readers(db_user, Change::MembershipsRevoked { db_user, roles }).await
}

/// Drops a temporary user, after checking it is one of ours (a member of the marker role of the prefix it was
/// made under): a role outside it is never dropped, whatever the table says. False if there was nothing to drop.
///
/// In order: login and memberships off (committed), sessions ended on the writer, then on every reader once it
/// shows that, the user cleaned out of every other database of the cluster, and last the configured database
/// cleaned and the role dropped. Each step is idempotent, so an attempt that fails anywhere is simply repeated.
async fn drop_temp_user(
    cluster: &Cluster<'_>,
    session: &mut Session,
    username: &str,
    prefix: &str,
) -> Result<bool, Fault> {
    let marker = naming::marker_role(prefix);
    let memberships = match session.query_column(&sql::role_exists(username)).await?.is_empty() {
        true => return Ok(false),
        false => session.query_column(&sql::memberships(username)).await?,
    };
    if !memberships.contains(&marker) {
        return Err(Fault::Postgres {
            database: session.database().to_string(),
            code: None,
            message: format!("refusing to drop role {username:?}: it is not a member of {marker:?}"),
        });
    }
    let retired = naming::retired_role(prefix);
    ensure_own_role(session, &retired, Join::Admin).await?;
    let (schemas, definer_routines) = cluster::cleanup_facts(session, username, &retired).await?;
    let roles: Vec<String> = memberships.into_iter().filter(|m| *m != marker).collect();
    let plan = sql::revoke_temp_user(&sql::TempUserRevocation {
        username,
        retired_role: &retired,
        roles: &roles,
        definer_routines: &definer_routines,
        schemas: &schemas,
    });
    // Disable and terminate on the writer; the last step cleans the configured database and drops the role.
    let (on_writer, clean_and_drop) = plan.split_at(2);
    session.run_plan(on_writer).await?;
    cluster.end_sessions_on_readers(username, Change::LoginDisabled { username }).await?;
    cluster.clean_other_databases(session, username, &retired).await?;
    session.run_plan(clean_and_drop).await?;
    Ok(true)
}

/// Whether the admin joins a role of ours it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// `retired`: REASSIGN OWNED to it needs the admin's membership.
    Admin,
    /// The marker: its members are taken for temporary users, so the admin must never be one.
    Nobody,
}

/// Creates one of this system's NOLOGIN roles (the marker, `retired`) if it is missing.
async fn ensure_own_role(session: &mut Session, role: &str, join: Join) -> Result<(), Fault> {
    if !session.query_column(&sql::role_exists(role)).await?.is_empty() {
        return Ok(());
    }
    match session.execute(&sql::create_own_role(role)).await {
        Err(fault) if fault.sqlstate() != Some(DUPLICATE_OBJECT) => return Err(fault),
        _ => {}
    }
    match join {
        Join::Admin => session.execute(&sql::join_own_role(role)).await,
        Join::Nobody => Ok(()),
    }
}
