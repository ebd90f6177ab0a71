//! Reader instances of an Aurora cluster, found through the RDS API (`DescribeDBClusters` for which members
//! are readers, `DescribeDBInstances` for their endpoints) and cached. The client is made on first use, so a
//! config without `cluster_identifier` costs nothing at cold start.

use crate::error::Fault;
use aws_sdk_rds::error::DisplayErrorContext;
use aws_sdk_rds::types::Filter;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OnceCell};

/// A reader instance's endpoint as RDS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInstance {
    pub host: String,
    pub port: u16,
}

pub struct ReaderDiscovery {
    sdk: aws_config::SdkConfig,
    client: OnceCell<aws_sdk_rds::Client>,
    cache: Mutex<HashMap<String, (Instant, Vec<ReaderInstance>)>>,
}

impl ReaderDiscovery {
    pub fn new(sdk: &aws_config::SdkConfig) -> ReaderDiscovery {
        ReaderDiscovery { sdk: sdk.clone(), client: OnceCell::new(), cache: Mutex::new(HashMap::new()) }
    }

    /// The reader instances of `cluster` that have an endpoint, read at most once per `ttl`. A reader added
    /// meanwhile is found on the next read; one being deleted fails revocations until RDS stops listing it.
    pub async fn readers(&self, cluster: &str, ttl: Duration) -> Result<Vec<ReaderInstance>, Fault> {
        let mut cache = self.cache.lock().await;
        if let Some((read_at, readers)) = cache.get(cluster) {
            if read_at.elapsed() < ttl {
                return Ok(readers.clone());
            }
        }
        let readers = self.describe(cluster).await?;
        cache.insert(cluster.to_string(), (Instant::now(), readers.clone()));
        Ok(readers)
    }

    async fn describe(&self, cluster: &str) -> Result<Vec<ReaderInstance>, Fault> {
        let client = self.client.get_or_init(|| async { aws_sdk_rds::Client::new(&self.sdk) }).await;
        let fault = |operation: &'static str, message: String| Fault::Aws {
            service: operation,
            message: format!("cluster {cluster}: {message}"),
        };
        let clusters = client
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .map_err(|e| fault("RDS DescribeDBClusters", DisplayErrorContext(e).to_string()))?;
        let [found] = clusters.db_clusters() else {
            return Err(fault(
                "RDS DescribeDBClusters",
                format!("expected one cluster, got {}", clusters.db_clusters().len()),
            ));
        };
        let readers: Vec<&str> = found
            .db_cluster_members()
            .iter()
            .filter(|m| m.is_cluster_writer() == Some(false))
            .filter_map(|m| m.db_instance_identifier())
            .collect();
        if readers.is_empty() {
            return Ok(Vec::new());
        }
        let filter = Filter::builder().name("db-cluster-id").values(cluster).build();
        let instances = client
            .describe_db_instances()
            .filters(filter)
            .send()
            .await
            .map_err(|e| fault("RDS DescribeDBInstances", DisplayErrorContext(e).to_string()))?;
        Ok(instances
            .db_instances()
            .iter()
            .filter(|i| i.db_instance_identifier().is_some_and(|id| readers.contains(&id)))
            .filter_map(|i| {
                let endpoint = i.endpoint()?;
                Some(ReaderInstance {
                    host: endpoint.address()?.to_string(),
                    port: u16::try_from(endpoint.port()?).ok()?,
                })
            })
            .collect())
    }
}
