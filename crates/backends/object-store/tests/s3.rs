//! The conformance suite on a real S3-compatible server (moto, started by
//! `cargo xtask test`); every test works under a random prefix of the one
//! bucket. Built only with the `s3-tests` feature.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog};

async fn log() -> ObjectStoreEventLog {
    ObjectStoreEventLog::open(common::s3(), common::random_prefix("log"))
        .await
        .unwrap()
        .with_page_size(7)
}

infinisheet_conformance::event_log_tests!(
    mod s3_event_log,
    log,
    reopen = |log: ObjectStoreEventLog| async move {
        // A new client: a new HTTP connection pool and no shared state.
        ObjectStoreEventLog::open(common::s3(), log.prefix().clone())
            .await
            .unwrap()
            .with_page_size(7)
    }
);

infinisheet_conformance::blob_store_tests!(
    mod s3_blob_store,
    || async { ObjectStoreBlobStore::new(common::s3(), common::random_prefix("blobs")).with_page_size(7) },
    reopen = |blobs: ObjectStoreBlobStore| async move {
        ObjectStoreBlobStore::new(common::s3(), blobs.prefix().clone()).with_page_size(7)
    }
);

/// Clients with their own connections agree with the reference log.
#[test]
fn s3_handles_match_reference() {
    infinisheet_conformance::event_log::event_log_handles_match_reference(|| async {
        let prefix = common::random_prefix("log");
        let mut handles = Vec::new();
        for _ in 0..3 {
            let log = ObjectStoreEventLog::open(common::s3(), prefix.clone())
                .await
                .unwrap()
                .with_page_size(7);
            handles.push(log);
        }
        handles
    });
}

/// A URL and the `AWS_*` environment are enough to reach the bucket.
#[tokio::test]
async fn a_url_and_the_environment_open_the_bucket() {
    use infinisheet_blob_store::{BlobDirExt, BlobStore};
    let bucket = std::env::var("AWS_BUCKET").unwrap();
    let url = format!("s3://{bucket}/{}", common::random_prefix("url"));
    let (store, prefix) = infinisheet_object_store::parse_url(&url).unwrap();
    let blobs = ObjectStoreBlobStore::new(store, prefix.clone());
    blobs.root().write("hello", "world").await.unwrap();
    let direct = ObjectStoreBlobStore::new(common::s3(), prefix);
    assert_eq!(direct.root().read("hello").await.unwrap(), "world");
}
