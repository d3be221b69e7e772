//! Compare-and-swap loops give up: an object-store log whose every
//! conditional replace loses (another writer always first) answers a
//! retryable error after a bounded number of attempts instead of spinning.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use common::intercept::Intercepting;
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    EventLog, KnownSnapshot, LogEntry, MetadataUpdate, SetMetadataError, TruncateError,
};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::object_store::path::Path;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn endless_lost_races_end_in_a_retryable_error() {
    let store = Intercepting::new(common::memory());
    let log = ObjectStoreEventLog::open(store.clone(), Path::from("log"))
        .await
        .unwrap();
    for i in 0..3 {
        log.add_entry(
            LogEntry::new(format!("entry {i}")),
            i,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    }
    store.lose_conditional.store(true, Ordering::Relaxed);
    match log
        .set_metadata(1, MetadataUpdate::publish_snapshot("s"))
        .await
    {
        Err(SetMetadataError::Storage(err)) => assert!(err.is_retryable(), "{err}"),
        other => panic!("expected a retryable storage error, got {other:?}"),
    }
    match log.truncate(2).await {
        Err(TruncateError::Storage(err)) => assert!(err.is_retryable(), "{err}"),
        other => panic!("expected a retryable storage error, got {other:?}"),
    }
    let lost = store.lost.load(Ordering::Relaxed);
    assert!((2..200).contains(&lost), "{lost} lost races");
    // The store recovers, and so does the log.
    store.lose_conditional.store(false, Ordering::Relaxed);
    log.truncate(2).await.unwrap();
}
