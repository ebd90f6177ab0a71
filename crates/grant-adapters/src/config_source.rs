//! The config document, admin credentials and CA bundles: from S3 (and Secrets Manager for `admin_secret_arn`),
//! cached in the warm container for a short time, so a changed config or a rotated admin password is picked up
//! within `CACHE_TTL` without a redeploy; or, for `admin_iam_user`, an IAM authentication token signed here.

use crate::error::Fault;
use crate::rds::ReaderDiscovery;
use crate::rds_token::TokenSigner;
use crate::settings::Settings;
use grant_model::{AdminCredentials, AdminSource, AuthToken, Config, ConfigError, DatabaseConfig, Endpoint};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// An S3 object's bytes and when they were fetched.
type Cached = (Instant, Arc<Vec<u8>>);

pub struct ConfigSource {
    s3: aws_sdk_s3::Client,
    bucket: String,
    config_key: String,
    objects: Mutex<HashMap<String, Cached>>,
    /// Reader instances of configured `cluster_identifier`s, found through the RDS API and cached like the config.
    instances: ReaderDiscovery,
    /// For `admin_secret_arn`: made on first use, so a deployment without it does not build it.
    sdk: aws_config::SdkConfig,
    secrets_manager: OnceLock<aws_sdk_secretsmanager::Client>,
    secrets: Mutex<HashMap<String, Cached>>,
    /// Admin tokens for `admin_iam_user`, and temporary users' tokens for `auth: iam`.
    pub tokens: TokenSigner,
}

/// How the admin logs in.
#[derive(Debug)]
pub enum AdminLogin {
    Password(AdminCredentials),
    /// `admin_iam_user`: the token is sent as the password.
    Token {
        username: String,
        token: AuthToken,
    },
}

impl AdminLogin {
    pub fn username(&self) -> &str {
        match self {
            AdminLogin::Password(credentials) => &credentials.username,
            AdminLogin::Token { username, .. } => username,
        }
    }

    pub fn password(&self) -> &[u8] {
        match self {
            AdminLogin::Password(credentials) => credentials.password.as_bytes(),
            AdminLogin::Token { token, .. } => token.expose().as_bytes(),
        }
    }
}

impl ConfigSource {
    pub fn new(sdk: &aws_config::SdkConfig, settings: &Settings) -> ConfigSource {
        let s3_config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(settings.s3_force_path_style).build();
        ConfigSource {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            bucket: settings.config_bucket.clone(),
            config_key: settings.config_key.clone(),
            objects: Mutex::new(HashMap::new()),
            instances: ReaderDiscovery::new(sdk),
            sdk: sdk.clone(),
            secrets_manager: OnceLock::new(),
            secrets: Mutex::new(HashMap::new()),
            tokens: TokenSigner::new(sdk),
        }
    }

    /// The reader instances of configured database `name`: its `readers`, and those the RDS API lists for its
    /// `cluster_identifier`.
    pub async fn readers(&self, name: &str, db: &DatabaseConfig) -> Result<Vec<Endpoint>, Fault> {
        let mut readers = db.configured_readers();
        if let Some(cluster) = &db.cluster_identifier {
            for found in self.instances.readers(cluster, CACHE_TTL).await? {
                let endpoint = Endpoint { host: found.host, port: found.port, dbname: db.dbname.clone() };
                // The writer's own endpoint is never a reader (its session is the caller's, already held).
                if !readers.contains(&endpoint) && endpoint != db.writer() {
                    readers.push(endpoint);
                }
            }
        }
        tracing::debug!(database = name, readers = readers.len(), "reader instances");
        Ok(readers)
    }

    pub async fn config(&self) -> Result<Config, Fault> {
        let bytes = self.object(&self.config_key).await?;
        Ok(Config::parse(&bytes)?)
    }

    /// How the admin of `db` logs in, from whichever of the three sources its config names.
    /// How the admin logs in at `endpoint` of `db` (an IAM token is signed for that instance's host and port).
    pub async fn admin_login(&self, db: &DatabaseConfig, endpoint: &Endpoint) -> Result<AdminLogin, Fault> {
        let bytes = match db.admin().map_err(ConfigError)? {
            AdminSource::S3Object(key) => self.object(key).await?,
            AdminSource::Secret(arn) => self.secret(arn).await?,
            AdminSource::IamUser(user) => {
                let token = self.tokens.admin_token(&endpoint.host, endpoint.port, user).await?;
                return Ok(AdminLogin::Token { username: user.to_string(), token });
            }
        };
        Ok(AdminLogin::Password(AdminCredentials::parse(&bytes)?))
    }

    /// Drops the cached admin credentials of `db`, e.g. after PostgreSQL refused them following a rotation.
    pub async fn forget_admin(&self, db: &DatabaseConfig, endpoint: &Endpoint) {
        match db.admin() {
            Ok(AdminSource::S3Object(key)) => self.forget(key).await,
            Ok(AdminSource::Secret(arn)) => drop(self.secrets.lock().await.remove(arn)),
            Ok(AdminSource::IamUser(user)) => self.tokens.forget_admin_token(&endpoint.host, endpoint.port, user),
            Err(_) => {}
        }
    }

    /// A Secrets Manager secret's `SecretString`, cached like an S3 object.
    async fn secret(&self, arn: &str) -> Result<Arc<Vec<u8>>, Fault> {
        let mut secrets = self.secrets.lock().await;
        if let Some((fetched, bytes)) = secrets.get(arn) {
            if fetched.elapsed() < CACHE_TTL {
                return Ok(bytes.clone());
            }
        }
        let client = self.secrets_manager.get_or_init(|| aws_sdk_secretsmanager::Client::new(&self.sdk));
        let fault = |message: String| Fault::Aws {
            service: "Secrets Manager",
            message: format!("GetSecretValue {arn}: {message}"),
        };
        let output = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            fault(format!("{}: {}", e.code().unwrap_or("error"), e.message().unwrap_or("no message")))
        })?;
        let text = output.secret_string.ok_or_else(|| fault("the secret holds no SecretString".into()))?;
        let bytes = Arc::new(text.into_bytes());
        secrets.insert(arn.to_string(), (Instant::now(), bytes.clone()));
        Ok(bytes)
    }

    /// The PEM bundle named by `ca_bundle_key`, if any.
    pub async fn ca_bundle(&self, db: &DatabaseConfig) -> Result<Option<Arc<Vec<u8>>>, Fault> {
        match &db.ca_bundle_key {
            Some(key) => Ok(Some(self.object(key).await?)),
            None => Ok(None),
        }
    }

    /// Drops a cached object, e.g. admin credentials PostgreSQL just refused after a rotation.
    pub async fn forget(&self, key: &str) {
        self.objects.lock().await.remove(key);
    }

    async fn object(&self, key: &str) -> Result<Arc<Vec<u8>>, Fault> {
        let mut objects = self.objects.lock().await;
        if let Some((fetched, bytes)) = objects.get(key) {
            if fetched.elapsed() < CACHE_TTL {
                return Ok(bytes.clone());
            }
        }
        let fault = |message: String| Fault::S3 { key: format!("s3://{}/{key}", self.bucket), message };
        let output = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| fault(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        let body = output.body.collect().await.map_err(|e| fault(e.to_string()))?;
        let bytes = Arc::new(body.into_bytes().to_vec());
        objects.insert(key.to_string(), (Instant::now(), bytes.clone()));
        Ok(bytes)
    }
}
