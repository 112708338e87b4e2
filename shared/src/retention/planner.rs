//! The planner: classify every snapshot, then walk each resource's eligible snapshots
//! newest first.

use super::{
    DeleteReason, KeepReason, KeepReasons, RetentionDecision, RetentionRules, SnapshotDecision,
    SnapshotFacts,
};
use chrono::{DateTime, Datelike, Utc};
use std::collections::HashMap;

/// Decide, for each listed snapshot of one region or copy destination, whether to keep or
/// delete it, by the rules in the [module documentation](super).
///
/// Returns exactly one decision per input snapshot, in input order. The result does not
/// depend on the input order, and planning again on the kept snapshots (plus any of the
/// deleted ones a capped run left behind) deletes nothing it kept. O(n log n).
pub fn plan_retention(
    rules: &RetentionRules,
    snapshots: &[SnapshotFacts],
    now: DateTime<Utc>,
) -> Vec<SnapshotDecision> {
    let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); snapshots.len()];

    let mut listings: HashMap<&str, u32> = HashMap::with_capacity(snapshots.len());
    for s in snapshots {
        let count = listings.entry(s.id.as_str()).or_default();
        *count = count.saturating_add(1);
    }

    // Resources get small numbers, so the sort below compares integers and times held
    // in one array rather than chasing strings scattered across the listing.
    let mut resource_numbers: HashMap<&str, usize> = HashMap::new();
    let mut resource_names: Vec<&str> = Vec::new();
    let mut eligible: Vec<Candidate> = Vec::new();
    for (i, s) in snapshots.iter().enumerate() {
        let own = &mut reasons[i];
        if s.legal_hold {
            own.push(KeepReason::LegalHold);
        }
        let ours = matches!(s.plan.as_deref(), Some(p) if !p.is_empty() && p == rules.plan);
        if !ours {
            own.push(KeepReason::NotThisPlan);
        }
        if s.automated {
            own.push(KeepReason::Automated);
        }
        let resource = s.resource.as_deref().filter(|r| !r.is_empty());
        if ours && resource.is_none() {
            own.push(KeepReason::NotAttributable);
        }
        let unique = listings.get(s.id.as_str()).copied().unwrap_or(0) <= 1;
        if !unique {
            own.push(KeepReason::ListedMoreThanOnce);
        }
        let available = s.status.eq_ignore_ascii_case("available");
        if !available {
            own.push(KeepReason::NotAvailable {
                status: s.status.clone(),
            });
        }
        if s.copy_in_progress {
            own.push(KeepReason::CopySource);
        }
        let in_future = s.created_at > now;
        if in_future {
            own.push(KeepReason::CreatedAfterNow);
        }
        if let Some(resource) = resource
            && ours
            && !s.automated
            && unique
            && available
            && !in_future
        {
            let number = *resource_numbers.entry(resource).or_insert_with(|| {
                resource_names.push(resource);
                resource_names.len() - 1
            });
            eligible.push(Candidate {
                resource: number,
                created_at: s.created_at,
                index: i,
            });
        }
    }

    // Newest first within each resource; ids are unique among eligible snapshots, so
    // the order is total and the listing order cannot matter.
    eligible.sort_unstable_by(|a, b| {
        a.resource
            .cmp(&b.resource)
            .then_with(|| b.created_at.cmp(&a.created_at))
            .then_with(|| snapshots[a.index].id.cmp(&snapshots[b.index].id))
    });

    for group in eligible.chunk_by(|a, b| a.resource == b.resource) {
        let Some(first) = group.first() else {
            continue;
        };
        let Some(&resource) = resource_names.get(first.resource) else {
            continue;
        };
        let newest_first: Vec<usize> = group.iter().map(|c| c.index).collect();
        decide_resource(rules, resource, &newest_first, snapshots, &mut reasons);
    }

    snapshots
        .iter()
        .zip(reasons)
        .map(|(s, reasons)| SnapshotDecision {
            id: s.id.clone(),
            resource: s.resource.clone(),
            decision: match KeepReasons::new(reasons) {
                Some(reasons) => RetentionDecision::Keep { reasons },
                None => RetentionDecision::Delete {
                    reason: DeleteReason::OutsideEveryBucket,
                },
            },
        })
        .collect()
}

/// An eligible snapshot, as the sort needs it.
struct Candidate {
    /// The resource's number, in order of first appearance (only groups need it).
    resource: usize,
    created_at: DateTime<Utc>,
    /// Where it is in the listing.
    index: usize,
}

/// Apply the newest-snapshot rules, the buckets and `min_keep` to one resource's eligible
/// snapshots, given newest first.
fn decide_resource(
    rules: &RetentionRules,
    resource: &str,
    newest_first: &[usize],
    snapshots: &[SnapshotFacts],
    reasons: &mut [Vec<KeepReason>],
) {
    let Some(&newest) = newest_first.first() else {
        return;
    };
    reasons[newest].push(KeepReason::NewestAvailable);
    if let Some(&validated) = newest_first
        .iter()
        .find(|&&i| snapshots[i].validated_at.is_some())
    {
        reasons[validated].push(KeepReason::NewestValidated);
    }

    let policy = &rules.policy;
    let created = |i: usize| snapshots[i].created_at;
    keep_newest_per_period(
        newest_first,
        policy.keep_yearly,
        |i| created(i).year(),
        |year| KeepReason::Yearly { year },
        reasons,
    );
    keep_newest_per_period(
        newest_first,
        policy.keep_monthly,
        |i| (created(i).year(), created(i).month()),
        |(year, month)| KeepReason::Monthly { year, month },
        reasons,
    );
    keep_newest_per_period(
        newest_first,
        policy.keep_weekly,
        |i| {
            let week = created(i).iso_week();
            (week.year(), week.week())
        },
        |(iso_year, week)| KeepReason::Weekly { iso_year, week },
        reasons,
    );
    keep_newest_per_period(
        newest_first,
        policy.keep_daily,
        |i| created(i).date_naive(),
        |date| KeepReason::Daily { date },
        reasons,
    );

    let min_keep = rules.min_keep(resource);
    for &i in newest_first.iter().take(min_keep as usize) {
        reasons[i].push(KeepReason::MinKeep { min_keep });
    }
}

/// One bucket category: keep the first snapshot met in each of the first `count` distinct
/// periods met. The list is newest first and periods only move back in time along it, so
/// "first of its period" is "period differs from the previous snapshot's".
fn keep_newest_per_period<P: PartialEq + Copy>(
    newest_first: &[usize],
    count: u32,
    period_of: impl Fn(usize) -> P,
    reason: impl Fn(P) -> KeepReason,
    reasons: &mut [Vec<KeepReason>],
) {
    let mut left = count;
    let mut previous: Option<P> = None;
    for &i in newest_first {
        if left == 0 {
            break;
        }
        let period = period_of(i);
        if previous != Some(period) {
            reasons[i].push(reason(period));
            previous = Some(period);
            left -= 1;
        }
    }
}
