use super::*;
use crate::plan::parse_plan;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;
use serde_json::json;

const LOCAL: &str = include_str!("../../../infra/plans/local.json");
pub(crate) const STOP_ALARM: &str = "orders-api-customer-errors";

/// The local plan (orders-db: RTO 30 min, RPO 15 min, replicated) with game days allowed.
pub(crate) fn plan() -> Plan {
    let mut p: serde_json::Value = serde_json::from_str(LOCAL).unwrap();
    p["game_days"] = json!({
        "allowed": true,
        "stop_condition_alarms": [ { "name": STOP_ALARM } ],
        "canary": { "resource": "orders-db", "table": "lifeboat_canary" },
        "history": 3
    });
    parse_plan(&p.to_string()).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 10, 0, 0).unwrap()
}

/// `t0` plus this many seconds.
fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn facts(dr: DrFacts) -> GameDayFacts {
    GameDayFacts {
        dr,
        recovery_active: None,
        stop_alarms_firing: Vec::new(),
        history: Vec::new(),
        primary_unhealthy: Vec::new(),
    }
}

/// A failover timeline starting `start` seconds after `t0`: the alarm fires at `start`,
/// Lifeboat starts 30 s later, promotion takes 300 s, DNS 60 s, and the failover is done
/// `total` seconds after the alarm.
fn timeline(start: i64, total: i64, loss: f64) -> FailoverFacts {
    FailoverFacts {
        incident: Some("inc-1".into()),
        alarm_at: Some(at(start)),
        started_at: Some(at(start + 30)),
        approval_seconds: None,
        promotion_started_at: Some(at(start + 40)),
        promotion_done_at: Some(at(start + 340)),
        dns_submitted_at: Some(at(start + 345)),
        dns_switched_at: Some(at(start + 405)),
        done_at: Some(at(start + total)),
        data_loss_seconds: Some(loss),
    }
}

fn dr(phase: DrPhase, failover: FailoverFacts) -> DrFacts {
    DrFacts {
        phase,
        cooldown_until: None,
        failover,
        failback: FailbackFacts::default(),
        protected: false,
    }
}

fn stages(from: i64) -> Vec<StageMark> {
    [
        "RetireOldPrimary",
        "Reprotect",
        "ShiftTraffic",
        "AwaitDrReplica",
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| StageMark {
        stage: s.to_string(),
        started_at: at(from + 600 * i as i64),
    })
    .collect()
}

fn failing_back(failover: FailoverFacts, from: i64) -> DrFacts {
    DrFacts {
        failback: FailbackFacts {
            stages: stages(from),
            done_at: None,
        },
        ..dr(DrPhase::FailingBack, failover)
    }
}

fn ok_verification() -> Verification {
    Verification {
        endpoint_answered: true,
        canary: CanaryResult::Ok,
        detail: "select 1 and the canary row answered".into(),
    }
}

/// Drives the machine like the executor: step, keep the actions, persist. With
/// `reload`, the state goes through JSON between every step, as after a crash.
struct Run {
    plan: Plan,
    state: GameDayState,
    facts: GameDayFacts,
    now: DateTime<Utc>,
    actions: Vec<GameDayAction>,
    reload: bool,
}

impl Run {
    fn new() -> Run {
        Run {
            plan: plan(),
            state: GameDayState::default(),
            facts: facts(DrFacts::normal(true)),
            now: t0(),
            actions: Vec::new(),
            reload: false,
        }
    }

    fn ev(&mut self, event: GameDayEvent) -> GameDayDecision {
        let d = step(&self.state, &event, &self.plan, &self.facts, self.now);
        self.actions.extend(d.actions.iter().cloned());
        self.state = if self.reload {
            serde_json::from_str(&serde_json::to_string(&d.state).unwrap()).unwrap()
        } else {
            d.state.clone()
        };
        d
    }

    fn at(&mut self, seconds: i64) -> &mut Run {
        self.now = at(seconds);
        self
    }

    fn dr(&mut self, dr: DrFacts) -> &mut Run {
        self.facts.dr = dr;
        self
    }

    fn tick(&mut self) -> GameDayDecision {
        self.ev(GameDayEvent::Tick)
    }

    fn gd(&self) -> &GameDay {
        self.state.current.as_ref().unwrap()
    }

    fn phase(&self) -> Phase {
        self.gd().phase.clone()
    }

    fn start(&mut self) -> GameDayDecision {
        let d = self.ev(GameDayEvent::Start {
            id: "gd-1".into(),
            mode: None,
            who: "schedule".into(),
        });
        assert_eq!(d.refusal, None, "{}", d.reply);
        assert_eq!(d.next, Next::Continue);
        // The executor steps again at once.
        self.tick();
        d
    }

    fn count(&self, f: impl Fn(&GameDayAction) -> bool) -> usize {
        self.actions.iter().filter(|a| f(a)).count()
    }

    fn report(&self) -> GameDayReport {
        self.gd().report.clone().expect("a report")
    }

    /// Start, inject, and fail over with `timeline(0, total, loss)`.
    fn fail_over(&mut self, total: i64, loss: f64) {
        self.start();
        assert_eq!(self.phase(), Phase::Injecting);
        self.ev(GameDayEvent::InjectionStarted {
            experiment_id: None,
        });
        assert_eq!(self.phase(), Phase::AwaitingFailover);
        self.at(30)
            .dr(dr(
                DrPhase::FailingOver,
                FailoverFacts {
                    done_at: None,
                    dns_switched_at: None,
                    data_loss_seconds: None,
                    ..timeline(0, total, loss)
                },
            ))
            .ev(GameDayEvent::DrObserved);
        assert_eq!(self.phase(), Phase::AwaitingFailover);
        self.at(total)
            .dr(dr(DrPhase::FailedOver, timeline(0, total, loss)))
            .ev(GameDayEvent::DrObserved);
        assert_eq!(self.phase(), Phase::Verifying);
    }

    /// Verify, fail back through every stage, end Normal and protected.
    fn fail_back(&mut self, from: i64) {
        let failover = self.facts.dr.failover.clone();
        self.at(from).ev(GameDayEvent::Verified(ok_verification()));
        assert_eq!(self.phase(), Phase::AwaitingFailback);
        self.at(from + 60)
            .dr(failing_back(failover, from + 60))
            .ev(GameDayEvent::DrObserved);
        assert_eq!(self.phase(), Phase::AwaitingFailback);
        self.at(from + 3000)
            .dr(DrFacts::normal(true))
            .ev(GameDayEvent::DrObserved);
    }
}

fn is_inject(a: &GameDayAction) -> bool {
    matches!(a, GameDayAction::Inject { .. })
}
fn is_stop(a: &GameDayAction) -> bool {
    matches!(a, GameDayAction::StopInjection { .. })
}
fn is_failback(a: &GameDayAction) -> bool {
    matches!(a, GameDayAction::StartFailback)
}
fn is_verify(a: &GameDayAction) -> bool {
    matches!(a, GameDayAction::Verify { .. })
}
fn is_report(a: &GameDayAction) -> bool {
    matches!(a, GameDayAction::WriteReport(_))
}

// ---- refusals ----

fn refused(run: &mut Run) -> Refusal {
    let before = run.state.clone();
    let d = run.ev(GameDayEvent::Start {
        id: "gd-2".into(),
        mode: None,
        who: "ops@example.com".into(),
    });
    assert!(d.actions.is_empty(), "a refusal acts: {:?}", d.actions);
    assert_eq!(d.state, before, "a refusal changed the state");
    d.refusal.expect("refused")
}

#[test]
fn a_plan_not_marked_for_game_days_is_refused() {
    let mut run = Run::new();
    run.plan.game_days.allowed = false;
    let r = refused(&mut run);
    assert!(matches!(r, Refusal::NotAllowed { .. }));
    assert!(r.to_string().contains("game_days.allowed"), "{r}");
}

#[test]
fn a_plan_without_replicas_is_refused() {
    let mut run = Run::new();
    for r in &mut run.plan.resources {
        r.replica = None;
    }
    assert!(matches!(
        refused(&mut run),
        Refusal::NothingToFailOver { .. }
    ));
}

#[test]
fn a_game_day_in_the_cooldown_is_refused() {
    let mut run = Run::new();
    run.facts.dr.cooldown_until = Some(at(600));
    let r = refused(&mut run);
    assert!(matches!(r, Refusal::Cooldown { .. }));
    assert!(r.to_string().contains("cooldown"), "{r}");
    // Once the cooldown is over, it may start.
    run.at(601);
    assert_eq!(run.start().refusal, None);
}

#[test]
fn a_game_day_during_a_failover_or_failback_is_refused() {
    for phase in [
        DrPhase::FailingOver,
        DrPhase::FailedOver,
        DrPhase::FailingBack,
    ] {
        let mut run = Run::new();
        run.dr(dr(phase, FailoverFacts::default()));
        assert_eq!(refused(&mut run), Refusal::DrBusy { phase });
    }
}

#[test]
fn a_game_day_during_a_point_in_time_recovery_is_refused() {
    let mut run = Run::new();
    run.facts.recovery_active = Some("rec-orders-db-1".into());
    let r = refused(&mut run);
    assert!(r.to_string().contains("rec-orders-db-1"), "{r}");
}

#[test]
fn a_second_game_day_is_refused_while_one_runs() {
    let mut run = Run::new();
    run.start();
    let r = refused(&mut run);
    assert_eq!(
        r,
        Refusal::AnotherGameDay {
            id: "gd-1".into(),
            phase: "Injecting".into()
        }
    );
}

#[test]
fn a_game_day_with_its_stop_condition_already_firing_is_refused() {
    let mut run = Run::new();
    run.facts.stop_alarms_firing = vec![STOP_ALARM.into()];
    assert!(matches!(
        refused(&mut run),
        Refusal::StopConditionFiring { .. }
    ));
}

// ---- the whole game day ----

#[test]
fn a_game_day_whose_hypothesis_holds() {
    let mut run = Run::new();
    run.fail_over(900, 4.5);
    assert_eq!(run.count(is_stop), 1, "the fault stops once failed over");
    assert_eq!(
        run.actions.iter().find(|a| is_verify(a)),
        Some(&GameDayAction::Verify {
            canary: run.plan.game_days.canary.clone()
        })
    );
    run.fail_back(1000);
    assert_eq!(run.phase(), Phase::Reporting);
    assert_eq!(run.count(is_failback), 1);
    let report = run.report();
    assert_eq!(report.outcome, GameDayOutcome::Completed);
    assert!(report.hypothesis.held(), "{:#?}", report.hypothesis);
    assert!(!report.operator_must_fail_back);
    assert_eq!(report.severity(), Severity::Info);
    // Injected at t0, alarm at t0, Lifeboat started 30 s later, promotion 300 s, DNS 60 s.
    assert_eq!(
        report.rto,
        Some(RtoSplit {
            total_seconds: 900,
            alarm_delay_seconds: Some(0),
            detection_seconds: Some(30),
            approval_seconds: 0,
            aws_seconds: Some(360),
            lifeboat_seconds: Some(510),
        })
    );
    assert_eq!(report.data_loss_seconds, Some(4.5));
    assert_eq!(report.failback_stages.len(), 4);
    assert_eq!(report.failback_stages[0].seconds, 600);
    assert_eq!(report.failback_seconds, Some(4000 - 1060));
    assert_eq!(run.count(is_report), 1);

    run.ev(GameDayEvent::ReportWritten);
    assert_eq!(run.phase(), Phase::Done);
    // Over: further events change nothing.
    let before = run.state.clone();
    let d = run.at(9000).tick();
    assert!(d.actions.is_empty());
    assert_eq!(run.state, before);

    let text = render_report(&report).join("\n");
    assert!(text.contains("Hypothesis HELD"), "{text}");
    assert!(text.contains("Measured RTO 15m 0s"), "{text}");
    assert!(text.contains("AWS (promotion + DNS) 6m 0s"), "{text}");
    assert!(
        text.contains("Failback stages: RetireOldPrimary 10m 0s"),
        "{text}"
    );
}

#[test]
fn a_slow_failover_misses_the_rto_hypothesis() {
    let mut run = Run::new();
    run.fail_over(2400, 4.5);
    run.fail_back(2500);
    let report = run.report();
    assert_eq!(report.hypothesis.rto.verdict, Verdict::NotHeld);
    assert!(report.hypothesis.rto.detail.contains("40m 0s"));
    assert_eq!(report.hypothesis.rpo.verdict, Verdict::Held);
    assert_eq!(report.hypothesis.failback.verdict, Verdict::Held);
    assert_eq!(report.outcome, GameDayOutcome::Completed);
    assert_eq!(report.severity(), Severity::Warning);
    assert!(render_report(&report)[1].contains("NOT HELD"));
}

#[test]
fn too_much_replica_lag_misses_the_rpo_hypothesis() {
    let mut run = Run::new();
    run.fail_over(900, 1200.0);
    run.fail_back(1000);
    let report = run.report();
    assert_eq!(report.hypothesis.rto.verdict, Verdict::Held);
    assert_eq!(report.hypothesis.rpo.verdict, Verdict::NotHeld);
    assert!(report.hypothesis.rpo.detail.contains("1200.0 s"));
}

#[test]
fn a_failed_verification_fails_the_rto_hypothesis_but_still_fails_back() {
    let mut run = Run::new();
    run.fail_over(900, 1.0);
    run.at(1000).ev(GameDayEvent::Verified(Verification {
        endpoint_answered: true,
        canary: CanaryResult::Failed {
            reason: "read-only transaction".into(),
        },
        detail: "canary insert refused".into(),
    }));
    assert_eq!(run.count(is_failback), 1);
    assert!(run.actions.iter().any(|a| matches!(
        a,
        GameDayAction::Notify {
            severity: Severity::Critical,
            ..
        }
    )));
    run.at(1100)
        .dr(failing_back(timeline(0, 900, 1.0), 1100))
        .tick();
    run.at(4000).dr(DrFacts::normal(true)).tick();
    let report = run.report();
    assert_eq!(report.hypothesis.rto.verdict, Verdict::NotHeld);
    assert!(report.hypothesis.rto.detail.contains("verification"));
}

// ---- stop conditions ----

#[test]
fn a_stop_condition_before_the_injection_aborts_with_nothing_injected() {
    let mut run = Run::new();
    let d = run.ev(GameDayEvent::Start {
        id: "gd-1".into(),
        mode: None,
        who: "schedule".into(),
    });
    assert_eq!(d.refusal, None);
    assert_eq!(run.phase(), Phase::Requested);
    run.ev(GameDayEvent::StopConditionFired {
        alarm: STOP_ALARM.into(),
    });
    assert_eq!(run.phase(), Phase::Aborted);
    assert_eq!(run.count(is_inject), 0);
    assert_eq!(run.count(is_stop), 0, "nothing to stop");
    assert_eq!(run.count(is_report), 1);
    let report = run.report();
    assert!(matches!(report.outcome, GameDayOutcome::Stopped { .. }));
    assert_eq!(report.hypothesis.rto.verdict, Verdict::NotReached);
    // The executor's "again" finds it over.
    assert!(run.tick().actions.is_empty());
    assert_eq!(run.count(is_inject), 0);
}

#[test]
fn a_stop_alarm_read_on_the_preflight_tick_aborts_too() {
    let mut run = Run::new();
    run.ev(GameDayEvent::Start {
        id: "gd-1".into(),
        mode: Some(GameDayMode::Fis),
        who: "schedule".into(),
    });
    run.facts.stop_alarms_firing = vec![STOP_ALARM.into()];
    run.tick();
    assert_eq!(run.phase(), Phase::Aborted);
    assert_eq!(run.count(is_inject), 0);
}

#[test]
fn a_stop_condition_mid_failover_lets_the_failover_finish_and_does_not_fail_back() {
    let mut run = Run::new();
    run.start();
    run.ev(GameDayEvent::InjectionStarted {
        experiment_id: Some("EXP123".into()),
    });
    run.at(60)
        .dr(dr(
            DrPhase::FailingOver,
            FailoverFacts {
                done_at: None,
                ..timeline(0, 900, 3.0)
            },
        ))
        .tick();
    run.ev(GameDayEvent::StopConditionFired {
        alarm: STOP_ALARM.into(),
    });
    assert_eq!(
        run.phase(),
        Phase::Stopping {
            cause: STOP_ALARM.into()
        }
    );
    assert_eq!(
        run.actions.iter().rfind(|a| is_stop(a)),
        Some(&GameDayAction::StopInjection {
            injection: Injection::SignalOnly {
                alarms: run.plan.failover.health_alarms.clone()
            },
            experiment_id: Some("EXP123".into())
        })
    );
    // The failover is not abandoned: the game day waits while it runs.
    for s in [120, 300, 600] {
        run.at(s).tick();
        assert!(matches!(run.phase(), Phase::Stopping { .. }));
    }
    run.at(900)
        .dr(dr(DrPhase::FailedOver, timeline(0, 900, 3.0)))
        .ev(GameDayEvent::DrObserved);
    assert_eq!(run.phase(), Phase::Reporting);
    run.ev(GameDayEvent::ReportWritten);
    assert_eq!(run.phase(), Phase::Aborted);
    assert_eq!(run.count(is_failback), 0, "no failback after a stop");
    assert_eq!(run.count(is_verify), 0);
    assert_eq!(run.count(is_stop), 1);
    let report = run.report();
    assert_eq!(
        report.outcome,
        GameDayOutcome::Stopped {
            cause: STOP_ALARM.into(),
            phase: "AwaitingFailover".into(),
            dr_phase: DrPhase::FailedOver
        }
    );
    assert!(report.operator_must_fail_back);
    assert_eq!(report.severity(), Severity::Critical);
    assert_eq!(report.rto.as_ref().unwrap().total_seconds, 900);
    assert_eq!(report.hypothesis.failback.verdict, Verdict::NotReached);
    let text = render_report(&report).join("\n");
    assert!(text.contains("ACTION NEEDED"), "{text}");
    assert!(text.contains("stopped at DR state FailedOver"), "{text}");
    // Later ticks, even back in Normal, never fail back.
    run.at(5000).dr(DrFacts::normal(true)).tick();
    assert_eq!(run.count(is_failback), 0);
}

#[test]
fn a_stop_condition_while_verifying_ends_at_failed_over() {
    let mut run = Run::new();
    run.fail_over(900, 3.0);
    run.at(950).ev(GameDayEvent::StopConditionFired {
        alarm: STOP_ALARM.into(),
    });
    assert_eq!(run.phase(), Phase::Reporting);
    run.at(960).ev(GameDayEvent::Verified(ok_verification()));
    assert_eq!(run.count(is_failback), 0);
}

#[test]
fn a_stop_condition_during_failback_waits_for_the_failback_to_end() {
    let mut run = Run::new();
    run.fail_over(900, 3.0);
    run.at(1000).ev(GameDayEvent::Verified(ok_verification()));
    run.at(1100)
        .dr(failing_back(timeline(0, 900, 3.0), 1100))
        .tick();
    run.at(1500).ev(GameDayEvent::StopConditionFired {
        alarm: STOP_ALARM.into(),
    });
    assert!(matches!(run.phase(), Phase::Stopping { .. }));
    run.at(2000).tick();
    assert!(matches!(run.phase(), Phase::Stopping { .. }));
    run.at(4000).dr(DrFacts::normal(true)).tick();
    assert_eq!(run.phase(), Phase::Reporting);
    let report = run.report();
    assert!(matches!(
        report.outcome,
        GameDayOutcome::Stopped {
            dr_phase: DrPhase::Normal,
            ..
        }
    ));
    assert_eq!(report.hypothesis.failback.verdict, Verdict::Held);
    assert!(!report.operator_must_fail_back);
    assert_eq!(run.count(is_failback), 1);
}

#[test]
fn a_stop_while_still_normal_waits_for_the_fault_to_settle() {
    let mut run = Run::new();
    run.start();
    run.ev(GameDayEvent::InjectionStarted {
        experiment_id: None,
    });
    run.at(10).ev(GameDayEvent::StopConditionFired {
        alarm: STOP_ALARM.into(),
    });
    run.at(60).tick();
    assert!(matches!(run.phase(), Phase::Stopping { .. }));
    run.at(10 + STOP_SETTLE_MINUTES * 60).tick();
    assert_eq!(run.phase(), Phase::Reporting);
    let report = run.report();
    assert!(!report.operator_must_fail_back);
    assert_eq!(report.hypothesis.rto.verdict, Verdict::NotReached);
}

// ---- failures along the way ----

#[test]
fn a_failed_injection_aborts() {
    let mut run = Run::new();
    run.start();
    run.ev(GameDayEvent::InjectionFailed {
        reason: "AccessDenied on fis:StartExperiment".into(),
    });
    assert_eq!(run.phase(), Phase::Reporting);
    run.ev(GameDayEvent::ReportWritten);
    assert_eq!(run.phase(), Phase::Aborted);
    let report = run.report();
    assert!(
        matches!(report.outcome, GameDayOutcome::Aborted { ref reason } if reason.contains("AccessDenied"))
    );
}

#[test]
fn an_unconfirmed_injection_times_out() {
    let mut run = Run::new();
    run.start();
    run.at(INJECTION_TIMEOUT_MINUTES * 60 - 1).tick();
    assert_eq!(run.phase(), Phase::Injecting);
    run.at(INJECTION_TIMEOUT_MINUTES * 60).tick();
    assert_eq!(run.phase(), Phase::Reporting);
    assert_eq!(run.count(is_stop), 1);
}

#[test]
fn a_fault_that_starts_no_failover_fails_the_rto_hypothesis() {
    let mut run = Run::new();
    run.start();
    run.ev(GameDayEvent::InjectionStarted {
        experiment_id: None,
    });
    // The limit is the larger of 30 minutes and twice the 30-minute RTO.
    run.at(59 * 60).tick();
    assert_eq!(run.phase(), Phase::AwaitingFailover);
    run.at(60 * 60).tick();
    assert_eq!(run.phase(), Phase::Reporting);
    let report = run.report();
    assert_eq!(report.hypothesis.rto.verdict, Verdict::NotHeld);
    assert!(report.hypothesis.rto.detail.contains("detection"));
    assert_eq!(run.count(is_stop), 1);
}

#[test]
fn a_rolled_back_failback_is_reported_and_left_to_the_operator() {
    let mut run = Run::new();
    run.fail_over(900, 3.0);
    run.at(1000).ev(GameDayEvent::Verified(ok_verification()));
    // Right after the request the DR state is still FailedOver: not a rollback.
    run.at(1010).tick();
    assert_eq!(run.phase(), Phase::AwaitingFailback);
    run.at(1100)
        .dr(failing_back(timeline(0, 900, 3.0), 1100))
        .tick();
    run.at(2000)
        .dr(dr(DrPhase::FailedOver, timeline(0, 900, 3.0)))
        .tick();
    assert_eq!(run.phase(), Phase::Reporting);
    let report = run.report();
    assert_eq!(report.hypothesis.failback.verdict, Verdict::NotHeld);
    assert!(report.operator_must_fail_back);
    assert_eq!(run.count(is_failback), 1);
}

#[test]
fn a_failback_that_never_starts_is_reported() {
    let mut run = Run::new();
    run.fail_over(900, 3.0);
    run.at(1000).ev(GameDayEvent::Verified(ok_verification()));
    run.at(1000 + FAILBACK_START_MINUTES * 60).tick();
    assert_eq!(run.phase(), Phase::Reporting);
    assert_eq!(run.report().hypothesis.failback.verdict, Verdict::NotHeld);
    assert_eq!(run.count(is_failback), 1);
}

#[test]
fn a_missing_verification_result_does_not_block_the_failback() {
    let mut run = Run::new();
    run.fail_over(900, 3.0);
    run.at(900 + VERIFY_TIMEOUT_MINUTES * 60).tick();
    assert_eq!(run.phase(), Phase::AwaitingFailback);
    assert_eq!(run.count(is_failback), 1);
}

#[test]
fn fis_mode_uses_the_plan_template_or_the_deployed_one() {
    let mut p = plan();
    assert_eq!(
        resolve_injection(&p, Some(GameDayMode::Fis)),
        Injection::Fis {
            experiment_template_id: None
        }
    );
    p.game_days.injection = InjectionMode::Fis {
        experiment_template_id: Some("EXTabc".into()),
    };
    assert_eq!(
        resolve_injection(&p, None),
        Injection::Fis {
            experiment_template_id: Some("EXTabc".into())
        }
    );
    assert_eq!(
        resolve_injection(&p, Some(GameDayMode::SignalOnly)),
        Injection::SignalOnly {
            alarms: p.failover.health_alarms.clone()
        }
    );
}

// ---- duplicates and crashes ----

#[test]
fn duplicate_events_are_idempotent() {
    let mut run = Run::new();
    run.start();
    // The same start command delivered again.
    let before = run.state.clone();
    let d = run.ev(GameDayEvent::Start {
        id: "gd-1".into(),
        mode: None,
        who: "schedule".into(),
    });
    assert_eq!(d.refusal, None);
    assert!(d.actions.is_empty());
    assert_eq!(run.state, before);

    run.ev(GameDayEvent::InjectionStarted {
        experiment_id: Some("EXP1".into()),
    });
    let before = run.state.clone();
    assert!(
        run.ev(GameDayEvent::InjectionStarted {
            experiment_id: Some("EXP1".into())
        })
        .actions
        .is_empty()
    );
    assert_eq!(run.state, before);

    run.at(30)
        .dr(dr(
            DrPhase::FailingOver,
            FailoverFacts {
                done_at: None,
                ..timeline(0, 900, 1.0)
            },
        ))
        .ev(GameDayEvent::DrObserved);
    run.ev(GameDayEvent::DrObserved);
    run.at(900)
        .dr(dr(DrPhase::FailedOver, timeline(0, 900, 1.0)))
        .ev(GameDayEvent::DrObserved);
    run.ev(GameDayEvent::DrObserved);
    run.tick();
    assert_eq!(run.count(is_verify), 1);
    run.at(1000).ev(GameDayEvent::Verified(ok_verification()));
    run.ev(GameDayEvent::Verified(ok_verification()));
    assert_eq!(run.count(is_failback), 1);
    run.at(1100)
        .dr(failing_back(timeline(0, 900, 1.0), 1100))
        .ev(GameDayEvent::StopConditionFired {
            alarm: STOP_ALARM.into(),
        });
    run.ev(GameDayEvent::StopConditionFired {
        alarm: STOP_ALARM.into(),
    });
    assert_eq!(run.count(is_stop), 1);
    run.at(4000).dr(DrFacts::normal(true)).tick();
    run.ev(GameDayEvent::ReportWritten);
    run.ev(GameDayEvent::ReportWritten);
    assert_eq!(run.phase(), Phase::Aborted);
    assert_eq!(run.count(is_inject), 1);
    assert_eq!(run.count(is_report), 1);
}

#[test]
fn an_unconfirmed_report_is_written_again_on_the_next_tick() {
    let mut run = Run::new();
    run.start();
    run.ev(GameDayEvent::InjectionFailed {
        reason: "throttled".into(),
    });
    assert_eq!(run.count(is_report), 1);
    let d = run.at(60).tick();
    assert_eq!(d.actions.iter().filter(|a| is_report(a)).count(), 1);
    assert_eq!(run.phase(), Phase::Reporting);
}

/// The events of a whole game day with a stop during the failback, in order.
fn script(run: &mut Run) {
    run.fail_over(900, 2.0);
    run.fail_back(1000);
    run.ev(GameDayEvent::ReportWritten);
}

#[test]
fn state_reloaded_from_json_at_every_step_gives_the_same_game_day() {
    let mut plain = Run::new();
    script(&mut plain);
    let mut crashing = Run::new();
    crashing.reload = true;
    script(&mut crashing);
    assert_eq!(plain.state, crashing.state);
    assert_eq!(plain.actions, crashing.actions);
    assert_eq!(crashing.phase(), Phase::Done);
}

#[test]
fn a_crash_after_persisting_resumes_without_repeating_the_injection_or_the_failback() {
    let mut run = Run::new();
    run.start();
    // The state with `Inject` issued was stored; the invocation died before the edge
    // confirmed. The next invocation loads it and ticks.
    let stored = serde_json::to_string(&run.state).unwrap();
    run.state = serde_json::from_str(&stored).unwrap();
    run.at(60).tick();
    assert_eq!(run.count(is_inject), 1);
    run.ev(GameDayEvent::InjectionStarted {
        experiment_id: None,
    });
    run.at(900)
        .dr(dr(DrPhase::FailedOver, timeline(0, 900, 1.0)))
        .tick();
    run.ev(GameDayEvent::Verified(ok_verification()));
    let stored = serde_json::to_string(&run.state).unwrap();
    run.state = serde_json::from_str(&stored).unwrap();
    run.at(1000).tick();
    run.at(1100).tick();
    assert_eq!(run.count(is_failback), 1);
}

// ---- the trend ----

fn past(id: &str, days_ago: i64, rto: i64) -> GameDayReport {
    let mut run = Run::new();
    run.fail_over(rto, 1.0);
    run.fail_back(rto + 100);
    let mut r = run.report();
    r.game_day = id.into();
    r.requested_at = t0() - Duration::days(days_ago);
    r
}

fn point(rto: Option<i64>) -> TrendPoint {
    TrendPoint {
        game_day: "now".into(),
        requested_at: t0(),
        rto_seconds: rto,
        data_loss_seconds: None,
        hypothesis_held: true,
    }
}

#[test]
fn the_trend_compares_this_rto_with_the_last_game_days() {
    let history = vec![
        past("a", 90, 100),
        past("b", 60, 1200),
        past("c", 30, 1000),
        past("d", 10, 800),
    ];
    // The window is the last 3: 1200, 1000, 800 (mean 1000).
    let t = trend(&history, point(Some(600)), 3);
    assert_eq!(t.points.len(), 4);
    assert_eq!(t.points[0].game_day, "b");
    assert_eq!(t.points[3].game_day, "now");
    assert_eq!(t.direction, TrendDirection::Improving);
    assert_eq!(
        trend(&history, point(Some(1050)), 3).direction,
        TrendDirection::Steady
    );
    assert_eq!(
        trend(&history, point(Some(1200)), 3).direction,
        TrendDirection::Worsening
    );
    assert_eq!(
        trend(&history, point(None), 3).direction,
        TrendDirection::NotEnoughData
    );
    assert_eq!(
        trend(&[], point(Some(600)), 3).direction,
        TrendDirection::NotEnoughData
    );
    // A rewritten report of this same game day is not its own history.
    let mut same = past("now", 0, 60);
    same.requested_at = t0();
    assert_eq!(trend(&[same], point(Some(600)), 3).points.len(), 1);
}

#[test]
fn the_report_carries_the_trend_from_the_facts() {
    let mut run = Run::new();
    run.facts.history = vec![past("a", 60, 1200), past("b", 30, 1100)];
    run.fail_over(900, 1.0);
    run.fail_back(1000);
    let report = run.report();
    assert_eq!(report.trend.points.len(), 3);
    assert_eq!(report.trend.direction, TrendDirection::Improving);
    let text = render_report(&report).join("\n");
    assert!(
        text.contains("RTO 20m 0s → 18m 20s → 15m 0s: improving"),
        "{text}"
    );
}

#[test]
fn durations_read_naturally() {
    assert_eq!(report::duration_text(0), "0s");
    assert_eq!(report::duration_text(45), "45s");
    assert_eq!(report::duration_text(725), "12m 5s");
    assert_eq!(report::duration_text(7200), "2h 0m 0s");
}

// ---- the DR document as facts ----

pub(crate) fn targets_json() -> serde_json::Value {
    json!([{
        "resource": "orders-db",
        "lag_at_promotion": 2.5,
        "promote_issued_at": "2026-12-08T10:00:40Z",
        "promoted_at": "2026-12-08T10:05:40Z",
        "dns_submitted_at": "2026-12-08T10:05:45Z",
        "dns_synced_at": "2026-12-08T10:06:45Z"
    }])
}

pub(crate) fn failed_over_json() -> serde_json::Value {
    json!({
        "incident": "inc-1",
        "since": "2026-12-08T10:07:00Z",
        "cooldown_until": "2026-12-08T11:07:00Z",
        "measurement": {
            "rto_seconds": 420, "rto_target_seconds": 1800, "detection_seconds": 30,
            "aws_seconds": 365, "approval_seconds": 0, "lifeboat_seconds": 25,
            "data_loss_seconds": 2.5, "rpo_target_seconds": 900
        },
        "targets": targets_json()
    })
}

#[test]
fn facts_are_read_off_a_failing_over_document() {
    let doc = json!({
        "phase": "FailingOver",
        "incident": "inc-1",
        "cause": { "by": "alarm", "name": "orders-db-primary-unhealthy", "fired_at": "2026-12-08T10:00:00Z" },
        "step": "AwaitPromotion",
        "received_at": "2026-12-08T10:00:30Z",
        "marks": [
            { "step": "Confirm", "at": "2026-12-08T10:00:30Z" },
            { "step": "AwaitingApproval", "at": "2026-12-08T10:00:32Z" },
            { "step": "Promote", "at": "2026-12-08T10:00:40Z" }
        ],
        "targets": targets_json()
    });
    let state: crate::dr::DrState = serde_json::from_value(doc).unwrap();
    let f = dr_facts(&state, false);
    assert_eq!(f.phase, DrPhase::FailingOver);
    assert_eq!(f.failover.alarm_at, Some(at(0)));
    assert_eq!(f.failover.started_at, Some(at(30)));
    assert_eq!(f.failover.approval_seconds, Some(8));
    assert_eq!(f.failover.promotion_started_at, Some(at(40)));
    assert_eq!(f.failover.promotion_done_at, Some(at(340)));
    assert_eq!(f.failover.dns_switched_at, Some(at(405)));
    assert_eq!(f.failover.done_at, None);
    assert_eq!(f.failover.data_loss_seconds, Some(2.5));
}

#[test]
fn facts_are_read_off_failed_over_and_failing_back_documents() {
    let mut doc = failed_over_json();
    doc["phase"] = json!("FailedOver");
    let state: crate::dr::DrState = serde_json::from_value(doc).unwrap();
    let f = dr_facts(&state, false);
    assert_eq!(f.phase, DrPhase::FailedOver);
    assert_eq!(f.cooldown_until, Some(at(3600 + 420)));
    assert_eq!(f.failover.alarm_at, Some(at(0)));
    assert_eq!(f.failover.started_at, Some(at(30)));
    assert_eq!(f.failover.done_at, Some(at(420)));
    assert_eq!(f.failover.data_loss_seconds, Some(2.5));

    let doc = json!({
        "phase": "FailingBack",
        "id": "fb-1",
        "from": failed_over_json(),
        "step": "Reprotect",
        "writer": "dr",
        "traffic_primary_percent": 0,
        "targets": [],
        "marks": [
            { "step": "RetireOldPrimary", "at": "2026-12-08T12:00:00Z" },
            { "step": "Reprotect", "at": "2026-12-08T12:03:00Z" }
        ]
    });
    let state: crate::dr::DrState = serde_json::from_value(doc).unwrap();
    let f = dr_facts(&state, false);
    assert_eq!(f.phase, DrPhase::FailingBack);
    assert_eq!(f.failover.done_at, Some(at(420)));
    assert_eq!(
        f.failback.stages,
        vec![
            StageMark {
                stage: "RetireOldPrimary".into(),
                started_at: at(7200)
            },
            StageMark {
                stage: "Reprotect".into(),
                started_at: at(7380)
            },
        ]
    );

    let f = dr_facts(&crate::dr::DrState::default(), true);
    assert_eq!(f, DrFacts::normal(true));
}

// ---- properties ----

#[derive(Debug, Clone)]
enum Input {
    Start(u8),
    InjectionStarted,
    InjectionFailed,
    Dr(DrPhase, bool),
    Verified(bool),
    Stop,
    Written,
    Tick,
    StopAlarmOnTick,
    /// The primary's health alarm goes out of OK (true) or back to OK (false).
    PrimaryUnhealthy(bool),
}

fn input() -> impl Strategy<Value = (Input, i64)> {
    let phase = prop_oneof![
        Just(DrPhase::Normal),
        Just(DrPhase::FailingOver),
        Just(DrPhase::FailedOver),
        Just(DrPhase::FailingBack),
    ];
    let input = prop_oneof![
        (0u8..3).prop_map(Input::Start),
        Just(Input::InjectionStarted),
        Just(Input::InjectionFailed),
        (phase, any::<bool>()).prop_map(|(p, c)| Input::Dr(p, c)),
        any::<bool>().prop_map(Input::Verified),
        Just(Input::Stop),
        Just(Input::Written),
        Just(Input::Tick),
        Just(Input::StopAlarmOnTick),
        any::<bool>().prop_map(Input::PrimaryUnhealthy),
    ];
    (input, 0i64..1200)
}

/// Apply one input, checking the invariants on the way; return whether a stop
/// condition was ever seen for the current game day.
fn apply(run: &mut Run, input: &Input) {
    run.facts.stop_alarms_firing.clear();
    let event = match input {
        Input::Start(n) => GameDayEvent::Start {
            id: format!("gd-{n}"),
            mode: None,
            who: "prop".into(),
        },
        Input::InjectionStarted => GameDayEvent::InjectionStarted {
            experiment_id: Some("EXP".into()),
        },
        Input::InjectionFailed => GameDayEvent::InjectionFailed { reason: "x".into() },
        Input::Dr(phase, cooldown) => {
            let start = (run.now - t0()).num_seconds();
            let mut facts = dr(*phase, timeline(start - 600, 500, 1.0));
            if *phase == DrPhase::FailingBack {
                facts.failback.stages = stages(start - 300);
            }
            if *phase == DrPhase::Normal {
                facts.protected = true;
                if *cooldown {
                    facts.cooldown_until = Some(run.now + Duration::minutes(30));
                }
            }
            run.facts.dr = facts;
            GameDayEvent::DrObserved
        }
        Input::Verified(ok) => GameDayEvent::Verified(if *ok {
            ok_verification()
        } else {
            Verification {
                endpoint_answered: false,
                canary: CanaryResult::NotConfigured,
                detail: "timeout".into(),
            }
        }),
        Input::Stop => GameDayEvent::StopConditionFired {
            alarm: STOP_ALARM.into(),
        },
        Input::Written => GameDayEvent::ReportWritten,
        Input::Tick => GameDayEvent::Tick,
        Input::StopAlarmOnTick => {
            run.facts.stop_alarms_firing = vec![STOP_ALARM.into()];
            GameDayEvent::Tick
        }
        Input::PrimaryUnhealthy(down) => {
            run.facts.primary_unhealthy = if *down {
                vec!["orders-db-primary-unhealthy".into()]
            } else {
                Vec::new()
            };
            GameDayEvent::Tick
        }
    };
    let before = run.state.clone();
    let d = step(&run.state, &event, &run.plan, &run.facts, run.now);

    // Crash/resume: the same step from the state reloaded from JSON decides the same.
    let reloaded: GameDayState =
        serde_json::from_str(&serde_json::to_string(&run.state).unwrap()).unwrap();
    assert_eq!(step(&reloaded, &event, &run.plan, &run.facts, run.now), d);

    // Never two game days: a start with another id while one runs is refused, unchanged.
    if let (Some(gd), GameDayEvent::Start { id, .. }) = (&before.current, &event)
        && !gd.phase.is_terminal()
        && &gd.id != id
    {
        assert!(d.refusal.is_some());
        assert_eq!(d.state, before);
    }
    let new_game_day = match (&before.current, &d.state.current) {
        (Some(a), Some(b)) => a.id != b.id,
        _ => true,
    };
    if new_game_day {
        run.actions.clear();
    }
    // Never a failback after (or together with) a stop condition.
    let stopped_before = before
        .current
        .as_ref()
        .is_some_and(|gd| gd.stop.is_some() && !new_game_day);
    let stopped_now = d.state.current.as_ref().is_some_and(|gd| gd.stop.is_some());
    if stopped_before || stopped_now {
        assert!(
            !d.actions.iter().any(is_failback),
            "StartFailback after a stop: {input:?} from {before:#?}"
        );
    }
    // Never a failback while the primary's health alarms are out of OK: the failback
    // function would refuse it, and the game day would wait for a failback never begun.
    if !run.facts.primary_unhealthy.is_empty() {
        assert!(
            !d.actions.iter().any(is_failback),
            "StartFailback with the primary unhealthy: {input:?} from {before:#?}"
        );
    }
    run.actions.extend(d.actions.iter().cloned());
    run.state = d.state;
    // Never inject twice, never fail back twice, in one game day.
    assert!(run.count(is_inject) <= 1, "injected twice");
    assert!(run.count(is_failback) <= 1, "failed back twice");
    // StopInjection only for something injected.
    if run.count(is_stop) > 0 {
        assert_eq!(run.count(is_inject), 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn game_days_keep_their_safety_rules_and_always_end(
        inputs in proptest::collection::vec(input(), 0..40)
    ) {
        let mut run = Run::new();
        for (input, dt) in &inputs {
            run.now += Duration::seconds(*dt);
            apply(&mut run, input);
        }
        // The DR state settles in Normal (after the failback, or after the stop): with
        // time passing and the edge confirming, every game day ends.
        run.facts.dr = DrFacts::normal(true);
        for input in [
            Input::Tick,
            Input::InjectionStarted,
            Input::Tick,
        ] {
            apply(&mut run, &input);
        }
        for _ in 0..3 {
            run.now += Duration::hours(2);
            run.facts.dr = DrFacts::normal(true);
            apply(&mut run, &Input::Tick);
            apply(&mut run, &Input::Written);
        }
        if let Some(gd) = &run.state.current {
            prop_assert!(gd.phase.is_terminal(), "did not end: {:?}", gd.phase);
            prop_assert!(gd.report.is_some());
        }
    }
}

#[test]
fn the_failback_waits_for_the_primary_to_be_healthy_and_gives_up_after_a_while() {
    let p = plan();
    let start = GameDayEvent::Start {
        id: "gd-1".into(),
        mode: Some(GameDayMode::Fis),
        who: "test".into(),
    };
    let mut f = facts(DrFacts::normal(true));
    let d = step(&GameDayState::default(), &start, &p, &f, at(0));
    let d = step(&d.state, &GameDayEvent::Tick, &p, &f, at(0));
    let d = step(
        &d.state,
        &GameDayEvent::InjectionStarted {
            experiment_id: Some("EXP1".into()),
        },
        &p,
        &f,
        at(1),
    );
    // The FIS disruption: failed over, and the primary's health check still failing.
    f.dr = dr(DrPhase::FailedOver, timeline(10, 420, 2.0));
    f.primary_unhealthy = vec!["orders-db-primary-unhealthy".into()];
    let d = step(&d.state, &GameDayEvent::DrObserved, &p, &f, at(600));
    assert!(d.actions.iter().any(is_verify));
    let verified = Verification {
        endpoint_answered: true,
        canary: CanaryResult::Ok,
        detail: "ok".into(),
    };
    let d = step(&d.state, &GameDayEvent::Verified(verified), &p, &f, at(610));
    assert!(!d.actions.iter().any(is_failback), "{:?}", d.actions);
    assert!(
        d.reply.contains("waiting for the primary region"),
        "{}",
        d.reply
    );
    assert_eq!(d.state.current.as_ref().unwrap().phase, Phase::Verifying);
    // Healthy again: the failback starts.
    let mut healthy = f.clone();
    healthy.primary_unhealthy.clear();
    let later = step(&d.state, &GameDayEvent::Tick, &p, &healthy, at(900));
    assert!(later.actions.iter().any(is_failback));
    // Never healthy: after PRIMARY_RECOVERY_MINUTES the game day reports, with the DR
    // region still serving.
    let t = at(600 + 60 * PRIMARY_RECOVERY_MINUTES);
    let given_up = step(&d.state, &GameDayEvent::Tick, &p, &f, t);
    assert!(!given_up.actions.iter().any(is_failback));
    let gd = given_up.state.current.unwrap();
    assert_eq!(gd.phase, Phase::Reporting);
    let report = gd.report.unwrap();
    assert!(report.operator_must_fail_back);
    assert!(
        matches!(report.outcome, GameDayOutcome::Aborted { ref reason } if reason.contains("orders-db-primary-unhealthy"))
    );
}
