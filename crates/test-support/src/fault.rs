//! A DynamoDB write that is applied but answered with a server error: the SDK sees a 500 (and retries, as it
//! does for any 5xx) although the table already changed. An SDK interceptor turns the first `times` responses of
//! one operation into 500s after the server has applied them.

use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ApplyThenFail {
    operation: &'static str,
    left: Arc<AtomicU32>,
    injected: Arc<AtomicU32>,
}

impl ApplyThenFail {
    /// Answers the first `times` calls of `operation` (e.g. `PutItem`) with a 500 once DynamoDB applied them.
    pub fn new(operation: &'static str, times: u32) -> ApplyThenFail {
        ApplyThenFail { operation, left: Arc::new(AtomicU32::new(times)), injected: Arc::default() }
    }

    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(self.clone()).build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// How many responses were turned into errors.
    pub fn injected(&self) -> u32 {
        self.injected.load(Ordering::SeqCst)
    }
}

impl Intercept for ApplyThenFail {
    fn name(&self) -> &'static str {
        "ApplyThenFail"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let ours = cfg.load::<Metadata>().is_some_and(|operation| operation.name() == self.operation);
        if ours && context.response().status().is_success() {
            let took = self.left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            if took {
                *context.response_mut().status_mut() = 500u16.try_into()?;
                self.injected.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}
