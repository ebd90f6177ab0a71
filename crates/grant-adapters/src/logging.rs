//! JSON logs, one object per line, with the fields of the current span (grant_id, action, requester), so
//! CloudWatch Logs Insights can query them. Level from AWS_LAMBDA_LOG_LEVEL or RUST_LOG, INFO by default.

use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub fn init() {
    subscriber().init();
}

/// For tests that want the Lambdas' log lines: installs the subscriber unless one is installed already.
pub fn try_init() {
    let _ = subscriber().try_init();
}

fn subscriber() -> impl tracing::Subscriber + Send + Sync + 'static {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    let filter = EnvFilter::try_new(if level.is_empty() { "info" } else { level.as_str() })
        .unwrap_or_else(|_| EnvFilter::new("info"))
        // The SDK's and hyper's chatter at INFO is noise in a Lambda's log.
        .add_directive("aws_smithy_runtime=warn".parse().expect("static directive"))
        .add_directive("aws_config=warn".parse().expect("static directive"))
        .add_directive("hyper=warn".parse().expect("static directive"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true) // the runtime's span carries the Lambda requestId
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .finish()
}
