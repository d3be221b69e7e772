//! The values that cross the `EventLog` trait: ids, entries, metadata,
//! query bounds and replies.

use bytes::Bytes;

/// Position of an entry in a log. Ids are dense: a log holds every id in
/// `[start, end)`.
pub type SequenceId = u64;

/// Name of a blob (a snapshot or an archived history segment). The log never
/// interprets it; the layer above decides which blob directory it names.
pub type BlobId = String;

/// Identifier of a background workflow that is due on an entry
/// (for example `"snapshot"`).
pub type WorkflowId = String;

/// The mutable metadata of a log entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EntryMetadata {
    /// Blob id of a snapshot holding the state produced by every entry
    /// *before* this one.
    pub snapshot: Option<BlobId>,
    /// Blob id of archived entries that precede this one.
    pub history: Option<BlobId>,
    /// A background workflow that is due on this entry.
    pub pending: Option<WorkflowId>,
}

/// One entry of a log: an immutable payload plus mutable metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LogEntry {
    /// The application's encoded event. Never changed once appended.
    pub payload: Bytes,
    /// Metadata; changed only through [`EventLog::set_metadata`](crate::EventLog::set_metadata).
    pub metadata: EntryMetadata,
}

impl LogEntry {
    /// An entry with the given payload and no metadata.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        LogEntry {
            payload: payload.into(),
            metadata: EntryMetadata::default(),
        }
    }

    /// The same entry with `pending` set to `workflow`.
    #[must_use]
    pub fn with_pending(mut self, workflow: impl Into<WorkflowId>) -> Self {
        self.metadata.pending = Some(workflow.into());
        self
    }
}

/// A writer's mark on one append, so that a retry of it can be told from a
/// conflict.
///
/// After a storage error an append may or may not be in the log: the reply
/// may have been lost after the entries landed. Retrying
/// [`append_at`](crate::EventLog::append_at) with
/// the same entries, id and token is then safe: if the first attempt
/// landed, every backend answers `Ok` as the first attempt would have,
/// instead of a conflict, and the log holds one copy. Make a fresh token
/// for each append ([`AppendToken::random`]) and keep it until that append
/// is known to have landed or not.
///
/// A backend keeps the token with the entries it marks, for as long as
/// they are in the log: truncating other entries never forgets it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppendToken(u128);

impl AppendToken {
    /// A token from the operating system's random source: distinct from
    /// every other writer's on any machine (128 random bits). Falls back to
    /// a process-local generator seeded from the clock and a counter should
    /// the random source fail.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        if getrandom::fill(&mut bytes).is_err() {
            use std::hash::{BuildHasher, Hasher};
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let state = std::collections::hash_map::RandomState::new();
            for half in bytes.chunks_mut(8) {
                let mut hasher = state.build_hasher();
                hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
                hasher.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                half.copy_from_slice(&hasher.finish().to_le_bytes());
            }
        }
        AppendToken(u128::from_le_bytes(bytes))
    }

    /// The token with this value.
    pub const fn from_u128(value: u128) -> Self {
        AppendToken(value)
    }

    /// The token's value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The token as 16 bytes (little-endian), the form backends store.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// The token stored as [`to_bytes`](AppendToken::to_bytes) gave it.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        AppendToken(u128::from_le_bytes(bytes))
    }
}

impl std::fmt::Debug for AppendToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppendToken({:032x})", self.0)
    }
}

/// The snapshot that a caller builds its state on, passed to
/// [`append_at`](crate::EventLog::append_at) and [`query`](crate::EventLog::query)
/// so the reply can name a newer one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KnownSnapshot {
    /// The caller does not track snapshots; replies never name one.
    #[default]
    NotTracked,
    /// The caller builds on no snapshot; replies name the log's most recent
    /// snapshot if there is any.
    NoSnapshot,
    /// The caller builds on the snapshot stored on this entry; replies name
    /// the log's most recent snapshot if it is on a different entry.
    At(SequenceId),
}

impl From<Option<SequenceId>> for KnownSnapshot {
    /// `None` is [`KnownSnapshot::NoSnapshot`]; `Some(s)` is [`KnownSnapshot::At`].
    fn from(value: Option<SequenceId>) -> Self {
        value.map_or(KnownSnapshot::NoSnapshot, KnownSnapshot::At)
    }
}

impl KnownSnapshot {
    /// The snapshot a reply must carry, given the log's most recent snapshot
    /// `latest`: `latest` unless the caller does not track snapshots or
    /// already builds on it. Backends use this so every one applies the same
    /// rule.
    pub fn newer(self, latest: Option<SnapshotValue>) -> Option<SnapshotValue> {
        let latest = latest?;
        match self {
            KnownSnapshot::NotTracked => None,
            KnownSnapshot::NoSnapshot => Some(latest),
            KnownSnapshot::At(seq) if seq == latest.sequence_id => None,
            KnownSnapshot::At(_) => Some(latest),
        }
    }

    /// Whether replies to this caller may carry a snapshot at all; a backend
    /// can skip looking for the most recent snapshot when this is `false`.
    pub fn is_tracked(self) -> bool {
        self != KnownSnapshot::NotTracked
    }
}

/// A snapshot found in the log: the entry it is stored on and its blob id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotValue {
    /// The entry carrying the snapshot (the first entry *not* in it).
    pub sequence_id: SequenceId,
    /// The snapshot's blob id.
    pub blob_id: BlobId,
}

/// Successful reply of [`append_at`](crate::EventLog::append_at) (and so
/// of [`add_entry`](crate::EventLogExt::add_entry) and
/// [`add_entries`](crate::EventLogExt::add_entries)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddEntryValue {
    /// The log's most recent snapshot, if the caller tracks snapshots and
    /// builds on a different one.
    pub last_snapshot: Option<SnapshotValue>,
}

/// Where a query starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryStart {
    /// The first entry of the log.
    Start,
    /// The most recent entry whose `snapshot` metadata is set, else the first
    /// entry.
    Snapshot,
    /// The entry with this id; must lie in `[start, end]`.
    Id(SequenceId),
}

impl From<SequenceId> for QueryStart {
    fn from(value: SequenceId) -> Self {
        QueryStart::Id(value)
    }
}

/// Where a query ends (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryEnd {
    /// The end of the log.
    End,
    /// One past the last entry wanted. An id past the log's end means the
    /// log's end; an id before the start gives no entries.
    Id(SequenceId),
}

impl From<SequenceId> for QueryEnd {
    fn from(value: SequenceId) -> Self {
        QueryEnd::Id(value)
    }
}

/// Successful reply of [`query`](crate::EventLog::query): one page of entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryValue {
    /// Id of the first returned entry (the resolved query start).
    pub start: SequenceId,
    /// One past the last returned entry; `start + entries.len()`.
    pub end: SequenceId,
    /// The entries `[start, end)`.
    pub entries: Vec<LogEntry>,
    /// `false` when the backend returned fewer entries than asked (its page
    /// size); continue from `end` to get the rest.
    pub is_complete: bool,
    /// The log's most recent snapshot, if the caller tracks snapshots and
    /// builds on a different one.
    pub last_snapshot: Option<SnapshotValue>,
}

/// What [`set_metadata`](crate::EventLog::set_metadata) does to one field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum FieldUpdate<T> {
    /// Leave the field as it is.
    #[default]
    Keep,
    /// Set the field to this value.
    Set(T),
    /// Clear the field.
    Clear,
}

impl<T> FieldUpdate<T> {
    /// Applies the update to `field`.
    pub fn apply(self, field: &mut Option<T>) {
        match self {
            FieldUpdate::Keep => {}
            FieldUpdate::Set(value) => *field = Some(value),
            FieldUpdate::Clear => *field = None,
        }
    }

    /// Whether the update leaves the field as it is.
    pub fn is_keep(&self) -> bool {
        matches!(self, FieldUpdate::Keep)
    }
}

/// A change to an entry's metadata: each field kept, set or cleared, all in
/// one atomic step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MetadataUpdate {
    /// The `snapshot` field.
    pub snapshot: FieldUpdate<BlobId>,
    /// The `history` field.
    pub history: FieldUpdate<BlobId>,
    /// The `pending` field.
    pub pending: FieldUpdate<WorkflowId>,
}

impl MetadataUpdate {
    /// Applies every field of the update to `metadata`.
    pub fn apply(self, metadata: &mut EntryMetadata) {
        self.snapshot.apply(&mut metadata.snapshot);
        self.history.apply(&mut metadata.history);
        self.pending.apply(&mut metadata.pending);
    }

    /// The update that publishes a snapshot: sets `snapshot` and clears
    /// `pending` in one step, as the snapshot workflow does.
    pub fn publish_snapshot(blob_id: impl Into<BlobId>) -> Self {
        MetadataUpdate {
            snapshot: FieldUpdate::Set(blob_id.into()),
            history: FieldUpdate::Keep,
            pending: FieldUpdate::Clear,
        }
    }
}
