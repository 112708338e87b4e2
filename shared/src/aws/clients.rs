use crate::budget;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// How to build clients: read through a lookup function so tests vary it without
/// touching the process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// Endpoint that every client calls instead of AWS (`AWS_ENDPOINT_URL`): the local
    /// emulator. `None` in AWS.
    pub endpoint_url: Option<String>,
    /// Static credentials (local emulator and tests only); `None` uses the default chain
    /// (the function's role in Lambda).
    pub static_credentials: Option<(String, String)>,
    /// Most attempts per call, including the first (SDK standard retry with backoff).
    pub max_attempts: u32,
}

impl ClientSettings {
    /// Settings from configuration: `AWS_ENDPOINT_URL`, and `LIFEBOAT_MAX_ATTEMPTS`
    /// (default 4).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        ClientSettings {
            endpoint_url: lookup("AWS_ENDPOINT_URL").filter(|v| !v.trim().is_empty()),
            static_credentials: None,
            max_attempts: lookup("LIFEBOAT_MAX_ATTEMPTS")
                .and_then(|v| v.parse().ok())
                .filter(|n: &u32| (1..=10).contains(n))
                .unwrap_or(4),
        }
    }

    /// The SDK configuration for one region, with credentials from assuming `role_arn`
    /// (a copy destination in another account). The role is assumed through STS with the
    /// function's own credentials, and refreshed by the SDK before it expires.
    pub async fn sdk_config_assuming(
        &self,
        region: &str,
        role_arn: &str,
        session: &str,
    ) -> SdkConfig {
        let base = self.sdk_config(region).await;
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name(session)
            .region(Region::new(region.to_string()))
            .configure(&base)
            .build()
            .await;
        base.into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build()
    }

    /// The SDK configuration for one region.
    pub async fn sdk_config(&self, region: &str) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::standard().with_max_attempts(self.max_attempts.max(1)))
            // Bounded waits: an unreachable region or a hung call fails in seconds, and a
            // call with all its retries ends well inside the lease of the step that makes
            // it (see `crate::budget`).
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(budget::CONNECT_TIMEOUT)
                    .operation_attempt_timeout(budget::ATTEMPT_TIMEOUT)
                    .operation_timeout(budget::CALL_TIMEOUT)
                    .build(),
            );
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key, secret)) = &self.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                key,
                secret,
                None,
                None,
                "lifeboat-static",
            ));
        }
        loader.load().await
    }
}

/// Clients for one region.
#[derive(Debug, Clone)]
pub struct RegionalClients {
    /// The region.
    pub region: String,
    /// RDS.
    pub rds: aws_sdk_rds::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// The configuration they were built from.
    pub config: SdkConfig,
}

impl RegionalClients {
    /// Build the clients of `region`.
    pub async fn build(settings: &ClientSettings, region: &str) -> Self {
        Self::from_config(settings, region, settings.sdk_config(region).await)
    }

    /// The clients of `region` from an SDK configuration already built.
    pub fn from_config(settings: &ClientSettings, region: &str, config: SdkConfig) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            // The emulator serves buckets by path on one host; AWS prefers virtual hosts.
            .force_path_style(settings.endpoint_url.is_some())
            .build();
        RegionalClients {
            region: region.to_string(),
            rds: aws_sdk_rds::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            config,
        }
    }
}

/// Every client a function needs: the primary region, the DR region, the function's own
/// ("home") region where the state table, topic and report bucket live, and Route 53
/// (a global service).
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// Clients in the primary region.
    pub primary: RegionalClients,
    /// Clients in the DR region.
    pub dr: RegionalClients,
    /// Clients in the function's own region.
    pub home: RegionalClients,
    /// Route 53.
    pub route53: aws_sdk_route53::Client,
}

impl AwsClients {
    /// Build the clients once per cold start. `home_region` defaults to the DR region,
    /// where Lifeboat's control plane should run so that it survives the primary region.
    pub async fn build(
        settings: &ClientSettings,
        primary_region: &str,
        dr_region: &str,
        home_region: Option<&str>,
    ) -> Self {
        let primary = RegionalClients::build(settings, primary_region).await;
        let dr = RegionalClients::build(settings, dr_region).await;
        let home = match home_region {
            None => dr.clone(),
            Some(r) if r == dr_region => dr.clone(),
            Some(r) if r == primary_region => primary.clone(),
            Some(r) => RegionalClients::build(settings, r).await,
        };
        // Route 53's control plane lives in us-east-1 whatever the caller's region.
        let route53_config = settings.sdk_config("us-east-1").await;
        AwsClients {
            primary,
            dr,
            home,
            route53: aws_sdk_route53::Client::new(&route53_config),
        }
    }

    /// The clients of `region` (primary, DR or home).
    pub fn region(&self, region: &str) -> Option<&RegionalClients> {
        [&self.primary, &self.dr, &self.home]
            .into_iter()
            .find(|c| c.region == region)
    }
}
