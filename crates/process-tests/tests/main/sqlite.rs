//! Real processes against one SQLite database file: concurrent writers,
//! and durable writers killed with SIGKILL mid-append.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_process_tests::{concurrent_appenders, killed_appenders, pushed_tail};
use infinisheet_sqlite::{SqliteDatabase, SqliteEventLog, SqliteOptions};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn spawn(db: &Path, writer: u32, count: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_infinisheet-writer"))
        .arg("sqlite-log")
        .arg(db)
        .args(["sheet", &writer.to_string(), &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn open(db: &Path) -> SqliteEventLog {
    let db = SqliteDatabase::open(db, SqliteOptions::default())
        .await
        .unwrap();
    db.open_log("sheet").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_append_to_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    SqliteDatabase::open(&db, SqliteOptions::default())
        .await
        .unwrap()
        .create_log("sheet")
        .await
        .unwrap();
    concurrent_appenders(|w, n| spawn(&db, w, n), 4, 500, || open(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_appends_wake_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pushed.db");
    SqliteDatabase::open(&db, SqliteOptions::default())
        .await
        .unwrap()
        .create_log("sheet")
        .await
        .unwrap();
    pushed_tail(|n| spawn(&db, 0, n), 20, || open(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writers_lose_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    killed_appenders(|round| spawn(&db, round, 1_000_000), 20, 200, || open(&db)).await;
}
