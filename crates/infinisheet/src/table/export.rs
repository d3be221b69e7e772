//! CSV and JSON export of a range, streamed in bands and bounded.

use super::{CsvFormat, FormatError, band_rows, shown_text};
use encoding_rs::Encoding;
use infinisheet_engine::{Cell, CellRange, CellRef, CellValue, Spreadsheet, ViewportError};
use std::io::Write;

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
    /// A cell holds a character the file's encoding cannot hold (nothing
    /// of that cell was written).
    #[error(
        "{character:?} in {cell} cannot be written in {encoding}: export in UTF-8 (--encoding \
         utf-8, and --bom for spreadsheet apps that need the mark)"
    )]
    Unmappable {
        /// The cell.
        cell: CellRef,
        /// The first character of it that cannot be written.
        character: char,
        /// The encoding's name.
        encoding: &'static str,
    },
}

/// The first character of `text` that `encoding` cannot hold, if any.
fn unmappable(text: &str, encoding: &'static Encoding) -> Option<char> {
    if encoding == encoding_rs::UTF_8 || text.is_ascii() {
        return None;
    }
    let (_, _, lossy) = encoding.encode(text);
    if !lossy {
        return None;
    }
    let mut buf = [0u8; 4];
    text.chars()
        .find(|c| encoding.encode(c.encode_utf8(&mut buf)).2)
}

/// Writes `range` of `sheet` (its used range if `None`) as CSV in
/// `format`: one line a row through its last cell that is set (blank cells
/// before it are empty fields), a row with none an empty line, the last
/// line ending in a line break only if `format.final_newline`; values as
/// a spreadsheet shows them ([`shown_text`]: a number through its number
/// format, otherwise as [`value_text`](super::value_text) writes it),
/// empty text as `""`, an empty or blank cell as nothing. Reads a band of
/// rows at a time. Returns the rows written.
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
    if format.bom {
        // U+FEFF, in the file's encoding.
        out.write_all("\u{feff}".as_bytes())?;
    }
    let line_end: &[u8] = if format.crlf { b"\r\n" } else { b"\n" };
    let content = sheet.content();
    let range = match range {
        Some(range) => content.resolve(range),
        None => content.used_range(),
    };
    let Some(range) = range else {
        out.into_inner().map_err(|e| e.into_error())?.finish()?;
        return Ok(0);
    };
    let cells = range.cell_count();
    if cells > EXPORT_LIMIT {
        return Err(ExportError::TooLarge { range, cells });
    }
    let mut written = 0u64;
    let lines = range.height();
    for area in range.bands(band_rows(range)) {
        for (r, row) in sheet.read(area).await?.into_iter().enumerate() {
            if written > 0 {
                out.write_all(line_end)?;
            }
            let used = if format.whole_rows {
                row.len()
            } else {
                row.iter().rposition(Option::is_some).map_or(0, |i| i + 1)
            };
            for (i, cell) in row[..used].iter().enumerate() {
                if i > 0 {
                    out.write_all(&[format.delimiter])?;
                }
                // Empty text is `""`, an empty or blank cell nothing; a
                // number as its format shows it.
                let (text, quoted) = match cell {
                    None => (String::new(), false),
                    Some(cell) => match &cell.value {
                        CellValue::Text(text) if text.is_empty() => (String::new(), true),
                        _ if format.formatted => (shown_text(cell), false),
                        value => (value.to_string(), false),
                    },
                };
                // Checked before any of it is written.
                if let Some(character) = unmappable(&text, encoding) {
                    return Err(ExportError::Unmappable {
                        cell: CellRef::new(
                            area.first.row + r as u32,
                            range.first.column + i as u32,
                        ),
                        character,
                        encoding: encoding.name(),
                    });
                }
                let field = Field {
                    first: i == 0,
                    quoted,
                };
                write_field(&mut out, &text, format, field)?;
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

/// Where a field is, and whether it must be quoted.
#[derive(Clone, Copy)]
struct Field {
    /// The first of its line (a comment byte there would make the line a
    /// comment).
    first: bool,
    /// Quoted whatever it holds (empty text).
    quoted: bool,
}

/// Writes one CSV field, quoted where a reader needs it: when it holds the
/// delimiter, the quote, the escape or a line break, begins its line with
/// the comment byte, or is empty text (a blank or empty cell alone on its
/// line is an empty line, a row of no cells, blank when read). Inside
/// quotes a quote is
/// doubled, or escaped when the format has an escape (which is escaped
/// too).
fn write_field(
    out: &mut impl Write,
    text: &str,
    format: &CsvFormat,
    field: Field,
) -> std::io::Result<()> {
    let special = |b: u8| {
        b == format.delimiter
            || b == format.quote
            || Some(b) == format.escape
            || matches!(b, b'\n' | b'\r')
    };
    // A field alone and empty (a blank or empty cell in a column exported
    // alone) is an empty line, a row of no fields: blank again when read.
    // Quoted, it would read back as empty text.
    let needs_quotes = field.quoted
        || format.quote_all
        || (field.first && format.comment.is_some() && text.bytes().next() == format.comment)
        || text.bytes().any(special);
    if !needs_quotes {
        return out.write_all(text.as_bytes());
    }
    let quote = [format.quote];
    out.write_all(&quote)?;
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match format.escape {
            None => b == format.quote,
            Some(escape) => b == format.quote || b == escape,
        };
        if escaped {
            out.write_all(&text.as_bytes()[start..i])?;
            out.write_all(&[format.escape.unwrap_or(format.quote)])?;
            start = i;
        }
    }
    out.write_all(&text.as_bytes()[start..])?;
    out.write_all(&quote)
}

/// A cell as JSON: `{"value": ...}` plus `"format"` if it has one (and
/// `"shown"`, the value as that format shows it — `"2.50"` for `2.5` in
/// `0.00` — where that differs from the value's text); an error value is
/// `{"error": "#N/A"}`; an empty cell's value is `null`.
pub fn cell_json(cell: &Cell) -> serde_json::Value {
    use serde_json::json;
    let mut object = match &cell.value {
        CellValue::Empty => json!({ "value": null }),
        CellValue::Text(text) => json!({ "value": text }),
        // A whole number as an integer (`7610`, not `7610.0`) where it is
        // exact in both; -0 keeps its sign as `-0.0`.
        CellValue::Number(n)
            if n.fract() == 0.0
                && n.abs() < 2f64.powi(53)
                && !(*n == 0.0 && n.is_sign_negative()) =>
        {
            json!({ "value": *n as i64 })
        }
        CellValue::Number(n) => json!({ "value": n }),
        CellValue::Boolean(b) => json!({ "value": b }),
        CellValue::Error(e) => json!({ "error": e.as_str() }),
    };
    if let (Some(format), Some(map)) = (&cell.format, object.as_object_mut()) {
        map.insert("format".into(), json!(format));
        // What a spreadsheet shows ([`shown_text`]), where the format
        // changes it.
        let shown = super::shown_text(cell);
        if shown != cell.value.to_string() {
            map.insert("shown".into(), json!(shown));
        }
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
    // Whole rows and columns: the part in use.
    let resolved = sheet.content().resolve(range);
    let cells = resolved.map_or(0, |r| r.cell_count());
    if cells > EXPORT_LIMIT {
        return Err(ExportError::TooLarge { range, cells });
    }
    let range = resolved.unwrap_or(range);
    let to_io = |e: serde_json::Error| std::io::Error::other(e);
    out.write_all(b"{\"range\":")?;
    serde_json::to_writer(&mut out, &range.to_string()).map_err(to_io)?;
    out.write_all(b",\"rows\":[")?;
    let mut written = 0u64;
    for band in resolved.into_iter().flat_map(|r| r.bands(band_rows(r))) {
        for row in sheet.read(band).await? {
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
            // Nothing of a text that cannot be written is written: a
            // buffer in front that tries again writes nothing twice.
            match result {
                encoding_rs::EncoderResult::InputEmpty => return self.inner.write_all(&self.out),
                encoding_rs::EncoderResult::OutputFull => {
                    self.inner.write_all(&self.out)?;
                    text = &text[read..];
                }
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
