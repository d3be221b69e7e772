//! `demo`: builds a sheet of a few hundred thousand cells with snapshots on
//! the default (embedded) storage, reopens it cold, and prints a viewport
//! and the timings.

use infinisheet::engine::CellState;
use infinisheet::event_log::{KnownSnapshot, QueryEnd, QueryStart};
use infinisheet::table::shown_text;
use infinisheet::{Catalog, Cell, CellRange, CellRef, CellValue, SheetOptions, Storage};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub(crate) struct Demo {
    /// Rows of the sheet.
    #[arg(long, default_value_t = 3_000)]
    rows: u32,
    /// Columns of the sheet.
    #[arg(long, default_value_t = 100)]
    columns: u32,
    /// Keep the storage in this directory, to try the other commands on
    /// afterwards (`--home DIR`); without it the demo works in a temporary
    /// directory and removes it at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn value(row: u32, column: u32) -> Cell {
    match column % 4 {
        0 => Cell::new(CellValue::Text(format!("item {}", row + 1))),
        1 => Cell::new(CellValue::Number(f64::from(row % 97) * 1.25)).with_format("0.00"),
        2 => Cell::new(CellValue::Number(
            f64::from(row) + f64::from(column) / 100.0,
        )),
        _ => Cell::new(CellValue::Boolean((row + column).is_multiple_of(3))),
    }
}

pub(crate) async fn run(args: Demo) -> anyhow::Result<()> {
    let temp;
    let kept = args.dir.is_some();
    let home = match args.dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let cells = u64::from(args.rows) * u64::from(args.columns);
    outln!(
        "Infinisheet demo: {cells} cells ({} rows x {} columns) in {}{}",
        args.rows,
        args.columns,
        home.display(),
        if kept { "" } else { " (temporary)" }
    );
    outln!("storage: a SQLite log (logs.db) and a filesystem blob store (sheets/)");

    // Write: batches of edits through an in-process snapshot host.
    let path = format!("demo/sheet-{}", std::process::id());
    let started = Instant::now();
    {
        let catalog = Catalog::new(Storage::embedded(&home).await?);
        let sheet = catalog.create_sheet(&path, SheetOptions::default()).await?;
        let writer = sheet.writer(true).await?;
        let mut batch = Vec::with_capacity(10_000);
        for row in 0..args.rows {
            for column in 0..args.columns {
                batch.push((CellRef::new(row, column), value(row, column)));
                if batch.len() == 10_000 {
                    writer.set_cells(std::mem::take(&mut batch)).await?;
                }
            }
        }
        if !batch.is_empty() {
            writer.set_cells(batch).await?;
        }
        let wrote = started.elapsed();
        writer.finish().await;
        let newest = sheet
            .log()
            .query(
                QueryStart::Snapshot,
                QueryEnd::Id(0),
                KnownSnapshot::NotTracked,
            )
            .await?;
        let snapshot = (newest.start > 0).then_some(newest.start);
        outln!(
            "wrote {cells} edits in {:.0} ms ({:.0} edits/s); snapshots done {:.0} ms later{}",
            wrote.as_secs_f64() * 1000.0,
            cells as f64 / wrote.as_secs_f64(),
            (started.elapsed() - wrote).as_secs_f64() * 1000.0,
            snapshot.map_or(String::new(), |s| format!(" (newest on entry {s})"))
        );
    }

    // Read: everything opened again from disk, as a new process would.
    let cold = Instant::now();
    let catalog = Catalog::new(Storage::embedded(&home).await?);
    let sheet = catalog.open_sheet(&path).await?;
    let reader = sheet.open().await?;
    let opened = cold.elapsed();
    let area = CellRange::new(CellRef::new(0, 0), CellRef::new(11, 7));
    reader.set_viewport(area).await?;
    let viewed = cold.elapsed();
    let content = reader.content();
    let (segment_start, tail) = content.segment();
    outln!(
        "reopened cold in {:.1} ms (snapshot on entry {segment_start} + {tail} log entries), \
         viewport {area} loaded in {:.1} ms more",
        opened.as_secs_f64() * 1000.0,
        (viewed - opened).as_secs_f64() * 1000.0,
    );
    outln!();
    let texts: Vec<Vec<String>> = area
        .rows()
        .map(|row| {
            area.columns()
                .map(|column| match content.cell(row, column) {
                    CellState::Set(cell) => shown_text(&cell),
                    _ => String::new(),
                })
                .collect()
        })
        .collect();
    super::print_table(area, &texts)?;
    outln!();
    if kept {
        let home = shell_word(&home.display().to_string());
        outln!("The sheet is kept in {home}. Try:");
        outln!("  infinisheet --home {home} ls demo");
        outln!("  infinisheet --home {home} get {path} A1:D5");
        outln!("  infinisheet --home {home} set {path} B2 42 --format 0.00");
        outln!("  infinisheet --home {home} export {path} - --range A1:D100");
        outln!("  infinisheet --home {home} info {path}");
    } else {
        outln!(
            "The demo's storage was temporary and is removed now. To keep the sheet and try \
             the other commands on it: infinisheet demo --dir DIR, then infinisheet --home DIR ls demo"
        );
    }
    Ok(())
}

/// `word` as one shell word: quoted when it holds anything but plain
/// path characters.
fn shell_word(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain && !word.is_empty() {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
