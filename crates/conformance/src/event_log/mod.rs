//! The conformance cases of the [`EventLog`] contract.
//!
//! Each case takes a fresh, empty log (persistence cases also take a way to
//! reopen it) and panics when the log breaks the contract.

use bytes::Bytes;
use infinisheet_event_log::{
    EventLog, EventLogExt, FieldUpdate, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd,
    QueryStart, QueryValue, SequenceId,
};
use std::sync::Arc;

mod basics;
mod concurrency;
mod handles;
mod metadata;
mod model;
mod payload;
mod persistence;
mod query;
mod retry;
mod snapshot;
mod tail;
mod truncate;

pub use basics::*;
pub use concurrency::*;
pub use handles::*;
pub use metadata::*;
pub use model::*;
pub use payload::*;
pub use persistence::*;
pub use query::*;
pub use retry::*;
pub use snapshot::*;
pub use tail::*;
pub use truncate::*;

/// The log under test, as host apps hold it.
pub type Log = Arc<dyn EventLog>;

/// Whether `log` declares itself persistent (for the macros).
#[doc(hidden)]
pub fn persistent<L: EventLog>(log: &L) -> bool {
    log.capabilities().persistent
}

/// Entry number `i`: a payload that names it.
fn entry(i: u64) -> LogEntry {
    LogEntry::new(Bytes::from(format!("entry {i}")))
}

/// Appends entries `0..n` one by one.
async fn fill(log: &dyn EventLog, n: u64) {
    for i in 0..n {
        log.add_entry(entry(i), i, KnownSnapshot::NotTracked)
            .await
            .unwrap_or_else(|err| panic!("appending entry {i} to a log of {i} entries: {err}"));
    }
}

/// Appends entries `start..end` in batches of at most `batch`.
async fn fill_batched(log: &dyn EventLog, start: u64, end: u64, batch: u64) {
    let mut seq = start;
    while seq < end {
        let n = batch.min(end - seq);
        let entries = (seq..seq + n).map(entry).collect();
        log.add_entries(entries, seq, KnownSnapshot::NotTracked)
            .await
            .unwrap_or_else(|err| panic!("appending a batch at {seq}: {err}"));
        seq += n;
    }
}

/// The whole log, across pages.
async fn everything(log: &dyn EventLog) -> QueryValue {
    log.query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("querying the whole log: {err}"))
}

/// Three tasks each setting one metadata field of entry 0 `rounds` times
/// (to `field F value I`): field `f` through `logs[f]`.
fn field_writers(logs: [Log; 3], rounds: u64) -> Vec<tokio::task::JoinHandle<()>> {
    logs.into_iter()
        .enumerate()
        .map(|(field, log)| {
            tokio::spawn(async move {
                for i in 0..rounds {
                    let value = FieldUpdate::Set(format!("field {field} value {i}"));
                    let mut update = MetadataUpdate::default();
                    match field {
                        0 => update.snapshot = value,
                        1 => update.history = value,
                        _ => update.pending = value,
                    }
                    log.set_metadata(0, update)
                        .await
                        .unwrap_or_else(|err| panic!("field {field}: {err}"));
                }
            })
        })
        .collect()
}

/// Panics unless entry 0 of `all` holds the last value each of the
/// [`field_writers`] of `rounds` set.
fn assert_fields_last(all: &QueryValue, rounds: u64) {
    let metadata = &all.entries[0].metadata;
    let last = |field: u64| format!("field {field} value {}", rounds - 1);
    assert_eq!(
        metadata.snapshot.as_deref(),
        Some(last(0).as_str()),
        "a metadata change was lost"
    );
    assert_eq!(metadata.history.as_deref(), Some(last(1).as_str()));
    assert_eq!(metadata.pending.as_deref(), Some(last(2).as_str()));
}

/// The payloads of a reply.
fn payloads(value: &QueryValue) -> Vec<Bytes> {
    value.entries.iter().map(|e| e.payload.clone()).collect()
}

/// The payloads `entry(i)` has for `ids`.
fn expected_payloads(ids: impl IntoIterator<Item = SequenceId>) -> Vec<Bytes> {
    ids.into_iter().map(|i| entry(i).payload).collect()
}

/// Asserts the log holds exactly `[start, end)` with the payloads
/// `entry(start..end)`.
async fn assert_holds(log: &dyn EventLog, start: u64, end: u64) {
    let all = everything(log).await;
    assert_eq!((all.start, all.end), (start, end), "log bounds");
    assert_eq!(
        payloads(&all),
        expected_payloads(start..end),
        "log payloads"
    );
}
