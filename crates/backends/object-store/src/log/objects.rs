//! The log's objects and the calls on them: the head, the snapshot
//! candidates (the newest few, and chunks of older ones), and records keyed
//! by the id of their first entry. Walks along
//! the chain of records find the end; listings find the record holding an id.

use super::format::{
    Head, OVERLAY_MAGIC, RECORD_MAGIC, SNAPSHOTS_MAGIC, StoredMetadata, decode_head, decode_record,
    decode_small, encode_head, encode_record, encode_small, is_record_version,
};
use crate::error::{corrupt, is_lost_race, is_not_found, storage};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use infinisheet_event_log::{AppendToken, EntryMetadata, LogEntry, SequenceId, StorageError};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Digits of a record key: every `u64` fits, and keys sort as numbers.
const KEY_DIGITS: usize = 20;

/// Entries of a pack: ids `[k * PACK, (k + 1) * PACK)` make pack `k`.
pub(crate) const PACK: u64 = 64;

/// The most snapshot candidates the object every query for the newest
/// snapshot reads holds; beyond it, the older half moves to a chunk.
pub(crate) const HOT_CANDIDATES: usize = 16;

/// Ids whose changed metadata one overlay holds.
pub(crate) const OVERLAY_BLOCK: u64 = 1024;

/// Metadata changed since append, by id, for one block of ids.
pub(crate) type Overlay = BTreeMap<SequenceId, EntryMetadata>;

/// Bytes of a record's header: magic, version, entry count.
const RECORD_HEADER: u64 = 9;

/// How an object looked when read: its content and the version a
/// compare-and-swap must name. `None` when the object does not exist.
pub(crate) type Versioned<T> = (T, Option<UpdateVersion>);

/// The keys of one log and the store they live in.
#[derive(Clone, Debug)]
pub(crate) struct Objects {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: Path,
    pub(crate) head: Path,
    snapshots: Path,
    older_snapshots: Path,
    pub(crate) records: Path,
    packs: Path,
    overlays: Path,
}

/// Whether a conditional write landed.
pub(crate) enum Swap {
    Done,
    Lost,
}

impl Objects {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Objects {
            head: prefix.clone().join("head"),
            snapshots: prefix.clone().join("snapshots"),
            older_snapshots: prefix.clone().join("older-snapshots"),
            records: prefix.clone().join("records"),
            packs: prefix.clone().join("packs"),
            overlays: prefix.clone().join("overlays"),
            store,
            prefix,
        }
    }

    pub(crate) fn record_key(&self, seq: SequenceId) -> Path {
        numbered(&self.records, seq)
    }

    fn pack_key(&self, k: u64) -> Path {
        numbered(&self.packs, k)
    }

    fn overlay_key(&self, block: u64) -> Path {
        numbered(&self.overlays, block)
    }

    /// The entries of pack `k`, or `None` if it was not written (or was
    /// removed by a truncate).
    pub(crate) async fn pack(&self, k: u64) -> Result<Option<Vec<LogEntry>>, StorageError> {
        let key = self.pack_key(k);
        let Some((bytes, _)) = self.get(&key).await? else {
            return Ok(None);
        };
        let (_, entries) = decode_record(&key, &bytes)?;
        if entries.len() as u64 != PACK {
            return Err(corrupt(
                &key,
                format!("{} entries in a pack", entries.len()),
            ));
        }
        Ok(Some(entries))
    }

    /// Writes pack `k` unless it exists; every writer of a pack writes the
    /// same entries (payloads and metadata as appended never change).
    pub(crate) async fn create_pack(
        &self,
        k: u64,
        entries: &[LogEntry],
    ) -> Result<(), StorageError> {
        let key = self.pack_key(k);
        match self
            .store
            .put_opts(
                &key,
                PutPayload::from(encode_record(entries, None)),
                PutMode::Create.into(),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_lost_race(&err) => Ok(()),
            Err(err) => Err(storage("packing", &key, err)),
        }
    }

    /// The packs that exist among `[low, high]`.
    pub(crate) async fn pack_ids(&self, low: u64, high: u64) -> Result<Vec<u64>, StorageError> {
        self.numbered_keys(&self.packs, low, high).await
    }

    /// The overlay of `block` and its version (empty and `None` if absent).
    pub(crate) async fn overlay(&self, block: u64) -> Result<Versioned<Overlay>, StorageError> {
        let key = self.overlay_key(block);
        match self.get(&key).await? {
            None => Ok((Overlay::new(), None)),
            Some((bytes, version)) => {
                let stored: Vec<(SequenceId, StoredMetadata)> =
                    decode_small(OVERLAY_MAGIC, &key, &bytes)?;
                let overlay = stored.into_iter().map(|(seq, m)| (seq, m.into())).collect();
                Ok((overlay, version))
            }
        }
    }

    /// Replaces the overlay of `block` if it is still at `version`.
    pub(crate) async fn swap_overlay(
        &self,
        block: u64,
        version: Option<UpdateVersion>,
        overlay: &Overlay,
    ) -> Result<Swap, StorageError> {
        let stored: Vec<(SequenceId, StoredMetadata)> = overlay
            .iter()
            .map(|(seq, m)| (*seq, StoredMetadata::from(m.clone())))
            .collect();
        let bytes = encode_small(OVERLAY_MAGIC, &stored);
        self.swap(&self.overlay_key(block), version, bytes).await
    }

    /// Reads a whole object, or `None` if it does not exist.
    async fn get(&self, key: &Path) -> Result<Option<Versioned<Bytes>>, StorageError> {
        Ok(self
            .get_timed(key)
            .await?
            .map(|(bytes, version, _)| (bytes, version)))
    }

    /// [`get`](Self::get), with when the store last wrote the object (its
    /// `Last-Modified`, in milliseconds since the Unix epoch by the store's
    /// clock).
    async fn get_timed(
        &self,
        key: &Path,
    ) -> Result<Option<(Bytes, Option<UpdateVersion>, i64)>, StorageError> {
        let found = match self.store.get(key).await {
            Ok(found) => found,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(storage("reading", key, err)),
        };
        let version = UpdateVersion {
            e_tag: found.meta.e_tag.clone(),
            version: found.meta.version.clone(),
        };
        let modified = found.meta.last_modified.timestamp_millis();
        match found.bytes().await {
            Ok(bytes) => Ok(Some((bytes, Some(version), modified))),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(storage("reading", key, err)),
        }
    }

    /// Writes `bytes` at `key` if the object is still as it was read
    /// (`version`), or still absent (`None`).
    async fn swap(
        &self,
        key: &Path,
        version: Option<UpdateVersion>,
        bytes: Bytes,
    ) -> Result<Swap, StorageError> {
        let mode = version.map_or(PutMode::Create, PutMode::Update);
        match self
            .store
            .put_opts(key, PutPayload::from(bytes), mode.into())
            .await
        {
            Ok(_) => Ok(Swap::Done),
            // An object deleted since it was read has no version to match.
            Err(err) if is_lost_race(&err) || is_not_found(&err) => Ok(Swap::Lost),
            Err(err) => Err(storage("updating", key, err)),
        }
    }

    /// The head, or (a log of a release that wrote the head only when it
    /// first moved) the head of a log that never moved, its newest
    /// snapshot unknown.
    pub(crate) async fn head(&self) -> Result<Versioned<Head>, StorageError> {
        match self.get(&self.head).await? {
            None => Ok((Head::default(), None)),
            Some((bytes, version)) => Ok((decode_head(&self.head, &bytes)?, version)),
        }
    }

    /// [`head`](Self::head), with when the store last wrote it (see
    /// [`get_timed`](Self::get_timed)); `None` for a head never written.
    pub(crate) async fn head_timed(
        &self,
    ) -> Result<(Head, Option<UpdateVersion>, Option<i64>), StorageError> {
        match self.get_timed(&self.head).await? {
            None => Ok((Head::default(), None, None)),
            Some((bytes, version, modified)) => {
                Ok((decode_head(&self.head, &bytes)?, version, Some(modified)))
            }
        }
    }

    pub(crate) async fn swap_head(
        &self,
        version: Option<UpdateVersion>,
        head: &Head,
    ) -> Result<Swap, StorageError> {
        self.swap(&self.head, version, encode_head(head)).await
    }

    /// The ids that may carry a snapshot: a superset of the entries whose
    /// `snapshot` is set, in ascending order.
    pub(crate) async fn snapshot_candidates(
        &self,
    ) -> Result<Versioned<Vec<SequenceId>>, StorageError> {
        match self.get(&self.snapshots).await? {
            None => Ok((Vec::new(), None)),
            Some((bytes, version)) => Ok((
                decode_small(SNAPSHOTS_MAGIC, &self.snapshots, &bytes)?,
                version,
            )),
        }
    }

    /// Changes the snapshot candidates with `change` by compare-and-swap,
    /// retried (with backoff, a bounded number of times) until it lands;
    /// `change` returns `false` to write nothing. When the candidates
    /// outgrow [`HOT_CANDIDATES`], the oldest are moved to a chunk of older
    /// candidates first (so together they never name fewer), keeping the
    /// object every query for the newest snapshot reads small.
    pub(crate) async fn change_candidates(
        &self,
        change: impl Fn(&mut Vec<SequenceId>) -> bool,
    ) -> Result<(), StorageError> {
        let mut contention = crate::error::Contention::default();
        loop {
            let (mut candidates, version) = self.snapshot_candidates().await?;
            if !change(&mut candidates) {
                return Ok(());
            }
            if candidates.len() > HOT_CANDIDATES {
                let kept = candidates.split_off(candidates.len() - HOT_CANDIDATES / 2);
                self.add_older_candidates(&candidates).await?;
                candidates = kept;
            }
            let bytes = encode_small(SNAPSHOTS_MAGIC, &candidates);
            if let Swap::Done = self.swap(&self.snapshots, version, bytes).await? {
                return Ok(());
            }
            contention
                .lost("changing the snapshot candidates", &self.snapshots)
                .await?;
        }
    }

    /// Adds `ids` (ascending, not empty) to the chunk of older candidates
    /// named by the largest of them, creating or merging it.
    async fn add_older_candidates(&self, ids: &[SequenceId]) -> Result<(), StorageError> {
        let Some(&last) = ids.last() else {
            return Ok(());
        };
        let key = numbered(&self.older_snapshots, last);
        let mut contention = crate::error::Contention::default();
        loop {
            let (mut chunk, version) = match self.get(&key).await? {
                None => (Vec::new(), None),
                Some((bytes, version)) => (
                    decode_small::<Vec<SequenceId>>(SNAPSHOTS_MAGIC, &key, &bytes)?,
                    version,
                ),
            };
            chunk.extend_from_slice(ids);
            chunk.sort_unstable();
            chunk.dedup();
            let bytes = encode_small(SNAPSHOTS_MAGIC, &chunk);
            if let Swap::Done = self.swap(&key, version, bytes).await? {
                return Ok(());
            }
            contention
                .lost("moving older snapshot candidates", &key)
                .await?;
        }
    }

    /// The chunks of older candidates holding ids from `start` on, newest
    /// first: read only when no newer candidate carries a snapshot.
    pub(crate) async fn older_candidates(
        &self,
        start: SequenceId,
    ) -> Result<Vec<Vec<SequenceId>>, StorageError> {
        let keys = self
            .numbered_keys(&self.older_snapshots, start, SequenceId::MAX)
            .await?;
        let mut chunks = Vec::with_capacity(keys.len());
        for n in keys.into_iter().rev() {
            let key = numbered(&self.older_snapshots, n);
            if let Some((bytes, _)) = self.get(&key).await? {
                chunks.push(decode_small(SNAPSHOTS_MAGIC, &key, &bytes)?);
            }
        }
        Ok(chunks)
    }

    /// Creates the record of `entries` at `seq`: `Lost` if it exists.
    pub(crate) async fn create_record(
        &self,
        seq: SequenceId,
        bytes: Bytes,
    ) -> Result<Swap, StorageError> {
        let key = self.record_key(seq);
        match self
            .store
            .put_opts(&key, PutPayload::from(bytes), PutMode::Create.into())
            .await
        {
            Ok(_) => Ok(Swap::Done),
            Err(err) if is_lost_race(&err) => Ok(Swap::Lost),
            Err(err) => Err(storage("appending", &key, err)),
        }
    }

    /// The entries of the record at `seq`, or `None` if there is none.
    /// Records never change, so no version is kept.
    pub(crate) async fn record(
        &self,
        seq: SequenceId,
    ) -> Result<Option<Vec<LogEntry>>, StorageError> {
        Ok(self.tokened_record(seq).await?.map(|(_, entries)| entries))
    }

    /// The record at `seq` with its append's token, or `None` if there is
    /// none.
    pub(crate) async fn tokened_record(
        &self,
        seq: SequenceId,
    ) -> Result<Option<(Option<AppendToken>, Vec<LogEntry>)>, StorageError> {
        let key = self.record_key(seq);
        match self.get(&key).await? {
            None => Ok(None),
            Some((bytes, _)) => Ok(Some(decode_record(&key, &bytes)?)),
        }
    }

    pub(crate) async fn delete_record(&self, seq: SequenceId) -> Result<(), StorageError> {
        let key = self.record_key(seq);
        match self.store.delete(&key).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(storage("removing", &key, err)),
        }
    }

    /// How many entries the record at `seq` holds, reading only its header;
    /// `None` if there is no record there.
    async fn record_len(&self, seq: SequenceId) -> Result<Option<u64>, StorageError> {
        let key = self.record_key(seq);
        let options = GetOptions {
            range: Some(GetRange::Bounded(0..RECORD_HEADER)),
            ..GetOptions::default()
        };
        let header = match self.store.get_opts(&key, options).await {
            Ok(found) => found.bytes().await,
            Err(err) => Err(err),
        };
        let header = match header {
            Ok(header) => header,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(storage("reading", &key, err)),
        };
        match header.as_ref() {
            [m0, m1, m2, m3, version, c0, c1, c2, c3]
                if [*m0, *m1, *m2, *m3] == *RECORD_MAGIC && is_record_version(*version) =>
            {
                match u32::from_le_bytes([*c0, *c1, *c2, *c3]) {
                    0 => Err(corrupt(&key, "a record without entries")),
                    count => Ok(Some(u64::from(count))),
                }
            }
            _ => Err(corrupt(
                &key,
                "not a log record of a version this build reads",
            )),
        }
    }

    /// Follows the chain of records from the record key `from` to the first
    /// id with no record: the log's end. After a few records it lists the
    /// record keys from where it got to and jumps to the last one, so a
    /// walk from far behind costs a listing, not a read per record.
    pub(crate) async fn walk(&self, mut from: SequenceId) -> Result<SequenceId, StorageError> {
        let mut steps = 0;
        while let Some(len) = self.record_len(from).await? {
            from = from
                .checked_add(len)
                .ok_or_else(|| corrupt(&self.record_key(from), "ids past the largest id"))?;
            steps += 1;
            if steps == WALK_BEFORE_LISTING
                && let Some(&last) = self.record_keys(from, SequenceId::MAX).await?.last()
            {
                // Records tile the log, so the last key is the last record.
                from = last;
            }
        }
        Ok(from)
    }

    /// The record keys in `[low, high]`, ascending.
    pub(crate) async fn record_keys(
        &self,
        low: SequenceId,
        high: SequenceId,
    ) -> Result<Vec<SequenceId>, StorageError> {
        self.numbered_keys(&self.records, low, high).await
    }

    /// The numbers in `[low, high]` that name an object under `dir`,
    /// ascending. Relies on the store listing keys in order, as S3, GCS,
    /// Azure and the in-memory store do, to stop early.
    async fn numbered_keys(
        &self,
        dir: &Path,
        low: u64,
        high: u64,
    ) -> Result<Vec<u64>, StorageError> {
        let listing = match low.checked_sub(1) {
            None => self.store.list(Some(dir)),
            Some(below) => self
                .store
                .list_with_offset(Some(dir), &numbered(dir, below)),
        };
        let mut keys: Vec<u64> = listing
            .map_err(|err| storage("listing", dir, err))
            .try_filter_map(|meta| std::future::ready(Ok(number_of(dir, &meta.location))))
            .try_take_while(|n| std::future::ready(Ok(*n <= high)))
            .try_collect()
            .await?;
        keys.sort_unstable();
        Ok(keys)
    }

    /// Removes what a truncate to `start` leaves unreachable: records below
    /// `first_record`, and packs, overlays and chunks of older snapshot
    /// candidates wholly below `start`.
    pub(crate) async fn delete_below(
        &self,
        start: SequenceId,
        first_record: SequenceId,
    ) -> Result<(), StorageError> {
        let mut doomed = Vec::new();
        for (dir, below) in [
            (&self.records, first_record),
            (&self.packs, start / PACK),
            (&self.overlays, start / OVERLAY_BLOCK),
            // Named by their largest id.
            (&self.older_snapshots, start),
        ] {
            if let Some(last) = below.checked_sub(1) {
                let numbers = self.numbered_keys(dir, 0, last).await?;
                doomed.extend(numbers.into_iter().map(|n| Ok(numbered(dir, n))));
            }
        }
        let mut deleted = self
            .store
            .delete_stream(futures::stream::iter(doomed).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(storage("truncating under", &self.prefix, err)),
            }
        }
        Ok(())
    }
}

/// Records a walk reads one by one before it lists the rest.
const WALK_BEFORE_LISTING: u32 = 4;

/// The key of object `n` under `dir`: zero-padded, so keys sort as numbers.
fn numbered(dir: &Path, n: u64) -> Path {
    dir.clone().join(format!("{n:0KEY_DIGITS$}"))
}

/// The number a key under `dir` names, or `None` for a key that is not one
/// of this crate's numbered objects.
fn number_of(dir: &Path, key: &Path) -> Option<u64> {
    let mut parts = key.prefix_match(dir)?;
    let name = parts.next()?;
    let digits = name.as_ref();
    (parts.next().is_none() && digits.len() == KEY_DIGITS)
        .then(|| digits.parse().ok())
        .flatten()
}
