//! The HTTP client backend against the whole conformance suite, over a
//! real loopback connection to a [`StorageService`] (the code `infinisheet
//! serve` mounts) on a real SQLite database and a real blob directory.
//! One server per test binary, on its own thread and runtime; each case
//! gets a fresh log id or blob directory, and "reopen" is a new client
//! connection.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use common::{fresh_name, server};
use infinisheet_http::{HttpBlobStore, HttpEventLog, HttpStorage};

async fn connect() -> HttpStorage {
    HttpStorage::connect(server(), None).await.unwrap()
}

infinisheet_conformance::event_log_tests!(
    || async { connect().await.log(&fresh_name(), true).await.unwrap() },
    reopen = |log: HttpEventLog| async move {
        let id = log.id().to_owned();
        drop(log);
        connect().await.log(&id, false).await.unwrap()
    },
    // Another client of the server, on its own connection.
    open_again = |log: &HttpEventLog| {
        let id = log.id().to_owned();
        async move { connect().await.log(&id, false).await.unwrap() }
    },
);

// The server's logs as the log store a catalog on `http://` holds.
infinisheet_conformance::log_store_tests!(|| async { connect().await });

infinisheet_conformance::blob_store_tests!(
    || async { connect().await.blobs().at(&[fresh_name().parse().unwrap()]) },
    reopen = |store: HttpBlobStore| async move {
        let path = store.path().to_vec();
        drop(store);
        connect().await.blobs().at(&path)
    },
    open_again = |store: &HttpBlobStore| {
        let path = store.path().to_vec();
        async move { connect().await.blobs().at(&path) }
    },
);

/// A server paging at the default 1,000 names: its clients declare that,
/// and 1,001 names list over HTTP as a full page and one more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_paging_at_a_thousand_gives_full_pages() {
    use infinisheet_blob_store::{BlobDirExt, BlobStore, MAX_PAGE};
    let storage = HttpStorage::connect(&common::start_paged(0, MAX_PAGE), None)
        .await
        .unwrap();
    let store = storage.blobs();
    assert_eq!(store.capabilities().page_size, MAX_PAGE);
    let dir = store.root().open_dir("many").await.unwrap();
    let mut writes = tokio::task::JoinSet::new();
    for chunk in 0..16 {
        let dir = dir.clone();
        writes.spawn(async move {
            for i in (chunk..=MAX_PAGE).step_by(16) {
                dir.write(&format!("n{i:04}"), bytes::Bytes::new())
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = writes.join_next().await {
        done.unwrap();
    }
    let (mut names, mut largest, mut continuation) = (Vec::new(), 0, None);
    loop {
        let page = dir.list(continuation.as_ref()).await.unwrap();
        assert!(
            page.entries.len() <= MAX_PAGE,
            "a page of {}",
            page.entries.len()
        );
        largest = largest.max(page.entries.len());
        names.extend(page.entries.into_iter().map(|e| e.name.to_string()));
        continuation = page.continuation;
        if continuation.is_none() {
            break;
        }
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), MAX_PAGE + 1);
    assert!(largest > 100, "pages of at most {largest} names");
}
