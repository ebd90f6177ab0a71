use lambda_runtime::layers::TracingLayer;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent, Runtime};
use provisioner::raw_body::{RawBody, RawBodyLayer};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    grant_adapters::logging::init();
    // Clients, settings and the connection cache are made once per container and reused while it is warm.
    let app = provisioner::App::from_env().await?;
    let app = &app;
    let handler = service_fn(move |event: LambdaEvent<RawBody>| async move {
        app.handle_bytes(&event.payload.0)
            .await
            .map_err(|fault| Diagnostic { error_type: fault.kind().into(), error_message: fault.to_string() })
    });
    // What `lambda_runtime::run` builds, plus RawBodyLayer: the payload is parsed by us, not by the runtime.
    Runtime::new(handler).layer(RawBodyLayer).layer(TracingLayer::new()).run().await
}
