//! Storage by URL: where a catalog's event logs live (one per sheet) and
//! its blob store, from `memory:`, `sqlite:PATH`, `file:DIR` or
//! `s3://bucket/prefix` (and `gs://`, `az://`) or a server's storage
//! (`http://HOST:PORT`, an `infinisheet serve`); the embedded default, a
//! local directory holding a SQLite file of logs and a filesystem blob
//! store. Each backend is one file here, behind its crate feature, and
//! [`SCHEMES`] says which URL scheme opens with which; a URL of a backend
//! this build lacks is [`StorageUrlError::NotBuilt`].

#[cfg(feature = "filesystem")]
mod files;
#[cfg(feature = "http")]
mod http;
mod memory;
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
mod objects;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use crate::BoxError;
use async_trait::async_trait;
use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::LogStore;
use infinisheet_storage_error::redact_url;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Error of opening storage from a URL or a directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageUrlError {
    /// The text is not a storage URL this crate knows.
    #[error(
        "{url:?} is not a storage URL: use memory:, sqlite:PATH, file:DIR, s3://bucket/prefix, \
         gs://bucket/prefix, az://container/prefix, http://HOST:PORT (an infinisheet serve) \
         or, for logs, postgres://USER@HOST/DB"
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
    /// The URL names storage that holds event logs only (PostgreSQL),
    /// given for blobs.
    #[error(
        "{url} holds event logs only: keep the blobs in file:DIR, sqlite:PATH, s3://bucket/prefix \
         or another blob store"
    )]
    LogsOnly {
        /// The URL (without its password).
        url: String,
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

/// How the URLs of one backend open.
#[async_trait]
trait Opener: Sync {
    /// The logs at `url` (`rest` is what follows the scheme's colon).
    async fn logs(
        &self,
        url: &str,
        rest: &str,
        access: Access,
    ) -> Result<Arc<dyn LogStore>, StorageUrlError>;

    /// The blob store at `url`.
    async fn blobs(
        &self,
        url: &str,
        rest: &str,
        access: Access,
    ) -> Result<Arc<dyn BlobStore>, StorageUrlError>;
}

/// The opener of a backend this build has, or `None`.
macro_rules! built {
    ($name:ident, $feature:literal, $opener:expr) => {
        #[cfg(feature = $feature)]
        const $name: Option<&dyn Opener> = Some(&$opener);
        #[cfg(not(feature = $feature))]
        const $name: Option<&dyn Opener> = None;
    };
}

built!(SQLITE, "sqlite", sqlite::Sqlite);
built!(FILES, "filesystem", files::Files);
built!(HTTP, "http", http::Http);
built!(S3, "s3", objects::Objects);
built!(GCS, "gcs", objects::Objects);
built!(AZURE, "azure", objects::Objects);
built!(POSTGRES, "postgres", postgres::Postgres);

/// Every storage URL scheme: the crate feature that builds its backend,
/// and the backend's opener when this build has it.
const SCHEMES: [(&str, &str, Option<&dyn Opener>); 15] = [
    ("memory", "", Some(&memory::Memory)),
    ("sqlite", "sqlite", SQLITE),
    ("file", "filesystem", FILES),
    ("http", "http", HTTP),
    ("https", "http", HTTP),
    ("s3", "s3", S3),
    ("s3a", "s3", S3),
    ("gs", "gcs", GCS),
    ("az", "azure", AZURE),
    ("azure", "azure", AZURE),
    ("abfs", "azure", AZURE),
    ("abfss", "azure", AZURE),
    ("adl", "azure", AZURE),
    ("postgres", "postgres", POSTGRES),
    ("postgresql", "postgres", POSTGRES),
];

/// The opener of `url`'s scheme, and what follows its colon.
fn opener(url: &str) -> Result<(&'static dyn Opener, &str), StorageUrlError> {
    let unknown = || StorageUrlError::Unknown {
        url: redact_url(url),
    };
    let (scheme, rest) = url.split_once(':').ok_or_else(unknown)?;
    let (_, feature, opener) = SCHEMES
        .iter()
        .find(|(name, _, _)| *name == scheme)
        .ok_or_else(unknown)?;
    let opener = opener.ok_or_else(|| StorageUrlError::NotBuilt {
        url: redact_url(url),
        feature,
    })?;
    Ok((opener, rest))
}

/// An error of opening `url`, keeping `err` as its source.
fn open_error<E: Into<BoxError>>(
    url: &str,
    retryable: bool,
) -> impl FnOnce(E) -> StorageUrlError + '_ {
    move |err| StorageUrlError::Open {
        url: redact_url(url),
        retryable,
        source: err.into(),
    }
}

/// [`open_error`] for a backend's [`StorageError`](infinisheet_event_log::StorageError).
#[cfg_attr(
    not(any(feature = "sqlite", feature = "filesystem", feature = "postgres")),
    allow(dead_code)
)]
fn storage_error(
    url: &str,
) -> impl FnOnce(infinisheet_event_log::StorageError) -> StorageUrlError + '_ {
    move |err| StorageUrlError::Open {
        url: redact_url(url),
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

/// Makes `path`'s directory, if it has one.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn create_parent(url: &str, path: &Path) -> Result<(), StorageUrlError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(open_error(url, false))?;
    }
    Ok(())
}

/// The logs at `url`: `memory:` (this process only), `sqlite:PATH` (one
/// database file, created if missing), `file:DIR` (a directory per log),
/// an object store (`s3://bucket/prefix`, `gs://…`, `az://…`, a prefix per
/// log), a server's (`http://HOST:PORT`) or a PostgreSQL database
/// (`postgres://USER@HOST/DB`, shared by every machine that reaches it).
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
pub async fn open_log_store_with(
    url: &str,
    access: Access,
) -> Result<Arc<dyn LogStore>, StorageUrlError> {
    let (opener, rest) = opener(url)?;
    opener.logs(url, rest, access).await
}

/// The blob store at `url`: `memory:`, `sqlite:PATH#TREE` (a named tree in
/// a database file; `blobs` if no `#TREE`), `file:DIR`, an object store
/// (`s3://bucket/prefix`, `gs://…`, `az://…`) or a server's
/// (`http://HOST:PORT`).
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
pub async fn open_blob_store_with(
    url: &str,
    access: Access,
) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
    let (opener, rest) = opener(url)?;
    opener.blobs(url, rest, access).await
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
    /// Storage from parts a host app built itself (a
    /// [`SqliteDatabase`](crate::sqlite::SqliteDatabase) it opened with
    /// its own options, its own [`LogStore`], any blob store);
    /// `blobs_url` is how messages name the blob store.
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
        let logs = sqlite::database(&logs_url, &db, access).await?;
        let blobs = files::blob_store(&blobs_url, &sheets, access).await?;
        Ok(Storage::new(Arc::new(logs), blobs, &blobs_url))
    }
}
