//! Drill stage: the retention function prunes both regions, first as a dry run, then for
//! real, capped at the plan's `max_deletes_per_run` (a second tick takes the rest).

use super::{all_snapshots_available, done, list, sample, say, stage, wait_for};
use chrono::{Duration as Days, TimeZone, Utc};
use harness::World;
use harness::functions::FunctionHost;
use harness::retention::{SeedSnapshot, create_snapshots, manual_snapshot_names};
use lifeboat::plan::{Plan, ResourceKind};
use lifeboat::schedule::snapshot_name;
use serde_json::Value;
use std::time::Duration;

/// Days of history seeded before the stage (one snapshot a day, per region).
const HISTORY_DAYS: i64 = 40;

/// The stage.
pub async fn retention(
    plan: &Plan,
    world: &World,
    host: &FunctionHost,
    root: &std::path::Path,
) -> Result<(), String> {
    let t = stage("Retention: GFS pruning in both regions, dry run then real (retention function)");
    let resource = plan
        .resources
        .iter()
        .find(|r| r.kind == ResourceKind::RdsInstance && r.replica.is_some())
        .ok_or("the plan has no RDS instance with a DR replica to seed history for")?;
    let replica = resource
        .replica
        .as_ref()
        .map(|r| r.identifier.clone())
        .unwrap_or_default();

    // The backups stage made today's snapshots; retention needs weeks of history, which
    // the emulator cannot produce by waiting. So the drill seeds it, honestly labelled:
    // real snapshots whose `lifeboat:created-at` tag (what retention reads first, as for
    // copies) is backdated one day at a time.
    let today = Utc.from_utc_datetime(
        &Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default(),
    );
    let history = |source: &str| -> Vec<SeedSnapshot> {
        let mut seeds: Vec<SeedSnapshot> = (1..=HISTORY_DAYS)
            .map(|d| {
                let at = today - Days::days(d);
                SeedSnapshot::lifeboat(
                    &plan.name,
                    &resource.id,
                    source,
                    snapshot_name(&plan.name, &resource.id, at),
                    at,
                )
            })
            .collect();
        let old = today - Days::days(HISTORY_DAYS + 30);
        let mut held = SeedSnapshot::lifeboat(
            &plan.name,
            &resource.id,
            source,
            snapshot_name(&plan.name, &resource.id, old),
            old,
        );
        held.legal_hold = true;
        let mut foreign = SeedSnapshot::lifeboat(
            &plan.name,
            &resource.id,
            source,
            "dba-manual-before-upgrade",
            old,
        );
        foreign.owner = None;
        seeds.extend([held, foreign]);
        seeds
    };
    let primary = &world.clients.primary;
    let dr = &world.clients.dr;
    create_snapshots(&primary.rds, &history(resource.aws_identifier())).await?;
    create_snapshots(&dr.rds, &history(&replica)).await?;
    wait_for("seeded snapshots", Duration::from_secs(120), || async {
        all_snapshots_available(primary).await && all_snapshots_available(dr).await
    })
    .await?;
    say(format!(
        "seeded (backdated, not real history): {HISTORY_DAYS} daily snapshots of {} per region, \
         dated 1 to {HISTORY_DAYS} days ago, plus one under legal hold and one without Lifeboat's tags",
        resource.id
    ));
    let before_primary = manual_snapshot_names(&primary.rds).await?;
    let before_dr = manual_snapshot_names(&dr.rds).await?;

    let dry = host
        .invoke(
            "retention",
            &sample(root, "retention-dry-run.json", "drill-retention-dry")?,
        )
        .map_err(|e| format!("retention dry run: {e}"))?;
    say("dry run (events/retention-dry-run.json):");
    show_counts(&dry);
    if manual_snapshot_names(&primary.rds).await? != before_primary
        || manual_snapshot_names(&dr.rds).await? != before_dr
    {
        return Err("the dry run deleted snapshots".into());
    }
    // A dry run is capped like a real one: what the next run deletes, and what waits.
    let would = dry["deleted"].as_array().map(Vec::len).unwrap_or(0)
        + dry["deferred"].as_u64().unwrap_or(0) as usize;
    if would == 0 {
        return Err("the dry run found nothing to delete in the seeded history".into());
    }
    say("  nothing deleted (the listings are unchanged)");
    show_kept(world, &dry, &plan.regions.primary).await?;

    let mut deleted = 0;
    for n in 1..=3 {
        let tick = sample(
            root,
            "retention-scheduled.json",
            &format!("drill-retention-{n}"),
        )?;
        let real = host
            .invoke("retention", &tick)
            .map_err(|e| format!("retention tick: {e}"))?;
        say(format!(
            "tick {n} (events/retention-scheduled.json), at most {} deletions a run at {} a second:",
            plan.retention.max_deletes_per_run, plan.retention.deletes_per_second
        ));
        show_counts(&real);
        for line in list(&real, "deleted", |d| {
            format!(
                "{} at {}: {}",
                d["snapshot"].as_str().unwrap_or(""),
                d["location"].as_str().unwrap_or(""),
                d["reason"].as_str().unwrap_or("")
            )
        })
        .iter()
        .take(3)
        {
            say(format!("  {line}"));
        }
        if let Some(failed) = real["failed"].as_array().filter(|f| !f.is_empty()) {
            return Err(format!("retention failed: {failed:?}"));
        }
        deleted += real["deleted"].as_array().map(Vec::len).unwrap_or(0);
        if real["deferred"].as_u64() == Some(0) {
            break;
        }
    }
    if deleted != would {
        return Err(format!(
            "the dry run announced {would} deletions, the real runs made {deleted}"
        ));
    }
    let after = manual_snapshot_names(&primary.rds).await?;
    for must_stay in [
        "dba-manual-before-upgrade".to_string(),
        snapshot_name(
            &plan.name,
            &resource.id,
            today - Days::days(HISTORY_DAYS + 30),
        ),
    ] {
        if !after.contains(&must_stay) {
            return Err(format!("{must_stay} was deleted; it must never be"));
        }
    }
    say(format!(
        "deleted {deleted}, as the dry run announced; the legal hold and the foreign snapshot are still there"
    ));
    done(t);
    Ok(())
}

/// Per location: listed, kept, deleted, left; then kept by rule.
fn show_counts(summary: &Value) {
    let dry = summary["dry_run"].as_bool().unwrap_or(false);
    for l in summary["locations"].as_array().into_iter().flatten() {
        say(format!(
            "  {:<10} {:>3} listed {:>3} kept {:>3} {} {:>3} left for the next run",
            l["location"].as_str().unwrap_or(""),
            l["listed"].as_u64().unwrap_or(0),
            l["kept"].as_u64().unwrap_or(0),
            l["deleted"].as_u64().unwrap_or(0),
            if dry { "to delete" } else { "deleted  " },
            l["deferred"].as_u64().unwrap_or(0),
        ));
    }
    let reasons: Vec<String> = summary["kept_by_reason"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    say(format!("  kept by rule: {}", reasons.join(", ")));
}

/// The kept snapshots of one location with their reasons, from the run's S3 report.
async fn show_kept(world: &World, summary: &Value, location: &str) -> Result<(), String> {
    let uri = summary["report"]
        .as_str()
        .ok_or("the run wrote no report")?;
    let key = uri
        .splitn(4, '/')
        .nth(3)
        .ok_or_else(|| format!("not an s3:// URI: {uri}"))?;
    let object = world
        .clients
        .home
        .s3
        .get_object()
        .bucket(&world.control.report_bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("reading the report {uri}: {e}"))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .into_bytes();
    let report: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    say(format!("  kept in {location} (from the report {uri}):"));
    for d in report["decisions"].as_array().into_iter().flatten() {
        if d["location"] == location && d["decision"] == "keep" {
            say(format!(
                "    {:<52} {}",
                d["name"].as_str().unwrap_or(""),
                d["text"].as_str().unwrap_or("")
            ));
        }
    }
    Ok(())
}
