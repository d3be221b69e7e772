//! `FsEventLog`: a crash-safe event log in a directory of segment files.
//!
//! Every change (a batch of entries, a metadata change, a truncate) is one
//! checksummed frame appended to the newest segment and synced before the
//! call returns. Segments are preallocated with zeros, so an append's sync
//! only writes data. A file lock makes each operation exclusive across
//! processes; each first replays what other processes appended.
//!
//! Memory and open time do not grow with the log: the state holds the
//! bounds, the metadata of the entries that have any, each segment's first
//! id and a sparse index of the segments read (`state.rs`); a checkpoint
//! (`checkpoint.rs`) saves that state every `checkpoint_bytes` and at each
//! new segment, so an open replays only the frames after it.

mod checkpoint;
mod frame;
mod segment;
mod state;

use crate::error::{BACKEND, create_dir_durably, io};
use async_trait::async_trait;
use infinisheet_event_log::raw::blocking;
use infinisheet_event_log::raw::{self, Bounds};
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogCapabilities, LogEntry,
    MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, SequenceId, SetMetadataError,
    StorageError, TruncateError,
};
use state::{Fault, State};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Settings of an [`FsEventLog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsLogOptions {
    /// Size of a new segment file; 8 MiB unless set. A frame larger than
    /// this gets a segment of its own size.
    pub segment_bytes: u64,
    /// The most entries one query returns; 10,000 unless set.
    pub query_page_entries: usize,
    /// A query stops adding entries once their payloads reach this many
    /// bytes (it always returns at least one); 16 MiB unless set.
    pub query_page_bytes: usize,
    /// A checkpoint of the log's state is written once this many bytes of
    /// frames were appended since the last one (and at every new segment),
    /// so an open replays at most about this much; 1 MiB unless set.
    pub checkpoint_bytes: u64,
}

impl Default for FsLogOptions {
    fn default() -> Self {
        FsLogOptions {
            segment_bytes: 8 << 20,
            query_page_entries: 10_000,
            query_page_bytes: 16 << 20,
            checkpoint_bytes: 1 << 20,
        }
    }
}

impl FsLogOptions {
    /// The same options with segments of `bytes` (at least 256; tests use
    /// tiny segments to exercise roll-overs).
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(256);
        self
    }

    /// The same options with a checkpoint every `bytes` bytes of frames
    /// (tests use tiny ones to exercise them).
    #[must_use]
    pub fn checkpoint_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_bytes = bytes;
        self
    }

    /// The same options with at most `entries` entries a query page.
    #[must_use]
    pub fn query_page_entries(mut self, entries: usize) -> Self {
        self.query_page_entries = entries.max(1);
        self
    }
}

/// Error of opening an [`FsEventLog`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenLogError {
    /// A file of the log is damaged: a frame in the middle of the data is
    /// unreadable, entries are missing, or a segment is not a segment. The
    /// files are left as they are.
    #[error("{} is damaged at byte {offset}: {reason}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Where in it the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<Fault> for OpenLogError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Corrupt {
                file,
                offset,
                reason,
            } => OpenLogError::Corrupt {
                file,
                offset,
                reason,
            },
            Fault::Storage(err) => OpenLogError::Storage(err),
        }
    }
}

/// An [`EventLog`] in a directory of segment files: durable, crash-safe,
/// and safe for several processes on one machine. Clones share one state;
/// separate logs (directories) never wait for each other.
///
/// ```
/// use infinisheet_event_log::{EventLogExt, KnownSnapshot, LogEntry};
/// use infinisheet_filesystem::{FsEventLog, FsLogOptions};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let log = FsEventLog::open(dir.path().join("budget.log"), FsLogOptions::default()).await?;
/// log.add_entry(LogEntry::new("A1 = 1"), 0, KnownSnapshot::NotTracked).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct FsEventLog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    options: FsLogOptions,
    /// `<dir>/LOCK`, locked for the length of every operation.
    lock: File,
    /// The waiting tails of this log in this process, shared by every
    /// handle opened on it.
    waiters: Arc<raw::Waiters>,
    /// Wake-ups from other processes through the lock file (`None`: its
    /// tails poll them).
    push: Option<raw::FilePush>,
    state: Mutex<State>,
    temporary: Option<Arc<tempfile::TempDir>>,
}

/// Holds the log's file lock; releases it when dropped.
struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn lock<'a>(file: &'a File, dir: &Path) -> Result<Locked<'a>, StorageError> {
    file.lock()
        .map_err(|err| io("locking", &dir.display().to_string(), err))?;
    Ok(Locked(file))
}

impl FsEventLog {
    /// Opens the log in `dir`, creating the directory and an empty log if
    /// needed, and recovers from any crash: a torn final append is removed.
    ///
    /// # Errors
    ///
    /// * [`OpenLogError::Corrupt`] if a file is damaged other than by a torn
    ///   final append; nothing is changed.
    /// * [`OpenLogError::Storage`] if the files cannot be read or created.
    pub async fn open(dir: impl AsRef<Path>, options: FsLogOptions) -> Result<Self, OpenLogError> {
        let dir = dir.as_ref().to_owned();
        blocking(BACKEND, move || Self::open_sync(dir, options, None)).await?
    }

    /// A log in a new temporary directory, removed when the last handle is
    /// dropped. For tests and samples.
    ///
    /// # Errors
    ///
    /// As [`open`](FsEventLog::open).
    pub async fn temporary(options: FsLogOptions) -> Result<Self, OpenLogError> {
        let dir =
            tempfile::tempdir().map_err(|err| io("creating", "a temporary directory", err))?;
        let path = dir.path().join("log");
        blocking(BACKEND, move || {
            Self::open_sync(path, options, Some(Arc::new(dir)))
        })
        .await?
    }

    /// A second, independent handle on the same log directory, opened as
    /// another process would, while this one stays open.
    ///
    /// # Errors
    ///
    /// As [`open`](FsEventLog::open).
    pub async fn open_again(&self) -> Result<Self, OpenLogError> {
        let (dir, options, temporary) = (
            self.shared.dir.clone(),
            self.shared.options,
            self.shared.temporary.clone(),
        );
        blocking(BACKEND, move || Self::open_sync(dir, options, temporary)).await?
    }

    /// The same log opened again from its files, keeping a temporary log's
    /// directory alive.
    ///
    /// # Errors
    ///
    /// As [`open`](FsEventLog::open).
    pub async fn reopen(self) -> Result<Self, OpenLogError> {
        let (dir, options, temporary) = (
            self.shared.dir.clone(),
            self.shared.options,
            self.shared.temporary.clone(),
        );
        drop(self);
        blocking(BACKEND, move || Self::open_sync(dir, options, temporary)).await?
    }

    fn open_sync(
        dir: PathBuf,
        options: FsLogOptions,
        temporary: Option<Arc<tempfile::TempDir>>,
    ) -> Result<Self, OpenLogError> {
        let shown = dir.display().to_string();
        create_dir_durably(&dir)?;
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("LOCK"))
            .map_err(|err| io("opening the lock file of", &shown, err))?;
        let state = {
            let _locked = lock(&lock_file, &dir)?;
            State::load(&dir, options)?
        };
        let waiters = waiters_of(&lock_file, &shown)?;
        let woken = waiters.clone();
        let push = raw::FilePush::new(&dir.join("LOCK"), move || woken.wake());
        Ok(FsEventLog {
            shared: Arc::new(Shared {
                dir,
                options,
                lock: lock_file,
                waiters,
                push,
                state: Mutex::new(state),
                temporary,
            }),
        })
    }

    /// The log's directory.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// Runs `op` on the up-to-date state, holding the log's lock, off the
    /// async runtime.
    async fn locked<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut State) -> Result<T, E> + Send + 'static,
    {
        let shared = self.shared.clone();
        blocking(BACKEND, move || {
            // A panic mid-operation leaves the state as of the last whole
            // change (changes apply only after their frame is durable).
            let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            let _locked = lock(&shared.lock, &shared.dir)?;
            state.catch_up().map_err(StorageError::from)?;
            op(&mut state)
        })
        .await?
    }
}

fn bounds(state: &State) -> Bounds {
    Bounds::new(state.start, state.end)
}

fn newer(state: &State, known: KnownSnapshot) -> Option<infinisheet_event_log::SnapshotValue> {
    // Cheap here: no need to skip the lookup for callers who do not track.
    known.newer(state.latest_snapshot())
}

fn append(
    state: &mut State,
    entries: Vec<LogEntry>,
    seq: SequenceId,
    known: KnownSnapshot,
    token: Option<AppendToken>,
) -> Result<AddEntryValue, AddEntryError> {
    let count = entries.len() as u64;
    if let Err(conflict) = bounds(state).check_append(seq) {
        if let Some(token) = bounds(state).retry_token(seq, count, token) {
            let stored = state.batch_at(seq).map_err(StorageError::from)?;
            let stored = stored.and_then(|(token, count)| Some((token?, count)));
            if raw::is_retry_of(stored, token, count) {
                return Ok(AddEntryValue {
                    last_snapshot: newer(state, known),
                });
            }
        }
        return Err(conflict);
    }
    if !entries.is_empty() {
        let frame = frame::entries_frame(seq, &entries, token).ok_or_else(|| {
            StorageError::new(BACKEND, "the batch is too large for one log frame (4 GiB)")
        })?;
        state.write(&frame)?;
        state.add_entries(entries.into_iter().map(|entry| entry.metadata));
        state.checkpoint_if_due();
    }
    Ok(AddEntryValue {
        last_snapshot: newer(state, known),
    })
}

fn query(
    state: &mut State,
    start: QueryStart,
    end: QueryEnd,
    known: KnownSnapshot,
) -> Result<QueryValue, QueryError> {
    let range = bounds(state)
        .resolve_query::<QueryError>(start, end, || Ok(state.snapshots.last().copied()))?;
    let (max_entries, max_bytes) = (
        state.options.query_page_entries,
        state.options.query_page_bytes,
    );
    let entries = state
        .read(range.start, range.end, max_entries, max_bytes)
        .map_err(StorageError::from)?;
    Ok(range.reply(entries, newer(state, known)))
}

#[async_trait]
impl EventLog for FsEventLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let wake = self.waker();
        self.locked(move |state| {
            let added = append(state, entries, seq, known, token);
            // Here, not after the await: a caller that stops waiting does
            // not stop the append, nor its news.
            if added.is_ok() {
                wake();
            }
            added
        })
        .await
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        self.locked(move |state| query(state, start, end, known))
            .await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        self.locked(|state| Ok(bounds(state))).await
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        let wake = self.waker();
        self.locked(move |state| {
            bounds(state).check_entry(seq)?;
            state.write(&frame::metadata_frame(seq, &update))?;
            state.apply_metadata(seq, update);
            state.checkpoint_if_due();
            // A published snapshot is news to a tail tracking snapshots.
            wake();
            Ok(())
        })
        .await
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.locked(move |state| {
            bounds(state).check_truncate(start)?;
            if start > state.start {
                state.write(&frame::truncate_frame(start))?;
                let dead = state.apply_truncate(start);
                state.delete_segments(dead);
                state.checkpoint_if_due();
            }
            Ok(())
        })
        .await
    }

    /// Pushing where the lock file can be watched (a local file system on
    /// Linux): appends from every process on the machine wake the tails.
    fn capabilities(&self) -> LogCapabilities {
        if self.shared.push.is_some() {
            LogCapabilities::persistent().pushing()
        } else {
            LogCapabilities::persistent().waking()
        }
    }

    /// Returns when a handle of this log appends or publishes (in any
    /// process on the machine, where the lock file is watched; else in
    /// this one), when entries at `end` are there already, or after
    /// `timeout`.
    async fn wait_for_entries(&self, end: SequenceId, timeout: Duration) {
        let ready = async { self.bounds().await.is_ok_and(|bounds| bounds.end > end) };
        match &self.shared.push {
            Some(push) => {
                push.channel()
                    .wait(&self.shared.waiters, ready, timeout)
                    .await
            }
            None => self.shared.waiters.wait(ready, timeout).await,
        }
    }
}

impl FsEventLog {
    /// What wakes the tails of this log once a change is durable: in this
    /// process at once, and, where the lock file is local, in every other
    /// (by touching it; a woken tail waits for the lock, so it reads the
    /// change).
    fn waker(&self) -> impl FnOnce() + Send + 'static {
        let shared = self.shared.clone();
        move || {
            shared.waiters.wake();
            if let Some(push) = &shared.push {
                push.touch();
            }
        }
    }
}

/// The waiters of the log whose lock file is `lock`, one per log in this
/// process: handles opened apart (`FileLogs` opens one per call) find the
/// same one by the lock file's device and inode, whatever path named it.
fn waiters_of(lock: &File, shown: &str) -> Result<Arc<raw::Waiters>, OpenLogError> {
    use std::os::unix::fs::MetadataExt;
    static WAITERS: std::sync::LazyLock<raw::WaiterRegistry<(u64, u64)>> =
        std::sync::LazyLock::new(Default::default);
    let meta = lock
        .metadata()
        .map_err(|err| io("reading the lock file of", shown, err))?;
    Ok(WAITERS.get((meta.dev(), meta.ino())))
}
