//! A simulated world for the failback machine's tests: one replicated database on both
//! sides, its writer record and the application traffic, moving one state per look.

use super::*;
use crate::failover::{RecoveryMeasurement, TargetProgress};
use chrono::TimeZone;

pub(crate) const P_ENDPOINT: &str = "orders-db.use1.example";
pub(crate) const D_ENDPOINT: &str = "orders-db-dr.usw2.example";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Db {
    Missing,
    Stopped,
    Deleting(u8),
    Creating(u8),
    Replica,
    Promoting(u8),
    Writer,
}

#[derive(Debug, Clone)]
pub(crate) struct Sim {
    pub(crate) now: DateTime<Utc>,
    pub(crate) p: Db,
    pub(crate) d: Db,
    pub(crate) lag: f64,
    pub(crate) record_p: bool,
    pub(crate) record_pending: u8,
    pub(crate) record_synced_at: Option<DateTime<Utc>>,
    pub(crate) traffic: u32,
    pub(crate) traffic_pending: u8,
    pub(crate) gate: bool,
    /// The gate alarm cannot be read (its region does not answer).
    pub(crate) gate_unreadable: bool,
    /// Weights moved towards the primary region while the gate was in ALARM: (from, to).
    pub(crate) moved_up_under_gate: Vec<(u32, u32)>,
    pub(crate) health_ok: bool,
    pub(crate) primary_reachable: bool,
    pub(crate) promotions: u32,
    pub(crate) bad_promotions: Vec<String>,
    pub(crate) retired: Vec<String>,
    /// The shape each replica was created with, by side.
    pub(crate) created_like: Vec<(Side, Option<DatabaseShape>)>,
    /// A replica that never catches up below this lag.
    pub(crate) stuck_lag: Option<f64>,
}

impl Sim {
    /// The world right after a failover: old primary stopped, DR writer, record and
    /// traffic on DR.
    pub(crate) fn after_failover() -> Self {
        Sim {
            now: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
            p: Db::Stopped,
            d: Db::Writer,
            lag: 0.0,
            record_p: false,
            record_pending: 0,
            record_synced_at: None,
            traffic: 0,
            traffic_pending: 0,
            gate: false,
            gate_unreadable: false,
            moved_up_under_gate: vec![],
            health_ok: true,
            primary_reachable: true,
            promotions: 0,
            bad_promotions: vec![],
            retired: vec![],
            created_like: vec![],
            stuck_lag: None,
        }
    }

    pub(crate) fn store(id: &str, endpoint: &str, db: Db, source: &str) -> Observed<StoreFacts> {
        let (status, from) = match db {
            Db::Missing => return Observed::Missing,
            Db::Stopped => ("stopped", None),
            Db::Deleting(_) => ("deleting", None),
            Db::Creating(_) => ("creating", Some(source)),
            Db::Replica => ("available", Some(source)),
            Db::Promoting(_) => ("modifying", Some(source)),
            Db::Writer => ("available", None),
        };
        Observed::Present(StoreFacts {
            identifier: id.into(),
            region: "r".into(),
            status: status.into(),
            engine: Some("postgres".into()),
            endpoint: Some(endpoint.into()),
            encrypted: true,
            replicates_from: from.map(str::to_string),
            replicas: vec![],
            point_in_time_recovery: None,
        })
    }

    pub(crate) fn facts(&self) -> FailbackFacts {
        let reading = |name: &str, ok: bool| AlarmReading {
            name: name.into(),
            value: Some(if ok {
                AlarmValue::Ok
            } else {
                AlarmValue::Alarm
            }),
        };
        FailbackFacts {
            health: vec![reading("orders-db-primary-unhealthy", self.health_ok)],
            gates: vec![if self.gate_unreadable {
                AlarmReading {
                    name: "orders-api-5xx".into(),
                    value: None,
                }
            } else {
                reading("orders-api-5xx", !self.gate)
            }],
            targets: vec![FbTargetFacts {
                resource: "orders-db".into(),
                primary: if self.primary_reachable {
                    Sim::store("orders-db", P_ENDPOINT, self.p, "dr-writer")
                } else {
                    Observed::Unknown {
                        reason: "unreachable".into(),
                    }
                },
                dr: Sim::store("orders-db-dr", D_ENDPOINT, self.d, "primary-writer"),
                primary_shape: (self.primary_reachable && self.p != Db::Missing)
                    .then(|| shape(Side::Primary)),
                dr_shape: (self.d != Db::Missing).then(|| shape(Side::Dr)),
                lag_seconds: Some(self.lag),
                record: Some(Observed::Present(vec![
                    if self.record_p {
                        P_ENDPOINT
                    } else {
                        D_ENDPOINT
                    }
                    .into(),
                ])),
                change: Some(if self.record_pending == 0 {
                    ChangeState::InSync
                } else {
                    ChangeState::Pending
                }),
            }],
            traffic: TrafficFacts {
                primary_percent: Some(self.traffic),
                change: Some(if self.traffic_pending == 0 {
                    ChangeState::InSync
                } else {
                    ChangeState::Pending
                }),
            },
        }
    }

    pub(crate) fn act(&mut self, action: &FbAction, plan: &Plan) -> FbOutcome {
        match action {
            FbAction::Retire {
                side,
                final_snapshot,
                ..
            } => {
                self.retired.push(final_snapshot.clone());
                match side {
                    Side::Primary if matches!(self.p, Db::Stopped | Db::Writer) => {
                        self.p = Db::Deleting(2)
                    }
                    Side::Dr if matches!(self.d, Db::Stopped | Db::Writer) => {
                        self.d = Db::Deleting(2)
                    }
                    _ => {}
                }
                FbOutcome::Done {
                    action: action.clone(),
                }
            }
            FbAction::CreateReplica { side, like, .. } => {
                self.created_like.push((*side, like.clone()));
                match side {
                    Side::Primary if self.p == Db::Missing => {
                        self.p = Db::Creating(3);
                        self.lag = 40.0;
                    }
                    Side::Dr if self.d == Db::Missing => self.d = Db::Creating(3),
                    _ => {}
                }
                FbOutcome::Done {
                    action: action.clone(),
                }
            }
            FbAction::SwitchRecord { resource, endpoint } => {
                self.record_p = endpoint == P_ENDPOINT;
                self.record_pending = 1;
                self.record_synced_at = None;
                FbOutcome::Switched {
                    resource: resource.clone(),
                    change: format!("C{}", self.now.timestamp()),
                }
            }
            FbAction::PromotePrimary { .. } => {
                // The writer may move only when no client can reach the DR writer through
                // the record (fenced, in sync, TTL passed) and nothing is left to replicate.
                let ttl = Duration::seconds(i64::from(plan.dns.record_ttl_seconds));
                if self.p != Db::Replica {
                    self.bad_promotions
                        .push(format!("promoted while {:?}", self.p));
                }
                if !self.record_p
                    || self.record_pending > 0
                    || self.record_synced_at.is_none_or(|s| self.now < s + ttl)
                {
                    self.bad_promotions
                        .push("promoted before the DR writer was fenced and the TTL passed".into());
                }
                if self.lag > 0.0 {
                    self.bad_promotions
                        .push(format!("promoted with {} s of lag", self.lag));
                }
                self.promotions += 1;
                self.p = Db::Promoting(2);
                FbOutcome::Done {
                    action: action.clone(),
                }
            }
            FbAction::Stop { resource, side } => {
                let outcome = match side {
                    Side::Dr if self.d == Db::Writer => {
                        self.d = Db::Stopped;
                        FenceOutcome::Stopped
                    }
                    _ => FenceOutcome::NotNeeded {
                        reason: "not a writer".into(),
                    },
                };
                FbOutcome::Stopped {
                    resource: resource.clone(),
                    outcome,
                }
            }
            FbAction::SetTraffic { primary_percent } => {
                if self.gate && *primary_percent > self.traffic {
                    self.moved_up_under_gate
                        .push((self.traffic, *primary_percent));
                }
                self.traffic = *primary_percent;
                self.traffic_pending = 1;
                FbOutcome::TrafficSet {
                    primary_percent: *primary_percent,
                    change: format!("T{}", self.now.timestamp()),
                }
            }
        }
    }

    pub(crate) fn advance(&mut self, seconds: i64) {
        self.now += Duration::seconds(seconds);
        let step = |db: Db| match db {
            Db::Deleting(1) => Db::Missing,
            Db::Deleting(n) => Db::Deleting(n - 1),
            Db::Creating(1) => Db::Replica,
            Db::Creating(n) => Db::Creating(n - 1),
            Db::Promoting(1) => Db::Writer,
            Db::Promoting(n) => Db::Promoting(n - 1),
            other => other,
        };
        self.p = step(self.p);
        self.d = step(self.d);
        if self.p == Db::Replica {
            // Catches up; once the record is fenced no new writes arrive.
            self.lag = (self.lag - 20.0).max(if self.record_p { 0.0 } else { 1.0 });
            if let Some(stuck) = self.stuck_lag {
                self.lag = self.lag.max(stuck);
            }
        }
        if self.record_pending > 0 {
            self.record_pending -= 1;
            if self.record_pending == 0 {
                self.record_synced_at = Some(self.now);
            }
        }
        self.traffic_pending = self.traffic_pending.saturating_sub(1);
    }
}

pub(crate) fn failed_over(now: DateTime<Utc>) -> DrState {
    DrState::FailedOver(FailedOver {
        incident: "evt-1".into(),
        since: now - Duration::hours(2),
        cooldown_until: Some(now - Duration::hours(1)),
        measurement: RecoveryMeasurement {
            rto_seconds: 300,
            rto_target_seconds: 1800,
            detection_seconds: 30,
            aws_seconds: 240,
            approval_seconds: 0,
            lifeboat_seconds: 30,
            data_loss_seconds: Some(2.0),
            rpo_target_seconds: 900,
        },
        targets: vec![TargetProgress {
            resource: "orders-db".into(),
            lag_at_promotion: Some(2.0),
            promote_issued_at: None,
            promoted_at: None,
            fence: Some(FenceOutcome::Stopped),
            switched_to: Some(D_ENDPOINT.into()),
            dns_change: None,
            dns_submitted_at: None,
            dns_synced_at: None,
        }],
        forced: None,
        detection: None,
    })
}

/// How the simulated databases are set up on each side.
pub(crate) fn shape(side: Side) -> DatabaseShape {
    DatabaseShape {
        instance_class: "db.r6g.large".into(),
        subnet_group: Some(format!("{side}-subnets")),
        security_groups: vec![format!("sg-{side}")],
        kms_key_id: Some(format!("{side}-key")),
        multi_az: side == Side::Primary,
        ..DatabaseShape::default()
    }
}
