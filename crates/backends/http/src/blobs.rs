//! [`HttpBlobStore`] and [`HttpBlobDir`]: the server's blob store, over
//! HTTP.

use crate::BACKEND;
use crate::client::{CallError, Client, storage, unexpected};
use crate::wire::{self, BlobOp, Reply, Request, WireError};
use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_blob_store::{
    BlobCapabilities, BlobDir, BlobName, BlobStore, Continuation, DirError, ListError, ListPage,
    ReadBlobError, RemoveBlobError, StorageError, WriteBlobError,
};
use std::sync::Arc;

/// The blob store of a server's storage (`infinisheet serve`), over HTTP,
/// or one directory of it ([`at`](HttpBlobStore::at)): each call is one
/// request, answered as the store behind the server answers it.
#[derive(Clone, Debug)]
pub struct HttpBlobStore {
    root: HttpBlobDir,
    path: Vec<BlobName>,
}

impl HttpBlobStore {
    pub(crate) fn new(client: Client) -> HttpBlobStore {
        HttpBlobStore {
            root: HttpBlobDir {
                client,
                path: Vec::new(),
            },
            path: Vec::new(),
        }
    }

    /// The same server's store with its root at the directory `path`
    /// below this one's root (a host's own corner of a shared store).
    #[must_use]
    pub fn at(&self, path: &[BlobName]) -> HttpBlobStore {
        let mut root = self.root.clone();
        root.path
            .extend(path.iter().map(|name| name.as_str().to_owned()));
        let mut at = self.path.clone();
        at.extend_from_slice(path);
        HttpBlobStore { root, path: at }
    }

    /// Where this store's root is in the server's store (empty: at its
    /// root).
    pub fn path(&self) -> &[BlobName] {
        &self.path
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.root.client.base()
    }
}

impl BlobStore for HttpBlobStore {
    fn root(&self) -> Arc<dyn BlobDir> {
        Arc::new(self.root.clone())
    }

    /// The server's: persistent if its store is, pages as large as its
    /// store's.
    fn capabilities(&self) -> BlobCapabilities {
        let capabilities = if self.root.client.blobs_persistent() {
            BlobCapabilities::persistent()
        } else {
            BlobCapabilities::volatile()
        };
        capabilities.with_page_size(self.root.client.blobs_page())
    }
}

/// One directory of an [`HttpBlobStore`], named by its path from the
/// server's root; the server resolves the path on each call.
#[derive(Clone, Debug)]
pub struct HttpBlobDir {
    client: Client,
    path: Vec<String>,
}

impl HttpBlobDir {
    async fn call(&self, op: BlobOp) -> Result<Reply, CallError> {
        let request = Request::Blob {
            dir: crate::wire::Capped(self.path.clone()),
            op,
        };
        self.client.call(&request, None).await
    }
}

/// A name the server sent back in an error, which must be a blob name.
fn name_from(name: String) -> Result<BlobName, StorageError> {
    BlobName::new(name).map_err(|err| {
        StorageError::new(BACKEND, format!("the server named an invalid blob: {err}"))
    })
}

#[async_trait]
impl BlobDir for HttpBlobDir {
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        let op = BlobOp::Read {
            name: name.as_str().to_owned(),
        };
        match self.call(op).await {
            Ok(Reply::Blob(content)) => Ok(content),
            Ok(other) => Err(unexpected(other.kind()).into()),
            Err(CallError::Wire(WireError::NotFound { name })) => Err(ReadBlobError::NotFound {
                name: name_from(name)?,
            }),
            Err(CallError::Wire(WireError::WrongKind { name, dir })) => {
                Err(ReadBlobError::WrongKind {
                    name: name_from(name)?,
                    found: wire::kind(dir),
                })
            }
            Err(err) => Err(storage(err).into()),
        }
    }

    async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError> {
        let op = BlobOp::Write {
            name: name.as_str().to_owned(),
            content,
        };
        match self.call(op).await {
            Ok(Reply::Done) => Ok(()),
            Ok(other) => Err(unexpected(other.kind()).into()),
            Err(CallError::Wire(WireError::WrongKind { name, dir })) => {
                Err(WriteBlobError::WrongKind {
                    name: name_from(name)?,
                    found: wire::kind(dir),
                })
            }
            Err(err) => Err(storage(err).into()),
        }
    }

    async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
        let op = BlobOp::Remove {
            name: name.as_str().to_owned(),
        };
        match self.call(op).await {
            Ok(Reply::Done) => Ok(()),
            Ok(other) => Err(unexpected(other.kind()).into()),
            Err(CallError::Wire(WireError::WrongKind { name, dir })) => {
                Err(RemoveBlobError::WrongKind {
                    name: name_from(name)?,
                    found: wire::kind(dir),
                })
            }
            Err(err) => Err(storage(err).into()),
        }
    }

    async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError> {
        // Asked of the server, so a blob in the way is the same error as
        // on the backend behind it.
        let op = BlobOp::Dir {
            name: name.as_str().to_owned(),
        };
        match self.call(op).await {
            Ok(Reply::Done) => {
                let mut path = self.path.clone();
                path.push(name.as_str().to_owned());
                Ok(Arc::new(HttpBlobDir {
                    client: self.client.clone(),
                    path,
                }))
            }
            Ok(other) => Err(unexpected(other.kind()).into()),
            Err(CallError::Wire(WireError::WrongKind { name, dir })) => Err(DirError::WrongKind {
                name: name_from(name)?,
                found: wire::kind(dir),
            }),
            Err(err) => Err(storage(err).into()),
        }
    }

    async fn list(&self, continuation: Option<&Continuation>) -> Result<ListPage, ListError> {
        let op = BlobOp::List {
            continuation: continuation.map(|c| c.as_str().to_owned()),
        };
        match self.call(op).await {
            Ok(Reply::Listed {
                entries,
                continuation,
            }) => wire::page_from_wire(entries, continuation).map_err(|problem| {
                StorageError::new(
                    BACKEND,
                    format!("the server listed an invalid name: {problem}"),
                )
                .into()
            }),
            Ok(other) => Err(unexpected(other.kind()).into()),
            Err(CallError::Wire(WireError::NoContinuation)) => Err(ListError::NoContinuation),
            Err(err) => Err(storage(err).into()),
        }
    }

    async fn remove_all(&self) -> Result<(), StorageError> {
        match self.call(BlobOp::RemoveAll).await {
            Ok(Reply::Done) => Ok(()),
            Ok(other) => Err(unexpected(other.kind())),
            Err(err) => Err(storage(err)),
        }
    }
}
