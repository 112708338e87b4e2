//! How long a wait took, split into the time AWS took and the time added on top.
//!
//! The drill measures every wait it makes this way, so the measured recovery time splits
//! into "AWS" (the transitions the emulator ran, at realistic durations compressed by the
//! time scale) and "on top" (polling gaps, Lifeboat's own work): the part Lifeboat must
//! drive toward zero. Each later drill stage reports its steps with the same type.

use crate::realism::Transition;
use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, as the emulator reports wall times.
pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One measured step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTiming {
    /// What was waited for, e.g. `orders-db available`.
    pub step: String,
    /// What AWS took, in AWS seconds (the transitions' durations).
    pub aws_simulated_s: f64,
    /// What AWS took, in real seconds (compressed by the time scale).
    pub aws_real_s: f64,
    /// From the step's start until it was noticed, in real seconds.
    pub total_real_s: f64,
    /// Real seconds per AWS second while it ran.
    pub time_scale: f64,
}

impl StepTiming {
    /// A step made of `transitions` (one resource's, in order), started at `began_wall`
    /// (or with the first transition, when that is later) and noticed done at
    /// `noticed_wall`.
    pub fn from_transitions(
        step: impl Into<String>,
        transitions: &[&Transition],
        began_wall: Option<f64>,
        noticed_wall: f64,
        time_scale: f64,
    ) -> Self {
        let done: Vec<&&Transition> = transitions
            .iter()
            .filter(|t| t.state == "completed")
            .collect();
        let first = done
            .iter()
            .map(|t| t.started_at_wall)
            .fold(f64::NAN, f64::min);
        let last = done
            .iter()
            .map(|t| t.completes_at_wall)
            .fold(f64::NAN, f64::max);
        let aws_real_s = if done.is_empty() { 0.0 } else { last - first };
        let began = match began_wall {
            Some(b) if !done.is_empty() => b.min(first),
            Some(b) => b,
            None if !done.is_empty() => first,
            None => noticed_wall,
        };
        StepTiming {
            step: step.into(),
            aws_simulated_s: done.iter().map(|t| t.seconds).sum(),
            aws_real_s,
            total_real_s: (noticed_wall - began).max(aws_real_s),
            time_scale,
        }
    }

    /// Real seconds on top of AWS's.
    pub fn overhead_real_s(&self) -> f64 {
        (self.total_real_s - self.aws_real_s).max(0.0)
    }

    /// The time on top, at AWS's pace: what it would add to a real recovery if it grew
    /// with the durations (polling intervals tuned for the compressed world do).
    pub fn overhead_at_aws_pace_s(&self) -> f64 {
        if self.time_scale > 0.0 {
            self.overhead_real_s() / self.time_scale
        } else {
            0.0
        }
    }
}

impl fmt::Display for StepTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: AWS {} simulated ({:.2} s real), +{:.2} s real on top (≈ {} at AWS pace)",
            self.step,
            human(self.aws_simulated_s),
            self.aws_real_s,
            self.overhead_real_s(),
            human(self.overhead_at_aws_pace_s()),
        )
    }
}

/// A duration for people: `45 s`, `20 min`, `1 h 5 min`.
pub fn human(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=3599 => {
            let (m, r) = (s / 60, s % 60);
            if r == 0 {
                format!("{m} min")
            } else {
                format!("{m} min {r} s")
            }
        }
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// Aligned lines, one per step.
pub fn render(timings: &[StepTiming]) -> String {
    let width = timings.iter().map(|t| t.step.len()).max().unwrap_or(0);
    let mut out = String::new();
    for t in timings {
        out.push_str(&format!(
            "{:<width$}  AWS {:>12} ({:>5.2} s real)   on top {:>5.2} s real (≈ {} at AWS pace)\n",
            t.step,
            human(t.aws_simulated_s),
            t.aws_real_s,
            t.overhead_real_s(),
            human(t.overhead_at_aws_pace_s()),
        ));
    }
    out
}

/// Poll `check` every `interval` until it says done, for at most `timeout`; returns the
/// wall time at which it was noticed done.
pub async fn poll_until<F, Fut>(
    what: &str,
    interval: Duration,
    timeout: Duration,
    mut check: F,
) -> Result<f64, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, String>>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await? {
            return Ok(wall_now());
        }
        if started.elapsed() >= timeout {
            return Err(format!(
                "gave up waiting for {what} after {:.1} s",
                timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(interval).await;
    }
}
