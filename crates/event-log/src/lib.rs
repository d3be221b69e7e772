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
//!
//! # Layout
//!
//! `EventLog` (one append, `append_at`; `query`,
//! `bounds`, `set_metadata`, `truncate`, `capabilities`,
//! `wait_for_entries`), the entry and reply types, one error enum per
//! operation, `EventLogExt` (`add_entry`, `add_entries`, `query_all`,
//! `tail`, `append`: conveniences nobody implements), `LogStore` (logs by
//! id, `store.rs`, with `LogStoreError` and `check_log_id`), forwarding
//! impls for `Arc`/`Box` (denying missing methods), and `raw`: the
//! contract's rules for implementers (`Bounds`: range errors, the checks of
//! `set_metadata` and `truncate`, query resolution, the append rule and when
//! a conflict may be a retry; `QueryRange`: pages and replies;
//! `reply_snapshot`; `is_retry_of`; `Waiters` and `WaiterRegistry`: the
//! one list of waiting tails a backend wakes in its append path;
//! `blocking`/`pooled`: a synchronous call off the runtime's path, for the
//! SQLite and filesystem backends). Every backend calls them, so no rule is
//! written twice.
//!
//! # Tailing
//!
//! `Tail::next` queries from its
//! next id; entries advance it, an empty answer is `CaughtUp` once and then
//! a wait in `EventLog::wait_for_entries` (a default that sleeps; the
//! memory, SQLite and filesystem logs declare `wakes_in_process` and wake
//! a log's waiters (`raw::Waiters`) in their one append path and at a
//! publish, for every handle of the log in the process — SQLite's found by
//! the database file and the log's row id, the filesystem's by its lock
//! file's device and inode, since log stores open a handle per call;
//! other processes are polled; the object-store log polls; the HTTP client
//! long-polls the server's own wait; wrappers forward it), a `Range` error
//! below the start is `FellBehind` (the tail stays put until
//! `resume_at`). `tracking_snapshots` makes its queries carry a known
//! snapshot, so a reply naming another is `TailEvent::Snapshot` (the
//! reply's entries are held for the next call). `Spreadsheet::watch` runs one in a task and syncs on each
//! batch.
//!
//! # Invariants
//!
//! * Queries that return fewer entries than asked return at least one and say
//!   `is_complete = false`.
//! * Appends are exactly once for a caller that retries with a token. An
//!   append may carry an `AppendToken` (128 random bits per append); every
//!   backend keeps it with the batch it marks — the memory log in a map by
//!   the batch's first id, the filesystem log in the batch's own frame (tag
//!   6, read back from the segment when a retry asks), SQLite in table `append_tokens`
//!   (schema version 3, checksummed), the object-store log inside the record
//!   (record version 2). A repeated append whose batch is at `seq` under the
//!   same token and length succeeds without appending; any other append at a
//!   taken id is a conflict. A token is remembered as long as its batch's
//!   first entry is in the log: truncating other entries never forgets it,
//!   and nothing else does. The object-store log marks every record with a
//!   token (the caller's or a fresh one), so its client library's retry of a
//!   PUT whose reply was lost — which meets `412` — is told from another
//!   writer's record. The engine sends every edit with one token and resends
//!   it at the same id after a retryable storage error
//!   (`SheetOptions::storage_retries`), so an edit whose reply was lost is
//!   never applied twice.
//!
//! # Decisions
//!
//! * `KnownSnapshot` has three states (`NotTracked`, `NoSnapshot`, `At(id)`)
//!   where the original had an optional id: a client that holds no snapshot
//!   yet must still learn of the first one, and a caller that does not care
//!   lets a backend skip the lookup.

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
