//! `revoke`, `extend` and `describe`: actions on an existing grant.

use crate::{note_grant, ActionError, App};
use grant_adapters::error::Conflict;
use grant_adapters::revoke::manual_revocable;
use grant_adapters::store::Expect;
use grant_adapters::{Fault, Outcome, Why};
use grant_model::grant::{now_seconds, PROVISIONER};
use grant_model::request::{DescribeRequest, ExtendRequest, RevokeRequest};
use grant_model::response::{GrantView, Response};
use grant_model::{policy, ClientError, Grant, Status, Strategy};

async fn load(app: &App, grant_id: &str) -> Result<Grant, ActionError> {
    let grant = app.store.get(grant_id).await?.ok_or_else(|| ClientError::not_found(grant_id))?;
    note_grant(grant.grant_id(), grant.requester());
    Ok(grant)
}

/// Ends an active grant early, through the one revocation operation the reaper uses. Revoking a revoked grant
/// is a no-op. `holder` names who acts (`provisioner`, `grantctl`) in the lease.
pub async fn revoke(app: &App, req: RevokeRequest, holder: &str) -> Result<Response, ActionError> {
    let grant = load(app, &req.grant_id).await?;
    manual_revocable(&grant)?;
    if grant.status() == Status::Revoked {
        return Ok(Response::Success { grant: GrantView::of(&grant), credentials: None });
    }
    let config = app.source.config().await?;
    let why =
        Why::Manual { actor: req.actor.clone(), note: req.reason.clone().unwrap_or_else(|| "revoked early".into()) };
    match app.revocation(holder).run(&config, &grant, &why).await? {
        Outcome::Done(revoked) => {
            tracing::info!(actor = %req.actor, "grant revoked");
            Ok(Response::Success { grant: GrantView::of(&revoked), credentials: None })
        }
        Outcome::Failed { fault, .. } => Err(fault.into()),
        Outcome::Skipped(conflict) => {
            // The reaper or another revoke is on it, or it just changed: report what is there now.
            let now = load(app, grant.grant_id()).await?;
            if now.status() != Status::Revoked {
                return Err(Fault::conflict(grant.grant_id(), conflict).into());
            }
            Ok(Response::Success { grant: GrantView::of(&now), credentials: None })
        }
    }
}

/// Moves `expires_at` to now + duration, within the target's maximum, `max_extensions` and `max_total_seconds`.
/// For a temporary user the database's own expiry moves too: on PostgreSQL the new `VALID UNTIL` commits only
/// after the row says so; on MySQL the expiry event moves first, so a failed write leaves the earlier expiry in
/// the row, which the reaper keeps.
pub async fn extend(app: &App, req: ExtendRequest) -> Result<Response, ActionError> {
    let grant = load(app, &req.grant_id).await?;
    let config = app.source.config().await?;
    let (_, target) = policy::lookup(&config, grant.database(), grant.target())?;
    let duration = policy::extension_duration(target, req.duration_seconds)?;
    let mut extended = grant.clone();
    extended.extend(now_seconds(), duration, target.extension_limits(), &req.actor, &req.reason)?;
    let changed = Fault::conflict(grant.grant_id(), Conflict::ChangedMeanwhile);
    if grant.strategy() == Strategy::TempUser {
        let revocation = app.revocation(PROVISIONER);
        let engine = revocation.engine(&config, grant.database())?;
        let prefix = grant.user_prefix(&config.user_prefix);
        let prepared = engine.prepare_extension(&grant, prefix, extended.expires_at()).await?;
        if !app.store.replace(&grant, &extended, Expect::NoLiveLease).await? {
            return Err(changed.into());
        }
        prepared.commit().await?;
    } else if !app.store.replace(&grant, &extended, Expect::NoLiveLease).await? {
        return Err(changed.into());
    }
    tracing::info!(actor = %req.actor, expires_at = %grant_model::grant::format_time(extended.expires_at()), "grant extended");
    Ok(Response::Success { grant: GrantView::of(&extended), credentials: None })
}

pub async fn describe(app: &App, req: DescribeRequest) -> Result<Response, ActionError> {
    let grant = load(app, &req.grant_id).await?;
    Ok(Response::Success { grant: GrantView::with_history(&grant), credentials: None })
}
