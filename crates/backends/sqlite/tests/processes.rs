//! Real processes against one database file: concurrent writers, and
//! writers killed with SIGKILL mid-append.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::{EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WRITER: &str = env!("CARGO_BIN_EXE_infinisheet-sqlite-writer");
/// Longest any child may take before the test fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(120);

fn spawn_writer(db: &Path, writer: u32, count: u64) -> Child {
    Command::new(WRITER)
        .arg(db)
        .args(["sheet", &writer.to_string(), &count.to_string(), "full"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Parses an `ack <seq> <writer> <n>` line.
fn parse_ack(line: &str) -> (u64, u32, u64) {
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 4, "bad ack line {line:?}");
    assert_eq!(parts[0], "ack", "bad ack line {line:?}");
    (
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
        parts[3].parse().unwrap(),
    )
}

/// The writer and entry number a payload claims, if its check value holds.
fn check_payload(payload: &[u8]) -> Option<(u32, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (body, check) = text.rsplit_once("check ")?;
    let sum = body
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    if format!("{sum:08x}") != check {
        return None;
    }
    let words: Vec<&str> = body.split(' ').collect();
    Some((words.get(1)?.parse().ok()?, words.get(3)?.parse().ok()?))
}

/// Reads `child`'s acks on a thread; returns them when its stdout closes.
fn collect_acks(child: &mut Child) -> mpsc::Receiver<Vec<(u64, u32, u64)>> {
    let stdout = child.stdout.take().unwrap();
    let (done, acks) = mpsc::channel();
    std::thread::spawn(move || {
        let lines = BufReader::new(stdout).lines();
        let acked = lines.map(|line| parse_ack(&line.unwrap())).collect();
        let _ = done.send(acked);
    });
    acks
}

/// The whole log `sheet` as `seq -> (writer, n)`, checking every payload.
async fn read_log(db: &Path) -> (u64, u64, BTreeMap<u64, (u32, u64)>) {
    let db = SqliteDatabase::open(db, SqliteOptions::default())
        .await
        .unwrap();
    let log = db.open_log("sheet").await.unwrap();
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let mut entries = BTreeMap::new();
    for (seq, entry) in (all.start..).zip(&all.entries) {
        let claimed = check_payload(&entry.payload)
            .unwrap_or_else(|| panic!("entry {seq} is torn or foreign: {:?}", entry.payload));
        entries.insert(seq, claimed);
    }
    (all.start, all.end, entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_append_to_one_log() {
    const WRITERS: u32 = 4;
    const EACH: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let db = SqliteDatabase::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    db.create_log("sheet").await.unwrap();
    drop(db);

    let mut children: Vec<_> = (0..WRITERS).map(|w| spawn_writer(&path, w, EACH)).collect();
    let receivers: Vec<_> = children.iter_mut().map(collect_acks).collect();
    let mut acked = BTreeMap::new();
    for (writer, receiver) in receivers.into_iter().enumerate() {
        let acks = receiver
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("writer {writer} did not finish in time"));
        assert_eq!(
            acks.len() as u64,
            EACH,
            "writer {writer} acknowledged every entry"
        );
        for (seq, w, n) in acks {
            assert!(
                acked.insert(seq, (w, n)).is_none(),
                "id {seq} acknowledged twice"
            );
        }
    }
    for (writer, child) in children.iter_mut().enumerate() {
        assert!(child.wait().unwrap().success(), "writer {writer} failed");
    }
    let (start, end, entries) = read_log(&path).await;
    assert_eq!(
        (start, end),
        (0, u64::from(WRITERS) * EACH),
        "the log is dense"
    );
    assert_eq!(
        entries, acked,
        "every acknowledged entry exactly once, at its id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writers_lose_no_acknowledged_entry() {
    const KILLS: u32 = 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut acked = BTreeMap::new();
    for round in 0..KILLS {
        let mut child = spawn_writer(&path, round, 1_000_000);
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Kill after a random number of acknowledged appends, so the kill
        // lands at a random point of an append (inside a transaction, in the
        // commit's sync, or between appends).
        let kill_after = fastrand::usize(1..200);
        for _ in 0..kill_after {
            let line = lines.next().expect("the writer stopped early").unwrap();
            let (seq, w, n) = parse_ack(&line);
            acked.insert(seq, (w, n));
        }
        child.kill().unwrap();
        // Acks the child wrote before it died are still in the pipe.
        for line in lines {
            let (seq, w, n) = parse_ack(&line.unwrap());
            acked.insert(seq, (w, n));
        }
        child.wait().unwrap();

        let (start, end, entries) = read_log(&path).await;
        assert_eq!(start, 0);
        assert_eq!(
            end,
            entries.len() as u64,
            "the log is dense after kill {round}"
        );
        for (seq, claimed) in &acked {
            assert_eq!(
                entries.get(seq),
                Some(claimed),
                "acknowledged entry {seq} after kill {round}"
            );
        }
    }
}
