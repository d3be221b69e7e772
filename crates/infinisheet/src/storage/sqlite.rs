//! `sqlite:PATH`: logs (by name) and blob trees (`#TREE`) in one database
//! file.

use super::{
    Access, Opener, StorageUrlError, create_parent, local_path, open_error, storage_error,
};
use async_trait::async_trait;
use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::LogStore;
use infinisheet_sqlite::{OpenError, SqliteDatabase, SqliteOptions};
use std::path::Path;
use std::sync::Arc;

pub(super) struct Sqlite;

#[async_trait]
impl Opener for Sqlite {
    async fn logs(
        &self,
        url: &str,
        rest: &str,
        access: Access,
    ) -> Result<Arc<dyn LogStore>, StorageUrlError> {
        Ok(Arc::new(
            database(url, &local_path(url, rest)?.0, access).await?,
        ))
    }

    async fn blobs(
        &self,
        url: &str,
        rest: &str,
        access: Access,
    ) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
        let (path, tree) = local_path(url, rest)?;
        let db = database(url, &path, access).await?;
        let tree = tree.unwrap_or_else(|| "blobs".to_owned());
        let store = match access {
            Access::ReadWrite => db.blob_store(&tree).await,
            Access::ReadOnly => db.open_blob_store(&tree).await,
        };
        Ok(Arc::new(store.map_err(|err| match err {
            OpenError::NotFound { .. } => StorageUrlError::Missing {
                url: url.to_owned(),
                what: format!("the database holds no blob tree {tree:?}"),
            },
            OpenError::Storage(err) => storage_error(url)(err),
            other => open_error(url, false)(other),
        })?))
    }
}

/// The SQLite database at `path` (for writing: created, with its
/// directory, if missing).
pub(super) async fn database(
    url: &str,
    path: &Path,
    access: Access,
) -> Result<SqliteDatabase, StorageUrlError> {
    let opened = match access {
        Access::ReadWrite => {
            create_parent(url, path)?;
            SqliteDatabase::open(path, SqliteOptions::default()).await
        }
        Access::ReadOnly => SqliteDatabase::open_read_only(path, SqliteOptions::default()).await,
    };
    opened.map_err(|err| match err {
        OpenError::Missing { path } => StorageUrlError::Missing {
            url: url.to_owned(),
            what: format!("there is no database at {}", path.display()),
        },
        OpenError::Storage(err) => storage_error(url)(err),
        other => open_error(url, false)(other),
    })
}
