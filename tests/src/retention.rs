//! Snapshots for retention to work on: Lifeboat-tagged RDS snapshots and cluster snapshots
//! whose `lifeboat:created-at` tag is backdated (the emulator stamps every snapshot with
//! the moment it was made, and retention reads Lifeboat's own creation tag first, as it
//! does for copies), created many at a time.

use crate::Account;
use aws_sdk_rds::types::Tag;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::{self, StreamExt};
use lifeboat::error::AwsError;
use lifeboat::plan::{CREATED_TAG, LEGAL_HOLD_TAG, PLAN_TAG, RESOURCE_TAG, TIER_TAG};
use lifeboat::schedule::Tier;

/// Snapshot creations in flight at once (the emulator serves them one by one anyway;
/// a few in flight hide the round trips).
const PARALLEL_CREATES: usize = 16;

/// What a seeded snapshot is a snapshot of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedKind {
    /// A DB snapshot of an instance.
    Instance,
    /// A DB cluster snapshot of a cluster.
    Cluster,
}

/// One snapshot to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSnapshot {
    /// Instance or cluster snapshot.
    pub kind: SeedKind,
    /// The instance or cluster it is taken of (in the region of the client used).
    pub source: String,
    /// Its identifier.
    pub name: String,
    /// Lifeboat's tags: plan and resource; `None` makes a foreign snapshot (no tags).
    pub owner: Option<(String, String)>,
    /// Its `lifeboat:tier` tag.
    pub tier: Tier,
    /// The backdated `lifeboat:created-at`.
    pub created_at: DateTime<Utc>,
    /// Put the `lifeboat:legal-hold` tag on it.
    pub legal_hold: bool,
}

impl SeedSnapshot {
    /// A Lifeboat DB snapshot of `plan`'s `resource`, taken of `source` at `created_at`.
    pub fn lifeboat(
        plan: &str,
        resource: &str,
        source: &str,
        name: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        SeedSnapshot {
            kind: SeedKind::Instance,
            source: source.to_string(),
            name: name.into(),
            owner: Some((plan.to_string(), resource.to_string())),
            tier: Tier::Daily,
            created_at,
            legal_hold: false,
        }
    }

    fn tags(&self) -> Vec<Tag> {
        let mut tags = Vec::new();
        let mut add = |k: &str, v: String| tags.push(Tag::builder().key(k).value(v).build());
        if let Some((plan, resource)) = &self.owner {
            add(PLAN_TAG, plan.clone());
            add(RESOURCE_TAG, resource.clone());
            add(TIER_TAG, self.tier.as_str().to_string());
            add(
                CREATED_TAG,
                self.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
        }
        if self.legal_hold {
            add(LEGAL_HOLD_TAG, "drill".to_string());
        }
        tags
    }
}

async fn create(rds: &aws_sdk_rds::Client, s: &SeedSnapshot) -> Result<(), String> {
    match s.kind {
        SeedKind::Instance => rds
            .create_db_snapshot()
            .db_instance_identifier(&s.source)
            .db_snapshot_identifier(&s.name)
            .set_tags(Some(s.tags()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("rds", "CreateDBSnapshot", &s.name, &e).to_string()),
        SeedKind::Cluster => rds
            .create_db_cluster_snapshot()
            .db_cluster_identifier(&s.source)
            .db_cluster_snapshot_identifier(&s.name)
            .set_tags(Some(s.tags()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                AwsError::from_sdk("rds", "CreateDBClusterSnapshot", &s.name, &e).to_string()
            }),
    }
}

/// Create every snapshot with `rds`, several at a time; they start as `creating`.
pub async fn create_snapshots(
    rds: &aws_sdk_rds::Client,
    snapshots: &[SeedSnapshot],
) -> Result<(), String> {
    let failures: Vec<String> = stream::iter(snapshots)
        .map(|s| create(rds, s))
        .buffer_unordered(PARALLEL_CREATES)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of {} snapshots not created; first: {first}",
            failures.len(),
            snapshots.len()
        )),
    }
}

/// [`create_snapshots`], then move the account's clock until they are all available
/// (tests: no waiting).
pub async fn seed_snapshots(
    account: &Account,
    rds: &aws_sdk_rds::Client,
    snapshots: &[SeedSnapshot],
) -> Result<(), String> {
    create_snapshots(rds, snapshots).await?;
    account
        .settle()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Manual DB and cluster snapshot identifiers in a region (every page).
pub async fn manual_snapshot_names(rds: &aws_sdk_rds::Client) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut pages = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| AwsError::from_sdk("rds", "DescribeDBSnapshots", "", &e).to_string())?;
        names.extend(
            page.db_snapshots()
                .iter()
                .filter_map(|s| s.db_snapshot_identifier().map(str::to_string)),
        );
    }
    let mut pages = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            AwsError::from_sdk("rds", "DescribeDBClusterSnapshots", "", &e).to_string()
        })?;
        names.extend(
            page.db_cluster_snapshots()
                .iter()
                .filter_map(|s| s.db_cluster_snapshot_identifier().map(str::to_string)),
        );
    }
    names.sort();
    Ok(names)
}
