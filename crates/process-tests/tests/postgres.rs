//! Real processes sharing one log in the PostgreSQL database `cargo xtask
//! test` starts (`INFINISHEET_POSTGRES_URL`): the clients share nothing
//! but the database. Built only with the `postgres-tests` feature.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_postgres::{PostgresDatabase, PostgresEventLog, PostgresOptions};
use infinisheet_process_tests::{concurrent_appenders, killed_appenders};
use std::process::{Child, Command, Stdio};

fn url() -> String {
    std::env::var("INFINISHEET_POSTGRES_URL")
        .expect("this test needs the PostgreSQL server `cargo xtask test` starts")
}

fn spawn(log: &str, writer: u32, count: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_infinisheet-writer"))
        .args(["pg-log", log, &writer.to_string(), &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn open(log: &str) -> PostgresEventLog {
    PostgresDatabase::connect(&url(), PostgresOptions::default())
        .await
        .unwrap()
        .open_or_create_log(log)
        .await
        .unwrap()
}

fn fresh_log(what: &str) -> String {
    format!("{what}-{:016x}", fastrand::u64(..))
}

/// 8 processes append 100 entries each to one log: dense, every
/// acknowledged entry exactly once at its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_append_to_one_log_exactly_once() {
    let log = fresh_log("eight");
    // Created once first, so the processes race for ids, not for the log.
    open(&log).await;
    concurrent_appenders(|w, n| spawn(&log, w, n), 8, 100, || open(&log)).await;
}

/// Appenders killed (SIGKILL) at random points: every acknowledged entry
/// is still there, and the log is dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_appenders_lose_no_acknowledged_entry() {
    let log = fresh_log("killed");
    open(&log).await;
    killed_appenders(|round| spawn(&log, round, 1_000_000), 8, 60, || open(&log)).await;
}
