//! Directory operations relative to open directory descriptors (`openat`
//! and friends), never following symbolic links, so no name can lead
//! outside the store's root.

use crate::error::os;
use crate::names::{from_disk, on_disk};
use infinisheet_blob_store::{BlobName, StorageError};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};

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
pub(crate) fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<Kind>, StorageError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(kind_of(FileType::from_raw_mode(stat.st_mode)))),
        Err(Errno::NOENT) => Ok(None),
        Err(err) => Err(os("inspecting", &name.to_string_lossy(), err)),
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
            let file_name = on_disk(name);
            match rustix::fs::openat(&current, &*file_name, DIR, Mode::empty()) {
                Ok(next) => break next,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&current, &*file_name, Mode::from_raw_mode(0o755)) {
                        Ok(()) => rustix::fs::fsync(&current)
                            .map_err(|err| os("syncing the parent of", name.as_str(), err))?,
                        Err(Errno::EXIST) => {}
                        Err(err) => return Err(os("creating directory", name.as_str(), err)),
                    }
                }
                Err(Errno::NOENT) => return Ok(Walk::Missing),
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    return match kind_at(current.as_fd(), &file_name)? {
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

/// The file names in `dir` with their kinds ([`from_disk`] tells which
/// stand for blob names).
pub(crate) fn entries(dir: BorrowedFd<'_>) -> Result<Vec<(OsString, Kind)>, StorageError> {
    use std::os::unix::ffi::OsStrExt;
    let mut listing = Dir::read_from(dir).map_err(|err| os("listing", "a directory", err))?;
    let mut out = Vec::new();
    for entry in &mut listing {
        let entry = entry.map_err(|err| os("listing", "a directory", err))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
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

/// What a visit of one name asks of a tree walk.
pub(crate) type Flow = std::ops::ControlFlow<()>;

/// One directory on the way down a walk: its identity, to check the way
/// back up, and the names in it still to visit.
struct Level {
    id: (u64, u64),
    name: OsString,
    pending: Vec<(OsString, Kind)>,
}

fn identity(fd: BorrowedFd<'_>) -> Result<(u64, u64), StorageError> {
    let stat = rustix::fs::fstat(fd).map_err(|err| os("inspecting", "a directory", err))?;
    Ok((stat.st_dev, stat.st_ino))
}

/// Walks the tree beneath the directory `name` in `top`, depth first and
/// without recursion: one descriptor open at a time (going back up through
/// `..`, checked to be the directory it came from), so a tree of any depth
/// costs neither stack nor descriptors. `file` is called for each name that
/// is not a directory, with the directory holding it; `left` after each
/// directory's contents, with its parent. Either may stop the walk
/// (`Break`), which the walk returns. A missing `name` is an empty walk.
pub(crate) fn walk_tree(
    top: BorrowedFd<'_>,
    name: &OsStr,
    mut file: impl FnMut(BorrowedFd<'_>, &OsStr, Kind) -> Result<Flow, StorageError>,
    mut left: impl FnMut(BorrowedFd<'_>, &OsStr) -> Result<Flow, StorageError>,
) -> Result<Flow, StorageError> {
    let shown = |name: &OsStr| name.to_string_lossy().into_owned();
    let mut current = match rustix::fs::openat(top, name, DIR, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(Flow::Continue(())),
        Err(err) => return Err(os("opening directory", &shown(name), err)),
    };
    let mut levels = vec![Level {
        id: identity(current.as_fd())?,
        name: name.to_owned(),
        pending: entries(current.as_fd())?,
    }];
    while let Some(level) = levels.last_mut() {
        match level.pending.pop() {
            Some((child, Kind::Dir)) => {
                match rustix::fs::openat(&current, child.as_os_str(), DIR, Mode::empty()) {
                    Ok(sub) => {
                        levels.push(Level {
                            id: identity(sub.as_fd())?,
                            pending: entries(sub.as_fd())?,
                            name: child,
                        });
                        current = sub;
                    }
                    Err(Errno::NOENT) => {}
                    Err(Errno::NOTDIR | Errno::LOOP) => {
                        if file(current.as_fd(), &child, Kind::Other)?.is_break() {
                            return Ok(Flow::Break(()));
                        }
                    }
                    Err(err) => return Err(os("opening directory", &shown(&child), err)),
                }
            }
            Some((child, kind)) => {
                if file(current.as_fd(), &child, kind)?.is_break() {
                    return Ok(Flow::Break(()));
                }
            }
            None => {
                let done = levels.pop().map(|level| level.name).unwrap_or_default();
                let Some(parent) = levels.last() else {
                    drop(current);
                    return left(top, &done);
                };
                let up = rustix::fs::openat(&current, "..", DIR, Mode::empty())
                    .map_err(|err| os("opening the parent of", &shown(&done), err))?;
                if identity(up.as_fd())? != parent.id {
                    return Err(StorageError::retryable(
                        crate::error::BACKEND,
                        format!("directory {} moved while it was walked", shown(&done)),
                    ));
                }
                current = up;
                if left(current.as_fd(), &done)?.is_break() {
                    return Ok(Flow::Break(()));
                }
            }
        }
    }
    Ok(Flow::Continue(()))
}

/// Whether a blob (a regular file with a valid name) lies anywhere beneath
/// the directory `name` in `dir`.
pub(crate) fn has_blobs(dir: BorrowedFd<'_>, name: &OsStr) -> Result<bool, StorageError> {
    let found = walk_tree(
        dir,
        name,
        |_, child, kind| {
            Ok(if kind == Kind::File && from_disk(child).is_some() {
                Flow::Break(())
            } else {
                Flow::Continue(())
            })
        },
        |_, _| Ok(Flow::Continue(())),
    )?;
    Ok(found.is_break())
}

/// Removes `name` from `dir` and, if it is a directory, everything beneath
/// it, without following links. Absent is fine.
pub(crate) fn remove_tree(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), StorageError> {
    let shown = |name: &OsStr| name.to_string_lossy().into_owned();
    match rustix::fs::openat(dir, name, DIR, Mode::empty()) {
        Ok(_) => {
            // The callbacks never stop the walk.
            let _ = walk_tree(
                dir,
                name,
                |parent, child, _| match rustix::fs::unlinkat(parent, child, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => Ok(Flow::Continue(())),
                    Err(err) => Err(os("removing", &shown(child), err)),
                },
                |parent, child| match rustix::fs::unlinkat(parent, child, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => Ok(Flow::Continue(())),
                    Err(err) => Err(os("removing directory", &shown(child), err)),
                },
            )?;
            Ok(())
        }
        Err(Errno::NOTDIR | Errno::LOOP) => match rustix::fs::unlinkat(dir, name, AtFlags::empty())
        {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(err) => Err(os("removing", &shown(name), err)),
        },
        Err(Errno::NOENT) => Ok(()),
        Err(err) => Err(os("opening directory", &shown(name), err)),
    }
}

/// Removes the directory `name` from `dir` if it and every directory
/// beneath it hold nothing else: only empty directories are removed, each
/// with `rmdir`, so a blob that another task or process renames into it
/// meanwhile makes the removal stop (`rmdir` fails with `ENOTEMPTY`) and is
/// never deleted. Returns whether the name is free now.
pub(crate) fn remove_empty_tree(dir: BorrowedFd<'_>, name: &OsStr) -> Result<bool, StorageError> {
    let flow = walk_tree(
        dir,
        name,
        |_, _, _| Ok(Flow::Break(())),
        |parent, child| match rustix::fs::unlinkat(parent, child, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(Flow::Continue(())),
            Err(Errno::NOTEMPTY | Errno::EXIST) => Ok(Flow::Break(())),
            Err(err) => Err(os("removing directory", &child.to_string_lossy(), err)),
        },
    )?;
    Ok(flow.is_continue())
}
