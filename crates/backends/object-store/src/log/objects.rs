//! The log's objects and the calls on them: the head, the snapshot
//! candidates, and records keyed by the id of their first entry. Walks along
//! the chain of records find the end; listings find the record holding an id.

use super::format::{
    HEAD_MAGIC, Head, RECORD_MAGIC, SNAPSHOTS_MAGIC, decode_record, decode_small, encode_small,
};
use crate::error::{corrupt, is_lost_race, is_not_found, storage};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use infinisheet_event_log::{LogEntry, SequenceId, StorageError};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion,
};
use std::sync::Arc;

/// Digits of a record key: every `u64` fits, and keys sort as numbers.
const KEY_DIGITS: usize = 20;

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
    head: Path,
    snapshots: Path,
    records: Path,
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
            records: prefix.clone().join("records"),
            store,
            prefix,
        }
    }

    pub(crate) fn record_key(&self, seq: SequenceId) -> Path {
        self.records.clone().join(format!("{seq:0KEY_DIGITS$}"))
    }

    /// Reads a whole object, or `None` if it does not exist.
    async fn get(&self, key: &Path) -> Result<Option<Versioned<Bytes>>, StorageError> {
        let found = match self.store.get(key).await {
            Ok(found) => found,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(storage("reading", key, err)),
        };
        let version = UpdateVersion {
            e_tag: found.meta.e_tag.clone(),
            version: found.meta.version.clone(),
        };
        match found.bytes().await {
            Ok(bytes) => Ok(Some((bytes, Some(version)))),
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

    pub(crate) async fn head(&self) -> Result<Versioned<Head>, StorageError> {
        match self.get(&self.head).await? {
            None => Ok((Head::default(), None)),
            Some((bytes, version)) => Ok((decode_small(HEAD_MAGIC, &self.head, &bytes)?, version)),
        }
    }

    pub(crate) async fn swap_head(
        &self,
        version: Option<UpdateVersion>,
        head: &Head,
    ) -> Result<Swap, StorageError> {
        self.swap(&self.head, version, encode_small(HEAD_MAGIC, head))
            .await
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
    /// retried until it lands; `change` returns `false` to write nothing.
    pub(crate) async fn change_candidates(
        &self,
        change: impl Fn(&mut Vec<SequenceId>) -> bool,
    ) -> Result<(), StorageError> {
        loop {
            let (mut candidates, version) = self.snapshot_candidates().await?;
            if !change(&mut candidates) {
                return Ok(());
            }
            let bytes = encode_small(SNAPSHOTS_MAGIC, &candidates);
            if let Swap::Done = self.swap(&self.snapshots, version, bytes).await? {
                return Ok(());
            }
        }
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

    /// The record at `seq` and its version, or `None` if there is none.
    pub(crate) async fn record(
        &self,
        seq: SequenceId,
    ) -> Result<Option<Versioned<Vec<LogEntry>>>, StorageError> {
        let key = self.record_key(seq);
        match self.get(&key).await? {
            None => Ok(None),
            Some((bytes, version)) => Ok(Some((decode_record(&key, &bytes)?, version))),
        }
    }

    /// Replaces the record at `seq` if it is still at `version`.
    pub(crate) async fn swap_record(
        &self,
        seq: SequenceId,
        version: Option<UpdateVersion>,
        bytes: Bytes,
    ) -> Result<Swap, StorageError> {
        // A record always exists when it is swapped; `None` would create.
        let version = version.unwrap_or(UpdateVersion {
            e_tag: None,
            version: None,
        });
        self.swap(&self.record_key(seq), Some(version), bytes).await
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
            [m0, m1, m2, m3, 1, c0, c1, c2, c3] if [*m0, *m1, *m2, *m3] == *RECORD_MAGIC => {
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
    /// id with no record: the log's end. Returns it and how many records
    /// were passed.
    pub(crate) async fn walk(
        &self,
        mut from: SequenceId,
    ) -> Result<(SequenceId, u64), StorageError> {
        let mut passed = 0;
        while let Some(len) = self.record_len(from).await? {
            from = from
                .checked_add(len)
                .ok_or_else(|| corrupt(&self.record_key(from), "ids past the largest id"))?;
            passed += 1;
        }
        Ok((from, passed))
    }

    /// The record keys in `[low, high]`, ascending. Relies on the store
    /// listing keys in order, as S3, GCS, Azure and the in-memory store do,
    /// to stop early.
    pub(crate) async fn record_keys(
        &self,
        low: SequenceId,
        high: SequenceId,
    ) -> Result<Vec<SequenceId>, StorageError> {
        let listing = match low.checked_sub(1) {
            None => self.store.list(Some(&self.records)),
            Some(below) => self
                .store
                .list_with_offset(Some(&self.records), &self.record_key(below)),
        };
        let mut keys: Vec<SequenceId> = listing
            .map_err(|err| storage("listing", &self.records, err))
            .try_filter_map(|meta| std::future::ready(Ok(record_id(&self.records, &meta.location))))
            .try_take_while(|seq| std::future::ready(Ok(*seq <= high)))
            .try_collect()
            .await?;
        keys.sort_unstable();
        Ok(keys)
    }

    /// Every record key below `below`: garbage a truncate removes.
    pub(crate) async fn delete_records_below(&self, below: SequenceId) -> Result<(), StorageError> {
        let Some(last) = below.checked_sub(1) else {
            return Ok(());
        };
        let doomed = self.record_keys(0, last).await?;
        let store = self.store.clone();
        let locations = futures::stream::iter(
            doomed
                .into_iter()
                .map(|seq| Ok(self.record_key(seq)))
                .collect::<Vec<_>>(),
        )
        .boxed();
        let mut deleted = store.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(storage("truncating below", &self.record_key(below), err)),
            }
        }
        Ok(())
    }
}

/// The id a record key under `records` names, or `None` for a key that is
/// not a record.
fn record_id(records: &Path, key: &Path) -> Option<SequenceId> {
    let mut parts = key.prefix_match(records)?;
    let name = parts.next()?;
    let digits = name.as_ref();
    (parts.next().is_none() && digits.len() == KEY_DIGITS)
        .then(|| digits.parse().ok())
        .flatten()
}
