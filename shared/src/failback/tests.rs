//! The failback state machine against a simulated world: scripted scenarios and property
//! tests over random ticks, gate alarms, pauses, aborts and crashes.

use super::sim::*;
use super::*;
use crate::dr::Next;
use crate::plan::parse_plan;
use proptest::prelude::*;

fn plan() -> Plan {
    parse_plan(include_str!("../../../infra/plans/local.json")).unwrap()
}

fn feed(
    p: &Plan,
    state: &mut DrState,
    sim: &mut Sim,
    input: FailbackInput,
    crash: bool,
) -> FbDecision {
    let d = step(p, state, &input, &sim.facts(), sim.now);
    let outcomes: Vec<FbOutcome> = d.actions.iter().map(|a| sim.act(a, p)).collect();
    *state = if crash {
        d.state.clone()
    } else {
        absorb(&d.state, &outcomes, sim.now)
    };
    d
}

/// Ticks (a minute apart) until the failback is done or `limit` ticks passed; polls
/// within a tick add ten seconds.
fn run_ticks(p: &Plan, state: &mut DrState, sim: &mut Sim, limit: usize) -> Vec<FbDecision> {
    let mut out = vec![];
    for _ in 0..limit {
        let mut d = feed(p, state, sim, FailbackInput::Tick, false);
        let mut n = 0;
        while d.next != Next::Stop && n < 20 {
            if d.next == Next::Poll {
                sim.advance(10);
            }
            out.push(d);
            d = feed(p, state, sim, FailbackInput::Tick, false);
            n += 1;
        }
        out.push(d);
        if matches!(state, DrState::Normal { .. }) {
            break;
        }
        sim.advance(60);
    }
    out
}

fn failback_of(state: &DrState) -> &Failback {
    match state {
        DrState::FailingBack(f) => f,
        other => panic!("not failing back: {}", other.phase()),
    }
}

#[test]
fn a_full_failback_returns_to_normal_protected_with_the_writer_moved_first() {
    let p = plan();
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
    assert!(!d.refused, "{}", d.reply);
    let decisions = run_ticks(&p, &mut state, &mut sim, 200);
    assert!(matches!(state, DrState::Normal { .. }), "{}", state.phase());
    assert_eq!(sim.p, Db::Writer);
    assert_eq!(
        sim.d,
        Db::Replica,
        "a fresh DR replica protects the new primary"
    );
    assert!(sim.record_p);
    assert_eq!(sim.traffic, 100);
    assert_eq!(sim.promotions, 1);
    assert!(sim.bad_promotions.is_empty(), "{:?}", sim.bad_promotions);
    assert_eq!(
        sim.retired,
        [
            "lifeboat-lifeboat-local-orders-db-retired-primary-20261125t1200z".to_string(),
            sim.retired[1].clone()
        ]
    );
    assert!(sim.retired[1].contains("-retired-dr-"));
    // Each replacement is set up like the database it replaced, in its own region.
    assert_eq!(
        sim.created_like,
        vec![
            (Side::Primary, Some(shape(Side::Primary))),
            (Side::Dr, Some(shape(Side::Dr)))
        ]
    );
    let actions: Vec<&str> = decisions
        .iter()
        .flat_map(|d| d.notes.iter().map(|n| n.action.as_str()))
        .collect();
    for a in [
        "failback.retire-primary",
        "failback.reprotect",
        "failback.caught-up",
        "failback.fence-dr",
        "failback.promote",
        "failback.writer-moved",
        "failback.stage",
        "failback.traffic-moved",
        "failback.complete",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let summary = &decisions.last().unwrap().reply;
    assert!(
        summary.contains("Time per step: RetireOldPrimary"),
        "{summary}"
    );
    assert!(state.cooldown_until().is_some());
}

#[test]
fn each_stage_holds_for_the_bake_time_and_an_early_tick_does_not_advance() {
    let mut p = plan();
    p.failback.bake_minutes = 15;
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
    // Until the first stage is baking.
    for _ in 0..200 {
        run_ticks(&p, &mut state, &mut sim, 1);
        if failback_of(&state)
            .shift
            .as_ref()
            .is_some_and(|s| s.entered_at.is_some())
        {
            break;
        }
    }
    let entered = failback_of(&state)
        .shift
        .as_ref()
        .unwrap()
        .entered_at
        .unwrap();
    assert_eq!(sim.traffic, 10);
    // Ticks inside the bake time (15 minutes) do not advance.
    let mut early = 0;
    while sim.now + Duration::seconds(60) < entered + Duration::minutes(15) {
        early += 1;
        sim.advance(60);
        let d = feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
        assert!(d.reply.starts_with("baking at 10 %"), "{}", d.reply);
        assert!(d.actions.is_empty());
    }
    // A duplicate tick at the same instant changes nothing either.
    let before = state.clone();
    feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
    assert_eq!(state, before);
    assert!(early >= 10);
    sim.now = entered + Duration::minutes(15);
    run_ticks(&p, &mut state, &mut sim, 1);
    assert_eq!(sim.traffic, 50, "the next stage after the bake");
}

#[test]
fn a_gate_alarm_at_50_rolls_back_to_10_and_pauses_and_resume_continues() {
    let p = plan();
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
    for _ in 0..300 {
        run_ticks(&p, &mut state, &mut sim, 1);
        if sim.traffic == 50 && sim.traffic_pending == 0 {
            break;
        }
    }
    assert_eq!(sim.traffic, 50);
    sim.gate = true;
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
    assert_eq!(d.notes[0].action, "failback.gate");
    assert_eq!(sim.traffic, 10);
    let f = failback_of(&state);
    assert!(f.paused.as_deref().unwrap().contains("rolled back to 10 %"));
    // Paused: ticks do nothing, whatever the gates say.
    sim.gate = false;
    sim.advance(3600);
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
    assert!(d.reply.starts_with("paused"), "{}", d.reply);
    assert_eq!(sim.traffic, 10);
    // Resume: 10 % bakes again, then 50 %, then 100 %, then Normal.
    feed(&p, &mut state, &mut sim, FailbackInput::Resume, false);
    run_ticks(&p, &mut state, &mut sim, 400);
    assert!(matches!(state, DrState::Normal { .. }), "{}", state.phase());
    assert_eq!(sim.traffic, 100);
}

/// Runs the failback until it is paused by the gate at 50 % (rolled back to 10 %).
fn paused_by_the_gate_at_50(p: &Plan) -> (Sim, DrState) {
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    feed(p, &mut state, &mut sim, FailbackInput::Start, false);
    for _ in 0..300 {
        run_ticks(p, &mut state, &mut sim, 1);
        if sim.traffic == 50 && sim.traffic_pending == 0 {
            break;
        }
    }
    sim.gate = true;
    feed(p, &mut state, &mut sim, FailbackInput::Tick, false);
    assert_eq!(sim.traffic, 10);
    assert!(failback_of(&state).paused.is_some());
    (sim, state)
}

#[test]
fn resume_with_the_gate_still_in_alarm_stays_paused_and_moves_no_weight() {
    let p = plan();
    let (mut sim, mut state) = paused_by_the_gate_at_50(&p);
    sim.advance(600);
    let before = state.clone();
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Resume, false);
    assert!(d.refused, "{}", d.reply);
    assert!(d.actions.is_empty());
    assert!(
        d.reply.contains("gate alarm orders-api-5xx is in ALARM")
            && d.reply.contains("stays paused"),
        "{}",
        d.reply
    );
    assert_eq!(d.notes[0].action, "failback.resume-refused");
    assert_eq!(state, before, "nothing changes");
    assert_eq!(sim.traffic, 10);
    // A gate that cannot be read holds the resume too.
    sim.gate = false;
    sim.gate_unreadable = true;
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Resume, false);
    assert!(
        d.refused && d.reply.contains("could not be read"),
        "{}",
        d.reply
    );
    assert_eq!(sim.traffic, 10);
    // Once it reads OK, resume goes on to Normal.
    sim.gate_unreadable = false;
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Resume, false);
    assert!(!d.refused, "{}", d.reply);
    run_ticks(&p, &mut state, &mut sim, 400);
    assert!(matches!(state, DrState::Normal { .. }), "{}", state.phase());
    assert!(
        sim.moved_up_under_gate.is_empty(),
        "{:?}",
        sim.moved_up_under_gate
    );
}

#[test]
fn a_gate_firing_again_right_after_resume_pauses_before_the_stage_is_set() {
    let p = plan();
    let (mut sim, mut state) = paused_by_the_gate_at_50(&p);
    sim.gate = false;
    // The resume itself goes on at once (next: Continue) into the stage; the gate fires
    // between the resume's read and that look.
    let d = step(&p, &state, &FailbackInput::Resume, &sim.facts(), sim.now);
    assert!(!d.refused && d.next == Next::Continue, "{}", d.reply);
    state = d.state;
    sim.gate = true;
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
    assert!(d.actions.is_empty(), "no weight moves: {:?}", d.actions);
    assert_eq!(d.notes[0].action, "failback.gate");
    let f = failback_of(&state);
    assert!(
        f.paused.as_deref().unwrap().contains("before stage 10 %"),
        "{:?}",
        f.paused
    );
    assert_eq!(
        sim.traffic, 10,
        "never 10 -> higher -> 10 in one invocation"
    );
    assert!(sim.moved_up_under_gate.is_empty());
}

#[test]
fn an_unreadable_gate_holds_the_next_stage_without_pausing() {
    let p = plan();
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
    for _ in 0..300 {
        run_ticks(&p, &mut state, &mut sim, 1);
        if sim.traffic == 10 && sim.traffic_pending == 0 {
            break;
        }
    }
    sim.gate_unreadable = true;
    // Well past the bake: the next stage waits while the gate cannot be read.
    for _ in 0..10 {
        sim.advance(300);
        let d = feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
        assert!(d.actions.is_empty(), "{:?}", d.actions);
    }
    assert_eq!(sim.traffic, 10);
    assert!(failback_of(&state).paused.is_none());
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
    assert!(d.reply.contains("could not be read"), "{}", d.reply);
    sim.gate_unreadable = false;
    run_ticks(&p, &mut state, &mut sim, 400);
    assert!(matches!(state, DrState::Normal { .. }), "{}", state.phase());
}

#[test]
fn a_gate_alarm_at_the_first_stage_rolls_back_to_none() {
    let p = plan();
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
    for _ in 0..300 {
        run_ticks(&p, &mut state, &mut sim, 1);
        if sim.traffic == 10 && sim.traffic_pending == 0 {
            break;
        }
    }
    sim.gate = true;
    feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
    assert_eq!(sim.traffic, 0);
    assert!(failback_of(&state).paused.is_some());
}

#[test]
fn abort_before_the_writer_moves_leaves_everything_on_the_dr_side() {
    let p = plan();
    for stop_at in [
        Step::RetireOldPrimary,
        Step::Reprotect,
        Step::AwaitCatchUp,
        Step::FenceDrWriter,
        Step::AwaitFence,
        Step::PromotePrimary,
    ] {
        let mut sim = Sim::after_failover();
        let mut state = failed_over(sim.now);
        feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
        for _ in 0..400 {
            if matches!(&state, DrState::FailingBack(f) if f.step == stop_at) {
                break;
            }
            let d = feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
            if d.next == Next::Poll || d.next == Next::Stop {
                sim.advance(30);
            }
        }
        assert_eq!(failback_of(&state).step, stop_at);
        let d = feed(&p, &mut state, &mut sim, FailbackInput::Abort, false);
        assert!(
            d.reply.contains("writer and traffic are on the DR side"),
            "{stop_at}: {}",
            d.reply
        );
        assert!(matches!(state, DrState::FailedOver(_)), "{stop_at}");
        assert!(
            !sim.record_p,
            "{stop_at}: the record names the DR writer again"
        );
        assert_eq!(sim.traffic, 0);
        assert_eq!(sim.d, Db::Writer);
        assert_eq!(sim.promotions, 0);
    }
}

#[test]
fn abort_after_the_writer_moved_cuts_over_to_the_primary_and_finishes() {
    let p = plan();
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
    for _ in 0..300 {
        run_ticks(&p, &mut state, &mut sim, 1);
        if sim.traffic == 10 {
            break;
        }
    }
    let d = feed(&p, &mut state, &mut sim, FailbackInput::Abort, false);
    assert!(
        d.reply
            .contains("the writer is on the primary side, traffic follows it there"),
        "{}",
        d.reply
    );
    run_ticks(&p, &mut state, &mut sim, 200);
    assert!(matches!(state, DrState::Normal { .. }));
    assert_eq!(sim.traffic, 100);
    assert_eq!(sim.d, Db::Replica);
}

#[test]
fn start_is_refused_with_a_clear_reason() {
    let p = plan();
    let sim = Sim::after_failover();
    let facts = sim.facts();
    let d = step(
        &p,
        &DrState::default(),
        &FailbackInput::Start,
        &facts,
        sim.now,
    );
    assert!(
        d.refused
            && d.reply
                .contains("failback starts only from FailedOver, and the state is Normal"),
        "{}",
        d.reply
    );
    let mut cooling = failed_over(sim.now);
    if let DrState::FailedOver(f) = &mut cooling {
        f.cooldown_until = Some(sim.now + Duration::minutes(10));
    }
    let d = step(&p, &cooling, &FailbackInput::Start, &facts, sim.now);
    assert!(
        d.refused
            && d.reply
                .contains("the cooldown after the failover lasts until"),
        "{}",
        d.reply
    );
    let mut sick = sim.clone();
    sick.health_ok = false;
    let d = step(
        &p,
        &failed_over(sim.now),
        &FailbackInput::Start,
        &sick.facts(),
        sim.now,
    );
    assert!(
        d.refused
            && d.reply.contains(
                "the primary region is not healthy yet: orders-db-primary-unhealthy is ALARM"
            ),
        "{}",
        d.reply
    );
    let mut dark = sim.clone();
    dark.primary_reachable = false;
    let d = step(
        &p,
        &failed_over(sim.now),
        &FailbackInput::Start,
        &dark.facts(),
        sim.now,
    );
    assert!(
        d.refused && d.reply.contains("the primary region does not answer"),
        "{}",
        d.reply
    );
    // A failback already running is not started again.
    let mut state = failed_over(sim.now);
    let mut s2 = sim.clone();
    feed(&p, &mut state, &mut s2, FailbackInput::Start, false);
    let d = step(&p, &state, &FailbackInput::Start, &s2.facts(), s2.now);
    assert!(d.refused);
}

#[test]
fn a_crash_between_steps_resumes_without_repeating_or_skipping() {
    let p = plan();
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
    // The first action-taking invocation of every step crashes after its AWS calls and
    // before their outcomes are saved; the next tick must carry on from what it sees.
    let mut crashed = std::collections::HashSet::new();
    for _ in 0..600 {
        if matches!(state, DrState::Normal { .. }) {
            break;
        }
        let d = step(&p, &state, &FailbackInput::Tick, &sim.facts(), sim.now);
        let outcomes: Vec<FbOutcome> = d.actions.iter().map(|a| sim.act(a, &p)).collect();
        let crash = !d.actions.is_empty() && crashed.insert(state.phase());
        state = if crash {
            state.clone()
        } else {
            absorb(&d.state, &outcomes, sim.now)
        };
        if d.next != Next::Continue {
            sim.advance(30);
        }
    }
    assert!(matches!(state, DrState::Normal { .. }), "{}", state.phase());
    assert!(crashed.len() >= 6, "crashes injected: {crashed:?}");
    assert_eq!(sim.promotions, 1);
    assert!(sim.bad_promotions.is_empty(), "{:?}", sim.bad_promotions);
    assert_eq!(
        sim.retired.len(),
        2,
        "each writer retired once: {:?}",
        sim.retired
    );
    assert_eq!(
        (sim.p, sim.d, sim.record_p, sim.traffic),
        (Db::Writer, Db::Replica, true, 100)
    );
}

#[derive(Debug, Clone)]
enum Event {
    Tick(u16),
    Gate(bool),
    GateUnreadable(bool),
    Pause,
    Resume,
    Abort,
    Status,
    Crash,
    Start,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        10 => (1u16..400).prop_map(Event::Tick),
        1 => any::<bool>().prop_map(Event::Gate),
        1 => any::<bool>().prop_map(Event::GateUnreadable),
        1 => Just(Event::Pause),
        2 => Just(Event::Resume),
        1 => Just(Event::Abort),
        1 => Just(Event::Status),
        2 => Just(Event::Crash),
        1 => Just(Event::Start),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Over any sequence: traffic reaches the primary region only once the writer is
    /// there; the writer moves only fenced, in sync, after the TTL and at zero lag; it
    /// is promoted at most once per failback; Lifeboat's record never names a DR writer
    /// while a primary writer exists; and an abort before the writer moved leaves writer
    /// and traffic on the DR side.
    #[test]
    fn there_is_never_more_than_one_writer(events in proptest::collection::vec(event(), 1..120)) {
        let p = plan();
        let mut sim = Sim::after_failover();
        let mut state = failed_over(sim.now);
        for e in events {
            let (input, crash) = match e {
                Event::Tick(s) => { sim.advance(i64::from(s)); (FailbackInput::Tick, false) }
                Event::Gate(on) => { sim.gate = on; continue; }
                Event::GateUnreadable(on) => { sim.gate_unreadable = on; continue; }
                Event::Pause => (FailbackInput::Pause, false),
                Event::Resume => (FailbackInput::Resume, false),
                Event::Abort => (FailbackInput::Abort, false),
                Event::Status => (FailbackInput::Status, false),
                Event::Crash => (FailbackInput::Tick, true),
                Event::Start => (FailbackInput::Start, false),
            };
            let before = state.clone();
            sim.moved_up_under_gate.clear();
            let mut d = feed(&p, &mut state, &mut sim, input.clone(), crash);
            let mut n = 0;
            while d.next == Next::Continue && !crash && n < 20 {
                d = feed(&p, &mut state, &mut sim, FailbackInput::Tick, false);
                n += 1;
            }
            prop_assert!(sim.bad_promotions.is_empty(), "{:?}", sim.bad_promotions);
            // No weight moves towards the primary while a gate fires, except the abort's
            // cut-over (all traffic to the writer that already moved).
            let cut_over = matches!(&state, DrState::FailingBack(f) if f.cut_over)
                || matches!(input, FailbackInput::Abort);
            prop_assert!(cut_over || sim.moved_up_under_gate.is_empty(), "moved up under a firing gate: {:?}", sim.moved_up_under_gate);
            if sim.traffic > 0 && sim.traffic_pending == 0 {
                prop_assert!(matches!(sim.p, Db::Writer), "traffic {} % on the primary while it is {:?}", sim.traffic, sim.p);
            }
            prop_assert!(!(matches!(sim.d, Db::Writer) && matches!(sim.p, Db::Writer) && !sim.record_p), "the record names the DR writer while the primary writes");
            if let (DrState::FailingBack(f), FailbackInput::Abort, DrState::FailedOver(_)) = (&before, &input, &state) {
                prop_assert!(f.targets.iter().all(|t| t.promote_issued_at.is_none()));
                prop_assert_eq!(sim.traffic, 0);
            }
            if let DrState::FailingBack(f) = &state {
                prop_assert!(f.traffic_primary_percent == 0 || f.writer == Side::Primary);
            }
        }
    }
}

#[test]
fn failback_reports_time_in_each_step() {
    let p = plan();
    let mut sim = Sim::after_failover();
    let mut state = failed_over(sim.now);
    feed(&p, &mut state, &mut sim, FailbackInput::Start, false);
    run_ticks(&p, &mut state, &mut sim, 2);
    let f = failback_of(&state);
    let steps = f.time_in_steps(sim.now);
    assert_eq!(steps[0].0, Step::RetireOldPrimary);
    assert!(steps.iter().all(|(_, s)| *s >= 0));
}
