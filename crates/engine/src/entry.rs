//! The log entries of a sheet: one byte of version tag, then the entry in
//! postcard. A new entry kind or field gets a new tag; old tags stay
//! readable. Tag 1 is a cell edit; tag 2 the sheet's identity (16 bytes,
//! little-endian), the first entry of a log made by
//! [`Spreadsheet::create`](crate::Spreadsheet::create); tag 3 a block of
//! cells (LZ4 over varints and the compact cells of `compact.rs`); tag 4
//! clearing a range (four varints: first row, first column, last row, last
//! column). Tag 5 is the time an entry was made (a varint of milliseconds
//! since the Unix epoch) before the entry itself, tag and all: the engine
//! writes every entry so, and readers that do not ask for the time see the
//! entry alone.

use crate::compact::{Reader, compress, decompress, put_cell, varint};
use crate::edit::{Block, Edit};
use crate::identity::SheetId;
use crate::reference::{CellRange, CellRef};
use crate::value::{Cell, CellValue};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The version tag written before every entry this version encodes.
pub const ENTRY_VERSION: u8 = 1;

/// The version tag of an identity entry.
pub const IDENTITY_TAG: u8 = 2;

/// The version tag of a block entry.
pub const BLOCK_TAG: u8 = 3;

/// The version tag of a clear entry.
pub const CLEAR_TAG: u8 = 4;

/// The version tag of an entry's time, written before the entry.
pub const TIMED_TAG: u8 = 5;

/// `entry` (encoded) with the time it was made, `at`: [`TIMED_TAG`], the
/// milliseconds since the Unix epoch as a varint, then the entry. A time
/// before the epoch is written as the epoch.
pub fn timed(at: SystemTime, entry: &[u8]) -> Bytes {
    let millis = at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    });
    let mut bytes = Vec::with_capacity(entry.len() + 8);
    bytes.push(TIMED_TAG);
    varint(&mut bytes, millis);
    bytes.extend_from_slice(entry);
    Bytes::from(bytes)
}

/// When the entry `bytes` was made, if it carries its time (entries of
/// older versions do not).
///
/// # Errors
///
/// [`EntryError::Malformed`] if the time does not decode.
pub fn entry_time(bytes: &[u8]) -> Result<Option<SystemTime>, EntryError> {
    match split_time(bytes)? {
        (Some(millis), _) => Ok(UNIX_EPOCH.checked_add(Duration::from_millis(millis))),
        (None, _) => Ok(None),
    }
}

/// The time in milliseconds an entry carries, if any, and the entry's own
/// bytes after it.
fn split_time(bytes: &[u8]) -> Result<(Option<u64>, &[u8]), EntryError> {
    match bytes.split_first() {
        Some((&TIMED_TAG, body)) => {
            let mut reader = Reader::new(body);
            let millis = reader
                .varint()
                .map_err(|e| EntryError::Malformed(format!("the entry's time: {e}")))?;
            let rest = reader.rest();
            if rest.first() == Some(&TIMED_TAG) {
                return Err(EntryError::Malformed("the entry has two times".into()));
            }
            Ok((Some(millis), rest))
        }
        _ => Ok((None, bytes)),
    }
}

/// One edit of a sheet, as stored in its event log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SheetEntry {
    /// Set one cell's value and format (the original's
    /// `SetCellValueAndFormat`).
    SetCellValueAndFormat {
        /// Zero-based row.
        row: u32,
        /// Zero-based column.
        column: u32,
        /// The new value.
        value: CellValue,
        /// The new format; `None` clears it.
        format: Option<String>,
    },
    /// The sheet whose log this is: the first entry of the log, changing
    /// no cell. Encoded under its own tag, not in postcard.
    #[serde(skip)]
    Identity {
        /// The sheet's identity.
        sheet: SheetId,
    },
    /// Set a block of cells (a paste, an import). Encoded under its own
    /// tag.
    #[serde(skip)]
    Block(Block),
    /// Make every cell of a range blank. Encoded under its own tag.
    #[serde(skip)]
    Clear {
        /// The cells made blank.
        range: CellRange,
    },
}

/// A log entry that is not a sheet entry this version can read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The entry has no bytes at all.
    #[error("the entry is empty")]
    Empty,
    /// The entry was written by a newer version (or is not a sheet entry).
    #[error(
        "the entry has version tag {0}; this version reads tags {ENTRY_VERSION} to {TIMED_TAG}"
    )]
    UnknownVersion(u8),
    /// The bytes after the tag do not decode.
    #[error("the entry does not decode: {0}")]
    Malformed(String),
}

impl SheetEntry {
    /// The entry that sets the cell at `row`, `column` to `cell`.
    pub fn set_cell(row: u32, column: u32, cell: Cell) -> SheetEntry {
        SheetEntry::SetCellValueAndFormat {
            row,
            column,
            value: cell.value,
            format: cell.format,
        }
    }

    /// The identity entry of the sheet `sheet`.
    pub fn identity(sheet: SheetId) -> SheetEntry {
        SheetEntry::Identity { sheet }
    }

    /// The entry's bytes: the version tag, then postcard (an identity: its
    /// tag, then the 16 bytes of the id).
    pub fn encode(&self) -> Bytes {
        match self {
            SheetEntry::SetCellValueAndFormat { .. } => {}
            SheetEntry::Identity { sheet } => {
                let mut bytes = vec![IDENTITY_TAG];
                bytes.extend_from_slice(&sheet.as_u128().to_le_bytes());
                return Bytes::from(bytes);
            }
            SheetEntry::Block(block) => return encode_block(block),
            SheetEntry::Clear { range } => return encode_clear(*range),
        }
        let mut bytes = vec![ENTRY_VERSION];
        // Writing into a Vec cannot fail, and every field serializes.
        bytes = postcard::to_extend(self, bytes).unwrap_or_else(|_| vec![ENTRY_VERSION]);
        Bytes::from(bytes)
    }

    /// Reads an entry written by [`encode`](SheetEntry::encode), with or
    /// without its time ([`timed`]; [`entry_time`] reads that).
    ///
    /// # Errors
    ///
    /// [`EntryError`] if the bytes are empty, carry another version tag, or
    /// do not decode (trailing bytes included).
    pub fn decode(bytes: &[u8]) -> Result<SheetEntry, EntryError> {
        let (_, bytes) = split_time(bytes)?;
        let (&tag, body) = bytes.split_first().ok_or(EntryError::Empty)?;
        if tag == IDENTITY_TAG {
            let id: [u8; 16] = body.try_into().map_err(|_| {
                EntryError::Malformed(format!(
                    "an identity entry holds 16 bytes, not {}",
                    body.len()
                ))
            })?;
            return Ok(SheetEntry::identity(SheetId::from_u128(
                u128::from_le_bytes(id),
            )));
        }
        if tag == BLOCK_TAG {
            return decode_block(body).map_err(EntryError::Malformed);
        }
        if tag == CLEAR_TAG {
            let mut reader = Reader::new(body);
            let mut n = || reader.u32("reference").map_err(EntryError::Malformed);
            let first = CellRef::new(n()?, n()?);
            let last = CellRef::new(n()?, n()?);
            if !reader.is_empty() {
                return Err(EntryError::Malformed("bytes follow the range".into()));
            }
            if first.row > last.row || first.column > last.column {
                return Err(EntryError::Malformed(format!(
                    "the range {first}:{last} is upside down"
                )));
            }
            return Ok(SheetEntry::Clear {
                range: CellRange::new(first, last),
            });
        }
        if tag != ENTRY_VERSION {
            return Err(EntryError::UnknownVersion(tag));
        }
        match postcard::take_from_bytes::<SheetEntry>(body) {
            Ok((entry, [])) => Ok(entry),
            Ok((_, rest)) => Err(EntryError::Malformed(format!(
                "{} bytes follow the entry",
                rest.len()
            ))),
            Err(err) => Err(EntryError::Malformed(err.to_string())),
        }
    }
}

/// The bytes of a block entry (tag 3).
pub(crate) fn encode_block(block: &Block) -> Bytes {
    let cells = block.cells();
    let mut body = Vec::with_capacity(16 + cells.len() * 8);
    varint(&mut body, u64::from(block.origin().row));
    varint(&mut body, u64::from(block.origin().column));
    varint(&mut body, u64::from(block.width()));
    varint(&mut body, cells.len() as u64);
    let mut scratch = String::new();
    for cell in cells {
        put_cell(&mut body, cell.as_ref(), &mut scratch);
    }
    let mut bytes = vec![BLOCK_TAG];
    bytes.extend(compress(&body));
    Bytes::from(bytes)
}

/// Rows of cells written straight into a block entry's encoding, never
/// made into [`Cell`]s: how an import builds its blocks. Each row is the
/// cells pushed since the last [`end_row`](BlockRows::end_row); a block
/// of some of them ([`BulkEntries::push_rows`](crate::BulkEntries::push_rows))
/// is as wide as its widest, shorter rows ending in gaps, and is the entry
/// [`Block::from_rows`] of the same cells makes, byte for byte.
#[derive(Clone, Debug, Default)]
pub struct BlockRows {
    /// The cells of every row, one after another.
    body: Vec<u8>,
    /// Where each ended row's cells end in `body`, and how many it has.
    rows: Vec<(usize, u32)>,
    /// Cells pushed to the row not yet ended.
    open: u32,
    /// Cells pushed in all.
    cells: u64,
    scratch: String,
}

impl BlockRows {
    /// No rows.
    pub fn new() -> BlockRows {
        BlockRows::default()
    }

    /// Appends the cell [`CellValue::parse`] makes of `text`, as that cell
    /// would be written, without making it: the text's own bytes whether
    /// it is text or a number (a number is only one if `text` is its
    /// shortest form).
    pub fn push_parsed(&mut self, text: &str) {
        let kind = match crate::value::parsed_kind(text) {
            ParsedKind::Other(value) => return self.push_cell(&Cell::new(value)),
            ParsedKind::Number(_) => 3,
            ParsedKind::Text => 2,
        };
        varint(&mut self.body, ((text.len() as u64) << 3) | kind);
        self.body.extend_from_slice(text.as_bytes());
        self.open += 1;
    }

    /// Appends a text cell holding `text`.
    pub fn push_text(&mut self, text: &str) {
        varint(&mut self.body, ((text.len() as u64) << 3) | 2);
        self.body.extend_from_slice(text.as_bytes());
        self.open += 1;
    }

    /// Appends `cell`.
    pub fn push_cell(&mut self, cell: &Cell) {
        put_cell(&mut self.body, Some(cell), &mut self.scratch);
        self.open += 1;
    }

    /// Ends the row: the cells pushed since the last end are its cells
    /// (none: an empty row).
    pub fn end_row(&mut self) {
        self.rows.push((self.body.len(), self.open));
        self.cells += u64::from(self.open);
        self.open = 0;
    }

    /// The rows ended.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// The cells of the rows ended.
    pub fn cells(&self) -> u64 {
        self.cells
    }

    /// The cells of row `row` (0 past the last).
    pub fn row_cells(&self, row: usize) -> u32 {
        self.rows.get(row).map_or(0, |r| r.1)
    }

    /// The widest of the rows ended (0: none, or only empty ones).
    pub fn width(&self) -> u32 {
        self.rows.iter().map(|r| r.1).max().unwrap_or(0)
    }

    /// Forgets every row.
    pub fn clear(&mut self) {
        self.body.clear();
        self.rows.clear();
        self.open = 0;
        self.cells = 0;
    }

    /// The block entry of rows `rows` with its first cell at `origin` (the
    /// entry's bytes after its time).
    pub(crate) fn encode(
        &self,
        origin: CellRef,
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<u8>, crate::BlockError> {
        let mut start = match rows.start {
            0 => 0,
            i => self.rows.get(i - 1).map_or(self.body.len(), |r| r.0),
        };
        let picked = self.rows.get(rows).unwrap_or_default();
        let width = picked.iter().map(|r| r.1).max().unwrap_or(0);
        let count = picked.len().saturating_mul(width as usize);
        Block::check(origin, width, count)?;
        let cells: usize = picked.iter().map(|r| r.1 as usize).sum();
        let end = picked.last().map_or(start, |r| r.0);
        let mut body = Vec::with_capacity(20 + (end - start) + (count - cells));
        varint(&mut body, u64::from(origin.row));
        varint(&mut body, u64::from(origin.column));
        varint(&mut body, u64::from(width));
        varint(&mut body, count as u64);
        for &(end, n) in picked {
            body.extend_from_slice(&self.body[start..end]);
            // A short row ends in gaps.
            body.resize(body.len() + (width - n) as usize, 0);
            start = end;
        }
        let mut bytes = vec![BLOCK_TAG];
        bytes.extend(compress(&body));
        Ok(bytes)
    }
}

/// What [`CellValue::parse`] makes of a text, told without making it.
pub(crate) enum ParsedKind {
    /// The text itself.
    Text,
    /// A number whose shortest form is the text.
    Number(f64),
    /// Another value (empty, a boolean, an error value).
    Other(CellValue),
}

/// The bytes of a clear entry (tag 4).
pub(crate) fn encode_clear(range: CellRange) -> Bytes {
    let mut bytes = vec![CLEAR_TAG];
    for n in [
        range.first.row,
        range.first.column,
        range.last.row,
        range.last.column,
    ] {
        varint(&mut bytes, u64::from(n));
    }
    Bytes::from(bytes)
}

/// The bytes of the entry making `edit`.
pub(crate) fn encode_edit(edit: &Edit) -> Bytes {
    match edit {
        Edit::Set(at, cell) => SheetEntry::set_cell(at.row, at.column, cell.clone()).encode(),
        Edit::Block(block) => encode_block(block),
        Edit::Clear(range) => encode_clear(*range),
    }
}

/// Where an entry writes, read without making its cells
/// ([`SheetEntry::shape`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Shape {
    /// The sheet's identity: no cell.
    Identity,
    /// Cells set in rows `first_row` to `last_row` (a block's rectangle),
    /// the largest row and column holding one being `reach` (none: all
    /// gaps), as [`Block::reach`] says.
    Cells {
        first_row: u32,
        last_row: u32,
        reach: Option<(u32, u32)>,
    },
    /// A range made blank.
    Clear(CellRange),
}

impl SheetEntry {
    /// Where the entry writes, as [`decode`](SheetEntry::decode) would
    /// say, without making a block's cells: for reading the shape of a
    /// log of millions of cells cheaply (a streamed snapshot's first
    /// pass).
    ///
    /// # Errors
    ///
    /// As [`decode`](SheetEntry::decode), for the entry's layout.
    pub(crate) fn shape(bytes: &[u8]) -> Result<Shape, EntryError> {
        let (_, untimed) = split_time(bytes)?;
        if let Some((&BLOCK_TAG, body)) = untimed.split_first() {
            return raw_block(body)
                .and_then(|raw| raw.shape())
                .map_err(EntryError::Malformed);
        }
        Ok(SheetEntry::decode(bytes)?.shape_of())
    }

    /// Where the entry, decoded, writes.
    pub(crate) fn shape_of(&self) -> Shape {
        match self {
            &SheetEntry::SetCellValueAndFormat { row, column, .. } => Shape::Cells {
                first_row: row,
                last_row: row,
                reach: Some((row, column)),
            },
            SheetEntry::Identity { .. } => Shape::Identity,
            &SheetEntry::Clear { range } => Shape::Clear(range),
            SheetEntry::Block(block) => {
                let area = block.area();
                Shape::Cells {
                    first_row: area.first.row,
                    last_row: area.last.row,
                    reach: block.reach(),
                }
            }
        }
    }
}

/// A block entry whose cells are still in the compact encoding (a tile's
/// too): for copying them into tiles as they are.
pub(crate) struct RawBlock {
    pub(crate) origin: CellRef,
    pub(crate) width: u32,
    /// How many cells (gaps included) follow.
    count: usize,
    /// The decompressed body, and where in it the first cell begins.
    body: Vec<u8>,
    at: usize,
}

impl RawBlock {
    /// The entry `bytes` as a raw block, its header checked as
    /// [`SheetEntry::decode`] checks it; `None` if it is not a block entry.
    ///
    /// # Errors
    ///
    /// As [`SheetEntry::decode`], for the entry's layout.
    pub(crate) fn of(bytes: &[u8]) -> Result<Option<RawBlock>, EntryError> {
        let (_, untimed) = split_time(bytes)?;
        let Some((&BLOCK_TAG, body)) = untimed.split_first() else {
            return Ok(None);
        };
        raw_block(body).map(Some).map_err(EntryError::Malformed)
    }

    /// The block, its cells checked as decoding checks them (their text is
    /// UTF-8, their numbers read), and that nothing follows them: done on
    /// another thread than the one placing the cells.
    ///
    /// # Errors
    ///
    /// Why the block is malformed.
    pub(crate) fn checked(self) -> Result<CheckedBlock, EntryError> {
        self.walk(Reader::raw_cell)?;
        Ok(CheckedBlock(self))
    }

    /// Where it writes, its cells' layout checked (not their text and
    /// numbers).
    fn shape(&self) -> Result<Shape, String> {
        let mut reader = Reader::new(&self.body[self.at..]);
        let width = self.width as usize;
        let (mut last_set, mut widest, mut any) = (0, 0, false);
        for k in 0..self.count {
            if reader.skip_cell()? {
                (last_set, widest, any) = (k / width, widest.max(k % width), true);
            }
        }
        if !reader.is_empty() {
            return Err("bytes follow the block's cells".into());
        }
        let origin = self.origin;
        let rows = self.count.div_ceil(width);
        // Within the block, which fits: these fit too.
        let last_row = origin.row + rows.saturating_sub(1) as u32;
        let reach = any.then(|| (origin.row + last_set as u32, origin.column + widest as u32));
        Ok(Shape::Cells {
            first_row: origin.row,
            last_row,
            reach,
        })
    }

    /// Its cells (`None`: a gap), each the bytes [`put_cell`] wrote, each
    /// stepped over by `step`, and that nothing follows them.
    fn walk<'a>(
        &'a self,
        mut step: impl FnMut(&mut Reader<'a>) -> Result<Option<&'a [u8]>, String>,
    ) -> Result<Vec<Option<&'a [u8]>>, EntryError> {
        let malformed = |why: String| EntryError::Malformed(why);
        let mut reader = Reader::new(&self.body[self.at..]);
        let mut cells = Vec::with_capacity(self.count);
        for _ in 0..self.count {
            cells.push(step(&mut reader).map_err(malformed)?);
        }
        if !reader.is_empty() {
            return Err(malformed("bytes follow the block's cells".into()));
        }
        Ok(cells)
    }
}

/// A [`RawBlock`] whose cells were checked.
pub(crate) struct CheckedBlock(RawBlock);

impl CheckedBlock {
    /// Where its first cell goes, and its width.
    pub(crate) fn place(&self) -> (CellRef, u32) {
        (self.0.origin, self.0.width)
    }

    /// Where it writes.
    ///
    /// # Errors
    ///
    /// Why the block is malformed (not for a block [`RawBlock::checked`]
    /// passed).
    pub(crate) fn shape(&self) -> Result<Shape, EntryError> {
        self.0.shape().map_err(EntryError::Malformed)
    }

    /// The bytes it holds (its cells decompressed).
    pub(crate) fn size(&self) -> usize {
        self.0.body.len()
    }

    /// Its cells (`None`: a gap), each the bytes [`put_cell`] wrote,
    /// stepped over without checking their text and numbers again.
    ///
    /// # Errors
    ///
    /// Why the block is malformed (not for a block [`RawBlock::checked`]
    /// passed).
    pub(crate) fn cells(&self) -> Result<Vec<Option<&[u8]>>, EntryError> {
        self.0.walk(Reader::cell_bytes)
    }
}

fn raw_block(body: &[u8]) -> Result<RawBlock, String> {
    let body = decompress(body).map_err(|e| format!("the block {e}"))?;
    let mut reader = Reader::new(&body);
    let origin = CellRef::new(reader.u32("row")?, reader.u32("column")?);
    let width = reader.u32("width")?;
    let count = reader.varint()?;
    // Each cell takes at least a byte, and a block holds at most
    // MAX_BLOCK_CELLS: a larger count is damage, refused before anything
    // is allocated for it.
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= body.len() && c <= crate::edit::MAX_BLOCK_CELLS)
        .ok_or_else(|| {
            format!(
                "the block claims {count} cells in {} bytes (a block holds at most {})",
                body.len(),
                crate::edit::MAX_BLOCK_CELLS
            )
        })?;
    // What `Block::new` checks of a decoded block.
    Block::check(origin, width, count).map_err(|e| e.to_string())?;
    let at = body.len() - reader.rest().len();
    Ok(RawBlock {
        origin,
        width,
        count,
        body,
        at,
    })
}

/// The [`Shape`] of a block entry's body: its header, and a step over each
/// cell.
fn decode_block(body: &[u8]) -> Result<SheetEntry, String> {
    // Its header checked as a raw block's.
    let raw = raw_block(body)?;
    let mut reader = Reader::new(&raw.body[raw.at..]);
    let mut cells = Vec::with_capacity(raw.count);
    for _ in 0..raw.count {
        cells.push(reader.cell()?);
    }
    if !reader.is_empty() {
        return Err("bytes follow the block's cells".into());
    }
    Block::new(raw.origin, raw.width, cells)
        .map(SheetEntry::Block)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::BlockError;
    use crate::value::ErrorValue;

    /// A small entry claiming millions of blank cells (LZ4 makes two
    /// megabytes of zeros of a few kilobytes) is refused before the cells
    /// are allocated: it took a server to 29 GB and an abort.
    #[test]
    fn a_block_claiming_too_many_cells_is_refused() {
        let claimed = crate::edit::MAX_BLOCK_CELLS + 1;
        let mut body = Vec::new();
        for field in [0, 0, 1, claimed as u64] {
            varint(&mut body, field);
        }
        body.resize(body.len() + claimed, 0);
        let mut bytes = vec![BLOCK_TAG];
        bytes.extend(compress(&body));
        assert!(bytes.len() < 16 << 10, "{} bytes", bytes.len());
        match SheetEntry::decode(&bytes) {
            Err(EntryError::Malformed(why)) => assert!(why.contains("at most"), "{why}"),
            other => panic!("expected a malformed block, got {other:?}"),
        }
        assert!(matches!(
            Block::new(CellRef::new(0, 0), 1, vec![None; claimed]),
            Err(BlockError::TooManyCells { .. })
        ));
    }

    /// A block's shape, read without making its cells, is what decoding
    /// it says; bytes that decode never fail to give a shape.
    #[test]
    fn shapes_are_what_decoding_says() {
        let cell = |i: usize| match i % 4 {
            0 => Cell::new(CellValue::Number(i as f64)),
            1 => Cell::new(CellValue::Text(format!("t{i}"))).with_format("0.0"),
            2 => Cell::new(CellValue::Empty),
            _ => Cell::new(CellValue::Error(crate::value::ErrorValue::NotAvailable)),
        };
        for (width, count, gaps) in [
            (1, 1, 0),
            (3, 7, 2),
            (4, 8, 3),
            (5, 12, 5),
            (2, 6, 1),
            (3, 3, 1),
        ] {
            // Every `gaps`-th cell a gap (0: none), and the tail all gaps
            // when `gaps` is 1.
            let cells: Vec<Option<Cell>> = (0..count)
                .map(|i| (gaps == 0 || (gaps > 1 && i % gaps != 0)).then(|| cell(i)))
                .collect();
            let block = Block::new(CellRef::new(10, 20), width, cells).unwrap();
            let area = block.area();
            let expected = Shape::Cells {
                first_row: area.first.row,
                last_row: area.last.row,
                reach: block.reach(),
            };
            let bytes = timed(SystemTime::now(), &encode_block(&block));
            assert_eq!(SheetEntry::shape(&bytes).unwrap(), expected, "{block:?}");
            for len in 0..bytes.len() {
                if SheetEntry::decode(&bytes[..len]).is_ok() {
                    assert!(SheetEntry::shape(&bytes[..len]).is_ok(), "cut to {len}");
                }
            }
        }
        let range = CellRange::new(CellRef::new(1, 2), CellRef::new(3, 4));
        assert_eq!(
            SheetEntry::shape(&encode_clear(range)).unwrap(),
            Shape::Clear(range)
        );
        assert_eq!(
            SheetEntry::shape(&SheetEntry::set_cell(5, 6, cell(0)).encode()).unwrap(),
            Shape::Cells {
                first_row: 5,
                last_row: 5,
                reach: Some((5, 6))
            }
        );
    }

    #[test]
    fn entries_round_trip() {
        for value in [
            CellValue::Empty,
            CellValue::Text("héllo".into()),
            CellValue::Number(-2.5),
            CellValue::Boolean(true),
            CellValue::Error(ErrorValue::Spill),
        ] {
            let entry = SheetEntry::set_cell(7, 3, Cell::new(value).with_format("0.00"));
            assert_eq!(SheetEntry::decode(&entry.encode()), Ok(entry));
        }
        let block = Block::new(
            CellRef::new(5, 2),
            3,
            vec![
                Some(Cell::new(CellValue::Text("a,b".into()))),
                None,
                Some(Cell::new(CellValue::Number(0.25)).with_format("0%")),
                Some(Cell::new(CellValue::Empty)),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let block = SheetEntry::Block(block);
        assert_eq!(SheetEntry::decode(&block.encode()), Ok(block));
        let clear = SheetEntry::Clear {
            range: "B2:XFD1048576".parse().unwrap_or_else(|e| panic!("{e}")),
        };
        assert_eq!(SheetEntry::decode(&clear.encode()), Ok(clear));
        let identity = SheetEntry::identity(SheetId::random());
        assert_eq!(identity.encode().len(), 17);
        assert_eq!(SheetEntry::decode(&identity.encode()), Ok(identity));
    }

    #[test]
    fn timed_entries_decode_as_the_entry_and_tell_their_time() {
        let at = UNIX_EPOCH + Duration::from_millis(1_796_000_000_123);
        let entry = SheetEntry::set_cell(1, 2, Cell::new(CellValue::Number(4.0)));
        let bytes = timed(at, &entry.encode());
        assert_eq!(bytes[0], TIMED_TAG);
        assert_eq!(SheetEntry::decode(&bytes), Ok(entry.clone()));
        assert_eq!(entry_time(&bytes), Ok(Some(at)));
        // Untimed entries (older versions) have none.
        assert_eq!(entry_time(&entry.encode()), Ok(None));
        // The time costs seven bytes in this century.
        assert_eq!(bytes.len(), entry.encode().len() + 7);
        // Damage in the time, or a time twice, is a typed error.
        assert!(matches!(
            SheetEntry::decode(&[TIMED_TAG, 0x80]),
            Err(EntryError::Malformed(_))
        ));
        let twice = timed(at, &bytes);
        assert!(matches!(
            SheetEntry::decode(&twice),
            Err(EntryError::Malformed(_))
        ));
    }

    #[test]
    fn foreign_bytes_are_typed_errors() {
        assert_eq!(SheetEntry::decode(b""), Err(EntryError::Empty));
        assert_eq!(SheetEntry::decode(&[TIMED_TAG, 1]), Err(EntryError::Empty));
        assert_eq!(
            SheetEntry::decode(b"\x06abc"),
            Err(EntryError::UnknownVersion(6))
        );
        for damaged in [
            &b"\x03abc"[..],
            b"\x03\x05\0\0\0\x50\0\0\0\0",
            b"\x04\x01\x01\0\0",
            b"\x04\x01\x01\x01\x01\x01",
            b"\x04\xFF\xFF\xFF\xFF\x7F\0\0\0",
        ] {
            assert!(
                matches!(SheetEntry::decode(damaged), Err(EntryError::Malformed(_))),
                "{damaged:?}"
            );
        }
        let block = SheetEntry::Block(
            Block::new(CellRef::new(0, 0), 2, vec![None; 5]).unwrap_or_else(|e| panic!("{e}")),
        )
        .encode();
        for cut in 1..block.len() {
            assert!(SheetEntry::decode(&block[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            SheetEntry::decode(b"\x02abc"),
            Err(EntryError::Malformed(_))
        ));
        assert!(matches!(
            SheetEntry::decode(b"\x01\x07"),
            Err(EntryError::Malformed(_))
        ));
        let mut long = SheetEntry::set_cell(0, 0, Cell::new(CellValue::Empty))
            .encode()
            .to_vec();
        long.push(0);
        assert!(matches!(
            SheetEntry::decode(&long),
            Err(EntryError::Malformed(_))
        ));
    }

    proptest::proptest! {
        /// Rows written straight into the encoding make the entry a block
        /// of the same cells makes, byte for byte, for any run of them.
        #[test]
        fn block_rows_encode_as_blocks_do(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    (0..3u8, "(|TRUE|FALSE|#N/A|#x|-?[0-9]{1,4}(\\.[0-9]{0,3})?|0[0-9]|1e5|[a-zé ]{0,5})"),
                    0..5,
                ),
                0..6,
            ),
            split in 0..7usize,
            origin in (0..1000u32, 0..1000u32),
        ) {
            let origin = CellRef::new(origin.0, origin.1);
            let mut written = BlockRows::new();
            let mut made: Vec<Vec<Option<Cell>>> = Vec::new();
            for row in &rows {
                let mut cells = Vec::new();
                for (mode, field) in row {
                    let cell = match mode {
                        0 => {
                            written.push_parsed(field);
                            Cell::new(CellValue::parse(field))
                        }
                        1 => {
                            written.push_text(field);
                            Cell::new(CellValue::Text(field.clone()))
                        }
                        _ => {
                            let cell = Cell::new(CellValue::Number(field.len() as f64 / 8.0))
                                .with_format("0.000");
                            written.push_cell(&cell);
                            cell
                        }
                    };
                    cells.push(Some(cell));
                }
                written.end_row();
                made.push(cells);
            }
            let split = split.min(rows.len());
            for range in [0..rows.len(), 0..split, split..rows.len()] {
                let ours = written.encode(origin, range.clone());
                let theirs = Block::from_rows(origin, made[range.clone()].to_vec())
                    .map(|block| encode_block(&block).to_vec());
                proptest::prop_assert_eq!(ours, theirs, "rows {:?}", range);
            }
            proptest::prop_assert_eq!(written.rows(), rows.len());
            proptest::prop_assert_eq!(
                written.cells(),
                rows.iter().map(|r| r.len() as u64).sum::<u64>()
            );
        }
    }
}
