//! `http://HOST:PORT` and `https://…`: a server's storage (an `infinisheet
//! serve`), with the bearer token in `INFINISHEET_TOKEN` if set. Its
//! [`HttpStorage`] is the log store itself: its backend is the server's
//! own, so a catalog opened either way is the same catalog.

use super::{Access, Opener, StorageUrlError, open_error};
use async_trait::async_trait;
use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::LogStore;
use infinisheet_http::HttpStorage;
use std::sync::Arc;

pub(super) struct Http;

/// The storage of the server at `url`.
async fn server(url: &str) -> Result<HttpStorage, StorageUrlError> {
    let token = std::env::var("INFINISHEET_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    HttpStorage::connect(url, token).await.map_err(|err| {
        let retryable = err.is_retryable();
        open_error(url, retryable)(err)
    })
}

#[async_trait]
impl Opener for Http {
    async fn logs(
        &self,
        url: &str,
        _: &str,
        _: Access,
    ) -> Result<Arc<dyn LogStore>, StorageUrlError> {
        Ok(Arc::new(server(url).await?))
    }

    async fn blobs(
        &self,
        url: &str,
        _: &str,
        _: Access,
    ) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
        Ok(Arc::new(server(url).await?.blobs()))
    }
}
