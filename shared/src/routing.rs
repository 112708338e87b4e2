//! Lifeboat's functions, one job each, and which operator actions each one takes.
//!
//! Each function's action vocabulary is one enum in its feature (its `ACTIONS` lists the
//! names). A request whose `action` belongs to another function is refused before
//! anything is read from AWS, naming the function to send it to and the stack output
//! that holds its deployed name: `{"action": "recover"}` sent to the failover function
//! is for the recovery function, and doing nothing is the only safe answer.

use serde_json::Value;
use std::fmt;

/// The failover function's actions: its own, and the game-day commands it still
/// answers.
const FAILOVER_ACTIONS: &[&str] = &[
    "status",
    "approve",
    "force",
    "cancel",
    "ack",
    "game-day",
    "game-day-status",
];

/// A Lambda function of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    /// Scheduled snapshots, copies and exports.
    Snapshot,
    /// Pruning by the retention policy.
    Retention,
    /// Restores of backups, checked with SQL.
    RestoreValidator,
    /// The alarm-driven failover and its operator commands.
    Failover,
    /// The staged failback.
    Failback,
    /// Point-in-time recovery: restore, check, cut over or discard.
    Recovery,
    /// The DR readiness report (read-only).
    Readiness,
}

impl Function {
    /// Every function, in the order the README lists them.
    pub const ALL: [Function; 7] = [
        Function::Snapshot,
        Function::Retention,
        Function::RestoreValidator,
        Function::Failover,
        Function::Failback,
        Function::Recovery,
        Function::Readiness,
    ];

    /// Its package (and binary) name under `functions/`, and the `Function` dimension of
    /// its metrics.
    pub fn name(self) -> &'static str {
        match self {
            Function::Snapshot => "snapshot",
            Function::Retention => "retention",
            Function::RestoreValidator => "restore-validator",
            Function::Failover => "failover",
            Function::Failback => "failback",
            Function::Recovery => "recovery",
            Function::Readiness => "readiness",
        }
    }

    /// The function called `name`.
    pub fn named(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The stack output (`infra/template.yaml`) that holds its deployed name.
    pub fn output(self) -> &'static str {
        match self {
            Function::Snapshot => "SnapshotFunctionName",
            Function::Retention => "RetentionFunctionName",
            Function::RestoreValidator => "RestoreValidatorFunctionName",
            Function::Failover => "FailoverFunctionName",
            Function::Failback => "FailbackFunctionName",
            Function::Recovery => "RecoveryFunctionName",
            Function::Readiness => "ReadinessFunctionName",
        }
    }

    /// Its operator commands that change something: the ones a `command_id` makes
    /// at-most-once ([`crate::command`]). The snapshot, retention and restore-validator
    /// functions' operator requests name no action; [`changes_state`] counts them.
    pub fn commands(self) -> &'static [&'static str] {
        match self {
            Function::Failover => &["approve", "force", "cancel", "ack", "game-day"],
            Function::Failback => &["start", "pause", "resume", "abort"],
            Function::Recovery => &["recover", "cutover", "discard"],
            Function::Snapshot
            | Function::Retention
            | Function::RestoreValidator
            | Function::Readiness => &[],
        }
    }

    /// Whether its operator request may name no action (snapshot now, a retention run,
    /// validate now).
    fn takes_request_without_action(self) -> bool {
        matches!(
            self,
            Function::Snapshot | Function::Retention | Function::RestoreValidator
        )
    }

    /// The `action` values it takes (none: its requests name no action).
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            Function::Snapshot | Function::Retention => &[],
            Function::RestoreValidator => crate::validation::event::ACTIONS,
            Function::Failover => FAILOVER_ACTIONS,
            Function::Failback => crate::failback::event::ACTIONS,
            Function::Recovery => crate::recovery::RecoveryCommand::ACTIONS,
            Function::Readiness => crate::readiness::ReadinessCommand::ACTIONS,
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A request that names another function's action: nothing was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misdirected {
    /// The function that got it.
    pub function: Function,
    /// The action it named.
    pub action: String,
    /// The functions that take the action.
    pub send_to: Vec<Function>,
}

impl fmt::Display for Misdirected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owners: Vec<String> = self
            .send_to
            .iter()
            .map(|o| format!("the {o} function's"))
            .collect();
        let outputs: Vec<&str> = self.send_to.iter().map(|o| o.output()).collect();
        write!(
            f,
            "the {} function does not take {:?}: it is {}; send it there (its name is the stack's {} output); nothing was done. ",
            self.function,
            self.action,
            owners.join(" or "),
            outputs.join(" or ")
        )?;
        match self.function.actions() {
            [] => write!(
                f,
                "The {} function's requests name no action.",
                self.function
            ),
            own => write!(
                f,
                "The {} function's actions are {}.",
                self.function,
                own.iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl std::error::Error for Misdirected {}

impl crate::error::Classify for Misdirected {
    fn retry(&self) -> crate::error::Retry {
        crate::error::Retry::NonRetryable
    }
}

/// Whether `request` is an operator's command to `function` that changes something: a
/// state-changing action of [`Function::commands`], or the operator request without an
/// action of the snapshot, retention and restore-validator functions. An AWS event (an
/// EventBridge or SNS envelope, CloudWatch's alarm action) and a read-only action
/// (`status`, `readiness`, ...) are not.
pub fn changes_state(function: Function, request: &serde_json::Map<String, Value>) -> bool {
    match request.get("action") {
        Some(Value::String(action)) => function.commands().contains(&action.as_str()),
        Some(_) => false,
        None => {
            function.takes_request_without_action()
                && !crate::envelope::claims_to_be_one(request)
                && !request.contains_key("Records")
                && !request.contains_key("alarmData")
        }
    }
}

/// Refuse `payload` when its `action` is not one `function` takes but another does.
/// Anything else passes: the function's own parser says what is wrong with it.
pub fn refuse_misdirected(function: Function, payload: &Value) -> Result<(), Misdirected> {
    let Some(action) = payload.get("action").and_then(Value::as_str) else {
        return Ok(());
    };
    if function.actions().contains(&action) {
        return Ok(());
    }
    let send_to: Vec<Function> = Function::ALL
        .into_iter()
        .filter(|f| f.actions().contains(&action))
        .collect();
    if send_to.is_empty() {
        return Ok(());
    }
    Err(Misdirected {
        function,
        action: action.to_string(),
        send_to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Classify, Retry};
    use serde_json::json;

    #[test]
    fn an_action_of_another_function_is_refused_naming_where_it_goes() {
        let e =
            refuse_misdirected(Function::Failover, &json!({"action": "readiness"})).unwrap_err();
        assert_eq!(e.send_to, vec![Function::Readiness]);
        assert_eq!(e.retry(), Retry::NonRetryable);
        let text = e.to_string();
        for part in [
            "the failover function does not take \"readiness\"",
            "the readiness function's",
            "ReadinessFunctionName",
            "nothing was done",
            "\"status\", \"approve\", \"force\", \"cancel\", \"ack\"",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        let e = refuse_misdirected(Function::Readiness, &json!({"action": "status"})).unwrap_err();
        assert_eq!(e.send_to, vec![Function::Failover, Function::Failback]);
        assert!(
            e.to_string()
                .contains("FailoverFunctionName or FailbackFunctionName"),
            "{e}"
        );
        let e = refuse_misdirected(Function::Failover, &json!({"action": "recover"})).unwrap_err();
        assert_eq!(e.send_to, vec![Function::Recovery]);
        assert!(e.to_string().contains("RecoveryFunctionName"), "{e}");
        let e =
            refuse_misdirected(Function::Snapshot, &json!({"action": "readiness"})).unwrap_err();
        assert!(e.to_string().contains("ReadinessFunctionName"), "{e}");
        assert!(e.to_string().contains("name no action"), "{e}");
    }

    #[test]
    fn a_function_own_action_an_unknown_one_or_none_passes() {
        for (f, payload) in [
            (Function::Failover, json!({"action": "status"})),
            (Function::Failback, json!({"action": "status"})),
            (Function::Failover, json!({"action": "no-such-thing"})),
            (Function::Failover, json!({"action": ["recover"]})),
            (Function::Snapshot, json!({"resources": ["orders-db"]})),
            (Function::Readiness, json!([])),
        ] {
            assert_eq!(refuse_misdirected(f, &payload), Ok(()), "{f} {payload}");
        }
    }

    #[test]
    fn a_command_changes_state_an_event_or_a_read_does_not() {
        let object = |v: Value| v.as_object().cloned().unwrap();
        for f in Function::ALL {
            for c in f.commands() {
                assert!(f.actions().contains(c), "{f} takes {c:?}");
                assert!(changes_state(f, &object(json!({ "action": c }))), "{f} {c}");
            }
        }
        for (f, request) in [
            (Function::Snapshot, json!({"resources": ["orders-db"]})),
            (Function::Retention, json!({})),
            (Function::Retention, json!({"dry_run": false})),
            (Function::RestoreValidator, json!({"resource": "orders-db"})),
        ] {
            assert!(changes_state(f, &object(request.clone())), "{f} {request}");
        }
        for (f, request) in [
            (Function::Failover, json!({"action": "status"})),
            (Function::Failover, json!({"action": "game-day-status"})),
            (Function::Failover, json!({"action": ["approve"]})),
            (Function::Failover, json!({})),
            (Function::Failover, json!({"Records": []})),
            (Function::Failback, json!({"action": "status"})),
            (Function::Recovery, json!({"action": "recovery-status"})),
            (Function::Readiness, json!({"action": "readiness"})),
            (Function::RestoreValidator, json!({"action": "tick"})),
            (
                Function::Snapshot,
                json!({"detail-type": "Scheduled Event"}),
            ),
            (Function::Retention, json!({"source": "aws.events"})),
            (
                Function::Snapshot,
                json!({"source": "aws.cloudwatch", "alarmData": {}}),
            ),
        ] {
            assert!(!changes_state(f, &object(request.clone())), "{f} {request}");
        }
    }

    #[test]
    fn every_function_has_one_name_and_output_and_no_action_is_taken_twice_by_a_new_one() {
        for f in Function::ALL {
            assert_eq!(Function::named(f.name()), Some(f));
            assert!(f.output().ends_with("FunctionName"), "{f}");
        }
        // Only the failover and failback functions share an action ("status", each its own).
        for a in Function::ALL.iter().flat_map(|f| f.actions()) {
            let owners: Vec<Function> = Function::ALL
                .into_iter()
                .filter(|f| f.actions().contains(a))
                .collect();
            assert!(
                owners.len() == 1 || owners == [Function::Failover, Function::Failback],
                "{a:?} is taken by {owners:?}"
            );
        }
    }
}
