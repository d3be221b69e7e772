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
//! | `object-store` | | [`object_store`]: logs and blobs on any `object_store` store the app builds, [`ObjectStoreLogs`] |
//! | `s3` | | `s3://` URLs (and `object-store`) |
//! | `gcs` | | `gs://` URLs (built and URL-tested; not tested against a server) |
//! | `azure` | | `az://`, `abfs://` URLs (tested against Azurite) |
//! | `http` | | [`http`]: `http://` and `https://` URLs of a server's storage (`infinisheet serve`); `HttpStorage` (a [`LogStore`]) and `StorageService` |
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

mod catalog;
mod check;
pub mod prelude;
mod storage;
pub mod table;

pub use catalog::{
    Catalog, CatalogError, CatalogItem, CatalogSheet, DATA_DIR, FOLDER_MARKER, ItemKind,
    LogRebuild, ORPHAN_MARKER, OpenError, Orphan, OrphanSweep, REPLACED_DIR, SHEET_METADATA,
    SheetMetadata, SheetWriter,
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
