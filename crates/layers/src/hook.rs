//! The `Hook` trait a layer implements, and the description of a call it
//! receives.

use futures::future::BoxFuture;
use infinisheet_blob_store::{BlobName, StorageError};
use infinisheet_event_log::SequenceId;
use std::fmt::{self, Debug};

/// Which storage operation a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `EventLog::append_at` (and so `EventLogExt::add_entry` and
    /// `add_entries`).
    Append,
    /// `EventLog::query`.
    Query,
    /// `EventLog::set_metadata`.
    SetMetadata,
    /// `EventLog::truncate`.
    Truncate,
    /// `EventLog::bounds`.
    Bounds,
    /// `BlobDir::read_blob`.
    ReadBlob,
    /// `BlobDir::write_blob`.
    WriteBlob,
    /// `BlobDir::remove_blob`.
    RemoveBlob,
    /// `BlobDir::dir`.
    Dir,
    /// `BlobDir::list`.
    List,
    /// `BlobDir::remove_all`.
    RemoveAll,
}

impl Op {
    /// The method's name, as in the trait.
    pub fn name(self) -> &'static str {
        match self {
            Op::Append => "append_at",
            Op::Query => "query",
            Op::SetMetadata => "set_metadata",
            Op::Truncate => "truncate",
            Op::Bounds => "bounds",
            Op::ReadBlob => "read_blob",
            Op::WriteBlob => "write_blob",
            Op::RemoveBlob => "remove_blob",
            Op::Dir => "dir",
            Op::List => "list",
            Op::RemoveAll => "remove_all",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One call passing through a layer.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The operation.
    pub op: Op,
    /// The sequence id the call names, for event-log calls that take one.
    pub seq: Option<SequenceId>,
    /// The name the call names, for blob calls that take one.
    pub name: Option<&'a BlobName>,
}

/// What a layer does around every call.
///
/// `call` is the inner backend's future; a hook may wait before polling it,
/// skip it, replace its outcome with an error, or observe it. Errors it makes
/// are [`StorageError`]s, which every operation's error converts from.
pub trait Hook: Send + Sync + Debug + 'static {
    /// Runs `inner`, the backend's call described by `call`, the hook's way.
    fn around<'a, T, E>(
        &'a self,
        call: Call<'a>,
        inner: BoxFuture<'a, Result<T, E>>,
    ) -> BoxFuture<'a, Result<T, E>>
    where
        T: Send + 'a,
        E: From<StorageError> + fmt::Display + Send + 'a;
}
