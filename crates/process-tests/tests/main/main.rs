//! Tests across real processes, one binary: crash points, damaged files,
//! and several processes on one filesystem log, SQLite database and workflow
//! (the S3 cases are `tests/s3.rs`, run beside the server).

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod crash_points;
mod damage;
mod filesystem;
mod sqlite;
mod workflow;
