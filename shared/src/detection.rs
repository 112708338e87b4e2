//! Failure detection: is the primary down? Confirmed from independent vantage points, a
//! quorum of which must agree, within a window (pure).
//!
//! A failover starts from a health alarm, but one alarm is one opinion: it flaps, it
//! starts in INSUFFICIENT_DATA, and when it lives in the primary region it goes down with
//! the region it watches. So before anything is promoted, [`confirm`] weighs every signal
//! the plan names (`failover.detection`): each health alarm (re-read where its region
//! answers), the primary region's API as seen from the DR region, each DR replica's own
//! view of its source, and optional TCP probes of the primary's endpoint. Each signal
//! says [`Verdict::Failing`], [`Verdict::Healthy`] or [`Verdict::Unknown`]; a signal
//! whose region does not answer says what the plan gives it.
//!
//! Signals that fail because the same region does not answer count as one vote: one
//! outage silences them all, and counting it twice would let a network problem between
//! the DR region and the primary region fail over on its own (orchestrator's lesson: a
//! primary is dead when independent observers agree, not when one path to it is cut).
//!
//! The outcome: [`Outcome::Confirmed`] with a quorum of failing votes; [`Outcome::Healthy`]
//! when none says failing and a quorum says healthy; [`Outcome::Expired`] when the window
//! has passed without either; [`Outcome::Undecided`] before that. Every outcome carries
//! what each signal said, for the audit timeline and the failover report.

use crate::failover::AlarmValue;
use crate::plan::{InsufficientData, Plan, SignalSpec, Unreadable};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// What reading one thing found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "read", content = "value", rename_all = "snake_case")]
pub enum Reading<T> {
    /// The service answered with this.
    Seen(T),
    /// The service answered: it does not exist.
    Missing,
    /// The region did not answer (unreachable, timed out, or failing with 5xx).
    NoAnswer {
        /// What the call met.
        reason: String,
    },
    /// The service answered with an error that says nothing about the primary (throttled,
    /// access denied).
    Failed {
        /// What the call met.
        reason: String,
    },
}

/// An alarm's `TreatMissingData` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MissingData {
    /// Missing data breaches the threshold.
    Breaching,
    /// Missing data is within the threshold.
    NotBreaching,
    /// The alarm keeps its state.
    Ignore,
    /// The alarm goes to INSUFFICIENT_DATA (AWS's default).
    Missing,
}

impl MissingData {
    /// From CloudWatch's word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "breaching" => Some(MissingData::Breaching),
            "notBreaching" => Some(MissingData::NotBreaching),
            "ignore" => Some(MissingData::Ignore),
            "missing" => Some(MissingData::Missing),
            _ => None,
        }
    }
}

/// An alarm as CloudWatch describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmState {
    /// Its state.
    pub value: AlarmValue,
    /// Its `TreatMissingData` (metric alarms; `None` when unset or composite).
    #[serde(default)]
    pub treat_missing_data: Option<MissingData>,
    /// Whether it is a composite alarm.
    #[serde(default)]
    pub composite: bool,
    /// Why its actions are suppressed (`Alarm`, `WaitPeriod`, `ExtensionPeriod`), when
    /// they are (composite alarms with a suppressor).
    #[serde(default)]
    pub actions_suppressed_by: Option<String>,
    /// CloudWatch's reason for the suppression.
    #[serde(default)]
    pub actions_suppressed_reason: Option<String>,
}

impl AlarmState {
    /// A metric alarm in `value`, with no `TreatMissingData` and nothing suppressed.
    pub fn plain(value: AlarmValue) -> Self {
        AlarmState {
            value,
            treat_missing_data: None,
            composite: false,
            actions_suppressed_by: None,
            actions_suppressed_reason: None,
        }
    }
}

/// A health alarm as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmObservation {
    /// The alarm's name.
    pub name: String,
    /// The region it was read in.
    pub region: String,
    /// What was found.
    pub reading: Reading<AlarmState>,
}

/// A primary database as its region's API describes it to the DR region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrimaryObservation {
    /// The plan resource id.
    pub resource: String,
    /// What was found: the database's status.
    pub reading: Reading<String>,
}

/// RDS's "read replication" status of a replica (`StatusInfos`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationStatus {
    /// `replicating`, `replication degraded`, `error`, `stopped`, `terminated`, ...
    pub status: String,
    /// Whether RDS says it operates normally.
    #[serde(default)]
    pub normal: Option<bool>,
    /// The error, when there is one.
    #[serde(default)]
    pub message: Option<String>,
}

/// One replica-lag datapoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LagPoint {
    /// When.
    pub at: DateTime<Utc>,
    /// Seconds behind (RDS reports -1 when replication is not active).
    pub seconds: f64,
}

/// A DR replica's view of its source, as RDS reports it in the DR region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaState {
    /// What it replicates from (`None` once it is standalone).
    pub source: Option<String>,
    /// Its read-replication status, when RDS gives one (instances; not Aurora clusters).
    #[serde(default)]
    pub replication: Option<ReplicationStatus>,
    /// The lag datapoints of the last minutes, oldest first.
    #[serde(default)]
    pub lag: Vec<LagPoint>,
}

/// A DR replica as read in the DR region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaObservation {
    /// The plan resource id.
    pub resource: String,
    /// The region it was read in (the DR region).
    pub region: String,
    /// What was found.
    pub reading: Reading<ReplicaState>,
}

/// A TCP connection attempt to the primary's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeObservation {
    /// The host probed.
    pub host: String,
    /// The port.
    pub port: u16,
    /// `None` when it connected; why not otherwise (refused, timed out, unresolvable).
    pub failure: Option<String>,
}

/// Everything read for detection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Readings {
    /// The plan's health alarms.
    #[serde(default)]
    pub alarms: Vec<AlarmObservation>,
    /// Each replicated resource's primary, through the primary region's API.
    #[serde(default)]
    pub primary: Vec<PrimaryObservation>,
    /// Each replicated resource's DR replica.
    #[serde(default)]
    pub replicas: Vec<ReplicaObservation>,
    /// The endpoint probes.
    #[serde(default)]
    pub probes: Vec<ProbeObservation>,
}

/// What one signal says about the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The primary is failing.
    Failing,
    /// The primary is fine.
    Healthy,
    /// This signal cannot tell.
    Unknown,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Failing => "failing",
            Verdict::Healthy => "healthy",
            Verdict::Unknown => "unknown",
        })
    }
}

/// One signal's verdict, with what it was based on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalVerdict {
    /// The signal, e.g. `alarm orders-db-primary-unhealthy`, `primary API`.
    pub signal: String,
    /// The region it is read in.
    pub region: String,
    /// What it says.
    pub verdict: Verdict,
    /// What was found, in a phrase.
    pub detail: String,
    /// When the verdict stands for a region that does not answer: that region. Such
    /// verdicts count as one vote per region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent_region: Option<String>,
}

/// Where detection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A quorum says the primary is failing: fail over.
    Confirmed,
    /// None says failing and a quorum says healthy: stand down.
    Healthy,
    /// Neither yet; look again until the window ends.
    Undecided,
    /// The window ended without a quorum: the failover ends, nothing changed.
    Expired,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Confirmed => "confirmed",
            Outcome::Healthy => "healthy",
            Outcome::Undecided => "undecided",
            Outcome::Expired => "expired",
        })
    }
}

/// The detection's decision, and what every signal said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The outcome.
    pub outcome: Outcome,
    /// Votes saying failing (silent regions counted once each).
    pub failing_votes: u32,
    /// Signals saying healthy.
    pub healthy_votes: u32,
    /// The plan's quorum.
    pub quorum: u32,
    /// When the window ends.
    pub deadline: DateTime<Utc>,
    /// Every signal's verdict, health alarms first.
    pub signals: Vec<SignalVerdict>,
}

impl Confirmation {
    /// One line per signal, for notes: `alarm X (us-east-1): failing (no answer ...)`.
    pub fn signal_lines(&self) -> Vec<String> {
        self.signals
            .iter()
            .map(|s| format!("{} ({}): {}, {}", s.signal, s.region, s.verdict, s.detail))
            .collect()
    }

    /// The tally in a phrase.
    pub fn tally(&self) -> String {
        format!(
            "{} failing vote(s), {} healthy, quorum {}",
            self.failing_votes, self.healthy_votes, self.quorum
        )
    }

    /// Whether another confirmation says the same (outcome and every verdict), so a
    /// repeated look is not notified again.
    pub fn same_verdicts(&self, other: &Confirmation) -> bool {
        self.outcome == other.outcome
            && self.signals.len() == other.signals.len()
            && self
                .signals
                .iter()
                .zip(&other.signals)
                .all(|(a, b)| a.signal == b.signal && a.verdict == b.verdict)
    }
}

/// RDS statuses in which a database serves its clients although it is not `available`.
const SERVING: &[&str] = &[
    "available",
    "backing-up",
    "storage-optimization",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
];

/// How much of the time between two lag datapoints the lag must grow by to count as
/// "nothing is being replayed" (the lag then grows as fast as the clock).
const RISING_SHARE: f64 = 0.8;

/// Decide whether the failure is confirmed (pure): `started` is when the failover began
/// confirming, `now` the time of this look.
pub fn confirm(
    plan: &Plan,
    readings: &Readings,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Confirmation {
    let d = &plan.failover.detection;
    let mut signals = Vec::new();
    for a in &plan.failover.health_alarms {
        let region = plan.alarm_region(a);
        let found = readings
            .alarms
            .iter()
            .find(|o| o.name == a.name && o.region == region);
        signals.push(alarm_verdict(plan, &a.name, region, found));
    }
    for spec in &d.signals {
        signals.push(match spec {
            SignalSpec::PrimaryApi {} => primary_verdict(plan, &readings.primary),
            SignalSpec::ReplicaView {} => replica_verdict(plan, &readings.replicas),
            SignalSpec::EndpointProbe { host, port, .. } => {
                probe_verdict(plan, host, *port, &readings.probes)
            }
        });
    }
    let (failing_votes, healthy_votes) = votes(&signals);
    let deadline = started + Duration::minutes(i64::from(d.window_minutes));
    let outcome = if failing_votes >= d.quorum {
        Outcome::Confirmed
    } else if failing_votes == 0 && healthy_votes >= d.quorum {
        Outcome::Healthy
    } else if now >= deadline {
        Outcome::Expired
    } else {
        Outcome::Undecided
    };
    Confirmation {
        outcome,
        failing_votes,
        healthy_votes,
        quorum: d.quorum,
        deadline,
        signals,
    }
}

/// A signal-only game day in progress stands in for a fault that is not there: it sets
/// the health alarms to ALARM while the primary answers, so the other signals rightly say
/// healthy. Its injected alarms confirm on their own then, and the game day is recorded
/// as the signal that did (the others stay recorded, not counted). Without a health alarm
/// saying failing (the injection has not taken) nothing changes.
pub fn rehearsed(plan: &Plan, mut c: Confirmation, game_day: &str) -> Confirmation {
    if c.outcome == Outcome::Confirmed {
        return c;
    }
    let injected = c
        .signals
        .iter()
        .take(plan.failover.health_alarms.len())
        .any(|s| s.verdict == Verdict::Failing);
    if !injected {
        return c;
    }
    c.signals.push(verdict(
        format!("game day {game_day}"),
        &plan.regions.dr,
        Verdict::Failing,
        "a signal-only game day: its injected health alarm stands for the fault, the other signals are recorded, not counted",
        None,
    ));
    c.outcome = Outcome::Confirmed;
    c
}

/// The failing votes (each silent region once) and the healthy ones.
pub fn votes(signals: &[SignalVerdict]) -> (u32, u32) {
    let mut silent = BTreeSet::new();
    let mut failing = 0u32;
    let mut healthy = 0u32;
    for s in signals {
        match (s.verdict, &s.silent_region) {
            (Verdict::Failing, Some(region)) => {
                if silent.insert(region.as_str()) {
                    failing += 1;
                }
            }
            (Verdict::Failing, None) => failing += 1,
            (Verdict::Healthy, _) => healthy += 1,
            (Verdict::Unknown, _) => {}
        }
    }
    (failing, healthy)
}

fn verdict(
    signal: String,
    region: &str,
    verdict: Verdict,
    detail: impl Into<String>,
    silent_region: Option<&str>,
) -> SignalVerdict {
    SignalVerdict {
        signal,
        region: region.to_string(),
        verdict,
        detail: detail.into(),
        silent_region: silent_region.map(str::to_string),
    }
}

/// What a signal read in `region` that got no answer says, as the plan has it.
fn unanswered(plan: &Plan, signal: String, region: &str, reason: &str) -> SignalVerdict {
    let meaning = if region == plan.regions.primary {
        plan.failover.detection.unreadable.primary_region
    } else {
        plan.failover.detection.unreadable.other_regions
    };
    match meaning {
        Unreadable::Failing => verdict(
            signal,
            region,
            Verdict::Failing,
            format!("{region} does not answer ({reason}); the plan counts that as failing"),
            Some(region),
        ),
        Unreadable::Unknown => verdict(
            signal,
            region,
            Verdict::Unknown,
            format!("{region} does not answer ({reason}); the plan counts that as unknown"),
            None,
        ),
    }
}

fn alarm_verdict(
    plan: &Plan,
    name: &str,
    region: &str,
    found: Option<&AlarmObservation>,
) -> SignalVerdict {
    let signal = format!("alarm {name}");
    let Some(found) = found else {
        return verdict(signal, region, Verdict::Unknown, "not read", None);
    };
    match &found.reading {
        Reading::Seen(state) => {
            let (v, detail) = alarm_state_verdict(plan, state);
            verdict(signal, region, v, detail, None)
        }
        Reading::Missing => verdict(
            signal,
            region,
            Verdict::Unknown,
            format!("no such alarm in {region}"),
            None,
        ),
        Reading::NoAnswer { reason } => unanswered(plan, signal, region, reason),
        Reading::Failed { reason } => verdict(
            signal,
            region,
            Verdict::Unknown,
            format!("could not be read: {reason}"),
            None,
        ),
    }
}

fn alarm_state_verdict(plan: &Plan, state: &AlarmState) -> (Verdict, String) {
    match state.value {
        AlarmValue::Alarm => match &state.actions_suppressed_by {
            Some(by) => (
                Verdict::Unknown,
                format!(
                    "ALARM with its actions suppressed ({by}{}); not counted",
                    state
                        .actions_suppressed_reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            ),
            None => (Verdict::Failing, "ALARM".into()),
        },
        AlarmValue::Ok => (Verdict::Healthy, "OK".into()),
        AlarmValue::InsufficientData => match plan.failover.detection.insufficient_data {
            InsufficientData::Failing => (
                Verdict::Failing,
                "INSUFFICIENT_DATA, which the plan counts as failing".into(),
            ),
            InsufficientData::Healthy => (
                Verdict::Healthy,
                "INSUFFICIENT_DATA, which the plan counts as healthy".into(),
            ),
            InsufficientData::Unknown => (
                Verdict::Unknown,
                "INSUFFICIENT_DATA, which the plan counts as unknown".into(),
            ),
            InsufficientData::AlarmSetting => match (state.composite, state.treat_missing_data) {
                (true, _) => (
                    Verdict::Unknown,
                    "INSUFFICIENT_DATA (a composite alarm: no TreatMissingData)".into(),
                ),
                (false, Some(MissingData::Breaching)) => (
                    Verdict::Failing,
                    "INSUFFICIENT_DATA with TreatMissingData breaching".into(),
                ),
                (false, Some(MissingData::NotBreaching)) => (
                    Verdict::Healthy,
                    "INSUFFICIENT_DATA with TreatMissingData notBreaching".into(),
                ),
                (false, Some(MissingData::Ignore)) => (
                    Verdict::Unknown,
                    "INSUFFICIENT_DATA with TreatMissingData ignore".into(),
                ),
                (false, Some(MissingData::Missing) | None) => (
                    Verdict::Unknown,
                    "INSUFFICIENT_DATA with TreatMissingData missing".into(),
                ),
            },
        },
    }
}

/// Several databases behind one signal: failing when any fails (a real status first,
/// then a silent region), healthy when all are, unknown otherwise.
fn combine(
    signal: String,
    region: &str,
    parts: Vec<(Verdict, String, Option<String>)>,
) -> SignalVerdict {
    if parts.is_empty() {
        return verdict(signal, region, Verdict::Unknown, "not read", None);
    }
    let failing = |silent: bool| {
        parts
            .iter()
            .filter(|(v, _, s)| *v == Verdict::Failing && s.is_some() == silent)
            .collect::<Vec<_>>()
    };
    let detail = |subset: &[&(Verdict, String, Option<String>)]| {
        subset
            .iter()
            .map(|(_, d, _)| d.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let loud = failing(false);
    if !loud.is_empty() {
        return verdict(signal, region, Verdict::Failing, detail(&loud), None);
    }
    let silent = failing(true);
    if let Some((_, _, Some(r))) = silent.first() {
        let r = r.clone();
        return verdict(signal, region, Verdict::Failing, detail(&silent), Some(&r));
    }
    let all: Vec<&(Verdict, String, Option<String>)> = parts.iter().collect();
    if parts.iter().all(|(v, _, _)| *v == Verdict::Healthy) {
        verdict(signal, region, Verdict::Healthy, detail(&all), None)
    } else {
        verdict(signal, region, Verdict::Unknown, detail(&all), None)
    }
}

fn replicated_ids(plan: &Plan) -> Vec<&str> {
    plan.resources
        .iter()
        .filter(|r| r.replica.is_some())
        .map(|r| r.id.as_str())
        .collect()
}

fn primary_verdict(plan: &Plan, found: &[PrimaryObservation]) -> SignalVerdict {
    let region = plan.regions.primary.as_str();
    let mut parts = Vec::new();
    for id in replicated_ids(plan) {
        let Some(o) = found.iter().find(|o| o.resource == id) else {
            parts.push((Verdict::Unknown, format!("{id}: not read"), None));
            continue;
        };
        parts.push(match &o.reading {
            Reading::Seen(status) if SERVING.contains(&status.as_str()) => {
                (Verdict::Healthy, format!("{id} is {status}"), None)
            }
            Reading::Seen(status) => (Verdict::Failing, format!("{id} is {status}"), None),
            Reading::Missing => (
                Verdict::Failing,
                format!("{id} does not exist in {region}"),
                None,
            ),
            // The API not answering is what this signal watches for: failing, whatever
            // the plan says of unreadable signals.
            Reading::NoAnswer { reason } => (
                Verdict::Failing,
                format!("{region} does not answer for {id} ({reason})"),
                Some(region.to_string()),
            ),
            Reading::Failed { reason } => (
                Verdict::Unknown,
                format!("{id} could not be read: {reason}"),
                None,
            ),
        });
    }
    combine("primary API".into(), region, parts)
}

fn replica_verdict(plan: &Plan, found: &[ReplicaObservation]) -> SignalVerdict {
    let region = plan.regions.dr.as_str();
    let mut parts = Vec::new();
    for id in replicated_ids(plan) {
        let Some(o) = found.iter().find(|o| o.resource == id) else {
            parts.push((Verdict::Unknown, format!("{id}: not read"), None));
            continue;
        };
        parts.push(match &o.reading {
            Reading::Seen(state) => {
                let (v, d) = replica_state_verdict(plan, state);
                (v, format!("{id}: {d}"), None)
            }
            Reading::Missing => (
                Verdict::Unknown,
                format!("{id}: the replica does not exist in {region}"),
                None,
            ),
            Reading::NoAnswer { reason } => {
                let v = unanswered(plan, String::new(), &o.region, reason);
                (v.verdict, format!("{id}: {}", v.detail), v.silent_region)
            }
            Reading::Failed { reason } => (
                Verdict::Unknown,
                format!("{id}: could not be read: {reason}"),
                None,
            ),
        });
    }
    combine("replica view".into(), region, parts)
}

/// A replica's own view of its source: RDS's replication status first, then the lag.
pub fn replica_state_verdict(plan: &Plan, state: &ReplicaState) -> (Verdict, String) {
    if state.source.is_none() {
        return (
            Verdict::Unknown,
            "no longer a replica (it replicates from nothing)".into(),
        );
    }
    if let Some(r) = &state.replication {
        let message = r
            .message
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        match r.status.as_str() {
            "error" | "stopped" | "terminated" => {
                return (
                    Verdict::Failing,
                    format!("RDS reports replication {}{message}", r.status),
                );
            }
            "replicating" if r.normal != Some(false) => {}
            other => {
                return (
                    Verdict::Unknown,
                    format!("RDS reports replication {other}{message}"),
                );
            }
        }
    }
    let max = f64::from(plan.failover.max_replica_lag_seconds);
    let (Some(first), Some(last)) = (state.lag.first(), state.lag.last()) else {
        return (
            Verdict::Unknown,
            "replicating, no ReplicaLag datapoint in the last minutes".into(),
        );
    };
    if last.seconds < 0.0 {
        return (
            Verdict::Failing,
            "ReplicaLag is -1: replication is not active".into(),
        );
    }
    let elapsed = (last.at - first.at).num_seconds() as f64;
    if elapsed > 0.0 && last.seconds > max && last.seconds - first.seconds >= RISING_SHARE * elapsed
    {
        return (
            Verdict::Failing,
            format!(
                "ReplicaLag rose from {:.0} s to {:.0} s in {elapsed:.0} s: nothing is being replayed",
                first.seconds, last.seconds
            ),
        );
    }
    if last.seconds <= max {
        (
            Verdict::Healthy,
            format!("replicating, ReplicaLag {:.0} s", last.seconds),
        )
    } else {
        (
            Verdict::Unknown,
            format!(
                "replicating, ReplicaLag {:.0} s (above {max:.0} s, but replaying)",
                last.seconds
            ),
        )
    }
}

fn probe_verdict(plan: &Plan, host: &str, port: u16, found: &[ProbeObservation]) -> SignalVerdict {
    let signal = format!("probe {host}:{port}");
    let region = plan.regions.dr.as_str();
    match found.iter().find(|p| p.host == host && p.port == port) {
        None => verdict(signal, region, Verdict::Unknown, "not probed", None),
        Some(ProbeObservation { failure: None, .. }) => {
            verdict(signal, region, Verdict::Healthy, "connected", None)
        }
        Some(ProbeObservation {
            failure: Some(why), ..
        }) => verdict(
            signal,
            region,
            Verdict::Failing,
            format!("no connection: {why}"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests;
