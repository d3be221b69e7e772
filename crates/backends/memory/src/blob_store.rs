//! `MemoryBlobStore`: the reference blob store, one ordered map of full
//! paths to blobs; directories are implied by the paths beneath them.

use crate::{BACKEND, lock};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_blob_store::{
    BlobCapabilities, BlobDir, BlobName, BlobStore, Continuation, DirError, EntryKind, ListEntry,
    ListError, ListPage, ReadBlobError, RemoveBlobError, StorageError, WriteBlobError,
};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

/// Default number of names a listing returns per page.
const DEFAULT_PAGE_SIZE: usize = 1000;

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
        Self::with_page_size(DEFAULT_PAGE_SIZE)
    }

    /// An empty store whose listings return at most `page_size` names a page
    /// (at least 1).
    pub fn with_page_size(page_size: usize) -> Self {
        MemoryBlobStore {
            inner: Arc::new(Inner {
                blobs: Mutex::default(),
                page_size: page_size.max(1),
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
        BlobCapabilities::volatile()
    }
}

/// `prefix` followed by `name`: the full path of `name` in the directory
/// whose key prefix is `prefix` (`""` or `"a/b/"`).
fn join(prefix: &str, name: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + name.len());
    key.push_str(prefix);
    key.push_str(name);
    key
}

/// Whether any blob lies beneath the directory path `key`.
fn has_children(blobs: &BTreeMap<String, Bytes>, key: &str) -> bool {
    let lower = format!("{key}/");
    blobs
        .range::<str, _>((Bound::Included(lower.as_str()), Bound::Unbounded))
        .next()
        .is_some_and(|(k, _)| k.starts_with(&lower))
}

impl MemoryBlobDir {
    /// Key prefix of the names in this directory: `""` or `"a/b/"`.
    fn prefix(&self) -> String {
        let mut prefix = String::new();
        for name in &self.path {
            prefix.push_str(name.as_str());
            prefix.push('/');
        }
        prefix
    }

    /// The first directory on the way to this one (or this one) that a blob
    /// has replaced, if any.
    fn blocked_by_blob(&self, blobs: &BTreeMap<String, Bytes>) -> Option<BlobName> {
        let mut key = String::new();
        for name in &self.path {
            key.push_str(name.as_str());
            if blobs.contains_key(&key) {
                return Some(name.clone());
            }
            key.push('/');
        }
        None
    }

    /// Token text: store id, this directory's path and the key the next page
    /// starts at. NUL separates the parts; no name contains it.
    fn token(&self, resume: &str) -> Continuation {
        Continuation::from(format!(
            "{:016x}\0{}\0{}",
            self.inner.id,
            self.prefix(),
            resume
        ))
    }

    fn resume_key(&self, token: &Continuation, prefix: &str) -> Result<String, ListError> {
        let mut parts = token.as_str().splitn(3, '\0');
        let (Some(id), Some(path), Some(resume)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ListError::NoContinuation);
        };
        if id != format!("{:016x}", self.inner.id) || path != prefix || !resume.starts_with(prefix)
        {
            return Err(ListError::NoContinuation);
        }
        Ok(resume.to_owned())
    }
}

#[async_trait]
impl BlobDir for MemoryBlobDir {
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        let key = join(&self.prefix(), name.as_str());
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
        let key = join(&self.prefix(), name.as_str());
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
        let key = join(&self.prefix(), name.as_str());
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
        let key = join(&self.prefix(), name.as_str());
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
        let prefix = self.prefix();
        let lower = match continuation {
            None => prefix.clone(),
            Some(token) => self.resume_key(token, &prefix)?,
        };
        let blobs = lock(&self.inner.blobs);
        let mut entries: Vec<ListEntry> = Vec::new();
        let mut range = blobs.range::<str, _>((Bound::Included(lower.as_str()), Bound::Unbounded));
        let mut next_lower: Option<String> = None;
        // Each child is a contiguous run of keys: the blob `p/name` or the
        // keys under `p/name/`. After a child, resume at the first key past
        // its run.
        while let Some((key, _)) = range.next() {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            let (child, kind, resume) = match rest.split_once('/') {
                None => (rest, EntryKind::Blob, format!("{key}\0")),
                // `0` follows `/`, so `p/name0` sorts after every `p/name/...`.
                Some((dir, _)) => (dir, EntryKind::Dir, format!("{prefix}{dir}0")),
            };
            if entries.len() == self.inner.page_size {
                next_lower = Some(key.clone());
                break;
            }
            let name = BlobName::new(child).map_err(|err| {
                StorageError::new(BACKEND, "a stored path holds an invalid name").with_source(err)
            })?;
            entries.push(ListEntry { name, kind });
            range = blobs.range::<str, _>((Bound::Included(resume.as_str()), Bound::Unbounded));
        }
        Ok(ListPage {
            entries,
            continuation: next_lower.map(|key| self.token(&key)),
        })
    }

    async fn remove_all(&self) -> Result<(), StorageError> {
        let prefix = self.prefix();
        let mut blobs = lock(&self.inner.blobs);
        if prefix.is_empty() {
            blobs.clear();
        } else {
            blobs.retain(|key, _| !key.starts_with(&prefix));
        }
        Ok(())
    }
}
