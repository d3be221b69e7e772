//! The executable specification of the Infinisheet storage traits.
//!
//! Every case is a documented `pub async fn` in [`event_log`],
//! [`blob_store`] or [`log_store`] that takes the backend under test and
//! panics, with a message saying what the contract wanted, when the
//! backend breaks it. The macros [`event_log_tests!`],
//! [`blob_store_tests!`] and [`log_store_tests!`] expand to one `#[test]`
//! per case, so failures are independent and can be filtered by name.
//!
//! Testing a custom backend takes one dev-dependency and one macro call per
//! trait:
//!
//! ```
//! // tests/conformance.rs (here with the memory backends)
//! use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
//!
//! infinisheet_conformance::event_log_tests!(|| async { MemoryEventLog::new() });
//! infinisheet_conformance::blob_store_tests!(|| async { MemoryBlobStore::new() });
//! # fn main() {}
//! ```
//!
//! A backend that declares [`persistent`](infinisheet_event_log::LogCapabilities::persistent)
//! passes a second closure that drops a handle and opens the same storage
//! again; the persistence cases use it:
//!
//! ```text
//! infinisheet_conformance::event_log_tests!(
//!     || async { MyLog::temporary().await.unwrap() },
//!     reopen = |log: MyLog| async move { log.reopen().await.unwrap() },
//! );
//! ```
//!
//! Every backend that is shared — by processes, or by a catalog whose log
//! store hands out a handle per call — passes `open_again`, a way to open
//! a second, independent handle on the same storage while the first stays
//! open; the second-handle cases (an append seen through the other, a
//! stale handle's append a conflict, tokens and truncation honoured across
//! them, racing writers on both) run through the two:
//!
//! ```text
//! infinisheet_conformance::event_log_tests!(
//!     || async { MyLog::temporary().await.unwrap() },
//!     reopen = |log: MyLog| async move { log.reopen().await.unwrap() },
//!     open_again = |log: &MyLog| {
//!         let path = log.path().to_owned();
//!         async move { MyLog::open(path).await.unwrap() }
//!     },
//! );
//! ```
//!
//! A case whose guarantee the backend does not declare reports itself on
//! standard error as `conformance: SKIPPED <case>: <reason>` (written past
//! the test harness's output capture, so it shows in every run) and returns;
//! it never passes silently. A backend that declares a guarantee but gives the
//! suite no way to test it fails.
//!
//! The suite expects listings to return at most the page size a store
//! declares (`BlobCapabilities::page_size`, at most 1,000) names a page, and
//! queries to return at least one entry whenever entries remain; both are
//! part of the trait contracts. The listing cases fill several pages of the
//! declared size: a remote store configured with small pages is tested with
//! fewer blobs (each write is a request), in the same cases.
//!
//! # Layout
//!
//! `event_log::*`, `blob_store::*` and
//! `log_store::*` cases (one `pub async fn` each), persistence cases,
//! second-handle cases (`event_log/handles.rs`, `blob_store/handles.rs`:
//! two independent handles on one storage, from the macros' `open_again`
//! or a `LogStore` asked twice), a proptest model test per trait against
//! the memory reference, and the macros that expand them into tests.
//! `tests/main/catches_bugs.rs` holds it to account: deliberately broken backends
//! that named cases must fail (among them `test-kit`'s `StaleBoundsLogs`,
//! whose handles trust their own bounds).
//!
//! # Invariants
//!
//! * A capability a backend does not declare makes its cases report
//!   `conformance: SKIPPED` on stderr (past the harness's capture), never pass
//!   silently; with `INFINISHEET_SKIP_LOG` set, each skip is also appended to
//!   that file with the test that made it, and `cargo xtask test` fails if
//!   the skips differ from `xtask/expected-skips.txt`.
//!
//! # Decisions
//!
//! * The conformance macros expand to plain `#[test]` functions that run each
//!   case on a multi-threaded runtime (`infinisheet_conformance::run`), not
//!   `#[tokio::test]`: a third party's test crate then needs no tokio
//!   dependency or features of its own.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed conformance case

/// Asserts that `$result` is an `Err` matching `$pat`, printing what came
/// instead.
macro_rules! assert_err {
    ($result:expr, $pat:pat $(if $guard:expr)?) => {
        match $result {
            Err($pat) $(if $guard)? => {}
            other => panic!(
                "expected Err({}), got {:?}",
                stringify!($pat),
                other
            ),
        }
    };
}

pub mod blob_store;
pub mod event_log;
pub mod log_store;
mod macros;
mod report;

pub use report::{SKIP_LOG, run, skip};

#[doc(hidden)]
pub mod __private {
    pub use crate::report::second_handle;
    pub use std::future::Ready;
    pub use std::sync::Arc;
}
