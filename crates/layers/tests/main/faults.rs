//! What the fault layer injects, where, and what the log looks like after.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDirExt, BlobStore, ReadBlobError, WriteBlobError};
use infinisheet_event_log::{
    AddEntryError, EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd, QueryError, QueryStart,
};
use infinisheet_layers::{FaultPoint, Faults, Layered, Op};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};

fn entry(text: &'static str) -> LogEntry {
    LogEntry::new(text.as_bytes())
}

async fn length(log: &dyn EventLog) -> usize {
    log.query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap()
        .entries
        .len()
}

#[tokio::test]
async fn fault_before_the_call_changes_nothing_and_is_retryable() {
    let faults = Faults::new().fail_calls([0]);
    let log = Layered::new(faults.clone(), MemoryEventLog::new());
    match log
        .add_entry(entry("a"), 0, KnownSnapshot::NotTracked)
        .await
    {
        Err(AddEntryError::Storage(err)) => {
            assert!(err.is_retryable());
            assert_eq!(err.backend(), "fault-injection");
        }
        other => panic!("expected an injected storage error, got {other:?}"),
    }
    assert_eq!(length(log.inner()).await, 0, "nothing reached the backend");
    log.add_entry(entry("a"), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!((faults.calls(), faults.injected()), (2, 1));
}

#[tokio::test]
async fn lost_reply_then_retry_is_a_conflict_not_a_duplicate() {
    let faults = Faults::new().fail_calls([0]).at(FaultPoint::After);
    let log = Layered::new(faults, MemoryEventLog::new());
    let lost = log
        .add_entry(entry("a"), 0, KnownSnapshot::NotTracked)
        .await;
    assert!(
        matches!(lost, Err(AddEntryError::Storage(ref e)) if e.is_retryable()),
        "{lost:?}"
    );
    let retry = log
        .add_entry(entry("a"), 0, KnownSnapshot::NotTracked)
        .await;
    assert!(
        matches!(
            retry,
            Err(AddEntryError::Conflict {
                attempted: 0,
                next: 1
            })
        ),
        "{retry:?}"
    );
    assert_eq!(length(&log).await, 1, "the entry is there exactly once");
}

#[tokio::test]
async fn only_counts_and_fails_the_chosen_operations() {
    let faults = Faults::new().only([Op::Query]).fail_calls([1]);
    let log = Layered::new(faults.clone(), MemoryEventLog::new());
    for seq in 0..3 {
        log.add_entry(entry("x"), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    let query = || log.query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked);
    assert!(query().await.is_ok());
    assert!(matches!(query().await, Err(QueryError::Storage(_))));
    assert!(query().await.is_ok());
    assert_eq!((faults.calls(), faults.injected()), (3, 1));
}

#[tokio::test]
async fn a_seeded_rate_repeats_and_disarm_stops_it() {
    async fn pattern(seed: u64) -> Vec<bool> {
        let faults = Faults::new().rate(0.3, seed);
        let log = Layered::new(faults, MemoryEventLog::new());
        let mut failed = Vec::new();
        for _ in 0..200 {
            let r = log
                .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
                .await;
            failed.push(r.is_err());
        }
        failed
    }
    let first = pattern(7).await;
    assert_eq!(
        first,
        pattern(7).await,
        "the same seed fails the same calls"
    );
    let count = first.iter().filter(|f| **f).count();
    assert!(
        (30..=90).contains(&count),
        "a 0.3 rate failed {count} of 200"
    );

    let faults = Faults::new().rate(1.0, 1);
    let log = Layered::new(faults.clone(), MemoryEventLog::new());
    assert!(log.truncate(0).await.is_err());
    faults.disarm();
    log.truncate(0).await.unwrap();
    faults.arm();
    assert!(log.truncate(0).await.is_err());
}

#[tokio::test]
async fn directories_handed_out_carry_the_faults() {
    let faults = Faults::new()
        .only([Op::WriteBlob, Op::ReadBlob])
        .fail_calls([1]);
    let store = Layered::new(faults.clone(), MemoryBlobStore::new());
    let sheet = store.root().open_dir("sheet").await.unwrap();
    sheet.write("a", &b"1"[..]).await.unwrap();
    assert!(matches!(
        sheet.write("b", &b"2"[..]).await,
        Err(WriteBlobError::Storage(_))
    ));
    assert!(matches!(
        sheet.read("b").await,
        Err(ReadBlobError::NotFound { .. })
    ));
    assert_eq!(faults.injected(), 1);
}
