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
    let retryable = matches!(err, object_store::Error::Generic { .. });
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

/// Whether `err` says the object does not exist.
pub(crate) fn is_not_found(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
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
