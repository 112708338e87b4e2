//! Operator commands with a `command_id`, through the entry every deployed function
//! uses (`lifeboat::function::answer`: the command layer, then the function's handler
//! with its real AWS adapters) against the emulator: the same command sent twice at
//! once (a CLI retry and its original) acts once and both get the same answer; the same
//! id with another command is refused and changes nothing.

use crate::requests::observe;
use crate::support::{FailoverEdges, SnapshotEdges, invocation, set_alarm, world};
use aws_sdk_cloudwatch::types::StateValue;
use lifeboat::command::Commands;
use lifeboat::function::{Invocation, answer};
use lifeboat::routing::Function;
use lifeboat::state::StateStore;
use serde_json::{Value, json};

/// Finish every transient state, then hold the account's clock.
async fn at_rest(account: &harness::Account) {
    account.settle().await.unwrap();
    account.set_time_scale(1.0).await.unwrap();
}

#[tokio::test]
async fn a_forced_failover_sent_twice_at_once_with_one_command_id_acts_once() {
    let (account, plan, world) = world().await;
    let edges = FailoverEdges::new(&account, &plan, &world).await;
    let function = &edges.function();
    let state = &edges.state;
    let handler = |p: Value, i: Invocation| async move { function.handle(&p, &i).await };
    let commands = Commands {
        function: Function::Failover,
        plan: &plan.name,
        state,
    };
    set_alarm(
        &world.clients.dr.cloudwatch,
        "orders-db-primary-unhealthy",
        StateValue::Alarm,
    )
    .await;

    let force = json!({"action": "force", "reason": "INC-77: primary region lost", "command_id": "INC-77-force"});
    let (first, second) = tokio::join!(
        answer(&commands, force.clone(), invocation("cli-first"), &handler),
        answer(&commands, force.clone(), invocation("cli-retry"), &handler),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second);
    assert_eq!(first["phase"], "FailedOver", "{first}");
    let timeline = state.timeline(&plan.name, None).await.unwrap();
    let forced = |timeline: &[lifeboat::state::AuditEntry]| {
        timeline
            .iter()
            .filter(|e| e.action == "failover.force")
            .count()
    };
    assert_eq!(forced(&timeline), 1, "{timeline:#?}");

    // Sent again later (an operator re-running it): the first answer, nothing done. The
    // clock stops first, so that whatever changes from here was done by the function.
    at_rest(&account).await;
    let before = observe(&world).await;
    let again = answer(&commands, force.clone(), invocation("re-run"), &handler)
        .await
        .unwrap();
    assert_eq!(again, first);
    // The same id with another command, or on a read: refused, naming it.
    for (request, says) in [
        (
            json!({"action": "force", "reason": "another incident", "command_id": "INC-77-force"}),
            "command_id \"INC-77-force\" was already used for a different command to the failover function",
        ),
        (
            json!({"action": "cancel", "command_id": "INC-77-force"}),
            "command_id \"INC-77-force\" was already used",
        ),
        (
            json!({"action": "status", "command_id": "INC-78-status"}),
            "takes `command_id` only with a command that changes something",
        ),
        (
            json!({"action": "ack", "command_id": "INC 78"}),
            "`command_id` is \"INC 78\", with a blank or invisible character",
        ),
    ] {
        let e = answer(&commands, request.clone(), invocation("other"), &handler)
            .await
            .expect_err(&request.to_string());
        assert_eq!(
            e.error_type, "NonRetryable",
            "{request}: {}",
            e.error_message
        );
        assert!(
            e.error_message.contains(says),
            "{request}: {}",
            e.error_message
        );
    }
    assert_eq!(
        observe(&world).await,
        before,
        "a repeat or a refusal changed the account"
    );
    assert_eq!(forced(&state.timeline(&plan.name, None).await.unwrap()), 1);
}

#[tokio::test]
async fn a_snapshot_request_sent_twice_at_once_with_one_command_id_snapshots_once() {
    let (account, plan, world) = world().await;
    let edges = SnapshotEdges::new(&account, &plan, &world).await;
    let run = &edges.run();
    let handler = |p: Value, i: Invocation| async move { run.handle(&p, &i).await };
    let commands = Commands {
        function: Function::Snapshot,
        plan: &plan.name,
        state: &edges.state,
    };
    let manual =
        |id: &str| json!({"resources": ["orders-db"], "tier": "monthly", "command_id": id});
    let taken = || async {
        world
            .clients
            .primary
            .rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .send()
            .await
            .unwrap()
            .db_snapshots()
            .len()
    };
    let before = taken().await;
    let runs: Vec<_> = (0..4)
        .map(|n| {
            let (commands, handler, request) = (&commands, &handler, manual("snap-now-1"));
            async move { answer(commands, request, invocation(&format!("r{n}")), handler).await }
        })
        .collect();
    let replies = futures::future::join_all(runs).await;
    let first = replies[0].clone().unwrap();
    for r in &replies {
        assert_eq!(r.as_ref().unwrap(), &first);
    }
    assert_eq!(taken().await, before + 1);

    at_rest(&account).await;
    let unchanged = observe(&world).await;
    let again = answer(&commands, manual("snap-now-1"), invocation("r8"), &handler)
        .await
        .unwrap();
    assert_eq!(again, first);
    let e = answer(
        &commands,
        json!({"resources": ["orders-db"], "tier": "daily", "command_id": "snap-now-1"}),
        invocation("r9"),
        &handler,
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type, "NonRetryable");
    assert!(
        e.error_message.contains("\"snap-now-1\" was already used"),
        "{}",
        e.error_message
    );
    assert_eq!(observe(&world).await, unchanged);
}
