//! A query page is bounded by what its entries hold, metadata included:
//! a caller (a server streaming a tail) holds a page at a time.

use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_count_metadata_with_payloads() {
    let db = SqliteDatabase::temporary(SqliteOptions::default())
        .await
        .unwrap();
    let log = db.create_log("big-metadata").await.unwrap();
    let entries: Vec<_> = (0..40).map(|i| LogEntry::new(format!("{i}"))).collect();
    log.add_entries(entries, 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    // Each entry names a snapshot of a 1 MiB id: 40 MiB of metadata.
    for seq in 0..40 {
        let id = format!("{seq}-{}", "x".repeat(1 << 20));
        log.set_metadata(seq, MetadataUpdate::publish_snapshot(id))
            .await
            .unwrap();
    }
    let page = log
        .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert!(
        !page.is_complete && page.entries.len() <= 17,
        "a page of {} entries holding {} MiB",
        page.entries.len(),
        page.entries.len()
    );
    // And every entry is still read, page by page.
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(all.entries.len(), 40);
}

/// Page sizes set on the options' fields directly, past what the builder
/// methods allow, are held to the contract: a listing page of 0 names
/// listed the same empty page forever, and one of 5,000 held more than
/// any store may (and than the store declared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_sizes_set_directly_are_held_in_bounds() {
    use infinisheet_blob_store::{BlobDirExt, BlobStore, MAX_PAGE};
    for (names, declared) in [(0, 1), (5_000, MAX_PAGE)] {
        let mut options = SqliteOptions::default();
        options.list_page_names = names;
        options.query_page_entries = 0;
        let db = SqliteDatabase::temporary(options).await.unwrap();
        let blobs = db.blob_store("b").await.unwrap();
        assert_eq!(blobs.capabilities().page_size, declared);
        let root = blobs.root();
        for i in 0..3 {
            root.write(&format!("b{i}"), "x").await.unwrap();
        }
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), root.list(None))
            .await
            .expect("a listing page")
            .unwrap();
        assert!(!first.entries.is_empty() && first.entries.len() <= declared);
        let listed = tokio::time::timeout(std::time::Duration::from_secs(10), root.list_all())
            .await
            .expect("a listing that ends")
            .unwrap();
        assert_eq!(listed.len(), 3);
        let log = db.create_log("l").await.unwrap();
        log.add_entries(
            vec![LogEntry::new("a"), LogEntry::new("b")],
            0,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
        let page = log
            .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        assert!(!page.entries.is_empty(), "a query page of no entries");
    }
}
