//! The demo world and the posture report read from it.

use crate::support::{local_plan, state_store, world};
use harness::create_world;
use lifeboat::aws::{gather_posture, read_cname};
use lifeboat::posture::{Concern, Observed, RecordTarget, assess, record_target, render};

#[tokio::test]
async fn the_demo_world_matches_the_plan_and_has_a_clean_posture() {
    let (_, plan, world) = world().await;
    let store = state_store(&world);
    let facts = gather_posture(&plan, &world.clients, &store).await;
    let findings = assess(&plan, &facts);
    assert!(findings.is_empty(), "{findings:#?}");

    let orders = &facts.resources[0];
    let primary = orders.primary.present().expect("orders-db exists");
    assert_eq!(primary.region, "us-east-1");
    assert!(primary.encrypted);
    let replica = orders
        .replica
        .as_ref()
        .unwrap()
        .present()
        .expect("its DR replica exists");
    assert_eq!(replica.region, "us-west-2");
    assert!(
        replica
            .replicates_from
            .as_deref()
            .unwrap()
            .ends_with(":db:orders-db")
    );
    assert_eq!(record_target(orders), Some(RecordTarget::Primary));

    let sessions = facts.resources[2].primary.present().unwrap();
    assert_eq!(sessions.point_in_time_recovery, Some(true));
    let traffic = facts.traffic[0].present().unwrap();
    assert_eq!(traffic.values.len(), 2);
    assert!(
        traffic
            .values
            .contains(&("api.us-east-1.lifeboat.internal.".to_string(), Some(100)))
    );
    assert!(
        traffic
            .values
            .contains(&("api.us-west-2.lifeboat.internal.".to_string(), Some(0)))
    );
    assert_eq!(facts.failover_state, Observed::Missing);

    let text = render(&plan, &facts);
    assert!(
        text.contains("orders-db-dr in us-west-2 [available]"),
        "{text}"
    );
    assert!(text.contains("Normal (no failover recorded)"), "{text}");
}

#[tokio::test]
async fn creating_the_world_twice_changes_nothing() {
    let (account, plan, first) = world().await;
    let second = create_world(&account, &local_plan())
        .await
        .expect("second run");
    assert_eq!(first.zone_id, second.zone_id);
    assert_eq!(first.topic_arn, second.topic_arn);
    let record = read_cname(
        &first.clients.route53,
        &first.zone_id,
        "orders-db.db.lifeboat.internal.",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(record.values.len(), 1, "{record:?}");
    let instances = first
        .clients
        .primary
        .rds
        .describe_db_instances()
        .send()
        .await
        .unwrap();
    // orders-db and the Aurora cluster's writer.
    assert_eq!(instances.db_instances().len(), 2);
    let _ = plan;
}

#[tokio::test]
async fn posture_reports_a_promoted_replica_and_a_missing_one() {
    let (account, plan, world) = world().await;
    let store = state_store(&world);
    world
        .clients
        .dr
        .rds
        .promote_read_replica()
        .db_instance_identifier("orders-db-dr")
        .send()
        .await
        .unwrap();
    // Promotion takes minutes; the posture sees it once it is done.
    account.settle().await.unwrap();
    let facts = gather_posture(&plan, &world.clients, &store).await;
    let findings = assess(&plan, &facts);
    assert!(
        findings.iter().any(|f| f.subject == "orders-db"
            && f.concern == Concern::Warning
            && f.problem.contains("is not replicating from orders-db")),
        "{findings:#?}"
    );

    world
        .clients
        .dr
        .rds
        .delete_db_instance()
        .db_instance_identifier("orders-db-dr")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    // `deleting` for minutes, then gone.
    account.settle().await.unwrap();
    let facts = gather_posture(&plan, &world.clients, &store).await;
    let findings = assess(&plan, &facts);
    assert_eq!(findings[0].concern, Concern::Critical);
    assert!(
        findings[0]
            .problem
            .contains("failover has nothing to promote"),
        "{findings:#?}"
    );
}

#[tokio::test]
async fn a_plan_spelling_rds_identifiers_in_mixed_case_sees_the_same_clean_posture() {
    // The world as RDS keeps it (lower case); the plan as an operator wrote it.
    let (account, _, world) = world().await;
    let plan = harness::plan_in_account(&crate::support::mixed_case_plan(), &account);
    let store = state_store(&world);
    let facts = gather_posture(&plan, &world.clients, &store).await;
    let findings = assess(&plan, &facts);
    assert!(findings.is_empty(), "{findings:#?}");
    let orders = &facts.resources[0];
    assert!(orders.primary.present().is_some(), "Orders-DB is found");
    let replica = orders.replica.as_ref().unwrap().present();
    assert!(
        replica.is_some_and(|r| r
            .replicates_from
            .as_deref()
            .is_some_and(|s| s.ends_with(":db:orders-db"))),
        "Orders-DB-DR is found replicating from orders-db: {:?}",
        orders.replica
    );
    assert!(
        facts.resources[1].primary.present().is_some(),
        "Billing-DB is found"
    );
    assert_eq!(record_target(orders), Some(RecordTarget::Primary));
}
