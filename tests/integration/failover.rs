//! The failover function's executor with its real AWS adapter, against the emulator:
//! CloudWatch alarms, RDS promotion, Route 53, DynamoDB state, SNS.

use crate::support::{
    invocation, notifier, put_replica_lag, reports, set_alarm, state_store, world,
};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Duration, Utc};
use harness::{Account, World};
use lifeboat::aws::{
    AwsFailover, DynamoStateStore, S3Reports, SnsNotifier, describe_instance, read_cname,
};
use lifeboat::dr::{DrState, TrafficFacts};
use lifeboat::error::{AwsError, AwsFailure};
use lifeboat::failover::run::{
    DrDocument, FailoverError, FailoverPort, FailoverReply, FailoverRun, SystemClock, dr_key,
};
use lifeboat::failover::{AlarmReading, FenceOutcome, TargetFacts};
use lifeboat::function::Invocation;
use lifeboat::plan::{Plan, ProtectedResource};
use lifeboat::state::Outcome::Intended;
use lifeboat::state::{self, StateStore};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

const ALARM: &str = "orders-db-primary-unhealthy";

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

    /// The primary goes down: the health alarm goes to ALARM in CloudWatch.
    async fn primary_down(&self) {
        set_alarm(&self.world.clients.dr.cloudwatch, ALARM, StateValue::Alarm).await;
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
    // The alarm event says ALARM, but CloudWatch says OK when re-read.
    let reply = f
        .invoke(&alarm_event("evt-1", Utc::now()), "req-1")
        .await
        .unwrap();
    assert_eq!(reply.phase, "Normal", "{:?}", reply.steps);
    assert!(reply.steps.iter().any(|s| s.contains("back to OK")));
    assert_eq!(f.promotions().await, 0);
}

/// The real adapter, except that the first DNS switch "crashes" the invocation.
struct CrashBeforeDns<'a> {
    inner: &'a AwsFailover,
    crashes: AtomicU32,
}

#[async_trait]
impl FailoverPort for CrashBeforeDns<'_> {
    async fn read_alarms(&self, plan: &Plan) -> Vec<AlarmReading> {
        self.inner.read_alarms(plan).await
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
    use harness::realism::Fault;
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
