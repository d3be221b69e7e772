//! Two truncates of one log racing: the one that lists the records after
//! the other removed them retries (and finds its start now out of range)
//! instead of calling the log damaged.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry, TruncateError};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::path::Path;
use infinisheet_test_kit::{Call, Hook, Intercepted, Interceptor, Verdict};
use std::sync::{Arc, Mutex};

/// Runs its hook (once) as the next listing of a log's records starts.
#[derive(Default)]
struct BeforeRecordsListing(Mutex<Option<Hook>>);

impl Interceptor for BeforeRecordsListing {
    fn intercept(&self, call: Call<'_>) -> Verdict {
        match call {
            Call::List {
                prefix: Some(prefix),
            } if prefix.as_ref().ends_with("records") => self
                .0
                .lock()
                .unwrap()
                .take()
                .map_or(Verdict::Pass, Verdict::After),
            _ => Verdict::Pass,
        }
    }
}

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
    let hook = Arc::new(BeforeRecordsListing::default());
    let store = Arc::new(Intercepted::new(inner.clone(), hook.clone()));
    let log = ObjectStoreEventLog::open(store, prefix).await.unwrap();
    // Between this truncate's reading of the head and its listing of the
    // records, another client truncates further and removes them.
    let racer = other.clone();
    *hook.0.lock().unwrap() = Some(Box::pin(async move {
        racer.truncate(20).await.unwrap();
    }));
    match log.truncate(10).await {
        Err(TruncateError::Range(range)) => assert_eq!((range.requested, range.start), (10, 20)),
        other => panic!("expected a range error after the retry, got {other:?}"),
    }
    assert!(hook.0.lock().unwrap().is_none(), "the race happened");
    // And a truncate within the bounds still works.
    log.truncate(25).await.unwrap();
}
