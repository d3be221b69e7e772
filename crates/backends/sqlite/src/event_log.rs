//! `SqliteEventLog`: a named log in a database file. Every operation is one
//! transaction on the connection thread; appends take the write lock first
//! (`BEGIN IMMEDIATE`) and win an id with a conditional update of the log's
//! end, so racing connections and processes cannot both win.

use crate::database::SqliteDatabase;
use crate::error::{Failed, corrupt, finish};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, EntryMetadata, EventLog, FieldUpdate, KnownSnapshot,
    LogCapabilities, LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue,
    RangeError, SequenceId, SetMetadataError, SnapshotValue, StorageError, TruncateError,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

/// A named [`EventLog`] in a [`SqliteDatabase`]. Clones share the
/// database's connection; handles in other processes see the same log.
#[derive(Clone, Debug)]
pub struct SqliteEventLog {
    db: SqliteDatabase,
    id: i64,
    name: String,
}

/// Sequence ids are SQLite integers; one that does not fit cannot be in any
/// log.
fn sql_id(seq: SequenceId) -> Option<i64> {
    i64::try_from(seq).ok()
}

fn seq_of(value: i64) -> Result<SequenceId, rusqlite::Error> {
    SequenceId::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, value))
}

/// The log's `[start, end)`, read inside `tx`.
fn bounds(tx: &Transaction<'_>, log: i64) -> rusqlite::Result<(SequenceId, SequenceId)> {
    let (start, end): (i64, i64) = tx
        .prepare_cached("SELECT start_seq, end_seq FROM logs WHERE id = ?1")?
        .query_row([log], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok((seq_of(start)?, seq_of(end)?))
}

fn latest_snapshot(tx: &Transaction<'_>, log: i64) -> rusqlite::Result<Option<SnapshotValue>> {
    tx.prepare_cached(
        "SELECT seq, snapshot FROM entries WHERE log = ?1 AND snapshot IS NOT NULL \
         ORDER BY seq DESC LIMIT 1",
    )?
    .query_row([log], |row| {
        Ok(SnapshotValue {
            sequence_id: seq_of(row.get(0)?)?,
            blob_id: row.get(1)?,
        })
    })
    .optional()
}

fn newer_snapshot(
    tx: &Transaction<'_>,
    log: i64,
    known: KnownSnapshot,
) -> rusqlite::Result<Option<SnapshotValue>> {
    if known.is_tracked() {
        Ok(known.newer(latest_snapshot(tx, log)?))
    } else {
        Ok(None)
    }
}

fn append(
    conn: &mut Connection,
    log: i64,
    entries: Vec<LogEntry>,
    seq: SequenceId,
    known: KnownSnapshot,
) -> Result<AddEntryValue, Failed<AddEntryError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let count = entries.len() as u64;
    let won = match (sql_id(seq), seq.checked_add(count).and_then(sql_id)) {
        (Some(at), Some(new_end)) => {
            tx.prepare_cached("UPDATE logs SET end_seq = ?1 WHERE id = ?2 AND end_seq = ?3")?
                .execute(params![new_end, log, at])?
                == 1
        }
        _ => false,
    };
    if !won {
        let (_, end) = bounds(&tx, log)?;
        return Err(Failed::Op(AddEntryError::Conflict {
            attempted: seq,
            next: end,
        }));
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO entries (log, seq, payload, snapshot, history, pending) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (at, entry) in (seq..).zip(&entries) {
            let EntryMetadata {
                snapshot,
                history,
                pending,
            } = &entry.metadata;
            // `at` fits: it is below the new end, which fits.
            let at = sql_id(at).unwrap_or(i64::MAX);
            insert.execute(params![
                log,
                at,
                &entry.payload[..],
                snapshot,
                history,
                pending
            ])?;
        }
    }
    let last_snapshot = newer_snapshot(&tx, log, known)?;
    tx.commit()?;
    Ok(AddEntryValue { last_snapshot })
}

fn query(
    conn: &mut Connection,
    log: i64,
    start: QueryStart,
    end: QueryEnd,
    known: KnownSnapshot,
    max_entries: usize,
    max_bytes: usize,
) -> Result<QueryValue, Failed<QueryError>> {
    // A read transaction: bounds and entries come from one snapshot.
    let tx = conn.transaction()?;
    let (log_start, log_end) = bounds(&tx, log)?;
    let start = match start {
        QueryStart::Start => log_start,
        QueryStart::Snapshot => latest_snapshot(&tx, log)?.map_or(log_start, |s| s.sequence_id),
        QueryStart::Id(seq) if seq < log_start || seq > log_end => {
            return Err(Failed::Op(QueryError::Range(RangeError {
                requested: seq,
                start: log_start,
                end: log_end,
            })));
        }
        QueryStart::Id(seq) => seq,
    };
    let wanted_end = match end {
        QueryEnd::End => log_end,
        QueryEnd::Id(seq) => seq.clamp(start, log_end),
    };
    let mut entries = Vec::new();
    let mut bytes = 0;
    let mut next = start;
    if start < wanted_end {
        let mut select = tx.prepare_cached(
            "SELECT seq, payload, snapshot, history, pending FROM entries \
             WHERE log = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq LIMIT ?4",
        )?;
        let limit = i64::try_from(max_entries).unwrap_or(i64::MAX);
        // Both ids lie within the log's bounds, which fit.
        let (from, to) = (sql_id(start).unwrap_or(0), sql_id(wanted_end).unwrap_or(0));
        let mut rows = select.query(params![log, from, to, limit])?;
        while let Some(row) = rows.next()? {
            if seq_of(row.get(0)?)? != next {
                return Err(Failed::Op(QueryError::Storage(corrupt(format!(
                    "log {log} has no entry {next} although its bounds include it"
                )))));
            }
            let payload = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            bytes += payload.len();
            entries.push(LogEntry {
                payload: Bytes::copy_from_slice(payload),
                metadata: EntryMetadata {
                    snapshot: row.get(2)?,
                    history: row.get(3)?,
                    pending: row.get(4)?,
                },
            });
            next += 1;
            if bytes >= max_bytes {
                break;
            }
        }
        if next == start {
            return Err(Failed::Op(QueryError::Storage(corrupt(format!(
                "log {log} has no entry {start} although its bounds include it"
            )))));
        }
    }
    let last_snapshot = newer_snapshot(&tx, log, known)?;
    Ok(QueryValue {
        start,
        end: next,
        entries,
        is_complete: next == wanted_end,
        last_snapshot,
    })
}

/// The `UPDATE` for one metadata change, or `None` if it keeps every field.
fn metadata_sql(update: &MetadataUpdate) -> Option<(String, Vec<Option<String>>)> {
    let mut sets = Vec::new();
    let mut values = Vec::new();
    for (column, field) in [
        ("snapshot", &update.snapshot),
        ("history", &update.history),
        ("pending", &update.pending),
    ] {
        match field {
            FieldUpdate::Keep => {}
            FieldUpdate::Set(value) => {
                values.push(Some(value.clone()));
                sets.push(format!("{column} = ?{}", values.len() + 2));
            }
            FieldUpdate::Clear => sets.push(format!("{column} = NULL")),
        }
    }
    (!sets.is_empty()).then(|| {
        (
            format!(
                "UPDATE entries SET {} WHERE log = ?1 AND seq = ?2",
                sets.join(", ")
            ),
            values,
        )
    })
}

fn set_metadata(
    conn: &mut Connection,
    log: i64,
    seq: SequenceId,
    update: MetadataUpdate,
) -> Result<(), Failed<SetMetadataError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (start, end) = bounds(&tx, log)?;
    if seq < start || seq >= end {
        return Err(Failed::Op(SetMetadataError::Range(RangeError {
            requested: seq,
            start,
            end,
        })));
    }
    if let Some((sql, values)) = metadata_sql(&update) {
        let mut statement = tx.prepare_cached(&sql)?;
        statement.raw_bind_parameter(1, log)?;
        statement.raw_bind_parameter(2, sql_id(seq).unwrap_or(i64::MAX))?;
        for (index, value) in values.iter().enumerate() {
            statement.raw_bind_parameter(index + 3, value)?;
        }
        if statement.raw_execute()? != 1 {
            return Err(Failed::Op(SetMetadataError::Storage(corrupt(format!(
                "log {log} has no entry {seq} although its bounds include it"
            )))));
        }
    }
    tx.commit()?;
    Ok(())
}

fn truncate(
    conn: &mut Connection,
    log: i64,
    new_start: SequenceId,
) -> Result<(), Failed<TruncateError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (start, end) = bounds(&tx, log)?;
    if new_start < start || new_start > end {
        return Err(Failed::Op(TruncateError::Range(RangeError {
            requested: new_start,
            start,
            end,
        })));
    }
    let at = sql_id(new_start).unwrap_or(i64::MAX);
    tx.prepare_cached("DELETE FROM entries WHERE log = ?1 AND seq < ?2")?
        .execute(params![log, at])?;
    tx.prepare_cached("UPDATE logs SET start_seq = ?1 WHERE id = ?2")?
        .execute(params![at, log])?;
    tx.commit()?;
    Ok(())
}

impl SqliteEventLog {
    pub(crate) fn new(db: SqliteDatabase, id: i64, name: String) -> Self {
        SqliteEventLog { db, id, name }
    }

    /// A new log in a new temporary database, removed when the last handle
    /// is dropped. For tests and samples.
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::temporary`].
    pub async fn temporary(options: crate::SqliteOptions) -> Result<Self, crate::OpenError> {
        SqliteDatabase::temporary(options)
            .await?
            .create_log("log")
            .await
    }

    /// The same log through a new connection to the same file.
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::open`] and [`SqliteDatabase::open_log`].
    pub async fn reopen(self) -> Result<Self, crate::OpenError> {
        let db = self.db.reopen().await?;
        db.open_log(&self.name).await
    }

    /// The log's name in its database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database holding the log.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }

    /// Runs `job` on the connection with this log's id; a SQLite error
    /// becomes a storage error saying it happened while `doing`.
    async fn run<T, E, F>(&self, doing: &str, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut Connection, i64) -> Result<T, Failed<E>> + Send + 'static,
    {
        let log = self.id;
        let result = self
            .db
            .shared
            .connection
            .call(move |conn| job(conn, log))
            .await;
        finish(doing, result)
    }
}

#[async_trait]
impl EventLog for SqliteEventLog {
    async fn add_entry(
        &self,
        entry: LogEntry,
        seq: SequenceId,
        known: KnownSnapshot,
    ) -> Result<AddEntryValue, AddEntryError> {
        self.run("appending an entry", move |conn, log| {
            append(conn, log, vec![entry], seq, known)
        })
        .await
    }

    async fn add_entries(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
    ) -> Result<AddEntryValue, AddEntryError> {
        self.run("appending a batch", move |conn, log| {
            append(conn, log, entries, seq, known)
        })
        .await
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let options = self.db.shared.options;
        let (max_entries, max_bytes) = (options.query_page_entries, options.query_page_bytes);
        self.run("querying", move |conn, log| {
            query(conn, log, start, end, known, max_entries, max_bytes)
        })
        .await
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        self.run("setting metadata", move |conn, log| {
            set_metadata(conn, log, seq, update)
        })
        .await
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.run("truncating", move |conn, log| truncate(conn, log, start))
            .await
    }

    fn capabilities(&self) -> LogCapabilities {
        LogCapabilities::persistent()
    }
}
