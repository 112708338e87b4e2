//! Which part of the failover function an invocation is for. The function answers
//! game-day commands beside the failover's own events; this
//! decides which, from the payload alone, before anything is read from AWS. A command
//! of another function is refused, naming it.

use super::event::InputError;
use crate::gameday::run::GameDayInput;
use crate::request::require_object;
use crate::routing::{Function, refuse_misdirected};

/// Where an invocation of the failover function goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailoverRoute {
    /// A game-day command.
    GameDay(GameDayInput),
    /// Everything else is the failover's: an alarm, a tick, an RDS event, a command
    /// (parsed by [`super::parse_input`], which refuses what it does not know).
    Dr,
}

/// Route a payload. A payload that is not a JSON object is refused here, whichever part
/// it might have been meant for; a game-day command that is
/// malformed is refused with what that command expects.
pub fn route(payload: &serde_json::Value) -> Result<FailoverRoute, InputError> {
    require_object("failover", payload)?;
    refuse_misdirected(Function::Failover, payload).map_err(|e| InputError(e.to_string()))?;
    if let Some(input) = crate::gameday::run::parse_command(payload).map_err(InputError)? {
        return Ok(FailoverRoute::GameDay(input));
    }
    Ok(FailoverRoute::Dr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::parse_input;
    use crate::request::{JsonKind, RequestError, arbitrary, expected_by};
    use proptest::prelude::*;

    #[test]
    fn each_sample_goes_where_it_belongs() {
        for (name, text) in arbitrary::SAMPLES
            .iter()
            .filter(|(f, _, _)| *f == "failover")
            .map(|(_, n, t)| (*n, *t))
        {
            let payload: serde_json::Value = serde_json::from_str(text).unwrap();
            let routed = route(&payload).unwrap_or_else(|e| panic!("events/{name}: {e}"));
            let expected = match name {
                "game-day.json" | "game-day-status.json" => "game day",
                _ => "dr",
            };
            let got = match routed {
                FailoverRoute::GameDay(_) => "game day",
                FailoverRoute::Dr => {
                    parse_input(&payload).unwrap_or_else(|e| panic!("events/{name}: {e}"));
                    "dr"
                }
            };
            assert_eq!(got, expected, "events/{name}");
        }
    }

    #[test]
    fn a_recovery_command_is_refused_naming_the_recovery_function() {
        let recover: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/recover.json")).unwrap();
        let err = route(&recover).unwrap_err();
        assert!(err.0.contains("RecoveryFunctionName"), "{err}");
    }

    proptest! {
        #[test]
        fn no_payload_panics_the_failover_function_and_only_objects_get_past_it(
            v in arbitrary::requests_for("failover")
        ) {
            let routed = route(&v);
            if v.is_object() {
                if let Ok(FailoverRoute::Dr) = routed {
                    let _ = parse_input(&v);
                }
            } else {
                let refusal = RequestError::NotAnObject {
                    function: "failover",
                    got: JsonKind::of(&v),
                    expects: expected_by("failover"),
                }
                .to_string();
                prop_assert_eq!(routed.unwrap_err().0, refusal.clone());
                prop_assert_eq!(parse_input(&v).unwrap_err().0, refusal);
            }
        }
    }
}
