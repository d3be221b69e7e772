//! The engine's errors: one enum per operation, sharing the snapshot-read
//! leaf type.

use crate::entry::EntryError;
use crate::identity::SheetId;
use crate::reference::ReferenceError;
use infinisheet_blob_store::{DirError, ReadBlobError, WriteBlobError};
use infinisheet_event_log::{BoxError, QueryError, SequenceId, StorageError};

/// A snapshot blob (index or tile) could not be read. `blob` is its path
/// inside the sheet's directory, such as `snapshots/00000000000000000100/t0-0`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotReadError {
    /// The blob is not there although the log or an index names it.
    #[error("snapshot blob {blob} is missing")]
    Missing {
        /// The blob's path.
        blob: String,
    },
    /// The blob is there but is not a valid tile or index.
    #[error("snapshot blob {blob} is damaged: {reason}")]
    Corrupt {
        /// The blob's path.
        blob: String,
        /// What is wrong.
        reason: String,
    },
    /// The blob store failed (or a directory of that name is a blob).
    #[error("reading snapshot blob {blob}")]
    Storage {
        /// The blob's path.
        blob: String,
        /// Whether trying again may help.
        retryable: bool,
        /// The blob store's error ([`ReadBlobError`] or [`DirError`]).
        source: BoxError,
    },
}

impl SnapshotReadError {
    pub(crate) fn from_read(blob: String, err: ReadBlobError) -> Self {
        match err {
            ReadBlobError::NotFound { .. } => SnapshotReadError::Missing { blob },
            other => SnapshotReadError::Storage {
                blob,
                retryable: other.is_retryable(),
                source: Box::new(other),
            },
        }
    }

    pub(crate) fn from_dir(blob: String, err: DirError) -> Self {
        SnapshotReadError::Storage {
            blob,
            retryable: err.is_retryable(),
            source: Box::new(err),
        }
    }

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SnapshotReadError::Storage {
                retryable: true,
                ..
            }
        )
    }
}

/// Error of opening or syncing a sheet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The event log failed.
    #[error("reading the sheet's log: {0}")]
    Log(#[from] QueryError),
    /// A snapshot the log names could not be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotReadError),
    /// An entry of the log is not a sheet edit this version can read.
    #[error("log entry {seq} is not a sheet edit: {source}")]
    Entry {
        /// Its sequence id.
        seq: SequenceId,
        /// What is wrong with it.
        source: EntryError,
    },
    /// The log starts after 0 at an entry that names no snapshot, so the
    /// edits before it are lost.
    #[error("the log starts at entry {start}, which names no snapshot: the earlier edits are gone")]
    NoSnapshot {
        /// Where the log starts.
        start: SequenceId,
    },
    /// The log is not the sheet's: its first entry, or a snapshot it names,
    /// carries another identity than the sheet's
    /// ([`SheetOptions::identity`](crate::SheetOptions::identity)), or none.
    #[error("the log is not sheet {expected}'s: {found}")]
    WrongSheet {
        /// The sheet's identity.
        expected: SheetId,
        /// The identity the log carries, if any.
        carried: Option<SheetId>,
        /// What was found instead.
        found: String,
    },
}

impl LoadError {
    /// Whether trying again may help: the log or a snapshot blob failed in
    /// a way that may pass.
    pub fn is_retryable(&self) -> bool {
        match self {
            LoadError::Log(err) => err.is_retryable(),
            LoadError::Snapshot(err) => err.is_retryable(),
            _ => false,
        }
    }
}

/// Error of creating a sheet ([`Spreadsheet::create`](crate::Spreadsheet::create)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The log holds entries already: a sheet is made on an empty log only.
    #[error("the log holds {end} entries already; a sheet is created on an empty log")]
    NotEmpty {
        /// The log's end.
        end: SequenceId,
    },
    /// Writing the identity entry failed, through the retries.
    #[error("writing the sheet's identity into its log: {0}")]
    Storage(#[from] StorageError),
    /// Opening the new sheet failed.
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl CreateError {
    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            CreateError::NotEmpty { .. } => false,
            CreateError::Storage(err) => err.is_retryable(),
            CreateError::Load(err) => err.is_retryable(),
        }
    }
}

/// Error of rebuilding a snapshot
/// ([`rebuild_snapshot`](crate::rebuild_snapshot)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// The base snapshot cannot be read, is another sheet's, or an entry
    /// is not a sheet entry.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Writing the snapshot failed.
    #[error(transparent)]
    Write(#[from] WriteSnapshotError),
}

/// Error of an edit. Unless it says otherwise, the edit is not in the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// Other writers took the next sequence id every time the edit was
    /// tried (after a resync each time).
    #[error("the edit lost the race for the next log entry {attempts} times in a row")]
    Contended {
        /// How many times it was tried.
        attempts: u32,
    },
    /// Resyncing after a lost race failed.
    #[error("resyncing after a lost race: {0}")]
    Sync(#[from] LoadError),
    /// The log failed, and kept failing through the retries
    /// ([`SheetOptions::storage_retries`](crate::SheetOptions)). The edit
    /// may or may not have been added (a store can fail after writing); a
    /// sync shows which.
    #[error("adding the edit to the log: {0}")]
    Storage(#[from] StorageError),
    /// The cell reference given is not one (nothing was written).
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

/// Error of reading a cell by reference
/// ([`Spreadsheet::get`](crate::Spreadsheet::get)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The cell reference given is not one.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The snapshot tile holding the cell could not be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotReadError),
}

impl ReadError {
    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ReadError::Snapshot(err) if err.is_retryable())
    }
}

impl EditError {
    /// Whether trying again may help: other writers won every race, or the
    /// storage failed in a way that may pass. (For
    /// [`EditError::Storage`], sync first: the edit may be in the log.)
    pub fn is_retryable(&self) -> bool {
        match self {
            EditError::Contended { .. } => true,
            EditError::Sync(err) => err.is_retryable(),
            EditError::Storage(err) => err.is_retryable(),
            EditError::Reference(_) => false,
        }
    }
}

impl RebuildError {
    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            RebuildError::Load(err) => err.is_retryable(),
            RebuildError::Write(err) => err.is_retryable(),
        }
    }
}

/// Error of loading the tiles a viewport needs.
pub type ViewportError = SnapshotReadError;

/// Error of writing a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteSnapshotError {
    /// The sheet's content does not reach the requested place: a snapshot
    /// at `at` needs the segment (starting at `start`) synced to at least
    /// `at` (`end`).
    #[error("cannot write a snapshot at {at}: the sheet holds entries {start} to {end}")]
    OutOfRange {
        /// The requested place.
        at: SequenceId,
        /// Where the sheet's segment starts (its snapshot).
        start: SequenceId,
        /// Where the sheet's content ends.
        end: SequenceId,
    },
    /// A tile of the previous snapshot could not be read.
    #[error(transparent)]
    Read(#[from] SnapshotReadError),
    /// Writing a blob failed; blobs written so far are harmless (no index
    /// names them yet) and are overwritten by the next try.
    #[error("writing snapshot blob {blob}: {source}")]
    Write {
        /// The blob's path.
        blob: String,
        /// What failed.
        source: WriteBlobError,
    },
}

impl WriteSnapshotError {
    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            WriteSnapshotError::OutOfRange { .. } => false,
            WriteSnapshotError::Read(err) => err.is_retryable(),
            WriteSnapshotError::Write { source, .. } => {
                matches!(source, WriteBlobError::Storage(e) if e.is_retryable())
            }
        }
    }
}
