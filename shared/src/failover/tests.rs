//! The failover state machine against a small simulated world: scripted scenarios for
//! each path, and property tests over random sequences of alarms, ticks, commands,
//! crashes and region outages.

use super::*;
use crate::dr::Next;
use crate::plan::parse_plan;
use chrono::TimeZone;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn plan(mode: &str) -> Plan {
    let mut p: serde_json::Value =
        serde_json::from_str(include_str!("../../../infra/plans/local.json")).unwrap();
    p["failover"]["mode"] = serde_json::json!(mode);
    parse_plan(&p.to_string()).unwrap()
}

const ALARM: &str = "orders-db-primary-unhealthy";
const PRIMARY_ENDPOINT: &str = "orders-db.use1.example";
const DR_ENDPOINT: &str = "orders-db-dr.usw2.example";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Replica,
    Promoting(u8),
    Writer,
}

/// The world as AWS would show it, for one replicated resource.
#[derive(Debug, Clone)]
struct Sim {
    now: DateTime<Utc>,
    alarm: AlarmValue,
    /// Where the health alarm lives (the plan's default: the DR region).
    alarm_region: &'static str,
    alarm_readable: bool,
    primary_reachable: bool,
    /// The primary's status while reachable and not stopped by Lifeboat.
    primary_status: &'static str,
    primary_stopped: bool,
    replica_exists: bool,
    role: Role,
    lag: Option<f64>,
    record_dr: bool,
    change_pending: u8,
    promotions: u32,
    double_promotions: u32,
    traffic_primary: u32,
    traffic_pending: u8,
}

impl Sim {
    fn new() -> Self {
        Sim {
            now: Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
            alarm: AlarmValue::Ok,
            alarm_region: "us-west-2",
            alarm_readable: true,
            primary_reachable: true,
            primary_status: "available",
            primary_stopped: false,
            replica_exists: true,
            role: Role::Replica,
            lag: Some(2.0),
            record_dr: false,
            change_pending: 0,
            promotions: 0,
            double_promotions: 0,
            traffic_primary: 100,
            traffic_pending: 0,
        }
    }

    /// A database that is not available (failed, stopped) takes no writes.
    fn primary_writes(&self) -> bool {
        self.primary_reachable && !self.primary_stopped && self.primary_status == "available"
    }

    /// The primary fails where it stands (its region answers: the database does not
    /// serve), and its health alarm goes to ALARM.
    fn fail_primary(&mut self) {
        self.alarm = AlarmValue::Alarm;
        self.primary_status = "failed";
    }

    /// The detection signals as the DR side reads them: the health alarm (in the DR
    /// region), the primary region's API, the replica's own view.
    fn signals(&self) -> Readings {
        use crate::detection::{
            AlarmObservation, AlarmState, LagPoint, PrimaryObservation, ReplicaObservation,
            ReplicaState, ReplicationStatus,
        };
        fn silent<T>() -> Reading<T> {
            Reading::NoAnswer {
                reason: "connection closed".into(),
            }
        }
        let replica = match (self.replica_exists, self.role) {
            (false, _) => Reading::Missing,
            (true, Role::Writer) => Reading::Seen(ReplicaState {
                source: None,
                replication: None,
                lag: vec![],
            }),
            (true, _) => Reading::Seen(ReplicaState {
                source: Some("arn:aws:rds:us-east-1:1:db:orders-db".into()),
                replication: Some(if self.primary_reachable {
                    ReplicationStatus {
                        status: "replicating".into(),
                        normal: Some(true),
                        message: None,
                    }
                } else {
                    ReplicationStatus {
                        status: "error".into(),
                        normal: Some(false),
                        message: Some("the source cannot be reached".into()),
                    }
                }),
                lag: self
                    .lag
                    .map(|l| {
                        vec![
                            LagPoint {
                                at: self.now - Duration::seconds(60),
                                seconds: l,
                            },
                            LagPoint {
                                at: self.now,
                                seconds: l,
                            },
                        ]
                    })
                    .unwrap_or_default(),
            }),
        };
        Readings {
            alarms: vec![AlarmObservation {
                name: ALARM.into(),
                region: self.alarm_region.into(),
                reading: if self.alarm_readable {
                    Reading::Seen(AlarmState::plain(self.alarm))
                } else {
                    silent()
                },
            }],
            primary: vec![PrimaryObservation {
                resource: "orders-db".into(),
                reading: if !self.primary_reachable {
                    silent()
                } else if self.primary_stopped {
                    Reading::Seen("stopped".into())
                } else {
                    Reading::Seen(self.primary_status.into())
                },
            }],
            replicas: vec![ReplicaObservation {
                resource: "orders-db".into(),
                region: "us-west-2".into(),
                reading: replica,
            }],
            probes: vec![],
        }
    }

    fn facts(&self) -> FailoverFacts {
        let db = |id: &str, endpoint: &str, status: &str, from: Option<&str>| StoreFacts {
            identifier: id.into(),
            region: "x".into(),
            status: status.into(),
            engine: Some("postgres".into()),
            endpoint: Some(endpoint.into()),
            encrypted: true,
            replicates_from: from.map(str::to_string),
            replicas: vec![],
            point_in_time_recovery: None,
        };
        let primary = if !self.primary_reachable {
            Observed::Unknown {
                reason: "endpoint unreachable".into(),
            }
        } else {
            Observed::Present(db(
                "orders-db",
                PRIMARY_ENDPOINT,
                if self.primary_stopped {
                    "stopped"
                } else {
                    self.primary_status
                },
                None,
            ))
        };
        let replica = if !self.replica_exists {
            Observed::Missing
        } else {
            let (status, from) = match self.role {
                Role::Replica => ("available", Some("arn:aws:rds:us-east-1:1:db:orders-db")),
                Role::Promoting(_) => ("modifying", Some("arn:aws:rds:us-east-1:1:db:orders-db")),
                Role::Writer => ("available", None),
            };
            Observed::Present(db("orders-db-dr", DR_ENDPOINT, status, from))
        };
        FailoverFacts {
            detection: self.signals(),
            rehearsal: None,
            targets: vec![TargetFacts {
                resource: "orders-db".into(),
                primary,
                replica,
                lag_seconds: if self.role == Role::Replica {
                    self.lag
                } else {
                    Some(0.0)
                },
                record: Some(Observed::Present(vec![
                    if self.record_dr {
                        DR_ENDPOINT
                    } else {
                        PRIMARY_ENDPOINT
                    }
                    .into(),
                ])),
                change: Some(if self.change_pending == 0 {
                    ChangeState::InSync
                } else {
                    ChangeState::Pending
                }),
            }],
            traffic: crate::dr::TrafficFacts {
                primary_percent: Some(self.traffic_primary),
                change: Some(if self.traffic_pending == 0 {
                    ChangeState::InSync
                } else {
                    ChangeState::Pending
                }),
            },
        }
    }

    /// AWS carries out an action.
    fn act(&mut self, action: &Action) -> ActionResult {
        match action {
            Action::Promote { resource } => {
                if self.role != Role::Replica {
                    self.double_promotions += 1;
                }
                self.promotions += 1;
                self.role = Role::Promoting(2);
                ActionResult::Promoted {
                    resource: resource.clone(),
                }
            }
            Action::Fence { resource } => {
                let outcome = if !self.primary_reachable {
                    FenceOutcome::Unreachable {
                        reason: "unreachable".into(),
                    }
                } else if self.primary_stopped {
                    FenceOutcome::NotNeeded {
                        reason: "already stopped".into(),
                    }
                } else {
                    self.primary_stopped = true;
                    FenceOutcome::Stopped
                };
                ActionResult::Fenced {
                    resource: resource.clone(),
                    outcome,
                }
            }
            Action::SetTraffic { primary_percent } => {
                self.traffic_primary = *primary_percent;
                self.traffic_pending = 1;
                ActionResult::TrafficSet {
                    primary_percent: *primary_percent,
                    change: "T1".into(),
                }
            }
            Action::SwitchRecord { resource, endpoint } => {
                self.record_dr = endpoint == DR_ENDPOINT;
                self.change_pending = 2;
                ActionResult::Switched {
                    resource: resource.clone(),
                    endpoint: endpoint.clone(),
                    change: "C1".into(),
                }
            }
        }
    }

    /// Time passes.
    fn advance(&mut self, seconds: i64) {
        self.now += Duration::seconds(seconds);
        if let Role::Promoting(n) = self.role {
            self.role = if n <= 1 {
                Role::Writer
            } else {
                Role::Promoting(n - 1)
            };
        }
        self.change_pending = self.change_pending.saturating_sub(1);
        self.traffic_pending = self.traffic_pending.saturating_sub(1);
    }
}

/// Feed one input through `step` with the world's facts, carry out its actions (unless
/// the process "crashes" before they are absorbed), and return the decision.
fn feed(
    plan: &Plan,
    state: &mut DrState,
    sim: &mut Sim,
    input: FailoverInput,
    crash: bool,
) -> Decision {
    let d = step(plan, state, &input, &sim.facts(), sim.now);
    let results: Vec<ActionResult> = d.actions.iter().map(|a| sim.act(a)).collect();
    *state = if crash {
        d.state.clone()
    } else {
        absorb(&d.state, &results, sim.now)
    };
    d
}

/// Run ticks until the machine stops asking to continue or poll.
fn settle(plan: &Plan, state: &mut DrState, sim: &mut Sim, input: FailoverInput) -> Vec<Decision> {
    let mut out = vec![];
    let mut input = input;
    for _ in 0..40 {
        let d = feed(plan, state, sim, input, false);
        let next = d.next;
        out.push(d);
        match next {
            Next::Stop => break,
            Next::Continue => {}
            Next::Poll => sim.advance(5),
        }
        input = FailoverInput::Tick;
    }
    out
}

fn alarm(now: DateTime<Utc>, value: AlarmValue) -> FailoverInput {
    FailoverInput::Alarm(AlarmSignal {
        name: ALARM.into(),
        value,
        at: now - Duration::seconds(30),
        event_id: "evt-1".into(),
        suppressed_by: None,
    })
}

#[test]
fn an_automatic_failover_goes_from_alarm_to_failed_over_with_its_rto_split() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    let decisions = settle(&p, &mut state, &mut sim, a);
    let DrState::FailedOver(done) = &state else {
        panic!("{state:?}")
    };
    assert_eq!(sim.promotions, 1);
    assert!(sim.primary_stopped, "the reachable old primary is fenced");
    assert!(sim.record_dr);
    assert_eq!(
        sim.traffic_primary, 0,
        "application traffic follows the writer to the DR region"
    );
    assert_eq!(done.targets[0].fence, Some(FenceOutcome::Stopped));
    let m = &done.measurement;
    assert_eq!(m.detection_seconds, 30);
    assert!(m.aws_seconds > 0);
    assert_eq!(
        m.rto_seconds,
        m.detection_seconds + m.aws_seconds + m.approval_seconds + m.lifeboat_seconds
    );
    assert_eq!(m.data_loss_seconds, Some(2.0));
    assert!(m.rpo_met());
    assert_eq!(m.rto_target_seconds, 30 * 60);
    assert_eq!(done.cooldown_until, Some(sim.now + Duration::minutes(30)));
    let actions: Vec<&str> = decisions
        .iter()
        .flat_map(|d| d.notes.iter().map(|n| n.action.as_str()))
        .collect();
    for expected in [
        "failover.alarm",
        "failover.confirm",
        "failover.readiness",
        "failover.promote",
        "failover.promoted",
        "failover.fence",
        "failover.switch-dns",
        "failover.dns-insync",
        "failover.complete",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

/// The plan with its health alarm in the primary region, as the README's Route 53
/// health-check alarm must be when the primary is us-east-1.
fn plan_alarm_in_primary() -> Plan {
    let mut p: serde_json::Value =
        serde_json::from_str(include_str!("../../../infra/plans/local.json")).unwrap();
    p["failover"]["health_alarms"][0]["region"] = serde_json::json!("us-east-1");
    parse_plan(&p.to_string()).unwrap()
}

fn notes(decisions: &[Decision]) -> Vec<String> {
    decisions
        .iter()
        .flat_map(|d| d.notes.iter().map(|n| n.action.clone()))
        .collect()
}

#[test]
fn the_primary_region_down_with_its_alarm_there_fails_over_without_force() {
    let p = plan_alarm_in_primary();
    let mut sim = Sim::new();
    sim.alarm_region = "us-east-1";
    // The alarm fired, then the whole region went dark, CloudWatch included.
    sim.alarm = AlarmValue::Alarm;
    sim.alarm_readable = false;
    sim.primary_reachable = false;
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    let decisions = settle(&p, &mut state, &mut sim, a);
    let DrState::FailedOver(done) = &state else {
        panic!("{state:?}")
    };
    assert_eq!(sim.promotions, 1);
    let c = done
        .detection
        .as_ref()
        .expect("the confirming signals are kept");
    assert_eq!(c.outcome, detection::Outcome::Confirmed);
    // The silent region counts once (the alarm and the API there), the replica's own
    // view in the DR region once more: a quorum of two.
    assert_eq!(c.failing_votes, 2, "{c:?}");
    let confirm = decisions
        .iter()
        .flat_map(|d| &d.notes)
        .find(|n| n.action == "failover.confirm")
        .unwrap();
    assert!(
        confirm.detail.contains("replica view (us-west-2): failing"),
        "{}",
        confirm.detail
    );
    assert_eq!(
        confirm.data["detection"]["outcome"], "confirmed",
        "the audit entry carries what each signal said"
    );
    let complete = decisions
        .iter()
        .flat_map(|d| &d.notes)
        .find(|n| n.action == "failover.complete")
        .unwrap();
    assert!(
        complete.detail.contains("Confirmed by "),
        "{}",
        complete.detail
    );
}

#[test]
fn one_flapping_alarm_promotes_nothing_and_the_incident_ends_at_the_window() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.alarm = AlarmValue::Alarm;
    let mut state = DrState::default();
    let first = alarm(sim.now, AlarmValue::Alarm);
    let decisions = settle(&p, &mut state, &mut sim, first.clone());
    assert!(
        matches!(&state, DrState::FailingOver(f) if f.step == Step::Confirm),
        "{state:?}"
    );
    let said = notes(&decisions);
    assert_eq!(
        said.iter()
            .filter(|a| *a == "failover.confirm-pending")
            .count(),
        1,
        "one note, not one per look: {said:?}"
    );
    // More looks while it stays so: no promotion, no new note.
    for _ in 0..5 {
        sim.advance(10);
        let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
        assert!(d.notes.is_empty() && d.actions.is_empty(), "{d:?}");
    }
    assert_eq!(sim.promotions, 0);
    // Past the window, a tick ends it.
    sim.advance(300);
    let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(matches!(state, DrState::Normal { .. }), "{state:?}");
    assert_eq!(d.notes[0].action, "failover.unconfirmed");
    assert_eq!(d.notes[0].severity, Severity::Critical);
    assert!(
        d.notes[0].detail.contains("never resumed"),
        "{}",
        d.notes[0].detail
    );
    // The old event delivered again starts nothing: its fire time is stale.
    let d = feed(&p, &mut state, &mut sim, first, false);
    assert!(matches!(state, DrState::Normal { .. }));
    assert_eq!(d.notes[0].action, "failover.stale-alarm");
    // A new ALARM is a new incident, with its own fire time.
    sim.fail_primary();
    let fresh = FailoverInput::Alarm(AlarmSignal {
        name: ALARM.into(),
        value: AlarmValue::Alarm,
        at: sim.now - Duration::seconds(5),
        event_id: "evt-2".into(),
        suppressed_by: None,
    });
    settle(&p, &mut state, &mut sim, fresh);
    let DrState::FailedOver(done) = &state else {
        panic!("{state:?}")
    };
    assert_eq!(done.incident, "evt-2");
    assert_eq!(done.measurement.detection_seconds, 5);
}

#[test]
fn an_alarm_that_flaps_back_to_ok_with_the_rest_healthy_aborts() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.alarm = AlarmValue::Alarm;
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    assert!(matches!(&state, DrState::FailingOver(f) if f.step == Step::Confirm));
    sim.alarm = AlarmValue::Ok;
    sim.advance(10);
    let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(matches!(state, DrState::Normal { .. }), "{state:?}");
    assert_eq!(d.notes[0].action, "failover.abort");
    assert_eq!(sim.promotions, 0);
}

#[test]
fn an_incident_left_confirming_past_its_window_is_replaced_by_the_next_alarm() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.alarm = AlarmValue::Alarm;
    let mut state = DrState::default();
    // One look, then the invocation dies: no tick ends the incident.
    let a = alarm(sim.now, AlarmValue::Alarm);
    feed(&p, &mut state, &mut sim, a, false);
    feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(matches!(&state, DrState::FailingOver(f) if f.step == Step::Confirm));
    sim.advance(3600);
    sim.fail_primary();
    let later = FailoverInput::Alarm(AlarmSignal {
        name: ALARM.into(),
        value: AlarmValue::Alarm,
        at: sim.now - Duration::seconds(10),
        event_id: "evt-later".into(),
        suppressed_by: None,
    });
    let decisions = settle(&p, &mut state, &mut sim, later);
    assert_eq!(
        notes(&decisions[..1])[..2],
        ["failover.unconfirmed", "failover.alarm"]
    );
    let DrState::FailedOver(done) = &state else {
        panic!("{state:?}")
    };
    assert_eq!(done.incident, "evt-later");
    // The RTO runs from the new alarm, not the stale one an hour before.
    assert!(done.measurement.rto_seconds < 600, "{:?}", done.measurement);
}

#[test]
fn an_alarm_event_that_starts_nothing_past_the_window_still_ends_the_unconfirmed_incident() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.alarm = AlarmValue::Alarm;
    let mut state = DrState::default();
    // One look, then the invocation dies: no tick ends the incident.
    let a = alarm(sim.now, AlarmValue::Alarm);
    feed(&p, &mut state, &mut sim, a, false);
    assert!(matches!(&state, DrState::FailingOver(f) if f.step == Step::Confirm));
    let window = i64::from(p.failover.detection.window_minutes) * 60;
    sim.advance(window + 30);
    // The next event is the alarm going back to OK: not a tick, and it starts nothing.
    sim.alarm = AlarmValue::Ok;
    let ok = alarm(sim.now, AlarmValue::Ok);
    let d = feed(&p, &mut state, &mut sim, ok, false);
    assert!(
        !matches!(&state, DrState::FailingOver(f) if f.step == Step::Confirm),
        "still confirming past the window: {state:?}"
    );
    assert!(matches!(state, DrState::Normal { .. }), "{state:?}");
    assert!(!d.notes.is_empty(), "the end of the incident is noted");
    assert_eq!(sim.promotions, 0);
}

#[test]
fn insufficient_data_beside_an_alarm_follows_the_plan_and_never_outlives_the_window() {
    let mut sim = Sim::new();
    sim.alarm = AlarmValue::InsufficientData;
    // The default (the alarm's own TreatMissingData, here unset: unknown) with the rest
    // healthy: the healthy quorum aborts at once.
    let p = plan("automatic");
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    assert!(matches!(state, DrState::Normal { .. }), "{state:?}");
    // The plan counts INSUFFICIENT_DATA as failing, beside a failing primary: confirmed.
    let mut raw: serde_json::Value =
        serde_json::from_str(include_str!("../../../infra/plans/local.json")).unwrap();
    raw["failover"]["detection"] = serde_json::json!({"insufficient_data": "failing"});
    let failing = parse_plan(&raw.to_string()).unwrap();
    sim.primary_status = "failed";
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&failing, &mut state, &mut sim, a);
    assert!(matches!(state, DrState::FailedOver(_)), "{state:?}");
    // Counted as unknown while the primary answers as failing: one vote, short of the
    // quorum; it ends at the window, nothing promoted.
    raw["failover"]["detection"] = serde_json::json!({"insufficient_data": "unknown"});
    let unknown = parse_plan(&raw.to_string()).unwrap();
    let mut sim = Sim::new();
    sim.alarm = AlarmValue::InsufficientData;
    sim.primary_status = "failed";
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&unknown, &mut state, &mut sim, a);
    assert!(matches!(&state, DrState::FailingOver(f) if f.step == Step::Confirm));
    sim.advance(300);
    feed(&unknown, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(matches!(state, DrState::Normal { .. }), "{state:?}");
    assert_eq!(sim.promotions, 0);
}

#[test]
fn a_suppressed_alarm_only_notifies() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::default();
    let suppressed = FailoverInput::Alarm(AlarmSignal {
        name: ALARM.into(),
        value: AlarmValue::Alarm,
        at: sim.now,
        event_id: "evt-s".into(),
        suppressed_by: Some("Alarm".into()),
    });
    let d = feed(&p, &mut state, &mut sim, suppressed, false);
    assert_eq!(state, DrState::default());
    assert_eq!(d.notes[0].action, "failover.suppressed");
    // Delivered without the field (an older event), but read back suppressed: it ends.
    let mut facts = sim.facts();
    if let Reading::Seen(a) = &mut facts.detection.alarms[0].reading {
        a.composite = true;
        a.actions_suppressed_by = Some("WaitPeriod".into());
    }
    let d = step(
        &p,
        &state,
        &alarm(sim.now, AlarmValue::Alarm),
        &facts,
        sim.now,
    );
    let d = step(&p, &d.state, &FailoverInput::Tick, &facts, sim.now);
    assert!(matches!(d.state, DrState::Normal { .. }), "{:?}", d.state);
    assert_eq!(d.notes[0].action, "failover.suppressed");
    assert!(d.actions.is_empty());
}

#[test]
fn readiness_and_approval_end_when_the_signals_say_healthy() {
    // Manual mode: confirmed, awaiting approval; the primary recovers.
    let p = plan("manual");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    assert!(matches!(&state, DrState::FailingOver(f) if f.step == Step::AwaitingApproval));
    sim.alarm = AlarmValue::Ok;
    sim.primary_status = "available";
    let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(matches!(state, DrState::Normal { .. }), "{state:?}");
    assert_eq!(d.notes[0].action, "failover.abort");
    assert!(d.notes[0].data["detection"]["signals"].is_array());
    // Automatic mode, held at readiness by the lag guard; the primary recovers.
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.fail_primary();
    sim.lag = Some(45.0);
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    assert!(matches!(&state, DrState::FailingOver(f) if f.step == Step::Readiness));
    sim.alarm = AlarmValue::Ok;
    sim.primary_status = "available";
    sim.lag = Some(1.0);
    feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(matches!(state, DrState::Normal { .. }), "{state:?}");
    assert_eq!(sim.promotions, 0);
}

#[test]
fn a_signal_only_game_day_confirms_with_its_injected_alarm() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    // The game day set the alarm; the primary is fine, as in a rehearsal.
    sim.alarm = AlarmValue::Alarm;
    let mut state = DrState::default();
    let mut input = alarm(sim.now, AlarmValue::Alarm);
    for _ in 0..40 {
        let mut facts = sim.facts();
        facts.rehearsal = Some("gd-1".into());
        let d = step(&p, &state, &input, &facts, sim.now);
        let results: Vec<ActionResult> = d.actions.iter().map(|a| sim.act(a)).collect();
        state = absorb(&d.state, &results, sim.now);
        if d.next == Next::Poll {
            sim.advance(5);
        }
        if d.next == Next::Stop {
            break;
        }
        input = FailoverInput::Tick;
    }
    let DrState::FailedOver(done) = &state else {
        panic!("{state:?}")
    };
    let c = done.detection.as_ref().unwrap();
    assert!(
        c.signals.iter().any(|s| s.signal == "game day gd-1"),
        "{c:?}"
    );
}

#[test]
fn an_alarm_back_to_ok_aborts_before_anything_changes() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.alarm = AlarmValue::Ok;
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    assert!(matches!(state, DrState::Normal { .. }), "{state:?}");
    assert_eq!(sim.promotions, 0);
    assert!(!sim.record_dr);
}

#[test]
fn manual_mode_waits_for_approval_and_cancel_is_only_possible_before_promotion() {
    let p = plan("manual");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    assert!(
        matches!(&state, DrState::FailingOver(f) if f.step == Step::AwaitingApproval),
        "{state:?}"
    );
    assert_eq!(sim.promotions, 0);
    // Ticks keep waiting.
    let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(d.actions.is_empty());
    // Approve: it goes all the way.
    sim.advance(120);
    settle(
        &p,
        &mut state,
        &mut sim,
        FailoverInput::Command(Command::Approve),
    );
    let DrState::FailedOver(done) = &state else {
        panic!("{state:?}")
    };
    assert!(done.measurement.approval_seconds >= 120);
    // Cancel now is refused.
    let d = feed(
        &p,
        &mut state,
        &mut sim,
        FailoverInput::Command(Command::Cancel),
        false,
    );
    assert!(d.refused);
}

#[test]
fn cancel_before_promotion_returns_to_normal_and_after_promotion_is_refused() {
    let p = plan("manual");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    let d = feed(
        &p,
        &mut state,
        &mut sim,
        FailoverInput::Command(Command::Cancel),
        false,
    );
    assert!(!d.refused);
    assert!(matches!(state, DrState::Normal { .. }));
    assert_eq!(sim.promotions, 0);

    let p = plan("automatic");
    let mut state = DrState::default();
    let mut sim = Sim::new();
    sim.fail_primary();
    // Stop right after the promotion was issued.
    let mut input = alarm(sim.now, AlarmValue::Alarm);
    while sim.promotions == 0 {
        feed(&p, &mut state, &mut sim, input, false);
        input = FailoverInput::Tick;
    }
    let d = feed(
        &p,
        &mut state,
        &mut sim,
        FailoverInput::Command(Command::Cancel),
        false,
    );
    assert!(d.refused);
    assert!(
        d.reply.contains("cancel is only possible before promotion"),
        "{}",
        d.reply
    );
}

#[test]
fn the_lag_guard_refuses_and_force_overrides_it_on_the_record() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.fail_primary();
    sim.lag = Some(600.0);
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    let ds = settle(&p, &mut state, &mut sim, a);
    let last = ds.last().unwrap();
    assert!(last.refused);
    assert!(
        last.reply
            .contains("lags 600 s behind, more than the plan's maximum of 30 s"),
        "{}",
        last.reply
    );
    assert_eq!(sim.promotions, 0);
    // Every tick re-checks; the refusal is notified once, not at every tick.
    let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(d.refused && d.notes.is_empty());
    // Unknown lag refuses too: the guard cannot pass without a value.
    sim.lag = None;
    let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(
        d.reply.contains("lag of orders-db-dr is unknown"),
        "{}",
        d.reply
    );
    // An operator forces it.
    sim.lag = Some(600.0);
    let ds = settle(
        &p,
        &mut state,
        &mut sim,
        FailoverInput::Command(Command::Force {
            reason: "INC-1".into(),
        }),
    );
    assert!(ds[0].notes[0].action == "failover.force");
    let DrState::FailedOver(done) = &state else {
        panic!("{state:?}")
    };
    assert_eq!(done.forced.as_deref(), Some("INC-1"));
    assert_eq!(done.measurement.data_loss_seconds, Some(600.0));
    assert!(!done.measurement.rpo_met() || 600.0 <= done.measurement.rpo_target_seconds as f64);
}

#[test]
fn a_missing_replica_refuses_with_a_clear_error_and_changes_nothing() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.fail_primary();
    sim.replica_exists = false;
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    let ds = settle(&p, &mut state, &mut sim, a);
    let last = ds.last().unwrap();
    assert!(last.refused);
    assert!(
        last.reply
            .contains("the DR replica orders-db-dr does not exist in us-west-2"),
        "{}",
        last.reply
    );
    assert_eq!(sim.promotions, 0);
    assert!(!sim.record_dr && !sim.primary_stopped);
}

#[test]
fn cooldown_only_notifies_and_ack_ends_it() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::FailedOver(FailedOver {
        incident: "i".into(),
        since: sim.now,
        cooldown_until: Some(sim.now + Duration::minutes(30)),
        measurement: RecoveryMeasurement {
            rto_seconds: 0,
            rto_target_seconds: 0,
            detection_seconds: 0,
            aws_seconds: 0,
            approval_seconds: 0,
            lifeboat_seconds: 0,
            data_loss_seconds: None,
            rpo_target_seconds: 0,
        },
        targets: vec![],
        forced: None,
        detection: None,
    });
    let a = alarm(sim.now, AlarmValue::Alarm);
    let d = feed(&p, &mut state, &mut sim, a, false);
    assert!(d.reply.contains("cooldown"), "{}", d.reply);
    assert_eq!(d.notes[0].action, "failover.cooldown");
    let d = feed(
        &p,
        &mut state,
        &mut sim,
        FailoverInput::Command(Command::Ack),
        false,
    );
    assert!(!d.refused);
    assert_eq!(state.cooldown_until(), Some(sim.now));
    let d = feed(
        &p,
        &mut state,
        &mut sim,
        FailoverInput::Command(Command::Ack),
        false,
    );
    assert!(d.refused);
    // A normal state in cooldown also only notifies.
    let mut normal = DrState::Normal {
        cooldown_until: Some(sim.now + Duration::minutes(5)),
        last: None,
    };
    let a = alarm(sim.now, AlarmValue::Alarm);
    let d = feed(&p, &mut normal, &mut sim, a, false);
    assert!(matches!(normal, DrState::Normal { .. }));
    assert!(d.reply.contains("cooldown"));
}

#[test]
fn alarms_that_are_not_the_plans_or_not_in_alarm_change_nothing() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    let mut state = DrState::default();
    let other = FailoverInput::Alarm(AlarmSignal {
        name: "cpu-high".into(),
        value: AlarmValue::Alarm,
        at: sim.now,
        event_id: "x".into(),
        suppressed_by: None,
    });
    let d = feed(&p, &mut state, &mut sim, other, false);
    assert!(d.reply.contains("not one of the plan's health alarms"));
    assert_eq!(state, DrState::default());
    let a = alarm(sim.now, AlarmValue::Ok);
    let d = feed(&p, &mut state, &mut sim, a, false);
    assert!(d.reply.contains("not ALARM"));
    assert_eq!(state, DrState::default());
}

#[test]
fn a_later_alarm_never_starts_a_second_failover() {
    let p = plan("manual");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    let before = state.clone();
    sim.advance(3600 * 24);
    let a = alarm(sim.now, AlarmValue::Alarm);
    let d = feed(&p, &mut state, &mut sim, a, false);
    assert!(d.reply.contains("already in progress"));
    assert_eq!(state, before);
}

#[test]
fn a_crash_after_promotion_resumes_without_promoting_again() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::default();
    let mut input = alarm(sim.now, AlarmValue::Alarm);
    // Run until the promote step, then "crash" after the promotion call.
    loop {
        let crash = matches!(&state, DrState::FailingOver(f) if f.step == Step::Promote);
        let d = feed(&p, &mut state, &mut sim, input, crash);
        input = FailoverInput::Tick;
        if crash {
            assert_eq!(d.actions.len(), 1);
            break;
        }
    }
    // Time passes; ticks resume from the stored state.
    sim.advance(60);
    settle(&p, &mut state, &mut sim, FailoverInput::Tick);
    assert!(matches!(state, DrState::FailedOver(_)), "{state:?}");
    assert_eq!(sim.promotions, 1);
    assert_eq!(sim.double_promotions, 0);
}

#[test]
fn a_crash_before_the_promotion_call_reissues_it() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.fail_primary();
    let mut state = DrState::default();
    let mut input = alarm(sim.now, AlarmValue::Alarm);
    loop {
        let at_promote = matches!(&state, DrState::FailingOver(f) if f.step == Step::Promote);
        if at_promote {
            // The state moves on, but the call never reaches AWS.
            let d = step(&p, &state, &input, &sim.facts(), sim.now);
            state = d.state;
            break;
        }
        feed(&p, &mut state, &mut sim, input, false);
        input = FailoverInput::Tick;
    }
    assert_eq!(sim.promotions, 0);
    settle(&p, &mut state, &mut sim, FailoverInput::Tick);
    assert!(matches!(state, DrState::FailedOver(_)));
    assert_eq!(sim.promotions, 1);
}

#[test]
fn a_region_outage_is_fenced_through_dns_and_the_old_primary_is_stopped_when_it_returns() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    sim.alarm = AlarmValue::Alarm;
    sim.primary_reachable = false;
    let mut state = DrState::default();
    let a = alarm(sim.now, AlarmValue::Alarm);
    settle(&p, &mut state, &mut sim, a);
    let DrState::FailedOver(done) = &state else {
        panic!("{state:?}")
    };
    assert!(matches!(
        done.targets[0].fence,
        Some(FenceOutcome::Unreachable { .. })
    ));
    // The region comes back with the old primary writable: the next tick stops it.
    sim.primary_reachable = true;
    let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert_eq!(d.notes[0].action, "failover.refence");
    assert!(sim.primary_stopped);
    let DrState::FailedOver(done) = &state else {
        panic!()
    };
    assert_eq!(done.targets[0].fence, Some(FenceOutcome::Stopped));
    // Nothing more to do on later ticks.
    let d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
    assert!(d.actions.is_empty());
}

#[test]
fn status_and_bad_commands_change_nothing() {
    let p = plan("automatic");
    let mut sim = Sim::new();
    let mut state = DrState::default();
    for c in [
        Command::Status,
        Command::Approve,
        Command::Cancel,
        Command::Ack,
    ] {
        let d = feed(
            &p,
            &mut state,
            &mut sim,
            FailoverInput::Command(c.clone()),
            false,
        );
        assert_eq!(state, DrState::default(), "{c:?}");
        assert_eq!(d.refused, c != Command::Status, "{c:?}");
    }
}

#[derive(Debug, Clone)]
enum Event {
    Alarm(bool),
    Tick,
    Approve,
    Force,
    Cancel,
    Ack,
    Crash,
    RegionDown,
    RegionUp,
    PrimaryFails(bool),
    AlarmState(bool),
    Lag(u8),
    Wait(u8),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        2 => any::<bool>().prop_map(Event::Alarm),
        6 => Just(Event::Tick),
        1 => Just(Event::Approve),
        1 => Just(Event::Force),
        1 => Just(Event::Cancel),
        1 => Just(Event::Ack),
        1 => Just(Event::Crash),
        1 => Just(Event::RegionDown),
        1 => Just(Event::RegionUp),
        1 => any::<bool>().prop_map(Event::PrimaryFails),
        1 => any::<bool>().prop_map(Event::AlarmState),
        1 => (0u8..60).prop_map(Event::Lag),
        2 => (1u8..120).prop_map(Event::Wait),
    ]
}

fn allowed(before: &DrState, after: &DrState, input: &FailoverInput) -> bool {
    use DrState::*;
    match (before, after) {
        (Normal { .. }, FailingOver(_)) => matches!(
            input,
            FailoverInput::Alarm(AlarmSignal {
                value: AlarmValue::Alarm,
                ..
            }) | FailoverInput::Command(Command::Force { .. })
        ),
        (Normal { .. }, FailedOver(_)) => {
            matches!(input, FailoverInput::Command(Command::Force { .. }))
        }
        (FailingOver(f), Normal { .. }) => !f.step.past_promotion(),
        (FailingOver(_), FailedOver(_))
        | (FailingOver(_), FailingOver(_))
        | (Normal { .. }, Normal { .. }) => true,
        (FailedOver(_), FailedOver(_)) => true,
        (FailedOver(_), _) => false,
        // Failover never enters or leaves a failback.
        (FailingBack(_), _) | (_, FailingBack(_)) => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Over any sequence of alarms, ticks, commands, crashes and outages: a replica is
    /// never promoted twice, only after a confirmed alarm (or a force), never past the lag
    /// guard unless forced; states are left only by allowed inputs; and once Lifeboat has
    /// looked, the writer record never routes clients while a reachable old primary still
    /// takes writes.
    #[test]
    fn no_sequence_reaches_two_writers(mode in prop::sample::select(vec!["automatic", "manual"]), events in proptest::collection::vec(event(), 1..60)) {
        let p = plan(mode);
        let mut sim = Sim::new();
        let mut state = DrState::default();
        for e in events {
            let (input, crash) = match e {
                Event::Alarm(on) => (alarm(sim.now, if on { AlarmValue::Alarm } else { AlarmValue::Ok }), false),
                Event::Tick => (FailoverInput::Tick, false),
                Event::Approve => (FailoverInput::Command(Command::Approve), false),
                Event::Force => (FailoverInput::Command(Command::Force { reason: "test".into() }), false),
                Event::Cancel => (FailoverInput::Command(Command::Cancel), false),
                Event::Ack => (FailoverInput::Command(Command::Ack), false),
                Event::Crash => (FailoverInput::Tick, true),
                Event::RegionDown => { sim.primary_reachable = false; continue; }
                Event::RegionUp => { sim.primary_reachable = true; continue; }
                Event::PrimaryFails(on) => { sim.primary_status = if on { "failed" } else { "available" }; continue; }
                Event::AlarmState(on) => { sim.alarm = if on { AlarmValue::Alarm } else { AlarmValue::Ok }; continue; }
                Event::Lag(l) => { sim.lag = Some(f64::from(l)); continue; }
                Event::Wait(s) => { sim.advance(i64::from(s)); continue; }
            };
            let before = state.clone();
            let lag_before = sim.lag;
            let promotions_before = sim.promotions;
            let mut d = feed(&p, &mut state, &mut sim, input.clone(), crash);
            prop_assert!(allowed(&before, &state, &input), "{:?} -> {:?} on {:?}", before.phase(), state.phase(), input);
            // Never stuck confirming past the window once Lifeboat looked, and never an
            // old incident resumed by a later alarm: a failover confirming is younger
            // than its window.
            if let DrState::FailingOver(f) = &state
                && f.step == Step::Confirm
                && !crash
                && !matches!(input, FailoverInput::Command(_))
            {
                prop_assert!(sim.now < f.confirm_deadline(&p), "confirming past the window: {:?}", f);
            }
            prop_assert_eq!(sim.double_promotions, 0);
            if sim.promotions > promotions_before {
                let forced = match &state { DrState::FailingOver(f) => f.forced.is_some(), _ => false };
                // Promotion needs a failure a quorum of signals confirmed, or a force...
                let confirmed = match &state {
                    DrState::FailingOver(f) => f.detection.as_ref().is_some_and(|c| c.outcome == detection::Outcome::Confirmed && c.failing_votes >= c.quorum),
                    _ => false,
                };
                prop_assert!(forced || confirmed || matches!(before, DrState::FailingOver(ref f) if f.step >= Step::Promote));
                // ...and, unless forced, a lag within the guard when it was decided.
                if !forced && matches!(before, DrState::FailingOver(ref f) if f.step <= Step::AwaitingApproval) {
                    prop_assert!(lag_before.is_some_and(|l| l <= f64::from(p.failover.max_replica_lag_seconds)));
                }
            }
            if d.next == Next::Poll { sim.advance(5); }
            // A tick's invocation goes on while the machine says continue.
            if matches!(input, FailoverInput::Tick) && !crash {
                let mut n = 0;
                while d.next == Next::Continue && n < 20 {
                    let prev = state.clone();
                    d = feed(&p, &mut state, &mut sim, FailoverInput::Tick, false);
                    prop_assert!(allowed(&prev, &state, &FailoverInput::Tick));
                    prop_assert_eq!(sim.double_promotions, 0);
                    n += 1;
                }
                // Once Lifeboat has looked, no reachable old primary takes writes while the
                // writer record routes clients to the DR region.
                let moving = matches!(&state, DrState::FailingOver(f) if f.step >= Step::SwitchDns);
                if moving || matches!(state, DrState::FailedOver(_)) {
                    prop_assert!(!(sim.record_dr && sim.primary_writes()), "split brain after a tick: {:?} {:?}", sim, state.phase());
                }
            }
        }
    }

    /// Every step of the machine is reached by some sequence, and every step is left.
    #[test]
    fn every_step_is_reachable_and_left(seed in 0u64..1) {
        let _ = seed;
        let mut seen = BTreeSet::new();
        for mode in ["automatic", "manual"] {
            let p = plan(mode);
            let mut sim = Sim::new();
            sim.fail_primary();
            let mut state = DrState::default();
            let mut input = alarm(sim.now, AlarmValue::Alarm);
            for _ in 0..60 {
                if let DrState::FailingOver(f) = &state { seen.insert(f.step); }
                if matches!(&state, DrState::FailingOver(f) if f.step == Step::AwaitingApproval) {
                    input = FailoverInput::Command(Command::Approve);
                }
                let d = feed(&p, &mut state, &mut sim, input, false);
                if d.next == Next::Poll { sim.advance(5); }
                input = FailoverInput::Tick;
                if matches!(state, DrState::FailedOver(_)) { break; }
            }
            prop_assert!(matches!(state, DrState::FailedOver(_)));
        }
        let all: BTreeSet<Step> = [Step::Confirm, Step::Readiness, Step::AwaitingApproval, Step::Promote, Step::AwaitPromotion, Step::Fence, Step::SwitchDns, Step::AwaitDnsSync, Step::Verify].into_iter().collect();
        prop_assert_eq!(seen, all);
    }
}

#[test]
fn readiness_names_each_replica_that_cannot_take_over_and_why() {
    let p = plan("automatic");
    let max = p.failover.max_replica_lag_seconds;
    let mut sim = Sim::new();
    assert_eq!(readiness(&p, &sim.facts(), false), Ok(()));
    sim.lag = Some(f64::from(max) + 30.0);
    let Err(NotReady(problems)) = readiness(&p, &sim.facts(), false) else {
        panic!("a lagging replica is not ready");
    };
    assert!(
        matches!(&problems[..], [ReplicaNotReady::LagTooHigh { resource, max_seconds, .. }]
            if resource == "orders-db" && *max_seconds == max),
        "{problems:?}"
    );
    // Forced: the lag guard is overridden, nothing else is.
    assert_eq!(readiness(&p, &sim.facts(), true), Ok(()));
    sim.lag = None;
    assert!(matches!(
        readiness(&p, &sim.facts(), false),
        Err(NotReady(v)) if matches!(&v[..], [ReplicaNotReady::LagUnknown { .. }])
    ));
    sim.replica_exists = false;
    let err = readiness(&p, &sim.facts(), true).unwrap_err();
    assert!(
        matches!(&err.0[..], [ReplicaNotReady::Missing { region, .. }] if region == "us-west-2")
    );
    assert_eq!(
        err.to_string(),
        "orders-db: the DR replica orders-db-dr does not exist in us-west-2"
    );
}
