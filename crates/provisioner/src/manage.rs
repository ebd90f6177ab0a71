//! `revoke`, `extend` and `describe`: actions on an existing grant.

use crate::{note_grant, ActionError, App};
use grant_adapters::Fault;
use grant_model::grant::{now_seconds, RevokedBy, REVOCATION_LEASE_SECONDS};
use grant_model::request::{DescribeRequest, ExtendRequest, RevokeRequest};
use grant_model::response::{GrantView, Response};
use grant_model::{policy, sql, ClientError, Grant, Status, Strategy};

async fn load(app: &App, grant_id: &str) -> Result<Grant, ActionError> {
    let grant = app.store.get(grant_id).await?.ok_or_else(|| ClientError::not_found(grant_id))?;
    note_grant(&grant.grant_id, &grant.requester);
    Ok(grant)
}

/// Ends an active grant early, through the same routine the reaper uses. Revoking a revoked grant is a no-op.
pub async fn revoke(app: &App, req: RevokeRequest) -> Result<Response, ActionError> {
    let grant = load(app, &req.grant_id).await?;
    match grant.status {
        Status::Revoked => return Ok(Response::Success { grant: GrantView::of(&grant), credentials: None }),
        Status::Pending | Status::Failed => {
            return Err(ClientError::invalid_state(format!(
                "grant {} is {}: there is no access to revoke",
                grant.grant_id, grant.status
            ))
            .into())
        }
        Status::Active => {}
    }
    let owner = format!("revoke:{}", uuid::Uuid::new_v4());
    if !app.store.claim(&grant, &owner, REVOCATION_LEASE_SECONDS, false).await? {
        // The reaper or another revoke is on it, or it just changed: report what is there now.
        let now = load(app, &grant.grant_id).await?;
        if now.status != Status::Revoked {
            return Err(
                Fault::Busy(format!("grant {} is being changed by another invocation; retry", grant.grant_id)).into()
            );
        }
        return Ok(Response::Success { grant: GrantView::of(&now), credentials: None });
    }
    let config = app.source.config().await?;
    let mut recorded = grant.clone();
    if let Err(fault) = app.revoker().revoke_access(&config, &grant).await {
        recorded.record_revoke_failure(&fault.to_string());
        app.store.replace_claimed(&grant, &recorded, &owner).await?;
        return Err(fault.into());
    }
    let note = req.reason.as_deref().unwrap_or("revoked early");
    recorded.revoke(now_seconds(), &RevokedBy::Actor(req.actor.clone()), note, app.settings.retention)?;
    if !app.store.replace_claimed(&grant, &recorded, &owner).await? {
        return Err(Fault::Busy(format!("lost the lease on grant {} while revoking; retry", grant.grant_id)).into());
    }
    tracing::info!(actor = %req.actor, "grant revoked");
    Ok(Response::Success { grant: GrantView::of(&recorded), credentials: None })
}

/// Moves `expires_at` to now + duration, within the target's maximum. The database is changed first: if the
/// table write then fails, the row still says the earlier time and the reaper revokes then.
pub async fn extend(app: &App, req: ExtendRequest) -> Result<Response, ActionError> {
    let grant = load(app, &req.grant_id).await?;
    let config = app.source.config().await?;
    let (db, target) = policy::lookup(&config, &grant.database, &grant.target)?;
    let duration = policy::extension_duration(target, req.duration_seconds)?;
    let mut extended = grant.clone();
    extended.extend(now_seconds(), duration, &req.actor, &req.reason)?;
    if grant.strategy == Strategy::TempUser {
        let mut session = app.connections.session(&grant.database, db, &app.source).await?;
        session.execute(&sql::set_valid_until(&grant.db_user, extended.expires_at)).await?;
    }
    if !app.store.replace(&grant, &extended).await? {
        return Err(Fault::Busy(format!("grant {} changed while being extended; retry", grant.grant_id)).into());
    }
    tracing::info!(actor = %req.actor, expires_at = %grant_model::grant::format_time(extended.expires_at), "grant extended");
    Ok(Response::Success { grant: GrantView::of(&extended), credentials: None })
}

pub async fn describe(app: &App, req: DescribeRequest) -> Result<Response, ActionError> {
    let grant = load(app, &req.grant_id).await?;
    Ok(Response::Success { grant: GrantView::with_history(&grant), credentials: None })
}
