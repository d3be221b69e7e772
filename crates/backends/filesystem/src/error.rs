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

/// Creates `path` and any missing parents, syncing each parent that gained
/// an entry, so a new directory survives a crash.
pub(crate) fn create_dir_durably(path: &std::path::Path) -> Result<(), StorageError> {
    let shown = || path.display().to_string();
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durably(parent)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(err) => return Err(io("creating", &shown(), err)),
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| io("syncing the parent of", &shown(), err))
}
