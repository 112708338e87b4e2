//! Whether a piece of SQL from outside (a plan's assertion, a recovery's own check) is
//! one statement that only reads (pure).
//!
//! A check runs against a database that may stay: a recovered database that may become
//! the writer, a DR writer during a game day. So its SQL must be exactly one `SELECT`
//! (or `WITH ... SELECT`, `VALUES`), parsed with the dialect of the engine it
//! runs on, and refused otherwise — before any connection is made. This is the first of
//! two guards: the session is read-only at the server as well (see `aws::sql_probe`),
//! which is what stops a view that writes through this session. On MySQL and MariaDB, DDL
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
//! application); a call of any function that is not on the engine's short list of
//! side-effect-free ones ([`ALLOWED_FUNCTIONS_POSTGRES`], [`ALLOWED_FUNCTIONS_MYSQL`]),
//! wherever it stands (select list, `FROM`, `LATERAL`, `WHERE`, `ORDER BY`, a `WITH`, a
//! subquery, a window or `FILTER` clause...), also schema-qualified or quoted: a list of
//! functions to refuse could never be complete (extensions such as `dblink`, functions of
//! the database's own), a list of functions to allow is; user-defined operators and
//! MySQL's `:=` (they run functions or set variables); PostgreSQL's `U&"..."` and
//! `U&'...'` (their escapes can spell any name). On MySQL, backslashes and double-quoted
//! strings are refused too: the server's `sql_mode` (`NO_BACKSLASH_ESCAPES`,
//! `ANSI_QUOTES`) changes how they are read; and so is any character beyond ASCII outside
//! a string literal: the server ends a `--` comment only at an ASCII blank, where the
//! parser takes any Unicode blank, so the server could see other statements than the
//! parser did; and a listed function written with a blank before its parenthesis
//! (`count (*)`), which the server resolves to a stored function of that name.
//!
//! Some names only the server can resolve, and PostgreSQL may resolve them to code: in
//! `t.name` (or `s.t.name`), when the row has no column `name`, it calls a function
//! `name(t)` or converts the row to a type `name` (attribute notation); a cast
//! `x::name` runs a domain's constraints, which may call functions; a listed function
//! may have a namesake outside `pg_catalog` that takes the call. So a PostgreSQL query
//! also yields its [`ServerNames`], which the probe looks up in the catalogue before
//! any check runs (see `aws::sql_probe`), and field selection from an expression
//! (`(t).name`, `(expr).name`, `(expr).*`), which no check needs, is refused here.
//! MySQL and MariaDB have no such notation: there `t.name` and `d.t.name` are only
//! columns, a function is called only with parentheses (and `d.f()` is refused as
//! qualified), and there are no user-defined types to cast to.

use super::checks::Dialect;
use sqlparser::ast::{
    AccessExpr, ArrayElemTypeDef, BinaryOperator, DataType, Expr, Ident, ObjectName, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};
use std::collections::BTreeSet;
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
    /// A function that is not on the engine's list of functions a check may call.
    #[error(
        "the query calls {name}(), which is not one of the functions a check may call on {}: {}",
        dialect_name(*dialect),
        allowed_functions(*dialect).join(", ")
    )]
    FunctionNotAllowed {
        /// The function, as written.
        name: String,
        /// The engine family the SQL was checked for.
        dialect: Dialect,
    },
    /// A user-defined operator (`OPERATOR(s.op)`, a custom one) or MySQL's `:=`.
    #[error("the query uses the operator {operator}, which may run a function or set a variable")]
    OperatorNotAllowed {
        /// The operator, as written.
        operator: String,
    },
    /// PostgreSQL's `U&"..."` or `U&'...'`.
    #[error(
        "the SQL holds a U& (Unicode-escaped) name or string, whose escapes can spell any name"
    )]
    UnicodeEscape,
    /// A character beyond ASCII outside a string literal, in MySQL SQL.
    #[error(
        "the SQL holds the character U+{code:04X} outside a string literal, which MySQL and MariaDB may read otherwise than Lifeboat (a -- comment ends there only at an ASCII blank)"
    )]
    NonAscii {
        /// The character's code point.
        code: u32,
    },
    /// A `FROM` item of another SQL dialect (PIVOT, XMLTABLE...).
    #[error("the query reads from {what}, which a check may not use")]
    SourceNotAllowed {
        /// What it is.
        what: &'static str,
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
    /// A listed function written with a blank or comment before its parenthesis, in
    /// MySQL SQL.
    #[error(
        "the SQL calls {name} with a blank or comment before its parenthesis, which MySQL and MariaDB read as a call of a stored function {name} of the database's own"
    )]
    BlankBeforeParenthesis {
        /// The function, as written.
        name: String,
    },
    /// `(expr).name` or `(expr).*`: PostgreSQL calls a function `name(expr)` when the
    /// value has no field of that name.
    #[error(
        "the query selects a field of an expression ({expression}), which PostgreSQL reads as a call of a function on it when the value has no such field"
    )]
    FieldSelection {
        /// The expression, as parsed.
        expression: String,
    },
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
            UnsafeSql::FunctionNotAllowed { .. } => {
                "call only the functions this message lists, unquoted and without a schema (the README lists them under \"Checks cannot change the database they run against\"); for anything else, read a view the database's owner made"
            }
            UnsafeSql::OperatorNotAllowed { .. } => {
                "use the standard operators (=, <, +, AND, LIKE...) and no variables"
            }
            UnsafeSql::UnicodeEscape => {
                "write the name or string as plain text, in double or single quotes without U&"
            }
            UnsafeSql::NonAscii { .. } => {
                "write the SQL in ASCII outside string literals: plain spaces, names in ASCII (or in a string compared with the value)"
            }
            UnsafeSql::SourceNotAllowed { .. } => {
                "read from tables, views, subqueries, generate_series/unnest or JSON_TABLE"
            }
            UnsafeSql::ExecutableComment { .. } => {
                "write the SQL without /*! */, /*M! */ or /*+ */ comments (also inside strings, where Lifeboat cannot tell them apart)"
            }
            UnsafeSql::Backslash => {
                "write the SQL without backslashes (in a LIKE pattern, use ESCAPE with another character)"
            }
            UnsafeSql::DoubleQuoted => "quote strings with single quotes and names with backticks",
            UnsafeSql::BlankBeforeParenthesis { .. } => {
                "write the parenthesis right after the function's name: count(*), not count (*)"
            }
            UnsafeSql::FieldSelection { .. } => {
                "name a column through its table or alias (orders.total, not (orders).total); for a field of a composite value, read a view the database's owner made"
            }
        }
    }
}

/// One read-only query, as it will be sent: the text given, without the blanks and
/// semicolons around it, and the names in it that the server must resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyQuery {
    sql: String,
    names: ServerNames,
}

impl ReadOnlyQuery {
    /// The SQL to send.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The names PostgreSQL resolves only when it runs the query (none on MySQL).
    pub fn names(&self) -> &ServerNames {
        &self.names
    }
}

/// The names in a PostgreSQL check that only the server can resolve, each as the server
/// looks it up: an unquoted name in lower case, every name cut to 63 bytes (PostgreSQL's
/// longest identifier). The probe refuses a check when one of them names code in the
/// database ([`ServerNames::refusal`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerNames {
    /// The last part of each compound identifier (`t.name`, `s.t.name`): a column, or,
    /// when the row has none of that name, a function called on the row or a type the
    /// row is converted to.
    pub attributes: BTreeSet<String>,
    /// The type of each cast (`x::name`, `CAST(x AS s.name)`, `name 'x'`): a domain's
    /// constraints run in it.
    pub types: BTreeSet<String>,
    /// Each function called by name (all on the list): a namesake outside `pg_catalog`
    /// may take the call.
    pub calls: BTreeSet<String>,
}

impl ServerNames {
    /// Whether there is nothing to look up.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.types.is_empty() && self.calls.is_empty()
    }

    /// Every name, once.
    pub fn all(&self) -> BTreeSet<String> {
        self.attributes
            .iter()
            .chain(&self.types)
            .chain(&self.calls)
            .cloned()
            .collect()
    }

    /// Merge `other`'s names into these.
    pub fn extend(&mut self, other: &ServerNames) {
        self.attributes.extend(other.attributes.iter().cloned());
        self.types.extend(other.types.iter().cloned());
        self.calls.extend(other.calls.iter().cloned());
    }

    /// Why a check with these names must not run, given what the database's catalogue
    /// holds under them (`found`, looked up by [`ServerNames::all`]); `None` when every
    /// name can only mean what the check's author saw: a column, a built-in type, a
    /// listed built-in function. Names compare in lower case: a superset of the
    /// server's own matching, never a miss.
    pub fn refusal(&self, found: &[CatalogObject]) -> Option<NameRefused> {
        let named = |set: &BTreeSet<String>, o: &CatalogObject| {
            set.iter()
                .any(|n| n.to_lowercase() == o.name.to_lowercase())
        };
        for o in found {
            let listed = ALLOWED_FUNCTIONS_POSTGRES
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&o.name));
            let usage = match o.kind {
                CatalogKind::Function => {
                    if named(&self.attributes, o) && o.takes_a_row && !(o.built_in && listed) {
                        Some(NameUsage::Attribute)
                    } else if named(&self.calls, o) && !o.built_in && !o.in_extension {
                        Some(NameUsage::Call)
                    } else {
                        None
                    }
                }
                CatalogKind::Type if o.built_in => None,
                CatalogKind::Type => {
                    if named(&self.attributes, o) {
                        Some(NameUsage::Attribute)
                    } else if named(&self.types, o) {
                        Some(NameUsage::Cast)
                    } else if named(&self.calls, o) {
                        // `name(x)` of a row is a conversion to the type `name`.
                        Some(NameUsage::Call)
                    } else {
                        None
                    }
                }
            };
            if let Some(usage) = usage {
                return Some(NameRefused {
                    name: o.name.clone(),
                    usage,
                    object: o.clone(),
                });
            }
        }
        None
    }
}

/// What a database's catalogue holds under a name: a function or a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogKind {
    /// A function, aggregate or window function (`pg_proc`).
    Function,
    /// A type, domain, or a table's row type (`pg_type`).
    Type,
}

/// One function or type of a name a check uses, as the catalogue describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogObject {
    /// A function or a type.
    pub kind: CatalogKind,
    /// Its name.
    pub name: String,
    /// How to find it: `schema.name(argument types)` for a function, `schema.name` for a
    /// type.
    pub signature: String,
    /// In `pg_catalog` (PostgreSQL's own).
    pub built_in: bool,
    /// A member of an installed extension.
    pub in_extension: bool,
    /// A function that attribute notation can call on a row: it takes one argument
    /// (more with defaults), of a composite, domain or polymorphic type, or of a type a
    /// row converts to implicitly.
    pub takes_a_row: bool,
}

/// How a check uses a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameUsage {
    /// `t.name`.
    Attribute,
    /// `x::name`.
    Cast,
    /// `name(...)`.
    Call,
}

/// A check not run because one of its names resolves, at the server, to code it would
/// run. Retrying never helps: the check's SQL (or the database) must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", refused_text(self))]
pub struct NameRefused {
    /// The name as the check wrote it (folded as the server folds it).
    pub name: String,
    /// How the check uses it.
    pub usage: NameUsage,
    /// What the database holds under it.
    pub object: CatalogObject,
}

fn refused_text(r: &NameRefused) -> String {
    let what = match r.object.kind {
        CatalogKind::Function => "function",
        CatalogKind::Type => "type",
    };
    match r.usage {
        NameUsage::Attribute => format!(
            "the check names .{} after a table or alias, and the database has the {what} {}, which PostgreSQL runs there when the row has no column {}",
            r.name, r.object.signature, r.name
        ),
        NameUsage::Cast => format!(
            "the check casts to {}, and the database has the {what} {} of its own, whose constraints or input function run in the cast",
            r.name, r.object.signature
        ),
        NameUsage::Call => format!(
            "the check calls {}(), and the database has the {what} {} outside pg_catalog, which may take the call",
            r.name, r.object.signature
        ),
    }
}

impl NameRefused {
    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self.usage {
            NameUsage::Attribute => {
                "write the column without its table (name, not t.name), or alias it in a subquery (SELECT name AS v FROM t) and read v; to call a function, call one of the listed functions explicitly"
            }
            NameUsage::Cast => {
                "cast to a built-in type (integer, text, date...) instead of the database's own"
            }
            NameUsage::Call => {
                "call only built-in functions: remove or rename the database's namesake, or read a view its owner made"
            }
        }
    }
}

impl crate::error::Classify for NameRefused {
    fn retry(&self) -> crate::error::Retry {
        crate::error::Retry::NonRetryable
    }
}

/// `ident` as PostgreSQL looks it up: unquoted in lower case (ASCII only, as the server
/// folds it in UTF-8), then cut to 63 bytes on a character boundary.
fn as_postgres_stores(ident: &Ident) -> String {
    let folded = if ident.quote_style.is_none() {
        ident.value.to_ascii_lowercase()
    } else {
        ident.value.clone()
    };
    let mut end = folded.len().min(63);
    while !folded.is_char_boundary(end) {
        end -= 1;
    }
    folded[..end].to_string()
}

/// The name of each type a data type names by name (a domain, a type of the database's
/// own), arrays of them included; the parser's built-in types are PostgreSQL's own.
fn named_types(data_type: &DataType, out: &mut BTreeSet<String>) {
    match data_type {
        DataType::Custom(name, _) => {
            if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                out.insert(as_postgres_stores(last));
            }
        }
        DataType::Array(
            ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::Parenthesis(inner)
            | ArrayElemTypeDef::ParenthesisNotNull(inner),
        ) => named_types(inner, out),
        _ => {}
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

/// The functions a PostgreSQL check may call: side-effect-free ones an assertion needs
/// (aggregates, conditionals, text, numbers, dates, set-returning helpers for `FROM`).
/// Casts, `CASE`, `EXTRACT`, `SUBSTRING ... FROM`, `TRIM`, `POSITION` and `IN`/`EXISTS` are
/// syntax, not calls, and need no entry. Matched in any case, unquoted and unqualified
/// only: a quoted or schema-qualified name may be a function of the database's own.
pub const ALLOWED_FUNCTIONS_POSTGRES: &[&str] = &[
    // aggregates
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "bool_and",
    "bool_or",
    "every",
    "string_agg",
    "array_agg",
    // conditionals
    "coalesce",
    "nullif",
    "greatest",
    "least",
    // text
    "lower",
    "upper",
    "length",
    "char_length",
    "btrim",
    "ltrim",
    "rtrim",
    "substr",
    "concat",
    "replace",
    "left",
    "right",
    "md5",
    // numbers
    "abs",
    "round",
    "floor",
    "ceil",
    "ceiling",
    // dates and times
    "now",
    "current_date",
    "current_timestamp",
    "localtimestamp",
    "date_trunc",
    "date_part",
    "age",
    // rows from values, in FROM
    "generate_series",
    "unnest",
];

/// The functions a MySQL or MariaDB check may call, chosen as for PostgreSQL.
pub const ALLOWED_FUNCTIONS_MYSQL: &[&str] = &[
    // aggregates
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "bit_and",
    "bit_or",
    "group_concat",
    // conditionals
    "coalesce",
    "ifnull",
    "nullif",
    "if",
    "greatest",
    "least",
    // text
    "lower",
    "upper",
    "length",
    "char_length",
    "substr",
    "concat",
    "replace",
    "left",
    "right",
    "md5",
    // numbers
    "abs",
    "round",
    "floor",
    "ceil",
    "ceiling",
    // dates and times
    "now",
    "current_date",
    "current_timestamp",
    "curdate",
    "date",
    "datediff",
    "timestampdiff",
];

/// The functions a check may call on `dialect`.
pub fn allowed_functions(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Postgres => ALLOWED_FUNCTIONS_POSTGRES,
        Dialect::Mysql => ALLOWED_FUNCTIONS_MYSQL,
    }
}

/// `Err` unless `name` is one unquoted identifier on the dialect's list.
fn allowed_call(dialect: Dialect, name: &ObjectName) -> Result<(), UnsafeSql> {
    let allowed = match name.0.as_slice() {
        [one] => one.as_ident().is_some_and(|ident| {
            ident.quote_style.is_none()
                && allowed_functions(dialect)
                    .iter()
                    .any(|f| ident.value.eq_ignore_ascii_case(f))
        }),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(UnsafeSql::FunctionNotAllowed {
            name: name.to_string(),
            dialect,
        })
    }
}

/// Walks the whole statement, subqueries included.
struct ReadOnlyWalk {
    dialect: Dialect,
    statements: usize,
    names: ServerNames,
}

impl ReadOnlyWalk {
    /// An allowed call's name, to look up at the server (PostgreSQL).
    fn called(&mut self, name: &ObjectName) {
        if self.dialect == Dialect::Postgres
            && let [one] = name.0.as_slice()
            && let Some(ident) = one.as_ident()
        {
            self.names.calls.insert(as_postgres_stores(ident));
        }
    }
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
        for item in &select.projection {
            if let SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::Expr(e), _) = item
            {
                return ControlFlow::Break(UnsafeSql::FieldSelection {
                    expression: format!("{e}.*"),
                });
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<UnsafeSql> {
        let other = |what| Err(UnsafeSql::SourceNotAllowed { what });
        let checked = match factor {
            // `FROM f(...)`: a function called in FROM, parsed as a table with arguments.
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            // `FROM orders, LATERAL f(...)`.
            | TableFactor::Function { name, .. } => {
                allowed_call(self.dialect, name).inspect(|()| self.called(name))
            }
            // Their expressions are walked as any other.
            TableFactor::Table { args: None, .. }
            | TableFactor::Derived { .. }
            | TableFactor::TableFunction { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::JsonTable { .. }
            | TableFactor::NestedJoin { .. } => Ok(()),
            TableFactor::OpenJsonTable { .. } => other("OPENJSON"),
            TableFactor::Pivot { .. } => other("PIVOT"),
            TableFactor::Unpivot { .. } | TableFactor::UnpivotExpr { .. } => other("UNPIVOT"),
            TableFactor::MatchRecognize { .. } => other("MATCH_RECOGNIZE"),
            TableFactor::XmlTable { .. } => other("XMLTABLE"),
            TableFactor::SemanticView { .. } => other("SEMANTIC_VIEW"),
        };
        match checked {
            Ok(()) => ControlFlow::Continue(()),
            Err(why) => ControlFlow::Break(why),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<UnsafeSql> {
        let postgres = self.dialect == Dialect::Postgres;
        let checked = match expr {
            Expr::Function(f) => {
                allowed_call(self.dialect, &f.name).inspect(|()| self.called(&f.name))
            }
            // `t.name`: a column, or a call the server resolves (attribute notation).
            Expr::CompoundIdentifier(parts) => {
                if postgres && let Some(last) = parts.last() {
                    self.names.attributes.insert(as_postgres_stores(last));
                }
                Ok(())
            }
            // `(expr).name`; a subscript alone (`a[1]`) selects no field.
            Expr::CompoundFieldAccess { access_chain, .. }
                if access_chain.iter().any(|a| matches!(a, AccessExpr::Dot(_))) =>
            {
                Err(UnsafeSql::FieldSelection {
                    expression: expr.to_string(),
                })
            }
            Expr::Cast { data_type, .. } if postgres => {
                named_types(data_type, &mut self.names.types);
                Ok(())
            }
            Expr::TypedString(typed) if postgres => {
                named_types(&typed.data_type, &mut self.names.types);
                Ok(())
            }
            Expr::BinaryOp { op, .. } => match op {
                BinaryOperator::Custom(_)
                | BinaryOperator::PGCustomBinaryOperator(_)
                | BinaryOperator::Assignment => Err(UnsafeSql::OperatorNotAllowed {
                    operator: op.to_string(),
                }),
                _ => Ok(()),
            },
            _ => Ok(()),
        };
        match checked {
            Ok(()) => ControlFlow::Continue(()),
            Err(why) => ControlFlow::Break(why),
        }
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

/// The same, on the tokens: a string in double quotes is a name under `ANSI_QUOTES`, and
/// a character beyond ASCII outside a string may be read otherwise by the server (it ends
/// `-- ` only at an ASCII blank; the parser at any Unicode blank).
fn mysql_tokens(tokens: &[Token]) -> Result<(), UnsafeSql> {
    for (i, token) in tokens.iter().enumerate() {
        // `count (x)`: with a blank (or a comment) before the parenthesis, the server
        // calls a stored function `count` of the database's own instead of its own
        // COUNT (MySQL's function name resolution, unless sql_mode has IGNORE_SPACE).
        if let Token::Word(w) = token
            && w.quote_style.is_none()
            && ALLOWED_FUNCTIONS_MYSQL
                .iter()
                .any(|f| w.value.eq_ignore_ascii_case(f))
        {
            let after = &tokens[i + 1..];
            let blanks = after
                .iter()
                .take_while(|t| matches!(t, Token::Whitespace(_)))
                .count();
            if blanks > 0 && matches!(after.get(blanks), Some(Token::LParen)) {
                return Err(UnsafeSql::BlankBeforeParenthesis {
                    name: w.value.clone(),
                });
            }
        }
        match token {
            Token::DoubleQuotedString(_) => return Err(UnsafeSql::DoubleQuoted),
            Token::Word(w) if w.quote_style == Some('"') => return Err(UnsafeSql::DoubleQuoted),
            Token::SingleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::HexStringLiteral(_) => {}
            other => {
                if let Some(c) = other.to_string().chars().find(|c| !c.is_ascii()) {
                    return Err(UnsafeSql::NonAscii { code: u32::from(c) });
                }
            }
        }
    }
    Ok(())
}

/// PostgreSQL's `U&'...'` and `U&"..."`: refused, their escapes can spell any name. The
/// tokenizer knows the string form; the name form comes as `U`, `&` and a quoted name,
/// written without blanks between them.
fn postgres_tokens(tokens: &[Token]) -> Result<(), UnsafeSql> {
    for (i, token) in tokens.iter().enumerate() {
        let unicode_name = || {
            matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("u"))
                && matches!(tokens.get(i + 1), Some(Token::Ampersand))
                && matches!(
                    tokens.get(i + 2),
                    Some(Token::Word(w)) if w.quote_style == Some('"')
                )
        };
        if matches!(token, Token::UnicodeStringLiteral(_)) || unicode_name() {
            return Err(UnsafeSql::UnicodeEscape);
        }
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
    match dialect {
        Dialect::Mysql => mysql_tokens(&tokens)?,
        Dialect::Postgres => postgres_tokens(&tokens)?,
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
    let mut walk = ReadOnlyWalk {
        dialect,
        statements: 0,
        names: ServerNames::default(),
    };
    if let ControlFlow::Break(why) = statement.visit(&mut walk) {
        return Err(why);
    }
    Ok(ReadOnlyQuery {
        sql: trimmed(sql),
        names: walk.names,
    })
}

/// The SQL without the blanks and semicolons around it (a prepared statement takes no
/// trailing semicolon on every server).
fn trimmed(sql: &str) -> String {
    sql.trim_matches(|c: char| c.is_whitespace() || c == ';')
        .to_string()
}

#[cfg(test)]
mod tests;
