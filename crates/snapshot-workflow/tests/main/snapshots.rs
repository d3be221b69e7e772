//! Snapshot size: after a whole snapshot of a sheet, changing 100 cells
//! and snapshotting again writes a small fraction of the bytes (only the
//! changed tile and the index; the rest is shared).

#![allow(clippy::unwrap_used)]

use crate::common;

use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobStore, EntryKind};
use infinisheet_engine::{Cell, CellRef, CellValue, SheetOptions, Spreadsheet};
use infinisheet_event_log::EventLog;
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet_snapshot_workflow::{JobOutcome, SnapshotWorker, WorkflowOptions};
use std::sync::Arc;

/// Bytes of the blobs in one snapshot's directory: what writing it wrote.
async fn written(dir: &Arc<dyn BlobDir>, at: u64) -> usize {
    let snapshot = common::snapshot_dir(dir, at).await;
    let mut bytes = 0;
    for entry in snapshot.list_all().await.unwrap() {
        assert_eq!(entry.kind, EntryKind::Blob);
        bytes += snapshot.read(entry.name.as_str()).await.unwrap().len();
    }
    bytes
}

#[tokio::test]
async fn changing_a_hundred_cells_rewrites_at_most_two_percent() {
    let side = 200u32;
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let options = SheetOptions::default()
        .tile_size(20, 20)
        .snapshot_interval(u64::from(side * side));
    let sheet = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    let cells: Vec<(CellRef, Cell)> = (0..side * side)
        .map(|i| {
            let value = CellValue::Number(f64::from(i));
            (CellRef::new(i / side, i % side), Cell::new(value))
        })
        .collect();
    for chunk in cells.chunks(5_000) {
        sheet.set_cells(chunk.to_vec()).await.unwrap();
    }
    // The 100 changed cells: a 10x10 block inside one tile; the first asks
    // for a snapshot of everything before it.
    let block: Vec<(CellRef, Cell)> = (0..100)
        .map(|i| {
            (
                CellRef::new(45 + i / 10, 123 + i % 10),
                Cell::new(CellValue::Boolean(true)),
            )
        })
        .collect();
    sheet.set_cells(block).await.unwrap();
    let whole_at = u64::from(side * side);
    // The worker's settings decide the first snapshot's tiles: 20x20.
    let worker = SnapshotWorker::new(
        log.clone(),
        dir.clone(),
        WorkflowOptions::default().sheet(options),
    );
    assert!(matches!(
        worker.run_job(whole_at).await.unwrap(),
        JobOutcome::Published(_)
    ));
    // One more edit to ask for the next snapshot, 100 entries on.
    let next_at = whole_at + 100;
    sheet
        .set_cell(0, 0, Cell::new(CellValue::Empty))
        .await
        .unwrap();
    common::ask_for_snapshot(&log, next_at).await;
    assert!(matches!(
        worker.run_job(next_at).await.unwrap(),
        JobOutcome::Published(_)
    ));
    let (whole, changed) = (written(&dir, whole_at).await, written(&dir, next_at).await);
    assert!(
        changed * 50 <= whole,
        "the second snapshot wrote {changed} bytes, the whole one {whole}"
    );
}
