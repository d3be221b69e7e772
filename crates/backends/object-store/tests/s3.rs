//! The conformance suite on a real S3-compatible server (moto, started by
//! `cargo xtask test`); every test works under a random prefix of the one
//! bucket. Built only with the `s3-tests` feature.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use infinisheet_object_store::ObjectStore;
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog};
use std::sync::Arc;

/// Page size of the logs and blob listings here: small enough that the
/// suite's longer cases page, large enough that the server (which answers
/// a few hundred requests a second) is not asked for a page of seven
/// entries thousands of times. The in-memory run pages by seven.
const PAGE: usize = 100;

/// A new client of the bucket `store` uses.
fn reconnect(store: &Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
    reconnect_client(store)
}

/// A new client of the bucket `store` uses, as its own type.
fn reconnect_client(store: &Arc<dyn ObjectStore>) -> Arc<infinisheet_object_store::aws::AmazonS3> {
    let shown = store.to_string();
    let bucket = shown
        .strip_prefix("AmazonS3(")
        .and_then(|rest| rest.strip_suffix(')'))
        .expect("an S3 store");
    common::s3_client(bucket)
}

async fn log() -> ObjectStoreEventLog {
    ObjectStoreEventLog::open(common::s3(), common::random_prefix("log"))
        .await
        .unwrap()
        .with_page_size(PAGE)
}

infinisheet_conformance::event_log_tests!(
    mod s3_event_log,
    log,
    reopen = |log: ObjectStoreEventLog| async move {
        // A new client: a new HTTP connection pool and no shared state.
        ObjectStoreEventLog::open(reconnect(log.object_store()), log.prefix().clone())
            .await
            .unwrap()
            .with_page_size(PAGE)
    },
    open_again = |log: &ObjectStoreEventLog| {
        let (store, prefix) = (reconnect(log.object_store()), log.prefix().clone());
        async move {
            ObjectStoreEventLog::open(store, prefix)
                .await
                .unwrap()
                .with_page_size(PAGE)
        }
    },
);

infinisheet_conformance::blob_store_tests!(
    mod s3_blob_store,
    || async { ObjectStoreBlobStore::new(common::s3(), common::random_prefix("blobs")).with_page_size(PAGE) },
    reopen = |blobs: ObjectStoreBlobStore| async move {
        ObjectStoreBlobStore::new(reconnect(blobs.object_store()), blobs.prefix().clone())
            .with_page_size(PAGE)
    },
    open_again = |blobs: &ObjectStoreBlobStore| std::future::ready(
        ObjectStoreBlobStore::new(reconnect(blobs.object_store()), blobs.prefix().clone())
            .with_page_size(PAGE)
    ),
);

// The same suite listing a page per request through S3's own pagination.
infinisheet_conformance::blob_store_tests!(
    mod s3_paged_blob_store,
    || async {
        let bucket = format!("test-{:016x}", fastrand::u64(..));
        common::create_bucket(&bucket);
        let client = common::s3_client(&bucket);
        ObjectStoreBlobStore::new(client.clone(), common::random_prefix("blobs"))
            .with_page_size(PAGE)
            .with_paginated_listing(client)
    },
    reopen = |blobs: ObjectStoreBlobStore| async move {
        let client = reconnect_client(blobs.object_store());
        ObjectStoreBlobStore::new(client.clone(), blobs.prefix().clone())
            .with_page_size(PAGE)
            .with_paginated_listing(client)
    },
    open_again = |blobs: &ObjectStoreBlobStore| {
        let client = reconnect_client(blobs.object_store());
        std::future::ready(
            ObjectStoreBlobStore::new(client.clone(), blobs.prefix().clone())
                .with_page_size(PAGE)
                .with_paginated_listing(client),
        )
    },
);

/// Paged listing costs one request a page: counted at the server's door.
#[tokio::test]
async fn a_paged_listing_makes_one_request_a_page() {
    use infinisheet_blob_store::{BlobDirExt, BlobStore};
    use infinisheet_object_store::list::{
        PaginatedListOptions, PaginatedListResult, PaginatedListStore,
    };
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counted(Arc<infinisheet_object_store::aws::AmazonS3>, AtomicU64);
    #[async_trait::async_trait]
    impl PaginatedListStore for Counted {
        async fn list_paginated(
            &self,
            prefix: Option<&str>,
            opts: PaginatedListOptions,
        ) -> infinisheet_object_store::Result<PaginatedListResult> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.list_paginated(prefix, opts).await
        }
    }

    let bucket = format!("test-{:016x}", fastrand::u64(..));
    common::create_bucket(&bucket);
    let client = common::s3_client(&bucket);
    let counted = Arc::new(Counted(client.clone(), AtomicU64::new(0)));
    let blobs = ObjectStoreBlobStore::new(client, common::random_prefix("blobs"))
        .with_page_size(50)
        .with_paginated_listing(counted.clone());
    let dir = blobs.root().open_dir("many").await.unwrap();
    for i in 0..120 {
        dir.write(&format!("b{i:03}"), "x").await.unwrap();
    }
    dir.open_dir("sub")
        .await
        .unwrap()
        .write("deep", "x")
        .await
        .unwrap();
    // Each write's kind check was one request for at most one key.
    assert_eq!(
        counted.1.load(Ordering::SeqCst),
        121,
        "one request per write's check"
    );
    counted.1.store(0, Ordering::SeqCst);
    let mut names = Vec::new();
    let mut page = dir.list(None).await.unwrap();
    assert_eq!(
        counted.1.load(Ordering::SeqCst),
        1,
        "the first page is one request"
    );
    loop {
        names.extend(page.entries.iter().map(|e| e.name.to_string()));
        let Some(next) = page.continuation.clone() else {
            break;
        };
        page = dir.list(Some(&next)).await.unwrap();
    }
    assert_eq!(
        counted.1.load(Ordering::SeqCst),
        3,
        "121 names in pages of 50"
    );
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 121);
}

/// Clients with their own connections agree with the reference log.
#[test]
fn s3_handles_match_reference() {
    infinisheet_conformance::event_log::event_log_handles_match_reference(|| async {
        let prefix = common::random_prefix("log");
        let first = common::s3();
        let mut handles = Vec::new();
        for _ in 0..3 {
            let log = ObjectStoreEventLog::open(reconnect(&first), prefix.clone())
                .await
                .unwrap()
                .with_page_size(PAGE);
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
    let direct = ObjectStoreBlobStore::new(common::s3_bucket(&bucket), prefix);
    assert_eq!(direct.root().read("hello").await.unwrap(), "world");
}

/// A mistyped bucket is a clear error that no retry fixes — never an empty
/// log or a missing blob.
#[tokio::test]
async fn a_missing_bucket_is_a_permanent_error_not_an_absent_object() {
    use infinisheet_blob_store::{BlobDirExt, BlobStore};
    let store = common::s3_bucket(&format!("no-such-bucket-{:016x}", fastrand::u64(..)));
    for open in [
        ObjectStoreEventLog::open(store.clone(), "log".into()).await,
        ObjectStoreEventLog::open_existing(store.clone(), "log".into()).await,
    ] {
        match open {
            Err(infinisheet_object_store::OpenError::Storage(err)) => {
                assert!(!err.is_retryable(), "{err}");
                assert!(err.to_string().contains("bucket"), "{err}");
            }
            other => panic!("opening a log in a missing bucket gave {other:?}"),
        }
    }
    let blobs = ObjectStoreBlobStore::new(store, "blobs".into());
    let err = blobs.root().read("b").await.unwrap_err();
    assert!(err.to_string().contains("bucket"), "{err}");
    assert!(
        !matches!(err, infinisheet_blob_store::ReadBlobError::NotFound { .. }),
        "{err}"
    );
    let err = blobs.root().write("b", "content").await.unwrap_err();
    assert!(err.to_string().contains("bucket"), "{err}");
}
