//! Conformance of the local AWS where the launcher corrects moto: each test drives the
//! behaviour with the SDK calls Lifeboat makes and asserts what AWS answers.

use harness::LocalAws;
use lifeboat::aws::describe_instance;
use lifeboat::error::AwsError;

async fn primary_with_replica(
    account: &harness::Account,
) -> (aws_sdk_rds::Client, aws_sdk_rds::Client) {
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    primary
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
    // Both take minutes to become available; a replica needs an available source.
    account.settle().await.unwrap();
    dr.create_db_instance_read_replica()
        .db_instance_identifier("orders-db-dr")
        .source_db_instance_identifier(account.arn("rds", "us-east-1", "db:orders-db"))
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
    (primary, dr)
}

#[tokio::test]
async fn promotion_detaches_the_replica_from_its_source_as_aws_does() {
    let account = LocalAws::from_env().fresh_account();
    let (primary, dr) = primary_with_replica(&account).await;

    let before = describe_instance(&dr, "us-west-2", "orders-db-dr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        before.replicates_from.as_deref(),
        Some(account.arn("rds", "us-east-1", "db:orders-db").as_str())
    );
    let source = describe_instance(&primary, "us-east-1", "orders-db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        source.replicas,
        vec![account.arn("rds", "us-west-2", "db:orders-db-dr")]
    );

    // Promotion takes minutes and a reboot; the replica stays attached until it is done.
    account.set_time_scale(1.0).await.unwrap();
    let promoted = dr
        .promote_read_replica()
        .db_instance_identifier("orders-db-dr")
        .send()
        .await
        .unwrap();
    assert_eq!(
        promoted.db_instance().unwrap().db_instance_status(),
        Some("modifying")
    );
    let durations = account.realism_config().await.unwrap().durations;
    account
        .advance_clock(durations["db_instance_promote"])
        .await
        .unwrap();
    let rebooting = describe_instance(&dr, "us-west-2", "orders-db-dr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rebooting.status, "rebooting");
    assert!(rebooting.replicates_from.is_some());
    account
        .advance_clock(durations["db_instance_reboot"])
        .await
        .unwrap();

    let after = describe_instance(&dr, "us-west-2", "orders-db-dr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, "available");
    assert_eq!(
        after.replicates_from, None,
        "a promoted instance is standalone"
    );
    let source = describe_instance(&primary, "us-east-1", "orders-db")
        .await
        .unwrap()
        .unwrap();
    assert!(source.replicas.is_empty(), "the source no longer lists it");
    let t = account.transitions().await.unwrap();
    assert_eq!(
        t.statuses("orders-db-dr")[2..],
        ["modifying", "rebooting", "available"]
    );
}

#[tokio::test]
async fn promoting_an_instance_that_is_no_replica_is_refused() {
    let account = LocalAws::from_env().fresh_account();
    account.set_time_scale(1.0).await.unwrap();
    let (primary, dr) = primary_with_replica(&account).await;
    let err = primary
        .promote_read_replica()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_db_instance_state_fault(),
        "{err:?}"
    );
    let classified = AwsError::from_sdk("rds", "PromoteReadReplica", "orders-db", &err);
    assert_eq!(classified.code.as_deref(), Some("InvalidDBInstanceState"));

    // Promoting twice: the second is refused the same way, while the first is under way
    // and once it has detached the replica.
    dr.promote_read_replica()
        .db_instance_identifier("orders-db-dr")
        .send()
        .await
        .unwrap();
    let during = dr
        .promote_read_replica()
        .db_instance_identifier("orders-db-dr")
        .send()
        .await
        .unwrap_err();
    assert!(
        during
            .as_service_error()
            .unwrap()
            .is_invalid_db_instance_state_fault()
    );
    account.settle().await.unwrap();
    let again = dr
        .promote_read_replica()
        .db_instance_identifier("orders-db-dr")
        .send()
        .await
        .unwrap_err();
    assert!(
        again
            .as_service_error()
            .unwrap()
            .is_invalid_db_instance_state_fault()
    );

    let missing = dr
        .promote_read_replica()
        .db_instance_identifier("no-such-db")
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .as_service_error()
            .unwrap()
            .is_db_instance_not_found_fault()
    );
}

#[tokio::test]
async fn accounts_are_isolated_from_each_other() {
    let local = LocalAws::from_env();
    let (a, b) = (local.fresh_account(), local.fresh_account());
    assert_ne!(a.id, b.id);
    let _ = primary_with_replica(&a).await;
    let in_b = b
        .regional("us-east-1")
        .await
        .rds
        .describe_db_instances()
        .send()
        .await
        .unwrap();
    assert!(in_b.db_instances().is_empty());
    let in_a = describe_instance(&a.regional("us-east-1").await.rds, "us-east-1", "orders-db")
        .await
        .unwrap()
        .unwrap();
    assert!(
        in_a.replicas[0].contains(&a.id),
        "ARNs carry the account: {:?}",
        in_a.replicas
    );
}

#[tokio::test]
async fn another_account_copies_a_snapshot_only_once_it_is_shared_with_it() {
    let local = LocalAws::from_env();
    let (owner, vault) = (local.fresh_account(), local.fresh_account());
    let (primary, _) = primary_with_replica(&owner).await;
    owner.settle().await.unwrap();
    primary
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("nightly")
        .send()
        .await
        .unwrap();
    owner.settle().await.unwrap();
    let arn = owner.arn("rds", "us-east-1", "snapshot:nightly");
    let vault_rds = vault.regional("eu-west-1").await.rds;
    let copy = || {
        vault_rds
            .copy_db_snapshot()
            .source_db_snapshot_identifier(&arn)
            .target_db_snapshot_identifier("nightly")
            .send()
    };
    // Not shared: AWS answers as if it did not exist.
    let err = copy().await.unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_db_snapshot_not_found_fault(),
        "{err:?}"
    );
    primary
        .modify_db_snapshot_attribute()
        .db_snapshot_identifier("nightly")
        .attribute_name("restore")
        .values_to_add(&vault.id)
        .send()
        .await
        .unwrap();
    copy().await.expect("shared: the vault account copies it");
    let listed = vault_rds.describe_db_snapshots().send().await.unwrap();
    assert_eq!(listed.db_snapshots().len(), 1);
    // The owner's account has no copy of its own in eu-west-1.
    let owners = owner
        .regional("eu-west-1")
        .await
        .rds
        .describe_db_snapshots()
        .send()
        .await
        .unwrap();
    assert!(owners.db_snapshots().is_empty());
}
