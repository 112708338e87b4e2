//! The readiness function's inputs: its schedule, and the operator's command.

use crate::envelope::EnvelopeError;
use crate::request::{RequestError, require_object};
use crate::routing::{Function, Misdirected, refuse_misdirected};
use serde::{Deserialize, Serialize};

/// The readiness function's operator actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ReadinessCommand {
    /// `{"action": "readiness"}`: the report now (`events/readiness.json`).
    Readiness,
}

impl ReadinessCommand {
    /// The `action` values of [`ReadinessCommand`].
    pub const ACTIONS: &'static [&'static str] = &["readiness"];
}

/// What the readiness function was given. Either way it computes the report, stores it
/// and publishes its score; it reads, and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadinessInput {
    /// An operator asked.
    Command(ReadinessCommand),
    /// Its schedule ticked.
    Scheduled,
}

/// A request the readiness function does not take; nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not a JSON object.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// An EventBridge event that is not whole.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Another function's command.
    #[error(transparent)]
    Misdirected(#[from] Misdirected),
    /// Neither the schedule nor the command.
    #[error(
        "the readiness function {problem}; it takes {{\"action\": \"readiness\"}} (events/readiness.json) or its \"Scheduled Event\" (events/readiness-schedule.json); nothing was done"
    )]
    Unrecognised {
        /// What is wrong, e.g. `does not take the field "resource"`.
        problem: String,
    },
}

impl crate::error::Classify for InputError {
    fn retry(&self) -> crate::error::Retry {
        crate::error::Retry::NonRetryable
    }
}

/// Read an invocation payload.
pub fn parse_input(payload: &serde_json::Value) -> Result<ReadinessInput, InputError> {
    let object = require_object("readiness", payload)?;
    refuse_misdirected(Function::Readiness, payload)?;
    if crate::envelope::claims_to_be_one(object) {
        let event = crate::envelope::read("readiness", object, "{\"action\": \"readiness\"}")?;
        if event.is_schedule() {
            return Ok(ReadinessInput::Scheduled);
        }
        return Err(InputError::Unrecognised {
            problem: format!(
                "does not handle {:?} events from {}",
                event.detail_type, event.source
            ),
        });
    }
    let problem = match object.get("action") {
        Some(serde_json::Value::String(a)) if a == "readiness" => {
            match object.keys().find(|k| *k != "action") {
                None => return Ok(ReadinessInput::Command(ReadinessCommand::Readiness)),
                Some(extra) => format!("does not take the field {extra:?} with \"readiness\""),
            }
        }
        Some(serde_json::Value::String(a)) => format!("has no action {a:?}"),
        Some(other) => format!(
            "takes `action` as a string, got {}",
            crate::request::JsonKind::of(other)
        ),
        None => "got a request without an `action`".into(),
    };
    Err(InputError::Unrecognised { problem })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::arbitrary;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn the_command_and_the_schedule_are_what_it_takes() {
        assert_eq!(
            parse_input(&json!({"action": "readiness"})),
            Ok(ReadinessInput::Command(ReadinessCommand::Readiness))
        );
        for action in ReadinessCommand::ACTIONS {
            let command: ReadinessCommand =
                serde_json::from_value(json!({ "action": action })).unwrap();
            assert_eq!(serde_json::to_value(command).unwrap()["action"], *action);
        }
        for (name, text) in arbitrary::SAMPLES
            .iter()
            .filter(|(f, _, _)| *f == "readiness")
            .map(|(_, n, t)| (*n, *t))
        {
            let payload: serde_json::Value = serde_json::from_str(text).unwrap();
            let input = parse_input(&payload).unwrap_or_else(|e| panic!("events/{name}: {e}"));
            let expected = match name {
                "readiness.json" => ReadinessInput::Command(ReadinessCommand::Readiness),
                _ => ReadinessInput::Scheduled,
            };
            assert_eq!(input, expected, "events/{name}");
        }
    }

    #[test]
    fn anything_else_is_refused_saying_what_is_wrong() {
        for (payload, says) in [
            (
                json!({"action": "readiness", "resource": "x"}),
                "does not take the field \"resource\"",
            ),
            (json!({"action": "report"}), "has no action \"report\""),
            (json!({"action": ["readiness"]}), "got an array"),
            (json!({}), "without an `action`"),
            (json!({"action": "start"}), "FailbackFunctionName"),
            (json!({"action": "status"}), "FailoverFunctionName"),
            (json!([]), "takes a JSON object, got an array"),
        ] {
            let e = parse_input(&payload).unwrap_err();
            assert!(e.to_string().contains(says), "{payload}: {e}");
            assert!(e.to_string().contains("nothing was done"), "{payload}: {e}");
        }
        let mut alarm: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/failover-alarm.json")).unwrap();
        let e = parse_input(&alarm).unwrap_err();
        assert!(
            e.to_string()
                .contains("does not handle \"CloudWatch Alarm State Change\" events"),
            "{e}"
        );
        alarm["detail-type"] = json!("Scheduled Event");
        alarm["source"] = json!("aws.events");
        alarm["detail"] = json!({"action": "readiness"});
        assert!(matches!(parse_input(&alarm), Err(InputError::Envelope(_))));
    }

    proptest! {
        #[test]
        fn no_payload_panics_it_and_only_objects_get_past_the_first_check(
            v in arbitrary::requests_for("readiness")
        ) {
            let parsed = parse_input(&v);
            if !v.is_object() {
                let refused = matches!(
                    parsed,
                    Err(InputError::Request(RequestError::NotAnObject { .. }))
                );
                prop_assert!(refused, "{:?}", parsed);
            }
        }
    }
}
