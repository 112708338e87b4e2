//! The snapshot run's orchestration against in-memory fakes: which calls it makes, what
//! it records, how it treats duplicates and failures. (The AWS adapter is tested against
//! the emulator in `tests/integration/snapshot.rs`.)

use super::*;
use crate::backup::{SourceCondition, SourceState};
use crate::error::AwsFailure;
use crate::notify::RecordingNotifier;
use crate::plan::parse_plan;
use crate::report::MemoryReports;
use crate::state::memory::MemoryStateStore;
use chrono::TimeZone;
use serde_json::json;
use std::sync::Mutex;

#[derive(Default)]
struct FakePort {
    conditions: BTreeMap<String, SourceCondition>,
    primary: Mutex<Vec<BackupRecord>>,
    destination: Mutex<Vec<BackupRecord>>,
    created: Mutex<Vec<String>>,
    copied: Mutex<Vec<String>>,
    exports: Mutex<Vec<String>>,
    fail_create: Option<String>,
    fail_listing: bool,
}

fn aws_error(code: &str) -> AwsError {
    AwsError {
        service: "rds",
        operation: "CreateDBSnapshot",
        resource: "x".into(),
        failure: AwsFailure::Throttled,
        code: Some(code.into()),
        message: "Rate exceeded".into(),
    }
}

#[async_trait]
impl SnapshotPort for FakePort {
    async fn source_state(&self, resource: &ProtectedResource) -> SourceState {
        SourceState {
            resource: resource.id.clone(),
            condition: self
                .conditions
                .get(&resource.id)
                .cloned()
                .unwrap_or(SourceCondition::Ready),
        }
    }
    async fn list_primary(&self) -> Result<Vec<BackupRecord>, AwsError> {
        if self.fail_listing {
            return Err(aws_error("Throttling"));
        }
        Ok(self.primary.lock().unwrap().clone())
    }
    async fn list_destination(&self, _d: &CopyDestination) -> Result<Vec<BackupRecord>, AwsError> {
        Ok(self.destination.lock().unwrap().clone())
    }
    async fn create(
        &self,
        order: &CreationOrder,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        if self.fail_create.as_deref() == Some(order.resource.as_str()) {
            return Err(aws_error("Throttling"));
        }
        self.created.lock().unwrap().push(order.name.clone());
        self.primary.lock().unwrap().push(BackupRecord {
            id: order.name.clone(),
            arn: Some(format!("arn:aws:rds:us-east-1:1:snapshot:{}", order.name)),
            kind: order.kind,
            location: "us-east-1".into(),
            source: order.source.clone(),
            created_at: Some(at(6, 0)),
            status: BackupStatus::InProgress("creating".into()),
            automated: false,
            copy_of: None,
            tags: tags.clone(),
        });
        Ok(())
    }
    async fn copy(&self, order: &CopyOrder, _d: &CopyDestination) -> Result<(), AwsError> {
        self.copied.lock().unwrap().push(order.snapshot.id.clone());
        Ok(())
    }
    async fn start_export(
        &self,
        r: &ProtectedResource,
        _bucket: &str,
        prefix: &str,
    ) -> Result<String, AwsError> {
        self.exports.lock().unwrap().push(prefix.to_string());
        Ok(format!(
            "arn:aws:dynamodb:us-east-1:1:table/{}/export/{}",
            r.aws_identifier(),
            prefix.len()
        ))
    }
    async fn export_progress(&self, _arn: &str) -> Result<ExportProgress, AwsError> {
        Ok(ExportProgress {
            status: BackupStatus::Available,
            export_time: Some(at(0, 5)),
            failure: None,
        })
    }
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap()
}

fn plan() -> Plan {
    parse_plan(include_str!("../../../../infra/plans/local.json")).unwrap()
}

fn tick(id: &str, t: DateTime<Utc>) -> serde_json::Value {
    json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
           "time": t.to_rfc3339(), "detail": {}})
}

fn invocation(now: DateTime<Utc>) -> Invocation {
    Invocation {
        request_id: "req-1".into(),
        now,
        deadline: now + chrono::Duration::minutes(5),
    }
}

struct World {
    plan: Plan,
    port: FakePort,
    state: MemoryStateStore,
    notifier: RecordingNotifier,
    reports: MemoryReports,
}

impl World {
    fn new(port: FakePort) -> Self {
        World {
            plan: plan(),
            port,
            state: MemoryStateStore::default(),
            notifier: RecordingNotifier::default(),
            reports: MemoryReports::default(),
        }
    }
    fn run(&self) -> SnapshotRun<'_> {
        SnapshotRun {
            plan: &self.plan,
            port: &self.port,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
        }
    }
}

#[tokio::test]
async fn a_tick_creates_exports_records_and_a_duplicate_does_nothing_again() {
    let w = World::new(FakePort::default());
    let summary = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap();
    assert_eq!(summary.created.len(), 3);
    assert_eq!(w.port.created.lock().unwrap().len(), 3);
    assert_eq!(
        *w.port.exports.lock().unwrap(),
        ["lifeboat/lifeboat-local/sessions/20261125t0000z/"]
    );
    assert!(
        summary.summary.starts_with("Created 3 ("),
        "{}",
        summary.summary
    );
    assert!(
        summary
            .report
            .as_deref()
            .unwrap()
            .starts_with("memory://lifeboat-local/snapshot/2026/11/25/")
    );
    // Nothing copied yet (the new snapshots are still creating), so the DR RPO is breached
    // and operators are told.
    assert!(
        summary
            .rpo
            .iter()
            .any(|m| m.location == "us-west-2" && m.breached)
    );
    let sent = w.notifier.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].severity, Severity::Warning);
    assert!(sent[0].subject.contains("RPO breached"));
    let timeline = w.state.entries("lifeboat-local");
    for outcome in [Outcome::Intended, Outcome::Started] {
        assert_eq!(
            timeline
                .iter()
                .filter(|e| e.action == "snapshot.create" && e.outcome == outcome)
                .count(),
            3
        );
    }
    assert_eq!(timeline.last().unwrap().action, "snapshot.run");

    // The same event delivered again: the stored result, and no AWS call.
    let again = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 2)))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.created, summary.created);
    assert_eq!(w.port.created.lock().unwrap().len(), 3);

    // Another event for the same window finds the snapshots there.
    let other = w
        .run()
        .handle(&tick("evt-2", at(6, 30)), &invocation(at(6, 31)))
        .await
        .unwrap();
    assert!(other.created.is_empty());
    assert_eq!(other.already_taken.len(), 3);
    assert_eq!(w.port.created.lock().unwrap().len(), 3);
    // The export was recorded and has completed; it is not started twice.
    assert_eq!(w.port.exports.lock().unwrap().len(), 1);
    assert!(other.exports.iter().any(|e| e.status == "available"));
}

#[tokio::test]
async fn one_failing_resource_does_not_stop_the_others_and_the_retry_finishes_it() {
    let w = World::new(FakePort {
        fail_create: Some("billing-db".into()),
        ..FakePort::default()
    });
    let err = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::Retryable);
    let SnapshotError::Incomplete(summary) = &err else {
        panic!("{err}")
    };
    assert_eq!(summary.created.len(), 2);
    assert_eq!(summary.failed[0].subject, "billing-db");
    assert!(err.to_string().contains("failed 1 [billing-db:"), "{err}");
    assert_eq!(
        w.notifier.sent.lock().unwrap()[0].severity,
        Severity::Critical
    );

    // Lambda retries the same event: the claim was released, and only the missing
    // snapshot is created.
    let w2 = World {
        port: FakePort {
            primary: Mutex::new(w.port.primary.lock().unwrap().clone()),
            ..FakePort::default()
        },
        state: w.state,
        ..World::new(FakePort::default())
    };
    let summary = w2
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 3)))
        .await
        .unwrap();
    assert_eq!(summary.created.len(), 1);
    assert_eq!(summary.created[0].resource, "billing-db");
    assert_eq!(summary.already_taken.len(), 2);
}

#[tokio::test]
async fn an_unreadable_listing_changes_nothing() {
    let w = World::new(FakePort {
        fail_listing: true,
        ..FakePort::default()
    });
    let err = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap_err();
    assert!(matches!(err, SnapshotError::Inventory(_)), "{err}");
    assert!(err.to_string().contains("nothing was done"));
    assert!(w.port.created.lock().unwrap().is_empty());
    assert!(w.port.exports.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_touched() {
    let w = World::new(FakePort::default());
    let err = w
        .run()
        .handle(&json!({"resources": ["ghost"]}), &invocation(at(6, 1)))
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::NonRetryable);
    assert!(
        err.to_string()
            .starts_with("bad input: the plan \"lifeboat-local\" protects no resource \"ghost\"")
    );
    assert!(w.port.created.lock().unwrap().is_empty());
    assert!(w.state.entries("lifeboat-local").is_empty());
}

#[tokio::test]
async fn a_snapshot_event_copies_that_snapshot_only_and_ignores_foreign_ones() {
    let w = World::new(FakePort::default());
    w.run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap();
    for s in w.port.primary.lock().unwrap().iter_mut() {
        s.status = BackupStatus::Available;
    }
    let event = |id: &str, snapshot: &str| {
        json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0", "id": id, "detail-type": "RDS DB Snapshot Event", "source": "aws.rds",
               "time": "2026-11-25T06:05:00Z",
               "detail": {"SourceIdentifier": snapshot, "EventID": "RDS-EVENT-0042"}})
    };
    let s = w
        .run()
        .handle(
            &event("rds-1", "lifeboat-lifeboat-local-orders-db-20261125t0600z"),
            &invocation(at(6, 5)),
        )
        .await
        .unwrap();
    assert_eq!(
        *w.port.copied.lock().unwrap(),
        ["lifeboat-lifeboat-local-orders-db-20261125t0600z"]
    );
    assert_eq!(s.copies_started.len(), 1);
    let s = w
        .run()
        .handle(&event("rds-2", "someone-elses"), &invocation(at(6, 6)))
        .await
        .unwrap();
    assert!(
        s.summary.contains("is not a snapshot of plan"),
        "{}",
        s.summary
    );
    assert_eq!(w.port.copied.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_stopped_instance_is_skipped_with_its_reason_while_the_others_succeed() {
    let w = World::new(FakePort {
        conditions: BTreeMap::from([(
            "orders-db".to_string(),
            SourceCondition::NotReady {
                status: "stopped".into(),
            },
        )]),
        ..FakePort::default()
    });
    let s = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap();
    assert_eq!(s.created.len(), 2);
    assert_eq!(s.skipped[0].resource, "orders-db");
    assert!(
        s.summary
            .contains("[orders-db: rds_instance orders-db is stopped, not available")
    );
}

#[tokio::test]
async fn a_snapshot_whose_intent_the_table_refuses_is_not_asked_for_and_the_retry_takes_it() {
    let w = World::new(FakePort::default());
    // The claim is not a commit; the first commit is the creations' intents.
    w.state.throttle_commits(0, 1);
    let err = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::Retryable);
    assert!(
        err.to_string().contains("was not started"),
        "the run says why: {err}"
    );
    assert!(
        w.port.created.lock().unwrap().is_empty(),
        "no snapshot without its entry"
    );
    // Nor is the table's export, as when its backup fails.
    assert!(w.port.exports.lock().unwrap().is_empty());
    assert!(
        w.state
            .entries("lifeboat-local")
            .iter()
            .all(|e| e.action != "snapshot.create"),
        "no entry for what was not asked for"
    );
    // Lambda's retry of the event creates them, each after its intent.
    let summary = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 3)))
        .await
        .unwrap();
    assert_eq!(summary.created.len(), 3);
    let timeline = w.state.entries("lifeboat-local");
    for name in w.port.created.lock().unwrap().iter() {
        let intent = timeline.iter().position(|e| {
            e.action == "snapshot.create"
                && e.outcome == Outcome::Intended
                && e.data["snapshot"] == name.as_str()
        });
        let outcome = timeline.iter().position(|e| {
            e.action == "snapshot.create"
                && e.outcome == Outcome::Started
                && e.detail.starts_with(name.as_str())
        });
        assert!(
            intent.is_some() && intent < outcome,
            "{name}: {timeline:#?}"
        );
    }
    assert_eq!(w.port.exports.lock().unwrap().len(), 1, "started once");
}

#[tokio::test]
async fn a_copy_or_export_whose_intent_the_table_refuses_is_not_started() {
    let w = World::new(FakePort::default());
    w.run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap();
    for s in w.port.primary.lock().unwrap().iter_mut() {
        s.status = BackupStatus::Available;
    }
    w.state.throttle_commits_recording("snapshot.copy");
    let event = json!({"account": "123456789012", "region": "us-east-1", "resources": [], "version": "0", "id": "rds-1", "detail-type": "RDS DB Snapshot Event", "source": "aws.rds",
           "time": "2026-11-25T06:05:00Z",
           "detail": {"SourceIdentifier": "lifeboat-lifeboat-local-orders-db-20261125t0600z", "EventID": "RDS-EVENT-0042"}});
    let err = w
        .run()
        .handle(&event, &invocation(at(6, 5)))
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::Retryable);
    let SnapshotError::Incomplete(summary) = &err else {
        panic!("{err}")
    };
    assert!(summary.copies_started.is_empty());
    assert!(
        summary.failed[0]
            .subject
            .starts_with("copy of lifeboat-lifeboat-local-orders-db-20261125t0600z"),
        "{err}"
    );
    assert!(
        w.port.copied.lock().unwrap().is_empty(),
        "no copy without its entry"
    );

    // Exports: a new window's export is not started while its intent is refused.
    let w = World::new(FakePort::default());
    w.state.throttle_commits_recording("snapshot.export");
    let err = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("[export of sessions:"), "{err}");
    assert!(w.port.exports.lock().unwrap().is_empty());
    assert_eq!(w.port.created.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn outcomes_that_cannot_be_written_fail_the_run_and_the_report_says_so() {
    let w = World::new(FakePort::default());
    // Commits: the creations' intents, the export's, the export book; then the outcomes
    // and the run's entry, refused.
    w.state.throttle_commits(3, 2);
    let err = w
        .run()
        .handle(&tick("evt-1", at(6, 0)), &invocation(at(6, 1)))
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::Retryable);
    let SnapshotError::Incomplete(summary) = &err else {
        panic!("{err}")
    };
    assert_eq!(summary.created.len(), 3);
    assert!(summary.failed.iter().any(|f| f.subject == "audit entries"));
    assert!(summary.failed.iter().any(|f| f.subject == "audit entry"));
    let reports = w.reports.stored.lock().unwrap();
    let report = reports.values().next().unwrap();
    let subjects: Vec<&str> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert!(
        subjects.contains(&"audit entries") && subjects.contains(&"audit entry"),
        "{subjects:?}"
    );
    // The intents went in before the calls.
    assert_eq!(
        w.state
            .entries("lifeboat-local")
            .iter()
            .filter(|e| e.action == "snapshot.create" && e.outcome == Outcome::Intended)
            .count(),
        3
    );
}
