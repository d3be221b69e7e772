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

/// Compare-and-swap attempts one operation makes before it gives up with a
/// retryable error: a loop that lost this many races in a row is better
/// retried by the caller later than spun on.
pub(crate) const CAS_ATTEMPTS: u32 = 32;

/// Counts the lost races of one compare-and-swap loop and backs off
/// between attempts (1 ms doubling to 64 ms, with jitter).
#[derive(Debug, Default)]
pub(crate) struct Contention {
    lost: u32,
}

impl Contention {
    /// Records a lost race on `key` while `doing`; waits before the next
    /// attempt, or fails once [`CAS_ATTEMPTS`] were lost.
    pub(crate) async fn lost(&mut self, doing: &str, key: &Path) -> Result<(), StorageError> {
        self.lost += 1;
        if self.lost >= CAS_ATTEMPTS {
            return Err(StorageError::retryable(
                BACKEND,
                format!("{doing} {key}: lost {CAS_ATTEMPTS} races in a row to other writers"),
            ));
        }
        let ceiling = 1u64 << self.lost.min(6);
        let micros = fastrand::u64(ceiling * 500..=ceiling * 1000);
        tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
        Ok(())
    }
}
