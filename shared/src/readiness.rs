//! DR readiness: the classic DR checklist (backups, replication, infrastructure,
//! monitoring, documentation, testing) computed from the real state rather than asked,
//! as a score and a list of what fails with its fix.
//!
//! The facts are gathered at the edge (`crate::aws::gather_readiness`); [`assess`] is pure
//! and takes `now`, so the same facts always give the same report.

use crate::backup::RpoMeasurement;
use crate::dr::DrState;
use crate::plan::{Plan, ResourceKind};
use crate::posture::{self, Concern, Finding, Observed, PostureFacts, RecordTarget};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

pub mod event;
pub use event::{ReadinessCommand, ReadinessInput};

/// How long after a full failover and failback the setup still counts as exercised.
pub const EXERCISE_FRESH_DAYS: i64 = 180;
/// How long after its last review the plan's documentation still counts as current.
pub const REVIEW_FRESH_DAYS: i64 = 365;

/// A part of the DR checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// Snapshots taken on time and copied to the DR region.
    Backups,
    /// Standbys in the DR region, replicating closely enough.
    Replication,
    /// The protected resources themselves, the zone, the DR state.
    Infrastructure,
    /// Alarms that start a failover or stop a failback, DNS to switch.
    Monitoring,
    /// Who owns the plan and where its runbook is.
    Documentation,
    /// Backups proven by restore, failover proven by exercise.
    Testing,
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Area::Backups => "backups",
            Area::Replication => "replication",
            Area::Infrastructure => "infrastructure",
            Area::Monitoring => "monitoring",
            Area::Documentation => "documentation",
            Area::Testing => "testing",
        })
    }
}

/// One item of the checklist, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Its part of the checklist.
    pub area: Area,
    /// The resource it is about, or `plan`.
    pub subject: String,
    /// What is checked, e.g. `backup in us-west-2 within objective`.
    pub item: String,
    /// How much a failure matters: a `Critical` item weighs three times a `Warning`.
    pub concern: Concern,
    /// Whether it holds.
    pub passed: bool,
    /// What was found, with figures.
    pub found: String,
    /// What to do when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The readiness report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// The plan.
    pub plan: String,
    /// When it was computed.
    pub at: DateTime<Utc>,
    /// 0 to 100: the weighted share of checks that pass.
    pub score: u32,
    /// Every check, by area.
    pub checks: Vec<Check>,
}

impl Readiness {
    /// The checks that fail, worst first.
    pub fn failing(&self) -> Vec<&Check> {
        let mut out: Vec<&Check> = self.checks.iter().filter(|c| !c.passed).collect();
        out.sort_by_key(|c| (std::cmp::Reverse(c.concern), c.area));
        out
    }

    /// Whether any critical check fails: a recovery as planned would not work.
    pub fn has_critical_failure(&self) -> bool {
        self.checks
            .iter()
            .any(|c| !c.passed && c.concern == Concern::Critical)
    }
}

/// The lag of one resource's DR standby.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagFacts {
    /// The plan resource id.
    pub resource: String,
    /// Seconds behind, from the newest datapoint of the last minutes; `Missing` when
    /// there is no datapoint.
    pub lag_seconds: Observed<f64>,
}

/// Whether an alarm the plan names exists, and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmFacts {
    /// The alarm's name.
    pub name: String,
    /// Whether it starts failovers (`true`) or gates failbacks (`false`).
    pub health: bool,
    /// Its state word (`OK`, `ALARM`, `INSUFFICIENT_DATA`), or `Missing` when it does not
    /// exist or cannot be read.
    pub state: Observed<String>,
}

/// The restore validator's last finished run of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastValidation {
    /// The plan resource id.
    pub resource: String,
    /// When the run finished.
    pub finished_at: DateTime<Utc>,
    /// Whether every check passed.
    pub passed: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Everything readiness is computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadinessFacts {
    /// Resources, replicas, DNS records, zone (as the posture report reads them).
    pub posture: PostureFacts,
    /// The age of each resource's newest backup at each location it should be in.
    pub backups: Observed<Vec<RpoMeasurement>>,
    /// Per resource, when its newest validated snapshot passed restore validation.
    pub validated: Vec<(String, Option<DateTime<Utc>>)>,
    /// Per resource, the restore validator's last finished run, when it recorded one.
    #[serde(default)]
    pub last_validation: Vec<LastValidation>,
    /// Replica lag of each replicated resource.
    pub lag: Vec<LagFacts>,
    /// The plan's health and gate alarms.
    pub alarms: Vec<AlarmFacts>,
    /// The stored DR state (`Missing`: never written, which is Normal).
    pub dr_state: Observed<DrState>,
    /// When a failback last completed (a full failover and return), if within the
    /// lookback of the timeline read.
    pub last_round_trip: Observed<Option<DateTime<Utc>>>,
}

fn weight(concern: Concern) -> u64 {
    match concern {
        Concern::Critical => 3,
        Concern::Warning => 1,
        Concern::Note => 0,
    }
}

/// A duration in the largest unit that keeps it readable.
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 120 {
        format!("{s} s")
    } else if s < 2 * 3600 {
        format!("{} min", s / 60)
    } else if s < 2 * 86_400 {
        format!("{} h", s / 3600)
    } else {
        format!("{} days", s / 86_400)
    }
}

struct Builder {
    checks: Vec<Check>,
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        area: Area,
        subject: &str,
        item: impl Into<String>,
        concern: Concern,
        passed: bool,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.checks.push(Check {
            area,
            subject: subject.to_string(),
            item: item.into(),
            concern,
            passed,
            found: found.into(),
            fix: (!passed).then(|| fix.into()),
        });
    }
}

/// Compute the readiness report.
pub fn assess(plan: &Plan, facts: &ReadinessFacts, now: DateTime<Utc>) -> Readiness {
    let mut b = Builder { checks: Vec::new() };
    let findings = posture::assess(plan, &facts.posture);
    backups(plan, facts, &mut b);
    replication(plan, facts, &findings, &mut b);
    infrastructure(plan, facts, &findings, now, &mut b);
    monitoring(plan, facts, &mut b);
    documentation(plan, now, &mut b);
    testing(plan, facts, now, &mut b);
    b.checks.sort_by_key(|c| c.area);
    let total: u64 = b.checks.iter().map(|c| weight(c.concern)).sum();
    let passed: u64 = b
        .checks
        .iter()
        .filter(|c| c.passed)
        .map(|c| weight(c.concern))
        .sum();
    // Rounded down, so that 100 means every weighed check passes.
    let score = (passed * 100).checked_div(total).unwrap_or(0) as u32;
    Readiness {
        plan: plan.name.clone(),
        at: now,
        score,
        checks: b.checks,
    }
}

fn backups(plan: &Plan, facts: &ReadinessFacts, b: &mut Builder) {
    let databases = plan
        .resources
        .iter()
        .filter(|r| r.kind != ResourceKind::DynamodbTable)
        .count();
    let dr_copies = plan
        .snapshots
        .copy_to
        .iter()
        .any(|d| d.region == plan.regions.dr && d.account_id.is_none());
    if databases > 0 {
        b.add(
            Area::Backups,
            "plan",
            format!("snapshots copied to the DR region {}", plan.regions.dr),
            Concern::Critical,
            dr_copies,
            if dr_copies {
                "snapshots.copy_to includes the DR region".to_string()
            } else {
                "snapshots.copy_to does not include the DR region".to_string()
            },
            format!(
                "add {{\"region\": \"{}\"}} to snapshots.copy_to: a regional disaster takes the primary region's snapshots with it",
                plan.regions.dr
            ),
        );
    }
    match &facts.backups {
        Observed::Present(measurements) => {
            for m in measurements {
                let found = match (m.age_seconds, &m.newest) {
                    (Some(age), Some(id)) => format!(
                        "newest {id} is {} old; objective {}",
                        age_text(age),
                        age_text(m.target_seconds)
                    ),
                    _ => format!("no usable backup; objective {}", age_text(m.target_seconds)),
                };
                b.add(
                    Area::Backups,
                    &m.resource,
                    format!("recent backup in {}", m.location),
                    Concern::Critical,
                    !m.breached,
                    found,
                    format!(
                        "check the snapshot function's schedule and errors, then take one now: {{\"resource\": \"{}\"}}",
                        m.resource
                    ),
                );
            }
        }
        Observed::Missing => b.add(
            Area::Backups,
            "plan",
            "backups listed",
            Concern::Critical,
            false,
            "no backup listing was made",
            "check the function's permissions to list snapshots and backups",
        ),
        Observed::Unknown { reason } => b.add(
            Area::Backups,
            "plan",
            "backups listed",
            Concern::Critical,
            false,
            format!("the backups could not be listed: {reason}"),
            "check the function's permissions and the regions' health, then ask again",
        ),
    }
}

/// Posture findings, turned into failed checks of the area they belong to.
fn posture_area(problem: &str) -> Area {
    if problem.contains("replica") || problem.contains("replicating") {
        Area::Replication
    } else if problem.contains("record") || problem.contains("hosted zone") {
        Area::Monitoring
    } else {
        Area::Infrastructure
    }
}

fn replication(plan: &Plan, facts: &ReadinessFacts, findings: &[Finding], b: &mut Builder) {
    let normal = matches!(
        facts.dr_state,
        Observed::Present(DrState::Normal { .. }) | Observed::Missing
    );
    for r in plan.resources.iter().filter(|r| r.replica.is_some()) {
        let Some(lag) = facts.lag.iter().find(|l| l.resource == r.id) else {
            continue;
        };
        if !normal {
            continue; // no standby replicates while the DR side serves
        }
        let limit = f64::from(plan.failover.max_replica_lag_seconds);
        let (passed, found) = match &lag.lag_seconds {
            Observed::Present(s) => (
                *s <= limit,
                format!("{s:.0} s behind; automatic failover allows {limit:.0} s"),
            ),
            Observed::Missing => (
                false,
                "no replica lag datapoint in the last minutes".to_string(),
            ),
            Observed::Unknown { reason } => (false, format!("lag unreadable: {reason}")),
        };
        b.add(
            Area::Replication,
            &r.id,
            "replica lag within the failover guard",
            Concern::Critical,
            passed,
            found,
            "find why the replica falls behind (write load, instance class, network); until then an automatic failover is refused and a forced one loses data",
        );
    }
    let mut replicas_fine: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| r.replica.is_some())
        .map(|r| r.id.as_str())
        .collect();
    for f in findings {
        if posture_area(&f.problem) == Area::Replication {
            replicas_fine.retain(|id| *id != f.subject);
        }
    }
    for id in replicas_fine {
        b.add(
            Area::Replication,
            id,
            "DR replica exists, replicates and is available",
            Concern::Critical,
            true,
            "yes",
            "",
        );
    }
}

fn infrastructure(
    plan: &Plan,
    facts: &ReadinessFacts,
    findings: &[Finding],
    now: DateTime<Utc>,
    b: &mut Builder,
) {
    // Every posture finding is a failed check, in the area it concerns.
    for f in findings {
        let area = posture_area(&f.problem);
        b.add(
            area,
            &f.subject,
            &f.problem,
            if f.concern == Concern::Note {
                Concern::Warning
            } else {
                f.concern
            },
            false,
            f.problem.clone(),
            f.fix.clone(),
        );
    }
    for r in &plan.resources {
        let clean = !findings
            .iter()
            .any(|f| f.subject == r.id && posture_area(&f.problem) == Area::Infrastructure);
        if clean {
            b.add(
                Area::Infrastructure,
                &r.id,
                "exists, encrypted at rest",
                Concern::Critical,
                true,
                "yes",
                "",
            );
        }
    }
    let (passed, found, fix) = match &facts.dr_state {
        Observed::Present(DrState::Normal { .. }) | Observed::Missing => (
            true,
            "Normal: the primary region serves and the DR side stands by".to_string(),
            String::new(),
        ),
        Observed::Present(s @ DrState::FailedOver(_)) => (
            false,
            format!("{}: the DR region serves and nothing protects it", s.phase()),
            "recover the primary region, then fail back: {\"action\": \"start\"} to the failback function".to_string(),
        ),
        Observed::Present(s) => (
            false,
            format!("{}: a failover or failback is under way", s.phase()),
            "follow it with {\"action\": \"status\"}; it resumes on its schedule".to_string(),
        ),
        Observed::Unknown { reason } => (
            false,
            format!("the DR state could not be read: {reason}"),
            "check the state table and the function's permissions".to_string(),
        ),
    };
    b.add(
        Area::Infrastructure,
        "plan",
        "DR state Normal (protected)",
        Concern::Critical,
        passed,
        found,
        fix,
    );
    if let Observed::Present(state) = &facts.dr_state
        && let Some(until) = state.cooldown_until().filter(|u| *u > now)
    {
        b.add(
            Area::Infrastructure,
            "plan",
            "no failover cooldown in force",
            Concern::Warning,
            false,
            format!(
                "alarms only notify until {} ({} from now)",
                until.format("%Y-%m-%d %H:%M UTC"),
                age_text((until - now).num_seconds())
            ),
            "once the incident is understood, end the cooldown with {\"action\": \"ack\"} to the failover function",
        );
    } else {
        b.add(
            Area::Infrastructure,
            "plan",
            "no failover cooldown in force",
            Concern::Warning,
            true,
            "alarms start failovers",
            "",
        );
    }
}

fn monitoring(plan: &Plan, facts: &ReadinessFacts, b: &mut Builder) {
    if plan.failover.health_alarms.is_empty() {
        b.add(
            Area::Monitoring,
            "plan",
            "health alarms named",
            Concern::Critical,
            false,
            "failover.health_alarms is empty",
            "name the CloudWatch alarms that say the primary is down in failover.health_alarms",
        );
    }
    for a in &facts.alarms {
        let (concern, role) = if a.health {
            (Concern::Critical, "health alarm (starts failovers)")
        } else {
            (Concern::Warning, "gate alarm (stops failback stages)")
        };
        let (passed, found) = match &a.state {
            Observed::Present(s) => (true, format!("exists, {s}")),
            Observed::Missing => (false, "does not exist or cannot be read".to_string()),
            Observed::Unknown { reason } => (false, format!("unreadable: {reason}")),
        };
        b.add(
            Area::Monitoring,
            "plan",
            format!("{role} {}", a.name),
            concern,
            passed,
            found,
            format!(
                "create the alarm {} in {} (or correct its name and region in the plan)",
                a.name, plan.regions.dr
            ),
        );
    }
    for r in plan.resources.iter().filter(|r| r.replica.is_some()) {
        let Some(name) = r.dns_record.as_deref() else {
            b.add(
                Area::Monitoring,
                &r.id,
                "DNS failover configured",
                Concern::Critical,
                false,
                "the resource has no dns_record, so failover cannot redirect its clients",
                "give the resource a dns_record: the CNAME its clients connect to",
            );
            continue;
        };
        let record = facts
            .posture
            .resources
            .iter()
            .find(|f| f.id == r.id)
            .and_then(posture::record_target);
        if matches!(record, Some(RecordTarget::Primary | RecordTarget::Dr)) {
            b.add(
                Area::Monitoring,
                &r.id,
                "DNS failover configured",
                Concern::Critical,
                true,
                format!("{name} exists and Lifeboat can switch it"),
                "",
            );
        }
    }
}

fn documentation(plan: &Plan, now: DateTime<Utc>, b: &mut Builder) {
    let doc = &plan.documentation;
    b.add(
        Area::Documentation,
        "plan",
        "owner named",
        Concern::Warning,
        doc.owner.is_some(),
        doc.owner.clone().unwrap_or_else(|| "no owner".into()),
        "set documentation.owner in the plan: who is paged and decides during a disaster",
    );
    b.add(
        Area::Documentation,
        "plan",
        "runbook linked",
        Concern::Warning,
        doc.runbook_url.is_some(),
        doc.runbook_url
            .clone()
            .unwrap_or_else(|| "no runbook".into()),
        "set documentation.runbook_url in the plan to the team's copy of the README's runbook",
    );
    let reviewed = doc.last_reviewed.map(|d| {
        let at = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        (d, (now - at).num_days())
    });
    b.add(
        Area::Documentation,
        "plan",
        format!("plan reviewed in the last {REVIEW_FRESH_DAYS} days"),
        Concern::Warning,
        reviewed.is_some_and(|(_, days)| days <= REVIEW_FRESH_DAYS),
        match reviewed {
            Some((d, days)) => format!("last reviewed {d} ({days} days ago)"),
            None => "never reviewed".into(),
        },
        "review the plan with its owner (objectives, resources, alarms) and set documentation.last_reviewed",
    );
}

fn testing(plan: &Plan, facts: &ReadinessFacts, now: DateTime<Utc>, b: &mut Builder) {
    let interval = i64::from(plan.validation.interval_hours) * 3600;
    for r in plan
        .resources
        .iter()
        .filter(|r| r.kind != ResourceKind::DynamodbTable)
    {
        if r.validation.is_none() {
            b.add(
                Area::Testing,
                &r.id,
                "backups proven by restore",
                Concern::Warning,
                false,
                "no restore validation is configured",
                "add `validation` checks to the resource so the restore validator proves its backups",
            );
            continue;
        }
        let last_run = facts.last_validation.iter().find(|l| l.resource == r.id);
        if let Some(failed) = last_run.filter(|l| !l.passed) {
            b.add(
                Area::Testing,
                &r.id,
                "backups proven by restore",
                Concern::Critical,
                false,
                format!(
                    "the last validation, {} ago, FAILED: {}",
                    age_text((now - failed.finished_at).num_seconds()),
                    failed.failure.as_deref().unwrap_or("no reason recorded")
                ),
                format!(
                    "read that run's report (its SNS message names the check): repair the data or the backups, then validate again with {{\"resource\": \"{}\"}} to the restore-validator function",
                    r.id
                ),
            );
            continue;
        }
        let tagged = facts
            .validated
            .iter()
            .find(|(id, _)| id == &r.id)
            .and_then(|(_, at)| *at);
        let last = tagged.max(last_run.map(|l| l.finished_at));
        // Twice the interval: one late run is not yet a gap.
        let (passed, found) = match last {
            Some(at) => {
                let age = (now - at).num_seconds();
                (
                    age <= 2 * interval,
                    format!(
                        "last passed {} ago; validated every {}",
                        age_text(age),
                        age_text(interval)
                    ),
                )
            }
            None => (false, "no snapshot has passed restore validation".into()),
        };
        b.add(
            Area::Testing,
            &r.id,
            "backups proven by restore",
            Concern::Critical,
            passed,
            found,
            format!(
                "check the restore validator's last report, or validate now: {{\"resource\": \"{}\"}} to the restore-validator function",
                r.id
            ),
        );
    }
    let (passed, found) = match &facts.last_round_trip {
        Observed::Present(Some(at)) => {
            let age = (now - *at).num_seconds();
            (
                age <= EXERCISE_FRESH_DAYS * 86_400,
                format!("last failback completed {} ago", age_text(age)),
            )
        }
        Observed::Present(None) | Observed::Missing => (
            false,
            format!("no failover and failback in the last {EXERCISE_FRESH_DAYS} days"),
        ),
        Observed::Unknown { reason } => (false, format!("the timeline is unreadable: {reason}")),
    };
    b.add(
        Area::Testing,
        "plan",
        format!("failover and failback exercised in the last {EXERCISE_FRESH_DAYS} days"),
        Concern::Warning,
        passed,
        found,
        "run a DR drill against a staging copy of this plan (README, runbook: \"run the drill against a staging account\")",
    );
}

/// The report for a person: the score, then each area's checks, failing ones with
/// their fix.
pub fn render(r: &Readiness) -> String {
    let mut out = String::new();
    let failing = r.failing();
    let _ = writeln!(
        out,
        "DR readiness of plan {:?}: {}/100 ({} of {} checks pass{})",
        r.plan,
        r.score,
        r.checks.len() - failing.len(),
        r.checks.len(),
        if r.has_critical_failure() {
            "; a recovery as planned would FAIL"
        } else {
            ""
        }
    );
    let mut area = None;
    for c in &r.checks {
        if area != Some(c.area) {
            let _ = writeln!(out, "  {}:", c.area);
            area = Some(c.area);
        }
        let mark = if c.passed {
            "ok  "
        } else if c.concern == Concern::Critical {
            "FAIL"
        } else {
            "warn"
        };
        let subject = if c.subject == "plan" {
            String::new()
        } else {
            format!("{}: ", c.subject)
        };
        let _ = writeln!(out, "    [{mark}] {subject}{} ({})", c.item, c.found);
    }
    if !failing.is_empty() {
        let _ = writeln!(out, "  to fix:");
        for c in failing {
            let _ = writeln!(
                out,
                "    - {}{}: {}",
                if c.subject == "plan" {
                    String::new()
                } else {
                    format!("{}: ", c.subject)
                },
                c.item,
                c.fix.as_deref().unwrap_or("")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
