//! The memory backends against the whole conformance suite: as they come,
//! with a page size that forces paging everywhere, and through every layer.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};

infinisheet_conformance::event_log_tests!(|| async { MemoryEventLog::new() });
infinisheet_conformance::blob_store_tests!(|| async { MemoryBlobStore::new() });

infinisheet_conformance::event_log_tests!(mod small_pages_log, || async {
    MemoryEventLog::with_page_size(3)
});
infinisheet_conformance::blob_store_tests!(mod small_pages_store, || async {
    MemoryBlobStore::with_page_size(7)
});
