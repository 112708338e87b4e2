//! The database probe on sqlx: one driver for PostgreSQL and MySQL/MariaDB. Every check
//! runs inside a read-only transaction with a statement timeout; names were quoted and
//! values bound by [`crate::validation::checks`], so nothing from the plan is spliced here.

use crate::validation::checks::{
    CheckKind, CheckResult, Dialect, Param, PlannedCheck, Returned, judge,
};
use crate::validation::run::{DatabaseProbe, ProbeTarget};
use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, Row};
use std::time::{Duration, Instant};

/// How long connecting may take before the check fails (an unreachable endpoint must not
/// hold the invocation).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The first column of a PostgreSQL row as text; the types SQL checks return.
fn pg_text(row: &PgRow) -> Result<Option<String>, String> {
    if row.is_empty() {
        return Err("the query returned no column".into());
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
    Err("the value's type is not text, an integer, a boolean or a float; cast it to text in the assertion's SQL (`::text`)".into())
}

/// The first column of a MySQL row as text.
fn mysql_text(row: &MySqlRow) -> Result<Option<String>, String> {
    if row.is_empty() {
        return Err("the query returned no column".into());
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
    Err("the value's type is not text, an integer or a float; cast it in the assertion's SQL (`CAST(... AS CHAR)`)".into())
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

async fn pg_begin(conn: &mut PgConnection, timeout: Duration) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("BEGIN READ ONLY").execute(&mut *conn).await?;
    // `set_config(..., true)` is SET LOCAL with a bound value: it ends with the transaction.
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", timeout.as_millis()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An open, read-only session on one engine: what differs between the two.
#[async_trait]
trait Session: Send {
    /// Run one check's statement: `None` when it returned no row, else its first column
    /// as text (or why it cannot be read as text).
    async fn scalar(
        &mut self,
        check: &PlannedCheck,
    ) -> Result<Option<Result<Option<String>, String>>, sqlx::Error>;
    /// Make the session usable again after a failed statement.
    async fn recover(&mut self) -> Result<(), sqlx::Error>;
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
    ) -> Result<Option<Result<Option<String>, String>>, sqlx::Error> {
        let mut query = sqlx::query(AssertSqlSafe(check.sql.clone()));
        for Param::Text(p) in &check.params {
            query = query.bind(p.clone());
        }
        Ok(query
            .fetch_optional(&mut self.conn)
            .await?
            .map(|row| pg_text(&row)))
    }

    async fn recover(&mut self) -> Result<(), sqlx::Error> {
        // A failed statement aborts a PostgreSQL transaction: start a new one so the
        // remaining checks still run.
        sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await?;
        pg_begin(&mut self.conn, self.timeout).await
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
    ) -> Result<Option<Result<Option<String>, String>>, sqlx::Error> {
        let mut query = sqlx::query(AssertSqlSafe(check.sql.clone()));
        for Param::Text(p) in &check.params {
            query = query.bind(p.clone());
        }
        Ok(query
            .fetch_optional(&mut self.conn)
            .await?
            .map(|row| mysql_text(&row)))
    }

    async fn recover(&mut self) -> Result<(), sqlx::Error> {
        // A failed statement leaves a MySQL transaction open and usable.
        Ok(())
    }

    async fn end(mut self) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// Connecting failed or did not answer in time.
async fn connect<C, F>(target: &ProbeTarget, connecting: F) -> Result<C, Vec<CheckResult>>
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

async fn open_postgres(
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<Postgres, Vec<CheckResult>> {
    let options = pg_options(target, "lifeboat-restore-validator");
    let mut conn = connect(target, PgConnection::connect_with(&options)).await?;
    pg_begin(&mut conn, timeout)
        .await
        .map_err(|e| connect_failed(target, format!("cannot open a read-only transaction: {e}")))?;
    Ok(Postgres { conn, timeout })
}

/// How to reach a PostgreSQL target; `application` names the connection in
/// `pg_stat_activity`.
fn pg_options(target: &ProbeTarget, application: &str) -> PgConnectOptions {
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

/// How to reach a MySQL or MariaDB target.
fn mysql_options(target: &ProbeTarget) -> MySqlConnectOptions {
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

async fn open_mysql(target: &ProbeTarget, timeout: Duration) -> Result<Mysql, Vec<CheckResult>> {
    let options = mysql_options(target);
    let mut conn = connect(target, MySqlConnection::connect_with(&options)).await?;
    // MariaDB limits statements with `max_statement_time` (seconds), MySQL with
    // `max_execution_time` (milliseconds, SELECTs only). Both values are numbers Lifeboat
    // computed, not text from the plan.
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut conn)
        .await
        .unwrap_or_default();
    let limit = if version.contains("MariaDB") {
        format!("SET SESSION max_statement_time = {}", timeout.as_secs_f64())
    } else {
        format!("SET SESSION max_execution_time = {}", timeout.as_millis())
    };
    let begin = async {
        sqlx::raw_sql(AssertSqlSafe(limit))
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql("START TRANSACTION READ ONLY")
            .execute(&mut conn)
            .await
    };
    begin
        .await
        .map_err(|e| connect_failed(target, format!("cannot open a read-only transaction: {e}")))?;
    Ok(Mysql { conn })
}

/// Run every check in the session, in order, skipping those whose gate failed.
async fn run_session<S: Session>(mut session: S, checks: &[PlannedCheck]) -> Vec<CheckResult> {
    let mut results: Vec<Option<CheckResult>> = Vec::new();
    for check in checks {
        if gated(check, &results) {
            results.push(None);
            continue;
        }
        let started = Instant::now();
        let result = match session.scalar(check).await {
            Ok(None) => judge(check, &Returned::NoRow),
            Ok(Some(Ok(v))) => judge(check, &Returned::Value(v)),
            Ok(Some(Err(why))) => {
                CheckResult::error(&check.name, check.kind, format!("{}: {why}", check.name))
            }
            Err(e) => {
                let failed = statement_failed(check, &e);
                if let Err(e) = session.recover().await {
                    results.push(Some(failed));
                    results.push(Some(CheckResult::error(
                        "connect",
                        CheckKind::Connect,
                        format!("the connection failed after a check: {e}"),
                    )));
                    break;
                }
                failed
            }
        };
        results.push(Some(CheckResult {
            millis: millis(started),
            ..result
        }));
    }
    session.end().await;
    results.into_iter().flatten().collect()
}

#[async_trait]
impl DatabaseProbe for SqlProbe {
    async fn probe(
        &self,
        target: &ProbeTarget,
        checks: &[PlannedCheck],
        statement_timeout: Duration,
    ) -> Vec<CheckResult> {
        match target.dialect {
            Dialect::Postgres => match open_postgres(target, statement_timeout).await {
                Ok(s) => run_session(s, checks).await,
                Err(failed) => failed,
            },
            Dialect::Mysql => match open_mysql(target, statement_timeout).await {
                Ok(s) => run_session(s, checks).await,
                Err(failed) => failed,
            },
        }
    }
}

/// Write the canary's row and read it back on the writer at `target`: `sql` from
/// [`crate::gameday::verify::canary_sql`], `row` its one bound value. Unlike the
/// checks this writes, so it runs outside a read-only transaction, each statement
/// committed on its own and bounded by `timeout`.
pub async fn write_canary(
    target: &ProbeTarget,
    sql: &crate::gameday::verify::CanarySql,
    row: &str,
    timeout: Duration,
) -> Result<(), String> {
    let failed = |e: Vec<CheckResult>| {
        e.into_iter()
            .map(|r| r.detail)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let db_error = |what: &str, e: sqlx::Error| match e {
        sqlx::Error::Database(db) => format!("the canary's {what} failed: {}", db.message()),
        other => format!("the canary's {what} failed: {other}"),
    };
    let read: Option<String> = match target.dialect {
        Dialect::Postgres => {
            let options = pg_options(target, "lifeboat-game-day-canary");
            let mut conn = connect(target, PgConnection::connect_with(&options))
                .await
                .map_err(failed)?;
            sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                .bind(format!("{}ms", timeout.as_millis()))
                .execute(&mut conn)
                .await
                .map_err(|e| db_error("statement timeout", e))?;
            sqlx::query(AssertSqlSafe(sql.write.clone()))
                .bind(row)
                .execute(&mut conn)
                .await
                .map_err(|e| db_error("write", e))?;
            let read = sqlx::query_scalar(AssertSqlSafe(sql.read.clone()))
                .bind(row)
                .fetch_optional(&mut conn)
                .await
                .map_err(|e| db_error("read", e))?;
            let _ = conn.close().await;
            read
        }
        Dialect::Mysql => {
            let options = mysql_options(target);
            let mut conn = connect(target, MySqlConnection::connect_with(&options))
                .await
                .map_err(failed)?;
            sqlx::query(AssertSqlSafe(sql.write.clone()))
                .bind(row)
                .execute(&mut conn)
                .await
                .map_err(|e| db_error("write", e))?;
            let read = sqlx::query_scalar(AssertSqlSafe(sql.read.clone()))
                .bind(row)
                .fetch_optional(&mut conn)
                .await
                .map_err(|e| db_error("read", e))?;
            let _ = conn.close().await;
            read
        }
    };
    match read {
        Some(id) if id == row => Ok(()),
        Some(other) => Err(format!(
            "the canary read back {other:?} instead of the row it wrote ({row})"
        )),
        None => Err(format!(
            "the canary's row {row} was written but not read back"
        )),
    }
}
