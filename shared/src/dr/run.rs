//! The executor of the DR state machine, shared by failover and failback: load the state,
//! read the facts, decide, persist, act, persist again — until the machine waits.
//!
//! Exactly once: every transition is a conditional write on the state's version, and the
//! write that precedes an action also takes a short lease on the document (until the
//! action is done, at most until the invocation's deadline), so of any number of
//! concurrent invocations exactly one acts; the others see the new state (or the lease)
//! and exit saying why. A crash leaves at most an expired lease: the next event re-reads
//! AWS and goes on from the step stored.

use super::{Decision, DrState, Next, Note};
use crate::error::{Classify, Retry};
use crate::function::Invocation;
use crate::metrics::observe;
use crate::notify::{Notification, Notifier};
use crate::plan::Plan;
use crate::recovery::{DrPhase, RecoveryBook, WriterTask, may_start};
use crate::state::{
    self, AuditEntry, Commit, LeaseMark, MachineKey, Outcome, StateError, StateStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long before the invocation's deadline the executor stops polling.
const SAFETY_MARGIN_SECONDS: i64 = 30;
use crate::budget::{LEASE_SECONDS, action_window};
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
    /// The plan's point-in-time recoveries (kept here so that they and the DR state
    /// change under one version).
    #[serde(default, skip_serializing_if = "RecoveryBook::is_empty")]
    pub recoveries: RecoveryBook,
}

/// An invocation's right to perform the actions of the current step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The invocation (request id).
    pub holder: String,
    /// When it lapses.
    pub until: DateTime<Utc>,
}

impl Lease {
    /// The lease as the state store keeps it beside the document, to fence commits.
    pub fn mark(&self) -> LeaseMark {
        LeaseMark {
            holder: self.holder.clone(),
            until: self.until,
        }
    }
}

/// The state item of a plan's DR state machine.
pub fn dr_key(plan: &Plan) -> MachineKey {
    MachineKey::new(&plan.name, "dr")
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

/// A clock that moves only when slept on, for the executors' tests.
#[cfg(test)]
pub(crate) struct ManualClock(pub std::sync::Mutex<DateTime<Utc>>);

#[cfg(test)]
#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
    async fn sleep(&self, d: std::time::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += Duration::from_std(d).unwrap();
    }
}

/// How an action's outcome is recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRecord {
    /// The audited action, e.g. `failover.promote`.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// How it ended.
    pub outcome: Outcome,
    /// A sentence.
    pub detail: String,
    /// Whether it failed (the executor backs off and the next look retries).
    pub failed: bool,
}

/// How the intent to take an action is recorded, before it is taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// The audited action, e.g. `failover.promote`.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// A sentence: what is about to be done.
    pub detail: String,
}

/// One of the DR state machines (failover, failback), as the executor drives it.
#[async_trait]
pub trait Machine: Send + Sync {
    /// What the function is given.
    type Input: Clone + Send + Sync + std::fmt::Debug;
    /// What is read from AWS before deciding.
    type Facts: Default + Send + Sync;
    /// What to do in AWS.
    type Action: Clone + Send + Sync;
    /// What an action produced.
    type Outcome: Send + Sync;

    /// The function's name, for the audit timeline (`failover`, `failback`).
    fn function(&self) -> &'static str;
    /// The plan.
    fn plan(&self) -> &Plan;
    /// The input that means "look again".
    fn tick(&self) -> Self::Input;
    /// Whether this state and input need the facts read.
    fn needs_facts(&self, state: &DrState, input: &Self::Input) -> bool;
    /// Read the facts.
    async fn gather(&self, state: &DrState) -> Self::Facts;
    /// Decide (pure).
    fn decide(
        &self,
        state: &DrState,
        input: &Self::Input,
        facts: &Self::Facts,
        now: DateTime<Utc>,
    ) -> Decision<Self::Action>;
    /// Carry out one action.
    async fn perform(&self, action: &Self::Action) -> Self::Outcome;
    /// Fold outcomes into the state (pure).
    fn absorb(&self, state: &DrState, outcomes: &[Self::Outcome], now: DateTime<Utc>) -> DrState;
    /// How an outcome is recorded.
    fn describe(&self, outcome: &Self::Outcome) -> OutcomeRecord;
    /// How the intent to take an action is recorded (before it is taken).
    fn intent(&self, action: &Self::Action) -> Intent;
    /// Whether a refusal of this input is an error for the caller (a command that cannot
    /// apply, a guard that stops a start) rather than a state that waits.
    fn refusal_is_error(&self, input: &Self::Input, decision: &Decision<Self::Action>) -> bool;
    /// How long one invocation may poll the waits before leaving them to the next tick;
    /// `None`: until the invocation's deadline nears.
    fn poll_budget(&self) -> Option<Duration> {
        None
    }
    /// Called when the state reaches a new phase: reports and metrics. Returns where the
    /// report went.
    async fn reached(
        &self,
        before: &DrState,
        after: &DrState,
        now: DateTime<Utc>,
        run: &str,
    ) -> Option<String>;
}

/// The answer to an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrReply {
    /// The plan.
    pub plan: String,
    /// The phase after this invocation.
    pub phase: String,
    /// What each step of this invocation said.
    pub steps: Vec<String>,
    /// The state after this invocation.
    pub state: DrState,
    /// The report of a completed failover or failback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// Why a DR invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DrError {
    /// The input is not one the function accepts; nothing was done.
    #[error("bad input: {0}; nothing was done")]
    BadInput(String),
    /// The command cannot apply now, or a guard refused; nothing was changed in AWS.
    #[error("refused: {0}")]
    Refused(String),
    /// The state table failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Another invocation took over this invocation's lease while it acted (it ran past
    /// its lease); the other one continues.
    #[error("lost the lease on the DR state while acting; another invocation continues")]
    LeaseLost,
    /// AWS could not be read before deciding (a recovery command); nothing was changed.
    #[error("{0}; nothing was changed, try again")]
    Aws(crate::error::AwsError),
}

impl From<crate::gameday::run::GameDayRunError> for DrError {
    fn from(e: crate::gameday::run::GameDayRunError) -> Self {
        use crate::gameday::run::GameDayRunError as G;
        match e {
            G::Refused(why) => DrError::Refused(why),
            G::Aws(e) => DrError::Aws(e),
            G::State(e) => DrError::State(e),
        }
    }
}

impl Classify for DrError {
    fn retry(&self) -> Retry {
        match self {
            DrError::BadInput(_) | DrError::Refused(_) | DrError::LeaseLost => Retry::NonRetryable,
            DrError::State(e) => e.retry(),
            DrError::Aws(e) => e.retry(),
        }
    }
}

/// What the executor writes to besides AWS.
pub struct Edges<'a> {
    /// The state table.
    pub state: &'a dyn StateStore,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Time.
    pub clock: &'a dyn Clock,
}

fn reply(plan: &Plan, state: &DrState, steps: Vec<String>, report: Option<String>) -> DrReply {
    DrReply {
        plan: plan.name.clone(),
        phase: state.phase(),
        steps,
        state: state.clone(),
        report,
    }
}

/// Drive `machine` from `first` until it waits (or the invocation's deadline nears).
pub async fn drive<M: Machine>(
    machine: &M,
    edges: &Edges<'_>,
    first: M::Input,
    trigger: &str,
    invocation: &Invocation,
) -> Result<DrReply, DrError> {
    let plan = machine.plan();
    let key = dr_key(plan);
    let mut input = first;
    let mut steps = Vec::new();
    let mut poll_ms = POLL_FIRST_MS;
    let mut report = None;
    let started = edges.clock.now();
    loop {
        let now = edges.clock.now();
        let stored = state::load::<DrDocument>(edges.state, &key).await?;
        let (version, doc) = match stored {
            Some(v) => (Some(v.version), v.value),
            None => (None, DrDocument::default()),
        };
        if let Some(lease) = &doc.lease
            && lease.until > now
            && lease.holder != invocation.request_id
        {
            steps.push(format!(
                "another invocation ({}) is acting on the DR state until {}; this one does nothing",
                lease.holder, lease.until
            ));
            return Ok(reply(plan, &doc.state, steps, report));
        }
        let facts = if machine.needs_facts(&doc.state, &input) {
            machine.gather(&doc.state).await
        } else {
            M::Facts::default()
        };
        let decision = guard_writer(plan, &doc, machine.decide(&doc.state, &input, &facts, now));
        let lease = (!decision.actions.is_empty()).then(|| Lease {
            holder: invocation.request_id.clone(),
            until: (now + Duration::seconds(LEASE_SECONDS)).min(invocation.deadline),
        });
        let next_doc = DrDocument {
            state: decision.state.clone(),
            lease: lease.clone(),
            recoveries: doc.recoveries.clone(),
        };
        // The step's notes and the intent of each action are committed with the state
        // change that precedes the actions: no action without its entry.
        let intents = decision.actions.iter().map(|a| {
            let i = machine.intent(a);
            entry(
                machine.function(),
                trigger,
                now,
                i.action,
                Some(i.resource),
                Outcome::Intended,
                i.detail,
            )
        });
        let commit = if next_doc != doc {
            Commit::write(&key, &next_doc, version, now)?.granting(lease.as_ref().map(Lease::mark))
        } else {
            Commit::check(&key, version, now)
        }
        .recording(note_entries(
            machine.function(),
            &decision.notes,
            trigger,
            now,
        ))
        .recording(intents);
        let mut version = version;
        if !commit.is_empty() {
            match commit.send(edges.state).await {
                Ok(v) => version = v,
                // Someone else moved first: decide the same input again on what they wrote
                // (an alarm they already acted on is then "already in progress").
                Err(StateError::Conflict { .. }) => {
                    steps.push(
                        "the DR state changed under this invocation; reading it again".into(),
                    );
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        notify_notes(plan, edges, &decision.notes, trigger, now).await;
        steps.push(decision.reply.clone());
        let mut next = decision.next;
        let mut after = decision.state.clone();
        if !decision.actions.is_empty() {
            // Each action runs only while the lease leaves room for it and for the
            // commit; one left undone or cut off is retried by the next look, which
            // re-reads AWS first (a call cut off may have taken effect).
            let until = lease.as_ref().map_or(invocation.deadline, |l| l.until);
            let mut outcomes = Vec::new();
            let mut undone = Vec::new();
            for action in &decision.actions {
                let Some(window) = action_window(edges.clock.now(), until) else {
                    undone.push((
                        machine.intent(action),
                        "not started: too little of the lease is left; the next look takes it",
                    ));
                    continue;
                };
                match tokio::time::timeout(window, machine.perform(action)).await {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(_) => undone.push((machine.intent(action), "given up before the lease lapsed; the next look re-reads AWS (the call may have taken effect)")),
                }
            }
            after = machine.absorb(&decision.state, &outcomes, edges.clock.now());
            let mut failed = !undone.is_empty();
            let mut records = Vec::new();
            for (intent, why) in undone {
                steps.push(format!("{} {}: {why}", intent.action, intent.resource));
                records.push(entry(
                    machine.function(),
                    trigger,
                    edges.clock.now(),
                    intent.action,
                    Some(intent.resource),
                    Outcome::Failed,
                    format!("{}: {why}", intent.detail),
                ));
            }
            for o in &outcomes {
                let r = machine.describe(o);
                if r.failed {
                    failed = true;
                    steps.push(format!(
                        "action failed (the next look retries it): {} {}: {}",
                        r.action, r.resource, r.detail
                    ));
                }
                records.push(entry(
                    machine.function(),
                    trigger,
                    edges.clock.now(),
                    r.action,
                    Some(r.resource),
                    r.outcome,
                    r.detail,
                ));
            }
            if failed {
                // Back off before retrying a failed call (throttling, an unreachable
                // endpoint), within the deadline; the next tick retries otherwise.
                next = Next::Poll;
            }
            let released = DrDocument {
                state: after.clone(),
                lease: None,
                recoveries: doc.recoveries.clone(),
            };
            // The outcomes go with the state change that records them, under this
            // invocation's lease: one whose lease lapsed cannot commit.
            let commit = Commit::write(&key, &released, version, edges.clock.now())?
                .fenced_by(Some(&invocation.request_id))
                .recording(records);
            match commit.send(edges.state).await {
                Ok(_) => {}
                Err(StateError::Conflict { .. } | StateError::LeaseLapsed { .. }) => {
                    return Err(DrError::LeaseLost);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if std::mem::discriminant(&after) != std::mem::discriminant(&doc.state)
            && let Some(uri) = machine
                .reached(&doc.state, &after, now, &invocation.request_id)
                .await
        {
            report = Some(uri);
        }
        observe("DrPhase", metrics::Unit::Count, after.phase_number(), &[]);
        if decision.refused {
            if machine.refusal_is_error(&input, &decision) {
                if decision.notes.is_empty() {
                    state::record_refusal(
                        edges.state,
                        &plan.name,
                        entry(
                            machine.function(),
                            trigger,
                            now,
                            format!("{}.refused", machine.function()),
                            None,
                            Outcome::Refused,
                            decision.reply.clone(),
                        ),
                    )
                    .await;
                }
                return Err(DrError::Refused(decision.reply));
            }
            return Ok(reply(plan, &after, steps, report));
        }
        match next {
            Next::Stop => return Ok(reply(plan, &after, steps, report)),
            Next::Continue => {
                input = machine.tick();
                poll_ms = POLL_FIRST_MS;
            }
            Next::Poll => {
                let wake = edges.clock.now() + Duration::milliseconds(poll_ms as i64);
                if wake + Duration::seconds(SAFETY_MARGIN_SECONDS) >= invocation.deadline {
                    steps.push("the invocation's deadline is near; the next tick resumes".into());
                    return Ok(reply(plan, &after, steps, report));
                }
                if let Some(budget) = machine.poll_budget()
                    && wake > started + budget
                {
                    steps.push(format!(
                        "waited {} s in this invocation; the next tick resumes",
                        budget.num_seconds()
                    ));
                    return Ok(reply(plan, &after, steps, report));
                }
                edges
                    .clock
                    .sleep(std::time::Duration::from_millis(poll_ms))
                    .await;
                poll_ms = (poll_ms * 2).min(POLL_MAX_MS);
                input = machine.tick();
            }
        }
    }
}

/// Refuse a decision that starts a failover or failback while a recovery holds the
/// single-writer lock ([`may_start`]); any other decision passes unchanged.
pub(crate) fn guard_writer<A>(plan: &Plan, doc: &DrDocument, decision: Decision<A>) -> Decision<A> {
    let task = match (DrPhase::of(&doc.state), DrPhase::of(&decision.state)) {
        (DrPhase::Normal, DrPhase::FailingOver) => WriterTask::Failover,
        (DrPhase::FailedOver, DrPhase::FailingBack) => WriterTask::Failback,
        _ => return decision,
    };
    match may_start(task, DrPhase::of(&doc.state), &doc.recoveries, plan) {
        Ok(()) => decision,
        Err(e) => Decision::refuse(&doc.state, e.to_string()).note(
            crate::notify::Severity::Critical,
            "dr.refused",
            e.to_string(),
            "Nothing was changed. A point-in-time recovery holds the single-writer lock; \
             see recovery-status.",
        ),
    }
}

/// An audit entry of `function`.
pub(crate) fn entry(
    function: &str,
    trigger: &str,
    at: DateTime<Utc>,
    action: String,
    resource: Option<String>,
    outcome: Outcome,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        at,
        function: function.into(),
        trigger: trigger.to_string(),
        action,
        resource,
        outcome,
        detail,
        data: serde_json::Value::Null,
    }
}

/// The audit entries of a step's notes (committed with the step).
pub fn note_entries(
    function: &str,
    notes: &[Note],
    trigger: &str,
    now: DateTime<Utc>,
) -> Vec<AuditEntry> {
    notes
        .iter()
        .map(|note| AuditEntry {
            // What the decision was based on (e.g. each detection signal's verdict).
            data: note.data.clone(),
            ..entry(
                function,
                trigger,
                now,
                note.action.clone(),
                None,
                Outcome::Succeeded,
                format!("{}: {}", note.subject, note.detail),
            )
        })
        .collect()
}

/// Notify each note of a committed step.
pub async fn notify_notes(
    plan: &Plan,
    edges: &Edges<'_>,
    notes: &[Note],
    trigger: &str,
    now: DateTime<Utc>,
) {
    for note in notes {
        let notification = Notification {
            plan: plan.name.clone(),
            severity: note.severity,
            subject: note.subject.clone(),
            body: note.detail.clone(),
            details: serde_json::json!({"action": note.action, "trigger": trigger, "at": now}),
        };
        if let Err(e) = edges.notifier.notify(&notification).await {
            tracing::warn!(error = %e, "notification not sent");
        }
    }
}
