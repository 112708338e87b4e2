//! The restore-validator's executor: for each resource, load its validation document,
//! read AWS, decide ([`super::decide`]), store, act, store again — until the run waits for
//! AWS (a restore takes many minutes: the next tick or RDS event resumes it).
//!
//! Exactly once: every change is a conditional write on the document's version, and the
//! write that precedes an action also takes a lease on it until the invocation's deadline,
//! so of two invocations given the same tick only one restores; the other sees the new
//! state or the lease. A crash leaves at most a lapsed lease: the next event re-reads AWS
//! (is the temporary database already there?) and goes on from the stored step.

use super::checks::{CheckKind, CheckProgress, CheckResult, Dialect, PlannedCheck};
use super::{
    Action, ActionOutcome, Decision, Facts, LastRun, Lease, Next, Run, ValidationDoc,
    ValidationInput, absorb, decide, is_due, machine_name, parse_input, restore_region,
};
use crate::backup::BackupRecord;
use crate::dr::run::Clock;
use crate::error::{AwsError, Classify, Retry};
use crate::function::Invocation;
use crate::metrics::observe;
use crate::notify::{Notification, Notifier, Severity};
use crate::plan::{Plan, ProtectedResource};
use crate::report::{ReportSink, report_key};
use crate::state::{self, AuditEntry, Commit, MachineKey, Outcome, StateError, StateStore};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Most decisions one invocation takes per resource (each a stored step); a run needs
/// about eight, and a wait ends the loop sooner.
const MAX_STEPS_PER_RESOURCE: usize = 16;
/// A validation database older than the plan's timeout plus this is a crash's leftover.
const SWEEP_MARGIN_MINUTES: i64 = 60;

/// Where and how to connect to a restored database.
#[derive(Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// PostgreSQL or MySQL.
    pub dialect: Dialect,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database (PostgreSQL) or schema (MySQL).
    pub database: String,
    /// User.
    pub username: String,
    /// Password (never logged: `Debug` leaves it out).
    pub password: String,
    /// Whether TLS is required (always in AWS; a local database may run without it).
    pub require_tls: bool,
}

impl std::fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTarget")
            .field("dialect", &self.dialect)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

/// How long checks may take in one action.
#[derive(Debug, Clone, Copy)]
pub struct CheckBudget {
    /// Each statement's limit, at the server.
    pub statement_timeout: std::time::Duration,
    /// When the action must be done: no check starts unless it can end by then.
    pub until: std::time::Instant,
}

impl CheckBudget {
    /// Checks that may take as long as their statements do (a test, a one-off probe).
    pub fn unhurried(statement_timeout: std::time::Duration) -> Self {
        CheckBudget {
            statement_timeout,
            until: std::time::Instant::now() + std::time::Duration::from_secs(24 * 3600),
        }
    }

    /// Checks of an action that must end within `window` from now.
    pub fn within(statement_timeout: std::time::Duration, window: std::time::Duration) -> Self {
        CheckBudget {
            statement_timeout,
            until: std::time::Instant::now() + window,
        }
    }

    fn left(&self) -> std::time::Duration {
        self.until
            .saturating_duration_since(std::time::Instant::now())
    }

    /// Whether one more check, at its statement limit, ends in time.
    pub fn leaves_room_for_a_check(&self) -> bool {
        self.left() >= self.statement_timeout + crate::budget::CHECK_MARGIN
    }

    /// Whether a connection and one check end in time.
    pub fn leaves_room_to_connect(&self) -> bool {
        self.left()
            >= crate::budget::DATABASE_CONNECT_TIMEOUT
                + self.statement_timeout
                + crate::budget::CHECK_MARGIN
    }
}

/// The database probing port: run planned checks against a database, read-only.
#[async_trait]
pub trait DatabaseProbe: Send + Sync {
    /// Connect and run the checks `from` has not taken yet, in one read-only session,
    /// each statement limited to the budget's `statement_timeout`, starting each only
    /// while the budget leaves room for it. A connection failure ends the checks with
    /// one failed `connect` check; a check whose statement fails is failed with the
    /// database's reason. Never fails itself.
    async fn probe_from(
        &self,
        target: &ProbeTarget,
        checks: &[PlannedCheck],
        from: CheckProgress,
        budget: CheckBudget,
    ) -> CheckProgress;

    /// Run every check, however long they take in all.
    async fn probe(
        &self,
        target: &ProbeTarget,
        checks: &[PlannedCheck],
        statement_timeout: std::time::Duration,
    ) -> Vec<CheckResult> {
        self.probe_from(
            target,
            checks,
            CheckProgress::default(),
            CheckBudget::unhurried(statement_timeout),
        )
        .await
        .results()
    }
}

/// The validation port: RDS (snapshots, temporary databases), Secrets Manager and the
/// database probe.
#[async_trait]
pub trait ValidationPort: Send + Sync {
    /// The manual snapshots (instance and cluster) in `region`.
    async fn list_snapshots(&self, region: &str) -> Result<Vec<BackupRecord>, AwsError>;
    /// The run's temporary instance and cluster. Never fails: an error is `unreadable`.
    async fn read_temp(&self, run: &Run) -> super::TempFacts;
    /// Restore the run's snapshot into its temporary instance (or cluster), tagged with
    /// `run.tags(plan)`; one that already exists is success.
    async fn restore(&self, plan: &Plan, run: &Run) -> Result<(), AwsError>;
    /// Create the instance in the run's restored cluster (Aurora); idempotent.
    async fn create_instance(&self, plan: &Plan, run: &Run) -> Result<(), AwsError>;
    /// Delete the temporary instance without a final snapshot; a missing one is success.
    async fn delete_instance(&self, run: &Run) -> Result<(), AwsError>;
    /// Delete the temporary cluster without a final snapshot; a missing one is success.
    async fn delete_cluster(&self, run: &Run) -> Result<(), AwsError>;
    /// Connect to the restored database and run the resource's checks `from` has not
    /// taken, those that end within `window`.
    async fn run_checks(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        run: &Run,
        from: CheckProgress,
        window: std::time::Duration,
    ) -> CheckProgress;
    /// Tag the run's snapshot `lifeboat:validated-at` = `at`.
    async fn tag_validated(&self, run: &Run, at: DateTime<Utc>) -> Result<(), AwsError>;
    /// The validation databases of `plan` in the restore region created before `before`,
    /// except those named in `keep`, that can be deleted now: instances, and clusters
    /// with no instance left (one with instances waits for a later sweep).
    async fn leftovers(
        &self,
        plan: &Plan,
        before: DateTime<Utc>,
        keep: &[String],
    ) -> Result<Vec<Leftover>, AwsError>;
    /// Delete a leftover without a final snapshot; a missing one is success.
    async fn delete_leftover(&self, leftover: &Leftover) -> Result<(), AwsError>;
}

/// A validation database a crash or a lost answer left behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leftover {
    /// A DB instance, by identifier.
    Instance(String),
    /// An Aurora cluster, by identifier.
    Cluster(String),
}

impl Leftover {
    /// Its identifier.
    pub fn id(&self) -> &str {
        match self {
            Leftover::Instance(id) | Leftover::Cluster(id) => id,
        }
    }
}

/// Whether a checks action ran none of the checks left (too little time was left for
/// one): going on in this invocation would only ask again.
fn checks_stalled(before: Option<&CheckProgress>, outcomes: &[(Action, ActionOutcome)]) -> bool {
    let taken_before = before.map_or(0, |p| p.taken.len());
    outcomes.iter().any(|(_, o)| {
        matches!(o, ActionOutcome::Checked { progress }
            if !progress.finished && progress.taken.len() <= taken_before)
    })
}

/// Everything the restore-validator needs.
pub struct ValidationRunner<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// RDS, Secrets Manager, the databases.
    pub port: &'a dyn ValidationPort,
    /// The state table.
    pub state: &'a dyn StateStore,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Reports.
    pub reports: &'a dyn ReportSink,
    /// Time.
    pub clock: &'a dyn Clock,
}

/// One resource after this invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceReply {
    /// The resource.
    pub resource: String,
    /// What each step said.
    pub steps: Vec<String>,
    /// The run in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    /// Runs that finished in this invocation, with their check results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<Run>,
    /// The last finished run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastRun>,
}

/// The answer to an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReply {
    /// The plan.
    pub plan: String,
    /// Per resource.
    pub resources: Vec<ResourceReply>,
    /// Leftover validation databases the sweep deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swept: Vec<String>,
}

/// Why an invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ValidationError {
    /// The input is not one the function accepts; nothing was done.
    #[error("bad input: {0}; nothing was done")]
    BadInput(String),
    /// The request cannot apply now (a run in progress, no snapshot); nothing changed.
    #[error("refused: {0}")]
    Refused(String),
    /// The state table failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Another invocation took this one's lease while it acted; the other continues.
    #[error("lost the lease on {0}'s validation state while acting; another invocation continues")]
    LeaseLost(String),
    /// The sweep of leftover validation databases failed (every run was still driven).
    #[error("the sweep of leftover validation databases failed: {0}")]
    Sweep(AwsError),
    /// The sweep left validation databases for its next run: their audit entries could
    /// not be written first.
    #[error(
        "the sweep left {count} leftover validation database(s) for its next run, because their audit entries could not be written first: {source}"
    )]
    SweepHeldBack {
        /// How many it left.
        count: usize,
        /// Why the entries were not written.
        source: StateError,
    },
}

impl Classify for ValidationError {
    fn retry(&self) -> Retry {
        match self {
            ValidationError::BadInput(_)
            | ValidationError::Refused(_)
            | ValidationError::LeaseLost(_) => Retry::NonRetryable,
            ValidationError::State(e) => e.retry(),
            ValidationError::Sweep(e) => e.retry(),
            ValidationError::SweepHeldBack { source, .. } => source.retry(),
        }
    }
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Restore => "validation.restore",
        Action::CreateInstance => "validation.create-instance",
        Action::RunChecks => "validation.checks",
        Action::DeleteInstance => "validation.delete-instance",
        Action::DeleteCluster => "validation.delete-cluster",
        Action::Record => "validation.record",
    }
}

impl ValidationRunner<'_> {
    /// Handle one invocation payload.
    pub async fn handle(
        &self,
        payload: &serde_json::Value,
        invocation: &Invocation,
    ) -> Result<ValidationReply, ValidationError> {
        let input = parse_input(payload).map_err(|e| ValidationError::BadInput(e.0))?;
        let resources: Vec<&ProtectedResource> = match &input {
            ValidationInput::Validate { resource, .. } => {
                let r = self.plan.resource(resource).ok_or_else(|| {
                    ValidationError::BadInput(format!(
                        "the plan has no resource {resource:?}; name one of: {}",
                        self.validated_resources()
                            .map(|r| r.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                if r.validation.is_none() {
                    return Err(ValidationError::BadInput(format!(
                        "{resource} has no `validation` checks in the plan; add them to validate its restores"
                    )));
                }
                vec![r]
            }
            _ => self.validated_resources().collect(),
        };
        let mut reply = ValidationReply {
            plan: self.plan.name.clone(),
            resources: Vec::new(),
            swept: Vec::new(),
        };
        let mut keep = Vec::new();
        for r in resources {
            let out = self.drive(r, &input, invocation).await?;
            if let Some(run) = &out.run {
                keep.push(run.instance.clone());
                keep.extend(run.cluster.clone());
            }
            reply.resources.push(out);
        }
        if input == ValidationInput::Schedule {
            let bound = self.clock.now()
                - Duration::minutes(
                    i64::from(self.plan.validation.timeout_minutes) + SWEEP_MARGIN_MINUTES,
                );
            reply.swept = self.sweep(bound, &keep).await?;
        }
        Ok(reply)
    }

    /// Delete the validation databases left behind, each after its intent is in the
    /// timeline; returns what was deleted. One whose intent the table refuses is left
    /// for the next sweep, and the invocation fails saying so.
    async fn sweep(
        &self,
        before: DateTime<Utc>,
        keep: &[String],
    ) -> Result<Vec<String>, ValidationError> {
        let leftovers = self
            .port
            .leftovers(self.plan, before, keep)
            .await
            .map_err(ValidationError::Sweep)?;
        let entry = |leftover: &Leftover, outcome, detail: String| AuditEntry {
            at: self.clock.now(),
            function: "restore-validator".into(),
            trigger: "schedule".into(),
            action: "validation.sweep".into(),
            resource: None,
            outcome,
            detail,
            data: serde_json::json!({"deleted": leftover}),
        };
        let intents = leftovers
            .into_iter()
            .map(|l| {
                let intent = entry(
                    &l,
                    Outcome::Intended,
                    format!(
                        "{} about to be deleted, a validation database left behind (older than the plan's timeout plus {SWEEP_MARGIN_MINUTES} min)",
                        l.id()
                    ),
                );
                (l, intent)
            })
            .collect();
        let intents =
            state::commit_intents(self.state, &self.plan.name, intents, self.clock.now()).await;
        let mut swept = Vec::new();
        let mut outcomes = Vec::new();
        let mut failure = None;
        for leftover in &intents.cleared {
            match self.port.delete_leftover(leftover).await {
                Ok(()) => {
                    outcomes.push(entry(
                        leftover,
                        Outcome::Succeeded,
                        format!("deleted {}", leftover.id()),
                    ));
                    swept.push(leftover.id().to_string());
                }
                Err(e) => {
                    outcomes.push(entry(
                        leftover,
                        Outcome::Failed,
                        format!("{} not deleted: {e}", leftover.id()),
                    ));
                    failure.get_or_insert(e);
                }
            }
        }
        // Their intents are in; an outcome that cannot be written fails the invocation,
        // saying so.
        state::append(self.state, &self.plan.name, outcomes, self.clock.now()).await?;
        if let Some(e) = failure {
            return Err(ValidationError::Sweep(e));
        }
        if let Some((_, source)) = intents.refused.first() {
            return Err(ValidationError::SweepHeldBack {
                count: intents.refused.len(),
                source: source.clone(),
            });
        }
        Ok(swept)
    }

    fn validated_resources(&self) -> impl Iterator<Item = &ProtectedResource> {
        self.plan
            .resources
            .iter()
            .filter(|r| r.validation.is_some())
    }

    /// Drive one resource's machine until it waits.
    async fn drive(
        &self,
        resource: &ProtectedResource,
        first: &ValidationInput,
        invocation: &Invocation,
    ) -> Result<ResourceReply, ValidationError> {
        let key = MachineKey::new(&self.plan.name, machine_name(&resource.id));
        let trigger = match first {
            ValidationInput::Schedule => "schedule",
            ValidationInput::Tick => "tick",
            ValidationInput::Validate { .. } => "operator",
        };
        let mut input = first.clone();
        let mut out = ResourceReply {
            resource: resource.id.clone(),
            steps: Vec::new(),
            run: None,
            finished: Vec::new(),
            last: None,
        };
        for _ in 0..MAX_STEPS_PER_RESOURCE {
            let now = self.clock.now();
            let stored = state::load::<ValidationDoc>(self.state, &key).await?;
            let (mut version, doc) = match stored {
                Some(v) => (Some(v.version), v.value),
                None => (None, ValidationDoc::default()),
            };
            out.run = doc.run.clone();
            out.last = doc.last.clone();
            if let Some(lease) = &doc.lease
                && lease.until > now
                && lease.holder != invocation.request_id
            {
                out.steps.push(format!(
                    "another invocation ({}) is acting on this resource until {}; this one leaves it",
                    lease.holder, lease.until
                ));
                return Ok(out);
            }
            let facts = self.gather(&doc, &input, now).await;
            let decision = decide(self.plan, resource, &doc, &input, &facts, now);
            if decision.refused {
                out.steps.push(decision.reply.clone());
                // An operator's request refused, or a schedule with nothing to restore:
                // said once per start attempt.
                let operator = matches!(input, ValidationInput::Validate { .. });
                state::record_refusal(
                    self.state,
                    &self.plan.name,
                    AuditEntry {
                        at: now,
                        function: "restore-validator".into(),
                        trigger: trigger.into(),
                        action: "validation.start".into(),
                        resource: Some(resource.id.clone()),
                        outcome: if operator {
                            Outcome::Refused
                        } else {
                            Outcome::Skipped
                        },
                        detail: decision.reply.clone(),
                        data: serde_json::Value::Null,
                    },
                )
                .await;
                if operator {
                    return Err(ValidationError::Refused(decision.reply));
                }
                return Ok(out);
            }
            let Decision {
                doc: mut next_doc,
                actions,
                reply,
                next,
                ..
            } = decision;
            if !actions.is_empty() {
                next_doc.lease = Some(Lease {
                    holder: invocation.request_id.clone(),
                    until: invocation.deadline,
                });
            }
            // The run's start and each action's intent go with the state change before
            // the actions: no action without its entry.
            let mut entries = Vec::new();
            if doc.run.is_none()
                && let Some(run) = &next_doc.run
            {
                entries.push(self.entry(
                    run,
                    trigger,
                    "validation.start",
                    Outcome::Started,
                    &reply,
                ));
            }
            if let Some(run) = &next_doc.run {
                entries.extend(actions.iter().map(|a| {
                    self.entry(
                        run,
                        trigger,
                        action_name(a),
                        Outcome::Intended,
                        &format!("{} about to be taken", action_name(a)),
                    )
                }));
            }
            let commit = if next_doc != doc {
                Commit::write(&key, &next_doc, version, now)?
                    .granting(next_doc.lease.as_ref().map(Lease::mark))
            } else {
                Commit::check(&key, version, now)
            }
            .recording(entries);
            if !commit.is_empty() {
                match commit.send(self.state).await {
                    Ok(v) => version = v,
                    Err(StateError::Conflict { .. }) => {
                        out.steps.push(
                            "the state changed under this invocation; reading it again".into(),
                        );
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            out.steps.push(reply);
            out.run = next_doc.run.clone();
            if actions.is_empty() {
                if next == Next::Wait {
                    return Ok(out);
                }
                input = ValidationInput::Tick;
                continue;
            }
            let Some(run) = next_doc.run.clone() else {
                return Ok(out);
            };
            let mut outcomes = Vec::new();
            let mut records = Vec::new();
            let until = next_doc
                .lease
                .as_ref()
                .map_or(invocation.deadline, |l| l.until);
            for action in &actions {
                // Only while the lease leaves room for the action and the commit; the
                // next look retries one left undone or cut off, re-reading AWS first.
                let outcome = match crate::budget::action_window(self.clock.now(), until) {
                    Some(window) => {
                        tokio::time::timeout(window, self.perform(resource, &run, action, window))
                            .await
                            .unwrap_or_else(|_| {
                                ActionOutcome::Failed {
                        reason: "given up before the lease lapsed (the call may have taken effect)"
                            .into(),
                        retry: Retry::Retryable,
                    }
                            })
                    }
                    None => ActionOutcome::Failed {
                        reason: "not started: too little of the lease was left".into(),
                        retry: Retry::Retryable,
                    },
                };
                let (result, detail) = match &outcome {
                    ActionOutcome::Failed { reason, .. } => (Outcome::Failed, reason.clone()),
                    ActionOutcome::Checked { progress } => {
                        let results = progress.results();
                        let passed = results.iter().filter(|r| r.passed).count();
                        (
                            if passed == results.len() {
                                Outcome::Succeeded
                            } else {
                                Outcome::Failed
                            },
                            if progress.finished {
                                format!(
                                    "{passed} of {} checks passed in {} ms",
                                    results.len(),
                                    progress.millis
                                )
                            } else {
                                format!(
                                    "{} of {} checks taken so far ({passed} passed, {} ms); \
                                     the rest run in the next step",
                                    progress.taken.len(),
                                    progress.planned,
                                    progress.millis
                                )
                            },
                        )
                    }
                    ActionOutcome::Recorded { report } => (
                        if run.passed() {
                            Outcome::Succeeded
                        } else {
                            Outcome::Failed
                        },
                        match run.failure_summary() {
                            None => format!(
                                "{} restores: every check passed; restore took {} s",
                                run.snapshot.id,
                                run.restore_seconds().unwrap_or(0)
                            ),
                            Some(why) => format!("validation of {} failed: {why}", run.snapshot.id),
                        } + &report
                            .as_ref()
                            .map(|r| format!("; report {r}"))
                            .unwrap_or_default(),
                    ),
                    ActionOutcome::Done => {
                        (Outcome::Succeeded, format!("{} done", action_name(action)))
                    }
                };
                if let ActionOutcome::Failed { reason, .. } = &outcome {
                    out.steps.push(format!(
                        "{} failed (retried at the next look): {reason}",
                        action_name(action)
                    ));
                }
                records.push(self.entry(&run, trigger, action_name(action), result, &detail));
                outcomes.push((action.clone(), outcome));
            }
            let after = absorb(&next_doc, &outcomes, self.clock.now());
            // The outcomes go with the state change after the actions, under this
            // invocation's lease.
            let commit = Commit::write(&key, &after, version, self.clock.now())?
                .fenced_by(Some(&invocation.request_id))
                .recording(records);
            match commit.send(self.state).await {
                Ok(_) => {}
                Err(StateError::Conflict { .. } | StateError::LeaseLapsed { .. }) => {
                    return Err(ValidationError::LeaseLost(resource.id.clone()));
                }
                Err(e) => return Err(e.into()),
            }
            out.run = after.run.clone();
            out.last = after.last.clone();
            if after.run.is_none() {
                let mut finished = run.clone();
                finished.phase = super::Phase::Record;
                out.finished.push(finished);
                return Ok(out);
            }
            if outcomes.iter().any(|(_, o)| {
                matches!(
                    o,
                    ActionOutcome::Failed {
                        retry: Retry::Retryable,
                        ..
                    }
                )
            }) {
                return Ok(out);
            }
            if checks_stalled(run.check_progress.as_ref(), &outcomes) {
                out.steps.push(
                    "the checks left do not fit in what is left of this invocation; the next \
                     look runs them"
                        .into(),
                );
                return Ok(out);
            }
            input = ValidationInput::Tick;
        }
        out.steps
            .push("step limit of this invocation reached; the next tick resumes".into());
        Ok(out)
    }

    fn entry(
        &self,
        run: &Run,
        trigger: &str,
        action: &str,
        outcome: Outcome,
        detail: &str,
    ) -> AuditEntry {
        AuditEntry {
            at: self.clock.now(),
            function: "restore-validator".into(),
            trigger: trigger.to_string(),
            action: action.to_string(),
            resource: Some(run.resource.clone()),
            outcome,
            detail: detail.to_string(),
            data: serde_json::json!({"run": run.id, "snapshot": run.snapshot.id}),
        }
    }

    async fn gather(
        &self,
        doc: &ValidationDoc,
        input: &ValidationInput,
        now: DateTime<Utc>,
    ) -> Facts {
        let mut facts = Facts::default();
        match &doc.run {
            Some(run) => facts.temp = self.port.read_temp(run).await,
            None => {
                let may_start = match input {
                    ValidationInput::Schedule => is_due(self.plan, doc, now),
                    ValidationInput::Validate { .. } => true,
                    ValidationInput::Tick => false,
                };
                if may_start {
                    let region = restore_region(self.plan);
                    facts.snapshots = Some(
                        self.port
                            .list_snapshots(region)
                            .await
                            .map_err(|e| e.to_string()),
                    );
                }
            }
        }
        facts
    }

    /// Perform `action`, which must end within `window`.
    async fn perform(
        &self,
        resource: &ProtectedResource,
        run: &Run,
        action: &Action,
        window: std::time::Duration,
    ) -> ActionOutcome {
        let done = |r: Result<(), AwsError>| match r {
            Ok(()) => ActionOutcome::Done,
            Err(e) => ActionOutcome::Failed {
                reason: e.to_string(),
                retry: e.retry(),
            },
        };
        match action {
            Action::Restore => done(self.port.restore(self.plan, run).await),
            Action::CreateInstance => done(self.port.create_instance(self.plan, run).await),
            Action::DeleteInstance => done(self.port.delete_instance(run).await),
            Action::DeleteCluster => done(self.port.delete_cluster(run).await),
            Action::RunChecks => ActionOutcome::Checked {
                progress: self
                    .port
                    .run_checks(
                        self.plan,
                        resource,
                        run,
                        run.check_progress.clone().unwrap_or_default(),
                        window,
                    )
                    .await,
            },
            Action::Record => self.record(run).await,
        }
    }

    /// Tag (on success), report, metrics, notification (on failure).
    async fn record(&self, run: &Run) -> ActionOutcome {
        let now = self.clock.now();
        let passed = run.passed();
        if passed && let Err(e) = self.port.tag_validated(run, now).await {
            return ActionOutcome::Failed {
                reason: format!("the snapshot could not be tagged validated: {e}"),
                retry: Retry::Retryable,
            };
        }
        let dims = [("Resource", run.resource.clone())];
        observe(
            "ValidationPassed",
            metrics::Unit::Count,
            if passed { 1.0 } else { 0.0 },
            &dims,
        );
        if let Some(s) = run.restore_seconds() {
            observe("RestoreSeconds", metrics::Unit::Seconds, s as f64, &dims);
        }
        if let Some(ms) = run.check_millis {
            observe(
                "ValidationCheckSeconds",
                metrics::Unit::Seconds,
                ms as f64 / 1000.0,
                &dims,
            );
        }
        let report = serde_json::json!({
            "plan": self.plan.name,
            "function": "restore-validator",
            "run": run.id,
            "resource": run.resource,
            "snapshot": run.snapshot,
            "restored_as": {"instance": run.instance, "cluster": run.cluster},
            "trigger": run.trigger,
            "started_at": run.started_at,
            "finished_at": now,
            "passed": passed,
            "failure": run.failure_summary(),
            "restore_seconds": run.restore_seconds(),
            "check_seconds": run.check_millis.map(|ms| ms as f64 / 1000.0),
            "checks": run.results,
        });
        let key = report_key(
            &self.plan.name,
            "restore-validator",
            &run.id,
            run.started_at,
        );
        let uri = match self.reports.put_report(&key, &report).await {
            Ok(uri) => Some(uri),
            Err(e) => {
                tracing::warn!(error = %e, "validation report not written");
                None
            }
        };
        if let Some(why) = run.failure_summary() {
            let failed: Vec<&CheckResult> = run.results.iter().filter(|r| !r.passed).collect();
            let first = failed
                .first()
                .map(|r| r.name.clone())
                .unwrap_or_else(|| "restore".into());
            let notification = Notification {
                plan: self.plan.name.clone(),
                severity: Severity::Critical,
                subject: format!("restore validation of {} failed: {first}", run.resource),
                body: format!(
                    "The restore of snapshot {} ({}) into {} did not validate: {why}. The temporary database was deleted. {}",
                    run.snapshot.id,
                    run.snapshot.region,
                    run.instance,
                    if failed.iter().any(|r| r.kind == CheckKind::Connect) {
                        "Check the plan's subnet group and security groups (the function must reach the restored database) and the credentials secret."
                    } else {
                        "Until a snapshot validates, treat this resource's backups as unproven."
                    }
                ),
                details: report.clone(),
            };
            if let Err(e) = self.notifier.notify(&notification).await {
                tracing::warn!(error = %e, "notification not sent");
            }
        }
        ActionOutcome::Recorded { report: uri }
    }
}

#[cfg(test)]
mod tests;
