//! The drill as a game day: the game-day state machine (`lifeboat::gameday`) runs beside
//! the failover and failback stages, fed the real DR document after every step, and the
//! drill performs its actions itself: the injection is "signal only" (the failover stage
//! sets the plan's health alarm to ALARM), the verification reads the writer record and
//! the promoted replica back from the emulator, and the failback is the failback stage.
//! The drill's summary is the game day's report, with the same fields a deployed game day
//! writes: hypothesis held or not, RTO split, data-loss window, time in each failback
//! stage.

use super::say;
use harness::World;
use lifeboat::aws::{DynamoStateStore, read_cname};
use lifeboat::dr::Next;
use lifeboat::dr::run::{DrDocument, dr_key};
use lifeboat::gameday::{
    CanaryResult, GameDayAction, GameDayEvent, GameDayFacts, GameDayMode, GameDayReport,
    GameDayState, Verification, dr_facts, render_report, step,
};
use lifeboat::plan::Plan;
use lifeboat::state;

/// A game day run by the drill, on the local stack.
pub struct LocalGameDay<'a> {
    plan: &'a Plan,
    world: &'a World,
    store: DynamoStateStore,
    state: GameDayState,
    report: Option<GameDayReport>,
    /// The last thing the machine said, so that a wait is printed once.
    said: String,
}

impl<'a> LocalGameDay<'a> {
    /// A game day of `plan` in the drill's world.
    pub fn new(plan: &'a Plan, world: &'a World) -> Self {
        LocalGameDay {
            plan,
            world,
            store: DynamoStateStore::new(
                world.clients.home.dynamodb.clone(),
                &world.control.state_table,
            ),
            state: GameDayState::default(),
            report: None,
            said: String::new(),
        }
    }

    async fn facts(&self) -> Result<GameDayFacts, String> {
        let doc = state::load::<DrDocument>(&self.store, &dr_key(self.plan))
            .await
            .map_err(|e| e.to_string())?
            .map(|v| v.value)
            .unwrap_or_default();
        let mut firing = Vec::new();
        for alarm in &self.plan.game_days.stop_condition_alarms {
            let cw = if self.plan.alarm_region(alarm) == self.plan.regions.primary {
                &self.world.clients.primary.cloudwatch
            } else {
                &self.world.clients.dr.cloudwatch
            };
            let out = cw
                .describe_alarms()
                .alarm_names(&alarm.name)
                .send()
                .await
                .map_err(|e| format!("reading the stop-condition alarm {}: {e}", alarm.name))?;
            if out
                .metric_alarms()
                .iter()
                .any(|a| a.state_value() == Some(&aws_sdk_cloudwatch::types::StateValue::Alarm))
            {
                firing.push(alarm.name.clone());
            }
        }
        Ok(GameDayFacts {
            // The failback's last step waits for the DR replicas to be re-created, so a
            // Normal reached by the failback is protected; the drill's posture check
            // after the failback asserts it.
            dr: dr_facts(&doc.state, true),
            recovery_active: doc
                .recoveries
                .recoveries
                .iter()
                .find(|r| r.phase.active())
                .map(|r| r.id.clone()),
            stop_alarms_firing: firing,
            history: vec![],
        })
    }

    /// Step with `event` (and again with ticks while the machine asks to go on);
    /// print what it says; return the actions to perform.
    async fn step(&mut self, event: GameDayEvent) -> Result<Vec<GameDayAction>, String> {
        let mut event = event;
        let mut actions = Vec::new();
        for _ in 0..8 {
            let facts = self.facts().await?;
            let decision = step(&self.state, &event, self.plan, &facts, chrono::Utc::now());
            if let Some(refused) = decision.refusal {
                return Err(format!("the game day was refused: {refused}"));
            }
            self.state = decision.state;
            if !decision.reply.is_empty() && decision.reply != self.said {
                say(format!("  game day: {}", decision.reply));
                self.said = decision.reply.clone();
            }
            for action in decision.actions {
                match action {
                    GameDayAction::Notify { severity, text } => {
                        say(format!("  game day [{severity:?}]: {text}"));
                    }
                    GameDayAction::WriteReport(report) => self.report = Some(*report),
                    other => actions.push(other),
                }
            }
            if decision.next != Next::Continue {
                break;
            }
            event = GameDayEvent::Tick;
        }
        Ok(actions)
    }

    /// Start: the hypothesis is set and the machine asks for the injection, which the
    /// failover stage performs (it sets the health alarm to ALARM) right after.
    pub async fn start(&mut self) -> Result<(), String> {
        say(format!(
            "game day (signal only) on plan {}: hypothesis: failover within the RTO target, data loss within the RPO target, failback returns to Normal and protected",
            self.plan.name
        ));
        let actions = self
            .step(GameDayEvent::Start {
                id: format!("drill-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")),
                mode: Some(GameDayMode::SignalOnly),
                who: "make drill".into(),
            })
            .await?;
        if !actions
            .iter()
            .any(|a| matches!(a, GameDayAction::Inject { .. }))
        {
            return Err(format!("the game day asked for no injection: {actions:?}"));
        }
        self.step(GameDayEvent::InjectionStarted {
            experiment_id: None,
        })
        .await?;
        Ok(())
    }

    /// After the failover: the machine asks for the verification; the drill reads the
    /// writer record and the promoted replica back and reports; the machine then asks
    /// for the failback.
    pub async fn verify(&mut self) -> Result<(), String> {
        let actions = self.step(GameDayEvent::DrObserved).await?;
        if !actions
            .iter()
            .any(|a| matches!(a, GameDayAction::Verify { .. }))
        {
            return Err(format!(
                "after the failover the game day asked for no verification: {actions:?}"
            ));
        }
        let mut answered = true;
        let mut details = Vec::new();
        for r in &self.plan.resources {
            let (Some(record), Some(replica)) = (&r.dns_record, &r.replica) else {
                continue;
            };
            let out = self
                .world
                .clients
                .dr
                .rds
                .describe_db_instances()
                .db_instance_identifier(&replica.identifier)
                .send()
                .await
                .map_err(|e| format!("describing {}: {e}", replica.identifier))?;
            let db = out.db_instances().first();
            let endpoint = db
                .and_then(|d| d.endpoint())
                .and_then(|e| e.address())
                .unwrap_or_default()
                .to_string();
            let writer = db.is_some_and(|d| {
                d.db_instance_status() == Some("available")
                    && d.read_replica_source_db_instance_identifier().is_none()
            });
            let values = read_cname(&self.world.clients.route53, &self.world.zone_id, record)
                .await
                .map_err(|e| e.to_string())?
                .map(|f| f.values)
                .unwrap_or_default();
            let points = values
                .iter()
                .any(|(v, _)| v.trim_end_matches('.').eq_ignore_ascii_case(&endpoint));
            answered &= writer && points;
            details.push(format!(
                "{record} -> {endpoint}: {} writer, record {}",
                if writer {
                    "available"
                } else {
                    "NOT an available"
                },
                if points {
                    "points at it"
                } else {
                    "does NOT point at it"
                }
            ));
        }
        let detail = details.join("; ");
        say(format!(
            "  verification: {detail} (no canary in the local plan)"
        ));
        let actions = self
            .step(GameDayEvent::Verified(Verification {
                endpoint_answered: answered,
                canary: CanaryResult::NotConfigured,
                detail,
            }))
            .await?;
        if !actions
            .iter()
            .any(|a| matches!(a, GameDayAction::StartFailback))
        {
            return Err(format!(
                "after the verification the game day asked for no failback: {actions:?}"
            ));
        }
        Ok(())
    }

    /// While the failback runs: the machine records the stages it sees.
    pub async fn observe(&mut self) -> Result<(), String> {
        self.step(GameDayEvent::DrObserved).await.map(|_| ())
    }

    /// After the failback: the report, printed as the drill's summary. Fails the drill
    /// when the hypothesis did not hold.
    pub async fn finish(&mut self) -> Result<(), String> {
        self.step(GameDayEvent::DrObserved).await?;
        let report = self
            .report
            .take()
            .ok_or("the game day wrote no report after the failback")?;
        self.step(GameDayEvent::ReportWritten).await?;
        for line in render_report(&report) {
            say(line);
        }
        if !report.hypothesis.held() {
            return Err("the game day's hypothesis did not hold".into());
        }
        Ok(())
    }
}
