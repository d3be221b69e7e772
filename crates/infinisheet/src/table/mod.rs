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

mod csv_read;
mod export;
mod import;
mod shown;

pub use csv_read::{CsvError, MAX_FIELDS, MAX_RECORD_BYTES};
pub use export::{EXPORT_LIMIT, ExportError, cell_json, export_csv, write_json};
pub use import::{
    ImportError, ImportFailed, ImportOptions, ImportReport, LineBreaks, Types, import_csv,
};
pub use shown::shown_text;

/// How a cell's value is written in a table or a CSV file: numbers in
/// their shortest exact form, `TRUE`/`FALSE`, error values as `#DIV/0!`,
/// text as it is; an empty value or a blank cell is empty text.
pub fn value_text(value: &CellValue) -> String {
    value.to_string()
}

/// How a CSV file is written: its delimiter, quotes, line ending and
/// encoding.
#[derive(Clone, Copy, Debug)]
pub struct CsvFormat {
    /// The byte between fields; `,` unless set.
    pub delimiter: u8,
    /// The byte around a field that holds a delimiter, a quote or a line
    /// break; `"` unless set.
    pub quote: u8,
    /// The byte before a quote (or itself) inside quotes, as in `\"`;
    /// `None` (the default): a quote inside quotes is doubled (`""`).
    pub escape: Option<u8>,
    /// Lines that begin with this byte are comments, left out when read
    /// (and not written back); none unless set.
    pub comment: Option<u8>,
    /// Quote every field, as some programs write files (empty ones too).
    pub quote_all: bool,
    /// The file begins with a UTF-8 byte-order mark (written when set;
    /// reading takes one off and says so in
    /// [`ImportReport::bom`](crate::table::ImportReport::bom)).
    pub bom: bool,
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
    /// Write a number through its number format (`2.50` for 2.5 in
    /// `0.00`), as a spreadsheet shows it and as
    /// [`Types::Numbers`] reads it back; set (the default) for
    /// files, unset for values alone (`get --output csv`).
    pub formatted: bool,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            delimiter: b',',
            quote: b'"',
            escape: None,
            comment: None,
            quote_all: false,
            bom: false,
            crlf: false,
            final_newline: true,
            encoding: encoding_rs::UTF_8,
            whole_rows: false,
            formatted: true,
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
    /// A quote, escape or comment character that is not one ASCII
    /// character, or is one the format uses otherwise.
    #[error("the {what} {text:?} is not one ASCII character other than a line break{also}")]
    Character {
        /// Which: `quote`, `escape`, `comment`.
        what: &'static str,
        /// What was given.
        text: String,
        /// What else it may not be.
        also: &'static str,
    },
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

    /// The byte `text` names for the `what` of a format (`quote`,
    /// `escape`, `comment`): one ASCII character other than a line break
    /// or `delimiter`, and for an escape other than `quote` (quotes are
    /// doubled without one).
    ///
    /// # Errors
    ///
    /// [`FormatError::Character`].
    pub fn character(
        what: &'static str,
        text: &str,
        delimiter: u8,
        quote: u8,
    ) -> Result<u8, FormatError> {
        let refuse = |also| FormatError::Character {
            what,
            text: text.to_owned(),
            also,
        };
        let byte = match text {
            // `--escape '\\'` as a shell passes it through.
            "\\\\" => b'\\',
            _ if text.len() == 1 && text.is_ascii() && !matches!(text, "\n" | "\r") => {
                text.as_bytes()[0]
            }
            _ => return Err(refuse("")),
        };
        if byte == delimiter {
            return Err(refuse(" or the delimiter"));
        }
        if what != "quote" && byte == quote {
            return Err(refuse(
                " or the quote (a quote inside quotes is doubled unless --escape names another)",
            ));
        }
        Ok(byte)
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
