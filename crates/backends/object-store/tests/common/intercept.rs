//! `Intercepting`: an in-memory store that can run a hook before the next
//! listing of a log's record keys, and make every conditional write but a
//! record's lose as if another writer had got there first.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use infinisheet_object_store::object_store::path::Path;
use infinisheet_object_store::object_store::{
    self, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Work to run before a call goes on.
pub type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A store around another that interferes as its fields say.
pub struct Intercepting {
    pub inner: Arc<dyn ObjectStore>,
    /// Run (once) before the next listing of keys under a `records` prefix.
    pub before_records_listing: Mutex<Option<Hook>>,
    /// While set, conditional writes (but a record's) fail as lost races.
    pub lose_conditional: AtomicBool,
    /// How many writes were failed so.
    pub lost: AtomicU64,
}

impl Intercepting {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(Intercepting {
            inner,
            before_records_listing: Mutex::new(None),
            lose_conditional: AtomicBool::new(false),
            lost: AtomicU64::new(0),
        })
    }

    fn take_hook(&self, prefix: Option<&Path>) -> Option<Hook> {
        let records = prefix.is_some_and(|p| p.as_ref().ends_with("records"));
        records
            .then(|| self.before_records_listing.lock().unwrap().take())
            .flatten()
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

impl fmt::Debug for Intercepting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Intercepting({})", self.inner)
    }
}

impl fmt::Display for Intercepting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[async_trait]
impl ObjectStore for Intercepting {
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
        if conditional && !record && self.lose_conditional.load(Ordering::Relaxed) {
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
