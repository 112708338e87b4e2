//! Failback: from FailedOver back to Normal, in stages (pure).
//!
//! The writer moves before traffic does. Re-protect into the primary region (a
//! cross-region read replica of the DR writer, after the old, fenced primary is retired
//! with a final snapshot) → await catch-up → move the writer: fence the DR writer through
//! DNS (its record now names the read-only primary-region replica, and the record's TTL
//! is waited out so no cached answer still reaches the DR writer), wait for zero lag,
//! promote the primary-region replica, stop the old DR writer → shift application
//! traffic by weight through the plan's stages, each held for the bake time while the
//! gate alarms are watched; a gate in ALARM rolls back to the previous stage and pauses →
//! finish: retire the old DR writer, create a fresh DR replica of the new primary, and
//! return to Normal, protected. Aurora global databases move their writer with the
//! global database's planned switchover, which re-protects the DR side itself.
//!
//! At no point do Lifeboat's records reach two writers; traffic leaves the DR region only
//! once the writer is in the primary region.

pub mod event;
pub mod run;

use crate::dr::{Decision, DrState, Side, TrafficFacts, TrafficProgress};
use crate::failover::{
    AlarmReading, AlarmValue, ChangeState, FailedOver, FenceOutcome, replicated,
};
use crate::notify::Severity;
use crate::plan::{Plan, ResourceKind, normalize_dns_name};
use crate::posture::{Observed, StoreFacts};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

pub use event::{FailbackInput, parse_input};

/// A failback step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// Retire the old primary (fenced during the failover) with a final snapshot.
    RetireOldPrimary,
    /// Create the primary-region replica of the DR writer.
    Reprotect,
    /// Wait until the replica is available and close behind.
    AwaitCatchUp,
    /// Point the writer record at the (read-only) primary-region replica.
    FenceDrWriter,
    /// Wait for the change to be INSYNC, the record's TTL to pass, and the lag to be zero.
    AwaitFence,
    /// Promote the primary-region replica.
    PromotePrimary,
    /// Wait until it is a standalone, available writer.
    AwaitPromotion,
    /// Make sure the record names it, and stop the old DR writer.
    SecureWriter,
    /// Shift application traffic stage by stage.
    ShiftTraffic,
    /// Retire the old DR writer and create a fresh DR replica of the new primary.
    ReprotectDr,
    /// Wait for the DR replica: then Normal, protected.
    AwaitDrReplica,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One replicated resource's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FbTarget {
    /// The plan resource id.
    pub resource: String,
    /// RDS instance or Aurora cluster.
    pub kind: ResourceKind,
    /// The final snapshot the retired old primary left.
    #[serde(default)]
    pub retired_primary: Option<String>,
    /// How the old primary was set up, captured before it was retired; its replacement
    /// is created alike.
    #[serde(default)]
    pub primary_shape: Option<DatabaseShape>,
    /// When the primary-region replica was requested.
    #[serde(default)]
    pub replica_requested_at: Option<DateTime<Utc>>,
    /// The record change that fenced the DR writer (or moved the record to the primary).
    #[serde(default)]
    pub fence_change: Option<String>,
    /// When that change was first seen INSYNC.
    #[serde(default)]
    pub fence_synced_at: Option<DateTime<Utc>>,
    /// The lag when the writer moved (zero by construction for RDS).
    #[serde(default)]
    pub lag_at_move: Option<f64>,
    /// When promotion (or the switchover) was issued.
    #[serde(default)]
    pub promote_issued_at: Option<DateTime<Utc>>,
    /// When the primary-region writer was first seen.
    #[serde(default)]
    pub promoted_at: Option<DateTime<Utc>>,
    /// What happened to the old DR writer.
    #[serde(default)]
    pub dr_fence: Option<FenceOutcome>,
    /// The final snapshot the retired old DR writer left.
    #[serde(default)]
    pub retired_dr: Option<String>,
    /// How the old DR writer was set up, captured before it was retired.
    #[serde(default)]
    pub dr_shape: Option<DatabaseShape>,
    /// When the fresh DR replica was requested.
    #[serde(default)]
    pub dr_replica_requested_at: Option<DateTime<Utc>>,
}

/// The traffic shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// The plan stage now targeted (index into `failback.stages`).
    pub stage: usize,
    /// When the current stage's weights were seen INSYNC (its bake starts then).
    #[serde(default)]
    pub entered_at: Option<DateTime<Utc>>,
    /// The weights last submitted.
    #[serde(default)]
    pub change: Option<TrafficProgress>,
    /// Time spent at each stage, in seconds, by weight.
    #[serde(default)]
    pub held: Vec<(u32, i64)>,
}

/// When a step began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FbMark {
    /// The step.
    pub step: Step,
    /// When.
    pub at: DateTime<Utc>,
}

/// A failback under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failback {
    /// Its id.
    pub id: String,
    /// The failover it undoes (restored on an abort before the writer moved).
    pub from: FailedOver,
    /// The current step.
    pub step: Step,
    /// Why it is paused (an operator, or a gate alarm), when it is.
    #[serde(default)]
    pub paused: Option<String>,
    /// Where the writer is.
    pub writer: Side,
    /// Percent of application traffic on the primary region.
    pub traffic_primary_percent: u32,
    /// Progress per replicated resource.
    pub targets: Vec<FbTarget>,
    /// The traffic shift, once it began.
    #[serde(default)]
    pub shift: Option<Shift>,
    /// When each step began.
    pub marks: Vec<FbMark>,
    /// Set when an operator aborted after the writer moved: traffic goes straight to the
    /// primary region and the failback finishes.
    #[serde(default)]
    pub cut_over: bool,
}

impl Failback {
    fn goto(&mut self, step: Step, now: DateTime<Utc>) {
        self.step = step;
        self.marks.push(FbMark { step, at: now });
    }

    fn target_mut(&mut self, resource: &str) -> Option<&mut FbTarget> {
        self.targets.iter_mut().find(|t| t.resource == resource)
    }

    /// Time spent in each step, in seconds, for the report.
    pub fn time_in_steps(&self, until: DateTime<Utc>) -> Vec<(Step, i64)> {
        self.marks
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let end = self.marks.get(i + 1).map(|n| n.at).unwrap_or(until);
                (m.step, (end - m.at).num_seconds().max(0))
            })
            .collect()
    }
}

/// How a database is set up: what a replacement needs to be created alike (in the same
/// network, with the same parameters, size and encryption key).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DatabaseShape {
    /// DB instance class.
    pub instance_class: String,
    /// DB subnet group.
    #[serde(default)]
    pub subnet_group: Option<String>,
    /// VPC security group ids.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// DB parameter group.
    #[serde(default)]
    pub parameter_group: Option<String>,
    /// Option group.
    #[serde(default)]
    pub option_group: Option<String>,
    /// Multi-AZ.
    #[serde(default)]
    pub multi_az: bool,
    /// Storage type (gp3, io2, ...).
    #[serde(default)]
    pub storage_type: Option<String>,
    /// KMS key that encrypts its storage (a key of its own region).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Whether deletion protection was on.
    #[serde(default)]
    pub deletion_protection: bool,
}

/// What is known about one replicated resource during failback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FbTargetFacts {
    /// The plan resource id.
    pub resource: String,
    /// The plan's identifier in the primary region (the old primary, or its successor).
    pub primary: Observed<StoreFacts>,
    /// The replica identifier in the DR region (the current writer, or its successor).
    pub dr: Observed<StoreFacts>,
    /// How the primary-region database is set up (RDS instances, when it exists).
    #[serde(default)]
    pub primary_shape: Option<DatabaseShape>,
    /// How the DR-region database is set up (RDS instances, when it exists).
    #[serde(default)]
    pub dr_shape: Option<DatabaseShape>,
    /// The lag of whichever side replicates, in seconds.
    pub lag_seconds: Option<f64>,
    /// The writer record's values.
    pub record: Option<Observed<Vec<String>>>,
    /// The state of the last record change, when one is given.
    pub change: Option<ChangeState>,
}

impl FbTargetFacts {
    fn primary(&self) -> Option<&StoreFacts> {
        self.primary.present()
    }
    fn dr(&self) -> Option<&StoreFacts> {
        self.dr.present()
    }
    fn record_points_at(&self, endpoint: &str) -> bool {
        matches!(&self.record, Some(Observed::Present(v)) if v.len() == 1 && normalize_dns_name(&v[0]) == normalize_dns_name(endpoint))
    }
    /// The primary side replicates from the DR side.
    fn primary_replicates(&self) -> bool {
        self.primary().is_some_and(|p| p.replicates_from.is_some())
    }
    fn primary_writer(&self) -> bool {
        self.primary()
            .is_some_and(|p| p.replicates_from.is_none() && p.status == "available")
    }
}

/// Everything read from AWS before a failback step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FailbackFacts {
    /// The plan's health alarms (the primary region must be healthy to start).
    pub health: Vec<AlarmReading>,
    /// The plan's gate alarms.
    pub gates: Vec<AlarmReading>,
    /// Per replicated resource.
    pub targets: Vec<FbTargetFacts>,
    /// The application traffic records.
    pub traffic: TrafficFacts,
}

impl FailbackFacts {
    fn target(&self, resource: &str) -> Option<&FbTargetFacts> {
        self.targets.iter().find(|t| t.resource == resource)
    }
    fn gate_firing(&self) -> Option<&str> {
        self.gates
            .iter()
            .find(|g| g.value == Some(AlarmValue::Alarm))
            .map(|g| g.name.as_str())
    }

    /// Why traffic may not move towards the primary region now: a gate in ALARM, or one
    /// that could not be read (its region may be the one traffic would move to).
    /// INSUFFICIENT_DATA holds nothing back: a gate on the primary's application metrics
    /// has no data while the primary serves no traffic.
    fn gates_hold(&self) -> Option<String> {
        if let Some(gate) = self.gate_firing() {
            return Some(format!("gate alarm {gate} is in ALARM"));
        }
        self.gates
            .iter()
            .find(|g| g.value.is_none())
            .map(|g| format!("gate alarm {} could not be read", g.name))
    }
}

/// Something to do in AWS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FbAction {
    /// Delete a database on `side` after a final snapshot named `final_snapshot`.
    Retire {
        /// The plan resource id.
        resource: String,
        /// Which side's database.
        side: Side,
        /// The final snapshot's name.
        final_snapshot: String,
    },
    /// Create a cross-region read replica on `side` of the writer on the other side.
    CreateReplica {
        /// The plan resource id.
        resource: String,
        /// Where the replica goes.
        side: Side,
        /// Set up like the database it replaces, when that was captured.
        #[serde(default)]
        like: Option<DatabaseShape>,
    },
    /// Point the writer record at `endpoint`.
    SwitchRecord {
        /// The plan resource id.
        resource: String,
        /// The endpoint.
        endpoint: String,
    },
    /// Promote the primary-region replica (Aurora: the planned switchover to it).
    PromotePrimary {
        /// The plan resource id.
        resource: String,
    },
    /// Stop the database on `side` (the old writer).
    Stop {
        /// The plan resource id.
        resource: String,
        /// Which side.
        side: Side,
    },
    /// Weigh the application traffic records.
    SetTraffic {
        /// Percent to the primary region.
        primary_percent: u32,
    },
}

/// What an action produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FbOutcome {
    /// It was done (or found already done).
    Done {
        /// The action.
        action: FbAction,
    },
    /// The record change was submitted.
    Switched {
        /// The resource.
        resource: String,
        /// The Route 53 change id.
        change: String,
    },
    /// The traffic weights were submitted.
    TrafficSet {
        /// Percent to the primary region.
        primary_percent: u32,
        /// The Route 53 change id.
        change: String,
    },
    /// The old writer's stop.
    Stopped {
        /// The resource.
        resource: String,
        /// What happened.
        outcome: FenceOutcome,
    },
    /// It failed; the next look re-derives what to do.
    Failed {
        /// The action.
        action: FbAction,
        /// Why.
        error: String,
    },
}

/// A failback step's decision.
pub type FbDecision = Decision<FbAction>;

/// The final snapshot a retired database leaves.
pub fn retired_snapshot_name(
    plan: &Plan,
    resource: &str,
    side: Side,
    now: DateTime<Utc>,
) -> String {
    format!(
        "lifeboat-{}-{}-retired-{}-{}",
        plan.name,
        resource,
        match side {
            Side::Primary => "primary",
            Side::Dr => "dr",
        },
        crate::schedule::stamp(now)
    )
}

fn new_failback(plan: &Plan, from: &FailedOver, now: DateTime<Utc>) -> Failback {
    let mut f = Failback {
        id: format!("failback-{}", now.format("%Y%m%dT%H%M%SZ")),
        from: from.clone(),
        step: Step::RetireOldPrimary,
        paused: None,
        writer: Side::Dr,
        traffic_primary_percent: 0,
        targets: replicated(plan)
            .map(|r| FbTarget {
                resource: r.id.clone(),
                kind: r.kind,
                retired_primary: None,
                primary_shape: None,
                replica_requested_at: None,
                fence_change: None,
                fence_synced_at: None,
                lag_at_move: None,
                promote_issued_at: None,
                promoted_at: None,
                dr_fence: None,
                retired_dr: None,
                dr_shape: None,
                dr_replica_requested_at: None,
            })
            .collect(),
        shift: None,
        marks: vec![],
        cut_over: false,
    };
    f.goto(Step::RetireOldPrimary, now);
    f
}

/// Decide the next state and actions (pure).
pub fn step(
    plan: &Plan,
    state: &DrState,
    input: &FailbackInput,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    match input {
        FailbackInput::Status => Decision::keep(state, status(state)),
        FailbackInput::Start => start(plan, state, facts, now),
        FailbackInput::Pause => pause(state, now),
        FailbackInput::Resume => resume(state, facts),
        FailbackInput::Abort => abort(plan, state, facts),
        FailbackInput::Tick => match state {
            DrState::FailingBack(f) if f.paused.is_some() => Decision::keep(
                state,
                format!(
                    "paused ({}); resume to go on",
                    f.paused.clone().unwrap_or_default()
                ),
            ),
            DrState::FailingBack(f) => advance(plan, f.clone(), facts, now),
            _ => Decision::keep(state, status(state)),
        },
    }
}

/// An operator's pause: nothing advances until resume (a gate's pause is the same).
fn pause(state: &DrState, now: DateTime<Utc>) -> FbDecision {
    match state {
        DrState::FailingBack(f) if f.paused.is_none() => {
            let mut f = f.clone();
            f.paused = Some(format!("paused by an operator at {now}"));
            Decision::stop(
                DrState::FailingBack(f),
                "paused: nothing advances until resume",
            )
            .note(
                Severity::Warning,
                "failback.pause",
                "failback paused",
                "An operator paused the failback; nothing advances until {\"action\": \"resume\"}.",
            )
        }
        DrState::FailingBack(_) => Decision::refuse(state, "the failback is already paused"),
        _ => Decision::refuse(
            state,
            format!("no failback to pause (state: {})", state.phase()),
        ),
    }
}

/// An operator's resume. The gates are read before any weight moves: resuming into a
/// gate that still fires would set the stage and roll it back at once. A cut-over
/// failback resumes whatever the gates say: its traffic goes to the writer.
fn resume(state: &DrState, facts: &FailbackFacts) -> FbDecision {
    match state {
        DrState::FailingBack(f) if f.paused.is_some() && !f.cut_over => {
            if let Some(why) = facts.gates_hold() {
                return Decision::refuse(
                    state,
                    format!("not resumed: {why}; the failback stays paused, traffic unchanged at {} % on the primary region. Resume once the gate is OK, or abort", f.traffic_primary_percent),
                )
                .note(
                    Severity::Warning,
                    "failback.resume-refused",
                    "failback not resumed: a gate holds it",
                    format!("An operator asked to resume failback {}, but {why}. It stays paused with {} % of traffic on the primary region; nothing was changed.", f.id, f.traffic_primary_percent),
                );
            }
            resumed(f)
        }
        DrState::FailingBack(f) if f.paused.is_some() => resumed(f),
        DrState::FailingBack(_) => Decision::refuse(state, "the failback is not paused"),
        _ => Decision::refuse(
            state,
            format!("no failback to resume (state: {})", state.phase()),
        ),
    }
}

fn resumed(f: &Failback) -> FbDecision {
    let mut f = f.clone();
    f.paused = None;
    // The current stage bakes again from now.
    if let Some(shift) = f.shift.as_mut() {
        shift.entered_at = None;
    }
    Decision::then(DrState::FailingBack(f), "resumed").note(
        Severity::Warning,
        "failback.resume",
        "failback resumed",
        "An operator resumed the failback.",
    )
}

fn status(state: &DrState) -> String {
    match state {
        DrState::FailingBack(f) => format!(
            "failing back ({}): step {}{}; writer on the {} side; {} % of traffic on the primary region",
            f.id,
            f.step,
            f.paused
                .as_ref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default(),
            f.writer,
            f.traffic_primary_percent
        ),
        other => format!("no failback in progress (state: {})", other.phase()),
    }
}

fn start(plan: &Plan, state: &DrState, facts: &FailbackFacts, now: DateTime<Utc>) -> FbDecision {
    let DrState::FailedOver(from) = state else {
        return Decision::refuse(
            state,
            format!(
                "failback starts only from FailedOver, and the state is {}",
                state.phase()
            ),
        );
    };
    if let Some(until) = from.cooldown_until.filter(|c| *c > now) {
        return Decision::refuse(
            state,
            format!(
                "the cooldown after the failover lasts until {until}; acknowledge the incident ({{\"action\": \"ack\"}} to the failover function) to end it early"
            ),
        );
    }
    let unhealthy: Vec<String> = facts
        .health
        .iter()
        .filter(|a| a.value != Some(AlarmValue::Ok))
        .map(|a| {
            format!(
                "{} is {}",
                a.name,
                a.value
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "unreadable".into())
            )
        })
        .collect();
    if facts.health.is_empty() || !unhealthy.is_empty() {
        return Decision::refuse(
            state,
            format!(
                "the primary region is not healthy yet: {}",
                if unhealthy.is_empty() {
                    "no health alarm could be read".into()
                } else {
                    unhealthy.join(", ")
                }
            ),
        );
    }
    let mut problems = vec![];
    for r in replicated(plan) {
        match facts.target(&r.id) {
            None => problems.push(format!("{}: not read", r.id)),
            Some(t) => {
                if !t
                    .dr()
                    .is_some_and(|d| d.status == "available" && d.replicates_from.is_none())
                {
                    problems.push(format!(
                        "{}: the DR writer is not an available, standalone writer",
                        r.id
                    ));
                }
                if matches!(t.primary, Observed::Unknown { .. }) {
                    problems.push(format!("{}: the primary region does not answer", r.id));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Decision::refuse(
            state,
            format!("not ready to fail back: {}", problems.join("; ")),
        );
    }
    let f = new_failback(plan, from, now);
    let id = f.id.clone();
    Decision::then(DrState::FailingBack(f), format!("failback {id} started"))
        .note(
            Severity::Warning,
            "failback.start",
            "failback started",
            format!(
                "The primary region is healthy. Failback {id} re-protects into {}, moves the writer back, then shifts traffic through {:?} % with {} minutes of bake per stage.",
                plan.regions.primary, plan.failback.stages, plan.failback.bake_minutes
            ),
        )
}

fn abort(plan: &Plan, state: &DrState, facts: &FailbackFacts) -> FbDecision {
    let DrState::FailingBack(f) = state else {
        return Decision::refuse(
            state,
            format!("no failback to abort (state: {})", state.phase()),
        );
    };
    let writer_moving = f.targets.iter().any(|t| t.promote_issued_at.is_some());
    if !writer_moving {
        // Back to where the failback started: writer and traffic on the DR side. The
        // primary-region replica is kept: it protects, and the next failback starts from it.
        let mut actions = vec![];
        for t in &f.targets {
            let Some(spec) = plan.resource(&t.resource) else {
                continue;
            };
            if spec.dns_record.is_none() {
                continue;
            }
            let Some(tf) = facts.target(&t.resource) else {
                continue;
            };
            if let Some(endpoint) = tf.dr().and_then(|d| d.endpoint.clone())
                && !tf.record_points_at(&endpoint)
            {
                actions.push(FbAction::SwitchRecord {
                    resource: t.resource.clone(),
                    endpoint,
                });
            }
        }
        let mut back = f.from.clone();
        back.cooldown_until = None;
        return Decision::stop(
            DrState::FailedOver(back),
            "aborted before the writer moved: writer and traffic are on the DR side (FailedOver); the primary-region replicas are kept",
        )
        .acting(actions)
        .note(
            Severity::Warning,
            "failback.abort",
            "failback aborted: everything on the DR side",
            format!("An operator aborted failback {} at {}. The writer and all traffic stay in {}; the primary-region replicas are kept as protection and for the next failback.", f.id, f.step, plan.regions.dr),
        );
    }
    // The writer is moving or has moved to the primary region; moving it back would be a
    // new failover. The consistent side is the primary: all traffic goes there, and the
    // failback finishes by re-protecting the DR side.
    let mut f = f.clone();
    f.cut_over = true;
    f.paused = None;
    Decision::then(
        DrState::FailingBack(f.clone()),
        "aborted after the writer moved: the writer is on the primary side, traffic follows it there at once, and the DR side is re-protected",
    )
    .note(
        Severity::Warning,
        "failback.abort",
        "failback aborted: cutting over to the primary side",
        format!("An operator aborted failback {} at {} after the writer had moved to {}; all traffic now goes there and the DR side is re-protected.", f.id, f.step, plan.regions.primary),
    )
}

/// Move the failback on from its current step: one step function per [`Step`], each
/// re-deriving what is left to do from what AWS shows.
fn advance(plan: &Plan, f: Failback, facts: &FailbackFacts, now: DateTime<Utc>) -> FbDecision {
    match f.step {
        Step::RetireOldPrimary => retire_old_primary(plan, f, facts, now),
        Step::Reprotect => reprotect(plan, f, facts, now),
        Step::AwaitCatchUp => await_catch_up(plan, f, facts, now),
        Step::FenceDrWriter => fence_dr_writer(plan, f, facts, now),
        Step::AwaitFence => await_fence(plan, f, facts, now),
        Step::PromotePrimary => promote_primary(f, facts, now),
        Step::AwaitPromotion => await_promotion(f, facts, now),
        Step::SecureWriter => secure_writer(plan, f, facts, now),
        Step::ShiftTraffic => shift_traffic(plan, f, facts, now),
        Step::ReprotectDr => reprotect_dr(plan, f, facts, now),
        Step::AwaitDrReplica => await_dr_replica(plan, f, facts, now),
    }
}

/// The old primaries, fenced during the failover, are deleted after a final snapshot
/// (their setup captured first), so the primary region can hold a fresh replica under
/// the plan's identifier. One that is already the replica of an earlier failback is
/// kept.
fn retire_old_primary(
    plan: &Plan,
    mut f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let mut actions = vec![];
    let mut waiting = false;
    for t in f.targets.iter_mut() {
        if t.kind != ResourceKind::RdsInstance {
            continue;
        }
        let Some(tf) = facts.target(&t.resource) else {
            waiting = true;
            continue;
        };
        match &tf.primary {
            Observed::Missing => {}
            Observed::Present(p) if p.replicates_from.is_some() => {}
            Observed::Present(p) if p.status == "deleting" => waiting = true,
            Observed::Present(_) => {
                if t.primary_shape.is_none() {
                    t.primary_shape = tf.primary_shape.clone();
                }
                let name = t
                    .retired_primary
                    .get_or_insert_with(|| {
                        retired_snapshot_name(plan, &t.resource, Side::Primary, now)
                    })
                    .clone();
                actions.push(FbAction::Retire {
                    resource: t.resource.clone(),
                    side: Side::Primary,
                    final_snapshot: name,
                });
                waiting = true;
            }
            Observed::Unknown { .. } => waiting = true,
        }
    }
    if actions.is_empty() && !waiting {
        f.goto(Step::Reprotect, now);
        return Decision::then(DrState::FailingBack(f), "old primaries retired");
    }
    let d = Decision::poll(
        DrState::FailingBack(f.clone()),
        "retiring the old primaries (final snapshot, then delete)",
    )
    .acting(actions.clone());
    if actions.is_empty() {
        return d;
    }
    d.note(
        Severity::Info,
        "failback.retire-primary",
        "retiring the old primaries",
        format!(
            "The old primaries, fenced during the failover, are deleted after a final snapshot ({}), so the primary region can hold a fresh replica under the plan's identifier.",
            f.targets.iter().filter_map(|t| t.retired_primary.clone()).collect::<Vec<_>>().join(", ")
        ),
    )
}

/// Re-protect into the primary region: a cross-region read replica of each DR writer,
/// set up like the old primary it replaces.
fn reprotect(
    plan: &Plan,
    mut f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let mut actions = vec![];
    for t in f.targets.iter_mut() {
        if t.kind != ResourceKind::RdsInstance {
            continue;
        }
        let missing = facts
            .target(&t.resource)
            .is_some_and(|tf| matches!(tf.primary, Observed::Missing));
        if missing {
            actions.push(FbAction::CreateReplica {
                resource: t.resource.clone(),
                side: Side::Primary,
                like: t.primary_shape.clone(),
            });
            t.replica_requested_at.get_or_insert(now);
        }
    }
    f.goto(Step::AwaitCatchUp, now);
    let d = Decision::then(
        DrState::FailingBack(f),
        "re-protecting into the primary region",
    )
    .acting(actions.clone());
    if actions.is_empty() {
        return d;
    }
    d.note(
        Severity::Info,
        "failback.reprotect",
        "re-protecting into the primary region",
        format!(
            "Creating cross-region read replicas of the DR writers in {}.",
            plan.regions.primary
        ),
    )
}

/// Until every primary-region replica is available and within the plan's catch-up lag
/// of its DR writer: the writer moves only onto a replica that is nearly there. A
/// replica lost (deleted under us, or its creation lost in a crash) is requested again.
fn await_catch_up(
    plan: &Plan,
    mut f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let limit = f64::from(plan.failback.max_catch_up_lag_seconds);
    let mut waiting = vec![];
    let mut actions = vec![];
    for t in &f.targets {
        let Some(tf) = facts.target(&t.resource) else {
            waiting.push(format!("{}: not read", t.resource));
            continue;
        };
        match &tf.primary {
            Observed::Missing if t.kind == ResourceKind::RdsInstance => {
                actions.push(FbAction::CreateReplica {
                    resource: t.resource.clone(),
                    side: Side::Primary,
                    like: t.primary_shape.clone(),
                });
                waiting.push(format!("{}: replica requested again", t.resource));
            }
            Observed::Present(p) if p.replicates_from.is_some() && p.status == "available" => {
                match tf.lag_seconds {
                    Some(l) if l <= limit => {}
                    Some(l) => waiting.push(format!(
                        "{}: {l:.0} s behind (at most {limit:.0} s)",
                        t.resource
                    )),
                    None => waiting.push(format!("{}: lag unknown", t.resource)),
                }
            }
            Observed::Present(p) => waiting.push(format!(
                "{}: the primary-region replica is {}",
                t.resource, p.status
            )),
            _ => waiting.push(format!(
                "{}: the primary-region replica is not there yet",
                t.resource
            )),
        }
    }
    if !waiting.is_empty() {
        return Decision::poll(
            DrState::FailingBack(f),
            format!("waiting for catch-up: {}", waiting.join("; ")),
        )
        .acting(actions);
    }
    f.goto(Step::FenceDrWriter, now);
    Decision::then(DrState::FailingBack(f), "caught up: moving the writer").note(
        Severity::Info,
        "failback.caught-up",
        "primary-region replicas caught up",
        format!(
            "Every primary-region replica is available and within {limit:.0} s of its DR writer."
        ),
    )
}

/// Fence the DR writers through DNS: each writer record now names the read-only
/// primary-region replica, so writes through Lifeboat's records stop before the
/// replica is promoted, and at no moment do the records reach two writers.
fn fence_dr_writer(
    plan: &Plan,
    mut f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let mut actions = vec![];
    for t in f.targets.iter() {
        if t.kind != ResourceKind::RdsInstance || t.fence_change.is_some() {
            continue;
        }
        let Some(spec) = plan.resource(&t.resource) else {
            continue;
        };
        let Some(tf) = facts.target(&t.resource) else {
            continue;
        };
        if spec.dns_record.is_none() {
            continue;
        }
        if let Some(endpoint) = tf.primary().and_then(|p| p.endpoint.clone()) {
            actions.push(FbAction::SwitchRecord {
                resource: t.resource.clone(),
                endpoint,
            });
        }
    }
    if actions.is_empty() {
        f.goto(Step::AwaitFence, now);
        return Decision::then(DrState::FailingBack(f), "DR writers fenced through DNS");
    }
    Decision::then(DrState::FailingBack(f), "fencing the DR writers: their records now name the read-only primary-region replicas")
        .acting(actions)
        .note(
            Severity::Warning,
            "failback.fence-dr",
            "fencing the DR writers",
            "The writer records now name the read-only primary-region replicas: writes through Lifeboat's records stop until the replicas are promoted. Lifeboat waits for the change, the record's TTL, and zero lag before promoting.",
        )
}

/// Before promoting: the fencing change INSYNC, then the record's TTL waited out (clients
/// may hold the old answer that long, still reaching the DR writer), then zero lag, so
/// the promoted replica holds every write the DR writer took.
fn await_fence(
    plan: &Plan,
    mut f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let ttl = Duration::seconds(i64::from(plan.dns.record_ttl_seconds));
    let mut waiting = vec![];
    for t in f.targets.iter_mut() {
        if t.kind != ResourceKind::RdsInstance {
            continue;
        }
        let Some(tf) = facts.target(&t.resource) else {
            waiting.push(format!("{}: not read", t.resource));
            continue;
        };
        if t.fence_change.is_some() {
            if tf.change == Some(ChangeState::InSync) {
                t.fence_synced_at.get_or_insert(now);
            } else {
                waiting.push(format!("{}: record change not INSYNC yet", t.resource));
                continue;
            }
            if t.fence_synced_at.is_some_and(|s| now < s + ttl) {
                waiting.push(format!("{}: waiting out the record's TTL", t.resource));
                continue;
            }
        }
        match tf.lag_seconds {
            Some(l) if l <= 0.0 => t.lag_at_move = Some(l),
            Some(l) => waiting.push(format!("{}: {l:.1} s of lag left", t.resource)),
            None => waiting.push(format!("{}: lag unknown", t.resource)),
        }
    }
    if !waiting.is_empty() {
        return Decision::poll(
            DrState::FailingBack(f),
            format!("waiting to promote: {}", waiting.join("; ")),
        );
    }
    f.goto(Step::PromotePrimary, now);
    Decision::then(
        DrState::FailingBack(f),
        "fenced, TTL passed, zero lag: promoting",
    )
}

/// Promote each primary-region replica once (Aurora: the global database's planned
/// switchover, which re-protects the DR side itself); one already being promoted is not
/// promoted again.
fn promote_primary(mut f: Failback, facts: &FailbackFacts, now: DateTime<Utc>) -> FbDecision {
    let mut actions = vec![];
    for t in f.targets.iter_mut() {
        let Some(tf) = facts.target(&t.resource) else {
            continue;
        };
        let promoting = tf.primary().is_some_and(|p| {
            matches!(
                p.status.as_str(),
                "modifying" | "rebooting" | "promoting" | "switching-over"
            )
        });
        if tf.primary_replicates() && !promoting {
            actions.push(FbAction::PromotePrimary {
                resource: t.resource.clone(),
            });
        }
        t.promote_issued_at.get_or_insert(now);
    }
    f.goto(Step::AwaitPromotion, now);
    Decision::poll(
        DrState::FailingBack(f),
        "promoting the primary-region replicas",
    )
    .acting(actions)
    .note(
        Severity::Warning,
        "failback.promote",
        "moving the writer to the primary region",
        "Promoting the primary-region replicas (Aurora: the global database's planned switchover).",
    )
}

/// Until every primary-region database is the writer; then the writer is on the primary
/// side. A promotion call lost in a crash (the replica still replicates, available) is
/// issued again.
fn await_promotion(mut f: Failback, facts: &FailbackFacts, now: DateTime<Utc>) -> FbDecision {
    let mut done = true;
    let mut actions = vec![];
    for t in f.targets.iter_mut() {
        let Some(tf) = facts.target(&t.resource) else {
            done = false;
            continue;
        };
        if tf.primary_writer() {
            t.promoted_at.get_or_insert(now);
        } else {
            done = false;
            if tf.primary_replicates() && tf.primary().is_some_and(|p| p.status == "available") {
                actions.push(FbAction::PromotePrimary {
                    resource: t.resource.clone(),
                });
            }
        }
    }
    if !done {
        return Decision::poll(DrState::FailingBack(f), "waiting for the promotion")
            .acting(actions);
    }
    f.writer = Side::Primary;
    f.goto(Step::SecureWriter, now);
    Decision::then(
        DrState::FailingBack(f),
        "the writer is in the primary region",
    )
    .note(
        Severity::Warning,
        "failback.writer-moved",
        "writer back in the primary region",
        "Every primary-region replica is now the writer.",
    )
}

/// Before any traffic moves: each writer record names the new primary, and the old DR
/// writer, which still takes direct connections, is stopped.
fn secure_writer(
    plan: &Plan,
    mut f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let mut actions = vec![];
    for t in f.targets.iter() {
        let Some(spec) = plan.resource(&t.resource) else {
            continue;
        };
        let Some(tf) = facts.target(&t.resource) else {
            continue;
        };
        if spec.dns_record.is_some()
            && let Some(endpoint) = tf.primary().and_then(|p| p.endpoint.clone())
            && !tf.record_points_at(&endpoint)
        {
            actions.push(FbAction::SwitchRecord {
                resource: t.resource.clone(),
                endpoint,
            });
        }
        if t.kind == ResourceKind::RdsInstance && t.dr_fence.is_none() {
            actions.push(FbAction::Stop {
                resource: t.resource.clone(),
                side: Side::Dr,
            });
        }
    }
    if !actions.is_empty() {
        return Decision::then(
            DrState::FailingBack(f),
            "securing the writer: records on the primary, old DR writers stopped",
        )
        .acting(actions);
    }
    f.goto(Step::ShiftTraffic, now);
    f.shift = Some(Shift {
        stage: 0,
        entered_at: None,
        change: None,
        held: vec![],
    });
    Decision::then(DrState::FailingBack(f), "writer secured: shifting traffic")
}

/// Re-protect the DR side: the old DR writer, stopped, is retired with a final snapshot
/// (its setup captured first), then a fresh DR replica of the new primary is requested,
/// once.
fn reprotect_dr(
    plan: &Plan,
    mut f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let mut actions = vec![];
    let mut waiting = false;
    for t in f.targets.iter_mut() {
        if t.kind != ResourceKind::RdsInstance {
            continue;
        }
        let Some(tf) = facts.target(&t.resource) else {
            waiting = true;
            continue;
        };
        match &tf.dr {
            Observed::Missing => {
                if t.dr_replica_requested_at.is_none() {
                    actions.push(FbAction::CreateReplica {
                        resource: t.resource.clone(),
                        side: Side::Dr,
                        like: t.dr_shape.clone(),
                    });
                    t.dr_replica_requested_at = Some(now);
                }
            }
            Observed::Present(d) if d.replicates_from.is_some() => {}
            Observed::Present(d) if d.status == "deleting" => waiting = true,
            Observed::Present(_) => {
                if t.dr_shape.is_none() {
                    t.dr_shape = tf.dr_shape.clone();
                }
                let name = t
                    .retired_dr
                    .get_or_insert_with(|| retired_snapshot_name(plan, &t.resource, Side::Dr, now))
                    .clone();
                actions.push(FbAction::Retire {
                    resource: t.resource.clone(),
                    side: Side::Dr,
                    final_snapshot: name,
                });
                waiting = true;
            }
            Observed::Unknown { .. } => waiting = true,
        }
    }
    if actions.is_empty() && !waiting {
        f.goto(Step::AwaitDrReplica, now);
        return Decision::then(DrState::FailingBack(f), "DR replicas requested");
    }
    Decision::poll(
        DrState::FailingBack(f),
        "re-protecting the DR side (retire the old DR writer, then a fresh replica)",
    )
    .acting(actions)
}

/// Until every fresh DR replica replicates, available: only then is the plan protected
/// again and the failback finished. A replica request lost in a crash is made again.
fn await_dr_replica(
    plan: &Plan,
    f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let ready = f.targets.iter().all(|t| {
        facts.target(&t.resource).is_some_and(|tf| {
            tf.dr()
                .is_some_and(|d| d.replicates_from.is_some() && d.status == "available")
        })
    });
    if ready {
        return finish(plan, f, now);
    }
    let mut actions = vec![];
    for t in &f.targets {
        if t.kind == ResourceKind::RdsInstance
            && facts
                .target(&t.resource)
                .is_some_and(|tf| matches!(tf.dr, Observed::Missing))
        {
            actions.push(FbAction::CreateReplica {
                resource: t.resource.clone(),
                side: Side::Dr,
                like: t.dr_shape.clone(),
            });
        }
    }
    Decision::poll(DrState::FailingBack(f), "waiting for the fresh DR replicas").acting(actions)
}

/// Shift application traffic to the primary region stage by stage, each held for the
/// bake time while the gate alarms are watched; after an abort past the writer's move
/// (`cut_over`), all of it at once. Without application records the writer was all
/// there was to move.
fn shift_traffic(
    plan: &Plan,
    mut f: Failback,
    facts: &FailbackFacts,
    now: DateTime<Utc>,
) -> FbDecision {
    let sh = f.shift.clone().unwrap_or(Shift {
        stage: 0,
        entered_at: None,
        change: None,
        held: vec![],
    });
    if plan.failback.traffic.is_empty() {
        f.traffic_primary_percent = 100;
        f.goto(Step::ReprotectDr, now);
        return Decision::then(
            DrState::FailingBack(f),
            "no application traffic records to shift",
        );
    }
    let target = if f.cut_over {
        100
    } else {
        plan.failback.stages.get(sh.stage).copied().unwrap_or(100)
    };
    if !f.cut_over
        && let Some(gate) = facts.gate_firing()
        && sh.change.is_some()
    {
        return roll_back(plan, f, sh, gate, target, now);
    }
    let submitted = sh
        .change
        .as_ref()
        .is_some_and(|c| c.primary_percent == target);
    if !submitted
        && !f.cut_over
        && let Some(why) = facts.gates_hold()
    {
        return hold_stage(f, sh, facts, why, target);
    }
    if !submitted {
        f.shift = Some(sh);
        return Decision::then(
            DrState::FailingBack(f),
            format!("setting {target} % of traffic to the primary region"),
        )
        .acting(vec![FbAction::SetTraffic {
            primary_percent: target,
        }])
        .note(
            Severity::Info,
            "failback.stage",
            format!("traffic stage: {target} % to the primary region"),
            format!(
                "Application traffic weights: {target} % to {}, {} % to {}.",
                plan.regions.primary,
                100 - target,
                plan.regions.dr
            ),
        );
    }
    if facts.traffic.change != Some(ChangeState::InSync) {
        f.shift = Some(sh);
        return Decision::poll(
            DrState::FailingBack(f),
            "waiting for the weights to be INSYNC",
        );
    }
    bake(plan, f, sh, target, now)
}

/// A gate in ALARM during a stage rolls traffic back to the previous stage and pauses.
/// On resume the stage rolled back to is set (again) and baked, then the next one.
fn roll_back(
    plan: &Plan,
    mut f: Failback,
    mut sh: Shift,
    gate: &str,
    target: u32,
    now: DateTime<Utc>,
) -> FbDecision {
    let stages = &plan.failback.stages;
    let back = if sh.stage == 0 {
        0
    } else {
        stages[sh.stage - 1]
    };
    if let Some(entered) = sh.entered_at {
        sh.held.push((target, (now - entered).num_seconds().max(0)));
    }
    sh.stage = sh.stage.saturating_sub(1);
    sh.entered_at = None;
    f.paused = Some(format!(
        "gate alarm {gate} in ALARM at {target} %: rolled back to {back} %"
    ));
    f.shift = Some(Shift { change: None, ..sh });
    Decision::stop(DrState::FailingBack(f), format!("gate alarm {gate} in ALARM: rolling back to {back} % and pausing"))
        .acting(vec![FbAction::SetTraffic { primary_percent: back }])
        .note(
            Severity::Critical,
            "failback.gate",
            format!("failback rolled back: gate {gate} in ALARM"),
            format!("Gate alarm {gate} went to ALARM with {target} % of traffic on the primary region; traffic is back to {back} % and the failback is paused. Resume with {{\"action\": \"resume\"}} once the cause is fixed, or abort."),
        )
}

/// No weight moves towards the primary region while a gate holds it back: one that
/// fires pauses the failback where it stands (nothing was set for this stage, so there
/// is nothing to roll back); one that cannot be read waits for the next look.
fn hold_stage(
    mut f: Failback,
    sh: Shift,
    facts: &FailbackFacts,
    why: String,
    target: u32,
) -> FbDecision {
    let current = f.traffic_primary_percent;
    f.shift = Some(sh);
    if facts.gate_firing().is_none() {
        return Decision::stop(
            DrState::FailingBack(f),
            format!("{why}: stage {target} % waits, traffic stays at {current} %"),
        );
    }
    f.paused = Some(format!(
        "{why} before stage {target} %: held at {current} %"
    ));
    Decision::stop(
        DrState::FailingBack(f),
        format!("{why}: stage {target} % not set; pausing at {current} %"),
    )
    .note(
        Severity::Critical,
        "failback.gate",
        format!("failback paused: {why}"),
        format!("Before traffic moved to {target} % on the primary region, {why}; the failback is paused with {current} % there and no weight was changed. Resume with {{\"action\": \"resume\"}} once the cause is fixed, or abort."),
    )
}

/// The stage's weights are INSYNC: it bakes from then for the plan's bake time, and
/// passes to the next stage once baked without a gate alarm. At 100 % the traffic has
/// moved, and the DR side is re-protected.
fn bake(
    plan: &Plan,
    mut f: Failback,
    mut sh: Shift,
    target: u32,
    now: DateTime<Utc>,
) -> FbDecision {
    f.traffic_primary_percent = target;
    let entered = *sh.entered_at.get_or_insert(now);
    if let Some(c) = sh.change.as_mut() {
        c.synced_at.get_or_insert(now);
    }
    let bake_time = Duration::minutes(i64::from(plan.failback.bake_minutes));
    if target == 100 {
        sh.held.push((100, 0));
        f.shift = Some(sh);
        f.goto(Step::ReprotectDr, now);
        return Decision::then(
            DrState::FailingBack(f),
            "all traffic on the primary region: re-protecting the DR side",
        )
        .note(
            Severity::Warning,
            "failback.traffic-moved",
            "all traffic back on the primary region",
            "Every application record now sends all traffic to the primary region.",
        );
    }
    if now < entered + bake_time {
        let left = (entered + bake_time - now).num_seconds();
        f.shift = Some(sh);
        return Decision::stop(
            DrState::FailingBack(f),
            format!("baking at {target} %: {left} s left while the gates are watched"),
        );
    }
    sh.held.push((target, (now - entered).num_seconds().max(0)));
    sh.stage += 1;
    sh.entered_at = None;
    f.shift = Some(sh);
    Decision::then(
        DrState::FailingBack(f),
        format!("stage {target} % baked without a gate alarm: next stage"),
    )
}

fn finish(plan: &Plan, f: Failback, now: DateTime<Utc>) -> FbDecision {
    let steps = f.time_in_steps(now);
    let summary = format!(
        "Failback {} complete: the writer and all traffic are in {}, and the DR side is protected again by fresh replicas. Time per step: {}. Cooldown for {} minutes.",
        f.id,
        plan.regions.primary,
        steps
            .iter()
            .map(|(s, secs)| format!("{s} {secs} s"))
            .collect::<Vec<_>>()
            .join(", "),
        plan.failover.cooldown_minutes
    );
    Decision::stop(
        DrState::Normal {
            cooldown_until: Some(
                now + Duration::minutes(i64::from(plan.failover.cooldown_minutes)),
            ),
            last: Some(format!(
                "{} completed at {now} (undoing {})",
                f.id, f.from.incident
            )),
        },
        summary.clone(),
    )
    .note(
        Severity::Warning,
        "failback.complete",
        "failback complete: back to Normal",
        summary,
    )
}

/// Fold what the actions produced into the state.
pub fn absorb(state: &DrState, outcomes: &[FbOutcome], now: DateTime<Utc>) -> DrState {
    let DrState::FailingBack(f) = state else {
        return state.clone();
    };
    let mut f = f.clone();
    for o in outcomes {
        match o {
            FbOutcome::Switched { resource, change } => {
                if let Some(t) = f.target_mut(resource) {
                    t.fence_change = Some(change.clone());
                    t.fence_synced_at = None;
                }
            }
            FbOutcome::Stopped { resource, outcome } => {
                if let Some(t) = f.target_mut(resource) {
                    t.dr_fence = Some(outcome.clone());
                }
            }
            FbOutcome::TrafficSet {
                primary_percent,
                change,
            } => {
                let progress = TrafficProgress {
                    primary_percent: *primary_percent,
                    change: change.clone(),
                    submitted_at: now,
                    synced_at: None,
                };
                if let Some(sh) = f.shift.as_mut() {
                    // A rollback's change is not the stage's: the stage is set again on resume.
                    sh.change = (f.paused.is_none()).then_some(progress);
                }
                f.traffic_primary_percent = *primary_percent;
            }
            FbOutcome::Done { .. } | FbOutcome::Failed { .. } => {}
        }
    }
    DrState::FailingBack(f)
}

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
