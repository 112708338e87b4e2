//! Operator commands that act at most once per `command_id`.
//!
//! A command sent twice is two invocations with two request ids: the AWS CLI resends a
//! request whose answer is late, and an operator re-runs a command whose answer never
//! came. So every command that changes something takes an optional `command_id`, chosen
//! by the sender: the first invocation with it claims `command/<function>/<id>` through
//! [`state::claim_event`] and acts; a repeat with the same request gets the first
//! answer without acting (waiting for it while the first is still running); a different
//! request with the same id is refused. An invocation that fails gives the claim up, so
//! the same command can be sent again once the cause is fixed.

use crate::error::{Classify, Retry};
use crate::function::Invocation;
use crate::routing::Function;
use crate::state::{self, EventClaim, StateError, StateStore};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// The request field that carries the command id.
pub const FIELD: &str = "command_id";

/// Longest command id, in characters: room for a ticket number and a verb, or a UUID.
pub const MAX_LEN: usize = 128;

/// How long a command's answer is kept for repeats (and its claim's DynamoDB TTL): past
/// any CLI retry or re-run during one incident.
pub const KEPT_HOURS: i64 = 24;

/// How long before its own deadline an invocation waiting for another one's answer
/// gives up, so that it can still say so.
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// Longest pause between two looks at a claim held by another invocation.
const MAX_POLL: Duration = Duration::from_secs(2);

/// A valid command id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandId(String);

impl CommandId {
    /// `value` as a command id: a string of 1 to [`MAX_LEN`] visible characters.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let Value::String(text) = value else {
            return Err(format!(
                "is {}, not a string",
                crate::request::JsonKind::of(value)
            ));
        };
        let len = text.chars().count();
        if len > MAX_LEN {
            return Err(format!("is {len} characters long"));
        }
        if !crate::request::is_visible_token(text) {
            return Err(if text.is_empty() {
                "is empty".to_string()
            } else {
                format!("is {text:?}, with a blank or invisible character")
            });
        }
        Ok(CommandId(text.clone()))
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The idempotency key it claims for `function`.
    pub fn key(&self, function: Function) -> String {
        format!("command/{function}/{}", self.0)
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A command that was refused, or whose first run could not be waited for or recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The `command_id` is not one.
    #[error(
        "the {function} function's `command_id` {problem}: nothing was done. Give 1-{MAX_LEN} visible characters (no blanks), e.g. \"INC-1234-approve\" or a UUID"
    )]
    BadId {
        /// The function.
        function: Function,
        /// What is wrong with it.
        problem: String,
    },
    /// A `command_id` on a request that changes nothing (a status, an AWS event).
    #[error(
        "the {function} function takes `command_id` only with a command that changes something ({takes}); this request changes nothing or is an AWS event: send it without `command_id`. Nothing was done"
    )]
    NotACommand {
        /// The function.
        function: Function,
        /// The commands that take one, in words.
        takes: String,
    },
    /// The id was used before for a different request.
    #[error(
        "command_id {id:?} was already used for a different command to the {function} function: nothing was done. Give each command its own command_id; repeat one only with the very same command"
    )]
    Reused {
        /// The function.
        function: Function,
        /// The id.
        id: String,
    },
    /// Another invocation is still carrying the command out.
    #[error(
        "command {id:?} is still being carried out by another invocation of the {function} function (its claim holds until {until} at the latest); nothing was done here. Send the same command with the same command_id again for its answer"
    )]
    StillRunning {
        /// The function.
        function: Function,
        /// The id.
        id: String,
        /// When the other invocation's claim lapses.
        until: DateTime<Utc>,
    },
    /// The state table failed while claiming the id.
    #[error("the {function} function could not claim command {id:?}, so did nothing: {source}")]
    State {
        /// The function.
        function: Function,
        /// The id.
        id: String,
        /// What failed.
        source: Box<StateError>,
    },
    /// The answer is not JSON (a bug).
    #[error("the {function} function's answer could not be serialised: {reason}")]
    Answer {
        /// The function.
        function: Function,
        /// Why.
        reason: String,
    },
}

impl Classify for CommandError {
    fn retry(&self) -> Retry {
        match self {
            CommandError::BadId { .. }
            | CommandError::NotACommand { .. }
            | CommandError::Reused { .. }
            | CommandError::Answer { .. } => Retry::NonRetryable,
            CommandError::StillRunning { .. } => Retry::Retryable,
            CommandError::State { source, .. } => source.retry(),
        }
    }
}

/// How a request through [`Commands::run`] failed: refused (or not waited for) by the
/// command layer, or by the function's handler.
#[derive(Debug)]
pub enum Failed<E> {
    /// The command layer.
    Command(CommandError),
    /// The handler.
    Handler(E),
}

impl<E: fmt::Display> fmt::Display for Failed<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Command(e) => e.fmt(f),
            Failed::Handler(e) => e.fmt(f),
        }
    }
}

impl<E: Classify> Classify for Failed<E> {
    fn retry(&self) -> Retry {
        match self {
            Failed::Command(e) => e.retry(),
            Failed::Handler(e) => e.retry(),
        }
    }
}

/// Take the `command_id` out of `request` (a JSON object; anything else has none), so
/// that the function's own parser reads the command without it. Refused when it is not
/// a valid id, or when the request is not a command that changes something.
pub fn take_id(function: Function, request: &mut Value) -> Result<Option<CommandId>, CommandError> {
    let Some(object) = request.as_object_mut() else {
        return Ok(None);
    };
    let Some(value) = object.remove(FIELD) else {
        return Ok(None);
    };
    let id =
        CommandId::parse(&value).map_err(|problem| CommandError::BadId { function, problem })?;
    if !crate::routing::changes_state(function, object) {
        return Err(CommandError::NotACommand {
            function,
            takes: takes(function),
        });
    }
    Ok(Some(id))
}

/// The commands of `function` that take a command id, in words.
fn takes(function: Function) -> String {
    match function {
        Function::Snapshot => "a request to snapshot now, {\"resources\": [...]}".into(),
        Function::Retention => "an operator's run, {} or {\"dry_run\": ...}".into(),
        Function::RestoreValidator => "a request to validate now, {\"resource\": \"...\"}".into(),
        Function::Readiness => "none: the readiness report changes nothing".into(),
        Function::Failover | Function::Failback | Function::Recovery => function
            .commands()
            .iter()
            .map(|a| format!("{{\"action\": {a:?}}}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The command layer of one function: its plan's state table holds the claims.
#[derive(Clone, Copy)]
pub struct Commands<'a> {
    /// The function.
    pub function: Function,
    /// The plan, whose claims these are.
    pub plan: &'a str,
    /// The state table.
    pub state: &'a dyn StateStore,
}

impl Commands<'_> {
    /// Hand `request` to `handler`, at most once per command id: without one, as it is;
    /// with one, the first invocation acts and records its answer, a repeat of the same
    /// request gets that answer (waiting for it while the first runs, up to its own
    /// deadline), a different request with the same id is refused. A handler's error
    /// gives the claim up.
    pub async fn run<F, Fut, R, E>(
        &self,
        mut request: Value,
        invocation: Invocation,
        handler: &F,
    ) -> Result<Value, Failed<E>>
    where
        F: Fn(Value, Invocation) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        R: serde::Serialize,
    {
        let sent = request.clone();
        let Some(id) = take_id(self.function, &mut request).map_err(Failed::Command)? else {
            let answer = handler(request, invocation)
                .await
                .map_err(Failed::Handler)?;
            return self.json(&answer).map_err(Failed::Command);
        };
        let refused = |source: StateError| match source {
            StateError::PayloadMismatch { .. } => CommandError::Reused {
                function: self.function,
                id: id.to_string(),
            },
            source => CommandError::State {
                function: self.function,
                id: id.to_string(),
                source: Box::new(source),
            },
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            // The invocation's clock, moved on by the time spent waiting here.
            let now =
                invocation.now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
            let claim = state::claim_event::<Value>(
                self.state,
                self.plan,
                id.key(self.function),
                &sent,
                now,
                invocation.deadline,
                KEPT_HOURS,
                "command's answer",
            )
            .await
            .map_err(|e| Failed::Command(refused(e)))?;
            let token = match claim {
                EventClaim::Acquired(token) => token,
                EventClaim::Replayed(answer) => {
                    tracing::info!(command_id = %id, "a repeat of a command already carried out: its first answer, nothing done again");
                    return Ok(answer);
                }
                EventClaim::Busy(until) => {
                    let give_up = invocation.deadline
                        - chrono::Duration::from_std(WAIT_MARGIN).unwrap_or_default();
                    if now + chrono::Duration::from_std(pause).unwrap_or_default() >= give_up {
                        return Err(Failed::Command(CommandError::StillRunning {
                            function: self.function,
                            id: id.to_string(),
                            until,
                        }));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_POLL);
                    continue;
                }
            };
            return match handler(request, invocation).await {
                Ok(answer) => {
                    let answer = self.json(&answer).map_err(Failed::Command)?;
                    // Acted: the answer is the truth even when it cannot be recorded (a
                    // repeat then acts again once the claim lapses, as an idempotent
                    // handler may).
                    if let Err(e) = self.state.complete(&token, &answer).await {
                        tracing::warn!(command_id = %id, error = %e, "the command's answer could not be recorded for repeats");
                    }
                    Ok(answer)
                }
                Err(e) => {
                    if let Err(release) = self.state.release(&token).await {
                        tracing::warn!(command_id = %id, error = %release, "the failed command's claim could not be given up; it lapses at the invocation's deadline");
                    }
                    Err(Failed::Handler(e))
                }
            };
        }
    }

    fn json<R: serde::Serialize>(&self, answer: &R) -> Result<Value, CommandError> {
        serde_json::to_value(answer).map_err(|e| CommandError::Answer {
            function: self.function,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
