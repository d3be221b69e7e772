//! [`StorageService`]: the server's half, transport-agnostic: it takes a
//! request's bytes and returns the reply's, over a [`LogSource`] and a
//! [`BlobStore`]. `infinisheet serve` mounts it at `POST /api/storage`.

use crate::wire::{
    self, BlobOp, LogOp, MAX_DEPTH, MAX_ENTRIES, Reply, Request, VERSION, WireError,
};
use async_trait::async_trait;
use infinisheet_blob_store::{BlobDir, BlobName, BlobStore};
use infinisheet_event_log::{AppendToken, EventLog, StorageError};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The longest a wait call is held, whatever the client asks.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Where the service finds the logs it serves, by id (a catalog's log
/// store, for `infinisheet serve`).
#[async_trait]
pub trait LogSource: Send + Sync + fmt::Debug + 'static {
    /// The backend's name, as a catalog records it (`sqlite`, `file`, ...):
    /// clients report it as the backend of their logs.
    fn backend(&self) -> &str;

    /// Opens log `id`, creating it (empty) if `create` and it is missing.
    ///
    /// # Errors
    ///
    /// [`SourceError`] naming why.
    async fn open_log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, SourceError>;
}

/// Why a [`LogSource`] cannot open a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No log has that id (and it was not to be created).
    #[error("no such log")]
    NotFound,
    /// The id cannot name a log.
    #[error("invalid log id: {0}")]
    InvalidId(String),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

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
/// Logs are opened once and kept open (a log's handle is what makes its
/// appends race safely within this process).
pub struct StorageService {
    logs: Arc<dyn LogSource>,
    blobs: Arc<dyn BlobStore>,
    open: tokio::sync::Mutex<HashMap<String, Arc<dyn EventLog>>>,
}

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
    pub fn new(logs: Arc<dyn LogSource>, blobs: Arc<dyn BlobStore>) -> StorageService {
        StorageService {
            logs,
            blobs,
            open: tokio::sync::Mutex::default(),
        }
    }

    /// The media type requests and replies carry.
    pub const CONTENT_TYPE: &'static str = wire::CONTENT_TYPE;

    /// Answers one request (the body of a POST) of a caller with
    /// `permission`: the reply's body. A request that cannot be read gets
    /// an error reply, never a panic; one that claims more than a call
    /// may carry ([`MAX_ENTRIES`](crate::MAX_ENTRIES) entries,
    /// [`MAX_DEPTH`](crate::MAX_DEPTH) directories) is refused as it is
    /// decoded, before what it claims is allocated; a read-only caller's
    /// write is refused before it reaches the storage.
    pub async fn handle(&self, request: &[u8], permission: Permission) -> Vec<u8> {
        let reply = match postcard::from_bytes::<Request>(request) {
            Ok(request) if permission == Permission::ReadOnly && request.writes() => {
                Err(WireError::Forbidden(
                    "this server's read-only token cannot change its storage".to_owned(),
                ))
            }
            Ok(request) => self.answer(request).await,
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
        postcard::to_allocvec(&reply).unwrap_or_default()
    }

    async fn answer(&self, request: Request) -> Result<Reply, WireError> {
        match request {
            Request::Hello => Ok(Reply::Hello {
                version: VERSION,
                log_backend: self.logs.backend().to_owned(),
                blobs_persistent: self.blobs.capabilities().persistent,
            }),
            Request::OpenLog { id, create } => {
                let log = self.log(&id, create).await?;
                Ok(Reply::Log {
                    persistent: log.capabilities().persistent,
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
        let log = match self.logs.open_log(id, create).await {
            Ok(log) => log,
            Err(SourceError::NotFound) => return Err(WireError::NoLog { id: id.to_owned() }),
            Err(SourceError::InvalidId(problem)) => {
                return Err(WireError::InvalidLogId {
                    id: id.to_owned(),
                    problem,
                });
            }
            Err(SourceError::Storage(err)) => return Err((&err).into()),
        };
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
            let value = log
                .add_entries_with_token(entries, seq, known.into(), token)
                .await?;
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
