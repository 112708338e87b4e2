//! Metrics as CloudWatch Embedded Metric Format (EMF) log lines: no API call, no extra
//! latency, no extra IAM permission.
//!
//! Code records through the `metrics` facade; a function installs the EMF collector of
//! `metrics_cloudwatch_embedded` at cold start and flushes it after every invocation.
//! Values are recorded as histogram observations, which the collector emits exactly once
//! (a gauge would be re-emitted with its old value by every later flush of a warm
//! container, and a stale RPO figure is worse than none).

use metrics::{Label, Unit};
use metrics_cloudwatch_embedded::Collector;

/// The CloudWatch namespace of every Lifeboat metric.
pub const NAMESPACE: &str = "Lifeboat";

/// Install the EMF collector for this process, with the plan as a dimension of every
/// metric. Call once, at cold start.
pub fn init_emf(plan: &str, function: &str) -> Result<&'static Collector, MetricsError> {
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension("Plan", plan.to_string())
        .with_dimension("Function", function.to_string())
        .init()
        .map_err(MetricsError)
}

/// The metrics collector could not be installed (a second install in one process): the
/// function does not start, and a retry in the same process cannot help.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the metrics collector: {0}")]
pub struct MetricsError(#[source] metrics_cloudwatch_embedded::Error);

/// Write the metrics recorded since the last flush as EMF lines on standard output.
pub fn flush(collector: &Collector) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Err(e) = collector.flush(&mut out) {
        tracing::warn!(error = %e, "could not write metrics");
    }
}

/// Record one observation of `name` with its unit and dimensions, e.g.
/// `observe("RpoSeconds", Unit::Seconds, 930.0, &[("Resource", "orders-db".into())])`.
pub fn observe(name: &'static str, unit: Unit, value: f64, dimensions: &[(&'static str, String)]) {
    metrics::describe_histogram!(name, unit, "");
    let labels: Vec<Label> = dimensions
        .iter()
        .map(|(k, v)| Label::new(*k, v.clone()))
        .collect();
    metrics::histogram!(name, labels).record(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test in this binary that installs the global recorder.
    #[test]
    fn observations_become_one_emf_document_each_and_are_emitted_once() {
        let collector = init_emf("orders", "snapshot").expect("first install");
        observe(
            "RpoSeconds",
            Unit::Seconds,
            930.0,
            &[("Resource", "orders-db".into())],
        );
        let mut out = Vec::new();
        collector.flush(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let cw = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Lifeboat");
        assert_eq!(cw["Metrics"][0]["Name"], "RpoSeconds");
        assert_eq!(cw["Metrics"][0]["Unit"], "Seconds");
        let dims: Vec<&str> = cw["Dimensions"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(dims, ["Plan", "Function", "Resource"]);
        assert_eq!(line["Resource"], "orders-db");
        assert_eq!(line["Plan"], "orders");
        assert_eq!(line["RpoSeconds"], serde_json::json!([930.0]));

        let mut again = Vec::new();
        collector.flush(&mut again).unwrap();
        assert!(
            again.is_empty(),
            "an observation is emitted once, not re-emitted by later flushes"
        );
    }
}
