//! `Layered`: a hook applied around every method of the storage traits.

use crate::{Call, Hook, Op};
use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use infinisheet_blob_store::{
    BlobCapabilities, BlobDir, BlobName, BlobStore, Continuation, DirError, ListError, ListPage,
    ReadBlobError, RemoveBlobError, StorageError, WriteBlobError,
};
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, Bounds, EventLog, KnownSnapshot, LogCapabilities,
    LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, SequenceId,
    SetMetadataError, TruncateError,
};
use std::sync::Arc;

/// `inner` with `hook` run around every call. Implements [`EventLog`],
/// [`BlobStore`] and [`BlobDir`] whenever `inner` does; directories it hands
/// out carry the same hook.
#[derive(Clone, Debug)]
pub struct Layered<H, T> {
    hook: H,
    inner: T,
}

impl<H: Hook + Clone, T> Layered<H, T> {
    /// Wraps `inner` in `hook`.
    pub fn new(hook: H, inner: T) -> Self {
        Layered { hook, inner }
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped backend, unwrapped.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

fn log_call<'a>(op: Op, seq: Option<SequenceId>) -> Call<'a> {
    Call {
        op,
        seq,
        name: None,
    }
}

fn blob_call(op: Op, name: Option<&BlobName>) -> Call<'_> {
    Call {
        op,
        seq: None,
        name,
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<H: Hook + Clone, L: EventLog> EventLog for Layered<H, L> {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let inner = self.inner.append_at(entries, seq, known, token).boxed();
        self.hook
            .around(log_call(Op::Append, Some(seq)), inner)
            .await
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let seq = match start {
            QueryStart::Id(seq) => Some(seq),
            QueryStart::Start | QueryStart::Snapshot => None,
        };
        let inner = self.inner.query(start, end, known).boxed();
        self.hook.around(log_call(Op::Query, seq), inner).await
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        let inner = self.inner.set_metadata(seq, update).boxed();
        self.hook
            .around(log_call(Op::SetMetadata, Some(seq)), inner)
            .await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        let inner = self.inner.bounds().boxed();
        self.hook.around(log_call(Op::Bounds, None), inner).await
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        let inner = self.inner.truncate(start).boxed();
        self.hook
            .around(log_call(Op::Truncate, Some(start)), inner)
            .await
    }

    fn capabilities(&self) -> LogCapabilities {
        self.inner.capabilities()
    }

    /// Forwarded as it is: a wait is no storage call to fault or delay.
    async fn wait_for_entries(&self, end: SequenceId, timeout: std::time::Duration) {
        self.inner.wait_for_entries(end, timeout).await;
    }
}

#[deny(clippy::missing_trait_methods)]
impl<H: Hook + Clone, S: BlobStore> BlobStore for Layered<H, S> {
    fn root(&self) -> Arc<dyn BlobDir> {
        Arc::new(Layered::new(self.hook.clone(), self.inner.root()))
    }

    fn capabilities(&self) -> BlobCapabilities {
        self.inner.capabilities()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<H: Hook + Clone, D: BlobDir> BlobDir for Layered<H, D> {
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        let inner = self.inner.read_blob(name).boxed();
        self.hook
            .around(blob_call(Op::ReadBlob, Some(name)), inner)
            .await
    }

    async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError> {
        let inner = self.inner.write_blob(name, content).boxed();
        self.hook
            .around(blob_call(Op::WriteBlob, Some(name)), inner)
            .await
    }

    async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
        let inner = self.inner.remove_blob(name).boxed();
        self.hook
            .around(blob_call(Op::RemoveBlob, Some(name)), inner)
            .await
    }

    async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError> {
        let inner = self.inner.dir(name).boxed();
        let dir = self
            .hook
            .around(blob_call(Op::Dir, Some(name)), inner)
            .await?;
        Ok(Arc::new(Layered::new(self.hook.clone(), dir)))
    }

    async fn list(&self, continuation: Option<&Continuation>) -> Result<ListPage, ListError> {
        let inner = self.inner.list(continuation).boxed();
        self.hook.around(blob_call(Op::List, None), inner).await
    }

    async fn remove_all(&self) -> Result<(), StorageError> {
        let inner = self.inner.remove_all().boxed();
        self.hook
            .around(blob_call(Op::RemoveAll, None), inner)
            .await
    }
}
