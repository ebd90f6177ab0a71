use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    grant_adapters::logging::init();
    // Clients, settings and the connection cache are made once per container and reused while it is warm.
    let app = provisioner::App::from_env().await?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        app.handle(event.payload)
            .await
            .map_err(|fault| Diagnostic { error_type: fault.kind().into(), error_message: fault.to_string() })
    }))
    .await
}
