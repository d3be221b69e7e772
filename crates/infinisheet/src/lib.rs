//! Infinisheet: event-sourced spreadsheets on pluggable storage.
//!
//! Every edit of a sheet is an entry in an event log; its state is rebuilt
//! from snapshots kept in a blob store, which a snapshot workflow writes
//! in the background. This crate is the one a host app depends on: it
//! re-exports the storage traits ([`event_log`], [`blob_store`]), the
//! [`engine`], the snapshot [`workflow`] and the backends, and adds:
//!
//! * [`Storage`]: where logs and blobs live, from URLs — `memory:`,
//!   `sqlite:PATH`, `file:DIR`, `s3://bucket/prefix`, `gs://bucket/prefix`,
//!   `az://container/prefix`, `http://HOST:PORT` (a server's storage) —
//!   or from parts the app built itself (a
//!   [`SqliteDatabase`](sqlite::SqliteDatabase) opened with its own
//!   options, any [`LogStore`] of its own); [`Storage::embedded`] is the default that
//!   needs no server: a SQLite file of logs beside a filesystem blob store.
//! * [`Catalog`]: many sheets in one blob store, as a folder tree; each
//!   sheet a metadata blob naming its identity, its log and its settings.
//! * [`check_sheet`] and [`repair_sheet`]: verify a sheet end to end, and
//!   rebuild the snapshots that are missing or damaged.
//! * [`table`]: values as text, lossless CSV import and export, JSON.
//!
//! ```
//! use infinisheet::prelude::*;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // A SQLite log beside S3 blobs would be
//! // Storage::open("sqlite:sheets.db", "s3://bucket/sheets").
//! let catalog = Catalog::new(Storage::open("memory:", "memory:").await?);
//! let sheet = catalog.create_sheet("reports/q3", SheetOptions::default()).await?;
//! // A writer, with a snapshot worker of the sheet's own settings.
//! let cells = sheet.writer(true).await?;
//! cells.set("A1", "revenue").await?;
//! cells.set("B1", 1250.5).await?;
//! assert_eq!(cells.get("B1").await?, Some(Cell::from(1250.5)));
//! let rows = cells.read("A:B".parse()?).await?;
//! assert_eq!(rows, [[Some(Cell::from("revenue")), Some(Cell::from(1250.5))]]);
//! let report = cells.finish().await;
//! assert_eq!(report.failures, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `sqlite` | yes | [`sqlite`]: `sqlite:PATH` logs and blob trees (a `SqliteDatabase` is a [`LogStore`]) |
//! | `filesystem` | yes | [`filesystem`]: `file:DIR` logs and blobs, [`FileLogs`] |
//! | `object-store` | | `object_store`: logs and blobs on any `object_store` store the app builds, `ObjectStoreLogs` |
//! | `s3` | | `s3://` URLs (and `object-store`) |
//! | `gcs` | | `gs://` URLs (built and URL-tested; not tested against a server) |
//! | `azure` | | `az://`, `abfs://` URLs (tested against Azurite) |
//! | `http` | | `http`: `http://` and `https://` URLs of a server's storage (`infinisheet serve`); `HttpStorage` (a [`LogStore`]) and `StorageService` |
//! | `postgres` | | `postgres`: `postgres://USER@HOST/DB` logs in a PostgreSQL database shared by every machine that reaches it (`PostgresDatabase`, a [`LogStore`]); blobs go elsewhere |
//!
//! The embedded default ([`Storage::embedded`]) needs `sqlite` and
//! `filesystem`. Cloud stores use TLS through rustls on ring; see
//! `infinisheet_object_store::install_tls` if the app builds one itself.
//!
//! # Errors
//!
//! Errors keep their causes as [`source`](std::error::Error::source)s, and
//! every error of storage answers `is_retryable()` (and, where a thing can
//! be missing, `is_not_found()`) the same way: [`CatalogError`],
//! [`LogStoreError`], [`StorageUrlError`], the engine's and the
//! workflow's errors, and the traits' own.
//!
//! # Layout
//!
//! The facade a host app depends on (no CLI
//! dependency). Features `sqlite` and `filesystem` (default), `object-store`,
//! `s3`, `gcs`, `azure`, `http`; the backends re-exported as modules
//! (`memory`, `sqlite`, `filesystem`, `object_store`, `http`), `prelude`,
//! `async_trait`. `storage/` (`mod.rs`: `Storage`, `Storage::embedded`,
//! `StorageUrlError` and `SCHEMES`, the one table from URL scheme to a
//! backend's opener; one file per backend: `memory.rs`, `sqlite.rs`,
//! `files.rs`, `objects.rs`, `http.rs`), `catalog/` (folders, sheets,
//! `sheet.json`; `change.rs`: move by copy, removal clearing the log; its
//! errors, which keep their sources; paths; `sheet.rs`: `CatalogSheet`,
//! `confirm` (is the path still this sheet), `open` and `writer` — the one
//! way to open a sheet for writing, a `SheetWriter` with its snapshot
//! worker — and `OpenError` (`Damaged` names an unreadable entry);
//! `rebuild.rs`: `rebuild_log`, a new log of every readable entry;
//! `orphans.rs`: data no sheet names, marked and swept), `check.rs`
//! (`check_sheet`: log, entries, snapshots, history, read only), `table/`
//! (values as text in `mod.rs`, CSV import in `import.rs`, CSV and JSON
//! export in `export.rs`), `examples/` (`custom_backend`: the guide, a
//! one-file persistent log to a green suite; `counting_backend`: a custom
//! log and blob store run through the conformance suite and backing a
//! catalog through its own `LogStore`; `mixed_backends`: a SQLite log beside
//! S3 blobs).
//!
//! # Decisions
//!
//! * An import is one block entry per batch (100,000 cells), and its last
//!   batch puts its last row in a block of its own: the batch asks for a
//!   snapshot on its last entry, and a snapshot holds the entries before the
//!   one that asks, so the snapshot then holds all but that row.
//! * The catalog's folders carry a `.folder` marker blob (a blob store has no
//!   empty directories) and a sheet exists once its `sheet.json` does (written
//!   last). A sheet's log id is its random identity, not its path, so moving a
//!   sheet copies its directory (its `sheet.json`; a format-1 sheet's data
//!   too) and leaves the log and the data in `.sheets/<identity>/` alone; the
//!   blob traits have no rename, so a move copies then removes (a sheet's
//!   metadata written last at the target, removed first at the source).
//!   Removing a sheet removes its metadata, its directory and its data
//!   directory, then truncates its log to the end (a removal cut short
//!   leaves an orphaned data directory, which nothing names): no backend here
//!   deletes a log, and an orphaned empty log is harmless where a sheet
//!   naming a missing log is not. The catalog removes and moves only what it
//!   made: a sheet (its `sheet.json` decides, damaged or not), or a folder
//!   (its `.folder` marker); a folder goes as its sheets and folders, then its
//!   marker, never by removing its directory whole, and only after the whole
//!   tree was checked for directories it did not make. A sheet that lost its
//!   metadata is such a directory too, left for a repair. Opening a sheet
//!   never creates its log (an object-store log is opened with
//!   `open_existing`), so a mistyped `--logs` is "no such log". The `worker`
//!   command resolves every path on every pass and keeps one
//!   `SnapshotWorker` per (identity, log id), dropping those no path holds
//!   any more; since a sheet's data directory is its identity's, a job under
//!   way across a `mv` still lands in the sheet's own data. `check` and
//!   `repair` (`check_sheet`, `repair_sheet`) verify and rebuild: `repair`
//!   rebuilds a missing, damaged or misnamed snapshot oldest first from the
//!   newest whole snapshot before it and the entries between
//!   (`engine::rebuild_snapshot`, the entries from the log or its history),
//!   writing it where the worker would, with unchanged tiles pointing to the
//!   base's, so nothing damaged is named again.
//! * `sheet.json` records the snapshot interval and tile size, so every
//!   writer and worker of a sheet uses the same ones.
//!
//! # Invariants
//!
//! * A catalog sheet's data lives in `.sheets/<identity>/` at the top of the
//!   blob store, never under its path: moving a sheet moves its `sheet.json`
//!   only, so a snapshot job under way when a sheet is moved (or removed and
//!   made again) writes where the sheet's own data is, never into the
//!   directory another sheet took over. The catalog's log id is the identity
//!   too. Sheets of format 1 (made before identities) keep their data in
//!   their path's directory and are checked for nothing.
//! * Reading never writes: `Access::ReadOnly` opens SQLite with
//!   `SQLITE_OPEN_READ_ONLY` (schema checked, never migrated; a WAL database
//!   whose directory the reader cannot write and whose WAL is empty is read
//!   as `immutable`, since SQLite cannot make its `-shm` there), opens a
//!   filesystem blob store without making or cleaning `tmp` (its changes are
//!   refused), and opens object-store logs with one `HEAD`. A missing store
//!   is an error, never created.

mod catalog;
mod check;
pub mod prelude;
mod storage;
pub mod table;

pub use catalog::{
    ACTIVE_FOR, Catalog, CatalogError, CatalogItem, CatalogSheet, DATA_DIR, DUE_DIR, DueSheet,
    FOLDER_MARKER, ItemKind, LIST_EVERY, LIVE_DIR, LogRebuild, MARK_EVERY, ORPHAN_MARKER,
    OpenError, Orphan, OrphanSweep, REPLACED_DIR, SAFETY_NET, SHEET_METADATA, STALE_AFTER,
    SheetFollow, SheetMetadata, SheetWriter, marker_key,
};
pub use check::{SheetCheck, SheetRepair, check_sheet, repair_sheet};
#[cfg(feature = "filesystem")]
pub use infinisheet_filesystem::FileLogs;
pub use infinisheet_memory::MemoryLogs;
#[cfg(feature = "object-store")]
pub use infinisheet_object_store::ObjectStoreLogs;
pub use storage::{
    Access, Storage, StorageUrlError, open_blob_store, open_blob_store_with, open_log_store,
    open_log_store_with,
};

#[doc(inline)]
pub use infinisheet_blob_store as blob_store;
#[doc(inline)]
pub use infinisheet_engine as engine;
#[doc(inline)]
pub use infinisheet_event_log as event_log;
#[doc(inline)]
pub use infinisheet_snapshot_workflow as workflow;

/// The filesystem backend (feature `filesystem`): a log of segment files
/// in a directory, blobs as files.
#[doc(inline)]
#[cfg(feature = "filesystem")]
pub use infinisheet_filesystem as filesystem;
/// The HTTP client backend and its service (feature `http`): a server's
/// logs and blobs over HTTP, and the service that answers for them.
#[doc(inline)]
#[cfg(feature = "http")]
pub use infinisheet_http as http;
/// The in-memory backends: a log and a blob store in this process's memory.
#[doc(inline)]
pub use infinisheet_memory as memory;
/// The object-store backend (feature `object-store`, and `s3`, `gcs`,
/// `azure` for URLs): a shared log and blobs on any `object_store` store.
#[doc(inline)]
#[cfg(feature = "object-store")]
pub use infinisheet_object_store as object_store;
/// The PostgreSQL backend (feature `postgres`): logs in a database many
/// machines share.
#[doc(inline)]
#[cfg(feature = "postgres")]
pub use infinisheet_postgres as postgres;
/// The SQLite backend (feature `sqlite`): logs and blob trees in one
/// database file, [`SqliteDatabase`](sqlite::SqliteDatabase) with its
/// [`SqliteOptions`](sqlite::SqliteOptions).
#[doc(inline)]
#[cfg(feature = "sqlite")]
pub use infinisheet_sqlite as sqlite;

/// The async-trait attribute the storage traits are declared with: an
/// implementation of [`EventLog`], [`LogStore`] or
/// [`BlobStore`] carries `#[infinisheet::async_trait]`.
pub use async_trait::async_trait;
pub use infinisheet_blob_store::{BlobDir, BlobStore, BoxError, StorageError};
pub use infinisheet_engine::{
    Cell, CellRange, CellRef, CellValue, IntoCellRef, LoadStatus, SheetOptions, SheetWatch,
    Spreadsheet,
};
pub use infinisheet_event_log::{
    EventLog, EventLogExt, LogStore, LogStoreError, Tail, TailError, TailEvent, TailOptions,
    check_log_id,
};
pub use infinisheet_snapshot_workflow::{
    HostReport, SnapshotWorker, WorkflowHost, WorkflowOptions,
};
