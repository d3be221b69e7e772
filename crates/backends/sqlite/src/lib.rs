//! The SQLite backend of Infinisheet: [`SqliteEventLog`] and
//! [`SqliteBlobStore`] on `rusqlite` with the bundled SQLite.
//!
//! One database file ([`SqliteDatabase`]) holds any number of named logs and
//! named blob stores. The file is in WAL mode; its layout carries a schema
//! version that is checked on open, and files this backend did not make are
//! refused without being changed. Each database handle owns one connection;
//! calls run through `tokio::task::block_in_place` (or `spawn_blocking` on a
//! current-thread runtime), so the async runtime keeps running other tasks
//! while SQLite syncs or waits for a lock. Other processes can open the same
//! file at once (their writes wait for each other up to the busy timeout).
//!
//! Every operation is one transaction. An append takes the write lock
//! (`BEGIN IMMEDIATE`) and wins its id with a conditional update of the
//! log's end, so exactly one of any number of racing connections or
//! processes wins an id; a batch is one transaction, all or nothing.
//! Durability is a setting ([`Durability`]): by default every acknowledged
//! write is synced (`synchronous = FULL`).
//!
//! # Layout
//!
//! `SqliteDatabase` (one file, schema version and
//! application id checked on open, WAL) holding named `SqliteEventLog`s and
//! `SqliteBlobStore`s. `connection.rs` is how calls reach the one connection;
//! `write_queue.rs` the blob writes waiting to commit together;
//! `checksum.rs` the CRC-32C of every stored row; `error.rs` is the only
//! place SQLite errors are inspected.
//!
//! # Invariants
//!
//! * A SQLite file is only written after it is known to be empty or an
//!   Infinisheet database of a schema version this code reads; an existing
//!   file is first inspected through a read-only connection, which never
//!   checkpoints a foreign WAL. A connection SQLite could only open read-only
//!   is refused rather than kept.
//! * Every SQLite row this backend reads back — entries, logs' bounds, blob
//!   stores, blobs — carries a CRC-32C over its key and values, checked on
//!   every read; the schema's checksum is checked on open; a lookup of a log
//!   or blob store by name that misses scans the table to tell a damaged
//!   index from absence, and a blob read that misses in the primary key's
//!   index asks a second index of the paths (`blobs_by_path`, other pages)
//!   before it says "not found"; the newest snapshot is looked up in two
//!   indexes of the entries carrying one, which must agree. A mismatch is `StorageError::corrupt` naming
//!   the log and id or the blob.
//!
//! # Decisions
//!
//! * Entries live in a table with row ids, their payload the last column
//!   (schema version 4). A table without row ids keys its b-tree on whole
//!   rows: each seek compared, and so read, the payloads of the rows it
//!   stepped past, and a 10M-cell import read its 50 MB of entries about
//!   seven times over (86,000 page reads against 12,500 now; a snapshot
//!   written from the log, 125,000 against 48,000).
//! * The SQLite backend runs each log call on its connection inside
//!   `tokio::task::block_in_place` (multi-threaded runtime) or `spawn_blocking`
//!   (current-thread runtime) rather than on a dedicated connection thread. A
//!   thread round trip measured ~60 µs on these 2-core VMs — twice a whole
//!   NORMAL-durability append — and held NORMAL appends to 0.25 of raw
//!   rusqlite; `block_in_place` costs ~14 µs and still frees the runtime.
//!   Calls that may carry megabytes (appends of 256 KiB or more, queries
//!   that may return more than 16 entries) go to the blocking pool instead:
//!   the thread saved is
//!   nothing beside them, and each `block_in_place` moves the caller's
//!   tasks to another thread, which spread an import's and its snapshot
//!   writer's allocations over an allocator arena per pool thread (a 10M-cell
//!   import peaked at about 200 MB, about 150 MB since).
//!   But `block_in_place` suspends every other future of the calling task, so
//!   the tile writes a snapshot makes `blob_concurrency` at a time ran one by
//!   one. Blob writes therefore go to the blocking pool and a queue: the first
//!   to take the connection commits every queued write in one transaction and
//!   one sync and answers each (a refused write fails alone, a SQLite error
//!   fails them all, so none is acknowledged before all are durable). The
//!   filesystem backend's blob reads, writes and removals run on the blocking
//!   pool, so their syncs overlap. SQLite blob reads still take turns on the
//!   one connection.
//! * A SQLite append wins its id with `UPDATE logs SET end_seq = new WHERE id =
//!   ? AND end_seq = seq` inside `BEGIN IMMEDIATE`: the log's end lives in the
//!   `logs` row, so `truncate(end)` keeps it without keeping entries.
//! * SQLite index damage: a flipped byte in an index page (not in a stored
//!   value) can make a blob's lookup miss, and SQLite does not check an index
//!   against its table. A blob read therefore asks a second, independent
//!   index before reporting absence (one more index and one more lookup on a
//!   miss; about 1 in 1,000 random flips of the file hid a blob without it).
//!   Listings still walk one index: a damaged index page can hide a name from
//!   a listing. Logs are dense, so a missed entry is always caught.

mod blob_store;
mod checksum;
mod connection;
mod database;
mod error;
mod event_log;
mod logs;
mod options;
mod schema;
mod write_queue;

pub use blob_store::{SqliteBlobDir, SqliteBlobStore};
pub use database::SqliteDatabase;
pub use error::{BACKEND, OpenError};
pub use event_log::SqliteEventLog;
pub use options::{Durability, SqliteOptions};
pub use schema::SCHEMA_VERSION;
