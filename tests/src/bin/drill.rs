//! The DR drill on the local stack: `make drill` runs it after bringing the stack up.
//!
//! Stages so far: the demo world the plan describes is created in the emulator, then the
//! DR posture is read back from it and judged. Each function adds its stage as it lands.
//! Exits non-zero when a stage fails or the posture has a critical finding.

use harness::timing::{self, StepTiming, human};
use harness::{ControlPlane, LocalAws, Settle, create_world_with};
use lifeboat::aws::{DynamoStateStore, gather_posture};
use lifeboat::plan::{PlanSource, load_plan_text, parse_plan};
use lifeboat::posture::{Concern, assess, render};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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

fn stage(n: usize, total: usize, name: &str) -> Instant {
    println!("\n[{n}/{total}] {name}");
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

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
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
    const STAGES: usize = 2;

    let t = stage(
        1,
        STAGES,
        "Demo world: what the plan protects, created in the local AWS",
    );
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
        println!(
            "      {} {} in {}{replica}",
            r.kind,
            r.aws_identifier(),
            plan.regions.primary
        );
    }
    let control = ControlPlane::for_plan(&plan);
    println!(
        "      Route 53 zone {} ({}); state table {}, topic {}, reports s3://{}",
        world.zone_id,
        plan.dns.hosted_zone_name.as_deref().unwrap_or("by id"),
        control.state_table,
        world.topic_arn,
        control.report_bucket
    );
    print_waits(&waits, scale);
    done(t);

    let t = stage(
        2,
        STAGES,
        "DR posture, as the plan and the emulator show it",
    );
    let store = DynamoStateStore::new(world.clients.home.dynamodb.clone(), &control.state_table);
    let facts = gather_posture(&plan, &world.clients, &store).await;
    for line in render(&plan, &facts).lines() {
        if line.is_empty() {
            println!();
        } else {
            println!("      {line}");
        }
    }
    let critical = assess(&plan, &facts)
        .into_iter()
        .filter(|f| f.concern == Concern::Critical)
        .count();
    done(t);
    if critical > 0 {
        return Err(format!("the posture has {critical} critical finding(s)"));
    }

    println!(
        "\nTo explore this world afterwards, run the drill as `LIFEBOAT_KEEP_STACK=1 make drill`,\n\
         then point a function at it with:"
    );
    for (k, v) in world.function_env(&args.plan, &args.endpoint) {
        println!("  export {k}={v}");
    }
    println!("\ndrill passed");
    Ok(())
}
