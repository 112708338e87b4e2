//! The failover function: CloudWatch alarm state changes (EventBridge or SNS), schedule
//! ticks and RDS events that resume a failover in progress, and operator commands,
//! handed to `lifeboat::failover::run`; `{"action": "readiness"}`, the DR readiness
//! report, handed to `lifeboat::aws::answer_readiness` (read-only: it takes no lock);
//! and the point-in-time recovery commands (`recover`, `recovery-status`, `cutover`,
//! `discard`), handed to `lifeboat::recovery::run`. Recovery lives here because its
//! cutover changes the writer: it shares the failover's lock, DNS record and fencing, and
//! its ticks. Game days (`game-day`, `game-day-status`) are here too, handed to
//! `lifeboat::gameday::run`: a game day exercises this function's failover, watches the
//! DR state it owns, and moves on with every event it handles.

use lifeboat::aws::{AwsFailover, AwsGameDay, AwsRecovery, FailoverAnswer, answer_readiness};
use lifeboat::config::env_lookup;
use lifeboat::failover::run::{FailoverError, FailoverRun, SystemClock};
use lifeboat::function::{Deployment, serve};
use lifeboat::gameday::run::{GameDayInput, GameDayRun};
use lifeboat::readiness::is_readiness_request;
use lifeboat::recovery::RecoveryInput;
use lifeboat::recovery::run::{RecoveryRun, parse_command};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = Deployment::start("failover").await?;
    let aws = AwsFailover::new(
        &deployment.plan,
        &deployment.clients,
        &deployment.settings.clients,
    )
    .await;
    let recovery = match AwsRecovery::new(
        &deployment.plan,
        &deployment.clients,
        &deployment.settings.clients,
        &env_lookup,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return Err(e.into());
        }
    };
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
    let (aws, recovery, game_days) = (&aws, &recovery, &game_days);
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
            return Ok::<_, FailoverError>(FailoverAnswer::Readiness(Box::new(answer)));
        }
        let recoveries = RecoveryRun {
            plan: &deployment.plan,
            port: recovery,
            state: &deployment.state,
            notifier: &deployment.notifier,
            reports: &deployment.reports,
            clock: &SystemClock,
        };
        if let Some(command) = parse_command(&payload).map_err(FailoverError::BadInput)? {
            let reply = recoveries
                .handle(RecoveryInput::Command(command), &invocation)
                .await?;
            return Ok(FailoverAnswer::Recovery(Box::new(reply)));
        }
        let failover = FailoverRun {
            plan: &deployment.plan,
            port: aws,
            state: &deployment.state,
            notifier: &deployment.notifier,
            reports: &deployment.reports,
            clock: &SystemClock,
        };
        let game_day = GameDayRun {
            plan: &deployment.plan,
            port: game_days,
            dr: &failover,
            state: &deployment.state,
            notifier: &deployment.notifier,
            reports: &deployment.reports,
            clock: &SystemClock,
        };
        if let Some(input) =
            lifeboat::gameday::run::parse_command(&payload).map_err(FailoverError::BadInput)?
        {
            let reply = game_day.handle(input, &invocation).await?;
            return Ok(FailoverAnswer::GameDay(Box::new(reply)));
        }
        let reply = failover.handle(&payload, &invocation).await?;
        // Every other event is also the recoveries' tick: a restore in progress moves on.
        if let Err(e) = recoveries.advance(&invocation).await {
            tracing::warn!(error = %e, "recoveries not advanced; the next tick retries");
        }
        // And the game day's: it follows the failover (and the failback) it set off.
        if let Err(e) = game_day.handle(GameDayInput::DrObserved, &invocation).await {
            tracing::warn!(error = %e, "game day not advanced; the next tick retries");
        }
        Ok(FailoverAnswer::Dr(Box::new(reply)))
    })
    .await
}
