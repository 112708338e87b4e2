//! The failover function: CloudWatch alarm state changes (EventBridge or SNS), schedule
//! ticks and RDS events that resume a failover in progress, and operator commands; and
//! game days (`game-day`, `game-day-status`). `lifeboat::aws::FailoverFunction` routes
//! each to its part. Game days are here because a game day exercises this function's
//! failover, watches the DR state it owns, and moves on with every event it handles.

use lifeboat::aws::{AwsFailover, AwsGameDay, FailoverFunction};
use lifeboat::config::env_lookup;
use lifeboat::dr::run::SystemClock;
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
    let game_days = match AwsGameDay::new(
        &deployment.plan,
        &deployment.clients,
        &deployment.settings.clients,
        &deployment.settings.report_bucket,
        &env_lookup,
    )
    .await
    {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return Err(e.into());
        }
    };
    let function = FailoverFunction {
        plan: &deployment.plan,
        failover: &aws,
        game_days: &game_days,
        state: &deployment.state,
        notifier: &deployment.notifier,
        reports: &deployment.reports,
        clock: &SystemClock,
    };
    let function = &function;
    serve(deployment, move |payload, invocation| async move {
        function.handle(&payload, &invocation).await
    })
    .await
}
