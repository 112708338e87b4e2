//! Game days: a real failover and failback of a plan, on purpose, with a hypothesis and a
//! measured result.
//!
//! This module is the pure core: the game-day state machine ([`step`]) and its report
//! ([`GameDayReport`], [`render_report`]). It decides; it does nothing. The edge (the failover function) persists
//! [`GameDayState`] with a conditional write, performs the [`GameDayAction`]s, and feeds
//! back what happened as [`GameDayEvent`]s, with the DR state machine's progress as
//! [`DrFacts`] read from the DR document on every step.
//!
//! A game day does not fail over by itself: it injects a fault (or only the signal of one)
//! and lets the real alarm-driven failover do its work, so what is measured is what a real
//! disaster would get. Then it verifies the DR writer, starts the real staged failback, and
//! reports whether the hypothesis held:
//!
//! ```text
//! Requested → Injecting → AwaitingFailover → Verifying → AwaitingFailback → Reporting → Done
//!      ↘ (stop condition before injecting) Aborted
//! any phase after the injection → Stopping{cause} → (consistent DR state) → Reporting → Aborted
//! ```
//!
//! The safety rules, which the property tests hold it to:
//! - the fault is injected at most once per game day, and only after every start guard
//!   held (plan allows game days, DR state Normal and out of cooldown, no point-in-time
//!   recovery, no other game day, no stop-condition alarm firing);
//! - a stop condition never abandons a failover half-way (a half-promoted DR region is
//!   worse than either side): the injection stops, the game day waits for a consistent
//!   DR state (FailedOver or Normal), and only then ends;
//! - after a stop condition no failback is started automatically: the report says the
//!   operator must fail back, because whatever fired the alarm needs a human first.
//! - no failback is started while the primary region is not ready (health alarms out
//!   of OK, or it does not answer: the failback function would refuse it); after [`PRIMARY_RECOVERY_MINUTES`] of waiting
//!   the game day reports that the operator must fail back.
//!
//! # What the executor does
//!
//! - Keeps one [`GameDayState`] per plan, written conditionally on its version; persists
//!   every decision's state before performing its actions.
//! - Builds [`GameDayFacts`] on every step: [`dr_facts`] of the DR document, the active
//!   point-in-time recovery if any, the plan's stop-condition alarms now in ALARM, what
//!   keeps the primary region from taking the writer back (the failback waits for it), and the past reports (from S3)
//!   for the trend. [`run`] is that executor.
//! - Turns `{"action": "game-day", "mode": "fis"}` into [`GameDayEvent::Start`] with the
//!   triggering event's id; steps again with [`GameDayEvent::Tick`] at once whenever a
//!   decision says [`Next::Continue`]; sends `Tick` on every scheduled tick and
//!   `DrObserved` after every DR step while a game day runs.
//! - Performs each [`GameDayAction`] and reports back: `Inject` → `InjectionStarted` or
//!   `InjectionFailed`; `Verify` → `Verified`; `WriteReport` → `ReportWritten`.
//!   `StopInjection`, `StartFailback` and `Notify` report nothing back.

mod facts;
mod report;
pub mod run;
#[cfg(test)]
mod tests;
pub mod verify;

pub use facts::dr_facts;

pub use report::{
    Check, FailbackStageTime, GameDayOutcome, GameDayReport, Hypothesis, RtoSplit, Trend,
    TrendDirection, TrendPoint, Verdict, render_report, trend,
};

use crate::dr::Next;
use crate::notify::Severity;
use crate::plan::{AlarmRef, Canary, InjectionMode, Plan};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How long an issued injection may stay unconfirmed before the game day gives up on it
/// (the FIS call or the alarm write never reported back).
pub const INJECTION_TIMEOUT_MINUTES: i64 = 10;
/// How long after the injection the failover must have started, at least; the real
/// limit is the larger of this and twice the plan's RTO target. A fault that starts no
/// failover is a finding (detection is broken), reported as the RTO hypothesis not held.
pub const FAILOVER_START_MINUTES: i64 = 30;
/// How long the verification may take before the game day goes on without its result.
pub const VERIFY_TIMEOUT_MINUTES: i64 = 15;
/// How long after `StartFailback` the DR state must show the failback.
pub const FAILBACK_START_MINUTES: i64 = 30;
/// How long after the failover the primary region may stay not ready (health alarms
/// out of OK, or not answering) before the game day gives up on failing back (after a
/// FIS disruption ends, the health check takes a few periods to pass again).
pub const PRIMARY_RECOVERY_MINUTES: i64 = 30;
/// After a stop with the DR state still Normal, how long the game day watches for a
/// failover the fault may already have set off before it calls Normal consistent.
pub const STOP_SETTLE_MINUTES: i64 = 5;

/// How a game day's fault is injected, as a command gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameDayMode {
    /// Set the plan's health alarms to ALARM.
    SignalOnly,
    /// Run the AWS FIS experiment.
    Fis,
}

impl GameDayMode {
    /// The mode's name in commands and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            GameDayMode::SignalOnly => "signal_only",
            GameDayMode::Fis => "fis",
        }
    }
}

impl fmt::Display for GameDayMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fault to inject, resolved from the command and the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Injection {
    /// Set these alarms (the plan's health alarms) to ALARM with `SetAlarmState`.
    SignalOnly {
        /// The alarms.
        alarms: Vec<AlarmRef>,
    },
    /// Start an experiment from this FIS template.
    Fis {
        /// The template; `None`: the one the SAM template deployed (the function's
        /// environment names it).
        experiment_template_id: Option<String>,
    },
}

impl Injection {
    /// The mode of this injection.
    pub fn mode(&self) -> GameDayMode {
        match self {
            Injection::SignalOnly { .. } => GameDayMode::SignalOnly,
            Injection::Fis { .. } => GameDayMode::Fis,
        }
    }
}

pub use crate::dr::DrPhase;

/// The failover's timeline, from the DR document (the `Failover` in progress, or the
/// `FailedOver` it became, or the `from` of a failback). Every field is optional: the
/// game day keeps what it has seen, and the report says what was not measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailoverFacts {
    /// The failover's incident id.
    #[serde(default)]
    pub incident: Option<String>,
    /// When the health alarm changed to ALARM.
    #[serde(default)]
    pub alarm_at: Option<DateTime<Utc>>,
    /// When Lifeboat started the failover (received the alarm).
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// Time spent waiting for an operator's approval (manual mode), in seconds.
    #[serde(default)]
    pub approval_seconds: Option<i64>,
    /// When the replica promotion was requested.
    #[serde(default)]
    pub promotion_started_at: Option<DateTime<Utc>>,
    /// When the promoted replica was an available writer.
    #[serde(default)]
    pub promotion_done_at: Option<DateTime<Utc>>,
    /// When the DNS change was submitted.
    #[serde(default)]
    pub dns_submitted_at: Option<DateTime<Utc>>,
    /// When the DNS change was INSYNC.
    #[serde(default)]
    pub dns_switched_at: Option<DateTime<Utc>>,
    /// When the failover was done (the DR state became FailedOver).
    #[serde(default)]
    pub done_at: Option<DateTime<Utc>>,
    /// The largest replica lag at promotion, in seconds: the data-loss window.
    #[serde(default)]
    pub data_loss_seconds: Option<f64>,
}

impl FailoverFacts {
    /// Take every value `newer` knows and this does not lack a reason to keep: a value
    /// once seen is kept (a later document may no longer carry it), a newer one wins.
    fn merge(&mut self, newer: &FailoverFacts) {
        fn take<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if theirs.is_some() {
                *mine = theirs.clone();
            }
        }
        take(&mut self.incident, &newer.incident);
        take(&mut self.alarm_at, &newer.alarm_at);
        take(&mut self.started_at, &newer.started_at);
        take(&mut self.approval_seconds, &newer.approval_seconds);
        take(&mut self.promotion_started_at, &newer.promotion_started_at);
        take(&mut self.promotion_done_at, &newer.promotion_done_at);
        take(&mut self.dns_submitted_at, &newer.dns_submitted_at);
        take(&mut self.dns_switched_at, &newer.dns_switched_at);
        take(&mut self.done_at, &newer.done_at);
        take(&mut self.data_loss_seconds, &newer.data_loss_seconds);
    }
}

/// When a failback stage (step) began, from the failback's marks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMark {
    /// The stage's name (the failback step, e.g. `ShiftTraffic`).
    pub stage: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
}

/// The failback's timeline, from the DR document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackFacts {
    /// Every stage begun so far, in order.
    #[serde(default)]
    pub stages: Vec<StageMark>,
    /// When the failback ended, when the document says (else the game day uses the time
    /// it first saw it ended).
    #[serde(default)]
    pub done_at: Option<DateTime<Utc>>,
}

/// What the DR document says now: the lead's executor fills this on every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrFacts {
    /// The DR phase.
    pub phase: DrPhase,
    /// Until when the DR state is in its cooldown (alarms only notify).
    #[serde(default)]
    pub cooldown_until: Option<DateTime<Utc>>,
    /// The current (or last) failover's timeline; empty when there is none.
    #[serde(default)]
    pub failover: FailoverFacts,
    /// The current failback's timeline; empty when there is none.
    #[serde(default)]
    pub failback: FailbackFacts,
    /// In Normal: every replicated resource has its DR replica again (the failback's last
    /// step waits for it, so a Normal reached by a failback is protected).
    #[serde(default)]
    pub protected: bool,
}

impl DrFacts {
    /// Normal, out of cooldown, protected: the DR state a game day may start from.
    pub fn normal(protected: bool) -> DrFacts {
        DrFacts {
            phase: DrPhase::Normal,
            cooldown_until: None,
            failover: FailoverFacts::default(),
            failback: FailbackFacts::default(),
            protected,
        }
    }
}

/// Everything a step reads besides the state and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameDayFacts {
    /// The DR state machine's progress.
    pub dr: DrFacts,
    /// The point-in-time recovery in progress, when there is one (its id or a sentence).
    #[serde(default)]
    pub recovery_active: Option<String>,
    /// The plan's stop-condition alarms that are in ALARM now (re-read each step, so a
    /// lost alarm notification still stops the game day on the next tick).
    #[serde(default)]
    pub stop_alarms_firing: Vec<String>,
    /// Reports of past game days of this plan (any order; the trend takes the newest).
    #[serde(default)]
    pub history: Vec<GameDayReport>,
    /// What keeps the primary region from taking the writer back now (health alarms
    /// not OK, a primary region that does not answer; re-read each step): the failback
    /// starts only once this is empty, as the failback function would refuse otherwise.
    #[serde(default)]
    pub primary_unhealthy: Vec<String>,
}

/// The result of verifying the DR writer after the failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Whether the DR endpoint (the plan's database record) answered a query.
    pub endpoint_answered: bool,
    /// The canary's result.
    pub canary: CanaryResult,
    /// What was found, in a sentence (errors included).
    #[serde(default)]
    pub detail: String,
}

impl Verification {
    /// Whether the DR writer works: it answered, and the canary did not fail.
    pub fn passed(&self) -> bool {
        self.endpoint_answered && !matches!(self.canary, CanaryResult::Failed { .. })
    }
}

/// The canary's write-then-read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CanaryResult {
    /// The row was written and read back.
    Ok,
    /// The write or the read failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// The plan names no canary.
    NotConfigured,
}

/// What happened: a command, an edge's report of an action, or the passing of time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum GameDayEvent {
    /// Start a game day (`{"action": "game-day", "mode": "fis"}` from the schedule or an
    /// operator).
    Start {
        /// The game day's id: the triggering event's id, so a duplicate delivery of the
        /// same command is recognised.
        id: String,
        /// The injection mode; `None`: the plan's.
        #[serde(default)]
        mode: Option<GameDayMode>,
        /// Who asked (the schedule, or the operator's identity).
        who: String,
    },
    /// The injection was performed (the FIS experiment started, or the alarms set).
    InjectionStarted {
        /// The FIS experiment's id, for `StopInjection`.
        #[serde(default)]
        experiment_id: Option<String>,
    },
    /// The injection could not be performed.
    InjectionFailed {
        /// Why.
        reason: String,
    },
    /// The DR document changed (its progress is in the facts).
    DrObserved,
    /// The verification's result.
    Verified(Verification),
    /// A stop-condition alarm fired.
    StopConditionFired {
        /// The alarm's name.
        alarm: String,
    },
    /// The report was stored (S3) and sent (SNS).
    ReportWritten,
    /// The periodic tick (and the executor's "decide again").
    Tick,
}

/// What the edge should do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum GameDayAction {
    /// Inject the fault, then report `InjectionStarted` or `InjectionFailed`.
    Inject {
        /// What to inject.
        injection: Injection,
    },
    /// Stop the fault: stop the FIS experiment (when one was started) or set the health
    /// alarms back to OK (CloudWatch re-evaluates them at its next period anyway).
    StopInjection {
        /// What was injected.
        injection: Injection,
        /// The experiment to stop, when FIS started one.
        experiment_id: Option<String>,
    },
    /// Verify the DR writer (a query through the plan's database record, and the canary
    /// when given), then report `Verified`.
    Verify {
        /// The canary to write and read, when the plan names one.
        canary: Option<Canary>,
    },
    /// Start the staged failback (the failback command on the DR state machine).
    StartFailback,
    /// Tell people (SNS) and record it in the timeline.
    Notify {
        /// How urgent.
        severity: Severity,
        /// One line.
        text: String,
    },
    /// Store the report (S3, keyed by the game day's id, so writing it again is harmless)
    /// and publish its text ([`render_report`]) to SNS, with the report's
    /// [`GameDayReport::severity`]; then report `ReportWritten`.
    WriteReport(Box<GameDayReport>),
}

/// Where a game day is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase")]
pub enum Phase {
    /// Accepted; the stop conditions are checked once more before the injection.
    Requested,
    /// `Inject` issued; waiting for the edge to confirm it.
    Injecting,
    /// The fault is on; waiting for the real failover to complete.
    AwaitingFailover,
    /// Failed over; waiting for the verification of the DR writer.
    Verifying,
    /// `StartFailback` issued; waiting for the failback to end.
    AwaitingFailback,
    /// A stop condition fired; the injection is stopped, and the game day waits for a
    /// consistent DR state before it ends.
    Stopping {
        /// The alarm that fired (or the reason).
        cause: String,
    },
    /// The report is being written.
    Reporting,
    /// Ended as planned (whether or not the hypothesis held).
    Done,
    /// Ended early: refused conditions before the injection, a failed injection, or a
    /// stop condition.
    Aborted,
}

impl Phase {
    /// Whether the game day is over.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Phase::Done | Phase::Aborted)
    }

    /// The phase's name, for replies and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Requested => "Requested",
            Phase::Injecting => "Injecting",
            Phase::AwaitingFailover => "AwaitingFailover",
            Phase::Verifying => "Verifying",
            Phase::AwaitingFailback => "AwaitingFailback",
            Phase::Stopping { .. } => "Stopping",
            Phase::Reporting => "Reporting",
            Phase::Done => "Done",
            Phase::Aborted => "Aborted",
        }
    }
}

/// The stop condition, once one fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRecord {
    /// The alarm that fired.
    pub cause: String,
    /// When the game day saw it.
    pub at: DateTime<Utc>,
    /// The phase the game day was in.
    pub phase: String,
    /// Whether `StartFailback` had already been issued (then the game day waits for the
    /// failback to end; otherwise for a consistent failover state).
    pub during_failback: bool,
}

/// One game day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameDay {
    /// Its id (the starting command's event id).
    pub id: String,
    /// The plan.
    pub plan: String,
    /// Who started it.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// What is injected.
    pub injection: Injection,
    /// The canary the verification runs.
    #[serde(default)]
    pub canary: Option<Canary>,
    /// The hypothesis' RTO: the tightest RTO of the plan's replicated resources, seconds.
    pub rto_target_seconds: i64,
    /// The hypothesis' RPO: the tightest RPO of the plan's replicated resources, seconds.
    pub rpo_target_seconds: i64,
    /// How many past game days the report's trend covers (the plan's `history`).
    #[serde(default = "default_trend_size")]
    pub trend_size: usize,
    /// Where it is.
    pub phase: Phase,
    /// Whether `Inject` was issued (never twice).
    #[serde(default)]
    pub inject_issued: bool,
    /// When the injection was confirmed (or first seen to work): the fault's start.
    #[serde(default)]
    pub injected_at: Option<DateTime<Utc>>,
    /// The FIS experiment, when one started.
    #[serde(default)]
    pub experiment_id: Option<String>,
    /// Whether `StopInjection` was issued.
    #[serde(default)]
    pub injection_stopped: bool,
    /// When the game day entered its current waiting phase (for its timeouts).
    pub phase_since: DateTime<Utc>,
    /// Whether the DR state has left Normal since the start (a failover began).
    #[serde(default)]
    pub failover_seen: bool,
    /// The failover's timeline as observed.
    #[serde(default)]
    pub failover: FailoverFacts,
    /// The verification's result.
    #[serde(default)]
    pub verification: Option<Verification>,
    /// When `StartFailback` was issued (never twice, never after a stop).
    #[serde(default)]
    pub failback_requested_at: Option<DateTime<Utc>>,
    /// Whether the DR state was seen FailingBack.
    #[serde(default)]
    pub failback_seen: bool,
    /// The failback's stages as observed.
    #[serde(default)]
    pub failback: FailbackFacts,
    /// When the failback was seen to end, and how.
    #[serde(default)]
    pub failback_end: Option<FailbackEnd>,
    /// The stop condition, when one fired.
    #[serde(default)]
    pub stop: Option<StopRecord>,
    /// Why it ended early, when it did without a stop condition.
    #[serde(default)]
    pub abort_reason: Option<String>,
    /// The report, once written.
    #[serde(default)]
    pub report: Option<GameDayReport>,
}

/// How a failback ended, as the game day saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackEnd {
    /// When.
    pub at: DateTime<Utc>,
    /// The DR phase it ended in: Normal (done) or FailedOver (rolled back or aborted).
    pub phase: DrPhase,
    /// In Normal: whether the DR replicas were back.
    pub protected: bool,
}

fn default_trend_size() -> usize {
    5
}

/// The persisted state: the current (or last) game day of the plan. One item per plan,
/// so two game days cannot run at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GameDayState {
    /// The game day, when one was ever started.
    #[serde(default)]
    pub current: Option<GameDay>,
}

/// Why a game day cannot start. Nothing changes when one is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Refusal {
    /// The plan does not allow game days.
    #[error(
        "plan {plan} does not allow game days: set `game_days.allowed` to true in the plan (a game day fails production over, so it must be enabled on purpose)"
    )]
    NotAllowed {
        /// The plan.
        plan: String,
    },
    /// The plan has nothing to fail over.
    #[error(
        "plan {plan} has no replicated resource: a game day exercises the failover, and there is none to exercise"
    )]
    NothingToFailOver {
        /// The plan.
        plan: String,
    },
    /// The DR state is in its cooldown.
    #[error(
        "the DR state is in its cooldown until {until}: a failover now would only notify. Start the game day after the cooldown"
    )]
    Cooldown {
        /// Until when.
        until: DateTime<Utc>,
    },
    /// A failover or failback is in progress (or the DR region serves).
    #[error(
        "the DR state is {phase}, not Normal: a game day starts only from Normal. Finish the failover or failback first"
    )]
    DrBusy {
        /// The DR phase.
        phase: DrPhase,
    },
    /// A point-in-time recovery is in progress.
    #[error(
        "a point-in-time recovery is in progress ({recovery}): cut it over or discard it before a game day"
    )]
    RecoveryActive {
        /// Which.
        recovery: String,
    },
    /// Another game day is running.
    #[error("game day {id} is running ({phase}): wait for its report, one game day at a time")]
    AnotherGameDay {
        /// Its id.
        id: String,
        /// Its phase.
        phase: String,
    },
    /// A stop-condition alarm is in ALARM already.
    #[error(
        "stop-condition alarm {alarm} is in ALARM: a game day would stop at once. Resolve what it reports first"
    )]
    StopConditionFiring {
        /// The alarm.
        alarm: String,
    },
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameDayDecision {
    /// The next state (to persist before acting).
    pub state: GameDayState,
    /// What to do.
    pub actions: Vec<GameDayAction>,
    /// How to go on: `Continue` asks the executor to step again at once with `Tick`.
    pub next: Next,
    /// The answer to the caller, in a sentence.
    pub reply: String,
    /// Set when a start was refused; the state is unchanged.
    pub refusal: Option<Refusal>,
}

impl GameDayDecision {
    fn keep(state: &GameDayState, reply: impl Into<String>) -> Self {
        GameDayDecision {
            state: state.clone(),
            actions: Vec::new(),
            next: Next::Stop,
            reply: reply.into(),
            refusal: None,
        }
    }

    fn refuse(state: &GameDayState, refusal: Refusal) -> Self {
        GameDayDecision {
            reply: refusal.to_string(),
            refusal: Some(refusal),
            ..GameDayDecision::keep(state, "")
        }
    }
}

/// The tightest RTO and RPO, in seconds, among the plan's replicated resources (the
/// ones a failover moves): the hypothesis' targets. `None` when nothing is replicated.
pub fn targets(plan: &Plan) -> Option<(i64, i64)> {
    let replicated = plan.resources.iter().filter(|r| r.replica.is_some());
    let rto = replicated.clone().map(|r| r.rto_minutes).min()?;
    let rpo = replicated.map(|r| r.rpo_minutes).min()?;
    Some((i64::from(rto) * 60, i64::from(rpo) * 60))
}

/// The injection a start command asks for, resolved against the plan.
pub fn resolve_injection(plan: &Plan, mode: Option<GameDayMode>) -> Injection {
    let template = match &plan.game_days.injection {
        InjectionMode::Fis {
            experiment_template_id,
        } => experiment_template_id.clone(),
        InjectionMode::SignalOnly {} => None,
    };
    let mode = mode.unwrap_or(match plan.game_days.injection {
        InjectionMode::SignalOnly {} => GameDayMode::SignalOnly,
        InjectionMode::Fis { .. } => GameDayMode::Fis,
    });
    match mode {
        GameDayMode::SignalOnly => Injection::SignalOnly {
            alarms: plan.failover.health_alarms.clone(),
        },
        GameDayMode::Fis => Injection::Fis {
            experiment_template_id: template,
        },
    }
}

/// Why a game day may not start now, if it may not. Checked in the order an operator
/// would want to hear them: the plan, then another game day, then the DR state.
pub fn start_refusal(
    state: &GameDayState,
    plan: &Plan,
    facts: &GameDayFacts,
    now: DateTime<Utc>,
) -> Option<Refusal> {
    if !plan.game_days.allowed {
        return Some(Refusal::NotAllowed {
            plan: plan.name.clone(),
        });
    }
    if targets(plan).is_none() {
        return Some(Refusal::NothingToFailOver {
            plan: plan.name.clone(),
        });
    }
    if let Some(gd) = &state.current
        && !gd.phase.is_terminal()
    {
        return Some(Refusal::AnotherGameDay {
            id: gd.id.clone(),
            phase: gd.phase.name().to_string(),
        });
    }
    if facts.dr.phase != DrPhase::Normal {
        return Some(Refusal::DrBusy {
            phase: facts.dr.phase,
        });
    }
    if let Some(until) = facts.dr.cooldown_until
        && until > now
    {
        return Some(Refusal::Cooldown { until });
    }
    if let Some(recovery) = &facts.recovery_active {
        return Some(Refusal::RecoveryActive {
            recovery: recovery.clone(),
        });
    }
    if let Some(alarm) = facts.stop_alarms_firing.first() {
        return Some(Refusal::StopConditionFiring {
            alarm: alarm.clone(),
        });
    }
    None
}

/// One step of the game-day state machine: pure, `now` passed in.
///
/// Persist the returned state (conditionally, on the version read) before performing the
/// actions; a crash between the two resumes from the stored state on the next tick,
/// which re-issues only what is safe to repeat (the report), never the injection or the
/// failback.
pub fn step(
    state: &GameDayState,
    event: &GameDayEvent,
    plan: &Plan,
    facts: &GameDayFacts,
    now: DateTime<Utc>,
) -> GameDayDecision {
    if let GameDayEvent::Start { id, mode, who } = event {
        return start(state, plan, facts, now, id, *mode, who);
    }
    let Some(gd) = &state.current else {
        return GameDayDecision::keep(state, "no game day has been started");
    };
    if gd.phase.is_terminal() {
        return GameDayDecision::keep(
            state,
            format!("game day {} is over ({})", gd.id, gd.phase.name()),
        );
    }
    let mut m = Machine {
        gd: gd.clone(),
        facts,
        now,
        actions: Vec::new(),
        next: Next::Stop,
        reply: String::new(),
    };
    m.handle(event);
    let reply = if m.reply.is_empty() {
        format!("game day {}: {}", m.gd.id, m.gd.phase.name())
    } else {
        m.reply
    };
    GameDayDecision {
        state: GameDayState {
            current: Some(m.gd),
        },
        actions: m.actions,
        next: m.next,
        reply,
        refusal: None,
    }
}

fn start(
    state: &GameDayState,
    plan: &Plan,
    facts: &GameDayFacts,
    now: DateTime<Utc>,
    id: &str,
    mode: Option<GameDayMode>,
    who: &str,
) -> GameDayDecision {
    // A duplicate delivery of the command that started the current game day is answered,
    // not refused: the sender did nothing wrong.
    if let Some(gd) = &state.current
        && gd.id == id
    {
        return GameDayDecision::keep(
            state,
            format!("game day {id} already started ({})", gd.phase.name()),
        );
    }
    if let Some(refusal) = start_refusal(state, plan, facts, now) {
        return GameDayDecision::refuse(state, refusal);
    }
    let Some((rto, rpo)) = targets(plan) else {
        // start_refusal refused it; kept for totality.
        return GameDayDecision::refuse(
            state,
            Refusal::NothingToFailOver {
                plan: plan.name.clone(),
            },
        );
    };
    let injection = resolve_injection(plan, mode);
    let gd = GameDay {
        id: id.to_string(),
        plan: plan.name.clone(),
        requested_by: who.to_string(),
        requested_at: now,
        injection: injection.clone(),
        canary: plan.game_days.canary.clone(),
        rto_target_seconds: rto,
        rpo_target_seconds: rpo,
        trend_size: plan.game_days.history,
        phase: Phase::Requested,
        inject_issued: false,
        injected_at: None,
        experiment_id: None,
        injection_stopped: false,
        phase_since: now,
        failover_seen: false,
        failover: FailoverFacts::default(),
        verification: None,
        failback_requested_at: None,
        failback_seen: false,
        failback: FailbackFacts::default(),
        failback_end: None,
        stop: None,
        abort_reason: None,
        report: None,
    };
    let text = format!(
        "Game day {id} on plan {} requested by {who} ({} injection). Hypothesis: failover within {}, data loss within {}, failback returns to Normal and protected.",
        plan.name,
        injection.mode(),
        report::duration_text(rto),
        report::duration_text(rpo),
    );
    GameDayDecision {
        state: GameDayState { current: Some(gd) },
        actions: vec![GameDayAction::Notify {
            severity: Severity::Warning,
            text,
        }],
        next: Next::Continue,
        reply: format!("game day {id} started"),
        refusal: None,
    }
}

/// A step in progress: the game day being changed and what it asks for.
struct Machine<'a> {
    gd: GameDay,
    facts: &'a GameDayFacts,
    now: DateTime<Utc>,
    actions: Vec<GameDayAction>,
    next: Next,
    reply: String,
}

impl Machine<'_> {
    fn handle(&mut self, event: &GameDayEvent) {
        self.observe_dr();
        match event {
            GameDayEvent::Start { .. } => {}
            GameDayEvent::InjectionStarted { experiment_id } => {
                if self.gd.inject_issued {
                    if self.gd.injected_at.is_none() {
                        self.gd.injected_at = Some(self.now);
                    }
                    let learned = self.gd.experiment_id.is_none() && experiment_id.is_some();
                    if learned {
                        self.gd.experiment_id = experiment_id.clone();
                    }
                    if self.gd.phase == Phase::Injecting {
                        self.goto(Phase::AwaitingFailover);
                        self.reply = "injection started; waiting for the failover".into();
                    } else if learned && self.gd.injection_stopped {
                        // The stop went out before the experiment's id was known: stop
                        // the experiment by its id now.
                        self.actions.push(GameDayAction::StopInjection {
                            injection: self.gd.injection.clone(),
                            experiment_id: self.gd.experiment_id.clone(),
                        });
                    }
                }
            }
            GameDayEvent::InjectionFailed { reason } => {
                // A failover already under way says the fault took effect after all: the
                // game day follows it rather than abandon it.
                if self.gd.phase == Phase::Injecting && !self.gd.failover_seen {
                    self.gd.abort_reason = Some(format!("the injection failed: {reason}"));
                    // It may have half-happened (alarms set, experiment created): undo it.
                    self.stop_injection();
                    self.report();
                }
            }
            GameDayEvent::Verified(v) => {
                let wanted = matches!(self.gd.phase, Phase::Verifying | Phase::Stopping { .. });
                if wanted && self.gd.verification.is_none() {
                    self.gd.verification = Some(v.clone());
                    if !v.passed() {
                        self.notify(
                            Severity::Critical,
                            format!(
                                "Game day {}: the DR writer failed verification after the failover: {}",
                                self.gd.id, v.detail
                            ),
                        );
                    }
                }
                if self.gd.phase == Phase::Verifying {
                    self.start_failback_when_healthy();
                }
            }
            GameDayEvent::StopConditionFired { alarm } => self.stop_condition(alarm),
            GameDayEvent::ReportWritten => {
                if self.gd.phase == Phase::Reporting {
                    let aborted = self
                        .gd
                        .report
                        .as_ref()
                        .is_some_and(|r| r.outcome != GameDayOutcome::Completed);
                    self.goto(if aborted { Phase::Aborted } else { Phase::Done });
                }
            }
            GameDayEvent::DrObserved | GameDayEvent::Tick => {
                if let Some(alarm) = self.facts.stop_alarms_firing.first().cloned() {
                    self.stop_condition(&alarm);
                }
            }
        }
        self.advance();
    }

    fn goto(&mut self, phase: Phase) {
        self.gd.phase = phase;
        self.gd.phase_since = self.now;
    }

    fn notify(&mut self, severity: Severity, text: String) {
        self.actions.push(GameDayAction::Notify { severity, text });
    }

    fn elapsed_minutes(&self, since: DateTime<Utc>) -> i64 {
        (self.now - since).num_minutes()
    }

    /// Record what the DR document says, whatever the phase: the timeline is kept even
    /// when the game day only looks at it later.
    fn observe_dr(&mut self) {
        if !self.gd.inject_issued {
            // Before the injection the DR state is not the game day's doing.
            return;
        }
        let dr = &self.facts.dr;
        if dr.phase != DrPhase::Normal {
            self.gd.failover_seen = true;
            if self.gd.injected_at.is_none() {
                // The failover outran the injection's confirmation: the fault is on.
                self.gd.injected_at = Some(self.now);
            }
        }
        // Only a failover that began after this game day's start is its failover.
        let fresh = dr
            .failover
            .started_at
            .or(dr.failover.alarm_at)
            .is_some_and(|t| t >= self.gd.requested_at);
        if self.gd.failover_seen && fresh {
            self.gd.failover.merge(&dr.failover);
        }
        if dr.phase == DrPhase::FailedOver
            && self.gd.failover.done_at.is_none()
            && self.gd.failover_seen
        {
            self.gd.failover.done_at = Some(self.now);
        }
        if dr.phase == DrPhase::FailingBack {
            self.gd.failback_seen = true;
            if dr.failback.stages.len() >= self.gd.failback.stages.len() {
                self.gd.failback.stages = dr.failback.stages.clone();
            }
        }
        let requested = self.gd.failback_requested_at.is_some();
        if (self.gd.failback_seen || requested) && self.gd.failback_end.is_none() {
            match dr.phase {
                // Still FailedOver before the failback showed up: it has not begun.
                DrPhase::FailedOver if !self.gd.failback_seen => {}
                DrPhase::Normal | DrPhase::FailedOver => {
                    self.gd.failback_end = Some(FailbackEnd {
                        at: dr.failback.done_at.unwrap_or(self.now),
                        phase: dr.phase,
                        protected: dr.phase == DrPhase::Normal && dr.protected,
                    });
                }
                DrPhase::FailingOver | DrPhase::FailingBack => {}
            }
        }
    }

    fn stop_injection(&mut self) {
        if self.gd.inject_issued && !self.gd.injection_stopped {
            self.gd.injection_stopped = true;
            self.actions.push(GameDayAction::StopInjection {
                injection: self.gd.injection.clone(),
                experiment_id: self.gd.experiment_id.clone(),
            });
        }
    }

    fn start_failback(&mut self) {
        if self.gd.stop.is_some() || self.gd.failback_requested_at.is_some() {
            return;
        }
        self.gd.failback_requested_at = Some(self.now);
        self.goto(Phase::AwaitingFailback);
        if self.gd.failback_seen {
            // An operator started it already.
            return;
        }
        self.actions.push(GameDayAction::StartFailback);
        self.reply = "verified; failback started".into();
    }

    /// Start the failback once the primary region is ready (the failback function
    /// refuses otherwise); give up, and report, when it stays not ready too long.
    fn start_failback_when_healthy(&mut self) {
        if self.facts.primary_unhealthy.is_empty() {
            self.start_failback();
            return;
        }
        if self.elapsed_minutes(self.gd.phase_since) >= PRIMARY_RECOVERY_MINUTES {
            self.gd.abort_reason = Some(format!(
                "the primary region was not ready ({}) within {PRIMARY_RECOVERY_MINUTES} minutes of the failover, so no failback was started",
                self.facts.primary_unhealthy.join(", ")
            ));
            self.report();
        } else {
            self.reply = format!(
                "verified; waiting for the primary region before failing back: {}",
                self.facts.primary_unhealthy.join(", ")
            );
        }
    }

    fn stop_condition(&mut self, alarm: &str) {
        let phase = self.gd.phase.clone();
        match phase {
            Phase::Requested => {
                // Nothing was injected: end here, nothing to wait for.
                self.gd.stop = Some(StopRecord {
                    cause: alarm.to_string(),
                    at: self.now,
                    phase: phase.name().into(),
                    during_failback: false,
                });
                let report = self.build_report();
                self.gd.report = Some(report.clone());
                self.goto(Phase::Aborted);
                self.actions
                    .push(GameDayAction::WriteReport(Box::new(report)));
                self.reply = format!("aborted before the injection: {alarm} fired");
            }
            Phase::Injecting
            | Phase::AwaitingFailover
            | Phase::Verifying
            | Phase::AwaitingFailback => {
                self.gd.stop = Some(StopRecord {
                    cause: alarm.to_string(),
                    at: self.now,
                    phase: phase.name().into(),
                    during_failback: self.gd.failback_requested_at.is_some()
                        || self.gd.failback_seen,
                });
                self.stop_injection();
                self.goto(Phase::Stopping {
                    cause: alarm.to_string(),
                });
                self.notify(
                    Severity::Critical,
                    format!(
                        "Game day {}: stop-condition alarm {alarm} fired in {}. The injection is stopped; the game day ends once the DR state is consistent (no step is abandoned half-way).",
                        self.gd.id,
                        phase.name()
                    ),
                );
                self.reply = format!("stopping: {alarm} fired");
            }
            Phase::Stopping { .. } | Phase::Reporting | Phase::Done | Phase::Aborted => {}
        }
    }

    /// Move on as far as the facts allow.
    fn advance(&mut self) {
        let dr = self.facts.dr.phase;
        match self.gd.phase.clone() {
            Phase::Requested => {
                // Conditions may have changed since the command was accepted.
                let blocked = if dr != DrPhase::Normal {
                    Some(format!("the DR state became {dr}"))
                } else if self.facts.dr.cooldown_until.is_some_and(|u| u > self.now) {
                    Some("the DR state entered a cooldown".to_string())
                } else {
                    self.facts
                        .recovery_active
                        .as_ref()
                        .map(|r| format!("a point-in-time recovery started ({r})"))
                };
                if let Some(why) = blocked {
                    self.gd.abort_reason = Some(format!("{why} before the injection"));
                    let report = self.build_report();
                    self.gd.report = Some(report.clone());
                    self.goto(Phase::Aborted);
                    self.actions
                        .push(GameDayAction::WriteReport(Box::new(report)));
                    return;
                }
                self.gd.inject_issued = true;
                self.goto(Phase::Injecting);
                self.actions.push(GameDayAction::Inject {
                    injection: self.gd.injection.clone(),
                });
                self.reply = "injecting the fault".into();
            }
            Phase::Injecting => {
                if self.gd.failover_seen {
                    self.goto(Phase::AwaitingFailover);
                    self.advance();
                } else if self.elapsed_minutes(self.gd.phase_since) >= INJECTION_TIMEOUT_MINUTES {
                    self.gd.abort_reason = Some(format!(
                        "the injection was not confirmed within {INJECTION_TIMEOUT_MINUTES} minutes"
                    ));
                    self.stop_injection();
                    self.report();
                }
            }
            Phase::AwaitingFailover => match dr {
                DrPhase::Normal => {
                    if self.gd.failover_seen {
                        self.gd.abort_reason = Some(
                            "the failover was cancelled before it completed (the DR state returned to Normal)".into(),
                        );
                        self.stop_injection();
                        self.report();
                    } else if let Some(at) = self.gd.injected_at {
                        let limit = FAILOVER_START_MINUTES.max(2 * self.gd.rto_target_seconds / 60);
                        if self.elapsed_minutes(at) >= limit {
                            self.gd.abort_reason = Some(format!(
                                "no failover started within {limit} minutes of the injection: detection did not work"
                            ));
                            self.stop_injection();
                            self.report();
                        }
                    }
                }
                DrPhase::FailingOver => {}
                DrPhase::FailedOver => {
                    // The fault has done its job; the primary must heal for the failback.
                    self.stop_injection();
                    self.goto(Phase::Verifying);
                    self.actions.push(GameDayAction::Verify {
                        canary: self.gd.canary.clone(),
                    });
                    self.reply = "failed over; verifying the DR writer".into();
                }
                DrPhase::FailingBack => {
                    // An operator began the failback before the verification.
                    self.stop_injection();
                    self.start_failback();
                    if self.gd.phase == Phase::AwaitingFailback {
                        self.advance();
                    }
                }
            },
            Phase::Verifying => match dr {
                DrPhase::FailingBack => {
                    self.start_failback();
                    if self.gd.phase == Phase::AwaitingFailback {
                        self.advance();
                    }
                }
                DrPhase::Normal => self.report(),
                DrPhase::FailedOver | DrPhase::FailingOver => {
                    if self.gd.verification.is_some() {
                        // Verified; waiting for the primary to be healthy again.
                        self.start_failback_when_healthy();
                    } else if self.elapsed_minutes(self.gd.phase_since) >= VERIFY_TIMEOUT_MINUTES {
                        if self.facts.primary_unhealthy.is_empty() {
                            self.notify(
                                Severity::Warning,
                                format!(
                                    "Game day {}: no verification result within {VERIFY_TIMEOUT_MINUTES} minutes; failing back without it",
                                    self.gd.id
                                ),
                            );
                        }
                        self.start_failback_when_healthy();
                    }
                }
            },
            Phase::AwaitingFailback => {
                if self.gd.failback_end.is_some() {
                    self.report();
                } else if !self.gd.failback_seen
                    && self
                        .gd
                        .failback_requested_at
                        .is_some_and(|at| self.elapsed_minutes(at) >= FAILBACK_START_MINUTES)
                {
                    self.gd.abort_reason = Some(format!(
                        "the failback did not start within {FAILBACK_START_MINUTES} minutes of the request; the DR region still serves"
                    ));
                    self.report();
                }
            }
            Phase::Stopping { .. } => {
                let Some(stop) = self.gd.stop.clone() else {
                    return;
                };
                let consistent = if stop.during_failback {
                    // Wait for the failback to end: done, or rolled back; or never begun.
                    self.gd.failback_end.is_some()
                        || (dr == DrPhase::FailedOver
                            && !self.gd.failback_seen
                            && self.elapsed_minutes(stop.at) >= FAILBACK_START_MINUTES)
                } else {
                    match dr {
                        DrPhase::FailedOver => true,
                        DrPhase::Normal => {
                            self.gd.failover_seen
                                || self.elapsed_minutes(stop.at) >= STOP_SETTLE_MINUTES
                        }
                        DrPhase::FailingOver | DrPhase::FailingBack => false,
                    }
                };
                if consistent {
                    self.report();
                }
            }
            Phase::Reporting => {
                // A report whose write was not confirmed is written again (same key: the
                // write is idempotent).
                if let Some(report) = self.gd.report.clone()
                    && !self
                        .actions
                        .iter()
                        .any(|a| matches!(a, GameDayAction::WriteReport(_)))
                {
                    self.actions
                        .push(GameDayAction::WriteReport(Box::new(report)));
                }
            }
            Phase::Done | Phase::Aborted => {}
        }
    }

    /// Finish: build the report, enter Reporting, and ask for it to be written and sent.
    fn report(&mut self) {
        let report = self.build_report();
        self.gd.report = Some(report.clone());
        self.goto(Phase::Reporting);
        self.actions
            .push(GameDayAction::WriteReport(Box::new(report)));
        self.reply = "game day over; writing the report".into();
    }

    fn build_report(&self) -> GameDayReport {
        report::build(&self.gd, self.facts, self.now)
    }
}
