//! The HTTP client backend against the backend behind its server, in the
//! same run on the same SQLite database: single durable appends and a
//! read of 10,000 entries, once directly and once through `HttpEventLog`
//! to a `StorageService` on loopback (the code `infinisheet serve`
//! mounts). Ratios (direct time / HTTP time) say what a call over HTTP
//! costs on top of the storage.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet::Storage;
use infinisheet::http::{HttpStorage, StorageService};
use infinisheet_benches::{entry_of, runtime, settle};
use infinisheet_event_log::{EventLog, KnownSnapshot, QueryEnd, QueryStart};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 60;
const READ: u64 = 10_000;

async fn storage_call(
    axum::extract::State(service): axum::extract::State<Arc<StorageService>>,
    body: axum::body::Bytes,
) -> Vec<u8> {
    service
        .handle(&body, infinisheet::http::Permission::ReadWrite)
        .await
}

/// Serves `storage` on a free loopback port; its URL.
async fn serve(storage: &Storage) -> String {
    let service = Arc::new(infinisheet::storage_service(storage));
    let app = axum::Router::new()
        .route("/api/storage", axum::routing::post(storage_call))
        .with_state(service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let (direct, remote): (Arc<dyn EventLog>, Arc<dyn EventLog>) = rt.block_on(async {
        let storage = Storage::embedded(dir.path()).await.unwrap();
        let direct = storage.logs.log("direct", true).await.unwrap();
        storage.logs.log("remote", true).await.unwrap();
        let url = serve(&storage).await;
        let remote = HttpStorage::connect(&url, None)
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
                rt.block_on(async {
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
