//! Tail latency: an edit appended by one process (`tail-writer`, one entry
//! every 20 ms) seen by a tail in another (this one), on a SQLite file, the
//! filesystem log, and S3 (the server `cargo xtask bench` starts; skipped
//! without `AWS_ENDPOINT`). Each entry carries the time taken just before
//! its append, so a latency is append + notice: the writer's durable
//! append, then the tail's wait (polling with backoff from 10 ms, the
//! default `TailOptions`, on these backends) and its read. Criterion's
//! time per iteration is the mean latency; the median and p99 over every
//! entry of the run are printed after each backend.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use infinisheet_benches::{open_place, runtime};
use infinisheet_event_log::{EventLogExt, TailEvent};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn latency(c: &mut Criterion) {
    let rt = runtime();
    let temp = tempfile::tempdir().unwrap();
    let mut places = vec![
        (
            "sqlite",
            format!("sqlite:{}", temp.path().join("logs.db").display()),
        ),
        (
            "filesystem",
            format!("file:{}", temp.path().join("log").display()),
        ),
    ];
    if std::env::var_os("AWS_ENDPOINT").is_some() {
        places.push(("s3", format!("s3:bench-tail-{:016x}", std::process::id())));
    } else {
        eprintln!("tail_latency bench: no AWS_ENDPOINT; S3 left out");
    }
    let mut group = c.benchmark_group("tail_latency");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, place) in places {
        let log = rt.block_on(open_place(&place));
        let seen_all: Arc<Mutex<Vec<Duration>>> = Arc::default();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let from = log.bounds().await.unwrap().end;
                    let mut writer = Command::new(env!("CARGO_BIN_EXE_tail-writer"))
                        .args([place.as_str(), &iters.to_string(), "20"])
                        .spawn()
                        .unwrap();
                    let mut tail = log.tail(from);
                    let (mut total, mut seen) = (Duration::ZERO, 0u64);
                    while seen < iters {
                        if let TailEvent::Entries { entries, .. } = tail.next().await.unwrap() {
                            let noticed = now_nanos();
                            for entry in entries {
                                let sent =
                                    u64::from_le_bytes(entry.payload[..8].try_into().unwrap());
                                let took = Duration::from_nanos(noticed.saturating_sub(sent));
                                total += took;
                                seen_all.lock().unwrap().push(took);
                                seen += 1;
                            }
                        }
                    }
                    assert!(writer.wait().unwrap().success(), "the writer failed");
                    total
                })
            });
        });
        let mut all = seen_all.lock().unwrap().clone();
        all.sort_unstable();
        eprintln!(
            "tail_latency/{name}: {} edits, median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            all.len(),
            percentile(&all, 0.5).as_secs_f64() * 1000.0,
            percentile(&all, 0.99).as_secs_f64() * 1000.0,
            all.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        );
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
