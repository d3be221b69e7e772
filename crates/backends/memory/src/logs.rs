//! `MemoryLogs`: logs in this process's memory, by id.

use crate::{MemoryEventLog, lock};
use async_trait::async_trait;
use infinisheet_event_log::{EventLog, LogStore, LogStoreError, check_log_id};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Logs in this process's memory (`memory:`), by id; gone when the last
/// clone is dropped. Every [`log`](LogStore::log) of an id is a clone of
/// one [`MemoryEventLog`], so handles agree.
#[derive(Clone, Debug)]
pub struct MemoryLogs {
    url: String,
    logs: Arc<Mutex<HashMap<String, MemoryEventLog>>>,
}

impl MemoryLogs {
    /// A store with no logs, named `memory:`.
    pub fn new() -> MemoryLogs {
        MemoryLogs {
            url: "memory:".to_owned(),
            logs: Arc::default(),
        }
    }

    /// The same, named `url` in messages.
    pub fn named(mut self, url: &str) -> MemoryLogs {
        url.clone_into(&mut self.url);
        self
    }
}

impl Default for MemoryLogs {
    fn default() -> Self {
        MemoryLogs::new()
    }
}

#[async_trait]
impl LogStore for MemoryLogs {
    fn backend(&self) -> &str {
        crate::BACKEND
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        check_log_id(self, id)?;
        let mut logs = lock(&self.logs);
        match logs.get(id) {
            Some(log) => Ok(Arc::new(log.clone())),
            None if create => {
                let log = MemoryEventLog::new();
                logs.insert(id.to_owned(), log.clone());
                Ok(Arc::new(log))
            }
            None => Err(LogStoreError::not_found(&self.url, id)),
        }
    }
}
