//! RDS IAM authentication tokens, signed here with `aws-sigv4` instead of pulling in the RDS SDK: a SigV4
//! presigned `GET https://<host>:<port>/?Action=connect&DBUser=<user>` for the service `rds-db`, valid 15 minutes,
//! written without its `https://`. PostgreSQL receives it as the password; RDS checks it at login only, so a
//! session outlives its token.

use crate::error::Fault;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use grant_model::AuthToken;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long RDS accepts a token.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// A cached token is used only while this much of its life is left: a connection attempt (with its retry after a
/// refused login) must not start with a token about to lapse.
const SPARE_LIFE: Duration = Duration::from_secs(5 * 60);

/// Where a token lets one log in: host, port, database user.
type Target = (String, u16, String);

/// Signs `rds-db:connect` tokens with the Lambda's own credentials; the admin's are cached per connection target.
pub struct TokenSigner {
    credentials: Option<SharedCredentialsProvider>,
    region: Option<String>,
    /// Each admin token with the time until which it is used.
    admin_tokens: Mutex<HashMap<Target, (SystemTime, AuthToken)>>,
    /// Tests only: sign as if it were this time, so a server can be given the token in advance.
    frozen_at: Option<SystemTime>,
}

impl TokenSigner {
    pub fn new(sdk: &aws_config::SdkConfig) -> TokenSigner {
        TokenSigner {
            credentials: sdk.credentials_provider(),
            region: sdk.region().map(ToString::to_string),
            admin_tokens: Mutex::new(HashMap::new()),
            frozen_at: None,
        }
    }

    /// A signer whose tokens are all signed as at `at` (for tests: the token is then known beforehand).
    pub fn frozen_at(sdk: &aws_config::SdkConfig, at: SystemTime) -> TokenSigner {
        TokenSigner { frozen_at: Some(at), ..TokenSigner::new(sdk) }
    }

    fn now(&self) -> SystemTime {
        self.frozen_at.unwrap_or_else(SystemTime::now)
    }

    /// A token for the admin of a database, reused while it has life to spare.
    pub async fn admin_token(&self, host: &str, port: u16, user: &str) -> Result<AuthToken, Fault> {
        let key = (host.to_string(), port, user.to_string());
        let now = self.now();
        if let Some((until, token)) = self.admin_tokens.lock().expect("token cache lock").get(&key) {
            if now < *until {
                return Ok(token.clone());
            }
        }
        let (token, credentials_expire) = self.mint_at(host, port, user, now).await?;
        let lapses = credentials_expire.map_or(now + TOKEN_LIFETIME, |at| at.min(now + TOKEN_LIFETIME));
        let until = lapses.checked_sub(SPARE_LIFE).unwrap_or(now);
        self.admin_tokens.lock().expect("token cache lock").insert(key, (until, token.clone()));
        Ok(token)
    }

    /// Drops the admin's cached token, e.g. after PostgreSQL refused it.
    pub fn forget_admin_token(&self, host: &str, port: u16, user: &str) {
        self.admin_tokens.lock().expect("token cache lock").remove(&(host.to_string(), port, user.to_string()));
    }

    /// A new token for `user`, valid 15 minutes from now (a temporary user's, for the grant response).
    pub async fn mint(&self, host: &str, port: u16, user: &str) -> Result<AuthToken, Fault> {
        Ok(self.mint_at(host, port, user, self.now()).await?.0)
    }

    async fn mint_at(
        &self,
        host: &str,
        port: u16,
        user: &str,
        at: SystemTime,
    ) -> Result<(AuthToken, Option<SystemTime>), Fault> {
        let fault = |message: String| Fault::Aws { service: "IAM authentication", message };
        let provider = self.credentials.as_ref().ok_or_else(|| fault("no AWS credentials are configured".into()))?;
        let region = self.region.as_deref().ok_or_else(|| fault("no AWS region is configured".into()))?;
        let credentials = provider.provide_credentials().await.map_err(|e| fault(e.to_string()))?;
        let token = sign_token(&credentials, region, host, port, user, at)?;
        Ok((token, credentials.expiry()))
    }
}

/// The token botocore's `generate_db_auth_token` would give for the same credentials, time and target.
pub fn sign_token(
    credentials: &Credentials,
    region: &str,
    host: &str,
    port: u16,
    user: &str,
    at: SystemTime,
) -> Result<AuthToken, Fault> {
    let fault = |message: String| Fault::Aws { service: "IAM authentication", message };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| fault(e.to_string()))?
        .into();
    let endpoint = format!("{host}:{port}");
    let unsigned = format!("{endpoint}/?Action=connect&DBUser={}", encode(user));
    let request = SignableRequest::new(
        "GET",
        format!("https://{unsigned}"),
        [("host", endpoint.as_str())].into_iter(),
        // botocore signs the hash of an empty body, not UNSIGNED-PAYLOAD, and RDS expects what it does.
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| fault(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params).map_err(|e| fault(e.to_string()))?.into_parts();
    let (_headers, mut query) = instructions.into_parts();
    // As botocore writes them: in the signer's order, but the signature last (after a session token).
    query.sort_by_key(|(name, _)| *name == "X-Amz-Signature");
    let signed: String = query.iter().map(|(name, value)| format!("&{name}={}", encode(value))).collect();
    Ok(AuthToken::new(unsigned + &signed))
}

/// SigV4's URI encoding: everything but the unreserved characters, as upper-case `%XX`.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated once with botocore 1.44.8 (`pip install botocore`):
    ///
    /// ```python
    /// frozen = datetime.datetime(2026, 11, 21, 14, 0, 0)   # patched into botocore.auth's datetime.utcnow/now
    /// s = botocore.session.get_session()
    /// s.set_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)  # token: None, then
    ///                                                                                    # "FQoGZXIvYXdzEXAMPLETOKEN/+="
    /// s.create_client("rds", region_name="us-east-1").generate_db_auth_token(
    ///     "orders.cluster-abc.us-east-1.rds.amazonaws.com", 5432, "jit_admin@x")
    /// ```
    const BOTOCORE_TOKEN: &str = "orders.cluster-abc.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=jit_admin%40x&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261121%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20261121T140000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=501e84c7edcaa032f94fe50040b5eb4795b7401d59cc5cb3cad78c493254ff88";
    const BOTOCORE_SESSION_TOKEN: &str = "orders.cluster-abc.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=jit_admin%40x&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261121%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20261121T140000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLETOKEN%2F%2B%3D&X-Amz-Signature=f5d6f1172cd98b8b5d8462d865039197fac8a46adf2239338430072794083ad3";

    fn frozen() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_269_600) // 2026-11-21T14:00:00Z
    }

    fn token(session_token: Option<&str>) -> String {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token.map(String::from),
            None,
            "test",
        );
        let host = "orders.cluster-abc.us-east-1.rds.amazonaws.com";
        sign_token(&credentials, "us-east-1", host, 5432, "jit_admin@x", frozen()).unwrap().expose().to_string()
    }

    #[test]
    fn matches_botocore() {
        assert_eq!(token(None), BOTOCORE_TOKEN);
        assert_eq!(token(Some("FQoGZXIvYXdzEXAMPLETOKEN/+=")), BOTOCORE_SESSION_TOKEN);
    }

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(encode("a-b_c.d~e f/g+h=@"), "a-b_c.d~e%20f%2Fg%2Bh%3D%40");
    }
}
