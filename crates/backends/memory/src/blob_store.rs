//! `MemoryBlobStore`: the reference blob store, one ordered map of full
//! paths to blobs; directories are implied by the paths beneath them.

use crate::{BACKEND, lock};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_blob_store::{
    BlobCapabilities, BlobDir, BlobName, BlobStore, Continuation, DirError, EntryKind, ListError,
    ListPage, MAX_PAGE, ReadBlobError, RemoveBlobError, StorageError, WriteBlobError, raw,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The reference [`BlobStore`]: blobs in memory, clones share them.
///
/// Paths join names with `/`, which no [`BlobName`] contains, so the map's
/// order keeps every directory's contents together.
#[derive(Clone, Debug)]
pub struct MemoryBlobStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    blobs: Mutex<BTreeMap<String, Bytes>>,
    page_size: usize,
    /// Distinguishes this store's continuation tokens from another's.
    id: u64,
}

/// A directory of a [`MemoryBlobStore`].
#[derive(Clone, Debug)]
pub struct MemoryBlobDir {
    inner: Arc<Inner>,
    /// Full path of this directory (`""` for the root), as its names.
    path: Vec<BlobName>,
}

impl MemoryBlobStore {
    /// An empty store whose listings return at most 1,000 names a page.
    pub fn new() -> Self {
        Self::with_page_size(MAX_PAGE)
    }

    /// An empty store whose listings return at most `page_size` names a page
    /// (1 to 1,000).
    pub fn with_page_size(page_size: usize) -> Self {
        MemoryBlobStore {
            inner: Arc::new(Inner {
                blobs: Mutex::default(),
                page_size: page_size.clamp(1, MAX_PAGE),
                id: fastrand::u64(..),
            }),
        }
    }

    /// The root directory as its concrete type.
    pub fn root_dir(&self) -> MemoryBlobDir {
        MemoryBlobDir {
            inner: self.inner.clone(),
            path: Vec::new(),
        }
    }
}

impl Default for MemoryBlobStore {
    fn default() -> Self {
        Self::new()
    }
}

impl BlobStore for MemoryBlobStore {
    fn root(&self) -> Arc<dyn BlobDir> {
        Arc::new(self.root_dir())
    }

    fn capabilities(&self) -> BlobCapabilities {
        BlobCapabilities::volatile().with_page_size(self.inner.page_size)
    }
}

/// Whether any blob lies beneath the directory whose key is `key`.
fn has_children(blobs: &BTreeMap<String, Bytes>, key: &str) -> bool {
    let (lower, upper) = raw::subtree_range(key);
    blobs.range(lower..upper).next().is_some()
}

impl MemoryBlobDir {
    fn key(&self, name: &BlobName) -> String {
        raw::dir_prefix(&self.path) + name.as_str()
    }

    /// The first directory on the way to this one (or this one) that a blob
    /// has replaced, if any.
    fn blocked_by_blob(&self, blobs: &BTreeMap<String, Bytes>) -> Option<BlobName> {
        raw::ancestor_keys(&self.path)
            .find(|(key, _)| blobs.contains_key(key))
            .map(|(_, name)| name.clone())
    }

    /// Scope of this store's continuation tokens.
    fn scope(&self) -> String {
        format!("memory:{:016x}", self.inner.id)
    }
}

#[async_trait]
impl BlobDir for MemoryBlobDir {
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        let key = self.key(name);
        let blobs = lock(&self.inner.blobs);
        if let Some(content) = blobs.get(&key) {
            return Ok(content.clone());
        }
        if has_children(&blobs, &key) {
            return Err(ReadBlobError::WrongKind {
                name: name.clone(),
                found: EntryKind::Dir,
            });
        }
        Err(ReadBlobError::NotFound { name: name.clone() })
    }

    async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError> {
        let key = self.key(name);
        let mut blobs = lock(&self.inner.blobs);
        if let Some(blocker) = self.blocked_by_blob(&blobs) {
            return Err(WriteBlobError::WrongKind {
                name: blocker,
                found: EntryKind::Blob,
            });
        }
        if has_children(&blobs, &key) {
            return Err(WriteBlobError::WrongKind {
                name: name.clone(),
                found: EntryKind::Dir,
            });
        }
        blobs.insert(key, content);
        Ok(())
    }

    async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
        let key = self.key(name);
        let mut blobs = lock(&self.inner.blobs);
        if blobs.remove(&key).is_none() && has_children(&blobs, &key) {
            return Err(RemoveBlobError::WrongKind {
                name: name.clone(),
                found: EntryKind::Dir,
            });
        }
        Ok(())
    }

    async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError> {
        let key = self.key(name);
        let blobs = lock(&self.inner.blobs);
        if let Some(blocker) = self.blocked_by_blob(&blobs) {
            return Err(DirError::WrongKind {
                name: blocker,
                found: EntryKind::Blob,
            });
        }
        if blobs.contains_key(&key) {
            return Err(DirError::WrongKind {
                name: name.clone(),
                found: EntryKind::Blob,
            });
        }
        let mut path = self.path.clone();
        path.push(name.clone());
        Ok(Arc::new(MemoryBlobDir {
            inner: self.inner.clone(),
            path,
        }))
    }

    async fn list(&self, continuation: Option<&Continuation>) -> Result<ListPage, ListError> {
        let prefix = raw::dir_prefix(&self.path);
        let scope = self.scope();
        let lower = raw::start_key(continuation, &scope, &prefix)?;
        let blobs = lock(&self.inner.blobs);
        raw::list_page(
            &scope,
            &prefix,
            lower,
            self.inner.page_size,
            |lower| {
                Ok(blobs
                    .range(lower.to_owned()..)
                    .next()
                    .map(|(key, _)| key.clone()))
            },
            |key, err| {
                ListError::Storage(
                    StorageError::new(
                        BACKEND,
                        format!("stored path {key:?} holds an invalid name"),
                    )
                    .with_source(err),
                )
            },
        )
    }

    async fn remove_all(&self) -> Result<(), StorageError> {
        let prefix = raw::dir_prefix(&self.path);
        let mut blobs = lock(&self.inner.blobs);
        if prefix.is_empty() {
            blobs.clear();
        } else {
            blobs.retain(|key, _| !key.starts_with(&prefix));
        }
        Ok(())
    }
}
