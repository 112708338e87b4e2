//! The recovery function's inputs: the operator's commands ([`RecoveryCommand`]), its
//! schedule tick, and the RDS events of recovered databases, which move a restore on.

use super::{RecoveryCommand, RecoveryInput};
use crate::envelope::EnvelopeError;
use crate::request::{ReadError, RequestError, require_object};
use crate::routing::{Function, Misdirected, refuse_misdirected};

impl RecoveryCommand {
    /// The `action` values of [`RecoveryCommand`]: the recovery function's operator
    /// actions.
    pub const ACTIONS: &'static [&'static str] =
        &["recover", "recovery-status", "cutover", "discard"];
}

/// A request the recovery function does not take; nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not a JSON object, or an array where an object belongs.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// An EventBridge event that is not whole.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Another function's command.
    #[error(transparent)]
    Misdirected(#[from] Misdirected),
    /// A recovery command that does not read as one.
    #[error(
        "{what} at {path}: {problem}; nothing was done. See events/recover.json and the README's runbook (\"Recover from accidental deletion\")"
    )]
    Command {
        /// The command, e.g. `the "recover" command`.
        what: String,
        /// Where, as a JSON path (`top level`, `assertions[0].sql`).
        path: String,
        /// What is wrong there.
        problem: String,
    },
    /// An event the recovery function does not handle.
    #[error(
        "the recovery function does not handle {kind:?} events from {from}; it takes its \"Scheduled Event\", RDS events of recovered databases, and the commands \"recover\", \"recovery-status\", \"cutover\" and \"discard\"; nothing was done"
    )]
    Event {
        /// The event's `detail-type`.
        kind: String,
        /// The event's `source`.
        from: String,
    },
}

impl crate::error::Classify for InputError {
    fn retry(&self) -> crate::error::Retry {
        crate::error::Retry::NonRetryable
    }
}

/// Read an invocation payload.
pub fn parse_input(payload: &serde_json::Value) -> Result<RecoveryInput, InputError> {
    let object = require_object("recovery", payload)?;
    refuse_misdirected(Function::Recovery, payload)?;
    if crate::envelope::claims_to_be_one(object) {
        let event = crate::envelope::read(
            "recovery",
            object,
            "{\"action\": \"recovery-status\"} (or recover, cutover, discard)",
        )?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            _ if event.is_schedule() => Ok(RecoveryInput::Tick),
            ("aws.rds", kind) if kind.starts_with("RDS DB") => Ok(RecoveryInput::Tick),
            (source, kind) => Err(InputError::Event {
                kind: kind.to_string(),
                from: source.to_string(),
            }),
        };
    }
    let what = match object.get("action").and_then(|a| a.as_str()) {
        Some(action) => format!("the {action:?} command"),
        None => "the recovery command".to_string(),
    };
    let command: RecoveryCommand =
        crate::request::from_object(payload, &what, |v| serde_path_to_error::deserialize(v))
            .map_err(|e| match e {
                ReadError::Shape(e) => InputError::Request(e),
                ReadError::Fit(e) => {
                    let path = e.path().to_string();
                    InputError::Command {
                        what: what.clone(),
                        path: if path == "." {
                            "top level".into()
                        } else {
                            path
                        },
                        problem: e.inner().to_string(),
                    }
                }
            })?;
    Ok(RecoveryInput::Command(command))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{JsonKind, arbitrary, expected_by};
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn each_sample_is_a_command_a_tick_or_an_rds_event() {
        for (name, text) in arbitrary::SAMPLES
            .iter()
            .filter(|(f, _, _)| *f == "recovery")
            .map(|(_, n, t)| (*n, *t))
        {
            let payload: serde_json::Value = serde_json::from_str(text).unwrap();
            let input = parse_input(&payload).unwrap_or_else(|e| panic!("events/{name}: {e}"));
            let tick = matches!(name, "recovery-tick.json" | "recovery-rds-event.json");
            assert_eq!(
                input == RecoveryInput::Tick,
                tick,
                "events/{name}: {input:?}"
            );
        }
        for action in RecoveryCommand::ACTIONS {
            let e = parse_input(&json!({ "action": action, "x": 1 })).unwrap_err();
            assert!(
                matches!(e, InputError::Command { .. }),
                "{action} is one of its commands: {e}"
            );
        }
    }

    #[test]
    fn a_malformed_command_is_refused_naming_the_field() {
        let e = parse_input(&json!({"action": "recover", "resource": "orders-db"})).unwrap_err();
        assert!(e.to_string().contains("restore_time"), "{e}");
        let e = parse_input(&json!({"action": "cutover", "recovery": "x", "forcee": true}))
            .unwrap_err();
        assert!(e.to_string().contains("forcee"), "{e}");
        let e = parse_input(&json!({"action": "restore"})).unwrap_err();
        assert!(e.to_string().contains("unknown variant `restore`"), "{e}");
        let mut recover: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/recover.json")).unwrap();
        recover["assertions"] = json!([["orders are back", "SELECT 1", "1"]]);
        let e = parse_input(&recover).unwrap_err();
        assert!(
            e.to_string()
                .contains("`assertions[0]` must be a JSON object, got an array"),
            "{e}"
        );
    }

    #[test]
    fn another_functions_command_or_event_is_refused_naming_where_it_goes() {
        let e = parse_input(&json!({"action": "force", "reason": "x"})).unwrap_err();
        assert!(e.to_string().contains("FailoverFunctionName"), "{e}");
        let e = parse_input(&json!({"action": "tick"})).unwrap_err();
        assert!(
            e.to_string().contains("RestoreValidatorFunctionName"),
            "{e}"
        );
        let alarm: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/failover-alarm.json")).unwrap();
        let e = parse_input(&alarm).unwrap_err();
        assert!(
            matches!(e, InputError::Event { .. }) && e.to_string().contains("nothing was done"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn no_payload_panics_it_and_only_objects_get_past_the_first_check(
            v in arbitrary::requests_for("recovery")
        ) {
            let parsed = parse_input(&v);
            if !v.is_object() {
                prop_assert_eq!(
                    parsed,
                    Err(InputError::Request(RequestError::NotAnObject {
                        function: "recovery",
                        got: JsonKind::of(&v),
                        expects: expected_by("recovery"),
                    }))
                );
            }
        }
    }
}
