//! The game-day executor against simulated edges (in memory): the DR document written
//! as the failover and failback functions would, a fake port that records what it was
//! asked, a racing writer, failed calls and crashes. (The AWS adapter runs against the
//! emulator in `tests/integration/gameday.rs`.)

use super::*;
use crate::dr::DrState;
use crate::dr::run::ManualClock;
use crate::gameday::tests::{STOP_ALARM, failed_over_json, plan};
use crate::gameday::{CanaryResult, GameDayOutcome, Phase};
use crate::notify::RecordingNotifier;
use crate::report::MemoryReports;
use crate::state::Versioned;
use crate::state::memory::MemoryStateStore;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use std::sync::Mutex;

/// Five minutes before the failover documents' alarm (10:00:00).
fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 9, 55, 0).unwrap()
}

#[derive(Default)]
struct Calls {
    injected: Vec<Injection>,
    history_reads: u32,
    stopped: u32,
    stopped_experiments: Vec<Option<String>>,
    verified: u32,
    failbacks: u32,
}

#[derive(Default)]
struct FakePort {
    calls: Mutex<Calls>,
    firing: Mutex<Vec<String>>,
    unhealthy: Mutex<Vec<String>>,
    inject_fails: bool,
    failback_fails: bool,
    canary_fails: bool,
    history: Vec<GameDayReport>,
}

#[async_trait]
impl GameDayPort for FakePort {
    async fn stop_alarms_firing(&self, _plan: &Plan) -> Vec<String> {
        self.firing.lock().unwrap().clone()
    }
    async fn protected(&self, _plan: &Plan) -> Result<bool, AwsError> {
        Ok(true)
    }
    async fn primary_not_ready(&self, _plan: &Plan) -> Vec<String> {
        self.unhealthy.lock().unwrap().clone()
    }
    async fn history(&self, _plan: &Plan, limit: usize) -> Result<Vec<GameDayReport>, AwsError> {
        self.calls.lock().unwrap().history_reads += 1;
        Ok(self.history.iter().take(limit).cloned().collect())
    }
    async fn inject(
        &self,
        _plan: &Plan,
        _game_day: &str,
        injection: &Injection,
    ) -> Result<Option<String>, AwsError> {
        if self.inject_fails {
            return Err(AwsError::bad_request(
                "fis",
                "StartExperiment",
                "EXT1",
                "the template does not exist",
            ));
        }
        self.calls.lock().unwrap().injected.push(injection.clone());
        Ok(matches!(injection, Injection::Fis { .. }).then(|| "EXP1".to_string()))
    }
    async fn stop_injection(
        &self,
        _plan: &Plan,
        _game_day: &str,
        _injection: &Injection,
        experiment_id: Option<&str>,
    ) -> Result<(), AwsError> {
        let mut calls = self.calls.lock().unwrap();
        calls.stopped += 1;
        calls
            .stopped_experiments
            .push(experiment_id.map(str::to_string));
        Ok(())
    }
    async fn verify(&self, _plan: &Plan, canary: Option<&Canary>, row: &str) -> Verification {
        self.calls.lock().unwrap().verified += 1;
        assert!(row.starts_with("lifeboat-gameday-"), "{row}");
        let canary = match (canary, self.canary_fails) {
            (None, _) => CanaryResult::NotConfigured,
            (Some(_), false) => CanaryResult::Ok,
            (Some(_), true) => CanaryResult::Failed {
                reason: "permission denied for table lifeboat_canary".into(),
            },
        };
        let mut detail = "db.example points at the available DR writer".to_string();
        if let CanaryResult::Failed { reason } = &canary {
            detail.push_str(&format!("; canary failed: {reason}"));
        }
        Verification {
            endpoint_answered: true,
            canary,
            detail,
        }
    }
    async fn start_failback(&self, _plan: &Plan, _game_day: &str) -> Result<bool, AwsError> {
        if self.failback_fails {
            return Err(AwsError::bad_request(
                "lambda",
                "Invoke",
                "failback",
                "function not found",
            ));
        }
        self.calls.lock().unwrap().failbacks += 1;
        Ok(true)
    }
}

/// The failover function's `ack`, counted.
#[derive(Default)]
struct FakeDr {
    acks: Mutex<u32>,
}

#[async_trait]
impl DrCommands for FakeDr {
    async fn acknowledge(&self, _invocation: &Invocation) -> Result<(), DrError> {
        *self.acks.lock().unwrap() += 1;
        Ok(())
    }
}

struct Rig {
    plan: Plan,
    port: FakePort,
    dr: FakeDr,
    state: MemoryStateStore,
    notifier: RecordingNotifier,
    reports: MemoryReports,
    clock: ManualClock,
}

impl Rig {
    fn new(port: FakePort) -> Rig {
        Rig {
            plan: plan(),
            port,
            dr: FakeDr::default(),
            state: MemoryStateStore::default(),
            notifier: RecordingNotifier::default(),
            reports: MemoryReports::default(),
            clock: ManualClock(Mutex::new(start_time())),
        }
    }

    fn run(&self) -> GameDayRun<'_> {
        GameDayRun {
            plan: &self.plan,
            port: &self.port,
            dr: &self.dr,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &self.clock,
        }
    }

    fn invocation(&self, id: &str) -> Invocation {
        let now = self.clock.now();
        Invocation {
            request_id: id.into(),
            now,
            deadline: now + Duration::minutes(15),
        }
    }

    async fn start(&self, id: &str) -> Result<GameDayReply, GameDayRunError> {
        let input =
            parse_command(&json!({"action": "game-day", "mode": "signal_only", "who": "tests"}))
                .unwrap()
                .unwrap();
        self.run().handle(input, &self.invocation(id)).await
    }

    async fn observe(&self) -> GameDayReply {
        self.run()
            .handle(GameDayInput::DrObserved, &self.invocation("tick"))
            .await
            .unwrap()
    }

    fn advance(&self, seconds: i64) {
        *self.clock.0.lock().unwrap() += Duration::seconds(seconds);
    }

    /// Write the DR document as the failover or failback function would.
    async fn set_dr(&self, state: serde_json::Value) {
        let state: DrState = serde_json::from_value(state).unwrap();
        let key = dr_key(&self.plan);
        let version = crate::state::load::<DrDocument>(&self.state, &key)
            .await
            .unwrap()
            .map(|v| v.version);
        let doc = DrDocument {
            state,
            lease: None,
            recoveries: Default::default(),
        };
        crate::state::save(&self.state, &key, &doc, version, self.clock.now())
            .await
            .unwrap();
    }

    async fn game_day(&self) -> Option<super::super::GameDay> {
        crate::state::load::<GameDayState>(&self.state, &game_day_key(&self.plan))
            .await
            .unwrap()
            .and_then(|v| v.value.current)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.port.calls.lock().unwrap()
    }
}

/// What a step reads in a quiet Normal state.
fn normal_facts() -> GameDayFacts {
    GameDayFacts {
        dr: crate::gameday::DrFacts::normal(true),
        recovery_active: None,
        stop_alarms_firing: vec![],
        history: vec![],
        primary_unhealthy: vec![],
    }
}

fn failing_over() -> serde_json::Value {
    json!({
        "phase": "FailingOver",
        "incident": "inc-1",
        "cause": { "by": "alarm", "name": "orders-db-primary-unhealthy", "fired_at": "2026-12-08T10:00:00Z" },
        "step": "AwaitPromotion",
        "received_at": "2026-12-08T10:00:30Z",
        "marks": [ { "step": "Confirm", "at": "2026-12-08T10:00:30Z" } ],
        "targets": crate::gameday::tests::targets_json()
    })
}

fn failed_over() -> serde_json::Value {
    let mut doc = failed_over_json();
    doc["phase"] = json!("FailedOver");
    doc
}

fn failing_back() -> serde_json::Value {
    json!({
        "phase": "FailingBack",
        "id": "fb-1",
        "from": failed_over_json(),
        "step": "Reprotect",
        "writer": "dr",
        "traffic_primary_percent": 0,
        "targets": [],
        "marks": [
            { "step": "RetireOldPrimary", "at": "2026-12-08T10:20:00Z" },
            { "step": "Reprotect", "at": "2026-12-08T10:23:00Z" }
        ]
    })
}

fn normal() -> serde_json::Value {
    serde_json::to_value(DrState::default()).unwrap()
}

#[tokio::test]
async fn a_game_day_runs_from_the_command_to_its_report() {
    let rig = Rig::new(FakePort::default());
    let reply = rig.start("req-1").await.unwrap();
    assert_eq!(reply.game_day.as_ref().unwrap().id, "req-1");
    assert_eq!(rig.game_day().await.unwrap().phase, Phase::AwaitingFailover);
    assert_eq!(rig.calls().injected.len(), 1, "the signal is injected once");
    assert_eq!(
        rig.calls().history_reads,
        1,
        "past reports are read once per invocation, however many rounds it steps"
    );
    assert!(matches!(
        rig.calls().injected[0],
        Injection::SignalOnly { ref alarms } if !alarms.is_empty()
    ));

    // The failover function's own invocations move the game day on.
    rig.advance(300);
    rig.set_dr(failing_over()).await;
    rig.observe().await;
    assert_eq!(rig.game_day().await.unwrap().phase, Phase::AwaitingFailover);
    rig.advance(420);
    rig.set_dr(failed_over()).await;
    let reply = rig.observe().await;
    assert_eq!(rig.calls().verified, 1);
    assert_eq!(
        rig.calls().stopped,
        1,
        "the signal is taken back after the failover"
    );
    assert_eq!(rig.calls().failbacks, 1, "{reply:?}");
    assert_eq!(
        *rig.dr.acks.lock().unwrap(),
        1,
        "the incident is acknowledged before the failback, which a cooldown would refuse"
    );
    assert_eq!(rig.game_day().await.unwrap().phase, Phase::AwaitingFailback);

    rig.advance(600);
    rig.set_dr(failing_back()).await;
    rig.observe().await;
    rig.advance(600);
    rig.set_dr(normal()).await;
    let reply = rig.observe().await;
    let gd = rig.game_day().await.unwrap();
    assert_eq!(gd.phase, Phase::Done, "{reply:?}");
    let uri = reply.report.expect("the report is written");
    let stored = rig.reports.stored.lock().unwrap();
    let (key, body) = stored.iter().next().unwrap();
    assert!(uri.ends_with(key.as_str()));
    assert!(
        key.starts_with(&format!("{}/gameday/", rig.plan.name)),
        "{key}"
    );
    let report: GameDayReport = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(report.outcome, GameDayOutcome::Completed);
    assert!(report.hypothesis.held(), "{report:?}");
    assert_eq!(report.data_loss_seconds, Some(2.5));
    assert_eq!(report.verification.unwrap().canary, CanaryResult::Ok);
    let sent = rig.notifier.sent.lock().unwrap();
    let last = sent.last().unwrap();
    assert!(last.subject.contains("hypothesis held"), "{last:?}");
    assert!(last.body.contains("Hypothesis HELD"), "{}", last.body);
    // Every step is in the audit timeline.
    let actions: Vec<String> = rig
        .state
        .entries(&rig.plan.name)
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "gameday.inject",
        "gameday.stop-injection",
        "gameday.verify",
        "gameday.start-failback",
        "gameday.report",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_duplicate_start_is_answered_and_injects_nothing_more() {
    let rig = Rig::new(FakePort::default());
    rig.start("req-1").await.unwrap();
    let again = rig.start("req-1").await.unwrap();
    assert!(again.steps[0].contains("already started"), "{again:?}");
    assert_eq!(rig.calls().injected.len(), 1);
    // A second game day (another id) is refused while the first runs.
    let err = rig.start("req-2").await.unwrap_err();
    assert!(
        err.to_string().contains("game day req-1 is running"),
        "{err}"
    );
    assert_eq!(rig.calls().injected.len(), 1);
    assert_eq!(rig.game_day().await.unwrap().id, "req-1");
}

#[tokio::test]
async fn refused_game_days_change_nothing() {
    // Not allowed by the plan.
    let mut rig = Rig::new(FakePort::default());
    rig.plan.game_days.allowed = false;
    let err = rig.start("req-1").await.unwrap_err();
    assert!(
        err.to_string().contains("does not allow game days"),
        "{err}"
    );
    assert!(rig.game_day().await.is_none());
    assert!(rig.calls().injected.is_empty());
    assert!(matches!(err.retry(), Retry::NonRetryable));

    // During a failover.
    let rig = Rig::new(FakePort::default());
    rig.set_dr(failing_over()).await;
    let err = rig.start("req-1").await.unwrap_err();
    assert!(err.to_string().contains("FailingOver"), "{err}");
    assert!(rig.game_day().await.is_none());

    // In the cooldown after a failback.
    let rig = Rig::new(FakePort::default());
    rig.set_dr(json!({"phase": "Normal", "cooldown_until": "2026-12-08T11:00:00Z"}))
        .await;
    let err = rig.start("req-1").await.unwrap_err();
    assert!(err.to_string().contains("cooldown"), "{err}");

    // With a stop condition firing.
    let rig = Rig::new(FakePort::default());
    rig.port.firing.lock().unwrap().push(STOP_ALARM.into());
    let err = rig.start("req-1").await.unwrap_err();
    assert!(err.to_string().contains(STOP_ALARM), "{err}");
    assert!(rig.game_day().await.is_none());
    assert!(rig.calls().injected.is_empty());
    let refused = rig.state.entries(&rig.plan.name);
    assert_eq!(refused.last().unwrap().action, "gameday.refused");
}

#[tokio::test]
async fn a_stop_condition_mid_failover_lets_the_failover_finish_and_starts_no_failback() {
    let rig = Rig::new(FakePort::default());
    rig.start("req-1").await.unwrap();
    rig.advance(300);
    rig.set_dr(failing_over()).await;
    rig.observe().await;
    rig.port.firing.lock().unwrap().push(STOP_ALARM.into());
    rig.advance(60);
    rig.observe().await;
    let gd = rig.game_day().await.unwrap();
    assert!(matches!(gd.phase, Phase::Stopping { .. }), "{:?}", gd.phase);
    assert_eq!(rig.calls().stopped, 1);
    // Still failing over: the game day waits, nothing else happens.
    rig.advance(60);
    rig.observe().await;
    assert!(matches!(
        rig.game_day().await.unwrap().phase,
        Phase::Stopping { .. }
    ));
    rig.advance(300);
    rig.set_dr(failed_over()).await;
    let reply = rig.observe().await;
    let gd = rig.game_day().await.unwrap();
    assert_eq!(gd.phase, Phase::Aborted, "{reply:?}");
    assert_eq!(
        rig.calls().failbacks,
        0,
        "no failback after a stop condition"
    );
    assert_eq!(rig.calls().verified, 0);
    assert_eq!(rig.calls().stopped, 1, "the injection is stopped once");
    let report = gd.report.unwrap();
    assert!(report.operator_must_fail_back);
    let sent = rig.notifier.sent.lock().unwrap();
    assert_eq!(sent.last().unwrap().severity, Severity::Critical);
}

#[tokio::test]
async fn a_failed_injection_ends_the_game_day_with_a_report() {
    let rig = Rig::new(FakePort {
        inject_fails: true,
        ..FakePort::default()
    });
    let reply = rig.start("req-1").await.unwrap();
    let gd = rig.game_day().await.unwrap();
    assert_eq!(gd.phase, Phase::Aborted, "{reply:?}");
    let report = gd.report.unwrap();
    assert!(!report.hypothesis.held());
    assert!(
        reply
            .steps
            .iter()
            .any(|s| s.contains("template does not exist")),
        "{reply:?}"
    );
    assert_eq!(rig.reports.stored.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_crash_after_the_injection_was_recorded_never_injects_again() {
    let rig = Rig::new(FakePort::default());
    // What an invocation that died between saving and injecting left behind.
    let mut state = GameDayState::default();
    let decision = crate::gameday::step(
        &state,
        &GameDayEvent::Start {
            id: "req-1".into(),
            mode: Some(GameDayMode::SignalOnly),
            who: "tests".into(),
        },
        &rig.plan,
        &normal_facts(),
        rig.clock.now(),
    );
    state = decision.state;
    let decision = crate::gameday::step(
        &state,
        &GameDayEvent::Tick,
        &rig.plan,
        &normal_facts(),
        rig.clock.now(),
    );
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, GameDayAction::Inject { .. }))
    );
    crate::state::save(
        &rig.state,
        &game_day_key(&rig.plan),
        &decision.state,
        None,
        rig.clock.now(),
    )
    .await
    .unwrap();
    // The ticks that follow never inject; after the timeout the game day reports.
    rig.advance(60);
    rig.observe().await;
    assert!(rig.calls().injected.is_empty());
    rig.advance(60 * crate::gameday::INJECTION_TIMEOUT_MINUTES);
    rig.observe().await;
    assert!(rig.calls().injected.is_empty());
    assert_eq!(rig.game_day().await.unwrap().phase, Phase::Aborted);
}

#[tokio::test]
async fn a_failed_failback_start_is_notified_and_the_game_day_reports_when_it_never_comes() {
    let rig = Rig::new(FakePort {
        failback_fails: true,
        ..FakePort::default()
    });
    rig.start("req-1").await.unwrap();
    rig.advance(300);
    rig.set_dr(failed_over()).await;
    let reply = rig.observe().await;
    assert!(
        reply
            .steps
            .iter()
            .any(|s| s.contains("{\"action\": \"start\"}")),
        "{reply:?}"
    );
    assert!(
        rig.notifier
            .sent
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.subject.contains("failback not started"))
    );
    rig.advance(60 * crate::gameday::FAILBACK_START_MINUTES);
    rig.observe().await;
    let gd = rig.game_day().await.unwrap();
    assert_eq!(gd.phase, Phase::Aborted);
    assert!(!gd.report.unwrap().hypothesis.held());
}

/// A report sink that fails a given number of times first.
struct FlakyReports {
    inner: MemoryReports,
    failures: Mutex<u32>,
}

#[async_trait]
impl ReportSink for FlakyReports {
    async fn put_report(
        &self,
        key: &str,
        report: &serde_json::Value,
    ) -> Result<String, crate::report::ReportError> {
        {
            let mut left = self.failures.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(crate::report::ReportError(AwsError::bad_request(
                    "s3",
                    "PutObject",
                    key,
                    "throttled",
                )));
            }
        }
        self.inner.put_report(key, report).await
    }
}

#[tokio::test]
async fn a_report_that_was_not_written_is_written_again_under_the_same_key() {
    let rig = Rig::new(FakePort {
        inject_fails: true,
        ..FakePort::default()
    });
    let reports = FlakyReports {
        inner: MemoryReports::default(),
        failures: Mutex::new(1),
    };
    let run = GameDayRun {
        reports: &reports,
        ..rig.run()
    };
    let input = parse_command(&json!({"action": "game-day"}))
        .unwrap()
        .unwrap();
    let reply = run.handle(input, &rig.invocation("req-1")).await.unwrap();
    assert!(reply.report.is_none(), "{reply:?}");
    assert_eq!(rig.game_day().await.unwrap().phase, Phase::Reporting);
    rig.advance(60);
    let reply = run
        .handle(GameDayInput::DrObserved, &rig.invocation("tick"))
        .await
        .unwrap();
    assert!(reply.report.is_some(), "{reply:?}");
    assert_eq!(rig.game_day().await.unwrap().phase, Phase::Aborted);
    assert_eq!(reports.inner.stored.lock().unwrap().len(), 1);
}

/// A state store where another invocation writes the game day first.
struct Racing {
    inner: MemoryStateStore,
    other: Mutex<Option<serde_json::Value>>,
}

#[async_trait]
impl StateStore for Racing {
    async fn load_json(
        &self,
        key: &MachineKey,
    ) -> Result<Option<Versioned<serde_json::Value>>, StateError> {
        self.inner.load_json(key).await
    }
    async fn commit(&self, commit: &crate::state::Commit) -> Result<Option<u64>, StateError> {
        let other = self.other.lock().unwrap().take();
        if let (Some(other), Some(m)) = (other, &commit.machine) {
            let mut first = crate::state::Commit::check(&m.key, m.expected, commit.now);
            if let Some(w) = &mut first.machine {
                w.value = Some(other);
            }
            self.inner.commit(&first).await?;
        }
        self.inner.commit(commit).await
    }
    async fn claim(
        &self,
        request: &crate::state::ClaimRequest,
    ) -> Result<crate::state::Claim, StateError> {
        self.inner.claim(request).await
    }
    async fn complete(
        &self,
        token: &crate::state::ClaimToken,
        result: &serde_json::Value,
    ) -> Result<(), StateError> {
        self.inner.complete(token, result).await
    }
    async fn release(&self, token: &crate::state::ClaimToken) -> Result<(), StateError> {
        self.inner.release(token).await
    }
    async fn timeline(
        &self,
        plan: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEntry>, StateError> {
        self.inner.timeline(plan, since).await
    }
}

#[tokio::test]
async fn of_two_racing_starts_of_one_game_day_only_the_winner_injects() {
    let rig = Rig::new(FakePort::default());
    // The other invocation's first decision: the same game day, accepted.
    let won = crate::gameday::step(
        &GameDayState::default(),
        &GameDayEvent::Start {
            id: "req-1".into(),
            mode: Some(GameDayMode::SignalOnly),
            who: "tests".into(),
        },
        &rig.plan,
        &normal_facts(),
        rig.clock.now(),
    );
    let store = Racing {
        inner: MemoryStateStore::default(),
        other: Mutex::new(Some(serde_json::to_value(&won.state).unwrap())),
    };
    let run = GameDayRun {
        state: &store,
        ..rig.run()
    };
    let input = parse_command(&json!({"action": "game-day", "id": "req-1"}))
        .unwrap()
        .unwrap();
    let reply = run
        .handle(input, &rig.invocation("lambda-retry"))
        .await
        .unwrap();
    assert!(
        reply.steps.iter().any(|s| s.contains("already started")),
        "{reply:?}"
    );
    assert!(rig.calls().injected.is_empty(), "the loser injects nothing");
}

#[test]
fn commands_parse_or_say_what_is_wrong() {
    assert_eq!(parse_command(&json!({"action": "status"})).unwrap(), None);
    assert_eq!(
        parse_command(&json!({"action": "game-day-status"})).unwrap(),
        Some(GameDayInput::Status)
    );
    let Some(GameDayInput::Start(c)) =
        parse_command(&json!({"action": "game-day", "mode": "fis", "id": "gd-1", "who": "ana"}))
            .unwrap()
    else {
        panic!("not a start");
    };
    assert_eq!(c.mode, Some(GameDayMode::Fis));
    assert_eq!(c.id.as_deref(), Some("gd-1"));
    let e = parse_command(&json!({"action": "game-day", "mode": "chaos"})).unwrap_err();
    assert!(
        e.contains("mode") && e.contains("events/game-day.json"),
        "{e}"
    );
    let e = parse_command(&json!({"action": "game-day", "force": true})).unwrap_err();
    assert!(e.contains("force"), "{e}");
    for id in ["two words", "../../x", "gd\u{202e}1", ".hidden", "a/b", ""] {
        let e = parse_command(&json!({"action": "game-day", "id": id})).unwrap_err();
        assert!(e.contains("A-Z, a-z, 0-9"), "{id:?}: {e}");
    }
    assert!(parse_command(&json!({"action": "game-day", "id": "INC-1234_gd.2:a"})).is_ok());
    let e = parse_command(&json!({"action": "game-day-status", "id": "x"})).unwrap_err();
    assert!(e.contains("takes no"), "{e}");
}

#[tokio::test]
async fn status_reads_and_changes_nothing() {
    let rig = Rig::new(FakePort::default());
    let reply = rig
        .run()
        .handle(GameDayInput::Status, &rig.invocation("s"))
        .await
        .unwrap();
    assert!(reply.game_day.is_none());
    assert!(reply.steps[0].contains("no game day"));
    rig.start("req-1").await.unwrap();
    let reply = rig
        .run()
        .handle(GameDayInput::Status, &rig.invocation("s"))
        .await
        .unwrap();
    assert_eq!(reply.game_day.unwrap().phase, Phase::AwaitingFailover);
    assert_eq!(rig.calls().injected.len(), 1);
}

#[tokio::test]
async fn a_failing_canary_is_reported_and_the_failback_still_runs() {
    let rig = Rig::new(FakePort {
        canary_fails: true,
        ..FakePort::default()
    });
    rig.start("req-1").await.unwrap();
    rig.advance(300);
    rig.set_dr(failed_over()).await;
    rig.observe().await;
    // The DR region serves; returning is what the operator wants either way.
    assert_eq!(rig.calls().failbacks, 1);
    assert!(
        rig.notifier
            .sent
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.severity == Severity::Critical && n.body.contains("permission denied"))
    );
}

#[test]
fn the_sample_events_are_game_day_commands() {
    let start: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/game-day.json")).unwrap();
    assert!(matches!(
        parse_command(&start).unwrap(),
        Some(GameDayInput::Start(GameDayCommand {
            mode: Some(GameDayMode::SignalOnly),
            ..
        }))
    ));
    let status: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/game-day-status.json")).unwrap();
    assert_eq!(parse_command(&status).unwrap(), Some(GameDayInput::Status));
}

#[tokio::test]
async fn a_fis_game_day_stops_the_experiment_it_started_once_failed_over() {
    let rig = Rig::new(FakePort::default());
    let input = parse_command(&json!({"action": "game-day", "mode": "fis"}))
        .unwrap()
        .unwrap();
    rig.run()
        .handle(input, &rig.invocation("req-fis"))
        .await
        .unwrap();
    assert!(matches!(
        rig.calls().injected.as_slice(),
        [Injection::Fis { .. }]
    ));
    assert_eq!(
        rig.game_day().await.unwrap().experiment_id.as_deref(),
        Some("EXP1")
    );
    // The disruption is over, but the primary's health check still fails for a while:
    // the failback waits for it.
    *rig.port.unhealthy.lock().unwrap() = vec!["orders-db-primary-unhealthy".into()];
    rig.advance(300);
    rig.set_dr(failed_over()).await;
    rig.observe().await;
    assert_eq!(rig.calls().failbacks, 0);
    rig.port.unhealthy.lock().unwrap().clear();
    rig.advance(120);
    rig.observe().await;
    assert_eq!(rig.calls().failbacks, 1);
    assert_eq!(
        rig.calls().stopped_experiments,
        vec![Some("EXP1".to_string())],
        "the experiment is stopped by its id, once"
    );
}

#[tokio::test]
async fn an_injection_whose_intent_the_table_refuses_is_not_made() {
    let rig = Rig::new(FakePort::default());
    rig.state.throttle_commits_recording("gameday.inject");
    let err = rig.start("req-1").await.unwrap_err();
    assert!(matches!(err, GameDayRunError::State(_)), "{err}");
    assert!(
        rig.calls().injected.is_empty(),
        "no injection without its entry"
    );
    assert!(
        rig.state
            .entries(&rig.plan.name)
            .iter()
            .all(|e| e.action != "gameday.inject")
    );
    // With a table that answers, the command injects once, its intent on the record first.
    let fresh = Rig::new(FakePort::default());
    fresh.start("req-1").await.unwrap();
    assert_eq!(fresh.calls().injected.len(), 1);
    let inject: Vec<_> = fresh
        .state
        .entries(&fresh.plan.name)
        .into_iter()
        .filter(|e| e.action == "gameday.inject")
        .map(|e| e.outcome)
        .collect();
    assert_eq!(
        inject,
        [
            crate::state::Outcome::Intended,
            crate::state::Outcome::Started
        ]
    );
}
