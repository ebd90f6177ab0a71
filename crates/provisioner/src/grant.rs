//! `grant`: write the `pending` row first (with this invocation's provisioning lease), have the engine prepare the
//! access (PostgreSQL: in one open transaction; MySQL: a locked account), and record `active` before it takes
//! effect. Access therefore never exists without a row that accounts for it: a crash before the commit leaves
//! nothing usable (on MySQL, a locked user the pending row names, which the reaper drops), and one after leaves
//! an `active` row that expires and is revoked as usual. Credentials delivered to Secrets Manager or SSM
//! are written inside that window too, to a name the pending row already records, so whoever ends the grant
//! (the reaper for an abandoned one) deletes them.

use crate::{note_grant, ActionError, App};
use grant_adapters::error::Conflict;
use grant_adapters::store::Expect;
use grant_adapters::{Fault, TempUserSpec};
use grant_model::config::{DatabaseConfig, TargetConfig};
use grant_model::delivery::Auth;
use grant_model::grant::{now_seconds, NewGrant, PROVISIONER};
use grant_model::request::GrantRequest;
use grant_model::response::{Credentials, GrantView, Login, Response, ResponseCredentials};
use grant_model::{
    naming, policy, same_identity, ClientError, Config, CredentialsRef, ErrorCode, Grant, Lease, Password, Purpose,
    Status, Strategy,
};

pub async fn grant(app: &App, req: GrantRequest) -> Result<Response, ActionError> {
    let config = app.source.config().await?;
    let (db, target) = policy::lookup(&config, &req.database, &req.target)?;
    let duration = policy::grant_duration(target, req.duration_seconds)?;
    let break_glass = policy::approval(target, &req.requester, req.approver.as_deref(), req.break_glass)?;
    let db_user = escalation_user(&req, target)?;
    let grant_id = match &req.request_id {
        Some(request_id) => naming::grant_id_for_request(request_id),
        None => uuid::Uuid::new_v4().to_string(),
    };
    note_grant(&grant_id, &req.requester);
    let lease = Lease::new(Purpose::Provision, PROVISIONER, &uuid::Uuid::new_v4().to_string(), now_seconds());
    if req.request_id.is_some() {
        if let Some(existing) = app.store.get(&grant_id).await? {
            return retried(app, &config, existing, &req, duration, lease).await;
        }
    }
    let pending = Grant::new_pending(
        NewGrant {
            grant_id,
            request_id: req.request_id.clone(),
            requester: req.requester.clone(),
            approver: req.approver.clone(),
            reason: req.reason.clone(),
            database: req.database.clone(),
            target: req.target.clone(),
            strategy: target.strategy,
            db_user: db_user.unwrap_or_else(|| db.engine.temp_username(&config.user_prefix, &req.requester)),
            roles: target.roles.clone(),
            user_prefix: config.user_prefix.clone(),
            duration_seconds: duration,
            break_glass,
        },
        now_seconds(),
    )
    .leased(lease.clone());
    let pending = pending.delivered_to(app.delivery.location(target.credential_delivery, &pending).as_ref());
    if pending.strategy() == Strategy::RoleEscalation {
        // Refuse what we can before writing anything: bad input changes nothing, not even the table.
        let revocation = app.revocation(PROVISIONER);
        let engine = revocation.engine(&config, pending.database())?;
        engine.check_escalation(&*app.store, &pending, pending.user_prefix(&config.user_prefix)).await?;
    }
    let inserted = app.store.insert(&pending).await;
    if !matches!(inserted, Ok(true)) {
        // Taken, or an error that may hide a write that was applied: what is there now decides.
        let existing = match (app.store.get(pending.grant_id()).await?, inserted) {
            (Some(existing), _) => existing,
            (None, Err(fault)) => return Err(fault.into()),
            (None, Ok(_)) => return Err(Fault::conflict(pending.grant_id(), Conflict::ChangedMeanwhile).into()),
        };
        if existing.lease().is_some_and(|held| held.owner() == lease.owner()) {
            // Our own row: the PutItem was applied but answered with an error (the SDK's retry then met it).
            return provision(app, &config, db, target, existing, &lease).await;
        }
        return retried(app, &config, existing, &req, duration, lease).await;
    }
    provision(app, &config, db, target, pending, &lease).await
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

/// How creating the access ended, when it did not succeed.
struct Failure {
    error: ActionError,
    /// The row was (or may have been) written `active` before the failure: it must not be marked `failed`.
    activation_written: bool,
}

impl<E: Into<ActionError>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure { error: error.into(), activation_written: false }
    }
}

/// Creates the access for a `pending` grant held under `lease`, and records the outcome: `active`, or `failed`
/// with the reason when nothing can have been left in the database.
async fn provision(
    app: &App,
    config: &Config,
    db: &DatabaseConfig,
    target: &TargetConfig,
    pending: Grant,
    lease: &Lease,
) -> Result<Response, ActionError> {
    match create_access(app, config, db, target, &pending, lease).await {
        Ok((active, credentials)) => {
            tracing::info!(db_user = %active.db_user(), expires_at = %grant_model::grant::format_time(active.expires_at()), "access granted");
            Ok(Response::Success { grant: GrantView::of(&active), credentials })
        }
        Err(Failure { error, activation_written: true }) => {
            tracing::error!(error = %error, "the grant is recorded active, but its transaction did not report a commit; a retry answers from the row");
            Err(error)
        }
        Err(Failure { error, activation_written: false }) => {
            // Nothing is in effect. Unless the lease was lost (then the row is someone else's, and so is what it
            // names), what the attempt made goes: delivered credentials, and, where the engine's creation is not
            // all or nothing (MySQL), a locked user, through the revocation routine, which deletes both.
            let lease_lost =
                matches!(&error, ActionError::Fault(Fault::Conflict { conflict: Conflict::LeaseLost, .. }));
            let revocation = app.revocation(PROVISIONER);
            let atomic = revocation.engine(config, pending.database()).map(|e| e.failed_creation_leaves_nothing());
            let cleanup = match (lease_lost, atomic, pending.credentials_ref()) {
                (true, _, _) => Ok(()),
                (false, Ok(false), _) if pending.strategy() == Strategy::TempUser => {
                    revocation.revoke_access(config, &pending).await
                }
                (false, _, Some(location)) => app.delivery.delete(&location).await,
                (false, _, None) => Ok(()),
            };
            if let Err(fault) = cleanup {
                // The pending row stays, naming them: a retry or the reaper removes them.
                tracing::error!(error = %error, cleanup = %fault, "grant failed; what it made remains for now");
                return Err(error);
            }
            let mut failed = pending.clone();
            failed.fail(now_seconds(), &error.to_string(), PROVISIONER, app.settings.retention)?;
            match app.store.replace(&pending, &failed, Expect::Holding(lease)).await {
                Ok(true) => tracing::warn!(error = %error, "grant failed; nothing was left in the database"),
                // The pending row stays; a retry takes it over, or the reaper ends it after the grace period.
                other => {
                    tracing::error!(error = %error, record = ?other.map_err(|f| f.to_string()), "could not record the failed grant")
                }
            }
            Err(error)
        }
    }
}

/// The database side of a grant, prepared by the engine and put into effect only after the row says `active`.
/// Returns the active grant and, for a temporary user, the response's credentials (delivered first where the
/// target says).
async fn create_access(
    app: &App,
    config: &Config,
    db: &DatabaseConfig,
    target: &TargetConfig,
    pending: &Grant,
    lease: &Lease,
) -> Result<(Grant, Option<ResponseCredentials>), Failure> {
    let revocation = app.revocation(PROVISIONER);
    let engine = revocation.engine(config, pending.database())?;
    let prefix = pending.user_prefix(&config.user_prefix);
    let mut answer = None;
    let mut active = pending.clone();
    let prepared = match pending.strategy() {
        Strategy::TempUser => {
            let password = (target.auth == Auth::Password).then(Password::generate);
            let spec =
                TempUserSpec { grant: pending, target, password: password.as_ref(), prefix, sslmode: db.sslmode };
            let prepared = engine.prepare_temp_user(&spec).await?;
            let login = login(app, db, pending, password).await?;
            let issued = credentials(db, pending, login);
            let (delivered, answered) = answer_with(app, pending, pending.credentials_ref(), issued).await?;
            if let Some(stored) = delivered {
                // A secret is named by its ARN from now on.
                active = active.delivered_to(Some(&stored));
            }
            answer = Some(answered);
            prepared
        }
        Strategy::RoleEscalation => {
            engine.prepare_escalation(&*app.store, pending, prefix).await.map_err(ActionError::from)?
        }
    };
    active.activate(now_seconds())?;
    match app.store.replace(pending, &active, Expect::Holding(lease)).await {
        Ok(true) => {}
        // The lease ran out and someone took the row over: undone, left to them.
        Ok(false) => return Err(Fault::conflict(pending.grant_id(), Conflict::LeaseLost).into()),
        // Maybe applied: the row may say active with nothing behind it (a retry makes it again).
        Err(fault) => return Err(Failure { error: fault.into(), activation_written: true }),
    }
    prepared.commit().await.map_err(|fault| Failure { error: fault.into(), activation_written: true })?;
    Ok((active, answer))
}

/// How the user logs in: with `password`, or (None: `auth: iam`) with a token minted now for 15 minutes.
async fn login(app: &App, db: &DatabaseConfig, grant: &Grant, password: Option<Password>) -> Result<Login, Fault> {
    Ok(match password {
        Some(password) => Login::Password { password },
        None => {
            Login::Iam { auth: Auth::Iam, token: app.source.tokens.mint(&db.host, db.port, grant.db_user()).await? }
        }
    })
}

/// The response's credentials: `credentials` themselves, or, when the grant delivers them to `location`, where
/// they were written (returned too: a secret's ARN).
async fn answer_with(
    app: &App,
    grant: &Grant,
    location: Option<CredentialsRef>,
    credentials: Credentials,
) -> Result<(Option<CredentialsRef>, ResponseCredentials), Fault> {
    match location {
        None => Ok((None, ResponseCredentials::Inline(credentials))),
        Some(location) => {
            let stored = app.delivery.put(&location, grant, &credentials).await?;
            let delivered = credentials.delivered(&stored);
            Ok((Some(stored), ResponseCredentials::Delivered(delivered)))
        }
    }
}

/// A request whose `request_id` was seen before: the same grant (with a fresh password), or `conflict`.
async fn retried(
    app: &App,
    config: &Config,
    existing: Grant,
    req: &GrantRequest,
    duration: u64,
    lease: Lease,
) -> Result<Response, ActionError> {
    let same_approver = match (existing.approver(), req.approver.as_deref()) {
        (Some(a), Some(b)) => same_identity(a, b),
        (a, b) => a == b,
    };
    let same_request = same_identity(existing.requester(), &req.requester)
        && existing.database() == req.database
        && existing.target() == req.target
        && existing.reason() == req.reason
        && same_approver
        && existing.break_glass() == req.break_glass
        && req.db_user.as_ref().is_none_or(|u| *u == existing.db_user())
        && existing.requested_duration_seconds() == Some(duration);
    if !same_request {
        return Err(ClientError::new(
            ErrorCode::Conflict,
            format!("request_id was already used for a different request (grant {})", existing.grant_id()),
        )
        .into());
    }
    let (db, target) = policy::lookup(config, existing.database(), existing.target())?;
    let now = now_seconds();
    match existing.status() {
        Status::Active if existing.is_expired(now) => {
            Err(ClientError::invalid_state(format!("grant {} has expired; use a new request_id", existing.grant_id()))
                .into())
        }
        Status::Active => {
            let credentials = match existing.strategy() {
                Strategy::TempUser => {
                    let login = fresh_login(app, config, db, target, &existing).await?;
                    let credentials = credentials(db, &existing, login);
                    Some(answer_with(app, &existing, existing.credentials_ref(), credentials).await?.1)
                }
                Strategy::RoleEscalation => None,
            };
            tracing::info!("retried grant answered with the existing access");
            Ok(Response::Success { grant: GrantView::of(&existing), credentials })
        }
        Status::Pending if existing.lease().is_some_and(|held| held.is_live(now)) => {
            Err(Fault::conflict(existing.grant_id(), Conflict::BeingProvisioned).into())
        }
        Status::Pending | Status::Failed => {
            // A dead invocation's row, or a fault the caller retried as asked: take it over and provision again,
            // same grant and same user, after removing whatever an earlier attempt may have left.
            let mut again = existing.clone();
            if existing.status() == Status::Failed {
                again.retry(now, duration)?;
            }
            let again = again.leased(lease.clone());
            if !app.store.replace(&existing, &again, Expect::NoLiveLease).await? {
                return Err(Fault::conflict(existing.grant_id(), Conflict::ChangedMeanwhile).into());
            }
            app.revocation(PROVISIONER).revoke_access(config, &again).await?;
            provision(app, config, db, target, again, &lease).await
        }
        Status::Revoked => {
            Err(ClientError::invalid_state(format!("grant {} was revoked; use a new request_id", existing.grant_id()))
                .into())
        }
    }
}

/// A new password (or, for `auth: iam`, a new token) for an active temporary user; the user is made again if an
/// earlier attempt recorded the grant but did not complete it.
async fn fresh_login(
    app: &App,
    config: &Config,
    db: &DatabaseConfig,
    target: &TargetConfig,
    grant: &Grant,
) -> Result<Login, Fault> {
    let password = (target.auth == Auth::Password).then(Password::generate);
    let prefix = grant.user_prefix(&config.user_prefix);
    let spec = TempUserSpec { grant, target, password: password.as_ref(), prefix, sslmode: db.sslmode };
    let revocation = app.revocation(PROVISIONER);
    revocation.engine(config, grant.database())?.renew_temp_user(&spec).await?;
    login(app, db, grant, password).await
}

fn credentials(db: &DatabaseConfig, grant: &Grant, login: Login) -> Credentials {
    Credentials {
        host: db.host.clone(),
        port: db.port,
        dbname: db.dbname.clone(),
        username: grant.db_user().to_string(),
        login,
        sslmode: db.sslmode,
    }
}
