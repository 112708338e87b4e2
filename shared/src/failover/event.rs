//! The failover function's inputs: alarm state changes (EventBridge, SNS, or the alarm's
//! own Lambda action), schedule ticks and RDS events (which resume a failover in
//! progress), and operator commands.

use crate::request::{RequestError, require_object, value_as};
use aws_lambda_events::sns::SnsEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A CloudWatch alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmValue {
    /// Threshold breached.
    Alarm,
    /// Fine.
    Ok,
    /// Not enough data.
    InsufficientData,
}

impl AlarmValue {
    /// From CloudWatch's word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ALARM" => Some(AlarmValue::Alarm),
            "OK" => Some(AlarmValue::Ok),
            "INSUFFICIENT_DATA" => Some(AlarmValue::InsufficientData),
            _ => None,
        }
    }
}

impl fmt::Display for AlarmValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlarmValue::Alarm => "ALARM",
            AlarmValue::Ok => "OK",
            AlarmValue::InsufficientData => "INSUFFICIENT_DATA",
        })
    }
}

/// An alarm's state change, however it was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmSignal {
    /// The alarm's name.
    pub name: String,
    /// Its new state.
    pub value: AlarmValue,
    /// When it changed.
    pub at: DateTime<Utc>,
    /// The delivery's id (EventBridge event id, SNS message id).
    pub event_id: String,
    /// Why the alarm's actions are suppressed (`Alarm`, `WaitPeriod`, `ExtensionPeriod`),
    /// when the event says they are (a composite alarm with an actions suppressor).
    #[serde(default)]
    pub suppressed_by: Option<String>,
}

/// An operator's command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Report the state.
    Status,
    /// Approve a failover awaiting approval (manual mode).
    Approve,
    /// Fail over now, overriding approval and the lag guard; recorded with the reason.
    Force {
        /// Why (required: it is recorded in the timeline).
        reason: String,
    },
    /// Cancel a failover before promotion.
    Cancel,
    /// Acknowledge the incident: ends the cooldown early.
    Ack,
}

impl Command {
    /// The `action` values of [`Command`]: the failover function's operator actions.
    pub const ACTIONS: &'static [&'static str] = &["status", "approve", "force", "cancel", "ack"];
}

/// What the failover function was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailoverInput {
    /// An alarm changed state.
    Alarm(AlarmSignal),
    /// Look again: a schedule tick or an RDS event resumes a failover in progress.
    Tick,
    /// An operator's command.
    Command(Command),
}

/// An input the failover function does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl From<RequestError> for InputError {
    fn from(e: RequestError) -> Self {
        InputError(e.to_string())
    }
}

const EXPECTED: &str = "expected a \"CloudWatch Alarm State Change\" event (EventBridge or SNS), a \"Scheduled Event\", an RDS event, or {\"action\": \"status\" | \"approve\" | \"force\" (with \"reason\") | \"cancel\" | \"ack\"}";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorRequest {
    action: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The detail of an EventBridge "CloudWatch Alarm State Change".
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: AlarmDetailState,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetailState {
    value: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    actions_suppressed_by: Option<String>,
}

/// The message CloudWatch publishes to SNS for an alarm.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage {
    alarm_name: String,
    new_state_value: String,
    #[serde(default)]
    state_change_time: Option<String>,
}

/// CloudWatch writes times as RFC 3339 in EventBridge and as `2026-11-25T06:00:00.123+0000`
/// in SNS messages.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn alarm_value(s: &str) -> Result<AlarmValue, InputError> {
    AlarmValue::parse(s).ok_or_else(|| {
        InputError(format!(
            "unknown alarm state {s:?}; expected ALARM, OK or INSUFFICIENT_DATA"
        ))
    })
}

/// An alarm's time as CloudWatch wrote it; one that does not parse was not written by
/// CloudWatch, and is refused rather than replaced by another time.
fn fire_time(text: &str, field: &str) -> Result<DateTime<Utc>, InputError> {
    parse_time(text).ok_or_else(|| {
        InputError(format!(
            "{field} {text:?} is not a time CloudWatch writes (RFC 3339, or 2026-11-25T06:00:00.123+0000); nothing was done"
        ))
    })
}

/// The fields AWS's SNS integration puts in a Lambda event, a record and its `Sns`; any
/// other was not sent by SNS.
fn only_sns_fields(object: &serde_json::Map<String, serde_json::Value>) -> Result<(), InputError> {
    const RECORD: &[&str] = &["EventSource", "EventVersion", "EventSubscriptionArn", "Sns"];
    const SNS: &[&str] = &[
        "Type",
        "MessageId",
        "TopicArn",
        "Subject",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertUrl",
        "SigningCertURL",
        "UnsubscribeUrl",
        "UnsubscribeURL",
        "MessageAttributes",
    ];
    let foreign = |place: &str, k: &str| {
        Err(InputError(format!(
            "the SNS event has a field `{k}` in {place} that SNS never sends; nothing was done; {EXPECTED}"
        )))
    };
    if let Some(k) = object.keys().find(|k| k.as_str() != "Records") {
        return foreign("the event", k);
    }
    for record in object["Records"].as_array().into_iter().flatten() {
        let Some(record) = record.as_object() else {
            continue;
        };
        if let Some(k) = record.keys().find(|k| !RECORD.contains(&k.as_str())) {
            return foreign("a record", k);
        }
        if let Some(k) = record
            .get("Sns")
            .and_then(|s| s.as_object())
            .and_then(|s| s.keys().find(|k| !SNS.contains(&k.as_str())))
        {
            return foreign("a record's Sns", k);
        }
    }
    Ok(())
}

/// An alarm dated further ahead of `now` than clocks differ was not sent by CloudWatch.
/// Taken in, it would open an incident whose confirmation window ends in the future, and
/// every real alarm until then would be folded into it.
pub fn check_fire_time(signal: &AlarmSignal, now: DateTime<Utc>) -> Result<(), InputError> {
    let skew = chrono::Duration::minutes(crate::envelope::CLOCK_SKEW_MINUTES);
    if signal.at - now > skew {
        return Err(InputError(format!(
            "the alarm {} is dated {}, more than {} minutes after now ({}): CloudWatch stamps an alarm when its state changes, so this was not sent by CloudWatch; nothing was done",
            signal.name,
            signal.at.to_rfc3339(),
            crate::envelope::CLOCK_SKEW_MINUTES,
            now.to_rfc3339()
        )));
    }
    Ok(())
}

/// Parse an invocation payload.
pub fn parse_input(payload: &serde_json::Value) -> Result<FailoverInput, InputError> {
    let object = require_object("failover", payload)?;
    crate::routing::refuse_misdirected(crate::routing::Function::Failover, payload)
        .map_err(|e| InputError(e.to_string()))?;
    // A request is one thing: an alarm with an operator's `action` beside it (or the
    // reverse) would be read as whichever branch comes first.
    let shapes: Vec<&str> = ["detail-type", "Records", "alarmData"]
        .into_iter()
        .filter(|k| object.contains_key(*k))
        .collect();
    if shapes.len() > 1 || (!shapes.is_empty() && object.contains_key("action")) {
        let mut keys = shapes;
        if object.contains_key("action") {
            keys.push("action");
        }
        return Err(InputError(format!(
            "the request mixes {}: send an event or an operator's command, not both in one request; nothing was done; {EXPECTED}",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        )));
    }
    if crate::envelope::claims_to_be_one(object) {
        let event = crate::envelope::read(
            "failover",
            object,
            "{\"action\": \"status\"} (or approve, force with a reason, cancel, ack)",
        )
        .map_err(|e| InputError(e.to_string()))?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.cloudwatch", "CloudWatch Alarm State Change") => {
                let detail: AlarmDetail = value_as(
                    &serde_json::Value::Object(event.detail.clone()),
                    "the alarm state change's detail",
                )
                .map_err(|e| InputError(format!("malformed alarm state change: {e}")))?;
                let at = match detail.state.timestamp.as_deref() {
                    Some(t) => fire_time(t, "the alarm state change's detail.state.timestamp")?,
                    None => event.time,
                };
                Ok(FailoverInput::Alarm(AlarmSignal {
                    name: detail.alarm_name,
                    value: alarm_value(&detail.state.value)?,
                    at,
                    event_id: event.id,
                    suppressed_by: detail.state.actions_suppressed_by,
                }))
            }
            _ if event.is_schedule() => Ok(FailoverInput::Tick),
            ("aws.rds", kind) if kind.starts_with("RDS DB") => Ok(FailoverInput::Tick),
            (source, kind) => Err(InputError(format!(
                "the failover function does not handle {kind:?} events from {source}; {EXPECTED}"
            ))),
        };
    }
    if object.contains_key("Records") {
        only_sns_fields(object)?;
        let event: SnsEvent = value_as(payload, "the SNS event")
            .map_err(|e| InputError(format!("malformed SNS event: {e}; {EXPECTED}")))?;
        // SNS hands a Lambda function one message per invocation.
        let [record] = event.records.as_slice() else {
            return Err(InputError(format!(
                "the SNS event has {} records; SNS delivers exactly one per invocation; nothing was done",
                event.records.len()
            )));
        };
        // The message id is the idempotency key of the alarm it carries.
        if record.sns.message_id.trim().is_empty() {
            return Err(InputError(format!(
                "the SNS record has no MessageId (SNS always sends one); nothing was done; {EXPECTED}"
            )));
        }
        let not_an_alarm = |e: &dyn std::fmt::Display| {
            InputError(format!(
                "the SNS message is not a CloudWatch alarm notification ({e}); {EXPECTED}"
            ))
        };
        // Read as a Payload: a key given twice in the message is as ambiguous as in the
        // event around it.
        let message = crate::request::Payload::from_json("failover", &record.sns.message)
            .map_err(|e| not_an_alarm(&e))?
            .into_value("failover")
            .map_err(|e| not_an_alarm(&e))?;
        let message: SnsAlarmMessage =
            value_as(&message, "the SNS message").map_err(|e| not_an_alarm(&e))?;
        let at = match message.state_change_time.as_deref() {
            Some(t) => fire_time(t, "the SNS message's StateChangeTime")?,
            None => record.sns.timestamp,
        };
        return Ok(FailoverInput::Alarm(AlarmSignal {
            name: message.alarm_name,
            value: alarm_value(&message.new_state_value)?,
            at,
            event_id: record.sns.message_id.clone(),
            // CloudWatch sends no notification while a suppressor holds the actions back.
            suppressed_by: None,
        }));
    }
    if object.contains_key("alarmData") {
        // A Lambda function as the alarm's own action: CloudWatch sends these fields.
        const ACTION_FIELDS: &[&str] = &[
            "source",
            "alarmArn",
            "accountId",
            "time",
            "region",
            "alarmData",
        ];
        if let Some(k) = object.keys().find(|k| !ACTION_FIELDS.contains(&k.as_str())) {
            return Err(InputError(format!(
                "the alarm action has a field `{k}` CloudWatch never sends; nothing was done; {EXPECTED}"
            )));
        }
        let name = payload["alarmData"]["alarmName"]
            .as_str()
            .ok_or_else(|| InputError("alarmData has no alarmName".into()))?;
        let state = &payload["alarmData"]["state"];
        let value = alarm_value(state["value"].as_str().unwrap_or(""))?;
        let at = match (state["timestamp"].as_str(), payload["time"].as_str()) {
            (Some(t), _) => fire_time(t, "alarmData.state.timestamp")?,
            (None, Some(t)) => fire_time(t, "the alarm action's time")?,
            (None, None) => return Err(InputError("the alarm action has no time".into())),
        };
        return Ok(FailoverInput::Alarm(AlarmSignal {
            name: name.to_string(),
            value,
            at,
            event_id: format!("{name}@{}", at.to_rfc3339()),
            suppressed_by: state["actionsSuppressedBy"].as_str().map(str::to_string),
        }));
    }
    let request: OperatorRequest = value_as(payload, "the failover command")
        .map_err(|e| InputError(format!("unrecognised request ({e}); {EXPECTED}")))?;
    let command = match request.action.as_str() {
        "status" => Command::Status,
        "approve" => Command::Approve,
        "cancel" => Command::Cancel,
        "ack" => Command::Ack,
        "force" => match request.reason.as_deref().map(str::trim) {
            Some(r) if crate::request::has_visible_text(r) => Command::Force {
                reason: r.to_string(),
            },
            _ => {
                return Err(InputError(
                    "\"force\" needs a \"reason\" with visible text (not only spaces or invisible characters): it is recorded in the timeline with the override".into(),
                ));
            }
        },
        other => return Err(InputError(format!("unknown action {other:?}; {EXPECTED}"))),
    };
    if request.reason.is_some() && !matches!(command, Command::Force { .. }) {
        return Err(InputError(format!(
            "\"reason\" only goes with \"force\", not {:?}",
            request.action
        )));
    }
    Ok(FailoverInput::Command(command))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn alarms_parse_from_eventbridge_sns_and_the_alarm_action() {
        let eb = json!({"account": "123456789012", "region": "us-east-1", "resources": [],
            "version": "0", "id": "evt-1", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "time": "2026-11-25T10:00:05Z",
            "detail": {"alarmName": "orders-db-primary-unhealthy",
                       "state": {"value": "ALARM", "reason": "x", "timestamp": "2026-11-25T10:00:00.000+0000"},
                       "previousState": {"value": "OK"}}
        });
        let FailoverInput::Alarm(a) = parse_input(&eb).unwrap() else {
            panic!()
        };
        assert_eq!(a.name, "orders-db-primary-unhealthy");
        assert_eq!(a.value, AlarmValue::Alarm);
        assert_eq!(
            a.at,
            "2026-11-25T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(a.event_id, "evt-1");

        let sns = serde_json::from_str::<serde_json::Value>(include_str!(
            "../../../events/failover-alarm-sns.json"
        ))
        .unwrap();
        let FailoverInput::Alarm(a) = parse_input(&sns).unwrap() else {
            panic!()
        };
        assert_eq!(a.name, "orders-db-primary-unhealthy");
        assert_eq!(a.value, AlarmValue::Alarm);

        let action = json!({"source": "aws.cloudwatch", "alarmArn": "arn:x", "time": "2026-11-25T10:00:01Z",
            "alarmData": {"alarmName": "orders-db-primary-unhealthy", "state": {"value": "OK", "timestamp": "2026-11-25T10:00:01.000+0000"}}});
        let FailoverInput::Alarm(a) = parse_input(&action).unwrap() else {
            panic!()
        };
        assert_eq!(a.value, AlarmValue::Ok);
    }

    #[test]
    fn ticks_rds_events_and_commands_parse() {
        let tick = json!({"version": "0", "account": "123456789012", "region": "us-east-1", "resources": [], "id": "t", "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-25T10:00:00Z", "detail": {}});
        assert_eq!(parse_input(&tick).unwrap(), FailoverInput::Tick);
        let rds = json!({"version": "0", "account": "123456789012", "region": "us-east-1", "resources": [], "time": "2026-11-25T10:00:00Z", "id": "r", "detail-type": "RDS DB Instance Event", "source": "aws.rds", "detail": {"EventID": "RDS-EVENT-0008"}});
        assert_eq!(parse_input(&rds).unwrap(), FailoverInput::Tick);
        assert_eq!(
            parse_input(&json!({"action": "force", "reason": "game day"})).unwrap(),
            FailoverInput::Command(Command::Force {
                reason: "game day".into()
            })
        );
        for (a, c) in [
            ("status", Command::Status),
            ("approve", Command::Approve),
            ("cancel", Command::Cancel),
            ("ack", Command::Ack),
        ] {
            assert_eq!(
                parse_input(&json!({"action": a})).unwrap(),
                FailoverInput::Command(c)
            );
        }
    }

    #[test]
    fn bad_input_is_refused_with_what_was_expected() {
        for (payload, words) in [
            (json!({"action": "force"}), "needs a \"reason\""),
            (
                json!({"action": "force", "reason": "  "}),
                "needs a \"reason\"",
            ),
            (json!({"action": "promote"}), "unknown action \"promote\""),
            (
                json!({"action": "status", "reason": "x"}),
                "only goes with \"force\"",
            ),
            (
                json!({"action": "status", "extra": 1}),
                "unknown field `extra`",
            ),
            (
                json!({"version": "0", "account": "123456789012", "region": "us-east-1", "resources": [], "time": "2026-11-25T10:00:00Z", "id": "x", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
                    "detail": {"alarmName": "a", "state": {"value": "RED", "timestamp": "2026-11-25T10:00:00Z"}}}),
                "unknown alarm state \"RED\"",
            ),
            (
                {
                    let mut e: serde_json::Value = serde_json::from_str(include_str!(
                        "../../../events/failover-alarm-sns.json"
                    ))
                    .unwrap();
                    e["Records"][0]["Sns"]["Message"] = json!("not json");
                    e
                },
                "not a CloudWatch alarm notification",
            ),
            (
                json!({"Records": [{"Sns": {"Message": "{}"}}]}),
                "malformed SNS event",
            ),
            (json!(42), "takes a JSON object, got a number"),
        ] {
            let err = parse_input(&payload).unwrap_err();
            assert!(err.0.contains(words), "{payload}: {err}");
        }
    }

    #[test]
    fn the_shipped_samples_parse() {
        for text in [
            include_str!("../../../events/failover-alarm.json"),
            include_str!("../../../events/failover-alarm-sns.json"),
            include_str!("../../../events/failover-tick.json"),
            include_str!("../../../events/failover-rds-event.json"),
            include_str!("../../../events/failover-status.json"),
            include_str!("../../../events/failover-approve.json"),
            include_str!("../../../events/failover-force.json"),
            include_str!("../../../events/failover-cancel.json"),
            include_str!("../../../events/failover-ack.json"),
        ] {
            let payload: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(parse_input(&payload).is_ok(), "{text}");
        }
    }

    #[test]
    fn an_array_is_never_read_as_a_command_or_an_alarm() {
        for payload in [
            json!(["force", "x"]),
            json!(["ack"]),
            json!([{"action": "approve"}]),
        ] {
            let err = parse_input(&payload).unwrap_err();
            assert!(
                err.0.contains("takes a JSON object, got an array"),
                "{payload}: {err}"
            );
        }
        // Inside an event too: an alarm's detail, an SNS record, an SNS message.
        let mut eb: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/failover-alarm.json")).unwrap();
        eb["detail"] = json!(["orders-db-primary-unhealthy", {"value": "ALARM"}]);
        let err = parse_input(&eb).unwrap_err();
        assert!(err.0.contains("`detail` is an array"), "{err}");
        let mut sns: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/failover-alarm-sns.json")).unwrap();
        sns["Records"][0]["Sns"]["Message"] = json!(r#"["orders-db-primary-unhealthy", "ALARM"]"#);
        let err = parse_input(&sns).unwrap_err();
        assert!(
            err.0.contains("not a CloudWatch alarm notification"),
            "{err}"
        );
        assert!(
            err.0.contains("must be a JSON object, got an array"),
            "{err}"
        );
    }

    fn sample(name: &str) -> serde_json::Value {
        let text =
            std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn an_alarm_time_that_does_not_parse_is_refused_not_replaced() {
        let mut eb = sample("failover-alarm.json");
        eb["detail"]["state"]["timestamp"] = json!("next tuesday");
        let err = parse_input(&eb).unwrap_err();
        assert!(
            err.0.contains("detail.state.timestamp \"next tuesday\""),
            "{err}"
        );
        let mut sns = sample("failover-alarm-sns.json");
        let mut message: serde_json::Value =
            serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        message["StateChangeTime"] = json!("2026-13-45T99:00:00.000+0000");
        sns["Records"][0]["Sns"]["Message"] = json!(message.to_string());
        let err = parse_input(&sns).unwrap_err();
        assert!(err.0.contains("StateChangeTime"), "{err}");
        let action = json!({"source": "aws.cloudwatch", "alarmArn": "arn:x", "time": "soon",
            "alarmData": {"alarmName": "a", "state": {"value": "ALARM"}}});
        let err = parse_input(&action).unwrap_err();
        assert!(err.0.contains("the alarm action's time \"soon\""), "{err}");
    }

    #[test]
    fn an_sns_event_is_one_record_of_the_fields_sns_sends() {
        let sns = sample("failover-alarm-sns.json");
        let mut two = sns.clone();
        let record = two["Records"][0].clone();
        two["Records"].as_array_mut().unwrap().push(record);
        let err = parse_input(&two).unwrap_err();
        assert!(err.0.contains("has 2 records"), "{err}");
        let mut none = sns.clone();
        none["Records"] = json!([]);
        assert!(parse_input(&none).unwrap_err().0.contains("has 0 records"));
        for (place, key) in [
            ("record", "Extra"),
            ("sns", "ForceFailover"),
            ("top", "action2"),
        ] {
            let mut e = sns.clone();
            match place {
                "record" => e["Records"][0][key] = json!(true),
                "sns" => e["Records"][0]["Sns"][key] = json!(true),
                _ => e[key] = json!(true),
            }
            let err = parse_input(&e).unwrap_err();
            assert!(err.0.contains(&format!("field `{key}`")), "{err}");
        }
        // A key twice inside the message is as ambiguous as one twice around it.
        let mut dup = sns.clone();
        dup["Records"][0]["Sns"]["Message"] = json!(
            r#"{"AlarmName": "orders-db-primary-unhealthy", "NewStateValue": "OK", "NewStateValue": "ALARM"}"#
        );
        let err = parse_input(&dup).unwrap_err();
        assert!(err.0.contains("twice"), "{err}");
    }

    #[test]
    fn an_event_id_with_a_blank_or_invisible_character_is_refused() {
        for id in ["\u{200b}", " ", "evt 1", "evt-1\u{202e}"] {
            let mut eb = sample("failover-alarm.json");
            eb["id"] = json!(id);
            let err = parse_input(&eb).unwrap_err();
            assert!(
                err.0.contains("`id`") || err.0.contains("id"),
                "{id:?}: {err}"
            );
        }
    }

    proptest::proptest! {
        /// An alarm is taken in unless it is dated more than the clock skew after now, in
        /// whichever way it was delivered.
        #[test]
        fn an_alarm_from_the_future_is_refused(offset in -86_400i64 * 400..86_400 * 4000) {
            let now: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
            let at = now + chrono::Duration::seconds(offset);
            let mut eb = sample("failover-alarm.json");
            eb["detail"]["state"]["timestamp"] = json!(at.to_rfc3339());
            let FailoverInput::Alarm(a) = parse_input(&eb).unwrap() else {
                panic!("not an alarm")
            };
            let taken = check_fire_time(&a, now).is_ok();
            proptest::prop_assert_eq!(taken, offset <= crate::envelope::CLOCK_SKEW_MINUTES * 60);
        }
    }
}
