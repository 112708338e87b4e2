//! The restore-validator function's inputs: the validation schedule, ticks and RDS
//! events that carry runs forward, and an operator's request to validate now.

use crate::request::{RequestError, require_object, value_as};
use serde::{Deserialize, Serialize};

/// What the restore-validator function was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValidationInput {
    /// The schedule: start a run for every resource whose last validation is older than
    /// its interval, carry runs forward, sweep leftovers.
    Schedule,
    /// Carry runs in progress forward (a tick, or an RDS event).
    Tick,
    /// Validate one resource now, the newest snapshot or the one named.
    Validate {
        /// The plan resource id.
        resource: String,
        /// A snapshot identifier in the restore region.
        snapshot: Option<String>,
    },
}

/// An input the function does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl From<RequestError> for InputError {
    fn from(e: RequestError) -> Self {
        InputError(e.to_string())
    }
}

/// The restore-validator's operator actions (besides a request naming a resource).
pub const ACTIONS: &[&str] = &["tick"];

const EXPECTED: &str = "expected {\"resource\": \"<plan resource id>\"} (optionally with \"snapshot\": \"<snapshot id>\"), {\"action\": \"tick\"}, a \"Scheduled Event\", or an RDS event";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    snapshot: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// Parse an invocation payload.
pub fn parse_input(payload: &serde_json::Value) -> Result<ValidationInput, InputError> {
    let object = require_object("restore-validator", payload)?;
    if crate::envelope::claims_to_be_one(object) {
        let event = crate::envelope::read(
            "restore-validator",
            object,
            "{\"resource\": \"<plan resource id>\"} or {\"action\": \"tick\"}",
        )
        .map_err(|e| InputError(e.to_string()))?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            _ if event.is_schedule() => Ok(ValidationInput::Schedule),
            ("aws.rds", kind) if kind.starts_with("RDS DB") => Ok(ValidationInput::Tick),
            (source, kind) => Err(InputError(format!(
                "the restore-validator function does not handle {kind:?} events from {source}; {EXPECTED}"
            ))),
        };
    }
    let request: Request = value_as(payload, "the validation request")
        .map_err(|e| InputError(format!("unrecognised request ({e}); {EXPECTED}")))?;
    match (
        request.action.as_deref(),
        request.resource,
        request.snapshot,
    ) {
        (Some("tick"), None, None) => Ok(ValidationInput::Tick),
        (None, Some(resource), snapshot) if !resource.trim().is_empty() => {
            if snapshot.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(InputError(format!(
                    "`snapshot` is empty; name a snapshot or leave the field out; {EXPECTED}"
                )));
            }
            Ok(ValidationInput::Validate { resource, snapshot })
        }
        (Some(other), _, _) => Err(InputError(format!(
            "unknown action {other:?} (or extra fields with it); {EXPECTED}"
        ))),
        _ => Err(InputError(format!("no resource named; {EXPECTED}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_samples_parse_to_their_inputs() {
        for (text, expect) in [
            (
                include_str!("../../../events/validation-schedule.json"),
                ValidationInput::Schedule,
            ),
            (
                include_str!("../../../events/validation-tick.json"),
                ValidationInput::Tick,
            ),
            (
                include_str!("../../../events/validation-rds-event.json"),
                ValidationInput::Tick,
            ),
            (
                include_str!("../../../events/validation-manual.json"),
                ValidationInput::Validate {
                    resource: "orders-db".into(),
                    snapshot: None,
                },
            ),
        ] {
            let payload: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_input(&payload).unwrap(), expect, "{text}");
        }
        let payload: serde_json::Value = serde_json::from_str(include_str!(
            "../../../events/validation-manual-snapshot.json"
        ))
        .unwrap();
        assert!(matches!(
            parse_input(&payload).unwrap(),
            ValidationInput::Validate {
                snapshot: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn bad_input_is_refused_with_what_is_expected() {
        for (payload, words) in [
            (json!({"action": "restore"}), "unknown action \"restore\""),
            (json!({"resource": ""}), "no resource named"),
            (
                json!({"resource": "a", "snapshot": " "}),
                "`snapshot` is empty",
            ),
            (json!({"resource": "a", "now": true}), "unknown field `now`"),
            (
                json!({"version": "0", "account": "123456789012", "region": "us-east-1", "resources": [], "time": "2026-11-25T10:00:00Z", "id": "x", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": {}}),
                "does not handle",
            ),
            (json!("orders-db"), "takes a JSON object, got a string"),
        ] {
            let err = parse_input(&payload).unwrap_err();
            assert!(err.0.contains(words), "{payload}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_payload_panics_the_parser_and_only_objects_get_past_it(
            v in crate::request::arbitrary::requests_for("restore-validator")
        ) {
            let parsed = parse_input(&v);
            if !v.is_object() {
                proptest::prop_assert_eq!(
                    parsed.unwrap_err().0,
                    RequestError::NotAnObject {
                        function: "restore-validator",
                        got: crate::request::JsonKind::of(&v),
                        expects: crate::request::expected_by("restore-validator"),
                    }
                    .to_string()
                );
            }
        }
    }

    #[test]
    fn an_array_is_never_read_as_a_request() {
        for payload in [
            json!(["orders-db"]),
            json!([null, null, "tick"]),
            json!([{"resource": "orders-db"}]),
        ] {
            let err = parse_input(&payload).unwrap_err();
            assert!(
                err.0.contains("takes a JSON object, got an array"),
                "{payload}: {err}"
            );
        }
    }
}
