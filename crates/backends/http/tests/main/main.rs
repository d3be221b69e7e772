//! The HTTP client backend's integration tests, one binary: the conformance
//! suite through a real server, and lost replies.

#![allow(clippy::unwrap_used)] // tests fail by panicking

#[path = "../common/mod.rs"]
mod common;
mod conformance;
mod lost_replies;
