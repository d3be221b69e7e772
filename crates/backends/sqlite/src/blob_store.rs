//! `SqliteBlobStore`: a named blob tree in a database file. A blob is a row
//! keyed by its full path (names joined with `/`), so a directory is the
//! contiguous range of keys beneath it; every operation is one transaction,
//! except that blob writes made at once (a snapshot's tiles) commit
//! together: each waits in the database's queue, and the first to take the
//! connection writes every waiting one in one transaction and one sync,
//! then answers each.

use crate::checksum;
use crate::database::{Mode, SqliteDatabase};
use crate::error::OpenError;
use crate::error::{BACKEND, Failed, copy, finish, storage};
use crate::write_queue::QueuedWrite;
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_blob_store::{
    BlobCapabilities, BlobDir, BlobName, BlobStore, Continuation, DirError, EntryKind, ListError,
    ListPage, ReadBlobError, RemoveBlobError, StorageError, WriteBlobError, raw,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::sync::Arc;

/// A named [`BlobStore`] in a [`SqliteDatabase`]. Clones share the
/// database's connection; handles in other processes see the same blobs.
#[derive(Clone, Debug)]
pub struct SqliteBlobStore {
    db: SqliteDatabase,
    id: i64,
    name: String,
}

/// A directory of a [`SqliteBlobStore`].
#[derive(Clone, Debug)]
pub struct SqliteBlobDir {
    db: SqliteDatabase,
    store: i64,
    path: Vec<BlobName>,
}

/// Opening blob stores: the database's side of [`SqliteBlobStore`].
impl SqliteDatabase {
    /// Opens the existing blob store `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] if there is no such blob store;
    /// [`OpenError::InvalidName`], [`OpenError::Storage`].
    pub async fn open_blob_store(&self, name: &str) -> Result<SqliteBlobStore, OpenError> {
        let id = self
            .named("blob store", "blob_stores", name, Mode::Open)
            .await?;
        Ok(SqliteBlobStore::new(self.clone(), id, name.to_owned()))
    }

    /// Opens the blob store `name`, creating it if it does not exist.
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidName`], [`OpenError::Storage`].
    pub async fn blob_store(&self, name: &str) -> Result<SqliteBlobStore, OpenError> {
        let id = self
            .named("blob store", "blob_stores", name, Mode::OpenOrCreate)
            .await?;
        Ok(SqliteBlobStore::new(self.clone(), id, name.to_owned()))
    }
}

impl SqliteBlobStore {
    pub(crate) fn new(db: SqliteDatabase, id: i64, name: String) -> Self {
        SqliteBlobStore { db, id, name }
    }

    /// A new blob store in a new temporary database, removed when the last
    /// handle is dropped. For tests and samples.
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::temporary`].
    pub async fn temporary(options: crate::SqliteOptions) -> Result<Self, crate::OpenError> {
        SqliteDatabase::temporary(options)
            .await?
            .blob_store("blobs")
            .await
    }

    /// The same store through a new connection to the same file.
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::open`] and [`SqliteDatabase::blob_store`].
    pub async fn reopen(self) -> Result<Self, crate::OpenError> {
        let db = self.db.reopen().await?;
        db.blob_store(&self.name).await
    }

    /// A second, independent handle on the same store, on a new
    /// connection to the same file, while this one stays open.
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::open`](crate::SqliteDatabase::open) and
    /// [`SqliteDatabase::blob_store`](crate::SqliteDatabase::blob_store).
    pub async fn open_again(&self) -> Result<Self, crate::OpenError> {
        let db = self.db.reopen().await?;
        db.blob_store(&self.name).await
    }

    /// The store's name in its database.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl BlobStore for SqliteBlobStore {
    fn root(&self) -> Arc<dyn BlobDir> {
        Arc::new(SqliteBlobDir {
            db: self.db.clone(),
            store: self.id,
            path: Vec::new(),
        })
    }

    fn capabilities(&self) -> BlobCapabilities {
        BlobCapabilities::persistent().with_page_size(self.db.shared.options.listing_page())
    }
}

fn is_blob(tx: &Connection, store: i64, key: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT 1 FROM blobs WHERE store = ?1 AND path = ?2")?
        .exists(params![store, key])
}

/// Whether a blob is at a path, from the second index of paths alone (it
/// covers the query: no table page is read).
pub(crate) const SECOND_BLOB_LOOKUP: &str =
    "SELECT 1 FROM blobs INDEXED BY blobs_by_path WHERE path = ?2 AND store = ?1";

/// Whether the second index of blob paths (schema version 3) holds `key`.
fn indexed_by_path(tx: &Connection, store: i64, key: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(SECOND_BLOB_LOOKUP)?
        .exists(params![store, key])
}

fn has_children(tx: &Connection, store: i64, key: &str) -> rusqlite::Result<bool> {
    let (lower, upper) = raw::subtree_range(key);
    tx.prepare_cached("SELECT 1 FROM blobs WHERE store = ?1 AND path >= ?2 AND path < ?3 LIMIT 1")?
        .exists(params![store, lower, upper])
}

/// The first directory on the way to `path` (or `path` itself) that a blob
/// has replaced.
fn blocked_by_blob(
    tx: &Connection,
    store: i64,
    path: &[BlobName],
) -> rusqlite::Result<Option<BlobName>> {
    for (key, name) in raw::ancestor_keys(path) {
        if is_blob(tx, store, &key)? {
            return Ok(Some(name.clone()));
        }
    }
    Ok(None)
}

/// The first key at or after `lower` in the store, below `upper` if given.
fn next_key(
    tx: &Transaction<'_>,
    store: i64,
    lower: &str,
    upper: Option<&str>,
) -> rusqlite::Result<Option<String>> {
    match upper {
        Some(upper) => tx
            .prepare_cached(
                "SELECT path FROM blobs WHERE store = ?1 AND path >= ?2 AND path < ?3 \
                 ORDER BY path LIMIT 1",
            )?
            .query_row(params![store, lower, upper], |row| row.get(0))
            .optional(),
        None => tx
            .prepare_cached(
                "SELECT path FROM blobs WHERE store = ?1 AND path >= ?2 ORDER BY path LIMIT 1",
            )?
            .query_row(params![store, lower], |row| row.get(0))
            .optional(),
    }
}

/// Writes one queued blob in `tx`: nothing if it is refused (a blob or a
/// directory in the way).
fn write_one(tx: &Transaction<'_>, write: &QueuedWrite) -> Result<(), Failed<WriteBlobError>> {
    let store = write.store;
    if let Some(blocker) = blocked_by_blob(tx, store, &write.path)? {
        return Err(Failed::Op(WriteBlobError::WrongKind {
            name: blocker,
            found: EntryKind::Blob,
        }));
    }
    if has_children(tx, store, &write.key)? {
        return Err(Failed::Op(WriteBlobError::WrongKind {
            name: write.name.clone(),
            found: EntryKind::Dir,
        }));
    }
    let crc = checksum::blob(store, &write.key, &write.content);
    tx.prepare_cached(
        "INSERT INTO blobs (store, path, content, crc) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (store, path) DO UPDATE SET content = excluded.content, crc = excluded.crc",
    )?
    .execute(params![store, write.key, &write.content[..], crc])?;
    Ok(())
}

/// Takes the connection and commits every queued blob write in one
/// transaction, answering each: a refused write its own error; a SQLite
/// error (a full disk, a lock held too long) rolls back all of them and
/// answers each with it, so none is acknowledged unless all are durable.
fn commit_writes(shared: &crate::database::Shared, whose: &str) {
    let mut connection = shared.connection.lock();
    let writes = shared.blob_writes.take();
    if writes.is_empty() {
        return; // another call committed them
    }
    let doing = "writing a blob";
    let outcome = (|| -> Result<Vec<Result<(), Failed<WriteBlobError>>>, rusqlite::Error> {
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(writes.len());
        for write in &writes {
            match write_one(&tx, write) {
                Err(Failed::Sql(err)) => return Err(err),
                other => results.push(other),
            }
        }
        tx.commit()?;
        Ok(results)
    })();
    match outcome {
        Ok(results) => {
            for (write, result) in writes.into_iter().zip(results) {
                let _ = write.reply.send(finish(doing, whose, Ok(result)));
            }
        }
        Err(err) => {
            let err = storage(doing, err);
            for write in writes {
                let _ = write.reply.send(Err(copy(&err).into()));
            }
        }
    }
}

impl SqliteBlobDir {
    fn key(&self, name: &BlobName) -> String {
        raw::dir_prefix(&self.path) + name.as_str()
    }

    fn scope(&self) -> String {
        format!("sqlite:{:016x}:{}", self.db.shared.instance, self.store)
    }

    /// Runs `job` in one transaction on the shared connection.
    async fn run<T, E, F>(&self, doing: &str, immediate: bool, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Transaction<'_>, i64) -> Result<T, Failed<E>> + Send + 'static,
    {
        let store = self.store;
        let behavior = if immediate {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let result = self
            .db
            .shared
            .connection
            .call(false, move |conn: &mut Connection| {
                let tx = conn.transaction_with_behavior(behavior)?;
                let value = job(&tx, store)?;
                tx.commit()?;
                Ok(value)
            })
            .await;
        finish(
            doing,
            &format!("blob store {} of {}", self.store, self.db.path().display()),
            result,
        )
    }
}

#[async_trait]
impl BlobDir for SqliteBlobDir {
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        let key = self.key(name);
        let name = name.clone();
        self.run("reading a blob", false, move |tx, store| {
            let content: Option<(Vec<u8>, i64)> = tx
                .prepare_cached(
                    "SELECT content, crc FROM blobs INDEXED BY sqlite_autoindex_blobs_1 \
                     WHERE store = ?1 AND path = ?2",
                )?
                .query_row(params![store, &key], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            match content {
                Some((content, crc)) if crc != checksum::blob(store, &key, &content) => {
                    Err(Failed::Corrupt(format!("blob {key:?} fails its checksum")))
                }
                Some((content, _)) => Ok(Bytes::from(content)),
                None if has_children(tx, store, &key)? => {
                    Err(Failed::Op(ReadBlobError::WrongKind {
                        name,
                        found: EntryKind::Dir,
                    }))
                }
                // Absent, or hidden by a damaged page of the primary key's
                // index: ask the second index, whose pages are others.
                None if indexed_by_path(tx, store, &key)? => Err(Failed::Corrupt(format!(
                    "the index of blob paths misses blob {key:?}, which the second index holds"
                ))),
                None => Err(Failed::Op(ReadBlobError::NotFound { name })),
            }
        })
        .await
    }

    async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.db.shared.blob_writes.push(QueuedWrite {
            store: self.store,
            key: self.key(name),
            name: name.clone(),
            path: self.path.clone(),
            content,
            reply,
        });
        let shared = self.db.shared.clone();
        let whose = format!("blob store {} of {}", self.store, self.db.path().display());
        infinisheet_event_log::raw::pooled(BACKEND, move || commit_writes(&shared, &whose)).await?;
        // The commit that took this write has answered it by now.
        answer.await.unwrap_or_else(|_| {
            Err(StorageError::new(BACKEND, "a blob write went unanswered (a bug)").into())
        })
    }

    async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
        let key = self.key(name);
        let name = name.clone();
        self.run("removing a blob", true, move |tx, store| {
            let removed = tx
                .prepare_cached("DELETE FROM blobs WHERE store = ?1 AND path = ?2")?
                .execute(params![store, key])?;
            if removed == 0 && has_children(tx, store, &key)? {
                return Err(Failed::Op(RemoveBlobError::WrongKind {
                    name,
                    found: EntryKind::Dir,
                }));
            }
            Ok(())
        })
        .await
    }

    async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError> {
        let key = self.key(name);
        let (child, path) = (name.clone(), self.path.clone());
        self.run("opening a directory", false, move |tx, store| {
            if let Some(blocker) = blocked_by_blob(tx, store, &path)? {
                return Err(Failed::Op(DirError::WrongKind {
                    name: blocker,
                    found: EntryKind::Blob,
                }));
            }
            if is_blob(tx, store, &key)? {
                return Err(Failed::Op(DirError::WrongKind {
                    name: child,
                    found: EntryKind::Blob,
                }));
            }
            Ok(())
        })
        .await?;
        let mut path = self.path.clone();
        path.push(name.clone());
        Ok(Arc::new(SqliteBlobDir {
            db: self.db.clone(),
            store: self.store,
            path,
        }))
    }

    async fn list(&self, continuation: Option<&Continuation>) -> Result<ListPage, ListError> {
        let prefix = raw::dir_prefix(&self.path);
        let scope = self.scope();
        let lower = raw::start_key(continuation, &scope, &prefix)?;
        let page_size = self.db.shared.options.listing_page();
        self.run("listing a directory", false, move |tx, store| {
            // The root's keys have no upper bound; a directory's end where
            // its subtree does.
            let upper = prefix
                .strip_suffix('/')
                .map(|key| raw::subtree_range(key).1);
            raw::list_page(
                &scope,
                &prefix,
                lower,
                page_size,
                |lower| next_key(tx, store, lower, upper.as_deref()).map_err(Failed::Sql),
                |key, err| {
                    Failed::Op(ListError::Storage(
                        StorageError::new(
                            BACKEND,
                            format!("stored path {key:?} holds an invalid name"),
                        )
                        .with_source(err),
                    ))
                },
            )
        })
        .await
    }

    async fn remove_all(&self) -> Result<(), StorageError> {
        let prefix = raw::dir_prefix(&self.path);
        self.run("removing a directory", true, move |tx, store| {
            match prefix.strip_suffix('/') {
                None => tx
                    .prepare_cached("DELETE FROM blobs WHERE store = ?1")?
                    .execute([store])?,
                Some(key) => {
                    let (lower, upper) = raw::subtree_range(key);
                    tx.prepare_cached(
                        "DELETE FROM blobs WHERE store = ?1 AND path >= ?2 AND path < ?3",
                    )?
                    .execute(params![store, lower, upper])?
                }
            };
            Ok::<(), Failed<StorageError>>(())
        })
        .await
    }
}
