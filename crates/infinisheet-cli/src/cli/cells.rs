//! `set`, `clear`, `get`, `import`, `export`, `log`, `snapshot`: a sheet's
//! cells and its log.

use super::{Place, counted, finish, note_pending, print_table};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use infinisheet::engine::{SNAPSHOT_WORKFLOW, SheetEntry, entry_time};
use infinisheet::event_log::{
    Bounds, EventLogExt, FieldUpdate, KnownSnapshot, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet::table::{
    CsvFormat, ImportOptions, LineBreaks, Types, cell_json, export_csv, import_csv, shown_text,
    value_text, whole_sheet, write_json,
};
use infinisheet::workflow::{JobOutcome, read_payloads};
use infinisheet::{
    CatalogError, Cell, CellRange, CellRef, CellValue, SheetOptions, SnapshotWorker,
};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct Set {
    /// The sheet.
    sheet: String,
    /// The cell, such as B2.
    cell: String,
    /// The value: a number as it is written back (42, -1.5, 1e300), TRUE or
    /// FALSE, an error value (#N/A), or text (anything else, kept as
    /// typed; a leading apostrophe makes the rest text: '007); empty for an
    /// explicitly empty cell.
    #[arg(allow_hyphen_values = true)]
    value: String,
    /// How to show the value (the sheet stores it as it is).
    #[arg(long)]
    format: Option<String>,
    /// Leave the snapshot this edit may ask for to a `worker` process.
    #[arg(long)]
    no_worker: bool,
}

pub(crate) async fn set(place: &Place, args: Set) -> anyhow::Result<()> {
    let at: CellRef = args.cell.parse()?;
    let (_, sheet) = place.sheet(&args.sheet).await?;
    let cells = sheet.writer(!args.no_worker).await?;
    let mut cell = Cell::new(CellValue::from_input(&args.value));
    if let Some(format) = args.format {
        cell = cell.with_format(format);
    }
    let seq = cells.set_cell(at.row, at.column, cell).await?;
    finish(cells).await;
    saidln!("{} {at} (entry {seq})", sheet.path());
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Clear {
    /// The sheet.
    sheet: String,
    /// The cells to make blank, such as B2:D40; `all` for every cell.
    range: String,
    /// Leave the snapshot this edit may ask for to a `worker` process.
    #[arg(long)]
    no_worker: bool,
}

pub(crate) async fn clear(place: &Place, args: Clear) -> anyhow::Result<()> {
    let range = if args.range.eq_ignore_ascii_case("all") {
        whole_sheet()
    } else {
        args.range.parse::<CellRange>()?
    };
    let (_, sheet) = place.sheet(&args.sheet).await?;
    let cells = sheet.writer(!args.no_worker).await?;
    let seq = cells.clear(range).await?;
    finish(cells).await;
    saidln!("{} {range} cleared (entry {seq})", sheet.path());
    Ok(())
}

/// The most cells `get` prints.
const GET_LIMIT: u64 = 1_000_000;

#[derive(Debug, clap::Args)]
pub(crate) struct Get {
    /// The sheet.
    sheet: String,
    /// A cell or range, such as A1:F20, or whole columns or rows (A:C,
    /// 2:5); the used range if left out.
    range: Option<String>,
    /// How to print: an aligned `table` of values as a spreadsheet shows
    /// them (their number formats applied), `markdown`, or for scripts
    /// `csv`, `tsv` (every row as wide as the range), `json` or `raw`
    /// (values alone, tab-separated; a backslash, tab or line break in a
    /// value written `\\`, `\t`, `\n`, `\r`).
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Print JSON (as `--output json`): the range and its rows of cells,
    /// with their formats (null for blank ones).
    #[arg(long, conflicts_with_all = ["output", "raw"])]
    json: bool,
    /// Print the values alone (as `--output raw`): `$(infinisheet get s A1 --raw)`.
    #[arg(long, conflicts_with = "output")]
    raw: bool,
    /// In a table or markdown, show the values as stored, without their
    /// number formats.
    #[arg(long)]
    unformatted: bool,
}

/// How `get` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// An aligned table with column letters and row numbers.
    Table,
    /// A Markdown table.
    Markdown,
    /// CSV, every row as wide as the range (`export` ends a row at its
    /// last cell in use).
    Csv,
    /// Tab-separated values, every row as wide as the range.
    Tsv,
    /// One JSON object: the range and its rows of cells.
    Json,
    /// Values alone, a tab between cells and a line a row, no header.
    Raw,
}

pub(crate) async fn get(place: &Place, args: Get) -> anyhow::Result<()> {
    let (_, sheet) = place.reader_sheet(&args.sheet).await?;
    let cells = sheet.open().await?;
    note_pending(&sheet).await;
    let output = match (args.json, args.raw) {
        (true, _) => Output::Json,
        (_, true) => Output::Raw,
        _ => args.output,
    };
    // Nothing in use where asked: for a person, a sentence; for a script,
    // no cells (an empty JSON range, no lines), never a sentence it would
    // take for a cell's value.
    let nothing = |asked: Option<CellRange>, said: String| -> anyhow::Result<()> {
        match output {
            Output::Json => {
                outln!(
                    "{}",
                    json!({ "range": asked.map(|r| r.to_string()), "rows": [] })
                );
            }
            Output::Csv | Output::Tsv | Output::Raw => {}
            Output::Table | Output::Markdown => outln!("{said}"),
        }
        Ok(())
    };
    let range = match &args.range {
        Some(text) => {
            let asked = text.parse::<CellRange>()?;
            // Whole rows and columns (A:C, 2:5): the part in use.
            match cells.content().resolve(asked) {
                Some(range) => range,
                None => {
                    return nothing(Some(asked), format!("{asked} of {} is empty", sheet.path()));
                }
            }
        }
        None => match cells.content().used_range() {
            Some(range) => range,
            None => return nothing(None, format!("{} is empty", sheet.path())),
        },
    };
    let size = range.cell_count();
    if size > GET_LIMIT {
        bail!("{range} holds {size} cells; get prints at most {GET_LIMIT} (use export)");
    }
    let text = |cell: &Option<Cell>, shown: bool| match cell {
        Some(cell) if shown => shown_text(cell),
        Some(cell) => value_text(&cell.value),
        None => String::new(),
    };
    let shown = !args.unformatted;
    match output {
        Output::Json => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            write_json(&cells, &mut out, range).await?;
            out.flush()?;
        }
        Output::Csv | Output::Tsv => {
            let delimiter = if output == Output::Tsv { b'\t' } else { b',' };
            // A range is a rectangle: every row as wide as the range; the
            // values as `raw` prints them.
            let format = CsvFormat {
                delimiter,
                whole_rows: true,
                formatted: false,
                ..CsvFormat::default()
            };
            export_csv(&cells, std::io::stdout().lock(), Some(range), &format).await?;
        }
        Output::Raw => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for row in cells.read(range).await? {
                let texts: Vec<String> = row
                    .iter()
                    .map(|c| raw_field(&text(c, false)).into_owned())
                    .collect();
                writeln!(out, "{}", texts.join("\t"))?;
            }
            out.flush()?;
        }
        Output::Table => {
            let rows = cells.read(range).await?;
            let texts: Vec<Vec<String>> = rows
                .iter()
                .map(|row| row.iter().map(|c| text(c, shown)).collect())
                .collect();
            print_table(range, &texts)?;
        }
        Output::Markdown => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let letters: Vec<String> = range.columns().map(CellRef::column_name).collect();
            writeln!(out, "| | {} |", letters.join(" | "))?;
            writeln!(out, "|---|{}", "---|".repeat(letters.len()))?;
            for (row, cells) in range.rows().zip(cells.read(range).await?) {
                let texts: Vec<String> = cells
                    .iter()
                    .map(|c| markdown_cell(&text(c, shown)))
                    .collect();
                writeln!(out, "| {} | {} |", u64::from(row) + 1, texts.join(" | "))?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

/// A value in `--raw` output: a backslash, tab or line break escaped
/// (`\\`, `\t`, `\n`, `\r`, as PostgreSQL's text format does), so fields
/// stay split by tabs and rows by lines whatever the cells hold.
fn raw_field(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A value as `log` shows it: a number, boolean or error value bare
/// (`42`, `TRUE`, `#N/A`), text quoted — terminal-safe, and cut to 60
/// columns with its length in bytes when longer — and `(empty)`.
fn value_literal(value: &CellValue) -> String {
    const WIDEST: usize = 60;
    match value {
        CellValue::Text(text) => {
            let safe = super::terminal_safe(text);
            let shown = super::clip(&safe, WIDEST);
            if shown.len() < safe.len() {
                format!("\"{shown}\" ({} bytes)", text.len())
            } else {
                format!("\"{shown}\"")
            }
        }
        CellValue::Empty => "(empty)".to_owned(),
        other => value_text(other),
    }
}

/// A cell's text inside a Markdown table: `|` escaped, line breaks as
/// `<br>`, other control characters as visible escapes.
fn markdown_cell(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('|', "\\|");
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| super::terminal_safe(line).into_owned())
        .collect();
    lines.join("<br>")
}

/// The CSV format options `import` and `export` share.
#[derive(Debug, clap::Args)]
pub(crate) struct Format {
    /// The field delimiter: one character, or `tab`.
    #[arg(long, default_value = ",")]
    delimiter: String,
    /// The file's character encoding (a WHATWG label: utf-8, windows-1252,
    /// iso-8859-1, shift_jis…).
    #[arg(long, default_value = "utf-8")]
    encoding: String,
    /// The quote character around fields that hold a delimiter, a quote or
    /// a line break.
    #[arg(long, default_value = "\"")]
    quote: String,
    /// The character that escapes a quote inside quotes (`\\` for files
    /// that write `\"`); without it a quote inside quotes is doubled (`""`).
    #[arg(long)]
    escape: Option<String>,
    /// Lines that begin with this character are comments: left out when
    /// imported (when exported, a line's first field that begins with it
    /// is quoted).
    #[arg(long)]
    comment: Option<String>,
}

impl Format {
    fn csv(&self, crlf: bool, final_newline: bool) -> anyhow::Result<CsvFormat> {
        let delimiter = CsvFormat::delimiter(&self.delimiter)?;
        let quote = CsvFormat::character("quote", &self.quote, delimiter, 0)?;
        let other = |what, text: &Option<String>| {
            text.as_deref()
                .map(|text| CsvFormat::character(what, text, delimiter, quote))
                .transpose()
        };
        Ok(CsvFormat {
            delimiter,
            quote,
            escape: other("escape", &self.escape)?,
            comment: other("comment", &self.comment)?,
            quote_all: false,
            bom: false,
            crlf,
            final_newline,
            encoding: CsvFormat::encoding(&self.encoding)?,
            whole_rows: false,
            formatted: true,
        })
    }
}

/// `--types`: how fields become values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TypesArg {
    /// Numbers, booleans and error values where the field is written
    /// exactly as the value is; text otherwise.
    Auto,
    /// Every field is text.
    Text,
    /// As `auto`, and numbers written in a form a number format gives back
    /// exactly (`06`, `34.0900000`, `1,234.50`, `12.5%`) are numbers with
    /// that format, so they can be summed and export writes them back the
    /// same.
    Numbers,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Import {
    /// The sheet.
    sheet: String,
    /// The CSV file (`-` for standard input).
    file: PathBuf,
    /// Where the file's first field goes.
    #[arg(long, default_value = "A1")]
    at: String,
    /// Cells per log entry (each batch of rows is one block entry).
    #[arg(long, default_value_t = 100_000)]
    batch: usize,
    /// Cells between entries that ask for a snapshot (the last always
    /// asks): a worker writes them as the import goes on, and a sheet
    /// opened before the next one is written reads at most this many
    /// cells of the import.
    #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: u64,
    /// How fields become values.
    #[arg(long, value_enum, default_value = "auto")]
    types: TypesArg,
    /// Clear the whole sheet first, so it holds the file and nothing else.
    #[arg(long)]
    replace: bool,
    /// Create the sheet if there is none at the path (with the default
    /// options; `new` takes others).
    #[arg(long)]
    create: bool,
    /// Take a quoted field that is never closed as it is (the rest of the
    /// file in one cell) instead of refusing the file.
    #[arg(long)]
    lenient: bool,
    #[command(flatten)]
    format: Format,
    /// Leave the snapshots to a `worker` process.
    #[arg(long)]
    no_worker: bool,
}

pub(crate) async fn import(place: &Place, args: Import) -> anyhow::Result<()> {
    let options = ImportOptions {
        origin: args.at.parse::<CellRef>()?,
        batch: args.batch,
        snapshot_every: args.snapshot_every,
        types: match args.types {
            TypesArg::Auto => Types::Auto,
            TypesArg::Text => Types::Text,
            TypesArg::Numbers => Types::Numbers,
        },
        format: args.format.csv(false, true)?,
        replace: args.replace,
        lenient: args.lenient,
    };
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if args.file.as_os_str() == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(&args.file)
                .await
                .with_context(|| format!("opening {}", args.file.display()))?,
        )
    };
    let total = std::fs::metadata(&args.file).map_or(0, |m| m.len());
    let catalog = place.catalog().await?;
    // A missing sheet is made only when asked: a mistyped path creates
    // nothing.
    let mut created = false;
    let sheet = match catalog.open_sheet(&args.sheet).await {
        Ok(sheet) => sheet,
        Err(CatalogError::NotFound { .. }) if args.create => {
            created = true;
            catalog
                .create_sheet(&args.sheet, SheetOptions::default())
                .await
                .with_context(|| format!("creating {}", args.sheet))?
        }
        Err(CatalogError::NotFound { path }) => bail!(
            "{path} does not exist: create it with `infinisheet new {path}` (or import with \
             --create)"
        ),
        Err(err) => return Err(err.into()),
    };
    let cells = sheet.writer(!args.no_worker).await?;
    // A bar when the size is known (a file), a running count when it is
    // not (standard input, a pipe); nothing with -q or off a terminal.
    let bar = if super::quiet() {
        ProgressBar::hidden()
    } else if total > 0 {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {bytes} read {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    };
    let started = std::time::Instant::now();
    let report = match import_csv(&cells, reader, &options, |bytes| bar.set_position(bytes)).await {
        Ok(report) => report,
        Err(failed) => {
            bar.finish_and_clear();
            if created && failed.committed.rows == 0 {
                // Refused before a row landed: the sheet made for it goes
                // too, so a refused file leaves nothing behind.
                drop(cells);
                let _ = catalog.remove(&args.sheet, false).await;
            } else if failed.committed.rows > 0 && cells.has_worker() {
                // The rows that landed stay: their snapshot (which the
                // import asked for) is written before the error is told,
                // as after an import that went through.
                finish_showing(cells, "writing the snapshot of the rows imported").await;
            }
            // The clear goes with the first rows: if any landed, so did it.
            let cleared = if args.replace && failed.committed.rows > 0 {
                " (--replace cleared the sheet first: it holds only these rows)"
            } else {
                ""
            };
            return Err(anyhow::Error::new(failed)
                .context(format!("importing {}{cleared}", args.file.display())));
        }
    };
    bar.finish_and_clear();
    let wrote = started.elapsed();
    let snapshots = if cells.has_worker() {
        finish_showing(cells, "writing the snapshot").await;
        format!(
            "snapshots done {:.2} s later",
            started.elapsed().saturating_sub(wrote).as_secs_f64()
        )
    } else {
        "snapshot jobs are left to a `worker` process".to_owned()
    };
    saidln!(
        "imported {} ({}, {}) into {}{} in {:.2} s; {snapshots}",
        counted(report.cells, "cell", "cells"),
        counted(report.rows, "row", "rows"),
        counted(report.columns, "column", "columns"),
        sheet.path(),
        if created { " (a new sheet)" } else { "" },
        wrote.as_secs_f64(),
    );
    if report.looks_utf8 && !super::quiet() {
        eprintln!(
            "note: the file begins as UTF-8, with letters beyond ASCII, but was read as {}: each \
             such letter became two or three characters; if it is UTF-8, import it again \
             without --encoding",
            options.format.encoding.name()
        );
    }
    let mut flags = Vec::new();
    let mut how = Vec::new();
    if report.bom {
        flags.push("--bom");
        how.push("begins with a byte-order mark");
    }
    if report.quoted_all {
        flags.push("--quote-all");
        how.push("quotes every field");
    }
    let LineBreaks { lf, crlf, cr } = report.breaks;
    let kinds = [lf, crlf, cr].iter().filter(|&&n| n > 0).count();
    let ways = [(lf, "LF"), (crlf, "CRLF"), (cr, "CR")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    let mixed;
    if kinds > 1 {
        mixed = format!(
            "ends its lines in more than one way ({ways}), which export writes all one way \
             (LF, or CRLF with --crlf)"
        );
        how.push(&mixed);
    } else if cr > 0 {
        how.push(
            "ends its lines in CR alone (as old Macs did): export writes LF, or CRLF with --crlf",
        );
    }
    if report.crlf {
        flags.push("--crlf");
        if kinds == 1 {
            how.push("ends its lines in CRLF");
        }
    }
    if !report.final_newline {
        flags.push("--no-final-newline");
        how.push("has no line break after its last line");
    }
    let bare;
    if let Some(line) = report.bare_quote {
        bare = format!(
            "has a quote inside an unquoted field (line {line}), which export writes quoted, its \
             quote doubled (\"5\"\" disk\")"
        );
        how.push(&bare);
    }
    if !how.is_empty() && !super::quiet() {
        let back = match (flags.is_empty(), kinds > 1) {
            (true, _) => String::new(),
            // Mixed line breaks come back one way, whatever the flags.
            (false, true) => format!(
                "; `export {}` writes it back as closely as it can",
                flags.join(" ")
            ),
            (false, false) => format!("; `export {}` writes it back so", flags.join(" ")),
        };
        eprintln!("note: the file {}{back}", how.join(", and "));
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Export {
    /// The sheet.
    sheet: String,
    /// The CSV file to write; standard output if left out or `-`.
    file: Option<PathBuf>,
    /// The range to export; the used range if left out.
    #[arg(long)]
    range: Option<String>,
    #[command(flatten)]
    format: Format,
    /// End lines with CRLF instead of LF.
    #[arg(long)]
    crlf: bool,
    /// Leave the line break after the last line out.
    #[arg(long)]
    no_final_newline: bool,
    /// Begin the file with a UTF-8 byte-order mark.
    #[arg(long)]
    bom: bool,
    /// Quote every field, empty ones too (as files that quote every field
    /// are written).
    #[arg(long)]
    quote_all: bool,
}

pub(crate) async fn export(place: &Place, args: Export) -> anyhow::Result<()> {
    let range = args
        .range
        .as_deref()
        .map(str::parse::<CellRange>)
        .transpose()?;
    let format = CsvFormat {
        bom: args.bom,
        quote_all: args.quote_all,
        ..args.format.csv(args.crlf, !args.no_final_newline)?
    };
    let (_, sheet) = place.reader_sheet(&args.sheet).await?;
    let cells = sheet.open().await?;
    // Standard output by any of its names is the descriptor itself (a
    // shell's `>` or `>>` file keeps its place and its other writes).
    let stdout = ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"];
    match args
        .file
        .as_ref()
        .filter(|path| !stdout.iter().any(|name| path.as_os_str() == *name))
    {
        Some(path) if is_special(path) => {
            // A device, a pipe or a socket (`/dev/null`, `>(gzip)`): written
            // into, never replaced (a rename would put a plain file in its
            // place).
            let file = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            let rows = export_csv(&cells, file, range, &format)
                .await
                .with_context(|| format!("writing {}", path.display()))?;
            if !super::quiet() {
                eprintln!(
                    "exported {} to {}",
                    counted(rows, "row", "rows"),
                    path.display()
                );
            }
        }
        Some(path) => {
            // Written beside the file and renamed over it once whole: an
            // export that fails leaves the file as it was. Through a
            // symbolic link, the file it names is written (made, if the
            // link dangles), not the link; the file keeps its mode and
            // owner.
            let target = link_target(path)?;
            let dir = match target.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => std::path::Path::new("."),
            };
            let temp = tempfile::Builder::new()
                .prefix(".infinisheet-export")
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
                .tempfile_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            if let Ok(old) = std::fs::metadata(&target)
                && old.is_file()
            {
                use std::os::unix::fs::MetadataExt;
                temp.as_file()
                    .set_permissions(old.permissions())
                    .with_context(|| format!("writing {}", path.display()))?;
                // Only root may give a file away; anyone else makes it theirs,
                // as an editor saving over it does.
                let _ = std::os::unix::fs::fchown(temp.as_file(), Some(old.uid()), Some(old.gid()));
            }
            let rows = export_csv(&cells, temp.as_file(), range, &format)
                .await
                .with_context(|| format!("writing {}", path.display()))?;
            temp.as_file()
                .sync_all()
                .with_context(|| format!("writing {}", path.display()))?;
            temp.persist(&target)
                .with_context(|| format!("writing {}", path.display()))?;
            if !super::quiet() {
                eprintln!(
                    "exported {} to {}",
                    counted(rows, "row", "rows"),
                    path.display()
                );
            }
        }
        None => {
            export_csv(&cells, std::io::stdout().lock(), range, &format)
                .await
                .context("writing to standard output")?;
        }
    }
    Ok(())
}

/// Waits for the snapshots an import asked for, with a spinner saying
/// `what` (the work takes a while after a large import).
async fn finish_showing(cells: infinisheet::SheetWriter, what: &'static str) {
    let spinner = if super::quiet() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    spinner.set_message(what);
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    finish(cells).await;
    spinner.finish_and_clear();
}

/// The path a chain of symbolic links from `path` ends at (itself if it
/// is none), whether or not anything is there yet: an export through a
/// dangling link makes the file it names, as `cp` does.
fn link_target(path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let mut at = path.to_path_buf();
    // As many links as Linux follows.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let next = std::fs::read_link(&at)
                    .with_context(|| format!("reading the link {}", at.display()))?;
                // A relative link is relative to its own directory.
                at = match at.parent() {
                    Some(dir) => dir.join(next),
                    None => next,
                };
            }
            _ => return Ok(at),
        }
    }
    bail!(
        "{} is a loop of symbolic links (or a chain of more than 40)",
        path.display()
    )
}

/// Whether `path` names something other than a file or a directory (through
/// links): a character or block device, a named pipe, a socket; or an open
/// descriptor (`/dev/stdout`, `/proc/self/fd/3`), whatever it is open on: a
/// shell's `> out.csv` or `>> log` is written through, never replaced.
fn is_special(path: &std::path::Path) -> bool {
    let descriptor = path == std::path::Path::new("/dev/stderr")
        || path.parent().is_some_and(|dir| {
            dir == std::path::Path::new("/dev/fd")
                || (dir.starts_with("/proc") && dir.file_name().is_some_and(|name| name == "fd"))
        });
    descriptor || std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Log {
    /// The sheet.
    sheet: String,
    /// The first entry to show; the log's start if left out. Entries
    /// before the start (archived by `worker --history`) are read from
    /// the sheet's history.
    #[arg(long)]
    from: Option<u64>,
    /// How many entries to show.
    #[arg(long, default_value_t = 20)]
    limit: u64,
    /// Print JSON: {"start", "end", "archived_before", "entries": [...]},
    /// each entry with its "seq", "edit" and metadata.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn log(place: &Place, args: Log) -> anyhow::Result<()> {
    let (_, sheet) = place.reader_sheet(&args.sheet).await?;
    let log = sheet.log();
    let Bounds { start, end } = log.bounds().await?;
    let from = args.from.unwrap_or(start);
    if from > end {
        bail!(
            "the log of {} ends at entry {end}; --from {from} is past it",
            sheet.path()
        );
    }
    let until = from.saturating_add(args.limit).min(end);
    // Archived entries keep their payloads only: no metadata to show.
    let archived = if from < start {
        read_payloads(&*log, &sheet.dir(), from, until.min(start))
            .await
            .with_context(|| format!("reading the archived entries {from}..{start}"))?
    } else {
        Vec::new()
    };
    let live_from = from.max(start);
    let page = if live_from < until {
        Some(
            log.query_all(
                QueryStart::Id(live_from),
                QueryEnd::Id(until),
                KnownSnapshot::NotTracked,
            )
            .await?,
        )
    } else {
        None
    };
    let shown_end = page
        .as_ref()
        .map_or(from + archived.len() as u64, |p| p.end);
    if args.json {
        let mut entries: Vec<serde_json::Value> = (from..)
            .zip(&archived)
            .map(|(seq, payload)| {
                json!({
                    "seq": seq,
                    "time": entry_time_json(payload),
                    "archived": true,
                    "edit": entry_json(payload),
                })
            })
            .collect();
        if let Some(page) = &page {
            for (seq, entry) in (page.start..).zip(&page.entries) {
                let meta = &entry.metadata;
                entries.push(json!({
                    "seq": seq,
                    "time": entry_time_json(&entry.payload),
                    "archived": false,
                    "edit": entry_json(&entry.payload),
                    "snapshot": meta.snapshot.as_ref().map(ToString::to_string),
                    "history": meta.history.as_ref().map(ToString::to_string),
                    "pending": meta.pending.as_ref().map(ToString::to_string),
                }));
            }
        }
        let all = json!({
            "start": start,
            "end": end,
            "archived_before": start,
            "entries": entries,
        });
        outln!("{all}");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if start > 0 {
        writeln!(
            out,
            "entries 0..{end} (0..{start} archived in history); showing {from}..{shown_end}"
        )?;
    } else {
        writeln!(out, "entries {start}..{end}; showing {from}..{shown_end}")?;
    }
    for (seq, payload) in (from..).zip(&archived) {
        let line = format!(
            "{seq:>10}  {}  {}  (archived)",
            entry_time_text(payload),
            describe_entry(payload)
        );
        writeln!(out, "{line}")?;
    }
    let Some(page) = page else {
        return Ok(());
    };
    for (seq, entry) in (page.start..).zip(&page.entries) {
        let edit = describe_entry(&entry.payload);
        let meta = &entry.metadata;
        let mut marks = Vec::new();
        if let Some(id) = &meta.snapshot {
            marks.push(format!("snapshot={id}"));
        }
        if let Some(id) = &meta.history {
            marks.push(format!("history={id}"));
        }
        if let Some(id) = &meta.pending {
            marks.push(format!("pending={id}"));
        }
        let line = format!(
            "{seq:>10}  {}  {edit}  {}",
            entry_time_text(&entry.payload),
            marks.join(" ")
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// When an entry was made, in UTC to the second (`2026-12-03T18:20:07Z`),
/// or `-` for an entry that carries no time (written by an older version).
fn entry_time_text(payload: &[u8]) -> String {
    match entry_time(payload) {
        Ok(Some(at)) => humantime::format_rfc3339_seconds(at).to_string(),
        _ => format!("{:20}", "-"),
    }
}

/// When an entry was made, in UTC to the millisecond, or null.
fn entry_time_json(payload: &[u8]) -> serde_json::Value {
    match entry_time(payload) {
        Ok(Some(at)) => json!(humantime::format_rfc3339_millis(at).to_string()),
        _ => serde_json::Value::Null,
    }
}

/// One log entry's edit as JSON: {"kind": "set", "cell", "value" or
/// "error", "format"}, {"kind": "block", "range", "cells"}, {"kind":
/// "clear", "range"}, {"kind": "identity", "sheet"}, or {"kind":
/// "unknown", "problem"}.
pub(crate) fn entry_json(payload: &[u8]) -> serde_json::Value {
    match SheetEntry::decode(payload) {
        Ok(SheetEntry::SetCellValueAndFormat {
            row,
            column,
            value,
            format,
        }) => {
            let mut cell = Cell::new(value);
            cell.format = format;
            let mut object = cell_json(&cell);
            if let Some(map) = object.as_object_mut() {
                map.insert("kind".into(), json!("set"));
                map.insert("cell".into(), json!(CellRef::new(row, column).to_string()));
            }
            object
        }
        Ok(SheetEntry::Identity { sheet }) => {
            json!({ "kind": "identity", "sheet": sheet.to_string() })
        }
        Ok(SheetEntry::Block(block)) => {
            json!({ "kind": "block", "range": block.area().to_string(), "cells": block.len() })
        }
        Ok(SheetEntry::Clear { range }) => json!({ "kind": "clear", "range": range.to_string() }),
        Err(err) => json!({ "kind": "unknown", "problem": err.to_string() }),
    }
}

/// One log entry's edit, terminal-safe, on one line.
fn describe_entry(payload: &[u8]) -> String {
    match SheetEntry::decode(payload) {
        Ok(SheetEntry::SetCellValueAndFormat {
            row,
            column,
            value,
            format,
        }) => {
            let format = format
                .map(|f| format!(" [{}]", super::clip(&super::terminal_safe(&f), 40)))
                .unwrap_or_default();
            format!(
                "{} = {}{format}",
                CellRef::new(row, column),
                value_literal(&value)
            )
        }
        Ok(SheetEntry::Identity { sheet }) => format!("identity of sheet {sheet}"),
        Ok(SheetEntry::Block(block)) => {
            format!(
                "block {} ({})",
                block.area(),
                super::counted(block.len() as u64, "cell", "cells")
            )
        }
        Ok(SheetEntry::Clear { range }) => format!("clear {range}"),
        Err(err) => format!("(not a sheet edit: {err})"),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct Snapshot {
    /// The sheet.
    sheet: String,
    /// Only ask (mark the last entry pending) and leave the work to a
    /// `worker` process.
    #[arg(long)]
    no_wait: bool,
}

pub(crate) async fn snapshot(place: &Place, args: Snapshot) -> anyhow::Result<()> {
    let (_, sheet) = place.sheet(&args.sheet).await?;
    let log = sheet.log();
    let Bounds { start, end } = log.bounds().await?;
    // A snapshot on entry S holds everything before S: the newest possible
    // one is on the last entry.
    if end <= start || end < 2 {
        saidln!("{} has nothing to snapshot yet", sheet.path());
        return Ok(());
    }
    let at = end - 1;
    // Already there: say so, and rewrite nothing.
    let last = log
        .query(QueryStart::Id(at), QueryEnd::End, KnownSnapshot::NotTracked)
        .await?;
    if let Some(blob) = last
        .entries
        .first()
        .and_then(|e| e.metadata.snapshot.as_ref())
    {
        saidln!(
            "{} has its newest snapshot already: snapshot {blob} on its last entry, {at}, \
             holding every entry before it; nothing to do",
            sheet.path()
        );
        return Ok(());
    }
    let ask = MetadataUpdate {
        pending: FieldUpdate::Set(SNAPSHOT_WORKFLOW.to_owned()),
        ..MetadataUpdate::default()
    };
    log.set_metadata(at, ask).await?;
    if args.no_wait {
        saidln!("asked for a snapshot on entry {at} of {}", sheet.path());
        return Ok(());
    }
    let worker = SnapshotWorker::new(sheet.log(), sheet.dir(), sheet.workflow_options());
    match worker.run_job(at).await? {
        JobOutcome::Published(value) => saidln!(
            "snapshot {} of {} published on entry {at}",
            value.blob_id,
            sheet.path()
        ),
        JobOutcome::AlreadyDone => saidln!("entry {at} already has a snapshot"),
        _ => saidln!("a newer snapshot covers entry {at}"),
    }
    Ok(())
}
