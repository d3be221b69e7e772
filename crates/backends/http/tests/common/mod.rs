//! A storage server for the tests: a [`StorageService`] over a SQLite
//! database of logs and a filesystem blob store, under `axum` on a free
//! loopback port, started once per test binary on its own thread (it ends
//! with the process).

#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use infinisheet_http::StorageService;
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The service, and every how many calls a reply is lost (0: none).
struct Served {
    service: StorageService,
    lose_every: u64,
    calls: AtomicU64,
}

async fn storage(State(served): State<Arc<Served>>, body: axum::body::Bytes) -> impl IntoResponse {
    // The call is carried out either way; a lost one answers 503 instead
    // of its reply, as a proxy or a dropped connection would leave it.
    let reply = served
        .service
        .handle(&body, infinisheet_http::Permission::ReadWrite)
        .await;
    let call = served.calls.fetch_add(1, Ordering::Relaxed) + 1;
    if served.lose_every > 0 && call % served.lose_every == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "reply lost").into_response();
    }
    (
        [(header::CONTENT_TYPE, StorageService::CONTENT_TYPE)],
        reply,
    )
        .into_response()
}

/// The server's base URL, starting it on first use.
pub fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| start(0))
}

/// A server of this process's own, on its own thread and runtime, whose
/// every `lose_every`th reply is lost after the call was carried out; its
/// blob store pages at 100 names.
pub fn start(lose_every: u64) -> String {
    start_paged(lose_every, 100)
}

/// [`start`] with a blob store whose listing pages hold at most `page`
/// names.
pub fn start_paged(lose_every: u64, page: usize) -> String {
    {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                static SERVERS: AtomicU64 = AtomicU64::new(0);
                let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
                    "http-{}-{}",
                    std::process::id(),
                    SERVERS.fetch_add(1, Ordering::Relaxed)
                ));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                let db = SqliteDatabase::open(dir.join("logs.sqlite"), SqliteOptions::default())
                    .await
                    .unwrap();
                // Pages of 100 for the suite: its listing cases then write
                // 1,100 blobs (over HTTP, each synced), not ten pages of
                // 1,000.
                let blobs = infinisheet_filesystem::FsBlobStore::open(dir.join("blobs"))
                    .await
                    .unwrap()
                    .with_page_size(page);
                let service = Arc::new(Served {
                    service: StorageService::new(Arc::new(db), Arc::new(blobs)),
                    lose_every,
                    calls: AtomicU64::new(0),
                });
                let app = axum::Router::new()
                    .route("/api/storage", axum::routing::post(storage))
                    .layer(DefaultBodyLimit::max(64 << 20))
                    .with_state(service);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tx.send(format!("http://{addr}")).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        rx.recv().unwrap()
    }
}

/// A name no other case of this process uses.
pub fn fresh_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("case{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
