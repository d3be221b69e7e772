//! A custom backend that runs the conformance suite on itself and backs a
//! catalog: a wrapper that counts the calls of each operation, around the
//! memory backends, and a [`LogStore`] that gives each of a catalog's
//! sheets one such log.
//!
//! `cargo run --example counting_backend` runs a catalog on it and shows
//! the counts; `cargo test --example counting_backend` runs every
//! conformance case on the wrapper (an event log and a blob store, and the
//! logs the `LogStore` hands out), as a third party's backend would in its
//! own `tests/conformance.rs`, and the catalog on it.

use futures::future::BoxFuture;
use infinisheet::blob_store::StorageError;
use infinisheet::memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet::prelude::*;
use infinisheet::{LogStoreError, check_log_id};
use infinisheet_layers::{Call, Hook, Layered, Op};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts calls by operation. Clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct Counting {
    counts: Arc<Mutex<BTreeMap<Op, u64>>>,
}

impl Counting {
    /// The counts so far.
    pub fn counts(&self) -> BTreeMap<Op, u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Hook for Counting {
    fn around<'a, T, E>(
        &'a self,
        call: Call<'a>,
        inner: BoxFuture<'a, Result<T, E>>,
    ) -> BoxFuture<'a, Result<T, E>>
    where
        T: Send + 'a,
        E: From<StorageError> + fmt::Display + Send + 'a,
    {
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(call.op)
            .or_default() += 1;
        inner
    }
}

/// An event log that counts its calls.
pub fn counting_log() -> Layered<Counting, MemoryEventLog> {
    Layered::new(Counting::default(), MemoryEventLog::new())
}

/// A blob store that counts its calls.
pub fn counting_store() -> Layered<Counting, MemoryBlobStore> {
    Layered::new(Counting::default(), MemoryBlobStore::new())
}

/// A catalog's logs, one counting log per sheet, all counted together.
#[derive(Debug, Default)]
pub struct CountingLogs {
    counting: Counting,
    logs: Mutex<HashMap<String, Arc<Layered<Counting, MemoryEventLog>>>>,
}

impl CountingLogs {
    /// The counts of every log's calls so far.
    pub fn counts(&self) -> BTreeMap<Op, u64> {
        self.counting.counts()
    }
}

#[infinisheet::async_trait]
impl LogStore for CountingLogs {
    fn backend(&self) -> &str {
        "counting"
    }

    fn url(&self) -> &str {
        "counting:"
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        check_log_id(self, id)?;
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = logs.get(id) {
            return Ok(log.clone());
        }
        if !create {
            return Err(LogStoreError::not_found(self.url(), id));
        }
        let log = Arc::new(Layered::new(self.counting.clone(), MemoryEventLog::new()));
        logs.insert(id.to_owned(), log.clone());
        Ok(log)
    }
}

/// A catalog whose sheets keep their logs in `logs`, blobs in memory.
pub fn catalog_on(logs: Arc<CountingLogs>) -> Catalog {
    Catalog::new(Storage::new(
        logs,
        Arc::new(MemoryBlobStore::new()),
        "memory:",
    ))
}

/// Creates a sheet, edits it through a workflow host, reopens it: what a
/// host app does, on the custom logs.
pub async fn session(
    catalog: &Catalog,
) -> Result<Vec<Vec<Option<Cell>>>, Box<dyn std::error::Error>> {
    let options = SheetOptions::default().snapshot_interval(5);
    let sheet = catalog.create_sheet("reports/q3", options).await?;
    let cells = sheet.writer(true).await?;
    for row in 0..12u32 {
        cells.set(CellRef::new(row, 0), f64::from(row)).await?;
    }
    cells.finish().await;
    let reopened = catalog.open_sheet("reports/q3").await?.open().await?;
    Ok(reopened.read("A10:A12".parse()?).await?)
}

/// A second handle: the same counter around a clone of the same memory
/// backend.
#[cfg(test)]
fn again<T: Clone>(layered: &Layered<Counting, T>) -> std::future::Ready<Layered<Counting, T>> {
    std::future::ready(Layered::new(
        layered.hook().clone(),
        layered.inner().clone(),
    ))
}

// Every conformance case, on the wrapper: one test each.
#[cfg(test)]
infinisheet_conformance::event_log_tests!(
    || async { counting_log() },
    open_again = again::<MemoryEventLog>,
);
#[cfg(test)]
infinisheet_conformance::blob_store_tests!(
    || async { counting_store() },
    open_again = again::<MemoryBlobStore>,
);
// ... and the catalog's `LogStore`: its own cases, and the second-handle
// cases on the logs it hands out, as it hands them.
#[cfg(test)]
infinisheet_conformance::log_store_tests!(|| async { CountingLogs::default() });

#[cfg(test)]
#[tokio::test]
async fn a_catalog_runs_on_the_custom_logs() {
    let logs = Arc::new(CountingLogs::default());
    let catalog = catalog_on(logs.clone());
    let rows = session(&catalog)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        rows,
        [
            [Some(Cell::from(9.0))],
            [Some(Cell::from(10.0))],
            [Some(Cell::from(11.0))]
        ]
    );
    let sheet = catalog
        .open_sheet("reports/q3")
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(sheet.metadata().log_backend, "counting");
    // The sheet's edits went through the custom log: its identity entry and
    // 12 edits, and the snapshots it published.
    let counts = logs.counts();
    assert!(
        counts.get(&Op::Append).copied().unwrap_or(0) >= 13,
        "{counts:?}"
    );
    assert!(
        counts.get(&Op::SetMetadata).copied().unwrap_or(0) >= 2,
        "{counts:?}"
    );
    assert!(
        sheet
            .open()
            .await
            .unwrap_or_else(|err| panic!("{err}"))
            .content()
            .snapshot()
            .is_some()
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let log = counting_log();
    for seq in 0..3 {
        log.add_entry(
            infinisheet::event_log::LogEntry::new(format!("entry {seq}")),
            seq,
            infinisheet::event_log::KnownSnapshot::NotTracked,
        )
        .await?;
    }
    let store = counting_store();
    let dir = store.root().open_dir("reports").await?;
    dir.write("q3", "numbers").await?;
    dir.read("q3").await?;
    println!("a log and a blob store:");
    for (op, count) in log.hook().counts().into_iter().chain(store.hook().counts()) {
        println!("  {op:<12} {count}");
    }
    let logs = Arc::new(CountingLogs::default());
    let rows = session(&catalog_on(logs.clone())).await?;
    println!("a catalog on the counting logs read back {rows:?}; its logs' calls:");
    for (op, count) in logs.counts() {
        println!("  {op:<12} {count}");
    }
    Ok(())
}
