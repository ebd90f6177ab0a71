//! DynamoDB's own count of the items a client's Query and Scan calls read (`ScannedCount` in each response),
//! taken from the raw responses by an SDK interceptor: a measure of read cost that does not rely on the code
//! under test reporting it.

use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct ScannedCount {
    scanned: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl ScannedCount {
    /// A DynamoDB client that adds every response's `ScannedCount` to this counter.
    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(self.clone()).build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// Items DynamoDB read for Query/Scan calls so far.
    pub fn scanned(&self) -> u64 {
        self.scanned.load(Ordering::SeqCst)
    }

    /// Query/Scan responses seen so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Intercept for ScannedCount {
    fn name(&self) -> &'static str {
        "ScannedCount"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.response().body().bytes().unwrap_or_default();
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(n) = json.get("ScannedCount").and_then(serde_json::Value::as_u64) {
                self.scanned.fetch_add(n, Ordering::SeqCst);
                self.requests.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}
