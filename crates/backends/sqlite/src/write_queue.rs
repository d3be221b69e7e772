//! The blob writes of a database waiting to be committed together (see
//! `blob_store.rs`): the database holds the queue, blob stores fill it.

use bytes::Bytes;
use infinisheet_blob_store::{BlobName, WriteBlobError};
use std::sync::{Mutex, PoisonError};

/// A blob write waiting for its commit.
pub(crate) struct QueuedWrite {
    pub(crate) store: i64,
    pub(crate) key: String,
    pub(crate) name: BlobName,
    pub(crate) path: Vec<BlobName>,
    pub(crate) content: Bytes,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<(), WriteBlobError>>,
}

/// The blob writes of a database waiting for a commit.
#[derive(Default)]
pub(crate) struct WriteQueue(Mutex<Vec<QueuedWrite>>);

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue").finish_non_exhaustive()
    }
}

impl WriteQueue {
    pub(crate) fn push(&self, write: QueuedWrite) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(write);
    }

    pub(crate) fn take(&self) -> Vec<QueuedWrite> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
