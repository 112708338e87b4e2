//! The recovery function: point-in-time recovery from damage done inside (`recover`,
//! `recovery-status`, `cutover`, `discard`), moved on by its schedule tick and the RDS
//! events of recovered databases. A cutover changes the writer, so the recoveries share
//! the DR document, and its lock, with failover and failback (`lifeboat::recovery`).

use lifeboat::aws::AwsRecovery;
use lifeboat::config::env_lookup;
use lifeboat::dr::run::SystemClock;
use lifeboat::function::{Deployment, serve};
use lifeboat::recovery::event::parse_input;
use lifeboat::recovery::run::RecoveryRun;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = Deployment::start("recovery").await?;
    let (plan, settings) = (&deployment.plan, &deployment.settings.clients);
    let port = match AwsRecovery::new(plan, &deployment.clients, settings, &env_lookup).await {
        Ok(port) => port,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return Err(e.into());
        }
    };
    let recoveries = &RecoveryRun {
        plan,
        port: &port,
        state: &deployment.state,
        notifier: &deployment.notifier,
        reports: &deployment.reports,
        clock: &SystemClock,
    };
    serve(deployment, move |payload, invocation| async move {
        let input = parse_input(&payload)?;
        recoveries.handle(input, &invocation).await
    })
    .await
}
