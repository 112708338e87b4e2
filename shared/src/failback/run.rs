//! The failback function's side of the DR executor ([`crate::dr::run`]).

use super::{
    DatabaseShape, FailbackFacts, FailbackInput, FbAction, FbOutcome, FbTargetFacts, absorb,
    parse_input, step,
};
use crate::dr::run::{Clock, DrError, DrReply, Edges, Intent, Machine, OutcomeRecord, drive};
use crate::dr::{Decision, DrState, Side, TrafficFacts};
use crate::error::AwsError;
use crate::failover::{AlarmReading, FenceOutcome, replicated};
use crate::function::Invocation;
use crate::metrics::observe;
use crate::notify::Notifier;
use crate::plan::{AlarmRef, Plan, ProtectedResource};
use crate::report::{ReportSink, report_key};
use crate::state::{Outcome, StateStore};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// How long a failback invocation polls before leaving the wait to the next tick.
const POLL_BUDGET_SECONDS: i64 = 90;

/// The failback port: reads and actions in RDS, Route 53 and CloudWatch.
#[async_trait]
pub trait FailbackPort: Send + Sync {
    /// These alarms, read back from CloudWatch.
    async fn read_alarms(&self, plan: &Plan, alarms: &[AlarmRef]) -> Vec<AlarmReading>;
    /// A replicated resource on both sides, the lag of whichever side replicates, the
    /// writer record, and the state of a Route 53 change when given. Never fails.
    async fn read_target(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        change: Option<&str>,
    ) -> FbTargetFacts;
    /// The application traffic records' weights, and the state of a change when given.
    async fn read_traffic(&self, plan: &Plan, change: Option<&str>) -> TrafficFacts;
    /// Delete a database on `side` after a final snapshot (idempotent).
    async fn retire(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        side: Side,
        final_snapshot: &str,
    ) -> Result<(), AwsError>;
    /// Create a cross-region read replica on `side` of the writer on the other side, set
    /// up `like` the database it replaces when that is known (idempotent).
    async fn create_replica(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        side: Side,
        like: Option<&DatabaseShape>,
    ) -> Result<(), AwsError>;
    /// Promote the primary-region replica (Aurora: planned switchover to it).
    async fn promote_primary(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
    ) -> Result<(), AwsError>;
    /// Stop the database on `side`; an unreachable region or nothing to stop is an outcome.
    async fn stop(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        side: Side,
    ) -> Result<FenceOutcome, AwsError>;
    /// UPSERT the writer record; returns the Route 53 change id.
    async fn switch_record(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError>;
    /// Weigh the application traffic records; returns the Route 53 change id.
    async fn set_traffic(&self, plan: &Plan, primary_percent: u32) -> Result<String, AwsError>;
}

/// Everything the failback function needs.
pub struct FailbackRun<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// RDS, Route 53, CloudWatch.
    pub port: &'a dyn FailbackPort,
    /// The state table.
    pub state: &'a dyn StateStore,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Reports.
    pub reports: &'a dyn ReportSink,
    /// Time.
    pub clock: &'a dyn Clock,
}

impl FailbackRun<'_> {
    /// Handle one invocation payload.
    pub async fn handle(
        &self,
        payload: &serde_json::Value,
        invocation: &Invocation,
    ) -> Result<DrReply, DrError> {
        let input = parse_input(payload).map_err(|e| DrError::BadInput(e.0))?;
        let edges = Edges {
            state: self.state,
            notifier: self.notifier,
            clock: self.clock,
        };
        let trigger = match &input {
            FailbackInput::Tick => "tick".to_string(),
            other => format!("operator {other:?}"),
        };
        drive(self, &edges, input, &trigger, invocation).await
    }
}

fn action_word(a: &FbAction) -> (&'static str, &str) {
    match a {
        FbAction::Retire { resource, .. } => ("failback.retire", resource),
        FbAction::CreateReplica { resource, .. } => ("failback.create-replica", resource),
        FbAction::SwitchRecord { resource, .. } => ("failback.switch-dns", resource),
        FbAction::PromotePrimary { resource } => ("failback.promote", resource),
        FbAction::Stop { resource, .. } => ("failback.stop-dr-writer", resource),
        FbAction::SetTraffic { .. } => ("failback.traffic", "traffic"),
    }
}

/// What an action does, in a sentence for the timeline.
fn sentence(action: &FbAction) -> String {
    match action {
        FbAction::Retire {
            resource,
            side,
            final_snapshot,
        } => format!(
            "delete {resource}'s old writer on the {side} side after a final snapshot {final_snapshot}"
        ),
        FbAction::CreateReplica {
            resource,
            side,
            like,
        } => match like {
            Some(l) => format!(
                "create {resource}'s replica on the {side} side, set up like the database it replaces ({}{}{})",
                l.instance_class,
                l.subnet_group
                    .as_ref()
                    .map(|g| format!(", subnet group {g}"))
                    .unwrap_or_default(),
                if l.multi_az { ", Multi-AZ" } else { "" }
            ),
            None => format!(
                "create {resource}'s replica on the {side} side, sized like its source (the database it replaces was not seen)"
            ),
        },
        FbAction::SwitchRecord { resource, endpoint } => {
            format!("point {resource}'s writer record at {endpoint}")
        }
        FbAction::PromotePrimary { resource } => {
            format!("promote {resource}'s primary-region replica to writer")
        }
        FbAction::Stop { resource, side } => {
            format!("stop {resource}'s old writer on the {side} side")
        }
        FbAction::SetTraffic { primary_percent } => {
            format!("send {primary_percent} % of application traffic to the primary region")
        }
    }
}

#[async_trait]
impl Machine for FailbackRun<'_> {
    type Input = FailbackInput;
    type Facts = FailbackFacts;
    type Action = FbAction;
    type Outcome = FbOutcome;

    fn function(&self) -> &'static str {
        "failback"
    }

    fn plan(&self) -> &Plan {
        self.plan
    }

    fn tick(&self) -> FailbackInput {
        FailbackInput::Tick
    }

    fn needs_facts(&self, state: &DrState, input: &FailbackInput) -> bool {
        matches!(input, FailbackInput::Start | FailbackInput::Abort)
            || (matches!(state, DrState::FailingBack(_))
                && matches!(input, FailbackInput::Tick | FailbackInput::Resume))
    }

    async fn gather(&self, state: &DrState) -> FailbackFacts {
        let health = self
            .port
            .read_alarms(self.plan, &self.plan.failover.health_alarms)
            .await;
        let gates = self
            .port
            .read_alarms(self.plan, &self.plan.failback.gate_alarms)
            .await;
        let mut targets = Vec::new();
        for r in replicated(self.plan) {
            let change = match state {
                DrState::FailingBack(f) => f
                    .targets
                    .iter()
                    .find(|t| t.resource == r.id)
                    .and_then(|t| t.fence_change.clone()),
                _ => None,
            };
            targets.push(self.port.read_target(self.plan, r, change.as_deref()).await);
        }
        let traffic = if self.plan.failback.traffic.is_empty() {
            TrafficFacts::default()
        } else {
            let change = match state {
                DrState::FailingBack(f) => f
                    .shift
                    .as_ref()
                    .and_then(|s| s.change.as_ref())
                    .map(|c| c.change.clone()),
                _ => None,
            };
            self.port.read_traffic(self.plan, change.as_deref()).await
        };
        FailbackFacts {
            health,
            gates,
            targets,
            traffic,
        }
    }

    fn decide(
        &self,
        state: &DrState,
        input: &FailbackInput,
        facts: &FailbackFacts,
        now: DateTime<Utc>,
    ) -> Decision<FbAction> {
        step(self.plan, state, input, facts, now)
    }

    async fn perform(&self, action: &FbAction) -> FbOutcome {
        let failed = |e: AwsError| FbOutcome::Failed {
            action: action.clone(),
            error: e.to_string(),
        };
        let done = |result: Result<(), AwsError>| match result {
            Ok(()) => FbOutcome::Done {
                action: action.clone(),
            },
            Err(e) => failed(e),
        };
        let resource = match action {
            FbAction::SetTraffic { .. } => None,
            other => {
                let (_, id) = action_word(other);
                match self.plan.resource(id) {
                    Some(r) => Some(r),
                    None => {
                        return failed(AwsError::bad_request(
                            "rds",
                            "failback",
                            id,
                            "not in the plan",
                        ));
                    }
                }
            }
        };
        match (action, resource) {
            (FbAction::SetTraffic { primary_percent }, _) => {
                match self.port.set_traffic(self.plan, *primary_percent).await {
                    Ok(change) => FbOutcome::TrafficSet {
                        primary_percent: *primary_percent,
                        change,
                    },
                    Err(e) => failed(e),
                }
            }
            (
                FbAction::Retire {
                    side,
                    final_snapshot,
                    ..
                },
                Some(r),
            ) => done(self.port.retire(self.plan, r, *side, final_snapshot).await),
            (FbAction::CreateReplica { side, like, .. }, Some(r)) => done(
                self.port
                    .create_replica(self.plan, r, *side, like.as_ref())
                    .await,
            ),
            (FbAction::PromotePrimary { .. }, Some(r)) => {
                done(self.port.promote_primary(self.plan, r).await)
            }
            (FbAction::Stop { side, .. }, Some(r)) => {
                match self.port.stop(self.plan, r, *side).await {
                    Ok(outcome) => FbOutcome::Stopped {
                        resource: r.id.clone(),
                        outcome,
                    },
                    Err(e) => failed(e),
                }
            }
            (FbAction::SwitchRecord { endpoint, .. }, Some(r)) => {
                match self.port.switch_record(self.plan, r, endpoint).await {
                    Ok(change) => FbOutcome::Switched {
                        resource: r.id.clone(),
                        change,
                    },
                    Err(e) => failed(e),
                }
            }
            (_, None) => failed(AwsError::bad_request(
                "rds",
                "failback",
                "?",
                "an action without a resource",
            )),
        }
    }

    fn absorb(&self, state: &DrState, outcomes: &[FbOutcome], now: DateTime<Utc>) -> DrState {
        absorb(state, outcomes, now)
    }

    fn describe(&self, outcome: &FbOutcome) -> OutcomeRecord {
        let (action, resource, kind, detail, failed) = match outcome {
            FbOutcome::Done { action } => {
                let (word, id) = action_word(action);
                (
                    word,
                    id.to_string(),
                    Outcome::Started,
                    sentence(action),
                    false,
                )
            }
            FbOutcome::Switched { resource, change } => (
                "failback.switch-dns",
                resource.clone(),
                Outcome::Started,
                format!("record change {change}"),
                false,
            ),
            FbOutcome::TrafficSet {
                primary_percent,
                change,
            } => (
                "failback.traffic",
                "traffic".into(),
                Outcome::Started,
                format!(
                    "{primary_percent} % of application traffic to the primary region (change {change})"
                ),
                false,
            ),
            FbOutcome::Stopped { resource, outcome } => (
                "failback.stop-dr-writer",
                resource.clone(),
                Outcome::Succeeded,
                format!("the old DR writer: {outcome}"),
                false,
            ),
            FbOutcome::Failed { action, error } => {
                let (word, id) = action_word(action);
                (
                    word,
                    id.to_string(),
                    Outcome::Failed,
                    format!("{}: {error}", sentence(action)),
                    true,
                )
            }
        };
        OutcomeRecord {
            action: action.into(),
            resource,
            outcome: kind,
            detail,
            failed,
        }
    }

    fn intent(&self, action: &FbAction) -> Intent {
        let (word, id) = action_word(action);
        Intent {
            action: word.into(),
            resource: id.into(),
            detail: sentence(action),
        }
    }

    /// Failback's waits are long (replica creation, catch-up, bake) and the schedule
    /// ticks every minute: an invocation polls the short ones only, so an operator's
    /// command answers promptly and ticks do not pile up polling the same wait.
    fn poll_budget(&self) -> Option<Duration> {
        Some(Duration::seconds(POLL_BUDGET_SECONDS))
    }

    fn refusal_is_error(&self, input: &FailbackInput, _decision: &Decision<FbAction>) -> bool {
        !matches!(input, FailbackInput::Tick)
    }

    async fn reached(
        &self,
        before: &DrState,
        after: &DrState,
        now: DateTime<Utc>,
        run: &str,
    ) -> Option<String> {
        let (DrState::FailingBack(f), DrState::Normal { .. }) = (before, after) else {
            return None;
        };
        let steps = f.time_in_steps(now);
        let total = (now - f.marks.first().map(|m| m.at).unwrap_or(now)).num_seconds();
        observe("FailbackSeconds", metrics::Unit::Seconds, total as f64, &[]);
        let timeline = self
            .state
            .timeline(&self.plan.name, Some(now - Duration::days(2)))
            .await
            .unwrap_or_default();
        let report = serde_json::json!({
            "plan": self.plan.name,
            "failback": f.id,
            "undoing": f.from.incident,
            "completed_at": now,
            "seconds": total,
            "time_in_steps": steps.iter().map(|(s, secs)| serde_json::json!({"step": s.to_string(), "seconds": secs})).collect::<Vec<_>>(),
            "traffic_stages": f.shift.as_ref().map(|s| s.held.clone()),
            "targets": f.targets,
            "timeline": timeline,
        });
        match self
            .reports
            .put_report(
                &report_key(&self.plan.name, "failback", &f.id, now),
                &report,
            )
            .await
        {
            Ok(uri) => Some(uri),
            Err(e) => {
                tracing::warn!(error = %e, run, "failback report not written");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
