//! Snapshot schedule: windows, tiers and names (pure).
//!
//! Time is cut into windows of the resource's interval, aligned to midnight UTC (the plan
//! only allows intervals that divide a day or are whole days). Each window gets at most
//! one snapshot per resource, named after the window's start, so a duplicate or retried
//! tick in the same window finds the snapshot already there and creates nothing twice.

use crate::plan::{TierRules, Weekday};
use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The tier a snapshot belongs to, by the window it was taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Every window is at least daily.
    Daily,
    /// The first window of the plan's weekly day.
    Weekly,
    /// The first window of the plan's monthly day.
    Monthly,
    /// The monthly window of the plan's yearly month.
    Yearly,
}

impl Tier {
    /// Lowercase name, as in tags and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
            Tier::Yearly => "yearly",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "daily" => Ok(Tier::Daily),
            "weekly" => Ok(Tier::Weekly),
            "monthly" => Ok(Tier::Monthly),
            "yearly" => Ok(Tier::Yearly),
            other => Err(format!(
                "unknown tier {other:?}; use one of daily, weekly, monthly, yearly"
            )),
        }
    }
}

/// One schedule window of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Its start (inclusive).
    pub start: DateTime<Utc>,
    /// Its length in minutes.
    pub minutes: u32,
}

impl Window {
    /// Its end (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        // Saturates at the last time chrono holds rather than overflow (a panic).
        self.start
            .checked_add_signed(chrono::Duration::minutes(i64::from(self.minutes)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether `t` falls in it.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end()
    }

    /// The window's start as it appears in names: `20261125t0600z`.
    pub fn stamp(&self) -> String {
        stamp(self.start)
    }
}

/// `20261125t0600z`: the minute of `t`, in the lowercase form RDS stores identifiers in.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dt%H%Mz").to_string()
}

/// The window of `interval_minutes` that contains `t`. Windows tile time from the Unix
/// epoch (a midnight UTC), so intervals that divide a day start at midnight every day and
/// whole-day intervals start at midnight every N days.
pub fn window_at(t: DateTime<Utc>, interval_minutes: u32) -> Window {
    let interval = i64::from(interval_minutes.max(1)) * 60;
    let secs = t.timestamp();
    let start = secs - secs.rem_euclid(interval);
    Window {
        start: Utc
            .timestamp_opt(start, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        minutes: interval_minutes.max(1),
    }
}

/// The tier of a window under the plan's rules: the first window of a day (the one that
/// starts at midnight) is weekly, monthly or yearly when the day is one of those days;
/// every other window is daily.
pub fn tier_of(window: &Window, rules: &TierRules) -> Tier {
    let start = window.start;
    if start.time() != NaiveTime::MIN {
        return Tier::Daily;
    }
    let monthly_day = start.day() == rules.monthly_on_day;
    if monthly_day && start.month() == rules.yearly_in_month {
        Tier::Yearly
    } else if monthly_day {
        Tier::Monthly
    } else if weekday(start) == rules.weekly_on {
        Tier::Weekly
    } else {
        Tier::Daily
    }
}

fn weekday(t: DateTime<Utc>) -> Weekday {
    match t.weekday() {
        chrono::Weekday::Mon => Weekday::Monday,
        chrono::Weekday::Tue => Weekday::Tuesday,
        chrono::Weekday::Wed => Weekday::Wednesday,
        chrono::Weekday::Thu => Weekday::Thursday,
        chrono::Weekday::Fri => Weekday::Friday,
        chrono::Weekday::Sat => Weekday::Saturday,
        chrono::Weekday::Sun => Weekday::Sunday,
    }
}

/// The name of a resource's snapshot (or DynamoDB backup) for a window:
/// `lifeboat-<plan>-<resource>-<stamp>`. Plan and resource ids are lowercase slugs, so the
/// name is a valid RDS snapshot identifier and DynamoDB backup name.
pub fn snapshot_name(plan: &str, resource: &str, start: DateTime<Utc>) -> String {
    format!("lifeboat-{plan}-{resource}-{}", stamp(start))
}

/// The window start encoded in a Lifeboat snapshot name of `plan` and `resource`.
pub fn parse_snapshot_name(plan: &str, resource: &str, name: &str) -> Option<DateTime<Utc>> {
    let rest = name.strip_prefix(&format!("lifeboat-{plan}-{resource}-"))?;
    let naive = chrono::NaiveDateTime::parse_from_str(rest, "%Y%m%dt%H%Mz").ok()?;
    Some(Utc.from_utc_datetime(&naive))
}

/// Whether `t` is exactly on a minute (names carry minutes only).
pub fn on_minute(t: DateTime<Utc>) -> bool {
    t.second() == 0 && t.nanosecond() == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn windows_align_to_midnight() {
        let w = window_at(at(2026, 11, 25, 6, 44), 60);
        assert_eq!(w.start, at(2026, 11, 25, 6, 0));
        assert_eq!(w.end(), at(2026, 11, 25, 7, 0));
        assert_eq!(w.stamp(), "20261125t0600z");
        let w = window_at(at(2026, 11, 25, 23, 59), 1440);
        assert_eq!(w.start, at(2026, 11, 25, 0, 0));
        let w = window_at(at(2026, 11, 25, 13, 0), 720);
        assert_eq!(w.start, at(2026, 11, 25, 12, 0));
    }

    #[test]
    fn tiers_follow_the_plan_rules() {
        let rules = TierRules::default(); // weekly on Sunday, monthly on the 1st, yearly in January
        let tier = |t| tier_of(&window_at(t, 60), &rules);
        assert_eq!(tier(at(2026, 11, 25, 0, 10)), Tier::Daily); // a Wednesday
        assert_eq!(tier(at(2026, 11, 29, 0, 10)), Tier::Weekly); // a Sunday
        assert_eq!(tier(at(2026, 11, 29, 1, 10)), Tier::Daily); // not the first window
        assert_eq!(tier(at(2026, 12, 1, 0, 30)), Tier::Monthly);
        assert_eq!(tier(at(2027, 1, 1, 0, 0)), Tier::Yearly);
        let custom = TierRules {
            weekly_on: Weekday::Friday,
            monthly_on_day: 15,
            yearly_in_month: 6,
        };
        assert_eq!(
            tier_of(&window_at(at(2026, 11, 27, 0, 0), 1440), &custom),
            Tier::Weekly
        );
        assert_eq!(
            tier_of(&window_at(at(2026, 11, 15, 0, 0), 1440), &custom),
            Tier::Monthly
        );
        assert_eq!(
            tier_of(&window_at(at(2027, 6, 15, 0, 0), 1440), &custom),
            Tier::Yearly
        );
    }

    #[test]
    fn names_round_trip_and_tiers_parse() {
        let start = at(2026, 11, 25, 6, 0);
        let name = snapshot_name("lifeboat-local", "orders-db", start);
        assert_eq!(name, "lifeboat-lifeboat-local-orders-db-20261125t0600z");
        assert_eq!(
            parse_snapshot_name("lifeboat-local", "orders-db", &name),
            Some(start)
        );
        assert_eq!(parse_snapshot_name("other", "orders-db", &name), None);
        assert_eq!(parse_snapshot_name("lifeboat-local", "orders", &name), None);
        assert_eq!("monthly".parse::<Tier>(), Ok(Tier::Monthly));
        assert!(
            "hourly"
                .parse::<Tier>()
                .unwrap_err()
                .contains("use one of daily")
        );
    }

    fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
        // 2000-01-01 .. 2100-01-01
        (946_684_800i64..4_102_444_800i64).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
    }

    fn any_interval() -> impl Strategy<Value = u32> {
        prop::sample::select(vec![
            15u32, 20, 30, 60, 120, 240, 360, 480, 720, 1440, 2880, 10080,
        ])
    }

    fn any_rules() -> impl Strategy<Value = TierRules> {
        (0usize..7, 1u32..=28, 1u32..=12).prop_map(|(w, d, m)| TierRules {
            weekly_on: [
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
                Weekday::Saturday,
                Weekday::Sunday,
            ][w],
            monthly_on_day: d,
            yearly_in_month: m,
        })
    }

    #[test]
    fn the_last_windows_chrono_can_hold_end_without_a_panic() {
        for t in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            for minutes in [1, 60, 1440, 10080] {
                let w = window_at(t, minutes);
                assert!(w.end() >= w.start);
                let _ = w.contains(t);
            }
        }
    }

    proptest! {
        /// The window of `t` contains `t`, starts on a minute, and is its own window.
        #[test]
        fn a_window_contains_its_instant_and_is_stable(t in any_time(), interval in any_interval()) {
            let w = window_at(t, interval);
            prop_assert!(w.contains(t));
            prop_assert!(on_minute(w.start));
            prop_assert_eq!(window_at(w.start, interval), w);
            prop_assert_eq!(window_at(w.end() - chrono::Duration::seconds(1), interval), w);
            // Windows of intervals that tile a day start at midnight every day.
            if interval <= 1440 {
                let midnight = w.start.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
                prop_assert_eq!((w.start - midnight).num_minutes() % i64::from(interval), 0);
            }
        }

        /// A snapshot name encodes its window, and only for its own plan and resource.
        #[test]
        fn names_encode_their_window(t in any_time(), interval in any_interval()) {
            let w = window_at(t, interval);
            let name = snapshot_name("plan-a", "db-1", w.start);
            prop_assert_eq!(parse_snapshot_name("plan-a", "db-1", &name), Some(w.start));
            prop_assert!(name.len() <= 255);
            prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }

        /// Over a whole year of windows, each ISO week has at most one weekly window, each
        /// month at most one monthly window, and the year at most one yearly window; a
        /// tier above daily only ever falls on a window starting at midnight.
        #[test]
        fn promoted_tiers_are_rare_and_fall_on_midnight(year in 2001i32..2099, interval in prop::sample::select(vec![60u32, 240, 720, 1440]), rules in any_rules()) {
            let mut t = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap();
            let end = Utc.with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0).unwrap();
            let mut weekly = std::collections::HashMap::new();
            let mut monthly = std::collections::HashMap::new();
            let mut yearly = 0;
            while t < end {
                let w = window_at(t, interval);
                let tier = tier_of(&w, &rules);
                if tier != Tier::Daily {
                    prop_assert_eq!(w.start.time(), NaiveTime::MIN);
                }
                match tier {
                    Tier::Weekly => *weekly.entry((w.start.iso_week().year(), w.start.iso_week().week())).or_insert(0) += 1,
                    Tier::Monthly => *monthly.entry(w.start.month()).or_insert(0) += 1,
                    Tier::Yearly => yearly += 1,
                    Tier::Daily => {}
                }
                t = w.end();
            }
            prop_assert!(weekly.values().all(|n| *n == 1));
            prop_assert!(monthly.values().all(|n| *n == 1));
            prop_assert_eq!(monthly.len(), 11, "every month but the yearly one has its monthly");
            prop_assert_eq!(yearly, 1);
        }
    }
}
