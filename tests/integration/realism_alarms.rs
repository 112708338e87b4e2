//! CloudWatch alarms and replication status as AWS reports them, through the SDK as
//! Lifeboat reads them: a new alarm starts in INSUFFICIENT_DATA and an update keeps its
//! state; composite alarms, returned only when `AlarmTypes` asks, say when a suppressor
//! holds their actions back; a read replica's `StatusInfos` go to error while its
//! source's region is down; an outage of one service leaves the others answering.

use crate::support::{available_instance, frozen_account, set_alarm};
use aws_sdk_cloudwatch::types::{AlarmType, ComparisonOperator, StateValue, Statistic};
use harness::realism::Fault;
use lifeboat::error::{AwsError, AwsFailure};

async fn metric_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str, threshold: f64) {
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("Lifeboat/Test")
        .metric_name("Healthy")
        .statistic(Statistic::Minimum)
        .period(60)
        .evaluation_periods(1)
        .threshold(threshold)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .treat_missing_data("breaching")
        .send()
        .await
        .unwrap();
}

async fn state_of(cw: &aws_sdk_cloudwatch::Client, name: &str) -> StateValue {
    cw.describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .first()
        .and_then(|a| a.state_value().cloned())
        .unwrap()
}

#[tokio::test]
async fn a_new_alarm_starts_in_insufficient_data_and_an_update_keeps_its_state() {
    let account = frozen_account().await;
    let cw = account.regional("us-east-1").await.cloudwatch;
    metric_alarm(&cw, "orders-db-primary-unhealthy", 1.0).await;
    assert_eq!(
        state_of(&cw, "orders-db-primary-unhealthy").await,
        StateValue::InsufficientData
    );
    set_alarm(&cw, "orders-db-primary-unhealthy", StateValue::Ok).await;
    metric_alarm(&cw, "orders-db-primary-unhealthy", 2.0).await;
    assert_eq!(
        state_of(&cw, "orders-db-primary-unhealthy").await,
        StateValue::Ok
    );
    let read = cw
        .describe_alarms()
        .alarm_names("orders-db-primary-unhealthy")
        .send()
        .await
        .unwrap();
    let alarm = &read.metric_alarms()[0];
    assert_eq!(alarm.threshold(), Some(2.0), "the update took");
    assert_eq!(alarm.treat_missing_data(), Some("breaching"));
}

#[tokio::test]
async fn composite_alarms_are_read_when_asked_for_and_say_when_their_actions_are_suppressed() {
    let account = frozen_account().await;
    let cw = account.regional("us-east-1").await.cloudwatch;
    metric_alarm(&cw, "orders-endpoint-down", 1.0).await;
    metric_alarm(&cw, "orders-maintenance", 1.0).await;
    cw.put_composite_alarm()
        .alarm_name("orders-primary-unhealthy")
        .alarm_rule("ALARM(orders-endpoint-down)")
        .actions_suppressor("orders-maintenance")
        .actions_suppressor_wait_period(0)
        .actions_suppressor_extension_period(0)
        .send()
        .await
        .unwrap();
    // Without AlarmTypes, DescribeAlarms returns metric alarms only.
    let plain = cw
        .describe_alarms()
        .alarm_names("orders-primary-unhealthy")
        .send()
        .await
        .unwrap();
    assert!(plain.metric_alarms().is_empty() && plain.composite_alarms().is_empty());
    let read = || async {
        cw.describe_alarms()
            .alarm_names("orders-primary-unhealthy")
            .alarm_types(AlarmType::CompositeAlarm)
            .alarm_types(AlarmType::MetricAlarm)
            .send()
            .await
            .unwrap()
            .composite_alarms()[0]
            .clone()
    };
    let composite = read().await;
    assert_eq!(composite.state_value(), Some(&StateValue::InsufficientData));
    assert_eq!(composite.alarm_rule(), Some("ALARM(orders-endpoint-down)"));
    assert_eq!(composite.actions_suppressor(), Some("orders-maintenance"));
    assert_eq!(composite.actions_suppressed_by(), None);
    set_alarm(&cw, "orders-primary-unhealthy", StateValue::Alarm).await;
    assert_eq!(
        read().await.actions_suppressed_by(),
        None,
        "nothing holds it"
    );
    set_alarm(&cw, "orders-maintenance", StateValue::Alarm).await;
    let suppressed = read().await;
    assert_eq!(
        suppressed.actions_suppressed_by().map(|b| b.as_str()),
        Some("Alarm")
    );
    assert!(suppressed.actions_suppressed_reason().is_some());
    set_alarm(&cw, "orders-maintenance", StateValue::Ok).await;
    assert_eq!(read().await.actions_suppressed_by(), None);
}

#[tokio::test]
async fn a_replica_reports_replication_in_error_while_its_source_region_is_down() {
    let account = frozen_account().await;
    let east = account.regional("us-east-1").await;
    let west = account.regional("us-west-2").await;
    available_instance(&account, &east.rds, "orders-db").await;
    west.rds
        .create_db_instance_read_replica()
        .db_instance_identifier("orders-db-dr")
        .source_db_instance_identifier(account.arn("rds", "us-east-1", "db:orders-db"))
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
    let status = || async {
        let out = west
            .rds
            .describe_db_instances()
            .db_instance_identifier("orders-db-dr")
            .send()
            .await
            .unwrap();
        let info = out.db_instances()[0].status_infos()[0].clone();
        (
            info.status_type().unwrap_or_default().to_string(),
            info.status().unwrap_or_default().to_string(),
            info.normal(),
        )
    };
    assert_eq!(
        status().await,
        ("read replication".into(), "replicating".into(), Some(true))
    );
    // CloudWatch down in us-east-1 does not touch replication.
    let cw_only = account
        .inject(Fault::region_outage("us-east-1").service("cloudwatch"))
        .await
        .unwrap();
    assert_eq!(status().await.1, "replicating");
    account.remove_fault(&cw_only).await.unwrap();
    let outage = account
        .inject(Fault::region_outage("us-east-1"))
        .await
        .unwrap();
    assert_eq!(
        status().await,
        ("read replication".into(), "error".into(), Some(false))
    );
    account.remove_fault(&outage).await.unwrap();
    assert_eq!(status().await.1, "replicating", "replication resumes");
    // The primary itself has no replication status.
    let primary = east
        .rds
        .describe_db_instances()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap();
    assert!(primary.db_instances()[0].status_infos().is_empty());
}

#[tokio::test]
async fn a_region_outage_covers_cloudwatch_and_an_outage_of_one_service_only_that_service() {
    let account = frozen_account().await;
    let east = account.regional("us-east-1").await;
    metric_alarm(&east.cloudwatch, "orders-db-primary-unhealthy", 1.0).await;
    let unreachable = |e: AwsError| e.failure == AwsFailure::Unreachable;

    let outage = account
        .inject(Fault::region_outage("us-east-1"))
        .await
        .unwrap();
    let err = east.cloudwatch.describe_alarms().send().await.unwrap_err();
    assert!(unreachable(AwsError::from_sdk(
        "cloudwatch",
        "DescribeAlarms",
        "all",
        &err
    )));
    let err = east.sns.list_topics().send().await.unwrap_err();
    assert!(unreachable(AwsError::from_sdk(
        "sns",
        "ListTopics",
        "all",
        &err
    )));
    account.remove_fault(&outage).await.unwrap();

    // The RDS API down, CloudWatch up.
    let rds_down = account
        .inject(Fault::region_outage("us-east-1").service("rds"))
        .await
        .unwrap();
    let err = east.rds.describe_db_instances().send().await.unwrap_err();
    assert!(unreachable(AwsError::from_sdk(
        "rds",
        "DescribeDBInstances",
        "all",
        &err
    )));
    east.cloudwatch.describe_alarms().send().await.unwrap();
    account.remove_fault(&rds_down).await.unwrap();

    // And the reverse.
    account
        .inject(Fault::region_outage("us-east-1").service("cloudwatch"))
        .await
        .unwrap();
    let err = east.cloudwatch.describe_alarms().send().await.unwrap_err();
    assert!(unreachable(AwsError::from_sdk(
        "cloudwatch",
        "DescribeAlarms",
        "all",
        &err
    )));
    east.rds.describe_db_instances().send().await.unwrap();
}
