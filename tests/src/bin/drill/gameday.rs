//! The drill as a game day, through the failover function's own `game-day` command: the
//! function injects the fault (signal only: it sets the plan's health alarm to ALARM),
//! follows the real failover the drill then delivers the alarm for, verifies the DR
//! writer (the record, and the canary row written to and read back from the local
//! PostgreSQL database mapped to `orders-db`), acknowledges the incident and starts the
//! failback through the failback function (`cargo lambda watch` serves Lambda's Invoke
//! API), and, once the failback is over, writes its report to S3 and SNS. The drill's
//! summary is that report.

use super::{sample, say};
use harness::functions::FunctionHost;
use lifeboat::gameday::{GameDayReport, render_report};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

fn invoke(host: &FunctionHost, payload: &Value) -> Result<Value, String> {
    host.invoke("failover", payload)
        .map_err(|e| format!("failover function, {}: {e}", payload["action"]))
}

/// The game day's phase in a reply (`{"game_day": {"phase": {"phase": "Done"}}}`).
fn phase(reply: &Value) -> String {
    reply["game_day"]["phase"]["phase"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

/// Print what the function said, one line per step.
fn print_steps(reply: &Value) {
    for step in reply["steps"].as_array().into_iter().flatten() {
        if let Some(text) = step.as_str().filter(|t| !t.is_empty()) {
            say(format!("  game day: {text}"));
        }
    }
}

/// `{"action": "game-day-status"}`.
pub fn status(host: &FunctionHost, root: &Path) -> Result<Value, String> {
    invoke(host, &sample(root, "game-day-status.json", "")?)
}

/// Start: the hypothesis is set, and the function injects the fault at once.
pub fn start(host: &FunctionHost, root: &Path) -> Result<(), String> {
    let mut command = sample(root, "game-day.json", "")?;
    command["id"] = json!(format!(
        "drill-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    command["who"] = json!("make drill");
    say(
        "game day (events/game-day.json, signal only): hypothesis: failover within the RTO target, data loss within the RPO target, failback returns to Normal and protected",
    );
    // With a command id, as the runbook sends it: the same command again (a CLI retry
    // after a lost answer) is answered from the first run and starts nothing.
    command["command_id"] = json!(format!(
        "{}-start",
        command["id"].as_str().unwrap_or("drill")
    ));
    let reply = invoke(host, &command)?;
    print_steps(&reply);
    if phase(&reply) != "AwaitingFailover" {
        return Err(format!(
            "the game day did not inject its fault: it is {} ({})",
            phase(&reply),
            reply["steps"]
        ));
    }
    let again = invoke(host, &command)?;
    if again != reply {
        return Err(format!(
            "the game-day command sent again with its command_id was not answered from its first run: {again}"
        ));
    }
    say(format!(
        "sent again with the same command_id {} (as a CLI retry would): the first answer, no second game day",
        command["command_id"]
    ));
    Ok(())
}

/// After the failover: the function verified the DR writer and started the failback.
pub fn verified(host: &FunctionHost, root: &Path) -> Result<(), String> {
    let reply = status(host, root)?;
    let gd = &reply["game_day"];
    let v = &gd["verification"];
    if v.is_null() {
        return Err(format!(
            "after the failover the game day has not verified the DR writer: it is {}",
            phase(&reply)
        ));
    }
    say(format!(
        "  game day verification: {} (canary: {})",
        v["detail"].as_str().unwrap_or_default(),
        v["canary"]["result"].as_str().unwrap_or("?")
    ));
    if v["endpoint_answered"] != true || v["canary"]["result"] != "ok" {
        return Err(format!(
            "the DR writer failed the game day's verification: {v}"
        ));
    }
    if !gd["failback_requested_at"].is_null() {
        return Err("the game day started the failback while the primary region was down".into());
    }
    if let Some(said) = reply["steps"].as_array().and_then(|s| s.last()) {
        say(format!("  game day: {}", said.as_str().unwrap_or_default()));
    }
    Ok(())
}

/// After the primary region recovered and the failover function ticked: the game day
/// acknowledged the incident and started the failback.
pub fn failback_started(host: &FunctionHost, root: &Path) -> Result<(), String> {
    let reply = status(host, root)?;
    if phase(&reply) != "AwaitingFailback" || reply["game_day"]["failback_requested_at"].is_null() {
        return Err(format!(
            "with the primary region back the game day did not start the failback: it is {}",
            phase(&reply)
        ));
    }
    say(
        "  game day: the primary region is ready; incident acknowledged and the failback started through the failback function",
    );
    Ok(())
}

/// After the failback: tick the failover function (as its schedule would) until the game
/// day has written its report, print the report as the drill's summary, and fail the
/// drill unless the hypothesis held.
pub fn finish(host: &FunctionHost, root: &Path) -> Result<(), String> {
    let tick = sample(root, "failover-tick.json", "drill-gameday-tick")?;
    let limit = Instant::now() + Duration::from_secs(60);
    let reply = loop {
        let reply = status(host, root)?;
        if matches!(phase(&reply).as_str(), "Done" | "Aborted") {
            break reply;
        }
        if Instant::now() > limit {
            return Err(format!(
                "the game day did not end after the failback: it is {}",
                phase(&reply)
            ));
        }
        invoke(host, &tick)?;
    };
    let report: GameDayReport = serde_json::from_value(reply["game_day"]["report"].clone())
        .map_err(|e| format!("the game day's report does not read back: {e}"))?;
    for line in render_report(&report) {
        say(line);
    }
    say(format!(
        "report: {} in the report bucket, and the SNS topic",
        lifeboat::gameday::run::game_day_report_key(&report)
    ));
    if !report.hypothesis.held() {
        return Err("the game day's hypothesis did not hold".into());
    }
    Ok(())
}
