//! The recovery port on AWS: point-in-time restores in the primary region (RDS instance,
//! Aurora cluster plus an instance in it, DynamoDB table) with the damaged resource's own
//! network and encryption and never public; the restorable windows; the checks through
//! the validation probe; fencing the damaged writer; the database record; and deleting a
//! discarded recovery (only a resource tagged as that recovery).

use super::dr::DrAws;
use super::posture::fetch_instance;
use super::snapshots::{rds_tags, tag_map, to_chrono};
use super::validation::{
    AwsValidation, CheckRun, delete_cluster_without_snapshot, delete_instance_without_snapshot,
};
use super::{AwsClients, ClientSettings};
use crate::error::{AwsError, AwsFailure};
use crate::plan::{Plan, ProtectedResource, ResourceKind, SqlAssertion};
use crate::recovery::run::{Performed, RecoveryPort};
use crate::recovery::{
    CheckReport, Presence, RECOVERY_TAG, RecoveredFacts, Recovery, RecoveryAction, RestorableWindow,
};
use crate::validation::{CheckProgress, Endpoint};
use async_trait::async_trait;
use aws_sdk_rds::types::DbInstance;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// Recoveries on AWS.
#[derive(Debug)]
pub struct AwsRecovery {
    aws: DrAws,
    validation: AwsValidation,
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

/// An RDS status as a presence: what answers queries, what is on its way, what is lost.
fn rds_presence(status: Option<&str>) -> Presence {
    match status {
        None => Presence::Missing,
        Some(
            "available"
            | "backing-up"
            | "storage-optimization"
            | "configuring-enhanced-monitoring"
            | "configuring-log-exports"
            | "configuring-iam-database-auth",
        ) => Presence::Available,
        Some("deleting") => Presence::Deleting,
        Some(
            s @ ("failed"
            | "restore-error"
            | "incompatible-restore"
            | "incompatible-parameters"
            | "incompatible-network"
            | "inaccessible-encryption-credentials"
            | "storage-full"),
        ) => Presence::Failed(format!("RDS reports the status {s}")),
        Some(_) => Presence::Creating,
    }
}

fn dynamodb_presence(status: Option<&aws_sdk_dynamodb::types::TableStatus>) -> Presence {
    use aws_sdk_dynamodb::types::TableStatus;
    match status {
        None => Presence::Missing,
        Some(TableStatus::Active) => Presence::Available,
        Some(TableStatus::Deleting) => Presence::Deleting,
        Some(TableStatus::Creating | TableStatus::Updating) => Presence::Creating,
        Some(other) => Presence::Failed(format!("DynamoDB reports the status {}", other.as_str())),
    }
}

fn endpoint_of(db: &DbInstance) -> Option<Endpoint> {
    let e = db.endpoint()?;
    Some(Endpoint {
        host: e.address()?.to_string(),
        port: u16::try_from(e.port()?).ok()?,
    })
}

fn report(results: Vec<crate::validation::checks::CheckResult>) -> CheckReport {
    let mut out = CheckReport::default();
    for r in results {
        let line = format!("{}: {}", r.name, r.detail);
        if r.passed {
            out.passed.push(line);
        } else {
            out.failed.push(line);
        }
    }
    out
}

impl AwsRecovery {
    /// The adapter for `plan`: RDS, DynamoDB and Route 53 of the primary region, and the
    /// validation probe (with its local-only database mapping, read through `lookup`).
    pub async fn new(
        plan: &Plan,
        clients: &AwsClients,
        settings: &ClientSettings,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, super::validation::LocalDatabaseError> {
        Ok(AwsRecovery {
            aws: DrAws::new(plan, clients, settings).await,
            validation: AwsValidation::new(plan, clients, settings, lookup)?,
        })
    }

    fn rds(&self) -> &aws_sdk_rds::Client {
        &self.aws.clients.primary.rds
    }

    fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.aws.clients.primary.dynamodb
    }

    async fn cluster(&self, id: &str) -> Result<Option<aws_sdk_rds::types::DbCluster>, AwsError> {
        match self
            .rds()
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_clusters.and_then(|v| v.into_iter().next())),
            Err(e) => {
                let err = AwsError::from_sdk("rds", "DescribeDBClusters", id, &e);
                if err.is_code("DBClusterNotFoundFault") {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn table(
        &self,
        name: &str,
    ) -> Result<Option<aws_sdk_dynamodb::types::TableDescription>, AwsError> {
        match self
            .dynamodb()
            .describe_table()
            .table_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.table),
            Err(e) => {
                let err = AwsError::from_sdk("dynamodb", "DescribeTable", name, &e);
                if err.is_code("ResourceNotFoundException") {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// The recovered database's writer endpoint (instance, or Aurora cluster).
    async fn recovered_endpoint(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Endpoint>, AwsError> {
        match kind {
            ResourceKind::RdsInstance => Ok(fetch_instance(self.rds(), id)
                .await?
                .as_ref()
                .and_then(endpoint_of)),
            ResourceKind::AuroraCluster => Ok(self.cluster(id).await?.and_then(|c| {
                Some(Endpoint {
                    host: c.endpoint()?.to_string(),
                    port: u16::try_from(c.port()?).ok()?,
                })
            })),
            ResourceKind::DynamodbTable => Ok(None),
        }
    }

    async fn restore(
        &self,
        kind: ResourceKind,
        source: &str,
        target: &str,
        time: Option<DateTime<Utc>>,
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        let tag_map: BTreeMap<String, String> = tags.iter().cloned().collect();
        match kind {
            ResourceKind::RdsInstance => {
                let src = fetch_instance(self.rds(), source).await?.ok_or_else(|| {
                    AwsError::bad_request(
                        "rds",
                        "RestoreDBInstanceToPointInTime",
                        source,
                        "the damaged instance is gone, and with it its point-in-time \
                         backups: restore from a snapshot instead",
                    )
                })?;
                // The recovered database takes the damaged one's place: the same network,
                // class and storage, never public. Encryption follows the source's key.
                let mut req = self
                    .rds()
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_identifier(source)
                    .target_db_instance_identifier(target)
                    .publicly_accessible(false)
                    .copy_tags_to_snapshot(true)
                    .deletion_protection(false)
                    .multi_az(src.multi_az().unwrap_or(false))
                    .set_db_instance_class(src.db_instance_class().map(str::to_string))
                    .set_storage_type(src.storage_type().map(str::to_string))
                    .set_db_subnet_group_name(
                        src.db_subnet_group()
                            .and_then(|g| g.db_subnet_group_name())
                            .map(str::to_string),
                    )
                    .set_vpc_security_group_ids(Some(
                        src.vpc_security_groups()
                            .iter()
                            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
                            .collect(),
                    ))
                    .set_tags(Some(rds_tags(&tag_map)));
                req = match time {
                    Some(t) => req.restore_time(smithy_time(t)),
                    None => req.use_latest_restorable_time(true),
                };
                match req.send().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let err =
                            AwsError::from_sdk("rds", "RestoreDBInstanceToPointInTime", target, &e);
                        // Issued before a crash: the restore is under way already.
                        if err.is_code("DBInstanceAlreadyExists") {
                            Ok(())
                        } else {
                            Err(err)
                        }
                    }
                }
            }
            ResourceKind::AuroraCluster => {
                let src = self.cluster(source).await?.ok_or_else(|| {
                    AwsError::bad_request(
                        "rds",
                        "RestoreDBClusterToPointInTime",
                        source,
                        "the damaged cluster is gone, and with it its point-in-time \
                         backups: restore from a snapshot instead",
                    )
                })?;
                let mut req = self
                    .rds()
                    .restore_db_cluster_to_point_in_time()
                    .source_db_cluster_identifier(source)
                    .db_cluster_identifier(target)
                    .restore_type("full-copy")
                    .deletion_protection(false)
                    .copy_tags_to_snapshot(true)
                    .set_db_subnet_group_name(src.db_subnet_group().map(str::to_string))
                    .set_vpc_security_group_ids(Some(
                        src.vpc_security_groups()
                            .iter()
                            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
                            .collect(),
                    ))
                    .set_kms_key_id(src.kms_key_id().map(str::to_string))
                    .set_tags(Some(rds_tags(&tag_map)));
                req = match time {
                    Some(t) => req.restore_to_time(smithy_time(t)),
                    None => req.use_latest_restorable_time(true),
                };
                match req.send().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let err =
                            AwsError::from_sdk("rds", "RestoreDBClusterToPointInTime", target, &e);
                        if err.is_code("DBClusterAlreadyExistsFault") {
                            Ok(())
                        } else {
                            Err(err)
                        }
                    }
                }
            }
            ResourceKind::DynamodbTable => {
                use aws_sdk_dynamodb::types::{SseSpecification, SseType, Tag};
                let src = self.table(source).await?;
                let kms = src
                    .as_ref()
                    .and_then(|t| t.sse_description())
                    .and_then(|s| s.kms_master_key_arn())
                    .map(str::to_string);
                // Encrypted at rest with a KMS key: the source's when it has one, else
                // the AWS managed key (never the default owned key silently).
                let sse = SseSpecification::builder()
                    .enabled(true)
                    .sse_type(SseType::Kms)
                    .set_kms_master_key_id(kms)
                    .build();
                let mut req = self
                    .dynamodb()
                    .restore_table_to_point_in_time()
                    .source_table_name(source)
                    .target_table_name(target)
                    .sse_specification_override(sse);
                req = match time {
                    Some(t) => req.restore_date_time(smithy_time(t)),
                    None => req.use_latest_restorable_time(true),
                };
                let arn = match req.send().await {
                    Ok(out) => out
                        .table_description
                        .and_then(|t| t.table_arn)
                        .unwrap_or_default(),
                    Err(e) => {
                        let err =
                            AwsError::from_sdk("dynamodb", "RestoreTableToPointInTime", target, &e);
                        if err.is_code("TableAlreadyExistsException") {
                            self.table(target)
                                .await?
                                .and_then(|t| t.table_arn)
                                .unwrap_or_default()
                        } else {
                            return Err(err);
                        }
                    }
                };
                // The restore takes no tags: they follow at once.
                let tags: Vec<Tag> = tags
                    .iter()
                    .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
                    .collect();
                self.dynamodb()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("dynamodb", "TagResource", target, &e))?;
                Ok(())
            }
        }
    }

    async fn create_instance(
        &self,
        cluster: &str,
        instance: &str,
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        let restored = self.cluster(cluster).await?.ok_or_else(|| {
            AwsError::bad_request(
                "rds",
                "CreateDBInstance",
                instance,
                format!("the restored cluster {cluster} is not there"),
            )
        })?;
        // The writer's class of the cluster it was restored from, when it can be read.
        let source = tag_map(restored.tag_list())
            .get(crate::recovery::RESTORED_FROM_TAG)
            .cloned();
        let mut class = None;
        if let Some(source) = source
            && let Some(src) = self.cluster(&source).await?
            && let Some(writer) = src
                .db_cluster_members()
                .iter()
                .find(|m| m.is_cluster_writer() == Some(true))
                .and_then(|m| m.db_instance_identifier())
        {
            class = fetch_instance(self.rds(), writer)
                .await?
                .and_then(|db| db.db_instance_class().map(str::to_string));
        }
        let tag_map: BTreeMap<String, String> = tags.iter().cloned().collect();
        match self
            .rds()
            .create_db_instance()
            .db_instance_identifier(instance)
            .db_cluster_identifier(cluster)
            .set_engine(restored.engine().map(str::to_string))
            .db_instance_class(class.unwrap_or_else(|| "db.r6g.large".into()))
            .publicly_accessible(false)
            .set_tags(Some(rds_tags(&tag_map)))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::from_sdk("rds", "CreateDBInstance", instance, &e);
                if err.is_code("DBInstanceAlreadyExists") {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn checks(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        target: &str,
        assertions: &[SqlAssertion],
        from: CheckProgress,
        window: std::time::Duration,
    ) -> Result<Performed, AwsError> {
        if resource.kind == ResourceKind::DynamodbTable {
            let mut out = CheckReport::default();
            match self.table(target).await? {
                Some(t) if dynamodb_presence(t.table_status()) == Presence::Available => {
                    out.passed.push(format!(
                        "table {target} is ACTIVE ({} items as DynamoDB last counted)",
                        t.item_count().unwrap_or(0)
                    ));
                }
                other => out.failed.push(format!(
                    "table {target} is not ACTIVE ({})",
                    other
                        .and_then(|t| t.table_status().map(|s| s.as_str().to_string()))
                        .unwrap_or_else(|| "missing".into())
                )),
            }
            if !assertions.is_empty() {
                out.failed.push(
                    "SQL assertions do not apply to a DynamoDB table: recover it without them"
                        .into(),
                );
            }
            return Ok(Performed::Checks(out));
        }
        let Some(engine) = resource.engine else {
            return Ok(Performed::Checks(CheckReport {
                passed: vec![],
                failed: vec![format!(
                    "{} has no `engine` in the plan: the checks need it to speak SQL",
                    resource.id
                )],
            }));
        };
        let endpoint = self.recovered_endpoint(resource.kind, target).await?;
        let progress = self
            .validation
            .probe_database(
                plan,
                CheckRun {
                    resource,
                    engine,
                    endpoint: endpoint.as_ref(),
                    local_key: target,
                    extra: assertions,
                },
                from,
                window,
            )
            .await;
        Ok(if progress.finished {
            Performed::Checks(report(progress.results()))
        } else {
            Performed::ChecksSoFar(progress)
        })
    }

    /// Stop the damaged writer. AWS refuses to stop an instance that has read replicas
    /// (or is a global database member): the error says so, and the cutover waits.
    async fn fence(&self, kind: ResourceKind, writer: &str) -> Result<(), AwsError> {
        let result = match kind {
            ResourceKind::RdsInstance => self
                .rds()
                .stop_db_instance()
                .db_instance_identifier(writer)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds", "StopDBInstance", writer, &e)),
            ResourceKind::AuroraCluster => self
                .rds()
                .stop_db_cluster()
                .db_cluster_identifier(writer)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds", "StopDBCluster", writer, &e)),
            ResourceKind::DynamodbTable => Err(AwsError::bad_request(
                "dynamodb",
                "Fence",
                writer,
                "a DynamoDB table has no writer to fence; point the applications at the \
                 recovered table yourself",
            )),
        };
        match result {
            Ok(()) => Ok(()),
            // Already stopping or stopped: fenced, or about to be.
            Err(e)
                if e.is_code("InvalidDBInstanceState")
                    && fetch_instance(self.rds(), writer).await?.is_some_and(|db| {
                        !db.read_replica_db_instance_identifiers().is_empty()
                    }) =>
            {
                let replicas = fetch_instance(self.rds(), writer)
                    .await?
                    .map(|db| db.read_replica_db_instance_identifiers().join(", "))
                    .unwrap_or_default();
                Err(AwsError {
                    message: format!(
                        "{}; AWS cannot stop an instance with read replicas ({replicas}): they \
                         carry the damage too — delete or promote them yourself, then the \
                         next tick fences {writer}",
                        e.message
                    ),
                    ..e
                })
            }
            Err(e)
                if e.is_code("InvalidDBInstanceState")
                    || e.is_code("InvalidDBClusterStateFault") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn writer_fenced(&self, kind: ResourceKind, writer: &str) -> Result<bool, AwsError> {
        Ok(match kind {
            ResourceKind::RdsInstance => fetch_instance(self.rds(), writer)
                .await?
                .is_none_or(|db| db.db_instance_status() == Some("stopped")),
            ResourceKind::AuroraCluster => self
                .cluster(writer)
                .await?
                .is_none_or(|c| c.status() == Some("stopped")),
            ResourceKind::DynamodbTable => false,
        })
    }

    /// Delete what the recovery created, only when AWS shows it tagged as that recovery.
    async fn delete(
        &self,
        kind: ResourceKind,
        target: &str,
        instance: Option<&str>,
        recovery: &str,
    ) -> Result<(), AwsError> {
        let refuse = |op: &'static str, what: &str| {
            Err(AwsError::bad_request(
                "rds",
                op,
                what,
                format!(
                    "{what} is not tagged {RECOVERY_TAG}={recovery}: Lifeboat deletes only what \
                     it restored; delete it yourself if it must go"
                ),
            ))
        };
        let ours = |tags: &[aws_sdk_rds::types::Tag]| {
            tag_map(tags).get(RECOVERY_TAG).map(String::as_str) == Some(recovery)
        };
        match kind {
            ResourceKind::RdsInstance => {
                let Some(db) = fetch_instance(self.rds(), target).await? else {
                    return Ok(());
                };
                if !ours(db.tag_list()) {
                    return refuse("DeleteDBInstance", target);
                }
                delete_instance_without_snapshot(self.rds(), target).await
            }
            ResourceKind::AuroraCluster => {
                if let Some(instance) = instance
                    && let Some(db) = fetch_instance(self.rds(), instance).await?
                {
                    if !ours(db.tag_list()) {
                        return refuse("DeleteDBInstance", instance);
                    }
                    delete_instance_without_snapshot(self.rds(), instance).await?;
                }
                let Some(c) = self.cluster(target).await? else {
                    return Ok(());
                };
                if !ours(c.tag_list()) {
                    return refuse("DeleteDBCluster", target);
                }
                // The instance may still be being deleted: the next tick retries.
                delete_cluster_without_snapshot(self.rds(), target).await
            }
            ResourceKind::DynamodbTable => {
                let Some(t) = self.table(target).await? else {
                    return Ok(());
                };
                let arn = t.table_arn().unwrap_or_default();
                let tags = self
                    .dynamodb()
                    .list_tags_of_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::from_sdk("dynamodb", "ListTagsOfResource", target, &e)
                    })?;
                let tagged = tags
                    .tags()
                    .iter()
                    .any(|t| t.key() == RECOVERY_TAG && t.value() == recovery);
                if !tagged {
                    return Err(AwsError::bad_request(
                        "dynamodb",
                        "DeleteTable",
                        target,
                        format!(
                            "{target} is not tagged {RECOVERY_TAG}={recovery}: Lifeboat deletes \
                             only what it restored"
                        ),
                    ));
                }
                match self
                    .dynamodb()
                    .delete_table()
                    .table_name(target)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let err = AwsError::from_sdk("dynamodb", "DeleteTable", target, &e);
                        if err.is_code("ResourceNotFoundException") {
                            Ok(())
                        } else {
                            Err(err)
                        }
                    }
                }
            }
        }
    }
}

/// The plan resource a recovery is of (its name is `<resource id>-pitr-<minute>`).
fn resource_of<'p>(plan: &'p Plan, recovery: &str) -> Option<&'p ProtectedResource> {
    plan.resources
        .iter()
        .filter(|r| recovery.starts_with(&format!("{}-pitr-", r.id)))
        .max_by_key(|r| r.id.len())
}

fn kind_of(plan: &Plan, recovery: &str) -> ResourceKind {
    resource_of(plan, recovery).map_or(ResourceKind::RdsInstance, |r| r.kind)
}

#[async_trait]
impl RecoveryPort for AwsRecovery {
    async fn window(
        &self,
        _plan: &Plan,
        resource: &ProtectedResource,
    ) -> Result<Option<RestorableWindow>, AwsError> {
        let id = resource.aws_identifier();
        match resource.kind {
            ResourceKind::RdsInstance => {
                let Some(db) = fetch_instance(self.rds(), id).await? else {
                    return Ok(None);
                };
                if db.backup_retention_period().unwrap_or(0) == 0 {
                    return Ok(None);
                }
                let Some(latest) = db.latest_restorable_time().and_then(to_chrono) else {
                    return Ok(None);
                };
                let backups = self
                    .rds()
                    .describe_db_instance_automated_backups()
                    .db_instance_identifier(id)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::from_sdk("rds", "DescribeDBInstanceAutomatedBackups", id, &e)
                    })?;
                let earliest = backups
                    .db_instance_automated_backups()
                    .iter()
                    .filter_map(|b| b.restore_window()?.earliest_time().and_then(to_chrono))
                    .min()
                    // Without a reported window (the emulator reports none), the bound
                    // AWS keeps: the retention period back, and not before the instance.
                    .unwrap_or_else(|| {
                        let retained = latest
                            - Duration::days(i64::from(db.backup_retention_period().unwrap_or(0)));
                        db.instance_create_time()
                            .and_then(to_chrono)
                            .map_or(retained, |created| created.max(retained))
                    });
                Ok(Some(RestorableWindow { earliest, latest }))
            }
            ResourceKind::AuroraCluster => Ok(self.cluster(id).await?.and_then(|c| {
                Some(RestorableWindow {
                    earliest: c.earliest_restorable_time().and_then(to_chrono)?,
                    latest: c.latest_restorable_time().and_then(to_chrono)?,
                })
            })),
            ResourceKind::DynamodbTable => {
                use aws_sdk_dynamodb::types::PointInTimeRecoveryStatus;
                let out = self
                    .dynamodb()
                    .describe_continuous_backups()
                    .table_name(id)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::from_sdk("dynamodb", "DescribeContinuousBackups", id, &e)
                    })?;
                let Some(pitr) = out
                    .continuous_backups_description()
                    .and_then(|d| d.point_in_time_recovery_description())
                    .filter(|p| {
                        p.point_in_time_recovery_status()
                            == Some(&PointInTimeRecoveryStatus::Enabled)
                    })
                else {
                    return Ok(None);
                };
                Ok((|| {
                    Some(RestorableWindow {
                        earliest: pitr.earliest_restorable_date_time().and_then(to_chrono)?,
                        latest: pitr.latest_restorable_date_time().and_then(to_chrono)?,
                    })
                })())
            }
        }
    }

    async fn observe(&self, plan: &Plan, r: &Recovery) -> Result<RecoveredFacts, AwsError> {
        let mut facts = RecoveredFacts::default();
        match r.kind {
            ResourceKind::RdsInstance => {
                facts.resource = rds_presence(
                    fetch_instance(self.rds(), &r.id)
                        .await?
                        .as_ref()
                        .and_then(|db| db.db_instance_status()),
                );
            }
            ResourceKind::AuroraCluster => {
                facts.resource =
                    rds_presence(self.cluster(&r.id).await?.as_ref().and_then(|c| c.status()));
                if let Some(instance) = &r.instance {
                    facts.instance = rds_presence(
                        fetch_instance(self.rds(), instance)
                            .await?
                            .as_ref()
                            .and_then(|db| db.db_instance_status()),
                    );
                }
            }
            ResourceKind::DynamodbTable => {
                facts.resource = dynamodb_presence(
                    self.table(&r.id)
                        .await?
                        .as_ref()
                        .and_then(|t| t.table_status()),
                );
            }
        }
        if let Some(c) = &r.cutover {
            facts.writer_fenced = self.writer_fenced(r.kind, &c.fenced).await?;
            if let Some(resource) = plan.resource(&r.resource)
                && let Some(values) = self.aws.read_record(plan, resource).await
            {
                let values = match values {
                    crate::posture::Observed::Present(v) => v,
                    crate::posture::Observed::Missing => vec![],
                    crate::posture::Observed::Unknown { reason } => {
                        return Err(AwsError {
                            service: "route53",
                            operation: "ListResourceRecordSets",
                            resource: c.record.clone(),
                            failure: AwsFailure::Unreachable,
                            code: None,
                            message: reason,
                        });
                    }
                };
                let recovered = self
                    .recovered_endpoint(r.kind, &r.id)
                    .await?
                    .map(|e| e.host.trim_end_matches('.').to_ascii_lowercase());
                facts.record_target = values.first().map(|v| {
                    let v = v.trim_end_matches('.').to_ascii_lowercase();
                    if Some(&v) == recovered.as_ref() {
                        r.id.clone()
                    } else {
                        v
                    }
                });
            }
        }
        Ok(facts)
    }

    async fn perform(
        &self,
        plan: &Plan,
        action: &RecoveryAction,
        window: std::time::Duration,
    ) -> Result<Performed, AwsError> {
        match action {
            RecoveryAction::Restore {
                kind,
                source,
                target,
                restore_time,
                tags,
                ..
            } => self
                .restore(*kind, source, target, *restore_time, tags)
                .await
                .map(|()| Performed::Done),
            RecoveryAction::CreateInstance {
                cluster,
                instance,
                tags,
                ..
            } => self
                .create_instance(cluster, instance, tags)
                .await
                .map(|()| Performed::Done),
            RecoveryAction::RunChecks {
                resource,
                target,
                assertions,
                progress,
                ..
            } => {
                let Some(res) = plan.resource(resource) else {
                    return Ok(Performed::Checks(CheckReport {
                        passed: vec![],
                        failed: vec![format!("{resource} is no longer in the plan")],
                    }));
                };
                self.checks(plan, res, target, assertions, progress.clone(), window)
                    .await
            }
            RecoveryAction::Fence { recovery, writer } => self
                .fence(kind_of(plan, recovery), writer)
                .await
                .map(|()| Performed::Done),
            RecoveryAction::PointRecord {
                recovery, target, ..
            } => {
                let resource = resource_of(plan, recovery).ok_or_else(|| {
                    AwsError::bad_request(
                        "route53",
                        "ChangeResourceRecordSets",
                        recovery,
                        "the recovery names no resource of the plan",
                    )
                })?;
                let endpoint = self
                    .recovered_endpoint(resource.kind, target)
                    .await?
                    .ok_or_else(|| {
                        AwsError::bad_request(
                            "rds",
                            "DescribeDBInstances",
                            target,
                            "the recovered database has no endpoint yet",
                        )
                    })?;
                self.aws
                    .switch_record(plan, resource, &endpoint.host, "cutover")
                    .await
                    .map(|_| Performed::Done)
            }
            RecoveryAction::Delete {
                recovery,
                target,
                instance,
            } => self
                .delete(
                    kind_of(plan, recovery),
                    target,
                    instance.as_deref(),
                    recovery,
                )
                .await
                .map(|()| Performed::Done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_statuses_read_as_presences() {
        assert_eq!(rds_presence(None), Presence::Missing);
        assert_eq!(rds_presence(Some("available")), Presence::Available);
        assert_eq!(rds_presence(Some("backing-up")), Presence::Available);
        assert_eq!(rds_presence(Some("creating")), Presence::Creating);
        assert_eq!(rds_presence(Some("modifying")), Presence::Creating);
        assert_eq!(rds_presence(Some("deleting")), Presence::Deleting);
        assert!(matches!(
            rds_presence(Some("incompatible-restore")),
            Presence::Failed(why) if why.contains("incompatible-restore")
        ));
    }

    #[test]
    fn a_recovery_names_its_resource_by_the_longest_matching_id() {
        let plan =
            crate::plan::parse_plan(include_str!("../../../infra/plans/local.json")).unwrap();
        assert_eq!(
            resource_of(&plan, "orders-db-pitr-202611201429").map(|r| r.id.as_str()),
            Some("orders-db")
        );
        assert_eq!(
            resource_of(&plan, "sessions-pitr-202611201429").map(|r| r.kind),
            Some(ResourceKind::DynamodbTable)
        );
        assert!(resource_of(&plan, "unknown-pitr-1").is_none());
    }
}
