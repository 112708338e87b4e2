//! The validation machine's pure decisions: examples, then properties (proptest).

use super::*;
use crate::plan::{ResourceValidation, parse_plan};
use chrono::TimeZone;
use proptest::prelude::*;

fn plan() -> Plan {
    let mut plan = parse_plan(include_str!("../../../infra/plans/local.json")).unwrap();
    // Aurora too: the billing cluster gets checks.
    let orders = plan.resource("orders-db").unwrap().validation.clone();
    let billing = plan
        .resources
        .iter_mut()
        .find(|r| r.id == "billing-db")
        .unwrap();
    billing.validation = orders.map(|v| ResourceValidation {
        database: "billing".into(),
        ..v
    });
    plan
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn snapshot(plan: &Plan, resource: &str, id: &str, region: &str, hours_ago: i64) -> BackupRecord {
    let kind = BackupKind::of(plan.resource(resource).unwrap().kind);
    BackupRecord {
        id: id.into(),
        arn: Some(format!("arn:aws:rds:{region}:123456789012:snapshot:{id}")),
        kind,
        location: region.into(),
        source: resource.into(),
        created_at: Some(t0() - Duration::hours(hours_ago)),
        status: BackupStatus::Available,
        automated: false,
        copy_of: None,
        tags: BTreeMap::from([
            (PLAN_TAG.to_string(), plan.name.clone()),
            (RESOURCE_TAG.to_string(), resource.to_string()),
        ]),
    }
}

fn listing(plan: &Plan) -> Vec<BackupRecord> {
    let mut newest_primary = snapshot(plan, "orders-db", "in-primary", "us-east-1", 0);
    newest_primary.location = "us-east-1".into();
    let mut creating = snapshot(plan, "orders-db", "creating", "us-west-2", 0);
    creating.status = BackupStatus::InProgress("copying".into());
    let mut foreign = snapshot(plan, "orders-db", "other-plan", "us-west-2", 0);
    foreign.tags.insert(PLAN_TAG.into(), "someone-else".into());
    vec![
        snapshot(plan, "orders-db", "old", "us-west-2", 30),
        snapshot(plan, "orders-db", "newest-dr", "us-west-2", 2),
        newest_primary,
        creating,
        foreign,
        snapshot(plan, "billing-db", "billing-dr", "us-west-2", 1),
    ]
}

fn started(plan: &Plan, resource: &str) -> ValidationDoc {
    let r = plan.resource(resource).unwrap();
    let facts = Facts {
        snapshots: Some(Ok(listing(plan))),
        ..Facts::default()
    };
    decide(
        plan,
        r,
        &ValidationDoc::default(),
        &ValidationInput::Schedule,
        &facts,
        t0(),
    )
    .doc
}

fn temp(instance: Option<&str>, cluster: Option<&str>) -> Facts {
    let view = |s: &str| DbView {
        status: s.into(),
        endpoint: Some(Endpoint {
            host: "h".into(),
            port: 5432,
        }),
    };
    Facts {
        temp: TempFacts {
            instance: instance.map(view),
            cluster: cluster.map(view),
            unreadable: None,
        },
        snapshots: None,
    }
}

fn at_phase(plan: &Plan, resource: &str, phase: Phase) -> ValidationDoc {
    let mut doc = started(plan, resource);
    let run = doc.run.as_mut().unwrap();
    run.phase = phase;
    run.restore_requested_at = Some(t0() + Duration::seconds(1));
    doc
}

#[test]
fn the_schedule_starts_with_the_newest_available_copy_of_this_plan_in_the_dr_region() {
    let plan = plan();
    let doc = started(&plan, "orders-db");
    let run = doc.run.unwrap();
    assert_eq!(run.snapshot.id, "newest-dr");
    assert_eq!(run.snapshot.region, "us-west-2");
    assert_eq!(run.phase, Phase::Restore);
    assert_eq!(run.instance, "lbval-orders-db-261125100000");
    assert_eq!(run.cluster, None);
    assert_eq!(run.deadline, t0() + Duration::minutes(60));
    assert_eq!(run.tags(&plan.name)[PURPOSE_TAG], PURPOSE_VALIDATION);

    let mut primary = plan.clone();
    primary.validation.restore_from = RestoreFrom::Primary;
    let r = primary.resource("orders-db").unwrap();
    let records = listing(&primary);
    let picked = pick_snapshot(&primary, r, &records, None).unwrap();
    assert_eq!(picked.id, "in-primary");
}

#[test]
fn aurora_runs_restore_a_cluster_and_create_an_instance_in_it() {
    let plan = plan();
    let doc = started(&plan, "billing-db");
    let run = doc.run.as_ref().unwrap();
    assert_eq!(
        run.cluster.as_deref(),
        Some("lbval-billing-db-261125100000")
    );
    assert_eq!(run.instance, "lbval-billing-db-261125100000-1");
    let r = plan.resource("billing-db").unwrap();
    let doc = at_phase(&plan, "billing-db", Phase::AwaitRestore);
    let d = decide(
        &plan,
        r,
        &doc,
        &ValidationInput::Tick,
        &temp(None, Some("available")),
        t0(),
    );
    assert_eq!(d.actions, [Action::CreateInstance]);
    let after = absorb(
        &d.doc,
        &[(Action::CreateInstance, ActionOutcome::Done)],
        t0(),
    );
    let d = decide(
        &plan,
        r,
        &after,
        &ValidationInput::Tick,
        &temp(None, Some("available")),
        t0(),
    );
    assert!(d.actions.is_empty(), "the instance is not created twice");
    let d = decide(
        &plan,
        r,
        &after,
        &ValidationInput::Tick,
        &temp(Some("available"), Some("available")),
        t0() + Duration::minutes(12),
    );
    assert_eq!(d.doc.run.unwrap().phase, Phase::Check);
}

#[test]
fn nothing_starts_when_not_due_and_an_operator_cannot_start_a_second_run() {
    let plan = plan();
    let r = plan.resource("orders-db").unwrap();
    let doc = ValidationDoc {
        last: Some(LastRun {
            run: "x".into(),
            started_at: t0() - Duration::hours(23),
            finished_at: t0() - Duration::hours(22),
            passed: true,
            snapshot: "s".into(),
            restore_seconds: Some(600),
            failure: None,
            report: None,
        }),
        ..ValidationDoc::default()
    };
    assert!(!is_due(&plan, &doc, t0()));
    let d = decide(
        &plan,
        r,
        &doc,
        &ValidationInput::Schedule,
        &Facts::default(),
        t0(),
    );
    assert!(d.doc.run.is_none() && d.actions.is_empty() && !d.refused);
    assert!(is_due(&plan, &doc, t0() + Duration::hours(1)));

    let running = started(&plan, "orders-db");
    let d = decide(
        &plan,
        r,
        &running,
        &ValidationInput::Validate {
            resource: "orders-db".into(),
            snapshot: None,
        },
        &Facts::default(),
        t0(),
    );
    assert!(d.refused);
    assert!(d.reply.contains("already in progress"), "{}", d.reply);
    assert_eq!(d.doc, running);
}

#[test]
fn a_named_snapshot_must_exist_and_be_available() {
    let plan = plan();
    let r = plan.resource("orders-db").unwrap();
    let records = listing(&plan);
    assert_eq!(
        pick_snapshot(&plan, r, &records, Some("old")).unwrap().id,
        "old"
    );
    // An operator may spell an RDS snapshot in any case, as RDS takes it.
    assert_eq!(
        pick_snapshot(&plan, r, &records, Some("OLD")).unwrap().id,
        "old"
    );
    let err = pick_snapshot(&plan, r, &records, Some("nope")).unwrap_err();
    assert!(matches!(err, NoSnapshot::NotFound { .. }), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("\"nope\" of orders-db was not found in us-west-2"),
        "{err}"
    );
    // A snapshot of another database, named as this one's, is not restored.
    let mut records = records;
    let mut unrelated = snapshot(&plan, "orders-db", "unrelated-snap", "us-west-2", 1);
    unrelated.source = "someone-elses-db".into();
    unrelated.tags.clear();
    records.push(unrelated);
    let err = pick_snapshot(&plan, r, &records, Some("unrelated-snap")).unwrap_err();
    assert!(
        matches!(err, NoSnapshot::OfAnotherDatabase { .. }),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("was taken of \"someone-elses-db\", not of orders-db"),
        "{err}"
    );
    let mut upper = snapshot(&plan, "orders-db", "by-hand", "us-west-2", 1);
    upper.source = "ORDERS-DB".into();
    records.push(upper);
    assert_eq!(
        pick_snapshot(&plan, r, &records, Some("by-hand"))
            .unwrap()
            .id,
        "by-hand"
    );
    let err = pick_snapshot(&plan, r, &records, Some("creating")).unwrap_err();
    assert!(matches!(err, NoSnapshot::NotAvailable { .. }), "{err:?}");
    let err = err.to_string();
    assert!(err.contains("is copying"), "{err}");
    let err = pick_snapshot(&plan, r, &[], None).unwrap_err();
    assert!(matches!(err, NoSnapshot::NoneAvailable { .. }), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("no available Lifeboat snapshot in us-west-2"),
        "{err}"
    );
}

#[test]
fn a_restore_already_accepted_is_not_issued_again() {
    let plan = plan();
    let r = plan.resource("orders-db").unwrap();
    let doc = started(&plan, "orders-db");
    let d = decide(
        &plan,
        r,
        &doc,
        &ValidationInput::Tick,
        &temp(None, None),
        t0(),
    );
    assert_eq!(d.actions, [Action::Restore]);
    // The restore went through but the invocation died before storing it.
    let d = decide(
        &plan,
        r,
        &doc,
        &ValidationInput::Tick,
        &temp(Some("creating"), None),
        t0(),
    );
    assert!(d.actions.is_empty());
    assert_eq!(d.doc.run.unwrap().phase, Phase::AwaitRestore);
}

#[test]
fn waiting_ends_when_available_and_the_restore_time_is_measured() {
    let plan = plan();
    let r = plan.resource("orders-db").unwrap();
    let doc = at_phase(&plan, "orders-db", Phase::AwaitRestore);
    let d = decide(
        &plan,
        r,
        &doc,
        &ValidationInput::Tick,
        &temp(Some("creating"), None),
        t0(),
    );
    assert_eq!((d.actions.len(), d.next), (0, Next::Wait));
    let later = t0() + Duration::minutes(21);
    let d = decide(
        &plan,
        r,
        &doc,
        &ValidationInput::Tick,
        &temp(Some("available"), None),
        later,
    );
    let run = d.doc.run.unwrap();
    assert_eq!(run.phase, Phase::Check);
    assert_eq!(run.restore_seconds(), Some(21 * 60 - 1));
    assert_eq!(run.endpoint.unwrap().port, 5432);
}

#[test]
fn failures_and_the_deadline_go_to_cleanup() {
    let plan = plan();
    let r = plan.resource("orders-db").unwrap();
    let doc = at_phase(&plan, "orders-db", Phase::AwaitRestore);
    let d = decide(
        &plan,
        r,
        &doc,
        &ValidationInput::Tick,
        &temp(Some("incompatible-restore"), None),
        t0(),
    );
    let run = d.doc.run.unwrap();
    assert_eq!(run.phase, Phase::Cleanup);
    assert!(run.failure.unwrap().contains("incompatible-restore"));

    let late = t0() + Duration::minutes(60);
    let d = decide(
        &plan,
        r,
        &doc,
        &ValidationInput::Tick,
        &temp(Some("creating"), None),
        late,
    );
    let run = d.doc.run.unwrap();
    assert_eq!(run.phase, Phase::Cleanup);
    assert!(
        run.failure
            .unwrap()
            .contains("exceeded its deadline (60 min)")
    );

    let refused = absorb(
        &doc,
        &[(
            Action::Restore,
            ActionOutcome::Failed {
                reason: "InvalidParameterCombination".into(),
                retry: Retry::NonRetryable,
            },
        )],
        t0(),
    );
    assert_eq!(refused.run.unwrap().phase, Phase::Cleanup);
    let throttled = absorb(
        &doc,
        &[(
            Action::Restore,
            ActionOutcome::Failed {
                reason: "Throttling".into(),
                retry: Retry::Retryable,
            },
        )],
        t0(),
    );
    assert_eq!(throttled.run.unwrap().phase, Phase::AwaitRestore);
}

#[test]
fn cleanup_deletes_the_instance_then_the_cluster_then_records() {
    let plan = plan();
    let r = plan.resource("billing-db").unwrap();
    let doc = at_phase(&plan, "billing-db", Phase::Cleanup);
    let step = |f: Facts| decide(&plan, r, &doc, &ValidationInput::Tick, &f, t0());
    assert_eq!(
        step(temp(Some("available"), Some("available"))).actions,
        [Action::DeleteInstance]
    );
    let d = step(temp(Some("deleting"), Some("available")));
    assert!(
        d.actions.is_empty() && d.next == Next::Wait,
        "the cluster waits for its instance"
    );
    assert_eq!(
        step(temp(None, Some("available"))).actions,
        [Action::DeleteCluster]
    );
    let d = step(temp(None, Some("deleting")));
    assert_eq!(d.doc.run.as_ref().unwrap().phase, Phase::Record);
    let d = decide(
        &plan,
        r,
        &d.doc,
        &ValidationInput::Tick,
        &temp(None, None),
        t0(),
    );
    assert_eq!(d.actions, [Action::Record]);
    let done = absorb(
        &d.doc,
        &[(
            Action::Record,
            ActionOutcome::Recorded {
                report: Some("s3://r".into()),
            },
        )],
        t0(),
    );
    assert!(done.run.is_none());
    let last = done.last.unwrap();
    assert!(!last.passed, "no check ran");
    assert_eq!(last.report.as_deref(), Some("s3://r"));
}

#[test]
fn a_run_passes_only_when_every_check_passed() {
    let plan = plan();
    let mut run = started(&plan, "orders-db").run.unwrap();
    assert!(!run.passed());
    let ok = CheckResult {
        name: "table users".into(),
        kind: CheckKind::TableRows,
        passed: true,
        observed: Some("1".into()),
        expected: Some(">= 1".into()),
        detail: "table users holds at least 1 rows".into(),
        millis: 1,
    };
    run.results = vec![ok.clone()];
    assert!(run.passed());
    assert_eq!(run.failure_summary(), None);
    run.results.push(CheckResult {
        passed: false,
        detail: "table orders is empty (1 rows required)".into(),
        ..ok
    });
    assert!(!run.passed());
    assert_eq!(
        run.failure_summary().unwrap(),
        "table orders is empty (1 rows required)"
    );
}

fn phase() -> impl Strategy<Value = Phase> {
    prop_oneof![
        Just(Phase::Restore),
        Just(Phase::AwaitRestore),
        Just(Phase::Check),
        Just(Phase::Cleanup),
        Just(Phase::Record),
    ]
}

fn status() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("creating")),
        Just(Some("available")),
        Just(Some("deleting")),
        Just(Some("failed")),
        Just(Some("modifying")),
    ]
}

fn input() -> impl Strategy<Value = ValidationInput> {
    prop_oneof![
        Just(ValidationInput::Schedule),
        Just(ValidationInput::Tick),
        Just(ValidationInput::Validate {
            resource: "orders-db".into(),
            snapshot: None
        }),
    ]
}

proptest! {
    #[test]
    fn past_the_deadline_nothing_is_created_or_queried(
        aurora in any::<bool>(),
        phase in phase(),
        instance in status(),
        cluster in status(),
        minutes in 0i64..200,
    ) {
        let plan = plan();
        let id = if aurora { "billing-db" } else { "orders-db" };
        let r = plan.resource(id).unwrap();
        let doc = at_phase(&plan, id, phase);
        let now = t0() + Duration::minutes(minutes);
        let d = decide(&plan, r, &doc, &ValidationInput::Tick, &temp(instance, cluster), now);
        prop_assert!(d.actions.len() <= 1);
        if now >= doc.run.as_ref().unwrap().deadline {
            for a in &d.actions {
                prop_assert!(
                    matches!(a, Action::DeleteInstance | Action::DeleteCluster | Action::Record),
                    "{a:?} after the deadline"
                );
            }
        }
    }

    #[test]
    fn nothing_is_recorded_while_a_temporary_database_stands(
        aurora in any::<bool>(),
        phase in phase(),
        instance in status(),
        cluster in status(),
        minutes in 0i64..200,
    ) {
        let plan = plan();
        let id = if aurora { "billing-db" } else { "orders-db" };
        let r = plan.resource(id).unwrap();
        let doc = at_phase(&plan, id, phase);
        let facts = temp(instance, cluster);
        let now = t0() + Duration::minutes(minutes);
        let d = decide(&plan, r, &doc, &ValidationInput::Tick, &facts, now);
        let standing = |v: &Option<DbView>| v.as_ref().is_some_and(|v| v.status != "deleting");
        let leftovers = standing(&facts.temp.instance) || (aurora && standing(&facts.temp.cluster));
        if phase < Phase::Record && leftovers {
            prop_assert!(d.doc.run.as_ref().unwrap().phase != Phase::Record);
            prop_assert!(!d.actions.contains(&Action::Record));
        }
    }

    #[test]
    fn a_restore_is_issued_only_when_nothing_was_restored_yet(
        aurora in any::<bool>(),
        phase in phase(),
        instance in status(),
        cluster in status(),
        input in input(),
    ) {
        let plan = plan();
        let id = if aurora { "billing-db" } else { "orders-db" };
        let r = plan.resource(id).unwrap();
        let doc = at_phase(&plan, id, phase);
        let facts = temp(instance, cluster);
        let d = decide(&plan, r, &doc, &input, &facts, t0());
        if d.actions.contains(&Action::Restore) {
            let top = if aurora { &facts.temp.cluster } else { &facts.temp.instance };
            prop_assert!(top.is_none());
            prop_assert_eq!(phase, Phase::Restore);
        }
        if matches!(input, ValidationInput::Validate { .. }) {
            prop_assert!(d.refused && d.actions.is_empty(), "an operator never starts a second run");
        }
    }

    #[test]
    fn the_picked_snapshot_is_the_newest_available_of_the_resource(
        ages in proptest::collection::vec((0i64..500, any::<bool>(), any::<bool>()), 0..12),
    ) {
        let plan = plan();
        let r = plan.resource("orders-db").unwrap();
        let records: Vec<BackupRecord> = ages
            .iter()
            .enumerate()
            .map(|(i, (age, available, ours))| {
                let mut s = snapshot(&plan, "orders-db", &format!("s{i}"), "us-west-2", *age);
                if !available {
                    s.status = BackupStatus::InProgress("copying".into());
                }
                if !ours {
                    s.tags.remove(PLAN_TAG);
                }
                s
            })
            .collect();
        let eligible: Vec<&BackupRecord> = records
            .iter()
            .filter(|s| s.status == BackupStatus::Available && s.belongs_to(&plan.name))
            .collect();
        match pick_snapshot(&plan, r, &records, None) {
            Ok(p) => {
                prop_assert!(eligible.contains(&p));
                prop_assert!(eligible.iter().all(|s| s.created_at <= p.created_at));
            }
            Err(_) => prop_assert!(eligible.is_empty()),
        }
    }
}

fn result(i: usize, passed: bool) -> CheckResult {
    CheckResult {
        name: format!("check {i}"),
        kind: CheckKind::Assertion,
        passed,
        observed: None,
        expected: None,
        detail: format!("check {i}"),
        millis: 0,
    }
}

proptest! {
    /// Checks taken over any number of actions, each resuming where the last stopped,
    /// end with the results of one action that took them all: none lost, none twice,
    /// finished exactly when the last is taken.
    #[test]
    fn checks_taken_in_slices_end_as_if_taken_at_once(
        outcomes in proptest::collection::vec(proptest::option::of(any::<bool>()), 0..12),
        slices in proptest::collection::vec(0usize..4, 1..20),
    ) {
        let planned = outcomes.len();
        let mut at_once = CheckProgress::default().resumed_for(planned);
        for (i, o) in outcomes.iter().enumerate() {
            at_once.take(o.map(|p| result(i, p)));
        }
        prop_assert!(at_once.finished || planned == 0);
        let mut progress = CheckProgress::default();
        for slice in slices.iter().copied().chain(std::iter::once(usize::MAX)) {
            if progress.finished {
                break;
            }
            // What the store keeps between actions is what resumes.
            let stored = serde_json::to_string(&progress).unwrap();
            progress = serde_json::from_str::<CheckProgress>(&stored).unwrap().resumed_for(planned);
            let start = progress.taken.len();
            for (i, o) in outcomes.iter().enumerate().skip(start).take(slice) {
                prop_assert!(!progress.finished);
                progress.take(o.map(|p| result(i, p)));
            }
            prop_assert_eq!(progress.finished, progress.taken.len() == planned && planned > 0);
        }
        prop_assert_eq!(progress.results(), at_once.results());
    }

    /// A changed plan (another number of checks) starts the checks over; a finished run
    /// is never resumed into a second one.
    #[test]
    fn progress_for_other_checks_starts_over(taken in 0usize..6, planned in 0usize..8, other in 0usize..8) {
        let mut p = CheckProgress::default().resumed_for(planned);
        for i in 0..taken.min(planned) {
            p.take(Some(result(i, true)));
        }
        let resumed = p.clone().resumed_for(other);
        if other == planned && !p.finished {
            prop_assert_eq!(resumed, p);
        } else {
            prop_assert!(resumed.taken.is_empty() && !resumed.finished && resumed.planned == other);
        }
    }
}

#[test]
fn checks_ended_by_a_lost_session_are_finished_with_the_reason_last() {
    let mut p = CheckProgress::default().resumed_for(3);
    p.take(Some(result(0, true)));
    p.end(CheckResult::error(
        "connect",
        CheckKind::Connect,
        "the connection failed",
    ));
    assert!(p.finished);
    let names: Vec<String> = p.results().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["check 0", "connect"]);
}

#[test]
fn an_unreadable_look_waits_and_a_lost_or_failed_database_goes_to_cleanup() {
    let plan = plan();
    let r = plan.resource("orders-db").unwrap();
    let doc = at_phase(&plan, "orders-db", Phase::AwaitRestore);
    let tick = |doc: &ValidationDoc, facts: &Facts, at| {
        decide(&plan, r, doc, &ValidationInput::Tick, facts, at)
    };

    let mut unseen = temp(Some("available"), None);
    unseen.temp.unreadable = Some("Throttling".into());
    let d = tick(&doc, &unseen, t0());
    assert_eq!((d.next, d.actions.len()), (Next::Wait, 0));
    let run = d.doc.run.unwrap();
    assert_eq!(run.phase, Phase::AwaitRestore, "nothing is decided unseen");
    assert_eq!(run.last_error.as_deref(), Some("Throttling"));

    let d = tick(&doc, &temp(None, None), t0() + Duration::minutes(2));
    assert_eq!(
        d.next,
        Next::Wait,
        "RDS lists a new instance late sometimes"
    );
    assert_eq!(d.doc.run.unwrap().phase, Phase::AwaitRestore);
    let d = tick(&doc, &temp(None, None), t0() + Duration::minutes(7));
    let run = d.doc.run.unwrap();
    assert_eq!((run.phase, d.next), (Phase::Cleanup, Next::Continue));
    assert!(run.failure.unwrap().contains("never appeared"));

    let aurora = plan.resource("billing-db").unwrap();
    let doc = at_phase(&plan, "billing-db", Phase::AwaitRestore);
    let d = decide(
        &plan,
        aurora,
        &doc,
        &ValidationInput::Tick,
        &temp(Some("creating"), Some("available")),
        t0(),
    );
    assert_eq!(d.next, Next::Wait);
    assert_eq!(d.doc.run.unwrap().phase, Phase::AwaitRestore);
    let d = decide(
        &plan,
        aurora,
        &doc,
        &ValidationInput::Tick,
        &temp(Some("failed"), Some("available")),
        t0(),
    );
    let run = d.doc.run.unwrap();
    assert_eq!(run.phase, Phase::Cleanup);
    assert!(
        run.failure
            .unwrap()
            .contains("instance of the restored cluster")
    );
}
