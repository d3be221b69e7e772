//! A custom backend that runs the conformance suite on itself: a wrapper
//! that counts the calls of each operation, around the memory backends.
//!
//! `cargo run --example counting_backend` shows the counts of a small
//! session; `cargo test --example counting_backend` runs every conformance
//! case on the wrapper (an event log and a blob store), as a third party's
//! backend would in its own `tests/conformance.rs`.

use futures::future::BoxFuture;
use infinisheet::blob_store::{BlobDirExt, StorageError};
use infinisheet::event_log::{KnownSnapshot, LogEntry};
use infinisheet::{BlobStore, EventLog};
use infinisheet_layers::{Call, Hook, Layered, Op};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::collections::BTreeMap;
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

// Every conformance case, on the wrapper: one test each.
#[cfg(test)]
infinisheet_conformance::event_log_tests!(|| async { counting_log() });
#[cfg(test)]
infinisheet_conformance::blob_store_tests!(|| async { counting_store() });

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let log = counting_log();
    for seq in 0..3 {
        log.add_entry(
            LogEntry::new(format!("entry {seq}")),
            seq,
            KnownSnapshot::NotTracked,
        )
        .await?;
    }
    let store = counting_store();
    let dir = store.root().open_dir("reports").await?;
    dir.write("q3", "numbers").await?;
    dir.read("q3").await?;
    for (op, count) in log.hook().counts().into_iter().chain(store.hook().counts()) {
        println!("{op:<12} {count}");
    }
    Ok(())
}
