//! The `EventLog` trait of Infinisheet and the types that cross it.
//!
//! An event log is a dense, totally ordered sequence of entries with ids in
//! `[start, end)`; a new log has `start == end == 0`. Each entry is an
//! immutable payload (bytes: the log never knows the application's types)
//! plus mutable [`EntryMetadata`]: the blob id of a snapshot, the blob id of
//! archived history, and the id of a pending background workflow.
//!
//! Two rules from the original design shape the API:
//!
//! * **Clients learn of snapshots on calls they make anyway.** Both
//!   [`EventLog::append_at`] and [`EventLog::query`] take the snapshot the
//!   caller builds on ([`KnownSnapshot`]) and reply with a newer one when the
//!   log holds it. No notification channel is needed.
//! * **Off by one.** A snapshot stored on entry `S` holds the state produced by
//!   every entry *before* `S`; the entry carrying it is the first entry of the
//!   next log segment.
//!
//! [`LogStore`] is where many logs live, each named by an id (a catalog
//! keeps a sheet's there).
//!
//! The crate holds only traits, types, errors and small helpers; it performs
//! no I/O and names no backend. [`raw`] holds the rules of the contract an
//! implementer applies (query resolution, range errors, retries), so every
//! backend applies them alike.
//!
//! ```
//! use bytes::Bytes;
//! use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd, QueryStart};
//! use infinisheet_memory::MemoryEventLog;
//! use std::sync::Arc;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
//! log.add_entry(LogEntry::new(Bytes::from_static(b"first")), 0, KnownSnapshot::NotTracked).await?;
//! log.add_entry(LogEntry::new(Bytes::from_static(b"second")), 1, KnownSnapshot::NotTracked).await?;
//! let all = log.query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked).await?;
//! assert_eq!((all.start, all.end, all.entries.len()), (0, 2, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

/// The attribute the traits are declared with: implement them under
/// `#[async_trait]` (re-exported, so an implementer needs no dependency of
/// its own).
pub use async_trait::async_trait;

mod error;
mod ext;
mod log;
pub mod raw;
mod store;
mod tail;
mod types;

pub use error::{AddEntryError, QueryError, RangeError, SetMetadataError, TruncateError};
pub use ext::{APPEND_ATTEMPTS, EventLogExt};
pub use infinisheet_storage_error::{BoxError, StorageError};
pub use log::{EventLog, LogCapabilities};
pub use raw::Bounds;
pub use store::{LogStore, LogStoreError, check_log_id, log_id_problem};
pub use tail::{Tail, TailError, TailEvent, TailOptions};
pub use types::{
    AddEntryValue, AppendToken, BlobId, EntryMetadata, FieldUpdate, KnownSnapshot, LogEntry,
    MetadataUpdate, QueryEnd, QueryStart, QueryValue, SequenceId, SnapshotValue, WorkflowId,
};
