//! The one place this backend inspects SQLite's errors: what becomes a
//! retryable or permanent [`StorageError`], and the errors of opening a
//! database, a log or a blob store.

use infinisheet_event_log::StorageError;
use rusqlite::ErrorCode;
use std::path::PathBuf;

/// Name reported in this backend's storage errors.
pub const BACKEND: &str = "sqlite";

/// Converts a SQLite error met while `doing` something into a
/// [`StorageError`]: busy and locked databases are retryable (another
/// process held the lock past the busy timeout); everything else is not.
pub(crate) fn storage(doing: &str, err: rusqlite::Error) -> StorageError {
    let retryable = matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    let damaged = matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    ) || is_damaged_value(&err)
        || is_damaged_header(&err);
    let message = format!("{doing}: {} ({err})", describe(&err));
    let storage = if retryable {
        StorageError::retryable(BACKEND, message)
    } else if damaged {
        StorageError::corrupt(BACKEND, message)
    } else {
        StorageError::new(BACKEND, message)
    };
    storage.with_source(err)
}

/// Whether `err` is about a stored value rather than the call: in these
/// STRICT tables a value of the wrong type, or text that is not UTF-8, can
/// only be damage; so is a row that must exist (the instance id, a log's
/// bounds) gone missing (lookups that may miss are `optional`).
fn is_damaged_value(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..)
            | rusqlite::Error::QueryReturnedNoRows
    )
}

fn describe(err: &rusqlite::Error) -> &'static str {
    if is_damaged_value(err) {
        return "a stored value is missing or of the wrong type (the file is damaged)";
    }
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy) => "the database is busy (locked by another connection)",
        Some(ErrorCode::DatabaseLocked) => "a table is locked",
        Some(ErrorCode::DiskFull) => "the disk is full",
        Some(ErrorCode::DatabaseCorrupt) => "the database file is corrupt",
        Some(ErrorCode::NotADatabase) => "the file is not a SQLite database",
        Some(ErrorCode::ReadOnly) => "the database is read-only",
        Some(ErrorCode::SystemIoFailure) => io_failure(err),
        Some(ErrorCode::CannotOpen) => "the database file cannot be opened",
        Some(ErrorCode::PermissionDenied) => "permission denied",
        _ => "SQLite failed",
    }
}

/// What an I/O error was doing, by SQLite's extended code: growing a file
/// (the WAL index, the database, its journal) fails on a full disk with
/// `IOERR_SHMSIZE` or `IOERR_TRUNCATE` rather than `SQLITE_FULL`, which
/// SQLite only reports for a failed write.
fn io_failure(err: &rusqlite::Error) -> &'static str {
    use rusqlite::ffi;
    let rusqlite::Error::SqliteFailure(failure, _) = err else {
        return "an I/O error occurred";
    };
    match failure.extended_code {
        ffi::SQLITE_IOERR_SHMSIZE | ffi::SQLITE_IOERR_TRUNCATE => {
            "the disk is full (a file could not be grown)"
        }
        ffi::SQLITE_IOERR_WRITE => "writing to the disk failed (is it full?)",
        ffi::SQLITE_IOERR_FSYNC | ffi::SQLITE_IOERR_DIR_FSYNC => "flushing to the disk failed",
        ffi::SQLITE_IOERR_READ | ffi::SQLITE_IOERR_SHORT_READ => "reading from the disk failed",
        _ => "an I/O error occurred",
    }
}

/// Outcome of a job on the connection that failed: with the operation's
/// own error (a conflict, a range error), with a SQLite error, or with
/// stored data that fails its checks (what is damaged, without the log or
/// store, which [`finish`] adds).
pub(crate) enum Failed<E> {
    Op(E),
    Sql(rusqlite::Error),
    Corrupt(String),
}

impl<E> From<rusqlite::Error> for Failed<E> {
    fn from(err: rusqlite::Error) -> Self {
        Failed::Sql(err)
    }
}

impl<E: From<infinisheet_event_log::RangeError>> From<infinisheet_event_log::RangeError>
    for Failed<E>
{
    fn from(err: infinisheet_event_log::RangeError) -> Self {
        Failed::Op(err.into())
    }
}

/// Converts a job's result into the operation's error type; a SQLite error
/// becomes a storage error saying what was being done, and damage a
/// corruption error naming `whose` data (a log, a blob store) it is.
pub(crate) fn finish<T, E: From<StorageError>>(
    doing: &str,
    whose: &str,
    result: Result<Result<T, Failed<E>>, StorageError>,
) -> Result<T, E> {
    match result? {
        Ok(value) => Ok(value),
        Err(Failed::Op(err)) => Err(err),
        Err(Failed::Sql(err)) => Err(storage(doing, err).into()),
        Err(Failed::Corrupt(what)) => {
            Err(StorageError::corrupt(BACKEND, format!("{whose}: {what}")).into())
        }
    }
}

/// Whether `err` says the file is not a SQLite database.
/// Whether SQLite refused the file's header as a format it does not know
/// ("unsupported file format": a schema format number above 4, which no
/// SQLite writes): the header is damaged.
fn is_damaged_header(err: &rusqlite::Error) -> bool {
    err.to_string().contains("unsupported file format")
}

pub(crate) fn is_not_a_database(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(ErrorCode::NotADatabase)
}

/// A storage error for data the schema should make impossible.
pub(crate) fn corrupt(message: impl Into<String>) -> StorageError {
    StorageError::corrupt(BACKEND, message)
}

/// Error of opening a database, or a log or blob store inside one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file exists but is not a SQLite database. It was not changed.
    #[error("{path} is not a SQLite database")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file is a SQLite database that some other application made. It
    /// was not changed.
    #[error("{path} is a SQLite database, but not an Infinisheet one")]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
    },
    /// The database was written by a newer version of this backend.
    #[error(
        "{path} has schema version {found}; this version of infinisheet-sqlite reads up to {supported}"
    )]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// The schema version recorded in the file.
        found: i64,
        /// The newest schema version this code understands.
        supported: i64,
    },
    /// There is no database file to open for reading.
    #[error("there is no database at {path}")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The database has an older schema, which only opening it for writing
    /// upgrades.
    #[error(
        "{path} has schema version {found}, older than this version's {supported}; open it for writing once to upgrade it"
    )]
    NeedsUpgrade {
        /// The file.
        path: PathBuf,
        /// The schema version recorded in the file.
        found: i64,
        /// The schema version this code reads.
        supported: i64,
    },
    /// No log or blob store of that name exists in the database.
    #[error("the database holds no {kind} named {name:?}")]
    NotFound {
        /// `"log"` or `"blob store"`.
        kind: &'static str,
        /// The name looked for.
        name: String,
    },
    /// A log or blob store of that name already exists.
    #[error("the database already holds a {kind} named {name:?}")]
    AlreadyExists {
        /// `"log"` or `"blob store"`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The name is not a valid log or blob store name.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// `"log"` or `"blob store"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The same error again (without its source), for each of the calls one
/// failure answers.
pub(crate) fn copy(err: &StorageError) -> StorageError {
    let message = err.message().to_owned();
    if err.is_corrupt() {
        StorageError::corrupt(err.backend(), message)
    } else if err.is_retryable() {
        StorageError::retryable(err.backend(), message)
    } else {
        StorageError::new(err.backend(), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    /// A full disk says so whichever way SQLite met it: a failed write is
    /// `SQLITE_FULL`, a file that could not grow (the WAL index on a full
    /// disk, seen as "disk I/O error" before) an I/O error of its own.
    #[test]
    fn a_full_disk_says_so() {
        for code in [
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_IOERR_SHMSIZE,
            rusqlite::ffi::SQLITE_IOERR_TRUNCATE,
        ] {
            let said = storage("appending", failure(code)).to_string();
            assert!(said.contains("the disk is full"), "{code}: {said}");
        }
        let said = storage("appending", failure(rusqlite::ffi::SQLITE_IOERR_WRITE)).to_string();
        assert!(said.contains("is it full?"), "{said}");
        let said = storage("reading", failure(rusqlite::ffi::SQLITE_IOERR_READ)).to_string();
        assert!(said.contains("reading from the disk failed"), "{said}");
    }
}
