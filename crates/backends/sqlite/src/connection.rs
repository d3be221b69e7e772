//! The database connection and how calls reach it without blocking the
//! async runtime.
//!
//! On a multi-threaded tokio runtime a call runs on the calling worker
//! thread inside `tokio::task::block_in_place`, which first hands that
//! worker's other tasks to another thread; on a current-thread runtime it
//! runs on the blocking pool (`spawn_blocking`). Either way the runtime
//! keeps running other tasks while SQLite syncs or waits for another
//! process's lock. A dedicated connection thread was measured first: on the
//! 2-core VMs this project runs on, waking another thread and being woken
//! back costs about 60 µs, twice a whole NORMAL-durability append, while
//! `block_in_place` costs about 14 µs.
//!
//! Outside any tokio runtime, calls run on the calling thread. Both are
//! `infinisheet_event_log::raw::blocking`, shared with the filesystem
//! backend.

use crate::error::BACKEND;
use infinisheet_event_log::StorageError;
use infinisheet_event_log::raw::{blocking, pooled};
use std::sync::{Arc, Mutex, PoisonError};

/// One SQLite connection shared by every handle of a database. Calls take
/// turns on it; other processes have connections of their own.
#[derive(Debug, Clone)]
pub(crate) struct SharedConnection {
    connection: Arc<Mutex<rusqlite::Connection>>,
}

impl SharedConnection {
    pub(crate) fn new(connection: rusqlite::Connection) -> Self {
        SharedConnection {
            connection: Arc::new(Mutex::new(connection)),
        }
    }

    /// The connection itself, for a job already off the runtime.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // As in `call`: a poisoned lock still guards a usable connection.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `job` on the connection, off the async runtime's critical path:
    /// in place ([`blocking`]), or on the blocking pool ([`pooled`]) when
    /// it is `large`. A large call (megabytes of entries) gains nothing
    /// from the thread it saves, and each `block_in_place` moves the
    /// calling worker's tasks to another thread: a bulk load appending
    /// beside a snapshot writer then spreads their allocations over every
    /// thread of the pool, and the allocator keeps an arena for each
    /// (a 10M-cell import peaked at about 200 MB, about 150 MB since).
    pub(crate) async fn call<T, F>(&self, large: bool, job: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> T + Send + 'static,
    {
        let connection = self.connection.clone();
        // A job that panicked left no transaction open (dropping it rolled
        // back), so a poisoned lock still guards a usable connection.
        let job = move || job(&mut connection.lock().unwrap_or_else(PoisonError::into_inner));
        if large {
            pooled(BACKEND, job).await
        } else {
            blocking(BACKEND, job).await
        }
    }
}
