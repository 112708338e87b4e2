//! The failover port on CloudWatch, RDS and Route 53.

use super::{
    AwsClients, ClientSettings, RegionalClients, describe_cluster, describe_instance, read_cname,
    resolve_hosted_zone,
};
use crate::dr::TrafficFacts;
use crate::error::{AwsError, AwsFailure};
use crate::failover::run::FailoverPort;
use crate::failover::{AlarmReading, AlarmValue, FenceOutcome, TargetFacts};
use crate::plan::{Plan, ProtectedResource, ResourceKind};
use crate::posture::Observed;
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use std::collections::BTreeMap;
use tokio::sync::OnceCell;

/// How far back a replica-lag datapoint may be to count as current.
const LAG_WINDOW_MINUTES: i64 = 5;

/// Failover on AWS.
#[derive(Debug)]
pub struct AwsFailover {
    clients: AwsClients,
    /// CloudWatch clients of every region the plan's alarms live in.
    alarm_regions: BTreeMap<String, aws_sdk_cloudwatch::Client>,
    zone: OnceCell<String>,
}

impl AwsFailover {
    /// Clients for the plan's regions and the regions of its alarms.
    pub async fn new(plan: &Plan, clients: &AwsClients, settings: &ClientSettings) -> Self {
        let mut alarm_regions = BTreeMap::new();
        let regions = plan
            .failover
            .health_alarms
            .iter()
            .chain(plan.failback.gate_alarms.iter())
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
        AwsFailover {
            clients: clients.clone(),
            alarm_regions,
            zone: OnceCell::new(),
        }
    }

    async fn zone_id(&self, plan: &Plan) -> Result<String, AwsError> {
        self.zone
            .get_or_try_init(|| async {
                resolve_hosted_zone(&self.clients.route53, &plan.dns)
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

    /// The replica's lag in seconds: the newest datapoint of the last few minutes
    /// (RDS `ReplicaLag`; Aurora global databases `AuroraGlobalDBReplicationLag`, in ms).
    async fn replica_lag(&self, resource: &ProtectedResource, replica: &str) -> Option<f64> {
        let (namespace_metric, dimension, scale) = match resource.kind {
            ResourceKind::AuroraCluster => {
                ("AuroraGlobalDBReplicationLag", "DBClusterIdentifier", 0.001)
            }
            _ => ("ReplicaLag", "DBInstanceIdentifier", 1.0),
        };
        let now = chrono::Utc::now();
        let start = now - chrono::Duration::minutes(LAG_WINDOW_MINUTES);
        let out = self
            .clients
            .dr
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name(namespace_metric)
            .dimensions(Dimension::builder().name(dimension).value(replica).build())
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
}

fn observe<T>(r: Result<Option<T>, AwsError>) -> Observed<T> {
    match r {
        Ok(Some(v)) => Observed::Present(v),
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Unknown {
            reason: e.to_string(),
        },
    }
}

#[async_trait]
impl FailoverPort for AwsFailover {
    async fn read_alarms(&self, plan: &Plan) -> Vec<AlarmReading> {
        let mut readings = Vec::new();
        for alarm in &plan.failover.health_alarms {
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

    async fn read_target(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        change: Option<&str>,
    ) -> TargetFacts {
        let replica_id = r
            .replica
            .as_ref()
            .map(|x| x.identifier.clone())
            .unwrap_or_default();
        let (primary, replica) = match r.kind {
            ResourceKind::AuroraCluster => (
                observe(
                    describe_cluster(
                        &self.clients.primary.rds,
                        &plan.regions.primary,
                        r.aws_identifier(),
                    )
                    .await,
                ),
                observe(
                    describe_cluster(&self.clients.dr.rds, &plan.regions.dr, &replica_id).await,
                ),
            ),
            _ => (
                observe(
                    describe_instance(
                        &self.clients.primary.rds,
                        &plan.regions.primary,
                        r.aws_identifier(),
                    )
                    .await,
                ),
                observe(
                    describe_instance(&self.clients.dr.rds, &plan.regions.dr, &replica_id).await,
                ),
            ),
        };
        let lag_seconds = self.replica_lag(r, &replica_id).await;
        let record =
            match &r.dns_record {
                None => None,
                Some(name) => Some(match self.zone_id(plan).await {
                    Ok(zone) => observe(read_cname(&self.clients.route53, &zone, name).await.map(
                        |rec| rec.map(|rec| rec.values.into_iter().map(|(v, _)| v).collect()),
                    )),
                    Err(e) => Observed::Unknown {
                        reason: e.to_string(),
                    },
                }),
            };
        let change = match change {
            None => None,
            Some(id) => super::traffic::change_state(&self.clients.route53, id).await,
        };
        TargetFacts {
            resource: r.id.clone(),
            primary,
            replica,
            lag_seconds,
            record,
            change,
        }
    }

    async fn read_traffic(&self, plan: &Plan, change: Option<&str>) -> TrafficFacts {
        super::traffic::read_traffic(&self.clients.route53, plan, change).await
    }

    async fn set_traffic(&self, plan: &Plan, primary_percent: u32) -> Result<String, AwsError> {
        super::traffic::set_traffic(&self.clients.route53, plan, primary_percent).await
    }

    async fn promote(&self, _plan: &Plan, r: &ProtectedResource) -> Result<(), AwsError> {
        let Some(replica) = &r.replica else {
            return Err(AwsError::bad_request(
                "rds",
                "PromoteReadReplica",
                &r.id,
                "the resource has no replica",
            ));
        };
        let rds = &self.clients.dr.rds;
        match r.kind {
            ResourceKind::AuroraCluster => {
                let global = replica.global_cluster.clone().unwrap_or_default();
                let target = rds
                    .describe_db_clusters()
                    .db_cluster_identifier(&replica.identifier)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::from_sdk("rds", "DescribeDBClusters", &replica.identifier, &e)
                    })?
                    .db_clusters()
                    .first()
                    .and_then(|c| c.db_cluster_arn().map(str::to_string))
                    .ok_or_else(|| {
                        AwsError::bad_request(
                            "rds",
                            "FailoverGlobalCluster",
                            &replica.identifier,
                            "the DR cluster has no ARN",
                        )
                    })?;
                // The unplanned failover: a planned switchover needs a healthy primary,
                // which a regional outage does not have. The lag guard bounds the loss.
                match rds
                    .failover_global_cluster()
                    .global_cluster_identifier(&global)
                    .target_db_cluster_identifier(target)
                    .allow_data_loss(true)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let err = AwsError::from_sdk("rds", "FailoverGlobalCluster", &global, &e);
                        // Already failing over (a retry of an issued call).
                        if err.is_code("InvalidGlobalClusterStateFault") {
                            Ok(())
                        } else {
                            Err(err)
                        }
                    }
                }
            }
            _ => match rds
                .promote_read_replica()
                .db_instance_identifier(&replica.identifier)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    let err =
                        AwsError::from_sdk("rds", "PromoteReadReplica", &replica.identifier, &e);
                    // Refused because it is no replica any more, or is being promoted: the
                    // state machine re-reads the replica and sees which.
                    if err.is_code("InvalidDBInstanceState") {
                        Ok(())
                    } else {
                        Err(err)
                    }
                }
            },
        }
    }

    async fn fence(&self, _plan: &Plan, r: &ProtectedResource) -> Result<FenceOutcome, AwsError> {
        if r.kind != ResourceKind::RdsInstance {
            return Ok(FenceOutcome::NotNeeded {
                reason: "the global database demotes the old primary itself when it is reachable"
                    .into(),
            });
        }
        match self
            .clients
            .primary
            .rds
            .stop_db_instance()
            .db_instance_identifier(r.aws_identifier())
            .send()
            .await
        {
            Ok(_) => Ok(FenceOutcome::Stopped),
            Err(e) => {
                let err = AwsError::from_sdk("rds", "StopDBInstance", r.aws_identifier(), &e);
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

    async fn switch_record(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        endpoint: &str,
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
                    .comment(format!(
                        "Lifeboat failover of {} (plan {})",
                        r.id, plan.name
                    ))
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
}
