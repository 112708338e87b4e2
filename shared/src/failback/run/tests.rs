//! The failback function's executor against a simulated AWS (in memory): commands and
//! ticks through `handle`, persistence, concurrency, failed calls, notifications and the
//! report. (The AWS adapter is tested against the emulator in `tests/integration`.)

use super::*;
use crate::dr::run::{DrDocument, ManualClock, dr_key};
use crate::error::{AwsFailure, Classify, Retry};
use crate::failback::sim::{Db, Sim, failed_over};
use crate::notify::RecordingNotifier;
use crate::plan::parse_plan;
use crate::report::MemoryReports;
use crate::state;
use crate::state::memory::MemoryStateStore;
use serde_json::{Value, json};
use std::sync::{Mutex, MutexGuard};

/// AWS as the simulation sees it; time moves with the executor's clock.
struct SimulatedAws {
    sim: Mutex<Sim>,
    clock: ManualClock,
    /// Promotion calls to refuse (throttled) before one goes through.
    throttle_promotions: Mutex<u32>,
    plan: Plan,
}

impl SimulatedAws {
    /// The simulation, moved on to the clock's time.
    fn world(&self) -> MutexGuard<'_, Sim> {
        let now = self.clock.now();
        let mut sim = self.sim.lock().unwrap();
        if now > sim.now {
            let seconds = (now - sim.now).num_seconds();
            sim.advance(seconds);
        }
        sim
    }

    fn act(&self, action: FbAction) -> FbOutcome {
        self.world().act(&action, &self.plan)
    }
}

#[async_trait]
impl FailbackPort for SimulatedAws {
    async fn read_alarms(&self, _plan: &Plan, alarms: &[AlarmRef]) -> Vec<AlarmReading> {
        let facts = self.world().facts();
        facts
            .health
            .into_iter()
            .chain(facts.gates)
            .filter(|r| alarms.iter().any(|a| a.name == r.name))
            .collect()
    }
    async fn read_target(
        &self,
        _plan: &Plan,
        _resource: &ProtectedResource,
        _change: Option<&str>,
    ) -> FbTargetFacts {
        self.world().facts().targets.remove(0)
    }
    async fn read_traffic(&self, _plan: &Plan, _change: Option<&str>) -> TrafficFacts {
        self.world().facts().traffic
    }
    async fn retire(
        &self,
        _plan: &Plan,
        resource: &ProtectedResource,
        side: Side,
        final_snapshot: &str,
    ) -> Result<(), AwsError> {
        self.act(FbAction::Retire {
            resource: resource.id.clone(),
            side,
            final_snapshot: final_snapshot.into(),
        });
        Ok(())
    }
    async fn create_replica(
        &self,
        _plan: &Plan,
        resource: &ProtectedResource,
        side: Side,
        like: Option<&DatabaseShape>,
    ) -> Result<(), AwsError> {
        self.act(FbAction::CreateReplica {
            resource: resource.id.clone(),
            side,
            like: like.cloned(),
        });
        Ok(())
    }
    async fn promote_primary(
        &self,
        _plan: &Plan,
        resource: &ProtectedResource,
    ) -> Result<(), AwsError> {
        {
            let mut throttled = self.throttle_promotions.lock().unwrap();
            if *throttled > 0 {
                *throttled -= 1;
                return Err(AwsError {
                    service: "rds",
                    operation: "PromoteReadReplica",
                    resource: resource.id.clone(),
                    failure: AwsFailure::Throttled,
                    code: Some("Throttling".into()),
                    message: "Rate exceeded".into(),
                });
            }
        }
        self.act(FbAction::PromotePrimary {
            resource: resource.id.clone(),
        });
        Ok(())
    }
    async fn stop(
        &self,
        _plan: &Plan,
        resource: &ProtectedResource,
        side: Side,
    ) -> Result<FenceOutcome, AwsError> {
        match self.act(FbAction::Stop {
            resource: resource.id.clone(),
            side,
        }) {
            FbOutcome::Stopped { outcome, .. } => Ok(outcome),
            other => panic!("the simulation answered a stop with {other:?}"),
        }
    }
    async fn switch_record(
        &self,
        _plan: &Plan,
        resource: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError> {
        match self.act(FbAction::SwitchRecord {
            resource: resource.id.clone(),
            endpoint: endpoint.into(),
        }) {
            FbOutcome::Switched { change, .. } => Ok(change),
            other => panic!("the simulation answered a switch with {other:?}"),
        }
    }
    async fn set_traffic(&self, _plan: &Plan, primary_percent: u32) -> Result<String, AwsError> {
        match self.act(FbAction::SetTraffic { primary_percent }) {
            FbOutcome::TrafficSet { change, .. } => Ok(change),
            other => panic!("the simulation answered a weight change with {other:?}"),
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

fn event(name: &str) -> Value {
    let text = match name {
        "start" => include_str!("../../../../events/failback-start.json"),
        "tick" => include_str!("../../../../events/failback-tick.json"),
        "pause" => include_str!("../../../../events/failback-pause.json"),
        "resume" => include_str!("../../../../events/failback-resume.json"),
        "abort" => include_str!("../../../../events/failback-abort.json"),
        "status" => include_str!("../../../../events/failback-status.json"),
        other => panic!("no sample event {other}"),
    };
    serde_json::from_str(text).unwrap()
}

impl Fixture {
    /// The plan failed over two hours ago; its cooldown is over.
    async fn failed_over() -> Self {
        let plan = parse_plan(include_str!("../../../../infra/plans/local.json")).unwrap();
        let sim = Sim::after_failover();
        let now = sim.now;
        let f = Fixture {
            aws: SimulatedAws {
                sim: Mutex::new(sim),
                clock: ManualClock(Mutex::new(now)),
                throttle_promotions: Mutex::new(0),
                plan: plan.clone(),
            },
            plan,
            state: MemoryStateStore::default(),
            notifier: RecordingNotifier::default(),
            reports: MemoryReports::default(),
        };
        let doc = DrDocument {
            state: failed_over(now),
            lease: None,
            ..Default::default()
        };
        state::save(&f.state, &dr_key(&f.plan), &doc, None, now)
            .await
            .unwrap();
        f
    }
    fn run(&self) -> FailbackRun<'_> {
        FailbackRun {
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
    async fn send(&self, name: &str, id: &str) -> Result<DrReply, DrError> {
        self.run().handle(&event(name), &self.invocation(id)).await
    }
    async fn doc(&self) -> DrDocument {
        state::load::<DrDocument>(&self.state, &dr_key(&self.plan))
            .await
            .unwrap()
            .unwrap()
            .value
    }
    fn minute(&self) {
        let mut now = self.aws.clock.0.lock().unwrap();
        *now += Duration::minutes(1);
    }
    /// Ticks a minute apart until `done` holds (at most two simulated hours).
    async fn tick_until(&self, done: impl Fn(&DrReply, &Sim) -> bool) -> DrReply {
        for i in 0..120 {
            self.minute();
            let reply = self.send("tick", &format!("tick-{i}")).await.unwrap();
            if done(&reply, &self.aws.sim.lock().unwrap()) {
                return reply;
            }
        }
        panic!(
            "not reached in two hours; the state is {}",
            self.doc().await.state.phase()
        );
    }
    fn subjects(&self) -> Vec<String> {
        self.notifier
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|n| n.subject.clone())
            .collect()
    }
}

#[tokio::test]
async fn a_start_and_ticks_bring_the_plan_back_to_normal_with_a_report() {
    let f = Fixture::failed_over().await;
    let started = f.send("start", "req-start").await.unwrap();
    assert!(
        started.phase.starts_with("FailingBack/"),
        "{:?}",
        started.steps
    );
    let done = f.tick_until(|r, _| r.phase == "Normal").await;
    let report = done.report.as_deref().expect("a failback report");
    assert!(
        report.starts_with("memory://lifeboat-local/failback/"),
        "{report}"
    );
    {
        let sim = f.aws.sim.lock().unwrap();
        assert_eq!(sim.promotions, 1);
        assert!(sim.bad_promotions.is_empty(), "{:?}", sim.bad_promotions);
        assert_eq!(
            (sim.p, sim.d, sim.record_p, sim.traffic),
            (Db::Writer, Db::Replica, true, 100)
        );
    }
    assert_eq!(f.doc().await.lease, None);
    let timeline = f.state.entries("lifeboat-local");
    let promotions = timeline
        .iter()
        .filter(|e| {
            e.action == "failback.promote"
                && e.resource.is_some()
                && e.outcome != state::Outcome::Intended
        })
        .count();
    assert_eq!(promotions, 1, "one promotion call audited");
    assert!(timeline.iter().any(|e| e.action == "failback.complete"));
    let subjects = f.subjects();
    for s in [
        "failback started",
        "moving the writer to the primary region",
        "failback complete: back to Normal",
    ] {
        assert!(
            subjects.iter().any(|x| x == s),
            "{s} not notified: {subjects:?}"
        );
    }
    // Ticks after the end change nothing.
    f.minute();
    let after = f.send("tick", "late").await.unwrap();
    assert_eq!(after.phase, "Normal");
    assert_eq!(f.aws.sim.lock().unwrap().promotions, 1);
}

#[tokio::test]
async fn concurrent_ticks_act_once() {
    let f = Fixture::failed_over().await;
    f.send("start", "req-start").await.unwrap();
    for minute in 0..120 {
        f.minute();
        let runs: Vec<_> = (0..6)
            .map(|i| {
                let f = &f;
                async move { f.send("tick", &format!("m{minute}-{i}")).await }
            })
            .collect();
        for reply in futures::future::join_all(runs).await {
            let reply = reply.unwrap();
            assert!(!reply.steps.is_empty());
        }
        if matches!(f.doc().await.state, DrState::Normal { .. }) {
            break;
        }
    }
    assert!(matches!(f.doc().await.state, DrState::Normal { .. }));
    let sim = f.aws.sim.lock().unwrap();
    assert_eq!(sim.promotions, 1);
    assert_eq!(sim.retired.len(), 2, "{:?}", sim.retired);
    assert!(sim.bad_promotions.is_empty(), "{:?}", sim.bad_promotions);
}

#[tokio::test]
async fn a_throttled_promotion_is_retried_and_the_writer_moves_once() {
    let f = Fixture::failed_over().await;
    *f.aws.throttle_promotions.lock().unwrap() = 2;
    f.send("start", "req-start").await.unwrap();
    let done = f.tick_until(|r, _| r.phase == "Normal").await;
    assert_eq!(done.phase, "Normal");
    assert_eq!(*f.aws.throttle_promotions.lock().unwrap(), 0);
    assert_eq!(f.aws.sim.lock().unwrap().promotions, 1);
    let failed: Vec<_> = f
        .state
        .entries("lifeboat-local")
        .into_iter()
        .filter(|e| e.action == "failback.promote" && e.outcome == state::Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 2, "each throttled call is on the record");
    assert!(
        failed[0].detail.contains("Throttling"),
        "{}",
        failed[0].detail
    );
}

#[tokio::test]
async fn bad_input_and_refused_commands_change_nothing() {
    let f = Fixture::failed_over().await;
    let before = f.doc().await;
    let err = f
        .run()
        .handle(&json!({"action": "launch"}), &f.invocation("bad"))
        .await
        .unwrap_err();
    assert!(matches!(err, DrError::BadInput(_)), "{err}");
    assert_eq!(err.retry(), Retry::NonRetryable);
    let err = f.send("pause", "pause").await.unwrap_err();
    assert!(matches!(err, DrError::Refused(_)), "{err}");
    let err = f.send("resume", "resume").await.unwrap_err();
    assert!(matches!(err, DrError::Refused(_)), "{err}");
    // Start is refused while the primary region's health alarm is in ALARM.
    f.aws.sim.lock().unwrap().health_ok = false;
    let err = f.send("start", "start").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("orders-db-primary-unhealthy is ALARM"),
        "{err}"
    );
    let status = f.send("status", "status").await.unwrap();
    assert_eq!(status.phase, "FailedOver");
    assert_eq!(f.doc().await.state, before.state);
    let sim = f.aws.sim.lock().unwrap();
    assert_eq!(
        (sim.p, sim.d, sim.retired.len()),
        (Db::Stopped, Db::Writer, 0)
    );
}

#[tokio::test]
async fn a_gate_alarm_rolls_back_notifies_and_waits_for_resume() {
    let f = Fixture::failed_over().await;
    f.send("start", "req-start").await.unwrap();
    f.tick_until(|_, sim| sim.traffic == 50 && sim.traffic_pending == 0)
        .await;
    f.aws.sim.lock().unwrap().gate = true;
    f.minute();
    let rolled = f.send("tick", "gate").await.unwrap();
    assert!(rolled.phase.ends_with("(paused)"), "{}", rolled.phase);
    assert_eq!(f.aws.sim.lock().unwrap().traffic, 10);
    assert!(
        f.subjects()
            .iter()
            .any(|s| s == "failback rolled back: gate orders-api-5xx in ALARM"),
        "{:?}",
        f.subjects()
    );
    // Paused: an hour of ticks changes nothing, even once the gate is clear.
    f.aws.sim.lock().unwrap().gate = false;
    for i in 0..60 {
        f.minute();
        let r = f.send("tick", &format!("paused-{i}")).await.unwrap();
        assert!(r.phase.ends_with("(paused)"));
    }
    assert_eq!(f.aws.sim.lock().unwrap().traffic, 10);
    f.send("resume", "resume").await.unwrap();
    f.tick_until(|r, _| r.phase == "Normal").await;
    assert_eq!(f.aws.sim.lock().unwrap().traffic, 100);
}

#[tokio::test]
async fn a_long_wait_is_left_to_the_ticks_after_the_poll_budget() {
    let f = Fixture::failed_over().await;
    f.aws.sim.lock().unwrap().stuck_lag = Some(600.0);
    let before = f.aws.clock.now();
    let started = f.send("start", "req-start").await.unwrap();
    let polled = f.aws.clock.now() - before;
    assert!(
        polled <= Duration::seconds(POLL_BUDGET_SECONDS + 10),
        "the start polled {polled}"
    );
    assert!(
        started
            .steps
            .last()
            .is_some_and(|s| s.starts_with("waited 90 s in this invocation")),
        "{:?}",
        started.steps
    );
    assert!(started.phase.ends_with("AwaitCatchUp"), "{}", started.phase);
    // A tick goes on waiting, within the same budget.
    f.minute();
    let before = f.aws.clock.now();
    let tick = f.send("tick", "tick").await.unwrap();
    assert!(f.aws.clock.now() - before <= Duration::seconds(POLL_BUDGET_SECONDS + 10));
    assert!(
        tick.steps.iter().any(|s| s.contains("600 s behind")),
        "{:?}",
        tick.steps
    );
}
