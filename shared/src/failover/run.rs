//! The failover function's side of the DR executor ([`crate::dr::run`]): its inputs,
//! the facts it reads, and the actions it takes, through the [`FailoverPort`].

use super::{
    Action, ActionResult, FailoverFacts, FailoverInput, FenceOutcome, Step, TargetFacts, absorb,
    cooldown_runs,
    event::{check_fire_time, parse_input},
    replicated, step,
};
use crate::detection::{Confirmation, Readings};
use crate::dr::run::{Edges, Intent, Machine, OutcomeRecord, drive};
use crate::dr::{Decision, DrState, TrafficFacts};
use crate::error::AwsError;
use crate::function::Invocation;
use crate::metrics::observe;
use crate::notify::Notifier;
use crate::plan::{Plan, ProtectedResource};
use crate::report::{ReportSink, report_key};
use crate::state::{self, Outcome, StateStore};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

pub use crate::dr::run::{
    Clock, DrDocument, DrError as FailoverError, DrReply as FailoverReply, Lease, SystemClock,
    dr_key,
};

/// The failover port: reads and actions in RDS, Route 53 and CloudWatch.
#[async_trait]
pub trait FailoverPort: Send + Sync {
    /// The detection signals the plan names ([`crate::detection`]), read from the DR
    /// side. Never fails: what cannot be read says so.
    async fn read_signals(&self, plan: &Plan) -> Readings;
    /// A replicated resource's primary, replica, lag, record, and the state of a Route 53
    /// change when one is given. Never fails: what cannot be read says so.
    async fn read_target(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        change: Option<&str>,
    ) -> TargetFacts;
    /// The application traffic records' weights, and the state of a change when given.
    async fn read_traffic(&self, plan: &Plan, change: Option<&str>) -> TrafficFacts;
    /// Promote the resource's DR replica.
    async fn promote(&self, plan: &Plan, resource: &ProtectedResource) -> Result<(), AwsError>;
    /// Stop the old primary where it is reachable. An unreachable region, or nothing to
    /// stop, is an outcome; only a transient failure (throttling, 5xx) is an error, and
    /// the next look tries again.
    async fn fence(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
    ) -> Result<FenceOutcome, AwsError>;
    /// UPSERT the writer record to `endpoint`; returns the Route 53 change id.
    async fn switch_record(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError>;
    /// Weigh the application traffic records; returns the Route 53 change id.
    async fn set_traffic(&self, plan: &Plan, primary_percent: u32) -> Result<String, AwsError>;
}

/// Everything the failover function needs.
pub struct FailoverRun<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// RDS, Route 53, CloudWatch.
    pub port: &'a dyn FailoverPort,
    /// The state table.
    pub state: &'a dyn StateStore,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Reports.
    pub reports: &'a dyn ReportSink,
    /// Time.
    pub clock: &'a dyn Clock,
}

fn trigger_of(input: &FailoverInput) -> String {
    match input {
        FailoverInput::Alarm(a) => format!("alarm {} {}", a.name, a.value),
        FailoverInput::Tick => "tick".into(),
        FailoverInput::Command(c) => format!("operator {c:?}"),
    }
}

#[async_trait]
impl crate::gameday::run::DrCommands for FailoverRun<'_> {
    async fn acknowledge(&self, invocation: &Invocation) -> Result<(), FailoverError> {
        // Acknowledged already (or no cooldown to begin with): what was wanted, and the
        // `ack` command would refuse it.
        let stored = state::load::<DrDocument>(self.state, &dr_key(self.plan)).await?;
        if !stored.is_some_and(|v| cooldown_runs(&v.value.state, self.clock.now())) {
            return Ok(());
        }
        self.handle(&serde_json::json!({"action": "ack"}), invocation)
            .await
            .map(|_| ())
    }
}

/// The detection's votes as metrics, by outcome, so a dashboard shows why Lifeboat did
/// or did not act.
fn observe_detection(c: &Confirmation) {
    let outcome = vec![("Outcome", c.outcome.to_string())];
    observe(
        "FailoverDetectionFailingVotes",
        metrics::Unit::Count,
        f64::from(c.failing_votes),
        &outcome,
    );
    observe(
        "FailoverDetectionHealthyVotes",
        metrics::Unit::Count,
        f64::from(c.healthy_votes),
        &outcome,
    );
}

impl FailoverRun<'_> {
    /// The signal-only game day of the plan whose injection awaits its failover, if any.
    /// A game-day document that cannot be read is none: the real signals decide.
    async fn rehearsal(&self) -> Option<String> {
        use crate::gameday::{GameDayState, Injection, Phase};
        let doc = crate::state::load::<GameDayState>(
            self.state,
            &crate::gameday::run::game_day_key(self.plan),
        )
        .await
        .ok()??;
        let gd = doc.value.current?;
        (matches!(gd.injection, Injection::SignalOnly { .. })
            && gd.injected_at.is_some()
            && matches!(gd.phase, Phase::AwaitingFailover))
        .then_some(gd.id)
    }

    /// The report of a failover that ended before promotion (unconfirmed, healthy again,
    /// suppressed, cancelled): what the signals said, and the incident's timeline.
    async fn ended_report(
        &self,
        f: &super::Failover,
        outcome: Option<&str>,
        now: DateTime<Utc>,
        run: &str,
    ) -> Option<String> {
        let timeline = self
            .state
            .timeline(&self.plan.name, Some(f.received_at - Duration::seconds(1)))
            .await
            .unwrap_or_default();
        let report = serde_json::json!({
            "plan": self.plan.name,
            "incident": f.incident,
            "cause": f.cause,
            "ended_at": now,
            "outcome": outcome,
            "promoted": false,
            "detection": f.detection,
            "timeline": timeline,
        });
        match self
            .reports
            .put_report(
                &report_key(&self.plan.name, "failover", &f.incident, now),
                &report,
            )
            .await
        {
            Ok(uri) => Some(uri),
            Err(e) => {
                tracing::warn!(error = %e, run, "failover report not written");
                None
            }
        }
    }

    /// Handle one invocation payload.
    pub async fn handle(
        &self,
        payload: &serde_json::Value,
        invocation: &Invocation,
    ) -> Result<FailoverReply, FailoverError> {
        let input = parse_input(payload).map_err(|e| FailoverError::BadInput(e.0))?;
        if let FailoverInput::Alarm(a) = &input {
            check_fire_time(a, invocation.now).map_err(|e| FailoverError::BadInput(e.0))?;
        }
        if let FailoverInput::Alarm(a) = &input
            && !self
                .plan
                .failover
                .health_alarms
                .iter()
                .any(|h| h.name == a.name)
        {
            tracing::info!(alarm = %a.name, "not one of the plan's health alarms; ignored");
        }
        let edges = Edges {
            state: self.state,
            notifier: self.notifier,
            clock: self.clock,
        };
        let trigger = trigger_of(&input);
        drive(self, &edges, input, &trigger, invocation).await
    }
}

#[async_trait]
impl Machine for FailoverRun<'_> {
    type Input = FailoverInput;
    type Facts = FailoverFacts;
    type Action = Action;
    type Outcome = ActionResult;

    fn function(&self) -> &'static str {
        "failover"
    }

    fn plan(&self) -> &Plan {
        self.plan
    }

    fn tick(&self) -> FailoverInput {
        FailoverInput::Tick
    }

    fn needs_facts(&self, state: &DrState, input: &FailoverInput) -> bool {
        matches!(state, DrState::FailingOver(_))
            || (matches!(state, DrState::FailedOver(_)) && matches!(input, FailoverInput::Tick))
            || matches!(input, FailoverInput::Command(super::Command::Force { .. }))
    }

    async fn gather(&self, state: &DrState) -> FailoverFacts {
        // The signals matter until promotion: they confirm, or end a failover the
        // primary recovered from.
        let detecting = matches!(state, DrState::FailingOver(f)
            if matches!(f.step, Step::Confirm | Step::Readiness | Step::AwaitingApproval));
        let (detection, rehearsal) = if detecting {
            (
                self.port.read_signals(self.plan).await,
                self.rehearsal().await,
            )
        } else {
            (Readings::default(), None)
        };
        let mut targets = Vec::new();
        for r in replicated(self.plan) {
            let change = match state {
                DrState::FailingOver(f) => f
                    .targets
                    .iter()
                    .find(|t| t.resource == r.id)
                    .and_then(|t| t.dns_change.clone()),
                _ => None,
            };
            targets.push(self.port.read_target(self.plan, r, change.as_deref()).await);
        }
        let traffic = if self.plan.failback.traffic.is_empty() {
            TrafficFacts::default()
        } else {
            let change = match state {
                DrState::FailingOver(f) => f.traffic.as_ref().map(|t| t.change.clone()),
                _ => None,
            };
            self.port.read_traffic(self.plan, change.as_deref()).await
        };
        FailoverFacts {
            detection,
            rehearsal,
            targets,
            traffic,
        }
    }

    fn decide(
        &self,
        state: &DrState,
        input: &FailoverInput,
        facts: &FailoverFacts,
        now: DateTime<Utc>,
    ) -> Decision<Action> {
        let decision = step(self.plan, state, input, facts, now);
        for note in &decision.notes {
            if let Some(c) = note
                .data
                .get("detection")
                .and_then(|d| serde_json::from_value::<Confirmation>(d.clone()).ok())
            {
                observe_detection(&c);
            }
        }
        decision
    }

    async fn perform(&self, action: &Action) -> ActionResult {
        let failed = |resource: &str, action: &str, e: AwsError| ActionResult::Failed {
            resource: resource.to_string(),
            action: action.into(),
            error: e.to_string(),
        };
        let resource = |id: &str| self.plan.resource(id);
        match action {
            Action::Promote { resource: id } => match resource(id) {
                Some(r) => match self.port.promote(self.plan, r).await {
                    Ok(()) => ActionResult::Promoted {
                        resource: id.clone(),
                    },
                    Err(e) => failed(id, "promote", e),
                },
                None => failed(
                    id,
                    "promote",
                    AwsError::bad_request("rds", "PromoteReadReplica", id, "not in the plan"),
                ),
            },
            Action::Fence { resource: id } => match resource(id) {
                Some(r) => match self.port.fence(self.plan, r).await {
                    Ok(outcome) => ActionResult::Fenced {
                        resource: id.clone(),
                        outcome,
                    },
                    Err(e) => failed(id, "fence", e),
                },
                None => failed(
                    id,
                    "fence",
                    AwsError::bad_request("rds", "StopDBInstance", id, "not in the plan"),
                ),
            },
            Action::SwitchRecord {
                resource: id,
                endpoint,
            } => match resource(id) {
                Some(r) => match self.port.switch_record(self.plan, r, endpoint).await {
                    Ok(change) => ActionResult::Switched {
                        resource: id.clone(),
                        endpoint: endpoint.clone(),
                        change,
                    },
                    Err(e) => failed(id, "switch-dns", e),
                },
                None => failed(
                    id,
                    "switch-dns",
                    AwsError::bad_request(
                        "route53",
                        "ChangeResourceRecordSets",
                        id,
                        "not in the plan",
                    ),
                ),
            },
            Action::SetTraffic { primary_percent } => {
                match self.port.set_traffic(self.plan, *primary_percent).await {
                    Ok(change) => ActionResult::TrafficSet {
                        primary_percent: *primary_percent,
                        change,
                    },
                    Err(e) => failed("traffic", "set-traffic", e),
                }
            }
        }
    }

    fn absorb(&self, state: &DrState, outcomes: &[ActionResult], now: DateTime<Utc>) -> DrState {
        absorb(state, outcomes, now)
    }

    fn intent(&self, action: &Action) -> Intent {
        let (action, resource, detail) = match action {
            Action::Promote { resource } => (
                "failover.promote",
                resource.clone(),
                "promote the DR replica".to_string(),
            ),
            Action::Fence { resource } => (
                "failover.fence",
                resource.clone(),
                "stop the old primary where it is reachable".to_string(),
            ),
            Action::SwitchRecord { resource, endpoint } => (
                "failover.switch-dns",
                resource.clone(),
                format!("point the writer record at {endpoint}"),
            ),
            Action::SetTraffic { primary_percent } => (
                "failover.traffic",
                "traffic".to_string(),
                format!("send {primary_percent} % of application traffic to the primary region"),
            ),
        };
        Intent {
            action: action.into(),
            resource,
            detail,
        }
    }

    fn describe(&self, outcome: &ActionResult) -> OutcomeRecord {
        let (action, resource, outcome_kind, detail, failed) = match outcome {
            ActionResult::Promoted { resource } => (
                "failover.promote",
                resource.clone(),
                Outcome::Started,
                "promotion issued".to_string(),
                false,
            ),
            ActionResult::Fenced { resource, outcome } => (
                "failover.fence",
                resource.clone(),
                match outcome {
                    FenceOutcome::Stopped => Outcome::Succeeded,
                    _ => Outcome::Skipped,
                },
                match outcome {
                    FenceOutcome::Stopped => "the old primary was stopped".to_string(),
                    FenceOutcome::Unreachable { reason } => format!(
                        "the old primary is unreachable, fenced through the DNS switch only: {reason}"
                    ),
                    FenceOutcome::NotNeeded { reason } => format!("nothing to stop: {reason}"),
                },
                false,
            ),
            ActionResult::Switched {
                resource,
                endpoint,
                change,
            } => (
                "failover.switch-dns",
                resource.clone(),
                Outcome::Started,
                format!("record now points at {endpoint} (change {change})"),
                false,
            ),
            ActionResult::TrafficSet {
                primary_percent,
                change,
            } => (
                "failover.traffic",
                "traffic".to_string(),
                Outcome::Started,
                format!(
                    "{primary_percent} % of application traffic to the primary region (change {change})"
                ),
                false,
            ),
            ActionResult::Failed {
                resource,
                action,
                error,
            } => (
                "failover.action",
                resource.clone(),
                Outcome::Failed,
                format!("{action}: {error}"),
                true,
            ),
        };
        OutcomeRecord {
            action: action.into(),
            resource,
            outcome: outcome_kind,
            detail,
            failed,
        }
    }

    fn refusal_is_error(&self, input: &FailoverInput, decision: &Decision<Action>) -> bool {
        matches!(input, FailoverInput::Command(_))
            || decision
                .notes
                .iter()
                .any(|n| n.action == "failover.readiness")
    }

    async fn reached(
        &self,
        before: &DrState,
        after: &DrState,
        now: DateTime<Utc>,
        run: &str,
    ) -> Option<String> {
        if let (DrState::FailingOver(f), DrState::Normal { last, .. }) = (before, after) {
            return self.ended_report(f, last.as_deref(), now, run).await;
        }
        let (DrState::FailedOver(f), false) = (after, matches!(before, DrState::FailedOver(_)))
        else {
            return None;
        };
        let m = &f.measurement;
        observe(
            "FailoverRtoSeconds",
            metrics::Unit::Seconds,
            m.rto_seconds as f64,
            &[],
        );
        if let Some(loss) = m.data_loss_seconds {
            observe("FailoverDataLossSeconds", metrics::Unit::Seconds, loss, &[]);
        }
        let timeline = self
            .state
            .timeline(&self.plan.name, Some(now - Duration::days(1)))
            .await
            .unwrap_or_default();
        let report = serde_json::json!({
            "plan": self.plan.name,
            "incident": f.incident,
            "failed_over_at": f.since,
            "measurement": m,
            "targets": f.targets,
            "forced": f.forced,
            "detection": f.detection,
            "timeline": timeline,
        });
        match self
            .reports
            .put_report(
                &report_key(&self.plan.name, "failover", &f.incident, now),
                &report,
            )
            .await
        {
            Ok(uri) => Some(uri),
            Err(e) => {
                tracing::warn!(error = %e, run, "failover report not written");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
