//! The snapshot function's triggers, parsed into a typed command. Anything else is refused
//! with an error that says what was expected; nothing is done for it.

use crate::plan::Plan;
use crate::request::{RequestError, require_object, value_as};
use crate::schedule::Tier;
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

/// How far ahead of the invocation's clock a tick's `time` may be.
pub const TICK_AHEAD_MINUTES: i64 = crate::envelope::CLOCK_SKEW_MINUTES;
/// How far behind: Lambda keeps retrying an asynchronous event for up to an hour (the
/// template's MaximumEventAgeInSeconds), plus the same skew.
pub const TICK_BEHIND_MINUTES: i64 = 60 + TICK_AHEAD_MINUTES;

/// A schedule tick is taken for the window its `time` falls in, so a `time` far from
/// now would take another window's snapshots (one days ahead is then "already taken"
/// when its real tick comes). Refuse it, saying what is allowed.
pub fn check_tick_time(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), CommandError> {
    let ahead = at.signed_duration_since(now);
    if ahead > chrono::Duration::minutes(TICK_AHEAD_MINUTES)
        || ahead < -chrono::Duration::minutes(TICK_BEHIND_MINUTES)
    {
        return Err(CommandError(format!(
            "the Scheduled Event's time {} is too far from now ({}): a tick may be at most {TICK_AHEAD_MINUTES} minutes ahead (clock skew) or {TICK_BEHIND_MINUTES} minutes behind (Lambda's retries of an asynchronous event); nothing was done. Send the schedule's own event, or an on-demand request {OPERATOR_REQUEST} to take snapshots now",
            at.to_rfc3339(),
            now.to_rfc3339()
        )));
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDemandRequest {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    tier: Option<String>,
}

const OPERATOR_REQUEST: &str =
    "{\"resources\": [\"<resource id>\", ...], \"tier\": \"daily|weekly|monthly|yearly\"}";

const EXPECTED: &str = "expected an EventBridge \"Scheduled Event\", an \"RDS DB Snapshot Event\" or \"RDS DB Cluster Snapshot Event\", or {\"resources\": [\"<resource id>\", ...], \"tier\": \"daily|weekly|monthly|yearly\"}";

/// Parse an invocation payload. Resources and tiers of an on-demand request are checked
/// against the plan here, so a bad request changes nothing.
pub fn parse_command(
    plan: &Plan,
    payload: &serde_json::Value,
) -> Result<SnapshotCommand, CommandError> {
    let object = require_object("snapshot", payload)?;
    if crate::envelope::claims_to_be_one(object) {
        let event = crate::envelope::read("snapshot", object, OPERATOR_REQUEST)
            .map_err(|e| CommandError(e.to_string()))?;
        let id = event.id.clone();
        return match (event.source.as_str(), event.detail_type.as_str()) {
            _ if event.is_schedule() => Ok(SnapshotCommand::Tick {
                event_id: id,
                at: event.time,
            }),
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
        let rds = json!({"account": "123456789012", "region": "us-east-1", "resources": [],
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
            &json!({"version": "0", "account": "123456789012", "region": "us-east-1", "resources": [], "time": "2026-11-25T10:00:00Z", "id": "x", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
        )
        .unwrap_err();
        assert!(err.0.contains("does not handle"), "{err}");
        let err = parse_command(
            &plan(),
            &json!({"version": "0", "account": "123456789012", "region": "us-east-1", "resources": [], "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
        )
        .unwrap_err();
        assert!(err.0.contains("`time` is missing"), "{err}");
    }

    #[test]
    fn a_tick_far_from_now_is_refused_and_a_far_future_one_never_panics() {
        let plan = parse_plan(include_str!("../../../infra/plans/local.json")).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-25T06:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut e: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/snapshot-schedule.json")).unwrap();
        for (time, ok) in [
            ("2026-11-25T06:00:00Z", true),
            ("2026-11-25T06:05:00Z", true),
            ("2026-11-25T05:10:00Z", true),
            ("2026-11-25T06:06:00Z", false),
            ("2026-11-27T06:00:00Z", false),
            ("2026-11-25T04:00:00Z", false),
            ("+262142-12-31T23:30:00Z", false),
            ("+262143-12-31T23:59:59Z", false),
        ] {
            e["time"] = json!(time);
            let result = parse_command(&plan, &e).and_then(|c| match c {
                SnapshotCommand::Tick { at, .. } => {
                    let _ = crate::schedule::window_at(at, 60).end();
                    check_tick_time(at, now)
                }
                other => panic!("{other:?}"),
            });
            assert_eq!(result.is_ok(), ok, "{time}: {result:?}");
            if let Err(err) = result {
                // chrono reads no year past 9999 in RFC 3339: those are refused as times.
                assert!(
                    err.0.contains("at most 5 minutes ahead") || err.0.contains("`time` is \"+"),
                    "{err}"
                );
                assert!(err.0.contains("nothing was done"), "{err}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn only_ticks_near_now_pass(secs in -10_000_000_000i64..10_000_000_000i64, off in -100_000i64..100_000) {
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let at = DateTime::from_timestamp(secs + off, 0).unwrap();
            let ok = check_tick_time(at, now).is_ok();
            proptest::prop_assert_eq!(ok, (-TICK_BEHIND_MINUTES * 60..=TICK_AHEAD_MINUTES * 60).contains(&off));
        }
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
