//! The workflow's error: what a job, a scan or a maintenance step could not
//! do, and whether trying again may help.

use infinisheet_blob_store::{DirError, ListError, ReadBlobError, RemoveBlobError, WriteBlobError};
use infinisheet_engine::{
    LoadError, RebuildError, SNAPSHOTS_DIR, SnapshotReadError, WriteSnapshotError,
};
use infinisheet_event_log::{
    BoxError, QueryError, SequenceId, SetMetadataError, SnapshotValue, StorageError, TruncateError,
};

/// Error of a snapshot job, a scan for pending jobs, history or cleanup.
/// Unless it says otherwise, nothing a reader can see was left half done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The worker's sheet could not be opened or synced.
    #[error("loading the sheet: {0}")]
    Load(#[from] LoadError),
    /// The snapshot's blobs could not be written (no index names them).
    #[error(transparent)]
    Write(#[from] WriteSnapshotError),
    /// A snapshot the log names could not be read.
    #[error(transparent)]
    SnapshotRead(#[from] SnapshotReadError),
    /// The log could not be read.
    #[error("reading the log: {0}")]
    Query(#[from] QueryError),
    /// An entry's metadata could not be changed.
    #[error("changing the metadata of entry {seq}: {source}")]
    Metadata {
        /// The entry.
        seq: SequenceId,
        /// What failed.
        source: SetMetadataError,
    },
    /// The log could not be truncated (its entries are archived already).
    #[error("truncating the log to {start}: {source}")]
    Truncate {
        /// The new start asked for.
        start: SequenceId,
        /// What failed.
        source: TruncateError,
    },
    /// A blob of the sheet's directory could not be read, written, listed
    /// or removed.
    #[error("blob {path}")]
    Blob {
        /// The blob's path inside the sheet's directory.
        path: String,
        /// Whether trying again may help.
        retryable: bool,
        /// The blob store's error.
        source: BoxError,
    },
    /// A history blob is damaged.
    #[error("history blob {blob} is damaged: {reason}")]
    History {
        /// The blob's path inside the sheet's directory.
        blob: String,
        /// What is wrong.
        reason: String,
    },
    /// Entries asked for are neither in the log nor in its history (history
    /// was off when they were truncated, or a history blob is missing).
    #[error("entries before {reached} are neither in the log nor in its history")]
    HistoryGap {
        /// The first entry that could be found.
        reached: SequenceId,
    },
    /// A snapshot directory the new snapshot shares tiles with was removed
    /// while it was written (by a cleanup that did not know of it yet); the
    /// snapshot was not published, or was withdrawn again, and is redone.
    #[error("snapshot {snapshot} shares blobs of snapshot {missing}, which was removed meanwhile")]
    Dangling {
        /// The new snapshot.
        snapshot: String,
        /// The removed one.
        missing: String,
    },
    /// The job names an entry past the end of the log.
    #[error("entry {at} is not in the log, which ends before {end}")]
    NoEntry {
        /// The job's entry.
        at: SequenceId,
        /// The log's end.
        end: SequenceId,
    },
    /// The snapshot was published, but archiving history or removing old
    /// snapshots failed afterwards; the next snapshot's maintenance tries
    /// again.
    #[error("snapshot {} is published, but maintenance failed: {source}", published.blob_id)]
    Maintenance {
        /// The published snapshot.
        published: SnapshotValue,
        /// What failed.
        source: Box<WorkflowError>,
    },
}

fn storage_retryable(err: &StorageError) -> bool {
    err.is_retryable()
}

impl WorkflowError {
    /// Whether trying again may help: storage that failed in a way that may
    /// pass, the log moving under the job (a truncate), or a blob that a
    /// concurrent cleanup removed (the job then starts from a fresh sheet).
    pub fn is_retryable(&self) -> bool {
        match self {
            WorkflowError::Load(LoadError::Log(err)) | WorkflowError::Query(err) => match err {
                QueryError::Range(_) => true,
                QueryError::Storage(err) => storage_retryable(err),
                _ => false,
            },
            WorkflowError::Load(LoadError::Snapshot(err))
            | WorkflowError::SnapshotRead(err)
            | WorkflowError::Write(WriteSnapshotError::Read(err)) => {
                err.is_retryable() || matches!(err, SnapshotReadError::Missing { .. })
            }
            WorkflowError::Load(_) => false,
            WorkflowError::Write(err) => err.is_retryable(),
            WorkflowError::Metadata { source, .. } => {
                matches!(source, SetMetadataError::Storage(e) if storage_retryable(e))
            }
            WorkflowError::Truncate { source, .. } => {
                matches!(source, TruncateError::Storage(e) if storage_retryable(e))
            }
            WorkflowError::Blob { retryable, .. } => *retryable,
            WorkflowError::Dangling { .. } => true,
            WorkflowError::History { .. }
            | WorkflowError::HistoryGap { .. }
            | WorkflowError::NoEntry { .. } => false,
            WorkflowError::Maintenance { source, .. } => source.is_retryable(),
        }
    }

    pub(crate) fn metadata(seq: SequenceId) -> impl FnOnce(SetMetadataError) -> WorkflowError {
        move |source| WorkflowError::Metadata { seq, source }
    }

    pub(crate) fn blob<E: BlobFailure>(path: impl Into<String>) -> impl FnOnce(E) -> WorkflowError {
        let path = path.into();
        move |err| WorkflowError::Blob {
            path,
            retryable: err.retryable(),
            source: Box::new(err),
        }
    }
}

/// The blob-store errors the workflow meets, and whether each may pass.
pub(crate) trait BlobFailure: std::error::Error + Send + Sync + 'static {
    fn retryable(&self) -> bool;
}

macro_rules! blob_failure {
    ($($ty:ty),*) => {$(
        impl BlobFailure for $ty {
            fn retryable(&self) -> bool {
                matches!(self, Self::Storage(e) if e.is_retryable())
            }
        }
    )*};
}

blob_failure!(
    ReadBlobError,
    WriteBlobError,
    RemoveBlobError,
    DirError,
    ListError
);

impl BlobFailure for StorageError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}

impl From<RebuildError> for WorkflowError {
    fn from(err: RebuildError) -> Self {
        match err {
            RebuildError::Load(err) => WorkflowError::Load(err),
            RebuildError::Write(err) => WorkflowError::Write(err),
            other => WorkflowError::Blob {
                path: SNAPSHOTS_DIR.to_owned(),
                retryable: other.is_retryable(),
                source: Box::new(other),
            },
        }
    }
}
