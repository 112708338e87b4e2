//! Run reports: one JSON document per run in the report bucket, for people and tools.

use crate::error::{AwsError, Classify, Retry};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A report could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("report not written: {0}")]
pub struct ReportError(#[from] pub AwsError);

impl Classify for ReportError {
    fn retry(&self) -> Retry {
        self.0.retry()
    }
}

/// The report port.
#[async_trait]
pub trait ReportSink: Send + Sync {
    /// Store `report` under `key`; returns where it went (an `s3://` URI).
    async fn put_report(
        &self,
        key: &str,
        report: &serde_json::Value,
    ) -> Result<String, ReportError>;
}

/// Where a run's report goes: `<plan>/<function>/YYYY/MM/DD/<time>-<run>.json`, so a
/// listing by prefix finds a day's runs in order.
pub fn report_key(plan: &str, function: &str, run: &str, at: DateTime<Utc>) -> String {
    let safe_run: String = run
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "{plan}/{function}/{}/{}-{safe_run}.json",
        at.format("%Y/%m/%d"),
        at.format("%Y%m%dT%H%M%SZ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_sort_by_day_and_time_and_are_safe() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 6, 7, 8).unwrap();
        assert_eq!(
            report_key("orders", "snapshot", "evt/1 2", at),
            "orders/snapshot/2026/11/25/20261125T060708Z-evt-1-2.json"
        );
    }
}

/// A report sink that keeps reports in memory, for unit tests of orchestration.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryReports {
    /// Reports by key.
    pub stored: std::sync::Mutex<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[cfg(test)]
#[async_trait]
impl ReportSink for MemoryReports {
    async fn put_report(
        &self,
        key: &str,
        report: &serde_json::Value,
    ) -> Result<String, ReportError> {
        self.stored
            .lock()
            .unwrap()
            .insert(key.to_string(), report.clone());
        Ok(format!("memory://{key}"))
    }
}
