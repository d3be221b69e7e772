//! Directory syncs shared by the writes that need them (group commit).
//!
//! A blob is durable once its file is synced, renamed into its directory
//! and the directory synced. Writes into one directory at once (a
//! snapshot's tiles, several at a time) each needed their own directory
//! `fsync`, and those queue on the device one behind the other. One
//! `fsync` of a directory makes durable every rename into it that
//! finished before the `fsync` began, so a write whose rename finished
//! asks for a sync and either starts one (covering every rename asked
//! for so far) or waits for the one that covers it.
//!
//! A failed `fsync` covers nobody: each writer it would have covered then
//! syncs through its own descriptor, which reports the failure to it
//! (Linux reports a writeback error once to every descriptor open before
//! it).

use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// The syncs of one store's directories, by the directory's device and
/// inode (a path can name another directory by the time a sync begins;
/// an inode cannot be reused while the writers' descriptors keep it).
#[derive(Debug, Default)]
pub(crate) struct DirSyncs {
    groups: Mutex<HashMap<(u64, u64), Arc<Group>>>,
}

#[derive(Debug, Default)]
struct Group {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Renames asked to be made durable, counted.
    asked: u64,
    /// Every rename up to this count is durable.
    synced: u64,
    /// A sync is running.
    syncing: bool,
    /// Writers in this group: it goes when the last leaves.
    members: usize,
}

impl DirSyncs {
    /// Makes durable a rename into `dir` that has finished: returns once
    /// an `fsync` of `dir` that began after it succeeded, or with the
    /// error of this writer's own `fsync`.
    pub(crate) fn sync(&self, dir: BorrowedFd<'_>) -> Result<(), Errno> {
        let stat = rustix::fs::fstat(dir)?;
        let key = (stat.st_dev, stat.st_ino);
        let group = {
            let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
            let group = Arc::clone(groups.entry(key).or_default());
            group.lock().members += 1;
            group
        };
        let done = group.sync(dir);
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = group.lock();
        state.members -= 1;
        if state.members == 0 {
            groups.remove(&key);
        }
        done
    }
}

impl Group {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sync(&self, dir: BorrowedFd<'_>) -> Result<(), Errno> {
        let mut state = self.lock();
        state.asked += 1;
        let mine = state.asked;
        loop {
            if state.synced >= mine {
                return Ok(());
            }
            if state.syncing {
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // This writer syncs, for every rename asked for so far.
            state.syncing = true;
            let covered = state.asked;
            drop(state);
            let synced = rustix::fs::fsync(dir.as_fd());
            state = self.lock();
            state.syncing = false;
            if synced.is_ok() {
                state.synced = state.synced.max(covered);
            }
            self.changed.notify_all();
            return synced;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_of_one_directory_share_its_syncs_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let syncs = Arc::new(DirSyncs::default());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (syncs, path) = (Arc::clone(&syncs), dir.path().to_owned());
                std::thread::spawn(move || {
                    let fd = std::fs::File::open(&path).unwrap();
                    for k in 0..50 {
                        std::fs::write(path.join(format!("{i}-{k}")), b"x").unwrap();
                        syncs.sync(fd.as_fd()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(syncs.groups.lock().unwrap().is_empty());
    }

    #[test]
    fn a_failed_sync_covers_nobody() {
        let group = Group::default();
        {
            let mut state = group.lock();
            state.asked = 3;
            state.syncing = true;
        }
        // The sync running for the first three fails: it leaves `synced`
        // where it was, so the writer waiting syncs itself.
        let dir = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| group.sync(fd.as_fd()));
            // Let the waiter ask (it then waits on the running sync).
            while group.lock().asked < 4 {
                std::thread::yield_now();
            }
            {
                let mut state = group.lock();
                state.syncing = false;
                group.changed.notify_all();
            }
            waiter.join().unwrap().unwrap();
        });
        let state = group.lock();
        assert_eq!((state.asked, state.synced), (4, 4));
    }
}
