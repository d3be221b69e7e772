//! The catalog: many spreadsheets in one blob store, whose upper levels are
//! a folder tree a person sees. A folder is a directory holding a `.folder`
//! marker (a blob store has no empty directories); a sheet is a directory
//! holding its metadata blob `sheet.json`: its identity, which log it uses
//! (the log store's backend and the log's id) and its snapshot settings.
//! A sheet's data — `snapshots/` and `history/` — lives in a directory
//! named by its identity, `.sheets/<id>/`, which never moves: moving a
//! sheet moves its metadata only, so no snapshot job under way can land in
//! another sheet's place. The identity is also the first entry of the
//! sheet's log and part of every snapshot's name; opening a sheet checks
//! them all (sheets made before identities, format 1, keep their data in
//! their own directory and check nothing).

use crate::storage::Storage;
use bytes::Bytes;
use error::Failure;
use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobName, EntryKind, ReadBlobError};
use infinisheet_engine::{SheetId, SheetOptions, Spreadsheet};
use std::sync::Arc;

/// The blob in a sheet's directory that makes it a sheet.
pub const SHEET_METADATA: &str = "sheet.json";
/// The blob in a folder's directory that makes it a folder.
pub const FOLDER_MARKER: &str = ".folder";
/// The directory at the top of the blob store holding each sheet's data,
/// by identity.
pub const DATA_DIR: &str = ".sheets";
/// The metadata format this version writes (it reads this and format 1,
/// of sheets made before identities).
const FORMAT: u32 = 2;

mod change;
mod due;
mod error;
mod live;
mod orphans;
mod path;
mod rebuild;
mod sheet;

pub use due::{DUE_DIR, DueSheet, marker_key};
pub use error::CatalogError;
pub use live::{
    ACTIVE_FOR, LIST_EVERY, LIVE_DIR, MARK_EVERY, SAFETY_NET, STALE_AFTER, SheetFollow,
};
pub use orphans::{ORPHAN_MARKER, Orphan, OrphanSweep};
use path::CatalogPath;
pub use rebuild::{LogRebuild, REPLACED_DIR};
pub use sheet::{CatalogItem, CatalogSheet, ItemKind, OpenError, SheetMetadata, SheetWriter};

/// Folders and sheets in a [`Storage`]'s blob store, each sheet tied to a
/// log of its log store.
///
/// ```
/// use infinisheet::{Catalog, Storage};
/// use infinisheet::engine::{Cell, CellValue, SheetOptions};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let catalog = Catalog::new(Storage::open("memory:", "memory:").await?);
/// catalog.create_sheet("budget/2026", SheetOptions::default()).await?;
/// let sheet = catalog.open_sheet("budget/2026").await?.open().await?;
/// sheet.set_cell(0, 0, Cell::new(CellValue::Number(42.0))).await?;
/// let items = catalog.list("budget").await?;
/// assert_eq!(items[0].name, "2026");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Catalog {
    storage: Storage,
    /// This process's followers of the catalog's sheets (shared by
    /// clones).
    live: Arc<live::Feed>,
}

fn storage_error<E: Failure>(path: &CatalogPath) -> impl Fn(E) -> CatalogError + '_ {
    move |err| CatalogError::Storage {
        path: path.display(),
        retryable: err.retryable(),
        source: Box::new(err),
    }
}

impl Catalog {
    /// The catalog in `storage`.
    pub fn new(storage: Storage) -> Catalog {
        Catalog {
            storage,
            live: Arc::default(),
        }
    }

    /// The catalog's storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Where the data of the sheet at `at` with `metadata` is: its
    /// identity's directory in `.sheets/`, or (format 1) its own.
    async fn data_dir(
        &self,
        at: &CatalogPath,
        metadata: &SheetMetadata,
    ) -> Result<Arc<dyn BlobDir>, CatalogError> {
        let Some(id) = metadata.id else {
            return self.dir(at).await;
        };
        let name = |text: String| {
            BlobName::new(&text).map_err(|err| CatalogError::BadMetadata {
                path: at.display(),
                reason: err.to_string(),
            })
        };
        let root = self.storage.blobs.root();
        let data = root
            .dir(&name(DATA_DIR.to_owned())?)
            .await
            .map_err(storage_error(at))?;
        data.dir(&name(id.to_string())?)
            .await
            .map_err(storage_error(at))
    }

    /// The directory at `path`, walked to from the top; `dir` creates
    /// nothing, so this works whether or not anything is there.
    async fn dir(&self, path: &CatalogPath) -> Result<Arc<dyn BlobDir>, CatalogError> {
        let mut dir = self.storage.blobs.root();
        for name in &path.names {
            dir = dir.dir(name).await.map_err(storage_error(path))?;
        }
        Ok(dir)
    }

    /// The blob `name` in `dir`, if there is one.
    async fn has_blob(
        dir: &Arc<dyn BlobDir>,
        name: &str,
        path: &CatalogPath,
    ) -> Result<Option<Bytes>, CatalogError> {
        match dir.read(name).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(ReadBlobError::NotFound { .. } | ReadBlobError::WrongKind { .. }) => Ok(None),
            Err(err) => Err(storage_error(path)(err)),
        }
    }

    /// What is at `path`, if anything.
    async fn kind(&self, path: &CatalogPath) -> Result<Option<ItemKind>, CatalogError> {
        if path.names.is_empty() {
            return Ok(Some(ItemKind::Folder));
        }
        let dir = self.dir(path).await?;
        if Catalog::has_blob(&dir, SHEET_METADATA, path)
            .await?
            .is_some()
        {
            return Ok(Some(ItemKind::Sheet));
        }
        if Catalog::has_blob(&dir, FOLDER_MARKER, path)
            .await?
            .is_some()
        {
            return Ok(Some(ItemKind::Folder));
        }
        let page = dir.list(None).await.map_err(storage_error(path))?;
        Ok((!page.entries.is_empty()).then_some(ItemKind::Unknown))
    }

    /// Makes `path` and every folder above it a folder (never a sheet).
    async fn ensure_folder(&self, path: &CatalogPath) -> Result<(), CatalogError> {
        let mut at = CatalogPath { names: Vec::new() };
        for name in &path.names {
            at = at.child(name.clone());
            match self.kind(&at).await? {
                Some(ItemKind::Folder) => {}
                Some(ItemKind::Sheet) => {
                    return Err(CatalogError::NotAFolder { path: at.display() });
                }
                // Never turn a directory that is neither (a sheet whose
                // metadata went missing) into a folder.
                Some(ItemKind::Unknown) => {
                    return Err(CatalogError::BadMetadata {
                        path: at.display(),
                        reason: format!("it holds neither {SHEET_METADATA} nor {FOLDER_MARKER}"),
                    });
                }
                None => {
                    self.dir(&at)
                        .await?
                        .write(FOLDER_MARKER, Bytes::new())
                        .await
                        .map_err(storage_error(&at))?;
                }
            }
        }
        Ok(())
    }

    /// Checks that nothing is at `path` and its parent can hold it.
    async fn check_free(&self, path: &CatalogPath, text: &str) -> Result<(), CatalogError> {
        if path.names.is_empty() {
            return Err(CatalogError::InvalidPath {
                path: text.to_owned(),
                reason: "the top folder cannot be created, moved or removed".into(),
            });
        }
        if self.kind(path).await?.is_some() {
            return Err(CatalogError::AlreadyExists {
                path: path.display(),
            });
        }
        Ok(())
    }

    /// Creates a folder (and the folders above it).
    ///
    /// # Errors
    ///
    /// [`CatalogError`]: a bad path, something already there, a sheet on
    /// the way, or a storage failure.
    pub async fn create_folder(&self, path: &str) -> Result<(), CatalogError> {
        let at = CatalogPath::parse(path)?;
        self.check_free(&at, path).await?;
        self.ensure_folder(&at).await
    }

    /// Creates a sheet with a new, empty log (and the folders above it).
    ///
    /// # Errors
    ///
    /// As [`create_folder`](Catalog::create_folder), or a log store failure.
    pub async fn create_sheet(
        &self,
        path: &str,
        options: SheetOptions,
    ) -> Result<CatalogSheet, CatalogError> {
        let at = CatalogPath::parse(path)?;
        self.check_free(&at, path).await?;
        if let Some((parent, _)) = at.parent() {
            self.ensure_folder(&parent).await?;
        }
        let id = SheetId::random();
        let metadata = SheetMetadata {
            format: FORMAT,
            id: Some(id),
            log_backend: self.storage.logs.backend().to_owned(),
            // The log is named by the sheet's identity too.
            log_id: id.to_string(),
            snapshot_interval: options.snapshot_interval,
            tile_rows: options.tile_rows.clamp(1, 1 << 16),
            tile_columns: options.tile_columns.clamp(1, 1 << 16),
        };
        let log = self.storage.logs.log(&metadata.log_id, true).await?;
        let data = self.data_dir(&at, &metadata).await?;
        // The identity goes into the log first: a log is a sheet's from
        // its first entry on.
        Spreadsheet::create(log.clone(), data.clone(), metadata.sheet_options())
            .await
            .map_err(storage_error(&at))?;
        let json = serde_json::to_vec_pretty(&metadata).map_err(storage_error(&at))?;
        // Written last: the sheet exists once its metadata does.
        self.dir(&at)
            .await?
            .write(SHEET_METADATA, json)
            .await
            .map_err(storage_error(&at))?;
        Ok(self.sheet_handle(&at, metadata, log, data))
    }

    /// The handle of the sheet at `at`: its log wrapped so that appends
    /// say so in `.live/` where the log cannot wake other processes' tails
    /// itself, and those making a snapshot job due in `.due/`.
    fn sheet_handle(
        &self,
        at: &CatalogPath,
        metadata: SheetMetadata,
        log: Arc<dyn infinisheet_event_log::EventLog>,
        dir: Arc<dyn BlobDir>,
    ) -> CatalogSheet {
        let key = due::marker_key(&metadata);
        let live = live::LiveLog::new(
            log,
            self.storage.logs.backend(),
            &self.live,
            self.storage.blobs.root(),
            key.clone(),
        );
        let live_markers = live.uses_markers();
        let log: Arc<dyn infinisheet_event_log::EventLog> = Arc::new(live);
        let marking = Arc::new(due::MarkingLog {
            inner: log.clone(),
            root: self.storage.blobs.root(),
            sheet: key,
            path: at.display(),
        });
        CatalogSheet {
            path: at.display(),
            metadata,
            log: marking,
            unmarked: log,
            live_markers,
            dir,
        }
    }

    /// The folders and sheets in a folder, sorted by name.
    ///
    /// # Errors
    ///
    /// [`CatalogError`]: a bad path, nothing there, a sheet, or a storage
    /// failure.
    pub async fn list(&self, folder: &str) -> Result<Vec<CatalogItem>, CatalogError> {
        let at = CatalogPath::parse(folder)?;
        match self.kind(&at).await? {
            Some(ItemKind::Folder) => {}
            Some(ItemKind::Sheet) => return Err(CatalogError::NotAFolder { path: at.display() }),
            Some(ItemKind::Unknown) | None => {
                return Err(CatalogError::NotFound { path: at.display() });
            }
        }
        let listed = self
            .dir(&at)
            .await?
            .list_all()
            .await
            .map_err(storage_error(&at))?;
        let mut items = Vec::new();
        let top = at.names.is_empty();
        for entry in listed.into_iter().filter(|e| {
            e.kind == EntryKind::Dir
                && !(top
                    && (e.name.as_str() == DATA_DIR
                        || e.name.as_str() == DUE_DIR
                        || e.name.as_str() == LIVE_DIR))
        }) {
            let child = at.child(entry.name.clone());
            let kind = self.kind(&child).await?.unwrap_or(ItemKind::Unknown);
            items.push(CatalogItem {
                name: entry.name.to_string(),
                kind,
            });
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }

    /// Every sheet under `folder`, by path.
    ///
    /// # Errors
    ///
    /// As [`list`](Catalog::list).
    pub async fn sheets(&self, folder: &str) -> Result<Vec<String>, CatalogError> {
        let mut found = Vec::new();
        let mut folders = vec![folder.trim_matches('/').to_owned()];
        while let Some(folder) = folders.pop() {
            for item in self.list(&folder).await? {
                let path = if folder.is_empty() {
                    item.name
                } else {
                    format!("{folder}/{}", item.name)
                };
                match item.kind {
                    ItemKind::Sheet => found.push(path),
                    ItemKind::Folder => folders.push(path),
                    ItemKind::Unknown => {}
                }
            }
        }
        found.sort();
        Ok(found)
    }

    async fn read_metadata(
        &self,
        at: &CatalogPath,
        dir: &Arc<dyn BlobDir>,
    ) -> Result<SheetMetadata, CatalogError> {
        let Some(bytes) = Catalog::has_blob(dir, SHEET_METADATA, at).await? else {
            return Err(match self.kind(at).await? {
                Some(ItemKind::Folder) => CatalogError::NotASheet { path: at.display() },
                Some(ItemKind::Unknown) => CatalogError::BadMetadata {
                    path: at.display(),
                    reason: format!("its directory has no {SHEET_METADATA}"),
                },
                _ => CatalogError::NotFound { path: at.display() },
            });
        };
        let metadata: SheetMetadata =
            serde_json::from_slice(&bytes).map_err(|e| CatalogError::BadMetadata {
                path: at.display(),
                reason: format!("{SHEET_METADATA} does not parse: {e}"),
            })?;
        match (metadata.format, metadata.id) {
            (FORMAT, Some(_)) | (1, None) => {}
            (FORMAT, None) => {
                return Err(CatalogError::BadMetadata {
                    path: at.display(),
                    reason: "it names no sheet identity".into(),
                });
            }
            (1, Some(_)) => {
                return Err(CatalogError::BadMetadata {
                    path: at.display(),
                    reason: "it is of format 1, which has no identity, yet names one".into(),
                });
            }
            (format, _) => {
                return Err(CatalogError::BadMetadata {
                    path: at.display(),
                    reason: format!("it is of format {format}; this version reads 1 and {FORMAT}"),
                });
            }
        }
        if let Some(problem) = infinisheet_event_log::log_id_problem(&metadata.log_id) {
            return Err(CatalogError::BadMetadata {
                path: at.display(),
                reason: format!("its log id {:?} is invalid: {problem}", metadata.log_id),
            });
        }
        if metadata.log_backend != self.storage.logs.backend() {
            return Err(CatalogError::UnknownBackend {
                path: at.display(),
                backend: metadata.log_backend,
                available: format!(
                    "a {} store ({})",
                    self.storage.logs.backend(),
                    self.storage.logs.url()
                ),
            });
        }
        Ok(metadata)
    }

    /// Opens the sheet at `path`: reads its metadata and opens its log.
    ///
    /// # Errors
    ///
    /// [`CatalogError`]: a bad path, nothing there, a folder, bad metadata
    /// (missing, damaged, another backend), or a storage failure.
    pub async fn open_sheet(&self, path: &str) -> Result<CatalogSheet, CatalogError> {
        let (at, metadata) = self.metadata_at(path).await?;
        let log = self.storage.logs.log(&metadata.log_id, false).await?;
        let dir = self.data_dir(&at, &metadata).await?;
        Ok(self.sheet_handle(&at, metadata, log, dir))
    }

    /// The metadata of the sheet at `path` as the catalog has it now (one
    /// read of its metadata blob): its identity, log and settings. A
    /// server that keeps sheets open compares it with what it opened
    /// ([`CatalogSheet::confirm`] does).
    ///
    /// # Errors
    ///
    /// As [`open_sheet`](Catalog::open_sheet), but for the log: it is not
    /// opened.
    pub async fn sheet_metadata(&self, path: &str) -> Result<SheetMetadata, CatalogError> {
        Ok(self.metadata_at(path).await?.1)
    }

    /// The sheet path `path` names, and its metadata.
    async fn metadata_at(&self, path: &str) -> Result<(CatalogPath, SheetMetadata), CatalogError> {
        let at = CatalogPath::parse(path)?;
        if at.names.is_empty() {
            return Err(CatalogError::NotASheet { path: at.display() });
        }
        let dir = self.dir(&at).await?;
        let metadata = self.read_metadata(&at, &dir).await?;
        Ok((at, metadata))
    }
}
