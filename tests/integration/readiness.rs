//! The DR readiness report computed from the emulator's real state: a fresh world fails
//! the checks it should (no backup, no lag datapoint, nothing validated, never
//! exercised), and passes them once the state says otherwise; the report lands in S3.

use crate::support::{state_store, world};
use chrono::{Duration, Utc};
use lifeboat::aws::{ReadinessRun, S3Reports, gather_readiness};
use lifeboat::function::{Invocation, respond};
use lifeboat::plan::{CREATED_TAG, PLAN_TAG, RESOURCE_TAG, VALIDATED_TAG};
use lifeboat::readiness::{Readiness, assess};
use lifeboat::state::{AuditEntry, Outcome};

fn status(r: &Readiness, subject: &str, item: &str) -> Option<bool> {
    r.checks
        .iter()
        .find(|c| c.subject == subject && c.item.starts_with(item))
        .map(|c| c.passed)
}

#[tokio::test]
async fn readiness_follows_the_real_state() {
    let (account, plan, world) = world().await;
    let settings = account.settings();
    let store = state_store(&world);
    let now = Utc::now();

    let facts = gather_readiness(&plan, &world.clients, &settings, &store, now).await;
    let before = assess(&plan, &facts, now);
    for (subject, item) in [
        ("orders-db", "recent backup in us-east-1"),
        ("orders-db", "recent backup in us-west-2"),
        ("orders-db", "replica lag within the failover guard"),
        ("orders-db", "backups proven by restore"),
        ("plan", "failover and failback exercised"),
    ] {
        assert_eq!(
            status(&before, subject, item),
            Some(false),
            "{subject}: {item} should fail in a fresh world:\n{}",
            lifeboat::readiness::render(&before)
        );
    }
    for (subject, item) in [
        (
            "plan",
            "health alarm (starts failovers) orders-db-primary-unhealthy",
        ),
        ("plan", "DR state Normal"),
        ("orders-db", "DNS failover configured"),
        (
            "orders-db",
            "DR replica exists, replicates and is available",
        ),
    ] {
        assert_eq!(
            status(&before, subject, item),
            Some(true),
            "{subject}: {item} should pass:\n{}",
            lifeboat::readiness::render(&before)
        );
    }

    // Backups in both regions, the DR copy validated; RDS's lag datapoint (the emulator
    // publishes none); a completed failback in the timeline.
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    let taken = now - Duration::minutes(10);
    for (rds, source, id, validated) in [
        (
            &world.clients.primary.rds,
            "orders-db",
            "lifeboat-local-orders-db-a",
            false,
        ),
        (
            &world.clients.dr.rds,
            "orders-db-dr",
            "lifeboat-local-orders-db-b",
            true,
        ),
    ] {
        let mut create = rds
            .create_db_snapshot()
            .db_instance_identifier(source)
            .db_snapshot_identifier(id)
            .tags(tag(PLAN_TAG, &plan.name))
            .tags(tag(RESOURCE_TAG, "orders-db"))
            .tags(tag(CREATED_TAG, &taken.to_rfc3339()));
        if validated {
            create = create.tags(tag(VALIDATED_TAG, &(now - Duration::hours(1)).to_rfc3339()));
        }
        create.send().await.expect("snapshot");
    }
    account.settle().await.expect("snapshots available");
    harness::realism::publish_replica_lag(
        &world.clients.dr.cloudwatch,
        "orders-db-dr",
        &[(0, 4.0)],
    )
    .await
    .expect("lag datapoint");
    lifeboat::state::append(
        &store,
        &plan.name,
        vec![AuditEntry {
            at: now - Duration::days(3),
            function: "failback".into(),
            trigger: "tick".into(),
            action: "failback.complete".into(),
            resource: None,
            outcome: Outcome::Succeeded,
            detail: "failback complete (test)".into(),
            data: serde_json::Value::Null,
        }],
        now,
    )
    .await
    .expect("audit entry");

    let now = Utc::now();
    let facts = gather_readiness(&plan, &world.clients, &settings, &store, now).await;
    let after = assess(&plan, &facts, now);
    for (subject, item) in [
        ("orders-db", "recent backup in us-east-1"),
        ("orders-db", "recent backup in us-west-2"),
        ("orders-db", "replica lag within the failover guard"),
        ("orders-db", "backups proven by restore"),
        ("plan", "failover and failback exercised"),
    ] {
        assert_eq!(
            status(&after, subject, item),
            Some(true),
            "{subject}: {item} should pass now:\n{}",
            lifeboat::readiness::render(&after)
        );
    }
    assert!(
        after.score > before.score,
        "{} then {}",
        before.score,
        after.score
    );

    // The readiness function's answer to its schedule, through the entry the deployed
    // function uses: the report is stored in the bucket.
    let reports = S3Reports::new(
        world.clients.home.s3.clone(),
        &world.control.report_bucket,
        None,
    );
    let run = ReadinessRun {
        plan: &plan,
        clients: &world.clients,
        client_settings: &settings,
        state: &store,
        reports: &reports,
    };
    let run = &run;
    let mut schedule: serde_json::Value =
        serde_json::from_str(include_str!("../../events/readiness-schedule.json")).unwrap();
    schedule["time"] = serde_json::json!(now.to_rfc3339());
    let invocation = Invocation {
        request_id: "readiness-test".into(),
        now,
        deadline: now + chrono::Duration::minutes(5),
    };
    let answer = respond(
        "readiness",
        schedule,
        invocation,
        &|p: serde_json::Value, i: Invocation| async move {
            let input = lifeboat::readiness::event::parse_input(&p)?;
            Ok::<_, lifeboat::readiness::event::InputError>(run.handle(input, &i).await)
        },
    )
    .await
    .expect("the readiness function answers its schedule");
    let answer: ReadinessAnswerRead = serde_json::from_value(answer).unwrap();
    assert_eq!(answer.score, after.score);
    let key = answer
        .stored
        .strip_prefix(&format!("s3://{}/", world.control.report_bucket))
        .unwrap_or_else(|| panic!("not stored: {}", answer.stored));
    let body = world
        .clients
        .home
        .s3
        .get_object()
        .bucket(&world.control.report_bucket)
        .key(key)
        .send()
        .await
        .expect("the stored report")
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let stored: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stored["readiness"]["score"], after.score);
    assert!(answer.text.contains(&format!("{}/100", after.score)));
}

/// What the readiness function answers, as a caller reads it back.
#[derive(serde::Deserialize)]
struct ReadinessAnswerRead {
    score: u32,
    text: String,
    stored: String,
}
