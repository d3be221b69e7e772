//! `ObjectStoreBlobStore`: the blob hierarchy as keys under a prefix. A
//! directory is a key prefix ending in `/`, a blob one object; listing asks
//! the store for one level at a time (by delimiter). Writes are single PUTs,
//! so a reader sees the old or the new blob, never a mix.

use crate::error::{is_lost_race, is_not_found, is_unsupported, storage};
use crate::keys::{add_children, join_part, key_part};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use infinisheet_blob_store::{
    BlobCapabilities, BlobDir, BlobName, BlobStore, Continuation, DirError, EntryKind, ListEntry,
    ListError, ListPage, MAX_PAGE, ReadBlobError, RemoveBlobError, StorageError, WriteBlobError,
    raw,
};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Scope of this backend's continuation tokens.
const TOKEN_SCOPE: &str = "object-store";

/// A [`BlobStore`] over any [`ObjectStore`], under a key prefix.
///
/// A blob `a/b/c` is the object `<prefix>/a/b/c`; a name holding a
/// character `object_store` reserves (`%`, `#`, `*` and a few others) is
/// percent-encoded, so every valid [`BlobName`] round-trips. Clones share
/// the store; handles on other machines see the same blobs.
///
/// Over `LocalFileSystem`, build the store `with_automatic_cleanup(true)`:
/// otherwise a directory emptied by removals stays on disk, shows in
/// listings and blocks a blob of its name.
///
/// Object stores have no transaction spanning two keys: the wrong-kind checks
/// (a blob where a directory is, or the other way round) are made with a
/// listing or a HEAD beside the write, so two clients racing to create a blob
/// and a directory of the same name may both succeed. A directory handle
/// rewrites a blob it last wrote or read with one PUT conditional on the
/// blob's ETag (still that blob, so not a directory) and no listing; where
/// the store has no conditional replace, or the blob changed, the write
/// takes the checked path.
///
/// ```
/// # tokio_test_block_on(async {
/// use infinisheet_blob_store::{BlobDirExt, BlobStore};
/// use infinisheet_object_store::ObjectStoreBlobStore;
/// use object_store::memory::InMemory;
/// use std::sync::Arc;
///
/// let blobs = ObjectStoreBlobStore::new(Arc::new(InMemory::new()), "sheets".into());
/// blobs.root().write("hello", "world").await.unwrap();
/// assert_eq!(blobs.root().read("hello").await.unwrap(), "world");
/// # });
/// # fn tokio_test_block_on(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ObjectStoreBlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    page_size: usize,
    no_conditional_replace: Arc<AtomicBool>,
    lister: Option<Lister>,
}

impl ObjectStoreBlobStore {
    /// The blob store under `prefix` of `store` (the empty path for the
    /// whole store).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        ObjectStoreBlobStore {
            store,
            prefix,
            page_size: MAX_PAGE,
            no_conditional_replace: Arc::default(),
            lister: None,
        }
    }

    /// The same store, listing directories a page at a time through
    /// `lister` (the same store's paginated listing: `AmazonS3`,
    /// `GoogleCloudStorage` and `MicrosoftAzure` offer one): each page of
    /// names is one listing request, with the store's own page token in the
    /// continuation. Without it, a listing reads the whole directory level
    /// when its first page is asked for and serves the rest from that.
    #[must_use]
    pub fn with_paginated_listing(mut self, lister: Arc<dyn PaginatedListStore>) -> Self {
        self.lister = Some(Lister(lister));
        self
    }

    /// The same store, listing at most `page_size` names a page (1 to
    /// 1,000). The default is 1,000.
    #[must_use]
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.clamp(1, MAX_PAGE);
        self
    }

    /// The key prefix the store's blobs live under.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The underlying object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}

impl BlobStore for ObjectStoreBlobStore {
    fn root(&self) -> Arc<dyn BlobDir> {
        Arc::new(ObjectStoreBlobDir {
            store: self.store.clone(),
            prefix: self.prefix.clone(),
            page_size: self.page_size,
            listing: Mutex::default(),
            known_blobs: Mutex::default(),
            no_conditional_replace: self.no_conditional_replace.clone(),
            ancestors: Arc::default(),
            lister: self.lister.clone(),
        })
    }

    fn capabilities(&self) -> BlobCapabilities {
        BlobCapabilities::persistent().with_page_size(self.page_size)
    }
}

/// A directory of an [`ObjectStoreBlobStore`]: a key prefix.
///
/// With the store's paginated listing
/// ([`ObjectStoreBlobStore::with_paginated_listing`]), each page is one
/// listing request. Without it, listing fetches the whole directory level
/// once (the store pages through it by delimiter) and serves the pages that
/// follow from that one listing, so a long listing costs one pass over the
/// store and its pages are a consistent picture of the directory as it was
/// when the first page was asked for.
#[derive(Debug)]
pub struct ObjectStoreBlobDir {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    page_size: usize,
    /// The latest listing this handle made, for its continuation tokens.
    listing: Mutex<Option<Arc<Listing>>>,
    /// The version of each blob this handle last wrote or read: rewriting
    /// it is one PUT on the condition that it is still that version (so
    /// still a blob), with no listing beside it.
    known_blobs: Mutex<HashMap<BlobName, UpdateVersion>>,
    /// Set once the store refused a conditional replace: it has none.
    no_conditional_replace: Arc<AtomicBool>,
    /// The directories from the root down to this one, by name and key:
    /// a write checks that none of them has become a blob.
    ancestors: Arc<Vec<(BlobName, Path)>>,
    /// The store's paginated listing, if it was given one.
    lister: Option<Lister>,
}

/// A store's paginated listing (the trait object has no `Debug`).
#[derive(Clone)]
struct Lister(Arc<dyn PaginatedListStore>);

impl std::fmt::Debug for Lister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaginatedListStore")
    }
}

/// Blob versions a handle keeps before it forgets them all.
const KNOWN_BLOBS: usize = 4096;

/// One listing of a directory: children sorted by full key.
#[derive(Debug)]
struct Listing {
    /// Named in the listing's tokens, so a token finds its listing.
    session: u64,
    children: Vec<(String, ListEntry)>,
}

/// Locks `mutex`, taking over a lock whose holder panicked: the guarded
/// value is a cache, never left half-changed.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The listing session a token names, if it is one of this backend's.
fn token_session(token: &Continuation) -> Option<u64> {
    let scope = token.as_str().split('\0').next()?;
    scope
        .strip_prefix(TOKEN_SCOPE)?
        .strip_prefix('#')?
        .parse()
        .ok()
}

impl ObjectStoreBlobDir {
    fn key(&self, name: &BlobName) -> Path {
        key_part(name, |part| join_part(&self.prefix, &part))
    }

    /// Whether any object lies beneath `key/`: whether `key` is a directory.
    /// The first directory on the way to this one that is a blob now (a
    /// blob written over its name after this handle was made), if any: one
    /// HEAD per level, all at once.
    async fn blob_ancestor(&self) -> Result<Option<BlobName>, StorageError> {
        let heads = self.ancestors.iter().map(|(_, key)| self.store.head(key));
        for ((name, key), found) in self
            .ancestors
            .iter()
            .zip(futures::future::join_all(heads).await)
        {
            match found {
                Ok(_) => return Ok(Some(name.clone())),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(storage("looking up", key, err)),
            }
        }
        Ok(None)
    }

    async fn is_dir(&self, key: &Path) -> Result<bool, StorageError> {
        if let Some(Lister(lister)) = &self.lister {
            // One key is enough to know: one request for at most one key.
            let options = PaginatedListOptions {
                max_keys: Some(1),
                ..PaginatedListOptions::default()
            };
            return match lister
                .list_paginated(Some(&format!("{key}/")), options)
                .await
            {
                Ok(found) => Ok(
                    !found.result.objects.is_empty() || !found.result.common_prefixes.is_empty()
                ),
                Err(err) if is_not_found(&err) => Ok(false),
                Err(err) => Err(storage("listing beneath", key, err)),
            };
        }
        // The first key of the listing only: its first request.
        match self.store.list(Some(key)).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            // Nothing beneath a path that runs through a file.
            Some(Err(err)) if is_not_found(&err) => Ok(false),
            Some(Err(err)) => Err(storage("listing beneath", key, err)),
        }
    }

    /// Lists the directory from the store (every child, one level deep) and
    /// keeps the listing for the pages that follow.
    async fn fresh_listing(&self) -> Result<Arc<Listing>, StorageError> {
        let mut children: Vec<(String, ListEntry)> = Vec::new();
        self.list_levels(vec![(self.prefix.clone(), String::new())], &mut children)
            .await?;
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let listing = Arc::new(Listing {
            session: fastrand::u64(..),
            children,
        });
        *lock(&self.listing) = Some(listing.clone());
        Ok(listing)
    }

    /// Adds to `children` every child of the directories `levels` names,
    /// each as its full key (a directory's with a trailing `/`). A long
    /// name's key runs over parts marked `CHUNK`: those are listed in turn,
    /// one level each, with the chunks so far (`before`) in front of the
    /// name.
    async fn list_levels(
        &self,
        mut levels: Vec<(Path, String)>,
        children: &mut Vec<(String, ListEntry)>,
    ) -> Result<(), StorageError> {
        while let Some((dir, before)) = levels.pop() {
            let found = self
                .store
                .list_with_delimiter(Some(&dir))
                .await
                .map_err(|err| storage("listing", &dir, err))?;
            add_children(found, &before, children, &mut levels)?;
        }
        Ok(())
    }

    /// One page of the directory from the store's paginated listing: one
    /// request (and one more per long name's level in it).
    async fn list_page(
        &self,
        Lister(lister): &Lister,
        continuation: Option<&Continuation>,
    ) -> Result<ListPage, ListError> {
        let token_prefix = self.token_prefix();
        let scope = format!("{TOKEN_SCOPE}#paged");
        let page_token = match continuation {
            None => None,
            Some(token) => {
                let key = raw::decode_token(token, &scope, &token_prefix)
                    .ok_or(ListError::NoContinuation)?;
                Some(key[token_prefix.len()..].to_owned())
            }
        };
        let options = PaginatedListOptions {
            delimiter: Some("/".into()),
            max_keys: Some(self.page_size),
            page_token,
            ..PaginatedListOptions::default()
        };
        let found = lister
            .list_paginated(Some(&token_prefix), options)
            .await
            .map_err(|err| storage("listing", &self.prefix, err))?;
        let mut children = Vec::new();
        let mut levels = Vec::new();
        add_children(found.result, "", &mut children, &mut levels)?;
        self.list_levels(levels, &mut children).await?;
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(ListPage {
            entries: children.into_iter().map(|(_, entry)| entry).collect(),
            continuation: found.page_token.map(|next| {
                raw::encode_token(&scope, &token_prefix, &(token_prefix.clone() + &next))
            }),
        })
    }

    /// The listing of session `session`, if this handle still keeps it.
    fn cached_listing(&self, session: u64) -> Option<Arc<Listing>> {
        lock(&self.listing)
            .as_ref()
            .filter(|listing| listing.session == session)
            .cloned()
    }

    /// Remembers that `name` holds a blob at this version (if the store
    /// gave one).
    fn remember_blob(&self, name: &BlobName, e_tag: Option<String>, version: Option<String>) {
        if e_tag.is_none() && version.is_none() {
            return;
        }
        let mut known = lock(&self.known_blobs);
        if known.len() >= KNOWN_BLOBS {
            known.clear();
        }
        known.insert(name.clone(), UpdateVersion { e_tag, version });
    }

    fn forget_blob(&self, name: &BlobName) {
        lock(&self.known_blobs).remove(name);
    }

    /// Replaces the blob `name` if it is still the version this handle last
    /// saw: `Some` when that settled the write (done, or failed for good),
    /// `None` when the write must take the checked path.
    async fn replace_known(
        &self,
        name: &BlobName,
        key: &Path,
        content: &Bytes,
    ) -> Option<Result<(), WriteBlobError>> {
        if self.no_conditional_replace.load(Ordering::Relaxed) {
            return None;
        }
        let version = lock(&self.known_blobs).get(name).cloned()?;
        let mode = PutMode::Update(version);
        match self
            .store
            .put_opts(key, PutPayload::from(content.clone()), mode.into())
            .await
        {
            Ok(put) => {
                self.remember_blob(name, put.e_tag, put.version);
                Some(Ok(()))
            }
            // Changed or removed since: it may be a directory now.
            Err(err) if is_lost_race(&err) || is_not_found(&err) => None,
            Err(err) if is_unsupported(&err) => {
                self.no_conditional_replace.store(true, Ordering::Relaxed);
                None
            }
            Err(err) => Some(Err(storage("writing", key, err).into())),
        }
    }

    /// The prefix of this directory's keys as text, for tokens.
    fn token_prefix(&self) -> String {
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        }
    }
}

#[async_trait]
impl BlobDir for ObjectStoreBlobDir {
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        let key = self.key(name);
        let err = match self.store.get(&key).await {
            Ok(found) => {
                let (e_tag, version) = (found.meta.e_tag.clone(), found.meta.version.clone());
                match found.bytes().await {
                    Ok(bytes) => {
                        self.remember_blob(name, e_tag, version);
                        return Ok(bytes);
                    }
                    Err(err) => err,
                }
            }
            Err(err) => err,
        };
        if !is_not_found(&err) {
            return Err(storage("reading", &key, err).into());
        }
        if self.is_dir(&key).await? {
            Err(ReadBlobError::WrongKind {
                name: name.clone(),
                found: EntryKind::Dir,
            })
        } else {
            Err(ReadBlobError::NotFound { name: name.clone() })
        }
    }

    async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError> {
        let key = self.key(name);
        if let Some(settled) = self.replace_known(name, &key, &content).await {
            return settled;
        }
        // The kind check runs beside the write rather than before it, so a
        // write costs one round trip; a write that lands on a directory's
        // name is taken back.
        let (written, is_dir, blob_ancestor) = tokio::join!(
            self.store.put(&key, PutPayload::from(content)),
            self.is_dir(&key),
            self.blob_ancestor()
        );
        // A directory on the way that is a blob now, or a directory of this
        // name: the write is taken back. (A file system store refuses a
        // write beneath a file itself.)
        let refused = match (blob_ancestor?, is_dir?) {
            (Some(blocker), _) => Some((blocker, EntryKind::Blob, "beneath a blob")),
            (None, true) => Some((name.clone(), EntryKind::Dir, "over a directory")),
            (None, false) => None,
        };
        if let Some((name, found, place)) = refused {
            if written.is_ok() {
                self.store
                    .delete(&key)
                    .await
                    .or_else(|err| if is_not_found(&err) { Ok(()) } else { Err(err) })
                    .map_err(|err| {
                        storage(&format!("taking back a blob written {place}"), &key, err)
                    })?;
            }
            return Err(WriteBlobError::WrongKind { name, found });
        }
        let put = written.map_err(|err| storage("writing", &key, err))?;
        self.remember_blob(name, put.e_tag, put.version);
        Ok(())
    }

    async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
        self.forget_blob(name);
        let key = self.key(name);
        if self.is_dir(&key).await? {
            return Err(RemoveBlobError::WrongKind {
                name: name.clone(),
                found: EntryKind::Dir,
            });
        }
        match self.store.delete(&key).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(storage("removing", &key, err).into()),
        }
    }

    async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError> {
        let key = self.key(name);
        match self.store.head(&key).await {
            Ok(_) => Err(DirError::WrongKind {
                name: name.clone(),
                found: EntryKind::Blob,
            }),
            Err(err) if is_not_found(&err) => {
                let mut ancestors = Vec::clone(&self.ancestors);
                ancestors.push((name.clone(), key.clone()));
                Ok(Arc::new(ObjectStoreBlobDir {
                    store: self.store.clone(),
                    prefix: key,
                    page_size: self.page_size,
                    listing: Mutex::default(),
                    known_blobs: Mutex::default(),
                    no_conditional_replace: self.no_conditional_replace.clone(),
                    ancestors: Arc::new(ancestors),
                    lister: self.lister.clone(),
                }))
            }
            Err(err) => Err(storage("looking up", &key, err).into()),
        }
    }

    async fn list(&self, continuation: Option<&Continuation>) -> Result<ListPage, ListError> {
        if let Some(lister) = &self.lister {
            return self.list_page(lister, continuation).await;
        }
        let token_prefix = self.token_prefix();
        let (listing, start) = match continuation {
            None => (self.fresh_listing().await?, token_prefix.clone()),
            Some(token) => {
                let session = token_session(token).ok_or(ListError::NoContinuation)?;
                let scope = format!("{TOKEN_SCOPE}#{session}");
                let start = raw::decode_token(token, &scope, &token_prefix)
                    .ok_or(ListError::NoContinuation)?;
                match self.cached_listing(session) {
                    Some(listing) => (listing, start),
                    // Another handle's token, or a listing replaced since:
                    // continue in a fresh one from the same place.
                    None => (self.fresh_listing().await?, start),
                }
            }
        };
        let from = listing.children.partition_point(|(key, _)| *key < start);
        let page = &listing.children[from..];
        let continuation = page.get(self.page_size).map(|(key, _)| {
            let scope = format!("{TOKEN_SCOPE}#{}", listing.session);
            raw::encode_token(&scope, &token_prefix, key)
        });
        let entries = page
            .iter()
            .take(self.page_size)
            .map(|(_, entry)| entry.clone())
            .collect();
        Ok(ListPage {
            entries,
            continuation,
        })
    }

    async fn remove_all(&self) -> Result<(), StorageError> {
        lock(&self.known_blobs).clear();
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let locations = self.store.list(prefix).map_ok(|meta| meta.location).boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                // Another client removed it first.
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(storage("removing everything beneath", &self.prefix, err)),
                Ok(_) => {}
            }
        }
        Ok(())
    }
}
