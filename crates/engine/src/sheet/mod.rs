//! `Spreadsheet`: a sheet as an event log plus snapshots. Opens from the
//! newest snapshot, syncs new entries (switching to newer snapshots as they
//! turn up), appends edits, loads the tiles a viewport needs, and writes
//! snapshots for the snapshot workflow.

mod append;
mod load;
mod read;

pub use append::{BulkAppend, BulkEntries};
pub use read::LoadStatus;

use append::retry_delay;
pub(crate) use load::{check_first, check_snapshot, misplaced_identity};

use crate::content::{Base, Content, TileKey};
use crate::edit::{Block, Edit};
use crate::entry::{EntryError, SheetEntry, encode_edit};
use crate::error::{
    CreateError, EditError, LoadError, RebuildError, ViewportError, WriteSnapshotError,
};
use crate::format::Tile;
use crate::identity::SheetId;
use crate::options::SheetOptions;
use crate::reference::{CellRange, CellRef};
use crate::snapshot::{self, Blobs};
use crate::value::Cell;
use infinisheet_blob_store::BlobDir;
use infinisheet_event_log::{
    AddEntryError, AppendToken, EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd,
    QueryError, QueryStart, QueryValue, SequenceId, SnapshotValue, StorageError, TailError,
    TailEvent, TailOptions,
};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// The `pending` marker an entry carries when a snapshot of everything
/// before it is due.
pub const SNAPSHOT_WORKFLOW: &str = "snapshot";

/// An event-sourced spreadsheet over an event log and the sheet's own blob
/// directory (snapshots under `snapshots/`). Clones share one sheet.
///
/// Edits and syncs of one `Spreadsheet` run one at a time (each is one step
/// from one content to the next); readers never wait: they take a
/// [`Content`] and ask it. Several `Spreadsheet`s, in one process or many,
/// can share a log: each sees the others' edits when it syncs.
///
/// ```
/// use infinisheet_engine::{Cell, CellState, CellValue, SheetOptions, Spreadsheet};
/// use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
/// use infinisheet_blob_store::BlobStore;
/// use std::sync::Arc;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let log = Arc::new(MemoryEventLog::new());
/// let dir = MemoryBlobStore::new().root();
/// let sheet = Spreadsheet::open(log, dir, SheetOptions::default()).await?;
/// sheet.set_cell(0, 0, Cell::new(CellValue::Number(42.0))).await?;
/// let content = sheet.content();
/// assert_eq!(content.cell(0, 0), CellState::Set(Cell::new(CellValue::Number(42.0))));
/// assert_eq!((content.row_count(), content.column_count()), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Spreadsheet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: Arc<dyn EventLog>,
    blobs: Blobs,
    options: SheetOptions,
    content: watch::Sender<Arc<Content>>,
    /// Held by an edit or sync for its whole length.
    ops: tokio::sync::Mutex<()>,
    viewport: Mutex<Viewport>,
    /// Reads in flight and the last failure ([`Spreadsheet::status`]).
    status: Mutex<read::Status>,
}

/// The area a reader looks at, and when each loaded tile was last needed.
#[derive(Debug, Default)]
struct Viewport {
    area: Option<CellRange>,
    tick: u64,
    used: HashMap<TileKey, u64>,
}

fn storage(err: AddEntryError) -> StorageError {
    match err {
        AddEntryError::Storage(err) => err,
        other => StorageError::new("engine", other.to_string()),
    }
}

impl Spreadsheet {
    /// Opens the sheet: reads the log from its newest snapshot to the end,
    /// that snapshot's index, and nothing else; tiles load as a viewport
    /// needs them ([`set_viewport`](Spreadsheet::set_viewport)). With
    /// `polling_interval` set, a background task syncs while the sheet is
    /// alive.
    ///
    /// # Errors
    ///
    /// [`LoadError`] if the log or the snapshot's index cannot be read, an
    /// entry is not a sheet edit, or the log starts without a snapshot.
    pub async fn open(
        log: Arc<dyn EventLog>,
        dir: Arc<dyn BlobDir>,
        options: SheetOptions,
    ) -> Result<Spreadsheet, LoadError> {
        let inner = Arc::new(Inner {
            log,
            blobs: Blobs::new(dir),
            options,
            content: watch::Sender::new(Arc::new(Content::empty(0, None))),
            ops: tokio::sync::Mutex::new(()),
            viewport: Mutex::default(),
            status: Mutex::default(),
        });
        let loaded = inner.load().await?;
        inner.content.send_replace(Arc::new(loaded));
        if let Some(interval) = options.polling_interval {
            tokio::spawn(poll(Arc::downgrade(&inner), interval));
        }
        Ok(Spreadsheet { inner })
    }

    /// Creates a sheet on an empty log: writes its identity (the options',
    /// or a new random one) as the log's first entry, then opens it with
    /// options carrying that identity. Retryable storage errors are retried
    /// as an edit's are, under one [`AppendToken`], so a lost reply never
    /// leaves two identities.
    ///
    /// # Errors
    ///
    /// * [`CreateError::NotEmpty`] if the log holds entries already.
    /// * [`CreateError::Storage`] if the log keeps failing.
    /// * [`CreateError::Load`] if the new sheet cannot be opened.
    pub async fn create(
        log: Arc<dyn EventLog>,
        dir: Arc<dyn BlobDir>,
        options: SheetOptions,
    ) -> Result<Spreadsheet, CreateError> {
        let identity = options.identity.unwrap_or_else(SheetId::random);
        let token = AppendToken::random();
        let mut failures = 0;
        // Made once: every try appends the same bytes.
        let payload = crate::entry::timed(
            std::time::SystemTime::now(),
            &SheetEntry::identity(identity).encode(),
        );
        loop {
            let entry = LogEntry::new(payload.clone());
            match log
                .append_at(vec![entry], 0, KnownSnapshot::NotTracked, Some(token))
                .await
            {
                Ok(_) => break,
                Err(AddEntryError::Conflict { .. }) => {
                    let end = log
                        .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
                        .await
                        .map_or(1, |page| page.end);
                    return Err(CreateError::NotEmpty { end });
                }
                Err(AddEntryError::Storage(err))
                    if err.is_retryable() && failures < options.storage_retries =>
                {
                    tokio::time::sleep(retry_delay(failures)).await;
                    failures += 1;
                }
                Err(err) => return Err(CreateError::Storage(storage(err))),
            }
        }
        Ok(Spreadsheet::open(log, dir, options.identity(identity)).await?)
    }

    /// The sheet's newest content.
    pub fn content(&self) -> Arc<Content> {
        self.inner.content.borrow().clone()
    }

    /// A receiver that sees every new content (for example to re-render).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Content>> {
        self.inner.content.subscribe()
    }

    /// Keeps the content live: a background task tails the log (see
    /// [`EventLogExt::tail`]) and syncs as soon as other writers' entries
    /// arrive — at once on a backend that wakes tails, within the tail's
    /// polling backoff (10 ms to 500 ms) elsewhere (a catalog's sheet on
    /// an object store wakes through the catalog's markers: watch it with
    /// its `CatalogSheet::tail_options`) — instead of on a fixed
    /// interval. [`subscribe`](Spreadsheet::subscribe) sees each new
    /// content. A truncate past the sheet reloads it from the newest
    /// snapshot, as [`sync`](Spreadsheet::sync) does. Stops when the
    /// handle is dropped (or the sheet is).
    #[must_use = "the watch stops when its handle is dropped"]
    pub fn watch(&self) -> SheetWatch {
        self.watch_with(TailOptions::default())
    }

    /// [`watch`](Spreadsheet::watch) with the tail's waits set by `options`.
    #[must_use = "the watch stops when its handle is dropped"]
    pub fn watch_with(&self, options: TailOptions) -> SheetWatch {
        let task = tokio::spawn(watch_log(Arc::downgrade(&self.inner), options));
        SheetWatch { task }
    }

    /// The sheet's settings.
    pub fn options(&self) -> &SheetOptions {
        &self.inner.options
    }

    /// Reads the entries other writers added since this content's end. A
    /// newer snapshot reported by the log is switched to when it lies within
    /// the entries held; one reported while no new entry arrived changes
    /// nothing yet (the next entries bring it). If the log was truncated
    /// past this content, the sheet reloads from the newest snapshot.
    ///
    /// # Errors
    ///
    /// [`LoadError`]; the content is then unchanged.
    pub async fn sync(&self) -> Result<(), LoadError> {
        let _op = self.inner.ops.lock().await;
        self.inner
            .tracked(self.inner.sync(), LoadError::is_retryable)
            .await
    }

    /// [`sync`](Spreadsheet::sync), unless the content would then hold
    /// more than `cells` cells set since its snapshot (a bulk load's
    /// millions, whose snapshot is better written streaming from the log:
    /// [`write_snapshot_from_log`](crate::write_snapshot_from_log)), or it
    /// would have to load the sheet again (the log truncated past it, or a
    /// snapshot past what it holds): then `false`, and the content is
    /// unchanged. It reads entry by entry, at most one past the limit; the
    /// cells read stay in memory (in the segment the content shares) until
    /// the sheet is dropped or moves to a newer snapshot.
    ///
    /// # Errors
    ///
    /// As [`sync`](Spreadsheet::sync).
    pub async fn sync_within(&self, cells: u64) -> Result<bool, LoadError> {
        let _op = self.inner.ops.lock().await;
        self.inner
            .tracked(self.inner.sync_within(Some(cells)), LoadError::is_retryable)
            .await
    }

    /// Sets the cell at zero-based `row` and `column`, appending one entry
    /// at the content's end; returns its sequence id. When the content
    /// returns, it holds the edit.
    ///
    /// An edit that loses the race for the next id to another writer is
    /// never dropped: the sheet syncs and tries again at the new end (edits
    /// are "last writer wins" per cell), up to `max_edit_attempts` times.
    ///
    /// # Errors
    ///
    /// * [`EditError::Contended`] after `max_edit_attempts` lost races.
    /// * [`EditError::Sync`] if syncing after a lost race failed.
    /// * [`EditError::Storage`] if the log failed.
    pub async fn set_cell(
        &self,
        row: u32,
        column: u32,
        cell: Cell,
    ) -> Result<SequenceId, EditError> {
        let range = self
            .set_cells(vec![(CellRef::new(row, column), cell)])
            .await?;
        Ok(range.start)
    }

    /// Sets several cells with one batch of entries, all or none, in order
    /// (a later edit of the same cell wins). Returns the entries' ids. As
    /// [`set_cell`](Spreadsheet::set_cell) otherwise.
    ///
    /// # Errors
    ///
    /// As [`set_cell`](Spreadsheet::set_cell).
    pub async fn set_cells(
        &self,
        cells: Vec<(CellRef, Cell)>,
    ) -> Result<Range<SequenceId>, EditError> {
        self.edit(cells.into_iter().map(|(at, c)| Edit::Set(at, c)).collect())
            .await
    }

    /// Sets a block of cells (a paste, an import) with one log entry,
    /// however many cells it holds; returns its sequence id. As
    /// [`set_cell`](Spreadsheet::set_cell) otherwise.
    ///
    /// # Errors
    ///
    /// As [`set_cell`](Spreadsheet::set_cell).
    pub async fn set_block(&self, block: Block) -> Result<SequenceId, EditError> {
        Ok(self.edit(vec![Edit::Block(block)]).await?.start)
    }

    /// Makes every cell of `range` blank, as if never set, with one log
    /// entry however large the range; returns its sequence id. As
    /// [`set_cell`](Spreadsheet::set_cell) otherwise.
    ///
    /// # Errors
    ///
    /// As [`set_cell`](Spreadsheet::set_cell).
    pub async fn clear(&self, range: CellRange) -> Result<SequenceId, EditError> {
        Ok(self.edit(vec![Edit::Clear(range)]).await?.start)
    }

    /// Appends `edits`, one log entry each, all or none, in order (a later
    /// edit of the same cell wins); returns the entries' ids. A batch asks
    /// for a snapshot on its last entry whose id is a multiple of
    /// `snapshot_interval`, or else on its last entry if it sets at least
    /// `snapshot_interval` cells. As [`set_cell`](Spreadsheet::set_cell)
    /// otherwise.
    ///
    /// # Errors
    ///
    /// As [`set_cell`](Spreadsheet::set_cell).
    pub async fn edit(&self, edits: Vec<Edit>) -> Result<Range<SequenceId>, EditError> {
        let _op = self.inner.ops.lock().await;
        self.inner.edit(edits).await
    }

    /// Looks at `area`: loads the snapshot tiles it covers that are not
    /// loaded yet, and drops the least recently needed tiles beyond the
    /// budget. Cells outside loaded tiles read as
    /// [`CellState::NotLoaded`](crate::CellState::NotLoaded). The sheet remembers the area, and loads
    /// its tiles again after switching to a newer snapshot.
    ///
    /// # Errors
    ///
    /// [`ViewportError`] if a tile cannot be read; no tile read by this call
    /// is kept.
    pub async fn set_viewport(&self, area: CellRange) -> Result<(), ViewportError> {
        self.inner
            .tracked(self.load_viewport(area), ViewportError::is_retryable)
            .await
    }

    async fn load_viewport(&self, area: CellRange) -> Result<(), ViewportError> {
        self.inner.viewport().area = Some(area);
        let content = self.content();
        let Some(base) = content.base.clone() else {
            return Ok(());
        };
        let needed = self.inner.needed(&base);
        let missing: Vec<TileKey> = needed
            .iter()
            .copied()
            .filter(|key| !content.tiles.contains_key(key))
            .collect();
        let read = self
            .inner
            .blobs
            .read_tiles(&base, &missing, self.inner.options.blob_concurrency)
            .await?;
        self.inner.content.send_if_modified(|current| {
            if !current.same_base(Some(&base)) {
                return false; // a newer snapshot was loaded meanwhile
            }
            let mut tiles = (*current.tiles).clone();
            tiles.extend(read);
            let mut next = (**current).clone();
            next.tiles = Arc::new(self.inner.evict(tiles, &needed));
            *current = Arc::new(next);
            true
        });
        Ok(())
    }

    /// Writes the snapshot of everything before entry `at` into the sheet's
    /// `snapshots/` directory and returns the value to publish on entry
    /// `at` (the snapshot workflow then sets it there, clearing `pending`).
    /// Only the tiles changed since the content's snapshot are written; the
    /// rest are shared. The content must hold the entries from its snapshot
    /// up to `at` (sync first). Writing a snapshot again is harmless.
    ///
    /// # Errors
    ///
    /// * [`WriteSnapshotError::OutOfRange`] if the content does not reach
    ///   `at`, or already starts from a snapshot after it.
    /// * [`WriteSnapshotError::Read`] / [`WriteSnapshotError::Write`] if a
    ///   blob cannot be read or written; no index names what was written.
    pub async fn write_snapshot(
        &self,
        at: SequenceId,
    ) -> Result<SnapshotValue, WriteSnapshotError> {
        let content = self.content();
        snapshot::write(&self.inner.blobs, &content, at, &self.inner.options).await
    }
}

/// Writes again the snapshot preceding entry `at` of the sheet whose
/// directory is `dir`, from the whole snapshot `base` (or from nothing, the
/// log's start) and the payloads of every entry from there to `at` (which
/// the caller reads from the log or its history): for a repair, when the
/// snapshot the log names is missing or damaged. It is written where
/// [`write_snapshot`](Spreadsheet::write_snapshot) would write it, holding
/// the same cells, and the tiles it does not change point to `base`'s, so
/// nothing damaged is named again. Returns the value to publish.
///
/// # Errors
///
/// * [`RebuildError::Load`] if `base` cannot be read or is another
///   sheet's, the first of the payloads from the start is another sheet's
///   identity, or a payload is not a sheet entry.
/// * [`RebuildError::Write`] if a blob cannot be written.
pub async fn rebuild_snapshot(
    dir: Arc<dyn BlobDir>,
    options: SheetOptions,
    base: Option<SnapshotValue>,
    payloads: &[bytes::Bytes],
) -> Result<SnapshotValue, RebuildError> {
    crate::streamed::rebuild(dir, &options, base, payloads).await
}

/// Syncs every `interval` while the sheet is alive.
/// A sheet kept live by [`Spreadsheet::watch`]; dropping it stops the
/// watch.
#[derive(Debug)]
pub struct SheetWatch {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SheetWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The task of [`Spreadsheet::watch`]: a tail of the log from the content's
/// end; each batch of new entries (or a truncate past the tail) is a sync.
async fn watch_log(sheet: Weak<Inner>, options: TailOptions) {
    let Some((log, from)) = sheet
        .upgrade()
        .map(|inner| (inner.log.clone(), inner.current().end))
    else {
        return;
    };
    let mut tail = log.tail_with(from, options);
    let mut failures = 0u32;
    loop {
        let event = tail.next().await;
        let Some(inner) = sheet.upgrade() else {
            return;
        };
        let needs_sync = match event {
            Ok(TailEvent::Entries { .. }) => true,
            Ok(_) => false,
            // Truncated past the tail, or a log that ends before the tail:
            // the sync sorts it out (a reload from the newest snapshot).
            Err(TailError::FellBehind { .. } | TailError::BeyondEnd { .. }) => true,
            Err(err) => {
                failures += 1;
                tracing::warn!(%err, failures, "a watched sheet's tail failed; trying again");
                drop(inner);
                tokio::time::sleep(options.max_wait.min(Duration::from_millis(100) * failures))
                    .await;
                continue;
            }
        };
        failures = 0;
        if needs_sync {
            let _op = inner.ops.lock().await;
            if let Err(err) = inner.tracked(inner.sync(), LoadError::is_retryable).await {
                tracing::warn!(%err, "a watched sheet's sync failed");
            }
            // The sync may have read past the tail (or reloaded): go on
            // from what the sheet holds.
            let end = inner.current().end;
            if end != tail.position() {
                tail.resume_at(end);
            }
        }
    }
}

async fn poll(sheet: Weak<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = sheet.upgrade() else {
            return;
        };
        let _op = inner.ops.lock().await;
        if let Err(err) = inner.tracked(inner.sync(), LoadError::is_retryable).await {
            tracing::warn!(%err, "background sync of a sheet failed");
        }
    }
}

impl Inner {
    fn viewport(&self) -> std::sync::MutexGuard<'_, Viewport> {
        self.viewport.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Arc<Content> {
        self.content.borrow().clone()
    }

    /// The tiles of `base` the viewport covers, marked used.
    fn needed(&self, base: &Base) -> Vec<TileKey> {
        let mut viewport = self.viewport();
        let Some(area) = viewport.area else {
            return Vec::new();
        };
        let needed = base.tiles_covering(area);
        viewport.tick += 1;
        let tick = viewport.tick;
        for key in &needed {
            viewport.used.insert(*key, tick);
        }
        needed
    }

    /// Drops the least recently used tiles beyond the budget, never one in
    /// `needed`.
    fn evict(
        &self,
        mut tiles: HashMap<TileKey, Arc<Tile>>,
        needed: &[TileKey],
    ) -> HashMap<TileKey, Arc<Tile>> {
        let budget = self.options.loaded_tile_budget.max(needed.len());
        if tiles.len() > budget {
            let mut viewport = self.viewport();
            let mut by_use: Vec<(u64, TileKey)> = tiles
                .keys()
                .filter(|k| !needed.contains(k))
                .map(|k| (viewport.used.get(k).copied().unwrap_or(0), *k))
                .collect();
            by_use.sort_unstable();
            for (_, key) in by_use.into_iter().take(tiles.len() - budget) {
                tiles.remove(&key);
                viewport.used.remove(&key);
            }
        }
        tiles
    }

    /// Reads a snapshot's index and the viewport's tiles of it.
    async fn base_with_tiles(
        &self,
        value: SnapshotValue,
    ) -> Result<(Arc<Base>, HashMap<TileKey, Arc<Tile>>), LoadError> {
        let base = Arc::new(self.blobs.read_base(value).await?);
        let needed = self.needed(&base);
        let tiles = self
            .blobs
            .read_tiles(&base, &needed, self.options.blob_concurrency)
            .await?;
        Ok((base, tiles))
    }
}
