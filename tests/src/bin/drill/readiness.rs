//! The drill's last stage: the DR readiness report, as an operator gets it from a
//! deployed stack (`{"action": "readiness"}` to the readiness function), and the drill's
//! verdict on the end state.

use super::{done, publish_caught_up_lag, say, stage};
use harness::World;
use harness::functions::FunctionHost;
use lifeboat::plan::Plan;
use serde_json::Value;

/// The lowest score the drill accepts. Below 100 on purpose: right after a failback the
/// cooldown is in force, and the local plan validates only one of its two databases;
/// both are real findings the report shows as warnings.
pub const MIN_SCORE: u64 = 90;

/// Ask the readiness function for the report, print it, and fail the drill if
/// a critical check fails, the score is under [`MIN_SCORE`], or the DR state is not
/// Normal.
pub async fn stage_readiness(
    plan: &Plan,
    world: &World,
    host: &FunctionHost,
    root: &std::path::Path,
) -> Result<(), String> {
    let t = stage("DR readiness report (readiness function, events/readiness.json)");
    let replicas: Vec<String> = plan
        .resources
        .iter()
        .filter_map(|r| r.replica.as_ref().map(|rep| rep.identifier.clone()))
        .collect();
    publish_caught_up_lag(&world.clients.dr.cloudwatch, &replicas).await?;
    say(
        "(the emulator publishes no ReplicaLag: the drill stands in for RDS with a caught-up datapoint for each DR replica)",
    );
    let path = root.join("events").join("readiness.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let request: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let reply = host
        .invoke("readiness", &request)
        .map_err(|e| format!("readiness: {e}"))?;
    say(reply["text"]
        .as_str()
        .unwrap_or("(no text in the reply)")
        .trim_end());
    say(format!(
        "stored: {}",
        reply["stored"].as_str().unwrap_or("(not said)")
    ));
    let checks = reply["checks"].as_array().cloned().unwrap_or_default();
    let failing_critical: Vec<String> = checks
        .iter()
        .filter(|c| c["passed"] == false && c["concern"] == "critical")
        .map(|c| format!("{}: {}", c["subject"], c["item"]))
        .collect();
    let normal = checks
        .iter()
        .any(|c| c["item"] == "DR state Normal (protected)" && c["passed"] == true);
    let score = reply["score"].as_u64().ok_or("the reply has no score")?;
    done(t);
    if !normal {
        return Err("the drill did not end in the Normal state".into());
    }
    if !failing_critical.is_empty() {
        return Err(format!(
            "readiness: critical checks fail: {}",
            failing_critical.join("; ")
        ));
    }
    if score < MIN_SCORE {
        return Err(format!("readiness score {score} is under {MIN_SCORE}"));
    }
    say(format!(
        "end state: Normal and protected; readiness {score}/100 (the drill requires {MIN_SCORE})"
    ));
    Ok(())
}
