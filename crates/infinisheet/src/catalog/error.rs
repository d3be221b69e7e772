//! The errors of catalog operations.

use super::{FOLDER_MARKER, SHEET_METADATA};
use crate::BoxError;
use infinisheet_event_log::LogStoreError;

/// Error of a catalog operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A path is not a sequence of valid names separated by `/`.
    #[error("{path:?} is not a valid path: {reason}")]
    InvalidPath {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing is at the path.
    #[error("{path} does not exist")]
    NotFound {
        /// The path.
        path: String,
    },
    /// Something is at the path already.
    #[error("{path} already exists")]
    AlreadyExists {
        /// The path.
        path: String,
    },
    /// A sheet is where a folder is needed.
    #[error("{path} is a sheet, not a folder")]
    NotAFolder {
        /// The path.
        path: String,
    },
    /// A folder is where a sheet is needed.
    #[error("{path} is a folder, not a sheet")]
    NotASheet {
        /// The path.
        path: String,
    },
    /// A directory holds neither a sheet's metadata nor a folder's marker:
    /// the catalog did not make it (or a sheet lost its metadata), so it
    /// removes nothing there.
    #[error(
        "{path} is neither a sheet nor a folder of this catalog (it holds neither \
         {SHEET_METADATA} nor {FOLDER_MARKER}); nothing was removed"
    )]
    NotCatalogItem {
        /// The path.
        path: String,
    },
    /// A folder to remove holds sheets or folders.
    #[error("folder {path} is not empty")]
    NotEmpty {
        /// The path.
        path: String,
    },
    /// A sheet's metadata is missing or cannot be read.
    #[error("sheet {path} has bad metadata: {reason}")]
    BadMetadata {
        /// The sheet's path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A sheet's log is in a backend this catalog's storage is not.
    #[error(
        "sheet {path} keeps its log in a {backend:?} store; this catalog's logs are in {available}"
    )]
    UnknownBackend {
        /// The sheet's path.
        path: String,
        /// The backend its metadata names.
        backend: String,
        /// The catalog's log store.
        available: String,
    },
    /// A sheet opened earlier is no longer at its path: it was removed or
    /// moved, or another sheet took its name ([`CatalogSheet::confirm`]).
    ///
    /// [`CatalogSheet::confirm`]: crate::CatalogSheet::confirm
    #[error("{}", if *replaced {
        format!("the sheet opened at {path} was replaced: another sheet has that name now")
    } else {
        format!("the sheet opened at {path} is no longer there: it was removed or moved")
    })]
    Stale {
        /// The path it was opened at.
        path: String,
        /// Whether another sheet is at the path now (else nothing is, or a
        /// folder).
        replaced: bool,
    },
    /// The sheet's log could not be opened, created or cleared.
    #[error(transparent)]
    Log(#[from] LogStoreError),
    /// The blob store failed, or the sheet could not be created in its
    /// log (the source says how).
    #[error("{path}")]
    Storage {
        /// The path being worked on.
        path: String,
        /// Whether trying again may help.
        retryable: bool,
        /// The blob store's, engine's or encoder's error.
        source: BoxError,
    },
}

impl CatalogError {
    /// Whether trying again may help: the storage failed in a way that may
    /// pass (a busy database, a throttled or unreachable server).
    pub fn is_retryable(&self) -> bool {
        match self {
            CatalogError::Storage { retryable, .. } => *retryable,
            CatalogError::Log(err) => err.is_retryable(),
            _ => false,
        }
    }

    /// Whether nothing is at the path, or the sheet's log does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            CatalogError::NotFound { .. } => true,
            CatalogError::Log(err) => err.is_not_found(),
            _ => false,
        }
    }
}

/// An error the catalog keeps as the source of [`CatalogError::Storage`],
/// with whether trying again may help.
pub(crate) trait Failure: std::error::Error + Send + Sync + 'static {
    fn retryable(&self) -> bool;
}

macro_rules! failure {
    ($($ty:ty),*) => {$(
        impl Failure for $ty {
            fn retryable(&self) -> bool {
                self.is_retryable()
            }
        }
    )*};
}

failure!(
    infinisheet_event_log::QueryError,
    infinisheet_event_log::AddEntryError,
    infinisheet_blob_store::ReadBlobError,
    infinisheet_blob_store::WriteBlobError,
    infinisheet_blob_store::RemoveBlobError,
    infinisheet_blob_store::DirError,
    infinisheet_blob_store::ListError,
    infinisheet_blob_store::StorageError,
    infinisheet_engine::CreateError
);

impl Failure for serde_json::Error {
    fn retryable(&self) -> bool {
        false
    }
}
