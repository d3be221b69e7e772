//! The snapshot workflow's integration tests that need no server, one binary
//! (the S3 cases are `tests/s3.rs`, run beside the server).

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod backends;
#[path = "../common/mod.rs"]
mod common;
mod faults;
mod history;
mod snapshots;
mod workflow;
