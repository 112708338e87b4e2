//! Limits AWS enforces that moto does not: the manual-snapshot quotas, at most 20
//! cross-region copies in progress into one region, automated snapshots not deletable,
//! an encrypted cross-region copy without a destination key, and `MaxRecords`/`Marker`
//! pagination of the listings Lifeboat reads.

use crate::support::{available_cluster, available_instance, code, frozen_account, kms_key};
use harness::realism::Limits;
use lifeboat::error::{AwsError, AwsFailure, Classify, Retry};

async fn snapshot(rds: &aws_sdk_rds::Client, instance: &str, id: &str) -> Result<(), String> {
    rds.create_db_snapshot()
        .db_instance_identifier(instance)
        .db_snapshot_identifier(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| code(&e))
}

#[tokio::test]
async fn a_region_holds_100_manual_db_snapshots_by_default() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    available_instance(&account, &primary, "orders-db").await;
    // In progress or done, every manual snapshot counts; the automated one does not.
    for i in 0..100 {
        snapshot(&primary, "orders-db", &format!("orders-{i}"))
            .await
            .unwrap();
    }
    let err = primary
        .create_db_snapshot()
        .db_instance_identifier("orders-db")
        .db_snapshot_identifier("orders-100")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_snapshot_quota_exceeded_fault(),
        "{err:?}"
    );
    let classified = AwsError::from_sdk("rds", "CreateDBSnapshot", "orders-db", &err);
    assert_eq!(classified.failure, AwsFailure::Refused);
    assert_eq!(classified.retry(), Retry::NonRetryable);

    // The quota is per region: the DR region still takes copies.
    account.settle().await.unwrap();
    let key = kms_key(&account, "us-west-2").await;
    dr.copy_db_snapshot()
        .source_db_snapshot_identifier(account.arn("rds", "us-east-1", "snapshot:orders-0"))
        .target_db_snapshot_identifier("orders-0-dr")
        .kms_key_id(key)
        .send()
        .await
        .expect("another region has its own quota");
    // Deleting one frees a place.
    primary
        .delete_db_snapshot()
        .db_snapshot_identifier("orders-0")
        .send()
        .await
        .unwrap();
    snapshot(&primary, "orders-db", "orders-100").await.unwrap();
}

#[tokio::test]
async fn the_cluster_snapshot_quota_is_enforced_and_configurable() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    available_cluster(&account, &rds, "billing-db").await;
    let config = account
        .set_limits(Limits {
            manual_cluster_snapshots_per_region: Some(2),
            ..Limits::default()
        })
        .await
        .unwrap();
    assert_eq!(config.limits.manual_cluster_snapshots_per_region, Some(2));
    assert_eq!(
        config.limits.manual_db_snapshots_per_region,
        Some(100),
        "the others keep their defaults"
    );
    for id in ["billing-1", "billing-2"] {
        rds.create_db_cluster_snapshot()
            .db_cluster_identifier("billing-db")
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .unwrap();
    }
    let err = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier("billing-db")
        .db_cluster_snapshot_identifier("billing-3")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_snapshot_quota_exceeded_fault()
    );
}

#[tokio::test]
async fn at_most_20_copies_are_in_progress_into_one_region() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    let key = kms_key(&account, "us-west-2").await;
    available_instance(&account, &primary, "orders-db").await;
    for i in 0..21 {
        snapshot(&primary, "orders-db", &format!("orders-{i}"))
            .await
            .unwrap();
    }
    account.settle().await.unwrap();
    let copy = |i: usize| {
        dr.copy_db_snapshot()
            .source_db_snapshot_identifier(account.arn(
                "rds",
                "us-east-1",
                &format!("snapshot:orders-{i}"),
            ))
            .target_db_snapshot_identifier(format!("orders-{i}-dr"))
            .kms_key_id(&key)
            .send()
    };
    for i in 0..20 {
        copy(i).await.unwrap();
    }
    let err = copy(20).await.unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_snapshot_quota_exceeded_fault(),
        "{err:?}"
    );
    assert!(
        format!("{err:?}").contains("Cannot copy more than 20 snapshots across regions"),
        "{err:?}"
    );
    // A copy within the region is no cross-region copy: it does not need a slot.
    primary
        .copy_db_snapshot()
        .source_db_snapshot_identifier("orders-20")
        .target_db_snapshot_identifier("orders-20-local")
        .send()
        .await
        .expect("same-region copies are not limited");
    // When the copies finish, the slots are free again.
    account.settle().await.unwrap();
    copy(20).await.expect("a free slot");
}

#[tokio::test]
async fn cluster_snapshot_copies_have_their_own_slots() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    let key = kms_key(&account, "us-west-2").await;
    account
        .set_limits(Limits {
            concurrent_copies_per_region: Some(1),
            ..Limits::default()
        })
        .await
        .unwrap();
    available_cluster(&account, &primary, "billing-db").await;
    for id in ["billing-1", "billing-2"] {
        primary
            .create_db_cluster_snapshot()
            .db_cluster_identifier("billing-db")
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .unwrap();
    }
    account.settle().await.unwrap();
    let copy = |id: &'static str| {
        dr.copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(account.arn(
                "rds",
                "us-east-1",
                &format!("cluster-snapshot:{id}"),
            ))
            .target_db_cluster_snapshot_identifier(format!("{id}-dr"))
            .kms_key_id(&key)
            .send()
    };
    copy("billing-1").await.unwrap();
    let err = copy("billing-2").await.unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_snapshot_quota_exceeded_fault()
    );
    account.settle().await.unwrap();
    copy("billing-2").await.expect("the slot is free again");
}

#[tokio::test]
async fn automated_snapshots_cannot_be_deleted() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    available_instance(&account, &rds, "orders-db").await;
    available_cluster(&account, &rds, "billing-db").await;

    let automated = rds
        .describe_db_snapshots()
        .db_instance_identifier("orders-db")
        .snapshot_type("automated")
        .send()
        .await
        .unwrap();
    let id = automated.db_snapshots()[0]
        .db_snapshot_identifier()
        .unwrap()
        .to_string();
    assert!(id.starts_with("rds:orders-db-"), "{id}");
    let err = rds
        .delete_db_snapshot()
        .db_snapshot_identifier(&id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_db_snapshot_state_fault()
    );

    let automated = rds
        .describe_db_cluster_snapshots()
        .db_cluster_identifier("billing-db")
        .snapshot_type("automated")
        .send()
        .await
        .unwrap();
    let id = automated.db_cluster_snapshots()[0]
        .db_cluster_snapshot_identifier()
        .unwrap()
        .to_string();
    let err = rds
        .delete_db_cluster_snapshot()
        .db_cluster_snapshot_identifier(&id)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_db_cluster_snapshot_state_fault()
    );
}

#[tokio::test]
async fn an_encrypted_cross_region_copy_needs_a_destination_key() {
    let account = frozen_account().await;
    let primary = account.regional("us-east-1").await.rds;
    let dr = account.regional("us-west-2").await.rds;
    available_instance(&account, &primary, "orders-db").await;
    snapshot(&primary, "orders-db", "orders-1").await.unwrap();
    account.settle().await.unwrap();
    let err = dr
        .copy_db_snapshot()
        .source_db_snapshot_identifier(account.arn("rds", "us-east-1", "snapshot:orders-1"))
        .target_db_snapshot_identifier("orders-1-dr")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterValue");
    assert!(format!("{err:?}").contains("Must specify new KMS key"));

    // Unencrypted snapshots copy without one.
    primary
        .create_db_instance()
        .db_instance_identifier("plain-db")
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username("admin_user")
        .master_user_password("emulated-only-pw")
        .send()
        .await
        .unwrap();
    account.settle().await.unwrap();
    snapshot(&primary, "plain-db", "plain-1").await.unwrap();
    account.settle().await.unwrap();
    dr.copy_db_snapshot()
        .source_db_snapshot_identifier(account.arn("rds", "us-east-1", "snapshot:plain-1"))
        .target_db_snapshot_identifier("plain-1-dr")
        .send()
        .await
        .expect("no key needed for an unencrypted snapshot");
}

#[tokio::test]
async fn snapshot_listings_are_paginated_as_aws_pages_them() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    account
        .set_limits(Limits {
            manual_db_snapshots_per_region: Some(200),
            ..Limits::default()
        })
        .await
        .unwrap();
    available_instance(&account, &rds, "orders-db").await;
    for i in 0..130 {
        snapshot(&rds, "orders-db", &format!("orders-{i:03}"))
            .await
            .unwrap();
    }
    // 130 manual + 1 automated.
    let first = rds.describe_db_snapshots().send().await.unwrap();
    assert_eq!(first.db_snapshots().len(), 100, "100 records by default");
    let marker = first.marker().expect("a marker to the next page");
    let second = rds
        .describe_db_snapshots()
        .marker(marker)
        .send()
        .await
        .unwrap();
    assert_eq!(second.db_snapshots().len(), 31);
    assert!(second.marker().is_none());

    // The SDK's paginator, as Lifeboat lists snapshots.
    let all: Vec<_> = rds
        .describe_db_snapshots()
        .max_records(20)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 7, "131 snapshots in pages of 20");
    let mut ids: Vec<String> = all
        .iter()
        .flat_map(|p| p.db_snapshots())
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 131);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 131, "no snapshot twice");

    for bad in [10, 19, 101] {
        let err = rds
            .describe_db_snapshots()
            .max_records(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidParameterValue", "MaxRecords {bad}");
    }
}

#[tokio::test]
async fn instance_cluster_and_cluster_snapshot_listings_are_paginated() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    for i in 0..21 {
        rds.create_db_instance()
            .db_instance_identifier(format!("db-{i:02}"))
            .engine("postgres")
            .db_instance_class("db.t4g.micro")
            .allocated_storage(20)
            .master_username("admin_user")
            .master_user_password("emulated-only-pw")
            .send()
            .await
            .unwrap();
        rds.create_db_cluster()
            .db_cluster_identifier(format!("cluster-{i:02}"))
            .engine("aurora-postgresql")
            .master_username("admin_user")
            .master_user_password("emulated-only-pw")
            .send()
            .await
            .unwrap();
    }
    account.settle().await.unwrap();
    for i in 0..21 {
        rds.create_db_cluster_snapshot()
            .db_cluster_identifier("cluster-00")
            .db_cluster_snapshot_identifier(format!("cs-{i:02}"))
            .send()
            .await
            .unwrap();
    }

    let instances = rds
        .describe_db_instances()
        .max_records(20)
        .send()
        .await
        .unwrap();
    assert_eq!(instances.db_instances().len(), 20);
    let rest = rds
        .describe_db_instances()
        .max_records(20)
        .marker(instances.marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.db_instances().len(), 1);
    assert!(rest.marker().is_none());

    let clusters: usize = rds
        .describe_db_clusters()
        .max_records(20)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .len();
    assert_eq!(clusters, 21);
    let pages = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .max_records(20)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(
        pages
            .iter()
            .map(|p| p.db_cluster_snapshots().len())
            .sum::<usize>(),
        21
    );
    let err = rds
        .describe_db_clusters()
        .max_records(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterValue");
}

/// moto takes any cluster snapshot identifier and any backup name; AWS refuses what its
/// rules do not allow (the far-future tick once created `...-+2621421231t2300z`).
#[tokio::test]
async fn identifiers_aws_refuses_for_cluster_snapshots_and_table_backups_are_refused() {
    let account = frozen_account().await;
    let rds = account.regional("us-east-1").await.rds;
    available_cluster(&account, &rds, "billing-db").await;
    let too_long = format!("b{}", "x".repeat(63));
    for bad in [
        "lifeboat-billing-db-+2621421231t2300z",
        "1-starts-with-a-digit",
        "ends-with-a-hyphen-",
        "two--hyphens",
        "under_score",
        too_long.as_str(),
    ] {
        let err = rds
            .create_db_cluster_snapshot()
            .db_cluster_identifier("billing-db")
            .db_cluster_snapshot_identifier(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidParameterValue", "{bad}");
    }
    rds.create_db_cluster_snapshot()
        .db_cluster_identifier("billing-db")
        .db_cluster_snapshot_identifier(format!("b{}", "x".repeat(62)))
        .send()
        .await
        .expect("63 characters are allowed");
    account.settle().await.unwrap();
    let err = account
        .regional("us-west-2")
        .await
        .rds
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(account.arn(
            "rds",
            "us-east-1",
            &format!("cluster-snapshot:b{}", "x".repeat(62)),
        ))
        .target_db_cluster_snapshot_identifier("copy-+2621421231t2300z")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterValue");
    let listed = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_cluster_snapshots()
        .len();
    assert_eq!(listed, 1, "nothing was created by a refused request");

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
    for bad in [
        "ab",
        "sessions-+2621421231t2300z",
        "with space",
        "colon:name",
    ] {
        let err = ddb
            .create_backup()
            .table_name("sessions")
            .backup_name(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "ValidationException", "{bad}");
    }
    ddb.create_backup()
        .table_name("sessions")
        .backup_name("lifeboat-local.sessions_2026")
        .send()
        .await
        .expect("letters, digits, hyphens, dots and underscores are allowed");
    let backups = ddb.list_backups().send().await.unwrap();
    assert_eq!(backups.backup_summaries().len(), 1);
}
