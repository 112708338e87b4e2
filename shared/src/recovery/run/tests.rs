//! The recovery executor against a simulated AWS (in memory): commands and ticks
//! through `handle`, persistence in the DR document, the shared lock, failed calls, a
//! crash holding the lease, notifications and the cutover report. (The AWS adapter is
//! tested against the emulator in `tests/integration/recovery.rs`.)

use super::*;
use crate::dr::DrState;
use crate::dr::run::ManualClock;
use crate::notify::RecordingNotifier;
use crate::plan::parse_plan;
use crate::recovery::{Presence, recovery_name};
use crate::report::MemoryReports;
use crate::state::memory::MemoryStateStore;
use chrono::TimeZone;
use std::sync::Mutex;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap()
}

/// One restored resource as the simulation holds it.
#[derive(Debug, Clone)]
struct Restored {
    /// Available from this instant.
    ready_at: DateTime<Utc>,
    deleted: bool,
}

#[derive(Default)]
struct World {
    restored: BTreeMap<String, Restored>,
    restores: u32,
    fenced: Vec<String>,
    record: Option<String>,
    /// Calls of these kinds fail (unreachable) this many more times.
    failing: BTreeMap<&'static str, u32>,
    /// A restore AWS refuses outright.
    refuse_restore: bool,
    /// What the checks find failing.
    check_failures: Vec<String>,
    /// When set: the checks are this many, and at most `.1` fit in one action.
    sliced_checks: Option<(usize, usize)>,
    /// Each checks action: how many checks it had already.
    checks_from: Vec<usize>,
}

struct SimulatedAws {
    world: Mutex<World>,
    clock: ManualClock,
}

fn unreachable(op: &'static str) -> AwsError {
    AwsError {
        service: "rds",
        operation: op,
        resource: "sim".into(),
        failure: AwsFailure::Unreachable,
        code: None,
        message: "simulated outage".into(),
    }
}

impl SimulatedAws {
    fn fail(&self, kind: &'static str) -> Option<AwsError> {
        let mut w = self.world.lock().unwrap();
        let left = w.failing.get_mut(kind)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(unreachable(kind))
    }
}

#[async_trait]
impl RecoveryPort for SimulatedAws {
    async fn window(
        &self,
        _plan: &Plan,
        _resource: &ProtectedResource,
    ) -> Result<Option<RestorableWindow>, AwsError> {
        if let Some(e) = self.fail("window") {
            return Err(e);
        }
        let now = self.clock.now();
        Ok(Some(RestorableWindow {
            earliest: now - Duration::days(7),
            latest: now - Duration::minutes(5),
        }))
    }

    async fn observe(&self, _plan: &Plan, r: &Recovery) -> Result<RecoveredFacts, AwsError> {
        if let Some(e) = self.fail("observe") {
            return Err(e);
        }
        let now = self.clock.now();
        let w = self.world.lock().unwrap();
        let resource = match w.restored.get(&r.id) {
            None => Presence::Missing,
            Some(x) if x.deleted => Presence::Missing,
            Some(x) if x.ready_at > now => Presence::Creating,
            Some(_) => Presence::Available,
        };
        let fenced = r
            .cutover
            .as_ref()
            .is_some_and(|c| w.fenced.contains(&c.fenced));
        Ok(RecoveredFacts {
            resource,
            instance: Presence::Missing,
            checks: None,
            checks_so_far: None,
            writer_fenced: fenced,
            record_target: w.record.clone(),
        })
    }

    async fn perform(
        &self,
        _plan: &Plan,
        action: &RecoveryAction,
        _window: std::time::Duration,
    ) -> Result<Performed, AwsError> {
        let kind = match action {
            RecoveryAction::Restore { .. } => "restore",
            RecoveryAction::CreateInstance { .. } => "instance",
            RecoveryAction::RunChecks { .. } => "checks",
            RecoveryAction::Fence { .. } => "fence",
            RecoveryAction::PointRecord { .. } => "record",
            RecoveryAction::Delete { .. } => "delete",
        };
        if let Some(e) = self.fail(kind) {
            return Err(e);
        }
        let now = self.clock.now();
        let mut w = self.world.lock().unwrap();
        match action {
            RecoveryAction::Restore { target, .. } => {
                if w.refuse_restore {
                    return Err(AwsError {
                        failure: AwsFailure::Refused,
                        code: Some("InvalidParameterCombination".into()),
                        ..unreachable("RestoreDBInstanceToPointInTime")
                    });
                }
                w.restores += 1;
                w.restored.insert(
                    target.clone(),
                    Restored {
                        ready_at: now + Duration::minutes(20),
                        deleted: false,
                    },
                );
                Ok(Performed::Done)
            }
            RecoveryAction::RunChecks { progress, .. } => {
                let Some((planned, fit)) = w.sliced_checks else {
                    return Ok(Performed::Checks(CheckReport {
                        passed: vec!["orders has 250 rows".into()],
                        failed: w.check_failures.clone(),
                    }));
                };
                w.checks_from.push(progress.taken.len());
                let mut progress = progress.clone().resumed_for(planned);
                for i in progress.taken.len()..planned.min(progress.taken.len() + fit) {
                    progress.take(Some(crate::validation::CheckResult {
                        name: format!("check {i}"),
                        kind: crate::validation::CheckKind::Assertion,
                        passed: true,
                        observed: None,
                        expected: None,
                        detail: "ok".into(),
                        millis: 0,
                    }));
                }
                Ok(if progress.finished {
                    Performed::Checks(CheckReport {
                        passed: progress.results().into_iter().map(|r| r.name).collect(),
                        failed: vec![],
                    })
                } else {
                    Performed::ChecksSoFar(progress)
                })
            }
            RecoveryAction::Fence { writer, .. } => {
                w.fenced.push(writer.clone());
                Ok(Performed::Done)
            }
            RecoveryAction::PointRecord { target, .. } => {
                w.record = Some(target.clone());
                Ok(Performed::Done)
            }
            RecoveryAction::Delete { target, .. } => {
                if let Some(x) = w.restored.get_mut(target) {
                    x.deleted = true;
                }
                Ok(Performed::Done)
            }
            RecoveryAction::CreateInstance { .. } => Ok(Performed::Done),
        }
    }
}

struct Fixture {
    plan: Plan,
    aws: SimulatedAws,
    state: MemoryStateStore,
    notifier: RecordingNotifier,
    reports: MemoryReports,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            plan: parse_plan(include_str!("../../../../infra/plans/local.json")).unwrap(),
            aws: SimulatedAws {
                world: Mutex::new(World::default()),
                clock: ManualClock(Mutex::new(t0())),
            },
            state: MemoryStateStore::default(),
            notifier: RecordingNotifier::default(),
            reports: MemoryReports::default(),
        }
    }
    fn run(&self) -> RecoveryRun<'_> {
        RecoveryRun {
            plan: &self.plan,
            port: &self.aws,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &self.aws.clock,
        }
    }
    fn invocation(&self, id: &str) -> Invocation {
        let now = self.aws.clock.now();
        Invocation {
            request_id: id.into(),
            now,
            deadline: now + Duration::minutes(15),
        }
    }
    async fn send(
        &self,
        payload: serde_json::Value,
        id: &str,
    ) -> Result<RecoveryReply, RecoveryRunError> {
        let input = crate::recovery::event::parse_input(&payload).unwrap();
        self.run().handle(input, &self.invocation(id)).await
    }
    async fn tick(&self, id: &str) -> RecoveryReply {
        self.run()
            .handle(RecoveryInput::Tick, &self.invocation(id))
            .await
            .unwrap()
    }
    async fn doc(&self) -> DrDocument {
        state::load::<DrDocument>(&self.state, &dr_key(&self.plan))
            .await
            .unwrap()
            .map(|v| v.value)
            .unwrap_or_default()
    }
    fn minutes(&self, n: i64) {
        *self.aws.clock.0.lock().unwrap() += Duration::minutes(n);
    }
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.aws.world.lock().unwrap()
    }
    /// A recovery of orders-db to an hour ago, restored and checked.
    async fn ready(&self) -> String {
        let time = t0() - Duration::hours(1);
        self.send(
            serde_json::json!({"action": "recover", "resource": "orders-db",
                "restore_time": time.to_rfc3339(), "reason": "DELETE without WHERE"}),
            "recover",
        )
        .await
        .unwrap();
        self.minutes(25);
        self.tick("tick-ready").await;
        recovery_name("orders-db", time)
    }
}

#[tokio::test]
async fn recover_restores_checks_and_cuts_over_with_the_lost_window_reported() {
    let f = Fixture::new();
    let time = t0() - Duration::hours(1);
    let reply = f
        .send(
            serde_json::json!({"action": "recover", "resource": "orders-db",
                "restore_time": time.to_rfc3339(), "reason": "DELETE without WHERE",
                "assertions": [{"name": "orders back", "sql": "SELECT count(*) FROM orders",
                    "expect": "250"}]}),
            "recover",
        )
        .await
        .unwrap();
    let id = recovery_name("orders-db", time);
    assert_eq!(reply.recoveries[0].id, id);
    assert_eq!(reply.recoveries[0].phase, Phase::Requested);
    assert_eq!(reply.recoveries[0].assertions.len(), 1);
    assert_eq!(f.world().restores, 1);

    // Restoring: ticks look, nothing is issued twice.
    f.minutes(5);
    let reply = f.tick("tick-1").await;
    assert_eq!(reply.recoveries[0].phase, Phase::Restoring);
    assert_eq!(f.world().restores, 1);

    // Restored: the checks run in the same invocation and the recovery is Ready.
    f.minutes(20);
    let reply = f.tick("tick-2").await;
    assert_eq!(
        reply.recoveries[0].phase,
        Phase::Ready {
            checks_passed: true
        }
    );
    assert!(f.doc().await.lease.is_none());

    let reply = f.send(cutover(&id), "cut").await.unwrap();
    let r = &reply.recoveries[0];
    assert_eq!(r.phase, Phase::CutOver, "{:?}", reply.steps);
    assert_eq!(f.world().fenced, vec!["orders-db".to_string()]);
    assert_eq!(f.world().record.as_deref(), Some(id.as_str()));
    // Lost: from the restore time to the record's move, which came after the cutover
    // began (25 minutes after the damage) by the fence's and the record's short waits.
    let lost = r.lost_window_seconds(f.aws.clock.now());
    assert!(
        (3600 + 25 * 60..3600 + 25 * 60 + 30).contains(&lost),
        "{lost}"
    );
    assert_eq!(reply.reports.len(), 1);
    let stored = f.reports.stored.lock().unwrap();
    let report = stored.values().next().unwrap();
    assert_eq!(report["lost_window_seconds"], lost);
    drop(stored);
    let sent = f.notifier.sent.lock().unwrap();
    assert!(
        sent.iter()
            .any(|n| n.subject.contains("is the writer of orders-db"))
    );
    drop(sent);
    let audit = f.state.entries(&f.plan.name);
    for action in [
        "recovery.restore",
        "recovery.checks",
        "recovery.fence",
        "recovery.point-record",
    ] {
        assert!(audit.iter().any(|e| e.action == action), "{action} audited");
    }
}

#[tokio::test]
async fn checks_that_do_not_fit_in_one_action_go_on_from_where_they_stopped() {
    let f = Fixture::new();
    f.world().sliced_checks = Some((5, 2));
    let id = f.ready().await;
    let doc = f.doc().await;
    let r = doc.recoveries.get(&id).unwrap();
    assert_eq!(
        r.phase,
        Phase::Ready {
            checks_passed: true
        }
    );
    assert_eq!(r.checks.as_ref().unwrap().passed.len(), 5);
    assert!(r.check_progress.is_none());
    assert_eq!(
        f.world().checks_from,
        [0, 2, 4],
        "each action went on from the last"
    );
}

#[tokio::test]
async fn checks_with_no_time_left_wait_for_the_next_tick_and_lose_nothing() {
    let f = Fixture::new();
    f.world().sliced_checks = Some((3, 0));
    let id = f.ready().await;
    let doc = f.doc().await;
    let r = doc.recoveries.get(&id).unwrap();
    assert_eq!(r.phase, Phase::Validating);
    // One look, then the invocation stops asking: nothing ran, nothing to retry here.
    assert_eq!(f.world().checks_from, [0]);
    f.world().sliced_checks = Some((3, 2));
    f.minutes(1);
    f.tick("tick-more").await;
    f.minutes(1);
    f.tick("tick-rest").await;
    let doc = f.doc().await;
    let r = doc.recoveries.get(&id).unwrap();
    assert_eq!(
        r.phase,
        Phase::Ready {
            checks_passed: true
        }
    );
    assert_eq!(f.world().checks_from, [0, 0, 2]);
}

fn cutover(id: &str) -> serde_json::Value {
    serde_json::json!({"action": "cutover", "recovery": id})
}

#[tokio::test]
async fn refusals_change_nothing() {
    let f = Fixture::new();
    let future = (t0() + Duration::hours(1)).to_rfc3339();
    let before = f.doc().await;
    for (payload, expect) in [
        (
            serde_json::json!({"action": "recover", "resource": "orders-db",
                "restore_time": future, "reason": "x"}),
            "in the future",
        ),
        (
            serde_json::json!({"action": "recover", "resource": "orders-db",
                "restore_time": "2026-10-01T00:00:00Z", "reason": "x"}),
            "outside orders-db's restorable window",
        ),
        (
            serde_json::json!({"action": "recover", "resource": "orders-db",
                "restore_time": "yesterday", "reason": "x"}),
            "is not a time",
        ),
        (
            serde_json::json!({"action": "recover", "resource": "nope",
                "restore_time": "latest", "reason": "x"}),
            "unknown resource",
        ),
        (cutover("orders-db-pitr-1"), "unknown recovery"),
        (
            serde_json::json!({"action": "discard", "recovery": "orders-db-pitr-1"}),
            "unknown recovery",
        ),
    ] {
        let e = f.send(payload, "bad").await.unwrap_err();
        assert!(matches!(e, RecoveryRunError::Refused(_)), "{e}");
        assert!(e.to_string().contains(expect), "{e} should say {expect}");
        assert!(matches!(e.retry(), Retry::NonRetryable));
    }
    assert_eq!(f.doc().await, before);
    assert_eq!(f.world().restores, 0);
    assert!(f.notifier.sent.lock().unwrap().is_empty());
    // Each refused command is on the timeline, saying why.
    let refused: Vec<String> = f
        .state
        .entries(&f.plan.name)
        .into_iter()
        .filter(|e| e.action == "recovery.refused" && e.outcome == Outcome::Refused)
        .map(|e| e.detail)
        .collect();
    assert_eq!(refused.len(), 6, "{refused:#?}");
    assert!(refused[0].contains("in the future"), "{refused:#?}");
    // A table refusing every write does not turn a refusal into another failure.
    f.state.throttle_commits(0, 100);
    let e = f
        .send(cutover("orders-db-pitr-1"), "bad")
        .await
        .unwrap_err();
    assert!(matches!(e, RecoveryRunError::Refused(_)), "{e}");
}

#[tokio::test]
async fn a_cutover_of_failed_checks_is_refused_unless_forced_with_a_reason_which_is_recorded() {
    let f = Fixture::new();
    f.world().check_failures = vec!["orders has 0 rows, expected at least 1".into()];
    let id = f.ready().await;
    assert_eq!(
        f.doc().await.recoveries.get(&id).unwrap().phase,
        Phase::Ready {
            checks_passed: false
        }
    );
    let e = f.send(cutover(&id), "cut").await.unwrap_err();
    assert!(e.to_string().contains("failed its checks"), "{e}");
    assert!(f.world().fenced.is_empty());
    let e = f
        .send(
            serde_json::json!({"action": "cutover", "recovery": id, "force": true}),
            "cut",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("reason"), "{e}");
    let reply = f
        .send(
            serde_json::json!({"action": "cutover", "recovery": id, "force": true,
                "reason": "the missing rows are re-imported by hand"}),
            "cut",
        )
        .await
        .unwrap();
    let r = &reply.recoveries[0];
    assert_eq!(r.phase, Phase::CutOver);
    assert_eq!(
        r.cutover.as_ref().unwrap().forced.as_deref(),
        Some("the missing rows are re-imported by hand")
    );
    assert!(
        f.state
            .entries(&f.plan.name)
            .iter()
            .any(|e| e.detail.contains("forced by the operator"))
    );
}

#[tokio::test]
async fn cutover_is_refused_while_a_failover_runs_and_failover_while_a_cutover_runs() {
    let f = Fixture::new();
    let id = f.ready().await;
    // A failover holds the DR state: cutover is refused, nothing changes.
    let mut doc = f.doc().await;
    let normal = doc.state.clone();
    doc.state = crate::failback::sim::failed_over(t0());
    let v = state::load::<DrDocument>(&f.state, &dr_key(&f.plan))
        .await
        .unwrap()
        .unwrap()
        .version;
    state::save(&f.state, &dr_key(&f.plan), &doc, Some(v), t0())
        .await
        .unwrap();
    let e = f.send(cutover(&id), "cut").await.unwrap_err();
    assert!(e.to_string().contains("DR state is FailedOver"), "{e}");
    assert!(f.world().fenced.is_empty());

    // Back to Normal; the fence call fails, so the cutover stays under way, and a
    // failover decided now is turned into a refusal by the DR executor's guard.
    doc.state = normal;
    let v = state::load::<DrDocument>(&f.state, &dr_key(&f.plan))
        .await
        .unwrap()
        .unwrap()
        .version;
    state::save(&f.state, &dr_key(&f.plan), &doc, Some(v), t0())
        .await
        .unwrap();
    f.world().failing.insert("fence", 1);
    let reply = f.send(cutover(&id), "cut").await.unwrap();
    assert!(
        matches!(reply.recoveries[0].phase, Phase::CuttingOver { .. }),
        "{:?}",
        reply.recoveries[0].phase
    );
    let doc = f.doc().await;
    let failing_over: DrState = serde_json::from_value(serde_json::json!({
        "phase": "FailingOver", "incident": "evt-9",
        "cause": {"by": "operator", "reason": "drill"}, "step": "Confirm",
        "received_at": t0(), "marks": [], "targets": []}))
    .unwrap();
    let starting = crate::dr::Decision::<()>::keep(&failing_over, "failover started");
    let guarded = crate::dr::run::guard_writer(&f.plan, &doc, starting);
    assert!(guarded.refused);
    assert!(
        guarded.reply.contains("cutover of recovery"),
        "{}",
        guarded.reply
    );
    assert_eq!(guarded.state, doc.state);

    // The next tick retries the fence and finishes the cutover.
    f.minutes(1);
    let reply = f.tick("tick-after").await;
    assert_eq!(reply.recoveries[0].phase, Phase::CutOver);
}

#[tokio::test]
async fn a_duplicate_recover_is_refused_and_issues_nothing_twice() {
    let f = Fixture::new();
    let time = (t0() - Duration::hours(2)).to_rfc3339();
    let cmd = serde_json::json!({"action": "recover", "resource": "orders-db",
        "restore_time": time, "reason": "bad migration"});
    f.send(cmd.clone(), "first").await.unwrap();
    let e = f.send(cmd, "again").await.unwrap_err();
    assert!(e.to_string().contains("exists already"), "{e}");
    assert_eq!(f.world().restores, 1);
    assert_eq!(f.doc().await.recoveries.recoveries.len(), 1);
}

#[tokio::test]
async fn a_crash_holding_the_lease_is_resumed_after_it_lapses() {
    let f = Fixture::new();
    let id = f.ready().await;
    // An invocation took the lease to cut over, and died before acting.
    let mut doc = f.doc().await;
    doc.lease = Some(Lease {
        holder: "crashed".into(),
        until: f.aws.clock.now() + Duration::seconds(60),
    });
    let v = state::load::<DrDocument>(&f.state, &dr_key(&f.plan))
        .await
        .unwrap()
        .unwrap()
        .version;
    state::save(&f.state, &dr_key(&f.plan), &doc, Some(v), t0())
        .await
        .unwrap();
    let reply = f.send(cutover(&id), "during").await.unwrap();
    assert!(
        reply.steps[0].contains("another invocation"),
        "{:?}",
        reply.steps
    );
    assert!(f.world().fenced.is_empty());
    f.minutes(2);
    let reply = f.send(cutover(&id), "after").await.unwrap();
    assert_eq!(reply.recoveries[0].phase, Phase::CutOver);
    assert_eq!(f.world().fenced.len(), 1);
}

#[tokio::test]
async fn aws_unreadable_changes_nothing_and_is_retryable() {
    let f = Fixture::new();
    f.world().failing.insert("window", 1);
    let e = f
        .send(
            serde_json::json!({"action": "recover", "resource": "orders-db",
                "restore_time": "latest", "reason": "x"}),
            "r",
        )
        .await
        .unwrap_err();
    assert!(matches!(e.retry(), Retry::Retryable), "{e}");
    assert!(f.doc().await.recoveries.is_empty());
}

#[tokio::test]
async fn a_restore_aws_refuses_for_good_marks_the_recovery_failed_and_discard_cleans_up() {
    let f = Fixture::new();
    f.world().refuse_restore = true;
    let reply = f
        .send(
            serde_json::json!({"action": "recover", "resource": "orders-db",
                "restore_time": "latest", "reason": "x"}),
            "r",
        )
        .await
        .unwrap();
    let id = reply.recoveries[0].id.clone();
    assert!(
        matches!(&reply.recoveries[0].phase, Phase::Failed { why } if why.contains("InvalidParameterCombination")),
        "{:?}",
        reply.recoveries[0].phase
    );
    // Ticks leave a failed recovery alone.
    f.tick("t").await;
    assert_eq!(f.world().restores, 0);
    let reply = f
        .send(
            serde_json::json!({"action": "discard", "recovery": id}),
            "d",
        )
        .await
        .unwrap();
    assert_eq!(reply.recoveries[0].phase, Phase::Discarding);
    // The next look finds nothing left.
    let reply = f.tick("t2").await;
    assert_eq!(reply.recoveries[0].phase, Phase::Discarded);
}

#[tokio::test]
async fn discard_deletes_an_unused_recovery_and_never_one_that_was_cut_over() {
    let f = Fixture::new();
    let id = f.ready().await;
    let reply = f
        .send(
            serde_json::json!({"action": "discard", "recovery": id}),
            "d",
        )
        .await
        .unwrap();
    assert_eq!(reply.recoveries[0].phase, Phase::Discarding);
    f.minutes(1);
    let reply = f.tick("t").await;
    assert_eq!(reply.recoveries[0].phase, Phase::Discarded);
    assert!(f.world().restored[&id].deleted);

    let f = Fixture::new();
    let id = f.ready().await;
    f.send(cutover(&id), "cut").await.unwrap();
    let e = f
        .send(
            serde_json::json!({"action": "discard", "recovery": id}),
            "d",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("never deletes"), "{e}");
    assert!(!f.world().restored[&id].deleted);
}

#[tokio::test]
async fn a_restore_whose_intent_the_table_refuses_is_not_started() {
    let f = Fixture::new();
    f.state.throttle_commits_recording("recovery.restore");
    let time = t0() - Duration::hours(1);
    let err = f
        .send(
            serde_json::json!({"action": "recover", "resource": "orders-db",
                "restore_time": time.to_rfc3339(), "reason": "DELETE without WHERE"}),
            "recover",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RecoveryRunError::State(_)), "{err}");
    assert!(
        f.world().restored.is_empty(),
        "no restore without its entry"
    );
    assert!(
        f.state
            .entries(&f.plan.name)
            .iter()
            .all(|e| e.action != "recovery.restore")
    );
}
