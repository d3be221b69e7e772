//! Conveniences built on the `EventLog` trait, implemented once for every
//! log so implementers cannot get them subtly wrong.

use crate::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogEntry, QueryEnd,
    QueryError, QueryStart, QueryValue, SequenceId, Tail, TailOptions,
};
use async_trait::async_trait;

/// How many ids [`EventLogExt::append`] tries before it gives up: each lost
/// race means another writer appended, so this many in a row is contention
/// better handled by the caller than spun on.
pub const APPEND_ATTEMPTS: u32 = 64;

/// Conveniences for every [`EventLog`], built on its methods; implemented
/// for all of them. Do not implement it: a backend's own version of a
/// convenience would be a second way to do one thing, where bugs hide (a
/// log's own `add_entry` once skipped waking its tails).
#[async_trait]
pub trait EventLogExt: EventLog {
    /// Appends `entry` at `seq`: [`append_at`](EventLog::append_at) with one
    /// entry and no token.
    ///
    /// # Errors
    ///
    /// As [`append_at`](EventLog::append_at).
    async fn add_entry(
        &self,
        entry: LogEntry,
        seq: SequenceId,
        known: KnownSnapshot,
    ) -> Result<AddEntryValue, AddEntryError> {
        self.append_at(vec![entry], seq, known, None).await
    }

    /// Appends `entries` at `seq`, all or none:
    /// [`append_at`](EventLog::append_at) with no token.
    ///
    /// # Errors
    ///
    /// As [`append_at`](EventLog::append_at).
    async fn add_entries(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
    ) -> Result<AddEntryValue, AddEntryError> {
        self.append_at(entries, seq, known, None).await
    }

    /// Like [`EventLog::query`], but follows pages until the reply is
    /// complete and returns every entry in one value.
    ///
    /// With [`QueryEnd::End`] and writers appending faster than pages are
    /// read, this keeps reading; pass an id to bound it. The reply's
    /// `last_snapshot` is the one the final page reported.
    ///
    /// # Errors
    ///
    /// As [`EventLog::query`]. A truncate racing with the paging can make a
    /// later page a [`QueryError::Range`].
    async fn query_all(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let mut all = self.query(start, end, known).await?;
        while !all.is_complete {
            let page = self.query(QueryStart::Id(all.end), end, known).await?;
            if page.entries.is_empty() && !page.is_complete {
                // A backend that returns an empty incomplete page would loop
                // forever; treat it as complete rather than spin.
                break;
            }
            all.end = page.end;
            all.entries.extend(page.entries);
            all.is_complete = page.is_complete;
            all.last_snapshot = page.last_snapshot;
        }
        Ok(all)
    }

    /// Every entry from `from` on, caught up page by page and then live
    /// (see [`Tail`]), waiting as [`TailOptions::default`] says.
    fn tail(&self, from: SequenceId) -> Tail<'_, Self> {
        Tail::new(self, from, TailOptions::default())
    }

    /// [`tail`](EventLogExt::tail) with its waits set by `options`.
    fn tail_with(&self, from: SequenceId, options: TailOptions) -> Tail<'_, Self> {
        Tail::new(self, from, options)
    }

    /// Appends `entry` at the end of the log, starting from the guess `seq`
    /// and retrying at the id a conflict reports until it wins one.
    /// Returns the id the entry was written at.
    ///
    /// Every attempt carries `token`, so after a storage error (the entry
    /// may or may not have landed: the reply may have been lost) calling
    /// `append` again with the same entry, guess and token is safe: it walks
    /// the same ids and stops where the first call's entry landed, and the
    /// log holds one copy.
    ///
    /// It gives up after [`APPEND_ATTEMPTS`] lost races in a row (other
    /// writers took every id it tried), with the last conflict; the entry
    /// is then not in the log.
    ///
    /// # Errors
    ///
    /// * [`AddEntryError::Storage`] if the storage fails.
    /// * [`AddEntryError::Conflict`] after [`APPEND_ATTEMPTS`] lost races.
    async fn append(
        &self,
        entry: LogEntry,
        mut seq: SequenceId,
        known: KnownSnapshot,
        token: AppendToken,
    ) -> Result<(SequenceId, AddEntryValue), AddEntryError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .append_at(vec![entry.clone()], seq, known, Some(token))
                .await
            {
                Ok(value) => return Ok((seq, value)),
                Err(err @ AddEntryError::Conflict { .. }) if attempts >= APPEND_ATTEMPTS => {
                    return Err(err);
                }
                Err(AddEntryError::Conflict { next, .. }) => seq = next,
                Err(err) => return Err(err),
            }
        }
    }
}

impl<L: EventLog + ?Sized> EventLogExt for L {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AddEntryValue, LogCapabilities, MetadataUpdate, SetMetadataError, TruncateError};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A log some other writer always just got ahead of.
    #[derive(Debug, Default)]
    struct AlwaysBehind(AtomicU64);

    #[async_trait]
    impl EventLog for AlwaysBehind {
        async fn append_at(
            &self,
            _: Vec<LogEntry>,
            seq: SequenceId,
            _: KnownSnapshot,
            _: Option<AppendToken>,
        ) -> Result<AddEntryValue, AddEntryError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(AddEntryError::Conflict {
                attempted: seq,
                next: seq + 1,
            })
        }
        async fn query(
            &self,
            _: QueryStart,
            _: QueryEnd,
            _: KnownSnapshot,
        ) -> Result<QueryValue, QueryError> {
            Ok(QueryValue::default())
        }
        async fn bounds(&self) -> Result<crate::Bounds, crate::StorageError> {
            Ok(crate::Bounds::default())
        }
        async fn set_metadata(
            &self,
            _: SequenceId,
            _: MetadataUpdate,
        ) -> Result<(), SetMetadataError> {
            Ok(())
        }
        async fn truncate(&self, _: SequenceId) -> Result<(), TruncateError> {
            Ok(())
        }
        fn capabilities(&self) -> LogCapabilities {
            LogCapabilities::volatile()
        }
    }

    #[test]
    fn append_gives_up_after_its_attempts() {
        let log = AlwaysBehind::default();
        let result = block_on(log.append(
            LogEntry::new("x"),
            0,
            KnownSnapshot::NotTracked,
            AppendToken::from_u128(1),
        ));
        assert!(matches!(result, Err(AddEntryError::Conflict { .. })));
        assert_eq!(log.0.load(Ordering::SeqCst), u64::from(APPEND_ATTEMPTS));
    }

    /// Runs a future that never waits on anything.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }
}
