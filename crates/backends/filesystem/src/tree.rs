//! Directory operations relative to open directory descriptors (`openat`
//! and friends), never following symbolic links, so no name can lead
//! outside the store's root.

use crate::error::os;
use infinisheet_blob_store::{BlobName, StorageError};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Flags for opening a directory on the way: never through a link.
pub(crate) const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// How often a walk retries when directories appear and vanish under it.
const ATTEMPTS: usize = 16;

/// Where a walk down a path ended.
#[derive(Debug)]
pub(crate) enum Walk {
    /// The directory, open.
    Dir(OwnedFd),
    /// Some directory on the way does not exist.
    Missing,
    /// A blob has the name of this directory on the way.
    Blocked(BlobName),
}

/// What a name in a directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    /// A symbolic link or special file: never followed or listed.
    Other,
}

/// The kind of `name` in `dir`, not following links; `None` if absent.
pub(crate) fn kind_at(dir: BorrowedFd<'_>, name: &str) -> Result<Option<Kind>, StorageError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(kind_of(FileType::from_raw_mode(stat.st_mode)))),
        Err(Errno::NOENT) => Ok(None),
        Err(err) => Err(os("inspecting", name, err)),
    }
}

fn kind_of(file_type: FileType) -> Kind {
    match file_type {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        _ => Kind::Other,
    }
}

/// Opens the directories along `path` below `top`, creating missing ones
/// (and syncing each parent, so a new directory survives a crash) if
/// `create`.
pub(crate) fn walk(
    top: BorrowedFd<'_>,
    path: &[BlobName],
    create: bool,
) -> Result<Walk, StorageError> {
    let mut current = rustix::fs::openat(top, ".", DIR, Mode::empty())
        .map_err(|err| os("opening", "the store's root", err))?;
    for name in path {
        let mut attempts = 0;
        current = loop {
            attempts += 1;
            if attempts > ATTEMPTS {
                return Err(StorageError::retryable(
                    crate::error::BACKEND,
                    format!("directory {name} kept appearing and vanishing"),
                ));
            }
            match rustix::fs::openat(&current, name.as_str(), DIR, Mode::empty()) {
                Ok(next) => break next,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&current, name.as_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) => rustix::fs::fsync(&current)
                            .map_err(|err| os("syncing the parent of", name.as_str(), err))?,
                        Err(Errno::EXIST) => {}
                        Err(err) => return Err(os("creating directory", name.as_str(), err)),
                    }
                }
                Err(Errno::NOENT) => return Ok(Walk::Missing),
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    return match kind_at(current.as_fd(), name.as_str())? {
                        Some(Kind::File) => Ok(Walk::Blocked(name.clone())),
                        None => continue,
                        _ => Err(os("opening directory", name.as_str(), Errno::LOOP)),
                    };
                }
                Err(err) => return Err(os("opening directory", name.as_str(), err)),
            }
        };
    }
    Ok(Walk::Dir(current))
}

/// The names in `dir` with their kinds (names that are not UTF-8 are left
/// out: no blob name can reach them).
pub(crate) fn entries(dir: BorrowedFd<'_>) -> Result<Vec<(String, Kind)>, StorageError> {
    let mut listing = Dir::read_from(dir).map_err(|err| os("listing", "a directory", err))?;
    let mut out = Vec::new();
    for entry in &mut listing {
        let entry = entry.map_err(|err| os("listing", "a directory", err))?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => match kind_at(dir, name)? {
                Some(kind) => kind,
                None => continue,
            },
            file_type => kind_of(file_type),
        };
        out.push((name.to_owned(), kind));
    }
    Ok(out)
}

/// Whether a blob (a regular file with a valid name) lies anywhere beneath
/// the directory `name` in `dir`.
pub(crate) fn has_blobs(dir: BorrowedFd<'_>, name: &str) -> Result<bool, StorageError> {
    let sub = match rustix::fs::openat(dir, name, DIR, Mode::empty()) {
        Ok(sub) => sub,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(false),
        Err(err) => return Err(os("opening directory", name, err)),
    };
    for (child, kind) in entries(sub.as_fd())? {
        let found = match kind {
            Kind::File => BlobName::new(child.as_str()).is_ok(),
            Kind::Dir => has_blobs(sub.as_fd(), &child)?,
            Kind::Other => false,
        };
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes `name` from `dir` and, if it is a directory, everything beneath
/// it, without following links. Absent is fine.
pub(crate) fn remove_tree(dir: BorrowedFd<'_>, name: &str) -> Result<(), StorageError> {
    match rustix::fs::openat(dir, name, DIR, Mode::empty()) {
        Ok(sub) => {
            for (child, _) in entries(sub.as_fd())? {
                remove_tree(sub.as_fd(), &child)?;
            }
            match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(err) => Err(os("removing directory", name, err)),
            }
        }
        Err(Errno::NOTDIR | Errno::LOOP) => match rustix::fs::unlinkat(dir, name, AtFlags::empty())
        {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(err) => Err(os("removing", name, err)),
        },
        Err(Errno::NOENT) => Ok(()),
        Err(err) => Err(os("opening directory", name, err)),
    }
}
