//! Packs: a query that reads whole 64-entry blocks from their records packs
//! them, later queries read the packs, metadata changed after packing still
//! shows, and a truncate removes the packs it passes.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use futures::TryStreamExt;
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_object_store::ObjectStore;
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::path::Path;
use std::sync::Arc;

async fn packs(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let listed: Vec<_> = store
        .list(Some(&Path::from("log/packs")))
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<String> = listed
        .into_iter()
        .map(|meta| meta.location.filename().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn all(log: &ObjectStoreEventLog) -> Vec<LogEntry> {
    log.query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap()
        .entries
}

fn pack_name(k: u64) -> String {
    format!("{k:020}")
}

#[tokio::test]
async fn queries_pack_whole_blocks_and_read_them_back() {
    let store = common::memory();
    let log = ObjectStoreEventLog::open(store.clone(), Path::from("log"))
        .await
        .unwrap()
        .with_packing(true);
    for seq in 0..300u64 {
        log.add_entry(
            LogEntry::new(format!("e{seq}")),
            seq,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    }
    log.set_metadata(70, MetadataUpdate::publish_snapshot("before"))
        .await
        .unwrap();
    let first = all(&log).await;
    assert_eq!(
        packs(&store).await,
        (0..4).map(pack_name).collect::<Vec<_>>()
    );

    // Changed after its block was packed: the change still shows.
    log.set_metadata(10, MetadataUpdate::publish_snapshot("after"))
        .await
        .unwrap();
    let second = all(&log).await;
    assert_eq!(second.len(), 300);
    for (seq, (a, b)) in first.iter().zip(&second).enumerate() {
        assert_eq!(a.payload, format!("e{seq}"));
        assert_eq!(b.payload, a.payload);
    }
    assert_eq!(second[70].metadata.snapshot.as_deref(), Some("before"));
    assert_eq!(second[10].metadata.snapshot.as_deref(), Some("after"));
    assert_eq!(first[10].metadata.snapshot, None);

    // A page starting inside a packed block reads the right part of it.
    let page = log
        .query(
            QueryStart::Id(100),
            QueryEnd::Id(140),
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    let payloads: Vec<_> = page.entries.iter().map(|e| e.payload.clone()).collect();
    let want: Vec<_> = (100..140).map(|seq| format!("e{seq}")).collect();
    assert_eq!(payloads, want);

    // Truncating to 130 removes packs 0 and 1 (ids below 128) only.
    log.truncate(130).await.unwrap();
    assert_eq!(
        packs(&store).await,
        (2..4).map(pack_name).collect::<Vec<_>>()
    );
    let rest = all(&log).await;
    assert_eq!(rest.len(), 170);
    assert_eq!(rest[0].payload, "e130");
}
