//! The one place `object_store` errors are inspected: which ones a retry can
//! help, and how each becomes a [`StorageError`].

use infinisheet_event_log::StorageError;
use object_store::path::Path;

/// The backend name every [`StorageError`] of this crate carries.
pub(crate) const BACKEND: &str = "object-store";

/// A storage error for a failed call `what` on `key`.
///
/// Generic failures (network, timeouts, throttling and server errors that
/// outlived `object_store`'s own retries) are retryable; a denied permission,
/// an invalid path or an unsupported operation is not.
pub(crate) fn storage(what: &str, key: &Path, err: object_store::Error) -> StorageError {
    // A local file system's permanent refusals (a name too long, a path
    // through a file, no permission) come as generic errors too.
    let permanent = os_error(&err).is_some_and(|code| {
        matches!(
            code,
            ENOTDIR | EISDIR | ENAMETOOLONG | EACCES | EPERM | EROFS | EINVAL
        )
    });
    let retryable = matches!(err, object_store::Error::Generic { .. }) && !permanent;
    let message = format!("{what} {key}");
    let error = if retryable {
        StorageError::retryable(BACKEND, message)
    } else {
        StorageError::new(BACKEND, message)
    };
    error.with_source(err)
}

/// A storage error for an object whose content this crate cannot decode.
pub(crate) fn corrupt(key: &Path, reason: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt(BACKEND, format!("corrupt object {key}: {reason}"))
}

const EPERM: i32 = 1;
const EACCES: i32 = 13;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const EROFS: i32 = 30;
const ENAMETOOLONG: i32 = 36;

/// The OS error code somewhere in `err`'s chain of sources, if any (what
/// a store on a local file system reports).
fn os_error(err: &object_store::Error) -> Option<i32> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = next {
        if let Some(code) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return Some(code);
        }
        next = current.source();
    }
    None
}

/// Whether `err` says the object does not exist (on a local file system,
/// also: a directory on its path is a file, so nothing can be beneath it).
pub(crate) fn is_not_found(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. }) || os_error(err) == Some(ENOTDIR)
}

/// Whether `err` says a conditional write lost: the object exists
/// (`PutMode::Create`) or changed (`PutMode::Update`).
pub(crate) fn is_lost_race(err: &object_store::Error) -> bool {
    matches!(
        err,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

/// Whether `err` says the store does not offer an operation.
pub(crate) fn is_unsupported(err: &object_store::Error) -> bool {
    matches!(
        err,
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }
    )
}
