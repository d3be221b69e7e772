//! Real processes against one SQLite database file: concurrent writers,
//! and durable writers killed with SIGKILL mid-append.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_process_tests::{concurrent_appenders, killed_appenders, pushed_tail};
use infinisheet_sqlite::{SqliteDatabase, SqliteEventLog, SqliteOptions};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn spawn(db: &Path, writer: u32, count: u64) -> Child {
    spawn_on(db, "sheet", writer, count)
}

/// The writer process appending `count` entries to the log `log`.
fn spawn_on(db: &Path, log: &str, writer: u32, count: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_infinisheet-writer"))
        .arg("sqlite-log")
        .arg(db)
        .args([log, &writer.to_string(), &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A new database `name` in `dir` holding the logs `logs`.
async fn created(dir: &Path, name: &str, logs: &[&str]) -> std::path::PathBuf {
    let db = dir.join(name);
    let database = SqliteDatabase::open(&db, SqliteOptions::default())
        .await
        .unwrap();
    for log in logs {
        database.create_log(log).await.unwrap();
    }
    db
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
    let db = created(dir.path(), "shared.db", &["sheet"]).await;
    concurrent_appenders(|w, n| spawn(&db, w, n), 4, 500, || open(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_appends_wake_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = created(dir.path(), "pushed.db", &["sheet"]).await;
    pushed_tail(|n| spawn(&db, 0, n), 20, || open(&db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writers_lose_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    killed_appenders(|round| spawn(&db, round, 1_000_000), 20, 200, || open(&db)).await;
}

/// A file serves many logs, so another process's append to one wakes the
/// tails of all: a tail of another log reads the bounds again and waits
/// on, never reading its log for it; its own log's append still ends
/// its wait at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_to_another_log_of_the_file_leave_the_tail_waiting() {
    use infinisheet_event_log::{EventLog, EventLogExt, TailEvent, TailOptions};
    use infinisheet_layers::{Faults, Layered};
    let dir = tempfile::tempdir().unwrap();
    let db = created(dir.path(), "two.db", &["sheet", "other"]).await;
    let calls = Faults::new();
    let log = Layered::new(calls.clone(), open(&db).await);
    assert!(log.capabilities().wakes_across_processes);
    let options = TailOptions::default().pushed_wait(std::time::Duration::from_secs(3600));
    let mut tail = log.tail_with(0, options);
    assert_eq!(tail.next().await.unwrap(), TailEvent::CaughtUp { end: 0 });
    let mut waiting = std::pin::pin!(tail.next());
    let writer = |log: &'static str, count: u64| {
        let db = db.clone();
        tokio::task::spawn_blocking(move || spawn_on(&db, log, 0, count).wait().unwrap())
    };
    let others = writer("other", 20);
    tokio::select! {
        event = &mut waiting => panic!("another log's appends ended the wait: {event:?}"),
        done = others => assert!(done.unwrap().success()),
    }
    // The tail's call read once as it began, and not since.
    let before = calls.calls();
    let own = writer("sheet", 1);
    let event = tokio::time::timeout(infinisheet_process_tests::DEADLINE, waiting)
        .await
        .expect("its own log's append never reached the tail")
        .unwrap();
    assert!(own.await.unwrap().success());
    assert!(
        matches!(event, TailEvent::Entries { start: 0, .. }),
        "{event:?}"
    );
    assert_eq!(before, 2, "the tail read its log for another log's appends");
}
