//! Point-in-time recovery from accidental damage (a `DELETE` without `WHERE`, a bad
//! migration): the pure core, the recovery function's inputs ([`event`]) and its
//! executor ([`run`]).
//!
//! Failing over would carry such damage to the DR region, so the answer is a restore of
//! the resource as it was just before the damage, into a new, clearly named resource
//! ([`recovery_name`], [`recovery_tags`]), checked, and made the writer only on an
//! operator's `cutover`:
//!
//! `Requested → Restoring → (Aurora: CreatingInstance) → Validating → Ready{checks}
//! → CuttingOver{fence the damaged writer → point the database record} → CutOver`,
//! or at any point before cutover `Discarding → Discarded`. The recovered resource is
//! never deleted automatically: only `discard` deletes it, and never once it has served
//! as the writer.
//!
//! Cutover changes the writer, so it shares the single-writer lock of failover and
//! failback ([`may_start`]): it starts only while the DR state is Normal and no other
//! cutover runs, and failover and failback are refused while a cutover runs, or while
//! the writer is a recovered database the plan does not name yet (failover would promote
//! a replica of the fenced, damaged one). The caller must evaluate [`may_start`] and
//! record the claim in one conditional write, as the DR executor does with its versioned
//! state (`dr::run`); the property test in `tests.rs` checks the rule over random
//! interleavings of failover, failback, recoveries and crashes.

pub mod event;
pub mod run;
#[cfg(test)]
mod tests;

use crate::dr::Note;
use crate::notify::Severity;
use crate::plan::{Plan, RESOURCE_TAG, ResourceKind, SqlAssertion};
use crate::validation::checks::{CheckProgress, Dialect};
use crate::validation::statement::{UnsafeSql, read_only_query};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;

/// Tag naming the recovery a restored resource belongs to.
pub const RECOVERY_TAG: &str = "lifeboat:recovery";
/// Tag holding the instant a restored resource was restored to (RFC 3339).
pub const RESTORE_TIME_TAG: &str = "lifeboat:restore-time";
/// Tag naming the resource a recovered one was restored from.
pub const RESTORED_FROM_TAG: &str = "lifeboat:restored-from";

/// The span of time a resource can be restored to, as AWS reports it (RDS
/// `EarliestRestorableTime` / `LatestRestorableTime`, DynamoDB's
/// `EarliestRestorableDateTime` / `LatestRestorableDateTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorableWindow {
    /// The earliest instant.
    pub earliest: DateTime<Utc>,
    /// The latest instant (AWS keeps it a few minutes behind now).
    pub latest: DateTime<Utc>,
}

impl fmt::Display for RestorableWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", rfc3339(self.earliest), rfc3339(self.latest))
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An operator command, as the function's event carries it (`{"action": "recover", ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RecoveryCommand {
    /// Restore a resource to an instant into a new resource.
    Recover {
        /// The plan's resource id.
        resource: String,
        /// An RFC 3339 instant, or `latest`.
        restore_time: String,
        /// Why, for the timeline.
        reason: String,
        /// The recovery's own checks, beside the plan's validation checks of the resource
        /// (for example the row count of the damaged table).
        #[serde(default)]
        assertions: Vec<SqlAssertion>,
    },
    /// Report one recovery, or all.
    RecoveryStatus {
        /// The recovery id; all when absent.
        #[serde(default)]
        recovery: Option<String>,
    },
    /// Make the recovered database the writer.
    Cutover {
        /// The recovery id.
        recovery: String,
        /// Cut over although checks failed.
        #[serde(default)]
        force: bool,
        /// Why the force (required with it).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Delete an unused recovery's resource.
    Discard {
        /// The recovery id.
        recovery: String,
    },
}

/// What drives the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryInput {
    /// An operator command.
    Command(RecoveryCommand),
    /// A schedule tick or an RDS event: look again and go on.
    Tick,
}

pub use crate::dr::DrPhase;

/// The cutover's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CutStep {
    /// Stop the damaged writer accepting writes.
    Fence,
    /// Point the plan's database record at the recovered database.
    Repoint,
}

/// Where a recovery is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase")]
pub enum Phase {
    /// Accepted; the restore is issued, and AWS does not show the new resource yet.
    Requested,
    /// AWS shows the new resource being restored.
    Restoring,
    /// Aurora: the restored cluster needs an instance to answer queries.
    CreatingInstance,
    /// The checks run against the recovered resource.
    Validating,
    /// Restored and checked; waits for `cutover` or `discard`.
    Ready {
        /// Whether every check passed.
        checks_passed: bool,
    },
    /// Becoming the writer.
    CuttingOver {
        /// The step.
        step: CutStep,
    },
    /// The recovered database is the writer.
    CutOver,
    /// The recovered resource is being deleted.
    Discarding,
    /// Deleted.
    Discarded,
    /// The restore failed; `discard` cleans up.
    Failed {
        /// What AWS said.
        why: String,
    },
}

impl Phase {
    /// Whether the recovery still moves by itself (on ticks).
    pub fn active(&self) -> bool {
        matches!(
            self,
            Phase::Requested
                | Phase::Restoring
                | Phase::CreatingInstance
                | Phase::Validating
                | Phase::CuttingOver { .. }
                | Phase::Discarding
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Ready { checks_passed } => write!(
                f,
                "Ready (checks {})",
                if *checks_passed { "passed" } else { "failed" }
            ),
            Phase::CuttingOver { step } => write!(f, "CuttingOver/{step:?}"),
            Phase::Failed { why } => write!(f, "Failed ({why})"),
            other => fmt::Debug::fmt(other, f),
        }
    }
}

/// What the checks found on the recovered resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckReport {
    /// The checks that passed, each in a sentence.
    pub passed: Vec<String>,
    /// The checks that failed, each with what was found.
    pub failed: Vec<String>,
}

/// The cutover's record: what was fenced, when the record moved, and the data lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutover {
    /// The damaged writer, fenced first.
    pub fenced: String,
    /// The database record repointed.
    pub record: String,
    /// When the cutover began.
    pub started_at: DateTime<Utc>,
    /// Why checks were overridden, when forced.
    #[serde(default)]
    pub forced: Option<String>,
    /// When the damaged writer was seen fenced.
    #[serde(default)]
    pub fenced_at: Option<DateTime<Utc>>,
    /// When the record was seen naming the recovered database.
    #[serde(default)]
    pub done_at: Option<DateTime<Utc>>,
}

/// One recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// Its id, also the recovered resource's name: `<resource>-pitr-<yyyymmddhhmm>`.
    pub id: String,
    /// The plan's resource id.
    pub resource: String,
    /// What kind of resource.
    pub kind: ResourceKind,
    /// The damaged resource's AWS identifier.
    pub source: String,
    /// Aurora: the instance created in the restored cluster.
    #[serde(default)]
    pub instance: Option<String>,
    /// The instant restored to.
    pub restore_time: DateTime<Utc>,
    /// Whether the operator asked for the latest restorable time.
    pub latest: bool,
    /// Why, as the operator said.
    pub reason: String,
    /// The recovery's own checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertions: Vec<SqlAssertion>,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Where it is.
    pub phase: Phase,
    /// What the checks found.
    #[serde(default)]
    pub checks: Option<CheckReport>,
    /// How far the checks have got while they run (they move on from step to step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_progress: Option<CheckProgress>,
    /// The cutover, once begun.
    #[serde(default)]
    pub cutover: Option<Cutover>,
}

impl Recovery {
    /// The data lost by the cutover: from the restore time to the record's move (or
    /// `now` while it is still under way), in seconds.
    pub fn lost_window_seconds(&self, now: DateTime<Utc>) -> i64 {
        let until = self.cutover.as_ref().and_then(|c| c.done_at).unwrap_or(now);
        (until - self.restore_time).num_seconds().max(0)
    }
}

/// Every recovery of a plan: the persisted state of this machine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecoveryBook {
    /// Oldest first.
    pub recoveries: Vec<Recovery>,
}

impl RecoveryBook {
    /// A recovery by id.
    pub fn get(&self, id: &str) -> Option<&Recovery> {
        self.recoveries.iter().find(|r| r.id == id)
    }

    /// The cutover under way, if any.
    pub fn cutting_over(&self) -> Option<&Recovery> {
        self.recoveries
            .iter()
            .find(|r| matches!(r.phase, Phase::CuttingOver { .. }))
    }

    /// The resource's writer when a recovery of it was cut over: the latest cut over.
    pub fn recovered_writer(&self, resource: &str) -> Option<&Recovery> {
        self.recoveries
            .iter()
            .filter(|r| r.resource == resource && r.phase == Phase::CutOver)
            .max_by_key(|r| r.cutover.as_ref().and_then(|c| c.done_at))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.recoveries.is_empty()
    }

    /// Whether any recovery still moves by itself (a tick should advance it).
    pub fn any_active(&self) -> bool {
        self.recoveries.iter().any(|r| r.phase.active())
    }

    fn ids(&self) -> Vec<String> {
        self.recoveries.iter().map(|r| r.id.clone()).collect()
    }
}

/// A resource's state in AWS, as read before deciding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Presence {
    /// Not there (yet, or any more).
    #[default]
    Missing,
    /// Being created or modified.
    Creating,
    /// Ready.
    Available,
    /// Being deleted.
    Deleting,
    /// AWS gave up on it.
    Failed(String),
}

/// What AWS shows of one recovery.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecoveredFacts {
    /// The restored instance, cluster or table.
    pub resource: Presence,
    /// Aurora: the instance in the restored cluster.
    pub instance: Presence,
    /// The checks' results, once run.
    pub checks: Option<CheckReport>,
    /// How far the checks got in this invocation, while some are left.
    #[serde(default)]
    pub checks_so_far: Option<CheckProgress>,
    /// Whether the damaged writer is fenced (no longer accepts writes).
    pub writer_fenced: bool,
    /// The identifier the database record names now, once INSYNC.
    pub record_target: Option<String>,
}

/// What is read from AWS and the DR state before deciding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecoveryFacts {
    /// The plan's DR state phase (the lock shared with failover and failback).
    pub dr: Option<DrPhase>,
    /// The restorable window of the resource a `recover` names, when AWS reported one.
    pub window: Option<RestorableWindow>,
    /// By recovery id.
    pub recovered: BTreeMap<String, RecoveredFacts>,
}

/// What to do in AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoveryAction {
    /// Point-in-time restore of `source` into `target`, with the plan's network and
    /// encryption settings, never public.
    Restore {
        /// The recovery.
        recovery: String,
        /// What kind.
        kind: ResourceKind,
        /// The damaged resource's AWS identifier.
        source: String,
        /// The new resource's name.
        target: String,
        /// The instant (`None`: the latest restorable time, as AWS's `UseLatestRestorableTime`).
        restore_time: Option<DateTime<Utc>>,
        /// Tags for the new resource.
        tags: Vec<(String, String)>,
    },
    /// Aurora: create the instance of the restored cluster.
    CreateInstance {
        /// The recovery.
        recovery: String,
        /// The restored cluster.
        cluster: String,
        /// The instance's name.
        instance: String,
        /// Its tags.
        tags: Vec<(String, String)>,
    },
    /// Run the plan's validation checks for the resource against the recovered one.
    RunChecks {
        /// The recovery.
        recovery: String,
        /// The plan resource whose checks apply.
        resource: String,
        /// The recovered resource.
        target: String,
        /// The recovery's own checks.
        assertions: Vec<SqlAssertion>,
        /// The checks taken so far (they run from there).
        progress: CheckProgress,
    },
    /// Stop the damaged writer accepting writes.
    Fence {
        /// The recovery.
        recovery: String,
        /// The damaged writer.
        writer: String,
    },
    /// Point the plan's database record at the recovered database.
    PointRecord {
        /// The recovery.
        recovery: String,
        /// The record.
        record: String,
        /// The recovered database.
        target: String,
    },
    /// Delete the recovered resource (and its Aurora instance) without a final snapshot:
    /// it is a copy of data the source's backups still hold.
    Delete {
        /// The recovery.
        recovery: String,
        /// The recovered resource.
        target: String,
        /// Aurora: its instance.
        instance: Option<String>,
    },
}

/// Why a command was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// The command names no plan resource.
    #[error("unknown resource {resource:?}: the plan protects {known}")]
    UnknownResource {
        /// As given.
        resource: String,
        /// The plan's resource ids.
        known: String,
    },
    /// A command needs a reason.
    #[error(
        "{command} needs a \"reason\" with visible text, not only spaces or invisible characters (it is recorded in the timeline)"
    )]
    MissingReason {
        /// The command.
        command: String,
    },
    /// The restore time could not be read.
    #[error(
        "restore_time {given:?} is not a time: give an RFC 3339 instant such as \
         2026-11-20T14:29:00Z, or \"latest\""
    )]
    UnparsableTime {
        /// As given.
        given: String,
    },
    /// The restore time has not happened yet.
    #[error(
        "restore_time {requested} is in the future (now is {now}); {resource} can be restored \
         to {window}"
    )]
    InFuture {
        /// The resource.
        resource: String,
        /// As asked.
        requested: String,
        /// Now.
        now: String,
        /// The restorable window.
        window: RestorableWindow,
    },
    /// The restore time is outside the restorable window.
    #[error(
        "restore_time {requested} is outside {resource}'s restorable window: choose a time \
         from {window}"
    )]
    OutsideWindow {
        /// The resource.
        resource: String,
        /// As asked.
        requested: String,
        /// The restorable window.
        window: RestorableWindow,
    },
    /// AWS reported no restorable window.
    #[error(
        "{resource} has no restorable window: enable automated backups (RDS, Aurora) or \
         point-in-time recovery (DynamoDB) on it"
    )]
    NoWindow {
        /// The resource.
        resource: String,
    },
    /// A recovery of the resource to that minute exists already.
    #[error(
        "recovery {id} exists already ({phase}): use it, or discard it first to restore to \
         that minute again"
    )]
    Duplicate {
        /// The recovery.
        id: String,
        /// Its phase.
        phase: String,
    },
    /// The command names no recovery.
    #[error("unknown recovery {id:?}: known recoveries are {known}")]
    UnknownRecovery {
        /// As given.
        id: String,
        /// The known ids.
        known: String,
    },
    /// Cutover of a recovery not ready.
    #[error("recovery {id} is {phase}: cutover needs it Ready (restored and checked)")]
    NotReady {
        /// The recovery.
        id: String,
        /// Its phase.
        phase: String,
    },
    /// Cutover of a recovery whose checks failed.
    #[error(
        "recovery {id} failed its checks ({failed}): look at the recovered database; to cut \
         over anyway, send \"force\": true with a \"reason\""
    )]
    ChecksFailed {
        /// The recovery.
        id: String,
        /// What failed.
        failed: String,
    },
    /// The resource has no database record to repoint.
    #[error(
        "{resource} has no dns_record in the plan, so Lifeboat cannot move its writer: point \
         the applications at {target} yourself, or add the record to the plan"
    )]
    NoRecord {
        /// The resource.
        resource: String,
        /// The recovered resource.
        target: String,
    },
    /// The single-writer lock is held.
    #[error("{task} refused: {why}")]
    Locked {
        /// What was refused.
        task: String,
        /// Who holds the lock, and what to do.
        why: String,
    },
    /// One of the recovery's own assertions is not one read-only query on the
    /// resource's engine (or names no engine to be parsed for).
    #[error(
        "assertions[{index}] ({name:?}) is not one read-only query for {resource} ({engine}): \
         {why}; {}", why.fix()
    )]
    UnsafeAssertion {
        /// Its position in the command.
        index: usize,
        /// Its name.
        name: String,
        /// The resource.
        resource: String,
        /// The engine it was parsed for.
        engine: String,
        /// Why.
        why: UnsafeSql,
    },
    /// Discard of a recovery that is or was the writer.
    #[error(
        "recovery {id} is {phase}: Lifeboat never deletes a database that serves or served \
         as the writer; delete it yourself once you are sure"
    )]
    InUse {
        /// The recovery.
        id: String,
        /// Its phase.
        phase: String,
    },
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryDecision {
    /// The next state.
    pub state: RecoveryBook,
    /// What to do in AWS.
    pub actions: Vec<RecoveryAction>,
    /// What to tell people and record.
    pub notes: Vec<Note>,
    /// The answer to the caller.
    pub reply: String,
    /// Why the input was refused; then nothing changed.
    pub refused: Option<RecoveryError>,
}

impl RecoveryDecision {
    fn keep(state: &RecoveryBook, reply: impl Into<String>) -> Self {
        RecoveryDecision {
            state: state.clone(),
            actions: vec![],
            notes: vec![],
            reply: reply.into(),
            refused: None,
        }
    }

    fn refuse(state: &RecoveryBook, error: RecoveryError) -> Self {
        RecoveryDecision {
            reply: error.to_string(),
            refused: Some(error),
            ..RecoveryDecision::keep(state, "")
        }
    }

    fn note(mut self, severity: Severity, action: &str, subject: String, detail: String) -> Self {
        self.notes.push(note(severity, action, subject, detail));
        self
    }
}

fn note(severity: Severity, action: &str, subject: String, detail: String) -> Note {
    Note {
        severity,
        action: action.into(),
        subject,
        detail,
        data: serde_json::Value::Null,
    }
}

/// What wants the single-writer lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterTask<'a> {
    /// A failover (alarm, forced or approved).
    Failover,
    /// A failback.
    Failback,
    /// The cutover of this recovery.
    Cutover(&'a str),
}

/// Whether a task that changes the writer may start now. Failover and failback call it
/// with the plan's recoveries; cutover with the DR phase. See the module documentation.
pub fn may_start(
    task: WriterTask<'_>,
    dr: DrPhase,
    book: &RecoveryBook,
    plan: &Plan,
) -> Result<(), RecoveryError> {
    let locked = |task: &str, why: String| {
        Err(RecoveryError::Locked {
            task: task.into(),
            why,
        })
    };
    if let Some(r) = book.cutting_over() {
        let what = match task {
            WriterTask::Failover => "failover",
            WriterTask::Failback => "failback",
            WriterTask::Cutover(id) if id == r.id => return Ok(()),
            WriterTask::Cutover(_) => "cutover",
        };
        return locked(
            what,
            format!(
                "the cutover of recovery {} is under way; wait for it to finish \
                 (recovery-status)",
                r.id
            ),
        );
    }
    match task {
        WriterTask::Cutover(_) if dr != DrPhase::Normal => locked(
            "cutover",
            format!(
                "the DR state is {dr}: a recovery cuts over only while the primary region \
                 serves and no failover or failback runs"
            ),
        ),
        WriterTask::Failover => {
            // After a cutover, the DR replica still follows the fenced, damaged database:
            // promoting it would bring the damage back beside the recovered writer.
            for resource in &plan.resources {
                if let Some(r) = book.recovered_writer(&resource.id)
                    && resource.replica.is_some()
                    && !resource.is_named(&r.id)
                {
                    return locked(
                        "failover",
                        format!(
                            "{}'s writer is the recovered {}, which the plan does not name: \
                             set the resource's identifier to {} and create its DR replica \
                             first",
                            resource.id, r.id, r.id
                        ),
                    );
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The recovered resource's name: `<resource id>-pitr-<yyyymmddhhmm>` of the restore time
/// (at most 58 characters: plan ids have at most 40, RDS allows 63).
pub fn recovery_name(resource: &str, restore_time: DateTime<Utc>) -> String {
    format!("{resource}-pitr-{}", restore_time.format("%Y%m%d%H%M"))
}

/// The tags of a recovered resource.
pub fn recovery_tags(plan: &Plan, r: &Recovery) -> Vec<(String, String)> {
    vec![
        (crate::plan::PLAN_TAG.into(), plan.name.clone()),
        (RESOURCE_TAG.into(), r.resource.clone()),
        (RECOVERY_TAG.into(), r.id.clone()),
        (RESTORE_TIME_TAG.into(), rfc3339(r.restore_time)),
        (RESTORED_FROM_TAG.into(), r.source.clone()),
    ]
}

/// Check a requested restore time against the window: `latest`, or an RFC 3339 instant
/// not in the future and inside the window.
pub fn resolve_restore_time(
    resource: &str,
    given: &str,
    window: Option<RestorableWindow>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, bool), RecoveryError> {
    let given = given.trim();
    let requested = if given.eq_ignore_ascii_case("latest") {
        None
    } else {
        Some(
            DateTime::parse_from_rfc3339(given)
                .map_err(|_| RecoveryError::UnparsableTime {
                    given: given.into(),
                })?
                .with_timezone(&Utc),
        )
    };
    let window = window.ok_or_else(|| RecoveryError::NoWindow {
        resource: resource.into(),
    })?;
    let Some(t) = requested else {
        return Ok((window.latest, true));
    };
    if t > now {
        return Err(RecoveryError::InFuture {
            resource: resource.into(),
            requested: rfc3339(t),
            now: rfc3339(now),
            window,
        });
    }
    if t < window.earliest || t > window.latest {
        return Err(RecoveryError::OutsideWindow {
            resource: resource.into(),
            requested: rfc3339(t),
            window,
        });
    }
    Ok((t, false))
}

/// Decide the next state and actions (pure: `now` and the facts are given).
pub fn step(
    plan: &Plan,
    book: &RecoveryBook,
    input: &RecoveryInput,
    facts: &RecoveryFacts,
    now: DateTime<Utc>,
) -> RecoveryDecision {
    let decided = match input {
        RecoveryInput::Command(RecoveryCommand::Recover {
            resource,
            restore_time,
            reason,
            assertions,
        }) => recover(
            plan,
            book,
            Request {
                resource,
                restore_time,
                reason,
                assertions,
            },
            facts,
            now,
        ),
        RecoveryInput::Command(RecoveryCommand::RecoveryStatus { recovery }) => {
            status(book, recovery.as_deref(), now)
        }
        RecoveryInput::Command(RecoveryCommand::Cutover {
            recovery,
            force,
            reason,
        }) => cutover(plan, book, recovery, *force, reason.as_deref(), facts, now),
        RecoveryInput::Command(RecoveryCommand::Discard { recovery }) => discard(book, recovery),
        RecoveryInput::Tick => Ok(advance(plan, book, facts, now)),
    };
    decided.unwrap_or_else(|e| RecoveryDecision::refuse(book, e))
}

fn unknown_recovery(book: &RecoveryBook, id: &str) -> RecoveryError {
    let known = book.ids();
    RecoveryError::UnknownRecovery {
        id: id.into(),
        known: if known.is_empty() {
            "none".into()
        } else {
            known.join(", ")
        },
    }
}

/// A `recover` command's fields.
struct Request<'a> {
    resource: &'a str,
    restore_time: &'a str,
    reason: &'a str,
    assertions: &'a [SqlAssertion],
}

/// Refuse the command, before anything is restored, when one of its assertions is not one
/// read-only query on the resource's engine: the checks run against a database that may
/// become the writer. (The probe refuses them again before connecting.)
fn check_assertions(
    res: &crate::plan::ProtectedResource,
    assertions: &[SqlAssertion],
) -> Result<(), RecoveryError> {
    if res.kind == ResourceKind::DynamodbTable {
        // Refused by the adapter with its own reason: a table answers no SQL.
        return Ok(());
    }
    let dialects: &[Dialect] = match res.engine {
        Some(e) if e.is_postgres_family() => &[Dialect::Postgres],
        Some(_) => &[Dialect::Mysql],
        None => &[Dialect::Postgres, Dialect::Mysql],
    };
    for (index, a) in assertions.iter().enumerate() {
        for dialect in dialects {
            if let Err(why) = read_only_query(*dialect, &a.sql) {
                return Err(RecoveryError::UnsafeAssertion {
                    index,
                    name: a.name.clone(),
                    resource: res.id.clone(),
                    engine: res
                        .engine
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "no engine in the plan".into()),
                    why,
                });
            }
        }
    }
    Ok(())
}

fn recover(
    plan: &Plan,
    book: &RecoveryBook,
    request: Request<'_>,
    facts: &RecoveryFacts,
    now: DateTime<Utc>,
) -> Result<RecoveryDecision, RecoveryError> {
    let Request {
        resource,
        restore_time,
        reason,
        assertions,
    } = request;
    let res = plan
        .resource(resource)
        .ok_or_else(|| RecoveryError::UnknownResource {
            resource: resource.into(),
            known: plan
                .resources
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    if !crate::request::has_visible_text(reason) {
        return Err(RecoveryError::MissingReason {
            command: "recover".into(),
        });
    }
    check_assertions(res, assertions)?;
    let (t, latest) = resolve_restore_time(resource, restore_time, facts.window, now)?;
    let id = recovery_name(&res.id, t);
    if let Some(existing) = book.get(&id).filter(|r| r.phase != Phase::Discarded) {
        return Err(RecoveryError::Duplicate {
            id,
            phase: existing.phase.to_string(),
        });
    }
    let recovery = Recovery {
        id: id.clone(),
        resource: res.id.clone(),
        kind: res.kind,
        // The damaged writer: the recovered database of an earlier cutover, if any.
        source: book
            .recovered_writer(&res.id)
            .map(|r| r.id.clone())
            .unwrap_or_else(|| res.aws_identifier().to_string()),
        instance: (res.kind == ResourceKind::AuroraCluster).then(|| format!("{id}-1")),
        restore_time: t,
        latest,
        reason: reason.trim().into(),
        assertions: assertions.to_vec(),
        requested_at: now,
        phase: Phase::Requested,
        checks: None,
        check_progress: None,
        cutover: None,
    };
    let mut state = book.clone();
    // A discarded recovery of the same minute gives its name back.
    state.recoveries.retain(|r| r.id != id);
    state.recoveries.push(recovery);
    let detail = format!(
        "Restoring {} ({}) to {}{} into {id}. Reason: {}",
        res.id,
        res.aws_identifier(),
        rfc3339(t),
        if latest {
            " (the latest restorable time)"
        } else {
            ""
        },
        reason.trim()
    );
    let mut decided = advance(plan, &state, facts, now);
    decided.reply = format!("recovery {id} requested: restoring to {}", rfc3339(t));
    Ok(decided.note(
        Severity::Warning,
        "recovery.recover",
        format!("point-in-time recovery of {} requested", res.id),
        detail,
    ))
}

fn status(
    book: &RecoveryBook,
    id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<RecoveryDecision, RecoveryError> {
    let line = |r: &Recovery| {
        let checks = r.checks.as_ref().map_or(String::new(), |c| {
            format!(
                "; checks: {} passed, {} failed{}",
                c.passed.len(),
                c.failed.len(),
                if c.failed.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.failed.join("; "))
                }
            )
        });
        let cut = match (&r.phase, &r.cutover) {
            (Phase::CutOver | Phase::CuttingOver { .. }, Some(c)) => format!(
                "; damaged writer {} fenced{}; data lost: {} s (restore time to cutover)",
                c.fenced,
                c.forced
                    .as_ref()
                    .map(|f| format!("; forced: {f}"))
                    .unwrap_or_default(),
                r.lost_window_seconds(now)
            ),
            _ => String::new(),
        };
        format!(
            "{}: {} of {} to {}{}",
            r.id,
            r.phase,
            r.resource,
            rfc3339(r.restore_time),
            checks + &cut
        )
    };
    let reply = match id {
        Some(id) => line(book.get(id).ok_or_else(|| unknown_recovery(book, id))?),
        None if book.recoveries.is_empty() => "no recoveries".into(),
        None => book
            .recoveries
            .iter()
            .map(line)
            .collect::<Vec<_>>()
            .join("\n"),
    };
    Ok(RecoveryDecision::keep(book, reply))
}

fn cutover(
    plan: &Plan,
    book: &RecoveryBook,
    id: &str,
    force: bool,
    reason: Option<&str>,
    facts: &RecoveryFacts,
    now: DateTime<Utc>,
) -> Result<RecoveryDecision, RecoveryError> {
    let r = book.get(id).ok_or_else(|| unknown_recovery(book, id))?;
    match (&r.phase, &r.checks) {
        (Phase::CuttingOver { .. } | Phase::CutOver, _) => {
            return Ok(RecoveryDecision::keep(
                book,
                format!("recovery {id} is {} already", r.phase),
            ));
        }
        (Phase::Ready { checks_passed }, checks) => {
            if !checks_passed && !force {
                return Err(RecoveryError::ChecksFailed {
                    id: id.into(),
                    failed: checks
                        .as_ref()
                        .map(|c| c.failed.join("; "))
                        .unwrap_or_else(|| "no results".into()),
                });
            }
        }
        (phase, _) => {
            return Err(RecoveryError::NotReady {
                id: id.into(),
                phase: phase.to_string(),
            });
        }
    }
    let reason = reason.map(str::trim).filter(|s| !s.is_empty());
    if force && !reason.is_some_and(crate::request::has_visible_text) {
        return Err(RecoveryError::MissingReason {
            command: "cutover with force".into(),
        });
    }
    let record = plan
        .resource(&r.resource)
        .and_then(|p| p.dns_record.clone())
        .ok_or_else(|| RecoveryError::NoRecord {
            resource: r.resource.clone(),
            target: r.id.clone(),
        })?;
    // The lock needs the DR phase: without it, refuse rather than guess.
    let dr = facts.dr.ok_or_else(|| RecoveryError::Locked {
        task: "cutover".into(),
        why: "the DR state could not be read; try again".into(),
    })?;
    may_start(WriterTask::Cutover(id), dr, book, plan)?;
    let mut state = book.clone();
    let forced = force.then(|| reason.unwrap_or_default().to_string());
    let fenced = book
        .recovered_writer(&r.resource)
        .map(|w| w.id.clone())
        .unwrap_or_else(|| {
            plan.resource(&r.resource)
                .map(|p| p.aws_identifier().to_string())
                .unwrap_or_else(|| r.source.clone())
        });
    if let Some(m) = state.recoveries.iter_mut().find(|m| m.id == id) {
        m.phase = Phase::CuttingOver {
            step: CutStep::Fence,
        };
        m.cutover = Some(Cutover {
            fenced: fenced.clone(),
            record: record.clone(),
            started_at: now,
            forced: forced.clone(),
            fenced_at: None,
            done_at: None,
        });
    }
    let mut decided = advance(plan, &state, facts, now);
    decided.reply = format!(
        "cutover of {id} started: fencing {fenced}, then pointing {record} at {id}{}",
        forced
            .as_ref()
            .map(|f| format!(" (forced past failed checks: {f})"))
            .unwrap_or_default()
    );
    Ok(decided.note(
        Severity::Critical,
        "recovery.cutover",
        format!("cutover to recovery {id} started"),
        format!(
            "The damaged writer {fenced} is fenced first, then {record} points at {id}, \
             restored to {}.{}",
            rfc3339(r.restore_time),
            forced
                .map(|f| format!(" Checks failed; forced by the operator: {f}"))
                .unwrap_or_default()
        ),
    ))
}

fn discard(book: &RecoveryBook, id: &str) -> Result<RecoveryDecision, RecoveryError> {
    let r = book.get(id).ok_or_else(|| unknown_recovery(book, id))?;
    match r.phase {
        Phase::CuttingOver { .. } | Phase::CutOver => Err(RecoveryError::InUse {
            id: id.into(),
            phase: r.phase.to_string(),
        }),
        Phase::Discarding | Phase::Discarded => Ok(RecoveryDecision::keep(
            book,
            format!("recovery {id} is {} already", r.phase),
        )),
        _ => {
            let mut state = book.clone();
            let mut actions = vec![];
            if let Some(m) = state.recoveries.iter_mut().find(|m| m.id == id) {
                m.phase = Phase::Discarding;
                actions.push(delete(m));
            }
            Ok(RecoveryDecision {
                actions,
                ..RecoveryDecision::keep(&state, format!("discarding recovery {id}"))
            }
            .note(
                Severity::Info,
                "recovery.discard",
                format!("recovery {id} discarded"),
                format!("The recovered resource {id} is deleted on the operator's command."),
            ))
        }
    }
}

fn delete(r: &Recovery) -> RecoveryAction {
    RecoveryAction::Delete {
        recovery: r.id.clone(),
        target: r.id.clone(),
        instance: r.instance.clone(),
    }
}

/// Move every active recovery as far as the facts allow.
fn advance(
    plan: &Plan,
    book: &RecoveryBook,
    facts: &RecoveryFacts,
    now: DateTime<Utc>,
) -> RecoveryDecision {
    let mut state = book.clone();
    let mut out = Effects::default();
    let none = RecoveredFacts::default();
    for r in state.recoveries.iter_mut().filter(|r| r.phase.active()) {
        let f = facts.recovered.get(&r.id).unwrap_or(&none);
        advance_one(plan, r, f, now, &mut out);
    }
    RecoveryDecision {
        actions: out.actions,
        notes: out.notes,
        ..RecoveryDecision::keep(&state, "recoveries advanced")
    }
}

/// What one tick asks of AWS and tells people, across the recoveries it moves.
#[derive(Default)]
struct Effects {
    actions: Vec<RecoveryAction>,
    notes: Vec<Note>,
}

impl Effects {
    /// Ask AWS for `action`; the recovery waits for its result on a later tick.
    fn act(&mut self, action: RecoveryAction) -> ControlFlow<()> {
        self.actions.push(action);
        ControlFlow::Break(())
    }

    fn note(&mut self, severity: Severity, action: &str, subject: String, detail: String) {
        self.notes.push(note(severity, action, subject, detail));
    }
}

/// Run one recovery's steps until one waits: `Continue` means the phase moved on and the
/// next step can go now, on the same facts.
fn advance_one(
    plan: &Plan,
    r: &mut Recovery,
    f: &RecoveredFacts,
    now: DateTime<Utc>,
    out: &mut Effects,
) {
    // Each step reads what AWS shows first, so a step lost to a crash is issued again and
    // one already done is not repeated.
    loop {
        let flow = match r.phase.clone() {
            Phase::Requested | Phase::Restoring => restore(plan, r, f, out),
            Phase::CreatingInstance => create_instance(plan, r, f, out),
            Phase::Validating => validate(r, f, out),
            Phase::CuttingOver {
                step: CutStep::Fence,
            } => fence(r, f, now, out),
            Phase::CuttingOver {
                step: CutStep::Repoint,
            } => repoint(r, f, now, out),
            Phase::Discarding => finish_discard(r, f, out),
            Phase::Ready { .. } | Phase::CutOver | Phase::Discarded | Phase::Failed { .. } => {
                ControlFlow::Break(())
            }
        };
        if flow.is_break() {
            return;
        }
    }
}

/// The point-in-time restore: issued until AWS shows the new resource, then awaited; a
/// resource that vanishes or fails mid-restore fails the recovery, for the operator to
/// discard and retry.
fn restore(
    plan: &Plan,
    r: &mut Recovery,
    f: &RecoveredFacts,
    out: &mut Effects,
) -> ControlFlow<()> {
    match &f.resource {
        // Not issued yet, or lost to a crash before the call: issue it (again).
        Presence::Missing if r.phase == Phase::Requested => out.act(RecoveryAction::Restore {
            recovery: r.id.clone(),
            kind: r.kind,
            source: r.source.clone(),
            target: r.id.clone(),
            restore_time: (!r.latest).then_some(r.restore_time),
            tags: recovery_tags(plan, r),
        }),
        // A discarded namesake is still being deleted: its name is not free yet.
        Presence::Deleting if r.phase == Phase::Requested => ControlFlow::Break(()),
        Presence::Missing | Presence::Deleting => {
            let why = "the restored resource disappeared while restoring (deleted \
                       outside Lifeboat?)";
            r.phase = Phase::Failed { why: why.into() };
            out.note(
                Severity::Critical,
                "recovery.failed",
                format!("recovery {} failed", r.id),
                format!("{why}. Discard it and recover again."),
            );
            ControlFlow::Break(())
        }
        Presence::Creating => {
            r.phase = Phase::Restoring;
            ControlFlow::Break(())
        }
        Presence::Failed(why) => {
            r.phase = Phase::Failed { why: why.clone() };
            out.note(
                Severity::Critical,
                "recovery.failed",
                format!("recovery {} failed", r.id),
                format!("The point-in-time restore failed: {why}. Discard it and retry."),
            );
            ControlFlow::Break(())
        }
        Presence::Available => {
            r.phase = if r.instance.is_some() {
                Phase::CreatingInstance
            } else {
                Phase::Validating
            };
            ControlFlow::Continue(())
        }
    }
}

/// Aurora only: a restored cluster answers no query until it has an instance.
fn create_instance(
    plan: &Plan,
    r: &mut Recovery,
    f: &RecoveredFacts,
    out: &mut Effects,
) -> ControlFlow<()> {
    match (&f.instance, &r.instance) {
        (Presence::Available, _) | (_, None) => {
            r.phase = Phase::Validating;
            ControlFlow::Continue(())
        }
        (Presence::Missing | Presence::Deleting, Some(instance)) => {
            out.act(RecoveryAction::CreateInstance {
                recovery: r.id.clone(),
                cluster: r.id.clone(),
                instance: instance.clone(),
                tags: recovery_tags(plan, r),
            })
        }
        (Presence::Creating, _) => ControlFlow::Break(()),
        (Presence::Failed(why), _) => {
            r.phase = Phase::Failed { why: why.clone() };
            ControlFlow::Break(())
        }
    }
}

/// The checks tell the operator whether the recovered data is fit to become the writer;
/// once they report, the recovery waits for `cutover` or `discard`.
fn validate(r: &mut Recovery, f: &RecoveredFacts, out: &mut Effects) -> ControlFlow<()> {
    let Some(report) = &f.checks else {
        if let Some(so_far) = &f.checks_so_far {
            r.check_progress = Some(so_far.clone());
        }
        // The checks only read: running them again after a crash is harmless.
        return out.act(RecoveryAction::RunChecks {
            recovery: r.id.clone(),
            resource: r.resource.clone(),
            target: r.id.clone(),
            assertions: r.assertions.clone(),
            progress: r.check_progress.clone().unwrap_or_default(),
        });
    };
    let passed = report.failed.is_empty();
    r.checks = Some(report.clone());
    r.check_progress = None;
    r.phase = Phase::Ready {
        checks_passed: passed,
    };
    out.note(
        if passed {
            Severity::Info
        } else {
            Severity::Warning
        },
        "recovery.ready",
        format!(
            "recovery {} is ready, checks {}",
            r.id,
            if passed { "passed" } else { "failed" }
        ),
        format!(
            "{} restored to {}. Passed: {}. Failed: {}. It is kept until `cutover` or \
             `discard`.",
            r.id,
            rfc3339(r.restore_time),
            list(&report.passed),
            list(&report.failed)
        ),
    );
    ControlFlow::Break(())
}

/// The damaged writer is fenced before the record moves, so no client writes to both.
fn fence(
    r: &mut Recovery,
    f: &RecoveredFacts,
    now: DateTime<Utc>,
    out: &mut Effects,
) -> ControlFlow<()> {
    let Some(c) = r.cutover.as_mut() else {
        return cutover_lost(r);
    };
    if !f.writer_fenced {
        return out.act(RecoveryAction::Fence {
            recovery: r.id.clone(),
            writer: c.fenced.clone(),
        });
    }
    c.fenced_at.get_or_insert(now);
    out.note(
        Severity::Warning,
        "recovery.fenced",
        format!("damaged writer {} fenced", c.fenced),
        format!(
            "{} accepts no more writes; {} is pointed at {} next.",
            c.fenced, c.record, r.id
        ),
    );
    r.phase = Phase::CuttingOver {
        step: CutStep::Repoint,
    };
    ControlFlow::Continue(())
}

/// Clients follow the database record: once it names the recovered database, that
/// database is the writer, and the data written since the restore time is lost.
fn repoint(
    r: &mut Recovery,
    f: &RecoveredFacts,
    now: DateTime<Utc>,
    out: &mut Effects,
) -> ControlFlow<()> {
    let Some(c) = r.cutover.as_mut() else {
        return cutover_lost(r);
    };
    if f.record_target.as_deref() != Some(r.id.as_str()) {
        return out.act(RecoveryAction::PointRecord {
            recovery: r.id.clone(),
            record: c.record.clone(),
            target: r.id.clone(),
        });
    }
    c.done_at = Some(now);
    let (record, fenced) = (c.record.clone(), c.fenced.clone());
    r.phase = Phase::CutOver;
    let lost = r.lost_window_seconds(now);
    out.note(
        Severity::Critical,
        "recovery.cut-over",
        format!("{} is the writer of {}", r.id, r.resource),
        format!(
            "{} now names {}, restored to {}; the damaged {} is fenced and kept. Data \
             written between {} and the cutover ({} s) is not in the recovered database.",
            record,
            r.id,
            rfc3339(r.restore_time),
            fenced,
            rfc3339(r.restore_time),
            lost
        ),
    );
    ControlFlow::Break(())
}

/// Unreachable through `cutover`, which records the plan; the step refuses to guess a
/// writer to fence.
fn cutover_lost(r: &mut Recovery) -> ControlFlow<()> {
    r.phase = Phase::Failed {
        why: "cutover without its record".into(),
    };
    ControlFlow::Break(())
}

/// A discarded recovery is deleted until AWS no longer shows it, so nothing is left to pay for.
fn finish_discard(r: &mut Recovery, f: &RecoveredFacts, out: &mut Effects) -> ControlFlow<()> {
    match f.resource {
        Presence::Missing => {
            r.phase = Phase::Discarded;
            ControlFlow::Break(())
        }
        Presence::Deleting => ControlFlow::Break(()),
        _ => out.act(delete(r)),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join("; ")
    }
}
