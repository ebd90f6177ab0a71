//! The provisioner's answers (SPEC "Success" and client errors). Credentials appear only in a grant response.

use crate::config::{SslMode, Strategy};
use crate::delivery::{Auth, CredentialsRef};
use crate::error::ClientError;
use crate::grant::{Grant, HistoryEntry, Status};
use crate::secret::{AuthToken, Password};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What callers see of a grant: never a secret, never the table's index bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GrantView {
    pub grant_id: String,
    pub status: Status,
    pub requester: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub database: String,
    pub target: String,
    pub strategy: Strategy,
    pub db_user: String,
    pub roles: Vec<String>,
    #[serde(with = "crate::grant::rfc3339")]
    #[schemars(with = "crate::schema::Rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::grant::rfc3339")]
    #[schemars(with = "crate::schema::Rfc3339")]
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Only in `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

impl GrantView {
    pub fn of(grant: &Grant) -> GrantView {
        GrantView {
            grant_id: grant.grant_id.clone(),
            status: grant.status,
            requester: grant.requester.clone(),
            approver: grant.approver.clone(),
            reason: grant.reason.clone(),
            request_id: grant.request_id.clone(),
            database: grant.database.clone(),
            target: grant.target.clone(),
            strategy: grant.strategy,
            db_user: grant.db_user.clone(),
            roles: grant.roles.clone(),
            created_at: grant.created_at,
            expires_at: grant.expires_at,
            revoked_by: grant.revoked_by.clone(),
            last_error: grant.last_error.clone(),
            history: None,
        }
    }

    pub fn with_history(grant: &Grant) -> GrantView {
        GrantView { history: Some(grant.history.clone()), ..GrantView::of(grant) }
    }
}

/// How to log in as a temporary user: what the response carries, or what a delivered secret or parameter holds.
/// Debug never shows the password or token.
#[derive(Clone, Serialize, JsonSchema)]
pub struct Credentials {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub username: String,
    #[serde(flatten)]
    pub login: Login,
    pub sslmode: SslMode,
}

/// The secret part of [`Credentials`].
#[derive(Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Login {
    Password {
        #[serde(serialize_with = "expose_password")]
        #[schemars(with = "String")]
        password: Password,
    },
    /// `auth: iam`: a 15-minute RDS IAM authentication token, used as the password.
    Iam {
        #[schemars(with = "IamAuth")]
        auth: Auth,
        #[serde(serialize_with = "expose_token")]
        #[schemars(with = "String")]
        token: AuthToken,
    },
}

/// `"auth": "iam"`, for the schema.
#[derive(JsonSchema)]
#[allow(dead_code)]
enum IamAuth {
    #[serde(rename = "iam")]
    Iam,
}

fn expose_password<S: serde::Serializer>(password: &Password, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(password.expose())
}

fn expose_token<S: serde::Serializer>(token: &AuthToken, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(token.expose())
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let login = match &self.login {
            Login::Password { password } => format!("{password:?}"),
            Login::Iam { token, .. } => format!("{token:?}"),
        };
        f.debug_struct("Credentials")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("login", &login)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The whole object as JSON text: what a delivered secret or parameter holds.
    pub fn to_secret_string(&self) -> String {
        serde_json::to_string(self).expect("credentials always serialise")
    }

    /// What the response says when the credentials were delivered to `location`: how to connect, and where the
    /// password or token is, never the password or token itself.
    pub fn delivered(&self, location: &CredentialsRef) -> DeliveredCredentials {
        DeliveredCredentials {
            host: self.host.clone(),
            port: self.port,
            dbname: self.dbname.clone(),
            username: self.username.clone(),
            auth: match self.login {
                Login::Password { .. } => None,
                Login::Iam { auth, .. } => Some(auth),
            },
            sslmode: self.sslmode,
            location: match location {
                CredentialsRef::Secret(arn) => Location::SecretArn(arn.clone()),
                CredentialsRef::Parameter(name) => Location::ParameterName(name.clone()),
            },
        }
    }
}

/// The response's `credentials` under `credential_delivery` `secrets_manager` or `ssm`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeliveredCredentials {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<IamAuth>")]
    pub auth: Option<Auth>,
    pub sslmode: SslMode,
    #[serde(flatten)]
    pub location: Location,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    SecretArn(String),
    ParameterName(String),
}

/// A grant response's `credentials`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ResponseCredentials {
    Inline(Credentials),
    Delivered(DeliveredCredentials),
}

// One per invocation, serialised at once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Response {
    Success { grant: GrantView, credentials: Option<ResponseCredentials> },
    Failure(ClientError),
}

/// The response exactly as serialised; its JSON Schema is `docs/schema/response.schema.json`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(title = "ProvisionerResponse")]
pub(crate) enum Body<'a> {
    Success(SuccessBody<'a>),
    Failure(FailureBody<'a>),
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct SuccessBody<'a> {
    #[schemars(extend("const" = true))]
    ok: bool,
    grant: &'a GrantView,
    /// Only for `temp_user` grants, and only in the response to `grant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: &'a Option<ResponseCredentials>,
}

/// A client error: the caller's mistake, answered normally so that nobody retries it.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct FailureBody<'a> {
    #[schemars(extend("const" = false))]
    ok: bool,
    error: &'a ClientError,
}

impl Response {
    pub fn to_json(&self) -> Value {
        let body = match self {
            Response::Success { grant, credentials } => Body::Success(SuccessBody { ok: true, grant, credentials }),
            Response::Failure(error) => Body::Failure(FailureBody { ok: false, error }),
        };
        serde_json::to_value(body).expect("response types always serialise")
    }
}

impl From<ClientError> for Response {
    fn from(error: ClientError) -> Self {
        Response::Failure(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::grant::tests::sample;
    use serde_json::json;

    #[test]
    fn spec_shapes() {
        let grant = sample(Strategy::TempUser);
        let credentials = Credentials {
            host: "h".into(),
            port: 5432,
            dbname: "orders".into(),
            username: grant.db_user.clone(),
            login: Login::Password { password: Password::generate() },
            sslmode: SslMode::VerifyFull,
        };
        let Login::Password { password } = &credentials.login else { unreachable!() };
        let secret = password.expose().to_string();
        assert!(!format!("{credentials:?}").contains(&secret));
        let delivered = credentials.delivered(&CredentialsRef::Parameter("/jit-access/orders/g".into()));
        let ok = Response::Success {
            grant: GrantView::of(&grant),
            credentials: Some(ResponseCredentials::Delivered(delivered)),
        }
        .to_json();
        assert_eq!(ok["credentials"]["parameter_name"], json!("/jit-access/orders/g"));
        assert!(!ok.to_string().contains(&secret) && ok["credentials"].get("auth").is_none(), "{ok}");
        let ok = Response::Success {
            grant: GrantView::of(&grant),
            credentials: Some(ResponseCredentials::Inline(credentials)),
        }
        .to_json();
        assert_eq!(ok["ok"], json!(true));
        assert_eq!(ok["grant"]["status"], json!("pending"));
        assert_eq!(ok["grant"]["created_at"], json!("2026-11-18T11:06:40Z"));
        assert_eq!(ok["credentials"]["password"], json!(secret));
        assert_eq!(ok["credentials"]["sslmode"], json!("verify-full"));
        assert!(ok["grant"].get("history").is_none());

        let iam = Credentials {
            host: "h".into(),
            port: 5432,
            dbname: "orders".into(),
            username: grant.db_user.clone(),
            login: Login::Iam {
                auth: Auth::Iam,
                token: AuthToken::new("h:5432/?Action=connect&X-Amz-Signature=s".into()),
            },
            sslmode: SslMode::VerifyFull,
        };
        assert!(!format!("{iam:?}").contains("Signature"));
        let stored: Value = serde_json::from_str(&iam.to_secret_string()).unwrap();
        assert_eq!(
            (&stored["auth"], &stored["token"]),
            (&json!("iam"), &json!("h:5432/?Action=connect&X-Amz-Signature=s"))
        );
        assert!(stored.get("password").is_none());
        let delivered = iam.delivered(&CredentialsRef::Secret("arn:aws:secretsmanager:r:1:secret:x".into()));
        let ok = Response::Success {
            grant: GrantView::of(&grant),
            credentials: Some(ResponseCredentials::Delivered(delivered)),
        }
        .to_json();
        assert_eq!(
            (&ok["credentials"]["auth"], &ok["credentials"]["secret_arn"]),
            (&json!("iam"), &json!("arn:aws:secretsmanager:r:1:secret:x"))
        );
        assert!(ok["credentials"].get("token").is_none());

        let err = Response::from(ClientError::new(ErrorCode::UnknownDbUser, "no such user")).to_json();
        assert_eq!(err, json!({"ok": false, "error": {"code": "unknown_db_user", "message": "no such user"}}));
    }
}
