//! The restore-validator function: schedules, ticks, RDS events and operator requests,
//! handed to `lifeboat::validation::run`, which restores a snapshot into a throw-away
//! database, checks it with SQL, tears it down and records the result.

use lifeboat::aws::AwsValidation;
use lifeboat::config::env_lookup;
use lifeboat::dr::run::SystemClock;
use lifeboat::function::{Deployment, serve};
use lifeboat::validation::run::ValidationRunner;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = Deployment::start("restore-validator").await?;
    let aws = match AwsValidation::new(
        &deployment.plan,
        &deployment.clients,
        &deployment.settings.clients,
        &env_lookup,
    ) {
        Ok(aws) => aws,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return Err(e.into());
        }
    };
    let aws = &aws;
    serve(deployment, move |payload, invocation| async move {
        ValidationRunner {
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
