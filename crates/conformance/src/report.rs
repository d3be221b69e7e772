//! Running a case on a runtime, and reporting skipped cases loudly.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
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

/// Runs a model test: 48 cases drawn from `strategy`, each run to completion
/// by `case` on one runtime; on failure, panics with the minimal failing
/// input proptest shrank it to, saying `what` disagreed.
pub(crate) fn run_model<S, F, Fut>(what: &str, strategy: S, case: F)
where
    S: Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Result<(), TestCaseError>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot start a tokio runtime for the model test");
    let config = Config {
        cases: 48,
        // A third party's source tree is no place for regression files.
        failure_persistence: None,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&strategy, |input| runtime.block_on(case(input)));
    if let Err(err) = result {
        panic!("{what} disagrees with the reference: {err}");
    }
}

/// Returns the reopen closure if a persistence case should run: reports a
/// skip if the backend does not declare persistence, and fails if it
/// declares it but the macro was given no way to reopen it.
pub(crate) fn reopener<R>(
    case: &str,
    persistent: bool,
    macro_name: &str,
    reopen: Option<R>,
) -> Option<R> {
    match (persistent, reopen) {
        (false, _) => {
            skip(case, "the backend does not declare `persistent`");
            None
        }
        (true, None) => panic!(
            "the backend declares `persistent` but {macro_name} was given no `reopen = ...` closure"
        ),
        (true, Some(reopen)) => Some(reopen),
    }
}
