//! `s3://`, `gs://`, `az://` and their kin: logs and blobs under a key
//! prefix of an object store, through the object-store backend's one URL
//! constructor (`object_store`'s builders, the environment, short
//! retries).

use super::{Access, Opener, StorageUrlError, open_error};
use async_trait::async_trait;
use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::LogStore;
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreLogs, UrlStore};
use std::sync::Arc;

pub(super) struct Objects;

/// The object store at `url`.
fn store(url: &str) -> Result<UrlStore, StorageUrlError> {
    // The scheme table lets through only the schemes this build has, so
    // every error here is the URL's or the environment's.
    infinisheet_object_store::open_url(url).map_err(open_error(url, false))
}

#[async_trait]
impl Opener for Objects {
    async fn logs(
        &self,
        url: &str,
        _: &str,
        _: Access,
    ) -> Result<Arc<dyn LogStore>, StorageUrlError> {
        let opened = store(url)?;
        Ok(Arc::new(ObjectStoreLogs::new(
            opened.store,
            opened.prefix,
            url,
        )))
    }

    async fn blobs(
        &self,
        url: &str,
        _: &str,
        _: Access,
    ) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
        let opened = store(url)?;
        let blobs = ObjectStoreBlobStore::new(opened.store, opened.prefix);
        Ok(Arc::new(match opened.lister {
            Some(lister) => blobs.with_paginated_listing(lister),
            None => blobs,
        }))
    }
}
