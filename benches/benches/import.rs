//! `infinisheet import`'s work: 1,000,000 cells of CSV (1,000 x 1,000,
//! numbers and some text) into a new sheet on the default embedded storage
//! (durable SQLite log, filesystem blobs), in appends of 10,000 cells, with
//! the in-process snapshot host finishing its jobs — the command's target
//! is 10 s.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet::table::{ImportOptions, import_csv};
use infinisheet::{Catalog, SheetOptions, Storage};
use infinisheet_benches::{million_side, runtime};
use std::time::{Duration, Instant};

fn csv() -> Vec<u8> {
    let side = million_side();
    let mut text = String::with_capacity(9 << 20);
    for row in 0..side {
        for column in 0..side {
            if column > 0 {
                text.push(',');
            }
            if column % 5 == 0 {
                text.push_str(&format!("label {}", row * side + column));
            } else {
                text.push_str(&format!(
                    "{}",
                    f64::from((row * 7919 + column) % 100_000) / 100.0
                ));
            }
        }
        text.push('\n');
    }
    text.into_bytes()
}

async fn import_once(data: &[u8]) -> Duration {
    let home = tempfile::tempdir().unwrap();
    let catalog = Catalog::new(Storage::embedded(home.path()).await.unwrap());
    let sheet = catalog
        .create_sheet("big", SheetOptions::default())
        .await
        .unwrap();
    infinisheet_benches::settle();
    let started = Instant::now();
    let cells = sheet.writer(true).await.unwrap();
    let options = ImportOptions {
        batch: 10_000,
        ..ImportOptions::default()
    };
    let report = import_csv(&cells, data, &options, |_| {}).await.unwrap();
    let done = cells.finish().await;
    let took = started.elapsed();
    assert_eq!(report.cells, u64::from(million_side().pow(2)));
    assert_eq!(done.failures, 0);
    took
}

fn import(c: &mut Criterion) {
    let rt = runtime();
    let data = csv();
    let mut group = c.benchmark_group("import");
    group.throughput(Throughput::Elements(u64::from(million_side().pow(2))));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(40));
    group.bench_function("csv_1m_cells_embedded", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let data = data.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let data = data.clone();
                    total += tokio::spawn(async move { import_once(&data).await })
                        .await
                        .unwrap();
                }
                total
            }
        });
    });
    group.finish();
}

criterion_group!(benches, import);
criterion_main!(benches);
