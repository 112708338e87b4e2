//! Restore validation (pure): prove that a resource's snapshots restore, and measure how
//! long a restore takes.
//!
//! A validation run is a persisted state machine, one per protected resource, because a
//! restore outlives any invocation: pick the newest available Lifeboat snapshot (the DR
//! copy when the plan says so) → restore it into a temporary instance or cluster (an
//! Aurora cluster gets an instance created in it) → wait until it is available (resumed
//! by ticks and RDS events, never by sleeping) → run the SQL checks → delete the temporary
//! resources, without a final snapshot → record. A run past its deadline, or whose
//! restore or connection fails, goes straight to clean-up: the temporary database is
//! always deleted.
//!
//! [`decide`] is the machine: the stored document, the input and the facts read from AWS
//! in, the next document and the actions out. [`absorb`] folds what the actions produced
//! back in. Neither reads a clock nor touches an AWS type; the executor is [`run`].

pub mod checks;
pub mod event;
pub mod run;
pub mod statement;

use crate::backup::{BackupKind, BackupRecord, BackupStatus};
use crate::error::Retry;
use crate::plan::{
    CREATED_TAG, Engine, PLAN_TAG, Plan, ProtectedResource, RESOURCE_TAG, ResourceKind, RestoreFrom,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub use checks::{CheckKind, CheckProgress, CheckResult};
pub use event::{ValidationInput, parse_input};

/// Tag marking a temporary database as a restore-validation one (value: the run id).
pub const PURPOSE_TAG: &str = "lifeboat:purpose";
/// The value of [`PURPOSE_TAG`] on validation databases.
pub const PURPOSE_VALIDATION: &str = "restore-validation";
/// Tag naming the run that created a temporary database.
pub const RUN_TAG: &str = "lifeboat:validation-run";
/// Prefix of every temporary database's identifier.
pub const TEMP_PREFIX: &str = "lbval-";
/// How long a restored instance may stay unlisted after its restore was accepted before
/// the run gives up on it (RDS lists a new instance within seconds).
const MISSING_GRACE_MINUTES: i64 = 5;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Issue the restore.
    Restore,
    /// Wait until the temporary database is available (Aurora: create its instance).
    AwaitRestore,
    /// Connect and run the checks.
    Check,
    /// Delete the temporary database.
    Cleanup,
    /// Tag, report, notify.
    Record,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Restore => "restore",
            Phase::AwaitRestore => "await restore",
            Phase::Check => "check",
            Phase::Cleanup => "clean up",
            Phase::Record => "record",
        })
    }
}

/// The snapshot a run restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// Its identifier.
    pub id: String,
    /// Its ARN (what is tagged `validated`).
    pub arn: Option<String>,
    /// The region it is in (and the temporary database is restored into).
    pub region: String,
    /// When its data was taken.
    pub created_at: Option<DateTime<Utc>>,
}

/// One validation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `<resource>-<yyyymmddthhmmz>`: the run's name in reports and tags.
    pub id: String,
    /// The plan resource.
    pub resource: String,
    /// RDS instance or Aurora cluster.
    pub kind: ResourceKind,
    /// Its engine.
    pub engine: Engine,
    /// What is restored.
    pub snapshot: SnapshotRef,
    /// The temporary instance (Aurora: the instance created in the restored cluster).
    pub instance: String,
    /// The temporary cluster (Aurora only).
    #[serde(default)]
    pub cluster: Option<String>,
    /// What started it (`schedule`, `operator`).
    pub trigger: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it is given up and torn down.
    pub deadline: DateTime<Utc>,
    /// Where it stands.
    pub phase: Phase,
    /// When the restore was accepted.
    #[serde(default)]
    pub restore_requested_at: Option<DateTime<Utc>>,
    /// When the Aurora instance was accepted.
    #[serde(default)]
    pub instance_requested_at: Option<DateTime<Utc>>,
    /// When the temporary database was first seen available.
    #[serde(default)]
    pub available_at: Option<DateTime<Utc>>,
    /// Its endpoint, once available (`host:port`).
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// How long the checks took, in milliseconds.
    #[serde(default)]
    pub check_millis: Option<u64>,
    /// The checks' results.
    #[serde(default)]
    pub results: Vec<CheckResult>,
    /// How far the checks have got while they run (they move on from step to step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_progress: Option<CheckProgress>,
    /// Why the run failed other than by a check (restore refused, deadline).
    #[serde(default)]
    pub failure: Option<String>,
    /// The last transient error met (retried at the next look).
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Run {
    /// Whether every check passed and nothing else failed.
    pub fn passed(&self) -> bool {
        self.failure.is_none() && !self.results.is_empty() && self.results.iter().all(|r| r.passed)
    }

    /// The restore's duration: accepted → first seen available (the measured RTO
    /// component), in seconds.
    pub fn restore_seconds(&self) -> Option<i64> {
        Some((self.available_at? - self.restore_requested_at?).num_seconds())
    }

    /// Why it failed, in one sentence naming the failed checks; `None` when it passed.
    pub fn failure_summary(&self) -> Option<String> {
        if let Some(f) = &self.failure {
            return Some(f.clone());
        }
        if self.results.is_empty() {
            return Some("no check ran".into());
        }
        let failed: Vec<&str> = self
            .results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.detail.as_str())
            .collect();
        (!failed.is_empty()).then(|| failed.join("; "))
    }

    /// The tags of the temporary database: Lifeboat's, this plan's, this run's.
    pub fn tags(&self, plan: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PLAN_TAG.to_string(), plan.to_string()),
            (RESOURCE_TAG.to_string(), self.resource.clone()),
            (PURPOSE_TAG.to_string(), PURPOSE_VALIDATION.to_string()),
            (RUN_TAG.to_string(), self.id.clone()),
            (
                CREATED_TAG.to_string(),
                self.started_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        ])
    }
}

/// A database endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// The last finished run of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    /// The run.
    pub run: String,
    /// When it started (the interval counts from here).
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// Whether it passed.
    pub passed: bool,
    /// The snapshot.
    pub snapshot: String,
    /// Restore seconds.
    #[serde(default)]
    pub restore_seconds: Option<i64>,
    /// Why it failed.
    #[serde(default)]
    pub failure: Option<String>,
    /// Where its report went.
    #[serde(default)]
    pub report: Option<String>,
}

/// Who acts on a resource's document, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The invocation (request id).
    pub holder: String,
    /// When it lapses.
    pub until: DateTime<Utc>,
}

impl Lease {
    /// The lease as the state store keeps it beside the document, to fence commits.
    pub fn mark(&self) -> crate::state::LeaseMark {
        crate::state::LeaseMark {
            holder: self.holder.clone(),
            until: self.until,
        }
    }
}

/// The persisted document of one resource's validation machine.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ValidationDoc {
    /// The run in progress.
    #[serde(default)]
    pub run: Option<Run>,
    /// The last finished run.
    #[serde(default)]
    pub last: Option<LastRun>,
    /// The invocation acting on it.
    #[serde(default)]
    pub lease: Option<Lease>,
}

/// What the state of a temporary database looks like in AWS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbView {
    /// RDS status (`creating`, `available`, `deleting`...).
    pub status: String,
    /// Its endpoint, when it has one.
    pub endpoint: Option<Endpoint>,
}

/// What was read about a run's temporary databases.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TempFacts {
    /// The instance (`None`: does not exist).
    pub instance: Option<DbView>,
    /// The cluster (Aurora; `None`: does not exist).
    pub cluster: Option<DbView>,
    /// Why they could not be read.
    pub unreadable: Option<String>,
}

/// What the machine is told before deciding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// The run's temporary databases (when a run is in progress).
    pub temp: TempFacts,
    /// The snapshots in the restore region (when a run may start); `Err`: unreadable.
    pub snapshots: Option<Result<Vec<BackupRecord>, String>>,
}

/// What the machine asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Restore the run's snapshot into its temporary instance or cluster.
    Restore,
    /// Create the instance in the restored Aurora cluster.
    CreateInstance,
    /// Connect and run the checks.
    RunChecks,
    /// Delete the temporary instance (no final snapshot).
    DeleteInstance,
    /// Delete the temporary cluster (no final snapshot).
    DeleteCluster,
    /// Tag the snapshot validated (on success), write the report, emit the metrics,
    /// notify on failure.
    Record,
}

/// What an action produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcome {
    /// Done (or already done).
    Done,
    /// Checks ran: how far they have got (all of them when `finished`).
    Checked {
        /// The checks taken so far, over every action.
        progress: CheckProgress,
    },
    /// Recorded; the report went here.
    Recorded {
        /// Report URI.
        report: Option<String>,
    },
    /// It failed.
    Failed {
        /// Why.
        reason: String,
        /// Whether a retry can help.
        retry: Retry,
    },
}

/// Whether the executor should decide again at once or wait for the next event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Decide again now.
    Continue,
    /// Wait for the next tick or RDS event.
    Wait,
}

/// The machine's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The document to store.
    pub doc: ValidationDoc,
    /// What to do (in order) once it is stored.
    pub actions: Vec<Action>,
    /// What happened, in a sentence.
    pub reply: String,
    /// Go on or wait.
    pub next: Next,
    /// The input was refused (a run already in progress, no snapshot).
    pub refused: bool,
}

/// The region a resource's runs restore into.
pub fn restore_region(plan: &Plan) -> &str {
    match plan.validation.restore_from {
        RestoreFrom::Dr => &plan.regions.dr,
        RestoreFrom::Primary => &plan.regions.primary,
    }
}

/// The state item of a resource's validation machine.
pub fn machine_name(resource: &str) -> String {
    format!("validation/{resource}")
}

/// Whether a resource is due for validation at `now`: never validated, or its last run
/// started at least the plan's interval ago.
pub fn is_due(plan: &Plan, doc: &ValidationDoc, now: DateTime<Utc>) -> bool {
    doc.run.is_none()
        && doc.last.as_ref().is_none_or(|last| {
            now - last.started_at >= Duration::hours(i64::from(plan.validation.interval_hours))
        })
}

/// Why no snapshot can be restored for a validation run. Nothing was started; a retry
/// helps only once a snapshot exists (or the operator names another).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSnapshot {
    /// The operator named a snapshot the restore region does not hold.
    #[error(
        "snapshot {name:?} of {resource} was not found in {region}; name a snapshot listed there, or leave `snapshot` out to restore the newest"
    )]
    NotFound {
        /// The name given.
        name: String,
        /// The plan resource.
        resource: String,
        /// The restore region.
        region: String,
    },
    /// The named snapshot is of another database: restored and checked as this one, it
    /// would prove nothing about it (and the report would say it did).
    #[error(
        "snapshot {name:?} in {region} was taken of {source_db:?}, not of {resource} ({identifier}); name a snapshot of {resource}, or leave `snapshot` out to restore its newest"
    )]
    OfAnotherDatabase {
        /// The name given.
        name: String,
        /// The restore region.
        region: String,
        /// The database it was taken of.
        source_db: String,
        /// The plan resource.
        resource: String,
        /// The resource's AWS identifier.
        identifier: String,
    },
    /// The named snapshot is still being made or copied, or failed.
    #[error("snapshot {name:?} is {status}; only an available snapshot can be restored")]
    NotAvailable {
        /// The name given.
        name: String,
        /// Its state, in a word (`copying`, `failed`...).
        status: String,
    },
    /// No snapshot of the resource is available in the restore region.
    #[error(
        "{resource} has no available Lifeboat snapshot in {region} to restore; the snapshot function takes them{copies}"
    )]
    NoneAvailable {
        /// The plan resource.
        resource: String,
        /// The restore region.
        region: String,
        /// Where the copies come from, when restores are from the DR region.
        copies: &'static str,
    },
}

/// The snapshot to restore: the named one, or the newest available Lifeboat snapshot of
/// the resource in the restore region.
pub fn pick_snapshot<'a>(
    plan: &Plan,
    resource: &ProtectedResource,
    records: &'a [BackupRecord],
    named: Option<&str>,
) -> Result<&'a BackupRecord, NoSnapshot> {
    let region = restore_region(plan);
    let kind = BackupKind::of(resource.kind);
    let candidates = records.iter().filter(|b| {
        b.kind == kind
            && b.location == region
            && b.belongs_to(&plan.name)
            && b.resource() == Some(resource.id.as_str())
    });
    match named {
        Some(name) => {
            let found = records
                .iter()
                .find(|b| b.is_named(name) && b.kind == kind && b.location == region)
                .ok_or_else(|| NoSnapshot::NotFound {
                    name: name.to_string(),
                    resource: resource.id.clone(),
                    region: region.to_string(),
                })?;
            if !resource.is_named(&found.source) {
                return Err(NoSnapshot::OfAnotherDatabase {
                    name: name.to_string(),
                    region: region.to_string(),
                    source_db: found.source.clone(),
                    resource: resource.id.clone(),
                    identifier: resource.aws_identifier().to_string(),
                });
            }
            if found.status != BackupStatus::Available {
                return Err(NoSnapshot::NotAvailable {
                    name: name.to_string(),
                    status: found.status.word().to_string(),
                });
            }
            Ok(found)
        }
        None => candidates
            .filter(|b| b.status == BackupStatus::Available && b.created_at.is_some())
            .max_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)))
            .ok_or_else(|| NoSnapshot::NoneAvailable {
                resource: resource.id.clone(),
                region: region.to_string(),
                copies: if plan.validation.restore_from == RestoreFrom::Dr {
                    " and copies them there"
                } else {
                    ""
                },
            }),
    }
}

/// A new run of `resource` restoring `snapshot`, started at `now`.
pub fn new_run(
    plan: &Plan,
    resource: &ProtectedResource,
    engine: Engine,
    snapshot: &BackupRecord,
    trigger: &str,
    now: DateTime<Utc>,
) -> Run {
    let stamp = now.format("%Y%m%dt%H%M%Sz").to_string();
    let id = format!("{}-{stamp}", resource.id);
    // `lbval-<resource>-<yymmddhhmmss>`: at most 6 + 40 + 1 + 12 = 59 characters, inside
    // RDS's 63 with the Aurora instance's `-1` suffix; to the second, so a run started
    // right after another never meets its predecessor's instance still being deleted.
    let base = format!(
        "{TEMP_PREFIX}{}-{}",
        resource.id,
        now.format("%y%m%d%H%M%S")
    );
    let (instance, cluster) = match resource.kind {
        ResourceKind::AuroraCluster => (format!("{base}-1"), Some(base)),
        _ => (base, None),
    };
    Run {
        id,
        resource: resource.id.clone(),
        kind: resource.kind,
        engine,
        snapshot: SnapshotRef {
            id: snapshot.id.clone(),
            arn: snapshot.arn.clone(),
            region: snapshot.location.clone(),
            created_at: snapshot.created_at,
        },
        instance,
        cluster,
        trigger: trigger.to_string(),
        started_at: now,
        deadline: now + Duration::minutes(i64::from(plan.validation.timeout_minutes)),
        phase: Phase::Restore,
        restore_requested_at: None,
        instance_requested_at: None,
        available_at: None,
        endpoint: None,
        check_millis: None,
        results: Vec::new(),
        check_progress: None,
        failure: None,
        last_error: None,
    }
}

/// RDS statuses from which a restore never becomes available (`deleting`: someone
/// deleted it).
fn is_failed_status(status: &str) -> bool {
    matches!(
        status,
        "failed"
            | "deleting"
            | "incompatible-restore"
            | "incompatible-parameters"
            | "incompatible-network"
            | "incompatible-option-group"
            | "storage-full"
            | "inaccessible-encryption-credentials"
            | "restore-error"
    )
}

fn gone_or_deleting(view: &Option<DbView>) -> bool {
    view.as_ref().is_none_or(|v| v.status == "deleting")
}

// Every decision is built by one of these four: where the machine goes (the document),
// what to do, and how the executor goes on.

/// Stop here until the next tick or RDS event.
fn wait(doc: ValidationDoc, reply: String) -> Decision {
    Decision {
        doc,
        actions: vec![],
        reply,
        next: Next::Wait,
        refused: false,
    }
}

/// The step is done without touching AWS: decide again at once.
fn then(doc: ValidationDoc, reply: String) -> Decision {
    Decision {
        next: Next::Continue,
        ..wait(doc, reply)
    }
}

/// Do `action`, then decide again with what it produced.
fn act(doc: ValidationDoc, action: Action, reply: String) -> Decision {
    Decision {
        actions: vec![action],
        ..then(doc, reply)
    }
}

/// Refuse the input: nothing is started or changed.
fn refuse(doc: ValidationDoc, reply: String) -> Decision {
    Decision {
        refused: true,
        ..wait(doc, reply)
    }
}

/// `doc` holding `run` again, as the phase left it.
fn keeping(mut doc: ValidationDoc, run: Run) -> ValidationDoc {
    doc.run = Some(run);
    doc
}

/// The run has failed (`failure` says why) but its temporary database must still go:
/// straight to clean-up, at once.
fn clean_up_after(doc: ValidationDoc, mut run: Run, failure: String, reply: String) -> Decision {
    run.failure = Some(failure);
    run.phase = Phase::Cleanup;
    then(keeping(doc, run), reply)
}

/// Decide the next step of `resource`'s machine. `input` is what the invocation was given
/// (as it applies to this resource), `facts` what was read from AWS.
pub fn decide(
    plan: &Plan,
    resource: &ProtectedResource,
    doc: &ValidationDoc,
    input: &ValidationInput,
    facts: &Facts,
    now: DateTime<Utc>,
) -> Decision {
    let mut doc = doc.clone();
    doc.lease = None;
    let Some(run) = doc.run.clone() else {
        return start(plan, resource, doc, input, facts, now);
    };
    if let ValidationInput::Validate { .. } = input {
        return refuse(
            doc,
            format!(
                "{}: validation run {} is already in progress (step {}); it ends by {}",
                resource.id, run.id, run.phase, run.deadline
            ),
        );
    }
    advance(doc, run, &facts.temp, now)
}

/// With no run in progress, a due schedule or an operator's request starts one on the
/// newest (or the named) snapshot; a resource the plan gives nothing to check, or with
/// nothing to restore, is refused before anything is created.
fn start(
    plan: &Plan,
    resource: &ProtectedResource,
    mut doc: ValidationDoc,
    input: &ValidationInput,
    facts: &Facts,
    now: DateTime<Utc>,
) -> Decision {
    let (start, named, trigger) = match input {
        ValidationInput::Schedule => (is_due(plan, &doc, now), None, "schedule"),
        ValidationInput::Validate { snapshot, .. } => (true, snapshot.as_deref(), "operator"),
        ValidationInput::Tick => (false, None, "tick"),
    };
    if !start {
        return wait(
            doc,
            format!("{}: no validation in progress, none due", resource.id),
        );
    }
    let Some(engine) = resource.engine else {
        return refuse(
            doc,
            format!(
                "{} has no engine in the plan; restore validation needs one",
                resource.id
            ),
        );
    };
    if resource.kind == ResourceKind::DynamodbTable || resource.validation.is_none() {
        return refuse(
            doc,
            format!(
                "{} has no `validation` checks in the plan; add them to validate its restores",
                resource.id
            ),
        );
    }
    let records = match &facts.snapshots {
        Some(Ok(records)) => records,
        Some(Err(reason)) => {
            return refuse(
                doc,
                format!(
                    "{}: the snapshots could not be listed: {reason}",
                    resource.id
                ),
            );
        }
        None => return refuse(doc, format!("{}: no snapshot listing", resource.id)),
    };
    match pick_snapshot(plan, resource, records, named) {
        Ok(snapshot) => {
            let run = new_run(plan, resource, engine, snapshot, trigger, now);
            let reply = format!(
                "{}: validation run {} started ({}), restoring {} in {}",
                resource.id, run.id, trigger, snapshot.id, snapshot.location
            );
            doc.run = Some(run);
            then(doc, reply)
        }
        Err(reason) => refuse(doc, reason.to_string()),
    }
}

/// One step of the run in progress: the phase's own function, unless the temporary
/// databases could not be read or the run is past its deadline.
fn advance(doc: ValidationDoc, run: Run, temp: &TempFacts, now: DateTime<Utc>) -> Decision {
    if let Some(reason) = &temp.unreadable
        && run.phase != Phase::Record
    {
        return unreadable(doc, run, reason);
    }
    if now >= run.deadline && run.phase < Phase::Cleanup {
        return overrun(doc, run);
    }
    match run.phase {
        Phase::Restore => restore(doc, run, temp, now),
        Phase::AwaitRestore => await_restore(doc, run, temp, now),
        Phase::Check => check(doc, run),
        Phase::Cleanup => cleanup(doc, run, temp),
        Phase::Record => record(doc, run),
    }
}

/// Deciding on what could not be seen might restore twice or delete too early: wait and
/// look again (recording can go on, it needs no look at the databases).
fn unreadable(doc: ValidationDoc, mut run: Run, reason: &str) -> Decision {
    let name = run.id.clone();
    run.last_error = Some(reason.to_string());
    wait(
        keeping(doc, run),
        format!(
            "{name}: the temporary database could not be read ({reason}); the next look retries"
        ),
    )
}

/// A run past its deadline fails, and whatever it restored is deleted rather than left
/// running (and billed).
fn overrun(doc: ValidationDoc, run: Run) -> Decision {
    let failure = format!(
        "the run exceeded its deadline ({} min) while in step {:?}; the temporary database is deleted",
        (run.deadline - run.started_at).num_minutes(),
        run.phase.to_string()
    );
    let reply = format!("{}: deadline exceeded; cleaning up", run.id);
    clean_up_after(doc, run, failure, reply)
}

/// The database the checks connect to: the instance (in the cluster, for Aurora).
fn restored_database<'a>(run: &Run, temp: &'a TempFacts) -> &'a Option<DbView> {
    if run.cluster.is_some() {
        &temp.cluster
    } else {
        &temp.instance
    }
}

/// Issue the restore, once: a restored database already there means an earlier restore
/// was accepted and its answer lost in a crash.
fn restore(doc: ValidationDoc, mut run: Run, temp: &TempFacts, now: DateTime<Utc>) -> Decision {
    let name = run.id.clone();
    if restored_database(&run, temp).is_some() {
        run.restore_requested_at.get_or_insert(now);
        run.phase = Phase::AwaitRestore;
        return then(
            keeping(doc, run),
            format!("{name}: the restore is under way"),
        );
    }
    act(
        keeping(doc, run),
        Action::Restore,
        format!("{name}: restoring"),
    )
}

/// Wait, resumed by ticks and RDS events, until the restored database is available; one
/// that never appears or ends in a failed status fails the run.
fn await_restore(doc: ValidationDoc, run: Run, temp: &TempFacts, now: DateTime<Utc>) -> Decision {
    let name = run.id.clone();
    let Some(view) = restored_database(&run, temp) else {
        let requested = run.restore_requested_at.unwrap_or(now);
        if now - requested > Duration::minutes(MISSING_GRACE_MINUTES) {
            let failure = format!(
                "the restored database {} never appeared after its restore was accepted",
                run.cluster.as_deref().unwrap_or(&run.instance)
            );
            return clean_up_after(
                doc,
                run,
                failure,
                format!("{name}: the restored database is missing"),
            );
        }
        return wait(
            keeping(doc, run),
            format!("{name}: waiting for the restore to appear"),
        );
    };
    if is_failed_status(&view.status) {
        let failure = format!(
            "the restore of {} ended in status {:?}",
            run.snapshot.id, view.status
        );
        return clean_up_after(doc, run, failure, format!("{name}: the restore failed"));
    }
    if view.status != "available" {
        let reply = format!("{name}: restore {} ({})", view.status, run.snapshot.id);
        return wait(keeping(doc, run), reply);
    }
    if run.cluster.is_some() {
        return await_cluster_instance(doc, run, temp, now);
    }
    available(doc, run, temp, now)
}

/// A restored Aurora cluster has no instance to connect to: create one, once, and wait
/// until it is available.
fn await_cluster_instance(
    doc: ValidationDoc,
    run: Run,
    temp: &TempFacts,
    now: DateTime<Utc>,
) -> Decision {
    let name = run.id.clone();
    match &temp.instance {
        None if run.instance_requested_at.is_none() => act(
            keeping(doc, run),
            Action::CreateInstance,
            format!("{name}: the cluster is restored; creating its instance"),
        ),
        None => wait(
            keeping(doc, run),
            format!("{name}: waiting for the instance to appear"),
        ),
        Some(i) if is_failed_status(&i.status) => {
            let failure = format!(
                "the instance of the restored cluster ended in status {:?}",
                i.status
            );
            clean_up_after(doc, run, failure, format!("{name}: the instance failed"))
        }
        Some(i) if i.status != "available" => {
            wait(keeping(doc, run), format!("{name}: instance {}", i.status))
        }
        Some(_) => available(doc, run, temp, now),
    }
}

/// The restore's time ends when the database is first seen available (the measured RTO
/// component); the checks connect to its endpoint next.
fn available(doc: ValidationDoc, mut run: Run, temp: &TempFacts, now: DateTime<Utc>) -> Decision {
    run.available_at.get_or_insert(now);
    run.endpoint = temp.instance.as_ref().and_then(|i| i.endpoint.clone());
    run.phase = Phase::Check;
    let reply = format!(
        "{}: available after {} s",
        run.id,
        run.restore_seconds().unwrap_or(0)
    );
    then(keeping(doc, run), reply)
}

/// Run the checks, going on from where the last action left them.
fn check(doc: ValidationDoc, run: Run) -> Decision {
    let reply = match &run.check_progress {
        Some(p) => format!(
            "{}: running the checks ({} of {} done)",
            run.id,
            p.taken.len(),
            p.planned
        ),
        None => format!("{}: running the checks", run.id),
    };
    act(keeping(doc, run), Action::RunChecks, reply)
}

/// Delete the temporary database, instance first (RDS refuses to delete a cluster that
/// still has one), and only go on to recording once both are gone or going.
fn cleanup(doc: ValidationDoc, mut run: Run, temp: &TempFacts) -> Decision {
    let name = run.id.clone();
    let instance_exists = temp.instance.is_some();
    if temp
        .instance
        .as_ref()
        .is_some_and(|i| i.status != "deleting")
    {
        return act(
            keeping(doc, run),
            Action::DeleteInstance,
            format!("{name}: deleting the temporary instance"),
        );
    }
    if run.cluster.is_some() && temp.cluster.is_some() {
        if instance_exists {
            return wait(
                keeping(doc, run),
                format!("{name}: waiting for the instance to be deleted"),
            );
        }
        if !gone_or_deleting(&temp.cluster) {
            return act(
                keeping(doc, run),
                Action::DeleteCluster,
                format!("{name}: deleting the temporary cluster"),
            );
        }
    }
    run.phase = Phase::Record;
    then(
        keeping(doc, run),
        format!("{name}: temporary database deleted"),
    )
}

/// Tag, report and notify; the run ends when that is recorded.
fn record(doc: ValidationDoc, run: Run) -> Decision {
    let reply = format!("{}: recording the result", run.id);
    act(keeping(doc, run), Action::Record, reply)
}

/// Fold what the actions produced into the document.
pub fn absorb(
    doc: &ValidationDoc,
    outcomes: &[(Action, ActionOutcome)],
    now: DateTime<Utc>,
) -> ValidationDoc {
    let mut doc = doc.clone();
    doc.lease = None;
    let Some(mut run) = doc.run.take() else {
        return doc;
    };
    for (action, outcome) in outcomes {
        match (action, outcome) {
            (_, ActionOutcome::Failed { reason, retry }) => {
                run.last_error = Some(reason.clone());
                // A refusal that a retry cannot fix ends the run (cleaned up first); a
                // transient one is retried at the next look. Clean-up and recording are
                // always retried: the temporary database must go.
                if *retry == Retry::NonRetryable && run.phase < Phase::Cleanup {
                    run.failure = Some(format!("{action:?} failed: {reason}"));
                    run.phase = Phase::Cleanup;
                }
            }
            (Action::Restore, _) => {
                run.restore_requested_at = Some(now);
                run.last_error = None;
                run.phase = Phase::AwaitRestore;
            }
            (Action::CreateInstance, _) => {
                run.instance_requested_at = Some(now);
                run.last_error = None;
            }
            (Action::RunChecks, ActionOutcome::Checked { progress }) => {
                run.last_error = None;
                if progress.finished {
                    run.results = progress.results();
                    run.check_millis = Some(progress.millis);
                    run.check_progress = None;
                    run.phase = Phase::Cleanup;
                } else {
                    // The rest run in the next action, from here.
                    run.check_progress = Some(progress.clone());
                }
            }
            (Action::Record, ActionOutcome::Recorded { report }) => {
                doc.last = Some(LastRun {
                    run: run.id.clone(),
                    started_at: run.started_at,
                    finished_at: now,
                    passed: run.passed(),
                    snapshot: run.snapshot.id.clone(),
                    restore_seconds: run.restore_seconds(),
                    failure: run.failure_summary(),
                    report: report.clone(),
                });
                return doc;
            }
            _ => {
                run.last_error = None;
            }
        }
    }
    doc.run = Some(run);
    doc
}

#[cfg(test)]
mod tests;
