//! Storage by URL: where a catalog's event logs live (one per sheet) and
//! its blob store, from `memory:`, `sqlite:PATH`, `file:DIR` or
//! `s3://bucket/prefix` (and `gs://`, `az://`) or a server's storage
//! (`http://HOST:PORT`, an `infinisheet serve`); the embedded default, a
//! local directory holding a SQLite file of logs and a filesystem blob
//! store. Each backend is behind its crate feature; a URL of a backend this
//! build lacks is [`StorageUrlError::NotBuilt`].

#[cfg(feature = "http")]
mod http;
mod logs;

#[cfg(feature = "http")]
pub use http::{HttpLogs, storage_service};

#[cfg(feature = "filesystem")]
pub use logs::FileLogs;
#[cfg(feature = "object-store")]
pub use logs::ObjectStoreLogs;
#[cfg(feature = "sqlite")]
pub use logs::SqliteLogs;
pub(crate) use logs::log_id_problem;
pub use logs::{LogStore, LogStoreError, MemoryLogs, check_log_id};

use crate::BoxError;
use infinisheet_blob_store::BlobStore;
use infinisheet_memory::MemoryBlobStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Error of opening storage from a URL or a directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageUrlError {
    /// The text is not a storage URL this crate knows.
    #[error(
        "{url:?} is not a storage URL: use memory:, sqlite:PATH, file:DIR, s3://bucket/prefix, \
         gs://bucket/prefix, az://container/prefix or http://HOST:PORT (an infinisheet serve)"
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
    /// The URL names a backend this build of the crate leaves out.
    #[error("{url} needs the {feature:?} feature of infinisheet, which this build lacks")]
    NotBuilt {
        /// The text given.
        url: String,
        /// The crate feature that adds the backend.
        feature: &'static str,
    },
    /// For reading only, the storage it names does not exist (nothing was
    /// created).
    #[error("cannot open {url}: {what}")]
    Missing {
        /// The URL or directory.
        url: String,
        /// What is missing.
        what: String,
    },
    /// The storage it names cannot be opened (the source says why).
    #[error("cannot open {url}")]
    Open {
        /// The URL.
        url: String,
        /// Whether trying again may help.
        retryable: bool,
        /// The backend's own error.
        source: BoxError,
    },
}

impl StorageUrlError {
    /// Whether trying again may help (an unreachable or busy server).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageUrlError::Open {
                retryable: true,
                ..
            }
        )
    }

    /// Whether the storage does not exist (opening for reading only).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageUrlError::Missing { .. })
    }
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

/// An error of opening `url`, keeping `err` as its source.
#[allow(dead_code)] // unused only in a build without any local backend
fn open_error<E: Into<BoxError>>(
    url: &str,
    retryable: bool,
) -> impl FnOnce(E) -> StorageUrlError + '_ {
    move |err| StorageUrlError::Open {
        url: url.to_owned(),
        retryable,
        source: err.into(),
    }
}

/// [`open_error`] for a backend's [`StorageError`](infinisheet_event_log::StorageError).
#[allow(dead_code)]
fn storage_error(
    url: &str,
) -> impl FnOnce(infinisheet_event_log::StorageError) -> StorageUrlError + '_ {
    move |err| StorageUrlError::Open {
        url: url.to_owned(),
        retryable: err.is_retryable(),
        source: Box::new(err),
    }
}

/// The path after `scheme:` (an optional `//` dropped), and the part after
/// `#` if any.
#[cfg_attr(not(any(feature = "sqlite", feature = "filesystem")), allow(dead_code))]
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

fn not_built(url: &str, feature: &'static str) -> StorageUrlError {
    StorageUrlError::NotBuilt {
        url: url.to_owned(),
        feature,
    }
}

/// The URL schemes that name an object store, and the feature each needs.
const OBJECT_SCHEMES: [(&str, &str); 8] = [
    ("s3", "s3"),
    ("s3a", "s3"),
    ("gs", "gcs"),
    ("az", "azure"),
    ("azure", "azure"),
    ("abfs", "azure"),
    ("abfss", "azure"),
    ("adl", "azure"),
];

/// An object store from its URL, through the object-store backend's one
/// URL constructor (`object_store`'s builders, the environment, short
/// retries). `feature` is the crate feature the scheme needs.
#[cfg(feature = "object-store")]
fn object_store(
    url: &str,
    feature: &'static str,
) -> Result<infinisheet_object_store::UrlStore, StorageUrlError> {
    use infinisheet_object_store::UrlError;
    let built = (feature == "s3" && cfg!(feature = "s3"))
        || (feature == "gcs" && cfg!(feature = "gcs"))
        || (feature == "azure" && cfg!(feature = "azure"));
    if !built {
        return Err(not_built(url, feature));
    }
    infinisheet_object_store::open_url(url).map_err(|err| match err {
        UrlError::NotBuilt { .. } => not_built(url, feature),
        other => open_error(url, false)(other),
    })
}

#[cfg(not(feature = "object-store"))]
fn object_store(
    url: &str,
    feature: &'static str,
) -> Result<std::convert::Infallible, StorageUrlError> {
    Err(not_built(url, feature))
}

/// The SQLite database at `path` (for writing: created, with its
/// directory, if missing).
#[cfg(feature = "sqlite")]
async fn sqlite(
    url: &str,
    path: &Path,
    access: Access,
) -> Result<infinisheet_sqlite::SqliteDatabase, StorageUrlError> {
    use infinisheet_sqlite::{OpenError, SqliteDatabase, SqliteOptions};
    let opened = match access {
        Access::ReadWrite => {
            create_parent(url, path)?;
            SqliteDatabase::open(path, SqliteOptions::default()).await
        }
        Access::ReadOnly => SqliteDatabase::open_read_only(path, SqliteOptions::default()).await,
    };
    opened.map_err(|err| match err {
        OpenError::Missing { path } => StorageUrlError::Missing {
            url: url.to_owned(),
            what: format!("there is no database at {}", path.display()),
        },
        OpenError::Storage(err) => storage_error(url)(err),
        other => open_error(url, false)(other),
    })
}

/// The filesystem blob store at `path` (for writing: created if missing).
#[cfg(feature = "filesystem")]
async fn file_blobs(
    url: &str,
    path: &Path,
    access: Access,
) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
    use infinisheet_filesystem::FsBlobStore;
    let store = match access {
        Access::ReadWrite => {
            std::fs::create_dir_all(path).map_err(open_error(url, false))?;
            FsBlobStore::open(path).await
        }
        Access::ReadOnly if !path.is_dir() => {
            return Err(StorageUrlError::Missing {
                url: url.to_owned(),
                what: format!("there is no blob store at {}", path.display()),
            });
        }
        Access::ReadOnly => FsBlobStore::open_read_only(path).await,
    };
    Ok(Arc::new(store.map_err(storage_error(url))?))
}

/// A directory of `file:` logs, created for writing if missing.
#[cfg(feature = "filesystem")]
fn log_dir(url: &str, path: &Path, access: Access) -> Result<(), StorageUrlError> {
    match access {
        Access::ReadWrite => std::fs::create_dir_all(path).map_err(open_error(url, false)),
        Access::ReadOnly if path.is_dir() => Ok(()),
        Access::ReadOnly => Err(StorageUrlError::Missing {
            url: url.to_owned(),
            what: format!("there is no log directory at {}", path.display()),
        }),
    }
}

#[allow(dead_code)]
fn create_parent(url: &str, path: &Path) -> Result<(), StorageUrlError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(open_error(url, false))?;
    }
    Ok(())
}

fn scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    Some((scheme, rest))
}

fn object_feature(scheme: &str) -> Option<&'static str> {
    OBJECT_SCHEMES
        .iter()
        .find(|(name, _)| *name == scheme)
        .map(|(_, feature)| *feature)
}

/// The storage of the server at `url` (`infinisheet serve`), with the
/// bearer token in `INFINISHEET_TOKEN` if set.
#[cfg(feature = "http")]
async fn http_server(url: &str) -> Result<infinisheet_http::HttpStorage, StorageUrlError> {
    let token = std::env::var("INFINISHEET_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    infinisheet_http::HttpStorage::connect(url, token)
        .await
        .map_err(|err| {
            let retryable = err.is_retryable();
            open_error(url, retryable)(err)
        })
}

/// The logs at `url`: `memory:` (this process only), `sqlite:PATH` (one
/// database file, created if missing), `file:DIR` (a directory per log) or
/// an object store (`s3://bucket/prefix`, `gs://…`, `az://…`, a prefix per
/// log).
///
/// # Errors
///
/// [`StorageUrlError`] if the URL is unknown, its backend is not built in,
/// or the storage cannot be opened.
pub async fn open_log_store(url: &str) -> Result<Arc<dyn LogStore>, StorageUrlError> {
    open_log_store_with(url, Access::ReadWrite).await
}

/// The logs at `url`, as [`open_log_store`], for `access`.
///
/// # Errors
///
/// As [`open_log_store`]; for [`Access::ReadOnly`], also if the database or
/// directory does not exist.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "filesystem")),
    allow(unused_variables)
)]
pub async fn open_log_store_with(
    url: &str,
    access: Access,
) -> Result<Arc<dyn LogStore>, StorageUrlError> {
    let unknown = || StorageUrlError::Unknown {
        url: url.to_owned(),
    };
    let (scheme, rest) = scheme(url).ok_or_else(unknown)?;
    Ok(match scheme {
        "memory" => {
            let mut logs = MemoryLogs::new();
            url.clone_into(&mut logs.url);
            Arc::new(logs)
        }
        #[cfg(feature = "sqlite")]
        "sqlite" => Arc::new(SqliteLogs::new(
            sqlite(url, &local_path(url, rest)?.0, access).await?,
            url,
        )),
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => return Err(not_built(url, "sqlite")),
        #[cfg(feature = "filesystem")]
        "file" => {
            let (path, _) = local_path(url, rest)?;
            log_dir(url, &path, access)?;
            Arc::new(FileLogs::new(
                path,
                infinisheet_filesystem::FsLogOptions::default(),
                url,
            ))
        }
        #[cfg(not(feature = "filesystem"))]
        "file" => return Err(not_built(url, "filesystem")),
        #[cfg(feature = "http")]
        "http" | "https" => Arc::new(HttpLogs::new(http_server(url).await?, url)),
        #[cfg(not(feature = "http"))]
        "http" | "https" => return Err(not_built(url, "http")),
        other => match object_feature(other) {
            #[cfg(feature = "object-store")]
            Some(feature) => {
                let opened = object_store(url, feature)?;
                Arc::new(ObjectStoreLogs::new(opened.store, opened.prefix, url))
            }
            #[cfg(not(feature = "object-store"))]
            Some(feature) => match object_store(url, feature)? {},
            None => return Err(unknown()),
        },
    })
}

/// The blob store at `url`: `memory:`, `sqlite:PATH#TREE` (a named tree in
/// a database file; `blobs` if no `#TREE`), `file:DIR` or an object store
/// (`s3://bucket/prefix`, `gs://…`, `az://…`).
///
/// # Errors
///
/// [`StorageUrlError`] if the URL is unknown, its backend is not built in,
/// or the store cannot be opened.
pub async fn open_blob_store(url: &str) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
    open_blob_store_with(url, Access::ReadWrite).await
}

/// The blob store at `url`, as [`open_blob_store`], for `access`.
///
/// # Errors
///
/// As [`open_blob_store`]; for [`Access::ReadOnly`], also if the database,
/// its tree or the directory does not exist.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "filesystem")),
    allow(unused_variables)
)]
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
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            use infinisheet_sqlite::OpenError;
            let (path, tree) = local_path(url, rest)?;
            let db = sqlite(url, &path, access).await?;
            let tree = tree.unwrap_or_else(|| "blobs".to_owned());
            let store = match access {
                Access::ReadWrite => db.blob_store(&tree).await,
                Access::ReadOnly => db.open_blob_store(&tree).await,
            };
            Arc::new(store.map_err(|err| match err {
                OpenError::NotFound { .. } => StorageUrlError::Missing {
                    url: url.to_owned(),
                    what: format!("the database holds no blob tree {tree:?}"),
                },
                OpenError::Storage(err) => storage_error(url)(err),
                other => open_error(url, false)(other),
            })?)
        }
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => return Err(not_built(url, "sqlite")),
        #[cfg(feature = "filesystem")]
        "file" => file_blobs(url, &local_path(url, rest)?.0, access).await?,
        #[cfg(not(feature = "filesystem"))]
        "file" => return Err(not_built(url, "filesystem")),
        #[cfg(feature = "http")]
        "http" | "https" => Arc::new(http_server(url).await?.blobs()),
        #[cfg(not(feature = "http"))]
        "http" | "https" => return Err(not_built(url, "http")),
        other => match object_feature(other) {
            #[cfg(feature = "object-store")]
            Some(feature) => {
                let opened = object_store(url, feature)?;
                let blobs = infinisheet_object_store::ObjectStoreBlobStore::new(
                    opened.store,
                    opened.prefix,
                );
                Arc::new(match opened.lister {
                    Some(lister) => blobs.with_paginated_listing(lister),
                    None => blobs,
                })
            }
            #[cfg(not(feature = "object-store"))]
            Some(feature) => match object_store(url, feature)? {},
            None => return Err(unknown()),
        },
    })
}

/// A catalog's storage: its logs and its blob store, which may come from
/// different backends (a SQLite file of logs beside S3 blobs), or be a
/// host app's own.
#[derive(Clone, Debug)]
pub struct Storage {
    /// Where the sheets' logs live.
    pub logs: Arc<dyn LogStore>,
    /// The blob store holding the folder tree and each sheet's directory.
    pub blobs: Arc<dyn BlobStore>,
    /// The blob store's URL, for messages.
    pub blobs_url: String,
}

impl Storage {
    /// Storage from parts a host app built itself (a [`SqliteLogs`] on a
    /// database it opened with its own options, its own [`LogStore`], any
    /// blob store); `blobs_url` is how messages name the blob store.
    pub fn new(logs: Arc<dyn LogStore>, blobs: Arc<dyn BlobStore>, blobs_url: &str) -> Storage {
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
            logs: open_log_store_with(logs_url, access).await?,
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
    #[cfg(all(feature = "sqlite", feature = "filesystem"))]
    pub async fn embedded(home: &Path) -> Result<Storage, StorageUrlError> {
        Storage::embedded_with(home, Access::ReadWrite).await
    }

    /// The embedded storage in `home`, for `access`.
    ///
    /// # Errors
    ///
    /// As [`embedded`](Storage::embedded); for [`Access::ReadOnly`], also
    /// if `home` holds no embedded storage (nothing is created then).
    #[cfg(all(feature = "sqlite", feature = "filesystem"))]
    pub async fn embedded_with(home: &Path, access: Access) -> Result<Storage, StorageUrlError> {
        // Opened by path, not through URLs: a directory name may hold `#`.
        let (db, sheets) = (home.join("logs.db"), home.join("sheets"));
        let logs_url = format!("sqlite:{}", db.display());
        let blobs_url = format!("file:{}", sheets.display());
        if access == Access::ReadOnly && !home.is_dir() {
            return Err(StorageUrlError::Missing {
                url: home.display().to_string(),
                what: "there is no such directory, so no sheets to read (create a sheet first)"
                    .into(),
            });
        }
        let logs = SqliteLogs::new(sqlite(&logs_url, &db, access).await?, &logs_url);
        let blobs = file_blobs(&blobs_url, &sheets, access).await?;
        Ok(Storage::new(Arc::new(logs), blobs, &blobs_url))
    }
}
