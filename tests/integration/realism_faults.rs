//! Faults on demand, through the SDK as Lifeboat meets them: throttling retried by the SDK
//! and surfaced as `Throttled` when the attempts run out, 5xx as `ServerError`, dropped
//! connections and region outages as `Unreachable` while the other region answers, a
//! health check reported unhealthy, and a replica's lag in CloudWatch.

use crate::support::{available_instance, code, frozen_account, local_plan};
use aws_config::retry::RetryConfig;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
use harness::Account;
use harness::realism::Fault;
use lifeboat::error::{AwsError, AwsFailure, Classify, Retry};
use std::time::Duration;

/// RDS with `attempts` attempts per call and short backoffs (the SDK's standard retry).
async fn rds(account: &Account, region: &str, attempts: u32) -> aws_sdk_rds::Client {
    let config = account.settings().sdk_config(region).await;
    aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build(),
    )
}

async fn dynamodb(account: &Account, region: &str, attempts: u32) -> aws_sdk_dynamodb::Client {
    let config = account.settings().sdk_config(region).await;
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build(),
    )
}

async fn route53(account: &Account, attempts: u32) -> aws_sdk_route53::Client {
    let config = account.settings().sdk_config("us-east-1").await;
    aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::config::Builder::from(&config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build(),
    )
}

async fn fired(account: &Account) -> Vec<u64> {
    let local = harness::LocalAws {
        endpoint: account.endpoint.clone(),
    };
    let faults = local
        .control(
            "GET",
            &format!("/_lifeboat/faults?account={}", account.id),
            &serde_json::Value::Null,
        )
        .await
        .unwrap();
    faults["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fired"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_surfaced_when_attempts_run_out() {
    let account = frozen_account().await;
    let rds = rds(&account, "us-east-1", 3).await;
    available_instance(&account, &rds, "orders-db").await;

    // Two throttled answers, then the third attempt goes through.
    account
        .inject(
            Fault::throttle("rds")
                .operation("CreateDBSnapshot")
                .count(2),
        )
        .await
        .unwrap();
    // Other operations are not affected.
    rds.describe_db_instances().send().await.unwrap();
    rds.create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .expect("the SDK retries throttling");
    assert_eq!(fired(&account).await, [2]);

    // More throttling than attempts: the caller sees Throttled, retryable.
    account.clear_faults().await.unwrap();
    account
        .inject(
            Fault::throttle("rds")
                .operation("CreateDBSnapshot")
                .count(3),
        )
        .await
        .unwrap();
    let err = rds
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "Throttling");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 400);
    let classified = AwsError::from_sdk("rds", "CreateDBSnapshot", "orders-db", &err);
    assert_eq!(classified.failure, AwsFailure::Throttled);
    assert_eq!(classified.retry(), Retry::Retryable);
    // Nothing was created by the throttled calls.
    let listed = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.db_snapshots().len(), 1);
}

#[tokio::test]
async fn json_services_are_throttled_with_throttling_exception() {
    let account = frozen_account().await;
    let ddb = dynamodb(&account, "us-west-2", 2).await;
    account
        .inject(Fault::throttle("dynamodb").region("us-west-2").count(2))
        .await
        .unwrap();
    // Another region is not affected.
    dynamodb(&account, "us-east-1", 1)
        .await
        .list_tables()
        .send()
        .await
        .unwrap();
    let err = ddb.list_tables().send().await.unwrap_err();
    assert_eq!(code(&err), "ThrottlingException");
    let classified = AwsError::from_sdk("dynamodb", "ListTables", "all", &err);
    assert_eq!(classified.failure, AwsFailure::Throttled);
    ddb.list_tables()
        .send()
        .await
        .expect("the fault is used up");
}

#[tokio::test]
async fn query_and_rest_services_are_throttled_with_throttling() {
    let account = frozen_account().await;
    let plan = local_plan();
    let clients = account.clients(&plan).await;
    account
        .inject(Fault::throttle("route53").operation("ListHostedZones"))
        .await
        .unwrap();
    account.inject(Fault::throttle("sns")).await.unwrap();
    account.inject(Fault::throttle("cloudwatch")).await.unwrap();

    let r53 = clients
        .route53
        .list_hosted_zones()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&r53), "Throttling");
    assert_eq!(
        AwsError::from_sdk("route53", "ListHostedZones", "all", &r53).failure,
        AwsFailure::Throttled
    );
    clients
        .route53
        .list_health_checks()
        .send()
        .await
        .expect("another Route 53 operation");
    let sns = clients.dr.sns.list_topics().send().await.unwrap_err();
    assert_eq!(code(&sns), "Throttling");
    let cw = clients
        .dr
        .cloudwatch
        .describe_alarms()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&cw), "Throttling");
    assert_eq!(
        AwsError::from_sdk("cloudwatch", "DescribeAlarms", "all", &cw).failure,
        AwsFailure::Throttled
    );
}

#[tokio::test]
async fn a_fraction_of_calls_is_throttled() {
    let account = frozen_account().await;
    let ddb = dynamodb(&account, "us-east-1", 1).await;
    account
        .inject(Fault::throttle("dynamodb").fraction(1.0))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            code(&ddb.list_tables().send().await.unwrap_err()),
            "ThrottlingException"
        );
    }
    account.clear_faults().await.unwrap();
    account
        .inject(Fault::throttle("dynamodb").fraction(0.0))
        .await
        .unwrap();
    for _ in 0..3 {
        ddb.list_tables().send().await.unwrap();
    }
    account.clear_faults().await.unwrap();
    account
        .inject(Fault::throttle("dynamodb").fraction(0.5))
        .await
        .unwrap();
    let mut throttled = 0;
    for _ in 0..60 {
        if ddb.list_tables().send().await.is_err() {
            throttled += 1;
        }
    }
    assert!(
        (10..=50).contains(&throttled),
        "about half: {throttled} of 60"
    );
}

#[tokio::test]
async fn server_errors_are_retried_and_surfaced_as_server_errors() {
    let account = frozen_account().await;
    let rds = rds(&account, "us-east-1", 2).await;
    account
        .inject(Fault::server_error("rds", 503).count(1))
        .await
        .unwrap();
    rds.describe_db_instances()
        .send()
        .await
        .expect("one 503, then the retry answers");

    account
        .inject(Fault::server_error("rds", 500).count(2))
        .await
        .unwrap();
    let err = rds.describe_db_instances().send().await.unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
    assert_eq!(code(&err), "InternalFailure");
    let classified = AwsError::from_sdk("rds", "DescribeDBInstances", "all", &err);
    assert_eq!(classified.failure, AwsFailure::ServerError);
    assert_eq!(classified.retry(), Retry::Retryable);

    let ddb = dynamodb(&account, "us-east-1", 1).await;
    account
        .inject(Fault::server_error("dynamodb", 503).count(1))
        .await
        .unwrap();
    let err = ddb.list_tables().send().await.unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 503);
    assert_eq!(
        AwsError::from_sdk("dynamodb", "ListTables", "all", &err).failure,
        AwsFailure::ServerError
    );
}

#[tokio::test]
async fn a_dropped_connection_is_an_unreachable_endpoint() {
    let account = frozen_account().await;
    let rds = rds(&account, "us-east-1", 2).await;
    account
        .inject(Fault::drop_connection("rds").count(2))
        .await
        .unwrap();
    let err = rds.describe_db_instances().send().await.unwrap_err();
    let classified = AwsError::from_sdk("rds", "DescribeDBInstances", "all", &err);
    assert_eq!(classified.failure, AwsFailure::Unreachable, "{err:?}");
    assert_eq!(classified.retry(), Retry::Retryable);
    assert_eq!(fired(&account).await, [2], "the SDK retried once");
    rds.describe_db_instances().send().await.unwrap();
}

#[tokio::test]
async fn a_region_outage_takes_its_region_down_until_it_recovers() {
    let account = frozen_account().await;
    let east = rds(&account, "us-east-1", 2).await;
    let west = rds(&account, "us-west-2", 2).await;
    let dns = route53(&account, 1).await;
    available_instance(&account, &east, "orders-db").await;

    let outage = account
        .inject(Fault::region_outage("us-east-1"))
        .await
        .unwrap();
    let err = east.describe_db_instances().send().await.unwrap_err();
    assert_eq!(
        AwsError::from_sdk("rds", "DescribeDBInstances", "all", &err).failure,
        AwsFailure::Unreachable
    );
    let ddb = dynamodb(&account, "us-east-1", 1).await;
    let err = ddb.list_tables().send().await.unwrap_err();
    assert_eq!(
        AwsError::from_sdk("dynamodb", "ListTables", "all", &err).failure,
        AwsFailure::Unreachable
    );
    // The DR region answers, and so does Route 53: it is global, signed for us-east-1
    // but not hosted there, so failover can still switch DNS.
    west.describe_db_instances().send().await.unwrap();
    dns.list_hosted_zones().send().await.unwrap();

    // A fault that takes the global services down with the region.
    let global = account
        .inject(Fault::region_outage("us-east-1").include_global(true))
        .await
        .unwrap();
    let err = dns.list_hosted_zones().send().await.unwrap_err();
    assert_eq!(
        AwsError::from_sdk("route53", "ListHostedZones", "all", &err).failure,
        AwsFailure::Unreachable
    );
    account.remove_fault(&global).await.unwrap();

    // Recovery: the region answers again, with its resources as they were.
    account.remove_fault(&outage).await.unwrap();
    let out = east
        .describe_db_instances()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.db_instances()[0].db_instance_status(),
        Some("available")
    );
}

#[tokio::test]
async fn faults_and_clocks_belong_to_one_account() {
    let local = harness::LocalAws::from_env();
    let (a, b) = (local.fresh_account(), local.fresh_account());
    a.inject(Fault::region_outage("us-east-1")).await.unwrap();
    b.regional("us-east-1")
        .await
        .rds
        .describe_db_instances()
        .send()
        .await
        .expect("another account's outage is not this one's");
    let (before_a, before_b) = (
        a.realism_config().await.unwrap().now,
        b.realism_config().await.unwrap().now,
    );
    b.set_time_scale(1.0).await.unwrap();
    a.set_time_scale(1.0).await.unwrap();
    a.advance_clock(3600.0).await.unwrap();
    let (after_a, after_b) = (
        a.realism_config().await.unwrap().now,
        b.realism_config().await.unwrap().now,
    );
    assert!(after_a - before_a >= 3600.0);
    assert!(after_b - before_b < 3600.0);
}

#[tokio::test]
async fn a_health_check_can_be_reported_unhealthy() {
    let account = frozen_account().await;
    let dns = route53(&account, 1).await;
    let check = dns
        .create_health_check()
        .caller_reference("orders-primary")
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Https)
                .fully_qualified_domain_name("orders.example.com")
                .port(443)
                .resource_path("/health")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let id = check.health_check().unwrap().id().to_string();
    let status = |dns: aws_sdk_route53::Client, id: String| async move {
        dns.get_health_check_status()
            .health_check_id(id)
            .send()
            .await
            .unwrap()
            .health_check_observations()
            .iter()
            .map(|o| {
                o.status_report()
                    .and_then(|r| r.status())
                    .unwrap_or("")
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert!(
        status(dns.clone(), id.clone())
            .await
            .iter()
            .all(|s| s.starts_with("Success"))
    );
    account.set_health_check(&id, false).await.unwrap();
    let failing = status(dns.clone(), id.clone()).await;
    assert!(failing.len() > 1, "several checker regions report");
    assert!(
        failing.iter().all(|s| s.starts_with("Failure")),
        "{failing:?}"
    );
    account.set_health_check(&id, true).await.unwrap();
    assert!(
        status(dns, id)
            .await
            .iter()
            .all(|s| s.starts_with("Success"))
    );
}

#[tokio::test]
async fn a_replicas_lag_is_published_where_rds_publishes_it() {
    let account = frozen_account().await;
    account
        .set_replica_lag("us-west-2", "orders-db-dr", 12.0)
        .await
        .unwrap();
    let cw = account.regional("us-west-2").await.cloudwatch;
    let now = std::time::SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace("AWS/RDS")
        .metric_name("ReplicaLag")
        .dimensions(
            Dimension::builder()
                .name("DBInstanceIdentifier")
                .value("orders-db-dr")
                .build(),
        )
        .start_time((now - Duration::from_secs(300)).into())
        .end_time((now + Duration::from_secs(60)).into())
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .unwrap();
    let points = out.datapoints();
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0].maximum(), Some(12.0));
    assert_eq!(points[0].unit().map(|u| u.as_str()), Some("Seconds"));
    // Only that replica, only that region.
    let other = account.regional("us-east-1").await.cloudwatch;
    let none = other
        .get_metric_statistics()
        .namespace("AWS/RDS")
        .metric_name("ReplicaLag")
        .start_time((now - Duration::from_secs(300)).into())
        .end_time((now + Duration::from_secs(60)).into())
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .unwrap();
    assert!(none.datapoints().is_empty());
}

#[tokio::test]
async fn a_hung_call_takes_effect_at_once_and_is_answered_late() {
    let account = frozen_account().await;
    let config = account.settings().sdk_config("us-east-1").await;
    let rds = aws_sdk_rds::Client::new(&config);
    available_instance(&account, &rds, "orders-db").await;
    // One client that gives up after a second, with one attempt: as a bounded call does.
    let impatient = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&config)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(1))
                    .build(),
            )
            .build(),
    );
    account
        .inject(
            Fault::hang("rds", 4.0)
                .operation("CreateDBSnapshot")
                .count(2),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = impatient
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("hung-1")
        .send()
        .await
        .unwrap_err();
    let classified = AwsError::from_sdk("rds", "CreateDBSnapshot", "orders-db", &err);
    assert_eq!(classified.failure, AwsFailure::Unreachable, "{classified}");
    // The call was accepted: the snapshot exists though its caller gave up. Other
    // operations answer meanwhile.
    let listed = rds
        .describe_db_snapshots()
        .db_snapshot_identifier("hung-1")
        .send()
        .await
        .expect("another operation answers during the hang");
    assert_eq!(listed.db_snapshots().len(), 1);
    // A patient caller gets the answer, after the hang.
    let started_patient = std::time::Instant::now();
    rds.create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("hung-2")
        .send()
        .await
        .expect("answered after the hang");
    assert!(
        started_patient.elapsed() >= Duration::from_secs(4),
        "answered only after the hang"
    );
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert_eq!(fired(&account).await, [2]);
    // Used up: the next call answers at once.
    rds.create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("hung-3")
        .send()
        .await
        .unwrap();
}
