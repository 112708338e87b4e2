//! The local-stack harness shared by the integration tests and the drill: how to reach
//! the local AWS emulator, a fresh isolated account per test, and the demo world the DR
//! plan describes.

pub mod functions;
pub mod http_sink;
pub mod local;
pub mod world;

pub use local::{Account, LocalAws};
pub use world::{ControlPlane, World, create_world, plan_in_account};
