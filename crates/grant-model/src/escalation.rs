//! Rules for `role_escalation` grants, which add memberships to a user that exists without us: we may only take
//! back what we gave, and only when no other live grant still provides it.

use crate::error::{ClientError, ErrorCode};
use crate::grant::Grant;
use crate::naming;
use chrono::{DateTime, Utc};

/// Whether `roles` may be granted to `db_user`. A membership the user already has is fine only if one of our
/// live grants accounts for it (overlapping grants); otherwise it existed before us and revoking ours later would
/// take it away, so the request is refused.
pub fn check_grantable(
    db_user: &str,
    roles: &[String],
    current_memberships: &[String],
    live_grants: &[Grant],
) -> Result<(), ClientError> {
    let pre_existing: Vec<&String> = roles
        .iter()
        .filter(|role| current_memberships.contains(role) && !live_grants.iter().any(|g| g.accounts_for(role)))
        .collect();
    if pre_existing.is_empty() {
        Ok(())
    } else {
        Err(ClientError::new(
            ErrorCode::AlreadyHasAccess,
            format!("database user {db_user:?} is already a member of {pre_existing:?} outside of any grant"),
        ))
    }
}

/// The roles revoking `grant` takes away: those the user is a member of now (a role dropped meanwhile is no
/// reason to leave the others) that no other grant for the same user provides. `others` must be read strongly
/// consistently, under the user's lock.
pub fn roles_to_revoke(grant: &Grant, others: &[Grant], memberships: &[String], now: DateTime<Utc>) -> Vec<String> {
    roles_ending(grant, others, now).into_iter().filter(|role| memberships.contains(role)).collect()
}

/// The roles whose rights the user loses when `grant` ends: its roles that no other grant for the same user
/// provides, held now or not. The user's sessions are ended whenever this is not empty, even if the membership
/// was already gone (an earlier attempt revoked it and failed later, or someone revoked it by hand): a session
/// that ran `SET ROLE` keeps the role's rights until it ends.
pub fn roles_ending(grant: &Grant, others: &[Grant], now: DateTime<Utc>) -> Vec<String> {
    let others: Vec<&Grant> = others
        .iter()
        .filter(|g| g.grant_id != grant.grant_id && g.database == grant.database && g.db_user == grant.db_user)
        .collect();
    grant.roles.iter().filter(|role| !others.iter().any(|g| g.provides(role, now))).cloned().collect()
}

/// What the database says about the user an escalation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    pub can_login: bool,
    pub superuser: bool,
    /// Other roles are members of it: a group role, whose members would all gain the target roles.
    pub has_members: bool,
    /// It is the admin user this system connects as.
    pub is_admin: bool,
    /// It is a member of a marker role: a temporary user of this system.
    pub is_temporary_user: bool,
}

/// SPEC: `db_user` of an escalation must be an ordinary login role: not a superuser, not a role with members, not
/// the admin, and not one of this system's own roles (the marker, `retired`, a temporary user).
pub fn check_db_user(db_user: &str, user_prefix: &str, facts: &UserFacts) -> Result<(), ClientError> {
    let own_roles = [naming::marker_role(user_prefix), naming::retired_role(user_prefix)];
    let refusal = if own_roles.iter().any(|r| r == db_user) || facts.is_temporary_user {
        Some("is one of this system's own roles")
    } else if facts.is_admin {
        Some("is the admin user")
    } else if facts.superuser {
        Some("is a superuser")
    } else if facts.has_members {
        Some("has members (a group role: every member would gain the roles)")
    } else if !facts.can_login {
        Some("cannot log in (not an ordinary login role)")
    } else {
        None
    };
    match refusal {
        Some(why) => Err(ClientError::new(
            ErrorCode::PolicyViolation,
            format!("database user {db_user:?} {why}; escalations are for ordinary login roles"),
        )),
        None => Ok(()),
    }
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
        let member = ["dba".to_string(), "audit".to_string()];
        let live = vec![a.clone(), b.clone()];
        assert_eq!(roles_to_revoke(&a, &live, &member, t(2)), ["audit"]);
        assert_eq!(roles_to_revoke(&b, std::slice::from_ref(&b), &member, t(2)), ["dba"]);
        let mut ended = b.clone();
        ended.revoke(t(2), &RevokedBy::Expiry, "", Retention { days: 1 }).unwrap();
        assert_eq!(roles_to_revoke(&a, &[a.clone(), ended], &member, t(3)), ["dba", "audit"]);
    }

    #[test]
    fn expired_or_pending_grants_do_not_keep_a_role() {
        let a = escalation("a", &["dba"]);
        let b = escalation("b", &["dba"]);
        let member = ["dba".to_string()];
        assert_eq!(roles_to_revoke(&a, std::slice::from_ref(&b), &member, t(1800)), ["dba"], "b expired too");
        let mut pending = sample(Strategy::RoleEscalation);
        pending.grant_id = "p".into();
        pending.db_user = "alice".into();
        pending.roles = vec!["dba".into()];
        assert_eq!(roles_to_revoke(&a, &[pending], &member, t(2)), ["dba"]);
    }

    #[test]
    fn a_role_dropped_meanwhile_does_not_stop_the_others() {
        let a = escalation("a", &["dba", "audit"]);
        assert_eq!(roles_to_revoke(&a, &[], &["dba".to_string()], t(2)), ["dba"]);
        // A membership revoked earlier still ends: the sessions that may hold it must go.
        assert_eq!(roles_ending(&a, &[], t(2)), ["dba", "audit"]);
        assert!(roles_to_revoke(&a, &[], &[], t(2)).is_empty());
    }

    #[test]
    fn pre_existing_membership_is_refused() {
        let roles = vec!["dba".to_string()];
        let member = vec!["dba".to_string()];
        assert_eq!(check_grantable("alice", &roles, &member, &[]).unwrap_err().code, ErrorCode::AlreadyHasAccess);
        assert!(check_grantable("alice", &roles, &member, &[escalation("a", &["dba"])]).is_ok());
        assert!(check_grantable("alice", &roles, &[], &[]).is_ok());
    }

    #[test]
    fn only_ordinary_login_roles_are_escalated() {
        let ordinary = UserFacts {
            can_login: true,
            superuser: false,
            has_members: false,
            is_admin: false,
            is_temporary_user: false,
        };
        assert!(check_db_user("alice", "jit_", &ordinary).is_ok());
        for (name, facts) in [
            ("jit_managed", ordinary.clone()),
            ("jit_retired", ordinary.clone()),
            ("x", UserFacts { is_temporary_user: true, ..ordinary.clone() }),
            ("x", UserFacts { is_admin: true, ..ordinary.clone() }),
            ("x", UserFacts { superuser: true, ..ordinary.clone() }),
            ("x", UserFacts { has_members: true, ..ordinary.clone() }),
            ("x", UserFacts { can_login: false, ..ordinary.clone() }),
        ] {
            assert_eq!(check_db_user(name, "jit_", &facts).unwrap_err().code, ErrorCode::PolicyViolation, "{facts:?}");
        }
    }
}
