use super::validate::{is_sql_identifier, is_valid_interval, max_kept, normalize_dns_name};
use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const LOCAL: &str = include_str!("../../../infra/plans/local.json");
const EXAMPLE: &str = include_str!("../../../infra/plans/example.json");

fn local() -> Value {
    serde_json::from_str(LOCAL).unwrap()
}

/// Parse `plan` and return its issues as `field: problem; fix` lines.
fn issues_of(plan: &Value) -> Vec<String> {
    match parse_plan(&plan.to_string()) {
        Ok(_) => Vec::new(),
        Err(PlanError::Invalid(issues)) => issues.iter().map(|i| i.to_string()).collect(),
        Err(other) => panic!("expected validation issues, got: {other}"),
    }
}

fn assert_issue(plan: &Value, field: &str, words: &str) {
    let issues = issues_of(plan);
    assert!(
        issues
            .iter()
            .any(|i| i.starts_with(&format!("`{field}`")) && i.contains(words)),
        "expected an issue on `{field}` mentioning {words:?}, got {issues:#?}"
    );
}

#[test]
fn the_shipped_plans_are_valid() {
    let local = parse_plan(LOCAL).expect("infra/plans/local.json");
    assert_eq!(local.name, "lifeboat-local");
    assert_eq!(local.resources.len(), 3);
    let orders = local.resource("orders-db").unwrap();
    assert_eq!(orders.aws_identifier(), "orders-db");
    assert_eq!(orders.interval_minutes(&local.snapshots), 60);
    let sessions = local.resource("sessions").unwrap();
    assert_eq!(sessions.aws_identifier(), "lifeboat-local-sessions");
    assert_eq!(sessions.interval_minutes(&local.snapshots), 1440);

    let example = parse_plan(EXAMPLE).expect("infra/plans/example.json");
    assert_eq!(example.failover.mode, FailoverMode::Manual);
    assert_eq!(example.snapshots.copy_to[1].key(), "eu-west-1@210987654321");
    assert_eq!(example.retention_for("us-east-1").keep_daily, 7);
    assert_eq!(example.retention_for("eu-west-1").keep_daily, 14);
    assert!(example.game_days.allowed);
    assert_eq!(
        example.game_days.injection,
        InjectionMode::Fis {
            experiment_template_id: None
        }
    );
}

#[test]
fn defaults_fill_what_the_plan_leaves_out() {
    let mut p = local();
    let o = p.as_object_mut().unwrap();
    o.remove("failback");
    o.remove("validation");
    o.remove("quotas");
    p["snapshots"].as_object_mut().unwrap().remove("tiers");
    p["snapshots"]
        .as_object_mut()
        .unwrap()
        .remove("interval_minutes");
    p["failover"]
        .as_object_mut()
        .unwrap()
        .remove("cooldown_minutes");
    // A daily default interval makes a 15-minute RPO without replica impossible; the
    // resources that have no replica get a daily RPO.
    p["resources"][1]["rpo_minutes"] = json!(1440);
    let plan = parse_plan(&p.to_string()).unwrap();
    assert_eq!(plan.failback.stages, vec![10, 50, 100]);
    assert_eq!(plan.failback.bake_minutes, 15);
    assert_eq!(plan.validation.interval_hours, 24);
    assert_eq!(plan.validation.restore_from, RestoreFrom::Dr);
    assert_eq!(plan.quotas.manual_db_snapshots_per_region, 100);
    assert_eq!(plan.quotas.concurrent_copies_per_region, 20);
    assert_eq!(plan.snapshots.interval_minutes, 1440);
    assert_eq!(plan.snapshots.tiers.weekly_on, Weekday::Sunday);
    assert_eq!(plan.failover.cooldown_minutes, 60);
    assert_eq!(plan.dns.record_ttl_seconds, 60);
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let mut p = local();
    p["resources"][0]["rpo_minute"] = json!(10);
    let err = parse_plan(&p.to_string()).unwrap_err();
    match &err {
        PlanError::Malformed { path, reason } => {
            assert_eq!(path, "resources[0].rpo_minute");
            assert!(
                reason.contains("unknown field `rpo_minute`, expected one of"),
                "{reason}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("plan reference in README.md"));

    let mut p = local();
    p["failover"]["auto"] = json!(true);
    let err = parse_plan(&p.to_string()).unwrap_err().to_string();
    assert!(
        err.contains("at `failover.auto`") && err.contains("unknown field `auto`"),
        "{err}"
    );
}

#[test]
fn wrong_types_and_negative_numbers_name_the_field() {
    let mut p = local();
    p["resources"][2]["rto_minutes"] = json!(-5);
    match parse_plan(&p.to_string()).unwrap_err() {
        PlanError::Malformed { path, reason } => {
            assert_eq!(path, "resources[2].rto_minutes");
            assert!(reason.contains("-5"), "{reason}");
        }
        other => panic!("{other}"),
    }
    let mut p = local();
    p["resources"][0]["kind"] = json!("ec2_instance");
    match parse_plan(&p.to_string()).unwrap_err() {
        PlanError::Malformed { path, reason } => {
            assert_eq!(path, "resources[0].kind");
            assert!(
                reason.contains("unknown variant `ec2_instance`"),
                "{reason}"
            );
        }
        other => panic!("{other}"),
    }
    let mut p = local();
    p["failover"]["mode"] = json!("sometimes");
    let err = parse_plan(&p.to_string()).unwrap_err().to_string();
    assert!(err.contains("failover.mode"), "{err}");
}

#[test]
fn not_json_or_trailing_text_is_malformed() {
    let err = parse_plan("{\"name\": ").unwrap_err();
    assert!(matches!(err, PlanError::Malformed { .. }), "{err}");
    let err = parse_plan(&format!("{LOCAL} trailing")).unwrap_err();
    assert!(
        matches!(err, PlanError::Malformed { ref path, .. } if path == "."),
        "{err}"
    );
    let err = parse_plan("").unwrap_err();
    assert!(matches!(err, PlanError::Malformed { .. }));
}

#[test]
fn duplicate_resources_are_rejected() {
    let mut p = local();
    let first = p["resources"][0].clone();
    p["resources"].as_array_mut().unwrap().push(first);
    assert_issue(&p, "resources[3].id", "appears more than once");
    assert_issue(&p, "resources[3].identifier", "is protected twice");
    assert_issue(&p, "resources[3].dns_record", "is used by two resources");
}

/// The example plan with every identifier spelled in mixed case.
fn example_in_mixed_case() -> Value {
    let mut p: Value = serde_json::from_str(EXAMPLE).unwrap();
    p["resources"][0]["identifier"] = json!("Orders-PROD-Postgres");
    p["resources"][0]["replica"]["identifier"] = json!("Orders-Prod-Postgres-DR");
    p["resources"][1]["identifier"] = json!("BILLING-prod");
    p["resources"][1]["replica"] =
        json!({"identifier": "Billing-Prod-DR", "global_cluster": "Billing-Global"});
    p["resources"][2]["identifier"] = json!("Orders-Prod-Carts");
    p
}

#[test]
fn rds_identifiers_load_in_rds_form_and_table_names_as_written() {
    let plan = parse_plan(&example_in_mixed_case().to_string()).unwrap();
    let orders = plan.resource("orders-db").unwrap();
    assert_eq!(orders.aws_identifier(), "orders-prod-postgres");
    assert_eq!(
        orders.replica.as_ref().unwrap().identifier,
        "orders-prod-postgres-dr"
    );
    let billing = plan.resource("billing-db").unwrap();
    assert_eq!(billing.aws_identifier(), "billing-prod");
    let replica = billing.replica.as_ref().unwrap();
    assert_eq!(replica.identifier, "billing-prod-dr");
    assert_eq!(replica.global_cluster.as_deref(), Some("billing-global"));
    // DynamoDB table names are case-sensitive: kept exactly.
    let carts = plan.resource("carts").unwrap();
    assert_eq!(carts.aws_identifier(), "Orders-Prod-Carts");
    assert!(carts.is_named("Orders-Prod-Carts"));
    assert!(!carts.is_named("orders-prod-carts"));
    assert!(orders.is_named("ORDERS-prod-postgres"));
    // The same plan in lower case is the same plan, but for the table.
    let lower = parse_plan(EXAMPLE).unwrap();
    let mut respelled = plan.clone();
    respelled.resources[2].identifier = lower.resources[2].identifier.clone();
    assert_eq!(respelled, lower);
}

#[test]
fn identifiers_are_told_apart_by_their_services_rule() {
    // Two spellings of one RDS instance are one instance, protected twice.
    let mut p = local();
    let mut twin = p["resources"][0].clone();
    twin["id"] = json!("orders-db-again");
    twin["identifier"] = json!("Orders-DB");
    twin.as_object_mut().unwrap().remove("dns_record");
    twin.as_object_mut().unwrap().remove("replica");
    twin["rpo_minutes"] = json!(60);
    p["resources"].as_array_mut().unwrap().push(twin);
    assert_issue(&p, "resources[3].identifier", "is protected twice");
    // Two tables whose names differ in case are two tables.
    let mut p = local();
    let mut other = p["resources"][2].clone();
    other["id"] = json!("sessions-upper");
    other["identifier"] = json!("LIFEBOAT-local-sessions");
    p["resources"].as_array_mut().unwrap().push(other);
    assert_eq!(issues_of(&p), Vec::<String>::new());
    // A message quotes the plan as written.
    let mut p = local();
    p["resources"][0]["replica"]["identifier"] = json!("Orders--DR");
    assert_issue(
        &p,
        "resources[0].replica.identifier",
        "\"Orders--DR\" is not a valid RDS identifier",
    );
}

#[test]
fn the_dr_region_must_differ_from_the_primary() {
    let mut p = local();
    p["regions"]["dr"] = json!("us-east-1");
    assert_issue(&p, "regions.dr", "a regional disaster would take both");
    let mut p = local();
    p["regions"]["primary"] = json!("US East");
    assert_issue(&p, "regions.primary", "is not an AWS region name");
}

#[test]
fn a_zero_rpo_needs_a_replica() {
    let mut p = local();
    p["resources"][1]["rpo_minutes"] = json!(0);
    assert_issue(
        &p,
        "resources[1].rpo_minutes",
        "RPO of zero needs a continuously replicated standby",
    );
    // With a replica, a zero RPO is accepted (the lag guard then bounds data loss).
    let mut p = local();
    p["resources"][0]["rpo_minutes"] = json!(0);
    assert!(issues_of(&p).is_empty(), "{:?}", issues_of(&p));
}

#[test]
fn an_rpo_tighter_than_the_snapshot_interval_needs_a_replica() {
    let mut p = local();
    p["resources"][1]["rpo_minutes"] = json!(30);
    assert_issue(
        &p,
        "resources[1].rpo_minutes",
        "snapshots are taken every 60 minutes",
    );
    let mut p = local();
    p["resources"][2]["snapshot_interval_minutes"] = json!(50);
    assert_issue(
        &p,
        "resources[2].snapshot_interval_minutes",
        "not a usable snapshot interval",
    );
}

#[test]
fn failback_weights_must_rise_to_exactly_100() {
    for (stages, field, words) in [
        (json!([10, 50, 90]), "failback.stages", "end at 90 %"),
        (
            json!([50, 10, 100]),
            "failback.stages[1]",
            "does not increase",
        ),
        (json!([0, 100]), "failback.stages[0]", "not a percentage"),
        (json!([10, 150]), "failback.stages[1]", "not a percentage"),
        (json!([]), "failback.stages", "no traffic stages"),
    ] {
        let mut p = local();
        p["failback"]["stages"] = stages;
        assert_issue(&p, field, words);
    }
}

#[test]
fn retention_that_keeps_nothing_or_absurd_counts_is_rejected() {
    let mut p = local();
    p["retention"]["dr"] = json!({});
    assert_issue(&p, "retention.dr", "every count is zero");
    let mut p = local();
    p["retention"]["primary"]["keep_daily"] = json!(100000);
    assert_issue(
        &p,
        "retention.primary.keep_daily",
        "more than Lifeboat allows (3660)",
    );
    let mut p = local();
    p["retention"]["max_deletes_per_run"] = json!(0);
    assert_issue(&p, "retention.max_deletes_per_run", "outside 1..=1000");
    // Counts that would overflow a sum are reported, not a panic.
    let mut p = local();
    p["retention"]["dr"] =
        json!({"keep_daily": u32::MAX, "keep_weekly": u32::MAX, "min_keep": u32::MAX});
    assert_issue(
        &p,
        "retention.dr.keep_weekly",
        "more than Lifeboat allows (520)",
    );
    assert_issue(
        &p,
        "quotas.manual_db_snapshots_per_region",
        &format!("can keep up to {} manual DB snapshots", u32::MAX),
    );
}

#[test]
fn a_policy_that_cannot_fit_the_snapshot_quota_is_rejected() {
    let mut p = local();
    p["quotas"] = json!({"manual_db_snapshots_per_region": 20});
    // DR keeps up to 7 + 4 + 12 + 1 by the buckets, 3 - 1 more by min_keep (the newest
    // counts in both), plus 2 = 28 snapshots of orders-db.
    assert_issue(
        &p,
        "quotas.manual_db_snapshots_per_region",
        "can keep up to 28 manual DB snapshots in us-west-2, over the quota of 20",
    );
    let plan = parse_plan(LOCAL).unwrap();
    let usage = quota_usage(&plan);
    assert_eq!(usage["us-east-1"].db_snapshots, 7 + 4 + 3 + (3 - 1) + 2);
    assert_eq!(
        usage["us-west-2"].cluster_snapshots,
        7 + 4 + 12 + 1 + (3 - 1) + 2
    );
}

#[test]
fn the_quota_bound_adds_min_keep_to_the_buckets() {
    let policy = |daily, monthly, min_keep| RetentionPolicy {
        keep_daily: daily,
        keep_weekly: 0,
        keep_monthly: monthly,
        keep_yearly: 0,
        min_keep,
    };
    // Hourly snapshots: min_keep 3 keeps three of today's, the buckets six other days
    // and a month; the newest is in both. Then the newest validated and one more taken
    // before the next run.
    assert_eq!(max_kept(&policy(7, 1, 3), 3), 8 + 3 - 1 + 2);
    assert_eq!(max_kept(&policy(7, 0, 0), 0), 7 + 2);
    assert_eq!(max_kept(&policy(0, 0, 5), 5), 5 + 2);
    // Nothing asked for: the newest available is still kept.
    assert_eq!(max_kept(&policy(0, 0, 0), 0), 1 + 2);
    assert_eq!(max_kept(&policy(u32::MAX, u32::MAX, 0), u32::MAX), u32::MAX);
}

#[test]
fn copies_must_reach_the_dr_region_with_a_key_of_that_region() {
    let mut p = local();
    p["snapshots"]["copy_to"] = json!([]);
    assert_issue(&p, "snapshots.copy_to", "lost with the primary region");
    let mut p = local();
    p["snapshots"]["copy_to"][0]["kms_key_id"] =
        json!("arn:aws:kms:us-east-1:123456789012:key/abc");
    assert_issue(
        &p,
        "snapshots.copy_to[0].kms_key_id",
        "the key is in us-east-1, but copies go to us-west-2",
    );
    let mut p = local();
    p["snapshots"]["copy_to"][0]["region"] = json!("eu-west-1");
    assert_issue(&p, "snapshots.copy_to", "no destination is the DR region");
    let mut p = local();
    p["snapshots"]["copy_to"][0]["account_id"] = json!("12345");
    assert_issue(&p, "snapshots.copy_to[0].account_id", "12-digit");
    assert_issue(&p, "snapshots.copy_to[0].role_arn", "needs a role");
}

#[test]
fn tables_need_an_export_bucket() {
    let mut p = local();
    p["snapshots"]
        .as_object_mut()
        .unwrap()
        .remove("dynamodb_export_bucket");
    assert_issue(
        &p,
        "snapshots.dynamodb_export_bucket",
        "cannot be copied across regions",
    );
}

#[test]
fn hostile_sql_identifiers_are_rejected_at_load() {
    for (path, value, field) in [
        (
            "tables",
            json!([{"name": "orders; DROP TABLE users"}]),
            "resources[0].validation.tables[0].name",
        ),
        (
            "tables",
            json!([{"name": "orders\" OR 1=1 --"}]),
            "resources[0].validation.tables[0].name",
        ),
        (
            "tables",
            json!([{"name": "a.b.c"}]),
            "resources[0].validation.tables[0].name",
        ),
        (
            "foreign_keys",
            json!([{"from": "orders.user_id`", "to": "users.id"}]),
            "resources[0].validation.foreign_keys[0].from",
        ),
        (
            "foreign_keys",
            json!([{"from": "orders.user_id", "to": "users"}]),
            "resources[0].validation.foreign_keys[0].to",
        ),
        (
            "database",
            json!("orders'--"),
            "resources[0].validation.database",
        ),
    ] {
        let mut p = local();
        p["resources"][0]["validation"][path] = value;
        assert_issue(&p, field, "");
    }
    let mut p = local();
    p["resources"][0]["validation"]["assertions"][0]["sql"] = json!("SELECT 1; DELETE FROM orders");
    assert_issue(
        &p,
        "resources[0].validation.assertions[0].sql",
        "holds 2 statements; write exactly one SELECT",
    );
}

#[test]
fn assertions_are_one_read_only_query_parsed_as_their_engine_reads_them() {
    let field = "resources[0].validation.assertions[0].sql";
    for (engine, sql, words) in [
        ("postgres", "DROP TABLE orders", "is DROP, not a SELECT"),
        ("mariadb", "CALL purge()", "is CALL, not a SELECT"),
        (
            "mysql",
            "SELECT * INTO orders_copy FROM orders",
            "SELECT ... INTO",
        ),
        (
            "postgres",
            "WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d",
            "data-modifying",
        ),
        ("postgres", "SELECT id FROM orders FOR UPDATE", "locks rows"),
        ("mariadb", "SELECT 1 /*M! ; DROP TABLE orders */", "/*M!"),
        ("mysql", "SELECT 1 /*!; DROP TABLE orders */", "/*!"),
        ("postgres", "SELEKT 1", "cannot be parsed as PostgreSQL"),
        (
            "postgres",
            "SELECT set_config('a.b', 'c', false)",
            "set_config()",
        ),
    ] {
        let mut p = local();
        p["resources"][0]["engine"] = json!(engine);
        p["resources"][0]["validation"]["assertions"][0]["sql"] = json!(sql);
        assert_issue(&p, field, words);
        assert_issue(&p, field, "assertion \"");
    }
    // A MySQL comment that PostgreSQL skips: fine on PostgreSQL only.
    let mut p = local();
    p["resources"][0]["engine"] = json!("postgres");
    p["resources"][0]["validation"]["assertions"][0]["sql"] =
        json!("SELECT count(*) FROM orders /*! ; DROP TABLE orders */");
    assert!(issues_of(&p).is_empty(), "{:?}", issues_of(&p));
    p["resources"][0]["engine"] = json!("mysql");
    assert_issue(&p, field, "run as SQL rather than skip");
}

#[test]
fn engines_must_match_kinds() {
    let mut p = local();
    p["resources"][1]["engine"] = json!("postgres");
    assert_issue(&p, "resources[1].engine", "not an Aurora engine");
    let mut p = local();
    p["resources"][0].as_object_mut().unwrap().remove("engine");
    assert_issue(&p, "resources[0].engine", "needs its engine");
    let mut p = local();
    p["resources"][2]["engine"] = json!("postgres");
    assert_issue(&p, "resources[2].engine", "has no engine");
}

#[test]
fn dns_needs_one_zone_and_names_inside_it() {
    let mut p = local();
    p["dns"]["hosted_zone_id"] = json!("Z123");
    assert_issue(&p, "dns", "exactly one of");
    let mut p = local();
    p["resources"][0]["dns_record"] = json!("orders-db.example.com.");
    assert_issue(
        &p,
        "resources[0].dns_record",
        "not in the zone lifeboat.internal.",
    );
    let mut p = local();
    p["resources"][1]["dns_record"] = json!("billing.lifeboat.internal.");
    assert_issue(&p, "resources[1].dns_record", "no replica");
}

#[test]
fn the_lag_guard_cannot_allow_more_loss_than_the_rpo() {
    let mut p = local();
    p["failover"]["max_replica_lag_seconds"] = json!(3600);
    assert_issue(
        &p,
        "failover.max_replica_lag_seconds",
        "exceeds the 15-minute RPO of orders-db",
    );
    let mut p = local();
    p["failover"]["health_alarms"] = json!([]);
    assert_issue(
        &p,
        "failover.health_alarms",
        "no alarm can start a failover",
    );
}

#[test]
fn detection_defaults_to_a_quorum_of_two_independent_signals() {
    let plan = parse_plan(LOCAL).unwrap();
    let d = &plan.failover.detection;
    assert_eq!(d.quorum, 2);
    assert_eq!(d.window_minutes, 5);
    assert_eq!(
        d.signals,
        vec![SignalSpec::PrimaryApi {}, SignalSpec::ReplicaView {}]
    );
    assert_eq!(d.insufficient_data, InsufficientData::AlarmSetting);
    assert_eq!(d.unreadable.primary_region, Unreadable::Failing);
    assert_eq!(d.unreadable.other_regions, Unreadable::Unknown);
    assert_eq!(d.primary_api_timeout_seconds, 3);
    let mut p = local();
    p["failover"]["detection"] = json!({
        "signals": [{"kind": "endpoint_probe", "host": "orders-db.example", "port": 5432}],
        "quorum": 1,
        "insufficient_data": "failing",
        "unreadable": {"other_regions": "failing"}
    });
    let plan = parse_plan(&p.to_string()).unwrap();
    let d = &plan.failover.detection;
    assert_eq!(
        d.signals,
        vec![SignalSpec::EndpointProbe {
            host: "orders-db.example".into(),
            port: 5432,
            timeout_seconds: 2
        }]
    );
    assert_eq!(d.unreadable.primary_region, Unreadable::Failing);
    assert_eq!(d.unreadable.other_regions, Unreadable::Failing);
}

#[test]
fn detection_settings_that_can_never_work_are_refused() {
    let mut p = local();
    p["failover"]["detection"] = json!({"quorum": 5});
    assert_issue(
        &p,
        "failover.detection.quorum",
        "a quorum of 5 can never be reached: the plan has 4 confirming signal(s)",
    );
    let mut p = local();
    p["failover"]["detection"] = json!({"quorum": 0});
    assert_issue(&p, "failover.detection.quorum", "quorum of zero");
    let mut p = local();
    p["failover"]["detection"] = json!({"window_minutes": 0, "primary_api_timeout_seconds": 300});
    assert_issue(&p, "failover.detection.window_minutes", "outside 1 to 60");
    assert_issue(
        &p,
        "failover.detection.primary_api_timeout_seconds",
        "outside 1 to 30",
    );
    let mut p = local();
    p["failover"]["detection"] = json!({"signals": [
        {"kind": "replica_view"}, {"kind": "replica_view"},
        {"kind": "endpoint_probe", "host": "not a host", "port": 0, "timeout_seconds": 60}
    ]});
    assert_issue(&p, "failover.detection.signals[1]", "listed twice");
    assert_issue(
        &p,
        "failover.detection.signals[2].host",
        "neither a host name",
    );
    assert_issue(&p, "failover.detection.signals[2].port", "port 0");
    assert_issue(
        &p,
        "failover.detection.signals[2].timeout_seconds",
        "outside 1 to 10",
    );
    let mut p = local();
    p["failover"]["detection"] = json!({"signals": [{"kind": "replica_view", "extra": 1}]});
    let err = parse_plan(&p.to_string()).unwrap_err().to_string();
    assert!(err.contains("failover.detection.signals[0]"), "{err}");
    let mut p = local();
    p["failover"]["detection"] = json!({"signals": [{"kind": "ping"}]});
    let err = parse_plan(&p.to_string()).unwrap_err().to_string();
    assert!(err.contains("unknown variant `ping`"), "{err}");
}

#[test]
fn warnings_name_detection_that_a_regional_outage_defeats() {
    let warnings_of = |p: &Value| {
        warnings(&parse_plan(&p.to_string()).unwrap())
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
    };
    // The shipped plans: signals outside the primary region, a quorum of two.
    assert_eq!(warnings_of(&local()), Vec::<String>::new());
    assert_eq!(
        warnings_of(&serde_json::from_str(EXAMPLE).unwrap()),
        Vec::<String>::new()
    );
    // Every signal in the primary region: one vote when it goes down.
    let mut p = local();
    p["failover"]["health_alarms"] =
        json!([{"name": "a", "region": "us-east-1"}, {"name": "b", "region": "us-east-1"}]);
    p["failover"]["detection"] = json!({"signals": [{"kind": "primary_api"}]});
    let w = warnings_of(&p);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].starts_with("`failover.detection.signals`: every confirming signal lives in the primary region (us-east-1)")
            && w[0].contains("replica_view"),
        "{w:#?}"
    );
    // Signals outside, but too few for the quorum once the primary region is dark.
    let mut p = local();
    p["failover"]["health_alarms"] =
        json!([{"name": "a", "region": "us-east-1"}, {"name": "b", "region": "us-east-1"}]);
    p["failover"]["detection"] = json!({"quorum": 3});
    let w = warnings_of(&p);
    assert!(
        w.iter().any(
            |w| w.starts_with("`failover.detection.quorum`") && w.contains("at most 2 vote(s)")
        ),
        "{w:#?}"
    );
    // One signal deciding.
    let mut p = local();
    p["failover"]["detection"] = json!({"quorum": 1});
    let w = warnings_of(&p);
    assert!(
        w.iter().any(|w| w.contains("a single flapping alarm")),
        "{w:#?}"
    );
}

#[test]
fn every_broken_rule_is_reported_at_once() {
    let mut p = local();
    p["name"] = json!("Bad Name");
    p["regions"]["dr"] = json!("us-east-1");
    p["failback"]["stages"] = json!([10, 60]);
    let issues = issues_of(&p);
    assert!(issues.len() >= 3, "{issues:#?}");
    let err = parse_plan(&p.to_string()).unwrap_err();
    assert!(err.issues().len() >= 3);
    let text = err.to_string();
    assert!(text.starts_with("the DR plan is invalid: `name`"), "{text}");
}

#[test]
fn plans_load_from_a_file_or_inline() {
    let dir = std::env::temp_dir().join(format!("lifeboat-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plan.json");
    std::fs::write(&file, LOCAL).unwrap();
    let text = load_plan_text(&PlanSource::Path(file.clone())).unwrap();
    assert_eq!(parse_plan(&text).unwrap().name, "lifeboat-local");
    let missing = load_plan_text(&PlanSource::Path(dir.join("absent.json"))).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("LIFEBOAT_PLAN_PATH names a readable plan file")
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        load_plan_text(&PlanSource::Inline("{}".into())).unwrap(),
        "{}"
    );
}

#[test]
fn dns_names_normalise_to_route53_form() {
    assert_eq!(
        normalize_dns_name("API.Example.internal"),
        "api.example.internal."
    );
    assert_eq!(normalize_dns_name("a.b."), "a.b.");
}

proptest! {
    /// Only strictly increasing percentages ending at 100 are accepted as stages.
    #[test]
    fn stages_are_accepted_exactly_when_they_rise_to_100(stages in proptest::collection::vec(0u32..=120, 0..6)) {
        let mut p = local();
        p["failback"]["stages"] = json!(stages);
        let stage_issues: Vec<String> = issues_of(&p)
            .into_iter()
            .filter(|i| i.starts_with("`failback.stages"))
            .collect();
        let good = !stages.is_empty()
            && stages.iter().all(|w| (1..=100).contains(w))
            && stages.windows(2).all(|w| w[0] < w[1])
            && stages.last() == Some(&100);
        prop_assert_eq!(stage_issues.is_empty(), good, "{:?}", stage_issues);
    }

    /// An accepted SQL identifier holds nothing that could end a quoted identifier or a
    /// statement.
    #[test]
    fn accepted_sql_identifiers_are_inert(s in "\\PC{0,70}") {
        if is_sql_identifier(&s) {
            prop_assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            prop_assert!(!s.is_empty() && s.len() <= 63);
        }
    }

    /// A valid interval tiles a day exactly, or is whole days.
    #[test]
    fn a_plan_loads_the_same_whichever_case_its_rds_identifiers_take(
        flips in proptest::collection::vec(any::<bool>(), 64),
    ) {
        let spell = |s: &str, salt: usize| -> String {
            s.chars()
                .enumerate()
                .map(|(i, c)| if flips[(i + salt) % flips.len()] { c.to_ascii_uppercase() } else { c })
                .collect()
        };
        let mut p: Value = serde_json::from_str(EXAMPLE).unwrap();
        for (i, pointer) in [
            "/resources/0/identifier",
            "/resources/0/replica/identifier",
            "/resources/1/identifier",
            "/resources/1/replica/identifier",
            "/resources/1/replica/global_cluster",
        ]
        .into_iter()
        .enumerate()
        {
            let v = p.pointer_mut(pointer).unwrap();
            *v = json!(spell(v.as_str().unwrap(), i * 7));
        }
        let respelled = parse_plan(&p.to_string()).unwrap();
        prop_assert_eq!(&respelled, &parse_plan(EXAMPLE).unwrap());
        // Normalising a loaded plan again changes nothing.
        let mut again = respelled.clone();
        again.normalise_identifiers();
        prop_assert_eq!(again, respelled);
    }

    #[test]
    fn valid_intervals_align_to_midnight(m in 0u32..20000) {
        if is_valid_interval(m) {
            prop_assert!(1440 % m == 0 || m % 1440 == 0);
            prop_assert!((15..=10080).contains(&m));
        }
    }
}

#[test]
fn documentation_is_optional_but_must_make_sense() {
    let mut p = local();
    p.as_object_mut().unwrap().remove("documentation");
    let plan = parse_plan(&p.to_string()).unwrap();
    assert_eq!(plan.documentation, Documentation::default());

    let mut p = local();
    p["documentation"]["runbook_url"] = json!("wiki/dr");
    assert_issue(&p, "documentation.runbook_url", "not an http(s) URL");
    // An address with credentials in it is not quoted back.
    p["documentation"]["runbook_url"] = json!("ftp://ops:S3cretPw@wiki.example.com/dr");
    assert_issue(&p, "documentation.runbook_url", "not an http(s) URL");
    assert!(issues_of(&p).iter().all(|i| !i.contains("S3cret")));
    let mut p = local();
    p["documentation"]["owner"] = json!("  ");
    assert_issue(&p, "documentation.owner", "is empty");
    let mut p = local();
    p["documentation"]["last_reviewed"] = json!("last tuesday");
    assert!(
        matches!(parse_plan(&p.to_string()), Err(PlanError::Malformed { .. })),
        "an unparsable date is refused"
    );
}

fn with_archive() -> Value {
    let mut p = local();
    p["retention"]["archive"] = json!({
        "bucket": "lifeboat-local-archive",
        "iam_role_arn": "arn:aws:iam::123456789012:role/lifeboat-export",
        "kms_key_id": "arn:aws:kms:us-west-2:123456789012:key/archive"
    });
    p
}

#[test]
fn the_archive_tier_defaults_to_monthly_and_yearly_under_archive_prefix() {
    let plan = parse_plan(&with_archive().to_string()).unwrap();
    let archive = plan.retention.archive.unwrap();
    assert_eq!(archive.prefix, "archive/");
    assert_eq!(
        archive.tiers,
        [
            crate::schedule::Tier::Monthly,
            crate::schedule::Tier::Yearly
        ]
    );
}

#[test]
fn an_unknown_archive_tier_is_refused_at_load_naming_the_field() {
    let mut p = with_archive();
    p["retention"]["archive"]["tiers"] = json!(["monthly", "hourly"]);
    match parse_plan(&p.to_string()).unwrap_err() {
        PlanError::Malformed { path, reason } => {
            assert_eq!(path, "retention.archive.tiers[1]");
            assert!(reason.contains("unknown variant `hourly`"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_bad_archive_setting_is_rejected_with_its_fix() {
    let mut p = with_archive();
    p["retention"]["archive"]["bucket"] = json!("Not_A_Bucket");
    assert_issue(&p, "retention.archive.bucket", "not a valid S3 bucket name");
    let mut p = with_archive();
    p["retention"]["archive"]["iam_role_arn"] = json!("lifeboat-export");
    assert_issue(&p, "retention.archive.iam_role_arn", "not an IAM role ARN");
    let mut p = with_archive();
    p["retention"]["archive"]["kms_key_id"] = json!("arn:aws:kms:us-east-1:1:key/x");
    assert_issue(
        &p,
        "retention.archive.kms_key_id",
        "the key is in us-east-1",
    );
    let mut p = with_archive();
    p["snapshots"]["copy_to"][0]["region"] = json!("eu-west-1");
    p["snapshots"]["copy_to"][0]["kms_key_id"] = json!("alias/lifeboat-dr");
    assert_issue(
        &p,
        "retention.archive",
        "no copy destination is that region",
    );
    let mut p = with_archive();
    p["retention"]["archive"]["tiers"] = json!([]);
    assert_issue(&p, "retention.archive.tiers", "no tier is archived");
}

/// The local plan with game days allowed, a stop condition and a canary: valid.
fn with_game_days() -> Value {
    let mut p = local();
    p["game_days"] = json!({
        "allowed": true,
        "schedule": "cron(0 10 ? * TUE#2 *)",
        "injection": { "mode": "fis", "experiment_template_id": "EXT1a2b3c4d5e6f" },
        "stop_condition_alarms": [ { "name": "orders-api-customer-errors" } ],
        "canary": { "resource": "orders-db", "table": "lifeboat.canary" },
        "history": 8
    });
    p
}

#[test]
fn game_days_are_off_unless_the_plan_allows_them() {
    // A plan without the section (the local plan has one: the drill is a game day).
    let mut json: serde_json::Value = serde_json::from_str(LOCAL).unwrap();
    json.as_object_mut().unwrap().remove("game_days");
    let plan = parse_plan(&json.to_string()).unwrap();
    assert!(!plan.game_days.allowed);
    assert_eq!(plan.game_days.schedule, None);
    assert_eq!(plan.game_days.injection, InjectionMode::SignalOnly {});
    assert!(plan.game_days.stop_condition_alarms.is_empty());
    assert_eq!(plan.game_days.canary, None);
    assert_eq!(plan.game_days.history, 5);
}

#[test]
fn a_complete_game_day_section_parses() {
    let plan = parse_plan(&with_game_days().to_string()).unwrap();
    let g = &plan.game_days;
    assert!(g.allowed);
    assert_eq!(g.schedule.as_deref(), Some("cron(0 10 ? * TUE#2 *)"));
    assert_eq!(
        g.injection,
        InjectionMode::Fis {
            experiment_template_id: Some("EXT1a2b3c4d5e6f".into())
        }
    );
    assert_eq!(g.canary.as_ref().unwrap().table, "lifeboat.canary");
    assert_eq!(g.history, 8);

    let mut p = with_game_days();
    p["game_days"]["injection"] = json!({ "mode": "fis" });
    let plan = parse_plan(&p.to_string()).unwrap();
    assert_eq!(
        plan.game_days.injection,
        InjectionMode::Fis {
            experiment_template_id: None
        }
    );
    p["game_days"]["injection"] = json!({ "mode": "signal_only" });
    assert!(parse_plan(&p.to_string()).is_ok());
}

#[test]
fn unknown_game_day_fields_and_modes_are_rejected() {
    let mut p = with_game_days();
    p["game_days"]["alowed"] = json!(true);
    let err = parse_plan(&p.to_string()).unwrap_err().to_string();
    assert!(err.contains("game_days") && err.contains("alowed"), "{err}");

    let mut p = with_game_days();
    p["game_days"]["injection"] = json!({ "mode": "chaos-monkey" });
    let err = parse_plan(&p.to_string()).unwrap_err().to_string();
    assert!(err.contains("game_days.injection"), "{err}");

    let mut p = with_game_days();
    p["game_days"]["injection"] =
        json!({ "mode": "signal_only", "experiment_template_id": "EXT1" });
    assert!(parse_plan(&p.to_string()).is_err());
}

#[test]
fn a_schedule_needs_the_plan_to_allow_game_days() {
    let mut p = with_game_days();
    p["game_days"]["allowed"] = json!(false);
    assert_issue(&p, "game_days.schedule", "does not allow game days");
}

#[test]
fn a_schedule_must_be_a_daily_at_most_scheduler_cron() {
    for (bad, words) in [
        ("0 10 ? * TUE#2 *", "cron(...)"),
        ("rate(7 days)", "cron(...)"),
        ("cron(0 10 ? * TUE#2)", "has 5 fields"),
        ("cron(*/5 10 ? * TUE *)", "minutes"),
        ("cron(0 * ? * TUE *)", "hours"),
        ("cron(0 24 ? * TUE *)", "hours"),
        ("cron(0 10 * * TUE *)", "exactly one"),
        ("cron(0 10 ? * ? *)", "exactly one"),
        ("cron(0 10 ? * TUE;rm *)", "characters"),
    ] {
        let mut p = with_game_days();
        p["game_days"]["schedule"] = json!(bad);
        assert_issue(&p, "game_days.schedule", words);
    }
    for good in [
        "cron(0 10 ? * TUE#2 *)",
        "cron(30 14 1 * ? *)",
        "cron(0 9 ? 1,4,7,10 MON-FRI 2027)",
    ] {
        let mut p = with_game_days();
        p["game_days"]["schedule"] = json!(good);
        assert_eq!(issues_of(&p), Vec::<String>::new(), "{good}");
    }
}

#[test]
fn allowed_game_days_need_a_stop_condition_that_is_not_a_health_alarm() {
    let mut p = with_game_days();
    p["game_days"]["stop_condition_alarms"] = json!([]);
    assert_issue(
        &p,
        "game_days.stop_condition_alarms",
        "nothing can stop one",
    );

    let mut p = with_game_days();
    p["game_days"]["stop_condition_alarms"] = json!([{ "name": "orders-db-primary-unhealthy" }]);
    assert_issue(
        &p,
        "game_days.stop_condition_alarms[0]",
        "is a health alarm",
    );

    let mut p = with_game_days();
    p["game_days"]["stop_condition_alarms"] = json!([{ "name": "" }]);
    assert_issue(&p, "game_days.stop_condition_alarms[0].name", "1 to 255");
}

#[test]
fn a_canary_must_name_a_replicated_sql_resource_and_a_safe_table() {
    let mut p = with_game_days();
    p["game_days"]["canary"]["resource"] = json!("payments-db");
    assert_issue(
        &p,
        "game_days.canary.resource",
        "not a resource of the plan",
    );

    let mut p = with_game_days();
    p["game_days"]["canary"]["resource"] = json!("sessions");
    assert_issue(&p, "game_days.canary.resource", "DynamoDB table");

    let mut p = with_game_days();
    p["game_days"]["canary"]["resource"] = json!("billing-db");
    assert_issue(&p, "game_days.canary.resource", "no replica");
    assert_issue(&p, "game_days.canary.resource", "no `validation` section");

    for bad in ["canary; DROP TABLE users", "a.b.c", "", "\"canary\""] {
        let mut p = with_game_days();
        p["game_days"]["canary"]["table"] = json!(bad);
        assert_issue(&p, "game_days.canary.table", "quote safely");
    }

    // The canary's own writing user: optional, never blank.
    let mut p = with_game_days();
    p["game_days"]["canary"]["credentials_secret"] = json!("lifeboat/orders-db-canary");
    let plan = parse_plan(&p.to_string()).unwrap();
    assert_eq!(
        plan.game_days.canary.unwrap().credentials_secret.as_deref(),
        Some("lifeboat/orders-db-canary")
    );
    p["game_days"]["canary"]["credentials_secret"] = json!("  ");
    assert_issue(&p, "game_days.canary.credentials_secret", "blank");
}

#[test]
fn game_days_need_something_to_fail_over() {
    let mut p = with_game_days();
    p["game_days"]["canary"] = Value::Null;
    p["resources"][0].as_object_mut().unwrap().remove("replica");
    p["resources"][0]["rpo_minutes"] = json!(60);
    assert_issue(&p, "game_days.allowed", "nothing to fail over");
}

#[test]
fn bad_fis_template_ids_and_history_are_rejected() {
    let mut p = with_game_days();
    p["game_days"]["injection"]["experiment_template_id"] = json!("arn:aws:fis:x");
    assert_issue(
        &p,
        "game_days.injection.experiment_template_id",
        "not a FIS experiment template id",
    );
    for bad in [0, 51] {
        let mut p = with_game_days();
        p["game_days"]["history"] = json!(bad);
        assert_issue(&p, "game_days.history", "outside 1 to 50");
    }
}

#[test]
fn a_statement_timeout_longer_than_one_step_allows_is_refused_naming_the_limit() {
    for (seconds, refused) in [(0, true), (1, false), (60, false), (61, true), (3600, true)] {
        let mut plan = local();
        plan["validation"]["statement_timeout_seconds"] = seconds.into();
        let issues = issues_of(&plan);
        let named = issues
            .iter()
            .any(|i| i.contains("validation.statement_timeout_seconds") && i.contains("1..=60"));
        assert_eq!(named, refused, "{seconds}: {issues:?}");
    }
}
