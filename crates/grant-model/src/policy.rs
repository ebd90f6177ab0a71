//! How long access may last, and which database/target a request may name.

use crate::config::{Config, DatabaseConfig, TargetConfig, MIN_DURATION_SECONDS};
use crate::error::{quote, ClientError, ErrorCode};

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
}
