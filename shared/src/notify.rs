//! Notifications to people: the SNS topic operators subscribe to.

use crate::error::{AwsError, Classify, Retry};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// How urgent a notification is; sent as the `severity` message attribute so
/// subscriptions can filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Someone should look today.
    Warning,
    /// Someone should look now.
    Critical,
}

impl Severity {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A message for operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The plan it concerns.
    pub plan: String,
    /// How urgent.
    pub severity: Severity,
    /// One line (becomes the e-mail subject, cut to SNS's 100 characters).
    pub subject: String,
    /// What happened and what to do, in sentences.
    pub body: String,
    /// Structured details.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// A notification could not be sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("notification not sent: {0}")]
pub struct NotifyError(#[from] pub AwsError);

impl Classify for NotifyError {
    fn retry(&self) -> Retry {
        self.0.retry()
    }
}

/// The notification port.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Send a notification.
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
}

/// SNS subjects: printable ASCII, no line breaks, at most 100 characters.
pub fn sns_subject(plan: &str, severity: Severity, subject: &str) -> String {
    let raw = format!(
        "[lifeboat {plan}] {} {subject}",
        severity.as_str().to_uppercase()
    );
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut cut: String = cleaned.chars().take(100).collect();
    if cleaned.chars().count() > 100 {
        cut.truncate(97);
        cut.push_str("...");
    }
    cut.trim().to_string()
}

/// The SNS message: the body, then the details as indented JSON.
pub fn sns_message(notification: &Notification) -> String {
    let mut message = notification.body.clone();
    if !notification.details.is_null() {
        message.push_str("\n\n");
        message.push_str(&serde_json::to_string_pretty(&notification.details).unwrap_or_default());
    }
    // SNS accepts up to 256 KiB; keep well inside it.
    const LIMIT: usize = 200 * 1024;
    if message.len() > LIMIT {
        let mut end = LIMIT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("\n[truncated: the full details are in the S3 report]");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_fit_sns_rules() {
        let long = "x".repeat(300);
        let s = sns_subject("orders", Severity::Critical, &format!("fail\nover {long}"));
        assert!(s.len() <= 100);
        assert!(s.starts_with("[lifeboat orders] CRITICAL fail over"));
        assert!(s.ends_with("..."));
        assert!(!s.contains('\n'));
        assert_eq!(
            sns_subject("p", Severity::Info, "héllo"),
            "[lifeboat p] INFO h llo"
        );
    }

    #[test]
    fn messages_carry_details_and_stay_under_the_limit() {
        let n = Notification {
            plan: "p".into(),
            severity: Severity::Warning,
            subject: "s".into(),
            body: "Body.".into(),
            details: serde_json::json!({"resource": "orders-db"}),
        };
        let m = sns_message(&n);
        assert!(m.starts_with("Body.\n\n{"));
        assert!(m.contains("\"resource\": \"orders-db\""));
        let big = Notification {
            body: "é".repeat(300 * 1024),
            ..n
        };
        let m = sns_message(&big);
        assert!(m.len() < 210 * 1024);
        assert!(m.ends_with("S3 report]"));
    }
}

/// A notifier that keeps what it is given, for unit tests of orchestration.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    /// Everything sent.
    pub sent: std::sync::Mutex<Vec<Notification>>,
}

#[cfg(test)]
#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        self.sent.lock().unwrap().push(notification.clone());
        Ok(())
    }
}
