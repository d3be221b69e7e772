//! What crosses the wire: one [`Request`] per call, answered by a
//! `Result<Reply, WireError>`, both encoded with postcard. The client and
//! the service are built from this one module, and [`VERSION`] names its
//! shape: a client refuses a server that speaks another.

use bytes::Bytes;
use infinisheet_blob_store::{
    BlobName, Continuation, DirError, EntryKind, ListEntry, ListError, ListPage, ReadBlobError,
    RemoveBlobError, WriteBlobError,
};
use infinisheet_event_log::{
    AddEntryError, AppendToken, EntryMetadata, FieldUpdate, KnownSnapshot, LogEntry,
    MetadataUpdate, QueryEnd, QueryError, QueryStart, RangeError, SetMetadataError, SnapshotValue,
    TruncateError,
};
use infinisheet_storage_error::StorageError;
use serde::{Deserialize, Serialize};

/// The version of this protocol; [`Reply::Hello`] carries the server's.
/// (2: requests are decoded within [`MAX_ENTRIES`] and [`MAX_DEPTH`], and
/// a read-only caller's writes are [`WireError::Forbidden`]; 3: the hello
/// says how many names the server's listings page at most.)
pub(crate) const VERSION: u32 = 3;

/// The most entries one append may carry: checked as a request is
/// decoded, before they are allocated (an empty entry is 4 bytes on the
/// wire and about 100 in memory).
pub const MAX_ENTRIES: usize = 100_000;

/// The deepest blob directory a request may name.
pub const MAX_DEPTH: usize = 1024;

/// The path the service answers at, below the server's base URL.
pub const PATH: &str = "api/storage";

/// The media type of requests and replies.
pub const CONTENT_TYPE: &str = "application/x-infinisheet-storage";

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The server's protocol version and what it stores on.
    Hello,
    /// Opens (or creates) log `id`.
    OpenLog { id: String, create: bool },
    /// One call on log `id`.
    Log { id: String, op: LogOp },
    /// One call on the blob directory at `dir` (names from the root).
    Blob {
        dir: Capped<String, MAX_DEPTH>,
        op: BlobOp,
    },
}

impl Request {
    /// Whether the call waits for entries (a tail's long poll), holding
    /// nothing but its few bytes while it does.
    pub(crate) fn waits(&self) -> bool {
        matches!(
            self,
            Request::Log {
                op: LogOp::Wait { .. },
                ..
            }
        )
    }

    /// Whether the call changes anything (a read-only caller may make
    /// every other).
    pub(crate) fn writes(&self) -> bool {
        match self {
            Request::Hello => false,
            Request::OpenLog { create, .. } => *create,
            Request::Log { op, .. } => match op {
                LogOp::Append { .. } | LogOp::SetMetadata { .. } | LogOp::Truncate { .. } => true,
                LogOp::Query { .. } | LogOp::Bounds | LogOp::Wait { .. } => false,
            },
            Request::Blob { op, .. } => match op {
                BlobOp::Write { .. } | BlobOp::Remove { .. } | BlobOp::RemoveAll => true,
                // A directory is made by writing beneath it; asking for one
                // writes nothing.
                BlobOp::Read { .. } | BlobOp::Dir { .. } | BlobOp::List { .. } => false,
            },
        }
    }
}

/// A sequence of at most `N` items, refused as it is decoded once it
/// claims more: what a request asks to allocate is bounded before it is
/// allocated.
#[derive(Debug)]
pub(crate) struct Capped<T, const N: usize>(pub(crate) Vec<T>);

impl<T: Serialize, const N: usize> Serialize for Capped<T, N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Capped<T, N> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T, const N: usize>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Items<T, N> {
            type Value = Capped<T, N>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "at most {N} items")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let claimed = seq.size_hint().unwrap_or(0);
                if claimed > N {
                    return Err(serde::de::Error::custom(format!(
                        "{claimed} items, more than the {N} one call may carry"
                    )));
                }
                // What was claimed is within N, but not yet known to be
                // there: grow as items arrive past a small start.
                let mut items = Vec::with_capacity(claimed.min(1024));
                while let Some(item) = seq.next_element()? {
                    if items.len() == N {
                        return Err(serde::de::Error::custom(format!(
                            "more than the {N} items one call may carry"
                        )));
                    }
                    items.push(item);
                }
                Ok(Capped(items))
            }
        }
        deserializer.deserialize_seq(Items::<T, N>(std::marker::PhantomData))
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum LogOp {
    Append {
        entries: Capped<Entry, MAX_ENTRIES>,
        seq: u64,
        known: Known,
        token: Option<[u8; 16]>,
    },
    Query {
        start: Start,
        end: Option<u64>,
        known: Known,
    },
    Bounds,
    SetMetadata {
        seq: u64,
        update: Update,
    },
    Truncate {
        start: u64,
    },
    /// Returns once entries may have been appended at or after `end`, or
    /// after `timeout_ms`.
    Wait {
        end: u64,
        timeout_ms: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum BlobOp {
    Read { name: String },
    Write { name: String, content: Bytes },
    Remove { name: String },
    Dir { name: String },
    List { continuation: Option<String> },
    RemoveAll,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Hello {
        version: u32,
        log_backend: String,
        blobs_persistent: bool,
        /// The most names a listing page of the server's blob store holds.
        blobs_page: u64,
    },
    Log {
        persistent: bool,
        /// The server's log wakes waiting tails itself, so a long poll
        /// returns as soon as another client appends.
        wakes: bool,
    },
    Snapshot(Option<Snapshot>),
    Queried {
        start: u64,
        end: u64,
        entries: Vec<Entry>,
        is_complete: bool,
        snapshot: Option<Snapshot>,
    },
    Bounds {
        start: u64,
        end: u64,
    },
    Done,
    Blob(Bytes),
    Listed {
        entries: Vec<Listed>,
        continuation: Option<String>,
    },
}

impl Reply {
    /// The name of this kind of reply, for a message about one that was
    /// not expected.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Reply::Hello { .. } => "hello",
            Reply::Log { .. } => "log",
            Reply::Snapshot(_) => "snapshot",
            Reply::Queried { .. } => "query",
            Reply::Bounds { .. } => "bounds",
            Reply::Done => "done",
            Reply::Blob(_) => "blob",
            Reply::Listed { .. } => "listing",
        }
    }
}

/// The errors of every call, as the backend behind the server had them.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    Conflict {
        attempted: u64,
        next: u64,
    },
    Range {
        requested: u64,
        start: u64,
        end: u64,
    },
    NotFound {
        name: String,
    },
    WrongKind {
        name: String,
        dir: bool,
    },
    InvalidName {
        name: String,
        reason: String,
    },
    NoContinuation,
    NoLog {
        id: String,
    },
    InvalidLogId {
        id: String,
        problem: String,
    },
    /// The request cannot be read, or names nothing this server has.
    BadRequest(String),
    /// The caller may not make this call (a read-only token's write).
    Forbidden(String),
    Storage {
        backend: String,
        message: String,
        retryable: bool,
        corrupt: bool,
    },
}

impl From<&StorageError> for WireError {
    fn from(err: &StorageError) -> Self {
        // The sources too: the server's message is all the client gets.
        let mut message = err.message().to_owned();
        if let Some(source) = std::error::Error::source(err) {
            message.push_str(": ");
            message.push_str(&infinisheet_storage_error::one_line(source));
        }
        WireError::Storage {
            backend: err.backend().to_owned(),
            message,
            retryable: err.is_retryable(),
            corrupt: err.is_corrupt(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// As bytes on the wire (one copy), not a sequence of numbers.
    payload: Bytes,
    snapshot: Option<String>,
    history: Option<String>,
    pending: Option<String>,
}

impl From<LogEntry> for Entry {
    fn from(entry: LogEntry) -> Self {
        Entry {
            payload: entry.payload,
            snapshot: entry.metadata.snapshot,
            history: entry.metadata.history,
            pending: entry.metadata.pending,
        }
    }
}

impl From<Entry> for LogEntry {
    fn from(entry: Entry) -> Self {
        LogEntry {
            payload: entry.payload,
            metadata: EntryMetadata {
                snapshot: entry.snapshot,
                history: entry.history,
                pending: entry.pending,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Known {
    NotTracked,
    NoSnapshot,
    At(u64),
}

impl From<KnownSnapshot> for Known {
    fn from(known: KnownSnapshot) -> Self {
        match known {
            KnownSnapshot::NotTracked => Known::NotTracked,
            KnownSnapshot::NoSnapshot => Known::NoSnapshot,
            KnownSnapshot::At(seq) => Known::At(seq),
        }
    }
}

impl From<Known> for KnownSnapshot {
    fn from(known: Known) -> Self {
        match known {
            Known::NotTracked => KnownSnapshot::NotTracked,
            Known::NoSnapshot => KnownSnapshot::NoSnapshot,
            Known::At(seq) => KnownSnapshot::At(seq),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Start {
    First,
    Snapshot,
    Id(u64),
}

impl From<QueryStart> for Start {
    fn from(start: QueryStart) -> Self {
        match start {
            QueryStart::Start => Start::First,
            QueryStart::Snapshot => Start::Snapshot,
            QueryStart::Id(seq) => Start::Id(seq),
        }
    }
}

impl From<Start> for QueryStart {
    fn from(start: Start) -> Self {
        match start {
            Start::First => QueryStart::Start,
            Start::Snapshot => QueryStart::Snapshot,
            Start::Id(seq) => QueryStart::Id(seq),
        }
    }
}

/// A [`QueryEnd`]: `None` for the log's end.
pub(crate) fn end_to_wire(end: QueryEnd) -> Option<u64> {
    match end {
        QueryEnd::End => None,
        QueryEnd::Id(seq) => Some(seq),
    }
}

pub(crate) fn end_from_wire(end: Option<u64>) -> QueryEnd {
    end.map_or(QueryEnd::End, QueryEnd::Id)
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    sequence_id: u64,
    blob_id: String,
}

impl From<SnapshotValue> for Snapshot {
    fn from(value: SnapshotValue) -> Self {
        Snapshot {
            sequence_id: value.sequence_id,
            blob_id: value.blob_id,
        }
    }
}

impl From<Snapshot> for SnapshotValue {
    fn from(value: Snapshot) -> Self {
        SnapshotValue {
            sequence_id: value.sequence_id,
            blob_id: value.blob_id,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Field {
    Keep,
    Set(String),
    Clear,
}

impl From<FieldUpdate<String>> for Field {
    fn from(update: FieldUpdate<String>) -> Self {
        match update {
            FieldUpdate::Keep => Field::Keep,
            FieldUpdate::Set(value) => Field::Set(value),
            FieldUpdate::Clear => Field::Clear,
        }
    }
}

impl From<Field> for FieldUpdate<String> {
    fn from(update: Field) -> Self {
        match update {
            Field::Keep => FieldUpdate::Keep,
            Field::Set(value) => FieldUpdate::Set(value),
            Field::Clear => FieldUpdate::Clear,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Update {
    snapshot: Field,
    history: Field,
    pending: Field,
}

impl From<MetadataUpdate> for Update {
    fn from(update: MetadataUpdate) -> Self {
        Update {
            snapshot: update.snapshot.into(),
            history: update.history.into(),
            pending: update.pending.into(),
        }
    }
}

impl From<Update> for MetadataUpdate {
    fn from(update: Update) -> Self {
        MetadataUpdate {
            snapshot: update.snapshot.into(),
            history: update.history.into(),
            pending: update.pending.into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Listed {
    name: String,
    dir: bool,
    size: Option<u64>,
}

impl From<ListEntry> for Listed {
    fn from(entry: ListEntry) -> Self {
        Listed {
            name: entry.name.into_string(),
            dir: entry.kind == EntryKind::Dir,
            size: entry.size,
        }
    }
}

/// A listing from the wire; a name the server sent that is not a valid
/// blob name is an error of the server.
pub(crate) fn page_from_wire(
    entries: Vec<Listed>,
    continuation: Option<String>,
) -> Result<ListPage, String> {
    let entries = entries
        .into_iter()
        .map(|listed| {
            let name = BlobName::new(listed.name).map_err(|err| err.to_string())?;
            let kind = if listed.dir {
                EntryKind::Dir
            } else {
                EntryKind::Blob
            };
            let entry = ListEntry::new(name, kind);
            Ok(match listed.size {
                Some(size) => entry.with_size(size),
                None => entry,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ListPage {
        entries,
        continuation: continuation.map(Continuation::from),
    })
}

pub(crate) fn token_to_wire(token: Option<AppendToken>) -> Option<[u8; 16]> {
    token.map(AppendToken::to_bytes)
}

pub(crate) fn kind(dir: bool) -> EntryKind {
    if dir { EntryKind::Dir } else { EntryKind::Blob }
}

// The server side: each operation's error, as it goes on the wire.

impl From<AddEntryError> for WireError {
    fn from(err: AddEntryError) -> Self {
        match err {
            AddEntryError::Conflict { attempted, next } => WireError::Conflict { attempted, next },
            AddEntryError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}

impl From<RangeError> for WireError {
    fn from(err: RangeError) -> Self {
        WireError::Range {
            requested: err.requested,
            start: err.start,
            end: err.end,
        }
    }
}

impl From<QueryError> for WireError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::Range(err) => err.into(),
            QueryError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}

impl From<SetMetadataError> for WireError {
    fn from(err: SetMetadataError) -> Self {
        match err {
            SetMetadataError::Range(err) => err.into(),
            SetMetadataError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}

impl From<TruncateError> for WireError {
    fn from(err: TruncateError) -> Self {
        match err {
            TruncateError::Range(err) => err.into(),
            TruncateError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}

impl From<infinisheet_blob_store::InvalidBlobName> for WireError {
    fn from(err: infinisheet_blob_store::InvalidBlobName) -> Self {
        WireError::InvalidName {
            name: err.name,
            reason: err.reason.to_owned(),
        }
    }
}

fn wrong_kind(name: &BlobName, found: EntryKind) -> WireError {
    WireError::WrongKind {
        name: name.to_string(),
        dir: found == EntryKind::Dir,
    }
}

impl From<ReadBlobError> for WireError {
    fn from(err: ReadBlobError) -> Self {
        match err {
            ReadBlobError::NotFound { name } => WireError::NotFound {
                name: name.into_string(),
            },
            ReadBlobError::WrongKind { name, found } => wrong_kind(&name, found),
            ReadBlobError::InvalidName(err) => err.into(),
            ReadBlobError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}

impl From<WriteBlobError> for WireError {
    fn from(err: WriteBlobError) -> Self {
        match err {
            WriteBlobError::WrongKind { name, found } => wrong_kind(&name, found),
            WriteBlobError::InvalidName(err) => err.into(),
            WriteBlobError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}

impl From<RemoveBlobError> for WireError {
    fn from(err: RemoveBlobError) -> Self {
        match err {
            RemoveBlobError::WrongKind { name, found } => wrong_kind(&name, found),
            RemoveBlobError::InvalidName(err) => err.into(),
            RemoveBlobError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}

impl From<DirError> for WireError {
    fn from(err: DirError) -> Self {
        match err {
            DirError::WrongKind { name, found } => wrong_kind(&name, found),
            DirError::InvalidName(err) => err.into(),
            DirError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}

impl From<ListError> for WireError {
    fn from(err: ListError) -> Self {
        match err {
            ListError::NoContinuation => WireError::NoContinuation,
            ListError::Storage(err) => (&err).into(),
            other => WireError::BadRequest(other.to_string()),
        }
    }
}
