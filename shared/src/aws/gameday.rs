//! The game-day port on AWS: CloudWatch (stop conditions, the signal-only fault), FIS
//! (the experiment), RDS and Route 53 (the DR writer, protection), the database itself
//! (the canary), S3 (past reports) and Lambda (the failback function's `start`).

use super::canary_writer::{CanaryError, write_canary};
use super::dr::{DrAws, identifier_on};
use super::{
    AwsClients, AwsValidation, ClientSettings, LocalDatabaseError, ProbeTargetError, SqlProbe,
};
use crate::dr::Side;
use crate::error::AwsError;
use crate::failover::AlarmValue;
use crate::gameday::run::GameDayPort;
use crate::gameday::verify::{canary_sql, dr_writers, protected};
use crate::gameday::{CanaryResult, GameDayReport, Injection, Verification};
use crate::plan::{AlarmRef, Canary, Plan, ProtectedResource};
use crate::posture::{Observed, PostureFacts, RecordFacts, ResourceFacts};
use crate::validation::Endpoint;
use crate::validation::run::{DatabaseProbe, ProbeTarget};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::StateValue;
use std::time::Duration;

/// The failback function's name or ARN, which a game day starts the failback with.
pub const FAILBACK_FUNCTION_ENV: &str = "LIFEBOAT_FAILBACK_FUNCTION";
/// The FIS experiment template a `fis` game day runs when the plan names none.
pub const FIS_TEMPLATE_ENV: &str = "LIFEBOAT_FIS_TEMPLATE_ID";
/// Where Lambda's Invoke API is, when not AWS's (the SDK's own per-service variable).
pub const LAMBDA_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_LAMBDA";

/// How long the failback function's asynchronous start may take to be acknowledged.
const START_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the canary's statements (and the connection through a writer record) may
/// take, each.
const CANARY_TIMEOUT: Duration = Duration::from_secs(10);

/// Game days on AWS.
#[derive(Debug)]
pub struct AwsGameDay {
    aws: DrAws,
    validation: AwsValidation,
    fis: aws_sdk_fis::Client,
    lambda: aws_sdk_lambda::Client,
    s3: aws_sdk_s3::Client,
    bucket: String,
    failback_function: Option<String>,
    fis_template: Option<String>,
}

impl AwsGameDay {
    /// The adapter for `plan`: FIS in the primary region (an experiment runs where its
    /// targets are), Lambda and the report bucket in the function's own region, and the
    /// settings read through `lookup` ([`FAILBACK_FUNCTION_ENV`], [`FIS_TEMPLATE_ENV`],
    /// [`LAMBDA_ENDPOINT_ENV`], and the validation probe's local-only database mapping).
    pub async fn new(
        plan: &Plan,
        clients: &AwsClients,
        settings: &ClientSettings,
        report_bucket: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, LocalDatabaseError> {
        let setting = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        // Locally the functions run under `cargo lambda watch`, which serves Lambda's
        // Invoke API: the standard per-service endpoint variable points there.
        let mut lambda = aws_sdk_lambda::config::Builder::from(&clients.home.config);
        if let Some(url) = setting(LAMBDA_ENDPOINT_ENV) {
            lambda = lambda.endpoint_url(url);
        }
        Ok(AwsGameDay {
            aws: DrAws::new(plan, clients, settings).await,
            validation: AwsValidation::new(plan, clients, settings, lookup)?,
            fis: aws_sdk_fis::Client::new(&clients.primary.config),
            lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
            s3: clients.home.s3.clone(),
            bucket: report_bucket.to_string(),
            failback_function: setting(FAILBACK_FUNCTION_ENV),
            fis_template: setting(FIS_TEMPLATE_ENV),
        })
    }

    fn cloudwatch(
        &self,
        plan: &Plan,
        alarm: &AlarmRef,
    ) -> Result<&aws_sdk_cloudwatch::Client, AwsError> {
        let region = plan.alarm_region(alarm);
        self.aws.alarm_client(region).ok_or_else(|| {
            AwsError::bad_request(
                "cloudwatch",
                "SetAlarmState",
                &alarm.name,
                format!("no CloudWatch client for the alarm's region {region}"),
            )
        })
    }

    async fn set_alarms(
        &self,
        plan: &Plan,
        alarms: &[AlarmRef],
        value: StateValue,
        reason: &str,
    ) -> Result<(), AwsError> {
        for alarm in alarms {
            self.cloudwatch(plan, alarm)?
                .set_alarm_state()
                .alarm_name(&alarm.name)
                .state_value(value.clone())
                .state_reason(reason)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("cloudwatch", "SetAlarmState", &alarm.name, &e))?;
        }
        Ok(())
    }

    /// The posture of the replicated resources: both sides and the writer record.
    async fn posture(&self, plan: &Plan) -> PostureFacts {
        let mut resources = Vec::new();
        for r in plan.resources.iter().filter(|r| r.replica.is_some()) {
            let (primary, _) = self.aws.read_database(plan, r, Side::Primary).await;
            let (replica, _) = self.aws.read_database(plan, r, Side::Dr).await;
            let record = self.aws.read_record(plan, r).await.map(|o| match o {
                Observed::Present(values) => Observed::Present(RecordFacts {
                    name: r.dns_record.clone().unwrap_or_default(),
                    values: values.into_iter().map(|v| (v, None)).collect(),
                }),
                Observed::Missing => Observed::Missing,
                Observed::Unknown { reason } => Observed::Unknown { reason },
            });
            resources.push(ResourceFacts {
                id: r.id.clone(),
                primary,
                replica: Some(replica),
                record,
            });
        }
        PostureFacts {
            resources,
            zone: Observed::Missing,
            traffic: Vec::new(),
            failover_state: Observed::Missing,
        }
    }

    /// Where a SQL client reaches `r`'s writer: the plan's writer record (in AWS the
    /// record is what applications use, so answering through it proves the switch) on
    /// the DR writer's port, as the user of `secret` (the validation credentials unless
    /// the canary names its own).
    async fn writer_target(
        &self,
        r: &ProtectedResource,
        secret: Option<&str>,
    ) -> Result<ProbeTarget, ProbeTargetError> {
        let resource = || r.id.clone();
        let engine = r.engine.ok_or_else(|| ProbeTargetError::NoEngine {
            resource: resource(),
        })?;
        let v = r
            .validation
            .as_ref()
            .ok_or_else(|| ProbeTargetError::NoCredentials {
                resource: resource(),
            })?;
        let host = r
            .dns_record
            .clone()
            .ok_or_else(|| ProbeTargetError::NoWriterRecord {
                resource: resource(),
            })?;
        let port = self
            .replica_port(r)
            .await
            .unwrap_or(if engine.is_postgres_family() {
                5432
            } else {
                3306
            });
        self.validation
            .target(
                &r.id,
                engine,
                Some(&Endpoint { host, port }),
                &v.database,
                secret.unwrap_or(&v.credentials_secret),
            )
            .await
    }

    /// Connect to each replicated SQL database through its writer record (with the
    /// plan's validation credentials, in a read-only session): whether every one
    /// answered, and what each did.
    async fn answer_through_records(&self, plan: &Plan) -> (bool, Vec<String>) {
        let mut answered = true;
        let mut details = Vec::new();
        for r in plan.resources.iter().filter(|r| {
            r.replica.is_some()
                && r.dns_record.is_some()
                && r.engine.is_some()
                && r.validation.is_some()
        }) {
            let record = r.dns_record.as_deref().unwrap_or_default();
            let failures = match self.writer_target(r, None).await {
                Ok(target) => SqlProbe.probe(&target, &[], CANARY_TIMEOUT).await,
                Err(e) => {
                    answered = false;
                    details.push(format!("{}: {e}", r.id));
                    continue;
                }
            };
            if failures.is_empty() {
                details.push(format!("{} answered SQL through {record}", r.id));
            } else {
                answered = false;
                let why: Vec<String> = failures.into_iter().map(|f| f.detail).collect();
                details.push(format!(
                    "{} did NOT answer through {record}: {}",
                    r.id,
                    why.join("; ")
                ));
            }
        }
        (answered, details)
    }

    async fn canary(&self, plan: &Plan, canary: &Canary, row: &str) -> Result<(), CanaryError> {
        let r = plan
            .resource(&canary.resource)
            .ok_or_else(|| ProbeTargetError::NotInPlan {
                resource: canary.resource.clone(),
            })?;
        // The canary's own writing user when the plan names one; the checks' read-only
        // user could not write the row.
        let target = self
            .writer_target(r, canary.credentials_secret.as_deref())
            .await?;
        let sql = canary_sql(target.dialect, &canary.table)?;
        match tokio::time::timeout(
            CANARY_TIMEOUT * 3,
            write_canary(&target, &sql, row, CANARY_TIMEOUT),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(CanaryError::TimedOut {
                seconds: (CANARY_TIMEOUT * 3).as_secs(),
            }),
        }
    }

    /// The DR writer's port, as RDS reports it.
    async fn replica_port(&self, r: &ProtectedResource) -> Option<u16> {
        let id = identifier_on(r, Side::Dr);
        let rds = &self.aws.side(Side::Dr).rds;
        match r.kind {
            crate::plan::ResourceKind::AuroraCluster => {
                let out = rds
                    .describe_db_clusters()
                    .db_cluster_identifier(id)
                    .send()
                    .await
                    .ok()?;
                u16::try_from(out.db_clusters().first()?.port()?).ok()
            }
            _ => {
                let db = super::posture::fetch_instance(rds, id).await.ok()??;
                u16::try_from(db.endpoint()?.port()?).ok()
            }
        }
    }
}

#[async_trait]
impl GameDayPort for AwsGameDay {
    async fn stop_alarms_firing(&self, plan: &Plan) -> Vec<String> {
        self.aws
            .read_alarms(plan, &plan.game_days.stop_condition_alarms)
            .await
            .into_iter()
            .filter_map(|a| match a.value {
                Some(AlarmValue::Alarm) => Some(a.name),
                Some(_) => None,
                None => Some(format!("{} (could not be read)", a.name)),
            })
            .collect()
    }

    async fn primary_not_ready(&self, plan: &Plan) -> Vec<String> {
        let mut not_ready: Vec<String> = self
            .aws
            .read_alarms(plan, &plan.failover.health_alarms)
            .await
            .into_iter()
            .filter_map(|a| match a.value {
                Some(AlarmValue::Ok) => None,
                Some(_) => Some(a.name),
                None => Some(format!("{} (could not be read)", a.name)),
            })
            .collect();
        for r in plan.resources.iter().filter(|r| r.replica.is_some()) {
            if let (Observed::Unknown { .. }, _) =
                self.aws.read_database(plan, r, Side::Primary).await
            {
                not_ready.push(format!(
                    "{} in {} (the primary region does not answer)",
                    r.aws_identifier(),
                    plan.regions.primary
                ));
            }
        }
        not_ready
    }

    async fn protected(&self, plan: &Plan) -> Result<bool, AwsError> {
        Ok(protected(plan, &self.posture(plan).await))
    }

    async fn history(&self, plan: &Plan, limit: usize) -> Result<Vec<GameDayReport>, AwsError> {
        let prefix = format!("{}/gameday/", plan.name);
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("s3", "ListObjectsV2", &prefix, &e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            token = out.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        // Keys sort by day and time: the newest are last.
        keys.sort();
        let mut reports = Vec::new();
        for key in keys.iter().rev().take(limit) {
            let out = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("s3", "GetObject", key, &e))?;
            let bytes = match out.body.collect().await {
                Ok(b) => b.into_bytes(),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "past game-day report not read");
                    continue;
                }
            };
            match serde_json::from_slice::<GameDayReport>(&bytes) {
                Ok(r) => reports.push(r),
                // A report of an older format, or not one at all: the trend goes without.
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "not a game-day report; left out of the trend")
                }
            }
        }
        Ok(reports)
    }

    async fn inject(
        &self,
        plan: &Plan,
        game_day: &str,
        injection: &Injection,
    ) -> Result<Option<String>, AwsError> {
        match injection {
            Injection::SignalOnly { alarms } => {
                self.set_alarms(
                    plan,
                    alarms,
                    StateValue::Alarm,
                    &format!("Lifeboat game day {game_day}: signal-only injection"),
                )
                .await?;
                Ok(None)
            }
            Injection::Fis {
                experiment_template_id,
            } => {
                let template = experiment_template_id
                    .clone()
                    .or_else(|| self.fis_template.clone())
                    .ok_or_else(|| {
                        AwsError::bad_request(
                            "fis",
                            "StartExperiment",
                            game_day,
                            format!(
                                "no FIS experiment template: deploy primary-region.yaml with GameDayStopAlarmName and pass its GameDayExperimentTemplateId output to the template (it sets {FIS_TEMPLATE_ENV}), or name one in game_days.injection; or run the game day with \"mode\": \"signal_only\""
                            ),
                        )
                    })?;
                let out = self
                    .fis
                    .start_experiment()
                    .experiment_template_id(&template)
                    // The game day's id: a retried call starts no second experiment.
                    .client_token(game_day)
                    .tags("lifeboat:plan", &plan.name)
                    .tags("lifeboat:game-day", game_day)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("fis", "StartExperiment", &template, &e))?;
                Ok(out.experiment().and_then(|e| e.id()).map(str::to_string))
            }
        }
    }

    async fn stop_injection(
        &self,
        plan: &Plan,
        game_day: &str,
        injection: &Injection,
        experiment_id: Option<&str>,
    ) -> Result<(), AwsError> {
        match injection {
            Injection::SignalOnly { alarms } => {
                self.set_alarms(
                    plan,
                    alarms,
                    StateValue::Ok,
                    &format!("Lifeboat game day {game_day}: injection over"),
                )
                .await
            }
            Injection::Fis { .. } => {
                let Some(id) = experiment_id else {
                    // No experiment was confirmed: nothing runs to be stopped.
                    return Ok(());
                };
                let Err(e) = self.fis.stop_experiment().id(id).send().await else {
                    return Ok(());
                };
                let err = AwsError::from_sdk("fis", "StopExperiment", id, &e);
                // An experiment that already ended is what was asked for.
                let ended = self
                    .fis
                    .get_experiment()
                    .id(id)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.experiment)
                    .and_then(|e| e.state)
                    .and_then(|s| s.status)
                    .is_some_and(|s| {
                        use aws_sdk_fis::types::ExperimentStatus as S;
                        matches!(s, S::Completed | S::Stopped | S::Failed | S::Cancelled)
                    });
                if ended { Ok(()) } else { Err(err) }
            }
        }
    }

    async fn verify(&self, plan: &Plan, canary: Option<&Canary>, canary_row: &str) -> Verification {
        let writers = dr_writers(plan, &self.posture(plan).await);
        let (sql_answered, sql_details) = self.answer_through_records(plan).await;
        let mut detail = writers
            .details
            .iter()
            .chain(sql_details.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let canary = match canary {
            None => CanaryResult::NotConfigured,
            Some(c) => match self.canary(plan, c, canary_row).await {
                Ok(()) => {
                    detail.push_str(&format!(
                        "; canary row {canary_row} written to and read back from {} on {}",
                        c.table, c.resource
                    ));
                    CanaryResult::Ok
                }
                Err(e) => {
                    let reason = e.to_string();
                    detail.push_str(&format!("; canary failed: {reason}"));
                    CanaryResult::Failed { reason }
                }
            },
        };
        Verification {
            endpoint_answered: writers.answered && sql_answered,
            canary,
            detail,
        }
    }

    async fn start_failback(&self, _plan: &Plan, game_day: &str) -> Result<bool, AwsError> {
        let function = self.failback_function.as_deref().ok_or_else(|| {
            AwsError::bad_request(
                "lambda",
                "Invoke",
                game_day,
                format!("{FAILBACK_FUNCTION_ENV} is not set: the SAM template sets it to the failback function"),
            )
        })?;
        // Asynchronously: the failback runs in its own function, with its own rights,
        // and its ticks carry it on; the game day follows it in the DR document. Lambda
        // answers an asynchronous invoke at once, so a short wait suffices, and the
        // request is not sent twice (a duplicate start would only be refused).
        let sent = self
            .lambda
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_smithy_types::Blob::new(
                br#"{"action": "start"}"#.to_vec(),
            ))
            .customize()
            .config_override(
                aws_sdk_lambda::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .operation_timeout(START_ACK_TIMEOUT)
                            .build(),
                    ),
            )
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            // Sent, not acknowledged: `cargo lambda watch` runs every invocation to its
            // end before answering, where Lambda would have answered 202 at once.
            Err(aws_sdk_lambda::error::SdkError::TimeoutError(_)) => Ok(false),
            Err(e) => Err(AwsError::from_sdk("lambda", "Invoke", function, &e)),
        }
    }
}
