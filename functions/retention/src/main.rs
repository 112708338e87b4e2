//! The retention function: the daily EventBridge schedule tick and operator runs
//! (`{"dry_run": true}`), handed to `lifeboat::retention::run`.

use lifeboat::aws::AwsSnapshots;
use lifeboat::function::{Deployment, serve};
use lifeboat::retention::run::RetentionRun;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = Deployment::start("retention").await?;
    // The snapshot function's adapter: the same listings, the same clients per location.
    let snapshots = AwsSnapshots::new(
        &deployment.plan,
        &deployment.clients,
        &deployment.settings.clients,
    )
    .await;
    let snapshots = &snapshots;
    serve(deployment, move |payload, invocation| async move {
        RetentionRun {
            plan: &deployment.plan,
            port: snapshots,
            state: &deployment.state,
            notifier: &deployment.notifier,
            reports: &deployment.reports,
        }
        .handle(&payload, &invocation)
        .await
    })
    .await
}
