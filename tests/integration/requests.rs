//! Bad requests against every function, through the same entry every deployed function
//! uses (`lifeboat::function::respond`, then the function's handler with its real AWS
//! adapters) against the emulator: a payload that is not a JSON object, or a sample
//! event with an array (or another type) where an object or a string belongs, is
//! refused `NonRetryable`, and nothing in the account changes — no snapshot, copy,
//! restore, promotion, deletion, record, report, alarm state or state-table item.

use crate::support::{FailoverEdges, SnapshotEdges, notifier, reports, state_store, world};
use aws_sdk_dynamodb::types::AttributeValue;
use harness::retention::{SeedSnapshot, seed_snapshots};
use harness::{Account, World};
use lifeboat::aws::{AwsFailback, AwsRecovery, AwsSnapshots, AwsValidation, ReadinessRun};
use lifeboat::dr::run::SystemClock;
use lifeboat::failback::run::FailbackRun;
use lifeboat::function::{Invocation, respond};
use lifeboat::plan::Plan;
use lifeboat::recovery::run::RecoveryRun;
use lifeboat::request::Payload;
use lifeboat::retention::run::RetentionRun;
use lifeboat::validation::run::ValidationRunner;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;

/// Everything an invocation could change in the account, read back.
#[derive(Debug, PartialEq)]
pub(crate) struct Observed {
    state_items: Vec<String>,
    databases: Vec<String>,
    snapshots: Vec<String>,
    table_backups: Vec<String>,
    records: Vec<String>,
    reports: Vec<String>,
    alarms: Vec<String>,
}

pub(crate) async fn observe(world: &World) -> Observed {
    let mut state_items: Vec<String> = world
        .clients
        .home
        .dynamodb
        .scan()
        .table_name(&world.control.state_table)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        // A refused command's entry on the timeline is the record the audit trail keeps
        // of the attempt (`state::record_refusal`), not a change.
        .filter(|item| item.get("outcome") != Some(&AttributeValue::S("refused".into())))
        .map(|item| {
            format!(
                "{:?}",
                item.iter().collect::<BTreeMap<&String, &AttributeValue>>()
            )
        })
        .collect();
    state_items.sort();
    let mut databases = Vec::new();
    let mut snapshots = Vec::new();
    let mut table_backups = Vec::new();
    let mut alarms = Vec::new();
    for side in [&world.clients.primary, &world.clients.dr] {
        let region = &side.region;
        for i in side
            .rds
            .describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
        {
            databases.push(format!(
                "{region} instance {:?} {:?} replica of {:?}",
                i.db_instance_identifier(),
                i.db_instance_status(),
                i.read_replica_source_db_instance_identifier()
            ));
        }
        for c in side
            .rds
            .describe_db_clusters()
            .send()
            .await
            .unwrap()
            .db_clusters()
        {
            databases.push(format!(
                "{region} cluster {:?} {:?}",
                c.db_cluster_identifier(),
                c.status()
            ));
        }
        for s in side
            .rds
            .describe_db_snapshots()
            .send()
            .await
            .unwrap()
            .db_snapshots()
        {
            snapshots.push(format!(
                "{region} {:?} {:?}",
                s.db_snapshot_identifier(),
                s.status()
            ));
        }
        for s in side
            .rds
            .describe_db_cluster_snapshots()
            .send()
            .await
            .unwrap()
            .db_cluster_snapshots()
        {
            snapshots.push(format!(
                "{region} cluster {:?} {:?}",
                s.db_cluster_snapshot_identifier(),
                s.status()
            ));
        }
        for b in side
            .dynamodb
            .list_backups()
            .send()
            .await
            .unwrap()
            .backup_summaries()
        {
            table_backups.push(format!("{region} {:?}", b.backup_arn()));
        }
        for a in side
            .cloudwatch
            .describe_alarms()
            .send()
            .await
            .unwrap()
            .metric_alarms()
        {
            alarms.push(format!(
                "{region} {:?} {:?}",
                a.alarm_name(),
                a.state_value()
            ));
        }
    }
    let records = world
        .clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&world.zone_id)
        .send()
        .await
        .unwrap()
        .resource_record_sets()
        .iter()
        .map(|r| format!("{r:?}"))
        .collect();
    let reports = world
        .clients
        .home
        .s3
        .list_objects_v2()
        .bucket(&world.control.report_bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .map(|o| format!("{:?}", o.key()))
        .collect();
    for v in [
        &mut databases,
        &mut snapshots,
        &mut table_backups,
        &mut alarms,
    ] {
        v.sort();
    }
    Observed {
        state_items,
        databases,
        snapshots,
        table_backups,
        records,
        reports,
        alarms,
    }
}

/// A world at rest: every transient state finished, and the account's clock moving only
/// when a test moves it, so that whatever changes afterwards was done by the function.
pub(crate) async fn world_at_rest() -> (Account, Plan, World) {
    let (account, plan, world) = world().await;
    account.settle().await.unwrap();
    account
        .set_time_scale(1.0)
        .await
        .expect("the control API answers");
    (account, plan, world)
}

pub(crate) fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The payloads every function must refuse outright, and each of `samples` wrapped in
/// an array (serde reads a struct from an array of its fields).
fn not_objects(samples: &[&str]) -> Vec<Value> {
    let mut out = vec![
        json!(null),
        json!(true),
        json!(0),
        json!(""),
        json!("status"),
        json!([]),
        json!([{}]),
        json!([[]]),
        json!([false]),
        json!(["force", "primary down"]),
        json!(["orders-db"]),
    ];
    out.extend(samples.iter().map(|s| json!([sample(s)])));
    out
}

fn invocation(n: usize) -> Invocation {
    let now = chrono::Utc::now();
    Invocation {
        request_id: format!("bad-request-{n}"),
        now,
        deadline: now + chrono::Duration::minutes(15),
    }
}

/// A request as it comes off the wire: JSON text (which may give a key twice) or a value.
pub(crate) enum Sent {
    Text(&'static str),
    Value(Value),
}

/// Send every payload to `function` through `respond` and `handler`: each must be
/// refused NonRetryable, with `says` in its message; then nothing in the account may
/// have changed.
pub(crate) async fn refused_saying_and_nothing_changed<F, Fut, R, E>(
    function: &'static str,
    world: &World,
    payloads: Vec<(Sent, &str)>,
    handler: F,
) where
    F: Fn(Value, Invocation) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: serde::Serialize,
    E: lifeboat::error::Classify + std::fmt::Display,
{
    let before = observe(world).await;
    for (n, (sent, says)) in payloads.into_iter().enumerate() {
        let (shown, payload) = match sent {
            Sent::Text(t) => (t.to_string(), Payload::from_json(function, t).unwrap()),
            Sent::Value(v) => (v.to_string(), Payload::from(v)),
        };
        let err = respond(function, payload, invocation(n), &handler)
            .await
            .expect_err(&format!("{function} accepted {shown}"));
        assert_eq!(
            err.error_type, "NonRetryable",
            "{function}, {shown}: {}",
            err.error_message
        );
        assert!(
            err.error_message.contains(says),
            "{function}, {shown}: {}",
            err.error_message
        );
    }
    let after = observe(world).await;
    assert_eq!(before, after, "{function} changed the account");
}

/// As [`refused_saying_and_nothing_changed`], whatever the refusal says.
async fn refused_and_nothing_changed<F, Fut, R, E>(
    function: &'static str,
    world: &World,
    payloads: Vec<Value>,
    handler: F,
) where
    F: Fn(Value, Invocation) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: serde::Serialize,
    E: lifeboat::error::Classify + std::fmt::Display,
{
    let payloads = payloads.into_iter().map(|v| (Sent::Value(v), "")).collect();
    refused_saying_and_nothing_changed(function, world, payloads, handler).await;
}

#[tokio::test]
async fn the_snapshot_function_refuses_what_is_not_its_request_and_changes_nothing() {
    let (account, plan, world) = world_at_rest().await;
    let edges = SnapshotEdges::new(&account, &plan, &world).await;
    let run = &edges.run();
    let mut payloads = not_objects(&[
        "snapshot-manual.json",
        "snapshot-schedule.json",
        "snapshot-rds-snapshot-created.json",
    ]);
    let mut rds_event = sample("snapshot-rds-snapshot-created.json");
    rds_event["detail"] = json!([rds_event["detail"].clone()]);
    let mut schedule = sample("snapshot-schedule.json");
    schedule["time"] = json!(["2026-11-25T06:00:00Z"]);
    payloads.extend([
        json!({"resources": "orders-db"}),
        json!({"resources": [["orders-db"]]}),
        json!({"resources": ["orders-db"], "tier": ["monthly"]}),
        rds_event,
        schedule,
    ]);
    refused_and_nothing_changed(
        "snapshot",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { run.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn the_retention_function_refuses_what_is_not_its_request_and_deletes_nothing() {
    let (account, plan, world) = world_at_rest().await;
    // Something a real run would delete: a year of daily snapshots of orders-db.
    let old: Vec<SeedSnapshot> = (0..40)
        .map(|d| {
            SeedSnapshot::lifeboat(
                &plan.name,
                "orders-db",
                "orders-db",
                format!("lb-old-d{d:02}"),
                chrono::Utc::now() - chrono::Duration::days(d * 9),
            )
        })
        .collect();
    seed_snapshots(&account, &world.clients.primary.rds, &old)
        .await
        .unwrap();
    let port = AwsSnapshots::new(&plan, &world.clients, &account.settings()).await;
    let (state, notifier, reports) = (state_store(&world), notifier(&world), reports(&world));
    let run = RetentionRun {
        plan: &plan,
        port: &port,
        state: &state,
        notifier: &notifier,
        reports: &reports,
    };
    let run = &run;
    let mut payloads = not_objects(&["retention-dry-run.json", "retention-scheduled.json"]);
    let mut schedule = sample("retention-scheduled.json");
    schedule["id"] = json!(["8d2b4c61"]);
    payloads.extend([
        json!({"dry_run": "false"}),
        json!({"dry_run": [false]}),
        json!({"dry_run": null, "extra": []}),
        schedule,
    ]);
    refused_and_nothing_changed(
        "retention",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { run.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn the_restore_validator_refuses_what_is_not_its_request_and_restores_nothing() {
    let (account, plan, world) = world_at_rest().await;
    let port = AwsValidation::new(&plan, &world.clients, &account.settings(), &|_| None).unwrap();
    let (state, notifier, reports) = (state_store(&world), notifier(&world), reports(&world));
    let run = ValidationRunner {
        plan: &plan,
        port: &port,
        state: &state,
        notifier: &notifier,
        reports: &reports,
        clock: &SystemClock,
    };
    let run = &run;
    let mut payloads = not_objects(&[
        "validation-manual.json",
        "validation-schedule.json",
        "validation-tick.json",
    ]);
    let mut schedule = sample("validation-schedule.json");
    schedule["detail-type"] = json!(["Scheduled Event"]);
    payloads.extend([
        json!({"resource": ["orders-db"]}),
        json!({"resource": "orders-db", "snapshot": {"id": "x"}}),
        json!({"action": ["tick"]}),
        schedule,
    ]);
    refused_and_nothing_changed(
        "restore-validator",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { run.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn the_failback_function_refuses_what_is_not_its_command_and_changes_nothing() {
    let (account, plan, world) = world_at_rest().await;
    let port = AwsFailback::new(&plan, &world.clients, &account.settings()).await;
    let (state, notifier, reports) = (state_store(&world), notifier(&world), reports(&world));
    let run = FailbackRun {
        plan: &plan,
        port: &port,
        state: &state,
        notifier: &notifier,
        reports: &reports,
        clock: &SystemClock,
    };
    let run = &run;
    let mut payloads = not_objects(&[
        "failback-start.json",
        "failback-abort.json",
        "failback-tick.json",
    ]);
    payloads.extend([
        json!(["start"]),
        json!({"action": ["start"]}),
        json!({"action": {"start": true}}),
        json!({"action": "start", "now": []}),
    ]);
    refused_and_nothing_changed(
        "failback",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { run.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn the_failover_function_refuses_what_is_not_its_request_and_promotes_nothing() {
    let (account, plan, world) = world_at_rest().await;
    let edges = FailoverEdges::new(&account, &plan, &world).await;
    let function = &edges.function();
    let mut payloads = not_objects(&[
        "failover-force.json",
        "failover-alarm.json",
        "failover-alarm-sns.json",
        "game-day.json",
    ]);
    let mut alarm = sample("failover-alarm.json");
    alarm["detail"] = json!(["orders-db-primary-unhealthy", {"value": "ALARM"}]);
    let mut sns = sample("failover-alarm-sns.json");
    sns["Records"][0] = json!([sns["Records"][0].clone()]);
    let mut sns_message = sample("failover-alarm-sns.json");
    sns_message["Records"][0]["Sns"]["Message"] =
        json!(r#"["orders-db-primary-unhealthy", "ALARM"]"#);
    let mut game_day = sample("game-day.json");
    game_day["mode"] = json!(["signal_only"]);
    payloads.extend([
        json!({"action": ["force"], "reason": "primary down"}),
        json!({"action": "force", "reason": ["primary down"]}),
        json!({"action": "approve", "reason": {}}),
        alarm,
        sns,
        sns_message,
        game_day,
    ]);
    refused_and_nothing_changed(
        "failover",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { function.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn the_readiness_function_refuses_what_is_not_its_request_and_stores_no_report() {
    let (account, plan, world) = world_at_rest().await;
    let settings = account.settings();
    let (state, reports) = (state_store(&world), reports(&world));
    let run = ReadinessRun {
        plan: &plan,
        clients: &world.clients,
        client_settings: &settings,
        state: &state,
        reports: &reports,
    };
    let run = &run;
    let mut payloads = not_objects(&["readiness.json", "readiness-schedule.json"]);
    payloads.extend([
        json!({"action": ["readiness"]}),
        json!({"action": "readiness", "resource": "orders-db"}),
        json!({"action": "readiness", "detail": []}),
    ]);
    refused_and_nothing_changed(
        "readiness",
        &world,
        payloads,
        |p: Value, i: Invocation| async move {
            let input = lifeboat::readiness::event::parse_input(&p)?;
            Ok::<_, lifeboat::readiness::event::InputError>(run.handle(input, &i).await)
        },
    )
    .await;
}

#[tokio::test]
async fn a_command_sent_to_the_wrong_function_is_refused_naming_the_right_one() {
    let (account, plan, world) = world_at_rest().await;
    let edges = FailoverEdges::new(&account, &plan, &world).await;
    let function = &edges.function();
    refused_saying_and_nothing_changed(
        "failover",
        &world,
        vec![
            (
                Sent::Value(sample("readiness.json")),
                "send it there (its name is the stack's ReadinessFunctionName output)",
            ),
            (
                Sent::Value(sample("recover.json")),
                "it is the recovery function's; send it there (its name is the stack's RecoveryFunctionName output)",
            ),
            (
                Sent::Value(sample("cutover.json")),
                "RecoveryFunctionName",
            ),
        ],
        |p: Value, i: Invocation| async move { function.handle(&p, &i).await },
    )
    .await;
    let settings = account.settings();
    let run = ReadinessRun {
        plan: &plan,
        clients: &world.clients,
        client_settings: &settings,
        state: &edges.state,
        reports: &edges.reports,
    };
    let run = &run;
    refused_saying_and_nothing_changed(
        "readiness",
        &world,
        vec![
            (
                Sent::Value(sample("failover-force.json")),
                "FailoverFunctionName",
            ),
            (
                Sent::Value(sample("failback-start.json")),
                "FailbackFunctionName",
            ),
        ],
        |p: Value, i: Invocation| async move {
            let input = lifeboat::readiness::event::parse_input(&p)?;
            Ok::<_, lifeboat::readiness::event::InputError>(run.handle(input, &i).await)
        },
    )
    .await;
}

#[tokio::test]
async fn the_recovery_function_refuses_what_is_not_its_request_and_restores_nothing() {
    let (account, plan, world) = world_at_rest().await;
    let port = AwsRecovery::new(&plan, &world.clients, &account.settings(), &|_| None)
        .await
        .unwrap();
    let (state, notifier, reports) = (state_store(&world), notifier(&world), reports(&world));
    let run = RecoveryRun {
        plan: &plan,
        port: &port,
        state: &state,
        notifier: &notifier,
        reports: &reports,
        clock: &SystemClock,
    };
    let run = &run;
    let mut payloads = not_objects(&[
        "recover.json",
        "cutover.json",
        "discard.json",
        "recovery-tick.json",
    ]);
    let mut recover = sample("recover.json");
    recover["assertions"] = json!([["orders are back", "SELECT 1", "1"]]);
    let mut rds_event = sample("recovery-rds-event.json");
    rds_event["detail"] = json!(["orders-db-pitr-202611201429"]);
    payloads.extend([
        recover,
        rds_event,
        json!({"action": ["recover"], "resource": "orders-db"}),
        json!({"action": "cutover", "recovery": "orders-db-pitr-1", "force": "true"}),
        json!({"action": "discard", "recovery": ["orders-db-pitr-1"]}),
        json!({"action": "recovery-status", "recovery": {}}),
    ]);
    refused_and_nothing_changed(
        "recovery",
        &world,
        payloads,
        |p: Value, i: Invocation| async move {
            let input = lifeboat::recovery::event::parse_input(&p)?;
            run.handle(input, &i).await
        },
    )
    .await;
}
