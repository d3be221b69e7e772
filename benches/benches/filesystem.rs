//! The filesystem backend against raw loops on the same disk in the same
//! run: durable single appends (raw: write + fdatasync on a growing file),
//! 1,000-entry batches (raw: one buffered write of the same payload bytes +
//! one fdatasync), 16 logs appended to at once (raw: 16 such loops on 16
//! files at once), and durable 4 KiB blob writes (raw: temporary file,
//! fdatasync, rename, directory fsync).

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{on_worker, runtime, settle};
use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobStore};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry};
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BLOB: usize = 4 * 1024;

/// One durable atomic replace done by hand.
fn raw_write(dir: &std::path::Path, tmp: &std::path::Path, n: u64, content: &[u8]) {
    let temp = tmp.join(format!("raw.{n}.tmp"));
    let mut file = File::create(&temp).unwrap();
    file.write_all(content).unwrap();
    file.sync_data().unwrap();
    drop(file);
    std::fs::rename(&temp, dir.join(format!("blob{}", n % 16))).unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
}

fn blob_writes(c: &mut Criterion) {
    let rt = runtime();
    let base = scratch();
    let (raw_dir, raw_tmp) = (base.path().join("raw/blobs"), base.path().join("raw/tmp"));
    std::fs::create_dir_all(&raw_dir).unwrap();
    std::fs::create_dir_all(&raw_tmp).unwrap();
    let store = rt
        .block_on(FsBlobStore::open(base.path().join("store")))
        .unwrap();
    let dir: Arc<dyn BlobDir> = rt.block_on(store.root().open_dir("sheet")).unwrap();
    let content = Bytes::from(vec![0x42; BLOB]);

    let mut group = c.benchmark_group("filesystem/blob_write_4k");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    settle();
    let mut n = 0;
    group.bench_function("raw", |b| {
        b.iter(|| {
            raw_write(&raw_dir, &raw_tmp, n, &content);
            n += 1;
        });
    });
    settle();
    group.bench_function("backend", |b| {
        b.iter_custom(|iters| {
            let (dir, content) = (dir.clone(), content.clone());
            on_worker(&rt, async move {
                let start = Instant::now();
                for i in 0..iters {
                    dir.write(&format!("blob{}", i % 16), content.clone())
                        .await
                        .unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

/// Bytes of one entry's payload, about an encoded cell edit.
const ENTRY: usize = 64;

fn scratch() -> tempfile::TempDir {
    // On the project's disk, not a tmpfs.
    tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap()
}

/// `iters` rounds of write + fdatasync of `bytes` to a growing file.
fn raw_appends(path: &std::path::Path, iters: u64, bytes: &[u8]) -> Duration {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        file.write_all(bytes).unwrap();
        file.sync_data().unwrap();
    }
    start.elapsed()
}

async fn open_log(dir: std::path::PathBuf) -> Arc<dyn EventLog> {
    Arc::new(
        FsEventLog::open(dir, FsLogOptions::default())
            .await
            .unwrap(),
    )
}

/// Appends `iters` batches of `batch` entries to `log`, from its end `end`.
async fn backend_appends(
    log: Arc<dyn EventLog>,
    end: u64,
    iters: u64,
    batch: usize,
) -> (Duration, u64) {
    let entries: Vec<_> = (0..batch)
        .map(|_| LogEntry::new(vec![0x5a; ENTRY]))
        .collect();
    let mut end = end;
    let start = Instant::now();
    for _ in 0..iters {
        if batch == 1 {
            log.add_entry(entries[0].clone(), end, KnownSnapshot::NotTracked)
                .await
                .unwrap();
        } else {
            log.add_entries(entries.clone(), end, KnownSnapshot::NotTracked)
                .await
                .unwrap();
        }
        end += batch as u64;
    }
    (start.elapsed(), end)
}

fn log_appends(c: &mut Criterion, batch: usize, name: &str) {
    let rt = runtime();
    let base = scratch();
    let log = rt.block_on(open_log(base.path().join("log")));
    let raw_file = base.path().join("raw.log");
    let bytes = vec![0x5a; ENTRY * batch];
    let mut group = c.benchmark_group(format!("filesystem/{name}"));
    group.throughput(Throughput::Elements(batch as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    settle();
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| raw_appends(&raw_file, iters, &bytes))
    });
    settle();
    let mut end = 0;
    group.bench_function("backend", |b| {
        b.iter_custom(|iters| {
            let (elapsed, new_end) =
                on_worker(&rt, backend_appends(log.clone(), end, iters, batch));
            end = new_end;
            elapsed
        });
    });
    group.finish();
}

fn single_appends(c: &mut Criterion) {
    log_appends(c, 1, "append_durable");
}

fn batch_appends(c: &mut Criterion) {
    log_appends(c, 1_000, "batch_1000_durable");
}

fn parallel_logs(c: &mut Criterion) {
    const LOGS: usize = 16;
    let rt = runtime();
    let base = scratch();
    let logs: Vec<_> = (0..LOGS)
        .map(|i| rt.block_on(open_log(base.path().join(format!("log{i}")))))
        .collect();
    let mut ends = [0u64; LOGS];
    let bytes = vec![0x5a; ENTRY];
    let mut group = c.benchmark_group("filesystem/append_durable_16_logs");
    group.throughput(Throughput::Elements(LOGS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    settle();
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            let threads: Vec<_> = (0..LOGS)
                .map(|i| {
                    let (path, bytes) = (base.path().join(format!("raw{i}.log")), bytes.clone());
                    std::thread::spawn(move || raw_appends(&path, iters, &bytes))
                })
                .collect();
            // The loops run at once; the slowest sets the pace.
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .max()
                .unwrap()
        });
    });
    settle();
    group.bench_function("backend", |b| {
        b.iter_custom(|iters| {
            let tasks: Vec<_> = logs
                .iter()
                .zip(ends)
                .map(|(log, end)| backend_appends(log.clone(), end, iters, 1))
                .collect();
            let results = on_worker(&rt, async move {
                let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
                let mut results = Vec::new();
                for handle in handles {
                    results.push(handle.await.unwrap());
                }
                results
            });
            for (end, (_, new_end)) in ends.iter_mut().zip(&results) {
                *end = *new_end;
            }
            results
                .into_iter()
                .map(|(elapsed, _)| elapsed)
                .max()
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    single_appends,
    batch_appends,
    parallel_logs,
    blob_writes
);
criterion_main!(benches);
