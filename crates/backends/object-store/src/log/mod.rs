//! `ObjectStoreEventLog`: a log shared by any number of clients on any number
//! of machines, built on two things an object store offers: create-if-absent
//! (`PutMode::Create`) and replace-if-unchanged (`PutMode::Update` with the
//! ETag).
//!
//! Layout under the log's prefix:
//! * `records/<20-digit id>`: one record per append call, holding its batch
//!   of entries as appended; keyed by the id of its first entry, never
//!   changed. Records tile the log: each begins where the previous one
//!   ends, so the keys form a chain.
//! * `overlays/<20-digit block>`: the metadata changed since append of the
//!   entries of one block of 1,024 ids, changed by compare-and-swap.
//! * `packs/<20-digit block>`: the 64 entries of one block as appended,
//!   written by a query that read them all from records, so later queries
//!   read one object where they would read up to 64.
//! * `head`: the log's start, the record holding it, and an end hint (a
//!   chain position never past the end), changed by compare-and-swap.
//! * `snapshots`: ids that may carry a snapshot (a superset, kept short by
//!   truncation), so the newest snapshot is found without a listing.
//!
//! The head also names the newest snapshot while nothing changes
//! snapshots (see `newest.rs`), so the head read every append makes
//! answers a caller tracking snapshots: a steady-state append is two
//! requests.
//!
//! An append creates its record at the end with `PutMode::Create`: exactly
//! one writer wins an id. The end is found by walking the chain from the
//! hint (or this handle's last known end), reading record headers only.

mod candidates;
mod fetch;
mod format;
mod newest;
mod objects;
mod open;

pub use open::OpenError;

use crate::error::{Contention, corrupt};
use async_trait::async_trait;
use candidates::add_candidates;
use format::{Head, encode_record};
use infinisheet_event_log::raw::{self, Bounds};
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, FieldUpdate, KnownSnapshot,
    LogCapabilities, LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue,
    SequenceId, SetMetadataError, SnapshotValue, StorageError, TruncateError,
};
use object_store::ObjectStore;
use object_store::path::Path;
use objects::{OVERLAY_BLOCK, Objects, Swap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default number of entries a query returns at most.
const DEFAULT_PAGE_SIZE: usize = 1000;

/// Default number of records a query fetches at once.
const DEFAULT_FETCH_CONCURRENCY: usize = 16;

/// An append moves the head's end hint once the hint lags this many
/// entries: one head write per 256 entries, and a walk from the hint (a
/// few record reads, then a listing) stays short.
const HINT_STRIDE: u64 = 256;

/// An [`EventLog`] in any [`ObjectStore`] offering conditional writes:
/// S3 and S3-compatible stores, GCS, Azure, and `object_store`'s in-memory
/// store. Open it with [`ObjectStoreEventLog::open`], which refuses a store
/// that lacks conditional writes.
///
/// Clones share one client; other handles on the same prefix, in this
/// process or on other machines, see the same log.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, LogEntry};
/// use infinisheet_object_store::ObjectStoreEventLog;
/// use object_store::memory::InMemory;
/// use std::sync::Arc;
///
/// let log = ObjectStoreEventLog::open(Arc::new(InMemory::new()), "logs/sheet-1".into())
///     .await
///     .unwrap();
/// log.add_entry(LogEntry::new("edit"), 0, KnownSnapshot::NotTracked).await.unwrap();
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ObjectStoreEventLog {
    objects: Objects,
    /// A chain position this client has seen (a record key or the end): a
    /// walk for the end may begin here, and an append here needs no walk.
    known_end: Arc<AtomicU64>,
    page_size: usize,
    fetch_concurrency: usize,
    packing: bool,
}

impl ObjectStoreEventLog {
    /// Opens the log under `prefix` of `store`. A log that exists is opened
    /// with one read and no write. If nothing is there yet, the log is
    /// created (empty): the store's conditional writes are checked first,
    /// on a probe object that is removed again.
    ///
    /// # Errors
    ///
    /// * [`OpenError::Unsupported`] if the log is new and the store lacks
    ///   create-if-absent or replace-if-unchanged, or ignores them (`LocalFileSystem` has no
    ///   ETag-conditional update; some S3-compatible servers accept the
    ///   headers and overwrite anyway).
    /// * [`OpenError::Storage`] if the store cannot be reached.
    pub async fn open(store: Arc<dyn ObjectStore>, prefix: Path) -> Result<Self, OpenError> {
        let objects = Objects::new(store, prefix);
        open::ensure_created(
            &objects.store,
            &objects.prefix,
            &objects.head,
            &objects.records,
            format::encode_head(&Head::new_log()),
        )
        .await?;
        Ok(Self::with_objects(objects))
    }

    /// Opens the log under `prefix` of `store` if there is one, reading
    /// only (one request): a client with read permission alone can open
    /// and query a log.
    ///
    /// # Errors
    ///
    /// * [`OpenError::NotFound`] if no log is there.
    /// * [`OpenError::Storage`] if the store cannot be reached.
    pub async fn open_existing(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
    ) -> Result<Self, OpenError> {
        let objects = Objects::new(store, prefix);
        if !open::exists(&objects.store, &objects.head, &objects.records).await? {
            return Err(OpenError::NotFound {
                prefix: objects.prefix.to_string(),
            });
        }
        Ok(Self::with_objects(objects))
    }

    fn with_objects(objects: Objects) -> Self {
        ObjectStoreEventLog {
            objects,
            known_end: Arc::new(AtomicU64::new(0)),
            page_size: DEFAULT_PAGE_SIZE,
            fetch_concurrency: DEFAULT_FETCH_CONCURRENCY,
            packing: false,
        }
    }

    /// The same log, returning at most `page_size` entries a query (at least
    /// 1). The default is 1,000.
    #[must_use]
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The same log, fetching at most `concurrency` records at once in a
    /// query (at least 1). The default is 16.
    #[must_use]
    pub fn with_fetch_concurrency(mut self, concurrency: usize) -> Self {
        self.fetch_concurrency = concurrency.max(1);
        self
    }

    /// The same log, writing a pack (one object for 64 entries) for every
    /// whole block a query reads from records, so later queries of those
    /// entries read one object where they read up to 64. Off by default:
    /// a query then writes nothing, and reading needs no write permission.
    /// Packs written by any client speed up every client's queries.
    #[must_use]
    pub fn with_packing(mut self, packing: bool) -> Self {
        self.packing = packing;
        self
    }

    /// The key prefix the log's objects live under.
    pub fn prefix(&self) -> &Path {
        &self.objects.prefix
    }

    /// The underlying object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.objects.store
    }

    fn learn_end(&self, end: SequenceId) {
        self.known_end.fetch_max(end, Ordering::Relaxed);
    }

    /// The log's end, walking from the furthest chain position known.
    async fn end(&self, head: &Head) -> Result<SequenceId, StorageError> {
        let mine = self.known_end.load(Ordering::Relaxed);
        // A position below the first record may have been deleted by a
        // truncate, and a deleted record would look like the end.
        let from = head
            .end_hint
            .max(head.first_record)
            .max(if mine >= head.first_record { mine } else { 0 });
        let end = self.objects.walk(from).await?;
        self.learn_end(end);
        Ok(end)
    }

    /// Reads the head and finds the end.
    async fn head_and_end(&self) -> Result<(Head, SequenceId), StorageError> {
        let (head, _) = self.objects.head().await?;
        let end = self.end(&head).await?;
        Ok((head, end))
    }

    async fn newer_snapshot(
        &self,
        known: KnownSnapshot,
        head: &Head,
    ) -> Result<Option<SnapshotValue>, StorageError> {
        let newest = if known.is_tracked() {
            self.latest_snapshot(head).await?
        } else {
            None
        };
        Ok(known.newer(newest))
    }

    /// Whether the record at `seq` is the batch of `count` entries appended
    /// under `token`: an earlier attempt of this append landed.
    async fn landed(
        &self,
        seq: SequenceId,
        count: u64,
        token: AppendToken,
    ) -> Result<bool, StorageError> {
        Ok(self.record_at(seq, count, token).await?.0)
    }

    /// [`landed`](Self::landed), and the id past the record at `seq` if
    /// there is one.
    async fn record_at(
        &self,
        seq: SequenceId,
        count: u64,
        token: AppendToken,
    ) -> Result<(bool, Option<SequenceId>), StorageError> {
        let stored = self.objects.tokened_record(seq).await?;
        let past = stored
            .as_ref()
            .map(|(_, entries)| seq.saturating_add(entries.len() as u64));
        let stored = stored.and_then(|(found, entries)| Some((found?, entries.len() as u64)));
        Ok((raw::is_retry_of(stored, token, count), past))
    }

    /// The conflict reply for `attempted`, with the real end. `past` is the
    /// id past the record found at `attempted`, if one was read: the walk
    /// to the end starts there instead of reading that record again —
    /// unless the record lies below the log's first one (a client behind a
    /// truncate wrote it and is about to take it back), where it says
    /// nothing about the end.
    async fn conflict(
        &self,
        attempted: SequenceId,
        past: Option<SequenceId>,
    ) -> Result<AddEntryError, StorageError> {
        let (head, _) = self.objects.head().await?;
        if let Some(past) = past
            && attempted >= head.first_record
        {
            self.learn_end(past);
        }
        let next = self.end(&head).await?;
        Ok(AddEntryError::Conflict { attempted, next })
    }

    /// The newest snapshot newer than `known` for an append that just
    /// read the head (`head` at `version`) and ended the log at `end`, and
    /// the head's end hint moved to `end` if it lags far behind — both in
    /// the one head write this may make (one try: a lost race means
    /// someone else moved the head).
    async fn after_append(
        &self,
        known: KnownSnapshot,
        head: &Head,
        version: Option<object_store::UpdateVersion>,
        now: Option<i64>,
        end: SequenceId,
    ) -> Result<Option<SnapshotValue>, StorageError> {
        let moved = (end.saturating_sub(head.end_hint) >= HINT_STRIDE).then_some(end);
        let (newest, wrote) = if known.is_tracked() {
            self.newest_learning(head, version.clone(), now, moved)
                .await?
        } else {
            (None, false)
        };
        if let Some(end_hint) = moved
            && !wrote
        {
            let moved = Head {
                end_hint,
                ..head.clone()
            };
            self.objects.swap_head(version, &moved).await?;
        }
        Ok(known.newer(newest))
    }
}

impl ObjectStoreEventLog {
    /// [`EventLog::append_at`], within a change of snapshots (see
    /// `newest.rs`) when `carried` (the ids of entries carrying one) is not
    /// empty.
    async fn append_carrying(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
        carried: Vec<SequenceId>,
    ) -> Result<AddEntryValue, AddEntryError> {
        // Every record carries a token, the caller's or a fresh one: the
        // store's client retries a PUT whose reply was lost, and the retry
        // then finds the record the first attempt created; the token tells
        // that from another writer's record.
        let own = token.unwrap_or_else(AppendToken::random);
        let count = entries.len() as u64;
        if entries.is_empty() || seq != self.known_end.load(Ordering::Relaxed) {
            // Not where this client last saw the end: find the real end.
            let (head, end) = self.head_and_end().await?;
            let bounds = Bounds::new(head.start, end);
            if let Err(conflict) = bounds.check_append(seq) {
                if let Some(token) = bounds.retry_token(seq, count, token)
                    && self.landed(seq, count, token).await?
                {
                    return Ok(AddEntryValue {
                        last_snapshot: self.newer_snapshot(known, &head).await?,
                    });
                }
                return Err(conflict);
            }
            if entries.is_empty() {
                return Ok(AddEntryValue {
                    last_snapshot: self.newer_snapshot(known, &head).await?,
                });
            }
        }
        if !carried.is_empty() {
            // Candidates first: they may name more than the log holds, never
            // less.
            self.objects
                .change_candidates(|candidates| add_candidates(candidates, &carried))
                .await?;
        }
        if let Swap::Lost = self
            .objects
            .create_record(seq, encode_record(&entries, Some(own)))
            .await?
        {
            let (landed, past) = self.record_at(seq, count, own).await?;
            if !landed {
                return Err(self.conflict(seq, past).await?);
            }
        }
        let (head, version, now) = self.objects.head_timed().await?;
        if head.first_record > seq {
            // The record at `seq` had been removed by a truncate that passed
            // it, so creating it again succeeded: this client was behind.
            // (Or a truncate passed this very record before the check; it
            // was removed either way and is reported as not appended.)
            self.objects.delete_record(seq).await?;
            return Err(self.conflict(seq, None).await?);
        }
        let end = seq + count;
        self.learn_end(end);
        Ok(AddEntryValue {
            last_snapshot: self.after_append(known, &head, version, now, end).await?,
        })
    }

    /// [`EventLog::set_metadata`] past the range check: within a change of
    /// snapshots when `update` changes `snapshot`.
    async fn set_metadata_at(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
        head: Head,
    ) -> Result<(), SetMetadataError> {
        if let FieldUpdate::Set(_) = update.snapshot {
            // Candidates first: they may name more than the log holds, never
            // less.
            self.objects
                .change_candidates(|candidates| add_candidates(candidates, &[seq]))
                .await?;
        }
        let block = seq / OVERLAY_BLOCK;
        let mut appended = None;
        let mut contention = Contention::default();
        loop {
            let (mut overlay, version) = self.objects.overlay(block).await?;
            let mut metadata = match overlay.get(&seq) {
                Some(changed) => changed.clone(),
                None => {
                    if appended.is_none() {
                        appended = self.appended_metadata(seq, &head).await?;
                    }
                    let Some(appended) = appended.clone() else {
                        // Truncated away since the bounds were read.
                        let (head, end) = self.head_and_end().await?;
                        return Err(Bounds::new(head.start, end).range_error(seq).into());
                    };
                    appended
                }
            };
            update.clone().apply(&mut metadata);
            overlay.insert(seq, metadata);
            if let Swap::Done = self.objects.swap_overlay(block, version, &overlay).await? {
                return Ok(());
            }
            // Another change to the block landed first: apply to it.
            contention
                .lost("changing metadata in", &self.objects.record_key(seq))
                .await?;
        }
    }
}

#[async_trait]
impl EventLog for ObjectStoreEventLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let carried: Vec<SequenceId> = (seq..)
            .zip(&entries)
            .filter(|(_, entry)| entry.metadata.snapshot.is_some())
            .map(|(at, _)| at)
            .collect();
        if carried.is_empty() {
            return self
                .append_carrying(entries, seq, known, token, carried)
                .await;
        }
        // Entries carrying snapshots may change the newest one.
        let change = self.begin_change().await?;
        let appended = self
            .append_carrying(entries, seq, KnownSnapshot::NotTracked, token, carried)
            .await;
        // After a storage error the record may still land: the change
        // stays named (see `newest.rs`). Otherwise it is over; failing to
        // say so leaves it named, and fails no append that landed.
        if !matches!(appended, Err(AddEntryError::Storage(_))) {
            let _ = self.end_change(change).await;
        }
        let mut appended = appended?;
        if known.is_tracked() {
            // Answered once the change is over: the head then knows the
            // newest snapshot again (unless another change is under way).
            let (head, _) = self.objects.head().await?;
            appended.last_snapshot = self.newer_snapshot(known, &head).await?;
        }
        Ok(appended)
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let (head, log_end) = self.head_and_end().await?;
        let latest = if known.is_tracked() || start == QueryStart::Snapshot {
            self.latest_snapshot(&head).await?
        } else {
            None
        };
        let range =
            Bounds::new(head.start, log_end).resolve_query::<QueryError>(start, end, || {
                Ok(latest.as_ref().map(|s| s.sequence_id))
            })?;
        let page_end = range.page_end(self.page_size);
        let entries = if page_end > range.start {
            self.fetch(&head, range.start, page_end).await?
        } else {
            Vec::new()
        };
        Ok(range.reply(entries, known.newer(latest)))
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        let (head, end) = self.head_and_end().await?;
        Ok(Bounds::new(head.start, end))
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        // The end first: an id past it needs no search for its record.
        let (head, end) = self.head_and_end().await?;
        Bounds::new(head.start, end).check_entry(seq)?;
        if let FieldUpdate::Keep = update.snapshot {
            return self.set_metadata_at(seq, update, head).await;
        }
        let change = self.begin_change().await?;
        let changed = self.set_metadata_at(seq, update, head).await;
        // As for appends carrying snapshots: after a storage error the
        // overlay may still change, and the change stays named.
        if !matches!(changed, Err(SetMetadataError::Storage(_))) {
            let _ = self.end_change(change).await;
        }
        changed
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        let mut contention = Contention::default();
        let first_record = loop {
            let (head, version) = self.objects.head().await?;
            let end = self.end(&head).await?;
            Bounds::new(head.start, end).check_truncate(start)?;
            if start == head.start {
                return Ok(());
            }
            let first_record = if start == end {
                start
            } else {
                let keys = self.objects.record_keys(head.first_record, start).await?;
                match keys.last() {
                    Some(key) => *key,
                    // Another truncate moved the head and removed these
                    // records after this one read the head: go again from
                    // the new head. Only with the head unchanged is a
                    // missing record damage.
                    None if self.objects.head().await?.1 != version => {
                        contention
                            .lost("truncating", &self.objects.record_key(start))
                            .await?;
                        continue;
                    }
                    None => {
                        return Err(corrupt(
                            &self.objects.record_key(start),
                            "no record holds this entry",
                        )
                        .into());
                    }
                }
            };
            let moved = Head {
                start,
                first_record,
                end_hint: head.end_hint.max(first_record),
                ..head.clone()
            };
            if let Swap::Done = self.objects.swap_head(version, &moved).await? {
                break first_record;
            }
            contention
                .lost("truncating", &self.objects.record_key(start))
                .await?;
        };
        // The head moved first: from now on nothing reads below it, and an
        // append that recreates a removed record finds out and takes it back.
        self.objects.delete_below(start, first_record).await?;
        self.objects
            .change_candidates(|candidates| {
                let before = candidates.len();
                candidates.retain(|seq| *seq >= start);
                candidates.len() != before
            })
            .await?;
        Ok(())
    }

    fn capabilities(&self) -> LogCapabilities {
        LogCapabilities::persistent()
    }
}
