//! Costs that must not grow with the log: 1,000-entry appends to SQLite
//! logs that already hold 1M and 10M entries, against raw rusqlite doing
//! the same inserts into a table of the same size in the same run; and
//! opening filesystem logs of 10k, 1M and 10M entries plus a 100-entry
//! tail read, timed and with its peak RSS, each in a fresh process.

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{entry_of, fresh_process, on_worker, raw_sqlite, runtime, tail_of};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry};
use infinisheet_filesystem::{FsEventLog, FsLogOptions};
use infinisheet_sqlite::{Durability, SqliteDatabase, SqliteEventLog, SqliteOptions};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

const PAYLOAD: usize = 60;
const BATCH: usize = 1_000;
/// Entries written per transaction while filling a log.
const FILL_BATCH: usize = 10_000;

/// The log sizes measured; `INFINISHEET_GROWTH_SIZES` (comma-separated)
/// overrides them for a quick run. Run as a test (`cargo test`, which runs
/// each benchmark once without `--bench`), small logs: the code runs, the
/// figures are not taken.
fn sizes(default: &[u64]) -> Vec<u64> {
    if let Ok(list) = std::env::var("INFINISHEET_GROWTH_SIZES") {
        return list.split(',').map(|n| n.trim().parse().unwrap()).collect();
    }
    if !std::env::args().any(|arg| arg == "--bench") {
        return vec![2_000, 20_000];
    }
    default.to_vec()
}

fn scratch() -> tempfile::TempDir {
    // On the project's disk, not a tmpfs.
    tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap()
}

/// Two databases of the backend's schema, each with one log of `size`
/// entries: one filled and appended to through the backend, one by raw
/// rusqlite.
struct SqliteFixture {
    _dir: tempfile::TempDir,
    backend: Arc<dyn EventLog>,
    backend_end: u64,
    raw: Connection,
    raw_log: i64,
    raw_end: i64,
}

fn sqlite_fixture(rt: &tokio::runtime::Runtime, size: u64, payloads: &[Bytes]) -> SqliteFixture {
    let dir = scratch();
    let options = SqliteOptions::default().durability(Durability::Normal);
    let (backend_path, raw_path) = (dir.path().join("backend.db"), dir.path().join("raw.db"));
    let backend: SqliteEventLog = rt.block_on(async {
        let db = SqliteDatabase::open(&backend_path, options).await.unwrap();
        let raw_db = SqliteDatabase::open(&raw_path, options).await.unwrap();
        raw_db.create_log("raw").await.unwrap();
        db.create_log("backend").await.unwrap()
    });
    let backend: Arc<dyn EventLog> = Arc::new(backend);
    let fill: Vec<Bytes> = payloads.iter().cycle().take(FILL_BATCH).cloned().collect();
    let mut end = 0;
    while end < size {
        let n = (size - end).min(FILL_BATCH as u64) as usize;
        let entries = fill[..n].iter().cloned().map(LogEntry::new).collect();
        let log = backend.clone();
        on_worker(rt, async move {
            log.add_entries(entries, end, KnownSnapshot::NotTracked)
                .await
                .unwrap()
        });
        end += n as u64;
    }
    let mut raw = raw_sqlite::connection(&raw_path, Durability::Normal);
    let raw_log = raw
        .query_row("SELECT id FROM logs WHERE name = 'raw'", [], |row| {
            row.get(0)
        })
        .unwrap();
    let mut raw_end = 0;
    while raw_end < size as i64 {
        let n = (size as i64 - raw_end).min(FILL_BATCH as i64) as usize;
        raw_sqlite::append(&mut raw, raw_log, raw_end, &fill[..n]);
        raw_end += n as i64;
    }
    SqliteFixture {
        _dir: dir,
        backend,
        backend_end: size,
        raw,
        raw_log,
        raw_end,
    }
}

fn sqlite_batches_on_long_logs(c: &mut Criterion) {
    let rt = runtime();
    let payloads: Vec<Bytes> = (0..BATCH).map(|_| entry_of(PAYLOAD).payload).collect();
    let mut group = c.benchmark_group("growth/sqlite_batch_1000");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    for size in sizes(&[1_000_000, 10_000_000]) {
        let mut f = sqlite_fixture(&rt, size, &payloads);
        group.bench_function(BenchmarkId::new("raw", size), |b| {
            b.iter(|| {
                raw_sqlite::append(&mut f.raw, f.raw_log, f.raw_end, &payloads);
                f.raw_end += BATCH as i64;
            });
        });
        group.bench_function(BenchmarkId::new("backend", size), |b| {
            b.iter(|| {
                let entries = payloads.iter().cloned().map(LogEntry::new).collect();
                let (log, end) = (f.backend.clone(), f.backend_end);
                on_worker(&rt, async move {
                    log.add_entries(entries, end, KnownSnapshot::NotTracked)
                        .await
                        .unwrap()
                });
                f.backend_end += BATCH as u64;
            });
        });
    }
    group.finish();
}

/// A filesystem log of `size` entries in `dir`, appended in batches of
/// 1,000.
fn fs_log_of(rt: &tokio::runtime::Runtime, dir: &Path, size: u64, payloads: &[Bytes]) {
    let log = rt
        .block_on(FsEventLog::open(dir, FsLogOptions::default()))
        .unwrap();
    let mut end = 0;
    while end < size {
        let n = (size - end).min(BATCH as u64) as usize;
        let entries = payloads[..n].iter().cloned().map(LogEntry::new).collect();
        rt.block_on(log.add_entries(entries, end, KnownSnapshot::NotTracked))
            .unwrap();
        end += n as u64;
    }
}

fn fs_open_and_tail(c: &mut Criterion) {
    let rt = runtime();
    let payloads: Vec<Bytes> = (0..BATCH).map(|_| entry_of(PAYLOAD).payload).collect();
    let base = scratch();
    let mut group = c.benchmark_group("growth/fs_open_tail_100");
    group.sample_size(20);
    for size in sizes(&[10_000, 1_000_000, 10_000_000]) {
        let dir = base.path().join(format!("log-{size}"));
        fs_log_of(&rt, &dir, size, &payloads);
        // In fresh processes, for the peak memory of an open.
        let runs: Vec<String> = (0..5)
            .map(|_| fresh_process(env!("CARGO_BIN_EXE_fs-open"), &[dir.as_os_str()]))
            .collect();
        eprintln!(
            "growth/fs_open_tail_100/{size} fresh processes: {}",
            runs.join(" | ")
        );
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                let dir = dir.clone();
                let read = on_worker(&rt, async move {
                    let log = FsEventLog::open(&dir, FsLogOptions::default())
                        .await
                        .unwrap();
                    tail_of(&log, 100).await
                });
                assert_eq!(read, 100);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, sqlite_batches_on_long_logs, fs_open_and_tail);
criterion_main!(benches);
