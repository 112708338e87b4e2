use super::*;
use crate::state::memory::MemoryStateStore;
use proptest::prelude::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
#[error("the handler refused")]
struct Refused;

impl Classify for Refused {
    fn retry(&self) -> Retry {
        Retry::NonRetryable
    }
}

fn invocation(request_id: &str) -> Invocation {
    Invocation {
        request_id: request_id.into(),
        now: Utc::now(),
        deadline: Utc::now() + chrono::Duration::seconds(30),
    }
}

#[test]
fn an_id_is_one_to_max_visible_characters() {
    for good in [
        "INC-1234-approve",
        "3f1c2a9e-6d4b-4e0f-9a51-0c7d2b8e4f13",
        "x",
        "ünïcødé/ok",
    ] {
        assert_eq!(CommandId::parse(&json!(good)).unwrap().as_str(), good);
    }
    let long = "a".repeat(MAX_LEN);
    assert!(CommandId::parse(&json!(long)).is_ok());
    for (bad, says) in [
        (json!(""), "is empty"),
        (json!(" "), "blank or invisible"),
        (json!("INC 1234"), "blank or invisible"),
        (json!("a\u{200B}b"), "blank or invisible"),
        (json!("a\nb"), "blank or invisible"),
        (json!("a".repeat(MAX_LEN + 1)), "129 characters long"),
        (json!(12), "is a number, not a string"),
        (json!(null), "is null, not a string"),
        (json!(["x"]), "is an array, not a string"),
    ] {
        let problem = CommandId::parse(&bad).unwrap_err();
        assert!(problem.contains(says), "{bad}: {problem}");
    }
}

#[test]
fn the_id_is_taken_out_of_a_state_changing_command_only() {
    let mut request = json!({"action": "approve", "command_id": "INC-1-approve"});
    let id = take_id(Function::Failover, &mut request).unwrap().unwrap();
    assert_eq!(id.key(Function::Failover), "command/failover/INC-1-approve");
    assert_eq!(request, json!({"action": "approve"}));

    let mut request = json!({"resources": ["orders-db"], "command_id": "snap-1"});
    assert!(take_id(Function::Snapshot, &mut request).unwrap().is_some());
    assert_eq!(request, json!({"resources": ["orders-db"]}));

    let mut request = json!({"action": "status"});
    assert_eq!(take_id(Function::Failover, &mut request).unwrap(), None);
    let mut not_an_object = json!([{"command_id": "x"}]);
    assert_eq!(
        take_id(Function::Failover, &mut not_an_object).unwrap(),
        None
    );

    for (function, request, says) in [
        (
            Function::Failover,
            json!({"action": "status", "command_id": "x"}),
            "{\"action\": \"approve\"}, {\"action\": \"force\"}",
        ),
        (
            Function::Readiness,
            json!({"action": "readiness", "command_id": "x"}),
            "the readiness report changes nothing",
        ),
        (
            Function::Snapshot,
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "command_id": "x"}),
            "snapshot now",
        ),
        (
            Function::Failback,
            json!({"action": "status", "command_id": "x"}),
            "{\"action\": \"start\"}",
        ),
    ] {
        let mut request = request;
        let e = take_id(function, &mut request).unwrap_err();
        assert!(matches!(e, CommandError::NotACommand { .. }), "{e}");
        assert_eq!(e.retry(), Retry::NonRetryable);
        let text = e.to_string();
        assert!(
            text.contains(says)
                && text.contains("send it without `command_id`")
                && text.contains("Nothing was done"),
            "{text}"
        );
    }
    let mut request = json!({"action": "approve", "command_id": "a b"});
    let e = take_id(Function::Failover, &mut request).unwrap_err();
    assert!(matches!(e, CommandError::BadId { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("the failover function's `command_id` is \"a b\""),
        "{e}"
    );
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_and_another_command_under_the_id_is_refused() {
    let store = MemoryStateStore::default();
    let commands = Commands {
        function: Function::Failover,
        plan: "orders",
        state: &store,
    };
    let acted = AtomicUsize::new(0);
    let handler = |request: Value, i: Invocation| {
        let n = acted.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Refused>(json!({"did": request, "run": n, "request_id": i.request_id})) }
    };
    let approve = json!({"action": "approve", "command_id": "INC-7-approve"});
    let first = commands
        .run(approve.clone(), invocation("r1"), &handler)
        .await
        .unwrap();
    assert_eq!(
        first,
        json!({"did": {"action": "approve"}, "run": 0, "request_id": "r1"})
    );
    // Another invocation (a CLI retry has a new request id), keys in another order.
    let again = json!({"command_id": "INC-7-approve", "action": "approve"});
    let second = commands
        .run(again, invocation("r2"), &handler)
        .await
        .unwrap();
    assert_eq!(second, first);
    assert_eq!(acted.load(Ordering::SeqCst), 1);

    let force = json!({"action": "force", "reason": "x", "command_id": "INC-7-approve"});
    let e = commands
        .run(force, invocation("r3"), &handler)
        .await
        .unwrap_err();
    assert_eq!(e.retry(), Retry::NonRetryable);
    assert!(e.to_string().contains("command_id \"INC-7-approve\" was already used for a different command to the failover function"), "{e}");
    assert_eq!(acted.load(Ordering::SeqCst), 1);

    // The same id to another function is another command.
    let other = Commands {
        function: Function::Failback,
        ..commands
    };
    let start = json!({"action": "start", "command_id": "INC-7-approve"});
    other.run(start, invocation("r4"), &handler).await.unwrap();
    // Without an id, every invocation acts.
    for _ in 0..2 {
        commands
            .run(json!({"action": "approve"}), invocation("r5"), &handler)
            .await
            .unwrap();
    }
    assert_eq!(acted.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_failed_command_can_be_sent_again() {
    let store = MemoryStateStore::default();
    let commands = Commands {
        function: Function::Recovery,
        plan: "orders",
        state: &store,
    };
    let calls = AtomicUsize::new(0);
    let handler = |_: Value, _: Invocation| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(Refused)
            } else {
                Ok(json!({"done": n}))
            }
        }
    };
    let discard = json!({"action": "discard", "recovery": "r", "command_id": "d-1"});
    let e = commands
        .run(discard.clone(), invocation("a"), &handler)
        .await
        .unwrap_err();
    assert!(matches!(e, Failed::Handler(Refused)));
    assert_eq!(
        commands
            .run(discard.clone(), invocation("b"), &handler)
            .await
            .unwrap(),
        json!({"done": 1})
    );
    assert_eq!(
        commands
            .run(discard, invocation("c"), &handler)
            .await
            .unwrap(),
        json!({"done": 1})
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_repeat_while_the_first_runs_waits_for_its_answer() {
    let store = MemoryStateStore::default();
    let commands = Commands {
        function: Function::Failback,
        plan: "orders",
        state: &store,
    };
    let acted = AtomicUsize::new(0);
    let handler = |_: Value, i: Invocation| {
        acted.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, Refused>(json!({"answered_by": i.request_id}))
        }
    };
    let start = json!({"action": "start", "command_id": "fb-1"});
    let (a, b) = tokio::join!(
        commands.run(start.clone(), invocation("a"), &handler),
        commands.run(start.clone(), invocation("b"), &handler),
    );
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(acted.load(Ordering::SeqCst), 1);

    // One whose deadline comes first says so instead of waiting past it.
    let slow = |_: Value, _: Invocation| async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok::<_, Refused>(json!({}))
    };
    let pause = json!({"action": "pause", "command_id": "fb-2"});
    let mut short = invocation("d");
    short.deadline = short.now + chrono::Duration::seconds(6);
    let (first, second) =
        tokio::join!(commands.run(pause.clone(), invocation("c"), &slow), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            commands.run(pause.clone(), short, &slow).await
        });
    assert!(first.is_ok());
    let e = second.unwrap_err();
    assert_eq!(e.retry(), Retry::Retryable);
    assert!(
        e.to_string()
            .contains("still being carried out by another invocation"),
        "{e}"
    );
}

proptest! {
    #[test]
    fn any_string_is_an_id_exactly_when_short_and_visible(text in ".{0,140}") {
        let parsed = CommandId::parse(&json!(text));
        let ok = text.chars().count() <= MAX_LEN && crate::request::is_visible_token(&text);
        prop_assert_eq!(parsed.is_ok(), ok);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.key(Function::Recovery), format!("command/recovery/{text}"));
        }
    }

    #[test]
    fn taking_the_id_removes_only_it(
        action in prop::sample::select(vec!["approve", "force", "cancel", "ack", "game-day", "status", "game-day-status"]),
        reason in proptest::option::of(".{0,20}"),
        id in "[A-Za-z0-9-]{1,40}",
    ) {
        let mut request = json!({"action": action, "command_id": id});
        if let Some(r) = &reason {
            request["reason"] = json!(r);
        }
        let mut without = request.clone();
        without.as_object_mut().unwrap().remove("command_id");
        let taken = take_id(Function::Failover, &mut request);
        if Function::Failover.commands().contains(&action) {
            let taken = taken.unwrap().unwrap();
            prop_assert_eq!(taken.as_str(), id.as_str());
            prop_assert_eq!(request, without);
        } else {
            let refused = matches!(taken, Err(CommandError::NotACommand { .. }));
            prop_assert!(refused);
        }
    }
}
