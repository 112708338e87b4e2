//! The detection decision: scripted cases for each kind of signal, and property tests
//! over random plans and readings (quorum, silent regions, the window, unreadable
//! signals).

use super::*;
use crate::plan::parse_plan;
use chrono::TimeZone;
use proptest::prelude::*;
use serde_json::json;

const PRIMARY: &str = "us-east-1";
const DR: &str = "us-west-2";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
}

/// The local plan with these health alarms (name, in the primary region?) and detection.
fn plan_with(alarms: &[(&str, bool)], detection: serde_json::Value) -> Plan {
    let mut p: serde_json::Value =
        serde_json::from_str(include_str!("../../../infra/plans/local.json")).unwrap();
    p["failover"]["health_alarms"] = alarms
        .iter()
        .map(|(name, primary)| json!({"name": name, "region": if *primary { PRIMARY } else { DR }}))
        .collect();
    p["failover"]["detection"] = detection;
    parse_plan(&p.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn default_plan() -> Plan {
    plan_with(&[("health", true)], json!({}))
}

fn alarm(name: &str, region: &str, reading: Reading<AlarmState>) -> AlarmObservation {
    AlarmObservation {
        name: name.into(),
        region: region.into(),
        reading,
    }
}

fn primary(reading: Reading<String>) -> PrimaryObservation {
    PrimaryObservation {
        resource: "orders-db".into(),
        reading,
    }
}

fn replica(reading: Reading<ReplicaState>) -> ReplicaObservation {
    ReplicaObservation {
        resource: "orders-db".into(),
        region: DR.into(),
        reading,
    }
}

fn replicating(status: &str, lag: &[(i64, f64)]) -> Reading<ReplicaState> {
    Reading::Seen(ReplicaState {
        source: Some("arn:aws:rds:us-east-1:1:db:orders-db".into()),
        replication: Some(ReplicationStatus {
            status: status.into(),
            normal: Some(status == "replicating"),
            message: (status == "error").then(|| "the source is unreachable".to_string()),
        }),
        lag: lag
            .iter()
            .map(|(ago, s)| LagPoint {
                at: t0() - Duration::seconds(*ago),
                seconds: *s,
            })
            .collect(),
    })
}

fn no_answer() -> Reading<AlarmState> {
    Reading::NoAnswer {
        reason: "connection closed".into(),
    }
}

fn seen(value: AlarmValue) -> Reading<AlarmState> {
    Reading::Seen(AlarmState::plain(value))
}

#[test]
fn a_regional_outage_with_the_alarm_in_the_primary_region_is_confirmed() {
    // The README's deployment: the alarm in us-east-1 (Route 53 publishes there), the
    // region dark, the DR replica's replication in error.
    let plan = default_plan();
    let readings = Readings {
        alarms: vec![alarm("health", PRIMARY, no_answer())],
        primary: vec![primary(Reading::NoAnswer {
            reason: "connection closed".into(),
        })],
        replicas: vec![replica(replicating("error", &[(60, 2.0)]))],
        probes: vec![],
    };
    let c = confirm(&plan, &readings, t0(), t0());
    assert_eq!(c.outcome, Outcome::Confirmed, "{:#?}", c.signals);
    // The alarm and the API are silent for one reason: one vote, not two.
    assert_eq!(c.failing_votes, 2);
    assert_eq!(c.signals[0].silent_region.as_deref(), Some(PRIMARY));
    assert_eq!(c.signals[1].silent_region.as_deref(), Some(PRIMARY));
    assert!(
        c.signals[2].detail.contains("replication error"),
        "{:?}",
        c.signals[2]
    );
}

#[test]
fn a_cut_path_to_the_primary_region_alone_does_not_confirm() {
    // The DR region cannot reach us-east-1, but the replica still replicates: the
    // primary is alive.
    let plan = default_plan();
    let readings = Readings {
        alarms: vec![alarm("health", PRIMARY, no_answer())],
        primary: vec![primary(Reading::NoAnswer {
            reason: "timed out".into(),
        })],
        replicas: vec![replica(replicating("replicating", &[(120, 1.0), (0, 2.0)]))],
        probes: vec![],
    };
    let c = confirm(&plan, &readings, t0(), t0());
    assert_eq!(c.outcome, Outcome::Undecided);
    assert_eq!((c.failing_votes, c.healthy_votes), (1, 1));
    let later = confirm(&plan, &readings, t0(), t0() + Duration::minutes(5));
    assert_eq!(later.outcome, Outcome::Expired);
}

#[test]
fn one_alarm_in_alarm_with_the_rest_healthy_waits_then_expires() {
    let plan = default_plan();
    let readings = Readings {
        alarms: vec![alarm("health", PRIMARY, seen(AlarmValue::Alarm))],
        primary: vec![primary(Reading::Seen("available".into()))],
        replicas: vec![replica(replicating("replicating", &[(0, 1.0)]))],
        probes: vec![],
    };
    let c = confirm(&plan, &readings, t0(), t0() + Duration::seconds(30));
    assert_eq!(c.outcome, Outcome::Undecided);
    let c = confirm(&plan, &readings, t0(), t0() + Duration::minutes(6));
    assert_eq!(c.outcome, Outcome::Expired);
    assert_eq!(c.deadline, t0() + Duration::minutes(5));
    // Back to OK: a quorum says healthy, none failing.
    let mut ok = readings.clone();
    ok.alarms[0] = alarm("health", PRIMARY, seen(AlarmValue::Ok));
    assert_eq!(confirm(&plan, &ok, t0(), t0()).outcome, Outcome::Healthy);
}

#[test]
fn insufficient_data_follows_treat_missing_data_unless_the_plan_says_otherwise() {
    let state = |tmd: Option<MissingData>| {
        Reading::Seen(AlarmState {
            treat_missing_data: tmd,
            ..AlarmState::plain(AlarmValue::InsufficientData)
        })
    };
    let plan = default_plan();
    let verdict_of = |plan: &Plan, r: Reading<AlarmState>| {
        let readings = Readings {
            alarms: vec![alarm("health", PRIMARY, r)],
            ..Readings::default()
        };
        confirm(plan, &readings, t0(), t0()).signals[0].verdict
    };
    assert_eq!(
        verdict_of(&plan, state(Some(MissingData::Breaching))),
        Verdict::Failing
    );
    assert_eq!(
        verdict_of(&plan, state(Some(MissingData::NotBreaching))),
        Verdict::Healthy
    );
    assert_eq!(
        verdict_of(&plan, state(Some(MissingData::Ignore))),
        Verdict::Unknown
    );
    assert_eq!(
        verdict_of(&plan, state(Some(MissingData::Missing))),
        Verdict::Unknown
    );
    assert_eq!(verdict_of(&plan, state(None)), Verdict::Unknown);
    let composite = Reading::Seen(AlarmState {
        composite: true,
        treat_missing_data: Some(MissingData::Breaching),
        ..AlarmState::plain(AlarmValue::InsufficientData)
    });
    assert_eq!(verdict_of(&plan, composite), Verdict::Unknown);
    for (setting, expected) in [
        ("failing", Verdict::Failing),
        ("healthy", Verdict::Healthy),
        ("unknown", Verdict::Unknown),
    ] {
        let p = plan_with(&[("health", true)], json!({"insufficient_data": setting}));
        assert_eq!(
            verdict_of(&p, state(Some(MissingData::NotBreaching))),
            expected
        );
    }
}

#[test]
fn a_suppressed_alarm_in_alarm_is_not_counted() {
    let plan = default_plan();
    let readings = Readings {
        alarms: vec![alarm(
            "health",
            PRIMARY,
            Reading::Seen(AlarmState {
                composite: true,
                actions_suppressed_by: Some("Alarm".into()),
                actions_suppressed_reason: Some("Alarm maintenance-window is in ALARM".into()),
                ..AlarmState::plain(AlarmValue::Alarm)
            }),
        )],
        ..Readings::default()
    };
    let c = confirm(&plan, &readings, t0(), t0());
    assert_eq!(c.signals[0].verdict, Verdict::Unknown);
    assert!(
        c.signals[0].detail.contains("maintenance-window"),
        "{:?}",
        c.signals[0]
    );
}

#[test]
fn the_replica_view_reads_status_infos_and_the_lag() {
    let plan = default_plan(); // max_replica_lag_seconds 30
    let v = |r: Reading<ReplicaState>| {
        let Reading::Seen(state) = r else { panic!() };
        replica_state_verdict(&plan, &state).0
    };
    assert_eq!(v(replicating("replicating", &[(0, 2.0)])), Verdict::Healthy);
    assert_eq!(v(replicating("error", &[(0, 2.0)])), Verdict::Failing);
    assert_eq!(v(replicating("terminated", &[])), Verdict::Failing);
    assert_eq!(v(replicating("stopped", &[])), Verdict::Failing);
    assert_eq!(
        v(replicating("replication degraded", &[(0, 1.0)])),
        Verdict::Unknown
    );
    assert_eq!(v(replicating("replicating", &[])), Verdict::Unknown);
    // MySQL and MariaDB report -1 when replication is not active.
    assert_eq!(
        v(replicating("replicating", &[(60, 1.0), (0, -1.0)])),
        Verdict::Failing
    );
    // Lag growing as fast as the clock, past the maximum: nothing is replayed.
    assert_eq!(
        v(replicating(
            "replicating",
            &[(180, 5.0), (120, 65.0), (0, 185.0)]
        )),
        Verdict::Failing
    );
    // High but catching up: unknown, not failing.
    assert_eq!(
        v(replicating("replicating", &[(120, 200.0), (0, 90.0)])),
        Verdict::Unknown
    );
    let promoted = Reading::Seen(ReplicaState {
        source: None,
        replication: None,
        lag: vec![],
    });
    assert_eq!(v(promoted), Verdict::Unknown);
}

#[test]
fn the_primary_api_is_failing_when_silent_or_not_serving() {
    let plan = default_plan();
    let v = |r: Reading<String>| {
        let readings = Readings {
            primary: vec![primary(r)],
            ..Readings::default()
        };
        confirm(&plan, &readings, t0(), t0()).signals[1].clone()
    };
    assert_eq!(
        v(Reading::Seen("available".into())).verdict,
        Verdict::Healthy
    );
    assert_eq!(
        v(Reading::Seen("backing-up".into())).verdict,
        Verdict::Healthy
    );
    assert_eq!(v(Reading::Seen("stopped".into())).verdict, Verdict::Failing);
    assert_eq!(v(Reading::Missing).verdict, Verdict::Failing);
    let silent = v(Reading::NoAnswer { reason: "x".into() });
    assert_eq!(silent.verdict, Verdict::Failing);
    assert_eq!(silent.silent_region.as_deref(), Some(PRIMARY));
    assert_eq!(
        v(Reading::Failed {
            reason: "Throttling".into()
        })
        .verdict,
        Verdict::Unknown
    );
}

#[test]
fn a_probe_that_does_not_connect_is_failing() {
    let plan = plan_with(
        &[("health", false)],
        json!({"signals": [{"kind": "endpoint_probe", "host": "127.0.0.1", "port": 5432}]}),
    );
    let probe = |failure: Option<&str>| Readings {
        probes: vec![ProbeObservation {
            host: "127.0.0.1".into(),
            port: 5432,
            failure: failure.map(str::to_string),
        }],
        ..Readings::default()
    };
    let c = confirm(&plan, &probe(None), t0(), t0());
    assert_eq!(c.signals[1].verdict, Verdict::Healthy);
    let c = confirm(&plan, &probe(Some("connection refused")), t0(), t0());
    assert_eq!(c.signals[1].verdict, Verdict::Failing);
}

// --- Properties ----------------------------------------------------------------------

/// A random plan: 1-3 health alarms (each in the primary region or not), a subset of
/// the other signals, any quorum the plan allows, and any meaning of unreadable and
/// INSUFFICIENT_DATA.
fn arb_plan() -> impl Strategy<Value = Plan> {
    (
        proptest::collection::vec(any::<bool>(), 1..=3),
        any::<(bool, bool, bool)>(),
        any::<u8>(),
        prop::sample::select(vec!["alarm_setting", "failing", "healthy", "unknown"]),
        any::<(bool, bool)>(),
        1u32..=10,
    )
        .prop_map(
            |(alarms, (api, view, probe), q, insufficient, (up, uo), window)| {
                let alarms: Vec<(String, bool)> = alarms
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("health-{i}"), *p))
                    .collect();
                let mut signals = vec![];
                if api {
                    signals.push(json!({"kind": "primary_api"}));
                }
                if view {
                    signals.push(json!({"kind": "replica_view"}));
                }
                if probe {
                    signals.push(
                        json!({"kind": "endpoint_probe", "host": "db.example", "port": 5432}),
                    );
                }
                let n = (alarms.len() + signals.len()) as u32;
                let meaning = |f: bool| if f { "failing" } else { "unknown" };
                let named: Vec<(&str, bool)> =
                    alarms.iter().map(|(n, p)| (n.as_str(), *p)).collect();
                plan_with(
                    &named,
                    json!({
                        "signals": signals,
                        "quorum": 1 + u32::from(q) % n,
                        "insufficient_data": insufficient,
                        "unreadable": {"primary_region": meaning(up), "other_regions": meaning(uo)},
                        "window_minutes": window,
                    }),
                )
            },
        )
}

fn arb_alarm_reading() -> impl Strategy<Value = Reading<AlarmState>> {
    let value = prop::sample::select(vec![
        AlarmValue::Alarm,
        AlarmValue::Ok,
        AlarmValue::InsufficientData,
    ]);
    let tmd = prop::option::of(prop::sample::select(vec![
        MissingData::Breaching,
        MissingData::NotBreaching,
        MissingData::Ignore,
        MissingData::Missing,
    ]));
    prop_oneof![
        4 => (value, tmd, any::<bool>(), any::<bool>()).prop_map(|(value, tmd, composite, suppressed)| {
            Reading::Seen(AlarmState {
                value,
                treat_missing_data: tmd,
                composite,
                actions_suppressed_by: suppressed.then(|| "Alarm".to_string()),
                actions_suppressed_reason: None,
            })
        }),
        1 => Just(Reading::Missing),
        2 => Just(no_answer()),
        1 => Just(Reading::Failed { reason: "AccessDenied".into() }),
    ]
}

fn arb_primary_reading() -> impl Strategy<Value = Reading<String>> {
    prop_oneof![
        3 => prop::sample::select(vec!["available", "stopped", "failed", "backing-up", "rebooting"])
            .prop_map(|s| Reading::Seen(s.to_string())),
        1 => Just(Reading::Missing),
        2 => Just(Reading::NoAnswer { reason: "closed".into() }),
        1 => Just(Reading::Failed { reason: "Throttling".into() }),
    ]
}

fn arb_replica_reading() -> impl Strategy<Value = Reading<ReplicaState>> {
    prop_oneof![
        4 => (
            prop::sample::select(vec!["replicating", "error", "stopped", "replication degraded"]),
            proptest::collection::vec((0i64..300, -1.0f64..400.0), 0..4),
        )
            .prop_map(|(status, mut lag)| {
                lag.sort_by_key(|(ago, _)| -ago);
                replicating(status, &lag)
            }),
        1 => Just(Reading::Missing),
        2 => Just(Reading::NoAnswer { reason: "closed".into() }),
        1 => Just(Reading::Failed { reason: "Throttling".into() }),
    ]
}

fn arb_readings(plan: &Plan) -> impl Strategy<Value = Readings> + use<> {
    let alarms: Vec<(String, String)> = plan
        .failover
        .health_alarms
        .iter()
        .map(|a| (a.name.clone(), plan.alarm_region(a).to_string()))
        .collect();
    (
        proptest::collection::vec(arb_alarm_reading(), alarms.len()),
        arb_primary_reading(),
        arb_replica_reading(),
        prop::option::of(Just("refused".to_string())),
    )
        .prop_map(move |(ar, p, r, probe)| Readings {
            alarms: alarms
                .iter()
                .zip(ar)
                .map(|((n, region), reading)| alarm(n, region, reading))
                .collect(),
            primary: vec![primary(p)],
            replicas: vec![replica(r)],
            probes: vec![ProbeObservation {
                host: "db.example".into(),
                port: 5432,
                failure: probe,
            }],
        })
}

fn plan_and_readings() -> impl Strategy<Value = (Plan, Readings)> {
    arb_plan().prop_flat_map(|plan| {
        let readings = arb_readings(&plan);
        (Just(plan), readings)
    })
}

/// The failing votes, counted another way: one key per failing signal, the silent
/// region standing in for the signal when there is one.
fn recount(signals: &[SignalVerdict]) -> u32 {
    let keys: BTreeSet<String> = signals
        .iter()
        .enumerate()
        .filter(|(_, s)| s.verdict == Verdict::Failing)
        .map(|(i, s)| match &s.silent_region {
            Some(r) => format!("region {r}"),
            None => format!("signal {i}"),
        })
        .collect();
    keys.len() as u32
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Below the quorum nothing is confirmed; at or above it, always.
    #[test]
    fn confirmed_exactly_at_a_quorum_of_failing_votes((plan, readings) in plan_and_readings(), secs in 0i64..3600) {
        let c = confirm(&plan, &readings, t0(), t0() + Duration::seconds(secs));
        prop_assert_eq!(c.failing_votes, recount(&c.signals));
        prop_assert_eq!(c.outcome == Outcome::Confirmed, c.failing_votes >= plan.failover.detection.quorum, "{:#?}", c);
        prop_assert_eq!(c.signals.len(), plan.failover.health_alarms.len() + plan.failover.detection.signals.len());
    }

    /// Never undecided once the window has passed; standing down only when nothing says
    /// failing and a quorum says healthy.
    #[test]
    fn never_stuck_past_the_window((plan, readings) in plan_and_readings(), secs in 0i64..7200) {
        let now = t0() + Duration::seconds(secs);
        let c = confirm(&plan, &readings, t0(), now);
        if now >= c.deadline {
            prop_assert_ne!(c.outcome, Outcome::Undecided);
        }
        if c.outcome == Outcome::Healthy {
            prop_assert_eq!(c.failing_votes, 0);
            prop_assert!(c.healthy_votes >= plan.failover.detection.quorum);
        }
        if c.outcome == Outcome::Expired {
            prop_assert!(now >= c.deadline);
        }
    }

    /// An alarm whose region does not answer says what the plan gives it for that region.
    #[test]
    fn unreadable_alarms_count_as_the_plan_says((plan, mut readings) in plan_and_readings()) {
        for a in readings.alarms.iter_mut() {
            a.reading = no_answer();
        }
        let c = confirm(&plan, &readings, t0(), t0());
        for (a, s) in plan.failover.health_alarms.iter().zip(&c.signals) {
            let region = plan.alarm_region(a);
            let meaning = if region == plan.regions.primary {
                plan.failover.detection.unreadable.primary_region
            } else {
                plan.failover.detection.unreadable.other_regions
            };
            let expected = match meaning {
                Unreadable::Failing => Verdict::Failing,
                Unreadable::Unknown => Verdict::Unknown,
            };
            prop_assert_eq!(s.verdict, expected);
        }
    }

    /// However many signals the primary region's outage silences, they are one vote.
    #[test]
    fn a_silent_region_is_one_vote((plan, mut readings) in plan_and_readings()) {
        for a in readings.alarms.iter_mut().filter(|a| a.region == PRIMARY) {
            a.reading = no_answer();
        }
        readings.primary = vec![primary(Reading::NoAnswer { reason: "closed".into() })];
        let c = confirm(&plan, &readings, t0(), t0());
        let others = c.signals.iter().filter(|s| s.verdict == Verdict::Failing && s.silent_region.as_deref() != Some(PRIMARY)).count() as u32;
        prop_assert!(c.failing_votes <= others + 1);
    }

    /// More failing readings never take a confirmation away.
    #[test]
    fn failing_more_never_confirms_less((plan, readings) in plan_and_readings(), which in 0usize..5) {
        let before = confirm(&plan, &readings, t0(), t0());
        let mut worse = readings.clone();
        match which {
            0 => if let Some(a) = worse.alarms.first_mut() { a.reading = seen(AlarmValue::Alarm); },
            1 => worse.primary = vec![primary(Reading::Seen("failed".into()))],
            2 => worse.replicas = vec![replica(replicating("error", &[]))],
            3 => worse.probes[0].failure = Some("refused".into()),
            _ => if let Some(a) = worse.alarms.last_mut() { a.reading = seen(AlarmValue::Alarm); },
        }
        let after = confirm(&plan, &worse, t0(), t0());
        prop_assert!(after.failing_votes >= before.failing_votes, "{:#?}\n{:#?}", before, after);
        if before.outcome == Outcome::Confirmed {
            prop_assert_eq!(after.outcome, Outcome::Confirmed);
        }
    }

    /// Random readings never panic and serialise for the audit timeline.
    #[test]
    fn confirmations_serialise((plan, readings) in plan_and_readings()) {
        let c = confirm(&plan, &readings, t0(), t0());
        let back: Confirmation = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        prop_assert_eq!(back, c);
        let r: Readings = serde_json::from_value(serde_json::to_value(&readings).unwrap()).unwrap();
        prop_assert_eq!(r, readings);
    }
}
