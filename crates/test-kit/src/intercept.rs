//! [`Intercepted`]: an [`ObjectStore`] around a real one (in memory, or the
//! S3 test server) that lets a test interfere with chosen calls: fail them
//! before they reach the store or after (the reply lost), change a write's
//! options, or run work of the test's own before a call goes on. The one
//! wrapper the workspace's object-store tests build their faults from.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

/// Work a test runs before a call goes on.
pub type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A call on its way to the store, as an [`Interceptor`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Call<'a> {
    /// `put_opts`; the options may be changed.
    Put {
        /// Where.
        location: &'a Path,
        /// How (the mode, its condition); changes go on to the store.
        opts: &'a mut PutOptions,
    },
    /// `put_multipart_opts`.
    PutMultipart {
        /// Where.
        location: &'a Path,
    },
    /// `get_opts` (`options.head` for a `HEAD`) and `get_ranges`.
    Get {
        /// What.
        location: &'a Path,
        /// Whether only the metadata is asked for.
        head: bool,
    },
    /// `delete_stream` (one call for the whole stream).
    Delete,
    /// `list` and `list_with_offset`.
    List {
        /// Under what.
        prefix: Option<&'a Path>,
    },
    /// `list_with_delimiter`.
    ListWithDelimiter {
        /// Under what.
        prefix: Option<&'a Path>,
    },
    /// `copy_opts` and `rename_opts`.
    Copy {
        /// From where.
        from: &'a Path,
        /// To where.
        to: &'a Path,
    },
}

/// What becomes of a call.
#[derive(Default)]
pub enum Verdict {
    /// It goes on to the store.
    #[default]
    Pass,
    /// It fails with this error without reaching the store.
    Fail(object_store::Error),
    /// It reaches the store, then fails with this error (a lost reply).
    /// For listings and deletes, which are streams, the same as `Fail`.
    FailAfter(object_store::Error),
    /// `Hook` runs first, then the call goes on.
    After(Hook),
}

impl fmt::Debug for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => f.write_str("Pass"),
            Verdict::Fail(err) => write!(f, "Fail({err})"),
            Verdict::FailAfter(err) => write!(f, "FailAfter({err})"),
            Verdict::After(_) => f.write_str("After(..)"),
        }
    }
}

/// Decides what becomes of each call through an [`Intercepted`] store.
pub trait Interceptor: Send + Sync + 'static {
    /// The verdict on `call` (which may change a put's options).
    fn intercept(&self, call: Call<'_>) -> Verdict;
}

/// An [`ObjectStore`] passing every call to `inner` unless its
/// [`Interceptor`] says otherwise.
pub struct Intercepted<I> {
    inner: Arc<dyn ObjectStore>,
    interceptor: Arc<I>,
}

impl<I: Interceptor> Intercepted<I> {
    /// `inner`, its calls judged by `interceptor` (which the test keeps a
    /// clone of, to steer it).
    pub fn new(inner: Arc<dyn ObjectStore>, interceptor: Arc<I>) -> Self {
        Intercepted { inner, interceptor }
    }

    /// The interceptor.
    pub fn interceptor(&self) -> &Arc<I> {
        &self.interceptor
    }

    async fn run<T>(
        verdict: Verdict,
        call: impl Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        match verdict {
            Verdict::Pass => call.await,
            Verdict::Fail(err) => Err(err),
            Verdict::FailAfter(err) => {
                let _ = call.await;
                Err(err)
            }
            Verdict::After(hook) => {
                hook.await;
                call.await
            }
        }
    }

    fn stream<T: Send + 'static>(
        verdict: Verdict,
        call: impl FnOnce() -> BoxStream<'static, object_store::Result<T>> + Send + 'static,
    ) -> BoxStream<'static, object_store::Result<T>> {
        match verdict {
            Verdict::Pass => call(),
            Verdict::Fail(err) | Verdict::FailAfter(err) => {
                futures::stream::once(async move { Err(err) }).boxed()
            }
            Verdict::After(hook) => futures::stream::once(async move {
                hook.await;
                call()
            })
            .flatten()
            .boxed(),
        }
    }
}

impl<I> fmt::Debug for Intercepted<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Intercepted({})", self.inner)
    }
}

impl<I> fmt::Display for Intercepted<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<I: Interceptor> ObjectStore for Intercepted<I> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let verdict = self.interceptor.intercept(Call::Put {
            location,
            opts: &mut opts,
        });
        Self::run(verdict, self.inner.put_opts(location, payload, opts)).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let verdict = self.interceptor.intercept(Call::PutMultipart { location });
        Self::run(verdict, self.inner.put_multipart_opts(location, opts)).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let head = options.head;
        let verdict = self.interceptor.intercept(Call::Get { location, head });
        Self::run(verdict, self.inner.get_opts(location, options)).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let verdict = self.interceptor.intercept(Call::Get {
            location,
            head: false,
        });
        Self::run(verdict, self.inner.get_ranges(location, ranges)).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let inner = self.inner.clone();
        Self::stream(self.interceptor.intercept(Call::Delete), move || {
            inner.delete_stream(locations)
        })
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (inner, owned) = (self.inner.clone(), prefix.cloned());
        Self::stream(
            self.interceptor.intercept(Call::List { prefix }),
            move || inner.list(owned.as_ref()),
        )
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (inner, owned, offset) = (self.inner.clone(), prefix.cloned(), offset.clone());
        Self::stream(
            self.interceptor.intercept(Call::List { prefix }),
            move || inner.list_with_offset(owned.as_ref(), &offset),
        )
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let verdict = self
            .interceptor
            .intercept(Call::ListWithDelimiter { prefix });
        Self::run(verdict, self.inner.list_with_delimiter(prefix)).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let verdict = self.interceptor.intercept(Call::Copy { from, to });
        Self::run(verdict, self.inner.copy_opts(from, to, options)).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        let verdict = self.interceptor.intercept(Call::Copy { from, to });
        Self::run(verdict, self.inner.rename_opts(from, to, options)).await
    }
}
