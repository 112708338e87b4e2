//! The audit trail is never shorter than what happened: with the realism layer throttling
//! a share of the state table's writes (and the store making one attempt per call, so
//! every throttle reaches Lifeboat), every promotion, DNS change, deletion and restore the
//! emulator saw, and every snapshot and copy it made, has its audit entry, committed
//! before it was taken.

use crate::support::{local_plan, notifier, put_replica_lag, reports, set_alarm, world};
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Duration, Utc};
use harness::databases::{ScratchDatabase, put_credentials_secret};
use harness::realism::Fault;
use harness::retention::{SeedSnapshot, manual_snapshot_names, seed_snapshots};
use harness::{Account, LocalAws, World, create_world};
use lifeboat::aws::{
    AwsFailover, AwsSnapshots, AwsValidation, DynamoStateStore, LOCAL_DATABASE_URLS_ENV,
};
use lifeboat::backup::run::SnapshotRun;
use lifeboat::dr::run::Clock;
use lifeboat::failover::run::{DrDocument, FailoverRun, dr_key};
use lifeboat::function::Invocation;
use lifeboat::plan::parse_plan;
use lifeboat::plan::{CREATED_TAG, PLAN_TAG, RESOURCE_TAG};
use lifeboat::retention::run::RetentionRun;
use lifeboat::state::{self, AuditEntry, MachineKey, Outcome, StateStore};
use lifeboat::validation::checks::Dialect;
use lifeboat::validation::run::ValidationRunner;
use lifeboat::validation::{PURPOSE_TAG, PURPOSE_VALIDATION, ValidationDoc, machine_name};
use serde_json::{Value, json};
use std::sync::Mutex;

/// The share of the state table's transactions the layer throttles.
const THROTTLED_SHARE: f64 = 0.5;

/// The state store on the world's table, one attempt per call.
fn single_attempt_store(world: &World) -> DynamoStateStore {
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&world.clients.home.config)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    DynamoStateStore::new(client, &world.control.state_table)
}

/// Throttle a share of the state table's transactions (the state changes and the audit
/// entries; reads go through).
async fn throttle_state_writes(account: &Account, world: &World) {
    account
        .inject(
            Fault::throttle("dynamodb")
                .operation("TransactWriteItems")
                .region(&world.clients.home.region)
                .fraction(THROTTLED_SHARE),
        )
        .await
        .unwrap();
}

/// Refuse the next transaction on the state table, whatever the share throttled after it
/// (a share alone may refuse none of a short run's few writes).
async fn throttle_next_state_write(account: &Account, world: &World) {
    account
        .inject(
            Fault::throttle("dynamodb")
                .operation("TransactWriteItems")
                .region(&world.clients.home.region)
                .count(1),
        )
        .await
        .unwrap();
}

/// How many calls the account's faults have failed so far.
async fn throttled(account: &Account) -> u64 {
    let local = LocalAws {
        endpoint: account.endpoint.clone(),
    };
    let faults = local
        .control(
            "GET",
            &format!("/_lifeboat/faults?account={}", account.id),
            &Value::Null,
        )
        .await
        .unwrap();
    faults["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fired"].as_u64().unwrap())
        .sum()
}

/// The wall clock, moved on by the test past a lease a failed invocation left behind (as
/// the minutes until the next tick would).
#[derive(Default)]
pub(crate) struct SkippingClock(Mutex<Duration>);

impl SkippingClock {
    pub(crate) fn skip_to(&self, t: DateTime<Utc>) {
        let mut offset = self.0.lock().unwrap();
        *offset = (*offset).max(t - Utc::now());
    }
}

#[async_trait]
impl Clock for SkippingClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().unwrap()
    }
    async fn sleep(&self, d: std::time::Duration) {
        tokio::time::sleep(d).await;
    }
}

fn intents(timeline: &[AuditEntry], action: &str) -> usize {
    timeline
        .iter()
        .filter(|e| e.action == action && e.outcome == Outcome::Intended)
        .count()
}

#[tokio::test]
async fn throttled_state_writes_leave_no_promotion_or_dns_change_unrecorded() {
    let (account, plan, world) = world().await;
    let reader = crate::support::state_store(&world);
    let store = single_attempt_store(&world);
    let aws = AwsFailover::new(&plan, &world.clients, &account.settings()).await;
    let (notifier, reports) = (notifier(&world), reports(&world));
    let clock = SkippingClock::default();
    put_replica_lag(&world.clients.dr.cloudwatch, "orders-db-dr", &[(0, 2.0)]).await;
    set_alarm(
        &world.clients.dr.cloudwatch,
        "orders-db-primary-unhealthy",
        StateValue::Alarm,
    )
    .await;
    // The primary down as the detection sees it from the DR side.
    crate::support::primary_api_down(&account).await;
    // What the world's creation did is not the failover's.
    let baseline = account.transitions().await.unwrap().transitions.len();
    throttle_state_writes(&account, &world).await;
    let run = FailoverRun {
        plan: &plan,
        port: &aws,
        state: &store,
        notifier: &notifier,
        reports: &reports,
        clock: &clock,
    };
    let mut alarm: Value =
        serde_json::from_str(include_str!("../../events/failover-alarm.json")).unwrap();
    alarm["detail"]["state"]["timestamp"] =
        json!((Utc::now() - Duration::seconds(20)).to_rfc3339());
    let tick: Value =
        serde_json::from_str(include_str!("../../events/failover-tick.json")).unwrap();
    let mut phase = "Normal".to_string();
    let mut failures = 0;
    for n in 0..60 {
        // Lambda retries the alarm's failed invocation; the schedule ticks after it.
        let event = if phase == "Normal" { &alarm } else { &tick };
        let now = clock.now();
        let invocation = Invocation {
            request_id: format!("req-{n}"),
            now,
            deadline: now + Duration::minutes(15),
        };
        if run.handle(event, &invocation).await.is_err() {
            failures += 1;
        }
        let doc = state::load::<DrDocument>(&reader, &dr_key(&plan))
            .await
            .unwrap()
            .map(|d| d.value);
        if let Some(lease) = doc.as_ref().and_then(|d| d.lease.as_ref()) {
            clock.skip_to(lease.until + Duration::seconds(1));
        }
        phase = doc.map_or_else(|| "Normal".into(), |d| d.state.phase());
        if phase == "FailedOver" {
            break;
        }
    }
    assert_eq!(
        phase, "FailedOver",
        "the failover completes despite the throttling"
    );
    assert!(
        throttled(&account).await > 0,
        "the table did refuse some writes"
    );
    eprintln!("{failures} invocation(s) failed on a throttled write");

    let timeline = reader.timeline(&plan.name, None).await.unwrap();
    let transitions = account.transitions().await.unwrap();
    let promotions = transitions.transitions[baseline..]
        .iter()
        // A promotion's first step (modifying, then a reboot).
        .filter(|t| t.kind == "promote_read_replica" && t.from == "modifying")
        .count();
    assert_eq!(
        promotions, 1,
        "one promotion: {:#?}",
        transitions.transitions
    );
    assert!(
        intents(&timeline, "failover.promote") >= promotions,
        "{timeline:#?}"
    );
    let dns_changes = transitions.transitions[baseline..]
        .iter()
        .filter(|t| t.service == "route53" && t.kind == "change_resource_record_sets")
        .count();
    assert!(dns_changes >= 1);
    assert!(
        intents(&timeline, "failover.switch-dns") + intents(&timeline, "failover.traffic")
            >= dns_changes,
        "{dns_changes} DNS changes: {timeline:#?}"
    );
}

#[tokio::test]
async fn throttled_state_writes_leave_no_deletion_unrecorded() {
    let account = LocalAws::from_env().fresh_account();
    let mut p = serde_json::to_value(local_plan()).unwrap();
    p["retention"] = json!({"primary": {"keep_daily": 2}, "dr": {"keep_daily": 2},
                            "max_deletes_per_run": 100, "deletes_per_second": 10});
    let plan = harness::plan_in_account(&parse_plan(&p.to_string()).unwrap(), &account);
    let world = create_world(&account, &plan).await.expect("world");
    let rds = &world.clients.primary.rds;
    let seeds: Vec<SeedSnapshot> = (0..20)
        .map(|d| {
            SeedSnapshot::lifeboat(
                &plan.name,
                "orders-db",
                "orders-db",
                format!("lb-orders-d{d:02}"),
                Utc::now() - Duration::days(d),
            )
        })
        .collect();
    seed_snapshots(&account, rds, &seeds).await.unwrap();
    let before = manual_snapshot_names(rds).await.unwrap();
    let snapshots = AwsSnapshots::new(&plan, &world.clients, &account.settings()).await;
    let store = single_attempt_store(&world);
    let (notifier, reports) = (notifier(&world), reports(&world));
    throttle_state_writes(&account, &world).await;
    let run = RetentionRun {
        plan: &plan,
        port: &snapshots,
        state: &store,
        notifier: &notifier,
        reports: &reports,
    };
    // Daily runs, each its own event, until everything due is gone.
    for n in 0..12 {
        let now = Utc::now();
        let tick = json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0", "id": format!("retention-{n}"),
                          "detail-type": "Scheduled Event", "source": "aws.events",
                          "time": now.to_rfc3339(), "detail": {}});
        let invocation = Invocation {
            request_id: format!("req-{n}"),
            now,
            deadline: now + Duration::minutes(15),
        };
        let _ = run.handle(&tick, &invocation).await;
        if manual_snapshot_names(rds).await.unwrap().len() <= 2 {
            break;
        }
    }
    assert!(
        throttled(&account).await > 0,
        "the table did refuse some writes"
    );
    let after = manual_snapshot_names(rds).await.unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    let timeline = crate::support::state_store(&world)
        .timeline(&plan.name, None)
        .await
        .unwrap();
    // Every snapshot that is gone had its intent in the timeline.
    for gone in before.iter().filter(|n| !after.contains(n)) {
        assert!(
            timeline.iter().any(|e| e.action == "retention.delete"
                && e.outcome == Outcome::Intended
                && e.data["snapshot"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!(":{gone}")))),
            "{gone} deleted without its entry"
        );
    }
}

#[tokio::test]
async fn throttled_state_writes_leave_no_restore_or_its_teardown_unrecorded() {
    let account = LocalAws::from_env().fresh_account();
    let plan = harness::plan_in_account(&local_plan(), &account);
    let world = create_world(&account, &plan).await.expect("world");
    let snapshot = format!("lifeboat-{}-orders-db-20261125t0900z", plan.name);
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    world
        .clients
        .dr
        .rds
        .create_db_snapshot()
        .db_instance_identifier("orders-db-dr")
        .db_snapshot_identifier(&snapshot)
        .tags(tag(PLAN_TAG, &plan.name))
        .tags(tag(RESOURCE_TAG, "orders-db"))
        .tags(tag(CREATED_TAG, "2026-11-25T09:00:00Z"))
        .send()
        .await
        .expect("DR snapshot");
    account.settle().await.unwrap();
    put_credentials_secret(
        &world.clients.home.config,
        "lifeboat-local/orders-db",
        "postgres",
        "",
    )
    .await
    .unwrap();
    let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    let mapping = format!("orders-db={}", db.url());
    let lookup = move |k: &str| (k == LOCAL_DATABASE_URLS_ENV).then(|| mapping.clone());
    let port =
        AwsValidation::new(&plan, &world.clients, &account.settings(), &lookup).expect("adapter");
    let reader = crate::support::state_store(&world);
    let store = single_attempt_store(&world);
    let (notifier, reports) = (notifier(&world), reports(&world));
    let clock = SkippingClock::default();
    let baseline = account.transitions().await.unwrap().transitions.len();
    throttle_state_writes(&account, &world).await;
    let runner = ValidationRunner {
        plan: &plan,
        port: &port,
        state: &store,
        notifier: &notifier,
        reports: &reports,
        clock: &clock,
    };
    let schedule: Value =
        serde_json::from_str(include_str!("../../events/validation-schedule.json")).unwrap();
    let key = MachineKey::new(&plan.name, machine_name("orders-db"));
    let mut done = false;
    for n in 0..40 {
        // The schedule until a run has started (EventBridge retries a failed one), then
        // ticks.
        let started = state::load::<ValidationDoc>(&reader, &key)
            .await
            .unwrap()
            .is_some_and(|d| d.value.run.is_some() || d.value.last.is_some());
        let event = if started {
            json!({"action": "tick"})
        } else {
            schedule.clone()
        };
        let now = clock.now();
        let invocation = Invocation {
            request_id: format!("req-{n}"),
            now,
            deadline: now + Duration::minutes(15),
        };
        let _ = runner.handle(&event, &invocation).await;
        account.settle().await.unwrap();
        let doc = state::load::<ValidationDoc>(&reader, &key)
            .await
            .unwrap()
            .map(|d| d.value);
        if let Some(lease) = doc.as_ref().and_then(|d| d.lease.as_ref()) {
            clock.skip_to(lease.until + Duration::seconds(1));
        }
        if doc.is_some_and(|d| d.run.is_none() && d.last.is_some()) {
            done = true;
            break;
        }
    }
    assert!(done, "the validation completes despite the throttling");
    assert!(
        throttled(&account).await > 0,
        "the table did refuse some writes"
    );
    let timeline = reader.timeline(&plan.name, None).await.unwrap();
    let transitions = account.transitions().await.unwrap();
    let count = |kind: &str| {
        transitions.transitions[baseline..]
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| &t.resource)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let restores = count("restore_db_instance_from_db_snapshot");
    assert!(restores >= 1);
    assert!(
        intents(&timeline, "validation.restore") >= restores,
        "{restores} restores: {timeline:#?}"
    );
    let deletions = count("delete_db_instance");
    assert!(deletions >= 1);
    assert!(
        intents(&timeline, "validation.delete-instance") >= deletions,
        "{deletions} deletions: {timeline:#?}"
    );
}

/// The intents of `action` in `timeline`, by the snapshot their data names.
fn intended_snapshots<'a>(timeline: &'a [AuditEntry], action: &str) -> Vec<&'a AuditEntry> {
    timeline
        .iter()
        .filter(|e| e.action == action && e.outcome == Outcome::Intended)
        .collect()
}

#[tokio::test]
async fn throttled_state_writes_leave_no_snapshot_or_copy_unrecorded() {
    let (account, plan, world) = world().await;
    let reader = crate::support::state_store(&world);
    let store = single_attempt_store(&world);
    let snapshots = AwsSnapshots::new(&plan, &world.clients, &account.settings()).await;
    let (notifier, reports) = (notifier(&world), reports(&world));
    let baseline = account.transitions().await.unwrap().transitions.len();
    throttle_state_writes(&account, &world).await;
    let run = SnapshotRun {
        plan: &plan,
        port: &snapshots,
        state: &store,
        notifier: &notifier,
        reports: &reports,
    };
    let tick = |id: &str| {
        json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0",
               "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
               "time": Utc::now().to_rfc3339(), "detail": {}})
    };
    // The window's tick, retried (as Lambda retries a failed one; each run needs several
    // writes in a row through a table refusing half of them) until every snapshot is
    // taken; then, once they are available, ticks until every copy has started.
    let mut created = false;
    for n in 0..100 {
        let now = Utc::now();
        let invocation = Invocation {
            request_id: format!("req-{n}"),
            now,
            deadline: now + Duration::minutes(15),
        };
        if run.handle(&tick("window-1"), &invocation).await.is_ok() {
            created = true;
            break;
        }
    }
    assert!(
        created,
        "the window's snapshots are taken despite the throttling"
    );
    account.settle().await.unwrap();
    let copies = |transitions: &[harness::realism::Transition]| {
        transitions
            .iter()
            .filter(|t| t.kind == "copy_db_snapshot" || t.kind == "copy_db_cluster_snapshot")
            .count()
    };
    for n in 0..100 {
        let now = Utc::now();
        let invocation = Invocation {
            request_id: format!("copy-{n}"),
            now,
            deadline: now + Duration::minutes(15),
        };
        let outcome = run.handle(&tick(&format!("copies-{n}")), &invocation).await;
        let transitions = account.transitions().await.unwrap().transitions;
        if outcome.is_ok() && copies(&transitions[baseline..]) >= 2 {
            break;
        }
    }
    assert!(
        throttled(&account).await > 0,
        "the table did refuse some writes"
    );

    let timeline = reader.timeline(&plan.name, None).await.unwrap();
    let transitions = account.transitions().await.unwrap().transitions;
    let made = &transitions[baseline..];
    assert!(copies(made) >= 2, "both databases copied: {made:#?}");
    let creations = intended_snapshots(&timeline, "snapshot.create");
    let copy_intents = intended_snapshots(&timeline, "snapshot.copy");
    let mut checked = 0;
    for t in made {
        let intents = match t.kind.as_str() {
            "create_db_snapshot" | "create_db_cluster_snapshot" => &creations,
            "copy_db_snapshot" | "copy_db_cluster_snapshot" => &copy_intents,
            _ => continue,
        };
        // Its intent names it, and was committed before the call (the entry's time is
        // the invocation's start, before any of its calls).
        let intent = intents
            .iter()
            .find(|e| e.data["snapshot"].as_str() == Some(t.resource.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{} of {} without its entry: {timeline:#?}",
                    t.kind, t.resource
                )
            });
        assert!(
            intent.at.timestamp_millis() as f64 / 1000.0 <= t.started_at_wall,
            "{}: entry at {} after the call at {}",
            t.resource,
            intent.at,
            t.started_at_wall
        );
        checked += 1;
    }
    assert!(
        checked >= 4,
        "snapshots and copies of both databases: {made:#?}"
    );
    // Table backups are named by ARN in the emulator's log: counted instead.
    let backups = made.iter().filter(|t| t.kind == "create_backup").count();
    assert!(backups >= 1);
    assert!(
        creations
            .iter()
            .filter(|e| e.data["kind"] == "table_backup")
            .count()
            >= backups,
        "{backups} table backups: {timeline:#?}"
    );
}

#[tokio::test]
async fn throttled_state_writes_leave_no_sweep_deletion_unrecorded() {
    let (account, plan, world) = world().await;
    let rds = &world.clients.dr.rds;
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    // Validation databases a crash left behind a day ago.
    let leftovers: Vec<String> = (1..=3)
        .map(|n| format!("lbval-orders-db-261124010{n}"))
        .collect();
    for id in &leftovers {
        rds.create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t4g.micro")
            .allocated_storage(20)
            .master_username("lifeboat_admin")
            .master_user_password("not-a-secret-1")
            .tags(tag(PLAN_TAG, &plan.name))
            .tags(tag(PURPOSE_TAG, PURPOSE_VALIDATION))
            .tags(tag(CREATED_TAG, "2026-11-24T01:00:00Z"))
            .send()
            .await
            .unwrap();
    }
    account.settle().await.unwrap();
    // No snapshot to restore: the runs cannot start, the sweep runs all the same.
    let lookup = |_: &str| None;
    let port =
        AwsValidation::new(&plan, &world.clients, &account.settings(), &lookup).expect("adapter");
    let reader = crate::support::state_store(&world);
    let store = single_attempt_store(&world);
    let (notifier, reports) = (notifier(&world), reports(&world));
    let clock = SkippingClock::default();
    let baseline = account.transitions().await.unwrap().transitions.len();
    throttle_next_state_write(&account, &world).await;
    throttle_state_writes(&account, &world).await;
    let runner = ValidationRunner {
        plan: &plan,
        port: &port,
        state: &store,
        notifier: &notifier,
        reports: &reports,
        clock: &clock,
    };
    let schedule: Value =
        serde_json::from_str(include_str!("../../events/validation-schedule.json")).unwrap();
    let deleted = |transitions: &[harness::realism::Transition]| {
        transitions
            .iter()
            .filter(|t| t.kind == "delete_db_instance" && t.resource.starts_with("lbval-"))
            .map(|t| t.resource.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let mut failures = 0;
    for n in 0..20 {
        let now = clock.now();
        let invocation = Invocation {
            request_id: format!("req-{n}"),
            now,
            deadline: now + Duration::minutes(15),
        };
        if runner.handle(&schedule, &invocation).await.is_err() {
            failures += 1;
        }
        let transitions = account.transitions().await.unwrap().transitions;
        if deleted(&transitions[baseline..]).len() == leftovers.len() {
            break;
        }
    }
    assert!(
        throttled(&account).await > 0,
        "the table did refuse some writes"
    );
    eprintln!("{failures} sweep(s) failed on a throttled write");
    let transitions = account.transitions().await.unwrap().transitions;
    let made = &transitions[baseline..];
    assert_eq!(
        deleted(made).into_iter().collect::<Vec<_>>(),
        leftovers,
        "every leftover is swept in the end"
    );
    let timeline = reader.timeline(&plan.name, None).await.unwrap();
    for t in made
        .iter()
        .filter(|t| t.kind == "delete_db_instance" && t.resource.starts_with("lbval-"))
    {
        let intent = timeline
            .iter()
            .find(|e| {
                e.action == "validation.sweep"
                    && e.outcome == Outcome::Intended
                    && e.data["deleted"]["instance"].as_str() == Some(t.resource.as_str())
            })
            .unwrap_or_else(|| panic!("{} deleted without its entry: {timeline:#?}", t.resource));
        assert!(
            intent.at.timestamp_millis() as f64 / 1000.0 <= t.started_at_wall + 1.0,
            "{}: entry at {} after the call at {}",
            t.resource,
            intent.at,
            t.started_at_wall
        );
    }
}
