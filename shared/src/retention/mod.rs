//! Retention: which snapshots of one region (or copy destination) to keep, which to
//! delete, and why.
//!
//! The planner is pure. The edge lists a region's RDS snapshots, cluster snapshots and
//! DynamoDB backups, turns each into a [`SnapshotFacts`], and [`plan_retention`] returns
//! one [`SnapshotDecision`] per listed snapshot, in listing order, each kept with every
//! rule that keeps it or deleted with the reason. `now` is an argument; nothing here reads
//! a clock or touches an AWS type.
//!
//! The rules, stated for operators in the README's "Retention rules" section:
//!
//! 1. **Never deleted**, whatever the policy says, and left out of the buckets below unless
//!    noted: a snapshot without this plan's `lifeboat:plan` tag; an RDS automated
//!    snapshot; a snapshot of this plan without a `lifeboat:resource` tag (it cannot be
//!    attributed to a resource, so no resource's policy applies to it); a snapshot whose
//!    id is listed more than once (which one would a delete remove?); one whose status is
//!    not `available` (any case); one created after `now` (clock skew: its day is not
//!    known for sure yet). A snapshot under legal hold, or the source of a cross-region
//!    copy still in progress, is never deleted either, but does fill buckets: it is a
//!    restorable point in time like any other.
//! 2. The rest are the resource's **eligible** snapshots, ordered newest first by
//!    `created_at`; equal times are ordered by `id` (byte order, the smaller first), so the
//!    result never depends on listing order.
//! 3. Of each resource's eligible snapshots, the newest is kept ("newest available"), and
//!    so is the newest with a `lifeboat:validated-at` tag ("newest validated").
//! 4. **Buckets**, the semantics of `restic forget --keep-daily` and friends: walking the
//!    eligible snapshots newest first, `keep_daily = N` keeps the first snapshot met in
//!    each of the first N distinct UTC days met; `keep_weekly` likewise per ISO 8601 week
//!    (Monday to Sunday, UTC), `keep_monthly` per calendar month, `keep_yearly` per
//!    calendar year. Periods without a snapshot do not count, so a resource whose
//!    snapshots stopped keeps its last ones rather than ageing them all out. The four
//!    categories are applied independently to the same list; a snapshot kept by several
//!    lists all of them.
//! 5. `min_keep` keeps the newest N eligible snapshots whatever their age (the resource's
//!    own `primary_min_keep`/`dr_min_keep` when the plan sets it, else the region's).
//! 6. Every other eligible snapshot is deleted: "outside every bucket".
//!
//! The planner is O(n log n) in the number of snapshots: one sort, then linear passes.

pub mod archive;
mod planner;
#[cfg(test)]
mod properties;
pub mod run;
#[cfg(test)]
mod tests;

pub use planner::plan_retention;

use crate::plan::{Plan, RetentionPolicy};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What the edge knows about one snapshot (RDS DB snapshot, DB cluster snapshot or
/// DynamoDB backup), read from the listing and the snapshot's tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFacts {
    /// What a delete names. Must identify the snapshot within the listing: use the ARN,
    /// because a DB snapshot and a DB cluster snapshot may share an identifier.
    pub id: String,
    /// The plan's resource id, from the `lifeboat:resource` tag.
    pub resource: Option<String>,
    /// The value of the `lifeboat:plan` tag; `None` when the tag is missing.
    pub plan: Option<String>,
    /// When the snapshot was taken.
    pub created_at: DateTime<Utc>,
    /// The status AWS reports (`available`, `creating`, `copying`, `AVAILABLE`, ...).
    pub status: String,
    /// An RDS automated snapshot: RDS manages its lifetime, never Lifeboat.
    pub automated: bool,
    /// When the restore validator proved the snapshot restores (`lifeboat:validated-at`).
    pub validated_at: Option<DateTime<Utc>>,
    /// The snapshot carries the `lifeboat:legal-hold` tag.
    pub legal_hold: bool,
    /// A cross-region copy of this snapshot is still in progress.
    pub copy_in_progress: bool,
}

/// The retention rules of one region or copy destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRules {
    /// The plan name: only snapshots whose `lifeboat:plan` tag equals it may be deleted.
    pub plan: String,
    /// The region's policy.
    pub policy: RetentionPolicy,
    /// Per-resource `min_keep`, overriding `policy.min_keep` for the resources listed.
    pub min_keep_by_resource: BTreeMap<String, u32>,
}

impl RetentionRules {
    /// The rules for `location`: the primary region's name, or a copy destination's key
    /// ([`crate::plan::CopyDestination::key`]), which gets the DR policy, as
    /// [`Plan::retention_for`] says.
    pub fn for_location(plan: &Plan, location: &str) -> RetentionRules {
        let primary = location == plan.regions.primary;
        let min_keep_by_resource = plan
            .resources
            .iter()
            .filter_map(|r| {
                let own = r.retention?;
                let min_keep = if primary {
                    own.primary_min_keep
                } else {
                    own.dr_min_keep
                }?;
                Some((r.id.clone(), min_keep))
            })
            .collect();
        RetentionRules {
            plan: plan.name.clone(),
            policy: *plan.retention_for(location),
            min_keep_by_resource,
        }
    }

    /// The `min_keep` that applies to `resource`. A resource the plan no longer lists gets
    /// the region's: its last snapshots are the only copies of its data.
    pub fn min_keep(&self, resource: &str) -> u32 {
        self.min_keep_by_resource
            .get(resource)
            .copied()
            .unwrap_or(self.policy.min_keep)
    }
}

/// The decision about one listed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDecision {
    /// The snapshot's id, as listed.
    pub id: String,
    /// The resource it belongs to, as listed.
    pub resource: Option<String>,
    /// Keep or delete, and why.
    #[serde(flatten)]
    pub decision: RetentionDecision,
}

impl fmt::Display for SnapshotDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.id, self.decision)
    }
}

/// Keep a snapshot, or delete it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RetentionDecision {
    /// Keep it, for every reason listed.
    Keep {
        /// Every rule that keeps it, in the order of [`KeepReason`]'s variants.
        reasons: KeepReasons,
    },
    /// Delete it.
    Delete {
        /// Why it may go.
        reason: DeleteReason,
    },
}

impl RetentionDecision {
    /// Whether the snapshot is to be deleted.
    pub fn is_delete(&self) -> bool {
        matches!(self, RetentionDecision::Delete { .. })
    }

    /// The reasons it is kept (none when it is deleted).
    pub fn keep_reasons(&self) -> &[KeepReason] {
        match self {
            RetentionDecision::Keep { reasons } => reasons.as_slice(),
            RetentionDecision::Delete { .. } => &[],
        }
    }
}

impl fmt::Display for RetentionDecision {
    /// "kept: monthly 2026-10, daily 2026-10-31" or "deleted: outside every bucket".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionDecision::Keep { reasons } => write!(f, "kept: {reasons}"),
            RetentionDecision::Delete { reason } => write!(f, "deleted: {reason}"),
        }
    }
}

/// The reasons a snapshot is kept: never empty (a kept snapshot always has one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<KeepReason>", into = "Vec<KeepReason>")]
pub struct KeepReasons(Vec<KeepReason>);

impl KeepReasons {
    /// The reasons, or `None` when there is none (then the snapshot is not kept).
    pub fn new(reasons: Vec<KeepReason>) -> Option<KeepReasons> {
        if reasons.is_empty() {
            None
        } else {
            Some(KeepReasons(reasons))
        }
    }

    /// The reasons, in order.
    pub fn as_slice(&self) -> &[KeepReason] {
        &self.0
    }
}

impl TryFrom<Vec<KeepReason>> for KeepReasons {
    type Error = &'static str;

    fn try_from(reasons: Vec<KeepReason>) -> Result<Self, Self::Error> {
        KeepReasons::new(reasons).ok_or("a kept snapshot needs at least one reason")
    }
}

impl From<KeepReasons> for Vec<KeepReason> {
    fn from(reasons: KeepReasons) -> Self {
        reasons.0
    }
}

impl fmt::Display for KeepReasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, reason) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{reason}")?;
        }
        Ok(())
    }
}

/// Why a snapshot is kept. A kept snapshot lists every reason that applies, in the order
/// of these variants: protections first (what no policy can override), then the newest
/// snapshots, then the buckets from the longest period down, then `min_keep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum KeepReason {
    /// The `lifeboat:legal-hold` tag is on it.
    LegalHold,
    /// Its `lifeboat:plan` tag is missing or names another plan.
    NotThisPlan,
    /// An RDS automated snapshot.
    Automated,
    /// It has this plan's tag but no `lifeboat:resource` tag.
    NotAttributable,
    /// Its id appears more than once in the listing, so a delete could hit either.
    ListedMoreThanOnce,
    /// Its status is not `available`.
    NotAvailable {
        /// The status, as listed.
        status: String,
    },
    /// A cross-region copy from it is still in progress.
    CopySource,
    /// Its creation time is after `now`.
    CreatedAfterNow,
    /// The newest eligible snapshot of its resource.
    NewestAvailable,
    /// The newest eligible snapshot of its resource that passed restore validation.
    NewestValidated,
    /// The newest snapshot of a calendar year (UTC) within `keep_yearly`.
    Yearly {
        /// The year.
        year: i32,
    },
    /// The newest snapshot of a calendar month (UTC) within `keep_monthly`.
    Monthly {
        /// The year.
        year: i32,
        /// The month, 1 to 12.
        month: u32,
    },
    /// The newest snapshot of an ISO 8601 week (UTC) within `keep_weekly`.
    Weekly {
        /// The ISO week-numbering year (which may differ from the calendar year around
        /// New Year).
        iso_year: i32,
        /// The ISO week, 1 to 53.
        week: u32,
    },
    /// The newest snapshot of a UTC day within `keep_daily`.
    Daily {
        /// The day.
        date: NaiveDate,
    },
    /// Among the newest `min_keep` eligible snapshots of its resource.
    MinKeep {
        /// The `min_keep` that applied.
        min_keep: u32,
    },
    /// An RDS export of it to S3 is still running (deleting it could break the export).
    ExportInProgress {
        /// The export task.
        task: String,
    },
    /// The archive tier wants it in S3 before it goes: this run starts its export, and a
    /// later run deletes it once the export is complete.
    ArchiveStarted {
        /// The export task started.
        task: String,
    },
    /// Its archive export failed every time it was tried: it is kept until an operator
    /// looks (see the report for the failures).
    ArchiveFailed {
        /// Export attempts made.
        attempts: u32,
    },
}

impl KeepReason {
    /// Whether this reason comes from a bucket (`keep_daily` ... `keep_yearly`).
    pub fn is_bucket(&self) -> bool {
        matches!(
            self,
            KeepReason::Yearly { .. }
                | KeepReason::Monthly { .. }
                | KeepReason::Weekly { .. }
                | KeepReason::Daily { .. }
        )
    }
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::LegalHold => f.write_str("legal hold"),
            KeepReason::NotThisPlan => {
                f.write_str("not Lifeboat's (plan tag missing or another plan)")
            }
            KeepReason::Automated => f.write_str("automated snapshot"),
            KeepReason::NotAttributable => {
                f.write_str("not attributable (plan tag but no resource tag)")
            }
            KeepReason::ListedMoreThanOnce => f.write_str("id listed more than once"),
            KeepReason::NotAvailable { status } => write!(f, "not available ({status})"),
            KeepReason::CopySource => f.write_str("source of a copy in progress"),
            KeepReason::CreatedAfterNow => f.write_str("created after now (clock skew)"),
            KeepReason::NewestAvailable => f.write_str("newest available"),
            KeepReason::NewestValidated => f.write_str("newest validated"),
            KeepReason::Yearly { year } => write!(f, "yearly {year}"),
            KeepReason::Monthly { year, month } => write!(f, "monthly {year}-{month:02}"),
            KeepReason::Weekly { iso_year, week } => write!(f, "weekly {iso_year}-W{week:02}"),
            KeepReason::Daily { date } => write!(f, "daily {}", date.format("%Y-%m-%d")),
            KeepReason::MinKeep { min_keep } => write!(f, "min_keep ({min_keep} newest)"),
            KeepReason::ExportInProgress { task } => write!(f, "export {task} in progress"),
            KeepReason::ArchiveStarted { task } => {
                write!(f, "archive export {task} started (deleted once complete)")
            }
            KeepReason::ArchiveFailed { attempts } => {
                write!(f, "archive export failed {attempts} times")
            }
        }
    }
}

/// Why a snapshot may be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum DeleteReason {
    /// An eligible snapshot that no bucket, no `min_keep` and no protection keeps.
    OutsideEveryBucket,
}

impl fmt::Display for DeleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeleteReason::OutsideEveryBucket => f.write_str("outside every bucket"),
        }
    }
}
