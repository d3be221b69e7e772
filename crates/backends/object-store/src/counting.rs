//! `CountingStore`: an [`ObjectStore`] wrapper that counts the requests
//! made through it, by kind, as an S3-like service bills them.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Keys one listing request returns (S3's page size); a listing stream is
/// counted as one request per page it yields from.
const LIST_PAGE: u64 = 1000;
/// Keys one bulk delete request removes (S3's limit).
const DELETE_BATCH: u64 = 1000;

/// Requests made through a [`CountingStore`], by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCounts {
    /// Object writes (`PUT`), conditional or not; a multipart upload counts
    /// once when it starts.
    pub put: u64,
    /// Object reads (`GET`), whole or ranged.
    pub get: u64,
    /// Metadata reads (`HEAD`).
    pub head: u64,
    /// Listing pages (one per 1,000 keys a listing yields, at least one).
    pub list: u64,
    /// Deletes (one per 1,000 keys of a bulk delete, at least one).
    pub delete: u64,
    /// Server-side copies and renames.
    pub copy: u64,
}

impl RequestCounts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.put + self.get + self.head + self.list + self.delete + self.copy
    }

    /// The requests that change the store: puts, deletes, copies.
    pub fn writes(&self) -> u64 {
        self.put + self.delete + self.copy
    }

    /// The requests made since `earlier` was taken.
    #[must_use]
    pub fn since(&self, earlier: RequestCounts) -> RequestCounts {
        RequestCounts {
            put: self.put - earlier.put,
            get: self.get - earlier.get,
            head: self.head - earlier.head,
            list: self.list - earlier.list,
            delete: self.delete - earlier.delete,
            copy: self.copy - earlier.copy,
        }
    }
}

impl fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests ({} PUT, {} GET, {} HEAD, {} LIST, {} DELETE, {} COPY)",
            self.total(),
            self.put,
            self.get,
            self.head,
            self.list,
            self.delete,
            self.copy
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    put: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
    copy: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// An [`ObjectStore`] that forwards every call to another and counts the
/// requests, so the cost of an operation can be measured (and bounded in
/// a test) on any store, the in-memory one included. Clones share their
/// counts.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use infinisheet_object_store::{CountingStore, ObjectStoreEventLog};
/// use object_store::memory::InMemory;
/// use std::sync::Arc;
///
/// let store = CountingStore::new(Arc::new(InMemory::new()));
/// let log = ObjectStoreEventLog::open(Arc::new(store.clone()), "log".into()).await.unwrap();
/// let before = store.counts();
/// let reopened = ObjectStoreEventLog::open(Arc::new(store.clone()), "log".into()).await.unwrap();
/// assert_eq!(store.counts().since(before).writes(), 0, "opening a log that exists writes nothing");
/// # drop((log, reopened));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<Counters>,
}

impl CountingStore {
    /// Counts the requests made to `inner` through the new store.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        CountingStore {
            inner,
            counts: Arc::default(),
        }
    }

    /// The requests made so far.
    pub fn counts(&self) -> RequestCounts {
        let c = &self.counts;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RequestCounts {
            put: load(&c.put),
            get: load(&c.get),
            head: load(&c.head),
            list: load(&c.list),
            delete: load(&c.delete),
            copy: load(&c.copy),
        }
    }

    /// Counts one request per `per` items of `stream` (at least one).
    fn paged<T: Send + 'static>(
        &self,
        stream: BoxStream<'static, object_store::Result<T>>,
        per: u64,
        counter: fn(&Counters) -> &AtomicU64,
    ) -> BoxStream<'static, object_store::Result<T>> {
        let counts = self.counts.clone();
        bump(counter(&counts));
        stream
            .enumerate()
            .map(move |(i, item)| {
                if i > 0 && (i as u64).is_multiple_of(per) {
                    bump(counter(&counts));
                }
                item
            })
            .boxed()
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        bump(&self.counts.put);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        bump(&self.counts.put);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        bump(if options.head {
            &self.counts.head
        } else {
            &self.counts.get
        });
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let deleted = self.inner.delete_stream(locations);
        self.paged(deleted, DELETE_BATCH, |c| &c.delete)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.paged(self.inner.list(prefix), LIST_PAGE, |c| &c.list)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.paged(
            self.inner.list_with_offset(prefix, offset),
            LIST_PAGE,
            |c| &c.list,
        )
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let result = self.inner.list_with_delimiter(prefix).await;
        let keys = result
            .as_ref()
            .map_or(0, |r| (r.objects.len() + r.common_prefixes.len()) as u64);
        self.counts
            .list
            .fetch_add(keys.div_ceil(LIST_PAGE).max(1), Ordering::Relaxed);
        result
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        bump(&self.counts.copy);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        bump(&self.counts.copy);
        self.inner.rename_opts(from, to, options).await
    }
}
