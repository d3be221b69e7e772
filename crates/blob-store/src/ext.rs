//! Conveniences built on the `BlobDir` trait: string names and whole
//! listings, implemented once for every directory.

use crate::{
    BlobDir, BlobName, DirError, ListEntry, ListError, ReadBlobError, RemoveBlobError,
    WriteBlobError,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

/// Conveniences for every [`BlobDir`]: the same operations with `&str` names
/// (an invalid one is an `InvalidName` error) and a whole listing.
#[async_trait]
pub trait BlobDirExt: BlobDir {
    /// [`read_blob`](BlobDir::read_blob) with a string name.
    ///
    /// # Errors
    ///
    /// [`ReadBlobError::InvalidName`] for an invalid name; otherwise as
    /// [`read_blob`](BlobDir::read_blob).
    async fn read(&self, name: &str) -> Result<Bytes, ReadBlobError> {
        self.read_blob(&BlobName::new(name)?).await
    }

    /// [`write_blob`](BlobDir::write_blob) with a string name.
    ///
    /// # Errors
    ///
    /// [`WriteBlobError::InvalidName`] for an invalid name; otherwise as
    /// [`write_blob`](BlobDir::write_blob).
    async fn write(
        &self,
        name: &str,
        content: impl Into<Bytes> + Send,
    ) -> Result<(), WriteBlobError> {
        self.write_blob(&BlobName::new(name)?, content.into()).await
    }

    /// [`remove_blob`](BlobDir::remove_blob) with a string name.
    ///
    /// # Errors
    ///
    /// [`RemoveBlobError::InvalidName`] for an invalid name; otherwise as
    /// [`remove_blob`](BlobDir::remove_blob).
    async fn remove(&self, name: &str) -> Result<(), RemoveBlobError> {
        self.remove_blob(&BlobName::new(name)?).await
    }

    /// [`dir`](BlobDir::dir) with a string name.
    ///
    /// # Errors
    ///
    /// [`DirError::InvalidName`] for an invalid name; otherwise as
    /// [`dir`](BlobDir::dir).
    async fn open_dir(&self, name: &str) -> Result<Arc<dyn BlobDir>, DirError> {
        self.dir(&BlobName::new(name)?).await
    }

    /// Every name in this directory, following continuation tokens to the
    /// last page.
    ///
    /// # Errors
    ///
    /// As [`list`](BlobDir::list).
    async fn list_all(&self) -> Result<Vec<ListEntry>, ListError> {
        let mut page = self.list(None).await?;
        let mut all = std::mem::take(&mut page.entries);
        while let Some(token) = page.continuation.take() {
            page = self.list(Some(&token)).await?;
            all.append(&mut page.entries);
        }
        Ok(all)
    }
}

impl<D: BlobDir + ?Sized> BlobDirExt for D {}
