//! The PostgreSQL backend against raw SQL of the same statements through
//! the same client library (tokio-postgres, one connection, prepared
//! statements), in the same run, on the server `cargo xtask bench` starts
//! (`INFINISHEET_POSTGRES_URL`, fsync on): durable single appends,
//! 1,000-entry batches, and reads of 10,000 entries. Ratios (raw time /
//! backend time) go into the issue notes. As a test of itself
//! (`cargo test --benches`) it needs the same server (`cargo xtask test`
//! starts one) and runs each once.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{entry_of, measuring, on_worker, runtime, settle};
use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd, QueryStart};
use infinisheet_postgres::{PostgresDatabase, PostgresOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls, Statement};

const PAYLOAD: usize = 60;

fn url() -> String {
    std::env::var("INFINISHEET_POSTGRES_URL").expect(
        "the PostgreSQL benchmark needs a server: run it through `cargo xtask bench` \
         (or `cargo xtask test`), which starts one",
    )
}

/// A log the backend appends to, and one raw SQL appends to with the
/// backend's own statement (its function), on one connection.
struct Fixture {
    backend: Arc<dyn EventLog>,
    backend_end: u64,
    raw: Client,
    append: Statement,
    raw_log: i64,
    raw_end: i64,
}

fn fixture(rt: &tokio::runtime::Runtime) -> Fixture {
    rt.block_on(async {
        let db = PostgresDatabase::connect(&url(), PostgresOptions::default())
            .await
            .unwrap();
        let run = format!("{:016x}", fastrand::u64(..));
        let backend = db
            .create_log(&format!("bench-backend-{run}"))
            .await
            .unwrap();
        let raw_name = format!("bench-raw-{run}");
        db.create_log(&raw_name).await.unwrap();
        let (raw, connection) = tokio_postgres::connect(&url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        let raw_log: i64 = raw
            .query_one(
                "SELECT id FROM infinisheet_logs WHERE name = $1",
                &[&raw_name],
            )
            .await
            .unwrap()
            .get(0);
        let append = raw
            .prepare(
                "SELECT won, start_seq, end_seq, snapshot_seq, snapshot_blob, stored_token, \
                 stored_count FROM infinisheet_append($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await
            .unwrap();
        Fixture {
            backend: Arc::new(backend),
            backend_end: 0,
            raw,
            append,
            raw_log,
            raw_end: 0,
        }
    })
}

/// Appends `payloads` at the raw log's end with the backend's statement.
async fn raw_append(f: &Fixture, at: i64, payloads: &[&[u8]]) {
    let none: Vec<Option<&str>> = vec![None; payloads.len()];
    let token: Option<&[u8]> = None;
    let row = f
        .raw
        .query_one(
            &f.append,
            &[
                &f.raw_log, &at, &payloads, &none, &none, &none, &token, &false,
            ],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
}

fn single_appends(c: &mut Criterion) {
    let rt = runtime();
    let mut f = fixture(&rt);
    let payload = entry_of(PAYLOAD).payload;
    let mut group = c.benchmark_group("postgres/append_durable");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(if measuring() { 8 } else { 1 }));
    settle();
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    raw_append(&f, f.raw_end, &[&payload[..]]).await;
                    f.raw_end += 1;
                }
                start.elapsed()
            })
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

fn batches(c: &mut Criterion) {
    const BATCH: usize = 1_000;
    let rt = runtime();
    let mut f = fixture(&rt);
    let payloads: Vec<bytes::Bytes> = (0..BATCH).map(|_| entry_of(PAYLOAD).payload).collect();
    let slices: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    let mut group = c.benchmark_group("postgres/batch_1000");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("raw", |b| {
        b.iter(|| {
            rt.block_on(raw_append(&f, f.raw_end, &slices));
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

fn reads(c: &mut Criterion) {
    let entries: u64 = if measuring() { 10_000 } else { 1_000 };
    let rt = runtime();
    let f = fixture(&rt);
    let payloads: Vec<bytes::Bytes> = (0..entries).map(|_| entry_of(PAYLOAD).payload).collect();
    let slices: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    rt.block_on(raw_append(&f, 0, &slices));
    let batch = payloads.iter().cloned().map(LogEntry::new).collect();
    rt.block_on(f.backend.add_entries(batch, 0, KnownSnapshot::NotTracked))
        .unwrap();
    let select = rt
        .block_on(f.raw.prepare(
            "SELECT seq, payload, snapshot, history, pending FROM infinisheet_entries \
             WHERE log = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
        ))
        .unwrap();
    let mut group = c.benchmark_group(format!("postgres/read_{entries}"));
    group.throughput(Throughput::Elements(entries));
    group.sample_size(20);
    group.bench_function("raw", |b| {
        b.iter(|| {
            rt.block_on(async {
                let end = entries as i64;
                let rows = f
                    .raw
                    .query(&select, &[&f.raw_log, &0i64, &end])
                    .await
                    .unwrap();
                // Into the same owned values the backend returns.
                let read: Vec<LogEntry> = rows
                    .iter()
                    .map(|row| {
                        let payload: &[u8] = row.get(1);
                        let mut entry = LogEntry::new(bytes::Bytes::copy_from_slice(payload));
                        entry.metadata.snapshot = row.get(2);
                        entry.metadata.history = row.get(3);
                        entry.metadata.pending = row.get(4);
                        entry
                    })
                    .collect();
                assert_eq!(read.len() as u64, entries);
            });
        });
    });
    group.bench_function("backend", |b| {
        b.iter(|| {
            let log = f.backend.clone();
            let all = on_worker(&rt, async move {
                log.query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
                    .await
                    .unwrap()
            });
            assert_eq!(all.entries.len() as u64, entries);
        });
    });
    group.finish();
}

criterion_group!(benches, single_appends, batches, reads);
criterion_main!(benches);
