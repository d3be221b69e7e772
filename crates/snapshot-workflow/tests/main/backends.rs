//! The workflow on real storage: a writer with an in-process host, then a
//! fresh reader that opens from the snapshot (after reopening the storage)
//! and sees every cell; history and retention on. Memory; a SQLite log
//! with filesystem blobs; a filesystem log with SQLite blobs; a log and
//! blobs in one object store (in memory; `tests/s3.rs` runs the same on
//! the S3 server).

#![allow(clippy::unwrap_used)]

use crate::common;

use common::writer_with_host_then_fresh_reader;
use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::EventLog;
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet_object_store::{ObjectStore, memory::InMemory};
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    writer_with_host_then_fresh_reader(async || (log.clone(), dir.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_with_filesystem_blobs() {
    let temp = tempfile::tempdir().unwrap();
    let (db_path, blobs) = (temp.path().join("sheets.db"), temp.path().join("blobs"));
    writer_with_host_then_fresh_reader(async || {
        let db = SqliteDatabase::open(&db_path, SqliteOptions::default())
            .await
            .unwrap();
        let log: Arc<dyn EventLog> = Arc::new(db.open_or_create_log("budget").await.unwrap());
        (log, FsBlobStore::open(&blobs).await.unwrap().root())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_log_with_sqlite_blobs() {
    let temp = tempfile::tempdir().unwrap();
    let (db_path, log_dir) = (temp.path().join("blobs.db"), temp.path().join("log"));
    writer_with_host_then_fresh_reader(async || {
        let db = SqliteDatabase::open(&db_path, SqliteOptions::default())
            .await
            .unwrap();
        let log = FsEventLog::open(&log_dir, FsLogOptions::default())
            .await
            .unwrap();
        let log: Arc<dyn EventLog> = Arc::new(log);
        (log, db.blob_store("sheets").await.unwrap().root())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_log_and_blobs() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    writer_with_host_then_fresh_reader(async || {
        let log = ObjectStoreEventLog::open(store.clone(), "sheets/budget/log".into())
            .await
            .unwrap()
            .with_page_size(16);
        let log: Arc<dyn EventLog> = Arc::new(log);
        let dir = ObjectStoreBlobStore::new(store.clone(), "sheets/budget/files".into()).root();
        (log, dir)
    })
    .await;
}
