//! Reading the detection signals from where the failover function runs (the DR region):
//! the health alarms where their region answers, the primary region's RDS API with one
//! short attempt, each DR replica's own view of its source, and TCP probes of the
//! primary's endpoint. What is read is turned into [`Readings`]; the decision is
//! [`crate::detection::confirm`]'s.
//!
//! Nothing here fails: a call that meets no answer (unreachable, timed out, a 5xx) is
//! [`Reading::NoAnswer`], one the service refused (throttled, access denied) is
//! [`Reading::Failed`], so the plan's meaning for unreadable signals applies.

use super::dr::{DrAws, identifier_on};
use super::posture::fetch_instance;
use super::{AwsClients, ClientSettings, describe_cluster};
use crate::detection::{
    AlarmObservation, AlarmState, LagPoint, MissingData, PrimaryObservation, ProbeObservation,
    Reading, Readings, ReplicaObservation, ReplicaState, ReplicationStatus,
};
use crate::dr::Side;
use crate::error::{AwsError, AwsFailure};
use crate::failover::{AlarmValue, replicated};
use crate::plan::{Plan, ProtectedResource, ResourceKind, SignalSpec};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, Statistic};
use chrono::{DateTime, Duration, Utc};
use std::time::Duration as StdDuration;

/// How far back the replica view reads `ReplicaLag`: long enough to see it rise.
const LAG_HISTORY_MINUTES: i64 = 5;

/// The detection signals on AWS.
#[derive(Debug)]
pub struct AwsDetection {
    aws: DrAws,
    /// RDS in the primary region with one attempt bounded by the plan's
    /// `primary_api_timeout_seconds`: the signal is the answer, not the retries.
    primary_api: aws_sdk_rds::Client,
}

/// What a failed call says as a reading.
fn unanswered<T>(e: &AwsError) -> Reading<T> {
    match e.failure {
        AwsFailure::Unreachable | AwsFailure::ServerError | AwsFailure::BadResponse => {
            Reading::NoAnswer {
                reason: e.to_string(),
            }
        }
        AwsFailure::Throttled | AwsFailure::Refused | AwsFailure::BadRequest => Reading::Failed {
            reason: e.to_string(),
        },
    }
}

fn of<T>(r: Result<Option<T>, AwsError>) -> Reading<T> {
    match r {
        Ok(Some(v)) => Reading::Seen(v),
        Ok(None) => Reading::Missing,
        Err(e) => unanswered(&e),
    }
}

impl AwsDetection {
    /// Clients for the plan's alarm regions, and the primary region's RDS with the plan's
    /// time budget.
    pub async fn new(plan: &Plan, clients: &AwsClients, settings: &ClientSettings) -> Self {
        let budget = StdDuration::from_secs(u64::from(
            plan.failover.detection.primary_api_timeout_seconds.max(1),
        ));
        let config = clients
            .primary
            .config
            .clone()
            .into_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(budget)
                    .operation_attempt_timeout(budget)
                    .operation_timeout(budget)
                    .build(),
            )
            .build();
        AwsDetection {
            aws: DrAws::new(plan, clients, settings).await,
            primary_api: aws_sdk_rds::Client::new(&config),
        }
    }

    /// Everything the plan's detection reads.
    pub async fn read(&self, plan: &Plan) -> Readings {
        let mut readings = Readings {
            alarms: self.read_alarms(plan).await,
            ..Readings::default()
        };
        for spec in &plan.failover.detection.signals {
            match spec {
                SignalSpec::PrimaryApi {} => readings.primary = self.read_primary(plan).await,
                SignalSpec::ReplicaView {} => readings.replicas = self.read_replicas(plan).await,
                SignalSpec::EndpointProbe {
                    host,
                    port,
                    timeout_seconds,
                } => readings
                    .probes
                    .push(probe(host, *port, *timeout_seconds).await),
            }
        }
        readings
    }

    /// Each health alarm, read where it lives; composite alarms too (DescribeAlarms
    /// returns them only when `AlarmTypes` asks), with their suppression.
    pub async fn read_alarms(&self, plan: &Plan) -> Vec<AlarmObservation> {
        let mut out = Vec::new();
        for alarm in &plan.failover.health_alarms {
            let region = plan.alarm_region(alarm).to_string();
            let reading = match self.aws.alarm_client(&region) {
                None => Reading::Failed {
                    reason: format!("no CloudWatch client for {region}"),
                },
                Some(cw) => of(read_alarm(cw, &alarm.name).await),
            };
            out.push(AlarmObservation {
                name: alarm.name.clone(),
                region,
                reading,
            });
        }
        out
    }

    /// Each replicated resource's primary through the primary region's RDS API: one
    /// attempt within the plan's budget.
    pub async fn read_primary(&self, plan: &Plan) -> Vec<PrimaryObservation> {
        let region = &plan.regions.primary;
        let mut out = Vec::new();
        for r in replicated(plan) {
            let id = r.aws_identifier();
            let reading = match r.kind {
                ResourceKind::AuroraCluster => of(describe_cluster(&self.primary_api, region, id)
                    .await
                    .map(|c| c.map(|c| c.status))),
                _ => of(fetch_instance(&self.primary_api, id).await.map(|db| {
                    db.map(|db| db.db_instance_status().unwrap_or("unknown").to_string())
                })),
            };
            out.push(PrimaryObservation {
                resource: r.id.clone(),
                reading,
            });
        }
        out
    }

    /// Each DR replica's view of its source, as RDS reports it in the DR region: what it
    /// replicates from, its read-replication status, and the lag of the last minutes.
    pub async fn read_replicas(&self, plan: &Plan) -> Vec<ReplicaObservation> {
        let now = Utc::now();
        let mut out = Vec::new();
        for r in replicated(plan) {
            out.push(ReplicaObservation {
                resource: r.id.clone(),
                region: plan.regions.dr.clone(),
                reading: self.read_replica(plan, r, now).await,
            });
        }
        out
    }

    async fn read_replica(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        now: DateTime<Utc>,
    ) -> Reading<ReplicaState> {
        let id = identifier_on(r, Side::Dr);
        let state = match r.kind {
            ResourceKind::AuroraCluster => {
                // A global database's secondary has no replication source of its own:
                // the shared reading names its writer.
                let (cluster, _) = self.aws.read_database(plan, r, Side::Dr).await;
                match cluster {
                    crate::posture::Observed::Present(c) => ReplicaState {
                        source: c.replicates_from,
                        replication: None,
                        lag: Vec::new(),
                    },
                    crate::posture::Observed::Missing => return Reading::Missing,
                    crate::posture::Observed::Unknown { reason } => {
                        return Reading::NoAnswer { reason };
                    }
                }
            }
            _ => match fetch_instance(&self.aws.side(Side::Dr).rds, id).await {
                Ok(None) => return Reading::Missing,
                Err(e) => return unanswered(&e),
                Ok(Some(db)) => ReplicaState {
                    source: db
                        .read_replica_source_db_instance_identifier()
                        .map(str::to_string),
                    replication: db
                        .status_infos()
                        .iter()
                        .find(|s| s.status_type() == Some("read replication"))
                        .map(|s| ReplicationStatus {
                            status: s.status().unwrap_or("unknown").to_string(),
                            normal: s.normal(),
                            message: s.message().map(str::to_string),
                        }),
                    lag: Vec::new(),
                },
            },
        };
        // A lag that cannot be read leaves the status to speak; the verdict says so.
        let lag = self.lag_history(r, id, now).await.unwrap_or_default();
        Reading::Seen(ReplicaState { lag, ..state })
    }

    /// The replica's lag datapoints of the last minutes, oldest first, in seconds
    /// (RDS `ReplicaLag`; Aurora global databases `AuroraGlobalDBReplicationLag`, in ms).
    async fn lag_history(
        &self,
        r: &ProtectedResource,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<LagPoint>, AwsError> {
        let (metric, dimension, scale) = match r.kind {
            ResourceKind::AuroraCluster => {
                ("AuroraGlobalDBReplicationLag", "DBClusterIdentifier", 0.001)
            }
            _ => ("ReplicaLag", "DBInstanceIdentifier", 1.0),
        };
        let start = now - Duration::minutes(LAG_HISTORY_MINUTES);
        let out = self
            .aws
            .side(Side::Dr)
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
            .map_err(|e| AwsError::from_sdk("cloudwatch", "GetMetricStatistics", id, &e))?;
        let mut points: Vec<LagPoint> = out
            .datapoints()
            .iter()
            .filter_map(|d| {
                Some(LagPoint {
                    at: DateTime::from_timestamp(d.timestamp()?.secs(), 0)?,
                    seconds: d.maximum()? * scale,
                })
            })
            .collect();
        points.sort_by_key(|p| p.at);
        Ok(points)
    }
}

/// One alarm by name, metric or composite; `None` when there is no such alarm.
async fn read_alarm(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
) -> Result<Option<AlarmState>, AwsError> {
    let out = cw
        .describe_alarms()
        .alarm_names(name)
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudwatch", "DescribeAlarms", name, &e))?;
    let value = |v: Option<&aws_sdk_cloudwatch::types::StateValue>| {
        v.and_then(|s| AlarmValue::parse(s.as_str()))
    };
    if let Some(a) = out
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name))
    {
        let Some(v) = value(a.state_value()) else {
            return Err(AwsError::bad_request(
                "cloudwatch",
                "DescribeAlarms",
                name,
                "the alarm has no state CloudWatch documents",
            ));
        };
        return Ok(Some(AlarmState {
            treat_missing_data: a.treat_missing_data().and_then(MissingData::parse),
            ..AlarmState::plain(v)
        }));
    }
    if let Some(a) = out
        .composite_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name))
    {
        let Some(v) = value(a.state_value()) else {
            return Err(AwsError::bad_request(
                "cloudwatch",
                "DescribeAlarms",
                name,
                "the alarm has no state CloudWatch documents",
            ));
        };
        return Ok(Some(AlarmState {
            value: v,
            treat_missing_data: None,
            composite: true,
            actions_suppressed_by: a.actions_suppressed_by().map(|b| b.as_str().to_string()),
            actions_suppressed_reason: a.actions_suppressed_reason().map(str::to_string),
        }));
    }
    Ok(None)
}

/// A TCP connection to `host:port` within `timeout_seconds`.
pub async fn probe(host: &str, port: u16, timeout_seconds: u32) -> ProbeObservation {
    let budget = StdDuration::from_secs(u64::from(timeout_seconds.max(1)));
    let failure =
        match tokio::time::timeout(budget, tokio::net::TcpStream::connect((host, port))).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no connection within {timeout_seconds} s")),
        };
    ProbeObservation {
        host: host.to_string(),
        port,
        failure,
    }
}
