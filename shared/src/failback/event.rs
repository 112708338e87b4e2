//! The failback function's inputs: operator commands, and the ticks and RDS events that
//! advance a failback in progress.

use crate::request::{RequestError, require_object, value_as};
use serde::{Deserialize, Serialize};

/// What the failback function was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailbackInput {
    /// Start a failback (from FailedOver, the primary region healthy, no cooldown).
    Start,
    /// Report the state.
    Status,
    /// Hold where it is.
    Pause,
    /// Go on after a pause (an operator's, or a gate alarm's).
    Resume,
    /// Stop: before the writer moved, back to the DR side; after, forward to the primary.
    Abort,
    /// Look again: a schedule tick or an RDS event.
    Tick,
}

/// The failback function's operator actions (the commands of [`FailbackInput`]).
pub const ACTIONS: &[&str] = &["start", "status", "pause", "resume", "abort"];

/// An input the failback function does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl From<RequestError> for InputError {
    fn from(e: RequestError) -> Self {
        InputError(e.to_string())
    }
}

const EXPECTED: &str = "expected {\"action\": \"start\" | \"status\" | \"pause\" | \"resume\" | \"abort\"}, a \"Scheduled Event\", or an RDS event";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorRequest {
    action: String,
}

/// Parse an invocation payload.
pub fn parse_input(payload: &serde_json::Value) -> Result<FailbackInput, InputError> {
    let object = require_object("failback", payload)?;
    if crate::envelope::claims_to_be_one(object) {
        let event = crate::envelope::read(
            "failback",
            object,
            "{\"action\": \"start\"} (or status, pause, resume, abort)",
        )
        .map_err(|e| InputError(e.to_string()))?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            _ if event.is_schedule() => Ok(FailbackInput::Tick),
            ("aws.rds", kind) if kind.starts_with("RDS DB") => Ok(FailbackInput::Tick),
            (source, kind) => Err(InputError(format!(
                "the failback function does not handle {kind:?} events from {source}; {EXPECTED}"
            ))),
        };
    }
    let request: OperatorRequest = value_as(payload, "the failback command")
        .map_err(|e| InputError(format!("unrecognised request ({e}); {EXPECTED}")))?;
    match request.action.as_str() {
        "start" => Ok(FailbackInput::Start),
        "status" => Ok(FailbackInput::Status),
        "pause" => Ok(FailbackInput::Pause),
        "resume" => Ok(FailbackInput::Resume),
        "abort" => Ok(FailbackInput::Abort),
        other => Err(InputError(format!("unknown action {other:?}; {EXPECTED}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_ticks_and_the_samples_parse() {
        for (a, i) in [
            ("start", FailbackInput::Start),
            ("status", FailbackInput::Status),
            ("pause", FailbackInput::Pause),
            ("resume", FailbackInput::Resume),
            ("abort", FailbackInput::Abort),
        ] {
            assert_eq!(parse_input(&json!({"action": a})).unwrap(), i);
        }
        for text in [
            include_str!("../../../events/failback-start.json"),
            include_str!("../../../events/failback-status.json"),
            include_str!("../../../events/failback-pause.json"),
            include_str!("../../../events/failback-resume.json"),
            include_str!("../../../events/failback-abort.json"),
            include_str!("../../../events/failback-tick.json"),
        ] {
            let payload: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(parse_input(&payload).is_ok(), "{text}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        for (payload, words) in [
            (json!({"action": "rollback"}), "unknown action \"rollback\""),
            (
                json!({"action": "start", "now": true}),
                "unknown field `now`",
            ),
            (
                json!({"version": "0", "account": "123456789012", "region": "us-east-1", "resources": [], "time": "2026-11-25T10:00:00Z", "id": "x", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": {}}),
                "does not handle",
            ),
            (json!("start"), "takes a JSON object, got a string"),
        ] {
            let err = parse_input(&payload).unwrap_err();
            assert!(err.0.contains(words), "{payload}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_payload_panics_the_parser_and_only_objects_get_past_it(
            v in crate::request::arbitrary::requests_for("failback")
        ) {
            let parsed = parse_input(&v);
            if !v.is_object() {
                proptest::prop_assert_eq!(
                    parsed.unwrap_err().0,
                    RequestError::NotAnObject {
                        function: "failback",
                        got: crate::request::JsonKind::of(&v),
                        expects: crate::request::expected_by("failback"),
                    }
                    .to_string()
                );
            }
        }
    }

    #[test]
    fn an_array_is_never_read_as_a_command() {
        for payload in [
            json!(["abort"]),
            json!([["start"]]),
            json!([{"action": "start"}]),
        ] {
            let err = parse_input(&payload).unwrap_err();
            assert!(
                err.0.contains("takes a JSON object, got an array"),
                "{payload}: {err}"
            );
        }
    }
}
