//! Infinisheet: event-sourced spreadsheets on pluggable storage.
//!
//! This facade re-exports the storage traits, the engine and the snapshot
//! workflow, and adds what a host app or the `infinisheet` command needs
//! around them:
//!
//! * [`Storage`]: where logs and blobs live, from URLs — `memory:`,
//!   `sqlite:PATH`, `file:DIR`, `s3://bucket/prefix` (with the `AWS_*`
//!   environment) — and the two may come from different backends;
//!   [`Storage::embedded`] is the default that needs no server: a SQLite
//!   file of logs beside a filesystem blob store in one directory.
//! * [`Catalog`]: many sheets in one blob store, as a folder tree; each
//!   sheet a metadata blob naming its identity and its log, with its
//!   snapshots and history in a directory of its identity's.
//! * [`check_sheet`]: verifies a sheet end to end (log, snapshots,
//!   history, identity), reading only; [`repair_sheet`] rebuilds the
//!   snapshots that are missing or damaged from the log and its history.
//! * [`table`]: values as text, CSV import and export.
//!
//! ```
//! use infinisheet::{Catalog, Storage, WorkflowHost};
//! use infinisheet::engine::{Cell, CellValue, SheetOptions};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // A SQLite log beside S3 blobs would be
//! // Storage::open("sqlite:sheets.db", "s3://bucket/sheets").
//! let catalog = Catalog::new(Storage::open("memory:", "memory:").await?);
//! let sheet = catalog.create_sheet("reports/q3", SheetOptions::default()).await?;
//! let host = WorkflowHost::start(sheet.log(), sheet.dir(), sheet.workflow_options());
//! let cells = sheet.open_on(host.log()).await?;
//! cells.set_cell(0, 0, Cell::new(CellValue::Text("revenue".into()))).await?;
//! host.idle().await;
//! host.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod catalog;
mod check;
pub mod prelude;
mod storage;
pub mod table;

pub use catalog::{
    Catalog, CatalogError, CatalogItem, CatalogSheet, DATA_DIR, FOLDER_MARKER, ItemKind,
    SHEET_METADATA, SheetMetadata,
};
pub use check::{SheetCheck, SheetRepair, check_sheet, repair_sheet};
#[cfg(feature = "filesystem")]
pub use storage::FileLogs;
#[cfg(feature = "object-store")]
pub use storage::ObjectStoreLogs;
#[cfg(feature = "sqlite")]
pub use storage::SqliteLogs;
pub use storage::{
    Access, LogStore, LogStoreError, MemoryLogs, Storage, StorageUrlError, check_log_id,
    open_blob_store, open_blob_store_with, open_log_store, open_log_store_with,
};

pub use infinisheet_blob_store as blob_store;
pub use infinisheet_engine as engine;
pub use infinisheet_event_log as event_log;
pub use infinisheet_snapshot_workflow as workflow;

/// The filesystem backend (feature `filesystem`): a log of segment files
/// in a directory, blobs as files.
#[cfg(feature = "filesystem")]
pub use infinisheet_filesystem as filesystem;
/// The in-memory backends: a log and a blob store in this process's memory.
pub use infinisheet_memory as memory;
/// The object-store backend (feature `object-store`, and `s3`, `gcs`,
/// `azure` for URLs): a shared log and blobs on any `object_store` store.
#[cfg(feature = "object-store")]
pub use infinisheet_object_store as object_store;
/// The SQLite backend (feature `sqlite`): logs and blob trees in one
/// database file, [`SqliteDatabase`](sqlite::SqliteDatabase) with its
/// [`SqliteOptions`](sqlite::SqliteOptions).
#[cfg(feature = "sqlite")]
pub use infinisheet_sqlite as sqlite;

pub use infinisheet_blob_store::{BlobDir, BlobStore, BoxError, StorageError};
pub use infinisheet_engine::{Cell, CellRange, CellRef, CellValue, SheetOptions, Spreadsheet};
pub use infinisheet_event_log::EventLog;
pub use infinisheet_snapshot_workflow::{SnapshotWorker, WorkflowHost, WorkflowOptions};
