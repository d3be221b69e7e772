//! The immutable content of a sheet: what a reader takes and asks, getting
//! consistent answers however the engine moves on.

use crate::format::{Index, Tile};
use crate::reference::CellRange;
use crate::segment::{Change, Extent, Lookup, Segment};
use crate::value::Cell;
use infinisheet_event_log::{SequenceId, SnapshotValue};
use std::collections::HashMap;
use std::sync::Arc;

/// A snapshot a content is built on: where it is and its index.
#[derive(Debug)]
pub(crate) struct Base {
    pub(crate) value: SnapshotValue,
    pub(crate) index: Index,
}

impl Base {
    /// The rows and columns the snapshot uses.
    pub(crate) fn extent(&self) -> Extent {
        Extent {
            rows: self.index.rows,
            columns: self.index.columns,
        }
    }

    /// The tiles its index names, by position.
    pub(crate) fn tile_map(&self) -> std::collections::BTreeMap<TileKey, crate::format::TileRef> {
        self.index
            .tiles
            .iter()
            .map(|t| ((t.tile_row, t.tile_column), t.clone()))
            .collect()
    }

    /// The tiles of this snapshot (present in its index) that hold cells
    /// of `area`.
    pub(crate) fn tiles_covering(&self, area: CellRange) -> Vec<TileKey> {
        let index = &self.index;
        let tile_rows = (area.first.row / index.tile_rows)..=(area.last.row / index.tile_rows);
        let tile_columns =
            (area.first.column / index.tile_columns)..=(area.last.column / index.tile_columns);
        index
            .tiles
            .iter()
            .map(|t| (t.tile_row, t.tile_column))
            .filter(|(r, c)| tile_rows.contains(r) && tile_columns.contains(c))
            .collect()
    }
}

/// Position of a tile: (tile row, tile column).
pub(crate) type TileKey = (u32, u32);

/// What a [`Content`] knows about one cell.
#[derive(Clone, Debug, PartialEq)]
pub enum CellState {
    /// The cell holds this (possibly [`CellValue::Empty`](crate::CellValue::Empty)).
    Set(Cell),
    /// Nothing was ever written to the cell.
    Blank,
    /// The cell lies in a snapshot tile that is not loaded; move the
    /// viewport over it to load it.
    NotLoaded,
}

impl CellState {
    /// Whether the cell is known (set or blank), not waiting for a tile.
    pub fn is_loaded(&self) -> bool {
        !matches!(self, CellState::NotLoaded)
    }

    /// The cell, if it is known to be set.
    pub fn cell(&self) -> Option<&Cell> {
        match self {
            CellState::Set(cell) => Some(cell),
            _ => None,
        }
    }
}

/// One consistent state of a sheet: the snapshot it starts from, the edits
/// since, and the snapshot tiles loaded so far. Cheap to clone and to keep;
/// never changes. Get the newest from
/// [`Spreadsheet::content`](crate::Spreadsheet::content).
#[derive(Clone, Debug)]
pub struct Content {
    pub(crate) end: SequenceId,
    pub(crate) segment: Arc<Segment>,
    /// How many of the segment's edits this content holds.
    pub(crate) visible: usize,
    pub(crate) base: Option<Arc<Base>>,
    pub(crate) tiles: Arc<HashMap<TileKey, Arc<Tile>>>,
    pub(crate) extent: Extent,
}

impl Content {
    pub(crate) fn empty(start: SequenceId, base: Option<Arc<Base>>) -> Content {
        let extent = base.as_ref().map_or_else(Extent::default, |b| b.extent());
        Content {
            end: start,
            segment: Arc::new(Segment::new(start)),
            visible: 0,
            base,
            tiles: Arc::default(),
            extent,
        }
    }

    /// The sequence id of the next log entry: every entry before it is in
    /// this content.
    pub fn end(&self) -> SequenceId {
        self.end
    }

    /// One more than the largest row index holding a cell (0 if none). A
    /// clear that does not reach the last row across every column leaves
    /// it as it was, so after one it may count blank rows at the end.
    pub fn row_count(&self) -> u64 {
        self.extent.rows
    }

    /// One more than the largest column index holding a cell (0 if none);
    /// as [`row_count`](Content::row_count) after a clear.
    pub fn column_count(&self) -> u64 {
        self.extent.columns
    }

    /// The range from A1 to the last row and column in use, if any cell
    /// is ([`row_count`](Content::row_count) by
    /// [`column_count`](Content::column_count)).
    pub fn used_range(&self) -> Option<CellRange> {
        CellRange::new(
            crate::CellRef::new(0, 0),
            crate::CellRef::new(u32::MAX, u32::MAX),
        )
        .clip(self.row_count(), self.column_count())
    }

    /// `range` as a reader takes it: whole rows and columns (`A:C`, `2:5`)
    /// cut to the rows and columns in use (`None` if that leaves nothing),
    /// any other range as it is.
    pub fn resolve(&self, range: CellRange) -> Option<CellRange> {
        let limit = |last: u32, used: u64| {
            if last == u32::MAX {
                used
            } else {
                u64::from(last) + 1
            }
        };
        range.clip(
            limit(range.last.row, self.row_count()),
            limit(range.last.column, self.column_count()),
        )
    }

    /// The snapshot this content starts from, if any.
    pub fn snapshot(&self) -> Option<&SnapshotValue> {
        self.base.as_ref().map(|b| &b.value)
    }

    /// Where the current log segment starts (the snapshot's sequence id, or
    /// the log's start), and how many edits it holds.
    pub fn segment(&self) -> (SequenceId, usize) {
        (self.segment.start, self.visible)
    }

    /// How many snapshot tiles are loaded.
    pub fn loaded_tiles(&self) -> usize {
        self.tiles.len()
    }

    /// The cell at zero-based `row` and `column`.
    pub fn cell(&self, row: u32, column: u32) -> CellState {
        match self.segment.get(self.visible, row, column) {
            Lookup::Set(cell) => return CellState::Set(cell),
            Lookup::Cleared => return CellState::Blank,
            Lookup::Untouched => {}
        }
        let Some(base) = &self.base else {
            return CellState::Blank;
        };
        let index = &base.index;
        let key = (row / index.tile_rows, column / index.tile_columns);
        if index.tile(key.0, key.1).is_none() {
            return CellState::Blank;
        }
        match self.tiles.get(&key) {
            Some(tile) => tile
                .get(row % index.tile_rows, column % index.tile_columns)
                .map_or(CellState::Blank, |cell| CellState::Set(cell.clone())),
            None => CellState::NotLoaded,
        }
    }

    /// Adds the entry at `end`, setting a block of cells, to this draft.
    pub(crate) fn apply_block(&mut self, block: Arc<crate::edit::Block>) {
        let reach = block.reach();
        if let Some((row, column)) = reach {
            self.extent.grow(row, column);
        }
        self.push(Change::<std::iter::Empty<_>>::Block(block, reach));
    }

    /// Adds the entry at `end`, which changes no cell, to this draft.
    pub(crate) fn apply_mark(&mut self) {
        self.push(Change::Cells(std::iter::empty()));
    }

    /// Adds the entry at `end`, making `range` blank, to this draft.
    pub(crate) fn apply_clear(&mut self, range: CellRange) {
        self.extent.clear(range);
        self.push(Change::<std::iter::Empty<_>>::Clear(range));
    }

    /// Adds the entry at `end`, setting one cell, to this draft.
    pub(crate) fn apply_one(&mut self, row: u32, column: u32, cell: Cell) {
        self.extent.grow(row, column);
        self.push(Change::Cells(std::iter::once(((row, column), cell))));
    }

    fn push<I: IntoIterator<Item = ((u32, u32), Cell)>>(&mut self, change: Change<I>) {
        if let Err(change) = self.segment.push(self.visible, change) {
            // Another draft appended past us: continue on a copy.
            let copy = self.segment.fork(0, self.visible, self.segment.start);
            // A fresh copy holds exactly `visible` entries.
            let _ = copy.push(self.visible, change);
            self.segment = Arc::new(copy);
        }
        self.visible += 1;
        self.end += 1;
    }

    /// Moves this draft onto `base`, a snapshot at `base.value.sequence_id`
    /// within the segment: the new segment holds the edits from there on.
    pub(crate) fn fork(&mut self, base: Arc<Base>, tiles: HashMap<TileKey, Arc<Tile>>) {
        let at = base.value.sequence_id;
        let skip = (at - self.segment.start) as usize;
        let segment = self.segment.fork(skip, self.visible, at);
        self.visible = segment.len();
        self.segment = Arc::new(segment);
        // The extent stays: the snapshot's, grown and shrunk by the
        // entries after it, is what this draft holds already.
        self.base = Some(base);
        self.tiles = Arc::new(tiles);
    }

    /// Whether `base` is the snapshot this content starts from.
    pub(crate) fn same_base(&self, base: Option<&Arc<Base>>) -> bool {
        match (&self.base, base) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}
