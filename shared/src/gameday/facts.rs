//! [`DrFacts`] read off the DR state machine's document, so the executor need not map
//! it field by field. Pure: the same `DrState` always gives the same facts.

use super::{DrFacts, DrPhase, FailbackFacts, FailoverFacts, StageMark};
use crate::dr::DrState;
use crate::failover::{FailedOver, Failover, Step, TargetProgress};
use chrono::{DateTime, Duration, Utc};

/// The facts a game day reads from the DR state.
///
/// `protected` is whether every replicated resource has its DR replica (the readiness
/// check knows); it only matters in Normal, where the state does not say.
pub fn dr_facts(state: &DrState, protected: bool) -> DrFacts {
    let (phase, failover, failback) = match state {
        DrState::Normal { .. } => (
            DrPhase::Normal,
            FailoverFacts::default(),
            FailbackFacts::default(),
        ),
        DrState::FailingOver(f) => (
            DrPhase::FailingOver,
            from_failover(f),
            FailbackFacts::default(),
        ),
        DrState::FailedOver(f) => (
            DrPhase::FailedOver,
            from_failed_over(f),
            FailbackFacts::default(),
        ),
        DrState::FailingBack(fb) => (
            DrPhase::FailingBack,
            from_failed_over(&fb.from),
            FailbackFacts {
                stages: fb
                    .marks
                    .iter()
                    .map(|m| StageMark {
                        stage: m.step.to_string(),
                        started_at: m.at,
                    })
                    .collect(),
                done_at: None,
            },
        ),
    };
    DrFacts {
        phase,
        cooldown_until: state.cooldown_until(),
        failover,
        failback,
        protected,
    }
}

/// The AWS-side times over every replicated resource: promotion from the first issued
/// to the slowest done, DNS from the first submitted to the last in sync (the failover
/// is as slow as its slowest resource).
fn aws_times(targets: &[TargetProgress], into: &mut FailoverFacts) {
    into.promotion_started_at = targets.iter().filter_map(|t| t.promote_issued_at).min();
    into.promotion_done_at = targets.iter().filter_map(|t| t.promoted_at).max();
    into.dns_submitted_at = targets.iter().filter_map(|t| t.dns_submitted_at).min();
    into.dns_switched_at = targets.iter().filter_map(|t| t.dns_synced_at).max();
    into.data_loss_seconds = targets
        .iter()
        .filter_map(|t| t.lag_at_promotion)
        .fold(None, |max: Option<f64>, lag| {
            Some(max.map_or(lag, |m| m.max(lag)))
        });
}

fn from_failover(f: &Failover) -> FailoverFacts {
    let mut out = FailoverFacts {
        incident: Some(f.incident.clone()),
        alarm_at: Some(f.fired_at()),
        started_at: Some(f.received_at),
        approval_seconds: approval_seconds(f),
        ..FailoverFacts::default()
    };
    aws_times(&f.targets, &mut out);
    out
}

/// Time spent waiting for approval: from entering `AwaitingApproval` to the next step
/// (or until now, unknown here, so `None` while still waiting).
fn approval_seconds(f: &Failover) -> Option<i64> {
    let i = f
        .marks
        .iter()
        .position(|m| m.step == Step::AwaitingApproval)?;
    let next = f.marks.get(i + 1)?;
    Some((next.at - f.marks[i].at).num_seconds().max(0))
}

fn from_failed_over(f: &FailedOver) -> FailoverFacts {
    let m = &f.measurement;
    // The completed failover keeps its measurement, not its marks: the alarm time is
    // the DNS sync less the RTO, and Lifeboat received it `detection_seconds` later.
    let alarm_at: DateTime<Utc> = f.since - Duration::seconds(m.rto_seconds);
    let mut out = FailoverFacts {
        incident: Some(f.incident.clone()),
        alarm_at: Some(alarm_at),
        started_at: Some(alarm_at + Duration::seconds(m.detection_seconds)),
        approval_seconds: Some(m.approval_seconds),
        done_at: Some(f.since),
        ..FailoverFacts::default()
    };
    aws_times(&f.targets, &mut out);
    if m.data_loss_seconds.is_some() {
        out.data_loss_seconds = m.data_loss_seconds;
    }
    out
}
