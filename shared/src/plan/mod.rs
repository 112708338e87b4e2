//! The DR plan: one JSON document that says what Lifeboat protects and how.
//!
//! The plan is parsed with unknown fields rejected (a misspelt field is an error, not a
//! silently ignored setting) and validated on load, so every function starts from a plan
//! that is known to be coherent. Every error names the field, by its JSON path, and the fix.
//!
//! Durations carry their unit in the field name (`rpo_minutes`, `bake_minutes`,
//! `max_replica_lag_seconds`): there is no duration syntax to get wrong.

mod load;
#[cfg(test)]
mod tests;
mod validate;

pub use load::{PlanSource, load_plan_text, parse_plan};
#[cfg(test)]
pub(crate) use validate::max_kept;
pub use validate::{QuotaUsage, is_sql_identifier, normalize_dns_name, quota_usage, warnings};

use crate::ident::IdentifierRule;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Name of the tag that marks a snapshot, backup or temporary resource as Lifeboat's,
/// with the plan name as its value. Retention never deletes anything without it.
pub const PLAN_TAG: &str = "lifeboat:plan";
/// Tag naming the protected resource (the plan's resource id) a snapshot belongs to.
pub const RESOURCE_TAG: &str = "lifeboat:resource";
/// Tag holding the snapshot tier (`daily`, `weekly`, `monthly`, `yearly`).
pub const TIER_TAG: &str = "lifeboat:tier";
/// Tag holding the creation time Lifeboat assigned (RFC 3339, UTC).
pub const CREATED_TAG: &str = "lifeboat:created-at";
/// Tag the restore validator puts on a snapshot that restored and passed its checks.
pub const VALIDATED_TAG: &str = "lifeboat:validated-at";
/// Tag an operator puts on a snapshot that must never be deleted (any value).
pub const LEGAL_HOLD_TAG: &str = "lifeboat:legal-hold";
/// Tag retention puts on a snapshot whose archive export it started, naming the export
/// task, so the export is found (and not started again) by the next run.
pub const ARCHIVE_TAG: &str = "lifeboat:archive-task";

/// The whole DR plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Short name of the plan; tags every snapshot and keys every state item.
    /// Lowercase letters, digits and hyphens, 1 to 40 characters, starting with a letter.
    pub name: String,
    /// The primary region (where the databases normally run) and the DR region.
    pub regions: Regions,
    /// What is protected: RDS instances, Aurora clusters and DynamoDB tables.
    pub resources: Vec<ProtectedResource>,
    /// When snapshots are taken, which tier each gets, and where copies go.
    pub snapshots: SnapshotPolicy,
    /// How long snapshots are kept, per region.
    pub retention: RetentionPolicies,
    /// The account limits the plan must fit inside.
    #[serde(default)]
    pub quotas: Quotas,
    /// Defaults for restore validation (per-resource checks live on each resource).
    #[serde(default)]
    pub validation: ValidationSettings,
    /// The Route 53 zone holding the records Lifeboat switches.
    pub dns: DnsSettings,
    /// When and how to fail over to the DR region.
    pub failover: FailoverSettings,
    /// How to return to the primary region.
    #[serde(default)]
    pub failback: FailbackSettings,
    /// Who owns the plan and where its runbook is (the readiness report checks them).
    #[serde(default)]
    pub documentation: Documentation,
    /// Scheduled game days: whether the plan may have them, when, and how the fault is
    /// injected. Off unless the plan says `"allowed": true`.
    #[serde(default)]
    pub game_days: GameDaySettings,
}

/// Game days: a real failover and failback of this plan, on purpose, with a hypothesis
/// and a measured result.
///
/// A game day fails production over, so it is off by default and must be enabled plan by
/// plan (`allowed`), and it needs a brake: at least one stop-condition alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameDaySettings {
    /// Whether game days may run against this plan at all. Default `false`: a plan must be
    /// marked explicitly, and a game day against an unmarked plan is refused.
    #[serde(default)]
    pub allowed: bool,
    /// When scheduled game days run: an EventBridge Scheduler cron expression, e.g.
    /// `cron(0 10 ? * TUE#2 *)` (10:00 UTC on the second Tuesday of each month). The
    /// template's schedule takes it; without it game days run only on command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How the fault is injected. Default `{"mode": "signal_only"}`.
    #[serde(default)]
    pub injection: InjectionMode,
    /// Alarms that stop a game day when any of them fires (and stop the FIS experiment).
    /// Required when `allowed` is true. They must not be health alarms, which a game day
    /// sets off on purpose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_condition_alarms: Vec<AlarmRef>,
    /// A write-then-read the verification performs on the DR writer, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// How many past game days the report's trend covers (1 to 50). Default 5.
    #[serde(default = "default_game_day_history")]
    pub history: usize,
}

fn default_game_day_history() -> usize {
    5
}

impl Default for GameDaySettings {
    fn default() -> Self {
        GameDaySettings {
            allowed: false,
            schedule: None,
            injection: InjectionMode::default(),
            stop_condition_alarms: Vec::new(),
            canary: None,
            history: default_game_day_history(),
        }
    }
}

/// How a game day injects its fault.
///
/// Both variants are structs (`SignalOnly {}` has no field) so that an unknown field is
/// refused in either: serde ignores extra fields of a unit variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum InjectionMode {
    /// Set the plan's health alarms to ALARM: exercises detection-to-recovery without
    /// breaking anything, at no cost. The database itself is never disturbed.
    SignalOnly {},
    /// Run an AWS FIS experiment that really disturbs the primary database (the template
    /// defines one, with the stop-condition alarm as its stop condition).
    Fis {
        /// The experiment template (`EXT...`). Absent: the one the SAM template deploys,
        /// which the function reads from its environment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        experiment_template_id: Option<String>,
    },
}

impl Default for InjectionMode {
    fn default() -> Self {
        InjectionMode::SignalOnly {}
    }
}

/// A canary: a row written to the DR writer and read back, proving it accepts writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// The plan's id of the resource written to (an RDS instance or Aurora cluster with a
    /// replica and restore-validation credentials, which the canary connects with).
    pub resource: String,
    /// The table the canary row goes to (`table` or `schema.table`), created by the
    /// application's owners for the purpose and validated like every SQL identifier.
    pub table: String,
    /// Secrets Manager secret (name or ARN) of the user the canary writes as: one that
    /// may only insert into and select from `table`. Without it the canary connects with
    /// the resource's validation credentials, which must then be allowed to write the
    /// table (so they are not the read-only user the checks should use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// Who owns the plan and where its runbook is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Documentation {
    /// The team or person paged during a disaster, who decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Where the team's runbook lives (`https://...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// When the plan was last reviewed with its owner (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reviewed: Option<chrono::NaiveDate>,
}

/// The two regions of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regions {
    /// Region where the protected databases normally run, e.g. `us-east-1`.
    pub primary: String,
    /// Region that takes over in a disaster, e.g. `us-west-2`. Must differ from `primary`.
    pub dr: String,
}

/// The kind of a protected resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// An RDS DB instance (PostgreSQL, MySQL, MariaDB).
    RdsInstance,
    /// An Aurora DB cluster.
    AuroraCluster,
    /// A DynamoDB table.
    DynamodbTable,
}

impl ResourceKind {
    /// The name used in the plan and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::RdsInstance => "rds_instance",
            ResourceKind::AuroraCluster => "aurora_cluster",
            ResourceKind::DynamodbTable => "dynamodb_table",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Database engine of an RDS instance or Aurora cluster, as restore validation needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// RDS for PostgreSQL.
    Postgres,
    /// RDS for MySQL.
    Mysql,
    /// RDS for MariaDB.
    Mariadb,
    /// Aurora PostgreSQL-compatible.
    AuroraPostgresql,
    /// Aurora MySQL-compatible.
    AuroraMysql,
}

impl Engine {
    /// The engine name RDS uses (`CreateDBInstance`'s `Engine`).
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Mariadb => "mariadb",
            Engine::AuroraPostgresql => "aurora-postgresql",
            Engine::AuroraMysql => "aurora-mysql",
        }
    }

    /// Whether this engine speaks the PostgreSQL wire protocol (otherwise MySQL's).
    pub fn is_postgres_family(self) -> bool {
        matches!(self, Engine::Postgres | Engine::AuroraPostgresql)
    }

    /// Whether this is an Aurora engine (runs in a cluster).
    pub fn is_aurora(self) -> bool {
        matches!(self, Engine::AuroraPostgresql | Engine::AuroraMysql)
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One protected resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedResource {
    /// The plan's name for the resource; unique in the plan, used in snapshot names and tags.
    /// Lowercase letters, digits and hyphens, starting with a letter, at most 40 characters.
    pub id: String,
    /// What it is.
    pub kind: ResourceKind,
    /// Its AWS identifier in the primary region (DB instance id, DB cluster id or table
    /// name). Defaults to `id`. An RDS identifier may be written in any case and is held
    /// lower-cased, as RDS stores it; a table name is case-sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// Database engine; required for RDS instances and Aurora clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    /// Recovery point objective: the most data, in minutes, the business accepts to lose.
    pub rpo_minutes: u32,
    /// Recovery time objective: how long, in minutes, recovery may take.
    pub rto_minutes: u32,
    /// Snapshot interval for this resource; defaults to `snapshots.interval_minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_interval_minutes: Option<u32>,
    /// The standby in the DR region that failover promotes. Without it the resource is
    /// recovered from snapshots only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaSpec>,
    /// The DNS name (in `dns`'s zone) that applications use to reach the writer; failover
    /// points it at the promoted replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_record: Option<String>,
    /// Per-resource retention overrides (`min_keep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<ResourceRetention>,
    /// Restore-validation checks for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ResourceValidation>,
}

impl ProtectedResource {
    /// The AWS identifier in the primary region (an RDS one lower-cased, as RDS stores it,
    /// once the plan is loaded).
    pub fn aws_identifier(&self) -> &str {
        self.identifier.as_deref().unwrap_or(&self.id)
    }

    /// How AWS compares this resource's identifiers.
    pub fn identifier_rule(&self) -> IdentifierRule {
        IdentifierRule::of(self.kind)
    }

    /// Whether `other` (from an AWS response, an operator or stored state) names this
    /// resource's primary by AWS's rule: any case for RDS, exactly for a table.
    pub fn is_named(&self, other: &str) -> bool {
        self.identifier_rule().same(self.aws_identifier(), other)
    }

    /// The snapshot interval in minutes, given the plan's default.
    pub fn interval_minutes(&self, policy: &SnapshotPolicy) -> u32 {
        self.snapshot_interval_minutes
            .unwrap_or(policy.interval_minutes)
    }
}

/// The DR-region standby of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSpec {
    /// For an RDS instance: the cross-region read replica's DB instance id in the DR region.
    /// For an Aurora cluster: the secondary DB cluster id in the DR region. Any case;
    /// held lower-cased.
    pub identifier: String,
    /// For an Aurora cluster: the global cluster that joins primary and secondary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_cluster: Option<String>,
}

/// Day of the week, for the weekly tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Days since Monday (Monday = 0).
    pub fn days_from_monday(self) -> u32 {
        match self {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        }
    }
}

/// When snapshots are taken and where they are copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotPolicy {
    /// Default interval between snapshots of a resource, in minutes (windows are aligned
    /// to midnight UTC). Between 15 and 10080 (one week). Default 1440 (daily).
    #[serde(default = "default_interval_minutes")]
    pub interval_minutes: u32,
    /// Which window of which day gets the weekly, monthly and yearly tiers.
    #[serde(default)]
    pub tiers: TierRules,
    /// Where snapshots are copied. At least one destination outside the primary region.
    pub copy_to: Vec<CopyDestination>,
    /// S3 bucket in the DR region that receives DynamoDB table exports, so a table's backups
    /// survive the loss of the primary region (DynamoDB backups cannot be copied across
    /// regions). Required when the plan protects a DynamoDB table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb_export_bucket: Option<String>,
}

fn default_interval_minutes() -> u32 {
    1440
}

/// Tier rules: the first window of the day is `daily`; of `weekly_on`, `weekly`; of day
/// `monthly_on_day` of a month, `monthly`; of that day in `yearly_in_month`, `yearly`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRules {
    /// Day of the week whose first snapshot is weekly. Default `sunday`.
    #[serde(default = "default_weekly_on")]
    pub weekly_on: Weekday,
    /// Day of the month (1 to 28, so every month has it) whose first snapshot is monthly.
    /// Default 1.
    #[serde(default = "default_monthly_on_day")]
    pub monthly_on_day: u32,
    /// Month (1 to 12) whose monthly snapshot is yearly. Default 1 (January).
    #[serde(default = "default_yearly_in_month")]
    pub yearly_in_month: u32,
}

fn default_weekly_on() -> Weekday {
    Weekday::Sunday
}
fn default_monthly_on_day() -> u32 {
    1
}
fn default_yearly_in_month() -> u32 {
    1
}

impl Default for TierRules {
    fn default() -> Self {
        TierRules {
            weekly_on: default_weekly_on(),
            monthly_on_day: default_monthly_on_day(),
            yearly_in_month: default_yearly_in_month(),
        }
    }
}

/// A destination for snapshot copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyDestination {
    /// Region the copies go to.
    pub region: String,
    /// KMS key in the destination region that encrypts the copies (key ARN, key id or
    /// alias). Copies are never encrypted with the source key.
    pub kms_key_id: String,
    /// Account the copies go to, when it is not the account Lifeboat runs in (the
    /// snapshot is shared with it and copied there with `role_arn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Role in `account_id` that Lifeboat assumes to make and prune the copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl CopyDestination {
    /// A stable key for the destination ("us-west-2" or "us-west-2@210987654321"), used to
    /// tag copies so no destination's copies or retention touch another's.
    pub fn key(&self) -> String {
        match &self.account_id {
            Some(account) => format!("{}@{}", self.region, account),
            None => self.region.clone(),
        }
    }
}

/// Retention policy for each region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicies {
    /// Policy for snapshots in the primary region.
    pub primary: RetentionPolicy,
    /// Policy for copies in the DR region (and every other copy destination).
    pub dr: RetentionPolicy,
    /// Most deletions one retention run performs; the rest wait for the next run, so a
    /// run never nears Lambda's time limit. Default 50.
    #[serde(default = "default_max_deletes_per_run")]
    pub max_deletes_per_run: u32,
    /// Deletion rate, per second, kept well under the RDS API's sustained rate. Default 2.
    #[serde(default = "default_deletes_per_second")]
    pub deletes_per_second: u32,
    /// Report what would be deleted without deleting anything.
    #[serde(default)]
    pub dry_run: bool,
    /// Export monthly and yearly snapshot copies in the DR region to S3 before retention
    /// deletes them (RDS snapshot export). Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveSettings>,
}

/// The archive tier: the DR region's RDS snapshot copies of the chosen tiers are exported
/// to S3 (Parquet, by `StartExportTask`) before retention deletes them; the template's
/// lifecycle rule moves the exports to a cold storage class. The DR region is where the
/// longest-kept copies and Lifeboat's own stack live, and an archive there survives the
/// loss of the primary region. DynamoDB backups are not archived (they cannot be exported;
/// the tables' own S3 exports already live in `snapshots.dynamodb_export_bucket`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    /// S3 bucket in the DR region that receives the exports (an export is written in the
    /// snapshot's own region); the template's `ArchiveBucketName`.
    pub bucket: String,
    /// Key prefix of the exports; each snapshot's export lands under
    /// `<prefix><resource>/<snapshot>/`. Default `archive/`.
    #[serde(default = "default_archive_prefix")]
    pub prefix: String,
    /// Role RDS assumes to write to the bucket (trusted by `export.rds.amazonaws.com`).
    pub iam_role_arn: String,
    /// KMS key in the DR region that encrypts the exported data (RDS requires one); the
    /// template's key is `alias/lifeboat-<plan>`.
    pub kms_key_id: String,
    /// Which snapshot tiers (the `lifeboat:tier` tag) are exported. Default `monthly`
    /// and `yearly`.
    #[serde(default = "default_archive_tiers")]
    pub tiers: Vec<crate::schedule::Tier>,
}

fn default_archive_prefix() -> String {
    "archive/".to_string()
}
fn default_archive_tiers() -> Vec<crate::schedule::Tier> {
    vec![
        crate::schedule::Tier::Monthly,
        crate::schedule::Tier::Yearly,
    ]
}

fn default_max_deletes_per_run() -> u32 {
    50
}
fn default_deletes_per_second() -> u32 {
    2
}

/// Grandfather-father-son counts for one region: keep the newest snapshot of each of the
/// last `keep_daily` days that have one, and likewise for ISO weeks, months and years;
/// never fewer than `min_keep` snapshots per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Days that keep their newest snapshot (at most 3660).
    #[serde(default)]
    pub keep_daily: u32,
    /// ISO weeks that keep their newest snapshot (at most 520).
    #[serde(default)]
    pub keep_weekly: u32,
    /// Months that keep their newest snapshot (at most 240).
    #[serde(default)]
    pub keep_monthly: u32,
    /// Years that keep their newest snapshot (at most 100).
    #[serde(default)]
    pub keep_yearly: u32,
    /// Snapshots kept per resource whatever their age (at most 1000).
    #[serde(default)]
    pub min_keep: u32,
}

/// Per-resource retention overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRetention {
    /// `min_keep` in the primary region for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_min_keep: Option<u32>,
    /// `min_keep` in the DR region for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr_min_keep: Option<u32>,
}

/// The account limits the plan must fit inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Manual DB instance snapshots per region (AWS default 100).
    #[serde(default = "default_snapshot_quota")]
    pub manual_db_snapshots_per_region: u32,
    /// Manual DB cluster snapshots per region (AWS default 100).
    #[serde(default = "default_snapshot_quota")]
    pub manual_cluster_snapshots_per_region: u32,
    /// Cross-region snapshot copies in progress into one destination region (AWS: 20).
    #[serde(default = "default_concurrent_copies")]
    pub concurrent_copies_per_region: u32,
}

fn default_snapshot_quota() -> u32 {
    100
}
fn default_concurrent_copies() -> u32 {
    20
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            manual_db_snapshots_per_region: default_snapshot_quota(),
            manual_cluster_snapshots_per_region: default_snapshot_quota(),
            concurrent_copies_per_region: default_concurrent_copies(),
        }
    }
}

/// Which copy of a snapshot restore validation restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreFrom {
    /// The copy in the DR region: the one a regional disaster needs.
    Dr,
    /// The snapshot in the primary region.
    Primary,
}

/// Restore-validation defaults for every resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSettings {
    /// A resource is validated again when its last validation is older than this. Default 24.
    #[serde(default = "default_validation_interval_hours")]
    pub interval_hours: u32,
    /// Which copy to restore. Default `dr`.
    #[serde(default = "default_restore_from")]
    pub restore_from: RestoreFrom,
    /// Instance class of the temporary instance. Default `db.t4g.micro`.
    #[serde(default = "default_instance_class")]
    pub instance_class: String,
    /// DB subnet group of the temporary instance (in the region restored into).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<String>,
    /// Security groups of the temporary instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// A run that has not finished after this long is torn down as failed. Default 120.
    #[serde(default = "default_validation_timeout_minutes")]
    pub timeout_minutes: u32,
    /// Statement timeout of every check query, in seconds. Default 30.
    #[serde(default = "default_statement_timeout_seconds")]
    pub statement_timeout_seconds: u32,
}

fn default_validation_interval_hours() -> u32 {
    24
}
fn default_restore_from() -> RestoreFrom {
    RestoreFrom::Dr
}
fn default_instance_class() -> String {
    "db.t4g.micro".to_string()
}
fn default_validation_timeout_minutes() -> u32 {
    120
}
fn default_statement_timeout_seconds() -> u32 {
    30
}

impl Default for ValidationSettings {
    fn default() -> Self {
        ValidationSettings {
            interval_hours: default_validation_interval_hours(),
            restore_from: default_restore_from(),
            instance_class: default_instance_class(),
            subnet_group: None,
            security_group_ids: Vec::new(),
            timeout_minutes: default_validation_timeout_minutes(),
            statement_timeout_seconds: default_statement_timeout_seconds(),
        }
    }
}

/// Restore-validation checks for one resource. Table and column names are SQL
/// identifiers (`name` or `schema.name`), validated on load and quoted before use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceValidation {
    /// Database (PostgreSQL) or schema (MySQL) to connect to.
    pub database: String,
    /// Secrets Manager secret (name or ARN) holding `username` and `password`.
    pub credentials_secret: String,
    /// The schema must hold at least this many tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tables: Option<u32>,
    /// Critical tables that must exist and hold at least `min_rows` rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableCheck>,
    /// Foreign keys whose orphans are counted: every `from` value must exist in `to`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKeyCheck>,
    /// Named read-only SQL queries returning one scalar, compared with `expect`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertions: Vec<SqlAssertion>,
}

/// A critical table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableCheck {
    /// Table name (`table` or `schema.table`).
    pub name: String,
    /// Fewest rows the table may hold. Default 1 (not empty).
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
}

fn default_min_rows() -> u64 {
    1
}

/// A foreign-key orphan check: `from` is `table.column` (or `schema.table.column`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKeyCheck {
    /// The referencing column, e.g. `orders.user_id`.
    pub from: String,
    /// The referenced column, e.g. `users.id`.
    pub to: String,
}

/// A named SQL assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlAssertion {
    /// Name shown in reports.
    pub name: String,
    /// One read-only statement returning one row with one column.
    pub sql: String,
    /// The expected value, compared as text (`"0"`, `"t"`, `"42"`).
    pub expect: String,
}

/// The Route 53 zone holding Lifeboat's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// The hosted zone id (`Z...`). Give this or `hosted_zone_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    /// The hosted zone's name (`example.internal.`), looked up at run time; it must name
    /// exactly one zone. Give this or `hosted_zone_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_name: Option<String>,
    /// TTL of the records Lifeboat writes, in seconds. Default 60.
    #[serde(default = "default_record_ttl_seconds")]
    pub record_ttl_seconds: u32,
}

fn default_record_ttl_seconds() -> u32 {
    60
}

/// Automatic failover, or failover after an operator's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverMode {
    /// A confirmed alarm fails over without waiting for anyone.
    Automatic,
    /// A confirmed alarm waits for `{"action": "approve"}`.
    Manual,
}

/// A CloudWatch alarm the plan watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRef {
    /// The alarm name.
    pub name: String,
    /// The region the alarm lives in. Defaults to the DR region, because an alarm that
    /// watches the primary region must not go down with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// When and how to fail over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverSettings {
    /// `automatic` or `manual`.
    pub mode: FailoverMode,
    /// Alarms that say the primary is down; any of them going to ALARM starts a failover,
    /// which `detection` confirms. Each is one of the confirming signals.
    pub health_alarms: Vec<AlarmRef>,
    /// Automatic failover is refused when the DR replica lags more than this (the
    /// data-loss guard); `force` overrides it. Default 60.
    #[serde(default = "default_max_replica_lag_seconds")]
    pub max_replica_lag_seconds: u32,
    /// After a failover or failback, alarms only notify for this long. Default 60.
    #[serde(default = "default_cooldown_minutes")]
    pub cooldown_minutes: u32,
    /// How a failure is confirmed before anything is promoted: which signals besides the
    /// health alarms are read, and how many must agree.
    #[serde(default)]
    pub detection: DetectionSettings,
}

/// How a failover is confirmed: from independent vantage points, a quorum of which must
/// say the primary is failing, within a window.
///
/// Every health alarm is a signal of its own; `signals` adds the others. A signal says
/// failing, healthy or unknown; signals that fail because the same region does not
/// answer count as one vote, since one outage silences them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionSettings {
    /// The signals read besides the health alarms. Default: the primary region's API and
    /// the DR replicas' view of their source.
    #[serde(default = "default_signals")]
    pub signals: Vec<SignalSpec>,
    /// How many votes must say the primary is failing to confirm. Default 2.
    #[serde(default = "default_quorum")]
    pub quorum: u32,
    /// How long after the alarm a failover may stay unconfirmed; then it ends, nothing
    /// changed, and a later alarm starts a new incident. Default 5.
    #[serde(default = "default_window_minutes")]
    pub window_minutes: u32,
    /// What a health alarm in INSUFFICIENT_DATA says. Default `alarm_setting`.
    #[serde(default)]
    pub insufficient_data: InsufficientData,
    /// What a signal whose region does not answer says.
    #[serde(default)]
    pub unreadable: UnreadableSignals,
    /// Time budget, in seconds, of one call to the primary region's API (one attempt,
    /// no retry). Default 3.
    #[serde(default = "default_primary_api_timeout_seconds")]
    pub primary_api_timeout_seconds: u32,
}

fn default_signals() -> Vec<SignalSpec> {
    vec![SignalSpec::PrimaryApi {}, SignalSpec::ReplicaView {}]
}
fn default_quorum() -> u32 {
    2
}
fn default_window_minutes() -> u32 {
    5
}
fn default_primary_api_timeout_seconds() -> u32 {
    3
}

impl Default for DetectionSettings {
    fn default() -> Self {
        DetectionSettings {
            signals: default_signals(),
            quorum: default_quorum(),
            window_minutes: default_window_minutes(),
            insufficient_data: InsufficientData::default(),
            unreadable: UnreadableSignals::default(),
            primary_api_timeout_seconds: default_primary_api_timeout_seconds(),
        }
    }
}

/// A signal that may confirm a failure, besides the health alarms.
///
/// Every variant is a struct (the first two without fields) so that an unknown field is
/// refused in each: serde ignores extra fields of a unit variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignalSpec {
    /// The primary region's RDS API as seen from the DR region: each primary database is
    /// described there (one attempt, `primary_api_timeout_seconds`). No answer, or a
    /// database that does not serve, is failing.
    PrimaryApi {},
    /// Each DR replica's view of its source, as RDS reports it in the DR region: the
    /// replication status (`StatusInfos`) and the `ReplicaLag` metric.
    ReplicaView {},
    /// A TCP connection to the primary's endpoint from where the function runs (it needs
    /// a route there: a VPC with one). A refused or timed-out connection is failing.
    EndpointProbe {
        /// Host name or address of the primary's endpoint.
        host: String,
        /// Its port.
        port: u16,
        /// How long the connection may take, in seconds. Default 2.
        #[serde(default = "default_probe_timeout_seconds")]
        timeout_seconds: u32,
    },
}

fn default_probe_timeout_seconds() -> u32 {
    2
}

/// What a health alarm in INSUFFICIENT_DATA says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsufficientData {
    /// What the alarm's own `TreatMissingData` says: `breaching` is failing,
    /// `notBreaching` healthy, `missing` and `ignore` (and a composite alarm) unknown.
    #[default]
    AlarmSetting,
    /// Failing.
    Failing,
    /// Healthy.
    Healthy,
    /// Unknown.
    Unknown,
}

/// What a signal whose region does not answer says, by where the signal is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnreadableSignals {
    /// A signal read in the primary region (a health alarm there). Default `failing`: the
    /// region not answering is what the alarm was there to say.
    #[serde(default = "unreadable_failing")]
    pub primary_region: Unreadable,
    /// A signal read in any other region (the DR region's alarms and replicas). Default
    /// `unknown`.
    #[serde(default = "unreadable_unknown")]
    pub other_regions: Unreadable,
}

fn unreadable_failing() -> Unreadable {
    Unreadable::Failing
}
fn unreadable_unknown() -> Unreadable {
    Unreadable::Unknown
}

impl Default for UnreadableSignals {
    fn default() -> Self {
        UnreadableSignals {
            primary_region: unreadable_failing(),
            other_regions: unreadable_unknown(),
        }
    }
}

/// The meaning of a signal that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unreadable {
    /// It counts as saying the primary is failing.
    Failing,
    /// It counts as not knowing.
    Unknown,
}

fn default_max_replica_lag_seconds() -> u32 {
    60
}
fn default_cooldown_minutes() -> u32 {
    60
}

/// An application record whose traffic failback shifts by weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficRecord {
    /// Record name, e.g. `api.orders.example.internal.`.
    pub name: String,
    /// CNAME target in the primary region.
    pub primary_target: String,
    /// CNAME target in the DR region.
    pub dr_target: String,
}

/// How to return to the primary region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailbackSettings {
    /// Percent of application traffic sent to the primary region at each stage, strictly
    /// increasing and ending at 100. Default `[10, 50, 100]`.
    #[serde(default = "default_stages")]
    pub stages: Vec<u32>,
    /// How long each stage is held while the gate alarms are watched. Default 15.
    #[serde(default = "default_bake_minutes")]
    pub bake_minutes: u32,
    /// Alarms that stop the shift; one in ALARM rolls back to the previous stage and pauses.
    #[serde(default)]
    pub gate_alarms: Vec<AlarmRef>,
    /// The primary-region replica must lag less than this before the writer moves. Default 5.
    #[serde(default = "default_catch_up_lag_seconds")]
    pub max_catch_up_lag_seconds: u32,
    /// Weighted application records shifted stage by stage.
    #[serde(default)]
    pub traffic: Vec<TrafficRecord>,
}

fn default_stages() -> Vec<u32> {
    vec![10, 50, 100]
}
fn default_bake_minutes() -> u32 {
    15
}
fn default_catch_up_lag_seconds() -> u32 {
    5
}

impl Default for FailbackSettings {
    fn default() -> Self {
        FailbackSettings {
            stages: default_stages(),
            bake_minutes: default_bake_minutes(),
            gate_alarms: Vec::new(),
            max_catch_up_lag_seconds: default_catch_up_lag_seconds(),
            traffic: Vec::new(),
        }
    }
}

impl Plan {
    /// Hold every RDS identifier the plan names (resource identifiers, replicas, global
    /// clusters) in the form RDS stores it, lower case, so that what Lifeboat sends,
    /// names and reports does not depend on how the plan spells them. DynamoDB table
    /// names are case-sensitive and stay as written. Doing it again changes nothing.
    pub fn normalise_identifiers(&mut self) {
        for r in &mut self.resources {
            let rule = IdentifierRule::of(r.kind);
            if let Some(id) = &mut r.identifier {
                *id = rule.canonical(id).into_owned();
            }
            // A replica or global cluster is always RDS's (the plan refuses one on a table).
            if let Some(replica) = &mut r.replica {
                replica.identifier = IdentifierRule::Rds
                    .canonical(&replica.identifier)
                    .into_owned();
                if let Some(global) = &mut replica.global_cluster {
                    *global = IdentifierRule::Rds.canonical(global).into_owned();
                }
            }
        }
    }

    /// The resource with this plan id.
    pub fn resource(&self, id: &str) -> Option<&ProtectedResource> {
        self.resources.iter().find(|r| r.id == id)
    }

    /// The region an alarm lives in.
    pub fn alarm_region<'a>(&'a self, alarm: &'a AlarmRef) -> &'a str {
        alarm.region.as_deref().unwrap_or(&self.regions.dr)
    }

    /// The retention policy that applies in `region`: the primary policy in the primary
    /// region, the DR policy in every copy destination.
    pub fn retention_for(&self, region: &str) -> &RetentionPolicy {
        if region == self.regions.primary {
            &self.retention.primary
        } else {
            &self.retention.dr
        }
    }
}

/// An error in the plan: which field, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The plan could not be found or read.
    #[error("cannot read the DR plan from {source_name}: {reason}. {fix}")]
    Unreadable {
        /// Where the plan was looked for.
        source_name: String,
        /// What went wrong.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// The plan is not valid JSON of the plan's shape.
    #[error(
        "the DR plan is not valid: at `{path}`: {reason}. Fix that field (see the plan reference in README.md)"
    )]
    Malformed {
        /// JSON path of the offending field (`.` for the document).
        path: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The plan parsed but breaks a rule; every broken rule is listed.
    #[error("the DR plan is invalid: {}", .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<PlanIssue>),
}

impl PlanError {
    /// The individual issues (empty unless `Invalid`).
    pub fn issues(&self) -> &[PlanIssue] {
        match self {
            PlanError::Invalid(issues) => issues,
            _ => &[],
        }
    }
}

/// One broken rule of a parsed plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {problem}; {fix}")]
pub struct PlanIssue {
    /// JSON path of the field, e.g. `resources[1].id`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}
