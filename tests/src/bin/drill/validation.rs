//! Drill stage: restore validation. The restore-validator function restores the DR copy
//! of `orders-db` that the backup stage made, runs the plan's SQL checks against a real
//! local PostgreSQL database the drill seeds (an emulated restore has no data: the
//! local-only `LIFEBOAT_LOCAL_DATABASE_URLS` points the probe there), deletes the
//! temporary instance, and reports the measured restore time. Then the drill empties a
//! critical table and validates again: the run must fail naming the table, and still
//! clean up.

use super::{done, sample, say, stage};
use harness::World;
use harness::databases::{ScratchDatabase, put_credentials_secret};
use harness::functions::FunctionHost;
use lifeboat::aws::LOCAL_DATABASE_URLS_ENV;
use lifeboat::plan::{Plan, VALIDATED_TAG};
use lifeboat::validation::checks::Dialect;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The local database the drill seeds for `orders-db`.
const DATABASE: &str = "lifeboat_drill_orders";
/// The resource validated.
const RESOURCE: &str = "orders-db";

/// The local-only mapping the functions need, for `cargo lambda watch`'s environment.
pub fn database_mapping() -> (String, String) {
    (
        LOCAL_DATABASE_URLS_ENV.to_string(),
        format!("{RESOURCE}=postgres://postgres@127.0.0.1:5432/{DATABASE}"),
    )
}

/// The game day's canary table (the plan's `game_days.canary`), in the database mapped
/// to `orders-db`: seeded afresh (the validation stage emptied a table of it), with the
/// table the plan's owners would create for the canary.
pub async fn prepare_canary() -> Result<(), String> {
    let db = ScratchDatabase::seeded_named(Dialect::Postgres, DATABASE).await?;
    db.execute(
        "CREATE TABLE lifeboat_canary (id text PRIMARY KEY, written_at timestamptz NOT NULL)",
    )
    .await?;
    say(format!(
        "canary table lifeboat_canary in {DATABASE} (the game day writes a row to the DR writer and reads it back)"
    ));
    Ok(())
}

/// Validate `orders-db` once through the function: the manual request, then ticks as the
/// tick schedule would send them, until the run is recorded. Returns the finished run.
fn validate(host: &FunctionHost, root: &std::path::Path) -> Result<(Value, Duration), String> {
    let started = Instant::now();
    let request = sample(root, "validation-manual.json", "drill-validation")?;
    let mut reply = host
        .invoke("restore-validator", &request)
        .map_err(|e| format!("restore-validator request: {e}"))?;
    let tick = sample(root, "validation-tick.json", "drill-validation-tick")?;
    let mut shown = 0;
    loop {
        let resource = &reply["resources"][0];
        for step in resource["steps"].as_array().into_iter().flatten() {
            // Waiting ticks repeat themselves; show the first of each kind.
            let text = step.as_str().unwrap_or("");
            if !text.contains("restore creating") || shown == 0 {
                say(format!("  {text}"));
            }
            if text.contains("restore creating") {
                shown += 1;
            }
        }
        if let Some(run) = resource["finished"].as_array().and_then(|f| f.first()) {
            return Ok((run.clone(), started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(180) {
            return Err("the validation run did not finish within 3 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(250));
        reply = host
            .invoke("restore-validator", &tick)
            .map_err(|e| format!("restore-validator tick: {e}"))?;
    }
}

fn print_checks(run: &Value) {
    say(format!(
        "{:<42} {:<6} {:>9} {:>9}  {}",
        "check", "result", "found", "required", "why"
    ));
    for c in run["results"].as_array().into_iter().flatten() {
        say(format!(
            "{:<42} {:<6} {:>9} {:>9}  {}",
            c["name"].as_str().unwrap_or(""),
            if c["passed"].as_bool() == Some(true) {
                "pass"
            } else {
                "FAIL"
            },
            c["observed"].as_str().unwrap_or("-"),
            c["expected"].as_str().unwrap_or("-"),
            c["detail"].as_str().unwrap_or("")
        ));
    }
}

fn restore_seconds(run: &Value) -> Option<f64> {
    let at = |f: &str| {
        run[f]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let d = at("available_at")? - at("restore_requested_at")?;
    Some(d.num_milliseconds() as f64 / 1000.0)
}

async fn instance_status(world: &World, id: &str) -> String {
    match world
        .clients
        .dr
        .rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => out
            .db_instances()
            .first()
            .and_then(|d| d.db_instance_status())
            .unwrap_or("gone")
            .to_string(),
        Err(_) => "gone".into(),
    }
}

/// The stage.
pub async fn stage_validation(
    plan: &Plan,
    world: &World,
    host: &FunctionHost,
    root: &std::path::Path,
    scale: f64,
) -> Result<(), String> {
    let t = stage(
        "Restore validation: restore, SQL checks, clean-up, measured restore time (restore-validator function)",
    );
    let resource = plan.resource(RESOURCE).ok_or("the plan has no orders-db")?;
    let checks = resource
        .validation
        .as_ref()
        .ok_or("the plan has no validation checks for orders-db")?;
    let db = ScratchDatabase::seeded_named(Dialect::Postgres, DATABASE).await?;
    put_credentials_secret(
        &world.clients.home.config,
        &checks.credentials_secret,
        db.username(),
        "",
    )
    .await?;
    say(format!(
        "seeded PostgreSQL database {DATABASE} on 127.0.0.1:5432 (3 users, 4 orders); secret {} holds its credentials",
        checks.credentials_secret
    ));
    say(format!(
        "request (events/validation-manual.json): {}",
        json!({"resource": RESOURCE})
    ));
    let (run, took) = validate(host, root)?;
    print_checks(&run);
    let instance = run["instance"].as_str().unwrap_or("").to_string();
    let measured = restore_seconds(&run).ok_or("the run measured no restore time")?;
    say(format!(
        "restored {} into {instance}: restore time {:.2} s real = {} at AWS pace (time scale {scale}); checks {} ms; whole run {:.1} s real",
        run["snapshot"]["id"].as_str().unwrap_or(""),
        measured,
        harness::timing::human(measured / scale),
        run["check_millis"].as_u64().unwrap_or(0),
        took.as_secs_f64()
    ));
    let passed = run["failure"].is_null()
        && run["results"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|c| c["passed"] == true));
    if !passed {
        done(t);
        return Err(format!(
            "restore validation of {RESOURCE} failed: {}",
            run["failure"]
        ));
    }
    let status = instance_status(world, &instance).await;
    say(format!("temporary instance {instance}: {status}"));
    if status != "deleting" && status != "gone" {
        return Err(format!(
            "the temporary instance {instance} was left {status}"
        ));
    }
    let snapshot = run["snapshot"]["id"].as_str().unwrap_or("");
    let tags = world
        .clients
        .dr
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(snapshot)
        .send()
        .await
        .map_err(|e| format!("describe {snapshot}: {e}"))?;
    let validated = tags
        .db_snapshots()
        .first()
        .and_then(|s| s.tag_list().iter().find(|t| t.key() == Some(VALIDATED_TAG)))
        .and_then(|t| t.value())
        .ok_or(format!("{snapshot} was not tagged {VALIDATED_TAG}"))?
        .to_string();
    say(format!(
        "{snapshot} tagged {VALIDATED_TAG}={validated} (retention keeps the newest validated snapshot)"
    ));

    say("\nthe drill empties the critical table `orders` and validates again:");
    db.execute("DELETE FROM orders").await?;
    let (broken, _) = validate(host, root)?;
    print_checks(&broken);
    let failed_on_table = broken["results"].as_array().into_iter().flatten().any(|c| {
        c["passed"] == false
            && c["detail"]
                .as_str()
                .is_some_and(|d| d.contains("orders is empty"))
    });
    let instance = broken["instance"].as_str().unwrap_or("").to_string();
    let status = instance_status(world, &instance).await;
    say(format!(
        "the run failed naming the table: {failed_on_table}; temporary instance {instance}: {status}; operators were notified on the SNS topic"
    ));
    db.drop_database().await?;
    if !failed_on_table {
        return Err("an emptied critical table did not fail validation".into());
    }
    if status != "deleting" && status != "gone" {
        return Err(format!("the failed run left {instance} {status}"));
    }

    // The damage is repaired; the last validation on record (what the readiness report
    // judges) should say so.
    say("
the drill repairs the database (seeded again) and validates once more:");
    let db = ScratchDatabase::seeded_named(Dialect::Postgres, DATABASE).await?;
    let (again, _) = validate(host, root)?;
    db.drop_database().await?;
    let passed_again = again["failure"].is_null()
        && again["results"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|c| c["passed"] == true));
    say(format!(
        "passed again: {passed_again} ({} checks)",
        again["results"].as_array().map(Vec::len).unwrap_or(0)
    ));
    done(t);
    if !passed_again {
        return Err(format!(
            "the repaired database did not pass validation: {}",
            again["failure"]
        ));
    }
    Ok(())
}
