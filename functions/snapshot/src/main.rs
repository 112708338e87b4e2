//! The snapshot function: EventBridge schedule ticks, RDS snapshot events and operator
//! requests, handed to `lifeboat::backup::run`.

use lifeboat::aws::AwsSnapshots;
use lifeboat::backup::run::SnapshotRun;
use lifeboat::function::{Deployment, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = Deployment::start("snapshot").await?;
    let snapshots = AwsSnapshots::new(
        &deployment.plan,
        &deployment.clients,
        &deployment.settings.clients,
    )
    .await;
    let snapshots = &snapshots;
    serve(deployment, move |payload, invocation| async move {
        SnapshotRun {
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
