use super::*;
use crate::plan::parse_plan;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;

fn plan() -> Plan {
    parse_plan(include_str!("../../../infra/plans/local.json")).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap()
}

fn window() -> RestorableWindow {
    RestorableWindow {
        earliest: now() - Duration::days(7),
        latest: now() - Duration::minutes(5),
    }
}

fn facts() -> RecoveryFacts {
    RecoveryFacts {
        dr: Some(DrPhase::Normal),
        window: Some(window()),
        recovered: BTreeMap::new(),
    }
}

fn recover(resource: &str, time: &str) -> RecoveryInput {
    RecoveryInput::Command(RecoveryCommand::Recover {
        resource: resource.into(),
        restore_time: time.into(),
        reason: "DELETE without WHERE on orders".into(),
        assertions: vec![],
    })
}

fn cutover(id: &str, force: bool, reason: Option<&str>) -> RecoveryInput {
    RecoveryInput::Command(RecoveryCommand::Cutover {
        recovery: id.into(),
        force,
        reason: reason.map(str::to_string),
    })
}

const ID: &str = "orders-db-pitr-202611201429";

/// A recovery of orders-db restored and checked, Ready.
fn ready(passed: bool) -> RecoveryBook {
    let p = plan();
    let d = step(
        &p,
        &RecoveryBook::default(),
        &recover("orders-db", "2026-11-20T14:29:00Z"),
        &facts(),
        now(),
    );
    let mut f = facts();
    f.recovered.insert(
        ID.into(),
        RecoveredFacts {
            resource: Presence::Available,
            checks: Some(CheckReport {
                passed: vec!["orders has 250 rows".into()],
                failed: if passed {
                    vec![]
                } else {
                    vec!["orders has 0 rows, expected at least 1".into()]
                },
            }),
            ..Default::default()
        },
    );
    let d = step(&p, &d.state, &RecoveryInput::Tick, &f, now());
    assert_eq!(
        d.state.get(ID).unwrap().phase,
        Phase::Ready {
            checks_passed: passed
        }
    );
    d.state
}

#[test]
fn recover_names_tags_and_restores_to_the_instant() {
    let p = plan();
    let d = step(
        &p,
        &RecoveryBook::default(),
        &recover("orders-db", "2026-11-20T14:29:00Z"),
        &facts(),
        now(),
    );
    assert!(d.refused.is_none(), "{}", d.reply);
    let r = d.state.get(ID).expect("named <id>-pitr-<yyyymmddhhmm>");
    assert_eq!(r.phase, Phase::Requested);
    assert_eq!(r.source, "orders-db");
    let [
        RecoveryAction::Restore {
            target,
            restore_time,
            tags,
            kind,
            ..
        },
    ] = d.actions.as_slice()
    else {
        panic!("one restore: {:?}", d.actions)
    };
    assert_eq!(target, ID);
    assert_eq!(*kind, ResourceKind::RdsInstance);
    assert_eq!(
        *restore_time,
        Some(Utc.with_ymd_and_hms(2026, 11, 20, 14, 29, 0).unwrap())
    );
    assert!(tags.contains(&(RECOVERY_TAG.into(), ID.into())));
    assert!(tags.contains(&(RESOURCE_TAG.into(), "orders-db".into())));
    assert!(tags.contains(&(RESTORE_TIME_TAG.into(), "2026-11-20T14:29:00Z".into())));
    assert!(
        d.notes
            .iter()
            .any(|n| n.detail.contains("DELETE without WHERE"))
    );
}

#[test]
fn latest_restores_to_the_windows_end_with_aws_latest_flag() {
    let d = step(
        &plan(),
        &RecoveryBook::default(),
        &recover("orders-db", "latest"),
        &facts(),
        now(),
    );
    let r = &d.state.recoveries[0];
    assert!(r.latest);
    assert_eq!(r.restore_time, window().latest);
    assert_eq!(r.id, "orders-db-pitr-202611201455");
    assert!(matches!(
        d.actions.as_slice(),
        [RecoveryAction::Restore {
            restore_time: None,
            ..
        }]
    ));
}

fn refusal(input: &RecoveryInput, book: &RecoveryBook, facts: &RecoveryFacts) -> RecoveryError {
    let d = step(&plan(), book, input, facts, now());
    assert_eq!(&d.state, book, "a refusal changes nothing");
    assert!(d.actions.is_empty());
    assert_eq!(d.reply, d.refused.as_ref().unwrap().to_string());
    d.refused.expect("refused")
}

#[test]
fn a_time_outside_the_window_is_refused_with_the_window() {
    let book = RecoveryBook::default();
    for t in ["2026-11-01T00:00:00Z", "2026-11-20T14:58:00Z"] {
        let e = refusal(&recover("orders-db", t), &book, &facts());
        assert!(matches!(e, RecoveryError::OutsideWindow { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("2026-11-13T15:00:00Z to 2026-11-20T14:55:00Z"),
            "{text}"
        );
    }
}

#[test]
fn a_future_time_is_refused() {
    let e = refusal(
        &recover("orders-db", "2026-11-21T09:00:00+01:00"),
        &RecoveryBook::default(),
        &facts(),
    );
    assert!(matches!(e, RecoveryError::InFuture { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("in the future (now is 2026-11-20T15:00:00Z)")
    );
}

#[test]
fn an_unparsable_time_is_refused() {
    for t in ["yesterday", "2026-11-20 14:29", "", "14:29"] {
        let e = refusal(&recover("orders-db", t), &RecoveryBook::default(), &facts());
        assert!(
            matches!(e, RecoveryError::UnparsableTime { .. }),
            "{t}: {e}"
        );
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }
}

#[test]
fn no_window_unknown_resource_and_missing_reason_are_refused() {
    let mut f = facts();
    f.window = None;
    let e = refusal(
        &recover("orders-db", "latest"),
        &RecoveryBook::default(),
        &f,
    );
    assert!(matches!(e, RecoveryError::NoWindow { .. }), "{e}");
    let e = refusal(
        &recover("payments-db", "latest"),
        &RecoveryBook::default(),
        &facts(),
    );
    assert!(
        e.to_string().contains("orders-db, billing-db, sessions"),
        "{e}"
    );
    let e = refusal(
        &RecoveryInput::Command(RecoveryCommand::Recover {
            resource: "orders-db".into(),
            restore_time: "latest".into(),
            reason: "  ".into(),
            assertions: vec![],
        }),
        &RecoveryBook::default(),
        &facts(),
    );
    assert!(matches!(e, RecoveryError::MissingReason { .. }), "{e}");
}

#[test]
fn a_recover_command_whose_assertion_could_write_is_refused_before_anything_is_restored() {
    let command = |sql: &str| {
        RecoveryInput::Command(RecoveryCommand::Recover {
            resource: "orders-db".into(),
            restore_time: "latest".into(),
            reason: "INC-1".into(),
            assertions: vec![
                SqlAssertion {
                    name: "orders are back".into(),
                    sql: "SELECT count(*) > 0 FROM orders".into(),
                    expect: "true".into(),
                },
                SqlAssertion {
                    name: "careless".into(),
                    sql: sql.into(),
                    expect: "0".into(),
                },
            ],
        })
    };
    for sql in [
        "DELETE FROM orders",
        "SELECT 1; DROP TABLE orders",
        "WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d",
        "SELECT * INTO orders_copy FROM orders",
        "CALL repair_orders()",
    ] {
        let e = refusal(&command(sql), &RecoveryBook::default(), &facts());
        assert!(
            matches!(&e, RecoveryError::UnsafeAssertion { index: 1, name, .. } if name == "careless"),
            "{sql}: {e}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with(
                "assertions[1] (\"careless\") is not one read-only query for orders-db (postgres)"
            ),
            "{text}"
        );
    }
    // The same command with a read-only second assertion is accepted.
    let d = step(
        &plan(),
        &RecoveryBook::default(),
        &command("SELECT count(*) FROM orders WHERE total_cents < 0"),
        &facts(),
        now(),
    );
    assert!(d.refused.is_none(), "{:?}", d.refused);
}

#[test]
fn a_second_recovery_to_the_same_minute_is_refused_until_discarded() {
    let book = ready(true);
    let e = refusal(
        &recover("orders-db", "2026-11-20T14:29:30Z"),
        &book,
        &facts(),
    );
    assert!(matches!(e, RecoveryError::Duplicate { .. }), "{e}");
    let mut book = book;
    book.recoveries[0].phase = Phase::Discarded;
    let d = step(
        &plan(),
        &book,
        &recover("orders-db", "2026-11-20T14:29:30Z"),
        &facts(),
        now(),
    );
    assert!(d.refused.is_none(), "{}", d.reply);
    assert_eq!(d.state.recoveries.len(), 1);
    assert_eq!(d.state.recoveries[0].phase, Phase::Requested);
}

#[test]
fn unknown_recovery_ids_are_refused_for_every_command() {
    let book = ready(true);
    for input in [
        cutover("orders-db-pitr-1", false, None),
        RecoveryInput::Command(RecoveryCommand::Discard {
            recovery: "nope".into(),
        }),
        RecoveryInput::Command(RecoveryCommand::RecoveryStatus {
            recovery: Some("nope".into()),
        }),
    ] {
        let e = refusal(&input, &book, &facts());
        assert!(matches!(e, RecoveryError::UnknownRecovery { .. }), "{e}");
        assert!(e.to_string().contains(ID), "names the known ones: {e}");
    }
}

#[test]
fn cutover_of_failed_checks_needs_force_with_a_reason_and_records_it() {
    let book = ready(false);
    let e = refusal(&cutover(ID, false, None), &book, &facts());
    assert!(matches!(e, RecoveryError::ChecksFailed { .. }), "{e}");
    assert!(e.to_string().contains("orders has 0 rows"), "{e}");
    let e = refusal(&cutover(ID, true, Some(" ")), &book, &facts());
    assert!(matches!(e, RecoveryError::MissingReason { .. }), "{e}");

    let d = step(
        &plan(),
        &book,
        &cutover(ID, true, Some("the check is stale")),
        &facts(),
        now(),
    );
    assert!(d.refused.is_none(), "{}", d.reply);
    let r = d.state.get(ID).unwrap();
    assert_eq!(
        r.cutover.as_ref().unwrap().forced.as_deref(),
        Some("the check is stale")
    );
    assert!(
        d.notes
            .iter()
            .any(|n| n.detail.contains("the check is stale"))
    );
}

#[test]
fn cutover_is_refused_during_failover_failback_and_before_ready() {
    let book = ready(true);
    for phase in [
        DrPhase::FailingOver,
        DrPhase::FailedOver,
        DrPhase::FailingBack,
    ] {
        let mut f = facts();
        f.dr = Some(phase);
        let e = refusal(&cutover(ID, false, None), &book, &f);
        assert!(matches!(e, RecoveryError::Locked { .. }), "{e}");
        assert!(e.to_string().contains(&phase.to_string()), "{e}");
    }
    let mut f = facts();
    f.dr = None;
    let e = refusal(&cutover(ID, false, None), &book, &f);
    assert!(e.to_string().contains("could not be read"), "{e}");

    let restoring = step(
        &plan(),
        &RecoveryBook::default(),
        &recover("orders-db", "2026-11-20T14:29:00Z"),
        &facts(),
        now(),
    )
    .state;
    let e = refusal(&cutover(ID, false, None), &restoring, &facts());
    assert!(matches!(e, RecoveryError::NotReady { .. }), "{e}");
}

#[test]
fn a_resource_without_a_record_cannot_be_cut_over() {
    let mut book = ready(true);
    book.recoveries[0].resource = "billing-db".into();
    let e = refusal(&cutover(ID, false, None), &book, &facts());
    assert!(matches!(e, RecoveryError::NoRecord { .. }), "{e}");
}

#[test]
fn cutover_fences_first_then_repoints_and_reports_the_lost_window() {
    let p = plan();
    let book = ready(true);
    let d = step(&p, &book, &cutover(ID, false, None), &facts(), now());
    assert_eq!(
        d.actions,
        vec![RecoveryAction::Fence {
            recovery: ID.into(),
            writer: "orders-db".into()
        }]
    );
    // While it runs, failover and failback are refused, and so is another cutover.
    for task in [
        WriterTask::Failover,
        WriterTask::Failback,
        WriterTask::Cutover("other"),
    ] {
        let e = may_start(task, DrPhase::Normal, &d.state, &p).unwrap_err();
        assert!(e.to_string().contains("cutover of recovery"), "{e}");
    }
    let mut f = facts();
    let later = now() + Duration::minutes(2);
    f.recovered.insert(
        ID.into(),
        RecoveredFacts {
            resource: Presence::Available,
            writer_fenced: true,
            ..Default::default()
        },
    );
    let d = step(&p, &d.state, &RecoveryInput::Tick, &f, later);
    assert_eq!(
        d.actions,
        vec![RecoveryAction::PointRecord {
            recovery: ID.into(),
            record: "orders-db.db.lifeboat.internal.".into(),
            target: ID.into()
        }]
    );
    assert!(d.notes.iter().any(|n| n.action == "recovery.fenced"));
    f.recovered.get_mut(ID).unwrap().record_target = Some(ID.into());
    let d = step(&p, &d.state, &RecoveryInput::Tick, &f, later);
    let r = d.state.get(ID).unwrap();
    assert_eq!(r.phase, Phase::CutOver);
    assert_eq!(r.lost_window_seconds(later), 33 * 60);
    assert!(d.notes.iter().any(|n| n.detail.contains("(1980 s)")));
    let status = step(
        &p,
        &d.state,
        &RecoveryInput::Command(RecoveryCommand::RecoveryStatus { recovery: None }),
        &f,
        later,
    );
    assert!(
        status.reply.contains("data lost: 1980 s"),
        "{}",
        status.reply
    );
    // The recovered writer is not deleted, and failover waits for the plan to name it.
    let e = refusal(
        &RecoveryInput::Command(RecoveryCommand::Discard {
            recovery: ID.into(),
        }),
        &d.state,
        &f,
    );
    assert!(matches!(e, RecoveryError::InUse { .. }), "{e}");
    let e = may_start(WriterTask::Failover, DrPhase::Normal, &d.state, &p).unwrap_err();
    assert!(
        e.to_string().contains("set the resource's identifier"),
        "{e}"
    );
    let mut adopted = p.clone();
    adopted.resources[0].identifier = Some(ID.into());
    assert_eq!(
        may_start(WriterTask::Failover, DrPhase::Normal, &d.state, &adopted),
        Ok(())
    );
    // Named in another case, it is the same instance to RDS.
    adopted.resources[0].identifier = Some(ID.to_ascii_uppercase());
    assert_eq!(
        may_start(WriterTask::Failover, DrPhase::Normal, &d.state, &adopted),
        Ok(())
    );
}

#[test]
fn aurora_gets_an_instance_before_its_checks() {
    let p = plan();
    let d = step(
        &p,
        &RecoveryBook::default(),
        &recover("billing-db", "2026-11-20T14:29:00Z"),
        &facts(),
        now(),
    );
    let id = "billing-db-pitr-202611201429";
    let mut f = facts();
    f.recovered.insert(
        id.into(),
        RecoveredFacts {
            resource: Presence::Available,
            ..Default::default()
        },
    );
    let d = step(&p, &d.state, &RecoveryInput::Tick, &f, now());
    assert_eq!(d.state.get(id).unwrap().phase, Phase::CreatingInstance);
    assert!(matches!(
        d.actions.as_slice(),
        [RecoveryAction::CreateInstance { instance, cluster, .. }]
            if instance == "billing-db-pitr-202611201429-1" && cluster == id
    ));
    f.recovered.get_mut(id).unwrap().instance = Presence::Available;
    let d = step(&p, &d.state, &RecoveryInput::Tick, &f, now());
    assert_eq!(d.state.get(id).unwrap().phase, Phase::Validating);
    assert!(matches!(
        d.actions.as_slice(),
        [RecoveryAction::RunChecks { .. }]
    ));
}

#[test]
fn a_lost_restore_is_issued_again_and_a_failed_one_reported() {
    let p = plan();
    let d = step(
        &p,
        &RecoveryBook::default(),
        &recover("orders-db", "2026-11-20T14:29:00Z"),
        &facts(),
        now(),
    );
    // A crash before the restore call: AWS shows nothing, the next tick issues it again.
    let again = step(&p, &d.state, &RecoveryInput::Tick, &facts(), now());
    assert!(matches!(
        again.actions.as_slice(),
        [RecoveryAction::Restore { .. }]
    ));
    let mut f = facts();
    f.recovered.insert(
        ID.into(),
        RecoveredFacts {
            resource: Presence::Creating,
            ..Default::default()
        },
    );
    let restoring = step(&p, &d.state, &RecoveryInput::Tick, &f, now());
    assert!(restoring.actions.is_empty());
    assert_eq!(restoring.state.get(ID).unwrap().phase, Phase::Restoring);
    // Seen restoring, then gone: deleted behind Lifeboat's back, not restored again.
    let mut gone = facts();
    gone.recovered.insert(ID.into(), RecoveredFacts::default());
    let vanished = step(&p, &restoring.state, &RecoveryInput::Tick, &gone, now());
    assert!(vanished.actions.is_empty());
    assert!(
        matches!(&vanished.state.get(ID).unwrap().phase, Phase::Failed { why } if why.contains("disappeared"))
    );
    // A namesake still being deleted: wait for its name.
    gone.recovered.get_mut(ID).unwrap().resource = Presence::Deleting;
    let waiting = step(&p, &d.state, &RecoveryInput::Tick, &gone, now());
    assert!(waiting.actions.is_empty());
    assert_eq!(waiting.state, d.state);
    f.recovered.get_mut(ID).unwrap().resource = Presence::Failed("incompatible-parameters".into());
    let d = step(&p, &d.state, &RecoveryInput::Tick, &f, now());
    assert!(
        matches!(&d.state.get(ID).unwrap().phase, Phase::Failed { why } if why == "incompatible-parameters")
    );
}

#[test]
fn discard_deletes_an_unused_recovery_once() {
    let p = plan();
    let book = ready(true);
    let d = step(
        &p,
        &book,
        &RecoveryInput::Command(RecoveryCommand::Discard {
            recovery: ID.into(),
        }),
        &facts(),
        now(),
    );
    assert_eq!(d.state.get(ID).unwrap().phase, Phase::Discarding);
    assert!(
        matches!(d.actions.as_slice(), [RecoveryAction::Delete { target, .. }] if target == ID)
    );
    let d = step(&p, &d.state, &RecoveryInput::Tick, &facts(), now());
    assert_eq!(d.state.get(ID).unwrap().phase, Phase::Discarded);
    assert!(d.actions.is_empty());
}

#[test]
fn commands_parse_from_the_function_event() {
    let c: RecoveryCommand = serde_json::from_str(
        r#"{"action": "recover", "resource": "orders-db", "restore_time": "2026-11-20T14:29:00Z", "reason": "bad migration"}"#,
    )
    .unwrap();
    assert!(matches!(c, RecoveryCommand::Recover { .. }));
    let c: RecoveryCommand = serde_json::from_str(
        r#"{"action": "cutover", "recovery": "x", "force": true, "reason": "r"}"#,
    )
    .unwrap();
    assert_eq!(
        c,
        RecoveryCommand::Cutover {
            recovery: "x".into(),
            force: true,
            reason: Some("r".into())
        }
    );
    assert!(serde_json::from_str::<RecoveryCommand>(r#"{"action": "recovery-status"}"#).is_ok());
    assert!(
        serde_json::from_str::<RecoveryCommand>(
            r#"{"action": "discard", "recovery": "x", "extra": 1}"#
        )
        .is_err()
    );
    assert_eq!(DrPhase::of(&crate::dr::DrState::default()), DrPhase::Normal);
}

// ---------------------------------------------------------------------------------------
// The single-writer property over failover, failback, recoveries and crashes.
//
// A compact world: the plan's primary `P`, its DR replica `D`, and the recovered
// databases. A database is reached by applications once any record has named it
// (cached answers and open connection pools outlive a record change); a writer is a
// database that accepts writes and is reached. Failover and failback are modelled by
// their step order (fence, promote, repoint) and asked `may_start` before starting; the
// recovery machine is the real `step`. A crash performs a step's actions but loses its
// state write, so the next event repeats it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DrOp {
    Fence,
    Promote,
    Repoint,
}

#[derive(Debug, Clone)]
struct World {
    plan: Plan,
    writable: BTreeMap<String, bool>,
    reached: BTreeMap<String, bool>,
    record: String,
    dr: DrPhase,
    op: Option<DrOp>,
    book: RecoveryBook,
    checks_fail: bool,
    checks_run: BTreeMap<String, bool>,
    now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
enum Ev {
    Alarm,
    Failback,
    DrStep { crash: bool },
    Recover(u8),
    Tick { crash: bool },
    Cutover { pick: u8, force: bool },
    Discard(u8),
    ChecksFail(bool),
    Adopt,
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        Just(Ev::Alarm),
        Just(Ev::Failback),
        any::<bool>().prop_map(|crash| Ev::DrStep { crash }),
        (0u8..4).prop_map(Ev::Recover),
        any::<bool>().prop_map(|crash| Ev::Tick { crash }),
        (any::<u8>(), any::<bool>()).prop_map(|(pick, force)| Ev::Cutover { pick, force }),
        any::<u8>().prop_map(Ev::Discard),
        any::<bool>().prop_map(Ev::ChecksFail),
        Just(Ev::Adopt),
    ]
}

impl World {
    fn new() -> Self {
        let set = |p: bool, d: bool| {
            BTreeMap::from([
                ("orders-db".to_string(), p),
                ("orders-db-dr".to_string(), d),
            ])
        };
        World {
            plan: plan(),
            writable: set(true, false),
            reached: set(true, false),
            record: "orders-db".into(),
            dr: DrPhase::Normal,
            op: None,
            book: RecoveryBook::default(),
            checks_fail: false,
            checks_run: BTreeMap::new(),
            now: now(),
        }
    }

    fn primary(&self) -> String {
        self.plan.resources[0].aws_identifier().to_string()
    }

    fn point(&mut self, target: &str) {
        self.record = target.into();
        self.reached.insert(target.into(), true);
    }

    fn writers(&self) -> Vec<&String> {
        self.writable
            .iter()
            .filter(|(db, w)| **w && self.reached.get(*db).copied().unwrap_or(false))
            .map(|(db, _)| db)
            .collect()
    }

    fn facts(&self) -> RecoveryFacts {
        let mut recovered = BTreeMap::new();
        for r in &self.book.recoveries {
            let fenced = r
                .cutover
                .as_ref()
                .is_some_and(|c| !self.writable.get(&c.fenced).copied().unwrap_or(false));
            recovered.insert(
                r.id.clone(),
                RecoveredFacts {
                    resource: if self.writable.contains_key(&r.id) {
                        Presence::Available
                    } else {
                        Presence::Missing
                    },
                    instance: Presence::Missing,
                    checks: self.checks_run.get(&r.id).map(|fail| CheckReport {
                        passed: vec![],
                        failed: if *fail { vec!["rows".into()] } else { vec![] },
                    }),
                    checks_so_far: None,
                    writer_fenced: fenced,
                    record_target: Some(self.record.clone()),
                },
            );
        }
        RecoveryFacts {
            dr: Some(self.dr),
            window: Some(RestorableWindow {
                earliest: self.now - Duration::days(1),
                latest: self.now - Duration::minutes(5),
            }),
            recovered,
        }
    }

    fn apply(&mut self, actions: &[RecoveryAction]) {
        for a in actions {
            match a {
                // A restored database accepts writes at once, but nothing reaches it yet.
                RecoveryAction::Restore { target, .. } => {
                    self.writable.insert(target.clone(), true);
                }
                RecoveryAction::CreateInstance { .. } => {}
                RecoveryAction::RunChecks { recovery, .. } => {
                    self.checks_run.insert(recovery.clone(), self.checks_fail);
                }
                RecoveryAction::Fence { writer, .. } => {
                    self.writable.insert(writer.clone(), false);
                }
                RecoveryAction::PointRecord { target, .. } => self.point(target),
                RecoveryAction::Delete { target, .. } => {
                    self.writable.remove(target);
                }
            }
        }
    }

    fn recovery_step(&mut self, input: RecoveryInput, crash: bool) -> RecoveryDecision {
        let d = step(&self.plan, &self.book, &input, &self.facts(), self.now);
        self.apply(&d.actions);
        if !crash {
            self.book = d.state.clone();
        }
        d
    }

    fn pick(&self, n: u8) -> Option<String> {
        let ids = self.book.ids();
        (!ids.is_empty()).then(|| ids[n as usize % ids.len()].clone())
    }

    fn event(&mut self, e: &Ev) {
        self.now += Duration::minutes(1);
        let replica = "orders-db-dr".to_string();
        match e {
            Ev::Alarm => {
                if self.dr == DrPhase::Normal
                    && may_start(WriterTask::Failover, self.dr, &self.book, &self.plan).is_ok()
                {
                    self.dr = DrPhase::FailingOver;
                    self.op = Some(DrOp::Fence);
                }
            }
            Ev::Failback => {
                if self.dr == DrPhase::FailedOver
                    && may_start(WriterTask::Failback, self.dr, &self.book, &self.plan).is_ok()
                {
                    self.dr = DrPhase::FailingBack;
                    self.op = Some(DrOp::Fence);
                }
            }
            Ev::DrStep { crash } => {
                let Some(op) = self.op else { return };
                let (from, to) = match self.dr {
                    DrPhase::FailingOver => (self.primary(), replica),
                    DrPhase::FailingBack => (replica, self.primary()),
                    _ => return,
                };
                let next = match op {
                    DrOp::Fence => {
                        self.writable.insert(from, false);
                        Some(DrOp::Promote)
                    }
                    DrOp::Promote => {
                        self.writable.insert(to, true);
                        Some(DrOp::Repoint)
                    }
                    DrOp::Repoint => {
                        self.point(&to);
                        None
                    }
                };
                if !crash {
                    self.op = next;
                    if next.is_none() {
                        self.dr = match self.dr {
                            DrPhase::FailingOver => DrPhase::FailedOver,
                            _ => DrPhase::Normal,
                        };
                    }
                }
            }
            Ev::Recover(minutes) => {
                let t = self.now - Duration::minutes(10 + i64::from(*minutes));
                self.recovery_step(
                    RecoveryInput::Command(RecoveryCommand::Recover {
                        resource: "orders-db".into(),
                        restore_time: rfc3339(t),
                        reason: "damage".into(),
                        assertions: vec![],
                    }),
                    false,
                );
            }
            Ev::Tick { crash } => {
                self.recovery_step(RecoveryInput::Tick, *crash);
            }
            Ev::Cutover { pick, force } => {
                if let Some(id) = self.pick(*pick) {
                    self.recovery_step(
                        RecoveryInput::Command(RecoveryCommand::Cutover {
                            recovery: id,
                            force: *force,
                            reason: force.then(|| "operator knows".into()),
                        }),
                        false,
                    );
                }
            }
            Ev::Discard(pick) => {
                if let Some(id) = self.pick(*pick) {
                    self.recovery_step(
                        RecoveryInput::Command(RecoveryCommand::Discard { recovery: id }),
                        false,
                    );
                }
            }
            Ev::ChecksFail(fail) => self.checks_fail = *fail,
            // The operator updates the plan to name the recovered writer, and a DR replica
            // of it is made (its old replica was of the damaged database).
            Ev::Adopt => {
                let Some(w) = self
                    .book
                    .recovered_writer("orders-db")
                    .map(|r| r.id.clone())
                else {
                    return;
                };
                if self.dr == DrPhase::Normal && self.book.cutting_over().is_none() {
                    self.plan.resources[0].identifier = Some(w);
                    self.writable.insert(replica.clone(), false);
                    self.reached.insert(replica, false);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// No sequence of failover, failback, recovery commands, ticks and crashes ever has
    /// two databases accepting writes that applications reach, and a cutover never runs
    /// beside a failover or failback.
    #[test]
    fn there_are_never_two_writers(events in proptest::collection::vec(ev(), 1..150)) {
        let mut w = World::new();
        for e in &events {
            w.event(e);
            let writers = w.writers();
            prop_assert!(writers.len() <= 1, "two writers {writers:?} after {e:?}: {w:?}");
            prop_assert!(
                w.book.cutting_over().is_none() || w.dr == DrPhase::Normal,
                "a cutover beside {:?}", w.dr
            );
            let cutting = w.book.recoveries.iter().filter(|r| matches!(r.phase, Phase::CuttingOver { .. })).count();
            prop_assert!(cutting <= 1, "two cutovers at once");
        }
    }

    /// Every refusal leaves the recoveries as they were.
    #[test]
    fn refusals_change_nothing(events in proptest::collection::vec(ev(), 1..60), cmd in ev()) {
        let mut w = World::new();
        for e in &events {
            w.event(e);
        }
        let input = match cmd {
            Ev::Cutover { pick, force } => match w.pick(pick) {
                Some(id) => RecoveryInput::Command(RecoveryCommand::Cutover { recovery: id, force, reason: None }),
                None => return Ok(()),
            },
            Ev::Discard(pick) => match w.pick(pick) {
                Some(id) => RecoveryInput::Command(RecoveryCommand::Discard { recovery: id }),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        let d = step(&w.plan, &w.book, &input, &w.facts(), w.now);
        if d.refused.is_some() {
            prop_assert_eq!(&d.state, &w.book);
            prop_assert!(d.actions.is_empty());
        }
    }
}

/// The property's world walks the whole path, so the property is not vacuous: recover,
/// cut over, adopt, fail over and back, with one writer throughout.
#[test]
fn the_model_walks_recovery_cutover_adoption_failover_and_failback() {
    let mut w = World::new();
    let tick = Ev::Tick { crash: false };
    let dr = Ev::DrStep { crash: false };
    for e in [
        Ev::Recover(0),
        tick.clone(),
        tick.clone(),
        Ev::Cutover {
            pick: 0,
            force: false,
        },
        Ev::Alarm, // refused: the cutover holds the lock
        tick.clone(),
        tick.clone(),
    ] {
        w.event(&e);
        assert!(w.writers().len() <= 1, "{e:?}: {w:?}");
    }
    assert_eq!(
        w.dr,
        DrPhase::Normal,
        "the alarm was refused during the cutover"
    );
    let id = w.book.recoveries[0].id.clone();
    assert_eq!(w.book.recoveries[0].phase, Phase::CutOver);
    assert_eq!(w.record, id);
    w.event(&Ev::Alarm);
    assert_eq!(
        w.dr,
        DrPhase::Normal,
        "refused until the plan names the recovered writer"
    );
    w.event(&Ev::Adopt);
    w.event(&Ev::Alarm);
    assert_eq!(w.dr, DrPhase::FailingOver);
    for _ in 0..3 {
        w.event(&dr);
    }
    assert_eq!(w.dr, DrPhase::FailedOver);
    assert_eq!(w.writers(), vec!["orders-db-dr"]);
    w.event(&Ev::Failback);
    for _ in 0..3 {
        w.event(&dr);
    }
    assert_eq!(w.dr, DrPhase::Normal);
    assert_eq!(w.writers(), vec![&id]);
}
