//! The blob-store conformance suite on a Google Cloud Storage emulator
//! (fake-gcs-server behind a front for uploads, started by `cargo xtask
//! test` with one bucket;
//! `GOOGLE_SERVICE_ACCOUNT` names a credentials file pointing
//! `object_store`'s GCS client at it with OAuth off). Built only with the
//! `gcs-tests` feature.
//!
//! The emulator serves reads, writes, listings and deletes as GCS does,
//! but ignores `max-keys` in a listing and `x-goog-if-generation-match`: a second create of one object
//! overwrites it. A log needs that condition (one writer wins each id), so
//! here the blob-store suite runs and the log must refuse to be created,
//! saying why, rather than let two writers win one id. The same holds for
//! a replace conditional on a generation, which the blob store uses to
//! rewrite a blob it knows in one request: the blob store's client here
//! says the store has none (as `LocalFileSystem` does), so every write
//! takes the checked path.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_object_store::path::Path;
use infinisheet_object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog, UrlStore, open_url};
use infinisheet_test_kit::{Call, Intercepted, Interceptor, Verdict};
use std::sync::Arc;

/// Page size of the listings: the longer cases page.
const PAGE: usize = 100;

fn bucket() -> String {
    assert!(
        std::env::var_os("INFINISHEET_GCS").is_some(),
        "the GCS tests need the emulator `cargo xtask test` starts"
    );
    std::env::var("INFINISHEET_GCS_BUCKET").unwrap()
}

/// The bucket, through the one URL constructor a host app uses
/// (`gs://bucket/prefix`, configured from the environment).
fn gcs(what: &str) -> UrlStore {
    let prefix = format!("{what}-{:016x}", fastrand::u64(..));
    open_url(&format!("gs://{}/{prefix}", bucket())).unwrap()
}

/// A new client of the same bucket and prefix.
fn reconnect(prefix: &Path) -> Arc<dyn ObjectStore> {
    open_url(&format!("gs://{}/{prefix}", bucket()))
        .unwrap()
        .store
}

/// Refuses a replace conditional on a version as unsupported: the
/// emulator would overwrite whatever is there.
struct NoConditionalReplace;

impl Interceptor for NoConditionalReplace {
    fn intercept(&self, call: Call<'_>) -> Verdict {
        match call {
            Call::Put { opts, .. } if matches!(opts.mode, PutMode::Update(_)) => {
                Verdict::Fail(infinisheet_object_store::Error::NotImplemented {
                    operation: "a replace conditional on a generation".into(),
                    implementer: "this GCS emulator".into(),
                })
            }
            _ => Verdict::Pass,
        }
    }
}

/// The blob store's client of `store`: without conditional replace.
fn blob_client(store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
    Arc::new(Intercepted::new(store, Arc::new(NoConditionalReplace)))
}

infinisheet_conformance::blob_store_tests!(
    mod gcs_blob_store,
    || async {
        // The emulator ignores `max-keys` (a listing answers every name
        // at once), so the store pages listings itself, as on a store
        // without paginated listing.
        let opened = gcs("blobs");
        ObjectStoreBlobStore::new(blob_client(opened.store), opened.prefix).with_page_size(PAGE)
    },
    reopen = |blobs: ObjectStoreBlobStore| async move {
        ObjectStoreBlobStore::new(blob_client(reconnect(blobs.prefix())), blobs.prefix().clone())
            .with_page_size(PAGE)
    },
    open_again = |blobs: &ObjectStoreBlobStore| std::future::ready(
        ObjectStoreBlobStore::new(blob_client(reconnect(blobs.prefix())), blobs.prefix().clone())
            .with_page_size(PAGE)
    ),
);

/// What the emulator does with a second create of one object: the reason
/// the log refuses it, checked so a fixed emulator is noticed.
#[tokio::test]
async fn the_emulator_overwrites_on_a_second_create() {
    let opened = gcs("probe");
    let key = opened.prefix.clone().join("object");
    let create = || PutOptions::from(PutMode::Create);
    opened
        .store
        .put_opts(&key, PutPayload::from_static(b"first"), create())
        .await
        .unwrap();
    let second = opened
        .store
        .put_opts(&key, PutPayload::from_static(b"second"), create())
        .await;
    let now = opened.store.get(&key).await.unwrap().bytes().await.unwrap();
    assert!(
        second.is_ok() && &now[..] == b"second",
        "the emulator now refuses a second create ({second:?}, content {now:?}): \
         run the event-log suite on gs:// as on s3://"
    );
}

/// The log probes the store's conditional writes before it creates a log
/// and refuses a store that ignores them, naming the failed condition.
#[tokio::test]
async fn a_log_is_refused_where_creates_overwrite() {
    let opened = gcs("log");
    let refused = ObjectStoreEventLog::open(opened.store.clone(), opened.prefix.clone())
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(
            refused,
            infinisheet_object_store::OpenError::Unsupported { .. }
        ),
        "{refused:?}"
    );
    assert!(
        message.contains("create") && message.contains("overwr"),
        "the refusal does not say why: {message}"
    );
    // Nothing of a log was left behind: opening it read-only finds none.
    let existing = ObjectStoreEventLog::open_existing(opened.store, opened.prefix).await;
    assert!(
        matches!(
            existing,
            Err(infinisheet_object_store::OpenError::NotFound { .. })
        ),
        "{existing:?}"
    );
}
