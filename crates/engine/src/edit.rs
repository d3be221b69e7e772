//! Edits: one cell, a block of cells (a paste, an import), or clearing a
//! range. Each is one log entry.

use crate::reference::{CellRange, CellRef};
use crate::value::Cell;

/// A rectangle of cells set by one log entry: rows of `width` cells, from
/// `origin` right and down, row by row; a gap (`None`) leaves its cell as
/// it is. The last row may be short.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    origin: CellRef,
    width: u32,
    cells: Vec<Option<Cell>>,
}

/// The most cells one block holds (a block entry is read whole, and a
/// blank cell takes a few bytes in the log but tens in memory: a block
/// claiming hundreds of millions of cells in a small entry must be
/// refused before anything is allocated). An import writes blocks of
/// 100,000.
pub const MAX_BLOCK_CELLS: usize = 1 << 20;

/// A block that does not fit in the sheet, has no width, or holds too many
/// cells.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Rows of no cells.
    #[error("a block is at least one cell wide")]
    NoWidth,
    /// More cells than a block may hold ([`MAX_BLOCK_CELLS`]).
    #[error("a block of {cells} cells: a block holds at most {MAX_BLOCK_CELLS} (split it)")]
    TooManyCells {
        /// Its cells.
        cells: usize,
    },
    /// The block reaches past the last row or column (2^32).
    #[error("a block of {cells} cells, {width} wide, from {origin} reaches past the sheet's edge")]
    TooLarge {
        /// Where it starts.
        origin: CellRef,
        /// Its width.
        width: u32,
        /// Its cells.
        cells: usize,
    },
}

impl Block {
    /// The block of `cells`, row by row, `width` a row, from `origin`.
    ///
    /// # Errors
    ///
    /// [`BlockError`] if `width` is 0, the block reaches past the sheet,
    /// or it holds more than [`MAX_BLOCK_CELLS`].
    pub fn new(origin: CellRef, width: u32, cells: Vec<Option<Cell>>) -> Result<Block, BlockError> {
        Block::check(origin, width, cells.len())?;
        Ok(Block {
            origin,
            width,
            cells,
        })
    }

    /// What [`new`](Block::new) checks of a block of `count` cells.
    pub(crate) fn check(origin: CellRef, width: u32, count: usize) -> Result<(), BlockError> {
        if width == 0 {
            return Err(BlockError::NoWidth);
        }
        if count > MAX_BLOCK_CELLS {
            return Err(BlockError::TooManyCells { cells: count });
        }
        let rows = (count as u64).div_ceil(u64::from(width));
        let last_row = u64::from(origin.row) + rows.saturating_sub(1);
        let last_column = u64::from(origin.column) + u64::from(width) - 1;
        if last_row > u64::from(u32::MAX) || last_column > u64::from(u32::MAX) {
            return Err(BlockError::TooLarge {
                origin,
                width,
                cells: count,
            });
        }
        Ok(())
    }

    /// The block of `rows` from `origin`, as wide as its widest row
    /// (shorter rows end in gaps).
    ///
    /// # Errors
    ///
    /// As [`new`](Block::new); rows of no cells at all are a width of 0.
    pub fn from_rows(origin: CellRef, rows: Vec<Vec<Option<Cell>>>) -> Result<Block, BlockError> {
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let width = u32::try_from(width).map_err(|_| BlockError::TooLarge {
            origin,
            width: u32::MAX,
            cells: width,
        })?;
        // Its size is checked before anything is allocated: a tall block
        // of short rows that one wide row widens is refused, not built.
        if width == 0 {
            return Err(BlockError::NoWidth);
        }
        let area = rows.len().saturating_mul(width as usize);
        if area > MAX_BLOCK_CELLS {
            return Err(BlockError::TooManyCells { cells: area });
        }
        let mut cells = Vec::with_capacity(area);
        for mut row in rows {
            row.resize(width as usize, None);
            cells.extend(row);
        }
        Block::new(origin, width, cells)
    }

    /// Its origin, width and cells, moved out.
    pub(crate) fn into_parts(self) -> (CellRef, u32, Vec<Option<Cell>>) {
        (self.origin, self.width, self.cells)
    }

    /// The top-left cell.
    pub fn origin(&self) -> CellRef {
        self.origin
    }

    /// Cells a row.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The rectangle it spans, gaps and a short last row included.
    pub fn area(&self) -> CellRange {
        let rows = self.cells.len().div_ceil(self.width as usize);
        // `new` checked that every place fits.
        // `width - 1` first: a block ending in the last column reaches
        // 2^32 - 1, and the sum on the way must not pass it.
        let last = CellRef::new(
            self.origin.row + rows.saturating_sub(1) as u32,
            self.origin.column + (self.width - 1),
        );
        CellRange::new(self.origin, last)
    }

    /// The cells, row by row (gaps `None`).
    pub fn cells(&self) -> &[Option<Cell>] {
        &self.cells
    }

    /// The cells it sets, with their places.
    pub fn iter(&self) -> impl Iterator<Item = (CellRef, &Cell)> {
        let (origin, width) = (self.origin, self.width as usize);
        self.cells.iter().enumerate().filter_map(move |(i, cell)| {
            let cell = cell.as_ref()?;
            // `new` checked that every place fits.
            let row = origin.row + (i / width) as u32;
            let column = origin.column + (i % width) as u32;
            Some((CellRef::new(row, column), cell))
        })
    }

    /// How many cells it sets (gaps left out).
    pub fn len(&self) -> usize {
        self.cells.iter().filter(|c| c.is_some()).count()
    }

    /// Whether it sets no cell.
    pub fn is_empty(&self) -> bool {
        self.cells.iter().all(Option::is_none)
    }

    /// The largest row and the largest column of a cell it sets (none if
    /// it is all gaps).
    pub(crate) fn reach(&self) -> Option<(u32, u32)> {
        let mut reach: Option<(u32, u32)> = None;
        for (at, _) in self.iter() {
            reach = Some(reach.map_or((at.row, at.column), |(r, c)| {
                (r.max(at.row), c.max(at.column))
            }));
        }
        reach
    }
}

/// One change of a sheet, written as one log entry by
/// [`Spreadsheet::edit`](crate::Spreadsheet::edit).
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Set one cell.
    Set(CellRef, Cell),
    /// Set a block of cells.
    Block(Block),
    /// Make every cell of a range blank (as if never set).
    Clear(CellRange),
}

impl Edit {
    /// How many cells it sets or may clear (a clear counts as one): what
    /// it weighs towards the next snapshot.
    pub(crate) fn weight(&self) -> u64 {
        match self {
            Edit::Block(block) => block.cells.len() as u64,
            Edit::Set(..) | Edit::Clear(_) => 1,
        }
    }
}
