//! `file:DIR`: logs as directories, blobs as files.

use super::{Access, Opener, StorageUrlError, local_path, open_error, storage_error};
use async_trait::async_trait;
use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::LogStore;
use infinisheet_filesystem::{FileLogs, FsBlobStore, FsLogOptions};
use std::path::Path;
use std::sync::Arc;

pub(super) struct Files;

#[async_trait]
impl Opener for Files {
    async fn logs(
        &self,
        url: &str,
        rest: &str,
        access: Access,
    ) -> Result<Arc<dyn LogStore>, StorageUrlError> {
        let (path, _) = local_path(url, rest)?;
        match access {
            Access::ReadWrite => std::fs::create_dir_all(&path).map_err(open_error(url, false))?,
            Access::ReadOnly if path.is_dir() => {}
            Access::ReadOnly => {
                return Err(StorageUrlError::Missing {
                    url: url.to_owned(),
                    what: format!("there is no log directory at {}", path.display()),
                });
            }
        }
        Ok(Arc::new(
            FileLogs::new(path, FsLogOptions::default()).named(url),
        ))
    }

    async fn blobs(
        &self,
        url: &str,
        rest: &str,
        access: Access,
    ) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
        blob_store(url, &local_path(url, rest)?.0, access).await
    }
}

/// The filesystem blob store at `path` (for writing: created if missing).
pub(super) async fn blob_store(
    url: &str,
    path: &Path,
    access: Access,
) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
    let store = match access {
        Access::ReadWrite => {
            std::fs::create_dir_all(path).map_err(open_error(url, false))?;
            FsBlobStore::open(path).await
        }
        Access::ReadOnly if !path.is_dir() => {
            return Err(StorageUrlError::Missing {
                url: url.to_owned(),
                what: format!("there is no blob store at {}", path.display()),
            });
        }
        Access::ReadOnly => FsBlobStore::open_read_only(path).await,
    };
    Ok(Arc::new(store.map_err(storage_error(url))?))
}
