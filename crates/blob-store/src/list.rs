//! Directory listings: entries, pages and the opaque continuation token.

use crate::BlobName;
use std::fmt;

/// Whether a name in a directory is a blob or a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// A blob: bytes.
    Blob,
    /// A directory holding at least one blob somewhere beneath it.
    Dir,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::Blob => "blob",
            EntryKind::Dir => "directory",
        })
    }
}

/// One name in a listing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListEntry {
    /// The name inside the listed directory.
    pub name: BlobName,
    /// Blob or directory.
    pub kind: EntryKind,
    /// A blob's length in bytes, when the listing tells it without reading
    /// the blob (an object store's listing does); `None` for a directory
    /// and where the backend does not say. When given it is the length
    /// [`read_blob`](crate::BlobDir::read_blob) returned at listing time.
    pub size: Option<u64>,
}

impl ListEntry {
    /// An entry of `kind` without a size.
    pub fn new(name: BlobName, kind: EntryKind) -> Self {
        ListEntry {
            name,
            kind,
            size: None,
        }
    }

    /// The same entry with a blob's length.
    #[must_use]
    pub fn with_size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The names on this page, in no promised order.
    pub entries: Vec<ListEntry>,
    /// Pass this to [`list`](crate::BlobDir::list) for the next page; `None`
    /// on the last page.
    pub continuation: Option<Continuation>,
}

/// An opaque token that continues a listing where a page stopped.
///
/// Only the directory that issued it accepts it. It is plain text, so a host
/// can hand it to a client and take it back later
/// ([`as_str`](Continuation::as_str), [`From<String>`](Continuation::from)).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Continuation(String);

impl Continuation {
    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Continuation {
    fn from(value: String) -> Self {
        Continuation(value)
    }
}

impl fmt::Debug for Continuation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Continuation({:?})", self.0)
    }
}
