//! `FsBlobStore`: the blob hierarchy as real directories and files under
//! `<root>/blobs`, each write atomic: a temporary file in `<root>/tmp`,
//! synced, renamed into place, and the directory synced (one sync for the
//! writes into a directory waiting at once: see [`crate::dir_sync`]).

use crate::dir_sync::DirSyncs;
use crate::error::{BACKEND, create_dir_durably, io, os};
use crate::names::{from_disk, on_disk};
use crate::tree::{
    DIR, Kind, Walk, entries, has_blobs, kind_at, remove_empty_tree, remove_tree, walk,
};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_blob_store::{
    BlobCapabilities, BlobDir, BlobName, BlobStore, Continuation, DirError, EntryKind, ListEntry,
    ListError, ListPage, MAX_PAGE, ReadBlobError, RemoveBlobError, StorageError, WriteBlobError,
    raw,
};
use infinisheet_event_log::raw::{blocking, pooled};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How often a write retries when its directory is removed under it.
const WRITE_ATTEMPTS: usize = 8;

/// A [`BlobStore`] in a directory of the file system: `<root>/blobs` holds
/// the blobs as files and directories a person can look at with `ls`;
/// `<root>/tmp` holds writes in progress (never listed; those of dead
/// processes are removed on open). Safe for several processes at once.
///
/// ```
/// use infinisheet_blob_store::{BlobDirExt, BlobStore};
/// use infinisheet_filesystem::FsBlobStore;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let store = FsBlobStore::open(dir.path()).await?;
/// store.root().open_dir("budget").await?.write("metadata", &b"{}"[..]).await?;
/// assert!(dir.path().join("blobs/budget/metadata").is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    inner: Arc<Inner>,
    page_size: usize,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    /// `<root>/blobs`, opened once: every path is walked from here.
    tree: OwnedFd,
    /// `<root>/tmp`, on the same file system, so renames are atomic.
    tmp: OwnedFd,
    /// Scopes continuation tokens to this root.
    scope: String,
    counter: AtomicU64,
    /// Directory syncs, shared by the writes waiting on one.
    syncs: DirSyncs,
    /// Keeps a temporary store's directory alive.
    temporary: Option<Arc<tempfile::TempDir>>,
    /// Opened by [`FsBlobStore::open_read_only`]: every change is refused.
    read_only: bool,
}

impl Inner {
    /// The error of a change through a read-only store, if this is one.
    fn refuse_change(&self) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::new(
                BACKEND,
                format!(
                    "the blob store at {} was opened read-only",
                    self.root.display()
                ),
            ));
        }
        Ok(())
    }
}

impl Inner {
    /// A name in `tmp` no other write uses: this process's id first, so
    /// leftovers of dead processes can be told apart.
    fn temp_name(&self, suffix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.{n}.{:08x}.{suffix}",
            std::process::id(),
            fastrand::u32(..)
        )
    }
}

/// A directory of an [`FsBlobStore`].
#[derive(Clone, Debug)]
pub struct FsBlobDir {
    inner: Arc<Inner>,
    path: Vec<BlobName>,
    page_size: usize,
}

fn open_dir(path: &Path) -> Result<OwnedFd, StorageError> {
    rustix::fs::open(path, DIR, Mode::empty())
        .map_err(|err| os("opening", &path.display().to_string(), err))
}

/// Removes what dead processes left in `tmp`.
fn clean_tmp(tmp: &OwnedFd) -> Result<(), StorageError> {
    let me = std::process::id();
    for (name, _) in entries(tmp.as_fd())? {
        let owner: Option<u32> = name
            .to_str()
            .and_then(|n| n.split('.').next())
            .and_then(|pid| pid.parse().ok());
        let dead = match owner {
            Some(pid) => pid != me && !Path::new(&format!("/proc/{pid}")).exists(),
            None => true,
        };
        if dead {
            remove_tree(tmp.as_fd(), &name)?;
        }
    }
    Ok(())
}

impl FsBlobStore {
    /// Opens the store at `root`, creating it if missing, and removes
    /// unfinished writes of processes that are gone.
    ///
    /// # Errors
    ///
    /// [`StorageError`] if the directories cannot be created or opened.
    pub async fn open(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        let root = root.as_ref().to_owned();
        blocking(BACKEND, move || Self::open_sync(root, None)).await?
    }

    /// A store in a new temporary directory, removed when the last handle is
    /// dropped. For tests and samples.
    ///
    /// # Errors
    ///
    /// [`StorageError`] if the directory cannot be created.
    pub async fn temporary() -> Result<Self, StorageError> {
        let dir =
            tempfile::tempdir().map_err(|err| io("creating", "a temporary directory", err))?;
        let root = dir.path().to_owned();
        blocking(BACKEND, move || Self::open_sync(root, Some(Arc::new(dir)))).await?
    }

    /// A second, independent handle on the same directory, opened as
    /// another process would, while this one stays open.
    ///
    /// # Errors
    ///
    /// As [`open`](FsBlobStore::open).
    pub async fn open_again(&self) -> Result<Self, StorageError> {
        let (root, temporary) = (self.inner.root.clone(), self.inner.temporary.clone());
        blocking(BACKEND, move || Self::open_sync(root, temporary)).await?
    }

    /// The same store opened again (a new handle on the same directory),
    /// keeping a temporary store's directory alive.
    ///
    /// # Errors
    ///
    /// As [`open`](FsBlobStore::open).
    pub async fn reopen(self) -> Result<Self, StorageError> {
        let (root, temporary) = (self.inner.root.clone(), self.inner.temporary.clone());
        drop(self);
        blocking(BACKEND, move || Self::open_sync(root, temporary)).await?
    }

    /// Opens an existing store for reading only: creates nothing (not even
    /// `tmp`), cleans nothing, and works in directories the process may
    /// not write to. Every write and removal through it fails with a
    /// storage error.
    ///
    /// # Errors
    ///
    /// [`StorageError`] if there is no store at `root` (no `blobs`
    /// directory) or it cannot be opened.
    pub async fn open_read_only(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        let root = root.as_ref().to_owned();
        blocking(BACKEND, move || {
            if !root.join("blobs").is_dir() {
                return Err(StorageError::new(
                    BACKEND,
                    format!("there is no blob store at {}", root.display()),
                ));
            }
            let tree = open_dir(&root.join("blobs"))?;
            // Never written through: changes are refused first.
            let tmp = open_dir(&root.join("blobs"))?;
            Ok(Self::from_parts(root, tree, tmp, None, true))
        })
        .await?
    }

    fn from_parts(
        root: PathBuf,
        tree: OwnedFd,
        tmp: OwnedFd,
        temporary: Option<Arc<tempfile::TempDir>>,
        read_only: bool,
    ) -> Self {
        let scope = format!(
            "fs:{}",
            std::fs::canonicalize(&root)
                .unwrap_or_else(|_| root.clone())
                .display()
        );
        FsBlobStore {
            inner: Arc::new(Inner {
                root,
                tree,
                tmp,
                scope,
                counter: AtomicU64::new(0),
                syncs: DirSyncs::default(),
                temporary,
                read_only,
            }),
            page_size: MAX_PAGE,
        }
    }

    fn open_sync(
        root: PathBuf,
        temporary: Option<Arc<tempfile::TempDir>>,
    ) -> Result<Self, StorageError> {
        for sub in ["blobs", "tmp"] {
            create_dir_durably(&root.join(sub))?;
        }
        let tree = open_dir(&root.join("blobs"))?;
        let tmp = open_dir(&root.join("tmp"))?;
        clean_tmp(&tmp)?;
        Ok(Self::from_parts(root, tree, tmp, temporary, false))
    }

    /// The store's root directory.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// The same store with at most `names` names a listing page (1 to
    /// 1,000; 1,000 unless set).
    #[must_use]
    pub fn with_page_size(mut self, names: usize) -> Self {
        self.page_size = names.clamp(1, MAX_PAGE);
        self
    }
}

impl BlobStore for FsBlobStore {
    fn root(&self) -> Arc<dyn BlobDir> {
        Arc::new(FsBlobDir {
            inner: self.inner.clone(),
            path: Vec::new(),
            page_size: self.page_size,
        })
    }

    fn capabilities(&self) -> BlobCapabilities {
        BlobCapabilities::persistent().with_page_size(self.page_size)
    }
}

fn read_file(fd: OwnedFd, name: &BlobName) -> Result<Option<Bytes>, StorageError> {
    let mut file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|err| io("inspecting", name.as_str(), err))?;
    if meta.is_dir() {
        return Ok(None);
    }
    if !meta.is_file() {
        return Err(StorageError::new(
            BACKEND,
            format!("{name} is a special file, which the store does not read"),
        ));
    }
    let mut content = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut content)
        .map_err(|err| io("reading", name.as_str(), err))?;
    Ok(Some(Bytes::from(content)))
}

impl FsBlobDir {
    fn read_sync(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        let dir = match walk(self.inner.tree.as_fd(), &self.path, false)? {
            Walk::Dir(dir) => dir,
            Walk::Missing | Walk::Blocked(_) => {
                return Err(ReadBlobError::NotFound { name: name.clone() });
            }
        };
        // NONBLOCK: opening a planted FIFO must not hang.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        match rustix::fs::openat(&dir, &*on_disk(name), flags, Mode::empty()) {
            Ok(fd) => match read_file(fd, name)? {
                Some(content) => Ok(content),
                None if has_blobs(dir.as_fd(), &on_disk(name))? => Err(ReadBlobError::WrongKind {
                    name: name.clone(),
                    found: EntryKind::Dir,
                }),
                None => Err(ReadBlobError::NotFound { name: name.clone() }),
            },
            Err(Errno::NOENT) => Err(ReadBlobError::NotFound { name: name.clone() }),
            Err(err) => Err(os("reading", name.as_str(), err).into()),
        }
    }

    fn write_sync(&self, name: &BlobName, content: &[u8]) -> Result<(), WriteBlobError> {
        let inner = &self.inner;
        inner.refuse_change()?;
        for _ in 0..WRITE_ATTEMPTS {
            let dir = match walk(inner.tree.as_fd(), &self.path, true)? {
                Walk::Dir(dir) => dir,
                Walk::Blocked(blocker) => {
                    return Err(WriteBlobError::WrongKind {
                        name: blocker,
                        found: EntryKind::Blob,
                    });
                }
                Walk::Missing => continue,
            };
            // An empty directory is invisible: the name is free once the
            // empty directories are gone. Anything in them (a blob renamed
            // in meanwhile) stops the removal and is kept.
            if kind_at(dir.as_fd(), &on_disk(name))? == Some(Kind::Dir)
                && !remove_empty_tree(dir.as_fd(), &on_disk(name))?
            {
                return Err(WriteBlobError::WrongKind {
                    name: name.clone(),
                    found: EntryKind::Dir,
                });
            }
            let temp = inner.temp_name("tmp");
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(&inner.tmp, &temp, flags, Mode::from_raw_mode(0o644))
                .map_err(|err| os("creating a temporary file for", name.as_str(), err))?;
            let mut file = File::from(fd);
            let written = file
                .write_all(content)
                .and_then(|()| file.sync_data())
                .map_err(|err| io("writing", name.as_str(), err));
            drop(file);
            let renamed = written.and_then(|()| {
                match rustix::fs::renameat(&inner.tmp, &temp, &dir, &*on_disk(name)) {
                    Ok(()) => Ok(true),
                    // The directory was removed, or a directory took the
                    // name, since the walk: start over.
                    Err(Errno::NOENT | Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST) => Ok(false),
                    Err(err) => Err(os("renaming into place", name.as_str(), err)),
                }
            });
            match renamed {
                Ok(true) => {
                    inner
                        .syncs
                        .sync(dir.as_fd())
                        .map_err(|err| os("syncing the directory of", name.as_str(), err))?;
                    return Ok(());
                }
                Ok(false) => {
                    let _ = rustix::fs::unlinkat(&inner.tmp, &temp, AtFlags::empty());
                }
                Err(err) => {
                    let _ = rustix::fs::unlinkat(&inner.tmp, &temp, AtFlags::empty());
                    return Err(err.into());
                }
            }
        }
        Err(StorageError::retryable(
            BACKEND,
            format!("the directory of {name} kept changing while it was written"),
        )
        .into())
    }

    fn remove_sync(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
        self.inner.refuse_change()?;
        let dir = match walk(self.inner.tree.as_fd(), &self.path, false)? {
            Walk::Dir(dir) => dir,
            Walk::Missing | Walk::Blocked(_) => return Ok(()),
        };
        match kind_at(dir.as_fd(), &on_disk(name))? {
            None => Ok(()),
            Some(Kind::Dir) if has_blobs(dir.as_fd(), &on_disk(name))? => {
                Err(RemoveBlobError::WrongKind {
                    name: name.clone(),
                    found: EntryKind::Dir,
                })
            }
            // An empty directory is no blob: nothing to remove.
            Some(Kind::Dir) => Ok(()),
            Some(Kind::File | Kind::Other) => {
                match rustix::fs::unlinkat(&dir, &*on_disk(name), AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(err) => return Err(os("removing", name.as_str(), err).into()),
                }
                self.inner
                    .syncs
                    .sync(dir.as_fd())
                    .map_err(|err| os("syncing the directory of", name.as_str(), err))?;
                Ok(())
            }
        }
    }

    fn dir_sync(&self, name: &BlobName) -> Result<(), DirError> {
        match walk(self.inner.tree.as_fd(), &self.path, false)? {
            Walk::Blocked(blocker) => Err(DirError::WrongKind {
                name: blocker,
                found: EntryKind::Blob,
            }),
            Walk::Missing => Ok(()),
            Walk::Dir(dir) => match kind_at(dir.as_fd(), &on_disk(name))? {
                Some(Kind::File) => Err(DirError::WrongKind {
                    name: name.clone(),
                    found: EntryKind::Blob,
                }),
                _ => Ok(()),
            },
        }
    }

    fn list_sync(&self, after: Option<String>) -> Result<ListPage, ListError> {
        let prefix = raw::dir_prefix(&self.path);
        let dir = match walk(self.inner.tree.as_fd(), &self.path, false)? {
            Walk::Dir(dir) => dir,
            Walk::Missing | Walk::Blocked(_) => return Ok(ListPage::default()),
        };
        let mut names: Vec<(BlobName, EntryKind)> = Vec::new();
        for (name, kind) in entries(dir.as_fd())? {
            let Some(blob_name) = from_disk(&name) else {
                continue;
            };
            if after
                .as_ref()
                .is_some_and(|first| blob_name.as_str() < first.as_str())
            {
                continue;
            }
            match kind {
                Kind::File => names.push((blob_name, EntryKind::Blob)),
                Kind::Dir if has_blobs(dir.as_fd(), &name)? => {
                    names.push((blob_name, EntryKind::Dir))
                }
                Kind::Dir | Kind::Other => {}
            }
        }
        // Sorted, so a page ends at a name and the next starts after it
        // whatever others write meanwhile.
        names.sort_unstable();
        let continuation = names.get(self.page_size).map(|(next, _)| {
            raw::encode_token(
                &self.inner.scope,
                &prefix,
                &(prefix.clone() + next.as_str()),
            )
        });
        names.truncate(self.page_size);
        Ok(ListPage {
            entries: names
                .into_iter()
                .map(|(name, kind)| ListEntry::new(name, kind))
                .collect(),
            continuation,
        })
    }

    fn remove_all_sync(&self) -> Result<(), StorageError> {
        let inner = &self.inner;
        inner.refuse_change()?;
        let Some((last, parents)) = self.path.split_last() else {
            // The root: empty it, keep it.
            for (name, _) in entries(inner.tree.as_fd())? {
                remove_tree(inner.tree.as_fd(), &name)?;
            }
            return rustix::fs::fsync(&inner.tree).map_err(|err| os("syncing", "the root", err));
        };
        let parent = match walk(inner.tree.as_fd(), parents, false)? {
            Walk::Dir(parent) => parent,
            Walk::Missing | Walk::Blocked(_) => return Ok(()),
        };
        if kind_at(parent.as_fd(), &on_disk(last))? != Some(Kind::Dir) {
            return Ok(());
        }
        // Move the directory out of the tree in one step, then delete it at
        // leisure: a crash leaves it in `tmp`, cleaned on the next open.
        let doomed = inner.temp_name("removed");
        match rustix::fs::renameat(&parent, &*on_disk(last), &inner.tmp, &doomed) {
            Ok(()) => {}
            Err(Errno::NOENT) => return Ok(()),
            Err(err) => return Err(os("removing directory", last.as_str(), err)),
        }
        rustix::fs::fsync(&parent)
            .map_err(|err| os("syncing the parent of", last.as_str(), err))?;
        remove_tree(inner.tmp.as_fd(), std::ffi::OsStr::new(&doomed))
    }
}

#[async_trait]
impl BlobDir for FsBlobDir {
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        let (this, name) = (self.clone(), name.clone());
        pooled(BACKEND, move || this.read_sync(&name)).await?
    }

    async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError> {
        let (this, name) = (self.clone(), name.clone());
        pooled(BACKEND, move || this.write_sync(&name, &content)).await?
    }

    async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
        let (this, name) = (self.clone(), name.clone());
        pooled(BACKEND, move || this.remove_sync(&name)).await?
    }

    async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError> {
        let (this, child) = (self.clone(), name.clone());
        blocking(BACKEND, move || this.dir_sync(&child)).await??;
        let mut path = self.path.clone();
        path.push(name.clone());
        Ok(Arc::new(FsBlobDir {
            inner: self.inner.clone(),
            path,
            page_size: self.page_size,
        }))
    }

    async fn list(&self, continuation: Option<&Continuation>) -> Result<ListPage, ListError> {
        // Names at or after this one (an empty name sorts first).
        let prefix = raw::dir_prefix(&self.path);
        let start = raw::start_key(continuation, &self.inner.scope, &prefix)?;
        let after = Some(start[prefix.len()..].to_owned()).filter(|name| !name.is_empty());
        let this = self.clone();
        blocking(BACKEND, move || this.list_sync(after)).await?
    }

    async fn remove_all(&self) -> Result<(), StorageError> {
        let this = self.clone();
        blocking(BACKEND, move || this.remove_all_sync()).await?
    }
}
