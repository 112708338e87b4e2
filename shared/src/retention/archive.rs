//! The archive tier and RDS snapshot exports: which of the planner's deletions must wait
//! for an export, and which exports to start. Pure, like the planner.
//!
//! Rules, applied to the planner's decisions of one location:
//!
//! 1. A snapshot with an RDS export task still running (whoever started it) is never
//!    deleted: the export reads the snapshot.
//! 2. Where the plan has an archive tier (`retention.archive`: the DR region's RDS
//!    snapshot copies only), a snapshot the planner deletes whose `lifeboat:tier` tag is one of
//!    the archived tiers is deleted only once an export of it is complete. Without one,
//!    this run starts an export and keeps the snapshot; a failed export is tried again
//!    with a new task id, up to [`MAX_ARCHIVE_ATTEMPTS`] times, then the snapshot is kept
//!    until an operator looks.
//!
//! Export task ids are deterministic per plan, snapshot and attempt, so a duplicate run
//! that starts the same export meets `ExportTaskAlreadyExists` instead of a second export.

use super::{KeepReason, KeepReasons, RetentionDecision, SnapshotDecision};
use crate::ident::IdentifierRule;
use crate::plan::ArchiveSettings;
use crate::schedule::Tier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Export attempts per snapshot before retention stops trying and keeps it.
pub const MAX_ARCHIVE_ATTEMPTS: u32 = 3;

/// Where an RDS export task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    /// Starting, in progress, or being cancelled: it still reads the snapshot.
    Running,
    /// Complete: the data is in S3.
    Complete,
    /// Failed or cancelled.
    Failed,
}

impl ExportState {
    /// Classify the status RDS reports (`STARTING`, `IN_PROGRESS`, `COMPLETE`,
    /// `CANCELING`, `CANCELED`, `FAILED`; any case). An unknown status counts as
    /// running, the safe side: the snapshot is kept.
    pub fn from_aws(status: &str) -> Self {
        match status.to_ascii_uppercase().as_str() {
            "COMPLETE" => ExportState::Complete,
            "FAILED" | "CANCELED" | "CANCELLED" => ExportState::Failed,
            _ => ExportState::Running,
        }
    }
}

/// One RDS export task, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportTask {
    /// The task id.
    pub task_id: String,
    /// The ARN of the snapshot it exports.
    pub source_arn: String,
    /// Where it stands.
    pub state: ExportState,
    /// `s3://bucket/prefix` it writes to.
    pub destination: String,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// What the archive tier needs to know about a listed snapshot besides its decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archivable {
    /// Its `lifeboat:tier` tag, when it has a known one.
    pub tier: Option<Tier>,
    /// Whether it can be archived here: an RDS DB or cluster snapshot in the archive's
    /// region.
    pub exportable: bool,
    /// The plan resource it belongs to (names the S3 prefix).
    pub resource: Option<String>,
    /// Its identifier (names the S3 prefix).
    pub name: String,
}

/// An export to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveOrder {
    /// The snapshot's ARN.
    pub snapshot_arn: String,
    /// The deterministic export task id.
    pub task_id: String,
    /// The bucket.
    pub bucket: String,
    /// The key prefix the export writes under.
    pub prefix: String,
}

/// The export task id of `attempt` (1-based) for a snapshot: `lb-` and 16 hex digits of a
/// hash of the plan and the snapshot ARN, then `-a<attempt>`. RDS allows 60 letters,
/// digits and hyphens, starting with a letter. The ARN is hashed in RDS's lower case, so
/// one snapshot has one id however its ARN is spelled.
pub fn archive_task_id(plan: &str, snapshot_arn: &str, attempt: u32) -> String {
    let arn = IdentifierRule::Rds.canonical(snapshot_arn);
    let digest = Sha256::digest(format!("{plan}|{arn}").as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("lb-{hex}-a{attempt}")
}

/// Apply the export rules to one location's decisions (`snapshots` in the same order), and
/// return the exports to start. `archive` is the plan's archive tier when it applies at
/// this location.
pub fn apply_exports(
    plan: &str,
    decisions: &mut [SnapshotDecision],
    snapshots: &[Archivable],
    exports: &[ExportTask],
    archive: Option<&ArchiveSettings>,
) -> Vec<ArchiveOrder> {
    let mut orders = Vec::new();
    for (decision, snapshot) in decisions.iter_mut().zip(snapshots) {
        if !decision.decision.is_delete() {
            continue;
        }
        let tasks: Vec<&ExportTask> = exports
            .iter()
            .filter(|t| IdentifierRule::Rds.same(&t.source_arn, &decision.id))
            .collect();
        if let Some(running) = tasks.iter().find(|t| t.state == ExportState::Running) {
            keep(
                decision,
                KeepReason::ExportInProgress {
                    task: running.task_id.clone(),
                },
            );
            continue;
        }
        let Some(archive) = archive else { continue };
        let wanted = snapshot.exportable
            && snapshot
                .tier
                .is_some_and(|tier| archive.tiers.contains(&tier));
        if !wanted || tasks.iter().any(|t| t.state == ExportState::Complete) {
            continue;
        }
        let attempts = (1..=MAX_ARCHIVE_ATTEMPTS)
            .filter(|&n| {
                let id = archive_task_id(plan, &decision.id, n);
                tasks.iter().any(|t| t.task_id == id)
            })
            .max()
            .unwrap_or(0);
        if attempts >= MAX_ARCHIVE_ATTEMPTS {
            keep(decision, KeepReason::ArchiveFailed { attempts });
            continue;
        }
        let task_id = archive_task_id(plan, &decision.id, attempts + 1);
        orders.push(ArchiveOrder {
            snapshot_arn: decision.id.clone(),
            task_id: task_id.clone(),
            bucket: archive.bucket.clone(),
            prefix: format!(
                "{}{}/{}",
                archive.prefix,
                snapshot.resource.as_deref().unwrap_or("unattributed"),
                snapshot.name
            ),
        });
        keep(decision, KeepReason::ArchiveStarted { task: task_id });
    }
    orders
}

fn keep(decision: &mut SnapshotDecision, reason: KeepReason) {
    if let Some(reasons) = KeepReasons::new(vec![reason]) {
        decision.decision = RetentionDecision::Keep { reasons };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::DeleteReason;

    fn delete(id: &str) -> SnapshotDecision {
        SnapshotDecision {
            id: id.into(),
            resource: Some("orders-db".into()),
            decision: RetentionDecision::Delete {
                reason: DeleteReason::OutsideEveryBucket,
            },
        }
    }

    fn snapshot(tier: Option<Tier>) -> Archivable {
        Archivable {
            tier,
            exportable: true,
            resource: Some("orders-db".into()),
            name: "snap".into(),
        }
    }

    fn settings() -> ArchiveSettings {
        ArchiveSettings {
            bucket: "archive-bucket".into(),
            prefix: "archive/".into(),
            iam_role_arn: "arn:aws:iam::1:role/export".into(),
            kms_key_id: "alias/archive".into(),
            tiers: vec![Tier::Monthly, Tier::Yearly],
        }
    }

    fn task(id: &str, source: &str, state: ExportState) -> ExportTask {
        ExportTask {
            task_id: id.into(),
            source_arn: source.into(),
            state,
            destination: "s3://archive-bucket/archive/".into(),
            failure: None,
        }
    }

    #[test]
    fn a_running_export_keeps_any_snapshot_even_without_an_archive_tier() {
        let mut d = vec![delete("arn:a"), delete("arn:b")];
        let exports = [task("someone-elses", "arn:a", ExportState::Running)];
        let orders = apply_exports(
            "p",
            &mut d,
            &[snapshot(None), snapshot(None)],
            &exports,
            None,
        );
        assert!(orders.is_empty());
        assert_eq!(
            d[0].decision.to_string(),
            "kept: export someone-elses in progress"
        );
        assert!(d[1].decision.is_delete());
    }

    #[test]
    fn an_export_is_known_by_its_snapshot_arn_in_any_case() {
        let arn = "arn:aws:rds:us-west-2:1:snapshot:lifeboat-p-orders-db-20261101t0000z";
        let mut d = vec![delete(arn)];
        let exports = [task("t", &arn.to_ascii_uppercase(), ExportState::Running)];
        apply_exports("p", &mut d, &[snapshot(None)], &exports, None);
        assert!(!d[0].decision.is_delete(), "{}", d[0].decision);
        assert_eq!(
            archive_task_id(
                "p",
                &arn.replace("lifeboat-p-orders-db", "Lifeboat-P-Orders-DB"),
                1
            ),
            archive_task_id("p", arn, 1)
        );
    }

    #[test]
    fn an_archived_tier_is_exported_first_and_deleted_once_complete() {
        let s = settings();
        let mut d = vec![delete("arn:m"), delete("arn:d")];
        let snaps = [snapshot(Some(Tier::Monthly)), snapshot(Some(Tier::Daily))];
        let orders = apply_exports("p", &mut d, &snaps, &[], Some(&s));
        let id = archive_task_id("p", "arn:m", 1);
        assert_eq!(
            orders,
            [ArchiveOrder {
                snapshot_arn: "arn:m".into(),
                task_id: id.clone(),
                bucket: "archive-bucket".into(),
                prefix: "archive/orders-db/snap".into(),
            }]
        );
        assert_eq!(
            d[0].decision.keep_reasons(),
            [KeepReason::ArchiveStarted { task: id.clone() }]
        );
        assert!(
            d[1].decision.is_delete(),
            "a daily snapshot is not archived"
        );

        // Next run: the export is complete, so the snapshot goes, and nothing restarts.
        let mut d = vec![delete("arn:m")];
        let done = [task(&id, "arn:m", ExportState::Complete)];
        let orders = apply_exports("p", &mut d, &snaps[..1], &done, Some(&s));
        assert!(orders.is_empty());
        assert!(d[0].decision.is_delete());
    }

    #[test]
    fn a_failed_export_is_retried_with_a_new_id_then_given_up_and_the_snapshot_kept() {
        let s = settings();
        let snaps = [snapshot(Some(Tier::Yearly))];
        let mut failed = Vec::new();
        for attempt in 1..=MAX_ARCHIVE_ATTEMPTS {
            let mut d = vec![delete("arn:y")];
            let orders = apply_exports("p", &mut d, &snaps, &failed, Some(&s));
            assert_eq!(orders.len(), 1);
            assert_eq!(orders[0].task_id, archive_task_id("p", "arn:y", attempt));
            failed.push(task(&orders[0].task_id, "arn:y", ExportState::Failed));
        }
        let mut d = vec![delete("arn:y")];
        let orders = apply_exports("p", &mut d, &snaps, &failed, Some(&s));
        assert!(orders.is_empty());
        assert_eq!(
            d[0].decision.keep_reasons(),
            [KeepReason::ArchiveFailed {
                attempts: MAX_ARCHIVE_ATTEMPTS
            }]
        );
    }

    #[test]
    fn kept_snapshots_and_unexportable_ones_are_left_alone() {
        let s = settings();
        let mut d = vec![delete("arn:t")];
        let mut table_backup = snapshot(Some(Tier::Monthly));
        table_backup.exportable = false;
        assert!(apply_exports("p", &mut d, &[table_backup], &[], Some(&s)).is_empty());
        assert!(d[0].decision.is_delete());
    }

    #[test]
    fn task_ids_are_valid_for_rds_and_differ_by_plan_snapshot_and_attempt() {
        let id = archive_task_id("plan", "arn:aws:rds:us-east-1:1:snapshot:x", 1);
        assert!(id.len() <= 60 && id.starts_with("lb-"));
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_ne!(
            id,
            archive_task_id("plan2", "arn:aws:rds:us-east-1:1:snapshot:x", 1)
        );
        assert_ne!(
            id,
            archive_task_id("plan", "arn:aws:rds:us-east-1:1:snapshot:y", 1)
        );
        assert_ne!(
            id,
            archive_task_id("plan", "arn:aws:rds:us-east-1:1:snapshot:x", 2)
        );
        assert_eq!(ExportState::from_aws("in_progress"), ExportState::Running);
        assert_eq!(ExportState::from_aws("COMPLETE"), ExportState::Complete);
        assert_eq!(ExportState::from_aws("canceled"), ExportState::Failed);
    }
}
