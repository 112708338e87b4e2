//! The validation port on RDS and Secrets Manager: snapshot listings, temporary
//! databases restored from them (created, described, deleted, swept), the `validated`
//! tag, and the connection to the restored database for the SQL probe.

use super::posture::fetch_instance;
use super::snapshots::{list_cluster_snapshots, list_db_snapshots, rds_tags, tag_map, to_chrono};
use super::sql_probe::SqlProbe;
use super::{AwsClients, ClientSettings, describe_cluster};
use crate::backup::BackupRecord;
use crate::error::AwsError;
use crate::ident::IdentifierRule;
use crate::plan::{
    CREATED_TAG, Engine, PLAN_TAG, Plan, ProtectedResource, SqlAssertion, VALIDATED_TAG,
};
use crate::validation::checks::{CheckKind, CheckProgress, CheckResult, Dialect, plan_checks};
use crate::validation::run::{CheckBudget, DatabaseProbe, Leftover, ProbeTarget, ValidationPort};
use crate::validation::{
    DbView, Endpoint, PURPOSE_TAG, PURPOSE_VALIDATION, Run, TEMP_PREFIX, TempFacts, restore_region,
};
use async_trait::async_trait;
use aws_config::Region;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// The local-only setting that points the probe at a local database: an emulated restore
/// has no data behind it. `resource=url` pairs separated by commas or whitespace, e.g.
/// `orders-db=postgres://postgres@127.0.0.1:5432/orders`. Honoured only when
/// `AWS_ENDPOINT_URL` names a local emulator; refused otherwise.
pub const LOCAL_DATABASE_URLS_ENV: &str = "LIFEBOAT_LOCAL_DATABASE_URLS";

/// The local database setting is wrong. No message quotes an entry or a URL: either may
/// hold a password (or, split at a comma or blank inside one, a piece of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Each variant's message is its documentation.
#[allow(missing_docs)]
pub enum LocalDatabaseError {
    /// Set outside a local run.
    #[error(
        "{LOCAL_DATABASE_URLS_ENV}: this local-only setting is set but AWS_ENDPOINT_URL is not: in AWS the probe connects to the restored database itself; unset it"
    )]
    WithoutEmulator,
    /// Entry `entry` (counted from 1) has no `=`.
    #[error(
        "{LOCAL_DATABASE_URLS_ENV}: entry {entry} is not `resource=url`, e.g. orders-db=postgres://postgres@127.0.0.1:5432/orders (entries are separated by commas or blanks: percent-encode one inside a password, %2C or %20)"
    )]
    NotAPair { entry: usize },
    /// Entry `entry` has nothing usable as a resource id before its `=`.
    #[error(
        "{LOCAL_DATABASE_URLS_ENV}: entry {entry} does not start with a resource id before its `=` (e.g. orders-db=postgres://...)"
    )]
    NoResource { entry: usize },
    /// The URL mapped to `resource` cannot be read.
    #[error("{LOCAL_DATABASE_URLS_ENV}: the URL for {resource:?}: {reason}")]
    BadUrl { resource: String, reason: UrlError },
}

/// Why a database URL cannot be read; quotes nothing that could be part of a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Each variant's message is its documentation.
#[allow(missing_docs)]
pub enum UrlError {
    #[error("a URL needs a scheme: postgres:// or mysql://")]
    NoScheme,
    /// `scheme` is quoted only when it is a plain word.
    #[error("{}neither postgres nor mysql (mariadb)", quoted_scheme(.scheme))]
    UnknownScheme { scheme: Option<String> },
    #[error("the URL names no database (`.../<database>`)")]
    NoDatabase,
    #[error("the URL's database must be one plain name, without options")]
    DatabaseNotPlain,
    #[error(
        "the port after the host is not a number from 0 to 65535 (a password holding / , @ or a blank must be percent-encoded: %2F, %2C, %40, %20)"
    )]
    BadPort,
    #[error("the URL names no host")]
    NoHost,
    #[error("a % in the URL's user or password is not followed by two hex digits")]
    BadEscape,
    #[error("the URL's user or password is not UTF-8 once decoded")]
    NotUtf8,
}

/// Why the SQL checks (or a game day's canary) have no database to connect to: nothing
/// was sent to any database.
#[derive(Debug, thiserror::Error)]
// Each variant's message is its documentation.
#[allow(missing_docs)]
pub enum ProbeTargetError {
    /// Reading the credentials' secret failed.
    #[error(transparent)]
    Secret(AwsError),
    #[error("secret {secret} holds no text; store JSON with `username` and `password`")]
    SecretNotText { secret: String },
    #[error("secret {secret} is not JSON; store {{\"username\": ..., \"password\": ...}}")]
    SecretNotJson { secret: String },
    #[error("secret {secret} lacks `username` or `password`; store both")]
    SecretIncomplete { secret: String },
    /// The local-only mapping sends `key`'s checks to a database of the other engine.
    #[error(
        "{LOCAL_DATABASE_URLS_ENV} maps {key} ({engine}) to a {dialect:?} URL; map it to a database of its engine"
    )]
    LocalEngineMismatch {
        key: String,
        engine: Engine,
        dialect: Dialect,
    },
    /// The restore (or replica) has no endpoint yet: the check runs on a later tick.
    #[error("{resource} has no endpoint yet")]
    NoEndpoint { resource: String },
    #[error("the plan has no resource {resource}")]
    NotInPlan { resource: String },
    #[error("{resource} has no `engine` in the plan")]
    NoEngine { resource: String },
    #[error("{resource} has no `validation` credentials in the plan")]
    NoCredentials { resource: String },
    #[error("{resource} has no writer record to reach it by")]
    NoWriterRecord { resource: String },
}

fn quoted_scheme(scheme: &Option<String>) -> String {
    match scheme {
        Some(s) => format!("scheme {s:?} is "),
        None => "the scheme is ".to_string(),
    }
}

/// A database URL, parsed: `postgres://user:password@host:port/database` or `mysql://...`.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalDatabase {
    /// The dialect its scheme names.
    pub dialect: Dialect,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User, when the URL names one.
    pub username: Option<String>,
    /// Password, when the URL carries one.
    pub password: Option<String>,
    /// Database.
    pub database: String,
}

impl std::fmt::Debug for LocalDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}://{}@{}:{}/{}",
            self.dialect,
            self.username.as_deref().unwrap_or(""),
            self.host,
            self.port,
            self.database
        )
    }
}

impl LocalDatabase {
    /// Parse a URL.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::NoScheme)?;
        let (dialect, default_port) = match scheme {
            "postgres" | "postgresql" => (Dialect::Postgres, 5432),
            "mysql" | "mariadb" => (Dialect::Mysql, 3306),
            // Quoted only when it is a plain word: nothing of a password can be in it.
            other => {
                return Err(UrlError::UnknownScheme {
                    scheme: other
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric())
                        .then(|| other.to_string()),
                });
            }
        };
        let (authority, database) = rest.split_once('/').ok_or(UrlError::NoDatabase)?;
        if database.is_empty() || database.contains(['/', '?']) {
            return Err(UrlError::DatabaseNotPlain);
        }
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let (username, password) = match credentials {
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (Some(percent_decoded(u)?), Some(percent_decoded(p)?)),
                None => (Some(percent_decoded(c)?), None),
            },
            None => (None, None),
        };
        // The port is not quoted: a `/` in an unencoded password ends the authority early,
        // and what stands here would be part of the password.
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| UrlError::BadPort)?,
            ),
            None => (hostport.to_string(), default_port),
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        Ok(LocalDatabase {
            dialect,
            host,
            port,
            username,
            password,
            database: database.to_string(),
        })
    }
}

/// A URL's user or password with its `%XX` escapes decoded (how a password holds a comma,
/// a blank, `/` or `@`). The error quotes nothing of it.
fn percent_decoded(text: &str) -> Result<String, UrlError> {
    let bad = || UrlError::BadEscape;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::NotUtf8)
}

/// Read [`LOCAL_DATABASE_URLS_ENV`]: resource id → database. Empty when unset; an error
/// when it is set without a local emulator, or malformed.
pub fn local_databases(
    lookup: &dyn Fn(&str) -> Option<String>,
    settings: &ClientSettings,
) -> Result<BTreeMap<String, LocalDatabase>, LocalDatabaseError> {
    let Some(text) = lookup(LOCAL_DATABASE_URLS_ENV).filter(|v| !v.trim().is_empty()) else {
        return Ok(BTreeMap::new());
    };
    if settings.endpoint_url.is_none() {
        return Err(LocalDatabaseError::WithoutEmulator);
    }
    let mut out = BTreeMap::new();
    for (n, pair) in text
        .split([',', ' ', '\n'])
        .filter(|p| !p.trim().is_empty())
        .enumerate()
    {
        let entry = n + 1;
        let (resource, url) = pair
            .trim()
            .split_once('=')
            .ok_or(LocalDatabaseError::NotAPair { entry })?;
        if resource.is_empty()
            || !resource
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*'))
        {
            return Err(LocalDatabaseError::NoResource { entry });
        }
        let db = LocalDatabase::parse(url).map_err(|reason| LocalDatabaseError::BadUrl {
            resource: resource.to_string(),
            reason,
        })?;
        out.insert(resource.to_string(), db);
    }
    Ok(out)
}

/// The local database mapped to `key`: an exact entry, else the longest `prefix*` entry
/// it starts with (a recovery's name is known only once it is requested:
/// `orders-db-pitr-*` maps every recovery of `orders-db`).
fn local_match<'m>(
    local: &'m BTreeMap<String, LocalDatabase>,
    key: &str,
) -> Option<(&'m str, &'m LocalDatabase)> {
    if let Some((k, v)) = local.get_key_value(key) {
        return Some((k.as_str(), v));
    }
    local
        .iter()
        .filter_map(|(k, v)| {
            let prefix = k.strip_suffix('*')?;
            key.starts_with(prefix)
                .then_some((k.as_str(), v, prefix.len()))
        })
        .max_by_key(|(_, _, n)| *n)
        .map(|(k, v, _)| (k, v))
}

/// Validation on AWS.
#[derive(Debug, Clone)]
pub struct AwsValidation {
    rds: aws_sdk_rds::Client,
    region: String,
    home_config: aws_config::SdkConfig,
    local: BTreeMap<String, LocalDatabase>,
}

/// Which checks run against which database.
pub(crate) struct CheckRun<'a> {
    /// The plan resource whose validation checks apply.
    pub resource: &'a ProtectedResource,
    /// The engine the database speaks.
    pub engine: Engine,
    /// Where it answers (`None` until RDS reports it).
    pub endpoint: Option<&'a Endpoint>,
    /// The key of the local-only mapping that may name the database instead.
    pub local_key: &'a str,
    /// Assertions of its own (a recovery's), beside the plan's.
    pub extra: &'a [SqlAssertion],
}

impl AwsValidation {
    /// The adapter for `plan`: RDS in the region validation restores into, Secrets Manager
    /// in the function's own region (or the region a secret's ARN names), and the local
    /// database mapping read through `lookup`.
    pub fn new(
        plan: &Plan,
        clients: &AwsClients,
        settings: &ClientSettings,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, LocalDatabaseError> {
        let region = restore_region(plan).to_string();
        let rds = clients
            .region(&region)
            .map(|c| c.rds.clone())
            .unwrap_or_else(|| clients.dr.rds.clone());
        Ok(AwsValidation {
            rds,
            region,
            home_config: clients.home.config.clone(),
            local: local_databases(lookup, settings)?,
        })
    }

    fn secrets(&self, secret: &str) -> aws_sdk_secretsmanager::Client {
        // An ARN names its region: arn:aws:secretsmanager:<region>:<account>:secret:<name>.
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(&self.home_config);
        if let Some(region) = secret
            .strip_prefix("arn:")
            .and_then(|r| r.split(':').nth(2))
            .filter(|r| !r.is_empty())
        {
            builder = builder.region(Region::new(region.to_string()));
        }
        aws_sdk_secretsmanager::Client::from_conf(builder.build())
    }

    /// The username and password in `secret` (JSON with `username` and `password`, the
    /// form RDS and Secrets Manager's rotation use).
    async fn credentials(&self, secret: &str) -> Result<(String, String), ProbeTargetError> {
        let out = self
            .secrets(secret)
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .map_err(|e| {
                ProbeTargetError::Secret(AwsError::from_sdk(
                    "secretsmanager",
                    "GetSecretValue",
                    secret,
                    &e,
                ))
            })?;
        let secret = || secret.to_string();
        let text = out
            .secret_string()
            .ok_or_else(|| ProbeTargetError::SecretNotText { secret: secret() })?;
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| ProbeTargetError::SecretNotJson { secret: secret() })?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
        match (field("username"), field("password")) {
            (Some(u), Some(p)) => Ok((u, p)),
            _ => Err(ProbeTargetError::SecretIncomplete { secret: secret() }),
        }
    }

    /// Where the probe connects: the database the local-only mapping names for
    /// `local_key` (a resource id, or a prefix ending in `*`), else `endpoint`.
    pub(crate) async fn target(
        &self,
        local_key: &str,
        engine: Engine,
        endpoint: Option<&Endpoint>,
        database: &str,
        secret: &str,
    ) -> Result<ProbeTarget, ProbeTargetError> {
        let dialect = if engine.is_postgres_family() {
            Dialect::Postgres
        } else {
            Dialect::Mysql
        };
        let (username, password) = self.credentials(secret).await?;
        if let Some((key, local)) = local_match(&self.local, local_key) {
            if local.dialect != dialect {
                return Err(ProbeTargetError::LocalEngineMismatch {
                    key: key.to_string(),
                    engine,
                    dialect: local.dialect,
                });
            }
            tracing::info!(target = %local_key, restored = ?endpoint, local = ?local, "local run: probing the mapped local database instead of the emulated restore");
            return Ok(ProbeTarget {
                dialect,
                host: local.host.clone(),
                port: local.port,
                database: local.database.clone(),
                username: local.username.clone().unwrap_or(username),
                password: local.password.clone().unwrap_or(password),
                require_tls: false,
            });
        }
        let endpoint = endpoint
            .cloned()
            .ok_or_else(|| ProbeTargetError::NoEndpoint {
                resource: local_key.to_string(),
            })?;
        Ok(ProbeTarget {
            dialect,
            host: endpoint.host,
            port: endpoint.port,
            database: database.to_string(),
            username,
            password,
            require_tls: true,
        })
    }

    /// Run the checks `run` names that `from` has not taken, those that end within
    /// `window`.
    pub(crate) async fn probe_database(
        &self,
        plan: &Plan,
        run: CheckRun<'_>,
        from: CheckProgress,
        window: Duration,
    ) -> CheckProgress {
        let CheckRun {
            resource,
            engine,
            endpoint,
            local_key,
            extra,
        } = run;
        // The checks end before the action's window does: the session's closing and the
        // reply fit in the margin.
        let budget = CheckBudget::within(
            Duration::from_secs(u64::from(plan.validation.statement_timeout_seconds)),
            window.saturating_sub(crate::budget::CHECK_MARGIN),
        );
        let Some(v) = &resource.validation else {
            return CheckProgress::ended_with(CheckResult::error(
                "checks",
                CheckKind::Connect,
                format!(
                    "{} has no validation section in the plan: the checks need its \
                     `validation.database` and `validation.credentials_secret`",
                    resource.id
                ),
            ));
        };
        let dialect = if engine.is_postgres_family() {
            Dialect::Postgres
        } else {
            Dialect::Mysql
        };
        let mut v = v.clone();
        v.assertions.extend(extra.iter().cloned());
        let checks = match plan_checks(dialect, &v) {
            Ok(c) => c,
            Err(e) => {
                return CheckProgress::ended_with(CheckResult::error(
                    "checks",
                    CheckKind::Connect,
                    e.to_string(),
                ));
            }
        };
        let target = match self
            .target(
                local_key,
                engine,
                endpoint,
                &v.database,
                &v.credentials_secret,
            )
            .await
        {
            Ok(t) => t,
            Err(e) => {
                return CheckProgress::ended_with(CheckResult::error(
                    "connect",
                    CheckKind::Connect,
                    e.to_string(),
                ));
            }
        };
        SqlProbe.probe_from(&target, &checks, from, budget).await
    }

    async fn delete_tagged_instance(&self, id: &str) -> Result<(), AwsError> {
        delete_instance_without_snapshot(&self.rds, id).await
    }

    async fn delete_tagged_cluster(&self, id: &str) -> Result<(), AwsError> {
        delete_cluster_without_snapshot(&self.rds, id).await
    }
}

/// Delete a throw-away instance (a validation or point-in-time restore) without a final
/// snapshot: its data is a copy of what the source's backups hold. Already gone, or
/// already being deleted, is what was asked for.
pub(crate) async fn delete_instance_without_snapshot(
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<(), AwsError> {
    let Err(e) = rds
        .delete_db_instance()
        .db_instance_identifier(id)
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await
    else {
        return Ok(());
    };
    let err = AwsError::from_sdk("rds", "DeleteDBInstance", id, &e);
    if err.is_code("DBInstanceNotFound") {
        return Ok(());
    }
    // The error's wording is not a contract: look at the instance (gone by now is done).
    let deleting = err.is_code("InvalidDBInstanceState")
        && fetch_instance(rds, id)
            .await?
            .is_none_or(|db| db.db_instance_status() == Some("deleting"));
    if deleting { Ok(()) } else { Err(err) }
}

/// Delete a throw-away cluster without a final snapshot; gone or already being deleted is
/// done. Its instances must be deleted first (RDS refuses otherwise: the caller retries).
pub(crate) async fn delete_cluster_without_snapshot(
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<(), AwsError> {
    let Err(e) = rds
        .delete_db_cluster()
        .db_cluster_identifier(id)
        .skip_final_snapshot(true)
        .send()
        .await
    else {
        return Ok(());
    };
    let err = AwsError::from_sdk("rds", "DeleteDBCluster", id, &e);
    if err.is_code("DBClusterNotFoundFault") {
        return Ok(());
    }
    // As for instances: the state, not the message's wording, says it is being deleted.
    // (The region only labels the facts, which are not kept.)
    let deleting = err.is_code("InvalidDBClusterStateFault")
        && describe_cluster(rds, "", id)
            .await?
            .is_none_or(|c| c.status == "deleting");
    if deleting { Ok(()) } else { Err(err) }
}

/// Whether `id` (as RDS lists it) is one of the runs' own temporary resources, which the
/// sweep leaves alone.
fn kept(keep: &[String], id: &str) -> bool {
    keep.iter().any(|k| IdentifierRule::Rds.same(k, id))
}

fn is_ours(tags: &BTreeMap<String, String>, plan: &str) -> bool {
    tags.get(PURPOSE_TAG).map(String::as_str) == Some(PURPOSE_VALIDATION)
        && tags.get(PLAN_TAG).map(String::as_str) == Some(plan)
}

fn created(tags: &BTreeMap<String, String>) -> Option<DateTime<Utc>> {
    tags.get(CREATED_TAG)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[async_trait]
impl ValidationPort for AwsValidation {
    async fn list_snapshots(&self, region: &str) -> Result<Vec<BackupRecord>, AwsError> {
        let mut out = list_db_snapshots(&self.rds, region).await?;
        out.extend(list_cluster_snapshots(&self.rds, region).await?);
        Ok(out)
    }

    async fn read_temp(&self, run: &Run) -> TempFacts {
        let mut facts = TempFacts::default();
        match fetch_instance(&self.rds, &run.instance).await {
            Ok(found) => {
                facts.instance = found.map(|db| DbView {
                    status: db.db_instance_status().unwrap_or("unknown").to_string(),
                    endpoint: db.endpoint().and_then(|e| {
                        Some(Endpoint {
                            host: e.address()?.to_string(),
                            port: u16::try_from(e.port()?).ok()?,
                        })
                    }),
                })
            }
            Err(e) => facts.unreadable = Some(e.to_string()),
        }
        if let Some(cluster) = &run.cluster {
            match describe_cluster(&self.rds, &self.region, cluster).await {
                Ok(found) => {
                    facts.cluster = found.map(|c| DbView {
                        status: c.status,
                        endpoint: None,
                    })
                }
                Err(e) => facts.unreadable = Some(e.to_string()),
            }
        }
        facts
    }

    async fn restore(&self, plan: &Plan, run: &Run) -> Result<(), AwsError> {
        let v = &plan.validation;
        let tags = rds_tags(&run.tags(&plan.name));
        let result = match &run.cluster {
            None => self
                .rds
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&run.instance)
                .db_snapshot_identifier(&run.snapshot.id)
                .db_instance_class(&v.instance_class)
                .set_db_subnet_group_name(v.subnet_group.clone())
                .set_vpc_security_group_ids(
                    (!v.security_group_ids.is_empty()).then(|| v.security_group_ids.clone()),
                )
                .publicly_accessible(false)
                .multi_az(false)
                .deletion_protection(false)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    AwsError::from_sdk("rds", "RestoreDBInstanceFromDBSnapshot", &run.instance, &e)
                }),
            Some(cluster) => self
                .rds
                .restore_db_cluster_from_snapshot()
                .db_cluster_identifier(cluster)
                .snapshot_identifier(&run.snapshot.id)
                .engine(run.engine.as_str())
                .set_db_subnet_group_name(v.subnet_group.clone())
                .set_vpc_security_group_ids(
                    (!v.security_group_ids.is_empty()).then(|| v.security_group_ids.clone()),
                )
                .deletion_protection(false)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    AwsError::from_sdk("rds", "RestoreDBClusterFromSnapshot", cluster, &e)
                }),
        };
        match result {
            Err(e)
                if e.is_code("DBInstanceAlreadyExists")
                    || e.is_code("DBClusterAlreadyExistsFault") =>
            {
                Ok(())
            }
            other => other,
        }
    }

    async fn create_instance(&self, plan: &Plan, run: &Run) -> Result<(), AwsError> {
        let Some(cluster) = &run.cluster else {
            return Ok(());
        };
        match self
            .rds
            .create_db_instance()
            .db_instance_identifier(&run.instance)
            .db_cluster_identifier(cluster)
            .engine(run.engine.as_str())
            .db_instance_class(&plan.validation.instance_class)
            .publicly_accessible(false)
            .set_tags(Some(rds_tags(&run.tags(&plan.name))))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::from_sdk("rds", "CreateDBInstance", &run.instance, &e);
                if err.is_code("DBInstanceAlreadyExists") {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn delete_instance(&self, run: &Run) -> Result<(), AwsError> {
        self.delete_tagged_instance(&run.instance).await
    }

    async fn delete_cluster(&self, run: &Run) -> Result<(), AwsError> {
        match &run.cluster {
            Some(c) => self.delete_tagged_cluster(c).await,
            None => Ok(()),
        }
    }

    async fn run_checks(
        &self,
        plan: &Plan,
        resource: &ProtectedResource,
        run: &Run,
        from: CheckProgress,
        window: Duration,
    ) -> CheckProgress {
        if resource.validation.is_none() {
            return CheckProgress::ended_with(CheckResult::error(
                "checks",
                CheckKind::Connect,
                format!("{} has no validation checks in the plan", resource.id),
            ));
        }
        self.probe_database(
            plan,
            CheckRun {
                resource,
                engine: run.engine,
                endpoint: run.endpoint.as_ref(),
                local_key: &resource.id,
                extra: &[],
            },
            from,
            window,
        )
        .await
    }

    async fn tag_validated(&self, run: &Run, at: DateTime<Utc>) -> Result<(), AwsError> {
        let Some(arn) = &run.snapshot.arn else {
            return Err(AwsError::bad_request(
                "rds",
                "AddTagsToResource",
                &run.snapshot.id,
                "the snapshot's ARN is unknown",
            ));
        };
        let tags = BTreeMap::from([(
            VALIDATED_TAG.to_string(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )]);
        self.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(rds_tags(&tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("rds", "AddTagsToResource", arn, &e))
    }

    async fn leftovers(
        &self,
        plan: &Plan,
        before: DateTime<Utc>,
        keep: &[String],
    ) -> Result<Vec<Leftover>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self
            .rds
            .describe_db_instances()
            .into_paginator()
            .page_size(100)
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| AwsError::from_sdk("rds", "DescribeDBInstances", &self.region, &e))?;
            for db in page.db_instances() {
                let id = db.db_instance_identifier().unwrap_or_default().to_string();
                let tags = tag_map(db.tag_list());
                let born = created(&tags).or_else(|| db.instance_create_time().and_then(to_chrono));
                if id.starts_with(TEMP_PREFIX)
                    && is_ours(&tags, &plan.name)
                    && !kept(keep, &id)
                    && born.is_some_and(|b| b < before)
                    && db.db_instance_status() != Some("deleting")
                {
                    found.push(Leftover::Instance(id));
                }
            }
        }
        let mut pages = self
            .rds
            .describe_db_clusters()
            .into_paginator()
            .page_size(100)
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| AwsError::from_sdk("rds", "DescribeDBClusters", &self.region, &e))?;
            for c in page.db_clusters() {
                let id = c.db_cluster_identifier().unwrap_or_default().to_string();
                let tags = tag_map(c.tag_list());
                let born = created(&tags).or_else(|| c.cluster_create_time().and_then(to_chrono));
                if id.starts_with(TEMP_PREFIX)
                    && is_ours(&tags, &plan.name)
                    && !kept(keep, &id)
                    && born.is_some_and(|b| b < before)
                    && c.status() != Some("deleting")
                    // RDS deletes a cluster only once its instances are gone.
                    && c.db_cluster_members().is_empty()
                {
                    found.push(Leftover::Cluster(id));
                }
            }
        }
        Ok(found)
    }

    async fn delete_leftover(&self, leftover: &Leftover) -> Result<(), AwsError> {
        match leftover {
            Leftover::Instance(id) => self.delete_tagged_instance(id).await,
            Leftover::Cluster(id) => self.delete_tagged_cluster(id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(value: &str) -> impl Fn(&str) -> Option<String> + '_ {
        move |k| (k == LOCAL_DATABASE_URLS_ENV).then(|| value.to_string())
    }

    fn local_settings() -> ClientSettings {
        ClientSettings {
            endpoint_url: Some("http://127.0.0.1:4566".into()),
            ..ClientSettings::default()
        }
    }

    #[test]
    fn local_urls_map_resources_to_databases() {
        let map = local_databases(
            &lookup("orders-db=postgres://postgres@127.0.0.1:5432/orders, billing-db=mysql://root:pw@127.0.0.1/billing"),
            &local_settings(),
        )
        .unwrap();
        let orders = &map["orders-db"];
        assert_eq!(orders.dialect, Dialect::Postgres);
        assert_eq!(orders.username.as_deref(), Some("postgres"));
        assert_eq!(orders.password, None);
        assert_eq!((orders.host.as_str(), orders.port), ("127.0.0.1", 5432));
        let billing = &map["billing-db"];
        assert_eq!(billing.port, 3306);
        assert_eq!(billing.password.as_deref(), Some("pw"));
        assert!(
            !format!("{billing:?}").contains("pw"),
            "no password in Debug"
        );
    }

    #[test]
    fn a_prefix_entry_maps_every_recovered_instance_and_an_exact_entry_wins() {
        let map = local_databases(
            &lookup(
                "orders-db=postgres://h:1/orders,orders-db-pitr-*=postgres://h:2/orders,\
                 orders-*=postgres://h:3/orders",
            ),
            &local_settings(),
        )
        .unwrap();
        let port = |key: &str| local_match(&map, key).map(|(k, db)| (k.to_string(), db.port));
        assert_eq!(port("orders-db"), Some(("orders-db".into(), 1)));
        // The longest matching prefix decides.
        assert_eq!(
            port("orders-db-pitr-202611201429"),
            Some(("orders-db-pitr-*".into(), 2))
        );
        assert_eq!(port("orders-archive"), Some(("orders-*".into(), 3)));
        assert_eq!(port("billing-db"), None);
    }

    #[test]
    fn the_local_setting_is_refused_in_aws_and_bad_urls_are_named() {
        let err = local_databases(
            &lookup("orders-db=postgres://h/db"),
            &ClientSettings::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("AWS_ENDPOINT_URL is not"), "{err}");
        for (value, words) in [
            ("orders-db", "is not `resource=url`"),
            ("orders-db=sqlite://x/y", "neither postgres nor mysql"),
            (
                "orders-db=postgres://h:port/db",
                "port after the host is not a number",
            ),
            ("orders-db=postgres://h", "names no database"),
        ] {
            let err = local_databases(&lookup(value), &local_settings()).unwrap_err();
            assert!(err.to_string().contains(words), "{value}: {err}");
        }
        assert!(
            local_databases(&|_| None, &ClientSettings::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn no_error_about_the_local_urls_quotes_a_password() {
        for value in [
            "postgres://admin:S3cretPw@127.0.0.1:5432/orders",
            "orders-db=postgres://admin:S3cret Pw@127.0.0.1:5432/orders",
            "orders-db=postgres://admin:S3cret,Pw@127.0.0.1:5432/orders",
            "orders-db=postgres://admin:S3cretPw@127.0.0.1:54x2/orders",
            "orders-db=postgres://admin:S3cret/Pw@127.0.0.1:5432/orders",
            "orders-db=postgres://admin:S3cret%zzPw@127.0.0.1:5432/orders",
            "postgres://admin:S3cret=Pw@127.0.0.1:5432/orders",
            "orders-db=pg:S3cretPw://admin@127.0.0.1:5432/orders",
        ] {
            let err = local_databases(&lookup(value), &local_settings())
                .expect_err(value)
                .to_string();
            assert!(
                !err.contains("S3cret") && !err.contains("Pw"),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn a_password_may_hold_any_character_percent_encoded() {
        let map = local_databases(
            &lookup("orders-db=postgres://app%40x:a%2Cb%20c%2Fd%25@127.0.0.1:5432/orders"),
            &local_settings(),
        )
        .unwrap();
        let orders = &map["orders-db"];
        assert_eq!(orders.username.as_deref(), Some("app@x"));
        assert_eq!(orders.password.as_deref(), Some("a,b c/d%"));
        assert_eq!((orders.host.as_str(), orders.port), ("127.0.0.1", 5432));
    }
}
