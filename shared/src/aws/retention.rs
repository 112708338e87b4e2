//! The retention port on RDS and DynamoDB: the snapshot function's listings (fully
//! paginated), RDS export tasks, deletes, and archive exports to S3.

use super::{AwsSnapshots, RegionalClients};
use crate::backup::run::SnapshotPort;
use crate::backup::{BackupKind, BackupRecord};
use crate::error::AwsError;
use crate::plan::{ARCHIVE_TAG, ArchiveSettings};
use crate::retention::archive::{ArchiveOrder, ExportState, ExportTask};
use crate::retention::run::RetentionPort;
use async_trait::async_trait;
use aws_sdk_rds::types::Tag;

/// RDS's page size limit for DescribeExportTasks.
const EXPORT_PAGE_SIZE: i32 = 100;

impl AwsSnapshots {
    fn at(&self, location: &str, operation: &'static str) -> Result<&RegionalClients, AwsError> {
        self.clients_at(location).ok_or_else(|| {
            AwsError::bad_request(
                "rds",
                operation,
                location,
                "the plan has no such location (neither the primary region nor a copy destination)",
            )
        })
    }
}

#[async_trait]
impl RetentionPort for AwsSnapshots {
    async fn list(&self, location: &str) -> Result<Vec<BackupRecord>, AwsError> {
        if location == self.plan().regions.primary {
            return self.list_primary().await;
        }
        let destination = self
            .plan()
            .snapshots
            .copy_to
            .iter()
            .find(|d| d.key() == location)
            .ok_or_else(|| {
                AwsError::bad_request(
                    "rds",
                    "DescribeDBSnapshots",
                    location,
                    "the plan has no such copy destination",
                )
            })?;
        self.list_destination(destination).await
    }

    async fn list_exports(&self, location: &str) -> Result<Vec<ExportTask>, AwsError> {
        let rds = &self.at(location, "DescribeExportTasks")?.rds;
        let mut pages = rds
            .describe_export_tasks()
            .into_paginator()
            .page_size(EXPORT_PAGE_SIZE)
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::from_sdk("rds", "DescribeExportTasks", location, &e))?;
            for t in page.export_tasks() {
                out.push(ExportTask {
                    task_id: t.export_task_identifier().unwrap_or_default().to_string(),
                    source_arn: t.source_arn().unwrap_or_default().to_string(),
                    state: ExportState::from_aws(t.status().unwrap_or("unknown")),
                    destination: format!(
                        "s3://{}/{}",
                        t.s3_bucket().unwrap_or_default(),
                        t.s3_prefix().unwrap_or_default()
                    ),
                    failure: t.failure_cause().map(str::to_string),
                });
            }
        }
        Ok(out)
    }

    async fn delete(&self, record: &BackupRecord) -> Result<(), AwsError> {
        let clients = self.at(&record.location, "Delete")?;
        let id = &record.id;
        match record.kind {
            BackupKind::DbSnapshot => clients
                .rds
                .delete_db_snapshot()
                .db_snapshot_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds", "DeleteDBSnapshot", id, &e)),
            BackupKind::ClusterSnapshot => clients
                .rds
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds", "DeleteDBClusterSnapshot", id, &e)),
            BackupKind::TableBackup => {
                let arn = record.arn.as_deref().ok_or_else(|| {
                    AwsError::bad_request(
                        "dynamodb",
                        "DeleteBackup",
                        id,
                        "the backup was listed without an ARN, which DeleteBackup needs",
                    )
                })?;
                clients
                    .dynamodb
                    .delete_backup()
                    .backup_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| AwsError::from_sdk("dynamodb", "DeleteBackup", id, &e))
            }
            // Table exports are files in S3, kept by the snapshot function's book and
            // the bucket's lifecycle; retention never lists them.
            BackupKind::TableExport => Err(AwsError::bad_request(
                "s3",
                "DeleteObjects",
                id,
                "table exports are not deleted by retention",
            )),
        }
    }

    async fn start_export(
        &self,
        location: &str,
        order: &ArchiveOrder,
        archive: &ArchiveSettings,
    ) -> Result<(), AwsError> {
        let rds = &self.at(location, "StartExportTask")?.rds;
        let started = rds
            .start_export_task()
            .export_task_identifier(&order.task_id)
            .source_arn(&order.snapshot_arn)
            .s3_bucket_name(&order.bucket)
            .s3_prefix(&order.prefix)
            .iam_role_arn(&archive.iam_role_arn)
            .kms_key_id(&archive.kms_key_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds", "StartExportTask", &order.snapshot_arn, &e));
        match started {
            Ok(_) => {}
            // A duplicate run started it: tag (again) all the same.
            Err(e) if e.is_code("ExportTaskAlreadyExists") => {}
            Err(e) => return Err(e),
        }
        // The tag shows operators which export holds the snapshot's archive; the
        // deterministic task id, not the tag, is what stops a second export.
        rds.add_tags_to_resource()
            .resource_name(&order.snapshot_arn)
            .tags(
                Tag::builder()
                    .key(ARCHIVE_TAG)
                    .value(&order.task_id)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("rds", "AddTagsToResource", &order.snapshot_arn, &e))
    }
}
