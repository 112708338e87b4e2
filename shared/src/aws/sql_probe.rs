//! The database probe on sqlx: one driver for PostgreSQL and MySQL/MariaDB. Every check
//! runs in a session that is read-only at the server, inside a read-only transaction
//! with a statement timeout, and the session is refused (no check runs) unless the
//! server says it is read-only. Names were quoted, values bound and assertions checked
//! to be one read-only query by [`crate::validation::checks`], so nothing from the plan
//! is spliced here. This module opens no writable session: the game day's canary, the
//! only SQL Lifeboat writes, has its own path ([`super::canary_writer`]).
//!
//! Read-only at the server: PostgreSQL gets `default_transaction_read_only=on` in its
//! startup options and every check runs in `BEGIN READ ONLY`; MySQL and MariaDB get
//! `SET SESSION TRANSACTION READ ONLY` (which, unlike `START TRANSACTION READ ONLY` alone,
//! also refuses DDL, whose implicit commit ends the transaction) and then
//! `START TRANSACTION READ ONLY`. Every check is sent as a prepared statement, which
//! both servers refuse to hold more than one statement, and the session is proved
//! read-only again before each check.
//!
//! Before any PostgreSQL check runs, the names in the checks that only the server
//! resolves ([`ServerNames`]) are looked up in its catalogue, and a check is not run
//! when one of them would run code the statement check never saw: `t.f` calling a
//! function `f(t)` (attribute notation), `x::d` checking a domain's constraints, a
//! listed function's namesake of the database's own ([`ServerNames::refusal`]). MySQL
//! and MariaDB resolve no name so: there is nothing to look up.

use crate::validation::checks::{
    CheckKind, CheckProgress, CheckResult, Dialect, Param, PlannedCheck, Returned, judge,
};
use crate::validation::run::{CheckBudget, DatabaseProbe, ProbeTarget};
use crate::validation::statement::{CatalogKind, CatalogObject, NameRefused, ServerNames};
use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, Row};
use std::time::{Duration, Instant};

/// How long connecting may take before the check fails (an unreachable endpoint must not
/// hold the invocation).
const CONNECT_TIMEOUT: Duration = crate::budget::DATABASE_CONNECT_TIMEOUT;

/// The sqlx probe.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlProbe;

fn connect_failed(target: &ProbeTarget, reason: impl std::fmt::Display) -> Vec<CheckResult> {
    vec![CheckResult::error(
        "connect",
        CheckKind::Connect,
        format!(
            "cannot connect to {}:{} (database {}, user {}): {reason}",
            target.host, target.port, target.database, target.username
        ),
    )]
}

fn statement_failed(check: &PlannedCheck, e: &sqlx::Error) -> CheckResult {
    let reason = match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    };
    CheckResult::error(
        &check.name,
        check.kind,
        format!("{}: the query failed: {reason}", check.name),
    )
}

/// Why a check's answer cannot be read as text (the check fails; the fix is in its SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
// Each variant's message is its documentation.
#[allow(missing_docs)]
pub enum Unreadable {
    #[error("the query returned no column")]
    NoColumn,
    /// A type the probe does not turn into text on that engine.
    #[error("{}", type_fix(*.0))]
    Type(Dialect),
}

fn type_fix(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "the value's type is not text, an integer, a boolean or a float; cast it to text in the assertion's SQL (`::text`)"
        }
        Dialect::Mysql => {
            "the value's type is not text, an integer or a float; cast it in the assertion's SQL (`CAST(... AS CHAR)`)"
        }
    }
}

/// The first column of a PostgreSQL row as text; the types SQL checks return.
fn pg_text(row: &PgRow) -> Result<Option<String>, Unreadable> {
    if row.is_empty() {
        return Err(Unreadable::NoColumn);
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(0) {
        return Ok(v);
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(0) {
        return Ok(v.map(|v| v.to_string()));
    }
    if let Ok(v) = row.try_get::<Option<i32>, _>(0) {
        return Ok(v.map(|v| v.to_string()));
    }
    if let Ok(v) = row.try_get::<Option<i16>, _>(0) {
        return Ok(v.map(|v| v.to_string()));
    }
    // PostgreSQL's own text form of a boolean.
    if let Ok(v) = row.try_get::<Option<bool>, _>(0) {
        return Ok(v.map(|v| if v { "t" } else { "f" }.to_string()));
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(0) {
        return Ok(v.map(|v| v.to_string()));
    }
    Err(Unreadable::Type(Dialect::Postgres))
}

/// The first column of a MySQL row as text.
fn mysql_text(row: &MySqlRow) -> Result<Option<String>, Unreadable> {
    if row.is_empty() {
        return Err(Unreadable::NoColumn);
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(0) {
        return Ok(v.map(|v| v.to_string()));
    }
    if let Ok(v) = row.try_get::<Option<u64>, _>(0) {
        return Ok(v.map(|v| v.to_string()));
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(0) {
        return Ok(v);
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(0) {
        return Ok(v.map(|v| v.to_string()));
    }
    // Expressions MySQL types as binary strings.
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(0) {
        return Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned()));
    }
    Err(Unreadable::Type(Dialect::Mysql))
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Whether check `i` is skipped because the check it depends on failed.
fn gated(check: &PlannedCheck, results: &[Option<CheckResult>]) -> bool {
    check
        .gate
        .and_then(|g| results.get(g).cloned().flatten())
        .is_some_and(|r| !r.passed)
}

/// Why a session could not be made read-only.
#[derive(Debug)]
enum OpenError {
    /// The server refused a statement.
    Sql(sqlx::Error),
    /// The server accepted the statements but does not say it is read-only (a pooler
    /// that drops startup options, a server that ignores the setting).
    NotReadOnly(String),
}

impl From<sqlx::Error> for OpenError {
    fn from(e: sqlx::Error) -> Self {
        OpenError::Sql(e)
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Sql(e) => write!(f, "{e}"),
            OpenError::NotReadOnly(value) => write!(
                f,
                "the server reports the session's transaction_read_only as {value:?}, not on: \
                 no check runs in a session that could write"
            ),
        }
    }
}

async fn pg_begin(conn: &mut PgConnection, timeout: Duration) -> Result<(), OpenError> {
    sqlx::raw_sql("BEGIN READ ONLY").execute(&mut *conn).await?;
    // `set_config(..., true)` is SET LOCAL with a bound value: it ends with the transaction.
    sqlx::query("SELECT pg_catalog.set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", timeout.as_millis()))
        .execute(&mut *conn)
        .await?;
    pg_read_only(conn).await
}

/// Whether the current transaction is read-only, as the server says.
async fn pg_read_only(conn: &mut PgConnection) -> Result<(), OpenError> {
    let read_only: String =
        sqlx::query_scalar("SELECT pg_catalog.current_setting('transaction_read_only')")
            .fetch_one(&mut *conn)
            .await?;
    if read_only != "on" {
        return Err(OpenError::NotReadOnly(read_only));
    }
    Ok(())
}

/// Every function and type of the database named as one of `names` (in any case, in
/// any schema: a superset of what the server could resolve them to), with what makes
/// each one dangerous. Read in a read-only transaction of its own, bounded by
/// `timeout`, whose search_path is pg_catalog alone (the lookup itself runs only
/// PostgreSQL's own functions and operators), the names bound as one parameter.
async fn pg_catalog_objects(
    conn: &mut PgConnection,
    names: &ServerNames,
    timeout: Duration,
) -> Result<Vec<CatalogObject>, sqlx::Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::raw_sql("BEGIN READ ONLY").execute(&mut *conn).await?;
    let found = async {
        sqlx::query(
            "SELECT pg_catalog.set_config('search_path', 'pg_catalog', true), \
             pg_catalog.set_config('statement_timeout', $1, true)",
        )
        .bind(format!("{}ms", timeout.as_millis()))
        .execute(&mut *conn)
        .await?;
        let lowered: Vec<String> = names.all().iter().map(|n| n.to_lowercase()).collect();
        sqlx::query_as::<_, (String, String, String, bool, bool, bool)>(CATALOG_LOOKUP)
            .bind(lowered)
            .fetch_all(&mut *conn)
            .await
    }
    .await;
    let rolled_back = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    let rows = found?;
    rolled_back?;
    Ok(rows
        .into_iter()
        .map(
            |(kind, name, signature, built_in, in_extension, takes_a_row)| CatalogObject {
                kind: if kind == "type" {
                    CatalogKind::Type
                } else {
                    CatalogKind::Function
                },
                name,
                signature,
                built_in,
                in_extension,
                takes_a_row,
            },
        )
        .collect())
}

/// The functions and types named as one of `$1` (lower case). A function "takes a row"
/// when PostgreSQL's attribute notation can call it with one row: one argument needed
/// (those after it have defaults; a lone VARIADIC one takes the row as its element),
/// whose type a row is (a composite or domain type), matches (`record` and the
/// polymorphic types that take any element) or converts to implicitly (a cast the
/// database added).
const CATALOG_LOOKUP: &str = "\
SELECT 'function', p.proname::text, \
       pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes)), \
       n.nspname = 'pg_catalog', \
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
               WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e'), \
       p.pronargs >= 1 AND p.pronargs - p.pronargdefaults <= 1 AND EXISTS ( \
         SELECT 1 FROM pg_catalog.pg_type t \
         WHERE t.oid = CASE WHEN p.pronargs = 1 AND p.provariadic <> 0 THEN p.provariadic ELSE p.proargtypes[0] END \
           AND (t.typtype IN ('c', 'd') \
                OR t.typname IN ('record', 'anyelement', 'anynonarray', 'anycompatible', 'anycompatiblenonarray', 'any') \
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_type s ON s.oid = c.castsource \
                           WHERE c.casttarget = t.oid AND c.castcontext = 'i' \
                             AND (s.typtype IN ('c', 'd') OR s.typname = 'record')))) \
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
WHERE pg_catalog.lower(p.proname::text) = ANY ($1) \
UNION ALL \
SELECT 'type', t.typname::text, pg_catalog.format('%I.%I', n.nspname, t.typname), \
       n.nspname = 'pg_catalog', \
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
               WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid = t.oid AND d.deptype = 'e'), \
       false \
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
WHERE pg_catalog.lower(t.typname::text) = ANY ($1) \
ORDER BY 1, 2, 3";

/// An open, read-only session on one engine: what differs between the two.
#[async_trait]
trait Session: Send {
    /// Run one check's statement: `None` when it returned no row, else its first column
    /// as text (or why it cannot be read as text).
    async fn scalar(
        &mut self,
        check: &PlannedCheck,
    ) -> Result<Option<Result<Option<String>, Unreadable>>, sqlx::Error>;
    /// Make the session usable again after a failed statement.
    async fn recover(&mut self) -> Result<(), OpenError>;
    /// Whether the server still says the session (and its transaction) is read-only.
    async fn read_only(&mut self) -> Result<(), OpenError>;
    /// Roll back and disconnect.
    async fn end(self);
}

struct Postgres {
    conn: PgConnection,
    timeout: Duration,
}

#[async_trait]
impl Session for Postgres {
    async fn scalar(
        &mut self,
        check: &PlannedCheck,
    ) -> Result<Option<Result<Option<String>, Unreadable>>, sqlx::Error> {
        let mut query = sqlx::query(AssertSqlSafe(check.sql.clone()));
        for Param::Text(p) in &check.params {
            query = query.bind(p.clone());
        }
        Ok(query
            .fetch_optional(&mut self.conn)
            .await?
            .map(|row| pg_text(&row)))
    }

    async fn recover(&mut self) -> Result<(), OpenError> {
        // A failed statement aborts a PostgreSQL transaction: start a new one so the
        // remaining checks still run.
        sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await?;
        pg_begin(&mut self.conn, self.timeout).await
    }

    async fn read_only(&mut self) -> Result<(), OpenError> {
        pg_read_only(&mut self.conn).await
    }

    async fn end(mut self) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

struct Mysql {
    conn: MySqlConnection,
}

#[async_trait]
impl Session for Mysql {
    async fn scalar(
        &mut self,
        check: &PlannedCheck,
    ) -> Result<Option<Result<Option<String>, Unreadable>>, sqlx::Error> {
        let mut query = sqlx::query(AssertSqlSafe(check.sql.clone()));
        for Param::Text(p) in &check.params {
            query = query.bind(p.clone());
        }
        Ok(query
            .fetch_optional(&mut self.conn)
            .await?
            .map(|row| mysql_text(&row)))
    }

    async fn recover(&mut self) -> Result<(), OpenError> {
        // A failed statement leaves a MySQL transaction open and usable; the session
        // stays read-only whatever the statement was.
        Ok(())
    }

    async fn read_only(&mut self) -> Result<(), OpenError> {
        match mysql_read_only(&mut self.conn).await? {
            1 => Ok(()),
            other => Err(OpenError::NotReadOnly(other.to_string())),
        }
    }

    async fn end(mut self) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// Connecting failed or did not answer in time.
pub(super) async fn connect<C, F>(
    target: &ProbeTarget,
    connecting: F,
) -> Result<C, Vec<CheckResult>>
where
    F: std::future::Future<Output = Result<C, sqlx::Error>>,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(connect_failed(target, e)),
        Err(_) => Err(connect_failed(
            target,
            format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        )),
    }
}

/// Open the session and look up the checks' names: the session, and why each check may
/// not run (`None`: it may).
async fn open_postgres(
    target: &ProbeTarget,
    timeout: Duration,
    checks: &[PlannedCheck],
) -> Result<(Postgres, Vec<Option<NameRefused>>), Vec<CheckResult>> {
    // Read-only for the whole session, at the server, before any statement: the startup
    // options. `standard_conforming_strings` makes the server read backslashes in
    // strings as the statement check parsed them.
    let options = pg_options(target, "lifeboat-restore-validator").options([
        ("default_transaction_read_only", "on"),
        ("standard_conforming_strings", "on"),
    ]);
    let mut conn = connect(target, PgConnection::connect_with(&options)).await?;
    let mut names = ServerNames::default();
    for c in checks {
        names.extend(&c.names);
    }
    let found = pg_catalog_objects(&mut conn, &names, timeout)
        .await
        .map_err(|e| {
            connect_failed(
                target,
                format!(
                    "cannot look up the checks' names in the catalogue (no check runs without): {e}"
                ),
            )
        })?;
    let refusals = checks.iter().map(|c| c.names.refusal(&found)).collect();
    pg_begin(&mut conn, timeout)
        .await
        .map_err(|e| connect_failed(target, format!("cannot open a read-only session: {e}")))?;
    Ok((Postgres { conn, timeout }, refusals))
}

/// How to reach a PostgreSQL target; `application` names the connection in
/// `pg_stat_activity`. Neither read-only nor writable: each session's opener says which.
pub(super) fn pg_options(target: &ProbeTarget, application: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(&target.host)
        .port(target.port)
        .username(&target.username)
        .password(&target.password)
        .database(&target.database)
        .application_name(application)
        .ssl_mode(if target.require_tls {
            PgSslMode::Require
        } else {
            PgSslMode::Prefer
        })
}

/// How to reach a MySQL or MariaDB target. Neither read-only nor writable: each
/// session's opener says which.
pub(super) fn mysql_options(target: &ProbeTarget) -> MySqlConnectOptions {
    let mut options = MySqlConnectOptions::new()
        .host(&target.host)
        .port(target.port)
        .username(&target.username);
    // MySQL tells an empty password from none; a secret with an empty one means none.
    if !target.password.is_empty() {
        options = options.password(&target.password);
    }
    options
        .database(&target.database)
        .ssl_mode(if target.require_tls {
            MySqlSslMode::Required
        } else {
            MySqlSslMode::Preferred
        })
}

/// Bound every statement of a MySQL or MariaDB session by `timeout`, at the server.
/// MariaDB limits statements with `max_statement_time` (seconds); MySQL limits SELECTs
/// with `max_execution_time` (milliseconds), and a write waits for a row lock at most
/// `innodb_lock_wait_timeout` (whole seconds, at least 1). The values are numbers Lifeboat
/// computed, not text from the plan.
pub(super) async fn mysql_statement_limit(
    conn: &mut MySqlConnection,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_default();
    let limits = if version.contains("MariaDB") {
        vec![format!(
            "SET SESSION max_statement_time = {}",
            timeout.as_secs_f64()
        )]
    } else {
        vec![
            format!("SET SESSION max_execution_time = {}", timeout.as_millis()),
            format!(
                "SET SESSION innodb_lock_wait_timeout = {}",
                timeout.as_secs().max(1)
            ),
        ]
    };
    for limit in limits {
        sqlx::raw_sql(AssertSqlSafe(limit))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn open_mysql(target: &ProbeTarget, timeout: Duration) -> Result<Mysql, Vec<CheckResult>> {
    let options = mysql_options(target);
    let mut conn = connect(target, MySqlConnection::connect_with(&options)).await?;
    let limit = mysql_statement_limit(&mut conn, timeout).await;
    let begin = async {
        limit?;
        // The session, not only the transaction: DDL commits a MySQL transaction
        // implicitly, and what follows it runs outside; a read-only session refuses
        // DDL and every later write too.
        sqlx::raw_sql("SET SESSION TRANSACTION READ ONLY")
            .execute(&mut conn)
            .await?;
        match mysql_read_only(&mut conn).await? {
            1 => {}
            other => return Err(OpenError::NotReadOnly(other.to_string())),
        }
        sqlx::raw_sql("START TRANSACTION READ ONLY")
            .execute(&mut conn)
            .await?;
        Ok::<(), OpenError>(())
    };
    begin
        .await
        .map_err(|e| connect_failed(target, format!("cannot open a read-only session: {e}")))?;
    Ok(Mysql { conn })
}

/// The session's read-only flag: `transaction_read_only` (MySQL 8, MariaDB 11.1+), or
/// `tx_read_only` (MariaDB before 11.1, MySQL 5.7).
async fn mysql_read_only(conn: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
    match sqlx::query_scalar::<_, i64>("SELECT @@session.transaction_read_only")
        .fetch_one(&mut *conn)
        .await
    {
        Ok(v) => Ok(v),
        Err(sqlx::Error::Database(_)) => {
            sqlx::query_scalar("SELECT @@session.tx_read_only")
                .fetch_one(&mut *conn)
                .await
        }
        Err(e) => Err(e),
    }
}

/// Run the session's checks from where `progress` stands, in order, skipping those whose
/// gate failed and failing, unrun, those `refusals` names, while `budget` leaves room for
/// one more.
async fn run_session<S: Session>(
    mut session: S,
    checks: &[PlannedCheck],
    refusals: &[Option<NameRefused>],
    mut progress: CheckProgress,
    budget: CheckBudget,
) -> CheckProgress {
    let started = Instant::now();
    while let Some(check) = checks.get(progress.taken.len()) {
        if gated(check, &progress.taken) {
            progress.take(None);
            continue;
        }
        if let Some(Some(refused)) = refusals.get(progress.taken.len()) {
            progress.take(Some(CheckResult::error(
                &check.name,
                check.kind,
                format!(
                    "{}: not run: {refused}; {} (a retry will not help)",
                    check.name,
                    refused.fix()
                ),
            )));
            continue;
        }
        if !budget.leaves_room_for_a_check() {
            break;
        }
        // A check is one statement and cannot both make the session writable and write,
        // but on MySQL a `SET SESSION TRANSACTION READ WRITE` let through would leave the
        // next check's DDL free to commit: the session is proved read-only before each.
        if let Err(e) = session.read_only().await {
            progress.end(CheckResult::error(
                "connect",
                CheckKind::Connect,
                format!(
                    "{} and the checks after it were not run: the session is not read-only any more: {e}",
                    check.name
                ),
            ));
            break;
        }
        let check_started = Instant::now();
        let result = match session.scalar(check).await {
            Ok(None) => judge(check, &Returned::NoRow),
            Ok(Some(Ok(v))) => judge(check, &Returned::Value(v)),
            Ok(Some(Err(why))) => {
                CheckResult::error(&check.name, check.kind, format!("{}: {why}", check.name))
            }
            Err(e) => {
                let failed = statement_failed(check, &e);
                if let Err(e) = session.recover().await {
                    progress.take(Some(failed));
                    progress.end(CheckResult::error(
                        "connect",
                        CheckKind::Connect,
                        format!("the connection failed after a check: {e}"),
                    ));
                    break;
                }
                failed
            }
        };
        progress.take(Some(CheckResult {
            millis: millis(check_started),
            ..result
        }));
    }
    // Every check taken (or none planned).
    progress.finished |= progress.taken.len() >= checks.len();
    progress.millis = progress.millis.saturating_add(millis(started));
    session.end().await;
    progress
}

/// The session could not be opened: the checks end with why.
fn not_opened(mut progress: CheckProgress, failed: Vec<CheckResult>) -> CheckProgress {
    progress.end(failed.into_iter().next().unwrap_or_else(|| {
        CheckResult::error(
            "connect",
            CheckKind::Connect,
            "the session could not be opened",
        )
    }));
    progress
}

#[async_trait]
impl DatabaseProbe for SqlProbe {
    async fn probe_from(
        &self,
        target: &ProbeTarget,
        checks: &[PlannedCheck],
        from: CheckProgress,
        budget: CheckBudget,
    ) -> CheckProgress {
        let progress = from.resumed_for(checks.len());
        // Not even the connection and one check fit: the next action runs them.
        if !budget.leaves_room_to_connect() {
            return progress;
        }
        let timeout = budget.statement_timeout;
        match target.dialect {
            Dialect::Postgres => match open_postgres(target, timeout, checks).await {
                Ok((s, refusals)) => run_session(s, checks, &refusals, progress, budget).await,
                Err(failed) => not_opened(progress, failed),
            },
            // MySQL and MariaDB resolve no name to code at run time (see
            // `validation::statement`): nothing is looked up, nothing refused here.
            Dialect::Mysql => match open_mysql(target, timeout).await {
                Ok(s) => run_session(s, checks, &[], progress, budget).await,
                Err(failed) => not_opened(progress, failed),
            },
        }
    }
}
