//! The failback function: operator commands (start, status, pause, resume, abort) and
//! schedule ticks that carry a failback in progress forward, handed to
//! `lifeboat::failback::run`.

use lifeboat::aws::AwsFailback;
use lifeboat::dr::run::SystemClock;
use lifeboat::failback::run::FailbackRun;
use lifeboat::function::{Deployment, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = Deployment::start("failback").await?;
    let aws = AwsFailback::new(
        &deployment.plan,
        &deployment.clients,
        &deployment.settings.clients,
    )
    .await;
    let aws = &aws;
    serve(deployment, move |payload, invocation| async move {
        FailbackRun {
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
