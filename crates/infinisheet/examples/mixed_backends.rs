//! A host app mixing backends: each sheet's log in a local SQLite file, the
//! folder tree and the snapshots in S3, and an in-process snapshot worker.
//!
//! Needs an S3-compatible server in the `AWS_*` environment (`AWS_ENDPOINT`,
//! `AWS_BUCKET`, credentials, `AWS_ALLOW_HTTP=true` for plain HTTP);
//! `cargo xtask test` runs it against the server it starts:
//!
//! ```sh
//! cargo run -p infinisheet --features s3 --example mixed_backends
//! ```

use infinisheet::engine::CellState;
use infinisheet::{Catalog, Cell, CellRange, CellRef, CellValue, SheetOptions, Storage};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bucket = std::env::var("AWS_BUCKET")
        .map_err(|_| "set AWS_BUCKET (and the rest of the AWS_* environment) first")?;
    let local = tempfile::tempdir()?;
    let logs = format!("sqlite:{}/logs.db", local.path().display());
    let blobs = format!("s3://{bucket}/example-{}", std::process::id());

    // Write: a sheet of 2,000 cells, snapshots written to S3 as it grows.
    {
        let catalog = Catalog::new(Storage::open(&logs, &blobs).await?);
        let sheet = catalog
            .create_sheet("sales/2026", SheetOptions::default())
            .await?;
        let cells = sheet.writer(true).await?;
        for row in 0..200u32 {
            let batch = (0..10u32)
                .map(|column| {
                    let value = CellValue::Number(f64::from(row * 10 + column));
                    (CellRef::new(row, column), Cell::new(value))
                })
                .collect();
            cells.set_cells(batch).await?;
        }
        cells.finish().await;
    }

    // Read, as another process would: the log from SQLite, the snapshot
    // from S3.
    let catalog = Catalog::new(Storage::open(&logs, &blobs).await?);
    println!("sheets: {:?}", catalog.sheets("").await?);
    let sheet = catalog.open_sheet("sales/2026").await?.open().await?;
    let area: CellRange = "A195:J200".parse()?;
    sheet.set_viewport(area).await?;
    let content = sheet.content();
    println!(
        "opened from the snapshot on entry {:?} (blobs in {blobs}, logs in {logs})",
        content.snapshot().map(|s| s.sequence_id)
    );
    for row in area.rows() {
        let values: Vec<String> = area
            .columns()
            .map(|column| match content.cell(row, column) {
                CellState::Set(cell) => infinisheet::table::value_text(&cell.value),
                _ => String::new(),
            })
            .collect();
        println!("{:>4}  {}", row + 1, values.join("  "));
    }
    let expected = CellState::Set(Cell::new(CellValue::Number(1999.0)));
    if content.cell(199, 9) != expected {
        return Err("the last cell did not come back".into());
    }
    catalog.remove("sales", true).await?;
    Ok(())
}
