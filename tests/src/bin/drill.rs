//! The DR drill on the local stack: `make drill` runs it after bringing the stack up.
//!
//! Stages: the demo world the plan describes is created in the emulator; its DR posture
//! is read back and judged; then each function runs its part of the disaster story
//! through `cargo lambda watch` / `cargo lambda invoke`, with its `events/` samples.
//! Exits non-zero when a stage fails.

#[path = "drill/retention.rs"]
mod retention;

use harness::functions::FunctionHost;
use harness::realism::{Fault, FaultId, publish_replica_lag};
use harness::timing::{self, StepTiming, human};
use harness::{Account, LocalAws, Settle, World, create_world_with};
use lifeboat::aws::{DynamoStateStore, gather_posture};
use lifeboat::plan::{Plan, PlanSource, load_plan_text, parse_plan};
use lifeboat::posture::{Concern, assess, render};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "drill/validation.rs"]
mod validation;

#[path = "drill/readiness.rs"]
mod readiness;

#[path = "drill/accident.rs"]
mod accident;

#[path = "drill/gameday.rs"]
mod gameday;

/// How often the drill polls what it waits for, in AWS seconds (scaled like every
/// duration, so the gap it adds is comparable with AWS's own times).
const POLL_EVERY_AWS_SECONDS: f64 = 10.0;

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

static STAGE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Start the next stage: its number, its name, and its clock.
fn stage(name: &str) -> Instant {
    let n = STAGE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    println!("\n[stage {n}] {name}");
    Instant::now()
}

/// The waits of a stage: what AWS took (simulated, from the emulator's transitions) and
/// what came on top (polling gaps).
fn print_waits(waits: &[StepTiming], scale: f64) {
    if waits.is_empty() {
        return;
    }
    println!(
        "      waits (time scale {scale}: one AWS second is {:.1} ms here; polling every {})",
        scale * 1000.0,
        human(POLL_EVERY_AWS_SECONDS)
    );
    for line in timing::render(waits).lines() {
        println!("        {line}");
    }
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

    let t = stage("Demo world: what the plan protects, created in the local AWS");
    if args.reset {
        local.reset().await?;
    }
    let account = local.default_account();
    let scale = account
        .realism_config()
        .await
        .map_err(|e| e.to_string())?
        .time_scale;
    let settle = Settle::Poll {
        interval: Duration::from_secs_f64((POLL_EVERY_AWS_SECONDS * scale).max(0.005)),
        timeout: Duration::from_secs(120),
    };
    let (world, waits) = create_world_with(&account, &plan, &settle).await?;
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
    print_waits(&waits, scale);
    done(t);

    let t = stage("DR posture, as the plan and the emulator show it");
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
    let mut env = world.function_env(&args.plan, &args.endpoint);
    // The accidental-deletion stage's stand-in database starts before the functions, so
    // their local mapping can name where its restore will listen.
    let mut accident = accident::Accident::prepare()?;
    let (key, mapping) = validation::database_mapping();
    // A space between the entries: `cargo lambda watch --env-var` splits its values at commas.
    env.push((key, format!("{mapping} {}", accident.mapping())));
    say("\nstarting the functions with `cargo lambda watch`...");
    let host = FunctionHost::start(&root, &env)?;
    let mut result = backups(&plan, &world, &host, &root).await;
    if result.is_ok() {
        result = retention::retention(&plan, &world, &host, &root).await;
    }
    if result.is_ok() {
        result = validation::stage_validation(&plan, &world, &host, &root, scale).await;
    }
    if result.is_ok() {
        result = accident::stage_accident(&mut accident, &host, &root).await;
    }
    drop(accident);
    // From here the drill is a game day, run by the failover function's `game-day`
    // command: it injects the fault, verifies the DR writer after the failover, starts
    // the failback, and its report is the drill's summary.
    if result.is_ok() {
        result = validation::prepare_canary().await;
    }
    // The disaster begins before any alarm fires: the primary region's databases stop
    // answering (its RDS API, and the replication from it); its CloudWatch still works,
    // so the health alarm there can fire.
    let mut outages = Vec::new();
    if result.is_ok() {
        result = account
            .inject(Fault::region_outage(&plan.regions.primary).service("rds"))
            .await
            .map(|id| outages.push(id))
            .map_err(|e| format!("taking {}'s RDS down: {e}", plan.regions.primary));
        say(format!(
            "{}'s RDS stops answering (the realism layer's outage of one service): the disaster begins",
            plan.regions.primary
        ));
    }
    if result.is_ok() {
        result = gameday::start(&host, &root);
    }
    if result.is_ok() {
        result = failover(&plan, &world, &account, &host, &root)
            .await
            .map(|id| outages.push(id));
    }
    if result.is_ok() {
        result = failback(&plan, &world, &account, &outages, &host, &root).await;
    }
    if result.is_ok() {
        let t = stage("Game-day report (the drill's summary)");
        result = gameday::finish(&host, &root);
        done(t);
    }
    if result.is_ok() {
        result = readiness::stage_readiness(&plan, &world, &host, &root).await;
    }
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
        println!("  export {k}='{v}'");
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
    let t = stage("Backups: snapshots, copies to the DR region, measured RPO (snapshot function)");
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

/// Stage: the primary region fails (its RDS first, then its health alarm goes to ALARM,
/// then the whole region, CloudWatch included); the failover function confirms the
/// failure from the DR side, promotes the DR replica, fences the old primary where it can
/// and switches DNS, and the drill prints which signals confirmed, the failover timeline,
/// and the measured RTO (detection included) and data-loss window.
async fn failover(
    plan: &Plan,
    world: &World,
    account: &Account,
    host: &FunctionHost,
    root: &std::path::Path,
) -> Result<FaultId, String> {
    use aws_sdk_cloudwatch::types::StateValue;
    let t = stage("Regional failure and failover (failover function)");
    // The alarm as deployed (infra/health-check.yaml): in the region it watches.
    let alarm = plan
        .failover
        .health_alarms
        .iter()
        .find(|a| plan.alarm_region(a) == plan.regions.primary)
        .or_else(|| plan.failover.health_alarms.first())
        .ok_or("the plan has no health alarm")?;
    let cw = &world
        .clients
        .region(plan.alarm_region(alarm))
        .ok_or("no clients for the alarm's region")?
        .cloudwatch;
    // The emulator publishes no ReplicaLag: the drill stands in for RDS.
    for r in plan.resources.iter().filter_map(|r| r.replica.as_ref()) {
        publish_replica_lag(&world.clients.dr.cloudwatch, &r.identifier, &[(0, 2.0)]).await?;
    }
    // The game day set the alarm (its signal-only injection); EventBridge would deliver
    // the change with the alarm's own time.
    let described = cw
        .describe_alarms()
        .alarm_names(&alarm.name)
        .send()
        .await
        .map_err(|e| format!("reading the alarm: {e:?}"))?;
    let current = described
        .metric_alarms()
        .first()
        .ok_or_else(|| format!("no alarm {}", alarm.name))?;
    if current.state_value() != Some(&StateValue::Alarm) {
        return Err(format!(
            "{} is not in ALARM: the game day's injection did not take",
            alarm.name
        ));
    }
    let failed_at = current
        .state_updated_timestamp()
        .and_then(|t| chrono::DateTime::from_timestamp_millis(t.to_millis().ok()?))
        .unwrap_or_else(chrono::Utc::now);
    say(format!(
        "{} ({}) is in ALARM since {} (the game day's injection)",
        alarm.name,
        plan.alarm_region(alarm),
        failed_at.format("%H:%M:%S")
    ));
    // Then the whole primary region goes dark, CloudWatch and its alarm included (the
    // emulator drops every call signed for it).
    let outage = account
        .inject(Fault::region_outage(&plan.regions.primary))
        .await
        .map_err(|e| format!("taking {} down: {e}", plan.regions.primary))?;
    say(format!(
        "{} is down: every call to it meets a closed connection, its alarm can no longer be read",
        plan.regions.primary
    ));
    let mut event = sample(root, "failover-alarm.json", "drill-alarm-1")?;
    event["detail"]["alarmName"] = json!(alarm.name);
    event["detail"]["state"]["timestamp"] = json!(failed_at.to_rfc3339());
    let reply = host
        .invoke("failover", &event)
        .map_err(|e| format!("failover: {e}"))?;
    say(format!(
        "failover (events/failover-alarm.json): {}",
        reply["phase"].as_str().unwrap_or("?")
    ));
    let store = DynamoStateStore::new(
        world.clients.home.dynamodb.clone(),
        &world.control.state_table,
    );
    let timeline = lifeboat::state::StateStore::timeline(
        &store,
        &plan.name,
        Some(failed_at - chrono::Duration::seconds(5)),
    )
    .await
    .map_err(|e| e.to_string())?;
    for e in timeline.iter().filter(|e| e.function == "failover") {
        // An action's intent (committed before it) and its outcome are two lines.
        say(format!(
            "{}  {:<22} {:<9} {}",
            e.at.format("%H:%M:%S%.3f"),
            e.action,
            e.outcome,
            e.detail.chars().take(150).collect::<String>()
        ));
    }
    let state = &reply["state"];
    let m = &state["measurement"];
    if reply["phase"] != "FailedOver" {
        return Err(format!("the failover did not complete: {}", reply["steps"]));
    }
    // What each detection signal said when the failure was confirmed, from the DR side.
    let detection = &state["detection"];
    say(format!(
        "confirmed from the DR side, without force: {} failing vote(s) of a quorum of {}",
        detection["failing_votes"], detection["quorum"]
    ));
    for s in detection["signals"].as_array().into_iter().flatten() {
        say(format!(
            "  {} ({}): {}, {}",
            s["signal"].as_str().unwrap_or("?"),
            s["region"].as_str().unwrap_or("?"),
            s["verdict"].as_str().unwrap_or("?"),
            s["detail"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(110)
                .collect::<String>()
        ));
    }
    if detection["outcome"] != "confirmed" {
        return Err(format!(
            "the failover was not confirmed by its signals: {detection}"
        ));
    }
    say(format!(
        "measured by the failover function: RTO {} s (target {} s): detection (alarm to a confirmed quorum) {} s, AWS {} s, Lifeboat {} s; data-loss window {} s (RPO {} s)",
        m["rto_seconds"],
        m["rto_target_seconds"],
        m["detection_seconds"],
        m["aws_seconds"],
        m["lifeboat_seconds"],
        m["data_loss_seconds"],
        m["rpo_target_seconds"]
    ));
    let received = timeline
        .iter()
        .find(|e| e.action == "failover.alarm")
        .map(|e| e.at);
    recovery_timing(plan, world, state, failed_at, received).await?;
    let facts = gather_posture(plan, &world.clients, &store).await;
    for r in &facts.resources {
        if let Some(target) = lifeboat::posture::record_target(r) {
            say(format!(
                "{}: writer record now points at the {:?} side",
                r.id, target
            ));
            if target != lifeboat::posture::RecordTarget::Dr {
                return Err(format!(
                    "{}: the writer record does not point at the DR replica",
                    r.id
                ));
            }
        }
    }
    say(format!(
        "report: {}",
        reply["report"].as_str().unwrap_or("none")
    ));
    // The same invocation moved the game day on: the verification; the failback waits
    // for the primary region.
    gameday::verified(host, root)?;
    done(t);
    Ok(outage)
}

/// Stage: the primary region is healthy again. The failback function re-protects into
/// it, moves the writer back (fenced through DNS, then promoted), shifts application
/// traffic through the plan's stages with their bake times, and re-protects the DR side;
/// the drill then checks the posture is back to normal.
async fn failback(
    plan: &Plan,
    world: &World,
    account: &Account,
    outages: &[FaultId],
    host: &FunctionHost,
    root: &std::path::Path,
) -> Result<(), String> {
    let t = stage("Recovery of the primary region and staged failback (failback function)");
    for outage in outages {
        account
            .remove_fault(outage)
            .await
            .map_err(|e| format!("bringing {} back: {e}", plan.regions.primary))?;
    }
    // The game day could not take its signal back in a region that was down (its stop
    // of the injection failed there); the health alarm in the recovered region goes back
    // to OK as its next evaluation of the healthy endpoint would (the emulator evaluates
    // no alarm, so the drill stands in for CloudWatch).
    for alarm in plan
        .failover
        .health_alarms
        .iter()
        .filter(|a| plan.alarm_region(a) == plan.regions.primary)
    {
        let cw = &world
            .clients
            .region(&plan.regions.primary)
            .ok_or("no clients for the primary region")?
            .cloudwatch;
        cw.set_alarm_state()
            .alarm_name(&alarm.name)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
            .state_reason("the primary endpoint answers its health check again")
            .send()
            .await
            .map_err(|e| format!("setting {} back to OK: {e:?}", alarm.name))?;
        say(format!(
            "{} ({}) is OK again: the endpoint answers its health check",
            alarm.name, plan.regions.primary
        ));
    }
    say(format!(
        "{} answers again (the health alarms are OK: the game day took its signal back where it could, CloudWatch's evaluation the rest)",
        plan.regions.primary
    ));
    publish_primary_lag(plan, world).await?;
    // The failover function's next tick: the old primary, back as a writer, is fenced,
    // and the game day, the primary region ready, acknowledges the incident and starts
    // the failback.
    let tick = sample(root, "failover-tick.json", "drill-fo-tick-recovered")?;
    host.invoke("failover", &tick)
        .map_err(|e| format!("failover tick: {e}"))?;
    gameday::failback_started(host, root)?;
    let start = host
        .invoke(
            "failback",
            &sample(root, "failback-status.json", "drill-fb")?,
        )
        .map_err(|e| format!("failback status: {e}"))?;
    say(format!(
        "failback (events/failback-status.json): {}",
        start["phase"].as_str().unwrap_or("?")
    ));
    if !start["phase"]
        .as_str()
        .is_some_and(|p| p.starts_with("FailingBack"))
    {
        return Err(format!(
            "the game day's failback is not under way: {}",
            start["phase"]
        ));
    }
    // When the game day started it: the failback's first mark.
    let started_at = start["state"]["marks"][0]["at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(chrono::Utc::now);
    // The failover function's schedule ticks it every minute; the game day follows the
    // failback's stages on those ticks.
    let failover_tick = sample(root, "failover-tick.json", "drill-fo-tick")?;
    let tick = sample(root, "failback-tick.json", "drill-fb-tick")?;
    let bake = plan.failback.bake_minutes;
    say(format!(
        "ticking the failback function (events/failback-tick.json) as its schedule would; each traffic stage bakes {bake} min"
    ));
    let mut last_phase = String::new();
    let mut reply = start;
    let limit = Instant::now()
        + Duration::from_secs(120 + 60 * u64::from(bake) * plan.failback.stages.len() as u64);
    while reply["phase"] != "Normal" {
        if Instant::now() > limit {
            return Err(format!(
                "the failback did not finish; it is at {}",
                reply["phase"]
            ));
        }
        publish_primary_lag(plan, world).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        reply = host
            .invoke("failback", &tick)
            .map_err(|e| format!("failback tick: {e}"))?;
        host.invoke("failover", &failover_tick)
            .map_err(|e| format!("failover tick: {e}"))?;
        let phase = reply["phase"].as_str().unwrap_or("?").to_string();
        let traffic = reply["state"]["traffic_primary_percent"]
            .as_u64()
            .map(|p| format!(", {p} % of traffic on the primary region"))
            .unwrap_or_default();
        let now = format!("{phase}{traffic}");
        if now != last_phase {
            say(format!(
                "+{:>5.1} s  {now}",
                (chrono::Utc::now() - started_at).num_milliseconds() as f64 / 1000.0
            ));
            last_phase = now;
        }
    }
    let store = DynamoStateStore::new(
        world.clients.home.dynamodb.clone(),
        &world.control.state_table,
    );
    let timeline = lifeboat::state::StateStore::timeline(
        &store,
        &plan.name,
        Some(started_at - chrono::Duration::seconds(5)),
    )
    .await
    .map_err(|e| e.to_string())?;
    say("failback timeline (what Lifeboat did in AWS):");
    for e in timeline
        .iter()
        .filter(|e| e.function == "failback" && e.resource.is_some())
    {
        say(format!(
            "  {}  {:<26} {:<9} {}",
            e.at.format("%H:%M:%S%.3f"),
            e.action,
            e.outcome,
            e.detail.chars().take(120).collect::<String>()
        ));
    }
    if let Some(summary) = reply["steps"].as_array().and_then(|s| s.last()) {
        say(summary.as_str().unwrap_or_default());
    }
    let facts = gather_posture(plan, &world.clients, &store).await;
    for r in &facts.resources {
        if let Some(target) = lifeboat::posture::record_target(r) {
            say(format!(
                "{}: writer record points at the {:?} side again",
                r.id, target
            ));
            if target != lifeboat::posture::RecordTarget::Primary {
                return Err(format!(
                    "{}: the writer record does not point at the primary",
                    r.id
                ));
            }
        }
    }
    let critical: Vec<String> = assess(plan, &facts)
        .into_iter()
        .filter(|f| f.concern == Concern::Critical)
        .map(|f| format!("{f:?}"))
        .collect();
    if !critical.is_empty() {
        return Err(format!(
            "after failback the posture has critical findings: {}",
            critical.join("; ")
        ));
    }
    say("posture after failback: no critical finding (the DR replicas protect the primary again)");
    say(format!(
        "report: {}",
        reply["report"].as_str().unwrap_or("none")
    ));
    done(t);
    Ok(())
}

/// The emulator publishes no ReplicaLag: the drill stands in for RDS, which publishes
/// the lag of the primary-region replicas (caught up here) every minute.
async fn publish_primary_lag(plan: &Plan, world: &World) -> Result<(), String> {
    let replicated = plan.resources.iter().filter(|r| r.replica.is_some());
    let ids: Vec<String> = replicated.map(|r| r.aws_identifier().to_string()).collect();
    publish_caught_up_lag(&world.clients.primary.cloudwatch, &ids).await
}

/// A `ReplicaLag` datapoint of 0 s, now, for each of these instances: what RDS publishes
/// every minute for a replica that is caught up (the emulator publishes none).
async fn publish_caught_up_lag(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    instances: &[String],
) -> Result<(), String> {
    for id in instances {
        publish_replica_lag(cloudwatch, id, &[(0, 0.0)]).await?;
    }
    Ok(())
}

fn wall(value: &Value) -> Option<f64> {
    let t: chrono::DateTime<chrono::Utc> = value.as_str()?.parse().ok()?;
    Some(t.timestamp_micros() as f64 / 1e6)
}

/// The failover's recovery steps, each split into what AWS took (the emulator's
/// transitions, at realistic durations compressed by the time scale) and what Lifeboat
/// added on top (delivery, decisions, polling gaps): the figure to drive toward zero.
async fn recovery_timing(
    plan: &Plan,
    world: &World,
    state: &Value,
    failed_at: chrono::DateTime<chrono::Utc>,
    received: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), String> {
    let account = LocalAws {
        endpoint: world
            .clients
            .dr
            .config
            .endpoint_url()
            .unwrap_or_default()
            .to_string(),
    }
    .default_account();
    let transitions = account.transitions().await.map_err(|e| e.to_string())?;
    let scale = transitions.time_scale;
    let failed = failed_at.timestamp_micros() as f64 / 1e6;
    let mut steps = Vec::new();
    let targets = state["targets"].as_array().cloned().unwrap_or_default();
    for t in &targets {
        let resource = t["resource"].as_str().unwrap_or("");
        let replica = plan
            .resource(resource)
            .and_then(|r| r.replica.as_ref())
            .map(|r| r.identifier.clone())
            .unwrap_or_default();
        let promotion: Vec<&harness::realism::Transition> = transitions
            .of(&replica)
            .into_iter()
            .filter(|x| x.started_at_wall >= failed && x.kind.contains("promote"))
            .collect();
        if let (Some(began), Some(noticed)) =
            (wall(&t["promote_issued_at"]), wall(&t["promoted_at"]))
        {
            steps.push(StepTiming::from_transitions(
                format!("{resource}: promote {replica}"),
                &promotion,
                Some(began),
                noticed,
                scale,
            ));
        }
        if let (Some(change), Some(began), Some(noticed)) = (
            t["dns_change"].as_str(),
            wall(&t["dns_submitted_at"]),
            wall(&t["dns_synced_at"]),
        ) {
            let dns: Vec<&harness::realism::Transition> = transitions.of(change);
            steps.push(StepTiming::from_transitions(
                format!("{resource}: DNS change INSYNC"),
                &dns,
                Some(began),
                noticed,
                scale,
            ));
        }
    }
    let synced = targets
        .iter()
        .filter_map(|t| wall(&t["dns_synced_at"]))
        .fold(f64::NAN, f64::max);
    let received = received.map(|r| r.timestamp_micros() as f64 / 1e6);
    if synced.is_nan() {
        return Ok(());
    }
    // Lifeboat's share is wall-clock time (its polling backoff is not compressed with
    // AWS's durations), so it is shown as is, not scaled to AWS's pace.
    say("recovery steps: AWS (simulated, compressed) and Lifeboat on top (real):");
    let width = steps.iter().map(|s| s.step.len()).max().unwrap_or(0);
    for s in &steps {
        say(format!(
            "  {:<width$}  AWS {:>10} ({:.2} s real)   Lifeboat on top {:.2} s",
            s.step,
            human(s.aws_simulated_s),
            s.aws_real_s,
            s.overhead_real_s()
        ));
    }
    let aws_real: f64 = steps.iter().map(|s| s.aws_real_s).sum();
    let aws_simulated: f64 = steps.iter().map(|s| s.aws_simulated_s).sum();
    let total = synced - failed;
    let delivery = received.map(|r| (r - failed).max(0.0)).unwrap_or(0.0);
    let overhead = (total - aws_real).max(0.0);
    say(format!(
        "RTO {:.2} s real = AWS {:.2} s real (simulating {} of AWS time) + Lifeboat on top {:.2} s real (alarm delivery {:.2} s, decisions and polling gaps {:.2} s)",
        total,
        aws_real,
        human(aws_simulated),
        overhead,
        delivery,
        (overhead - delivery).max(0.0),
    ));
    Ok(())
}
