//! The EventBridge envelope, read the same strict way by every function.
//!
//! EventBridge always sends the whole envelope: `version` "0", `id`, `detail-type`,
//! `source`, `account`, `time`, `region`, `resources` (an array) and `detail` (an
//! object; `{}` for a schedule). A payload that names `detail-type` or `source` is read
//! as one and must be all of it: before, an object with only those two keys and any
//! `detail` (`[{}]`, a string) was taken for a schedule tick, and a retention run
//! deleted snapshots. A field EventBridge does not send is refused, naming it, so that
//! an operator's `dry_run` put into a schedule event is not silently ignored.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// How far ahead of the invocation's clock a time AWS stamped on an event may be: clocks
/// differ by seconds, not minutes, so a time further ahead was not written by AWS.
pub const CLOCK_SKEW_MINUTES: i64 = 5;

/// A complete EventBridge envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The event's id: the key a duplicate delivery is recognised by.
    pub id: String,
    /// `detail-type`.
    pub detail_type: String,
    /// `source`.
    pub source: String,
    /// `account`.
    pub account: String,
    /// When the event happened (for a schedule: the tick).
    pub time: DateTime<Utc>,
    /// `region`.
    pub region: String,
    /// `resources`.
    pub resources: Vec<String>,
    /// `detail`.
    pub detail: Map<String, Value>,
}

impl Envelope {
    /// Whether this is an EventBridge (or EventBridge Scheduler) schedule tick.
    pub fn is_schedule(&self) -> bool {
        self.detail_type == "Scheduled Event"
            && matches!(self.source.as_str(), "aws.events" | "aws.scheduler")
    }
}

/// An envelope that is not one EventBridge sends: nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A field is missing or of the wrong type.
    #[error(
        "the {function} function got an EventBridge event whose `{field}` {problem}: EventBridge always sends it as {expected}; nothing was done. The samples in events/ show the whole envelope"
    )]
    Field {
        /// The function.
        function: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
        /// What EventBridge sends.
        expected: &'static str,
    },
    /// A field EventBridge never sends.
    #[error(
        "the {function} function got an EventBridge event with a field `{field}` EventBridge never sends; nothing was done. {fix}"
    )]
    Unknown {
        /// The function.
        function: &'static str,
        /// The field, as a path (`detail.dry_run`).
        field: String,
        /// What to send instead.
        fix: String,
    },
}

impl crate::error::Classify for EnvelopeError {
    fn retry(&self) -> crate::error::Retry {
        crate::error::Retry::NonRetryable
    }
}

/// Whether `object` claims to be an EventBridge event (and so must be a whole one).
/// CloudWatch's own Lambda alarm action also has a `source`, beside its `alarmData`.
pub fn claims_to_be_one(object: &Map<String, Value>) -> bool {
    object.contains_key("detail-type")
        || (object.contains_key("source") && !object.contains_key("alarmData"))
}

/// The envelope's fields, as EventBridge sends them; `replay-name` comes with a replayed
/// archive event.
const FIELDS: &[&str] = &[
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
    "replay-name",
];

/// Read `object` as a complete EventBridge envelope for `function`. `operator_fix` is
/// what the function's operator request looks like, for the refusal of an operator's
/// field (`dry_run`, `action`, ...) put into an event.
pub fn read(
    function: &'static str,
    object: &Map<String, Value>,
    operator_fix: &str,
) -> Result<Envelope, EnvelopeError> {
    if let Some(field) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(EnvelopeError::Unknown {
            function,
            field: field.clone(),
            fix: format!(
                "An event acts only as what EventBridge sends; for an operator's request send it alone, not inside an event: {operator_fix}"
            ),
        });
    }
    let field_err =
        |field: &'static str, problem: String, expected: &'static str| EnvelopeError::Field {
            function,
            field,
            problem,
            expected,
        };
    let text = |field: &'static str, expected: &'static str| -> Result<String, EnvelopeError> {
        match object.get(field) {
            None => Err(field_err(field, "is missing".into(), expected)),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(field_err(field, "is empty".into(), expected)),
            Some(other) => Err(field_err(
                field,
                format!("is {}", crate::request::JsonKind::of(other)),
                expected,
            )),
        }
    };
    let version = text("version", "the string \"0\"")?;
    if version != "0" {
        return Err(field_err(
            "version",
            format!("is {version:?}"),
            "the string \"0\"",
        ));
    }
    let id = text("id", "a non-empty string")?;
    // The id is the event's idempotency key; AWS writes it (a UUID), never with blanks.
    if !crate::request::is_visible_token(&id) {
        return Err(field_err(
            "id",
            format!("is {id:?}, with a blank or invisible character"),
            "the id EventBridge wrote (a UUID)",
        ));
    }
    let detail_type = text("detail-type", "a non-empty string")?;
    let source = text("source", "a non-empty string")?;
    let account = text("account", "a 12-digit AWS account id")?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(field_err(
            "account",
            format!("is {account:?}"),
            "a 12-digit AWS account id",
        ));
    }
    let time_text = text("time", "an RFC 3339 time such as \"2026-11-25T06:00:00Z\"")?;
    let time = DateTime::parse_from_rfc3339(&time_text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            field_err(
                "time",
                format!("is {time_text:?} ({e})"),
                "an RFC 3339 time such as \"2026-11-25T06:00:00Z\"",
            )
        })?;
    let region = text("region", "a region name such as \"us-east-1\"")?;
    let resources = match object.get("resources") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| r.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                field_err(
                    "resources",
                    "holds something other than strings".into(),
                    "an array of ARNs (strings)",
                )
            })?,
        None => {
            return Err(field_err(
                "resources",
                "is missing".into(),
                "an array of ARNs (strings)",
            ));
        }
        Some(other) => {
            return Err(field_err(
                "resources",
                format!("is {}", crate::request::JsonKind::of(other)),
                "an array of ARNs (strings)",
            ));
        }
    };
    let detail = match object.get("detail") {
        Some(Value::Object(m)) => m.clone(),
        None => {
            return Err(field_err(
                "detail",
                "is missing".into(),
                "an object ({} for a schedule)",
            ));
        }
        Some(other) => {
            return Err(field_err(
                "detail",
                format!("is {}", crate::request::JsonKind::of(other)),
                "an object ({} for a schedule)",
            ));
        }
    };
    let envelope = Envelope {
        id,
        detail_type,
        source,
        account,
        time,
        region,
        resources,
        detail,
    };
    if envelope.is_schedule()
        && let Some(field) = envelope.detail.keys().next()
    {
        return Err(EnvelopeError::Unknown {
            function,
            field: format!("detail.{field}"),
            fix: format!(
                "A Scheduled Event's detail is always {{}}; for an operator's request send it alone, not inside an event: {operator_fix}"
            ),
        });
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Classify, Retry};
    use proptest::prelude::*;
    use serde_json::json;

    fn schedule() -> Value {
        sample("snapshot-schedule.json")
    }

    fn sample(name: &str) -> Value {
        let (_, _, text) = crate::request::arbitrary::SAMPLES
            .iter()
            .find(|(_, n, _)| *n == name)
            .unwrap();
        serde_json::from_str(text).unwrap()
    }

    fn read_value(v: &Value) -> Result<Envelope, EnvelopeError> {
        read("retention", v.as_object().unwrap(), "{\"dry_run\": true}")
    }

    #[test]
    fn every_sample_event_in_events_is_a_whole_envelope() {
        for (function, name, text) in crate::request::arbitrary::SAMPLES {
            let v: Value = serde_json::from_str(text).unwrap();
            let object = v.as_object().unwrap();
            if claims_to_be_one(object) {
                let e = read(function, object, "x").unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(!e.id.is_empty());
            }
        }
        let e = read_value(&schedule()).unwrap();
        assert!(e.is_schedule());
        assert_eq!(e.time.to_rfc3339(), "2026-11-25T06:00:00+00:00");
    }

    #[test]
    fn the_testers_schedule_shapes_are_refused_naming_the_field() {
        for (v, field) in [
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "id": "m1", "detail": [{}]}),
                "version",
            ),
            (
                {
                    let mut e = schedule();
                    e["detail"] = json!([{}]);
                    e
                },
                "`detail` is an array",
            ),
            (
                {
                    let mut e = schedule();
                    e["detail"] = json!([]);
                    e
                },
                "`detail` is an array",
            ),
            (
                {
                    let mut e = schedule();
                    e["resources"] = json!(null);
                    e
                },
                "`resources` is null",
            ),
            (
                {
                    let mut e = schedule();
                    e["version"] = json!("1");
                    e
                },
                "`version` is \"1\"",
            ),
            (
                {
                    let mut e = schedule();
                    e.as_object_mut().unwrap().remove("id");
                    e
                },
                "`id` is missing",
            ),
            (
                {
                    let mut e = schedule();
                    e["time"] = json!("tomorrow");
                    e
                },
                "`time` is \"tomorrow\"",
            ),
        ] {
            let err = read_value(&v).unwrap_err();
            assert_eq!(err.retry(), Retry::NonRetryable);
            let text = err.to_string();
            assert!(text.contains(field), "{v}: {text}");
            assert!(text.contains("nothing was done"), "{text}");
        }
    }

    #[test]
    fn an_operators_field_inside_a_schedule_is_refused_naming_the_fix() {
        let mut e = schedule();
        e["dry_run"] = json!(true);
        let text = read_value(&e).unwrap_err().to_string();
        assert!(text.contains("`dry_run`"), "{text}");
        assert!(text.contains("{\"dry_run\": true}"), "{text}");
        let mut e = schedule();
        e["detail"] = json!({"dry_run": true});
        let text = read_value(&e).unwrap_err().to_string();
        assert!(text.contains("`detail.dry_run`"), "{text}");
    }

    proptest! {
        /// Any change to a schedule's envelope that EventBridge would not make is refused;
        /// what is read is always a whole envelope with an object detail.
        #[test]
        fn a_mutated_schedule_is_read_only_when_still_whole(
            v in crate::request::arbitrary::mutated(schedule())
        ) {
            let Some(object) = v.as_object() else { return Ok(()) };
            if let Ok(e) = read("retention", object, "x") {
                prop_assert!(!e.id.trim().is_empty());
                prop_assert_eq!(object.get("version"), Some(&json!("0")));
                prop_assert!(object.get("resources").is_some_and(Value::is_array));
                prop_assert!(object.get("detail").is_some_and(Value::is_object));
                prop_assert!(!e.is_schedule() || e.detail.is_empty());
            }
        }

        /// Every function's parser, on its own schedule sample mutated: whatever is read as
        /// a schedule tick (a real run) was a whole envelope, as EventBridge sends it.
        #[test]
        fn no_function_runs_a_schedule_from_a_mutated_envelope(
            (function, v) in prop_oneof![
                crate::request::arbitrary::mutated(sample("retention-scheduled.json")).prop_map(|v| ("retention", v)),
                crate::request::arbitrary::mutated(sample("snapshot-schedule.json")).prop_map(|v| ("snapshot", v)),
                crate::request::arbitrary::mutated(sample("validation-schedule.json")).prop_map(|v| ("restore-validator", v)),
                crate::request::arbitrary::mutated(sample("failback-tick.json")).prop_map(|v| ("failback", v)),
                crate::request::arbitrary::mutated(sample("failover-tick.json")).prop_map(|v| ("failover", v)),
                crate::request::arbitrary::mutated(sample("readiness-schedule.json")).prop_map(|v| ("readiness", v)),
                crate::request::arbitrary::mutated(sample("recovery-tick.json")).prop_map(|v| ("recovery", v)),
            ]
        ) {
            let plan = crate::plan::parse_plan(include_str!("../../infra/plans/local.json")).unwrap();
            let runs = match function {
                "retention" => matches!(
                    crate::retention::run::parse_command(&v),
                    Ok(crate::retention::run::RetentionCommand::Scheduled { .. })
                ),
                "snapshot" => matches!(
                    crate::backup::command::parse_command(&plan, &v),
                    Ok(crate::backup::command::SnapshotCommand::Tick { .. })
                ),
                "restore-validator" => matches!(
                    crate::validation::event::parse_input(&v),
                    Ok(crate::validation::event::ValidationInput::Schedule)
                ),
                "failback" => matches!(
                    crate::failback::event::parse_input(&v),
                    Ok(crate::failback::event::FailbackInput::Tick)
                ),
                "recovery" => matches!(
                    crate::recovery::event::parse_input(&v),
                    Ok(crate::recovery::RecoveryInput::Tick)
                ),
                "readiness" => matches!(
                    crate::readiness::event::parse_input(&v),
                    Ok(crate::readiness::ReadinessInput::Scheduled)
                ),
                _ => matches!(
                    crate::failover::parse_input(&v),
                    Ok(crate::failover::FailoverInput::Tick)
                ),
            };
            if runs {
                let object = v.as_object().unwrap();
                prop_assert_eq!(object.get("version"), Some(&json!("0")));
                prop_assert!(object.get("id").and_then(Value::as_str).is_some_and(|i| !i.trim().is_empty()));
                prop_assert!(object.get("resources").is_some_and(Value::is_array));
                prop_assert!(object.get("time").and_then(Value::as_str).is_some());
                prop_assert!(object.keys().all(|k| FIELDS.contains(&k.as_str())));
                prop_assert!(
                    object.get("detail").and_then(Value::as_object).is_some_and(Map::is_empty)
                        || object.get("source") == Some(&json!("aws.rds")),
                    "{}", v
                );
            }
        }

        #[test]
        fn arbitrary_objects_never_panic(v in crate::request::arbitrary::json()) {
            if let Some(object) = v.as_object() {
                let _ = read("failover", object, "x");
            }
        }
    }
}
