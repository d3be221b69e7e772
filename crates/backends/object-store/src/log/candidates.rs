//! Finding the newest snapshot through the snapshot candidates: ids that
//! may carry a snapshot, a superset of the entries whose `snapshot` is set
//! (writers add an id before they set its snapshot, and none is removed
//! while it may still be set but by a truncate). The newest few live in
//! one small object every such query reads; older ones in chunks, read
//! only when none of the newest carries a snapshot any more (every one of
//! them was withdrawn), so the cost of the common query does not grow with
//! the number of snapshots a log has had.

use super::ObjectStoreEventLog;
use super::format::Head;
use super::objects::{OVERLAY_BLOCK, Overlay};
use infinisheet_event_log::{SequenceId, SnapshotValue, StorageError};
use std::collections::{BTreeMap, btree_map};

impl ObjectStoreEventLog {
    /// The log's most recent snapshot: from the head when it knows (see
    /// `newest.rs`), else [`newest_from_candidates`](Self::newest_from_candidates).
    pub(super) async fn latest_snapshot(
        &self,
        head: &Head,
    ) -> Result<Option<SnapshotValue>, StorageError> {
        match Self::known_newest(head) {
            Some(known) => Ok(known),
            None => self.newest_from_candidates(head).await,
        }
    }

    /// The log's most recent snapshot, found through the candidates: the
    /// highest candidate at or after the start whose entry has `snapshot`
    /// set.
    pub(super) async fn newest_from_candidates(
        &self,
        head: &Head,
    ) -> Result<Option<SnapshotValue>, StorageError> {
        let mut overlays = BTreeMap::new();
        let (newest, _) = self.objects.snapshot_candidates().await?;
        if let Some(found) = self.first_set(&newest, head, &mut overlays).await? {
            return Ok(Some(found));
        }
        for chunk in self.objects.older_candidates(head.start).await? {
            if let Some(found) = self.first_set(&chunk, head, &mut overlays).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The highest of the ascending `candidates` at or after the start
    /// whose entry has `snapshot` set; `overlays` caches the overlays read.
    async fn first_set(
        &self,
        candidates: &[SequenceId],
        head: &Head,
        overlays: &mut BTreeMap<u64, Overlay>,
    ) -> Result<Option<SnapshotValue>, StorageError> {
        for &seq in candidates
            .iter()
            .rev()
            .take_while(|seq| **seq >= head.start)
        {
            let block = seq / OVERLAY_BLOCK;
            if let btree_map::Entry::Vacant(slot) = overlays.entry(block) {
                slot.insert(self.objects.overlay(block).await?.0);
            }
            let metadata = match overlays.get(&block).and_then(|o| o.get(&seq)) {
                Some(metadata) => Some(metadata.clone()),
                None => self.appended_metadata(seq, head).await?,
            };
            if let Some(blob_id) = metadata.and_then(|m| m.snapshot) {
                return Ok(Some(SnapshotValue {
                    sequence_id: seq,
                    blob_id,
                }));
            }
        }
        Ok(None)
    }
}

/// Adds `ids` to the sorted `candidates`; `false` if all were there.
pub(super) fn add_candidates(candidates: &mut Vec<SequenceId>, ids: &[SequenceId]) -> bool {
    let mut changed = false;
    for id in ids {
        if let Err(at) = candidates.binary_search(id) {
            candidates.insert(at, *id);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use crate::ObjectStoreEventLog;
    use infinisheet_event_log::{
        EventLog, EventLogExt, FieldUpdate, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd,
        QueryStart,
    };
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt};
    use std::sync::Arc;

    async fn newest(log: &ObjectStoreEventLog) -> Option<u64> {
        log.query(
            QueryStart::Snapshot,
            QueryEnd::Id(0),
            KnownSnapshot::NoSnapshot,
        )
        .await
        .unwrap()
        .last_snapshot
        .map(|s| s.sequence_id)
    }

    /// The bytes of the candidates object every query for the newest
    /// snapshot reads.
    async fn hot_bytes(store: &Arc<dyn ObjectStore>) -> usize {
        let key = Path::from("log/snapshots");
        store.get(&key).await.unwrap().bytes().await.unwrap().len()
    }

    #[tokio::test]
    async fn the_newest_candidates_stay_few_and_older_ones_still_answer() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let log = ObjectStoreEventLog::open(store.clone(), Path::from("log"))
            .await
            .unwrap();
        let entries = (0..400).map(|i| LogEntry::new(format!("e{i}"))).collect();
        log.add_entries(entries, 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        let mut sizes = Vec::new();
        for seq in (0..400).step_by(4) {
            log.set_metadata(seq, MetadataUpdate::publish_snapshot(format!("s{seq}")))
                .await
                .unwrap();
            sizes.push(hot_bytes(&store).await);
        }
        assert_eq!(newest(&log).await, Some(396));
        // 100 snapshots published: the object read for the newest one
        // stays as small as it was after a dozen.
        let largest = *sizes.iter().max().unwrap();
        assert!(
            largest <= 2 * sizes[12],
            "grew to {largest} bytes: {sizes:?}"
        );
        // Withdrawing the newest snapshots one by one, down into the older
        // chunks, each time names the next one.
        let clear = MetadataUpdate {
            snapshot: FieldUpdate::Clear,
            ..MetadataUpdate::default()
        };
        let published: Vec<u64> = (8..400).step_by(4).collect();
        for &seq in published.iter().rev() {
            log.set_metadata(seq, clear.clone()).await.unwrap();
            assert_eq!(newest(&log).await, Some(seq - 4), "after clearing {seq}");
        }
        // A truncate removes the chunks wholly below the new start (they
        // are named by their largest id), and the newest snapshot is then
        // one at or after it, or none.
        let chunks = || async {
            use futures::TryStreamExt;
            let listed: Vec<_> = store
                .list(Some(&Path::from("log/older-snapshots")))
                .try_collect()
                .await
                .unwrap();
            let mut names: Vec<u64> = listed
                .iter()
                .map(|meta| meta.location.filename().unwrap().parse().unwrap())
                .collect();
            names.sort_unstable();
            names
        };
        let before = chunks().await;
        assert!(before.len() > 2, "older candidates were moved: {before:?}");
        log.truncate(200).await.unwrap();
        assert_eq!(newest(&log).await, None);
        let after = chunks().await;
        assert!(after.iter().all(|last| *last >= 200), "{after:?}");
        assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    }
}
