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
