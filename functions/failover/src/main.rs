//! The failover function: CloudWatch alarm state changes (EventBridge or SNS), schedule
//! ticks and RDS events that resume a failover in progress, and operator commands,
//! handed to `lifeboat::failover::run`.

use lifeboat::aws::AwsFailover;
use lifeboat::failover::run::{FailoverRun, SystemClock};
use lifeboat::function::{Deployment, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = Deployment::start("failover").await?;
    let aws = AwsFailover::new(
        &deployment.plan,
        &deployment.clients,
        &deployment.settings.clients,
    )
    .await;
    let aws = &aws;
    serve(deployment, move |payload, invocation| async move {
        FailoverRun {
            plan: &deployment.plan,
            port: aws,
            state: &deployment.state,
            notifier: &deployment.notifier,
            reports: &deployment.reports,
            clock: &SystemClock,
        }
        .handle(&payload, &invocation)
        .await
    })
    .await
}
