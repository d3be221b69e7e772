//! The conformance suite on Azure Blob Storage's emulator (Azurite,
//! started by `cargo xtask test` with one container; the `AZURE_*` and
//! `AZURITE_*` environment names it). Every test works under a random
//! prefix. Built only with the `azure-tests` feature.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_object_store::ObjectStore;
use infinisheet_object_store::path::Path;
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog, UrlStore, open_url};
use std::sync::Arc;

/// Page size of the logs and listings: the longer cases page.
const PAGE: usize = 100;

/// The container, through the one URL constructor a host app uses
/// (`az://container/prefix`, configured from the environment).
fn azure(what: &str) -> UrlStore {
    assert!(
        std::env::var_os("INFINISHEET_AZURE").is_some(),
        "the Azure tests need the emulator `cargo xtask test` starts"
    );
    let container = std::env::var("INFINISHEET_AZURE_CONTAINER").unwrap();
    let prefix = format!("{what}-{:016x}", fastrand::u64(..));
    open_url(&format!("az://{container}/{prefix}")).unwrap()
}

/// A new client of the same container and prefix.
fn reconnect(prefix: &Path) -> Arc<dyn ObjectStore> {
    let container = std::env::var("INFINISHEET_AZURE_CONTAINER").unwrap();
    open_url(&format!("az://{container}/{prefix}"))
        .unwrap()
        .store
}

async fn log() -> ObjectStoreEventLog {
    let opened = azure("log");
    ObjectStoreEventLog::open(opened.store, opened.prefix)
        .await
        .expect("Azurite offers conditional create and ETag replace")
        .with_page_size(PAGE)
}

infinisheet_conformance::event_log_tests!(
    mod azure_event_log,
    log,
    reopen = |log: ObjectStoreEventLog| async move {
        ObjectStoreEventLog::open(reconnect(log.prefix()), log.prefix().clone())
            .await
            .unwrap()
            .with_page_size(PAGE)
    },
    open_again = |log: &ObjectStoreEventLog| {
        let (store, prefix) = (reconnect(log.prefix()), log.prefix().clone());
        async move {
            ObjectStoreEventLog::open(store, prefix)
                .await
                .unwrap()
                .with_page_size(PAGE)
        }
    },
);

infinisheet_conformance::blob_store_tests!(
    mod azure_blob_store,
    || async {
        let opened = azure("blobs");
        let lister = opened.lister.expect("Azure lists a page per request");
        ObjectStoreBlobStore::new(opened.store, opened.prefix)
            .with_page_size(PAGE)
            .with_paginated_listing(lister)
    },
    reopen = |blobs: ObjectStoreBlobStore| async move {
        ObjectStoreBlobStore::new(reconnect(blobs.prefix()), blobs.prefix().clone())
            .with_page_size(PAGE)
    },
    open_again = |blobs: &ObjectStoreBlobStore| std::future::ready(
        ObjectStoreBlobStore::new(reconnect(blobs.prefix()), blobs.prefix().clone())
            .with_page_size(PAGE)
    ),
);
