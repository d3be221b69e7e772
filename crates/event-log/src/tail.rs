//! Tailing a log: every entry from an id on, first catching up page by page,
//! then live, never skipping or repeating an id.

use crate::{
    EventLog, KnownSnapshot, LogEntry, QueryEnd, QueryError, QueryStart, SequenceId, SnapshotValue,
    StorageError,
};
use std::time::Duration;

/// How a [`Tail`] waits once it has caught up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TailOptions {
    /// The first wait after entries arrived: the latency of noticing the
    /// next entry on a backend that cannot wake the tail itself.
    pub min_wait: Duration,
    /// The longest wait: an idle log is read at most this often.
    pub max_wait: Duration,
    /// The wait between reads of a log that wakes its tails on appends
    /// from anywhere
    /// ([`wakes_across_processes`](crate::LogCapabilities::wakes_across_processes)):
    /// a wake-up ends it at once, so it is only the safety net should one
    /// be lost.
    pub pushed_wait: Duration,
}

impl Default for TailOptions {
    /// 10 ms, doubling while nothing arrives, up to 500 ms; 10 s for a
    /// log that pushes.
    fn default() -> Self {
        TailOptions {
            min_wait: Duration::from_millis(10),
            max_wait: Duration::from_millis(500),
            pushed_wait: Duration::from_secs(10),
        }
    }
}

impl TailOptions {
    /// The same options waiting `min` at first and at most `max`.
    #[must_use]
    pub fn waits(mut self, min: Duration, max: Duration) -> Self {
        self.min_wait = min.max(Duration::from_micros(100));
        self.max_wait = max.max(self.min_wait);
        self
    }

    /// The same options waiting `wait` between reads of a log that pushes
    /// ([`pushed_wait`](TailOptions::pushed_wait)).
    #[must_use]
    pub fn pushed_wait(mut self, wait: Duration) -> Self {
        self.pushed_wait = wait.max(Duration::from_micros(100));
        self
    }
}

/// What [`Tail::next`] gives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailEvent {
    /// The entries `[start, start + entries.len())`, the next ones after
    /// those given before: never a gap, never an id twice.
    Entries {
        /// The id of the first entry.
        start: SequenceId,
        /// The entries, at least one.
        entries: Vec<LogEntry>,
    },
    /// The tail has given every entry before `end`, the log's end when it
    /// last read: it is live from here. Given once after catching up, and
    /// again after each later batch of entries once they run out.
    CaughtUp {
        /// The log's end as the tail read it.
        end: SequenceId,
    },
    /// The log's latest snapshot is now this one (only from a tail
    /// [tracking snapshots](Tail::tracking_snapshots)): given when a read
    /// names a snapshot other than the one known, before that read's
    /// entries.
    Snapshot {
        /// The snapshot: the entry it covers up to, and its blob.
        snapshot: SnapshotValue,
    },
}

/// Error of [`Tail::next`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TailError {
    /// The log was truncated past the tail's next id: the entries
    /// `[next, start)` are gone (archived into history, if the host keeps
    /// it). The tail stays where it is; [`Tail::resume_at`] moves it on.
    #[error("the log was truncated to {start}; the tail's next entry, {next}, is gone")]
    FellBehind {
        /// The id the tail wanted next.
        next: SequenceId,
        /// The log's start now.
        start: SequenceId,
    },
    /// The tail starts past the log's end.
    #[error("the tail starts at {next}, past the log's end {end}")]
    BeyondEnd {
        /// The id the tail wanted next.
        next: SequenceId,
        /// The log's end.
        end: SequenceId,
    },
    /// The storage failed; calling [`Tail::next`] again tries again from
    /// the same id.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl TailError {
    /// Whether calling [`Tail::next`] again may succeed: a storage failure a
    /// retry can pass.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TailError::Storage(err) if err.is_retryable())
    }
}

/// Every entry of a log from an id on: made by
/// [`EventLogExt::tail`](crate::EventLogExt::tail).
///
/// [`next`](Tail::next) reads the entries already there page by page, says
/// [`TailEvent::CaughtUp`] when it reaches the end, then waits for new
/// entries (through [`EventLog::wait_for_entries`]: a backend's own
/// notification where it has one, else polling with backoff) and gives
/// them as they come. Ids are dense and given in order, so a consumer that
/// stores the last id it handled resumes exactly there with a new tail.
///
/// ```
/// use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, LogEntry, TailEvent};
/// use infinisheet_memory::MemoryEventLog;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let log = MemoryEventLog::new();
/// log.add_entry(LogEntry::new("a"), 0, KnownSnapshot::NotTracked).await?;
/// let mut tail = log.tail(0);
/// assert!(matches!(tail.next().await?, TailEvent::Entries { start: 0, .. }));
/// assert_eq!(tail.next().await?, TailEvent::CaughtUp { end: 1 });
/// log.add_entry(LogEntry::new("b"), 1, KnownSnapshot::NotTracked).await?;
/// let TailEvent::Entries { start, entries } = tail.next().await? else { panic!() };
/// assert_eq!((start, entries[0].payload.as_ref()), (1, &b"b"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Tail<'a, L: EventLog + ?Sized> {
    log: &'a L,
    next: SequenceId,
    options: TailOptions,
    /// Whether `CaughtUp` was given since the last entries.
    said_caught_up: bool,
    wait: Duration,
    /// The snapshot the consumer knows of (`NotTracked`: none reported).
    known: KnownSnapshot,
    /// Entries read with a snapshot's news, given on the next call.
    held: Option<(SequenceId, Vec<LogEntry>)>,
    /// The most entries one read asks for (`None`: a backend's page).
    page: Option<u64>,
    /// Whether the log wakes its tails on appends from anywhere.
    pushed: bool,
}

impl<'a, L: EventLog + ?Sized> Tail<'a, L> {
    pub(crate) fn new(log: &'a L, from: SequenceId, options: TailOptions) -> Self {
        Tail {
            log,
            next: from,
            options,
            said_caught_up: false,
            wait: options.min_wait,
            known: KnownSnapshot::NotTracked,
            held: None,
            page: None,
            pushed: log.capabilities().wakes_across_processes,
        }
    }

    /// The same tail, also reporting the log's latest snapshot whenever it
    /// differs from the one known ([`TailEvent::Snapshot`]), starting from
    /// `known` (`NoSnapshot` to hear of the current one at once). Snapshot
    /// news comes with the reads a tail makes anyway, so it is as prompt
    /// as the polling (a publish is no append, so a backend's own wake-up
    /// may not hurry it).
    #[must_use]
    pub fn tracking_snapshots(mut self, known: KnownSnapshot) -> Self {
        self.known = known;
        self
    }

    /// Gives at most `entries` entries per [`TailEvent::Entries`] from the
    /// next read on (`None`, the default: as many as the log gives in one
    /// page). A consumer that holds what it was given until it is passed
    /// on — a server streaming to a slow client — bounds what it holds by
    /// lowering it when entries are large.
    ///
    /// ```
    /// use infinisheet_event_log::{EventLogExt, KnownSnapshot, LogEntry, TailEvent};
    /// use infinisheet_memory::MemoryEventLog;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let log = MemoryEventLog::new();
    /// let three = vec![LogEntry::new("a"), LogEntry::new("b"), LogEntry::new("c")];
    /// log.add_entries(three, 0, KnownSnapshot::NotTracked).await?;
    /// let mut tail = log.tail(0);
    /// tail.set_page_entries(Some(2));
    /// let TailEvent::Entries { start, entries } = tail.next().await? else { panic!() };
    /// assert_eq!((start, entries.len()), (0, 2));
    /// let TailEvent::Entries { start, entries } = tail.next().await? else { panic!() };
    /// assert_eq!((start, entries.len()), (2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn set_page_entries(&mut self, entries: Option<u64>) {
        self.page = entries.map(|n| n.max(1));
    }

    /// The id of the next entry the tail gives.
    pub fn position(&self) -> SequenceId {
        self.next
    }

    /// Moves the tail to `next` (after [`TailError::FellBehind`], to the
    /// log's start, once the gone entries are read from elsewhere).
    pub fn resume_at(&mut self, next: SequenceId) {
        self.next = next;
        self.held = None;
        self.said_caught_up = false;
        self.wait = self.options.min_wait;
    }

    /// The next entries, or [`TailEvent::CaughtUp`] once at the end; waits
    /// for new entries when it has said so.
    ///
    /// # Errors
    ///
    /// [`TailError`]: the log truncated past the tail, a start past the
    /// end, or a storage failure (call again to retry from the same id).
    pub async fn next(&mut self) -> Result<TailEvent, TailError> {
        if let Some((start, entries)) = self.held.take() {
            return Ok(self.give(start, entries));
        }
        loop {
            let end = self
                .page
                .map_or(QueryEnd::End, |n| QueryEnd::Id(self.next.saturating_add(n)));
            let page = self
                .log
                .query(QueryStart::Id(self.next), end, self.known)
                .await;
            match page {
                Ok(mut page) if page.last_snapshot.is_some() && self.known.is_tracked() => {
                    let Some(snapshot) = page.last_snapshot.take() else {
                        continue;
                    };
                    self.known = KnownSnapshot::At(snapshot.sequence_id);
                    if !page.entries.is_empty() {
                        if page.start != self.next {
                            return Err(misplaced(self.next, page.start));
                        }
                        self.held = Some((page.start, page.entries));
                    }
                    return Ok(TailEvent::Snapshot { snapshot });
                }
                Ok(page) if !page.entries.is_empty() => {
                    if page.start != self.next {
                        return Err(misplaced(self.next, page.start));
                    }
                    return Ok(self.give(page.start, page.entries));
                }
                Ok(_) if !self.said_caught_up => {
                    self.said_caught_up = true;
                    return Ok(TailEvent::CaughtUp { end: self.next });
                }
                Ok(_) if self.pushed => {
                    let wait = self.options.pushed_wait.max(self.options.min_wait);
                    self.log.wait_for_entries(self.next, wait).await;
                }
                Ok(_) => {
                    self.log.wait_for_entries(self.next, self.wait).await;
                    self.wait = (self.wait * 2).min(self.options.max_wait);
                }
                Err(QueryError::Range(range)) if range.requested < range.start => {
                    return Err(TailError::FellBehind {
                        next: self.next,
                        start: range.start,
                    });
                }
                Err(QueryError::Range(range)) => {
                    return Err(TailError::BeyondEnd {
                        next: self.next,
                        end: range.end,
                    });
                }
                Err(QueryError::Storage(err)) => return Err(TailError::Storage(err)),
            }
        }
    }
}

impl<L: EventLog + ?Sized> Tail<'_, L> {
    /// Gives the entries from `start` (the tail's next id) and moves on.
    fn give(&mut self, start: SequenceId, entries: Vec<LogEntry>) -> TailEvent {
        self.next = start + entries.len() as u64;
        self.said_caught_up = false;
        self.wait = self.options.min_wait;
        TailEvent::Entries { start, entries }
    }
}

/// A query from `asked` that answered entries from elsewhere.
fn misplaced(asked: SequenceId, answered: SequenceId) -> TailError {
    TailError::Storage(StorageError::corrupt(
        "tail",
        format!("a query from {asked} answered entries from {answered}"),
    ))
}
