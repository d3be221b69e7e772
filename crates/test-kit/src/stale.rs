//! A log whose handles keep their bounds in memory and trust them.

use infinisheet_event_log::raw::{self, Bounds};
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogCapabilities, LogEntry,
    LogStore, LogStoreError, MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue,
    SequenceId, SetMetadataError, SnapshotValue, StorageError, TruncateError, async_trait,
    check_log_id,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// What the "storage" of one log holds: entries by id (a file per entry,
/// say), the start, and the tokens of batches.
#[derive(Debug, Default)]
struct Stored {
    entries: BTreeMap<SequenceId, LogEntry>,
    start: SequenceId,
    tokens: BTreeMap<SequenceId, (AppendToken, u64)>,
}

type Shared = Arc<Mutex<Stored>>;

fn lock(stored: &Shared) -> std::sync::MutexGuard<'_, Stored> {
    stored.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One handle: the shared storage, and this handle's bounds, read when it
/// was opened and kept up to date by its own calls only.
#[derive(Debug)]
pub struct StaleBoundsLog {
    stored: Shared,
    bounds: Mutex<Bounds>,
}

impl StaleBoundsLog {
    fn open(stored: Shared) -> StaleBoundsLog {
        let bounds = {
            let stored = lock(&stored);
            let end = stored
                .entries
                .keys()
                .next_back()
                .map_or(stored.start, |last| last + 1);
            Bounds::new(stored.start, end.max(stored.start))
        };
        StaleBoundsLog {
            stored,
            bounds: Mutex::new(bounds),
        }
    }

    fn bounds_now(&self) -> Bounds {
        *self.bounds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn newest_snapshot(stored: &Stored, bounds: Bounds) -> Option<SnapshotValue> {
        stored
            .entries
            .range(bounds.start..bounds.end)
            .rev()
            .find_map(|(seq, e)| {
                e.metadata.snapshot.clone().map(|blob_id| SnapshotValue {
                    sequence_id: *seq,
                    blob_id,
                })
            })
    }
}

#[async_trait]
impl EventLog for StaleBoundsLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let mut bounds = self.bounds.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stored = lock(&self.stored);
        let count = entries.len() as u64;
        // The handle's own idea of the end decides: the bug.
        if let Err(conflict) = bounds.check_append(seq) {
            if let Some(token) = bounds.retry_token(seq, count, token)
                && raw::is_retry_of(stored.tokens.get(&seq).copied(), token, count)
            {
                return Ok(AddEntryValue {
                    last_snapshot: known.newer(Self::newest_snapshot(&stored, *bounds)),
                });
            }
            return Err(conflict);
        }
        if let Some(token) = token.filter(|_| count > 0) {
            stored.tokens.insert(seq, (token, count));
        }
        for (at, entry) in (seq..).zip(entries) {
            stored.entries.insert(at, entry);
        }
        bounds.end += count;
        Ok(AddEntryValue {
            last_snapshot: known.newer(Self::newest_snapshot(&stored, *bounds)),
        })
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let bounds = self.bounds_now();
        let stored = lock(&self.stored);
        let range = bounds.resolve_query::<QueryError>(start, end, || {
            Ok(Self::newest_snapshot(&stored, bounds).map(|at| at.sequence_id))
        })?;
        let entries = stored
            .entries
            .range(range.start..range.page_end(1000))
            .map(|(_, e)| e.clone())
            .collect();
        let newest = Self::newest_snapshot(&stored, bounds);
        Ok(range.reply(entries, known.newer(newest)))
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        Ok(self.bounds_now())
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        self.bounds_now().check_entry(seq)?;
        let mut stored = lock(&self.stored);
        if let Some(entry) = stored.entries.get_mut(&seq) {
            update.apply(&mut entry.metadata);
        }
        Ok(())
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        let mut bounds = self.bounds.lock().unwrap_or_else(PoisonError::into_inner);
        bounds.check_truncate(start)?;
        let mut stored = lock(&self.stored);
        stored.entries = stored.entries.split_off(&start);
        stored.tokens = stored.tokens.split_off(&start);
        stored.start = stored.start.max(start);
        bounds.start = start;
        Ok(())
    }

    fn capabilities(&self) -> LogCapabilities {
        LogCapabilities::volatile()
    }
}

/// Logs by id, a fresh [`StaleBoundsLog`] handle per call: what the
/// [`LogStore`] docs allow, and what makes the bug bite in a catalog.
#[derive(Debug, Default)]
pub struct StaleBoundsLogs {
    logs: Mutex<HashMap<String, Shared>>,
}

#[async_trait]
impl LogStore for StaleBoundsLogs {
    fn backend(&self) -> &str {
        "stale-bounds"
    }

    fn url(&self) -> &str {
        "stale-bounds:"
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        check_log_id(self, id)?;
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = match logs.get(id) {
            Some(stored) => stored.clone(),
            None if create => logs.entry(id.to_owned()).or_default().clone(),
            None => return Err(LogStoreError::not_found(self.url(), id)),
        };
        Ok(Arc::new(StaleBoundsLog::open(stored)))
    }
}
