//! The snapshot function's orchestration with its real AWS adapter, against the emulator.

use crate::support::{notifier, reports, state_store};
use chrono::{DateTime, Duration, Utc};
use harness::{Account, LocalAws, World, create_world};
use lifeboat::aws::{AwsSnapshots, DynamoStateStore, S3Reports, SnsNotifier};
use lifeboat::backup::run::{ExportBook, SnapshotError, SnapshotRun, SnapshotSummary, exports_key};
use lifeboat::error::{Classify, Retry};
use lifeboat::function::Invocation;
use lifeboat::plan::{Plan, parse_plan};
use lifeboat::state;
use serde_json::{Value, json};

/// The local plan plus a second RDS instance (`users-db`, MySQL, no replica).
fn plan_with_two_instances() -> Plan {
    let mut p: Value = serde_json::from_str(include_str!("../../infra/plans/local.json")).unwrap();
    p["resources"].as_array_mut().unwrap().insert(
        1,
        json!({"id": "users-db", "kind": "rds_instance", "engine": "mysql", "rpo_minutes": 180, "rto_minutes": 60}),
    );
    parse_plan(&p.to_string()).unwrap()
}

struct Fixture {
    account: Account,
    plan: Plan,
    world: World,
    snapshots: AwsSnapshots,
    state: DynamoStateStore,
    notifier: SnsNotifier,
    reports: S3Reports,
}

impl Fixture {
    async fn new(plan: Plan) -> Self {
        let account = LocalAws::from_env().fresh_account();
        let plan = harness::plan_in_account(&plan, &account);
        Self::new_in(account, plan).await
    }

    /// The world the plan describes, in `account`.
    async fn new_in(account: Account, plan: Plan) -> Self {
        let world = create_world(&account, &plan).await.expect("world");
        Self::with_world(account, plan, world).await
    }

    /// The plan `plan` (JSON) run against the local plan's world, which need not match it.
    async fn in_local_world(plan: &Value) -> Self {
        let account = LocalAws::from_env().fresh_account();
        let plan = harness::plan_in_account(&parse_plan(&plan.to_string()).unwrap(), &account);
        let world = create_world(
            &account,
            &harness::plan_in_account(&crate::support::local_plan(), &account),
        )
        .await
        .unwrap();
        Self::with_world(account, plan, world).await
    }

    /// `plan`'s run against a world made apart from it.
    async fn with_world(account: Account, plan: Plan, world: World) -> Self {
        let snapshots = AwsSnapshots::new(&plan, &world.clients, &account.settings()).await;
        Fixture {
            state: state_store(&world),
            notifier: notifier(&world),
            reports: reports(&world),
            account,
            plan,
            world,
            snapshots,
        }
    }

    /// From now on the account's clock moves only when the test settles it, so a
    /// snapshot still creating stays so however slowly a busy machine runs the test.
    async fn freeze_clock(&self) {
        self.account
            .set_time_scale(1.0)
            .await
            .expect("the control API answers");
    }

    fn run(&self) -> SnapshotRun<'_> {
        SnapshotRun {
            plan: &self.plan,
            port: &self.snapshots,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
        }
    }

    async fn tick(&self, id: &str, at: DateTime<Utc>) -> Result<SnapshotSummary, SnapshotError> {
        let event = json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
                           "time": at.to_rfc3339(), "detail": {}});
        self.run().handle(&event, &invocation(at)).await
    }

    async fn dr_snapshot_tags(&self, id: &str) -> Option<Vec<(String, String)>> {
        let out = self
            .world
            .clients
            .dr
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await
            .ok()?;
        let s = out.db_snapshots().first()?;
        Some(
            s.tag_list()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        )
    }
}

fn invocation(now: DateTime<Utc>) -> Invocation {
    Invocation {
        request_id: format!("req-{}", now.timestamp()),
        now,
        deadline: now + Duration::minutes(5),
    }
}

fn six_am() -> DateTime<Utc> {
    "2026-11-25T06:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn a_tick_snapshots_every_kind_and_the_same_tick_again_creates_nothing() {
    let f = Fixture::new(plan_with_two_instances()).await;
    let summary = f.tick("tick-1", six_am()).await.expect("tick");
    let mut created: Vec<&str> = summary
        .created
        .iter()
        .map(|c| c.resource.as_str())
        .collect();
    created.sort();
    assert_eq!(created, ["billing-db", "orders-db", "sessions", "users-db"]);

    let rds = &f.world.clients.primary.rds;
    let snap = rds
        .describe_db_snapshots()
        .db_snapshot_identifier("lifeboat-lifeboat-local-orders-db-20261125t0600z")
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = snap.db_snapshots()[0]
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert!(tags.contains(&("lifeboat:plan".into(), "lifeboat-local".into())));
    assert!(tags.contains(&("lifeboat:resource".into(), "orders-db".into())));
    assert!(tags.contains(&("lifeboat:tier".into(), "daily".into())));
    assert!(tags.iter().any(|(k, _)| k == "lifeboat:created-at"));
    let cluster = rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier("lifeboat-lifeboat-local-billing-db-20261125t0600z")
        .send()
        .await
        .unwrap();
    assert_eq!(cluster.db_cluster_snapshots().len(), 1);
    let backups = f
        .world
        .clients
        .primary
        .dynamodb
        .list_backups()
        .table_name("lifeboat-local-sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(
        backups.backup_summaries()[0].backup_name(),
        Some("lifeboat-lifeboat-local-sessions-20261125t0000z")
    );

    // The same tick delivered again: the stored result, nothing new.
    let again = f.tick("tick-1", six_am()).await.unwrap();
    assert!(again.duplicate);
    // Another tick in the same window: everything already taken.
    let same_window = f
        .tick("tick-2", six_am() + Duration::minutes(15))
        .await
        .unwrap();
    assert!(same_window.created.is_empty(), "{:?}", same_window.created);
    assert_eq!(same_window.already_taken.len(), 4);
    let count = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(count.db_snapshots().len(), 2);
}

#[tokio::test]
async fn a_mixed_case_plan_starts_no_second_snapshot_while_the_first_is_still_creating() {
    // The plan says Orders-DB and BILLING-db; RDS calls them orders-db and billing-db.
    let account = LocalAws::from_env().fresh_account();
    let plan = harness::plan_in_account(&crate::support::mixed_case_plan(), &account);
    let f = Fixture::new_in(account, plan).await;
    f.freeze_clock().await;
    let first = f.tick("tick-1", six_am()).await.expect("the first tick");
    let mut created: Vec<&str> = first.created.iter().map(|c| c.resource.as_str()).collect();
    created.sort();
    assert_eq!(created, ["billing-db", "orders-db", "sessions"]);
    // The next window's tick arrives while both snapshots are still creating.
    let next = f
        .tick("tick-2", six_am() + Duration::minutes(60))
        .await
        .expect("the next window's tick");
    assert!(
        next.created
            .iter()
            .all(|c| c.resource != "orders-db" && c.resource != "billing-db"),
        "a second snapshot was started: {:?}",
        next.created
    );
    let rds = &f.world.clients.primary.rds;
    let instance_snapshots = rds
        .describe_db_snapshots()
        .db_instance_identifier("orders-db")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(
        instance_snapshots.db_snapshots().len(),
        1,
        "{:?}",
        instance_snapshots.db_snapshots()
    );
    let cluster_snapshots = rds
        .describe_db_cluster_snapshots()
        .db_cluster_identifier("billing-db")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(cluster_snapshots.db_cluster_snapshots().len(), 1);
}

#[tokio::test]
async fn a_table_name_in_another_case_is_another_table() {
    // DynamoDB table names are case-sensitive: the plan's table does not exist.
    let mut p: Value = serde_json::from_str(include_str!("../../infra/plans/local.json")).unwrap();
    p["resources"][2]["identifier"] = "Lifeboat-Local-Sessions".into();
    let f = Fixture::in_local_world(&p).await;
    let err = f.tick("tick-1", six_am()).await.unwrap_err();
    let SnapshotError::Incomplete(summary) = &err else {
        panic!("{err}")
    };
    assert_eq!(summary.failed.len(), 1, "{:?}", summary.failed);
    assert_eq!(summary.failed[0].subject, "sessions");
    assert!(
        summary.failed[0].error.contains("Lifeboat-Local-Sessions"),
        "{}",
        summary.failed[0].error
    );
    let backups = f
        .world
        .clients
        .primary
        .dynamodb
        .list_backups()
        .send()
        .await
        .unwrap();
    assert!(
        backups.backup_summaries().is_empty(),
        "no backup of the differently spelt table: {:?}",
        backups.backup_summaries()
    );
}

#[tokio::test]
async fn copies_appear_in_the_dr_region_re_encrypted_and_tagged() {
    let f = Fixture::new(plan_with_two_instances()).await;
    f.freeze_clock().await;
    f.tick("tick-1", six_am()).await.unwrap();
    // A tick while the snapshots are still creating copies nothing and waits.
    let early = f
        .tick("tick-early", six_am() + Duration::minutes(1))
        .await
        .unwrap();
    assert!(
        early.copies_started.is_empty(),
        "{:?}",
        early.copies_started
    );
    assert!(early.created.is_empty());
    // Once they are available (the account's emulated clock moves on), a later tick copies.
    f.account.settle().await.unwrap();
    let summary = f
        .tick("tick-2", six_am() + Duration::minutes(5))
        .await
        .unwrap();
    let mut copied: Vec<&str> = summary
        .copies_started
        .iter()
        .map(|c| c.snapshot.as_str())
        .collect();
    copied.sort();
    assert_eq!(
        copied,
        [
            "lifeboat-lifeboat-local-billing-db-20261125t0600z",
            "lifeboat-lifeboat-local-orders-db-20261125t0600z",
            "lifeboat-lifeboat-local-users-db-20261125t0600z",
        ]
    );
    let tags = f
        .dr_snapshot_tags("lifeboat-lifeboat-local-orders-db-20261125t0600z")
        .await
        .expect("the copy exists in us-west-2");
    assert!(tags.contains(&("lifeboat:destination".into(), "us-west-2".into())));
    assert!(tags.contains(&("lifeboat:resource".into(), "orders-db".into())));
    assert!(tags.iter().any(|(k, v)| k == "lifeboat:source"
        && v.contains(":us-east-1:")
        && v.ends_with("orders-db-20261125t0600z")));
    let copy = f
        .world
        .clients
        .dr
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier("lifeboat-lifeboat-local-orders-db-20261125t0600z")
        .send()
        .await
        .unwrap();
    let kms = copy.db_snapshots()[0]
        .kms_key_id()
        .unwrap_or_default()
        .to_string();
    assert!(
        kms.contains("us-west-2"),
        "re-encrypted with the DR region's key: {kms}"
    );

    // Copies in progress are not started twice.
    let during = f
        .tick("tick-during", six_am() + Duration::minutes(6))
        .await
        .unwrap();
    assert!(
        during.copies_started.is_empty(),
        "{:?}",
        during.copies_started
    );
    // Once the copies are available, the DR RPO is measured from them.
    f.account.settle().await.unwrap();
    let later = f
        .tick("tick-3", six_am() + Duration::minutes(10))
        .await
        .unwrap();
    assert!(later.copies_started.is_empty());
    let dr = later
        .rpo
        .iter()
        .find(|m| m.resource == "orders-db" && m.location == "us-west-2")
        .unwrap();
    assert_eq!(
        dr.newest.as_deref(),
        Some("lifeboat-lifeboat-local-orders-db-20261125t0600z")
    );
    assert!(!dr.breached);
}

#[tokio::test]
async fn an_rds_event_copies_its_snapshot_at_once() {
    let f = Fixture::new(plan_with_two_instances()).await;
    f.tick("tick-1", six_am()).await.unwrap();
    f.account.settle().await.unwrap();
    let mut event: Value = serde_json::from_str(include_str!(
        "../../events/snapshot-rds-snapshot-created.json"
    ))
    .unwrap();
    event["id"] = json!("rds-event-1");
    let summary = f
        .run()
        .handle(&event, &invocation(six_am() + Duration::minutes(4)))
        .await
        .unwrap();
    assert_eq!(summary.copies_started.len(), 1);
    assert_eq!(
        summary.copies_started[0].snapshot,
        "lifeboat-lifeboat-local-orders-db-20261125t0600z"
    );
    assert!(
        f.dr_snapshot_tags("lifeboat-lifeboat-local-orders-db-20261125t0600z")
            .await
            .is_some()
    );
    assert!(
        f.dr_snapshot_tags("lifeboat-lifeboat-local-users-db-20261125t0600z")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_stopped_instance_is_skipped_with_its_reason_while_the_others_succeed() {
    let f = Fixture::new(plan_with_two_instances()).await;
    f.world
        .clients
        .primary
        .rds
        .stop_db_instance()
        .db_instance_identifier("users-db")
        .send()
        .await
        .unwrap();
    let summary = f.tick("tick-1", six_am()).await.unwrap();
    assert_eq!(summary.created.len(), 3);
    assert_eq!(summary.skipped.len(), 1);
    assert_eq!(summary.skipped[0].resource, "users-db");
    assert!(
        summary.skipped[0]
            .detail
            .contains("users-db is stopped, not available"),
        "{:?}",
        summary.skipped
    );
    assert!(summary.summary.contains("skipped 1 [users-db:"));
}

#[tokio::test]
async fn the_rpo_and_its_breach_are_measured_from_a_backdated_snapshot() {
    let f = Fixture::new(plan_with_two_instances()).await;
    let now = six_am();
    // A Lifeboat snapshot of billing-db from five hours ago, and nothing newer.
    let five_hours_ago =
        (now - Duration::hours(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    f.world
        .clients
        .primary
        .rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier("billing-db")
        .db_cluster_snapshot_identifier("lifeboat-lifeboat-local-billing-db-20261125t0100z")
        .tags(tag("lifeboat:plan", "lifeboat-local"))
        .tags(tag("lifeboat:resource", "billing-db"))
        .tags(tag("lifeboat:created-at", &five_hours_ago))
        .send()
        .await
        .unwrap();
    f.account.settle().await.unwrap();
    // Measured before this tick's own snapshot is available: an operator request for
    // another resource measures everything.
    let summary = f
        .run()
        .handle(&json!({"resources": ["users-db"]}), &invocation(now))
        .await
        .unwrap();
    let billing = summary
        .rpo
        .iter()
        .find(|m| m.resource == "billing-db" && m.location == "us-east-1")
        .unwrap();
    assert_eq!(billing.age_seconds, Some(5 * 3600));
    assert_eq!(billing.target_seconds, 120 * 60);
    assert!(billing.breached);
    assert!(
        summary.summary.contains("RPO breached: "),
        "{}",
        summary.summary
    );
    assert!(
        summary
            .summary
            .contains("billing-db at us-east-1: 300 min old, target 120 min"),
        "{}",
        summary.summary
    );
    // The run's report in S3 holds the same figures.
    let key = summary
        .report
        .as_deref()
        .unwrap()
        .trim_start_matches(&format!("s3://{}/", f.world.control.report_bucket))
        .to_string();
    let object = f
        .world
        .clients
        .home
        .s3
        .get_object()
        .bucket(&f.world.control.report_bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let report: Value =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert!(
        report["rpo"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["resource"] == "billing-db" && m["breached"] == true)
    );
}

#[tokio::test]
async fn tables_are_exported_to_the_dr_bucket_and_measured_there() {
    let f = Fixture::new(plan_with_two_instances()).await;
    let first = f.tick("tick-1", six_am()).await.unwrap();
    assert_eq!(first.exports.len(), 1);
    assert_eq!(
        first.exports[0].prefix,
        "lifeboat/lifeboat-local/sessions/20261125t0000z/"
    );
    let objects = f
        .world
        .clients
        .dr
        .s3
        .list_objects_v2()
        .bucket(f.plan.snapshots.dynamodb_export_bucket.as_deref().unwrap())
        .prefix("lifeboat/lifeboat-local/sessions/20261125t0000z/")
        .send()
        .await
        .unwrap();
    assert!(
        !objects.contents().is_empty(),
        "the export wrote into the DR bucket"
    );
    let second = f
        .tick("tick-2", six_am() + Duration::minutes(5))
        .await
        .unwrap();
    assert!(
        second.exports.iter().any(|e| e.status == "available"),
        "{:?}",
        second.exports
    );
    let book = state::load::<ExportBook>(&f.state, &exports_key(&f.plan))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(book.value.exports.len(), 1);
    let at_dr = second
        .rpo
        .iter()
        .find(|m| m.resource == "sessions" && m.location == "us-west-2 (export)")
        .unwrap();
    assert!(at_dr.newest.is_some(), "{at_dr:?}");
}

#[tokio::test]
async fn bad_input_changes_nothing_and_says_what_is_wrong() {
    let f = Fixture::new(plan_with_two_instances()).await;
    let before = f
        .world
        .clients
        .primary
        .rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    for (payload, words) in [
        (
            json!({"resources": ["orders-db"], "tier": "hourly"}),
            "unknown tier \"hourly\"",
        ),
        (
            json!({"resources": ["nope"]}),
            "protects no resource \"nope\"",
        ),
        (json!({"hello": "world"}), "unknown field `hello`"),
        (
            json!({"version": "0", "account": "123456789012", "region": "us-east-1", "resources": [], "time": "2026-11-25T10:00:00Z", "id": "x", "detail-type": "AWS API Call via CloudTrail", "source": "aws.rds", "detail": {}}),
            "does not handle",
        ),
    ] {
        let err = f
            .run()
            .handle(&payload, &invocation(six_am()))
            .await
            .unwrap_err();
        assert_eq!(err.retry(), Retry::NonRetryable);
        assert!(err.to_string().contains(words), "{err}");
    }
    let after = f
        .world
        .clients
        .primary
        .rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(before.db_snapshots().len(), after.db_snapshots().len());
}

#[tokio::test]
async fn a_plan_naming_a_missing_resource_fails_naming_it_and_the_rest_is_snapshotted() {
    let mut plan: Value =
        serde_json::from_str(include_str!("../../infra/plans/local.json")).unwrap();
    plan["resources"].as_array_mut().unwrap().push(
        json!({"id": "ghost-db", "kind": "rds_instance", "engine": "postgres", "rpo_minutes": 120, "rto_minutes": 60}),
    );
    // The world is created from the local plan, so ghost-db does not exist.
    let f = Fixture::in_local_world(&plan).await;
    let err = f.tick("tick-1", six_am()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::NonRetryable);
    let SnapshotError::Incomplete(summary) = &err else {
        panic!("{err}")
    };
    assert_eq!(summary.created.len(), 3);
    assert_eq!(summary.failed[0].subject, "ghost-db");
    assert!(
        summary.failed[0]
            .error
            .contains("the plan names rds_instance ghost-db, which does not exist in us-east-1")
    );
    let _ = &f.account;
}

#[tokio::test]
async fn the_quota_is_refused_up_front_with_a_clear_error() {
    let mut plan = plan_with_two_instances();
    // Two manual DB snapshots fit; the account already holds one (someone else's).
    plan.quotas.manual_db_snapshots_per_region = 2;
    let f = Fixture::new(plan).await;
    f.world
        .clients
        .primary
        .rds
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("someone-elses-snapshot")
        .send()
        .await
        .unwrap();
    f.account.settle().await.unwrap();
    let err = f.tick("tick-1", six_am()).await.unwrap_err();
    let SnapshotError::Incomplete(summary) = &err else {
        panic!("{err}")
    };
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].subject, "users-db");
    assert!(
        summary.failed[0]
            .error
            .contains("exceed the quota of 2 manual DB snapshots in us-east-1")
    );
    // orders-db took the last slot; the cluster and the table are not held back.
    assert_eq!(summary.created.len(), 3);
}

#[tokio::test]
async fn the_twenty_first_copy_waits_for_a_free_slot() {
    let f = Fixture::new(plan_with_two_instances()).await;
    f.freeze_clock().await;
    // Twenty-one available Lifeboat snapshots of orders-db, none copied yet.
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    for i in 0..21 {
        let at = six_am() - Duration::hours(i64::from(i) + 1);
        f.world
            .clients
            .primary
            .rds
            .create_db_snapshot()
            .db_instance_identifier("orders-db")
            .db_snapshot_identifier(lifeboat::schedule::snapshot_name(
                "lifeboat-local",
                "orders-db",
                at,
            ))
            .tags(tag("lifeboat:plan", "lifeboat-local"))
            .tags(tag("lifeboat:resource", "orders-db"))
            .tags(tag("lifeboat:created-at", &at.to_rfc3339()))
            .send()
            .await
            .unwrap();
        // One at a time, as AWS allows per instance.
        f.account.settle().await.unwrap();
    }
    let event = |id: &str, at: DateTime<Utc>| json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events", "time": at.to_rfc3339(), "detail": {}});
    // An operator request measures and copies without taking new snapshots of orders-db.
    let summary = f
        .run()
        .handle(&json!({"resources": ["users-db"]}), &invocation(six_am()))
        .await
        .unwrap();
    let to_dr: Vec<&str> = summary
        .copies_started
        .iter()
        .filter(|c| c.destination == "us-west-2" && c.snapshot.contains("orders-db"))
        .map(|c| c.snapshot.as_str())
        .collect();
    assert_eq!(
        to_dr.len(),
        20,
        "AWS allows 20 copies in progress into a region"
    );
    let waiting: Vec<&str> = summary
        .copies_waiting
        .iter()
        .map(|c| c.snapshot.as_str())
        .collect();
    assert_eq!(
        waiting,
        [lifeboat::schedule::snapshot_name(
            "lifeboat-local",
            "orders-db",
            six_am() - Duration::hours(21)
        )]
    );
    assert!(
        summary.copies_waiting[0]
            .reason
            .contains("20 copies are already in progress into us-west-2")
    );
    // The newest went first; the oldest waits. While the slots are taken, nothing more starts.
    let busy = f
        .tick("tick-busy", six_am() + Duration::minutes(1))
        .await
        .unwrap();
    assert!(
        busy.copies_started
            .iter()
            .all(|c| !c.snapshot.contains("orders-db")),
        "{:?}",
        busy.copies_started
    );
    // Once the copies are done, the twenty-first goes.
    f.account.settle().await.unwrap();
    let later = f
        .run()
        .handle(
            &event("tick-later", six_am() + Duration::minutes(30)),
            &invocation(six_am() + Duration::minutes(30)),
        )
        .await
        .unwrap();
    assert!(
        later
            .copies_started
            .iter()
            .any(|c| c.snapshot == waiting[0]),
        "{:?}",
        later.copies_started
    );
}

#[tokio::test]
async fn copies_reach_another_account_through_its_role_and_stay_apart() {
    let local = LocalAws::from_env();
    let vault = local.fresh_account();
    let mut plan: Value =
        serde_json::from_str(include_str!("../../infra/plans/local.json")).unwrap();
    plan["snapshots"]["copy_to"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "region": "eu-west-1",
            "kms_key_id": "alias/lifeboat-vault",
            "account_id": vault.id,
            "role_arn": format!("arn:aws:iam::{}:role/lifeboat-vault-copier", vault.id),
        }));
    let f = Fixture::new(parse_plan(&plan.to_string()).unwrap()).await;
    // The vault account's key for its copies.
    let vault_eu = vault.regional("eu-west-1").await;
    let kms = aws_sdk_kms::Client::new(&vault_eu.config);
    let key = kms.create_key().send().await.unwrap();
    kms.create_alias()
        .alias_name("alias/lifeboat-vault")
        .target_key_id(key.key_metadata().unwrap().key_id())
        .send()
        .await
        .unwrap();

    f.tick("tick-1", six_am()).await.unwrap();
    f.account.settle().await.unwrap();
    let summary = f
        .tick("tick-2", six_am() + Duration::minutes(5))
        .await
        .unwrap();
    let destination = format!("eu-west-1@{}", vault.id);
    let to_vault: Vec<&str> = summary
        .copies_started
        .iter()
        .filter(|c| c.destination == destination)
        .map(|c| c.snapshot.as_str())
        .collect();
    assert_eq!(to_vault.len(), 2, "{:?}", summary.copies_started);

    // The source snapshot was shared with the vault account...
    let attrs = f
        .world
        .clients
        .primary
        .rds
        .describe_db_snapshot_attributes()
        .db_snapshot_identifier("lifeboat-lifeboat-local-orders-db-20261125t0600z")
        .send()
        .await
        .unwrap();
    let restore: Vec<String> = attrs
        .db_snapshot_attributes_result()
        .unwrap()
        .db_snapshot_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().to_vec())
        .collect();
    assert_eq!(restore, vec![vault.id.clone()]);
    // ...and the copy lives in the vault account, tagged with its destination.
    let in_vault = vault_eu
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier("lifeboat-lifeboat-local-orders-db-20261125t0600z")
        .send()
        .await
        .expect("the copy is in the vault account");
    let tags: Vec<(String, String)> = in_vault.db_snapshots()[0]
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert!(tags.contains(&("lifeboat:destination".to_string(), destination.clone())));
    // The DR region's copies are the DR destination's own.
    let dr_tags = f
        .dr_snapshot_tags("lifeboat-lifeboat-local-orders-db-20261125t0600z")
        .await
        .unwrap();
    assert!(dr_tags.contains(&("lifeboat:destination".to_string(), "us-west-2".to_string())));
    // The RPO is measured per destination, once the copies are done.
    vault.settle().await.unwrap();
    f.account.settle().await.unwrap();
    let vault_rpo = f
        .tick("tick-3", six_am() + Duration::minutes(10))
        .await
        .unwrap()
        .rpo
        .into_iter()
        .find(|m| m.resource == "orders-db" && m.location == destination)
        .unwrap();
    assert!(!vault_rpo.breached, "{vault_rpo:?}");
}
