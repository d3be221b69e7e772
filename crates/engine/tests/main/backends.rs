//! A writer and a fresh reader on real storage: a SQLite log with a
//! filesystem blob store, a filesystem log with SQLite blobs, and a log and
//! blobs in one object store (in memory here; the S3 server runs the
//! backend's own suite), snapshots included.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use common::{cells, worker_pass};
use infinisheet_blob_store::{BlobDir, BlobStore};
use infinisheet_engine::{Cell, CellValue, SheetOptions, Spreadsheet};
use infinisheet_event_log::EventLog;
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use infinisheet_object_store::{ObjectStore, memory::InMemory};
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::sync::Arc;

async fn writer_then_fresh_reader(
    log: Arc<dyn EventLog>,
    dir: Arc<dyn BlobDir>,
    reopen: impl AsyncFnOnce() -> (Arc<dyn EventLog>, Arc<dyn BlobDir>),
) {
    let options = SheetOptions::default()
        .tile_size(8, 8)
        .snapshot_interval(40);
    let writer = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    for i in 0..150u32 {
        let cell = if i % 3 == 0 {
            Cell::new(CellValue::Text(format!("row {i}")))
        } else {
            Cell::new(CellValue::Number(f64::from(i) / 4.0)).with_format("0.00")
        };
        writer.set_cell(i % 30, i / 30 * 3, cell).await.unwrap();
        if i % 50 == 49 {
            worker_pass(&log, &dir).await;
        }
    }
    let want = cells(&writer, 30, 15).await;
    assert_eq!(want.len(), 150);
    drop((writer, log, dir));
    let (log, dir) = reopen().await;
    let reader = Spreadsheet::open(log, dir, options).await.unwrap();
    assert_eq!(reader.content().snapshot().unwrap().sequence_id, 120);
    assert_eq!(cells(&reader, 30, 15).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_with_filesystem_blobs() {
    let temp = tempfile::tempdir().unwrap();
    let (db_path, blobs) = (temp.path().join("sheets.db"), temp.path().join("blobs"));
    let open = async || {
        let db = SqliteDatabase::open(&db_path, SqliteOptions::default())
            .await
            .unwrap();
        let log: Arc<dyn EventLog> = Arc::new(db.open_or_create_log("budget").await.unwrap());
        let dir = FsBlobStore::open(&blobs).await.unwrap().root();
        (log, dir)
    };
    let (log, dir) = open().await;
    writer_then_fresh_reader(log, dir, open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_log_with_sqlite_blobs() {
    let temp = tempfile::tempdir().unwrap();
    let (db_path, log_dir) = (temp.path().join("blobs.db"), temp.path().join("log"));
    let open = async || {
        let db = SqliteDatabase::open(&db_path, SqliteOptions::default())
            .await
            .unwrap();
        let dir = db.blob_store("sheets").await.unwrap().root();
        let log: Arc<dyn EventLog> = Arc::new(
            FsEventLog::open(&log_dir, FsLogOptions::default())
                .await
                .unwrap(),
        );
        (log, dir)
    };
    let (log, dir) = open().await;
    writer_then_fresh_reader(log, dir, open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_log_and_blobs() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let open = async || {
        let log: Arc<dyn EventLog> = Arc::new(
            ObjectStoreEventLog::open(store.clone(), "sheets/budget/log".into())
                .await
                .unwrap()
                .with_page_size(16),
        );
        let dir = ObjectStoreBlobStore::new(store.clone(), "sheets/budget/files".into()).root();
        (log, dir)
    };
    let (log, dir) = open().await;
    writer_then_fresh_reader(log, dir, open).await;
}
