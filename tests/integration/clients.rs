//! Client construction: the endpoint from configuration, one set of clients per region.

use harness::LocalAws;
use lifeboat::aws::{AwsClients, ClientSettings};
use lifeboat::error::{AwsError, AwsFailure, Classify, Retry};

#[tokio::test]
async fn clients_honour_the_configured_endpoint_and_keep_regions_apart() {
    let local = LocalAws::from_env();
    let account = local.fresh_account();
    let endpoint = local.endpoint.clone();
    let lookup = move |name: &str| (name == "AWS_ENDPOINT_URL").then(|| endpoint.clone());
    let mut settings = ClientSettings::from_lookup(&lookup);
    assert_eq!(
        settings.endpoint_url.as_deref(),
        Some(local.endpoint.as_str())
    );
    settings.static_credentials = account.settings().static_credentials;

    let config = settings.sdk_config("us-west-2").await;
    assert_eq!(config.endpoint_url(), Some(local.endpoint.as_str()));
    assert_eq!(config.region().map(|r| r.as_ref()), Some("us-west-2"));

    let clients = AwsClients::build(&settings, "us-east-1", "us-west-2", Some("us-east-1")).await;
    assert_eq!(clients.primary.region, "us-east-1");
    assert_eq!(clients.dr.region, "us-west-2");
    assert_eq!(clients.home.region, "us-east-1");
    assert!(clients.region("eu-west-1").is_none());

    // A call really reaches the emulator, in the region the client is for.
    clients
        .dr
        .sns
        .create_topic()
        .name("only-in-the-dr-region")
        .send()
        .await
        .expect("the emulator answers");
    let in_dr = clients.dr.sns.list_topics().send().await.unwrap();
    let in_primary = clients.primary.sns.list_topics().send().await.unwrap();
    assert_eq!(in_dr.topics().len(), 1);
    assert!(in_primary.topics().is_empty());
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_unreachable_failure() {
    // Port 9 (discard) on loopback: nothing listens there on these machines.
    let settings = ClientSettings {
        endpoint_url: Some("http://127.0.0.1:9".into()),
        static_credentials: Some(("testing".into(), "testing".into())),
        max_attempts: 1,
    };
    let config = settings.sdk_config("us-east-1").await;
    let rds = aws_sdk_rds::Client::new(&config);
    let err = rds.describe_db_instances().send().await.unwrap_err();
    let classified = AwsError::from_sdk("rds", "DescribeDBInstances", "all", &err);
    assert_eq!(classified.failure, AwsFailure::Unreachable);
    assert_eq!(classified.retry(), Retry::Retryable);
    assert!(
        classified.to_string().contains("is the region down?"),
        "{classified}"
    );
}
