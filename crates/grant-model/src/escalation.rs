//! Rules for `role_escalation` grants, which add memberships to a user that exists without us: we may only take
//! back what we gave, and only when no other live grant still provides it.

use crate::error::{ClientError, ErrorCode};
use crate::grant::Grant;

/// Whether `roles` may be granted to `db_user`. A membership the user already has is fine only if one of our
/// live grants provides it (overlapping grants); otherwise it existed before us and revoking ours later would
/// take it away, so the request is refused.
pub fn check_grantable(
    db_user: &str,
    roles: &[String],
    current_memberships: &[String],
    live_grants: &[Grant],
) -> Result<(), ClientError> {
    let pre_existing: Vec<&String> =
        roles.iter().filter(|role| current_memberships.contains(role) && !provided_by(role, live_grants)).collect();
    if pre_existing.is_empty() {
        Ok(())
    } else {
        Err(ClientError::new(
            ErrorCode::AlreadyHasAccess,
            format!("database user {db_user:?} is already a member of {pre_existing:?} outside of any grant"),
        ))
    }
}

/// The roles revoking `grant` may take away: those no other live grant for the same user still provides.
pub fn roles_to_revoke(grant: &Grant, live_grants: &[Grant]) -> Vec<String> {
    let others: Vec<Grant> = live_grants
        .iter()
        .filter(|g| g.grant_id != grant.grant_id && g.database == grant.database && g.db_user == grant.db_user)
        .cloned()
        .collect();
    grant.roles.iter().filter(|role| !provided_by(role, &others)).cloned().collect()
}

fn provided_by(role: &str, grants: &[Grant]) -> bool {
    grants.iter().any(|g| g.status.is_live() && g.roles.iter().any(|r| r == role))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::grant::tests::{sample, t};
    use crate::grant::{Retention, RevokedBy};

    fn escalation(id: &str, roles: &[&str]) -> Grant {
        let mut g = sample(Strategy::RoleEscalation);
        g.grant_id = id.into();
        g.db_user = "alice".into();
        g.roles = roles.iter().map(|r| r.to_string()).collect();
        g.activate(t(1)).unwrap();
        g
    }

    #[test]
    fn overlapping_grants_keep_shared_roles() {
        let a = escalation("a", &["dba", "audit"]);
        let b = escalation("b", &["dba"]);
        let live = vec![a.clone(), b.clone()];
        assert_eq!(roles_to_revoke(&a, &live), ["audit"]);
        assert_eq!(roles_to_revoke(&b, std::slice::from_ref(&b)), ["dba"]);
        let mut ended = b.clone();
        ended.revoke(t(2), &RevokedBy::Expiry, "", Retention { days: 1 }).unwrap();
        assert_eq!(roles_to_revoke(&a, &[a.clone(), ended]), ["dba", "audit"]);
    }

    #[test]
    fn pre_existing_membership_is_refused() {
        let roles = vec!["dba".to_string()];
        let member = vec!["dba".to_string()];
        assert_eq!(check_grantable("alice", &roles, &member, &[]).unwrap_err().code, ErrorCode::AlreadyHasAccess);
        assert!(check_grantable("alice", &roles, &member, &[escalation("a", &["dba"])]).is_ok());
        assert!(check_grantable("alice", &roles, &[], &[]).is_ok());
    }
}
