//! The DynamoDB state store against the emulator: versioned writes under contention,
//! idempotency claims, the audit timeline.

use crate::support::{state_store, world};
use chrono::{Duration, TimeZone, Utc};
use lifeboat::error::{Classify, Retry};
use lifeboat::state::{
    self, AuditEntry, Claim, ClaimRequest, Commit, LeaseMark, MachineKey, Outcome, StateError,
    StateStore, payload_hash,
};
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn a_stale_writer_gets_a_conflict_never_a_silent_overwrite() {
    let (_, plan, world) = world().await;
    let store = state_store(&world);
    let key = MachineKey::new(&plan.name, "failover");
    let now = Utc::now();

    assert!(
        state::load::<serde_json::Value>(&store, &key)
            .await
            .unwrap()
            .is_none()
    );
    let v1 = state::save(&store, &key, &json!({"state": "Normal"}), None, now)
        .await
        .unwrap();
    assert_eq!(v1, 1);
    // Creating again (expecting no item) conflicts.
    let again = state::save(&store, &key, &json!({"state": "Other"}), None, now).await;
    assert!(
        matches!(
            again,
            Err(StateError::Conflict {
                expected: None,
                found: Some(1),
                ..
            })
        ),
        "{again:?}"
    );

    // Two writers read version 1; both write concurrently; exactly one wins.
    let store = Arc::new(store);
    let (a, b) = tokio::join!(
        {
            let (store, key) = (store.clone(), key.clone());
            async move {
                state::save(
                    &*store,
                    &key,
                    &json!({"state": "AwaitingPromotion"}),
                    Some(1),
                    now,
                )
                .await
            }
        },
        {
            let (store, key) = (store.clone(), key.clone());
            async move { state::save(&*store, &key, &json!({"state": "Cancelled"}), Some(1), now).await }
        }
    );
    let outcomes = [a, b];
    let winners: Vec<_> = outcomes.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let loser = outcomes
        .iter()
        .find(|r| r.is_err())
        .unwrap()
        .as_ref()
        .unwrap_err();
    assert!(
        matches!(
            loser,
            StateError::Conflict {
                expected: Some(1),
                found: Some(2),
                ..
            }
        ),
        "{loser}"
    );
    assert_eq!(loser.retry(), Retry::Retryable);

    let stored = state::load::<serde_json::Value>(&*store, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 2);
    let won = if outcomes[0].is_ok() {
        "AwaitingPromotion"
    } else {
        "Cancelled"
    };
    assert_eq!(stored.value["state"], won);
}

#[tokio::test]
async fn twenty_racing_writers_produce_exactly_one_new_version() {
    let (_, plan, world) = world().await;
    let store = Arc::new(state_store(&world));
    let key = MachineKey::new(&plan.name, "race");
    let now = Utc::now();
    state::save(&*store, &key, &json!({"n": 0}), None, now)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            state::save(&*store, &key, &json!({"n": i}), Some(1), now).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => {
                assert_eq!(v, 2);
                ok += 1;
            }
            Err(StateError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(ok, 1);
}

fn claim_request(
    plan: &str,
    key: &str,
    payload: &serde_json::Value,
    now: chrono::DateTime<Utc>,
) -> ClaimRequest {
    ClaimRequest {
        plan: plan.to_string(),
        key: key.to_string(),
        payload_hash: payload_hash(payload),
        now,
        in_progress_until: now + Duration::seconds(60),
        expires_at: now + Duration::hours(1),
    }
}

#[tokio::test]
async fn a_key_is_claimed_once_and_duplicates_get_the_stored_result() {
    let (_, plan, world) = world().await;
    let store = state_store(&world);
    let event = json!({"id": "evt-1", "detail-type": "Scheduled Event"});
    let now = Utc::now();
    let request = claim_request(&plan.name, "evt-1", &event, now);

    let Claim::Acquired(token) = store.claim(&request).await.unwrap() else {
        panic!("first claim must be acquired");
    };
    // A duplicate while the first is running is told so, with the holder's deadline.
    match store.claim(&request).await.unwrap() {
        Claim::InProgress { until } => {
            assert_eq!(
                until.timestamp_millis(),
                request.in_progress_until.timestamp_millis()
            )
        }
        other => panic!("expected in progress, got {other:?}"),
    }
    store
        .complete(&token, &json!({"created": 3}))
        .await
        .unwrap();
    // A duplicate after completion gets the stored result and does nothing.
    assert_eq!(
        store.claim(&request).await.unwrap(),
        Claim::AlreadyDone(json!({"created": 3}))
    );
    // A different event reusing the key is refused.
    let other = claim_request(
        &plan.name,
        "evt-1",
        &json!({"id": "evt-1", "forged": true}),
        now,
    );
    let err = store.claim(&other).await.unwrap_err();
    assert!(matches!(err, StateError::PayloadMismatch { .. }), "{err}");
    assert_eq!(err.retry(), Retry::NonRetryable);
    // Once the record expires (TTL removal lags, so the claim checks expiry itself), the
    // key can be claimed afresh.
    let later = claim_request(&plan.name, "evt-1", &event, now + Duration::hours(2));
    assert!(matches!(
        store.claim(&later).await.unwrap(),
        Claim::Acquired(_)
    ));
}

#[tokio::test]
async fn a_released_or_crashed_claim_can_be_taken_over_and_the_old_holder_cannot_complete() {
    let (_, plan, world) = world().await;
    let store = state_store(&world);
    let event = json!({"alarm": "orders-db-primary-unhealthy"});
    let now = Utc::now();
    let request = claim_request(&plan.name, "alarm-1", &event, now);

    // Released after a failure: a retry claims it again.
    let Claim::Acquired(first) = store.claim(&request).await.unwrap() else {
        panic!()
    };
    store.release(&first).await.unwrap();
    let Claim::Acquired(second) = store.claim(&request).await.unwrap() else {
        panic!()
    };

    // The holder crashes; after its deadline another invocation takes over.
    let after_deadline = ClaimRequest {
        now: now + Duration::seconds(61),
        in_progress_until: now + Duration::seconds(121),
        ..request.clone()
    };
    let Claim::Acquired(third) = store.claim(&after_deadline).await.unwrap() else {
        panic!("an expired in-progress claim must be taken over");
    };
    // The crashed holder wakes up: it can neither complete nor release the new claim.
    let err = store.complete(&second, &json!("stale")).await.unwrap_err();
    assert!(matches!(err, StateError::ClaimLost { .. }), "{err}");
    store.release(&second).await.unwrap();
    store.complete(&third, &json!("fresh")).await.unwrap();
    assert_eq!(
        store.claim(&request).await.unwrap(),
        Claim::AlreadyDone(json!("fresh"))
    );
}

#[tokio::test]
async fn twenty_concurrent_claims_have_one_winner() {
    let (_, plan, world) = world().await;
    let store = Arc::new(state_store(&world));
    let request = claim_request(&plan.name, "storm", &json!({"n": 1}), Utc::now());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, request) = (store.clone(), request.clone());
        tasks.push(tokio::spawn(async move { store.claim(&request).await }));
    }
    let mut acquired = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Claim::Acquired(_) => acquired += 1,
            Claim::InProgress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acquired, 1);
}

fn entry(at: chrono::DateTime<Utc>, action: &str) -> AuditEntry {
    AuditEntry {
        at,
        function: "failover".into(),
        trigger: "alarm orders-db-primary-unhealthy".into(),
        action: action.into(),
        resource: Some("orders-db".into()),
        outcome: Outcome::Succeeded,
        detail: format!("{action} done"),
        data: json!({"step": action}),
    }
}

#[tokio::test]
async fn the_timeline_reads_back_in_time_order_and_from_a_given_time() {
    let (_, plan, world) = world().await;
    let store = state_store(&world);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    // Appended out of order; two entries share a timestamp.
    for (offset, action) in [
        (3, "dns.switch"),
        (1, "failover.confirm"),
        (2, "failover.promote"),
        (2, "failover.fence"),
    ] {
        state::append(
            &store,
            &plan.name,
            vec![entry(t0 + Duration::seconds(offset), action)],
            t0,
        )
        .await
        .unwrap();
    }
    let all = store.timeline(&plan.name, None).await.unwrap();
    let times: Vec<i64> = all.iter().map(|e| (e.at - t0).num_seconds()).collect();
    assert_eq!(times, vec![1, 2, 2, 3]);
    assert_eq!(all[0].action, "failover.confirm");
    assert_eq!(all[3].action, "dns.switch");
    assert_eq!(all[0].data["step"], "failover.confirm");
    let recent = store
        .timeline(&plan.name, Some(t0 + Duration::seconds(2)))
        .await
        .unwrap();
    assert_eq!(recent.len(), 3);
    // Another plan's timeline is separate.
    assert!(
        store
            .timeline("another-plan", None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_unreadable_item_is_reported_as_corrupt_with_what_to_do() {
    let (_, plan, world) = world().await;
    let store = state_store(&world);
    let key = MachineKey::new(&plan.name, "failover");
    world
        .clients
        .home
        .dynamodb
        .put_item()
        .table_name(&world.control.state_table)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "plan#{}#machine#failover",
                plan.name
            )),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("state".into()),
        )
        .item(
            "version",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .item(
            "doc",
            aws_sdk_dynamodb::types::AttributeValue::S("{not json".into()),
        )
        .send()
        .await
        .unwrap();
    let err = store.load_json(&key).await.unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }));
    assert!(
        err.to_string().contains("delete it to reset that machine"),
        "{err}"
    );
    // Typed loading of a document of the wrong shape is corrupt too, not a panic.
    state::save(
        &store,
        &MachineKey::new(&plan.name, "typed"),
        &json!([1, 2]),
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Shape {
        state: String,
    }
    let err = state::load::<Shape>(&store, &MachineKey::new(&plan.name, "typed"))
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
}

fn intent(action: &str, at: chrono::DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        at,
        function: "failover".into(),
        trigger: "test".into(),
        action: action.into(),
        resource: Some("orders-db".into()),
        outcome: Outcome::Intended,
        detail: "about to act".into(),
        data: serde_json::Value::Null,
    }
}

#[tokio::test]
async fn a_commit_is_one_transaction_fenced_by_the_lease_it_was_granted() {
    let (_, plan, world) = world().await;
    let store = state_store(&world);
    let key = MachineKey::new(&plan.name, "dr");
    let now = Utc::now();
    let lease = LeaseMark {
        holder: "req-1".into(),
        until: now + Duration::seconds(120),
    };
    let v1 = Commit::write(&key, &json!({"step": "promote"}), None, now)
        .unwrap()
        .granting(Some(lease))
        .recording([intent("failover.promote", now)])
        .send(&store)
        .await
        .unwrap();
    assert_eq!(v1, Some(1));
    // A stale writer: the transaction is cancelled, its entry with it.
    let stale = Commit::write(&key, &json!({"step": "other"}), None, now)
        .unwrap()
        .recording([intent("stale", now)])
        .send(&store)
        .await
        .unwrap_err();
    assert!(
        matches!(stale, StateError::Conflict { found: Some(1), .. }),
        "{stale}"
    );
    // Another holder, or the holder once its lease has lapsed, cannot commit.
    for (holder, at) in [("req-2", now), ("req-1", now + Duration::seconds(121))] {
        let fenced = Commit::write(&key, &json!({"step": "done"}), Some(1), at)
            .unwrap()
            .fenced_by(Some(holder))
            .recording([intent("fenced", at)])
            .send(&store)
            .await
            .unwrap_err();
        assert!(matches!(fenced, StateError::LeaseLapsed { .. }), "{fenced}");
        assert_eq!(fenced.retry(), Retry::Retryable);
    }
    // The holder within its lease commits the outcome with the step.
    let v2 = Commit::write(&key, &json!({"step": "done"}), Some(1), now)
        .unwrap()
        .fenced_by(Some("req-1"))
        .recording([intent("failover.promote", now)])
        .send(&store)
        .await
        .unwrap();
    assert_eq!(v2, Some(2));
    // A check commits entries against the version without writing the document.
    let checked = Commit::check(&key, Some(2), now)
        .recording([intent("note", now)])
        .send(&store)
        .await
        .unwrap();
    assert_eq!(checked, Some(2));
    let stale_check = Commit::check(&key, Some(1), now)
        .recording([intent("stale-note", now)])
        .send(&store)
        .await
        .unwrap_err();
    assert!(
        matches!(stale_check, StateError::Conflict { .. }),
        "{stale_check}"
    );
    let actions: Vec<String> = store
        .timeline(&plan.name, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(
        actions
            .iter()
            .all(|a| a == "failover.promote" || a == "note"),
        "{actions:?}"
    );
    let doc = state::load::<serde_json::Value>(&store, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((doc.version, doc.value), (2, json!({"step": "done"})));
    // Ninety-nine entries in one transaction (the machine is the hundredth action).
    state::append(
        &store,
        &plan.name,
        (0..state::MAX_ENTRIES_PER_COMMIT + 5)
            .map(|i| intent("bulk", now + Duration::milliseconds(i as i64)))
            .collect(),
        now,
    )
    .await
    .unwrap();
    let bulk = store.timeline(&plan.name, None).await.unwrap();
    assert_eq!(bulk.iter().filter(|e| e.action == "bulk").count(), 104);
}
