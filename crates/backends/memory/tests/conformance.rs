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

// Through the forwarding impls: `Box<dyn ...>` and `Arc<T>` are backends too.
infinisheet_conformance::event_log_tests!(mod boxed_log, || async {
    Box::new(MemoryEventLog::new()) as Box<dyn infinisheet_event_log::EventLog>
});
infinisheet_conformance::blob_store_tests!(mod boxed_store, || async {
    Box::new(MemoryBlobStore::new()) as Box<dyn infinisheet_blob_store::BlobStore>
});
infinisheet_conformance::event_log_tests!(mod arc_log, || async {
    std::sync::Arc::new(MemoryEventLog::new())
});
