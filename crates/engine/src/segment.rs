//! The log segment: the edits since the segment's snapshot, with a map from
//! each cell to its newest edit. Append-only and shared by every content
//! value that uses it; each content sees only its first `visible` edits, so
//! an older content keeps its answers while the engine appends.

use crate::edit::Block;
use crate::reference::CellRange;
use crate::value::Cell;
use infinisheet_event_log::SequenceId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Hashes a cell key (row and column, 64 bits) with SplitMix64's mixer:
/// two multiplications, where SipHash took a tenth of a bulk import. Keys
/// are places in a sheet, not chosen to collide by whoever gains from it.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, key: u64) {
        let mut z = key;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
    }
}

type KeyMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;
use std::sync::{PoisonError, RwLock};

/// No earlier edit of the same cell.
const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Edit {
    key: u64,
    cell: Cell,
    /// The previous edit of the same cell in this segment, or `NONE`.
    prev: u32,
    /// The entry (counted from the segment's start) that made it.
    entry: u32,
}

#[derive(Debug, Default)]
struct Data {
    /// The cells set, in order; an entry may set none (a sheet's
    /// identity, a clear) or many (a block).
    edits: Vec<Edit>,
    /// How many entries the segment holds.
    entries: u32,
    /// Each edited cell's newest edit.
    newest: KeyMap,
    /// The ranges cleared, with their entries, in order.
    clears: Vec<(u32, CellRange)>,
    /// The blocks set, with their entries, in order: kept whole (shared
    /// by forks), never cell by cell.
    blocks: Vec<BlockEdit>,
}

/// A block entry of the segment.
#[derive(Debug, Clone)]
struct BlockEdit {
    entry: u32,
    block: Arc<Block>,
    /// The rectangle it spans.
    area: CellRange,
    /// The largest row and column of a cell it sets (none if all gaps).
    reach: Option<(u32, u32)>,
}

impl BlockEdit {
    fn new(entry: u32, block: Arc<Block>, reach: Option<(u32, u32)>) -> BlockEdit {
        BlockEdit {
            entry,
            area: block.area(),
            block,
            reach,
        }
    }

    /// The cell it sets at a place, if any.
    fn get(&self, row: u32, column: u32) -> Option<&Cell> {
        if !self.area.contains(row, column) {
            return None;
        }
        let origin = self.block.origin();
        let i = (row - origin.row) as usize * self.block.width() as usize
            + (column - origin.column) as usize;
        self.block.cells().get(i)?.as_ref()
    }
}

/// The key of a cell in the map.
pub(crate) fn cell_key(row: u32, column: u32) -> u64 {
    (u64::from(row) << 32) | u64::from(column)
}

fn split_key(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// A cell and its place.
pub(crate) type Placed = ((u32, u32), Cell);

/// What a segment knows of a cell.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup {
    /// Set by an entry of the segment.
    Set(Cell),
    /// Cleared by an entry of the segment after any edit of it.
    Cleared,
    /// Not touched by the segment: the snapshot holds it.
    Untouched,
}

/// One entry's change for [`Segment::push`].
pub(crate) enum Change<I> {
    /// Cells set (none for an entry that changes no cell).
    Cells(I),
    /// A block of cells set, and its [`reach`](Block::reach).
    Block(Arc<Block>, Option<(u32, u32)>),
    /// A range made blank.
    Clear(CellRange),
}

impl Data {
    fn append(&mut self, entry: u32, row: u32, column: u32, cell: Cell) {
        let key = cell_key(row, column);
        let index = self.edits.len() as u32;
        let prev = self.newest.insert(key, index).unwrap_or(NONE);
        self.edits.push(Edit {
            key,
            cell,
            prev,
            entry,
        });
    }

    /// The newest clear among the first `visible` entries covering the cell.
    fn cleared_at(&self, visible: u32, row: u32, column: u32) -> Option<u32> {
        self.clears
            .iter()
            .rev()
            .find(|(entry, range)| *entry < visible && range.contains(row, column))
            .map(|(entry, _)| *entry)
    }
}

#[derive(Debug)]
pub(crate) struct Segment {
    /// The sequence id of the first entry (the snapshot's, if there is one).
    pub(crate) start: SequenceId,
    data: RwLock<Data>,
}

impl Segment {
    pub(crate) fn new(start: SequenceId) -> Segment {
        Segment {
            start,
            data: RwLock::new(Data::default()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Data> {
        // The data is consistent after every statement that changes it.
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many entries it holds.
    pub(crate) fn len(&self) -> usize {
        self.read().entries as usize
    }

    /// How many cells the first `visible` entries set (a block's every
    /// place, gaps too): what holding them costs.
    pub(crate) fn weight(&self, visible: usize) -> u64 {
        let data = self.read();
        let visible = visible as u32;
        let singles = data.edits.iter().take_while(|e| e.entry < visible).count() as u64;
        let blocks: u64 = data
            .blocks
            .iter()
            .take_while(|b| b.entry < visible)
            .map(|b| b.block.cells().len() as u64)
            .sum();
        singles + blocks
    }

    /// Appends one entry seen by contents with more than `visible`
    /// entries. Gives the change back, appending nothing, if the segment
    /// already holds more than `visible` entries (a draft that was
    /// abandoned appended them): the caller then continues on a copy.
    pub(crate) fn push<I>(&self, visible: usize, change: Change<I>) -> Result<(), Change<I>>
    where
        I: IntoIterator<Item = ((u32, u32), Cell)>,
    {
        let mut data = self.data.write().unwrap_or_else(PoisonError::into_inner);
        if data.entries as usize != visible || data.entries >= NONE - 1 {
            return Err(change);
        }
        let entry = data.entries;
        match change {
            Change::Cells(cells) => {
                let cells = cells.into_iter();
                let (more, _) = cells.size_hint();
                data.edits.reserve(more);
                data.newest.reserve(more);
                for ((row, column), cell) in cells {
                    if data.edits.len() >= NONE as usize {
                        // 2^32 edits since a snapshot; the edits past
                        // them are kept by the log and the next load.
                        tracing::error!("a log segment holds 2^32 edits; reload the sheet");
                        break;
                    }
                    data.append(entry, row, column, cell);
                }
            }
            Change::Block(block, reach) => data.blocks.push(BlockEdit::new(entry, block, reach)),
            Change::Clear(range) => data.clears.push((entry, range)),
        }
        data.entries += 1;
        Ok(())
    }

    /// What the first `visible` entries say of a cell.
    pub(crate) fn get(&self, visible: usize, row: u32, column: u32) -> Lookup {
        let data = self.read();
        let visible = visible as u32;
        let mut found = data.newest.get(&cell_key(row, column)).copied();
        while let Some(index) = found {
            let edit = &data.edits[index as usize];
            if edit.entry < visible {
                break;
            }
            found = (edit.prev != NONE).then_some(edit.prev);
        }
        let mut newest = found.map(|index| {
            let edit = &data.edits[index as usize];
            (edit.entry, &edit.cell)
        });
        // A block newer than the newest single edit may set it.
        for block in data.blocks.iter().rev() {
            if newest.is_some_and(|(entry, _)| block.entry < entry) {
                break;
            }
            if block.entry >= visible {
                continue;
            }
            if let Some(cell) = block.get(row, column) {
                newest = Some((block.entry, cell));
                break;
            }
        }
        let cleared = if data.clears.is_empty() {
            None
        } else {
            data.cleared_at(visible, row, column)
        };
        match (newest, cleared) {
            (Some((entry, _)), Some(clear)) if clear > entry => Lookup::Cleared,
            (Some((_, cell)), _) => Lookup::Set(cell.clone()),
            (None, Some(_)) => Lookup::Cleared,
            (None, None) => Lookup::Untouched,
        }
    }

    /// A new segment starting `skip` entries in, holding the entries up to
    /// `visible`.
    pub(crate) fn fork(&self, skip: usize, visible: usize, start: SequenceId) -> Segment {
        let forked = Segment::new(start);
        let data = self.read();
        let (skip, visible) = (skip.min(visible) as u32, visible as u32);
        {
            let mut into = forked.data.write().unwrap_or_else(PoisonError::into_inner);
            for edit in data
                .edits
                .iter()
                .filter(|e| (skip..visible).contains(&e.entry))
            {
                let (row, column) = split_key(edit.key);
                into.append(edit.entry - skip, row, column, edit.cell.clone());
            }
            into.clears = data
                .clears
                .iter()
                .filter(|(entry, _)| (skip..visible).contains(entry))
                .map(|&(entry, range)| (entry - skip, range))
                .collect();
            into.blocks = data
                .blocks
                .iter()
                .filter(|b| (skip..visible).contains(&b.entry))
                .map(|b| BlockEdit {
                    entry: b.entry - skip,
                    ..b.clone()
                })
                .collect();
            into.entries = visible - skip;
        }
        forked
    }

    /// The cells the first `visible` entries set, in the order of their
    /// entries (so where a place comes twice, the later is the newer),
    /// left out where a later clear made them blank; and the ranges those
    /// entries cleared (which blank the snapshot's cells there).
    pub(crate) fn cells(&self, visible: usize) -> (Vec<Placed>, Vec<CellRange>) {
        let data = self.read();
        let visible = visible as u32;
        let blocks = data.blocks.iter().take_while(|b| b.entry < visible);
        let in_blocks: usize = blocks.clone().map(|b| b.block.cells().len()).sum();
        let mut cells = Vec::with_capacity(data.edits.len() + in_blocks);
        let cleared = |row, column, entry| {
            !data.clears.is_empty()
                && data
                    .cleared_at(visible, row, column)
                    .is_some_and(|c| c > entry)
        };
        let mut blocks = blocks.peekable();
        // Single edits and blocks in entry order (a cell edited twice
        // comes twice; the tile keeps the later).
        for edit in data.edits.iter().take_while(|e| e.entry < visible) {
            while let Some(block) = blocks.next_if(|b| b.entry < edit.entry) {
                push_block(&mut cells, block, &cleared);
            }
            let (row, column) = split_key(edit.key);
            if !cleared(row, column, edit.entry) {
                cells.push(((row, column), edit.cell.clone()));
            }
        }
        for block in blocks {
            push_block(&mut cells, block, &cleared);
        }
        let clears = data
            .clears
            .iter()
            .filter(|(entry, _)| *entry < visible)
            .map(|(_, range)| *range)
            .collect();
        (cells, clears)
    }

    /// The rows and columns in use after the first `visible` entries,
    /// starting from the snapshot's: as [`Extent`] grows and shrinks them,
    /// entry by entry.
    pub(crate) fn extent(&self, visible: usize, mut extent: Extent) -> Extent {
        let data = self.read();
        let visible = visible as u32;
        let mut clears = data.clears.iter().filter(|(e, _)| *e < visible).peekable();
        let mut blocks = data.blocks.iter().filter(|b| b.entry < visible).peekable();
        let mut edits = data
            .edits
            .iter()
            .take_while(|e| e.entry < visible)
            .peekable();
        // Entry by entry: each entry is a clear, a block or single edits.
        loop {
            let next = [
                clears.peek().map(|c| c.0),
                blocks.peek().map(|b| b.entry),
                edits.peek().map(|e| e.entry),
            ];
            let Some(entry) = next.into_iter().flatten().min() else {
                break;
            };
            if let Some((_, range)) = clears.next_if(|c| c.0 == entry) {
                extent.clear(*range);
            } else if let Some(block) = blocks.next_if(|b| b.entry == entry) {
                if let Some((row, column)) = block.reach {
                    extent.grow(row, column);
                }
            } else {
                while let Some(edit) = edits.next_if(|e| e.entry == entry) {
                    let (row, column) = split_key(edit.key);
                    extent.grow(row, column);
                }
            }
        }
        extent
    }
}

/// Appends the cells `block` sets that no later clear blanked.
fn push_block(
    cells: &mut Vec<Placed>,
    block: &BlockEdit,
    cleared: &impl Fn(u32, u32, u32) -> bool,
) {
    let origin = block.block.origin();
    let width = block.block.width() as usize;
    for (i, cell) in block.block.cells().iter().enumerate() {
        if let Some(cell) = cell {
            let (row, column) = (
                origin.row + (i / width) as u32,
                origin.column + (i % width) as u32,
            );
            if !cleared(row, column, block.entry) {
                cells.push(((row, column), cell.clone()));
            }
        }
    }
}

/// The rows and columns a sheet uses: one more than the largest row and
/// column index holding a cell. Setting a cell grows it; clearing a range
/// that reaches the last row (or column) across every column (or row)
/// shrinks it to the range's start, so clearing everything makes it 0 by
/// 0. Other clears leave it as it is: an upper bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) rows: u64,
    pub(crate) columns: u64,
}

impl Extent {
    pub(crate) fn grow(&mut self, row: u32, column: u32) {
        self.rows = self.rows.max(u64::from(row) + 1);
        self.columns = self.columns.max(u64::from(column) + 1);
    }

    pub(crate) fn clear(&mut self, range: CellRange) {
        let all_rows = range.first.row == 0 && u64::from(range.last.row) + 1 >= self.rows;
        let all_columns =
            range.first.column == 0 && u64::from(range.last.column) + 1 >= self.columns;
        if all_rows && all_columns {
            *self = Extent::default();
            return;
        }
        if all_columns && u64::from(range.last.row) + 1 >= self.rows {
            self.rows = self.rows.min(u64::from(range.first.row));
        }
        if all_rows && u64::from(range.last.column) + 1 >= self.columns {
            self.columns = self.columns.min(u64::from(range.first.column));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::CellValue;

    fn number(n: f64) -> Cell {
        Cell::new(CellValue::Number(n))
    }

    fn set(segment: &Segment, visible: usize, row: u32, column: u32, cell: Cell) -> bool {
        segment
            .push(visible, Change::Cells([((row, column), cell)]))
            .is_ok()
    }

    #[test]
    fn each_view_sees_only_its_edits() {
        let segment = Segment::new(10);
        assert!(set(&segment, 0, 1, 1, number(1.0)));
        assert!(set(&segment, 1, 1, 1, number(2.0)));
        assert!(set(&segment, 2, 0, 5, number(3.0)));
        assert!(
            !set(&segment, 1, 9, 9, number(9.0)),
            "a stale view appended"
        );
        assert_eq!(segment.get(0, 1, 1), Lookup::Untouched);
        assert_eq!(segment.get(1, 1, 1), Lookup::Set(number(1.0)));
        assert_eq!(segment.get(3, 1, 1), Lookup::Set(number(2.0)));
        assert_eq!(segment.get(2, 0, 5), Lookup::Untouched);
        let (cells, _) = segment.cells(2);
        assert_eq!(
            cells,
            vec![((1, 1), number(1.0)), ((1, 1), number(2.0))],
            "in entry order; the tile keeps the later"
        );
        let forked = segment.fork(1, 3, 11);
        assert_eq!((forked.start, forked.len()), (11, 2));
        assert_eq!(forked.get(2, 1, 1), Lookup::Set(number(2.0)));
        assert_eq!(forked.get(2, 0, 5), Lookup::Set(number(3.0)));
    }

    #[test]
    fn blocks_and_clears_are_one_entry_each() {
        let range = |text: &str| text.parse::<CellRange>().unwrap_or_else(|e| panic!("{e}"));
        let segment = Segment::new(0);
        let block: Vec<_> = (0..4).map(|i| ((i, i), number(f64::from(i)))).collect();
        assert!(segment.push(0, Change::Cells(block)).is_ok());
        assert!(
            segment
                .push(1, Change::<Vec<_>>::Clear(range("A1:B2")))
                .is_ok()
        );
        assert!(set(&segment, 2, 1, 1, number(9.0)));
        assert!(segment.push(3, Change::<Vec<_>>::Cells(vec![])).is_ok());
        assert_eq!(segment.len(), 4);
        assert_eq!(segment.get(1, 0, 0), Lookup::Set(number(0.0)));
        assert_eq!(segment.get(2, 0, 0), Lookup::Cleared);
        assert_eq!(
            segment.get(2, 1, 0),
            Lookup::Cleared,
            "blank in the snapshot too"
        );
        assert_eq!(segment.get(4, 1, 1), Lookup::Set(number(9.0)));
        assert_eq!(segment.get(4, 3, 3), Lookup::Set(number(3.0)));
        let (mut cells, clears) = segment.cells(4);
        cells.sort_by_key(|(k, _)| *k);
        assert_eq!(
            cells,
            vec![
                ((1, 1), number(9.0)),
                ((2, 2), number(2.0)),
                ((3, 3), number(3.0))
            ]
        );
        assert_eq!(clears, vec![range("A1:B2")]);
        let forked = segment.fork(1, 4, 1);
        assert_eq!(forked.len(), 3);
        assert_eq!(forked.get(1, 0, 0), Lookup::Cleared);
        assert_eq!(forked.get(3, 3, 3), Lookup::Untouched);
        let extent = segment.extent(2, Extent::default());
        assert_eq!((extent.rows, extent.columns), (4, 4));
        let cleared = segment.fork(0, 1, 0);
        assert!(
            cleared
                .push(1, Change::<Vec<_>>::Clear(range("A1:D4")))
                .is_ok()
        );
        assert_eq!(cleared.extent(2, Extent::default()), Extent::default());
    }

    #[test]
    fn clears_shrink_the_extent_only_from_its_end() {
        let range = |text: &str| text.parse::<CellRange>().unwrap_or_else(|e| panic!("{e}"));
        let mut extent = Extent {
            rows: 10,
            columns: 5,
        };
        extent.clear(range("B2:C3"));
        assert_eq!(
            extent,
            Extent {
                rows: 10,
                columns: 5
            }
        );
        extent.clear(range("A8:Z20"));
        assert_eq!(
            extent,
            Extent {
                rows: 7,
                columns: 5
            }
        );
        extent.clear(range("D1:E7"));
        assert_eq!(
            extent,
            Extent {
                rows: 7,
                columns: 3
            }
        );
        extent.clear(range("A1:XFD1048576"));
        assert_eq!(extent, Extent::default());
    }
}
