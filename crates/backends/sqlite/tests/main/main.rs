//! The SQLite backend's integration tests, one binary: the conformance
//! suite, and the cases beyond it (bad input, checksums, group commit,
//! handles, pages, racing opens).

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod bad_input;
mod checksums;
mod conformance;
mod group_commit;
mod handles;
mod pages;
mod racing_opens;
