//! A host app on Infinisheet, as an app outside this workspace would write
//! it: it depends on `infinisheet` (default features: SQLite and the
//! filesystem) and tokio, nothing else.
//!
//! It does what the README's command section does, through the library: a
//! catalog on the embedded storage (a SQLite file of logs and a folder of
//! blobs; a directory given as the first argument, else a temporary one
//! under the system's), a sheet with cells set by A1 reference and a CSV
//! imported into it, snapshots written by a workflow host that shares the
//! sheet's settings, a cold reopen that reads only the viewport's tiles, a
//! range read back, an export, a move and a listing, and a check.
//!
//! `cargo run -p infinisheet-example-host-app [DIR]`

use infinisheet::prelude::*;
use infinisheet::sqlite::{SqliteDatabase, SqliteOptions};
use infinisheet::table::{CsvFormat, ImportOptions, export_csv, import_csv};
use infinisheet::{ItemKind, check_sheet, open_blob_store};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("infinisheet-host-app-{}", std::process::id())),
    };
    std::fs::create_dir_all(&home)?;

    // Storage from parts the app configured itself: its own SQLite
    // settings for the logs, blobs by URL.
    let db = SqliteDatabase::open(home.join("logs.db"), SqliteOptions::default()).await?;
    let logs: Arc<dyn LogStore> = Arc::new(db);
    let blobs_url = format!("file:{}", home.join("sheets").display());
    let storage = Storage::new(logs, open_blob_store(&blobs_url).await?, &blobs_url);
    let catalog = Catalog::new(storage);

    // A sheet; its settings (snapshot every 1,000 entries, 64 x 16 tiles)
    // live in its metadata, and the host and the writer both take them.
    let options = SheetOptions::default()
        .snapshot_interval(1_000)
        .tile_size(64, 16);
    let sheet = catalog.create_sheet("budget/2026", options).await?;
    let cells = sheet.writer(true).await?;
    cells.set("A1", "item").await?;
    cells.set("B1", "amount").await?;
    cells.set("C1", Cell::from(0.25).with_format("0%")).await?;

    // 5,000 rows of CSV in two block entries (the last row apart: the
    // snapshot asked for on it holds the rest); `06` stays text.
    let mut csv = String::new();
    for row in 0..5_000 {
        csv.push_str(&format!("item {row:04},{},06\n", row * 3));
    }
    let started = Instant::now();
    let at_row_2 = ImportOptions {
        origin: CellRef::new(1, 0),
        ..ImportOptions::default()
    };
    let imported = import_csv(&cells, csv.as_bytes(), &at_row_2, |_| {}).await?;
    println!(
        "imported {} cells in {:.1?}",
        imported.cells,
        started.elapsed()
    );
    let report = cells.finish().await;
    println!(
        "snapshot jobs done ({} failed, {} left)",
        report.failures, report.left_pending
    );

    // A cold reopen reads the newest snapshot's index and the tiles a
    // viewport needs, nothing else.
    let sheet = catalog.open_sheet("budget/2026").await?;
    let started = Instant::now();
    let cold = sheet.open().await?;
    let content = cold.content();
    println!(
        "reopened cold in {:.1?}: {} rows x {} columns, from the snapshot at {:?}",
        started.elapsed(),
        content.row_count(),
        content.column_count(),
        content.snapshot().map(|s| s.sequence_id)
    );
    cold.set_viewport("A4000:C4010".parse()?).await?;
    println!(
        "viewport {:?}: {} tiles loaded, status {:?}",
        cold.viewport().map(|v| v.to_string()),
        cold.content().loaded_tiles(),
        cold.status()
    );
    let rows = cold.read("A4001:C4002".parse()?).await?;
    for row in &rows {
        let texts: Vec<String> = row
            .iter()
            .map(|cell| {
                cell.as_ref()
                    .map(|c| c.value.to_string())
                    .unwrap_or_default()
            })
            .collect();
        println!("  {}", texts.join(" | "));
    }
    assert_eq!(
        cold.get("C5000").await?.map(|c| c.value),
        Some(CellValue::Text("06".into()))
    );

    // Export the first rows as CSV, move the sheet, list, check.
    let mut out = Vec::new();
    export_csv(
        &cold,
        &mut out,
        Some("A1:C3".parse()?),
        &CsvFormat::default(),
    )
    .await?;
    print!("export of A1:C3:\n{}", String::from_utf8_lossy(&out));
    catalog.rename("budget/2026", "archive/2026").await?;
    for item in catalog.list("archive").await? {
        let kind = if item.kind == ItemKind::Folder {
            "folder"
        } else {
            "sheet"
        };
        println!("archive/{} ({kind})", item.name);
    }
    let moved = catalog.open_sheet("archive/2026").await?;
    let check = check_sheet(&moved).await;
    println!(
        "check: {}",
        if check.is_healthy() { "ok" } else { "DAMAGED" }
    );
    if !check.is_healthy() {
        return Err(format!("{check:?}").into());
    }
    println!("storage in {}", home.display());
    Ok(())
}
