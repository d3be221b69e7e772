//! Compare-and-swap loops give up: an object-store log whose every
//! conditional replace loses (another writer always first) answers a
//! retryable error after a bounded number of attempts instead of spinning.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use async_trait::async_trait;
use futures::stream::BoxStream;
use infinisheet_event_log::{
    EventLog, KnownSnapshot, LogEntry, MetadataUpdate, SetMetadataError, TruncateError,
};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::object_store::path::Path;
use infinisheet_object_store::object_store::{
    self, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A store on which, once `lose` is set, every conditional write but a
/// record's fails as if another writer had got there first.
struct AlwaysLoses {
    inner: Arc<dyn ObjectStore>,
    lose: AtomicBool,
    lost: AtomicU64,
}

impl fmt::Debug for AlwaysLoses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlwaysLoses({})", self.inner)
    }
}

impl fmt::Display for AlwaysLoses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[async_trait]
impl ObjectStore for AlwaysLoses {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        // Conditional writes of everything but records (an append's create
        // stays a plain race it may win).
        let conditional = !matches!(opts.mode, PutMode::Overwrite);
        let record = location.as_ref().contains("/records/");
        if conditional && !record && self.lose.load(Ordering::Relaxed) {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return Err(object_store::Error::Precondition {
                path: location.to_string(),
                source: "another writer changed it first".into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn endless_lost_races_end_in_a_retryable_error() {
    let store = Arc::new(AlwaysLoses {
        inner: common::memory(),
        lose: AtomicBool::new(false),
        lost: AtomicU64::new(0),
    });
    let log = ObjectStoreEventLog::open(store.clone(), Path::from("log"))
        .await
        .unwrap();
    for i in 0..3 {
        log.add_entry(
            LogEntry::new(format!("entry {i}")),
            i,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    }
    store.lose.store(true, Ordering::Relaxed);
    match log
        .set_metadata(1, MetadataUpdate::publish_snapshot("s"))
        .await
    {
        Err(SetMetadataError::Storage(err)) => assert!(err.is_retryable(), "{err}"),
        other => panic!("expected a retryable storage error, got {other:?}"),
    }
    match log.truncate(2).await {
        Err(TruncateError::Storage(err)) => assert!(err.is_retryable(), "{err}"),
        other => panic!("expected a retryable storage error, got {other:?}"),
    }
    let lost = store.lost.load(Ordering::Relaxed);
    assert!((2..200).contains(&lost), "{lost} lost races");
    // The store recovers, and so does the log.
    store.lose.store(false, Ordering::Relaxed);
    log.truncate(2).await.unwrap();
}
