//! Restore validation with its real adapters: RDS and Secrets Manager in the emulator,
//! the SQL checks against the real local PostgreSQL and MariaDB servers (each test in a
//! database of its own, created and dropped).

use crate::support::{invocation, local_plan, notifier, reports, state_store};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use harness::databases::{ScratchDatabase, put_credentials_secret};
use harness::{Account, LocalAws, World, create_world};
use lifeboat::aws::{
    AwsValidation, DynamoStateStore, LOCAL_DATABASE_URLS_ENV, S3Reports, SnsNotifier, SqlProbe,
};
use lifeboat::backup::BackupRecord;
use lifeboat::dr::run::SystemClock;
use lifeboat::error::{AwsError, AwsFailure};
use lifeboat::plan::{
    CREATED_TAG, PLAN_TAG, Plan, ProtectedResource, RESOURCE_TAG, VALIDATED_TAG, parse_plan,
};
use lifeboat::state::Outcome::Intended;
use lifeboat::state::StateStore;
use lifeboat::validation::checks::{
    CheckKind, CheckProgress, CheckResult, Dialect, Expect, PlannedCheck, plan_checks,
};
use lifeboat::validation::run::{
    CheckBudget, DatabaseProbe, Leftover, ValidationPort, ValidationReply, ValidationRunner,
};
use lifeboat::validation::{PURPOSE_TAG, PURPOSE_VALIDATION, Run, TempFacts};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const SECRET: &str = "lifeboat-local/orders-db";

struct Fixture {
    account: Account,
    plan: Plan,
    world: World,
    state: DynamoStateStore,
    notifier: SnsNotifier,
    reports: S3Reports,
    snapshot: String,
}

impl Fixture {
    /// A fresh account with the local world, a Lifeboat snapshot of orders-db in the DR
    /// region, and the credentials secret.
    async fn new() -> Self {
        let account = LocalAws::from_env().fresh_account();
        let plan = harness::plan_in_account(&local_plan(), &account);
        let world = create_world(&account, &plan).await.expect("world");
        let snapshot = format!("lifeboat-{}-orders-db-20261125t0900z", plan.name);
        let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
        // The DR copy the snapshot function would have made (of the DR replica here: the
        // emulator restores any snapshot the same way).
        world
            .clients
            .dr
            .rds
            .create_db_snapshot()
            .db_instance_identifier("orders-db-dr")
            .db_snapshot_identifier(&snapshot)
            .tags(tag(PLAN_TAG, &plan.name))
            .tags(tag(RESOURCE_TAG, "orders-db"))
            .tags(tag(CREATED_TAG, "2026-11-25T09:00:00Z"))
            .send()
            .await
            .expect("DR snapshot");
        account.settle().await.unwrap();
        put_credentials_secret(&world.clients.home.config, SECRET, "postgres", "")
            .await
            .unwrap();
        Fixture {
            state: state_store(&world),
            notifier: notifier(&world),
            reports: reports(&world),
            account,
            plan,
            world,
            snapshot,
        }
    }

    fn adapter(&self, local_url: &str) -> AwsValidation {
        let mapping = format!("orders-db={local_url}");
        let lookup = move |k: &str| (k == LOCAL_DATABASE_URLS_ENV).then(|| mapping.clone());
        AwsValidation::new(
            &self.plan,
            &self.world.clients,
            &self.account.settings(),
            &lookup,
        )
        .expect("adapter")
    }

    fn runner<'a>(&'a self, port: &'a dyn ValidationPort) -> ValidationRunner<'a> {
        ValidationRunner {
            plan: &self.plan,
            port,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &SystemClock,
        }
    }

    /// Run a validation to its end: the schedule, then ticks with the emulator's clock
    /// moved past each transition (no sleeping), as EventBridge would tick it.
    async fn validate(&self, port: &dyn ValidationPort) -> ValidationReply {
        let v = self.runner(port);
        let mut reply = v.handle(&schedule(), &invocation("sched-1")).await.unwrap();
        for i in 0..6 {
            if !reply.resources[0].finished.is_empty() {
                break;
            }
            self.account.settle().await.unwrap();
            reply = v
                .handle(
                    &json!({"action": "tick"}),
                    &invocation(&format!("tick-{i}")),
                )
                .await
                .unwrap();
        }
        reply
    }

    async fn validation_instances(&self) -> Vec<(String, String)> {
        let out = self
            .world
            .clients
            .dr
            .rds
            .describe_db_instances()
            .send()
            .await
            .unwrap();
        out.db_instances()
            .iter()
            .filter(|d| {
                d.db_instance_identifier()
                    .is_some_and(|i| i.starts_with("lbval-"))
            })
            .map(|d| {
                (
                    d.db_instance_identifier().unwrap_or_default().to_string(),
                    d.db_instance_status().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    async fn snapshot_tags(&self) -> Vec<(String, String)> {
        let out = self
            .world
            .clients
            .dr
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(&self.snapshot)
            .send()
            .await
            .unwrap();
        out.db_snapshots()[0]
            .tag_list()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

fn schedule() -> Value {
    serde_json::from_str(include_str!("../../events/validation-schedule.json")).unwrap()
}

fn finished(reply: &ValidationReply) -> &Run {
    reply.resources[0]
        .finished
        .first()
        .unwrap_or_else(|| panic!("the run did not finish: {reply:#?}"))
}

#[tokio::test]
async fn a_good_postgres_restore_passes_every_check_is_tagged_reported_and_torn_down() {
    let f = Fixture::new().await;
    let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    let port = f.adapter(&db.url());
    let reply = f.validate(&port).await;
    let run = finished(&reply);
    assert!(run.passed(), "{:#?}", run.results);
    let names: Vec<(&str, bool)> = run
        .results
        .iter()
        .map(|r| (r.name.as_str(), r.passed))
        .collect();
    assert_eq!(
        names,
        [
            ("table count", true),
            ("table users", true),
            ("table users", true),
            ("table orders", true),
            ("table orders", true),
            ("foreign key orders.user_id -> users.id", true),
            ("no negative totals", true),
        ]
    );
    assert_eq!(run.snapshot.id, f.snapshot);
    assert!(run.restore_seconds().is_some());
    // Deleted without a final snapshot (the emulator shows it deleting, then gone).
    for (id, status) in f.validation_instances().await {
        assert_eq!(status, "deleting", "{id} is still up");
    }
    let tags = f.snapshot_tags().await;
    assert!(tags.iter().any(|(k, _)| k == VALIDATED_TAG), "{tags:?}");
    let last = reply.resources[0].last.clone().unwrap();
    let report = last.report.expect("a report");
    assert!(report.starts_with("s3://"), "{report}");
    let timeline = f.state.timeline(&f.plan.name, None).await.unwrap();
    assert!(timeline.iter().any(|e| e.action == "validation.record"));
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_fails_cleanly_and_the_instance_is_still_deleted() {
    let f = Fixture::new().await;
    // Nothing listens on port 1.
    let port = f.adapter("postgres://postgres@127.0.0.1:1/orders");
    let reply = f.validate(&port).await;
    let run = finished(&reply);
    assert!(!run.passed());
    assert_eq!(run.results.len(), 1);
    assert_eq!(run.results[0].kind, CheckKind::Connect);
    assert!(
        run.results[0]
            .detail
            .contains("cannot connect to 127.0.0.1:1"),
        "{}",
        run.results[0].detail
    );
    let instances = f.validation_instances().await;
    assert!(!instances.is_empty());
    assert!(
        instances.iter().all(|(_, s)| s == "deleting"),
        "{instances:?}"
    );
    assert!(
        !f.snapshot_tags()
            .await
            .iter()
            .any(|(k, _)| k == VALIDATED_TAG)
    );
    let failure = reply.resources[0].last.clone().unwrap().failure.unwrap();
    assert!(failure.contains("cannot connect"), "{failure}");
}

#[tokio::test]
async fn a_duplicate_schedule_does_not_start_a_second_restore() {
    let f = Fixture::new().await;
    let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    let port = f.adapter(&db.url());
    let v = f.runner(&port);
    let first = v.handle(&schedule(), &invocation("evt-1")).await.unwrap();
    let again = v
        .handle(&schedule(), &invocation("evt-1-redelivered"))
        .await
        .unwrap();
    let tick = v
        .handle(&json!({"action": "tick"}), &invocation("tick"))
        .await
        .unwrap();
    assert_eq!(
        first.resources[0].run.as_ref().unwrap().id,
        again.resources[0].run.as_ref().unwrap().id
    );
    assert!(tick.resources[0].run.is_some());
    assert_eq!(f.validation_instances().await.len(), 1, "one restore");
    db.drop_database().await.unwrap();
}

/// The real adapter, but the answer to the restore call is lost once (the invocation
/// "crashes" after AWS accepted it).
struct LoseRestoreAnswer<'a> {
    inner: &'a AwsValidation,
    lost: AtomicBool,
}

#[async_trait]
impl ValidationPort for LoseRestoreAnswer<'_> {
    async fn list_snapshots(&self, region: &str) -> Result<Vec<BackupRecord>, AwsError> {
        self.inner.list_snapshots(region).await
    }
    async fn read_temp(&self, run: &Run) -> TempFacts {
        self.inner.read_temp(run).await
    }
    async fn restore(&self, plan: &Plan, run: &Run) -> Result<(), AwsError> {
        self.inner.restore(plan, run).await?;
        if !self.lost.swap(true, Ordering::SeqCst) {
            return Err(AwsError {
                service: "rds",
                operation: "RestoreDBInstanceFromDBSnapshot",
                resource: run.instance.clone(),
                failure: AwsFailure::Unreachable,
                code: None,
                message: "connection reset after the request was sent".into(),
            });
        }
        Ok(())
    }
    async fn create_instance(&self, plan: &Plan, run: &Run) -> Result<(), AwsError> {
        self.inner.create_instance(plan, run).await
    }
    async fn delete_instance(&self, run: &Run) -> Result<(), AwsError> {
        self.inner.delete_instance(run).await
    }
    async fn delete_cluster(&self, run: &Run) -> Result<(), AwsError> {
        self.inner.delete_cluster(run).await
    }
    async fn run_checks(
        &self,
        plan: &Plan,
        r: &ProtectedResource,
        run: &Run,
        from: CheckProgress,
        window: Duration,
    ) -> CheckProgress {
        self.inner.run_checks(plan, r, run, from, window).await
    }
    async fn tag_validated(&self, run: &Run, at: DateTime<Utc>) -> Result<(), AwsError> {
        self.inner.tag_validated(run, at).await
    }
    async fn leftovers(
        &self,
        plan: &Plan,
        before: DateTime<Utc>,
        keep: &[String],
    ) -> Result<Vec<Leftover>, AwsError> {
        self.inner.leftovers(plan, before, keep).await
    }
    async fn delete_leftover(&self, leftover: &Leftover) -> Result<(), AwsError> {
        self.inner.delete_leftover(leftover).await
    }
}

#[tokio::test]
async fn a_crash_after_the_restore_resumes_at_the_wait_and_restores_once() {
    let f = Fixture::new().await;
    let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    let real = f.adapter(&db.url());
    let port = LoseRestoreAnswer {
        inner: &real,
        lost: AtomicBool::new(false),
    };
    let reply = f.validate(&port).await;
    let run = finished(&reply);
    assert!(run.passed(), "{:#?}", run.results);
    assert_eq!(f.validation_instances().await.len(), 1, "restored once");
    let steps: Vec<String> = f
        .state
        .timeline(&f.plan.name, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "validation.restore" && e.outcome != Intended)
        .map(|e| e.outcome.to_string())
        .collect();
    assert_eq!(
        steps,
        ["failed"],
        "the lost answer is recorded; no second restore"
    );
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_sweep_deletes_validation_instances_a_crash_left_behind() {
    let f = Fixture::new().await;
    let rds = &f.world.clients.dr.rds;
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    for (id, plan) in [
        ("lbval-orders-db-2611240100", f.plan.name.as_str()),
        ("lbval-other-2611240100", "another-plan"),
    ] {
        rds.restore_db_instance_from_db_snapshot()
            .db_instance_identifier(id)
            .db_snapshot_identifier(&f.snapshot)
            .tags(tag(PLAN_TAG, plan))
            .tags(tag(PURPOSE_TAG, PURPOSE_VALIDATION))
            .tags(tag(CREATED_TAG, "2026-11-24T01:00:00Z"))
            .send()
            .await
            .unwrap();
    }
    f.account.settle().await.unwrap();
    // A run that cannot start (no secret needed: the sweep runs whatever the runs do).
    let port = f.adapter("postgres://postgres@127.0.0.1:1/orders");
    let reply = f
        .runner(&port)
        .handle(&schedule(), &invocation("s"))
        .await
        .unwrap();
    assert_eq!(reply.swept, ["lbval-orders-db-2611240100"]);
    let instances = f.validation_instances().await;
    assert!(
        instances.contains(&("lbval-other-2611240100".into(), "available".into())),
        "another plan's is left alone: {instances:?}"
    );
}

/// The checks of the local plan's orders-db, probed directly against both engines.
async fn probe(db: &ScratchDatabase) -> Vec<CheckResult> {
    let plan = local_plan();
    let v = plan
        .resource("orders-db")
        .unwrap()
        .validation
        .clone()
        .unwrap();
    let checks = plan_checks(db.dialect, &v).unwrap();
    SqlProbe
        .probe(&db.probe_target(), &checks, Duration::from_secs(5))
        .await
}

fn failed(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.detail.clone())
        .collect()
}

#[tokio::test]
async fn both_engines_pass_a_good_database_and_fail_each_breakage_saying_why() {
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        let db = ScratchDatabase::seeded(dialect).await.unwrap();
        let good = probe(&db).await;
        assert_eq!(good.len(), 7, "{dialect:?}: {good:#?}");
        assert!(failed(&good).is_empty(), "{dialect:?}: {good:#?}");

        // Orphaned orders: their user is gone.
        db.execute("DELETE FROM users WHERE id = 1").await.unwrap();
        let orphans = failed(&probe(&db).await);
        assert_eq!(
            orphans,
            ["foreign key orders.user_id -> users.id: 2 orphaned rows"],
            "{dialect:?}"
        );

        // A false assertion: expected vs actual.
        db.execute("UPDATE orders SET total_cents = -5 WHERE id = 3")
            .await
            .unwrap();
        let assertion = failed(&probe(&db).await);
        assert!(
            assertion.contains(
                &"assertion \"no negative totals\": expected \"0\", got \"1\"".to_string()
            ),
            "{dialect:?}: {assertion:?}"
        );

        // An emptied critical table, named.
        db.execute("DELETE FROM orders").await.unwrap();
        let empty = failed(&probe(&db).await);
        assert!(
            empty.contains(&"table orders is empty (1 rows required)".to_string()),
            "{dialect:?}: {empty:?}"
        );

        // A missing table is named and not counted.
        db.execute("DROP TABLE orders").await.unwrap();
        let results = probe(&db).await;
        let missing = failed(&results);
        assert!(
            missing
                .iter()
                .any(|d| d == "table orders: the table does not exist in the restored database"),
            "{dialect:?}: {missing:?}"
        );
        assert!(
            missing
                .iter()
                .any(|d| d.starts_with("the schema holds 1 tables")),
            "{dialect:?}: {missing:?}"
        );
        db.drop_database().await.unwrap();
    }
}

#[test]
fn hostile_identifiers_in_the_plan_are_rejected_at_load() {
    for (field, value, path) in [
        (
            "tables",
            json!([{"name": "users; DROP TABLE users"}]),
            "validation.tables[0].name",
        ),
        (
            "foreign_keys",
            json!([{"from": "orders.user_id", "to": "users.\"id\""}]),
            "validation.foreign_keys[0].to",
        ),
        ("database", json!("orders`; --"), "validation.database"),
    ] {
        let mut plan: Value =
            serde_json::from_str(include_str!("../../infra/plans/local.json")).unwrap();
        plan["resources"][0]["validation"][field] = value;
        let err = parse_plan(&plan.to_string()).unwrap_err().to_string();
        assert!(err.contains(&format!("`resources[0].{path}`")), "{err}");
    }
}

/// Results without their timings, which differ from run to run.
fn untimed(results: Vec<CheckResult>) -> Vec<CheckResult> {
    results
        .into_iter()
        .map(|r| CheckResult { millis: 0, ..r })
        .collect()
}

#[tokio::test]
async fn checks_resumed_part_way_run_only_those_left_and_end_as_one_run_would() {
    let plan = local_plan();
    let v = plan
        .resource("orders-db")
        .unwrap()
        .validation
        .clone()
        .unwrap();
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        let db = ScratchDatabase::seeded(dialect).await.unwrap();
        // A missing table: a check gated on it is skipped, also across the resumption.
        db.execute("DROP TABLE orders").await.unwrap();
        let checks = plan_checks(dialect, &v).unwrap();
        let target = db.probe_target();
        let budget = || CheckBudget::unhurried(Duration::from_secs(5));
        let whole = SqlProbe
            .probe_from(&target, &checks, CheckProgress::default(), budget())
            .await;
        assert!(whole.finished, "{dialect:?}: {whole:#?}");
        assert_eq!(whole.taken.len(), checks.len());
        for cut in 0..checks.len() {
            let mut part = whole.clone();
            part.taken.truncate(cut);
            part.finished = false;
            let resumed = SqlProbe.probe_from(&target, &checks, part, budget()).await;
            assert!(resumed.finished, "{dialect:?} cut at {cut}");
            assert_eq!(
                untimed(resumed.results()),
                untimed(whole.results()),
                "{dialect:?} cut at {cut}"
            );
        }
        db.drop_database().await.unwrap();
    }
}

#[tokio::test]
async fn checks_start_only_while_the_action_has_time_for_one_and_go_on_in_the_next() {
    let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    let target = db.probe_target();
    let statement = Duration::from_secs(2);
    // Each takes 1.5 s and may take its limit (2 s): one starts only with 4 s left.
    let slow: Vec<PlannedCheck> = (0..9)
        .map(|i| PlannedCheck {
            name: format!("slow {i}"),
            kind: CheckKind::Assertion,
            sql: "SELECT count(*) FROM (SELECT pg_sleep(1.5)) AS s".into(),
            params: vec![],
            expect: Expect::AtLeast(1),
            gate: None,
            names: Default::default(),
        })
        .collect();
    // Room for the connection and one check, and 0.5 s more.
    let window = lifeboat::budget::DATABASE_CONNECT_TIMEOUT
        + statement
        + lifeboat::budget::CHECK_MARGIN
        + Duration::from_millis(500);
    let first = SqlProbe
        .probe_from(
            &target,
            &slow,
            CheckProgress::default(),
            CheckBudget::within(statement, window),
        )
        .await;
    assert!(!first.finished, "{first:#?}");
    assert!(first.ended.is_none(), "{first:#?}");
    let ran = first.taken.len();
    // 14.5 s of room, 4 s needed to start one, 1.5 s each: six or seven, never all.
    assert!((5..=7).contains(&ran), "{ran} checks ran: {first:#?}");
    assert!(first.results().iter().all(|r| r.passed), "{first:#?}");
    // Too little time to connect: nothing runs, nothing is lost.
    let none = SqlProbe
        .probe_from(
            &target,
            &slow,
            first.clone(),
            CheckBudget::within(statement, Duration::from_secs(5)),
        )
        .await;
    assert_eq!(none, first);
    let second = SqlProbe
        .probe_from(
            &target,
            &slow,
            first,
            CheckBudget::within(statement, window),
        )
        .await;
    assert!(second.finished, "{second:#?}");
    let names: Vec<String> = second.results().into_iter().map(|r| r.name).collect();
    let all: Vec<String> = (0..9).map(|i| format!("slow {i}")).collect();
    assert_eq!(names, all);
    db.drop_database().await.unwrap();
}
