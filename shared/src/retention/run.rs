//! A retention run: list every location's snapshots, decide (the pure planner and the
//! archive rules), delete at a bounded rate and at most `max_deletes_per_run`, record.
//!
//! Every location (the primary region and each copy destination) is listed before
//! anything is deleted: an unreadable listing ends the run with nothing deleted, because a
//! partial listing could make the planner delete what the missing part would have kept
//! (the copy that is still running, the newest validated snapshot). One failed delete
//! never stops the others; it is reported, and the next run tries again. A duplicate of
//! the same event returns the stored result; a second run of another event re-lists and
//! finds the work done (a snapshot already gone is not a failure).

use super::archive::{Archivable, ArchiveOrder, ExportTask, apply_exports};
use super::{KeepReason, RetentionDecision, RetentionRules, SnapshotDecision, SnapshotFacts};
use crate::backup::run::Failure;
use crate::backup::{BackupKind, BackupRecord, CommandError, SOURCE_TAG};
use crate::error::{AwsError, Classify, Retry};
use crate::function::Invocation;
use crate::ident::IdentifierRule;
use crate::metrics::observe;
use crate::notify::{Notification, Notifier, Severity};
use crate::plan::{ArchiveSettings, LEGAL_HOLD_TAG, Plan, TIER_TAG, VALIDATED_TAG};
use crate::report::{ReportSink, report_key};
use crate::state::{self, AuditEntry, EventClaim, Outcome, StateError, StateStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

/// How long a completed run's result is returned to duplicates of its event.
const RESULT_KEPT_HOURS: i64 = 24;
/// Deleting stops this long before Lambda's deadline; the rest waits for the next run.
const DEADLINE_MARGIN_SECONDS: i64 = 60;

/// What the retention function was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionCommand {
    /// The daily EventBridge schedule tick.
    Scheduled {
        /// The event id (the idempotency key).
        event_id: String,
    },
    /// An operator's run, `{}` or `{"dry_run": true}`.
    Operator {
        /// Report without deleting.
        dry_run: bool,
    },
}

impl RetentionCommand {
    /// A short description for logs and the audit timeline.
    pub fn trigger(&self) -> String {
        match self {
            RetentionCommand::Scheduled { .. } => "schedule".into(),
            RetentionCommand::Operator { dry_run: true } => "operator (dry run)".into(),
            RetentionCommand::Operator { dry_run: false } => "operator".into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorRequest {
    #[serde(default)]
    dry_run: bool,
}

const EXPECTED: &str =
    "expected an EventBridge \"Scheduled Event\", or {} or {\"dry_run\": true} from an operator";

/// Parse an invocation payload into a command; anything else is refused, changing nothing.
pub fn parse_command(payload: &serde_json::Value) -> Result<RetentionCommand, CommandError> {
    let object = crate::request::require_object("retention", payload)?;
    if crate::envelope::claims_to_be_one(object) {
        let event = crate::envelope::read("retention", object, "{\"dry_run\": true} or {}")
            .map_err(|e| CommandError(e.to_string()))?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            _ if event.is_schedule() => Ok(RetentionCommand::Scheduled { event_id: event.id }),
            (source, kind) => Err(CommandError(format!(
                "the retention function does not handle {kind:?} events from {source}; {EXPECTED}"
            ))),
        };
    }
    let request: OperatorRequest = crate::request::value_as(payload, "the retention request")
        .map_err(|e| CommandError(format!("unrecognised request ({e}); {EXPECTED}")))?;
    Ok(RetentionCommand::Operator {
        dry_run: request.dry_run,
    })
}

/// The retention port: listing, deleting and exporting snapshots at a location (the
/// primary region's name, or a copy destination's key).
#[async_trait]
pub trait RetentionPort: Send + Sync {
    /// Every manual DB and cluster snapshot at `location`, and at the primary region the
    /// backups of the plan's tables; fully paginated. An error means the listing is not
    /// complete.
    async fn list(&self, location: &str) -> Result<Vec<BackupRecord>, AwsError>;
    /// Every RDS export task at `location`; fully paginated.
    async fn list_exports(&self, location: &str) -> Result<Vec<ExportTask>, AwsError>;
    /// Delete one snapshot or backup.
    async fn delete(&self, record: &BackupRecord) -> Result<(), AwsError>;
    /// Start exporting a snapshot to S3, and tag the snapshot with the task id.
    async fn start_export(
        &self,
        location: &str,
        order: &ArchiveOrder,
        archive: &ArchiveSettings,
    ) -> Result<(), AwsError>;
}

/// The locations retention covers: the primary region, then every copy destination.
pub fn locations(plan: &Plan) -> Vec<String> {
    let mut out = vec![plan.regions.primary.clone()];
    for d in &plan.snapshots.copy_to {
        let key = d.key();
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// The facts the planner needs about one listed backup. `copy_sources` holds the ARNs
/// (and identifiers) of snapshots with a cross-region copy still in progress.
pub fn facts_of(record: &BackupRecord, copy_sources: &HashSet<String>) -> SnapshotFacts {
    let tags = &record.tags;
    let id = record.arn.clone().unwrap_or_else(|| record.id.clone());
    let (created_at, status) = match record.created_at {
        Some(t) => (t, record.status.word().to_string()),
        // AWS gives every available snapshot a creation time; without one the snapshot
        // cannot be placed in any period, so it is reported as not available (kept).
        None => (
            DateTime::<Utc>::UNIX_EPOCH,
            format!("{} without a creation time", record.status.word()),
        ),
    };
    SnapshotFacts {
        copy_in_progress: [&id, &record.id]
            .iter()
            .any(|r| copy_sources.contains(record.kind.identifier_rule().canonical(r).as_ref())),
        id,
        resource: record.resource().map(str::to_string),
        plan: record.plan().map(str::to_string),
        created_at,
        status,
        automated: record.automated,
        // An unparseable validation time still says the snapshot was validated.
        validated_at: tags.get(VALIDATED_TAG).map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(created_at)
        }),
        legal_hold: tags.contains_key(LEGAL_HOLD_TAG),
    }
}

/// The snapshots that are the source of a cross-region copy still in progress, by ARN
/// (or identifier), from every location's listing; in RDS's lower case, as only RDS
/// snapshots are copied.
pub fn copy_sources<'a>(records: impl IntoIterator<Item = &'a BackupRecord>) -> HashSet<String> {
    records
        .into_iter()
        .filter(|r| r.is_copy_in_progress())
        .flat_map(|r| [r.tags.get(SOURCE_TAG), r.copy_of.as_ref()])
        .flatten()
        .map(|source| IdentifierRule::Rds.canonical(source).into_owned())
        .collect()
}

/// What happened to one listed snapshot in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Kept.
    Kept,
    /// Deleted.
    Deleted,
    /// Would be deleted (dry run).
    WouldDelete,
    /// To be deleted, but over this run's cap or too close to the deadline: next run.
    Deferred,
    /// Already gone when deleted (another run, or a person, deleted it).
    AlreadyGone,
    /// The delete failed (see the run's failures); the next run tries again.
    Failed,
    /// Its archive export was started; it is kept until the export completes.
    ArchiveStarted,
    /// Its archive export would be started (dry run).
    WouldArchive,
}

/// One line of the run's report: a listed snapshot, its decision and what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLine {
    /// The location.
    pub location: String,
    /// The snapshot identifier or backup name.
    pub name: String,
    /// What it is.
    pub kind: BackupKind,
    /// When its data was taken.
    pub created_at: Option<DateTime<Utc>>,
    /// The decision, with its reasons.
    #[serde(flatten)]
    pub decision: SnapshotDecision,
    /// The decision as a person reads it.
    pub text: String,
    /// What was done.
    pub disposition: Disposition,
}

/// One location's counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LocationCounts {
    /// The location.
    pub location: String,
    /// Snapshots listed.
    pub listed: usize,
    /// Kept.
    pub kept: usize,
    /// Deleted (or, in a dry run, that would be).
    pub deleted: usize,
    /// Left for the next run.
    pub deferred: usize,
    /// Failed deletes and exports.
    pub failed: usize,
}

/// A snapshot deleted (or to be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// The location.
    pub location: String,
    /// The snapshot identifier or backup name.
    pub snapshot: String,
    /// The resource.
    pub resource: Option<String>,
    /// Why.
    pub reason: String,
}

/// What a run did, for the caller, the audit timeline and the stored result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RetentionSummary {
    /// The plan.
    pub plan: String,
    /// What triggered the run.
    pub trigger: String,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Nothing was deleted or exported: the run only reports.
    pub dry_run: bool,
    /// Counts by location.
    pub locations: Vec<LocationCounts>,
    /// Snapshots kept, by rule (`daily`, `legal hold`, ...); a snapshot kept for several
    /// reasons counts under each.
    pub kept_by_reason: BTreeMap<String, usize>,
    /// Deleted (in a dry run: what would be).
    pub deleted: Vec<Removal>,
    /// Left for the next run (over `max_deletes_per_run`, or near the deadline).
    pub deferred: usize,
    /// Already gone when deleted.
    pub already_gone: Vec<String>,
    /// Archive exports started (in a dry run: that would be).
    pub archives_started: Vec<String>,
    /// What failed, with why.
    pub failed: Vec<Failure>,
    /// Where the full decision list is.
    pub report: Option<String>,
    /// True when this is the stored result of an earlier run of the same event.
    pub duplicate: bool,
    /// The summary in one paragraph.
    pub summary: String,
}

impl RetentionSummary {
    /// Snapshots kept, over every location.
    pub fn kept(&self) -> usize {
        self.locations.iter().map(|l| l.kept).sum()
    }
}

/// Why a retention invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RetentionError {
    /// The event is not one the function accepts; nothing was done.
    #[error("bad input: {0}; nothing was done")]
    BadInput(#[from] CommandError),
    /// A location's snapshots (or exports) could not be listed in full; nothing was
    /// deleted anywhere.
    #[error(
        "cannot list the snapshots at {location}, so nothing was deleted anywhere (a partial listing could delete what a recovery needs): {error}"
    )]
    Inventory {
        /// The location.
        location: String,
        /// The failed call.
        error: AwsError,
    },
    /// The state table failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl Classify for RetentionError {
    fn retry(&self) -> Retry {
        match self {
            RetentionError::BadInput(_) => Retry::NonRetryable,
            RetentionError::Inventory { error, .. } => error.retry(),
            RetentionError::State(e) => e.retry(),
        }
    }
}

/// Everything a run needs: the plan and the ports.
pub struct RetentionRun<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The snapshots.
    pub port: &'a dyn RetentionPort,
    /// The state table.
    pub state: &'a dyn StateStore,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Reports.
    pub reports: &'a dyn ReportSink,
}

/// A deletion or an export to make, in the order they are made.
enum Work {
    Delete(usize),
    Archive(usize, ArchiveOrder),
}

impl RetentionRun<'_> {
    /// Handle one invocation payload.
    pub async fn handle(
        &self,
        payload: &serde_json::Value,
        invocation: &Invocation,
    ) -> Result<RetentionSummary, RetentionError> {
        let command = parse_command(payload)?;
        let key = match &command {
            RetentionCommand::Scheduled { event_id } => format!("retention/event/{event_id}"),
            RetentionCommand::Operator { .. } => {
                format!("retention/request/{}", invocation.request_id)
            }
        };
        let token = match state::claim_event::<RetentionSummary>(
            self.state,
            &self.plan.name,
            key,
            payload,
            invocation.now,
            invocation.deadline,
            RESULT_KEPT_HOURS,
            "retention summary",
        )
        .await?
        {
            EventClaim::Acquired(token) => token,
            EventClaim::Replayed(mut summary) => {
                summary.duplicate = true;
                return Ok(summary);
            }
            EventClaim::Busy(until) => {
                return Ok(RetentionSummary {
                    plan: self.plan.name.clone(),
                    trigger: command.trigger(),
                    at: invocation.now,
                    duplicate: true,
                    summary: format!(
                        "another invocation is handling this event (its claim holds until {until}); nothing was done here"
                    ),
                    ..RetentionSummary::default()
                });
            }
        };
        match self.execute(&command, invocation).await {
            Ok(summary) => {
                // Failed deletes are reported, not retried by Lambda: the next daily run
                // re-lists and tries again, which is what a retry would do.
                let stored = serde_json::to_value(&summary).unwrap_or_default();
                self.state.complete(&token, &stored).await?;
                Ok(summary)
            }
            Err(e) => {
                let _ = self.state.release(&token).await;
                Err(e)
            }
        }
    }

    async fn execute(
        &self,
        command: &RetentionCommand,
        invocation: &Invocation,
    ) -> Result<RetentionSummary, RetentionError> {
        let plan = self.plan;
        let now = invocation.now;
        let started = tokio::time::Instant::now();
        let dry_run = plan.retention.dry_run
            || matches!(command, RetentionCommand::Operator { dry_run: true });

        // 1. Every listing, before anything is decided or deleted.
        let mut listings = Vec::new();
        for location in locations(plan) {
            let records =
                self.port
                    .list(&location)
                    .await
                    .map_err(|error| RetentionError::Inventory {
                        location: location.clone(),
                        error,
                    })?;
            let exports = self.port.list_exports(&location).await.map_err(|error| {
                RetentionError::Inventory {
                    location: location.clone(),
                    error,
                }
            })?;
            listings.push((location, records, exports));
        }
        let sources = copy_sources(listings.iter().flat_map(|(_, r, _)| r));

        // 2. The decisions, location by location.
        let mut records: Vec<(String, BackupRecord)> = Vec::new();
        let mut decisions: Vec<SnapshotDecision> = Vec::new();
        let mut orders: Vec<(usize, ArchiveOrder)> = Vec::new();
        for (location, listed, exports) in listings {
            let facts: Vec<SnapshotFacts> = listed.iter().map(|r| facts_of(r, &sources)).collect();
            let rules = RetentionRules::for_location(plan, &location);
            let mut decided = super::plan_retention(&rules, &facts, now);
            let archive = plan
                .retention
                .archive
                .as_ref()
                .filter(|_| location == plan.regions.dr);
            let archivable: Vec<Archivable> = listed
                .iter()
                .map(|r| Archivable {
                    tier: r.tags.get(TIER_TAG).and_then(|t| t.parse().ok()),
                    exportable: r.kind == BackupKind::DbSnapshot
                        || r.kind == BackupKind::ClusterSnapshot,
                    resource: r.resource().map(str::to_string),
                    name: r.id.clone(),
                })
                .collect();
            let base = decisions.len();
            let started_orders =
                apply_exports(&plan.name, &mut decided, &archivable, &exports, archive);
            for order in started_orders {
                if let Some(i) = decided.iter().position(|d| d.id == order.snapshot_arn) {
                    orders.push((base + i, order));
                }
            }
            decisions.extend(decided);
            records.extend(listed.into_iter().map(|r| (location.clone(), r)));
        }

        // 3. The work, oldest first (so a capped run removes the oldest), capped.
        let mut deletes: Vec<usize> = (0..decisions.len())
            .filter(|&i| decisions[i].decision.is_delete())
            .collect();
        deletes.sort_by(|&a, &b| {
            records[a]
                .1
                .created_at
                .cmp(&records[b].1.created_at)
                .then_with(|| decisions[a].id.cmp(&decisions[b].id))
        });
        let cap = plan.retention.max_deletes_per_run as usize;
        let mut dispositions: Vec<Disposition> = vec![Disposition::Kept; decisions.len()];
        let mut work: Vec<Work> = Vec::new();
        for (n, &i) in deletes.iter().enumerate() {
            if n < cap {
                work.push(Work::Delete(i));
            } else {
                dispositions[i] = Disposition::Deferred;
            }
        }
        // Exports are long-running calls of their own: the same cap bounds them.
        for (n, (i, order)) in orders.into_iter().enumerate() {
            if n < cap {
                work.push(Work::Archive(i, order));
            }
        }

        let mut summary = RetentionSummary {
            plan: plan.name.clone(),
            trigger: command.trigger(),
            at: now,
            dry_run,
            ..RetentionSummary::default()
        };

        // 4. The work, at the plan's rate, stopping well before the deadline.
        let pause =
            Duration::from_millis(1000 / u64::from(plan.retention.deletes_per_second.max(1)));
        let budget =
            (invocation.deadline - now - chrono::Duration::seconds(DEADLINE_MARGIN_SECONDS))
                .to_std()
                .unwrap_or_default();
        let mut first = true;
        for item in work {
            let (i, order) = match item {
                Work::Delete(i) => (i, None),
                Work::Archive(i, order) => (i, Some(order)),
            };
            if dry_run {
                dispositions[i] = if order.is_some() {
                    Disposition::WouldArchive
                } else {
                    Disposition::WouldDelete
                };
                continue;
            }
            if !first {
                tokio::time::sleep(pause).await;
            }
            first = false;
            if started.elapsed() >= budget {
                dispositions[i] = Disposition::Deferred;
                continue;
            }
            let (location, record) = &records[i];
            // The intent is in the timeline before anything is deleted or exported, or
            // it is left for the next run.
            let intent = AuditEntry {
                at: now,
                function: "retention".into(),
                trigger: command.trigger(),
                action: if order.is_some() {
                    "retention.archive"
                } else {
                    "retention.delete"
                }
                .into(),
                resource: decisions[i].resource.clone(),
                outcome: Outcome::Intended,
                detail: format!("{} at {location}: {}", record.id, decisions[i].decision),
                data: serde_json::json!({"snapshot": decisions[i].id, "location": location}),
            };
            if let Err(e) = state::append(self.state, &plan.name, vec![intent], now).await {
                summary.failed.push(Failure {
                    subject: format!("audit entry for {} at {location}", record.id),
                    error: format!("{e}; it was not deleted or exported, the next run tries again"),
                    retryable: e.retry() == Retry::Retryable,
                });
                dispositions[i] = Disposition::Deferred;
                continue;
            }
            match order {
                None => {
                    dispositions[i] = match self.port.delete(record).await {
                        Ok(()) => Disposition::Deleted,
                        Err(e) if is_gone(&e) => Disposition::AlreadyGone,
                        Err(e) => {
                            summary.failed.push(Failure {
                                subject: format!("delete {} at {location}", record.id),
                                error: e.to_string(),
                                retryable: e.retry() == Retry::Retryable,
                            });
                            Disposition::Failed
                        }
                    }
                }
                Some(order) => {
                    let archive = plan.retention.archive.as_ref();
                    let result = match archive {
                        Some(a) => self.port.start_export(location, &order, a).await,
                        None => Ok(()),
                    };
                    dispositions[i] = match result {
                        Ok(()) => Disposition::ArchiveStarted,
                        // A duplicate run started the same task: it is running.
                        Err(e) if e.is_code("ExportTaskAlreadyExists") => {
                            Disposition::ArchiveStarted
                        }
                        Err(e) => {
                            summary.failed.push(Failure {
                                subject: format!("archive export of {} at {location}", record.id),
                                error: e.to_string(),
                                retryable: e.retry() == Retry::Retryable,
                            });
                            Disposition::Failed
                        }
                    }
                }
            }
        }

        let lines: Vec<ReportLine> = records
            .into_iter()
            .zip(decisions)
            .zip(dispositions)
            .map(|(((location, record), decision), disposition)| ReportLine {
                location,
                name: record.id,
                kind: record.kind,
                created_at: record.created_at,
                text: decision.decision.to_string(),
                decision,
                disposition,
            })
            .collect();
        tally(&mut summary, &lines);
        self.record(&mut summary, &lines, now, &invocation.request_id)
            .await;
        Ok(summary)
    }

    /// Metrics, audit entries, the report and, when something was deleted or failed, a
    /// notification.
    async fn record(
        &self,
        summary: &mut RetentionSummary,
        lines: &[ReportLine],
        now: DateTime<Utc>,
        run_id: &str,
    ) {
        let plan = &self.plan.name;
        for l in &summary.locations {
            let dims = [("Location", l.location.clone())];
            observe("RetentionKept", metrics::Unit::Count, l.kept as f64, &dims);
            // A dry run deletes nothing: its figure is what would go, under its own name.
            let deleted = if summary.dry_run {
                "RetentionWouldDelete"
            } else {
                "RetentionDeleted"
            };
            observe(deleted, metrics::Unit::Count, l.deleted as f64, &dims);
            observe(
                "RetentionFailed",
                metrics::Unit::Count,
                l.failed as f64,
                &dims,
            );
            observe(
                "RetentionDeferred",
                metrics::Unit::Count,
                l.deferred as f64,
                &dims,
            );
        }

        // One entry per deletion and export (what changed), then one for the run.
        let entry =
            |action: &str, line: &ReportLine, outcome: Outcome, detail: String| AuditEntry {
                at: now,
                function: "retention".into(),
                trigger: summary.trigger.clone(),
                action: action.into(),
                resource: line.decision.resource.clone(),
                outcome,
                detail,
                data: serde_json::json!({"snapshot": line.decision.id, "location": line.location}),
            };
        let entries: Vec<AuditEntry> = lines
            .iter()
            .filter_map(|l| match l.disposition {
                Disposition::Deleted => Some(entry(
                    "retention.delete",
                    l,
                    Outcome::Succeeded,
                    format!("{} at {}: {}", l.name, l.location, l.text),
                )),
                Disposition::Failed => Some(entry(
                    "retention.delete",
                    l,
                    Outcome::Failed,
                    format!("{} at {}: see the run's failures", l.name, l.location),
                )),
                Disposition::ArchiveStarted => Some(entry(
                    "retention.archive",
                    l,
                    Outcome::Started,
                    format!("{} at {}: {}", l.name, l.location, l.text),
                )),
                _ => None,
            })
            .collect();
        // Their intents are in the timeline already (nothing is deleted or exported
        // before its intent is written); the outcomes are written after the run, and one
        // that cannot be fails the run, saying so here and in the report.
        if let Err(e) = state::append(self.state, plan, entries, now).await {
            summary.failed.push(Failure {
                subject: "audit entries".into(),
                error: format!(
                    "{e}; the timeline has the intent of each of this run's deletions and exports, their outcomes are in its report only"
                ),
                retryable: e.retry() == Retry::Retryable,
            });
        }

        summary.summary = describe(summary);
        let report_at = report_key(plan, "retention", run_id, now);
        let report = |summary: &RetentionSummary| {
            serde_json::json!({
                "summary": summary,
                "decisions": lines,
            })
        };
        match self.reports.put_report(&report_at, &report(summary)).await {
            Ok(uri) => summary.report = Some(uri),
            Err(e) => summary.failed.push(Failure {
                subject: "report".into(),
                error: e.to_string(),
                retryable: e.retry() == Retry::Retryable,
            }),
        }

        if !summary.failed.is_empty() || (!summary.dry_run && !summary.deleted.is_empty()) {
            let (severity, subject) = if summary.failed.is_empty() {
                (
                    Severity::Info,
                    format!("retention deleted {} snapshot(s)", summary.deleted.len()),
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "retention: {} step(s) failed, {} deleted",
                        summary.failed.len(),
                        if summary.dry_run {
                            0
                        } else {
                            summary.deleted.len()
                        }
                    ),
                )
            };
            let notification = Notification {
                plan: plan.clone(),
                severity,
                subject,
                body: summary.summary.clone(),
                details: serde_json::json!({
                    "failed": summary.failed,
                    "deleted": summary.deleted.len(),
                    "deferred": summary.deferred,
                    "report": summary.report,
                }),
            };
            if let Err(e) = self.notifier.notify(&notification).await {
                summary.failed.push(Failure {
                    subject: "notification".into(),
                    error: e.to_string(),
                    retryable: e.retry() == Retry::Retryable,
                });
            }
        }
        summary.summary = describe(summary);
        let run_entry = AuditEntry {
            at: now,
            function: "retention".into(),
            trigger: summary.trigger.clone(),
            action: "retention.run".into(),
            resource: None,
            outcome: if summary.failed.is_empty() {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            detail: summary.summary.clone(),
            data: serde_json::json!({
                "report": summary.report,
                "dry_run": summary.dry_run,
                "kept": summary.kept(),
                "deleted": summary.deleted.len(),
                "deferred": summary.deferred,
                "failed": summary.failed.len(),
            }),
        };
        if let Err(e) = state::append(self.state, plan, vec![run_entry], now).await {
            summary.failed.push(Failure {
                subject: "audit entry".into(),
                error: format!("{e}; the run's summary is in its report only"),
                retryable: e.retry() == Retry::Retryable,
            });
            summary.summary = describe(summary);
            // The report is written again, so that it says so too.
            if let Err(e) = self.reports.put_report(&report_at, &report(summary)).await {
                tracing::warn!(error = %e, "report not rewritten with the missing run entry");
            }
        }
    }
}

/// The delete's target no longer exists: the end state retention wanted.
fn is_gone(e: &AwsError) -> bool {
    [
        "DBSnapshotNotFound",
        "DBSnapshotNotFoundFault",
        "DBClusterSnapshotNotFoundFault",
        "BackupNotFoundException",
    ]
    .iter()
    .any(|c| e.is_code(c))
}

/// The rule a keep reason belongs to, for counting (`daily`, not `daily 2026-11-24`).
pub fn reason_label(reason: &KeepReason) -> &'static str {
    match reason {
        KeepReason::LegalHold => "legal hold",
        KeepReason::NotThisPlan => "not Lifeboat's",
        KeepReason::Automated => "automated",
        KeepReason::NotAttributable => "not attributable",
        KeepReason::ListedMoreThanOnce => "listed more than once",
        KeepReason::NotAvailable { .. } => "not available",
        KeepReason::CopySource => "copy in progress",
        KeepReason::CreatedAfterNow => "created after now",
        KeepReason::NewestAvailable => "newest available",
        KeepReason::NewestValidated => "newest validated",
        KeepReason::Yearly { .. } => "yearly",
        KeepReason::Monthly { .. } => "monthly",
        KeepReason::Weekly { .. } => "weekly",
        KeepReason::Daily { .. } => "daily",
        KeepReason::MinKeep { .. } => "min_keep",
        KeepReason::ExportInProgress { .. } => "export in progress",
        KeepReason::ArchiveStarted { .. } => "archive export started",
        KeepReason::ArchiveFailed { .. } => "archive export failed",
    }
}

/// Fill the summary's counts and lists from the report lines.
fn tally(summary: &mut RetentionSummary, lines: &[ReportLine]) {
    let mut by_location: BTreeMap<&str, LocationCounts> = BTreeMap::new();
    for l in lines {
        let counts = by_location
            .entry(l.location.as_str())
            .or_insert_with(|| LocationCounts {
                location: l.location.clone(),
                ..LocationCounts::default()
            });
        counts.listed += 1;
        if let RetentionDecision::Keep { reasons } = &l.decision.decision {
            counts.kept += 1;
            for r in reasons.as_slice() {
                *summary
                    .kept_by_reason
                    .entry(reason_label(r).to_string())
                    .or_default() += 1;
            }
        }
        let removal = || Removal {
            location: l.location.clone(),
            snapshot: l.name.clone(),
            resource: l.decision.resource.clone(),
            reason: l.text.clone(),
        };
        match l.disposition {
            Disposition::Deleted | Disposition::WouldDelete => {
                counts.deleted += 1;
                summary.deleted.push(removal());
            }
            Disposition::Deferred => {
                counts.deferred += 1;
                summary.deferred += 1;
            }
            Disposition::AlreadyGone => summary.already_gone.push(l.name.clone()),
            Disposition::Failed => counts.failed += 1,
            Disposition::ArchiveStarted | Disposition::WouldArchive => {
                summary.archives_started.push(l.name.clone())
            }
            Disposition::Kept => {}
        }
    }
    summary.locations = by_location.into_values().collect();
}

/// One paragraph a person reads.
pub fn describe(s: &RetentionSummary) -> String {
    let mut out = String::new();
    if s.dry_run {
        out.push_str("Dry run, nothing deleted. ");
    }
    for (i, l) in s.locations.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = write!(
            out,
            "{}: {} listed, {} kept, {} {}",
            l.location,
            l.listed,
            l.kept,
            l.deleted,
            if s.dry_run { "to delete" } else { "deleted" }
        );
        if l.deferred > 0 {
            let _ = write!(out, ", {} left for the next run", l.deferred);
        }
    }
    if !s.kept_by_reason.is_empty() {
        let reasons: Vec<String> = s
            .kept_by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let _ = write!(out, ". Kept by rule: {}", reasons.join(", "));
    }
    if !s.archives_started.is_empty() {
        let _ = write!(
            out,
            ". Archive exports {}: {}",
            if s.dry_run { "to start" } else { "started" },
            s.archives_started.join(", ")
        );
    }
    if !s.already_gone.is_empty() {
        let _ = write!(out, ". Already gone: {}", s.already_gone.len());
    }
    let _ = write!(out, ". Failed {}", s.failed.len());
    for f in &s.failed {
        let _ = write!(out, " [{}: {}]", f.subject, f.error);
    }
    out.push('.');
    out
}

#[cfg(test)]
mod tests;
