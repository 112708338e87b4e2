use crate::error::AwsError;
use crate::report::{ReportError, ReportSink};
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

/// Reports in an S3 bucket, encrypted at rest.
#[derive(Debug, Clone)]
pub struct S3Reports {
    client: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: Option<String>,
}

impl S3Reports {
    /// Write to `bucket` with SSE-S3, or SSE-KMS under `kms_key_id` when given.
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        kms_key_id: Option<String>,
    ) -> Self {
        S3Reports {
            client,
            bucket: bucket.into(),
            kms_key_id,
        }
    }
}

#[async_trait]
impl ReportSink for S3Reports {
    async fn put_report(
        &self,
        key: &str,
        report: &serde_json::Value,
    ) -> Result<String, ReportError> {
        let body = serde_json::to_vec_pretty(report).unwrap_or_default();
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        put = match &self.kms_key_id {
            Some(kms) => put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms),
            None => put.server_side_encryption(ServerSideEncryption::Aes256),
        };
        let uri = format!("s3://{}/{key}", self.bucket);
        put.send()
            .await
            .map_err(|e| AwsError::from_sdk("s3", "PutObject", &uri, &e))?;
        Ok(uri)
    }
}
