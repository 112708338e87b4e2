//! Whether a piece of SQL from outside (a plan's assertion, a recovery's own check) is
//! one statement that only reads (pure).
//!
//! A check runs against a database that may stay: a recovered database that may become
//! the writer, a DR writer during a game day. So its SQL must be exactly one `SELECT`
//! (or `WITH ... SELECT`, `VALUES`, `TABLE`), parsed with the dialect of the engine it
//! runs on, and refused otherwise — before any connection is made. This is the first of
//! two guards: the session is read-only at the server as well (see `aws::sql_probe`),
//! which is what stops a function or a view that writes. On MySQL and MariaDB, DDL
//! commits implicitly, so a read-only transaction alone does not stop it (the read-only
//! session does), and a check could make the session writable again: this check is the
//! main guard there.
//!
//! Refused, each with its reason and fix: anything the parser cannot parse; more than one
//! statement (also when a comment hides one, or MySQL's executable comments `/*! */`,
//! MariaDB's `/*M! */` and optimizer hints `/*+ */`, which the server runs); every
//! statement that is not a query (DDL, DML, `CALL`, `LOAD DATA`, `SET`, `COPY`, `DO`,
//! `EXPLAIN`...); a data-modifying `WITH` (`WITH x AS (DELETE ...) SELECT ...`);
//! `SELECT ... INTO` (a new table, a file, variables); row locks (`FOR UPDATE`,
//! `FOR SHARE`...: a check only reads, and a lock on a serving database blocks its
//! application); and calls of functions that act beyond the transaction (session
//! settings, advisory locks, other backends, large objects and server files, WAL and
//! replication control, `dblink`). On MySQL, backslashes and double-quoted strings are
//! refused too: the server's `sql_mode` (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`) changes how
//! they are read, so the server could see other statements than the parser did.

use super::checks::Dialect;
use sqlparser::ast::{Expr, ObjectName, Query, Select, SetExpr, Statement, Visit, Visitor};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};
use std::ops::ControlFlow;

/// The longest check SQL accepted, in bytes: far beyond any real assertion, and short
/// enough that parsing a hostile one costs nothing.
pub const MAX_CHECK_SQL_BYTES: usize = 16 * 1024;

/// Why a check's SQL is refused. Retrying never helps: the SQL must be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeSql {
    /// Nothing but blanks, comments or semicolons.
    #[error("the SQL is empty")]
    Empty,
    /// Longer than [`MAX_CHECK_SQL_BYTES`].
    #[error("the SQL is {bytes} bytes long, more than the {MAX_CHECK_SQL_BYTES} allowed")]
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// The parser could not read it.
    #[error("the SQL cannot be parsed as {dialect}: {reason}")]
    Unparsable {
        /// The engine family it was parsed for.
        dialect: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// More than one statement.
    #[error("the SQL holds {count} statements")]
    SeveralStatements {
        /// How many.
        count: usize,
    },
    /// A statement that is not a query.
    #[error("the statement is {keyword}, not a SELECT")]
    NotAQuery {
        /// Its first keyword (`DROP`, `INSERT`, `CALL`...).
        keyword: String,
    },
    /// A statement nested in the query (`WITH x AS (DELETE ...)`).
    #[error("the query holds a data-modifying statement ({keyword}) in a WITH clause or subquery")]
    NestedStatement {
        /// Its first keyword.
        keyword: String,
    },
    /// `SELECT ... INTO`.
    #[error("SELECT ... INTO writes the result somewhere (a table, a file or variables)")]
    SelectInto,
    /// `FOR UPDATE`, `FOR SHARE`...
    #[error("the query locks rows ({clause})")]
    LocksRows {
        /// The clause.
        clause: String,
    },
    /// A function that acts beyond reading.
    #[error("the query calls {name}(), which acts beyond reading the database")]
    ActingFunction {
        /// The function, as written.
        name: String,
    },
    /// MySQL's `/*! */`, MariaDB's `/*M! */` or a `/*+ */` hint.
    #[error(
        "the SQL holds {marker}, which MySQL and MariaDB run as SQL rather than skip as a comment"
    )]
    ExecutableComment {
        /// `/*!`, `/*M!` or `/*+`.
        marker: &'static str,
    },
    /// A backslash in MySQL SQL.
    #[error(
        "the SQL holds a backslash, which MySQL reads differently under the server's sql_mode NO_BACKSLASH_ESCAPES"
    )]
    Backslash,
    /// A double-quoted string in MySQL SQL.
    #[error(
        "the SQL holds a double-quoted string, which MySQL reads as a name under the server's sql_mode ANSI_QUOTES"
    )]
    DoubleQuoted,
}

impl UnsafeSql {
    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            UnsafeSql::Empty | UnsafeSql::Unparsable { .. } | UnsafeSql::NotAQuery { .. } => {
                "write exactly one SELECT (or WITH ... SELECT) that reads and returns one value"
            }
            UnsafeSql::TooLong { .. } => "shorten the check, or move its logic into a view",
            UnsafeSql::SeveralStatements { .. } => {
                "write exactly one SELECT; split other queries into assertions of their own"
            }
            UnsafeSql::NestedStatement { .. } => {
                "remove the INSERT, UPDATE, DELETE or MERGE: a check only reads"
            }
            UnsafeSql::SelectInto => "remove the INTO clause: the check's value is its result",
            UnsafeSql::LocksRows { .. } => {
                "remove the locking clause: a check only reads, and needs no lock"
            }
            UnsafeSql::ActingFunction { .. } => "remove the call: a check only reads the database",
            UnsafeSql::ExecutableComment { .. } => {
                "write the SQL without /*! */, /*M! */ or /*+ */ comments (also inside strings, where Lifeboat cannot tell them apart)"
            }
            UnsafeSql::Backslash => {
                "write the SQL without backslashes (in a LIKE pattern, use ESCAPE with another character)"
            }
            UnsafeSql::DoubleQuoted => "quote strings with single quotes and names with backticks",
        }
    }
}

/// One read-only query, as it will be sent: the text given, without the blanks and
/// semicolons around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyQuery(String);

impl ReadOnlyQuery {
    /// The SQL to send.
    pub fn sql(&self) -> &str {
        &self.0
    }
}

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "PostgreSQL",
        Dialect::Mysql => "MySQL/MariaDB",
    }
}

/// The leading keyword of a statement as written (`DROP`, `LOAD`...), for messages.
fn first_keyword(statement: &Statement) -> String {
    let text = statement.to_string();
    let word: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
        .collect();
    if word.is_empty() {
        "a statement".into()
    } else {
        word.to_ascii_uppercase()
    }
}

/// Functions whose call changes something outside the query's own reading: session
/// settings (which outlive a rolled-back check), advisory and named locks, other
/// backends, files and large objects on the server, WAL and replication, connections to
/// other databases, sequences. Matched on the last part of the name, in any case; a
/// trailing `*` is a prefix.
const ACTING_FUNCTIONS: &[&str] = &[
    // PostgreSQL
    "set_config",
    "pg_advisory_*",
    "pg_try_advisory_*",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_switch_xlog",
    "pg_create_*",
    "pg_drop_replication_slot",
    "pg_copy_*_replication_slot",
    "pg_replication_slot_advance",
    "pg_replication_origin_*",
    "pg_logical_emit_message",
    "pg_wal_replay_*",
    "pg_backup_*",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_stat_reset*",
    "pg_file_*",
    "pg_notify",
    "lo_*",
    "dblink*",
    "nextval",
    "setval",
    // MySQL and MariaDB
    "get_lock",
    "release_lock",
    "release_all_locks",
    "sys_exec",
    "sys_eval",
];

fn is_acting_function(name: &ObjectName) -> Option<String> {
    let last = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    ACTING_FUNCTIONS
        .iter()
        .any(|f| match f.strip_suffix('*') {
            Some(prefix) => last.starts_with(prefix),
            None => last == *f,
        })
        .then(|| name.to_string())
}

/// Walks the whole statement, subqueries included.
struct ReadOnlyWalk {
    statements: usize,
}

impl Visitor for ReadOnlyWalk {
    type Break = UnsafeSql;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<UnsafeSql> {
        self.statements += 1;
        if self.statements > 1 {
            return ControlFlow::Break(UnsafeSql::NestedStatement {
                keyword: first_keyword(statement),
            });
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<UnsafeSql> {
        if let Some(lock) = query.locks.first() {
            return ControlFlow::Break(UnsafeSql::LocksRows {
                clause: lock.to_string(),
            });
        }
        // Clauses of other dialects' SELECTs, which PostgreSQL and MySQL do not have:
        // refused rather than sent.
        if query.for_clause.is_some()
            || query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return ControlFlow::Break(UnsafeSql::Unparsable {
                dialect: "PostgreSQL or MySQL/MariaDB",
                reason: "the query uses a clause of another SQL dialect".into(),
            });
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<UnsafeSql> {
        if select.into.is_some() {
            return ControlFlow::Break(UnsafeSql::SelectInto);
        }
        if !select.optimizer_hints.is_empty() {
            return ControlFlow::Break(UnsafeSql::ExecutableComment { marker: "/*+" });
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<UnsafeSql> {
        // `SELECT * FROM set_config(...)`: a function called in FROM.
        match is_acting_function(relation) {
            Some(name) => ControlFlow::Break(UnsafeSql::ActingFunction { name }),
            None => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<UnsafeSql> {
        if let Expr::Function(f) = expr
            && let Some(name) = is_acting_function(&f.name)
        {
            return ControlFlow::Break(UnsafeSql::ActingFunction { name });
        }
        ControlFlow::Continue(())
    }
}

/// Checks only MySQL needs, on the text before it is tokenized: what its server could
/// read otherwise than the parser.
fn mysql_text(sql: &str) -> Result<(), UnsafeSql> {
    let lower = sql.to_ascii_lowercase();
    for marker in ["/*m!", "/*!", "/*+"] {
        if lower.contains(marker) {
            return Err(UnsafeSql::ExecutableComment {
                marker: match marker {
                    "/*m!" => "/*M!",
                    "/*!" => "/*!",
                    _ => "/*+",
                },
            });
        }
    }
    if sql.contains('\\') {
        return Err(UnsafeSql::Backslash);
    }
    Ok(())
}

/// The same, on the tokens: a string in double quotes is a name under `ANSI_QUOTES`.
fn mysql_tokens(tokens: &[Token]) -> Result<(), UnsafeSql> {
    let double_quoted = tokens.iter().any(|t| match t {
        Token::DoubleQuotedString(_) => true,
        Token::Word(w) => w.quote_style == Some('"'),
        _ => false,
    });
    if double_quoted {
        return Err(UnsafeSql::DoubleQuoted);
    }
    Ok(())
}

/// Whether `sql` is one read-only query in `dialect`: the query to send, or why not.
pub fn read_only_query(dialect: Dialect, sql: &str) -> Result<ReadOnlyQuery, UnsafeSql> {
    if sql.len() > MAX_CHECK_SQL_BYTES {
        return Err(UnsafeSql::TooLong { bytes: sql.len() });
    }
    let unparsable = |e: ParserError| UnsafeSql::Unparsable {
        dialect: dialect_name(dialect),
        reason: match e {
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
            ParserError::RecursionLimitExceeded => "it is nested too deeply".into(),
        },
    };
    let postgres = PostgreSqlDialect {};
    let mysql = MySqlDialect {};
    let parser_dialect: &dyn sqlparser::dialect::Dialect = match dialect {
        Dialect::Postgres => &postgres,
        Dialect::Mysql => &mysql,
    };
    if dialect == Dialect::Mysql {
        mysql_text(sql)?;
    }
    let tokens = Tokenizer::new(parser_dialect, sql)
        .tokenize()
        .map_err(|e| unparsable(ParserError::TokenizerError(e.message)))?;
    if dialect == Dialect::Mysql {
        mysql_tokens(&tokens)?;
    }
    let statements = Parser::new(parser_dialect)
        .with_tokens(tokens)
        .parse_statements()
        .map_err(unparsable)?;
    let statement = match statements.as_slice() {
        [] => return Err(UnsafeSql::Empty),
        [one] => one,
        many => {
            return Err(UnsafeSql::SeveralStatements { count: many.len() });
        }
    };
    let Statement::Query(query) = statement else {
        return Err(UnsafeSql::NotAQuery {
            keyword: first_keyword(statement),
        });
    };
    // A WITH's data-modifying statement sits in the body of one of its queries.
    if let SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) =
        query.body.as_ref()
    {
        return Err(UnsafeSql::NotAQuery {
            keyword: first_keyword(s),
        });
    }
    let mut walk = ReadOnlyWalk { statements: 0 };
    if let ControlFlow::Break(why) = statement.visit(&mut walk) {
        return Err(why);
    }
    Ok(ReadOnlyQuery(trimmed(sql)))
}

/// The SQL without the blanks and semicolons around it (a prepared statement takes no
/// trailing semicolon on every server).
fn trimmed(sql: &str) -> String {
    sql.trim_matches(|c: char| c.is_whitespace() || c == ';')
        .to_string()
}

#[cfg(test)]
mod tests;
