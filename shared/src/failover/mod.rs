//! Failover: the plan's DR state machine from Normal to FailedOver (pure).
//!
//! One persisted document per plan ([`DrState`]) is both the state machine and the
//! single-writer lock: failover, and later failback, act on it only through versioned
//! conditional writes, so a failover in progress can never be started a second time,
//! however long it takes. [`step`] decides, from the state, an input (an alarm, a tick,
//! an operator's command) and the facts just read from AWS, the next state and the
//! actions to take. Every decision is re-derived from the real state, so a retry after
//! a crash between any two steps finishes the failover without promoting twice.
//!
//! Steps: confirm (the plan's detection signals are read and [`crate::detection::confirm`]
//! weighs them: a quorum saying failing confirms, a quorum saying healthy aborts, and
//! neither within the window ends the incident, never to be resumed) → readiness (replica
//! available and replicating, lag within the plan's maximum: the data-loss guard) →
//! approval in manual mode → promote → await promotion → fence the old primary where it
//! is reachable → switch DNS → await INSYNC → verify → FailedOver. The old primary is
//! fenced after promotion because RDS refuses to stop an instance that still has a read
//! replica; until the switch the writer record still names the old primary, so at no
//! moment do Lifeboat's records reach two writers.

pub mod event;
pub mod route;
pub mod run;

use crate::detection::{self, Confirmation, Outcome as Detected, Reading, Readings};
use crate::dr::{DrState, TrafficFacts, TrafficProgress};
use crate::notify::Severity;

/// A failover step's decision.
pub type Decision = crate::dr::Decision<Action>;
use crate::plan::{FailoverMode, Plan, ResourceKind, normalize_dns_name};
use crate::posture::{Observed, StoreFacts};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

pub use event::{AlarmSignal, AlarmValue, Command, FailoverInput, parse_input};

/// The step a failover is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// Re-read the alarm: still in ALARM?
    Confirm,
    /// Are the replicas ready to take over (and within the lag guard)?
    Readiness,
    /// Manual mode: waiting for an operator's approval.
    AwaitingApproval,
    /// Promote the replicas.
    Promote,
    /// Wait until every replica is a standalone, available writer.
    AwaitPromotion,
    /// Stop the old primaries where they are reachable.
    Fence,
    /// Point the writer records at the promoted replicas.
    SwitchDns,
    /// Wait until Route 53 reports the changes INSYNC.
    AwaitDnsSync,
    /// Read everything back.
    Verify,
}

impl Step {
    /// Whether the replicas may already have been promoted at this step (cancel is only
    /// possible before).
    pub fn past_promotion(self) -> bool {
        self >= Step::Promote
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What started a failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Cause {
    /// A health alarm of the plan went to ALARM.
    Alarm {
        /// The alarm.
        name: String,
        /// When it changed state (the start of the measured RTO).
        fired_at: DateTime<Utc>,
    },
    /// An operator forced it.
    Operator {
        /// Their reason, as given.
        reason: String,
    },
}

/// What happened to an old primary at the fence step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fence")]
pub enum FenceOutcome {
    /// It was stopped.
    Stopped,
    /// It could not be reached (the region is down); the DNS switch fences it through
    /// Lifeboat's records.
    Unreachable {
        /// Why.
        reason: String,
    },
    /// There was nothing to stop (already stopped, gone, or demoted by the global
    /// database's own failover).
    NotNeeded {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for FenceOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FenceOutcome::Stopped => f.write_str("stopped"),
            FenceOutcome::Unreachable { reason } => write!(f, "unreachable ({reason})"),
            FenceOutcome::NotNeeded { reason } => write!(f, "nothing to stop ({reason})"),
        }
    }
}

/// One replicated resource's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetProgress {
    /// The plan resource id.
    pub resource: String,
    /// Replica lag (seconds) read when promotion was issued: the data-loss window.
    #[serde(default)]
    pub lag_at_promotion: Option<f64>,
    /// When promotion was first issued.
    #[serde(default)]
    pub promote_issued_at: Option<DateTime<Utc>>,
    /// When the replica was first seen standalone and available.
    #[serde(default)]
    pub promoted_at: Option<DateTime<Utc>>,
    /// The fence outcome.
    #[serde(default)]
    pub fence: Option<FenceOutcome>,
    /// The DR endpoint the record was switched to.
    #[serde(default)]
    pub switched_to: Option<String>,
    /// The Route 53 change of the switch.
    #[serde(default)]
    pub dns_change: Option<String>,
    /// When the switch was submitted.
    #[serde(default)]
    pub dns_submitted_at: Option<DateTime<Utc>>,
    /// When the change was first seen INSYNC.
    #[serde(default)]
    pub dns_synced_at: Option<DateTime<Utc>>,
}

impl TargetProgress {
    fn new(resource: &str) -> Self {
        TargetProgress {
            resource: resource.to_string(),
            lag_at_promotion: None,
            promote_issued_at: None,
            promoted_at: None,
            fence: None,
            switched_to: None,
            dns_change: None,
            dns_submitted_at: None,
            dns_synced_at: None,
        }
    }
}

/// When a step began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The step.
    pub step: Step,
    /// When.
    pub at: DateTime<Utc>,
}

/// A failover under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    /// The incident id (the first event's id).
    pub incident: String,
    /// What started it.
    pub cause: Cause,
    /// Set when an operator forced it (overrides approval and the lag guard).
    #[serde(default)]
    pub forced: Option<String>,
    /// The current step.
    pub step: Step,
    /// When Lifeboat received the first event.
    pub received_at: DateTime<Utc>,
    /// When each step began.
    pub marks: Vec<Mark>,
    /// Progress per replicated resource.
    pub targets: Vec<TargetProgress>,
    /// Why readiness is not met, while it is not (the failover waits and is notified).
    #[serde(default)]
    pub blocked: Option<String>,
    /// The application traffic moved to the DR region, when the plan has traffic records.
    #[serde(default)]
    pub traffic: Option<TrafficProgress>,
    /// What the detection signals said at the last look (the one that confirmed, once
    /// confirmed).
    #[serde(default)]
    pub detection: Option<Confirmation>,
}

impl Failover {
    /// When the failure was detected (the alarm's state change, or the operator's
    /// command): the start of the measured RTO.
    pub fn fired_at(&self) -> DateTime<Utc> {
        match &self.cause {
            Cause::Alarm { fired_at, .. } => *fired_at,
            Cause::Operator { .. } => self.received_at,
        }
    }

    /// When detection ends this failover unless a quorum confirms it.
    pub fn confirm_deadline(&self, plan: &Plan) -> DateTime<Utc> {
        self.fired_at() + Duration::minutes(i64::from(plan.failover.detection.window_minutes))
    }

    /// When the failure was confirmed (the failover left the confirm step).
    pub fn confirmed_at(&self) -> Option<DateTime<Utc>> {
        self.marks
            .iter()
            .find(|m| m.step != Step::Confirm)
            .map(|m| m.at)
    }

    fn goto(&mut self, step: Step, now: DateTime<Utc>) {
        self.step = step;
        self.marks.push(Mark { step, at: now });
    }

    fn target(&mut self, resource: &str) -> Option<&mut TargetProgress> {
        self.targets.iter_mut().find(|t| t.resource == resource)
    }
}

/// A completed failover: where things stand and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedOver {
    /// The incident.
    pub incident: String,
    /// When the DR region took over (DNS in sync).
    pub since: DateTime<Utc>,
    /// Until when alarms only notify.
    pub cooldown_until: Option<DateTime<Utc>>,
    /// The measured recovery.
    pub measurement: RecoveryMeasurement,
    /// What was done per resource.
    pub targets: Vec<TargetProgress>,
    /// Whether an operator forced it.
    #[serde(default)]
    pub forced: Option<String>,
    /// What the detection signals said when they confirmed the failure (none when forced
    /// before they did).
    #[serde(default)]
    pub detection: Option<Confirmation>,
}

/// The measured RTO, split, and the data-loss window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryMeasurement {
    /// Alarm (or command) to DNS in sync, in seconds.
    pub rto_seconds: i64,
    /// The plan's tightest RTO among the failed-over resources, in seconds.
    pub rto_target_seconds: i64,
    /// From the alarm's state change to the failure confirmed: the alarm's delivery and
    /// the detection's quorum.
    pub detection_seconds: i64,
    /// Time AWS spent promoting and propagating DNS (the slowest resource).
    pub aws_seconds: i64,
    /// Time spent waiting for an operator's approval.
    pub approval_seconds: i64,
    /// The rest: Lifeboat's own overhead (deciding, polling gaps).
    pub lifeboat_seconds: i64,
    /// The largest replica lag at promotion: the data-loss window, in seconds.
    pub data_loss_seconds: Option<f64>,
    /// The tightest RPO among the failed-over resources, in seconds.
    pub rpo_target_seconds: i64,
}

impl RecoveryMeasurement {
    /// Whether the RTO target was met.
    pub fn rto_met(&self) -> bool {
        self.rto_seconds <= self.rto_target_seconds
    }

    /// Whether the data loss stayed within the RPO (unknown counts as not met).
    pub fn rpo_met(&self) -> bool {
        self.data_loss_seconds
            .is_some_and(|l| l <= self.rpo_target_seconds as f64)
    }
}

/// The state of an alarm as read back from CloudWatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmReading {
    /// The alarm.
    pub name: String,
    /// Its state, or `None` when it could not be read (or does not exist).
    pub value: Option<AlarmValue>,
}

/// The state of a Route 53 change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeState {
    /// Not yet on every name server.
    Pending,
    /// On every name server.
    InSync,
}

/// What is known about one replicated resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetFacts {
    /// The plan resource id.
    pub resource: String,
    /// The primary in the primary region.
    pub primary: Observed<StoreFacts>,
    /// The replica in the DR region.
    pub replica: Observed<StoreFacts>,
    /// The replica's lag in seconds, when CloudWatch has a recent value.
    pub lag_seconds: Option<f64>,
    /// The writer record's values (CNAME targets), when the plan names one.
    pub record: Option<Observed<Vec<String>>>,
    /// The state of the switch's Route 53 change, when one was submitted.
    pub change: Option<ChangeState>,
}

impl TargetFacts {
    fn replica_facts(&self) -> Option<&StoreFacts> {
        self.replica.present()
    }

    /// The replica has been promoted: it replicates from nothing.
    fn standalone(&self) -> bool {
        self.replica_facts()
            .is_some_and(|r| r.replicates_from.is_none())
    }

    fn replica_available(&self) -> bool {
        self.replica_facts()
            .is_some_and(|r| r.status == "available")
    }

    fn record_points_at(&self, endpoint: &str) -> bool {
        match &self.record {
            Some(Observed::Present(values)) => {
                values.len() == 1 && normalize_dns_name(&values[0]) == normalize_dns_name(endpoint)
            }
            _ => false,
        }
    }
}

/// Everything read from AWS before a step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FailoverFacts {
    /// The detection signals (read until the failover is past approval).
    #[serde(default)]
    pub detection: Readings,
    /// A signal-only game day of the plan awaiting its failover: its id.
    #[serde(default)]
    pub rehearsal: Option<String>,
    /// Per replicated resource.
    pub targets: Vec<TargetFacts>,
    /// The application traffic records (default when the plan has none).
    #[serde(default)]
    pub traffic: TrafficFacts,
}

impl FailoverFacts {
    fn target(&self, resource: &str) -> Option<&TargetFacts> {
        self.targets.iter().find(|t| t.resource == resource)
    }

    /// Why the alarm `name`'s actions are suppressed, when it was read so.
    fn suppressed(&self, name: &str) -> Option<String> {
        self.detection
            .alarms
            .iter()
            .filter(|o| o.name == name)
            .find_map(|o| match &o.reading {
                Reading::Seen(s) if s.value == AlarmValue::Alarm => s.actions_suppressed_by.clone(),
                _ => None,
            })
    }
}

/// Something to do in AWS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Promote a resource's replica (RDS: PromoteReadReplica; Aurora: the global
    /// database's unplanned failover, which accepts the data loss the lag guard bounds).
    Promote {
        /// The plan resource id.
        resource: String,
    },
    /// Stop the old primary where it is reachable.
    Fence {
        /// The plan resource id.
        resource: String,
    },
    /// Point the resource's writer record at `endpoint`.
    SwitchRecord {
        /// The plan resource id.
        resource: String,
        /// The promoted replica's endpoint.
        endpoint: String,
    },
    /// Weigh the application traffic records: this percent to the primary region, the
    /// rest to the DR region.
    SetTraffic {
        /// Percent to the primary region.
        primary_percent: u32,
    },
}

/// What an action produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ActionResult {
    /// Promotion was issued (or found already under way).
    Promoted {
        /// The resource.
        resource: String,
    },
    /// The fence outcome.
    Fenced {
        /// The resource.
        resource: String,
        /// What happened.
        outcome: FenceOutcome,
    },
    /// The record change was submitted.
    Switched {
        /// The resource.
        resource: String,
        /// The endpoint.
        endpoint: String,
        /// The Route 53 change id.
        change: String,
    },
    /// The traffic weights were submitted.
    TrafficSet {
        /// Percent to the primary region.
        primary_percent: u32,
        /// The Route 53 change id.
        change: String,
    },
    /// The action failed; the next look re-derives what to do.
    Failed {
        /// The resource.
        resource: String,
        /// The action, in a word.
        action: String,
        /// Why.
        error: String,
    },
}

/// The resources a failover moves: those with a replica.
pub fn replicated(plan: &Plan) -> impl Iterator<Item = &crate::plan::ProtectedResource> {
    plan.resources.iter().filter(|r| r.replica.is_some())
}

fn is_plan_alarm(plan: &Plan, name: &str) -> bool {
    plan.failover.health_alarms.iter().any(|a| a.name == name)
}

fn in_cooldown(state: &DrState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    state.cooldown_until().filter(|until| *until > now)
}

/// Decide the next state and actions (pure: `now` and the facts are given).
pub fn step(
    plan: &Plan,
    state: &DrState,
    input: &FailoverInput,
    facts: &FailoverFacts,
    now: DateTime<Utc>,
) -> Decision {
    match input {
        FailoverInput::Command(Command::Status) => Decision::keep(state, status_line(state)),
        FailoverInput::Command(Command::Ack) => ack(state, now),
        FailoverInput::Command(Command::Cancel) => cancel(state, now),
        FailoverInput::Command(Command::Approve) => approve(state, now),
        FailoverInput::Command(Command::Force { reason }) => force(plan, state, reason, facts, now),
        FailoverInput::Alarm(signal) => {
            let decision = alarm(plan, state, signal, now);
            // While confirming, an alarm event that starts nothing (back to OK, already in
            // progress) is still news: the signals are weighed again, so an incident past
            // its window ends on the next event of any kind, not only on a tick.
            let confirming = matches!(state, DrState::FailingOver(f) if f.step == Step::Confirm);
            if confirming
                && decision.state == *state
                && decision.notes.is_empty()
                && !decision.refused
            {
                advance(plan, state, facts, now)
            } else {
                decision
            }
        }
        FailoverInput::Tick => advance(plan, state, facts, now),
    }
}

fn status_line(state: &DrState) -> String {
    match state {
        DrState::Normal {
            cooldown_until,
            last,
        } => format!(
            "Normal{}{}",
            cooldown_until
                .map(|c| format!(", cooldown until {c}"))
                .unwrap_or_default(),
            last.as_ref()
                .map(|l| format!("; last incident: {l}"))
                .unwrap_or_default()
        ),
        DrState::FailingOver(f) => format!(
            "failing over (incident {}, step {}{})",
            f.incident,
            f.step,
            f.blocked
                .as_ref()
                .map(|b| format!(", waiting: {b}"))
                .unwrap_or_default()
        ),
        DrState::FailingBack(f) => format!(
            "failing back (failback {}, step {}; writer on the {} side, {} % of traffic on the primary side)",
            f.id, f.step, f.writer, f.traffic_primary_percent
        ),
        DrState::FailedOver(f) => format!(
            "failed over since {} (incident {}, RTO {} s){}",
            f.since,
            f.incident,
            f.measurement.rto_seconds,
            f.cooldown_until
                .map(|c| format!(", cooldown until {c}"))
                .unwrap_or_default()
        ),
    }
}

/// Whether a failover's cooldown runs at `now`: alarms do not act, the failback does not
/// start, and `ack` ends it.
pub fn cooldown_runs(state: &DrState, now: DateTime<Utc>) -> bool {
    match state {
        DrState::Normal {
            cooldown_until: Some(c),
            ..
        } => *c > now,
        DrState::FailedOver(f) => f.cooldown_until.is_some_and(|c| c > now),
        _ => false,
    }
}

fn ack(state: &DrState, now: DateTime<Utc>) -> Decision {
    let ended = |s: DrState| {
        Decision::stop(s, "acknowledged: the cooldown is over; alarms act again").note(
            Severity::Info,
            "failover.ack",
            "incident acknowledged",
            "An operator acknowledged the incident, ending the cooldown early.",
        )
    };
    match state {
        DrState::Normal { last, .. } if cooldown_runs(state, now) => ended(DrState::Normal {
            cooldown_until: Some(now),
            last: last.clone(),
        }),
        DrState::FailedOver(f) if cooldown_runs(state, now) => {
            let mut f = f.clone();
            f.cooldown_until = Some(now);
            ended(DrState::FailedOver(f))
        }
        _ => Decision::refuse(
            state,
            format!("there is no cooldown to end (state: {})", state.phase()),
        ),
    }
}

/// An operator's approval, the only way past approval in manual mode.
fn approve(state: &DrState, now: DateTime<Utc>) -> Decision {
    match state {
        DrState::FailingOver(f) if f.step == Step::AwaitingApproval => {
            let mut f = f.clone();
            f.goto(Step::Promote, now);
            Decision::then(
                DrState::FailingOver(f),
                "approved: promoting the DR replicas",
            )
            .note(
                Severity::Warning,
                "failover.approve",
                "failover approved by an operator",
                "An operator approved the failover; promoting the DR replicas.",
            )
        }
        _ => Decision::refuse(
            state,
            format!("nothing awaits approval (state: {})", state.phase()),
        ),
    }
}

fn cancel(state: &DrState, now: DateTime<Utc>) -> Decision {
    match state {
        DrState::FailingOver(f) if !f.step.past_promotion() => Decision::stop(
            DrState::Normal {
                cooldown_until: None,
                last: Some(format!("{} cancelled at {} ({})", f.incident, now, f.step)),
            },
            "cancelled: nothing was promoted; back to Normal",
        )
        .note(
            Severity::Warning,
            "failover.cancel",
            "failover cancelled by an operator",
            format!(
                "An operator cancelled failover {} at step {}; nothing was promoted.",
                f.incident, f.step
            ),
        ),
        DrState::FailingOver(f) => Decision::refuse(
            state,
            format!(
                "cancel is only possible before promotion, and failover {} is at {}: the replicas are being promoted; let it finish, then fail back",
                f.incident, f.step
            ),
        ),
        _ => Decision::refuse(
            state,
            format!("no failover to cancel (state: {})", state.phase()),
        ),
    }
}

fn start(
    plan: &Plan,
    incident: &str,
    cause: Cause,
    forced: Option<String>,
    first: Step,
    now: DateTime<Utc>,
) -> Failover {
    let mut f = Failover {
        incident: incident.to_string(),
        cause,
        forced,
        step: first,
        received_at: now,
        marks: vec![],
        targets: replicated(plan)
            .map(|r| TargetProgress::new(&r.id))
            .collect(),
        blocked: None,
        traffic: None,
        detection: None,
    };
    f.goto(first, now);
    f
}

fn force(
    plan: &Plan,
    state: &DrState,
    reason: &str,
    facts: &FailoverFacts,
    now: DateTime<Utc>,
) -> Decision {
    let forced = Some(reason.to_string());
    let next = match state {
        DrState::Normal { .. } => {
            let incident = format!("forced-{}", now.format("%Y%m%dT%H%M%SZ"));
            start(
                plan,
                &incident,
                Cause::Operator {
                    reason: reason.to_string(),
                },
                forced,
                Step::Readiness,
                now,
            )
        }
        DrState::FailingOver(f) if !f.step.past_promotion() => {
            let mut f = f.clone();
            f.forced = forced;
            if f.step != Step::Readiness {
                f.goto(Step::Readiness, now);
            }
            f
        }
        DrState::FailingOver(f) => {
            return Decision::refuse(
                state,
                format!(
                    "failover {} is already past promotion ({})",
                    f.incident, f.step
                ),
            );
        }
        DrState::FailedOver(_) => {
            return Decision::refuse(state, "already failed over; nothing to force");
        }
        DrState::FailingBack(f) => {
            return Decision::refuse(
                state,
                format!(
                    "failback {} is in progress (step {}); abort it first",
                    f.id, f.step
                ),
            );
        }
    };
    let decision = advance(plan, &DrState::FailingOver(next), facts, now);
    let mut d = decision.note(
        Severity::Critical,
        "failover.force",
        "failover forced by an operator",
        format!("An operator forced a failover (approval and the replica-lag guard are overridden): {reason}"),
    );
    // The operator's note comes first in the timeline.
    d.notes.rotate_right(1);
    d
}

/// A health alarm's state change: it may start a failover only when it is one of the
/// plan's, in ALARM, not suppressed, outside the cooldown, and fresh.
fn alarm(plan: &Plan, state: &DrState, signal: &AlarmSignal, now: DateTime<Utc>) -> Decision {
    if let Some(ignored) = alarm_ignored(plan, state, signal, now) {
        return ignored;
    }
    let window = Duration::minutes(i64::from(plan.failover.detection.window_minutes));
    match state {
        DrState::Normal { .. } if now - signal.at >= window => stale_alarm(plan, state, signal),
        DrState::FailingOver(old)
            if old.step == Step::Confirm && now >= old.confirm_deadline(plan) =>
        {
            replace_unconfirmed(plan, old, signal, now)
        }
        DrState::Normal { .. } => start_confirming(plan, signal, now),
        DrState::FailingOver(f) => Decision::keep(
            state,
            format!(
                "failover {} is already in progress (step {}); this alarm starts nothing",
                f.incident, f.step
            ),
        ),
        DrState::FailedOver(f) => Decision::keep(
            state,
            format!(
                "already failed over (incident {}); the alarm is recorded only",
                f.incident
            ),
        ),
        // The DR state is the lock: a failback in progress holds it, so no failover can
        // start. Operators decide: pause (and roll back) or abort the failback.
        DrState::FailingBack(f) => Decision::keep(
            state,
            format!("failback {} is in progress; no failover is started", f.id),
        )
        .note(
            Severity::Critical,
            "failover.alarm-during-failback",
            format!("alarm {} during failback", signal.name),
            format!(
                "Health alarm {} went to ALARM at {} while failback {} is at {} (writer on the {} side, {} % of traffic on the primary side). No failover is started while a failback holds the DR state: pause the failback ({{\"action\": \"pause\"}}) to hold it, or abort it ({{\"action\": \"abort\"}}).",
                signal.name, signal.at, f.id, f.step, f.writer, f.traffic_primary_percent
            ),
        ),
    }
}

/// An alarm that starts nothing whatever the state: not the plan's, not in ALARM, its
/// actions suppressed (its suppressor says not to act now), or during the cooldown.
fn alarm_ignored(
    plan: &Plan,
    state: &DrState,
    signal: &AlarmSignal,
    now: DateTime<Utc>,
) -> Option<Decision> {
    if !is_plan_alarm(plan, &signal.name) {
        return Some(Decision::keep(
            state,
            format!(
                "alarm {:?} is not one of the plan's health alarms; ignored",
                signal.name
            ),
        ));
    }
    if signal.value != AlarmValue::Alarm {
        return Some(Decision::keep(
            state,
            format!(
                "alarm {} is {}, not ALARM; nothing to do",
                signal.name, signal.value
            ),
        ));
    }
    if let Some(by) = &signal.suppressed_by {
        return Some(Decision::keep(
            state,
            format!(
                "alarm {} is in ALARM with its actions suppressed ({by}): notified only",
                signal.name
            ),
        )
        .note(
            Severity::Warning,
            "failover.suppressed",
            format!("alarm {} suppressed: no failover", signal.name),
            format!(
                "Alarm {} went to ALARM at {} with its actions suppressed ({by}): its suppressor says not to act now, so no failover is started. If the primary is down all the same, force one with {{\"action\": \"force\", \"reason\": \"...\"}}.",
                signal.name, signal.at
            ),
        ));
    }
    let until = in_cooldown(state, now)?;
    Some(Decision::keep(state, format!("in cooldown until {until}: the alarm is only notified")).note(
        Severity::Warning,
        "failover.cooldown",
        format!("alarm {} during cooldown", signal.name),
        format!(
            "Alarm {} went to ALARM at {}, during the cooldown (until {until}); no failover is started. Acknowledge the incident ({{\"action\": \"ack\"}}) to end the cooldown early.",
            signal.name, signal.at
        ),
    ))
}

/// An alarm that changed state longer ago than the detection window: a late or repeated
/// delivery. An incident never starts with an old fire time, or its RTO and its window
/// would be measured from a moment nobody acted on.
fn stale_alarm(plan: &Plan, state: &DrState, signal: &AlarmSignal) -> Decision {
    Decision::keep(
        state,
        format!(
            "alarm {} changed state at {}, longer ago than the detection window: a late or repeated delivery starts nothing",
            signal.name, signal.at
        ),
    )
    .note(
        Severity::Warning,
        "failover.stale-alarm",
        format!("late alarm {}: no failover", signal.name),
        format!(
            "Alarm {} changed state at {}, more than the detection window ({} min) before Lifeboat received it. An incident never starts (or resumes) with an old fire time: a new ALARM starts a new one. If the primary is down now, force a failover with {{\"action\": \"force\", \"reason\": \"...\"}}.",
            signal.name, signal.at, plan.failover.detection.window_minutes
        ),
    )
}

/// The failover an alarm starts: at confirm, with the alarm's own fire time.
fn alarm_failover(plan: &Plan, signal: &AlarmSignal, now: DateTime<Utc>) -> Failover {
    start(
        plan,
        &signal.event_id,
        Cause::Alarm {
            name: signal.name.clone(),
            fired_at: signal.at,
        },
        None,
        Step::Confirm,
        now,
    )
}

/// A fresh alarm in Normal: an incident starts, and is confirmed before anything changes.
fn start_confirming(plan: &Plan, signal: &AlarmSignal, now: DateTime<Utc>) -> Decision {
    let f = alarm_failover(plan, signal, now);
    Decision::then(
        DrState::FailingOver(f),
        format!("alarm {} received: confirming", signal.name),
    )
    .note(
        Severity::Critical,
        "failover.alarm",
        format!("alarm {}: failover starting", signal.name),
        format!(
            "Health alarm {} went to ALARM at {}; Lifeboat is confirming it before failing over to {}.",
            signal.name, signal.at, plan.regions.dr
        ),
    )
}

/// The incident at confirm is past its window (no tick came to end it): it ends here,
/// and this alarm starts a new one with its own fire time.
fn replace_unconfirmed(
    plan: &Plan,
    old: &Failover,
    signal: &AlarmSignal,
    now: DateTime<Utc>,
) -> Decision {
    let f = alarm_failover(plan, signal, now);
    Decision::then(
        DrState::FailingOver(f),
        format!(
            "alarm {} received: confirming (incident {} had ended unconfirmed)",
            signal.name, old.incident
        ),
    )
    .note(
        Severity::Critical,
        "failover.unconfirmed",
        "failover not confirmed in time: nothing changed",
        unconfirmed_detail(plan, old),
    )
    .note(
        Severity::Critical,
        "failover.alarm",
        format!("alarm {}: failover starting", signal.name),
        format!(
            "Health alarm {} went to ALARM at {}; Lifeboat is confirming it before failing over to {} (a new incident: {} ended unconfirmed).",
            signal.name, signal.at, plan.regions.dr, old.incident
        ),
    )
}

/// Look at the facts and move the failover on as far as they allow: one step function
/// per [`Step`], each re-deriving what is left to do from what AWS shows.
fn advance(plan: &Plan, state: &DrState, facts: &FailoverFacts, now: DateTime<Utc>) -> Decision {
    if let DrState::FailedOver(done) = state {
        return refence(plan, state, done, facts);
    }
    let DrState::FailingOver(f) = state else {
        return Decision::keep(state, status_line(state));
    };
    if f.step >= Step::SwitchDns
        && let Some(d) = fence_returned(plan, f, facts, now)
    {
        return d;
    }
    let f = f.clone();
    match f.step {
        Step::Confirm => confirm(plan, f, facts, now),
        Step::Readiness => check_readiness(plan, f, facts, now),
        Step::AwaitingApproval => await_approval(plan, f, facts, now),
        Step::Promote => promote(f, facts, now),
        Step::AwaitPromotion => await_promotion(f, facts, now),
        Step::Fence => fence(f, now),
        Step::SwitchDns => switch_dns(plan, f, facts, now),
        Step::AwaitDnsSync => await_dns_sync(f, facts, now),
        Step::Verify => verify(plan, f, facts, now),
    }
}

/// From the switch on, an old primary that came back as a writer (its region recovered
/// after it was found unreachable) is fenced again before anything else: the records
/// must not move while two databases take writes.
fn fence_returned(
    plan: &Plan,
    f: &Failover,
    facts: &FailoverFacts,
    now: DateTime<Utc>,
) -> Option<Decision> {
    let back: Vec<String> = f
        .targets
        .iter()
        .filter(|t| old_primary_writes(plan, t, facts))
        .map(|t| t.resource.clone())
        .collect();
    if back.is_empty() {
        return None;
    }
    let mut f = f.clone();
    for t in f.targets.iter_mut().filter(|t| back.contains(&t.resource)) {
        t.fence = None;
    }
    f.goto(Step::Fence, now);
    Some(
        Decision::then(
            DrState::FailingOver(f),
            "an old primary is back and writable: fencing it first",
        )
        .note(
            Severity::Critical,
            "failover.refence",
            "old primary back: fencing it",
            format!(
                "{} came back as a writer before the failover completed; it is fenced before the records move.",
                back.join(", ")
            ),
        ),
    )
}

/// The readiness step, the data-loss guard: every replica available and replicating,
/// its lag within the plan's maximum (unless forced). Not ready, the failover waits and
/// is notified once per reason; an alarm-started one ends if the signals say healthy.
fn check_readiness(
    plan: &Plan,
    mut f: Failover,
    facts: &FailoverFacts,
    now: DateTime<Utc>,
) -> Decision {
    if let Some(d) = healthy_again(plan, &f, facts, now, "while waiting for readiness") {
        return d;
    }
    let forced = f.forced.is_some();
    if let Err(not_ready) = readiness(plan, facts, forced) {
        let reason = not_ready.to_string();
        let changed = f.blocked.as_deref() != Some(reason.as_str());
        f.blocked = Some(reason.clone());
        let d = Decision::stop(
            DrState::FailingOver(f),
            format!("not ready to fail over: {reason}"),
        )
        .refusing();
        return if changed {
            d.note(
                Severity::Critical,
                "failover.readiness",
                "failover refused: DR side not ready",
                format!("{reason}. Nothing was changed. The failover waits and checks again at every tick; an operator may override the lag guard with {{\"action\": \"force\", \"reason\": \"...\"}} or cancel it."),
            )
        } else {
            d
        };
    }
    f.blocked = None;
    if plan.failover.mode == FailoverMode::Manual && !forced {
        f.goto(Step::AwaitingApproval, now);
        return Decision::stop(DrState::FailingOver(f), "ready: awaiting an operator's approval").note(
            Severity::Critical,
            "failover.approval",
            "failover ready: approval needed",
            "The primary is down and the DR replicas are ready. Approve the failover with {\"action\": \"approve\"}, or cancel it with {\"action\": \"cancel\"}.",
        );
    }
    f.goto(Step::Promote, now);
    Decision::then(DrState::FailingOver(f), "ready: promoting the DR replicas").note(
        Severity::Info,
        "failover.readiness",
        "DR side ready",
        "Every DR replica is available, replicating and within the lag guard.",
    )
}

/// Manual mode: nothing is promoted without an operator; the failover ends if the
/// signals say the primary is healthy before anyone approved it.
fn await_approval(plan: &Plan, f: Failover, facts: &FailoverFacts, now: DateTime<Utc>) -> Decision {
    if let Some(d) = healthy_again(plan, &f, facts, now, "before anyone approved it") {
        return d;
    }
    Decision::stop(
        DrState::FailingOver(f),
        "awaiting an operator's approval ({\"action\": \"approve\"})",
    )
}

/// The promote step: each replica is promoted once (one already standalone, or being
/// promoted, is not promoted again), and its lag at that moment is kept as the
/// data-loss window.
fn promote(mut f: Failover, facts: &FailoverFacts, now: DateTime<Utc>) -> Decision {
    let mut actions = vec![];
    for t in f.targets.iter_mut() {
        let Some(tf) = facts.target(&t.resource) else {
            continue;
        };
        if t.lag_at_promotion.is_none() {
            t.lag_at_promotion = tf.lag_seconds;
        }
        let promoting = tf
            .replica_facts()
            .is_some_and(|r| matches!(r.status.as_str(), "modifying" | "rebooting" | "promoting"));
        if !tf.standalone() && !promoting {
            actions.push(Action::Promote {
                resource: t.resource.clone(),
            });
        }
        t.promote_issued_at.get_or_insert(now);
    }
    f.goto(Step::AwaitPromotion, now);
    let detail = format!(
        "Promoting {} (replica lag at promotion: {}).",
        actions
            .iter()
            .map(|a| match a {
                Action::Promote { resource } => resource.as_str(),
                _ => "",
            })
            .collect::<Vec<_>>()
            .join(", "),
        f.targets
            .iter()
            .map(|t| format!(
                "{} {}",
                t.resource,
                t.lag_at_promotion
                    .map(|l| format!("{l:.1} s"))
                    .unwrap_or_else(|| "unknown".into())
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Decision::poll(DrState::FailingOver(f), "promotion issued")
        .acting(actions)
        .note(
            Severity::Warning,
            "failover.promote",
            "promoting the DR replicas",
            detail,
        )
}

/// Until every replica is a standalone, available writer. One still a plain, available
/// replica lost its promotion call (a crash before it was sent): it is issued again.
fn await_promotion(mut f: Failover, facts: &FailoverFacts, now: DateTime<Utc>) -> Decision {
    let mut actions = vec![];
    let mut all_done = true;
    for t in f.targets.iter_mut() {
        let Some(tf) = facts.target(&t.resource) else {
            all_done = false;
            continue;
        };
        if tf.standalone() && tf.replica_available() {
            t.promoted_at.get_or_insert(now);
        } else {
            all_done = false;
            if !tf.standalone() && tf.replica_available() {
                actions.push(Action::Promote {
                    resource: t.resource.clone(),
                });
            }
        }
    }
    if !all_done {
        return Decision::poll(
            DrState::FailingOver(f),
            "waiting for the promotion to complete",
        )
        .acting(actions);
    }
    f.goto(Step::Fence, now);
    Decision::then(DrState::FailingOver(f), "replicas promoted").note(
        Severity::Info,
        "failover.promoted",
        "replicas promoted",
        "Every DR replica is now a standalone, available writer.",
    )
}

/// The fence step: stop each old primary where it is reachable. It comes after
/// promotion because RDS refuses to stop an instance that still has a read replica; one
/// that cannot be reached is fenced by the DNS switch, which takes Lifeboat's records
/// away from it.
fn fence(mut f: Failover, now: DateTime<Utc>) -> Decision {
    let actions: Vec<Action> = f
        .targets
        .iter()
        .filter(|t| t.fence.is_none())
        .map(|t| Action::Fence {
            resource: t.resource.clone(),
        })
        .collect();
    if !actions.is_empty() {
        return Decision::then(DrState::FailingOver(f), "fencing the old primaries")
            .acting(actions);
    }
    f.goto(Step::SwitchDns, now);
    let detail = f
        .targets
        .iter()
        .map(|t| format!("{}: {}", t.resource, fence_text(t.fence.as_ref())))
        .collect::<Vec<_>>()
        .join("; ");
    Decision::then(
        DrState::FailingOver(f),
        "old primaries fenced where reachable",
    )
    .note(
        Severity::Info,
        "failover.fence",
        "old primaries fenced",
        detail,
    )
}

/// The switch: each writer record to its promoted replica (again when it was read back
/// pointing elsewhere), and the application traffic follows the writer, all of it to
/// the DR region.
fn switch_dns(plan: &Plan, mut f: Failover, facts: &FailoverFacts, now: DateTime<Utc>) -> Decision {
    let mut actions = vec![];
    for t in f.targets.iter() {
        let Some(spec) = plan.resource(&t.resource) else {
            continue;
        };
        if spec.dns_record.is_none() {
            continue;
        }
        let Some(tf) = facts.target(&t.resource) else {
            continue;
        };
        let Some(endpoint) = tf.replica_facts().and_then(|r| r.endpoint.clone()) else {
            continue;
        };
        if t.dns_change.is_none() || !tf.record_points_at(&endpoint) {
            actions.push(Action::SwitchRecord {
                resource: t.resource.clone(),
                endpoint,
            });
        }
    }
    if !plan.failback.traffic.is_empty()
        && (f.traffic.is_none() || facts.traffic.primary_percent != Some(0))
    {
        actions.push(Action::SetTraffic { primary_percent: 0 });
    }
    if actions.is_empty() {
        f.goto(Step::AwaitDnsSync, now);
        return Decision::then(DrState::FailingOver(f), "records switched");
    }
    Decision::then(DrState::FailingOver(f), "switching the writer records")
        .acting(actions)
        .note(
            Severity::Warning,
            "failover.switch-dns",
            "switching DNS to the DR region",
            "Pointing the writer records at the promoted replicas (Route 53 UPSERT).",
        )
}

/// Until Route 53 reports every change (records and traffic weights) INSYNC: the moment
/// the DR region has taken over, where the measured RTO ends.
fn await_dns_sync(mut f: Failover, facts: &FailoverFacts, now: DateTime<Utc>) -> Decision {
    let mut all_synced = true;
    for t in f.targets.iter_mut() {
        if t.dns_change.is_none() {
            continue;
        }
        match facts.target(&t.resource).and_then(|tf| tf.change) {
            Some(ChangeState::InSync) => {
                t.dns_synced_at.get_or_insert(now);
            }
            _ => all_synced = false,
        }
    }
    if let Some(traffic) = f.traffic.as_mut() {
        if facts.traffic.change == Some(ChangeState::InSync) {
            traffic.synced_at.get_or_insert(now);
        } else {
            all_synced = false;
        }
    }
    if !all_synced {
        return Decision::poll(
            DrState::FailingOver(f),
            "waiting for Route 53 to report INSYNC",
        );
    }
    f.goto(Step::Verify, now);
    Decision::then(DrState::FailingOver(f), "DNS in sync").note(
        Severity::Info,
        "failover.dns-insync",
        "DNS in sync",
        "Route 53 reports every change INSYNC.",
    )
}

/// The detection's look at the facts: [`detection::confirm`] over the signals, from the
/// alarm's fire time; a signal-only game day's injection confirms on its own.
fn look(plan: &Plan, f: &Failover, facts: &FailoverFacts, now: DateTime<Utc>) -> Confirmation {
    let c = detection::confirm(plan, &facts.detection, f.fired_at(), now);
    match &facts.rehearsal {
        Some(game_day) => detection::rehearsed(plan, c, game_day),
        None => c,
    }
}

/// What a confirmation says, for a note's audit entry.
fn detection_data(c: &Confirmation) -> serde_json::Value {
    serde_json::json!({ "detection": c })
}

/// The signals in a sentence: the tally, then each signal.
fn signals_text(c: &Confirmation) -> String {
    format!("{}: {}", c.tally(), c.signal_lines().join("; "))
}

fn unconfirmed_detail(plan: &Plan, f: &Failover) -> String {
    format!(
        "Failover {} (alarm at {}) was not confirmed by a quorum within the detection window of {} min (until {}){}. Nothing was changed. This incident is over and is never resumed: a new ALARM starts a new one. If the primary is down, force a failover with {{\"action\": \"force\", \"reason\": \"...\"}}.",
        f.incident,
        f.fired_at(),
        plan.failover.detection.window_minutes,
        f.confirm_deadline(plan),
        f.detection
            .as_ref()
            .map(|c| format!("; the last look: {}", signals_text(c)))
            .unwrap_or_default()
    )
}

/// The confirm step: a quorum of signals saying failing moves on to readiness; a quorum
/// saying healthy ends the failover; neither looks again until the window ends, and then
/// the failover ends, nothing changed. The triggering alarm read back with its actions
/// suppressed ends it too: it notifies only.
fn confirm(plan: &Plan, mut f: Failover, facts: &FailoverFacts, now: DateTime<Utc>) -> Decision {
    let c = look(plan, &f, facts, now);
    let data = detection_data(&c);
    let incident = f.incident.clone();
    let ended = |why: &str| DrState::Normal {
        cooldown_until: None,
        last: Some(format!("{incident} ended at {now}: {why}")),
    };
    if let Cause::Alarm { name, .. } = &f.cause
        && let Some(by) = facts.suppressed(name)
    {
        return Decision::stop(
            ended("its alarm's actions are suppressed"),
            format!("alarm {name} has its actions suppressed ({by}): no failover, notified only"),
        )
        .note(
            Severity::Warning,
            "failover.suppressed",
            format!("alarm {name} suppressed: no failover"),
            format!(
                "Re-read, alarm {name} is in ALARM with its actions suppressed ({by}): its suppressor says not to act now, so failover {incident} ends and nothing was changed. Signals: {}.",
                signals_text(&c)
            ),
        )
        .with_data(data);
    }
    match c.outcome {
        Detected::Confirmed => {
            let text = signals_text(&c);
            f.detection = Some(c);
            f.goto(Step::Readiness, now);
            Decision::then(
                DrState::FailingOver(f),
                "failure confirmed by a quorum of signals: checking readiness",
            )
            .note(
                Severity::Critical,
                "failover.confirm",
                "failure confirmed",
                format!("A quorum of signals says the primary is failing ({text})."),
            )
            .with_data(data)
        }
        Detected::Healthy => Decision::stop(
            ended("the signals said the primary is healthy"),
            "the signals say the primary is healthy: failover aborted, nothing changed",
        )
        .note(
            Severity::Warning,
            "failover.abort",
            "failover aborted: the primary is healthy",
            format!(
                "No signal says the primary is failing and a quorum says it is healthy ({}); failover {incident} is aborted and nothing was changed.",
                signals_text(&c)
            ),
        )
        .with_data(data),
        Detected::Expired => {
            f.detection = Some(c);
            Decision::stop(
                ended("not confirmed within the detection window"),
                "not confirmed within the detection window: the failover ends, nothing changed",
            )
            .note(
                Severity::Critical,
                "failover.unconfirmed",
                "failover not confirmed in time: nothing changed",
                unconfirmed_detail(plan, &f),
            )
            .with_data(data)
        }
        Detected::Undecided => {
            let deadline = c.deadline;
            let reply = format!(
                "not confirmed yet ({}); looking again until {deadline}",
                c.tally()
            );
            let changed = f.detection.as_ref().is_none_or(|p| !p.same_verdicts(&c));
            let text = signals_text(&c);
            f.detection = Some(c);
            let d = Decision::poll(DrState::FailingOver(f), reply);
            if changed {
                d.note(
                    Severity::Warning,
                    "failover.confirm-pending",
                    "failure not confirmed yet",
                    format!(
                        "{text}. Nothing is promoted before a quorum agrees; Lifeboat looks again until {deadline}, then ends the failover."
                    ),
                )
                .with_data(data)
            } else {
                d
            }
        }
    }
}

/// An alarm-started failover, not forced, before promotion: when the signals say the
/// primary is healthy again, it ends.
fn healthy_again(
    plan: &Plan,
    f: &Failover,
    facts: &FailoverFacts,
    now: DateTime<Utc>,
    when: &str,
) -> Option<Decision> {
    if f.forced.is_some() || !matches!(f.cause, Cause::Alarm { .. }) {
        return None;
    }
    let c = look(plan, f, facts, now);
    if c.outcome != Detected::Healthy {
        return None;
    }
    let incident = &f.incident;
    Some(
        Decision::stop(
            DrState::Normal {
                cooldown_until: None,
                last: Some(format!(
                    "{incident} aborted at {now}: the signals said the primary is healthy"
                )),
            },
            "the signals say the primary is healthy: failover aborted, nothing changed",
        )
        .note(
            Severity::Warning,
            "failover.abort",
            "failover aborted: the primary is healthy",
            format!(
                "The signals say the primary is healthy again {when} ({}); failover {incident} is aborted and nothing was changed.",
                signals_text(&c)
            ),
        )
        .with_data(detection_data(&c)),
    )
}

/// Whether a target's old primary is reachable and still takes writes although it was
/// not stopped (it was unreachable when fenced, and has come back).
fn old_primary_writes(plan: &Plan, t: &TargetProgress, facts: &FailoverFacts) -> bool {
    let Some(spec) = plan.resource(&t.resource) else {
        return false;
    };
    let Some(tf) = facts.target(&t.resource) else {
        return false;
    };
    fenceable(spec.kind)
        && t.fence.is_some()
        && !matches!(t.fence, Some(FenceOutcome::Stopped))
        && tf
            .primary
            .present()
            .is_some_and(|p| p.status == "available" && p.replicates_from.is_none())
}

/// After a failover, an old primary that was unreachable when it was fenced may come
/// back (its region recovers) as a writer: fence it as soon as it is seen.
fn refence(plan: &Plan, state: &DrState, done: &FailedOver, facts: &FailoverFacts) -> Decision {
    let mut actions = vec![];
    for t in &done.targets {
        if old_primary_writes(plan, t, facts) {
            actions.push(Action::Fence {
                resource: t.resource.clone(),
            });
        }
    }
    if actions.is_empty() {
        return Decision::keep(state, status_line(state));
    }
    Decision::keep(state, "an old primary is back and writable: fencing it")
        .acting(actions)
        .note(
        Severity::Critical,
        "failover.refence",
        "old primary back: fencing it",
        "An old primary that could not be reached during the failover is available again as a writer; Lifeboat stops it so the DR region stays the only writer.",
    )
}

fn fence_text(f: Option<&FenceOutcome>) -> String {
    match f {
        Some(FenceOutcome::Stopped) => "stopped".into(),
        Some(FenceOutcome::Unreachable { reason }) => {
            format!("unreachable ({reason}); fenced through the DNS switch only")
        }
        Some(FenceOutcome::NotNeeded { reason }) => format!("nothing to stop ({reason})"),
        None => "not fenced".into(),
    }
}

/// Why one replica cannot take over now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplicaNotReady {
    /// Its facts were not read this time.
    #[error("{resource}: its replica was not read")]
    NotRead {
        /// The plan resource.
        resource: String,
    },
    /// AWS reports no such replica.
    #[error("{resource}: the DR replica {replica} does not exist in {region}")]
    Missing {
        /// The plan resource.
        resource: String,
        /// The replica's identifier.
        replica: String,
        /// The DR region.
        region: String,
    },
    /// AWS could not be read about it.
    #[error("{resource}: the DR replica cannot be read: {reason}")]
    Unreadable {
        /// The plan resource.
        resource: String,
        /// What reading it met.
        reason: String,
    },
    /// It exists but is not available (and not yet promoted).
    #[error("{resource}: the DR replica {replica} is {status}, not available")]
    NotAvailable {
        /// The plan resource.
        resource: String,
        /// The replica's identifier.
        replica: String,
        /// Its status, as RDS reports it.
        status: String,
    },
    /// No recent ReplicaLag value: the data-loss guard cannot pass.
    #[error(
        "{resource}: the replica lag of {replica} is unknown (no recent ReplicaLag value), so the data-loss guard cannot pass"
    )]
    LagUnknown {
        /// The plan resource.
        resource: String,
        /// The replica's identifier.
        replica: String,
    },
    /// It lags more than the plan allows (the data-loss guard).
    #[error(
        "{resource}: the replica lags {lag_seconds:.0} s behind, more than the plan's maximum of {max_seconds} s (the data-loss guard)"
    )]
    LagTooHigh {
        /// The plan resource.
        resource: String,
        /// The lag seen.
        lag_seconds: f64,
        /// The plan's maximum.
        max_seconds: u32,
    },
}

/// Why the DR side cannot take over now: every replica that cannot, each saying why. A
/// retry helps once the replicas catch up (or, for the lag, when the operator forces).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct NotReady(pub Vec<ReplicaNotReady>);

/// Whether every replica can take over: present, available, replicating or already
/// standalone, and (unless forced) lagging no more than the plan allows.
pub fn readiness(plan: &Plan, facts: &FailoverFacts, forced: bool) -> Result<(), NotReady> {
    let mut problems = vec![];
    for r in replicated(plan) {
        let resource = r.id.clone();
        let replica = r
            .replica
            .as_ref()
            .map(|x| x.identifier.clone())
            .unwrap_or_default();
        let Some(tf) = facts.target(&r.id) else {
            problems.push(ReplicaNotReady::NotRead { resource });
            continue;
        };
        match &tf.replica {
            Observed::Missing => problems.push(ReplicaNotReady::Missing {
                resource,
                replica,
                region: plan.regions.dr.clone(),
            }),
            Observed::Unknown { reason } => problems.push(ReplicaNotReady::Unreadable {
                resource,
                reason: reason.clone(),
            }),
            Observed::Present(rep) => {
                if rep.status != "available" && !tf.standalone() {
                    problems.push(ReplicaNotReady::NotAvailable {
                        resource,
                        replica,
                        status: rep.status.clone(),
                    });
                } else if !forced && !tf.standalone() {
                    let max_seconds = plan.failover.max_replica_lag_seconds;
                    match tf.lag_seconds {
                        None => problems.push(ReplicaNotReady::LagUnknown { resource, replica }),
                        Some(lag) if lag > f64::from(max_seconds) => {
                            problems.push(ReplicaNotReady::LagTooHigh {
                                resource,
                                lag_seconds: lag,
                                max_seconds,
                            })
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(NotReady(problems))
    }
}

/// The verify step: everything is read back before the failover counts as done, since
/// the measured RTO and the cooldown start from it; a record or replica found otherwise
/// sends it back to the switch.
fn verify(plan: &Plan, mut f: Failover, facts: &FailoverFacts, now: DateTime<Utc>) -> Decision {
    let mut problems = vec![];
    for t in &f.targets {
        let Some(tf) = facts.target(&t.resource) else {
            problems.push(format!("{}: not read", t.resource));
            continue;
        };
        if !(tf.standalone() && tf.replica_available()) {
            problems.push(format!(
                "{}: the promoted replica is not a standalone, available writer",
                t.resource
            ));
        }
        if let Some(endpoint) = &t.switched_to
            && !tf.record_points_at(endpoint)
        {
            problems.push(format!(
                "{}: the record does not point at {endpoint}",
                t.resource
            ));
        }
    }
    if !plan.failback.traffic.is_empty() && facts.traffic.primary_percent != Some(0) {
        problems
            .push("the application traffic records do not send everything to the DR region".into());
    }
    if !problems.is_empty() {
        // Something changed under us: go back and switch again.
        f.goto(Step::SwitchDns, now);
        for t in f.targets.iter_mut() {
            t.dns_change = None;
        }
        f.traffic = None;
        return Decision::then(
            DrState::FailingOver(f),
            "verification failed; switching again",
        )
        .note(
            Severity::Warning,
            "failover.verify",
            "verification failed",
            problems.join("; "),
        );
    }
    let measurement = measure(plan, &f, now);
    let cooldown_until = Some(now + Duration::minutes(i64::from(plan.failover.cooldown_minutes)));
    let summary = failed_over_summary(plan, &f, &measurement, cooldown_until);
    let done = FailedOver {
        incident: f.incident.clone(),
        since: now,
        cooldown_until,
        measurement,
        targets: f.targets.clone(),
        forced: f.forced.clone(),
        detection: f.detection.clone(),
    };
    Decision::stop(DrState::FailedOver(done), summary.clone()).note(
        Severity::Critical,
        "failover.complete",
        "failed over to the DR region",
        summary,
    )
}

/// The failover's outcome in a paragraph: the RTO against its target and its split, what
/// confirmed the failure, the data-loss window against the RPO, and the cooldown.
fn failed_over_summary(
    plan: &Plan,
    f: &Failover,
    measurement: &RecoveryMeasurement,
    cooldown_until: Option<DateTime<Utc>>,
) -> String {
    let confirmed_by = match &f.detection {
        Some(c) if c.outcome == Detected::Confirmed => format!(
            " Confirmed by {} ({}).",
            c.signals
                .iter()
                .filter(|s| s.verdict == detection::Verdict::Failing)
                .map(|s| format!("{} ({})", s.signal, s.region))
                .collect::<Vec<_>>()
                .join(", "),
            c.tally()
        ),
        _ => String::new(),
    };
    format!(
        "Failed over to {} (incident {}). RTO {} s against a target of {} s ({}): detection {} s, AWS {} s, approval {} s, Lifeboat {} s.{confirmed_by} Data-loss window {} against an RPO of {} s ({}). Cooldown until {}.",
        plan.regions.dr,
        f.incident,
        measurement.rto_seconds,
        measurement.rto_target_seconds,
        if measurement.rto_met() {
            "met"
        } else {
            "MISSED"
        },
        measurement.detection_seconds,
        measurement.aws_seconds,
        measurement.approval_seconds,
        measurement.lifeboat_seconds,
        measurement
            .data_loss_seconds
            .map(|l| format!("{l:.1} s"))
            .unwrap_or_else(|| "unknown".into()),
        measurement.rpo_target_seconds,
        if measurement.rpo_met() {
            "met"
        } else {
            "not proven"
        },
        cooldown_until.map(|c| c.to_rfc3339()).unwrap_or_default(),
    )
}

fn seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_seconds().max(0)
}

/// The measured RTO and its split, and the data-loss window.
pub fn measure(plan: &Plan, f: &Failover, synced: DateTime<Utc>) -> RecoveryMeasurement {
    let fired = f.fired_at();
    let rto = seconds(fired, synced);
    // Until the failure was confirmed (or an operator forced past confirming).
    let detection = match f.cause {
        Cause::Alarm { .. } => seconds(fired, f.confirmed_at().unwrap_or(f.received_at)),
        Cause::Operator { .. } => 0,
    };
    let traffic_dns = f
        .traffic
        .as_ref()
        .and_then(|t| Some(seconds(t.submitted_at, t.synced_at?)))
        .unwrap_or(0);
    let aws = f
        .targets
        .iter()
        .map(|t| {
            let promotion = match (t.promote_issued_at, t.promoted_at) {
                (Some(a), Some(b)) => seconds(a, b),
                _ => 0,
            };
            let dns = match (t.dns_submitted_at, t.dns_synced_at) {
                (Some(a), Some(b)) => seconds(a, b),
                _ => 0,
            };
            promotion + dns.max(traffic_dns)
        })
        .max()
        .unwrap_or(traffic_dns);
    // From entering approval to the step after it (approve, or force back to readiness).
    let approval = f
        .marks
        .iter()
        .position(|m| m.step == Step::AwaitingApproval)
        .and_then(|i| Some(seconds(f.marks[i].at, f.marks.get(i + 1)?.at)))
        .unwrap_or(0);
    let lifeboat = (rto - detection - aws - approval).max(0);
    let resources: Vec<&crate::plan::ProtectedResource> = f
        .targets
        .iter()
        .filter_map(|t| plan.resource(&t.resource))
        .collect();
    RecoveryMeasurement {
        rto_seconds: rto,
        rto_target_seconds: resources
            .iter()
            .map(|r| i64::from(r.rto_minutes) * 60)
            .min()
            .unwrap_or(0),
        detection_seconds: detection,
        aws_seconds: aws,
        approval_seconds: approval,
        lifeboat_seconds: lifeboat,
        data_loss_seconds: f
            .targets
            .iter()
            .map(|t| t.lag_at_promotion)
            .try_fold(0.0f64, |acc, l| l.map(|l| acc.max(l))),
        rpo_target_seconds: resources
            .iter()
            .map(|r| i64::from(r.rpo_minutes) * 60)
            .min()
            .unwrap_or(0),
    }
}

/// Fold what the actions produced into the state.
pub fn absorb(state: &DrState, results: &[ActionResult], now: DateTime<Utc>) -> DrState {
    if let DrState::FailedOver(done) = state {
        let mut done = done.clone();
        for r in results {
            if let ActionResult::Fenced { resource, outcome } = r
                && let Some(t) = done.targets.iter_mut().find(|t| &t.resource == resource)
            {
                t.fence = Some(outcome.clone());
            }
        }
        return DrState::FailedOver(done);
    }
    let DrState::FailingOver(f) = state else {
        return state.clone();
    };
    let mut f = f.clone();
    for r in results {
        match r {
            ActionResult::Promoted { .. } | ActionResult::Failed { .. } => {}
            ActionResult::Fenced { resource, outcome } => {
                if let Some(t) = f.target(resource) {
                    t.fence = Some(outcome.clone());
                }
            }
            ActionResult::TrafficSet {
                primary_percent,
                change,
            } => {
                f.traffic = Some(TrafficProgress {
                    primary_percent: *primary_percent,
                    change: change.clone(),
                    submitted_at: now,
                    synced_at: None,
                });
            }
            ActionResult::Switched {
                resource,
                endpoint,
                change,
            } => {
                if let Some(t) = f.target(resource) {
                    t.switched_to = Some(endpoint.clone());
                    t.dns_change = Some(change.clone());
                    t.dns_submitted_at.get_or_insert(now);
                    t.dns_synced_at = None;
                }
            }
        }
    }
    DrState::FailingOver(f)
}

/// Whether a resource's primary is an instance Lifeboat can stop (Aurora global
/// databases demote the old primary themselves).
pub fn fenceable(kind: ResourceKind) -> bool {
    kind == ResourceKind::RdsInstance
}

#[cfg(test)]
mod tests;
