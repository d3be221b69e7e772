//! The child process of the crash-point sweep (`infinisheet_process_tests::sweep`).
//!
//! ```text
//! infinisheet-crashpoint <fs-log | fs-blobs | sqlite-log | sqlite-blobs> <dir>
//! ```
//!
//! Prints `begin` before it opens the store, `ack <i>` after operation `i`
//! of the workload is done, and `done` at the end. A failed call is retried
//! on the same handle; one that keeps failing ends the child with the error
//! on stderr.
//!
//! No tokio runtime: the futures are driven by a minimal `block_on` on the
//! main thread, where the filesystem and SQLite backends run their calls in
//! place. So every call the sweep counts is on one tracee, and none is the
//! runtime's own (a fault injected into the write that wakes a runtime's
//! driver would hang the child, not test the store).

use infinisheet_process_tests::sweep::{self, Workload};
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Wakes the thread that polls.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

fn say(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|err| format!("cannot report {line:?}: {err}"))
}

/// Opens the store, again if a call failed (the fault was one call).
async fn retry<T, F, Fut>(open: F) -> Result<T, String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let mut last = String::new();
    for _ in 0..5 {
        match open().await {
            Ok(store) => return Ok(store),
            Err(err) => last = err,
        }
    }
    Err(last)
}

async fn run(workload: Workload, dir: &std::path::Path) -> Result<(), String> {
    say("begin")?;
    match workload {
        Workload::FsLog | Workload::SqliteLog => {
            let log = retry(|| sweep::open_log(workload, dir)).await?;
            for (i, op) in sweep::log_ops().into_iter().enumerate() {
                sweep::run_log_op(&*log, op).await?;
                say(&format!("ack {i}"))?;
            }
        }
        Workload::FsBlobs | Workload::SqliteBlobs => {
            let store = retry(|| sweep::open_blobs(workload, dir)).await?;
            for (i, op) in sweep::blob_ops().into_iter().enumerate() {
                sweep::run_blob_op(&*store, op).await?;
                say(&format!("ack {i}"))?;
            }
        }
    }
    say("done")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(workload), Some(dir)) = (args.first().and_then(|w| Workload::parse(w)), args.get(1))
    else {
        eprintln!("usage: infinisheet-crashpoint <fs-log|fs-blobs|sqlite-log|sqlite-blobs> <dir>");
        return ExitCode::from(2);
    };
    match block_on(run(workload, std::path::Path::new(dir))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
