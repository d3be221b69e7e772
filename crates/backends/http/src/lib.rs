//! Infinisheet's [`EventLog`](infinisheet_event_log::EventLog) and
//! [`BlobStore`](infinisheet_blob_store::BlobStore) over HTTP: a program
//! on another machine shares the storage of a server (`infinisheet
//! serve`, or any host that mounts [`StorageService`]).
//!
//! The client ([`HttpStorage`], [`HttpEventLog`], [`HttpBlobStore`])
//! passes the whole conformance suite against a real server: each call is
//! one POST to `{url}/api/storage`, and the server answers it from its own
//! backend, so conflicts, ranges, snapshots, tokens and retryable failures
//! reach the client as the backend had them. A call that gets no answer
//! (the server is down, the reply was lost) is a retryable
//! [`StorageError`]; appends
//! retried with their token land once.
//!
//! ```no_run
//! use infinisheet_event_log::{EventLog, EventLogExt, LogEntry};
//! use infinisheet_http::HttpStorage;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = HttpStorage::connect("http://127.0.0.1:8080", None).await?;
//! let log = server.log("budget", true).await?;
//! let end = log.bounds().await?.end;
//! log.add_entry(LogEntry::new("edit"), end, Default::default()).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The wire format is postcard, versioned: a client refuses a server of
//! another protocol version ([`ConnectError::Version`]). A server with a
//! token wants `Authorization: Bearer TOKEN` on every call.
//!
//! # Layout
//!
//! The client backend and its service. `wire.rs`
//! is the protocol both sides are built from (one `Request` per trait call,
//! answered by `Result<Reply, WireError>`, postcard, a version checked on
//! connect); `client.rs` the transport (reqwest; no answer is a retryable
//! `StorageError`, a 401 names the token); `log.rs` and `blobs.rs` map each
//! reply back to the operation's own error; `server.rs` is
//! `StorageService::handle(bytes, permission) -> bytes` over a `LogStore`
//! and a `BlobStore`, transport-agnostic, refusing a read-only caller's
//! writes and capping what a request may claim as it is decoded
//! (`wire::Capped`), keeping up to 1,024 logs open. Blob
//! directories are paths the server resolves on each call; a path a blob
//! has taken is answered as a stale handle of the memory reference is.
//! `HttpStorage` is itself a `LogStore` (its backend the server's).
//! `infinisheet serve` mounts the service at `POST /api/storage` behind its
//! guards; the facade's `http` feature adds `http://` URLs.

mod blobs;
mod client;
mod log;
mod server;
#[cfg(test)]
mod service_tests;
mod wire;

pub use blobs::{HttpBlobDir, HttpBlobStore};
pub use log::HttpEventLog;
pub use server::{ANSWERING, KEPT_LOGS, Permission, StorageService};
pub use wire::{CONTENT_TYPE, MAX_DEPTH, MAX_ENTRIES, PATH};

use infinisheet_storage_error::StorageError;

/// The backend name in this crate's [`StorageError`]s.
pub const BACKEND: &str = "http";

/// A connection to one server's storage: its logs by id (a
/// [`LogStore`](infinisheet_event_log::LogStore) whose
/// [`backend`](infinisheet_event_log::LogStore::backend) is the server's
/// own, so a catalog's sheet metadata matches whichever way it is
/// opened), and its blob store. Cheap to clone; every handle shares one
/// HTTP client.
#[derive(Clone, Debug)]
pub struct HttpStorage {
    client: client::Client,
}

#[async_trait::async_trait]
impl infinisheet_event_log::LogStore for HttpStorage {
    fn backend(&self) -> &str {
        self.client.log_backend()
    }

    fn url(&self) -> &str {
        self.client.base()
    }

    async fn log(
        &self,
        id: &str,
        create: bool,
    ) -> Result<
        std::sync::Arc<dyn infinisheet_event_log::EventLog>,
        infinisheet_event_log::LogStoreError,
    > {
        use infinisheet_event_log::LogStoreError;
        infinisheet_event_log::check_log_id(self, id)?;
        let url = self.client.base();
        match HttpStorage::log(self, id, create).await {
            Ok(log) => Ok(std::sync::Arc::new(log)),
            Err(OpenLogError::NotFound { .. }) => Err(LogStoreError::not_found(url, id)),
            Err(OpenLogError::Storage(err)) => Err(LogStoreError::storage(url, id, err)),
            Err(err) => Err(LogStoreError::other(url, id, false, err)),
        }
    }
}

impl HttpStorage {
    /// Reaches the server at `url` (`http://host:port`, `https://...`)
    /// and checks that it serves storage of this protocol version; `token`
    /// is sent as a bearer token with every call.
    ///
    /// # Errors
    ///
    /// [`ConnectError`]: a URL that is not one, a server that cannot be
    /// reached or does not serve storage, or one of another version.
    pub async fn connect(url: &str, token: Option<String>) -> Result<HttpStorage, ConnectError> {
        Ok(HttpStorage {
            client: client::Client::connect(url, token).await?,
        })
    }

    /// Opens the server's log `id`, creating it (empty) if `create` and
    /// it does not exist.
    ///
    /// # Errors
    ///
    /// [`OpenLogError`].
    pub async fn log(&self, id: &str, create: bool) -> Result<HttpEventLog, OpenLogError> {
        HttpEventLog::open(self.client.clone(), id, create).await
    }

    /// The server's blob store.
    pub fn blobs(&self) -> HttpBlobStore {
        HttpBlobStore::new(self.client.clone())
    }

    /// The backend the server keeps its logs on (`sqlite`, `file`, ...).
    pub fn log_backend(&self) -> &str {
        self.client.log_backend()
    }

    /// The server's URL, as given.
    pub fn url(&self) -> &str {
        self.client.base()
    }
}

/// Why [`HttpStorage::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The text is not an `http://` or `https://` URL.
    #[error("{url:?} is not a server URL: {problem}")]
    Url {
        /// The text given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The server did not answer as a storage server (the source says
    /// how).
    #[error("the server did not answer as a storage server")]
    Unreachable {
        /// The URL.
        url: String,
        /// What went wrong.
        source: StorageError,
    },
    /// The server speaks another version of the protocol.
    #[error(
        "{url} speaks storage protocol version {server}; this client speaks {client} (upgrade the older side)"
    )]
    Version {
        /// The URL.
        url: String,
        /// The server's version.
        server: u32,
        /// This client's.
        client: u32,
    },
}

impl ConnectError {
    /// Whether trying again may help (a server down or busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ConnectError::Unreachable { source, .. } if source.is_retryable())
    }
}

/// Why [`HttpStorage::log`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenLogError {
    /// The server has no log with that id (and it was not to be created).
    #[error("the server has no log {id}")]
    NotFound {
        /// The id.
        id: String,
    },
    /// The server's store cannot name a log so.
    #[error("invalid log id {id:?}: {problem}")]
    InvalidId {
        /// The id.
        id: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The call failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
