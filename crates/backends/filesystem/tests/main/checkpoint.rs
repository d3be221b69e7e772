//! The checkpoint: a log opened from it is the log replayed from its
//! segments, whatever operations came before; a stale, foreign or damaged
//! checkpoint is never trusted; and opening reads nothing older than it.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::{
    AppendToken, Bounds, EventLog, EventLogExt, FieldUpdate, KnownSnapshot, LogEntry,
    MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue,
};
use infinisheet_filesystem::{FsEventLog, FsLogOptions};
use infinisheet_memory::MemoryEventLog;
use std::path::Path;

fn small() -> FsLogOptions {
    FsLogOptions::default()
        .segment_bytes(2048)
        .checkpoint_bytes(512)
}

/// Everything a reader can see of a log: all entries with their metadata,
/// where a snapshot query starts, and the newest snapshot.
async fn seen(log: &dyn EventLog) -> (QueryValue, u64, Option<u64>) {
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    let from_snapshot = log
        .query(
            QueryStart::Snapshot,
            QueryEnd::Id(0),
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap()
        .start;
    let newest = all.last_snapshot.as_ref().map(|s| s.sequence_id);
    (all, from_snapshot, newest)
}

/// One step of a random history: appends (single, batches, with tokens),
/// metadata changes, truncates. Applied to both logs alike.
async fn step(
    rng: &mut fastrand::Rng,
    logs: [&dyn EventLog; 2],
    tokens: &mut Vec<(u64, u64, AppendToken)>,
) {
    let Bounds { start, end } = logs[1].bounds().await.unwrap();
    match rng.u8(..10) {
        0..=5 => {
            let count = if rng.bool() { 1 } else { rng.u64(1..40) };
            let token = rng.bool().then(AppendToken::random);
            let entries: Vec<LogEntry> = (end..end + count)
                .map(|i| {
                    let mut entry =
                        LogEntry::new(format!("entry {i} {}", "x".repeat(rng.usize(..90))));
                    if rng.u8(..8) == 0 {
                        entry.metadata.pending = Some("snapshot".into());
                    }
                    entry
                })
                .collect();
            for log in logs {
                log.append_at(entries.clone(), end, KnownSnapshot::NotTracked, token)
                    .await
                    .unwrap();
            }
            if let Some(token) = token {
                tokens.push((end, count, token));
            }
        }
        6..=8 if end > start => {
            let seq = rng.u64(start..end);
            let update = MetadataUpdate {
                snapshot: match rng.u8(..3) {
                    0 => FieldUpdate::Set(format!("snap-{seq}")),
                    1 => FieldUpdate::Clear,
                    _ => FieldUpdate::Keep,
                },
                history: FieldUpdate::Keep,
                pending: if rng.bool() {
                    FieldUpdate::Clear
                } else {
                    FieldUpdate::Keep
                },
            };
            for log in logs {
                log.set_metadata(seq, update.clone()).await.unwrap();
            }
        }
        _ => {
            let to = rng.u64(start..=end.min(start + 60));
            for log in logs {
                log.truncate(to).await.unwrap();
            }
        }
    }
}

async fn reopened_sees(dir: &Path, reference: &dyn EventLog, what: &str) {
    let log = FsEventLog::open(dir, small()).await.unwrap();
    assert_eq!(seen(&log).await, seen(reference).await, "{what}");
}

#[tokio::test]
async fn reopening_from_the_checkpoint_is_replaying_every_segment() {
    for seed in 0..6 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = FsEventLog::open(&path, small()).await.unwrap();
        let reference = MemoryEventLog::new();
        let mut tokens = Vec::new();
        for n in 0..120 {
            step(&mut rng, [&log, &reference], &mut tokens).await;
            if n % 10 == 9 {
                let what = format!("seed {seed}, step {n}");
                reopened_sees(&path, &reference, &format!("from the checkpoint, {what}")).await;
                assert!(path.join("CHECKPOINT").exists(), "{what}: no checkpoint");
                let saved = std::fs::read(path.join("CHECKPOINT")).unwrap();
                std::fs::remove_file(path.join("CHECKPOINT")).unwrap();
                reopened_sees(&path, &reference, &format!("replayed, {what}")).await;
                std::fs::write(path.join("CHECKPOINT"), saved).unwrap();
            }
        }
        // A retry of any live tokened batch is told from a conflict after
        // reopening (the tokens are read from the segments, not memory).
        let reopened = FsEventLog::open(&path, small()).await.unwrap();
        let start = reopened.bounds().await.unwrap().start;
        let mut retried = 0;
        for (seq, count, token) in tokens.into_iter().filter(|(seq, ..)| *seq >= start) {
            let entries = (0..count).map(|_| LogEntry::new("retry")).collect();
            reopened
                .append_at(entries, seq, KnownSnapshot::NotTracked, Some(token))
                .await
                .unwrap_or_else(|err| panic!("seed {seed}: retry at {seq}: {err}"));
            retried += 1;
        }
        assert!(retried > 0, "seed {seed}: no tokened batch left to retry");
        assert_eq!(
            seen(&reopened).await,
            seen(&reference).await,
            "seed {seed}: retries appended"
        );
    }
}

#[tokio::test]
async fn a_stale_foreign_or_damaged_checkpoint_is_not_trusted() {
    let mut rng = fastrand::Rng::with_seed(42);
    let dir = tempfile::tempdir().unwrap();
    let (path, other_path) = (dir.path().join("log"), dir.path().join("other"));
    let log = FsEventLog::open(&path, small()).await.unwrap();
    let other = FsEventLog::open(&other_path, small()).await.unwrap();
    let reference = MemoryEventLog::new();
    let other_reference = MemoryEventLog::new();
    let mut tokens = Vec::new();
    let mut stale = Vec::new();
    for n in 0..150 {
        step(&mut rng, [&log, &reference], &mut tokens).await;
        step(&mut rng, [&other, &other_reference], &mut tokens).await;
        if n % 25 == 0 {
            stale.push(std::fs::read(path.join("CHECKPOINT")).unwrap_or_default());
        }
    }
    let foreign = std::fs::read(other_path.join("CHECKPOINT")).unwrap();
    drop(log);
    for (i, old) in stale.iter().enumerate() {
        std::fs::write(path.join("CHECKPOINT"), old).unwrap();
        reopened_sees(&path, &reference, &format!("stale checkpoint {i}")).await;
    }
    std::fs::write(path.join("CHECKPOINT"), &foreign).unwrap();
    reopened_sees(&path, &reference, "another log's checkpoint").await;
    let mut damaged = foreign;
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x10;
    std::fs::write(path.join("CHECKPOINT"), &damaged).unwrap();
    reopened_sees(&path, &reference, "a damaged checkpoint").await;
}

#[tokio::test]
async fn opening_reads_nothing_older_than_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = FsEventLog::open(dir.path(), small()).await.unwrap();
    for i in 0..400u64 {
        let entry = LogEntry::new(format!("entry {i} {}", "y".repeat(50)));
        log.add_entry(entry, i, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    drop(log);
    // Garbage over the data of the first segment: an open that replayed it
    // would fail.
    let first = dir.path().join("0000000001.seg");
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[200..1000].fill(0x77);
    std::fs::write(&first, &bytes).unwrap();

    let log = FsEventLog::open(dir.path(), small()).await.unwrap();
    let tail = log
        .query_all(
            QueryStart::Id(390),
            QueryEnd::End,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    assert_eq!(tail.entries.len(), 10);
    assert_eq!(&tail.entries[9].payload[..10], b"entry 399 ");
    match log
        .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
    {
        Err(QueryError::Storage(err)) => {
            assert!(err.is_corrupt(), "{err}");
            assert!(err.message().contains("0000000001.seg is damaged"), "{err}");
        }
        other => panic!("reading the damaged segment gave {other:?}"),
    }
}
