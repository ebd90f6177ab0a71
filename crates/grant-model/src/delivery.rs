//! How a temporary user's credentials reach the requester (SPEC target `auth` and `credential_delivery`), and the
//! name of the secret or parameter that holds them. Names are derived from the grant alone, so whoever ends a
//! grant finds what to delete even when the invocation that wrote it died before recording anything else.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `SECRET_NAME_PREFIX` when the environment names none.
pub const DEFAULT_SECRET_NAME_PREFIX: &str = "jit-access";
/// Tags on a delivered secret or parameter: the requester may read what carries their own identity.
pub const REQUESTER_TAG: &str = "jit:requester";
pub const GRANT_ID_TAG: &str = "jit:grant_id";

/// How a temporary user logs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// A generated password, stored in PostgreSQL as a SCRAM verifier.
    #[default]
    Password,
    /// RDS IAM authentication: a member of `rds_iam`, no password; the provisioner mints 15-minute tokens.
    Iam,
}

/// Where a temporary user's credentials go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialDelivery {
    /// In the grant response.
    #[default]
    Response,
    /// A Secrets Manager secret `<prefix>/<database>/<grant_id>`; the response names its ARN.
    SecretsManager,
    /// An SSM SecureString parameter `/<prefix>/<database>/<grant_id>`; the response names it.
    Ssm,
}

/// Where a grant's credentials were delivered: the item's `credentials_ref` attribute. A secret is named by its
/// ARN once created (by its name before), a parameter by its name, which always starts with `/`; so the text
/// alone says which it is. Never a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsRef {
    /// A Secrets Manager secret's ARN or name.
    Secret(String),
    /// An SSM parameter's name.
    Parameter(String),
}

impl CredentialsRef {
    /// Where `delivery` puts a grant's credentials, or None when they travel in the response.
    pub fn for_grant(
        delivery: CredentialDelivery,
        prefix: &str,
        database: &str,
        grant_id: &str,
    ) -> Option<CredentialsRef> {
        let name = format!("{prefix}/{database}/{grant_id}");
        match delivery {
            CredentialDelivery::Response => None,
            CredentialDelivery::SecretsManager => Some(CredentialsRef::Secret(name)),
            CredentialDelivery::Ssm => Some(CredentialsRef::Parameter(format!("/{name}"))),
        }
    }

    /// The attribute as stored.
    pub fn parse(text: &str) -> CredentialsRef {
        match text.starts_with('/') {
            true => CredentialsRef::Parameter(text.to_string()),
            false => CredentialsRef::Secret(text.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CredentialsRef::Secret(id) | CredentialsRef::Parameter(id) => id,
        }
    }
}

/// Whether `prefix` is usable in both a secret's and a parameter's name. `@` is refused although Secrets
/// Manager allows it: SSM parameter names may not contain it, and one prefix serves both.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && !prefix.starts_with('/')
        && !prefix.ends_with('/')
        && !prefix.contains("//")
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "SECRET_NAME_PREFIX must be letters, digits and / _ . - (not starting or ending with /), not {prefix:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_and_round_trip() {
        let secret = CredentialsRef::for_grant(CredentialDelivery::SecretsManager, "jit-access", "orders", "g1");
        assert_eq!(secret, Some(CredentialsRef::Secret("jit-access/orders/g1".into())));
        let parameter = CredentialsRef::for_grant(CredentialDelivery::Ssm, "jit-access", "orders", "g1").unwrap();
        assert_eq!(parameter, CredentialsRef::Parameter("/jit-access/orders/g1".into()));
        assert_eq!(CredentialsRef::parse(parameter.as_str()), parameter);
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jit-access/orders/g1-AbCdEf";
        assert_eq!(CredentialsRef::parse(arn), CredentialsRef::Secret(arn.into()));
        assert_eq!(CredentialsRef::for_grant(CredentialDelivery::Response, "p", "d", "g"), None);
    }

    #[test]
    fn prefixes_must_suit_both_services() {
        for good in ["jit-access", "team/jit_access.v2"] {
            assert_eq!(check_prefix(good), Ok(()), "{good}");
        }
        for bad in ["", "/jit", "jit/", "a//b", "ops@example", "jit access"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
