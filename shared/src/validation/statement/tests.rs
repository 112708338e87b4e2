use super::*;
use proptest::prelude::*;

const BOTH: [Dialect; 2] = [Dialect::Postgres, Dialect::Mysql];

fn refused(dialect: Dialect, sql: &str) -> UnsafeSql {
    match read_only_query(dialect, sql) {
        Ok(q) => panic!("{dialect:?} accepted {sql:?} as {:?}", q.sql()),
        Err(e) => e,
    }
}

#[test]
fn plain_reads_are_accepted_and_sent_without_their_semicolon() {
    for dialect in BOTH {
        for sql in [
            "SELECT count(*) FROM orders",
            "  SELECT count(*) > 0 FROM orders WHERE total < 0;  ",
            "WITH big AS (SELECT id FROM orders WHERE total > 100) SELECT count(*) FROM big",
            "SELECT (SELECT max(id) FROM orders) - (SELECT min(id) FROM orders)",
            "SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id",
            "SELECT 1 UNION ALL SELECT 2",
            "SELECT count(*) FROM orders -- the whole table\n",
            "SELECT /* a note; DROP TABLE orders */ count(*) FROM orders",
            "SELECT 'it''s; DROP TABLE orders' = 'x'",
            "VALUES (1)",
        ] {
            let q = read_only_query(dialect, sql)
                .unwrap_or_else(|e| panic!("{dialect:?} {sql:?}: {e}"));
            assert!(!q.sql().ends_with(';'), "{sql}");
            assert_eq!(q.sql(), q.sql().trim());
        }
    }
    assert_eq!(
        read_only_query(Dialect::Postgres, "SELECT 1;;")
            .unwrap()
            .sql(),
        "SELECT 1"
    );
    // Each engine's own quoting.
    assert!(read_only_query(Dialect::Postgres, r#"SELECT count(*) FROM "Orders""#).is_ok());
    assert!(read_only_query(Dialect::Mysql, "SELECT count(*) FROM `Orders`").is_ok());
    assert!(read_only_query(Dialect::Postgres, "SELECT E'a\\nb' <> ''").is_ok());
}

#[test]
fn ddl_dml_and_every_other_statement_is_refused_naming_it() {
    for dialect in BOTH {
        for (sql, keyword) in [
            ("DROP TABLE orders", "DROP"),
            ("CREATE TABLE x (id int)", "CREATE"),
            ("ALTER TABLE orders ADD COLUMN x int", "ALTER"),
            ("TRUNCATE TABLE orders", "TRUNCATE"),
            ("DELETE FROM orders", "DELETE"),
            ("UPDATE orders SET total = 0", "UPDATE"),
            ("INSERT INTO orders (id) VALUES (1)", "INSERT"),
            ("CALL purge_orders()", "CALL"),
            ("SET SESSION TRANSACTION READ WRITE", "SET"),
            ("GRANT ALL ON orders TO public", "GRANT"),
            ("EXPLAIN ANALYZE DELETE FROM orders", "EXPLAIN"),
        ] {
            match refused(dialect, sql) {
                UnsafeSql::NotAQuery { keyword: k } => assert_eq!(k, keyword, "{sql}"),
                other => panic!("{dialect:?} {sql}: {other:?}"),
            }
        }
    }
    // LOAD DATA and COPY: refused, whether the parser knows them or not.
    for sql in [
        "LOAD DATA INFILE '/etc/passwd' INTO TABLE orders",
        "LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE orders",
    ] {
        let e = refused(Dialect::Mysql, sql);
        assert!(
            matches!(
                e,
                UnsafeSql::NotAQuery { .. } | UnsafeSql::Unparsable { .. }
            ),
            "{e:?}"
        );
    }
    assert!(matches!(
        refused(Dialect::Postgres, "COPY orders FROM '/tmp/x'"),
        UnsafeSql::NotAQuery { .. }
    ));
    assert!(matches!(
        refused(Dialect::Mysql, "DO SLEEP(1)"),
        UnsafeSql::NotAQuery { .. } | UnsafeSql::Unparsable { .. }
    ));
}

#[test]
fn several_statements_are_refused_also_behind_comments() {
    for dialect in BOTH {
        assert_eq!(
            refused(dialect, "SELECT 1; DROP TABLE orders"),
            UnsafeSql::SeveralStatements { count: 2 }
        );
        assert_eq!(
            refused(dialect, "SELECT 1 -- looks like one\n; DELETE FROM orders"),
            UnsafeSql::SeveralStatements { count: 2 }
        );
        assert_eq!(
            refused(dialect, "SELECT 1 /* one */; /* two */ SELECT 2"),
            UnsafeSql::SeveralStatements { count: 2 }
        );
    }
    // MySQL runs the text of these comments.
    for (sql, marker) in [
        ("SELECT 1 /*! ; DROP TABLE orders */", "/*!"),
        ("SELECT 1 /*!50000 ; DROP TABLE orders */", "/*!"),
        ("SELECT 1 /*M! ; DROP TABLE orders */", "/*M!"),
        ("SELECT 1 /*m!100000 , 2 */", "/*M!"),
        ("SELECT /*+ SET_VAR(sql_mode='') */ 1", "/*+"),
        ("SELECT '/*!' = 'x'", "/*!"),
    ] {
        assert_eq!(
            refused(Dialect::Mysql, sql),
            UnsafeSql::ExecutableComment { marker },
            "{sql}"
        );
    }
    // PostgreSQL has none: they are comments there.
    assert!(read_only_query(Dialect::Postgres, "SELECT 1 /*! ; DROP TABLE orders */").is_ok());
    // A PostgreSQL comment nests, a MySQL one does not: each parsed as its server reads it.
    assert!(read_only_query(Dialect::Postgres, "SELECT 1 /* a /* b */ ; DROP TABLE t */").is_ok());
    assert!(read_only_query(Dialect::Mysql, "SELECT 1 /* a /* b */ ; DROP TABLE t */").is_err());
    // MySQL needs a blank after `--`: `--1` is minus minus one, so the DROP is a statement.
    assert_eq!(
        refused(Dialect::Mysql, "SELECT 1 --1; DROP TABLE orders"),
        UnsafeSql::SeveralStatements { count: 2 }
    );
}

#[test]
fn writes_hidden_in_a_query_are_refused() {
    for sql in [
        "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone",
        "WITH moved AS (UPDATE orders SET total = 0 RETURNING id) SELECT count(*) FROM moved",
        "WITH added AS (INSERT INTO orders (id) VALUES (1) RETURNING id) SELECT 1",
        "WITH x AS (SELECT 1) DELETE FROM orders",
    ] {
        let e = refused(Dialect::Postgres, sql);
        assert!(
            matches!(
                e,
                UnsafeSql::NestedStatement { .. } | UnsafeSql::NotAQuery { .. }
            ),
            "{sql}: {e:?}"
        );
    }
    for dialect in BOTH {
        assert_eq!(
            refused(dialect, "SELECT * INTO orders_copy FROM orders"),
            UnsafeSql::SelectInto
        );
    }
    for sql in [
        "SELECT count(*) INTO @n FROM orders",
        "SELECT 1 INTO OUTFILE '/tmp/x'",
        "SELECT id FROM orders INTO OUTFILE '/tmp/x'",
        "SELECT id FROM orders INTO DUMPFILE '/tmp/x'",
    ] {
        let e = refused(Dialect::Mysql, sql);
        assert!(
            matches!(e, UnsafeSql::SelectInto | UnsafeSql::Unparsable { .. }),
            "{sql}: {e:?}"
        );
    }
}

#[test]
fn row_locks_are_refused() {
    for dialect in BOTH {
        for sql in [
            "SELECT id FROM orders FOR UPDATE",
            "SELECT id FROM orders FOR SHARE",
            "SELECT id FROM (SELECT id FROM orders FOR UPDATE) AS o",
        ] {
            assert!(
                matches!(refused(dialect, sql), UnsafeSql::LocksRows { .. }),
                "{dialect:?} {sql}"
            );
        }
    }
    assert!(read_only_query(Dialect::Mysql, "SELECT id FROM orders LOCK IN SHARE MODE").is_err());
}

#[test]
fn functions_that_act_beyond_reading_are_refused_wherever_they_are_called() {
    for (dialect, sql, name) in [
        (
            Dialect::Postgres,
            "SELECT set_config('default_transaction_read_only', 'off', false)",
            "set_config",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM pg_catalog.set_config('a.b', 'c', false)",
            "pg_catalog.set_config",
        ),
        (Dialect::Postgres, "SELECT PG_PROMOTE()", "PG_PROMOTE"),
        (
            Dialect::Postgres,
            "SELECT pg_advisory_lock(1)",
            "pg_advisory_lock",
        ),
        (
            Dialect::Postgres,
            "SELECT count(*) FROM orders WHERE id IN (SELECT pg_terminate_backend(pid) FROM pg_stat_activity)",
            "pg_terminate_backend",
        ),
        (
            Dialect::Postgres,
            "SELECT dblink_exec('host=x', 'DROP TABLE orders')",
            "dblink_exec",
        ),
        (
            Dialect::Postgres,
            "SELECT lo_import('/etc/passwd')",
            "lo_import",
        ),
        (
            Dialect::Postgres,
            "SELECT nextval('orders_id_seq')",
            "nextval",
        ),
        (Dialect::Mysql, "SELECT GET_LOCK('x', 10)", "GET_LOCK"),
    ] {
        assert_eq!(
            refused(dialect, sql),
            UnsafeSql::ActingFunction { name: name.into() },
            "{sql}"
        );
    }
    // Reading functions are fine.
    assert!(read_only_query(Dialect::Postgres, "SELECT pg_is_in_recovery()").is_ok());
    assert!(read_only_query(Dialect::Mysql, "SELECT DATABASE() = 'orders'").is_ok());
}

#[test]
fn mysql_refuses_what_its_sql_mode_could_read_otherwise() {
    assert_eq!(
        refused(Dialect::Mysql, r"SELECT 'a\' = 'b'"),
        UnsafeSql::Backslash
    );
    assert_eq!(
        refused(Dialect::Mysql, r#"SELECT "orders" = 'orders'"#),
        UnsafeSql::DoubleQuoted
    );
    assert!(read_only_query(Dialect::Mysql, "SELECT 'say \"hi\"' <> ''").is_ok());
}

#[test]
fn what_cannot_be_parsed_or_is_empty_is_refused() {
    for dialect in BOTH {
        for sql in ["", "   ", ";", "-- only a comment", "/* only */"] {
            assert!(
                read_only_query(dialect, sql).is_err(),
                "{dialect:?} {sql:?}"
            );
        }
        assert!(matches!(
            refused(dialect, "SELEC 1"),
            UnsafeSql::Unparsable { .. } | UnsafeSql::NotAQuery { .. }
        ));
        assert!(matches!(
            refused(dialect, "SELECT 'unterminated"),
            UnsafeSql::Unparsable { .. }
        ));
        assert!(matches!(
            refused(dialect, &"x".repeat(MAX_CHECK_SQL_BYTES + 1)),
            UnsafeSql::TooLong { .. }
        ));
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(matches!(
            refused(dialect, &deep),
            UnsafeSql::Unparsable { .. }
        ));
    }
}

#[test]
fn every_refusal_says_what_to_do() {
    for e in [
        UnsafeSql::Empty,
        UnsafeSql::SeveralStatements { count: 2 },
        UnsafeSql::SelectInto,
        UnsafeSql::Backslash,
        UnsafeSql::ExecutableComment { marker: "/*!" },
    ] {
        assert!(!e.to_string().is_empty());
        assert!(!e.fix().is_empty());
    }
}

// --- property tests -------------------------------------------------------------

/// Names that are no keyword in either dialect.
fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}".prop_map(|s| format!("n_{s}"))
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        (0_i64..1_000_000).prop_map(|n| n.to_string()),
        // Quotes doubled, semicolons and comment markers inside: still one string.
        "[a-z ;'*/-]{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        Just("NULL".to_string()),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![literal(), name(), Just("count(*)".to_string())];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} + {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) = ({b})")),
            (inner.clone(), name(), name())
                .prop_map(|(e, c, t)| format!("(SELECT max({c}) FROM {t} WHERE {c} > {e})")),
            (inner.clone(), inner)
                .prop_map(|(a, b)| format!("CASE WHEN {a} IS NULL THEN {b} ELSE 0 END")),
        ]
    })
}

/// A SELECT of the shapes assertions take, as written: with what may follow it.
fn select() -> impl Strategy<Value = String> {
    (
        select_core(),
        prop_oneof![
            Just(""),
            Just(";"),
            Just(" ;\n"),
            Just(" -- a note\n"),
            Just(" /* a note; not a statement */")
        ],
    )
        .prop_map(|(sql, tail)| format!("{sql}{tail}"))
}

/// A SELECT of the shapes assertions take, nothing after it.
fn select_core() -> impl Strategy<Value = String> {
    (
        expression(),
        proptest::option::of(name()),
        proptest::option::of(expression()),
        proptest::option::of(name()),
    )
        .prop_map(|(value, table, filter, cte)| {
            let mut sql = String::new();
            if let Some(c) = &cte {
                sql.push_str(&format!("WITH {c} AS (SELECT 1 AS n_one) "));
            }
            sql.push_str(&format!("SELECT {value}"));
            match (&table, &cte) {
                (Some(t), _) => sql.push_str(&format!(" FROM {t}")),
                (None, Some(c)) => sql.push_str(&format!(" FROM {c}")),
                (None, None) => {}
            }
            if let Some(f) = filter {
                sql.push_str(&format!(" WHERE {f} IS NOT NULL"));
            }
            sql
        })
}

fn write_statement() -> impl Strategy<Value = String> {
    (name(), literal()).prop_flat_map(|(t, v)| {
        prop_oneof![
            Just(format!("DROP TABLE {t}")),
            Just(format!("DELETE FROM {t}")),
            Just(format!("UPDATE {t} SET n_x = {v}")),
            Just(format!("INSERT INTO {t} (n_x) VALUES ({v})")),
            Just(format!("CREATE TABLE {t} (n_x int)")),
            Just(format!("TRUNCATE TABLE {t}")),
            Just(format!("CALL {t}()")),
        ]
    })
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::Postgres), Just(Dialect::Mysql)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_selects_are_accepted(d in dialect(), sql in select()) {
        let q = read_only_query(d, &sql);
        prop_assert!(q.is_ok(), "{:?} refused {:?}: {:?}", d, sql, q);
    }

    #[test]
    fn any_list_of_more_than_one_statement_is_refused(
        d in dialect(),
        statements in proptest::collection::vec(
            prop_oneof![select_core(), write_statement()],
            2..6,
        ),
    ) {
        let sql = statements.join(";\n");
        let e = read_only_query(d, &sql);
        prop_assert!(e.is_err(), "{:?} accepted {:?}", d, sql);
    }

    #[test]
    fn a_select_followed_by_a_write_is_refused_as_several(
        d in dialect(), s in select_core(), w in write_statement(), note in prop_oneof![
            Just(""), Just(" -- a note\n"), Just(" /* a note */ "), Just("\n")
        ]
    ) {
        let sql = format!("{s}{note};{note}{w}");
        prop_assert!(
            matches!(read_only_query(d, &sql), Err(UnsafeSql::SeveralStatements { count: 2 })),
            "{sql}"
        );
    }

    #[test]
    fn writes_are_refused_alone_and_in_a_with(d in dialect(), w in write_statement(), c in name()) {
        prop_assert!(read_only_query(d, &w).is_err(), "{w}");
        let hidden = format!("WITH {c} AS ({w} RETURNING 1) SELECT count(*) FROM {c}");
        prop_assert!(read_only_query(d, &hidden).is_err(), "{hidden}");
    }

    #[test]
    fn arbitrary_text_never_panics(d in dialect(), sql in any::<String>()) {
        let _ = read_only_query(d, &sql);
    }

    #[test]
    fn sql_like_text_never_panics_and_what_is_accepted_is_one_query(
        d in dialect(),
        parts in proptest::collection::vec(
            prop_oneof![
                Just("SELECT"), Just("FROM"), Just("WITH"), Just("AS"), Just("("), Just(")"),
                Just(";"), Just("--"), Just("/*"), Just("*/"), Just("'"), Just("\""), Just("`"),
                Just("DELETE"), Just("INTO"), Just("FOR UPDATE"), Just("\n"), Just("n_t"),
                Just("1"), Just(","), Just("$$"), Just("/*!"), Just("\\"),
            ],
            0..24,
        ),
    ) {
        let sql = parts.join(" ");
        if let Ok(q) = read_only_query(d, &sql) {
            let again = read_only_query(d, q.sql());
            prop_assert!(again.is_ok(), "{sql:?} accepted, its trimmed form not: {again:?}");
        }
    }
}
