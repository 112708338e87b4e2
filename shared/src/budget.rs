//! Time budgets: how long one AWS call may take, and what that leaves a step acting under
//! a lease.
//!
//! A step's actions run under a lease on the state document ([`LEASE_SECONDS`], capped by
//! the invocation's deadline). Every SDK call is bounded as a whole: a connection in
//! [`CONNECT_TIMEOUT`], one attempt in [`ATTEMPT_TIMEOUT`], and the operation with all its
//! retries and backoff in [`CALL_TIMEOUT`]. The commit that records a step is one such
//! call, so the executor keeps [`COMMIT_RESERVE`] of the lease for it: an action starts
//! only while the lease has more than that left, and one still running when only that is
//! left is given up (the next look re-reads AWS; the call may have taken effect). The
//! commit itself is fenced by the lease, so an invocation that overran anyway (a frozen
//! process) cannot commit. With a 120 s lease, actions have 95 s: four hung calls in a
//! row, or any number of ordinary ones.

use chrono::{DateTime, Duration, Utc};

/// Longest a lease is held for one step's actions.
pub const LEASE_SECONDS: i64 = 120;

/// Longest to wait for a TCP/TLS connection.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Longest one attempt of a call may take (a hung request is abandoned and retried).
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest one call may take in all: every attempt, and the backoff between them.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Lease kept for the commit that records a step: one call, and 5 s for the clocks of
/// two Lambda hosts to differ.
pub const COMMIT_RESERVE_SECONDS: i64 = CALL_TIMEOUT.as_secs() as i64 + 5;

/// Longest to wait for a connection to a database a check or the canary talks to.
pub const DATABASE_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The longest a plan may let one check's statement run, in seconds. Checks run as
/// actions under a step's lease: the credentials (one call), the connection and one
/// statement at this limit fit in an action's window, so every check can end inside one
/// action and the checks move on from action to action, never cut off half-way for ever.
pub const MAX_STATEMENT_TIMEOUT_SECONDS: u32 = 60;

/// Kept free after a check's statement limit before a check starts: the read-only proof
/// before it and the round trips.
pub const CHECK_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// [`COMMIT_RESERVE_SECONDS`] as a duration.
pub fn commit_reserve() -> Duration {
    Duration::seconds(COMMIT_RESERVE_SECONDS)
}

/// How long an action starting at `now` may run under a lease lapsing at `until`: until
/// only the commit's reserve is left. `None`: too little is left to start one.
pub fn action_window(now: DateTime<Utc>, until: DateTime<Utc>) -> Option<std::time::Duration> {
    let left = until - now - commit_reserve();
    (left > Duration::zero()).then(|| left.to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_full_lease_leaves_room_for_several_bounded_calls() {
        let now = Utc::now();
        let window = action_window(now, now + Duration::seconds(LEASE_SECONDS)).unwrap();
        assert_eq!(window.as_secs(), 95);
        assert!(window >= 4 * CALL_TIMEOUT);
        assert!(ATTEMPT_TIMEOUT < CALL_TIMEOUT && CONNECT_TIMEOUT < ATTEMPT_TIMEOUT);
    }

    #[test]
    fn a_check_at_the_longest_statement_limit_fits_in_one_action() {
        let now = Utc::now();
        let window = action_window(now, now + Duration::seconds(LEASE_SECONDS)).unwrap();
        let statement = std::time::Duration::from_secs(MAX_STATEMENT_TIMEOUT_SECONDS.into());
        // The secret's read, the connection, one statement and its margin.
        assert!(CALL_TIMEOUT + DATABASE_CONNECT_TIMEOUT + statement + CHECK_MARGIN <= window);
    }

    proptest! {
        /// An action started within its window, and cut off at its end, always leaves the
        /// commit's reserve before the lease lapses; none starts without it.
        #[test]
        fn an_action_and_its_commit_end_inside_the_lease(
            lease in 0i64..900,
            elapsed_ms in 0i64..900_000,
        ) {
            let taken = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
            let until = taken + Duration::seconds(lease);
            let now = taken + Duration::milliseconds(elapsed_ms);
            match action_window(now, until) {
                Some(w) => {
                    let end = now + Duration::from_std(w).unwrap();
                    prop_assert!(end + commit_reserve() <= until);
                    prop_assert!(!w.is_zero());
                }
                None => prop_assert!(now + commit_reserve() >= until),
            }
        }
    }
}
