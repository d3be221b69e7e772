//! One error enum per `BlobDir` operation, sharing the leaf types
//! [`InvalidBlobName`] and [`StorageError`].

use crate::{BlobName, EntryKind, InvalidBlobName};
use infinisheet_storage_error::StorageError;

/// Error of [`read_blob`](crate::BlobDir::read_blob).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadBlobError {
    /// No blob has that name.
    #[error("blob {name} not found")]
    NotFound {
        /// The name looked up.
        name: BlobName,
    },
    /// The name is a directory, not a blob.
    #[error("{name} is a {found}, not a blob")]
    WrongKind {
        /// The name that has the wrong kind.
        name: BlobName,
        /// What it is.
        found: EntryKind,
    },
    /// The name is not a valid [`BlobName`] (only from the string
    /// conveniences of [`BlobDirExt`](crate::BlobDirExt)).
    #[error(transparent)]
    InvalidName(#[from] InvalidBlobName),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Error of [`write_blob`](crate::BlobDir::write_blob).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteBlobError {
    /// The name (or a directory on the way to it) has the wrong kind: a blob
    /// cannot replace a directory, and a blob cannot be written beneath a
    /// blob.
    #[error("{name} is a {found}; cannot write a blob there")]
    WrongKind {
        /// The name that has the wrong kind.
        name: BlobName,
        /// What it is.
        found: EntryKind,
    },
    /// The name is not a valid [`BlobName`].
    #[error(transparent)]
    InvalidName(#[from] InvalidBlobName),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Error of [`remove_blob`](crate::BlobDir::remove_blob).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveBlobError {
    /// The name is a directory; use [`remove_all`](crate::BlobDir::remove_all)
    /// on it instead.
    #[error("{name} is a {found}, not a blob")]
    WrongKind {
        /// The name that has the wrong kind.
        name: BlobName,
        /// What it is.
        found: EntryKind,
    },
    /// The name is not a valid [`BlobName`].
    #[error(transparent)]
    InvalidName(#[from] InvalidBlobName),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Error of [`dir`](crate::BlobDir::dir).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    /// A blob has that name (or the name of a directory on the way to it).
    #[error("{name} is a {found}, not a directory")]
    WrongKind {
        /// The name that has the wrong kind.
        name: BlobName,
        /// What it is.
        found: EntryKind,
    },
    /// The name is not a valid [`BlobName`].
    #[error(transparent)]
    InvalidName(#[from] InvalidBlobName),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Error of [`list`](crate::BlobDir::list).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// The continuation token was not issued by this directory, or can no
    /// longer be honoured.
    #[error("the continuation token does not continue a listing of this directory")]
    NoContinuation,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

infinisheet_storage_error::storage_answers!(
    ReadBlobError,
    WriteBlobError,
    RemoveBlobError,
    DirError,
    ListError
);

impl ReadBlobError {
    /// Whether no blob has the name.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadBlobError::NotFound { .. })
    }
}
