//! Running a case on a runtime, and reporting skipped cases loudly.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::future::Future;
use std::io::Write;

/// Runs a case to completion on a multi-threaded tokio runtime (four worker
/// threads, so racing cases really race). The macros call this; a backend's
/// own tests may too.
pub fn run<F: Future<Output = ()>>(case: F) {
    // Boxed so the runtime's machinery is built once, here, rather than
    // once per case in every backend's test binary.
    run_boxed(Box::pin(case));
}

fn run_boxed(case: LocalFuture<'_, ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("cannot start a tokio runtime for the conformance case")
        .block_on(case);
}

/// A boxed future, as the model tests take their subjects: the cases are
/// compiled once, in this crate, not once per backend.
pub(crate) type LocalFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + 'a>>;

/// The environment variable naming a file that every skip is also
/// appended to, one line each: `<package dir>/<test target> <test>: <case>:
/// <reason>`. `cargo xtask test` sets it and checks the skips against the
/// list it expects, so a new skip fails CI instead of passing unseen.
pub const SKIP_LOG: &str = "INFINISHEET_SKIP_LOG";

/// Reports that `case` was skipped because the backend lacks what it tests.
///
/// Written straight to the process's standard error, which the test
/// harness's output capture does not intercept, so every run shows it; and
/// appended to the file [`SKIP_LOG`] names, if set, so a harness can count
/// them.
pub fn skip(case: &str, reason: &str) {
    let line = format!("conformance: SKIPPED {case}: {reason}\n");
    // Nothing sensible remains to do if stderr is closed.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os(SKIP_LOG) {
        let record = format!("{} {}: {case}: {reason}\n", test_target(), test_name());
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(record.as_bytes()));
        if let Err(err) = appended {
            panic!(
                "cannot record the skip in {}: {err}",
                path.to_string_lossy()
            );
        }
    }
}

/// `<package dir>/<test target>` of the running test binary (cargo sets
/// `CARGO_MANIFEST_DIR` when it runs tests; the binary is named after its
/// target, with a hash).
fn test_target() -> String {
    let package = std::env::var("CARGO_MANIFEST_DIR")
        .ok()
        .and_then(|dir| {
            std::path::Path::new(&dir)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        })
        .unwrap_or_else(|| "?".to_owned());
    format!("{package}/{target}")
}

/// The running test's name: the test harness names each test's thread
/// after it.
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("an unnamed thread")
        .to_owned()
}

/// Runs a model test: 48 cases drawn from `strategy`, each run to completion
/// by `case` on one runtime; on failure, panics with the minimal failing
/// input proptest shrank it to, saying `what` disagreed.
pub(crate) fn run_model<'a, S: Strategy>(
    what: &str,
    strategy: S,
    case: &'a dyn Fn(S::Value) -> LocalFuture<'a, Result<(), TestCaseError>>,
) {
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

/// The two handles of a second-handle case: the subject and a second one
/// `open_again` opens on the same storage while the first stays open.
/// Without `open_again`, the case is skipped for a volatile backend and
/// fails for a persistent one (which every process shares).
pub async fn second_handle<L, A, Fut>(
    case: &str,
    persistent: bool,
    subject: L,
    open_again: Option<A>,
) -> Option<(L, L)>
where
    A: Fn(&L) -> Fut,
    Fut: Future<Output = L>,
{
    match (persistent, open_again) {
        (_, Some(open_again)) => {
            let second = open_again(&subject).await;
            Some((subject, second))
        }
        (false, None) => {
            skip(
                case,
                "the backend gives no second handle (`open_again = ...`)",
            );
            None
        }
        (true, None) => panic!(
            "the backend declares `persistent` but the macro was given no `open_again = ...` \
             closure: a persistent store is shared by processes, so a second, independent \
             handle on it must agree with the first"
        ),
    }
}
