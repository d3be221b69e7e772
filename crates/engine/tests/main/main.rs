//! The engine's integration tests, one binary: scenarios, the model test,
//! identity, reading, watching, lost replies, and the engine on each backend.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod backends;
#[path = "../common/mod.rs"]
mod common;
mod identity;
mod lost_replies;
mod model;
mod reading;
mod scenarios;
mod watch;
