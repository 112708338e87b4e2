//! What an invocation's payload must be before any function reads it.
//!
//! Every request Lifeboat accepts is a JSON object: an EventBridge or SNS envelope, or an
//! operator's command. serde's derived deserialisers also read a struct from a JSON
//! array (its fields in order), and several requests have only optional fields, so `[]`
//! would read as `{}` — for the snapshot and retention functions a real run. So a payload
//! that is not an object is refused here, naming what it is and what was expected, before
//! anything is read from it; and every request type is read through [`from_object`],
//! which also refuses an array wherever the type expects an object further down.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use std::fmt;

/// The JSON type of a value, as the refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonKind {
    /// The type of `value`.
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Boolean,
            Value::Number(_) => JsonKind::Number,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonKind::Null => "null",
            JsonKind::Boolean => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        })
    }
}

/// A request whose shape is wrong: nothing was read from it and nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The payload is not a JSON object.
    #[error(
        "the {function} function takes a JSON object, got {got}: nothing was read from it and nothing was done. It expects {expects}; the samples in events/ show each one (events/README.md lists them)"
    )]
    NotAnObject {
        /// The function.
        function: &'static str,
        /// What the payload is.
        got: JsonKind,
        /// What the function accepts, in words.
        expects: &'static str,
    },
    /// A key appears twice in one object: JSON readers differ on which one counts (serde
    /// took the last, so `{"action":"status","action":"force"}` was a forced failover).
    #[error(
        "the {function} function got a request with the key `{path}` twice in the same object: nothing was read from it and nothing was done. Send each key once"
    )]
    DuplicateKey {
        /// The function.
        function: &'static str,
        /// Where, as a JSON path (`detail.state.value`).
        path: String,
    },
    /// The payload is not JSON at all.
    #[error(
        "the {function} function got a payload that is not JSON ({reason}): nothing was done. The samples in events/ show each request"
    )]
    NotJson {
        /// The function.
        function: &'static str,
        /// The reader's complaint.
        reason: String,
    },
    /// Nested deeper than any request Lifeboat takes.
    #[error(
        "the {function} function got a payload nested more than {MAX_DEPTH} levels deep: nothing was read from it and nothing was done. No request of Lifeboat's is deeper than a few levels; the samples in events/ show each one"
    )]
    TooDeep {
        /// The function.
        function: &'static str,
    },
    /// Somewhere inside the request, an array stands where an object belongs.
    #[error(
        "{what}: `{path}` must be a JSON object, got an array; nothing was done. The samples in events/ show the shape"
    )]
    ArrayForObject {
        /// The request, e.g. `the "recover" command`.
        what: String,
        /// Where, as a JSON path (`assertions[0]`).
        path: String,
    },
}

impl crate::error::Classify for RequestError {
    fn retry(&self) -> crate::error::Retry {
        crate::error::Retry::NonRetryable
    }
}

/// What each function accepts, in words, for the refusal of a payload that is not an
/// object. A function not listed here still refuses; it points at events/.
pub fn expected_by(function: &str) -> &'static str {
    match function {
        "snapshot" => {
            "an EventBridge \"Scheduled Event\", an RDS snapshot event, or {\"resources\": [...], \"tier\": \"...\"} (events/snapshot-*.json)"
        }
        "retention" => {
            "an EventBridge \"Scheduled Event\", or {} or {\"dry_run\": true} from an operator (events/retention-*.json)"
        }
        "restore-validator" => {
            "an EventBridge \"Scheduled Event\", an RDS event, {\"action\": \"tick\"}, or {\"resource\": \"<plan resource id>\"} (events/validation-*.json)"
        }
        "failover" => {
            "a \"CloudWatch Alarm State Change\" (EventBridge or SNS), a \"Scheduled Event\", an RDS event, or an operator's {\"action\": ...} (events/failover-*.json, game-day*.json)"
        }
        "recovery" => {
            "its \"Scheduled Event\", an RDS event of a recovered database, or {\"action\": \"recover\" | \"recovery-status\" | \"cutover\" | \"discard\", ...} (events/recover.json, recovery-*.json, cutover.json, discard.json)"
        }
        "failback" => {
            "a \"Scheduled Event\", an RDS event, or {\"action\": \"start\" | \"status\" | \"pause\" | \"resume\" | \"abort\"} (events/failback-*.json)"
        }
        "readiness" => {
            "its \"Scheduled Event\", or {\"action\": \"readiness\"} (events/readiness*.json)"
        }
        _ => "one of the events in events/",
    }
}

/// The payload as the object it must be; anything else is refused with what it is and
/// what `function` expects.
pub fn require_object<'a>(
    function: &'static str,
    payload: &'a Value,
) -> Result<&'a Map<String, Value>, RequestError> {
    payload.as_object().ok_or(RequestError::NotAnObject {
        function,
        got: JsonKind::of(payload),
        expects: expected_by(function),
    })
}

/// Why a request (or a part of one) could not be read as what it should be.
#[derive(Debug, thiserror::Error)]
pub enum ReadError<E: std::error::Error + 'static> {
    /// An array stands where an object belongs.
    #[error(transparent)]
    Shape(RequestError),
    /// The value does not fit the type (serde's error).
    #[error(transparent)]
    Fit(E),
}

/// Read a request (or a part of one) with `read`, refusing what serde alone would
/// accept: an array standing for an object. `what` names the request in the refusal.
///
/// The value is read first, then written back: wherever the result holds an object (a
/// struct) but the input had an array, the array was read as a struct's fields in
/// order, which no request means.
pub fn from_object<T, E>(
    value: &Value,
    what: &str,
    read: impl FnOnce(&Value) -> Result<T, E>,
) -> Result<T, ReadError<E>>
where
    T: Serialize,
    E: std::error::Error + 'static,
{
    let parsed = read(value).map_err(ReadError::Fit)?;
    if let Ok(written) = serde_json::to_value(&parsed)
        && let Some(path) = array_for_object(value, &written, String::new())
    {
        return Err(ReadError::Shape(RequestError::ArrayForObject {
            what: what.to_string(),
            path: if path.is_empty() {
                "(the whole request)".into()
            } else {
                path
            },
        }));
    }
    Ok(parsed)
}

/// `serde_json::from_value` through [`from_object`].
pub fn value_as<T: DeserializeOwned + Serialize>(
    value: &Value,
    what: &str,
) -> Result<T, ReadError<serde_json::Error>> {
    from_object(value, what, |v| serde_json::from_value::<T>(v.clone()))
}

/// The first path (JSON-path-like, `a.b[2]`) at which `input` has an array and `written`
/// (the same request read and written back) an object.
fn array_for_object(input: &Value, written: &Value, at: String) -> Option<String> {
    match (input, written) {
        (Value::Array(_), Value::Object(_)) => Some(at),
        (Value::Object(i), Value::Object(w)) => w.iter().find_map(|(k, wv)| {
            let iv = i.get(k)?;
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            array_for_object(iv, wv, path)
        }),
        (Value::Array(i), Value::Array(w)) => i
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(n, (iv, wv))| array_for_object(iv, wv, format!("{at}[{n}]"))),
        _ => None,
    }
}

/// Whether `text` has something a reader can see: not only whitespace, control
/// characters or invisible formatting characters (zero-width spaces and joiners,
/// direction marks, the byte-order mark, soft hyphens, variation selectors, tags).
pub fn has_visible_text(text: &str) -> bool {
    text.chars().any(is_visible)
}

/// Whether every character of `text` (and at least one) is visible: an identifier AWS
/// writes (an event id) is never blank, and one that only looks like another is refused.
pub fn is_visible_token(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_visible)
}

/// A character that puts ink on the page: a letter, number, punctuation or symbol, and
/// not one of the blanks Unicode files under those. Marks count only beside a base
/// character (a combining accent alone shows nothing).
fn is_visible(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    ) && !blank_lookalike(c)
}

/// Letters and symbols that render as nothing: Hangul fillers, Khmer inherent vowels,
/// the Braille blank, and the format characters older fonts draw blank.
fn blank_lookalike(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x2800 | 0x3164
        | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

/// Deepest nesting of objects and arrays a payload may have. Lifeboat's deepest request is
/// a handful of levels; the limit sits below the JSON reader's own (128), so that a deeper
/// payload gets this refusal rather than the reader's.
pub const MAX_DEPTH: usize = 64;

/// How deeply `text`'s objects and arrays nest (brackets inside strings do not count).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// An invocation's payload as it came off the wire: the JSON value, and the first key
/// that appeared twice in one object, if any. Lambda hands the payload over as bytes;
/// reading it through this type is the only point where a duplicate key can still be
/// seen (a [`Value`] keeps one of the two).
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// The value (of a duplicated key, the last).
    pub value: Value,
    /// The path of the first duplicated key.
    pub duplicate: Option<String>,
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload {
            value,
            duplicate: None,
        }
    }
}

impl Payload {
    /// Read a payload from its JSON text.
    pub fn from_json(function: &'static str, text: &str) -> Result<Self, RequestError> {
        if nesting_depth(text) > MAX_DEPTH {
            return Err(RequestError::TooDeep { function });
        }
        serde_json::from_str(text).map_err(|e| RequestError::NotJson {
            function,
            reason: e.to_string(),
        })
    }

    /// The value, unless a key was duplicated.
    pub fn into_value(self, function: &'static str) -> Result<Value, RequestError> {
        match self.duplicate {
            Some(path) => Err(RequestError::DuplicateKey { function, path }),
            None => Ok(self.value),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let duplicate = std::cell::RefCell::new(None);
        let value = serde::de::DeserializeSeed::deserialize(
            Node {
                path: String::new(),
                duplicate: &duplicate,
            },
            d,
        )?;
        Ok(Payload {
            value,
            duplicate: duplicate.into_inner(),
        })
    }
}

/// One value of the payload being read, at `path`.
struct Node<'a> {
    path: String,
    duplicate: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Node {
            path: format!("{}[{}]", self.path, items.len()),
            duplicate: self.duplicate,
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                self.duplicate
                    .borrow_mut()
                    .get_or_insert_with(|| path.clone());
            }
            let v = map.next_value_seed(Node {
                path,
                duplicate: self.duplicate,
            })?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

/// Generators of arbitrary JSON and of mutated sample events, for the property tests of
/// every parser.
#[cfg(test)]
pub mod arbitrary {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    /// Any JSON value, nested a few levels, with keys drawn partly from the names real
    /// requests use so that the parsers' branches are reached.
    pub fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(KEYS).prop_map(str::to_string),
            "[a-z_-]{0,12}",
        ]
    }

    fn string() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(WORDS).prop_map(str::to_string),
            ".{0,24}",
        ]
    }

    /// Field names of the requests and envelopes Lifeboat reads.
    const KEYS: &[&str] = &[
        "action",
        "reason",
        "resources",
        "resource",
        "tier",
        "dry_run",
        "snapshot",
        "recovery",
        "restore_time",
        "assertions",
        "force",
        "mode",
        "id",
        "who",
        "command_id",
        "detail-type",
        "source",
        "detail",
        "time",
        "version",
        "account",
        "region",
        "Records",
        "Sns",
        "Message",
        "MessageId",
        "alarmData",
        "alarmName",
        "state",
        "value",
        "timestamp",
        "SourceIdentifier",
        "SourceArn",
    ];

    /// Values that make the parsers go deep.
    const WORDS: &[&str] = &[
        "status",
        "force",
        "approve",
        "cancel",
        "ack",
        "readiness",
        "start",
        "pause",
        "resume",
        "abort",
        "tick",
        "recover",
        "recovery-status",
        "cutover",
        "discard",
        "game-day",
        "game-day-status",
        "Scheduled Event",
        "aws.events",
        "aws.scheduler",
        "aws.rds",
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        "RDS DB Snapshot Event",
        "RDS DB Instance Event",
        "ALARM",
        "OK",
        "orders-db",
        "signal_only",
        "monthly",
        "latest",
        "2026-11-25T10:00:00Z",
    ];

    /// `sample` changed in one of the ways a hostile or careless caller would: a field
    /// dropped, a field's value replaced by another JSON type, a field (or the whole
    /// event) wrapped in an array, or an arbitrary value put in.
    pub fn mutated(sample: Value) -> impl Strategy<Value = Value> {
        let paths = paths(&sample);
        let n = paths.len().max(1);
        (0..n, 0..5u8, json()).prop_map(move |(i, how, other)| {
            let mut event = sample.clone();
            let Some(path) = paths.get(i) else {
                return Value::Array(vec![event]);
            };
            match how {
                0 => drop_at(&mut event, path),
                1 => {
                    if let Some(v) = at(&mut event, path) {
                        *v = retyped(v);
                    }
                }
                2 => {
                    if let Some(v) = at(&mut event, path) {
                        *v = Value::Array(vec![v.take()]);
                    }
                }
                3 => {
                    if let Some(v) = at(&mut event, path) {
                        *v = other;
                    }
                }
                _ => event = Value::Array(vec![event]),
            }
            event
        })
    }

    /// Every path to a value inside `v` (object keys and array indexes).
    fn paths(v: &Value) -> Vec<Vec<PathStep>> {
        let mut out = Vec::new();
        walk(v, &mut Vec::new(), &mut out);
        out
    }

    #[derive(Debug, Clone)]
    enum PathStep {
        Key(String),
        Index(usize),
    }

    fn walk(v: &Value, here: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    here.push(PathStep::Key(k.clone()));
                    out.push(here.clone());
                    walk(child, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (n, child) in items.iter().enumerate() {
                    here.push(PathStep::Index(n));
                    out.push(here.clone());
                    walk(child, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }

    fn at<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
        path.iter().try_fold(v, |v, step| match step {
            PathStep::Key(k) => v.get_mut(k.as_str()),
            PathStep::Index(n) => v.get_mut(*n),
        })
    }

    fn drop_at(v: &mut Value, path: &[PathStep]) {
        let Some((last, parent)) = path.split_last() else {
            return;
        };
        match (at(v, parent), last) {
            (Some(Value::Object(m)), PathStep::Key(k)) => {
                m.remove(k);
            }
            (Some(Value::Array(items)), PathStep::Index(n)) if *n < items.len() => {
                items.remove(*n);
            }
            _ => {}
        }
    }

    /// The same content as another JSON type.
    fn retyped(v: &Value) -> Value {
        match v {
            Value::Null => json!(0),
            Value::Bool(b) => json!(b.to_string()),
            Value::Number(n) => json!(n.to_string()),
            Value::String(s) => match s.parse::<f64>() {
                Ok(n) => json!(n),
                Err(_) => json!([s]),
            },
            Value::Array(items) => Value::Object(
                items
                    .iter()
                    .enumerate()
                    .map(|(n, x)| (n.to_string(), x.clone()))
                    .collect(),
            ),
            Value::Object(m) => Value::Array(m.values().cloned().collect()),
        }
    }

    /// Every sample in events/, with the function it is for.
    pub const SAMPLES: &[(&str, &str, &str)] = &[
        (
            "recovery",
            "cutover.json",
            include_str!("../../events/cutover.json"),
        ),
        (
            "recovery",
            "discard.json",
            include_str!("../../events/discard.json"),
        ),
        (
            "failback",
            "failback-abort.json",
            include_str!("../../events/failback-abort.json"),
        ),
        (
            "failback",
            "failback-pause.json",
            include_str!("../../events/failback-pause.json"),
        ),
        (
            "failback",
            "failback-resume.json",
            include_str!("../../events/failback-resume.json"),
        ),
        (
            "failback",
            "failback-start.json",
            include_str!("../../events/failback-start.json"),
        ),
        (
            "failback",
            "failback-status.json",
            include_str!("../../events/failback-status.json"),
        ),
        (
            "failback",
            "failback-tick.json",
            include_str!("../../events/failback-tick.json"),
        ),
        (
            "failover",
            "failover-ack.json",
            include_str!("../../events/failover-ack.json"),
        ),
        (
            "failover",
            "failover-alarm-sns.json",
            include_str!("../../events/failover-alarm-sns.json"),
        ),
        (
            "failover",
            "failover-alarm.json",
            include_str!("../../events/failover-alarm.json"),
        ),
        (
            "failover",
            "failover-approve.json",
            include_str!("../../events/failover-approve.json"),
        ),
        (
            "failover",
            "failover-cancel.json",
            include_str!("../../events/failover-cancel.json"),
        ),
        (
            "failover",
            "failover-force.json",
            include_str!("../../events/failover-force.json"),
        ),
        (
            "failover",
            "failover-rds-event.json",
            include_str!("../../events/failover-rds-event.json"),
        ),
        (
            "failover",
            "failover-status.json",
            include_str!("../../events/failover-status.json"),
        ),
        (
            "failover",
            "failover-tick.json",
            include_str!("../../events/failover-tick.json"),
        ),
        (
            "failover",
            "game-day-status.json",
            include_str!("../../events/game-day-status.json"),
        ),
        (
            "failover",
            "game-day.json",
            include_str!("../../events/game-day.json"),
        ),
        (
            "readiness",
            "readiness-schedule.json",
            include_str!("../../events/readiness-schedule.json"),
        ),
        (
            "readiness",
            "readiness.json",
            include_str!("../../events/readiness.json"),
        ),
        (
            "recovery",
            "recover.json",
            include_str!("../../events/recover.json"),
        ),
        (
            "recovery",
            "recovery-rds-event.json",
            include_str!("../../events/recovery-rds-event.json"),
        ),
        (
            "recovery",
            "recovery-status.json",
            include_str!("../../events/recovery-status.json"),
        ),
        (
            "recovery",
            "recovery-tick.json",
            include_str!("../../events/recovery-tick.json"),
        ),
        (
            "retention",
            "retention-dry-run.json",
            include_str!("../../events/retention-dry-run.json"),
        ),
        (
            "retention",
            "retention-scheduled.json",
            include_str!("../../events/retention-scheduled.json"),
        ),
        (
            "snapshot",
            "snapshot-manual.json",
            include_str!("../../events/snapshot-manual.json"),
        ),
        (
            "snapshot",
            "snapshot-rds-cluster-snapshot-created.json",
            include_str!("../../events/snapshot-rds-cluster-snapshot-created.json"),
        ),
        (
            "snapshot",
            "snapshot-rds-snapshot-created.json",
            include_str!("../../events/snapshot-rds-snapshot-created.json"),
        ),
        (
            "snapshot",
            "snapshot-schedule.json",
            include_str!("../../events/snapshot-schedule.json"),
        ),
        (
            "restore-validator",
            "validation-manual-snapshot.json",
            include_str!("../../events/validation-manual-snapshot.json"),
        ),
        (
            "restore-validator",
            "validation-manual.json",
            include_str!("../../events/validation-manual.json"),
        ),
        (
            "restore-validator",
            "validation-rds-event.json",
            include_str!("../../events/validation-rds-event.json"),
        ),
        (
            "restore-validator",
            "validation-schedule.json",
            include_str!("../../events/validation-schedule.json"),
        ),
        (
            "restore-validator",
            "validation-tick.json",
            include_str!("../../events/validation-tick.json"),
        ),
    ];

    /// The samples of `function`, parsed.
    pub fn samples_of(function: &str) -> Vec<Value> {
        SAMPLES
            .iter()
            .filter(|(f, _, _)| *f == function)
            .map(|(_, name, text)| {
                serde_json::from_str(text).unwrap_or_else(|e| panic!("events/{name}: {e}"))
            })
            .collect()
    }

    /// Arbitrary JSON, and every sample of `function` mutated.
    pub fn requests_for(function: &str) -> impl Strategy<Value = Value> {
        let samples = samples_of(function);
        let mutations: Vec<_> = samples.into_iter().map(mutated).collect();
        prop_oneof![
            1 => json(),
            3 => prop::strategy::Union::new(mutations),
        ]
    }

    /// Every value that is not an object: the ones every function must refuse outright.
    pub fn not_an_object() -> impl Strategy<Value = Value> {
        json().prop_filter("not an object", |v| !v.is_object())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Classify, Retry};
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize)]
    struct Inner {
        name: String,
        #[serde(default)]
        n: u32,
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Outer {
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        flag: bool,
    }

    #[test]
    fn serde_alone_reads_a_struct_from_an_array_and_from_object_refuses_it() {
        // Why this module exists: the derived deserialiser takes `[]` for `{}`.
        assert!(serde_json::from_value::<Outer>(json!([])).is_ok());
        assert!(serde_json::from_value::<Outer>(json!({"items": [["x", 1]]})).is_ok());
        let err = value_as::<Outer>(&json!([]), "the test request").unwrap_err();
        assert!(
            matches!(&err, ReadError::Shape(RequestError::ArrayForObject { path, .. }) if path == "(the whole request)"),
            "{err}"
        );
        let err = value_as::<Outer>(
            &json!({"items": [{"name": "a"}, ["x", 1]]}),
            "the test request",
        )
        .unwrap_err();
        let ReadError::Shape(shape) = err else {
            panic!("{err}")
        };
        assert_eq!(
            shape,
            RequestError::ArrayForObject {
                what: "the test request".into(),
                path: "items[1]".into()
            }
        );
        assert!(
            shape
                .to_string()
                .contains("`items[1]` must be a JSON object, got an array")
        );
        assert!(value_as::<Outer>(&json!({"items": [{"name": "a"}], "flag": true}), "r").is_ok());
        assert!(matches!(
            value_as::<Outer>(&json!({"flag": "yes"}), "r"),
            Err(ReadError::Fit(_))
        ));
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_refused_naming_its_type_and_what_is_expected() {
        for (payload, got) in [
            (json!(null), "null"),
            (json!(true), "a boolean"),
            (json!(3), "a number"),
            (json!(""), "a string"),
            (json!([]), "an array"),
            (json!([{}]), "an array"),
        ] {
            let err = require_object("retention", &payload).unwrap_err();
            assert_eq!(err.retry(), Retry::NonRetryable);
            let text = err.to_string();
            assert!(
                text.contains(&format!("takes a JSON object, got {got}")),
                "{text}"
            );
            assert!(text.contains("{\"dry_run\": true}"), "{text}");
            assert!(text.contains("events/"), "{text}");
        }
        assert!(require_object("retention", &json!({})).is_ok());
        let err = require_object("some-new-function", &json!([])).unwrap_err();
        assert!(
            err.to_string().contains("one of the events in events/"),
            "{err}"
        );
    }

    #[test]
    fn the_sample_list_holds_every_file_in_events() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        on_disk.sort();
        let listed: Vec<String> = arbitrary::SAMPLES
            .iter()
            .map(|(_, n, _)| n.to_string())
            .collect();
        assert_eq!(
            listed, on_disk,
            "add the new sample to request::arbitrary::SAMPLES"
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth_naming_it() {
        for (text, path) in [
            (
                r#"{"action":"status","action":"force","reason":"x"}"#,
                "action",
            ),
            (r#"{"dry_run":true,"dry_run":false}"#, "dry_run"),
            (
                r#"{"action":"game-day","mode":"signal_only","mode":"fis"}"#,
                "mode",
            ),
            (
                r#"{"resource":"orders-db","snapshot":"x","snapshot":null}"#,
                "snapshot",
            ),
            (
                r#"{"detail":{"state":{"value":"OK","value":"ALARM"}}}"#,
                "detail.state.value",
            ),
            (
                r#"{"Records":[{"Sns":{}},{"Sns":{"a":1,"a":2}}]}"#,
                "Records[1].Sns.a",
            ),
        ] {
            let payload = Payload::from_json("failover", text).unwrap();
            let err = payload.into_value("failover").unwrap_err();
            assert_eq!(err.retry(), Retry::NonRetryable);
            assert_eq!(
                err,
                RequestError::DuplicateKey {
                    function: "failover",
                    path: path.into()
                }
            );
            assert!(
                err.to_string().contains(&format!("`{path}` twice")),
                "{err}"
            );
        }
        let fine = Payload::from_json(
            "failover",
            r#"{"a":{"x":1},"b":{"x":[1,1.5,null,"s",true]}}"#,
        )
        .unwrap();
        assert_eq!(
            fine.into_value("failover").unwrap(),
            json!({"a":{"x":1},"b":{"x":[1,1.5,null,"s",true]}})
        );
        assert!(matches!(
            Payload::from_json("failover", "{"),
            Err(RequestError::NotJson { .. })
        ));
    }

    #[test]
    fn a_reason_must_have_visible_text() {
        for r in [
            "",
            " ",
            "\u{200b}",
            "\u{feff}\u{200d}",
            "\0",
            "\t\u{2060}",
            "\u{e0041}",
            // The Braille blank, a combining mark alone, a Hangul filler.
            "\u{2800}",
            "\u{0301}",
            " \u{0301}\u{20dd} ",
            "\u{3164}",
            "\u{00a0}\u{3000}",
        ] {
            assert!(!has_visible_text(r), "{r:?}");
        }
        for r in [
            "x",
            " db is down ",
            "\u{200b}ok",
            "é",
            "e\u{0301}",
            "故障",
            "5",
            "!",
            "€",
        ] {
            assert!(has_visible_text(r), "{r:?}");
        }
    }

    fn value_depth(v: &Value) -> usize {
        match v {
            Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn a_payload_nested_too_deep_is_refused_by_lifeboat_however_deep() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(Payload::from_json("failover", &nested(MAX_DEPTH)).is_ok());
        for n in [MAX_DEPTH + 1, 129, 200, 100_000] {
            // What the Lambda loop receives: the runtime reads the payload as raw text,
            // which has no depth limit, and hands it over.
            let raw: Box<serde_json::value::RawValue> = serde_json::from_str(&nested(n)).unwrap();
            let err = Payload::from_json("failover", raw.get()).unwrap_err();
            assert_eq!(
                err,
                RequestError::TooDeep {
                    function: "failover"
                },
                "{n}"
            );
            assert_eq!(
                crate::error::Classify::retry(&err),
                crate::error::Retry::NonRetryable
            );
        }
        // Brackets inside strings are text.
        let text = format!(r#"{{"reason": "{}"}}"#, "[{".repeat(500));
        assert!(Payload::from_json("failover", &text).is_ok());
    }

    proptest! {
        /// The scan's depth is the value's depth, however the value is written.
        #[test]
        fn nesting_depth_is_the_values_depth(v in arbitrary::json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                v.to_string()
            };
            prop_assert_eq!(nesting_depth(&text), value_depth(&v));
        }
    }

    #[test]
    fn a_token_is_visible_throughout() {
        for t in [
            "",
            " ",
            "a b",
            "a\u{200b}",
            "\u{202e}abc",
            "x\n",
            "\u{2800}",
        ] {
            assert!(!is_visible_token(t), "{t:?}");
        }
        for t in ["m1", "4b9c3b2e-1d4f-4f0e-9a7a-6c9f8f3c2a11", "évènement"] {
            assert!(is_visible_token(t), "{t:?}");
        }
    }

    proptest! {
        /// Any text with one letter or digit in it has visible text; a text of only
        /// whitespace, controls and combining marks has none.
        #[test]
        fn visible_text_needs_a_visible_character(
            blank in proptest::collection::vec(proptest::sample::select(vec![' ', '\t', '\n', '\u{0301}', '\u{200b}', '\u{2800}', '\u{3000}', '\u{feff}']), 0..8),
            ink in proptest::sample::select(vec!['a', 'Z', '7', '故', '-', '#']),
            at in 0usize..8,
        ) {
            let text: String = blank.iter().collect();
            prop_assert!(!has_visible_text(&text));
            let mut chars = blank.clone();
            chars.insert(at.min(chars.len()), ink);
            let text: String = chars.into_iter().collect();
            prop_assert!(has_visible_text(&text));
        }
    }

    proptest! {
        /// Reading through [`Payload`] gives what serde_json gives, and flags exactly the
        /// texts with a key twice in one object.
        #[test]
        fn payload_reads_like_serde_json_and_sees_every_duplicate(
            v in arbitrary::json(), key in "[a-z]{1,3}", dup in any::<bool>()
        ) {
            let mut text = v.to_string();
            if dup {
                text = format!("{{\"{key}\":1,\"x\":{text},\"{key}\":2}}");
            }
            let payload = Payload::from_json("retention", &text).unwrap();
            prop_assert_eq!(&payload.value, &serde_json::from_str::<Value>(&text).unwrap());
            prop_assert_eq!(payload.duplicate.is_some(), dup);
        }

        #[test]
        fn every_value_that_is_not_an_object_is_refused(v in arbitrary::not_an_object()) {
            for function in crate::routing::Function::ALL.map(|f| f.name()) {
                let err = require_object(function, &v).unwrap_err();
                prop_assert_eq!(
                    err,
                    RequestError::NotAnObject { function, got: JsonKind::of(&v), expects: expected_by(function) }
                );
            }
        }

        #[test]
        fn reading_any_value_never_panics_and_never_reads_an_array_as_a_struct(v in arbitrary::json()) {
            if let Ok(outer) = value_as::<Outer>(&v, "r") {
                let written = serde_json::to_value(&outer).unwrap();
                prop_assert!(array_for_object(&v, &written, String::new()).is_none());
                prop_assert!(v.is_object());
            }
        }
    }
}
