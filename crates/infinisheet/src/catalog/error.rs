//! The errors of catalog operations.

use super::{FOLDER_MARKER, SHEET_METADATA};
use crate::storage::LogStoreError;

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
    /// The sheet's log could not be opened, created or cleared.
    #[error(transparent)]
    Log(#[from] LogStoreError),
    /// The blob store failed.
    #[error("{path}: {message}")]
    Storage {
        /// The path being worked on.
        path: String,
        /// What failed.
        message: String,
    },
}
