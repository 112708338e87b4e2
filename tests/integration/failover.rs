//! The failover function's executor with its real AWS adapter, against the emulator:
//! CloudWatch alarms, RDS promotion, Route 53, DynamoDB state, SNS; and detection as a
//! regional disaster and its partial cousins show it (a quorum of independent signals,
//! the window, INSUFFICIENT_DATA, suppressed composite alarms).

use crate::support::{
    invocation, notifier, put_replica_lag, reports, set_alarm, state_store, world,
};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Duration, Utc};
use harness::realism::Fault;
use harness::{Account, World};
use lifeboat::aws::{
    AwsFailover, DynamoStateStore, S3Reports, SnsNotifier, describe_instance, read_cname,
};
use lifeboat::detection::Readings;
use lifeboat::dr::{DrState, TrafficFacts};
use lifeboat::error::{AwsError, AwsFailure};
use lifeboat::failover::run::Clock;
use lifeboat::failover::run::{
    DrDocument, FailoverError, FailoverPort, FailoverReply, FailoverRun, SystemClock, dr_key,
};
use lifeboat::failover::{FenceOutcome, TargetFacts};
use lifeboat::function::Invocation;
use lifeboat::plan::{Plan, ProtectedResource};
use lifeboat::state::Outcome::Intended;
use lifeboat::state::{self, StateStore};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

const ALARM: &str = "orders-db-primary-unhealthy";

/// Real time plus whatever the executor has waited: sleeping moves it on at once.
#[derive(Default)]
struct FastClock(Mutex<Duration>);

#[async_trait]
impl Clock for FastClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().unwrap()
    }
    async fn sleep(&self, d: std::time::Duration) {
        *self.0.lock().unwrap() += Duration::from_std(d).unwrap();
        tokio::task::yield_now().await;
    }
}

struct Fixture {
    account: Account,
    plan: Plan,
    world: World,
    aws: AwsFailover,
    state: DynamoStateStore,
    notifier: SnsNotifier,
    reports: S3Reports,
}

impl Fixture {
    async fn new() -> Self {
        let (account, plan, world) = world().await;
        Self::with_plan(account, plan, world).await
    }

    async fn with_plan(account: Account, plan: Plan, world: World) -> Self {
        let aws = AwsFailover::new(&plan, &world.clients, &account.settings()).await;
        Fixture {
            state: state_store(&world),
            notifier: notifier(&world),
            reports: reports(&world),
            account,
            plan,
            world,
            aws,
        }
    }

    fn run<'a>(&'a self, port: &'a dyn FailoverPort) -> FailoverRun<'a> {
        FailoverRun {
            plan: &self.plan,
            port,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &SystemClock,
        }
    }

    async fn invoke(&self, payload: &Value, id: &str) -> Result<FailoverReply, FailoverError> {
        self.run(&self.aws).handle(payload, &invocation(id)).await
    }

    /// Invoke with a clock that jumps ahead whenever the executor waits, so a detection
    /// window of minutes passes in the seconds the looks take.
    async fn invoke_fast(&self, payload: &Value, id: &str) -> Result<FailoverReply, FailoverError> {
        let clock = FastClock::default();
        FailoverRun {
            clock: &clock,
            ..self.run(&self.aws)
        }
        .handle(payload, &invocation(id))
        .await
    }

    /// Change the plan (and the adapter that reads it).
    async fn replan(&mut self, change: impl FnOnce(&mut Plan)) {
        change(&mut self.plan);
        self.aws =
            AwsFailover::new(&self.plan, &self.world.clients, &self.account.settings()).await;
    }

    /// The primary goes down: its health alarm goes to ALARM, and the primary region's
    /// RDS API fails to describe it (HTTP 503) while the rest of the region answers, so
    /// the old primary can still be fenced.
    async fn primary_down(&self) {
        set_alarm(&self.world.clients.dr.cloudwatch, ALARM, StateValue::Alarm).await;
        crate::support::primary_api_down(&self.account).await;
    }

    /// The primary region's faults end (so the test can read it).
    async fn recover(&self) {
        self.account.clear_faults().await.unwrap();
    }

    async fn actions(&self) -> Vec<String> {
        self.state
            .timeline(&self.plan.name, None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    /// CloudWatch has a recent ReplicaLag value for the DR replica.
    async fn replica_lag(&self, seconds: f64) {
        put_replica_lag(
            &self.world.clients.dr.cloudwatch,
            "orders-db-dr",
            &[(0, seconds)],
        )
        .await;
    }

    async fn record(&self) -> Vec<String> {
        read_cname(
            &self.world.clients.route53,
            &self.world.zone_id,
            "orders-db.db.lifeboat.internal.",
        )
        .await
        .unwrap()
        .unwrap()
        .values
        .into_iter()
        .map(|(v, _)| v)
        .collect()
    }

    async fn promotions(&self) -> usize {
        self.state
            .timeline(&self.plan.name, None)
            .await
            .unwrap()
            .iter()
            .filter(|e| {
                e.action == "failover.promote" && e.resource.is_some() && e.outcome != Intended
            })
            .count()
    }

    async fn dr_state(&self) -> DrState {
        state::load::<DrDocument>(&self.state, &dr_key(&self.plan))
            .await
            .unwrap()
            .map(|d| d.value.state)
            .unwrap_or_default()
    }
}

fn alarm_event(id: &str, at: DateTime<Utc>) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("../../events/failover-alarm.json")).unwrap();
    e["id"] = json!(id);
    e["detail"]["state"]["timestamp"] = json!(at.to_rfc3339());
    e
}

#[tokio::test]
async fn an_alarm_fails_over_to_the_promoted_replica_and_points_dns_at_it() {
    let f = Fixture::new().await;
    f.replica_lag(3.0).await;
    f.primary_down().await;
    let dr_endpoint = describe_instance(&f.world.clients.dr.rds, "us-west-2", "orders-db-dr")
        .await
        .unwrap()
        .unwrap()
        .endpoint
        .unwrap();
    assert_ne!(f.record().await, vec![format!("{dr_endpoint}.")]);

    let reply = f
        .invoke(
            &alarm_event("evt-1", Utc::now() - Duration::seconds(20)),
            "req-1",
        )
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    // The replica is a standalone writer; the record points at it; the old primary is stopped.
    let replica = describe_instance(&f.world.clients.dr.rds, "us-west-2", "orders-db-dr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replica.replicates_from, None);
    assert_eq!(f.record().await, vec![dr_endpoint.clone()]);
    f.recover().await;
    let old = describe_instance(&f.world.clients.primary.rds, "us-east-1", "orders-db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, "stopped");
    // Application traffic follows the writer: the weighted records send it all to DR.
    let traffic =
        lifeboat::aws::traffic::read_traffic(&f.world.clients.route53, &f.plan, None).await;
    assert_eq!(traffic.primary_percent, Some(0));
    let DrState::FailedOver(done) = f.dr_state().await else {
        panic!()
    };
    assert_eq!(done.measurement.data_loss_seconds, Some(3.0));
    assert!(done.measurement.rto_seconds >= 20);
    assert!(done.measurement.detection_seconds >= 19);
    assert_eq!(done.targets[0].fence, Some(FenceOutcome::Stopped));
    // The timeline ends with the measured RTO; the report is in S3.
    let timeline = f.state.timeline(&f.plan.name, None).await.unwrap();
    let last = timeline
        .iter()
        .rev()
        .find(|e| e.action == "failover.complete")
        .unwrap();
    assert!(
        last.detail.contains("RTO ") && last.detail.contains("Data-loss window 3.0 s"),
        "{}",
        last.detail
    );
    assert!(reply.report.unwrap().contains("/failover/"));
    assert_eq!(f.promotions().await, 1);
}

#[tokio::test]
async fn the_same_alarm_delivered_by_eventbridge_and_by_sns_promotes_once() {
    let f = Fixture::new().await;
    f.replica_lag(1.0).await;
    f.primary_down().await;
    let eb = alarm_event("evt-1", Utc::now());
    f.invoke(&eb, "req-1").await.unwrap();
    f.invoke(&eb, "req-2").await.unwrap();
    let sns: Value =
        serde_json::from_str(include_str!("../../events/failover-alarm-sns.json")).unwrap();
    let reply = f.invoke(&sns, "req-3").await.unwrap();
    assert!(reply.steps[0].contains("cooldown"), "{:?}", reply.steps);
    assert_eq!(f.promotions().await, 1);
}

#[tokio::test]
async fn twenty_concurrent_invocations_cause_one_promotion() {
    let f = Fixture::new().await;
    f.replica_lag(1.0).await;
    f.primary_down().await;
    let event = alarm_event("evt-storm", Utc::now());
    let runs: Vec<_> = (0..20)
        .map(|i| {
            let (f, event) = (&f, &event);
            async move { f.invoke(event, &format!("req-{i}")).await }
        })
        .collect();
    let replies = futures::future::join_all(runs).await;
    for r in &replies {
        assert!(r.is_ok(), "{r:?}");
    }
    assert!(matches!(f.dr_state().await, DrState::FailedOver(_)));
    assert_eq!(f.promotions().await, 1);
    // The ones that did not act said why.
    let idle = replies
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|r| {
            r.steps.iter().any(|s| {
                s.contains("another invocation")
                    || s.contains("already")
                    || s.contains("changed under this invocation")
            })
        })
        .count();
    assert!(idle >= 1);
}

#[tokio::test]
async fn lag_above_the_maximum_refuses_and_force_overrides_on_the_record() {
    let f = Fixture::new().await;
    f.replica_lag(600.0).await;
    f.primary_down().await;
    let before = f.record().await;
    let err = f
        .invoke(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap_err();
    assert!(matches!(err, FailoverError::Refused(_)), "{err}");
    assert!(
        err.to_string()
            .contains("lags 600 s behind, more than the plan's maximum of 30 s"),
        "{err}"
    );
    assert_eq!(f.record().await, before);
    assert_eq!(f.promotions().await, 0);
    let reply = f
        .invoke(
            &json!({"action": "force", "reason": "INC-42: primary region lost"}),
            "req-2",
        )
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:?}", reply.steps);
    let timeline = f.state.timeline(&f.plan.name, None).await.unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e.action == "failover.force" && e.detail.contains("INC-42"))
    );
}

#[tokio::test]
async fn a_missing_replica_refuses_with_a_clear_error_and_changes_nothing() {
    let mut f = Fixture::new().await;
    // The plan names a replica that does not exist. (Deleting the world's cross-region
    // replica instead is not possible: the emulator fails to detach it from its source.)
    if let Some(replica) = f.plan.resources[0].replica.as_mut() {
        replica.identifier = "orders-db-dr-gone".into();
    }
    f.aws = AwsFailover::new(&f.plan, &f.world.clients, &f.account.settings()).await;
    f.primary_down().await;
    let before = f.record().await;
    let err = f
        .invoke(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the DR replica orders-db-dr-gone does not exist in us-west-2"),
        "{err}"
    );
    assert_eq!(f.record().await, before);
    f.recover().await;
    let primary = describe_instance(&f.world.clients.primary.rds, "us-east-1", "orders-db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(primary.status, "available");
}

#[tokio::test]
async fn an_alarm_that_is_not_the_plans_is_ignored_and_cooldown_only_notifies() {
    let f = Fixture::new().await;
    let mut other = alarm_event("evt-x", Utc::now());
    other["detail"]["alarmName"] = json!("cpu-high-on-something-else");
    let reply = f.invoke(&other, "req-1").await.unwrap();
    assert!(reply.steps[0].contains("not one of the plan's health alarms"));
    assert_eq!(f.dr_state().await, DrState::default());

    f.replica_lag(1.0).await;
    f.primary_down().await;
    f.invoke(&alarm_event("evt-1", Utc::now()), "req-2")
        .await
        .unwrap();
    let reply = f
        .invoke(&alarm_event("evt-2", Utc::now()), "req-3")
        .await
        .unwrap();
    assert!(reply.steps[0].contains("in cooldown"), "{:?}", reply.steps);
    // Ack ends the cooldown early.
    let reply = f.invoke(&json!({"action": "ack"}), "req-4").await.unwrap();
    assert!(reply.steps[0].contains("acknowledged"));
    let status = f
        .invoke(&json!({"action": "status"}), "req-5")
        .await
        .unwrap();
    assert!(
        status.steps[0].starts_with("failed over since"),
        "{:?}",
        status.steps
    );
}

#[tokio::test]
async fn an_alarm_back_to_ok_aborts_without_changing_anything() {
    let f = Fixture::new().await;
    f.replica_lag(1.0).await;
    // The alarm event says ALARM, but CloudWatch says OK when re-read, and the primary
    // and its replica say healthy.
    let reply = f
        .invoke(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap();
    assert_eq!(reply.phase, "Normal", "{:?}", reply.steps);
    assert!(
        reply
            .steps
            .iter()
            .any(|s| s.contains("the signals say the primary is healthy")),
        "{:?}",
        reply.steps
    );
    assert_eq!(f.promotions().await, 0);
}

/// The real adapter, except that the first DNS switch "crashes" the invocation.
struct CrashBeforeDns<'a> {
    inner: &'a AwsFailover,
    crashes: AtomicU32,
}

#[async_trait]
impl FailoverPort for CrashBeforeDns<'_> {
    async fn read_signals(&self, plan: &Plan) -> Readings {
        self.inner.read_signals(plan).await
    }
    async fn read_target(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        change: Option<&str>,
    ) -> TargetFacts {
        self.inner.read_target(plan, r, change).await
    }
    async fn read_traffic(&self, plan: &Plan, change: Option<&str>) -> TrafficFacts {
        self.inner.read_traffic(plan, change).await
    }
    async fn set_traffic(&self, plan: &Plan, primary_percent: u32) -> Result<String, AwsError> {
        self.inner.set_traffic(plan, primary_percent).await
    }
    async fn promote(&self, plan: &Plan, r: &ProtectedResource) -> Result<(), AwsError> {
        self.inner.promote(plan, r).await
    }
    async fn fence(&self, plan: &Plan, r: &ProtectedResource) -> Result<FenceOutcome, AwsError> {
        self.inner.fence(plan, r).await
    }
    async fn switch_record(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        endpoint: &str,
    ) -> Result<String, AwsError> {
        if self.crashes.fetch_add(1, Ordering::SeqCst) == 0 {
            // The process dies here: simulated by an error the executor cannot get past in
            // this invocation (its deadline is too near to retry).
            return Err(AwsError {
                service: "route53",
                operation: "ChangeResourceRecordSets",
                resource: r.id.clone(),
                failure: AwsFailure::Unreachable,
                code: None,
                message: "the invocation was killed".into(),
            });
        }
        self.inner.switch_record(plan, r, endpoint).await
    }
}

#[tokio::test]
async fn a_crash_after_promotion_and_before_dns_resumes_on_the_next_tick() {
    let f = Fixture::new().await;
    f.replica_lag(1.0).await;
    f.primary_down().await;
    let crashing = CrashBeforeDns {
        inner: &f.aws,
        crashes: AtomicU32::new(0),
    };
    // Invocations whose deadline leaves no room to poll: each does one step's worth.
    let short = |id: &str| {
        let now = Utc::now();
        Invocation {
            request_id: id.into(),
            now,
            deadline: now + Duration::seconds(31),
        }
    };
    let tick: Value =
        serde_json::from_str(include_str!("../../events/failover-tick.json")).unwrap();
    let _ = f
        .run(&crashing)
        .handle(&alarm_event("evt-1", Utc::now()), &short("req-1"))
        .await;
    // AWS finishes the promotion; the next invocation fences, then dies switching DNS.
    f.account.settle().await.unwrap();
    let _ = f.run(&crashing).handle(&tick, &short("req-crash")).await;
    assert!(
        crashing.crashes.load(Ordering::SeqCst) >= 1,
        "the switch was attempted"
    );
    let replica = describe_instance(&f.world.clients.dr.rds, "us-west-2", "orders-db-dr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replica.replicates_from, None, "promoted before the crash");
    let dr = replica.endpoint.unwrap();
    assert_ne!(
        f.record().await,
        vec![dr.clone()],
        "DNS not switched before the crash"
    );

    // The next tick resumes from the stored step.
    let tick: Value =
        serde_json::from_str(include_str!("../../events/failover-tick.json")).unwrap();
    let reply = f
        .run(&crashing)
        .handle(&tick, &invocation("req-tick"))
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:?}", reply.steps);
    assert_eq!(f.record().await, vec![dr]);
    assert_eq!(f.promotions().await, 1, "not promoted twice");
    let _ = &f.account;
}

#[tokio::test]
async fn with_the_primary_region_down_the_failover_completes_and_fencing_is_recorded_as_best_effort()
 {
    let f = Fixture::new().await;
    f.replica_lag(1.0).await;
    f.primary_down().await;
    // Every call signed for us-east-1 fails as an unreachable endpoint would; Route 53 (a
    // global service) still answers.
    f.account
        .inject(Fault::region_outage("us-east-1"))
        .await
        .unwrap();
    let reply = f
        .invoke(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    let DrState::FailedOver(done) = f.dr_state().await else {
        panic!()
    };
    assert!(
        matches!(
            done.targets[0].fence,
            Some(FenceOutcome::Unreachable { .. })
        ),
        "{:?}",
        done.targets[0].fence
    );
    let timeline = f.state.timeline(&f.plan.name, None).await.unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e.action == "failover.fence" && e.detail.contains("unreachable")),
        "{timeline:#?}"
    );
    // The region comes back with the old primary still a writer: the next tick stops it.
    f.account.clear_faults().await.unwrap();
    let tick: Value =
        serde_json::from_str(include_str!("../../events/failover-tick.json")).unwrap();
    let reply = f.invoke(&tick, "req-2").await.unwrap();
    assert!(
        reply.steps.iter().any(|s| s.contains("fencing it")),
        "{:?}",
        reply.steps
    );
    f.account.settle().await.unwrap();
    let old = describe_instance(&f.world.clients.primary.rds, "us-east-1", "orders-db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, "stopped");
}

#[tokio::test]
async fn promotion_and_dns_take_aws_time_and_the_rto_measures_it() {
    let f = Fixture::new().await;
    f.replica_lag(1.0).await;
    f.primary_down().await;
    let reply = f
        .invoke(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    // The emulator took the promotion through modifying and rebooting, and the change
    // through PENDING: the executor waited, and the time is AWS's in the measurement.
    let promotion = f.account.transitions().await.unwrap();
    let statuses = promotion.statuses("orders-db-dr");
    assert!(statuses.iter().any(|s| s == "modifying"), "{statuses:?}");
    let DrState::FailedOver(done) = f.dr_state().await else {
        panic!()
    };
    let t = &done.targets[0];
    assert!(t.promoted_at.unwrap() > t.promote_issued_at.unwrap());
    assert!(t.dns_synced_at.unwrap() >= t.dns_submitted_at.unwrap());
    assert!(done.measurement.aws_seconds >= 1, "{:?}", done.measurement);
}

#[tokio::test]
async fn a_plan_spelling_its_replica_in_mixed_case_promotes_it_and_switches_dns() {
    // The plan says Orders-DB and Orders-DB-DR; RDS calls them orders-db and orders-db-dr.
    let (account, _, world) = world().await;
    let plan = harness::plan_in_account(&crate::support::mixed_case_plan(), &account);
    let f = Fixture::with_plan(account, plan, world).await;
    f.replica_lag(2.0).await;
    f.primary_down().await;
    let reply = f
        .invoke(
            &alarm_event("evt-case", Utc::now() - Duration::seconds(5)),
            "req-case",
        )
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    let replica = describe_instance(&f.world.clients.dr.rds, "us-west-2", "orders-db-dr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replica.replicates_from, None, "the replica was promoted");
    assert_eq!(f.record().await, vec![replica.endpoint.unwrap()]);
    assert_eq!(f.promotions().await, 1);
}

/// A health alarm in `region` (created as CloudWatch creates one: INSUFFICIENT_DATA) with
/// this TreatMissingData, and the plan naming it.
async fn health_alarm_in(f: &Fixture, name: &str, region: &str, missing: &str) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
    let cw = &f
        .world
        .clients
        .region(region)
        .expect("a client in the region")
        .cloudwatch;
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("Lifeboat/Test")
        .metric_name("Healthy")
        .statistic(Statistic::Minimum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .treat_missing_data(missing)
        .send()
        .await
        .unwrap();
}

fn alarm_ref(name: &str, region: &str) -> lifeboat::plan::AlarmRef {
    lifeboat::plan::AlarmRef {
        name: name.into(),
        region: Some(region.into()),
    }
}

#[tokio::test]
async fn the_primary_region_down_with_its_health_alarm_there_fails_over_without_force() {
    let mut f = Fixture::new().await;
    f.replica_lag(2.0).await;
    // As the README's deployment has it for a Route 53 health-check alarm with the
    // primary in us-east-1: the alarm lives in the region it watches.
    health_alarm_in(&f, "orders-endpoint-unhealthy", "us-east-1", "breaching").await;
    f.replan(|p| {
        p.failover.health_alarms = vec![alarm_ref("orders-endpoint-unhealthy", "us-east-1")]
    })
    .await;
    set_alarm(
        &f.world.clients.primary.cloudwatch,
        "orders-endpoint-unhealthy",
        StateValue::Alarm,
    )
    .await;
    // Then the whole region goes dark, CloudWatch included.
    f.account
        .inject(Fault::region_outage("us-east-1"))
        .await
        .unwrap();
    let mut event = alarm_event("evt-1", Utc::now() - Duration::seconds(20));
    event["detail"]["alarmName"] = json!("orders-endpoint-unhealthy");
    let reply = f.invoke(&event, "req-1").await.unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    let DrState::FailedOver(done) = f.dr_state().await else {
        panic!()
    };
    let c = done
        .detection
        .as_ref()
        .expect("the confirming signals are kept");
    // The silent region counts once; the replica's own view from the DR region is the
    // independent second vote.
    assert_eq!((c.failing_votes, c.quorum), (2, 2), "{c:#?}");
    let replica_view = c
        .signals
        .iter()
        .find(|s| s.signal == "replica view")
        .unwrap();
    assert_eq!(replica_view.verdict, lifeboat::detection::Verdict::Failing);
    assert!(replica_view.detail.contains("error"), "{replica_view:?}");
    assert!(
        done.measurement.detection_seconds >= 20,
        "{:?}",
        done.measurement
    );
    assert_eq!(
        done.measurement.rto_seconds,
        done.measurement.detection_seconds
            + done.measurement.aws_seconds
            + done.measurement.approval_seconds
            + done.measurement.lifeboat_seconds
    );
    // The timeline's confirmation carries what each signal said; the report has it.
    let timeline = f.state.timeline(&f.plan.name, None).await.unwrap();
    let confirm = timeline
        .iter()
        .find(|e| e.action == "failover.confirm")
        .unwrap();
    assert_eq!(
        confirm.data["detection"]["outcome"], "confirmed",
        "{confirm:?}"
    );
    let complete = timeline
        .iter()
        .find(|e| e.action == "failover.complete")
        .unwrap();
    assert!(
        complete.detail.contains("Confirmed by "),
        "{}",
        complete.detail
    );
    assert!(reply.report.unwrap().contains("/failover/"));
    assert_eq!(f.promotions().await, 1);
}

#[tokio::test]
async fn one_alarm_without_a_quorum_promotes_nothing_ends_at_the_window_and_never_resumes() {
    let f = Fixture::new().await;
    f.replica_lag(1.0).await;
    // Only the alarm says failing; the primary and the replica say healthy.
    set_alarm(&f.world.clients.dr.cloudwatch, ALARM, StateValue::Alarm).await;
    let first = alarm_event("evt-1", Utc::now());
    let reply = f.invoke_fast(&first, "req-1").await.unwrap();
    assert_eq!(reply.phase, "Normal", "{:#?}", reply.steps);
    assert_eq!(f.promotions().await, 0);
    let actions = f.actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "failover.confirm-pending")
            .count(),
        1,
        "one note while the verdicts stay the same: {actions:?}"
    );
    assert!(
        actions.contains(&"failover.unconfirmed".to_string()),
        "{actions:?}"
    );
    // A tick later finds nothing to resume.
    let tick: Value =
        serde_json::from_str(include_str!("../../events/failover-tick.json")).unwrap();
    assert_eq!(f.invoke(&tick, "req-2").await.unwrap().phase, "Normal");
    // The same event delivered again, after its window: nothing starts.
    let mut late = first.clone();
    late["detail"]["state"]["timestamp"] = json!((Utc::now() - Duration::minutes(6)).to_rfc3339());
    let reply = f.invoke(&late, "req-3").await.unwrap();
    assert_eq!(reply.phase, "Normal");
    assert!(
        reply.steps[0].contains("longer ago than the detection window"),
        "{:?}",
        reply.steps
    );
    // A new ALARM, the primary really down now: a new incident with its own fire time.
    f.primary_down().await;
    let fired = Utc::now() - Duration::seconds(5);
    let reply = f
        .invoke(&alarm_event("evt-2", fired), "req-4")
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    let DrState::FailedOver(done) = f.dr_state().await else {
        panic!()
    };
    assert_eq!(done.incident, "evt-2");
    assert!(done.measurement.rto_seconds < 120, "{:?}", done.measurement);
}

/// Two health alarms in the DR region: the plan's (set to `first`) and a new one still
/// in INSUFFICIENT_DATA whose missing data breaches.
async fn two_alarms(f: &mut Fixture, first: StateValue, insufficient_data: &str) {
    health_alarm_in(f, "orders-latency", "us-west-2", "breaching").await;
    f.replan(|p| {
        p.failover
            .health_alarms
            .push(alarm_ref("orders-latency", "us-west-2"));
        p.failover.detection.insufficient_data =
            serde_json::from_value(json!(insufficient_data)).unwrap();
    })
    .await;
    set_alarm(&f.world.clients.dr.cloudwatch, ALARM, first).await;
}

#[tokio::test]
async fn ok_beside_insufficient_data_is_never_stuck_past_the_window() {
    let mut f = Fixture::new().await;
    f.replica_lag(1.0).await;
    two_alarms(&mut f, StateValue::Ok, "alarm_setting").await;
    // The plan's alarm fired and is back to OK; the new one breaches on missing data;
    // the primary and its replica are fine: no quorum either way, until the window ends.
    let reply = f
        .invoke_fast(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap();
    assert_eq!(reply.phase, "Normal", "{:#?}", reply.steps);
    assert!(
        f.actions()
            .await
            .contains(&"failover.unconfirmed".to_string())
    );
    assert_eq!(f.promotions().await, 0);
}

#[tokio::test]
async fn alarm_beside_insufficient_data_counts_as_the_plan_says() {
    // The alarm's own TreatMissingData (breaching): two alarms say failing, a quorum.
    let mut f = Fixture::new().await;
    f.replica_lag(1.0).await;
    two_alarms(&mut f, StateValue::Alarm, "alarm_setting").await;
    let reply = f
        .invoke_fast(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    // The plan counting INSUFFICIENT_DATA as unknown: one vote, short of the quorum; it
    // ends at the window with nothing promoted.
    let mut f = Fixture::new().await;
    f.replica_lag(1.0).await;
    two_alarms(&mut f, StateValue::Alarm, "unknown").await;
    let reply = f
        .invoke_fast(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap();
    assert_eq!(reply.phase, "Normal", "{:#?}", reply.steps);
    assert_eq!(f.promotions().await, 0);
}

#[tokio::test]
async fn the_primary_rds_api_down_with_cloudwatch_up_fails_over() {
    let mut f = Fixture::new().await;
    f.replica_lag(1.0).await;
    health_alarm_in(&f, "orders-endpoint-unhealthy", "us-east-1", "breaching").await;
    f.replan(|p| {
        p.failover.health_alarms = vec![alarm_ref("orders-endpoint-unhealthy", "us-east-1")]
    })
    .await;
    set_alarm(
        &f.world.clients.primary.cloudwatch,
        "orders-endpoint-unhealthy",
        StateValue::Alarm,
    )
    .await;
    f.account
        .inject(Fault::region_outage("us-east-1").service("rds"))
        .await
        .unwrap();
    let mut event = alarm_event("evt-1", Utc::now());
    event["detail"]["alarmName"] = json!("orders-endpoint-unhealthy");
    let reply = f.invoke(&event, "req-1").await.unwrap();
    assert_eq!(reply.phase, "FailedOver", "{:#?}", reply.steps);
    let DrState::FailedOver(done) = f.dr_state().await else {
        panic!()
    };
    let c = done.detection.unwrap();
    // The alarm read in ALARM (CloudWatch answered: a vote of its own), the API silent,
    // the replica's replication in error.
    assert_eq!(c.failing_votes, 3, "{c:#?}");
    assert!(
        c.signals
            .iter()
            .all(|s| s.verdict == lifeboat::detection::Verdict::Failing)
    );
}

#[tokio::test]
async fn cloudwatch_down_in_the_primary_region_with_rds_up_does_not_fail_over() {
    let mut f = Fixture::new().await;
    f.replica_lag(1.0).await;
    health_alarm_in(&f, "orders-endpoint-unhealthy", "us-east-1", "breaching").await;
    f.replan(|p| {
        p.failover.health_alarms = vec![alarm_ref("orders-endpoint-unhealthy", "us-east-1")]
    })
    .await;
    set_alarm(
        &f.world.clients.primary.cloudwatch,
        "orders-endpoint-unhealthy",
        StateValue::Alarm,
    )
    .await;
    f.account
        .inject(Fault::region_outage("us-east-1").service("cloudwatch"))
        .await
        .unwrap();
    let mut event = alarm_event("evt-1", Utc::now());
    event["detail"]["alarmName"] = json!("orders-endpoint-unhealthy");
    // The unreadable alarm counts as failing (the plan's default for the primary
    // region), but the primary answers as available and its replica replicates: the
    // monitoring is down, not the database.
    let reply = f.invoke_fast(&event, "req-1").await.unwrap();
    assert_eq!(reply.phase, "Normal", "{:#?}", reply.steps);
    assert_eq!(f.promotions().await, 0);
    let timeline = f.state.timeline(&f.plan.name, None).await.unwrap();
    let ended = timeline
        .iter()
        .find(|e| e.action == "failover.unconfirmed")
        .expect("the unconfirmed end is recorded");
    let signals = ended.data["detection"]["signals"].as_array().unwrap();
    assert!(
        signals
            .iter()
            .any(|s| s["signal"] == "primary API" && s["verdict"] == "healthy"),
        "{signals:#?}"
    );
}

#[tokio::test]
async fn a_suppressed_composite_alarm_does_not_fail_over() {
    let mut f = Fixture::new().await;
    f.replica_lag(1.0).await;
    let cw = f.world.clients.dr.cloudwatch.clone();
    health_alarm_in(&f, "orders-maintenance", "us-west-2", "notBreaching").await;
    cw.put_composite_alarm()
        .alarm_name("orders-primary-composite")
        .alarm_rule(format!("ALARM({ALARM})"))
        .actions_suppressor("orders-maintenance")
        .actions_suppressor_wait_period(0)
        .actions_suppressor_extension_period(0)
        .send()
        .await
        .unwrap();
    f.replan(|p| {
        p.failover.health_alarms = vec![alarm_ref("orders-primary-composite", "us-west-2")]
    })
    .await;
    // The primary is down as well: only the suppression holds the failover back.
    f.primary_down().await;
    set_alarm(&cw, "orders-primary-composite", StateValue::Alarm).await;
    set_alarm(&cw, "orders-maintenance", StateValue::Alarm).await;
    // EventBridge says the actions are suppressed: notified only.
    let mut event = alarm_event("evt-1", Utc::now());
    event["detail"]["alarmName"] = json!("orders-primary-composite");
    event["detail"]["state"]["actionsSuppressedBy"] = json!("Alarm");
    let reply = f.invoke(&event, "req-1").await.unwrap();
    assert_eq!(reply.phase, "Normal", "{:#?}", reply.steps);
    assert!(
        f.actions()
            .await
            .contains(&"failover.suppressed".to_string())
    );
    // An event that does not say so: the alarm read back is suppressed; it ends.
    let mut event = alarm_event("evt-2", Utc::now());
    event["detail"]["alarmName"] = json!("orders-primary-composite");
    let reply = f.invoke(&event, "req-2").await.unwrap();
    assert_eq!(reply.phase, "Normal", "{:#?}", reply.steps);
    assert!(
        reply.steps.iter().any(|s| s.contains("suppressed")),
        "{:?}",
        reply.steps
    );
    assert_eq!(f.promotions().await, 0);
}
