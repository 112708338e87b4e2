//! Plan validation: every rule a parsed plan must satisfy, each broken rule reported with
//! its field and its fix. All rules are checked, so one run shows every problem.

use super::*;
use crate::validation::checks::Dialect;
use crate::validation::statement::read_only_query;
use std::collections::{BTreeMap, HashSet};

const MAX_DAILY: u32 = 3660;
const MAX_WEEKLY: u32 = 520;
const MAX_MONTHLY: u32 = 240;
const MAX_YEARLY: u32 = 100;
const MAX_MIN_KEEP: u32 = 1000;
/// AWS's limit on cross-region snapshot copies in progress into one region.
const AWS_MAX_CONCURRENT_COPIES: u32 = 20;

struct Issues(Vec<PlanIssue>);

impl Issues {
    fn add(
        &mut self,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(PlanIssue {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }
}

/// Check every rule; `Ok` only when none is broken.
pub(super) fn validate(plan: &Plan) -> Result<(), PlanError> {
    let mut issues = Issues(Vec::new());
    check_name(plan, &mut issues);
    check_regions(plan, &mut issues);
    check_resources(plan, &mut issues);
    check_snapshots(plan, &mut issues);
    check_retention(plan, &mut issues);
    check_quotas(plan, &mut issues);
    check_validation_settings(plan, &mut issues);
    check_dns(plan, &mut issues);
    check_failover(plan, &mut issues);
    check_failback(plan, &mut issues);
    check_documentation(plan, &mut issues);
    check_game_days(plan, &mut issues);
    if issues.0.is_empty() {
        Ok(())
    } else {
        Err(PlanError::Invalid(issues.0))
    }
}

/// `a-z`, digits and single hyphens, starting with a letter, not ending with a hyphen.
pub(crate) fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An RDS DB instance or cluster identifier: 1 to 63 letters, digits or hyphens, first a
/// letter, no two consecutive hyphens, no trailing hyphen (RDS's own rules).
pub(crate) fn is_rds_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A DynamoDB table name: 3 to 255 of `a-z A-Z 0-9 _ - .`.
pub(crate) fn is_table_name(s: &str) -> bool {
    (3..=255).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// An AWS region name such as `us-east-1` or `us-gov-west-1`.
pub(crate) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// A DNS name of letters, digits, hyphens and underscores in labels of at most 63
/// characters, 253 in all; a trailing dot is allowed.
pub(crate) fn is_dns_name(s: &str) -> bool {
    let name = s.strip_suffix('.').unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Lowercase, with a trailing dot: the form Route 53 returns names in.
pub fn normalize_dns_name(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// A SQL identifier Lifeboat will quote: a letter or underscore, then letters, digits or
/// underscores, at most 63 characters (PostgreSQL's limit; MySQL allows 64).
pub fn is_sql_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A dotted path of `min..=max` SQL identifiers, e.g. `schema.table.column`.
fn is_sql_path(s: &str, min: usize, max: usize) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    (min..=max).contains(&parts.len()) && parts.iter().all(|p| is_sql_identifier(p))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !s.contains("..")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

fn check_name(plan: &Plan, issues: &mut Issues) {
    if !is_slug(&plan.name, 40) {
        issues.add(
            "name",
            format!("{:?} is not a valid plan name", plan.name),
            "use 1 to 40 lowercase letters, digits and single hyphens, starting with a letter",
        );
    }
}

fn check_regions(plan: &Plan, issues: &mut Issues) {
    for (field, region) in [
        ("regions.primary", &plan.regions.primary),
        ("regions.dr", &plan.regions.dr),
    ] {
        if !is_region(region) {
            issues.add(
                field,
                format!("{region:?} is not an AWS region name"),
                "use a region such as \"us-east-1\"",
            );
        }
    }
    for (field, region) in [
        ("regions.primary", &plan.regions.primary),
        ("regions.dr", &plan.regions.dr),
    ] {
        if region.starts_with("us-gov-") || region.starts_with("cn-") {
            issues.add(
                field,
                format!("{region} is in a partition Lifeboat does not support (cross-region copies there need presigned URLs the Rust SDK does not generate)"),
                "use regions of the commercial aws partition",
            );
        }
    }
    if plan.regions.primary == plan.regions.dr {
        issues.add(
            "regions.dr",
            format!(
                "the DR region is the primary region ({}); a regional disaster would take both",
                plan.regions.dr
            ),
            "choose a DR region other than the primary region",
        );
    }
}

fn check_resources(plan: &Plan, issues: &mut Issues) {
    if plan.resources.is_empty() {
        issues.add(
            "resources",
            "the plan protects nothing",
            "list at least one RDS instance, Aurora cluster or DynamoDB table",
        );
    }
    let mut ids = HashSet::new();
    let mut aws_ids = HashSet::new();
    let mut records = HashSet::new();
    for (i, r) in plan.resources.iter().enumerate() {
        let at = |f: &str| format!("resources[{i}].{f}");
        if !is_slug(&r.id, 40) {
            issues.add(
                at("id"),
                format!("{:?} is not a valid resource id", r.id),
                "use 1 to 40 lowercase letters, digits and single hyphens, starting with a letter",
            );
        }
        if !ids.insert(r.id.as_str()) {
            issues.add(
                at("id"),
                format!("resource id {:?} appears more than once", r.id),
                "give every resource its own id",
            );
        }
        let ident = r.aws_identifier();
        let ident_ok = match r.kind {
            ResourceKind::RdsInstance | ResourceKind::AuroraCluster => is_rds_identifier(ident),
            ResourceKind::DynamodbTable => is_table_name(ident),
        };
        if !ident_ok {
            issues.add(
                at("identifier"),
                format!("{ident:?} is not a valid {} identifier", r.kind),
                match r.kind {
                    ResourceKind::DynamodbTable => "use 3 to 255 letters, digits, '_', '-' or '.'",
                    _ => "use 1 to 63 letters, digits and single hyphens, starting with a letter",
                },
            );
        }
        // By AWS's rule: `Orders-DB` and `orders-db` are one instance, `Orders` and
        // `orders` two tables.
        if !aws_ids.insert((r.kind, r.identifier_rule().canonical(ident).into_owned())) {
            issues.add(
                at("identifier"),
                format!("{} {ident:?} is protected twice", r.kind),
                "protect each AWS resource once",
            );
        }
        check_engine(r, &at, issues);
        check_objectives(plan, r, &at, issues);
        check_replica(r, &at, issues);
        if let Some(record) = &r.dns_record {
            if !is_dns_name(record) {
                issues.add(
                    at("dns_record"),
                    format!("{record:?} is not a DNS name"),
                    "use a name such as \"orders-db.db.example.internal.\"",
                );
            } else if !records.insert(normalize_dns_name(record)) {
                issues.add(
                    at("dns_record"),
                    format!("{record:?} is used by two resources"),
                    "give each resource its own record",
                );
            }
            if r.replica.is_none() {
                issues.add(
                    at("dns_record"),
                    "the resource has a DNS record but no replica, so failover has nothing to point it at",
                    "add `replica`, or remove `dns_record`",
                );
            }
        }
        if let Some(validation) = &r.validation {
            check_resource_validation(r, validation, &at, issues);
        }
    }
}

fn check_engine(r: &ProtectedResource, at: &dyn Fn(&str) -> String, issues: &mut Issues) {
    match (r.kind, r.engine) {
        (ResourceKind::DynamodbTable, Some(engine)) => issues.add(
            at("engine"),
            format!("a DynamoDB table has no engine, but {engine} is given"),
            "remove `engine`",
        ),
        (ResourceKind::DynamodbTable, None) => {}
        (kind, None) => issues.add(
            at("engine"),
            format!("a {kind} needs its engine"),
            match kind {
                ResourceKind::AuroraCluster => "set \"aurora-postgresql\" or \"aurora-mysql\"",
                _ => "set \"postgres\", \"mysql\" or \"mariadb\"",
            },
        ),
        (ResourceKind::RdsInstance, Some(engine)) if engine.is_aurora() => issues.add(
            at("engine"),
            format!("{engine} runs in an Aurora cluster, not an RDS instance"),
            "use kind \"aurora_cluster\", or engine \"postgres\", \"mysql\" or \"mariadb\"",
        ),
        (ResourceKind::AuroraCluster, Some(engine)) if !engine.is_aurora() => issues.add(
            at("engine"),
            format!("{engine} is not an Aurora engine"),
            "use \"aurora-postgresql\" or \"aurora-mysql\", or kind \"rds_instance\"",
        ),
        _ => {}
    }
}

fn check_objectives(
    plan: &Plan,
    r: &ProtectedResource,
    at: &dyn Fn(&str) -> String,
    issues: &mut Issues,
) {
    if r.rto_minutes == 0 {
        issues.add(
            at("rto_minutes"),
            "an RTO of zero cannot be met by any recovery",
            "set the minutes the business accepts recovery to take (at least 1)",
        );
    }
    let interval = r.interval_minutes(&plan.snapshots);
    if let Some(own) = r.snapshot_interval_minutes
        && !is_valid_interval(own)
    {
        issues.add(
            at("snapshot_interval_minutes"),
            format!("{own} is not a usable snapshot interval"),
            INTERVAL_FIX,
        );
    }
    if r.replica.is_none() {
        if r.rpo_minutes == 0 {
            issues.add(
                at("rpo_minutes"),
                "an RPO of zero needs a continuously replicated standby, and the resource has no replica",
                "add `replica`, or set the RPO to at least the snapshot interval",
            );
        } else if r.rpo_minutes < interval {
            issues.add(
                at("rpo_minutes"),
                format!(
                    "the RPO is {} minutes but snapshots are taken every {interval} minutes and there is no replica, so the RPO cannot be met",
                    r.rpo_minutes
                ),
                "add `replica`, lower `snapshot_interval_minutes`, or raise the RPO",
            );
        }
    }
}

fn check_replica(r: &ProtectedResource, at: &dyn Fn(&str) -> String, issues: &mut Issues) {
    let Some(replica) = &r.replica else { return };
    match r.kind {
        ResourceKind::DynamodbTable => issues.add(
            at("replica"),
            "DynamoDB tables are not failed over by replica promotion",
            "remove `replica` (use a global table outside Lifeboat for active-active)",
        ),
        ResourceKind::RdsInstance => {
            if replica.global_cluster.is_some() {
                issues.add(
                    at("replica.global_cluster"),
                    "an RDS instance's replica is a read replica, not a global cluster member",
                    "remove `global_cluster`",
                );
            }
        }
        ResourceKind::AuroraCluster => match &replica.global_cluster {
            None => issues.add(
                at("replica.global_cluster"),
                "an Aurora cluster fails over through its global database, which is not named",
                "set `global_cluster` to the global cluster id",
            ),
            Some(global) if !is_rds_identifier(global) => issues.add(
                at("replica.global_cluster"),
                format!("{global:?} is not a valid global cluster id"),
                "use 1 to 63 letters, digits and single hyphens, starting with a letter",
            ),
            Some(_) => {}
        },
    }
    if !is_rds_identifier(&replica.identifier) {
        issues.add(
            at("replica.identifier"),
            format!("{:?} is not a valid RDS identifier", replica.identifier),
            "use 1 to 63 letters, digits and single hyphens, starting with a letter",
        );
    }
}

fn check_resource_validation(
    r: &ProtectedResource,
    v: &ResourceValidation,
    at: &dyn Fn(&str) -> String,
    issues: &mut Issues,
) {
    if r.kind == ResourceKind::DynamodbTable {
        issues.add(
            at("validation"),
            "restore validation runs SQL checks, which a DynamoDB table cannot answer",
            "remove `validation` from the table",
        );
        return;
    }
    if !is_sql_identifier(&v.database) {
        issues.add(
            at("validation.database"),
            format!("{:?} is not a plain SQL identifier", v.database),
            "use letters, digits and underscores, starting with a letter or underscore",
        );
    }
    if v.credentials_secret.trim().is_empty() {
        issues.add(
            at("validation.credentials_secret"),
            "no secret is named",
            "name the Secrets Manager secret holding the database's username and password",
        );
    }
    for (j, t) in v.tables.iter().enumerate() {
        if !is_sql_path(&t.name, 1, 2) {
            issues.add(
                at(&format!("validation.tables[{j}].name")),
                format!("{:?} is not a table name Lifeboat can quote safely", t.name),
                "use `table` or `schema.table` of letters, digits and underscores",
            );
        }
    }
    for (j, fk) in v.foreign_keys.iter().enumerate() {
        for (side, value) in [("from", &fk.from), ("to", &fk.to)] {
            if !is_sql_path(value, 2, 3) {
                issues.add(
                    at(&format!("validation.foreign_keys[{j}].{side}")),
                    format!("{value:?} is not a column Lifeboat can quote safely"),
                    "use `table.column` or `schema.table.column` of letters, digits and underscores",
                );
            }
        }
    }
    let mut names = HashSet::new();
    for (j, a) in v.assertions.iter().enumerate() {
        if a.name.trim().is_empty() || !names.insert(a.name.as_str()) {
            issues.add(
                at(&format!("validation.assertions[{j}].name")),
                "assertion names must be present and distinct",
                "give every assertion its own name",
            );
        }
        // Parsed as the engine's server reads it; without an engine (reported on its
        // own) as both, so nothing either would run is let through.
        let dialects: &[Dialect] = match r.engine {
            Some(e) if e.is_postgres_family() => &[Dialect::Postgres],
            Some(_) => &[Dialect::Mysql],
            None => &[Dialect::Postgres, Dialect::Mysql],
        };
        for dialect in dialects {
            if let Err(why) = read_only_query(*dialect, &a.sql) {
                issues.add(
                    at(&format!("validation.assertions[{j}].sql")),
                    format!("assertion {:?} is not one read-only query: {why}", a.name),
                    why.fix(),
                );
                break;
            }
        }
    }
}

const INTERVAL_FIX: &str = "use 15 to 10080 minutes that divide a day (15, 20, 30, 60, 120, 240, 360, 480, 720) or are whole days (1440, 2880, ...)";

/// Windows are aligned to midnight UTC, so an interval must divide a day or be whole days.
pub(crate) fn is_valid_interval(minutes: u32) -> bool {
    (15..=10080).contains(&minutes)
        && (1440_u32.is_multiple_of(minutes) || minutes.is_multiple_of(1440))
}

fn check_snapshots(plan: &Plan, issues: &mut Issues) {
    let s = &plan.snapshots;
    if !is_valid_interval(s.interval_minutes) {
        issues.add(
            "snapshots.interval_minutes",
            format!("{} is not a usable snapshot interval", s.interval_minutes),
            INTERVAL_FIX,
        );
    }
    if !(1..=28).contains(&s.tiers.monthly_on_day) {
        issues.add(
            "snapshots.tiers.monthly_on_day",
            format!("{} is not a day every month has", s.tiers.monthly_on_day),
            "use a day from 1 to 28",
        );
    }
    if !(1..=12).contains(&s.tiers.yearly_in_month) {
        issues.add(
            "snapshots.tiers.yearly_in_month",
            format!("{} is not a month", s.tiers.yearly_in_month),
            "use a month from 1 to 12",
        );
    }
    if s.copy_to.is_empty() {
        issues.add(
            "snapshots.copy_to",
            "no copy destination: the snapshots would be lost with the primary region",
            format!(
                "add a destination in the DR region, e.g. {{\"region\": \"{}\", \"kms_key_id\": \"alias/lifeboat-dr\"}}",
                plan.regions.dr
            ),
        );
    } else if !s
        .copy_to
        .iter()
        .any(|d| d.region == plan.regions.dr && d.account_id.is_none())
    {
        issues.add(
            "snapshots.copy_to",
            format!(
                "no destination is the DR region ({}) in this account, so a failover would find no copies there",
                plan.regions.dr
            ),
            "add a destination in the DR region without `account_id`",
        );
    }
    let mut keys = HashSet::new();
    for (i, d) in s.copy_to.iter().enumerate() {
        let at = |f: &str| format!("snapshots.copy_to[{i}].{f}");
        if !is_region(&d.region) {
            issues.add(
                at("region"),
                format!("{:?} is not an AWS region name", d.region),
                "use a region such as \"us-west-2\"",
            );
        }
        if d.region == plan.regions.primary && d.account_id.is_none() {
            issues.add(
                at("region"),
                "a copy into the primary region of the same account does not survive a regional disaster",
                "copy to another region, or to another account",
            );
        }
        if !keys.insert(d.key()) {
            issues.add(
                at("region"),
                format!("destination {} is listed twice", d.key()),
                "list each destination once",
            );
        }
        check_kms_key(&d.kms_key_id, &d.region, &at("kms_key_id"), issues);
        if let Some(account) = &d.account_id
            && !is_account_id(account)
        {
            issues.add(
                at("account_id"),
                format!("{account:?} is not a 12-digit AWS account id"),
                "use the destination account's 12-digit id",
            );
        }
        match (&d.account_id, &d.role_arn) {
            (Some(_), None) => issues.add(
                at("role_arn"),
                "a copy into another account needs a role to assume there",
                "set `role_arn` to a role in that account that Lifeboat may assume",
            ),
            (None, Some(_)) => issues.add(
                at("role_arn"),
                "a role is given without `account_id`",
                "set `account_id`, or remove `role_arn`",
            ),
            (Some(account), Some(role))
                if !role.starts_with("arn:aws") || !role.contains(&format!(":{account}:role/")) =>
            {
                issues.add(
                    at("role_arn"),
                    format!("{role:?} is not a role ARN in account {account}"),
                    format!("use arn:aws:iam::{account}:role/NAME"),
                )
            }
            _ => {}
        }
    }
    let has_table = plan
        .resources
        .iter()
        .any(|r| r.kind == ResourceKind::DynamodbTable);
    match &s.dynamodb_export_bucket {
        None if has_table => issues.add(
            "snapshots.dynamodb_export_bucket",
            "the plan protects a DynamoDB table, whose backups cannot be copied across regions",
            "name an S3 bucket in the DR region to receive table exports",
        ),
        Some(bucket) if !is_bucket_name(bucket) => issues.add(
            "snapshots.dynamodb_export_bucket",
            format!("{bucket:?} is not a valid S3 bucket name"),
            "use 3 to 63 lowercase letters, digits, hyphens and dots",
        ),
        _ => {}
    }
}

fn check_kms_key(key: &str, region: &str, field: &str, issues: &mut Issues) {
    if key.trim().is_empty() {
        issues.add(
            field,
            "no KMS key is named",
            "name a KMS key in the destination region (ARN, key id, or alias/NAME)",
        );
        return;
    }
    if let Some(rest) = key.strip_prefix("arn:aws:kms:") {
        let key_region = rest.split(':').next().unwrap_or("");
        if key_region != region {
            issues.add(
                field,
                format!("the key is in {key_region}, but copies go to {region}; a KMS key only encrypts in its own region"),
                format!("name a key in {region}"),
            );
        }
    } else if key.starts_with("arn:") {
        issues.add(
            field,
            format!("{key:?} is not a KMS key ARN"),
            "use arn:aws:kms:REGION:ACCOUNT:key/ID, a key id, or alias/NAME",
        );
    }
}

fn check_retention(plan: &Plan, issues: &mut Issues) {
    for (name, p) in [
        ("retention.primary", &plan.retention.primary),
        ("retention.dr", &plan.retention.dr),
    ] {
        for (field, value, max) in [
            ("keep_daily", p.keep_daily, MAX_DAILY),
            ("keep_weekly", p.keep_weekly, MAX_WEEKLY),
            ("keep_monthly", p.keep_monthly, MAX_MONTHLY),
            ("keep_yearly", p.keep_yearly, MAX_YEARLY),
            ("min_keep", p.min_keep, MAX_MIN_KEEP),
        ] {
            if value > max {
                issues.add(
                    format!("{name}.{field}"),
                    format!("{value} is more than Lifeboat allows ({max})"),
                    format!("use at most {max}; archive to S3 for longer retention"),
                );
            }
        }
        // Compared one by one: a sum could overflow on out-of-range counts.
        if [
            p.keep_daily,
            p.keep_weekly,
            p.keep_monthly,
            p.keep_yearly,
            p.min_keep,
        ]
        .iter()
        .all(|&count| count == 0)
        {
            issues.add(
                name,
                "every count is zero, so retention would delete all but the newest snapshot",
                "set at least one of keep_daily, keep_weekly, keep_monthly, keep_yearly or min_keep",
            );
        }
    }
    for (i, r) in plan.resources.iter().enumerate() {
        if let Some(own) = &r.retention {
            for (field, value) in [
                ("primary_min_keep", own.primary_min_keep),
                ("dr_min_keep", own.dr_min_keep),
            ] {
                if let Some(v) = value
                    && v > MAX_MIN_KEEP
                {
                    issues.add(
                        format!("resources[{i}].retention.{field}"),
                        format!("{v} is more than Lifeboat allows ({MAX_MIN_KEEP})"),
                        format!("use at most {MAX_MIN_KEEP}"),
                    );
                }
            }
        }
    }
    if !(1..=1000).contains(&plan.retention.max_deletes_per_run) {
        issues.add(
            "retention.max_deletes_per_run",
            format!("{} is outside 1..=1000", plan.retention.max_deletes_per_run),
            "use a cap from 1 to 1000 (the rest is deleted by the next run)",
        );
    }
    if !(1..=10).contains(&plan.retention.deletes_per_second) {
        issues.add(
            "retention.deletes_per_second",
            format!("{} is outside 1..=10", plan.retention.deletes_per_second),
            "use 1 to 10, well under the RDS API's sustained rate",
        );
    }
    if let Some(archive) = &plan.retention.archive {
        check_archive(plan, archive, issues);
    }
}

fn check_archive(plan: &Plan, a: &ArchiveSettings, issues: &mut Issues) {
    if !is_bucket_name(&a.bucket) {
        issues.add(
            "retention.archive.bucket",
            format!("{:?} is not a valid S3 bucket name", a.bucket),
            "use 3 to 63 lowercase letters, digits, hyphens and dots",
        );
    }
    // RDS writes the export objects under this prefix; it is joined with `/`-separated
    // names, so it must be a relative key prefix.
    if a.prefix.starts_with('/') || a.prefix.len() > 200 {
        issues.add(
            "retention.archive.prefix",
            format!("{:?} is not a usable S3 key prefix", a.prefix),
            "use a relative prefix such as `archive/`, at most 200 characters",
        );
    }
    if !a.iam_role_arn.starts_with("arn:aws") || !a.iam_role_arn.contains(":role/") {
        issues.add(
            "retention.archive.iam_role_arn",
            format!("{:?} is not an IAM role ARN", a.iam_role_arn),
            "name the role RDS assumes to write the exports (arn:aws:iam::ACCOUNT:role/NAME)",
        );
    }
    check_kms_key(
        &a.kms_key_id,
        &plan.regions.dr,
        "retention.archive.kms_key_id",
        issues,
    );
    if !plan
        .snapshots
        .copy_to
        .iter()
        .any(|d| d.key() == plan.regions.dr)
    {
        issues.add(
            "retention.archive",
            format!(
                "the archive exports the copies in the DR region {}, but no copy destination is that region in this account",
                plan.regions.dr
            ),
            "add the DR region to `snapshots.copy_to`, or remove `archive`",
        );
    }
    if a.tiers.is_empty() {
        issues.add(
            "retention.archive.tiers",
            "no tier is archived, so the archive would never receive anything",
            "list the tiers to archive (e.g. [\"monthly\", \"yearly\"]), or remove `archive`",
        );
    }
}

/// Snapshots of one kind a region may hold at most under the plan, per quota.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuotaUsage {
    /// Upper bound of manual DB instance snapshots kept in the region.
    pub db_snapshots: u32,
    /// Upper bound of manual DB cluster snapshots kept in the region.
    pub cluster_snapshots: u32,
}

/// The most snapshots one resource can hold in a region under `policy`, as the retention
/// planner (`crate::retention`) keeps them: what the buckets and `min_keep` keep, plus the
/// newest validated snapshot (kept even outside every bucket) and the snapshot of the
/// current window taken before the next retention run. Legal holds, snapshots without
/// Lifeboat's tags and copies still in progress are outside this bound.
///
/// The buckets and `min_keep` add up rather than overlap: `min_keep` keeps the newest
/// snapshots, which may all fall in one day, while the buckets reach back one per period.
/// Both always share the newest snapshot, so together they keep at most
/// `buckets + min_keep - 1`; with every count zero the newest is still kept.
pub(crate) fn max_kept(policy: &RetentionPolicy, min_keep: u32) -> u32 {
    // Saturating: the quota check runs even on a plan whose counts are out of range.
    let buckets = policy
        .keep_daily
        .saturating_add(policy.keep_weekly)
        .saturating_add(policy.keep_monthly)
        .saturating_add(policy.keep_yearly);
    let by_rules = match (buckets, min_keep) {
        (0, m) => m.max(1),
        (b, 0) => b,
        (b, m) => b.saturating_add(m - 1),
    };
    by_rules.saturating_add(2)
}

/// Upper bound of manual snapshots the plan keeps in each region it writes to (the primary
/// region and every copy destination), by region.
pub fn quota_usage(plan: &Plan) -> BTreeMap<String, QuotaUsage> {
    let mut usage: BTreeMap<String, QuotaUsage> = BTreeMap::new();
    let mut regions = vec![(plan.regions.primary.clone(), true)];
    for d in &plan.snapshots.copy_to {
        regions.push((d.key(), false));
    }
    for (region, is_primary) in regions {
        let policy = if is_primary {
            &plan.retention.primary
        } else {
            &plan.retention.dr
        };
        let entry = usage.entry(region).or_default();
        for r in &plan.resources {
            let min_keep = r
                .retention
                .and_then(|o| {
                    if is_primary {
                        o.primary_min_keep
                    } else {
                        o.dr_min_keep
                    }
                })
                .unwrap_or(policy.min_keep);
            let bound = max_kept(policy, min_keep);
            match r.kind {
                ResourceKind::RdsInstance => {
                    entry.db_snapshots = entry.db_snapshots.saturating_add(bound)
                }
                ResourceKind::AuroraCluster => {
                    entry.cluster_snapshots = entry.cluster_snapshots.saturating_add(bound)
                }
                // DynamoDB backups have no per-region count quota.
                ResourceKind::DynamodbTable => {}
            }
        }
    }
    usage
}

fn check_quotas(plan: &Plan, issues: &mut Issues) {
    let q = &plan.quotas;
    if !(1..=AWS_MAX_CONCURRENT_COPIES).contains(&q.concurrent_copies_per_region) {
        issues.add(
            "quotas.concurrent_copies_per_region",
            format!(
                "{} is outside 1..={AWS_MAX_CONCURRENT_COPIES}; AWS allows at most {AWS_MAX_CONCURRENT_COPIES} copies in progress into a region",
                q.concurrent_copies_per_region
            ),
            format!("use 1 to {AWS_MAX_CONCURRENT_COPIES}"),
        );
    }
    for (field, value) in [
        (
            "manual_db_snapshots_per_region",
            q.manual_db_snapshots_per_region,
        ),
        (
            "manual_cluster_snapshots_per_region",
            q.manual_cluster_snapshots_per_region,
        ),
    ] {
        if value == 0 {
            issues.add(
                format!("quotas.{field}"),
                "a quota of zero leaves no room for any snapshot",
                "use the account's quota (AWS default 100)",
            );
        }
    }
    for (region, used) in quota_usage(plan) {
        for (what, field, used, quota) in [
            (
                "DB snapshots",
                "manual_db_snapshots_per_region",
                used.db_snapshots,
                q.manual_db_snapshots_per_region,
            ),
            (
                "DB cluster snapshots",
                "manual_cluster_snapshots_per_region",
                used.cluster_snapshots,
                q.manual_cluster_snapshots_per_region,
            ),
        ] {
            if used > quota {
                issues.add(
                    format!("quotas.{field}"),
                    format!(
                        "the retention policy can keep up to {used} manual {what} in {region}, over the quota of {quota}"
                    ),
                    "lower the keep_* counts or min_keep, or raise the quota with AWS and here",
                );
            }
        }
    }
}

fn check_validation_settings(plan: &Plan, issues: &mut Issues) {
    let v = &plan.validation;
    if !(1..=8760).contains(&v.interval_hours) {
        issues.add(
            "validation.interval_hours",
            format!("{} is outside 1..=8760", v.interval_hours),
            "validate every 1 to 8760 hours (a year)",
        );
    }
    if !(10..=720).contains(&v.timeout_minutes) {
        issues.add(
            "validation.timeout_minutes",
            format!("{} is outside 10..=720", v.timeout_minutes),
            "allow 10 to 720 minutes; restores take many minutes",
        );
    }
    let longest = crate::budget::MAX_STATEMENT_TIMEOUT_SECONDS;
    if !(1..=longest).contains(&v.statement_timeout_seconds) {
        issues.add(
            "validation.statement_timeout_seconds",
            format!("{} is outside 1..={longest}", v.statement_timeout_seconds),
            format!(
                "use 1 to {longest} seconds: each check must answer within one step of the \
                 validation; make a slow check cheaper (an index, a smaller range, \
                 count on a sample) or split it into several checks"
            ),
        );
    }
    if !v.instance_class.starts_with("db.") || v.instance_class.len() < 5 {
        issues.add(
            "validation.instance_class",
            format!("{:?} is not an RDS instance class", v.instance_class),
            "use a class such as \"db.t4g.micro\"",
        );
    }
    if let Some(group) = &v.subnet_group
        && (group.is_empty() || group.len() > 255)
    {
        issues.add(
            "validation.subnet_group",
            "the subnet group name is empty or too long",
            "name an existing DB subnet group",
        );
    }
    for (i, sg) in v.security_group_ids.iter().enumerate() {
        if !sg.starts_with("sg-") {
            issues.add(
                format!("validation.security_group_ids[{i}]"),
                format!("{sg:?} is not a security group id"),
                "use ids such as \"sg-0123456789abcdef0\"",
            );
        }
    }
}

fn check_dns(plan: &Plan, issues: &mut Issues) {
    let d = &plan.dns;
    match (&d.hosted_zone_id, &d.hosted_zone_name) {
        (None, None) | (Some(_), Some(_)) => issues.add(
            "dns",
            "exactly one of `hosted_zone_id` and `hosted_zone_name` must be given",
            "name the zone by id (\"Z...\") or by name (\"example.internal.\")",
        ),
        (Some(id), None) => {
            let bare = id.strip_prefix("/hostedzone/").unwrap_or(id);
            if bare.len() < 2
                || bare.len() > 32
                || !bare
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                issues.add(
                    "dns.hosted_zone_id",
                    format!("{id:?} is not a Route 53 hosted zone id"),
                    "use the zone's id, such as \"Z0123456789ABCDEFGHIJ\"",
                );
            }
        }
        (None, Some(name)) => {
            if !is_dns_name(name) {
                issues.add(
                    "dns.hosted_zone_name",
                    format!("{name:?} is not a DNS name"),
                    "use the zone's name, such as \"example.internal.\"",
                );
            }
        }
    }
    if !(1..=86400).contains(&d.record_ttl_seconds) {
        issues.add(
            "dns.record_ttl_seconds",
            format!("{} is outside 1..=86400", d.record_ttl_seconds),
            "use a short TTL such as 60: clients keep the old answer this long after a switch",
        );
    }
    if let Some(zone) = &d.hosted_zone_name {
        let zone = normalize_dns_name(zone);
        let mut names: Vec<(String, &String)> = Vec::new();
        for (i, r) in plan.resources.iter().enumerate() {
            if let Some(record) = &r.dns_record {
                names.push((format!("resources[{i}].dns_record"), record));
            }
        }
        for (i, t) in plan.failback.traffic.iter().enumerate() {
            names.push((format!("failback.traffic[{i}].name"), &t.name));
        }
        for (field, name) in names {
            let name = normalize_dns_name(name);
            if name != zone && !name.ends_with(&format!(".{zone}")) {
                issues.add(
                    field,
                    format!("{name} is not in the zone {zone}"),
                    "use a name inside the plan's hosted zone",
                );
            }
        }
    }
}

fn check_alarms(plan: &Plan, field: &str, alarms: &[AlarmRef], issues: &mut Issues) {
    let mut seen = HashSet::new();
    for (i, a) in alarms.iter().enumerate() {
        if a.name.trim().is_empty() || a.name.len() > 255 {
            issues.add(
                format!("{field}[{i}].name"),
                "an alarm name must have 1 to 255 characters",
                "use the CloudWatch alarm's name",
            );
        }
        if let Some(region) = &a.region
            && !is_region(region)
        {
            issues.add(
                format!("{field}[{i}].region"),
                format!("{region:?} is not an AWS region name"),
                "use a region such as \"us-east-1\"",
            );
        }
        if !seen.insert((a.name.as_str(), plan.alarm_region(a))) {
            issues.add(
                format!("{field}[{i}]"),
                format!("alarm {:?} is listed twice", a.name),
                "list each alarm once",
            );
        }
    }
}

fn check_failover(plan: &Plan, issues: &mut Issues) {
    let f = &plan.failover;
    let replicated: Vec<&ProtectedResource> = plan
        .resources
        .iter()
        .filter(|r| r.replica.is_some())
        .collect();
    if !replicated.is_empty() && f.health_alarms.is_empty() {
        issues.add(
            "failover.health_alarms",
            "resources have replicas, but no alarm can start a failover",
            "list the CloudWatch alarms that say the primary is down",
        );
    }
    check_alarms(plan, "failover.health_alarms", &f.health_alarms, issues);
    if f.max_replica_lag_seconds == 0 {
        issues.add(
            "failover.max_replica_lag_seconds",
            "a maximum lag of zero refuses every automatic failover (replicas always lag a little)",
            "set the data loss, in seconds, an automatic failover may accept",
        );
    }
    for r in &replicated {
        if r.rpo_minutes > 0 && f.max_replica_lag_seconds > r.rpo_minutes * 60 {
            issues.add(
                "failover.max_replica_lag_seconds",
                format!(
                    "{} s of lag exceeds the {}-minute RPO of {}: an automatic failover could lose more data than the RPO allows",
                    f.max_replica_lag_seconds, r.rpo_minutes, r.id
                ),
                format!("set it to at most {} s, or raise the RPO", r.rpo_minutes * 60),
            );
        }
    }
    if f.cooldown_minutes > 10080 {
        issues.add(
            "failover.cooldown_minutes",
            format!("{} minutes is more than a week", f.cooldown_minutes),
            "use at most 10080 minutes",
        );
    }
    check_detection(plan, issues);
}

fn check_detection(plan: &Plan, issues: &mut Issues) {
    let d = &plan.failover.detection;
    let mut seen = HashSet::new();
    for (i, s) in d.signals.iter().enumerate() {
        let at = |f: &str| format!("failover.detection.signals[{i}]{f}");
        if !seen.insert(s) {
            issues.add(
                at(""),
                "the signal is listed twice",
                "list each signal once",
            );
        }
        if let SignalSpec::EndpointProbe {
            host,
            port,
            timeout_seconds,
        } = s
        {
            if !is_dns_name(host) && host.parse::<std::net::IpAddr>().is_err() {
                issues.add(
                    at(".host"),
                    format!("{host:?} is neither a host name nor an IP address"),
                    "give the primary endpoint's host name, e.g. orders-db.abc123.us-east-1.rds.amazonaws.com",
                );
            }
            if *port == 0 {
                issues.add(
                    at(".port"),
                    "port 0 is not a port",
                    "give the database's port, e.g. 5432",
                );
            }
            if !(1..=10).contains(timeout_seconds) {
                issues.add(
                    at(".timeout_seconds"),
                    format!("{timeout_seconds} s is outside 1 to 10 s"),
                    "use a short timeout (1 to 10 s): the probe runs while the failover waits",
                );
            }
        }
    }
    let signals = signal_count(plan);
    if d.quorum == 0 {
        issues.add(
            "failover.detection.quorum",
            "a quorum of zero would fail over with no signal saying the primary is down",
            "set how many signals must agree (default 2)",
        );
    } else if d.quorum as usize > signals {
        issues.add(
            "failover.detection.quorum",
            format!(
                "a quorum of {} can never be reached: the plan has {signals} confirming signal(s) ({} health alarm(s) and {} in failover.detection.signals)",
                d.quorum,
                plan.failover.health_alarms.len(),
                d.signals.len()
            ),
            format!("set the quorum to at most {signals}, or add signals"),
        );
    }
    if !(1..=60).contains(&d.window_minutes) {
        issues.add(
            "failover.detection.window_minutes",
            format!("{} minutes is outside 1 to 60", d.window_minutes),
            "give the minutes an unconfirmed failover may wait for its quorum (default 5)",
        );
    }
    if !(1..=30).contains(&d.primary_api_timeout_seconds) {
        issues.add(
            "failover.detection.primary_api_timeout_seconds",
            format!("{} s is outside 1 to 30 s", d.primary_api_timeout_seconds),
            "use a short budget (default 3 s): a region that does not answer must not hold the failover",
        );
    }
}

/// How many signals may vote: every health alarm and every listed signal.
fn signal_count(plan: &Plan) -> usize {
    plan.failover.health_alarms.len() + plan.failover.detection.signals.len()
}

/// What the plan allows but an operator would want to know: each warning names the field
/// and the fix, like an issue, but the plan loads.
pub fn warnings(plan: &Plan) -> Vec<PlanIssue> {
    let mut out = Issues(Vec::new());
    if plan.resources.iter().any(|r| r.replica.is_some()) {
        detection_warnings(plan, &mut out);
    }
    out.0
}

fn detection_warnings(plan: &Plan, out: &mut Issues) {
    let d = &plan.failover.detection;
    let primary = plan.regions.primary.as_str();
    // Where each signal is read: an alarm in its region, the primary API in the primary
    // region, the replicas' view in the DR region, a probe from the function (DR region).
    let alarms_in_primary = plan
        .failover
        .health_alarms
        .iter()
        .filter(|a| plan.alarm_region(a) == primary)
        .count();
    let alarms_elsewhere = plan.failover.health_alarms.len() - alarms_in_primary;
    let api = d
        .signals
        .iter()
        .any(|s| matches!(s, SignalSpec::PrimaryApi {}));
    let elsewhere = alarms_elsewhere
        + d.signals
            .iter()
            .filter(|s| !matches!(s, SignalSpec::PrimaryApi {}))
            .count();
    // In an outage of the primary region, everything read there fails for one reason and
    // counts as one vote.
    let primary_vote =
        api || (alarms_in_primary > 0 && d.unreadable.primary_region == Unreadable::Failing);
    let outage_votes = usize::from(primary_vote) + elsewhere;
    if d.quorum == 0 || d.quorum as usize > signal_count(plan) {
        return;
    }
    if elsewhere == 0 {
        out.add(
            "failover.detection.signals",
            format!(
                "every confirming signal lives in the primary region ({primary}): when it goes down they fail together and count as one vote, so a quorum of {} is never reached and the failover waits for `force`",
                d.quorum
            ),
            "add a signal read outside it: {\"kind\": \"replica_view\"} in failover.detection.signals, or a health alarm in the DR region (e.g. a canary watching the primary endpoint)",
        );
    } else if outage_votes < d.quorum as usize {
        out.add(
            "failover.detection.quorum",
            format!(
                "an outage of the primary region ({primary}) yields at most {outage_votes} vote(s) (what is read there counts once), fewer than the quorum of {}: such an outage is never confirmed without `force`",
                d.quorum
            ),
            format!("lower the quorum to {outage_votes}, or add signals read outside {primary}"),
        );
    }
    if d.quorum == 1 {
        out.add(
            "failover.detection.quorum",
            "a quorum of 1 lets one signal decide: a single flapping alarm fails over",
            "use a quorum of 2 (the default) with signals from independent vantage points",
        );
    }
}

fn check_failback(plan: &Plan, issues: &mut Issues) {
    let f = &plan.failback;
    if f.stages.is_empty() {
        issues.add(
            "failback.stages",
            "no traffic stages",
            "list the percentages of traffic to send back, ending at 100, e.g. [10, 50, 100]",
        );
    }
    for (i, w) in f.stages.iter().enumerate() {
        if !(1..=100).contains(w) {
            issues.add(
                format!("failback.stages[{i}]"),
                format!("{w} is not a percentage from 1 to 100"),
                "use percentages from 1 to 100",
            );
        }
        if i > 0 && *w <= f.stages[i - 1] {
            issues.add(
                format!("failback.stages[{i}]"),
                format!("{w} does not increase on {}", f.stages[i - 1]),
                "list the stages in strictly increasing order",
            );
        }
    }
    if let Some(last) = f.stages.last()
        && *last != 100
    {
        issues.add(
            "failback.stages",
            format!("the stages end at {last} %, so traffic would never fully return"),
            "end the stages at 100",
        );
    }
    if f.bake_minutes > 1440 {
        issues.add(
            "failback.bake_minutes",
            format!("{} minutes is more than a day per stage", f.bake_minutes),
            "use at most 1440 minutes",
        );
    }
    check_alarms(plan, "failback.gate_alarms", &f.gate_alarms, issues);
    let mut names = HashSet::new();
    for (i, t) in f.traffic.iter().enumerate() {
        for (field, value) in [
            ("name", &t.name),
            ("primary_target", &t.primary_target),
            ("dr_target", &t.dr_target),
        ] {
            if !is_dns_name(value) {
                issues.add(
                    format!("failback.traffic[{i}].{field}"),
                    format!("{value:?} is not a DNS name"),
                    "use a name such as \"api.example.internal.\"",
                );
            }
        }
        if !names.insert(normalize_dns_name(&t.name)) {
            issues.add(
                format!("failback.traffic[{i}].name"),
                format!("{:?} is listed twice", t.name),
                "list each record once",
            );
        }
        if plan
            .resources
            .iter()
            .filter_map(|r| r.dns_record.as_deref())
            .any(|d| normalize_dns_name(d) == normalize_dns_name(&t.name))
        {
            issues.add(
                format!("failback.traffic[{i}].name"),
                format!("{:?} is also a database record", t.name),
                "use separate records for the writer and for application traffic",
            );
        }
    }
}

fn check_documentation(plan: &Plan, issues: &mut Issues) {
    let d = &plan.documentation;
    if let Some(owner) = &d.owner
        && owner.trim().is_empty()
    {
        issues.add(
            "documentation.owner",
            "is empty",
            "name the team or person who owns the plan, or leave the field out",
        );
    }
    if let Some(url) = &d.runbook_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        issues.add(
            "documentation.runbook_url",
            // Not quoted: an address may carry credentials (`user:password@`).
            "is not an http(s) URL",
            "give the runbook's address, e.g. https://wiki.example.com/dr/orders",
        );
    }
}

/// The problem with an EventBridge Scheduler cron expression for game days, if any.
///
/// The shape is Scheduler's: `cron(minutes hours day-of-month month day-of-week year)`,
/// with `?` in exactly one of the two day fields. Minutes and hours must be plain numbers:
/// a game day fails production over, so a schedule that fires more than once a day is a
/// mistake, not a choice. Only the shape is checked here; Scheduler checks the rest when
/// the template deploys.
pub(crate) fn game_day_cron_problem(expr: &str) -> Option<String> {
    let Some(body) = expr
        .trim()
        .strip_prefix("cron(")
        .and_then(|rest| rest.strip_suffix(')'))
    else {
        return Some(format!("{expr:?} is not of the form cron(...)"));
    };
    let fields: Vec<&str> = body.split_whitespace().collect();
    if fields.len() != 6 {
        return Some(format!(
            "{expr:?} has {} fields; Scheduler's cron has 6 (minutes hours day-of-month month day-of-week year)",
            fields.len()
        ));
    }
    let plain = |f: &str, max: u32| f.parse::<u32>().is_ok_and(|n| n <= max);
    if !plain(fields[0], 59) {
        return Some(format!(
            "minutes {:?} is not one number from 0 to 59 (a game day runs at one fixed time)",
            fields[0]
        ));
    }
    if !plain(fields[1], 23) {
        return Some(format!(
            "hours {:?} is not one number from 0 to 23 (a game day runs at most once a day)",
            fields[1]
        ));
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, ',' | '-' | '*' | '/' | '?' | '#');
    if let Some(f) = fields[2..].iter().find(|f| !f.chars().all(allowed)) {
        return Some(format!("field {f:?} holds characters cron does not use"));
    }
    if (fields[2] == "?") == (fields[4] == "?") {
        return Some("exactly one of day-of-month and day-of-week must be `?`".to_string());
    }
    None
}

/// A FIS experiment template id: `EXT` then letters and digits.
fn is_fis_template_id(s: &str) -> bool {
    s.len() <= 64
        && s.strip_prefix("EXT")
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn check_game_days(plan: &Plan, issues: &mut Issues) {
    let g = &plan.game_days;
    if let Some(schedule) = &g.schedule {
        if !g.allowed {
            issues.add(
                "game_days.schedule",
                "a schedule is set but the plan does not allow game days",
                "set `game_days.allowed` to true to run scheduled game days, or remove the schedule",
            );
        }
        if let Some(problem) = game_day_cron_problem(schedule) {
            issues.add(
                "game_days.schedule",
                problem,
                "use an EventBridge Scheduler cron such as \"cron(0 10 ? * TUE#2 *)\" (10:00 UTC, second Tuesday of each month)",
            );
        }
    }
    if let InjectionMode::Fis {
        experiment_template_id: Some(id),
    } = &g.injection
        && !is_fis_template_id(id)
    {
        issues.add(
            "game_days.injection.experiment_template_id",
            format!("{id:?} is not a FIS experiment template id"),
            "use the template's id (EXT followed by letters and digits), or leave it out to use the template Lifeboat deploys",
        );
    }
    check_alarms(
        plan,
        "game_days.stop_condition_alarms",
        &g.stop_condition_alarms,
        issues,
    );
    for (i, a) in g.stop_condition_alarms.iter().enumerate() {
        let is_health = plan
            .failover
            .health_alarms
            .iter()
            .any(|h| h.name == a.name && plan.alarm_region(h) == plan.alarm_region(a));
        if is_health {
            issues.add(
                format!("game_days.stop_condition_alarms[{i}]"),
                format!("{:?} is a health alarm, which every game day sets off on purpose: it would stop every game day", a.name),
                "use an alarm on the harm the business cannot accept (e.g. customer errors in another service), not on the primary's health",
            );
        }
    }
    if g.allowed {
        if g.stop_condition_alarms.is_empty() {
            issues.add(
                "game_days.stop_condition_alarms",
                "game days are allowed but nothing can stop one",
                "list at least one CloudWatch alarm that stops a game day (and its FIS experiment) when it fires",
            );
        }
        if !plan.resources.iter().any(|r| r.replica.is_some()) {
            issues.add(
                "game_days.allowed",
                "game days are allowed but no resource has a replica: there is nothing to fail over",
                "give a resource a `replica`, or set `allowed` to false",
            );
        }
    }
    if let Some(c) = &g.canary {
        match plan.resource(&c.resource) {
            None => issues.add(
                "game_days.canary.resource",
                format!("{:?} is not a resource of the plan", c.resource),
                "name the `id` of one of the plan's resources",
            ),
            Some(r) => {
                if r.kind == ResourceKind::DynamodbTable {
                    issues.add(
                        "game_days.canary.resource",
                        format!(
                            "{} is a DynamoDB table; the canary writes and reads with SQL",
                            r.id
                        ),
                        "name an RDS instance or Aurora cluster",
                    );
                } else if r.validation.is_none() {
                    issues.add(
                        "game_days.canary.resource",
                        format!("{} has no `validation` section, whose database and credentials the canary connects with", r.id),
                        "add `validation.database` and `validation.credentials_secret` to the resource",
                    );
                }
                if r.replica.is_none() {
                    issues.add(
                        "game_days.canary.resource",
                        format!(
                            "{} has no replica, so no failover makes it writable in the DR region",
                            r.id
                        ),
                        "name a resource with a `replica`",
                    );
                }
            }
        }
        if c.credentials_secret
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            issues.add(
                "game_days.canary.credentials_secret",
                "the secret's name is blank",
                "name the Secrets Manager secret of the canary's writing user, or leave the field out",
            );
        }
        if !is_sql_path(&c.table, 1, 2) {
            issues.add(
                "game_days.canary.table",
                format!(
                    "{:?} is not a table name Lifeboat can quote safely",
                    c.table
                ),
                "use `table` or `schema.table` of letters, digits and underscores",
            );
        }
    }
    if !(1..=50).contains(&g.history) {
        issues.add(
            "game_days.history",
            format!("{} past game days is outside 1 to 50", g.history),
            "use 1 to 50 (0 leaves the trend empty; more than 50 makes the report unreadable)",
        );
    }
}
