//! What the catalog holds: a sheet's metadata blob, the items of a
//! listing, and an opened sheet (its metadata, log and data directory).

use infinisheet_blob_store::BlobDir;
use infinisheet_engine::{LoadError, SheetId, SheetOptions, Spreadsheet};
use infinisheet_event_log::EventLog;
use infinisheet_snapshot_workflow::{WorkflowHost, WorkflowOptions};
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

    /// Starts a [`WorkflowHost`] for the sheet with its own settings (from
    /// its metadata); open writers with
    /// [`WorkflowHost::open_sheet`] so they share them. Needs a tokio
    /// runtime.
    pub fn start_host(&self) -> WorkflowHost {
        self.start_host_with(WorkflowOptions::default())
    }

    /// [`start_host`](CatalogSheet::start_host) with `options` for the
    /// worker (retries, history, retention, polling); their sheet settings
    /// are replaced by the sheet's own, so worker and writers cannot
    /// disagree.
    pub fn start_host_with(&self, options: WorkflowOptions) -> WorkflowHost {
        WorkflowHost::start(
            self.log(),
            self.dir(),
            options.sheet(self.metadata.sheet_options()),
        )
    }

    /// Opens the spreadsheet on `log` (the sheet's own log, or a wrapper of
    /// it such as a [`WorkflowHost`]'s).
    ///
    /// # Errors
    ///
    /// [`LoadError`] if the sheet cannot be loaded.
    pub async fn open_on(&self, log: Arc<dyn EventLog>) -> Result<Spreadsheet, LoadError> {
        Spreadsheet::open(log, self.dir.clone(), self.metadata.sheet_options()).await
    }

    /// Opens the spreadsheet on the sheet's log.
    ///
    /// # Errors
    ///
    /// [`LoadError`] if the sheet cannot be loaded.
    pub async fn open(&self) -> Result<Spreadsheet, LoadError> {
        self.open_on(self.log.clone()).await
    }
}
