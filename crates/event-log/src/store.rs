//! [`LogStore`]: where many event logs live, each named by an id, and its
//! error.

use crate::{BoxError, EventLog, StorageError, TruncateError};
use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;

/// Where many event logs live, each named by an id: a catalog keeps one
/// log per sheet there and records the id (with
/// [`backend`](LogStore::backend), so a sheet is never opened on a log of
/// another kind of store).
///
/// Each backend crate has one beside its log (`MemoryLogs`,
/// `SqliteDatabase`, `FileLogs`, `ObjectStoreLogs`, `HttpStorage`), and a
/// host app implements it to keep sheets on its own [`EventLog`].
///
/// Handles it gives out must agree: two [`log`](LogStore::log) calls for
/// one id may return independent handles (a fresh one per call is fine),
/// but then each must see the other's appends, metadata, truncation and
/// tokens, and a stale handle's append at a taken id must be a conflict —
/// as the conformance suite's second-handle cases check (its
/// `log_store_tests!` runs them on handles the store gives out).
///
/// ```
/// use infinisheet_event_log::{LogStore, LogStoreError, check_log_id};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let logs = infinisheet_memory::MemoryLogs::new();
/// let log = logs.log("budget", true).await?;
/// assert!(matches!(logs.log("other", false).await, Err(LogStoreError::NotFound { .. })));
/// assert!(matches!(logs.log("../x", true).await, Err(LogStoreError::InvalidId { .. })));
/// # drop(log);
/// # Ok::<(), LogStoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait LogStore: Send + Sync + fmt::Debug + 'static {
    /// The backend's name, as sheet metadata records it (`memory`,
    /// `sqlite`, `file`, `object-store`, or a host's own).
    fn backend(&self) -> &str;

    /// How messages name the store (its URL, for the built-in ones).
    fn url(&self) -> &str;

    /// Opens the log `id`, creating it (empty) if `create` and it does
    /// not exist. The id is checked ([`check_log_id`]) before any I/O.
    ///
    /// # Errors
    ///
    /// [`LogStoreError::InvalidId`] if the id cannot name a log;
    /// [`LogStoreError::NotFound`] if it does not exist and `create` is
    /// false; [`LogStoreError::Storage`] if the storage fails.
    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError>;

    /// Removes the entries of log `id`. The default truncates it to its
    /// end (an emptied log costs a row, a directory or a few objects); a
    /// log that does not exist is not an error.
    ///
    /// # Errors
    ///
    /// [`LogStoreError::Storage`] if the storage fails.
    async fn clear(&self, id: &str) -> Result<(), LogStoreError> {
        let log = match self.log(id, false).await {
            Ok(log) => log,
            Err(LogStoreError::NotFound { .. }) => return Ok(()),
            Err(err) => return Err(err),
        };
        let end = log
            .bounds()
            .await
            .map_err(|err| LogStoreError::storage(self.url(), id, err))?
            .end;
        log.truncate(end)
            .await
            .map_err(|err| LogStoreError::Storage {
                store: self.url().to_owned(),
                id: id.to_owned(),
                retryable: matches!(&err, TruncateError::Storage(e) if e.is_retryable()),
                source: Box::new(err),
            })
    }
}

/// An error of opening, creating or clearing one log of a [`LogStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogStoreError {
    /// No log has that id (and it was not to be created).
    #[error("event log {id} in {store}: no such log")]
    NotFound {
        /// The store, as [`LogStore::url`] names it.
        store: String,
        /// The log's id.
        id: String,
    },
    /// The id cannot name a log ([`check_log_id`]).
    #[error("event log {id:?} in {store}: invalid log id: {problem}")]
    InvalidId {
        /// The store.
        store: String,
        /// The id given.
        id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The storage failed (the source says how).
    #[error("event log {id} in {store}")]
    Storage {
        /// The store.
        store: String,
        /// The log's id.
        id: String,
        /// Whether trying again may help.
        retryable: bool,
        /// The backend's own error.
        source: BoxError,
    },
}

impl LogStoreError {
    /// A failure of the storage beneath log `id` of `store`.
    pub fn storage(store: &str, id: &str, err: StorageError) -> LogStoreError {
        LogStoreError::Storage {
            store: store.to_owned(),
            id: id.to_owned(),
            retryable: err.is_retryable(),
            source: Box::new(err),
        }
    }

    /// A failure of the storage, from a backend's own error type.
    pub fn other(
        store: &str,
        id: &str,
        retryable: bool,
        err: impl Into<BoxError>,
    ) -> LogStoreError {
        LogStoreError::Storage {
            store: store.to_owned(),
            id: id.to_owned(),
            retryable,
            source: err.into(),
        }
    }

    /// No log `id` in `store`.
    pub fn not_found(store: &str, id: &str) -> LogStoreError {
        LogStoreError::NotFound {
            store: store.to_owned(),
            id: id.to_owned(),
        }
    }

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LogStoreError::Storage {
                retryable: true,
                ..
            }
        )
    }

    /// Whether the log does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, LogStoreError::NotFound { .. })
    }
}

/// Checks that `id` can name a log in every backend without leaving its
/// place: it becomes a SQLite row name, a directory under `file:`'s root
/// and a key segment under an object prefix, so `..`, separators or an
/// absolute path would reach outside. It must be 1 to 64 ASCII letters,
/// digits, `-` or `_` (the catalog makes 32 hex digits).
///
/// # Errors
///
/// [`LogStoreError::InvalidId`] naming what is wrong with it.
pub fn check_log_id(store: &dyn LogStore, id: &str) -> Result<(), LogStoreError> {
    match log_id_problem(id) {
        None => Ok(()),
        Some(problem) => Err(LogStoreError::InvalidId {
            store: store.url().to_owned(),
            id: id.to_owned(),
            problem,
        }),
    }
}

/// What makes `id` unfit to name a log, if anything ([`check_log_id`]).
pub fn log_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("it is empty")
    } else if id.len() > 64 {
        Some("it is longer than 64 characters")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Some("only ASCII letters, digits, - and _ may name a log")
    } else {
        None
    }
}

macro_rules! forward_log_store {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<T: LogStore + ?Sized> LogStore for $ty {
            fn backend(&self) -> &str {
                (**self).backend()
            }

            fn url(&self) -> &str {
                (**self).url()
            }

            async fn log(
                &self,
                id: &str,
                create: bool,
            ) -> Result<Arc<dyn EventLog>, LogStoreError> {
                (**self).log(id, create).await
            }

            async fn clear(&self, id: &str) -> Result<(), LogStoreError> {
                (**self).clear(id).await
            }
        }
    };
}

forward_log_store!(Arc<T>);
forward_log_store!(Box<T>);
