//! The newest snapshot, kept in the head so that the reads every append
//! and query make anyway answer it: a steady-state append is its record's
//! PUT and the head's GET, whether or not the caller tracks snapshots.
//!
//! The entries' `snapshot` fields stay where they were (records, overlays;
//! the candidates name the ids that may carry one); the head says which is
//! newest when nothing is changing them. An operation that may change a
//! `snapshot` field — a `set_metadata` setting or clearing one, an append
//! carrying one — first names itself in the head's `changing` (which makes
//! `newest` unknown), then writes, then takes its name out again; whoever
//! takes the last name out works `newest` out anew from the candidates,
//! having read the head with no other name in it, and writes it with a
//! compare-and-swap on that very head: any operation that began meanwhile
//! changed the head, so the swap fails and the value is not written. Every
//! operation named earlier had finished writing before it took its name
//! out. So a known `newest` is never stale.
//!
//! An operation that cannot tell whether its writes landed (a storage
//! error: a write may still be on its way, and land later) leaves its name,
//! as does one that dies between its two head writes: the newest snapshot
//! is then found through the candidates (two more reads per tracked call)
//! until the name is an hour old. Age is by the store's clock alone: the
//! first head write after a name's own stamps it with the head's
//! `Last-Modified` (at or after the change began), and a name stamped over
//! an hour before the head's latest write is dropped by the next head
//! write that sees it. Tracked appends write the head for that: to stamp a
//! name, and, while names are left, again as it is once a minute (so its
//! `Last-Modified` moves on).
//! A write delayed for more than an hour would land unseen by `newest`,
//! until the next change of snapshots.

use super::ObjectStoreEventLog;
use super::format::{Change, Head, Newest};
use super::objects::Swap;
use crate::error::Contention;
use infinisheet_event_log::{SnapshotValue, StorageError};
use object_store::UpdateVersion;
use std::time::Duration;

/// How long a change may stay named in the head before it is taken to
/// have died.
const ABANDONED: Duration = Duration::from_secs(3600);

/// Stamps the changes not stamped yet with `now` (the head's
/// `Last-Modified` as read) and drops those stamped [`ABANDONED`] before
/// it. Nothing without a time.
fn age(changing: &mut Vec<Change>, now: Option<i64>) {
    let Some(now) = now else {
        return;
    };
    for change in changing.iter_mut() {
        change.stamped_ms.get_or_insert(now);
    }
    let limit = ABANDONED.as_millis() as i64;
    changing.retain(|change| change.stamped_ms.is_none_or(|at| now - at < limit));
}

/// Whether a head naming changes that have not aged out should be written
/// again as it is, so that its `Last-Modified` — the clock names age by —
/// moves on: once a minute at most (by this client's clock, which decides
/// how often, never what is dropped), for a log whose head nothing else
/// writes.
fn needs_refresh(head: &Head, now: Option<i64>) -> bool {
    let Some(written) = now else {
        return false;
    };
    let local = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64);
    !head.changing.is_empty() && local - written > 60_000
}

impl ObjectStoreEventLog {
    /// The newest snapshot as the head knows it: `Some(answer)` when it
    /// does (at or after the start; `None` inside if there is none).
    pub(super) fn known_newest(head: &Head) -> Option<Option<SnapshotValue>> {
        match &head.newest {
            Newest::Known(newest) if head.changing.is_empty() => Some(
                newest
                    .as_ref()
                    .filter(|(seq, _)| *seq >= head.start)
                    .map(|(seq, blob)| SnapshotValue {
                        sequence_id: *seq,
                        blob_id: blob.clone(),
                    }),
            ),
            _ => None,
        }
    }

    /// Names a change of snapshots in the head before it writes; the token
    /// goes to [`end_change`](Self::end_change) afterwards.
    pub(super) async fn begin_change(&self) -> Result<u64, StorageError> {
        let token = fastrand::u64(..);
        match self.name_change(token).await {
            Ok(()) => Ok(token),
            Err(err) => {
                // The write may have landed: take the name out again if
                // so (one try; otherwise it ages out).
                let _ = self.end_change(token).await;
                Err(err)
            }
        }
    }

    async fn name_change(&self, token: u64) -> Result<(), StorageError> {
        let mut contention = Contention::default();
        loop {
            let (head, version, now) = self.objects.head_timed().await?;
            let mut next = head.clone();
            age(&mut next.changing, now);
            next.changing.push(Change {
                token,
                stamped_ms: None,
            });
            next.newest = Newest::Unknown;
            if let Swap::Done = self.objects.swap_head(version, &next).await? {
                return Ok(());
            }
            contention
                .lost("beginning a change of snapshots in", &self.objects.head)
                .await?;
        }
    }

    /// Takes the change `token` out of the head, once its writes are done
    /// (or failed); the last one out writes the newest snapshot.
    pub(super) async fn end_change(&self, token: u64) -> Result<(), StorageError> {
        let mut contention = Contention::default();
        loop {
            let (head, version, now) = self.objects.head_timed().await?;
            let mut next = head.clone();
            next.changing.retain(|change| change.token != token);
            age(&mut next.changing, now);
            if next.changing.is_empty() {
                // Read after the head that names no other change: every
                // earlier change is written.
                let newest = self.newest_from_candidates(&head).await?;
                next.newest = Newest::Known(newest.map(|s| (s.sequence_id, s.blob_id)));
            }
            if next == head {
                return Ok(());
            }
            if let Swap::Done = self.objects.swap_head(version, &next).await? {
                return Ok(());
            }
            contention
                .lost("ending a change of snapshots in", &self.objects.head)
                .await?;
        }
    }

    /// The newest snapshot for a head read as `head` (at `version`, last
    /// written at `now` by the store's clock): from the head when it
    /// knows, else from the candidates — and then, when no change is under
    /// way (or only changes that aged out), also written into the head
    /// (one try; a lost race means the head moved on), moving its end hint
    /// to `end_hint` if given; changes named but not stamped yet get their
    /// stamp so. For writers: a log of a release before the head knew its
    /// newest snapshot learns it on the first tracked append. Whether it
    /// wrote the head.
    pub(super) async fn newest_learning(
        &self,
        head: &Head,
        version: Option<UpdateVersion>,
        now: Option<i64>,
        end_hint: Option<u64>,
    ) -> Result<(Option<SnapshotValue>, bool), StorageError> {
        if let Some(known) = Self::known_newest(head) {
            return Ok((known, false));
        }
        let mut changing = head.changing.clone();
        age(&mut changing, now);
        let newest = self.newest_from_candidates(head).await?;
        let mut next = Head {
            changing,
            end_hint: end_hint.unwrap_or(head.end_hint),
            ..head.clone()
        };
        if next.changing.is_empty() {
            next.newest =
                Newest::Known(newest.as_ref().map(|s| (s.sequence_id, s.blob_id.clone())));
        }
        if next == *head && !needs_refresh(head, now) {
            return Ok((newest, false));
        }
        let swapped = self.objects.swap_head(version, &next).await?;
        Ok((newest, matches!(swapped, Swap::Done)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::{HEAD_MAGIC, Newest, encode_small};
    use super::*;
    use crate::CountingStore;
    use infinisheet_event_log::{
        EventLog, EventLogExt, FieldUpdate, KnownSnapshot, LogEntry, MetadataUpdate,
    };
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use std::sync::Arc;

    async fn log_with(store: &CountingStore, entries: u64) -> ObjectStoreEventLog {
        let log = ObjectStoreEventLog::open(Arc::new(store.clone()), Path::from("log"))
            .await
            .unwrap();
        let batch = (0..entries)
            .map(|i| LogEntry::new(format!("e{i}")))
            .collect();
        log.add_entries(batch, 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        log
    }

    async fn head(log: &ObjectStoreEventLog) -> Head {
        log.objects.head().await.unwrap().0
    }

    /// The newest snapshot a tracked append is told of, and what that
    /// append cost.
    async fn append_told(log: &ObjectStoreEventLog, store: &CountingStore) -> (Option<u64>, u64) {
        let end = log.bounds().await.unwrap().end;
        let before = store.counts();
        let reply = log
            .add_entry(LogEntry::new("x"), end, KnownSnapshot::NoSnapshot)
            .await
            .unwrap();
        let cost = store.counts().since(before).total();
        (reply.last_snapshot.map(|s| s.sequence_id), cost)
    }

    /// A change that died between its two head writes (its snapshot
    /// written, its name left in the head): every answer is still right,
    /// found through the candidates, until the name is an hour old by the
    /// store's clock; then the next tracked append drops it and the head
    /// knows again.
    #[tokio::test]
    async fn a_change_that_died_is_answered_around_and_dropped_after_an_hour() {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let log = log_with(&store, 40).await;
        log.set_metadata(10, MetadataUpdate::publish_snapshot("s10"))
            .await
            .unwrap();
        assert_eq!(
            head(&log).await.newest,
            Newest::Known(Some((10, "s10".into())))
        );
        // Dies after writing: begun, written, never ended.
        log.begin_change().await.unwrap();
        let (at, _) = log.objects.head().await.unwrap();
        log.set_metadata_at(20, MetadataUpdate::publish_snapshot("s20"), at)
            .await
            .unwrap();
        for _ in 0..3 {
            let (told, cost) = append_told(&log, &store).await;
            assert_eq!(told, Some(20));
            assert!(cost > 2, "answered from a head that cannot know: {cost}");
        }
        // Nothing drops it before then, whatever a client's clock says:
        // age is by the store's clock.
        let (told, _) = append_told(&log, &store).await;
        assert_eq!(told, Some(20));
        assert!(!head(&log).await.changing.is_empty());
        // The appends stamped the name with the store's time.
        let now = head(&log).await;
        assert_eq!(now.newest, Newest::Unknown);
        assert!(
            now.changing.iter().all(|c| c.stamped_ms.is_some()),
            "{now:?}"
        );
        // An hour later by the store's clock.
        let (mut aged, version) = log.objects.head().await.unwrap();
        for change in &mut aged.changing {
            change.stamped_ms = change
                .stamped_ms
                .map(|at| at - ABANDONED.as_millis() as i64 - 1000);
        }
        log.objects.swap_head(version, &aged).await.unwrap();
        let (told, _) = append_told(&log, &store).await;
        assert_eq!(told, Some(20));
        let now = head(&log).await;
        assert!(now.changing.is_empty(), "{now:?}");
        assert_eq!(now.newest, Newest::Known(Some((20, "s20".into()))));
        let (told, cost) = append_told(&log, &store).await;
        assert_eq!((told, cost), (Some(20), 2));
    }

    /// Fails every overlay write while `on`: a write the client gives up
    /// on (which may yet land).
    #[derive(Default)]
    struct FailOverlays {
        on: std::sync::atomic::AtomicBool,
    }

    impl infinisheet_test_kit::Interceptor for FailOverlays {
        fn intercept(&self, call: infinisheet_test_kit::Call<'_>) -> infinisheet_test_kit::Verdict {
            match call {
                infinisheet_test_kit::Call::Put { location, .. }
                    if location.as_ref().contains("/overlays/")
                        && self.on.load(std::sync::atomic::Ordering::SeqCst) =>
                {
                    infinisheet_test_kit::Verdict::Fail(object_store::Error::Generic {
                        store: "test",
                        source: "no answer".into(),
                    })
                }
                _ => infinisheet_test_kit::Verdict::Pass,
            }
        }
    }

    /// A publish that fails with a storage error may still land (its PUT
    /// on its way): its change stays named, so when the write lands late
    /// the answers name it rather than the snapshot before.
    #[tokio::test]
    async fn a_change_that_failed_uncertainly_stays_named() {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let faults = Arc::new(FailOverlays::default());
        let log = ObjectStoreEventLog::open(
            Arc::new(infinisheet_test_kit::Intercepted::new(
                Arc::new(store.clone()),
                faults.clone(),
            )),
            Path::from("log"),
        )
        .await
        .unwrap();
        let batch = (0..40).map(|i| LogEntry::new(format!("e{i}"))).collect();
        log.add_entries(batch, 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        log.set_metadata(10, MetadataUpdate::publish_snapshot("s10"))
            .await
            .unwrap();
        faults.on.store(true, std::sync::atomic::Ordering::SeqCst);
        let failed = log
            .set_metadata(20, MetadataUpdate::publish_snapshot("s20"))
            .await;
        assert!(failed.is_err());
        faults.on.store(false, std::sync::atomic::Ordering::SeqCst);
        assert!(!head(&log).await.changing.is_empty());
        // The write lands late.
        let (at, _) = log.objects.head().await.unwrap();
        log.set_metadata_at(20, MetadataUpdate::publish_snapshot("s20"), at)
            .await
            .unwrap();
        let (told, _) = append_told(&log, &store).await;
        assert_eq!(told, Some(20));
    }

    /// A change still under way while another begins and ends: the one
    /// that ended first does not make the head know (the other has yet to
    /// write), so a tracked append is told of the other's snapshot once it
    /// is written; when the other ends, the head knows it.
    #[tokio::test]
    async fn a_change_under_way_keeps_the_head_from_knowing() {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let log = log_with(&store, 40).await;
        log.set_metadata(10, MetadataUpdate::publish_snapshot("s10"))
            .await
            .unwrap();
        let slow = log.begin_change().await.unwrap();
        log.set_metadata(5, MetadataUpdate::publish_snapshot("s5"))
            .await
            .unwrap();
        assert_eq!(head(&log).await.newest, Newest::Unknown);
        let (at, _) = log.objects.head().await.unwrap();
        log.set_metadata_at(20, MetadataUpdate::publish_snapshot("s20"), at)
            .await
            .unwrap();
        let (told, _) = append_told(&log, &store).await;
        assert_eq!(told, Some(20));
        log.end_change(slow).await.unwrap();
        assert_eq!(
            head(&log).await.newest,
            Newest::Known(Some((20, "s20".into())))
        );
        let (told, cost) = append_told(&log, &store).await;
        assert_eq!((told, cost), (Some(20), 2));
    }

    /// A head written by a release of format version 1 (no newest
    /// snapshot in it) answers through the candidates until the first
    /// tracked append writes the newest snapshot into it.
    #[tokio::test]
    async fn a_version_1_head_learns_the_newest_snapshot() {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let log = log_with(&store, 40).await;
        log.set_metadata(30, MetadataUpdate::publish_snapshot("s30"))
            .await
            .unwrap();
        #[derive(serde::Serialize)]
        struct V1 {
            start: u64,
            first_record: u64,
            end_hint: u64,
        }
        let old = encode_small(
            HEAD_MAGIC,
            &V1 {
                start: 0,
                first_record: 0,
                end_hint: 0,
            },
        );
        let key = Path::from("log/head");
        object_store::ObjectStoreExt::put(&store, &key, old.into())
            .await
            .unwrap();
        assert_eq!(head(&log).await.newest, Newest::Unknown);
        let (told, cost) = append_told(&log, &store).await;
        assert_eq!(told, Some(30));
        assert!(cost > 2, "{cost}");
        assert_eq!(
            head(&log).await.newest,
            Newest::Known(Some((30, "s30".into())))
        );
        let (told, cost) = append_told(&log, &store).await;
        assert_eq!((told, cost), (Some(30), 2));
    }

    /// Publishes, withdrawals and appends carrying snapshots, racing from
    /// eight tasks on two handles: once they are done, the head knows,
    /// and names what the candidates do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_changes_leave_the_head_knowing_the_newest() {
        for round in 0..8u64 {
            let store = CountingStore::new(Arc::new(InMemory::new()));
            let first = log_with(&store, 64).await;
            let second = ObjectStoreEventLog::open(Arc::new(store.clone()), Path::from("log"))
                .await
                .unwrap();
            let tasks: Vec<_> = (0..8u64)
                .map(|task| {
                    let log = if task % 2 == 0 {
                        first.clone()
                    } else {
                        second.clone()
                    };
                    tokio::spawn(async move {
                        let mut rng = fastrand::Rng::with_seed(round * 100 + task);
                        for step in 0..12 {
                            let end = log.bounds().await.unwrap().end;
                            match rng.u8(0..3) {
                                0 => {
                                    let seq = rng.u64(0..end);
                                    let update = MetadataUpdate::publish_snapshot(format!(
                                        "s{seq}-{task}-{step}"
                                    ));
                                    log.set_metadata(seq, update).await.unwrap();
                                }
                                1 => {
                                    let clear = MetadataUpdate {
                                        snapshot: FieldUpdate::Clear,
                                        ..MetadataUpdate::default()
                                    };
                                    log.set_metadata(rng.u64(0..end), clear).await.unwrap();
                                }
                                _ => {
                                    let mut entry = LogEntry::new("carrying");
                                    entry.metadata.snapshot = Some(format!("a{task}-{step}"));
                                    // A conflict is a lost race: fine.
                                    let _ =
                                        log.add_entry(entry, end, KnownSnapshot::NoSnapshot).await;
                                }
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let now = head(&first).await;
            assert!(now.changing.is_empty(), "round {round}: {now:?}");
            let truth = first.newest_from_candidates(&now).await.unwrap();
            assert_eq!(
                now.newest,
                Newest::Known(truth.map(|s| (s.sequence_id, s.blob_id))),
                "round {round}"
            );
        }
    }
}
