//! The commands of the `infinisheet` binary, and what they share: where
//! the catalog is, opening sheets, and errors as one line.

/// `println!` that returns a failed write (a closed pipe above all) as an
/// error of the enclosing function instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?;
    }};
}

/// A line on standard output saying what a command did ("created sheet
/// …", "imported …"), which `-q` leaves out: with it a command that
/// succeeds prints only what it was asked for (cells, a listing, a CSV).
macro_rules! saidln {
    ($($arg:tt)*) => {{
        if !$crate::cli::quiet() {
            outln!($($arg)*);
        }
    }};
}

pub(crate) mod catalog;
pub(crate) mod cells;
pub(crate) mod demo;
pub(crate) mod serve;
pub(crate) mod worker;

use anyhow::{Context, bail};
use infinisheet::{Access, Catalog, CatalogSheet, CellRange, CellRef, SheetWriter, Storage};
use std::io::Write;
use std::path::PathBuf;

/// Where the catalog is: the embedded storage in a directory, or logs and
/// blobs by URL.
#[derive(Debug)]
pub(crate) struct Place {
    pub(crate) home: Option<PathBuf>,
    pub(crate) logs: Option<String>,
    pub(crate) blobs: Option<String>,
}

impl Place {
    /// The embedded storage's directory: `--home`, `$INFINISHEET_HOME`,
    /// `~/.infinisheet`, or `.infinisheet` here without a home directory.
    fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| {
            std::env::var_os("HOME").map_or_else(
                || PathBuf::from(".infinisheet"),
                |home| PathBuf::from(home).join(".infinisheet"),
            )
        })
    }

    /// The catalog, for a command that writes.
    pub(crate) async fn catalog(&self) -> anyhow::Result<Catalog> {
        self.catalog_with(Access::ReadWrite).await
    }

    /// The catalog, for a command that only reads: nothing is created, and
    /// read-only files and credentials do.
    pub(crate) async fn reader(&self) -> anyhow::Result<Catalog> {
        self.catalog_with(Access::ReadOnly).await
    }

    async fn catalog_with(&self, access: Access) -> anyhow::Result<Catalog> {
        let storage = match (&self.logs, &self.blobs) {
            (Some(logs), Some(blobs)) => {
                for url in [logs, blobs] {
                    if url.starts_with("memory:") {
                        bail!(
                            "{url} lasts only while one command runs, so nothing would be left \
                             of what this one does: use sqlite:PATH, file:DIR, s3://bucket/prefix or \
                             http://HOST:PORT (an infinisheet serve)"
                        );
                    }
                }
                Storage::open_with(logs, blobs, access).await?
            }
            _ => {
                let home = self.home();
                if home.exists() && !home.is_dir() {
                    bail!(
                        "{} is a file, not a directory: --home (or $INFINISHEET_HOME) names \
                         the directory of the embedded storage",
                        home.display()
                    );
                }
                Storage::embedded_with(&home, access)
                    .await
                    .with_context(|| format!("opening the storage in {}", home.display()))?
            }
        };
        Ok(Catalog::new(storage))
    }

    /// A sheet, for a command that writes.
    pub(crate) async fn sheet(&self, path: &str) -> anyhow::Result<(Catalog, CatalogSheet)> {
        let catalog = self.catalog().await?;
        let sheet = catalog.open_sheet(path).await?;
        Ok((catalog, sheet))
    }

    /// A sheet, for a command that only reads.
    pub(crate) async fn reader_sheet(&self, path: &str) -> anyhow::Result<(Catalog, CatalogSheet)> {
        let catalog = self.reader().await?;
        let sheet = catalog.open_sheet(path).await?;
        Ok((catalog, sheet))
    }
}

/// An error and its causes on one line (causes already part of the message
/// are not repeated).
pub(crate) fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// Says on stderr (a note, not an error) if snapshot jobs of `sheet` are
/// pending since its newest snapshot: the reads are right either way, but
/// the sheet opens slower until a `worker` (or any editing command) does
/// them.
pub(crate) async fn note_pending(sheet: &CatalogSheet) {
    use infinisheet::event_log::{EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
    let Ok(tail) = sheet
        .log()
        .query_all(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NotTracked,
        )
        .await
    else {
        return; // the read that matters already succeeded
    };
    let pending = tail
        .entries
        .iter()
        .filter(|e| e.metadata.pending.is_some())
        .count();
    if pending > 0 && !quiet() {
        eprintln!(
            "note: {} has {pending} snapshot job(s) pending; a `worker` (or any editing \
             command) runs them",
            sheet.path()
        );
    }
}

/// Ends a writer: waits for the snapshot jobs its edits asked for (none
/// with `--no-worker`); says so if any failed.
pub(crate) async fn finish(writer: SheetWriter) {
    let report = writer.finish().await;
    if report.failures > 0 {
        // Runs, not jobs: a job tried again by a later pass counts again.
        eprintln!(
            "warning: snapshot jobs failed ({} failed run(s)); they stay pending for a \
             worker (`info` shows how many)",
            report.failures
        );
    }
}

/// Whether `-q` asked for errors only.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether diagnostics are JSON lines (`--log-format json`).
static JSON_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records `--log-format json`.
pub(crate) fn set_json_log(json: bool) {
    JSON_LOG.store(json, std::sync::atomic::Ordering::Relaxed);
}

/// A note on stderr (not with `-q`): a line of text, or with `--log-format
/// json` an event of the log, so a log shipper reads only JSON.
pub(crate) fn note(text: &str) {
    if quiet() {
        return;
    }
    if JSON_LOG.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(target: "infinisheet::note", "{text}");
    } else {
        eprintln!("{text}");
    }
}

/// Records `-q`.
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `-q` was given: no progress, no notes.
pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// `n` and the noun, singular for one: "1 row", "2 rows".
pub(crate) fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whether `err` comes from writing to a pipe whose reader has gone (`|
/// head`): a quiet end, as sqlite3 and xsv make it.
pub(crate) fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `text` safe to print on a terminal: control characters (a line break,
/// a tab, an escape that would recolour the terminal) written as visible
/// escapes (`\n`, `\t`, `\e`, `\u{7f}`), so one cell is one line and
/// changes nothing but its own place.
pub(crate) fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The columns `text` takes on a terminal (CJK and emoji take two).
pub(crate) fn display_width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` cut to at most `widest` terminal columns, `…` marking a cut.
pub(crate) fn clip(text: &str, widest: usize) -> String {
    if display_width(text) <= widest {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > widest.saturating_sub(1) {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` left-aligned in `width` terminal columns.
fn pad(text: &str, width: usize) -> String {
    let mut out = text.to_owned();
    out.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(display_width(text)),
    ));
    out
}

/// Rows of text as an aligned table with column letters and row numbers;
/// each text made terminal-safe and cut to 40 columns, widths counted in
/// terminal columns.
pub(crate) fn print_table(range: CellRange, rows: &[Vec<String>]) -> std::io::Result<()> {
    const WIDEST: usize = 40;
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|t| clip(&terminal_safe(t), WIDEST))
                .collect()
        })
        .collect();
    let columns: Vec<u32> = range.columns().collect();
    let mut widths: Vec<usize> = columns
        .iter()
        .map(|c| CellRef::column_name(*c).len())
        .collect();
    for row in &rows {
        for (i, text) in row.iter().enumerate() {
            widths[i] = widths[i].max(display_width(text));
        }
    }
    let label = range.last.row.saturating_add(1).to_string().len();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut header = " ".repeat(label);
    for (i, column) in columns.iter().enumerate() {
        header.push_str("  ");
        header.push_str(&pad(&CellRef::column_name(*column), widths[i]));
    }
    writeln!(out, "{}", header.trim_end())?;
    for (row, texts) in range.rows().zip(&rows) {
        let mut line = format!("{:>label$}", u64::from(row) + 1);
        for (i, text) in texts.iter().enumerate() {
            line.push_str("  ");
            line.push_str(&pad(text, widths[i]));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    out.flush()
}
