//! Two truncates of one log racing: the one that lists the records after
//! the other removed them retries (and finds its start now out of range)
//! instead of calling the log damaged.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use common::intercept::Intercepting;
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry, TruncateError};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::object_store::path::Path;

#[tokio::test]
async fn a_truncate_that_lists_after_another_removed_the_records_retries() {
    let inner = common::memory();
    let prefix = Path::from("log");
    let other = ObjectStoreEventLog::open(inner.clone(), prefix.clone())
        .await
        .unwrap();
    for i in 0..30 {
        other
            .add_entry(
                LogEntry::new(format!("entry {i}")),
                i,
                KnownSnapshot::NotTracked,
            )
            .await
            .unwrap();
    }
    let store = Intercepting::new(inner.clone());
    let log = ObjectStoreEventLog::open(store.clone(), prefix)
        .await
        .unwrap();
    // Between this truncate's reading of the head and its listing of the
    // records, another client truncates further and removes them.
    let racer = other.clone();
    *store.before_records_listing.lock().unwrap() = Some(Box::pin(async move {
        racer.truncate(20).await.unwrap();
    }));
    match log.truncate(10).await {
        Err(TruncateError::Range(range)) => assert_eq!((range.requested, range.start), (10, 20)),
        other => panic!("expected a range error after the retry, got {other:?}"),
    }
    assert!(
        store.before_records_listing.lock().unwrap().is_none(),
        "the race happened"
    );
    // And a truncate within the bounds still works.
    log.truncate(25).await.unwrap();
}
