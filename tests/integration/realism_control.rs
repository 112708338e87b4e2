//! The realism layer's control API itself: its settings, its refusal of bad input (with
//! the field named and nothing changed), and moto's reset clearing all of it.

use crate::support::{available_instance, frozen_account};
use harness::PrivateEmulator;
use harness::realism::{Fault, Limits};
use serde_json::{Value, json};

#[tokio::test]
async fn the_config_has_documented_defaults_and_takes_partial_updates() {
    let account = harness::LocalAws::from_env().fresh_account();
    let config = account.realism_config().await.unwrap();
    assert_eq!(config.account, account.id);
    assert_eq!(config.durations["db_snapshot_create"], 300.0);
    assert_eq!(config.durations["route53_change"], 60.0);
    assert_eq!(config.durations["db_snapshot_copy"], 1200.0);
    assert_eq!(config.limits.manual_db_snapshots_per_region, Some(100));
    assert_eq!(config.limits.concurrent_copies_per_region, Some(20));
    // Compressed so the longest default wait is a few seconds of real time.
    let longest = config.durations.values().cloned().fold(0.0, f64::max);
    assert!(longest * config.time_scale <= 4.0, "{config:?}");

    let updated = account
        .set_durations(&[("db_snapshot_create", 30.0)])
        .await
        .unwrap();
    assert_eq!(updated.durations["db_snapshot_create"], 30.0);
    assert_eq!(updated.durations["route53_change"], 60.0);
    assert_eq!(updated.time_scale, config.time_scale);
    let limited = account
        .set_limits(Limits {
            concurrent_copies_per_region: Some(3),
            ..Limits::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.limits.concurrent_copies_per_region, Some(3));
    assert_eq!(limited.durations["db_snapshot_create"], 30.0);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named_and_nothing_changed() {
    let account = frozen_account().await;
    let local = harness::LocalAws::from_env();
    let before = account.realism_config().await.unwrap();
    let id = &account.id;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "meteor"}),
            "kind",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "region_outage", "region": "mars-north-1"}),
            "region",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "region_outage"}),
            "region",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "throttle", "service": "rds", "count": -1}),
            "count",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "throttle", "service": "rds", "fraction": 1.5}),
            "fraction",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "throttle", "service": "rds", "count": 1, "fraction": 0.5}),
            "fraction",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "throttle", "service": "rdss"}),
            "service",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "throttle", "operation": "CreateDBSnapshot"}),
            "operation",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "throttle", "service": "rds", "operation": "MakeItFaster"}),
            "operation",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "server_error", "service": "rds", "status": 404}),
            "status",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "throttle", "service": "rds", "colour": "red"}),
            "colour",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "hang", "service": "rds"}),
            "seconds",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "hang", "service": "rds", "seconds": 0}),
            "seconds",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "hang", "service": "rds", "seconds": 901}),
            "seconds",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": id, "kind": "throttle", "service": "rds", "seconds": 5}),
            "seconds",
        ),
        (
            "POST",
            "/_lifeboat/faults",
            json!({"account": "12345", "kind": "throttle"}),
            "account",
        ),
        (
            "POST",
            "/_lifeboat/config",
            json!({"account": id, "durations": {"db_snapshot_create": -5}}),
            "durations.db_snapshot_create",
        ),
        (
            "POST",
            "/_lifeboat/config",
            json!({"account": id, "durations": {"snapshot_speed": 5}}),
            "durations.snapshot_speed",
        ),
        (
            "POST",
            "/_lifeboat/config",
            json!({"account": id, "time_scale": 0, "limits": {"concurrent_copies_per_region": 5}}),
            "time_scale",
        ),
        (
            "POST",
            "/_lifeboat/config",
            json!({"account": id, "limits": {"concurrent_copies_per_region": -1}}),
            "limits.concurrent_copies_per_region",
        ),
        (
            "POST",
            "/_lifeboat/config",
            json!({"account": id, "limits": {"snapshots_per_day": 5}}),
            "limits.snapshots_per_day",
        ),
        (
            "POST",
            "/_lifeboat/clock",
            json!({"account": id, "advance_seconds": -60}),
            "advance_seconds",
        ),
        (
            "POST",
            "/_lifeboat/replica-lag",
            json!({"account": id, "region": "moon-1", "db_instance": "x", "seconds": 1}),
            "region",
        ),
        (
            "POST",
            "/_lifeboat/replica-lag",
            json!({"account": id, "region": "us-west-2", "db_instance": "x", "seconds": -1}),
            "seconds",
        ),
        (
            "POST",
            "/_lifeboat/health-checks",
            json!({"account": id, "health_check_id": "no-such-check", "healthy": false}),
            "health_check_id",
        ),
    ];
    for (method, path, body, field) in cases {
        let err = local
            .control(method, path, &body)
            .await
            .expect_err(&format!("{body} must be refused"));
        assert_eq!(err.status, 400, "{body}: {err}");
        assert_eq!(err.field.as_deref(), Some(field), "{body}: {err}");
        assert!(err.message.contains(field), "the message names it: {err}");
    }
    let not_json = local
        .control("POST", "/_lifeboat/faults", &Value::String("{kind".into()))
        .await
        .unwrap_err();
    assert_eq!(not_json.status, 400);

    let after = account.realism_config().await.unwrap();
    assert_eq!(after.durations, before.durations);
    assert_eq!(after.limits, before.limits);
    assert_eq!(after.time_scale, before.time_scale);
    assert!(
        after.now - before.now < 60.0,
        "the clock was not advanced: {} s",
        after.now - before.now
    );
    let faults = local
        .control(
            "GET",
            &format!("/_lifeboat/faults?account={id}"),
            &Value::Null,
        )
        .await
        .unwrap();
    assert_eq!(faults["faults"], json!([]), "no fault was added");
    let unknown = local
        .control("GET", "/_lifeboat/nothing-here", &Value::Null)
        .await
        .unwrap_err();
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn the_emulators_reset_clears_every_realism_setting() {
    // moto's reset wipes every account: on an emulator of its own.
    let emulator = PrivateEmulator::start().await.unwrap();
    let account = emulator.local.fresh_account();
    account.set_time_scale(1.0).await.unwrap();
    account
        .set_durations(&[("db_snapshot_create", 5.0)])
        .await
        .unwrap();
    account
        .set_limits(Limits {
            manual_db_snapshots_per_region: Some(1),
            ..Limits::default()
        })
        .await
        .unwrap();
    let rds = account.regional("us-east-1").await.rds;
    available_instance(&account, &rds, "orders-db").await;
    account
        .inject(Fault::throttle("dynamodb").fraction(1.0))
        .await
        .unwrap();
    assert!(!account.transitions().await.unwrap().transitions.is_empty());

    emulator.local.reset().await.unwrap();

    let config = account.realism_config().await.unwrap();
    assert_eq!(config.durations["db_snapshot_create"], 300.0);
    assert_eq!(config.limits.manual_db_snapshots_per_region, Some(100));
    assert!(config.time_scale < 1.0, "back to the default scale");
    assert!(account.transitions().await.unwrap().transitions.is_empty());
    account
        .regional("us-east-1")
        .await
        .dynamodb
        .list_tables()
        .send()
        .await
        .expect("the fault is gone");
    assert!(
        rds.describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
            .is_empty(),
        "and moto's resources with it"
    );
}
