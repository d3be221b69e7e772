//! Reading and writing a sheet by A1 reference, ranges of whole rows and
//! columns, and the load status and viewport a UI shows.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::BlobStore;
use infinisheet_engine::{
    Cell, CellRange, CellRef, CellValue, EditError, LoadStatus, ReadError, SheetOptions,
    Spreadsheet,
};
use infinisheet_event_log::{EventLog, MetadataUpdate};
use infinisheet_layers::{Faults, Layered, Op};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::sync::Arc;

fn range(text: &str) -> CellRange {
    text.parse().unwrap()
}

#[tokio::test]
async fn cells_by_reference_and_ranges_of_whole_rows_and_columns() {
    let store = MemoryBlobStore::new();
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    // Tiles of 4 x 4 and a snapshot every 10 edits: reads cross tiles that
    // are not loaded yet.
    let options = SheetOptions::default()
        .snapshot_interval(10)
        .tile_size(4, 4);
    let sheet = Spreadsheet::open(log.clone(), store.root(), options)
        .await
        .unwrap();
    sheet.set("A1", "name").await.unwrap();
    sheet.set("B2", 42.0).await.unwrap();
    sheet.set(CellRef::new(9, 2), true).await.unwrap();
    sheet
        .set("C3", Cell::new(CellValue::Number(0.5)).with_format("0%"))
        .await
        .unwrap();
    assert!(matches!(
        sheet.set("2B", 1.0).await,
        Err(EditError::Reference(_))
    ));
    // Entry 4, after the snapshot of entries 0 to 3 published on it.
    sheet.set("D4", "last").await.unwrap();
    let value = sheet.write_snapshot(4).await.unwrap();
    log.set_metadata(4, MetadataUpdate::publish_snapshot(value.blob_id))
        .await
        .unwrap();

    // A cold reader: every cell lies in a tile not loaded yet.
    let cold = Spreadsheet::open(log, store.root(), options).await.unwrap();
    assert_eq!(cold.content().loaded_tiles(), 0);
    assert_eq!(cold.viewport(), None);
    assert_eq!(cold.get("B2").await.unwrap(), Some(Cell::from(42.0)));
    // Its tile was read; the viewport moved there to read it.
    assert_eq!(cold.viewport(), Some(range("B2")));
    assert_eq!(cold.content().loaded_tiles(), 1);
    assert_eq!(
        cold.get(CellRef::new(0, 0)).await.unwrap(),
        Some(Cell::from("name"))
    );
    assert_eq!(cold.get("Z99").await.unwrap(), None);
    assert!(matches!(cold.get("B").await, Err(ReadError::Reference(_))));
    // A1 shares B2's tile, Z99 lies in no tile: neither moves the viewport.
    assert_eq!(cold.viewport(), Some(range("B2")));

    // Whole columns end where the cells in use do (10 rows).
    let rows = cold.read(range("B:C")).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[1], [Some(Cell::from(42.0)), None]);
    assert_eq!(rows[9], [None, Some(Cell::from(true))]);
    assert_eq!(rows[2][1].as_ref().unwrap().format.as_deref(), Some("0%"));
    // Whole rows end at the last column in use (C).
    let rows = cold.read(range("2:3")).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], [None, Some(Cell::from(42.0)), None, None]);
    // Any other range comes back in its own shape, blanks and all.
    let rows = cold.read(range("E20:F21")).await.unwrap();
    assert_eq!(rows, [[None, None], [None, None]]);
    assert_eq!(
        cold.read(range("D4")).await.unwrap(),
        [[Some(Cell::from("last"))]]
    );
    // Columns past the last in use still span the rows in use.
    assert_eq!(
        cold.read(range("E:F")).await.unwrap(),
        vec![vec![None, None]; 10]
    );
    // On an empty sheet, whole rows and columns hold nothing.
    let empty = Spreadsheet::open(Arc::new(MemoryEventLog::new()), store.root(), options)
        .await
        .unwrap();
    assert!(empty.read(range("A:C")).await.unwrap().is_empty());
    assert!(empty.read(range("1:3")).await.unwrap().is_empty());
    assert_eq!(cold.status(), LoadStatus::Loaded);
}

#[tokio::test]
async fn status_says_when_a_sync_failed_and_when_it_passed_again() {
    let store = MemoryBlobStore::new();
    let inner = Arc::new(MemoryEventLog::new());
    let faults = Faults::new().rate(1.0, 0).only([Op::Query]);
    faults.disarm();
    let log: Arc<dyn EventLog> = Arc::new(Layered::new(faults.clone(), inner.clone()));
    let sheet = Spreadsheet::open(log, store.root(), SheetOptions::default())
        .await
        .unwrap();
    assert_eq!(sheet.status(), LoadStatus::Loaded);
    faults.arm();
    let err = sheet.sync().await.unwrap_err();
    match sheet.status() {
        LoadStatus::Failed { message, retryable } => {
            assert!(retryable, "{message}");
            assert!(message.contains("injected"), "{message} / {err}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    faults.disarm();
    sheet.sync().await.unwrap();
    assert_eq!(sheet.status(), LoadStatus::Loaded);
}
