//! For implementers of [`EventLog`](crate::EventLog): the rules of the
//! contract that do not depend on how a log is stored, written once. Every
//! backend of this workspace calls them, and a new backend should: it then
//! resolves queries, reports ranges and answers retries exactly as the
//! conformance suite expects, and only has to store and find entries.
//!
//! ```
//! use infinisheet_event_log::raw::Bounds;
//! use infinisheet_event_log::{QueryEnd, QueryError, QueryStart};
//!
//! let bounds = Bounds::new(10, 20);
//! let range = bounds
//!     .resolve_query::<QueryError>(QueryStart::Id(12), QueryEnd::Id(99), || Ok(None))
//!     .unwrap();
//! assert_eq!((range.start, range.end, range.page_end(5)), (12, 20, 17));
//! assert!(bounds.check_entry(20).is_err()); // set_metadata needs an entry
//! assert!(bounds.check_truncate(20).is_ok()); // truncate may empty the log
//! ```

mod push;

pub use push::*;

use crate::{
    AddEntryError, AppendToken, KnownSnapshot, LogEntry, QueryEnd, QueryStart, QueryValue,
    RangeError, SequenceId, SnapshotValue,
};

/// A log's bounds at one moment: it holds the entries `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bounds {
    /// The id of the first entry (the end, if the log is empty).
    pub start: SequenceId,
    /// One past the last entry: the id the next append takes.
    pub end: SequenceId,
}

impl Bounds {
    /// The bounds `[start, end)`.
    pub const fn new(start: SequenceId, end: SequenceId) -> Self {
        Bounds { start, end }
    }

    /// How many entries the log holds.
    pub const fn len(self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the log holds no entry.
    pub const fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// The error for `requested`, an id outside what an operation accepts.
    pub const fn range_error(self, requested: SequenceId) -> RangeError {
        RangeError {
            requested,
            start: self.start,
            end: self.end,
        }
    }

    /// The rule of [`set_metadata`](crate::EventLog::set_metadata): `seq`
    /// must be an entry, in `[start, end)`.
    ///
    /// # Errors
    ///
    /// The range error for `seq` otherwise.
    pub const fn check_entry(self, seq: SequenceId) -> Result<(), RangeError> {
        if seq < self.start || seq >= self.end {
            return Err(self.range_error(seq));
        }
        Ok(())
    }

    /// The rule of [`truncate`](crate::EventLog::truncate): the new start
    /// must lie in `[start, end]`.
    ///
    /// # Errors
    ///
    /// The range error for `new_start` otherwise.
    pub const fn check_truncate(self, new_start: SequenceId) -> Result<(), RangeError> {
        if new_start < self.start || new_start > self.end {
            return Err(self.range_error(new_start));
        }
        Ok(())
    }

    /// The rule of [`query`](crate::EventLog::query): where a query
    /// starts and the end it wants. [`QueryStart::Start`] is the log's
    /// start; [`QueryStart::Snapshot`] the newest entry whose snapshot is
    /// set (`newest_snapshot`, asked only for this start), else the start;
    /// [`QueryStart::Id`] must lie in `[start, end]`. [`QueryEnd::End`] is
    /// the log's end; [`QueryEnd::Id`] is clamped to `[start, end]`, so an
    /// end before the start gives an empty, complete reply.
    ///
    /// # Errors
    ///
    /// The range error of a [`QueryStart::Id`] outside the log, or what
    /// `newest_snapshot` returned.
    pub fn resolve_query<E: From<RangeError>>(
        self,
        start: QueryStart,
        end: QueryEnd,
        newest_snapshot: impl FnOnce() -> Result<Option<SequenceId>, E>,
    ) -> Result<QueryRange, E> {
        let start = match start {
            QueryStart::Start => self.start,
            QueryStart::Snapshot => newest_snapshot()?.unwrap_or(self.start),
            QueryStart::Id(seq) => {
                if seq < self.start || seq > self.end {
                    return Err(self.range_error(seq).into());
                }
                seq
            }
        };
        let end = match end {
            QueryEnd::End => self.end,
            QueryEnd::Id(seq) => seq.clamp(start, self.end),
        };
        Ok(QueryRange { start, end })
    }

    /// The rule of appends at `seq`: only at the end. Otherwise the
    /// conflict to report (it carries the real end), unless
    /// [`retry_token`](Bounds::retry_token) says to check whether the
    /// batch there is an earlier attempt of this append.
    ///
    /// # Errors
    ///
    /// The conflict if `seq` is not the end.
    pub const fn check_append(self, seq: SequenceId) -> Result<(), AddEntryError> {
        if seq != self.end {
            return Err(AddEntryError::Conflict {
                attempted: seq,
                next: self.end,
            });
        }
        Ok(())
    }

    /// For an append of `count` entries at `seq` that is not the end: the
    /// token to look for on the batch that starts at `seq`, if the append
    /// can be a retry of one that landed (it has a token and entries, and
    /// `seq` is inside the log). The append succeeds without writing when
    /// [`is_retry_of`] holds for that batch; otherwise it is the conflict.
    pub fn retry_token(
        self,
        seq: SequenceId,
        count: u64,
        token: Option<AppendToken>,
    ) -> Option<AppendToken> {
        token.filter(|_| count > 0 && seq >= self.start && seq < self.end)
    }
}

/// Whether the batch stored at an append's id, with the token and length
/// it was appended with (`None` if no batch starts there or it had no
/// token), is an earlier attempt of this append of `count` entries under
/// `token`.
pub fn is_retry_of(stored: Option<(AppendToken, u64)>, token: AppendToken, count: u64) -> bool {
    stored == Some((token, count))
}

/// What a query reads: the ids `[start, end)`, of which a page holds the
/// first ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryRange {
    /// The resolved start: the id of the first entry of the reply.
    pub start: SequenceId,
    /// The end the caller wants (at most the log's end, at least `start`).
    pub end: SequenceId,
}

impl QueryRange {
    /// The end of a page of at most `max_entries` entries from the start.
    pub fn page_end(self, max_entries: usize) -> SequenceId {
        let max = u64::try_from(max_entries).unwrap_or(u64::MAX);
        self.start.saturating_add(max).min(self.end)
    }

    /// The reply holding `entries`, the entries from the start on (a
    /// page: it is complete when they reach the wanted end).
    pub fn reply(self, entries: Vec<LogEntry>, last_snapshot: Option<SnapshotValue>) -> QueryValue {
        let end = self.start + entries.len() as u64;
        QueryValue {
            start: self.start,
            end,
            entries,
            is_complete: end >= self.end,
            last_snapshot,
        }
    }
}

/// The snapshot a reply carries (see [`KnownSnapshot::newer`]); `newest`,
/// the log's newest snapshot, is looked up only if the caller tracks
/// snapshots.
///
/// # Errors
///
/// What `newest` returned.
pub fn reply_snapshot<E>(
    known: KnownSnapshot,
    newest: impl FnOnce() -> Result<Option<SnapshotValue>, E>,
) -> Result<Option<SnapshotValue>, E> {
    if known.is_tracked() {
        Ok(known.newer(newest()?))
    } else {
        Ok(None)
    }
}

/// The tails waiting on one log in this process
/// ([`wait_for_entries`](crate::EventLog::wait_for_entries)): a backend
/// wakes them in its one append path
/// ([`append_at`](crate::EventLog::append_at)) and when a snapshot is
/// published (news to a tail tracking snapshots), and waits on them in
/// `wait_for_entries`. Every handle of a log in the process should share
/// one (see [`WaiterRegistry`]), so an append through one wakes a tail on
/// another.
#[derive(Debug, Default)]
pub struct Waiters(tokio::sync::Notify);

impl Waiters {
    /// Wakes every tail waiting now.
    pub fn wake(&self) {
        self.0.notify_waiters();
    }

    /// Returns once woken, once `ready` (a read of whether the log holds
    /// entries at the end waited for) says so, or after `timeout`.
    /// Registered before `ready` reads, so a wake in between counts.
    pub async fn wait<F: std::future::Future<Output = bool>>(
        &self,
        ready: F,
        timeout: std::time::Duration,
    ) {
        let woken = self.0.notified();
        if ready.await {
            return;
        }
        let _ = tokio::time::timeout(timeout, woken).await;
    }
}

/// The [`Waiters`] of each log in this process, by a key naming the log
/// whatever path or handle reached it (a file's device and inode, a
/// database's row id): handles opened apart share one. An entry lasts as
/// long as a handle holds its waiters.
#[derive(Debug)]
pub struct WaiterRegistry<K>(
    std::sync::Mutex<std::collections::HashMap<K, std::sync::Weak<Waiters>>>,
);

impl<K> Default for WaiterRegistry<K> {
    fn default() -> Self {
        WaiterRegistry(std::sync::Mutex::default())
    }
}

impl<K: std::hash::Hash + Eq> WaiterRegistry<K> {
    /// The waiters of the log `key` names (made on first use).
    pub fn get(&self, key: K) -> std::sync::Arc<Waiters> {
        let mut logs = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(waiters) = logs.get(&key).and_then(std::sync::Weak::upgrade) {
            return waiters;
        }
        // Logs whose handles are all gone leave no entry behind for long.
        logs.retain(|_, waiters| waiters.strong_count() > 0);
        let waiters = std::sync::Arc::new(Waiters::default());
        logs.insert(key, std::sync::Arc::downgrade(&waiters));
        waiters
    }

    /// Wakes the tails waiting on the log `key` names, if any wait.
    pub fn wake(&self, key: &K) {
        let logs = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(waiters) = logs.get(key).and_then(std::sync::Weak::upgrade) {
            waiters.wake();
        }
    }
}

/// Runs `job`, a synchronous storage call (a file system or database
/// call that may sync or wait on a lock), without stalling the async
/// runtime: inside `tokio::task::block_in_place` on a multi-threaded
/// runtime (which first hands the worker's other tasks to another thread),
/// on the blocking pool on a current-thread runtime, and on the calling
/// thread outside tokio. `block_in_place` costs ~14 µs where a round trip
/// to another thread costs ~60 µs on this project's 2-core VMs (a large
/// share of a durable append), so this is the default for one call; see
/// [`pooled`] for calls a caller makes several at once. `backend` names
/// the backend in the error a panicking `job` becomes.
pub async fn blocking<T, F>(backend: &'static str, job: F) -> Result<T, crate::StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(job)),
        _ => pooled(backend, job).await,
    }
}

/// Runs `job` on tokio's blocking pool (on the calling thread outside
/// tokio), so that calls one task makes at once overlap, their syncs
/// included, where [`blocking`] would suspend every other future of the
/// calling task until each returned: blob reads and writes (the engine
/// writes a snapshot's tiles several at a time). A panicking `job` is an
/// error naming `backend`.
pub async fn pooled<T, F>(backend: &'static str, job: F) -> Result<T, crate::StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::spawn_blocking(job).await.map_err(|err| {
            crate::StorageError::new(backend, "a storage call panicked (a bug)").with_source(err)
        }),
        Err(_) => Ok(job()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueryError;

    fn resolve(bounds: Bounds, start: QueryStart, end: QueryEnd) -> Result<QueryRange, QueryError> {
        bounds.resolve_query(start, end, || Ok(Some(14)))
    }

    #[test]
    fn queries_resolve_as_the_contract_says() {
        let b = Bounds::new(10, 20);
        let range = |start, end| QueryRange { start, end };
        assert_eq!(
            resolve(b, QueryStart::Start, QueryEnd::End).unwrap(),
            range(10, 20)
        );
        assert_eq!(
            resolve(b, QueryStart::Snapshot, QueryEnd::End).unwrap(),
            range(14, 20)
        );
        assert_eq!(
            resolve(b, QueryStart::Id(20), QueryEnd::End).unwrap(),
            range(20, 20)
        );
        assert_eq!(
            resolve(b, QueryStart::Id(15), QueryEnd::Id(3)).unwrap(),
            range(15, 15)
        );
        assert_eq!(
            resolve(b, QueryStart::Id(15), QueryEnd::Id(99)).unwrap(),
            range(15, 20)
        );
        for outside in [9, 21, u64::MAX] {
            assert!(matches!(
                resolve(b, QueryStart::Id(outside), QueryEnd::End),
                Err(QueryError::Range(RangeError { requested, start: 10, end: 20 })) if requested == outside
            ));
        }
        let none = Bounds::new(10, 20).resolve_query::<QueryError>(
            QueryStart::Snapshot,
            QueryEnd::End,
            || Ok(None),
        );
        assert_eq!(none.unwrap(), range(10, 20));
        assert_eq!(range(10, 20).page_end(usize::MAX), 20);
        assert_eq!(range(u64::MAX - 1, u64::MAX).page_end(5), u64::MAX);
    }

    #[test]
    fn entries_truncates_appends_and_retries() {
        let b = Bounds::new(10, 20);
        assert!(b.check_entry(9).is_err() && b.check_entry(20).is_err());
        assert!(b.check_entry(10).is_ok() && b.check_entry(19).is_ok());
        assert!(b.check_truncate(9).is_err() && b.check_truncate(21).is_err());
        assert!(b.check_truncate(10).is_ok() && b.check_truncate(20).is_ok());
        assert!(b.check_append(20).is_ok());
        assert!(matches!(
            b.check_append(19),
            Err(AddEntryError::Conflict {
                attempted: 19,
                next: 20
            })
        ));
        let token = AppendToken::from_u128(7);
        assert_eq!(b.retry_token(12, 2, Some(token)), Some(token));
        assert_eq!(b.retry_token(12, 0, Some(token)), None);
        assert_eq!(b.retry_token(20, 2, Some(token)), None);
        assert_eq!(b.retry_token(12, 2, None), None);
        assert!(is_retry_of(Some((token, 2)), token, 2));
        assert!(!is_retry_of(Some((token, 3)), token, 2));
        assert!(!is_retry_of(None, token, 2));
    }
}
