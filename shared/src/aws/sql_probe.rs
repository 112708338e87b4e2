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

async fn probe_postgres(
    target: &ProbeTarget,
    checks: &[PlannedCheck],
    timeout: Duration,
) -> Vec<CheckResult> {
    let options = PgConnectOptions::new()
        .host(&target.host)
        .port(target.port)
        .username(&target.username)
        .password(&target.password)
        .database(&target.database)
        .application_name("lifeboat-restore-validator")
        .ssl_mode(if target.require_tls {
            PgSslMode::Require
        } else {
            PgSslMode::Prefer
        });
    let mut conn =
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return connect_failed(target, e),
            Err(_) => {
                return connect_failed(
                    target,
                    format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                );
            }
        };
    if let Err(e) = pg_begin(&mut conn, timeout).await {
        return connect_failed(target, format!("cannot open a read-only transaction: {e}"));
    }
    let mut results: Vec<Option<CheckResult>> = Vec::new();
    for check in checks {
        if gated(check, &results) {
            results.push(None);
            continue;
        }
        let started = Instant::now();
        let mut query = sqlx::query(AssertSqlSafe(check.sql.clone()));
        for Param::Text(p) in &check.params {
            query = query.bind(p.clone());
        }
        let result = match query.fetch_optional(&mut conn).await {
            Ok(None) => judge(check, &Returned::NoRow),
            Ok(Some(row)) => match pg_text(&row) {
                Ok(v) => judge(check, &Returned::Value(v)),
                Err(why) => {
                    CheckResult::error(&check.name, check.kind, format!("{}: {why}", check.name))
                }
            },
            Err(e) => {
                // A failed statement aborts a PostgreSQL transaction: start a new one so
                // the remaining checks still run.
                let failed = statement_failed(check, &e);
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
                if let Err(e) = pg_begin(&mut conn, timeout).await {
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
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
    let _ = conn.close().await;
    results.into_iter().flatten().collect()
}

async fn probe_mysql(
    target: &ProbeTarget,
    checks: &[PlannedCheck],
    timeout: Duration,
) -> Vec<CheckResult> {
    let mut options = MySqlConnectOptions::new()
        .host(&target.host)
        .port(target.port)
        .username(&target.username);
    // MySQL tells an empty password from none; a secret with an empty one means none.
    if !target.password.is_empty() {
        options = options.password(&target.password);
    }
    let options = options
        .database(&target.database)
        .ssl_mode(if target.require_tls {
            MySqlSslMode::Required
        } else {
            MySqlSslMode::Preferred
        });
    let mut conn = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        MySqlConnection::connect_with(&options),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return connect_failed(target, e),
        Err(_) => {
            return connect_failed(
                target,
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            );
        }
    };
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
    if let Err(e) = begin.await {
        return connect_failed(target, format!("cannot open a read-only transaction: {e}"));
    }
    let mut results: Vec<Option<CheckResult>> = Vec::new();
    for check in checks {
        if gated(check, &results) {
            results.push(None);
            continue;
        }
        let started = Instant::now();
        let mut query = sqlx::query(AssertSqlSafe(check.sql.clone()));
        for Param::Text(p) in &check.params {
            query = query.bind(p.clone());
        }
        let result = match query.fetch_optional(&mut conn).await {
            Ok(None) => judge(check, &Returned::NoRow),
            Ok(Some(row)) => match mysql_text(&row) {
                Ok(v) => judge(check, &Returned::Value(v)),
                Err(why) => {
                    CheckResult::error(&check.name, check.kind, format!("{}: {why}", check.name))
                }
            },
            Err(e) => statement_failed(check, &e),
        };
        results.push(Some(CheckResult {
            millis: millis(started),
            ..result
        }));
    }
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
    let _ = conn.close().await;
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
            Dialect::Postgres => probe_postgres(target, checks, statement_timeout).await,
            Dialect::Mysql => probe_mysql(target, checks, statement_timeout).await,
        }
    }
}
