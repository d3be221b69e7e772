//! Real processes against one filesystem log and one blob store:
//! concurrent writers, and durable writers killed with SIGKILL mid-write.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use infinisheet_process_tests::{
    check_version, concurrent_appenders, killed_appenders, pushed_tail,
};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const WRITER: &str = env!("CARGO_BIN_EXE_infinisheet-writer");

fn spawn_log(dir: &Path, writer: u32, count: u64) -> Child {
    Command::new(WRITER)
        .arg("fs-log")
        .arg(dir)
        .args([writer.to_string(), count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn open(dir: &Path) -> FsEventLog {
    FsEventLog::open(dir, FsLogOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_append_to_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    concurrent_appenders(|w, n| spawn_log(&log, w, n), 4, 500, || open(&log)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_appends_wake_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    drop(open(&log).await);
    pushed_tail(|n| spawn_log(&log, 0, n), 20, || open(&log)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_log_writers_lose_no_acknowledged_entry() {
    // 64 KiB segments in the writer: kills also land in roll-overs.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    killed_appenders(
        |round| spawn_log(&log, round, 1_000_000),
        20,
        300,
        || open(&log),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_blob_writers_leave_whole_acknowledged_blobs() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let mut child = Command::new(WRITER)
            .arg("fs-blobs")
            .arg(dir.path())
            .arg("1000000")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let parse = |line: String| -> u64 { line.strip_prefix("ack ").unwrap().parse().unwrap() };
        let mut last_acked = 0;
        for _ in 0..fastrand::usize(1..60) {
            last_acked = parse(lines.next().expect("the writer stopped early").unwrap());
        }
        child.kill().unwrap();
        for line in lines {
            last_acked = parse(line.unwrap());
        }
        child.wait().unwrap();

        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let d = store.root().open_dir("d").await.unwrap();
        let version = check_version(&d.read("b").await.unwrap())
            .unwrap_or_else(|| panic!("round {round}: the blob is partial or mixed"));
        // Each round's writer restarts at version 0, so the blob holds this
        // round's last acknowledged version or the one after it.
        assert!(
            version == last_acked || version == last_acked + 1,
            "round {round}: blob holds version {version}, last acknowledged {last_acked}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: temporary files left: {leftovers:?}"
        );
        assert_eq!(
            d.list_all().await.unwrap().len(),
            1,
            "round {round}: only the blob is listed"
        );
    }
}
