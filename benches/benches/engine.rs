//! The engine: a cold open of a million-cell sheet on the default embedded
//! storage (SQLite log, filesystem blobs) reading a 50x20 viewport, also
//! in a fresh process for its peak memory; decoding a whole snapshot;
//! edits through the engine on the memory backends.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{fresh_process, measuring, million_side, runtime, sheet};
use infinisheet_blob_store::BlobStore;
use infinisheet_engine::{Cell, CellRange, CellValue, SheetOptions, Spreadsheet};
use infinisheet_event_log::EventLog;
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cold_open(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let (log, blobs) = sheet::embedded(dir.path()).await;
        sheet::build(log, blobs).await;
    });
    // In fresh processes: nothing cached but what the OS keeps.
    let mut runs = Vec::new();
    for _ in 0..if measuring() { 5 } else { 1 } {
        runs.push(fresh_process(
            env!("CARGO_BIN_EXE_cold-open"),
            &[dir.path().as_os_str()],
        ));
    }
    eprintln!("engine/cold_open_1m fresh processes: {}", runs.join(" | "));

    let mut group = c.benchmark_group("engine");
    group.sample_size(20);
    group.bench_function("cold_open_1m_viewport_50x20", |b| {
        b.to_async(&rt).iter(|| async {
            let (log, blobs) = sheet::embedded(dir.path()).await;
            let sheet = Spreadsheet::open(log, blobs, SheetOptions::default())
                .await
                .unwrap();
            let area: CellRange = "A1:T50".parse().unwrap();
            sheet.set_viewport(area).await.unwrap();
            let content = sheet.content();
            assert!(content.cell(49, 19).cell().is_some());
        });
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let rt = runtime();
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let blobs = MemoryBlobStore::new().root();
    rt.block_on(sheet::build(log.clone(), blobs.clone()));
    let side = million_side();
    let cells = u64::from(side * side - sheet::TAIL);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(cells));
    group.sample_size(10);
    group.bench_function("decode_whole_snapshot_1m", |b| {
        b.to_async(&rt).iter(|| async {
            let options = SheetOptions::default().loaded_tile_budget(1_000);
            let sheet = Spreadsheet::open(log.clone(), blobs.clone(), options)
                .await
                .unwrap();
            let all: CellRange = "A1:ALL1000".parse().unwrap();
            sheet.set_viewport(all).await.unwrap();
            // Tiles of 100x100.
            assert_eq!(sheet.content().loaded_tiles(), (side as usize / 100).pow(2));
        });
    });
    group.finish();
}

fn edits(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("edit_memory_no_snapshots", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
            let options = SheetOptions::default().snapshot_interval(0);
            let sheet = Spreadsheet::open(log, MemoryBlobStore::new().root(), options)
                .await
                .unwrap();
            let start = Instant::now();
            for i in 0..iters {
                let cell = Cell::new(CellValue::Number(i as f64));
                sheet
                    .set_cell((i % 10_000) as u32, (i / 10_000 % 100) as u32, cell)
                    .await
                    .unwrap();
            }
            start.elapsed()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = edits, decode, cold_open
}
criterion_main!(benches);
