//! The memory backends against the whole conformance suite: as they come,
//! with a page size that forces paging everywhere, and through every layer.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_memory::{MemoryBlobStore, MemoryEventLog, MemoryLogs};

// A second handle is a clone: it shares the state.
infinisheet_conformance::event_log_tests!(
    || async { MemoryEventLog::new() },
    open_again = |log: &MemoryEventLog| std::future::ready(log.clone()),
);
infinisheet_conformance::blob_store_tests!(
    || async { MemoryBlobStore::new() },
    open_again = |store: &MemoryBlobStore| std::future::ready(store.clone()),
);
infinisheet_conformance::log_store_tests!(|| async { MemoryLogs::new() });

infinisheet_conformance::event_log_tests!(
    mod small_pages_log,
    || async { MemoryEventLog::with_page_size(3) },
    open_again = |log: &MemoryEventLog| std::future::ready(log.clone()),
);
infinisheet_conformance::blob_store_tests!(
    mod small_pages_store,
    || async { MemoryBlobStore::with_page_size(7) },
    open_again = |store: &MemoryBlobStore| std::future::ready(store.clone()),
);

// Through the forwarding impls: `Box<dyn ...>` and `Arc<T>` are backends too.
infinisheet_conformance::event_log_tests!(mod boxed_log, || async {
    Box::new(MemoryEventLog::new()) as Box<dyn infinisheet_event_log::EventLog>
});
infinisheet_conformance::blob_store_tests!(mod boxed_store, || async {
    Box::new(MemoryBlobStore::new()) as Box<dyn infinisheet_blob_store::BlobStore>
});
infinisheet_conformance::event_log_tests!(
    mod arc_log,
    || async { std::sync::Arc::new(MemoryEventLog::new()) },
    open_again = |log: &std::sync::Arc<MemoryEventLog>| {
        std::future::ready(std::sync::Arc::new(MemoryEventLog::clone(log)))
    },
);
