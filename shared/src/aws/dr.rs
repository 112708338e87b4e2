//! What failover and failback both read and do in AWS: alarms, both sides of a replicated
//! database (with the roles in an Aurora global database), replica lag, the writer
//! record, and stopping an old writer.

use super::posture::{fetch_instance, instance_facts};
use super::{AwsClients, ClientSettings, RegionalClients, describe_cluster, read_cname};
use crate::dr::Side;
use crate::error::{AwsError, AwsFailure};
use crate::failback::DatabaseShape;
use crate::failover::{AlarmReading, AlarmValue, ChangeState, FenceOutcome};
use crate::ident::{IdentifierRule, RdsArn};
use crate::plan::{AlarmRef, Plan, ProtectedResource, ResourceKind};
use crate::posture::{Observed, StoreFacts};
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use std::collections::BTreeMap;
use tokio::sync::OnceCell;

/// How far back a replica-lag datapoint may be to count as current.
const LAG_WINDOW_MINUTES: i64 = 5;

/// The clients and cached lookups of a DR function.
#[derive(Debug)]
pub(crate) struct DrAws {
    pub(crate) clients: AwsClients,
    /// CloudWatch clients of every region the plan's alarms live in.
    alarm_regions: BTreeMap<String, aws_sdk_cloudwatch::Client>,
    zone: OnceCell<String>,
}

pub(crate) fn observe<T>(r: Result<Option<T>, AwsError>) -> Observed<T> {
    match r {
        Ok(Some(v)) => Observed::Present(v),
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Unknown {
            reason: e.to_string(),
        },
    }
}

/// The resource's AWS identifier on `side`: the plan's identifier in the primary region,
/// the replica's in the DR region (empty when it has no replica).
pub(crate) fn identifier_on(r: &ProtectedResource, side: Side) -> &str {
    match side {
        Side::Primary => r.aws_identifier(),
        Side::Dr => r
            .replica
            .as_ref()
            .map(|x| x.identifier.as_str())
            .unwrap_or_default(),
    }
}

/// The ARN of the DB cluster `id`.
pub(crate) async fn cluster_arn(rds: &aws_sdk_rds::Client, id: &str) -> Result<String, AwsError> {
    rds.describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("rds", "DescribeDBClusters", id, &e))?
        .db_clusters()
        .first()
        .and_then(|c| c.db_cluster_arn().map(str::to_string))
        .ok_or_else(|| {
            AwsError::bad_request("rds", "DescribeDBClusters", id, "the cluster has no ARN")
        })
}

/// Promote the read replica `id` to a standalone writer. A replica that is already
/// being promoted, or is no replica any more, is no error: the state machine re-reads it
/// and sees which.
pub(crate) async fn promote_instance(rds: &aws_sdk_rds::Client, id: &str) -> Result<(), AwsError> {
    match rds
        .promote_read_replica()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = AwsError::from_sdk("rds", "PromoteReadReplica", id, &e);
            if err.is_code("InvalidDBInstanceState") {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

fn shape_of(db: &aws_sdk_rds::types::DbInstance) -> DatabaseShape {
    DatabaseShape {
        instance_class: db.db_instance_class().unwrap_or_default().to_string(),
        subnet_group: db
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string),
        security_groups: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        parameter_group: db
            .db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(str::to_string),
        option_group: db
            .option_group_memberships()
            .first()
            .and_then(|g| g.option_group_name())
            .map(str::to_string),
        multi_az: db.multi_az().unwrap_or(false),
        storage_type: db.storage_type().map(str::to_string),
        kms_key_id: db.kms_key_id().map(str::to_string),
        deletion_protection: db.deletion_protection().unwrap_or(false),
    }
}

impl DrAws {
    /// Clients for the plan's regions and the regions of its alarms (health, gate and
    /// game-day stop conditions).
    pub(crate) async fn new(plan: &Plan, clients: &AwsClients, settings: &ClientSettings) -> Self {
        let mut alarm_regions = BTreeMap::new();
        let regions = plan
            .failover
            .health_alarms
            .iter()
            .chain(plan.failback.gate_alarms.iter())
            .chain(plan.game_days.stop_condition_alarms.iter())
            .map(|a| plan.alarm_region(a).to_string());
        for region in regions {
            if alarm_regions.contains_key(&region) {
                continue;
            }
            let cw = match clients.region(&region) {
                Some(c) => c.cloudwatch.clone(),
                None => RegionalClients::build(settings, &region).await.cloudwatch,
            };
            alarm_regions.insert(region, cw);
        }
        DrAws {
            clients: clients.clone(),
            alarm_regions,
            zone: OnceCell::new(),
        }
    }

    /// CloudWatch in `region`, when one of the plan's alarms lives there.
    pub(crate) fn alarm_client(&self, region: &str) -> Option<&aws_sdk_cloudwatch::Client> {
        self.alarm_regions.get(region)
    }

    /// The clients of `side`.
    pub(crate) fn side(&self, side: Side) -> &RegionalClients {
        match side {
            Side::Primary => &self.clients.primary,
            Side::Dr => &self.clients.dr,
        }
    }

    /// The plan's hosted zone id, looked up once.
    pub(crate) async fn zone_id(&self, plan: &Plan) -> Result<String, AwsError> {
        self.zone
            .get_or_try_init(|| async {
                super::resolve_hosted_zone(&self.clients.route53, &plan.dns)
                    .await?
                    .ok_or_else(|| {
                        AwsError::bad_request(
                            "route53",
                            "ListHostedZonesByName",
                            plan.dns.hosted_zone_name.clone().unwrap_or_default(),
                            "the plan's hosted zone does not exist",
                        )
                    })
            })
            .await
            .cloned()
    }

    /// These alarms' states; an alarm that cannot be read has no value.
    pub(crate) async fn read_alarms(&self, plan: &Plan, alarms: &[AlarmRef]) -> Vec<AlarmReading> {
        let mut readings = Vec::new();
        for alarm in alarms {
            let value = match self.alarm_regions.get(plan.alarm_region(alarm)) {
                Some(cw) => cw
                    .describe_alarms()
                    .alarm_names(&alarm.name)
                    .send()
                    .await
                    .ok()
                    .and_then(|out| {
                        out.metric_alarms()
                            .iter()
                            .find(|a| a.alarm_name() == Some(alarm.name.as_str()))
                            .and_then(|a| a.state_value())
                            .and_then(|s| AlarmValue::parse(s.as_str()))
                    }),
                None => None,
            };
            readings.push(AlarmReading {
                name: alarm.name.clone(),
                value,
            });
        }
        readings
    }

    /// The resource's database on `side`, and (for an RDS instance) how it is set up.
    /// An Aurora cluster in a global database that is not its writer is reported as
    /// replicating from the writer, as an RDS read replica is.
    pub(crate) async fn read_database(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        side: Side,
    ) -> (Observed<StoreFacts>, Option<DatabaseShape>) {
        let id = identifier_on(r, side);
        let clients = self.side(side);
        match r.kind {
            ResourceKind::AuroraCluster => {
                let mut cluster =
                    observe(describe_cluster(&clients.rds, &clients.region, id).await);
                if let (Observed::Present(c), Some(global)) = (
                    &mut cluster,
                    r.replica.as_ref().and_then(|x| x.global_cluster.as_deref()),
                ) && c.replicates_from.is_none()
                {
                    c.replicates_from = self
                        .global_writer_if_secondary(plan, global, side, id)
                        .await;
                }
                (cluster, None)
            }
            _ => match fetch_instance(&clients.rds, id).await {
                Ok(Some(db)) => (
                    Observed::Present(instance_facts(&db, &clients.region, id)),
                    Some(shape_of(&db)),
                ),
                Ok(None) => (Observed::Missing, None),
                Err(e) => (
                    Observed::Unknown {
                        reason: e.to_string(),
                    },
                    None,
                ),
            },
        }
    }

    /// The writer's ARN when the cluster `id` on `side` is a secondary of the global
    /// database `global`. The global database is asked of either region (the other
    /// may be down).
    async fn global_writer_if_secondary(
        &self,
        plan: &Plan,
        global: &str,
        side: Side,
        id: &str,
    ) -> Option<String> {
        let region = match side {
            Side::Primary => &plan.regions.primary,
            Side::Dr => &plan.regions.dr,
        };
        for asked in [side, side.other()] {
            let Ok(out) = self
                .side(asked)
                .rds
                .describe_global_clusters()
                .global_cluster_identifier(global)
                .send()
                .await
            else {
                continue;
            };
            // Matched by name (by RDS's rule): not every endpoint filters by the identifier.
            let Some(g) = out.global_clusters().iter().find(|g| {
                g.global_cluster_identifier()
                    .is_some_and(|g| IdentifierRule::Rds.same(g, global))
            }) else {
                continue;
            };
            let members = g.global_cluster_members();
            let is = |arn: &str| {
                RdsArn::parse(arn).is_some_and(|a| a.names("cluster", id, Some(region)))
            };
            let me = members
                .iter()
                .find(|m| m.db_cluster_arn().is_some_and(is))?;
            if me.is_writer() == Some(true) {
                return None;
            }
            return members
                .iter()
                .find(|m| m.is_writer() == Some(true))
                .and_then(|m| m.db_cluster_arn().map(str::to_string))
                .or_else(|| Some(global.to_string()));
        }
        None
    }

    /// The lag of the replica `id` on `side`, in seconds: the newest datapoint of the
    /// last few minutes (RDS `ReplicaLag`; Aurora global databases
    /// `AuroraGlobalDBReplicationLag`, in ms).
    pub(crate) async fn replica_lag(
        &self,
        r: &ProtectedResource,
        side: Side,
        id: &str,
    ) -> Option<f64> {
        let (metric, dimension, scale) = match r.kind {
            ResourceKind::AuroraCluster => {
                ("AuroraGlobalDBReplicationLag", "DBClusterIdentifier", 0.001)
            }
            _ => ("ReplicaLag", "DBInstanceIdentifier", 1.0),
        };
        let now = chrono::Utc::now();
        let start = now - chrono::Duration::minutes(LAG_WINDOW_MINUTES);
        let out = self
            .side(side)
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name(metric)
            .dimensions(Dimension::builder().name(dimension).value(id).build())
            .start_time(aws_smithy_types::DateTime::from_secs(start.timestamp()))
            .end_time(aws_smithy_types::DateTime::from_secs(now.timestamp() + 60))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await
            .ok()?;
        out.datapoints()
            .iter()
            .filter_map(|d| Some((d.timestamp()?.secs(), d.maximum()?)))
            .max_by_key(|(t, _)| *t)
            .map(|(_, v)| v * scale)
    }

    /// The writer record's values, for a resource that has one.
    pub(crate) async fn read_record(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
    ) -> Option<Observed<Vec<String>>> {
        let name = r.dns_record.as_ref()?;
        Some(match self.zone_id(plan).await {
            Ok(zone) => observe(
                read_cname(&self.clients.route53, &zone, name)
                    .await
                    .map(|rec| rec.map(|rec| rec.values.into_iter().map(|(v, _)| v).collect())),
            ),
            Err(e) => Observed::Unknown {
                reason: e.to_string(),
            },
        })
    }

    /// The state of a Route 53 change, when one is given and can be read.
    pub(crate) async fn change_state(&self, change: Option<&str>) -> Option<ChangeState> {
        match change {
            None => None,
            Some(id) => super::traffic::change_state(&self.clients.route53, id).await,
        }
    }

    /// UPSERT the resource's writer record to `endpoint`; returns the change id.
    pub(crate) async fn switch_record(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        endpoint: &str,
        why: &str,
    ) -> Result<String, AwsError> {
        let name = r.dns_record.clone().unwrap_or_default();
        let zone = self.zone_id(plan).await?;
        let bad = |e: aws_sdk_route53::error::BuildError| {
            AwsError::bad_request("route53", "ChangeResourceRecordSets", &name, e.to_string())
        };
        let set = ResourceRecordSet::builder()
            .name(&name)
            .r#type(RrType::Cname)
            .ttl(i64::from(plan.dns.record_ttl_seconds))
            .resource_records(
                ResourceRecord::builder()
                    .value(endpoint)
                    .build()
                    .map_err(bad)?,
            )
            .build()
            .map_err(bad)?;
        let out = self
            .clients
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(
                ChangeBatch::builder()
                    .comment(format!("Lifeboat {why} of {} (plan {})", r.id, plan.name))
                    .changes(
                        Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(set)
                            .build()
                            .map_err(bad)?,
                    )
                    .build()
                    .map_err(bad)?,
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("route53", "ChangeResourceRecordSets", &name, &e))?;
        Ok(out
            .change_info
            .map(|c| c.id.trim_start_matches("/change/").to_string())
            .unwrap_or_default())
    }

    /// Stop the DB instance `id` on `side`: the old writer stops taking direct
    /// connections. An unreachable region or an instance that cannot be stopped (already
    /// stopped, gone) is an outcome, not an error.
    pub(crate) async fn stop_instance(
        &self,
        side: Side,
        id: &str,
    ) -> Result<FenceOutcome, AwsError> {
        match self
            .side(side)
            .rds
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(_) => Ok(FenceOutcome::Stopped),
            Err(e) => {
                let err = AwsError::from_sdk("rds", "StopDBInstance", id, &e);
                match err.failure {
                    AwsFailure::Unreachable => Ok(FenceOutcome::Unreachable {
                        reason: err.to_string(),
                    }),
                    AwsFailure::Refused => Ok(FenceOutcome::NotNeeded {
                        reason: err.to_string(),
                    }),
                    _ => Err(err),
                }
            }
        }
    }
}
