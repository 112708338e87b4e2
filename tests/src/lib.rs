//! The local-stack harness shared by the integration tests and the drill: how to reach
//! the local AWS emulator, a fresh isolated account per test, the realism layer's control
//! API (clock, faults, limits), the demo world the DR plan describes, the timing of
//! waits, a real PostgreSQL point-in-time restore ([`pitr`]), and stopping what it starts
//! also when the process is told to stop ([`teardown`]).

pub mod databases;
pub mod functions;
pub mod http_sink;
pub mod local;
pub mod pitr;
pub mod realism;
pub mod retention;
pub mod teardown;
pub mod timing;
pub mod world;

pub use local::{Account, LocalAws, PrivateEmulator};
pub use world::{ControlPlane, Settle, World, create_world, create_world_with, plan_in_account};
