//! The snapshot port on RDS and DynamoDB: listings (fully paginated), snapshot and backup
//! creation, cross-region and cross-account copies, table exports.

use super::{
    AwsClients, ClientSettings, RegionalClients, describe_cluster, describe_instance,
    describe_table,
};
use crate::backup::run::{ExportProgress, SnapshotPort};
use crate::backup::{
    BackupKind, BackupRecord, BackupStatus, CopyOrder, CreationOrder, SourceCondition, SourceState,
};
use crate::error::{AwsError, Classify};
use crate::plan::{
    CREATED_TAG, CopyDestination, PLAN_TAG, Plan, ProtectedResource, RESOURCE_TAG, ResourceKind,
};
use crate::schedule::parse_snapshot_name;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{BackupTypeFilter, ExportFormat, S3SseAlgorithm};
use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// RDS's page size limit for describe calls.
const PAGE_SIZE: i32 = 100;

/// Backups on AWS.
#[derive(Debug, Clone)]
pub struct AwsSnapshots {
    plan: Plan,
    primary: RegionalClients,
    destinations: BTreeMap<String, RegionalClients>,
}

impl AwsSnapshots {
    /// Clients for every copy destination: the account's own clients for its regions,
    /// and for another account, clients whose credentials come from assuming the
    /// destination's role.
    pub async fn new(plan: &Plan, clients: &AwsClients, settings: &ClientSettings) -> Self {
        let mut destinations = BTreeMap::new();
        for d in &plan.snapshots.copy_to {
            let regional = match (&d.account_id, &d.role_arn) {
                (Some(_), Some(role)) => {
                    let config = settings
                        .sdk_config_assuming(&d.region, role, "lifeboat-snapshot")
                        .await;
                    RegionalClients::from_config(settings, &d.region, config)
                }
                _ => match clients.region(&d.region) {
                    Some(c) => c.clone(),
                    None => RegionalClients::build(settings, &d.region).await,
                },
            };
            destinations.insert(d.key(), regional);
        }
        AwsSnapshots {
            plan: plan.clone(),
            primary: clients.primary.clone(),
            destinations,
        }
    }

    /// The clients of a location: the primary region's name or a copy destination's key.
    pub(super) fn clients_at(&self, location: &str) -> Option<&RegionalClients> {
        if location == self.plan.regions.primary {
            Some(&self.primary)
        } else {
            self.destinations.get(location)
        }
    }

    /// The plan the adapter was built for.
    pub(super) fn plan(&self) -> &Plan {
        &self.plan
    }

    fn destination(&self, d: &CopyDestination) -> Result<&RegionalClients, AwsError> {
        self.destinations.get(&d.key()).ok_or_else(|| {
            AwsError::bad_request(
                "rds",
                "CopyDBSnapshot",
                d.key(),
                "no clients for this destination (internal error)",
            )
        })
    }
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

pub(crate) fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

pub(crate) fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// When the data was taken: Lifeboat's own tag (kept on copies), else RDS's original
/// creation time (unchanged by copies), else the snapshot's creation time.
fn data_time(
    tags: &BTreeMap<String, String>,
    original: Option<&aws_smithy_types::DateTime>,
    created: Option<&aws_smithy_types::DateTime>,
) -> Option<DateTime<Utc>> {
    tags.get(CREATED_TAG)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| original.and_then(to_chrono))
        .or_else(|| created.and_then(to_chrono))
}

pub(crate) async fn list_db_snapshots(
    rds: &aws_sdk_rds::Client,
    location: &str,
) -> Result<Vec<BackupRecord>, AwsError> {
    let mut pages = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .page_size(PAGE_SIZE)
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| AwsError::from_sdk("rds", "DescribeDBSnapshots", location, &e))?;
        for s in page.db_snapshots() {
            let tags = tag_map(s.tag_list());
            out.push(BackupRecord {
                id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
                arn: s.db_snapshot_arn().map(str::to_string),
                kind: BackupKind::DbSnapshot,
                location: location.to_string(),
                source: s.db_instance_identifier().unwrap_or_default().to_string(),
                created_at: data_time(
                    &tags,
                    s.original_snapshot_create_time(),
                    s.snapshot_create_time(),
                ),
                status: BackupStatus::from_aws(s.status().unwrap_or("unknown")),
                automated: s.snapshot_type() == Some("automated"),
                copy_of: s.source_db_snapshot_identifier().map(str::to_string),
                tags,
            });
        }
    }
    Ok(out)
}

pub(crate) async fn list_cluster_snapshots(
    rds: &aws_sdk_rds::Client,
    location: &str,
) -> Result<Vec<BackupRecord>, AwsError> {
    let mut pages = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .page_size(PAGE_SIZE)
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| AwsError::from_sdk("rds", "DescribeDBClusterSnapshots", location, &e))?;
        for s in page.db_cluster_snapshots() {
            let tags = tag_map(s.tag_list());
            out.push(BackupRecord {
                id: s
                    .db_cluster_snapshot_identifier()
                    .unwrap_or_default()
                    .to_string(),
                arn: s.db_cluster_snapshot_arn().map(str::to_string),
                kind: BackupKind::ClusterSnapshot,
                location: location.to_string(),
                source: s.db_cluster_identifier().unwrap_or_default().to_string(),
                created_at: data_time(&tags, None, s.snapshot_create_time()),
                status: BackupStatus::from_aws(s.status().unwrap_or("unknown")),
                automated: s.snapshot_type() == Some("automated"),
                copy_of: s.source_db_cluster_snapshot_arn().map(str::to_string),
                tags,
            });
        }
    }
    Ok(out)
}

/// DynamoDB backups cannot carry tags, so Lifeboat's are recognised by their name
/// (`lifeboat-<plan>-<resource>-<window>`) and given the tags they would carry.
async fn list_table_backups(
    plan: &Plan,
    dynamodb: &aws_sdk_dynamodb::Client,
    location: &str,
    r: &ProtectedResource,
) -> Result<Vec<BackupRecord>, AwsError> {
    let table = r.aws_identifier();
    let mut out = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = dynamodb
            .list_backups()
            .table_name(table)
            .backup_type(BackupTypeFilter::User)
            .set_exclusive_start_backup_arn(start.take())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb", "ListBackups", table, &e))?;
        for b in page.backup_summaries() {
            let name = b.backup_name().unwrap_or_default();
            let mut tags = BTreeMap::new();
            if parse_snapshot_name(&plan.name, &r.id, name).is_some() {
                tags.insert(PLAN_TAG.to_string(), plan.name.clone());
                tags.insert(RESOURCE_TAG.to_string(), r.id.clone());
            }
            out.push(BackupRecord {
                id: name.to_string(),
                arn: b.backup_arn().map(str::to_string),
                kind: BackupKind::TableBackup,
                location: location.to_string(),
                source: table.to_string(),
                created_at: b.backup_creation_date_time().and_then(to_chrono),
                status: BackupStatus::from_aws(
                    b.backup_status().map(|s| s.as_str()).unwrap_or("unknown"),
                ),
                automated: false,
                copy_of: None,
                tags,
            });
        }
        match page.last_evaluated_backup_arn {
            Some(next) if !next.is_empty() => start = Some(next),
            _ => break,
        }
    }
    Ok(out)
}

#[async_trait]
impl SnapshotPort for AwsSnapshots {
    async fn source_state(&self, r: &ProtectedResource) -> SourceState {
        let region = &self.primary.region;
        let found = match r.kind {
            ResourceKind::RdsInstance => {
                describe_instance(&self.primary.rds, region, r.aws_identifier()).await
            }
            ResourceKind::AuroraCluster => {
                describe_cluster(&self.primary.rds, region, r.aws_identifier()).await
            }
            ResourceKind::DynamodbTable => {
                describe_table(&self.primary.dynamodb, region, r.aws_identifier()).await
            }
        };
        let condition = match found {
            Ok(None) => SourceCondition::Missing,
            Ok(Some(f)) if f.status.eq_ignore_ascii_case("available") || f.status == "ACTIVE" => {
                SourceCondition::Ready
            }
            Ok(Some(f)) => SourceCondition::NotReady { status: f.status },
            Err(e) => SourceCondition::Unreadable {
                reason: e.to_string(),
                retry: e.retry(),
            },
        };
        SourceState {
            resource: r.id.clone(),
            condition,
        }
    }

    async fn list_primary(&self) -> Result<Vec<BackupRecord>, AwsError> {
        let region = &self.primary.region;
        let mut out = list_db_snapshots(&self.primary.rds, region).await?;
        out.extend(list_cluster_snapshots(&self.primary.rds, region).await?);
        for r in self
            .plan
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::DynamodbTable)
        {
            match list_table_backups(&self.plan, &self.primary.dynamodb, region, r).await {
                Ok(backups) => out.extend(backups),
                // A table that does not exist has no backups; the run reports it missing.
                Err(e)
                    if e.is_code("TableNotFoundException")
                        || e.is_code("ResourceNotFoundException") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn list_destination(&self, d: &CopyDestination) -> Result<Vec<BackupRecord>, AwsError> {
        let clients = self.destination(d)?;
        let key = d.key();
        let mut out = list_db_snapshots(&clients.rds, &key).await?;
        out.extend(list_cluster_snapshots(&clients.rds, &key).await?);
        Ok(out)
    }

    async fn create(
        &self,
        order: &CreationOrder,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let rds = &self.primary.rds;
        match order.kind {
            BackupKind::DbSnapshot => rds
                .create_db_snapshot()
                .db_snapshot_identifier(&order.name)
                .db_instance_identifier(&order.source)
                .set_tags(Some(rds_tags(tags)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds", "CreateDBSnapshot", &order.name, &e)),
            BackupKind::ClusterSnapshot => rds
                .create_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(&order.name)
                .db_cluster_identifier(&order.source)
                .set_tags(Some(rds_tags(tags)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds", "CreateDBClusterSnapshot", &order.name, &e)),
            BackupKind::TableBackup => self
                .primary
                .dynamodb
                .create_backup()
                .table_name(&order.source)
                .backup_name(&order.name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("dynamodb", "CreateBackup", &order.name, &e)),
            BackupKind::TableExport => Err(AwsError::bad_request(
                "dynamodb",
                "CreateBackup",
                &order.name,
                "exports are started with start_export",
            )),
        }
    }

    async fn copy(&self, order: &CopyOrder, d: &CopyDestination) -> Result<(), AwsError> {
        let s = &order.snapshot;
        let source_arn = s.arn.clone().ok_or_else(|| {
            AwsError::bad_request(
                "rds",
                "CopyDBSnapshot",
                &s.id,
                "the snapshot has no ARN to copy from",
            )
        })?;
        // Another account can copy only what is shared with it.
        if let Some(account) = &d.account_id {
            let shared = match s.kind {
                BackupKind::ClusterSnapshot => self
                    .primary
                    .rds
                    .modify_db_cluster_snapshot_attribute()
                    .db_cluster_snapshot_identifier(&s.id)
                    .attribute_name("restore")
                    .values_to_add(account)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        AwsError::from_sdk("rds", "ModifyDBClusterSnapshotAttribute", &s.id, &e)
                    }),
                _ => self
                    .primary
                    .rds
                    .modify_db_snapshot_attribute()
                    .db_snapshot_identifier(&s.id)
                    .attribute_name("restore")
                    .values_to_add(account)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| AwsError::from_sdk("rds", "ModifyDBSnapshotAttribute", &s.id, &e)),
            };
            shared?;
        }
        let rds = &self.destination(d)?.rds;
        let tags = rds_tags(&order.tags());
        // Outside GovCloud and China, RDS needs no presigned URL for a cross-region copy
        // (the plan refuses those partitions); the destination's own key re-encrypts it.
        match s.kind {
            BackupKind::ClusterSnapshot => rds
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(source_arn)
                .target_db_cluster_snapshot_identifier(&s.id)
                .kms_key_id(&d.kms_key_id)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds", "CopyDBClusterSnapshot", &s.id, &e)),
            _ => rds
                .copy_db_snapshot()
                .source_db_snapshot_identifier(source_arn)
                .target_db_snapshot_identifier(&s.id)
                .kms_key_id(&d.kms_key_id)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds", "CopyDBSnapshot", &s.id, &e)),
        }
    }

    async fn start_export(
        &self,
        r: &ProtectedResource,
        bucket: &str,
        prefix: &str,
    ) -> Result<String, AwsError> {
        let dynamodb = &self.primary.dynamodb;
        let table = r.aws_identifier();
        let arn = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb", "DescribeTable", table, &e))?
            .table
            .and_then(|t| t.table_arn)
            .ok_or_else(|| {
                AwsError::bad_request("dynamodb", "DescribeTable", table, "the table has no ARN")
            })?;
        // The same prefix always yields the same token, so a retried start within AWS's
        // eight-hour token window returns the export already started.
        let token = crate::state::payload_hash(&serde_json::Value::String(format!(
            "{arn}|{bucket}|{prefix}"
        )));
        let out = dynamodb
            .export_table_to_point_in_time()
            .table_arn(&arn)
            .s3_bucket(bucket)
            .s3_prefix(prefix)
            .s3_sse_algorithm(S3SseAlgorithm::Aes256)
            .export_format(ExportFormat::DynamodbJson)
            .client_token(&token[..36])
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb", "ExportTableToPointInTime", table, &e))?;
        out.export_description
            .and_then(|d| d.export_arn)
            .ok_or_else(|| {
                AwsError::bad_request(
                    "dynamodb",
                    "ExportTableToPointInTime",
                    table,
                    "no export ARN returned",
                )
            })
    }

    async fn export_progress(&self, export_arn: &str) -> Result<ExportProgress, AwsError> {
        let out = self
            .primary
            .dynamodb
            .describe_export()
            .export_arn(export_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb", "DescribeExport", export_arn, &e))?;
        let d = out.export_description.ok_or_else(|| {
            AwsError::bad_request(
                "dynamodb",
                "DescribeExport",
                export_arn,
                "no export description returned",
            )
        })?;
        Ok(ExportProgress {
            status: BackupStatus::from_aws(
                d.export_status().map(|s| s.as_str()).unwrap_or("unknown"),
            ),
            // ExportTime is the data's point in time; AWS defaults it to the request time.
            export_time: d.export_time().or(d.start_time()).and_then(to_chrono),
            failure: d.failure_message().map(str::to_string),
        })
    }
}
