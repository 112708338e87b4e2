//! The failover executor: load the state, read the facts, decide ([`super::step`]),
//! persist, act, persist again — until the failover waits for something.
//!
//! Exactly once: every transition is a conditional write on the state's version, and the
//! write that precedes an action also takes a short lease on the document (until the
//! action is done, at most until the invocation's deadline), so of any number of
//! concurrent invocations exactly one acts; the others see the new state (or the lease)
//! and exit saying why. A crash leaves at most an expired lease: the next event re-reads
//! AWS and goes on from the step stored, never promoting twice.

use super::{
    Action, ActionResult, AlarmReading, DrState, FailoverFacts, FailoverInput, FenceOutcome, Next,
    Note, TargetFacts, absorb, event::parse_input, replicated, step,
};
use crate::error::{AwsError, Classify, Retry};
use crate::function::Invocation;
use crate::metrics::observe;
use crate::notify::{Notification, Notifier};
use crate::plan::{Plan, ProtectedResource};
use crate::report::{ReportSink, report_key};
use crate::state::{self, AuditEntry, MachineKey, Outcome, StateError, StateStore};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long before the invocation's deadline the executor stops polling.
const SAFETY_MARGIN_SECONDS: i64 = 30;
/// Longest a lease is held for one action.
const LEASE_SECONDS: i64 = 120;
/// Polling backoff bounds, in milliseconds.
const POLL_FIRST_MS: u64 = 1_000;
const POLL_MAX_MS: u64 = 10_000;

/// The persisted document: the state machine and the lease of the invocation acting on it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DrDocument {
    /// The state.
    pub state: DrState,
    /// Who is acting on it, until when.
    #[serde(default)]
    pub lease: Option<Lease>,
}

/// An invocation's right to perform the actions of the current step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The invocation (request id).
    pub holder: String,
    /// When it lapses.
    pub until: DateTime<Utc>,
}

/// The state item of a plan's DR state machine.
pub fn dr_key(plan: &Plan) -> MachineKey {
    MachineKey::new(&plan.name, "dr")
}

/// The failover port: reads and actions in RDS, Route 53 and CloudWatch.
#[async_trait]
pub trait FailoverPort: Send + Sync {
    /// The plan's health alarms, read back from CloudWatch.
    async fn read_alarms(&self, plan: &Plan) -> Vec<AlarmReading>;
    /// A replicated resource's primary, replica, lag, record, and the state of a Route 53
    /// change when one is given. Never fails: what cannot be read says so.
    async fn read_target(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        change: Option<&str>,
    ) -> TargetFacts;
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
}

/// Time, for the executor: the real clock in Lambda, a manual one in tests.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Wait.
    async fn sleep(&self, d: std::time::Duration);
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep(&self, d: std::time::Duration) {
        tokio::time::sleep(d).await;
    }
}

/// The answer to an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverReply {
    /// The plan.
    pub plan: String,
    /// The phase after this invocation.
    pub phase: String,
    /// What each step of this invocation said.
    pub steps: Vec<String>,
    /// The state after this invocation.
    pub state: DrState,
    /// The report of a completed failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// Why a failover invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FailoverError {
    /// The input is not one the function accepts; nothing was done.
    #[error("bad input: {0}; nothing was done")]
    BadInput(String),
    /// The command cannot apply now, or the DR side refused; nothing was changed in AWS.
    #[error("refused: {0}")]
    Refused(String),
    /// The state table failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Another invocation took over this invocation's lease while it acted (it ran past
    /// its lease); the other one continues.
    #[error(
        "lost the lease on the DR state while acting; another invocation continues the failover"
    )]
    LeaseLost,
}

impl Classify for FailoverError {
    fn retry(&self) -> Retry {
        match self {
            FailoverError::BadInput(_) | FailoverError::Refused(_) => Retry::NonRetryable,
            FailoverError::State(e) => e.retry(),
            FailoverError::LeaseLost => Retry::NonRetryable,
        }
    }
}

/// Everything the executor needs.
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

impl FailoverRun<'_> {
    /// Handle one invocation payload.
    pub async fn handle(
        &self,
        payload: &serde_json::Value,
        invocation: &Invocation,
    ) -> Result<FailoverReply, FailoverError> {
        let input = parse_input(payload).map_err(|e| FailoverError::BadInput(e.0))?;
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
        self.drive(input, invocation).await
    }

    async fn gather(&self, state: &DrState) -> FailoverFacts {
        let alarms = self.port.read_alarms(self.plan).await;
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
        FailoverFacts { alarms, targets }
    }

    async fn drive(
        &self,
        first: FailoverInput,
        invocation: &Invocation,
    ) -> Result<FailoverReply, FailoverError> {
        let key = dr_key(self.plan);
        let trigger = trigger_of(&first);
        let mut input = first;
        let mut steps = Vec::new();
        let mut poll_ms = POLL_FIRST_MS;
        let mut report = None;
        loop {
            let now = self.clock.now();
            let stored = state::load::<DrDocument>(self.state, &key).await?;
            let (version, doc) = match stored {
                Some(v) => (Some(v.version), v.value),
                None => (None, DrDocument::default()),
            };
            if let Some(lease) = &doc.lease
                && lease.until > now
                && lease.holder != invocation.request_id
            {
                steps.push(format!(
                    "another invocation ({}) is acting on the failover until {}; this one does nothing",
                    lease.holder, lease.until
                ));
                return Ok(self.reply(&doc.state, steps, report));
            }
            let needs_facts = matches!(doc.state, DrState::FailingOver(_) | DrState::FailedOver(_))
                || matches!(input, FailoverInput::Command(super::Command::Force { .. }));
            let facts = if needs_facts {
                self.gather(&doc.state).await
            } else {
                FailoverFacts::default()
            };
            let decision = step(self.plan, &doc.state, &input, &facts, now);
            let lease = (!decision.actions.is_empty()).then(|| Lease {
                holder: invocation.request_id.clone(),
                until: (now + Duration::seconds(LEASE_SECONDS)).min(invocation.deadline),
            });
            let next_doc = DrDocument {
                state: decision.state.clone(),
                lease,
            };
            let mut version = version;
            if next_doc != doc {
                match state::save(self.state, &key, &next_doc, version, now).await {
                    Ok(v) => version = Some(v),
                    // Someone else moved first: decide again from what they wrote.
                    Err(StateError::Conflict { .. }) => {
                        steps.push(
                            "the DR state changed under this invocation; reading it again".into(),
                        );
                        if matches!(input, FailoverInput::Alarm(_)) {
                            // The alarm was taken into account by whoever won.
                            input = FailoverInput::Tick;
                        }
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.record(&decision.notes, &trigger, now).await;
            steps.push(decision.reply.clone());
            let mut next = decision.next;
            if !decision.actions.is_empty() {
                let results = self.perform(&decision.actions).await;
                let done = absorb(&decision.state, &results, self.clock.now());
                let failures: Vec<String> = results
                    .iter()
                    .filter_map(|r| match r {
                        ActionResult::Failed {
                            resource,
                            action,
                            error,
                        } => Some(format!("{action} {resource}: {error}")),
                        _ => None,
                    })
                    .collect();
                for f in &failures {
                    steps.push(format!("action failed (the next look retries it): {f}"));
                }
                if !failures.is_empty() {
                    // Back off before retrying a failed call (throttling, an unreachable
                    // endpoint), within the deadline; the next tick retries otherwise.
                    next = Next::Poll;
                }
                self.audit_actions(&results, &trigger).await;
                let after = DrDocument {
                    state: done,
                    lease: None,
                };
                match state::save(self.state, &key, &after, version, self.clock.now()).await {
                    Ok(_) => {}
                    Err(StateError::Conflict { .. }) => return Err(FailoverError::LeaseLost),
                    Err(e) => return Err(e.into()),
                }
            }
            if let DrState::FailedOver(f) = &decision.state
                && !matches!(doc.state, DrState::FailedOver(_))
            {
                report = self.completed(f, now, &invocation.request_id).await;
            }
            observe(
                "FailoverPhase",
                metrics::Unit::Count,
                match &decision.state {
                    DrState::Normal { .. } => 0.0,
                    DrState::FailingOver(_) => 1.0,
                    DrState::FailedOver(_) => 2.0,
                },
                &[],
            );
            if decision.refused {
                if matches!(input, FailoverInput::Command(_))
                    || decision
                        .notes
                        .iter()
                        .any(|n| n.action == "failover.readiness")
                {
                    return Err(FailoverError::Refused(decision.reply));
                }
                return Ok(self.reply(&decision.state, steps, report));
            }
            match next {
                Next::Stop => return Ok(self.reply(&decision.state, steps, report)),
                Next::Continue => {
                    input = FailoverInput::Tick;
                    poll_ms = POLL_FIRST_MS;
                }
                Next::Poll => {
                    let wake = self.clock.now() + Duration::milliseconds(poll_ms as i64);
                    if wake + Duration::seconds(SAFETY_MARGIN_SECONDS) >= invocation.deadline {
                        steps.push(
                            "the invocation's deadline is near; the next tick resumes".into(),
                        );
                        return Ok(self.reply(&decision.state, steps, report));
                    }
                    self.clock
                        .sleep(std::time::Duration::from_millis(poll_ms))
                        .await;
                    poll_ms = (poll_ms * 2).min(POLL_MAX_MS);
                    input = FailoverInput::Tick;
                }
            }
        }
    }

    fn reply(&self, state: &DrState, steps: Vec<String>, report: Option<String>) -> FailoverReply {
        FailoverReply {
            plan: self.plan.name.clone(),
            phase: state.phase(),
            steps,
            state: state.clone(),
            report,
        }
    }

    async fn perform(&self, actions: &[Action]) -> Vec<ActionResult> {
        let mut results = Vec::new();
        for action in actions {
            let (resource_id, kind) = match action {
                Action::Promote { resource } => (resource, "promote"),
                Action::Fence { resource } => (resource, "fence"),
                Action::SwitchRecord { resource, .. } => (resource, "switch-dns"),
            };
            let Some(resource) = self.plan.resource(resource_id) else {
                continue;
            };
            let result = match action {
                Action::Promote { .. } => match self.port.promote(self.plan, resource).await {
                    Ok(()) => ActionResult::Promoted {
                        resource: resource_id.clone(),
                    },
                    Err(e) => ActionResult::Failed {
                        resource: resource_id.clone(),
                        action: kind.into(),
                        error: e.to_string(),
                    },
                },
                Action::Fence { .. } => match self.port.fence(self.plan, resource).await {
                    Ok(outcome) => ActionResult::Fenced {
                        resource: resource_id.clone(),
                        outcome,
                    },
                    Err(e) => ActionResult::Failed {
                        resource: resource_id.clone(),
                        action: kind.into(),
                        error: e.to_string(),
                    },
                },
                Action::SwitchRecord { endpoint, .. } => {
                    match self.port.switch_record(self.plan, resource, endpoint).await {
                        Ok(change) => ActionResult::Switched {
                            resource: resource_id.clone(),
                            endpoint: endpoint.clone(),
                            change,
                        },
                        Err(e) => ActionResult::Failed {
                            resource: resource_id.clone(),
                            action: kind.into(),
                            error: e.to_string(),
                        },
                    }
                }
            };
            results.push(result);
        }
        results
    }

    async fn record(&self, notes: &[Note], trigger: &str, now: DateTime<Utc>) {
        for note in notes {
            let entry = AuditEntry {
                at: now,
                function: "failover".into(),
                trigger: trigger.to_string(),
                action: note.action.clone(),
                resource: None,
                outcome: Outcome::Succeeded,
                detail: format!("{}: {}", note.subject, note.detail),
                data: serde_json::Value::Null,
            };
            if let Err(e) = self.state.append(&self.plan.name, &entry).await {
                tracing::warn!(error = %e, "audit entry not written");
            }
            let notification = Notification {
                plan: self.plan.name.clone(),
                severity: note.severity,
                subject: note.subject.clone(),
                body: note.detail.clone(),
                details: serde_json::json!({"action": note.action, "trigger": trigger, "at": now}),
            };
            if let Err(e) = self.notifier.notify(&notification).await {
                tracing::warn!(error = %e, "notification not sent");
            }
        }
    }

    async fn audit_actions(&self, results: &[ActionResult], trigger: &str) {
        for r in results {
            let (action, resource, outcome, detail) = match r {
                ActionResult::Promoted { resource } => (
                    "failover.promote",
                    resource,
                    Outcome::Started,
                    "promotion issued".to_string(),
                ),
                ActionResult::Fenced { resource, outcome } => (
                    "failover.fence",
                    resource,
                    match outcome {
                        FenceOutcome::Stopped => Outcome::Succeeded,
                        _ => Outcome::Skipped,
                    },
                    serde_json::to_string(outcome).unwrap_or_default(),
                ),
                ActionResult::Switched {
                    resource,
                    endpoint,
                    change,
                } => (
                    "failover.switch-dns",
                    resource,
                    Outcome::Started,
                    format!("record now points at {endpoint} (change {change})"),
                ),
                ActionResult::Failed {
                    resource,
                    action,
                    error,
                } => (
                    "failover.action",
                    resource,
                    Outcome::Failed,
                    format!("{action}: {error}"),
                ),
            };
            let entry = AuditEntry {
                at: self.clock.now(),
                function: "failover".into(),
                trigger: trigger.to_string(),
                action: action.into(),
                resource: Some(resource.clone()),
                outcome,
                detail,
                data: serde_json::Value::Null,
            };
            if let Err(e) = self.state.append(&self.plan.name, &entry).await {
                tracing::warn!(error = %e, "audit entry not written");
            }
        }
    }

    async fn completed(
        &self,
        f: &super::FailedOver,
        now: DateTime<Utc>,
        run: &str,
    ) -> Option<String> {
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
