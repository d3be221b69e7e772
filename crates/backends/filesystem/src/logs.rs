//! `FileLogs`: a directory of logs, one directory each.

use crate::{FsEventLog, FsLogOptions, OpenLogError};
use async_trait::async_trait;
use infinisheet_event_log::{EventLog, LogStore, LogStoreError, check_log_id};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Logs as directories under one root (`file:DIR`), each an
/// [`FsEventLog`] opened with the same options. Every
/// [`log`](LogStore::log) opens a fresh handle; handles of one log agree
/// (the log's lock file orders their appends) and wake each other's
/// tails in this process.
#[derive(Clone, Debug)]
pub struct FileLogs {
    url: String,
    root: PathBuf,
    options: FsLogOptions,
}

impl FileLogs {
    /// The logs under `root` (which must exist), opened with `options`,
    /// named `file:ROOT` in messages.
    pub fn new(root: impl AsRef<Path>, options: FsLogOptions) -> FileLogs {
        let root = root.as_ref().to_owned();
        FileLogs {
            url: format!("file:{}", root.display()),
            root,
            options,
        }
    }

    /// The same, named `url` in messages (the URL a user gave).
    pub fn named(mut self, url: &str) -> FileLogs {
        url.clone_into(&mut self.url);
        self
    }
}

#[async_trait]
impl LogStore for FileLogs {
    /// `file`, as sheet metadata records it.
    fn backend(&self) -> &str {
        "file"
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn log(&self, id: &str, create: bool) -> Result<Arc<dyn EventLog>, LogStoreError> {
        check_log_id(self, id)?;
        let dir = self.root.join(id);
        if !create && !dir.is_dir() {
            return Err(LogStoreError::not_found(&self.url, id));
        }
        match FsEventLog::open(&dir, self.options).await {
            Ok(log) => Ok(Arc::new(log)),
            Err(OpenLogError::Storage(err)) => Err(LogStoreError::storage(&self.url, id, err)),
            Err(err) => Err(LogStoreError::other(&self.url, id, false, err)),
        }
    }
}
