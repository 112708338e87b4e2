//! The failover executor against in-memory fakes: persistence, leases, concurrency,
//! crashes, polling within the deadline. (The AWS adapter is tested against the emulator
//! in `tests/integration/failover.rs`.)

use super::*;
use crate::dr::TrafficFacts;
use crate::dr::run::ManualClock;
use crate::error::AwsFailure;
use crate::error::{Classify, Retry};
use crate::failover::{AlarmValue, ChangeState};
use crate::notify::RecordingNotifier;
use crate::plan::parse_plan;
use crate::posture::{Observed, StoreFacts};
use crate::report::MemoryReports;
use crate::state::memory::MemoryStateStore;
use crate::state::{self, AuditEntry, Outcome};
use chrono::TimeZone;
use serde_json::json;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// A world with one replicated resource, whose promotion takes a few looks.
#[derive(Default)]
struct FakeWorld {
    promotions: AtomicU32,
    looks_since_promotion: AtomicU32,
    stopped: Mutex<bool>,
    record: Mutex<String>,
    fail_switches: AtomicU32,
    lag: Mutex<Option<f64>>,
    traffic: Mutex<u32>,
}

impl FakeWorld {
    fn new() -> Self {
        let w = FakeWorld::default();
        *w.record.lock().unwrap() = "primary.example".into();
        *w.lag.lock().unwrap() = Some(1.0);
        *w.traffic.lock().unwrap() = 100;
        w
    }
}

/// The signals of a regional outage: the health alarms in ALARM, the primary region's
/// API silent, the replicas reporting replication in error.
fn failing_signals(plan: &Plan) -> crate::detection::Readings {
    use crate::detection::{
        AlarmObservation, AlarmState, PrimaryObservation, Reading, Readings, ReplicaObservation,
        ReplicaState, ReplicationStatus,
    };
    Readings {
        alarms: plan
            .failover
            .health_alarms
            .iter()
            .map(|a| AlarmObservation {
                name: a.name.clone(),
                region: plan.alarm_region(a).to_string(),
                reading: Reading::Seen(AlarmState::plain(AlarmValue::Alarm)),
            })
            .collect(),
        primary: replicated(plan)
            .map(|r| PrimaryObservation {
                resource: r.id.clone(),
                reading: Reading::NoAnswer {
                    reason: "connection closed".into(),
                },
            })
            .collect(),
        replicas: replicated(plan)
            .map(|r| ReplicaObservation {
                resource: r.id.clone(),
                region: plan.regions.dr.clone(),
                reading: Reading::Seen(ReplicaState {
                    source: Some("arn:aws:rds:us-east-1:1:db:orders-db".into()),
                    replication: Some(ReplicationStatus {
                        status: "error".into(),
                        normal: Some(false),
                        message: Some("the source cannot be reached".into()),
                    }),
                    lag: vec![],
                }),
            })
            .collect(),
        probes: vec![],
    }
}

#[async_trait]
impl FailoverPort for FakeWorld {
    async fn read_signals(&self, plan: &Plan) -> crate::detection::Readings {
        failing_signals(plan)
    }
    async fn read_target(
        &self,
        _plan: &Plan,
        r: &ProtectedResource,
        change: Option<&str>,
    ) -> TargetFacts {
        let promoted = self.promotions.load(Ordering::SeqCst) > 0;
        let ready = promoted && self.looks_since_promotion.fetch_add(1, Ordering::SeqCst) >= 2;
        let db = |id: &str, endpoint: &str, status: &str, from: Option<&str>| StoreFacts {
            identifier: id.into(),
            region: "r".into(),
            status: status.into(),
            engine: None,
            endpoint: Some(endpoint.into()),
            encrypted: true,
            replicates_from: from.map(str::to_string),
            replicas: vec![],
            point_in_time_recovery: None,
        };
        TargetFacts {
            resource: r.id.clone(),
            primary: Observed::Present(db(
                "orders-db",
                "primary.example",
                if *self.stopped.lock().unwrap() {
                    "stopped"
                } else {
                    "available"
                },
                None,
            )),
            replica: Observed::Present(match (promoted, ready) {
                (false, _) => db("orders-db-dr", "dr.example", "available", Some("orders-db")),
                (true, false) => db("orders-db-dr", "dr.example", "modifying", Some("orders-db")),
                (true, true) => db("orders-db-dr", "dr.example", "available", None),
            }),
            lag_seconds: *self.lag.lock().unwrap(),
            record: Some(Observed::Present(vec![self.record.lock().unwrap().clone()])),
            change: change.map(|_| ChangeState::InSync),
        }
    }
    async fn read_traffic(&self, _plan: &Plan, change: Option<&str>) -> TrafficFacts {
        TrafficFacts {
            primary_percent: Some(*self.traffic.lock().unwrap()),
            change: change.map(|_| ChangeState::InSync),
        }
    }
    async fn set_traffic(&self, _plan: &Plan, primary_percent: u32) -> Result<String, AwsError> {
        *self.traffic.lock().unwrap() = primary_percent;
        Ok("T1".into())
    }
    async fn promote(&self, _plan: &Plan, _r: &ProtectedResource) -> Result<(), AwsError> {
        self.promotions.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn fence(&self, _plan: &Plan, _r: &ProtectedResource) -> Result<FenceOutcome, AwsError> {
        *self.stopped.lock().unwrap() = true;
        Ok(FenceOutcome::Stopped)
    }
    async fn switch_record(
        &self,
        _plan: &Plan,
        _r: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError> {
        if self.fail_switches.load(Ordering::SeqCst) > 0 {
            self.fail_switches.fetch_sub(1, Ordering::SeqCst);
            return Err(AwsError {
                service: "route53",
                operation: "ChangeResourceRecordSets",
                resource: "x".into(),
                failure: AwsFailure::Unreachable,
                code: None,
                message: "connection reset".into(),
            });
        }
        *self.record.lock().unwrap() = endpoint.to_string();
        Ok("C1".into())
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

struct Fixture {
    plan: Plan,
    world: FakeWorld,
    state: MemoryStateStore,
    notifier: RecordingNotifier,
    reports: MemoryReports,
    clock: ManualClock,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            plan: parse_plan(include_str!("../../../../infra/plans/local.json")).unwrap(),
            world: FakeWorld::new(),
            state: MemoryStateStore::default(),
            notifier: RecordingNotifier::default(),
            reports: MemoryReports::default(),
            clock: ManualClock(Mutex::new(t0())),
        }
    }
    fn run(&self) -> FailoverRun<'_> {
        FailoverRun {
            plan: &self.plan,
            port: &self.world,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &self.clock,
        }
    }
    fn invocation(&self, id: &str, minutes: i64) -> Invocation {
        let now = self.clock.now();
        Invocation {
            request_id: id.into(),
            now,
            deadline: now + Duration::minutes(minutes),
        }
    }
    async fn run_phase(&self) -> String {
        state::load::<DrDocument>(&self.state, &dr_key(&self.plan))
            .await
            .unwrap()
            .map_or_else(|| "Normal".to_string(), |d| d.value.state.phase())
    }
    async fn doc(&self) -> DrDocument {
        state::load::<DrDocument>(&self.state, &dr_key(&self.plan))
            .await
            .unwrap()
            .unwrap()
            .value
    }
}

fn alarm_event() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../../events/failover-alarm.json")).unwrap()
}

#[tokio::test]
async fn an_alarm_runs_the_whole_failover_in_one_invocation_polling_the_waits() {
    let f = Fixture::new();
    let reply = f
        .run()
        .handle(&alarm_event(), &f.invocation("req-1", 15))
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 1);
    assert_eq!(*f.world.record.lock().unwrap(), "dr.example");
    assert!(*f.world.stopped.lock().unwrap());
    assert!(
        reply
            .report
            .as_deref()
            .unwrap()
            .starts_with("memory://lifeboat-local/failover/")
    );
    let doc = f.doc().await;
    assert_eq!(doc.lease, None);
    let timeline = f.state.entries("lifeboat-local");
    let actions: Vec<&str> = timeline.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"failover.promote") && actions.contains(&"failover.complete"),
        "{actions:?}"
    );
    assert_eq!(
        timeline
            .iter()
            .filter(|e| {
                e.action == "failover.promote"
                    && e.resource.is_some()
                    && e.outcome != state::Outcome::Intended
            })
            .count(),
        1
    );
    assert!(
        f.notifier
            .sent
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.subject == "failed over to the DR region")
    );
    // The same alarm delivered again changes nothing.
    let again = f
        .run()
        .handle(&alarm_event(), &f.invocation("req-2", 15))
        .await
        .unwrap();
    assert_eq!(again.phase, "FailedOver");
    assert!(
        again.steps[0].contains("cooldown") || again.steps[0].contains("already failed over"),
        "{:?}",
        again.steps
    );
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn twenty_concurrent_invocations_promote_once_and_the_others_say_why() {
    let f = Fixture::new();
    let runs: Vec<_> = (0..20)
        .map(|i| {
            let f = &f;
            async move {
                f.run()
                    .handle(&alarm_event(), &f.invocation(&format!("req-{i}"), 15))
                    .await
            }
        })
        .collect();
    let replies = futures::future::join_all(runs).await;
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 1);
    for r in &replies {
        let r = r.as_ref().unwrap();
        assert!(!r.steps.is_empty());
    }
    assert!(matches!(f.doc().await.state, DrState::FailedOver(_)));
}

#[tokio::test]
async fn a_crash_after_promotion_and_before_dns_resumes_on_the_next_tick() {
    let f = Fixture::new();
    f.world.fail_switches.store(1, Ordering::SeqCst);
    // The first invocation promotes and fences, then the DNS call fails.
    let first = f
        .run()
        .handle(&alarm_event(), &f.invocation("req-1", 15))
        .await
        .unwrap();
    assert!(
        first.steps.iter().any(|s| s.contains("action failed")),
        "{:?}",
        first.steps
    );
    // The executor kept going: the next look retried the switch.
    assert_eq!(first.phase, "FailedOver", "{:?}", first.steps);
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 1);

    // A crash proper: the invocation stops while holding the lease (its deadline is
    // short); the next tick after the deadline takes over and finishes.
    let f = Fixture::new();
    let held = DrDocument {
        state: DrState::default(),
        lease: Some(Lease {
            holder: "crashed".into(),
            until: t0() + Duration::seconds(20),
        }),
        ..Default::default()
    };
    state::save(&f.state, &dr_key(&f.plan), &held, None, t0())
        .await
        .unwrap();
    let blocked = f
        .run()
        .handle(&alarm_event(), &f.invocation("req-2", 15))
        .await
        .unwrap();
    assert!(
        blocked.steps[0].contains("another invocation (crashed) is acting"),
        "{:?}",
        blocked.steps
    );
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 0);
    f.clock.sleep(std::time::Duration::from_secs(30)).await;
    let resumed = f
        .run()
        .handle(&alarm_event(), &f.invocation("req-3", 15))
        .await
        .unwrap();
    assert_eq!(resumed.phase, "FailedOver", "{:?}", resumed.steps);
}

#[tokio::test]
async fn polling_stops_before_the_deadline_and_a_tick_resumes() {
    let f = Fixture::new();
    // A deadline 35 s away leaves room for a few seconds of polling only (30 s margin).
    let short = Invocation {
        deadline: f.clock.now() + Duration::seconds(35),
        ..f.invocation("req-1", 1)
    };
    let first = f.run().handle(&alarm_event(), &short).await.unwrap();
    assert!(first.phase.starts_with("FailingOver/"), "{}", first.phase);
    assert!(first.steps.last().unwrap().contains("deadline is near"));
    let tick: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/failover-tick.json")).unwrap();
    let done = f
        .run()
        .handle(&tick, &f.invocation("req-2", 15))
        .await
        .unwrap();
    assert_eq!(done.phase, "FailedOver", "{:?}", done.steps);
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refusals_are_errors_that_change_nothing() {
    let f = Fixture::new();
    *f.world.lag.lock().unwrap() = Some(900.0);
    let err = f
        .run()
        .handle(&alarm_event(), &f.invocation("req-1", 15))
        .await
        .unwrap_err();
    assert!(matches!(err, FailoverError::Refused(_)), "{err}");
    assert!(
        err.to_string()
            .contains("more than the plan's maximum of 30 s"),
        "{err}"
    );
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 0);
    let err = f
        .run()
        .handle(&json!({"action": "approve"}), &f.invocation("req-2", 15))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing awaits approval"), "{err}");
    let err = f
        .run()
        .handle(&json!({"action": "force"}), &f.invocation("req-3", 15))
        .await
        .unwrap_err();
    assert!(matches!(err, FailoverError::BadInput(_)));
    assert_eq!(err.retry(), Retry::NonRetryable);
    // Force overrides the guard, on the record.
    let reply = f
        .run()
        .handle(
            &json!({"action": "force", "reason": "INC-7"}),
            &f.invocation("req-4", 15),
        )
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver");
    assert!(
        f.state
            .entries("lifeboat-local")
            .iter()
            .any(|e| e.action == "failover.force" && e.detail.contains("INC-7"))
    );
}

/// Every action the port saw, in the order taken, against the timeline: each was preceded
/// by its intent entry (committed before it was taken).
fn assert_every_action_had_its_intent_first(f: &Fixture) {
    let timeline = f.state.entries("lifeboat-local");
    let intents = |action: &str| {
        timeline
            .iter()
            .filter(|e| e.action == action && e.outcome == state::Outcome::Intended)
            .count() as u32
    };
    let promotions = f.world.promotions.load(Ordering::SeqCst);
    assert!(
        intents("failover.promote") >= promotions,
        "{promotions} promotions, timeline {timeline:#?}"
    );
    if *f.world.stopped.lock().unwrap() {
        assert!(intents("failover.fence") >= 1, "fenced without an entry");
    }
    if *f.world.record.lock().unwrap() == "dr.example" {
        assert!(
            intents("failover.switch-dns") >= 1,
            "DNS switched without an entry"
        );
    }
}

#[tokio::test]
async fn a_throttled_state_table_means_no_action_without_its_audit_entry() {
    let tick: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/failover-tick.json")).unwrap();
    // Every point at which the table can refuse a run of commits, and how many.
    for skip in 0..10 {
        for refuse in 1..4 {
            let f = Fixture::new();
            f.state.throttle_commits(skip, refuse);
            let mut phase = String::from("Normal");
            for n in 0..12 {
                // Lambda retries the alarm's failed invocation until it is taken.
                let event = if phase == "Normal" {
                    alarm_event()
                } else {
                    tick.clone()
                };
                let result = f
                    .run()
                    .handle(&event, &f.invocation(&format!("req-{n}"), 15))
                    .await;
                match result {
                    Ok(reply) => phase = reply.phase,
                    // The table refused: the invocation fails retryably, nothing acted
                    // on an unwritten entry.
                    Err(e) => {
                        assert_eq!(e.retry(), Retry::Retryable, "{e}");
                        phase = f.run_phase().await;
                    }
                }
                assert_every_action_had_its_intent_first(&f);
                // A lease left by a failed commit lapses before the next look. While
                // the alarm is retried, Lambda's retry comes a minute later (and no lease
                // is held before the failover starts): its fire time stays within the
                // detection window.
                let wait = if phase == "Normal" { 60 } else { 180 };
                f.clock.sleep(std::time::Duration::from_secs(wait)).await;
            }
            assert_eq!(phase, "FailedOver", "skip {skip}, refuse {refuse}");
            assert_eq!(
                f.world.promotions.load(Ordering::SeqCst),
                1,
                "skip {skip}, refuse {refuse}: one promotion"
            );
        }
    }
}

#[tokio::test]
async fn a_refused_intent_commit_takes_no_action() {
    let f = Fixture::new();
    f.state.throttle_commits_recording("failover.promote");
    let err = f
        .run()
        .handle(&alarm_event(), &f.invocation("req-1", 15))
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::Retryable, "{err}");
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 0);
    assert!(
        f.state
            .entries("lifeboat-local")
            .iter()
            .all(|e| e.action != "failover.promote"),
        "nothing written of a step that was not taken"
    );
}

/// The fake world, with a promotion call during which the invocation is frozen: its
/// clock jumps past its lease before the call returns.
struct Freezing<'a> {
    world: &'a FakeWorld,
    clock: &'a ManualClock,
}

#[async_trait]
impl FailoverPort for Freezing<'_> {
    async fn read_signals(&self, plan: &Plan) -> crate::detection::Readings {
        self.world.read_signals(plan).await
    }
    async fn read_target(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        change: Option<&str>,
    ) -> TargetFacts {
        self.world.read_target(plan, r, change).await
    }
    async fn read_traffic(&self, plan: &Plan, change: Option<&str>) -> TrafficFacts {
        self.world.read_traffic(plan, change).await
    }
    async fn set_traffic(&self, plan: &Plan, primary_percent: u32) -> Result<String, AwsError> {
        self.world.set_traffic(plan, primary_percent).await
    }
    async fn promote(&self, plan: &Plan, r: &ProtectedResource) -> Result<(), AwsError> {
        *self.clock.0.lock().unwrap() += Duration::seconds(200);
        self.world.promote(plan, r).await
    }
    async fn fence(&self, plan: &Plan, r: &ProtectedResource) -> Result<FenceOutcome, AwsError> {
        self.world.fence(plan, r).await
    }
    async fn switch_record(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError> {
        self.world.switch_record(plan, r, endpoint).await
    }
}

#[tokio::test]
async fn an_invocation_frozen_past_its_lease_cannot_commit_and_acts_no_more() {
    let f = Fixture::new();
    let frozen = Freezing {
        world: &f.world,
        clock: &f.clock,
    };
    let run = FailoverRun {
        port: &frozen,
        ..f.run()
    };
    let err = run
        .handle(&alarm_event(), &f.invocation("req-a", 15))
        .await
        .unwrap_err();
    assert!(matches!(err, FailoverError::LeaseLost), "{err}");
    // It did not go on to fence or switch; its promotion's intent is on the record, its
    // outcome (never committed) is not.
    assert!(!*f.world.stopped.lock().unwrap());
    assert_eq!(*f.world.record.lock().unwrap(), "primary.example");
    let timeline = f.state.entries("lifeboat-local");
    let promote: Vec<_> = timeline
        .iter()
        .filter(|e| e.action == "failover.promote" && e.resource.is_some())
        .map(|e| e.outcome)
        .collect();
    assert_eq!(promote, [state::Outcome::Intended]);
    // The next invocation finds the lease lapsed, re-reads the world and finishes,
    // without promoting again.
    let tick: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/failover-tick.json")).unwrap();
    let reply = f
        .run()
        .handle(&tick, &f.invocation("req-b", 15))
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    assert_eq!(f.world.promotions.load(Ordering::SeqCst), 1);
}

/// A promotion call that never answers.
struct Hung<'a>(&'a FakeWorld);

#[async_trait]
impl FailoverPort for Hung<'_> {
    async fn read_signals(&self, plan: &Plan) -> crate::detection::Readings {
        self.0.read_signals(plan).await
    }
    async fn read_target(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        change: Option<&str>,
    ) -> TargetFacts {
        self.0.read_target(plan, r, change).await
    }
    async fn read_traffic(&self, plan: &Plan, change: Option<&str>) -> TrafficFacts {
        self.0.read_traffic(plan, change).await
    }
    async fn set_traffic(&self, plan: &Plan, primary_percent: u32) -> Result<String, AwsError> {
        self.0.set_traffic(plan, primary_percent).await
    }
    async fn promote(&self, _plan: &Plan, _r: &ProtectedResource) -> Result<(), AwsError> {
        std::future::pending().await
    }
    async fn fence(&self, plan: &Plan, r: &ProtectedResource) -> Result<FenceOutcome, AwsError> {
        self.0.fence(plan, r).await
    }
    async fn switch_record(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError> {
        self.0.switch_record(plan, r, endpoint).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_action_is_given_up_inside_its_lease_and_its_commit_goes_through() {
    let f = Fixture::new();
    let hung = Hung(&f.world);
    let run = FailoverRun {
        port: &hung,
        ..f.run()
    };
    // The deadline is near: the lease ends with it, 31 s away (the poll margin is 30 s).
    let reply = run
        .handle(
            &alarm_event(),
            &Invocation {
                request_id: "req-a".into(),
                now: f.clock.now(),
                deadline: f.clock.now() + Duration::seconds(31),
            },
        )
        .await
        .unwrap();
    assert!(
        reply
            .steps
            .iter()
            .any(|s| s.contains("given up before the lease lapsed")),
        "{:#?}",
        reply.steps
    );
    // Released, and on the record as given up.
    assert_eq!(f.doc().await.lease, None);
    let timeline = f.state.entries("lifeboat-local");
    assert!(timeline.iter().any(|e| e.action == "failover.promote"
        && e.outcome == state::Outcome::Failed
        && e.detail.contains("given up")));
}

#[tokio::test]
async fn a_refused_command_is_on_the_timeline_and_a_throttled_table_does_not_fail_it() {
    let f = Fixture::new();
    let err = f
        .run()
        .handle(&json!({"action": "approve"}), &f.invocation("req-1", 15))
        .await
        .unwrap_err();
    assert!(matches!(err, FailoverError::Refused(_)), "{err}");
    let refused: Vec<AuditEntry> = f
        .state
        .entries("lifeboat-local")
        .into_iter()
        .filter(|e| e.action == "failover.refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0].outcome, Outcome::Refused);
    assert!(
        refused[0].detail.contains("nothing awaits approval"),
        "{}",
        refused[0].detail
    );
    // The table refusing every write: still the refusal, not a state error.
    f.state.throttle_commits(0, 100);
    let err = f
        .run()
        .handle(&json!({"action": "approve"}), &f.invocation("req-2", 15))
        .await
        .unwrap_err();
    assert!(matches!(err, FailoverError::Refused(_)), "{err}");
    assert_eq!(err.retry(), Retry::NonRetryable);
}

#[tokio::test]
async fn the_game_days_acknowledgement_ends_a_cooldown_and_is_success_without_one() {
    use crate::gameday::run::DrCommands;
    let f = Fixture::new();
    // No DR state at all: nothing to acknowledge, nothing written.
    f.run()
        .acknowledge(&f.invocation("ack-0", 15))
        .await
        .unwrap();
    assert!(
        state::load::<DrDocument>(&f.state, &dr_key(&f.plan))
            .await
            .unwrap()
            .is_none()
    );
    f.run()
        .handle(&alarm_event(), &f.invocation("req-1", 15))
        .await
        .unwrap();
    assert!(crate::failover::cooldown_runs(
        &f.doc().await.state,
        f.clock.now()
    ));
    f.run()
        .acknowledge(&f.invocation("ack-1", 15))
        .await
        .unwrap();
    assert!(!crate::failover::cooldown_runs(
        &f.doc().await.state,
        f.clock.now()
    ));
    let acks = |f: &Fixture| {
        f.state
            .entries("lifeboat-local")
            .iter()
            .filter(|e| e.action == "failover.ack")
            .count()
    };
    assert_eq!(acks(&f), 1);
    // Acknowledged already: success again, and no second acknowledgement.
    f.run()
        .acknowledge(&f.invocation("ack-2", 15))
        .await
        .unwrap();
    assert_eq!(acks(&f), 1);
}
