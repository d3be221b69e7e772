//! A database as a [`LogStore`]: its logs, by name.

use crate::{BACKEND, OpenError, SqliteDatabase};
use async_trait::async_trait;
use infinisheet_event_log::{EventLog, LogStore, LogStoreError, check_log_id};
use std::sync::Arc;

/// The logs of the database, by name (`sqlite:PATH`): each
/// [`log`](LogStore::log) is a handle on this connection, so they agree
/// and wake each other's tails.
#[async_trait]
impl LogStore for SqliteDatabase {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn url(&self) -> &str {
        &self.shared.url
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        check_log_id(self, id)?;
        let log = if create {
            self.open_or_create_log(id).await
        } else {
            self.open_log(id).await
        };
        match log {
            Ok(log) => Ok(Arc::new(log)),
            Err(OpenError::NotFound { .. }) => Err(LogStoreError::not_found(self.url(), id)),
            Err(OpenError::Storage(err)) => Err(LogStoreError::storage(self.url(), id, err)),
            Err(err) => Err(LogStoreError::other(self.url(), id, false, err)),
        }
    }
}
