//! The `EventLog` trait, its declared capabilities, and forwarding impls for
//! `Arc<T>` and `Box<T>`.

use crate::{
    AddEntryError, AddEntryValue, AppendToken, Bounds, KnownSnapshot, LogEntry, MetadataUpdate,
    QueryEnd, QueryError, QueryStart, QueryValue, SequenceId, SetMetadataError, StorageError,
    TruncateError,
};
use async_trait::async_trait;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// Optional guarantees a backend declares. The conformance suite skips, and
/// reports loudly, the cases of a guarantee a backend does not declare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogCapabilities {
    /// Entries and metadata survive dropping every handle and opening the log
    /// again.
    pub persistent: bool,
    /// An append through any handle of the log in this process wakes the
    /// tails waiting through any other at once
    /// ([`wait_for_entries`](EventLog::wait_for_entries) returns), so a
    /// tail hears of it without polling. A backend that declares it
    /// overrides `wait_for_entries` (the default sleeps), sharing one
    /// [`raw::Waiters`](crate::raw::Waiters) per log among its handles
    /// ([`raw::WaiterRegistry`](crate::raw::WaiterRegistry)) and waking it
    /// in `append_at`; the suite checks it.
    pub wakes_in_process: bool,
    /// An append through any handle anywhere — another process, another
    /// machine — wakes the tails waiting here at once, through a channel
    /// the storage offers (PostgreSQL's `NOTIFY`). A tail of such a log
    /// waits [`TailOptions::pushed_wait`](crate::TailOptions::pushed_wait)
    /// between reads rather than polling every half second; the backend
    /// wakes its tails when the channel drops or comes back, so they read
    /// again, and shortens their waits to a poll while it is down. Implies
    /// [`wakes_in_process`](LogCapabilities::wakes_in_process).
    pub wakes_across_processes: bool,
}

impl LogCapabilities {
    /// A log that lives only as long as its handles (the memory backend).
    pub const fn volatile() -> Self {
        LogCapabilities {
            persistent: false,
            wakes_in_process: false,
            wakes_across_processes: false,
        }
    }

    /// A log whose content survives reopening.
    pub const fn persistent() -> Self {
        LogCapabilities {
            persistent: true,
            wakes_in_process: false,
            wakes_across_processes: false,
        }
    }

    /// These, and waking tails in the process
    /// ([`wakes_in_process`](LogCapabilities::wakes_in_process)).
    pub const fn waking(self) -> Self {
        LogCapabilities {
            wakes_in_process: true,
            ..self
        }
    }

    /// These, and waking tails on appends from anywhere
    /// ([`wakes_across_processes`](LogCapabilities::wakes_across_processes)).
    pub const fn pushing(self) -> Self {
        LogCapabilities {
            wakes_in_process: true,
            wakes_across_processes: true,
            ..self
        }
    }
}

/// A dense, totally ordered log of immutable entries with mutable metadata.
///
/// Object safe: host apps hold an `Arc<dyn EventLog>` and mix backends at run
/// time. Conveniences built on these methods (`add_entry`, `add_entries`,
/// `query_all`, `tail`, `append`) live in [`EventLogExt`](crate::EventLogExt),
/// which every log has and no one implements: each thing is done one way.
///
/// Every handle on a log must agree with every other, however it was
/// opened: a second handle opened on the same storage (by another
/// process, or by a [`LogStore`](crate::LogStore) asked twice) sees what
/// the first appended, a stale handle's append at a taken id is a
/// [`Conflict`](AddEntryError::Conflict), never an overwrite, and tokens,
/// metadata and truncation set through one are honoured by the other. A
/// backend that keeps state per handle (bounds in memory, say) must check
/// it against the storage. The conformance suite's second-handle cases
/// hold a backend to this.
///
/// The contract below is what the `infinisheet-conformance` suite checks; a
/// backend is correct when it passes that suite.
#[async_trait]
pub trait EventLog: Send + Sync + Debug + 'static {
    /// Appends `entries` at `seq`, which must be the log's current end,
    /// atomically: all of them, at `seq..seq + entries.len()`, or none. An
    /// empty batch appends nothing and succeeds when `seq` is the end.
    ///
    /// This is the log's one way to append; [`EventLogExt::add_entry`] and
    /// [`EventLogExt::add_entries`] are it without a token. Exactly one of
    /// any number of racing writers (tasks, processes, machines, through
    /// one handle or independently opened ones) wins a given `seq`. When it
    /// returns `Ok` on a durable backend, the entries survive a crash. The
    /// reply names the log's most recent snapshot if `known` tracks
    /// snapshots and that snapshot differs from the known one (see
    /// [`KnownSnapshot::newer`]). A backend that wakes waiting tails
    /// ([`wait_for_entries`](EventLog::wait_for_entries)) wakes them here.
    ///
    /// With a `token`, the append can be retried safely after a storage
    /// error: it succeeds also when the log already holds a batch of as
    /// many entries at `seq`, appended under the same token (an earlier
    /// attempt of this very append whose reply was lost): nothing is
    /// appended again and the reply is the one the first attempt would
    /// have had. Any number of such attempts, even racing one another,
    /// leave one copy in the log. The backend keeps the token with the
    /// entries for as long as they are in the log (see [`AppendToken`]).
    ///
    /// [`EventLogExt::add_entry`]: crate::EventLogExt::add_entry
    /// [`EventLogExt::add_entries`]: crate::EventLogExt::add_entries
    ///
    /// # Errors
    ///
    /// * [`AddEntryError::Conflict`] if `seq` is not the log's end (and the
    ///   entries at `seq` are not this token's batch); it carries the real
    ///   end, and no entry of the batch is appended.
    /// * [`AddEntryError::Storage`] if the storage fails; the append may or
    ///   may not have landed (a lost reply): without a token a retry then
    ///   reports a conflict, never a duplicate; with one, retrying with the
    ///   same token is safe and tells.
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError>;

    /// Reads entries from `start` up to `end` (exclusive).
    ///
    /// A backend may return fewer entries than asked (its page size), but at
    /// least one while any remain; the reply's `is_complete` is then `false`
    /// and the caller continues from the reply's `end`. An `end` past the log's end stops at the log's end;
    /// an `end` before the start gives an empty, complete reply. The reply
    /// names a newer snapshot as [`append_at`](EventLog::append_at) does.
    ///
    /// # Errors
    ///
    /// * [`QueryError::Range`] if a [`QueryStart::Id`] lies below the log's
    ///   start or above its end.
    /// * [`QueryError::Storage`] if the storage fails.
    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError>;

    /// The log's bounds: it holds the entries `[start, end)`, and the next
    /// append takes `end`. Reads no entry.
    ///
    /// # Errors
    ///
    /// A [`StorageError`] if the storage fails.
    async fn bounds(&self) -> Result<Bounds, StorageError>;

    /// Changes the metadata of entry `seq` atomically: each field kept, set or
    /// cleared as `update` says. The payload never changes.
    ///
    /// # Errors
    ///
    /// * [`SetMetadataError::Range`] if `seq` is outside `[start, end)`.
    /// * [`SetMetadataError::Storage`] if the storage fails.
    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError>;

    /// Removes every entry before `start`. `truncate(end)` empties the log but
    /// keeps its end; truncating at the current start does nothing.
    ///
    /// # Errors
    ///
    /// * [`TruncateError::Range`] if `start` lies below the log's start or
    ///   above its end.
    /// * [`TruncateError::Storage`] if the storage fails.
    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError>;

    /// The optional guarantees this backend offers.
    fn capabilities(&self) -> LogCapabilities;

    /// Waits until entries may have been appended at or after `end`, or
    /// until `timeout` has passed, whichever comes first; what a
    /// [`Tail`](crate::Tail) calls between polls once it has caught up.
    /// Waking early is a hint, never a promise: the caller reads again
    /// either way.
    ///
    /// The default sleeps for `timeout`: polling, which works on every
    /// backend and across processes. A backend that learns of appends
    /// sooner (an in-process notification) returns as soon as it does.
    async fn wait_for_entries(&self, end: SequenceId, timeout: Duration) {
        let _ = end;
        tokio::time::sleep(timeout).await;
    }
}

macro_rules! forward_event_log {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<T: EventLog + ?Sized> EventLog for $ty {
            async fn append_at(
                &self,
                entries: Vec<LogEntry>,
                seq: SequenceId,
                known: KnownSnapshot,
                token: Option<AppendToken>,
            ) -> Result<AddEntryValue, AddEntryError> {
                (**self).append_at(entries, seq, known, token).await
            }

            async fn query(
                &self,
                start: QueryStart,
                end: QueryEnd,
                known: KnownSnapshot,
            ) -> Result<QueryValue, QueryError> {
                (**self).query(start, end, known).await
            }

            async fn bounds(&self) -> Result<Bounds, StorageError> {
                (**self).bounds().await
            }

            async fn set_metadata(
                &self,
                seq: SequenceId,
                update: MetadataUpdate,
            ) -> Result<(), SetMetadataError> {
                (**self).set_metadata(seq, update).await
            }

            async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
                (**self).truncate(start).await
            }

            fn capabilities(&self) -> LogCapabilities {
                (**self).capabilities()
            }

            async fn wait_for_entries(&self, end: SequenceId, timeout: Duration) {
                (**self).wait_for_entries(end, timeout).await
            }
        }
    };
}

forward_event_log!(Arc<T>);
forward_event_log!(Box<T>);
