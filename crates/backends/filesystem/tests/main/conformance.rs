//! The filesystem log and blob store against the whole conformance suite,
//! on temporary directories, including persistence (reopen is a new handle
//! on the same directory).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_filesystem::FsBlobStore;

infinisheet_conformance::blob_store_tests!(
    || async { FsBlobStore::temporary().await.unwrap() },
    reopen = |store: FsBlobStore| async move { store.reopen().await.unwrap() },
    open_again = |store: &FsBlobStore| {
        let store = store.clone();
        async move { store.open_again().await.unwrap() }
    },
);

infinisheet_conformance::blob_store_tests!(
    mod small_pages_store,
    || async { FsBlobStore::temporary().await.unwrap().with_page_size(7) },
    reopen = |store: FsBlobStore| async move { store.reopen().await.unwrap() },
    open_again = |store: &FsBlobStore| {
        let store = store.clone();
        async move { store.open_again().await.unwrap() }
    },
);

use infinisheet_event_log::{EventLog, LogStore, LogStoreError};
use infinisheet_filesystem::{FileLogs, FsEventLog, FsLogOptions};
use std::sync::Arc;

infinisheet_conformance::event_log_tests!(
    || async {
        FsEventLog::temporary(FsLogOptions::default())
            .await
            .unwrap()
    },
    reopen = |log: FsEventLog| async move { log.reopen().await.unwrap() },
    open_again = |log: &FsEventLog| {
        let log = log.clone();
        async move { log.open_again().await.unwrap() }
    },
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
    open_again = |log: &FsEventLog| {
        let log = log.clone();
        async move { log.open_again().await.unwrap() }
    },
);

// A directory of logs as the log store a catalog holds, with the
// temporary directory it lives in.
#[derive(Debug)]
struct TemporaryLogs {
    logs: FileLogs,
    _dir: tempfile::TempDir,
}

#[deny(clippy::missing_trait_methods)]
#[infinisheet_event_log::async_trait]
impl LogStore for TemporaryLogs {
    fn backend(&self) -> &str {
        self.logs.backend()
    }

    fn url(&self) -> &str {
        self.logs.url()
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        self.logs.log(id, create).await
    }

    async fn clear(&self, id: &str) -> Result<(), LogStoreError> {
        self.logs.clear(id).await
    }
}

infinisheet_conformance::log_store_tests!(|| async {
    let dir = tempfile::tempdir().unwrap();
    TemporaryLogs {
        logs: FileLogs::new(dir.path(), FsLogOptions::default()),
        _dir: dir,
    }
});
