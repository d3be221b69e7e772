//! One error enum per `EventLog` operation, sharing the leaf types
//! [`RangeError`] and [`StorageError`].

use crate::SequenceId;
use infinisheet_storage_error::StorageError;

/// A sequence id outside the range an operation accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("sequence id {requested} is out of range; the log holds entries {start}..{end}")]
pub struct RangeError {
    /// The id the caller passed.
    pub requested: SequenceId,
    /// The log's start when the call was made.
    pub start: SequenceId,
    /// The log's end when the call was made.
    pub end: SequenceId,
}

/// Error of [`append_at`](crate::EventLog::append_at) (and so of
/// [`add_entry`](crate::EventLogExt::add_entry) and
/// [`add_entries`](crate::EventLogExt::add_entries)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddEntryError {
    /// Another writer already holds `attempted`, or the caller is behind.
    #[error("sequence id {attempted} is taken; the next free id is {next}")]
    Conflict {
        /// The id the caller tried to write.
        attempted: SequenceId,
        /// The log's real end: the id the next entry must use.
        next: SequenceId,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Error of [`query`](crate::EventLog::query).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The start id lies below the log's start or above its end.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Error of [`set_metadata`](crate::EventLog::set_metadata).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetMetadataError {
    /// The id is outside `[start, end)`.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Error of [`truncate`](crate::EventLog::truncate).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TruncateError {
    /// The new start lies below the log's start or above its end.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

infinisheet_storage_error::storage_answers!(
    AddEntryError,
    QueryError,
    SetMetadataError,
    TruncateError
);
