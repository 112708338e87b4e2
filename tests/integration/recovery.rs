//! Point-in-time recovery with its real adapters: the restores, the fence and the
//! database record in the emulator (RDS, Route 53, DynamoDB state, S3 reports, SNS), the
//! recovery's checks against the real local PostgreSQL (the emulator restores no data,
//! so the recovered instance is mapped to a scratch database).

use crate::support::{invocation, notifier, reports, state_store, world};
use chrono::{DateTime, Duration, Utc};
use harness::databases::{ScratchDatabase, put_credentials_secret};
use harness::{Account, World};
use lifeboat::aws::{
    AwsRecovery, DynamoStateStore, LOCAL_DATABASE_URLS_ENV, S3Reports, SnsNotifier, read_cname,
};
use lifeboat::dr::run::{DrDocument, SystemClock, dr_key};
use lifeboat::plan::Plan;
use lifeboat::recovery::run::{RecoveryReply, RecoveryRun, RecoveryRunError, parse_command};
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
        let command = parse_command(&payload)
            .expect("well-formed")
            .expect("a recovery command");
        self.run()
            .handle(RecoveryInput::Command(command), &invocation(id))
            .await
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
