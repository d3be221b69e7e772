//! Shared by the engine's tests: a snapshot worker pass (what the snapshot
//! workflow does, done inline), and comparing sheets cell by cell.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part

use infinisheet_blob_store::{BlobDir, BlobStore};
use infinisheet_engine::{Cell, SheetOptions, Spreadsheet};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, MetadataUpdate, QueryEnd, QueryStart, SnapshotValue,
};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) fn memory() -> (Arc<dyn EventLog>, Arc<dyn BlobDir>) {
    (
        Arc::new(MemoryEventLog::new()),
        MemoryBlobStore::new().root(),
    )
}

/// Opens a sheet on `log` and `dir`.
pub(crate) async fn open(
    log: &Arc<dyn EventLog>,
    dir: &Arc<dyn BlobDir>,
    options: SheetOptions,
) -> Spreadsheet {
    Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap()
}

/// Writes the snapshot before entry `at` from `sheet` and names it on
/// entry `at`, which must exist.
pub(crate) async fn publish(
    log: &Arc<dyn EventLog>,
    sheet: &Spreadsheet,
    at: u64,
) -> SnapshotValue {
    let value = sheet.write_snapshot(at).await.unwrap();
    log.set_metadata(at, MetadataUpdate::publish_snapshot(value.blob_id.clone()))
        .await
        .unwrap();
    value
}

/// Writes and publishes a snapshot for every entry marked pending, oldest
/// first, each with a freshly opened worker sheet (so each builds on the
/// snapshot before it). Returns how many it published.
pub(crate) async fn worker_pass(log: &Arc<dyn EventLog>, dir: &Arc<dyn BlobDir>) -> usize {
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let pending: Vec<u64> = all
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.metadata.pending.is_some())
        .map(|(i, _)| all.start + i as u64)
        .collect();
    let mut published = 0;
    for at in pending {
        let worker = open(log, dir, SheetOptions::default()).await;
        publish(log, &worker, at).await;
        published += 1;
    }
    published
}

/// Every cell of a sheet within `rows` x `columns`, loading the tiles as a
/// viewport would, in pieces that fit the tile budget.
pub(crate) async fn cells(
    sheet: &Spreadsheet,
    rows: u32,
    columns: u32,
) -> BTreeMap<(u32, u32), Cell> {
    infinisheet_test_kit::read_viewports(sheet, rows, columns, 50).await
}
