use crate::error::AwsError;
use crate::notify::{Notification, Notifier, NotifyError, sns_message, sns_subject};
use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

/// Notifications on an SNS topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    /// Publish to `topic_arn`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
        };
        let bad = |e: aws_sdk_sns::error::BuildError| {
            AwsError::bad_request("sns", "Publish", &self.topic_arn, e.to_string())
        };
        let severity = attribute(n.severity.as_str()).map_err(bad)?;
        let plan = attribute(&n.plan).map_err(bad)?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(sns_subject(&n.plan, n.severity, &n.subject))
            .message(sns_message(n))
            .message_attributes("severity", severity)
            .message_attributes("plan", plan)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sns", "Publish", &self.topic_arn, &e))?;
        Ok(())
    }
}
