//! Shared by the workflow's tests: the edits a test makes, reading a whole
//! sheet back, and checking that every snapshot the log names is whole.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part

use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobStore};
use infinisheet_engine::{
    Cell, CellValue, SNAPSHOTS_DIR, SheetOptions, Spreadsheet, snapshot_id, verify_snapshot,
};
use infinisheet_event_log::{
    EventLog, EventLogExt, FieldUpdate, KnownSnapshot, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet_snapshot_workflow::{WorkflowHost, WorkflowOptions, read_payloads};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The longest a test waits for something before it fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// A memory log and blob directory.
pub(crate) fn memory() -> (Arc<dyn EventLog>, Arc<dyn BlobDir>) {
    (
        Arc::new(MemoryEventLog::new()),
        MemoryBlobStore::new().root(),
    )
}

/// The directory of the snapshot on entry `at`.
pub(crate) async fn snapshot_dir(dir: &Arc<dyn BlobDir>, at: u64) -> Arc<dyn BlobDir> {
    dir.open_dir(SNAPSHOTS_DIR)
        .await
        .unwrap()
        .open_dir(&snapshot_id(at, None))
        .await
        .unwrap()
}

/// Marks entry `at` as waiting for a snapshot job.
pub(crate) async fn ask_for_snapshot(log: &Arc<dyn EventLog>, at: u64) {
    let ask = MetadataUpdate {
        pending: FieldUpdate::Set("snapshot".into()),
        ..MetadataUpdate::default()
    };
    log.set_metadata(at, ask).await.unwrap();
}

/// The value the tests write at a cell, `round` telling rewrites apart.
pub(crate) fn value(row: u32, column: u32, round: u32) -> Cell {
    Cell::new(CellValue::Number(
        f64::from(row + column) + f64::from(round) * 1000.0,
    ))
}

/// Every cell a sheet of `rows` x `columns` holds after `round` filled it.
pub(crate) fn expected(rows: u32, columns: u32, round: u32) -> BTreeMap<(u32, u32), Cell> {
    let mut cells = BTreeMap::new();
    for row in 0..rows {
        for column in 0..columns {
            cells.insert((row, column), value(row, column, round));
        }
    }
    cells
}

/// Sets every cell of `rows` x `columns`, row by row, one edit each.
pub(crate) async fn fill(sheet: &Spreadsheet, rows: u32, columns: u32, round: u32) {
    for row in 0..rows {
        for column in 0..columns {
            sheet
                .set_cell(row, column, value(row, column, round))
                .await
                .unwrap();
        }
    }
}

/// Every set cell of a sheet within `rows` x `columns`, loading the tiles
/// viewport by viewport; a cell left unloaded fails the test.
pub(crate) async fn read_all(
    sheet: &Spreadsheet,
    rows: u32,
    columns: u32,
) -> BTreeMap<(u32, u32), Cell> {
    infinisheet_test_kit::read_viewports(sheet, rows, columns, 100).await
}

/// Opens a fresh reader and checks it sees exactly `cells`; returns the
/// snapshot it opened from.
pub(crate) async fn assert_reader_sees(
    log: &Arc<dyn EventLog>,
    dir: &Arc<dyn BlobDir>,
    cells: &BTreeMap<(u32, u32), Cell>,
) -> Option<u64> {
    let reader = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    let rows = cells.keys().map(|k| k.0 + 1).max().unwrap_or(0);
    let columns = cells.keys().map(|k| k.1 + 1).max().unwrap_or(0);
    let seen = read_all(&reader, rows, columns).await;
    assert_eq!(seen.len(), cells.len(), "cells the reader sees");
    assert!(seen == *cells, "the reader sees other values");
    reader.content().snapshot().map(|s| s.sequence_id)
}

/// Checks that every snapshot the log names is whole (index and every
/// tile); returns how many there are and how many carry `pending`.
pub(crate) async fn assert_snapshots_whole(
    log: &Arc<dyn EventLog>,
    dir: &Arc<dyn BlobDir>,
) -> (usize, usize) {
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let mut snapshots = 0;
    let mut pending = 0;
    for (seq, entry) in (all.start..).zip(&all.entries) {
        if let Some(blob_id) = &entry.metadata.snapshot {
            verify_snapshot(dir.clone(), blob_id)
                .await
                .unwrap_or_else(|err| panic!("the snapshot on entry {seq}: {err}"));
            snapshots += 1;
        }
        if entry.metadata.pending.is_some() {
            pending += 1;
        }
    }
    (snapshots, pending)
}

/// Runs `fut`, failing the test if it takes longer than [`PATIENCE`].
pub(crate) async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {PATIENCE:?}"))
}

/// Writes a 24x20 sheet (480 edits, a snapshot asked for every 50) through
/// a host that archives history and keeps two snapshots; then, on storage
/// opened again, checks what a fresh reader sees.
pub(crate) async fn writer_with_host_then_fresh_reader(
    open: impl AsyncFn() -> (Arc<dyn EventLog>, Arc<dyn BlobDir>),
) {
    let sheet = SheetOptions::default()
        .snapshot_interval(50)
        .tile_size(8, 8);
    let options = WorkflowOptions::default()
        .sheet(sheet)
        .history(2)
        .keep_snapshots(2);
    let (log, dir) = open().await;
    let host = WorkflowHost::start(log, dir.clone(), options);
    let writer = Spreadsheet::open(host.log(), dir.clone(), sheet)
        .await
        .unwrap();
    fill(&writer, 24, 20, 0).await;
    within("the host", host.idle()).await;
    assert_eq!(host.failures(), 0);
    host.shutdown().await;
    drop((writer, dir));

    let (log, dir) = open().await;
    let (snapshots, pending) = assert_snapshots_whole(&log, &dir).await;
    assert!((1..=2).contains(&snapshots), "{snapshots} snapshots named");
    assert_eq!(pending, 0);
    let from = assert_reader_sees(&log, &dir, &expected(24, 20, 0)).await;
    assert_eq!(from, Some(450));
    let payloads = read_payloads(&*log, &dir, 0, 480).await.unwrap();
    assert_eq!(payloads.len(), 480);
}
