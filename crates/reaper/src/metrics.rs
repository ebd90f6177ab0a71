//! CloudWatch Embedded Metric Format: one JSON line per pass on stdout, which CloudWatch turns into metrics
//! that alarms can watch (revocations failing, grants overdue, the reaper not running).

use crate::Summary;
use serde_json::json;

pub const NAMESPACE: &str = "JitAccess";

pub fn emit(summary: &Summary) {
    println!("{}", line(summary, &function_name(), chrono::Utc::now().timestamp_millis()));
}

fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "reaper".into())
}

fn line(summary: &Summary, function: &str, timestamp_ms: i64) -> String {
    let count = |name: &str| json!({"Name": name, "Unit": "Count"});
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [
                    count("Revoked"), count("RevokeFailed"), count("Overdue"), count("OrphansDropped"),
                    count("Deferred"), count("DriftRevoked"), {"Name": "DurationMs", "Unit": "Milliseconds"}
                ]
            }]
        },
        "FunctionName": function,
        "Revoked": summary.revoked,
        "RevokeFailed": summary.failed,
        "Overdue": summary.overdue,
        "OrphansDropped": summary.orphans_dropped,
        "Deferred": summary.deferred,
        "DriftRevoked": summary.drift_revoked,
        "DurationMs": summary.duration_ms,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_declared_metric_has_a_value() {
        let summary = Summary { revoked: 3, failed: 1, overdue: 2, duration_ms: 42, ..Summary::default() };
        let parsed: Value = serde_json::from_str(&line(&summary, "jit-reaper", 1)).unwrap();
        let declared = parsed["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert_eq!(declared.len(), 7);
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(parsed[name].is_u64(), "{name} has no value");
        }
        assert_eq!((parsed["Revoked"].as_u64(), parsed["Overdue"].as_u64()), (Some(3), Some(2)));
        assert_eq!(parsed["FunctionName"], "jit-reaper");
    }
}
