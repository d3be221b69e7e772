//! Snapshots in the sheet's blob directory: reading indexes and tiles, and
//! writing a new cumulative snapshot that rewrites only the tiles changed
//! since the previous one.
//!
//! Layout: `snapshots/<id>/index` and `snapshots/<id>/t<row>-<column>`,
//! where `<id>` is the snapshot's blob id: the zero-padded sequence id of
//! the entry it precedes, then, for a sheet with an identity, `-` and the
//! identity (so two sheets' snapshots never share a directory). An index may name tiles in older snapshots'
//! directories (unchanged tiles are shared). The index is written last, and
//! the log names the snapshot only after that, so a reader never sees a
//! partial snapshot.

use crate::content::{Base, Content, TileKey};
use crate::error::{SnapshotReadError, WriteSnapshotError};
use crate::format::{INDEX_NAME, Index, Tile, TileRef, tile_name};
use crate::identity::SheetId;
use crate::options::SheetOptions;
use crate::reference::{CellRange, CellRef};
use crate::segment::Extent;
use crate::value::Cell;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use infinisheet_blob_store::{BlobDir, BlobName, WriteBlobError};
use infinisheet_event_log::{SequenceId, SnapshotValue, StorageError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// The directory of a sheet holding its snapshots.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// The blob id of the snapshot preceding entry `seq` of the sheet
/// `identity` (`<seq>-<identity>`, or `<seq>` for a sheet without one).
pub fn snapshot_id(seq: SequenceId, identity: Option<SheetId>) -> String {
    match identity {
        Some(identity) => format!("{seq:020}-{identity}"),
        None => format!("{seq:020}"),
    }
}

/// The sequence id and the sheet identity (if it carries one) a snapshot
/// blob id written by [`snapshot_id`] names; `None` for any other name.
pub fn parse_snapshot_id(blob_id: &str) -> Option<(SequenceId, Option<SheetId>)> {
    let (seq, identity) = match blob_id.split_once('-') {
        Some((seq, identity)) => (seq, Some(identity.parse::<SheetId>().ok()?)),
        None => (blob_id, None),
    };
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((seq.parse().ok()?, identity))
}

/// A cell and its place within its tile.
type PlacedCell = ((u32, u32), Cell);

pub(crate) fn path(snapshot: &str, blob: &str) -> String {
    format!("{SNAPSHOTS_DIR}/{snapshot}/{blob}")
}

/// The tiles of one snapshot, by position.
type WrittenTiles = HashMap<TileKey, Arc<Tile>>;

/// The sheet's blob directory, with the snapshot directories opened so far.
#[derive(Debug)]
pub(crate) struct Blobs {
    dir: Arc<dyn BlobDir>,
    opened: Mutex<HashMap<String, Arc<dyn BlobDir>>>,
    /// The tiles of the last snapshot this sheet wrote, as written, so the
    /// next snapshot (a worker writes one after another) need not read and
    /// decode them again. Tile blobs never change once their snapshot is
    /// written, so these stay right.
    written: Mutex<(String, WrittenTiles)>,
}

impl Blobs {
    pub(crate) fn new(dir: Arc<dyn BlobDir>) -> Blobs {
        Blobs {
            dir,
            opened: Mutex::default(),
            written: Mutex::default(),
        }
    }

    async fn snapshot_dir(
        &self,
        snapshot: &str,
        blob: &str,
    ) -> Result<Arc<dyn BlobDir>, SnapshotReadError> {
        if let Some(dir) = self
            .opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(snapshot)
        {
            return Ok(dir.clone());
        }
        let name = BlobName::new(snapshot).map_err(|err| SnapshotReadError::Corrupt {
            blob: path(snapshot, blob),
            reason: format!("the snapshot id is not a blob name: {err}"),
        })?;
        let fail = |err| SnapshotReadError::from_dir(path(snapshot, blob), err);
        let snapshots = self
            .dir
            .dir(&BlobName::new(SNAPSHOTS_DIR).map_err(|e| fail(e.into()))?)
            .await
            .map_err(fail)?;
        let dir = snapshots.dir(&name).await.map_err(fail)?;
        self.opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(snapshot.to_owned(), dir.clone());
        Ok(dir)
    }

    async fn read(&self, snapshot: &str, blob: &str) -> Result<Bytes, SnapshotReadError> {
        let dir = self.snapshot_dir(snapshot, blob).await?;
        let name = BlobName::new(blob).map_err(|err| SnapshotReadError::Corrupt {
            blob: path(snapshot, blob),
            reason: err.to_string(),
        })?;
        dir.read_blob(&name)
            .await
            .map_err(|err| SnapshotReadError::from_read(path(snapshot, blob), err))
    }

    /// Reads the index of the snapshot `value` names.
    pub(crate) async fn read_base(&self, value: SnapshotValue) -> Result<Base, SnapshotReadError> {
        let bytes = self.read(&value.blob_id, INDEX_NAME).await?;
        let index = Index::decode(&bytes).map_err(|reason| SnapshotReadError::Corrupt {
            blob: path(&value.blob_id, INDEX_NAME),
            reason,
        })?;
        Ok(Base { value, index })
    }

    /// The tile `tile` names, taken out of the tiles this sheet wrote last
    /// (so a merge can reuse it without copying), if it is there.
    fn take_written(&self, tile: &TileRef) -> Option<Arc<Tile>> {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        if written.0 != tile.snapshot {
            return None;
        }
        written.1.remove(&(tile.tile_row, tile.tile_column))
    }

    pub(crate) async fn read_tile(&self, tile: &TileRef) -> Result<Arc<Tile>, SnapshotReadError> {
        {
            let written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            if written.0 == tile.snapshot
                && let Some(found) = written.1.get(&(tile.tile_row, tile.tile_column))
            {
                return Ok(found.clone());
            }
        }
        let name = tile_name(tile.tile_row, tile.tile_column);
        let bytes = self.read(&tile.snapshot, &name).await?;
        let decoded = Tile::decode(&bytes).map_err(|reason| SnapshotReadError::Corrupt {
            blob: path(&tile.snapshot, &name),
            reason,
        })?;
        if decoded.len() != tile.cells as usize {
            return Err(SnapshotReadError::Corrupt {
                blob: path(&tile.snapshot, &name),
                reason: format!(
                    "it holds {} cells; the index says {}",
                    decoded.len(),
                    tile.cells
                ),
            });
        }
        Ok(Arc::new(decoded))
    }

    /// Reads the tiles at `keys` of `base` (keys not in its index are
    /// skipped), `concurrency` at a time.
    pub(crate) async fn read_tiles(
        &self,
        base: &Base,
        keys: &[TileKey],
        concurrency: usize,
    ) -> Result<HashMap<TileKey, Arc<Tile>>, SnapshotReadError> {
        let tiles: Vec<TileRef> = keys
            .iter()
            .filter_map(|&(r, c)| base.index.tile(r, c).cloned())
            .collect();
        stream::iter(tiles)
            .map(|tile| self.read_keyed(tile))
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await
    }

    async fn read_keyed(&self, tile: TileRef) -> Result<(TileKey, Arc<Tile>), SnapshotReadError> {
        let read = self.read_tile(&tile).await?;
        Ok(((tile.tile_row, tile.tile_column), read))
    }

    /// The directory of the snapshot `snapshot`, opened to write `blob`
    /// into it: failing to open it is failing to write the blob.
    pub(crate) async fn writable_dir(
        &self,
        snapshot: &str,
        blob: &str,
    ) -> Result<Arc<dyn BlobDir>, WriteSnapshotError> {
        self.snapshot_dir(snapshot, blob).await.map_err(|err| {
            let storage = if err.is_retryable() {
                StorageError::retryable
            } else {
                StorageError::new
            };
            WriteSnapshotError::Write {
                blob: path(snapshot, blob),
                source: WriteBlobError::Storage(storage("engine", err.to_string())),
            }
        })
    }

    pub(crate) async fn write(
        &self,
        snapshot: &str,
        blob: &str,
        bytes: Vec<u8>,
    ) -> Result<(), WriteSnapshotError> {
        let failed = |source| WriteSnapshotError::Write {
            blob: path(snapshot, blob),
            source,
        };
        let dir = self.writable_dir(snapshot, blob).await?;
        let name = BlobName::new(blob).map_err(|err| failed(err.into()))?;
        dir.write_blob(&name, Bytes::from(bytes))
            .await
            .map_err(failed)
    }
}

/// Writes the snapshot of everything before entry `at` of `content`, whose
/// segment must reach from its snapshot (or the log's start) to at least
/// `at`. Reads the previous snapshot's tiles that changed, writes them
/// merged with the segment's edits before `at`, then the index. Returns the
/// value to publish on entry `at`. Writing the same snapshot twice, or from
/// two engines at once, writes the same cells.
pub(crate) async fn write(
    blobs: &Blobs,
    content: &Content,
    at: SequenceId,
    options: &SheetOptions,
) -> Result<SnapshotValue, WriteSnapshotError> {
    let start = content.segment.start;
    if at < start || at > content.end {
        return Err(WriteSnapshotError::OutOfRange {
            at,
            start,
            end: content.end,
        });
    }
    if let Some(base) = content.base.as_ref().filter(|b| b.value.sequence_id == at) {
        return Ok(base.value.clone());
    }
    let id = snapshot_id(at, options.identity);
    let visible = (at - start) as usize;
    let base_extent = content
        .base
        .as_ref()
        .map_or_else(Extent::default, |b| b.extent());
    let extent = content.segment.extent(visible, base_extent);
    let (tile_rows, tile_columns) = content.base.as_ref().map_or_else(
        || first_geometry(options, extent.columns),
        |b| (b.index.tile_rows, b.index.tile_columns),
    );
    // The edits before `at`, by tile, and the tiles a clear touches.
    let (cells, clears) = content.segment.cells(visible);
    let Extent { rows, columns } = extent;
    let mut changed: BTreeMap<TileKey, Vec<PlacedCell>> = BTreeMap::new();
    for ((row, column), cell) in cells {
        changed
            .entry((row / tile_rows, column / tile_columns))
            .or_default()
            .push(((row % tile_rows, column % tile_columns), cell));
    }
    let mut tiles = content
        .base
        .as_ref()
        .map(|b| b.tile_map())
        .unwrap_or_default();
    let area = |(tile_row, tile_column): TileKey| {
        let first = CellRef::new(tile_row * tile_rows, tile_column * tile_columns);
        let last = CellRef::new(
            first.row.saturating_add(tile_rows - 1),
            first.column.saturating_add(tile_columns - 1),
        );
        CellRange::new(first, last)
    };
    for &key in tiles.keys() {
        if clears.iter().any(|clear| overlap(*clear, area(key))) {
            changed.entry(key).or_default();
        }
    }
    let touched: Vec<TileKey> = changed.keys().copied().collect();
    let clears = &clears;
    let area = &area;
    let written: Vec<(TileRef, Arc<Tile>)> = stream::iter(changed)
        .map(|(key, edits)| {
            let previous = tiles.get(&key).cloned();
            let id = &id;
            async move {
                let old = match (&previous, content.tiles.get(&key)) {
                    (_, Some(loaded)) => Some(loaded.clone()),
                    (Some(tile), None) => Some(match blobs.take_written(tile) {
                        Some(kept) => kept,
                        None => blobs.read_tile(tile).await?,
                    }),
                    (None, None) => None,
                };
                let old = match old {
                    Some(old) if !clears.is_empty() => {
                        let origin = area(key).first;
                        Some(old.without(|row, column| {
                            let (row, column) = (origin.row + row, origin.column + column);
                            clears.iter().any(|clear| clear.contains(row, column))
                        }))
                    }
                    old => old,
                };
                let tile = Tile::merged(old, edits);
                if tile.len() == 0 {
                    return Ok(None); // all cleared
                }
                let name = tile_name(key.0, key.1);
                blobs.write(id, &name, tile.encode()).await?;
                let tile_ref = TileRef {
                    tile_row: key.0,
                    tile_column: key.1,
                    snapshot: id.clone(),
                    cells: tile.len() as u32,
                };
                Ok::<_, WriteSnapshotError>(Some((tile_ref, Arc::new(tile))))
            }
        })
        .buffer_unordered(options.blob_concurrency.max(1))
        .try_filter_map(|written| async move { Ok(written) })
        .try_collect()
        .await?;
    let mut kept = HashMap::with_capacity(written.len());
    for key in touched {
        tiles.remove(&key);
    }
    for (tile_ref, tile) in written {
        let key = (tile_ref.tile_row, tile_ref.tile_column);
        kept.insert(key, tile);
        tiles.insert(key, tile_ref);
    }
    let index = Index {
        rows,
        columns,
        tile_rows,
        tile_columns,
        tiles: tiles.into_values().collect(),
    };
    blobs.write(&id, INDEX_NAME, index.encode()).await?;
    *blobs.written.lock().unwrap_or_else(PoisonError::into_inner) = (id.clone(), kept);
    Ok(SnapshotValue {
        sequence_id: at,
        blob_id: id,
    })
}

/// The tile geometry of a sheet's first snapshot: the options', but taller
/// (up to 16 times) for a sheet narrower than a tile, so that a tile
/// still holds about `tile_rows` x `tile_columns` cells (a 10-column table
/// of 100x100 tiles would make ten times the blobs, each a tenth full).
pub(crate) fn first_geometry(options: &SheetOptions, columns: u64) -> (u32, u32) {
    let tile_rows = options.tile_rows.clamp(1, 1 << 16);
    let tile_columns = options.tile_columns.clamp(1, 1 << 16);
    let taller = (u64::from(tile_columns) / columns.max(1)).clamp(1, 16) as u32;
    (tile_rows.saturating_mul(taller).min(1 << 16), tile_columns)
}

/// Whether two ranges share a cell.
pub(crate) fn overlap(a: CellRange, b: CellRange) -> bool {
    a.first.row <= b.last.row
        && b.first.row <= a.last.row
        && a.first.column <= b.last.column
        && b.first.column <= a.last.column
}

/// The index of the snapshot `blob_id` in the sheet directory `dir`, and
/// the handle that read it (wherever in the log the snapshot is named).
async fn read_index(
    dir: Arc<dyn BlobDir>,
    blob_id: &str,
) -> Result<(Blobs, Base), SnapshotReadError> {
    let blobs = Blobs::new(dir);
    let value = SnapshotValue {
        sequence_id: 0,
        blob_id: blob_id.to_owned(),
    };
    let base = blobs.read_base(value).await?;
    Ok((blobs, base))
}

/// The snapshot directories whose blobs the snapshot `blob_id` of the sheet
/// in `dir` needs: its own (for its index) and each one holding a tile its
/// index names (unchanged tiles are shared with older snapshots). A snapshot
/// is whole while each of them still holds its own index and tiles; a
/// cleanup that removes old snapshot directories must keep these.
///
/// # Errors
///
/// [`SnapshotReadError`] if the snapshot's index cannot be read.
pub async fn snapshot_dependencies(
    dir: Arc<dyn BlobDir>,
    blob_id: &str,
) -> Result<BTreeSet<String>, SnapshotReadError> {
    let (_, base) = read_index(dir, blob_id).await?;
    let mut dirs: BTreeSet<String> = base.index.tiles.into_iter().map(|t| t.snapshot).collect();
    dirs.insert(blob_id.to_owned());
    Ok(dirs)
}

/// Reads the snapshot `blob_id` of the sheet in `dir` whole — its index and
/// every tile it names, each checked against its checksum and the cell
/// count the index gives — and returns how many cells it holds. For
/// checking a store, not for loading a sheet (that reads only the tiles a
/// viewport needs).
///
/// # Errors
///
/// [`SnapshotReadError`] naming the first blob that is missing, damaged or
/// cannot be read.
pub async fn verify_snapshot(
    dir: Arc<dyn BlobDir>,
    blob_id: &str,
) -> Result<u64, SnapshotReadError> {
    let (blobs, base) = read_index(dir, blob_id).await?;
    let cells = stream::iter(&base.index.tiles)
        .map(|tile| blobs.read_tile(tile))
        .buffer_unordered(8)
        .try_fold(0u64, |sum, tile| async move { Ok(sum + tile.len() as u64) })
        .await?;
    Ok(cells)
}
