//! A typed client of the local AWS's realism layer (`infra/local/lifeboat_local/`): the
//! account's emulated clock and time scale, durations and limits, faults on demand, a
//! replica's lag, a health check's status, and the transitions resources went through.
//!
//! Every setting is scoped to one account, so tests in parallel never see each other's
//! faults or clocks:
//!
//! ```no_run
//! # async fn demo(account: harness::Account) -> Result<(), harness::realism::ControlError> {
//! use harness::realism::Fault;
//! account
//!     .inject(Fault::throttle("rds").operation("CreateDBSnapshot").count(2))
//!     .await?;
//! account.advance_clock(600.0).await?;
//! account.set_replica_lag("us-west-2", "orders-db-dr", 12.0).await?;
//! account.clear_faults().await?;
//! let _done = account.transitions().await?;
//! # Ok(()) }
//! ```

use crate::local::{Account, LocalAws, http_request};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// The control API refused a request, or could not be reached.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlError {
    /// The HTTP status (0 when the emulator could not be reached).
    pub status: u16,
    /// The field the emulator named, for a refused input.
    pub field: Option<String>,
    /// What the emulator said.
    pub message: String,
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the local AWS control API answered {}: {}",
            self.status, self.message
        )
    }
}

impl std::error::Error for ControlError {}

impl LocalAws {
    /// One control-API call: `method` on `path` with a JSON body (`Value::Null` for none).
    pub async fn control(
        &self,
        method: &str,
        path: &str,
        body: &Value,
    ) -> Result<Value, ControlError> {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, answer) = http_request(&self.endpoint, method, path, &text)
            .await
            .map_err(|message| ControlError {
                status: 0,
                field: None,
                message,
            })?;
        let value: Value = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(ControlError {
                status,
                field: value
                    .get("field")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                message: value
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| value.to_string()),
            })
        }
    }
}

/// A fault to inject into one account's calls.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Fault {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_global: Option<bool>,
}

impl Fault {
    fn new(kind: &'static str) -> Self {
        Fault {
            kind,
            service: None,
            operation: None,
            region: None,
            count: None,
            fraction: None,
            status: None,
            seconds: None,
            include_global: None,
        }
    }

    /// Throttle calls to `service` (`Throttling` for query services and Route 53,
    /// `ThrottlingException` for JSON services, HTTP 400; S3's `SlowDown`, HTTP 503).
    pub fn throttle(service: &str) -> Self {
        Fault::new("throttle").service(service)
    }

    /// Fail calls to `service` with HTTP `status` (500 or 503).
    pub fn server_error(service: &str, status: u16) -> Self {
        let mut f = Fault::new("server_error").service(service);
        f.status = Some(status);
        f
    }

    /// Close the connection of calls to `service` without answering.
    pub fn drop_connection(service: &str) -> Self {
        Fault::new("drop_connection").service(service)
    }

    /// Calls to `service` are carried out at once and answered only `seconds` later, as
    /// a stalled service would (a client that gives up first does not learn that its
    /// request took effect).
    pub fn hang(service: &str, seconds: f64) -> Self {
        let mut f = Fault::new("hang").service(service);
        f.seconds = Some(seconds);
        f
    }

    /// Every call signed for `region` meets a closed connection until the fault is
    /// removed; global services signed for us-east-1 (Route 53, IAM, STS) still answer
    /// unless [`Fault::include_global`].
    pub fn region_outage(region: &str) -> Self {
        let mut f = Fault::new("region_outage");
        f.region = Some(region.to_string());
        f
    }

    /// Only calls to this service (`rds`, `dynamodb`, `route53`, `cloudwatch`, ...).
    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_string());
        self
    }

    /// Only this operation, e.g. `CreateDBSnapshot`.
    pub fn operation(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_string());
        self
    }

    /// Only calls signed for this region.
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_string());
        self
    }

    /// Only the next `n` matching calls.
    pub fn count(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// A share of the matching calls (0..=1), at random.
    pub fn fraction(mut self, fraction: f64) -> Self {
        self.fraction = Some(fraction);
        self
    }

    /// A region outage that takes the global services signed for that region down too.
    pub fn include_global(mut self, include: bool) -> Self {
        self.include_global = Some(include);
        self
    }
}

/// An injected fault's id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FaultId(pub String);

/// The limits the layer enforces; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Manual DB snapshots per region (AWS default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_db_snapshots_per_region: Option<u32>,
    /// Manual DB cluster snapshots per region (AWS default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_cluster_snapshots_per_region: Option<u32>,
    /// Cross-region copies in progress into one region (AWS: 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_copies_per_region: Option<u32>,
}

/// An account's realism settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RealismConfig {
    /// The account.
    pub account: String,
    /// Real seconds per AWS second.
    pub time_scale: f64,
    /// Every duration (AWS seconds) by name.
    pub durations: BTreeMap<String, f64>,
    /// Every limit.
    pub limits: Limits,
    /// The account's emulated clock (seconds since the epoch).
    pub now: f64,
}

/// One status change of a resource, in progress or done.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Transition {
    /// Its id (increasing).
    pub id: u64,
    /// `rds`, `dynamodb` or `route53`.
    pub service: String,
    /// The region (`global` for Route 53).
    pub region: String,
    /// `db-instance`, `db-cluster`, `db-snapshot`, `db-cluster-snapshot`, `backup`, `change`.
    pub resource_type: String,
    /// The resource's identifier (ARN for backups, change id for Route 53).
    pub resource: String,
    /// The operation that started it, e.g. `copy_db_snapshot`.
    pub kind: String,
    /// The status it left.
    pub from: String,
    /// The status it reaches (`deleted`: gone).
    pub to: String,
    /// The duration setting it took.
    pub duration_key: String,
    /// How long it takes, in AWS seconds.
    pub seconds: f64,
    /// `in_progress`, `completed` or `cancelled`.
    pub state: String,
    /// Start, on the account's emulated clock.
    pub started_at: f64,
    /// End, on the account's emulated clock.
    pub completes_at: f64,
    /// Start, wall clock (seconds since the epoch).
    pub started_at_wall: f64,
    /// End, wall clock: when it completed, or when it will at the current pace.
    pub completes_at_wall: f64,
}

/// What `GET /_lifeboat/transitions` answers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Transitions {
    /// The account.
    pub account: String,
    /// Real seconds per AWS second.
    pub time_scale: f64,
    /// The emulated clock now.
    pub now: f64,
    /// The wall clock now.
    pub now_wall: f64,
    /// Every transition, oldest first.
    pub transitions: Vec<Transition>,
}

impl Transitions {
    /// The transitions of one resource, oldest first.
    pub fn of(&self, resource: &str) -> Vec<&Transition> {
        self.transitions
            .iter()
            .filter(|t| t.resource == resource)
            .collect()
    }

    /// The statuses a resource went through, in order: each step's `from` (when it
    /// differs from where the previous step ended) and each `to` reached; steps still in
    /// progress show where they started, cancelled ones where they were.
    pub fn statuses(&self, resource: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.of(resource) {
            if out.last() != Some(&t.from) {
                out.push(t.from.clone());
            }
            if t.state == "completed" {
                out.push(t.to.clone());
            }
        }
        out
    }

    /// Those still in progress.
    pub fn in_progress(&self) -> Vec<&Transition> {
        self.transitions
            .iter()
            .filter(|t| t.state == "in_progress")
            .collect()
    }
}

impl Account {
    fn query(&self) -> String {
        format!("account={}", self.id)
    }

    fn local(&self) -> LocalAws {
        LocalAws {
            endpoint: self.endpoint.clone(),
        }
    }

    fn with_account(&self, mut body: Value) -> Value {
        body["account"] = json!(self.id);
        body
    }

    /// Inject a fault into this account's calls.
    pub async fn inject(&self, fault: Fault) -> Result<FaultId, ControlError> {
        let body = self.with_account(serde_json::to_value(&fault).expect("a fault serializes"));
        let answer = self
            .local()
            .control("POST", "/_lifeboat/faults", &body)
            .await?;
        serde_json::from_value(answer["id"].clone()).map_err(|e| ControlError {
            status: 200,
            field: None,
            message: format!("no fault id in the answer: {e}"),
        })
    }

    /// Remove one fault (e.g. recover a region).
    pub async fn remove_fault(&self, id: &FaultId) -> Result<(), ControlError> {
        self.local()
            .control(
                "DELETE",
                &format!("/_lifeboat/faults/{}", id.0),
                &Value::Null,
            )
            .await
            .map(|_| ())
    }

    /// Remove every fault of this account.
    pub async fn clear_faults(&self) -> Result<(), ControlError> {
        self.local()
            .control(
                "DELETE",
                &format!("/_lifeboat/faults?{}", self.query()),
                &Value::Null,
            )
            .await
            .map(|_| ())
    }

    /// Move this account's emulated clock forward: transitions due by then complete at
    /// once, without sleeping.
    pub async fn advance_clock(&self, seconds: f64) -> Result<(), ControlError> {
        self.local()
            .control(
                "POST",
                "/_lifeboat/clock",
                &self.with_account(json!({ "advance_seconds": seconds })),
            )
            .await
            .map(|_| ())
    }

    /// Advance the clock until nothing is in progress (each step of a chain in turn);
    /// returns the AWS seconds advanced.
    pub async fn settle(&self) -> Result<f64, ControlError> {
        let mut advanced = 0.0;
        for _ in 0..32 {
            let t = self.transitions().await?;
            let Some(last) = t
                .in_progress()
                .iter()
                .map(|p| p.completes_at)
                .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))))
            else {
                return Ok(advanced);
            };
            let step = (last - t.now).max(0.0) + 0.001;
            self.advance_clock(step).await?;
            advanced += step;
        }
        Err(ControlError {
            status: 0,
            field: None,
            message: "transitions still in progress after 32 clock advances".into(),
        })
    }

    /// This account's realism settings.
    pub async fn realism_config(&self) -> Result<RealismConfig, ControlError> {
        let answer = self
            .local()
            .control(
                "GET",
                &format!("/_lifeboat/config?{}", self.query()),
                &Value::Null,
            )
            .await?;
        parse(answer)
    }

    async fn configure(&self, body: Value) -> Result<RealismConfig, ControlError> {
        let answer = self
            .local()
            .control("POST", "/_lifeboat/config", &self.with_account(body))
            .await?;
        parse(answer)
    }

    /// Real seconds per AWS second for this account (1.0: real time, so nothing
    /// completes during a test unless the clock is advanced).
    pub async fn set_time_scale(&self, scale: f64) -> Result<RealismConfig, ControlError> {
        self.configure(json!({ "time_scale": scale })).await
    }

    /// Override durations (AWS seconds) by name, e.g. `("db_snapshot_create", 60.0)`.
    pub async fn set_durations(
        &self,
        durations: &[(&str, f64)],
    ) -> Result<RealismConfig, ControlError> {
        let map: BTreeMap<&str, f64> = durations.iter().copied().collect();
        self.configure(json!({ "durations": map })).await
    }

    /// Change limits; the ones left `None` stay as they are.
    pub async fn set_limits(&self, limits: Limits) -> Result<RealismConfig, ControlError> {
        self.configure(json!({ "limits": limits })).await
    }

    /// Publish a `ReplicaLag` datapoint (AWS/RDS, DBInstanceIdentifier) as RDS would.
    pub async fn set_replica_lag(
        &self,
        region: &str,
        db_instance: &str,
        seconds: f64,
    ) -> Result<(), ControlError> {
        self.local()
            .control(
                "POST",
                "/_lifeboat/replica-lag",
                &self.with_account(json!({
                    "region": region,
                    "db_instance": db_instance,
                    "seconds": seconds,
                })),
            )
            .await
            .map(|_| ())
    }

    /// Make a Route 53 health check report healthy or unhealthy.
    pub async fn set_health_check(
        &self,
        health_check_id: &str,
        healthy: bool,
    ) -> Result<(), ControlError> {
        self.local()
            .control(
                "POST",
                "/_lifeboat/health-checks",
                &self.with_account(json!({
                    "health_check_id": health_check_id,
                    "healthy": healthy,
                })),
            )
            .await
            .map(|_| ())
    }

    /// Every transition of this account's resources, done and in progress.
    pub async fn transitions(&self) -> Result<Transitions, ControlError> {
        let answer = self
            .local()
            .control(
                "GET",
                &format!("/_lifeboat/transitions?{}", self.query()),
                &Value::Null,
            )
            .await?;
        parse(answer)
    }
}

fn parse<T: serde::de::DeserializeOwned>(answer: Value) -> Result<T, ControlError> {
    serde_json::from_value(answer).map_err(|e| ControlError {
        status: 200,
        field: None,
        message: format!("unexpected answer: {e}"),
    })
}

/// Publish `ReplicaLag` datapoints for `instance`, each `(seconds ago, lag in seconds)`,
/// as RDS does every minute for a read replica: the emulator publishes none, so the
/// tests and the drill stand in for it.
pub async fn publish_replica_lag(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    instance: &str,
    points: &[(i64, f64)],
) -> Result<(), String> {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    for (ago, lag) in points {
        cloudwatch
            .put_metric_data()
            .namespace("AWS/RDS")
            .metric_data(
                MetricDatum::builder()
                    .metric_name("ReplicaLag")
                    .dimensions(
                        Dimension::builder()
                            .name("DBInstanceIdentifier")
                            .value(instance)
                            .build(),
                    )
                    .value(*lag)
                    .timestamp(aws_smithy_types::DateTime::from_secs(
                        chrono::Utc::now().timestamp() - ago,
                    ))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("putting ReplicaLag of {instance}: {e:?}"))?;
    }
    Ok(())
}
