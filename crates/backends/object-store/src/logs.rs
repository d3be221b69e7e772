//! `ObjectStoreLogs`: logs under a key prefix, a prefix each.

use crate::{ObjectStoreEventLog, OpenError};
use async_trait::async_trait;
use infinisheet_event_log::{EventLog, LogStore, LogStoreError, check_log_id};
use object_store::ObjectStore;
use object_store::path::Path;
use std::sync::Arc;

/// Logs under a key prefix of an object store (`s3://bucket/prefix`), a
/// prefix per log; the store must offer conditional create and
/// ETag-conditional replace (each log checks when it is opened). Every
/// [`log`](LogStore::log) opens a fresh handle; handles agree, as clients
/// on other machines do, through the store's conditional writes.
#[derive(Clone, Debug)]
pub struct ObjectStoreLogs {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl ObjectStoreLogs {
    /// The logs under `prefix` of `store` (any `object_store` store a
    /// host app built itself); `url` is how messages name it.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path, url: &str) -> ObjectStoreLogs {
        ObjectStoreLogs {
            url: url.to_owned(),
            store,
            prefix,
        }
    }
}

#[async_trait]
impl LogStore for ObjectStoreLogs {
    fn backend(&self) -> &str {
        crate::error::BACKEND
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        check_log_id(self, id)?;
        let at = self.prefix.clone().join(id);
        let log = if create {
            ObjectStoreEventLog::open(self.store.clone(), at).await
        } else {
            // Reading only: a sheet opened for reading needs no write
            // permission.
            ObjectStoreEventLog::open_existing(self.store.clone(), at).await
        };
        match log {
            Ok(log) => Ok(Arc::new(log)),
            Err(OpenError::NotFound { .. }) => Err(LogStoreError::not_found(&self.url, id)),
            Err(OpenError::Storage(err)) => Err(LogStoreError::storage(&self.url, id, err)),
            Err(err) => Err(LogStoreError::other(&self.url, id, false, err)),
        }
    }
}
