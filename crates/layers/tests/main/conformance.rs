//! Every layer keeps the contract: the whole conformance suite through each
//! one around the memory backends (a second handle is the layer around a
//! clone of the same memory log or store).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_layers::{Delay, Faults, Hook, Layered, Trace};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::future::{Ready, ready};
use std::time::Duration;

/// Another handle: the same hook around a clone of the same backend.
fn again<H: Hook + Clone, T: Clone>(layered: &Layered<H, T>) -> Ready<Layered<H, T>> {
    ready(Layered::new(
        layered.hook().clone(),
        layered.inner().clone(),
    ))
}

infinisheet_conformance::event_log_tests!(
    mod delayed_log,
    || async { Layered::new(Delay::new(Duration::from_micros(200)), MemoryEventLog::new()) },
    open_again = again::<Delay, MemoryEventLog>,
);
infinisheet_conformance::blob_store_tests!(
    mod delayed_store,
    || async { Layered::new(Delay::new(Duration::from_micros(200)), MemoryBlobStore::new()) },
    open_again = again::<Delay, MemoryBlobStore>,
);
infinisheet_conformance::event_log_tests!(
    mod traced_log,
    || async { Layered::new(Trace::new("memory"), MemoryEventLog::new()) },
    open_again = again::<Trace, MemoryEventLog>,
);
infinisheet_conformance::blob_store_tests!(
    mod traced_store,
    || async { Layered::new(Trace::new("memory"), MemoryBlobStore::new()) },
    open_again = again::<Trace, MemoryBlobStore>,
);
// Armed, but configured to fail nothing: the layer must be transparent.
infinisheet_conformance::event_log_tests!(
    mod idle_faults_log,
    || async { Layered::new(Faults::new(), MemoryEventLog::new()) },
    open_again = again::<Faults, MemoryEventLog>,
);
infinisheet_conformance::blob_store_tests!(
    mod idle_faults_store,
    || async { Layered::new(Faults::new(), MemoryBlobStore::new()) },
    open_again = again::<Faults, MemoryBlobStore>,
);
