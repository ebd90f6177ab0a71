//! How long access may last, which database/target a request may name, and who must have approved it.

use crate::config::{Config, DatabaseConfig, TargetConfig, MIN_DURATION_SECONDS};
use crate::error::{quote, ClientError, ErrorCode};
use crate::identity::same_identity;

/// The database and target a request names, or `unknown_database` / `unknown_target`.
pub fn lookup<'c>(
    config: &'c Config,
    database: &str,
    target: &str,
) -> Result<(&'c DatabaseConfig, &'c TargetConfig), ClientError> {
    let db = config.databases.get(database).ok_or_else(|| {
        ClientError::new(ErrorCode::UnknownDatabase, format!("database {} is not configured", quote(database)))
    })?;
    let target_config = db.targets.get(target).ok_or_else(|| {
        ClientError::new(
            ErrorCode::UnknownTarget,
            format!("target {} is not configured for database {}", quote(target), quote(database)),
        )
    })?;
    Ok((db, target_config))
}

/// A target named the way a caller that knows no database names it (Sym's `fields.target.name`):
/// `<database>/<target>`, or `<target>` alone where exactly one configured database has a target of that name.
/// Returns the database's and the target's names.
pub fn resolve_target<'c>(config: &'c Config, name: &str) -> Result<(&'c str, &'c str), ClientError> {
    if let Some((database, target)) = name.split_once('/') {
        let (db_name, _) = config.databases.get_key_value(database).ok_or_else(|| {
            ClientError::new(ErrorCode::UnknownDatabase, format!("database {} is not configured", quote(database)))
        })?;
        let (target_name, _) = config.databases[database].targets.get_key_value(target).ok_or_else(|| {
            ClientError::new(
                ErrorCode::UnknownTarget,
                format!("target {} is not configured for database {}", quote(target), quote(database)),
            )
        })?;
        return Ok((db_name, target_name));
    }
    let mut found = config
        .databases
        .iter()
        .filter_map(|(db_name, db)| db.targets.get_key_value(name).map(|(target_name, _)| (db_name, target_name)));
    match (found.next(), found.next()) {
        (Some((db, target)), None) => Ok((db, target)),
        (None, _) => Err(ClientError::new(
            ErrorCode::UnknownTarget,
            format!("no configured database has a target {}", quote(name)),
        )),
        (Some(_), Some(_)) => Err(ClientError::new(
            ErrorCode::UnknownTarget,
            format!("more than one database has a target {}: name it as <database>/{}", quote(name), name),
        )),
    }
}

/// Whether a grant may be made with the approver it names, and whether it is break-glass. Every approval rule
/// is here, checked before anything is written:
/// - an approver is never the requester;
/// - a named approver must be in the target's `approvers`, when it lists any;
/// - with `require_approver`, a grant needs such an approver, unless it asks for `break_glass` and the target
///   has `allow_break_glass`;
/// - `break_glass` where the target does not allow it is refused.
///
/// Returns true for a break-glass grant (recorded on the item and announced, with or without an approver).
pub fn approval(
    target: &TargetConfig,
    requester: &str,
    approver: Option<&str>,
    break_glass: bool,
) -> Result<bool, ClientError> {
    let refuse = |message: String| Err(ClientError::new(ErrorCode::PolicyViolation, message));
    if break_glass && !target.allow_break_glass {
        return refuse("break_glass is not allowed for this target (allow_break_glass is not set)".into());
    }
    if let Some(approver) = approver {
        if same_identity(approver, requester) {
            return refuse("approver must not be the requester".into());
        }
        if !target.approvers.is_empty() && !target.approvers.iter().any(|allowed| same_identity(allowed, approver)) {
            return refuse(format!("approver {} is not one of this target's approvers", quote(approver)));
        }
    } else if target.require_approver && !break_glass {
        let hint = if target.allow_break_glass { "; in an emergency, ask with \"break_glass\": true" } else { "" };
        return refuse(format!("this target requires an approver{hint}"));
    }
    Ok(break_glass)
}

/// The duration a grant gets: the requested one, or the target's default, within `[60 s, max]`.
pub fn grant_duration(target: &TargetConfig, requested: Option<u64>) -> Result<u64, ClientError> {
    check_duration(target, requested.unwrap_or_else(|| target.default_duration_seconds()))
}

/// An extension sets `expires_at = now + duration`, so the same bounds apply as for a new grant.
pub fn extension_duration(target: &TargetConfig, requested: u64) -> Result<u64, ClientError> {
    check_duration(target, requested)
}

fn check_duration(target: &TargetConfig, seconds: u64) -> Result<u64, ClientError> {
    if seconds < MIN_DURATION_SECONDS {
        return Err(ClientError::new(
            ErrorCode::PolicyViolation,
            format!("duration_seconds must be at least {MIN_DURATION_SECONDS}"),
        ));
    }
    if seconds > target.max_duration_seconds {
        return Err(ClientError::new(
            ErrorCode::PolicyViolation,
            format!(
                "duration_seconds {seconds} exceeds this target's max_duration_seconds {}",
                target.max_duration_seconds
            ),
        ));
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;

    fn target(default: Option<u64>, max: u64) -> TargetConfig {
        TargetConfig {
            strategy: Strategy::TempUser,
            roles: vec!["r".into()],
            statements: vec![],
            default_duration_seconds: default,
            max_duration_seconds: max,
            connection_limit: None,
            max_extensions: None,
            max_total_seconds: None,
            require_approver: false,
            approvers: vec![],
            allow_break_glass: false,
            auth: Default::default(),
            credential_delivery: Default::default(),
        }
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(grant_duration(&target(Some(600), 3600), None), Ok(600));
        assert_eq!(grant_duration(&target(None, 1800), None), Ok(1800));
        assert_eq!(grant_duration(&target(None, 14400), None), Ok(3600));
        assert_eq!(grant_duration(&target(None, 3600), Some(3600)), Ok(3600));
        let too_long = grant_duration(&target(None, 3600), Some(3601)).unwrap_err();
        assert_eq!(too_long.code, ErrorCode::PolicyViolation);
        assert_eq!(extension_duration(&target(None, 3600), 59).unwrap_err().code, ErrorCode::PolicyViolation);
    }

    fn approving(require: bool, approvers: &[&str], break_glass: bool) -> TargetConfig {
        TargetConfig {
            require_approver: require,
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            allow_break_glass: break_glass,
            ..target(None, 3600)
        }
    }

    /// (target, approver, break_glass asked) -> Ok(break_glass recorded) or words of the refusal.
    type Case<'a> = (TargetConfig, Option<&'a str>, bool, Result<bool, &'a str>);

    #[test]
    fn approval_rules() {
        let listed = ["Bob@Example.com", "carol@example.com"];
        let alice = "alice@example.com";
        let cases: Vec<Case> = vec![
            (approving(false, &[], false), None, false, Ok(false)),
            (approving(false, &[], false), Some("dave@x"), false, Ok(false)),
            (approving(false, &listed, false), Some("dave@x"), false, Err("not one of this target's approvers")),
            (approving(false, &listed, false), Some(" bob@example.COM "), false, Ok(false)),
            (approving(true, &[], false), None, false, Err("requires an approver")),
            (approving(true, &[], false), Some("dave@x"), false, Ok(false)),
            (approving(true, &listed, false), Some("dave@x"), false, Err("not one of this target's approvers")),
            (approving(true, &listed, false), Some("\u{a0}CAROL@example.com"), false, Ok(false)),
            (approving(true, &listed, false), None, true, Err("break_glass is not allowed")),
            (approving(true, &listed, true), None, false, Err("requires an approver; in an emergency")),
            (approving(true, &listed, true), None, true, Ok(true)),
            (approving(true, &listed, true), Some("bob@example.com"), true, Ok(true)),
            (approving(true, &listed, true), Some("dave@x"), true, Err("not one of this target's approvers")),
            (approving(false, &[], true), None, true, Ok(true)),
            (approving(false, &[], false), None, true, Err("break_glass is not allowed")),
        ];
        for (target, approver, break_glass, expected) in cases {
            let got = approval(&target, alice, approver, break_glass);
            match (got, expected) {
                (Ok(recorded), Ok(want)) => assert_eq!(recorded, want, "{approver:?} {break_glass}"),
                (Err(e), Err(words)) => {
                    assert_eq!(e.code, ErrorCode::PolicyViolation);
                    assert!(e.message.contains(words), "{approver:?}: {}", e.message);
                }
                (got, want) => panic!("{approver:?} {break_glass}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn self_approval_is_refused_even_when_listed() {
        let target = approving(true, &["alice@example.com"], true);
        for me in ["alice@example.com", " Alice@example.com", "ALICE@EXAMPLE.COM\u{a0}", "\u{3000}alice@Example.com "] {
            for break_glass in [false, true] {
                let err = approval(&target, "alice@example.com", Some(me), break_glass).unwrap_err();
                assert!(err.message.contains("approver must not be the requester"), "{me:?}: {err}");
            }
        }
    }

    #[test]
    fn target_names_resolve_by_database_or_alone() {
        let mut config = Config::parse(crate::config::tests::SPEC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(resolve_target(&config, "orders/readonly"), Ok(("orders", "readonly")));
        assert_eq!(resolve_target(&config, "dba"), Ok(("orders", "dba")));
        assert_eq!(resolve_target(&config, "nope").unwrap_err().code, ErrorCode::UnknownTarget);
        assert_eq!(resolve_target(&config, "billing/dba").unwrap_err().code, ErrorCode::UnknownDatabase);
        let orders = config.databases["orders"].clone();
        config.databases.insert("billing".into(), orders);
        let ambiguous = resolve_target(&config, "dba").unwrap_err();
        assert!(ambiguous.message.contains("<database>/dba"), "{ambiguous}");
        assert_eq!(resolve_target(&config, "billing/dba"), Ok(("billing", "dba")));
    }
}
