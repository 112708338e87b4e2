//! The failover port on CloudWatch, RDS and Route 53.

use super::dr::{DrAws, cluster_arn, identifier_on, promote_instance};
use super::{AwsClients, AwsDetection, ClientSettings};
use crate::detection::Readings;
use crate::dr::{Side, TrafficFacts};
use crate::error::AwsError;
use crate::failover::run::FailoverPort;
use crate::failover::{FenceOutcome, TargetFacts};
use crate::plan::{Plan, ProtectedResource, ResourceKind};
use async_trait::async_trait;
use aws_config::retry::RetryConfig;

/// Failover on AWS.
#[derive(Debug)]
pub struct AwsFailover {
    aws: DrAws,
    detection: AwsDetection,
}

impl AwsFailover {
    /// Clients for the plan's regions and the regions of its alarms.
    pub async fn new(plan: &Plan, clients: &AwsClients, settings: &ClientSettings) -> Self {
        // A failover never waits on the region it leaves: one attempt per RDS call there.
        // A primary that does not answer is recorded as such (the fence, the facts), and
        // the next tick looks again; retries with backoff at every step added tens of
        // seconds to the RTO when the primary region was down.
        let mut clients = clients.clone();
        let one_attempt = clients
            .primary
            .config
            .clone()
            .into_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build();
        clients.primary.rds = aws_sdk_rds::Client::new(&one_attempt);
        AwsFailover {
            aws: DrAws::new(plan, &clients, settings).await,
            detection: AwsDetection::new(plan, &clients, settings).await,
        }
    }
}

#[async_trait]
impl FailoverPort for AwsFailover {
    async fn read_signals(&self, plan: &Plan) -> Readings {
        self.detection.read(plan).await
    }

    async fn read_target(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        change: Option<&str>,
    ) -> TargetFacts {
        let (primary, _) = self.aws.read_database(plan, r, Side::Primary).await;
        let (replica, _) = self.aws.read_database(plan, r, Side::Dr).await;
        TargetFacts {
            resource: r.id.clone(),
            primary,
            replica,
            lag_seconds: self
                .aws
                .replica_lag(r, Side::Dr, identifier_on(r, Side::Dr))
                .await,
            record: self.aws.read_record(plan, r).await,
            change: self.aws.change_state(change).await,
        }
    }

    async fn read_traffic(&self, plan: &Plan, change: Option<&str>) -> TrafficFacts {
        super::traffic::read_traffic(&self.aws.clients.route53, plan, change).await
    }

    async fn set_traffic(&self, plan: &Plan, primary_percent: u32) -> Result<String, AwsError> {
        super::traffic::set_traffic(&self.aws.clients.route53, plan, primary_percent).await
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
        let rds = &self.aws.clients.dr.rds;
        match r.kind {
            ResourceKind::AuroraCluster => {
                let global = replica.global_cluster.clone().unwrap_or_default();
                let target = cluster_arn(rds, &replica.identifier).await?;
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
            _ => promote_instance(rds, &replica.identifier).await,
        }
    }

    async fn fence(&self, _plan: &Plan, r: &ProtectedResource) -> Result<FenceOutcome, AwsError> {
        if r.kind != ResourceKind::RdsInstance {
            return Ok(FenceOutcome::NotNeeded {
                reason: "the global database demotes the old primary itself when it is reachable"
                    .into(),
            });
        }
        self.aws
            .stop_instance(Side::Primary, r.aws_identifier())
            .await
    }

    async fn switch_record(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError> {
        self.aws.switch_record(plan, r, endpoint, "failover").await
    }
}
