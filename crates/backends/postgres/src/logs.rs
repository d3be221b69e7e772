//! A database as a [`LogStore`]: its logs, by name.

use crate::{BACKEND, OpenError, PostgresDatabase};
use async_trait::async_trait;
use infinisheet_event_log::{EventLog, LogStore, LogStoreError, check_log_id};
use std::sync::Arc;

/// The logs of the database, by name (its URL, without the password):
/// each [`log`](LogStore::log) is a handle on this pool.
#[async_trait]
impl LogStore for PostgresDatabase {
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
            Err(OpenError::Storage { source, .. }) => {
                Err(LogStoreError::storage(self.url(), id, source))
            }
            Err(err) => Err(LogStoreError::other(self.url(), id, false, err)),
        }
    }
}
