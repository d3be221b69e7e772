//! In-memory reference implementations of the Infinisheet storage traits:
//! [`MemoryEventLog`], [`MemoryLogs`] (logs by id) and [`MemoryBlobStore`].
//!
//! They are the reference the conformance suite's model test compares every
//! other backend against, and fast stand-ins for tests and samples. Clones
//! share state, so a clone is a second client of the same log or store.
//! Nothing survives dropping the last clone.

mod blob_store;
mod event_log;
mod logs;

pub use blob_store::{MemoryBlobDir, MemoryBlobStore};
pub use event_log::MemoryEventLog;
pub use logs::MemoryLogs;

/// Name reported in the backend's storage errors.
pub const BACKEND: &str = "memory";

/// Locks `mutex`, recovering the data if a thread panicked while holding it.
/// Every critical section in this crate leaves the state valid before any
/// call that could panic, so the data is consistent either way.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
