//! Lifeboat: disaster recovery for AWS databases, as Lambda functions.
//!
//! This crate holds everything but the functions' thin `main.rs` files:
//! - the pure core: the DR [`plan`], the [`retention`] planner and, as they land, the
//!   other decisions and state machines (tiers, failover, failback, [`gameday`]), which take `now` as an
//!   argument and touch no AWS type;
//! - the ports ([`state::StateStore`], [`notify::Notifier`], [`report::ReportSink`]) and
//!   their adapters on the AWS SDK in [`aws`];
//! - the small edges every function needs: [`config`], [`metrics`] (EMF), [`telemetry`].

pub mod aws;
pub mod backup;
pub mod budget;
pub mod command;
pub mod config;
pub mod detection;
pub mod dr;
pub mod envelope;
pub mod error;
pub mod failback;
pub mod failover;
pub mod function;
pub mod gameday;
pub mod ident;
pub mod metrics;
pub mod notify;
pub mod plan;
pub mod posture;
pub mod readiness;
pub mod recovery;
pub mod report;
pub mod request;
pub mod retention;
pub mod routing;
pub mod schedule;
pub mod state;
pub mod telemetry;
pub mod validation;
