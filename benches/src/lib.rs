//! Shared helpers for the Infinisheet benchmarks in `benches/benches/`.

use bytes::Bytes;
use infinisheet_event_log::LogEntry;

/// A log entry of `len` bytes, the size of a typical encoded cell edit when
/// `len` is 60.
pub fn entry_of(len: usize) -> LogEntry {
    LogEntry::new(Bytes::from(vec![0x5a; len]))
}

/// Flushes dirty pages and lets the disk settle, so a durable measurement
/// does not pay for earlier writes (fsync latency rises 5–20x while earlier
/// large writes are still being flushed; see ANCHORS.md).
pub fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(std::time::Duration::from_millis(200));
}

/// A multi-threaded runtime like a host app's.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("cannot start a runtime: {err}"))
}

/// Runs `work` as a task on a runtime worker thread, as a host app's calls
/// run (not on the thread blocking on the runtime, where `block_in_place`
/// costs nothing and would flatter a backend).
pub fn on_worker<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(async {
        tokio::spawn(work)
            .await
            .unwrap_or_else(|err| panic!("benchmark task failed: {err}"))
    })
}
