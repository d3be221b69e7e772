//! Where a catalog's sheets keep their logs: the [`LogStore`] trait, one
//! implementation per built-in backend, and its error.

use crate::BoxError;
use async_trait::async_trait;
use infinisheet_event_log::{EventLog, StorageError};
use infinisheet_memory::MemoryEventLog;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// Where the event logs of a catalog live: one log per sheet, named by an
/// id the sheet's metadata records (with [`backend`](LogStore::backend),
/// so a sheet is never opened on a log of another kind of store).
///
/// Each built-in backend has one ([`MemoryLogs`], `SqliteLogs`,
/// `FileLogs`, `ObjectStoreLogs`, behind their features), and a host app
/// implements it to keep sheets on its own [`EventLog`] (see the
/// `counting_backend` example). Ids reach it checked: 1 to 64 ASCII
/// letters, digits, `-` or `_` ([`check_log_id`]).
///
/// ```
/// use infinisheet::{Catalog, LogStore, MemoryLogs, SheetOptions, Storage};
/// use std::sync::Arc;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let logs: Arc<dyn LogStore> = Arc::new(MemoryLogs::new());
/// let blobs = Arc::new(infinisheet::memory::MemoryBlobStore::new());
/// let catalog = Catalog::new(Storage::new(logs, blobs, "memory:"));
/// catalog.create_sheet("q3", SheetOptions::default()).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait LogStore: Send + Sync + fmt::Debug {
    /// The backend's name, as sheet metadata records it (`memory`,
    /// `sqlite`, `file`, `object-store`, or a host's own).
    fn backend(&self) -> &str;

    /// How messages name the store (its URL, for the built-in ones).
    fn url(&self) -> &str;

    /// Opens the log `id`, creating it (empty) if `create` and it does
    /// not exist.
    ///
    /// # Errors
    ///
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
        let fail = |err: StorageError| LogStoreError::storage(self.url(), id, err);
        let end = log.bounds().await.map_err(fail)?.end;
        log.truncate(end)
            .await
            .map_err(|err| LogStoreError::Storage {
                store: self.url().to_owned(),
                id: id.to_owned(),
                retryable: matches!(&err, infinisheet_event_log::TruncateError::Storage(e) if e.is_retryable()),
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

/// What makes `id` unfit to name a log, if anything.
pub(crate) fn log_id_problem(id: &str) -> Option<&'static str> {
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

/// Logs in this process's memory (`memory:`), gone when the last clone is
/// dropped.
#[derive(Clone, Debug)]
pub struct MemoryLogs {
    pub(super) url: String,
    logs: Arc<Mutex<HashMap<String, MemoryEventLog>>>,
}

impl MemoryLogs {
    /// A store with no logs, named `memory:`.
    pub fn new() -> MemoryLogs {
        MemoryLogs {
            url: "memory:".to_owned(),
            logs: Arc::default(),
        }
    }
}

impl Default for MemoryLogs {
    fn default() -> Self {
        MemoryLogs::new()
    }
}

#[async_trait]
impl LogStore for MemoryLogs {
    fn backend(&self) -> &str {
        "memory"
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        check_log_id(self, id)?;
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        match logs.get(id) {
            Some(log) => Ok(Arc::new(log.clone())),
            None if create => {
                let log = MemoryEventLog::new();
                logs.insert(id.to_owned(), log.clone());
                Ok(Arc::new(log))
            }
            None => Err(LogStoreError::not_found(&self.url, id)),
        }
    }
}

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteLogs;

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::{LogStore, LogStoreError, check_log_id};
    use async_trait::async_trait;
    use infinisheet_event_log::EventLog;
    use infinisheet_sqlite::{OpenError, SqliteDatabase};
    use std::sync::Arc;

    /// Logs as rows of one SQLite database (`sqlite:PATH`), from a
    /// [`SqliteDatabase`] the host app may have opened with its own
    /// options (durability, busy timeout).
    #[derive(Clone, Debug)]
    pub struct SqliteLogs {
        url: String,
        db: SqliteDatabase,
    }

    impl SqliteLogs {
        /// The logs of `db`; `url` is how messages name it.
        pub fn new(db: SqliteDatabase, url: &str) -> SqliteLogs {
            SqliteLogs {
                url: url.to_owned(),
                db,
            }
        }

        /// The database.
        pub fn database(&self) -> &SqliteDatabase {
            &self.db
        }
    }

    #[async_trait]
    impl LogStore for SqliteLogs {
        fn backend(&self) -> &str {
            "sqlite"
        }

        fn url(&self) -> &str {
            &self.url
        }

        async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
            check_log_id(self, id)?;
            let log = if create {
                self.db.log(id).await
            } else {
                self.db.open_log(id).await
            };
            match log {
                Ok(log) => Ok(Arc::new(log)),
                Err(OpenError::NotFound { .. }) => Err(LogStoreError::not_found(&self.url, id)),
                Err(OpenError::Storage(err)) => Err(LogStoreError::storage(&self.url, id, err)),
                Err(err) => Err(LogStoreError::other(&self.url, id, false, err)),
            }
        }
    }
}

#[cfg(feature = "filesystem")]
pub use files::FileLogs;

#[cfg(feature = "filesystem")]
mod files {
    use super::{LogStore, LogStoreError, check_log_id};
    use async_trait::async_trait;
    use infinisheet_event_log::EventLog;
    use infinisheet_filesystem::{FsEventLog, FsLogOptions, OpenLogError};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    /// Logs as directories under one root (`file:DIR`), each an
    /// [`FsEventLog`] opened with the same options.
    #[derive(Clone, Debug)]
    pub struct FileLogs {
        url: String,
        root: PathBuf,
        options: FsLogOptions,
    }

    impl FileLogs {
        /// The logs under `root` (which must exist), opened with
        /// `options`; `url` is how messages name it.
        pub fn new(root: impl AsRef<Path>, options: FsLogOptions, url: &str) -> FileLogs {
            FileLogs {
                url: url.to_owned(),
                root: root.as_ref().to_owned(),
                options,
            }
        }
    }

    #[async_trait]
    impl LogStore for FileLogs {
        fn backend(&self) -> &str {
            "file"
        }

        fn url(&self) -> &str {
            &self.url
        }

        async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
            check_log_id(self, id)?;
            let dir = self.root.join(id);
            if !create && !dir.is_dir() {
                return Err(LogStoreError::not_found(&self.url, id));
            }
            match FsEventLog::open(&dir, self.options).await {
                Ok(log) => Ok(Arc::new(log)),
                Err(OpenLogError::Storage(err)) => Err(LogStoreError::storage(&self.url, id, err)),
                Err(err) => Err(LogStoreError::other(&self.url, id, false, err)),
            }
        }
    }
}

#[cfg(feature = "object-store")]
pub use objects::ObjectStoreLogs;

#[cfg(feature = "object-store")]
mod objects {
    use super::{LogStore, LogStoreError, check_log_id};
    use async_trait::async_trait;
    use infinisheet_event_log::EventLog;
    use infinisheet_object_store::object_store::ObjectStore;
    use infinisheet_object_store::object_store::path::Path;
    use infinisheet_object_store::{ObjectStoreEventLog, OpenError};
    use std::sync::Arc;

    /// Logs under a key prefix of an object store (`s3://bucket/prefix`),
    /// a prefix per log; the store must offer conditional create and
    /// ETag-conditional replace (each log checks when it is opened).
    #[derive(Clone, Debug)]
    pub struct ObjectStoreLogs {
        url: String,
        store: Arc<dyn ObjectStore>,
        prefix: Path,
    }

    impl ObjectStoreLogs {
        /// The logs under `prefix` of `store` (any `object_store` store a
        /// host app built itself); `url` is how messages name it.
        pub fn new(store: Arc<dyn ObjectStore>, prefix: Path, url: &str) -> ObjectStoreLogs {
            ObjectStoreLogs {
                url: url.to_owned(),
                store,
                prefix,
            }
        }
    }

    #[async_trait]
    impl LogStore for ObjectStoreLogs {
        fn backend(&self) -> &str {
            "object-store"
        }

        fn url(&self) -> &str {
            &self.url
        }

        async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
            check_log_id(self, id)?;
            let at = self.prefix.clone().join(id);
            let log = if create {
                ObjectStoreEventLog::open(self.store.clone(), at).await
            } else {
                // Reading only: a sheet opened for reading needs no write
                // permission.
                ObjectStoreEventLog::open_existing(self.store.clone(), at).await
            };
            match log {
                Ok(log) => Ok(Arc::new(log)),
                Err(OpenError::NotFound { .. }) => Err(LogStoreError::not_found(&self.url, id)),
                Err(OpenError::Storage(err)) => Err(LogStoreError::storage(&self.url, id, err)),
                Err(err) => Err(LogStoreError::other(&self.url, id, false, err)),
            }
        }
    }
}
