//! The one place this backend inspects OS errors: which become retryable or
//! permanent [`StorageError`]s.

use infinisheet_blob_store::StorageError;
use rustix::io::Errno;

/// Name reported in this backend's storage errors.
pub const BACKEND: &str = "filesystem";

/// A [`StorageError`] for an OS error met while `doing` something to
/// `what`. Interrupted and would-block calls, and too many open files, are
/// retryable; everything else is not.
pub(crate) fn os(doing: &str, what: &str, err: Errno) -> StorageError {
    let message = match err {
        Errno::NAMETOOLONG => format!("{doing} {what}: the name is too long for this filesystem"),
        Errno::NOSPC => format!("{doing} {what}: the disk is full"),
        Errno::ACCESS | Errno::PERM => format!("{doing} {what}: permission denied"),
        Errno::LOOP => {
            format!("{doing} {what}: it is a symbolic link, which the store does not follow")
        }
        _ => format!("{doing} {what}"),
    };
    let retryable = matches!(
        err,
        Errno::INTR | Errno::AGAIN | Errno::MFILE | Errno::NFILE
    );
    let storage = if retryable {
        StorageError::retryable(BACKEND, message)
    } else {
        StorageError::new(BACKEND, message)
    };
    storage.with_source(std::io::Error::from(err))
}

/// A [`StorageError`] for a `std::io` error.
pub(crate) fn io(doing: &str, what: &str, err: std::io::Error) -> StorageError {
    match err.raw_os_error() {
        Some(code) => os(doing, what, Errno::from_raw_os_error(code)),
        None => StorageError::new(BACKEND, format!("{doing} {what}")).with_source(err),
    }
}
