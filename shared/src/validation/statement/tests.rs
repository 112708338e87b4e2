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

fn not_allowed(dialect: Dialect, sql: &str) -> String {
    match refused(dialect, sql) {
        UnsafeSql::FunctionNotAllowed { name, dialect: d } => {
            assert_eq!(d, dialect, "{sql}");
            name
        }
        other => panic!("{dialect:?} {sql}: {other:?}"),
    }
}

#[test]
fn only_listed_functions_may_be_called_wherever_the_call_stands() {
    // Each place a call can stand, with `{f}` for the call.
    let places = [
        "SELECT {f}",
        "SELECT count(*) FROM orders WHERE {f} IS NOT NULL",
        "SELECT count(*) FROM orders GROUP BY {f}",
        "SELECT count(*) FROM orders HAVING {f} IS NOT NULL",
        "SELECT 1 FROM orders ORDER BY {f}",
        "SELECT (SELECT {f})",
        "SELECT 1 WHERE EXISTS (SELECT {f})",
        "SELECT 1 FROM (SELECT {f} AS v) AS s",
        "WITH c AS (SELECT {f} AS v) SELECT count(*) FROM c",
        "SELECT COALESCE(NULL, {f})",
        "SELECT CASE WHEN 1 = 1 THEN {f} END",
        "SELECT CAST({f} AS CHAR)",
        "SELECT count(*) FROM orders o JOIN users u ON {f} IS NOT NULL",
        "SELECT 1 FROM orders LIMIT 1 OFFSET {f}",
        "SELECT sum(1) OVER (ORDER BY {f}) FROM orders",
        "SELECT 1 FROM orders, LATERAL (SELECT {f}) AS x",
    ];
    let postgres_only = [
        "SELECT count(*) FILTER (WHERE {f} IS NULL) FROM orders",
        "SELECT sum(1) OVER w FROM orders WINDOW w AS (ORDER BY {f})",
        "SELECT string_agg('a', ',' ORDER BY {f}) FROM orders",
        "SELECT ARRAY[{f}]",
        "SELECT DISTINCT ON ({f}) 1 FROM orders",
        "SELECT 1 FROM (VALUES ({f})) AS v",
        "SELECT * FROM generate_series(1, {f})",
        "SELECT * FROM unnest(ARRAY[{f}])",
        "SELECT {f}::text",
    ];
    for (dialect, call) in [
        (Dialect::Postgres, "pg_advisory_lock(1)"),
        (Dialect::Mysql, "GET_LOCK('x', 0)"),
    ] {
        let extra: &[&str] = match dialect {
            Dialect::Postgres => &postgres_only,
            Dialect::Mysql => &[],
        };
        for place in places.iter().chain(extra) {
            let sql = place.replace("{f}", call);
            let name = not_allowed(dialect, &sql);
            assert!(call.starts_with(&name), "{sql}: {name}");
        }
    }
}

#[test]
fn functions_called_in_from_and_lateral_are_held_to_the_list() {
    for (sql, name) in [
        (
            "SELECT count(*) FROM users, LATERAL dblink_exec('dbname=x', 'DROP TABLE orders') AS x",
            "dblink_exec",
        ),
        (
            "SELECT count(*) FROM pg_stat_activity a, LATERAL pg_terminate_backend(a.pid) AS t",
            "pg_terminate_backend",
        ),
        (
            "SELECT 1 FROM orders CROSS JOIN LATERAL set_config('a', 'b', false)",
            "set_config",
        ),
        (
            "SELECT 1 FROM orders JOIN LATERAL lo_import('/etc/hostname') ON true",
            "lo_import",
        ),
        (
            "SELECT 1 FROM orders, LATERAL pg_catalog.lo_export(1, '/tmp/x')",
            "pg_catalog.lo_export",
        ),
        ("SELECT 1 FROM orders, LATERAL nextval('s')", "nextval"),
        (
            "SELECT 1 FROM orders, LATERAL pg_reload_conf()",
            "pg_reload_conf",
        ),
        (
            "SELECT * FROM LATERAL pg_advisory_lock(1)",
            "pg_advisory_lock",
        ),
        (
            "SELECT 1 FROM orders, pg_advisory_lock(1)",
            "pg_advisory_lock",
        ),
        (
            "SELECT 1 FROM orders JOIN pg_advisory_lock(1) ON true",
            "pg_advisory_lock",
        ),
        (
            "SELECT * FROM pg_catalog.set_config('a', 'b', false)",
            "pg_catalog.set_config",
        ),
        (
            "SELECT * FROM dblink('dbname=x', 'DELETE FROM orders') AS t(a int)",
            "dblink",
        ),
        (
            "WITH x AS (SELECT * FROM LATERAL pg_advisory_lock(1)) SELECT 1 FROM x",
            "pg_advisory_lock",
        ),
        (
            "SELECT 1 FROM orders o WHERE o.id IN (SELECT * FROM LATERAL pg_terminate_backend(1))",
            "pg_terminate_backend",
        ),
        (
            "SELECT 1 FROM orders, LATERAL pg_logical_slot_get_changes('s', NULL, NULL)",
            "pg_logical_slot_get_changes",
        ),
        (
            "SELECT * FROM pg_logical_slot_get_binary_changes('s', NULL, NULL)",
            "pg_logical_slot_get_binary_changes",
        ),
        (
            "SELECT pg_stat_statements_reset()",
            "pg_stat_statements_reset",
        ),
    ] {
        assert_eq!(not_allowed(Dialect::Postgres, sql), name, "{sql}");
    }
    // Listed set-returning functions are fine in FROM.
    for sql in [
        "SELECT count(*) FROM generate_series(1, 3) AS g",
        "SELECT count(*) FROM orders, LATERAL unnest(ARRAY[orders.id]) AS u",
    ] {
        assert!(read_only_query(Dialect::Postgres, sql).is_ok(), "{sql}");
    }
}

#[test]
fn quoted_qualified_and_unicode_escaped_names_are_refused() {
    for sql in [
        r#"SELECT "count"(*) FROM orders"#,
        "SELECT pg_catalog.count(*) FROM orders",
        "SELECT public.lower('A')",
    ] {
        not_allowed(Dialect::Postgres, sql);
    }
    not_allowed(Dialect::Mysql, "SELECT `count`(*) FROM orders");
    not_allowed(Dialect::Mysql, "SELECT test.lower('A')");
    for sql in [
        r#"SELECT U&"\0064blink_exec"('a', 'b')"#,
        r#"SELECT u&"set\005fconfig"('a', 'b', false)"#,
        r#"SELECT U&"pg\005fadvisory\005flock"(1)::text"#,
        r#"SELECT U&'\0041' = 'A'"#,
        r#"SELECT count(*) FROM U&"\006Frders""#,
    ] {
        assert_eq!(
            refused(Dialect::Postgres, sql),
            UnsafeSql::UnicodeEscape,
            "{sql}"
        );
    }
    // `u & "x"`, with blanks, is a bitwise AND of two columns.
    assert!(
        read_only_query(
            Dialect::Postgres,
            r#"SELECT count(*) FROM t WHERE u & "x" = 0"#
        )
        .is_ok()
    );
}

#[test]
fn user_defined_operators_and_variables_are_refused() {
    assert!(matches!(
        refused(Dialect::Postgres, "SELECT 1 OPERATOR(public.+) 2"),
        UnsafeSql::OperatorNotAllowed { .. }
    ));
    assert!(matches!(
        refused(Dialect::Mysql, "SELECT @a := 1"),
        UnsafeSql::OperatorNotAllowed { .. } | UnsafeSql::Unparsable { .. }
    ));
}

#[test]
fn listed_functions_are_accepted_in_any_case() {
    for dialect in BOTH {
        for f in allowed_functions(dialect) {
            let call = match *f {
                "count" => "count(*)".to_string(),
                "current_date" | "current_timestamp" | "localtimestamp" => f.to_string(),
                "now" | "curdate" => format!("{f}()"),
                "generate_series" => format!("{f}(1, 2)"),
                "unnest" => format!("{f}(ARRAY[1])"),
                "date_trunc" | "date_part" => format!("{f}('day', now())"),
                "age" | "datediff" => format!("{f}(now(), now())"),
                "timestampdiff" => format!("{f}(MINUTE, now(), now())"),
                "string_agg" | "group_concat" => format!("{f}(n_name, ',')"),
                "if" => format!("{f}(1 = 1, 1, 0)"),
                _ => format!("{f}(n_value)"),
            };
            let sql = match *f {
                "generate_series" | "unnest" => format!("SELECT count(*) FROM {call} AS g"),
                "group_concat" => "SELECT group_concat(n_name) FROM t".into(),
                _ => format!("SELECT {call} FROM t"),
            };
            for sql in [sql.clone(), sql.to_uppercase().replace("FROM T", "FROM t")] {
                let q = read_only_query(dialect, &sql);
                assert!(q.is_ok(), "{dialect:?} {sql}: {q:?}");
            }
        }
    }
    // Syntax that looks like a call is no call.
    for sql in [
        "SELECT EXTRACT(YEAR FROM now()) > 2000",
        "SELECT SUBSTRING('abc' FROM 2 FOR 1)",
        "SELECT TRIM(BOTH 'x' FROM 'xax')",
        "SELECT POSITION('a' IN 'cat')",
        "SELECT CAST(count(*) AS text) FROM orders",
    ] {
        assert!(read_only_query(Dialect::Postgres, sql).is_ok(), "{sql}");
    }
    // Functions that only read, but are not on the list, are refused too: the list is
    // what a check may call, not a guess at what is harmless.
    not_allowed(Dialect::Postgres, "SELECT pg_is_in_recovery()");
    not_allowed(Dialect::Mysql, "SELECT DATABASE() = 'orders'");
}

/// What an independent tester sent: every input that calls anything beyond the list, or
/// hides text the server reads otherwise, is refused; the rest is plain reading.
#[test]
fn the_testers_hostile_inputs_are_refused() {
    let postgres = [
        "SELECT pg_sleep(1)",
        "SELECT txid_current()",
        "SELECT pg_current_xact_id()",
        "SELECT '\\', pg_advisory_lock(1) --'",
        "SELECT E'\\'', pg_advisory_lock(1) --'",
        "SELECT \"pg_advisory_lock\"(1)",
        "SELECT pg_catalog.pg_advisory_lock(1)",
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT query_to_xml('DELETE FROM orders RETURNING 1', true, true, '')",
        "SELECT pg_import_system_collations('pg_catalog')",
        "SELECT pg_log_backend_memory_contexts(pg_backend_pid())",
        "SELECT 1 --\r, pg_advisory_lock(1)",
        "SELECT 1 AS a$$, pg_advisory_lock(1) --$$",
        "SELECT * FROM ROWS FROM (set_config('a','b',false))",
        "SELECT pg_notify('c', 'x')",
        "SELECT xmlexists('//x' PASSING BY REF pg_advisory_lock(1)::text::xml)",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY pg_advisory_lock(1)) FROM orders",
        "SELECT 1 FROM orders FETCH FIRST (pg_advisory_lock(1)::int) ROWS ONLY",
        "SELECT ROW(pg_advisory_lock(1))",
        "SELECT 1 FROM orders GROUP BY GROUPING SETS ((pg_advisory_lock(1)))",
        "SELECT SUBSTRING('a' FROM pg_advisory_lock(1)::int)",
        "SELECT TRIM(BOTH pg_advisory_lock(1)::text FROM 'x')",
        "SELECT POSITION('a' IN pg_advisory_lock(1)::text)",
        "SELECT EXTRACT(YEAR FROM pg_advisory_lock(1)::text::date)",
        "SELECT 1 FROM orders TABLESAMPLE SYSTEM (pg_advisory_lock(1)::int)",
        "SELECT * FROM LATERAL generate_series(1, pg_advisory_lock(1)::int)",
        "SELECT x FROM orders, LATERAL pg_advisory_lock(1) AS x",
        "SELECT pg_advisory_lock(1) COLLATE \"C\"",
        "SELECT (pg_advisory_lock(1))",
        "SELECT * FROM (SELECT 1) s(a), LATERAL dblink('x', 'DELETE FROM orders RETURNING 1') AS t(a int)",
        "SELECT ARRAY(SELECT pg_advisory_lock(1))",
    ];
    for sql in postgres {
        refused(Dialect::Postgres, sql);
    }
    let mysql = [
        "SELECT SLEEP(1)",
        "SELECT BENCHMARK(1000, MD5('a'))",
        "SELECT `get_lock`('x', 0)",
        "SELECT 1 /* /* */ , GET_LOCK('x',0) -- */",
        "SELECT 1 #\n, GET_LOCK('x',0)",
        "SELECT 1 INTO OUTFILE '/tmp/x'",
        "SELECT NEXT VALUE FOR s",
        "SELECT NEXTVAL(s)",
        "SELECT LASTVAL(s)",
        "SELECT MASTER_POS_WAIT('f', 1, 1)",
        "SELECT LOAD_FILE('/etc/hostname')",
        "SELECT RELEASE_LOCK('x')",
        "SELECT IS_USED_LOCK('x')",
        "HANDLER orders OPEN",
        "DO GET_LOCK('x',0)",
        "PREPARE p FROM 'DROP TABLE orders'",
        "EXECUTE p",
        "SELECT 1 FROM orders PROCEDURE ANALYSE()",
        "SELECT 1 FROM orders, LATERAL (SELECT GET_LOCK('x', 0)) t",
    ];
    for sql in mysql {
        refused(Dialect::Mysql, sql);
    }
    // A `--` comment that the parser ends where the server does not: refused for its
    // non-ASCII blank, before any reading of what follows.
    for blank in ['\u{a0}', '\u{2003}', '\u{3000}', '\u{85}'] {
        for sql in [
            format!(
                "SELECT 1 --{blank}+ 10 * GET_LOCK('lbt', 0)\nFROM (SELECT 2 AS `{blank}`) AS t"
            ),
            format!("SELECT 1 --{blank}, GET_LOCK('x',0)"),
            format!("SELECT id FROM orders AS `{blank}` WHERE 1 = 1 --{blank}.id FOR UPDATE"),
            format!(
                "SELECT 1 --{blank}.id INTO OUTFILE '/tmp/x'\nFROM orders AS `{blank}` LIMIT 1"
            ),
        ] {
            assert_eq!(
                refused(Dialect::Mysql, &sql),
                UnsafeSql::NonAscii {
                    code: u32::from(blank)
                },
                "{sql:?}"
            );
        }
    }
    // Non-ASCII text inside a string literal is data, and fine.
    assert!(
        read_only_query(
            Dialect::Mysql,
            "SELECT count(*) FROM users WHERE name = 'Zoë\u{a0}'"
        )
        .is_ok()
    );
    // Comments both read alike, and plain reading, pass.
    for (dialect, sql) in [
        (
            Dialect::Postgres,
            "SELECT 1 /* /* */ , pg_advisory_lock(1) */",
        ),
        (Dialect::Postgres, "SELECT $a$ ; DROP TABLE orders $a$"),
        (Dialect::Mysql, "SELECT 1 --\t, GET_LOCK('x',0)"),
        (Dialect::Mysql, "SELECT 1 # x\n"),
        (Dialect::Mysql, "SELECT N'a', X'41', _utf8mb4'b'"),
    ] {
        let q = read_only_query(dialect, sql);
        assert!(q.is_ok(), "{dialect:?} {sql:?}: {q:?}");
    }
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
        UnsafeSql::UnicodeEscape,
        UnsafeSql::NonAscii { code: 0xa0 },
        UnsafeSql::OperatorNotAllowed {
            operator: ":=".into(),
        },
        UnsafeSql::SourceNotAllowed { what: "PIVOT" },
    ] {
        assert!(!e.to_string().is_empty());
        assert!(!e.fix().is_empty());
    }
}

#[test]
fn field_selection_from_an_expression_is_refused() {
    for sql in [
        "SELECT (t).f FROM t",
        "SELECT (orders).total FROM orders",
        "SELECT (ROW(1, 2)).f",
        "SELECT (o.address).city FROM orders o",
        "SELECT a[1].f FROM t",
        "SELECT count(*) FROM t WHERE (t).f > 0",
        "SELECT (t).f.g FROM t",
    ] {
        match refused(Dialect::Postgres, sql) {
            UnsafeSql::FieldSelection { expression } => {
                assert!(expression.contains('.'), "{sql}: {expression}")
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    // `(expr).*` is not parsed at all; refused as well.
    assert!(read_only_query(Dialect::Postgres, "SELECT (t).* FROM t").is_err());
    for dialect in BOTH {
        // A subscript selects no field; a table's own star is no expression.
        assert!(read_only_query(dialect, "SELECT t.* FROM t").is_ok());
    }
    assert!(read_only_query(Dialect::Postgres, "SELECT a[1] FROM t").is_ok());
    assert!(read_only_query(Dialect::Postgres, "SELECT count(t.*) FROM t").is_ok());
    let e = refused(Dialect::Postgres, "SELECT (t).f FROM t");
    assert!(e.to_string().contains("(t).f"), "{e}");
    assert!(e.fix().contains("orders.total"), "{}", e.fix());
}

fn names(sql: &str) -> ServerNames {
    read_only_query(Dialect::Postgres, sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .names()
        .clone()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_last_part_of_every_compound_identifier_is_collected_as_the_server_folds_it() {
    for (sql, want) in [
        ("SELECT t.f FROM t", &["f"][..]),
        ("SELECT T.Some_Func FROM t", &["some_func"]),
        (r#"SELECT "T"."Mixed" FROM t"#, &["Mixed"]),
        ("SELECT s.t.col FROM s.t", &["col"]),
        ("SELECT d.s.t.col FROM s.t", &["col"]),
        (
            "SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id WHERE o.total > 0 ORDER BY u.email",
            &["email", "id", "total", "user_id"],
        ),
        (
            "SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.k = t.k) GROUP BY t.g",
            &["g", "k"],
        ),
        ("SELECT t.a::text FROM t", &["a"]),
        (
            "WITH c AS (SELECT x.v FROM x) SELECT count(*) FROM c",
            &["v"],
        ),
    ] {
        assert_eq!(names(sql).attributes, set(want), "{sql}");
    }
    // Cut to 63 bytes, as PostgreSQL cuts a name, on a character boundary.
    let long = "a".repeat(70);
    assert_eq!(
        names(&format!("SELECT t.{long} FROM t")).attributes,
        set(&[&"a".repeat(63)])
    );
    let wide = format!("\"{}é\"", "b".repeat(62));
    assert_eq!(
        names(&format!("SELECT t.{wide} FROM t")).attributes,
        set(&[&"b".repeat(62)])
    );
    // A plain column, a table's star and a string are no attribute.
    for sql in [
        "SELECT f FROM t",
        "SELECT count(*) FROM t WHERE total > 0",
        "SELECT t.* FROM t",
        "SELECT 't.f'",
    ] {
        assert!(names(sql).attributes.is_empty(), "{sql}");
    }
}

#[test]
fn cast_types_and_calls_are_collected_and_mysql_collects_nothing() {
    let n = names(
        "SELECT CAST(x AS public.Pos), y::dpos, z::\"Mine\"[], dpos '5', a::text, b::integer, lower(c), COUNT(*) FROM t",
    );
    assert_eq!(n.types, set(&["Mine", "dpos", "pos"]));
    assert_eq!(n.calls, set(&["count", "lower"]));
    assert!(
        names("SELECT x::text, 1::integer, DATE '2024-01-01'")
            .types
            .is_empty()
    );
    assert_eq!(
        names("SELECT count(*) FROM generate_series(1, 3) AS g").calls,
        set(&["count", "generate_series"])
    );
    // MySQL: `t.f` and `d.t.f` are only columns, and no type is the database's own.
    for sql in [
        "SELECT t.f FROM t",
        "SELECT d.t.f FROM d.t",
        "SELECT CAST(t.f AS CHAR), count(*) FROM t",
    ] {
        let q = read_only_query(Dialect::Mysql, sql).unwrap();
        assert!(q.names().is_empty(), "{sql}: {:?}", q.names());
    }
}

fn object(kind: CatalogKind, name: &str, built_in: bool) -> CatalogObject {
    CatalogObject {
        kind,
        name: name.into(),
        signature: format!("{}.{name}", if built_in { "pg_catalog" } else { "public" }),
        built_in,
        in_extension: false,
        takes_a_row: false,
    }
}

#[test]
fn a_name_is_refused_only_when_the_server_could_run_code_under_it() {
    let n = names("SELECT t.f, t.count, t.to_json, t.plain, x::dpos, lower(y) FROM t");
    let row_fn = |name: &str, built_in: bool| CatalogObject {
        takes_a_row: true,
        ..object(CatalogKind::Function, name, built_in)
    };
    // Nothing of those names: nothing refused.
    assert_eq!(n.refusal(&[]), None);
    // A function of the database's own that attribute notation can call on the row.
    let r = n.refusal(&[row_fn("f", false)]).unwrap();
    assert_eq!((r.name.as_str(), r.usage), ("f", NameUsage::Attribute));
    assert!(r.to_string().contains("public.f"), "{r}");
    assert!(r.fix().contains("subquery"), "{}", r.fix());
    assert_eq!(
        crate::error::Classify::retry(&r),
        crate::error::Retry::NonRetryable
    );
    // Names compare in any case.
    assert!(n.refusal(&[row_fn("F", false)]).is_some());
    // A built-in one that is listed (count) is harmless; one that is not listed is not.
    assert_eq!(n.refusal(&[row_fn("count", true)]), None);
    assert!(n.refusal(&[row_fn("to_json", true)]).is_some());
    // A function that cannot take a row is never called so.
    assert_eq!(
        n.refusal(&[object(CatalogKind::Function, "plain", false)]),
        None
    );
    // A type of the database's own the row could be converted to, or a cast to one.
    let r = n
        .refusal(&[object(CatalogKind::Type, "plain", false)])
        .unwrap();
    assert_eq!(r.usage, NameUsage::Attribute);
    let r = n
        .refusal(&[object(CatalogKind::Type, "dpos", false)])
        .unwrap();
    assert_eq!(r.usage, NameUsage::Cast);
    assert_eq!(n.refusal(&[object(CatalogKind::Type, "dpos", true)]), None);
    // A listed call's namesake of the database's own; an extension's is its author's.
    let r = n
        .refusal(&[object(CatalogKind::Function, "lower", false)])
        .unwrap();
    assert_eq!(r.usage, NameUsage::Call);
    let citext = CatalogObject {
        in_extension: true,
        ..object(CatalogKind::Function, "lower", false)
    };
    assert_eq!(n.refusal(&[citext]), None);
    assert_eq!(
        n.refusal(&[object(CatalogKind::Function, "lower", true)]),
        None
    );
    // A name the check does not use is no reason.
    assert_eq!(n.refusal(&[row_fn("elsewhere", false)]), None);
}

#[test]
fn on_mysql_a_listed_call_with_a_blank_before_its_parenthesis_is_refused() {
    for sql in [
        "SELECT max (id) FROM orders",
        "SELECT COUNT\n(*) FROM orders",
        "SELECT count(*) FROM orders WHERE sum /* x */ (id) > 0",
        "SELECT coalesce\t(1, 2)",
    ] {
        match refused(Dialect::Mysql, sql) {
            UnsafeSql::BlankBeforeParenthesis { name } => {
                assert!(sql.contains(&name), "{sql}: {name}")
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    let e = refused(Dialect::Mysql, "SELECT max (id) FROM orders");
    assert!(e.fix().contains("count(*)"), "{}", e.fix());
    // PostgreSQL reads the blank as nothing; written together, MySQL's own function.
    assert!(read_only_query(Dialect::Postgres, "SELECT max (id) FROM orders").is_ok());
    for sql in [
        "SELECT max(id) FROM orders",
        "SELECT count(*) FROM orders WHERE id IN (1, 2)",
        "SELECT count(*) FROM orders o LEFT JOIN (SELECT 1 AS k) AS x ON x.k = o.id",
        "SELECT count(*) FROM orders WHERE EXISTS (SELECT 1)",
    ] {
        assert!(read_only_query(Dialect::Mysql, sql).is_ok(), "{sql}");
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

/// A call of a function that is not on the list: a known one that acts, or any other
/// name, in any case, maybe schema-qualified.
fn unlisted_call() -> impl Strategy<Value = (String, String)> {
    let known = prop_oneof![
        Just("dblink_exec"),
        Just("pg_terminate_backend"),
        Just("set_config"),
        Just("lo_import"),
        Just("lo_export"),
        Just("nextval"),
        Just("pg_reload_conf"),
        Just("pg_advisory_lock"),
        Just("pg_logical_slot_get_changes"),
        Just("pg_stat_statements_reset"),
        Just("get_lock"),
        Just("sleep"),
    ]
    .prop_map(str::to_string);
    let other = "[a-z][a-z0-9_]{0,10}".prop_map(|s| format!("f_{s}"));
    (
        prop_oneof![known, other],
        any::<bool>(),
        proptest::option::of(name()),
    )
        .prop_map(|(f, upper, schema)| {
            let f = if upper { f.to_uppercase() } else { f };
            let name = match schema {
                Some(s) => format!("{s}.{f}"),
                None => f,
            };
            (format!("{name}(1, 'x')"), name)
        })
}

/// Where a call may stand in a query, `{f}` for the call and `{q}` for another query.
fn call_place() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("SELECT {f}"),
        Just("SELECT count(*) FROM ({q}) AS s WHERE {f} IS NOT NULL"),
        Just("SELECT 1 FROM ({q}) AS s ORDER BY {f}"),
        Just("SELECT 1 FROM ({q}) AS s GROUP BY {f}"),
        Just("WITH c AS (SELECT {f} AS v) SELECT count(*) FROM c"),
        Just("WITH c AS ({q}) SELECT count(*) FROM c, LATERAL {f} AS x"),
        Just("SELECT count(*) FROM ({q}) AS s, LATERAL (SELECT {f}) AS x"),
        Just("SELECT count(*) FROM {f} AS x"),
        Just("SELECT 1 WHERE EXISTS (SELECT {f})"),
        Just("SELECT CASE WHEN ({q}) IS NULL THEN {f} END"),
        Just("SELECT coalesce(({q}), {f})"),
        Just("SELECT sum(1) OVER (ORDER BY {f})"),
        Just("({q}) UNION ALL SELECT {f}"),
    ]
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
    fn a_call_outside_the_list_is_refused_wherever_it_stands(
        d in dialect(),
        (call, name) in unlisted_call(),
        place in call_place(),
        q in select_core(),
    ) {
        let sql = place.replace("{q}", &q).replace("{f}", &call);
        // MySQL has no LATERAL function call: what it cannot parse is refused as well.
        match read_only_query(d, &sql) {
            Err(UnsafeSql::FunctionNotAllowed { name: n, .. }) => prop_assert_eq!(n, name),
            Err(UnsafeSql::Unparsable { .. }) if d == Dialect::Mysql => {}
            other => prop_assert!(false, "{:?} {:?}: {:?}", d, sql, other),
        }
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

/// A name as a check may write it: unquoted in any case, or quoted.
fn written_name() -> impl Strategy<Value = (String, String)> {
    (name(), any::<bool>(), any::<bool>()).prop_map(|(n, upper, quoted)| {
        let n = if upper { n.to_uppercase() } else { n };
        if quoted {
            (format!("\"{n}\""), n)
        } else {
            (n.clone(), n.to_ascii_lowercase())
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_compound_identifier_has_its_last_part_collected(
        parts in proptest::collection::vec(written_name(), 2..5),
        place in prop_oneof![
            Just("SELECT {c} FROM n_t"),
            Just("SELECT count(*) FROM n_t WHERE {c} IS NOT NULL"),
            Just("SELECT 1 FROM n_t ORDER BY {c}"),
            Just("SELECT count(*) FROM (SELECT {c} AS v FROM n_t) AS s"),
            Just("SELECT coalesce(max({c}), 0) FROM n_t"),
        ],
    ) {
        let written: Vec<&str> = parts.iter().map(|(w, _)| w.as_str()).collect();
        let sql = place.replace("{c}", &written.join("."));
        let q = read_only_query(Dialect::Postgres, &sql);
        prop_assert!(q.is_ok(), "{sql}: {q:?}");
        let q = q.unwrap();
        let last = &parts.last().unwrap().1;
        prop_assert!(q.names().attributes.contains(last), "{sql}: {:?}", q.names());
        prop_assert_eq!(q.names().attributes.len(), 1, "{}", sql);
        // MySQL reads the same text as columns only.
        if let Ok(m) = read_only_query(Dialect::Mysql, &sql.replace('"', "`")) {
            prop_assert!(m.names().is_empty(), "{sql}");
        }
    }

    #[test]
    fn plain_columns_are_never_collected_nor_refused(sql in select()) {
        let q = read_only_query(Dialect::Postgres, &sql).unwrap();
        prop_assert!(q.names().attributes.is_empty(), "{sql}: {:?}", q.names());
        // Whatever the catalogue holds under the columns' names, a check naming them
        // plainly is not refused for them.
        let found: Vec<CatalogObject> = ["n_a", "n_b", "n_x", "n_one"]
            .iter()
            .map(|n| CatalogObject {
                kind: CatalogKind::Function,
                name: n.to_string(),
                signature: format!("public.{n}(record)"),
                built_in: false,
                in_extension: false,
                takes_a_row: true,
            })
            .collect();
        prop_assert_eq!(q.names().refusal(&found), None);
    }
}

#[test]
fn the_table_shorthand_is_not_a_check_and_values_is() {
    for dialect in BOTH {
        // `TABLE orders` is refused (the parser does not take it): the docs say so.
        refused(dialect, "TABLE orders");
    }
    assert!(read_only_query(Dialect::Postgres, "VALUES (1)").is_ok());
}
