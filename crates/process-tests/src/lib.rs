//! Multi-process and crash tests of the durable backends: what the child
//! process writes ([`payload`], [`version`]), how it reports (`ack` lines),
//! and the drivers that spawn children, kill them, and check what the
//! storage holds afterwards. The child is the `infinisheet-writer` binary
//! of this package; the tests are in `tests/`, one file per backend.
//!
//! # Layout
//!
//! The multi-process and SIGKILL crash tests of the
//! durable backends (`tests/main/sqlite.rs`, `tests/main/filesystem.rs`, `tests/s3.rs`)
//! and of snapshot workers (`tests/main/workflow.rs`), their child process
//! (`src/bin/writer.rs`), and the drivers they share; the crash-point sweep
//! (`src/sweep/`: the workloads, the checks and the `strace` driver; its
//! child `src/bin/crashpoint.rs`; `tests/main/crash_points.rs`) and the damage
//! sweep (`tests/main/damage.rs`).
//!
//! # Decisions
//!
//! * The crash-point sweep injects faults with `strace` at the N-th call of
//!   one system call on one thread, so its child drives the backends with a
//!   minimal `block_on` and no tokio runtime: every storage call is on the
//!   main thread, and no fault lands in a runtime's wake-up write (which hung
//!   the child instead of testing the store).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

pub mod multihost;
pub mod proxy;
pub mod sweep;

use bytes::Bytes;
use infinisheet_event_log::{
    AddEntryError, AppendToken, EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd,
    QueryError, QueryStart,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

/// The sheet settings of the snapshot-worker crash test: 10x10 tiles, so a
/// snapshot of its 200x100 cells writes many tile blobs.
pub fn worker_sheet() -> infinisheet_engine::SheetOptions {
    infinisheet_engine::SheetOptions::default()
        .tile_size(10, 10)
        .snapshot_interval(200)
}

/// Longest any child may take before a test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(300);

fn check(text: &str) -> u32 {
    text.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
}

/// The payload of entry `n` of `writer`: self-checking, so a torn or mixed
/// entry is detectable.
pub fn payload(writer: u32, n: u64) -> String {
    let body = format!("writer {writer} entry {n} ");
    format!("{body}check {:08x}", check(&body))
}

/// The writer and entry number a payload claims, if its check holds.
pub fn check_payload(payload: &[u8]) -> Option<(u32, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (body, sum) = text.rsplit_once("check ")?;
    if format!("{:08x}", check(body)) != sum {
        return None;
    }
    let words: Vec<&str> = body.split(' ').collect();
    Some((words.get(1)?.parse().ok()?, words.get(3)?.parse().ok()?))
}

/// Version `v` of the blob the blob writer replaces: 1 to 64 KiB derived
/// from `v`, then an 8-byte check of everything before it.
pub fn version(v: u64) -> Bytes {
    let len = 1024 * (1 + (v * 7919 % 64)) as usize;
    let mut content: Vec<u8> = format!("version {v}\n").into_bytes();
    content.extend((0..len).map(|i| (i as u64 ^ v) as u8));
    let check = content.iter().fold(0u64, |h, b| {
        h.wrapping_mul(1_099_511_628_211) ^ u64::from(*b)
    });
    content.extend_from_slice(&check.to_le_bytes());
    Bytes::from(content)
}

/// The version a blob claims, if its check holds.
pub fn check_version(content: &[u8]) -> Option<u64> {
    let (body, tail) = content.split_at(content.len().checked_sub(8)?);
    let check = body.iter().fold(0u64, |h, b| {
        h.wrapping_mul(1_099_511_628_211) ^ u64::from(*b)
    });
    if check.to_le_bytes() != tail {
        return None;
    }
    let line = body.split(|b| *b == b'\n').next()?;
    std::str::from_utf8(line)
        .ok()?
        .strip_prefix("version ")?
        .parse()
        .ok()
}

/// The S3 client's retries in these tests: as many as the default, but
/// from 10 ms rather than 100 ms, so a run with thousands of injected
/// faults stays short.
pub fn quick_retries() -> infinisheet_object_store::RetryConfig {
    use infinisheet_object_store::{BackoffConfig, RetryConfig};
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(500),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: Duration::from_secs(60),
    }
}

/// How long one append rides out retryable storage errors in a row (a
/// server restarting, say), waiting 5 ms doubling to 200 ms between
/// tries.
const STORAGE_OUTAGE: Duration = Duration::from_secs(60);

/// The child's side: appends `count` entries of `writer` to `log`,
/// retrying at the id each conflict reports, and prints
/// `ack <seq> <writer> <n>` after each acknowledged append.
///
/// # Errors
///
/// A description of the first storage error that is not retryable.
pub async fn append_and_ack(log: &dyn EventLog, writer: u32, count: u64) -> Result<(), String> {
    append_and_report(log, writer, count, &mut std::io::stdout().lock()).await
}

/// [`append_and_ack`], writing the `ack` lines to `out`. Each append
/// carries a token of its own; after a retryable storage error (the reply
/// may have been lost after the entry landed) it is sent again at the same
/// id with the same token, so it lands once.
///
/// # Errors
///
/// A description of the first storage error that is not retryable, or of
/// one that persists for a minute.
pub async fn append_and_report(
    log: &dyn EventLog,
    writer: u32,
    count: u64,
    out: &mut impl Write,
) -> Result<(), String> {
    append_and_report_within(log, writer, count, DEADLINE, Duration::ZERO, out).await
}

/// [`append_and_report`], giving each attempt at most `attempt`: one that
/// takes longer (its request stuck in a network that lost it) is
/// abandoned and sent again, with the same token, as after a retryable
/// error. Waits `pace` after each acknowledged append.
///
/// # Errors
///
/// As [`append_and_report`]; attempts that time out count as an outage.
pub async fn append_and_report_within(
    log: &dyn EventLog,
    writer: u32,
    count: u64,
    attempt: Duration,
    pace: Duration,
    out: &mut impl Write,
) -> Result<(), String> {
    let mut seq = 0;
    for n in 0..count {
        let token = AppendToken::random();
        let mut outage: Option<(std::time::Instant, Duration)> = None;
        loop {
            let entry = LogEntry::new(payload(writer, n));
            let appended = tokio::time::timeout(
                attempt,
                log.append_at(vec![entry], seq, KnownSnapshot::NotTracked, Some(token)),
            )
            .await;
            let failed = match appended {
                Ok(Ok(_)) => break,
                Ok(Err(AddEntryError::Conflict { next, .. })) => {
                    seq = next;
                    continue;
                }
                Ok(Err(AddEntryError::Storage(err))) if err.is_retryable() => err.to_string(),
                Ok(Err(err)) => return Err(format!("appending entry {n}: {err}")),
                Err(_) => format!("no answer in {attempt:?}"),
            };
            let (since, wait) =
                outage.unwrap_or((std::time::Instant::now(), Duration::from_millis(5)));
            if since.elapsed() >= STORAGE_OUTAGE {
                return Err(format!(
                    "appending entry {n}: failing for {STORAGE_OUTAGE:?}: {failed}"
                ));
            }
            tokio::time::sleep(wait).await;
            outage = Some((since, (wait * 2).min(Duration::from_millis(200))));
        }
        writeln!(out, "ack {seq} {writer} {n}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        seq += 1;
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    Ok(())
}

/// The tail's side of the multi-host test: follows `log` from its first
/// entry and writes `entry <seq> <writer> <n>` to `out` for each entry as
/// it arrives, until `total` have; a storage failure (a partition) is
/// retried from the same id, as the tail promises.
///
/// # Errors
///
/// A skipped, repeated or torn entry, or a tail error that is not a
/// retryable storage failure.
pub async fn tail_and_report(
    log: &dyn EventLog,
    total: u64,
    out: &mut impl Write,
) -> Result<(), String> {
    use infinisheet_event_log::TailEvent;
    let mut tail = log.tail(0);
    let mut next = 0;
    while next < total {
        match tail.next().await {
            Ok(TailEvent::Entries { start, entries }) => {
                if start != next {
                    return Err(format!("the tail gave {start} where {next} was next"));
                }
                for entry in entries {
                    let (writer, n) = check_payload(&entry.payload)
                        .ok_or_else(|| format!("entry {next} is torn: {:?}", entry.payload))?;
                    writeln!(out, "entry {next} {writer} {n}").map_err(|e| e.to_string())?;
                    next += 1;
                }
                out.flush().map_err(|e| e.to_string())?;
            }
            Ok(_) => {}
            Err(err) if err.is_retryable() => {
                // The tail tries again from the same id on the next call;
                // a pause keeps a partition from spinning it.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(format!("tailing at {next}: {err}")),
        }
    }
    Ok(())
}

/// The reader's side of the multi-host test: the whole of `log` as
/// `entry <seq> <writer> <n>` lines to `out`, then `bounds <start> <end>`;
/// a read that fails retryably (through a lossy proxy) is made again.
///
/// # Errors
///
/// A torn entry, or a read failing for a minute.
pub async fn list_log(log: &dyn EventLog, out: &mut impl Write) -> Result<(), String> {
    let started = std::time::Instant::now();
    let all = loop {
        match log
            .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
            .await
        {
            Ok(all) => break all,
            Err(QueryError::Storage(err))
                if err.is_retryable() && started.elapsed() < STORAGE_OUTAGE =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(format!("reading the log: {err}")),
        }
    };
    for (seq, entry) in (all.start..).zip(&all.entries) {
        let (writer, n) = check_payload(&entry.payload)
            .ok_or_else(|| format!("entry {seq} is torn or foreign: {:?}", entry.payload))?;
        writeln!(out, "entry {seq} {writer} {n}").map_err(|e| e.to_string())?;
    }
    writeln!(out, "bounds {} {}", all.start, all.end).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

/// Parses an `ack <seq> <writer> <n>` line.
pub fn parse_ack(line: &str) -> (u64, u32, u64) {
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

/// The whole log as `seq -> (writer, n)`, checking every payload; with the
/// log's bounds.
pub async fn read_log(log: &dyn EventLog) -> (u64, u64, BTreeMap<u64, (u32, u64)>) {
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

/// Runs `writers` children at once, each appending `each` entries with
/// `spawn(writer, each)`, then checks with the log `open` returns: dense,
/// and every acknowledged entry exactly once, at its id.
pub async fn concurrent_appenders<L, Fut>(
    spawn: impl Fn(u32, u64) -> Child,
    writers: u32,
    each: u64,
    open: impl FnOnce() -> Fut,
) where
    L: EventLog,
    Fut: Future<Output = L>,
{
    let mut children: Vec<_> = (0..writers).map(|w| spawn(w, each)).collect();
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
    let acks: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(writer, receiver)| {
            receiver
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("writer {writer} did not finish in time"))
        })
        .collect();
    for (writer, child) in children.iter_mut().enumerate() {
        assert!(child.wait().unwrap().success(), "writer {writer} failed");
    }
    if let Err(problem) = check_exactly_once(&acks, each, &open().await).await {
        panic!("{problem}");
    }
}

/// Checks what writers acknowledged (`acks[w]` holds writer `w`'s
/// `(seq, writer, n)`, each writer `each` of them) against the log: every
/// writer acknowledged every entry, no id twice, and the log is dense and
/// holds every acknowledged entry exactly once, at its id, and nothing
/// else. Returns the first problem found.
///
/// # Errors
///
/// A description of the first problem: the check can fail, and the S3
/// tests show it does on a store that lets two writers win one id.
pub async fn check_exactly_once(
    acks: &[Vec<(u64, u32, u64)>],
    each: u64,
    log: &dyn EventLog,
) -> Result<(), String> {
    let mut acked = BTreeMap::new();
    for (writer, acks) in acks.iter().enumerate() {
        if acks.len() as u64 != each {
            return Err(format!(
                "writer {writer} acknowledged {} of {each} entries",
                acks.len()
            ));
        }
        for &(seq, w, n) in acks {
            if acked.insert(seq, (w, n)).is_some() {
                return Err(format!("id {seq} acknowledged twice"));
            }
        }
    }
    let (start, end, entries) = read_log(log).await;
    let total = acks.len() as u64 * each;
    if (start, end) != (0, total) {
        return Err(format!(
            "the log holds {start}..{end}, not the {total} acknowledged entries"
        ));
    }
    if let Some((seq, held)) = entries
        .iter()
        .find(|(seq, held)| acked.get(seq) != Some(held))
    {
        return Err(format!(
            "entry {seq} holds {held:?}, acknowledged as {:?}",
            acked.get(seq)
        ));
    }
    Ok(())
}

/// `kills` times: runs a child with `spawn(round)` that appends until
/// killed, kills it (SIGKILL) after a random number (below `max_acks`) of
/// acknowledged appends, and checks with the log `open` returns that the
/// log is dense and holds every entry ever acknowledged.
pub async fn killed_appenders<L, Fut>(
    spawn: impl Fn(u32) -> Child,
    kills: u32,
    max_acks: usize,
    open: impl Fn() -> Fut,
) where
    L: EventLog,
    Fut: Future<Output = L>,
{
    let mut acked = BTreeMap::new();
    for round in 0..kills {
        let mut child = spawn(round);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..fastrand::usize(1..max_acks) {
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

        let (start, end, entries) = read_log(&open().await).await;
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

/// A tail in this process on a log that pushes
/// ([`wakes_across_processes`](infinisheet_event_log::LogCapabilities::wakes_across_processes)),
/// waiting an hour between reads: idle, it reads nothing; the `count`
/// entries a writer process (`spawn(count)`) appends reach it each once
/// and in order, woken by the push alone. `open` gives the log (one
/// writer's entries are all it holds past its end when the tail starts).
pub async fn pushed_tail<L, Fut>(
    spawn: impl FnOnce(u64) -> Child,
    count: u64,
    open: impl FnOnce() -> Fut,
) where
    L: EventLog,
    Fut: Future<Output = L>,
{
    use infinisheet_event_log::{TailEvent, TailOptions};
    use infinisheet_layers::{Faults, Layered};
    let log = open().await;
    assert!(
        log.capabilities().wakes_across_processes,
        "the log does not push: {:?}",
        log.capabilities()
    );
    let calls = Faults::new();
    let log = Layered::new(calls.clone(), log);
    let from = log.bounds().await.unwrap().end;
    let options = TailOptions::default().pushed_wait(Duration::from_secs(3600));
    let mut tail = log.tail_with(from, options);
    assert_eq!(
        tail.next().await.unwrap(),
        TailEvent::CaughtUp { end: from }
    );
    let before = calls.calls();
    let idle = tokio::time::timeout(Duration::from_millis(300), tail.next()).await;
    assert!(idle.is_err(), "an idle tail gave {idle:?}");
    // One read as the call starts, then none while it waits.
    assert_eq!(calls.calls(), before + 1, "an idle tail kept reading");
    let mut writer = spawn(count);
    let mut next = 0;
    while next < count {
        let event = tokio::time::timeout(DEADLINE, tail.next())
            .await
            .unwrap_or_else(|_| panic!("entry {next} of {count} never reached the tail"))
            .unwrap();
        if let TailEvent::Entries { start, entries } = event {
            assert_eq!(start, from + next, "the tail skipped or repeated");
            for entry in entries {
                let (_, n) = check_payload(&entry.payload).unwrap();
                assert_eq!(n, next, "entries out of order");
                next += 1;
            }
        }
    }
    assert!(writer.wait().unwrap().success(), "the writer failed");
}
