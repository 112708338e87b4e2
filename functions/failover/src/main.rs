//! The failover function: CloudWatch alarm state changes (EventBridge or SNS), schedule
//! ticks and RDS events that resume a failover in progress, and operator commands,
//! handed to `lifeboat::failover::run`; and `{"action": "readiness"}`, the DR readiness
//! report, handed to `lifeboat::aws::answer_readiness` (read-only: it takes no lock).

use lifeboat::aws::{AwsFailover, FailoverAnswer, answer_readiness};
use lifeboat::failover::run::{FailoverError, FailoverRun, SystemClock};
use lifeboat::function::{Deployment, serve};
use lifeboat::readiness::is_readiness_request;

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
        if is_readiness_request(&payload).map_err(FailoverError::BadInput)? {
            let answer = answer_readiness(
                &deployment.plan,
                &deployment.clients,
                &deployment.settings.clients,
                &deployment.state,
                &deployment.reports,
                invocation.now,
                &invocation.request_id,
            )
            .await;
            return Ok(FailoverAnswer::Readiness(Box::new(answer)));
        }
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
        .map(|reply| FailoverAnswer::Dr(Box::new(reply)))
    })
    .await
}
