//! The failover function's handler: each invocation routed ([`crate::failover::route`])
//! to a game-day command or the failover itself, which also moves game days on. `main.rs` builds the
//! ports once and serves this; tests call it in-process the same way.

use super::{AwsFailover, AwsGameDay, FailoverAnswer};
use crate::dr::run::Clock;
use crate::failover::route::{FailoverRoute, route};
use crate::failover::run::{FailoverError, FailoverRun};
use crate::function::Invocation;
use crate::gameday::run::{GameDayInput, GameDayRun};
use crate::notify::Notifier;
use crate::plan::Plan;
use crate::report::ReportSink;
use crate::state::StateStore;

/// The failover function's edges, built once per cold start.
pub struct FailoverFunction<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The failover's port.
    pub failover: &'a AwsFailover,
    /// The game days' port.
    pub game_days: &'a AwsGameDay,
    /// The state table.
    pub state: &'a dyn StateStore,
    /// The SNS topic.
    pub notifier: &'a dyn Notifier,
    /// The report bucket.
    pub reports: &'a dyn ReportSink,
    /// The clock.
    pub clock: &'a dyn Clock,
}

impl FailoverFunction<'_> {
    /// Answer one invocation.
    pub async fn handle(
        &self,
        payload: &serde_json::Value,
        invocation: &Invocation,
    ) -> Result<FailoverAnswer, FailoverError> {
        let routed = route(payload).map_err(|e| FailoverError::BadInput(e.0))?;
        let failover = FailoverRun {
            plan: self.plan,
            port: self.failover,
            state: self.state,
            notifier: self.notifier,
            reports: self.reports,
            clock: self.clock,
        };
        let game_day = GameDayRun {
            plan: self.plan,
            port: self.game_days,
            dr: &failover,
            state: self.state,
            notifier: self.notifier,
            reports: self.reports,
            clock: self.clock,
        };
        if let FailoverRoute::GameDay(input) = routed {
            let reply = game_day.handle(input, invocation).await?;
            return Ok(FailoverAnswer::GameDay(Box::new(reply)));
        }
        let reply = failover.handle(payload, invocation).await?;
        // Every other event is also the game day's tick: it follows the failover (and the
        // failback) it set off.
        if let Err(e) = game_day.handle(GameDayInput::DrObserved, invocation).await {
            tracing::warn!(error = %e, "game day not advanced; the next tick retries");
        }
        Ok(FailoverAnswer::Dr(Box::new(reply)))
    }
}
