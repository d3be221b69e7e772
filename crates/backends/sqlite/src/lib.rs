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

mod blob_store;
mod checksum;
mod connection;
mod database;
mod error;
mod event_log;
mod logs;
mod options;
mod schema;

pub use blob_store::{SqliteBlobDir, SqliteBlobStore};
pub use database::SqliteDatabase;
pub use error::{BACKEND, OpenError};
pub use event_log::SqliteEventLog;
pub use options::{Durability, SqliteOptions};
pub use schema::SCHEMA_VERSION;
