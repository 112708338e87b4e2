//! The plan's DR state: one persisted state machine that failover and failback share.
//!
//! [`DrState`] says where the writer is and what is in progress. It is both the state
//! machine and the single-writer lock: failover and failback act on it only through
//! versioned conditional writes ([`run`]), so the two can never run at once, and neither
//! can start twice.

pub mod run;

use crate::failback::Failback;
use crate::failover::{FailedOver, Failover};
use crate::notify::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A region of the plan, relative to the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The plan's primary region.
    Primary,
    /// The plan's DR region.
    Dr,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Primary => Side::Dr,
            Side::Dr => Side::Primary,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Primary => "primary",
            Side::Dr => "DR",
        })
    }
}

/// The plan's DR state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase")]
pub enum DrState {
    /// The primary region serves; the DR replicas replicate.
    Normal {
        /// Until when alarms only notify (after a failover or failback).
        #[serde(default)]
        cooldown_until: Option<DateTime<Utc>>,
        /// The last incident, for status.
        #[serde(default)]
        last: Option<String>,
    },
    /// A failover is under way.
    FailingOver(Failover),
    /// The DR region serves.
    FailedOver(FailedOver),
    /// A failback is under way.
    FailingBack(Failback),
}

impl Default for DrState {
    fn default() -> Self {
        DrState::Normal {
            cooldown_until: None,
            last: None,
        }
    }
}

impl DrState {
    /// The phase in a word, for status and metrics.
    pub fn phase(&self) -> String {
        match self {
            DrState::Normal { .. } => "Normal".into(),
            DrState::FailingOver(f) => format!("FailingOver/{}", f.step),
            DrState::FailedOver(_) => "FailedOver".into(),
            DrState::FailingBack(f) => format!(
                "FailingBack/{}{}",
                f.step,
                if f.paused.is_some() { " (paused)" } else { "" }
            ),
        }
    }

    /// The phase as a number, for the `DrPhase` metric: 0 Normal, 1 failing over, 2
    /// failed over, 3 failing back.
    pub fn phase_number(&self) -> f64 {
        match self {
            DrState::Normal { .. } => 0.0,
            DrState::FailingOver(_) => 1.0,
            DrState::FailedOver(_) => 2.0,
            DrState::FailingBack(_) => 3.0,
        }
    }

    /// Until when alarms only notify.
    pub fn cooldown_until(&self) -> Option<DateTime<Utc>> {
        match self {
            DrState::Normal { cooldown_until, .. } => *cooldown_until,
            DrState::FailedOver(f) => f.cooldown_until,
            DrState::FailingOver(_) | DrState::FailingBack(_) => None,
        }
    }
}

/// The application traffic records as read back from Route 53.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrafficFacts {
    /// Percent of traffic the weighted records send to the primary region, when every
    /// record could be read and they agree.
    pub primary_percent: Option<u32>,
    /// The state of the last weight change, when one is given.
    pub change: Option<crate::failover::ChangeState>,
}

/// A weight change of the application traffic records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficProgress {
    /// Percent sent to the primary region.
    pub primary_percent: u32,
    /// The Route 53 change.
    pub change: String,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// When it was first seen INSYNC.
    #[serde(default)]
    pub synced_at: Option<DateTime<Utc>>,
}

/// A message for operators and the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// How urgent.
    pub severity: Severity,
    /// The audited action, e.g. `failover.promote`.
    pub action: String,
    /// One line.
    pub subject: String,
    /// Sentences.
    pub detail: String,
    /// What the decision was based on, for the audit entry (e.g. what each detection
    /// signal said); `null` when there is nothing more than the sentences.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

/// How the executor should go on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Next {
    /// Decide again at once (a step completed; the next can start).
    Continue,
    /// Look again after a short wait (promotion, DNS sync), polled inside the invocation
    /// while its deadline allows.
    Poll,
    /// Nothing more until the next event (a tick, a command, an alarm).
    Stop,
}

/// The outcome of one step of a DR state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision<A> {
    /// The next state.
    pub state: DrState,
    /// What to do in AWS.
    pub actions: Vec<A>,
    /// What to tell people and record.
    pub notes: Vec<Note>,
    /// How to go on.
    pub next: Next,
    /// The answer to the caller, in a sentence.
    pub reply: String,
    /// Whether the input was refused (a command that cannot apply now, or a guard).
    pub refused: bool,
}

/// Every decision is built the same way: a constructor says where the machine goes and
/// how the executor goes on, then `acting`, `note` and `with_data` add what to do and what
/// to record.
impl<A> Decision<A> {
    /// Move to `state` and stop there until the next event.
    pub fn stop(state: DrState, reply: impl Into<String>) -> Self {
        Decision {
            state,
            actions: vec![],
            notes: vec![],
            next: Next::Stop,
            reply: reply.into(),
            refused: false,
        }
    }

    /// Move to `state` and decide again at once: the step is done, the next can start.
    pub fn then(state: DrState, reply: impl Into<String>) -> Self {
        Decision {
            next: Next::Continue,
            ..Decision::stop(state, reply)
        }
    }

    /// Move to `state` and look again after a short wait: AWS is still working (a
    /// promotion, a DNS change), and the invocation polls while its deadline allows.
    pub fn poll(state: DrState, reply: impl Into<String>) -> Self {
        Decision {
            next: Next::Poll,
            ..Decision::stop(state, reply)
        }
    }

    /// Stay in `state`, and say so.
    pub fn keep(state: &DrState, reply: impl Into<String>) -> Self {
        Decision::stop(state.clone(), reply)
    }

    /// Refuse the input; nothing changes.
    pub fn refuse(state: &DrState, reply: impl Into<String>) -> Self {
        Decision::keep(state, reply).refusing()
    }

    /// The input is refused although the state records something (why it waits): the
    /// caller hears a refusal, the machine remembers what it saw.
    pub fn refusing(mut self) -> Self {
        self.refused = true;
        self
    }

    /// With these actions.
    pub fn acting(mut self, actions: Vec<A>) -> Self {
        self.actions = actions;
        self
    }

    /// With a note for operators and the timeline.
    pub fn note(
        mut self,
        severity: Severity,
        action: &str,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        self.notes.push(Note {
            severity,
            action: action.into(),
            subject: subject.into(),
            detail: detail.into(),
            data: serde_json::Value::Null,
        });
        self
    }

    /// With `data` on the last note (its audit entry carries it).
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        if let Some(last) = self.notes.last_mut() {
            last.data = data;
        }
        self
    }
}

/// The DR state's phase in a word: what the single-writer lock of point-in-time
/// recoveries and the game days read of the DR state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DrPhase {
    /// No failover or failback; the primary region serves.
    Normal,
    /// A failover is under way.
    FailingOver,
    /// The DR region serves.
    FailedOver,
    /// A failback is under way.
    FailingBack,
}

impl DrPhase {
    /// The phase of a DR state.
    pub fn of(state: &DrState) -> DrPhase {
        match state {
            DrState::Normal { .. } => DrPhase::Normal,
            DrState::FailingOver(_) => DrPhase::FailingOver,
            DrState::FailedOver(_) => DrPhase::FailedOver,
            DrState::FailingBack(_) => DrPhase::FailingBack,
        }
    }
}

impl fmt::Display for DrPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
