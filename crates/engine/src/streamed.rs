//! Snapshots written from entries as they stream past, in flat memory: a
//! worker's snapshot of a sheet that is not loaded (an import's, however
//! large), and a repair's rebuild.
//!
//! Two passes over the entries. The first reads where each entry writes
//! (its rows) and the sheet's extent, which fixes the tile geometry; from
//! them, each band of tile rows has a last entry touching it. The second
//! gathers each band's cells and, right after that last entry, merges them
//! with the base snapshot's tiles of the band and writes them. What is held
//! at once is the cells of the bands still open: for an import, which
//! writes row after row, one band or two, however large the file. A
//! block's cells are held as the bytes it holds them as, which is how a
//! tile holds them too: a tile only blocks write, in order, is those
//! bytes, and no cell of it is ever made. Past about 48 MB of cells (a
//! late entry touching every band, a band of millions of cells) the open
//! bands are written early, to scratch blobs of this writer's own, and
//! merged again later; a tile's own name is written once, with its final
//! cells, so two workers writing one snapshot never show each other's
//! partial tiles.

use crate::content::{Base, TileKey};
use crate::entry::{CheckedBlock, EntryError, RawBlock, Shape, SheetEntry};
use crate::error::{LoadError, RebuildError, WriteSnapshotError};
use crate::format::{INDEX_NAME, Index, Tile, TileBody, TileRef, tile_name};
use crate::options::SheetOptions;
use crate::reference::{CellRange, CellRef};
use crate::segment::Extent;
use crate::sheet::{check_first, check_snapshot, misplaced_identity};
use crate::snapshot::{Blobs, first_geometry, overlap, snapshot_id};
use crate::value::Cell;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt, stream};
use infinisheet_blob_store::{BlobDir, BlobName, WriteBlobError};
use infinisheet_event_log::{
    EventLog, KnownSnapshot, QueryEnd, QueryError, QueryStart, SequenceId, SnapshotValue,
    StorageError,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Where a streamed snapshot's entries come from (read twice).
enum Entries<'a> {
    /// The log's entries before `to`.
    Log {
        log: &'a dyn EventLog,
        to: SequenceId,
    },
    /// Entries in hand, the first at `from`.
    Payloads {
        from: SequenceId,
        payloads: &'a [Bytes],
    },
}

impl Entries<'_> {
    /// The entries from `at` on, a page of them (none at the end).
    async fn page(&self, at: SequenceId) -> Result<Vec<Bytes>, RebuildError> {
        match *self {
            Entries::Log { log, to } => {
                if at >= to {
                    return Ok(Vec::new());
                }
                let page = log
                    .query(
                        QueryStart::Id(at),
                        QueryEnd::Id(to),
                        KnownSnapshot::NotTracked,
                    )
                    .await
                    .map_err(LoadError::from)?;
                if page.start != at || page.entries.is_empty() {
                    // The log ends before the snapshot's place.
                    return Err(WriteSnapshotError::OutOfRange {
                        at: to,
                        start: page.start,
                        end: page.end,
                    }
                    .into());
                }
                Ok(page.entries.into_iter().map(|e| e.payload).collect())
            }
            Entries::Payloads { from, payloads } => {
                let skip = usize::try_from(at.saturating_sub(from)).unwrap_or(usize::MAX);
                Ok(payloads.get(skip..).unwrap_or_default().to_vec())
            }
        }
    }
}

/// An entry, checked to be the sheet's identity only if it is the first.
fn decode(seq: SequenceId, payload: &[u8]) -> Result<SheetEntry, LoadError> {
    match SheetEntry::decode(payload) {
        Ok(SheetEntry::Identity { .. }) if seq != 0 => Err(misplaced_identity(seq)),
        Ok(entry) => Ok(entry),
        Err(source) => Err(LoadError::Entry { seq, source }),
    }
}

/// Entries this large (a block's, most often) are read on the blocking
/// pool; smaller ones (a cell's edit) cost less than the trip there.
const POOLED_ENTRY: usize = 16 << 10;

/// Blocks the first pass keeps decompressed and checked for the second
/// (which then reads them from the log no more), at most about this many
/// bytes of them: an import's snapshot job, a few million cells, whole.
const KEPT_BYTES: usize = 32 << 20;

/// The entries read on, after the first pass: `Box`ed, as they come from
/// what the first pass kept or from the log.
type DecodedStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<Decoded, LoadError>> + Send>>;

/// `work` done to each entry of `page` (the first is entry `seq`) with
/// what `how` says of it, in order, two entries ahead of the caller: the
/// large ones on the blocking pool, so that reading entries and using
/// them take both cores.
fn on_pool<T: Send + 'static, H: Send + 'static>(
    page: Vec<Bytes>,
    seq: SequenceId,
    mut how: impl FnMut(&Bytes) -> H,
    work: fn(SequenceId, Bytes, H) -> Result<T, LoadError>,
) -> impl futures::Stream<Item = Result<T, LoadError>> {
    stream::iter(page.into_iter().zip(seq..))
        .map(move |(payload, seq)| {
            let how = how(&payload);
            async move {
                if payload.len() < POOLED_ENTRY {
                    return work(seq, payload, how);
                }
                pooled(move || work(seq, payload, how)).await
            }
        })
        .buffered(2)
}

/// `work`'s result, run on the blocking pool.
async fn pooled<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LoadError> + Send + 'static,
) -> Result<T, LoadError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => Err(LoadError::Log(QueryError::Storage(
            StorageError::retryable("engine", "the runtime is shutting down"),
        ))),
    }
}

/// An entry of the log, made ready to place: a block's cells checked and
/// left as bytes, any other entry decoded.
enum Decoded {
    Block(CheckedBlock),
    Other(SheetEntry),
}

impl Decoded {
    /// Entry `seq`, whose bytes are `payload`, checked as [`decode`]
    /// checks it.
    fn of(seq: SequenceId, payload: Bytes) -> Result<Decoded, LoadError> {
        let entry_error = |source| LoadError::Entry { seq, source };
        match RawBlock::of(&payload).map_err(entry_error)? {
            Some(raw) => Ok(Decoded::Block(raw.checked().map_err(entry_error)?)),
            None => decode(seq, &payload).map(Decoded::Other),
        }
    }

    /// Where it writes.
    fn shape(&self, seq: SequenceId) -> Result<Shape, LoadError> {
        match self {
            Decoded::Block(block) => block
                .shape()
                .map_err(|source| LoadError::Entry { seq, source }),
            Decoded::Other(entry) => Ok(entry.shape_of()),
        }
    }

    /// The bytes it holds, about.
    fn size(&self) -> usize {
        match self {
            Decoded::Block(block) => block.size(),
            Decoded::Other(_) => 64,
        }
    }
}

/// Entry `seq`'s shape, and the entry decoded if `keep` (the first pass
/// keeping it for the second).
fn shaped(
    seq: SequenceId,
    payload: Bytes,
    keep: bool,
) -> Result<(Shape, Option<Decoded>), LoadError> {
    if keep {
        let decoded = Decoded::of(seq, payload)?;
        Ok((decoded.shape(seq)?, Some(decoded)))
    } else {
        Ok((shape(seq, &payload)?, None))
    }
}

/// Where an entry writes (no cell made), checked as [`decode`] checks.
fn shape(seq: SequenceId, payload: &[u8]) -> Result<Shape, LoadError> {
    match SheetEntry::shape(payload) {
        Ok(Shape::Identity) if seq != 0 => Err(misplaced_identity(seq)),
        Ok(shape) => Ok(shape),
        Err(source) => Err(LoadError::Entry { seq, source }),
    }
}

/// The rows an entry writes or clears.
struct Span {
    first: u32,
    last: u32,
    clear: bool,
}

/// A cell and its place within its tile.
type PlacedCell = ((u32, u32), Cell);

/// The cells held for one tile, in the tile's own encoding (a cell of a
/// block entry is copied as its bytes, a single cell's entry encoded
/// once): layers, each of cells in increasing places, each layer's cells
/// later in entry order than the layers before it (a cell that does not
/// come after the last layer's last cell starts a new layer). A tile of
/// one layer is its bytes, no cell made (an import's tiles are so);
/// layers are merged as bytes, a later cell at a place winning, when the
/// tile is written and as they pile up (see [`Open::push`]: cells
/// overwritten over and over hold about three times the tile's places). A
/// clear drops cells from the layers as they are. Nothing held is made
/// into cells (only a tile merged onto a base tile is, when written), so
/// what is held is what the budget counts.
#[derive(Default)]
struct Open {
    layers: Vec<TileBody>,
}

impl Open {
    fn is_empty(&self) -> bool {
        self.layers.iter().all(|layer| layer.cells == 0)
    }

    /// About the bytes it holds (see [`HELD_BYTES`]).
    fn size(&self) -> u64 {
        let each = std::mem::size_of::<TileBody>();
        self.layers
            .iter()
            .map(|layer| (layer.body.capacity() + each) as u64)
            .sum()
    }

    /// Adds the cell whose compact encoding is `raw` at `place`. Layers
    /// are merged into one when the later ones hold as many cells as the
    /// first, or past [`MAX_LAYERS`]: cells overwritten over and over hold
    /// at most about three times the tile's places.
    fn push(&mut self, place: (u32, u32), raw: &[u8]) -> Result<(), String> {
        if let Some(last) = self.layers.last_mut()
            && last.push(place, raw)
        {
            return Ok(());
        }
        // Merged when the later layers hold as many cells as the first
        // (so the merges cost a few passes over the tile in all) or are
        // too many.
        let later: u64 = self.layers.iter().skip(1).map(|l| u64::from(l.cells)).sum();
        let first = self.layers.first().map_or(0, |l| u64::from(l.cells));
        if self.layers.len() >= MAX_LAYERS || (self.layers.len() > 1 && later >= first) {
            self.layers = vec![TileBody::merged(&self.layers)?];
            if let Some(last) = self.layers.last_mut()
                && last.push(place, raw)
            {
                return Ok(());
            }
        }
        let mut layer = TileBody::default();
        layer.push(place, raw);
        self.layers.push(layer);
        Ok(())
    }

    /// Drops the cells at places `drop` picks.
    fn drop_where(&mut self, drop: impl Fn((u32, u32)) -> bool) -> Result<(), String> {
        for layer in &mut self.layers {
            layer.retain(|place| !drop(place))?;
        }
        self.layers.retain(|layer| layer.cells > 0);
        Ok(())
    }

    /// The layers as one (a later cell at a place wins).
    fn merged(self) -> Result<TileBody, String> {
        match <[TileBody; 1]>::try_from(self.layers) {
            Ok([layer]) => Ok(layer),
            Err(layers) => TileBody::merged(&layers),
        }
    }
}

/// The most layers an open tile keeps before merging them.
const MAX_LAYERS: usize = 8;

/// `cell` in the compact encoding.
fn encoded(cell: &Cell) -> Vec<u8> {
    let mut bytes = Vec::new();
    crate::compact::put_cell(&mut bytes, Some(cell), &mut String::new());
    bytes
}

/// The bytes of the tile of `old`'s cells with `edits` applied, and how
/// many cells it holds (none: no tile). A new tile of one layer is its
/// bytes.
fn encoded_tile(old: Option<Arc<Tile>>, edits: Open) -> Result<(usize, Option<Vec<u8>>), String> {
    let edits = edits.merged()?;
    if old.is_none() && edits.cells > 0 {
        return Ok((
            edits.cells as usize,
            Some(Tile::seal_body(edits.cells, &edits.body)),
        ));
    }
    let made: Vec<PlacedCell> = Tile::cells_of_body(edits.cells, &edits.body)?.collect();
    let tile = Tile::merged(old, made);
    Ok((tile.len(), (tile.len() > 0).then(|| tile.encode())))
}

/// About how many bytes of cells a streamed snapshot holds before it
/// writes what it has. Cells are held in their encoding, a few bytes
/// each: an import of 10,000 columns (a band of a million cells) holds
/// its band and writes it once, and only a band of millions of cells (or
/// a late entry touching every band) is written early, and merged again
/// later.
const HELD_BYTES: u64 = 48 << 20;

/// What a tile's cells are merged onto.
#[derive(Clone, Debug)]
enum Earlier {
    /// Nothing: a new tile, or one cleared whole.
    Nothing,
    /// The base snapshot's tile.
    Base(TileRef),
    /// What this writer wrote of it early, under a scratch name (the blob
    /// name, its cells).
    Scratch(String, u32),
}

/// A tile to write: where, what it is merged onto, its cells in entry
/// order, the clears that blank what it is merged onto, and whether this
/// is its last write (under its own name) or an early one (a scratch
/// name, so a snapshot another worker published under the same name never
/// shows a partial tile).
struct Job {
    key: TileKey,
    earlier: Earlier,
    edits: Open,
    clears: Vec<CellRange>,
    last: bool,
}

/// A tile written: its last write (`None`: all its cells cleared), or an
/// early one (the scratch name and its cells; `None`: nothing left).
enum Written {
    Last(TileKey, Option<TileRef>),
    Early(TileKey, Option<(String, u32)>),
}

/// Writes the snapshot preceding entry `at` of the sheet whose log is
/// `log` and whose directory is `dir`, streaming: from the log's newest
/// snapshot (at or before `at`) and the entries from there to `at`, read
/// page by page, holding only the tiles of the rows entries still to come
/// write (see the module). Writes what
/// [`Spreadsheet::write_snapshot`](crate::Spreadsheet::write_snapshot)
/// would, where it would; returns the value to publish on entry `at`.
///
/// # Errors
///
/// * [`RebuildError::Load`] if the log or the base snapshot cannot be
///   read, is another sheet's, or an entry is not a sheet entry.
/// * [`RebuildError::Write`]: [`WriteSnapshotError::OutOfRange`] if a
///   snapshot newer than `at` is the log's newest or the log ends before
///   `at`; otherwise a blob could not be read or written.
pub async fn write_snapshot_from_log(
    log: &dyn EventLog,
    dir: Arc<dyn BlobDir>,
    options: SheetOptions,
    at: SequenceId,
) -> Result<SnapshotValue, RebuildError> {
    // The log's newest snapshot, named by a query of no entry (reading
    // the entries from it to `at` only to see the first's metadata read a
    // whole page of them).
    let probe = match log
        .query(
            QueryStart::Id(at),
            QueryEnd::Id(at),
            KnownSnapshot::NoSnapshot,
        )
        .await
    {
        Ok(probe) => probe,
        Err(QueryError::Range(range)) => {
            return Err(WriteSnapshotError::OutOfRange {
                at,
                start: range.start,
                end: range.end,
            }
            .into());
        }
        Err(err) => return Err(LoadError::from(err).into()),
    };
    let base = match probe.last_snapshot {
        Some(newest) if newest.sequence_id > at => {
            return Err(WriteSnapshotError::OutOfRange {
                at,
                start: newest.sequence_id,
                end: probe.end,
            }
            .into());
        }
        Some(newest) if newest.sequence_id == at => {
            check_snapshot(options.identity, &newest.blob_id)?;
            return Ok(newest); // written already
        }
        Some(newest) => Some(newest),
        None => {
            let start = log
                .bounds()
                .await
                .map_err(|err| LoadError::from(QueryError::Storage(err)))?
                .start;
            if start > 0 {
                return Err(LoadError::NoSnapshot { start }.into());
            }
            None
        }
    };
    rebuild_from(dir, &options, base, &Entries::Log { log, to: at }).await
}

/// Writes again the snapshot preceding entry `at` of the sheet whose log
/// is `log` and whose directory is `dir`, from the whole snapshot `base`
/// (or from nothing, the log's start) and the log's entries from there to
/// `at`, read page by page: [`rebuild_snapshot`](crate::rebuild_snapshot)
/// in flat memory, for a repair whose entries are all still in the log.
///
/// # Errors
///
/// As [`rebuild_snapshot`](crate::rebuild_snapshot);
/// [`WriteSnapshotError::OutOfRange`] if the log no longer holds (or does
/// not yet hold) every entry from `base` to `at`.
pub async fn rebuild_snapshot_from_log(
    log: &dyn EventLog,
    dir: Arc<dyn BlobDir>,
    options: SheetOptions,
    base: Option<SnapshotValue>,
    at: SequenceId,
) -> Result<SnapshotValue, RebuildError> {
    rebuild_from(dir, &options, base, &Entries::Log { log, to: at }).await
}

/// [`rebuild_snapshot`](crate::rebuild_snapshot) through the streaming
/// writer: the payloads follow `base` (or the log's start).
pub(crate) async fn rebuild(
    dir: Arc<dyn BlobDir>,
    options: &SheetOptions,
    base: Option<SnapshotValue>,
    payloads: &[Bytes],
) -> Result<SnapshotValue, RebuildError> {
    let from = base.as_ref().map_or(0, |b| b.sequence_id);
    rebuild_from(dir, options, base, &Entries::Payloads { from, payloads }).await
}

/// A rebuild: the snapshot of the whole snapshot `base` (checked to be the
/// sheet's) or of the sheet's first entries (checked to begin with its
/// identity), and `entries` after it.
async fn rebuild_from(
    dir: Arc<dyn BlobDir>,
    options: &SheetOptions,
    base: Option<SnapshotValue>,
    entries: &Entries<'_>,
) -> Result<SnapshotValue, RebuildError> {
    let blobs = Blobs::new(dir);
    let (base, start) = match base {
        Some(value) => {
            check_snapshot(options.identity, &value.blob_id)?;
            let start = value.sequence_id;
            let base = blobs.read_base(value).await.map_err(LoadError::from)?;
            (Some(base), start)
        }
        None => {
            let first = entries.page(0).await?;
            check_first(options.identity, first.first().map(|p| &p[..]))?;
            (None, 0)
        }
    };
    let budget = Budget {
        held: HELD_BYTES,
        kept: KEPT_BYTES,
    };
    let (value, _peak) = write(&blobs, base, start, entries, options, budget).await?;
    Ok(value)
}

/// What the streaming writer may hold.
#[derive(Clone, Copy)]
struct Budget {
    /// Cells of open tiles, about ([`HELD_BYTES`]).
    held: u64,
    /// Blocks pass one keeps for pass two ([`KEPT_BYTES`]).
    kept: usize,
}

/// The streaming writer: the snapshot of `base` (starting at `start`, or
/// nothing) and `entries` from `start` on, at their end, holding at most
/// about `budget.held` bytes of cells (and the most it held after an
/// entry) beside `budget.kept` bytes of blocks.
async fn write(
    blobs: &Blobs,
    base: Option<Base>,
    start: SequenceId,
    entries: &Entries<'_>,
    options: &SheetOptions,
    budget: Budget,
) -> Result<(SnapshotValue, u64), RebuildError> {
    // Pass one: the rows each entry writes, and the extent (blocks' cells
    // stepped over, not made). The first entries, up to `budget.kept`
    // bytes, are decoded whole and kept for pass two.
    let mut extent = base.as_ref().map_or_else(Extent::default, Base::extent);
    let mut spans: Vec<Option<Span>> = Vec::new();
    let mut kept: Vec<Decoded> = Vec::new();
    let (mut kept_bytes, mut keeping) = (0, true);
    // Room for more, as the entries' compressed sizes foretell it.
    let mut room = budget.kept;
    let mut seq = start;
    loop {
        let page = entries.page(seq).await?;
        if page.is_empty() {
            break;
        }
        let keep = |payload: &Bytes| {
            let guess = payload.len().saturating_mul(2);
            let keep = guess <= room;
            room = if keep { room - guess } else { 0 };
            keep
        };
        let mut shapes = on_pool(page, seq, keep, shaped);
        while let Some(shaped) = shapes.next().await {
            let (shape, decoded) = shaped?;
            // Kept while they are the first entries and fit.
            match decoded {
                Some(decoded) if keeping && kept_bytes + decoded.size() <= budget.kept => {
                    kept_bytes += decoded.size();
                    kept.push(decoded);
                }
                _ => keeping = false,
            }
            let span = match shape {
                Shape::Identity => None,
                Shape::Cells {
                    first_row,
                    last_row,
                    reach,
                } => {
                    if let Some((row, column)) = reach {
                        extent.grow(row, column);
                    }
                    Some(Span {
                        first: first_row,
                        last: last_row,
                        clear: false,
                    })
                }
                Shape::Clear(range) => {
                    extent.clear(range);
                    Some(Span {
                        first: range.first.row,
                        last: range.last.row,
                        clear: true,
                    })
                }
            };
            spans.push(span);
            seq += 1;
        }
    }
    let at = seq;
    let id = snapshot_id(at, options.identity);
    let (tile_rows, tile_columns) = base.as_ref().map_or_else(
        || first_geometry(options, extent.columns),
        |b| (b.index.tile_rows, b.index.tile_columns),
    );
    // The bands of tile rows holding cells (the base's, and those entries
    // write), and the last entry touching each: a band is written right
    // after it.
    let mut bands: BTreeSet<u32> = base
        .as_ref()
        .map(|b| b.index.tiles.iter().map(|t| t.tile_row).collect())
        .unwrap_or_default();
    for span in spans.iter().flatten().filter(|s| !s.clear) {
        bands.extend(span.first / tile_rows..=span.last / tile_rows);
    }
    let mut last: HashMap<u32, usize> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        let Some(span) = span else { continue };
        let touched = span.first / tile_rows..=span.last / tile_rows;
        for &band in bands.range(touched) {
            last.insert(band, i);
        }
    }
    drop(spans);
    let mut due: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for (band, i) in last {
        due.entry(i).or_default().push(band);
    }

    // Pass two: each band's cells, written after its last entry.
    let mut band = Band {
        blobs,
        id: &id,
        tile_rows,
        tile_columns,
        concurrency: options.blob_concurrency.max(1),
        tiles: base.as_ref().map(Base::tile_map).unwrap_or_default(),
        pending: BTreeMap::new(),
        clears: Vec::new(),
        held: 0,
        peak: 0,
        written: HashMap::new(),
        early: HashMap::new(),
        scratch: std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            0u8,
        ),
        dir: None,
        writes: FuturesUnordered::new(),
    };
    drop(base);
    let mut seq = start;
    while seq < at {
        let mut decoded: DecodedStream = if kept.is_empty() {
            let mut page = entries.page(seq).await?;
            if page.is_empty() {
                break;
            }
            // Blocks are decompressed and their cells checked beside the
            // placing of the cells before.
            page.truncate(usize::try_from(at - seq).unwrap_or(usize::MAX));
            Box::pin(on_pool(
                page,
                seq,
                |_| (),
                |seq, payload, ()| Decoded::of(seq, payload),
            ))
        } else {
            // The first entries, as pass one kept them.
            Box::pin(stream::iter(std::mem::take(&mut kept).into_iter().map(Ok)))
        };
        while let Some(entry) = decoded.next().await {
            let entry_error = |source| LoadError::Entry { seq, source };
            match entry? {
                Decoded::Block(block) => {
                    // Its cells stay bytes: most go into tiles as they are.
                    let (origin, width) = block.place();
                    let cells = block.cells().map_err(entry_error)?;
                    band.set_cells(origin, width, cells.into_iter())
                        .map_err(|why| entry_error(EntryError::Malformed(why)))?;
                }
                Decoded::Other(entry) => match entry {
                    SheetEntry::Identity { .. } => {}
                    SheetEntry::SetCellValueAndFormat {
                        row,
                        column,
                        value,
                        format,
                    } => band
                        .set(row, column, &Cell { value, format })
                        .map_err(|why| entry_error(EntryError::Malformed(why)))?,
                    SheetEntry::Block(block) => {
                        // (A block of an older entry version.)
                        let (origin, width, cells) = block.into_parts();
                        let cells = cells.iter().map(|cell| cell.as_ref().map(encoded));
                        band.set_cells(origin, width, cells)
                            .map_err(|why| entry_error(EntryError::Malformed(why)))?;
                    }
                    SheetEntry::Clear { range } => band
                        .clear(range)
                        .map_err(|why| entry_error(EntryError::Malformed(why)))?,
                },
            }
            // Entries counted from the start, as the spans were.
            let i = (seq - start) as usize;
            if let Some(bands) = due.remove(&i) {
                for done in bands {
                    band.flush(done, true).await?;
                }
            }
            band.peak = band.peak.max(band.held);
            if band.held > budget.held {
                band.flush_open().await?;
            }
            seq += 1;
            if seq == at {
                break;
            }
        }
    }
    while !band.writes.is_empty() {
        band.finish_one().await?;
    }
    // Every band written early was written last after its last entry.
    debug_assert!(
        band.early.is_empty(),
        "scratch tiles left: {:?}",
        band.early
    );
    let peak = band.peak;
    let index = Index {
        rows: extent.rows,
        columns: extent.columns,
        tile_rows,
        tile_columns,
        tiles: band.tiles.into_values().collect(),
    };
    blobs.write(&id, INDEX_NAME, index.encode()).await?;
    let value = SnapshotValue {
        sequence_id: at,
        blob_id: id,
    };
    Ok((value, peak))
}

/// The tiles of a streamed snapshot: those written or shared so far, and
/// the cells of the bands still open.
struct Band<'a> {
    blobs: &'a Blobs,
    id: &'a str,
    tile_rows: u32,
    tile_columns: u32,
    concurrency: usize,
    tiles: BTreeMap<TileKey, TileRef>,
    /// Cells of open tiles.
    pending: BTreeMap<TileKey, Open>,
    /// Every clear so far: the base's cells they cover are blank.
    clears: Vec<CellRange>,
    /// About the bytes `pending` holds.
    held: u64,
    /// The most `held` was after an entry.
    peak: u64,
    /// Bands written early, with how many of `clears` their scratch tiles
    /// have had applied.
    written: HashMap<u32, usize>,
    /// Tiles written early: their scratch blob and cells (`None`: nothing
    /// left of them, the base's tile cleared whole).
    early: HashMap<TileKey, Option<(String, u32)>>,
    /// This writer's own in scratch names (two workers may write one
    /// snapshot at once).
    scratch: u64,
    /// The snapshot's directory, once opened.
    dir: Option<Arc<dyn BlobDir>>,
    /// Tiles being merged, encoded and written.
    writes: FuturesUnordered<JoinHandle<Result<Written, WriteSnapshotError>>>,
}

/// A write that cannot run: the runtime is going away.
fn shutting_down() -> WriteBlobError {
    WriteBlobError::Storage(StorageError::retryable(
        "engine",
        "the runtime is shutting down",
    ))
}

impl Band<'_> {
    async fn dir(&mut self) -> Result<Arc<dyn BlobDir>, RebuildError> {
        if let Some(dir) = &self.dir {
            return Ok(dir.clone());
        }
        let dir = self.blobs.writable_dir(self.id, INDEX_NAME).await?;
        self.dir = Some(dir.clone());
        Ok(dir)
    }

    /// Waits for one tile write and records it.
    async fn finish_one(&mut self) -> Result<(), RebuildError> {
        let Some(done) = self.writes.next().await else {
            return Ok(());
        };
        let written = match done {
            Ok(written) => written?,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => {
                return Err(WriteSnapshotError::Write {
                    blob: crate::snapshot::path(self.id, INDEX_NAME),
                    source: shutting_down(),
                }
                .into());
            }
        };
        match written {
            Written::Last(key, tile) => {
                self.early.remove(&key);
                match tile {
                    Some(tile) => self.tiles.insert(key, tile),
                    None => self.tiles.remove(&key),
                };
            }
            Written::Early(key, scratch) => {
                self.early.insert(key, scratch);
            }
        }
        Ok(())
    }

    fn set(&mut self, row: u32, column: u32, cell: &Cell) -> Result<(), String> {
        let key = (row / self.tile_rows, column / self.tile_columns);
        let place = (row % self.tile_rows, column % self.tile_columns);
        let open = self.pending.entry(key).or_default();
        let before = open.size();
        let pushed = open.push(place, &encoded(cell));
        self.held = self.held - before + open.size();
        pushed
    }

    /// Sets a block's cells (`None`: a gap), `width` a row from `origin`:
    /// each row's run within a tile at once.
    fn set_cells<C: AsRef<[u8]>>(
        &mut self,
        origin: CellRef,
        width: u32,
        mut cells: impl ExactSizeIterator<Item = Option<C>>,
    ) -> Result<(), String> {
        let mut row = origin.row;
        let tile_columns = u64::from(self.tile_columns);
        let end = u64::from(origin.column) + u64::from(width);
        loop {
            let mut column = u64::from(origin.column);
            let mut any = false;
            // Only as far as the cells go (a short last row, or a block
            // far wider than its cells), and only tiles it sets a cell in.
            while column < end && cells.len() > 0 {
                // The run of this row within the tile of `column`.
                let tile_column = column / tile_columns;
                let run = (((tile_column + 1) * tile_columns).min(end) - column) as usize;
                // The block was checked to fit: every place fits in a u32.
                let key = (row / self.tile_rows, tile_column as u32);
                let local_row = row % self.tile_rows;
                let first = (column % tile_columns) as u32;
                let mut placed = cells
                    .by_ref()
                    .take(run)
                    .enumerate()
                    .filter_map(|(k, cell)| Some(((local_row, first + k as u32), cell?)))
                    .peekable();
                any = true;
                if placed.peek().is_some() {
                    let open = self.pending.entry(key).or_default();
                    let before = open.size();
                    let pushed =
                        placed.try_for_each(|(place, cell)| open.push(place, cell.as_ref()));
                    self.held = self.held - before + open.size();
                    pushed?;
                } else {
                    placed.for_each(drop);
                }
                column += run as u64;
            }
            if !any || cells.len() == 0 {
                return Ok(());
            }
            row += 1;
        }
    }

    fn area(&self, (tile_row, tile_column): TileKey) -> CellRange {
        let first = CellRef::new(tile_row * self.tile_rows, tile_column * self.tile_columns);
        let last = CellRef::new(
            first.row.saturating_add(self.tile_rows - 1),
            first.column.saturating_add(self.tile_columns - 1),
        );
        CellRange::new(first, last)
    }

    /// Blanks `range`: the open cells in it now, the base's when their
    /// band is written.
    fn clear(&mut self, range: CellRange) -> Result<(), String> {
        let rows =
            (range.first.row / self.tile_rows, 0)..=(range.last.row / self.tile_rows, u32::MAX);
        let columns =
            range.first.column / self.tile_columns..=range.last.column / self.tile_columns;
        let (tile_rows, tile_columns) = (self.tile_rows, self.tile_columns);
        for (key, open) in self.pending.range_mut(rows) {
            if columns.contains(&key.1) && !open.is_empty() {
                let (row0, column0) = (key.0 * tile_rows, key.1 * tile_columns);
                let before = open.size();
                open.drop_where(|(row, column)| range.contains(row0 + row, column0 + column))?;
                self.held = self.held - before + open.size();
            }
        }
        self.clears.push(range);
        Ok(())
    }

    /// Writes every band with cells held, early: when they pass the
    /// budget (a late entry touching every band, a band millions of cells
    /// wide), so what is held stays bounded. A band touched again is merged
    /// onto what was written, and written last after its last entry.
    async fn flush_open(&mut self) -> Result<(), RebuildError> {
        let bands: BTreeSet<u32> = self.pending.keys().map(|key| key.0).collect();
        for band in bands {
            self.flush(band, false).await?;
        }
        Ok(())
    }

    /// Writes the tiles of band `band` that changed: the base's (or what
    /// was written of them early) merged with the band's cells, less what
    /// clears blanked since: under their own names after the band's `last`
    /// entry, under scratch names before it.
    async fn flush(&mut self, band: u32, last: bool) -> Result<(), RebuildError> {
        let applied = self.written.get(&band).copied();
        if applied.is_some() {
            // Written early: its scratch tiles are read back, once whole.
            while !self.writes.is_empty() {
                self.finish_one().await?;
            }
        }
        let since = applied.unwrap_or(0);
        let keys = (band, 0)..=(band, u32::MAX);
        let mut touched: BTreeSet<TileKey> =
            self.pending.range(keys.clone()).map(|(k, _)| *k).collect();
        touched.extend(self.tiles.range(keys).map(|(k, _)| *k));
        touched.extend(self.early.keys().filter(|key| key.0 == band));
        let mut jobs: Vec<Job> = Vec::new();
        for key in touched {
            let area = self.area(key);
            let clears: Vec<CellRange> = self.clears[since..]
                .iter()
                .copied()
                .filter(|clear| overlap(*clear, area))
                .collect();
            let edits = self.pending.remove(&key).unwrap_or_default();
            self.held -= edits.size();
            let earlier = match self.early.get(&key) {
                Some(Some((name, cells))) => Earlier::Scratch(name.clone(), *cells),
                Some(None) => Earlier::Nothing,
                None => self
                    .tiles
                    .get(&key)
                    .cloned()
                    .map_or(Earlier::Nothing, Earlier::Base),
            };
            let unchanged =
                edits.is_empty() && (clears.is_empty() || matches!(earlier, Earlier::Nothing));
            if unchanged {
                match (&earlier, self.early.contains_key(&key)) {
                    // Shared (or kept) as it is.
                    (_, false) => {}
                    // Cleared whole early, nothing since: no tile at all.
                    (Earlier::Nothing, true) if last => {
                        self.early.remove(&key);
                        self.tiles.remove(&key);
                    }
                    (Earlier::Nothing, true) => {}
                    // Written early, nothing since: its last write below.
                    (_, true) if last => jobs.push(Job {
                        key,
                        earlier,
                        edits,
                        clears,
                        last,
                    }),
                    (_, true) => {}
                }
                continue;
            }
            jobs.push(Job {
                key,
                earlier,
                edits,
                clears,
                last,
            });
        }
        if !last {
            self.written.insert(band, self.clears.len());
        }
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let chunk: Vec<Job> = jobs.by_ref().take(self.concurrency).collect();
            self.write_tiles(chunk).await?;
        }
        Ok(())
    }

    /// Reads what `jobs` merge onto (a few at a time), less what the
    /// clears blanked, and starts merging, encoding and writing each.
    async fn write_tiles(&mut self, jobs: Vec<Job>) -> Result<(), RebuildError> {
        let blobs = self.blobs;
        let dir = self.dir().await?;
        let id = self.id.to_owned();
        let reads: Vec<(Earlier, Vec<CellRange>, CellRef)> = jobs
            .iter()
            .map(|job| {
                (
                    job.earlier.clone(),
                    job.clears.clone(),
                    self.area(job.key).first,
                )
            })
            .collect();
        let olds: Vec<Option<Arc<Tile>>> = stream::iter(reads)
            .map(|(earlier, clears, origin)| {
                let (dir, id) = (dir.clone(), id.clone());
                async move {
                    let old = match earlier {
                        Earlier::Nothing => return Ok(None),
                        Earlier::Base(tile) => {
                            blobs.read_tile(&tile).await.map_err(LoadError::from)?
                        }
                        Earlier::Scratch(name, cells) => {
                            Arc::new(read_scratch(&dir, &id, &name, cells).await?)
                        }
                    };
                    Ok::<_, RebuildError>(Some(old.without(|row, column| {
                        let (row, column) = (origin.row + row, origin.column + column);
                        clears.iter().any(|clear| clear.contains(row, column))
                    })))
                }
            })
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        for (job, old) in jobs.into_iter().zip(olds) {
            let Job {
                key,
                earlier,
                edits,
                last,
                ..
            } = job;
            let (dir, id) = (dir.clone(), id.clone());
            let scratch = format!("p{:016x}-{}-{}", self.scratch, key.0, key.1);
            // Merged, encoded and written in the background, beside the
            // reading and decoding of the next entries.
            self.writes.push(tokio::spawn(async move {
                let name = if last {
                    tile_name(key.0, key.1)
                } else {
                    scratch
                };
                let failed = |source| WriteSnapshotError::Write {
                    blob: crate::snapshot::path(&id, &name),
                    source,
                };
                let merged = tokio::task::spawn_blocking(move || encoded_tile(old, edits)).await;
                let (cells, encoded) = match merged {
                    Ok(Ok(merged)) => merged,
                    // Each cell was checked as its entry was read.
                    Ok(Err(reason)) => {
                        return Err(failed(WriteBlobError::Storage(StorageError::corrupt(
                            "engine", reason,
                        ))));
                    }
                    Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                    Err(_) => return Err(failed(shutting_down())),
                };
                let blob = BlobName::new(&name).map_err(|err| failed(err.into()))?;
                if let Some(encoded) = encoded {
                    dir.write_blob(&blob, Bytes::from(encoded))
                        .await
                        .map_err(failed)?;
                }
                // A scratch tile read for the last time goes (best effort:
                // left behind, it is a stray blob no index names). Only
                // scratch names are ever removed.
                if let Earlier::Scratch(old, _) = &earlier
                    && (last || cells == 0)
                    && let Ok(old) = BlobName::new(old)
                {
                    let _ = dir.remove_blob(&old).await;
                }
                let cells = u32::try_from(cells).unwrap_or(u32::MAX);
                Ok(match (last, cells) {
                    (true, 0) => Written::Last(key, None),
                    (true, _) => Written::Last(
                        key,
                        Some(TileRef {
                            tile_row: key.0,
                            tile_column: key.1,
                            snapshot: id,
                            cells,
                        }),
                    ),
                    (false, 0) => Written::Early(key, None),
                    (false, _) => Written::Early(key, Some((name, cells))),
                })
            }));
            while self.writes.len() > self.concurrency {
                self.finish_one().await?;
            }
        }
        Ok(())
    }
}

/// A tile this writer wrote early under a scratch name, checked against
/// the cells it holds.
async fn read_scratch(
    dir: &Arc<dyn BlobDir>,
    id: &str,
    name: &str,
    cells: u32,
) -> Result<Tile, RebuildError> {
    let blob = crate::snapshot::path(id, name);
    let corrupt = |reason: String| {
        RebuildError::Load(LoadError::Snapshot(
            crate::error::SnapshotReadError::Corrupt {
                blob: blob.clone(),
                reason,
            },
        ))
    };
    let bytes = dir
        .read_blob(&BlobName::new(name).map_err(|err| corrupt(err.to_string()))?)
        .await
        .map_err(|err| {
            RebuildError::Load(LoadError::Snapshot(
                crate::error::SnapshotReadError::from_read(blob.clone(), err),
            ))
        })?;
    let tile = Tile::decode(&bytes).map_err(corrupt)?;
    if tile.len() != cells as usize {
        return Err(corrupt(format!(
            "it holds {} cells; {cells} were written",
            tile.len()
        )));
    }
    Ok(tile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Spreadsheet;
    use crate::edit::{Block, Edit};
    use infinisheet_blob_store::{BlobDirExt, BlobStore};
    use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
    use proptest::prelude::*;

    /// Every blob of the snapshot directory `id` in `dir`, by name.
    async fn blobs_of(dir: &Arc<dyn BlobDir>, id: &str) -> BTreeMap<String, Bytes> {
        let snapshot = dir
            .open_dir(crate::snapshot::SNAPSHOTS_DIR)
            .await
            .unwrap()
            .open_dir(id)
            .await
            .unwrap();
        let mut blobs = BTreeMap::new();
        for entry in snapshot.list_all().await.unwrap() {
            let name = entry.name.to_string();
            blobs.insert(name.clone(), snapshot.read(&name).await.unwrap());
        }
        blobs
    }

    /// Every blob written or removed under a directory, by path.
    type Record = Arc<std::sync::Mutex<Vec<(String, Option<Bytes>)>>>;

    /// A directory that records the writes and removals made through it
    /// (and its subdirectories) around a real one.
    #[derive(Debug)]
    struct Recording {
        inner: Arc<dyn BlobDir>,
        path: String,
        record: Record,
    }

    #[async_trait::async_trait]
    impl BlobDir for Recording {
        async fn read_blob(
            &self,
            name: &BlobName,
        ) -> Result<Bytes, infinisheet_blob_store::ReadBlobError> {
            self.inner.read_blob(name).await
        }
        async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError> {
            let path = format!("{}/{}", self.path, name.as_str());
            self.record
                .lock()
                .unwrap()
                .push((path, Some(content.clone())));
            self.inner.write_blob(name, content).await
        }
        async fn remove_blob(
            &self,
            name: &BlobName,
        ) -> Result<(), infinisheet_blob_store::RemoveBlobError> {
            let path = format!("{}/{}", self.path, name.as_str());
            self.record.lock().unwrap().push((path, None));
            self.inner.remove_blob(name).await
        }
        async fn dir(
            &self,
            name: &BlobName,
        ) -> Result<Arc<dyn BlobDir>, infinisheet_blob_store::DirError> {
            Ok(Arc::new(Recording {
                inner: self.inner.dir(name).await?,
                path: format!("{}/{}", self.path, name.as_str()),
                record: self.record.clone(),
            }))
        }
        async fn list(
            &self,
            continuation: Option<&infinisheet_blob_store::Continuation>,
        ) -> Result<infinisheet_blob_store::ListPage, infinisheet_blob_store::ListError> {
            self.inner.list(continuation).await
        }
        async fn remove_all(&self) -> Result<(), StorageError> {
            self.inner.remove_all().await
        }
    }

    fn edit(op: (u8, u32, u32, u32, u8)) -> Edit {
        let (kind, row, column, size, value) = op;
        // Every kind of cell: blocks' cells go into tiles as their bytes.
        let cell = match value % 6 {
            0 => Cell::new(crate::CellValue::Number(f64::from(value) / 4.0)),
            1 => Cell::new(crate::CellValue::Text(format!("t{value}é"))),
            2 => Cell::new(crate::CellValue::Empty),
            3 => Cell::new(crate::CellValue::Boolean(value % 4 == 3)),
            4 => Cell::new(crate::CellValue::Number(f64::from(value))).with_format("0.00"),
            _ => Cell::new(crate::CellValue::Error(crate::ErrorValue::Calc)),
        };
        match kind % 3 {
            0 => Edit::Set(CellRef::new(row, column), cell),
            1 => {
                let cells = (0..size * 2)
                    .map(|i| (i % 4 != 3).then(|| cell.clone()))
                    .collect();
                Edit::Block(Block::new(CellRef::new(row, column), size, cells).unwrap())
            }
            _ => Edit::Clear(CellRange::new(
                CellRef::new(row, column),
                CellRef::new(row + size, column + size),
            )),
        }
    }

    /// A clear, a block landing out of order, and the same cells written
    /// over and over, on tiles held in their encoding, hold them so: what
    /// is held stays about the bytes of the tiles' places (made, or kept
    /// as every layer written, they took 20 and 40 times as much, past
    /// any budget).
    #[tokio::test]
    async fn clears_and_overwrites_hold_cells_as_bytes() {
        let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
        let dir = MemoryBlobStore::new().root();
        let options = SheetOptions::default().snapshot_interval(0);
        let sheet = Spreadsheet::open(log.clone(), dir.clone(), options)
            .await
            .unwrap();
        let number = |i: u32| Some(Cell::new(crate::CellValue::Number(f64::from(i % 10))));
        let rows = 2_000u32;
        let cells = (0..rows * 10).map(number).collect();
        let block = Block::new(CellRef::new(0, 0), 10, cells).unwrap();
        sheet.edit(vec![Edit::Block(block)]).await.unwrap();
        let column = CellRange::new(CellRef::new(0, 1), CellRef::new(rows, 1));
        sheet.edit(vec![Edit::Clear(column)]).await.unwrap();
        // Over the first block's rows again, from the top.
        let again = Block::new(CellRef::new(0, 0), 2, (0..rows * 2).map(number).collect()).unwrap();
        sheet.edit(vec![Edit::Block(again)]).await.unwrap();
        // The same cells overwritten many times over hold their places once.
        for _ in 0..40 {
            let over = Block::new(CellRef::new(0, 0), 10, (0..rows * 10).map(number).collect());
            sheet.edit(vec![Edit::Block(over.unwrap())]).await.unwrap();
        }
        let at = sheet.content().end;
        let loaded = sheet.write_snapshot(at).await.unwrap();
        let blobs = Blobs::new(MemoryBlobStore::new().root());
        let entries = Entries::Log { log: &*log, to: at };
        let budget = Budget {
            held: u64::MAX,
            kept: KEPT_BYTES,
        };
        let (streamed, peak) = write(&blobs, None, 0, &entries, &options, budget)
            .await
            .unwrap();
        assert_eq!(loaded, streamed);
        // 20,000 places of 2 bytes and a key: made, over a megabyte, and
        // every layer kept, over two.
        assert!(peak < 200_000, "held {peak} bytes");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// With a budget of a few cells' bytes, the streamed writer writes
        /// bands early and again when touched later (merging with what it wrote,
        /// clears since applied): the snapshot is still the loaded
        /// sheet's, byte for byte, with and without a base. Pass one keeps
        /// none, some or all of the entries for pass two, which reads the
        /// rest from the log.
        #[test]
        fn a_tight_budget_writes_the_same_snapshot(
            first in proptest::collection::vec((0..3u8, 0..20u32, 0..8u32, 1..4u32, any::<u8>()), 1..25),
            second in proptest::collection::vec((0..3u8, 0..20u32, 0..8u32, 1..4u32, any::<u8>()), 1..25),
            held in 1..400u64,
            kept in prop_oneof![Just(0usize), 1..2_000usize, Just(KEPT_BYTES)],
        ) {
            let budget = Budget { held, kept };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
                let loaded_dir = MemoryBlobStore::new().root();
                let record = Record::default();
                let streamed_dir: Arc<dyn BlobDir> = Arc::new(Recording {
                    inner: MemoryBlobStore::new().root(),
                    path: String::new(),
                    record: record.clone(),
                });
                let options = SheetOptions::default().tile_size(3, 2).snapshot_interval(0);
                let sheet = Spreadsheet::open(log.clone(), loaded_dir.clone(), options).await.unwrap();
                let mut base: Option<SnapshotValue> = None;
                for ops in [first, second] {
                    for op in ops {
                        sheet.edit(vec![edit(op)]).await.unwrap();
                    }
                    let at = sheet.content().end;
                    let loaded = sheet.write_snapshot(at).await.unwrap();
                    let blobs = Blobs::new(streamed_dir.clone());
                    let start = base.as_ref().map_or(0, |b| b.sequence_id);
                    let based = match base.clone() {
                        Some(value) => Some(blobs.read_base(value).await.unwrap()),
                        None => None,
                    };
                    let (streamed, _) = write(&blobs, based, start, &Entries::Log { log: &*log, to: at }, &options, budget)
                        .await
                        .unwrap();
                    prop_assert_eq!(&loaded, &streamed);
                    let written = blobs_of(&loaded_dir, &loaded.blob_id).await;
                    prop_assert_eq!(&written, &blobs_of(&streamed_dir, &streamed.blob_id).await);
                    // A tile's own name is only ever written with its final
                    // cells, never removed: another worker may have
                    // published the same snapshot already.
                    for (path, content) in record.lock().unwrap().drain(..) {
                        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
                        if name.starts_with('t') {
                            prop_assert_eq!(content.as_ref(), written.get(&name), "{}", path);
                        }
                    }
                    // The next round builds on this one, both ways.
                    sheet.set_cell(0, 0, Cell::new(crate::CellValue::Boolean(true))).await.unwrap();
                    log.set_metadata(at, infinisheet_event_log::MetadataUpdate::publish_snapshot(loaded.blob_id.clone())).await.unwrap();
                    sheet.sync().await.unwrap();
                    sheet.set_cell(1, 1, Cell::new(crate::CellValue::Boolean(false))).await.unwrap();
                    base = Some(loaded);
                }
                Ok(())
            })?;
        }
    }
}
