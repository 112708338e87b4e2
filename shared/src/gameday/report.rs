//! The game-day report: the hypothesis judged against what was measured, the RTO split
//! into where the time went, the failback's stages, and the trend over past game days.
//! Pure: built from the game day's recorded state, rendered as plain text lines.

use super::{DrPhase, GameDay, GameDayFacts, GameDayMode, Verification};
use crate::notify::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A relative change of the RTO smaller than this counts as steady (measurements of the
/// same failover vary by tens of seconds; calling that a trend would be noise).
const STEADY_FRACTION: f64 = 0.10;

/// Whether one part of the hypothesis held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Measured, and within the target.
    Held,
    /// Measured (or failed outright), and not within the target.
    NotHeld,
    /// The game day ended before this part could be measured.
    NotReached,
}

impl Verdict {
    /// The verdict in words.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Held => "held",
            Verdict::NotHeld => "NOT HELD",
            Verdict::NotReached => "not reached",
        }
    }
}

/// One part of the hypothesis, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The verdict.
    pub verdict: Verdict,
    /// What was measured or why it was not, in a sentence.
    pub detail: String,
}

impl Check {
    fn new(verdict: Verdict, detail: impl Into<String>) -> Check {
        Check {
            verdict,
            detail: detail.into(),
        }
    }
}

/// The hypothesis every game day tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// The failover completes (the DR writer verified) within the RTO target.
    pub rto: Check,
    /// The data lost is within the RPO target.
    pub rpo: Check,
    /// The failback returns to Normal, with the DR replicas protecting again.
    pub failback: Check,
}

impl Hypothesis {
    /// Whether every part held.
    pub fn held(&self) -> bool {
        [&self.rto, &self.rpo, &self.failback]
            .iter()
            .all(|c| c.verdict == Verdict::Held)
    }
}

/// Where the recovery time went, in seconds. The RTO runs from the fault (the injection)
/// to the failover's end: a real outage starts at the fault, not at the alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtoSplit {
    /// Fault to failover done.
    pub total_seconds: i64,
    /// Fault to the health alarm firing (CloudWatch's periods and evaluation).
    pub alarm_delay_seconds: Option<i64>,
    /// Detection: the alarm to the failover's start (delivery, confirmation).
    pub detection_seconds: Option<i64>,
    /// Waiting for an operator's approval (manual mode).
    pub approval_seconds: i64,
    /// AWS: the replica's promotion plus the DNS change reaching INSYNC.
    pub aws_seconds: Option<i64>,
    /// Lifeboat: the rest (deciding, fencing, polling gaps). Only when every other part
    /// was measured, so nothing unmeasured is blamed on Lifeboat.
    pub lifeboat_seconds: Option<i64>,
}

/// Time spent in one failback stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackStageTime {
    /// The stage (failback step).
    pub stage: String,
    /// How long it took, in seconds.
    pub seconds: i64,
}

/// How a game day ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum GameDayOutcome {
    /// Ran to the end (the hypothesis may still not have held).
    Completed,
    /// Ended early without a stop condition.
    Aborted {
        /// Why.
        reason: String,
    },
    /// A stop-condition alarm stopped it.
    Stopped {
        /// The alarm.
        cause: String,
        /// The game-day phase it fired in.
        phase: String,
        /// The DR phase the game day stopped at (consistent: Normal or FailedOver).
        dr_phase: DrPhase,
    },
}

/// One past (or this) game day in the trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The game day.
    pub game_day: String,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Its measured RTO, seconds.
    pub rto_seconds: Option<i64>,
    /// Its data-loss window, seconds.
    pub data_loss_seconds: Option<f64>,
    /// Whether its whole hypothesis held.
    pub hypothesis_held: bool,
}

/// Which way the RTO is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendDirection {
    /// This RTO is more than 10 % below the mean of the earlier ones.
    Improving,
    /// Within 10 % of it.
    Steady,
    /// More than 10 % above it.
    Worsening,
    /// This game day or the earlier ones measured no RTO.
    NotEnoughData,
}

impl TrendDirection {
    /// The direction in words.
    pub fn as_str(self) -> &'static str {
        match self {
            TrendDirection::Improving => "improving",
            TrendDirection::Steady => "steady",
            TrendDirection::Worsening => "worsening",
            TrendDirection::NotEnoughData => "not enough data",
        }
    }
}

/// The trend over the last game days, oldest first, this one last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// The game days.
    pub points: Vec<TrendPoint>,
    /// Which way the RTO is going.
    pub direction: TrendDirection,
    /// How many of them held their whole hypothesis.
    pub held: usize,
}

/// A game day's report: stored in S3, sent to SNS (as [`render_report`]'s text), and
/// passed back in as history for the next game days' trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameDayReport {
    /// The game day's id.
    pub game_day: String,
    /// The plan.
    pub plan: String,
    /// Who started it.
    pub requested_by: String,
    /// How the fault was injected.
    pub mode: GameDayMode,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When the fault began, when it was injected.
    pub injected_at: Option<DateTime<Utc>>,
    /// When the game day ended.
    pub ended_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: GameDayOutcome,
    /// The hypothesis, judged.
    pub hypothesis: Hypothesis,
    /// The RTO target (the plan's tightest among replicated resources), seconds.
    pub rto_target_seconds: i64,
    /// The measured RTO, split; `None` when no failover completed.
    pub rto: Option<RtoSplit>,
    /// The RPO target, seconds.
    pub rpo_target_seconds: i64,
    /// The data-loss window (replica lag at promotion), seconds.
    pub data_loss_seconds: Option<f64>,
    /// The verification of the DR writer.
    pub verification: Option<Verification>,
    /// Time in each failback stage.
    pub failback_stages: Vec<FailbackStageTime>,
    /// The failback's total time, when it ended.
    pub failback_seconds: Option<i64>,
    /// Whether the DR region still serves at the end: an operator must fail back.
    pub operator_must_fail_back: bool,
    /// The trend over the last game days.
    pub trend: Trend,
}

impl GameDayReport {
    /// The SNS severity: info when it completed and the hypothesis held, critical when
    /// the DR region was left serving, warning otherwise.
    pub fn severity(&self) -> Severity {
        if self.operator_must_fail_back {
            Severity::Critical
        } else if self.outcome == GameDayOutcome::Completed && self.hypothesis.held() {
            Severity::Info
        } else {
            Severity::Warning
        }
    }

    /// This game day as a point of a trend.
    pub fn trend_point(&self) -> TrendPoint {
        TrendPoint {
            game_day: self.game_day.clone(),
            requested_at: self.requested_at,
            rto_seconds: self.rto.as_ref().map(|r| r.total_seconds),
            data_loss_seconds: self.data_loss_seconds,
            hypothesis_held: self.hypothesis.held(),
        }
    }
}

fn seconds(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<i64> {
    Some((to? - from?).num_seconds().max(0))
}

/// The RTO split, when the failover's end is known.
fn rto_split(gd: &GameDay) -> Option<RtoSplit> {
    let f = &gd.failover;
    let end = f.done_at.or(f.dns_switched_at)?;
    let fault = [gd.injected_at, f.alarm_at, f.started_at]
        .into_iter()
        .flatten()
        .min()?;
    let total = (end - fault).num_seconds().max(0);
    let alarm_delay = seconds(Some(fault), f.alarm_at);
    let detection = seconds(f.alarm_at, f.started_at);
    let approval = f.approval_seconds.unwrap_or(0).max(0);
    let promotion = seconds(f.promotion_started_at, f.promotion_done_at);
    let dns = seconds(f.dns_submitted_at, f.dns_switched_at);
    let aws = match (promotion, dns) {
        (None, None) => None,
        (p, d) => Some(p.unwrap_or(0) + d.unwrap_or(0)),
    };
    let lifeboat = match (alarm_delay, detection, aws) {
        (Some(a), Some(d), Some(w)) => Some((total - a - d - approval - w).max(0)),
        _ => None,
    };
    Some(RtoSplit {
        total_seconds: total,
        alarm_delay_seconds: alarm_delay,
        detection_seconds: detection,
        approval_seconds: approval,
        aws_seconds: aws,
        lifeboat_seconds: lifeboat,
    })
}

fn judge_rto(gd: &GameDay, rto: Option<&RtoSplit>) -> Check {
    let target = duration_text(gd.rto_target_seconds);
    match rto {
        Some(r) => {
            let took = duration_text(r.total_seconds);
            if r.total_seconds > gd.rto_target_seconds {
                Check::new(
                    Verdict::NotHeld,
                    format!("the failover took {took}, over the {target} target"),
                )
            } else {
                match &gd.verification {
                    Some(v) if v.passed() => Check::new(
                        Verdict::Held,
                        format!(
                            "failed over in {took} (target {target}), and the DR writer answered"
                        ),
                    ),
                    Some(v) => Check::new(
                        Verdict::NotHeld,
                        format!(
                            "failed over in {took}, but the DR writer failed verification: {}",
                            v.detail
                        ),
                    ),
                    None => Check::new(
                        Verdict::NotReached,
                        format!(
                            "failed over in {took} (target {target}), but the DR writer was not verified"
                        ),
                    ),
                }
            }
        }
        None => {
            if gd.injected_at.is_some() && gd.stop.is_none() {
                Check::new(
                    Verdict::NotHeld,
                    gd.abort_reason
                        .clone()
                        .unwrap_or_else(|| "the failover did not complete".into()),
                )
            } else if gd.failover_seen {
                Check::new(
                    Verdict::NotHeld,
                    "the failover began but its end was not measured",
                )
            } else {
                Check::new(Verdict::NotReached, "no failover took place")
            }
        }
    }
}

fn judge_rpo(gd: &GameDay, rto: Option<&RtoSplit>) -> Check {
    let target = duration_text(gd.rpo_target_seconds);
    match (gd.failover.data_loss_seconds, rto) {
        (Some(loss), _) if loss <= gd.rpo_target_seconds as f64 => Check::new(
            Verdict::Held,
            format!("{loss:.1} s of data at risk (target {target})"),
        ),
        (Some(loss), _) => Check::new(
            Verdict::NotHeld,
            format!("{loss:.1} s of data at risk, over the {target} target"),
        ),
        (None, Some(_)) => Check::new(
            Verdict::NotReached,
            "the failover completed but its data-loss window was not measured",
        ),
        (None, None) => Check::new(Verdict::NotReached, "no failover took place"),
    }
}

fn judge_failback(gd: &GameDay, dr_now: DrPhase) -> Check {
    match &gd.failback_end {
        Some(end) if end.phase == DrPhase::Normal && end.protected => Check::new(
            Verdict::Held,
            "the failback returned to Normal with the DR replicas protecting again",
        ),
        Some(end) if end.phase == DrPhase::Normal => Check::new(
            Verdict::NotHeld,
            "the failback returned to Normal, but the DR replicas are not protecting yet",
        ),
        Some(_) => Check::new(
            Verdict::NotHeld,
            "the failback was rolled back or aborted: the DR region still serves",
        ),
        None if gd.stop.is_some() => Check::new(
            Verdict::NotReached,
            "stopped before the failback; the failback is the operator's to start",
        ),
        None if gd.failback_requested_at.is_some() => Check::new(
            Verdict::NotHeld,
            gd.abort_reason
                .clone()
                .unwrap_or_else(|| "the failback did not end".into()),
        ),
        None if dr_now == DrPhase::FailedOver => Check::new(
            Verdict::NotReached,
            "no failback was started; the DR region still serves",
        ),
        None => Check::new(Verdict::NotReached, "no failback took place"),
    }
}

fn failback_stages(gd: &GameDay, now: DateTime<Utc>) -> (Vec<FailbackStageTime>, Option<i64>) {
    let stages = &gd.failback.stages;
    let end = gd.failback_end.as_ref().map(|e| e.at);
    let until = end.unwrap_or(now);
    let times = stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let next = stages.get(i + 1).map(|n| n.started_at).unwrap_or(until);
            FailbackStageTime {
                stage: s.stage.clone(),
                seconds: (next - s.started_at).num_seconds().max(0),
            }
        })
        .collect();
    let total = match (stages.first(), end) {
        (Some(first), Some(end)) => Some((end - first.started_at).num_seconds().max(0)),
        _ => None,
    };
    (times, total)
}

/// The trend over the last `size` game days before `current`, plus `current`: RTO per
/// game day, oldest first, and whether this one's RTO improves on the mean of the others.
/// Reports of the same game day as `current` (a rewritten report) are not counted twice.
pub fn trend(past: &[GameDayReport], current: TrendPoint, size: usize) -> Trend {
    let mut earlier: Vec<TrendPoint> = past
        .iter()
        .filter(|r| r.game_day != current.game_day && r.requested_at <= current.requested_at)
        .map(GameDayReport::trend_point)
        .collect();
    earlier.sort_by_key(|p| p.requested_at);
    let skip = earlier.len().saturating_sub(size);
    let earlier: Vec<TrendPoint> = earlier.into_iter().skip(skip).collect();
    let previous: Vec<i64> = earlier.iter().filter_map(|p| p.rto_seconds).collect();
    let direction = match current.rto_seconds {
        Some(now) if !previous.is_empty() => {
            let mean = previous.iter().sum::<i64>() as f64 / previous.len() as f64;
            let change = if mean > 0.0 {
                (now as f64 - mean) / mean
            } else {
                now as f64
            };
            if change < -STEADY_FRACTION {
                TrendDirection::Improving
            } else if change > STEADY_FRACTION {
                TrendDirection::Worsening
            } else {
                TrendDirection::Steady
            }
        }
        _ => TrendDirection::NotEnoughData,
    };
    let mut points = earlier;
    points.push(current);
    let held = points.iter().filter(|p| p.hypothesis_held).count();
    Trend {
        points,
        direction,
        held,
    }
}

/// Build the report of a game day that ends now.
pub(super) fn build(gd: &GameDay, facts: &GameDayFacts, now: DateTime<Utc>) -> GameDayReport {
    let rto = rto_split(gd);
    let hypothesis = Hypothesis {
        rto: judge_rto(gd, rto.as_ref()),
        rpo: judge_rpo(gd, rto.as_ref()),
        failback: judge_failback(gd, facts.dr.phase),
    };
    let outcome = match (&gd.stop, &gd.abort_reason) {
        (Some(stop), _) => GameDayOutcome::Stopped {
            cause: stop.cause.clone(),
            phase: stop.phase.clone(),
            dr_phase: facts.dr.phase,
        },
        (None, Some(reason)) => GameDayOutcome::Aborted {
            reason: reason.clone(),
        },
        (None, None) => GameDayOutcome::Completed,
    };
    let (stages, failback_seconds) = failback_stages(gd, now);
    let current = TrendPoint {
        game_day: gd.id.clone(),
        requested_at: gd.requested_at,
        rto_seconds: rto.as_ref().map(|r| r.total_seconds),
        data_loss_seconds: gd.failover.data_loss_seconds,
        hypothesis_held: hypothesis.held(),
    };
    GameDayReport {
        game_day: gd.id.clone(),
        plan: gd.plan.clone(),
        requested_by: gd.requested_by.clone(),
        mode: gd.injection.mode(),
        requested_at: gd.requested_at,
        injected_at: gd.injected_at,
        ended_at: now,
        outcome,
        trend: trend(&facts.history, current, gd.trend_size),
        hypothesis,
        rto_target_seconds: gd.rto_target_seconds,
        rto,
        rpo_target_seconds: gd.rpo_target_seconds,
        data_loss_seconds: gd.failover.data_loss_seconds,
        verification: gd.verification.clone(),
        failback_stages: stages,
        failback_seconds,
        operator_must_fail_back: matches!(
            facts.dr.phase,
            DrPhase::FailedOver | DrPhase::FailingOver
        ),
    }
}

/// Seconds as `1h 2m 3s`, leaving out leading zero units (`45s`, `12m 5s`, `2h 0m 0s`).
pub(super) fn duration_text(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{sign}{m}m {s}s")
    } else {
        format!("{sign}{s}s")
    }
}

fn opt_duration(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| "not measured".to_string(), duration_text)
}

/// The report as readable text lines, for SNS and the console: the verdict first, then
/// where the time went, then the trend, then what the operator must do.
pub fn render_report(r: &GameDayReport) -> Vec<String> {
    let mut lines = Vec::new();
    let ended = match &r.outcome {
        GameDayOutcome::Completed => "completed".to_string(),
        GameDayOutcome::Aborted { reason } => format!("ABORTED: {reason}"),
        GameDayOutcome::Stopped {
            cause,
            phase,
            dr_phase,
        } => format!(
            "STOPPED by stop-condition alarm {cause} during {phase}; stopped at DR state {dr_phase}"
        ),
    };
    lines.push(format!(
        "Game day {} on plan {} ({} injection, requested by {} at {}): {ended}",
        r.game_day,
        r.plan,
        r.mode,
        r.requested_by,
        r.requested_at.format("%Y-%m-%d %H:%M:%S UTC"),
    ));
    lines.push(format!(
        "Hypothesis {}:",
        if r.hypothesis.held() {
            "HELD"
        } else {
            "NOT HELD"
        }
    ));
    for (what, check) in [
        (
            format!(
                "failover within the RTO target ({})",
                duration_text(r.rto_target_seconds)
            ),
            &r.hypothesis.rto,
        ),
        (
            format!(
                "data loss within the RPO target ({})",
                duration_text(r.rpo_target_seconds)
            ),
            &r.hypothesis.rpo,
        ),
        (
            "failback returns to Normal and protected".to_string(),
            &r.hypothesis.failback,
        ),
    ] {
        lines.push(format!(
            "  - {what}: {}: {}",
            check.verdict.as_str(),
            check.detail
        ));
    }
    match &r.rto {
        Some(rto) => lines.push(format!(
            "Measured RTO {}: alarm delay {}, detection {}, approval {}, AWS (promotion + DNS) {}, Lifeboat {}",
            duration_text(rto.total_seconds),
            opt_duration(rto.alarm_delay_seconds),
            opt_duration(rto.detection_seconds),
            duration_text(rto.approval_seconds),
            opt_duration(rto.aws_seconds),
            opt_duration(rto.lifeboat_seconds),
        )),
        None => lines.push("Measured RTO: none (no failover completed)".to_string()),
    }
    lines.push(match r.data_loss_seconds {
        Some(loss) => format!("Data-loss window: {loss:.1} s"),
        None => "Data-loss window: not measured".to_string(),
    });
    if let Some(v) = &r.verification {
        let canary = match &v.canary {
            super::CanaryResult::Ok => "canary write and read ok".to_string(),
            super::CanaryResult::Failed { reason } => format!("canary FAILED: {reason}"),
            super::CanaryResult::NotConfigured => "no canary configured".to_string(),
        };
        lines.push(format!(
            "Verification: DR endpoint {}; {canary}{}",
            if v.endpoint_answered {
                "answered"
            } else {
                "DID NOT ANSWER"
            },
            if v.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.detail)
            }
        ));
    }
    if !r.failback_stages.is_empty() {
        let stages: Vec<String> = r
            .failback_stages
            .iter()
            .map(|s| format!("{} {}", s.stage, duration_text(s.seconds)))
            .collect();
        lines.push(format!(
            "Failback stages: {}; total {}",
            stages.join(", "),
            opt_duration(r.failback_seconds)
        ));
    }
    let rtos: Vec<String> = r
        .trend
        .points
        .iter()
        .map(|p| opt_duration(p.rto_seconds))
        .collect();
    let n = r.trend.points.len();
    lines.push(format!(
        "Trend over the last {n} game day{}: RTO {}: {}; hypothesis held in {} of {}",
        if n == 1 { "" } else { "s" },
        rtos.join(" → "),
        r.trend.direction.as_str(),
        r.trend.held,
        n,
    ));
    if r.operator_must_fail_back {
        lines.push(
            "ACTION NEEDED: the DR region still serves. An operator must check what fired and fail back (failback command {\"action\": \"start\"}).".to_string(),
        );
    }
    lines
}
