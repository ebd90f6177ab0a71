//! DynamoDB's own count of the items a client's Query and Scan calls read (`ScannedCount` in each response),
//! taken by an SDK interceptor from every response the client receives: a measure of read cost that does not
//! rely on the code under test reporting it.

use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
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

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(output) = context.output_or_error() {
            let scanned = output
                .downcast_ref::<QueryOutput>()
                .map(|q| q.scanned_count)
                .or_else(|| output.downcast_ref::<ScanOutput>().map(|s| s.scanned_count));
            if let Some(n) = scanned {
                self.scanned.fetch_add(u64::try_from(n).unwrap_or(0), Ordering::SeqCst);
                self.requests.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}
