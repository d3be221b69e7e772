//! Which sheets have work for a snapshot worker, without looking at each:
//! an append that makes a snapshot job due (an entry carrying `pending`)
//! through a sheet of the catalog leaves a marker in `.due/` once it has
//! landed, and a worker's pass lists `.due/` (one listing, however many
//! sheets the catalog holds), works on the sheets marked, and removes the
//! markers it listed once their jobs are done. A marker is named by its
//! sheet and a random part, so one written while the worker is at work
//! survives its removals; it is written after the append, so a worker that
//! lists it reads the job.
//!
//! A process killed between an append and its marker (or a log appended to
//! outside the catalog) leaves a job no marker names: a worker also goes
//! over every sheet on its first pass and then every so often, and such a
//! pass removes the markers of sheets that are no more. A writer that runs
//! its own snapshot jobs ([`CatalogSheet::writer`](super::CatalogSheet::writer)
//! with a worker) leaves none.

use super::{Catalog, CatalogError, CatalogPath, storage_error};
use async_trait::async_trait;
use infinisheet_blob_store::{BlobDir, BlobDirExt, EntryKind, ReadBlobError};
use infinisheet_event_log::raw::Bounds;
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogCapabilities, LogEntry,
    MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, SequenceId, SetMetadataError,
    StorageError, TruncateError,
};
use std::sync::Arc;
use std::time::Duration;

/// The directory at the top of the blob store holding the markers of
/// sheets with work for a worker.
pub const DUE_DIR: &str = ".due";

/// A sheet with work for a worker, as its markers name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueSheet {
    /// The sheet's identity (or, made before identities, its log's id):
    /// [`marker_key`] of its metadata.
    pub sheet: String,
    /// Its path when the newest marker was written (it may have moved).
    pub path: String,
    /// The markers naming it, removed by [`Catalog::clear_due`].
    pub markers: Vec<String>,
}

/// A sheet's log as the catalog hands it out: appends that make a snapshot
/// job due leave a marker in `.due/` once they land.
#[derive(Debug)]
pub(super) struct MarkingLog {
    pub(super) inner: Arc<dyn EventLog>,
    /// The top of the blob store, where `.due/` is.
    pub(super) root: Arc<dyn BlobDir>,
    /// The sheet's identity (or log id), which begins each marker's name.
    pub(super) sheet: String,
    /// The marker's content: the sheet's path.
    pub(super) path: String,
}

impl MarkingLog {
    async fn mark(&self) {
        let name = format!("{}.{}", self.sheet, infinisheet_engine::SheetId::random());
        // A marker that cannot be written is a job the worker finds on its
        // next pass over every sheet; the append landed either way.
        if let Ok(due) = self.root.open_dir(DUE_DIR).await {
            let _ = due.write(&name, self.path.clone()).await;
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl EventLog for MarkingLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let due = entries.iter().any(|entry| entry.metadata.pending.is_some());
        let appended = self.inner.append_at(entries, seq, known, token).await;
        // Landed, or perhaps landed (a storage error: the caller's retry
        // may go in at another id, without the job).
        if due && matches!(appended, Ok(_) | Err(AddEntryError::Storage(_))) {
            self.mark().await;
        }
        appended
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        self.inner.query(start, end, known).await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        self.inner.bounds().await
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        self.inner.set_metadata(seq, update).await
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.inner.truncate(start).await
    }

    fn capabilities(&self) -> LogCapabilities {
        self.inner.capabilities()
    }

    async fn wait_for_entries(&self, end: SequenceId, timeout: Duration) {
        self.inner.wait_for_entries(end, timeout).await;
    }
}

/// The sheet a marker's name names: `<key>.<32 hex digits>` (the random
/// part has no dot; a log id may).
fn marked_sheet(marker: &str) -> Option<&str> {
    let (sheet, random) = marker.rsplit_once('.')?;
    (is_hex32(random) && !sheet.is_empty()).then_some(sheet)
}

/// Whether `part` is 32 lower-case hex digits: the part after a sheet's
/// key in the name of a `.due/` or a `.live/` marker.
pub(super) fn is_hex32(part: &str) -> bool {
    part.len() == 32
        && part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The name a sheet's markers begin with: its identity, or (a sheet made
/// before identities) its log's id.
pub fn marker_key(metadata: &super::SheetMetadata) -> String {
    metadata
        .id
        .map_or_else(|| metadata.log_id.clone(), |id| id.to_string())
}

impl Catalog {
    /// The directory of markers.
    pub(super) async fn due_dir(&self) -> Result<Arc<dyn BlobDir>, CatalogError> {
        let top = CatalogPath { names: Vec::new() };
        self.storage
            .blobs
            .root()
            .open_dir(DUE_DIR)
            .await
            .map_err(storage_error(&top))
    }

    /// The sheets an append through the catalog has given work since their
    /// markers were last cleared: one listing of `.due/` (and a read of
    /// each marker), whatever the number of sheets.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Storage`] if the markers cannot be listed or read.
    pub async fn due_sheets(&self) -> Result<Vec<DueSheet>, CatalogError> {
        let top = CatalogPath { names: Vec::new() };
        let due = self.due_dir().await?;
        let listed = due.list_all().await.map_err(storage_error(&top))?;
        let mut sheets: Vec<DueSheet> = Vec::new();
        for entry in listed.into_iter().filter(|e| e.kind == EntryKind::Blob) {
            let marker = entry.name.into_string();
            let Some(sheet) = marked_sheet(&marker) else {
                // Not a marker (nothing else is written here).
                continue;
            };
            let path = match due.read(&marker).await {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                // Cleared meanwhile.
                Err(ReadBlobError::NotFound { .. }) => continue,
                Err(err) => return Err(storage_error(&top)(err)),
            };
            match sheets.iter_mut().find(|known| known.sheet == sheet) {
                Some(known) => {
                    known.path = path;
                    known.markers.push(marker);
                }
                None => sheets.push(DueSheet {
                    sheet: sheet.to_owned(),
                    path,
                    markers: vec![marker],
                }),
            }
        }
        Ok(sheets)
    }

    /// Removes the markers of `sheet` (those listed; any written since
    /// stay).
    ///
    /// # Errors
    ///
    /// [`CatalogError::Storage`] if one cannot be removed.
    pub async fn clear_due(&self, sheet: &DueSheet) -> Result<(), CatalogError> {
        let top = CatalogPath { names: Vec::new() };
        let due = self.due_dir().await?;
        for marker in &sheet.markers {
            due.remove(marker).await.map_err(storage_error(&top))?;
        }
        Ok(())
    }
}
