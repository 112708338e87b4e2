//! How failures are classified and reported to Lambda.
//!
//! Every error Lifeboat returns says what failed, on which resource, what to do, and
//! whether retrying the same invocation can help. The handler turns it into a failed
//! invocation whose error type is `Retryable` or `NonRetryable`, so Lambda's retry
//! policy and the operators reading the error see the difference at once.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;
use std::fmt;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Retry {
    /// A transient condition (throttling, a 5xx, an unreachable endpoint, a lost race).
    Retryable,
    /// Retrying the same input fails the same way (bad input, a missing resource).
    NonRetryable,
}

impl Retry {
    /// The error type Lambda reports for a failed invocation.
    pub fn error_type(self) -> &'static str {
        match self {
            Retry::Retryable => "Retryable",
            Retry::NonRetryable => "NonRetryable",
        }
    }
}

/// An error that knows whether a retry can help.
pub trait Classify {
    /// Whether retrying can help.
    fn retry(&self) -> Retry;
}

/// Turn an error into the diagnostic a handler returns to Lambda.
pub fn diagnostic<E: Classify + fmt::Display>(err: &E) -> Diagnostic {
    Diagnostic {
        error_type: err.retry().error_type().to_string(),
        error_message: err.to_string(),
    }
}

/// What kind of failure an AWS call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsFailure {
    /// The service throttled the request.
    Throttled,
    /// The service failed (HTTP 5xx).
    ServerError,
    /// The endpoint could not be reached or did not answer in time (e.g. a region outage).
    Unreachable,
    /// The service refused the request (HTTP 4xx); `code` says why.
    Refused,
    /// The response could not be understood.
    BadResponse,
    /// The request could not be built (a bug or bad input).
    BadRequest,
}

/// Error codes AWS services use for throttling.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
];

/// A failed AWS API call: which service, operation and resource, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AwsError {
    /// The service, e.g. `rds`.
    pub service: &'static str,
    /// The operation, e.g. `CreateDBSnapshot`.
    pub operation: &'static str,
    /// The resource the call was about.
    pub resource: String,
    /// The kind of failure.
    pub failure: AwsFailure,
    /// The AWS error code, when the service answered with one.
    pub code: Option<String>,
    /// The service's message, or the transport's.
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} for {} failed",
            self.service, self.operation, self.resource
        )?;
        match &self.code {
            Some(code) => write!(f, " with {code}: {}", self.message)?,
            None => write!(f, ": {}", self.message)?,
        }
        let hint = match self.failure {
            AwsFailure::Throttled => " (throttled; a retry with backoff will do)",
            AwsFailure::ServerError => " (AWS-side failure; retry)",
            AwsFailure::Unreachable => " (endpoint unreachable; is the region down?)",
            AwsFailure::Refused | AwsFailure::BadResponse | AwsFailure::BadRequest => "",
        };
        f.write_str(hint)
    }
}

impl AwsError {
    /// Classify an SDK error.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        resource: impl Into<String>,
        err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (failure, code, message) = match err {
            SdkError::ServiceError(service_err) => {
                let e = service_err.err();
                let status = service_err.raw().status().as_u16();
                let code = e.code().map(str::to_string);
                let failure = if code
                    .as_deref()
                    .is_some_and(|c| THROTTLING_CODES.contains(&c))
                    || status == 429
                {
                    AwsFailure::Throttled
                } else if status >= 500 {
                    AwsFailure::ServerError
                } else {
                    AwsFailure::Refused
                };
                let message = e
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status}"));
                (failure, code, message)
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => (
                AwsFailure::Unreachable,
                None,
                DisplayErrorContext(err).to_string(),
            ),
            SdkError::ResponseError(_) => (
                AwsFailure::BadResponse,
                None,
                DisplayErrorContext(err).to_string(),
            ),
            _ => (
                AwsFailure::BadRequest,
                None,
                DisplayErrorContext(err).to_string(),
            ),
        };
        AwsError {
            service,
            operation,
            resource: resource.into(),
            failure,
            code,
            message,
        }
    }

    /// A request Lifeboat could not even build (a value the SDK refused).
    pub fn bad_request(
        service: &'static str,
        operation: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            service,
            operation,
            resource: resource.into(),
            failure: AwsFailure::BadRequest,
            code: None,
            message: message.into(),
        }
    }

    /// Whether the service answered with this error code.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl Classify for AwsError {
    fn retry(&self) -> Retry {
        match self.failure {
            AwsFailure::Throttled
            | AwsFailure::ServerError
            | AwsFailure::Unreachable
            | AwsFailure::BadResponse => Retry::Retryable,
            AwsFailure::Refused | AwsFailure::BadRequest => Retry::NonRetryable,
        }
    }
}
