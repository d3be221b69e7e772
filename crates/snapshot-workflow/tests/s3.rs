//! The workflow on the S3 server `cargo xtask test` starts: a log and
//! blobs in one bucket, a writer with an in-process host, then a fresh
//! reader. Built only with the `s3-tests` feature; without the server's
//! environment it fails rather than skips.

#![allow(clippy::unwrap_used)]

mod common;

use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::EventLog;
use infinisheet_object_store::ObjectStore;
use infinisheet_object_store::aws::AmazonS3Builder;
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_log_and_blobs() {
    assert!(
        std::env::var_os("INFINISHEET_S3").is_some(),
        "the S3 tests need the server `cargo xtask test` starts \
         (or AWS_ENDPOINT, AWS_BUCKET, ... and INFINISHEET_S3=1 set by hand)"
    );
    infinisheet_object_store::install_tls();
    let store: Arc<dyn ObjectStore> = Arc::new(
        AmazonS3Builder::from_env()
            .build()
            .expect("configuring the S3 store from the AWS_* environment"),
    );
    let prefix = format!("workflow-{:016x}", fastrand::u64(..));
    common::writer_with_host_then_fresh_reader(async || {
        let log = ObjectStoreEventLog::open(store.clone(), format!("{prefix}/log").into())
            .await
            .unwrap()
            .with_page_size(100);
        let log: Arc<dyn EventLog> = Arc::new(log);
        let dir = ObjectStoreBlobStore::new(store.clone(), format!("{prefix}/files").into()).root();
        (log, dir)
    })
    .await;
}
