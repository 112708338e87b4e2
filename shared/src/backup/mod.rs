//! Backups: what exists where, and the pure decisions of a snapshot run — which resources
//! to snapshot, which snapshots to copy to which destination, and how old the newest
//! usable backup is (the measured RPO).
//!
//! Orchestration (gathering the facts, acting on the decisions, recording) is in
//! [`run`]; the AWS adapter is `crate::aws::AwsSnapshots`.

pub mod command;
pub mod run;

use crate::error::Retry;
use crate::ident::IdentifierRule;
use crate::plan::{
    CREATED_TAG, CopyDestination, PLAN_TAG, Plan, ProtectedResource, RESOURCE_TAG, ResourceKind,
    TIER_TAG,
};
use crate::schedule::{Tier, Window, snapshot_name, tier_of, window_at};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

pub use command::{CommandError, SnapshotCommand, parse_command};

/// Tag on a copy naming the snapshot it was copied from (its ARN).
pub const SOURCE_TAG: &str = "lifeboat:source";
/// Tag on a copy naming the copy destination (`region` or `region@account`).
pub const DESTINATION_TAG: &str = "lifeboat:destination";

/// What a backup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// An RDS DB instance snapshot.
    DbSnapshot,
    /// An Aurora DB cluster snapshot.
    ClusterSnapshot,
    /// A DynamoDB on-demand backup (in the table's region only).
    TableBackup,
    /// A DynamoDB table export to S3 in the DR region (the table's cross-region copy).
    TableExport,
}

impl BackupKind {
    /// The kind of backup a resource gets in its own region.
    pub fn of(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::RdsInstance => BackupKind::DbSnapshot,
            ResourceKind::AuroraCluster => BackupKind::ClusterSnapshot,
            ResourceKind::DynamodbTable => BackupKind::TableBackup,
        }
    }

    /// Whether RDS copies this kind across regions.
    pub fn is_copyable(self) -> bool {
        matches!(self, BackupKind::DbSnapshot | BackupKind::ClusterSnapshot)
    }

    /// How AWS compares the names of this kind: RDS snapshot identifiers in any case,
    /// DynamoDB backup names and export prefixes exactly.
    pub fn identifier_rule(self) -> IdentifierRule {
        match self {
            BackupKind::DbSnapshot | BackupKind::ClusterSnapshot => IdentifierRule::Rds,
            BackupKind::TableBackup | BackupKind::TableExport => IdentifierRule::Exact,
        }
    }
}

/// Where a backup's lifecycle stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "status")]
pub enum BackupStatus {
    /// Usable for a restore.
    Available,
    /// Being created or copied (the AWS status word).
    InProgress(String),
    /// Failed, or otherwise unusable (the AWS status word).
    Unusable(String),
}

impl BackupStatus {
    /// Classify an RDS snapshot status or a DynamoDB backup/export status.
    pub fn from_aws(status: &str) -> Self {
        match status.to_ascii_lowercase().as_str() {
            "available" | "completed" => BackupStatus::Available,
            "creating" | "copying" | "pending" | "in_progress" => {
                BackupStatus::InProgress(status.to_string())
            }
            _ => BackupStatus::Unusable(status.to_string()),
        }
    }

    /// The status word.
    pub fn word(&self) -> &str {
        match self {
            BackupStatus::Available => "available",
            BackupStatus::InProgress(s) | BackupStatus::Unusable(s) => s,
        }
    }
}

/// One snapshot, backup or export, as listed at a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// Snapshot identifier, backup name or export prefix.
    pub id: String,
    /// Its ARN, when it has one.
    pub arn: Option<String>,
    /// What it is.
    pub kind: BackupKind,
    /// Where it is: a region, or `region@account` for another account.
    pub location: String,
    /// The AWS identifier of the instance, cluster or table it was taken from.
    pub source: String,
    /// When the data was taken (for a copy: when the original was).
    pub created_at: Option<DateTime<Utc>>,
    /// Its status.
    pub status: BackupStatus,
    /// Whether RDS took it automatically (never Lifeboat's to copy or delete).
    pub automated: bool,
    /// For a copy: the snapshot it was copied from, when known.
    pub copy_of: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl BackupRecord {
    /// The plan it belongs to (`lifeboat:plan`).
    pub fn plan(&self) -> Option<&str> {
        self.tags.get(PLAN_TAG).map(String::as_str)
    }

    /// The plan resource it belongs to (`lifeboat:resource`).
    pub fn resource(&self) -> Option<&str> {
        self.tags.get(RESOURCE_TAG).map(String::as_str)
    }

    /// Whether `name` (from an event, an operator or another listing) is this backup's
    /// name, by AWS's rule for its kind.
    pub fn is_named(&self, name: &str) -> bool {
        self.kind.identifier_rule().same(&self.id, name)
    }

    /// Its name in the form AWS stores it, for sets of names.
    fn name_key(&self) -> String {
        self.kind.identifier_rule().canonical(&self.id).into_owned()
    }

    /// Whether it was taken from the protected resource `r` (RDS: its identifier in any
    /// case; a table: exactly its name).
    pub fn is_of(&self, r: &ProtectedResource) -> bool {
        r.is_named(&self.source)
    }

    /// Whether it is Lifeboat's snapshot of `plan`.
    pub fn belongs_to(&self, plan: &str) -> bool {
        !self.automated && self.plan() == Some(plan) && self.resource().is_some()
    }

    /// Whether it is a copy still in progress.
    pub fn is_copy_in_progress(&self) -> bool {
        matches!(self.status, BackupStatus::InProgress(_))
            && (self.copy_of.is_some()
                || self.tags.contains_key(SOURCE_TAG)
                || matches!(self.status.word(), "copying" | "pending"))
    }
}

/// Whether a protected resource can be snapshotted now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "condition")]
pub enum SourceCondition {
    /// Available (tables: ACTIVE).
    Ready,
    /// It exists but is in another state (stopped, modifying, ...).
    NotReady {
        /// The AWS status word.
        status: String,
    },
    /// It does not exist.
    Missing,
    /// It could not be read.
    Unreadable {
        /// Why.
        reason: String,
        /// Whether a retry can help.
        retry: Retry,
    },
}

/// A protected resource as the snapshot run finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// The plan resource id.
    pub resource: String,
    /// Its condition.
    pub condition: SourceCondition,
}

/// A snapshot (or table backup) to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreationOrder {
    /// The plan resource id.
    pub resource: String,
    /// Its AWS identifier.
    pub source: String,
    /// What to create.
    pub kind: BackupKind,
    /// The deterministic name.
    pub name: String,
    /// Its tier.
    pub tier: Tier,
    /// The window it is for.
    pub window: Window,
}

impl CreationOrder {
    /// The tags Lifeboat puts on what it creates.
    pub fn tags(&self, plan: &str, now: DateTime<Utc>) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PLAN_TAG.to_string(), plan.to_string()),
            (RESOURCE_TAG.to_string(), self.resource.clone()),
            (TIER_TAG.to_string(), self.tier.as_str().to_string()),
            (
                CREATED_TAG.to_string(),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        ])
    }
}

/// What to do about one resource in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum CreationDecision {
    /// Create it.
    Create(CreationOrder),
    /// This window's snapshot exists already (a duplicate or retried tick).
    AlreadyTaken {
        /// The plan resource id.
        resource: String,
        /// The existing snapshot.
        name: String,
    },
    /// Not now, and not an error (the next tick tries again).
    Skip {
        /// The plan resource id.
        resource: String,
        /// Why.
        reason: String,
    },
    /// Cannot be done; the run ends in error.
    Fail {
        /// The plan resource id.
        resource: String,
        /// Why, and what to do.
        reason: String,
        /// Whether a retry can help.
        retry: Retry,
    },
}

/// Manual snapshots one location may still take before it reaches its quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRoom {
    /// Room for DB instance snapshots.
    pub db_snapshots: u32,
    /// Room for DB cluster snapshots.
    pub cluster_snapshots: u32,
}

impl QuotaRoom {
    /// Room left at a location holding `records`, under the plan's quotas. Every manual
    /// snapshot counts, Lifeboat's or not: the quota is the account's.
    pub fn left(plan: &Plan, records: &[BackupRecord]) -> Self {
        let count = |kind| {
            records
                .iter()
                .filter(|r| r.kind == kind && !r.automated)
                .count() as u32
        };
        QuotaRoom {
            db_snapshots: plan
                .quotas
                .manual_db_snapshots_per_region
                .saturating_sub(count(BackupKind::DbSnapshot)),
            cluster_snapshots: plan
                .quotas
                .manual_cluster_snapshots_per_region
                .saturating_sub(count(BackupKind::ClusterSnapshot)),
        }
    }

    fn take(&mut self, kind: BackupKind) -> bool {
        let slot = match kind {
            BackupKind::DbSnapshot => &mut self.db_snapshots,
            BackupKind::ClusterSnapshot => &mut self.cluster_snapshots,
            BackupKind::TableBackup | BackupKind::TableExport => return true,
        };
        if *slot == 0 {
            false
        } else {
            *slot -= 1;
            true
        }
    }

    fn quota_of(plan: &Plan, kind: BackupKind) -> u32 {
        match kind {
            BackupKind::ClusterSnapshot => plan.quotas.manual_cluster_snapshots_per_region,
            _ => plan.quotas.manual_db_snapshots_per_region,
        }
    }
}

/// The resources a snapshot request covers, and the window and tier each gets.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRequest<'a> {
    /// The resources, in plan order.
    pub resources: Vec<&'a ProtectedResource>,
    /// How each one's window is chosen.
    pub timing: Timing,
}

/// How windows and tiers are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// A schedule tick: each resource's window at this instant, tier by the plan's rules.
    Scheduled(DateTime<Utc>),
    /// An operator's request: a one-minute window at this instant, with this tier.
    OnDemand(DateTime<Utc>, Tier),
}

/// Decide, for each requested resource, whether to snapshot it now.
///
/// `existing` is everything listed in the primary region (Lifeboat's or not); `sources`
/// the state of each resource. Order of precedence: a snapshot already taken for the
/// window wins (idempotency), then the resource's condition, then a snapshot of it
/// still in progress, then the quota, which is checked before any call so that a run
/// never fails half-way on `SnapshotQuotaExceeded`.
pub fn decide_creations(
    plan: &Plan,
    request: &SnapshotRequest<'_>,
    sources: &[SourceState],
    existing: &[BackupRecord],
) -> Vec<CreationDecision> {
    let names: HashSet<String> = existing.iter().map(BackupRecord::name_key).collect();
    let mut room = QuotaRoom::left(plan, existing);
    let mut decisions = Vec::new();
    for r in &request.resources {
        let kind = BackupKind::of(r.kind);
        let (window, tier) = match request.timing {
            Timing::Scheduled(at) => {
                let w = window_at(at, r.interval_minutes(&plan.snapshots));
                (w, tier_of(&w, &plan.snapshots.tiers))
            }
            Timing::OnDemand(at, tier) => (window_at(at, 1), tier),
        };
        let name = snapshot_name(&plan.name, &r.id, window.start);
        if names.contains(kind.identifier_rule().canonical(&name).as_ref()) {
            decisions.push(CreationDecision::AlreadyTaken {
                resource: r.id.clone(),
                name,
            });
            continue;
        }
        let condition = sources
            .iter()
            .find(|s| s.resource == r.id)
            .map(|s| &s.condition);
        match condition {
            None => {
                decisions.push(CreationDecision::Fail {
                    resource: r.id.clone(),
                    reason: "its state was not read (internal error: please report)".into(),
                    retry: Retry::Retryable,
                });
                continue;
            }
            Some(SourceCondition::Missing) => {
                decisions.push(CreationDecision::Fail {
                    resource: r.id.clone(),
                    reason: format!(
                        "the plan names {} {}, which does not exist in {}; correct `identifier` in the plan or remove the resource",
                        r.kind,
                        r.aws_identifier(),
                        plan.regions.primary
                    ),
                    retry: Retry::NonRetryable,
                });
                continue;
            }
            Some(SourceCondition::Unreadable { reason, retry }) => {
                decisions.push(CreationDecision::Fail {
                    resource: r.id.clone(),
                    reason: format!("its state could not be read: {reason}"),
                    retry: *retry,
                });
                continue;
            }
            Some(SourceCondition::NotReady { status }) => {
                decisions.push(CreationDecision::Skip {
                    resource: r.id.clone(),
                    reason: format!(
                        "{} {} is {status}, not available; the next tick tries again",
                        r.kind,
                        r.aws_identifier()
                    ),
                });
                continue;
            }
            Some(SourceCondition::Ready) => {}
        }
        if let Some(busy) = existing.iter().find(|b| {
            b.is_of(r)
                && b.kind == kind
                && matches!(b.status, BackupStatus::InProgress(_))
                && b.copy_of.is_none()
        }) {
            decisions.push(CreationDecision::Skip {
                resource: r.id.clone(),
                reason: format!(
                    "snapshot {} of it is still {}; one at a time",
                    busy.id,
                    busy.status.word()
                ),
            });
            continue;
        }
        if !room.take(kind) {
            decisions.push(CreationDecision::Fail {
                resource: r.id.clone(),
                reason: format!(
                    "taking it would exceed the quota of {} manual {} in {}; let retention prune, or raise the quota (with AWS and in the plan's `quotas`)",
                    QuotaRoom::quota_of(plan, kind),
                    if kind == BackupKind::ClusterSnapshot { "DB cluster snapshots" } else { "DB snapshots" },
                    plan.regions.primary
                ),
                retry: Retry::NonRetryable,
            });
            continue;
        }
        decisions.push(CreationDecision::Create(CreationOrder {
            resource: r.id.clone(),
            source: r.aws_identifier().to_string(),
            kind,
            name,
            tier,
            window,
        }));
    }
    decisions
}

/// A copy to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOrder {
    /// The snapshot to copy (in the primary region).
    pub snapshot: BackupRecord,
    /// The destination key (`region` or `region@account`).
    pub destination: String,
}

impl CopyOrder {
    /// The copy's tags: the original's Lifeboat tags, plus where it came from and which
    /// destination it belongs to (so no destination's retention touches another's).
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut tags: BTreeMap<String, String> = self
            .snapshot
            .tags
            .iter()
            .filter(|(k, _)| k.starts_with("lifeboat:") && k.as_str() != DESTINATION_TAG)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(arn) = &self.snapshot.arn {
            tags.insert(SOURCE_TAG.to_string(), arn.clone());
        }
        tags.insert(DESTINATION_TAG.to_string(), self.destination.clone());
        tags
    }
}

/// The copy decisions for one destination.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CopyPlan {
    /// Copies to start now, newest snapshot first.
    pub start: Vec<CopyOrder>,
    /// Snapshots that wait for a later run, with why.
    pub waiting: Vec<(String, String)>,
    /// Copies already in progress into the destination.
    pub in_progress: u32,
}

/// Decide which of the primary region's snapshots to copy to `destination` now.
///
/// Candidates are the plan's available manual snapshots in the primary region that have
/// no copy (of the same name) at the destination; `only` narrows them to one snapshot
/// (an RDS "snapshot created" event). AWS allows `concurrent_copies_per_region` copies in
/// progress into a region — every copy counts, Lifeboat's or not — so the newest
/// candidates take the free slots (the newest matters most for the RPO) and the rest
/// wait for the next run; the destination's snapshot quota is respected the same way.
pub fn decide_copies(
    plan: &Plan,
    destination: &CopyDestination,
    primary: &[BackupRecord],
    at_destination: &[BackupRecord],
    only: Option<&str>,
) -> CopyPlan {
    let present: HashSet<String> = at_destination.iter().map(BackupRecord::name_key).collect();
    let in_progress = at_destination
        .iter()
        .filter(|r| r.is_copy_in_progress())
        .count() as u32;
    let mut candidates: Vec<&BackupRecord> = primary
        .iter()
        .filter(|r| {
            r.belongs_to(&plan.name)
                && r.kind.is_copyable()
                && r.status == BackupStatus::Available
                && !present.contains(&r.name_key())
                && only.is_none_or(|id| r.is_named(id))
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    let limit = plan.quotas.concurrent_copies_per_region;
    let mut slots = limit.saturating_sub(in_progress);
    let mut room = QuotaRoom::left(plan, at_destination);
    let mut out = CopyPlan {
        in_progress,
        ..CopyPlan::default()
    };
    let key = destination.key();
    for c in candidates {
        if slots == 0 {
            out.waiting.push((
                c.id.clone(),
                format!(
                    "{limit} copies are already in progress into {key} (the AWS limit per region); it is copied by a later run"
                ),
            ));
        } else if !room.take(c.kind) {
            out.waiting.push((
                c.id.clone(),
                format!(
                    "{key} is at its quota of {} manual snapshots; let retention prune there, or raise the quota",
                    QuotaRoom::quota_of(plan, c.kind)
                ),
            ));
        } else {
            slots -= 1;
            out.start.push(CopyOrder {
                snapshot: c.clone(),
                destination: key.clone(),
            });
        }
    }
    out
}

/// The age of a resource's newest usable backup at one location: its actual RPO there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpoMeasurement {
    /// The plan resource id.
    pub resource: String,
    /// The location (`us-east-1`, `us-west-2`, `us-west-2 (export)`, `eu-west-1@2109...`).
    pub location: String,
    /// The newest usable backup there.
    pub newest: Option<String>,
    /// When its data was taken.
    pub newest_at: Option<DateTime<Utc>>,
    /// Its age in seconds (`None`: there is no usable backup at all).
    pub age_seconds: Option<i64>,
    /// The objective it is held to, in seconds.
    pub target_seconds: i64,
    /// Whether the objective is missed.
    pub breached: bool,
}

/// The objective a resource's backups are held to. Without a replica the backups carry
/// the RPO. With one, the replica carries it and the backups are the second line: they
/// breach when a window was missed (older than two intervals, or the RPO if longer).
pub fn backup_objective_seconds(plan: &Plan, r: &ProtectedResource) -> i64 {
    let rpo = i64::from(r.rpo_minutes) * 60;
    if r.replica.is_some() {
        rpo.max(2 * i64::from(r.interval_minutes(&plan.snapshots)) * 60)
    } else {
        rpo
    }
}

/// The location key under which a table's exports are measured.
pub fn export_location(plan: &Plan) -> String {
    format!("{} (export)", plan.regions.dr)
}

/// Measure each resource's backup age at every location it should have backups in:
/// the primary region and every copy destination for databases; the primary region
/// (on-demand backups) and the DR region's exports for tables.
pub fn measure_rpo(
    plan: &Plan,
    inventory: &BTreeMap<String, Vec<BackupRecord>>,
    now: DateTime<Utc>,
) -> Vec<RpoMeasurement> {
    let mut out = Vec::new();
    for r in &plan.resources {
        let locations: Vec<String> = match r.kind {
            ResourceKind::DynamodbTable => {
                vec![plan.regions.primary.clone(), export_location(plan)]
            }
            _ => std::iter::once(plan.regions.primary.clone())
                .chain(plan.snapshots.copy_to.iter().map(|d| d.key()))
                .collect(),
        };
        let target = backup_objective_seconds(plan, r);
        for location in locations {
            let newest = inventory
                .get(&location)
                .into_iter()
                .flatten()
                .filter(|b| {
                    b.belongs_to(&plan.name)
                        && b.resource() == Some(r.id.as_str())
                        && b.status == BackupStatus::Available
                        && b.created_at.is_some()
                })
                .max_by(|a, b| {
                    a.created_at
                        .cmp(&b.created_at)
                        .then_with(|| b.id.cmp(&a.id))
                });
            let age = newest
                .and_then(|b| b.created_at)
                .map(|t| (now - t).num_seconds().max(0));
            out.push(RpoMeasurement {
                resource: r.id.clone(),
                location,
                newest: newest.map(|b| b.id.clone()),
                newest_at: newest.and_then(|b| b.created_at),
                age_seconds: age,
                target_seconds: target,
                breached: age.is_none_or(|a| a > target),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
