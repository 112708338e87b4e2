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
    /// The action is about to be taken: committed with the state change that precedes
    /// it, so no action is taken without an entry. Its outcome follows in a later entry.
    Intended,
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
        // `pad`, so that a width (a timeline printed in columns) applies.
        f.pad(match self {
            Outcome::Intended => "intended",
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
    /// The lease this invocation acted under lapsed (or was taken over) before its step
    /// was committed: nothing was written, and the invocation must not act further.
    #[error(
        "the lease on {key} held by invocation {holder} lapsed before its step was committed; nothing was written. The next event re-reads AWS and goes on from the stored step"
    )]
    LeaseLapsed {
        /// The machine.
        key: String,
        /// The invocation that held the lease.
        holder: String,
    },
    /// A commit carries more audit entries than one transaction takes.
    #[error(
        "a commit on {key} carries {count} audit entries, more than the {MAX_ENTRIES_PER_COMMIT} one DynamoDB transaction takes; nothing was written (internal error: please report)"
    )]
    TooManyEntries {
        /// The machine or timeline.
        key: String,
        /// How many entries it carried.
        count: usize,
    },
    /// The state table could not be reached or refused the call.
    #[error("state table: {0}")]
    Aws(#[from] AwsError),
}

impl Classify for StateError {
    fn retry(&self) -> Retry {
        match self {
            StateError::Conflict { .. }
            | StateError::ClaimLost { .. }
            | StateError::LeaseLapsed { .. } => Retry::Retryable,
            StateError::PayloadMismatch { .. }
            | StateError::Corrupt { .. }
            | StateError::TooManyEntries { .. } => Retry::NonRetryable,
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

    /// Write `commit` whole or not at all: the machine's document (or a check that it is
    /// unchanged) and the audit entries recording the step, in one conditional
    /// transaction. Returns the machine's version after the commit (`None` when the
    /// commit names no machine). Nothing is written when any condition fails.
    async fn commit(&self, commit: &Commit) -> Result<Option<u64>, StateError>;

    /// The plan's timeline from `since` (inclusive; everything when `None`), oldest first.
    async fn timeline(
        &self,
        plan: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEntry>, StateError>;
}

/// Most audit entries one commit carries: a DynamoDB transaction takes 100 actions, one
/// of which is the machine's.
pub const MAX_ENTRIES_PER_COMMIT: usize = 99;

/// The lease a written document grants, stored beside the document so that the commit
/// ending the step can be fenced by it ([`MachineWrite::fence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseMark {
    /// The invocation (request id) that may act.
    pub holder: String,
    /// When its right lapses.
    pub until: DateTime<Utc>,
}

/// A machine's part in a [`Commit`].
#[derive(Debug, Clone, PartialEq)]
pub struct MachineWrite {
    /// The machine.
    pub key: MachineKey,
    /// The version the writer read (`None`: no document existed).
    pub expected: Option<u64>,
    /// The new document; `None` leaves the document as it is and only checks that its
    /// version is still `expected` (entries recorded against the state they saw).
    pub value: Option<serde_json::Value>,
    /// The lease the new document grants, if any.
    pub grants: Option<LeaseMark>,
    /// When set, the commit also needs the stored lease to be this holder's and not to
    /// have lapsed at the commit's `now`: an invocation whose lease expired cannot commit.
    pub fence: Option<String>,
}

/// One step, written whole or not at all: a machine's new document (or a check of its
/// version) and the audit entries that record the step. An action's intent is committed
/// with the state change that precedes it, its outcome with the state change after it;
/// when the commit fails, the step is not taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The plan whose timeline gets the entries.
    pub plan: String,
    /// The machine written or checked, if any.
    pub machine: Option<MachineWrite>,
    /// The audit entries.
    pub entries: Vec<AuditEntry>,
    /// Now, for `updated_at` and the fence.
    pub now: DateTime<Utc>,
}

impl Commit {
    /// Write `value` as `key`'s document if its version is still `expected`.
    pub fn write<T: Serialize>(
        key: &MachineKey,
        value: &T,
        expected: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Self, StateError> {
        let json = serde_json::to_value(value).map_err(|e| StateError::Corrupt {
            key: key.to_string(),
            reason: format!("cannot serialise the new state: {e}"),
        })?;
        Ok(Commit {
            plan: key.plan.clone(),
            machine: Some(MachineWrite {
                key: key.clone(),
                expected,
                value: Some(json),
                grants: None,
                fence: None,
            }),
            entries: Vec::new(),
            now,
        })
    }

    /// Leave `key`'s document as it is, checking that its version is still `expected`.
    pub fn check(key: &MachineKey, expected: Option<u64>, now: DateTime<Utc>) -> Self {
        Commit {
            plan: key.plan.clone(),
            machine: Some(MachineWrite {
                key: key.clone(),
                expected,
                value: None,
                grants: None,
                fence: None,
            }),
            entries: Vec::new(),
            now,
        }
    }

    /// Entries only, for a plan's timeline (work that keeps no state machine).
    pub fn entries_only(plan: &str, now: DateTime<Utc>) -> Self {
        Commit {
            plan: plan.to_string(),
            machine: None,
            entries: Vec::new(),
            now,
        }
    }

    /// The new document grants `lease`.
    pub fn granting(mut self, lease: Option<LeaseMark>) -> Self {
        if let Some(m) = &mut self.machine {
            m.grants = lease;
        }
        self
    }

    /// Commit only while `holder` holds the stored lease (when `Some`).
    pub fn fenced_by(mut self, holder: Option<&str>) -> Self {
        if let Some(m) = &mut self.machine {
            m.fence = holder.map(str::to_string);
        }
        self
    }

    /// Record `entries` with the step.
    pub fn recording(mut self, entries: impl IntoIterator<Item = AuditEntry>) -> Self {
        self.entries.extend(entries);
        self
    }

    /// Whether committing would change nothing: no document, no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.machine.as_ref().is_none_or(|m| m.value.is_none())
    }

    /// Commit it through `store`.
    pub async fn send(self, store: &dyn StateStore) -> Result<Option<u64>, StateError> {
        if self.entries.len() > MAX_ENTRIES_PER_COMMIT {
            return Err(StateError::TooManyEntries {
                key: self
                    .machine
                    .as_ref()
                    .map_or_else(|| format!("{}/timeline", self.plan), |m| m.key.to_string()),
                count: self.entries.len(),
            });
        }
        store.commit(&self).await
    }
}

/// Append `entries` to `plan`'s timeline (work that keeps no state machine), in
/// transactions of at most [`MAX_ENTRIES_PER_COMMIT`] entries, each whole or not at all.
/// On an error, the entries of the transactions before it are written, the others not.
pub async fn append(
    store: &dyn StateStore,
    plan: &str,
    entries: Vec<AuditEntry>,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    for chunk in entries.chunks(MAX_ENTRIES_PER_COMMIT) {
        Commit::entries_only(plan, now)
            .recording(chunk.iter().cloned())
            .send(store)
            .await?;
    }
    Ok(())
}

/// Put a refused command on `plan`'s timeline. A refusal changes nothing, so a table that
/// refuses the entry (throttled) does not turn it into a failure: the log says so, and
/// the caller still gets the refusal.
pub async fn record_refusal(store: &dyn StateStore, plan: &str, refused: AuditEntry) {
    let now = refused.at;
    if let Err(e) = append(store, plan, vec![refused], now).await {
        tracing::warn!(error = %e, "audit entry of a refused command not written");
    }
}

/// Actions whose intents are in the timeline, and those whose intents the table refused
/// (with why): the latter must not be taken.
#[derive(Debug)]
pub struct Cleared<T> {
    /// Their intents are committed: they may be taken.
    pub cleared: Vec<T>,
    /// Their intents are not in the timeline.
    pub refused: Vec<(T, StateError)>,
}

/// Commit the intent of each of `actions` to `plan`'s timeline before any is taken (work
/// that keeps no state machine), in transactions of at most [`MAX_ENTRIES_PER_COMMIT`]
/// entries. An action is cleared only when the transaction holding its intent was
/// written; every transaction is tried, so a throttled one holds back only its own.
pub async fn commit_intents<T>(
    store: &dyn StateStore,
    plan: &str,
    actions: Vec<(T, AuditEntry)>,
    now: DateTime<Utc>,
) -> Cleared<T> {
    let mut out = Cleared {
        cleared: Vec::new(),
        refused: Vec::new(),
    };
    let mut actions = actions.into_iter().peekable();
    while actions.peek().is_some() {
        let (items, entries): (Vec<T>, Vec<AuditEntry>) =
            actions.by_ref().take(MAX_ENTRIES_PER_COMMIT).unzip();
        match Commit::entries_only(plan, now)
            .recording(entries)
            .send(store)
            .await
        {
            Ok(_) => out.cleared.extend(items),
            Err(e) => out
                .refused
                .extend(items.into_iter().map(|item| (item, e.clone()))),
        }
    }
    out
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

/// Write a machine's document if its version is still `expected` (no audit entry: for
/// bookkeeping that records no action). Returns the new version.
pub async fn save<T: Serialize>(
    store: &dyn StateStore,
    key: &MachineKey,
    value: &T,
    expected: Option<u64>,
    now: DateTime<Utc>,
) -> Result<u64, StateError> {
    let version = Commit::write(key, value, expected, now)?
        .send(store)
        .await?;
    Ok(version.unwrap_or_else(|| expected.map_or(1, |v| v + 1)))
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

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            at: DateTime::from_timestamp(1_764_000_000, 0).unwrap(),
            function: "failover".into(),
            trigger: "test".into(),
            action: action.into(),
            resource: None,
            outcome: Outcome::Intended,
            detail: String::new(),
            data: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn a_commit_is_written_whole_or_not_at_all_and_fenced_by_its_lease() {
        let store = memory::MemoryStateStore::default();
        let key = MachineKey::new("p", "dr");
        let now = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let lease = LeaseMark {
            holder: "req-1".into(),
            until: now + chrono::Duration::seconds(120),
        };
        let v1 = Commit::write(&key, &json!({"n": 1}), None, now)
            .unwrap()
            .granting(Some(lease))
            .recording([entry("failover.promote")])
            .send(&store)
            .await
            .unwrap();
        assert_eq!(v1, Some(1));
        // A stale version: neither the document nor the entry is written.
        let stale = Commit::write(&key, &json!({"n": 2}), None, now)
            .unwrap()
            .recording([entry("stale")])
            .send(&store)
            .await
            .unwrap_err();
        assert!(
            matches!(stale, StateError::Conflict { found: Some(1), .. }),
            "{stale}"
        );
        // Another holder, or the holder after its lease lapsed, cannot commit.
        for (holder, at) in [
            ("req-2", now),
            ("req-1", now + chrono::Duration::seconds(121)),
        ] {
            let fenced = Commit::write(&key, &json!({"n": 3}), Some(1), at)
                .unwrap()
                .fenced_by(Some(holder))
                .recording([entry("fenced")])
                .send(&store)
                .await
                .unwrap_err();
            assert!(matches!(fenced, StateError::LeaseLapsed { .. }), "{fenced}");
            assert_eq!(fenced.retry(), Retry::Retryable);
        }
        // Too many entries for one transaction: refused before the table.
        let big = Commit::check(&key, Some(1), now)
            .recording((0..=MAX_ENTRIES_PER_COMMIT).map(|_| entry("big")))
            .send(&store)
            .await
            .unwrap_err();
        assert!(matches!(big, StateError::TooManyEntries { .. }), "{big}");
        // The holder within its lease commits; a check records against the version.
        let v2 = Commit::write(&key, &json!({"n": 4}), Some(1), now)
            .unwrap()
            .fenced_by(Some("req-1"))
            .recording([entry("failover.promote")])
            .send(&store)
            .await
            .unwrap();
        assert_eq!(v2, Some(2));
        let checked = Commit::check(&key, Some(2), now)
            .recording([entry("note")])
            .send(&store)
            .await
            .unwrap();
        assert_eq!(checked, Some(2));
        let actions: Vec<String> = store.entries("p").into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["failover.promote", "failover.promote", "note"]);
        assert_eq!(
            load::<serde_json::Value>(&store, &key)
                .await
                .unwrap()
                .unwrap()
                .value,
            json!({"n": 4})
        );
    }

    proptest::proptest! {
        /// Whatever the table refuses, an action is cleared exactly when its intent is in
        /// the timeline, and none is lost or cleared twice.
        #[test]
        fn an_action_is_cleared_exactly_when_its_intent_is_in_the_timeline(
            count in 0usize..260,
            skip in 0usize..4,
            refuse in 0usize..4,
        ) {
            let store = memory::MemoryStateStore::default();
            store.throttle_commits(skip, refuse);
            let now = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
            let actions: Vec<(usize, AuditEntry)> = (0..count)
                .map(|n| (n, AuditEntry { detail: n.to_string(), ..entry("snapshot.create") }))
                .collect();
            let out = futures::executor::block_on(commit_intents(&store, "p", actions, now));
            let written: Vec<usize> = store
                .entries("p")
                .iter()
                .map(|e| e.detail.parse().unwrap())
                .collect();
            proptest::prop_assert_eq!(&written, &out.cleared);
            let mut all: Vec<usize> = out
                .cleared
                .iter()
                .copied()
                .chain(out.refused.iter().map(|(n, _)| *n))
                .collect();
            all.sort_unstable();
            proptest::prop_assert_eq!(all, (0..count).collect::<Vec<_>>());
            let transactions = count.div_ceil(MAX_ENTRIES_PER_COMMIT);
            let refused = transactions.saturating_sub(skip).min(refuse);
            proptest::prop_assert_eq!(
                out.refused.len(),
                (skip..skip + refused)
                    .map(|t| count.saturating_sub(t * MAX_ENTRIES_PER_COMMIT).min(MAX_ENTRIES_PER_COMMIT))
                    .sum::<usize>()
            );
            for (_, e) in &out.refused {
                proptest::prop_assert_eq!(e.retry(), Retry::Retryable);
            }
        }
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

    /// State in a few maps behind a mutex. Commits follow DynamoDB's transaction: every
    /// condition holds and all is written, or nothing is.
    #[derive(Debug, Default)]
    pub struct MemoryStateStore {
        machines: Mutex<BTreeMap<String, StoredMachine>>,
        claims: Mutex<BTreeMap<String, ClaimRecord>>,
        timeline: Mutex<Vec<(String, AuditEntry)>>,
        next_token: Mutex<u64>,
        throttled: Mutex<CommitFaults>,
    }

    /// A machine's document and the lease stored beside it.
    type StoredMachine = (Versioned<serde_json::Value>, Option<LeaseMark>);

    /// Commits to refuse as a throttled table would.
    #[derive(Debug, Default)]
    struct CommitFaults {
        /// Commits to let through before refusing.
        skip: usize,
        /// Commits to refuse after those.
        refuse: usize,
        /// Refuse every commit carrying an entry of this action.
        action: Option<String>,
    }

    impl MemoryStateStore {
        /// Refuse the `refuse` commits after the next `skip` ones (throttled, nothing
        /// written), as DynamoDB refuses a transaction.
        pub fn throttle_commits(&self, skip: usize, refuse: usize) {
            *self.throttled.lock().unwrap() = CommitFaults {
                skip,
                refuse,
                action: None,
            };
        }

        /// Refuse every commit that records an entry of `action` (throttled).
        pub fn throttle_commits_recording(&self, action: &str) {
            self.throttled.lock().unwrap().action = Some(action.to_string());
        }

        fn throttle(&self, commit: &Commit) -> Option<StateError> {
            let mut f = self.throttled.lock().unwrap();
            let hit = if f.skip > 0 {
                f.skip -= 1;
                false
            } else if f.refuse > 0 {
                f.refuse -= 1;
                true
            } else {
                false
            };
            let by_action = f
                .action
                .as_ref()
                .is_some_and(|a| commit.entries.iter().any(|e| &e.action == a));
            (hit || by_action).then(|| {
                StateError::Aws(AwsError {
                    service: "dynamodb",
                    operation: "TransactWriteItems",
                    resource: commit.plan.clone(),
                    failure: crate::error::AwsFailure::Throttled,
                    code: Some("ThrottlingException".into()),
                    message: "Rate of requests exceeds the allowed throughput.".into(),
                })
            })
        }

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
            Ok(self
                .machines
                .lock()
                .unwrap()
                .get(&key.to_string())
                .map(|(v, _)| v.clone()))
        }

        async fn commit(&self, commit: &Commit) -> Result<Option<u64>, StateError> {
            if let Some(e) = self.throttle(commit) {
                return Err(e);
            }
            let mut machines = self.machines.lock().unwrap();
            let mut version = None;
            if let Some(m) = &commit.machine {
                let id = m.key.to_string();
                let stored = machines.get(&id);
                let found = stored.map(|(v, _)| v.version);
                if found != m.expected {
                    return Err(StateError::Conflict {
                        key: id,
                        expected: m.expected,
                        found,
                    });
                }
                if let Some(holder) = &m.fence {
                    let held = stored
                        .and_then(|(_, lease)| lease.as_ref())
                        .is_some_and(|l| &l.holder == holder && l.until > commit.now);
                    if !held {
                        return Err(StateError::LeaseLapsed {
                            key: id,
                            holder: holder.clone(),
                        });
                    }
                }
                version = m.expected;
                if let Some(value) = &m.value {
                    let next = m.expected.map_or(1, |v| v + 1);
                    machines.insert(
                        id,
                        (
                            Versioned {
                                version: next,
                                updated_at: commit.now,
                                value: value.clone(),
                            },
                            m.grants.clone(),
                        ),
                    );
                    version = Some(next);
                }
            }
            let mut timeline = self.timeline.lock().unwrap();
            timeline.extend(
                commit
                    .entries
                    .iter()
                    .map(|e| (commit.plan.clone(), e.clone())),
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
