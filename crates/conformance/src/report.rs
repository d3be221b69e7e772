//! Running a case on a runtime, and reporting skipped cases loudly.

use std::future::Future;
use std::io::Write;

/// Runs a case to completion on a multi-threaded tokio runtime (four worker
/// threads, so racing cases really race). The macros call this; a backend's
/// own tests may too.
pub fn run<F: Future<Output = ()>>(case: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("cannot start a tokio runtime for the conformance case")
        .block_on(case);
}

/// Reports that `case` was skipped because the backend lacks what it tests.
///
/// Written straight to the process's standard error, which the test
/// harness's output capture does not intercept, so every run shows it.
pub fn skip(case: &str, reason: &str) {
    let line = format!("conformance: SKIPPED {case}: {reason}\n");
    // Nothing sensible remains to do if stderr is closed.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
