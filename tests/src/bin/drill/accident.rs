//! Drill stage: an accidental deletion, answered by a point-in-time recovery through the
//! recovery function (`recover`, ticks, `recovery-status`, `discard`).
//!
//! The emulator restores no data, so `orders-db`'s storage is stood in for by a real
//! PostgreSQL cluster with WAL archiving (`harness::pitr`), started before the functions
//! so their local database mapping can name the port its restore will listen on. The
//! drill writes orders, deletes them all, and recovers to the instant before: while the
//! function restores the emulated instance, PostgreSQL restores the stand-in (base backup
//! plus WAL replay to that instant), and the recovery's checks then run against it and
//! find the orders back. The recovery is discarded afterwards (the drill does not cut
//! over; the runbook and the emulator tests do). Everything the stage starts, it stops.

use super::{done, sample, say, stage};
use harness::functions::FunctionHost;
use harness::pitr::PitrCluster;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The database the plan's checks of `orders-db` read.
const DATABASE: &str = "orders";
/// How many orders the drill writes before the accident.
const ORDERS: u32 = 250;

/// The stand-in for `orders-db`'s storage, ready before the functions start.
pub struct Accident {
    cluster: PitrCluster,
    restore_port: u16,
}

impl Accident {
    /// Start the PostgreSQL cluster, create the plan's schema in it, and choose the port
    /// its restore will listen on.
    pub fn prepare() -> Result<Accident, String> {
        let mut cluster =
            PitrCluster::start().map_err(|e| format!("the local PITR cluster: {e}"))?;
        cluster
            .sql(&format!("CREATE DATABASE {DATABASE}"))
            .map_err(|e| e.to_string())?;
        cluster
            .sql_in(
                DATABASE,
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL); \
                 CREATE TABLE orders (id INTEGER PRIMARY KEY, \
                 user_id INTEGER NOT NULL REFERENCES users (id), total_cents INTEGER NOT NULL); \
                 INSERT INTO users SELECT n, 'user' || n || '@example.com' FROM generate_series(1, 20) n;",
            )
            .map_err(|e| e.to_string())?;
        let restore_port = cluster.reserve_restore_port().map_err(|e| e.to_string())?;
        Ok(Accident {
            cluster,
            restore_port,
        })
    }

    /// The local mapping for recovered `orders-db` instances: their checks run against
    /// the restored cluster.
    pub fn mapping(&self) -> String {
        format!(
            "orders-db-pitr-*=postgres://postgres@127.0.0.1:{}/{DATABASE}",
            self.restore_port
        )
    }

    fn count_orders(&self) -> Result<u64, String> {
        let text = self
            .cluster
            .sql_in(DATABASE, "SELECT count(*) FROM orders")
            .map_err(|e| e.to_string())?;
        text.trim()
            .parse()
            .map_err(|e| format!("counting orders: {text:?}: {e}"))
    }
}

fn invoke(host: &FunctionHost, payload: &Value) -> Result<Value, String> {
    host.invoke("recovery", payload)
        .map_err(|e| format!("recovery function, {}: {e}", payload["action"]))
}

/// The recovery named `id` in a reply.
fn recovery<'v>(reply: &'v Value, id: &str) -> Option<&'v Value> {
    reply["recoveries"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == id)
}

/// A recovery's phase name (`{"phase": {"phase": "Ready", "checks_passed": true}}`).
fn phase(r: &Value) -> String {
    r["phase"]["phase"].as_str().unwrap_or_default().to_string()
}

/// Tick the recovery function as its schedule would, until recovery `id` reaches one
/// of `phases`; returns the recovery as `recovery-status` shows it.
fn tick_until(
    host: &FunctionHost,
    root: &std::path::Path,
    id: &str,
    phases: &[&str],
) -> Result<Value, String> {
    let started = Instant::now();
    let status = json!({"action": "recovery-status", "recovery": id});
    let mut n = 0;
    loop {
        let reply = invoke(host, &status)?;
        let r = recovery(&reply, id)
            .ok_or_else(|| format!("recovery-status does not show {id}: {reply}"))?;
        if phases.contains(&phase(r).as_str()) {
            return Ok(r.clone());
        }
        if started.elapsed() > Duration::from_secs(180) {
            return Err(format!(
                "recovery {id} is still {} after 3 minutes",
                phase(r)
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
        n += 1;
        invoke(
            host,
            &sample(
                root,
                "recovery-tick.json",
                &format!("drill-recovery-tick-{n}"),
            )?,
        )?;
    }
}

/// The stage.
pub async fn stage_accident(
    accident: &mut Accident,
    host: &FunctionHost,
    root: &std::path::Path,
) -> Result<(), String> {
    let t = stage("Accidental deletion and point-in-time recovery (recovery function)");
    accident
        .cluster
        .sql_in(
            DATABASE,
            &format!(
                "INSERT INTO orders SELECT n, 1 + n % 20, 100 * n FROM generate_series(1, {ORDERS}) n"
            ),
        )
        .map_err(|e| e.to_string())?;
    let written = accident.count_orders()?;
    // Everything committed so far reaches the archive, as RDS ships its logs to S3.
    accident.cluster.archive_now().map_err(|e| e.to_string())?;
    let now = accident.cluster.server_now().map_err(|e| e.to_string())?;
    // Whole seconds, as an operator types it: the next whole second after the orders
    // were written, and the deletion comes more than a second after that.
    let before = chrono::DateTime::from_timestamp(now.timestamp() + 1, 0).unwrap_or(now);
    std::thread::sleep(Duration::from_millis(2500));
    accident
        .cluster
        .sql_in(DATABASE, "DELETE FROM orders")
        .map_err(|e| e.to_string())?;
    let deleted_at = accident.cluster.server_now().map_err(|e| e.to_string())?;
    let left = accident.count_orders()?;
    say(format!(
        "orders-db (local stand-in: PostgreSQL with WAL archiving) holds {written} orders; at {} \
         a `DELETE FROM orders` without WHERE leaves {left}",
        deleted_at.format("%H:%M:%S")
    ));

    let restore_time = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let request = json!({
        "action": "recover",
        "resource": "orders-db",
        "restore_time": restore_time,
        "reason": "drill: DELETE without WHERE on orders",
        "assertions": [
            {"name": "the deleted orders are back", "sql": "SELECT count(*) FROM orders",
             "expect": written.to_string()}
        ]
    });
    say(format!(
        "operator: {{\"action\": \"recover\", \"resource\": \"orders-db\", \"restore_time\": \"{restore_time}\", ...}} (events/recover.json)"
    ));
    let reply = invoke(host, &request)?;
    for s in reply["steps"].as_array().into_iter().flatten() {
        say(format!("  {}", s.as_str().unwrap_or_default()));
    }
    let id = reply["recoveries"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|r| r["id"].as_str())
        .ok_or_else(|| format!("the recover command named no recovery: {reply}"))?
        .to_string();

    // The emulated restore runs in the emulator; the data's restore runs here.
    let restored = accident
        .cluster
        .restore_to(before)
        .map_err(|e| format!("the PostgreSQL point-in-time restore: {e}"))?;
    say(format!(
        "PostgreSQL restored the base backup and replayed the WAL to {restore_time} in {:.1} s \
         (port {}, the data of {id})",
        restored.duration.as_secs_f64(),
        restored.port
    ));

    let r = tick_until(host, root, &id, &["Ready", "Failed"])?;
    for c in r["checks"]["passed"].as_array().into_iter().flatten() {
        say(format!("  pass  {}", c.as_str().unwrap_or_default()));
    }
    for c in r["checks"]["failed"].as_array().into_iter().flatten() {
        say(format!("  FAIL  {}", c.as_str().unwrap_or_default()));
    }
    if r["phase"]["checks_passed"] != json!(true) {
        return Err(format!("recovery {id} did not pass its checks: {r}"));
    }
    let back = accident
        .cluster
        .sql_restored_in(&restored, DATABASE, "SELECT count(*) FROM orders")
        .map_err(|e| e.to_string())?;
    say(format!(
        "recovered: {} orders in {id}, {left} in the damaged orders-db; a cutover now would \
         lose the writes after {restore_time} ({} s of them so far)",
        back.trim(),
        (chrono::Utc::now() - before).num_seconds()
    ));

    // The drill goes on to the regional failure with the original writer: discard.
    let reply = invoke(host, &json!({"action": "discard", "recovery": id}))?;
    for s in reply["steps"].as_array().into_iter().flatten() {
        say(format!("  {}", s.as_str().unwrap_or_default()));
    }
    tick_until(host, root, &id, &["Discarded"])?;
    say(format!(
        "discarded {id}: the recovered instance is deleted (only a discard ever deletes one)"
    ));
    accident.cluster.stop().map_err(|e| e.to_string())?;
    done(t);
    Ok(())
}
