//! The wall time a client spends waiting for DynamoDB, taken by an SDK interceptor: from the start of the first
//! call in flight to the end of the last one, so overlapping calls are not counted twice. With it, a pass or a
//! grant can be split into its DynamoDB part and the rest without instrumenting the product code.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct DynamoTime {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    in_flight: u32,
    busy_since: Option<Instant>,
    busy: Duration,
    calls: u64,
}

impl DynamoTime {
    /// A DynamoDB client whose calls this meter times.
    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(self.clone()).build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// Wall time with at least one call in flight, and calls completed, since the last `take`.
    pub fn take(&self) -> (Duration, u64) {
        let mut state = self.state.lock().expect("meter lock");
        let taken = (state.busy, state.calls);
        state.busy = Duration::ZERO;
        state.calls = 0;
        taken
    }
}

impl Intercept for DynamoTime {
    fn name(&self) -> &'static str {
        "DynamoTime"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut state = self.state.lock().expect("meter lock");
        if state.in_flight == 0 {
            state.busy_since = Some(Instant::now());
        }
        state.in_flight += 1;
        Ok(())
    }

    /// Called once per call that reached `read_before_execution`, whether it succeeded or not.
    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut state = self.state.lock().expect("meter lock");
        state.in_flight = state.in_flight.saturating_sub(1);
        state.calls += 1;
        if state.in_flight == 0 {
            if let Some(since) = state.busy_since.take() {
                state.busy += since.elapsed();
            }
        }
        Ok(())
    }
}
