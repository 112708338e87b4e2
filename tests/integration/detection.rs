//! The detection adapters against the emulator, each signal as the failover function
//! reads it from the DR side: health alarms (metric and composite, with their
//! TreatMissingData and suppression) where their region answers, the primary region's
//! RDS API with one short attempt, the DR replica's own view (StatusInfos, ReplicaLag),
//! and TCP probes of an endpoint.

use crate::support::{put_replica_lag, set_alarm, world};
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use harness::realism::Fault;
use lifeboat::aws::{AwsClients, AwsDetection, ClientSettings, probe};
use lifeboat::detection::{MissingData, Reading};
use lifeboat::failover::AlarmValue;
use lifeboat::plan::{AlarmRef, Plan};
use std::time::{Duration, Instant};

const ALARM: &str = "orders-db-primary-unhealthy";

async fn metric_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str, missing: &str) {
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("Lifeboat/Test")
        .metric_name("Healthy")
        .statistic(Statistic::Minimum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .treat_missing_data(missing)
        .send()
        .await
        .unwrap();
}

fn with_alarms(plan: &Plan, alarms: &[(&str, &str)]) -> Plan {
    let mut p = plan.clone();
    p.failover.health_alarms = alarms
        .iter()
        .map(|(name, region)| AlarmRef {
            name: name.to_string(),
            region: Some(region.to_string()),
        })
        .collect();
    p
}

#[tokio::test]
async fn health_alarms_are_read_where_they_live_metric_and_composite() {
    let (account, plan, world) = world().await;
    let west = &world.clients.dr.cloudwatch;
    let east = &world.clients.primary.cloudwatch;
    // A metric alarm that treats missing data as breaching, still in INSUFFICIENT_DATA
    // (every new alarm starts there), in the primary region.
    metric_alarm(east, "orders-endpoint-down", "breaching").await;
    // A composite alarm in the DR region whose suppressor is firing.
    metric_alarm(west, "orders-maintenance", "notBreaching").await;
    west.put_composite_alarm()
        .alarm_name("orders-primary-composite")
        .alarm_rule(format!("ALARM({ALARM})"))
        .actions_suppressor("orders-maintenance")
        .actions_suppressor_wait_period(0)
        .actions_suppressor_extension_period(0)
        .send()
        .await
        .unwrap();
    set_alarm(west, ALARM, StateValue::Alarm).await;
    set_alarm(west, "orders-primary-composite", StateValue::Alarm).await;
    set_alarm(west, "orders-maintenance", StateValue::Alarm).await;
    let p = with_alarms(
        &plan,
        &[
            (ALARM, "us-west-2"),
            ("orders-primary-composite", "us-west-2"),
            ("orders-endpoint-down", "us-east-1"),
            ("no-such-alarm", "us-west-2"),
        ],
    );
    let detection = AwsDetection::new(&p, &world.clients, &account.settings()).await;
    let read = detection.read_alarms(&p).await;
    assert_eq!(read.len(), 4);
    let Reading::Seen(plain) = &read[0].reading else {
        panic!("{read:?}")
    };
    assert_eq!(plain.value, AlarmValue::Alarm);
    assert!(!plain.composite);
    let Reading::Seen(composite) = &read[1].reading else {
        panic!("{read:?}")
    };
    assert!(composite.composite, "read through AlarmTypes");
    assert_eq!(composite.value, AlarmValue::Alarm);
    assert_eq!(composite.actions_suppressed_by.as_deref(), Some("Alarm"));
    let Reading::Seen(east_alarm) = &read[2].reading else {
        panic!("{read:?}")
    };
    assert_eq!(read[2].region, "us-east-1");
    assert_eq!(east_alarm.value, AlarmValue::InsufficientData);
    assert_eq!(east_alarm.treat_missing_data, Some(MissingData::Breaching));
    assert_eq!(read[3].reading, Reading::Missing);

    // The primary region goes down, CloudWatch included: its alarm gets no answer; the
    // DR region's still read.
    account
        .inject(Fault::region_outage("us-east-1"))
        .await
        .unwrap();
    let read = detection.read_alarms(&p).await;
    assert!(
        matches!(read[2].reading, Reading::NoAnswer { .. }),
        "{:?}",
        read[2]
    );
    assert!(matches!(read[0].reading, Reading::Seen(_)));
    // Throttling says nothing about the primary: a failed read, not a silent region.
    account.clear_faults().await.unwrap();
    account
        .inject(Fault::throttle("cloudwatch").region("us-west-2"))
        .await
        .unwrap();
    let read = detection.read_alarms(&p).await;
    assert!(
        matches!(read[0].reading, Reading::Failed { .. }),
        "{:?}",
        read[0]
    );
}

#[tokio::test]
async fn the_primary_api_is_read_once_and_a_silent_region_is_no_answer() {
    let (account, plan, world) = world().await;
    let detection = AwsDetection::new(&plan, &world.clients, &account.settings()).await;
    let read = detection.read_primary(&plan).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].resource, "orders-db");
    assert_eq!(read[0].reading, Reading::Seen("available".into()));

    // RDS in the primary region stops answering (CloudWatch there still does).
    let fault = account
        .inject(Fault::region_outage("us-east-1").service("rds"))
        .await
        .unwrap();
    let read = detection.read_primary(&plan).await;
    assert!(
        matches!(&read[0].reading, Reading::NoAnswer { reason } if reason.contains("DescribeDBInstances")),
        "{read:?}"
    );
    account.remove_fault(&fault).await.unwrap();
    // One attempt: a 5xx is not retried into an answer.
    account
        .inject(
            Fault::server_error("rds", 503)
                .region("us-east-1")
                .operation("DescribeDBInstances")
                .count(1),
        )
        .await
        .unwrap();
    let read = detection.read_primary(&plan).await;
    assert!(
        matches!(read[0].reading, Reading::NoAnswer { .. }),
        "{read:?}"
    );
    assert_eq!(
        detection.read_primary(&plan).await[0].reading,
        Reading::Seen("available".into())
    );
}

/// An endpoint that accepts connections and never answers: a call there hangs until its
/// time budget ends.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_primary_api_that_hangs_is_no_answer_within_the_plans_budget() {
    let (account, mut plan, _world) = world().await;
    plan.failover.detection.primary_api_timeout_seconds = 1;
    let (url, task) = black_hole().await;
    let settings = ClientSettings {
        endpoint_url: Some(url),
        ..account.settings()
    };
    let clients = AwsClients::build(&settings, "us-east-1", "us-west-2", None).await;
    let detection = AwsDetection::new(&plan, &clients, &settings).await;
    let started = Instant::now();
    let read = detection.read_primary(&plan).await;
    assert!(
        matches!(&read[0].reading, Reading::NoAnswer { .. }),
        "{read:?}"
    );
    // Bounded by the budget, not by the clients' usual 60 s (a generous bound: this is a
    // check that the budget applies, not a measurement).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    task.abort();
}

#[tokio::test]
async fn the_replica_view_reads_its_replication_status_and_lag_from_the_dr_region() {
    let (account, plan, world) = world().await;
    put_replica_lag(
        &world.clients.dr.cloudwatch,
        "orders-db-dr",
        &[(180, 2.0), (60, 3.0)],
    )
    .await;
    let detection = AwsDetection::new(&plan, &world.clients, &account.settings()).await;
    let read = detection.read_replicas(&plan).await;
    assert_eq!(read[0].region, "us-west-2");
    let Reading::Seen(state) = &read[0].reading else {
        panic!("{read:?}")
    };
    assert!(
        state
            .source
            .as_deref()
            .is_some_and(|s| s.contains("orders-db")),
        "{state:?}"
    );
    let replication = state.replication.as_ref().unwrap();
    assert_eq!(replication.status, "replicating");
    assert_eq!(replication.normal, Some(true));
    assert_eq!(
        state.lag.iter().map(|p| p.seconds).collect::<Vec<_>>(),
        vec![2.0, 3.0],
        "oldest first"
    );
    // While its source's region is down, the replica reports replication in error.
    account
        .inject(Fault::region_outage("us-east-1"))
        .await
        .unwrap();
    let read = detection.read_replicas(&plan).await;
    let Reading::Seen(state) = &read[0].reading else {
        panic!("{read:?}")
    };
    let replication = state.replication.as_ref().unwrap();
    assert_eq!(replication.status, "error");
    assert_eq!(replication.normal, Some(false));
    // The DR region down too: no answer.
    account
        .inject(Fault::region_outage("us-west-2"))
        .await
        .unwrap();
    let read = detection.read_replicas(&plan).await;
    assert!(
        matches!(read[0].reading, Reading::NoAnswer { .. }),
        "{read:?}"
    );
}

#[tokio::test]
async fn an_endpoint_probe_connects_or_says_why_not() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let up = probe("127.0.0.1", port, 2).await;
    assert_eq!(up.failure, None);
    drop(listener);
    let down = probe("127.0.0.1", port, 2).await;
    assert!(down.failure.is_some(), "{down:?}");
    let unresolvable = probe("no-such-host.invalid", 5432, 2).await;
    assert!(unresolvable.failure.is_some(), "{unresolvable:?}");
}
