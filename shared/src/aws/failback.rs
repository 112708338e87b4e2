//! The failback port on CloudWatch, RDS and Route 53.

use super::dr::{DrAws, cluster_arn, identifier_on, promote_instance};
use super::posture::fetch_instance;
use super::{AwsClients, ClientSettings};

use crate::dr::{Side, TrafficFacts};
use crate::error::AwsError;
use crate::failback::run::FailbackPort;
use crate::failback::{DatabaseShape, FbTargetFacts};
use crate::failover::{AlarmReading, FenceOutcome};
use crate::plan::{AlarmRef, PLAN_TAG, Plan, ProtectedResource, RESOURCE_TAG, ResourceKind};
use async_trait::async_trait;
use aws_sdk_rds::types::Tag;

/// The AWS-managed RDS key, in whichever region: what encrypts a replica of an encrypted
/// writer when the database it replaces left no key to reuse.
const AWS_MANAGED_RDS_KEY: &str = "alias/aws/rds";

/// Failback on AWS.
#[derive(Debug)]
pub struct AwsFailback {
    aws: DrAws,
}

impl AwsFailback {
    /// Clients for the plan's regions and the regions of its alarms.
    pub async fn new(plan: &Plan, clients: &AwsClients, settings: &ClientSettings) -> Self {
        AwsFailback {
            aws: DrAws::new(plan, clients, settings).await,
        }
    }

    /// The key for a replica on `side` of an encrypted writer: the replaced database's
    /// own, else (DR side) the plan's snapshot-copy key in the DR region, else the
    /// AWS-managed key.
    fn replica_key(plan: &Plan, side: Side, like: Option<&DatabaseShape>) -> String {
        if let Some(key) = like.and_then(|l| l.kms_key_id.clone()) {
            return key;
        }
        let dr_copy_key = plan
            .snapshots
            .copy_to
            .iter()
            .find(|d| d.region == plan.regions.dr)
            .map(|d| d.kms_key_id.clone());
        match (side, dr_copy_key) {
            (Side::Dr, Some(key)) => key,
            _ => AWS_MANAGED_RDS_KEY.to_string(),
        }
    }
}

#[async_trait]
impl FailbackPort for AwsFailback {
    async fn read_alarms(&self, plan: &Plan, alarms: &[AlarmRef]) -> Vec<AlarmReading> {
        self.aws.read_alarms(plan, alarms).await
    }

    async fn read_target(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        change: Option<&str>,
    ) -> FbTargetFacts {
        let (primary, primary_shape) = self.aws.read_database(plan, r, Side::Primary).await;
        let (dr, dr_shape) = self.aws.read_database(plan, r, Side::Dr).await;
        // The lag that matters is the replicating side's, read in its own region.
        let replicating = if primary
            .present()
            .is_some_and(|p| p.replicates_from.is_some())
        {
            Some(Side::Primary)
        } else if dr.present().is_some_and(|d| d.replicates_from.is_some()) {
            Some(Side::Dr)
        } else {
            None
        };
        let lag_seconds = match replicating {
            Some(side) => self.aws.replica_lag(r, side, identifier_on(r, side)).await,
            None => None,
        };
        FbTargetFacts {
            resource: r.id.clone(),
            primary,
            dr,
            primary_shape,
            dr_shape,
            lag_seconds,
            record: self.aws.read_record(plan, r).await,
            change: self.aws.change_state(change).await,
        }
    }

    async fn read_traffic(&self, plan: &Plan, change: Option<&str>) -> TrafficFacts {
        super::traffic::read_traffic(&self.aws.clients.route53, plan, change).await
    }

    async fn retire(
        &self,
        _plan: &Plan,
        r: &ProtectedResource,
        side: Side,
        final_snapshot: &str,
    ) -> Result<(), AwsError> {
        let id = identifier_on(r, side);
        let rds = &self.aws.side(side).rds;
        let Some(db) = fetch_instance(rds, id).await? else {
            return Ok(()); // already gone
        };
        if db.db_instance_status() == Some("deleting") {
            return Ok(());
        }
        if db.read_replica_source_db_instance_identifier().is_some() {
            return Err(AwsError::bad_request(
                "rds",
                "DeleteDBInstance",
                id,
                "it is a read replica, and failback retires only old writers; check the plan's identifiers",
            ));
        }
        // The retired writer leaves a final snapshot, so deletion protection (which
        // guards against deleting without intent) is lifted for this deliberate step.
        if db.deletion_protection() == Some(true) {
            rds.modify_db_instance()
                .db_instance_identifier(id)
                .deletion_protection(false)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("rds", "ModifyDBInstance", id, &e))?;
        }
        let deleted = rds
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(false)
            .final_db_snapshot_identifier(final_snapshot)
            // Automated backups stay for their retention period: point-in-time recovery
            // of the retired writer remains possible.
            .delete_automated_backups(false)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::from_sdk("rds", "DeleteDBInstance", id, &e);
                if err.is_code("DBInstanceNotFound") {
                    return Ok(());
                }
                // A delete issued before (a retry): fine once it is under way.
                if err.is_code("InvalidDBInstanceState")
                    && fetch_instance(rds, id)
                        .await?
                        .is_none_or(|d| d.db_instance_status() == Some("deleting"))
                {
                    return Ok(());
                }
                Err(err)
            }
        }
    }

    async fn create_replica(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        side: Side,
        like: Option<&DatabaseShape>,
    ) -> Result<(), AwsError> {
        let id = identifier_on(r, side);
        let source_id = identifier_on(r, side.other());
        let source = fetch_instance(&self.aws.side(side.other()).rds, source_id)
            .await?
            .ok_or_else(|| {
                AwsError::bad_request(
                    "rds",
                    "CreateDBInstanceReadReplica",
                    id,
                    format!(
                        "its source {source_id} does not exist in the {side} side's partner region",
                        side = side.other()
                    ),
                )
            })?;
        let source_arn = source.db_instance_arn().unwrap_or_default().to_string();
        let class = like
            .map(|l| l.instance_class.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| source.db_instance_class().map(str::to_string))
            .unwrap_or_default();
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let mut request = self
            .aws
            .side(side)
            .rds
            .create_db_instance_read_replica()
            .db_instance_identifier(id)
            .source_db_instance_identifier(source_arn)
            .db_instance_class(class)
            .copy_tags_to_snapshot(true)
            .tags(tag(PLAN_TAG, &plan.name))
            .tags(tag(RESOURCE_TAG, &r.id));
        if source.storage_encrypted() == Some(true) {
            request = request.kms_key_id(Self::replica_key(plan, side, like));
        }
        if let Some(l) = like {
            request = request
                .set_db_subnet_group_name(l.subnet_group.clone())
                .set_vpc_security_group_ids(
                    (!l.security_groups.is_empty()).then(|| l.security_groups.clone()),
                )
                .set_db_parameter_group_name(l.parameter_group.clone())
                .set_option_group_name(l.option_group.clone())
                .set_storage_type(l.storage_type.clone())
                .multi_az(l.multi_az)
                .deletion_protection(l.deletion_protection);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::from_sdk("rds", "CreateDBInstanceReadReplica", id, &e);
                if err.is_code("DBInstanceAlreadyExists") {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn promote_primary(&self, _plan: &Plan, r: &ProtectedResource) -> Result<(), AwsError> {
        let rds = &self.aws.clients.primary.rds;
        match r.kind {
            ResourceKind::AuroraCluster => {
                let global = r
                    .replica
                    .as_ref()
                    .and_then(|x| x.global_cluster.clone())
                    .unwrap_or_default();
                let target = cluster_arn(rds, r.aws_identifier()).await?;
                // Both regions are healthy: the planned switchover, which loses no data
                // and turns the old writer into a secondary.
                match rds
                    .switchover_global_cluster()
                    .global_cluster_identifier(&global)
                    .target_db_cluster_identifier(target)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let err = AwsError::from_sdk("rds", "SwitchoverGlobalCluster", &global, &e);
                        if err.is_code("InvalidGlobalClusterStateFault") {
                            Ok(())
                        } else {
                            Err(err)
                        }
                    }
                }
            }
            _ => promote_instance(rds, r.aws_identifier()).await,
        }
    }

    async fn stop(
        &self,
        _plan: &Plan,
        r: &ProtectedResource,
        side: Side,
    ) -> Result<FenceOutcome, AwsError> {
        if r.kind != ResourceKind::RdsInstance {
            return Ok(FenceOutcome::NotNeeded {
                reason: "the global database's switchover made the old writer a secondary".into(),
            });
        }
        self.aws.stop_instance(side, identifier_on(r, side)).await
    }

    async fn switch_record(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError> {
        self.aws.switch_record(plan, r, endpoint, "failback").await
    }

    async fn set_traffic(&self, plan: &Plan, primary_percent: u32) -> Result<String, AwsError> {
        super::traffic::set_traffic(&self.aws.clients.route53, plan, primary_percent).await
    }
}
