//! [`StorageService`]: the server's half, transport-agnostic: it takes a
//! request's bytes and returns the reply's, over a [`LogStore`] and a
//! [`BlobStore`]. `infinisheet serve` mounts it at `POST /api/storage`.

use crate::wire::{
    self, BlobOp, LogOp, MAX_DEPTH, MAX_ENTRIES, Reply, Request, VERSION, WireError,
};
use infinisheet_blob_store::{BlobDir, BlobName, BlobStore};
use infinisheet_event_log::{AppendToken, EventLog, LogStore, LogStoreError, StorageError};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The most logs a service keeps open between calls.
pub const KEPT_LOGS: usize = 1024;

/// The longest a wait call is held, whatever the client asks.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// What a caller of [`StorageService::handle`] may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Permission {
    /// Every call.
    ReadWrite,
    /// Calls that change nothing: reads, listings, bounds, waits.
    ReadOnly,
}

/// Answers the calls of [`HttpEventLog`](crate::HttpEventLog) and
/// [`HttpBlobStore`](crate::HttpBlobStore) clients from its own storage.
/// Logs opened are kept open for the next call (at most [`KEPT_LOGS`]).
pub struct StorageService {
    logs: Arc<dyn LogStore>,
    blobs: Arc<dyn BlobStore>,
    open: tokio::sync::Mutex<HashMap<String, Arc<dyn EventLog>>>,
    /// Calls answered at once (each may hold a page of entries or a blob
    /// while its reply is built); a waiting call takes none.
    answering: tokio::sync::Semaphore,
}

/// How many calls a [`StorageService`] answers at once, unless
/// [`StorageService::answering_at_most`] says otherwise.
pub const ANSWERING: usize = 8;

impl fmt::Debug for StorageService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageService")
            .field("logs", &self.logs)
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

impl StorageService {
    /// Serves the logs of `logs` and the blobs of `blobs`.
    pub fn new(logs: Arc<dyn LogStore>, blobs: Arc<dyn BlobStore>) -> StorageService {
        StorageService {
            logs,
            blobs,
            open: tokio::sync::Mutex::default(),
            answering: tokio::sync::Semaphore::new(ANSWERING),
        }
    }

    /// The same service answering at most `calls` calls at once (others
    /// wait their turn; a tail's wait for entries takes no turn): what
    /// replies being built hold at once is bounded by it, a page of
    /// entries or a blob each.
    #[must_use]
    pub fn answering_at_most(mut self, calls: usize) -> StorageService {
        self.answering = tokio::sync::Semaphore::new(calls.max(1));
        self
    }

    /// The media type requests and replies carry.
    pub const CONTENT_TYPE: &'static str = wire::CONTENT_TYPE;

    /// Answers one request (the body of a POST) of a caller with
    /// `permission`: the reply's body. A request that cannot be read gets
    /// an error reply, never a panic; one that claims more than a call
    /// may carry ([`MAX_ENTRIES`](crate::MAX_ENTRIES) entries,
    /// [`MAX_DEPTH`](crate::MAX_DEPTH) directories) is refused as it is
    /// decoded, before what it claims is allocated; a read-only caller's
    /// write is refused before it reaches the storage. At most
    /// [`ANSWERING`] calls (but waits) are answered at once.
    pub async fn handle(&self, request: &[u8], permission: Permission) -> Vec<u8> {
        let mut turn = None;
        let reply = match postcard::from_bytes::<Request>(request) {
            Ok(request) if permission == Permission::ReadOnly && request.writes() => {
                Err(WireError::Forbidden(
                    "this server's read-only token cannot change its storage".to_owned(),
                ))
            }
            Ok(request) => {
                // Held until the reply is encoded; a wait takes no turn.
                if !request.waits() {
                    turn = self.answering.acquire().await.ok();
                }
                self.answer(request).await
            }
            // postcard keeps no message of its own errors: say what the
            // limits are.
            Err(err) => Err(WireError::BadRequest(format!(
                "cannot read the request (from a client of another version, damaged, or \
                 past a call's limits of {MAX_ENTRIES} entries and {MAX_DEPTH} directories \
                 deep): {err}"
            ))),
        };
        // Encoding our own types into a Vec cannot fail; should it, the
        // client reads an empty body as a malformed reply.
        let encoded = postcard::to_allocvec(&reply).unwrap_or_default();
        drop((reply, turn));
        encoded
    }

    async fn answer(&self, request: Request) -> Result<Reply, WireError> {
        match request {
            Request::Hello => Ok(Reply::Hello {
                version: VERSION,
                log_backend: self.logs.backend().to_owned(),
                blobs_persistent: self.blobs.capabilities().persistent,
                blobs_page: self.blobs.capabilities().page_size as u64,
            }),
            Request::OpenLog { id, create } => {
                let log = self.log(&id, create).await?;
                Ok(Reply::Log {
                    persistent: log.capabilities().persistent,
                    wakes: log.capabilities().wakes_in_process,
                })
            }
            Request::Log { id, op } => {
                let log = self.log(&id, false).await?;
                log_op(log.as_ref(), op).await
            }
            Request::Blob { dir, op } => match self.dir(&dir.0).await {
                Ok(dir) => blob_op(dir.as_ref(), op).await,
                // A blob took the place of a directory on the path since
                // the client made its handle: answer as a stale handle
                // of the backend's own would (the memory reference): what
                // would write names the blob, what reads finds nothing.
                Err(blocked @ WireError::WrongKind { dir: false, .. }) => match op {
                    BlobOp::Write { .. } | BlobOp::Dir { .. } => Err(blocked),
                    BlobOp::Read { name } => Err(WireError::NotFound { name }),
                    BlobOp::Remove { .. } | BlobOp::RemoveAll => Ok(Reply::Done),
                    BlobOp::List { .. } => Ok(Reply::Listed {
                        entries: Vec::new(),
                        continuation: None,
                    }),
                },
                Err(err) => Err(err),
            },
        }
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, WireError> {
        let mut open = self.open.lock().await;
        if let Some(log) = open.get(id) {
            return Ok(log.clone());
        }
        let log = match self.logs.log(id, create).await {
            Ok(log) => log,
            Err(LogStoreError::NotFound { .. }) => {
                return Err(WireError::NoLog { id: id.to_owned() });
            }
            Err(LogStoreError::InvalidId { problem, .. }) => {
                return Err(WireError::InvalidLogId {
                    id: id.to_owned(),
                    problem: problem.to_owned(),
                });
            }
            Err(err) => {
                let message = infinisheet_storage_error::one_line(&err);
                let err = if err.is_retryable() {
                    StorageError::retryable("log store", message)
                } else {
                    StorageError::new("log store", message)
                };
                return Err((&err).into());
            }
        };
        // Handles of one log agree however many are opened (the
        // `LogStore` contract): forgetting them all is only a cost.
        if open.len() >= KEPT_LOGS {
            open.clear();
        }
        open.insert(id.to_owned(), log.clone());
        Ok(log)
    }

    async fn dir(&self, path: &[String]) -> Result<Arc<dyn BlobDir>, WireError> {
        let mut dir = self.blobs.root();
        for name in path {
            let name = BlobName::new(name.as_str())?;
            dir = dir.dir(&name).await?;
        }
        Ok(dir)
    }
}

async fn log_op(log: &dyn EventLog, op: LogOp) -> Result<Reply, WireError> {
    match op {
        LogOp::Append {
            entries,
            seq,
            known,
            token,
        } => {
            let entries = entries.0.into_iter().map(Into::into).collect();
            let token = token.map(AppendToken::from_bytes);
            let value = log.append_at(entries, seq, known.into(), token).await?;
            Ok(Reply::Snapshot(value.last_snapshot.map(Into::into)))
        }
        LogOp::Query { start, end, known } => {
            let value = log
                .query(start.into(), wire::end_from_wire(end), known.into())
                .await?;
            Ok(Reply::Queried {
                start: value.start,
                end: value.end,
                entries: value.entries.into_iter().map(Into::into).collect(),
                is_complete: value.is_complete,
                snapshot: value.last_snapshot.map(Into::into),
            })
        }
        LogOp::Bounds => {
            let bounds = log.bounds().await.map_err(|err| WireError::from(&err))?;
            Ok(Reply::Bounds {
                start: bounds.start,
                end: bounds.end,
            })
        }
        LogOp::SetMetadata { seq, update } => {
            log.set_metadata(seq, update.into()).await?;
            Ok(Reply::Done)
        }
        LogOp::Truncate { start } => {
            log.truncate(start).await?;
            Ok(Reply::Done)
        }
        LogOp::Wait { end, timeout_ms } => {
            let timeout = Duration::from_millis(timeout_ms).min(LONGEST_WAIT);
            log.wait_for_entries(end, timeout).await;
            Ok(Reply::Done)
        }
    }
}

async fn blob_op(dir: &dyn BlobDir, op: BlobOp) -> Result<Reply, WireError> {
    match op {
        BlobOp::Read { name } => {
            let content = dir.read_blob(&BlobName::new(name)?).await?;
            Ok(Reply::Blob(content))
        }
        BlobOp::Write { name, content } => {
            dir.write_blob(&BlobName::new(name)?, content).await?;
            Ok(Reply::Done)
        }
        BlobOp::Remove { name } => {
            dir.remove_blob(&BlobName::new(name)?).await?;
            Ok(Reply::Done)
        }
        BlobOp::Dir { name } => {
            dir.dir(&BlobName::new(name)?).await?;
            Ok(Reply::Done)
        }
        BlobOp::List { continuation } => {
            let continuation = continuation.map(infinisheet_blob_store::Continuation::from);
            let page = dir.list(continuation.as_ref()).await?;
            Ok(Reply::Listed {
                entries: page.entries.into_iter().map(Into::into).collect(),
                continuation: page.continuation.map(|c| c.as_str().to_owned()),
            })
        }
        BlobOp::RemoveAll => {
            dir.remove_all()
                .await
                .map_err(|err| WireError::from(&err))?;
            Ok(Reply::Done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::LogOp;
    use infinisheet_memory::{MemoryBlobStore, MemoryLogs};

    fn call(request: &Request) -> Vec<u8> {
        postcard::to_allocvec(request).unwrap_or_default()
    }

    /// Answering one call at a time, a tail's wait (a long poll) takes no
    /// turn: other calls are answered while it waits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_takes_no_turn() {
        let service = Arc::new(
            StorageService::new(
                Arc::new(MemoryLogs::default()),
                Arc::new(MemoryBlobStore::new()),
            )
            .answering_at_most(1),
        );
        let open = call(&Request::OpenLog {
            id: "a".into(),
            create: true,
        });
        service.handle(&open, Permission::ReadWrite).await;
        let wait = call(&Request::Log {
            id: "a".into(),
            op: LogOp::Wait {
                end: 0,
                timeout_ms: 60_000,
            },
        });
        let mut waiting = {
            let service = service.clone();
            tokio::spawn(async move { service.handle(&wait, Permission::ReadWrite).await })
        };
        // The wait is under way (it is still waiting a moment later).
        let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut waiting).await;
        assert!(early.is_err(), "the wait returned at once");
        let hello = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            service.handle(&call(&Request::Hello), Permission::ReadWrite),
        )
        .await;
        assert!(hello.is_ok(), "a call waited behind a tail's wait");
        waiting.abort();
    }
}
