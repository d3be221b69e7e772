//! Push wake-ups from other processes: [`PushChannel`], the state of a
//! backend's channel (PostgreSQL's `LISTEN`, a file watch), and, with the
//! `watch` feature on Linux, [`FileWatch`], the channel of logs kept in
//! local files.

use super::Waiters;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Whether a log's wake-ups from other processes arrive now, for a
/// backend declaring
/// [`wakes_across_processes`](crate::LogCapabilities::wakes_across_processes).
/// A tail waits through [`wait`](PushChannel::wait): its full wait while
/// the channel is up, at most [`POLL_WHILE_DOWN`](PushChannel::POLL_WHILE_DOWN)
/// while it is down, and every tail reads again when it goes up or down
/// (appends made while it was down woke no one).
#[derive(Debug, Default)]
pub struct PushChannel {
    live: AtomicBool,
    changed: Notify,
}

impl PushChannel {
    /// The longest a tail waits between reads while the channel is down.
    pub const POLL_WHILE_DOWN: Duration = Duration::from_millis(500);

    /// A channel that is up.
    pub fn live() -> PushChannel {
        PushChannel {
            live: AtomicBool::new(true),
            changed: Notify::new(),
        }
    }

    /// Records whether wake-ups arrive; a change wakes every waiting tail.
    pub fn set_live(&self, live: bool) {
        if self.live.swap(live, Ordering::AcqRel) != live {
            self.changed.notify_waiters();
        }
    }

    /// Whether wake-ups arrive now.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// [`Waiters::wait`] for a log this channel wakes: returns once woken,
    /// once `ready`, when the channel goes up or down, or after `timeout`
    /// (cut to [`POLL_WHILE_DOWN`](PushChannel::POLL_WHILE_DOWN) while it
    /// is down).
    pub async fn wait<F: Future<Output = bool>>(
        &self,
        waiters: &Waiters,
        ready: F,
        timeout: Duration,
    ) {
        let changed = self.changed.notified();
        let timeout = if self.is_live() {
            timeout
        } else {
            timeout.min(Self::POLL_WHILE_DOWN)
        };
        tokio::select! {
            () = waiters.wait(ready, timeout) => {}
            () = changed => {}
        }
    }
}

impl PushChannel {
    /// [`wait`](PushChannel::wait) for a log whose wake-ups from other
    /// processes come through `shared`, the waiters of a file that serves
    /// many logs (a database of them): such a wake-up may be for another
    /// log, so `ready` is read again and the wait goes on unless this log
    /// has entries at the end waited for. Wake-ups of this log in this
    /// process (`waiters`) end it at once, as a snapshot's news does.
    pub async fn wait_shared<F, R>(
        &self,
        waiters: &Waiters,
        shared: &Waiters,
        ready: R,
        timeout: Duration,
    ) where
        F: Future<Output = bool>,
        R: Fn() -> F,
    {
        let changed = self.changed.notified();
        let timeout = if self.is_live() {
            timeout
        } else {
            timeout.min(Self::POLL_WHILE_DOWN)
        };
        let deadline = tokio::time::Instant::now() + timeout;
        tokio::pin!(changed);
        loop {
            // Registered before `ready` reads, so a wake in between counts.
            let (mine, other) = (waiters.0.notified(), shared.0.notified());
            if ready().await {
                return;
            }
            tokio::select! {
                () = mine => return,
                () = &mut changed => return,
                () = tokio::time::sleep_until(deadline) => return,
                () = other => {}
            }
        }
    }
}

#[cfg(all(feature = "watch", target_os = "linux"))]
pub use watch::{FileWatch, is_local, touch};

/// Push wake-ups for a log kept in local files: its appenders
/// [`touch`](FilePush::touch) one file once an append is visible, and a
/// watch on that file ([`channel`](FilePush::channel)) wakes the tails of
/// every process on the machine that has one. Where files are not local
/// or not watched at all (not Linux, a network file system, the `watch`
/// feature off) [`new`](FilePush::new) gives `None`. The watch is made
/// when a tail first waits, so a process that only appends keeps no
/// watch (nor a thread woken by its own touches); where it cannot be made
/// (inotify's limits reached) the channel is down and this process's
/// tails poll, while its touches still wake the others.
pub struct FilePush {
    #[cfg(all(feature = "watch", target_os = "linux"))]
    file: std::path::PathBuf,
    #[cfg(all(feature = "watch", target_os = "linux"))]
    wake: std::sync::Arc<dyn Fn() + Send + Sync>,
    #[cfg(all(feature = "watch", target_os = "linux"))]
    watch: std::sync::OnceLock<Option<FileWatch>>,
    /// The channel while no watch could be made: down.
    down: PushChannel,
}

impl std::fmt::Debug for FilePush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePush")
            .field("live", &self.channel().is_live())
            .finish_non_exhaustive()
    }
}

impl FilePush {
    /// Wake-ups through `file` (which exists and stays), running `wake`
    /// (which wakes every tail in this process of the logs the file
    /// serves) whenever any process touches it; `None` where files are
    /// not local or not watched.
    #[cfg(all(feature = "watch", target_os = "linux"))]
    pub fn new(
        file: &std::path::Path,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Option<FilePush> {
        let file = std::path::absolute(file).ok()?;
        if !is_local(&file) {
            return None;
        }
        Some(FilePush {
            file,
            wake: std::sync::Arc::new(wake),
            watch: std::sync::OnceLock::new(),
            down: PushChannel::default(),
        })
    }

    /// Wake-ups through `file`: `None`, files are not watched here.
    #[cfg(not(all(feature = "watch", target_os = "linux")))]
    pub fn new(
        _file: &std::path::Path,
        _wake: impl Fn() + Send + Sync + 'static,
    ) -> Option<FilePush> {
        None
    }

    /// What an appender does once its append or publish is visible to
    /// readers: wakes every process's tails. A failure is ignored (the
    /// tails' next poll finds the append).
    pub fn touch(&self) {
        #[cfg(all(feature = "watch", target_os = "linux"))]
        let _ = touch(&self.file);
    }

    /// What this process's tails wait through: the watch, made on first
    /// use (a channel that is down if it cannot be).
    pub fn channel(&self) -> &PushChannel {
        #[cfg(all(feature = "watch", target_os = "linux"))]
        if let Some(watch) = self.watch.get_or_init(|| {
            let wake = self.wake.clone();
            FileWatch::new(&self.file, move || wake()).ok()
        }) {
            return watch.channel();
        }
        &self.down
    }
}

#[cfg(all(feature = "watch", target_os = "linux"))]
mod watch {
    //! One inotify instance per process, read by a thread of its own, with
    //! a watch on each file a log's appenders touch after an append.

    use super::PushChannel;
    use std::collections::HashMap;
    use std::io;
    use std::path::Path;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

    /// A watch on a file every appender of a log touches ([`touch`]) once
    /// an append or a publish is visible to readers: the touch, by any
    /// process on this machine, runs the watch's `wake` on the watcher's
    /// thread. Only attribute changes are watched, so the writes that
    /// come before an append is visible (and a reader's reads) wake no
    /// one.
    ///
    /// Handles on one file share one watch (inotify watches an inode
    /// once): the `wake` of the handle that made it is the one run, so
    /// every handle must pass the same (one that wakes every tail of the
    /// file's logs in the process). The watch lasts as long as a handle
    /// holds it. Its [`channel`](FileWatch::channel) goes down if the
    /// file is deleted or the watcher cannot read its events.
    #[derive(Clone, Debug)]
    pub struct FileWatch(Arc<Watched>);

    struct Watched {
        wd: inotify::WatchDescriptor,
        channel: PushChannel,
        wake: Box<dyn Fn() + Send + Sync>,
    }

    impl std::fmt::Debug for Watched {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Watched")
                .field("wd", &self.wd.get_watch_descriptor_id())
                .field("live", &self.channel.is_live())
                .finish_non_exhaustive()
        }
    }

    /// The process's inotify watches, by descriptor id.
    struct Watcher {
        watches: Mutex<(inotify::Watches, HashMap<i32, Weak<Watched>>)>,
    }

    impl FileWatch {
        /// Watches `file` (which must exist), running `wake` whenever a
        /// process touches it.
        ///
        /// # Errors
        ///
        /// The file cannot be watched: inotify's limits
        /// (`fs.inotify.max_user_watches`, `max_user_instances`), or the
        /// file is gone. The caller's tails then poll.
        pub fn new(file: &Path, wake: impl Fn() + Send + Sync + 'static) -> io::Result<FileWatch> {
            if GONE.load(std::sync::atomic::Ordering::Acquire) {
                return Err(io::Error::other("the file watcher stopped"));
            }
            let watcher = watcher()?;
            let mut guard = watcher
                .watches
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (watches, watched) = &mut *guard;
            let wd = watches.add(file, inotify::WatchMask::ATTRIB)?;
            let id = wd.get_watch_descriptor_id();
            if let Some(existing) = watched.get(&id).and_then(Weak::upgrade) {
                return Ok(FileWatch(existing));
            }
            let made = Arc::new(Watched {
                wd,
                channel: PushChannel::live(),
                wake: Box::new(wake),
            });
            watched.insert(id, Arc::downgrade(&made));
            Ok(FileWatch(made))
        }

        /// Whether touches wake this process's tails now.
        pub fn channel(&self) -> &PushChannel {
            &self.0.channel
        }
    }

    impl Drop for Watched {
        fn drop(&mut self) {
            let Ok(watcher) = watcher() else { return };
            let mut guard = watcher
                .watches
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (watches, watched) = &mut *guard;
            let id = self.wd.get_watch_descriptor_id();
            // Another handle may have watched the file again since the
            // last holder let go: then the watch is its.
            if watched.get(&id).is_some_and(|w| w.strong_count() == 0) {
                watched.remove(&id);
                let _ = watches.remove(self.wd.clone());
            }
        }
    }

    /// What an appender does once its append (or publish) is visible:
    /// sets the times of `file` (the one the log's [`FileWatch`]es watch)
    /// to now, which wakes them. Costs one metadata change, no sync. By
    /// path, not through a descriptor: closing a descriptor of a SQLite
    /// file would drop the process's locks on it.
    ///
    /// # Errors
    ///
    /// The file's times cannot be set; the tails elsewhere then find the
    /// append by their next poll.
    pub fn touch(file: &Path) -> io::Result<()> {
        use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_NOW, utimensat};
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        };
        let times = Timestamps {
            last_access: now,
            last_modification: now,
        };
        utimensat(CWD, file, &times, AtFlags::empty()).map_err(io::Error::from)
    }

    /// Whether `file` is on a local file system, where every process that
    /// writes it runs on this machine and inotify sees its touches: one of
    /// the disk and memory file systems Linux has (and overlayfs, a
    /// container's). Anything else — NFS, SMB, FUSE, 9p, cluster file
    /// systems, a type this list does not know — polls.
    pub fn is_local(file: &Path) -> bool {
        const LOCAL: [u32; 16] = [
            0xEF53,      // ext2, ext3, ext4
            0x5846_5342, // XFS
            0x9123_683E, // Btrfs
            0x0102_1994, // tmpfs
            0x8584_58F6, // ramfs
            0x2FC1_2FC1, // ZFS
            0xF2F5_2010, // F2FS
            0xCA45_1A4E, // bcachefs
            0x794C_7630, // overlayfs
            0x3153_464A, // JFS
            0x5265_4973, // ReiserFS
            0x3434,      // NILFS
            0x4D44,      // FAT
            0x2011_BAB0, // exFAT
            0x7366_746E, // NTFS (ntfs3)
            0xF15F,      // eCryptfs
        ];
        // Magic numbers are 32 bits, whatever the field's width.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        rustix::fs::statfs(file).is_ok_and(|stat| LOCAL.contains(&(stat.f_type as u32)))
    }

    /// Set once the watcher's thread cannot read events any more.
    static GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// The process's watcher, started on first use.
    fn watcher() -> io::Result<&'static Watcher> {
        static WATCHER: OnceLock<Result<Watcher, (io::ErrorKind, String)>> = OnceLock::new();
        match WATCHER.get_or_init(start) {
            Ok(watcher) => Ok(watcher),
            Err((kind, message)) => Err(io::Error::new(*kind, message.clone())),
        }
    }

    fn start() -> Result<Watcher, (io::ErrorKind, String)> {
        let failed = |err: io::Error| (err.kind(), format!("cannot watch files: {err}"));
        let inotify = inotify::Inotify::init().map_err(failed)?;
        let watches = inotify.watches();
        std::thread::Builder::new()
            .name("infinisheet-watch".into())
            .spawn(move || read_events(inotify))
            .map_err(failed)?;
        Ok(Watcher {
            watches: Mutex::new((watches, HashMap::new())),
        })
    }

    /// The watcher's thread: runs the `wake` of each touched file's watch;
    /// every watch's on an overflowed queue (events were dropped); takes
    /// down the channel of a file that is gone, and of every file if the
    /// events cannot be read.
    fn read_events(mut inotify: inotify::Inotify) {
        use inotify::EventMask;
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let events = match inotify.read_events_blocking(&mut buffer) {
                Ok(events) => events,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // No one hears a touch again: new watches are refused
                    // and every tail polls.
                    GONE.store(true, std::sync::atomic::Ordering::Release);
                    for watched in all() {
                        watched.channel.set_live(false);
                    }
                    return;
                }
            };
            let mut woken: Vec<(Arc<Watched>, bool)> = Vec::new();
            let mut overflow = false;
            for event in events {
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    overflow = true;
                    continue;
                }
                let gone = event.mask.contains(EventMask::IGNORED);
                if let Some(watched) = find(event.wd.get_watch_descriptor_id(), gone) {
                    woken.push((watched, gone));
                }
            }
            if overflow {
                woken.extend(all().into_iter().map(|watched| (watched, false)));
            }
            // Outside the lock: the last handle's drop takes it.
            for (watched, gone) in woken {
                if gone {
                    watched.channel.set_live(false);
                }
                // A panicking wake-up must not end the thread every other
                // watch relies on.
                let wake = std::panic::AssertUnwindSafe(|| (watched.wake)());
                let _ = std::panic::catch_unwind(wake);
            }
        }
    }

    /// The live watch `id` names; forgotten if `gone`.
    fn find(id: i32, gone: bool) -> Option<Arc<Watched>> {
        let watcher = watcher().ok()?;
        let mut guard = watcher
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let watched = guard.1.get(&id).and_then(Weak::upgrade);
        if gone {
            guard.1.remove(&id);
        }
        watched
    }

    fn all() -> Vec<Arc<Watched>> {
        let Ok(watcher) = watcher() else {
            return Vec::new();
        };
        let guard = watcher
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        guard.1.values().filter_map(Weak::upgrade).collect()
    }
}
