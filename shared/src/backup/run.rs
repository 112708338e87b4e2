//! A snapshot run: read what exists, decide (pure, in the parent module), act, record.
//!
//! One resource failing never stops the others; the run still ends in error when any
//! failed, so Lambda's error metric and retries see it. Every action is idempotent (names
//! are deterministic per window, copies are found by name at the destination, exports
//! carry a client token), so a retried or duplicated event does the work once. The
//! intent of every snapshot, copy and export is committed to the audit timeline before
//! the call that makes it; one whose intent the table refuses is not asked for, and the
//! run fails (retryable) so that its retry does it.

use super::command::{CommandError, SnapshotCommand, parse_command};
use super::{
    BackupKind, BackupRecord, BackupStatus, CopyOrder, CreationDecision, CreationOrder,
    RpoMeasurement, SnapshotRequest, SourceState, Timing, decide_copies, decide_creations,
    export_location, measure_rpo,
};
use crate::error::{AwsError, Classify, Retry};
use crate::function::Invocation;
use crate::metrics::observe;
use crate::notify::{Notification, Notifier, Severity};
use crate::plan::{CopyDestination, PLAN_TAG, Plan, ProtectedResource, RESOURCE_TAG, ResourceKind};
use crate::report::{ReportSink, report_key};
use crate::schedule::{Tier, window_at};
use crate::state::{self, AuditEntry, EventClaim, MachineKey, Outcome, StateError, StateStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How many AWS calls of one kind a run keeps in flight: well inside RDS's sustained
/// API rate (about 12 requests a second per region).
const PARALLEL_CALLS: usize = 4;
/// How long a completed run's result is returned to duplicates of its event.
const RESULT_KEPT_HOURS: i64 = 24;
/// Completed exports remembered per table (the newest is what the DR RPO needs).
const EXPORTS_KEPT_PER_TABLE: usize = 8;

/// The snapshot port: the backups of the plan's resources, wherever they are.
#[async_trait]
pub trait SnapshotPort: Send + Sync {
    /// Whether a protected resource can be snapshotted now. Never fails: what cannot be
    /// read is reported as `Unreadable`.
    async fn source_state(&self, resource: &ProtectedResource) -> SourceState;
    /// Every manual DB and cluster snapshot in the primary region (anyone's: the quota is
    /// the account's), and Lifeboat's backups of the plan's tables; fully paginated.
    async fn list_primary(&self) -> Result<Vec<BackupRecord>, AwsError>;
    /// Every manual DB and cluster snapshot at a copy destination; fully paginated.
    async fn list_destination(
        &self,
        destination: &CopyDestination,
    ) -> Result<Vec<BackupRecord>, AwsError>;
    /// Create a snapshot or table backup, tagged.
    async fn create(
        &self,
        order: &CreationOrder,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError>;
    /// Copy a snapshot to a destination, re-encrypted with the destination's key.
    async fn copy(&self, order: &CopyOrder, destination: &CopyDestination) -> Result<(), AwsError>;
    /// Start exporting a table to the DR region's bucket under `prefix`; returns the
    /// export's ARN. Idempotent per prefix.
    async fn start_export(
        &self,
        resource: &ProtectedResource,
        bucket: &str,
        prefix: &str,
    ) -> Result<String, AwsError>;
    /// How an export is doing.
    async fn export_progress(&self, export_arn: &str) -> Result<ExportProgress, AwsError>;
}

/// The progress of a table export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportProgress {
    /// Its status.
    pub status: BackupStatus,
    /// The point in time the export holds.
    pub export_time: Option<DateTime<Utc>>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// One table export, as Lifeboat remembers it (in the state table, in the home region, so
/// the DR side knows its exports when the primary region is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEntry {
    /// The plan resource id.
    pub resource: String,
    /// The window stamp.
    pub window: String,
    /// The S3 prefix in the DR bucket.
    pub prefix: String,
    /// The export's ARN.
    pub arn: String,
    /// Its status.
    pub status: BackupStatus,
    /// The point in time it holds, once complete.
    pub export_time: Option<DateTime<Utc>>,
    /// When Lifeboat asked for it (an export without an explicit time holds the data of
    /// that moment).
    pub started_at: DateTime<Utc>,
}

/// The remembered exports of a plan's tables.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExportBook {
    /// Newest last.
    pub exports: Vec<ExportEntry>,
}

impl ExportBook {
    /// The completed exports as backup records at the export location.
    pub fn records(&self, plan: &Plan) -> Vec<BackupRecord> {
        self.exports
            .iter()
            .map(|e| BackupRecord {
                id: e.prefix.clone(),
                arn: Some(e.arn.clone()),
                kind: BackupKind::TableExport,
                location: export_location(plan),
                source: plan
                    .resource(&e.resource)
                    .map(|r| r.aws_identifier().to_string())
                    .unwrap_or_default(),
                created_at: e.export_time.or(Some(e.started_at)),
                status: e.status.clone(),
                automated: false,
                copy_of: None,
                tags: BTreeMap::from([
                    (PLAN_TAG.to_string(), plan.name.clone()),
                    (RESOURCE_TAG.to_string(), e.resource.clone()),
                ]),
            })
            .collect()
    }

    fn prune(&mut self) {
        let mut keep = Vec::new();
        let mut by_resource: BTreeMap<String, usize> = BTreeMap::new();
        for e in self.exports.iter().rev() {
            let n = by_resource.entry(e.resource.clone()).or_default();
            let pending = matches!(e.status, BackupStatus::InProgress(_));
            if pending || *n < EXPORTS_KEPT_PER_TABLE {
                keep.push(e.clone());
            }
            if !pending {
                *n += 1;
            }
        }
        keep.reverse();
        self.exports = keep;
    }
}

/// What a run did, for the caller, the report and the audit timeline.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// The plan.
    pub plan: String,
    /// What triggered the run.
    pub trigger: String,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Snapshots and backups created.
    pub created: Vec<Created>,
    /// Resources whose snapshot for this window already existed.
    pub already_taken: Vec<Named>,
    /// Copies started.
    pub copies_started: Vec<CopyNote>,
    /// Copies left for a later run, with why.
    pub copies_waiting: Vec<CopyNote>,
    /// Table exports started or finished in this run.
    pub exports: Vec<ExportNote>,
    /// Resources skipped, with why.
    pub skipped: Vec<Named>,
    /// What failed, with why.
    pub failed: Vec<Failure>,
    /// The measured RPO per resource and location.
    pub rpo: Vec<RpoMeasurement>,
    /// Where the full report is.
    pub report: Option<String>,
    /// True when this is the stored result of an earlier run of the same event.
    pub duplicate: bool,
    /// The summary in one paragraph.
    pub summary: String,
}

/// A created snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The plan resource id.
    pub resource: String,
    /// The snapshot or backup name.
    pub snapshot: String,
    /// Its tier.
    pub tier: Tier,
}

/// A resource and a snapshot name or a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    /// The plan resource id.
    pub resource: String,
    /// The snapshot, or why.
    pub detail: String,
}

/// A copy started or waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyNote {
    /// The snapshot.
    pub snapshot: String,
    /// The destination key.
    pub destination: String,
    /// Why it waits (empty when started).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A table export's news.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportNote {
    /// The plan resource id.
    pub resource: String,
    /// The S3 prefix.
    pub prefix: String,
    /// Its status.
    pub status: String,
}

/// Something that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The resource, snapshot or step.
    pub subject: String,
    /// What went wrong and what to do.
    pub error: String,
    /// Whether a retry can help.
    pub retryable: bool,
}

/// Why a snapshot invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SnapshotError {
    /// The event is not one the function accepts; nothing was done.
    #[error("bad input: {0}; nothing was done")]
    BadInput(#[from] CommandError),
    /// The primary region's snapshots could not be listed, so nothing could be decided
    /// safely; nothing was done.
    #[error("cannot list the snapshots in the primary region, so nothing was done: {0}")]
    Inventory(AwsError),
    /// The state table failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The run finished, but some of it failed.
    #[error("{}", .0.summary)]
    Incomplete(Box<SnapshotSummary>),
}

impl Classify for SnapshotError {
    fn retry(&self) -> Retry {
        match self {
            SnapshotError::BadInput(_) => Retry::NonRetryable,
            SnapshotError::Inventory(e) => e.retry(),
            SnapshotError::State(e) => e.retry(),
            SnapshotError::Incomplete(s) => {
                if s.failed.iter().any(|f| f.retryable) {
                    Retry::Retryable
                } else {
                    Retry::NonRetryable
                }
            }
        }
    }
}

/// Everything a run needs: the plan and the ports.
pub struct SnapshotRun<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The backups.
    pub port: &'a dyn SnapshotPort,
    /// The state table.
    pub state: &'a dyn StateStore,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Reports.
    pub reports: &'a dyn ReportSink,
}

impl SnapshotRun<'_> {
    /// Handle one invocation payload.
    pub async fn handle(
        &self,
        payload: &serde_json::Value,
        invocation: &Invocation,
    ) -> Result<SnapshotSummary, SnapshotError> {
        let command = parse_command(self.plan, payload)?;
        if let SnapshotCommand::Tick { at, .. } = &command {
            super::command::check_tick_time(*at, invocation.now)?;
        }
        let key = match &command {
            SnapshotCommand::Tick { event_id, .. }
            | SnapshotCommand::SnapshotCreated { event_id, .. } => {
                format!("snapshot/event/{event_id}")
            }
            SnapshotCommand::OnDemand { .. } => {
                format!("snapshot/request/{}", invocation.request_id)
            }
        };
        let token = match state::claim_event::<SnapshotSummary>(
            self.state,
            &self.plan.name,
            key,
            payload,
            invocation.now,
            invocation.deadline,
            RESULT_KEPT_HOURS,
            "snapshot summary",
        )
        .await?
        {
            EventClaim::Acquired(token) => token,
            EventClaim::Replayed(mut summary) => {
                summary.duplicate = true;
                return Ok(summary);
            }
            EventClaim::Busy(until) => {
                return Ok(SnapshotSummary {
                    plan: self.plan.name.clone(),
                    trigger: command.trigger(),
                    at: invocation.now,
                    duplicate: true,
                    summary: format!(
                        "another invocation is handling this event (its claim holds until {until}); nothing was done here"
                    ),
                    ..SnapshotSummary::default()
                });
            }
        };
        let outcome = self.execute(&command, invocation).await;
        match outcome {
            Ok(summary) if summary.failed.is_empty() => {
                let stored = serde_json::to_value(&summary).unwrap_or_default();
                self.state.complete(&token, &stored).await?;
                Ok(summary)
            }
            Ok(summary) => {
                // Let Lambda's retry run the event again; it redoes only what is missing.
                self.state.release(&token).await?;
                Err(SnapshotError::Incomplete(Box::new(summary)))
            }
            Err(e) => {
                let _ = self.state.release(&token).await;
                Err(e)
            }
        }
    }

    async fn execute(
        &self,
        command: &SnapshotCommand,
        invocation: &Invocation,
    ) -> Result<SnapshotSummary, SnapshotError> {
        let plan = self.plan;
        let now = invocation.now;
        let mut summary = SnapshotSummary {
            plan: plan.name.clone(),
            trigger: command.trigger(),
            at: now,
            ..SnapshotSummary::default()
        };
        let primary = self
            .port
            .list_primary()
            .await
            .map_err(SnapshotError::Inventory)?;

        // 1. Snapshots of the resources whose window is due.
        let request = match command {
            SnapshotCommand::Tick { at, .. } => Some(SnapshotRequest {
                resources: plan.resources.iter().collect(),
                timing: Timing::Scheduled(*at),
            }),
            SnapshotCommand::OnDemand { resources, tier } => Some(SnapshotRequest {
                resources: plan
                    .resources
                    .iter()
                    .filter(|r| resources.is_empty() || resources.contains(&r.id))
                    .collect(),
                timing: Timing::OnDemand(now, *tier),
            }),
            SnapshotCommand::SnapshotCreated { .. } => None,
        };
        if let Some(request) = &request {
            self.take_snapshots(request, &primary, now, &mut summary)
                .await;
            self.export_tables(request, now, &mut summary).await;
        }

        // 2. Cross-region copies, destination by destination.
        let only = match command {
            SnapshotCommand::SnapshotCreated { snapshot, .. } => {
                match primary.iter().find(|r| r.is_named(snapshot)) {
                    Some(r) if r.belongs_to(&plan.name) => Some(snapshot.as_str()),
                    _ => {
                        summary.summary = format!(
                            "{snapshot} is not a snapshot of plan {:?} in {}; nothing to copy",
                            plan.name, plan.regions.primary
                        );
                        return Ok(summary);
                    }
                }
            }
            _ => None,
        };
        let mut inventory: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
        for destination in &plan.snapshots.copy_to {
            let key = destination.key();
            match self.port.list_destination(destination).await {
                Ok(at_destination) => {
                    let copies = decide_copies(plan, destination, &primary, &at_destination, only);
                    self.start_copies(&copies.start, destination, now, &mut summary)
                        .await;
                    summary
                        .copies_waiting
                        .extend(
                            copies
                                .waiting
                                .into_iter()
                                .map(|(snapshot, reason)| CopyNote {
                                    snapshot,
                                    destination: key.clone(),
                                    reason,
                                }),
                        );
                    inventory.insert(key, at_destination);
                }
                Err(e) => summary.failed.push(Failure {
                    subject: format!("copies to {key}"),
                    error: format!("cannot list the snapshots there: {e}"),
                    retryable: e.retry() == Retry::Retryable,
                }),
            }
        }
        inventory.insert(plan.regions.primary.clone(), primary);
        if let Ok(Some(book)) = state::load::<ExportBook>(self.state, &exports_key(plan)).await {
            inventory.insert(export_location(plan), book.value.records(plan));
        }

        // 3. The measured RPO.
        if only.is_none() {
            summary.rpo = measure_rpo(plan, &inventory, now);
        }
        self.record(&mut summary, now, &invocation.request_id).await;
        Ok(summary)
    }

    async fn take_snapshots(
        &self,
        request: &SnapshotRequest<'_>,
        primary: &[BackupRecord],
        now: DateTime<Utc>,
        summary: &mut SnapshotSummary,
    ) {
        let sources: Vec<SourceState> = stream::iter(request.resources.iter().copied())
            .map(|r| self.port.source_state(r))
            .buffered(PARALLEL_CALLS)
            .collect()
            .await;
        let decisions = decide_creations(self.plan, request, &sources, primary);
        let mut orders = Vec::new();
        for d in decisions {
            match d {
                CreationDecision::Create(order) => orders.push(order),
                CreationDecision::AlreadyTaken { resource, name } => {
                    summary.already_taken.push(Named {
                        resource,
                        detail: name,
                    })
                }
                CreationDecision::Skip { resource, reason } => summary.skipped.push(Named {
                    resource,
                    detail: reason,
                }),
                CreationDecision::Fail {
                    resource,
                    reason,
                    retry,
                } => summary.failed.push(Failure {
                    subject: resource,
                    error: reason,
                    retryable: retry == Retry::Retryable,
                }),
            }
        }
        // Each snapshot's intent is in the timeline before it is asked for, or it is not
        // asked for: the run fails (retryable) and its retry takes it.
        let trigger = summary.trigger.clone();
        let intents = orders
            .into_iter()
            .map(|order| {
                let intent = self.intent(
                    &trigger,
                    now,
                    "snapshot.create",
                    Some(order.resource.clone()),
                    format!("{} ({}) about to be created", order.name, order.tier),
                    serde_json::json!({"snapshot": order.name, "kind": order.kind, "tier": order.tier}),
                );
                (order, intent)
            })
            .collect();
        let intents = state::commit_intents(self.state, &self.plan.name, intents, now).await;
        for (order, e) in intents.refused {
            summary
                .failed
                .push(not_started(order.resource, &order.name, &e));
        }
        let results: Vec<(CreationOrder, Result<(), AwsError>)> = stream::iter(intents.cleared)
            .map(|order| async move {
                let tags = order.tags(&self.plan.name, now);
                let result = self.port.create(&order, &tags).await;
                (order, result)
            })
            .buffered(PARALLEL_CALLS)
            .collect()
            .await;
        for (order, result) in results {
            match result {
                Ok(()) => summary.created.push(Created {
                    resource: order.resource,
                    snapshot: order.name,
                    tier: order.tier,
                }),
                // A concurrent run of another event took the same window first.
                Err(e)
                    if e.is_code("DBSnapshotAlreadyExists")
                        || e.is_code("DBClusterSnapshotAlreadyExistsFault") =>
                {
                    summary.already_taken.push(Named {
                        resource: order.resource,
                        detail: order.name,
                    })
                }
                Err(e) => summary.failed.push(Failure {
                    subject: order.resource,
                    error: e.to_string(),
                    retryable: e.retry() == Retry::Retryable,
                }),
            }
        }
    }

    async fn start_copies(
        &self,
        orders: &[CopyOrder],
        destination: &CopyDestination,
        now: DateTime<Utc>,
        summary: &mut SnapshotSummary,
    ) {
        let trigger = summary.trigger.clone();
        let intents = orders
            .iter()
            .map(|order| {
                let intent = self.intent(
                    &trigger,
                    now,
                    "snapshot.copy",
                    order.snapshot.resource().map(str::to_string),
                    format!(
                        "{} about to be copied to {}",
                        order.snapshot.id, order.destination
                    ),
                    serde_json::json!({"snapshot": order.snapshot.id, "destination": order.destination}),
                );
                (order, intent)
            })
            .collect();
        let intents = state::commit_intents(self.state, &self.plan.name, intents, now).await;
        for (order, e) in intents.refused {
            summary.failed.push(not_started(
                format!("copy of {} to {}", order.snapshot.id, order.destination),
                &order.snapshot.id,
                &e,
            ));
        }
        let results: Vec<(&CopyOrder, Result<(), AwsError>)> = stream::iter(intents.cleared)
            .map(|order| async move { (order, self.port.copy(order, destination).await) })
            .buffered(PARALLEL_CALLS)
            .collect()
            .await;
        for (order, result) in results {
            match result {
                Ok(()) => summary.copies_started.push(CopyNote {
                    snapshot: order.snapshot.id.clone(),
                    destination: order.destination.clone(),
                    reason: String::new(),
                }),
                Err(e)
                    if e.is_code("DBSnapshotAlreadyExists")
                        || e.is_code("DBClusterSnapshotAlreadyExistsFault") => {}
                Err(e) => summary.failed.push(Failure {
                    subject: format!("copy of {} to {}", order.snapshot.id, order.destination),
                    error: e.to_string(),
                    retryable: e.retry() == Retry::Retryable,
                }),
            }
        }
    }

    /// DynamoDB backups cannot be copied across regions: each window of a table is also
    /// exported (point-in-time export) to the DR region's bucket, and the exports are
    /// tracked in the state table until complete.
    async fn export_tables(
        &self,
        request: &SnapshotRequest<'_>,
        now: DateTime<Utc>,
        summary: &mut SnapshotSummary,
    ) {
        let plan = self.plan;
        let tables: Vec<&ProtectedResource> = request
            .resources
            .iter()
            .copied()
            .filter(|r| r.kind == ResourceKind::DynamodbTable)
            .filter(|r| {
                !summary.failed.iter().any(|f| f.subject == r.id)
                    && !summary.skipped.iter().any(|s| s.resource == r.id)
            })
            .collect();
        let Some(bucket) = plan.snapshots.dynamodb_export_bucket.as_deref() else {
            return;
        };
        let key = exports_key(plan);
        for _attempt in 0..3 {
            let stored = match state::load::<ExportBook>(self.state, &key).await {
                Ok(s) => s,
                Err(e) => {
                    summary.failed.push(Failure {
                        subject: "table exports".into(),
                        error: e.to_string(),
                        retryable: e.retry() == Retry::Retryable,
                    });
                    return;
                }
            };
            let (version, mut book) = match stored {
                Some(v) => (Some(v.version), v.value),
                None => (None, ExportBook::default()),
            };
            let mut notes = Vec::new();
            let mut failures = Vec::new();
            for e in book
                .exports
                .iter_mut()
                .filter(|e| matches!(e.status, BackupStatus::InProgress(_)))
            {
                match self.port.export_progress(&e.arn).await {
                    Ok(p) => {
                        if p.status != e.status {
                            notes.push(ExportNote {
                                resource: e.resource.clone(),
                                prefix: e.prefix.clone(),
                                status: p.status.word().to_string(),
                            });
                            if let BackupStatus::Unusable(_) = p.status {
                                failures.push(Failure {
                                    subject: format!("export of {}", e.resource),
                                    error: format!(
                                        "export {} failed: {}",
                                        e.arn,
                                        p.failure
                                            .clone()
                                            .unwrap_or_else(|| "no reason given".into())
                                    ),
                                    retryable: true,
                                });
                            }
                        }
                        e.status = p.status;
                        e.export_time = p.export_time.or(e.export_time);
                    }
                    Err(err) => failures.push(Failure {
                        subject: format!("export of {}", e.resource),
                        error: err.to_string(),
                        retryable: err.retry() == Retry::Retryable,
                    }),
                }
            }
            let trigger = summary.trigger.clone();
            let mut due = Vec::new();
            for r in &tables {
                let window = match request.timing {
                    Timing::Scheduled(at) => window_at(at, r.interval_minutes(&plan.snapshots)),
                    Timing::OnDemand(at, _) => window_at(at, 1),
                };
                let stamp = window.stamp();
                let taken = book.exports.iter().any(|e| {
                    e.resource == r.id
                        && e.window == stamp
                        && !matches!(e.status, BackupStatus::Unusable(_))
                });
                if taken {
                    continue;
                }
                let prefix = format!("lifeboat/{}/{}/{stamp}/", plan.name, r.id);
                let intent = self.intent(
                    &trigger,
                    now,
                    "snapshot.export",
                    Some(r.id.clone()),
                    format!(
                        "export of {} to s3://{bucket}/{prefix} about to start",
                        r.id
                    ),
                    serde_json::json!({"bucket": bucket, "prefix": prefix}),
                );
                due.push(((*r, stamp, prefix), intent));
            }
            // Each export's intent is in the timeline before it starts, or it does not.
            let due = state::commit_intents(self.state, &plan.name, due, now).await;
            for ((r, _, prefix), e) in due.refused {
                failures.push(not_started(format!("export of {}", r.id), &prefix, &e));
            }
            for (r, stamp, prefix) in due.cleared {
                match self.port.start_export(r, bucket, &prefix).await {
                    Ok(arn) => {
                        notes.push(ExportNote {
                            resource: r.id.clone(),
                            prefix: prefix.clone(),
                            status: "started".into(),
                        });
                        book.exports.push(ExportEntry {
                            resource: r.id.clone(),
                            window: stamp,
                            prefix,
                            arn,
                            status: BackupStatus::InProgress("IN_PROGRESS".into()),
                            export_time: None,
                            started_at: now,
                        });
                    }
                    Err(err) => failures.push(Failure {
                        subject: format!("export of {}", r.id),
                        error: err.to_string(),
                        retryable: err.retry() == Retry::Retryable,
                    }),
                }
            }
            book.prune();
            match state::save(self.state, &key, &book, version, now).await {
                Ok(_) => {
                    summary.exports.extend(notes);
                    summary.failed.extend(failures);
                    return;
                }
                // Another run updated the book meanwhile: read it again and redo the
                // bookkeeping (starting an export again is idempotent).
                Err(StateError::Conflict { .. }) => continue,
                Err(e) => {
                    summary.failed.push(Failure {
                        subject: "table exports".into(),
                        error: e.to_string(),
                        retryable: e.retry() == Retry::Retryable,
                    });
                    return;
                }
            }
        }
        summary.failed.push(Failure {
            subject: "table exports".into(),
            error: "the export book kept changing under concurrent runs; the next tick records it"
                .into(),
            retryable: true,
        });
    }

    /// The intent of an action about to be taken by this run.
    fn intent(
        &self,
        trigger: &str,
        now: DateTime<Utc>,
        action: &str,
        resource: Option<String>,
        detail: String,
        data: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            at: now,
            function: "snapshot".into(),
            trigger: trigger.to_string(),
            action: action.into(),
            resource,
            outcome: Outcome::Intended,
            detail,
            data,
        }
    }

    /// Metrics, audit entries, the report and, when something is wrong, a notification.
    async fn record(&self, summary: &mut SnapshotSummary, now: DateTime<Utc>, run_id: &str) {
        let plan = &self.plan.name;
        for m in &summary.rpo {
            let dims = [
                ("Resource", m.resource.clone()),
                ("Location", m.location.clone()),
            ];
            if let Some(age) = m.age_seconds {
                observe("RpoSeconds", metrics::Unit::Seconds, age as f64, &dims);
            }
            observe(
                "RpoBreached",
                metrics::Unit::Count,
                if m.breached { 1.0 } else { 0.0 },
                &dims,
            );
        }
        observe(
            "SnapshotsCreated",
            metrics::Unit::Count,
            summary.created.len() as f64,
            &[],
        );
        observe(
            "CopiesStarted",
            metrics::Unit::Count,
            summary.copies_started.len() as f64,
            &[],
        );
        observe(
            "BackupFailures",
            metrics::Unit::Count,
            summary.failed.len() as f64,
            &[],
        );

        let mut entries = Vec::new();
        let entry = |action: &str, resource: Option<String>, outcome, detail: String| AuditEntry {
            at: now,
            function: "snapshot".into(),
            trigger: summary.trigger.clone(),
            action: action.into(),
            resource,
            outcome,
            detail,
            data: serde_json::Value::Null,
        };
        for c in &summary.created {
            entries.push(entry(
                "snapshot.create",
                Some(c.resource.clone()),
                Outcome::Started,
                format!("{} ({})", c.snapshot, c.tier),
            ));
        }
        for c in &summary.copies_started {
            entries.push(entry(
                "snapshot.copy",
                None,
                Outcome::Started,
                format!("{} to {}", c.snapshot, c.destination),
            ));
        }
        for x in &summary.exports {
            entries.push(entry(
                "snapshot.export",
                Some(x.resource.clone()),
                if x.status == "started" {
                    Outcome::Started
                } else {
                    Outcome::Succeeded
                },
                format!("export to {}: {}", x.prefix, x.status),
            ));
        }
        for s in &summary.skipped {
            entries.push(entry(
                "snapshot.create",
                Some(s.resource.clone()),
                Outcome::Skipped,
                s.detail.clone(),
            ));
        }
        for f in &summary.failed {
            entries.push(entry(
                "snapshot.run",
                Some(f.subject.clone()),
                Outcome::Failed,
                f.error.clone(),
            ));
        }
        // Each action's intent went in before it was taken; the outcomes are written
        // after the run, and when they cannot be, the run fails saying so (here and in
        // its report).
        if let Err(e) = state::append(self.state, plan, entries, now).await {
            summary.failed.push(Failure {
                subject: "audit entries".into(),
                error: format!(
                    "{e}; the timeline has the intent of each of this run's snapshots, copies and exports, their outcomes are in its report only"
                ),
                retryable: e.retry() == Retry::Retryable,
            });
        }

        summary.summary = describe(summary);
        let breaches: Vec<&RpoMeasurement> = summary.rpo.iter().filter(|m| m.breached).collect();
        let report = serde_json::to_value(&*summary).unwrap_or_default();
        let report_at = report_key(plan, "snapshot", run_id, now);
        match self.reports.put_report(&report_at, &report).await {
            Ok(uri) => summary.report = Some(uri),
            Err(e) => summary.failed.push(Failure {
                subject: "report".into(),
                error: e.to_string(),
                retryable: e.retry() == Retry::Retryable,
            }),
        }
        if !summary.failed.is_empty() || !breaches.is_empty() {
            let severity = if summary.failed.is_empty() {
                Severity::Warning
            } else {
                Severity::Critical
            };
            let subject = match (summary.failed.len(), breaches.len()) {
                (0, b) => format!("backup RPO breached at {b} location(s)"),
                (f, 0) => format!("{f} backup step(s) failed"),
                (f, b) => format!("{f} backup step(s) failed, RPO breached at {b} location(s)"),
            };
            let notification = Notification {
                plan: plan.clone(),
                severity,
                subject,
                body: summary.summary.clone(),
                details: serde_json::json!({
                    "failed": summary.failed,
                    "breaches": breaches,
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
        let outcome = if summary.failed.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        let run_entry = AuditEntry {
            at: now,
            function: "snapshot".into(),
            trigger: summary.trigger.clone(),
            action: "snapshot.run".into(),
            resource: None,
            outcome,
            detail: summary.summary.clone(),
            data: serde_json::json!({"report": summary.report}),
        };
        if let Err(e) = state::append(self.state, plan, vec![run_entry], now).await {
            summary.failed.push(Failure {
                subject: "audit entry".into(),
                error: format!("{e}; the run's summary is in its report only"),
                retryable: e.retry() == Retry::Retryable,
            });
            summary.summary = describe(summary);
            // The report is written again, so that it says so too.
            let report = serde_json::to_value(&*summary).unwrap_or_default();
            if let Err(e) = self.reports.put_report(&report_at, &report).await {
                tracing::warn!(error = %e, "report not rewritten with the missing run entry");
            }
        }
    }
}

/// An action left undone because its intent could not be written first.
fn not_started(subject: String, what: &str, e: &StateError) -> Failure {
    Failure {
        subject,
        error: format!(
            "its audit entry could not be written ({e}), so {what} was not started; a retry of the run starts it"
        ),
        retryable: e.retry() == Retry::Retryable,
    }
}

/// The state item holding the plan's table exports.
pub fn exports_key(plan: &Plan) -> MachineKey {
    MachineKey::new(&plan.name, "table-exports")
}

/// One paragraph a person reads: created, copied, skipped (why), failed (why), RPO.
pub fn describe(s: &SnapshotSummary) -> String {
    let mut out = String::new();
    let list = |names: Vec<String>| {
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        }
    };
    let _ = write!(
        out,
        "Created {}{}; already taken {}; copies started {}{}",
        s.created.len(),
        list(
            s.created
                .iter()
                .map(|c| format!("{} {}", c.snapshot, c.tier))
                .collect()
        ),
        s.already_taken.len(),
        s.copies_started.len(),
        list(
            s.copies_started
                .iter()
                .map(|c| format!("{} to {}", c.snapshot, c.destination))
                .collect()
        ),
    );
    if !s.copies_waiting.is_empty() {
        let _ = write!(
            out,
            "; copies waiting {} ({})",
            s.copies_waiting.len(),
            s.copies_waiting[0].reason
        );
    }
    if !s.exports.is_empty() {
        let _ = write!(
            out,
            "; table exports: {}",
            s.exports
                .iter()
                .map(|e| format!("{} {}", e.resource, e.status))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = write!(out, "; skipped {}", s.skipped.len());
    for sk in &s.skipped {
        let _ = write!(out, " [{}: {}]", sk.resource, sk.detail);
    }
    let _ = write!(out, "; failed {}", s.failed.len());
    for f in &s.failed {
        let _ = write!(out, " [{}: {}]", f.subject, f.error);
    }
    let breached: Vec<String> = s
        .rpo
        .iter()
        .filter(|m| m.breached)
        .map(|m| match m.age_seconds {
            Some(a) => format!(
                "{} at {}: {} min old, target {} min",
                m.resource,
                m.location,
                a / 60,
                m.target_seconds / 60
            ),
            None => format!("{} at {}: no backup yet", m.resource, m.location),
        })
        .collect();
    if breached.is_empty() {
        if !s.rpo.is_empty() {
            out.push_str("; RPO met everywhere");
        }
    } else {
        let _ = write!(out, "; RPO breached: {}", breached.join("; "));
    }
    out.push('.');
    out
}

#[cfg(test)]
mod tests;
