//! Example-based tests with concrete dates: the rules as an operator would check them.

use super::*;
use crate::plan::parse_plan;
use chrono::{Duration, TimeZone};

const EXAMPLE_PLAN: &str = include_str!("../../../infra/plans/example.json");

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("a valid test date")
}

/// An available manual snapshot of `resource` under plan "orders", nothing else special.
fn snapshot(id: &str, resource: &str, created_at: DateTime<Utc>) -> SnapshotFacts {
    SnapshotFacts {
        id: id.to_string(),
        resource: Some(resource.to_string()),
        plan: Some("orders".to_string()),
        created_at,
        status: "available".to_string(),
        automated: false,
        validated_at: None,
        legal_hold: false,
        copy_in_progress: false,
    }
}

fn rules(policy: RetentionPolicy) -> RetentionRules {
    RetentionRules {
        plan: "orders".to_string(),
        policy,
        min_keep_by_resource: BTreeMap::new(),
    }
}

fn policy(daily: u32, weekly: u32, monthly: u32, yearly: u32, min_keep: u32) -> RetentionPolicy {
    RetentionPolicy {
        keep_daily: daily,
        keep_weekly: weekly,
        keep_monthly: monthly,
        keep_yearly: yearly,
        min_keep,
    }
}

/// The rendered decisions of the kept snapshots, by id, and the ids deleted.
fn outcome(decisions: &[SnapshotDecision]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut kept = BTreeMap::new();
    let mut deleted = Vec::new();
    for d in decisions {
        if d.decision.is_delete() {
            assert_eq!(d.decision.to_string(), "deleted: outside every bucket");
            deleted.push(d.id.clone());
        } else {
            kept.insert(d.id.clone(), d.decision.to_string());
        }
    }
    (kept, deleted)
}

fn expect_kept(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(id, why)| (id.to_string(), why.to_string()))
        .collect()
}

#[test]
fn forty_daily_snapshots_keep_seven_days_four_weeks_two_months() {
    // One snapshot a day at 03:00 UTC, 2026-10-16 to 2026-11-24 (a Tuesday), listed
    // oldest first; two of them passed restore validation.
    let first = at(2026, 10, 16, 3);
    let mut snapshots: Vec<SnapshotFacts> = (0..40)
        .map(|day| {
            let created = first + Duration::days(day);
            let id = format!("orders-db-{}", created.format("%Y%m%d"));
            snapshot(&id, "orders-db", created)
        })
        .collect();
    for s in &mut snapshots {
        if s.id == "orders-db-20261018" || s.id == "orders-db-20261020" {
            s.validated_at = Some(s.created_at + Duration::hours(5));
        }
    }
    let now = at(2026, 11, 24, 12);
    let decisions = plan_retention(&rules(policy(7, 4, 2, 0, 3)), &snapshots, now);

    assert_eq!(decisions.len(), 40);
    let (kept, deleted) = outcome(&decisions);
    assert_eq!(
        kept,
        expect_kept(&[
            (
                "orders-db-20261124",
                "kept: newest available, monthly 2026-11, weekly 2026-W48, daily 2026-11-24, min_keep (3 newest)"
            ),
            (
                "orders-db-20261123",
                "kept: daily 2026-11-23, min_keep (3 newest)"
            ),
            (
                "orders-db-20261122",
                "kept: weekly 2026-W47, daily 2026-11-22, min_keep (3 newest)"
            ),
            ("orders-db-20261121", "kept: daily 2026-11-21"),
            ("orders-db-20261120", "kept: daily 2026-11-20"),
            ("orders-db-20261119", "kept: daily 2026-11-19"),
            ("orders-db-20261118", "kept: daily 2026-11-18"),
            // Sundays close the ISO weeks before this one.
            ("orders-db-20261115", "kept: weekly 2026-W46"),
            ("orders-db-20261108", "kept: weekly 2026-W45"),
            ("orders-db-20261031", "kept: monthly 2026-10"),
            ("orders-db-20261020", "kept: newest validated"),
        ])
    );
    assert_eq!(deleted.len(), 29);
    assert!(deleted.contains(&"orders-db-20261018".to_string()));
}

#[test]
fn weeks_are_iso_weeks_and_years_are_calendar_years() {
    // 2026-12-28 (Monday) to 2027-01-03 (Sunday) is ISO week 2026-W53, across New Year.
    let snapshots: Vec<SnapshotFacts> = (0..12)
        .map(|day| {
            let created = at(2026, 12, 26, 6) + Duration::days(day);
            snapshot(&format!("s-{}", created.format("%m%d")), "carts", created)
        })
        .collect();
    let decisions = plan_retention(
        &rules(policy(0, 3, 0, 2, 0)),
        &snapshots,
        at(2027, 1, 6, 12),
    );
    let (kept, deleted) = outcome(&decisions);
    assert_eq!(
        kept,
        expect_kept(&[
            (
                "s-0106",
                "kept: newest available, yearly 2027, weekly 2027-W01"
            ),
            ("s-0103", "kept: weekly 2026-W53"),
            ("s-1231", "kept: yearly 2026"),
            ("s-1227", "kept: weekly 2026-W52"),
        ])
    );
    assert_eq!(deleted.len(), 8);
}

#[test]
fn protected_snapshots_are_kept_and_say_why() {
    let now = at(2026, 11, 24, 12);
    let old = at(2026, 1, 10, 3);
    let mut listing = vec![snapshot("fresh", "orders-db", at(2026, 11, 24, 3))];
    let mut add = |id: &str, change: &dyn Fn(&mut SnapshotFacts)| {
        let mut s = snapshot(id, "orders-db", old);
        change(&mut s);
        listing.push(s);
    };
    add("hand-made", &|s| s.plan = None);
    add("other-plan", &|s| s.plan = Some("payments".to_string()));
    add("rds-automated", &|s| s.automated = true);
    add("untagged-resource", &|s| s.resource = None);
    add("empty-resource-tag", &|s| s.resource = Some(String::new()));
    add("being-made", &|s| s.status = "creating".to_string());
    add("copy-source", &|s| s.copy_in_progress = true);
    add("held", &|s| s.legal_hold = true);
    add("held-and-foreign", &|s| {
        s.legal_hold = true;
        s.plan = None;
    });
    add("twice", &|_| {});
    add("twice", &|s| s.created_at = at(2026, 1, 11, 3));
    add("from-the-future", &|s| {
        s.created_at = now + Duration::minutes(3)
    });
    add("plain-old", &|_| {});
    // DynamoDB reports its statuses in capitals.
    add("dynamodb-backup", &|s| s.status = "AVAILABLE".to_string());

    let decisions = plan_retention(&rules(policy(1, 0, 0, 0, 0)), &listing, now);
    let rendered: Vec<String> = decisions.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        rendered,
        [
            "fresh: kept: newest available, daily 2026-11-24",
            "hand-made: kept: not Lifeboat's (plan tag missing or another plan)",
            "other-plan: kept: not Lifeboat's (plan tag missing or another plan)",
            "rds-automated: kept: automated snapshot",
            "untagged-resource: kept: not attributable (plan tag but no resource tag)",
            "empty-resource-tag: kept: not attributable (plan tag but no resource tag)",
            "being-made: kept: not available (creating)",
            "copy-source: kept: source of a copy in progress",
            "held: kept: legal hold",
            "held-and-foreign: kept: legal hold, not Lifeboat's (plan tag missing or another plan)",
            "twice: kept: id listed more than once",
            "twice: kept: id listed more than once",
            "from-the-future: kept: created after now (clock skew)",
            "plain-old: deleted: outside every bucket",
            "dynamodb-backup: deleted: outside every bucket",
        ]
    );
}

#[test]
fn protected_snapshots_still_fill_buckets_but_excluded_ones_do_not() {
    let now = at(2026, 11, 24, 12);
    let mut held = snapshot("held-oct", "orders-db", at(2026, 10, 30, 3));
    held.legal_hold = true;
    let mut creating = snapshot("creating-sep", "orders-db", at(2026, 9, 30, 3));
    creating.status = "creating".to_string();
    let listing = vec![
        snapshot("nov", "orders-db", at(2026, 11, 20, 3)),
        held,
        snapshot("oct-older", "orders-db", at(2026, 10, 2, 3)),
        creating,
        snapshot("sep-older", "orders-db", at(2026, 9, 2, 3)),
        snapshot("aug", "orders-db", at(2026, 8, 2, 3)),
    ];
    let decisions = plan_retention(&rules(policy(0, 0, 3, 0, 0)), &listing, now);
    let (kept, deleted) = outcome(&decisions);
    assert_eq!(
        kept,
        expect_kept(&[
            ("nov", "kept: newest available, monthly 2026-11"),
            // The held snapshot is October's restorable point, so October needs no other.
            ("held-oct", "kept: legal hold, monthly 2026-10"),
            // A snapshot still being made is no restorable point yet: September's is older.
            ("creating-sep", "kept: not available (creating)"),
            ("sep-older", "kept: monthly 2026-09"),
        ])
    );
    assert_eq!(deleted, ["oct-older", "aug"]);
}

#[test]
fn equal_creation_times_are_ordered_by_id_whatever_the_listing_order() {
    let same = at(2026, 11, 24, 3);
    let forward = vec![
        snapshot("b-copy", "orders-db", same),
        snapshot("a-copy", "orders-db", same),
    ];
    let backward: Vec<SnapshotFacts> = forward.iter().rev().cloned().collect();
    for listing in [forward, backward] {
        let decisions = plan_retention(&rules(policy(1, 0, 0, 0, 0)), &listing, same);
        let (kept, deleted) = outcome(&decisions);
        assert_eq!(
            kept,
            expect_kept(&[("a-copy", "kept: newest available, daily 2026-11-24")])
        );
        assert_eq!(deleted, ["b-copy"]);
    }
}

#[test]
fn min_keep_keeps_the_newest_whatever_their_age_per_resource() {
    let plan = parse_plan(EXAMPLE_PLAN).expect("infra/plans/example.json");
    let primary = RetentionRules::for_location(&plan, "us-east-1");
    assert_eq!(primary.policy, plan.retention.primary);
    // orders-db sets primary_min_keep 5; billing-db takes the region's 3.
    assert_eq!(primary.min_keep("orders-db"), 5);
    assert_eq!(primary.min_keep("billing-db"), 3);
    assert_eq!(primary.min_keep("no-longer-in-the-plan"), 3);
    let vault = RetentionRules::for_location(&plan, "eu-west-1@210987654321");
    assert_eq!(vault.policy, plan.retention.dr);
    assert_eq!(vault.min_keep("orders-db"), 5);

    // Hourly snapshots within one day: the daily bucket keeps one, min_keep the newest N.
    let mut rules = primary;
    rules.policy = policy(1, 0, 0, 0, rules.policy.min_keep);
    let listing: Vec<SnapshotFacts> = ["orders-db", "billing-db"]
        .iter()
        .flat_map(|resource| {
            (0..8).map(move |h| snapshot(&format!("{resource}-{h}"), resource, at(2026, 3, 1, h)))
        })
        .collect();
    let decisions = plan_retention(&rules, &listing, at(2026, 3, 1, 12));
    let kept: Vec<&str> = decisions
        .iter()
        .filter(|d| !d.decision.is_delete())
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(
        kept,
        [
            "orders-db-3",
            "orders-db-4",
            "orders-db-5",
            "orders-db-6",
            "orders-db-7",
            "billing-db-5",
            "billing-db-6",
            "billing-db-7"
        ]
    );
    assert_eq!(
        decisions[7].decision.to_string(),
        "kept: newest available, daily 2026-03-01, min_keep (5 newest)"
    );
}

#[test]
fn a_resource_whose_snapshots_stopped_keeps_its_last_ones() {
    // Snapshots ended two years before `now` (database deleted, schedule broken): the
    // buckets count days that have a snapshot, not days on the calendar.
    let listing: Vec<SnapshotFacts> = (0..10)
        .map(|day| snapshot(&format!("last-{day}"), "gone-db", at(2024, 5, 1 + day, 3)))
        .collect();
    let decisions = plan_retention(&rules(policy(3, 0, 0, 0, 0)), &listing, at(2026, 5, 1, 0));
    let (kept, _) = outcome(&decisions);
    assert_eq!(
        kept,
        expect_kept(&[
            ("last-9", "kept: newest available, daily 2024-05-10"),
            ("last-8", "kept: daily 2024-05-09"),
            ("last-7", "kept: daily 2024-05-08"),
        ])
    );
}

#[test]
fn a_policy_of_zeros_still_keeps_the_newest() {
    let listing = vec![
        snapshot("old", "orders-db", at(2026, 1, 1, 0)),
        snapshot("new", "orders-db", at(2026, 1, 2, 0)),
    ];
    let decisions = plan_retention(&rules(policy(0, 0, 0, 0, 0)), &listing, at(2026, 1, 3, 0));
    let (kept, deleted) = outcome(&decisions);
    assert_eq!(kept, expect_kept(&[("new", "kept: newest available")]));
    assert_eq!(deleted, ["old"]);
}

#[test]
fn resources_are_planned_apart() {
    let listing = vec![
        snapshot("a-1", "orders-db", at(2026, 1, 1, 0)),
        snapshot("b-1", "billing-db", at(2026, 1, 1, 0)),
        snapshot("a-2", "orders-db", at(2026, 1, 2, 0)),
    ];
    let decisions = plan_retention(&rules(policy(1, 0, 0, 0, 0)), &listing, at(2026, 1, 3, 0));
    let (kept, deleted) = outcome(&decisions);
    assert_eq!(
        kept,
        expect_kept(&[
            ("a-2", "kept: newest available, daily 2026-01-02"),
            ("b-1", "kept: newest available, daily 2026-01-01"),
        ])
    );
    assert_eq!(deleted, ["a-1"]);
}

#[test]
fn an_empty_listing_gives_no_decision() {
    assert!(plan_retention(&rules(policy(7, 0, 0, 0, 0)), &[], at(2026, 1, 1, 0)).is_empty());
}

#[test]
fn decisions_serialise_for_the_report() {
    let listing = vec![
        snapshot("new", "orders-db", at(2026, 10, 2, 0)),
        snapshot("old", "orders-db", at(2026, 10, 1, 0)),
    ];
    let decisions = plan_retention(&rules(policy(0, 0, 1, 0, 0)), &listing, at(2026, 10, 3, 0));
    let json = serde_json::to_value(&decisions).expect("decisions serialise");
    assert_eq!(
        json,
        serde_json::json!([
            {
                "id": "new",
                "resource": "orders-db",
                "decision": "keep",
                "reasons": [
                    {"rule": "newest_available"},
                    {"rule": "monthly", "year": 2026, "month": 10}
                ]
            },
            {
                "id": "old",
                "resource": "orders-db",
                "decision": "delete",
                "reason": {"rule": "outside_every_bucket"}
            }
        ])
    );
    let back: Vec<SnapshotDecision> = serde_json::from_value(json).expect("and read back");
    assert_eq!(back, decisions);

    let no_reason =
        serde_json::json!({"id": "x", "resource": null, "decision": "keep", "reasons": []});
    assert!(serde_json::from_value::<SnapshotDecision>(no_reason).is_err());
}

#[test]
fn every_reason_reads_as_documented() {
    let date = NaiveDate::from_ymd_opt(2026, 11, 24).expect("a valid date");
    let cases = [
        (KeepReason::LegalHold, "legal hold"),
        (
            KeepReason::NotThisPlan,
            "not Lifeboat's (plan tag missing or another plan)",
        ),
        (KeepReason::Automated, "automated snapshot"),
        (
            KeepReason::NotAttributable,
            "not attributable (plan tag but no resource tag)",
        ),
        (KeepReason::ListedMoreThanOnce, "id listed more than once"),
        (
            KeepReason::NotAvailable {
                status: "copying".to_string(),
            },
            "not available (copying)",
        ),
        (KeepReason::CopySource, "source of a copy in progress"),
        (
            KeepReason::CreatedAfterNow,
            "created after now (clock skew)",
        ),
        (KeepReason::NewestAvailable, "newest available"),
        (KeepReason::NewestValidated, "newest validated"),
        (KeepReason::Yearly { year: 2026 }, "yearly 2026"),
        (
            KeepReason::Monthly {
                year: 2026,
                month: 3,
            },
            "monthly 2026-03",
        ),
        (
            KeepReason::Weekly {
                iso_year: 2026,
                week: 7,
            },
            "weekly 2026-W07",
        ),
        (KeepReason::Daily { date }, "daily 2026-11-24"),
        (KeepReason::MinKeep { min_keep: 3 }, "min_keep (3 newest)"),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
}
