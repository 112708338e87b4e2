//! The DR drill on the local stack: `make drill` runs it after bringing the stack up.
//!
//! Stages: the demo world the plan describes is created in the emulator; its DR posture
//! is read back and judged; then each function runs its part of the disaster story
//! through `cargo lambda watch` / `cargo lambda invoke`, with its `events/` samples.
//! Exits non-zero when a stage fails.

use harness::functions::FunctionHost;
use harness::{LocalAws, World, create_world};
use lifeboat::aws::{DynamoStateStore, gather_posture};
use lifeboat::plan::{Plan, PlanSource, load_plan_text, parse_plan};
use lifeboat::posture::{Concern, assess, render};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    plan: String,
    endpoint: String,
    reset: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        plan: "infra/plans/local.json".into(),
        endpoint: std::env::var("LIFEBOAT_LOCAL_ENDPOINT")
            .unwrap_or_else(|_| "http://127.0.0.1:4566".into()),
        reset: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--plan" => args.plan = it.next().ok_or("--plan needs a path")?,
            "--endpoint" => args.endpoint = it.next().ok_or("--endpoint needs a URL")?,
            "--no-reset" => args.reset = false,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: lifeboat-drill [--plan PATH] [--endpoint URL] [--no-reset]"
                ));
            }
        }
    }
    Ok(args)
}

const STAGES: usize = 3;

fn stage(n: usize, name: &str) -> Instant {
    println!("\n[{n}/{STAGES}] {name}");
    Instant::now()
}

fn done(started: Instant) {
    println!("      done in {:.1} s", started.elapsed().as_secs_f64());
}

fn say(line: impl AsRef<str>) {
    for l in line.as_ref().lines() {
        if l.is_empty() {
            println!();
        } else {
            println!("      {l}");
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("\ndrill passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\ndrill FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let text =
        load_plan_text(&PlanSource::Path(args.plan.clone().into())).map_err(|e| e.to_string())?;
    let plan = parse_plan(&text).map_err(|e| e.to_string())?;
    let local = LocalAws {
        endpoint: args.endpoint.clone(),
    };
    println!(
        "Lifeboat DR drill: plan {:?} ({}), local AWS at {}",
        plan.name, args.plan, args.endpoint
    );

    let t = stage(
        1,
        "Demo world: what the plan protects, created in the local AWS",
    );
    if args.reset {
        local.reset().await?;
    }
    let account = local.default_account();
    let world = create_world(&account, &plan).await?;
    for r in &plan.resources {
        let replica = r
            .replica
            .as_ref()
            .map(|rep| format!(", replica {} in {}", rep.identifier, plan.regions.dr))
            .unwrap_or_default();
        say(format!(
            "{} {} in {}{replica}",
            r.kind,
            r.aws_identifier(),
            plan.regions.primary
        ));
    }
    say(format!(
        "Route 53 zone {} ({}); state table {}, topic {}, reports s3://{}",
        world.zone_id,
        plan.dns.hosted_zone_name.as_deref().unwrap_or("by id"),
        world.control.state_table,
        world.topic_arn,
        world.control.report_bucket
    ));
    done(t);

    let t = stage(2, "DR posture, as the plan and the emulator show it");
    let store = DynamoStateStore::new(
        world.clients.home.dynamodb.clone(),
        &world.control.state_table,
    );
    let facts = gather_posture(&plan, &world.clients, &store).await;
    say(render(&plan, &facts));
    let critical = assess(&plan, &facts)
        .into_iter()
        .filter(|f| f.concern == Concern::Critical)
        .count();
    done(t);
    if critical > 0 {
        return Err(format!("the posture has {critical} critical finding(s)"));
    }

    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let env = world.function_env(&args.plan, &args.endpoint);
    say("\nstarting the functions with `cargo lambda watch`...");
    let host = FunctionHost::start(&root, &env)?;
    let result = backups(&plan, &world, &host, &root).await;
    if result.is_err() {
        eprintln!("function logs: {}", host.log().display());
    }
    drop(host);
    result?;

    println!(
        "\nTo explore this world afterwards, run the drill as `LIFEBOAT_KEEP_STACK=1 make drill`,\n\
         then point a function at it with:"
    );
    for (k, v) in &env {
        println!("  export {k}={v}");
    }
    Ok(())
}

/// A sample event from `events/`, stamped with a fresh id and the current time so that
/// its windows and the measured RPO are about now.
fn sample(root: &std::path::Path, name: &str, id: &str) -> Result<Value, String> {
    let path: PathBuf = root.join("events").join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut event: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if event.get("id").is_some() {
        event["id"] = json!(id);
        event["time"] =
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    Ok(event)
}

fn list(value: &Value, field: &str, show: impl Fn(&Value) -> String) -> Vec<String> {
    value[field]
        .as_array()
        .map(|a| a.iter().map(&show).collect())
        .unwrap_or_default()
}

/// Poll `check` until it holds or `limit` passes; returns how long it took.
async fn wait_for<F, Fut>(what: &str, limit: Duration, check: F) -> Result<Duration, String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > limit {
            return Err(format!(
                "{what}: still not done after {} s",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(started.elapsed())
}

async fn all_snapshots_available(region_clients: &lifeboat::aws::RegionalClients) -> bool {
    let rds = &region_clients.rds;
    let db = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await;
    let cluster = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await;
    match (db, cluster) {
        (Ok(db), Ok(cluster)) => {
            db.db_snapshots()
                .iter()
                .all(|s| s.status() == Some("available"))
                && cluster
                    .db_cluster_snapshots()
                    .iter()
                    .all(|s| s.status() == Some("available"))
        }
        _ => false,
    }
}

/// Stage 3: the snapshot function takes the plan's snapshots, copies them to the DR
/// region, and measures the RPO at every location.
async fn backups(
    plan: &Plan,
    world: &World,
    host: &FunctionHost,
    root: &std::path::Path,
) -> Result<(), String> {
    let t = stage(
        3,
        "Backups: snapshots, copies to the DR region, measured RPO (snapshot function)",
    );
    let tick = sample(root, "snapshot-schedule.json", "drill-tick-1")?;
    let first = host
        .invoke("snapshot", &tick)
        .map_err(|e| format!("snapshot tick: {e}"))?;
    say(format!(
        "tick (events/snapshot-schedule.json): created {}",
        list(&first, "created", |c| format!(
            "{} ({})",
            c["snapshot"].as_str().unwrap_or(""),
            c["tier"].as_str().unwrap_or("")
        ))
        .join(", ")
    ));
    for e in list(&first, "exports", |e| {
        format!(
            "table export {} {}",
            e["prefix"].as_str().unwrap_or(""),
            e["status"].as_str().unwrap_or("")
        )
    }) {
        say(e);
    }
    let waited = wait_for(
        "snapshots in the primary region",
        Duration::from_secs(120),
        || all_snapshots_available(&world.clients.primary),
    )
    .await?;
    say(format!(
        "snapshots available after {:.1} s",
        waited.as_secs_f64()
    ));

    // RDS reports the new instance snapshot: its copy starts at once.
    let orders = first["created"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["resource"] == "orders-db"))
        .and_then(|c| c["snapshot"].as_str())
        .ok_or("the tick created no orders-db snapshot")?
        .to_string();
    let mut event = sample(root, "snapshot-rds-snapshot-created.json", "drill-rds-1")?;
    event["detail"]["SourceIdentifier"] = json!(orders);
    event["detail"]["SourceArn"] = json!(format!(
        "arn:aws:rds:{}:123456789012:snapshot:{orders}",
        plan.regions.primary
    ));
    let copied = host
        .invoke("snapshot", &event)
        .map_err(|e| format!("snapshot event: {e}"))?;
    say(format!(
        "rds event (events/snapshot-rds-snapshot-created.json): copies started {}",
        list(&copied, "copies_started", |c| format!(
            "{} to {}",
            c["snapshot"].as_str().unwrap_or(""),
            c["destination"].as_str().unwrap_or("")
        ))
        .join(", ")
    ));
    let tick = sample(root, "snapshot-schedule.json", "drill-tick-2")?;
    let second = host
        .invoke("snapshot", &tick)
        .map_err(|e| format!("snapshot tick: {e}"))?;
    say(format!(
        "tick: copies started {}",
        list(&second, "copies_started", |c| format!(
            "{} to {}",
            c["snapshot"].as_str().unwrap_or(""),
            c["destination"].as_str().unwrap_or("")
        ))
        .join(", ")
    ));
    let waited = wait_for("copies in the DR region", Duration::from_secs(300), || {
        all_snapshots_available(&world.clients.dr)
    })
    .await?;
    say(format!(
        "copies available in {} after {:.1} s",
        plan.regions.dr,
        waited.as_secs_f64()
    ));

    let tick = sample(root, "snapshot-schedule.json", "drill-tick-3")?;
    let last = host
        .invoke("snapshot", &tick)
        .map_err(|e| format!("snapshot tick: {e}"))?;
    say(format!(
        "{:<12} {:<22} {:>10} {:>10}  {}",
        "resource", "location", "age", "target", "RPO"
    ));
    let mut breaches = 0;
    for m in last["rpo"].as_array().into_iter().flatten() {
        let breached = m["breached"].as_bool().unwrap_or(true);
        breaches += usize::from(breached);
        let age = m["age_seconds"]
            .as_i64()
            .map(|a| format!("{} min", a / 60))
            .unwrap_or_else(|| "none".into());
        say(format!(
            "{:<12} {:<22} {:>10} {:>10}  {}",
            m["resource"].as_str().unwrap_or(""),
            m["location"].as_str().unwrap_or(""),
            age,
            format!("{} min", m["target_seconds"].as_i64().unwrap_or(0) / 60),
            if breached { "BREACHED" } else { "met" }
        ));
    }
    say(format!(
        "report: {}",
        last["report"].as_str().unwrap_or("none")
    ));
    done(t);
    if breaches > 0 {
        return Err(format!(
            "the RPO is breached at {breaches} location(s) after the backup stage"
        ));
    }
    Ok(())
}
