//! A check can never change a database, on either engine. Against the real local
//! PostgreSQL and MariaDB servers (each test in a database of its own, created and
//! dropped): SQL that could write is refused when the plan is loaded; the same SQL, sent
//! anyway past the statement check (as a bug in it would), fails at the server, whose
//! session is read-only; and the read-only user the README recommends is created from
//! the README's own statements and cannot write even outside Lifeboat's session. After
//! each, the tables are intact, row for row.

use crate::support::local_plan;
use harness::databases::ScratchDatabase;
use lifeboat::aws::SqlProbe;
use lifeboat::plan::parse_plan;
use lifeboat::validation::checks::{
    CheckKind, CheckResult, Dialect, Expect, PlannedCheck, plan_checks,
};
use lifeboat::validation::run::DatabaseProbe;
use lifeboat::validation::statement::ServerNames;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const BOTH: [Dialect; 2] = [Dialect::Postgres, Dialect::Mysql];

/// What each engine's hostile checks need to exist: a procedure and a function that write.
fn writers(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Postgres => &[
            "CREATE PROCEDURE lb_purge() LANGUAGE sql AS $$ DELETE FROM orders $$",
            "CREATE FUNCTION lb_purge_fn() RETURNS integer LANGUAGE sql AS $$ DELETE FROM orders; SELECT 1 $$",
        ],
        Dialect::Mysql => &[
            "CREATE PROCEDURE lb_purge() BEGIN DELETE FROM orders; DROP TABLE users; END",
            "CREATE FUNCTION lb_purge_fn() RETURNS INT DETERMINISTIC MODIFIES SQL DATA BEGIN DELETE FROM orders; RETURN 1; END",
        ],
    }
}

/// SQL a careless or hostile assertion could hold, for `dialect`: (what it is, the SQL).
fn hostile(dialect: Dialect) -> Vec<(&'static str, &'static str)> {
    let mut all = vec![
        ("DDL", "DROP TABLE orders"),
        ("DDL", "CREATE TABLE lb_new (id integer)"),
        ("DDL", "ALTER TABLE orders DROP COLUMN total_cents"),
        ("DDL", "TRUNCATE TABLE orders"),
        ("DML", "DELETE FROM orders"),
        ("DML", "UPDATE orders SET total_cents = 0"),
        (
            "DML",
            "INSERT INTO orders (id, user_id, total_cents) VALUES (9, 1, 1)",
        ),
        ("SELECT INTO", "SELECT * INTO orders_copy FROM orders"),
        (
            "several statements",
            "SELECT count(*) FROM orders; DELETE FROM orders",
        ),
        (
            "a comment hiding a second statement",
            "SELECT count(*) FROM orders -- just a count\n; DROP TABLE orders",
        ),
        ("CALL", "CALL lb_purge()"),
        ("a function that writes", "SELECT lb_purge_fn()"),
        ("SET", "SET SESSION TRANSACTION READ WRITE"),
        ("row locks", "SELECT id FROM orders FOR UPDATE"),
    ];
    match dialect {
        Dialect::Postgres => all.extend([
            ("LOAD DATA (COPY)", "COPY orders FROM '/etc/hostname'"),
            (
                "a data-modifying WITH",
                "WITH gone AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM gone",
            ),
            (
                "a setting changed by a SELECT",
                "SELECT set_config('default_transaction_read_only', 'off', false)",
            ),
        ]),
        Dialect::Mysql => all.extend([
            (
                "LOAD DATA",
                "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE orders",
            ),
            (
                "an executable comment hiding a second statement",
                "SELECT count(*) FROM orders /*! ; DROP TABLE orders */",
            ),
            (
                "a MariaDB executable comment hiding a second statement",
                "SELECT count(*) FROM orders /*M! ; DROP TABLE orders */",
            ),
            ("DDL", "CREATE TABLE orders_copy AS SELECT * FROM orders"),
            ("SELECT INTO", "SELECT count(*) INTO @n FROM orders"),
        ]),
    }
    all
}

/// The seeded shop, exactly: both tables (and no other), every row with its values.
async fn assert_intact(db: &ScratchDatabase, after: &str) {
    let schema = match db.dialect {
        Dialect::Postgres => "'public'",
        Dialect::Mysql => "DATABASE()",
    };
    let counts = [
        (
            format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = {schema} AND table_name IN ('users', 'orders')"
            ),
            2,
        ),
        (
            format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = {schema}"),
            2,
        ),
        ("SELECT count(*) FROM users".to_string(), 3),
        (
            "SELECT count(*) FROM users WHERE (id, email) IN ((1, 'ada@example.com'), (2, 'grace@example.com'), (3, 'edsger@example.com'))".to_string(),
            3,
        ),
        ("SELECT count(*) FROM orders".to_string(), 4),
        (
            "SELECT count(*) FROM orders WHERE (id, user_id, total_cents) IN ((1, 1, 1250), (2, 1, 990), (3, 2, 4500), (4, 3, 120))".to_string(),
            4,
        ),
    ];
    for (sql, want) in counts {
        assert_eq!(
            db.count(&sql).await.unwrap(),
            want,
            "{:?} after {after}: {sql}",
            db.dialect
        );
    }
}

/// A check of `sql` as the probe would run it, had the statement check let it through.
fn unchecked(name: &str, sql: &str) -> PlannedCheck {
    PlannedCheck {
        name: name.into(),
        kind: CheckKind::Assertion,
        sql: sql.into(),
        params: vec![],
        expect: Expect::Text("1".into()),
        gate: None,
        names: ServerNames::default(),
    }
}

fn plan_with_assertion(dialect: Dialect, sql: &str) -> Value {
    let mut plan: Value =
        serde_json::from_str(include_str!("../../infra/plans/local.json")).unwrap();
    plan["resources"][0]["engine"] = json!(match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Mysql => "mariadb",
    });
    plan["resources"][0]["validation"]["assertions"] =
        json!([{"name": "careless", "sql": sql, "expect": "0"}]);
    plan
}

#[tokio::test]
async fn sql_that_could_write_is_refused_at_load_on_both_engines_and_nothing_runs() {
    for dialect in BOTH {
        let db = ScratchDatabase::seeded(dialect).await.unwrap();
        // A function of the database's own is not on the list a check may call, so it is
        // refused too (its writes are also refused by the read-only session: next test).
        let refusable = || hostile(dialect).into_iter();
        for (what, sql) in refusable() {
            let plan = plan_with_assertion(dialect, sql);
            let err = parse_plan(&plan.to_string())
                .expect_err(&format!("{dialect:?}: {what} accepted: {sql}"))
                .to_string();
            assert!(
                err.contains("`resources[0].validation.assertions[0].sql`: assertion \"careless\" is not one read-only query"),
                "{dialect:?} {what}: {err}"
            );
        }
        // The gate before any connection refuses them too (a recovery's own assertions
        // arrive with its command, not through the plan's loader).
        let mut v = local_plan()
            .resource("orders-db")
            .unwrap()
            .validation
            .clone()
            .unwrap();
        for (what, sql) in refusable() {
            v.assertions[0].sql = sql.into();
            assert!(plan_checks(dialect, &v).is_err(), "{dialect:?} {what}");
        }
        assert_intact(&db, "the refusals").await;
        db.drop_database().await.unwrap();
    }
}

/// Statements a read-only session may allow, because they change no data: a session
/// setting (rolled back with PostgreSQL's transaction; on MySQL the next check is not
/// run, see below) and a MySQL session variable. The statement check refuses them; at
/// the server, only the tables' being intact is asserted.
fn changes_no_data(sql: &str) -> bool {
    sql.starts_with("SET ") || sql.contains("INTO @") || sql.contains("set_config")
}

/// Every check failed, none passed, and each failure is the server's refusal (or the
/// session's guard), not a connection problem.
fn all_refused(dialect: Dialect, results: &[CheckResult], what: &str, sql: &str) {
    assert!(!results.is_empty(), "{dialect:?} {what}: no result");
    for r in results {
        assert!(!r.passed, "{dialect:?} {what}: {sql} passed: {r:?}");
        assert!(
            !r.detail.starts_with("cannot connect"),
            "{dialect:?} {what}: {r:?}"
        );
    }
}

#[tokio::test]
async fn what_the_statement_check_would_let_through_fails_at_the_server_with_the_tables_intact() {
    for dialect in BOTH {
        let db = ScratchDatabase::seeded(dialect).await.unwrap();
        for sql in writers(dialect) {
            db.execute(sql).await.unwrap();
        }
        // As the servers' administrators, who could do all of it outside the session.
        let admin = db.probe_target();
        for (what, sql) in hostile(dialect) {
            let results = SqlProbe
                .probe(
                    &admin,
                    &[unchecked("careless", sql)],
                    Duration::from_secs(5),
                )
                .await;
            if !changes_no_data(sql) {
                all_refused(dialect, &results, what, sql);
            }
            assert_intact(&db, &format!("{what}: {sql}")).await;
        }
        db.drop_database().await.unwrap();
    }
}

#[tokio::test]
async fn a_check_that_makes_the_session_writable_stops_every_later_check() {
    for dialect in BOTH {
        let db = ScratchDatabase::seeded(dialect).await.unwrap();
        let unlock = match dialect {
            Dialect::Postgres => "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            Dialect::Mysql => "SET SESSION TRANSACTION READ WRITE",
        };
        let checks = [
            unchecked("unlock", unlock),
            unchecked("drop", "DROP TABLE orders"),
            unchecked("delete", "DELETE FROM users"),
        ];
        let results = SqlProbe
            .probe(&db.probe_target(), &checks, Duration::from_secs(5))
            .await;
        assert!(
            results.iter().all(|r| !r.passed),
            "{dialect:?}: {results:#?}"
        );
        if dialect == Dialect::Mysql {
            // MariaDB lets a read-only transaction's session be made writable, and a DDL
            // statement would then commit: the probe sees it and runs nothing more.
            let stop = results.last().unwrap();
            assert!(
                stop.detail
                    .starts_with("drop and the checks after it were not run: the session is not read-only any more"),
                "{results:#?}"
            );
        }
        assert_intact(&db, "a session made writable").await;
        db.drop_database().await.unwrap();
    }
}

static NEXT_USER: AtomicU32 = AtomicU32::new(0);

/// The README's statements for the read-only check user on `dialect`, for `database`,
/// `user` and `password`: the fenced block that begins with `marker`.
pub(crate) fn readme_grants(
    dialect: Dialect,
    database: &str,
    user: &str,
    password: &str,
) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let marker = match dialect {
        Dialect::Postgres => "-- PostgreSQL: the read-only user for the checks",
        Dialect::Mysql => "-- MySQL and MariaDB: the read-only user for the checks",
    };
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has no block starting {marker:?}"));
    let block = &readme[start..];
    let block = &block[..block.find("```").expect("the block ends")];
    let text: String = block
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace("lifeboat_checks", user)
                .replace("DATABASE orders", &format!("DATABASE {database}"))
                .replace("orders.*", &format!("{database}.*"))
                .replace("choose-a-password", password)
        })
        .collect()
}

#[tokio::test]
async fn the_read_only_user_the_readme_recommends_passes_the_checks_and_cannot_write() {
    for dialect in BOTH {
        let db = ScratchDatabase::seeded(dialect).await.unwrap();
        for sql in writers(dialect) {
            db.execute(sql).await.unwrap();
        }
        let user = format!(
            "lbchecks_{}_{}",
            std::process::id(),
            NEXT_USER.fetch_add(1, Ordering::Relaxed)
        );
        let password = "not-a-secret-local-only";
        let grants = readme_grants(dialect, &db.name, &user, password);
        assert!(grants.len() >= 2, "{grants:?}");
        for g in &grants {
            // Run in the database, as its owner: the schema and table grants apply there.
            db.execute(g).await.unwrap_or_else(|e| panic!("{g}: {e}"));
        }

        // The plan's checks pass as that user.
        let plan = local_plan();
        let v = plan
            .resource("orders-db")
            .unwrap()
            .validation
            .clone()
            .unwrap();
        let as_user = db.probe_target_as(&user, password);
        let good = SqlProbe
            .probe(
                &as_user,
                &plan_checks(dialect, &v).unwrap(),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(good.len(), 7, "{dialect:?}: {good:#?}");
        assert!(good.iter().all(|r| r.passed), "{dialect:?}: {good:#?}");

        // Past the statement check, through Lifeboat's session: refused.
        for (what, sql) in hostile(dialect) {
            let results = SqlProbe
                .probe(
                    &as_user,
                    &[unchecked("careless", sql)],
                    Duration::from_secs(5),
                )
                .await;
            if !changes_no_data(sql) {
                all_refused(dialect, &results, what, sql);
            }
        }
        // And in a plain session as that user, which Lifeboat does not control.
        let mut writes = vec![
            "DELETE FROM orders",
            "UPDATE orders SET total_cents = 0",
            "INSERT INTO orders (id, user_id, total_cents) VALUES (9, 1, 1)",
            "DROP TABLE orders",
            "CREATE TABLE lb_new (id integer)",
            "TRUNCATE TABLE orders",
            "CALL lb_purge()",
            "SELECT lb_purge_fn()",
        ];
        if dialect == Dialect::Mysql {
            writes.push("SELECT id FROM orders INTO OUTFILE '/tmp/lifeboat-checks-outfile'");
        }
        for sql in writes {
            let done = db.execute_as(&user, password, sql).await;
            assert!(done.is_err(), "{dialect:?}: {user} could run {sql}");
        }
        assert_intact(&db, "the read-only user's attempts").await;

        db.drop_database().await.unwrap();
        let drop_user = match dialect {
            Dialect::Postgres => format!("DROP ROLE IF EXISTS {user}"),
            Dialect::Mysql => format!("DROP USER IF EXISTS '{user}'@'%'"),
        };
        db.admin(&drop_user).await.unwrap();
    }
}

static NEXT_FILE: AtomicU32 = AtomicU32::new(0);

/// An assertion taken the way a plan carries it to a database: loaded with the plan,
/// planned, and (only if both let it through) probed as the server's administrator.
/// `Err` with the load's error when it is refused; `Ok` with the results when it ran.
async fn through_lifeboat(db: &ScratchDatabase, sql: &str) -> Result<Vec<CheckResult>, String> {
    let plan =
        parse_plan(&plan_with_assertion(db.dialect, sql).to_string()).map_err(|e| e.to_string())?;
    let v = plan
        .resource("orders-db")
        .unwrap()
        .validation
        .clone()
        .unwrap();
    let checks = plan_checks(db.dialect, &v).map_err(|e| e.to_string())?;
    Ok(SqlProbe
        .probe(&db.probe_target(), &checks, Duration::from_secs(5))
        .await)
}

/// What an independent tester got past the statement check when it refused a list of
/// functions: a function called through `LATERAL` (or in a `WITH`, a subquery) and a name
/// spelled with `U&` escapes on PostgreSQL, where `dblink`'s own connection dropped a
/// table; a `--` followed by a non-ASCII blank on MariaDB, which the server reads as code
/// (a named lock taken, a file written). Each is refused at load now, nothing runs, and
/// the tables, sequences, large objects, other sessions and files are as they were.
#[tokio::test]
async fn calls_through_lateral_unicode_names_and_unicode_blanks_are_refused_at_load_with_the_database_intact()
 {
    // PostgreSQL, with dblink installed and a session of another application to kill.
    let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    db.execute("CREATE EXTENSION IF NOT EXISTS dblink")
        .await
        .unwrap();
    db.execute("CREATE SEQUENCE lb_seq").await.unwrap();
    let victim_name = format!("lbvictim_{}", std::process::id());
    let victim = {
        let (database, application) = (db.name.clone(), victim_name.clone());
        tokio::spawn(async move {
            use sqlx::Connection;
            let options = sqlx::postgres::PgConnectOptions::new()
                .host("127.0.0.1")
                .port(5432)
                .username("postgres")
                .database(&database)
                .application_name(&application);
            let mut c = sqlx::postgres::PgConnection::connect_with(&options)
                .await
                .unwrap();
            sqlx::query("SELECT pg_sleep(6)")
                .execute(&mut c)
                .await
                .map(|_| ())
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let conn = format!("host=127.0.0.1 user=postgres dbname={}", db.name);
    let postgres = [
        format!("SELECT dblink_exec('{conn}', 'DROP TABLE orders')"),
        format!(
            "SELECT count(*) FROM users, LATERAL dblink_exec('{conn}', 'DROP TABLE orders') AS x"
        ),
        format!(r#"SELECT U&"\0064blink_exec"('{conn}', 'DROP TABLE orders')"#),
        format!(
            "SELECT count(*) FROM users, LATERAL dblink('{conn}', 'DELETE FROM orders RETURNING 1') AS t(a int)"
        ),
        format!(
            "WITH x AS (SELECT * FROM LATERAL dblink_exec('{conn}', 'TRUNCATE users')) SELECT count(*) FROM x"
        ),
        format!(
            "SELECT count(*) FROM pg_stat_activity a, LATERAL pg_terminate_backend(a.pid) AS t WHERE a.application_name = '{victim_name}'"
        ),
        "SELECT count(*) FROM orders CROSS JOIN LATERAL set_config('default_transaction_read_only', 'off', false)".into(),
        r#"SELECT U&"set\005fconfig"('default_transaction_read_only', 'off', false)"#.into(),
        "SELECT count(*) FROM orders JOIN LATERAL lo_import('/etc/hostname') ON true".into(),
        "SELECT count(*) FROM orders, LATERAL pg_catalog.lo_export(1, '/tmp/lb-lo-export')".into(),
        "SELECT count(*) FROM orders, LATERAL nextval('lb_seq')".into(),
        "SELECT count(*) FROM orders, LATERAL pg_reload_conf()".into(),
        "SELECT count(*) FROM orders, LATERAL (SELECT pg_advisory_lock(1)) AS x".into(),
        "SELECT count(*) FROM orders o WHERE o.id IN (SELECT 1 FROM LATERAL pg_advisory_lock(1) AS l)".into(),
        "SELECT count(*) FROM pg_logical_slot_get_changes('lb_slot', NULL, NULL)".into(),
        "SELECT count(*) FROM pg_logical_slot_get_binary_changes('lb_slot', NULL, NULL)".into(),
        "SELECT pg_stat_statements_reset() IS NULL".into(),
    ];
    for sql in &postgres {
        let outcome = through_lifeboat(&db, sql).await;
        assert_intact(&db, sql).await;
        let err = outcome.expect_err(&format!("accepted and run: {sql}"));
        assert!(
            err.contains("assertion \"careless\" is not one read-only query"),
            "{sql}: {err}"
        );
    }
    assert_eq!(
        db.count("SELECT count(*) FROM lb_seq WHERE NOT is_called")
            .await
            .unwrap(),
        1,
        "the sequence was used"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_largeobject_metadata")
            .await
            .unwrap(),
        0,
        "a large object was imported"
    );
    let victim = victim.await.unwrap();
    assert!(victim.is_ok(), "the other session was ended: {victim:?}");
    db.drop_database().await.unwrap();

    // MariaDB: `--` and a blank the server does not take as one.
    let db = ScratchDatabase::seeded(Dialect::Mysql).await.unwrap();
    for blank in ['\u{a0}', '\u{2003}', '\u{3000}', '\u{85}'] {
        let file = format!(
            "/tmp/lb-check-outfile-{}-{}",
            std::process::id(),
            NEXT_FILE.fetch_add(1, Ordering::Relaxed)
        );
        for sql in [
            format!(
                "SELECT 1 --{blank}+ 10 * GET_LOCK('lbt', 0)\nFROM (SELECT 2 AS `{blank}`) AS t"
            ),
            format!("SELECT count(*) FROM orders --{blank}, GET_LOCK('lbt', 0)"),
            format!("SELECT id FROM orders AS `{blank}` WHERE 1 = 1 --{blank}.id FOR UPDATE"),
            format!(
                "SELECT 1 --{blank}.id INTO OUTFILE '{file}'\nFROM orders AS `{blank}` LIMIT 1"
            ),
        ] {
            let outcome = through_lifeboat(&db, &sql).await;
            assert_intact(&db, &sql).await;
            let err = outcome.expect_err(&format!("accepted and run: {sql:?}"));
            assert!(
                err.contains("assertion \"careless\" is not one read-only query")
                    && err.contains(&format!("U+{:04X}", u32::from(blank))),
                "{sql:?}: {err}"
            );
        }
        assert_eq!(
            db.count(&format!(
                "SELECT count(*) FROM DUAL WHERE LOAD_FILE('{file}') IS NOT NULL"
            ))
            .await
            .unwrap(),
            0,
            "{file} was written"
        );
    }
    for sql in [
        "SELECT count(*) FROM orders, LATERAL (SELECT GET_LOCK('lbt', 0)) AS t",
        "SELECT 1 /* /* */ , GET_LOCK('lbt', 0) -- */",
    ] {
        let outcome = through_lifeboat(&db, sql).await;
        assert_intact(&db, sql).await;
        outcome.expect_err(&format!("accepted and run: {sql}"));
    }
    db.drop_database().await.unwrap();
}

/// The result of the assertion `sql` (expecting `expect`), taken the way a plan carries
/// it: loaded, planned and probed as the server's administrator. `Err` with the load's
/// error when it is refused.
async fn assertion_result(
    db: &ScratchDatabase,
    sql: &str,
    expect: &str,
) -> Result<CheckResult, String> {
    let mut plan = plan_with_assertion(db.dialect, sql);
    plan["resources"][0]["validation"]["assertions"][0]["expect"] = json!(expect);
    let plan = parse_plan(&plan.to_string()).map_err(|e| e.to_string())?;
    let v = plan
        .resource("orders-db")
        .unwrap()
        .validation
        .clone()
        .unwrap();
    let checks = plan_checks(db.dialect, &v).map_err(|e| e.to_string())?;
    let results = SqlProbe
        .probe(&db.probe_target(), &checks, Duration::from_secs(5))
        .await;
    Ok(results
        .into_iter()
        .find(|r| r.name == "careless")
        .unwrap_or_else(|| panic!("no result for the assertion {sql}")))
}

/// Functions and types of the database's own that empty `orders` through dblink's own,
/// writable connection, which the check's read-only session does not stop: each
/// reachable from a check without a call the statement check could see.
fn purgers(db: &ScratchDatabase) -> Vec<String> {
    let purge = format!(
        "PERFORM dblink_exec('host=127.0.0.1 user=postgres dbname={}', 'DELETE FROM orders')",
        db.name
    );
    vec![
        "CREATE EXTENSION IF NOT EXISTS dblink".into(),
        // Called by `o.lb_purge` when orders has no column lb_purge.
        format!(
            "CREATE FUNCTION lb_purge(orders) RETURNS integer LANGUAGE plpgsql AS $f$ BEGIN {purge}; RETURN 1; END $f$"
        ),
        // Polymorphic and record-taking ones take any row.
        format!(
            "CREATE FUNCTION lb_purge_any(anyelement) RETURNS integer LANGUAGE plpgsql AS $f$ BEGIN {purge}; RETURN 1; END $f$"
        ),
        format!(
            "CREATE FUNCTION lb_purge_record(record, keep integer DEFAULT 0) RETURNS integer LANGUAGE plpgsql AS $f$ BEGIN {purge}; RETURN 1; END $f$"
        ),
        // A domain whose constraint purges: checked in a cast to it, or when a row is
        // converted to it (`o.lb_checked_row`).
        format!(
            "CREATE FUNCTION lb_purge_int(integer) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN {purge}; RETURN true; END $f$"
        ),
        "CREATE DOMAIN lb_checked AS integer CHECK (lb_purge_int(VALUE))".into(),
        "CREATE DOMAIN lb_checked_row AS orders CHECK (lb_purge_int((VALUE).id))".into(),
        // A namesake of a listed function that takes the call for a row.
        format!(
            "CREATE FUNCTION public.lower(orders) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN {purge}; RETURN 'x'; END $f$"
        ),
    ]
}

/// PostgreSQL's attribute notation: `o.f` calls `f(o)` when `orders` has no column `f`,
/// a call the statement check never sees; a cast runs a domain's constraints; a listed
/// function's namesake takes the call. Here each purges `orders` through dblink, past
/// the read-only session (the control shows it does, unchecked). Each check is refused
/// at the server before it runs, naming the name and the fix, and `orders` is intact;
/// field selection from an expression is refused at load; plain columns still work.
#[tokio::test]
async fn attribute_notation_casts_and_namesakes_that_reach_the_databases_own_code_are_refused_before_they_run()
 {
    // The control: sent without the lookup, the notation calls the function, and the
    // read-only session does not stop what dblink's connection does.
    let control = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    for sql in purgers(&control) {
        control.execute(&sql).await.unwrap();
    }
    let results = SqlProbe
        .probe(
            &control.probe_target(),
            &[unchecked(
                "careless",
                "SELECT count(*) FROM orders o WHERE o.lb_purge IS NOT NULL",
            )],
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        control.count("SELECT count(*) FROM orders").await.unwrap(),
        0,
        "the control did not purge: {results:?}"
    );
    control.drop_database().await.unwrap();

    let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    for sql in purgers(&db) {
        db.execute(&sql).await.unwrap();
    }
    for (sql, name) in [
        (
            "SELECT count(*) FROM orders o WHERE o.lb_purge IS NOT NULL",
            "lb_purge",
        ),
        ("SELECT max(orders.LB_PURGE) FROM orders", "lb_purge"),
        (
            "SELECT count(*) FROM public.orders WHERE public.orders.lb_purge = 1",
            "lb_purge",
        ),
        (
            r#"SELECT count(*) FROM orders o ORDER BY o."lb_purge_any""#,
            "lb_purge_any",
        ),
        (
            "SELECT count(*) FROM orders o WHERE o.lb_purge_record > 0",
            "lb_purge_record",
        ),
        (
            "SELECT count(*) FROM orders o, users u WHERE u.id = o.user_id AND u.lb_purge_any = 1",
            "lb_purge_any",
        ),
        (
            "SELECT count(*) FROM orders o WHERE o.lb_checked_row IS NULL",
            "lb_checked_row",
        ),
        (
            "SELECT count(*) FROM orders WHERE total_cents::lb_checked > 0",
            "lb_checked",
        ),
        (
            "SELECT count(*) FROM orders WHERE CAST(id AS public.lb_checked) > 0",
            "lb_checked",
        ),
        (
            "SELECT count(*) FROM orders o WHERE lower(o) IS NOT NULL",
            "lower",
        ),
    ] {
        let r = assertion_result(&db, sql, "0")
            .await
            .unwrap_or_else(|e| panic!("{sql}: refused at load: {e}"));
        assert_intact(&db, sql).await;
        assert!(!r.passed, "{sql}: {r:?}");
        assert!(
            r.detail.starts_with("careless: not run: ")
                && r.detail.contains(&format!("public.{name}"))
                && r.detail.ends_with("(a retry will not help)"),
            "{sql}: {}",
            r.detail
        );
    }

    // Field selection from an expression: refused at load, nothing sent.
    for sql in [
        "SELECT count(*) FROM orders o WHERE (o).lb_purge IS NOT NULL",
        "SELECT (ROW(1, 2)).lb_purge_record",
        "SELECT count(*) FROM orders o WHERE (o).* IS NOT NULL",
    ] {
        let err = assertion_result(&db, sql, "0")
            .await
            .expect_err(&format!("accepted: {sql}"));
        assert!(
            err.contains("assertion \"careless\" is not one read-only query"),
            "{sql}: {err}"
        );
        assert_intact(&db, sql).await;
    }

    // Columns named through their table, casts to built-in types and listed calls of
    // built-in functions without a namesake (lower has one now) still run, in the
    // same database, as the same user.
    for (sql, expect) in [
        ("SELECT sum(o.total_cents) FROM orders o", "6860"),
        (
            "SELECT count(u.email) FROM users u JOIN orders o ON o.user_id = u.id WHERE upper(u.email) LIKE '%@EXAMPLE.COM'",
            "4",
        ),
        ("SELECT max(public.orders.id)::text FROM public.orders", "4"),
        (
            "SELECT count(*) FROM orders WHERE total_cents::bigint > 1000",
            "2",
        ),
    ] {
        let r = assertion_result(&db, sql, expect).await.unwrap();
        assert!(r.passed, "{sql}: {r:?}");
    }
    assert_intact(&db, "the plain checks").await;
    db.drop_database().await.unwrap();
}

/// MySQL and MariaDB have no attribute notation: `o.f` is only a column there, even with
/// a stored function `f` that writes; the check fails at the server as an unknown
/// column, and the tables are intact.
#[tokio::test]
async fn on_mariadb_a_compound_identifier_is_only_a_column() {
    let db = ScratchDatabase::seeded(Dialect::Mysql).await.unwrap();
    for sql in writers(Dialect::Mysql) {
        db.execute(sql).await.unwrap();
    }
    for sql in [
        "SELECT count(*) FROM orders o WHERE o.lb_purge_fn IS NOT NULL",
        "SELECT max(orders.lb_purge_fn) FROM orders",
    ] {
        let r = assertion_result(&db, sql, "0").await.unwrap();
        assert_intact(&db, sql).await;
        assert!(!r.passed, "{sql}: {r:?}");
        assert!(
            r.detail.contains("Unknown column") && !r.detail.contains("not run"),
            "{sql}: {}",
            r.detail
        );
    }
    let r = assertion_result(
        &db,
        "SELECT CAST(sum(o.total_cents) AS CHAR) FROM orders o",
        "6860",
    )
    .await
    .unwrap();
    assert!(r.passed, "{r:?}");
    db.drop_database().await.unwrap();
}

/// MySQL's name resolution reads `max (id)`, with a blank before the parenthesis, as a
/// call of a stored function `max` of the database's own, not of MAX (MariaDB 10.11 does
/// so in a plain session and in `PREPARE`; through the probe's binary-protocol prepared
/// statement it answered with MAX, measured, which the statement check does not rely
/// on). Refused at load, nothing sent; `max(id)` is MAX.
#[tokio::test]
async fn on_mariadb_a_listed_call_with_a_blank_before_its_parenthesis_is_refused_at_load() {
    let db = ScratchDatabase::seeded(Dialect::Mysql).await.unwrap();
    db.execute("CREATE FUNCTION `max`(x INT) RETURNS INT DETERMINISTIC BEGIN RETURN 7; END")
        .await
        .unwrap();
    for sql in [
        "SELECT max (id) FROM orders",
        "SELECT count(*) FROM orders WHERE max /* */ (id) = 7",
    ] {
        let err = assertion_result(&db, sql, "4")
            .await
            .expect_err("a blank before the parenthesis was accepted");
        assert!(
            err.contains("is not one read-only query") && err.contains("count(*), not count (*)"),
            "{err}"
        );
    }
    let r = assertion_result(&db, "SELECT max(id) FROM orders", "4")
        .await
        .unwrap();
    assert!(r.passed, "{r:?}");
    assert_intact(&db, "the refusals").await;
    db.drop_database().await.unwrap();
}
