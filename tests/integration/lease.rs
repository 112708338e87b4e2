//! No invocation acts under a lease that has lapsed: two real concurrent failover
//! invocations, the first stuck in a hung promotion call (the realism layer's `hang`)
//! until its lease has lapsed. The second acts alone once the lease lapses; the first
//! cannot commit and does nothing more; the replica is promoted once.

use crate::audit_trail::SkippingClock;
use crate::support::{notifier, put_replica_lag, reports, set_alarm, state_store, world};
use aws_sdk_cloudwatch::types::StateValue;
use chrono::Duration;
use harness::realism::Fault;
use lifeboat::aws::AwsFailover;
use lifeboat::dr::run::Clock;
use lifeboat::failover::run::{DrDocument, FailoverError, FailoverRun, dr_key};
use lifeboat::function::Invocation;
use lifeboat::state::{self, Outcome, StateStore};
use serde_json::{Value, json};

/// How long the promotion call hangs before its answer.
const HANG_SECONDS: f64 = 8.0;

#[tokio::test]
async fn an_invocation_hung_past_its_lease_cannot_commit_and_the_next_acts_alone() {
    let (account, plan, world) = world().await;
    let store = state_store(&world);
    let aws = AwsFailover::new(&plan, &world.clients, &account.settings()).await;
    let (notifier, reports) = (notifier(&world), reports(&world));
    let clock = SkippingClock::default();
    put_replica_lag(&world.clients.dr.cloudwatch, "orders-db-dr", &[(0, 2.0)]).await;
    set_alarm(
        &world.clients.dr.cloudwatch,
        "orders-db-primary-unhealthy",
        StateValue::Alarm,
    )
    .await;
    // The primary down as the detection sees it from the DR side.
    crate::support::primary_api_down(&account).await;
    account
        .inject(
            Fault::hang("rds", HANG_SECONDS)
                .operation("PromoteReadReplica")
                .count(1),
        )
        .await
        .unwrap();
    let run = FailoverRun {
        plan: &plan,
        port: &aws,
        state: &store,
        notifier: &notifier,
        reports: &reports,
        clock: &clock,
    };
    let invocation = |id: &str| {
        let now = clock.now();
        Invocation {
            request_id: id.into(),
            now,
            deadline: now + Duration::minutes(15),
        }
    };
    let mut alarm: Value =
        serde_json::from_str(include_str!("../../events/failover-alarm.json")).unwrap();
    alarm["detail"]["state"]["timestamp"] =
        json!((chrono::Utc::now() - Duration::seconds(20)).to_rfc3339());
    let tick: Value =
        serde_json::from_str(include_str!("../../events/failover-tick.json")).unwrap();
    let lease_of = || async {
        state::load::<DrDocument>(&store, &dr_key(&plan))
            .await
            .unwrap()
            .and_then(|d| d.value.lease)
    };

    let first_invocation = invocation("req-a");
    let first = run.handle(&alarm, &first_invocation);
    let second = async {
        // Wait until the first holds the lease, and is in its hung promotion call.
        let lease = loop {
            if let Some(l) = lease_of().await {
                break l;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(lease.holder, "req-a");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        // While the lease holds, a tick does nothing.
        let early = run.handle(&tick, &invocation("req-b1")).await.unwrap();
        assert!(
            early
                .steps
                .iter()
                .any(|s| s.contains("another invocation (req-a)")),
            "{:#?}",
            early.steps
        );
        // The first is still hung when its lease lapses (as a frozen process would be).
        clock.skip_to(lease.until + Duration::seconds(1));
        run.handle(&tick, &invocation("req-b2")).await
    };
    let (first, second) = tokio::join!(first, second);
    assert!(
        matches!(first, Err(FailoverError::LeaseLost)),
        "the first cannot commit after its lease lapsed: {first:?}"
    );
    let mut phase = second.expect("the second acts").phase;
    for n in 0..10 {
        if phase == "FailedOver" {
            break;
        }
        phase = run
            .handle(&tick, &invocation(&format!("req-c{n}")))
            .await
            .unwrap()
            .phase;
    }
    assert_eq!(phase, "FailedOver");

    // One promotion on the emulator, and one recorded outcome of it: the first
    // invocation's promotion was never committed as its own.
    let transitions = account.transitions().await.unwrap();
    let promotions = transitions
        .transitions
        .iter()
        // A promotion's first step (modifying, then a reboot).
        .filter(|t| t.kind == "promote_read_replica" && t.from == "modifying")
        .count();
    assert_eq!(promotions, 1, "{:#?}", transitions.transitions);
    let timeline = store.timeline(&plan.name, None).await.unwrap();
    let promoted: Vec<_> = timeline
        .iter()
        .filter(|e| e.action == "failover.promote" && e.outcome != Outcome::Intended)
        .collect();
    assert!(promoted.len() <= 1, "{promoted:#?}");
    // Never two actors: every DNS change came after the first invocation's lease lapsed,
    // from the one acting then (the first never got past its hung call).
    let intents: Vec<_> = timeline
        .iter()
        .filter(|e| e.outcome == Outcome::Intended)
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        intents
            .iter()
            .filter(|a| **a == "failover.switch-dns")
            .count(),
        1,
        "{intents:?}"
    );
}
