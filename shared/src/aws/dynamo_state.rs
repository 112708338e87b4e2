//! The state port on one DynamoDB table (`pk` hash key and `sk` range key, both strings).
//!
//! Items:
//! - a machine: `pk = plan#<plan>#machine#<name>`, `sk = state`, with `version`, `doc`
//!   (the JSON document), `updated_at` and, while an invocation acts on it,
//!   `lease_holder` and `lease_until` (epoch ms), which fence the commit ending its step;
//! - an idempotency claim: `pk = plan#<plan>#idem#<key>`, `sk = claim`, with `status`,
//!   `payload_hash`, `token`, `in_progress_until` (epoch ms), `expires_at` (epoch s, the
//!   table's TTL attribute) and, once completed, `result`;
//! - a timeline entry: `pk = plan#<plan>#timeline`, `sk = <time>#<random>` so a query
//!   returns the timeline in order, with the entry as JSON in `entry`.
//!
//! A commit (a machine's document or a check of its version, and the audit entries of
//! the step) is one `TransactWriteItems`: all of it is written or none.

use crate::error::AwsError;
use crate::error::AwsFailure;
use crate::state::{
    AuditEntry, Claim, ClaimRequest, ClaimToken, Commit, MachineKey, MachineWrite, StateError,
    StateStore, Versioned,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

/// The table's TTL attribute (epoch seconds). DynamoDB removes expired items lazily (the
/// emulator never does), so every read checks it too.
pub const STATE_TABLE_TTL_ATTRIBUTE: &str = "expires_at";

/// The lease a machine's document grants, beside it so that a commit can be fenced by it:
/// the holder's request id, and when it lapses (epoch ms).
const LEASE_HOLDER: &str = "lease_holder";
const LEASE_UNTIL: &str = "lease_until";

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// State on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStateStore {
    client: Client,
    table: String,
}

impl DynamoStateStore {
    /// The store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStateStore {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

fn machine_pk(key: &MachineKey) -> String {
    format!("plan#{}#machine#{}", key.plan, key.machine)
}

fn claim_pk(plan: &str, key: &str) -> String {
    format!("plan#{plan}#idem#{key}")
}

fn timeline_pk(plan: &str) -> String {
    format!("plan#{plan}#timeline")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &HashMap<String, AttributeValue>, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn is_condition_failure<E>(
    err: &aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// The item a failed conditional put found (asked for with `ALL_OLD`).
fn old_item(
    err: &aws_sdk_dynamodb::error::SdkError<PutItemError, aws_smithy_runtime_api::http::Response>,
) -> Option<HashMap<String, AttributeValue>> {
    match err.as_service_error()? {
        PutItemError::ConditionalCheckFailedException(c) => c.item.clone(),
        _ => None,
    }
}

/// The condition a machine's part of a commit needs: the version read, and with a fence,
/// the writer's lease still held and not lapsed at `now`.
fn machine_condition(
    m: &MachineWrite,
    now: DateTime<Utc>,
) -> (String, HashMap<String, AttributeValue>) {
    let mut values = HashMap::new();
    let mut condition = match m.expected {
        None => "attribute_not_exists(pk)".to_string(),
        Some(v) => {
            values.insert(":expected".to_string(), n(v));
            "#v = :expected".to_string()
        }
    };
    if let Some(holder) = &m.fence {
        values.insert(":holder".to_string(), s(holder));
        values.insert(":now_ms".to_string(), n(now.timestamp_millis()));
        condition.push_str(" AND #lh = :holder AND #lu > :now_ms");
    }
    (condition, values)
}

/// A timeline entry as an item: ordered by time, never colliding (a random suffix).
fn timeline_item(
    plan: &str,
    entry: &AuditEntry,
) -> Result<HashMap<String, AttributeValue>, StateError> {
    let sk = format!(
        "{}#{}",
        entry.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        random_token()
    );
    let json = serde_json::to_string(entry).map_err(|e| StateError::Corrupt {
        key: timeline_pk(plan),
        reason: format!("cannot serialise the audit entry: {e}"),
    })?;
    Ok(HashMap::from([
        ("pk".to_string(), s(timeline_pk(plan))),
        ("sk".to_string(), s(sk)),
        ("action".to_string(), s(&entry.action)),
        ("outcome".to_string(), s(entry.outcome.to_string())),
        ("entry".to_string(), s(json)),
    ]))
}

/// What a refused transaction means. The machine comes first in the transaction, so its
/// cancellation reason is the first: a failed condition there is another writer (a new
/// version) or, with the version unchanged, a lease that lapsed. A transaction cancelled
/// for throttling or a conflicting transaction is a throttled call (retry with backoff).
fn commit_error(
    commit: &Commit,
    resource: &str,
    err: &aws_sdk_dynamodb::error::SdkError<
        TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
) -> StateError {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return AwsError::from_sdk("dynamodb", "TransactWriteItems", resource, err).into();
    };
    let reasons = cancelled.cancellation_reasons();
    if let Some(m) = &commit.machine
        && let Some(first) = reasons.first()
        && first.code() == Some("ConditionalCheckFailed")
    {
        let found = first.item().and_then(|item| get_n::<u64>(item, "version"));
        return match (&m.fence, m.expected) {
            (Some(holder), Some(expected)) if found == Some(expected) => StateError::LeaseLapsed {
                key: m.key.to_string(),
                holder: holder.clone(),
            },
            _ => StateError::Conflict {
                key: m.key.to_string(),
                expected: m.expected,
                found,
            },
        };
    }
    let mut e = AwsError::from_sdk("dynamodb", "TransactWriteItems", resource, err);
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
    if codes.iter().any(|c| {
        matches!(
            *c,
            "ThrottlingError" | "TransactionConflict" | "ProvisionedThroughputExceeded"
        )
    }) {
        e.failure = AwsFailure::Throttled;
    }
    e.message = format!("{} (reasons: {})", e.message, codes.join(", "));
    e.into()
}

fn random_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // No RNG dependency: time, process id, a process-wide counter and an address mixed by
    // SHA-256 are unique across concurrent invocations, which is all a token needs.
    let seed = format!(
        "{}-{}-{}-{:p}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        &COUNTER
    );
    crate::state::payload_hash(&serde_json::Value::String(seed))[..32].to_string()
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn load_json(
        &self,
        key: &MachineKey,
    ) -> Result<Option<Versioned<serde_json::Value>>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(machine_pk(key)))
            .key("sk", s("state"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb", "GetItem", key.to_string(), &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let corrupt = |reason: &str| StateError::Corrupt {
            key: key.to_string(),
            reason: reason.to_string(),
        };
        let version =
            get_n::<u64>(&item, "version").ok_or_else(|| corrupt("no numeric `version`"))?;
        let doc = get_s(&item, "doc").ok_or_else(|| corrupt("no `doc` string"))?;
        let value =
            serde_json::from_str(doc).map_err(|e| corrupt(&format!("`doc` is not JSON: {e}")))?;
        let updated_at = get_s(&item, "updated_at")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| corrupt("no RFC 3339 `updated_at`"))?;
        Ok(Some(Versioned {
            version,
            updated_at,
            value,
        }))
    }

    async fn commit(&self, commit: &Commit) -> Result<Option<u64>, StateError> {
        let bad = |e: aws_smithy_types::error::operation::BuildError| {
            StateError::from(AwsError::bad_request(
                "dynamodb",
                "TransactWriteItems",
                commit.plan.clone(),
                e.to_string(),
            ))
        };
        let mut items = Vec::with_capacity(commit.entries.len() + 1);
        let mut version = None;
        if let Some(m) = &commit.machine {
            let (condition, values) = machine_condition(m, commit.now);
            let names = [
                ("#v".to_string(), "version".to_string()),
                ("#lh".to_string(), LEASE_HOLDER.to_string()),
                ("#lu".to_string(), LEASE_UNTIL.to_string()),
            ];
            let names: HashMap<String, String> = names
                .into_iter()
                .filter(|(k, _)| condition.contains(k.as_str()))
                .collect();
            let names = (!names.is_empty()).then_some(names);
            let values = (!values.is_empty()).then_some(values);
            version = m.expected;
            let item = match &m.value {
                Some(value) => {
                    let next = m.expected.map_or(1, |v| v + 1);
                    version = Some(next);
                    let mut item = HashMap::from([
                        ("pk".to_string(), s(machine_pk(&m.key))),
                        ("sk".to_string(), s("state")),
                        ("version".to_string(), n(next)),
                        ("doc".to_string(), s(value.to_string())),
                        (
                            "updated_at".to_string(),
                            s(commit.now.to_rfc3339_opts(SecondsFormat::Millis, true)),
                        ),
                    ]);
                    if let Some(lease) = &m.grants {
                        item.insert(LEASE_HOLDER.into(), s(&lease.holder));
                        item.insert(LEASE_UNTIL.into(), n(lease.until.timestamp_millis()));
                    }
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(&self.table)
                                .set_item(Some(item))
                                .condition_expression(condition)
                                .set_expression_attribute_names(names)
                                .set_expression_attribute_values(values)
                                .return_values_on_condition_check_failure(
                                    ReturnValuesOnConditionCheckFailure::AllOld,
                                )
                                .build()
                                .map_err(bad)?,
                        )
                        .build()
                }
                None => TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .key("pk", s(machine_pk(&m.key)))
                            .key("sk", s("state"))
                            .condition_expression(condition)
                            .set_expression_attribute_names(names)
                            .set_expression_attribute_values(values)
                            .return_values_on_condition_check_failure(
                                ReturnValuesOnConditionCheckFailure::AllOld,
                            )
                            .build()
                            .map_err(bad)?,
                    )
                    .build(),
            };
            items.push(item);
        }
        for entry in &commit.entries {
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(timeline_item(&commit.plan, entry)?))
                            // Append-only: an entry is never overwritten.
                            .condition_expression("attribute_not_exists(sk)")
                            .build()
                            .map_err(bad)?,
                    )
                    .build(),
            );
        }
        if items.is_empty() {
            return Ok(version);
        }
        let resource = commit
            .machine
            .as_ref()
            .map_or_else(|| timeline_pk(&commit.plan), |m| m.key.to_string());
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(version),
            Err(e) => Err(commit_error(commit, &resource, &e)),
        }
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StateError> {
        let token = random_token();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(claim_pk(&request.plan, &request.key)))
            .item("sk", s("claim"))
            .item("status", s(IN_PROGRESS))
            .item("payload_hash", s(&request.payload_hash))
            .item("token", s(&token))
            .item("in_progress_until", n(request.in_progress_until.timestamp_millis()))
            .item(STATE_TABLE_TTL_ATTRIBUTE, n(request.expires_at.timestamp()))
            // Free, expired (TTL removal lags), or held by a crashed invocation whose
            // deadline has passed.
            .condition_expression(
                "attribute_not_exists(pk) OR #exp < :now_s OR (#st = :in_progress AND #until < :now_ms)",
            )
            .expression_attribute_names("#exp", STATE_TABLE_TTL_ATTRIBUTE)
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#until", "in_progress_until")
            .expression_attribute_values(":now_s", n(request.now.timestamp()))
            .expression_attribute_values(":now_ms", n(request.now.timestamp_millis()))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired(ClaimToken {
                plan: request.plan.clone(),
                key: request.key.clone(),
                token,
            })),
            Err(e) if is_condition_failure(&e) => {
                let old = old_item(&e).unwrap_or_default();
                if get_s(&old, "payload_hash") != Some(request.payload_hash.as_str()) {
                    return Err(StateError::PayloadMismatch {
                        key: request.key.clone(),
                    });
                }
                match get_s(&old, "status") {
                    Some(COMPLETED) => {
                        let result = get_s(&old, "result")
                            .map(serde_json::from_str)
                            .transpose()
                            .map_err(|e| StateError::Corrupt {
                                key: claim_pk(&request.plan, &request.key),
                                reason: format!("stored result is not JSON: {e}"),
                            })?
                            .unwrap_or(serde_json::Value::Null);
                        Ok(Claim::AlreadyDone(result))
                    }
                    _ => {
                        let until = get_n::<i64>(&old, "in_progress_until")
                            .and_then(DateTime::from_timestamp_millis)
                            .unwrap_or(request.in_progress_until);
                        Ok(Claim::InProgress { until })
                    }
                }
            }
            Err(e) => Err(AwsError::from_sdk("dynamodb", "PutItem", &request.key, &e).into()),
        }
    }

    async fn complete(
        &self,
        token: &ClaimToken,
        result: &serde_json::Value,
    ) -> Result<(), StateError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(claim_pk(&token.plan, &token.key)))
            .key("sk", s("claim"))
            .update_expression("SET #st = :completed, #res = :result")
            .condition_expression("#tok = :token")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#res", "result")
            .expression_attribute_names("#tok", "token")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":result", s(result.to_string()))
            .expression_attribute_values(":token", s(&token.token))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StateError::ClaimLost {
                key: token.key.clone(),
            }),
            Err(e) => Err(AwsError::from_sdk("dynamodb", "UpdateItem", &token.key, &e).into()),
        }
    }

    async fn release(&self, token: &ClaimToken) -> Result<(), StateError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(claim_pk(&token.plan, &token.key)))
            .key("sk", s("claim"))
            .condition_expression("#tok = :token")
            .expression_attribute_names("#tok", "token")
            .expression_attribute_values(":token", s(&token.token))
            .send()
            .await;
        match out {
            // A claim someone else took over is theirs to release.
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(AwsError::from_sdk("dynamodb", "DeleteItem", &token.key, &e).into()),
        }
    }

    async fn timeline(
        &self,
        plan: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEntry>, StateError> {
        let pk = timeline_pk(plan);
        let mut entries = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(&pk))
                .set_exclusive_start_key(start.take());
            query = match since {
                Some(t) => query
                    .key_condition_expression("pk = :pk AND sk >= :since")
                    .expression_attribute_values(
                        ":since",
                        s(t.to_rfc3339_opts(SecondsFormat::Micros, true)),
                    ),
                None => query.key_condition_expression("pk = :pk"),
            };
            let out = query
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("dynamodb", "Query", &pk, &e))?;
            for item in out.items() {
                let json = get_s(item, "entry").ok_or_else(|| StateError::Corrupt {
                    key: pk.clone(),
                    reason: "a timeline item has no `entry`".into(),
                })?;
                entries.push(serde_json::from_str(json).map_err(|e| StateError::Corrupt {
                    key: pk.clone(),
                    reason: format!("a timeline entry is not valid: {e}"),
                })?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(entries)
    }
}
