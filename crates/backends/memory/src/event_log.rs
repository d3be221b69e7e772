//! `MemoryEventLog`: the reference event log, a deque under a mutex.

use crate::lock;
use async_trait::async_trait;
use infinisheet_event_log::raw::{self, Bounds};
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogCapabilities, LogEntry,
    MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, SequenceId, SetMetadataError,
    SnapshotValue, StorageError, TruncateError,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Default number of entries a query returns at most.
const DEFAULT_PAGE_SIZE: usize = 1000;

/// The reference [`EventLog`]: entries in memory, clones share them.
///
/// ```
/// use infinisheet_memory::MemoryEventLog;
/// let log = MemoryEventLog::with_page_size(10);
/// let other_client = log.clone(); // sees the same entries
/// # drop(other_client);
/// ```
#[derive(Clone, Debug)]
pub struct MemoryEventLog {
    state: Arc<Mutex<State>>,
    page_size: usize,
    /// Woken on every append and publish, so a tail waits for entries,
    /// not a timer; shared by clones.
    waiters: Arc<raw::Waiters>,
}

#[derive(Debug, Default)]
struct State {
    start: SequenceId,
    entries: VecDeque<LogEntry>,
    /// Ids of entries whose `snapshot` metadata is set.
    snapshots: BTreeSet<SequenceId>,
    /// The token and length of each batch appended with a token, by the id
    /// of its first entry; dropped with its entries on truncate.
    tokens: BTreeMap<SequenceId, (AppendToken, u64)>,
}

impl State {
    fn end(&self) -> SequenceId {
        self.start + self.entries.len() as SequenceId
    }

    fn bounds(&self) -> Bounds {
        Bounds::new(self.start, self.end())
    }

    fn index(&self, seq: SequenceId) -> usize {
        // Callers check `seq` lies in [start, end], which fits in memory.
        (seq - self.start) as usize
    }

    fn latest_snapshot(&self) -> Option<SnapshotValue> {
        let seq = *self.snapshots.last()?;
        let blob_id = self.entries[self.index(seq)].metadata.snapshot.clone()?;
        Some(SnapshotValue {
            sequence_id: seq,
            blob_id,
        })
    }

    fn newer_snapshot(&self, known: KnownSnapshot) -> Option<SnapshotValue> {
        known.newer(self.latest_snapshot())
    }
}

impl MemoryEventLog {
    /// An empty log whose queries return at most 1,000 entries a page.
    pub fn new() -> Self {
        Self::with_page_size(DEFAULT_PAGE_SIZE)
    }

    /// An empty log whose queries return at most `page_size` entries a page
    /// (at least 1).
    pub fn with_page_size(page_size: usize) -> Self {
        MemoryEventLog {
            state: Arc::default(),
            page_size: page_size.max(1),
            waiters: Arc::default(),
        }
    }

    /// The most entries one query returns.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Appends `entries` at `seq` if it is the end, all under one lock; or
    /// succeeds without appending if they are there under `token`.
    fn append(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let mut state = lock(&self.state);
        let count = entries.len() as u64;
        if let Err(conflict) = state.bounds().check_append(seq) {
            if let Some(token) = state.bounds().retry_token(seq, count, token)
                && raw::is_retry_of(state.tokens.get(&seq).copied(), token, count)
            {
                return Ok(AddEntryValue {
                    last_snapshot: state.newer_snapshot(known),
                });
            }
            return Err(conflict);
        }
        if let Some(token) = token.filter(|_| count > 0) {
            state.tokens.insert(seq, (token, count));
        }
        for entry in entries {
            if entry.metadata.snapshot.is_some() {
                let at = state.end();
                state.snapshots.insert(at);
            }
            state.entries.push_back(entry);
        }
        Ok(AddEntryValue {
            last_snapshot: state.newer_snapshot(known),
        })
    }
}

impl Default for MemoryEventLog {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventLog for MemoryEventLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let appended = self.append(entries, seq, known, token);
        if appended.is_ok() {
            self.waiters.wake();
        }
        appended
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let state = lock(&self.state);
        let range = state
            .bounds()
            .resolve_query::<QueryError>(start, end, || Ok(state.snapshots.last().copied()))?;
        let entries = state
            .entries
            .range(state.index(range.start)..state.index(range.page_end(self.page_size)))
            .cloned()
            .collect();
        Ok(range.reply(entries, state.newer_snapshot(known)))
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        Ok(lock(&self.state).bounds())
    }

    /// Returns at the next append (or at once if the log already ends past
    /// `end`), or after `timeout`.
    async fn wait_for_entries(&self, end: SequenceId, timeout: std::time::Duration) {
        let ready = async { lock(&self.state).bounds().end > end };
        self.waiters.wait(ready, timeout).await;
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        {
            let mut state = lock(&self.state);
            state.bounds().check_entry(seq)?;
            let index = state.index(seq);
            let metadata = &mut state.entries[index].metadata;
            update.apply(metadata);
            if metadata.snapshot.is_some() {
                state.snapshots.insert(seq);
            } else {
                state.snapshots.remove(&seq);
            }
        }
        // A published snapshot is news to a tail tracking snapshots.
        self.waiters.wake();
        Ok(())
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        let mut state = lock(&self.state);
        state.bounds().check_truncate(start)?;
        let drop = state.index(start);
        state.entries.drain(..drop);
        state.snapshots = state.snapshots.split_off(&start);
        state.tokens = state.tokens.split_off(&start);
        state.start = start;
        Ok(())
    }

    fn capabilities(&self) -> LogCapabilities {
        LogCapabilities::volatile().waking()
    }
}
