//! The failback function's executor with its real AWS adapter, against the emulator: a
//! real failover first, then failback through RDS (retire, cross-region replica,
//! promotion, stop), Route 53 (writer record, weighted traffic) and CloudWatch gates.
//!
//! Lifeboat's clock and the account's emulated clock move together and only when the
//! test moves them, so bake times and record TTLs are honoured without waiting for them.

use crate::support::{notifier, put_replica_lag, reports, set_alarm, state_store, world};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Duration, Utc};
use harness::realism::Fault;
use harness::{Account, World};
use lifeboat::aws::{
    AwsFailback, AwsFailover, DynamoStateStore, S3Reports, SnsNotifier, describe_instance,
    read_cname,
};
use lifeboat::dr::DrState;
use lifeboat::dr::run::{Clock, DrDocument, DrError, DrReply, SystemClock, dr_key};
use lifeboat::failback::Step;
use lifeboat::failback::run::FailbackRun;
use lifeboat::failover::run::FailoverRun;
use lifeboat::function::Invocation;
use lifeboat::plan::Plan;
use lifeboat::posture::StoreFacts;
use lifeboat::state::Outcome::Intended;
use lifeboat::state::{self, Outcome, StateStore};
use serde_json::{Value, json};
use std::sync::Mutex;

const HEALTH: &str = "orders-db-primary-unhealthy";
const GATE: &str = "orders-api-5xx";
const RECORD: &str = "orders-db.db.lifeboat.internal.";

/// Lifeboat's clock in lockstep with the account's emulated clock: sleeping moves both.
struct LockstepClock {
    account: Account,
    now: Mutex<DateTime<Utc>>,
}

#[async_trait]
impl Clock for LockstepClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
    async fn sleep(&self, d: std::time::Duration) {
        *self.now.lock().unwrap() += Duration::from_std(d).unwrap();
        self.account
            .advance_clock(d.as_secs_f64())
            .await
            .expect("the control API answers");
    }
}

struct Fixture {
    account: Account,
    plan: Plan,
    world: World,
    aws: AwsFailback,
    state: DynamoStateStore,
    notifier: SnsNotifier,
    reports: S3Reports,
    clock: LockstepClock,
    /// How long each invocation may run (Lambda's timeout): long invocations poll
    /// through several steps, short ones stop at each wait.
    invocation_seconds: Mutex<i64>,
}

impl Fixture {
    /// A world that failed over for real (alarm, promotion, DNS, traffic to DR), whose
    /// incident was acknowledged and whose primary region is healthy again; from here
    /// on time moves only with the test.
    async fn failed_over() -> Self {
        let (account, plan, world) = world().await;
        let f = Fixture {
            aws: AwsFailback::new(&plan, &world.clients, &account.settings()).await,
            state: state_store(&world),
            notifier: notifier(&world),
            reports: reports(&world),
            clock: LockstepClock {
                account: account.clone(),
                now: Mutex::new(Utc::now()),
            },
            invocation_seconds: Mutex::new(900),
            account,
            plan,
            world,
        };
        f.lag("us-west-2", "orders-db-dr", &[(0, 1.0)]).await;
        f.alarm(HEALTH, StateValue::Alarm).await;
        // The primary fails where the DR side can see it: its region's RDS API stops
        // describing it, a second signal beside the alarm (detection's quorum).
        crate::support::primary_api_down(&f.account).await;
        let failover = AwsFailover::new(&f.plan, &f.world.clients, &f.account.settings()).await;
        let run = FailoverRun {
            plan: &f.plan,
            port: &failover,
            state: &f.state,
            notifier: &f.notifier,
            reports: &f.reports,
            clock: &SystemClock,
        };
        let mut alarm: Value =
            serde_json::from_str(include_str!("../../events/failover-alarm.json")).unwrap();
        alarm["detail"]["state"]["timestamp"] = json!(Utc::now().to_rfc3339());
        let now = Utc::now();
        let invocation = Invocation {
            request_id: "failover".into(),
            now,
            deadline: now + Duration::minutes(15),
        };
        let reply = run.handle(&alarm, &invocation).await.unwrap();
        assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
        f.account.clear_faults().await.unwrap();
        run.handle(&json!({"action": "ack"}), &invocation)
            .await
            .unwrap();
        f.alarm(HEALTH, StateValue::Ok).await;
        f.account.set_time_scale(1.0).await.unwrap();
        f.account.settle().await.unwrap();
        *f.clock.now.lock().unwrap() = Utc::now();
        f
    }

    fn run(&self) -> FailbackRun<'_> {
        FailbackRun {
            plan: &self.plan,
            port: &self.aws,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &self.clock,
        }
    }

    async fn send(&self, payload: &Value, id: &str) -> Result<DrReply, DrError> {
        let now = self.clock.now();
        let invocation = Invocation {
            request_id: id.into(),
            now,
            deadline: now + Duration::seconds(*self.invocation_seconds.lock().unwrap()),
        };
        self.run().handle(payload, &invocation).await
    }

    async fn command(&self, action: &str) -> Result<DrReply, DrError> {
        self.send(&json!({ "action": action }), action).await
    }

    /// A minute passes, then the schedule's tick arrives.
    async fn tick(&self) -> DrReply {
        self.clock.sleep(std::time::Duration::from_secs(60)).await;
        let tick: Value =
            serde_json::from_str(include_str!("../../events/failback-tick.json")).unwrap();
        let at = self.clock.now();
        self.send(&tick, &format!("tick-{}", at.timestamp()))
            .await
            .unwrap()
    }

    /// Ticks a minute apart until `done` holds of the state (at most three hours).
    async fn tick_until(&self, what: &str, done: impl Fn(&DrState) -> bool) -> DrReply {
        for _ in 0..180 {
            let reply = self.tick().await;
            if done(&reply.state) {
                return reply;
            }
        }
        panic!(
            "{what}: not reached; the state is {}",
            self.dr_state().await.phase()
        );
    }

    async fn alarm(&self, name: &str, value: StateValue) {
        set_alarm(&self.world.clients.dr.cloudwatch, name, value).await;
    }

    /// Publish `ReplicaLag` datapoints for `instance` in `region`.
    async fn lag(&self, region: &str, instance: &str, points: &[(i64, f64)]) {
        let clients = self.world.clients.region(region).unwrap();
        put_replica_lag(&clients.cloudwatch, instance, points).await;
    }

    async fn primary(&self) -> Option<StoreFacts> {
        describe_instance(&self.world.clients.primary.rds, "us-east-1", "orders-db")
            .await
            .unwrap()
    }

    async fn dr(&self) -> Option<StoreFacts> {
        describe_instance(&self.world.clients.dr.rds, "us-west-2", "orders-db-dr")
            .await
            .unwrap()
    }

    async fn record(&self) -> String {
        let values = read_cname(&self.world.clients.route53, &self.world.zone_id, RECORD)
            .await
            .unwrap()
            .unwrap()
            .values;
        assert_eq!(values.len(), 1, "{values:?}");
        values[0].0.trim_end_matches('.').to_string()
    }

    async fn traffic(&self) -> u32 {
        lifeboat::aws::traffic::read_traffic(&self.world.clients.route53, &self.plan, None)
            .await
            .primary_percent
            .expect("the weighted records agree")
    }

    async fn dr_state(&self) -> DrState {
        state::load::<DrDocument>(&self.state, &dr_key(&self.plan))
            .await
            .unwrap()
            .map(|d| d.value.state)
            .unwrap_or_default()
    }

    async fn audited(&self, action: &str) -> usize {
        self.state
            .timeline(&self.plan.name, None)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == action && e.resource.is_some() && e.outcome != Intended)
            .count()
    }

    async fn snapshot_exists(&self, region: &str, id: &str) -> bool {
        self.world
            .clients
            .region(region)
            .unwrap()
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await
            .is_ok_and(|out| !out.db_snapshots().is_empty())
    }
}

fn at_step(step: Step) -> impl Fn(&DrState) -> bool {
    move |s| matches!(s, DrState::FailingBack(f) if f.step == step)
}

fn writer_endpoint(db: &StoreFacts) -> String {
    db.endpoint.clone().unwrap()
}

#[tokio::test]
async fn failback_moves_the_writer_then_traffic_in_baked_stages_and_leaves_the_plan_protected() {
    let f = Fixture::failed_over().await;
    let dr_writer = f.dr().await.unwrap();
    assert_eq!(f.record().await, writer_endpoint(&dr_writer));
    assert_eq!(f.traffic().await, 0);

    let started = f.command("start").await.unwrap();
    assert!(
        started.phase.starts_with("FailingBack/"),
        "{:?}",
        started.steps
    );
    // The old primary is retired with a final snapshot; a replica of the DR writer takes
    // its identifier in the primary region.
    f.tick_until("catch-up", at_step(Step::AwaitCatchUp)).await;
    f.lag("us-east-1", "orders-db", &[(0, 0.0)]).await;
    let mut weights_seen: Vec<(DateTime<Utc>, u32)> = vec![(f.clock.now(), 0)];
    let mut promoted_at = None;
    let mut held = vec![];
    for _ in 0..180 {
        let reply = f.tick().await;
        let traffic = f.traffic().await;
        let primary = f.primary().await;
        if traffic > 0 {
            // Traffic reaches the primary region only once the writer is there.
            let p = primary.as_ref().unwrap();
            assert!(
                p.replicates_from.is_none() && p.status == "available",
                "{p:?}"
            );
        }
        if promoted_at.is_none() && primary.is_some_and(|p| p.replicates_from.is_none()) {
            promoted_at = Some(f.clock.now());
        }
        if let DrState::FailingBack(fb) = &reply.state
            && let Some(shift) = &fb.shift
        {
            held = shift.held.clone();
        }
        if weights_seen.last().map(|(_, w)| *w) != Some(traffic) {
            weights_seen.push((f.clock.now(), traffic));
        }
        if reply.phase == "Normal" {
            assert!(
                reply
                    .report
                    .as_deref()
                    .is_some_and(|r| r.starts_with("s3://")),
                "{:?}",
                reply.report
            );
            break;
        }
    }
    assert_eq!(f.dr_state().await.phase(), "Normal");
    // 0 → 10 → 50 → 100, the first two held at least the plan's bake time.
    let weights: Vec<u32> = weights_seen.iter().map(|(_, w)| *w).collect();
    assert_eq!(weights, [0, 10, 50, 100], "{weights_seen:?}");
    assert_eq!(
        held.iter().take(2).map(|(w, _)| *w).collect::<Vec<_>>(),
        [10, 50]
    );
    let bake = 60 * i64::from(f.plan.failback.bake_minutes);
    assert!(
        bake > 0 && held[..2].iter().all(|(_, secs)| *secs >= bake),
        "{held:?}"
    );
    assert!(promoted_at.unwrap() <= weights_seen[1].0);

    // The writer is the plan's primary, the record names it, and a fresh DR replica
    // protects it.
    let primary = f.primary().await.unwrap();
    assert_eq!(
        (primary.status.as_str(), primary.replicates_from.as_deref()),
        ("available", None)
    );
    assert_eq!(f.record().await, writer_endpoint(&primary));
    let dr = f.dr().await.unwrap();
    assert_eq!(dr.status, "available");
    assert!(
        dr.replicates_from
            .as_deref()
            .is_some_and(|s| s.contains("orders-db")),
        "{dr:?}"
    );
    assert_eq!(f.traffic().await, 100);
    assert_eq!(f.audited("failback.promote").await, 1);
    // Both retired writers left their final snapshots.
    let DrState::Normal { last, .. } = f.dr_state().await else {
        unreachable!()
    };
    assert!(last.unwrap().contains("failback-"));
    let snapshots: Vec<String> = f
        .state
        .timeline(&f.plan.name, None)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "failback.retire" && e.outcome != Intended)
        .filter_map(|e| {
            e.detail
                .split_whitespace()
                .find(|p| p.contains("-retired-"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    assert!(
        f.snapshot_exists("us-east-1", &snapshots[0]).await,
        "{}",
        snapshots[0]
    );
    assert!(
        f.snapshot_exists("us-west-2", &snapshots[1]).await,
        "{}",
        snapshots[1]
    );
    // The plan is back to its normal posture: a failover alarm would promote again.
    let status = f.command("status").await.unwrap();
    assert_eq!(status.phase, "Normal");
}

#[tokio::test]
async fn the_writer_waits_for_catch_up_and_the_record_ttl_before_promotion() {
    let f = Fixture::failed_over().await;
    f.command("start").await.unwrap();
    f.tick_until("catch-up", at_step(Step::AwaitCatchUp)).await;
    // The primary-region replica is 40 s behind (a datapoint of two minutes ago, so
    // that the caught-up one published later is the newest): the writer does not move.
    f.lag("us-east-1", "orders-db", &[(120, 40.0)]).await;
    for _ in 0..60 {
        if f.primary().await.is_some_and(|p| p.status == "available") {
            break;
        }
        f.tick().await;
    }
    for _ in 0..3 {
        let reply = f.tick().await;
        assert!(
            matches!(&reply.state, DrState::FailingBack(fb) if fb.step == Step::AwaitCatchUp),
            "{:?}",
            reply.steps
        );
        assert!(
            reply.steps.iter().any(|s| s.contains("40 s behind")),
            "{:?}",
            reply.steps
        );
    }
    assert!(f.primary().await.unwrap().replicates_from.is_some());
    // Caught up: the record is fenced first, and promotion waits out its 60 s TTL.
    f.lag("us-east-1", "orders-db", &[(0, 0.0)]).await;
    let fenced = f
        .tick_until(
            "promotion",
            |s| matches!(s, DrState::FailingBack(fb) if fb.targets[0].promote_issued_at.is_some()),
        )
        .await;
    let DrState::FailingBack(fb) = &fenced.state else {
        unreachable!()
    };
    let t = &fb.targets[0];
    let synced = t.fence_synced_at.expect("the fence change was seen INSYNC");
    assert!(
        t.promote_issued_at.unwrap() >= synced + Duration::seconds(60),
        "{t:?}"
    );
    assert_eq!(t.lag_at_move, Some(0.0));
}

#[tokio::test]
async fn a_gate_alarm_at_50_rolls_back_to_10_and_pauses_until_resumed() {
    let f = Fixture::failed_over().await;
    f.command("start").await.unwrap();
    f.tick_until("catch-up", at_step(Step::AwaitCatchUp)).await;
    f.lag("us-east-1", "orders-db", &[(0, 0.0)]).await;
    for _ in 0..180 {
        f.tick().await;
        if f.traffic().await == 50 {
            break;
        }
    }
    assert_eq!(f.traffic().await, 50);
    f.alarm(GATE, StateValue::Alarm).await;
    let rolled = f.tick().await;
    assert!(
        rolled.phase.ends_with("(paused)"),
        "{} {:?}",
        rolled.phase,
        rolled.steps
    );
    assert_eq!(f.traffic().await, 10);
    // Paused: half an hour of ticks moves nothing, even with the gate back to OK.
    f.alarm(GATE, StateValue::Ok).await;
    for _ in 0..30 {
        let r = f.tick().await;
        assert!(r.phase.ends_with("(paused)"));
    }
    assert_eq!(f.traffic().await, 10);
    f.command("resume").await.unwrap();
    f.tick_until("Normal", |s| matches!(s, DrState::Normal { .. }))
        .await;
    assert_eq!(f.traffic().await, 100);
    assert!(
        f.state
            .timeline(&f.plan.name, None)
            .await
            .unwrap()
            .iter()
            .any(|e| e.action == "failback.gate" && e.detail.contains(GATE))
    );
}

#[tokio::test]
async fn resume_with_the_gate_still_in_alarm_stays_paused_and_moves_no_weight() {
    let f = Fixture::failed_over().await;
    f.command("start").await.unwrap();
    f.tick_until("catch-up", at_step(Step::AwaitCatchUp)).await;
    f.lag("us-east-1", "orders-db", &[(0, 0.0)]).await;
    for _ in 0..180 {
        f.tick().await;
        if f.traffic().await == 50 {
            break;
        }
    }
    f.alarm(GATE, StateValue::Alarm).await;
    let rolled = f.tick().await;
    assert!(rolled.phase.ends_with("(paused)"), "{}", rolled.phase);
    assert_eq!(f.traffic().await, 10);
    // The gate still fires: resume is refused, saying why, and nothing moves.
    let doc = || async {
        state::load::<DrDocument>(&f.state, &dr_key(&f.plan))
            .await
            .unwrap()
            .unwrap()
            .value
    };
    let before = doc().await;
    let err = f.command("resume").await.unwrap_err();
    assert!(
        matches!(&err, DrError::Refused(why) if why.contains(&format!("gate alarm {GATE} is in ALARM"))),
        "{err}"
    );
    assert_eq!(f.traffic().await, 10, "weights unchanged");
    assert_eq!(doc().await, before, "the failback stays paused");
    assert!(
        f.state
            .timeline(&f.plan.name, None)
            .await
            .unwrap()
            .iter()
            .any(|e| e.action == "failback.resume-refused" && e.detail.contains(GATE))
    );
    // Once the gate is OK, resume goes on to Normal.
    f.alarm(GATE, StateValue::Ok).await;
    f.command("resume").await.unwrap();
    f.tick_until("Normal", |s| matches!(s, DrState::Normal { .. }))
        .await;
    assert_eq!(f.traffic().await, 100);
}

#[tokio::test]
async fn abort_before_the_writer_moves_returns_the_record_to_the_dr_writer() {
    let f = Fixture::failed_over().await;
    // Short invocations stop at each wait, so the operator can act in between.
    *f.invocation_seconds.lock().unwrap() = 45;
    let dr_endpoint = writer_endpoint(&f.dr().await.unwrap());
    f.command("start").await.unwrap();
    f.tick_until("catch-up", at_step(Step::AwaitCatchUp)).await;
    f.lag("us-east-1", "orders-db", &[(0, 0.0)]).await;
    // The record is fenced onto the read-only primary-region replica …
    f.tick_until("fence", at_step(Step::AwaitFence)).await;
    let primary = f.primary().await.unwrap();
    assert_eq!(f.record().await, writer_endpoint(&primary));
    // … and the operator aborts before promotion.
    let aborted = f.command("abort").await.unwrap();
    assert_eq!(aborted.phase, "FailedOver", "{:?}", aborted.steps);
    assert_eq!(f.record().await, dr_endpoint);
    assert_eq!(f.traffic().await, 0);
    let dr = f.dr().await.unwrap();
    assert_eq!(
        (dr.status.as_str(), dr.replicates_from.as_deref()),
        ("available", None)
    );
    // The primary-region replica stays: it protects and the next failback starts from it.
    assert!(f.primary().await.unwrap().replicates_from.is_some());
    assert_eq!(f.audited("failback.promote").await, 0);
    // A second failback starts from there and keeps that replica.
    f.command("start").await.unwrap();
    f.tick_until("Normal", |s| matches!(s, DrState::Normal { .. }))
        .await;
    assert_eq!(
        f.audited("failback.retire").await,
        2,
        "old primary once, old DR writer once"
    );
}

#[tokio::test]
async fn abort_after_the_writer_moved_sends_all_traffic_to_it_and_finishes() {
    let f = Fixture::failed_over().await;
    f.command("start").await.unwrap();
    f.tick_until("catch-up", at_step(Step::AwaitCatchUp)).await;
    f.lag("us-east-1", "orders-db", &[(0, 0.0)]).await;
    for _ in 0..180 {
        f.tick().await;
        if f.traffic().await == 10 {
            break;
        }
    }
    let aborted = f.command("abort").await.unwrap();
    assert!(
        aborted
            .steps
            .iter()
            .any(|s| s.contains("traffic follows it there")),
        "{:?}",
        aborted.steps
    );
    f.tick_until("Normal", |s| matches!(s, DrState::Normal { .. }))
        .await;
    assert_eq!(f.traffic().await, 100);
    assert!(f.dr().await.unwrap().replicates_from.is_some());
}

#[tokio::test]
async fn concurrent_ticks_and_throttled_calls_still_promote_exactly_once() {
    let f = Fixture::failed_over().await;
    f.account
        .inject(
            Fault::throttle("rds")
                .operation("PromoteReadReplica")
                .count(2),
        )
        .await
        .unwrap();
    f.command("start").await.unwrap();
    f.tick_until("catch-up", at_step(Step::AwaitCatchUp)).await;
    f.lag("us-east-1", "orders-db", &[(0, 0.0)]).await;
    let tick: Value =
        serde_json::from_str(include_str!("../../events/failback-tick.json")).unwrap();
    for minute in 0..180 {
        f.clock.sleep(std::time::Duration::from_secs(60)).await;
        let runs: Vec<_> = (0..4)
            .map(|i| {
                let f = &f;
                let tick = &tick;
                async move { f.send(tick, &format!("m{minute}-{i}")).await }
            })
            .collect();
        for reply in futures::future::join_all(runs).await {
            reply.unwrap();
        }
        if matches!(f.dr_state().await, DrState::Normal { .. }) {
            break;
        }
    }
    assert_eq!(f.dr_state().await.phase(), "Normal");
    let timeline = f.state.timeline(&f.plan.name, None).await.unwrap();
    let promotes: Vec<_> = timeline
        .iter()
        .filter(|e| e.action == "failback.promote" && e.resource.is_some() && e.outcome != Intended)
        .collect();
    // Throttled beyond the SDK's own retries: on the record, and retried by a later look.
    assert!(
        promotes
            .iter()
            .any(|e| e.outcome == Outcome::Failed && e.detail.contains("Throttling")),
        "{promotes:#?}"
    );
    assert_eq!(
        promotes
            .iter()
            .filter(|e| e.outcome == Outcome::Started)
            .count(),
        1,
        "exactly one promotion: {promotes:#?}"
    );
    assert_eq!(f.audited("failback.retire").await, 2);
    assert_eq!(f.audited("failback.create-replica").await, 2);
}

#[tokio::test]
async fn start_is_refused_while_the_primary_region_is_unhealthy_or_unreachable() {
    let f = Fixture::failed_over().await;
    let before = f.dr_state().await;
    f.alarm(HEALTH, StateValue::Alarm).await;
    let err = f.command("start").await.unwrap_err();
    assert!(matches!(err, DrError::Refused(_)), "{err}");
    assert!(
        err.to_string().contains(&format!("{HEALTH} is ALARM")),
        "{err}"
    );
    f.alarm(HEALTH, StateValue::Ok).await;
    let outage = f
        .account
        .inject(Fault::region_outage("us-east-1"))
        .await
        .unwrap();
    // Refused: the health alarm there cannot be read, nor the region's databases.
    let err = f.command("start").await.unwrap_err();
    assert!(matches!(err, DrError::Refused(_)), "{err}");
    assert!(
        err.to_string()
            .contains("the primary region does not answer")
            || err
                .to_string()
                .contains("orders-endpoint-health-check is unreadable"),
        "{err}"
    );
    f.account.remove_fault(&outage).await.unwrap();
    let err = f
        .send(&json!({"action": "failback-now"}), "bad")
        .await
        .unwrap_err();
    assert!(matches!(err, DrError::BadInput(_)), "{err}");
    assert_eq!(f.dr_state().await, before);
    assert_eq!(
        f.primary().await.unwrap().status,
        "stopped",
        "nothing was changed"
    );
}

#[tokio::test]
async fn aurora_global_database_roles_are_read_as_writer_and_replica() {
    let account = harness::LocalAws::from_env().fresh_account();
    let mut plan_json: Value =
        serde_json::from_str(include_str!("../../infra/plans/local.json")).unwrap();
    plan_json["resources"][1]["replica"] =
        json!({"identifier": "billing-db-dr", "global_cluster": "billing-global"});
    let plan = harness::plan_in_account(
        &lifeboat::plan::parse_plan(&plan_json.to_string()).unwrap(),
        &account,
    );
    let settings = account.settings();
    let clients = lifeboat::aws::AwsClients::build(&settings, "us-east-1", "us-west-2", None).await;
    clients
        .primary
        .rds
        .create_global_cluster()
        .global_cluster_identifier("billing-global")
        .engine("aurora-postgresql")
        .send()
        .await
        .unwrap();
    for (rds, id) in [
        (&clients.primary.rds, "billing-db"),
        (&clients.dr.rds, "billing-db-dr"),
    ] {
        rds.create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .global_cluster_identifier("billing-global")
            .master_username("admin_user")
            .master_user_password("emulated-only-pw")
            .storage_encrypted(true)
            .send()
            .await
            .unwrap();
    }
    account.settle().await.unwrap();
    let billing = plan.resource("billing-db").unwrap();
    let failback = AwsFailback::new(&plan, &clients, &settings).await;
    use lifeboat::failback::run::FailbackPort;
    let facts = failback.read_target(&plan, billing, None).await;
    let primary = facts.primary.present().unwrap();
    let dr = facts.dr.present().unwrap();
    assert_eq!(
        primary.replicates_from, None,
        "the first member is the writer"
    );
    assert!(
        dr.replicates_from
            .as_deref()
            .is_some_and(|w| w.contains(":us-east-1:") && w.ends_with(":cluster:billing-db")),
        "the DR member replicates from the writer: {dr:?}"
    );
    // The failover adapter reads the same roles.
    let failover = AwsFailover::new(&plan, &clients, &settings).await;
    use lifeboat::failover::run::FailoverPort;
    let facts = failover.read_target(&plan, billing, None).await;
    assert!(facts.replica.present().unwrap().replicates_from.is_some());
    assert!(facts.primary.present().unwrap().replicates_from.is_none());
}
