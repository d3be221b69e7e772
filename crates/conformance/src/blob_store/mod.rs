//! The conformance cases of the [`BlobStore`] and [`BlobDir`] contracts.
//!
//! Each case takes a fresh, empty store (persistence cases also take a way to
//! reopen it) and panics when the store breaks the contract.

use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobName, BlobStore, EntryKind, ListEntry};
use std::sync::Arc;

mod content;
mod handles;
mod kinds;
mod listing;
mod model;
mod names;
mod persistence;

pub use content::*;
pub use handles::*;
pub use kinds::*;
pub use listing::*;
pub use model::*;
pub use names::*;
pub use persistence::*;

/// The store under test, as host apps hold it.
pub type Store = Arc<dyn BlobStore>;

/// Whether `store` declares itself persistent (for the macros).
#[doc(hidden)]
pub fn persistent<S: BlobStore>(store: &S) -> bool {
    store.capabilities().persistent
}

/// A valid name; panics on an invalid one (names in the suite are literals).
fn name(text: &str) -> BlobName {
    BlobName::new(text).unwrap_or_else(|err| panic!("the suite used an invalid name: {err}"))
}

/// `dir`'s listing as sorted `(name, kind)` pairs.
async fn listing(dir: &dyn BlobDir) -> Vec<(String, EntryKind)> {
    let mut entries: Vec<_> = dir
        .list_all()
        .await
        .unwrap_or_else(|err| panic!("listing: {err}"))
        .into_iter()
        .map(|ListEntry { name, kind, .. }| (name.into_string(), kind))
        .collect();
    entries.sort();
    entries
}

/// Sorted `(name, kind)` pairs from literals.
fn entries(expected: &[(&str, EntryKind)]) -> Vec<(String, EntryKind)> {
    let mut entries: Vec<_> = expected
        .iter()
        .map(|(name, kind)| ((*name).to_owned(), *kind))
        .collect();
    entries.sort();
    entries
}

/// The directory at `path` below the root.
async fn open(store: &Store, path: &[&str]) -> Arc<dyn BlobDir> {
    let mut dir = store.root();
    for part in path {
        dir = dir
            .open_dir(part)
            .await
            .unwrap_or_else(|err| panic!("opening directory {part}: {err}"));
    }
    dir
}

/// Writes `content` as `name` in `dir`, panicking with context on failure.
async fn put(dir: &dyn BlobDir, blob: &str, content: &[u8]) {
    dir.write(blob, bytes::Bytes::copy_from_slice(content))
        .await
        .unwrap_or_else(|err| panic!("writing {blob}: {err}"));
}
