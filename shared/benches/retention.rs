//! How long the retention planner takes on a large region: 100,000 snapshots of 500
//! resources (and 10,000 of 50, to see it scale), listed in no particular order.
//!
//! Run: `cargo bench -p lifeboat --bench retention`. The figure goes in the README's
//! "Retention rules" section.

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lifeboat::plan::RetentionPolicy;
use lifeboat::retention::{RetentionRules, SnapshotFacts, plan_retention};
use std::collections::BTreeMap;
use std::hint::black_box;

const PER_RESOURCE: usize = 200;

/// A small deterministic generator (64-bit LCG), so every run plans the same listing.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `resources` resources with 200 snapshots each over about two years, mostly
/// Lifeboat's and available, with the odd foreign, automated, in-flight, validated and
/// held one; shuffled like a paginated listing.
fn region(resources: usize, now: DateTime<Utc>) -> Vec<SnapshotFacts> {
    let mut rng = Lcg(0x5eed);
    let mut snapshots = Vec::with_capacity(resources * PER_RESOURCE);
    for r in 0..resources {
        let resource = format!("db-{r:04}");
        for k in 0..PER_RESOURCE {
            // One every ~3.6 days, jittered by up to a day, newest a few hours ago.
            let hours_ago = (k as i64) * 87 + rng.below(24) as i64 + 2;
            let created_at = now - Duration::hours(hours_ago);
            let roll = rng.below(1000);
            snapshots.push(SnapshotFacts {
                id: format!(
                    "arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-{resource}-{k:03}"
                ),
                resource: Some(resource.clone()),
                plan: if roll < 30 {
                    None
                } else {
                    Some("orders".to_string())
                },
                created_at,
                status: if roll == 999 { "creating" } else { "available" }.to_string(),
                automated: (30..50).contains(&roll),
                validated_at: (roll % 40 == 7).then(|| created_at + Duration::hours(3)),
                legal_hold: roll == 500,
                copy_in_progress: roll == 998,
            });
        }
    }
    for i in (1..snapshots.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        snapshots.swap(i, j);
    }
    snapshots
}

fn planner(c: &mut Criterion) {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
        .single()
        .expect("a valid date");
    let rules = RetentionRules {
        plan: "orders".to_string(),
        // The DR policy of infra/plans/example.json.
        policy: RetentionPolicy {
            keep_daily: 14,
            keep_weekly: 8,
            keep_monthly: 12,
            keep_yearly: 3,
            min_keep: 3,
        },
        min_keep_by_resource: BTreeMap::from([("db-0000".to_string(), 5)]),
    };
    let mut group = c.benchmark_group("retention");
    group.sample_size(20);
    for resources in [50, 500] {
        let listing = region(resources, now);
        group.bench_with_input(
            BenchmarkId::new("plan_retention", listing.len()),
            &listing,
            |b, listing| b.iter(|| plan_retention(&rules, black_box(listing), now)),
        );
    }
    group.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
