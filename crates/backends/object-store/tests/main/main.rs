//! The object-store backend's integration tests that need no server, one
//! binary (the S3 and Azure suites are `tests/s3.rs` and `tests/azure.rs`,
//! run by `cargo xtask test` beside their servers).

#![allow(clippy::unwrap_used)] // tests fail by panicking

#[path = "../common/mod.rs"]
mod common;
mod conformance;
mod contention;
mod faults;
mod kinds;
mod names_local;
mod packs;
mod requests;
mod truncate_race;
mod urls;
