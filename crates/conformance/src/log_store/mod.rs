//! The conformance cases of the [`LogStore`] contract: what a catalog
//! relies on of the store that hands out its sheets' logs. Each case takes
//! a fresh, empty store. The handles a store gives out for one id must
//! pass the event log's second-handle cases too, which
//! [`log_store_tests!`](crate::log_store_tests) runs on them.

use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, LogStore, LogStoreError, QueryEnd, QueryStart,
};
use std::sync::Arc;

/// The store under test, as a catalog holds it.
pub type Logs = Arc<dyn LogStore>;

/// An id no other case of this process uses, valid in every store.
#[doc(hidden)]
pub fn fresh_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "case-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Two handles on log `id` of `store`: one that creates it, one opened
/// apart, as two calls of a catalog get them.
#[doc(hidden)]
pub async fn two_handles(store: &dyn LogStore, id: &str) -> (Arc<dyn EventLog>, Arc<dyn EventLog>) {
    let first = store
        .log(id, true)
        .await
        .unwrap_or_else(|err| panic!("creating log {id}: {err}"));
    let second = store
        .log(id, false)
        .await
        .unwrap_or_else(|err| panic!("opening log {id} again: {err}"));
    (first, second)
}

async fn payloads(log: &dyn EventLog) -> Vec<bytes::Bytes> {
    log.query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("reading a log: {err}"))
        .entries
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

/// The store names its backend and itself.
pub async fn store_names_itself(store: Logs) {
    assert!(!store.backend().is_empty(), "a store's backend has a name");
    assert!(!store.url().is_empty(), "a store has a name in messages");
}

/// A log that does not exist, opened without `create`, is `NotFound`,
/// and opening it so creates nothing.
pub async fn unknown_log_without_create_is_not_found(store: Logs) {
    let id = fresh_id();
    assert_err!(store.log(&id, false).await, LogStoreError::NotFound { .. });
    assert_err!(store.log(&id, false).await, LogStoreError::NotFound { .. });
}

/// Ids that could leave the store's place or name nothing (`..`, a
/// separator, empty, too long, beyond ASCII) are `InvalidId`, whether or
/// not the log is to be created, and create nothing.
pub async fn invalid_ids_are_refused(store: Logs) {
    let long = "x".repeat(65);
    for id in [
        "", "..", ".", "/", "a/b", "a\\b", "/abs", "a b", "a.b", "é", "a\0b", &long,
    ] {
        assert_err!(store.log(id, true).await, LogStoreError::InvalidId { .. });
        assert_err!(store.log(id, false).await, LogStoreError::InvalidId { .. });
    }
    let longest = "y".repeat(64);
    store
        .log(&longest, true)
        .await
        .unwrap_or_else(|err| panic!("a 64-character id is valid: {err}"));
}

/// A log created is there to open again, holding what was appended.
pub async fn created_log_opens_again(store: Logs) {
    let id = fresh_id();
    let created = store
        .log(&id, true)
        .await
        .unwrap_or_else(|err| panic!("creating {id}: {err}"));
    created
        .add_entry(LogEntry::new("first"), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("appending: {err}"));
    let opened = store
        .log(&id, false)
        .await
        .unwrap_or_else(|err| panic!("opening {id} again: {err}"));
    assert_eq!(
        payloads(opened.as_ref()).await,
        vec![bytes::Bytes::from_static(b"first")]
    );
    // Created again: the same log, not a new empty one.
    let again = store
        .log(&id, true)
        .await
        .unwrap_or_else(|err| panic!("opening {id} with create: {err}"));
    assert_eq!(
        payloads(again.as_ref()).await.len(),
        1,
        "create made the log anew"
    );
}

/// Logs of different ids are independent: what one holds, another does
/// not; clearing one leaves the other.
pub async fn logs_are_independent(store: Logs) {
    let (one, two) = (fresh_id(), fresh_id());
    let first = store
        .log(&one, true)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let second = store
        .log(&two, true)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    first
        .add_entries(
            vec![LogEntry::new("a"), LogEntry::new("b")],
            0,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    second
        .add_entry(LogEntry::new("only"), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(payloads(first.as_ref()).await.len(), 2);
    assert_eq!(
        payloads(second.as_ref()).await,
        vec![bytes::Bytes::from_static(b"only")]
    );
    store
        .clear(&one)
        .await
        .unwrap_or_else(|err| panic!("clearing {one}: {err}"));
    assert_eq!(
        payloads(second.as_ref()).await.len(),
        1,
        "clearing one log cleared another"
    );
}

/// Clearing a log removes its entries (a handle opened before sees it
/// empty, its end kept or the log gone); clearing one that does not exist
/// is no error.
pub async fn clear_empties_a_log(store: Logs) {
    let id = fresh_id();
    let log = store
        .log(&id, true)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    log.add_entries(
        vec![LogEntry::new("a"), LogEntry::new("b")],
        0,
        KnownSnapshot::NotTracked,
    )
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    store
        .clear(&id)
        .await
        .unwrap_or_else(|err| panic!("clearing {id}: {err}"));
    match store.log(&id, false).await {
        Ok(again) => assert!(
            payloads(again.as_ref()).await.is_empty(),
            "clear left entries"
        ),
        Err(LogStoreError::NotFound { .. }) => {}
        Err(err) => panic!("opening a cleared log: {err}"),
    }
    // The handle opened before reads no entry either (or fails): it never
    // serves what the clear removed.
    if let Ok(read) = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
    {
        assert!(
            read.entries.is_empty(),
            "a handle opened before the clear still reads {} entries",
            read.entries.len()
        );
    }
    store
        .clear(&fresh_id())
        .await
        .unwrap_or_else(|err| panic!("clearing a log that does not exist: {err}"));
}
