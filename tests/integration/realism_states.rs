//! Transient states with durations: each test drives a resource through the SDK calls
//! Lifeboat makes and checks the statuses, progress and refusals AWS would show, moving
//! the account's clock instead of sleeping.

use crate::support::{
    available_cluster, available_instance, code, duration, frozen_account, kms_key,
};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use harness::LocalAws;
use lifeboat::aws::{describe_cluster, describe_instance};

async fn snapshot(rds: &aws_sdk_rds::Client, id: &str) -> aws_sdk_rds::types::DbSnapshot {
    rds.describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await
        .unwrap()
        .db_snapshots()[0]
        .clone()
}

#[tokio::test]
async fn a_db_snapshot_is_creating_with_progress_then_available() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    available_instance(&account, &rds, "orders-db").await;

    let created = rds
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .unwrap();
    let s = created.db_snapshot().unwrap();
    assert_eq!(s.status(), Some("creating"));
    assert_eq!(s.percent_progress(), Some(0));

    let seconds = duration(&account, "db_snapshot_create").await;
    account.advance_clock(seconds / 2.0).await.unwrap();
    let half = snapshot(&rds, "orders-1").await;
    assert_eq!(half.status(), Some("creating"));
    assert_eq!(half.percent_progress(), Some(50));

    account.advance_clock(seconds / 2.0).await.unwrap();
    let done = snapshot(&rds, "orders-1").await;
    assert_eq!(done.status(), Some("available"));
    assert_eq!(done.percent_progress(), Some(100));

    let t = account.transitions().await.unwrap();
    assert_eq!(t.statuses("orders-1"), ["creating", "available"]);
    assert_eq!(t.of("orders-1")[0].seconds, seconds);
}

#[tokio::test]
async fn a_snapshot_still_creating_cannot_be_copied_restored_or_deleted() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    let key = kms_key(&account, "us-west-2").await;
    available_instance(&account, &primary, "orders-db").await;
    primary
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .unwrap();
    let arn = account.arn("rds", "us-east-1", "snapshot:orders-1");

    let copy = dr
        .copy_db_snapshot()
        .source_db_snapshot_identifier(&arn)
        .target_db_snapshot_identifier("orders-1-dr")
        .kms_key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert!(
        copy.as_service_error()
            .unwrap()
            .is_invalid_db_snapshot_state_fault(),
        "{copy:?}"
    );
    let restore = primary
        .restore_db_instance_from_db_snapshot()
        .db_snapshot_identifier("orders-1")
        .db_instance_identifier("orders-restored")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&restore), "InvalidDBSnapshotState");
    let delete = primary
        .delete_db_snapshot()
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .unwrap_err();
    assert!(
        delete
            .as_service_error()
            .unwrap()
            .is_invalid_db_snapshot_state_fault()
    );
    account.settle().await.unwrap();
    dr.copy_db_snapshot()
        .source_db_snapshot_identifier(&arn)
        .target_db_snapshot_identifier("orders-1-dr")
        .kms_key_id(&key)
        .send()
        .await
        .expect("an available snapshot copies");
}

#[tokio::test]
async fn a_cross_region_copy_is_pending_then_copying_then_available() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    let key = kms_key(&account, "us-west-2").await;
    available_instance(&account, &primary, "orders-db").await;
    primary
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
    let arn = account.arn("rds", "us-east-1", "snapshot:orders-1");

    let out = dr
        .copy_db_snapshot()
        .source_db_snapshot_identifier(&arn)
        .target_db_snapshot_identifier("orders-1-dr")
        .kms_key_id(&key)
        .copy_tags(true)
        .send()
        .await
        .unwrap();
    let copy = out.db_snapshot().unwrap();
    assert_eq!(copy.status(), Some("pending"));
    assert_eq!(copy.source_region(), Some("us-east-1"));
    assert_eq!(copy.source_db_snapshot_identifier(), Some(arn.as_str()));
    assert_eq!(copy.snapshot_type(), Some("manual"));

    account
        .advance_clock(duration(&account, "db_snapshot_copy_queue").await)
        .await
        .unwrap();
    let copying = snapshot(&dr, "orders-1-dr").await;
    assert_eq!(copying.status(), Some("copying"));
    assert_eq!(copying.percent_progress(), Some(0));
    let copy_seconds = duration(&account, "db_snapshot_copy").await;
    account.advance_clock(copy_seconds / 4.0).await.unwrap();
    assert_eq!(
        snapshot(&dr, "orders-1-dr").await.percent_progress(),
        Some(25)
    );
    account.advance_clock(copy_seconds).await.unwrap();
    let done = snapshot(&dr, "orders-1-dr").await;
    assert_eq!(done.status(), Some("available"));
    assert_eq!(done.percent_progress(), Some(100));
    assert!(done.encrypted().unwrap_or(false));

    let t = account.transitions().await.unwrap();
    assert_eq!(
        t.statuses("orders-1-dr"),
        ["pending", "copying", "available"]
    );
    assert!(t.of("orders-1-dr").iter().all(|x| x.region == "us-west-2"));
}

#[tokio::test]
async fn deleting_a_copy_in_progress_terminates_it() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    let key = kms_key(&account, "us-west-2").await;
    available_instance(&account, &primary, "orders-db").await;
    primary
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
    dr.copy_db_snapshot()
        .source_db_snapshot_identifier(account.arn("rds", "us-east-1", "snapshot:orders-1"))
        .target_db_snapshot_identifier("orders-1-dr")
        .kms_key_id(&key)
        .send()
        .await
        .unwrap();
    account
        .advance_clock(duration(&account, "db_snapshot_copy_queue").await)
        .await
        .unwrap();

    let deleted = dr
        .delete_db_snapshot()
        .db_snapshot_identifier("orders-1-dr")
        .send()
        .await
        .expect("a copy in progress may be deleted");
    assert_eq!(deleted.db_snapshot().unwrap().status(), Some("deleted"));
    let missing = dr
        .describe_db_snapshots()
        .db_snapshot_identifier("orders-1-dr")
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .as_service_error()
            .unwrap()
            .is_db_snapshot_not_found_fault(),
        "{missing:?}"
    );
    let t = account.transitions().await.unwrap();
    assert_eq!(t.of("orders-1-dr").last().unwrap().state, "cancelled");
}

#[tokio::test]
async fn cluster_snapshots_and_their_copies_take_time() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    let key = kms_key(&account, "us-west-2").await;

    primary
        .create_db_cluster()
        .db_cluster_identifier("billing-db")
        .engine("aurora-postgresql")
        .master_username("admin_user")
        .master_user_password("emulated-only-pw")
        .storage_encrypted(true)
        .send()
        .await
        .unwrap();
    let creating = describe_cluster(&primary, "us-east-1", "billing-db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creating.status, "creating");
    let early = primary
        .create_db_cluster_snapshot()
        .db_cluster_identifier("billing-db")
        .db_cluster_snapshot_identifier("billing-1")
        .send()
        .await
        .unwrap_err();
    assert!(
        early
            .as_service_error()
            .unwrap()
            .is_invalid_db_cluster_state_fault()
    );
    account.settle().await.unwrap();

    let out = primary
        .create_db_cluster_snapshot()
        .db_cluster_identifier("billing-db")
        .db_cluster_snapshot_identifier("billing-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.db_cluster_snapshot().unwrap().status(),
        Some("creating")
    );
    assert_eq!(
        out.db_cluster_snapshot().unwrap().percent_progress(),
        Some(0)
    );
    let arn = account.arn("rds", "us-east-1", "cluster-snapshot:billing-1");
    let early_copy = dr
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(&arn)
        .target_db_cluster_snapshot_identifier("billing-1-dr")
        .kms_key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert!(
        early_copy
            .as_service_error()
            .unwrap()
            .is_invalid_db_cluster_snapshot_state_fault()
    );
    account.settle().await.unwrap();

    let copy = dr
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(&arn)
        .target_db_cluster_snapshot_identifier("billing-1-dr")
        .kms_key_id(&key)
        .send()
        .await
        .unwrap();
    let c = copy.db_cluster_snapshot().unwrap();
    assert_eq!(c.status(), Some("copying"));
    assert_eq!(c.source_db_cluster_snapshot_arn(), Some(arn.as_str()));
    account.settle().await.unwrap();
    let listed = dr
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier("billing-1-dr")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.db_cluster_snapshots()[0].status(), Some("available"));
    assert_eq!(
        listed.db_cluster_snapshots()[0].percent_progress(),
        Some(100)
    );
    let t = account.transitions().await.unwrap();
    assert_eq!(t.statuses("billing-1"), ["creating", "available"]);
    assert_eq!(t.statuses("billing-1-dr"), ["copying", "available"]);
}

#[tokio::test]
async fn restores_are_creating_for_minutes_then_available() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    available_instance(&account, &rds, "orders-db").await;
    rds.create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();

    let restored = rds
        .restore_db_instance_from_db_snapshot()
        .db_snapshot_identifier("orders-1")
        .db_instance_identifier("orders-check")
        .db_instance_class("db.t4g.micro")
        .send()
        .await
        .unwrap();
    let db = restored.db_instance().unwrap();
    assert_eq!(db.db_instance_status(), Some("creating"));
    assert!(
        db.endpoint().is_none(),
        "no endpoint before it is available"
    );
    let pitr = rds
        .restore_db_instance_to_point_in_time()
        .source_db_instance_identifier("orders-db")
        .target_db_instance_identifier("orders-pitr")
        .use_latest_restorable_time(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        pitr.db_instance().unwrap().db_instance_status(),
        Some("creating")
    );

    let restore_seconds = duration(&account, "db_instance_restore").await;
    account.advance_clock(restore_seconds - 1.0).await.unwrap();
    let still = describe_instance(&rds, "us-east-1", "orders-check")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.status, "creating");
    account.advance_clock(1.0).await.unwrap();
    let ready = describe_instance(&rds, "us-east-1", "orders-check")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.status, "available");
    assert!(ready.endpoint.is_some());
    assert!(ready.replicas.is_empty() && ready.replicates_from.is_none());
    // A point-in-time restore replays logs on top: it takes longer.
    let pitr_now = describe_instance(&rds, "us-east-1", "orders-pitr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pitr_now.status, "creating");
    account.settle().await.unwrap();
    let t = account.transitions().await.unwrap();
    assert_eq!(
        t.of("orders-pitr")[0].seconds,
        duration(&account, "db_instance_restore_pitr").await
    );
    assert_eq!(
        t.of("orders-check")[0].kind,
        "restore_db_instance_from_db_snapshot"
    );
}

#[tokio::test]
async fn cluster_restores_are_creating_then_available() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    available_cluster(&account, &rds, "billing-db").await;
    rds.create_db_cluster_snapshot()
        .db_cluster_identifier("billing-db")
        .db_cluster_snapshot_identifier("billing-1")
        .send()
        .await
        .unwrap();
    let early = rds
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier("billing-check")
        .snapshot_identifier("billing-1")
        .engine("aurora-postgresql")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&early), "InvalidDBClusterSnapshotStateFault");
    account.settle().await.unwrap();

    let restored = rds
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier("billing-check")
        .snapshot_identifier("billing-1")
        .engine("aurora-postgresql")
        .send()
        .await
        .unwrap();
    assert_eq!(restored.db_cluster().unwrap().status(), Some("creating"));
    let pitr = rds
        .restore_db_cluster_to_point_in_time()
        .db_cluster_identifier("billing-pitr")
        .source_db_cluster_identifier("billing-db")
        .use_latest_restorable_time(true)
        .send()
        .await
        .unwrap();
    assert_eq!(pitr.db_cluster().unwrap().status(), Some("creating"));
    account
        .advance_clock(duration(&account, "db_cluster_restore").await)
        .await
        .unwrap();
    let check = describe_cluster(&rds, "us-east-1", "billing-check")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check.status, "available");
    let still = describe_cluster(&rds, "us-east-1", "billing-pitr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.status, "creating");
    account.settle().await.unwrap();
    let done = describe_cluster(&rds, "us-east-1", "billing-pitr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, "available");
}

#[tokio::test]
async fn a_new_instance_and_its_replica_are_creating_for_minutes() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    let out = primary
        .create_db_instance()
        .db_instance_identifier("orders-db")
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username("admin_user")
        .master_user_password("emulated-only-pw")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.db_instance().unwrap().db_instance_status(),
        Some("creating")
    );
    assert!(out.db_instance().unwrap().endpoint().is_none());
    let source = account.arn("rds", "us-east-1", "db:orders-db");
    let early_replica = dr
        .create_db_instance_read_replica()
        .db_instance_identifier("orders-db-dr")
        .source_db_instance_identifier(&source)
        .send()
        .await
        .unwrap_err();
    assert!(
        early_replica
            .as_service_error()
            .unwrap()
            .is_invalid_db_instance_state_fault()
    );
    let early_snapshot = primary
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .unwrap_err();
    assert!(
        early_snapshot
            .as_service_error()
            .unwrap()
            .is_invalid_db_instance_state_fault()
    );
    account
        .advance_clock(duration(&account, "db_instance_create").await)
        .await
        .unwrap();
    let up = describe_instance(&primary, "us-east-1", "orders-db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.status, "available");
    assert!(up.endpoint.is_some());

    let replica = dr
        .create_db_instance_read_replica()
        .db_instance_identifier("orders-db-dr")
        .source_db_instance_identifier(&source)
        .send()
        .await
        .unwrap();
    assert_eq!(
        replica.db_instance().unwrap().db_instance_status(),
        Some("creating")
    );
    let early_promotion = dr
        .promote_read_replica()
        .db_instance_identifier("orders-db-dr")
        .send()
        .await
        .unwrap_err();
    assert!(
        early_promotion
            .as_service_error()
            .unwrap()
            .is_invalid_db_instance_state_fault()
    );
    account.settle().await.unwrap();
    let t = account.transitions().await.unwrap();
    assert_eq!(
        t.of("orders-db-dr")[0].seconds,
        duration(&account, "db_instance_read_replica").await
    );
    assert_eq!(t.statuses("orders-db-dr"), ["creating", "available"]);
}

#[tokio::test]
async fn a_reboot_takes_the_instance_away_for_a_while() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    available_instance(&account, &rds, "orders-db").await;
    let out = rds
        .reboot_db_instance()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.db_instance().unwrap().db_instance_status(),
        Some("rebooting")
    );
    let again = rds
        .reboot_db_instance()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap_err();
    assert!(
        again
            .as_service_error()
            .unwrap()
            .is_invalid_db_instance_state_fault()
    );
    account.settle().await.unwrap();
    let up = describe_instance(&rds, "us-east-1", "orders-db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.status, "available");
}

#[tokio::test]
async fn deleted_instances_and_clusters_are_deleting_then_gone() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    available_instance(&account, &rds, "orders-db").await;

    let unsafe_delete = rds
        .delete_db_instance()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&unsafe_delete), "InvalidParameterCombination");

    let out = rds
        .delete_db_instance()
        .db_instance_identifier("orders-db")
        .final_db_snapshot_identifier("orders-final")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.db_instance().unwrap().db_instance_status(),
        Some("deleting")
    );
    let listed = describe_instance(&rds, "us-east-1", "orders-db")
        .await
        .unwrap()
        .expect("still listed while deleting");
    assert_eq!(listed.status, "deleting");
    let twice = rds
        .delete_db_instance()
        .db_instance_identifier("orders-db")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap_err();
    assert!(
        twice
            .as_service_error()
            .unwrap()
            .is_invalid_db_instance_state_fault()
    );
    let reused = rds
        .create_db_instance()
        .db_instance_identifier("orders-db")
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username("admin_user")
        .master_user_password("emulated-only-pw")
        .send()
        .await
        .unwrap_err();
    assert!(
        reused
            .as_service_error()
            .unwrap()
            .is_db_instance_already_exists_fault(),
        "the identifier stays in use until the instance is gone"
    );
    assert_eq!(
        snapshot(&rds, "orders-final").await.status(),
        Some("creating")
    );
    account.settle().await.unwrap();
    assert!(
        describe_instance(&rds, "us-east-1", "orders-db")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        snapshot(&rds, "orders-final").await.status(),
        Some("available")
    );

    // An Aurora cluster goes once its instances are deleting.
    available_cluster(&account, &rds, "billing-db").await;
    rds.create_db_instance()
        .db_instance_identifier("billing-db-writer")
        .db_cluster_identifier("billing-db")
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
    let busy = rds
        .delete_db_cluster()
        .db_cluster_identifier("billing-db")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&busy), "InvalidDBClusterStateFault");
    let unsafe_cluster_delete = rds
        .delete_db_cluster()
        .db_cluster_identifier("billing-db")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&unsafe_cluster_delete), "InvalidParameterCombination");
    rds.delete_db_instance()
        .db_instance_identifier("billing-db-writer")
        .send()
        .await
        .unwrap();
    let out = rds
        .delete_db_cluster()
        .db_cluster_identifier("billing-db")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    assert_eq!(out.db_cluster().unwrap().status(), Some("deleting"));
    assert_eq!(
        describe_cluster(&rds, "us-east-1", "billing-db")
            .await
            .unwrap()
            .unwrap()
            .status,
        "deleting"
    );
    account.settle().await.unwrap();
    assert!(
        describe_cluster(&rds, "us-east-1", "billing-db")
            .await
            .unwrap()
            .is_none()
    );
    let t = account.transitions().await.unwrap();
    assert_eq!(t.statuses("billing-db")[2..], ["deleting", "deleted"]);
}

#[tokio::test]
async fn dynamodb_backups_are_creating_then_available() {
    let account = frozen_account().await;
    let ddb = account.regional("us-east-1").await.dynamodb;
    ddb.create_table()
        .table_name("sessions")
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let out = ddb
        .create_backup()
        .table_name("sessions")
        .backup_name("sessions-1")
        .send()
        .await
        .unwrap();
    let details = out.backup_details().unwrap();
    assert_eq!(details.backup_status().as_str(), "CREATING");
    let arn = details.backup_arn().to_string();

    let delete = ddb
        .delete_backup()
        .backup_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(
        delete
            .as_service_error()
            .unwrap()
            .is_backup_in_use_exception()
    );
    let restore = ddb
        .restore_table_from_backup()
        .backup_arn(&arn)
        .target_table_name("sessions-check")
        .send()
        .await
        .unwrap_err();
    assert!(
        restore
            .as_service_error()
            .unwrap()
            .is_backup_in_use_exception()
    );

    account
        .advance_clock(duration(&account, "dynamodb_backup_create").await)
        .await
        .unwrap();
    let described = ddb.describe_backup().backup_arn(&arn).send().await.unwrap();
    assert_eq!(
        described
            .backup_description()
            .unwrap()
            .backup_details()
            .unwrap()
            .backup_status()
            .as_str(),
        "AVAILABLE"
    );
    let listed = ddb
        .list_backups()
        .table_name("sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.backup_summaries()[0]
            .backup_status()
            .map(|s| s.as_str()),
        Some("AVAILABLE")
    );
}

#[tokio::test]
async fn route53_changes_are_pending_until_insync() {
    let account = frozen_account().await;
    let r53 = account.clients(&crate::support::local_plan()).await.route53;
    let zone = r53
        .create_hosted_zone()
        .name("lifeboat.internal.")
        .caller_reference("zone-1")
        .send()
        .await
        .unwrap();
    assert_eq!(zone.change_info().unwrap().status(), &ChangeStatus::Pending);
    let zone_id = zone.hosted_zone().unwrap().id().to_string();
    let upsert = |target: &str| {
        ChangeBatch::builder()
            .changes(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(
                        ResourceRecordSet::builder()
                            .name("orders-db.db.lifeboat.internal.")
                            .r#type(RrType::Cname)
                            .ttl(60)
                            .resource_records(
                                ResourceRecord::builder().value(target).build().unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let first = r53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(upsert("orders-db.us-east-1"))
        .send()
        .await
        .unwrap();
    let second = r53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(upsert("orders-db-dr.us-west-2"))
        .send()
        .await
        .unwrap();
    let first_id = first.change_info().unwrap().id().to_string();
    let second_id = second.change_info().unwrap().id().to_string();
    assert_ne!(first_id, second_id, "every change has its own id");
    assert_eq!(
        first.change_info().unwrap().status(),
        &ChangeStatus::Pending
    );
    let status = |id: String| {
        let r53 = r53.clone();
        async move {
            r53.get_change()
                .id(id)
                .send()
                .await
                .unwrap()
                .change_info()
                .unwrap()
                .status()
                .clone()
        }
    };
    assert_eq!(status(first_id.clone()).await, ChangeStatus::Pending);
    account
        .advance_clock(duration(&account, "route53_change").await)
        .await
        .unwrap();
    assert_eq!(status(first_id).await, ChangeStatus::Insync);
    assert_eq!(status(second_id).await, ChangeStatus::Insync);

    let unknown = r53
        .get_change()
        .id("C0000000000000")
        .send()
        .await
        .unwrap_err();
    assert!(unknown.as_service_error().unwrap().is_no_such_change());
}

#[tokio::test]
async fn compressed_time_completes_on_its_own() {
    // The default time scale, as the drill runs it: nothing moves the clock here.
    let account = LocalAws::from_env().fresh_account();
    let scale = account.realism_config().await.unwrap().time_scale;
    assert!(scale < 0.01, "compressed by default: {scale}");
    let rds = account.regional("us-east-1").await.rds;
    available_instance(&account, &rds, "orders-db").await;
    account
        .set_durations(&[("db_snapshot_create", 1.0 / scale)])
        .await
        .unwrap();
    rds.create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-1")
        .send()
        .await
        .unwrap();
    // A second of real time: long enough to be seen creating first.
    assert_eq!(snapshot(&rds, "orders-1").await.status(), Some("creating"));
    let started = std::time::Instant::now();
    loop {
        if snapshot(&rds, "orders-1").await.status() == Some("available") {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "still creating after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let t = account.transitions().await.unwrap();
    let step = t.of("orders-1")[0];
    let real = step.completes_at_wall - step.started_at_wall;
    assert!((real - 1.0).abs() < 0.05, "1 s of real time, was {real}");
    assert_eq!(step.seconds, 1.0 / scale);
}
