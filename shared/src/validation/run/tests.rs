//! The restore-validator's executor against a simulated RDS (in memory): whole runs,
//! duplicate and concurrent ticks, crashes between steps, clean-up after failures, and
//! what is recorded. (The AWS adapter and the SQL probe are tested against the emulator
//! and real databases in `tests/integration`.)

use super::*;
use crate::dr::run::ManualClock;
use crate::notify::RecordingNotifier;
use crate::plan::parse_plan;
use crate::report::MemoryReports;
use crate::state::memory::MemoryStateStore;
use crate::validation::{DbView, Endpoint, Phase, TempFacts};
use chrono::TimeZone;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How long the simulated restore takes.
const RESTORE_MINUTES: i64 = 20;

#[derive(Default)]
struct Rds {
    /// id → (status, when it becomes available).
    instances: BTreeMap<String, (String, DateTime<Utc>)>,
    restores: u32,
    deletes: u32,
    tagged: Vec<String>,
    /// Fail the next `restore` after it went through (a crash losing the answer).
    lose_next_restore_answer: bool,
    /// What a crash left behind, for the sweep.
    leftovers: Vec<Leftover>,
    /// The leftovers deleted, in order.
    swept: Vec<Leftover>,
}

struct FakeAws {
    rds: Mutex<Rds>,
    clock: ManualClock,
    results: Vec<CheckResult>,
    /// At most this many checks fit in one action (the rest run in the next).
    checks_per_action: Mutex<usize>,
    /// Each call of `run_checks`: how many checks it had already, and how many it ran.
    check_calls: Mutex<Vec<(usize, usize)>>,
    plan: Plan,
}

impl FakeAws {
    fn new(results: Vec<CheckResult>) -> Self {
        FakeAws {
            rds: Mutex::new(Rds::default()),
            clock: ManualClock(Mutex::new(
                Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
            )),
            results,
            checks_per_action: Mutex::new(usize::MAX),
            check_calls: Mutex::new(Vec::new()),
            plan: parse_plan(include_str!("../../../../infra/plans/local.json")).unwrap(),
        }
    }

    fn advance(&self, minutes: i64) {
        *self.clock.0.lock().unwrap() += Duration::minutes(minutes);
    }
}

fn passing() -> Vec<CheckResult> {
    vec![CheckResult {
        name: "table orders".into(),
        kind: CheckKind::TableRows,
        passed: true,
        observed: Some("1".into()),
        expected: Some(">= 1".into()),
        detail: "table orders holds at least 1 rows".into(),
        millis: 2,
    }]
}

#[async_trait]
impl ValidationPort for FakeAws {
    async fn list_snapshots(&self, region: &str) -> Result<Vec<BackupRecord>, AwsError> {
        Ok(vec![BackupRecord {
            id: "lifeboat-lifeboat-local-orders-db-20261125t0900z".into(),
            arn: Some("arn:aws:rds:us-west-2:123456789012:snapshot:s".into()),
            kind: crate::backup::BackupKind::DbSnapshot,
            location: region.into(),
            source: "orders-db".into(),
            created_at: Some(self.clock.now() - Duration::hours(1)),
            status: crate::backup::BackupStatus::Available,
            automated: false,
            copy_of: None,
            tags: BTreeMap::from([
                (crate::plan::PLAN_TAG.to_string(), self.plan.name.clone()),
                (
                    crate::plan::RESOURCE_TAG.to_string(),
                    "orders-db".to_string(),
                ),
            ]),
        }])
    }

    async fn read_temp(&self, run: &Run) -> TempFacts {
        let now = self.clock.now();
        let rds = self.rds.lock().unwrap();
        TempFacts {
            instance: rds
                .instances
                .get(&run.instance)
                .map(|(status, ready)| DbView {
                    status: if status == "creating" && now >= *ready {
                        "available".into()
                    } else {
                        status.clone()
                    },
                    endpoint: Some(Endpoint {
                        host: format!("{}.example", run.instance),
                        port: 5432,
                    }),
                }),
            cluster: None,
            unreadable: None,
        }
    }

    async fn restore(&self, _plan: &Plan, run: &Run) -> Result<(), AwsError> {
        let mut rds = self.rds.lock().unwrap();
        rds.restores += 1;
        rds.instances.insert(
            run.instance.clone(),
            (
                "creating".into(),
                self.clock.now() + Duration::minutes(RESTORE_MINUTES),
            ),
        );
        if std::mem::take(&mut rds.lose_next_restore_answer) {
            return Err(AwsError::bad_request(
                "rds",
                "RestoreDBInstanceFromDBSnapshot",
                &run.instance,
                "connection reset",
            ));
        }
        Ok(())
    }

    async fn create_instance(&self, _plan: &Plan, _run: &Run) -> Result<(), AwsError> {
        Ok(())
    }

    async fn delete_instance(&self, run: &Run) -> Result<(), AwsError> {
        let mut rds = self.rds.lock().unwrap();
        rds.deletes += 1;
        rds.instances.remove(&run.instance);
        Ok(())
    }

    async fn delete_cluster(&self, _run: &Run) -> Result<(), AwsError> {
        Ok(())
    }

    async fn run_checks(
        &self,
        _plan: &Plan,
        _r: &ProtectedResource,
        run: &Run,
        from: CheckProgress,
        _window: std::time::Duration,
    ) -> CheckProgress {
        assert!(
            self.rds
                .lock()
                .unwrap()
                .instances
                .contains_key(&run.instance),
            "checks run against the restored instance"
        );
        let mut progress = from.resumed_for(self.results.len());
        let before = progress.taken.len();
        let fit = *self.checks_per_action.lock().unwrap();
        for r in self.results.iter().skip(before).take(fit) {
            progress.take(Some(r.clone()));
        }
        self.check_calls
            .lock()
            .unwrap()
            .push((before, progress.taken.len() - before));
        progress
    }

    async fn tag_validated(&self, run: &Run, _at: DateTime<Utc>) -> Result<(), AwsError> {
        self.rds
            .lock()
            .unwrap()
            .tagged
            .push(run.snapshot.id.clone());
        Ok(())
    }

    async fn leftovers(
        &self,
        _plan: &Plan,
        _before: DateTime<Utc>,
        keep: &[String],
    ) -> Result<Vec<Leftover>, AwsError> {
        Ok(self
            .rds
            .lock()
            .unwrap()
            .leftovers
            .iter()
            .filter(|l| !keep.iter().any(|k| k == l.id()))
            .cloned()
            .collect())
    }

    async fn delete_leftover(&self, leftover: &Leftover) -> Result<(), AwsError> {
        let mut rds = self.rds.lock().unwrap();
        rds.leftovers.retain(|l| l != leftover);
        rds.swept.push(leftover.clone());
        Ok(())
    }
}

struct Edges {
    state: MemoryStateStore,
    notifier: RecordingNotifier,
    reports: MemoryReports,
}

fn edges() -> Edges {
    Edges {
        state: MemoryStateStore::default(),
        notifier: RecordingNotifier::default(),
        reports: MemoryReports::default(),
    }
}

fn runner<'a>(aws: &'a FakeAws, e: &'a Edges) -> ValidationRunner<'a> {
    ValidationRunner {
        plan: &aws.plan,
        port: aws,
        state: &e.state,
        notifier: &e.notifier,
        reports: &e.reports,
        clock: &aws.clock,
    }
}

fn invocation(aws: &FakeAws, id: &str) -> Invocation {
    let now = aws.clock.now();
    Invocation {
        request_id: id.into(),
        now,
        deadline: now + Duration::minutes(15),
    }
}

fn schedule() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../../events/validation-schedule.json")).unwrap()
}

fn tick() -> serde_json::Value {
    json!({"action": "tick"})
}

fn orders(reply: &ValidationReply) -> &ResourceReply {
    reply
        .resources
        .iter()
        .find(|r| r.resource == "orders-db")
        .unwrap()
}

#[tokio::test]
async fn a_run_restores_waits_checks_cleans_up_and_records() {
    let aws = FakeAws::new(passing());
    let e = edges();
    let v = runner(&aws, &e);
    let first = v
        .handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap();
    let run = orders(&first).run.clone().unwrap();
    assert_eq!(run.phase, Phase::AwaitRestore, "{:?}", orders(&first).steps);
    aws.advance(10);
    let waiting = v.handle(&tick(), &invocation(&aws, "r2")).await.unwrap();
    assert_eq!(
        orders(&waiting).run.as_ref().unwrap().phase,
        Phase::AwaitRestore
    );
    aws.advance(11);
    let done = v.handle(&tick(), &invocation(&aws, "r3")).await.unwrap();
    let finished = &orders(&done).finished[0];
    assert!(finished.passed());
    assert_eq!(finished.restore_seconds(), Some(21 * 60));
    let last = orders(&done).last.clone().unwrap();
    assert!(last.passed && orders(&done).run.is_none());
    let rds = aws.rds.lock().unwrap();
    assert_eq!((rds.restores, rds.deletes), (1, 1));
    assert!(
        rds.instances.is_empty(),
        "the temporary instance is deleted"
    );
    assert_eq!(
        rds.tagged,
        ["lifeboat-lifeboat-local-orders-db-20261125t0900z"]
    );
    let reports = e.reports.stored.lock().unwrap();
    let report = reports.values().next().unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["restore_seconds"], 21 * 60);
    assert!(
        e.notifier.sent.lock().unwrap().is_empty(),
        "success is not paged"
    );
    let actions: Vec<String> = e
        .state
        .entries("lifeboat-local")
        .iter()
        .map(|a| a.action.clone())
        .collect();
    for a in [
        "validation.start",
        "validation.restore",
        "validation.checks",
        "validation.delete-instance",
        "validation.record",
    ] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
}

fn five_passing() -> Vec<CheckResult> {
    (0..5)
        .map(|i| CheckResult {
            name: format!("check {i}"),
            ..passing()[0].clone()
        })
        .collect()
}

#[tokio::test]
async fn checks_that_do_not_fit_in_one_action_go_on_in_the_next_until_all_ran() {
    let aws = FakeAws::new(five_passing());
    *aws.checks_per_action.lock().unwrap() = 2;
    let e = edges();
    let v = runner(&aws, &e);
    v.handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap();
    aws.advance(RESTORE_MINUTES + 1);
    let done = v.handle(&tick(), &invocation(&aws, "r2")).await.unwrap();
    let finished = &orders(&done).finished[0];
    assert!(finished.passed(), "{:?}", orders(&done).steps);
    let names: Vec<&str> = finished.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["check 0", "check 1", "check 2", "check 3", "check 4"]
    );
    // Each action went on from where the last stopped: none ran twice, none was lost.
    assert_eq!(*aws.check_calls.lock().unwrap(), [(0, 2), (2, 2), (4, 1)]);
    assert_eq!(aws.rds.lock().unwrap().deletes, 1);
}

#[tokio::test]
async fn checks_cut_short_by_the_invocation_go_on_in_the_next_invocation() {
    let aws = FakeAws::new(five_passing());
    *aws.checks_per_action.lock().unwrap() = 0;
    let e = edges();
    let v = runner(&aws, &e);
    v.handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap();
    aws.advance(RESTORE_MINUTES + 1);
    // No check fits in this invocation's time: the run waits in Check, nothing lost.
    let stuck = v.handle(&tick(), &invocation(&aws, "r2")).await.unwrap();
    let run = orders(&stuck).run.clone().unwrap();
    assert_eq!(run.phase, Phase::Check, "{:?}", orders(&stuck).steps);
    assert_eq!(aws.rds.lock().unwrap().deletes, 0);
    *aws.checks_per_action.lock().unwrap() = 3;
    aws.advance(1);
    let done = v.handle(&tick(), &invocation(&aws, "r3")).await.unwrap();
    let finished = &orders(&done).finished[0];
    assert!(finished.passed());
    assert_eq!(finished.results.len(), 5);
}

#[tokio::test]
async fn a_duplicate_schedule_or_concurrent_ticks_restore_once() {
    let aws = FakeAws::new(passing());
    let e = edges();
    let v = runner(&aws, &e);
    v.handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap();
    // The same event delivered again, at once and a minute later.
    v.handle(&schedule(), &invocation(&aws, "r1-again"))
        .await
        .unwrap();
    aws.advance(1);
    let (sched, t) = (schedule(), tick());
    let (i2, i3) = (invocation(&aws, "r2"), invocation(&aws, "r3"));
    let (a, b) = tokio::join!(v.handle(&sched, &i2), v.handle(&t, &i3));
    a.unwrap();
    b.unwrap();
    assert_eq!(aws.rds.lock().unwrap().restores, 1);
}

#[tokio::test]
async fn a_crash_after_the_restore_call_resumes_without_restoring_again() {
    let aws = FakeAws::new(passing());
    aws.rds.lock().unwrap().lose_next_restore_answer = true;
    let e = edges();
    let v = runner(&aws, &e);
    let first = v
        .handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap();
    let last = orders(&first).last.clone().unwrap();
    assert!(last.failure.unwrap().contains("connection reset"));
    assert!(
        aws.rds.lock().unwrap().instances.is_empty(),
        "whatever a refused restore left is cleaned up"
    );
    // Simulate instead a crash: the lease is held by a dead invocation, the document says
    // Restore, and the instance exists.
    let aws = FakeAws::new(passing());
    let e = edges();
    let v = runner(&aws, &e);
    let key = MachineKey::new("lifeboat-local", "validation/orders-db");
    v.handle(&json!({"resource": "orders-db"}), &invocation(&aws, "r1"))
        .await
        .unwrap();
    let stored = state::load::<ValidationDoc>(&e.state, &key)
        .await
        .unwrap()
        .unwrap();
    let mut doc = stored.value.clone();
    let run = doc.run.as_mut().unwrap();
    run.phase = Phase::Restore;
    run.restore_requested_at = None;
    doc.lease = Some(Lease {
        holder: "dead".into(),
        until: aws.clock.now() + Duration::minutes(1),
    });
    state::save(&e.state, &key, &doc, Some(stored.version), aws.clock.now())
        .await
        .unwrap();
    let blocked = v.handle(&tick(), &invocation(&aws, "r2")).await.unwrap();
    assert!(orders(&blocked).steps[0].contains("another invocation (dead)"));
    aws.advance(2);
    let resumed = v.handle(&tick(), &invocation(&aws, "r3")).await.unwrap();
    assert_eq!(
        orders(&resumed).run.as_ref().unwrap().phase,
        Phase::AwaitRestore
    );
    assert_eq!(
        aws.rds.lock().unwrap().restores,
        1,
        "the restore is not issued twice"
    );
}

#[tokio::test]
async fn a_failed_check_still_deletes_the_instance_and_notifies_naming_it() {
    let aws = FakeAws::new(vec![CheckResult::error(
        "connect",
        CheckKind::Connect,
        "cannot connect to h:5432 (database orders, user app): connection refused",
    )]);
    let e = edges();
    let v = runner(&aws, &e);
    v.handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap();
    aws.advance(RESTORE_MINUTES);
    let done = v.handle(&tick(), &invocation(&aws, "r2")).await.unwrap();
    let last = orders(&done).last.clone().unwrap();
    assert!(!last.passed);
    assert!(last.failure.unwrap().contains("connection refused"));
    let rds = aws.rds.lock().unwrap();
    assert!(rds.instances.is_empty() && rds.tagged.is_empty());
    let sent = e.notifier.sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].subject.contains("orders-db failed: connect"),
        "{}",
        sent[0].subject
    );
    assert!(sent[0].body.contains("connection refused"));
}

#[tokio::test]
async fn a_run_past_its_deadline_is_torn_down() {
    let aws = FakeAws::new(passing());
    let e = edges();
    let v = runner(&aws, &e);
    v.handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap();
    // Stuck: the instance never becomes available.
    aws.rds
        .lock()
        .unwrap()
        .instances
        .values_mut()
        .for_each(|(_, ready)| *ready += Duration::days(1));
    aws.advance(61);
    let done = v.handle(&tick(), &invocation(&aws, "r2")).await.unwrap();
    let last = orders(&done).last.clone().unwrap();
    assert!(last.failure.unwrap().contains("exceeded its deadline"));
    assert!(aws.rds.lock().unwrap().instances.is_empty());
}

#[tokio::test]
async fn operators_get_clear_refusals() {
    let aws = FakeAws::new(passing());
    let e = edges();
    let v = runner(&aws, &e);
    let err = v
        .handle(&json!({"resource": "nope"}), &invocation(&aws, "r1"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the plan has no resource \"nope\"; name one of: orders-db"),
        "{err}"
    );
    assert_eq!(err.retry(), Retry::NonRetryable);
    let err = v
        .handle(&json!({"resource": "billing-db"}), &invocation(&aws, "r1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no `validation` checks"), "{err}");
    v.handle(&json!({"resource": "orders-db"}), &invocation(&aws, "r2"))
        .await
        .unwrap();
    let err = v
        .handle(&json!({"resource": "orders-db"}), &invocation(&aws, "r3"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already in progress"), "{err}");
}

#[tokio::test]
async fn a_restore_whose_intent_the_table_refuses_is_not_started() {
    let aws = FakeAws::new(passing());
    let e = edges();
    e.state.throttle_commits_recording("validation.restore");
    let err = runner(&aws, &e)
        .handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationError::State(_)), "{err}");
    assert_eq!(
        aws.rds.lock().unwrap().restores,
        0,
        "no restore without its entry"
    );
    assert!(
        e.state
            .entries(&aws.plan.name)
            .iter()
            .all(|entry| entry.action != "validation.restore")
    );
}

#[tokio::test]
async fn the_sweep_deletes_a_leftover_only_after_its_intent_is_written() {
    let aws = FakeAws::new(passing());
    let e = edges();
    let leftovers = vec![
        Leftover::Instance("lbval-orders-db-2611240100".into()),
        Leftover::Cluster("lbval-billing-db-2611240100".into()),
    ];
    aws.rds.lock().unwrap().leftovers = leftovers.clone();
    // The table refuses the sweep's intents: nothing is deleted, and the invocation says
    // what it left.
    e.state.throttle_commits_recording("validation.sweep");
    let err = runner(&aws, &e)
        .handle(&schedule(), &invocation(&aws, "r1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::SweepHeldBack { count: 2, .. }),
        "{err}"
    );
    assert_eq!(err.retry(), Retry::Retryable);
    assert!(
        aws.rds.lock().unwrap().swept.is_empty(),
        "no delete without its entry"
    );
    assert!(
        e.state
            .entries(&aws.plan.name)
            .iter()
            .all(|entry| entry.action != "validation.sweep")
    );

    // The next schedule, with the table answering: each deleted after its intent.
    let e = edges();
    aws.advance(24 * 60);
    let reply = runner(&aws, &e)
        .handle(&schedule(), &invocation(&aws, "r2"))
        .await
        .unwrap();
    assert_eq!(
        reply.swept,
        ["lbval-orders-db-2611240100", "lbval-billing-db-2611240100"]
    );
    assert_eq!(aws.rds.lock().unwrap().swept, leftovers);
    let sweep: Vec<(Outcome, serde_json::Value)> = e
        .state
        .entries(&aws.plan.name)
        .into_iter()
        .filter(|entry| entry.action == "validation.sweep")
        .map(|entry| (entry.outcome, entry.data["deleted"].clone()))
        .collect();
    assert_eq!(
        sweep,
        [
            (
                Outcome::Intended,
                json!({"instance": "lbval-orders-db-2611240100"})
            ),
            (
                Outcome::Intended,
                json!({"cluster": "lbval-billing-db-2611240100"})
            ),
            (
                Outcome::Succeeded,
                json!({"instance": "lbval-orders-db-2611240100"})
            ),
            (
                Outcome::Succeeded,
                json!({"cluster": "lbval-billing-db-2611240100"})
            ),
        ]
    );
}

#[tokio::test]
async fn an_operators_refused_request_is_on_the_timeline_even_when_the_table_throttles() {
    let aws = FakeAws::new(passing());
    let e = edges();
    let v = runner(&aws, &e);
    v.handle(&json!({"resource": "orders-db"}), &invocation(&aws, "r1"))
        .await
        .unwrap();
    let err = v
        .handle(&json!({"resource": "orders-db"}), &invocation(&aws, "r2"))
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationError::Refused(_)), "{err}");
    let refused: Vec<AuditEntry> = e
        .state
        .entries(&aws.plan.name)
        .into_iter()
        .filter(|entry| entry.outcome == Outcome::Refused)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0].action, "validation.start");
    assert_eq!(refused[0].trigger, "operator");
    assert!(refused[0].detail.contains("already in progress"));
    // A table refusing every write does not turn the refusal into another failure.
    e.state.throttle_commits(0, 100);
    let err = v
        .handle(&json!({"resource": "orders-db"}), &invocation(&aws, "r3"))
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationError::Refused(_)), "{err}");
}
