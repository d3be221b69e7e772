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
use infinisheet_engine::{
    Block, BlockError, Cell, CellRange, CellRef, CellState, CellValue, Edit, EditError,
    Spreadsheet, ViewportError,
};
use std::io::Write;

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
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            delimiter: b',',
            crlf: false,
            final_newline: true,
            encoding: encoding_rs::UTF_8,
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

/// How fields become values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Types {
    /// A field is a number, boolean or error value when it is written
    /// exactly as that value is ([`CellValue::parse`]); otherwise text.
    #[default]
    Auto,
    /// Every field is text (an empty field an empty cell).
    Text,
}

/// How [`import_csv`] reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    /// Where the file's first field goes.
    pub origin: CellRef,
    /// Cells per log entry: each batch of rows is one block entry.
    pub batch: usize,
    /// How fields become values.
    pub types: Types,
    /// The file's delimiter and encoding.
    pub format: CsvFormat,
    /// Clear the whole sheet first (in the same append as the first block).
    pub replace: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            origin: CellRef::new(0, 0),
            batch: 100_000,
            types: Types::Auto,
            format: CsvFormat::default(),
            replace: false,
        }
    }
}

/// Error of importing a CSV file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file is not valid CSV (or cannot be read).
    #[error("reading CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The data does not fit the sheet (more than 2^32 rows or columns).
    #[error("the data does not fit in the sheet from {origin}")]
    TooLarge {
        /// Where the import started.
        origin: CellRef,
    },
    /// An edit failed; the rows before it are in the sheet.
    #[error("writing to the sheet: {0}")]
    Edit(#[from] EditError),
}

/// What an import wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows read (empty lines included).
    pub rows: u64,
    /// The widest row.
    pub columns: u64,
    /// Cells written (an empty field writes an empty cell).
    pub cells: u64,
    /// Whether the file's first line ends in `\r\n`.
    pub crlf: bool,
    /// Whether the file ends in a line break (an empty file does).
    pub final_newline: bool,
}

/// Reads CSV from `reader` into `sheet` as `options` say, one block entry
/// per batch of rows. `progress` hears the bytes read so far after each
/// append.
///
/// # Errors
///
/// [`ImportFailed`]: why the import stopped ([`ImportError`]) and how many
/// rows and cells it had appended by then, which stay in the sheet.
pub async fn import_csv<R: std::io::Read>(
    sheet: &Spreadsheet,
    reader: R,
    options: &ImportOptions,
    progress: impl FnMut(u64),
) -> Result<ImportReport, ImportFailed> {
    let mut committed = ImportReport::default();
    let ending = std::sync::Arc::new(std::sync::Mutex::new(Ending::default()));
    let reader = Watch {
        inner: reader,
        ending: ending.clone(),
    };
    let result = if options.format.encoding == encoding_rs::UTF_8 {
        // Invalid UTF-8 is an error, never replaced.
        import_rows(sheet, reader, options, progress, &mut committed).await
    } else {
        let reader = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(options.format.encoding))
            .build(reader);
        import_rows(sheet, reader, options, progress, &mut committed).await
    };
    match result {
        Ok(mut report) => {
            let ending = *ending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            report.crlf = ending.first == Some(true);
            report.final_newline = matches!(ending.last, None | Some(b'\n' | b'\r'));
            Ok(report)
        }
        Err(error) => Err(ImportFailed { committed, error }),
    }
}

/// How the bytes of a file end its lines, as read so far.
#[derive(Clone, Copy, Debug, Default)]
struct Ending {
    /// Whether the first line break was `\r\n` (once one was read).
    first: Option<bool>,
    /// The last byte read.
    last: Option<u8>,
    previous_cr: bool,
}

/// Notes the line endings of what passes through.
struct Watch<R> {
    inner: R,
    ending: std::sync::Arc<std::sync::Mutex<Ending>>,
}

impl<R: std::io::Read> std::io::Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut ending = self
            .ending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ending.first.is_none() {
            for &b in &buf[..n] {
                if b == b'\n' {
                    ending.first = Some(ending.previous_cr);
                    break;
                }
                ending.previous_cr = b == b'\r';
            }
        }
        if n > 0 {
            ending.last = Some(buf[n - 1]);
        }
        Ok(n)
    }
}

/// An import that stopped part way: what it had written to the log by
/// then, and why it stopped.
#[derive(Debug, thiserror::Error)]
#[error(
    "{error}; the first {} rows ({} cells) were imported before it stopped",
    committed.rows,
    committed.cells
)]
pub struct ImportFailed {
    /// The rows and cells in the sheet's log: every cell of these rows was
    /// appended, and nothing after them — unless the import stopped on a
    /// storage error, whose batch may have landed too.
    pub committed: ImportReport,
    /// Why the import stopped.
    #[source]
    pub error: ImportError,
}

/// The whole sheet, every cell of it.
pub fn whole_sheet() -> CellRange {
    CellRange::new(CellRef::new(0, 0), CellRef::new(u32::MAX, u32::MAX))
}

async fn import_rows<R: std::io::Read>(
    sheet: &Spreadsheet,
    reader: R,
    options: &ImportOptions,
    mut progress: impl FnMut(u64),
    committed: &mut ImportReport,
) -> Result<ImportReport, ImportError> {
    let origin = options.origin;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.format.delimiter)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, reader));
    let batch = options.batch.max(1);
    let mut report = ImportReport::default();
    let mut pending = Pending {
        first_row: 0,
        rows: Vec::new(),
        cells: 0,
        clear: options.replace,
    };
    let mut record = csv::StringRecord::new();
    loop {
        let before = csv.position().line();
        if !csv.read_record(&mut record)? {
            break;
        }
        // A full batch is appended once the next row is read, so that the
        // last one is always appended as the last.
        if pending.cells >= batch as u64 {
            pending.flush(sheet, origin, &mut report, false).await?;
            *committed = report;
            progress(csv.position().byte());
        }
        // The reader skips empty lines: they are the lines it read beyond
        // the record's own.
        let spanned = 1 + record
            .iter()
            .map(|f| f.bytes().filter(|&b| b == b'\n').count() as u64)
            .sum::<u64>();
        let empty_lines = (csv.position().line() - before).saturating_sub(spanned);
        for _ in 0..empty_lines {
            pending.rows.push(Vec::new());
            report.rows += 1;
        }
        let row: Vec<Option<Cell>> = record
            .iter()
            .map(|field| {
                Some(Cell::new(match options.types {
                    Types::Auto => CellValue::parse(field),
                    Types::Text if field.is_empty() => CellValue::Empty,
                    Types::Text => CellValue::Text(field.to_owned()),
                }))
            })
            .collect();
        pending.cells += row.len() as u64;
        report.columns = report.columns.max(row.len() as u64);
        pending.rows.push(row);
        report.rows += 1;
    }
    pending.flush(sheet, origin, &mut report, true).await?;
    *committed = report;
    progress(csv.position().byte());
    Ok(report)
}

/// The rows read and not yet appended.
struct Pending {
    /// Their first row, counted from the import's origin.
    first_row: u64,
    rows: Vec<Vec<Option<Cell>>>,
    cells: u64,
    /// Clear the sheet with the next append.
    clear: bool,
}

impl Pending {
    /// Appends the rows as a block. The `last` append puts its final row
    /// in a block of its own: a snapshot holds the entries before the one
    /// that asks for it, so the snapshot the import asks for then holds
    /// all but that row.
    async fn flush(
        &mut self,
        sheet: &Spreadsheet,
        origin: CellRef,
        report: &mut ImportReport,
        last: bool,
    ) -> Result<(), ImportError> {
        let too_large = || ImportError::TooLarge { origin };
        let count = self.rows.len() as u64;
        let mut edits = Vec::with_capacity(2);
        if self.clear {
            edits.push(Edit::Clear(whole_sheet()));
        }
        if self.cells > 0 {
            let row =
                u32::try_from(u64::from(origin.row) + self.first_row).map_err(|_| too_large())?;
            let mut rows = std::mem::take(&mut self.rows);
            let tail = match rows.pop() {
                Some(tail) if last && rows.iter().any(|r| !r.is_empty()) && !tail.is_empty() => {
                    Some(tail)
                }
                Some(tail) => {
                    rows.push(tail);
                    None
                }
                None => None,
            };
            let tail_row = row.checked_add(rows.len() as u32);
            let mut block = |at: CellRef, rows: Vec<Vec<Option<Cell>>>| {
                match Block::from_rows(at, rows) {
                    Ok(block) => {
                        edits.push(Edit::Block(block));
                        Ok(())
                    }
                    Err(BlockError::NoWidth) => Ok(()), // only empty lines
                    Err(_) => Err(too_large()),
                }
            };
            block(CellRef::new(row, origin.column), rows)?;
            if let Some(tail) = tail {
                let at = CellRef::new(tail_row.ok_or_else(too_large)?, origin.column);
                block(at, vec![tail])?;
            }
        } else {
            self.rows.clear();
        }
        if !edits.is_empty() {
            sheet.edit(edits).await?;
        }
        report.cells += self.cells;
        self.first_row += count;
        self.cells = 0;
        self.clear = false;
        Ok(())
    }
}

/// The cells of `range` as rows of values (`None` for a blank cell),
/// loading the tiles it covers a band of rows at a time.
///
/// # Errors
///
/// [`ViewportError`] if a snapshot tile cannot be read.
pub async fn read_range(
    sheet: &Spreadsheet,
    range: CellRange,
) -> Result<Vec<Vec<Option<Cell>>>, ViewportError> {
    let mut rows = Vec::new();
    for area in bands(range, 100) {
        sheet.set_viewport(area).await?;
        let content = sheet.content();
        for row in area.rows() {
            let cells = area
                .columns()
                .map(|column| match content.cell(row, column) {
                    CellState::Set(cell) => Some(cell),
                    _ => None,
                })
                .collect();
            rows.push(cells);
        }
    }
    Ok(rows)
}

/// `range` cut into bands of at most `rows` rows, top to bottom.
pub fn bands(range: CellRange, rows: u32) -> impl Iterator<Item = CellRange> {
    let step = rows.max(1);
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

/// The range from A1 to the last row and column holding a cell, if any.
pub fn used_range(sheet: &Spreadsheet) -> Option<CellRange> {
    let content = sheet.content();
    let (rows, columns) = (content.row_count(), content.column_count());
    if rows == 0 || columns == 0 {
        return None;
    }
    let last = |count: u64| u32::try_from(count - 1).unwrap_or(u32::MAX);
    Some(CellRange::new(
        CellRef::new(0, 0),
        CellRef::new(last(rows), last(columns)),
    ))
}

/// The most cells [`export_csv`] writes (blank ones included).
pub const EXPORT_LIMIT: u64 = 100_000_000;

/// Error of exporting CSV.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A snapshot tile cannot be read.
    #[error(transparent)]
    Read(#[from] ViewportError),
    /// Writing the CSV failed.
    #[error("writing CSV: {0}")]
    Write(#[from] std::io::Error),
    /// The range holds more cells than an export writes.
    #[error(
        "{range} holds {cells} cells; an export writes at most {EXPORT_LIMIT} (give a smaller --range)"
    )]
    TooLarge {
        /// The range asked for.
        range: CellRange,
        /// The cells in it.
        cells: u64,
    },
    /// The format cannot be written.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Writes `range` of `sheet` (its used range if `None`) as CSV in
/// `format`: one line a row through its last cell that is set (blank cells
/// before it are empty fields), a row with none an empty line, the last
/// line ending in a line break only if `format.final_newline`; values as
/// [`value_text`] shows them. Reads a band of rows at a time. Returns the
/// rows written.
///
/// # Errors
///
/// [`ExportError`].
pub async fn export_csv<W: std::io::Write>(
    sheet: &Spreadsheet,
    writer: W,
    range: Option<CellRange>,
    format: &CsvFormat,
) -> Result<u64, ExportError> {
    let encoding = format.encoding;
    if encoding.output_encoding() != encoding {
        return Err(FormatError::ReadOnlyEncoding(encoding.name()).into());
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, EncodingWriter::new(writer, encoding));
    let line_end: &[u8] = if format.crlf { b"\r\n" } else { b"\n" };
    let Some(range) = range.or_else(|| used_range(sheet)) else {
        out.into_inner().map_err(|e| e.into_error())?.finish()?;
        return Ok(0);
    };
    let cells = range.cell_count();
    if cells > EXPORT_LIMIT {
        return Err(ExportError::TooLarge { range, cells });
    }
    let mut written = 0u64;
    let lines = range.height();
    for area in bands(range, band_rows(range)) {
        for row in read_range(sheet, area).await? {
            if written > 0 {
                out.write_all(line_end)?;
            }
            let used = row.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
            for (i, cell) in row[..used].iter().enumerate() {
                if i > 0 {
                    out.write_all(&[format.delimiter])?;
                }
                let text = cell
                    .as_ref()
                    .map(|c| value_text(&c.value))
                    .unwrap_or_default();
                write_field(&mut out, &text, format.delimiter, used == 1)?;
            }
            written += 1;
        }
    }
    if written == lines && format.final_newline {
        out.write_all(line_end)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.finish()?;
    Ok(written)
}

/// Writes one CSV field, quoted where a reader needs it: when it holds the
/// delimiter, a quote or a line break, or is the only field of its line
/// and empty (an empty line is a row of no cells).
fn write_field(
    out: &mut impl Write,
    text: &str,
    delimiter: u8,
    alone: bool,
) -> std::io::Result<()> {
    let needs_quotes = (alone && text.is_empty())
        || text
            .bytes()
            .any(|b| b == delimiter || matches!(b, b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        return out.write_all(text.as_bytes());
    }
    out.write_all(b"\"")?;
    let mut parts = text.split('"');
    if let Some(first) = parts.next() {
        out.write_all(first.as_bytes())?;
    }
    for part in parts {
        out.write_all(b"\"\"")?;
        out.write_all(part.as_bytes())?;
    }
    out.write_all(b"\"")
}

/// A cell as JSON: `{"value": ...}` plus `"format"` if it has one; an
/// error value is `{"error": "#N/A"}`; an empty cell's value is `null`.
pub fn cell_json(cell: &Cell) -> serde_json::Value {
    use serde_json::json;
    let mut object = match &cell.value {
        CellValue::Empty => json!({ "value": null }),
        CellValue::Text(text) => json!({ "value": text }),
        CellValue::Number(n) => json!({ "value": n }),
        CellValue::Boolean(b) => json!({ "value": b }),
        CellValue::Error(e) => json!({ "error": e.as_str() }),
    };
    if let (Some(format), Some(map)) = (&cell.format, object.as_object_mut()) {
        map.insert("format".into(), json!(format));
    }
    object
}

/// Writes `range` of `sheet` as one JSON object, `{"range": "A1:C3",
/// "rows": [[cell or null, ...], ...]}` ([`cell_json`]; `null` for a blank
/// cell), a band of rows at a time, so memory stays flat however large
/// the range. Returns the rows written.
///
/// # Errors
///
/// [`ExportError`].
pub async fn write_json<W: std::io::Write>(
    sheet: &Spreadsheet,
    mut out: W,
    range: CellRange,
) -> Result<u64, ExportError> {
    let cells = range.cell_count();
    if cells > EXPORT_LIMIT {
        return Err(ExportError::TooLarge { range, cells });
    }
    let to_io = |e: serde_json::Error| std::io::Error::other(e);
    out.write_all(b"{\"range\":")?;
    serde_json::to_writer(&mut out, &range.to_string()).map_err(to_io)?;
    out.write_all(b",\"rows\":[")?;
    let mut written = 0u64;
    for band in bands(range, band_rows(range)) {
        for row in read_range(sheet, band).await? {
            if written > 0 {
                out.write_all(b",")?;
            }
            out.write_all(b"[")?;
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                match cell {
                    Some(cell) => {
                        serde_json::to_writer(&mut out, &cell_json(cell)).map_err(to_io)?
                    }
                    None => out.write_all(b"null")?,
                }
            }
            out.write_all(b"]")?;
            written += 1;
        }
    }
    out.write_all(b"]}\n")?;
    out.flush()?;
    Ok(written)
}

/// Rows a band of `range` holds: about 100,000 cells, 1 to 1,000 rows.
pub fn band_rows(range: CellRange) -> u32 {
    (100_000 / range.width().max(1)).clamp(1, 1_000) as u32
}

/// Writes UTF-8 text to `inner` in another encoding; a character that
/// encoding cannot hold is an error, never replaced.
struct EncodingWriter<W: Write> {
    inner: W,
    encoder: Option<encoding_rs::Encoder>,
    /// The start of a character split between two writes.
    partial: Vec<u8>,
    out: Vec<u8>,
}

impl<W: Write> EncodingWriter<W> {
    fn new(inner: W, encoding: &'static Encoding) -> Self {
        EncodingWriter {
            inner,
            encoder: (encoding != encoding_rs::UTF_8).then(|| encoding.new_encoder()),
            partial: Vec::new(),
            out: Vec::new(),
        }
    }

    fn encode(&mut self, text: &str, last: bool) -> std::io::Result<()> {
        let Some(encoder) = &mut self.encoder else {
            return self.inner.write_all(text.as_bytes());
        };
        let mut text = text;
        loop {
            self.out.clear();
            let room = encoder
                .max_buffer_length_from_utf8_without_replacement(text.len())
                .unwrap_or(text.len() * 4 + 16);
            self.out.reserve(room);
            let (result, read) =
                encoder.encode_from_utf8_to_vec_without_replacement(text, &mut self.out, last);
            self.inner.write_all(&self.out)?;
            match result {
                encoding_rs::EncoderResult::InputEmpty => return Ok(()),
                encoding_rs::EncoderResult::OutputFull => text = &text[read..],
                encoding_rs::EncoderResult::Unmappable(c) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{c:?} cannot be written in {}", encoder.encoding().name()),
                    ));
                }
            }
        }
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.encode("", true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncodingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.encoder.is_none() {
            return self.inner.write(buf);
        }
        self.partial.extend_from_slice(buf);
        let bytes = std::mem::take(&mut self.partial);
        let (text, rest) = match std::str::from_utf8(&bytes) {
            Ok(text) => (text, &[][..]),
            Err(err) if err.error_len().is_none() => {
                let (valid, rest) = bytes.split_at(err.valid_up_to());
                // Valid up to there by the check above.
                (std::str::from_utf8(valid).unwrap_or_default(), rest)
            }
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the text is not UTF-8",
                ));
            }
        };
        let rest = rest.to_vec();
        self.encode(text, false)?;
        self.partial = rest;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_a_range_once() {
        let range: CellRange = "B3:D12".parse().unwrap_or_else(|e| panic!("{e}"));
        let cut: Vec<String> = bands(range, 4).map(|b| b.to_string()).collect();
        assert_eq!(cut, ["B3:D6", "B7:D10", "B11:D12"]);
        let one: CellRange = "A1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bands(one, 100).count(), 1);
        let bottom = CellRange::new(CellRef::new(u32::MAX - 1, 0), CellRef::new(u32::MAX, 0));
        assert_eq!(bands(bottom, 1).count(), 2);
    }
}
