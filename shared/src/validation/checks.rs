//! The SQL of restore validation (pure): each check of the plan turned into one read-only
//! query, with every table and column name validated and quoted as an identifier, and the
//! judgement of what the query returned.
//!
//! Identifiers come from the plan, which rejects anything but letters, digits and
//! underscores on load; they are validated again here (a plan built in code skips the
//! loader) and quoted, so no name can ever be read as SQL. Values (schema and table
//! names looked up in the catalogue) are bound as parameters, never spliced.

use super::statement::{ServerNames, UnsafeSql, read_only_query};
use crate::plan::{ResourceValidation, is_sql_identifier};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which wire protocol and SQL dialect a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// PostgreSQL (RDS for PostgreSQL, Aurora PostgreSQL).
    Postgres,
    /// MySQL and MariaDB (RDS for MySQL and MariaDB, Aurora MySQL).
    Mysql,
}

/// An identifier from the plan that Lifeboat refuses to quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {value:?} is not a plain SQL identifier; use letters, digits and underscores, starting with a letter or underscore"
)]
pub struct IdentifierError {
    /// What it names (`table`, `column`...).
    pub what: &'static str,
    /// The offending value.
    pub value: String,
}

/// Why a resource's checks cannot be turned into queries. Nothing was sent to the
/// database; retrying does not help, the plan (or the recovery's command) must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckPlanError {
    /// A table or column name Lifeboat will not quote.
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
    /// An assertion that is not one read-only query.
    #[error("assertion {name:?} is not one read-only query: {why}; {}", why.fix())]
    Assertion {
        /// The assertion's name.
        name: String,
        /// Why.
        why: UnsafeSql,
    },
}

/// Quote one identifier for `dialect`, after checking it is a plain identifier.
pub fn quote_identifier(
    dialect: Dialect,
    what: &'static str,
    name: &str,
) -> Result<String, IdentifierError> {
    if !is_sql_identifier(name) {
        return Err(IdentifierError {
            what,
            value: name.to_string(),
        });
    }
    // Plain identifiers hold no quote character; doubling it anyway keeps quoting correct
    // on its own, whatever validation lets through.
    Ok(match dialect {
        Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
    })
}

/// A table named in the plan, split into its optional schema and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema (`None`: PostgreSQL's `public`, MySQL's connected database).
    pub schema: Option<String>,
    /// The table.
    pub table: String,
}

impl TableName {
    /// Parse `table` or `schema.table`.
    pub fn parse(text: &str) -> Result<Self, IdentifierError> {
        let bad = || IdentifierError {
            what: "table",
            value: text.to_string(),
        };
        let parts: Vec<&str> = text.split('.').collect();
        if !parts.iter().all(|p| is_sql_identifier(p)) {
            return Err(bad());
        }
        match parts.as_slice() {
            [table] => Ok(TableName {
                schema: None,
                table: table.to_string(),
            }),
            [schema, table] => Ok(TableName {
                schema: Some(schema.to_string()),
                table: table.to_string(),
            }),
            _ => Err(bad()),
        }
    }

    /// The quoted, qualified name.
    pub fn quoted(&self, dialect: Dialect) -> Result<String, IdentifierError> {
        let table = quote_identifier(dialect, "table", &self.table)?;
        Ok(match &self.schema {
            Some(s) => format!("{}.{table}", quote_identifier(dialect, "schema", s)?),
            None => table,
        })
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// `table.column` or `schema.table.column`.
fn parse_column(text: &str) -> Result<(TableName, String), IdentifierError> {
    let bad = || IdentifierError {
        what: "column",
        value: text.to_string(),
    };
    let (table, column) = text.rsplit_once('.').ok_or_else(bad)?;
    if !is_sql_identifier(column) {
        return Err(bad());
    }
    let table = TableName::parse(table).map_err(|_| bad())?;
    Ok((table, column.to_string()))
}

/// What a check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Connecting to the restored database.
    Connect,
    /// The schema holds at least N tables.
    MinTables,
    /// A critical table exists.
    TableExists,
    /// A critical table holds at least N rows.
    TableRows,
    /// A foreign key has no orphans.
    ForeignKey,
    /// A named SQL assertion.
    Assertion,
}

/// A parameter bound to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A text value.
    Text(String),
}

/// One query to run, and how to judge what it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCheck {
    /// The name shown in reports, e.g. `table orders has rows`.
    pub name: String,
    /// What it is.
    pub kind: CheckKind,
    /// The statement.
    pub sql: String,
    /// Its parameters, in order.
    pub params: Vec<Param>,
    /// How to judge the single value it returns.
    pub expect: Expect,
    /// Checks to skip when this one fails (a missing table is not counted).
    pub gate: Option<usize>,
    /// The names in its SQL that only the server resolves (PostgreSQL), looked up
    /// before it runs.
    pub names: ServerNames,
}

/// How a check's value is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A count of at least this much.
    AtLeast(i64),
    /// A count of exactly zero (orphans).
    Zero,
    /// This text.
    Text(String),
}

/// The outcome of one check, with its numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// What it is.
    pub kind: CheckKind,
    /// Whether it passed.
    pub passed: bool,
    /// What was found (a count, the assertion's value), when a value came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// What was required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// A sentence: why it passed or failed.
    pub detail: String,
    /// How long it took, in milliseconds.
    #[serde(default)]
    pub millis: u64,
}

impl CheckResult {
    /// A check that could not run (connection refused, statement failed, timeout).
    pub fn error(name: &str, kind: CheckKind, reason: impl Into<String>) -> Self {
        CheckResult {
            name: name.to_string(),
            kind,
            passed: false,
            observed: None,
            expected: None,
            detail: reason.into(),
            millis: 0,
        }
    }
}

/// How far a resource's checks have got, carried from one action to the next: each
/// action runs the checks that fit in its time and leaves the rest to the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckProgress {
    /// How many checks were planned when the first ran (a changed plan starts over).
    #[serde(default)]
    pub planned: usize,
    /// One entry per check taken so far, in order; `None` for one skipped because the
    /// check it depends on failed.
    #[serde(default)]
    pub taken: Vec<Option<CheckResult>>,
    /// What ended the checks before all were taken (the session could not be opened or
    /// was lost): the checks after it cannot run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<CheckResult>,
    /// Whether nothing is left to run.
    #[serde(default)]
    pub finished: bool,
    /// Time spent in the checks so far, over every action, in milliseconds.
    #[serde(default)]
    pub millis: u64,
}

impl CheckProgress {
    /// Checks that ended before any ran, with this result (a plan without checks, a
    /// target that cannot be reached).
    pub fn ended_with(result: CheckResult) -> Self {
        CheckProgress {
            ended: Some(result),
            finished: true,
            ..CheckProgress::default()
        }
    }

    /// The progress to go on from for `planned` checks: this one, or a fresh start when
    /// the plan's checks changed since it began.
    pub fn resumed_for(self, planned: usize) -> Self {
        if self.planned == planned && !self.finished {
            self
        } else {
            CheckProgress {
                planned,
                ..CheckProgress::default()
            }
        }
    }

    /// Every result so far, in order: the checks taken, then what ended them.
    pub fn results(&self) -> Vec<CheckResult> {
        self.taken
            .iter()
            .flatten()
            .chain(self.ended.as_ref())
            .cloned()
            .collect()
    }

    /// Record the next check's result (`None`: skipped), finishing after the last.
    pub fn take(&mut self, result: Option<CheckResult>) {
        self.taken.push(result);
        self.finished = self.taken.len() >= self.planned;
    }

    /// End the checks here: nothing after `result` can run.
    pub fn end(&mut self, result: CheckResult) {
        self.ended = Some(result);
        self.finished = true;
    }
}

/// What a query returned, as the judge sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// A value, rendered as text (`None`: SQL NULL).
    Value(Option<String>),
    /// No row.
    NoRow,
}

/// Judge a check's value.
pub fn judge(check: &PlannedCheck, returned: &Returned) -> CheckResult {
    let mut result = CheckResult {
        name: check.name.clone(),
        kind: check.kind,
        passed: false,
        observed: None,
        expected: None,
        detail: String::new(),
        millis: 0,
    };
    let value = match returned {
        Returned::NoRow => {
            result.detail = "the query returned no row; it must return exactly one value".into();
            return result;
        }
        Returned::Value(v) => v.clone(),
    };
    result.observed = Some(value.clone().unwrap_or_else(|| "NULL".into()));
    let count = value.as_deref().and_then(|v| v.trim().parse::<i64>().ok());
    match (&check.expect, check.kind) {
        (Expect::AtLeast(n), CheckKind::TableExists) => {
            result.expected = Some("exists".into());
            result.observed = Some(if count.unwrap_or(0) >= *n {
                "exists".into()
            } else {
                "missing".into()
            });
            result.passed = count.unwrap_or(0) >= *n;
            result.detail = if result.passed {
                format!("{} exists", check.name)
            } else {
                format!(
                    "{}: the table does not exist in the restored database",
                    check.name
                )
            };
        }
        (Expect::AtLeast(n), _) => {
            result.expected = Some(format!(">= {n}"));
            result.passed = count.is_some_and(|c| c >= *n);
            result.detail = match (check.kind, count) {
                (CheckKind::MinTables, Some(c)) if result.passed => {
                    format!("the schema holds {c} tables (at least {n} required)")
                }
                (CheckKind::MinTables, Some(c)) => {
                    format!("the schema holds {c} tables, fewer than the {n} required")
                }
                (CheckKind::TableRows, Some(_)) if result.passed => {
                    format!("{} holds at least {n} rows", check.name)
                }
                (CheckKind::TableRows, Some(0)) => {
                    format!("{} is empty ({n} rows required)", check.name)
                }
                (CheckKind::TableRows, Some(c)) => {
                    format!("{} holds {c} rows, fewer than the {n} required", check.name)
                }
                (_, _) => format!("{}: expected a count, got {:?}", check.name, value),
            };
        }
        (Expect::Zero, _) => {
            result.expected = Some("0".into());
            result.passed = count == Some(0);
            result.detail = match count {
                Some(0) => format!("{}: no orphans", check.name),
                Some(c) => format!("{}: {c} orphaned rows", check.name),
                None => format!("{}: expected a count, got {:?}", check.name, value),
            };
        }
        (Expect::Text(expected), _) => {
            result.expected = Some(expected.clone());
            let got = value.unwrap_or_else(|| "NULL".into());
            result.passed = same_answer(&got, expected);
            result.detail = if result.passed {
                format!("assertion {:?} holds ({got})", check.name)
            } else {
                format!(
                    "assertion {:?}: expected {expected:?}, got {got:?}",
                    check.name
                )
            };
        }
    }
    result
}

/// Whether an assertion's answer is the expected one: the same text, or the same
/// boolean however spelled (PostgreSQL answers `t`/`f`, plans naturally say `true`).
fn same_answer(got: &str, expected: &str) -> bool {
    fn boolean(v: &str) -> Option<bool> {
        match v.trim().to_ascii_lowercase().as_str() {
            "t" | "true" => Some(true),
            "f" | "false" => Some(false),
            _ => None,
        }
    }
    got == expected || boolean(got).is_some_and(|g| boolean(expected) == Some(g))
}

/// The names in one of Lifeboat's own queries that the server resolves: `count`, and
/// the plan's columns it names after an alias (`lifeboat_child."user_id"`, quoted, so
/// exactly as written). None on MySQL, which has no attribute notation.
fn own_names(dialect: Dialect, columns: &[&str]) -> ServerNames {
    let mut names = ServerNames::default();
    if dialect == Dialect::Postgres {
        names.calls.insert("count".into());
        names
            .attributes
            .extend(columns.iter().map(|c| c.to_string()));
    }
    names
}

/// Every query of a resource's checks, in order: table count, then per critical table its
/// existence and rows (the rows counted only when it exists), foreign keys, assertions.
///
/// Every assertion is checked again here to be one read-only query in `dialect` (the
/// plan's loader checked it, but a recovery's own assertions come with its command, and
/// a plan built in code skips the loader): this is the one road from a check to a
/// database, so nothing else reaches one.
pub fn plan_checks(
    dialect: Dialect,
    v: &ResourceValidation,
) -> Result<Vec<PlannedCheck>, CheckPlanError> {
    let mut out = Vec::new();
    if let Some(min) = v.min_tables {
        let sql = match dialect {
            Dialect::Postgres => {
                "SELECT count(*) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            }
            Dialect::Mysql => {
                "SELECT count(*) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema = DATABASE()"
            }
        };
        out.push(PlannedCheck {
            name: "table count".into(),
            kind: CheckKind::MinTables,
            sql: sql.into(),
            params: vec![],
            expect: Expect::AtLeast(i64::from(min)),
            gate: None,
            names: own_names(dialect, &[]),
        });
    }
    let placeholder = |n: usize| match dialect {
        Dialect::Postgres => format!("${n}"),
        Dialect::Mysql => "?".to_string(),
    };
    for t in &v.tables {
        let table = TableName::parse(&t.name)?;
        let exists = out.len();
        // An unqualified MySQL table lives in the connected database, whatever its name.
        let (schema_sql, mut params) = match (&table.schema, dialect) {
            (None, Dialect::Mysql) => ("DATABASE()".to_string(), vec![]),
            (Some(s), _) => (placeholder(1), vec![Param::Text(s.clone())]),
            (None, Dialect::Postgres) => (placeholder(1), vec![Param::Text("public".into())]),
        };
        let table_param = placeholder(params.len() + 1);
        params.push(Param::Text(table.table.clone()));
        out.push(PlannedCheck {
            name: format!("table {table}"),
            kind: CheckKind::TableExists,
            sql: format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = {schema_sql} AND table_name = {table_param}"
            ),
            params,
            expect: Expect::AtLeast(1),
            gate: None,
            names: own_names(dialect, &[]),
        });
        let min_rows = i64::try_from(t.min_rows).unwrap_or(i64::MAX);
        // Count no further than needed: a full count of a large table could outlast the
        // statement timeout, and "at least N" is the question.
        out.push(PlannedCheck {
            name: format!("table {table}"),
            kind: CheckKind::TableRows,
            sql: format!(
                "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {min_rows}) AS lifeboat_rows",
                table.quoted(dialect)?
            ),
            params: vec![],
            expect: Expect::AtLeast(min_rows),
            gate: Some(exists),
            names: own_names(dialect, &[]),
        });
    }
    for fk in &v.foreign_keys {
        let (child, child_col) = parse_column(&fk.from)?;
        let (parent, parent_col) = parse_column(&fk.to)?;
        let c = quote_identifier(dialect, "column", &child_col)?;
        let p = quote_identifier(dialect, "column", &parent_col)?;
        out.push(PlannedCheck {
            name: format!("foreign key {} -> {}", fk.from, fk.to),
            kind: CheckKind::ForeignKey,
            sql: format!(
                "SELECT count(*) FROM {} AS lifeboat_child WHERE lifeboat_child.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {} AS lifeboat_parent WHERE lifeboat_parent.{p} = lifeboat_child.{c})",
                child.quoted(dialect)?,
                parent.quoted(dialect)?
            ),
            params: vec![],
            expect: Expect::Zero,
            gate: None,
            names: own_names(dialect, &[&child_col, &parent_col]),
        });
    }
    for a in &v.assertions {
        let query = read_only_query(dialect, &a.sql).map_err(|why| CheckPlanError::Assertion {
            name: a.name.clone(),
            why,
        })?;
        out.push(PlannedCheck {
            name: a.name.clone(),
            kind: CheckKind::Assertion,
            sql: query.sql().to_string(),
            params: vec![],
            expect: Expect::Text(a.expect.clone()),
            gate: None,
            names: query.names().clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ForeignKeyCheck, SqlAssertion, TableCheck};

    fn validation() -> ResourceValidation {
        ResourceValidation {
            database: "orders".into(),
            credentials_secret: "s".into(),
            min_tables: Some(2),
            tables: vec![
                TableCheck {
                    name: "users".into(),
                    min_rows: 1,
                },
                TableCheck {
                    name: "sales.orders".into(),
                    min_rows: 10,
                },
            ],
            foreign_keys: vec![ForeignKeyCheck {
                from: "sales.orders.user_id".into(),
                to: "users.id".into(),
            }],
            assertions: vec![SqlAssertion {
                name: "no negative totals".into(),
                sql: "SELECT count(*) FROM orders WHERE total < 0;".into(),
                expect: "0".into(),
            }],
        }
    }

    #[test]
    fn a_boolean_answer_matches_however_it_is_spelled_and_nothing_else_loosens() {
        assert!(same_answer("t", "true"));
        assert!(same_answer("f", "FALSE"));
        assert!(same_answer("true", "t"));
        assert!(!same_answer("t", "false"));
        assert!(
            !same_answer("1", "true"),
            "MySQL's 1 is a number, compared as text"
        );
        assert!(same_answer("42", "42"));
        assert!(!same_answer("42 ", "42"));
    }

    #[test]
    fn names_are_quoted_per_dialect_and_values_bound() {
        let pg = plan_checks(Dialect::Postgres, &validation()).unwrap();
        assert_eq!(pg.len(), 7);
        assert_eq!(
            pg[3].params,
            [Param::Text("sales".into()), Param::Text("orders".into())]
        );
        assert!(pg[3].sql.ends_with("table_schema = $1 AND table_name = $2"));
        assert!(pg[4].sql.contains("FROM \"sales\".\"orders\" LIMIT 10"));
        assert_eq!(pg[4].gate, Some(3));
        assert!(
            pg[5]
                .sql
                .contains("FROM \"sales\".\"orders\" AS lifeboat_child")
        );
        assert!(
            pg[5]
                .sql
                .contains("lifeboat_parent.\"id\" = lifeboat_child.\"user_id\"")
        );
        assert_eq!(pg[5].kind, CheckKind::ForeignKey);
        let my = plan_checks(Dialect::Mysql, &validation()).unwrap();
        assert_eq!(my[1].params, [Param::Text("users".into())]);
        assert!(
            my[1]
                .sql
                .contains("table_schema = DATABASE() AND table_name = ?"),
            "MySQL looks an unqualified table up in the connected database"
        );
        assert!(my[2].sql.contains("FROM `users` LIMIT 1"));
    }

    #[test]
    fn assertions_lose_their_trailing_semicolon() {
        let pg = plan_checks(Dialect::Postgres, &validation()).unwrap();
        let last = pg.last().unwrap();
        assert_eq!(last.sql, "SELECT count(*) FROM orders WHERE total < 0");
        assert_eq!(last.expect, Expect::Text("0".into()));
    }

    #[test]
    fn hostile_names_are_refused_not_quoted() {
        for bad in [
            "users; DROP TABLE users",
            "users\"",
            "a.b.c",
            "",
            "us`ers",
            "1users",
        ] {
            let mut v = validation();
            v.tables[0].name = bad.into();
            assert!(plan_checks(Dialect::Postgres, &v).is_err(), "{bad}");
        }
        let mut v = validation();
        v.foreign_keys[0].to = "users.id) OR (1=1".into();
        let err = plan_checks(Dialect::Mysql, &v).unwrap_err();
        assert!(
            matches!(&err, CheckPlanError::Identifier(e) if e.what == "column"),
            "{err:?}"
        );
        assert!(quote_identifier(Dialect::Postgres, "table", "x\"y").is_err());
    }

    #[test]
    fn an_assertion_that_is_not_one_read_only_query_is_never_planned() {
        for (dialect, sql) in [
            (Dialect::Postgres, "SELECT 1; DROP TABLE orders"),
            (Dialect::Mysql, "DROP TABLE orders"),
            (Dialect::Mysql, "SELECT 1 /*M! ; DROP TABLE orders */"),
            (Dialect::Postgres, "SELECT * INTO copy FROM orders"),
        ] {
            let mut v = validation();
            v.assertions[0].sql = sql.into();
            let err = plan_checks(dialect, &v).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("assertion \"no negative totals\" is not one read-only query"),
                "{text}"
            );
        }
    }

    #[test]
    fn judgements_name_the_table_the_count_and_both_values() {
        let pg = plan_checks(Dialect::Postgres, &validation()).unwrap();
        let empty = judge(&pg[2], &Returned::Value(Some("0".into())));
        assert!(!empty.passed);
        assert_eq!(empty.detail, "table users is empty (1 rows required)");
        let exists = judge(&pg[1], &Returned::Value(Some("0".into())));
        assert!(!exists.passed);
        assert!(
            exists
                .detail
                .contains("table users: the table does not exist")
        );
        let orphans = judge(&pg[5], &Returned::Value(Some("3".into())));
        assert!(!orphans.passed);
        assert_eq!(
            orphans.detail,
            "foreign key sales.orders.user_id -> users.id: 3 orphaned rows"
        );
        assert_eq!(orphans.observed.as_deref(), Some("3"));
        let assertion = judge(&pg[6], &Returned::Value(Some("2".into())));
        assert_eq!(
            assertion.detail,
            "assertion \"no negative totals\": expected \"0\", got \"2\""
        );
        assert!(judge(&pg[6], &Returned::Value(Some("0".into()))).passed);
        let few = judge(&pg[0], &Returned::Value(Some("1".into())));
        assert_eq!(
            few.detail,
            "the schema holds 1 tables, fewer than the 2 required"
        );
        assert!(!judge(&pg[0], &Returned::NoRow).passed);
        assert_eq!(
            judge(&pg[6], &Returned::Value(None)).observed.as_deref(),
            Some("NULL")
        );
    }
}
