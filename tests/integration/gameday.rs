//! A signal-only game day with its real adapter against the emulator: the health alarm
//! set to ALARM and back (CloudWatch), the real failover (RDS, Route 53), the DR writer
//! verified from RDS and Route 53 and the canary row written to and read back from the
//! real local PostgreSQL (mapped to the plan's database, since the emulator holds no
//! data), the incident acknowledged and the real failback started, a stop condition
//! firing mid-failback, and the report in S3, read back as the next game day's history.
//!
//! The failback's start goes to the failback executor in-process: the emulator's Lambda
//! runs functions only in Docker, which these machines do not use.

use crate::support::{
    invocation, notifier, put_replica_lag, reports, set_alarm, state_store, world,
};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::StateValue;
use chrono::Utc;
use harness::databases::{ScratchDatabase, put_credentials_secret};
use harness::{Account, World};
use lifeboat::aws::{
    AwsFailback, AwsFailover, AwsGameDay, CanaryError, DynamoStateStore, LOCAL_DATABASE_URLS_ENV,
    S3Reports, SnsNotifier, write_canary,
};
use lifeboat::dr::DrState;
use lifeboat::dr::run::{DrDocument, SystemClock, dr_key};
use lifeboat::error::AwsError;
use lifeboat::failback::run::FailbackRun;
use lifeboat::failover::run::FailoverRun;
use lifeboat::gameday::run::{
    GameDayInput, GameDayPort, GameDayReply, GameDayRun, GameDayRunError, game_day_key,
    parse_command,
};
use lifeboat::gameday::verify::canary_sql;
use lifeboat::gameday::{
    CanaryResult, GameDayOutcome, GameDayReport, GameDayState, Injection, Phase, Verification,
};
use lifeboat::plan::{Canary, Plan};
use lifeboat::state;
use lifeboat::validation::checks::Dialect;
use serde_json::{Value, json};

const SECRET: &str = "lifeboat-local/orders-db";
const HEALTH: &str = "orders-db-primary-unhealthy";
const STOP: &str = "orders-checkout-errors";

/// The AWS adapter, with the failback's start handed to the failback executor itself.
struct Port<'a> {
    aws: &'a AwsGameDay,
    failback: FailbackRun<'a>,
}

#[async_trait]
impl GameDayPort for Port<'_> {
    async fn stop_alarms_firing(&self, plan: &Plan) -> Vec<String> {
        self.aws.stop_alarms_firing(plan).await
    }
    async fn protected(&self, plan: &Plan) -> Result<bool, AwsError> {
        self.aws.protected(plan).await
    }
    async fn primary_not_ready(&self, plan: &Plan) -> Vec<String> {
        self.aws.primary_not_ready(plan).await
    }
    async fn history(&self, plan: &Plan, limit: usize) -> Result<Vec<GameDayReport>, AwsError> {
        self.aws.history(plan, limit).await
    }
    async fn inject(
        &self,
        plan: &Plan,
        game_day: &str,
        injection: &Injection,
    ) -> Result<Option<String>, AwsError> {
        self.aws.inject(plan, game_day, injection).await
    }
    async fn stop_injection(
        &self,
        plan: &Plan,
        game_day: &str,
        injection: &Injection,
        experiment_id: Option<&str>,
    ) -> Result<(), AwsError> {
        self.aws
            .stop_injection(plan, game_day, injection, experiment_id)
            .await
    }
    async fn verify(&self, plan: &Plan, canary: Option<&Canary>, row: &str) -> Verification {
        self.aws.verify(plan, canary, row).await
    }
    async fn start_failback(&self, _plan: &Plan, game_day: &str) -> Result<bool, AwsError> {
        self.failback
            .handle(&json!({"action": "start"}), &invocation(game_day))
            .await
            .map(|_| true)
            .map_err(|e| AwsError::bad_request("lambda", "Invoke", "failback", e.to_string()))
    }
}

struct Fixture {
    account: Account,
    plan: Plan,
    world: World,
    state: DynamoStateStore,
    notifier: SnsNotifier,
    reports: S3Reports,
    aws: AwsGameDay,
    failover: AwsFailover,
    failback: AwsFailback,
    db: ScratchDatabase,
}

impl Fixture {
    /// The local world, with a canary table in a scratch database mapped to `orders-db`.
    async fn new() -> Self {
        let (account, mut plan, world) = world().await;
        plan.game_days.canary = Some(Canary {
            resource: "orders-db".into(),
            table: "lifeboat_canary".into(),
            credentials_secret: None,
        });
        put_credentials_secret(&world.clients.home.config, SECRET, "postgres", "")
            .await
            .unwrap();
        let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
        db.execute(
            "CREATE TABLE lifeboat_canary (id text PRIMARY KEY, written_at timestamptz NOT NULL)",
        )
        .await
        .unwrap();
        let mapping = format!("orders-db={}", db.url());
        let lookup = move |k: &str| (k == LOCAL_DATABASE_URLS_ENV).then(|| mapping.clone());
        let settings = account.settings();
        Fixture {
            aws: AwsGameDay::new(
                &plan,
                &world.clients,
                &settings,
                &world.control.report_bucket,
                &lookup,
            )
            .await
            .expect("adapter"),
            failover: AwsFailover::new(&plan, &world.clients, &settings).await,
            failback: AwsFailback::new(&plan, &world.clients, &settings).await,
            state: state_store(&world),
            notifier: notifier(&world),
            reports: reports(&world),
            account,
            plan,
            world,
            db,
        }
    }

    fn failover(&self) -> FailoverRun<'_> {
        FailoverRun {
            plan: &self.plan,
            port: &self.failover,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &SystemClock,
        }
    }

    fn failback(&self) -> FailbackRun<'_> {
        FailbackRun {
            plan: &self.plan,
            port: &self.failback,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &SystemClock,
        }
    }

    async fn game_day(
        &self,
        input: GameDayInput,
        id: &str,
    ) -> Result<GameDayReply, GameDayRunError> {
        let port = Port {
            aws: &self.aws,
            failback: self.failback(),
        };
        let failover = self.failover();
        GameDayRun {
            plan: &self.plan,
            port: &port,
            dr: &failover,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &SystemClock,
        }
        .handle(input, &invocation(id))
        .await
    }

    /// What the failover function does with any other event: the failover's own
    /// handling, then the game day's observation.
    async fn failover_event(&self, payload: &Value, id: &str) -> GameDayReply {
        self.failover()
            .handle(payload, &invocation(id))
            .await
            .unwrap();
        self.game_day(GameDayInput::DrObserved, id).await.unwrap()
    }

    async fn alarm_state(&self, name: &str) -> String {
        let out = self
            .world
            .clients
            .dr
            .cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .unwrap();
        out.metric_alarms()[0]
            .state_value()
            .unwrap()
            .as_str()
            .to_string()
    }

    async fn set_alarm(&self, name: &str, value: StateValue) {
        set_alarm(&self.world.clients.dr.cloudwatch, name, value).await;
    }

    /// A current `ReplicaLag` datapoint for the DR replica.
    async fn lag(&self, lag: f64) {
        put_replica_lag(
            &self.world.clients.dr.cloudwatch,
            "orders-db-dr",
            &[(0, lag)],
        )
        .await;
    }

    async fn dr_state(&self) -> DrState {
        state::load::<DrDocument>(&self.state, &dr_key(&self.plan))
            .await
            .unwrap()
            .map(|d| d.value.state)
            .unwrap_or_default()
    }

    async fn stored(&self) -> GameDayState {
        state::load::<GameDayState>(&self.state, &game_day_key(&self.plan))
            .await
            .unwrap()
            .map(|v| v.value)
            .unwrap_or_default()
    }
}

fn start(mode: &str) -> GameDayInput {
    parse_command(&json!({"action": "game-day", "mode": mode, "who": "integration test"}))
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_signal_only_game_day_fails_over_verifies_fails_back_and_stops_on_its_stop_condition() {
    let f = Fixture::new().await;
    assert_eq!(f.alarm_state(HEALTH).await, "OK");

    // The injection: the health alarm, set to ALARM in CloudWatch.
    let reply = f.game_day(start("signal_only"), "gd-1").await.unwrap();
    assert_eq!(
        reply.game_day.as_ref().unwrap().phase,
        Phase::AwaitingFailover,
        "{:#?}",
        reply.steps
    );
    assert_eq!(f.alarm_state(HEALTH).await, "ALARM");

    // EventBridge delivers the alarm's change to the failover function; the real
    // failover runs, and the game day follows it to the verification and the failback.
    f.lag(1.0).await;
    let mut alarm: Value =
        serde_json::from_str(include_str!("../../events/failover-alarm.json")).unwrap();
    alarm["detail"]["state"]["timestamp"] = json!(Utc::now().to_rfc3339());
    let reply = f.failover_event(&alarm, "alarm-1").await;
    let gd = reply.game_day.clone().unwrap();
    assert_eq!(gd.phase, Phase::AwaitingFailback, "{:#?}", reply.steps);
    let v = gd.verification.clone().unwrap();
    assert!(v.endpoint_answered, "{v:?}");
    assert!(
        v.detail
            .contains("orders-db answered SQL through orders-db.db.lifeboat.internal."),
        "{v:?}"
    );
    assert_eq!(v.canary, CanaryResult::Ok, "{v:?}");
    // The canary's row is in the database, and the signal was taken back.
    f.db
        .execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM lifeboat_canary WHERE id LIKE 'lifeboat-gameday-gd-1-%') THEN RAISE EXCEPTION 'no canary row'; END IF; END $$",
        )
        .await
        .expect("the canary row was written");
    assert_eq!(f.alarm_state(HEALTH).await, "OK");
    // The game day acknowledged its incident and the failback began.
    assert!(
        matches!(f.dr_state().await, DrState::FailingBack(_)),
        "{:?}",
        f.dr_state().await.phase()
    );

    // A second game day is refused while this one runs; nothing changes.
    let err = f.game_day(start("signal_only"), "gd-2").await.unwrap_err();
    assert!(
        err.to_string().contains("game day gd-1 is running"),
        "{err}"
    );

    // The stop condition fires mid-failback: the game day waits for the failback to end
    // (here: the operator aborts it) and never starts another.
    f.set_alarm(STOP, StateValue::Alarm).await;
    let reply = f
        .game_day(GameDayInput::DrObserved, "tick-1")
        .await
        .unwrap();
    assert!(
        matches!(
            reply.game_day.as_ref().unwrap().phase,
            Phase::Stopping { .. }
        ),
        "{:#?}",
        reply.steps
    );
    f.failback()
        .handle(&json!({"action": "abort"}), &invocation("abort"))
        .await
        .unwrap();
    assert!(matches!(f.dr_state().await, DrState::FailedOver(_)));
    let reply = f
        .game_day(GameDayInput::DrObserved, "tick-2")
        .await
        .unwrap();
    let gd = reply.game_day.clone().unwrap();
    assert_eq!(gd.phase, Phase::Aborted, "{:#?}", reply.steps);
    let uri = reply.report.expect("the report is written");
    assert!(uri.contains(&format!("/{}/gameday/", f.plan.name)), "{uri}");

    // The report is in S3 and reads back as history for the next game day's trend.
    let history = f.aws.history(&f.plan, 5).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let report = &history[0];
    assert_eq!(report.game_day, "gd-1");
    assert!(
        matches!(&report.outcome, GameDayOutcome::Stopped { cause, .. } if cause == STOP),
        "{:?}",
        report.outcome
    );
    assert!(report.operator_must_fail_back);
    assert!(!report.hypothesis.held());
    assert!(
        report.rto.is_some(),
        "the failover was measured: {report:?}"
    );

    // With the DR region serving, a new game day is refused and nothing is injected.
    f.set_alarm(STOP, StateValue::Ok).await;
    let err = f.game_day(start("signal_only"), "gd-3").await.unwrap_err();
    assert!(err.to_string().contains("FailedOver"), "{err}");
    assert_eq!(f.stored().await.current.unwrap().id, "gd-1");
    assert_eq!(f.alarm_state(HEALTH).await, "OK");
    let _ = f.account.settle().await;
}

#[tokio::test]
async fn a_fis_game_day_without_a_template_is_refused_by_the_injection_and_reported() {
    let f = Fixture::new().await;
    let reply = f.game_day(start("fis"), "gd-fis").await.unwrap();
    let gd = reply.game_day.unwrap();
    assert_eq!(gd.phase, Phase::Aborted, "{:#?}", reply.steps);
    assert!(
        reply
            .steps
            .iter()
            .any(|s| s.contains("no FIS experiment template")),
        "{:#?}",
        reply.steps
    );
    // Nothing was failed over, and the health alarm was never touched.
    assert!(matches!(f.dr_state().await, DrState::Normal { .. }));
    assert_eq!(f.alarm_state(HEALTH).await, "OK");
    assert!(reply.report.is_some());
}

#[tokio::test]
async fn a_plan_that_does_not_allow_game_days_refuses_them_and_nothing_changes() {
    let mut f = Fixture::new().await;
    f.plan.game_days.allowed = false;
    let err = f.game_day(start("signal_only"), "gd-1").await.unwrap_err();
    assert!(err.to_string().contains("game_days.allowed"), "{err}");
    assert_eq!(f.stored().await, GameDayState::default());
    assert_eq!(f.alarm_state(HEALTH).await, "OK");
}

#[tokio::test]
async fn the_canary_writes_and_reads_on_postgresql_and_mariadb_and_names_a_missing_table() {
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        let db = ScratchDatabase::seeded(dialect).await.unwrap();
        let ddl = match dialect {
            Dialect::Postgres => {
                "CREATE TABLE canary (id text PRIMARY KEY, written_at timestamptz NOT NULL)"
            }
            Dialect::Mysql => {
                "CREATE TABLE canary (id varchar(200) PRIMARY KEY, written_at datetime(6) NOT NULL)"
            }
        };
        db.execute(ddl).await.unwrap();
        let target = db.probe_target();
        let timeout = std::time::Duration::from_secs(5);
        let sql = canary_sql(dialect, "canary").unwrap();
        write_canary(&target, &sql, "lifeboat-gameday-x-1", timeout)
            .await
            .unwrap_or_else(|e| panic!("{dialect:?}: {e}"));
        // A second attempt writes its own row.
        write_canary(&target, &sql, "lifeboat-gameday-x-2", timeout)
            .await
            .unwrap();
        let missing = canary_sql(dialect, "no_such_table").unwrap();
        let err = write_canary(&target, &missing, "lifeboat-gameday-x-3", timeout)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CanaryError::Statement { what: "write", message } if message.contains("no_such_table")),
            "{dialect:?}: {err}"
        );
        db.drop_database().await.unwrap();
    }
}

/// Each canary statement is bounded at the server on both engines: a write waiting for a
/// row another session holds fails after the canary's timeout instead of waiting for the
/// server's lock wait limit (MariaDB's is 50 s, and ends the invocation's budget).
#[tokio::test]
async fn a_canary_write_stuck_behind_a_lock_fails_after_its_timeout_on_both_engines() {
    use sqlx::Connection;
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        let db = ScratchDatabase::seeded(dialect).await.unwrap();
        let (ddl, hold) = match dialect {
            Dialect::Postgres => (
                "CREATE TABLE canary (id text PRIMARY KEY, written_at timestamptz NOT NULL)",
                "INSERT INTO canary (id, written_at) VALUES ('lifeboat-gameday-held', now())",
            ),
            Dialect::Mysql => (
                "CREATE TABLE canary (id varchar(200) PRIMARY KEY, written_at datetime(6) NOT NULL)",
                "INSERT INTO canary (id, written_at) VALUES ('lifeboat-gameday-held', NOW(6))",
            ),
        };
        db.execute(ddl).await.unwrap();
        // Another session inserts the canary's row and holds its transaction open.
        let holder: Box<dyn std::any::Any + Send> = match dialect {
            Dialect::Postgres => {
                let options = sqlx::postgres::PgConnectOptions::new()
                    .host("127.0.0.1")
                    .port(5432)
                    .username(db.username())
                    .database(&db.name);
                let mut c = sqlx::postgres::PgConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::raw_sql("BEGIN").execute(&mut c).await.unwrap();
                sqlx::raw_sql(hold).execute(&mut c).await.unwrap();
                Box::new(c)
            }
            Dialect::Mysql => {
                let options = sqlx::mysql::MySqlConnectOptions::new()
                    .host("127.0.0.1")
                    .port(3306)
                    .username(db.username())
                    .database(&db.name);
                let mut c = sqlx::mysql::MySqlConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::raw_sql("START TRANSACTION")
                    .execute(&mut c)
                    .await
                    .unwrap();
                sqlx::raw_sql(hold).execute(&mut c).await.unwrap();
                Box::new(c)
            }
        };
        let target = db.probe_target();
        let sql = canary_sql(dialect, "canary").unwrap();
        // Far above the canary's 2 s and far below the servers' own lock wait limits.
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            write_canary(
                &target,
                &sql,
                "lifeboat-gameday-held",
                std::time::Duration::from_secs(2),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("{dialect:?}: the canary's write was not bounded"));
        let err = outcome.expect_err("the held row was written twice");
        assert!(
            matches!(err, CanaryError::Statement { what: "write", .. }),
            "{dialect:?}: {err}"
        );
        drop(holder);
        db.drop_database().await.unwrap();
    }
}

/// The README's setup: the checks' secret names the read-only user, the canary's its own
/// writing user. The verification's SQL session reads as the first, the canary writes as
/// the second; without its own secret the canary writes as the read-only user and fails,
/// and nothing is written.
#[tokio::test]
async fn the_canary_writes_as_its_own_user_and_the_checks_read_only_user_cannot() {
    const CANARY_SECRET: &str = "lifeboat-local/orders-db-canary";
    let (account, mut plan, world) = world().await;
    let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
    db.execute(
        "CREATE TABLE lifeboat_canary (id text PRIMARY KEY, written_at timestamptz NOT NULL)",
    )
    .await
    .unwrap();
    let suffix = format!("{}_{}", std::process::id(), Utc::now().timestamp_micros());
    let reader = format!("lbreader_{suffix}");
    let writer = format!("lbwriter_{suffix}");
    for g in crate::checks_read_only::readme_grants(Dialect::Postgres, &db.name, &reader, "r") {
        db.execute(&g).await.unwrap_or_else(|e| panic!("{g}: {e}"));
    }
    // The README's example for the canary's user.
    for g in [
        format!("CREATE ROLE {writer} LOGIN PASSWORD 'w'"),
        format!("GRANT INSERT, SELECT ON lifeboat_canary TO {writer}"),
    ] {
        db.execute(&g).await.unwrap();
    }
    let config = &world.clients.home.config;
    put_credentials_secret(config, SECRET, &reader, "r")
        .await
        .unwrap();
    put_credentials_secret(config, CANARY_SECRET, &writer, "w")
        .await
        .unwrap();
    // No user in the URL: the secrets' users connect.
    let mapping = format!("orders-db=postgres://127.0.0.1:5432/{}", db.name);
    let lookup = move |k: &str| (k == LOCAL_DATABASE_URLS_ENV).then(|| mapping.clone());
    let settings = account.settings();

    for (secret, row) in [
        (Some(CANARY_SECRET), "lifeboat-gameday-own-user-1"),
        (None, "lifeboat-gameday-validation-user-1"),
    ] {
        plan.game_days.canary = Some(Canary {
            resource: "orders-db".into(),
            table: "lifeboat_canary".into(),
            credentials_secret: secret.map(str::to_string),
        });
        let aws = AwsGameDay::new(
            &plan,
            &world.clients,
            &settings,
            &world.control.report_bucket,
            &lookup,
        )
        .await
        .expect("adapter");
        let v = aws.verify(&plan, plan.game_days.canary.as_ref(), row).await;
        assert!(
            v.detail.contains("orders-db answered SQL through"),
            "the read-only user opens the verification's session: {}",
            v.detail
        );
        let written = db
            .count(&format!(
                "SELECT count(*) FROM lifeboat_canary WHERE id = '{row}'"
            ))
            .await
            .unwrap();
        match secret {
            Some(_) => {
                assert_eq!(v.canary, CanaryResult::Ok, "{}", v.detail);
                assert_eq!(written, 1);
            }
            None => {
                let CanaryResult::Failed { reason } = &v.canary else {
                    panic!("the read-only user wrote the canary: {v:?}");
                };
                assert!(reason.starts_with("the canary's write failed"), "{reason}");
                assert_eq!(written, 0);
            }
        }
    }
    db.drop_database().await.unwrap();
    for role in [&reader, &writer] {
        db.admin(&format!("DROP ROLE IF EXISTS {role}"))
            .await
            .unwrap();
    }
}
