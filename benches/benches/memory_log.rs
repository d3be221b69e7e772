//! The memory event log through `Arc<dyn EventLog>`, as host apps call it:
//! single-entry appends and full-range query throughput.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{entry_of, runtime};
use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_memory::MemoryEventLog;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Appends `iters` single 60-byte entries to a fresh memory log through
/// `Arc<dyn EventLog>`, passing `known` on every call.
async fn append_loop(iters: u64, known: KnownSnapshot) -> Duration {
    let entry = entry_of(60);
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let start = Instant::now();
    for seq in 0..iters {
        log.add_entry(entry.clone(), seq, known).await.unwrap();
    }
    start.elapsed()
}

fn appends(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("memory_log");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_single", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| append_loop(iters, KnownSnapshot::NotTracked));
    });
    group.bench_function("append_single_tracking_snapshot", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| append_loop(iters, KnownSnapshot::NoSnapshot));
    });
    group.finish();
}

fn queries(c: &mut Criterion) {
    const ENTRIES: u64 = 100_000;
    let rt = runtime();
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    rt.block_on(async {
        let entries = (0..ENTRIES).map(|_| entry_of(60)).collect();
        log.add_entries(entries, 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    });
    let mut group = c.benchmark_group("memory_log");
    group.throughput(Throughput::Elements(ENTRIES));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("query_all_100k", |b| {
        b.to_async(&rt).iter(|| async {
            let all = log
                .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
                .await
                .unwrap();
            assert_eq!(all.entries.len() as u64, ENTRIES);
        });
    });
    group.finish();
}

criterion_group!(benches, appends, queries);
criterion_main!(benches);
