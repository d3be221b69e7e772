//! The `BlobStore` and `BlobDir` traits of Infinisheet and the types that
//! cross them.
//!
//! A blob store is a hierarchy of directories holding blobs: immutable bytes
//! per write. A store hands out its root [`BlobDir`]; every operation works on
//! names inside one directory. Names are validated [`BlobName`]s, so an
//! invalid name can never reach a backend, let alone name a path outside the
//! store. A directory exists while some blob lies beneath it; an empty one is
//! invisible.
//!
//! The crate holds only traits, types, errors and small helpers; it performs
//! no I/O and names no backend.
//!
//! ```
//! use infinisheet_blob_store::{BlobDirExt, BlobStore, EntryKind};
//! use infinisheet_memory::MemoryBlobStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryBlobStore::new();
//! let sheet = store.root().open_dir("budget").await?;
//! sheet.write("metadata", &b"{}"[..]).await?;
//! assert_eq!(&sheet.read("metadata").await?[..], b"{}");
//! let listed = store.root().list_all().await?;
//! assert_eq!(listed[0].name.as_str(), "budget");
//! assert_eq!(listed[0].kind, EntryKind::Dir);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Layout
//!
//! `BlobStore` (`root`), `BlobDir` (`read_blob`,
//! `write_blob`, `remove_blob`, `dir`, `list`, `remove_all`), `BlobName`,
//! `Continuation`, errors, `BlobDirExt` (string names, `list_all`),
//! `ListEntry` (a name, its kind, and a blob's size when the listing has it:
//! the object store's does, so `infinisheet info` adds sizes up without
//! reading a blob), and
//! `raw` (for implementers, as the log's): the path-joined key scheme,
//! scoped continuation tokens and the paging loop shared by the memory,
//! SQLite and filesystem stores.
//!
//! # Invariants
//!
//! * Invalid blob names cannot reach a backend: `BlobDir` takes `BlobName`,
//!   which rejects empty, over-100-character, `.`, `..`, separator and control
//!   character names.
//! * An empty directory is invisible; `dir()` creates nothing until a blob is
//!   written beneath it.
//! * A listing page holds at most the names a store declares
//!   ([`BlobCapabilities::page_size`], at most [`MAX_PAGE`], 1,000); a
//!   continuation token is accepted only by the directory that issued it.
//!
//! # Decisions
//!
//! * `BlobStore::root()` is synchronous: directories exist implicitly, so
//!   obtaining the root needs no I/O in any planned backend.

/// The attribute the traits are declared with: implement them under
/// `#[async_trait]` (re-exported, so an implementer needs no dependency of
/// its own).
pub use async_trait::async_trait;

mod dir;
mod error;
mod ext;
mod list;
mod name;
pub mod raw;

pub use dir::{BlobCapabilities, BlobDir, BlobStore, MAX_PAGE};
pub use error::{DirError, ListError, ReadBlobError, RemoveBlobError, WriteBlobError};
pub use ext::BlobDirExt;
pub use infinisheet_storage_error::{BoxError, StorageError};
pub use list::{Continuation, EntryKind, ListEntry, ListPage};
pub use name::{BlobName, InvalidBlobName, MAX_NAME_CHARS};
