//! Compare-and-swap loops give up: an object-store log whose every
//! conditional replace loses (another writer always first) answers a
//! retryable error after a bounded number of attempts instead of spinning.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    EventLog, KnownSnapshot, LogEntry, MetadataUpdate, SetMetadataError, TruncateError,
};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::path::Path;
use infinisheet_object_store::{self, PutMode};
use infinisheet_test_kit::{Call, Intercepted, Interceptor, Verdict};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// While `lose` is set, every conditional write but a record's (an
/// append's create stays a plain race it may win) fails as if another
/// writer had got there first.
#[derive(Default)]
struct LosesRaces {
    lose: AtomicBool,
    /// How many writes were failed so.
    lost: AtomicU64,
}

impl Interceptor for LosesRaces {
    fn intercept(&self, call: Call<'_>) -> Verdict {
        if let Call::Put { location, opts } = call {
            let conditional = !matches!(opts.mode, PutMode::Overwrite);
            let record = location.as_ref().contains("/records/");
            if conditional && !record && self.lose.load(Ordering::Relaxed) {
                self.lost.fetch_add(1, Ordering::Relaxed);
                return Verdict::Fail(object_store::Error::Precondition {
                    path: location.to_string(),
                    source: "another writer changed it first".into(),
                });
            }
        }
        Verdict::Pass
    }
}

#[tokio::test]
async fn endless_lost_races_end_in_a_retryable_error() {
    let races = Arc::new(LosesRaces::default());
    let store = Arc::new(Intercepted::new(common::memory(), races.clone()));
    let log = ObjectStoreEventLog::open(store, Path::from("log"))
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
    races.lose.store(true, Ordering::Relaxed);
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
    let lost = races.lost.load(Ordering::Relaxed);
    assert!((2..200).contains(&lost), "{lost} lost races");
    // The store recovers, and so does the log.
    races.lose.store(false, Ordering::Relaxed);
    log.truncate(2).await.unwrap();
}
