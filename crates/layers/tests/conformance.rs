//! Every layer keeps the contract: the whole conformance suite through each
//! one around the memory backends.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_layers::{Delay, Faults, Layered, Trace};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::time::Duration;

infinisheet_conformance::event_log_tests!(mod delayed_log, || async {
    Layered::new(Delay::new(Duration::from_micros(200)), MemoryEventLog::new())
});
infinisheet_conformance::blob_store_tests!(mod delayed_store, || async {
    Layered::new(Delay::new(Duration::from_micros(200)), MemoryBlobStore::new())
});
infinisheet_conformance::event_log_tests!(mod traced_log, || async {
    Layered::new(Trace::new("memory"), MemoryEventLog::new())
});
infinisheet_conformance::blob_store_tests!(mod traced_store, || async {
    Layered::new(Trace::new("memory"), MemoryBlobStore::new())
});
// Armed, but configured to fail nothing: the layer must be transparent.
infinisheet_conformance::event_log_tests!(mod idle_faults_log, || async {
    Layered::new(Faults::new(), MemoryEventLog::new())
});
infinisheet_conformance::blob_store_tests!(mod idle_faults_store, || async {
    Layered::new(Faults::new(), MemoryBlobStore::new())
});
