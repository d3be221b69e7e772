//! `PostgresEventLog`: a named log in a database. An append and a
//! metadata change are one statement each (a function in the database);
//! a query reads the bounds and the entries in one read-only transaction.

use crate::database::PostgresDatabase;
use crate::error::{self, BACKEND};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_event_log::raw::{self, Bounds, WaiterRegistry};
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EntryMetadata, EventLog, FieldUpdate, KnownSnapshot,
    LogCapabilities, LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue,
    SequenceId, SetMetadataError, SnapshotValue, StorageError, TruncateError,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::IsolationLevel;

/// A named [`EventLog`] in a [`PostgresDatabase`]. Clones share the
/// database's pool; handles in other processes and on other machines see
/// the same log, and exactly one of any number of racing appenders wins
/// each id.
#[derive(Clone, Debug)]
pub struct PostgresEventLog {
    db: PostgresDatabase,
    /// The log's row id.
    id: i64,
    name: Arc<str>,
}

/// Sequence ids are PostgreSQL `bigint`s; one that does not fit cannot be
/// in any log.
fn sql_id(seq: SequenceId) -> Option<i64> {
    i64::try_from(seq).ok()
}

/// The log's bounds `[start, end)` in columns `at` and `at + 1` of `row`.
fn bounds_in(
    doing: &str,
    whose: &str,
    row: &tokio_postgres::Row,
    at: usize,
) -> Result<Bounds, StorageError> {
    let failed = |err| error::storage(doing, err);
    let (start, end): (i64, i64) = (
        row.try_get(at).map_err(failed)?,
        row.try_get(at + 1).map_err(failed)?,
    );
    match (SequenceId::try_from(start), SequenceId::try_from(end)) {
        (Ok(start), Ok(end)) if start <= end => Ok(Bounds::new(start, end)),
        _ => Err(error::damaged(
            whose,
            format!("its bounds {start}..{end} are impossible"),
        )),
    }
}

/// The newest snapshot in columns `at` and `at + 1` of `row` (its id and
/// blob; both null when there is none).
fn snapshot_in(
    doing: &str,
    whose: &str,
    row: &tokio_postgres::Row,
    at: usize,
) -> Result<Option<SnapshotValue>, StorageError> {
    let failed = |err| error::storage(doing, err);
    let seq: Option<i64> = row.try_get(at).map_err(failed)?;
    let blob: Option<String> = row.try_get(at + 1).map_err(failed)?;
    match (seq, blob) {
        (Some(seq), Some(blob_id)) => match SequenceId::try_from(seq) {
            Ok(sequence_id) => Ok(Some(SnapshotValue {
                sequence_id,
                blob_id,
            })),
            Err(_) => Err(error::damaged(whose, format!("an entry has the id {seq}"))),
        },
        _ => Ok(None),
    }
}

/// An update of one metadata field as the functions take it: 0 keeps, 1
/// sets, 2 clears.
fn op<T>(update: FieldUpdate<T>) -> (i16, Option<T>) {
    match update {
        FieldUpdate::Keep => (0, None),
        FieldUpdate::Set(value) => (1, Some(value)),
        FieldUpdate::Clear => (2, None),
    }
}

const APPEND: &str = "SELECT won, start_seq, end_seq, snapshot_seq, snapshot_blob, stored_token, \
     stored_count FROM infinisheet_append($1, $2, $3, $4, $5, $6, $7, $8)";

const SET_METADATA: &str = "SELECT hit, start_seq, end_seq \
     FROM infinisheet_set_metadata($1, $2, $3, $4, $5, $6, $7, $8)";

const BOUNDS: &str = "SELECT start_seq, end_seq FROM infinisheet_logs WHERE id = $1";

/// The bounds and the newest snapshot, in one statement.
const BOUNDS_AND_SNAPSHOT: &str = "SELECT l.start_seq, l.end_seq, s.seq, s.snapshot \
     FROM infinisheet_logs AS l LEFT JOIN LATERAL ( \
         SELECT e.seq, e.snapshot FROM infinisheet_entries AS e \
         WHERE e.log = l.id AND e.snapshot IS NOT NULL ORDER BY e.seq DESC LIMIT 1 \
     ) AS s ON true WHERE l.id = $1";

/// A page of entries: at most `$4` from `$2` below `$3`, stopping after
/// the one that takes their payloads and metadata to `$5` bytes. The
/// first sum (four columns summed apart, so no row's total overflows an
/// integer) settles the common case, a page under the bytes, for an
/// index scan of sizes; only a page that reaches them pays for the
/// running sum that finds where it stops (a window over 10,000 entries
/// cost 7 ms where the rest cost 1.5).
const PAGE: &str = "SELECT seq, payload, snapshot, history, pending FROM infinisheet_entries \
     WHERE log = $1 AND seq >= $2 AND seq < $3 AND seq < CASE \
         WHEN (SELECT sum(octet_length(payload)) + coalesce(sum(octet_length(snapshot)), 0) \
                 + coalesce(sum(octet_length(history)), 0) \
                 + coalesce(sum(octet_length(pending)), 0) \
             FROM (SELECT payload, snapshot, history, pending FROM infinisheet_entries \
                 WHERE log = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4) AS page \
         ) < $5 THEN $3 \
         ELSE (SELECT max(seq) + 1 FROM ( \
             SELECT seq, (sum(size) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) - size)::bigint AS before \
             FROM ( \
                 SELECT seq, octet_length(payload)::bigint \
                     + coalesce(octet_length(snapshot), 0) + coalesce(octet_length(history), 0) \
                     + coalesce(octet_length(pending), 0) AS size \
                 FROM infinisheet_entries WHERE log = $1 AND seq >= $2 AND seq < $3 \
                 ORDER BY seq LIMIT $4 \
             ) AS page \
         ) AS counted WHERE before < $5) \
     END ORDER BY seq LIMIT $4";

impl PostgresEventLog {
    pub(crate) fn new(db: PostgresDatabase, id: i64, name: &str) -> Self {
        PostgresEventLog {
            db,
            id,
            name: name.into(),
        }
    }

    /// The log's name in its database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database holding the log.
    pub fn database(&self) -> &PostgresDatabase {
        &self.db
    }

    /// How messages name the log.
    fn whose(&self) -> String {
        format!("log {:?} of {}", self.name, self.db.url())
    }

    /// What names this log's waiting tails in the process.
    fn key(&self) -> (String, i64) {
        (self.db.url().to_owned(), self.id)
    }

    async fn append(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let doing = "appending";
        let count = entries.len() as u64;
        // An id past the largest a log can hold, or a batch that would
        // take the log there: not the end (a conflict naming it), or a
        // storage error.
        let Some(at) = sql_id(seq).filter(|at| {
            i64::try_from(count)
                .ok()
                .and_then(|count| at.checked_add(count))
                .is_some()
        }) else {
            self.bounds().await?.check_append(seq)?;
            return Err(AddEntryError::Storage(StorageError::new(
                BACKEND,
                "the batch would take the log past the largest id PostgreSQL stores",
            )));
        };
        let mut payloads = Vec::with_capacity(entries.len());
        let mut snapshots = Vec::with_capacity(entries.len());
        let mut histories = Vec::with_capacity(entries.len());
        let mut pendings = Vec::with_capacity(entries.len());
        for entry in &entries {
            payloads.push(&entry.payload[..]);
            snapshots.push(entry.metadata.snapshot.as_deref());
            histories.push(entry.metadata.history.as_deref());
            pendings.push(entry.metadata.pending.as_deref());
        }
        let token_bytes = token.map(AppendToken::to_bytes);
        let token_param = token_bytes.as_ref().map(|bytes| &bytes[..]);
        let tracked = known.is_tracked();
        let client = self.db.client(doing).await?;
        let failed = |err| error::storage(doing, err);
        let statement = client.prepare_cached(APPEND).await.map_err(failed)?;
        let row = client
            .query_one(
                &statement,
                &[
                    &self.id,
                    &at,
                    &payloads,
                    &snapshots,
                    &histories,
                    &pendings,
                    &token_param,
                    &tracked,
                ],
            )
            .await
            .map_err(failed)?;
        drop(client);
        let whose = self.whose();
        let won: bool = row.try_get(0).map_err(failed)?;
        let bounds = bounds_in(doing, &whose, &row, 1)?;
        let newest = snapshot_in(doing, &whose, &row, 3)?;
        if won {
            if count > 0 {
                waiters().wake(&self.key());
            }
            return Ok(AddEntryValue {
                last_snapshot: raw::reply_snapshot(known, || Ok::<_, StorageError>(newest))?,
            });
        }
        let Err(conflict) = bounds.check_append(seq) else {
            return Err(error::damaged(
                &whose,
                format!("its end is {seq} but an append there did not take it"),
            )
            .into());
        };
        if let Some(token) = bounds.retry_token(seq, count, token) {
            let stored_token: Option<Vec<u8>> = row.try_get(5).map_err(failed)?;
            let stored_count: Option<i64> = row.try_get(6).map_err(failed)?;
            let stored = match (stored_token, stored_count) {
                (Some(bytes), Some(n)) => {
                    let bytes = <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
                        error::damaged(
                            &whose,
                            format!("the append token of the batch at {seq} is not 16 bytes"),
                        )
                    })?;
                    let n = u64::try_from(n).map_err(|_| {
                        error::damaged(&whose, format!("the batch at {seq} has {n} entries"))
                    })?;
                    Some((AppendToken::from_bytes(bytes), n))
                }
                _ => None,
            };
            if raw::is_retry_of(stored, token, count) {
                return Ok(AddEntryValue {
                    last_snapshot: raw::reply_snapshot(known, || Ok::<_, StorageError>(newest))?,
                });
            }
        }
        Err(conflict)
    }

    async fn query_page(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let doing = "querying";
        let failed = |err| error::storage(doing, err);
        let whose = self.whose();
        let options = self.db.shared.options;
        let mut client = self.db.client(doing).await?;
        let head = client
            .prepare_cached(BOUNDS_AND_SNAPSHOT)
            .await
            .map_err(failed)?;
        let page = client.prepare_cached(PAGE).await.map_err(failed)?;
        // One snapshot of the database for the bounds and the entries.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(failed)?;
        let row = tx
            .query_opt(&head, &[&self.id])
            .await
            .map_err(failed)?
            .ok_or_else(|| error::damaged(&whose, "its row is gone"))?;
        let bounds = bounds_in(doing, &whose, &row, 0)?;
        let newest = snapshot_in(doing, &whose, &row, 2)?;
        let range = bounds.resolve_query::<QueryError>(start, end, || {
            Ok(newest.as_ref().map(|s| s.sequence_id))
        })?;
        let mut entries = Vec::new();
        if range.start < range.end {
            // Both lie within the bounds, which fit.
            let (from, to) = (
                sql_id(range.start).unwrap_or(0),
                sql_id(range.end).unwrap_or(0),
            );
            let limit = i64::try_from(options.query_page_entries.max(1)).unwrap_or(i64::MAX);
            let max_bytes = i64::try_from(options.query_page_bytes)
                .unwrap_or(i64::MAX)
                .max(1);
            let rows = tx
                .query(&page, &[&self.id, &from, &to, &limit, &max_bytes])
                .await
                .map_err(failed)?;
            for (next, row) in (range.start..).zip(rows) {
                let seq: i64 = row.try_get(0).map_err(failed)?;
                if sql_id(next) != Some(seq) {
                    return Err(error::damaged(
                        &whose,
                        format!("it has no entry {next} although its bounds include it"),
                    )
                    .into());
                }
                let payload: &[u8] = row.try_get(1).map_err(failed)?;
                entries.push(LogEntry {
                    payload: Bytes::copy_from_slice(payload),
                    metadata: EntryMetadata {
                        snapshot: row.try_get(2).map_err(failed)?,
                        history: row.try_get(3).map_err(failed)?,
                        pending: row.try_get(4).map_err(failed)?,
                    },
                });
            }
            if entries.is_empty() {
                return Err(error::damaged(
                    &whose,
                    format!(
                        "it has no entry {} although its bounds include it",
                        range.start
                    ),
                )
                .into());
            }
        }
        tx.commit().await.map_err(failed)?;
        let last_snapshot = raw::reply_snapshot(known, || Ok::<_, StorageError>(newest))?;
        Ok(range.reply(entries, last_snapshot))
    }
}

#[async_trait]
impl EventLog for PostgresEventLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        self.append(entries, seq, known, token).await
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        self.query_page(start, end, known).await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        let doing = "reading the bounds";
        let failed = |err| error::storage(doing, err);
        let client = self.db.client(doing).await?;
        let statement = client.prepare_cached(BOUNDS).await.map_err(failed)?;
        let row = client
            .query_opt(&statement, &[&self.id])
            .await
            .map_err(failed)?
            .ok_or_else(|| error::damaged(&self.whose(), "its row is gone"))?;
        bounds_in(doing, &self.whose(), &row, 0)
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        let doing = "setting metadata";
        let failed = |err| error::storage(doing, err);
        let Some(at) = sql_id(seq) else {
            return Err(self.bounds().await?.range_error(seq).into());
        };
        let publishes = matches!(update.snapshot, FieldUpdate::Set(_));
        let (snapshot_op, snapshot) = op(update.snapshot);
        let (history_op, history) = op(update.history);
        let (pending_op, pending) = op(update.pending);
        let client = self.db.client(doing).await?;
        let statement = client.prepare_cached(SET_METADATA).await.map_err(failed)?;
        let row = client
            .query_one(
                &statement,
                &[
                    &self.id,
                    &at,
                    &snapshot_op,
                    &snapshot,
                    &history_op,
                    &history,
                    &pending_op,
                    &pending,
                ],
            )
            .await
            .map_err(failed)?;
        drop(client);
        let found: bool = row.try_get(0).map_err(failed)?;
        if found {
            if publishes {
                // A published snapshot is news to a tail tracking snapshots.
                waiters().wake(&self.key());
            }
            return Ok(());
        }
        let whose = self.whose();
        let bounds = bounds_in(doing, &whose, &row, 1)?;
        bounds.check_entry(seq)?;
        Err(error::damaged(
            &whose,
            format!("it has no entry {seq} although its bounds include it"),
        )
        .into())
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        let doing = "truncating";
        let failed = |err| error::storage(doing, err);
        let whose = self.whose();
        let mut client = self.db.client(doing).await?;
        let tx = client.transaction().await.map_err(failed)?;
        let row = tx
            .query_opt(
                "SELECT start_seq, end_seq FROM infinisheet_logs WHERE id = $1 FOR UPDATE",
                &[&self.id],
            )
            .await
            .map_err(failed)?
            .ok_or_else(|| error::damaged(&whose, "its row is gone"))?;
        let bounds = bounds_in(doing, &whose, &row, 0)?;
        bounds.check_truncate(start)?;
        // Within the bounds, which fit.
        let at = sql_id(start).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM infinisheet_entries WHERE log = $1 AND seq < $2",
            &[&self.id, &at],
        )
        .await
        .map_err(failed)?;
        tx.execute(
            "DELETE FROM infinisheet_append_tokens WHERE log = $1 AND seq < $2",
            &[&self.id, &at],
        )
        .await
        .map_err(failed)?;
        tx.execute(
            "UPDATE infinisheet_logs SET start_seq = $2 WHERE id = $1",
            &[&self.id, &at],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(())
    }

    fn capabilities(&self) -> LogCapabilities {
        LogCapabilities::persistent().pushing()
    }

    /// Returns when anyone anywhere appends to (or publishes in) this log
    /// — a handle in this process, or another process through the
    /// database's notification — when entries at `end` are there already,
    /// when the listening connection drops or comes back, or after
    /// `timeout` (at most half a second while that connection is down).
    async fn wait_for_entries(&self, end: SequenceId, timeout: Duration) {
        let listener = self.db.listener();
        let ready = async { self.bounds().await.is_ok_and(|bounds| bounds.end > end) };
        let waiters = waiters().get(self.key());
        listener.channel().wait(&waiters, ready, timeout).await;
    }
}

/// The waiting tails of every log of every database in this process.
pub(crate) fn waiters() -> &'static WaiterRegistry<(String, i64)> {
    static WAITERS: std::sync::LazyLock<WaiterRegistry<(String, i64)>> =
        std::sync::LazyLock::new(Default::default);
    &WAITERS
}
