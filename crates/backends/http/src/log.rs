//! [`HttpEventLog`]: one log of the server's log store, over HTTP.

use crate::client::{CallError, Client, storage, unexpected};
use crate::wire::{self, LogOp, Reply, Request, WireError};
use async_trait::async_trait;
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, Bounds, EventLog, KnownSnapshot, LogCapabilities,
    LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, RangeError, SequenceId,
    SetMetadataError, SnapshotValue, StorageError, TruncateError,
};
use std::time::Duration;

/// The longest one wait asks the server to hold a call open; a longer
/// timeout is waited for in turns.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// One event log of a server's storage (`infinisheet serve`), over HTTP:
/// each call is one request, answered as the backend behind the server
/// answers it (conflicts, ranges, snapshots, retryable failures), so it
/// passes the same conformance suite.
///
/// A lost reply is a retryable [`StorageError`]: the append may have
/// landed, and retrying it with its [`AppendToken`] is safe (the server's
/// backend keeps the token). [`wait_for_entries`](EventLog::wait_for_entries)
/// is a long poll: the server holds the call until its own log wakes it.
#[derive(Clone, Debug)]
pub struct HttpEventLog {
    client: Client,
    id: String,
    persistent: bool,
    /// The server's log wakes its waiting tails (its long poll returns at
    /// an append).
    wakes: bool,
}

impl HttpEventLog {
    pub(crate) async fn open(
        client: Client,
        id: &str,
        create: bool,
    ) -> Result<HttpEventLog, crate::OpenLogError> {
        let request = Request::OpenLog {
            id: id.to_owned(),
            create,
        };
        match client.call(&request, None).await {
            Ok(Reply::Log { persistent, wakes }) => Ok(HttpEventLog {
                client,
                id: id.to_owned(),
                persistent,
                wakes,
            }),
            Ok(other) => Err(crate::OpenLogError::Storage(unexpected(other.kind()))),
            Err(CallError::Wire(WireError::NoLog { id })) => {
                Err(crate::OpenLogError::NotFound { id })
            }
            Err(CallError::Wire(WireError::InvalidLogId { id, problem })) => {
                Err(crate::OpenLogError::InvalidId { id, problem })
            }
            Err(err) => Err(crate::OpenLogError::Storage(storage(err))),
        }
    }

    /// The log's id in the server's store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.client.base()
    }

    /// A call answered `Done`, or a range or storage error.
    async fn done<E: From<RangeError> + From<StorageError>>(&self, op: LogOp) -> Result<(), E> {
        match self.call(op, None).await {
            Ok(Reply::Done) => Ok(()),
            Ok(other) => Err(unexpected(other.kind()).into()),
            Err(err) => Err(failed(err)),
        }
    }

    async fn call(&self, op: LogOp, timeout: Option<Duration>) -> Result<Reply, CallError> {
        let request = Request::Log {
            id: self.id.clone(),
            op,
        };
        self.client.call(&request, timeout).await
    }
}

/// A call's failure for an operation whose errors are a range or the
/// storage.
fn failed<E: From<RangeError> + From<StorageError>>(err: CallError) -> E {
    match err {
        CallError::Wire(WireError::Range {
            requested,
            start,
            end,
        }) => RangeError {
            requested,
            start,
            end,
        }
        .into(),
        err => storage(err).into(),
    }
}

#[async_trait]
impl EventLog for HttpEventLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        if entries.len() > wire::MAX_ENTRIES {
            return Err(StorageError::new(
                crate::BACKEND,
                format!(
                    "an append over HTTP carries at most {} entries; this one has {}",
                    wire::MAX_ENTRIES,
                    entries.len()
                ),
            )
            .into());
        }
        let op = LogOp::Append {
            entries: wire::Capped(entries.into_iter().map(Into::into).collect()),
            seq,
            known: known.into(),
            token: wire::token_to_wire(token),
        };
        match self.call(op, None).await {
            Ok(Reply::Snapshot(snapshot)) => Ok(AddEntryValue {
                last_snapshot: snapshot.map(SnapshotValue::from),
            }),
            Ok(other) => Err(unexpected(other.kind()).into()),
            Err(CallError::Wire(WireError::Conflict { attempted, next })) => {
                Err(AddEntryError::Conflict { attempted, next })
            }
            Err(err) => Err(storage(err).into()),
        }
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let op = LogOp::Query {
            start: start.into(),
            end: wire::end_to_wire(end),
            known: known.into(),
        };
        match self.call(op, None).await {
            Ok(Reply::Queried {
                start,
                end,
                entries,
                is_complete,
                snapshot,
            }) => Ok(QueryValue {
                start,
                end,
                entries: entries.into_iter().map(Into::into).collect(),
                is_complete,
                last_snapshot: snapshot.map(SnapshotValue::from),
            }),
            Ok(other) => Err(unexpected(other.kind()).into()),
            Err(err) => Err(failed(err)),
        }
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        match self.call(LogOp::Bounds, None).await {
            Ok(Reply::Bounds { start, end }) => Ok(Bounds { start, end }),
            Ok(other) => Err(unexpected(other.kind())),
            Err(err) => Err(storage(err)),
        }
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        let op = LogOp::SetMetadata {
            seq,
            update: update.into(),
        };
        self.done(op).await
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.done(LogOp::Truncate { start }).await
    }

    fn capabilities(&self) -> LogCapabilities {
        let capabilities = if self.persistent {
            LogCapabilities::persistent()
        } else {
            LogCapabilities::volatile()
        };
        if self.wakes {
            capabilities.waking()
        } else {
            capabilities
        }
    }

    async fn wait_for_entries(&self, end: SequenceId, timeout: Duration) {
        let wait = timeout.min(LONGEST_WAIT);
        let op = LogOp::Wait {
            end,
            timeout_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        let started = tokio::time::Instant::now();
        // A failed wait is only a hint lost: the caller reads again. It
        // still takes its time, so a down server is not called in a spin.
        if self
            .call(op, Some(wait + Duration::from_secs(30)))
            .await
            .is_err()
        {
            tokio::time::sleep_until(started + wait).await;
        }
    }
}
