//! The snapshot workflow: the TypeScript original's own benchmark workload
//! (ANCHORS.md), and snapshots of a million-cell sheet — a whole one, and
//! one after changing 100 cells (with the bytes each writes).

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{measuring, million_side, runtime};
use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobStore, EntryKind};
use infinisheet_engine::{
    Cell, CellRef, CellValue, SNAPSHOTS_DIR, SheetOptions, Spreadsheet, snapshot_id,
};
use infinisheet_event_log::{EventLog, MetadataUpdate};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet_snapshot_workflow::{WorkflowHost, WorkflowOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The original's sizes: entries and the `rows x columns` grid written.
const WORKLOADS: [(u32, u32, u32); 8] = [
    (1_000, 100, 10),
    (2_000, 100, 20),
    (4_000, 100, 40),
    (8_000, 100, 80),
    (16_000, 1_000, 16),
    (24_000, 1_000, 24),
    (32_000, 1_000, 32),
    (40_000, 1_000, 40),
];

/// The original's workload: in-memory log and blob store, a snapshot every
/// 100 entries in 100x100 tiles, `set (row, col) = row + col` in row-major
/// order, waiting for all background work after each edit.
async fn original_workload(rows: u32, columns: u32) -> Duration {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let options = WorkflowOptions::default().poll_interval(None);
    let host = WorkflowHost::start(log, dir.clone(), options);
    let sheet = Spreadsheet::open(host.log(), dir, SheetOptions::default())
        .await
        .unwrap();
    let start = Instant::now();
    for row in 0..rows {
        for column in 0..columns {
            let value = CellValue::Number(f64::from(row + column));
            sheet.set_cell(row, column, Cell::new(value)).await.unwrap();
            host.idle().await;
        }
    }
    let took = start.elapsed();
    assert_eq!(host.failures(), 0);
    let entries = u64::from(rows * columns);
    let newest = sheet.content().snapshot().map(|s| s.sequence_id);
    assert!(
        newest.is_some_and(|s| s + 200 >= entries),
        "the writer knows snapshot {newest:?} of {entries} entries"
    );
    host.shutdown().await;
    took
}

fn original(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("workflow_original");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(6));
    // As a test of itself, the smallest workload only.
    let workloads = if measuring() {
        &WORKLOADS[..]
    } else {
        &WORKLOADS[..1]
    };
    for &(entries, rows, columns) in workloads {
        group.throughput(Throughput::Elements(u64::from(entries)));
        group.bench_with_input(
            BenchmarkId::from_parameter(entries),
            &(rows, columns),
            |b, &(rows, columns)| {
                b.to_async(&rt).iter_custom(|iters| async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // On a runtime worker, as a host app's code runs.
                        let run = tokio::spawn(original_workload(rows, columns));
                        total += run.await.unwrap();
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

/// A sheet of `million_side()` squared numbers in its log and no snapshot yet.
async fn million() -> (Arc<dyn EventLog>, Arc<dyn BlobDir>, Spreadsheet) {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let options = SheetOptions::default().snapshot_interval(0);
    let sheet = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    let side = million_side();
    let cells: Vec<u32> = (0..side * side).collect();
    for chunk in cells.chunks(10_000) {
        let batch = chunk
            .iter()
            .map(|&i| {
                let value = CellValue::Number(f64::from(i) * 0.5);
                (CellRef::new(i / side, i % side), Cell::new(value))
            })
            .collect();
        sheet.set_cells(batch).await.unwrap();
    }
    (log, dir, sheet)
}

/// Bytes of the blobs in one snapshot's directory: what writing it wrote.
async fn snapshot_bytes(dir: &Arc<dyn BlobDir>, at: u64) -> u64 {
    let snapshot = dir
        .open_dir(SNAPSHOTS_DIR)
        .await
        .unwrap()
        .open_dir(&snapshot_id(at, None))
        .await
        .unwrap();
    let mut bytes = 0;
    for entry in snapshot.list_all().await.unwrap() {
        if entry.kind == EntryKind::Blob {
            bytes += snapshot.read(entry.name.as_str()).await.unwrap().len() as u64;
        }
    }
    bytes
}

fn million_cells(c: &mut Criterion) {
    let rt = runtime();
    let (log, dir, sheet) = rt.block_on(million());
    let side = million_side();
    let at = u64::from(side * side);

    // Changing 100 cells (a 10x10 block) after a whole snapshot, then the
    // next snapshot: the bytes each wrote.
    let (full, small) = rt.block_on(async {
        let value = sheet.write_snapshot(at).await.unwrap();
        let full = snapshot_bytes(&dir, at).await;
        // Publish it on the entry it precedes, then change 100 cells.
        let block = (0..100)
            .map(|i| {
                let value = CellValue::Number(-1.0 - f64::from(i));
                (
                    CellRef::new(side / 2 + i / 10, side / 2 + i % 10),
                    Cell::new(value),
                )
            })
            .collect();
        let reader = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
            .await
            .unwrap();
        let changed = reader.set_cells(block).await.unwrap();
        assert_eq!(changed.start, at);
        log.set_metadata(at, MetadataUpdate::publish_snapshot(value.blob_id))
            .await
            .unwrap();
        let next = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
            .await
            .unwrap();
        next.write_snapshot(at + 100).await.unwrap();
        (full, snapshot_bytes(&dir, at + 100).await)
    });
    eprintln!(
        "workflow/snapshot_1m bytes: whole {full}, after changing 100 cells {small} ({:.3}% of whole)",
        small as f64 * 100.0 / full as f64
    );

    let mut group = c.benchmark_group("workflow");
    group.throughput(Throughput::Elements(at));
    group.sample_size(10);
    group.bench_function("snapshot_1m_whole", |b| {
        b.to_async(&rt).iter(|| async {
            sheet.write_snapshot(at).await.unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, original, million_cells);
criterion_main!(benches);
