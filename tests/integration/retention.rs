//! The retention function's orchestration with its real AWS adapter, against the emulator:
//! backdated snapshots in both regions, dry run and real run, what is never deleted, the
//! per-run cap, an unreadable listing, the archive tier, and 2,000 snapshots in one run.

use crate::support::{local_plan, notifier, reports, state_store};
use chrono::{DateTime, Duration, Utc};
use harness::realism::{Fault, Limits};
use harness::retention::{SeedKind, SeedSnapshot, manual_snapshot_names, seed_snapshots};
use harness::{Account, LocalAws, World, create_world};
use lifeboat::aws::{AwsSnapshots, DynamoStateStore, S3Reports, SnsNotifier};
use lifeboat::function::Invocation;
use lifeboat::plan::{ARCHIVE_TAG, Plan, parse_plan};
use lifeboat::retention::run::{RetentionError, RetentionRun, RetentionSummary};
use lifeboat::schedule::{Tier, snapshot_name};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

const PRIMARY: &str = "us-east-1";
const DR: &str = "us-west-2";
const PLAN: &str = "lifeboat-local";

struct Fixture {
    account: Account,
    plan: Plan,
    world: World,
    snapshots: AwsSnapshots,
    state: DynamoStateStore,
    notifier: SnsNotifier,
    reports: S3Reports,
    requests: AtomicU64,
}

impl Fixture {
    /// The local plan's world, with `retention` as the plan's retention section.
    async fn new(retention: Value) -> Self {
        let account = LocalAws::from_env().fresh_account();
        let mut p = serde_json::to_value(local_plan()).unwrap();
        p["retention"] = retention;
        let plan = harness::plan_in_account(&parse_plan(&p.to_string()).unwrap(), &account);
        let world = create_world(&account, &plan).await.expect("world");
        let snapshots = AwsSnapshots::new(&plan, &world.clients, &account.settings()).await;
        Fixture {
            state: state_store(&world),
            notifier: notifier(&world),
            reports: reports(&world),
            account,
            plan,
            world,
            snapshots,
            requests: AtomicU64::new(0),
        }
    }

    fn run(&self) -> RetentionRun<'_> {
        RetentionRun {
            plan: &self.plan,
            port: &self.snapshots,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
        }
    }

    /// Invoke with `payload` as a new request (its own idempotency key).
    async fn handle(&self, payload: Value) -> Result<RetentionSummary, RetentionError> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        let invocation = Invocation {
            request_id: format!("req-{n}"),
            now,
            deadline: now + Duration::minutes(15),
        };
        self.run().handle(&payload, &invocation).await
    }

    fn rds(&self, region: &str) -> &aws_sdk_rds::Client {
        if region == PRIMARY {
            &self.world.clients.primary.rds
        } else {
            &self.world.clients.dr.rds
        }
    }

    async fn names(&self, region: &str) -> Vec<String> {
        manual_snapshot_names(self.rds(region)).await.unwrap()
    }
}

fn keep_three_days() -> Value {
    json!({"primary": {"keep_daily": 3}, "dr": {"keep_daily": 3},
           "max_deletes_per_run": 100, "deletes_per_second": 10})
}

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - Duration::days(days)
}

/// Daily snapshots of orders-db, `days` of them ending today, named `<prefix>-dNN`.
fn dailies(prefix: &str, source: &str, days: i64) -> Vec<SeedSnapshot> {
    (0..days)
        .map(|d| {
            SeedSnapshot::lifeboat(
                PLAN,
                "orders-db",
                source,
                format!("{prefix}-d{d:02}"),
                days_ago(d),
            )
        })
        .collect()
}

fn tick(id: &str) -> Value {
    json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
           "time": Utc::now().to_rfc3339(), "detail": {}})
}

#[tokio::test]
async fn a_dry_run_reports_and_the_real_run_deletes_in_both_regions_sparing_what_must_stay() {
    let f = Fixture::new(keep_three_days()).await;
    let mut primary = dailies("lb-orders", "orders-db", 10);
    let mut held = SeedSnapshot::lifeboat(PLAN, "orders-db", "orders-db", "lb-held", days_ago(40));
    held.legal_hold = true;
    let mut foreign = SeedSnapshot::lifeboat(
        PLAN,
        "orders-db",
        "orders-db",
        "manual-by-a-dba",
        days_ago(40),
    );
    foreign.owner = None;
    primary.extend([held, foreign]);
    primary.extend((0..5).map(|d| SeedSnapshot {
        kind: SeedKind::Cluster,
        ..SeedSnapshot::lifeboat(
            PLAN,
            "billing-db",
            "billing-db",
            format!("lb-billing-d{d:02}"),
            days_ago(d),
        )
    }));
    seed_snapshots(&f.account, f.rds(PRIMARY), &primary)
        .await
        .unwrap();
    seed_snapshots(
        &f.account,
        f.rds(DR),
        &dailies("lb-orders-dr", "orders-db-dr", 10),
    )
    .await
    .unwrap();
    // Three backups of the table today: one day, so the newest stays.
    let dynamodb = &f.world.clients.primary.dynamodb;
    for h in 0..3 {
        dynamodb
            .create_backup()
            .table_name("lifeboat-local-sessions")
            .backup_name(snapshot_name(
                PLAN,
                "sessions",
                Utc::now() - Duration::minutes(h),
            ))
            .send()
            .await
            .unwrap();
    }
    // Table backups are CREATING for a while, as in AWS: let them become AVAILABLE.
    f.account.settle().await.unwrap();
    let automated = f
        .rds(PRIMARY)
        .describe_db_snapshots()
        .snapshot_type("automated")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .len();
    assert!(
        automated > 0,
        "the emulator gives every instance an automated snapshot"
    );
    let before_primary = f.names(PRIMARY).await;
    let before_dr = f.names(DR).await;

    let dry = f.handle(json!({"dry_run": true})).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        f.names(PRIMARY).await,
        before_primary,
        "a dry run deletes nothing"
    );
    assert_eq!(f.names(DR).await, before_dr);
    let would: Vec<&str> = dry.deleted.iter().map(|d| d.snapshot.as_str()).collect();
    // 7 of orders-db in each region, 2 of billing-db, 2 table backups.
    assert_eq!(would.len(), 18, "{would:?}");

    let tick = tick("retention-tick-1");
    let real = f.run().handle(&tick, &invocation()).await.unwrap();
    assert!(!real.dry_run);
    let mut did: Vec<&str> = real.deleted.iter().map(|d| d.snapshot.as_str()).collect();
    let mut would = would.clone();
    did.sort();
    would.sort();
    assert_eq!(
        did, would,
        "the real run deletes what the dry run announced"
    );
    assert!(real.failed.is_empty(), "{:?}", real.failed);

    let mut expected_primary: Vec<String> = ["lb-held", "manual-by-a-dba"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..3).map(|d| format!("lb-orders-d{d:02}")))
        .chain((0..3).map(|d| format!("lb-billing-d{d:02}")))
        .collect();
    expected_primary.sort();
    assert_eq!(f.names(PRIMARY).await, expected_primary);
    assert_eq!(
        f.names(DR).await,
        (0..3)
            .map(|d| format!("lb-orders-dr-d{d:02}"))
            .collect::<Vec<_>>()
    );
    let backups = dynamodb
        .list_backups()
        .table_name("lifeboat-local-sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(
        backups.backup_summaries().len(),
        1,
        "the newest table backup stays"
    );
    let automated_after = f
        .rds(PRIMARY)
        .describe_db_snapshots()
        .snapshot_type("automated")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .len();
    assert_eq!(
        automated_after, automated,
        "automated snapshots are RDS's, never touched"
    );
    assert_eq!(real.kept_by_reason["legal hold"], 1);
    assert_eq!(real.kept_by_reason["not Lifeboat's"], 1);

    // The full decision list is in S3.
    let uri = real.report.clone().expect("a report");
    let key = uri.splitn(4, '/').nth(3).unwrap();
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
    let body: Value =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    let decisions = body["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), before_primary.len() + before_dr.len() + 3);
    let held = decisions.iter().find(|d| d["name"] == "lb-held").unwrap();
    assert_eq!(held["disposition"], "kept");
    assert!(held["text"].as_str().unwrap().contains("legal hold"));

    // A duplicate delivery of the tick does nothing more.
    let again = f.run().handle(&tick, &invocation()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(f.names(PRIMARY).await, expected_primary);
    // Another run finds nothing more to delete: the planner is stable on its own output.
    let next = f.handle(json!({})).await.unwrap();
    assert!(next.deleted.is_empty(), "{:?}", next.deleted);
}

fn invocation() -> Invocation {
    let now = Utc::now();
    Invocation {
        request_id: "tick-request".into(),
        now,
        deadline: now + Duration::minutes(15),
    }
}

#[tokio::test]
async fn the_per_run_cap_leaves_the_rest_for_the_next_runs() {
    let mut retention = keep_three_days();
    retention["max_deletes_per_run"] = json!(5);
    let f = Fixture::new(retention).await;
    seed_snapshots(
        &f.account,
        f.rds(PRIMARY),
        &dailies("lb-orders", "orders-db", 10),
    )
    .await
    .unwrap();
    seed_snapshots(
        &f.account,
        f.rds(DR),
        &dailies("lb-orders-dr", "orders-db-dr", 10),
    )
    .await
    .unwrap();
    let mut deleted = Vec::new();
    for expected in [5, 5, 4, 0] {
        let s = f.handle(json!({})).await.unwrap();
        assert_eq!(s.deleted.len(), expected, "{}", s.summary);
        assert_eq!(s.deferred, 14 - deleted.len() - expected);
        deleted.extend(s.deleted.into_iter().map(|d| d.snapshot));
    }
    // The oldest went first.
    assert!(
        deleted[..5]
            .iter()
            .all(|n| n.ends_with("d09") || n.ends_with("d08") || n.ends_with("d07"))
    );
    assert_eq!(f.names(PRIMARY).await.len() + f.names(DR).await.len(), 6);
}

#[tokio::test]
async fn an_unreadable_listing_aborts_the_run_before_any_delete() {
    let f = Fixture::new(keep_three_days()).await;
    seed_snapshots(
        &f.account,
        f.rds(PRIMARY),
        &dailies("lb-orders", "orders-db", 10),
    )
    .await
    .unwrap();
    seed_snapshots(
        &f.account,
        f.rds(DR),
        &dailies("lb-orders-dr", "orders-db-dr", 10),
    )
    .await
    .unwrap();
    let before = f.names(PRIMARY).await;
    // The DR region's listing fails (after the SDK's retries); the primary one would work.
    f.account
        .inject(
            Fault::throttle("rds")
                .operation("DescribeDBSnapshots")
                .region(DR),
        )
        .await
        .unwrap();
    let err = f.handle(json!({})).await.unwrap_err();
    match &err {
        RetentionError::Inventory { location, .. } => assert_eq!(location, DR),
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("nothing was deleted anywhere"),
        "{err}"
    );
    f.account.clear_faults().await.unwrap();
    assert_eq!(
        f.names(PRIMARY).await,
        before,
        "nothing deleted in the readable region"
    );
    let s = f.handle(json!({})).await.unwrap();
    assert_eq!(
        s.deleted.len(),
        14,
        "once the listing reads, the run goes ahead"
    );
}

#[tokio::test]
async fn a_monthly_snapshot_is_archived_to_s3_before_it_is_deleted() {
    let mut retention = keep_three_days();
    retention["archive"] = json!({
        "bucket": "lifeboat-local-archive",
        "iam_role_arn": "arn:aws:iam::123456789012:role/lifeboat-snapshot-export",
        "kms_key_id": "alias/lifeboat-archive"
    });
    let f = Fixture::new(retention).await;
    // The archive tier works on the DR region's copies.
    let mut seeds = dailies("lb-orders", "orders-db-dr", 3);
    seeds.push(SeedSnapshot {
        tier: Tier::Monthly,
        ..SeedSnapshot::lifeboat(
            PLAN,
            "orders-db",
            "orders-db-dr",
            "lb-orders-monthly",
            days_ago(45),
        )
    });
    seed_snapshots(&f.account, f.rds(DR), &seeds).await.unwrap();

    let first = f.handle(json!({})).await.unwrap();
    assert_eq!(
        first.archives_started,
        ["lb-orders-monthly"],
        "{}",
        first.summary
    );
    assert!(first.deleted.is_empty());
    let rds = f.rds(DR);
    let snapshot = rds
        .describe_db_snapshots()
        .db_snapshot_identifier("lb-orders-monthly")
        .send()
        .await
        .unwrap();
    let snapshot = &snapshot.db_snapshots()[0];
    let task = snapshot
        .tag_list()
        .iter()
        .find(|t| t.key() == Some(ARCHIVE_TAG))
        .and_then(|t| t.value())
        .expect("the snapshot is tagged with its export task")
        .to_string();
    let tasks = rds
        .describe_export_tasks()
        .export_task_identifier(&task)
        .send()
        .await
        .unwrap();
    let export = &tasks.export_tasks()[0];
    assert_eq!(export.source_arn(), snapshot.db_snapshot_arn());
    assert_eq!(export.s3_bucket(), Some("lifeboat-local-archive"));
    assert_eq!(
        export.s3_prefix(),
        Some("archive/orders-db/lb-orders-monthly")
    );

    // The emulator completes exports at once (AWS takes a while): the next run deletes
    // it, and starts nothing again.
    let second = f.handle(json!({})).await.unwrap();
    assert!(second.archives_started.is_empty());
    assert_eq!(
        second
            .deleted
            .iter()
            .map(|d| d.snapshot.as_str())
            .collect::<Vec<_>>(),
        ["lb-orders-monthly"]
    );
    let tasks = rds.describe_export_tasks().send().await.unwrap();
    assert_eq!(tasks.export_tasks().len(), 1, "exported once");
}

#[tokio::test]
async fn two_thousand_snapshots_across_both_regions_are_listed_and_planned_in_one_run() {
    let mut retention = keep_three_days();
    retention["max_deletes_per_run"] = json!(20);
    let f = Fixture::new(retention).await;
    f.account
        .set_limits(Limits {
            manual_db_snapshots_per_region: Some(1100),
            ..Limits::default()
        })
        .await
        .unwrap();
    let began = std::time::Instant::now();
    // Hourly snapshots over the last 1,000 hours, in each region.
    let hourly = |prefix: &str, source: &str| -> Vec<SeedSnapshot> {
        (0..1000)
            .map(|h| {
                SeedSnapshot::lifeboat(
                    PLAN,
                    "orders-db",
                    source,
                    format!("{prefix}-h{h:04}"),
                    Utc::now() - Duration::hours(h),
                )
            })
            .collect()
    };
    let primary = hourly("lb-orders", "orders-db");
    let dr = hourly("lb-orders-dr", "orders-db-dr");
    let (a, b) = tokio::join!(
        seed_snapshots(&f.account, f.rds(PRIMARY), &primary),
        seed_snapshots(&f.account, f.rds(DR), &dr),
    );
    a.unwrap();
    b.unwrap();
    let seeded = began.elapsed();

    let began = std::time::Instant::now();
    let s = f.handle(json!({})).await.unwrap();
    let ran = began.elapsed();
    eprintln!(
        "2,000 snapshots: seeded in {:.1} s, one retention run in {:.1} s",
        seeded.as_secs_f64(),
        ran.as_secs_f64()
    );
    for l in &s.locations {
        assert_eq!(l.listed, 1000, "{}: every page listed", l.location);
        // Three days of hourly snapshots, one kept per day (about 26 hours, 3 kept).
        assert_eq!(l.kept, 3, "{}", l.location);
    }
    assert_eq!(s.locations.len(), 2);
    assert_eq!(s.deleted.len(), 20, "the cap holds");
    assert_eq!(s.deferred, 2 * 997 - 20);
    assert_eq!(f.names(PRIMARY).await.len() + f.names(DR).await.len(), 1980);
}
