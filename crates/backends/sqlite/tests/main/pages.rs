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
