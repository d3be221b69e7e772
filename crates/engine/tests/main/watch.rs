//! `Spreadsheet::watch`: a sheet kept live from a tail of its log sees
//! another writer's edits without calling `sync`, on a log that wakes its
//! tails (memory) and on one that is polled (SQLite, another connection).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDir, BlobStore};
use infinisheet_engine::{
    Cell, CellRange, CellRef, CellState, CellValue, SheetOptions, Spreadsheet,
};
use infinisheet_event_log::EventLog;
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::sync::Arc;
use std::time::Duration;

/// Waits (a minute at most) until `sheet`'s content holds `value` at
/// row 0, column `column`, by its subscription alone.
async fn seen(sheet: &Spreadsheet, column: u32, value: f64) {
    let mut content = sheet.subscribe();
    let want = Cell::new(CellValue::Number(value));
    let wait = async {
        loop {
            if content.borrow_and_update().cell(0, column) == CellState::Set(want.clone()) {
                return;
            }
            content.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("the watching sheet never saw column {column} = {value}"));
}

async fn writer_and_watcher(
    writer_log: Arc<dyn EventLog>,
    reader_log: Arc<dyn EventLog>,
    dir: Arc<dyn BlobDir>,
) {
    let options = SheetOptions::default();
    let writer = Spreadsheet::open(writer_log, dir.clone(), options)
        .await
        .unwrap();
    let reader = Spreadsheet::open(reader_log.clone(), dir, options)
        .await
        .unwrap();
    let watch = reader.watch();
    for column in 0..5u32 {
        writer
            .set_cell(0, column, Cell::new(CellValue::Number(f64::from(column))))
            .await
            .unwrap();
        seen(&reader, column, f64::from(column)).await;
    }
    assert_eq!(
        reader.content().end(),
        reader_log.bounds().await.unwrap().end
    );
    // With the watch dropped, an explicit sync still brings a new edit (that
    // the task stopped is not observable without waiting on a timer).
    drop(watch);
    writer
        .set_cell(0, 9, Cell::new(CellValue::Number(9.0)))
        .await
        .unwrap();
    tokio::task::yield_now().await;
    reader.sync().await.unwrap();
    assert_eq!(
        reader.content().cell(0, 9),
        CellState::Set(Cell::new(CellValue::Number(9.0)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_sheet_follows_another_writer_in_memory() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    writer_and_watcher(log.clone(), log, MemoryBlobStore::new().root()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_sheet_follows_another_connection_on_sqlite() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("logs.db");
    let writer = SqliteDatabase::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let reader = SqliteDatabase::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    writer_and_watcher(
        Arc::new(writer.open_or_create_log("s").await.unwrap()),
        Arc::new(reader.open_or_create_log("s").await.unwrap()),
        MemoryBlobStore::new().root(),
    )
    .await;
}

/// A tail on a log truncated past the sheet: the watch reloads it from the
/// newest snapshot, and keeps following.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_survives_a_truncate_past_the_sheet() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let options = SheetOptions::default();
    let writer = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    let reader = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    reader
        .set_viewport(CellRange::new(CellRef::new(0, 0), CellRef::new(0, 9)))
        .await
        .unwrap();
    let _watch = reader.watch();
    for column in 0..3u32 {
        writer
            .set_cell(0, column, Cell::new(CellValue::Number(f64::from(column))))
            .await
            .unwrap();
    }
    seen(&reader, 2, 2.0).await;
    // A snapshot on the end, and the log cut there.
    let end = log.bounds().await.unwrap().end;
    writer
        .set_cell(0, 3, Cell::new(CellValue::Number(3.0)))
        .await
        .unwrap();
    writer
        .set_cell(0, 5, Cell::new(CellValue::Number(5.0)))
        .await
        .unwrap();
    let value = writer.write_snapshot(end + 1).await.unwrap();
    log.set_metadata(
        end + 1,
        infinisheet_event_log::MetadataUpdate::publish_snapshot(value.blob_id),
    )
    .await
    .unwrap();
    log.truncate(end + 1).await.unwrap();
    writer
        .set_cell(0, 4, Cell::new(CellValue::Number(4.0)))
        .await
        .unwrap();
    seen(&reader, 4, 4.0).await;
    seen(&reader, 3, 3.0).await;
    seen(&reader, 5, 5.0).await;
    assert_eq!(
        reader.content().segment().0,
        end + 1,
        "reloaded from the snapshot"
    );
}
