//! Two truncates of one log racing: the one that lists the records after
//! the other removed them retries (and finds its start now out of range)
//! instead of calling the log damaged.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry, TruncateError};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::object_store::path::Path;
use infinisheet_object_store::object_store::{
    self, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A store that runs a hook (once) before the next listing of record keys.
struct BeforeListing {
    inner: Arc<dyn ObjectStore>,
    hook: Mutex<Option<Hook>>,
}

impl fmt::Debug for BeforeListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BeforeListing({})", self.inner)
    }
}

impl fmt::Display for BeforeListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl BeforeListing {
    fn take_hook(&self, prefix: Option<&Path>) -> Option<Hook> {
        let records = prefix.is_some_and(|p| p.as_ref().ends_with("records"));
        records.then(|| self.hook.lock().unwrap().take()).flatten()
    }

    fn hooked(
        hook: Option<Hook>,
        listing: impl FnOnce() -> BoxStream<'static, object_store::Result<ObjectMeta>> + Send + 'static,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match hook {
            None => listing(),
            Some(hook) => futures::stream::once(async move {
                hook.await;
                listing()
            })
            .flatten()
            .boxed(),
        }
    }
}

#[async_trait]
impl ObjectStore for BeforeListing {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
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
        let (inner, owned) = (self.inner.clone(), prefix.cloned());
        Self::hooked(self.take_hook(prefix), move || inner.list(owned.as_ref()))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (inner, owned, offset) = (self.inner.clone(), prefix.cloned(), offset.clone());
        Self::hooked(self.take_hook(prefix), move || {
            inner.list_with_offset(owned.as_ref(), &offset)
        })
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
async fn a_truncate_that_lists_after_another_removed_the_records_retries() {
    let inner = common::memory();
    let prefix = Path::from("log");
    let other = ObjectStoreEventLog::open(inner.clone(), prefix.clone())
        .await
        .unwrap();
    for i in 0..30 {
        other
            .add_entry(
                LogEntry::new(format!("entry {i}")),
                i,
                KnownSnapshot::NotTracked,
            )
            .await
            .unwrap();
    }
    let store = Arc::new(BeforeListing {
        inner: inner.clone(),
        hook: Mutex::new(None),
    });
    let log = ObjectStoreEventLog::open(store.clone(), prefix)
        .await
        .unwrap();
    // Between this truncate's reading of the head and its listing of the
    // records, another client truncates further and removes them.
    let racer = other.clone();
    *store.hook.lock().unwrap() = Some(Box::pin(async move {
        racer.truncate(20).await.unwrap();
    }));
    match log.truncate(10).await {
        Err(TruncateError::Range(range)) => assert_eq!((range.requested, range.start), (10, 20)),
        other => panic!("expected a range error after the retry, got {other:?}"),
    }
    assert!(store.hook.lock().unwrap().is_none(), "the race happened");
    // And a truncate within the bounds still works.
    log.truncate(25).await.unwrap();
}
