//! The `BlobStore` and `BlobDir` traits, declared capabilities, and
//! forwarding impls for `Arc<T>` and `Box<T>`.

use crate::{
    BlobName, Continuation, DirError, ListError, ListPage, ReadBlobError, RemoveBlobError,
    WriteBlobError,
};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_storage_error::StorageError;
use std::fmt::Debug;
use std::sync::Arc;

/// Optional guarantees a blob store declares, and the size of its listing
/// pages. The conformance suite skips, and reports loudly, the cases of a
/// guarantee a store does not declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobCapabilities {
    /// Blobs survive dropping every handle and opening the store again.
    pub persistent: bool,
    /// The most names one page of a listing holds: 1 to [`MAX_PAGE`], which
    /// is the default. The conformance suite's listing cases write several
    /// pages' worth of this size (so a store configured with pages of 100
    /// is tested with a tenth of the blobs) and fail a page holding more. A
    /// store that declares more than its pages hold still passes, with
    /// more writes than it needed.
    pub page_size: usize,
}

/// The most names one page of a listing holds, whatever the store.
pub const MAX_PAGE: usize = 1_000;

impl BlobCapabilities {
    /// A store that lives only as long as its handles (the memory backend).
    pub const fn volatile() -> Self {
        BlobCapabilities {
            persistent: false,
            page_size: MAX_PAGE,
        }
    }

    /// A store whose blobs survive reopening.
    pub const fn persistent() -> Self {
        BlobCapabilities {
            persistent: true,
            page_size: MAX_PAGE,
        }
    }

    /// The same capabilities with at most `names` names a listing page
    /// (clamped to 1 to [`MAX_PAGE`]).
    #[must_use]
    pub const fn with_page_size(mut self, names: usize) -> Self {
        self.page_size = if names == 0 {
            1
        } else if names > MAX_PAGE {
            MAX_PAGE
        } else {
            names
        };
        self
    }
}

impl Default for BlobCapabilities {
    /// [`BlobCapabilities::volatile`]: nothing promised beyond the contract.
    fn default() -> Self {
        BlobCapabilities::volatile()
    }
}

/// A store of blobs in a hierarchy of directories.
///
/// Object safe: host apps hold an `Arc<dyn BlobStore>` and mix backends.
///
/// Every handle on a store must agree with every other, however it was
/// opened: a blob written, replaced, removed or turned into a directory
/// through one (another process's, say) is read and listed so through the
/// other — nothing kept per handle (a listing, a name's kind) may hide it.
/// The conformance suite's second-handle cases hold a store to this.
pub trait BlobStore: Send + Sync + Debug + 'static {
    /// The store's root directory. Directories are created on demand, so this
    /// performs no I/O.
    fn root(&self) -> Arc<dyn BlobDir>;

    /// The optional guarantees this store offers.
    fn capabilities(&self) -> BlobCapabilities;
}

/// One directory of a [`BlobStore`].
///
/// A directory exists while some blob lies beneath it; an empty directory is
/// invisible in listings, and writing to it makes it reappear.
/// Conveniences taking `&str` names live in [`BlobDirExt`](crate::BlobDirExt).
#[async_trait]
pub trait BlobDir: Send + Sync + Debug + 'static {
    /// Reads the whole blob `name`.
    ///
    /// # Errors
    ///
    /// * [`ReadBlobError::NotFound`] if there is no such blob.
    /// * [`ReadBlobError::WrongKind`] if `name` is a directory.
    /// * [`ReadBlobError::Storage`] if the storage fails.
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError>;

    /// Creates or replaces the blob `name`, atomically: a reader sees the old
    /// or the new content, never a mix or a part.
    ///
    /// # Errors
    ///
    /// * [`WriteBlobError::WrongKind`] if `name` is a directory, or this
    ///   directory (or one above it) has since been replaced by a blob.
    /// * [`WriteBlobError::Storage`] if the storage fails; the old content, if
    ///   any, is then still in place.
    async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError>;

    /// Removes the blob `name`; `Ok` if it did not exist.
    ///
    /// # Errors
    ///
    /// * [`RemoveBlobError::WrongKind`] if `name` is a directory.
    /// * [`RemoveBlobError::Storage`] if the storage fails.
    async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError>;

    /// The sub-directory `name`, created on demand (it becomes visible once a
    /// blob is written beneath it).
    ///
    /// # Errors
    ///
    /// * [`DirError::WrongKind`] if a blob has that name.
    /// * [`DirError::Storage`] if the storage fails.
    async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError>;

    /// One page of the names of the blobs and directories in this directory,
    /// in no promised order, at most [`BlobCapabilities::page_size`] (at
    /// most [`MAX_PAGE`]) names a page. Pass `None` for the first page and
    /// the returned continuation for the next; replaying a
    /// token gives the same page (if nothing changed meanwhile) or
    /// [`ListError::NoContinuation`]. Names present for the whole listing
    /// are listed exactly once, even while others write.
    ///
    /// # Errors
    ///
    /// * [`ListError::NoContinuation`] if the token was issued by another
    ///   directory or cannot be honoured.
    /// * [`ListError::Storage`] if the storage fails.
    async fn list(&self, continuation: Option<&Continuation>) -> Result<ListPage, ListError>;

    /// Removes this directory and everything beneath it. The handle stays
    /// usable: writing through it creates the directory again.
    ///
    /// # Errors
    ///
    /// [`StorageError`] if the storage fails; part of the tree may then be
    /// gone.
    async fn remove_all(&self) -> Result<(), StorageError>;
}

macro_rules! forward_blob_store {
    ($ty:ty) => {
        impl<T: BlobStore + ?Sized> BlobStore for $ty {
            fn root(&self) -> Arc<dyn BlobDir> {
                (**self).root()
            }

            fn capabilities(&self) -> BlobCapabilities {
                (**self).capabilities()
            }
        }
    };
}

macro_rules! forward_blob_dir {
    ($ty:ty) => {
        #[async_trait]
        impl<T: BlobDir + ?Sized> BlobDir for $ty {
            async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
                (**self).read_blob(name).await
            }

            async fn write_blob(
                &self,
                name: &BlobName,
                content: Bytes,
            ) -> Result<(), WriteBlobError> {
                (**self).write_blob(name, content).await
            }

            async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
                (**self).remove_blob(name).await
            }

            async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError> {
                (**self).dir(name).await
            }

            async fn list(
                &self,
                continuation: Option<&Continuation>,
            ) -> Result<ListPage, ListError> {
                (**self).list(continuation).await
            }

            async fn remove_all(&self) -> Result<(), StorageError> {
                (**self).remove_all().await
            }
        }
    };
}

forward_blob_store!(Arc<T>);
forward_blob_store!(Box<T>);
forward_blob_dir!(Arc<T>);
forward_blob_dir!(Box<T>);
