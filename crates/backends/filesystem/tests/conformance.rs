//! The filesystem blob store against the whole blob-store conformance suite,
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
