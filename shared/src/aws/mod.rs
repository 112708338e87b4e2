//! The edges: AWS SDK clients and the adapters that implement Lifeboat's ports.
//!
//! Clients are built once per cold start (outside the handler) and reused by every
//! invocation. They honour `AWS_ENDPOINT_URL`, so everything runs against the local
//! emulator as it does against AWS.

mod canary_writer;
mod clients;
mod detection;
mod dr;
mod dynamo_state;
mod failback;
mod failover;
mod failover_function;
mod gameday;
mod posture;
mod readiness;
mod recovery;
mod retention;
mod s3_reports;
mod snapshots;
mod sns_notifier;
mod sql_probe;
pub mod traffic;
mod validation;

pub use canary_writer::{CanaryError, write_canary};
pub use clients::{AwsClients, ClientSettings, RegionalClients};
pub use detection::{AwsDetection, probe};
pub use dynamo_state::{DynamoStateStore, STATE_TABLE_TTL_ATTRIBUTE};
pub use failback::AwsFailback;
pub use failover::AwsFailover;
pub use failover_function::FailoverFunction;
pub use gameday::{AwsGameDay, FAILBACK_FUNCTION_ENV, FIS_TEMPLATE_ENV, LAMBDA_ENDPOINT_ENV};
pub use posture::{
    describe_cluster, describe_instance, describe_table, gather_posture, read_cname,
    resolve_hosted_zone,
};
pub use readiness::{
    FailoverAnswer, ReadinessAnswer, ReadinessRun, answer_readiness, gather_readiness,
};
pub use recovery::AwsRecovery;
pub use s3_reports::S3Reports;
pub use snapshots::AwsSnapshots;
pub use sns_notifier::SnsNotifier;
pub use sql_probe::SqlProbe;
pub use validation::{
    AwsValidation, LOCAL_DATABASE_URLS_ENV, LocalDatabase, LocalDatabaseError, ProbeTargetError,
    UrlError, local_databases,
};

use crate::error::AwsError;
use crate::plan::{Plan, PlanError, PlanSource, load_plan_text, parse_plan};

/// Read, parse and validate the plan from its source, fetching it from S3 when the
/// source is an S3 object (the deployed form).
pub async fn load_plan(source: &PlanSource, s3: &aws_sdk_s3::Client) -> Result<Plan, PlanError> {
    let text = match source {
        PlanSource::S3 { bucket, key } => {
            let unreadable = |reason: String| PlanError::Unreadable {
                source_name: source.describe(),
                reason,
                fix: "check that the object exists and the function's role may s3:GetObject it"
                    .into(),
            };
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    unreadable(
                        AwsError::from_sdk("s3", "GetObject", source.describe(), &e).to_string(),
                    )
                })?;
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| unreadable(e.to_string()))?
                .into_bytes();
            String::from_utf8(bytes.to_vec())
                .map_err(|_| unreadable("the object is not UTF-8 text".into()))?
        }
        local => load_plan_text(local)?,
    };
    parse_plan(&text)
}
