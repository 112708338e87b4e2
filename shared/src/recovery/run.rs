//! The executor of point-in-time recoveries: load the recoveries (kept in the DR
//! document, so that the single-writer lock with failover and failback is one versioned
//! write), read what AWS shows, decide with [`super::step`], persist, act, persist again —
//! until the recoveries wait (a restore takes minutes: the next tick resumes it).
//!
//! The same exactly-once rules as the DR executor ([`crate::dr::run`]): every change is a
//! conditional write on the document's version, and the write before an action takes
//! the document's lease, so of two racing invocations one acts and the other reports it.

use super::{
    CheckReport, DrPhase, Phase, RecoveredFacts, Recovery, RecoveryAction, RecoveryBook,
    RecoveryCommand, RecoveryDecision, RecoveryError, RecoveryFacts, RecoveryInput,
    RestorableWindow, note, step,
};
use crate::dr::Note;
use crate::dr::run::{Clock, DrDocument, Edges, Lease, dr_key, note_entries, notify_notes};
use crate::error::{AwsError, AwsFailure, Classify, Retry};
use crate::function::Invocation;
use crate::notify::{Notifier, Severity};
use crate::plan::{Plan, ProtectedResource};
use crate::report::{ReportSink, report_key};
use crate::state::{self, AuditEntry, Commit, MachineKey, Outcome, StateError, StateStore};
use crate::validation::CheckProgress;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::budget::{LEASE_SECONDS, action_window};
/// How long one invocation waits for a short step (a fence, a DNS change) before
/// leaving it to the next tick.
const POLL_BUDGET_SECONDS: i64 = 30;
/// Rounds of decide-and-act per invocation, a bound against a loop that never settles.
const MAX_ROUNDS: usize = 12;

/// What this invocation's checks found, for its next decisions.
#[derive(Default)]
struct Results {
    checks: BTreeMap<String, CheckReport>,
    checks_so_far: BTreeMap<String, CheckProgress>,
}

/// What one round of actions did.
#[derive(Default)]
struct Round {
    /// What the reply says of them.
    steps: Vec<String>,
    /// Their entries on the timeline.
    outcomes: Vec<AuditEntry>,
    /// The recoveries AWS refused for good, with why.
    failures: Vec<(String, String)>,
    /// A fence or a record change, soon seen done: worth waiting for in this invocation.
    waits: bool,
    /// Some checks ran: the next round decides on what they found.
    ran_checks: bool,
}

/// The document after the actions: the lease given back, how far unfinished checks got
/// (a later invocation goes on from there instead of running them again), and the
/// recoveries AWS refused for good failed, each with its note.
fn release(
    next: &DrDocument,
    checks_so_far: &BTreeMap<String, CheckProgress>,
    failures: Vec<(String, String)>,
) -> (DrDocument, Vec<Note>) {
    let mut released = next.clone();
    released.lease = None;
    for r in &mut released.recoveries.recoveries {
        if r.phase == Phase::Validating
            && let Some(progress) = checks_so_far.get(&r.id)
        {
            r.check_progress = Some(progress.clone());
        }
    }
    let mut notes = Vec::new();
    for (id, why) in failures {
        if let Some(r) = released
            .recoveries
            .recoveries
            .iter_mut()
            .find(|r| r.id == id)
        {
            r.phase = Phase::Failed { why: why.clone() };
            notes.push(note(
                Severity::Critical,
                "recovery.failed",
                format!("recovery {id} failed"),
                format!(
                    "AWS refused the restore: {why}. Nothing else was changed; \
                     discard it, fix the cause and recover again."
                ),
            ));
        }
    }
    (released, notes)
}

/// What was done by an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Performed {
    /// The call was accepted.
    Done,
    /// The checks ran; what they found.
    Checks(CheckReport),
    /// Some checks ran and the rest did not fit in the action's time: how far they got.
    ChecksSoFar(CheckProgress),
}

/// The recovery port: point-in-time restores, checks, fencing and the database record.
#[async_trait]
pub trait RecoveryPort: Send + Sync {
    /// The span `resource` can be restored to; `None` when AWS reports none (automated
    /// backups or point-in-time recovery disabled).
    async fn window(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
    ) -> Result<Option<RestorableWindow>, AwsError>;
    /// What AWS shows of `recovery` (the checks' results are not read here: they come
    /// from running them). An error means "could not look": nothing is decided on it.
    async fn observe(&self, plan: &Plan, recovery: &Recovery) -> Result<RecoveredFacts, AwsError>;
    /// Carry out one action, which must end within `window`.
    async fn perform(
        &self,
        plan: &Plan,
        action: &RecoveryAction,
        window: std::time::Duration,
    ) -> Result<Performed, AwsError>;
}

/// Why a recovery invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecoveryRunError {
    /// The request is not one the recovery function takes; nothing was done.
    #[error(transparent)]
    BadInput(#[from] super::event::InputError),
    /// The command was refused; nothing changed.
    #[error("refused: {0}")]
    Refused(String),
    /// AWS could not be read, so nothing was decided.
    #[error("{0}; nothing was changed, try again")]
    Aws(AwsError),
    /// The state table failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Another invocation took the document's lease while this one acted.
    #[error("lost the lease on the DR state while acting; another invocation continues")]
    LeaseLost,
}

impl Classify for RecoveryRunError {
    fn retry(&self) -> Retry {
        match self {
            RecoveryRunError::BadInput(_)
            | RecoveryRunError::Refused(_)
            | RecoveryRunError::LeaseLost => Retry::NonRetryable,
            RecoveryRunError::Aws(e) => e.retry(),
            RecoveryRunError::State(e) => e.retry(),
        }
    }
}

/// The answer to a recovery command or tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryReply {
    /// The plan.
    pub plan: String,
    /// What each round of this invocation said.
    pub steps: Vec<String>,
    /// Every recovery of the plan after this invocation.
    pub recoveries: Vec<Recovery>,
    /// The reports written (a completed cutover).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<String>,
}

/// Everything the recovery executor needs.
pub struct RecoveryRun<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// RDS, DynamoDB, Route 53, the SQL probe.
    pub port: &'a dyn RecoveryPort,
    /// The state table.
    pub state: &'a dyn StateStore,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Reports.
    pub reports: &'a dyn ReportSink,
    /// Time.
    pub clock: &'a dyn Clock,
}

fn trigger_of(input: &RecoveryInput) -> String {
    match input {
        RecoveryInput::Tick => "tick".into(),
        RecoveryInput::Command(RecoveryCommand::Recover { resource, .. }) => {
            format!("operator recover {resource}")
        }
        RecoveryInput::Command(RecoveryCommand::RecoveryStatus { .. }) => {
            "operator recovery-status".into()
        }
        RecoveryInput::Command(RecoveryCommand::Cutover {
            recovery, force, ..
        }) => format!(
            "operator cutover {recovery}{}",
            if *force { " (forced)" } else { "" }
        ),
        RecoveryInput::Command(RecoveryCommand::Discard { recovery }) => {
            format!("operator discard {recovery}")
        }
    }
}

/// The recoveries an input needs AWS's view of: the active ones, and the one a cutover
/// names (cutover begins by fencing, decided on the facts).
fn observed<'b>(book: &'b RecoveryBook, input: &RecoveryInput) -> Vec<&'b Recovery> {
    let named = match input {
        RecoveryInput::Command(RecoveryCommand::Cutover { recovery, .. }) => Some(recovery),
        _ => None,
    };
    book.recoveries
        .iter()
        .filter(|r| r.phase.active() || Some(&r.id) == named)
        .collect()
}

/// A restore or instance creation AWS refused outright (a bad parameter, a quota) does
/// not heal by retrying: the recovery is Failed, and `discard` cleans up.
fn refused_for_good(action: &RecoveryAction, e: &AwsError) -> Option<String> {
    match action {
        RecoveryAction::Restore { recovery, .. }
        | RecoveryAction::CreateInstance { recovery, .. }
            if matches!(e.failure, AwsFailure::Refused | AwsFailure::BadRequest)
                && !e.is_code("DBInstanceAlreadyExists")
                && !e.is_code("DBClusterAlreadyExistsFault")
                && !e.is_code("TableAlreadyExistsException") =>
        {
            Some(recovery.clone())
        }
        _ => None,
    }
}

fn action_name(action: &RecoveryAction) -> (&'static str, &str) {
    match action {
        RecoveryAction::Restore { recovery, .. } => ("recovery.restore", recovery),
        RecoveryAction::CreateInstance { recovery, .. } => ("recovery.create-instance", recovery),
        RecoveryAction::RunChecks { recovery, .. } => ("recovery.checks", recovery),
        RecoveryAction::Fence { recovery, .. } => ("recovery.fence", recovery),
        RecoveryAction::PointRecord { recovery, .. } => ("recovery.point-record", recovery),
        RecoveryAction::Delete { recovery, .. } => ("recovery.delete", recovery),
    }
}

fn describe(action: &RecoveryAction) -> String {
    match action {
        RecoveryAction::Restore {
            source,
            target,
            restore_time,
            ..
        } => format!(
            "point-in-time restore of {source} into {target} to {}",
            restore_time.map_or("the latest restorable time".into(), |t| t.to_rfc3339())
        ),
        RecoveryAction::CreateInstance {
            cluster, instance, ..
        } => format!("instance {instance} in the restored cluster {cluster}"),
        RecoveryAction::RunChecks {
            resource, target, ..
        } => format!("{resource}'s checks against {target}"),
        RecoveryAction::Fence { writer, .. } => format!("fence the damaged writer {writer}"),
        RecoveryAction::PointRecord { record, target, .. } => {
            format!("point {record} at {target}")
        }
        RecoveryAction::Delete { target, .. } => format!("delete {target}"),
    }
}

impl RecoveryRun<'_> {
    fn edges(&self) -> Edges<'_> {
        Edges {
            state: self.state,
            notifier: self.notifier,
            clock: self.clock,
        }
    }

    fn entry(
        &self,
        trigger: &str,
        action: &str,
        resource: &str,
        outcome: Outcome,
        detail: String,
    ) -> AuditEntry {
        AuditEntry {
            at: self.clock.now(),
            function: "recovery".into(),
            trigger: trigger.into(),
            action: action.into(),
            resource: Some(resource.into()),
            outcome,
            detail,
            data: serde_json::Value::Null,
        }
    }

    async fn facts(
        &self,
        doc: &DrDocument,
        input: &RecoveryInput,
        checks: &BTreeMap<String, CheckReport>,
        so_far: &BTreeMap<String, CheckProgress>,
    ) -> Result<RecoveryFacts, RecoveryRunError> {
        let window = match input {
            RecoveryInput::Command(RecoveryCommand::Recover { resource, .. }) => {
                match self.plan.resource(resource) {
                    Some(r) => self
                        .port
                        .window(self.plan, r)
                        .await
                        .map_err(RecoveryRunError::Aws)?,
                    // The step refuses the unknown resource by name.
                    None => None,
                }
            }
            _ => None,
        };
        let mut recovered = BTreeMap::new();
        for r in observed(&doc.recoveries, input) {
            let mut f = self
                .port
                .observe(self.plan, r)
                .await
                .map_err(RecoveryRunError::Aws)?;
            f.checks = checks.get(&r.id).cloned();
            f.checks_so_far = so_far.get(&r.id).cloned();
            recovered.insert(r.id.clone(), f);
        }
        Ok(RecoveryFacts {
            dr: Some(DrPhase::of(&doc.state)),
            window,
            recovered,
        })
    }

    /// Handle one recovery command, or a tick that moves the active recoveries on (one
    /// read of the DR document when none is).
    pub async fn handle(
        &self,
        first: RecoveryInput,
        invocation: &Invocation,
    ) -> Result<RecoveryReply, RecoveryRunError> {
        let key = dr_key(self.plan);
        let trigger = trigger_of(&first);
        let mut input = first;
        let mut steps = Vec::new();
        let mut reports = Vec::new();
        let mut results = Results::default();
        let started = self.clock.now();
        let mut book = RecoveryBook::default();
        for _ in 0..MAX_ROUNDS {
            let now = self.clock.now();
            let stored = state::load::<DrDocument>(self.state, &key).await?;
            let (version, doc) = match stored {
                Some(v) => (Some(v.version), v.value),
                None => (None, DrDocument::default()),
            };
            book = doc.recoveries.clone();
            if let Some(lease) = &doc.lease
                && lease.until > now
                && lease.holder != invocation.request_id
            {
                steps.push(format!(
                    "another invocation ({}) is acting on the DR state until {}; this one does \
                     nothing",
                    lease.holder, lease.until
                ));
                break;
            }
            let facts = self
                .facts(&doc, &input, &results.checks, &results.checks_so_far)
                .await?;
            let decision = step(self.plan, &doc.recoveries, &input, &facts, now);
            if let Some(refused) = decision.refused {
                return Err(self.refused(&trigger, refused).await);
            }
            let lease = (!decision.actions.is_empty()).then(|| Lease {
                holder: invocation.request_id.clone(),
                until: (now + Duration::seconds(LEASE_SECONDS)).min(invocation.deadline),
            });
            let next = DrDocument {
                lease,
                recoveries: decision.state.clone(),
                state: doc.state.clone(),
            };
            let changed = (next != doc).then_some(&next);
            let commit = self.intend(&key, changed, version, &decision, &trigger, now)?;
            let mut version = version;
            if !commit.is_empty() {
                match commit.send(self.state).await {
                    Ok(v) => version = v,
                    Err(StateError::Conflict { .. }) => {
                        steps.push(
                            "the DR state changed under this invocation; reading it again".into(),
                        );
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            book = decision.state.clone();
            notify_notes(self.plan, &self.edges(), &decision.notes, &trigger, now).await;
            steps.push(decision.reply.clone());
            for r in &book.recoveries {
                let was = doc.recoveries.get(&r.id).map(|x| &x.phase);
                if r.phase == Phase::CutOver && was != Some(&Phase::CutOver) {
                    reports.extend(self.report(r, now).await);
                }
            }
            if decision.actions.is_empty() {
                break;
            }
            let until = next.lease.as_ref().map_or(invocation.deadline, |l| l.until);
            let mut round = self
                .perform_all(&decision.actions, until, &trigger, &mut results)
                .await;
            steps.append(&mut round.steps);
            let (released, notes) = release(&next, &results.checks_so_far, round.failures);
            // The outcomes go with the state change after the actions, under this
            // invocation's lease.
            let commit = Commit::write(&key, &released, version, self.clock.now())?
                .fenced_by(Some(&invocation.request_id))
                .recording(round.outcomes)
                .recording(note_entries("recovery", &notes, &trigger, now));
            match commit.send(self.state).await {
                Ok(_) => {}
                Err(StateError::Conflict { .. } | StateError::LeaseLapsed { .. }) => {
                    return Err(RecoveryRunError::LeaseLost);
                }
                Err(e) => return Err(e.into()),
            }
            book = released.recoveries.clone();
            notify_notes(self.plan, &self.edges(), &notes, &trigger, now).await;
            input = RecoveryInput::Tick;
            if !round.ran_checks && !round.waits {
                // A restore or a deletion takes minutes: the next tick looks again.
                break;
            }
            if round.waits && !self.pause(started, invocation.deadline).await {
                steps.push("the next tick looks again".into());
                break;
            }
        }
        Ok(RecoveryReply {
            plan: self.plan.name.clone(),
            steps,
            recoveries: book.recoveries,
            reports,
        })
    }

    /// A fence or a record change is seen done within seconds: wait for it in this
    /// invocation while its poll budget and time allow; false when the next tick must.
    async fn pause(&self, started: DateTime<Utc>, deadline: DateTime<Utc>) -> bool {
        let elapsed = self.clock.now() - started;
        if elapsed > Duration::seconds(POLL_BUDGET_SECONDS)
            || self.clock.now() + Duration::seconds(LEASE_SECONDS) > deadline
        {
            return false;
        }
        self.clock.sleep(std::time::Duration::from_secs(2)).await;
        true
    }

    /// An operator's refused command is on the timeline; nothing else changed.
    async fn refused(&self, trigger: &str, refused: RecoveryError) -> RecoveryRunError {
        state::record_refusal(
            self.state,
            &self.plan.name,
            AuditEntry {
                resource: None,
                ..self.entry(
                    trigger,
                    "recovery.refused",
                    "",
                    Outcome::Refused,
                    refused.to_string(),
                )
            },
        )
        .await;
        RecoveryRunError::Refused(refused.to_string())
    }

    /// The step's commit (the changed document, if it changed): notes and each action's
    /// intent go with the state change before the actions, so no action runs without its
    /// entry.
    fn intend(
        &self,
        key: &MachineKey,
        changed: Option<&DrDocument>,
        version: Option<u64>,
        decision: &RecoveryDecision,
        trigger: &str,
        now: DateTime<Utc>,
    ) -> Result<Commit, RecoveryRunError> {
        let intents: Vec<AuditEntry> = decision
            .actions
            .iter()
            .map(|a| {
                let (name, recovery) = action_name(a);
                self.entry(trigger, name, recovery, Outcome::Intended, describe(a))
            })
            .collect();
        let commit = match changed {
            Some(next) => Commit::write(key, next, version, now)?
                .granting(next.lease.as_ref().map(Lease::mark)),
            None => Commit::check(key, version, now),
        };
        Ok(commit
            .recording(note_entries("recovery", &decision.notes, trigger, now))
            .recording(intents))
    }

    /// Carry out a step's actions while the lease leaves room for each and the commit;
    /// one left undone or cut off is retried by the next look, which re-reads AWS.
    async fn perform_all(
        &self,
        actions: &[RecoveryAction],
        until: DateTime<Utc>,
        trigger: &str,
        results: &mut Results,
    ) -> Round {
        let mut round = Round::default();
        for action in actions {
            let (name, recovery) = action_name(action);
            let what = describe(action);
            let performed = match action_window(self.clock.now(), until) {
                Some(window) => {
                    tokio::time::timeout(window, self.port.perform(self.plan, action, window)).await
                }
                None => {
                    round.steps.push(format!("{what}: not started, too little of the lease is left; the next look takes it"));
                    round.outcomes.push(self.entry(
                        trigger,
                        name,
                        recovery,
                        Outcome::Failed,
                        format!("{what}: not started, too little of the lease was left"),
                    ));
                    continue;
                }
            };
            let Ok(performed) = performed else {
                round.steps.push(format!(
                    "{what}: given up before the lease lapsed; the next look re-reads AWS"
                ));
                round.outcomes.push(self.entry(
                    trigger,
                    name,
                    recovery,
                    Outcome::Failed,
                    format!(
                        "{what}: given up before the lease lapsed (the call may have taken effect)"
                    ),
                ));
                continue;
            };
            self.performed(action, performed, trigger, results, &mut round);
        }
        round
    }

    /// Record what one action did, and keep the checks' results for the next decision.
    fn performed(
        &self,
        action: &RecoveryAction,
        performed: Result<Performed, AwsError>,
        trigger: &str,
        results: &mut Results,
        round: &mut Round,
    ) {
        let (name, recovery) = action_name(action);
        let what = describe(action);
        match performed {
            Ok(Performed::Checks(report)) => {
                round.outcomes.push(self.entry(
                    trigger,
                    name,
                    recovery,
                    Outcome::Succeeded,
                    format!(
                        "{what}: {} passed, {} failed",
                        report.passed.len(),
                        report.failed.len()
                    ),
                ));
                results.checks.insert(recovery.to_string(), report);
                round.ran_checks = true;
            }
            Ok(Performed::ChecksSoFar(progress)) => {
                round.outcomes.push(self.entry(
                    trigger,
                    name,
                    recovery,
                    Outcome::Succeeded,
                    format!(
                        "{what}: {} of {} checks taken; the rest run in the next step",
                        progress.taken.len(),
                        progress.planned
                    ),
                ));
                // Going on in this invocation helps only if some check ran.
                round.ran_checks |= matches!(action, RecoveryAction::RunChecks { progress: before, .. }
                    if progress.taken.len() > before.taken.len());
                results.checks_so_far.insert(recovery.to_string(), progress);
            }
            Ok(Performed::Done) => {
                round.waits |= matches!(
                    action,
                    RecoveryAction::Fence { .. } | RecoveryAction::PointRecord { .. }
                );
                round
                    .outcomes
                    .push(self.entry(trigger, name, recovery, Outcome::Succeeded, what));
            }
            Err(e) => {
                round
                    .steps
                    .push(format!("{what} failed (the next look retries it): {e}"));
                round.outcomes.push(self.entry(
                    trigger,
                    name,
                    recovery,
                    Outcome::Failed,
                    format!("{what}: {e}"),
                ));
                if let Some(id) = refused_for_good(action, &e) {
                    round.failures.push((id, e.to_string()));
                }
            }
        }
    }

    /// The cutover's report in S3: what was restored, what was fenced, the data lost.
    async fn report(&self, r: &Recovery, now: DateTime<Utc>) -> Option<String> {
        let body = serde_json::json!({
            "plan": self.plan.name,
            "recovery": r,
            "lost_window_seconds": r.lost_window_seconds(now),
            "lost_window": {
                "from": r.restore_time,
                "to": r.cutover.as_ref().and_then(|c| c.done_at),
            },
        });
        let key = report_key(&self.plan.name, "recovery", &r.id, now);
        match self.reports.put_report(&key, &body).await {
            Ok(uri) => Some(uri),
            Err(e) => {
                tracing::warn!(error = %e, recovery = %r.id, "cutover report not written");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
