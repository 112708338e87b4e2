//! The one SQL path on which Lifeboat writes: a game day's canary row, written to the DR
//! writer and read back to prove it accepts writes.
//!
//! It is apart from the checks on purpose. The checks' probe ([`super::sql_probe`]) only
//! opens read-only sessions and takes any SQL only through
//! [`crate::validation::checks::plan_checks`]; this path takes no SQL at all, only the
//! two statements [`crate::gameday::verify::canary_sql`] builds (a validated, quoted table
//! name; the row's id bound), so no check can reach a writable session.

use super::sql_probe::{connect, mysql_options, mysql_statement_limit, pg_options};
use super::validation::ProbeTargetError;
use crate::gameday::verify::CanarySql;
use crate::validation::checks::IdentifierError;
use crate::validation::checks::{CheckResult, Dialect};
use crate::validation::run::ProbeTarget;
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use std::time::Duration;

/// Why the canary row was not proved written: the DR writer may not accept writes.
#[derive(Debug, thiserror::Error)]
// Each variant's message is its documentation.
#[allow(missing_docs)]
pub enum CanaryError {
    /// No database to write to.
    #[error(transparent)]
    Target(#[from] ProbeTargetError),
    /// The plan's canary table is not a name that can be quoted safely.
    #[error(transparent)]
    Table(#[from] IdentifierError),
    /// The connection failed, as the checks' connect step words it.
    #[error("{detail}")]
    Connect { detail: String },
    /// A statement the server refused: `what` is the timeout, write or read.
    #[error("the canary's {what} failed: {message}")]
    Statement { what: &'static str, message: String },
    #[error("the canary read back {read:?} instead of the row it wrote ({row})")]
    Mismatch { read: String, row: String },
    #[error("the canary's row {row} was written but not read back")]
    NotReadBack { row: String },
    #[error("the canary did not finish within {seconds} s")]
    TimedOut { seconds: u64 },
}

/// Write the canary's row and read it back on the writer at `target`: `sql` from
/// [`crate::gameday::verify::canary_sql`], `row` its one bound value. Each statement
/// commits on its own and is bounded by `timeout`.
pub async fn write_canary(
    target: &ProbeTarget,
    sql: &CanarySql,
    row: &str,
    timeout: Duration,
) -> Result<(), CanaryError> {
    let failed = |e: Vec<CheckResult>| CanaryError::Connect {
        detail: e
            .into_iter()
            .map(|r| r.detail)
            .collect::<Vec<_>>()
            .join("; "),
    };
    let db_error = |what: &'static str, e: sqlx::Error| CanaryError::Statement {
        what,
        message: match e {
            sqlx::Error::Database(db) => db.message().to_string(),
            other => other.to_string(),
        },
    };
    let read: Option<String> = match target.dialect {
        Dialect::Postgres => {
            let options = pg_options(target, "lifeboat-game-day-canary");
            let mut conn = connect(target, PgConnection::connect_with(&options))
                .await
                .map_err(failed)?;
            sqlx::query("SELECT pg_catalog.set_config('statement_timeout', $1, false)")
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
            mysql_statement_limit(&mut conn, timeout)
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
    };
    match read {
        Some(id) if id == row => Ok(()),
        Some(other) => Err(CanaryError::Mismatch {
            read: other,
            row: row.to_string(),
        }),
        None => Err(CanaryError::NotReadBack {
            row: row.to_string(),
        }),
    }
}
