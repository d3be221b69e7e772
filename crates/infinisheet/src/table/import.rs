//! CSV import: a file's rows as one block entry (or a few), with the
//! dialect and types asked for, reporting how much landed if it stops.

use super::csv_read::{CsvReader, Record};
use super::{CsvError, CsvFormat, whole_sheet};
use futures::{StreamExt, stream};
use infinisheet_engine::{
    BlockError, BlockRows, BulkEntries, Cell, CellRef, CellValue, EditError, MAX_BLOCK_CELLS,
    Spreadsheet,
};

/// How fields become values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Types {
    /// A field is a number, boolean or error value when it is written
    /// exactly as that value is ([`CellValue::parse`]); otherwise text.
    #[default]
    Auto,
    /// Every field is text (an unquoted empty field an empty cell).
    Text,
    /// As [`Auto`](Types::Auto), and a number written in a form a number
    /// format gives back exactly (`06`, `34.0900000`, `1,234.50`, `12.5%`)
    /// is that number with that format (`00`, `0.0000000`, `#,##0.00`,
    /// `0.0%`): the value can be summed and the file comes back the same.
    Numbers,
}

/// A field as a cell: a quoted empty field (`""`) is empty text, an
/// unquoted one an empty cell (PostgreSQL's `COPY` convention).
fn cell_of(field: &str, quoted: bool, types: Types) -> Cell {
    if field.is_empty() {
        return Cell::new(if quoted {
            CellValue::Text(String::new())
        } else {
            CellValue::Empty
        });
    }
    match types {
        Types::Text => Cell::new(CellValue::Text(field.to_owned())),
        Types::Auto => Cell::new(CellValue::parse(field)),
        Types::Numbers => match CellValue::parse(field) {
            CellValue::Text(text) => match super::shown::number_with_format(&text) {
                Some((number, format)) => Cell::new(CellValue::Number(number)).with_format(format),
                None => Cell::new(CellValue::Text(text)),
            },
            value => Cell::new(value),
        },
    }
}

/// How [`import_csv`] reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    /// Where the file's first field goes.
    pub origin: CellRef,
    /// Cells per log entry: each batch of rows is one block entry.
    pub batch: usize,
    /// Cells between entries that ask for a snapshot (the last entry
    /// always asks): a worker writes each while the import goes on, and an
    /// import killed part way leaves at most this many cells without a
    /// snapshot job. 0 is taken as 1.
    pub snapshot_every: u64,
    /// How fields become values.
    pub types: Types,
    /// The file's delimiter and encoding.
    pub format: CsvFormat,
    /// Clear the whole sheet first (in the same append as the first block).
    pub replace: bool,
    /// Take a quoted field that is never closed as it is (the rest of the
    /// file, in one field) instead of refusing the file.
    pub lenient: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            origin: CellRef::new(0, 0),
            batch: 100_000,
            snapshot_every: 2_000_000,
            types: Types::Auto,
            format: CsvFormat::default(),
            replace: false,
            lenient: false,
        }
    }
}

/// Error of importing a CSV file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file is not CSV as the format says (or cannot be read).
    #[error("reading CSV: {0}")]
    Csv(#[from] CsvError),
    /// The data does not fit the sheet (more than 2^32 rows or columns).
    #[error("the data does not fit in the sheet from {origin}")]
    TooLarge {
        /// Where the import started.
        origin: CellRef,
    },
    /// An edit failed; the rows before it are in the sheet.
    #[error("writing to the sheet: {0}")]
    Edit(#[from] EditError),
    /// The parsing thread ended before the file did without saying why:
    /// the runtime is shutting down.
    #[error("the import stopped before the end of the file: the runtime is shutting down")]
    Stopped,
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
    /// Whether the file begins with a UTF-8 byte-order mark.
    pub bom: bool,
    /// Whether every field of the file was quoted (as some programs write
    /// every field): [`CsvFormat::quote_all`] writes it back so.
    pub quoted_all: bool,
    /// The line breaks between rows, of each kind.
    pub breaks: LineBreaks,
    /// The line of the first unquoted field holding a quote (`5" disk`),
    /// which an export writes quoted (`"5"" disk"`), if any.
    pub bare_quote: Option<u64>,
    /// The file was read in a one-byte encoding (`latin1`...) though it
    /// begins as UTF-8 with letters beyond ASCII: most likely it is UTF-8,
    /// and each such letter was read as two or three.
    pub looks_utf8: bool,
}

/// How many line breaks of each kind a file has between its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineBreaks {
    /// `\n`.
    pub lf: u64,
    /// `\r\n`.
    pub crlf: u64,
    /// `\r` alone (old Mac files).
    pub cr: u64,
}

/// Reads CSV from `reader` into `sheet` as `options` say, one block entry
/// per batch of rows. `progress` hears the bytes read so far after each
/// append.
///
/// The entries go to the sheet's log and nowhere else
/// ([`Spreadsheet::bulk`]): `sheet`'s content does not hold the cells
/// (that would be the whole file in memory) until it loads them. Every 2
/// million cells (`snapshot_every`) an entry asks for a snapshot, and so
/// does the last: a worker writes each streaming from the log
/// ([`write_snapshot_from_log`](infinisheet_engine::write_snapshot_from_log)),
/// in as little memory, while the import goes on (a worker in the same
/// process, a catalog's `SheetWriter`'s, works on the other core), and an
/// import killed part way leaves at most 2 million cells without a
/// snapshot job. After the last, [`Spreadsheet::reload`] reads none of
/// the cells but the tiles a viewport needs (a `SheetWriter` waits for it
/// with `idle`). Until then [`Spreadsheet::sync`] or `reload` read every
/// cell since the newest snapshot into memory, as opening the sheet does.
/// An import that stops part way asks for the snapshot of what it
/// appended.
///
/// `reader` is read on the calling task, never blocking it; decoding
/// and parsing (each field written straight into its block's encoding,
/// [`BlockRows`]: no cell is made) run on one of the runtime's blocking
/// threads ([`tokio::task::spawn_blocking`]), and each batch's block is
/// encoded and compressed on another, beside the appends: while a batch
/// is appended the next is encoded and the one after parsed. At most a
/// few batches and a few MiB of the file are held at once, however large
/// it is. Needs a tokio
/// runtime (either flavour). Any `tokio::io::AsyncRead` does: a byte slice,
/// `tokio::fs::File` (tokio's `fs` feature), `tokio::io::stdin()`
/// (`io-std`). `sheet` is a [`Spreadsheet`], or a catalog's
/// `SheetWriter` (through `Deref`).
///
/// ```
/// # use infinisheet::engine::Spreadsheet;
/// # async fn example(sheet: &Spreadsheet) -> Result<(), Box<dyn std::error::Error>> {
/// use infinisheet::table::{ImportOptions, import_csv};
/// let options = ImportOptions::default();
/// let csv = b"name,amount\nrent,1200\n";
/// let report = import_csv(sheet, &csv[..], &options, |_| {}).await?;
/// assert_eq!((report.rows, report.cells), (2, 4));
/// sheet.sync().await?; // the content reads the new cells (two, here)
/// // A file, saying how far it got:
/// let file = tokio::fs::File::open("data.csv").await?;
/// import_csv(sheet, file, &options, |bytes| eprintln!("{bytes} bytes read")).await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`ImportFailed`]: why the import stopped ([`ImportError`]) and how many
/// rows and cells it had appended by then, which stay in the sheet.
pub async fn import_csv<R: tokio::io::AsyncRead + Unpin>(
    sheet: &Spreadsheet,
    reader: R,
    options: &ImportOptions,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportFailed> {
    use tokio::io::AsyncReadExt;
    use tokio::sync::mpsc;
    let (chunks, chunks_in) = mpsc::channel::<std::io::Result<Vec<u8>>>(2);
    let (batches_out, mut batches) = mpsc::channel::<Result<Parsed, ImportError>>(1);
    // Rows encoded go back to the parser, emptied, to be filled again.
    let (spare_rows, spare) = std::sync::mpsc::channel::<BlockRows>();
    let parse_options = *options;
    let parser = tokio::task::spawn_blocking(move || {
        parse(
            Chunks {
                incoming: chunks_in,
                current: Vec::new(),
                at: 0,
                failed: None,
            },
            &parse_options,
            &Out {
                batches: batches_out,
                spare,
            },
        );
    });
    let mut committed = ImportReport::default();
    let mut bulk = sheet.bulk();
    let result = {
        // The file, read a chunk at a time until it ends or the parser
        // stops taking chunks.
        let feed = async move {
            let mut reader = reader;
            loop {
                let mut chunk = Vec::with_capacity(CHUNK);
                let read = reader.read_buf(&mut chunk).await;
                let more = matches!(read, Ok(n) if n > 0);
                let sent = match read {
                    Ok(0) => break,
                    Ok(_) => chunks.send(Ok(chunk)).await,
                    Err(error) => chunks.send(Err(error)).await,
                };
                if sent.is_err() || !more {
                    break;
                }
            }
        };
        let append = async {
            // Each batch's block encoded and compressed on the blocking
            // pool, beside the parsing of the next and the append of the
            // one before: the parser takes a core, and the rest of the
            // work the other.
            let encoded = stream::poll_fn(|cx| batches.poll_recv(cx))
                .map(|parsed| async {
                    let parsed = parsed?;
                    let Parsed {
                        batch,
                        report,
                        position,
                        last,
                    } = parsed;
                    let edits = match tokio::task::spawn_blocking(move || batch.encode()).await {
                        Ok((edits, mut rows)) => {
                            rows.clear();
                            let _ = spare_rows.send(rows);
                            edits?
                        }
                        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                        Err(_) => return Err(ImportError::Stopped),
                    };
                    Ok::<_, ImportError>((edits, report, position, last))
                })
                .buffered(2);
            let mut encoded = std::pin::pin!(encoded);
            // The cells appended since an entry last asked for a snapshot.
            let mut asked_at = 0;
            while let Some(encoded) = encoded.next().await {
                let (edits, report, position, last) = encoded?;
                if !edits.is_empty() {
                    let ask = last || report.cells - asked_at >= options.snapshot_every.max(1);
                    bulk.append(edits, ask).await?;
                    if ask {
                        asked_at = report.cells;
                    }
                }
                committed = report;
                progress(position);
                if last {
                    return Ok(committed);
                }
            }
            Err(ImportError::Stopped)
        };
        tokio::pin!(feed, append);
        // Once the appends end (done or failed) the file is read no more.
        tokio::select! {
            result = &mut append => result,
            () = &mut feed => append.await,
        }
    };
    // The parser ends with its channels; a panic in it is not lost.
    drop(batches);
    if let Err(joined) = parser.await
        && joined.is_panic()
    {
        std::panic::resume_unwind(joined.into_panic());
    }
    if result.is_err() {
        // What landed waits for its snapshot no longer than the next pass
        // of a worker (the last entry would have asked). Best effort: a
        // log that failed the import may fail this too, and the import's
        // own error is the one to report.
        let _ = bulk.ask_snapshot().await;
    }
    result.map_err(|error| ImportFailed { committed, error })
}

/// How much of the file one read takes.
const CHUNK: usize = 1 << 20;

/// What the parser hands the appends: a batch of rows, the report as it
/// stands once they are in, and where in the file they end.
struct Parsed {
    batch: Batch,
    report: ImportReport,
    position: u64,
    /// The file's last batch (its report says how the file ends).
    last: bool,
}

/// The file's chunks as the reader the parser reads, on a blocking thread.
struct Chunks {
    incoming: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    /// A failed read received ahead (by `starts_as_utf8`), told next.
    failed: Option<std::io::Error>,
}

impl Chunks {
    /// Whether the file's first chunk is UTF-8 holding more than ASCII (a
    /// character cut at its end counts as UTF-8); receives that chunk.
    fn starts_as_utf8(&mut self) -> bool {
        if self.current.is_empty() {
            match self.incoming.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(err)) => self.failed = Some(err),
                None => {}
            }
        }
        let bytes = &self.current[self.at..];
        let valid = match std::str::from_utf8(bytes) {
            Ok(_) => bytes.len(),
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            Err(_) => return false,
        };
        !bytes[..valid].is_ascii()
    }
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        while self.at == self.current.len() {
            match self.incoming.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => {
                    self.current = chunk?;
                    self.at = 0;
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Where the parser's batches go, and where the rows of batches encoded
/// come back.
struct Out {
    batches: tokio::sync::mpsc::Sender<Result<Parsed, ImportError>>,
    spare: std::sync::mpsc::Receiver<BlockRows>,
}

/// Decodes and parses `input` into batches, sent to `out` until the file
/// ends, an error stops it (sent too) or no one takes them.
fn parse(mut input: Chunks, options: &ImportOptions, out: &Out) {
    let encoding = options.format.encoding;
    let result = if encoding == encoding_rs::UTF_8 {
        // Invalid UTF-8 is an error, never replaced.
        parse_rows(input, options, out, false)
    } else {
        let looks_utf8 = encoding.is_single_byte() && input.starts_as_utf8();
        let reader = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .build(input);
        parse_rows(reader, options, out, looks_utf8)
    };
    if let Err(error) = result {
        let _ = out.batches.blocking_send(Err(error));
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

fn parse_rows<R: std::io::Read>(
    reader: R,
    options: &ImportOptions,
    out: &Out,
    looks_utf8: bool,
) -> Result<(), ImportError> {
    let origin = options.origin;
    let mut csv = CsvReader::new(reader, &options.format, options.lenient);
    // Cells a block may hold: the batch asked for, at most what a block
    // can hold.
    let cap = options.batch.clamp(1, MAX_BLOCK_CELLS) as u64;
    let mut report = ImportReport {
        looks_utf8,
        ..ImportReport::default()
    };
    let mut pending = Pending {
        first_row: 0,
        rows: BlockRows::new(),
        width: 0,
        clear: options.replace,
    };
    let mut record = Record::default();
    // Sends the rows pending (not the last batch: a row follows).
    let send = |pending: &mut Pending, report: &mut ImportReport, at: u64| {
        let batch = pending.take(origin, report, false, &out.spare)?;
        let parsed = Parsed {
            batch,
            report: *report,
            position: at,
            last: false,
        };
        Ok::<bool, ImportError>(out.batches.blocking_send(Ok(parsed)).is_ok())
    };
    // Empty lines read after the pending rows and not yet among them: they
    // join the block only with a row after them that fits it too, so a
    // wide row above many empty lines is not a rectangle of nothing, and
    // empty lines at the end take no room at all.
    let mut blank = 0u64;
    // A decoder puts U+FFFD for bytes that are not text in its encoding:
    // in a legacy encoding (which cannot hold U+FFFD) that is a file in
    // another one.
    let encoding = options.format.encoding;
    let legacy = encoding != encoding_rs::UTF_8
        && encoding != encoding_rs::UTF_16LE
        && encoding != encoding_rs::UTF_16BE;
    let mut quoted_all = true;
    while csv.read(&mut record)? {
        if record.len() == 0 {
            blank += 1;
            continue;
        }
        if legacy && let Some(line) = record.replacement_line() {
            return Err(CsvError::NotInEncoding {
                line,
                encoding: encoding.name(),
            }
            .into());
        }
        quoted_all &= record.all_quoted();
        let at = csv.position();
        // The block with the empty lines and this row, as wide as its
        // widest row: sent first if that would pass the cap, so a block is
        // built within its limit, never past it.
        let rows = pending.rows.rows() as u64 + blank + 1;
        let area = rows * pending.width.max(record.len()) as u64;
        if pending.rows.rows() > 0
            && (area > cap || rows > cap)
            && !send(&mut pending, &mut report, at)?
        {
            return Ok(()); // no one takes the batches: the appends stopped
        }
        if pending.rows.rows() == 0 {
            // Leading empty lines: only the rows they take.
            pending.first_row += blank;
        } else {
            for _ in 0..blank {
                pending.rows.end_row();
            }
        }
        report.rows += blank + 1;
        blank = 0;
        // Written straight into the block's encoding: no cell is made.
        for (field, quoted) in record.fields() {
            match options.types {
                _ if field.is_empty() && quoted => pending.rows.push_text(""),
                Types::Auto => pending.rows.push_parsed(field),
                Types::Text if !field.is_empty() => pending.rows.push_text(field),
                types => pending.rows.push_cell(&cell_of(field, quoted, types)),
            }
        }
        pending.rows.end_row();
        pending.width = pending.width.max(record.len());
        report.columns = report.columns.max(record.len() as u64);
    }
    report.rows += blank;
    let batch = pending.take(origin, &mut report, true, &out.spare)?;
    report.crlf = csv.first_crlf() == Some(true);
    report.final_newline = csv.final_newline();
    report.bom = csv.bom();
    report.quoted_all = quoted_all && report.cells > 0;
    report.bare_quote = csv.bare_quote();
    let [lf, crlf, cr] = csv.breaks();
    report.breaks = LineBreaks { lf, crlf, cr };
    let position = csv.position();
    let _ = out.batches.blocking_send(Ok(Parsed {
        batch,
        report,
        position,
        last: true,
    }));
    Ok(())
}

/// The rows read and not yet appended.
struct Pending {
    /// Their widest row.
    width: usize,
    /// Their first row, counted from the import's origin.
    first_row: u64,
    rows: BlockRows,
    /// Clear the sheet with the next append.
    clear: bool,
}

impl Pending {
    /// The rows as the batch of one append: a block (after a clear of the
    /// sheet, the first time if asked). The `last` append puts its final
    /// row in a block of its own: a snapshot holds the entries before the
    /// one that asks for it, so the snapshot the import asks for then
    /// holds all but that row. The rows go on with `spare` rows, when
    /// some came back.
    fn take(
        &mut self,
        origin: CellRef,
        report: &mut ImportReport,
        last: bool,
        spare: &std::sync::mpsc::Receiver<BlockRows>,
    ) -> Result<Batch, ImportError> {
        let count = self.rows.rows();
        let cells = self.rows.cells();
        let row = u32::try_from(u64::from(origin.row) + self.first_row)
            .ok()
            .filter(|_| cells > 0);
        if cells > 0 && row.is_none() {
            return Err(ImportError::TooLarge { origin });
        }
        let tail = if count > 0 {
            self.rows.row_cells(count - 1)
        } else {
            0
        };
        let batch = Batch {
            clear: self.clear,
            origin,
            at: row.map(|row| CellRef::new(row, origin.column)),
            split: last && tail > 0 && cells > u64::from(tail),
            rows: std::mem::replace(&mut self.rows, spare.try_recv().unwrap_or_default()),
        };
        report.cells += cells;
        self.first_row += count as u64;
        self.width = 0;
        self.clear = false;
        Ok(batch)
    }
}

/// The rows of one append, not yet encoded.
struct Batch {
    /// Clear the sheet first.
    clear: bool,
    /// The import's origin.
    origin: CellRef,
    /// Where the first row goes (`None`: no cells).
    at: Option<CellRef>,
    /// The last row goes in a block of its own.
    split: bool,
    rows: BlockRows,
}

impl Batch {
    /// Its entries (the clear, if asked, and the block or two of its
    /// rows), and its rows, to be used again.
    fn encode(self) -> (Result<BulkEntries, ImportError>, BlockRows) {
        let entries = self.entries();
        (entries, self.rows)
    }

    fn entries(&self) -> Result<BulkEntries, ImportError> {
        let too_large = || ImportError::TooLarge {
            origin: self.origin,
        };
        let mut entries = BulkEntries::new();
        if self.clear {
            entries.push_clear(whole_sheet());
        }
        if let Some(at) = self.at {
            let count = self.rows.rows();
            let body = if self.split { count - 1 } else { count };
            let mut block = |at: CellRef, rows: std::ops::Range<usize>| {
                match entries.push_rows(at, &self.rows, rows) {
                    Ok(()) | Err(BlockError::NoWidth) => Ok(()), // only empty lines
                    Err(_) => Err(too_large()),
                }
            };
            block(at, 0..body)?;
            if self.split {
                let tail_row = at.row.checked_add(body as u32).ok_or_else(too_large)?;
                block(CellRef::new(tail_row, at.column), body..count)?;
            }
        }
        Ok(entries)
    }
}
