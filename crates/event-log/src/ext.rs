//! Conveniences built on the `EventLog` trait, implemented once for every
//! log so implementers cannot get them subtly wrong.

use crate::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogEntry, QueryEnd,
    QueryError, QueryStart, QueryValue, SequenceId,
};
use async_trait::async_trait;

/// Conveniences for every [`EventLog`]; implemented for all of them.
#[async_trait]
pub trait EventLogExt: EventLog {
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

    /// The log's start and end, without reading an entry: a query starting
    /// past any end is a range error, which carries both.
    ///
    /// # Errors
    ///
    /// [`QueryError::Storage`] if the storage fails.
    async fn bounds(&self) -> Result<(SequenceId, SequenceId), QueryError> {
        let past = QueryStart::Id(SequenceId::MAX);
        match self
            .query(
                past,
                QueryEnd::Id(SequenceId::MAX),
                KnownSnapshot::NotTracked,
            )
            .await
        {
            Err(QueryError::Range(range)) => Ok((range.start, range.end)),
            // Only a log that ends at the largest id gets here.
            Ok(page) => Ok((page.start.min(page.end), page.end)),
            Err(err) => Err(err),
        }
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
    /// # Errors
    ///
    /// [`AddEntryError::Storage`] if the storage fails.
    async fn append(
        &self,
        entry: LogEntry,
        mut seq: SequenceId,
        known: KnownSnapshot,
        token: AppendToken,
    ) -> Result<(SequenceId, AddEntryValue), AddEntryError> {
        loop {
            match self
                .add_entries_with_token(vec![entry.clone()], seq, known, Some(token))
                .await
            {
                Ok(value) => return Ok((seq, value)),
                Err(AddEntryError::Conflict { next, .. }) => seq = next,
                Err(err) => return Err(err),
            }
        }
    }
}

impl<L: EventLog + ?Sized> EventLogExt for L {}
