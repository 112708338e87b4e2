//! The executor of game days: load the plan's game day, read what the DR document, the
//! stop-condition alarms and past reports say, decide with [`super::step`], persist,
//! act, feed back what the actions found — until the game day waits (for the failover,
//! the failback, or the next tick).
//!
//! Exactly once: the game day is one item per plan, written conditionally on its
//! version. A decision's state is saved before its actions run, and only the invocation
//! whose save won performs them; a crash after the save leaves the injection and the
//! failback issued-but-unconfirmed, which the state machine never repeats (it times out
//! and reports instead), while the report is written again under the same key.

use super::verify::canary_row_id;
use super::{
    FAILBACK_START_MINUTES, GameDayAction, GameDayEvent, GameDayFacts, GameDayMode, GameDayReport,
    GameDayState, Injection, Verification, dr_facts, render_report, step,
};
use crate::dr::run::{Clock, DrDocument, DrError, dr_key};
use crate::error::{AwsError, Classify, Retry};
use crate::function::Invocation;
use crate::notify::{Notification, Notifier, Severity};
use crate::plan::{Canary, Plan};
use crate::report::{ReportSink, report_key};
use crate::state::{self, AuditEntry, Commit, MachineKey, Outcome, StateError, StateStore};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Rounds of decide-and-act per invocation, a bound against a loop that never settles.
const MAX_ROUNDS: usize = 16;

/// Where the plan's game day is kept in the state table.
pub fn game_day_key(plan: &Plan) -> MachineKey {
    MachineKey::new(&plan.name, "gameday")
}

/// The game-day port: the fault, the verification, the failback's start, and what the
/// game day reads of AWS besides the DR document.
#[async_trait]
pub trait GameDayPort: Send + Sync {
    /// The plan's stop-condition alarms that are in ALARM now. An alarm that cannot be
    /// read is reported as firing (named so): a game day does not go on blind.
    async fn stop_alarms_firing(&self, plan: &Plan) -> Vec<String>;
    /// Whether every replicated resource has its DR replica again.
    async fn protected(&self, plan: &Plan) -> Result<bool, AwsError>;
    /// What keeps the primary region from taking the writer back, as the failback
    /// function's own start checks it: health alarms not OK (or unreadable), and
    /// replicated databases whose primary region does not answer. The failback waits
    /// for none.
    async fn primary_not_ready(&self, plan: &Plan) -> Vec<String>;
    /// The reports of the plan's past game days, newest first, at most `limit`.
    async fn history(&self, plan: &Plan, limit: usize) -> Result<Vec<GameDayReport>, AwsError>;
    /// Inject the fault; the FIS experiment's id when one started.
    async fn inject(
        &self,
        plan: &Plan,
        game_day: &str,
        injection: &Injection,
    ) -> Result<Option<String>, AwsError>;
    /// Stop the fault.
    async fn stop_injection(
        &self,
        plan: &Plan,
        game_day: &str,
        injection: &Injection,
        experiment_id: Option<&str>,
    ) -> Result<(), AwsError>;
    /// Verify the DR writer (and write and read the canary's row `canary_row`). Never
    /// fails: what went wrong is the verification's finding.
    async fn verify(&self, plan: &Plan, canary: Option<&Canary>, canary_row: &str) -> Verification;
    /// Start the staged failback (the failback function's `start`, invoked
    /// asynchronously). `Ok(false)`: the request went out but was not acknowledged in
    /// time (the game day follows the DR state either way).
    async fn start_failback(&self, plan: &Plan, game_day: &str) -> Result<bool, AwsError>;
}

/// The DR commands a game day gives as the operator of a real incident would.
#[async_trait]
pub trait DrCommands: Send + Sync {
    /// End the failover's cooldown (the failover function's `ack`): the game day
    /// acknowledges the incident it caused once the DR writer is verified, because the
    /// failback does not start during a cooldown. No cooldown running is success.
    async fn acknowledge(&self, invocation: &Invocation) -> Result<(), DrError>;
}

/// What the failover function hands the game-day executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GameDayInput {
    /// `{"action": "game-day", ...}`.
    Start(GameDayCommand),
    /// `{"action": "game-day-status"}`: the current (or last) game day, nothing changed.
    Status,
    /// The DR document may have changed (any other event of the failover function, ticks
    /// included).
    DrObserved,
}

/// `{"action": "game-day", "mode": "fis" | "signal_only", "id": ..., "who": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameDayCommand {
    /// Always `game-day`.
    pub action: String,
    /// The injection; absent: the plan's `game_days.injection`.
    #[serde(default)]
    pub mode: Option<GameDayMode>,
    /// The game day's id; absent: the invocation's request id (the same across Lambda's
    /// retries of one asynchronous invocation, so a retry is recognised).
    #[serde(default)]
    pub id: Option<String>,
    /// Who starts it, for the report; absent: `operator`.
    #[serde(default)]
    pub who: Option<String>,
}

/// Whether a payload is a game-day command, parsed. `Ok(None)`: it is not one;
/// `Err`: it names a game-day action but is malformed (nothing is done).
pub fn parse_command(payload: &serde_json::Value) -> Result<Option<GameDayInput>, String> {
    let action = payload
        .as_object()
        .and_then(|m| m.get("action"))
        .and_then(|a| a.as_str());
    match action {
        Some("game-day") => {}
        Some("game-day-status") => {
            let extra: Vec<&String> = payload
                .as_object()
                .map(|m| m.keys().filter(|k| *k != "action").collect())
                .unwrap_or_default();
            if let Some(k) = extra.first() {
                return Err(format!(
                    "the \"game-day-status\" command takes no {k:?}: send {{\"action\": \"game-day-status\"}}"
                ));
            }
            return Ok(Some(GameDayInput::Status));
        }
        _ => return Ok(None),
    }
    let command: GameDayCommand = crate::request::from_object(
        payload,
        "the \"game-day\" command",
        |v| serde_path_to_error::deserialize(v),
    )
    .map_err(|e| match e {
        crate::request::ReadError::Shape(e) => e.to_string(),
        crate::request::ReadError::Fit(e) => {
            let path = e.path().to_string();
            format!(
                "the \"game-day\" command at {}: {}; see events/game-day.json and the README's runbook \"Run a game day\"",
                if path == "." { "top level".into() } else { path },
                e.inner()
            )
        }
    })?;
    // The id names the report's S3 key and is the FIS experiment's client token: plain
    // characters only, so it cannot read as a path or hide what it says.
    if let Some(id) = &command.id
        && (id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
            || id.starts_with('.'))
    {
        return Err(format!(
            "the \"game-day\" command's id {id:?} must be 1 to 64 characters of A-Z, a-z, 0-9, - _ . : not starting with a dot (it names the report and the FIS experiment's client token)"
        ));
    }
    Ok(Some(GameDayInput::Start(command)))
}

/// Why a game-day invocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GameDayRunError {
    /// The game day was refused; nothing changed.
    #[error("refused: {0}")]
    Refused(String),
    /// The state table failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// AWS could not be read before deciding; nothing was changed.
    #[error("{0}; nothing was changed, try again")]
    Aws(AwsError),
}

impl Classify for GameDayRunError {
    fn retry(&self) -> Retry {
        match self {
            GameDayRunError::Refused(_) => Retry::NonRetryable,
            GameDayRunError::State(e) => e.retry(),
            GameDayRunError::Aws(e) => e.retry(),
        }
    }
}

/// The answer to a game-day command, status request or observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameDayReply {
    /// The plan.
    pub plan: String,
    /// What each round of this invocation said.
    pub steps: Vec<String>,
    /// The plan's current (or last) game day.
    pub game_day: Option<super::GameDay>,
    /// Where the report went, when this invocation wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// Everything the game-day executor needs.
pub struct GameDayRun<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// CloudWatch, FIS, the probe, the failback function.
    pub port: &'a dyn GameDayPort,
    /// The failover function's own commands (the incident's acknowledgement).
    pub dr: &'a dyn DrCommands,
    /// The state table.
    pub state: &'a dyn StateStore,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Reports.
    pub reports: &'a dyn ReportSink,
    /// Time.
    pub clock: &'a dyn Clock,
}

/// A report's key: fixed by the game day's id and start, so writing it again replaces it.
pub fn game_day_report_key(report: &GameDayReport) -> String {
    report_key(
        &report.plan,
        "gameday",
        &report.game_day,
        report.requested_at,
    )
}

fn action_name(action: &GameDayAction) -> &'static str {
    match action {
        GameDayAction::Inject { .. } => "gameday.inject",
        GameDayAction::StopInjection { .. } => "gameday.stop-injection",
        GameDayAction::Verify { .. } => "gameday.verify",
        GameDayAction::StartFailback => "gameday.start-failback",
        GameDayAction::Notify { .. } => "gameday.notify",
        GameDayAction::WriteReport(_) => "gameday.report",
    }
}

/// Who acts, in the audit trail: the trigger, the audited action, the game day.
struct Acting<'s> {
    trigger: &'s str,
    action: &'static str,
    game_day: &'s str,
}

/// The first sentence of `text`, as a notification's subject.
fn subject_of(text: &str) -> String {
    let first = text.split(". ").next().unwrap_or(text);
    first.trim_end_matches('.').chars().take(90).collect()
}

impl GameDayRun<'_> {
    /// An entry of the game day's timeline.
    fn entry(
        &self,
        at: &Acting<'_>,
        outcome: Outcome,
        detail: String,
        extra: serde_json::Value,
    ) -> AuditEntry {
        let mut data = serde_json::json!({"game_day": at.game_day});
        if let (Some(d), serde_json::Value::Object(more)) = (data.as_object_mut(), extra) {
            d.extend(more);
        }
        AuditEntry {
            at: self.clock.now(),
            function: "failover".into(),
            trigger: at.trigger.into(),
            action: at.action.into(),
            resource: None,
            outcome,
            detail,
            data,
        }
    }

    /// A step that went wrong in a way a person must know of: audited and notified;
    /// returns the text, for the reply.
    async fn alert(
        &self,
        audit: &mut Vec<AuditEntry>,
        at: &Acting<'_>,
        outcome: Outcome,
        severity: Severity,
        subject: String,
        text: String,
    ) -> String {
        audit.push(self.entry(at, outcome, text.clone(), serde_json::Value::Null));
        self.notify(severity, subject, text.clone()).await;
        text
    }

    async fn notify(&self, severity: Severity, subject: String, body: String) {
        let n = Notification {
            plan: self.plan.name.clone(),
            severity,
            subject,
            body,
            details: serde_json::Value::Null,
        };
        if let Err(e) = self.notifier.notify(&n).await {
            tracing::warn!(error = %e, "notification not sent");
        }
    }

    /// What a step reads. `history` holds the past reports once read: they do not change
    /// while this invocation runs, so its rounds read them once.
    async fn facts(
        &self,
        state: &GameDayState,
        history: &mut Option<Vec<GameDayReport>>,
    ) -> Result<GameDayFacts, GameDayRunError> {
        let doc = state::load::<DrDocument>(self.state, &dr_key(self.plan))
            .await?
            .map(|v| v.value)
            .unwrap_or_default();
        let active = state.current.as_ref().filter(|g| !g.phase.is_terminal());
        // Protection matters only once the failback may have ended; it costs a look at
        // every DR database, so it is asked for then alone.
        let dr_phase = crate::dr::DrPhase::of(&doc.state);
        let protected = if dr_phase == crate::dr::DrPhase::Normal
            && active.is_some_and(|g| g.failback_requested_at.is_some() || g.failback_seen)
        {
            self.port
                .protected(self.plan)
                .await
                .map_err(GameDayRunError::Aws)?
        } else {
            false
        };
        let past = match (active, history.as_ref()) {
            (Some(_), Some(read)) => read.clone(),
            (Some(g), None) => {
                let read = match self.port.history(self.plan, g.trend_size).await {
                    Ok(h) => h,
                    Err(e) => {
                        // The trend is a comparison, not a safety input: the game day goes
                        // on and its report covers what could be read.
                        tracing::warn!(error = %e, "past game-day reports not read");
                        Vec::new()
                    }
                };
                *history = Some(read.clone());
                read
            }
            (None, _) => Vec::new(),
        };
        Ok(GameDayFacts {
            dr: dr_facts(&doc.state, protected),
            recovery_active: doc
                .recoveries
                .recoveries
                .iter()
                .find(|r| r.phase.active())
                .map(|r| r.id.clone()),
            stop_alarms_firing: self.port.stop_alarms_firing(self.plan).await,
            history: past,
            primary_unhealthy: if active.is_some() {
                self.port.primary_not_ready(self.plan).await
            } else {
                Vec::new()
            },
        })
    }

    /// Handle a game-day command, or an observation that moves a running game day on
    /// (one read when none runs).
    pub async fn handle(
        &self,
        input: GameDayInput,
        invocation: &Invocation,
    ) -> Result<GameDayReply, GameDayRunError> {
        let key = game_day_key(self.plan);
        let (first, trigger) = match input {
            GameDayInput::Status => {
                let current = state::load::<GameDayState>(self.state, &key)
                    .await?
                    .and_then(|v| v.value.current);
                let said = match &current {
                    Some(g) => format!("game day {}: {}", g.id, g.phase.name()),
                    None => "no game day has been run on this plan".into(),
                };
                return Ok(GameDayReply {
                    plan: self.plan.name.clone(),
                    steps: vec![said],
                    game_day: current,
                    report: None,
                });
            }
            GameDayInput::DrObserved => {
                let running = state::load::<GameDayState>(self.state, &key)
                    .await?
                    .and_then(|v| v.value.current)
                    .is_some_and(|g| !g.phase.is_terminal());
                if !running {
                    return Ok(GameDayReply {
                        plan: self.plan.name.clone(),
                        steps: vec![],
                        game_day: None,
                        report: None,
                    });
                }
                (GameDayEvent::DrObserved, "dr observed".to_string())
            }
            GameDayInput::Start(c) => {
                let who = c.who.unwrap_or_else(|| "operator".into());
                let id = c.id.unwrap_or_else(|| invocation.request_id.clone());
                (
                    GameDayEvent::Start {
                        id,
                        mode: c.mode,
                        who: who.clone(),
                    },
                    format!("game-day command from {who}"),
                )
            }
        };
        let mut queue = VecDeque::from([first]);
        let mut history = None;
        let mut steps = Vec::new();
        let mut report_uri = None;
        let mut current = None;
        let mut pending: Vec<AuditEntry> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let Some(event) = queue.pop_front() else {
                break;
            };
            let stored = state::load::<GameDayState>(self.state, &key).await?;
            let (version, game_days) = match stored {
                Some(v) => (Some(v.version), v.value),
                None => (None, GameDayState::default()),
            };
            current = game_days.current.clone();
            let facts = self.facts(&game_days, &mut history).await?;
            let now = self.clock.now();
            let decision = step(&game_days, &event, self.plan, &facts, now);
            if let Some(refusal) = decision.refusal {
                let at = Acting {
                    trigger: &trigger,
                    action: "gameday.refused",
                    game_day: match &event {
                        GameDayEvent::Start { id, .. } => id,
                        _ => "",
                    },
                };
                // The outcomes of earlier rounds' actions are written, or the invocation
                // fails saying so (their intents are in the timeline).
                if !pending.is_empty() {
                    state::append(
                        self.state,
                        &self.plan.name,
                        std::mem::take(&mut pending),
                        now,
                    )
                    .await?;
                }
                let refused = self.entry(
                    &at,
                    Outcome::Refused,
                    refusal.to_string(),
                    serde_json::Value::Null,
                );
                state::record_refusal(self.state, &self.plan.name, refused).await;
                return Err(GameDayRunError::Refused(refusal.to_string()));
            }
            let game_day = decision
                .state
                .current
                .as_ref()
                .map(|g| g.id.clone())
                .unwrap_or_default();
            // The outcomes of the last round's actions and the intent of this round's go
            // with this round's state change: no action without its entry.
            let intents: Vec<AuditEntry> = decision
                .actions
                .iter()
                .filter(|a| !matches!(a, GameDayAction::Notify { .. }))
                .map(|a| {
                    let at = Acting {
                        trigger: &trigger,
                        action: action_name(a),
                        game_day: &game_day,
                    };
                    self.entry(
                        &at,
                        Outcome::Intended,
                        format!("{} about to be taken", action_name(a)),
                        serde_json::Value::Null,
                    )
                })
                .collect();
            let commit = if decision.state != game_days {
                Commit::write(&key, &decision.state, version, now)?
            } else {
                Commit::check(&key, version, now)
            }
            .recording(pending.iter().cloned())
            .recording(intents);
            if !commit.is_empty() {
                match commit.send(self.state).await {
                    Ok(_) => pending.clear(),
                    Err(StateError::Conflict { .. }) => {
                        // Another invocation moved the game day: decide again on what it
                        // wrote (its actions are its own to perform).
                        steps.push(
                            "the game day changed under this invocation; reading it again".into(),
                        );
                        queue.push_front(event);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            current = decision.state.current.clone();
            steps.push(decision.reply.clone());
            for action in &decision.actions {
                if let Some(found) = self
                    .perform(
                        action,
                        &game_day,
                        &trigger,
                        invocation,
                        &mut steps,
                        &mut report_uri,
                        &mut pending,
                    )
                    .await
                {
                    queue.push_back(found);
                }
            }
            if decision.next == crate::dr::Next::Continue && queue.is_empty() {
                queue.push_back(GameDayEvent::Tick);
            }
        }
        // Outcomes no later round committed: written now, or the invocation fails saying
        // so (their intents are in the timeline).
        if !pending.is_empty() {
            state::append(self.state, &self.plan.name, pending, self.clock.now()).await?;
        }
        Ok(GameDayReply {
            plan: self.plan.name.clone(),
            steps,
            game_day: current,
            report: report_uri,
        })
    }

    /// Perform one action; what it found, as the event to step with next (its outcome
    /// entry goes to `audit`, committed with the next state change).
    #[allow(clippy::too_many_arguments)]
    async fn perform(
        &self,
        action: &GameDayAction,
        game_day: &str,
        trigger: &str,
        invocation: &Invocation,
        steps: &mut Vec<String>,
        report_uri: &mut Option<String>,
        audit: &mut Vec<AuditEntry>,
    ) -> Option<GameDayEvent> {
        let at = Acting {
            trigger,
            action: action_name(action),
            game_day,
        };
        match action {
            GameDayAction::Notify { severity, text } => {
                audit.push(self.entry(
                    &at,
                    Outcome::Succeeded,
                    text.clone(),
                    serde_json::Value::Null,
                ));
                self.notify(*severity, subject_of(text), text.clone()).await;
                None
            }
            GameDayAction::Inject { injection } => {
                match self.port.inject(self.plan, game_day, injection).await {
                    Ok(experiment_id) => {
                        let detail = format!(
                            "{} injection started{}",
                            injection.mode(),
                            experiment_id
                                .as_ref()
                                .map(|e| format!(": FIS experiment {e}"))
                                .unwrap_or_default()
                        );
                        let data = serde_json::json!({"experiment_id": experiment_id});
                        audit.push(self.entry(&at, Outcome::Started, detail, data));
                        Some(GameDayEvent::InjectionStarted { experiment_id })
                    }
                    Err(e) => {
                        let detail = format!("{} injection failed: {e}", injection.mode());
                        audit.push(self.entry(
                            &at,
                            Outcome::Failed,
                            detail,
                            serde_json::Value::Null,
                        ));
                        steps.push(format!("the injection failed: {e}"));
                        Some(GameDayEvent::InjectionFailed {
                            reason: e.to_string(),
                        })
                    }
                }
            }
            GameDayAction::StopInjection {
                injection,
                experiment_id,
            } => {
                let result = self
                    .port
                    .stop_injection(self.plan, game_day, injection, experiment_id.as_deref())
                    .await;
                match result {
                    Ok(()) => {
                        let detail = format!("{} injection stopped", injection.mode());
                        let data = serde_json::json!({"experiment_id": experiment_id});
                        audit.push(self.entry(&at, Outcome::Succeeded, detail, data));
                    }
                    Err(e) => {
                        // The state says stopped: it is not issued again. A person must
                        // end the fault, so the notification says how.
                        let how = match (injection, experiment_id) {
                            (Injection::Fis { .. }, Some(id)) => format!(
                                "stop it: `aws fis stop-experiment --id {id}` in {}",
                                self.plan.regions.primary
                            ),
                            (Injection::Fis { .. }, None) => {
                                "stop the game day's FIS experiment in the FIS console".into()
                            }
                            (Injection::SignalOnly { .. }, _) => {
                                "set the health alarms back to OK: `aws cloudwatch set-alarm-state --state-value OK ...` (CloudWatch also re-evaluates them at their next period)".into()
                            }
                        };
                        let text = format!(
                            "Game day {game_day}: the injection could not be stopped: {e}. {how}."
                        );
                        let subject = format!("game day {game_day}: the fault is still on");
                        steps.push(
                            self.alert(
                                audit,
                                &at,
                                Outcome::Failed,
                                Severity::Critical,
                                subject,
                                text,
                            )
                            .await,
                        );
                    }
                }
                None
            }
            GameDayAction::Verify { canary } => {
                let row = canary_row_id(game_day, self.clock.now().timestamp_millis());
                let v = self.port.verify(self.plan, canary.as_ref(), &row).await;
                let outcome = if v.passed() {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                };
                let data = serde_json::json!({"canary": v.canary});
                audit.push(self.entry(&at, outcome, v.detail.clone(), data));
                Some(GameDayEvent::Verified(v))
            }
            GameDayAction::StartFailback => {
                let started = match self.dr.acknowledge(invocation).await {
                    Ok(()) => self
                        .port
                        .start_failback(self.plan, game_day)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!(
                        "the incident could not be acknowledged (the cooldown blocks the failback): {e}"
                    )),
                };
                match started {
                    Ok(true) => {
                        let detail = "the staged failback was asked to start".to_string();
                        audit.push(self.entry(
                            &at,
                            Outcome::Started,
                            detail,
                            serde_json::Value::Null,
                        ));
                    }
                    Ok(false) => {
                        let text = format!(
                            "Game day {game_day}: the failback function was asked to start but did not acknowledge in time; the game day follows the DR state and reports if no failback begins within {FAILBACK_START_MINUTES} minutes."
                        );
                        let subject = format!("game day {game_day}: failback start unconfirmed");
                        steps.push(
                            self.alert(
                                audit,
                                &at,
                                Outcome::Started,
                                Severity::Warning,
                                subject,
                                text,
                            )
                            .await,
                        );
                    }
                    Err(e) => {
                        let text = format!(
                            "Game day {game_day}: the failback could not be started: {e}. Start it yourself: {{\"action\": \"ack\"}} to the failover function, then {{\"action\": \"start\"}} to the failback function; the game day follows it."
                        );
                        let subject = format!("game day {game_day}: failback not started");
                        steps.push(
                            self.alert(
                                audit,
                                &at,
                                Outcome::Failed,
                                Severity::Critical,
                                subject,
                                text,
                            )
                            .await,
                        );
                    }
                }
                None
            }
            GameDayAction::WriteReport(report) => {
                let body = match serde_json::to_value(report.as_ref()) {
                    Ok(b) => b,
                    Err(e) => {
                        steps.push(format!("the report could not be serialised: {e}"));
                        return None;
                    }
                };
                let key = game_day_report_key(report);
                match self.reports.put_report(&key, &body).await {
                    Ok(uri) => {
                        let text = render_report(report).join("\n");
                        let held = if report.hypothesis.held() {
                            "hypothesis held"
                        } else {
                            "hypothesis NOT held"
                        };
                        self.notify(
                            report.severity(),
                            format!("game day {}: {held}", report.game_day),
                            format!("{text}\n\nReport: {uri}"),
                        )
                        .await;
                        let data = serde_json::json!({"report": uri});
                        audit.push(self.entry(
                            &at,
                            Outcome::Succeeded,
                            format!("report written to {uri}"),
                            data,
                        ));
                        *report_uri = Some(uri);
                        Some(GameDayEvent::ReportWritten)
                    }
                    Err(e) => {
                        // Not confirmed: the Reporting phase asks for it again next tick.
                        steps.push(format!(
                            "the report was not written (the next tick retries): {e}"
                        ));
                        None
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
