//! What operations cost in requests, counted by `CountingStore` around the
//! in-memory store: reads never write, opening a log that exists is one
//! request, and a steady-state append is a PUT and a GET (plus one head
//! write per 256 entries). The full table is `cargo bench --bench requests`.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_object_store::memory::InMemory;
use infinisheet_object_store::{CountingStore, ObjectStoreBlobStore, ObjectStoreEventLog};
use std::sync::Arc;

async fn open(store: &CountingStore) -> ObjectStoreEventLog {
    ObjectStoreEventLog::open(Arc::new(store.clone()), "log".into())
        .await
        .unwrap()
}

#[tokio::test]
async fn reads_never_write_and_appends_cost_two_requests() {
    let store = CountingStore::new(Arc::new(InMemory::new()));
    let log = open(&store).await;
    for seq in 0..200 {
        log.add_entry(LogEntry::new("entry"), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    log.set_metadata(150, MetadataUpdate::publish_snapshot("s"))
        .await
        .unwrap();

    let before = store.counts();
    const APPENDS: u64 = 512;
    for seq in 200..200 + APPENDS {
        log.add_entry(LogEntry::new("entry"), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    let appends = store.counts().since(before);
    assert!(
        appends.total() <= 2 * APPENDS + APPENDS / 256,
        "{APPENDS} appends made {appends}"
    );

    let before = store.counts();
    let reader = ObjectStoreEventLog::open_existing(Arc::new(store.clone()), "log".into())
        .await
        .unwrap();
    let opened = store.counts().since(before);
    assert_eq!(opened.total(), 1, "opening a log that exists: {opened}");
    let reopened = open(&store).await;
    for log in [&reader, &reopened] {
        log.query_all(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NoSnapshot,
        )
        .await
        .unwrap();
        log.query(QueryStart::Id(600), QueryEnd::End, KnownSnapshot::At(150))
            .await
            .unwrap();
        log.bounds().await.unwrap();
    }
    let reads = store.counts().since(before);
    assert_eq!(reads.writes(), 0, "opening and reading wrote: {reads}");

    let blobs = ObjectStoreBlobStore::new(Arc::new(store.clone()), "blobs".into());
    let dir = blobs.root().open_dir("d").await.unwrap();
    dir.write("b", "content").await.unwrap();
    let before = store.counts();
    dir.read("b").await.unwrap();
    dir.list(None).await.unwrap();
    blobs.root().list_all().await.unwrap();
    let reads = store.counts().since(before);
    assert_eq!(reads.writes(), 0, "reading blobs wrote: {reads}");
}

/// An append whose caller tracks snapshots costs what an untracked one
/// does — its PUT and the head's GET (plus a head write per 256 entries)
/// — whether the log has a snapshot or none: the head it reads names the
/// newest. (It cost four: the candidates and an overlay read besides, or
/// a listing of older candidates when there was no snapshot.)
#[tokio::test]
async fn tracked_appends_cost_two_requests_with_a_snapshot_or_none() {
    use infinisheet_event_log::{FieldUpdate, SnapshotValue};
    let store = CountingStore::new(Arc::new(InMemory::new()));
    let log = open(&store).await;
    for seq in 0..100 {
        log.add_entry(LogEntry::new("entry"), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    const APPENDS: u64 = 256;
    let mut end = 100;
    let mut tracked = |known: KnownSnapshot, expected: Option<u64>| {
        let (log, store) = (&log, &store);
        let start = end;
        end += APPENDS;
        async move {
            let before = store.counts();
            for seq in start..start + APPENDS {
                let reply = log
                    .add_entry(LogEntry::new("entry"), seq, known)
                    .await
                    .unwrap();
                assert_eq!(
                    reply.last_snapshot.map(|s| s.sequence_id),
                    expected,
                    "the newest snapshot told to an append knowing {known:?}"
                );
            }
            let cost = store.counts().since(before);
            assert!(
                cost.total() <= 2 * APPENDS + APPENDS / 256 + 1,
                "{APPENDS} appends knowing {known:?} made {cost}"
            );
        }
    };
    // No snapshot at all.
    tracked(KnownSnapshot::NoSnapshot, None).await;
    log.set_metadata(50, MetadataUpdate::publish_snapshot("s50"))
        .await
        .unwrap();
    // Knowing none: told of it; knowing it: told nothing.
    tracked(KnownSnapshot::NoSnapshot, Some(50)).await;
    tracked(KnownSnapshot::At(50), None).await;
    // Withdrawn: the one known is gone, and the reply says so by naming
    // none newer.
    let clear = MetadataUpdate {
        snapshot: FieldUpdate::Clear,
        ..MetadataUpdate::default()
    };
    log.set_metadata(50, clear).await.unwrap();
    let reply = log
        .add_entry(LogEntry::new("entry"), end, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    assert_eq!(reply.last_snapshot, None::<SnapshotValue>);
}

/// A writer that loses the race for an id learns the end in four requests:
/// its conditional PUT, the winner's record (is it an earlier attempt of
/// this very append?), the head, and the id past that record. The record
/// it has just read is not read again on the way to the end.
#[tokio::test]
async fn a_lost_race_costs_four_requests() {
    let store = CountingStore::new(Arc::new(InMemory::new()));
    let winner = open(&store).await;
    let loser = open(&store).await;
    for seq in 0..3 {
        loser
            .add_entry(LogEntry::new("mine"), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    // The other handle appends a batch of two at the loser's end.
    winner
        .add_entries(
            vec![LogEntry::new("theirs"), LogEntry::new("theirs")],
            3,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    let before = store.counts();
    let err = loser
        .add_entry(LogEntry::new("late"), 3, KnownSnapshot::NotTracked)
        .await
        .unwrap_err();
    let cost = store.counts().since(before);
    assert!(
        matches!(
            err,
            infinisheet_event_log::AddEntryError::Conflict {
                attempted: 3,
                next: 5
            }
        ),
        "{err}"
    );
    assert_eq!(
        (cost.put, cost.get, cost.total()),
        (1, 3, 4),
        "a lost race cost {cost}"
    );
}

/// Fails every delete while `on` is set: a writer that dies before taking
/// back what it wrote.
#[derive(Default)]
struct NoDeletes {
    on: std::sync::atomic::AtomicBool,
}

impl infinisheet_test_kit::Interceptor for NoDeletes {
    fn intercept(&self, call: infinisheet_test_kit::Call<'_>) -> infinisheet_test_kit::Verdict {
        if matches!(call, infinisheet_test_kit::Call::Delete)
            && self.on.load(std::sync::atomic::Ordering::Relaxed)
        {
            return infinisheet_test_kit::Verdict::Fail(infinisheet_object_store::Error::Generic {
                store: "test",
                source: "the writer died".into(),
            });
        }
        infinisheet_test_kit::Verdict::Pass
    }
}

/// A writer behind a truncate that creates a record below the log's first
/// one and cannot take it back leaves a stale record there. Another writer
/// behind the truncate that then loses the race for that id is told the
/// log's real end, not the id past the stale record.
#[tokio::test]
async fn a_stale_record_below_the_start_says_nothing_about_the_end() {
    let deletes = Arc::new(NoDeletes::default());
    let store: Arc<dyn infinisheet_object_store::ObjectStore> = Arc::new(
        infinisheet_test_kit::Intercepted::new(Arc::new(InMemory::new()), deletes.clone()),
    );
    let open = || ObjectStoreEventLog::open(store.clone(), "log".into());
    let (behind, stale_writer, ahead) = (
        open().await.unwrap(),
        open().await.unwrap(),
        open().await.unwrap(),
    );
    for seq in 0..3 {
        stale_writer
            .add_entry(LogEntry::new("old"), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    behind.bounds().await.unwrap();
    for seq in 3..10 {
        ahead
            .add_entry(LogEntry::new("new"), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    ahead.truncate(8).await.unwrap();
    deletes.on.store(true, std::sync::atomic::Ordering::Relaxed);
    let batch = (0..20).map(|_| LogEntry::new("stale")).collect();
    stale_writer
        .add_entries(batch, 3, KnownSnapshot::NotTracked)
        .await
        .unwrap_err();
    deletes
        .on
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let err = behind
        .add_entry(LogEntry::new("late"), 3, KnownSnapshot::NotTracked)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            infinisheet_event_log::AddEntryError::Conflict {
                attempted: 3,
                next: 10
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_log_that_is_not_there_is_not_found_and_not_created() {
    let store = CountingStore::new(Arc::new(InMemory::new()));
    let err = ObjectStoreEventLog::open_existing(Arc::new(store.clone()), "nothing".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, infinisheet_object_store::OpenError::NotFound { .. }),
        "{err}"
    );
    assert_eq!(store.counts().writes(), 0);
    // Creating one leaves no probe behind.
    let log = open(&store).await;
    log.add_entry(LogEntry::new("x"), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let mut keys = Vec::new();
    let mut listing = infinisheet_object_store::ObjectStore::list(&store, None);
    while let Some(meta) = futures::StreamExt::next(&mut listing).await {
        keys.push(meta.unwrap().location.to_string());
    }
    assert_eq!(keys, ["log/head", "log/records/00000000000000000000"]);
}

/// A listing tells every blob's size from the listing itself: adding up a
/// directory's bytes (as `infinisheet info` does) reads no blob.
#[tokio::test]
async fn a_listing_gives_sizes_without_reading_blobs() {
    let store = CountingStore::new(Arc::new(InMemory::new()));
    let root = ObjectStoreBlobStore::new(Arc::new(store.clone()), "blobs".into()).root();
    for i in 0..50usize {
        root.write(&format!("tile-{i}"), vec![0u8; i * 10])
            .await
            .unwrap();
    }
    let before = store.counts();
    let listed = root.list_all().await.unwrap();
    let cost = store.counts().since(before);
    assert_eq!(listed.len(), 50);
    let total: u64 = listed.iter().map(|e| e.size.unwrap()).sum();
    assert_eq!(total, (0..50).map(|i| i * 10).sum::<u64>());
    assert_eq!((cost.get, cost.head), (0, 0), "listing cost {cost}");
}
