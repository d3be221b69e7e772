//! The SQLite backend against raw rusqlite doing the same statements with
//! the same settings on the same file, in the same run: single appends
//! (durable and NORMAL), 1,000-entry batches, and range reads of 100,000
//! entries. Ratios (raw time / backend time) go into the issue notes.

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{entry_of, on_worker, raw_sqlite, runtime, settle};
use infinisheet_event_log::{
    EntryMetadata, EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd, QueryStart,
};
use infinisheet_sqlite::{Durability, SqliteDatabase, SqliteEventLog, SqliteOptions};
use rusqlite::{Connection, params};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 60;

/// A database with two logs: one the backend appends to, one raw rusqlite
/// appends to with the backend's statements.
struct Fixture {
    _dir: tempfile::TempDir,
    backend: Arc<dyn EventLog>,
    raw: Connection,
    raw_log: i64,
    raw_end: i64,
    backend_end: u64,
}

fn fixture(rt: &tokio::runtime::Runtime, durability: Durability) -> Fixture {
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let path = dir.path().join("bench.db");
    let options = SqliteOptions::default().durability(durability);
    let backend = rt.block_on(async {
        let db = SqliteDatabase::open(&path, options).await.unwrap();
        let backend: SqliteEventLog = db.create_log("backend").await.unwrap();
        db.create_log("raw").await.unwrap();
        backend
    });
    let raw = raw_sqlite::connection(&path, durability);
    let raw_log = raw
        .query_row("SELECT id FROM logs WHERE name = 'raw'", [], |row| {
            row.get(0)
        })
        .unwrap();
    Fixture {
        raw,
        _dir: dir,
        backend: Arc::new(backend),
        raw_log,
        raw_end: 0,
        backend_end: 0,
    }
}

fn single_appends(c: &mut Criterion, durability: Durability, name: &str) {
    let rt = runtime();
    let mut f = fixture(&rt, durability);
    let payload = entry_of(PAYLOAD).payload;
    let mut group = c.benchmark_group(format!("sqlite/{name}"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(if durability == Durability::Full {
        8
    } else {
        4
    }));
    settle();
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                raw_sqlite::append(
                    &mut f.raw,
                    f.raw_log,
                    f.raw_end,
                    std::slice::from_ref(&payload),
                );
                f.raw_end += 1;
            }
            start.elapsed()
        });
    });
    settle();
    group.bench_function("backend", |b| {
        b.iter_custom(|iters| {
            let (log, mut end, payload) = (f.backend.clone(), f.backend_end, payload.clone());
            let (elapsed, new_end) = on_worker(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let entry = LogEntry::new(payload.clone());
                    log.add_entry(entry, end, KnownSnapshot::NotTracked)
                        .await
                        .unwrap();
                    end += 1;
                }
                (start.elapsed(), end)
            });
            f.backend_end = new_end;
            elapsed
        });
    });
    group.finish();
}

fn appends_full(c: &mut Criterion) {
    single_appends(c, Durability::Full, "append_full");
}

fn appends_normal(c: &mut Criterion) {
    single_appends(c, Durability::Normal, "append_normal");
}

fn batches(c: &mut Criterion) {
    const BATCH: usize = 1_000;
    let rt = runtime();
    let mut f = fixture(&rt, Durability::Normal);
    let payloads: Vec<Bytes> = (0..BATCH).map(|_| entry_of(PAYLOAD).payload).collect();
    let mut group = c.benchmark_group("sqlite/batch_1000_normal");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("raw", |b| {
        b.iter(|| {
            raw_sqlite::append(&mut f.raw, f.raw_log, f.raw_end, &payloads);
            f.raw_end += BATCH as i64;
        });
    });
    group.bench_function("backend", |b| {
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
    group.finish();
}

/// Reads `[0, end)` of `log` by hand in pages of `page`, into the same owned
/// values the backend returns.
fn raw_read(conn: &mut Connection, log: i64, end: i64, page: i64) -> Vec<LogEntry> {
    let tx = conn.transaction().unwrap();
    let mut out = Vec::with_capacity(end as usize);
    let mut select = tx
        .prepare_cached(
            "SELECT seq, payload, snapshot, history, pending FROM entries \
             WHERE log = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq LIMIT ?4",
        )
        .unwrap();
    let mut next = 0;
    while next < end {
        let mut rows = select.query(params![log, next, end, page]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let payload = row.get_ref(1).unwrap().as_blob().unwrap();
            out.push(LogEntry {
                payload: Bytes::copy_from_slice(payload),
                metadata: EntryMetadata {
                    snapshot: row.get(2).unwrap(),
                    history: row.get(3).unwrap(),
                    pending: row.get(4).unwrap(),
                },
            });
            next += 1;
        }
    }
    out
}

fn range_reads(c: &mut Criterion) {
    const ENTRIES: u64 = 100_000;
    let rt = runtime();
    let mut f = fixture(&rt, Durability::Normal);
    let page = SqliteOptions::default().query_page_entries as i64;
    let payloads: Vec<Bytes> = (0..ENTRIES).map(|_| entry_of(PAYLOAD).payload).collect();
    raw_sqlite::append(&mut f.raw, f.raw_log, 0, &payloads);
    let entries = payloads.iter().cloned().map(LogEntry::new).collect();
    rt.block_on(f.backend.add_entries(entries, 0, KnownSnapshot::NotTracked))
        .unwrap();
    let mut group = c.benchmark_group("sqlite/read_100k");
    group.throughput(Throughput::Elements(ENTRIES));
    group.sample_size(20);
    group.bench_function(BenchmarkId::new("raw", page), |b| {
        b.iter(|| {
            let read = raw_read(&mut f.raw, f.raw_log, ENTRIES as i64, page);
            assert_eq!(read.len() as u64, ENTRIES);
        });
    });
    group.bench_function(BenchmarkId::new("backend", page), |b| {
        b.iter(|| {
            let log = f.backend.clone();
            let all = on_worker(&rt, async move {
                log.query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
                    .await
                    .unwrap()
            });
            assert_eq!(all.entries.len() as u64, ENTRIES);
        });
    });
    group.finish();
}

criterion_group!(benches, appends_full, appends_normal, batches, range_reads);
criterion_main!(benches);
