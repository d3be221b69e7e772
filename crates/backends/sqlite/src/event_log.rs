//! `SqliteEventLog`: a named log in a database file. Every operation is one
//! transaction on the shared connection; appends take the write lock first
//! (`BEGIN IMMEDIATE`) and win an id with a conditional update of the log's
//! end, so racing connections and processes cannot both win.

use crate::checksum;
use crate::database::{Mode, SqliteDatabase};
use crate::error::OpenError;
use crate::error::{Failed, finish};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_event_log::raw::{self, Bounds};
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EntryMetadata, EventLog, KnownSnapshot,
    LogCapabilities, LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue,
    SequenceId, SetMetadataError, SnapshotValue, StorageError, TruncateError,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::sync::Arc;
use std::time::Duration;

/// A named [`EventLog`] in a [`SqliteDatabase`]. Clones share the
/// database's connection; handles in other processes see the same log.
#[derive(Clone, Debug)]
pub struct SqliteEventLog {
    db: SqliteDatabase,
    target: Target,
}

/// Sequence ids are SQLite integers; one that does not fit cannot be in any
/// log.
fn sql_id(seq: SequenceId) -> Option<i64> {
    i64::try_from(seq).ok()
}

fn seq_of(value: i64) -> Result<SequenceId, rusqlite::Error> {
    SequenceId::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, value))
}

/// The log a job works on: its row id and name (both in its checksum).
#[derive(Clone, Debug)]
struct Target {
    id: i64,
    name: Arc<str>,
}

/// The log's `[start, end)`, read inside `tx` and checked against its
/// checksum.
fn bounds<E>(tx: &Transaction<'_>, log: &Target) -> Result<Bounds, Failed<E>> {
    let (start, end, crc): (i64, i64, i64) = tx
        .prepare_cached("SELECT start_seq, end_seq, crc FROM logs WHERE id = ?1")?
        .query_row([log.id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    if crc != checksum::log(log.id, &log.name, start, end) {
        return Err(Failed::Corrupt(format!(
            "its bounds ({start}..{end}) fail their checksum"
        )));
    }
    Ok(Bounds::new(seq_of(start)?, seq_of(end)?))
}

/// Records new bounds with their checksum. With `if_end`, only if the end
/// is still that (an append winning its id); returns whether it changed.
fn set_bounds(
    tx: &Transaction<'_>,
    log: &Target,
    start: i64,
    end: i64,
    if_end: i64,
) -> rusqlite::Result<bool> {
    let crc = checksum::log(log.id, &log.name, start, end);
    Ok(tx
        .prepare_cached(
            "UPDATE logs SET start_seq = ?1, end_seq = ?2, crc = ?3 WHERE id = ?4 AND end_seq = ?5",
        )?
        .execute(params![start, end, crc, log.id, if_end])?
        == 1)
}

/// One stored entry, checked against its checksum.
struct Row {
    seq: SequenceId,
    entry: LogEntry,
}

const ROW_COLUMNS: &str = "seq, payload, snapshot, history, pending, crc";

fn read_row<E>(log: &Target, row: &rusqlite::Row<'_>) -> Result<Row, Failed<E>> {
    let at: i64 = row.get(0)?;
    let payload = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
    let metadata = EntryMetadata {
        snapshot: row.get(2)?,
        history: row.get(3)?,
        pending: row.get(4)?,
    };
    let crc: i64 = row.get(5)?;
    if crc != checksum::entry(log.id, at, payload, &metadata) {
        return Err(Failed::Corrupt(format!("entry {at} fails its checksum")));
    }
    Ok(Row {
        seq: seq_of(at)?,
        entry: LogEntry {
            payload: Bytes::copy_from_slice(payload),
            metadata,
        },
    })
}

/// The newest snapshot's id from the second index of snapshots alone (it
/// covers the query: no table page is read).
pub(crate) const SECOND_SNAPSHOT_LOOKUP: &str = "SELECT seq FROM entries INDEXED BY entries_with_snapshot_too \
     WHERE log = ?1 AND snapshot IS NOT NULL ORDER BY seq DESC LIMIT 1";

fn latest_snapshot<E>(
    tx: &Transaction<'_>,
    log: &Target,
) -> Result<Option<SnapshotValue>, Failed<E>> {
    // Two indexes of the same entries on pages of their own: a damaged page
    // can make a b-tree search miss (SQLite does not check an index against
    // its table), and a missed newest snapshot would read as an older one,
    // or as none. They must agree. The second covers its query, so it
    // answers from its own pages alone, also when a damaged table page
    // hides the row from the first.
    let other: Option<i64> = tx
        .prepare_cached(SECOND_SNAPSHOT_LOOKUP)?
        .query_row([log.id], |row| row.get(0))
        .optional()?;
    let mut statement = tx.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM entries INDEXED BY entries_with_snapshot \
         WHERE log = ?1 AND snapshot IS NOT NULL ORDER BY seq DESC LIMIT 1"
    ))?;
    let mut rows = statement.query([log.id])?;
    let Some(row) = rows.next()? else {
        return match other {
            None => Ok(None),
            Some(seq) => Err(Failed::Corrupt(format!(
                "the indexes of snapshots disagree: one names entry {seq}, the other none"
            ))),
        };
    };
    let row = read_row(log, row)?;
    if sql_id(row.seq) != other {
        return Err(Failed::Corrupt(format!(
            "the indexes of snapshots disagree: one names entry {}, the other {other:?}",
            row.seq
        )));
    }
    let blob_id = row.entry.metadata.snapshot.ok_or_else(|| {
        Failed::Corrupt(format!(
            "entry {} is indexed as a snapshot but names none",
            row.seq
        ))
    })?;
    Ok(Some(SnapshotValue {
        sequence_id: row.seq,
        blob_id,
    }))
}

fn newer_snapshot<E>(
    tx: &Transaction<'_>,
    log: &Target,
    known: KnownSnapshot,
) -> Result<Option<SnapshotValue>, Failed<E>> {
    raw::reply_snapshot(known, || latest_snapshot(tx, log))
}

fn missing<E>(seq: SequenceId) -> Failed<E> {
    Failed::Corrupt(format!(
        "it has no entry {seq} although its bounds include it"
    ))
}

/// The token and length of the batch appended with a token at `seq`.
fn batch_at<E>(
    tx: &Transaction<'_>,
    log: &Target,
    seq: SequenceId,
) -> Result<Option<(AppendToken, u64)>, Failed<E>> {
    let Some(at) = sql_id(seq) else {
        return Ok(None);
    };
    let row: Option<(Vec<u8>, i64, i64)> = tx
        .prepare_cached("SELECT token, count, crc FROM append_tokens WHERE log = ?1 AND seq = ?2")?
        .query_row(params![log.id, at], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((stored, stored_count, crc)) = row else {
        return Ok(None);
    };
    let bad = || {
        Failed::Corrupt(format!(
            "the append token of the batch at {seq} fails its checksum"
        ))
    };
    if crc != checksum::token(log.id, at, &stored, stored_count) {
        return Err(bad());
    }
    let token = <[u8; 16]>::try_from(stored.as_slice()).map_err(|_| bad())?;
    let count = u64::try_from(stored_count).map_err(|_| bad())?;
    Ok(Some((AppendToken::from_bytes(token), count)))
}

fn append(
    conn: &mut Connection,
    log: &Target,
    entries: Vec<LogEntry>,
    seq: SequenceId,
    known: KnownSnapshot,
    token: Option<AppendToken>,
) -> Result<AddEntryValue, Failed<AddEntryError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let count = entries.len() as u64;
    let range = bounds(&tx, log)?;
    if let Err(conflict) = range.check_append(seq) {
        if let Some(token) = range.retry_token(seq, count, token)
            && raw::is_retry_of(batch_at(&tx, log, seq)?, token, count)
        {
            return Ok(AddEntryValue {
                last_snapshot: newer_snapshot(&tx, log, known)?,
            });
        }
        return Err(Failed::Op(conflict));
    }
    let Some(new_end) = seq.checked_add(count).and_then(sql_id) else {
        return Err(Failed::Op(AddEntryError::Storage(StorageError::new(
            crate::error::BACKEND,
            "the batch would take the log past the largest id SQLite stores",
        ))));
    };
    // `start` and `seq` fit: they are at most the end, which fits.
    let (start, at) = (sql_id(range.start).unwrap_or(0), sql_id(seq).unwrap_or(0));
    if !set_bounds(&tx, log, start, new_end, at)? {
        return Err(Failed::Corrupt(
            "its end changed inside a write transaction".into(),
        ));
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO entries (log, seq, payload, snapshot, history, pending, crc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (at, entry) in (seq..).zip(&entries) {
            let EntryMetadata {
                snapshot,
                history,
                pending,
            } = &entry.metadata;
            // `at` fits: it is below the new end, which fits.
            let at = sql_id(at).unwrap_or(i64::MAX);
            let crc = checksum::entry(log.id, at, &entry.payload, &entry.metadata);
            insert.execute(params![
                log.id,
                at,
                &entry.payload[..],
                snapshot,
                history,
                pending,
                crc
            ])?;
        }
    }
    if let Some(token) = token.filter(|_| count > 0) {
        // `seq` and `count` fit: they are below the new end, which fits.
        let (at, count) = (sql_id(seq).unwrap_or(0), sql_id(count).unwrap_or(0));
        let bytes = token.to_bytes();
        tx.prepare_cached(
            "INSERT INTO append_tokens (log, seq, token, count, crc) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            log.id,
            at,
            &bytes[..],
            count,
            checksum::token(log.id, at, &bytes, count)
        ])?;
    }
    let last_snapshot = newer_snapshot(&tx, log, known)?;
    tx.commit()?;
    Ok(AddEntryValue { last_snapshot })
}

fn query(
    conn: &mut Connection,
    log: &Target,
    start: QueryStart,
    end: QueryEnd,
    known: KnownSnapshot,
    max_entries: usize,
    max_bytes: usize,
) -> Result<QueryValue, Failed<QueryError>> {
    // A read transaction: bounds and entries come from one snapshot.
    let tx = conn.transaction()?;
    let range = bounds(&tx, log)?.resolve_query::<Failed<QueryError>>(start, end, || {
        Ok(latest_snapshot(&tx, log)?.map(|s| s.sequence_id))
    })?;
    let (start, wanted_end) = (range.start, range.end);
    let mut entries = Vec::new();
    let mut bytes = 0;
    let mut next = start;
    if start < wanted_end {
        let mut select = tx.prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM entries \
             WHERE log = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq LIMIT ?4"
        ))?;
        let limit = i64::try_from(max_entries).unwrap_or(i64::MAX);
        // Both ids lie within the log's bounds, which fit.
        let (from, to) = (sql_id(start).unwrap_or(0), sql_id(wanted_end).unwrap_or(0));
        let mut rows = select.query(params![log.id, from, to, limit])?;
        while let Some(row) = rows.next()? {
            let row = read_row(log, row)?;
            if row.seq != next {
                return Err(missing(next));
            }
            // Metadata counts too: a page is what a caller holds.
            let metadata = &row.entry.metadata;
            bytes += row.entry.payload.len()
                + [&metadata.snapshot, &metadata.history, &metadata.pending]
                    .into_iter()
                    .flatten()
                    .map(String::len)
                    .sum::<usize>();
            entries.push(row.entry);
            next += 1;
            if bytes >= max_bytes {
                break;
            }
        }
        if next == start {
            return Err(missing(start));
        }
    }
    let last_snapshot = newer_snapshot(&tx, log, known)?;
    Ok(range.reply(entries, last_snapshot))
}

fn set_metadata(
    conn: &mut Connection,
    log: &Target,
    seq: SequenceId,
    update: MetadataUpdate,
) -> Result<(), Failed<SetMetadataError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    bounds(&tx, log)?.check_entry(seq)?;
    // Within the bounds, which fit.
    let at = sql_id(seq).unwrap_or(i64::MAX);
    let mut entry = {
        let mut select = tx.prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM entries WHERE log = ?1 AND seq = ?2"
        ))?;
        let mut rows = select.query(params![log.id, at])?;
        match rows.next()? {
            Some(row) => read_row(log, row)?.entry,
            None => return Err(missing(seq)),
        }
    };
    let before = entry.metadata.clone();
    update.apply(&mut entry.metadata);
    if entry.metadata != before {
        let EntryMetadata {
            snapshot,
            history,
            pending,
        } = &entry.metadata;
        let crc = checksum::entry(log.id, at, &entry.payload, &entry.metadata);
        tx.prepare_cached(
            "UPDATE entries SET snapshot = ?3, history = ?4, pending = ?5, crc = ?6 \
             WHERE log = ?1 AND seq = ?2",
        )?
        .execute(params![log.id, at, snapshot, history, pending, crc])?;
    }
    tx.commit()?;
    Ok(())
}

fn truncate(
    conn: &mut Connection,
    log: &Target,
    new_start: SequenceId,
) -> Result<(), Failed<TruncateError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let range = bounds(&tx, log)?;
    range.check_truncate(new_start)?;
    // Both within the bounds, which fit.
    let (at, end) = (
        sql_id(new_start).unwrap_or(i64::MAX),
        sql_id(range.end).unwrap_or(0),
    );
    tx.prepare_cached("DELETE FROM entries WHERE log = ?1 AND seq < ?2")?
        .execute(params![log.id, at])?;
    tx.prepare_cached("DELETE FROM append_tokens WHERE log = ?1 AND seq < ?2")?
        .execute(params![log.id, at])?;
    set_bounds(&tx, log, at, end, end)?;
    tx.commit()?;
    Ok(())
}

/// Opening logs: the database's side of [`SqliteEventLog`].
impl SqliteDatabase {
    /// Creates the log `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::AlreadyExists`], [`OpenError::InvalidName`],
    /// [`OpenError::Storage`].
    pub async fn create_log(&self, name: &str) -> Result<SqliteEventLog, OpenError> {
        let id = self.named("log", "logs", name, Mode::Create).await?;
        Ok(SqliteEventLog::new(self.clone(), id, name.to_owned()))
    }

    /// Opens the existing log `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if there is no such log;
    /// [`OpenError::InvalidName`], [`OpenError::Storage`].
    pub async fn open_log(&self, name: &str) -> Result<SqliteEventLog, OpenError> {
        let id = self.named("log", "logs", name, Mode::Open).await?;
        Ok(SqliteEventLog::new(self.clone(), id, name.to_owned()))
    }

    /// Opens the log `name`, creating it if it does not exist. (Not
    /// `log`: that is [`LogStore::log`](infinisheet_event_log::LogStore::log),
    /// which creates only when asked.)
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidName`], [`OpenError::Storage`].
    pub async fn open_or_create_log(&self, name: &str) -> Result<SqliteEventLog, OpenError> {
        let id = self.named("log", "logs", name, Mode::OpenOrCreate).await?;
        Ok(SqliteEventLog::new(self.clone(), id, name.to_owned()))
    }
}

impl SqliteEventLog {
    pub(crate) fn new(db: SqliteDatabase, id: i64, name: String) -> Self {
        SqliteEventLog {
            db,
            target: Target {
                id,
                name: name.into(),
            },
        }
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
        db.open_log(&self.target.name).await
    }

    /// A second, independent handle on the same log, on a new connection
    /// to the same file (as another process would open it), while this
    /// one stays open.
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::open`] and [`SqliteDatabase::open_log`].
    pub async fn open_again(&self) -> Result<Self, crate::OpenError> {
        let db = self.db.reopen().await?;
        db.open_log(&self.target.name).await
    }

    /// What names this log's waiting tails in the process: its database
    /// file and row id.
    fn key(&self) -> (u64, u64, i64) {
        let (dev, ino) = self.db.shared.file;
        (dev, ino, self.target.id)
    }

    /// The log's name in its database.
    pub fn name(&self) -> &str {
        &self.target.name
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
        F: FnOnce(&mut Connection, &Target) -> Result<T, Failed<E>> + Send + 'static,
    {
        self.run_sized(doing, false, job).await
    }

    /// [`run`](Self::run), on the blocking pool if the call is `large`
    /// (see `SharedConnection::call`).
    async fn run_sized<T, E, F>(&self, doing: &str, large: bool, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut Connection, &Target) -> Result<T, Failed<E>> + Send + 'static,
    {
        let log = self.target.clone();
        let whose = format!("log {:?} of {}", log.name, self.db.path().display());
        let result = self
            .db
            .shared
            .connection
            .call(large, move |conn| job(conn, &log))
            .await;
        finish(doing, &whose, result)
    }
}

/// The bytes of entries from which a call runs on the blocking pool rather
/// than in place (see `SharedConnection::call`): a bulk load's blocks,
/// never an edit's few cells.
const LARGE_CALL: usize = 256 << 10;

/// The most entries a query asks for that runs in place.
const FEW_ENTRIES: u64 = 16;

#[async_trait]
impl EventLog for SqliteEventLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let wake = self.waker();
        let large = entries.iter().map(|e| e.payload.len()).sum::<usize>() >= LARGE_CALL;
        self.run_sized("appending", large, move |conn, log| {
            let added = append(conn, log, entries, seq, known, token);
            // Here, not after the await: a caller that stops waiting
            // does not stop the commit, nor its news.
            if added.is_ok() {
                wake();
            }
            added
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
        let (max_entries, max_bytes) = (options.query_entries(), options.query_page_bytes);
        // In place only when it asks for a few entries: a load, a tail's
        // poll or a snapshot writer's read may bring back megabytes.
        let large = !matches!(
            (start, end),
            (QueryStart::Id(from), QueryEnd::Id(to)) if to.saturating_sub(from) <= FEW_ENTRIES
        );
        self.run_sized("querying", large, move |conn, log| {
            query(conn, log, start, end, known, max_entries, max_bytes)
        })
        .await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        self.run("reading the bounds", |conn, log| {
            let tx = conn.transaction()?;
            bounds::<StorageError>(&tx, log)
        })
        .await
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        let wake = self.waker();
        self.run("setting metadata", move |conn, log| {
            let set = set_metadata(conn, log, seq, update);
            // A published snapshot is news to a tail tracking snapshots.
            if set.is_ok() {
                wake();
            }
            set
        })
        .await
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.run("truncating", move |conn, log| truncate(conn, log, start))
            .await
    }

    /// Pushing where the file can be watched (a local file system on
    /// Linux): appends from every process on the machine wake the tails.
    fn capabilities(&self) -> LogCapabilities {
        if self.db.shared.push.is_some() {
            LogCapabilities::persistent().pushing()
        } else {
            LogCapabilities::persistent().waking()
        }
    }

    /// Returns when a handle of this log's database file appends to (or
    /// publishes in) this log in this process, when any process on the
    /// machine appends to it (where the file is watched: a touch of the
    /// file is read again to find whether it was this log's), when entries
    /// at `end` are there already, or after `timeout`.
    async fn wait_for_entries(&self, end: SequenceId, timeout: Duration) {
        let ready = || async { self.bounds().await.is_ok_and(|bounds| bounds.end > end) };
        let waiters = waiters().get(self.key());
        match &self.db.shared.push {
            Some(push) => {
                push.channel()
                    .wait_shared(&waiters, &self.db.shared.touched, ready, timeout)
                    .await;
            }
            None => waiters.wait(ready(), timeout).await,
        }
    }
}

impl SqliteEventLog {
    /// What wakes the tails of this log once a change is committed: in
    /// this process at once, and, where the file is local, in every other
    /// (by touching the file).
    fn waker(&self) -> impl FnOnce() + Send + 'static {
        let (key, shared) = (self.key(), self.db.shared.clone());
        move || {
            waiters().wake(&key);
            if let Some(push) = &shared.push {
                push.touch();
            }
        }
    }
}

/// The waiters of each database file in this process, woken when any
/// process touches the file (see [`SqliteEventLog::wait_for_entries`]).
pub(crate) fn file_waiters() -> &'static infinisheet_event_log::raw::WaiterRegistry<(u64, u64)> {
    static WAITERS: std::sync::LazyLock<infinisheet_event_log::raw::WaiterRegistry<(u64, u64)>> =
        std::sync::LazyLock::new(Default::default);
    &WAITERS
}

/// The waiting tails of every log of every database in this process:
/// handles on one log wake each other however their connections were
/// opened.
fn waiters() -> &'static infinisheet_event_log::raw::WaiterRegistry<(u64, u64, i64)> {
    static WAITERS: std::sync::LazyLock<
        infinisheet_event_log::raw::WaiterRegistry<(u64, u64, i64)>,
    > = std::sync::LazyLock::new(Default::default);
    &WAITERS
}
