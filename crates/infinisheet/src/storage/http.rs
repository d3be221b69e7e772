//! Storage over HTTP (feature `http`): [`HttpLogs`], a [`LogStore`] of a
//! server's logs for `http://` and `https://` URLs, and
//! [`storage_service`], which serves a [`Storage`] to such clients.

use super::{LogStore, LogStoreError, Storage};
use async_trait::async_trait;
use infinisheet_event_log::{EventLog, StorageError};
use infinisheet_http::{HttpStorage, LogSource, OpenLogError, SourceError, StorageService};
use std::sync::Arc;

/// The logs of a server's storage (`infinisheet serve`), by the same ids
/// as there: a catalog opened on `http://HOST:PORT` logs and blobs is the
/// server's catalog. [`backend`](LogStore::backend) is the server's own
/// (`sqlite`, `file`, ...), so sheet metadata matches whichever way the
/// sheet is opened.
#[derive(Clone, Debug)]
pub struct HttpLogs {
    url: String,
    storage: HttpStorage,
}

impl HttpLogs {
    /// The logs of the server `storage` connects to; `url` is how
    /// messages name it.
    pub fn new(storage: HttpStorage, url: &str) -> HttpLogs {
        HttpLogs {
            url: url.to_owned(),
            storage,
        }
    }
}

#[async_trait]
impl LogStore for HttpLogs {
    fn backend(&self) -> &str {
        self.storage.log_backend()
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        super::check_log_id(self, id)?;
        match self.storage.log(id, create).await {
            Ok(log) => Ok(Arc::new(log)),
            Err(OpenLogError::NotFound { .. }) => Err(LogStoreError::not_found(&self.url, id)),
            Err(OpenLogError::Storage(err)) => Err(LogStoreError::storage(&self.url, id, err)),
            Err(err) => Err(LogStoreError::other(&self.url, id, false, err)),
        }
    }
}

/// A [`StorageService`] answering for `storage`'s logs and blobs: what
/// `infinisheet serve` mounts at `POST /api/storage`, so programs on other
/// machines open its catalog through `http://` URLs.
pub fn storage_service(storage: &Storage) -> StorageService {
    StorageService::new(
        Arc::new(ServedLogs(storage.logs.clone())),
        storage.blobs.clone(),
    )
}

/// A catalog's [`LogStore`] as the service's [`LogSource`].
#[derive(Debug)]
struct ServedLogs(Arc<dyn LogStore>);

#[async_trait]
impl LogSource for ServedLogs {
    fn backend(&self) -> &str {
        self.0.backend()
    }

    async fn open_log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, SourceError> {
        match self.0.log(id, create).await {
            Ok(log) => Ok(log),
            Err(LogStoreError::NotFound { .. }) => Err(SourceError::NotFound),
            Err(LogStoreError::InvalidId { problem, .. }) => {
                Err(SourceError::InvalidId(problem.to_owned()))
            }
            Err(err) => {
                let retryable = err.is_retryable();
                let message = infinisheet_storage_error::one_line(&err);
                Err(SourceError::Storage(if retryable {
                    StorageError::retryable("log store", message)
                } else {
                    StorageError::new("log store", message)
                }))
            }
        }
    }
}
