//! `FsEventLog`: a crash-safe event log in a directory of segment files.
//!
//! Every change (a batch of entries, a metadata change, a truncate) is one
//! checksummed frame appended to the newest segment and synced before the
//! call returns. Segments are preallocated with zeros, so an append's sync
//! only writes data. A file lock makes each operation exclusive across
//! processes; each first replays what other processes appended.

mod frame;
mod segment;
mod state;

use crate::blocking::blocking;
use crate::error::{BACKEND, create_dir_durably, io};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogCapabilities, LogEntry,
    MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, RangeError, SequenceId,
    SetMetadataError, StorageError, TruncateError,
};
use state::{Fault, State};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

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
}

impl Default for FsLogOptions {
    fn default() -> Self {
        FsLogOptions {
            segment_bytes: 8 << 20,
            query_page_entries: 10_000,
            query_page_bytes: 16 << 20,
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
/// use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry};
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
        blocking(move || Self::open_sync(dir, options, None)).await?
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
        blocking(move || Self::open_sync(path, options, Some(Arc::new(dir)))).await?
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
        blocking(move || Self::open_sync(dir, options, temporary)).await?
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
        Ok(FsEventLog {
            shared: Arc::new(Shared {
                dir,
                options,
                lock: lock_file,
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
        blocking(move || {
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

fn range(state: &State, requested: SequenceId) -> RangeError {
    RangeError {
        requested,
        start: state.start,
        end: state.end,
    }
}

fn newer(state: &State, known: KnownSnapshot) -> Option<infinisheet_event_log::SnapshotValue> {
    if known.is_tracked() {
        known.newer(state.latest_snapshot())
    } else {
        None
    }
}

fn append(
    state: &mut State,
    entries: Vec<LogEntry>,
    seq: SequenceId,
    known: KnownSnapshot,
    token: Option<AppendToken>,
) -> Result<AddEntryValue, AddEntryError> {
    let count = entries.len() as u64;
    if seq != state.end {
        let landed =
            token.is_some_and(|token| count > 0 && state.tokens.get(&seq) == Some(&(token, count)));
        if landed {
            return Ok(AddEntryValue {
                last_snapshot: newer(state, known),
            });
        }
        return Err(AddEntryError::Conflict {
            attempted: seq,
            next: state.end,
        });
    }
    if !entries.is_empty() {
        let (frame, offsets) = frame::entries_frame(seq, &entries, token).ok_or_else(|| {
            StorageError::new(BACKEND, "the batch is too large for one log frame (4 GiB)")
        })?;
        let (segment, at) = state.write(&frame)?;
        if let Some(token) = token {
            state.tokens.insert(seq, (token, count));
        }
        for (entry, offset) in entries.into_iter().zip(offsets) {
            let metadata = (entry.metadata != Default::default()).then(|| Box::new(entry.metadata));
            if metadata.as_ref().is_some_and(|m| m.snapshot.is_some()) {
                state.snapshots.insert(state.end);
            }
            state.slots.push_back(state::Slot {
                segment,
                offset: at + offset as u64,
                len: entry.payload.len() as u32,
                metadata,
            });
            state.end += 1;
        }
    }
    Ok(AddEntryValue {
        last_snapshot: newer(state, known),
    })
}

fn query(
    state: &State,
    start: QueryStart,
    end: QueryEnd,
    known: KnownSnapshot,
) -> Result<QueryValue, QueryError> {
    let start = match start {
        QueryStart::Start => state.start,
        QueryStart::Snapshot => state.snapshots.last().copied().unwrap_or(state.start),
        QueryStart::Id(seq) if seq < state.start || seq > state.end => {
            return Err(range(state, seq).into());
        }
        QueryStart::Id(seq) => seq,
    };
    let wanted = match end {
        QueryEnd::End => state.end,
        QueryEnd::Id(seq) => seq.clamp(start, state.end),
    };
    // How many entries fit the page.
    let first = (start - state.start) as usize;
    let mut count = 0;
    let mut bytes = 0;
    for slot in state.slots.range(first..(wanted - state.start) as usize) {
        if count == state.options.query_page_entries
            || (count > 0 && bytes >= state.options.query_page_bytes)
        {
            break;
        }
        count += 1;
        bytes += slot.len as usize;
    }
    // Read each run of entries in one segment with one read.
    let slots: Vec<_> = state.slots.range(first..first + count).collect();
    let mut entries = Vec::with_capacity(count);
    let mut run_start = 0;
    while run_start < slots.len() {
        let segment = slots[run_start].segment;
        let run_end = slots[run_start..]
            .iter()
            .position(|slot| slot.segment != segment)
            .map_or(slots.len(), |n| run_start + n);
        let run = &slots[run_start..run_end];
        let from = run[0].offset;
        let to = run
            .iter()
            .map(|s| s.offset + u64::from(s.len))
            .max()
            .unwrap_or(from);
        let file = &state.segments.get(&segment).ok_or_else(|| {
            StorageError::new(
                BACKEND,
                format!("segment {segment} of a live entry is missing"),
            )
        })?;
        let mut buffer = vec![0u8; (to - from) as usize];
        file.file
            .read_exact_at(&mut buffer, from)
            .map_err(|err| io("reading", &file.path.display().to_string(), err))?;
        let buffer = Bytes::from(buffer);
        for slot in run {
            let at = (slot.offset - from) as usize;
            entries.push(LogEntry {
                payload: buffer.slice(at..at + slot.len as usize),
                metadata: slot.metadata.as_deref().cloned().unwrap_or_default(),
            });
        }
        run_start = run_end;
    }
    let page_end = start + count as u64;
    Ok(QueryValue {
        start,
        end: page_end,
        entries,
        is_complete: page_end == wanted,
        last_snapshot: newer(state, known),
    })
}

#[async_trait]
impl EventLog for FsEventLog {
    async fn add_entry(
        &self,
        entry: LogEntry,
        seq: SequenceId,
        known: KnownSnapshot,
    ) -> Result<AddEntryValue, AddEntryError> {
        self.locked(move |state| append(state, vec![entry], seq, known, None))
            .await
    }

    async fn add_entries_with_token(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        self.locked(move |state| append(state, entries, seq, known, token))
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

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        self.locked(move |state| {
            if seq < state.start || seq >= state.end {
                return Err(range(state, seq).into());
            }
            state.write(&frame::metadata_frame(seq, &update))?;
            state.apply_metadata(seq, update);
            Ok(())
        })
        .await
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.locked(move |state| {
            if start < state.start || start > state.end {
                return Err(range(state, start).into());
            }
            if start > state.start {
                state.write(&frame::truncate_frame(start))?;
                let dead = state.apply_truncate(start);
                state.delete_segments(dead);
            }
            Ok(())
        })
        .await
    }

    fn capabilities(&self) -> LogCapabilities {
        LogCapabilities::persistent()
    }
}
