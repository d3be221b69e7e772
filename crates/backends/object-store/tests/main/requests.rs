//! What operations cost in requests, counted by `CountingStore` around the
//! in-memory store: reads never write, opening a log that exists is one
//! request, and a steady-state append is a PUT and a GET (plus one head
//! write per 256 entries). The full table is `cargo bench --bench requests`.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_object_store::object_store::memory::InMemory;
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
    let mut listing = infinisheet_object_store::object_store::ObjectStore::list(&store, None);
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
