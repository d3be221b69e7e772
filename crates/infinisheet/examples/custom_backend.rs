//! Writing a backend, from an empty file to a green conformance suite.
//!
//! `OneFileLog` is a small persistent event log: one JSON file per log,
//! rewritten whole (to a temporary file, synced, renamed over) on every
//! change, under an exclusive lock on a lock file beside it. It is slow
//! for big logs and simple on purpose; what it shows is what every
//! backend needs:
//!
//! 1. **The trait.** `EventLog` has six methods to write (`append_at`,
//!    `query`, `bounds`, `set_metadata`, `truncate`, `capabilities`); the
//!    conveniences (`add_entry`, `query_all`, `tail`) come with
//!    `EventLogExt`. Implement them under `#[infinisheet::async_trait]`
//!    (without it, six `E0195` lifetime errors). The rules that do not
//!    depend on storage — is this id the end, is this a retry of a batch
//!    that landed, which entries does this query want, which snapshot is
//!    newer — are in `event_log::raw`: call them, and the suite's
//!    expectations hold.
//! 2. **Handles agree.** Every call re-reads the file under the lock, so
//!    a second handle (another process, or a log store that opens one per
//!    call) sees what the first did, and a stale handle's append at a
//!    taken id is a conflict. A log that kept its bounds in memory and
//!    trusted them would pass the single-handle cases and lose edits in a
//!    catalog: the suite's second-handle cases (`open_again`) catch it.
//! 3. **Durable.** `Ok` means on disk: the file is synced before the
//!    rename and the directory after; a crash leaves the old file or the
//!    new, never half of one.
//! 4. **A `LogStore`.** `OneFileLogs` names a log by id in a directory,
//!    checks the id first (`check_log_id`), and hands out a fresh handle
//!    per call — safe, because handles agree.
//! 5. **The suite.** `cargo test --example custom_backend` runs
//!    `event_log_tests!` (with `reopen` and `open_again`) and
//!    `log_store_tests!` on it; `cargo run --example custom_backend` keeps
//!    a catalog's sheet on it.

use infinisheet::event_log::raw::{self, Bounds};
use infinisheet::event_log::{
    AddEntryError, AddEntryValue, AppendToken, EntryMetadata, EventLog, KnownSnapshot,
    LogCapabilities, LogEntry, LogStore, LogStoreError, MetadataUpdate, QueryEnd, QueryError,
    QueryStart, QueryValue, SequenceId, SetMetadataError, SnapshotValue, StorageError,
    TruncateError, check_log_id,
};
use infinisheet::memory::MemoryBlobStore;
use infinisheet::{Catalog, SheetOptions, Storage};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The name in this backend's storage errors.
const BACKEND: &str = "one-file";

/// What the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    start: SequenceId,
    entries: Vec<Stored>,
    /// The token and length of each batch appended with one, by its first
    /// id (kept as long as the entries are).
    tokens: Vec<(SequenceId, u128, u64)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    payload: Vec<u8>,
    snapshot: Option<String>,
    history: Option<String>,
    pending: Option<String>,
}

impl State {
    fn bounds(&self) -> Bounds {
        Bounds::new(self.start, self.start + self.entries.len() as u64)
    }

    fn entry(&self, seq: SequenceId) -> LogEntry {
        let stored = &self.entries[(seq - self.start) as usize];
        LogEntry {
            payload: stored.payload.clone().into(),
            metadata: EntryMetadata {
                snapshot: stored.snapshot.clone(),
                history: stored.history.clone(),
                pending: stored.pending.clone(),
            },
        }
    }

    fn newest_snapshot(&self) -> Option<SnapshotValue> {
        let (offset, stored) = self
            .entries
            .iter()
            .enumerate()
            .rev()
            .find(|(_, e)| e.snapshot.is_some())?;
        Some(SnapshotValue {
            sequence_id: self.start + offset as u64,
            blob_id: stored.snapshot.clone()?,
        })
    }
}

/// One log: its file, and the lock file that orders every handle's calls.
/// A handle holds nothing else (no bounds, no tokens: a stale copy of
/// either would lose edits), so every handle agrees with every other.
/// The lock orders processes on one machine; to share a log across
/// machines, a backend needs the storage's own conditional writes (see
/// the object-store backend).
#[derive(Clone, Debug)]
pub struct OneFileLog {
    path: PathBuf,
    /// A temporary directory kept for as long as a handle is.
    _dir: Option<Arc<tempfile::TempDir>>,
}

/// A failure of the file system while `doing` something to `path`:
/// retryable when trying again may help (interrupted, timed out, out of
/// descriptors for a moment), so the engine retries appends with their
/// tokens; permanent otherwise.
fn failed(doing: &str, path: &Path, err: std::io::Error) -> StorageError {
    use std::io::ErrorKind;
    let message = format!("{doing} {}", path.display());
    let retryable = matches!(
        err.kind(),
        ErrorKind::Interrupted | ErrorKind::TimedOut | ErrorKind::WouldBlock
    ) || err.raw_os_error() == Some(24); // EMFILE
    let error = if retryable {
        StorageError::retryable(BACKEND, message)
    } else {
        StorageError::new(BACKEND, message)
    };
    error.with_source(err)
}

impl OneFileLog {
    /// The log in the file `path` (made on the first change).
    pub fn open(path: impl Into<PathBuf>) -> OneFileLog {
        OneFileLog {
            path: path.into(),
            _dir: None,
        }
    }

    /// A second handle on the same file (as another process would open
    /// it): it holds nothing but the file's name, and the temporary
    /// directory's keep-alive.
    pub fn open_again(&self) -> OneFileLog {
        OneFileLog {
            path: self.path.clone(),
            _dir: self._dir.clone(),
        }
    }

    /// A log in a temporary directory, gone with its last handle.
    pub fn temporary() -> std::io::Result<OneFileLog> {
        let dir = tempfile::tempdir()?;
        Ok(OneFileLog {
            path: dir.path().join("log.json"),
            _dir: Some(Arc::new(dir)),
        })
    }

    /// Runs `change` on the state under the lock, off the async runtime;
    /// writes the state back if it says so.
    async fn locked<T: Send + 'static, E: From<StorageError> + Send + 'static>(
        &self,
        change: impl FnOnce(&mut State) -> Result<(T, bool), E> + Send + 'static,
    ) -> Result<T, E> {
        let path = self.path.clone();
        let run = move || -> Result<T, E> {
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path.with_extension("lock"))
                .map_err(|err| failed("opening the lock of", &path, err))?;
            // Held until `lock` is dropped: every handle, in every
            // process, takes turns.
            lock.lock().map_err(|err| failed("locking", &path, err))?;
            let mut state = match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                    StorageError::corrupt(BACKEND, format!("{} is damaged", path.display()))
                        .with_source(err)
                })?,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => State::default(),
                Err(err) => return Err(failed("reading", &path, err).into()),
            };
            let (value, changed) = change(&mut state)?;
            if changed {
                write_durably(&path, &state)?;
            }
            Ok(value)
        };
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|err| StorageError::new(BACKEND, "a blocking call failed").with_source(err))?
    }
}

/// Writes `state` to a temporary file, syncs it, renames it over `path`
/// and syncs the directory: the file is the old one or the new one.
fn write_durably(path: &Path, state: &State) -> Result<(), StorageError> {
    let bytes = serde_json::to_vec(state).map_err(|err| {
        StorageError::new(BACKEND, format!("encoding {}", path.display())).with_source(err)
    })?;
    let temporary = path.with_extension("tmp");
    let mut file =
        std::fs::File::create(&temporary).map_err(|err| failed("writing", &temporary, err))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|err| failed("writing", &temporary, err))?;
    std::fs::rename(&temporary, path).map_err(|err| failed("replacing", path, err))?;
    // The directory holds the rename: `log.json` alone is in `.`.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| failed("syncing", dir, err))?;
    Ok(())
}

#[infinisheet::async_trait]
impl EventLog for OneFileLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        self.locked(move |state| {
            let count = entries.len() as u64;
            if let Err(conflict) = state.bounds().check_append(seq) {
                // A retry of a batch that landed under this token succeeds
                // without appending it again.
                if let Some(token) = state.bounds().retry_token(seq, count, token) {
                    let stored = state
                        .tokens
                        .iter()
                        .find(|(at, _, _)| *at == seq)
                        .map(|(_, t, n)| (AppendToken::from_u128(*t), *n));
                    if raw::is_retry_of(stored, token, count) {
                        let last_snapshot = known.newer(state.newest_snapshot());
                        return Ok((AddEntryValue { last_snapshot }, false));
                    }
                }
                return Err(conflict);
            }
            if let Some(token) = token.filter(|_| count > 0) {
                state.tokens.push((seq, token.as_u128(), count));
            }
            state.entries.extend(entries.into_iter().map(|e| Stored {
                payload: e.payload.to_vec(),
                snapshot: e.metadata.snapshot,
                history: e.metadata.history,
                pending: e.metadata.pending,
            }));
            let last_snapshot = known.newer(state.newest_snapshot());
            Ok((AddEntryValue { last_snapshot }, count > 0))
        })
        .await
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        self.locked(move |state| {
            let range = state.bounds().resolve_query::<QueryError>(start, end, || {
                Ok(state.newest_snapshot().map(|s| s.sequence_id))
            })?;
            let entries = (range.start..range.page_end(500))
                .map(|seq| state.entry(seq))
                .collect();
            Ok((
                range.reply(entries, known.newer(state.newest_snapshot())),
                false,
            ))
        })
        .await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        self.locked(|state| Ok((state.bounds(), false))).await
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        self.locked(move |state| {
            state.bounds().check_entry(seq)?;
            let mut entry = state.entry(seq);
            update.apply(&mut entry.metadata);
            let stored = &mut state.entries[(seq - state.start) as usize];
            stored.snapshot = entry.metadata.snapshot;
            stored.history = entry.metadata.history;
            stored.pending = entry.metadata.pending;
            Ok(((), true))
        })
        .await
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.locked(move |state| {
            state.bounds().check_truncate(start)?;
            let dropped = (start - state.start) as usize;
            state.entries.drain(..dropped);
            state.tokens.retain(|(at, _, _)| *at >= start);
            state.start = start;
            Ok(((), dropped > 0))
        })
        .await
    }

    fn capabilities(&self) -> LogCapabilities {
        LogCapabilities::persistent()
    }
}

/// Logs by id in a directory, one file each.
#[derive(Clone, Debug)]
pub struct OneFileLogs {
    dir: PathBuf,
    url: String,
    _temporary: Option<Arc<tempfile::TempDir>>,
}

impl OneFileLogs {
    /// The logs in `dir` (made if missing).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<OneFileLogs> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(OneFileLogs {
            url: format!("one-file:{}", dir.display()),
            dir,
            _temporary: None,
        })
    }

    /// Logs in a temporary directory, gone with the store.
    pub fn temporary() -> std::io::Result<OneFileLogs> {
        let dir = tempfile::tempdir()?;
        let logs = OneFileLogs::new(dir.path())?;
        Ok(OneFileLogs {
            _temporary: Some(Arc::new(dir)),
            ..logs
        })
    }
}

#[infinisheet::async_trait]
impl LogStore for OneFileLogs {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        // Before any I/O: an id must never reach outside the directory.
        check_log_id(self, id)?;
        let path = self.dir.join(format!("{id}.json"));
        let log = OneFileLog::open(&path);
        if create {
            // Made now, so the log exists even while empty.
            log.locked(|_| Ok::<_, StorageError>(((), true)))
                .await
                .map_err(|err| LogStoreError::storage(&self.url, id, err))?;
        } else if !path.is_file() {
            return Err(LogStoreError::not_found(&self.url, id));
        }
        Ok(Arc::new(log))
    }
}

// The suite, as a third party's `tests/conformance.rs` has it. Reopening
// and a second handle are new handles on the same file: a clone.
#[cfg(test)]
infinisheet_conformance::event_log_tests!(
    || async { OneFileLog::temporary().unwrap_or_else(|err| panic!("{err}")) },
    // Drop the handle, open the file again.
    reopen = |log: OneFileLog| {
        let again = log.open_again();
        drop(log);
        std::future::ready(again)
    },
    open_again = |log: &OneFileLog| std::future::ready(log.open_again()),
);

#[cfg(test)]
infinisheet_conformance::log_store_tests!(|| async {
    OneFileLogs::temporary().unwrap_or_else(|err| panic!("{err}"))
});

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let logs = Arc::new(OneFileLogs::new(dir.path().join("logs"))?);
    let catalog = Catalog::new(Storage::new(
        logs,
        Arc::new(MemoryBlobStore::new()),
        "memory:",
    ));
    let sheet = catalog
        .create_sheet("guide", SheetOptions::default())
        .await?;
    // Writing goes through a writer (here with its snapshot worker), ended
    // by `finish`; `open` is for reading.
    let writer = sheet.writer(true).await?;
    writer.set("A1", "kept in one file").await?;
    writer.set("B1", 42.0).await?;
    writer.finish().await;
    let reopened = catalog.open_sheet("guide").await?.open().await?;
    let rows = reopened.read("A1:B1".parse()?).await?;
    println!("a sheet on the one-file log: {rows:?}");
    let log = dir
        .path()
        .join("logs")
        .join(format!("{}.json", sheet.metadata().log_id));
    println!(
        "its log: {} ({} bytes)",
        log.display(),
        std::fs::metadata(&log)?.len()
    );
    Ok(())
}
