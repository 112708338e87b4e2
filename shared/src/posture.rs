//! DR posture: what the plan protects and how it stands, read from the real AWS state.
//!
//! The facts are gathered at the edge (`crate::aws::gather_posture`); this module only
//! judges them (pure) and renders them for a person.

use crate::ident::rds_reference_names;
use crate::plan::{Plan, ResourceKind, normalize_dns_name};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// What a look-up found. Serialised as `{"found": "present", "value": ...}` (adjacent
/// tagging, because a value may be a plain string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "found", content = "value", rename_all = "snake_case")]
pub enum Observed<T> {
    /// It exists; here is what it looks like.
    Present(T),
    /// It does not exist.
    Missing,
    /// It could not be read (the reason says why: region down, access denied, ...).
    Unknown {
        /// Why.
        reason: String,
    },
}

impl<T> Observed<T> {
    /// The value, when present.
    pub fn present(&self) -> Option<&T> {
        match self {
            Observed::Present(v) => Some(v),
            _ => None,
        }
    }
}

/// A database instance or cluster, or a table, as the AWS API describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreFacts {
    /// Its AWS identifier.
    pub identifier: String,
    /// Its region.
    pub region: String,
    /// Its status (`available`, `ACTIVE`, ...).
    pub status: String,
    /// Engine, for databases.
    pub engine: Option<String>,
    /// Writer endpoint address, for databases.
    pub endpoint: Option<String>,
    /// Whether storage is encrypted at rest.
    pub encrypted: bool,
    /// For a replica: what it replicates from (identifier or ARN).
    pub replicates_from: Option<String>,
    /// For a source: its replicas (identifiers or ARNs).
    pub replicas: Vec<String>,
    /// For a DynamoDB table: whether point-in-time recovery is on.
    pub point_in_time_recovery: Option<bool>,
}

/// A DNS record as Route 53 holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFacts {
    /// Record name.
    pub name: String,
    /// Values (CNAME targets), with their weights for weighted records.
    pub values: Vec<(String, Option<i64>)>,
}

/// Everything known about one protected resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceFacts {
    /// The plan's resource id.
    pub id: String,
    /// The resource in the primary region.
    pub primary: Observed<StoreFacts>,
    /// Its standby in the DR region, when the plan names one.
    pub replica: Option<Observed<StoreFacts>>,
    /// Its DNS record, when the plan names one.
    pub record: Option<Observed<RecordFacts>>,
}

/// The facts a posture report is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostureFacts {
    /// Per resource, in plan order.
    pub resources: Vec<ResourceFacts>,
    /// The hosted zone's id, once resolved.
    pub zone: Observed<String>,
    /// Application traffic records (weighted), in plan order.
    pub traffic: Vec<Observed<RecordFacts>>,
    /// The stored failover state, in a word, when one is stored.
    pub failover_state: Observed<String>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Concern {
    /// Worth knowing.
    Note,
    /// Weakens recovery.
    Warning,
    /// Recovery as planned would fail.
    Critical,
}

/// One thing wrong (or worth knowing) about the posture, with its fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How bad.
    pub concern: Concern,
    /// The resource, or `plan`.
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

/// Where a writer record points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordTarget {
    /// At the primary's endpoint.
    Primary,
    /// At the DR replica's endpoint.
    Dr,
    /// Somewhere else.
    Elsewhere,
}

/// Where a resource's record points, given its facts.
pub fn record_target(facts: &ResourceFacts) -> Option<RecordTarget> {
    let record = facts.record.as_ref()?.present()?;
    let endpoint = |o: &Observed<StoreFacts>| {
        o.present()
            .and_then(|s| s.endpoint.as_deref())
            .map(normalize_dns_name)
    };
    let primary = endpoint(&facts.primary);
    let dr = facts.replica.as_ref().and_then(endpoint);
    let values: Vec<String> = record
        .values
        .iter()
        .map(|(v, _)| normalize_dns_name(v))
        .collect();
    Some(match values.as_slice() {
        [one] if Some(one) == primary.as_ref() => RecordTarget::Primary,
        [one] if Some(one) == dr.as_ref() => RecordTarget::Dr,
        _ => RecordTarget::Elsewhere,
    })
}

/// Judge the posture: every finding, worst first.
pub fn assess(plan: &Plan, facts: &PostureFacts) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut add = |concern, subject: &str, problem: String, fix: String| {
        findings.push(Finding {
            concern,
            subject: subject.to_string(),
            problem,
            fix,
        })
    };
    for r in &facts.resources {
        let Some(spec) = plan.resource(&r.id) else {
            continue;
        };
        match &r.primary {
            Observed::Missing => add(
                Concern::Critical,
                &r.id,
                format!(
                    "{} {} does not exist in {}",
                    spec.kind,
                    spec.aws_identifier(),
                    plan.regions.primary
                ),
                "correct the identifier in the plan, or remove the resource".into(),
            ),
            Observed::Unknown { reason } => add(
                Concern::Warning,
                &r.id,
                format!("the primary could not be read: {reason}"),
                "check the primary region's health and the function's permissions".into(),
            ),
            Observed::Present(p) => {
                if !p.encrypted {
                    add(
                        Concern::Warning,
                        &r.id,
                        "storage is not encrypted at rest, so neither are its snapshots".into(),
                        "restore into an encrypted instance (encryption cannot be turned on in place)"
                            .into(),
                    );
                }
                if spec.kind == ResourceKind::DynamodbTable
                    && p.point_in_time_recovery == Some(false)
                {
                    add(
                        Concern::Warning,
                        &r.id,
                        "point-in-time recovery is off: `recover` cannot restore the table to \
                         the instant before accidental damage"
                            .into(),
                        "enable PITR on the table (UpdateContinuousBackups)".into(),
                    );
                }
            }
        }
        if let (Some(replica_spec), Some(replica)) = (&spec.replica, &r.replica) {
            match replica {
                Observed::Missing => add(
                    Concern::Critical,
                    &r.id,
                    format!(
                        "the DR replica {} does not exist in {}: failover has nothing to promote",
                        replica_spec.identifier, plan.regions.dr
                    ),
                    "create the cross-region replica (or correct `replica.identifier`)".into(),
                ),
                Observed::Unknown { reason } => add(
                    Concern::Critical,
                    &r.id,
                    format!("the DR replica could not be read: {reason}"),
                    "check the DR region and the function's permissions".into(),
                ),
                Observed::Present(rep) => {
                    let source_type = match spec.kind {
                        ResourceKind::AuroraCluster => "cluster",
                        _ => "db",
                    };
                    let source_matches = rep.replicates_from.as_deref().is_some_and(|src| {
                        rds_reference_names(src, source_type, spec.aws_identifier())
                    });
                    if !source_matches {
                        add(
                            Concern::Warning,
                            &r.id,
                            format!(
                                "{} is not replicating from {} (source: {})",
                                rep.identifier,
                                spec.aws_identifier(),
                                rep.replicates_from
                                    .as_deref()
                                    .unwrap_or("none: it is standalone")
                            ),
                            "expected after a failover; otherwise recreate the replica".into(),
                        );
                    }
                    if rep.status != "available" {
                        add(
                            Concern::Warning,
                            &r.id,
                            format!("the DR replica is {}, not available", rep.status),
                            "wait for it, or investigate in the RDS console".into(),
                        );
                    }
                }
            }
        }
        if let Some(record) = &r.record {
            match record {
                Observed::Missing => add(
                    Concern::Critical,
                    &r.id,
                    format!(
                        "the record {} does not exist, so failover cannot redirect clients",
                        spec.dns_record.as_deref().unwrap_or("?")
                    ),
                    "create the CNAME pointing at the primary endpoint".into(),
                ),
                Observed::Unknown { reason } => add(
                    Concern::Warning,
                    &r.id,
                    format!("the record could not be read: {reason}"),
                    "check Route 53 access".into(),
                ),
                Observed::Present(_) => {
                    if record_target(r) == Some(RecordTarget::Elsewhere) {
                        add(
                            Concern::Warning,
                            &r.id,
                            "the record points at neither the primary nor the DR endpoint".into(),
                            "point it at the primary's endpoint".into(),
                        );
                    }
                }
            }
        }
    }
    if let Observed::Missing = facts.zone {
        add(
            Concern::Critical,
            "plan",
            "the plan's hosted zone does not exist".into(),
            "create it, or correct `dns` in the plan".into(),
        );
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.concern));
    findings
}

fn observed_text<T>(o: &Observed<T>, show: impl Fn(&T) -> String) -> String {
    match o {
        Observed::Present(v) => show(v),
        Observed::Missing => "MISSING".into(),
        Observed::Unknown { reason } => format!("unreadable ({reason})"),
    }
}

/// A report a person can read: resources, replicas and their regions, DNS records,
/// state, and findings.
pub fn render(plan: &Plan, facts: &PostureFacts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan {:?}: primary {}, DR {}; failover {:?}, cooldown {} min, max replica lag {} s",
        plan.name,
        plan.regions.primary,
        plan.regions.dr,
        plan.failover.mode,
        plan.failover.cooldown_minutes,
        plan.failover.max_replica_lag_seconds
    );
    let store = |s: &StoreFacts| {
        let mut text = format!("{} in {} [{}]", s.identifier, s.region, s.status);
        if let Some(e) = &s.engine {
            let _ = write!(text, " {e}");
        }
        if let Some(e) = &s.endpoint {
            let _ = write!(text, " at {e}");
        }
        text.push_str(if s.encrypted {
            ", encrypted"
        } else {
            ", NOT encrypted"
        });
        if let Some(p) = s.point_in_time_recovery {
            text.push_str(if p { ", PITR on" } else { ", PITR off" });
        }
        if let Some(src) = &s.replicates_from {
            let _ = write!(text, ", replicating from {src}");
        }
        text
    };
    for r in &facts.resources {
        let Some(spec) = plan.resource(&r.id) else {
            continue;
        };
        let _ = writeln!(
            out,
            "\n  {} ({}; RPO {} min, RTO {} min, snapshots every {} min)",
            r.id,
            spec.kind,
            spec.rpo_minutes,
            spec.rto_minutes,
            spec.interval_minutes(&plan.snapshots)
        );
        let _ = writeln!(out, "    primary : {}", observed_text(&r.primary, store));
        match &r.replica {
            Some(rep) => {
                let _ = writeln!(out, "    replica : {}", observed_text(rep, store));
            }
            None => {
                let _ = writeln!(
                    out,
                    "    replica : none (recovered from snapshot copies in {})",
                    plan.snapshots
                        .copy_to
                        .iter()
                        .map(|d| d.key())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        if let Some(record) = &r.record {
            let target = match record_target(r) {
                Some(RecordTarget::Primary) => " -> primary",
                Some(RecordTarget::Dr) => " -> DR",
                _ => "",
            };
            let _ = writeln!(
                out,
                "    dns     : {}{target}",
                observed_text(record, |rec| format!(
                    "{} CNAME {}",
                    rec.name,
                    rec.values
                        .iter()
                        .map(|(v, _)| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            );
        }
    }
    if !facts.traffic.is_empty() {
        let _ = writeln!(out, "\n  application traffic:");
        for t in &facts.traffic {
            let _ = writeln!(
                out,
                "    {}",
                observed_text(t, |rec| format!(
                    "{}: {}",
                    rec.name,
                    rec.values
                        .iter()
                        .map(|(v, w)| match w {
                            Some(w) => format!("{v} weight {w}"),
                            None => v.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            );
        }
    }
    let _ = writeln!(
        out,
        "\n  hosted zone: {}",
        observed_text(&facts.zone, |z| z.clone())
    );
    let _ = writeln!(
        out,
        "  failover state: {}",
        match &facts.failover_state {
            Observed::Missing => "Normal (no failover recorded)".to_string(),
            other => observed_text(other, |s| s.clone()),
        }
    );
    let findings = assess(plan, facts);
    if findings.is_empty() {
        let _ = writeln!(out, "\n  posture: no findings");
    } else {
        let _ = writeln!(out, "\n  findings:");
        for f in findings {
            let _ = writeln!(
                out,
                "    {:?} {}: {}. Fix: {}",
                f.concern, f.subject, f.problem, f.fix
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_plan;

    fn plan() -> Plan {
        parse_plan(include_str!("../../infra/plans/local.json")).unwrap()
    }

    fn db(id: &str, region: &str, endpoint: &str, from: Option<&str>) -> StoreFacts {
        StoreFacts {
            identifier: id.into(),
            region: region.into(),
            status: "available".into(),
            engine: Some("postgres".into()),
            endpoint: Some(endpoint.into()),
            encrypted: true,
            replicates_from: from.map(str::to_string),
            replicas: vec![],
            point_in_time_recovery: None,
        }
    }

    fn healthy() -> PostureFacts {
        PostureFacts {
            resources: vec![
                ResourceFacts {
                    id: "orders-db".into(),
                    primary: Observed::Present(db(
                        "orders-db",
                        "us-east-1",
                        "orders-db.use1.example",
                        None,
                    )),
                    replica: Some(Observed::Present(db(
                        "orders-db-dr",
                        "us-west-2",
                        "orders-db-dr.usw2.example",
                        Some("arn:aws:rds:us-east-1:123456789012:db:orders-db"),
                    ))),
                    record: Some(Observed::Present(RecordFacts {
                        name: "orders-db.db.lifeboat.internal.".into(),
                        values: vec![("orders-db.use1.example".into(), None)],
                    })),
                },
                ResourceFacts {
                    id: "billing-db".into(),
                    primary: Observed::Present(db(
                        "billing-db",
                        "us-east-1",
                        "billing.use1.example",
                        None,
                    )),
                    replica: None,
                    record: None,
                },
            ],
            zone: Observed::Present("Z1".into()),
            traffic: vec![],
            failover_state: Observed::Missing,
        }
    }

    #[test]
    fn a_healthy_world_has_no_findings_and_points_at_the_primary() {
        let facts = healthy();
        assert!(assess(&plan(), &facts).is_empty());
        assert_eq!(
            record_target(&facts.resources[0]),
            Some(RecordTarget::Primary)
        );
        let text = render(&plan(), &facts);
        assert!(
            text.contains("orders-db-dr in us-west-2 [available]"),
            "{text}"
        );
        assert!(text.contains("-> primary"), "{text}");
        assert!(text.contains("Normal (no failover recorded)"), "{text}");
        assert!(text.contains("posture: no findings"), "{text}");
    }

    #[test]
    fn a_replica_is_known_by_its_source_whichever_case_the_plan_uses() {
        let text = include_str!("../../infra/plans/local.json").replace(
            "\"id\": \"orders-db\",",
            "\"id\": \"orders-db\", \"identifier\": \"Orders-DB\",",
        );
        let mixed = parse_plan(&text).unwrap();
        assert!(assess(&mixed, &healthy()).is_empty());
        // The plan as given is what a fact from an older state or another tool is held to.
        let mut unnormalised = mixed.clone();
        unnormalised.resources[0].identifier = Some("Orders-DB".into());
        assert!(assess(&unnormalised, &healthy()).is_empty());
        // Another instance of the same name in another kind is not the source.
        let mut facts = healthy();
        let Some(Observed::Present(replica)) = &mut facts.resources[0].replica else {
            panic!("the healthy facts have a replica");
        };
        replica.replicates_from =
            Some("arn:aws:rds:us-east-1:123456789012:cluster:orders-db".into());
        let findings = assess(&mixed, &facts);
        assert!(
            findings[0]
                .problem
                .contains("is not replicating from orders-db"),
            "{findings:?}"
        );
    }

    #[test]
    fn a_missing_replica_is_critical_and_listed_first() {
        let mut facts = healthy();
        facts.resources[0].replica = Some(Observed::Missing);
        facts.resources[1].primary = Observed::Unknown {
            reason: "endpoint unreachable".into(),
        };
        let findings = assess(&plan(), &facts);
        assert_eq!(findings[0].concern, Concern::Critical);
        assert!(
            findings[0]
                .problem
                .contains("failover has nothing to promote")
        );
        assert_eq!(findings[1].concern, Concern::Warning);
    }

    #[test]
    fn a_record_pointing_at_the_promoted_replica_reads_as_dr() {
        let mut facts = healthy();
        facts.resources[0].record = Some(Observed::Present(RecordFacts {
            name: "orders-db.db.lifeboat.internal.".into(),
            values: vec![("ORDERS-DB-DR.usw2.example.".into(), None)],
        }));
        assert_eq!(record_target(&facts.resources[0]), Some(RecordTarget::Dr));
        facts.resources[0].record = Some(Observed::Present(RecordFacts {
            name: "orders-db.db.lifeboat.internal.".into(),
            values: vec![("elsewhere.example".into(), None)],
        }));
        let findings = assess(&plan(), &facts);
        assert!(
            findings
                .iter()
                .any(|f| f.problem.contains("neither the primary nor the DR"))
        );
    }

    #[test]
    fn unencrypted_storage_is_a_warning() {
        let mut facts = healthy();
        if let Observed::Present(p) = &mut facts.resources[1].primary {
            p.encrypted = false;
        }
        let findings = assess(&plan(), &facts);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].subject, "billing-db");
        assert!(render(&plan(), &facts).contains("NOT encrypted"));
    }

    #[test]
    fn a_table_without_point_in_time_recovery_is_flagged_with_its_fix() {
        let mut facts = healthy();
        let mut table = db("lifeboat-local-sessions", "us-east-1", "", None);
        table.point_in_time_recovery = Some(false);
        facts.resources.push(ResourceFacts {
            id: "sessions".into(),
            primary: Observed::Present(table.clone()),
            replica: None,
            record: None,
        });
        let findings = assess(&plan(), &facts);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].subject, "sessions");
        assert!(
            findings[0]
                .problem
                .contains("point-in-time recovery is off")
        );
        assert!(findings[0].fix.contains("UpdateContinuousBackups"));
        table.point_in_time_recovery = Some(true);
        facts.resources[2].primary = Observed::Present(table);
        assert!(assess(&plan(), &facts).is_empty());
    }
}
