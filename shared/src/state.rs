//! Persisted state: versioned state-machine documents, idempotency claims and the audit
//! timeline.
//!
//! Every state change is a conditional write on a version number (optimistic
//! concurrency): of two invocations racing on the same event, exactly one writes and the
//! other gets [`StateError::Conflict`], never a silent overwrite. Idempotency follows the
//! reference design (Powertools for AWS Lambda): a record per event key with an
//! in-progress status whose expiry follows the invocation's remaining time, the stored
//! result returned to a duplicate, and a payload hash that refuses a different event
//! reusing a key. In addition, each claim carries a random token, so a holder whose claim
//! expired and was taken over cannot complete or release the newer claim.

use crate::error::{AwsError, Classify, Retry};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use std::fmt;

/// Names one state machine of one plan, e.g. the plan's failover machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MachineKey {
    /// The plan name.
    pub plan: String,
    /// The machine's name within the plan, e.g. `failover` or `validation/orders-db`.
    pub machine: String,
}

impl MachineKey {
    /// Key of `machine` in `plan`.
    pub fn new(plan: impl Into<String>, machine: impl Into<String>) -> Self {
        MachineKey {
            plan: plan.into(),
            machine: machine.into(),
        }
    }
}

impl fmt::Display for MachineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.plan, self.machine)
    }
}

/// A stored document with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// Version of the stored item; the next write must name it.
    pub version: u64,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
    /// The document.
    pub value: T,
}

/// A request to claim an idempotency key for this invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The plan the key belongs to.
    pub plan: String,
    /// The event key, e.g. the EventBridge event id or `snapshot/orders-db/20261125t0000z`.
    pub key: String,
    /// Hash of the event payload (see [`payload_hash`]); a different payload under the
    /// same key is refused.
    pub payload_hash: String,
    /// Now.
    pub now: DateTime<Utc>,
    /// Until when the claim protects an invocation in progress: the invocation's deadline.
    /// After it, a crashed holder's claim may be taken over.
    pub in_progress_until: DateTime<Utc>,
    /// Until when the completed result is kept and returned to duplicates (also the
    /// item's DynamoDB TTL).
    pub expires_at: DateTime<Utc>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This invocation holds the key; it must `complete` or `release` it.
    Acquired(ClaimToken),
    /// The same event was already handled; here is its stored result.
    AlreadyDone(serde_json::Value),
    /// Another invocation is handling the same event right now.
    InProgress {
        /// When that invocation's claim expires.
        until: DateTime<Utc>,
    },
}

/// Proof of holding a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken {
    /// The plan.
    pub plan: String,
    /// The event key.
    pub key: String,
    /// Random token written with the claim.
    pub token: String,
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action began (long-running steps).
    Started,
    /// It did what it set out to do.
    Succeeded,
    /// It failed.
    Failed,
    /// It was not needed or not possible now, and nothing changed.
    Skipped,
    /// A guard refused it (cooldown, lag, lock).
    Refused,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Started => "started",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Refused => "refused",
        })
    }
}

/// One entry of the audit timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The function that acted (`snapshot`, `failover`, ...).
    pub function: String,
    /// What triggered it (`schedule`, `alarm orders-primary-down`, `operator`, ...).
    pub trigger: String,
    /// What was done, e.g. `snapshot.create`.
    pub action: String,
    /// The resource acted on, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// A sentence a person can read.
    pub detail: String,
    /// Structured details (ids, durations, figures).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

/// A state-store failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// Someone else wrote the item since it was read.
    #[error(
        "state {key} changed since it was read (expected version {expected:?}, found {found:?}); another invocation acted first: reload and decide again"
    )]
    Conflict {
        /// The machine.
        key: String,
        /// The version this writer expected (`None`: expected no item).
        expected: Option<u64>,
        /// The version found, when known.
        found: Option<u64>,
    },
    /// An event reused an idempotency key with a different payload.
    #[error(
        "idempotency key {key:?} was already used by a different event; nothing was done. Give each distinct event its own key"
    )]
    PayloadMismatch {
        /// The key.
        key: String,
    },
    /// The claim is no longer held by this invocation (it expired and was taken over).
    #[error(
        "the claim on {key:?} is no longer held by this invocation (it expired and another invocation took it over)"
    )]
    ClaimLost {
        /// The key.
        key: String,
    },
    /// A stored item cannot be read as what it should be.
    #[error(
        "state item {key} is unreadable: {reason}. Inspect the item in the state table; delete it to reset that machine"
    )]
    Corrupt {
        /// The item.
        key: String,
        /// Why.
        reason: String,
    },
    /// The state table could not be reached or refused the call.
    #[error("state table: {0}")]
    Aws(#[from] AwsError),
}

impl Classify for StateError {
    fn retry(&self) -> Retry {
        match self {
            StateError::Conflict { .. } | StateError::ClaimLost { .. } => Retry::Retryable,
            StateError::PayloadMismatch { .. } | StateError::Corrupt { .. } => Retry::NonRetryable,
            StateError::Aws(e) => e.retry(),
        }
    }
}

/// The state port: one DynamoDB table in the deployed system, an in-memory map in unit
/// tests of orchestration.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Read a machine's document as stored JSON.
    async fn load_json(
        &self,
        key: &MachineKey,
    ) -> Result<Option<Versioned<serde_json::Value>>, StateError>;

    /// Write a machine's document if its version is still `expected` (`None`: only if no
    /// document exists yet). Returns the new version.
    async fn save_json(
        &self,
        key: &MachineKey,
        value: &serde_json::Value,
        expected: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<u64, StateError>;

    /// Claim an idempotency key for this invocation.
    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StateError>;

    /// Record the result of a claimed event; duplicates get it until the claim's expiry.
    async fn complete(
        &self,
        token: &ClaimToken,
        result: &serde_json::Value,
    ) -> Result<(), StateError>;

    /// Give a claim up after a failure, so a retry of the same event can run.
    async fn release(&self, token: &ClaimToken) -> Result<(), StateError>;

    /// Append an entry to the plan's audit timeline.
    async fn append(&self, plan: &str, entry: &AuditEntry) -> Result<(), StateError>;

    /// The plan's timeline from `since` (inclusive; everything when `None`), oldest first.
    async fn timeline(
        &self,
        plan: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEntry>, StateError>;
}

/// What claiming an event's idempotency key came to, with a duplicate's stored result
/// already read back.
#[derive(Debug)]
pub enum EventClaim<T> {
    /// This invocation holds the key; it must `complete` or `release` it.
    Acquired(ClaimToken),
    /// The same event was already handled; its stored result.
    Replayed(T),
    /// Another invocation is handling the same event until then.
    Busy(DateTime<Utc>),
}

/// Claim `key` for the invocation handling `payload` (held until `deadline`, its result
/// kept `kept_hours` after `now`), reading a duplicate's stored result back as `T`
/// (`what` names it in the error when the stored value is not one).
#[allow(clippy::too_many_arguments)]
pub async fn claim_event<T: DeserializeOwned>(
    store: &dyn StateStore,
    plan: &str,
    key: String,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    kept_hours: i64,
    what: &str,
) -> Result<EventClaim<T>, StateError> {
    let claim = store
        .claim(&ClaimRequest {
            plan: plan.to_string(),
            key: key.clone(),
            payload_hash: payload_hash(payload),
            now,
            in_progress_until: deadline,
            expires_at: now + chrono::Duration::hours(kept_hours),
        })
        .await?;
    Ok(match claim {
        Claim::Acquired(token) => EventClaim::Acquired(token),
        Claim::AlreadyDone(stored) => {
            EventClaim::Replayed(serde_json::from_value(stored).map_err(|e| {
                StateError::Corrupt {
                    key,
                    reason: format!("the stored result is not a {what}: {e}"),
                }
            })?)
        }
        Claim::InProgress { until } => EventClaim::Busy(until),
    })
}

/// Read a machine's document as `T`.
pub async fn load<T: DeserializeOwned>(
    store: &dyn StateStore,
    key: &MachineKey,
) -> Result<Option<Versioned<T>>, StateError> {
    let Some(stored) = store.load_json(key).await? else {
        return Ok(None);
    };
    let value = serde_json::from_value(stored.value).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Some(Versioned {
        version: stored.version,
        updated_at: stored.updated_at,
        value,
    }))
}

/// Write a machine's document if its version is still `expected`.
pub async fn save<T: Serialize>(
    store: &dyn StateStore,
    key: &MachineKey,
    value: &T,
    expected: Option<u64>,
    now: DateTime<Utc>,
) -> Result<u64, StateError> {
    let json = serde_json::to_value(value).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        reason: format!("cannot serialise the new state: {e}"),
    })?;
    store.save_json(key, &json, expected, now).await
}

/// SHA-256 of the canonical JSON of an event, hex-encoded: the payload hash of a claim.
/// Object keys are sorted first, so the same event serialised in another key order hashes
/// the same.
pub fn payload_hash(payload: &serde_json::Value) -> String {
    let canonical = canonical_json(payload);
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(k.clone()),
                        canonical_json(&map[k])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_hash_ignores_key_order_but_not_values() {
        let a = json!({"source": "aws.events", "detail": {"b": 1, "a": [1, 2]}});
        let b = json!({"detail": {"a": [1, 2], "b": 1}, "source": "aws.events"});
        let c = json!({"detail": {"a": [2, 1], "b": 1}, "source": "aws.events"});
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_ne!(payload_hash(&a), payload_hash(&c));
        assert_eq!(payload_hash(&a).len(), 64);
    }

    #[test]
    fn conflict_and_lost_claims_are_retryable_mismatch_is_not() {
        let conflict = StateError::Conflict {
            key: "p/failover".into(),
            expected: Some(3),
            found: Some(4),
        };
        assert_eq!(conflict.retry(), Retry::Retryable);
        assert!(conflict.to_string().contains("expected version Some(3)"));
        let mismatch = StateError::PayloadMismatch { key: "k".into() };
        assert_eq!(mismatch.retry(), Retry::NonRetryable);
    }
}

/// An in-memory state store for unit tests of orchestration (the real one is DynamoDB's).
#[cfg(test)]
pub mod memory {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[derive(Debug, Clone)]
    struct ClaimRecord {
        hash: String,
        token: String,
        done: Option<serde_json::Value>,
        until: DateTime<Utc>,
        expires: DateTime<Utc>,
    }

    /// State in a few maps behind a mutex.
    #[derive(Debug, Default)]
    pub struct MemoryStateStore {
        machines: Mutex<BTreeMap<String, Versioned<serde_json::Value>>>,
        claims: Mutex<BTreeMap<String, ClaimRecord>>,
        timeline: Mutex<Vec<(String, AuditEntry)>>,
        next_token: Mutex<u64>,
    }

    impl MemoryStateStore {
        /// The timeline of `plan`, in append order.
        pub fn entries(&self, plan: &str) -> Vec<AuditEntry> {
            self.timeline
                .lock()
                .unwrap()
                .iter()
                .filter(|(p, _)| p == plan)
                .map(|(_, e)| e.clone())
                .collect()
        }
    }

    #[async_trait]
    impl StateStore for MemoryStateStore {
        async fn load_json(
            &self,
            key: &MachineKey,
        ) -> Result<Option<Versioned<serde_json::Value>>, StateError> {
            Ok(self.machines.lock().unwrap().get(&key.to_string()).cloned())
        }

        async fn save_json(
            &self,
            key: &MachineKey,
            value: &serde_json::Value,
            expected: Option<u64>,
            now: DateTime<Utc>,
        ) -> Result<u64, StateError> {
            let mut machines = self.machines.lock().unwrap();
            let found = machines.get(&key.to_string()).map(|v| v.version);
            if found != expected {
                return Err(StateError::Conflict {
                    key: key.to_string(),
                    expected,
                    found,
                });
            }
            let version = expected.map_or(1, |v| v + 1);
            machines.insert(
                key.to_string(),
                Versioned {
                    version,
                    updated_at: now,
                    value: value.clone(),
                },
            );
            Ok(version)
        }

        async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StateError> {
            let mut claims = self.claims.lock().unwrap();
            let id = format!("{}/{}", request.plan, request.key);
            if let Some(old) = claims.get(&id) {
                let free =
                    old.expires < request.now || (old.done.is_none() && old.until < request.now);
                if !free {
                    if old.hash != request.payload_hash {
                        return Err(StateError::PayloadMismatch {
                            key: request.key.clone(),
                        });
                    }
                    return Ok(match &old.done {
                        Some(v) => Claim::AlreadyDone(v.clone()),
                        None => Claim::InProgress { until: old.until },
                    });
                }
            }
            let mut n = self.next_token.lock().unwrap();
            *n += 1;
            let token = format!("t{n}");
            claims.insert(
                id,
                ClaimRecord {
                    hash: request.payload_hash.clone(),
                    token: token.clone(),
                    done: None,
                    until: request.in_progress_until,
                    expires: request.expires_at,
                },
            );
            Ok(Claim::Acquired(ClaimToken {
                plan: request.plan.clone(),
                key: request.key.clone(),
                token,
            }))
        }

        async fn complete(
            &self,
            token: &ClaimToken,
            result: &serde_json::Value,
        ) -> Result<(), StateError> {
            let mut claims = self.claims.lock().unwrap();
            match claims.get_mut(&format!("{}/{}", token.plan, token.key)) {
                Some(c) if c.token == token.token => {
                    c.done = Some(result.clone());
                    Ok(())
                }
                _ => Err(StateError::ClaimLost {
                    key: token.key.clone(),
                }),
            }
        }

        async fn release(&self, token: &ClaimToken) -> Result<(), StateError> {
            let mut claims = self.claims.lock().unwrap();
            let id = format!("{}/{}", token.plan, token.key);
            if claims.get(&id).is_some_and(|c| c.token == token.token) {
                claims.remove(&id);
            }
            Ok(())
        }

        async fn append(&self, plan: &str, entry: &AuditEntry) -> Result<(), StateError> {
            self.timeline
                .lock()
                .unwrap()
                .push((plan.to_string(), entry.clone()));
            Ok(())
        }

        async fn timeline(
            &self,
            plan: &str,
            since: Option<DateTime<Utc>>,
        ) -> Result<Vec<AuditEntry>, StateError> {
            let mut entries: Vec<AuditEntry> = self
                .entries(plan)
                .into_iter()
                .filter(|e| since.is_none_or(|s| e.at >= s))
                .collect();
            entries.sort_by_key(|e| e.at);
            Ok(entries)
        }
    }
}
