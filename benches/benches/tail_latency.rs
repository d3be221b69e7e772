//! Tail latency: an edit appended by one process (`tail-writer`, one entry
//! every 20 ms) seen by a tail in another (this one), on a SQLite file, the
//! filesystem log, PostgreSQL (the server `cargo xtask bench` starts;
//! skipped without `INFINISHEET_POSTGRES_URL`) and S3 (skipped without
//! `AWS_ENDPOINT`). Each entry carries the time taken just before its
//! append, and the writer prints when each append returned, so two
//! latencies are printed per backend: the edit's (append + notice: the
//! writer's durable append, then the tail's wake-up or poll, and its
//! read) and the notice alone (from the append's return to the tail
//! giving the entry; 0 when the tail had it first). Criterion's time per
//! iteration is the mean edit latency; medians and p99 over every entry
//! of the run are printed after each backend, with the reads an idle
//! tail makes in a minute (counted over a shorter wait and scaled).
//!
//! The SQLite, filesystem and PostgreSQL logs push (an append anywhere
//! wakes the tail), so their tails wait `TailOptions::pushed_wait`, 10 s,
//! between reads; S3 polls, 10 ms doubling to 500 ms.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use infinisheet_benches::{measuring, open_place, runtime};
use infinisheet_event_log::{EventLog, EventLogExt, TailEvent};
use infinisheet_layers::{Faults, Layered};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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

fn summary(all: &Mutex<Vec<Duration>>) -> String {
    let mut all = all.lock().unwrap().clone();
    all.sort_unstable();
    format!(
        "median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&all, 0.5).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    )
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
    if std::env::var_os("INFINISHEET_POSTGRES_URL").is_some() {
        places.push((
            "postgres",
            format!("postgres:bench-tail-{:016x}", std::process::id()),
        ));
    } else {
        eprintln!("tail_latency bench: no INFINISHEET_POSTGRES_URL; PostgreSQL left out");
    }
    if std::env::var_os("AWS_ENDPOINT").is_some() {
        places.push(("s3", format!("s3:bench-tail-{:016x}", std::process::id())));
    } else {
        eprintln!("tail_latency bench: no AWS_ENDPOINT; S3 left out");
    }
    let mut group = c.benchmark_group("tail_latency");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, place) in places {
        let calls = Faults::new();
        let log = Layered::new(calls.clone(), rt.block_on(open_place(&place)));
        let edits: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let notices: Arc<Mutex<Vec<Duration>>> = Arc::default();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let from = log.bounds().await.unwrap().end;
                    let mut writer = Command::new(env!("CARGO_BIN_EXE_tail-writer"))
                        .args([place.as_str(), &iters.to_string(), "20"])
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap();
                    let stdout = writer.stdout.take().unwrap();
                    let returned = std::thread::spawn(move || {
                        BufReader::new(stdout)
                            .lines()
                            .map(|line| {
                                let line = line.unwrap();
                                let (at, nanos) = line.split_once(' ').unwrap();
                                (at.parse::<u64>().unwrap(), nanos.parse::<u64>().unwrap())
                            })
                            .collect::<HashMap<u64, u64>>()
                    });
                    let mut tail = log.tail(from);
                    let (mut total, mut seen) = (Duration::ZERO, 0u64);
                    let mut noticed_at = Vec::new();
                    while seen < iters {
                        if let TailEvent::Entries { start, entries } = tail.next().await.unwrap() {
                            let noticed = now_nanos();
                            for (at, entry) in (start..).zip(entries) {
                                let sent =
                                    u64::from_le_bytes(entry.payload[..8].try_into().unwrap());
                                let took = Duration::from_nanos(noticed.saturating_sub(sent));
                                total += took;
                                edits.lock().unwrap().push(took);
                                noticed_at.push((at, noticed));
                                seen += 1;
                            }
                        }
                    }
                    assert!(writer.wait().unwrap().success(), "the writer failed");
                    let returned = returned.join().unwrap();
                    for (at, noticed) in noticed_at {
                        let back = returned[&at];
                        notices
                            .lock()
                            .unwrap()
                            .push(Duration::from_nanos(noticed.saturating_sub(back)));
                    }
                    total
                })
            });
        });
        let count = edits.lock().unwrap().len();
        eprintln!(
            "tail_latency/{name}: {count} edits; edit (append + notice) {}; notice alone {}",
            summary(&edits),
            summary(&notices),
        );
        let idle = if measuring() {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(1)
        };
        let reads = rt.block_on(async {
            let from = log.bounds().await.unwrap().end;
            let mut tail = log.tail(from);
            assert_eq!(
                tail.next().await.unwrap(),
                TailEvent::CaughtUp { end: from }
            );
            let before = calls.calls();
            let _ = tokio::time::timeout(idle, tail.next()).await;
            calls.calls() - before
        });
        eprintln!(
            "tail_latency/{name}: an idle tail read the log {reads} times in {} s ({:.0} a minute)",
            idle.as_secs(),
            reads as f64 * 60.0 / idle.as_secs_f64(),
        );
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
