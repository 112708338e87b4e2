use super::*;
use crate::plan::parse_plan;
use chrono::TimeZone;
use proptest::prelude::*;

fn plan() -> Plan {
    parse_plan(include_str!("../../../infra/plans/local.json")).unwrap()
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap()
}

fn ready(resource: &str) -> SourceState {
    SourceState {
        resource: resource.into(),
        condition: SourceCondition::Ready,
    }
}

fn all_ready(plan: &Plan) -> Vec<SourceState> {
    plan.resources.iter().map(|r| ready(&r.id)).collect()
}

fn snapshot(
    plan: &Plan,
    resource: &str,
    name: &str,
    created: DateTime<Utc>,
    status: &str,
) -> BackupRecord {
    let r = plan.resource(resource).unwrap();
    BackupRecord {
        id: name.into(),
        arn: Some(format!(
            "arn:aws:rds:us-east-1:123456789012:snapshot:{name}"
        )),
        kind: BackupKind::of(r.kind),
        location: plan.regions.primary.clone(),
        source: r.aws_identifier().into(),
        created_at: Some(created),
        status: BackupStatus::from_aws(status),
        automated: false,
        copy_of: None,
        tags: BTreeMap::from([
            (PLAN_TAG.to_string(), plan.name.clone()),
            (RESOURCE_TAG.to_string(), resource.to_string()),
        ]),
    }
}

fn foreign(name: &str, kind: BackupKind) -> BackupRecord {
    BackupRecord {
        id: name.into(),
        arn: None,
        kind,
        location: "us-east-1".into(),
        source: "someone-elses-db".into(),
        created_at: Some(at(1, 0)),
        status: BackupStatus::Available,
        automated: false,
        copy_of: None,
        tags: BTreeMap::new(),
    }
}

fn tick(plan: &Plan, t: DateTime<Utc>) -> SnapshotRequest<'_> {
    SnapshotRequest {
        resources: plan.resources.iter().collect(),
        timing: Timing::Scheduled(t),
    }
}

fn created(decisions: &[CreationDecision]) -> Vec<&CreationOrder> {
    decisions
        .iter()
        .filter_map(|d| match d {
            CreationDecision::Create(o) => Some(o),
            _ => None,
        })
        .collect()
}

#[test]
fn a_tick_snapshots_every_ready_resource_with_window_names_and_tiers() {
    let p = plan();
    let decisions = decide_creations(&p, &tick(&p, at(6, 7)), &all_ready(&p), &[]);
    let orders = created(&decisions);
    assert_eq!(orders.len(), 3);
    assert_eq!(
        orders[0].name,
        "lifeboat-lifeboat-local-orders-db-20261125t0600z"
    );
    assert_eq!(orders[0].kind, BackupKind::DbSnapshot);
    assert_eq!(orders[1].kind, BackupKind::ClusterSnapshot);
    // The table snapshots daily: its window starts at midnight, a Wednesday.
    assert_eq!(
        orders[2].name,
        "lifeboat-lifeboat-local-sessions-20261125t0000z"
    );
    assert_eq!(orders[2].source, "lifeboat-local-sessions");
    assert!(orders.iter().all(|o| o.tier == Tier::Daily));
    let tags = orders[0].tags(&p.name, at(6, 7));
    assert_eq!(tags[PLAN_TAG], "lifeboat-local");
    assert_eq!(tags[RESOURCE_TAG], "orders-db");
    assert_eq!(tags[TIER_TAG], "daily");
    assert_eq!(tags[CREATED_TAG], "2026-11-25T06:07:00Z");
}

#[test]
fn the_same_window_again_creates_nothing() {
    let p = plan();
    let first = decide_creations(&p, &tick(&p, at(6, 7)), &all_ready(&p), &[]);
    let existing: Vec<BackupRecord> = created(&first)
        .iter()
        .map(|o| snapshot(&p, &o.resource, &o.name, at(6, 7), "creating"))
        .collect();
    let again = decide_creations(&p, &tick(&p, at(6, 59)), &all_ready(&p), &existing);
    assert!(created(&again).is_empty(), "{again:#?}");
    assert!(
        again
            .iter()
            .all(|d| matches!(d, CreationDecision::AlreadyTaken { .. }))
    );
    // While they are still creating, the next window waits for them (one at a time).
    let next = decide_creations(&p, &tick(&p, at(7, 0)), &all_ready(&p), &existing);
    assert!(created(&next).is_empty());
    // Once they are available, the next window is due (for the hourly resources).
    let existing: Vec<BackupRecord> = existing
        .into_iter()
        .map(|b| BackupRecord {
            status: BackupStatus::Available,
            ..b
        })
        .collect();
    let next = decide_creations(&p, &tick(&p, at(7, 0)), &all_ready(&p), &existing);
    let names: Vec<&str> = created(&next).iter().map(|o| o.resource.as_str()).collect();
    assert_eq!(names, ["orders-db", "billing-db"]);
}

#[test]
fn unready_busy_and_missing_resources_are_skipped_or_failed_with_reasons() {
    let p = plan();
    let sources = vec![
        SourceState {
            resource: "orders-db".into(),
            condition: SourceCondition::NotReady {
                status: "stopped".into(),
            },
        },
        ready("billing-db"),
        SourceState {
            resource: "sessions".into(),
            condition: SourceCondition::Missing,
        },
    ];
    let busy = snapshot(&p, "billing-db", "manual-by-someone", at(5, 0), "creating");
    let decisions = decide_creations(&p, &tick(&p, at(6, 0)), &sources, &[busy]);
    match &decisions[0] {
        CreationDecision::Skip { reason, .. } => {
            assert_eq!(
                reason,
                "rds_instance orders-db is stopped, not available; the next tick tries again"
            )
        }
        other => panic!("{other:?}"),
    }
    match &decisions[1] {
        CreationDecision::Skip { reason, .. } => {
            assert!(reason.contains("manual-by-someone of it is still creating"))
        }
        other => panic!("{other:?}"),
    }
    match &decisions[2] {
        CreationDecision::Fail { reason, retry, .. } => {
            assert!(reason.contains("lifeboat-local-sessions, which does not exist in us-east-1"));
            assert_eq!(*retry, Retry::NonRetryable);
        }
        other => panic!("{other:?}"),
    }
}

/// The local plan with its RDS identifiers, and its table's name, in mixed case.
fn mixed_case_plan() -> Plan {
    let text = include_str!("../../../infra/plans/local.json")
        .replace(
            "\"id\": \"orders-db\",",
            "\"id\": \"orders-db\", \"identifier\": \"Orders-DB\",",
        )
        .replace(
            "\"id\": \"billing-db\",",
            "\"id\": \"billing-db\", \"identifier\": \"BILLING-db\",",
        )
        .replace("\"lifeboat-local-sessions\"", "\"Lifeboat-Local-Sessions\"");
    parse_plan(&text).unwrap()
}

#[test]
fn a_snapshot_in_progress_is_found_whichever_case_the_plan_or_aws_uses() {
    let p = mixed_case_plan();
    // What RDS lists: the source in lower case. The plan itself, unnormalised (as an
    // older Lifeboat or a hand-built plan holds it), finds it too.
    let mut busy = snapshot(&p, "orders-db", "manual-by-someone", at(5, 0), "creating");
    busy.source = "orders-db".into();
    let mut as_written = p.clone();
    as_written.resources[0].identifier = Some("Orders-DB".into());
    for plan in [&p, &as_written] {
        let decisions = decide_creations(
            plan,
            &tick(plan, at(6, 0)),
            &all_ready(plan),
            &[busy.clone()],
        );
        assert!(
            matches!(&decisions[0], CreationDecision::Skip { reason, .. } if reason.contains("still creating")),
            "{decisions:#?}"
        );
    }
    // A table's backups are its own only under its exact name.
    let mut other_table = snapshot(&p, "sessions", "someone-elses", at(5, 0), "creating");
    other_table.source = "lifeboat-local-sessions".into();
    let decisions = decide_creations(&p, &tick(&p, at(6, 0)), &all_ready(&p), &[other_table]);
    assert!(
        matches!(&decisions[2], CreationDecision::Create(o) if o.source == "Lifeboat-Local-Sessions")
    );
}

#[test]
fn names_and_tags_do_not_depend_on_the_plans_spelling() {
    let mixed = mixed_case_plan();
    let lower = plan();
    let decide = |p: &Plan| {
        let decisions = decide_creations(p, &tick(p, at(6, 7)), &all_ready(p), &[]);
        created(&decisions)
            .iter()
            .map(|o| (o.name.clone(), o.tags(&p.name, at(6, 7)), o.kind))
            .collect::<Vec<_>>()
    };
    assert_eq!(decide(&mixed), decide(&lower));
    // The window's snapshot, listed back by RDS in any case, is the one already taken.
    let first = decide_creations(&mixed, &tick(&mixed, at(6, 7)), &all_ready(&mixed), &[]);
    let existing: Vec<BackupRecord> = created(&first)
        .iter()
        .filter(|o| o.kind != BackupKind::TableBackup)
        .map(|o| {
            snapshot(
                &mixed,
                &o.resource,
                &o.name.to_ascii_uppercase(),
                at(6, 7),
                "available",
            )
        })
        .collect();
    let again = decide_creations(
        &mixed,
        &tick(&mixed, at(6, 30)),
        &all_ready(&mixed),
        &existing,
    );
    assert_eq!(
        created(&again).len(),
        1,
        "only the table's backup is missing: {again:#?}"
    );
    assert_eq!(created(&again)[0].kind, BackupKind::TableBackup);
}

#[test]
fn the_quota_is_checked_before_any_call() {
    let mut p = plan();
    p.quotas.manual_db_snapshots_per_region = 3;
    // Three manual DB snapshots exist, one of them someone else's: no room.
    let existing = vec![
        snapshot(&p, "orders-db", "a", at(1, 0), "available"),
        snapshot(&p, "orders-db", "b", at(2, 0), "available"),
        foreign("theirs", BackupKind::DbSnapshot),
        // Cluster snapshots and automated snapshots do not count against the DB quota.
        foreign("cluster-one", BackupKind::ClusterSnapshot),
        BackupRecord {
            automated: true,
            ..foreign("rds:auto", BackupKind::DbSnapshot)
        },
    ];
    let decisions = decide_creations(&p, &tick(&p, at(6, 0)), &all_ready(&p), &existing);
    match &decisions[0] {
        CreationDecision::Fail { reason, retry, .. } => {
            assert!(
                reason.contains("exceed the quota of 3 manual DB snapshots in us-east-1"),
                "{reason}"
            );
            assert_eq!(*retry, Retry::NonRetryable);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(decisions[1], CreationDecision::Create(_)));
    assert!(matches!(decisions[2], CreationDecision::Create(_)));
}

#[test]
fn on_demand_snapshots_use_the_minute_and_the_requested_tier() {
    let p = plan();
    let request = SnapshotRequest {
        resources: vec![p.resource("orders-db").unwrap()],
        timing: Timing::OnDemand(at(9, 41) + chrono::Duration::seconds(30), Tier::Monthly),
    };
    let decisions = decide_creations(&p, &request, &all_ready(&p), &[]);
    let orders = created(&decisions);
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].name,
        "lifeboat-lifeboat-local-orders-db-20261125t0941z"
    );
    assert_eq!(orders[0].tier, Tier::Monthly);
}

fn dr(p: &Plan) -> CopyDestination {
    p.snapshots.copy_to[0].clone()
}

fn copy_at_dr(name: &str, status: &str) -> BackupRecord {
    BackupRecord {
        id: name.into(),
        arn: None,
        kind: BackupKind::DbSnapshot,
        location: "us-west-2".into(),
        source: "orders-db".into(),
        created_at: Some(at(1, 0)),
        status: BackupStatus::from_aws(status),
        automated: false,
        copy_of: Some("src".into()),
        tags: BTreeMap::new(),
    }
}

#[test]
fn copies_go_newest_first_within_the_concurrent_copy_limit() {
    let mut p = plan();
    p.quotas.concurrent_copies_per_region = 3;
    let primary: Vec<BackupRecord> = (0..5)
        .map(|h| snapshot(&p, "orders-db", &format!("s{h}"), at(h, 0), "available"))
        .chain([
            snapshot(&p, "orders-db", "still-creating", at(6, 0), "creating"),
            foreign("not-ours", BackupKind::DbSnapshot),
        ])
        .collect();
    // s0 is already copied; one unrelated copy is in progress into the region.
    let at_dr = vec![
        copy_at_dr("s0", "available"),
        copy_at_dr("other-copy", "copying"),
    ];
    let plan_ = decide_copies(&p, &dr(&p), &primary, &at_dr, None);
    assert_eq!(plan_.in_progress, 1);
    let started: Vec<&str> = plan_.start.iter().map(|o| o.snapshot.id.as_str()).collect();
    assert_eq!(started, ["s4", "s3"]);
    let waiting: Vec<&str> = plan_.waiting.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(waiting, ["s2", "s1"]);
    assert!(
        plan_.waiting[0]
            .1
            .contains("3 copies are already in progress into us-west-2")
    );
    let tags = plan_.start[0].tags();
    assert_eq!(tags[DESTINATION_TAG], "us-west-2");
    assert_eq!(
        tags[SOURCE_TAG],
        "arn:aws:rds:us-east-1:123456789012:snapshot:s4"
    );
    assert_eq!(tags[PLAN_TAG], "lifeboat-local");

    let only = decide_copies(&p, &dr(&p), &primary, &at_dr, Some("s1"));
    assert_eq!(only.start.len(), 1);
    assert_eq!(only.start[0].snapshot.id, "s1");
    // An event or listing may spell a snapshot in another case: RDS's rule applies.
    let only = decide_copies(&p, &dr(&p), &primary, &at_dr, Some("S1"));
    assert_eq!(only.start.len(), 1);
    let at_dr_upper = vec![copy_at_dr("S0", "available")];
    let again = decide_copies(&p, &dr(&p), &primary, &at_dr_upper, None);
    assert!(
        again.start.iter().all(|o| o.snapshot.id != "s0"),
        "{again:?}"
    );
}

#[test]
fn the_rpo_is_the_age_of_the_newest_available_backup_per_location() {
    let p = plan();
    let mut inventory = BTreeMap::new();
    inventory.insert(
        "us-east-1".to_string(),
        vec![
            snapshot(&p, "orders-db", "old", at(1, 0), "available"),
            snapshot(&p, "orders-db", "new", at(5, 0), "available"),
            snapshot(&p, "orders-db", "newest-but-creating", at(6, 0), "creating"),
            snapshot(&p, "billing-db", "b", at(2, 0), "available"),
        ],
    );
    let now = at(6, 30);
    let rpo = measure_rpo(&p, &inventory, now);
    let find = |r: &str, l: &str| {
        rpo.iter()
            .find(|m| m.resource == r && m.location == l)
            .unwrap()
    };
    let orders = find("orders-db", "us-east-1");
    assert_eq!(orders.newest.as_deref(), Some("new"));
    assert_eq!(orders.age_seconds, Some(90 * 60));
    // orders-db has a replica: its backups are held to two intervals (2 h).
    assert_eq!(orders.target_seconds, 2 * 3600);
    assert!(!orders.breached);
    // No copy in the DR region yet: breached, with no age.
    let orders_dr = find("orders-db", "us-west-2");
    assert_eq!(orders_dr.age_seconds, None);
    assert!(orders_dr.breached);
    // billing-db has no replica: its RPO of 120 minutes is the target; 4.5 h old breaches.
    let billing = find("billing-db", "us-east-1");
    assert_eq!(billing.target_seconds, 120 * 60);
    assert!(billing.breached);
    // Tables are measured at the primary and at the DR region's exports.
    assert!(
        rpo.iter()
            .any(|m| m.resource == "sessions" && m.location == "us-west-2 (export)")
    );
    assert_eq!(rpo.len(), 2 + 2 + 2);
}

fn status_strategy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["available", "creating", "copying", "failed"])
}

fn condition_strategy() -> impl Strategy<Value = SourceCondition> {
    prop_oneof![
        4 => Just(SourceCondition::Ready),
        1 => Just(SourceCondition::NotReady { status: "stopped".into() }),
        1 => Just(SourceCondition::Missing),
        1 => Just(SourceCondition::Unreadable { reason: "throttled".into(), retry: Retry::Retryable }),
    ]
}

proptest! {
    /// Every requested resource gets exactly one decision; creations never exceed the
    /// quota room; applying the creations and deciding again creates nothing more.
    #[test]
    fn creation_decisions_are_complete_bounded_and_idempotent(
        conditions in proptest::collection::vec(condition_strategy(), 3),
        existing_count in 0u32..6,
        quota in 1u32..8,
        minute in 0u32..(24 * 60),
    ) {
        let mut p = plan();
        p.quotas.manual_db_snapshots_per_region = quota;
        p.quotas.manual_cluster_snapshots_per_region = quota;
        let sources: Vec<SourceState> = p.resources.iter().zip(&conditions)
            .map(|(r, c)| SourceState { resource: r.id.clone(), condition: c.clone() })
            .collect();
        let existing: Vec<BackupRecord> = (0..existing_count)
            .map(|i| foreign(&format!("x{i}"), BackupKind::DbSnapshot))
            .collect();
        let t = at(0, 0) + chrono::Duration::minutes(i64::from(minute));
        let decisions = decide_creations(&p, &tick(&p, t), &sources, &existing);
        prop_assert_eq!(decisions.len(), p.resources.len());
        let db_creates = created(&decisions).iter().filter(|o| o.kind == BackupKind::DbSnapshot).count() as u32;
        prop_assert!(db_creates <= quota.saturating_sub(existing_count));
        let mut after = existing.clone();
        for o in created(&decisions) {
            after.push(snapshot(&p, &o.resource, &o.name, t, "creating"));
        }
        let again = decide_creations(&p, &tick(&p, t), &sources, &after);
        prop_assert!(created(&again).is_empty());
    }

    /// Copies never exceed the free slots, every candidate is started or waits, and the
    /// started ones are the newest.
    #[test]
    fn copy_decisions_respect_the_limit_and_favour_the_newest(
        hours in proptest::collection::vec((0u32..24, status_strategy()), 0..30),
        in_progress in 0usize..25,
        limit in 1u32..=20,
    ) {
        let mut p = plan();
        p.quotas.concurrent_copies_per_region = limit;
        let primary: Vec<BackupRecord> = hours.iter().enumerate()
            .map(|(i, (h, s))| snapshot(&p, "orders-db", &format!("s{i}"), at(*h, 0), s))
            .collect();
        let at_dr: Vec<BackupRecord> = (0..in_progress).map(|i| copy_at_dr(&format!("c{i}"), "copying")).collect();
        let out = decide_copies(&p, &dr(&p), &primary, &at_dr, None);
        let candidates = primary.iter().filter(|r| r.status == BackupStatus::Available).count();
        prop_assert!(out.start.len() as u32 <= limit.saturating_sub(in_progress as u32));
        prop_assert_eq!(out.start.len() + out.waiting.len(), candidates);
        let oldest_started = out.start.iter().filter_map(|o| o.snapshot.created_at).min();
        let newest_waiting = out.waiting.iter()
            .filter_map(|(id, _)| primary.iter().find(|r| &r.id == id).and_then(|r| r.created_at))
            .max();
        if let (Some(a), Some(b)) = (oldest_started, newest_waiting) {
            prop_assert!(a >= b);
        }
    }
}
