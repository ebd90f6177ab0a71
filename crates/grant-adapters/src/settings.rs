//! The SPEC's environment variables, read once at cold start.

use crate::error::Fault;
use chrono::Duration;
use grant_model::grant::Retention;

#[derive(Debug, Clone)]
pub struct Settings {
    pub grants_table: String,
    pub config_bucket: String,
    pub config_key: String,
    pub s3_force_path_style: bool,
    pub retention: Retention,
    /// A `pending` row older than this is a provisioning that crashed.
    pub pending_grace: Duration,
    /// Names of delivered secrets and SSM parameters start with it.
    pub secret_name_prefix: String,
}

impl Settings {
    pub fn from_env() -> Result<Settings, Fault> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, Fault> {
        let required = |name: &str| {
            get(name).filter(|v| !v.is_empty()).ok_or_else(|| Fault::Settings(format!("{name} must be set")))
        };
        let number = |name: &str, default: u32| -> Result<u32, Fault> {
            get(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| Fault::Settings(format!("{name} must be a whole number, not {v:?}")))
            })
        };
        let force_path_style = match get("S3_FORCE_PATH_STYLE").as_deref() {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(Fault::Settings(format!("S3_FORCE_PATH_STYLE must be true or false, not {other:?}")))
            }
        };
        let secret_name_prefix = get("SECRET_NAME_PREFIX")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| grant_model::delivery::DEFAULT_SECRET_NAME_PREFIX.into());
        grant_model::delivery::check_prefix(&secret_name_prefix).map_err(Fault::Settings)?;
        Ok(Settings {
            grants_table: required("GRANTS_TABLE")?,
            config_bucket: required("CONFIG_BUCKET")?,
            config_key: get("CONFIG_KEY").filter(|v| !v.is_empty()).unwrap_or_else(|| "config.json".into()),
            s3_force_path_style: force_path_style,
            retention: Retention { days: number("RETENTION_DAYS", 365)? },
            pending_grace: Duration::seconds(i64::from(number("PENDING_GRACE_SECONDS", 900)?)),
            secret_name_prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Fault> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_and_errors() {
        let s = settings(&[("GRANTS_TABLE", "t"), ("CONFIG_BUCKET", "b")]).unwrap();
        assert_eq!((s.config_key.as_str(), s.retention.days, s.pending_grace.num_seconds()), ("config.json", 365, 900));
        assert!(!s.s3_force_path_style);
        assert_eq!(s.secret_name_prefix, "jit-access");
        let bad = settings(&[("GRANTS_TABLE", "t"), ("CONFIG_BUCKET", "b"), ("SECRET_NAME_PREFIX", "ops@x")]);
        assert!(bad.unwrap_err().to_string().contains("SECRET_NAME_PREFIX"));
        let missing = settings(&[("CONFIG_BUCKET", "b")]).unwrap_err().to_string();
        assert!(missing.contains("GRANTS_TABLE"), "{missing}");
        let bad = settings(&[("GRANTS_TABLE", "t"), ("CONFIG_BUCKET", "b"), ("RETENTION_DAYS", "-1")]);
        assert!(bad.unwrap_err().to_string().contains("RETENTION_DAYS"));
    }
}
