//! A function's configuration, read once at cold start through a lookup function (the
//! process environment in Lambda; a map in tests, since `set_var` is unsafe).

use crate::aws::ClientSettings;
use crate::plan::{PlanError, PlanSource};

/// The state table's name.
pub const STATE_TABLE_ENV: &str = "LIFEBOAT_STATE_TABLE";
/// The SNS topic's ARN.
pub const TOPIC_ARN_ENV: &str = "LIFEBOAT_TOPIC_ARN";
/// The report bucket's name.
pub const REPORT_BUCKET_ENV: &str = "LIFEBOAT_REPORT_BUCKET";
/// Optional KMS key for reports (SSE-KMS); SSE-S3 without it.
pub const REPORT_KMS_KEY_ENV: &str = "LIFEBOAT_REPORT_KMS_KEY_ID";

/// Where a function's plan and state live, and how its clients are built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the plan is.
    pub plan_source: PlanSource,
    /// The DynamoDB state table.
    pub state_table: String,
    /// The SNS topic for notifications.
    pub topic_arn: String,
    /// The S3 bucket for reports.
    pub report_bucket: String,
    /// KMS key for reports, if not SSE-S3.
    pub report_kms_key_id: Option<String>,
    /// The function's own region (`AWS_REGION`), where the table, topic and bucket live.
    pub home_region: Option<String>,
    /// How to build clients.
    pub clients: ClientSettings,
}

/// A configuration variable is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{name} is not set: {fix}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What to set it to.
        fix: &'static str,
    },
    /// The plan's source is missing or ambiguous.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl Settings {
    /// Read the settings; every missing variable is reported with what to set.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str, fix: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing { name, fix })
        };
        Ok(Settings {
            plan_source: PlanSource::from_lookup(lookup)?,
            state_table: required(
                STATE_TABLE_ENV,
                "the name of Lifeboat's DynamoDB state table (the SAM template sets it)",
            )?,
            topic_arn: required(
                TOPIC_ARN_ENV,
                "the ARN of the SNS topic operators subscribe to (the SAM template sets it)",
            )?,
            report_bucket: required(
                REPORT_BUCKET_ENV,
                "the name of the S3 bucket for run reports (the SAM template sets it)",
            )?,
            report_kms_key_id: lookup(REPORT_KMS_KEY_ENV).filter(|v| !v.trim().is_empty()),
            home_region: lookup("AWS_REGION").filter(|v| !v.trim().is_empty()),
            clients: ClientSettings::from_lookup(lookup),
        })
    }
}

/// The process environment as a lookup function.
pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_every_setting_and_the_endpoint() {
        let l = lookup(&[
            ("LIFEBOAT_PLAN_PATH", "infra/plans/local.json"),
            (STATE_TABLE_ENV, "lifeboat-state"),
            (TOPIC_ARN_ENV, "arn:aws:sns:us-west-2:123456789012:lifeboat"),
            (REPORT_BUCKET_ENV, "lifeboat-reports"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ]);
        let s = Settings::from_lookup(&l).unwrap();
        assert_eq!(
            s.plan_source,
            PlanSource::Path("infra/plans/local.json".into())
        );
        assert_eq!(
            s.clients.endpoint_url.as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(s.home_region.as_deref(), Some("us-west-2"));
        assert_eq!(s.clients.max_attempts, 4);
    }

    #[test]
    fn a_missing_variable_is_named_with_its_fix() {
        let l = lookup(&[("LIFEBOAT_PLAN", "{}"), (STATE_TABLE_ENV, "t")]);
        let err = Settings::from_lookup(&l).unwrap_err();
        assert_eq!(
            err.to_string(),
            "LIFEBOAT_TOPIC_ARN is not set: the ARN of the SNS topic operators subscribe to (the SAM template sets it)"
        );
    }

    #[test]
    fn two_plan_sources_are_ambiguous_and_a_bad_s3_uri_is_named() {
        let l = lookup(&[("LIFEBOAT_PLAN", "{}"), ("LIFEBOAT_PLAN_PATH", "p.json")]);
        let err = PlanSource::from_lookup(&l).unwrap_err().to_string();
        assert!(
            err.contains("LIFEBOAT_PLAN and LIFEBOAT_PLAN_PATH are all set"),
            "{err}"
        );
        let l = lookup(&[("LIFEBOAT_PLAN_S3_URI", "bucket/key")]);
        let err = PlanSource::from_lookup(&l).unwrap_err().to_string();
        assert!(err.contains("is not an s3://bucket/key URI"), "{err}");
        let l = lookup(&[("LIFEBOAT_PLAN_S3_URI", "s3://b/plans/p.json")]);
        assert_eq!(
            PlanSource::from_lookup(&l).unwrap(),
            PlanSource::S3 {
                bucket: "b".into(),
                key: "plans/p.json".into()
            }
        );
        let err = PlanSource::from_lookup(&lookup(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "none of LIFEBOAT_PLAN, LIFEBOAT_PLAN_PATH or LIFEBOAT_PLAN_S3_URI is set"
            )
        );
    }

    #[test]
    fn attempts_outside_bounds_fall_back_to_the_default() {
        for (v, expect) in [("7", 7), ("0", 4), ("99", 4), ("x", 4)] {
            let s = ClientSettings::from_lookup(&lookup(&[("LIFEBOAT_MAX_ATTEMPTS", v)]));
            assert_eq!(s.max_attempts, expect, "{v}");
        }
    }
}
