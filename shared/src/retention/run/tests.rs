//! The retention run's orchestration against in-memory fakes: what it deletes and when it
//! refuses to, the cap, the rate, the deadline, duplicates, failures and the archive tier.
//! (The AWS adapter is tested against the emulator in `tests/integration/retention.rs`.)

use super::*;
use crate::backup::BackupStatus;
use crate::error::AwsFailure;
use crate::notify::RecordingNotifier;
use crate::plan::{CREATED_TAG, PLAN_TAG, RESOURCE_TAG, parse_plan};
use crate::report::MemoryReports;
use crate::retention::archive::{ExportState, archive_task_id};
use crate::state::memory::MemoryStateStore;
use chrono::TimeZone;
use serde_json::json;
use std::sync::Mutex;

const PRIMARY: &str = "us-east-1";
const DR: &str = "us-west-2";

#[derive(Default)]
struct FakePort {
    records: Mutex<BTreeMap<String, Vec<BackupRecord>>>,
    exports: Mutex<Vec<ExportTask>>,
    deleted: Mutex<Vec<String>>,
    started: Mutex<Vec<String>>,
    unreadable: Option<String>,
    throttle_delete: HashSet<String>,
    /// Deleted by someone else between the listing and the delete.
    vanish: HashSet<String>,
}

fn aws_error(code: &str, failure: AwsFailure) -> AwsError {
    AwsError {
        service: "rds",
        operation: "DeleteDBSnapshot",
        resource: "x".into(),
        failure,
        code: Some(code.into()),
        message: code.into(),
    }
}

#[async_trait]
impl RetentionPort for FakePort {
    async fn list(&self, location: &str) -> Result<Vec<BackupRecord>, AwsError> {
        if self.unreadable.as_deref() == Some(location) {
            return Err(aws_error("Throttling", AwsFailure::Throttled));
        }
        Ok(self
            .records
            .lock()
            .unwrap()
            .get(location)
            .cloned()
            .unwrap_or_default())
    }
    async fn list_exports(&self, _location: &str) -> Result<Vec<ExportTask>, AwsError> {
        Ok(self.exports.lock().unwrap().clone())
    }
    async fn delete(&self, record: &BackupRecord) -> Result<(), AwsError> {
        if self.throttle_delete.contains(&record.id) {
            return Err(aws_error("Throttling", AwsFailure::Throttled));
        }
        if self.vanish.contains(&record.id) {
            return Err(aws_error("DBSnapshotNotFound", AwsFailure::Refused));
        }
        let mut records = self.records.lock().unwrap();
        let list = records.entry(record.location.clone()).or_default();
        let before = list.len();
        list.retain(|r| r.id != record.id);
        if list.len() == before {
            return Err(aws_error("DBSnapshotNotFound", AwsFailure::Refused));
        }
        self.deleted.lock().unwrap().push(record.id.clone());
        Ok(())
    }
    async fn start_export(
        &self,
        _location: &str,
        order: &ArchiveOrder,
        _archive: &ArchiveSettings,
    ) -> Result<(), AwsError> {
        self.started.lock().unwrap().push(order.task_id.clone());
        self.exports.lock().unwrap().push(ExportTask {
            task_id: order.task_id.clone(),
            source_arn: order.snapshot_arn.clone(),
            state: ExportState::Running,
            destination: format!("s3://{}/{}", order.bucket, order.prefix),
            failure: None,
        });
        Ok(())
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap()
}

/// A Lifeboat snapshot of `resource` at `location`, taken `days` days before now.
fn snap(location: &str, resource: &str, days: i64) -> BackupRecord {
    let name = format!("lifeboat-lifeboat-local-{resource}-{days:03}");
    let created = now() - chrono::Duration::days(days);
    BackupRecord {
        arn: Some(format!("arn:aws:rds:{location}:1:snapshot:{name}")),
        id: name,
        kind: BackupKind::DbSnapshot,
        location: location.into(),
        source: resource.into(),
        created_at: Some(created),
        status: BackupStatus::Available,
        automated: false,
        copy_of: None,
        tags: BTreeMap::from([
            (PLAN_TAG.to_string(), "lifeboat-local".to_string()),
            (RESOURCE_TAG.to_string(), resource.to_string()),
            (TIER_TAG.to_string(), "daily".to_string()),
            (CREATED_TAG.to_string(), created.to_rfc3339()),
        ]),
    }
}

/// The local plan keeping 3 days in each region, nothing else.
fn plan_with(retention: serde_json::Value) -> Plan {
    let mut p: serde_json::Value =
        serde_json::from_str(include_str!("../../../../infra/plans/local.json")).unwrap();
    p["retention"] = retention;
    parse_plan(&p.to_string()).unwrap()
}

fn three_days() -> serde_json::Value {
    json!({"primary": {"keep_daily": 3}, "dr": {"keep_daily": 3},
           "max_deletes_per_run": 50, "deletes_per_second": 10})
}

fn invocation() -> Invocation {
    Invocation {
        request_id: "req-1".into(),
        now: now(),
        deadline: now() + chrono::Duration::minutes(15),
    }
}

fn tick(id: &str) -> serde_json::Value {
    json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
           "time": now().to_rfc3339(), "detail": {}})
}

struct World {
    plan: Plan,
    port: FakePort,
    state: MemoryStateStore,
    notifier: RecordingNotifier,
    reports: MemoryReports,
}

impl World {
    fn new(plan: Plan, port: FakePort, records: Vec<BackupRecord>) -> Self {
        {
            let mut by_location = port.records.lock().unwrap();
            for r in records {
                by_location.entry(r.location.clone()).or_default().push(r);
            }
        }
        World {
            plan,
            port,
            state: MemoryStateStore::default(),
            notifier: RecordingNotifier::default(),
            reports: MemoryReports::default(),
        }
    }

    fn run(&self) -> RetentionRun<'_> {
        RetentionRun {
            plan: &self.plan,
            port: &self.port,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
        }
    }

    fn left(&self, location: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.port.records.lock().unwrap()[location]
            .iter()
            .map(|r| r.id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// Ten daily snapshots of orders-db in each region.
fn ten_days_each() -> Vec<BackupRecord> {
    (0..10)
        .flat_map(|d| [snap(PRIMARY, "orders-db", d), snap(DR, "orders-db", d)])
        .collect()
}

#[test]
fn the_sample_events_parse() {
    let scheduled: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/retention-scheduled.json")).unwrap();
    assert!(matches!(
        parse_command(&scheduled).unwrap(),
        RetentionCommand::Scheduled { .. }
    ));
    let dry: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/retention-dry-run.json")).unwrap();
    assert_eq!(
        parse_command(&dry).unwrap(),
        RetentionCommand::Operator { dry_run: true }
    );
}

#[test]
fn commands_parse_and_anything_else_is_refused_with_what_is_expected() {
    assert_eq!(
        parse_command(&tick("e1")).unwrap(),
        RetentionCommand::Scheduled {
            event_id: "e1".into()
        }
    );
    assert_eq!(
        parse_command(&json!({"dry_run": true})).unwrap(),
        RetentionCommand::Operator { dry_run: true }
    );
    assert_eq!(
        parse_command(&json!({})).unwrap(),
        RetentionCommand::Operator { dry_run: false }
    );
    let err = parse_command(&json!({"dryrun": true})).unwrap_err();
    assert!(err.0.contains("unknown field `dryrun`"), "{err}");
    assert!(err.0.contains("{\"dry_run\": true}"), "{err}");
    let err = parse_command(&json!({"dry_run": "yes"})).unwrap_err();
    assert!(err.0.contains("invalid type"), "{err}");
    let alarm = json!({"account": "123456789012", "region": "us-east-1", "resources": [], "time": "2026-11-25T10:00:00Z", "version": "0", "id": "e2", "detail-type": "CloudWatch Alarm State Change",
                       "source": "aws.cloudwatch", "detail": {}});
    let err = parse_command(&alarm).unwrap_err();
    assert!(err.0.contains("does not handle"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_reports_what_a_real_run_then_deletes() {
    let w = World::new(
        plan_with(three_days()),
        FakePort::default(),
        ten_days_each(),
    );
    let dry = w
        .run()
        .handle(&json!({"dry_run": true}), &invocation())
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert!(
        w.port.deleted.lock().unwrap().is_empty(),
        "a dry run deletes nothing"
    );
    assert_eq!(dry.deleted.len(), 14);
    assert_eq!(dry.kept(), 6);
    assert!(
        dry.summary.starts_with("Dry run, nothing deleted."),
        "{}",
        dry.summary
    );
    assert!(
        w.notifier.sent.lock().unwrap().is_empty(),
        "nothing happened, nobody is paged"
    );

    let real = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert!(!real.dry_run);
    let mut would: Vec<&str> = dry.deleted.iter().map(|d| d.snapshot.as_str()).collect();
    let mut did: Vec<&str> = real.deleted.iter().map(|d| d.snapshot.as_str()).collect();
    would.sort();
    did.sort();
    assert_eq!(
        would, did,
        "the real run deletes what the dry run announced"
    );
    assert_eq!(w.port.deleted.lock().unwrap().len(), 14);
    for location in [PRIMARY, DR] {
        assert_eq!(
            w.left(location),
            (0..3)
                .map(|d| format!("lifeboat-lifeboat-local-orders-db-{d:03}"))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(real.kept_by_reason["daily"], 6);
    assert_eq!(real.deleted[0].reason, "deleted: outside every bucket");

    // The full decision list is in the report; the summary went to SNS; the timeline has
    // one entry per deletion and one for the run.
    let reports = w.reports.stored.lock().unwrap();
    let report = reports.values().last().unwrap();
    assert_eq!(report["decisions"].as_array().unwrap().len(), 20);
    let sent = w.notifier.sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject, "retention deleted 14 snapshot(s)");
    let timeline = w.state.entries("lifeboat-local");
    // Each deletion's intent before it, its outcome after.
    for outcome in [Outcome::Intended, Outcome::Succeeded] {
        assert_eq!(
            timeline
                .iter()
                .filter(|e| e.action == "retention.delete" && e.outcome == outcome)
                .count(),
            14,
            "{outcome}"
        );
    }
    assert_eq!(timeline.last().unwrap().action, "retention.run");
}

#[tokio::test(start_paused = true)]
async fn the_plan_s_dry_run_wins_over_the_event() {
    let mut retention = three_days();
    retention["dry_run"] = json!(true);
    let w = World::new(plan_with(retention), FakePort::default(), ten_days_each());
    let s = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert!(s.dry_run);
    assert!(w.port.deleted.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn legal_holds_foreign_automated_and_copy_sources_are_never_deleted() {
    let mut held = snap(PRIMARY, "orders-db", 9);
    held.tags.insert(LEGAL_HOLD_TAG.into(), "case-42".into());
    let mut foreign = snap(PRIMARY, "orders-db", 8);
    foreign.id = "someone-elses".into();
    foreign.tags.clear();
    let mut automated = snap(PRIMARY, "orders-db", 7);
    automated.id = "rds:orders-db-2026-11-18".into();
    automated.automated = true;
    let source = snap(PRIMARY, "orders-db", 6);
    let mut copying = snap(DR, "orders-db", 6);
    copying.status = BackupStatus::InProgress("copying".into());
    copying
        .tags
        .insert(SOURCE_TAG.into(), source.arn.clone().unwrap());
    let mut records = vec![held, foreign, automated, source, copying];
    records.extend((0..3).map(|d| snap(PRIMARY, "orders-db", d)));
    let w = World::new(plan_with(three_days()), FakePort::default(), records);
    let s = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert!(s.deleted.is_empty(), "{:?}", s.deleted);
    assert_eq!(s.kept_by_reason["legal hold"], 1);
    assert_eq!(s.kept_by_reason["not Lifeboat's"], 1);
    assert_eq!(s.kept_by_reason["automated"], 1);
    assert_eq!(s.kept_by_reason["copy in progress"], 1);
    assert_eq!(s.kept_by_reason["not available"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_copy_source_is_known_by_its_arn_in_any_case() {
    let source = snap(PRIMARY, "orders-db", 6);
    let mut copying = snap(DR, "orders-db", 6);
    copying.status = BackupStatus::InProgress("copying".into());
    copying.tags.insert(
        SOURCE_TAG.into(),
        source.arn.clone().unwrap().to_ascii_uppercase(),
    );
    let mut records = vec![source, copying];
    records.extend((0..3).map(|d| snap(PRIMARY, "orders-db", d)));
    let w = World::new(plan_with(three_days()), FakePort::default(), records);
    let s = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert!(s.deleted.is_empty(), "{:?}", s.deleted);
    assert_eq!(s.kept_by_reason["copy in progress"], 1);
}

#[tokio::test(start_paused = true)]
async fn the_cap_deletes_the_oldest_first_and_leaves_the_rest_for_the_next_run() {
    let mut retention = three_days();
    retention["max_deletes_per_run"] = json!(4);
    let w = World::new(plan_with(retention), FakePort::default(), ten_days_each());
    let first = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert_eq!(first.deleted.len(), 4);
    assert_eq!(first.deferred, 10);
    let deleted = w.port.deleted.lock().unwrap().clone();
    assert!(
        deleted
            .iter()
            .all(|id| id.ends_with("-009") || id.ends_with("-008")),
        "the oldest go first: {deleted:?}"
    );
    assert!(
        first.summary.contains("left for the next run"),
        "{}",
        first.summary
    );
    let second = w.run().handle(&tick("evt-2"), &invocation()).await.unwrap();
    assert_eq!(second.deleted.len(), 4);
    assert_eq!(second.deferred, 6);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_listing_anywhere_deletes_nothing_anywhere() {
    let port = FakePort {
        unreadable: Some(DR.into()),
        ..FakePort::default()
    };
    let w = World::new(plan_with(three_days()), port, ten_days_each());
    let err = w
        .run()
        .handle(&tick("evt-1"), &invocation())
        .await
        .unwrap_err();
    assert!(matches!(err, RetentionError::Inventory { ref location, .. } if location == DR));
    assert_eq!(err.retry(), Retry::Retryable);
    assert!(
        err.to_string().contains("nothing was deleted anywhere"),
        "{err}"
    );
    assert!(w.port.deleted.lock().unwrap().is_empty());
    // The claim was released: Lambda's retry of the same event runs (and fails the same
    // way here) instead of being taken for a duplicate.
    let again = w.run().handle(&tick("evt-1"), &invocation()).await;
    assert!(matches!(again, Err(RetentionError::Inventory { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_failed_delete_is_reported_and_the_others_still_go() {
    let throttled = snap(PRIMARY, "orders-db", 9).id;
    let port = FakePort {
        throttle_delete: HashSet::from([throttled.clone()]),
        ..FakePort::default()
    };
    let w = World::new(plan_with(three_days()), port, ten_days_each());
    let s = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    // The copy in the DR region has the same name: both deletes are throttled.
    assert_eq!(s.deleted.len(), 12);
    assert_eq!(s.failed.len(), 2);
    assert!(s.failed[0].subject.contains(&throttled));
    assert!(s.failed[0].retryable);
    let sent = w.notifier.sent.lock().unwrap();
    assert_eq!(sent[0].severity, Severity::Warning);
    assert!(
        sent[0].subject.contains("2 step(s) failed, 12 deleted"),
        "{}",
        sent[0].subject
    );
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_event_returns_the_stored_result_and_a_snapshot_already_gone_is_no_failure() {
    let w = World::new(
        plan_with(three_days()),
        FakePort::default(),
        ten_days_each(),
    );
    let first = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    let again = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.deleted, first.deleted);
    assert_eq!(w.port.deleted.lock().unwrap().len(), 14, "deleted once");

    // A delete that finds the snapshot gone (a concurrent run took it) is not a failure.
    let gone = snap(PRIMARY, "orders-db", 9).id;
    let port = FakePort {
        vanish: HashSet::from([gone.clone()]),
        ..FakePort::default()
    };
    let w = World::new(plan_with(three_days()), port, ten_days_each());
    let s = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert_eq!(s.already_gone, [gone.clone(), gone], "in both regions");
    assert!(s.failed.is_empty());
    assert_eq!(s.deleted.len(), 12);
}

#[tokio::test(start_paused = true)]
async fn deletes_keep_the_plan_s_rate_and_stop_before_the_deadline() {
    let mut retention = three_days();
    retention["deletes_per_second"] = json!(2);
    let w = World::new(plan_with(retention), FakePort::default(), ten_days_each());
    let began = tokio::time::Instant::now();
    let s = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert_eq!(s.deleted.len(), 14);
    // 14 deletes at 2 a second: 13 pauses of half a second.
    assert_eq!(began.elapsed(), Duration::from_millis(6500));

    // Seventy seconds left: a minute is kept back, so ten seconds of deleting at 1 a second.
    let mut retention = three_days();
    retention["deletes_per_second"] = json!(1);
    let w = World::new(plan_with(retention), FakePort::default(), ten_days_each());
    let short = Invocation {
        deadline: now() + chrono::Duration::seconds(70),
        ..invocation()
    };
    let s = w.run().handle(&tick("evt-1"), &short).await.unwrap();
    assert_eq!(s.deleted.len(), 10);
    assert_eq!(s.deferred, 4);
}

#[tokio::test(start_paused = true)]
async fn an_archived_tier_is_exported_before_it_is_deleted() {
    let mut retention = three_days();
    retention["archive"] = json!({
        "bucket": "lifeboat-local-archive",
        "iam_role_arn": "arn:aws:iam::123456789012:role/lifeboat-export",
        "kms_key_id": "alias/lifeboat-archive"
    });
    let mut records = ten_days_each();
    let mut monthly = snap(PRIMARY, "billing-db", 20);
    monthly.tags.insert(TIER_TAG.into(), "monthly".into());
    let mut dr_monthly = snap(DR, "billing-db", 20);
    dr_monthly.tags.insert(TIER_TAG.into(), "monthly".into());
    records.extend([monthly.clone(), dr_monthly.clone()]);
    // Three newer days, so the monthly one is outside `keep_daily = 3` in both regions.
    records
        .extend((0..3).flat_map(|d| [snap(PRIMARY, "billing-db", d), snap(DR, "billing-db", d)]));
    let w = World::new(plan_with(retention), FakePort::default(), records);

    let first = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    let task = archive_task_id("lifeboat-local", dr_monthly.arn.as_deref().unwrap(), 1);
    assert_eq!(*w.port.started.lock().unwrap(), [task]);
    assert_eq!(first.archives_started, [monthly.id.clone()]);
    assert!(w.left(DR).contains(&monthly.id), "kept while it exports");
    assert!(
        !w.left(PRIMARY).iter().any(|id| id == &monthly.id),
        "the archive tier is the DR region's; the primary snapshot goes by its own policy"
    );

    // Still running: kept, and not started again.
    let second = w.run().handle(&tick("evt-2"), &invocation()).await.unwrap();
    assert_eq!(w.port.started.lock().unwrap().len(), 1);
    assert_eq!(second.kept_by_reason["export in progress"], 1);

    // Complete: deleted (the primary one went in the first run).
    w.port.exports.lock().unwrap()[0].state = ExportState::Complete;
    let third = w.run().handle(&tick("evt-3"), &invocation()).await.unwrap();
    assert_eq!(third.deleted.len(), 1);
    assert!(!w.left(DR).contains(&monthly.id));
}

#[tokio::test(start_paused = true)]
async fn an_array_is_not_an_operator_s_real_run_nothing_is_deleted() {
    // serde alone reads `[]` (and `[false]`) as `{}`: a real run that deletes.
    let w = World::new(
        plan_with(three_days()),
        FakePort::default(),
        ten_days_each(),
    );
    for payload in [
        json!([]),
        json!([false]),
        json!([{}]),
        json!(null),
        json!(""),
    ] {
        let err = w.run().handle(&payload, &invocation()).await.unwrap_err();
        assert_eq!(err.retry(), Retry::NonRetryable, "{payload}");
        assert!(
            err.to_string().contains("takes a JSON object"),
            "{payload}: {err}"
        );
    }
    assert!(w.port.deleted.lock().unwrap().is_empty());
    assert!(w.state.entries("lifeboat-local").is_empty());
    assert!(w.notifier.sent.lock().unwrap().is_empty());
    assert!(w.reports.stored.lock().unwrap().is_empty());
}

proptest::proptest! {
    #[test]
    fn no_payload_panics_the_parser_and_only_objects_get_past_it(
        v in crate::request::arbitrary::requests_for("retention")
    ) {
        let parsed = parse_command(&v);
        if !v.is_object() {
            proptest::prop_assert_eq!(
                parsed.unwrap_err().0,
                crate::request::RequestError::NotAnObject {
                    function: "retention",
                    got: crate::request::JsonKind::of(&v),
                    expects: crate::request::expected_by("retention"),
                }
                .to_string()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_deletion_whose_intent_the_table_refuses_is_not_taken() {
    let w = World::new(
        plan_with(three_days()),
        FakePort::default(),
        ten_days_each(),
    );
    // The state table takes three intents, refuses the next four, then takes the rest.
    w.state.throttle_commits(3, 4);
    let summary = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    let deleted = w.port.deleted.lock().unwrap().clone();
    assert_eq!(deleted.len(), 10, "four left for the next run");
    assert_eq!(summary.deferred, 4, "{}", summary.summary);
    assert_eq!(
        summary
            .failed
            .iter()
            .filter(|f| f.subject.starts_with("audit entry for") && f.retryable)
            .count(),
        4,
        "{:?}",
        summary.failed
    );
    // Each deletion (named by id in each region) had its intent (naming its ARN) first.
    let timeline = w.state.entries("lifeboat-local");
    for id in &deleted {
        let times_deleted = deleted.iter().filter(|d| *d == id).count();
        let intents = timeline
            .iter()
            .filter(|e| {
                e.action == "retention.delete"
                    && e.outcome == Outcome::Intended
                    && e.data["snapshot"]
                        .as_str()
                        .is_some_and(|s| s.ends_with(&format!(":{id}")))
            })
            .count();
        assert_eq!(intents, times_deleted, "{id}: {times_deleted} deletions");
    }
}

#[tokio::test(start_paused = true)]
async fn outcomes_the_table_refuses_are_said_in_the_reply_and_the_report() {
    let w = World::new(
        plan_with(three_days()),
        FakePort::default(),
        ten_days_each(),
    );
    // The fourteen intents go in; the outcomes and the run's entry are refused.
    w.state.throttle_commits(14, 2);
    let summary = w.run().handle(&tick("evt-1"), &invocation()).await.unwrap();
    assert_eq!(w.port.deleted.lock().unwrap().len(), 14);
    let failed: Vec<&str> = summary.failed.iter().map(|f| f.subject.as_str()).collect();
    assert_eq!(
        failed,
        ["audit entries", "audit entry"],
        "{}",
        summary.summary
    );
    assert!(
        summary.failed[0]
            .error
            .contains("outcomes are in its report only"),
        "{:?}",
        summary.failed
    );
    let reports = w.reports.stored.lock().unwrap();
    assert_eq!(reports.len(), 1, "one report, written again");
    let report = reports.values().next().unwrap();
    let in_report: Vec<&str> = report["summary"]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert_eq!(in_report, ["audit entries", "audit entry"]);
    let intents = w
        .state
        .entries("lifeboat-local")
        .iter()
        .filter(|e| e.action == "retention.delete" && e.outcome == Outcome::Intended)
        .count();
    assert_eq!(intents, 14);
}
