//! Gathering the readiness facts from AWS: the posture, every backup location, replica
//! lag, the plan's alarms, and the DR state and timeline from the state table.

use super::dr::DrAws;
use super::{AwsClients, AwsSnapshots, ClientSettings, gather_posture};
use crate::backup::run::{ExportBook, SnapshotPort, exports_key};
use crate::backup::{BackupRecord, export_location, measure_rpo};
use crate::dr::Side;
use crate::function::Invocation;
use crate::plan::{Plan, VALIDATED_TAG};
use crate::posture::Observed;
use crate::readiness::{
    AlarmFacts, EXERCISE_FRESH_DAYS, LagFacts, LastValidation, Readiness, ReadinessFacts,
    ReadinessInput, assess,
};
use crate::report::{ReportSink, report_key};
use crate::state::MachineKey;
use crate::state::{Outcome, StateStore};
use crate::validation::{ValidationDoc, machine_name};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// The audit action that ends a failback: a full failover and return happened.
const ROUND_TRIP_DONE: &str = "failback.complete";

/// Read everything readiness is computed from. Never fails: what cannot be read is
/// `Unknown`, and fails its check.
pub async fn gather_readiness(
    plan: &Plan,
    clients: &AwsClients,
    settings: &ClientSettings,
    state: &dyn StateStore,
    now: DateTime<Utc>,
) -> ReadinessFacts {
    let posture = gather_posture(plan, clients, state).await;
    let (backups, validated) = backups(plan, clients, settings, state, now).await;
    let mut last_validation = Vec::new();
    for r in &plan.resources {
        let key = MachineKey::new(&plan.name, machine_name(&r.id));
        // An unreadable document leaves the judgement to the validated tags.
        if let Ok(Some(doc)) = crate::state::load::<ValidationDoc>(state, &key).await
            && let Some(last) = doc.value.last
        {
            last_validation.push(LastValidation {
                resource: r.id.clone(),
                finished_at: last.finished_at,
                passed: last.passed,
                failure: last.failure,
            });
        }
    }
    let dr = DrAws::new(plan, clients, settings).await;
    let mut lag = Vec::new();
    for r in &plan.resources {
        let Some(replica) = &r.replica else { continue };
        lag.push(LagFacts {
            resource: r.id.clone(),
            lag_seconds: match dr.replica_lag(r, Side::Dr, &replica.identifier).await {
                Some(s) => Observed::Present(s),
                None => Observed::Missing,
            },
        });
    }
    let mut alarms = Vec::new();
    for (list, health) in [
        (&plan.failover.health_alarms, true),
        (&plan.failback.gate_alarms, false),
    ] {
        for reading in dr.read_alarms(plan, list).await {
            alarms.push(AlarmFacts {
                name: reading.name,
                health,
                state: match reading.value {
                    Some(v) => Observed::Present(v.to_string()),
                    None => Observed::Missing,
                },
            });
        }
    }
    let dr_state = match crate::state::load::<crate::failover::run::DrDocument>(
        state,
        &crate::failover::run::dr_key(plan),
    )
    .await
    {
        Ok(Some(doc)) => Observed::Present(doc.value.state),
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Unknown {
            reason: e.to_string(),
        },
    };
    let since = now - Duration::days(EXERCISE_FRESH_DAYS);
    let last_round_trip = match state.timeline(&plan.name, Some(since)).await {
        Ok(entries) => Observed::Present(
            entries
                .iter()
                .filter(|e| e.action == ROUND_TRIP_DONE && e.outcome == Outcome::Succeeded)
                .map(|e| e.at)
                .max(),
        ),
        Err(e) => Observed::Unknown {
            reason: e.to_string(),
        },
    };
    ReadinessFacts {
        posture,
        backups,
        validated,
        last_validation,
        lag,
        alarms,
        dr_state,
        last_round_trip,
    }
}

/// The measured backup ages at every location, and per resource the newest time a
/// snapshot of it passed restore validation (from the validator's tag).
async fn backups(
    plan: &Plan,
    clients: &AwsClients,
    settings: &ClientSettings,
    state: &dyn StateStore,
    now: DateTime<Utc>,
) -> (
    Observed<Vec<crate::backup::RpoMeasurement>>,
    Vec<(String, Option<DateTime<Utc>>)>,
) {
    let port = AwsSnapshots::new(plan, clients, settings).await;
    let mut inventory: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
    let mut unreadable = Vec::new();
    match port.list_primary().await {
        Ok(records) => {
            inventory.insert(plan.regions.primary.clone(), records);
        }
        Err(e) => unreadable.push(format!("{}: {e}", plan.regions.primary)),
    }
    for d in &plan.snapshots.copy_to {
        match port.list_destination(d).await {
            Ok(records) => {
                inventory.insert(d.key(), records);
            }
            Err(e) => unreadable.push(format!("{}: {e}", d.key())),
        }
    }
    match crate::state::load::<ExportBook>(state, &exports_key(plan)).await {
        Ok(Some(book)) => {
            inventory.insert(export_location(plan), book.value.records(plan));
        }
        Ok(None) => {}
        Err(e) => unreadable.push(format!("{}: {e}", export_location(plan))),
    }
    let validated = plan
        .resources
        .iter()
        .map(|r| {
            let newest = inventory
                .values()
                .flatten()
                .filter(|b| b.belongs_to(&plan.name) && b.resource() == Some(r.id.as_str()))
                .filter_map(|b| b.tags.get(VALIDATED_TAG))
                .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .max();
            (r.id.clone(), newest)
        })
        .collect();
    // A location that cannot be listed would read as "no backup there": say it is
    // unknown instead, so the report does not blame the backups for a listing failure.
    let measured = if unreadable.is_empty() {
        Observed::Present(measure_rpo(plan, &inventory, now))
    } else {
        Observed::Unknown {
            reason: unreadable.join("; "),
        }
    };
    (measured, validated)
}

/// What `{"action": "readiness"}` answers.
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessAnswer {
    /// The report.
    #[serde(flatten)]
    pub readiness: Readiness,
    /// The report as text, for a person reading the invocation's output.
    pub text: String,
    /// Where the JSON report was stored, or why it was not.
    pub stored: String,
}

/// Compute the readiness report, store it in the report bucket, publish the
/// `ReadinessScore` metric, and answer with it.
pub async fn answer_readiness(
    plan: &Plan,
    clients: &AwsClients,
    settings: &ClientSettings,
    state: &dyn StateStore,
    reports: &dyn ReportSink,
    now: DateTime<Utc>,
    request_id: &str,
) -> ReadinessAnswer {
    let facts = gather_readiness(plan, clients, settings, state, now).await;
    let readiness = assess(plan, &facts, now);
    crate::metrics::observe(
        "ReadinessScore",
        metrics::Unit::Count,
        f64::from(readiness.score),
        &[],
    );
    let key = report_key(&plan.name, "readiness", request_id, now);
    #[derive(Serialize)]
    struct Stored<'a> {
        readiness: &'a Readiness,
        facts: &'a ReadinessFacts,
    }
    let stored = match serde_json::to_value(Stored {
        readiness: &readiness,
        facts: &facts,
    }) {
        Ok(body) => match reports.put_report(&key, &body).await {
            Ok(uri) => uri,
            Err(e) => {
                tracing::warn!(error = %e, "readiness report not stored");
                format!("not stored: {e}")
            }
        },
        Err(e) => format!("not stored: the report could not be serialised: {e}"),
    };
    ReadinessAnswer {
        text: crate::readiness::render(&readiness),
        readiness,
        stored,
    }
}

/// What the failover function answers: the DR state machine's reply, or a game day's.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum FailoverAnswer {
    /// A failover event or command was handled.
    Dr(Box<crate::failover::run::FailoverReply>),
    /// A game-day command was handled.
    GameDay(Box<crate::gameday::run::GameDayReply>),
}

/// The readiness function's edges, built once per cold start. It reads through the
/// clients and the state table and writes only its report: it takes no lock, so it
/// answers even while a failover runs.
pub struct ReadinessRun<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// What the facts are read through.
    pub clients: &'a AwsClients,
    /// How those clients were built (the snapshot listing builds its own from them).
    pub client_settings: &'a ClientSettings,
    /// The DR state, the validations, the exports and the timeline (read only).
    pub state: &'a dyn StateStore,
    /// Where the report is stored.
    pub reports: &'a dyn ReportSink,
}

impl ReadinessRun<'_> {
    /// The report, for an operator's command or the schedule alike.
    pub async fn handle(&self, input: ReadinessInput, invocation: &Invocation) -> ReadinessAnswer {
        tracing::info!(trigger = ?input, "readiness report");
        answer_readiness(
            self.plan,
            self.clients,
            self.client_settings,
            self.state,
            self.reports,
            invocation.now,
            &invocation.request_id,
        )
        .await
    }
}
