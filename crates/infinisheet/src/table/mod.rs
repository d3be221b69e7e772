//! Cells as text: how a value is shown, reading a range into rows, and
//! CSV import and export.
//!
//! Import then export gives back the same bytes for CSV that the `csv`
//! crate writes as it reads (quotes only where needed, one terminator
//! after every line): a field becomes a number, boolean or error value
//! only when that value is written back as exactly the same text
//! ([`CellValue::parse`]), otherwise it stays text as it is (`06`, `4.10`,
//! ` 42 `); an empty field is an explicitly empty cell, so rows keep their
//! widths; an empty line is a row of no cells.

use encoding_rs::Encoding;
use infinisheet_engine::{CellRange, CellRef, CellValue};

mod export;
mod import;
mod shown;

pub use export::{EXPORT_LIMIT, ExportError, cell_json, export_csv, write_json};
pub use import::{ImportError, ImportFailed, ImportOptions, ImportReport, Types, import_csv};
pub use shown::shown_text;

/// How a cell's value is written in a table or a CSV file: numbers in
/// their shortest exact form, `TRUE`/`FALSE`, error values as `#DIV/0!`,
/// text as it is; an empty value or a blank cell is empty text.
pub fn value_text(value: &CellValue) -> String {
    value.to_string()
}

/// How a CSV file is written: its delimiter, line ending and encoding.
#[derive(Clone, Copy, Debug)]
pub struct CsvFormat {
    /// The byte between fields; `,` unless set.
    pub delimiter: u8,
    /// End lines with `\r\n` when writing (reading takes either).
    pub crlf: bool,
    /// End the last line with a line break too (as most files do).
    pub final_newline: bool,
    /// The file's character encoding; UTF-8 unless set.
    pub encoding: &'static Encoding,
    /// Write every row of the range whole, its blank cells as empty
    /// fields, so the rows form a rectangle (as `get --output csv` does).
    /// Unset, a row ends at its last cell in use, so a file imported and
    /// exported again comes back as it was.
    pub whole_rows: bool,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            delimiter: b',',
            crlf: false,
            final_newline: true,
            encoding: encoding_rs::UTF_8,
            whole_rows: false,
        }
    }
}

/// A CSV format option that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The delimiter is not one ASCII character other than a quote or a
    /// line break.
    #[error(
        "the delimiter {0:?} is not one ASCII character (other than a quote or line break); `tab` is a tab"
    )]
    Delimiter(String),
    /// No encoding has this label.
    #[error("{0:?} is not an encoding label such as utf-8, windows-1252, iso-8859-1 or shift_jis")]
    Encoding(String),
    /// The encoding can be read but not written (UTF-16, replacement).
    #[error("files are not written in {0}; it can only be read")]
    ReadOnlyEncoding(&'static str),
}

impl CsvFormat {
    /// The delimiter `text` names: one ASCII character, or `tab`/`\t`.
    ///
    /// # Errors
    ///
    /// [`FormatError::Delimiter`].
    pub fn delimiter(text: &str) -> Result<u8, FormatError> {
        match text {
            "tab" | "\\t" | "\t" => Ok(b'\t'),
            _ if text.len() == 1 && text.is_ascii() && !matches!(text, "\"" | "\n" | "\r") => {
                Ok(text.as_bytes()[0])
            }
            _ => Err(FormatError::Delimiter(text.to_owned())),
        }
    }

    /// The encoding a WHATWG label names (`utf-8`, `latin1`, `cp1252`…).
    ///
    /// # Errors
    ///
    /// [`FormatError::Encoding`].
    pub fn encoding(label: &str) -> Result<&'static Encoding, FormatError> {
        Encoding::for_label(label.trim().as_bytes())
            .ok_or_else(|| FormatError::Encoding(label.to_owned()))
    }
}

/// The whole sheet, every cell of it.
pub fn whole_sheet() -> CellRange {
    CellRange::new(CellRef::new(0, 0), CellRef::new(u32::MAX, u32::MAX))
}

/// Rows a band of `range` holds: about 100,000 cells, 1 to 1,000 rows.
pub fn band_rows(range: CellRange) -> u32 {
    (100_000 / range.width().max(1)).clamp(1, 1_000) as u32
}
