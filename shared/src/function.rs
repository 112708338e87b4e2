//! What every function's thin `main.rs` needs: start-up (logs, settings, plan, clients,
//! metrics — once per cold start) and the Lambda loop that hands each event to the
//! orchestration code and flushes metrics after it.

use crate::aws::{
    AwsClients, DynamoStateStore, RegionalClients, S3Reports, SnsNotifier, load_plan,
};
use crate::command::Commands;
use crate::config::{ConfigError, Settings, env_lookup};
use crate::error::{Classify, diagnostic};
use crate::plan::{Plan, PlanError};
use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use std::future::Future;

/// A function's wired edges: its plan, clients and ports, built once per cold start.
pub struct Deployment {
    /// Which function this is (`snapshot`, `failover`, ...).
    pub function: &'static str,
    /// Its settings.
    pub settings: Settings,
    /// The validated plan.
    pub plan: Plan,
    /// Clients for the primary, DR and home regions.
    pub clients: AwsClients,
    /// The state table.
    pub state: DynamoStateStore,
    /// The SNS topic.
    pub notifier: SnsNotifier,
    /// The report bucket.
    pub reports: S3Reports,
}

/// Start-up failed: the function cannot run until its configuration is fixed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or wrong.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The plan cannot be read or is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl Deployment {
    /// Read the settings through `lookup`, load and validate the plan, build the clients.
    pub async fn load(
        function: &'static str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, StartupError> {
        let settings = Settings::from_lookup(lookup)?;
        // The plan may live in S3 in the function's own region; read it before knowing the
        // plan's regions.
        let home_region = settings
            .home_region
            .clone()
            .unwrap_or_else(|| "us-east-1".into());
        let home = RegionalClients::build(&settings.clients, &home_region).await;
        let plan = load_plan(&settings.plan_source, &home.s3).await?;
        let clients = AwsClients::build(
            &settings.clients,
            &plan.regions.primary,
            &plan.regions.dr,
            settings.home_region.as_deref(),
        )
        .await;
        Ok(Deployment {
            function,
            state: DynamoStateStore::new(clients.home.dynamodb.clone(), &settings.state_table),
            notifier: SnsNotifier::new(clients.home.sns.clone(), &settings.topic_arn),
            reports: S3Reports::new(
                clients.home.s3.clone(),
                &settings.report_bucket,
                settings.report_kms_key_id.clone(),
            ),
            settings,
            plan,
            clients,
        })
    }

    /// The cold start of a function: logs, then the deployment from the process
    /// environment. A failure is logged with its fix and ends the process, so Lambda
    /// reports an initialisation error.
    pub async fn start(function: &'static str) -> Result<&'static Self, lambda_runtime::Error> {
        crate::telemetry::init_tracing(&env_lookup);
        match Self::load(function, &env_lookup).await {
            Ok(d) => {
                tracing::info!(function, plan = %d.plan.name, primary = %d.plan.regions.primary, dr = %d.plan.regions.dr, "ready");
                // Lives for the whole process, like the Lambda execution environment.
                Ok(Box::leak(Box::new(d)))
            }
            Err(e) => {
                tracing::error!(function, error = %e, "cannot start");
                Err(e.into())
            }
        }
    }
}

/// An invocation's identity and clock, as orchestration code sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Lambda's request id (stable across Lambda's own retries of an async invocation).
    pub request_id: String,
    /// Now.
    pub now: DateTime<Utc>,
    /// When Lambda stops the invocation.
    pub deadline: DateTime<Utc>,
}

impl Invocation {
    /// From Lambda's context, at `now`. A deadline that is not in the future is not a
    /// real one (`cargo lambda watch` sends a constant instead of a timestamp): Lambda's
    /// longest run, 15 minutes, is assumed then.
    pub fn from_context(context: &lambda_runtime::Context, now: DateTime<Utc>) -> Self {
        let deadline = i64::try_from(context.deadline)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .filter(|d| *d > now)
            .unwrap_or_else(|| {
                tracing::debug!(
                    deadline_ms = context.deadline,
                    "no usable deadline from the runtime; assuming 15 minutes"
                );
                now + chrono::Duration::minutes(15)
            });
        Invocation {
            request_id: context.request_id.clone(),
            now,
            deadline,
        }
    }
}

/// Run the Lambda loop: each event goes through [`respond`] to `handler`, with its
/// invocation; metrics are flushed as EMF lines after every invocation.
pub async fn serve<F, Fut, R, E>(
    deployment: &'static Deployment,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    F: Fn(serde_json::Value, Invocation) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: serde::Serialize,
    E: Classify + std::fmt::Display,
{
    let collector = crate::metrics::init_emf(&deployment.plan.name, deployment.function)
        .map_err(lambda_runtime::Error::from)?;
    let function = crate::routing::Function::named(deployment.function).ok_or_else(|| {
        lambda_runtime::Error::from(format!(
            "{:?} is not one of Lifeboat's functions (lifeboat::routing::Function)",
            deployment.function
        ))
    })?;
    let commands = Commands {
        function,
        plan: &deployment.plan.name,
        state: &deployment.state,
    };
    let commands = &commands;
    let handler = &handler;
    lambda_runtime::run(service_fn(
        // Taken as text and read here: only a Payload still sees a key given twice, and a
        // payload too deep for the JSON reader is refused as Lifeboat refuses bad input
        // (the runtime's own reader would fail it with an error type of its own).
        move |event: LambdaEvent<Box<serde_json::value::RawValue>>| async move {
            let invocation = Invocation::from_context(&event.context, Utc::now());
            let result = match crate::request::Payload::from_json(
                deployment.function,
                event.payload.get(),
            ) {
                Ok(payload) => answer(commands, payload, invocation, handler).await,
                Err(e) => {
                    tracing::error!(error = %e, "request refused");
                    Err(diagnostic(&e))
                }
            };
            crate::metrics::flush(collector);
            result
        },
    ))
    .await
}

/// One invocation, as [`serve`] answers it: [`respond`], with the handler run at most
/// once per `command_id` ([`crate::command`]).
pub async fn answer<F, Fut, R, E>(
    commands: &Commands<'_>,
    payload: impl Into<crate::request::Payload>,
    invocation: Invocation,
    handler: &F,
) -> Result<serde_json::Value, Diagnostic>
where
    F: Fn(serde_json::Value, Invocation) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: serde::Serialize,
    E: Classify + std::fmt::Display,
{
    respond(
        commands.function.name(),
        payload,
        invocation,
        &|request, invocation| commands.run(request, invocation, handler),
    )
    .await
}

/// One invocation of `function`, as every function answers it. A payload with a key
/// twice in one object (at any depth), or that is not a JSON object, is refused here, `NonRetryable`, before the handler runs (so before any
/// AWS call), naming its JSON type and what the function expects; so is another
/// function's command ([`crate::routing`]), naming the function to send it to. Otherwise the
/// handler's reply is the answer, and its error a failed invocation typed `Retryable` or
/// `NonRetryable`.
pub async fn respond<F, Fut, R, E>(
    function: &'static str,
    payload: impl Into<crate::request::Payload>,
    invocation: Invocation,
    handler: &F,
) -> Result<serde_json::Value, Diagnostic>
where
    F: Fn(serde_json::Value, Invocation) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: serde::Serialize,
    E: Classify + std::fmt::Display,
{
    let payload = match payload.into().into_value(function) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::error!(error = %e, "request refused");
            return Err(diagnostic(&e));
        }
    };
    if let Err(e) = crate::request::require_object(function, &payload) {
        tracing::error!(error = %e, "request refused");
        return Err(diagnostic(&e));
    }
    if let Some(f) = crate::routing::Function::named(function)
        && let Err(e) = crate::routing::refuse_misdirected(f, &payload)
    {
        tracing::error!(error = %e, "request refused");
        return Err(diagnostic(&e));
    }
    match handler(payload, invocation).await {
        Ok(response) => serde_json::to_value(response).map_err(|e| Diagnostic {
            error_type: "NonRetryable".into(),
            error_message: format!("the response could not be serialised: {e}"),
        }),
        Err(e) => {
            tracing::error!(error = %e, retry = ?e.retry(), "invocation failed");
            Err(diagnostic(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_in_the_past_is_not_taken_for_one() {
        let now = Utc::now();
        let mut context = lambda_runtime::Context::default();
        context.request_id = "r".into();
        context.deadline = 600_000;
        let i = Invocation::from_context(&context, now);
        assert_eq!(i.deadline, now + chrono::Duration::minutes(15));
        context.deadline = (now.timestamp_millis() + 30_000) as u64;
        let i = Invocation::from_context(&context, now);
        assert_eq!(
            i.deadline.timestamp_millis(),
            now.timestamp_millis() + 30_000
        );
        assert_eq!(i.request_id, "r");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("handler failed")]
    struct HandlerFailed;

    impl Classify for HandlerFailed {
        fn retry(&self) -> crate::error::Retry {
            crate::error::Retry::Retryable
        }
    }

    #[tokio::test]
    async fn a_payload_that_is_not_an_object_never_reaches_the_handler() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let handler = |payload: serde_json::Value, _: Invocation| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok::<_, HandlerFailed>(payload) }
        };
        let invocation = || Invocation {
            request_id: "r".into(),
            now: Utc::now(),
            deadline: Utc::now() + chrono::Duration::minutes(1),
        };
        for payload in [
            serde_json::json!([]),
            serde_json::json!([{}]),
            serde_json::json!(null),
            serde_json::json!(""),
            serde_json::json!(0),
            serde_json::json!(false),
        ] {
            let err = respond("retention", payload.clone(), invocation(), &handler)
                .await
                .unwrap_err();
            assert_eq!(err.error_type, "NonRetryable", "{payload}");
            assert!(
                err.error_message.contains("takes a JSON object, got")
                    && err.error_message.contains("{\"dry_run\": true}"),
                "{payload}: {}",
                err.error_message
            );
        }
        for text in [
            r#"{"action":"status","action":"force","reason":"x"}"#,
            r#"{"dry_run":true,"dry_run":false}"#,
        ] {
            let payload = crate::request::Payload::from_json("retention", text).unwrap();
            let err = respond("retention", payload, invocation(), &handler)
                .await
                .unwrap_err();
            assert_eq!(err.error_type, "NonRetryable", "{text}");
            assert!(err.error_message.contains("twice"), "{}", err.error_message);
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        let answer = respond("retention", serde_json::json!({}), invocation(), &handler)
            .await
            .unwrap();
        assert_eq!(answer, serde_json::json!({}));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let failing = |_: serde_json::Value, _: Invocation| async { Err::<(), _>(HandlerFailed) };
        let err = respond("retention", serde_json::json!({}), invocation(), &failing)
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "Retryable");
    }
}
