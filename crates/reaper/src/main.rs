use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    grant_adapters::logging::init();
    // Clients and the per-database admin connections live as long as the warm container.
    let reaper = reaper::Reaper::from_env().await?;
    let reaper = &reaper;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if !event.payload.is_object() {
            return Err(Diagnostic {
                error_type: "InvalidEvent".into(),
                error_message: "expected a JSON object".into(),
            });
        }
        // The schedule's envelope is logged for tracing; any other object (e.g. `{}`) runs a pass too.
        if let Ok(scheduled) = serde_json::from_value::<EventBridgeEvent<Value>>(event.payload) {
            tracing::info!(event_id = ?scheduled.id, event_time = ?scheduled.time, "scheduled pass");
        }
        let deadline = reaper::deadline_from_epoch_ms(event.context.deadline);
        match reaper.run_pass(deadline).await {
            Ok(summary) => Ok(serde_json::to_value(summary).expect("summary serialises")),
            Err(fault) => Err(Diagnostic { error_type: fault.kind().into(), error_message: fault.to_string() }),
        }
    }))
    .await
}
