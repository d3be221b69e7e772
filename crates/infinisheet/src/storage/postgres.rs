//! `postgres://USER@HOST:PORT/DB` (and `postgresql://`): logs (by name) in
//! a PostgreSQL database, the password from the URL, `PGPASSWORD` or
//! `~/.pgpass`. It holds logs only: the blobs go elsewhere (`s3://…`,
//! `file:DIR`).

use super::{Access, Opener, StorageUrlError, open_error, storage_error};
use async_trait::async_trait;
use infinisheet_blob_store::BlobStore;
use infinisheet_event_log::LogStore;
use infinisheet_postgres::{OpenError, PostgresDatabase, PostgresOptions};
use std::sync::Arc;

pub(super) struct Postgres;

#[async_trait]
impl Opener for Postgres {
    async fn logs(
        &self,
        url: &str,
        _: &str,
        access: Access,
    ) -> Result<Arc<dyn LogStore>, StorageUrlError> {
        let options = PostgresOptions::default();
        let opened = match access {
            Access::ReadWrite => PostgresDatabase::connect(url, options).await,
            Access::ReadOnly => PostgresDatabase::connect_read_only(url, options).await,
        };
        // Messages name the database as the backend shows it.
        let shown = infinisheet_postgres::redact(url);
        match opened {
            Ok(db) => Ok(Arc::new(db)),
            Err(OpenError::NoTables { .. }) => Err(StorageUrlError::Missing {
                url: shown,
                what: "the database holds no sheets' logs (none created yet, or the URL names \
                       another database or schema: see its search_path)"
                    .into(),
            }),
            Err(OpenError::Storage { source, .. }) => Err(storage_error(&shown)(source)),
            Err(other) => Err(open_error(&shown, false)(other)),
        }
    }

    async fn blobs(
        &self,
        url: &str,
        _: &str,
        _: Access,
    ) -> Result<Arc<dyn BlobStore>, StorageUrlError> {
        Err(StorageUrlError::LogsOnly {
            url: infinisheet_postgres::redact(url),
        })
    }
}
