use super::*;
use crate::dr::DrState;
use crate::plan::parse_plan;
use crate::posture::{RecordFacts, ResourceFacts, StoreFacts};
use chrono::{Duration, TimeZone};
use proptest::prelude::*;

fn plan() -> Plan {
    parse_plan(include_str!("../../../infra/plans/local.json")).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn store(id: &str, region: &str, endpoint: &str, from: Option<&str>) -> StoreFacts {
    StoreFacts {
        identifier: id.into(),
        region: region.into(),
        status: "available".into(),
        engine: Some("postgres".into()),
        endpoint: Some(endpoint.into()),
        encrypted: true,
        replicates_from: from.map(str::to_string),
        replicas: vec![],
        point_in_time_recovery: Some(true),
    }
}

fn measurement(resource: &str, location: &str, age: i64, target: i64) -> RpoMeasurement {
    RpoMeasurement {
        resource: resource.into(),
        location: location.into(),
        newest: Some(format!("lifeboat-{resource}-x")),
        newest_at: Some(now() - Duration::seconds(age)),
        age_seconds: Some(age),
        target_seconds: target,
        breached: age > target,
    }
}

/// The local plan's world with everything in order.
fn healthy() -> ReadinessFacts {
    let p = plan();
    ReadinessFacts {
        posture: PostureFacts {
            resources: vec![
                ResourceFacts {
                    id: "orders-db".into(),
                    primary: Observed::Present(store(
                        "orders-db",
                        "us-east-1",
                        "orders-db.use1.example",
                        None,
                    )),
                    replica: Some(Observed::Present(store(
                        "orders-db-dr",
                        "us-west-2",
                        "orders-db-dr.usw2.example",
                        Some("arn:aws:rds:us-east-1:123456789012:db:orders-db"),
                    ))),
                    record: Some(Observed::Present(RecordFacts {
                        name: "orders-db.db.lifeboat.internal.".into(),
                        values: vec![("orders-db.use1.example".into(), None)],
                    })),
                },
                ResourceFacts {
                    id: "billing-db".into(),
                    primary: Observed::Present(store(
                        "billing-db",
                        "us-east-1",
                        "billing.use1.example",
                        None,
                    )),
                    replica: None,
                    record: None,
                },
                ResourceFacts {
                    id: "sessions".into(),
                    primary: Observed::Present(store(
                        "lifeboat-local-sessions",
                        "us-east-1",
                        "",
                        None,
                    )),
                    replica: None,
                    record: None,
                },
            ],
            zone: Observed::Present("Z1".into()),
            traffic: vec![],
            failover_state: Observed::Present("Normal".into()),
        },
        backups: Observed::Present(vec![
            measurement("orders-db", "us-east-1", 600, 7200),
            measurement("orders-db", "us-west-2", 900, 7200),
            measurement("billing-db", "us-east-1", 600, 7200),
            measurement("billing-db", "us-west-2", 900, 7200),
            measurement("sessions", "us-east-1", 3600, 86_400),
            measurement("sessions", "us-west-2 (export)", 7200, 86_400),
        ]),
        validated: vec![("orders-db".into(), Some(now() - Duration::hours(3)))],
        last_validation: vec![LastValidation {
            resource: "orders-db".into(),
            finished_at: now() - Duration::hours(3),
            passed: true,
            failure: None,
        }],
        lag: vec![LagFacts {
            resource: "orders-db".into(),
            lag_seconds: Observed::Present(2.0),
        }],
        alarms: p
            .failover
            .health_alarms
            .iter()
            .map(|a| (a, true))
            .chain(p.failback.gate_alarms.iter().map(|a| (a, false)))
            .map(|(a, health)| AlarmFacts {
                name: a.name.clone(),
                health,
                state: Observed::Present("OK".into()),
            })
            .collect(),
        dr_state: Observed::Present(DrState::default()),
        last_round_trip: Observed::Present(Some(now() - Duration::days(20))),
    }
}

fn failing(r: &Readiness) -> Vec<(&str, &str)> {
    r.failing()
        .into_iter()
        .map(|c| (c.subject.as_str(), c.item.as_str()))
        .collect()
}

#[test]
fn a_protected_world_passes_all_but_the_unvalidated_database() {
    let r = assess(&plan(), &healthy(), now());
    // billing-db has no validation checks in the local plan: its backups are unproven.
    assert_eq!(failing(&r), [("billing-db", "backups proven by restore")]);
    assert!(!r.has_critical_failure());
    assert!(r.score >= 95 && r.score < 100, "score {}", r.score);
    for area in [
        Area::Backups,
        Area::Replication,
        Area::Infrastructure,
        Area::Monitoring,
        Area::Documentation,
        Area::Testing,
    ] {
        assert!(
            r.checks.iter().any(|c| c.area == area),
            "no {area} check in {:#?}",
            r.checks
        );
    }
    let text = render(&r);
    assert!(text.contains(&format!("{}/100", r.score)), "{text}");
    assert!(
        text.contains("[ok  ] orders-db: recent backup in us-west-2"),
        "{text}"
    );
    assert!(text.contains("add `validation` checks"), "{text}");
}

#[test]
fn with_every_database_validated_the_score_is_100() {
    let mut p = plan();
    let checks = p.resources[0].validation.clone();
    p.resources[1].validation = checks;
    let mut facts = healthy();
    facts
        .validated
        .push(("billing-db".into(), Some(now() - Duration::hours(30))));
    let r = assess(&p, &facts, now());
    assert_eq!(failing(&r), []);
    assert_eq!(r.score, 100);
}

#[test]
fn a_breached_backup_is_critical_and_says_how_to_take_one() {
    let mut facts = healthy();
    facts.backups = Observed::Present(vec![measurement("orders-db", "us-west-2", 9000, 7200)]);
    let r = assess(&plan(), &facts, now());
    assert!(r.has_critical_failure());
    let c = r.failing()[0];
    assert_eq!(
        (c.subject.as_str(), c.item.as_str()),
        ("orders-db", "recent backup in us-west-2")
    );
    assert!(c.found.contains("2 h old; objective 2 h"), "{}", c.found);
    assert!(
        c.fix
            .as_deref()
            .unwrap()
            .contains("{\"resource\": \"orders-db\"}")
    );
}

#[test]
fn unlistable_backups_fail_rather_than_pass_silently() {
    let mut facts = healthy();
    facts.backups = Observed::Unknown {
        reason: "AccessDenied".into(),
    };
    let r = assess(&plan(), &facts, now());
    assert!(failing(&r).contains(&("plan", "backups listed")));
    assert!(r.has_critical_failure());
}

#[test]
fn copies_must_go_to_the_dr_region() {
    let mut p = plan();
    p.snapshots.copy_to.clear();
    let r = assess(&p, &healthy(), now());
    assert!(failing(&r).contains(&("plan", "snapshots copied to the DR region us-west-2")));
}

#[test]
fn replica_lag_beyond_the_guard_or_unmeasured_fails() {
    let mut facts = healthy();
    facts.lag[0].lag_seconds = Observed::Present(45.0);
    let r = assess(&plan(), &facts, now());
    let c = r
        .checks
        .iter()
        .find(|c| c.item == "replica lag within the failover guard")
        .unwrap();
    assert!(!c.passed);
    assert!(
        c.found
            .contains("45 s behind; automatic failover allows 30 s"),
        "{}",
        c.found
    );

    facts.lag[0].lag_seconds = Observed::Missing;
    let r = assess(&plan(), &facts, now());
    assert!(failing(&r).contains(&("orders-db", "replica lag within the failover guard")));
}

#[test]
fn a_missing_replica_fails_under_replication() {
    let mut facts = healthy();
    facts.posture.resources[0].replica = Some(Observed::Missing);
    let r = assess(&plan(), &facts, now());
    let c = r.failing()[0];
    assert_eq!(c.area, Area::Replication);
    assert_eq!(c.concern, Concern::Critical);
    assert!(c.item.contains("does not exist"), "{}", c.item);
    assert!(
        !r.checks
            .iter()
            .any(|c| c.passed && c.item == "DR replica exists, replicates and is available")
    );
}

#[test]
fn running_in_the_dr_region_is_not_protected() {
    let mut facts = healthy();
    let failed_over = DrState::FailedOver(crate::failover::FailedOver {
        incident: "i-1".into(),
        since: now() - Duration::hours(2),
        cooldown_until: Some(now() + Duration::minutes(30)),
        measurement: crate::failover::RecoveryMeasurement {
            rto_seconds: 300,
            rto_target_seconds: 1800,
            detection_seconds: 60,
            aws_seconds: 200,
            approval_seconds: 0,
            lifeboat_seconds: 40,
            data_loss_seconds: Some(2.0),
            rpo_target_seconds: 900,
        },
        targets: vec![],
        forced: None,
        detection: None,
    });
    facts.dr_state = Observed::Present(failed_over);
    let r = assess(&plan(), &facts, now());
    let state = r
        .checks
        .iter()
        .find(|c| c.item == "DR state Normal (protected)")
        .unwrap();
    assert!(!state.passed);
    assert!(state.fix.as_deref().unwrap().contains("\"start\""));
    // No lag is judged while the DR side serves: the state check says what matters.
    assert!(!r.checks.iter().any(|c| c.item.starts_with("replica lag")));
    let cooldown = r
        .checks
        .iter()
        .find(|c| c.item == "no failover cooldown in force")
        .unwrap();
    assert!(!cooldown.passed);
    assert!(
        cooldown.found.contains("30 min from now"),
        "{}",
        cooldown.found
    );
    assert!(cooldown.fix.as_deref().unwrap().contains("\"ack\""));
}

#[test]
fn missing_alarms_and_records_are_monitoring_failures() {
    let mut facts = healthy();
    facts.alarms[0].state = Observed::Missing;
    facts.posture.resources[0].record = Some(Observed::Missing);
    let r = assess(&plan(), &facts, now());
    let f = failing(&r);
    assert!(
        f.contains(&(
            "plan",
            "health alarm (starts failovers) orders-db-primary-unhealthy"
        )),
        "{f:?}"
    );
    let record = r
        .failing()
        .into_iter()
        .find(|c| c.subject == "orders-db" && c.area == Area::Monitoring)
        .expect("the missing record fails under monitoring");
    assert_eq!(record.concern, Concern::Critical);
}

#[test]
fn stale_validation_and_exercise_fail_with_their_age() {
    let mut facts = healthy();
    facts.validated[0].1 = Some(now() - Duration::hours(50));
    facts.last_validation[0].finished_at = now() - Duration::hours(50);
    facts.last_round_trip = Observed::Present(Some(now() - Duration::days(200)));
    let r = assess(&plan(), &facts, now());
    let v = r
        .checks
        .iter()
        .find(|c| c.subject == "orders-db" && c.item == "backups proven by restore")
        .unwrap();
    assert!(!v.passed);
    assert!(
        v.found.contains("2 days ago; validated every 24 h"),
        "{}",
        v.found
    );
    let e = r
        .checks
        .iter()
        .find(|c| c.item.starts_with("failover and failback exercised"))
        .unwrap();
    assert!(!e.passed);
    assert!(e.found.contains("200 days"), "{}", e.found);
}

#[test]
fn undocumented_plans_get_warnings_not_criticals() {
    let mut p = plan();
    p.documentation = Default::default();
    let r = assess(&p, &healthy(), now());
    let docs: Vec<&Check> = r
        .failing()
        .into_iter()
        .filter(|c| c.area == Area::Documentation)
        .collect();
    assert_eq!(docs.len(), 3);
    assert!(docs.iter().all(|c| c.concern == Concern::Warning));
    assert!(!r.has_critical_failure());
}

/// Ways to break a healthy world, one flag each.
fn degrade(facts: &mut ReadinessFacts, p: &mut Plan, flags: &[bool]) {
    if flags[0] {
        facts.backups = Observed::Unknown {
            reason: "down".into(),
        };
    }
    if flags[1] {
        facts.lag[0].lag_seconds = Observed::Present(1000.0);
    }
    if flags[2] {
        facts.alarms[0].state = Observed::Missing;
    }
    if flags[3] {
        facts.validated.clear();
        facts.last_validation.clear();
    }
    if flags[4] {
        facts.last_round_trip = Observed::Present(None);
    }
    if flags[5] {
        p.documentation = Default::default();
    }
    if flags[6] {
        facts.posture.resources[0].replica = Some(Observed::Missing);
    }
    if flags[7] {
        facts.dr_state = Observed::Unknown {
            reason: "throttled".into(),
        };
    }
}

proptest! {
    #[test]
    fn breaking_things_never_raises_the_score(
        flags in proptest::collection::vec(any::<bool>(), 8),
        more in proptest::collection::vec(any::<bool>(), 8),
    ) {
        let (mut p, mut f) = (plan(), healthy());
        degrade(&mut f, &mut p, &flags);
        let some = assess(&p, &f, now());
        let both: Vec<bool> = flags.iter().zip(&more).map(|(a, b)| *a || *b).collect();
        let (mut p2, mut f2) = (plan(), healthy());
        degrade(&mut f2, &mut p2, &both);
        let worse = assess(&p2, &f2, now());
        prop_assert!(some.score <= 100);
        prop_assert!(worse.score <= some.score, "{} then {}", some.score, worse.score);
        // Every check failing has a fix; every passing one has none.
        for c in &worse.checks {
            prop_assert_eq!(c.passed, c.fix.is_none(), "{:?}", c);
        }
        // The same facts always give the same report.
        prop_assert_eq!(assess(&p2, &f2, now()), worse);
    }
}

#[test]
fn facts_and_report_serialise_for_the_stored_report() {
    let facts = healthy();
    let v = serde_json::to_value(&facts).expect("facts serialise");
    assert_eq!(
        v["posture"]["zone"],
        serde_json::json!({"found": "present", "value": "Z1"})
    );
    let back: ReadinessFacts = serde_json::from_value(v).expect("and read back");
    assert_eq!(back, facts);
    let r = assess(&plan(), &facts, now());
    let back: Readiness = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_failed_last_validation_fails_even_with_an_older_validated_snapshot() {
    let mut facts = healthy();
    facts.last_validation[0] = LastValidation {
        resource: "orders-db".into(),
        finished_at: now() - Duration::minutes(30),
        passed: false,
        failure: Some("orders is empty (required at least 1 row)".into()),
    };
    let r = assess(&plan(), &facts, now());
    let c = r
        .checks
        .iter()
        .find(|c| c.subject == "orders-db" && c.item == "backups proven by restore")
        .unwrap();
    assert!(!c.passed);
    assert_eq!(c.concern, Concern::Critical);
    assert!(
        c.found.contains("30 min ago, FAILED: orders is empty"),
        "{}",
        c.found
    );
    assert!(r.has_critical_failure());
}
