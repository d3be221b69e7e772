//! Storage by URL: where a catalog's event logs live (one per sheet) and
//! its blob store, from `memory:`, `sqlite:PATH`, `file:DIR` or
//! `s3://bucket/prefix` (and the other `object_store` schemes); the
//! embedded default, a local directory holding a SQLite file of logs and
//! a filesystem blob store.

use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::EventLog;
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet_object_store::object_store::aws::AmazonS3Builder;
use infinisheet_object_store::object_store::path::Path as KeyPath;
use infinisheet_object_store::object_store::{ObjectStore, RetryConfig};
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Error of opening storage from a URL or a directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageUrlError {
    /// The text is not a storage URL this crate knows.
    #[error(
        "{url:?} is not a storage URL: use memory:, sqlite:PATH, file:DIR or s3://bucket/prefix"
    )]
    Unknown {
        /// The text given.
        url: String,
    },
    /// The URL names a path that is empty.
    #[error("{url:?} names no path")]
    NoPath {
        /// The text given.
        url: String,
    },
    /// The storage it names cannot be opened.
    #[error("cannot open {url}: {message}")]
    Open {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
}

/// How a [`Storage`] is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// For reading and writing: a missing database, directory or blob
    /// store is created.
    #[default]
    ReadWrite,
    /// For reading only: nothing is created or changed (SQLite files are
    /// opened read-only, a filesystem blob store makes no `tmp`), it works
    /// with files, directories and credentials that cannot write, and a
    /// missing database, directory or blob store is an error. (A `file:`
    /// log directory is not created either; its logs are opened as for
    /// writing, which changes nothing unless a crash left something to
    /// clean up.)
    ReadOnly,
}

/// Where the event logs of a catalog live: one log per sheet, named by an
/// id the sheet's metadata records.
#[derive(Clone, Debug)]
pub struct LogStore {
    url: String,
    kind: LogKind,
}

#[derive(Clone, Debug)]
enum LogKind {
    Memory(Arc<Mutex<HashMap<String, MemoryEventLog>>>),
    Sqlite(SqliteDatabase),
    Files(PathBuf),
    Objects(Arc<dyn ObjectStore>, KeyPath),
}

/// An error of opening, creating or removing one log of a [`LogStore`].
#[derive(Debug, thiserror::Error)]
#[error("event log {id} in {store}: {message}")]
pub struct LogStoreError {
    /// The store's URL.
    pub store: String,
    /// The log's id.
    pub id: String,
    /// What failed.
    pub message: String,
}

fn open_error(url: &str) -> impl Fn(String) -> StorageUrlError + '_ {
    move |message| StorageUrlError::Open {
        url: url.to_owned(),
        message,
    }
}

/// An error with each of its sources that its text does not already hold,
/// on one line.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The path after `scheme:` (an optional `//` dropped), and the part after
/// `#` if any.
fn local_path(url: &str, rest: &str) -> Result<(PathBuf, Option<String>), StorageUrlError> {
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, fragment) = match rest.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment.to_owned())),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(StorageUrlError::NoPath {
            url: url.to_owned(),
        });
    }
    Ok((PathBuf::from(path), fragment))
}

/// An object store from an `object_store` URL, with its paginated listing
/// where it has one (S3). S3 stores take the `AWS_*` environment and give up
/// on an unreachable endpoint after a few seconds rather than
/// `object_store`'s three minutes.
fn object_store(url: &str) -> Result<(Arc<dyn ObjectStore>, KeyPath), StorageUrlError> {
    object_store_paged(url).map(|(store, _, prefix)| (store, prefix))
}

/// [`object_store`], with the store's paginated listing if it has one.
fn object_store_paged(url: &str) -> Result<PagedStore, StorageUrlError> {
    if url.starts_with("s3://") || url.starts_with("s3a://") {
        let parsed = url::Url::parse(url).map_err(|e| open_error(url)(describe(&e)))?;
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            ..RetryConfig::default()
        };
        let store = AmazonS3Builder::from_env()
            .with_url(url)
            .with_retry(retry)
            .build()
            .map_err(|e| open_error(url)(describe(&e)))?;
        let prefix =
            KeyPath::from_url_path(parsed.path()).map_err(|e| open_error(url)(describe(&e)))?;
        let store = Arc::new(store);
        return Ok((store.clone(), Some(store), prefix));
    }
    let (store, prefix) =
        infinisheet_object_store::parse_url(url).map_err(|e| open_error(url)(describe(&e)))?;
    Ok((store, None, prefix))
}

/// A store, its paginated listing if it has one, and the URL's key prefix.
type PagedStore = (
    Arc<dyn ObjectStore>,
    Option<Arc<dyn infinisheet_object_store::object_store::list::PaginatedListStore>>,
    KeyPath,
);

/// The SQLite database at `path` (for writing: created, with its
/// directory, if missing).
async fn sqlite(url: &str, path: &Path, access: Access) -> Result<SqliteDatabase, StorageUrlError> {
    let opened = match access {
        Access::ReadWrite => {
            create_parent(url, path)?;
            SqliteDatabase::open(path, SqliteOptions::default()).await
        }
        Access::ReadOnly => SqliteDatabase::open_read_only(path, SqliteOptions::default()).await,
    };
    opened.map_err(|e| open_error(url)(describe(&e)))
}

/// The filesystem blob store at `path` (for writing: created if missing).
async fn file_blobs(
    url: &str,
    path: &Path,
    access: Access,
) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
    let store = match access {
        Access::ReadWrite => {
            std::fs::create_dir_all(path).map_err(|e| open_error(url)(describe(&e)))?;
            FsBlobStore::open(path).await
        }
        Access::ReadOnly => FsBlobStore::open_read_only(path).await,
    };
    Ok(Arc::new(store.map_err(|e| open_error(url)(describe(&e)))?))
}

/// A directory of `file:` logs, created for writing if missing.
fn log_dir(url: &str, path: &Path, access: Access) -> Result<(), StorageUrlError> {
    match access {
        Access::ReadWrite => {
            std::fs::create_dir_all(path).map_err(|e| open_error(url)(describe(&e)))
        }
        Access::ReadOnly if path.is_dir() => Ok(()),
        Access::ReadOnly => Err(open_error(url)(format!(
            "there is no log directory at {}",
            path.display()
        ))),
    }
}

fn scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    Some((scheme, rest))
}

impl LogStore {
    /// The logs at `url`: `memory:` (this process only), `sqlite:PATH` (one
    /// database file, created if missing), `file:DIR` (a directory per
    /// log) or an object store (`s3://bucket/prefix`, a prefix per log).
    ///
    /// # Errors
    ///
    /// [`StorageUrlError`] if the URL is unknown or the storage cannot be
    /// opened.
    pub async fn open(url: &str) -> Result<LogStore, StorageUrlError> {
        LogStore::open_with(url, Access::ReadWrite).await
    }

    /// The logs at `url`, as [`open`](LogStore::open), for `access`.
    ///
    /// # Errors
    ///
    /// As [`open`](LogStore::open); for [`Access::ReadOnly`], also if the
    /// database or directory does not exist.
    pub async fn open_with(url: &str, access: Access) -> Result<LogStore, StorageUrlError> {
        let unknown = || StorageUrlError::Unknown {
            url: url.to_owned(),
        };
        let (scheme, rest) = scheme(url).ok_or_else(unknown)?;
        let kind = match scheme {
            "memory" => LogKind::Memory(Arc::default()),
            "sqlite" => LogKind::Sqlite(sqlite(url, &local_path(url, rest)?.0, access).await?),
            "file" => {
                let (path, _) = local_path(url, rest)?;
                log_dir(url, &path, access)?;
                LogKind::Files(path)
            }
            "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "http" | "https" => {
                let (store, prefix) = object_store(url)?;
                LogKind::Objects(store, prefix)
            }
            _ => return Err(unknown()),
        };
        Ok(LogStore {
            url: url.to_owned(),
            kind,
        })
    }

    /// Logs under `prefix` of an object store the host app built itself
    /// (any `object_store` store; conditional writes required). `url` is
    /// how messages name it.
    pub fn object_store(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> LogStore {
        LogStore {
            url: url.to_owned(),
            kind: LogKind::Objects(store, KeyPath::from(prefix)),
        }
    }

    /// The backend's name, as sheet metadata records it: `memory`,
    /// `sqlite`, `file` or `object-store`.
    pub fn backend(&self) -> &'static str {
        match self.kind {
            LogKind::Memory(_) => "memory",
            LogKind::Sqlite(_) => "sqlite",
            LogKind::Files(_) => "file",
            LogKind::Objects(..) => "object-store",
        }
    }

    /// The URL the store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks that `id` can name a log in every backend without leaving its
    /// place: it becomes a SQLite row name, a directory under `file:`'s
    /// root and a key segment under an object prefix, so `..`, separators
    /// or an absolute path would reach outside.
    ///
    /// # Errors
    ///
    /// [`LogStoreError`] naming what is wrong with it.
    pub fn check_id(&self, id: &str) -> Result<(), LogStoreError> {
        match log_id_problem(id) {
            None => Ok(()),
            Some(problem) => Err(self.error(id)(format!("invalid log id: {problem}"))),
        }
    }

    fn error(&self, id: &str) -> impl Fn(String) -> LogStoreError + '_ {
        let id = id.to_owned();
        move |message| LogStoreError {
            store: self.url.clone(),
            id: id.clone(),
            message,
        }
    }

    /// Opens the log `id`, creating it (empty) if `create` and it does not
    /// exist.
    ///
    /// # Errors
    ///
    /// [`LogStoreError`] if it does not exist (and `create` is false) or
    /// the storage fails.
    pub async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        self.check_id(id)?;
        let fail = self.error(id);
        Ok(match &self.kind {
            LogKind::Memory(logs) => {
                let mut logs = logs.lock().unwrap_or_else(PoisonError::into_inner);
                match logs.get(id) {
                    Some(log) => Arc::new(log.clone()),
                    None if create => {
                        let log = MemoryEventLog::new();
                        logs.insert(id.to_owned(), log.clone());
                        Arc::new(log)
                    }
                    None => return Err(fail("no such log".into())),
                }
            }
            LogKind::Sqlite(db) => {
                let log = if create {
                    db.log(id).await
                } else {
                    db.open_log(id).await
                };
                Arc::new(log.map_err(|e| fail(describe(&e)))?)
            }
            LogKind::Files(root) => {
                let dir = root.join(id);
                if !create && !dir.is_dir() {
                    return Err(fail("no such log".into()));
                }
                let log = FsEventLog::open(&dir, FsLogOptions::default())
                    .await
                    .map_err(|e| fail(describe(&e)))?;
                Arc::new(log)
            }
            LogKind::Objects(store, prefix) => {
                let at = prefix.clone().join(id);
                let log = if create {
                    ObjectStoreEventLog::open(store.clone(), at).await
                } else {
                    // Reading only: a sheet opened for reading needs no
                    // write permission.
                    ObjectStoreEventLog::open_existing(store.clone(), at).await
                };
                match log {
                    Ok(log) => Arc::new(log),
                    Err(infinisheet_object_store::OpenError::NotFound { .. }) => {
                        return Err(fail("no such log".into()));
                    }
                    Err(e) => return Err(fail(describe(&e))),
                }
            }
        })
    }

    /// Removes the entries of log `id`: truncates it to its end (no backend
    /// here deletes a log outright; an emptied log costs a row, a directory
    /// or a few objects).
    ///
    /// # Errors
    ///
    /// [`LogStoreError`] if the storage fails. A log that does not exist is
    /// not an error.
    pub async fn clear(&self, id: &str) -> Result<(), LogStoreError> {
        self.check_id(id)?;
        let fail = self.error(id);
        let Ok(log) = self.log(id, false).await else {
            return Ok(());
        };
        let end = log.bounds().await.map_err(|e| fail(describe(&e)))?.end;
        log.truncate(end).await.map_err(|e| fail(describe(&e)))
    }
}

/// What makes `id` unfit to name a log, if anything: it must be 1 to 64
/// ASCII letters, digits, `-` or `_` (the catalog makes 32 hex digits).
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

fn create_parent(url: &str, path: &Path) -> Result<(), StorageUrlError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| open_error(url)(describe(&e)))?;
    }
    Ok(())
}

/// The blob store at `url`: `memory:`, `sqlite:PATH#TREE` (a named tree in
/// a database file; `blobs` if no `#TREE`), `file:DIR` or an object store
/// (`s3://bucket/prefix`).
///
/// # Errors
///
/// [`StorageUrlError`] if the URL is unknown or the store cannot be opened.
pub async fn open_blob_store(url: &str) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
    open_blob_store_with(url, Access::ReadWrite).await
}

/// The blob store at `url`, as [`open_blob_store`], for `access`.
///
/// # Errors
///
/// As [`open_blob_store`]; for [`Access::ReadOnly`], also if the database,
/// its tree or the directory does not exist.
pub async fn open_blob_store_with(
    url: &str,
    access: Access,
) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
    let unknown = || StorageUrlError::Unknown {
        url: url.to_owned(),
    };
    let (scheme, rest) = scheme(url).ok_or_else(unknown)?;
    Ok(match scheme {
        "memory" => Arc::new(MemoryBlobStore::new()),
        "sqlite" => {
            let (path, tree) = local_path(url, rest)?;
            let db = sqlite(url, &path, access).await?;
            let tree = tree.unwrap_or_else(|| "blobs".to_owned());
            let store = match access {
                Access::ReadWrite => db.blob_store(&tree).await,
                Access::ReadOnly => db.open_blob_store(&tree).await,
            };
            Arc::new(store.map_err(|e| open_error(url)(describe(&e)))?)
        }
        "file" => file_blobs(url, &local_path(url, rest)?.0, access).await?,
        "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "http" | "https" => {
            let (store, lister, prefix) = object_store_paged(url)?;
            let blobs = ObjectStoreBlobStore::new(store, prefix);
            Arc::new(match lister {
                Some(lister) => blobs.with_paginated_listing(lister),
                None => blobs,
            })
        }
        _ => return Err(unknown()),
    })
}

/// A catalog's storage: its logs and its blob store, which may come from
/// different backends (a SQLite file of logs beside S3 blobs).
#[derive(Clone, Debug)]
pub struct Storage {
    /// Where the sheets' logs live.
    pub logs: LogStore,
    /// The blob store holding the folder tree and each sheet's directory.
    pub blobs: Arc<dyn BlobStore>,
    /// The blob store's URL, for messages.
    pub blobs_url: String,
}

impl Storage {
    /// Storage from parts a host app built itself; `blobs_url` is how
    /// messages name the blob store.
    pub fn new(logs: LogStore, blobs: Arc<dyn BlobStore>, blobs_url: &str) -> Storage {
        Storage {
            logs,
            blobs,
            blobs_url: blobs_url.to_owned(),
        }
    }

    /// Logs from `logs_url` and blobs from `blobs_url`.
    ///
    /// # Errors
    ///
    /// [`StorageUrlError`] if either cannot be opened.
    pub async fn open(logs_url: &str, blobs_url: &str) -> Result<Storage, StorageUrlError> {
        Storage::open_with(logs_url, blobs_url, Access::ReadWrite).await
    }

    /// Logs from `logs_url` and blobs from `blobs_url`, for `access`.
    ///
    /// # Errors
    ///
    /// [`StorageUrlError`] if either cannot be opened (for reading only:
    /// also if either does not exist).
    pub async fn open_with(
        logs_url: &str,
        blobs_url: &str,
        access: Access,
    ) -> Result<Storage, StorageUrlError> {
        Ok(Storage {
            logs: LogStore::open_with(logs_url, access).await?,
            blobs: open_blob_store_with(blobs_url, access).await?,
            blobs_url: blobs_url.to_owned(),
        })
    }

    /// The embedded default: in `home`, a SQLite file `logs.db` holding
    /// every sheet's log and a filesystem blob store `sheets/`. Needs no
    /// server; `home` is created if missing.
    ///
    /// # Errors
    ///
    /// [`StorageUrlError`] if the directory, file or store cannot be
    /// opened.
    pub async fn embedded(home: &Path) -> Result<Storage, StorageUrlError> {
        Storage::embedded_with(home, Access::ReadWrite).await
    }

    /// The embedded storage in `home`, for `access`.
    ///
    /// # Errors
    ///
    /// As [`embedded`](Storage::embedded); for [`Access::ReadOnly`], also
    /// if `home` holds no embedded storage (nothing is created then).
    pub async fn embedded_with(home: &Path, access: Access) -> Result<Storage, StorageUrlError> {
        // Opened by path, not through URLs: a directory name may hold `#`.
        let (db, sheets) = (home.join("logs.db"), home.join("sheets"));
        let logs_url = format!("sqlite:{}", db.display());
        let blobs_url = format!("file:{}", sheets.display());
        if access == Access::ReadOnly && !home.is_dir() {
            return Err(StorageUrlError::Open {
                url: home.display().to_string(),
                message: "there is no such directory, so no sheets to read (`infinisheet new` \
                          makes the first)"
                    .into(),
            });
        }
        let logs = LogStore {
            kind: LogKind::Sqlite(sqlite(&logs_url, &db, access).await?),
            url: logs_url,
        };
        let blobs = file_blobs(&blobs_url, &sheets, access).await?;
        Ok(Storage::new(logs, blobs, &blobs_url))
    }
}
