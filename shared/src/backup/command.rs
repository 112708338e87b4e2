//! The snapshot function's triggers, parsed into a typed command. Anything else is refused
//! with an error that says what was expected; nothing is done for it.

use crate::plan::Plan;
use crate::request::{RequestError, require_object, value_as};
use crate::schedule::Tier;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the snapshot function was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotCommand {
    /// An EventBridge schedule tick: snapshot every resource whose window has no snapshot
    /// yet, copy what is not yet copied, measure the RPO.
    Tick {
        /// The event id (the idempotency key).
        event_id: String,
        /// The tick's scheduled time (decides the windows; a late or repeated delivery
        /// of the same tick decides the same windows).
        at: DateTime<Utc>,
    },
    /// RDS says a manual snapshot (or cluster snapshot) was created: copy it now.
    SnapshotCreated {
        /// The event id.
        event_id: String,
        /// The snapshot identifier.
        snapshot: String,
    },
    /// An operator's request to snapshot some (or all) resources now.
    OnDemand {
        /// The resources, by plan id (all when empty).
        resources: Vec<String>,
        /// The tier to give the snapshots (default daily).
        tier: Tier,
    },
}

impl SnapshotCommand {
    /// A short description for logs and the audit timeline.
    pub fn trigger(&self) -> String {
        match self {
            SnapshotCommand::Tick { at, .. } => format!("schedule {}", at.to_rfc3339()),
            SnapshotCommand::SnapshotCreated { snapshot, .. } => {
                format!("rds event: {snapshot} created")
            }
            SnapshotCommand::OnDemand { .. } => "operator".to_string(),
        }
    }
}

/// An event the snapshot function does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

impl From<RequestError> for CommandError {
    fn from(e: RequestError) -> Self {
        CommandError(e.to_string())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDemandRequest {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    tier: Option<String>,
}

const EXPECTED: &str = "expected an EventBridge \"Scheduled Event\", an \"RDS DB Snapshot Event\" or \"RDS DB Cluster Snapshot Event\", or {\"resources\": [\"<resource id>\", ...], \"tier\": \"daily|weekly|monthly|yearly\"}";

/// Parse an invocation payload. Resources and tiers of an on-demand request are checked
/// against the plan here, so a bad request changes nothing.
pub fn parse_command(
    plan: &Plan,
    payload: &serde_json::Value,
) -> Result<SnapshotCommand, CommandError> {
    let object = require_object("snapshot", payload)?;
    let is_envelope = object.contains_key("detail-type") && object.contains_key("source");
    if is_envelope {
        let event: EventBridgeEvent = value_as(payload, "the EventBridge event")
            .map_err(|e| CommandError(format!("malformed EventBridge event: {e}; {EXPECTED}")))?;
        let id = event
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| CommandError("the EventBridge event has no `id`".into()))?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.events", "Scheduled Event") | ("aws.scheduler", "Scheduled Event") => {
                let at = event.time.ok_or_else(|| {
                    CommandError("the scheduled event has no `time`; cannot tell its window".into())
                })?;
                Ok(SnapshotCommand::Tick { event_id: id, at })
            }
            ("aws.rds", "RDS DB Snapshot Event") | ("aws.rds", "RDS DB Cluster Snapshot Event") => {
                let detail = &event.detail;
                let snapshot = detail
                    .get("SourceIdentifier")
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .or_else(|| {
                        detail
                            .get("SourceArn")
                            .and_then(|v| v.as_str())
                            .and_then(|arn| arn.rsplit(':').next())
                    })
                    .ok_or_else(|| {
                        CommandError(
                            "the RDS event has neither detail.SourceIdentifier nor detail.SourceArn"
                                .into(),
                        )
                    })?;
                Ok(SnapshotCommand::SnapshotCreated {
                    event_id: id,
                    snapshot: snapshot.to_string(),
                })
            }
            (source, kind) => Err(CommandError(format!(
                "the snapshot function does not handle {kind:?} events from {source}; {EXPECTED}"
            ))),
        };
    }
    let request: OnDemandRequest = value_as(payload, "the snapshot request")
        .map_err(|e| CommandError(format!("unrecognised request ({e}); {EXPECTED}")))?;
    let tier = match request.tier.as_deref() {
        None => Tier::Daily,
        Some(t) => t.parse::<Tier>().map_err(CommandError)?,
    };
    let unknown: Vec<&String> = request
        .resources
        .iter()
        .filter(|r| plan.resource(r).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(CommandError(format!(
            "the plan {:?} protects no resource {}; it protects: {}",
            plan.name,
            unknown
                .iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            plan.resources
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(SnapshotCommand::OnDemand {
        resources: request.resources,
        tier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_plan;
    use serde_json::json;

    fn plan() -> Plan {
        parse_plan(include_str!("../../../infra/plans/local.json")).unwrap()
    }

    #[test]
    fn every_sample_event_parses() {
        let tick = json!({
            "version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-25T06:00:00Z", "region": "us-west-2",
            "resources": ["arn:aws:events:us-west-2:123456789012:rule/lifeboat-snapshot"], "detail": {}
        });
        assert_eq!(
            parse_command(&plan(), &tick).unwrap(),
            SnapshotCommand::Tick {
                event_id: "e1".into(),
                at: "2026-11-25T06:00:00Z".parse().unwrap()
            }
        );
        let rds = json!({
            "version": "0", "id": "e2", "detail-type": "RDS DB Snapshot Event", "source": "aws.rds",
            "time": "2026-11-25T06:04:00Z",
            "detail": {"EventCategories": ["creation"], "SourceType": "SNAPSHOT",
                       "SourceArn": "arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-x",
                       "SourceIdentifier": "lifeboat-x", "EventID": "RDS-EVENT-0042",
                       "Message": "Manual snapshot created"}
        });
        assert_eq!(
            parse_command(&plan(), &rds).unwrap(),
            SnapshotCommand::SnapshotCreated {
                event_id: "e2".into(),
                snapshot: "lifeboat-x".into()
            }
        );
        let manual = json!({"resources": ["orders-db"], "tier": "monthly"});
        assert_eq!(
            parse_command(&plan(), &manual).unwrap(),
            SnapshotCommand::OnDemand {
                resources: vec!["orders-db".into()],
                tier: Tier::Monthly
            }
        );
        assert_eq!(
            parse_command(&plan(), &json!({})).unwrap(),
            SnapshotCommand::OnDemand {
                resources: vec![],
                tier: Tier::Daily
            }
        );
    }

    #[test]
    fn the_shipped_samples_parse() {
        for (name, text) in [
            (
                "snapshot-schedule.json",
                include_str!("../../../events/snapshot-schedule.json"),
            ),
            (
                "snapshot-rds-snapshot-created.json",
                include_str!("../../../events/snapshot-rds-snapshot-created.json"),
            ),
            (
                "snapshot-rds-cluster-snapshot-created.json",
                include_str!("../../../events/snapshot-rds-cluster-snapshot-created.json"),
            ),
            (
                "snapshot-manual.json",
                include_str!("../../../events/snapshot-manual.json"),
            ),
        ] {
            let payload: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(parse_command(&plan(), &payload).is_ok(), "events/{name}");
        }
    }

    #[test]
    fn bad_input_is_refused_naming_the_problem() {
        let err =
            parse_command(&plan(), &json!({"resources": ["orders-db", "ghost-db"]})).unwrap_err();
        assert!(err.0.contains("protects no resource \"ghost-db\""), "{err}");
        assert!(err.0.contains("orders-db, billing-db, sessions"), "{err}");
        let err = parse_command(
            &plan(),
            &json!({"resources": ["orders-db"], "tier": "hourly"}),
        )
        .unwrap_err();
        assert!(err.0.contains("unknown tier \"hourly\""), "{err}");
        let err = parse_command(&plan(), &json!({"resource": "orders-db"})).unwrap_err();
        assert!(err.0.contains("unknown field `resource`"), "{err}");
        let err = parse_command(&plan(), &json!([1, 2])).unwrap_err();
        assert!(err.0.contains("takes a JSON object, got an array"), "{err}");
        assert!(
            err.0.contains("an EventBridge \"Scheduled Event\""),
            "{err}"
        );
        let err = parse_command(
            &plan(),
            &json!({"id": "x", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
        )
        .unwrap_err();
        assert!(err.0.contains("does not handle"), "{err}");
        let err = parse_command(
            &plan(),
            &json!({"id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
        )
        .unwrap_err();
        assert!(err.0.contains("no `time`"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn no_payload_panics_the_parser_and_only_objects_get_past_it(
            v in crate::request::arbitrary::requests_for("snapshot")
        ) {
            let parsed = parse_command(&plan(), &v);
            if !v.is_object() {
                proptest::prop_assert_eq!(
                    parsed.unwrap_err().0,
                    RequestError::NotAnObject {
                        function: "snapshot",
                        got: crate::request::JsonKind::of(&v),
                        expects: crate::request::expected_by("snapshot"),
                    }
                    .to_string()
                );
            }
        }
    }

    #[test]
    fn an_array_is_never_read_as_the_request_it_would_spell() {
        // serde reads `[]` as a struct whose fields all have defaults: an on-demand
        // snapshot of every resource.
        for payload in [
            json!([]),
            json!([[]]),
            json!([["orders-db"], "monthly"]),
            json!([{}]),
        ] {
            let err = parse_command(&plan(), &payload).unwrap_err();
            assert!(
                err.0.contains("takes a JSON object, got an array"),
                "{payload}: {err}"
            );
        }
    }
}
