//! The config document, admin credentials and CA bundles from S3, cached in the warm container for a short
//! time: a changed config or a rotated admin password is picked up within `CACHE_TTL` without a redeploy.

use crate::error::Fault;
use crate::rds::ReaderDiscovery;
use crate::settings::Settings;
use grant_model::{AdminCredentials, Config, DatabaseConfig, Endpoint};
use std::collections::HashMap;
use std::sync::Arc;
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

    pub async fn admin_credentials(&self, db: &DatabaseConfig) -> Result<AdminCredentials, Fault> {
        let bytes = self.object(&db.admin_secret_key).await?;
        Ok(AdminCredentials::parse(&bytes)?)
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
