//! What several tests share.

use aws_sdk_cloudwatch::types::StateValue;
use harness::{Account, LocalAws, World, create_world};
use lifeboat::aws::{DynamoStateStore, S3Reports, SnsNotifier};
use lifeboat::function::Invocation;
use lifeboat::plan::{Plan, parse_plan};

/// The local stack's plan.
pub fn local_plan() -> Plan {
    parse_plan(include_str!("../../infra/plans/local.json")).expect("local plan")
}

/// The local plan as an operator may well write it: the AWS identifiers of its RDS
/// instance, cluster and replica in mixed case. RDS keeps identifiers in lower case, so
/// the world made from the local plan is what this plan names.
pub fn mixed_case_plan() -> Plan {
    let mut p: serde_json::Value =
        serde_json::from_str(include_str!("../../infra/plans/local.json")).expect("local plan");
    p["resources"][0]["identifier"] = "Orders-DB".into();
    p["resources"][0]["replica"]["identifier"] = "Orders-DB-DR".into();
    p["resources"][1]["identifier"] = "BILLING-db".into();
    parse_plan(&p.to_string()).expect("a mixed-case plan is a valid plan")
}

/// A fresh account with the local plan's whole world in it.
pub async fn world() -> (Account, Plan, World) {
    let account = LocalAws::from_env().fresh_account();
    let plan = harness::plan_in_account(&local_plan(), &account);
    let world = create_world(&account, &plan)
        .await
        .unwrap_or_else(|e| panic!("creating the demo world: {e}"));
    (account, plan, world)
}

/// The state store on the world's table.
pub fn state_store(world: &World) -> DynamoStateStore {
    DynamoStateStore::new(
        world.clients.home.dynamodb.clone(),
        &world.control.state_table,
    )
}

/// The world's SNS topic, as the functions notify it.
pub fn notifier(world: &World) -> SnsNotifier {
    SnsNotifier::new(world.clients.home.sns.clone(), &world.topic_arn)
}

/// The world's report bucket (SSE-S3), as the functions write to it.
pub fn reports(world: &World) -> S3Reports {
    S3Reports::new(
        world.clients.home.s3.clone(),
        &world.control.report_bucket,
        None,
    )
}

/// An invocation `id` starting now, with Lambda's longest run ahead of it.
pub fn invocation(id: &str) -> Invocation {
    let now = chrono::Utc::now();
    Invocation {
        request_id: id.into(),
        now,
        deadline: now + chrono::Duration::minutes(15),
    }
}

/// A fresh account whose clock moves only when the test moves it (time scale 1: real
/// time, and no step lasts less than a minute), so what a test sees never depends on how
/// fast the machine runs it.
pub async fn frozen_account() -> Account {
    let account = LocalAws::from_env().fresh_account();
    account
        .set_time_scale(1.0)
        .await
        .expect("the control API answers");
    account
}

/// Create an RDS PostgreSQL instance and move the clock until it is available.
pub async fn available_instance(account: &Account, rds: &aws_sdk_rds::Client, id: &str) {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username("admin_user")
        .master_user_password("emulated-only-pw")
        .storage_encrypted(true)
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
}

/// Create an Aurora PostgreSQL cluster and move the clock until it is available.
pub async fn available_cluster(account: &Account, rds: &aws_sdk_rds::Client, id: &str) {
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("admin_user")
        .master_user_password("emulated-only-pw")
        .storage_encrypted(true)
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
}

/// A KMS key in `region`: cross-region copies of encrypted snapshots need one there.
pub async fn kms_key(account: &Account, region: &str) -> String {
    let config = account.settings().sdk_config(region).await;
    aws_sdk_kms::Client::new(&config)
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

/// The AWS error code of a failed call.
pub fn code<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("(no service error)")
        .to_string()
}

/// The duration (AWS seconds) the account uses for `name`.
pub async fn duration(account: &Account, name: &str) -> f64 {
    account.realism_config().await.unwrap().durations[name]
}

/// Set alarm `name` to `value`, as CloudWatch would when its metric crosses.
pub async fn set_alarm(cloudwatch: &aws_sdk_cloudwatch::Client, name: &str, value: StateValue) {
    cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(value)
        .state_reason("set by the test")
        .send()
        .await
        .unwrap();
}

/// Publish `ReplicaLag` datapoints for `instance`, each `(seconds ago, lag)`
/// ([`harness::realism::publish_replica_lag`]); a failure fails the test.
pub async fn put_replica_lag(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    instance: &str,
    points: &[(i64, f64)],
) {
    harness::realism::publish_replica_lag(cloudwatch, instance, points)
        .await
        .unwrap();
}

/// The primary fails as the DR side sees it: the primary region's RDS API stops
/// describing its databases (HTTP 503), while the rest of that region still answers (so
/// the old primary can be fenced). Beside a health alarm in ALARM, this is the second
/// signal the failover's detection needs for its quorum.
pub async fn primary_api_down(account: &harness::Account) {
    account
        .inject(
            harness::realism::Fault::server_error("rds", 503)
                .region("us-east-1")
                .operation("DescribeDBInstances"),
        )
        .await
        .expect("the control API answers");
}

/// The failover function's edges on the world, as its `main.rs` wires them: held here
/// so a test borrows the function from them.
pub struct FailoverEdges {
    /// The plan.
    pub plan: Plan,
    /// The failover's port.
    pub failover: lifeboat::aws::AwsFailover,
    /// The game days' port.
    pub game_days: lifeboat::aws::AwsGameDay,
    /// The world's state table.
    pub state: DynamoStateStore,
    /// The world's SNS topic.
    pub notifier: SnsNotifier,
    /// The world's report bucket.
    pub reports: S3Reports,
}

impl FailoverEdges {
    /// The edges of `plan`'s failover function in `world`, with the account's settings.
    pub async fn new(account: &Account, plan: &Plan, world: &World) -> Self {
        let settings = account.settings();
        FailoverEdges {
            plan: plan.clone(),
            failover: lifeboat::aws::AwsFailover::new(plan, &world.clients, &settings).await,
            game_days: lifeboat::aws::AwsGameDay::new(
                plan,
                &world.clients,
                &settings,
                &world.control.report_bucket,
                &|_| None,
            )
            .await
            .unwrap(),
            state: state_store(world),
            notifier: notifier(world),
            reports: reports(world),
        }
    }

    /// The failover function over these edges, on the wall clock.
    pub fn function(&self) -> lifeboat::aws::FailoverFunction<'_> {
        lifeboat::aws::FailoverFunction {
            plan: &self.plan,
            failover: &self.failover,
            game_days: &self.game_days,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &lifeboat::dr::run::SystemClock,
        }
    }
}

/// The snapshot function's edges on the world, as its `main.rs` wires them.
pub struct SnapshotEdges {
    /// The plan.
    pub plan: Plan,
    /// RDS, DynamoDB and KMS of both regions.
    pub port: lifeboat::aws::AwsSnapshots,
    /// The world's state table.
    pub state: DynamoStateStore,
    /// The world's SNS topic.
    pub notifier: SnsNotifier,
    /// The world's report bucket.
    pub reports: S3Reports,
}

impl SnapshotEdges {
    /// The edges of `plan`'s snapshot function in `world`, with the account's settings.
    pub async fn new(account: &Account, plan: &Plan, world: &World) -> Self {
        SnapshotEdges {
            plan: plan.clone(),
            port: lifeboat::aws::AwsSnapshots::new(plan, &world.clients, &account.settings()).await,
            state: state_store(world),
            notifier: notifier(world),
            reports: reports(world),
        }
    }

    /// The snapshot function over these edges.
    pub fn run(&self) -> lifeboat::backup::run::SnapshotRun<'_> {
        lifeboat::backup::run::SnapshotRun {
            plan: &self.plan,
            port: &self.port,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
        }
    }
}
