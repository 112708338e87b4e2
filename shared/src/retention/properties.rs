//! Property tests: the guarantees that hold for every listing, policy and `now`.
//!
//! The oracles here are written from the rules' wording (who is eligible, what "newer"
//! means, which periods a bucket reaches), independently of the planner's sort-and-walk.

use super::*;
use crate::plan::max_kept;
use chrono::{Datelike, Duration, TimeZone};
use proptest::prelude::*;
use proptest::sample::Index;

const PLAN: &str = "orders";
const RESOURCES: [&str; 3] = ["orders-db", "billing-db", "carts"];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid base date")
}

/// A snapshot before its id is assigned, with the index of an earlier snapshot whose id
/// it reuses when `duplicate` is set.
#[derive(Debug, Clone)]
struct Draft {
    facts: SnapshotFacts,
    duplicate: Option<Index>,
}

/// Creation times: sparse over four years, or dense over ten days (same-day snapshots
/// and equal times), on the hour or half hour.
fn created_at() -> impl Strategy<Value = DateTime<Utc>> {
    (
        prop_oneof![0_i64..35_000, 30_000_i64..30_240],
        prop::bool::ANY,
    )
        .prop_map(|(hours, half)| {
            base() + Duration::hours(hours) + Duration::minutes(if half { 30 } else { 0 })
        })
}

fn draft() -> impl Strategy<Value = Draft> {
    (
        prop_oneof![
            16 => prop::sample::select(RESOURCES.to_vec()).prop_map(|r| Some(r.to_string())),
            1 => Just(None),
            1 => Just(Some(String::new())),
        ],
        prop_oneof![
            16 => Just(Some(PLAN.to_string())),
            1 => Just(Some("payments".to_string())),
            1 => Just(None),
        ],
        created_at(),
        prop_oneof![
            20 => Just("available"),
            3 => Just("AVAILABLE"),
            1 => Just("creating"),
            1 => Just("copying"),
            1 => Just("failed"),
        ],
        prop::bool::weighted(0.08),
        prop::option::weighted(0.2, created_at()),
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.08),
        prop::option::weighted(0.03, any::<Index>()),
    )
        .prop_map(
            |(
                resource,
                plan,
                created_at,
                status,
                automated,
                validated_at,
                legal_hold,
                copy,
                dup,
            )| {
                Draft {
                    facts: SnapshotFacts {
                        id: String::new(),
                        resource,
                        plan,
                        created_at,
                        status: status.to_string(),
                        automated,
                        validated_at,
                        legal_hold,
                        copy_in_progress: copy,
                    },
                    duplicate: dup,
                }
            },
        )
}

/// Give each draft its id: unique, except the few that reuse an earlier one.
fn assign_ids(drafts: Vec<Draft>) -> Vec<SnapshotFacts> {
    let mut out: Vec<SnapshotFacts> = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.into_iter().enumerate() {
        let mut facts = d.facts;
        facts.id = match d.duplicate {
            Some(pick) if i > 0 => out[pick.index(i)].id.clone(),
            _ => format!("arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-{i:03}"),
        };
        out.push(facts);
    }
    out
}

fn listing() -> impl Strategy<Value = Vec<SnapshotFacts>> {
    prop::collection::vec(draft(), 0..80).prop_map(assign_ids)
}

fn policy() -> impl Strategy<Value = RetentionPolicy> {
    (0_u32..8, 0_u32..6, 0_u32..6, 0_u32..4, 0_u32..6).prop_map(
        |(keep_daily, keep_weekly, keep_monthly, keep_yearly, min_keep)| RetentionPolicy {
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            min_keep,
        },
    )
}

fn rules() -> impl Strategy<Value = RetentionRules> {
    (policy(), prop::option::of(0_u32..8)).prop_map(|(policy, orders_min_keep)| RetentionRules {
        plan: PLAN.to_string(),
        policy,
        min_keep_by_resource: orders_min_keep
            .map(|m| ("orders-db".to_string(), m))
            .into_iter()
            .collect(),
    })
}

/// `now` anywhere from before the first snapshot to after the last, so some listings
/// hold snapshots "from the future".
fn now() -> impl Strategy<Value = DateTime<Utc>> {
    (-100_i64..36_000).prop_map(|hours| base() + Duration::hours(hours))
}

fn is_available(s: &SnapshotFacts) -> bool {
    s.status.eq_ignore_ascii_case("available")
}

fn is_ours(s: &SnapshotFacts) -> bool {
    s.plan.as_deref() == Some(PLAN)
}

fn resource_of(s: &SnapshotFacts) -> Option<&str> {
    s.resource.as_deref().filter(|r| !r.is_empty())
}

/// Whether `a` comes before `b` newest first: later creation, or equal and smaller id.
fn newer(a: &SnapshotFacts, b: &SnapshotFacts) -> bool {
    a.created_at > b.created_at || (a.created_at == b.created_at && a.id < b.id)
}

/// The newest of `candidates`, by the planner's order.
fn newest<'a>(
    candidates: impl Iterator<Item = (usize, &'a SnapshotFacts)>,
) -> Option<(usize, &'a SnapshotFacts)> {
    candidates.fold(None, |best, (i, s)| match best {
        Some((_, b)) if !newer(s, b) => best,
        _ => Some((i, s)),
    })
}

/// Eligibility from the rules' wording.
fn eligible(all: &[SnapshotFacts], s: &SnapshotFacts, now: DateTime<Utc>) -> bool {
    is_ours(s)
        && resource_of(s).is_some()
        && !s.automated
        && is_available(s)
        && s.created_at <= now
        && all.iter().filter(|o| o.id == s.id).count() == 1
}

fn kept(d: &SnapshotDecision) -> bool {
    !d.decision.is_delete()
}

fn is_protection(r: &KeepReason) -> bool {
    !r.is_bucket() && !matches!(r, KeepReason::MinKeep { .. })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_snapshot_gets_exactly_one_decision(
        snaps in listing(), rules in rules(), now in now()
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        prop_assert_eq!(decisions.len(), snaps.len());
        for (s, d) in snaps.iter().zip(&decisions) {
            prop_assert_eq!(&d.id, &s.id);
            prop_assert_eq!(&d.resource, &s.resource);
            if let RetentionDecision::Keep { reasons } = &d.decision {
                prop_assert!(!reasons.as_slice().is_empty());
            }
        }
    }

    #[test]
    fn the_newest_available_snapshot_of_each_resource_is_never_deleted(
        snaps in listing(), rules in rules(), now in now()
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        for resource in RESOURCES {
            let candidates = || snaps.iter().enumerate().filter(|(_, s)| {
                is_ours(s) && resource_of(s) == Some(resource) && !s.automated && is_available(s)
            });
            // The newest of all, and the newest not "from the future", so a snapshot
            // with a skewed clock cannot put the newest real one at risk.
            if let Some((i, _)) = newest(candidates()) {
                prop_assert!(kept(&decisions[i]), "{}", decisions[i]);
            }
            if let Some((i, _)) = newest(candidates().filter(|(_, s)| s.created_at <= now)) {
                prop_assert!(kept(&decisions[i]), "{}", decisions[i]);
            }
        }
    }

    #[test]
    fn the_newest_validated_snapshot_of_each_resource_is_never_deleted(
        snaps in listing(), rules in rules(), now in now()
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        for resource in RESOURCES {
            let validated = snaps.iter().enumerate().filter(|(_, s)| {
                is_ours(s) && resource_of(s) == Some(resource) && s.validated_at.is_some()
            });
            if let Some((i, _)) = newest(validated) {
                prop_assert!(kept(&decisions[i]), "{}", decisions[i]);
            }
        }
    }

    #[test]
    fn a_legal_hold_is_never_deleted(snaps in listing(), rules in rules(), now in now()) {
        let decisions = plan_retention(&rules, &snaps, now);
        for (s, d) in snaps.iter().zip(&decisions) {
            if s.legal_hold {
                prop_assert!(d.decision.keep_reasons().contains(&KeepReason::LegalHold));
            }
        }
    }

    #[test]
    fn what_is_not_this_plans_or_is_automated_is_never_deleted(
        snaps in listing(), rules in rules(), now in now()
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        for (s, d) in snaps.iter().zip(&decisions) {
            if !is_ours(s) {
                prop_assert!(d.decision.keep_reasons().contains(&KeepReason::NotThisPlan));
            }
            if s.automated {
                prop_assert!(d.decision.keep_reasons().contains(&KeepReason::Automated));
            }
            if is_ours(s) && resource_of(s).is_none() {
                prop_assert!(d.decision.keep_reasons().contains(&KeepReason::NotAttributable));
            }
        }
    }

    #[test]
    fn what_is_not_available_or_still_copied_from_is_never_deleted(
        snaps in listing(), rules in rules(), now in now()
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        for (s, d) in snaps.iter().zip(&decisions) {
            if !is_available(s) {
                let reason = KeepReason::NotAvailable { status: s.status.clone() };
                prop_assert!(d.decision.keep_reasons().contains(&reason));
            }
            if s.copy_in_progress {
                prop_assert!(d.decision.keep_reasons().contains(&KeepReason::CopySource));
            }
            if s.created_at > now {
                prop_assert!(d.decision.keep_reasons().contains(&KeepReason::CreatedAfterNow));
            }
        }
    }

    #[test]
    fn only_eligible_snapshots_are_ever_deleted(
        snaps in listing(), rules in rules(), now in now()
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        for (s, d) in snaps.iter().zip(&decisions) {
            if d.decision.is_delete() {
                prop_assert!(eligible(&snaps, s, now) && !s.legal_hold && !s.copy_in_progress);
            }
        }
    }

    #[test]
    fn buckets_and_min_keep_match_their_definitions(
        snaps in listing(), rules in rules(), now in now()
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        let p = rules.policy;
        for (i, s) in snaps.iter().enumerate() {
            let reasons = decisions[i].decision.keep_reasons();
            if !eligible(&snaps, s, now) {
                prop_assert!(reasons.iter().all(is_protection), "{}", decisions[i]);
                continue;
            }
            // The resource's eligible snapshots newer than this one.
            let newer_ones: Vec<&SnapshotFacts> = snaps
                .iter()
                .filter(|o| {
                    eligible(&snaps, o, now) && resource_of(o) == resource_of(s) && newer(o, s)
                })
                .collect();
            let t = s.created_at;
            let week = t.iso_week();
            // Kept by a bucket iff no newer snapshot shares its period and fewer than N
            // distinct periods are newer.
            let check = |same: &dyn Fn(&SnapshotFacts) -> bool,
                         key: &dyn Fn(&SnapshotFacts) -> String,
                         count: u32,
                         expected: KeepReason|
             -> Result<(), TestCaseError> {
                let first_of_period = !newer_ones.iter().any(|o| same(o));
                let mut periods: Vec<String> = newer_ones.iter().map(|o| key(o)).collect();
                periods.sort();
                periods.dedup();
                let should = first_of_period && (periods.len() as u64) < u64::from(count);
                prop_assert_eq!(
                    reasons.contains(&expected),
                    should,
                    "{} expected {} = {}",
                    decisions[i],
                    expected,
                    should
                );
                Ok(())
            };
            check(
                &|o| o.created_at.year() == t.year(),
                &|o| o.created_at.year().to_string(),
                p.keep_yearly,
                KeepReason::Yearly { year: t.year() },
            )?;
            check(
                &|o| (o.created_at.year(), o.created_at.month()) == (t.year(), t.month()),
                &|o| o.created_at.format("%Y-%m").to_string(),
                p.keep_monthly,
                KeepReason::Monthly { year: t.year(), month: t.month() },
            )?;
            check(
                &|o| o.created_at.iso_week() == week,
                &|o| o.created_at.format("%G-W%V").to_string(),
                p.keep_weekly,
                KeepReason::Weekly { iso_year: week.year(), week: week.week() },
            )?;
            check(
                &|o| o.created_at.date_naive() == t.date_naive(),
                &|o| o.created_at.date_naive().to_string(),
                p.keep_daily,
                KeepReason::Daily { date: t.date_naive() },
            )?;
            let min_keep = rules.min_keep(resource_of(s).unwrap_or_default());
            prop_assert_eq!(
                reasons.contains(&KeepReason::MinKeep { min_keep }),
                (newer_ones.len() as u64) < u64::from(min_keep)
            );
            prop_assert_eq!(
                reasons.contains(&KeepReason::NewestAvailable),
                newer_ones.is_empty()
            );
        }
    }

    #[test]
    fn decisions_do_not_depend_on_listing_order(
        snaps in listing(),
        rules in rules(),
        now in now(),
        keys in prop::collection::vec(any::<u64>(), 80),
    ) {
        let mut order: Vec<usize> = (0..snaps.len()).collect();
        order.sort_by_key(|&i| keys[i]);
        let shuffled: Vec<SnapshotFacts> = order.iter().map(|&i| snaps[i].clone()).collect();
        let decisions = plan_retention(&rules, &snaps, now);
        let again = plan_retention(&rules, &shuffled, now);
        for (k, &i) in order.iter().enumerate() {
            prop_assert_eq!(&again[k], &decisions[i]);
        }
    }

    #[test]
    fn planning_again_after_the_deletes_deletes_nothing_more(
        snaps in listing(),
        rules in rules(),
        now in now(),
        left_behind in prop::collection::vec(prop::bool::ANY, 80),
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        // After a full run: only the kept snapshots remain.
        let kept_only: Vec<usize> = (0..snaps.len()).filter(|&i| kept(&decisions[i])).collect();
        // After a run cut short by max_deletes_per_run: some deletes did not happen.
        let capped: Vec<usize> = (0..snaps.len())
            .filter(|&i| kept(&decisions[i]) || left_behind[i])
            .collect();
        for survivors in [kept_only, capped] {
            let listing: Vec<SnapshotFacts> = survivors.iter().map(|&i| snaps[i].clone()).collect();
            let again = plan_retention(&rules, &listing, now);
            for (k, &i) in survivors.iter().enumerate() {
                // Same decision, same reasons: a kept snapshot stays kept for the same
                // rules, and what was deleted is deleted next time.
                prop_assert_eq!(&again[k], &decisions[i]);
            }
        }
    }

    #[test]
    fn buckets_keep_no_more_than_their_counts(
        snaps in listing(), rules in rules(), now in now()
    ) {
        let decisions = plan_retention(&rules, &snaps, now);
        let p = rules.policy;
        for resource in RESOURCES {
            let mine: Vec<&SnapshotDecision> = decisions
                .iter()
                .filter(|d| d.resource.as_deref() == Some(resource))
                .collect();
            let count = |f: fn(&KeepReason) -> bool| {
                mine.iter().filter(|d| d.decision.keep_reasons().iter().any(f)).count() as u64
            };
            let yearly = count(|r| matches!(r, KeepReason::Yearly { .. }));
            let monthly = count(|r| matches!(r, KeepReason::Monthly { .. }));
            let weekly = count(|r| matches!(r, KeepReason::Weekly { .. }));
            let daily = count(|r| matches!(r, KeepReason::Daily { .. }));
            prop_assert!(yearly <= u64::from(p.keep_yearly), "{} yearly", yearly);
            prop_assert!(monthly <= u64::from(p.keep_monthly), "{} monthly", monthly);
            prop_assert!(weekly <= u64::from(p.keep_weekly), "{} weekly", weekly);
            prop_assert!(daily <= u64::from(p.keep_daily), "{} daily", daily);
            // Beyond what is never deleted and what min_keep keeps, the buckets keep at
            // most the sum of their counts.
            let beyond = mine
                .iter()
                .filter(|d| {
                    let reasons = d.decision.keep_reasons();
                    !reasons.is_empty()
                        && reasons.iter().all(|r| !is_protection(r))
                        && !reasons.iter().any(|r| matches!(r, KeepReason::MinKeep { .. }))
                })
                .count() as u64;
            let buckets = p.keep_daily + p.keep_weekly + p.keep_monthly + p.keep_yearly;
            prop_assert!(beyond <= u64::from(buckets));
        }
    }
}

/// A listing of one resource as the snapshot function leaves it between two retention
/// runs: this plan's snapshots, unique ids, at most one still in flight (being created,
/// being copied from, or stamped after `now`), with foreign and automated snapshots and
/// legal holds mixed in, which the quota bound leaves out.
fn one_resource_between_runs() -> impl Strategy<Value = (Vec<SnapshotFacts>, DateTime<Utc>)> {
    (
        prop::collection::vec(
            (
                created_at(),
                prop::option::weighted(0.2, created_at()),
                prop::bool::weighted(0.08),
                prop_oneof![20 => Just(0_u8), 1 => Just(1_u8), 1 => Just(2_u8)],
            ),
            0..120,
        ),
        prop::option::of((any::<Index>(), 0_u8..3)),
        now(),
    )
        .prop_map(|(drafts, in_flight, now)| {
            let mut snaps: Vec<SnapshotFacts> = drafts
                .into_iter()
                .enumerate()
                .map(
                    |(i, (created_at, validated_at, legal_hold, owner))| SnapshotFacts {
                        id: format!("s-{i:03}"),
                        resource: Some("orders-db".to_string()),
                        plan: (owner != 1).then(|| PLAN.to_string()),
                        // Available and in the past unless chosen as the one in flight.
                        created_at: created_at.min(now),
                        status: "available".to_string(),
                        automated: owner == 2,
                        validated_at,
                        legal_hold,
                        copy_in_progress: false,
                    },
                )
                .collect();
            if let Some((pick, how)) = in_flight
                && !snaps.is_empty()
            {
                let n = snaps.len();
                let s = &mut snaps[pick.index(n)];
                match how {
                    0 => s.status = "creating".to_string(),
                    1 => s.copy_in_progress = true,
                    _ => s.created_at = now + Duration::minutes(5),
                }
            }
            (snaps, now)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The plan-load quota check counts `max_kept` snapshots per resource and region; the
    /// planner must never keep more of them (the manual snapshots Lifeboat owns, legal
    /// holds aside).
    #[test]
    fn the_quota_bound_bounds_what_the_planner_keeps(
        (snaps, now) in one_resource_between_runs(),
        policy in policy(),
        min_keep in prop::option::of(0_u32..10),
    ) {
        let rules = RetentionRules {
            plan: PLAN.to_string(),
            policy,
            min_keep_by_resource: min_keep
                .map(|m| ("orders-db".to_string(), m))
                .into_iter()
                .collect(),
        };
        let decisions = plan_retention(&rules, &snaps, now);
        let counted = snaps
            .iter()
            .zip(&decisions)
            .filter(|(s, d)| is_ours(s) && !s.automated && !s.legal_hold && kept(d))
            .count() as u64;
        let bound = max_kept(&policy, rules.min_keep("orders-db"));
        prop_assert!(
            counted <= u64::from(bound),
            "kept {} of this plan's snapshots, over the bound {}",
            counted,
            bound
        );
    }
}
