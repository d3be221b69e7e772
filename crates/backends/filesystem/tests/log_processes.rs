//! Real processes against one log directory: concurrent writers, and
//! writers killed with SIGKILL mid-append.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::{EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_filesystem::{FsEventLog, FsLogOptions};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WRITER: &str = env!("CARGO_BIN_EXE_infinisheet-fs-writer");
/// Longest any child may take before the test fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(120);

fn spawn_writer(dir: &Path, writer: u32, count: u64) -> Child {
    Command::new(WRITER)
        .arg("log")
        .arg(dir)
        .args([writer.to_string(), count.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn parse_ack(line: &str) -> (u64, u32, u64) {
    let parts: Vec<&str> = line.split(' ').collect();
    assert!(
        parts.len() == 4 && parts[0] == "ack",
        "bad ack line {line:?}"
    );
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

/// The whole log as `seq -> (writer, n)`, checking every payload.
async fn read_log(dir: &Path) -> (u64, u64, BTreeMap<u64, (u32, u64)>) {
    let log = FsEventLog::open(dir, FsLogOptions::default())
        .await
        .unwrap();
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
    let log_dir = dir.path().join("log");
    let mut children: Vec<_> = (0..WRITERS)
        .map(|w| spawn_writer(&log_dir, w, EACH))
        .collect();
    let receivers: Vec<_> = children
        .iter_mut()
        .map(|child| {
            let stdout = child.stdout.take().unwrap();
            let (done, acks) = mpsc::channel();
            std::thread::spawn(move || {
                let acked: Vec<_> = BufReader::new(stdout)
                    .lines()
                    .map(|l| parse_ack(&l.unwrap()))
                    .collect();
                let _ = done.send(acked);
            });
            acks
        })
        .collect();
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
    let (start, end, entries) = read_log(&log_dir).await;
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
async fn killed_log_writers_lose_no_acknowledged_entry() {
    const KILLS: u32 = 20;
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let mut acked = BTreeMap::new();
    for round in 0..KILLS {
        let mut child = spawn_writer(&log_dir, round, 1_000_000);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill after a random number of acknowledged appends: mid-append,
        // mid-sync, or mid-roll-over (segments are 64 KiB here).
        for _ in 0..fastrand::usize(1..300) {
            let line = lines.next().expect("the writer stopped early").unwrap();
            let (seq, w, n) = parse_ack(&line);
            acked.insert(seq, (w, n));
        }
        child.kill().unwrap();
        for line in lines {
            let (seq, w, n) = parse_ack(&line.unwrap());
            acked.insert(seq, (w, n));
        }
        child.wait().unwrap();

        let (start, end, entries) = read_log(&log_dir).await;
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
