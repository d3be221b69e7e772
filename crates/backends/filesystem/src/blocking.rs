//! Running file-system calls without blocking the async runtime:
//! `block_in_place` on a multi-threaded tokio runtime (the runtime hands the
//! worker's other tasks to another thread first), `spawn_blocking` on a
//! current-thread one, and the calling thread outside tokio. A round trip
//! to another thread costs ~60 µs on this project's VMs, a large share of a
//! durable write (see ARCHITECTURE.md).
//!
//! Blob reads and writes run on the blocking pool instead
//! ([`pooled`]): a caller making several at once (the engine writes a
//! snapshot's tiles `blob_concurrency` at a time) gets them overlapped,
//! their syncs included, where `block_in_place` would suspend every other
//! future of the calling task until each one returned.

use crate::error::BACKEND;
use infinisheet_blob_store::StorageError;
use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `job` off the async runtime's critical path.
pub(crate) async fn blocking<T, F>(job: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(job)),
        _ => pooled(job).await,
    }
}

/// Runs `job` on the blocking pool (in place outside tokio), so that
/// calls made at once from one task overlap.
pub(crate) async fn pooled<T, F>(job: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match Handle::try_current() {
        Ok(_) => tokio::task::spawn_blocking(job).await.map_err(|err| {
            StorageError::new(BACKEND, "a file-system call panicked (a bug)").with_source(err)
        }),
        Err(_) => Ok(job()),
    }
}
