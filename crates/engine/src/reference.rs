//! A1-style cell references (`B7`) and ranges (`A1:F20`), parsed into
//! zero-based rows and columns.

use std::fmt;
use std::str::FromStr;

/// One cell's place: zero-based row and column. `A1` is row 0, column 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellRef {
    /// Zero-based row (`A1` is row 0).
    pub row: u32,
    /// Zero-based column (`A` is 0, `Z` 25, `AA` 26).
    pub column: u32,
}

/// Text that is not an A1-style reference or range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a cell reference like B7 or a range like A1:F20: {reason}")]
pub struct ReferenceError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl CellRef {
    /// The cell at zero-based `row` and `column`: row first, as the
    /// fields are, while an A1 name gives the column first.
    ///
    /// ```
    /// use infinisheet_engine::CellRef;
    /// assert_eq!(CellRef::new(6, 1).to_string(), "B7");
    /// assert_eq!("B7".parse::<CellRef>().unwrap(), CellRef::new(6, 1));
    /// ```
    pub fn new(row: u32, column: u32) -> CellRef {
        CellRef { row, column }
    }

    /// The column's letters: 0 is `A`, 26 is `AA`.
    pub fn column_name(column: u32) -> String {
        let mut n = u64::from(column) + 1;
        let mut letters = Vec::new();
        while n > 0 {
            let rem = ((n - 1) % 26) as u8;
            letters.push(b'A' + rem);
            n = (n - 1) / 26;
        }
        letters.reverse();
        String::from_utf8(letters).unwrap_or_default()
    }
}

impl fmt::Display for CellRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            CellRef::column_name(self.column),
            u64::from(self.row) + 1
        )
    }
}

impl FromStr for CellRef {
    type Err = ReferenceError;

    /// Parses `B7` (letters in any case, then a row number from 1).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| ReferenceError {
            text: text.to_owned(),
            reason,
        };
        let split = text
            .find(|c: char| !c.is_ascii_alphabetic())
            .ok_or_else(|| err("it has no row number"))?;
        let (letters, digits) = text.split_at(split);
        if letters.is_empty() {
            return Err(err("it does not start with column letters"));
        }
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the row must be a number after the column letters"));
        }
        let mut column: u64 = 0;
        for letter in letters.bytes() {
            column = column * 26 + u64::from(letter.to_ascii_uppercase() - b'A') + 1;
            if column > u64::from(u32::MAX) + 1 {
                return Err(err("the column is too far right"));
            }
        }
        let row: u64 = digits.parse().map_err(|_| err("the row is too large"))?;
        if row == 0 {
            return Err(err("rows are numbered from 1"));
        }
        let row = u32::try_from(row - 1).map_err(|_| err("the row is too large"))?;
        Ok(CellRef {
            row,
            column: (column - 1) as u32,
        })
    }
}

/// A rectangle of cells, corners included: `A1:F20`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CellRange {
    /// The top-left cell.
    pub first: CellRef,
    /// The bottom-right cell.
    pub last: CellRef,
}

impl CellRange {
    /// The range spanned by two corners, in either order.
    pub fn new(a: CellRef, b: CellRef) -> CellRange {
        CellRange {
            first: CellRef::new(a.row.min(b.row), a.column.min(b.column)),
            last: CellRef::new(a.row.max(b.row), a.column.max(b.column)),
        }
    }

    /// Rows from the first to the last.
    pub fn rows(&self) -> std::ops::RangeInclusive<u32> {
        self.first.row..=self.last.row
    }

    /// Columns from the first to the last.
    pub fn columns(&self) -> std::ops::RangeInclusive<u32> {
        self.first.column..=self.last.column
    }

    /// How many rows it spans (0 if its corners are upside down).
    pub fn height(&self) -> u64 {
        (u64::from(self.last.row) + 1).saturating_sub(u64::from(self.first.row))
    }

    /// How many columns it spans (0 if its corners are the wrong way round).
    pub fn width(&self) -> u64 {
        (u64::from(self.last.column) + 1).saturating_sub(u64::from(self.first.column))
    }

    /// How many cells it holds; `u64::MAX` for the whole sheet (2^64
    /// cells, one more than fits).
    pub fn cell_count(&self) -> u64 {
        self.height().saturating_mul(self.width())
    }

    /// Whether the cell at `row`, `column` is in it.
    pub fn contains(&self, row: u32, column: u32) -> bool {
        self.rows().contains(&row) && self.columns().contains(&column)
    }
}

impl fmt::Display for CellRange {
    /// `A1:F20`; whole columns as `A:C`, whole rows as `2:5` (as they
    /// parse).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all_rows = self.first.row == 0 && self.last.row == u32::MAX;
        let all_columns = self.first.column == 0 && self.last.column == u32::MAX;
        if all_rows {
            write!(
                f,
                "{}:{}",
                CellRef::column_name(self.first.column),
                CellRef::column_name(self.last.column)
            )
        } else if all_columns {
            write!(
                f,
                "{}:{}",
                u64::from(self.first.row) + 1,
                u64::from(self.last.row) + 1
            )
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

/// One side of a range as written: a cell (`B7`), a whole column (`B`) or
/// a whole row (`7`).
enum Side {
    Cell(CellRef),
    Column(u32),
    Row(u32),
}

impl Side {
    fn parse(text: &str, whole: &str) -> Result<Side, ReferenceError> {
        let err = |reason| ReferenceError {
            text: whole.to_owned(),
            reason,
        };
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphabetic()) {
            // A column: the same letters as a cell's, with row 1.
            let cell: CellRef = format!("{text}1")
                .parse()
                .map_err(|e: ReferenceError| err(e.reason))?;
            return Ok(Side::Column(cell.column));
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let cell: CellRef = format!("A{text}")
                .parse()
                .map_err(|e: ReferenceError| err(e.reason))?;
            return Ok(Side::Row(cell.row));
        }
        text.parse()
            .map(Side::Cell)
            .map_err(|e: ReferenceError| err(e.reason))
    }
}

impl FromStr for CellRange {
    type Err = ReferenceError;

    /// Parses `A1:F20` (corners in any order), a single cell `B7`, whole
    /// columns `A:C` or `B`, and whole rows `2:5` or `3`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (a, b) = match text.split_once(':') {
            Some((a, b)) => (Side::parse(a, text)?, Side::parse(b, text)?),
            None => (Side::parse(text, text)?, Side::parse(text, text)?),
        };
        let cell = CellRef::new;
        Ok(match (a, b) {
            (Side::Cell(a), Side::Cell(b)) => CellRange::new(a, b),
            (Side::Column(a), Side::Column(b)) => CellRange::new(cell(0, a), cell(u32::MAX, b)),
            (Side::Row(a), Side::Row(b)) => CellRange::new(cell(a, 0), cell(b, u32::MAX)),
            _ => {
                return Err(ReferenceError {
                    text: text.to_owned(),
                    reason: "a range joins two cells (A1:C3), two columns (A:C) or two rows (1:3)",
                });
            }
        })
    }
}

impl CellRange {
    /// This range cut into bands of at most `rows` rows (at least 1), top
    /// to bottom: how a large range is read or written piece by piece.
    pub fn bands(&self, rows: u32) -> impl Iterator<Item = CellRange> + use<> {
        let (range, step) = (*self, rows.max(1));
        let mut top = Some(range.first.row);
        std::iter::from_fn(move || {
            let first = top?;
            let last = first.saturating_add(step - 1).min(range.last.row);
            top = (last < range.last.row).then(|| last + 1);
            Some(CellRange::new(
                CellRef::new(first, range.first.column),
                CellRef::new(last, range.last.column),
            ))
        })
    }

    /// The part of this range within the first `rows` rows and `columns`
    /// columns (a sheet's used extent), if any: `A:C` of a sheet of 10 rows
    /// is `A1:C10`.
    pub fn clip(&self, rows: u64, columns: u64) -> Option<CellRange> {
        if rows == 0 || columns == 0 {
            return None;
        }
        let last_row = u32::try_from(rows - 1).unwrap_or(u32::MAX);
        let last_column = u32::try_from(columns - 1).unwrap_or(u32::MAX);
        if self.first.row > last_row || self.first.column > last_column {
            return None;
        }
        Some(CellRange::new(
            self.first,
            CellRef::new(
                self.last.row.min(last_row),
                self.last.column.min(last_column),
            ),
        ))
    }
}

/// Something that names one cell: a [`CellRef`] or A1 text (`"B7"`).
/// (No bare `(u32, u32)`: A1 names the column first, zero-based places
/// put the row first — [`CellRef::new`] says which is which.) What [`Spreadsheet::set`](crate::Spreadsheet::set)
/// and [`Spreadsheet::get`](crate::Spreadsheet::get) take.
pub trait IntoCellRef {
    /// The cell.
    ///
    /// # Errors
    ///
    /// [`ReferenceError`] if text is not an A1 reference.
    fn into_cell_ref(self) -> Result<CellRef, ReferenceError>;
}

impl IntoCellRef for CellRef {
    fn into_cell_ref(self) -> Result<CellRef, ReferenceError> {
        Ok(self)
    }
}

impl IntoCellRef for &str {
    fn into_cell_ref(self) -> Result<CellRef, ReferenceError> {
        self.parse()
    }
}

impl IntoCellRef for &String {
    fn into_cell_ref(self) -> Result<CellRef, ReferenceError> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print() {
        for (text, row, column) in [
            ("A1", 0, 0),
            ("b7", 6, 1),
            ("Z10", 9, 25),
            ("AA1", 0, 26),
            ("XFD1048576", 1_048_575, 16_383),
        ] {
            let cell: CellRef = text.parse().unwrap();
            assert_eq!(cell, CellRef::new(row, column), "{text}");
            assert_eq!(cell.to_string(), text.to_uppercase());
        }
        assert_eq!(
            CellRef::new(u32::MAX, u32::MAX)
                .to_string()
                .parse::<CellRef>(),
            Ok(CellRef::new(u32::MAX, u32::MAX))
        );
    }

    #[test]
    fn bad_references_say_why() {
        for (text, reason) in [
            ("", "it has no row number"),
            ("A", "it has no row number"),
            ("7", "it does not start with column letters"),
            ("A0", "rows are numbered from 1"),
            ("A1B", "the row must be a number after the column letters"),
            ("A-1", "the row must be a number after the column letters"),
            ("A99999999999", "the row is too large"),
            ("ZZZZZZZZ1", "the column is too far right"),
            ("É1", "it does not start with column letters"),
        ] {
            let err = text.parse::<CellRef>().unwrap_err();
            assert_eq!(err.reason, reason, "{text}");
        }
    }

    #[test]
    fn range_sizes_never_overflow() {
        let all = CellRange::new(CellRef::new(0, 0), CellRef::new(u32::MAX, u32::MAX));
        assert_eq!((all.height(), all.width()), (1 << 32, 1 << 32));
        assert_eq!(all.cell_count(), u64::MAX);
        let column: CellRange = "A1:A4294967296".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(column.cell_count(), 1 << 32);
        let upside_down = CellRange {
            first: CellRef::new(5, 5),
            last: CellRef::new(1, 1),
        };
        assert_eq!(upside_down.cell_count(), 0);
        assert!(!upside_down.contains(3, 3));
        assert!(column.contains(u32::MAX, 0) && !column.contains(0, 1));
    }

    #[test]
    fn ranges_normalize_their_corners() {
        let range: CellRange = "F20:A1".parse().unwrap();
        assert_eq!(range.to_string(), "A1:F20");
        assert_eq!(range.rows(), 0..=19);
        let single: CellRange = "C3".parse().unwrap();
        assert_eq!(single.to_string(), "C3:C3");
        assert_eq!("A1:".parse::<CellRange>().unwrap_err().text, "A1:");
    }

    #[test]
    fn bands_cover_a_range_once() {
        let range: CellRange = "B3:D12".parse().unwrap();
        let cut: Vec<String> = range.bands(4).map(|b| b.to_string()).collect();
        assert_eq!(cut, ["B3:D6", "B7:D10", "B11:D12"]);
        let one: CellRange = "A1".parse().unwrap();
        assert_eq!(one.bands(100).count(), 1);
        let bottom = CellRange::new(CellRef::new(u32::MAX - 1, 0), CellRef::new(u32::MAX, 0));
        assert_eq!(bottom.bands(1).count(), 2);
    }

    #[test]
    fn whole_rows_and_columns_parse_print_and_clip() {
        let max = u32::MAX;
        for (text, first, last, shown) in [
            ("A:C", (0, 0), (max, 2), "A:C"),
            ("c:a", (0, 0), (max, 2), "A:C"),
            ("B", (0, 1), (max, 1), "B:B"),
            ("2:5", (1, 0), (4, max), "2:5"),
            ("3", (2, 0), (2, max), "3:3"),
        ] {
            let range: CellRange = text.parse().unwrap();
            assert_eq!(
                (range.first, range.last),
                (CellRef::new(first.0, first.1), CellRef::new(last.0, last.1)),
                "{text}"
            );
            assert_eq!(range.to_string(), shown);
            assert_eq!(range.to_string().parse::<CellRange>().unwrap(), range);
        }
        let columns: CellRange = "B:C".parse().unwrap();
        assert_eq!(columns.clip(10, 5).unwrap().to_string(), "B1:C10");
        assert_eq!(columns.clip(10, 1), None);
        assert_eq!(columns.clip(0, 5), None);
        let rows: CellRange = "2:3".parse().unwrap();
        assert_eq!(rows.clip(10, 4).unwrap().to_string(), "A2:D3");
        for bad in ["A:3", "A1:C", "3:B2", ":", "A:", "0", "1:0"] {
            assert!(bad.parse::<CellRange>().is_err(), "{bad}");
        }
        assert_eq!("B7".into_cell_ref(), Ok(CellRef::new(6, 1)));
        assert!("7B".into_cell_ref().is_err());
    }
}
