//! The notification and report edges against the emulator.

use crate::support::world;
use harness::http_sink::HttpSink;
use lifeboat::aws::{S3Reports, SnsNotifier};
use lifeboat::error::{Classify, Retry};
use lifeboat::notify::{Notification, Notifier, Severity};
use lifeboat::report::{ReportSink, report_key};
use serde_json::json;

#[tokio::test]
async fn notifications_reach_the_topic_subscribers() {
    let (_, plan, world) = world().await;
    let sink = HttpSink::start().await;
    world
        .clients
        .home
        .sns
        .subscribe()
        .topic_arn(&world.topic_arn)
        .protocol("http")
        .endpoint(&sink.url)
        .send()
        .await
        .unwrap();
    let notifier = SnsNotifier::new(world.clients.home.sns.clone(), &world.topic_arn);
    notifier
        .notify(&Notification {
            plan: plan.name.clone(),
            severity: Severity::Critical,
            subject: "failover started for orders-db".into(),
            body: "The primary is down; promoting orders-db-dr.".into(),
            details: json!({"resource": "orders-db"}),
        })
        .await
        .unwrap();
    let delivered = sink
        .wait_for(|b| b.contains("\"Type\": \"Notification\"") || b.contains("\"Notification\""))
        .await
        .expect("the emulator delivers the notification over HTTP");
    let body: serde_json::Value = serde_json::from_str(&delivered).unwrap();
    assert_eq!(
        body["Subject"],
        "[lifeboat lifeboat-local] CRITICAL failover started for orders-db"
    );
    let message = body["Message"].as_str().unwrap();
    assert!(message.starts_with("The primary is down; promoting orders-db-dr."));
    assert!(message.contains("\"resource\": \"orders-db\""));
}

#[tokio::test]
async fn a_missing_topic_is_a_clear_non_retryable_error() {
    let (account, plan, world) = world().await;
    let missing = account.arn("sns", &plan.regions.dr, "no-such-topic");
    let notifier = SnsNotifier::new(world.clients.home.sns.clone(), &missing);
    let err = notifier
        .notify(&Notification {
            plan: plan.name.clone(),
            severity: Severity::Info,
            subject: "s".into(),
            body: "b".into(),
            details: serde_json::Value::Null,
        })
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::NonRetryable);
    let text = err.to_string();
    assert!(
        text.contains("sns Publish for arn:aws:sns:us-west-2:"),
        "{text}"
    );
    assert!(text.contains("NotFound"), "{text}");
}

#[tokio::test]
async fn reports_are_stored_as_encrypted_json() {
    let (_, plan, world) = world().await;
    let reports = S3Reports::new(
        world.clients.home.s3.clone(),
        &world.control.report_bucket,
        None,
    );
    let key = report_key(&plan.name, "snapshot", "run-1", chrono::Utc::now());
    let report = json!({"created": ["lifeboat-orders-db-20261125t0000z"], "failed": []});
    let uri = reports.put_report(&key, &report).await.unwrap();
    assert_eq!(uri, format!("s3://{}/{key}", world.control.report_bucket));
    let object = world
        .clients
        .home
        .s3
        .get_object()
        .bucket(&world.control.report_bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        object.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    assert_eq!(object.content_type(), Some("application/json"));
    let bytes = object.body.collect().await.unwrap().into_bytes();
    let stored: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(stored, report);
}
