//! The demo world a DR plan describes, created in the local AWS: the protected databases
//! and table in the primary region, the DR replicas, the Route 53 zone and records, the
//! health and gate alarms, the KMS keys copies are encrypted with, and Lifeboat's own
//! control plane (state table, SNS topic, report bucket). Creating it twice changes
//! nothing: every step first looks for what it would create.
//!
//! The local AWS takes time as AWS does (an instance is `creating` for minutes, a Route 53
//! change `PENDING`), so the world is built in the order AWS allows: the primaries, then
//! (once they are available) their replicas, then (once those have endpoints) the DNS
//! records. How it waits is the caller's choice ([`Settle`]): tests move the account's
//! emulated clock, the drill waits in real (compressed) time and measures each wait.

use crate::local::Account;
use crate::timing::{StepTiming, poll_until, wall_now};
use aws_sdk_cloudwatch::types::{ComparisonOperator, StandardUnit, StateValue, Statistic};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    ScalarAttributeType, SseSpecification, TimeToLiveSpecification,
};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use lifeboat::aws::{AwsClients, STATE_TABLE_TTL_ATTRIBUTE, resolve_hosted_zone};
use lifeboat::error::AwsError;
use lifeboat::plan::{Plan, ProtectedResource, ResourceKind};
use std::time::Duration;

/// Master password of the emulated databases. The emulator holds no data and this never
/// reaches AWS; a real deployment's credentials live in Secrets Manager.
const EMULATED_MASTER_PASSWORD: &str = "emulated-only-not-a-secret";

/// Names of Lifeboat's own resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlane {
    /// DynamoDB state table.
    pub state_table: String,
    /// SNS topic name.
    pub topic_name: String,
    /// S3 report bucket.
    pub report_bucket: String,
}

impl ControlPlane {
    /// The names the local stack uses for `plan` in `account`. Bucket names are global
    /// (in AWS and in the emulator), so they carry the account id.
    pub fn for_plan(plan: &Plan, account: &Account) -> Self {
        ControlPlane {
            state_table: format!("{}-state", plan.name),
            topic_name: format!("{}-events", plan.name),
            report_bucket: format!("{}-reports-{}", plan.name, account.id),
        }
    }
}

/// `plan` as it is used in `account`: in a test account, its DynamoDB export bucket is
/// named for the account, since bucket names are global and every test account needs its
/// own. The default account (the drill's) uses the plan as written.
pub fn plan_in_account(plan: &Plan, account: &Account) -> Plan {
    let mut plan = plan.clone();
    if account.id == crate::local::DEFAULT_ACCOUNT {
        return plan;
    }
    if let Some(bucket) = &plan.snapshots.dynamodb_export_bucket {
        let suffix = format!("-{}", account.id);
        if !bucket.ends_with(&suffix) {
            plan.snapshots.dynamodb_export_bucket = Some(format!("{bucket}{suffix}"));
        }
    }
    plan
}

/// What was created, for the caller to wire functions to.
#[derive(Debug, Clone)]
pub struct World {
    /// The clients of the account the world lives in.
    pub clients: AwsClients,
    /// The control plane's names.
    pub control: ControlPlane,
    /// The SNS topic's ARN.
    pub topic_arn: String,
    /// The hosted zone's id.
    pub zone_id: String,
}

impl World {
    /// The environment a function needs to run against this world (for
    /// `cargo lambda watch`, or `Settings::from_lookup` in tests).
    pub fn function_env(&self, plan_path: &str, endpoint: &str) -> Vec<(String, String)> {
        [
            ("LIFEBOAT_PLAN_PATH", plan_path.to_string()),
            ("LIFEBOAT_STATE_TABLE", self.control.state_table.clone()),
            ("LIFEBOAT_TOPIC_ARN", self.topic_arn.clone()),
            ("LIFEBOAT_REPORT_BUCKET", self.control.report_bucket.clone()),
            ("AWS_REGION", self.clients.dr.region.clone()),
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            // The failback function a game day starts the failback with.
            ("LIFEBOAT_FAILBACK_FUNCTION", "failback".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// A failure while building the world.
pub type WorldError = String;

type SdkFailure<E> = SdkError<E, HttpResponse>;

fn aws<E>(
    service: &'static str,
    op: &'static str,
    what: &str,
) -> impl FnOnce(SdkFailure<E>) -> WorldError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let what = what.to_string();
    move |e| AwsError::from_sdk(service, op, what, &e).to_string()
}

/// `Ok` when the call succeeded or failed only because the thing already exists.
fn tolerate_exists<T, E>(
    result: Result<T, SdkFailure<E>>,
    service: &'static str,
    op: &'static str,
    what: &str,
    exists_codes: &[&str],
) -> Result<(), WorldError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = AwsError::from_sdk(service, op, what, &e);
            if exists_codes.iter().any(|c| err.is_code(c)) {
                Ok(())
            } else {
                Err(err.to_string())
            }
        }
    }
}

/// How world creation waits for what it created to become available.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    /// Move the account's emulated clock past every transition (tests: no sleeping).
    AdvanceClock,
    /// Poll the resources as Lifeboat would, in real (compressed) time, and measure each
    /// wait (the drill).
    Poll {
        /// Between two polls.
        interval: Duration,
        /// Give up after this long.
        timeout: Duration,
    },
}

/// Create (or find) everything `plan` protects and everything Lifeboat itself needs, in
/// `account`, and return once it is all available (the account's clock is advanced).
pub async fn create_world(account: &Account, plan: &Plan) -> Result<World, WorldError> {
    create_world_with(account, plan, &Settle::AdvanceClock)
        .await
        .map(|(world, _)| world)
}

/// [`create_world`], waiting as `settle` says; with [`Settle::Poll`], also how long each
/// wait took, split into AWS's time and the polling gap.
pub async fn create_world_with(
    account: &Account,
    plan: &Plan,
    settle: &Settle,
) -> Result<(World, Vec<StepTiming>), WorldError> {
    let clients = account.clients(plan).await;
    let control = ControlPlane::for_plan(plan, account);
    let mut waits = Vec::new();
    create_kms_keys(&clients, plan).await?;

    let began = wall_now();
    let mut primaries = Vec::new();
    for r in &plan.resources {
        primaries.extend(create_primary(&clients, plan, r).await?);
    }
    waits.extend(wait_available(account, &clients, settle, &primaries, began).await?);

    let began = wall_now();
    let mut replicas = Vec::new();
    for r in &plan.resources {
        replicas.extend(create_replica(&clients, account, plan, r).await?);
    }
    waits.extend(wait_available(account, &clients, settle, &replicas, began).await?);

    let (zone_id, change) = create_zone_and_records(&clients, plan).await?;
    if let Some(change_id) = change {
        waits.extend(wait_in_sync(account, &clients, settle, &change_id).await?);
    }
    create_alarms(account, plan).await?;
    let topic_arn = create_control_plane(&clients, plan, &control).await?;
    let world = World {
        clients,
        control,
        topic_arn,
        zone_id,
    };
    Ok((world, waits))
}

/// Something created that must become `available` before the next step.
#[derive(Debug, Clone)]
struct Target {
    region: String,
    cluster: bool,
    id: String,
}

async fn target_status(clients: &AwsClients, t: &Target) -> Result<Option<String>, WorldError> {
    let rds = &clients
        .region(&t.region)
        .ok_or_else(|| format!("no clients for {}", t.region))?
        .rds;
    let facts = if t.cluster {
        lifeboat::aws::describe_cluster(rds, &t.region, &t.id).await
    } else {
        lifeboat::aws::describe_instance(rds, &t.region, &t.id).await
    };
    Ok(facts.map_err(|e| e.to_string())?.map(|f| f.status))
}

async fn wait_available(
    account: &Account,
    clients: &AwsClients,
    settle: &Settle,
    targets: &[Target],
    began: f64,
) -> Result<Vec<StepTiming>, WorldError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut noticed: Vec<Option<f64>> = vec![None; targets.len()];
    match settle {
        Settle::AdvanceClock => {
            account.settle().await.map_err(|e| e.to_string())?;
            for t in targets {
                let status = target_status(clients, t).await?;
                if status.as_deref() != Some("available") {
                    return Err(format!(
                        "{} in {} is {status:?} after the clock passed every transition",
                        t.id, t.region
                    ));
                }
            }
            return Ok(Vec::new());
        }
        Settle::Poll { interval, timeout } => {
            // Poll them together, noting when each was first seen available.
            let started = std::time::Instant::now();
            while noticed.iter().any(Option::is_none) {
                for (i, t) in targets.iter().enumerate() {
                    if noticed[i].is_none()
                        && target_status(clients, t).await?.as_deref() == Some("available")
                    {
                        noticed[i] = Some(wall_now());
                    }
                }
                if noticed.iter().all(Option::is_some) {
                    break;
                }
                if started.elapsed() >= *timeout {
                    let waiting: Vec<&str> = targets
                        .iter()
                        .zip(&noticed)
                        .filter(|(_, n)| n.is_none())
                        .map(|(t, _)| t.id.as_str())
                        .collect();
                    return Err(format!(
                        "gave up after {:.0} s waiting for {} to become available",
                        timeout.as_secs_f64(),
                        waiting.join(", ")
                    ));
                }
                tokio::time::sleep(*interval).await;
            }
        }
    }
    let transitions = account.transitions().await.map_err(|e| e.to_string())?;
    Ok(targets
        .iter()
        .zip(noticed)
        .map(|(t, seen)| {
            let kind = if t.cluster {
                "db-cluster"
            } else {
                "db-instance"
            };
            let steps: Vec<_> = transitions
                .of(&t.id)
                .into_iter()
                .filter(|x| {
                    x.region == t.region
                        && x.resource_type == kind
                        && x.started_at_wall >= began - 0.05
                })
                .collect();
            StepTiming::from_transitions(
                format!(
                    "{} {} available",
                    if t.cluster { "cluster" } else { "instance" },
                    t.id
                ),
                &steps,
                // The wait starts when AWS starts: the calls before it are not polling.
                None,
                seen.unwrap_or_else(wall_now),
                transitions.time_scale,
            )
        })
        .collect())
}

async fn wait_in_sync(
    account: &Account,
    clients: &AwsClients,
    settle: &Settle,
    change_id: &str,
) -> Result<Vec<StepTiming>, WorldError> {
    let in_sync = || async {
        let change = clients
            .route53
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(aws("route53", "GetChange", change_id))?;
        Ok::<_, WorldError>(
            change
                .change_info()
                .is_some_and(|c| c.status() == &aws_sdk_route53::types::ChangeStatus::Insync),
        )
    };
    let noticed = match settle {
        Settle::AdvanceClock => {
            account.settle().await.map_err(|e| e.to_string())?;
            if !in_sync().await? {
                return Err(format!(
                    "Route 53 change {change_id} is not INSYNC after the clock passed it"
                ));
            }
            return Ok(Vec::new());
        }
        Settle::Poll { interval, timeout } => {
            poll_until(
                &format!("Route 53 change {change_id}"),
                *interval,
                *timeout,
                in_sync,
            )
            .await?
        }
    };
    let transitions = account.transitions().await.map_err(|e| e.to_string())?;
    let id = change_id.trim_start_matches("/change/");
    Ok(vec![StepTiming::from_transitions(
        "Route 53 records INSYNC",
        &transitions.of(id),
        None,
        noticed,
        transitions.time_scale,
    )])
}

async fn create_kms_keys(clients: &AwsClients, plan: &Plan) -> Result<(), WorldError> {
    for d in &plan.snapshots.copy_to {
        let Some(alias) = d.kms_key_id.strip_prefix("alias/") else {
            continue;
        };
        let Some(regional) = clients.region(&d.region) else {
            continue;
        };
        let kms = aws_sdk_kms::Client::new(&regional.config);
        let aliases =
            kms.list_aliases()
                .send()
                .await
                .map_err(aws("kms", "ListAliases", &d.region))?;
        let wanted = format!("alias/{alias}");
        if aliases
            .aliases()
            .iter()
            .any(|a| a.alias_name() == Some(wanted.as_str()))
        {
            continue;
        }
        let key = kms
            .create_key()
            .description(format!("Lifeboat snapshot copies for plan {}", plan.name))
            .send()
            .await
            .map_err(aws("kms", "CreateKey", &d.region))?;
        let key_id = key
            .key_metadata()
            .map(|m| m.key_id().to_string())
            .ok_or("CreateKey returned no key id")?;
        kms.create_alias()
            .alias_name(&wanted)
            .target_key_id(key_id)
            .send()
            .await
            .map_err(aws("kms", "CreateAlias", &wanted))?;
    }
    Ok(())
}

/// Create a protected resource in the primary region; returns what must become available.
async fn create_primary(
    clients: &AwsClients,
    plan: &Plan,
    r: &ProtectedResource,
) -> Result<Vec<Target>, WorldError> {
    let ident = r.aws_identifier();
    let engine = r.engine.map(|e| e.as_str()).unwrap_or("postgres");
    let instance = |id: &str| Target {
        region: plan.regions.primary.clone(),
        cluster: false,
        id: id.to_string(),
    };
    match r.kind {
        ResourceKind::RdsInstance => {
            tolerate_exists(
                clients
                    .primary
                    .rds
                    .create_db_instance()
                    .db_instance_identifier(ident)
                    .engine(engine)
                    .db_instance_class("db.t4g.micro")
                    .allocated_storage(20)
                    .master_username("lifeboat_admin")
                    .master_user_password(EMULATED_MASTER_PASSWORD)
                    .storage_encrypted(true)
                    .backup_retention_period(7)
                    .send()
                    .await,
                "rds",
                "CreateDBInstance",
                ident,
                &["DBInstanceAlreadyExists"],
            )?;
            Ok(vec![instance(ident)])
        }
        ResourceKind::AuroraCluster => {
            // Looked up first: the emulator answers a second CreateDBCluster with a
            // misleading snapshot error instead of DBClusterAlreadyExistsFault.
            let exists =
                lifeboat::aws::describe_cluster(&clients.primary.rds, &plan.regions.primary, ident)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some();
            if !exists {
                clients
                    .primary
                    .rds
                    .create_db_cluster()
                    .db_cluster_identifier(ident)
                    .engine(engine)
                    .master_username("lifeboat_admin")
                    .master_user_password(EMULATED_MASTER_PASSWORD)
                    .storage_encrypted(true)
                    .backup_retention_period(7)
                    .send()
                    .await
                    .map_err(aws("rds", "CreateDBCluster", ident))?;
            }
            let writer = format!("{ident}-writer");
            tolerate_exists(
                clients
                    .primary
                    .rds
                    .create_db_instance()
                    .db_instance_identifier(&writer)
                    .db_cluster_identifier(ident)
                    .engine(engine)
                    .db_instance_class("db.r6g.large")
                    .send()
                    .await,
                "rds",
                "CreateDBInstance",
                &writer,
                &["DBInstanceAlreadyExists"],
            )?;
            Ok(vec![
                Target {
                    region: plan.regions.primary.clone(),
                    cluster: true,
                    id: ident.to_string(),
                },
                instance(&writer),
            ])
        }
        ResourceKind::DynamodbTable => {
            let created = clients
                .primary
                .dynamodb
                .create_table()
                .table_name(ident)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("id")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("id")
                        .key_type(KeyType::Hash)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .billing_mode(BillingMode::PayPerRequest)
                .sse_specification(SseSpecification::builder().enabled(true).build())
                .send()
                .await;
            tolerate_exists(
                created,
                "dynamodb",
                "CreateTable",
                ident,
                &["ResourceInUseException"],
            )?;
            clients
                .primary
                .dynamodb
                .update_continuous_backups()
                .table_name(ident)
                .point_in_time_recovery_specification(
                    PointInTimeRecoverySpecification::builder()
                        .point_in_time_recovery_enabled(true)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .send()
                .await
                .map_err(aws("dynamodb", "UpdateContinuousBackups", ident))?;
            // A new on-demand table is ACTIVE at once in the emulator (see README).
            Ok(Vec::new())
        }
    }
}

/// Create a resource's DR replica (its source must be available by now); returns what
/// must become available.
async fn create_replica(
    clients: &AwsClients,
    account: &Account,
    plan: &Plan,
    r: &ProtectedResource,
) -> Result<Vec<Target>, WorldError> {
    let (ResourceKind::RdsInstance, Some(replica)) = (r.kind, &r.replica) else {
        return Ok(Vec::new());
    };
    let source_arn = account.arn(
        "rds",
        &plan.regions.primary,
        &format!("db:{}", r.aws_identifier()),
    );
    tolerate_exists(
        clients
            .dr
            .rds
            .create_db_instance_read_replica()
            .db_instance_identifier(&replica.identifier)
            .source_db_instance_identifier(source_arn)
            .db_instance_class("db.t4g.micro")
            .send()
            .await,
        "rds",
        "CreateDBInstanceReadReplica",
        &replica.identifier,
        &["DBInstanceAlreadyExists"],
    )?;
    Ok(vec![Target {
        region: plan.regions.dr.clone(),
        cluster: false,
        id: replica.identifier.clone(),
    }])
}

fn cname(
    name: &str,
    target: &str,
    ttl: u32,
    weight: Option<(&str, i64)>,
) -> Result<Change, WorldError> {
    let mut set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(i64::from(ttl))
        .resource_records(
            ResourceRecord::builder()
                .value(target)
                .build()
                .map_err(|e| e.to_string())?,
        );
    if let Some((id, w)) = weight {
        set = set.set_identifier(id).weight(w);
    }
    Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(set.build().map_err(|e| e.to_string())?)
        .build()
        .map_err(|e| e.to_string())
}

/// The zone's id, and the id of the change that wrote the records (to wait for INSYNC).
async fn create_zone_and_records(
    clients: &AwsClients,
    plan: &Plan,
) -> Result<(String, Option<String>), WorldError> {
    let zone_id = match resolve_hosted_zone(&clients.route53, &plan.dns)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(id) => id,
        None => {
            let name = plan
                .dns
                .hosted_zone_name
                .clone()
                .ok_or("the plan names its zone by id, which the emulator cannot create; use hosted_zone_name")?;
            let created = clients
                .route53
                .create_hosted_zone()
                .name(&name)
                .caller_reference(format!("lifeboat-{}", plan.name))
                .send()
                .await
                .map_err(aws("route53", "CreateHostedZone", &name))?;
            created
                .hosted_zone()
                .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
                .ok_or("CreateHostedZone returned no zone")?
        }
    };
    let ttl = plan.dns.record_ttl_seconds;
    let mut changes = Vec::new();
    for r in &plan.resources {
        let Some(record) = &r.dns_record else {
            continue;
        };
        let endpoint = match r.kind {
            ResourceKind::RdsInstance => lifeboat::aws::describe_instance(
                &clients.primary.rds,
                &plan.regions.primary,
                r.aws_identifier(),
            )
            .await
            .map_err(|e| e.to_string())?
            .and_then(|f| f.endpoint),
            ResourceKind::AuroraCluster => lifeboat::aws::describe_cluster(
                &clients.primary.rds,
                &plan.regions.primary,
                r.aws_identifier(),
            )
            .await
            .map_err(|e| e.to_string())?
            .and_then(|f| f.endpoint),
            ResourceKind::DynamodbTable => None,
        };
        let endpoint =
            endpoint.ok_or_else(|| format!("{} has no endpoint to point {record} at", r.id))?;
        changes.push(cname(record, &endpoint, ttl, None)?);
    }
    for t in &plan.failback.traffic {
        changes.push(cname(
            &t.name,
            &t.primary_target,
            ttl,
            Some(("primary", 100)),
        )?);
        changes.push(cname(&t.name, &t.dr_target, ttl, Some(("dr", 0)))?);
    }
    if changes.is_empty() {
        return Ok((zone_id, None));
    }
    let written = clients
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .comment("Lifeboat demo world")
                .set_changes(Some(changes))
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(aws("route53", "ChangeResourceRecordSets", &zone_id))?;
    let change = written.change_info().map(|c| c.id().to_string());
    Ok((zone_id, change))
}

async fn create_alarms(account: &Account, plan: &Plan) -> Result<(), WorldError> {
    let alarms = plan
        .failover
        .health_alarms
        .iter()
        .chain(plan.failback.gate_alarms.iter())
        .chain(plan.game_days.stop_condition_alarms.iter());
    for alarm in alarms {
        let region = plan.alarm_region(alarm);
        let cw = account.regional(region).await.cloudwatch;
        // PutMetricAlarm is an upsert in AWS; a new alarm starts in INSUFFICIENT_DATA.
        cw.put_metric_alarm()
            .alarm_name(&alarm.name)
            .alarm_description(format!("Lifeboat demo alarm for plan {}", plan.name))
            .namespace("Lifeboat/Local")
            .metric_name("Healthy")
            .statistic(Statistic::Minimum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .unit(StandardUnit::Count)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .send()
            .await
            .map_err(aws("cloudwatch", "PutMetricAlarm", &alarm.name))?;
        // The demo world is healthy: the alarm's first evaluation of its metric would
        // find it OK. The emulator evaluates no alarm, so the world says it.
        cw.set_alarm_state()
            .alarm_name(&alarm.name)
            .state_value(StateValue::Ok)
            .state_reason("first evaluation: the demo world is healthy")
            .send()
            .await
            .map_err(aws("cloudwatch", "SetAlarmState", &alarm.name))?;
    }
    Ok(())
}

async fn create_bucket(
    s3: &aws_sdk_s3::Client,
    region: &str,
    bucket: &str,
) -> Result<(), WorldError> {
    let mut create = s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    tolerate_exists(
        create.send().await,
        "s3",
        "CreateBucket",
        bucket,
        // BucketAlreadyExists means another account owns the name: that is an error.
        &["BucketAlreadyOwnedByYou"],
    )?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::Aes256)
                                .build()
                                .map_err(|e| e.to_string())?,
                        )
                        .build(),
                )
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(aws("s3", "PutBucketEncryption", bucket))?;
    Ok(())
}

async fn create_control_plane(
    clients: &AwsClients,
    plan: &Plan,
    control: &ControlPlane,
) -> Result<String, WorldError> {
    let home = &clients.home;
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let created = home
        .dynamodb
        .create_table()
        .table_name(&control.state_table)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await;
    tolerate_exists(
        created,
        "dynamodb",
        "CreateTable",
        &control.state_table,
        &["ResourceInUseException"],
    )?;
    let ttl = home
        .dynamodb
        .describe_time_to_live()
        .table_name(&control.state_table)
        .send()
        .await
        .map_err(aws("dynamodb", "DescribeTimeToLive", &control.state_table))?;
    let ttl_on = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .is_some_and(|s| s.as_str() == "ENABLED");
    if !ttl_on {
        home.dynamodb
            .update_time_to_live()
            .table_name(&control.state_table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(STATE_TABLE_TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(aws("dynamodb", "UpdateTimeToLive", &control.state_table))?;
    }
    let topic = home
        .sns
        .create_topic()
        .name(&control.topic_name)
        .attributes("KmsMasterKeyId", "alias/aws/sns")
        .send()
        .await
        .map_err(aws("sns", "CreateTopic", &control.topic_name))?;
    let topic_arn = topic
        .topic_arn()
        .ok_or("CreateTopic returned no ARN")?
        .to_string();
    create_bucket(&home.s3, &home.region, &control.report_bucket).await?;
    if let Some(exports) = &plan.snapshots.dynamodb_export_bucket {
        create_bucket(&clients.dr.s3, &clients.dr.region, exports).await?;
    }
    Ok(topic_arn)
}
