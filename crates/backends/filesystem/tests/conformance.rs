//! The filesystem log and blob store against the whole conformance suite,
//! on temporary directories, including persistence (reopen is a new handle
//! on the same directory).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_filesystem::FsBlobStore;

infinisheet_conformance::blob_store_tests!(
    || async { FsBlobStore::temporary().await.unwrap() },
    reopen = |store: FsBlobStore| async move { store.reopen().await.unwrap() },
);

infinisheet_conformance::blob_store_tests!(
    mod small_pages_store,
    || async { FsBlobStore::temporary().await.unwrap().with_page_size(7) },
    reopen = |store: FsBlobStore| async move { store.reopen().await.unwrap() },
);

use infinisheet_filesystem::{FsEventLog, FsLogOptions};

infinisheet_conformance::event_log_tests!(
    || async {
        FsEventLog::temporary(FsLogOptions::default())
            .await
            .unwrap()
    },
    reopen = |log: FsEventLog| async move { log.reopen().await.unwrap() },
);

// 4 KiB segments: appends roll over to new segments all the time, and
// truncates delete segments; 3-entry query pages.
infinisheet_conformance::event_log_tests!(
    mod small_segments_log,
    || async {
        let options = FsLogOptions::default().segment_bytes(4096).query_page_entries(3);
        FsEventLog::temporary(options).await.unwrap()
    },
    reopen = |log: FsEventLog| async move { log.reopen().await.unwrap() },
);
