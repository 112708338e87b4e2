//! Object payloads an independent tester found still doing real work, against the
//! emulator through each function's real adapters: schedule events with a mutated
//! envelope (`detail` an array, `resources` null, an operator's `dry_run` inside), a tick
//! whose `time` is days or millennia away, keys given twice, an invisible `reason`, a
//! command mixed with an alarm, an alarm event without an id, and a named snapshot of
//! another database. Each is refused `NonRetryable`, and nothing in the account changes.

use crate::requests::{Sent, refused_saying_and_nothing_changed, sample, world_at_rest};
use crate::support::{FailoverEdges, SnapshotEdges, notifier, reports, state_store};
use harness::retention::{SeedSnapshot, seed_snapshots};
use lifeboat::aws::{AwsFailback, AwsRecovery, AwsSnapshots, AwsValidation, ReadinessRun};
use lifeboat::dr::run::SystemClock;
use lifeboat::failback::run::FailbackRun;
use lifeboat::function::Invocation;
use lifeboat::recovery::run::RecoveryRun;
use lifeboat::retention::run::RetentionRun;
use lifeboat::validation::run::ValidationRunner;
use serde_json::{Value, json};

/// The schedule sample of a function with one change.
fn schedule(name: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut e = sample(name);
    e["time"] = json!(chrono::Utc::now().to_rfc3339());
    change(&mut e);
    e
}

/// The envelope mutations every function must refuse, on its own schedule sample.
fn mutated_schedules(name: &str) -> Vec<(Sent, &'static str)> {
    vec![
        (
            Sent::Value(
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "id": "m1", "detail": [{}]}),
            ),
            "`version` is missing",
        ),
        (
            Sent::Value(schedule(name, |e| e["detail"] = json!([{}]))),
            "`detail` is an array",
        ),
        (
            Sent::Value(schedule(name, |e| e["detail"] = json!([]))),
            "`detail` is an array",
        ),
        (
            Sent::Value(schedule(name, |e| e["detail"] = json!("not an object"))),
            "`detail` is a string",
        ),
        (
            Sent::Value(schedule(name, |e| e["resources"] = json!(null))),
            "`resources` is null",
        ),
        (
            Sent::Value(schedule(name, |e| e["dry_run"] = json!(true))),
            "`dry_run`",
        ),
        (
            Sent::Value(schedule(name, |e| e["detail"] = json!({"dry_run": true}))),
            "`detail.dry_run`",
        ),
    ]
}

#[tokio::test]
async fn retention_refuses_mutated_schedules_and_duplicate_keys_and_deletes_nothing() {
    let (account, plan, world) = world_at_rest().await;
    // What a real run would delete: a year of snapshots of orders-db.
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
    let mut payloads = mutated_schedules("retention-scheduled.json");
    payloads.push((
        Sent::Text(r#"{"dry_run":true,"dry_run":false}"#),
        "`dry_run` twice",
    ));
    refused_saying_and_nothing_changed(
        "retention",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { run.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn the_snapshot_function_refuses_ticks_far_from_now_and_mutated_schedules() {
    let (account, plan, world) = world_at_rest().await;
    let edges = SnapshotEdges::new(&account, &plan, &world).await;
    let run = &edges.run();
    let two_days_ahead = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let mut payloads = mutated_schedules("snapshot-schedule.json");
    payloads.extend([
        (
            Sent::Value(schedule("snapshot-schedule.json", |e| {
                e["time"] = json!(two_days_ahead)
            })),
            "at most 5 minutes ahead",
        ),
        (
            Sent::Value(schedule("snapshot-schedule.json", |e| {
                e["time"] = json!("+262142-12-31T23:30:00Z")
            })),
            "`time` is \"+262142",
        ),
        (
            Sent::Value(schedule("snapshot-schedule.json", |e| {
                e["time"] = json!("2026-01-01T00:00:00Z")
            })),
            "65 minutes behind",
        ),
        (
            Sent::Text(r#"{"resources":["orders-db"],"resources":["billing-db"]}"#),
            "`resources` twice",
        ),
    ]);
    refused_saying_and_nothing_changed(
        "snapshot",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { run.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn failback_refuses_mutated_schedules_and_duplicate_keys() {
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
    let mut payloads = mutated_schedules("failback-tick.json");
    payloads.push((
        Sent::Text(r#"{"action":"status","action":"start"}"#),
        "`action` twice",
    ));
    refused_saying_and_nothing_changed(
        "failback",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { run.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn the_restore_validator_refuses_another_databases_snapshot_and_mutated_schedules() {
    let (account, plan, world) = world_at_rest().await;
    // A snapshot, in the restore region, of a database the plan does not protect.
    let rds = &world.clients.dr.rds;
    rds.create_db_instance()
        .db_instance_identifier("someone-elses-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("someone")
        .master_user_password("emulated-only-pw")
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
    rds.create_db_snapshot()
        .db_instance_identifier("someone-elses-db")
        .db_snapshot_identifier("unrelated-snap")
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
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
    let mut payloads = mutated_schedules("validation-schedule.json");
    payloads.extend([
        (
            Sent::Value(json!({"resource": "orders-db", "snapshot": "unrelated-snap"})),
            "was taken of \"someone-elses-db\", not of orders-db",
        ),
        (
            Sent::Text(r#"{"resource":"orders-db","snapshot":"x","snapshot":null}"#),
            "`snapshot` twice",
        ),
    ]);
    refused_saying_and_nothing_changed(
        "restore-validator",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { run.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn failover_refuses_duplicates_invisible_reasons_mixed_shapes_and_alarms_without_an_id() {
    let (account, plan, world) = world_at_rest().await;
    let edges = FailoverEdges::new(&account, &plan, &world).await;
    let function = &edges.function();
    let mut alarm_without_id = sample("failover-alarm.json");
    alarm_without_id.as_object_mut().unwrap().remove("id");
    // Ten years ahead: an incident opened by it would stay confirming until then.
    let mut future_alarm = sample("failover-alarm.json");
    future_alarm["detail"]["state"]["timestamp"] =
        json!((chrono::Utc::now() + chrono::Duration::days(3650)).to_rfc3339());
    let mut alarm_with_blank_id = sample("failover-alarm.json");
    alarm_with_blank_id["id"] = json!("\u{200b}");
    let mut two_sns_records = sample("failover-alarm-sns.json");
    let record = two_sns_records["Records"][0].clone();
    two_sns_records["Records"]
        .as_array_mut()
        .unwrap()
        .push(record);
    let mut payloads = mutated_schedules("failover-tick.json");
    payloads.extend([
        (
            Sent::Text(r#"{"action":"status","action":"force","reason":"x"}"#),
            "`action` twice",
        ),
        (
            Sent::Text(r#"{"action":"force","reason":"x","action":"cancel"}"#),
            "`action` twice",
        ),
        (
            Sent::Text(r#"{"action":"game-day","mode":"signal_only","mode":"fis"}"#),
            "`mode` twice",
        ),
        (
            Sent::Value(json!({"action": "force", "reason": "\u{200b}"})),
            "visible text",
        ),
        (
            Sent::Value(json!({"action": "force", "reason": "\u{0}"})),
            "visible text",
        ),
        (
            Sent::Value(json!({"action": "status", "alarmData": {
                "alarmName": "orders-db-primary-unhealthy",
                "state": {"value": "ALARM", "timestamp": "2026-11-25T06:00:00Z"}}})),
            "mixes `alarmData` and `action`",
        ),
        (Sent::Value(alarm_without_id), "`id` is missing"),
        (Sent::Value(future_alarm), "more than 5 minutes after now"),
        (Sent::Value(alarm_with_blank_id), "blank or invisible"),
        (Sent::Value(two_sns_records), "has 2 records"),
        (
            Sent::Value(json!({"action": "force", "reason": "\u{2800}"})),
            "visible text",
        ),
        (
            Sent::Value(json!({"action": "game-day", "mode": "signal_only", "id": "../../x"})),
            "A-Z, a-z, 0-9",
        ),
    ]);
    refused_saying_and_nothing_changed(
        "failover",
        &world,
        payloads,
        |p: Value, i: Invocation| async move { function.handle(&p, &i).await },
    )
    .await;
}

#[tokio::test]
async fn readiness_refuses_mutated_schedules_and_keys_given_twice() {
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
    let mut payloads = mutated_schedules("readiness-schedule.json");
    payloads.push((
        Sent::Text(r#"{"action":"readiness","action":"readiness"}"#),
        "`action` twice",
    ));
    refused_saying_and_nothing_changed(
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
async fn recovery_refuses_mutated_schedules_and_keys_given_twice() {
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
    let mut payloads = mutated_schedules("recovery-tick.json");
    payloads.extend([
        (
            Sent::Text(
                r#"{"action":"discard","recovery":"orders-db-pitr-1","recovery":"orders-db-pitr-2"}"#,
            ),
            "`recovery` twice",
        ),
        (
            Sent::Value(json!({"action": "cutover", "recovery": "orders-db-pitr-1",
                "force": true, "reason": "\u{200b}"})),
            "",
        ),
    ]);
    refused_saying_and_nothing_changed(
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
