//! `grant`: write the `pending` row first, create the access in one PostgreSQL transaction, then flip the row to
//! `active`. A crash between the steps leaves a `pending` row the reaper cleans up, never unrecorded access.

use crate::{note_grant, ActionError, App};
use grant_adapters::pg::{self, Session};
use grant_adapters::Fault;
use grant_model::config::{DatabaseConfig, TargetConfig};
use grant_model::escalation::check_grantable;
use grant_model::grant::{now_seconds, NewGrant, PROVISIONER};
use grant_model::request::GrantRequest;
use grant_model::response::{Credentials, GrantView, Response};
use grant_model::{naming, policy, sql, ClientError, Config, ErrorCode, Grant, Password, Status, Strategy};

/// Grant ids for requests with a `request_id` are derived from it, so a retry finds its grant by key.
const REQUEST_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a69_742d_6163_6365_7373_2d67_7261_6e74);
/// SQLSTATE duplicate_object: the marker role was created concurrently.
const DUPLICATE_OBJECT: &str = "42710";

pub async fn grant(app: &App, req: GrantRequest) -> Result<Response, ActionError> {
    let config = app.source.config().await?;
    let (db, target) = policy::lookup(&config, &req.database, &req.target)?;
    let duration = policy::grant_duration(target, req.duration_seconds)?;
    let db_user = escalation_user(&req, target)?;
    let grant_id = match &req.request_id {
        Some(request_id) => uuid::Uuid::new_v5(&REQUEST_ID_NAMESPACE, request_id.as_bytes()).to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    note_grant(&grant_id, &req.requester);
    if req.request_id.is_some() {
        if let Some(existing) = app.store.get(&grant_id).await? {
            return retried(app, &config, existing, &req, duration).await;
        }
    }
    let grant = Grant::new_pending(
        NewGrant {
            grant_id,
            request_id: req.request_id.clone(),
            requester: req.requester.clone(),
            approver: req.approver.clone(),
            reason: req.reason.clone(),
            database: req.database.clone(),
            target: req.target.clone(),
            strategy: target.strategy,
            db_user: db_user.unwrap_or_else(|| naming::temp_username(&config.user_prefix, &req.requester)),
            roles: target.roles.clone(),
            duration_seconds: duration,
            break_glass: false,
        },
        now_seconds(),
    );
    if grant.strategy == Strategy::RoleEscalation {
        // Refuse what we can before writing anything: bad input changes nothing, not even the table.
        let mut session = app.connections.session(&grant.database, db, &app.source).await?;
        check_escalation(app, &mut session, &grant).await?;
    }
    if !app.store.insert(&grant).await? {
        let existing = app.store.get(&grant.grant_id).await?.ok_or_else(|| busy(&grant.grant_id))?;
        return retried(app, &config, existing, &req, duration).await;
    }
    provision(app, &config, db, target, grant).await
}

/// For `role_escalation`, the existing user: `db_user`, or derived from the requester. None for `temp_user`.
fn escalation_user(req: &GrantRequest, target: &TargetConfig) -> Result<Option<String>, ClientError> {
    match target.strategy {
        Strategy::TempUser if req.db_user.is_some() => Err(ClientError::invalid_request(
            "db_user applies only to role_escalation targets; temp_user targets create their own user",
        )),
        Strategy::TempUser => Ok(None),
        Strategy::RoleEscalation => {
            let user = req.db_user.clone().unwrap_or_else(|| naming::escalation_db_user(&req.requester));
            naming::check_identifier(&user).map_err(|e| {
                ClientError::invalid_request(format!("database user derived from requester {e}; pass db_user"))
            })?;
            Ok(Some(user))
        }
    }
}

/// Creates the access for a `pending` grant and records the outcome: `active`, or `failed` with the reason.
async fn provision(
    app: &App,
    config: &Config,
    db: &DatabaseConfig,
    target: &TargetConfig,
    pending: Grant,
) -> Result<Response, ActionError> {
    let created = create_access(app, config, db, target, &pending).await;
    let mut recorded = pending.clone();
    match created {
        Ok(password) => {
            recorded.activate(now_seconds())?;
            if !app.store.replace(&pending, &recorded).await? {
                // Only a reaper cleaning up a stale pending row changes it meanwhile; the caller retries.
                return Err(busy(&pending.grant_id).into());
            }
            tracing::info!(db_user = %recorded.db_user, expires_at = %grant_model::grant::format_time(recorded.expires_at), "access granted");
            let credentials = password.map(|password| credentials(db, &recorded, password));
            Ok(Response::Success { grant: GrantView::of(&recorded), credentials })
        }
        Err(error) => {
            recorded.fail(now_seconds(), &error.to_string(), PROVISIONER, app.settings.retention)?;
            if let Err(fault) = app.store.replace(&pending, &recorded).await {
                // The pending row stays; the reaper turns it into `failed` after the grace period.
                tracing::error!(error = %fault, "could not record the failed grant");
            }
            tracing::warn!(error = %error, "grant failed; nothing was left in the database");
            Err(error)
        }
    }
}

/// The database side of a grant. Returns the new password for a temporary user.
async fn create_access(
    app: &App,
    config: &Config,
    db: &DatabaseConfig,
    target: &TargetConfig,
    grant: &Grant,
) -> Result<Option<Password>, ActionError> {
    let mut session = app.connections.session(&grant.database, db, &app.source).await?;
    match grant.strategy {
        Strategy::TempUser => {
            let marker = config.marker_role();
            ensure_marker_role(&mut session, &marker).await?;
            let password = Password::generate();
            let verifier = password.scram_verifier();
            let statements = sql::create_temp_user(&sql::TempUser {
                username: &grant.db_user,
                scram_verifier: &verifier,
                valid_until: grant.expires_at,
                connection_limit: target.connection_limit,
                roles: &grant.roles,
                marker_role: &marker,
                statements: &target.statements,
            });
            session.transaction(&statements).await?;
            Ok(Some(password))
        }
        Strategy::RoleEscalation => {
            let database = session.database().to_string();
            let fault = |e: tokio_postgres::Error| Fault::postgres(&database, &e);
            let tx = session.client().transaction().await.map_err(fault)?;
            // Under the user's lock the membership check and the GRANT cannot interleave with a revocation.
            pg::execute(&tx, &sql::lock_user(&grant.db_user)).await.map_err(fault)?;
            check_escalation_in(app, &tx, &database, grant).await?;
            pg::execute(&tx, &sql::grant_roles(&grant.db_user, &grant.roles)).await.map_err(fault)?;
            tx.commit().await.map_err(fault)?;
            Ok(None)
        }
    }
}

async fn check_escalation(app: &App, session: &mut Session, grant: &Grant) -> Result<(), ActionError> {
    let database = session.database().to_string();
    check_escalation_in(app, &*session.client(), &database, grant).await
}

/// The user must exist, and must not already hold a target role outside our grants.
async fn check_escalation_in(
    app: &App,
    client: &impl tokio_postgres::GenericClient,
    database: &str,
    grant: &Grant,
) -> Result<(), ActionError> {
    let fault = |e: tokio_postgres::Error| Fault::postgres(database, &e);
    if pg::query_column(client, &sql::role_exists(&grant.db_user)).await.map_err(fault)?.is_empty() {
        return Err(ClientError::new(
            ErrorCode::UnknownDbUser,
            format!("database user {:?} does not exist in {:?}", grant.db_user, grant.database),
        )
        .into());
    }
    let memberships = pg::query_column(client, &sql::memberships(&grant.db_user)).await.map_err(fault)?;
    let mut live = app.store.live_grants_for_user(&grant.database, &grant.db_user).await?;
    live.retain(|g| g.grant_id != grant.grant_id);
    check_grantable(&grant.db_user, &grant.roles, &memberships, &live)?;
    Ok(())
}

async fn ensure_marker_role(session: &mut Session, marker: &str) -> Result<(), Fault> {
    if !session.query_column(&sql::role_exists(marker)).await?.is_empty() {
        return Ok(());
    }
    match session.execute(&sql::create_marker_role(marker)).await {
        Err(fault) if fault.sqlstate() != Some(DUPLICATE_OBJECT) => Err(fault),
        _ => Ok(()),
    }
}

/// A request whose `request_id` was seen before: the same grant (with a fresh password), or `conflict`.
async fn retried(
    app: &App,
    config: &Config,
    existing: Grant,
    req: &GrantRequest,
    duration: u64,
) -> Result<Response, ActionError> {
    let same_request = existing.requester == req.requester
        && existing.database == req.database
        && existing.target == req.target
        && existing.reason == req.reason
        && existing.approver == req.approver
        && req.db_user.as_ref().is_none_or(|u| *u == existing.db_user)
        && existing.requested_duration_seconds() == Some(duration);
    if !same_request {
        return Err(ClientError::new(
            ErrorCode::Conflict,
            format!("request_id was already used for a different request (grant {})", existing.grant_id),
        )
        .into());
    }
    let (db, target) = policy::lookup(config, &existing.database, &existing.target)?;
    match existing.status {
        Status::Active if existing.is_expired(now_seconds()) => {
            Err(ClientError::invalid_state(format!("grant {} has expired; use a new request_id", existing.grant_id))
                .into())
        }
        Status::Active => {
            let credentials = match existing.strategy {
                Strategy::TempUser => {
                    let password = Password::generate();
                    let mut session = app.connections.session(&existing.database, db, &app.source).await?;
                    session.execute(&sql::set_password(&existing.db_user, &password.scram_verifier())).await?;
                    Some(credentials(db, &existing, password))
                }
                Strategy::RoleEscalation => None,
            };
            tracing::info!("retried grant answered with the existing access");
            Ok(Response::Success { grant: GrantView::of(&existing), credentials })
        }
        Status::Pending => Err(busy(&existing.grant_id).into()),
        Status::Failed => {
            // The first attempt hit a fault and the caller retried, as asked: provision again, same grant.
            let mut again = existing.clone();
            again.retry(now_seconds(), duration)?;
            if !app.store.replace(&existing, &again).await? {
                return Err(busy(&existing.grant_id).into());
            }
            provision(app, config, db, target, again).await
        }
        Status::Revoked => {
            Err(ClientError::invalid_state(format!("grant {} was revoked; use a new request_id", existing.grant_id))
                .into())
        }
    }
}

fn credentials(db: &DatabaseConfig, grant: &Grant, password: Password) -> Credentials {
    Credentials {
        host: db.host.clone(),
        port: db.port,
        dbname: db.dbname.clone(),
        username: grant.db_user.clone(),
        password,
        sslmode: db.sslmode,
    }
}

fn busy(grant_id: &str) -> Fault {
    Fault::Busy(format!("grant {grant_id} is being provisioned by another invocation; retry shortly"))
}
