//! The HTTP client backend against the backend behind its server, in the
//! same run on the same SQLite database: single durable appends and a
//! read of 10,000 entries, once directly and once through `HttpEventLog`
//! to `infinisheet serve` (the release build, every guard of it on the
//! path: access log, deadline, host, origin, token, body limit). Ratios
//! (direct time / HTTP time) say what a call over HTTP costs on top of the
//! storage.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet::Storage;
use infinisheet::http::HttpStorage;
use infinisheet_benches::{Served, entry_of, on_worker, runtime, settle};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{EventLog, KnownSnapshot, QueryEnd, QueryStart};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 60;
const READ: u64 = 10_000;

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let served = rt.block_on(async {
        let storage = Storage::embedded(dir.path()).await.unwrap();
        storage.logs.log("remote", true).await.unwrap();
        Served::start(dir.path(), &["--token", "bench"])
    });
    let (direct, remote): (Arc<dyn EventLog>, Arc<dyn EventLog>) = rt.block_on(async {
        let storage = Storage::embedded(dir.path()).await.unwrap();
        let direct = storage.logs.log("direct", true).await.unwrap();
        let remote = HttpStorage::connect(&served.url, Some("bench".into()))
            .await
            .unwrap()
            .log("remote", false)
            .await
            .unwrap();
        let remote: Arc<dyn EventLog> = Arc::new(remote);
        (direct, remote)
    });
    let mut group = c.benchmark_group("http/append");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    for (name, log) in [("direct", &direct), ("http", &remote)] {
        settle();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // On a worker of the runtime, as a host app's calls run.
                let log = Arc::clone(log);
                on_worker(&rt, async move {
                    let mut end = log.bounds().await.unwrap().end;
                    let start = Instant::now();
                    for _ in 0..iters {
                        log.add_entry(entry_of(PAYLOAD), end, KnownSnapshot::NotTracked)
                            .await
                            .unwrap();
                        end += 1;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();

    // A call that touches no disk: what one call over HTTP costs.
    let mut group = c.benchmark_group("http/bounds");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for (name, log) in [("direct", &direct), ("http", &remote)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let log = Arc::clone(log);
                on_worker(&rt, async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        log.bounds().await.unwrap();
                    }
                    start.elapsed()
                })
            });
        });
    }
    // The floor under any call over loopback: a bare TCP round trip of 64
    // bytes between two threads, no HTTP, no async. On a 2-core VM it is
    // most of what `http` costs, and it bounds the append ratio.
    group.bench_function("tcp_round_trip", |b| {
        let (mut client, _echo) = tcp_echo();
        let mut buf = [0u8; 64];
        b.iter(|| {
            client.write_all(&buf).unwrap();
            client.read_exact(&mut buf).unwrap();
        });
    });
    group.finish();

    let mut group = c.benchmark_group("http/read_10k");
    group.throughput(Throughput::Elements(READ));
    group.sample_size(20);
    for (name, log) in [("direct", &direct), ("http", &remote)] {
        rt.block_on(async {
            let end = log.bounds().await.unwrap().end;
            if end < READ {
                let batch = (end..READ).map(|_| entry_of(PAYLOAD)).collect();
                log.add_entries(batch, end, KnownSnapshot::NotTracked)
                    .await
                    .unwrap();
            }
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut from = 0;
                    while from < READ {
                        let page = log
                            .query(
                                QueryStart::Id(from),
                                QueryEnd::Id(READ),
                                KnownSnapshot::NotTracked,
                            )
                            .await
                            .unwrap();
                        from = page.end;
                    }
                })
            });
        });
    }
    group.finish();
    drop(served);
}

/// A loopback connection to a thread that echoes 64-byte messages; the
/// thread ends when the client side is dropped.
fn tcp_echo() -> (TcpStream, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        while stream.read_exact(&mut buf).is_ok() {
            if stream.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let client = TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    (client, echo)
}

criterion_group!(benches, bench);
criterion_main!(benches);
