//! What the catalog holds: a sheet's metadata blob, the items of a
//! listing, and an opened sheet (its metadata, log and data directory).

use infinisheet_blob_store::BlobDir;
use infinisheet_engine::{EntryError, LoadError, SheetId, SheetOptions, Spreadsheet};
use infinisheet_event_log::{EventLog, QueryError, SequenceId};
use infinisheet_snapshot_workflow::{HostReport, WorkflowHost, WorkflowOptions};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A sheet's metadata blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetMetadata {
    /// The metadata format version.
    pub format: u32,
    /// The sheet's identity (format 2 on): its log's first entry and part
    /// of its snapshots' names; its data is in `.sheets/<id>/`. `None` for
    /// a sheet of format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<SheetId>,
    /// The backend of the sheet's log (`sqlite`, `file`, `object-store`,
    /// `memory`), which must be the catalog's log store's.
    pub log_backend: String,
    /// The log's id in that store.
    pub log_id: String,
    /// Every this many entries, an edit asks for a snapshot.
    pub snapshot_interval: u64,
    /// Rows of a snapshot tile.
    pub tile_rows: u32,
    /// Columns of a snapshot tile.
    pub tile_columns: u32,
}

impl SheetMetadata {
    /// The engine settings every client and worker of the sheet uses.
    pub fn sheet_options(&self) -> SheetOptions {
        let options = SheetOptions::default()
            .snapshot_interval(self.snapshot_interval)
            .tile_size(self.tile_rows, self.tile_columns);
        match self.id {
            Some(id) => options.identity(id),
            None => options,
        }
    }
}

/// What is at a place in the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// A folder.
    Folder,
    /// A sheet.
    Sheet,
    /// A directory that is neither (a sheet whose metadata is missing).
    Unknown,
}

/// One name in a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogItem {
    /// The name.
    pub name: String,
    /// What it is.
    pub kind: ItemKind,
}

/// An opened sheet of a catalog: its metadata, log and directory.
#[derive(Clone, Debug)]
pub struct CatalogSheet {
    pub(super) path: String,
    pub(super) metadata: SheetMetadata,
    pub(super) log: Arc<dyn EventLog>,
    /// The log without the markers its jobs leave for a worker process
    /// (with those of `.live/`): for a writer that runs its own jobs.
    pub(super) unmarked: Arc<dyn EventLog>,
    /// Whether tails hear of appends through `.live/` markers.
    pub(super) live_markers: bool,
    pub(super) dir: Arc<dyn BlobDir>,
}

impl CatalogSheet {
    /// The sheet's path in the catalog.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its metadata.
    pub fn metadata(&self) -> &SheetMetadata {
        &self.metadata
    }

    /// Its event log.
    pub fn log(&self) -> Arc<dyn EventLog> {
        self.log.clone()
    }

    /// Its directory (snapshots and history).
    pub fn dir(&self) -> Arc<dyn BlobDir> {
        self.dir.clone()
    }

    /// Whether this is the same sheet as the one `metadata` describes:
    /// the same identity and log (a sheet of format 1, without an
    /// identity, by its log alone).
    pub fn is_same_sheet(&self, metadata: &SheetMetadata) -> bool {
        self.metadata.id == metadata.id
            && self.metadata.log_backend == metadata.log_backend
            && self.metadata.log_id == metadata.log_id
    }

    /// Checks that `catalog` still has this sheet at the path it was
    /// opened at, with one read of its metadata blob: call it after an
    /// edit through a handle kept open, before saying the edit is in the
    /// sheet at that path (checked before, a removal between the check
    /// and the edit would go unseen).
    ///
    /// # Errors
    ///
    /// [`CatalogError::Stale`](super::CatalogError::Stale) if the sheet
    /// was removed or moved, or another sheet has its path now;
    /// [`CatalogError::BadMetadata`](super::CatalogError::BadMetadata) or
    /// [`CatalogError::Storage`](super::CatalogError::Storage) if the
    /// catalog cannot tell.
    pub async fn confirm(&self, catalog: &super::Catalog) -> Result<(), super::CatalogError> {
        self.confirm_at(catalog, &self.path).await
    }

    /// [`confirm`](CatalogSheet::confirm) at `path`: whether `catalog`
    /// has this sheet there now (a server that keeps a sheet open by
    /// identity serves it at the path it was moved to).
    ///
    /// # Errors
    ///
    /// As [`confirm`](CatalogSheet::confirm), naming `path`.
    pub async fn confirm_at(
        &self,
        catalog: &super::Catalog,
        path: &str,
    ) -> Result<(), super::CatalogError> {
        use super::CatalogError;
        let stale = |replaced| CatalogError::Stale {
            path: path.trim_matches('/').to_owned(),
            replaced,
        };
        match catalog.sheet_metadata(path).await {
            Ok(now) if self.is_same_sheet(&now) => Ok(()),
            Ok(_) => Err(stale(true)),
            Err(CatalogError::NotFound { .. } | CatalogError::NotASheet { .. }) => {
                Err(stale(false))
            }
            Err(err) => Err(err),
        }
    }

    /// Snapshot-worker settings matching the sheet's.
    pub fn workflow_options(&self) -> WorkflowOptions {
        WorkflowOptions::default().sheet(self.metadata.sheet_options())
    }

    /// Opens the sheet for reading, on its log (a writer's edits go through
    /// [`writer`](CatalogSheet::writer)).
    ///
    /// # Errors
    ///
    /// [`OpenError::Damaged`] if an entry of its log cannot be read, and
    /// [`OpenError::CorruptLog`] if the log's storage reports damage (a
    /// damaged sheet, which [`Catalog::rebuild_log`](super::Catalog::rebuild_log)
    /// mends); [`OpenError::Load`] if it cannot be loaded otherwise.
    pub async fn open(&self) -> Result<Spreadsheet, OpenError> {
        Spreadsheet::open(
            self.log.clone(),
            self.dir.clone(),
            self.metadata.sheet_options(),
        )
        .await
        .map_err(|err| OpenError::of(&self.path, err))
    }

    /// Opens the sheet for writing: the one way, for a command, a server
    /// or a host app. With `worker`, the snapshot jobs its edits ask for
    /// (and those already pending) run in this process, in a
    /// [`WorkflowHost`] with the sheet's own settings, until
    /// [`finish`](SheetWriter::finish); without, they stay pending for a
    /// worker process. Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`open`](CatalogSheet::open).
    pub async fn writer(&self, worker: bool) -> Result<SheetWriter, OpenError> {
        if worker {
            self.writer_with(WorkflowOptions::default().poll_interval(None))
                .await
        } else {
            Ok(SheetWriter {
                cells: self.open().await?,
                host: None,
            })
        }
    }

    /// [`writer`](CatalogSheet::writer) with a worker of these `options`
    /// (retries, history, retention, polling for jobs other processes ask
    /// for); their sheet settings are replaced by the sheet's own, so
    /// worker and writer cannot disagree.
    ///
    /// # Errors
    ///
    /// As [`open`](CatalogSheet::open).
    pub async fn writer_with(&self, options: WorkflowOptions) -> Result<SheetWriter, OpenError> {
        // Its jobs run here: they need no marker for a worker process (one
        // the host leaves undone is found by a worker's pass over every
        // sheet).
        let host = WorkflowHost::start(
            self.unmarked.clone(),
            self.dir(),
            options.sheet(self.metadata.sheet_options()),
        );
        match host.open_sheet().await {
            Ok(cells) => Ok(SheetWriter {
                cells,
                host: Some(host),
            }),
            Err(err) => {
                host.shutdown().await;
                Err(OpenError::of(&self.path, err))
            }
        }
    }
}

/// A sheet open for writing ([`CatalogSheet::writer`]): its cells, and the
/// snapshot host its edits feed, if it has one.
#[derive(Debug)]
#[must_use = "a writer's snapshot jobs run only until it is dropped; end it with `finish().await`"]
pub struct SheetWriter {
    cells: Spreadsheet,
    host: Option<WorkflowHost>,
}

impl SheetWriter {
    /// The sheet's cells: read and edit them.
    pub fn cells(&self) -> &Spreadsheet {
        &self.cells
    }

    /// Whether the snapshot jobs run in this process.
    pub fn has_worker(&self) -> bool {
        self.host.is_some()
    }

    /// Waits until the snapshot jobs the edits asked for so far are done
    /// (at once without a worker here), keeping the worker: after an
    /// [`import_csv`](crate::table::import_csv), then
    /// [`Spreadsheet::reload`] reads the imported cells from their
    /// snapshot, none of them into memory.
    pub async fn idle(&self) {
        if let Some(host) = &self.host {
            host.idle().await;
        }
    }

    /// Waits for the snapshot jobs the edits asked for, then stops the
    /// worker: what it did (nothing without one).
    pub async fn finish(self) -> HostReport {
        match self.host {
            Some(host) => host.finish().await,
            None => HostReport::default(),
        }
    }
}

impl std::ops::Deref for SheetWriter {
    type Target = Spreadsheet;

    fn deref(&self) -> &Spreadsheet {
        &self.cells
    }
}

/// Why a sheet cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// An entry of its log cannot be read: the sheet is damaged. Reading
    /// never skips an entry; rebuilding the log from every entry that can
    /// be read mends it.
    #[error(
        "sheet {path} is damaged: log entry {seq} cannot be read ({source}); \
         `infinisheet repair --rebuild {path}` (Catalog::rebuild_log) rebuilds its log from \
         every entry that can be"
    )]
    Damaged {
        /// The sheet's path.
        path: String,
        /// The entry.
        seq: SequenceId,
        /// Why it cannot be read.
        source: EntryError,
    },
    /// Its log's storage failed a check of its own (an entry failing its
    /// checksum): the sheet is damaged, as with
    /// [`Damaged`](OpenError::Damaged), and mended the same way.
    #[error(
        "sheet {path} is damaged: its log cannot be read ({source}); \
         `infinisheet repair --rebuild {path}` (Catalog::rebuild_log) rebuilds its log from \
         every entry that can be"
    )]
    CorruptLog {
        /// The sheet's path.
        path: String,
        /// The log's error.
        source: QueryError,
    },
    /// It cannot be loaded (the source says why).
    #[error("sheet {path} cannot be opened")]
    Load {
        /// The sheet's path.
        path: String,
        /// The engine's error.
        source: LoadError,
    },
}

impl OpenError {
    fn of(path: &str, err: LoadError) -> OpenError {
        match err {
            LoadError::Entry { seq, source } => OpenError::Damaged {
                path: path.to_owned(),
                seq,
                source,
            },
            LoadError::Log(source @ QueryError::Storage(_)) if matches!(&source, QueryError::Storage(err) if err.is_corrupt()) => {
                OpenError::CorruptLog {
                    path: path.to_owned(),
                    source,
                }
            }
            source => OpenError::Load {
                path: path.to_owned(),
                source,
            },
        }
    }

    /// Whether trying again may help (the storage failed in a way that
    /// may pass).
    pub fn is_retryable(&self) -> bool {
        matches!(self, OpenError::Load { source, .. } if source.is_retryable())
    }
}
