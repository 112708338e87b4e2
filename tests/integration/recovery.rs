//! Point-in-time recovery with its real adapters: the restores, the fence and the
//! database record in the emulator (RDS, Route 53, DynamoDB state, S3 reports, SNS), the
//! recovery's checks against the real local PostgreSQL (the emulator restores no data,
//! so the recovered instance is mapped to a scratch database).

use crate::support::{invocation, notifier, reports, state_store, world};
use chrono::{DateTime, Duration, Utc};
use harness::databases::{ScratchDatabase, put_credentials_secret};
use harness::{Account, World};
use lifeboat::aws::{
    AwsFailover, AwsRecovery, DynamoStateStore, LOCAL_DATABASE_URLS_ENV, S3Reports, SnsNotifier,
    read_cname,
};
use lifeboat::dr::DrState;
use lifeboat::dr::run::{DrDocument, SystemClock, dr_key};
use lifeboat::failover::run::FailoverRun;
use lifeboat::function::{Invocation, respond};
use lifeboat::plan::Plan;
use lifeboat::recovery::run::{RecoveryReply, RecoveryRun, RecoveryRunError};
use lifeboat::recovery::{Phase, Recovery, RecoveryInput};
use lifeboat::state::Outcome::Intended;
use lifeboat::state::{self, StateStore};
use lifeboat::validation::checks::Dialect;
use serde_json::{Value, json};

const SECRET: &str = "lifeboat-local/orders-db";
const RECORD: &str = "orders-db.db.lifeboat.internal.";

/// An instance as the tests look at it: identifier, status, tags.
type Instance = (String, String, Vec<(String, String)>);

struct Fixture {
    account: Account,
    plan: Plan,
    world: World,
    state: DynamoStateStore,
    notifier: SnsNotifier,
    reports: S3Reports,
    port: AwsRecovery,
    _db: ScratchDatabase,
}

impl Fixture {
    /// The local world, the validation credentials, and every recovered `orders-db`
    /// mapped to a seeded scratch database (its data "as restored").
    async fn new() -> Self {
        let (account, plan, world) = world().await;
        put_credentials_secret(&world.clients.home.config, SECRET, "postgres", "")
            .await
            .unwrap();
        let db = ScratchDatabase::seeded(Dialect::Postgres).await.unwrap();
        let mapping = format!("orders-db-pitr-*={}", db.url());
        let lookup = move |k: &str| (k == LOCAL_DATABASE_URLS_ENV).then(|| mapping.clone());
        let port = AwsRecovery::new(&plan, &world.clients, &account.settings(), &lookup)
            .await
            .expect("adapter");
        Fixture {
            state: state_store(&world),
            notifier: notifier(&world),
            reports: reports(&world),
            account,
            plan,
            world,
            port,
            _db: db,
        }
    }

    fn run(&self) -> RecoveryRun<'_> {
        RecoveryRun {
            plan: &self.plan,
            port: &self.port,
            state: &self.state,
            notifier: &self.notifier,
            reports: &self.reports,
            clock: &SystemClock,
        }
    }

    async fn command(&self, payload: Value, id: &str) -> Result<RecoveryReply, RecoveryRunError> {
        let input = lifeboat::recovery::event::parse_input(&payload).expect("well-formed");
        assert!(
            matches!(input, RecoveryInput::Command(_)),
            "a recovery command"
        );
        self.run().handle(input, &invocation(id)).await
    }

    /// Ticks, with the emulator's clock moved past each transition, until `done` holds.
    async fn tick_until(&self, done: impl Fn(&Recovery) -> bool) -> Recovery {
        for i in 0..10 {
            let book = self.document().await.recoveries;
            let r = book.recoveries.last().expect("a recovery").clone();
            if done(&r) {
                return r;
            }
            self.account.settle().await.unwrap();
            self.run()
                .handle(RecoveryInput::Tick, &invocation(&format!("tick-{i}")))
                .await
                .unwrap();
        }
        panic!(
            "the recovery never got there: {:#?}",
            self.document().await.recoveries
        );
    }

    async fn document(&self) -> DrDocument {
        state::load::<DrDocument>(&self.state, &dr_key(&self.plan))
            .await
            .unwrap()
            .map(|v| v.value)
            .unwrap_or_default()
    }

    async fn record(&self) -> Vec<String> {
        read_cname(&self.world.clients.route53, &self.world.zone_id, RECORD)
            .await
            .unwrap()
            .unwrap()
            .values
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// Identifier, status and tags of every primary-region instance.
    async fn instances(&self) -> Vec<Instance> {
        let out = self
            .world
            .clients
            .primary
            .rds
            .describe_db_instances()
            .send()
            .await
            .unwrap();
        out.db_instances()
            .iter()
            .map(|d| {
                (
                    d.db_instance_identifier().unwrap_or_default().to_string(),
                    d.db_instance_status().unwrap_or_default().to_string(),
                    d.tag_list()
                        .iter()
                        .map(|t| {
                            (
                                t.key().unwrap_or_default().to_string(),
                                t.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                )
            })
            .collect()
    }

    async fn endpoint_of(&self, id: &str) -> String {
        let out = self
            .world
            .clients
            .primary
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .unwrap();
        out.db_instances()[0]
            .endpoint()
            .and_then(|e| e.address())
            .unwrap()
            .to_string()
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.state
            .timeline(&self.plan.name, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.outcome != Intended)
            .map(|e| e.action)
            .collect()
    }
}

fn recover(restore_time: &str) -> Value {
    json!({
        "action": "recover",
        "resource": "orders-db",
        "restore_time": restore_time,
        "reason": "DELETE without WHERE on orders (test)",
        "assertions": [
            {"name": "orders are back", "sql": "SELECT count(*) >= 1 FROM orders", "expect": "true"}
        ]
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn recover_to_the_latest_time_checks_and_cuts_over_to_the_recovered_instance() {
    let f = Fixture::new().await;
    let old_endpoint = f.endpoint_of("orders-db").await;
    assert_eq!(f.record().await, std::slice::from_ref(&old_endpoint));

    let reply = f.command(recover("latest"), "recover-1").await.unwrap();
    let id = reply.recoveries[0].id.clone();
    assert!(id.starts_with("orders-db-pitr-"), "{id}");

    // The restore is a new instance, tagged as this recovery, never public.
    let restored = f
        .instances()
        .await
        .into_iter()
        .find(|(i, _, _)| *i == id)
        .expect("the restored instance exists");
    assert!(
        restored
            .2
            .contains(&("lifeboat:recovery".to_string(), id.clone())),
        "{:?}",
        restored.2
    );
    assert!(restored.2.contains(&(
        "lifeboat:restored-from".to_string(),
        "orders-db".to_string()
    )));

    let ready = f
        .tick_until(|r| matches!(r.phase, Phase::Ready { .. }))
        .await;
    assert_eq!(
        ready.phase,
        Phase::Ready {
            checks_passed: true
        },
        "{:?}",
        ready.checks
    );
    let checks = ready.checks.clone().expect("checks ran");
    assert!(checks.failed.is_empty(), "{checks:?}");
    assert!(
        checks.passed.iter().any(|c| c.contains("orders are back")),
        "the recovery's own assertion ran: {checks:?}"
    );
    // Ready is where it stays: nothing is cut over, nothing deleted, by itself.
    assert_eq!(f.record().await, std::slice::from_ref(&old_endpoint));

    let reply = f
        .command(json!({"action": "cutover", "recovery": id}), "cutover-1")
        .await
        .unwrap();
    let done = if reply.recoveries.last().unwrap().phase == Phase::CutOver {
        reply.recoveries.last().unwrap().clone()
    } else {
        f.tick_until(|r| r.phase == Phase::CutOver).await
    };
    assert_eq!(done.phase, Phase::CutOver);
    // The damaged writer is fenced and the record points at the recovered one.
    let status = |list: &[Instance], id: &str| {
        list.iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, s, _)| s.clone())
    };
    let instances = f.instances().await;
    assert_eq!(status(&instances, "orders-db").as_deref(), Some("stopped"));
    assert_eq!(f.record().await, [f.endpoint_of(&id).await]);
    // The data window lost is measured from the restore time to the record's move.
    let cut = done.cutover.as_ref().and_then(|c| c.done_at).unwrap();
    assert_eq!(
        done.lost_window_seconds(Utc::now()),
        (cut - done.restore_time).num_seconds().max(0)
    );
    // Every step is audited, and discard of a database that served as writer is refused.
    let actions = f.audit_actions().await;
    for step in [
        "recovery.restore",
        "recovery.checks",
        "recovery.fence",
        "recovery.point-record",
    ] {
        assert!(actions.iter().any(|a| a == step), "{step} in {actions:?}");
    }
    let refused = f
        .command(json!({"action": "discard", "recovery": id}), "discard-1")
        .await
        .unwrap_err();
    assert!(matches!(refused, RecoveryRunError::Refused(_)), "{refused}");
    assert!(
        f.instances().await.iter().any(|(i, _, _)| *i == id),
        "the writer is never deleted"
    );
}

#[tokio::test]
async fn bad_recovery_commands_are_refused_and_change_nothing() {
    let f = Fixture::new().await;
    let before = (f.instances().await, f.document().await, f.record().await);
    let future = rfc3339(Utc::now() + Duration::hours(1));
    let cases = [
        (recover(&future), "in the future"),
        (recover("2020-01-01T00:00:00Z"), "before the window"),
        (recover("yesterday afternoon"), "unparsable"),
        (
            json!({"action": "recover", "resource": "no-such-db", "restore_time": "latest",
                   "reason": "typo"}),
            "unknown resource",
        ),
        (
            json!({"action": "cutover", "recovery": "orders-db-pitr-202001010000"}),
            "unknown recovery",
        ),
        (
            json!({"action": "discard", "recovery": "orders-db-pitr-202001010000"}),
            "unknown recovery",
        ),
    ];
    for (i, (payload, why)) in cases.into_iter().enumerate() {
        let e = f
            .command(payload.clone(), &format!("bad-{i}"))
            .await
            .expect_err(why);
        assert!(
            matches!(e, RecoveryRunError::Refused(_)),
            "{why}: {e} ({payload})"
        );
    }
    // A time outside the window is refused with the window in the error.
    let e = f
        .command(recover("2020-01-01T00:00:00Z"), "bad-window")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("restorable"), "{e}");
    let after = (f.instances().await, f.document().await, f.record().await);
    assert_eq!(before, after, "a refused command changes nothing");
}

#[tokio::test]
async fn a_recovery_whose_checks_fail_cuts_over_only_when_forced_and_the_force_is_recorded() {
    let f = Fixture::new().await;
    let mut payload = recover("latest");
    payload["assertions"] = json!([
        {"name": "the damaged table is empty", "sql": "SELECT count(*) FROM orders", "expect": "0"}
    ]);
    let id = f.command(payload, "recover-1").await.unwrap().recoveries[0]
        .id
        .clone();
    let ready = f
        .tick_until(|r| matches!(r.phase, Phase::Ready { .. }))
        .await;
    assert_eq!(
        ready.phase,
        Phase::Ready {
            checks_passed: false
        }
    );
    let record = f.record().await;
    let e = f
        .command(json!({"action": "cutover", "recovery": id}), "cutover-1")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("force"), "{e}");
    assert_eq!(f.record().await, record, "nothing moved");
    let reply = f
        .command(
            json!({"action": "cutover", "recovery": id, "force": true,
                   "reason": "the empty table is expected after the migration"}),
            "cutover-2",
        )
        .await
        .unwrap();
    assert!(
        reply.steps.iter().any(|s| s.contains("force")),
        "{:?}",
        reply.steps
    );
    let timeline = f.state.timeline(&f.plan.name, None).await.unwrap();
    assert!(
        timeline.iter().any(|e| e
            .detail
            .contains("the empty table is expected after the migration")),
        "the forced cutover's reason is in the audit trail"
    );
}

/// The DR replica's source, as RDS in the DR region reports it: `None` once promoted.
async fn replica_source(world: &World) -> Option<String> {
    world
        .clients
        .dr
        .rds
        .describe_db_instances()
        .db_instance_identifier("orders-db-dr")
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .read_replica_source_db_instance_identifier()
        .map(str::to_string)
}

/// A cutover sent to the recovery function and a forced failover sent to the failover
/// function at the same moment, each through the entry the deployed functions use: the
/// DR document is the single-writer lock they share, so exactly one of them acts, and
/// AWS shows one writer behind the record. Three rounds, each on a fresh world.
#[tokio::test]
async fn a_cutover_and_a_failover_sent_at_once_never_both_act() {
    for round in 0..3 {
        let f = Fixture::new().await;
        let reply = f.command(recover("latest"), "recover").await.unwrap();
        let id = reply.recoveries[0].id.clone();
        f.tick_until(|r| matches!(r.phase, Phase::Ready { .. }))
            .await;
        let failover_port =
            AwsFailover::new(&f.plan, &f.world.clients, &f.account.settings()).await;
        let failover = FailoverRun {
            plan: &f.plan,
            port: &failover_port,
            state: &f.state,
            notifier: &f.notifier,
            reports: &f.reports,
            clock: &SystemClock,
        };
        let recovery = f.run();
        let (failover, recovery) = (&failover, &recovery);
        let cutover = json!({"action": "cutover", "recovery": id});
        let force = json!({"action": "force", "reason": "the race test"});
        let recovery_function = |p: Value, i: Invocation| async move {
            let input = lifeboat::recovery::event::parse_input(&p)?;
            recovery.handle(input, &i).await
        };
        let failover_function =
            |p: Value, i: Invocation| async move { failover.handle(&p, &i).await };
        let (cut, forced) = tokio::join!(
            respond(
                "recovery",
                cutover,
                invocation(&format!("cutover-{round}")),
                &recovery_function,
            ),
            respond(
                "failover",
                force,
                invocation(&format!("force-{round}")),
                &failover_function,
            ),
        );
        // Each answer as a caller reads it: the reply, or the error's type and message.
        let cut = cut.map_err(|d| (d.error_type, d.error_message));
        let forced = forced.map_err(|d| (d.error_type, d.error_message));
        let doc = f.document().await;
        let recovered = doc.recoveries.get(&id).expect("the recovery").clone();
        let cut_over = matches!(recovered.phase, Phase::CuttingOver { .. } | Phase::CutOver);
        let failed_over = !matches!(doc.state, DrState::Normal { .. });
        assert!(
            cut_over != failed_over,
            "round {round}: exactly one may act: cutover {cut:?}, failover {forced:?}, recovery {:?}, DR state {}",
            recovered.phase,
            doc.state.phase()
        );
        // The other one was refused, or saw the lock held and did nothing.
        let stood_aside = |answer: &Result<Value, (String, String)>| match answer {
            Ok(v) => v["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s.as_str().is_some_and(|s| s.contains("another invocation"))),
            Err((kind, message)) => kind == "NonRetryable" && message.contains("refused"),
        };
        if cut_over {
            assert!(
                stood_aside(&forced),
                "round {round}: the failover acted: {forced:?}"
            );
            let done = f.tick_until(|r| r.phase == Phase::CutOver).await;
            assert_eq!(done.phase, Phase::CutOver);
            assert_eq!(f.record().await, [f.endpoint_of(&id).await]);
            assert!(
                replica_source(&f.world).await.is_some(),
                "round {round}: the DR replica was promoted beside a cutover"
            );
            assert!(matches!(f.document().await.state, DrState::Normal { .. }));
        } else {
            assert!(
                stood_aside(&cut),
                "round {round}: the cutover acted: {cut:?}"
            );
            assert_eq!(
                recovered.phase,
                Phase::Ready {
                    checks_passed: true
                },
                "round {round}"
            );
            assert_ne!(
                f.record().await,
                [f.endpoint_of(&id).await],
                "round {round}: the record points at the recovered database beside a failover"
            );
            assert!(
                !f.audit_actions()
                    .await
                    .iter()
                    .any(|a| a == "recovery.fence" || a == "recovery.point-record"),
                "round {round}: the cutover acted beside a failover"
            );
        }
    }
}
