//! Lifeboat's integration tests: the real adapters against the local AWS emulator (each
//! test in a fresh account of its own) and real databases. Run with `make test`.

mod audit_trail;
mod checks_read_only;
mod clients;
mod commands;
mod detection;
mod edges;
mod emulator;
mod failback;
mod failover;
mod gameday;
mod interruption;
mod lease;
mod mutated_events;
mod pitr;
mod readiness;
mod realism_alarms;
mod realism_control;
mod realism_faults;
mod realism_limits;
mod realism_states;
mod recovery;
mod requests;
mod retention;
mod snapshot;
mod state_store;
mod support;
mod validation;
mod world;
