//! `memory:`: logs and blobs in this process, gone when it ends.

use super::{Access, Opener, StorageUrlError};
use async_trait::async_trait;
use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::LogStore;
use infinisheet_memory::{MemoryBlobStore, MemoryLogs};
use std::sync::Arc;

pub(super) struct Memory;

#[async_trait]
impl Opener for Memory {
    async fn logs(
        &self,
        url: &str,
        _: &str,
        _: Access,
    ) -> Result<Arc<dyn LogStore>, StorageUrlError> {
        Ok(Arc::new(MemoryLogs::new().named(url)))
    }

    async fn blobs(
        &self,
        _: &str,
        _: &str,
        _: Access,
    ) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
        Ok(Arc::new(MemoryBlobStore::new()))
    }
}
